"""Helpers to run the national counterpart alone in tests: a served counterpart and a recording province.

``serve_national`` binds a loopback port, builds per-run registrations for a province at ``province_url``
and serves the counterpart in a thread. ``RecordingProvince`` is the smallest province the counterpart can
talk to: it records the payment callbacks and forwarded dossiers it receives and answers like a correct
province (MaLoi "00" only for a callback whose MaXacThuc verifies; 201 for a forwarded dossier).

Example::

    with RecordingProvince.serve() as province, serve_national(tmp_path, province.url) as national:
        httpx.post(national.url + "/_control/forward", headers=national.control_headers())
        assert province.forwarded
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.payment_checksum import verify
from haicap.sandbox.config import SandboxConfigs, build_sandbox_configs
from haicap.sandbox.national.app import National, create_app
from haicap.sandbox.server import ThreadServer, bind_socket, url_of

__all__ = ["RecordingProvince", "RunningNational", "serve_national"]


@dataclass
class RunningNational:
    url: str
    configs: SandboxConfigs
    national: National

    def control_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.configs.national.control_token}"}


@contextlib.contextmanager
def serve_national(state_dir: Path, province_url: str, *, seed: int = 0) -> Iterator[RunningNational]:
    sock = bind_socket("127.0.0.1", 0)
    configs = build_sandbox_configs(url_of(sock), province_url, state_dir, seed=seed)
    app = create_app(configs.national)
    with ThreadServer(app, sock) as server:
        yield RunningNational(server.url, configs, app.state.national)


@dataclass
class RecordingProvince:
    """Records what the counterpart sends; ``secret`` (the partner's) is set once the configs exist."""

    url: str = ""
    secret: str = field(default="", repr=False)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    forwarded: list[tuple[dict[str, str], Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def confirm(request: Request) -> Response:
            body = orjson.loads(await request.body())
            self.callbacks.append(body)
            if not verify(body, self.secret, "CALLBACK"):
                return Response(orjson.dumps({"MaLoi": "97", "MoTaLoi": "checksum"}), 400,
                                media_type="application/json")
            return Response(orjson.dumps({"MaLoi": "00", "MoTaLoi": "ok"}), media_type="application/json")

        async def forwarded(request: Request) -> Response:
            body = orjson.loads(await request.body())
            self.forwarded.append((dict(request.headers), body))
            answer = {"MaHoSo": body.get("MaHoSo"), "TrangThaiHoSo": "1", "acknowledged": True}
            return Response(orjson.dumps(answer), 201, media_type="application/json")

        return Starlette(routes=[Route("/DvcPayment/Confirm", confirm, methods=["POST"]),
                                 Route("/national/forwarded-dossiers", forwarded, methods=["POST"])])

    @classmethod
    @contextlib.contextmanager
    def serve(cls) -> Iterator[RecordingProvince]:
        sock = bind_socket("127.0.0.1", 0)
        province = cls(url=url_of(sock))
        with ThreadServer(province.app(), sock):
            yield province
