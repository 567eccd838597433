"""The national scoreboard: verified bundles become rows, cells and a totals row; stale and tampered bundles
are marked or refused."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.cli import main
from haicap.conformance.registry import CRITERIA
from haicap.reports.bundle import write_bundle
from haicap.reports.scoreboard import write_board

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def _bundle(folder: Path, province: str, verdicts: dict[str, str], created: dt.datetime,
            key: Ed25519PrivateKey) -> Path:
    run = folder / f"run-{province}-{created:%H%M}"
    run.mkdir(parents=True)
    results = {"target": {"province": province}, "summary": {"readiness": "x"}, "checks": [],
               "verdicts": {c: verdicts.get(c, "ready") for c in CRITERIA}}
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (run / "report.html").write_text(f"<html>{province}</html>", encoding="utf-8")
    return write_bundle(run, key, created=created.isoformat(), out=folder / f"{province}-{created:%H%M}.zip")


def test_rows_cells_totals_stale_and_refused(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    keys = {p: Ed25519PrivateKey.generate() for p in ("01", "79", "11", "12")}
    _bundle(bundles, "01", {}, NOW - dt.timedelta(hours=1), keys["01"])
    _bundle(bundles, "01", {"sync": "not ready"}, NOW - dt.timedelta(days=2), keys["01"])  # older: superseded
    _bundle(bundles, "79", {"payment": "not ready", "sync": "ready with waiver"}, NOW, keys["79"])
    _bundle(bundles, "11", {}, NOW - dt.timedelta(days=40), keys["11"])  # stale
    tampered = _bundle(bundles, "12", {}, NOW, keys["12"])
    with zipfile.ZipFile(tampered) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["report.html"] = b"<html>edited</html>"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    doc = write_board(bundles, tmp_path / "board", now=NOW)
    rows = {r["province"]: r for r in doc["rows"]}
    assert set(rows) == {"01", "11", "79"} and rows["79"]["name"] == "Thành phố Hồ Chí Minh"
    assert rows["01"]["cells"]["sync"] == "ready"  # the newest bundle of a province counts
    assert rows["79"]["cells"]["payment"] == "not ready" and rows["79"]["cells"]["sync"] == "ready with waiver"
    assert rows["11"]["cells"]["sso"] == "stale" and rows["11"]["notes"] == ["stale: older than 30 days"]
    assert doc["totals"]["payment"] == 1 and doc["totals"]["sync"] == 2 and doc["totals"]["sso"] == 2
    refused = doc["rejected"][0]
    assert refused["bundle"].startswith("12-") and "report.html: changed" in refused["problems"][0]
    html = (tmp_path / "board" / "board.html").read_text(encoding="utf-8")
    assert "2 / 34" in html and "href='reports/79.html'" in html
    assert (tmp_path / "board" / "reports" / "79.html").read_text(encoding="utf-8") == "<html>79</html>"
    csv_text = (tmp_path / "board" / "board.csv").read_text(encoding="utf-8")
    assert csv_text.splitlines()[-1].startswith("totals,,,,")


def test_keys_folder_checks_each_signer_and_the_cli_exits_1_on_a_refused_bundle(tmp_path: Path) -> None:
    bundles, keydir = tmp_path / "bundles", tmp_path / "keys"
    bundles.mkdir()
    keydir.mkdir()
    signer, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    _bundle(bundles, "01", {}, dt.datetime.now(dt.UTC), signer)
    (keydir / "01.pub").write_bytes(other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert main(["scoreboard", str(bundles), "--out", str(tmp_path / "b1"), "--keys", str(keydir)]) == 1
    assert main(["scoreboard", str(bundles), "--out", str(tmp_path / "b2")]) == 0


def test_a_sandbox_bundle_is_not_a_province_unless_asked_and_then_marked(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    results = {"target": {"province": "01", "embedded_sandbox": True, "faults": ["skips-nonce-check"]},
               "summary": {"readiness": "x"}, "checks": [], "verdicts": {c: "ready" for c in CRITERIA}}
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    write_bundle(run, Ed25519PrivateKey.generate(), created=NOW.isoformat(), out=bundles / "sandbox.zip")
    doc = write_board(bundles, tmp_path / "b1", now=NOW)
    assert doc["rows"] == [] and "embedded-sandbox run" in doc["rejected"][0]["problems"][0]
    shown = write_board(bundles, tmp_path / "b2", now=NOW, include_sandbox=True)
    assert shown["rows"][0]["notes"] == ["embedded sandbox, faults: skips-nonce-check"]
