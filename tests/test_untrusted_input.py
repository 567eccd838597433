"""Untrusted numbers and URLs: a file or a system under test must never make haicap wait forever or go elsewhere."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from haicap.counterpart_client import CounterpartClient
from haicap.errors import HaicapError
from haicap.http_port import HostNotAllowed, HttpxPort, ensure_allowed_host
from haicap.province_client import ProvinceClient
from haicap.sandbox.server import ThreadServer, bind_socket
from haicap.target import load_profile
from haicap.yaml_source import load_yaml_document


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_yaml_refuses_non_finite_numbers_with_file_line_field(tmp_path: Path, value: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"province: '01'\nsync_sla_seconds: {value}\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"p\.yaml:2: sync_sla_seconds: must be a finite number"):
        load_yaml_document(path)


def test_a_profile_cannot_ask_for_an_endless_sla(profile_file: Callable[..., Path]) -> None:
    with pytest.raises(HaicapError, match="finite number"):
        load_profile(profile_file("sync_sla_seconds: .nan\n"))


@pytest.mark.parametrize("within", [float("nan"), float("inf"), -1.0])
def test_ledger_waits_are_bounded(within: float) -> None:
    with pytest.raises(HaicapError, match="finite number of seconds"):
        CounterpartClient("http://127.0.0.1:9", "token-123456").wait_for_status("X", "1", within)


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_impossible_ports_are_one_line(port: int) -> None:
    with pytest.raises(HaicapError, match=rf"cannot bind 127\.0\.0\.1:{port}: a port is a number from 0 to 65535"):
        bind_socket("127.0.0.1", port)


def test_host_policy() -> None:
    ensure_allowed_host("http://127.0.0.1:8710/authorize", frozenset())
    ensure_allowed_host("/relative/path", frozenset())
    ensure_allowed_host("https://staging.tinh.gov.vn/x", frozenset({"staging.tinh.gov.vn"}))
    with pytest.raises(HostNotAllowed, match=r"refusing to send a request to 192\.0\.2\.10"):
        ensure_allowed_host("http://192.0.2.10:9/authorize?client_id=x", frozenset())


def test_a_redirect_off_loopback_is_never_followed() -> None:
    """A province whose sign-in redirects to another host (e.g. a production IdP) gets no request sent there."""
    hits: list[str] = []
    lock = threading.Lock()

    def login(request):  # type: ignore[no-untyped-def]
        with lock:
            hits.append(request.url.path)
        return RedirectResponse("http://192.0.2.10:9/authorize?state=s", status_code=302)

    app = Starlette(routes=[Route("/auth/login", login), Route("/health", lambda r: JSONResponse({}))])
    with ThreadServer(app, bind_socket("127.0.0.1", 0)) as server:
        client = ProvinceClient(server.url)
        with pytest.raises(HostNotAllowed, match=r"192\.0\.2\.10"):
            client.login("001199012345")
        client.close()
    assert hits == ["/auth/login"]  # the province was asked; nothing went to the other host


def test_an_invalid_location_header_is_the_provinces_answer() -> None:
    def login(request):  # type: ignore[no-untyped-def]
        return JSONResponse({}, status_code=302, headers={"location": ":::not a url"})

    app = Starlette(routes=[Route("/auth/login", login)])
    with ThreadServer(app, bind_socket("127.0.0.1", 0)) as server:
        port = HttpxPort(server.url)
        response = port.request("GET", "/auth/login")
        port.close()
    assert response.status_code == 502 and "invalid Location header" in response.text
