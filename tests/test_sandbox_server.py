"""Serving on loopback: clear errors for ports that cannot be bound, loopback only, TCP_NODELAY-capable sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from haicap.errors import HaicapError
from haicap.sandbox.server import ThreadServer, bind_socket, is_loopback_host


def test_busy_port_is_one_clear_line() -> None:
    taken = bind_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(HaicapError, match=rf"^cannot bind 127\.0\.0\.1:{port}: Address already in use$"):
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()


def test_cli_reports_a_busy_port_and_exits_non_zero() -> None:
    taken = bind_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "haicap.cli", "sandbox", "--national-port", str(port), "--province-port", "0"],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        taken.close()
    assert result.returncode != 0
    assert result.stderr.strip() == f"haicap: error: cannot bind 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org"])
def test_only_loopback_is_served(host: str) -> None:
    assert not is_loopback_host(host)
    with pytest.raises(HaicapError, match="loopback only"):
        bind_socket(host, 0)


def test_loopback_hosts() -> None:
    assert all(is_loopback_host(h) for h in ("127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"))


def test_listening_socket_is_tcp_so_asyncio_disables_nagle() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_thread_server_serves_and_stops() -> None:
    app = Starlette(routes=[Route("/health", lambda request: JSONResponse({"status": "ok"}))])
    sock = bind_socket("127.0.0.1", 0)
    with ThreadServer(app, sock) as server:
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=1)


def test_list_faults_prints_every_fault() -> None:
    from haicap.sandbox.province.faults import FAULTS

    result = subprocess.run([sys.executable, "-m", "haicap.cli", "sandbox", "--list-faults"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for fault_id, fault in FAULTS.items():
        assert fault_id in result.stdout and fault.breaks in result.stdout


def test_unknown_fault_names_the_closest_or_the_valid_ones() -> None:
    result = subprocess.run([sys.executable, "-m", "haicap.cli", "sandbox", "--selftest", "--fault", "zzzz",
                             "--fault", "late_sync"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown fault late_sync (did you mean late-sync, duplicate-sync?), zzzz; valid faults: listed by " \
           "`haicap sandbox --list-faults`" in result.stderr
    result = subprocess.run([sys.executable, "-m", "haicap.cli", "sandbox", "--selftest", "--fault", "zzzz"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown fault zzzz; valid faults: " in result.stderr and "late-sync" in result.stderr


def test_foreground_sandbox_serves_both_apps_and_stops_on_ctrl_c(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "haicap.cli", "sandbox", "--national-port", "0", "--province-port", "0",
         "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("Press Ctrl-C") for line in lines) and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
        urls = {line.split()[0]: line.split()[2] for line in lines if line.startswith(("national", "reference"))}
        national, province = urls["national"], urls["reference"]
        assert httpx.get(national + "/.well-known/openid-configuration").json()["issuer"] == national
        assert httpx.get(province + "/health").status_code == 200
        credentials = tmp_path / "credentials.json"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        secret = json.loads(credentials.read_text())["control_token"]
        assert secret not in "".join(lines)  # written to the file, never printed
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read()  # type: ignore[union-attr]


def test_server_processes_die_with_a_killed_parent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A sandbox whose parent is SIGKILLed (a CI timeout) leaves no orphan serving its ports."""
    import signal
    import time

    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-m", "haicap.cli", "sandbox", "--national-port", "0", "--province-port", "0",
         "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line or line.startswith("Press Ctrl-C"):
                break
        children = psutil.Process(proc.pid).children()
        assert len(children) >= 2  # the national and the province server processes
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=15)
    for orphan in alive:
        orphan.kill()
    assert alive == []


@pytest.mark.parametrize("kind", ["file", "missing-parent-in-proc"])
def test_an_unusable_state_folder_is_one_line(tmp_path, capsys, kind: str) -> None:  # type: ignore[no-untyped-def]
    from haicap.cli import main

    path = tmp_path / "afile"
    path.write_text("")
    if kind != "file":
        path = Path("/proc/haicap-nope/state")
    assert main(["sandbox", "--state-dir", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"haicap: error: cannot use {path} as the sandbox state folder: ") and err.count("\n") == 1
