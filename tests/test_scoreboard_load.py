"""The scoreboard's load column: a load run's summary carried in the signed bundle (``certify --load-summary``)
becomes knee against the projected peak, headroom and lost dossiers; absent reads "not tested", other contracts
"stale". The fixture is the summary.json of a real short step run (``haicap load --shape step --duration 8
--set stages=2 --set start_rate=2 --set step_rate=2 --drain 10 --projection province=01``)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.cli import main
from haicap.conformance.registry import CRITERIA
from haicap.contract_registry import contracts_digest
from haicap.reports.bundle import verify_bundle, write_bundle
from haicap.reports.scoreboard import LOAD, load_cell, write_board

FIXTURE = Path(__file__).parent / "fixtures" / "load-summary-step-01.json"


def _summary(**changes: Any) -> dict[str, Any]:
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    doc["contracts_sha256"] = contracts_digest()  # recorded against these contracts (kept current on a change)
    for key, value in changes.items():
        doc[key] = value
    return doc


def test_a_step_run_reads_knee_against_the_projected_peak_headroom_and_lost() -> None:
    cell = load_cell(_summary(), contracts_digest())
    assert cell["status"] == "ready" and cell["knee"] == 4.0 and cell["knee_is_lower_bound"]
    assert cell["peak"] == pytest.approx(0.8333, abs=1e-3) and cell["needed"] == pytest.approx(1.0833, abs=1e-3)
    assert cell["text"] == ("knee ≥ 4.00 iterations/s; projected peak 0.83 (1.08 with the margin); "
                            "headroom ≥ +380%; 0 dossier(s) lost")


def test_lost_dossiers_a_low_knee_no_knee_and_other_contracts() -> None:
    lost = _summary()
    lost["integrity"]["province"]["lost_count"] = 2
    assert load_cell(lost, contracts_digest())["status"] == "not ready"
    assert "2 dossier(s) lost" in load_cell(lost, contracts_digest())["text"]
    low = _summary()
    low["capacity"]["peak"]["rate_with_headroom"] = 9.0
    assert load_cell(low, contracts_digest())["status"] == "not ready"
    cutover = _summary(capacity=None)
    assert load_cell(cutover, contracts_digest())["status"] == "incomplete"
    assert "no knee measured (not a step run)" in load_cell(cutover, contracts_digest())["text"]
    stale = load_cell(_summary(contracts_sha256="0" * 64), contracts_digest())
    assert stale["status"] == "stale" and "made against other contracts" in stale["text"]
    assert load_cell([1], contracts_digest())["status"] == "could not run"


def _bundle(folder: Path, province: str, load: dict[str, Any] | None) -> Path:
    run = folder / f"run-{province}"
    run.mkdir(parents=True)
    results = {"target": {"province": province}, "summary": {"readiness": "x"}, "checks": [],
               "verdicts": {c: "ready" for c in CRITERIA}}
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    if load is not None:
        (run / "load-summary.json").write_text(json.dumps(load), encoding="utf-8")
    return write_bundle(run, Ed25519PrivateKey.generate(), created=dt.datetime.now(dt.UTC).isoformat(),
                        out=folder / f"{province}.zip")


def test_the_board_shows_a_load_column_when_a_bundle_carries_one(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    _bundle(bundles, "01", _summary())
    _bundle(bundles, "79", None)
    doc = write_board(bundles, tmp_path / "board")
    rows = {r["province"]: r for r in doc["rows"]}
    assert doc["criteria"][-1] == LOAD and doc["totals"][LOAD] == 1
    assert rows["01"]["cells"][LOAD] == "ready" and rows["79"]["cells"][LOAD] == "not tested"
    html = (tmp_path / "board" / "board.html").read_text(encoding="utf-8")
    assert "headroom ≥ +380%" in html
    without = tmp_path / "only-79"
    without.mkdir()
    _bundle(without, "79", None)
    assert LOAD not in write_board(without, tmp_path / "b2")["criteria"]  # no province ran load: no column


def test_certify_carries_the_load_summary_signed_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(_summary()), encoding="utf-8")
    wrong = copy.deepcopy(_summary())
    wrong["target"]["province"] = "79"
    (tmp_path / "wrong.json").write_text(json.dumps(wrong), encoding="utf-8")
    (tmp_path / "junk.json").write_text('{"passed": true}', encoding="utf-8")
    out = tmp_path / "run"
    certify = ["certify", "--only", "UNIT-01", "--out", str(out), "--load-summary"]
    assert main([*certify, str(tmp_path / "wrong.json")]) == 2  # another province's run
    assert main([*certify, str(tmp_path / "junk.json")]) == 2  # not a load summary
    assert main([*certify, str(summary)]) == 0
    bundle = out / "bundle.zip"
    assert verify_bundle(bundle)[0] == []
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    assert json.loads(members["load-summary.json"])["capacity"]["knee"]["achieved_rate"] == 4.0
    members["load-summary.json"] = members["load-summary.json"].replace(b'"lost_count": 0', b'"lost_count": 9', 1)
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert any(p.startswith("load-summary.json: changed") for p in verify_bundle(bundle)[0])
