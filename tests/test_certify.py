"""``haicap certify`` end to end through a province profile: the correct province passes every check, the run
folder holds results.json (schema-valid), report.html, junit.xml and allure results, and no secret the run used
appears in any file or in the output. Also: profile mistakes and an unreachable province.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from haicap.cli import main
from haicap.sandbox.config import OidcClient, PaymentPartner, ProvinceConfig, SyncAccount
from haicap.sandbox.province.old_portal import reference_portal
from haicap.sandbox.runner import PROVINCE_FACTORY
from haicap.sandbox.server import ProcessServer, bind_socket, url_of


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def province_behind_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[str]]]:
    """The reference province alone (no sandbox counterpart): certify must start the national side itself."""
    yield from _province_behind_profile(tmp_path, monkeypatch, frozenset())


@pytest.fixture
def faulty_province_behind_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                   ) -> Iterator[tuple[Path, list[str]]]:
    """The same, with defects whose failures carry requests, tokens and callbacks as evidence."""
    yield from _province_behind_profile(tmp_path, monkeypatch, frozenset(
        {"skips-nonce-check", "ignores-callback-checksum", "sync-missing-fields", "500-on-malformed-input"}))


def _province_behind_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             faults: frozenset[str]) -> Iterator[tuple[Path, list[str]]]:
    national_port = _free_port()
    national_url = f"http://127.0.0.1:{national_port}"
    sock = bind_socket("127.0.0.1", 0)
    province_url = url_of(sock)
    values = {name: secrets.token_urlsafe(24) for name in
              ("HAICAP_T_OIDC", "HAICAP_T_PAY", "HAICAP_T_SYNC", "HAICAP_T_FWD", "HAICAP_T_OFFICER")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    config = ProvinceConfig(
        public_url=province_url, national_url=national_url, province_code="01", agency_code="000.00.00.H26",
        state_dir=tmp_path / "province",
        oidc=OidcClient("province-01", values["HAICAP_T_OIDC"], f"{province_url}/auth/callback",
                        f"{province_url}/auth/logged-out"),
        payment=PaymentPartner("DVC01", values["HAICAP_T_PAY"], f"{province_url}/DvcPayment/Confirm"),
        sync=SyncAccount("000.00.00.H26", "sync-01", values["HAICAP_T_SYNC"]),
        forward_token=values["HAICAP_T_FWD"], officer_token=values["HAICAP_T_OFFICER"], faults=faults,
    )
    config.state_dir.mkdir(parents=True)
    # a second instance configured against the counterpart's /mixup issuer (SSO-30: it must refuse its discovery)
    mixup_sock = bind_socket("127.0.0.1", 0)
    mixup = dataclasses.replace(config, public_url=url_of(mixup_sock), national_url=f"{national_url}/mixup",
                                state_dir=tmp_path / "province-mixup")
    mixup.state_dir.mkdir(parents=True)
    # the province's closed old portal (its /portal pages), declared as a province would: old URLs → NPSP
    portal = json.dumps(reference_portal(province_url, national_url).to_profile(), ensure_ascii=False)
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""\
name: Hà Nội staging (test)
province: "01"
agency_code: "000.00.00.H26"
province_url: {province_url}
national:
  listen: 127.0.0.1:{national_port}
  public_url: {national_url}
credentials:
  oidc_client_id: province-01
  oidc_client_secret_env: HAICAP_T_OIDC
  oidc_redirect_uri: {province_url}/auth/callback
  oidc_post_logout_redirect_uri: {province_url}/auth/logged-out
  payment_partner: DVC01
  payment_secret_env: HAICAP_T_PAY
  sync_username: sync-01
  sync_password_env: HAICAP_T_SYNC
  forward_token_env: HAICAP_T_FWD
  officer_token_env: HAICAP_T_OFFICER
sync_sla_seconds: 10
sso_mixup_province_url: {mixup.public_url}
portal: {portal}
conversion: {{}}
signature_trust_anchors: ["{national_url}/ca/root.pem"]
signature_crls: ["{national_url}/ca/crl/sub.der", "{national_url}/ca/crl/root.der"]
""", encoding="utf-8")
    server = ProcessServer(PROVINCE_FACTORY, config, sock, "province")
    mixup_server = ProcessServer(PROVINCE_FACTORY, mixup, mixup_sock, "province-mixup")
    server.start()
    mixup_server.start()
    try:
        yield profile, list(values.values())
    finally:
        mixup_server.stop()
        server.stop()


