"""benchmarks/screenshot_reports.py renders the readiness report and the board in a real (headless) Chromium.
Skipped where no Chromium is installed (CI installs none: `apt-get install -y chromium` to run it)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.conformance.registry import CRITERIA
from haicap.reports.bundle import write_bundle
from haicap.reports.readiness_html import render_readiness_html
from haicap.reports.scoreboard import write_board

_SPEC = importlib.util.spec_from_file_location(
    "screenshot_reports", Path(__file__).resolve().parent.parent / "benchmarks" / "screenshot_reports.py")
assert _SPEC is not None and _SPEC.loader is not None
shots = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(shots)

pytestmark = pytest.mark.skipif(shots.chromium() is None, reason="no chromium installed (apt-get install chromium)")

NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)


def _results() -> dict:
    failed = {"id": "PAY-02", "criterion": "payment", "severity": "critical", "title": "Callback checksum verified",
              "rule": "contracts/payment.yaml", "status": "failed", "message": "2 of 7 callbacks with a wrong "
              "MaXacThuc not refused", "expected": "4xx", "actual": "200"}
    passed = {**failed, "id": "UNIT-01", "criterion": "units", "status": "passed", "message": "126 communes"}
    return {"haicap_version": "x", "target": {"name": "embedded reference province 79", "province": "79"},
            "seed": 0, "started": NOW.isoformat(), "finished": NOW.isoformat(), "checks": [failed, passed],
            "summary": {"readiness": "not ready", "total": 2, "passed": 1, "failed": 1, "error": 0, "skipped": 0},
            "verdicts": {c: "not tested" for c in CRITERIA} | {"payment": "not ready", "units": "incomplete"}}


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_the_report_and_the_board_render_to_pngs(tmp_path: Path) -> None:
    results = _results()
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (run / "report.html").write_text(render_readiness_html(results), encoding="utf-8")
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    write_bundle(run, Ed25519PrivateKey.generate(), created=NOW.isoformat(), out=bundles / "79.zip")
    write_board(bundles, tmp_path / "board", now=NOW)
    report = shots.screenshot(run / "report.html", tmp_path / "report.png", height=1200)
    board = shots.screenshot(tmp_path / "board" / "board.html", tmp_path / "board.png", height=800)
    assert _is_png(report) and _is_png(board)
