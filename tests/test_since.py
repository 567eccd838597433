"""certify --since bundle.zip: a verified bundle's passes are carried, what changed (a check's code, the contracts,
haicap's version, the profile fields a criterion reads) and what did not pass re-runs, each with its reason; a
tampered bundle, another province or another fault set is refused with exit 2."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.cli import main
from haicap.conformance.registry import all_checks
from haicap.conformance.since import SinceBundle, plan_delta, profile_changes
from haicap.reports.bundle import versions, write_bundle

CREATED = "2026-12-01T03:00:00+00:00"


def _record(spec: Any, status: str = "passed") -> dict[str, Any]:
    return {"id": spec.id, "criterion": spec.criterion, "severity": spec.severity, "title": spec.title,
            "rule": spec.rule, "status": status, "message": f"{spec.id} {status}"}


def _since(statuses: dict[str, str] | None = None, profile: dict[str, Any] | None = None,
           waived: tuple[str, ...] = (), version: dict[str, Any] | None = None) -> SinceBundle:
    statuses = statuses or {}
    checks = [_record(spec, statuses.get(spec.id, "passed")) for spec in all_checks()]
    results = {"target": {"province": "01", "embedded_sandbox": True, "faults": []}, "seed": 0,
               "checks": checks, "summary": {"readiness": "ready"},
               **({"waivers": {"applied": list(waived)}} if waived else {})}
    return SinceBundle(Path("b.zip"), CREATED, "k", results, version or versions(), profile, None)


def _rerun(delta: dict[str, Any]) -> set[str]:
    return set(delta["rerun"])


def test_unchanged_re_runs_only_what_did_not_pass() -> None:
    ids = [spec.id for spec in all_checks()]
    since = _since({ids[0]: "failed", ids[1]: "error", ids[2]: "skipped", ids[3]: "failed"}, waived=(ids[3],))
    delta = plan_delta(since, all_checks(), versions(), None)
    assert _rerun(delta) == set(ids[:4]) and delta["changes"] == []
    assert delta["checks"][ids[0]]["reasons"] == ["failed in the bundle"]
    assert "reached no verdict (error) in the bundle" in delta["checks"][ids[1]]["reasons"]
    assert "skipped in the bundle" in delta["checks"][ids[2]]["reasons"]
    assert any("waived" in r for r in delta["checks"][ids[3]]["reasons"])
    assert delta["checks"][ids[4]]["rerun"] is False and "carried" in delta["checks"][ids[4]]["reasons"][0]


def test_a_changed_check_hash_re_runs_that_check_only() -> None:
    current = versions()
    old = json.loads(json.dumps(current))
    old["checks"]["SSO-09"] = "0" * 64
    delta = plan_delta(_since(version=old), all_checks(), current, None)
    assert _rerun(delta) == {"SSO-09"}
    assert delta["checks"]["SSO-09"]["reasons"][0].startswith("its code changed (hash 000000000000…")
    assert delta["changes"] == ["the code of 1 check(s) changed or is new: SSO-09"]


def test_another_haicap_version_or_contracts_digest_re_runs_everything() -> None:
    current = versions()
    for key, value in (("haicap", "0.0.1"), ("contracts_sha256", "f" * 64)):
        old = {**current, key: value}
        delta = plan_delta(_since(version=old), all_checks(), current, None)
        assert _rerun(delta) == {spec.id for spec in all_checks()}, key
        assert len(delta["changes"]) == 1, delta["changes"]


def test_shared_code_re_runs_everything_and_a_module_helper_its_module() -> None:
    current = versions()
    shared = plan_delta(_since(version={**current, "shared_sha256": "0" * 64}), all_checks(), current, None)
    assert _rerun(shared) == {spec.id for spec in all_checks()}
    module = next(spec.func.__module__ for spec in all_checks() if spec.id == "PAY-01")
    old = {**current, "check_modules": {**current["check_modules"], module: "0" * 64}}
    delta = plan_delta(_since(version=old), all_checks(), current, None)
    assert _rerun(delta) == {spec.id for spec in all_checks() if spec.func.__module__ == module}
    assert delta["changes"] == [f"the shared code of check module(s) {module.rsplit('.', 1)[-1]} changed"]


def test_profile_fields_are_attributed_to_criteria_or_re_run_everything() -> None:
    before = {"province": "01", "sso_clock_skew_seconds": 5, "province_url": "http://a", "capabilities": ["sso"]}
    skew = plan_delta(_since(profile=before), all_checks(), versions(), {**before, "sso_clock_skew_seconds": 30})
    assert _rerun(skew) == {spec.id for spec in all_checks() if spec.criterion == "sso"}
    assert "profile field sso_clock_skew_seconds changed: read by sso" in skew["changes"]
    named = plan_delta(_since(profile=before), all_checks(), versions(), {**before, "name": "Hà Nội (staging)"})
    assert _rerun(named) == set()
    url = plan_delta(_since(profile=before), all_checks(), versions(), {**before, "province_url": "http://b"})
    assert _rerun(url) == {spec.id for spec in all_checks()}
    assert "reaches every criterion" in url["checks"]["UNIT-01"]["reasons"][0]
    caps = plan_delta(_since(profile=before), all_checks(), versions(), {**before, "capabilities": ["sso", "payment"]})
    assert _rerun(caps) == {spec.id for spec in all_checks()
                            if set(spec.requires) & {"payment", "back_office", "submission_channel"}}


def test_profile_changes_name_nested_fields() -> None:
    assert profile_changes({"credentials": {"a": 1, "b": 2}}, {"credentials": {"a": 1, "c": 2}}) == [
        "credentials.b", "credentials.c"]
    assert profile_changes(None, None) == []


def _resign(bundle: Path, out: Path, change: Any) -> None:
    """A copy of ``bundle`` with its members changed by ``change(members)``, re-signed with a new test key."""
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    run = out.parent / (out.stem + "-run")
    run.mkdir()
    change(members)
    for name in ("results.json", "report.html", "junit.xml"):
        (run / name).write_bytes(members[name])
    profile = json.loads(members["profile.redacted.json"]) if "profile.redacted.json" in members else None
    write_bundle(run, Ed25519PrivateKey.generate(), profile=profile, created=CREATED, out=out)
    with zipfile.ZipFile(out) as zf:  # write_bundle put this haicap's versions.json: put the changed one back
        rebuilt = {n: zf.read(n) for n in zf.namelist()}
    rebuilt["versions.json"] = members["versions.json"]
    _sign(out, rebuilt)


def _sign(out: Path, members: dict[str, bytes]) -> None:
    import base64
    import hashlib

    from haicap.reports.bundle import _pem, _write, key_id

    key = Ed25519PrivateKey.generate()
    evidence = {n: d for n, d in members.items() if n not in ("manifest.json", "manifest.sig", "signer.pub")}
    manifest = json.loads(members["manifest.json"])
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in sorted(evidence.items())}
    manifest["signer"] = key_id(key.public_key())
    raw = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in sorted(evidence.items()):
            _write(zf, name, data)
        _write(zf, "manifest.json", raw)
        _write(zf, "manifest.sig", base64.b64encode(key.sign(raw)) + b"\n")
        _write(zf, "signer.pub", _pem(key.public_key()))


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_since_carries_the_passes_re_runs_failures_and_a_changed_check(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    only = ["--only", "SUB-01", "--only", "UNIT-01", "--fault", "wrong-agency-codes"]
    first = tmp_path / "first"
    assert main(["certify", *only, "--out", str(first)]) == 1
    created = json.loads(zipfile.ZipFile(first / "bundle.zip").read("manifest.json"))["created"]
    delta_run = tmp_path / "delta"
    assert main(["certify", *only, "--since", str(first / "bundle.zip"), "--out", str(delta_run)]) == 1
    results = _results(delta_run)
    by_id = {c["id"]: c for c in results["checks"]}
    assert results["delta"]["rerun"] == ["UNIT-01"] and results["delta"]["carried"] == ["SUB-01"]
    assert by_id["SUB-01"]["carried_from"] == created and "carried_from" not in by_id["UNIT-01"]
    assert results["delta"]["checks"]["UNIT-01"]["reasons"] == ["failed in the bundle"]
    junit = (delta_run / "junit.xml").read_text(encoding="utf-8")
    assert "SUB-01 " in junit and "UNIT-01 " in junit  # the carried case comes from the bundle's junit
    assert main(["verify", str(delta_run / "bundle.zip"), "--trust", str(delta_run / "bundle.pub")]) == 0
    assert "delta since" in (delta_run / "report.html").read_text(encoding="utf-8").lower()

    def bump(members: dict[str, bytes]) -> None:
        version = json.loads(members["versions.json"])
        version["checks"]["SUB-01"] = "0" * 64
        members["versions.json"] = json.dumps(version).encode()

    changed = tmp_path / "changed.zip"
    _resign(first / "bundle.zip", changed, bump)
    again = tmp_path / "again"
    assert main(["certify", *only, "--since", str(changed), "--out", str(again)]) == 1
    assert _results(again)["delta"]["rerun"] == ["SUB-01", "UNIT-01"]
    assert _results(again)["delta"]["checks"]["SUB-01"]["reasons"][0].startswith("its code changed")
    capsys.readouterr()
    assert main(["certify", "--only", "SUB-01", "--since", str(first / "bundle.zip"), "--out",
                 str(tmp_path / "x")]) == 2  # the bundle tested faults wrong-agency-codes, this run none
    assert "faults wrong-agency-codes, not none" in capsys.readouterr().err


def test_a_tampered_bundle_is_refused_before_anything_runs(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    spec = next(s for s in all_checks() if s.id == "SUB-01")
    results = {"haicap_version": "0.1.0", "target": {"province": "01", "embedded_sandbox": True, "faults": []},
               "seed": 0, "started": CREATED, "finished": CREATED, "checks": [_record(spec)],
               "summary": {"total": 1, "passed": 1, "failed": 0, "skipped": 0, "error": 0, "ok": True,
                           "readiness": "incomplete", "exit_code": 0}, "verdicts": {"submission": "incomplete"}}
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    write_bundle(run, Ed25519PrivateKey.generate(), created=CREATED)
    out = tmp_path / "out"
    # nothing changed and SUB-01 passed: no target is started, the check is carried
    assert main(["certify", "--only", "SUB-01", "--since", str(run / "bundle.zip"), "--out", str(out)]) == 0
    assert _results(out)["checks"][0]["carried_from"] == CREATED and _results(out)["delta"]["rerun"] == []
    # the bundle may sit in the run folder it is replaced in: it is read and verified before anything is removed
    assert main(["certify", "--only", "SUB-01", "--since", str(out / "bundle.zip"), "--out", str(out)]) == 0
    assert main(["verify", str(out / "bundle.zip"), "--trust", str(out / "bundle.pub")]) == 0
    assert _results(out)["checks"][0]["carried_from"] == CREATED  # when SUB-01 last really ran
    with zipfile.ZipFile(run / "bundle.zip") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["results.json"] = members["results.json"].replace(b'"passed"', b'"failed"', 1)
    with zipfile.ZipFile(run / "bundle.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    capsys.readouterr()
    assert main(["certify", "--only", "SUB-01", "--since", str(run / "bundle.zip"), "--out",
                 str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "does not verify: results.json: changed" in err and not (tmp_path / "o2").exists()
    assert main(["certify", "--only", "SUB-01", "--province", "12", "--since", str(out / "bundle.zip"),
                 "--out", str(tmp_path / "o3")]) == 2
    assert "tested province 01, not 12" in capsys.readouterr().err


def test_a_bundle_signed_by_another_key_than_the_runs_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from haicap.conformance.since import load_since
    from haicap.errors import HaicapError

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"target": {}, "summary": {}, "checks": []}), encoding="utf-8")
    signer, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_bundle(run, signer, created=CREATED)
    with pytest.raises(HaicapError, match="not the trusted key"):
        load_since(run / "bundle.zip", other.public_key())
    key = tmp_path / "other.pem"
    key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    assert main(["certify", "--since", str(run / "bundle.zip"), "--signing-key", str(key), "--out",
                 str(tmp_path / "o")]) == 2
    assert main(["certify", "--since", str(run / "bundle.zip"), "--rerun-failed", "--out", str(tmp_path / "o")]) == 2
