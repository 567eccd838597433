"""``haicap load compare``: comparability rules, directions and noise floors, and a real regression (late sync)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from haicap.cli import main
from haicap.errors import HaicapError
from haicap.reports.load_compare import Metric, comparable, compare_runs, parse_tolerance


def _summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "haicap_version": "0.1.0", "contracts_sha256": "a" * 64, "passed": True,
        "shape": {"name": "soak", "duration": 6, "params": {"rate": 2}, "selected": []},
        "rate": {"max_rate": 200, "achieved": 2.0}, "requests": 100, "failures": 0,
        "journeys": {"started": 12, "failed": 0}, "latency_ms": {"p50": 10, "p95": 40, "p99": 60},
        "integrity": {"missing_count": 0, "province": {"lost_count": 0}, "sync_deadlines": {"late_count": 0}},
        "slo": {"breaches": []}, "capacity": None, "scenarios": {},
        "target": {"province": "01", "embedded_sandbox": True, "name": "embedded", "faults": []},
    }
    for key, value in changes.items():
        base[key] = value
    return base


def test_directions_and_noise_floors() -> None:
    assert Metric("p95", 40, 44, "lower", 5, 0.1).verdict == "same"          # +4 ms: inside the 5 ms floor
    assert Metric("p95", 40, 46, "lower", 5, 0.1).verdict == "regression"    # +6 ms > max(5, 4)
    assert Metric("p95", 400, 430, "lower", 5, 0.1).verdict == "same"        # +30 ms < 10 % of 400
    assert Metric("rate", 10, 8, "higher", 0.2, 0.1).verdict == "regression"
    assert Metric("rate", 10, 12, "higher", 0.2, 0.1).verdict == "improvement"
    assert Metric("lost", 0, 1, "lower", 0, 0).verdict == "regression"       # no tolerance for data loss
    assert Metric("p95", None, 4, "lower", 5, 0.1).verdict == "not compared"


def test_tolerance_spellings() -> None:
    assert parse_tolerance("10%") == pytest.approx(0.1) and parse_tolerance("0.25") == 0.25
    for bad in ("ten", "-1%", "2000%"):
        with pytest.raises(HaicapError, match="--tolerance"):
            parse_tolerance(bad)


def test_runs_of_another_shape_version_or_contracts_are_refused_with_the_field() -> None:
    base = _summary()
    other = _summary(shape={"name": "soak", "duration": 10, "params": {"rate": 2}, "selected": []})
    assert comparable(base, other) == ["shape duration: BASE 6, NEW 10"]
    assert comparable(base, _summary(contracts_sha256="b" * 64))[0].startswith("contracts digest: BASE")
    assert comparable(base, _summary(haicap_version="0.2.0")) == ['haicap version: BASE "0.1.0", NEW "0.2.0"']
    old = _summary()
    del old["contracts_sha256"]
    assert "made by an older haicap" in comparable(old, base)[0]
    faulty = _summary(target={"province": "01", "embedded_sandbox": True, "name": "embedded", "faults": ["x"]})
    assert comparable(base, faulty) == []  # faults may differ: that is what a comparison is for
    with pytest.raises(HaicapError, match="not comparable — shape duration"):
        compare_runs(base, other)


def test_late_statuses_and_slower_steps_are_regressions() -> None:
    new = copy.deepcopy(_summary())
    new["integrity"]["sync_deadlines"]["late_count"] = 3
    new["latency_ms"]["p95"] = 90
    result = compare_runs(_summary(), new)
    assert result["regressions"] == ["latency p95", "statuses late at the national side"]
    assert compare_runs(_summary(), _summary())["regressed"] is False


@pytest.mark.slow
def test_a_late_sync_run_regresses_against_a_correct_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["load", "--shape", "soak", "--duration", "6", "--set", "rate=2", "--set", "ramp_s=0",
              "--scenario", "birth-registration", "--drain", "8"]
    assert main([*common, "--out", str(tmp_path / "base")]) == 0
    main([*common, "--fault", "late-sync", "--out", str(tmp_path / "new")])
    capsys.readouterr()
    code = main(["load", "compare", str(tmp_path / "base"), str(tmp_path / "new")])
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "new" / "compare.json").read_text(encoding="utf-8"))
    assert code == 1 and result["regressed"], printed
    assert "statuses late at the national side" in result["regressions"]
    assert "REGRESSION" in printed and (tmp_path / "new" / "compare.html").stat().st_size > 2000
    assert main(["load", "compare", str(tmp_path / "base"), str(tmp_path / "base"), "--out",
                 str(tmp_path / "same")]) == 0