@pytest.mark.slow
def test_correct_province_passes_every_check_and_no_secret_leaks(
    province_behind_profile: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile, used_secrets = province_behind_profile
    out = tmp_path / "run"
    # a seed other than the default: the counterpart's test citizens differ, and checks must ask it, not guess
    code = main(["certify", "--profile", str(profile), "--out", str(out), "--seed", "7"])
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    not_passed = {c["id"]: (c["status"], c["message"]) for c in results["checks"] if c["status"] != "passed"}
    assert not_passed == {}, f"the correct province must pass every check: {not_passed}"
    assert code == 0 and results["summary"]["ok"]
    assert set(results["verdicts"].values()) == {"ready"}
    for name in ("report.html", "junit.xml"):
        assert (out / name).is_file()
    assert any((out / "allure-results").glob("*-result.json"))
    _assert_no_secret(out, printed, used_secrets)


def _assert_no_secret(out: Path, printed: str, used_secrets: list[str]) -> None:
    for path in [p for p in out.rglob("*") if p.is_file()]:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in used_secrets:
            assert secret not in text, f"a secret leaked into {path.relative_to(out)}"
    for secret in used_secrets:
        assert secret not in printed, "a secret leaked into the output"


@pytest.mark.slow
def test_failing_checks_carry_evidence_but_no_secret(
    faulty_province_behind_profile: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile, used_secrets = faulty_province_behind_profile
    out = tmp_path / "run"
    code = main(["certify", "--profile", str(profile), "--out", str(out),
                 "--only", "sso", "--only", "payment", "--only", "sync", "--only", "fuzzing"])
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    failed = {c["id"] for c in results["checks"] if c["status"] == "failed"}
    assert code == 1 and {"SSO-09", "PAY-02", "SYNC-02", "FUZZ-01"} <= failed, failed
    assert all(c.get("actual") is not None or c.get("reproduce") for c in results["checks"] if c["status"] == "failed")
    _assert_no_secret(out, printed, used_secrets)


def test_profile_with_a_missing_field_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   profile_file: Callable[..., Path]) -> None:
    profile = profile_file(credentials=False)
    assert main(["certify", "--profile", str(profile), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"haicap: error: {profile}:1: credentials: is required but missing"


def test_profile_naming_an_unset_secret_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 profile_file: Callable[..., Path]) -> None:
    monkeypatch.delenv("HAICAP_NOT_SET", raising=False)
    profile = profile_file(secret_env="HAICAP_NOT_SET")
    assert main(["certify", "--profile", str(profile), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"haicap: error: {profile}:7: credentials.oidc_client_secret_env: "
                   "environment variable HAICAP_NOT_SET is not set")


@pytest.mark.slow
def test_unreachable_province_stops_in_the_preflight_with_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HAICAP_T_SECRET", "s3cr3t-value-xyz")
    dead = _free_port()  # nothing listens there
    national = _free_port()
    profile = tmp_path / "p.yaml"
    profile.write_text(
        f"province: '01'\nagency_code: 000.00.00.H26\nprovince_url: http://127.0.0.1:{dead}\n"
        f"national: {{listen: '127.0.0.1:{national}', public_url: 'http://127.0.0.1:{national}'}}\n"
        "credentials:\n  oidc_client_id: c\n  oidc_client_secret_env: HAICAP_T_SECRET\n"
        f"  oidc_redirect_uri: http://127.0.0.1:{dead}/auth/callback\n")
    out = tmp_path / "run"
    t0 = time.monotonic()
    code = main(["certify", "--profile", str(profile), "--out", str(out), "--only", "sso", "--only", "units"])
    seconds = time.monotonic() - t0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert code == 2 and seconds <= 20, (code, seconds)  # could not run, not a broken rule
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("haicap: error:")]
    assert len(errors) == 1 and f"province_url: the province does not answer at http://127.0.0.1:{dead}" in errors[0]
    assert results["checks"] == [] and results["summary"]["readiness"] == "could not run"
    assert {k: v for k, v in results["verdicts"].items() if v != "not tested"} == {"sso": "could not run",
                                                                                   "units": "could not run"}
    assert (out / "report.html").is_file()


def test_unknown_criterion_names_the_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "--only", "speed", "--out", str(tmp_path)]) == 2
    assert "--only speed: neither a criterion (sso, submission" in capsys.readouterr().err


