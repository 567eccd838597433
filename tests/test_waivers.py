"""Waivers: an active waiver makes a failure 'ready with waiver (until …)', an expired one changes nothing, a
stale one (its check now passes) fails the run; the file's mistakes are one line with file:line:field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from haicap.errors import HaicapError
from haicap.reports.results import readiness, verdicts
from haicap.waivers import Waiver, apply_waivers, load_waivers, today_in_vietnam


def _check(cid: str, criterion: str, status: str) -> dict[str, Any]:
    return {"id": cid, "criterion": criterion, "status": status, "severity": "major", "message": "",
            "title": cid, "rule": "r"}


def _verdicts(records: list[dict[str, Any]]) -> dict[str, str]:
    """The results module's rule, with the registry reduced to the checks of the example."""
    registered: dict[str, set[str]] = {}
    for c in records:
        registered.setdefault(c["criterion"], set()).add(c["id"])
    return verdicts(records, registered)


def _results(*checks: dict[str, Any]) -> dict[str, Any]:
    records = list(checks)
    by = _verdicts(records)
    passed = sum(1 for c in records if c["status"] == "passed")
    failed = sum(1 for c in records if c["status"] == "failed")
    return {"target": {"province": "01"}, "checks": records, "verdicts": by,
            "summary": {"passed": passed, "failed": failed, "error": 0, "skipped": 0, "total": len(records),
                        "ok": failed == 0, "readiness": readiness(by)}}


def _waiver(check: str = "PAY-02", expires: str = "2026-12-31", province: str = "01") -> Waiver:
    return Waiver(check, province, "the bank's checksum fix ships in January", "Nguyễn Văn A, Sở TT&TT",
                  dt.date.fromisoformat(expires), "HCC-123")


def _apply(results: dict[str, Any], waivers: list[Waiver], today: str = "2026-12-02") -> dict[str, Any]:
    return apply_waivers(results, waivers, dt.date.fromisoformat(today), _verdicts, readiness)


def test_an_active_waiver_makes_the_criterion_ready_with_waiver_until_its_expiry() -> None:
    base = _results(_check("PAY-01", "payment", "passed"), _check("PAY-02", "payment", "failed"),
                    _check("SSO-01", "sso", "passed"))
    out = _apply(base, [_waiver()])
    assert out["verdicts"]["payment"] == "ready with waiver" and out["waivers"]["until"] == {"payment": "2026-12-31"}
    assert out["summary"]["ok"] and out["summary"]["waived"] == 1
    record = next(c for c in out["checks"] if c["id"] == "PAY-02")
    assert record["status"] == "failed" and record["waiver"]["state"] == "active"  # the evidence stays


def test_an_expired_waiver_counts_as_not_ready() -> None:
    base = _results(_check("PAY-02", "payment", "failed"))
    out = _apply(base, [_waiver(expires="2026-12-01")])
    assert out["verdicts"]["payment"] == "not ready" and not out["summary"]["ok"]
    assert out["waivers"]["expired"] == ["PAY-02"]
    assert out["checks"][0]["waiver"]["state"] == "expired"


def test_a_waiver_whose_check_now_passes_is_stale_and_fails_the_run() -> None:
    base = _results(_check("PAY-02", "payment", "passed"))
    out = _apply(base, [_waiver()])
    assert out["waivers"]["stale"][0]["check"] == "PAY-02"
    assert not out["summary"]["ok"] and out["summary"]["readiness"] == "not ready"


def test_waivers_of_other_provinces_or_checks_not_run_are_unused() -> None:
    base = _results(_check("PAY-02", "payment", "failed"))
    out = _apply(base, [_waiver(province="79"), _waiver(check="SSO-09")])
    assert out["verdicts"]["payment"] == "not ready" and len(out["waivers"]["unused"]) == 2


def test_an_unwaived_failure_in_the_same_criterion_keeps_it_not_ready() -> None:
    base = _results(_check("PAY-02", "payment", "failed"), _check("PAY-03", "payment", "failed"))
    out = _apply(base, [_waiver()])
    assert out["verdicts"]["payment"] == "not ready" and not out["summary"]["ok"]


