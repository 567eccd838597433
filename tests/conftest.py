"""Shared fixtures: the embedded sandbox, started on free loopback ports; the national counterpart alone; a
health-only province stand-in.

``sandbox`` is one correct sandbox for the whole session (reset nothing; tests use fresh data).
``start_sandbox(faults=...)`` starts a dedicated one, stopped at the end of the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from haicap.sandbox.national.testing import RecordingProvince, RunningNational, serve_national
from haicap.sandbox.runner import Sandbox


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def health_url() -> Iterator[str]:
    """A province stand-in that only answers its health probe (for stand-in checks run through the plugin)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox.start() as running:
        yield running


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(**kwargs: object) -> Sandbox:
        running = Sandbox.start(**kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# -- the national counterpart alone (tests of the national side), with a recording fake province -------

@pytest.fixture(scope="module")
def province() -> Iterator[RecordingProvince]:
    with RecordingProvince.serve() as running:
        yield running


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory, province: RecordingProvince) -> Iterator[RunningNational]:
    with serve_national(Path(tmp_path_factory.mktemp("national")), province.url) as running:
        province.secret = running.configs.national.payment_partners[0].secret
        yield running


@pytest.fixture(scope="module")
def client(national: RunningNational) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=national.url, timeout=10) as http:
        yield http
