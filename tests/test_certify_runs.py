"""What a certify run folder claims: never "ready" for a run that verified nothing or only part of the checklist,
re-runs that merge only into results of the same province and seed (results, report and junit), no stale evidence
next to an interrupted run, and a clear error for outputs that cannot be written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from haicap.cli import main
from haicap.conformance.registry import CRITERIA, checks_for
from haicap.reports.junit_merge import merge_junit
from haicap.reports.readiness_html import render_readiness_html
from haicap.reports.results import build_results, write_results

TARGET = {"name": "embedded reference province 01", "province": "01", "province_url": "http://127.0.0.1:1",
          "embedded_sandbox": True, "faults": []}


def _record(spec: Any, status: str, message: str = "") -> dict[str, Any]:
    return {"id": spec.id, "criterion": spec.criterion, "severity": spec.severity, "title": spec.title,
            "rule": spec.rule, "status": status, "message": message}


def _results(statuses: dict[str, str], criteria: set[str] | None = None) -> dict[str, Any]:
    expected = checks_for(criteria)
    records = [_record(spec, statuses.get(spec.id, "passed"), "capability not declared: sso"
                       if statuses.get(spec.id) == "skipped" else "") for spec in expected]
    return build_results(records, expected, target=TARGET, seed=0, started="s", finished="f")


def test_a_run_where_every_check_was_skipped_is_not_ready_and_not_ok(tmp_path: Path) -> None:
    results = _results({spec.id: "skipped" for spec in checks_for(None)})
    assert results["summary"]["ok"] is False and results["summary"]["readiness"] == "not tested"
    assert results["summary"]["exit_code"] == 3
    html = render_readiness_html(results)
    assert ("Readiness report</span> <span class='v not-tested'><span lang='vi'>chưa kiểm tra</span> "
            "<span class='en'>/ not tested</span></span>") in html
    assert "critical</span><br><span class='muted'>capability not declared" in html  # reason apart from severity
    write_results(tmp_path / "results.json", results)  # schema-valid


def test_only_one_criterion_lists_every_criterion_and_is_incomplete() -> None:
    results = _results({}, {"sso"})
    assert results["summary"]["ok"] and results["summary"]["readiness"] == "incomplete"
    assert list(results["verdicts"]) == list(CRITERIA)
    assert {v for k, v in results["verdicts"].items() if k != "sso"} == {"not tested"}
    html = render_readiness_html(results)
    assert "<span class='v incomplete'><span lang='vi'>chưa đầy đủ</span> <span class='en'>/ incomplete" in html
    assert all(label in html for label in CRITERIA.values())
    assert html.count("not run in this run (--only)") == len(CRITERIA) - 1


@pytest.mark.parametrize(("status", "readiness"), [("failed", "not ready"), ("error", "could not run"),
                                                   ("passed", "ready")])
def test_readiness_of_a_full_run(status: str, readiness: str) -> None:
    results = _results({"SSO-03": status})
    assert results["summary"]["readiness"] == readiness
    assert results["summary"]["ok"] is (status == "passed")


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0"
failures="1" skipped="1" tests="3" time="3.0"><testcase classname="test_conformance" name="test_check[SSO-01]"
time="1.0"/><testcase classname="test_conformance" name="test_check[SSO-09]" time="1.0"><failure message="x">x
</failure></testcase><testcase classname="test_conformance" name="test_check[PAY-01]" time="1.0"><skipped
message="capability"/></testcase></testsuite></testsuites>"""