def test_the_waivers_file_is_validated_with_file_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "w.yaml"
    good.write_text("waivers:\n  - check: PAY-02\n    province: '01'\n    reason: the bank's fix ships in January\n"
                    "    approver: Nguyễn Văn A\n    expires: 2026-12-31\n    ticket: HCC-1\n", encoding="utf-8")
    (waiver,) = load_waivers(good)
    assert waiver.expires == dt.date(2026, 12, 31) and waiver.ticket == "HCC-1"
    bad = tmp_path / "bad.yaml"
    bad.write_text("waivers:\n  - check: PAY-02\n    province: '01'\n    reason: the bank's fix ships in January\n"
                   "    approver: Nguyễn Văn A\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"bad.yaml:2: waivers\[0\].expires: is required but missing"):
        load_waivers(bad)
    twice = tmp_path / "twice.yaml"
    entry = ("  - check: PAY-02\n    province: '01'\n    reason: the bank's fix ships in January\n"
             "    approver: A B\n    expires: 2026-12-31\n")
    twice.write_text("waivers:\n" + entry + entry, encoding="utf-8")
    with pytest.raises(HaicapError, match="PAY-02 is waived twice for province 01"):
        load_waivers(twice)


def test_days_are_vietnam_days() -> None:
    late_utc = dt.datetime(2026, 12, 31, 18, 30, tzinfo=dt.UTC)  # 01:30 on 1 January in Hà Nội
    assert today_in_vietnam(late_utc) == dt.date(2027, 1, 1)


@pytest.mark.slow
def test_certify_with_a_waiver_is_ready_with_waiver_and_a_stale_one_fails(tmp_path: Path) -> None:
    import json

    from haicap.cli import main

    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - check: PAY-02\n    province: '01'\n    reason: the bank's checksum fix ships "
                       "in January\n    approver: Nguyễn Văn A\n    expires: 2099-12-31\n", encoding="utf-8")
    out = tmp_path / "waived"
    code = main(["certify", "--fault", "ignores-callback-checksum", "--only", "payment", "--waivers", str(waivers),
                 "--out", str(out)])
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["waivers"]["applied"] == ["PAY-02"], results["verdicts"]
    assert results["verdicts"]["payment"] == "ready with waiver" and results["waivers"]["until"] == {
        "payment": "2099-12-31"}
    assert code == results["summary"]["exit_code"] == 0  # every selected check passed or is waived
    assert main(["verify", str(out / "bundle.zip"), "--trust", str(out / "bundle.pub")]) == 0
    stale = tmp_path / "stale"
    assert main(["certify", "--only", "PAY-02", "--waivers", str(waivers), "--out", str(stale)]) == 1
    assert json.loads((stale / "results.json").read_text(encoding="utf-8"))["waivers"]["stale"][0]["check"] == "PAY-02"


def test_a_bad_waivers_file_stops_certify_before_anything_runs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from haicap.cli import main

    bad = tmp_path / "w.yaml"
    bad.write_text("waivers:\n  - check: PAY-2\n", encoding="utf-8")
    assert main(["certify", "--waivers", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "w.yaml:2: waivers[0]." in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_impossible_date_is_one_line_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("waivers:\n  - check: PAY-02\n    province: '01'\n    reason: the fix ships in January\n"
                   "    approver: A B\n    expires: 2026-13-31\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"w.yaml:6: waivers\[0\].expires: '2026-13-31' cannot be read"):
        load_waivers(bad)


def test_an_expired_waiver_of_a_passing_check_is_expired_not_stale() -> None:
    out = _apply(_results(_check("PAY-02", "payment", "passed")), [_waiver(expires="2026-01-01")])
    assert out["waivers"]["stale"] == [] and out["waivers"]["expired"] == ["PAY-02"] and out["summary"]["ok"]


def test_a_waiver_that_changed_nothing_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    from haicap.conformance.cli import _print_unheeded_waivers
    from haicap.waivers import Waiver

    day = dt.date(2020, 1, 1)
    waivers = [Waiver("SSO-09", "01", "vendor fix", "A", day), Waiver("SSO-98", "01", "typo", "A", day),
               Waiver("PAY-02", "12", "other province", "A", day), Waiver("UNIT-01", "01", "not selected", "A", day)]
    info = {"expired": ["SSO-09"], "unused": [w.as_dict() for w in waivers[1:]]}
    _print_unheeded_waivers(info, waivers, Path("w.yaml"), province="01")
    out = capsys.readouterr().out
    assert "expired waiver: SSO-09 (expired 2020-01-01): it waives nothing — renew or remove it in w.yaml" in out
    assert "unused waiver: SSO-98 (province 01): haicap has no check SSO-98 (did you mean SSO-39" in out
    assert "unused waiver: PAY-02 (province 12): it is for province 12, this run tested 01 (w.yaml)" in out
    assert "unused waiver: UNIT-01 (province 01): the check was not selected in this run (w.yaml)" in out
