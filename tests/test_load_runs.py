"""``haicap load`` end to end against the embedded sandbox: the correct province passes, the two load faults
fail a gate, two workers merge, and bad input is refused before anything starts.

Rates are small (2 shared cores): assertions are about gates and integrity, not timings.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from haicap.cli import main

pytestmark = pytest.mark.slow


def _load(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main(["load", "--out", str(out), *args])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == code
    return code, summary


def test_short_cutover_against_the_correct_province_passes(tmp_path: Path, capsys: Any) -> None:
    code, summary = _load(tmp_path, "--shape", "cutover", "--duration", "12", "--set", "peak_rate=2",
                          "--drain", "15")
    printed = capsys.readouterr().out
    assert "compressed 3,000×" in printed and "target" in printed  # compression and progress lines
    assert summary["slo"] == {"passed": True, "breaches": []}, summary["failure_samples"]
    integrity = summary["integrity"]
    assert integrity["accepted"] > 10 and integrity["synced"] == integrity["accepted"] and not integrity["missing"]
    assert code == 0 and summary["passed"]
    assert summary["requests"] > 50 and summary["failures"] == 0
    assert summary["journeys"]["started"] == pytest.approx(summary["rate"]["target"] * 12, abs=1)
    assert any(e["action"] == "sync-outage" for e in summary["shape"]["events"])
    scenarios = summary["scenarios"]
    assert "first-login" in scenarios and "batch-resync" in scenarios  # storm and burst were in the mix
    out = tmp_path / "out"
    series = json.loads((out / "timeseries.json").read_text(encoding="utf-8"))
    assert series["interval_s"] == 1 and len(series["samples"]) >= 12
    # generator CPU is a share of one process over a full interval: never the thousands of percent a
    # sample taken microseconds after psutil's priming call reads as
    cores = os.cpu_count() or 1
    assert all(0 <= s["generator_cpu"] <= 100 * cores for s in series["samples"])
    assert summary["generator"]["cpu_max"] <= 100 * cores and summary["generator"]["kept_up"]
    assert sum(s["achieved_rate"] for s in series["samples"]) == summary["journeys"]["started"]
    stats = (out / "locust_stats.csv").read_text(encoding="utf-8")
    assert "submit dossier" in stats and "officer receive" in stats  # requests named by the journey's steps
    assert (out / "locust.html").stat().st_size > 1000


def test_late_sync_fails_the_gate(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "6", "--set", "rate=2", "--set", "ramp_s=0",
                          "--fault", "late-sync", "--drain", "3")
    assert code == 1 and not summary["passed"]
    late = summary["integrity"]["sync_deadlines"]["late_count"]
    assert late > 0 or summary["integrity"]["missing_count"] > 0
    assert any(b["metric"] == "sync_sla" for b in summary["slo"]["breaches"])


def test_lost_dossiers_fail_the_run(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "spike", "--duration", "8", "--set", "base_rate=2",
                          "--set", "spike_rate=15", "--set", "spike_s=3", "--scenario", "birth-registration",
                          "--fault", "loses-dossiers-under-concurrency", "--drain", "3")
    assert code == 1 and not summary["passed"]
    lost = summary["integrity"]["missing_count"]
    breached = {b["metric"] for b in summary["slo"]["breaches"]}
    assert lost > 0 or "error_rate" in breached
    assert summary["integrity"]["accepted"] > 0


def test_two_workers_merge_into_one_step_run(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "step", "--duration", "8", "--set", "stages=2",
                          "--set", "start_rate=2", "--set", "step_rate=2", "--processes", "2", "--drain", "10")
    assert summary["generator"]["workers"] == 2
    assert summary["integrity"]["accepted"] > 0 and summary["integrity"]["missing"] == []
    assert summary["journeys"]["started"] == 24  # 2/s × 4 s + 4/s × 4 s, split over two workers
    stages = json.loads((tmp_path / "out" / "stages.json").read_text(encoding="utf-8"))
    assert [s["target_rate"] for s in stages["stages"]] == [2, 4]
    assert stages["slo"]["p95_ms"] == 800
    if summary["capacity"] is not None:
        assert (tmp_path / "out" / "capacity.html").exists()
    assert code == (0 if summary["slo"]["passed"] else 1)


def test_unreachable_target_stops_early_and_still_writes_a_summary(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"national_url": f"http://127.0.0.1:{port}", "control_token": "x",
                                 "officer_token": "y"}), "utf-8")
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "5", "--target", f"http://127.0.0.1:{port}",
                          "--credentials", str(creds), "--drain", "0")
    assert code == 2 and summary["stopped_early"].startswith("target unreachable")
    assert summary["requests"] == 0
    assert "stopping early: target unreachable" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--shape", "ramp"], "valid shapes: cutover, soak, spike, step"),
    (["--shape", "soak", "--scenario", "nope"], "valid scenarios: "),
    (["--shape", "soak", "--target", "http://example.org"], "refusing to load example.org: it is not a loopback"),
    (["--shape", "soak", "--target", "http://example.org", "--allow-target", "example.com"], "does not name it"),
    (["--shape", "soak", "--set", "rate"], "--set 'rate': expected KEY=VALUE"),
    (["--shape", "soak", "--set", "rat=3"], "params: Additional properties"),
    (["--shape", "soak", "--fault", "nope"], "valid faults: "),
    ([], "give --shape"),
])
def test_bad_input_is_refused_with_the_reason(tmp_path: Path, capsys: Any, args: list[str], message: str) -> None:
    code = main(["load", "--out", str(tmp_path / "out"), *args])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()
