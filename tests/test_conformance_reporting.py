"""How the conformance suite reports to pytest, JUnit and Allure: the same verdict as haicap's own results.

A check that fails is a failure whose text is its evidence (message, expected, actual, reproduce, rule, seed) and
no traceback; a check that does not apply is skipped with its reason; a check that could not run is an error
(JUnit ``<error>``, Allure "broken") with a one-line cause; a bug in a check (an unexpected exception) is an
error that keeps its traceback. The suite runs here in a child pytest, as ``haicap certify`` runs it, over five
stand-in checks registered by a small plugin, against a province that is a bare health endpoint (or nothing).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import haicap
from haicap.conformance.plugin import _text_repr, evidence_text, target_to_json
from haicap.conformance.registry import CheckSpec, rule_links
from haicap.target import Target

SECRET = "s3cr3t-in-the-evidence"

#: A pytest plugin module for the child run: five checks, one per outcome (ids FUZZ-91..95, selected with -k).
FAKE_CHECKS = f'''
from haicap.conformance.registry import CheckError, check


def _rule(i):
    return "RFC 9457 §3; DOMAIN.md: stand-in rule " + str(i)


@check("FUZZ-91", criterion="fuzzing", severity="minor", title="passes", rule=_rule(1), detects=("x",))
def passes(ctx):
    pass


@check("FUZZ-92", criterion="fuzzing", severity="critical", title="fails", rule=_rule(2), detects=("x",))
def fails(ctx):
    ctx.fail("the province answered 500 to a malformed body",
             expected={{"status": "4xx", "content-type": "application/problem+json"}},
             actual="HTTP 500 Internal Server Error (token {SECRET})",
             reproduce="POST /api/v1/dossiers {{}}")


@check("FUZZ-93", criterion="fuzzing", severity="major", title="skips", rule=_rule(3), detects=("x",),
       requires=("payment",))
def skips(ctx):
    raise AssertionError("not reached: the runner skips it")


@check("FUZZ-94", criterion="fuzzing", severity="major", title="cannot run", rule=_rule(4), detects=("x",))
def cannot_run(ctx):
    raise CheckError("the counterpart refused the control call: HTTP 503")


def _lookup(record):
    return record["MaHoSo"]


@check("FUZZ-95", criterion="fuzzing", severity="major", title="has a bug", rule=_rule(5), detects=("x",))
def has_a_bug(ctx):
    _lookup({{}})
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """The artifacts of one child pytest run of the suite."""

    def __init__(self, out: Path, stdout: str) -> None:
        self.out = out
        self.stdout = stdout
        self.suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
        assert self.suite is not None
        self.records = {r["id"]: r for r in json.loads((out / "records.json").read_text(encoding="utf-8"))}
        self.allure: dict[str, dict[str, Any]] = {}
        for path in (out / "allure").glob("*-result.json"):
            result = json.loads(path.read_text(encoding="utf-8"))
            self.allure[result["name"].split()[0]] = result

    def case(self, check_id: str) -> ET.Element:
        for case in self.suite.iter("testcase"):  # named like the report: classname = criterion, "FUZZ-92 fails"
            if (case.get("name") or "").startswith(f"{check_id} ") and case.get("classname") == "fuzzing":
                return case
        raise AssertionError(f"no testcase for {check_id}")

    def counts(self) -> dict[str, str | None]:
        return {key: self.suite.get(key) for key in ("tests", "failures", "errors", "skipped")}

    def attachment(self, check_id: str, name: str) -> Any:
        (source,) = [a["source"] for a in self.allure[check_id].get("attachments", []) if a["name"] == name]
        return json.loads((self.out / "allure" / source).read_text(encoding="utf-8"))


def _start_suite(folder: Path, province_url: str) -> tuple[subprocess.Popen[str], Path]:
    folder.mkdir()
    (folder / "haicap_fake_checks.py").write_text(FAKE_CHECKS, encoding="utf-8")
    target = Target(name="test", province_code="01", agency_code="000.00.00.H26", province_url=province_url,
                    national_url=f"http://127.0.0.1:{_free_port()}", control_token="control-token-xyz",
                    capabilities=frozenset({"sso", "fuzzing"}), secret_values=(SECRET,))
    target_file = folder / "target.json"
    target_file.write_text(target_to_json(target), encoding="utf-8")
    out = folder / "out"
    # as haicap certify runs it (conformance/cli.py), with the stand-in checks only
    cmd = [sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance", "-p", "haicap_fake_checks",
           "-k", "FUZZ-9", "-p", "no:cacheprovider", "-q", "--no-header", "--tb=line", "-rN",
           f"--rootdir={folder}", f"--junitxml={out / 'junit.xml'}", f"--alluredir={out / 'allure'}",
           f"--haicap-target-file={target_file}", f"--haicap-results={out / 'records.json'}", "--haicap-seed=7"]
    env = dict(os.environ, PYTHONPATH=str(folder))
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, out


@pytest.fixture(scope="module")
def runs(health_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Two child runs side by side: against a province that answers its health probe, and against nothing."""
    folder = tmp_path_factory.mktemp("reporting")
    started = {"reachable": _start_suite(folder / "reachable", health_url),
               "unreachable": _start_suite(folder / "unreachable", f"http://127.0.0.1:{_free_port()}")}
    done: dict[str, Run] = {}
    for name, (proc, out) in started.items():
        stdout, _ = proc.communicate(timeout=120)
        assert (out / "junit.xml").is_file(), stdout
        done[name] = Run(out, stdout)
    return done


