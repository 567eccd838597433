"""The fast lane answers exactly as Starlette's own dispatch does: same status, headers and problem bodies,
for successes, problems, unexpected errors and paths that only look like a hot route."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.sandbox.province.fast_lane import FastLaneStarlette
from haicap.sandbox.province.problems import Problem, json_response, problem_response


async def submit(request: Request) -> Response:
    body = await request.body()
    if body == b"problem":
        raise Problem.field(400, "MaTTHC", "required")
    if body == b"crash":
        raise ValueError("boom")
    return json_response({"echo": body.decode()}, status=201, headers={"Location": "/api/v1/dossiers/X"})


async def get(request: Request) -> Response:
    key = request.path_params["MaHoSo"]
    if key == "missing":
        raise Problem.field(404, "MaHoSo", "no such dossier", "Dossier not found")
    return json_response({"MaHoSo": key})


async def other(request: Request) -> Response:
    return json_response({"other": request.path_params.get("MaHoSo")})


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def on_error(request: Request, exc: Exception) -> Response:
    return problem_response(Problem(500, "Internal error", "the province could not handle this request"))


def make_app(fast: bool) -> FastLaneStarlette:
    routes = [
        Route("/api/v1/dossiers", submit, methods=["POST"]),
        Route("/api/v1/dossiers/{MaHoSo}", get, methods=["GET"]),
        Route("/api/v1/dossiers/{MaHoSo}/payments", other, methods=["GET"]),
    ]
    app = FastLaneStarlette(routes=routes, exception_handlers={Problem: on_problem, Exception: on_error})
    if fast:
        app.fast_lane(post={"/api/v1/dossiers": submit}, get_by_key={"/api/v1/dossiers/": ("MaHoSo", get)},
                      on_error=on_error)
    return app


REQUESTS = [
    ("POST", "/api/v1/dossiers", b"hello"),
    ("POST", "/api/v1/dossiers", b"problem"),
    ("POST", "/api/v1/dossiers", b"crash"),
    ("GET", "/api/v1/dossiers/000.00.00.H26-261122-0001", b""),
    ("GET", "/api/v1/dossiers/missing", b""),
    ("GET", "/api/v1/dossiers/X/payments", b""),
    ("GET", "/api/v1/dossiers/", b""),
    ("HEAD", "/api/v1/dossiers/X", b""),
    ("PUT", "/api/v1/dossiers", b"x"),
]


def answer(app: FastLaneStarlette, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any], bytes]:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://province") as client:
            return await client.request(method, path, content=body)

    response = asyncio.run(call())
    return response.status_code, dict(response.headers), response.content


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_fast_lane_answers_as_starlette_does(method: str, path: str, body: bytes) -> None:
    assert answer(make_app(True), method, path, body) == answer(make_app(False), method, path, body)


def test_fast_lane_takes_only_the_registered_shapes() -> None:
    app = make_app(True)
    def scope(method: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, **extra}

    assert app._match(scope("POST", "/api/v1/dossiers")) is submit
    assert app._match(scope("GET", "/api/v1/dossiers/A")) is get
    assert app._match(scope("GET", "/api/v1/dossiers/A/payments")) is None
    assert app._match(scope("GET", "/api/v1/dossiers/")) is None
    assert app._match(scope("POST", "/api/v1/dossiers", root_path="/p")) is None
    assert make_app(False)._match(scope("POST", "/api/v1/dossiers")) is None


def test_an_unexpected_error_is_answered_then_raised_for_the_server_log() -> None:
    async def call() -> tuple[list[dict[str, Any]], BaseException | None]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"crash", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/v1/dossiers", "headers": [], "query_string": b"",
                 "root_path": "", "scheme": "http", "server": ("province", 80)}
        try:
            await make_app(True)(scope, receive, send)
        except ValueError as exc:
            return sent, exc
        return sent, None

    sent, raised = asyncio.run(call())
    assert isinstance(raised, ValueError)
    assert sent[0]["status"] == 500 and b"Internal error" in sent[1]["body"]
