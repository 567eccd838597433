"""Pre-flight of a certification run: a province wired to another counterpart, unreachable, or holding other
credentials stops the run within 20 s with exit 2, one message naming the profile field most likely wrong, and a
results.json/report.html that say so — before any check runs. The correct wiring passes (test_rehearsal.py,
test_certify.py run whole certifications through it)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from haicap.cli import main
from haicap.sandbox.runner import Rehearsal

Edit = Callable[[str], str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    """One rehearsal province for the module, wired to a counterpart at a free port."""
    with Rehearsal.start(f"http://127.0.0.1:{_free_port()}", state_dir=tmp_path_factory.mktemp("rehearsal")) as r:
        yield r


def _certify(rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Edit,
             capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None,
             extra: tuple[str, ...] = ()) -> tuple[int, str, float, dict]:
    for line in rehearsal.env_path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    profile = tmp_path / "profile.yaml"
    profile.write_text(edit(rehearsal.profile_path.read_text(encoding="utf-8")), encoding="utf-8")
    capsys.readouterr()
    t0 = time.monotonic()
    code = main(["certify", "--profile", str(profile), "--out", str(tmp_path / "run"), *extra])
    seconds = time.monotonic() - t0
    err = capsys.readouterr().err
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    return code, err, seconds, results


def _assert_stopped(code: int, err: str, seconds: float, results: dict, field: str, tmp_path: Path) -> None:
    assert code == 2, err
    assert seconds <= 20, f"the pre-flight took {seconds:.1f}s"
    lines = [line for line in err.splitlines() if line.startswith("haicap: error:")]
    assert len(lines) == 1 and f": {field}: " in lines[0], err
    assert results["checks"] == [] and results["summary"]["readiness"] == "could not run"
    assert results["summary"]["exit_code"] == 2 and not results["preflight"]["ok"]
    failed = [p for p in results["preflight"]["probes"] if p["status"] == "failed"]
    assert [p["field"] for p in failed] == [field]
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Pre-flight failed: no check was run" in report and field in report


@contextlib.contextmanager
def _another_identity_provider(url: str) -> Iterator[None]:
    """An identity provider the province is (wrongly) configured with: it serves its own discovery document."""
    issuer = url.rstrip("/")

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                               "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                               "end_session_endpoint": f"{issuer}/logout"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    host, _, port = issuer[len("http://"):].rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("idp", ["is down", "answers"])  # down first: the province then caches what answered
def test_a_province_wired_to_another_counterpart_names_national_public_url(
        rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], idp: str) -> None:
    wired = rehearsal.config.national_url
    other = f"http://127.0.0.1:{_free_port()}"
    with _another_identity_provider(wired) if idp == "answers" else contextlib.nullcontext():
        code, err, seconds, results = _certify(rehearsal, tmp_path, monkeypatch,
                                               lambda t: t.replace(wired, other).replace(wired[7:], other[7:]), capsys)
    _assert_stopped(code, err, seconds, results, "national.public_url", tmp_path)
    if idp == "answers":
        assert f"the province redirects to {wired}/authorize, this counterpart is {other}/authorize" in err
    else:
        assert f"the province cannot reach the identity provider it is configured with, which must be {other}" in err


def test_an_unreachable_province_is_one_message_naming_province_url(
        rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"http://127.0.0.1:{_free_port()}"
    code, err, seconds, results = _certify(rehearsal, tmp_path, monkeypatch,
                                           lambda t: t.replace(f"province_url: {rehearsal.province_url}",
                                                               f"province_url: {nowhere}"), capsys)
    _assert_stopped(code, err, seconds, results, "province_url", tmp_path)
    assert f"the province does not answer at {nowhere}" in err


@pytest.mark.parametrize(("key", "field"), [("client_id", "credentials.oidc_client_id"),
                                            ("redirect_uri", "credentials.oidc_redirect_uri")])
def test_another_registration_names_the_credential(rehearsal: Rehearsal, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                   key: str, field: str) -> None:
    def edit(text: str) -> str:
        if key == "client_id":
            return text.replace("oidc_client_id: province-01", "oidc_client_id: province-01-old")
        return text.replace("/auth/callback", "/auth/callback-old")

    code, err, seconds, results = _certify(rehearsal, tmp_path, monkeypatch, edit, capsys)
    _assert_stopped(code, err, seconds, results, field, tmp_path)
    assert f"the province sends {key}=" in err


def test_a_forward_token_the_province_refuses_names_forward_token_env(
        rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, err, seconds, results = _certify(rehearsal, tmp_path, monkeypatch, lambda t: t, capsys,
                                           env={"HAICAP_REHEARSAL_FORWARD_TOKEN": "not-the-token"})
    _assert_stopped(code, err, seconds, results, "credentials.forward_token_env", tmp_path)
    assert "not-the-token" not in err  # a secret stays out of the output
    assert "HTTP 401" in err


def test_only_declared_capabilities_are_probed(rehearsal: Rehearsal, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong forward token, but forwarding is not declared: the pre-flight passes (the run goes on)."""
    def edit(text: str) -> str:
        return text.replace("capabilities: [", "capabilities: [units] # [")

    monkeypatch.setenv("HAICAP_REHEARSAL_FORWARD_TOKEN", "not-the-token")
    code, _, _, results = _certify(rehearsal, tmp_path, monkeypatch, edit, capsys,
                                   env={"HAICAP_REHEARSAL_FORWARD_TOKEN": "not-the-token"}, extra=("--only", "units"))
    probes = {p["name"]: p["status"] for p in results["preflight"]["probes"]}
    assert probes == {"province": "passed", "counterpart": "passed", "sso": "skipped", "sync": "skipped",
                      "payment": "skipped", "forwarding": "skipped"}
    assert results["preflight"]["ok"] and code == 0, results["checks"]
    assert os.environ["HAICAP_REHEARSAL_FORWARD_TOKEN"] == "not-the-token"


def test_refused_sync_logins_are_named_once_after_the_run(rehearsal: Rehearsal, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The province logs in to sync only when it has something to send: the counterpart counts refused logins
    (/_ledger/sync/stats), and a run whose every login was refused says which field, once."""
    code, _, _, results = _certify(rehearsal, tmp_path, monkeypatch, lambda t: t, capsys,
                                   env={"HAICAP_REHEARSAL_SYNC_PASSWORD": "an-old-password"},
                                   extra=("--only", "SYNC-01"))
    assert results["preflight"]["ok"] and code == 3  # could not run: a wiring fault, not a sync defect
    late = results["preflight"]["probes"][-1]
    assert late["name"] == "sync (after the run)" and late["field"] == "credentials.sync_username", late
    sync01 = next(c for c in results["checks"] if c["id"] == "SYNC-01")
    assert sync01["status"] == "error" and "the sync account is miswired" in sync01["message"]
    assert "credentials.sync_password_env" in sync01["message"]
    assert "an-old-password" not in json.dumps(results)


def test_the_pytest_route_runs_the_preflight_too(rehearsal: Rehearsal, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = dict(os.environ)
    for line in rehearsal.env_path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    nowhere = f"http://127.0.0.1:{_free_port()}"
    profile = tmp_path / "profile.yaml"
    profile.write_text(rehearsal.profile_path.read_text(encoding="utf-8").replace(
        f"province_url: {rehearsal.province_url}", f"province_url: {nowhere}"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance", "-p",
                           "no:cacheprovider", "--profile", str(profile)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "INTERNALERROR" not in output, output
    assert f"ERROR: pre-flight failed: province_url: the province does not answer at {nowhere}" in output