@pytest.fixture(scope="module")
def run(runs: dict[str, Run]) -> Run:
    return runs["reachable"]


def test_junit_counts_agree_with_haicap(run: Run) -> None:
    statuses = {check_id: record["status"] for check_id, record in run.records.items()}
    assert statuses == {"FUZZ-91": "passed", "FUZZ-92": "failed", "FUZZ-93": "skipped", "FUZZ-94": "error",
                        "FUZZ-95": "error"}
    assert run.counts() == {"tests": "5", "failures": "1", "errors": "2", "skipped": "1"}
    assert "1 failed, 1 passed, 1 skipped" in run.stdout and "2 errors" in run.stdout, run.stdout


def test_skipped_check_is_a_pytest_skip_with_its_reason(run: Run) -> None:
    case = run.case("FUZZ-93")
    skipped = case.find("skipped")
    assert skipped is not None and case.find("failure") is None and case.find("error") is None
    assert skipped.get("message") == "capability not declared in the profile: payment"
    assert run.records["FUZZ-93"]["message"] == "capability not declared in the profile: payment"
    assert run.allure["FUZZ-93"]["status"] == "skipped"


def test_check_that_could_not_run_is_an_error_with_a_one_line_cause(run: Run) -> None:
    case = run.case("FUZZ-94")
    error = case.find("error")
    assert error is not None and case.find("failure") is None
    assert error.text == "FUZZ-94 could not run: the counterpart refused the control call: HTTP 503"
    assert run.allure["FUZZ-94"]["status"] == "broken"
    assert run.records["FUZZ-94"]["message"] == "the counterpart refused the control call: HTTP 503"


def test_failure_text_is_the_evidence_without_a_traceback(run: Run) -> None:
    failure = run.case("FUZZ-92").find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message") == "FUZZ-92 failed: the province answered 500 to a malformed body"
    text = failure.text
    for line in ('  expected:  {', '    "status": "4xx",', "  actual:    HTTP 500 Internal Server Error",
                 "  reproduce: POST /api/v1/dossiers {}", "  rule:      RFC 9457 §3; DOMAIN.md", "  seed:      7"):
        assert line in text, text
    assert SECRET not in text and "[REDACTED]" in text
    assert "Traceback" not in text and ".py" not in text
    console = run.stdout
    assert "  reproduce: POST /api/v1/dossiers {}" in console
    assert str(Path(haicap.__file__).parent.parent) not in console, console  # no internal file system paths
    assert "context.py" not in console and "registry.CheckError" not in console


def test_allure_failure_carries_evidence_attachment_and_rule_link(run: Run) -> None:
    result = run.allure["FUZZ-92"]
    assert result["status"] == "failed"
    trace = result["statusDetails"]["trace"]
    assert "  expected:  {" in trace and "  reproduce: POST /api/v1/dossiers {}" in trace and "seed:      7" in trace
    evidence = run.attachment("FUZZ-92", "evidence")
    assert evidence["expected"] == {"status": "4xx", "content-type": "application/problem+json"}
    assert evidence["reproduce"] == "POST /api/v1/dossiers {}" and evidence["seed"] == 7
    assert SECRET not in json.dumps(evidence)
    assert {"type": "link", "url": "https://www.rfc-editor.org/rfc/rfc9457.html#section-3",
            "name": "RFC 9457 §3"} in result["links"]
    assert run.allure["FUZZ-91"]["status"] == "passed"
    assert not run.allure["FUZZ-91"].get("attachments")


