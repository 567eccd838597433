"""The signed certification bundle: intact verifies; a changed byte in any member, a missing or extra member, a
changed manifest or signature, or another signer fails naming what does not match."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.cli import main
from haicap.reports.bundle import key_id, verify_bundle, write_bundle

RESULTS = {"target": {"province": "01"}, "summary": {"readiness": "ready"}, "checks": []}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "allure-results").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(RESULTS), encoding="utf-8")
    (run / "report.html").write_text("<html>ready</html>", encoding="utf-8")
    (run / "junit.xml").write_text("<testsuites/>", encoding="utf-8")
    (run / "allure-results" / "a-result.json").write_text("{}", encoding="utf-8")
    return run


def _rewrite(bundle: Path, change: dict[str, bytes | None]) -> None:
    """Rewrite the zip with some members replaced (bytes) or removed (None); others kept as they are."""
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def test_an_intact_bundle_verifies_with_and_without_the_trusted_key(run_dir: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = write_bundle(run_dir, key, profile={"name": "x", "credentials": {"oidc_client_id": "c"}},
                          created="2026-12-02T08:00:00+07:00")
    problems, info = verify_bundle(bundle, key.public_key())
    assert problems == [] and info is not None
    assert (info.province, info.readiness, info.key_id) == ("01", "ready", key_id(key.public_key()))
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
    assert {"results.json", "report.html", "junit.xml", "allure-results/a-result.json", "profile.redacted.json",
            "versions.json", "manifest.json", "manifest.sig", "signer.pub"} == names
    versions = json.loads(zipfile.ZipFile(bundle).read("versions.json"))
    assert versions["contracts_sha256"] and "SSO-01" in versions["checks"]


@pytest.mark.parametrize("member", ["results.json", "report.html", "junit.xml", "allure-results/a-result.json",
                                    "versions.json"])
def test_one_changed_byte_of_any_member_is_named(run_dir: Path, member: str) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = write_bundle(run_dir, key, created="t")
    _rewrite(bundle, {member: _flip(zipfile.ZipFile(bundle).read(member))})
    problems, _ = verify_bundle(bundle, key.public_key())
    assert len(problems) == 1 and problems[0].startswith(f"{member}: changed"), problems


def test_missing_extra_manifest_signature_and_signer(run_dir: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = write_bundle(run_dir, key, created="t")
    pristine = tmp_path / "pristine.zip"
    shutil.copy(bundle, pristine)

    def problems_after(change: dict[str, bytes | None], trusted: bool = True) -> list[str]:
        shutil.copy(pristine, bundle)
        _rewrite(bundle, change)
        return verify_bundle(bundle, key.public_key() if trusted else None)[0]

    assert problems_after({"junit.xml": None}) == ["junit.xml: listed in the manifest but missing from the bundle"]
    assert problems_after({"notes.txt": b"added"}) == ["notes.txt: in the bundle but not in the manifest "
                                                       "(an extra file)"]
    manifest = zipfile.ZipFile(pristine).read("manifest.json")
    assert problems_after({"manifest.json": manifest.replace(b'"ready"', b'"READY"')})[0].startswith(
        "manifest.json: the signature does not verify")
    other = Ed25519PrivateKey.generate()
    forged = other.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    wrong = problems_after({"signer.pub": forged})
    assert any("signature does not verify" in p for p in wrong) and any("not the trusted key" in p for p in wrong)


def test_a_bundle_signed_by_another_key_fails_against_the_trusted_one(run_dir: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    signer, trusted = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    bundle = write_bundle(run_dir, signer, created="t")
    trust = tmp_path / "trusted.pub"
    trust.write_bytes(trusted.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    assert main(["verify", str(bundle), "--trust", str(trust)]) == 1
    out = capsys.readouterr().out
    assert f"signed by key {key_id(signer.public_key())}, not the trusted key {key_id(trusted.public_key())}" in out
    assert main(["verify", str(bundle)]) == 0
    assert "no --trust given" in capsys.readouterr().out


def test_not_a_bundle_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert main(["verify", str(junk)]) == 2
    assert capsys.readouterr().err.startswith(f"haicap: error: {junk}: not a readable zip")