@pytest.mark.slow
def test_rerun_failed_reruns_only_what_failed_and_merges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["certify", "--only", "sso", "--fault", "skips-nonce-check", "--out", str(out)]) == 1
    first = json.loads((out / "results.json").read_text(encoding="utf-8"))
    failed = [c["id"] for c in first["checks"] if c["status"] == "failed"]
    assert failed == ["SSO-09", "SSO-14"]  # skipping the nonce check also accepts a token without nonce
    capsys.readouterr()
    # the same sandbox faults (another set would merge two provinces' results): SSO-09 still fails
    assert main(["certify", "--only", "sso", "--rerun-failed", "--fault", "skips-nonce-check", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    merged = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "SSO-09" in printed and "SSO-03" not in printed  # only the failed check ran again
    assert len(merged["checks"]) == len(first["checks"]) and merged["summary"]["exit_code"] == 1
    assert merged["started"] == first["started"]


@pytest.mark.slow
def test_another_province_with_xdist_workers(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["certify", "--province", "12", "--only", "units", "--only", "submission", "-n", "2",
                 "--out", str(out)])
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert code == 0, [(c["id"], c["message"]) for c in results["checks"] if c["status"] != "passed"]
    assert results["target"]["province"] == "12" and results["target"]["agency_code"].endswith(".H04")
    assert {c["criterion"] for c in results["checks"]} == {"units", "submission"}


def test_unknown_province_names_the_valid_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "--province", "99", "--out", str(tmp_path)]) == 2
    assert "unknown province code '99'; valid codes: 01, 04" in capsys.readouterr().err


def test_a_counterpart_port_haicap_could_not_reach_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               profile_file: Callable[..., Path]) -> None:
    monkeypatch.setenv("HAICAP_T_SECRET", "s3cr3t-value-xyz")
    for port in ("0", "99999"):
        profile = profile_file(listen=f"127.0.0.1:{port}")
        assert main(["certify", "--profile", str(profile), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"haicap: error: {profile}:5: national.listen: port {port} is not a fixed TCP port"), err


def test_the_profile_and_the_waivers_file_are_each_read_once(
    province_behind_profile: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import haicap.target
    import haicap.waivers
    from haicap.yaml_source import load_yaml_document

    profile, _ = province_behind_profile
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - check: UNIT-01\n    province: '01'\n    reason: a slow bank fix\n"
                       "    approver: Nguyễn Văn A\n"
                       "    expires: 2099-12-31\n", encoding="utf-8")
    read: list[str] = []

    def counting(path: Path | str) -> object:
        read.append(Path(path).name)
        return load_yaml_document(path)

    monkeypatch.setattr(haicap.target, "load_yaml_document", counting)
    monkeypatch.setattr(haicap.waivers, "load_yaml_document", counting)
    code = main(["certify", "--profile", str(profile), "--waivers", str(waivers), "--only", "UNIT-02",
                 "--out", str(tmp_path / "run")])
    assert code == 0 and sorted(read) == sorted([profile.name, waivers.name]), read
