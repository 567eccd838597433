"""A report a province hands in shows what each passed check verified, and what a run left out.

A passed check's record carries the one-line summary its function returned, built from what it observed (so
SUB-05 says how many communes accepted a submission, and that number is the official count of the province);
a skipped or could-not-run check carries how to look into it as ``reproduce``, not inside its message; the HTML
header names the communes a profile restricts the run to and the capabilities it does not declare.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html import escape
from typing import Any

import pytest

from haicap.cli import main
from haicap.conformance.registry import CheckError, CheckSkipped
from haicap.data_generators.units import admin_units
from haicap.reports.readiness_html import render_readiness_html
from haicap.sandbox.runner import Sandbox
from haicap.target import ALL_CAPABILITIES, Target

# -- a certify run: every passed check says what it verified, with the run's own numbers -------------------


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("certify-evidence")
    code = main(["certify", "--only", "units", "--only", "submission", "--out", str(out)])
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert code == 0, [(c["id"], c["status"], c["message"]) for c in results["checks"]]
    results["html"] = (out / "report.html").read_text(encoding="utf-8")
    return results


def _messages(results: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["message"] for c in results["checks"] if c["status"] == "passed"}


def test_every_passed_check_says_what_it_verified_with_numbers(certified: dict[str, Any]) -> None:
    messages = _messages(certified)
    from haicap.conformance.registry import checks_for

    assert set(messages) == {spec.id for spec in checks_for({"units", "submission"})}
    for check_id, message in messages.items():
        assert message and "\n" not in message and re.search(r"\d", message), (check_id, message)
        assert escape(message) in certified["html"], check_id  # the report shows it under the check's title


def test_commune_counts_are_the_official_ones(certified: dict[str, Any]) -> None:
    official = admin_units().communes("01")
    messages = _messages(certified)
    n = len(official)
    assert messages["SUB-05"].startswith(f"{n} of {n} communes of province 01 accepted a submission "
                                         f"({n} dossiers, {n} distinct MaHoSo)"), messages["SUB-05"]
    assert f": {n} declared communes = the {n} official ones" in messages["UNIT-01"], messages["UNIT-01"]
    kinds = {}
    for commune in official:
        kinds[commune.kind] = kinds.get(commune.kind, 0) + 1
    for kind, count in kinds.items():
        assert f"{count} {kind}" in messages["UNIT-01"], (kind, count, messages["UNIT-01"])
    assert f"{n} commune MaCoQuan, {n} distinct" in messages["UNIT-02"], messages["UNIT-02"]


def test_submission_summaries_carry_the_run_figures(certified: dict[str, Any]) -> None:
    messages = _messages(certified)
    units = admin_units()
    # SUB-01: the dossier it created, by its official code, in state 1
    assert re.match(r"dossier \d{3}\.\d{2}\.\d{2}\.H26-\d{6}-\d{4} \(MaTTHC 1\.001193, MaXa \d{5}\): HTTP 201",
                    messages["SUB-01"]), messages["SUB-01"]
    assert "TrangThaiHoSo 1" in messages["SUB-01"]
    # SUB-02: the counts add up (variants + malformed = total = sum of the answers by status)
    total, named, malformed = map(int, re.match(r"(\d+) bad inputs \((\d+) schema variants, (\d+) malformed",
                                                messages["SUB-02"]).groups())  # type: ignore[union-attr]
    answered = sum(int(n) for n in re.findall(r"HTTP 4\d\d ×(\d+)", messages["SUB-02"]))
    assert total == named + malformed == answered and named > 0, messages["SUB-02"]
    # SUB-03: 40 submissions, 40 codes, the commune named is a current one
    match = re.match(r"40 concurrent submissions in commune (\d{5}) (.+?): 40 distinct MaHoSo", messages["SUB-03"])
    assert match and units.commune(match.group(1)).name == match.group(2), messages["SUB-03"]
    # SUB-04: each code listed is a pre-merger ward code that is no current commune
    count = int(messages["SUB-04"].split(" of ")[0])
    codes = re.findall(r"\b(\d{5}) ", messages["SUB-04"].split("): ", 1)[1] + " ")
    assert count == len(codes) > 0 and not any(units.is_current_commune(c) for c in codes), messages["SUB-04"]
    # SUB-06: 20 citizens x 10 dossiers
    assert messages["SUB-06"].startswith("200 concurrent submissions by 20 citizens: 200 acknowledged (201), "
                                         "0 refused; all 200 readable"), messages["SUB-06"]


def test_no_secret_in_summaries(certified: dict[str, Any]) -> None:
    for message in _messages(certified).values():
        assert "Bearer" not in message and "token" not in message.lower(), message


# -- reproduce on a skipped / could-not-run record ------------------------------------------------------

FAKE_CHECKS = '''
from haicap.conformance.registry import CheckError, CheckSkipped, check


@check("FUZZ-81", criterion="fuzzing", severity="minor", title="skips", rule="r", detects=("x",))
def skips(ctx):
    raise CheckSkipped("nothing arrived within the SLA for 1 of 4 dossiers", reproduce="GET /_ledger/sync/x")


@check("FUZZ-82", criterion="fuzzing", severity="minor", title="cannot run", rule="r", detects=("x",))
def cannot_run(ctx):
    raise CheckError("restricted by the profile", reproduce="haicap certify --profile p.yaml")


@check("FUZZ-83", criterion="fuzzing", severity="minor", title="passes", rule="r", detects=("x",))
def passes(ctx):
    return "3 of 3 things verified"


@check("FUZZ-84", criterion="fuzzing", severity="minor", title="skips plainly", rule="r", detects=("x",),
       requires=("payment",))
def skips_plainly(ctx):
    raise AssertionError("not reached: the runner skips it")
'''


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory, health_url: str) -> Iterator[dict[str, dict[str, Any]]]:
    """The stand-in checks run as ``haicap certify`` runs the suite (a child pytest), against a health endpoint."""
    folder = tmp_path_factory.mktemp("reproduce")
    (folder / "haicap_fake_evidence.py").write_text(FAKE_CHECKS, encoding="utf-8")
    target = Target(name="test", province_code="01", agency_code="000.00.00.H26",
                    province_url=health_url,
                    national_url="http://127.0.0.1:9", control_token="c", capabilities=frozenset({"fuzzing"}))
    from haicap.conformance.plugin import target_to_json

    (folder / "target.json").write_text(target_to_json(target), encoding="utf-8")
    cmd = [sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance", "-p", "haicap_fake_evidence",
           "-k", "FUZZ-8", "-p", "no:cacheprovider", "-q", "--tb=line", f"--rootdir={folder}",
           f"--haicap-target-file={folder / 'target.json'}", f"--haicap-results={folder / 'records.json'}"]
    done = subprocess.run(cmd, cwd=folder, env=dict(os.environ, PYTHONPATH=str(folder)), capture_output=True,
                          text=True, timeout=120)
    path = folder / "records.json"
    assert path.is_file(), done.stdout + done.stderr
    yield {r["id"]: r for r in json.loads(path.read_text(encoding="utf-8"))}


def test_skipped_record_carries_reproduce_outside_its_message(records: dict[str, dict[str, Any]]) -> None:
    skipped = records["FUZZ-81"]
    assert skipped["status"] == "skipped"
    assert skipped["message"] == "nothing arrived within the SLA for 1 of 4 dossiers"
    assert skipped["reproduce"] == "GET /_ledger/sync/x"


def test_error_record_carries_reproduce(records: dict[str, dict[str, Any]]) -> None:
    error = records["FUZZ-82"]
    assert (error["status"], error["message"], error["reproduce"]) == (
        "error", "restricted by the profile", "haicap certify --profile p.yaml")


def test_passed_and_plain_skip_records(records: dict[str, dict[str, Any]]) -> None:
    assert (records["FUZZ-83"]["status"], records["FUZZ-83"]["message"]) == ("passed", "3 of 3 things verified")
    plain = records["FUZZ-84"]
    assert plain["status"] == "skipped" and "reproduce" not in plain


def test_exceptions_keep_the_message_as_their_text() -> None:
    assert str(CheckSkipped("why", reproduce="how")) == "why"
    assert CheckError("why").reproduce is None


# -- the HTML header: what the profile left out --------------------------------------------------------


def _results(target: dict[str, Any], checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    checks = checks or []
    return {
        "haicap_version": "0", "seed": 0, "started": "s", "finished": "f", "target": target, "checks": checks,
        "summary": {"total": len(checks), "passed": 0, "failed": 0, "skipped": len(checks), "error": 0, "ok": False,
                    "readiness": "not tested"},
        "verdicts": {},
    }


def _target(**over: Any) -> dict[str, Any]:
    base = {"name": "Hà Nội staging", "province": "01", "province_url": "http://p", "embedded_sandbox": False,
            "faults": [], "capabilities": sorted(ALL_CAPABILITIES),
            "communes": {"restricted": False, "official": 126, "covered": 126}}
    return {**base, **over}


def _header(html: str) -> str:
    return html.split("<h2>", 1)[0]


def test_header_names_a_commune_restriction() -> None:
    restricted = {"restricted": True, "official": 126, "covered": 3, "codes": ["00004", "00008", "00025"],
                  "not_covered": 123}
    header = _header(render_readiness_html(_results(_target(communes=restricted))))
    assert "communes: 3/126 (restricted by the profile)" in header


def test_header_is_silent_about_a_full_run() -> None:
    header = _header(render_readiness_html(_results(_target())))
    assert "restricted" not in header and "not declared" not in header


def test_header_lists_the_capabilities_not_declared() -> None:
    header = _header(render_readiness_html(_results(_target(capabilities=["sso", "submission", "units"]))))
    missing = sorted(ALL_CAPABILITIES - {"sso", "submission", "units"})
    assert f"not declared: {', '.join(missing)}" in header
    assert "payment" in missing and "fuzzing" in missing


def test_header_escapes_and_tolerates_old_results() -> None:
    old = {"name": "<b>x</b>", "province": "01", "province_url": "http://p"}  # results written before either key
    html = render_readiness_html(_results(old))
    assert "<b>x</b>" not in html and "not declared" not in _header(html)


def test_skipped_check_shows_how_to_look() -> None:
    check = {"id": "SYNC-02", "criterion": "sync", "status": "skipped", "severity": "critical", "title": "t",
             "rule": "r", "message": "nothing arrived within the SLA", "reproduce": "GET <national>/_ledger/x"}
    html = render_readiness_html(_results(_target(), [check]))
    assert "nothing arrived within the SLA" in html and "GET &lt;national&gt;/_ledger/x" in html


def test_sub05_restricted_by_the_profile_says_how_to_get_a_verdict_as_reproduce(sandbox: Sandbox) -> None:
    from haicap.conformance.checks.submission import commune_coverage
    from haicap.conformance.context import CheckContext

    cfg = sandbox.configs
    target = Target(name="restricted", province_code="01", agency_code="000.00.00.H26",
                    province_url=sandbox.province_url, national_url=sandbox.national_url,
                    control_token=cfg.national.control_token, officer_token=cfg.province.officer_token,
                    communes=("00004", "00008"), embedded=True)
    ctx = CheckContext(target)
    try:
        with pytest.raises(CheckError) as raised:
            commune_coverage(ctx)
    finally:
        ctx.close()
    assert str(raised.value).startswith("not a full pass: the profile's `communes` restricts coverage to 2 of ")
    assert raised.value.reproduce == "haicap certify --profile <profile without `communes`> --only submission"
    assert "haicap certify" not in str(raised.value)
