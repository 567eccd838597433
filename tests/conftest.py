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


# -- the smallest valid province profile (tests of profile parsing and of the CLI's early refusals) -----

ProfileFile = Callable[..., Path]


def minimal_profile_text(extra: str = "", *, listen: str | None = None, public_url: str = "http://127.0.0.1:8710",
                         secret_env: str = "HAICAP_T_SECRET", redirect_uri: str = "http://127.0.0.1:9/cb",
                         credentials: bool = True) -> str:
    """The fewest lines a profile needs, then ``extra``.

    The layout is fixed so tests can name line numbers: 1 ``province``, 2 ``province_url``, 3 ``national:``,
    4 ``public_url``, 5 ``listen`` when given; then ``credentials:`` and its three fields, the secret variable's
    line being 7 (8 with ``listen``). ``extra`` starts on line 9 (10 with ``listen``); an indented ``extra``
    continues the credentials block.
    """
    lines = ['province: "01"', "province_url: http://127.0.0.1:9", "national:", f"  public_url: {public_url}"]
    if listen is not None:
        lines.append(f"  listen: {listen}")
    if credentials:
        lines += ["credentials:", "  oidc_client_id: c", f"  oidc_client_secret_env: {secret_env}",
                  f"  oidc_redirect_uri: {redirect_uri}"]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def profile_file(tmp_path: Path) -> ProfileFile:
    """``profile_file(extra="", **fields)`` writes :func:`minimal_profile_text` to ``tmp_path/profile.yaml``."""

    def write(extra: str = "", **fields: Any) -> Path:
        path = tmp_path / "profile.yaml"
        path.write_text(minimal_profile_text(extra, **fields), encoding="utf-8")
        return path

    return write