def test_bug_in_a_check_keeps_its_traceback(run: Run) -> None:
    error = run.case("FUZZ-95").find("error")
    assert error is not None and error.text is not None
    assert "haicap_fake_checks.py" in error.text and "_lookup" in error.text and "KeyError" in error.text
    assert "haicap_fake_checks.py" in run.stdout and "record[\"MaHoSo\"]" in run.stdout
    assert run.allure["FUZZ-95"]["status"] == "broken"
    assert run.records["FUZZ-95"]["message"] == "KeyError: 'MaHoSo'"


def test_unreachable_province_is_one_short_error_per_check(runs: dict[str, Run]) -> None:
    unreachable = runs["unreachable"]
    assert unreachable.counts() == {"tests": "5", "failures": "0", "errors": "5", "skipped": "0"}
    assert {r["status"] for r in unreachable.records.values()} == {"error"}
    assert {a["status"] for a in unreachable.allure.values()} == {"broken"}
    error = unreachable.case("FUZZ-92").find("error")
    assert error is not None and error.text is not None
    assert error.text.startswith("FUZZ-92 could not run: the province is unreachable: GET http://127.0.0.1:")
    assert "\n" not in error.text
    assert "5 errors" in unreachable.stdout and "failed" not in unreachable.stdout
    assert "Traceback" not in unreachable.stdout and "context.py" not in unreachable.stdout
    assert str(Path(haicap.__file__).parent.parent) not in unreachable.stdout


def test_failure_evidence_survives_xdist_serialization() -> None:
    """pytest-xdist workers send reports as JSON (pytest_report_to_serializable): the evidence must cross intact."""
    longrepr = _text_repr("FUZZ-92 failed: boom\n  expected:  4xx\n  seed:      7", "haicap/x.py", 12,
                          "FUZZ-92 failed: boom")
    report = pytest.TestReport("t.py::test_check[FUZZ-92]", ("t.py", 1, "test_check"), {}, "failed", longrepr, "call")
    received = pytest.TestReport._from_json(report._to_json())
    assert str(received.longrepr) == "FUZZ-92 failed: boom\n  expected:  4xx\n  seed:      7"
    assert received.longrepr.reprcrash.message == "FUZZ-92 failed: boom"  # type: ignore[union-attr]


def test_rule_links_name_public_documents_only() -> None:
    assert rule_links("RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5; OpenID Connect Core 1.0 §3.1.3.2; Decree 45/2020") == [
        ("RFC 6749 §4.1.2, §10.5", "https://www.rfc-editor.org/rfc/rfc6749.html#section-4.1.2"),
        ("RFC 9700 §4.5", "https://www.rfc-editor.org/rfc/rfc9700.html#section-4.5"),
        ("OpenID Connect Core 1.0 §3.1.3.2", "https://openid.net/specs/openid-connect-core-1_0.html"),
    ]
    assert rule_links("see https://example.org/spec#a; DOMAIN.md: MaHoSo") == [
        ("see https://example.org/spec#a", "https://example.org/spec#a")]
    assert rule_links("DOMAIN.md: Online payment (Payment Platform 1.0.6)") == []


def test_evidence_text_is_readable() -> None:
    spec = CheckSpec(id="SYNC-02", criterion="sync", severity="major", title="t", rule="DOMAIN.md: sync",
                     func=lambda ctx: None)
    record = {"message": "an item lacks NgayTiepNhan", "expected": ["MaHoSo", "NgayTiepNhan"],
              "actual": "HTTP 200\nsecond line", "reproduce": None}
    assert evidence_text(spec, record, 3) == (
        "SYNC-02 failed: an item lacks NgayTiepNhan\n"
        "  expected:  [\n"
        '               "MaHoSo",\n'
        '               "NgayTiepNhan"\n'
        "             ]\n"
        "  actual:    HTTP 200\n"
        "             second line\n"
        "  rule:      DOMAIN.md: sync\n"
        "  seed:      3"
    )