RERUN = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0"
failures="0" skipped="0" tests="1" time="0.5"><testcase classname="test_conformance" name="test_check[SSO-09]"
time="0.5"/></testsuite></testsuites>"""


def test_junit_of_a_rerun_is_merged_into_the_whole_run(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "rerun.xml").write_text(RERUN)
    merge_junit(tmp_path / "junit.xml", tmp_path / "rerun.xml", tmp_path / "junit.xml")
    merged = (tmp_path / "junit.xml").read_text()
    assert 'tests="3"' in merged and 'failures="0"' in merged and 'skipped="1"' in merged and 'time="2.500"' in merged
    assert merged.count("<testcase") == 3 and "<failure" not in merged


def test_an_output_that_is_a_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").mkdir()
    assert main(["certify", "--only", "units", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"haicap: error: cannot write {tmp_path / 'results.json'}: it exists and is "
                                       "not a regular file\n")


def _previous(out: Path, seed: int = 0, faults: list[str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = _results({"SSO-09": "failed"})
    results["seed"] = seed
    results["target"] = {**TARGET, "faults": faults or []}
    write_results(out / "results.json", results)


@pytest.mark.parametrize(("args", "why"), [
    (["--seed", "5"], "was run with --seed 0, not 5"),
    (["--province", "12"], "tested province 01, not 12"),
])
def test_rerun_refuses_another_seed_or_province(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], why: str) -> None:
    _previous(tmp_path)
    assert main(["certify", "--rerun-failed", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert why in err and "run again without --rerun-failed" in err


def test_rerun_with_nothing_failed_in_the_chosen_criteria(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _previous(tmp_path)
    before = (tmp_path / "results.json").read_bytes()
    assert main(["certify", "--rerun-failed", "--only", "units", "--out", str(tmp_path)]) == 1  # SSO-09 still failed
    assert "nothing to re-run: no check failed or errored among units" in capsys.readouterr().out
    assert (tmp_path / "results.json").read_bytes() == before and not (tmp_path / "junit.xml").exists()


@pytest.mark.slow
def test_rerun_merges_results_report_and_junit_and_records_the_rerun(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["certify", "--only", "sso", "--fault", "skips-nonce-check", "--out", str(out)]) == 1
    first_junit = (out / "junit.xml").read_text(encoding="utf-8")
    cases = first_junit.count("<testcase")
    # skips-nonce-check breaks SSO-09 (a wrong nonce) and SSO-14 (no nonce at all)
    assert cases == len(checks_for({"sso"})) and 'failures="2"' in first_junit
    assert 'classname="sso" name="SSO-09 Relying party rejects' in first_junit  # reads like the report
    capsys.readouterr()
    # another fault set would merge results of two different provinces: refused, the results untouched
    before = (out / "results.json").read_bytes()
    assert main(["certify", "--only", "sso", "--rerun-failed", "--out", str(out)]) == 2
    assert "tested the sandbox with faults skips-nonce-check, not none" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before
    assert main(["certify", "--only", "sso", "--rerun-failed", "--fault", "skips-nonce-check", "--out", str(out)]) == 1
    merged = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert merged["target"]["faults"] == ["skips-nonce-check"]
    assert merged["reruns"][0]["checks"] == ["SSO-09", "SSO-14"]
    assert merged["reruns"][0]["faults"] == ["skips-nonce-check"]
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase") == cases and 'failures="2"' in junit and not (out / "junit.rerun.xml").exists()
    assert "re-ran SSO-09, SSO-14" in (out / "report.html").read_text(encoding="utf-8")
    assert len(list((out / "allure-results").glob("*-result.json"))) == cases + 2  # both attempts of each kept


@pytest.mark.slow
def test_an_interrupted_run_keeps_what_it_judged_marked_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _previous(out)
    (out / "report.html").write_text("an old report")
    proc = subprocess.Popen([sys.executable, "-m", "haicap.cli", "certify", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or "national counterpart" in line:
            break
    while time.monotonic() < deadline:  # a few checks were judged
        line = proc.stdout.readline()
        if not line or "SSO-03" in line:
            break
    proc.send_signal(signal.SIGINT)
    printed, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (printed, err)
    assert "Traceback" not in printed + err and "KeyboardInterrupt" not in printed + err
    assert "haicap certify: interrupted (Ctrl-C); " in err and "exit 3: interrupted (Ctrl-C): " in printed
    left = {p.name for p in out.iterdir()}
    assert not left & {"checks.raw.json", "bundle.zip"}, left  # an interrupted run is no evidence to hand in
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    stop = results["interrupted"]
    judged = [c["id"] for c in results["checks"]]
    assert "SSO-03" in judged and stop["judged"] == len(judged) and stop["not_run"]
    assert not set(stop["not_run"]) & set(judged) and len(judged) + len(stop["not_run"]) == stop["selected"]
    assert results["summary"]["exit_code"] == 3 and results["summary"]["readiness"] != "ready"
    assert "Interrupted / Bị dừng" in (out / "report.html").read_text(encoding="utf-8")
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'name="certify run interrupted"' in junit and "an old report" not in junit


def test_a_mistyped_fault_touches_nothing_of_the_previous_run(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _previous(tmp_path)
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "x-result.json").write_text("{}")
    assert main(["certify", "--fault", "skips-nonce-chek", "--out", str(tmp_path)]) == 2
    assert "unknown fault skips-nonce-chek (did you mean skips-nonce-check" in capsys.readouterr().err
    assert (tmp_path / "results.json").exists() and (tmp_path / "allure-results" / "x-result.json").exists()


@pytest.mark.parametrize(("only", "hint"), [("SSO-99", " (did you mean SSO-39, SSO-19, SSO-09?)"),
                                            ("sso-9", " (did you mean SSO-39, SSO-19, SSO-09?)"),
                                            ("ssso", " (did you mean sso?)"), ("speed", "")])
def test_only_names_a_criterion_or_a_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], only: str,
                                           hint: str) -> None:
    assert main(["certify", "--only", only, "--out", str(tmp_path / "run")]) == 2
    assert f"--only {only}{hint}: neither a criterion" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_pytest_that_stopped_is_said_with_the_end_of_its_output(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from haicap.conformance.cli import _pytest_stopped

    (tmp_path / "pytest.log").write_text("ImportError while importing test module\nE   ModuleNotFoundError: x\n")
    _pytest_stopped(2, tmp_path / "pytest.log")
    err = capsys.readouterr().err
    assert "pytest stopped with exit code 2" in err and "  | E   ModuleNotFoundError: x" in err


def test_did_you_mean_names_the_closest_names_or_nothing() -> None:
    from haicap.errors import did_you_mean

    hint = did_you_mean("late_sync", ["late-sync", "duplicate-sync", "no-pkce"])
    assert hint == " (did you mean late-sync, duplicate-sync?)"
    assert did_you_mean("zzzz", ["late-sync"]) == ""


def test_a_new_run_removes_every_output_of_the_previous_one(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _previous(tmp_path)
    for folder in ("allure-results", "operator"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "old.json").write_text("{}")
    assert main(["certify", "--only", "UNIT-02", "--out", str(tmp_path)]) == 0
    console = capsys.readouterr().out  # haicap's own progress lines only: no pytest dots, percentages or summary
    assert "\n  passed   UNIT-02  " in console and "[100%]" not in console and "deselected" not in console
    assert not [line for line in console.splitlines() if line.startswith((".", "F", "s", "E", "="))], console
    assert not (tmp_path / "operator").exists()
    assert not (tmp_path / "allure-results" / "old.json").exists()
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in results["checks"]] == ["UNIT-02"]
    assert results["verdicts"]["units"] == "incomplete"  # UNIT-01 was not selected: never "ready"
    assert results["preflight"]["ok"] and results["summary"]["exit_code"] == 0


def test_a_criterion_with_passes_and_skips_is_incomplete_and_exits_3() -> None:
    some = checks_for({"sso"})
    records = [_record(spec, "skipped" if i == 0 else "passed") for i, spec in enumerate(some)]
    results = build_results(records, some, target=TARGET, seed=0, started="s", finished="f")
    assert results["verdicts"]["sso"] == "incomplete" and results["summary"]["exit_code"] == 3
    allowed = build_results(records, some, target=TARGET, seed=0, started="s", finished="f", allow_incomplete=True)
    assert allowed["summary"]["exit_code"] == 0 and allowed["verdicts"]["sso"] == "incomplete"
    errored = [_record(spec, "error" if i == 0 else "passed") for i, spec in enumerate(some)]
    assert build_results(errored, some, target=TARGET, seed=0, started="s", finished="f")["summary"]["exit_code"] == 3


def test_a_profile_error_on_the_pytest_route_is_one_line(tmp_path: Path, profile_file: Callable[..., Path]) -> None:
    profile = profile_file(credentials=False)
    done = subprocess.run([sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance", "-p",
                           "no:cacheprovider", "--profile", str(profile)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "INTERNALERROR" not in output and "Traceback" not in output, output
    assert f"ERROR: {profile}:1: credentials: is required but missing" in output


def test_a_rerun_of_a_run_stopped_in_its_preflight_is_refused(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from haicap.reports.results import preflight_results

    stopped = {"ok": False, "seconds": 0.1, "probes": [{"name": "province", "status": "failed",
                                                         "field": "province_url", "message": "no answer"}]}
    write_results(tmp_path / "results.json", preflight_results(stopped, target=TARGET, seed=0, started="s",
                                                               finished="f", criteria=None))
    assert main(["certify", "--rerun-failed", "--out", str(tmp_path)]) == 2
    assert "stopped in its pre-flight, no check ran" in capsys.readouterr().err


def test_ctrl_c_before_any_check_is_exit_3_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import haicap.conformance.cli as certify_cli

    def starting(args: Any) -> int:
        raise KeyboardInterrupt  # as while the target starts

    monkeypatch.setattr(certify_cli, "_certify", starting)
    assert main(["certify", "--out", "unused"]) == 3
    assert capsys.readouterr().err.strip() == ("haicap certify: interrupted before any check was judged; no results "
                                               "were written")


def test_an_interrupted_rerun_leaves_the_previous_results(tmp_path: Path) -> None:
    from haicap.conformance.cli import _rerun_interrupted
    from haicap.errors import HaicapError
    from haicap.redaction import Redactor

    (tmp_path / "junit.rerun.xml").write_text("<testsuite/>")
    with pytest.raises(HaicapError, match="the re-run was not merged") as caught:
        _rerun_interrupted(tmp_path, Redactor(()))
    assert caught.value.exit_code == 3 and not (tmp_path / "junit.rerun.xml").exists()


def test_certify_and_verify_help_say_what_each_flag_does_and_the_exit_codes() -> None:
    from haicap.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("certify", "verify"):
        sub = commands[name]
        assert sub.epilog and "exit: 0" in sub.epilog
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings}: no help"
    text = " ".join(commands["certify"].format_help().split())
    assert "interrupted (Ctrl-C)" in text and "haicap profile init" in text and "--list-faults" in text


def test_a_mistyped_haicap_only_on_the_pytest_route_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
                           "haicap.conformance", "--haicap-only", "ssso"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error: nothing deselected in silence
    assert "--haicap-only ssso (did you mean sso?): neither a criterion" in done.stderr


def test_a_rerun_without_previous_results_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "--rerun-failed", "--out", str(tmp_path / "never-run")]) == 2
    assert "no previous results to re-run" in capsys.readouterr().err and not (tmp_path / "never-run").exists()
    (tmp_path / "odd" / "results.json").mkdir(parents=True)
    assert main(["certify", "--rerun-failed", "--out", str(tmp_path / "odd")]) == 2
    assert "results.json: cannot read the previous results: Is a directory" in capsys.readouterr().err


def test_a_missing_signing_key_of_the_profile_names_the_profile_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      profile_file: Callable[..., Path]) -> None:
    monkeypatch.setenv("HAICAP_T_SECRET", "s3cr3t-value-xyz")
    profile = profile_file("signing_key_file: keys/province.pem\n")
    assert main(["certify", "--profile", str(profile), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"haicap: error: {profile}:9: signing_key_file: signing key {tmp_path / 'keys/province.pem'}")
    assert not (tmp_path / "o").exists()


def test_an_unreachable_system_during_a_check_reads_as_such_not_as_an_exception_name() -> None:
    from haicap.conformance.plugin import _record
    from haicap.conformance.registry import all_checks
    from haicap.http_port import TargetUnreachable

    with pytest.raises(TargetUnreachable) as caught:
        raise TargetUnreachable("GET http://127.0.0.1:9/auth/login: ConnectError: [Errno 111] Connection refused")
    record = _record(all_checks()[0], caught, 0.1)
    assert record["status"] == "error"
    assert record["message"] == ("a system under test did not answer: GET http://127.0.0.1:9/auth/login: "
                                 "ConnectError: [Errno 111] Connection refused")