def test_every_rule_part_of_every_check_resolves_to_a_document_users_can_open() -> None:
    """Strict, on purpose: a rule text that cites DOMAIN.md, an unknown decree or a missing contract file fails here,
    naming the check and the part (add an entry to contracts/rules/<criterion>.md, or cite a public document)."""
    from haicap.conformance.registry import all_checks

    unresolved = [f"{spec.id}: {part.text!r}: {part.problem}" for spec in all_checks() for part in spec.rule_parts
                  if not part.resolved]
    assert not unresolved, "rule parts that resolve to no document:\n" + "\n".join(unresolved)


def test_rule_parts_resolve_by_kind() -> None:
    from haicap.conformance.registry import resolve_rule

    parts = resolve_rule("RFC 6750 §3.1; contracts/schemas/common.schema.json MaHoSo; Decision 19/2025/QĐ-TTg: codes; "
                         "DOMAIN.md: MaHoSo {agency}-{yyMMdd}; in force from 1 July 2025; nowhere.schema.json; "
                         "Decree 99/2099/NĐ-CP; DOMAIN.md: something unknown", "submission")
    assert [(p.kind, p.target) for p in parts] == [
        ("url", "https://www.rfc-editor.org/rfc/rfc6750.html#section-3.1"),
        ("contract", "contracts/schemas/common.schema.json"),
        ("rules", "contracts/rules/submission.md#decision-19-2025-q-ttg"),
        ("rules", "contracts/rules/submission.md#mahoso"),
        ("qualifier", "contracts/rules/submission.md#mahoso"),
        ("unresolved", ""), ("unresolved", ""), ("unresolved", ""),
    ]
    assert "DOMAIN.md is not shipped" in parts[-1].problem and "99/2099/NĐ-CP" in parts[-2].problem


def test_rules_pages_ship_with_the_package_and_the_report_links_them() -> None:
    from haicap.conformance.registry import CRITERIA, all_checks, contracts_root
    from haicap.reports.readiness_html import render_readiness_html

    for criterion in CRITERIA:
        assert (contracts_root() / "rules" / f"{criterion}.md").is_file(), criterion
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"rules/*.md"' in pyproject
    spec = next(s for s in all_checks() if s.id == "SUB-05")  # cites the national readiness checklist
    record = {"id": spec.id, "criterion": spec.criterion, "severity": spec.severity, "title": spec.title,
              "rule": spec.rule, "status": "passed", "message": "ok"}
    results = {"target": {"name": "t", "province": "01"}, "summary": {"readiness": "incomplete", "total": 1,
               "passed": 1, "failed": 0, "error": 0, "skipped": 0}, "verdicts": {}, "checks": [record],
               "haicap_version": "x", "seed": 0, "started": "s", "finished": "f"}
    html = render_readiness_html(results)
    assert "contracts/rules/submission.md#national-readiness-checklist" in html
    assert (contracts_root() / "rules" / "submission.md").as_uri() in html


def test_the_core_imports_no_sandbox() -> None:
    """The embedded target and the counterpart come through haicap.target.embedded_provider (entry point
    haicap.targets), the expected fee from contracts/procedures.yaml: haicap/ and conformance/ never import
    haicap.sandbox (the CLI only names its sub-command module)."""
    import ast

    root = Path(__file__).resolve().parent.parent
    found = []
    for folder in ("haicap", "conformance", "reports"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names
                          if n.startswith("haicap.sandbox")]
    assert found == []


def test_one_table_of_criteria_and_capabilities() -> None:
    from haicap.conformance.registry import CRITERIA as registry_criteria
    from haicap.criteria import CAPABILITIES, CRITERIA
    from haicap.target import PROFILE_SCHEMA, profile_schema

    assert registry_criteria is CRITERIA
    on_disk = json.loads(PROFILE_SCHEMA.read_text(encoding="utf-8"))["properties"]["capabilities"]["items"]["enum"]
    assert profile_schema()["properties"]["capabilities"]["items"]["enum"] == list(CAPABILITIES)
    assert sorted(on_disk) == sorted(CAPABILITIES)  # the file's enum, for editors: the table is what is checked


def test_a_skip_for_a_derived_capability_says_how_to_get_it() -> None:
    from haicap.conformance.test_conformance import skip_reason

    assert skip_reason(["payment"]) == "capability not declared in the profile: payment"
    said = skip_reason(["signatures", "back_office"])
    assert said.startswith("capability not declared in the profile: signatures; no back office")
    assert "officer_api" in said and "back_office section" in said and "capability" not in said.split(";")[1]
