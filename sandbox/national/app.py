"""The national counterpart as one ASGI app: identity provider, sync receiver, payment platform, forwarder, the
civil-status interconnection side (civil_status.py) and the document axis (axis.py).

``create_app(config)`` assembles the parts (each in its own module) on one SQLite store under
``config.state_dir``, mounts the control and ledger APIs behind ``config.control_token`` (Bearer), renders
every error as problem+json (never a traceback) and closes the store and the outgoing HTTP client on shutdown.

Several worker processes may serve one counterpart on its one socket (``--national-workers N``, as the reference
province does with ``--province-workers``): the kernel hands each connection to any of them, so no part keeps in
its own memory what another worker needs. Each worker builds its own :class:`National` from the same config; what
they share lives in one of two places, both scoped to the run (``config.instance``):

- **the store** (``store.py``, one SQLite file, one cross-process write lock): anything written by a request and
  read or consumed by a later one. The identity provider's codes (consumed by ``DELETE ... RETURNING`` in the
  writer, so a code sent to two workers is redeemed once), used codes, access tokens, pending (targeted) defects,
  signing keys (generated once, in the writer, by the first worker of the run, which also empties the previous
  run's shared tables, :data:`~.store.SHARED_TABLES`) and rotated keys; the sync sessions; the payment
  transactions (opened and settled in the writer); the forwarder's sequence (a counter allocated in the writer).
  A write that a response depends on is awaited (``store.write``) before answering; reads on the hot path are
  primary-key lookups on the worker's own read connection (``store.read_now``).
- **shared cells** (``shared_cells.py``, a memory-mapped file of eight-byte cells): anything read on every
  request: the outage deadlines the control API sets, and generation counters that tell a worker a cache of its
  own is stale (sync sessions after ``expire-sessions``, the JWKS after a rotation).

A new part follows the same rule: its tables go into ``SHARED_SCHEMA`` (and ``SHARED_TABLES`` when they must not
outlive the run), consumed or updated in one writer op; a cache of its own is allowed only behind a generation
cell (take the next free cell number in ``shared_cells.py``); and a multi-worker test in
``tests/test_national_workers.py`` (its module-scoped 2-worker counterpart pins a request to one worker).
Not yet shared: the civil-status side (``civil_status.py``), the document axis (``axis.py``) and the signatures'
test CA (``test_ca.py``, whose keys each worker would make on its own) keep their state in their process, so they
are correct with one worker only; ``haicap load`` refuses a journey that needs one of them with
``--national-workers`` above 1 (``PER_PROCESS_PARTS`` in loadtests/run.py), and certify runs one worker.
With one worker (and for a bare ``create_app`` without ``config.instance``: cells in anonymous memory) the
behaviour is the same; the cost per sign-on is measured by ``benchmarks/bench_counterpart.py``.

Example::

    app = create_app(configs.national)
    with ThreadServer(app, bind_socket("127.0.0.1", 0)) as server:
        httpx.get(server.url + "/health")
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from haicap.sandbox.config import NationalConfig
from haicap.sandbox.national.axis import DocumentAxis
from haicap.sandbox.national.citizens import CitizenRegistry
from haicap.sandbox.national.civil_status import CivilStatusSide
from haicap.sandbox.national.control import ControlApi
from haicap.sandbox.national.forwarder import Forwarder
from haicap.sandbox.national.ledger import LedgerApi
from haicap.sandbox.national.oidc_provider import OidcProvider
from haicap.sandbox.national.outage import Outages
from haicap.sandbox.national.payment_platform import PaymentPlatform
from haicap.sandbox.national.problems import JSONResponse, ProblemError, problem_response
from haicap.sandbox.national.shared_cells import SharedCells
from haicap.sandbox.national.store import Store
from haicap.sandbox.national.sync_receiver import SyncReceiver
from haicap.sandbox.national.test_ca import CaApi, TestCA

__all__ = ["National", "create_app"]

OUTGOING_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

Endpoint = Callable[[Request], Awaitable[Response]]


class National:
    """The assembled parts of one counterpart (``app.state.national``), for tests and embedding."""

    def __init__(self, config: NationalConfig) -> None:
        self.config = config
        self.store = Store(config.state_dir / "national.sqlite3")
        #: the run every worker of this counterpart shares (none given: this instance alone is the run)
        self.instance = config.instance or secrets.token_hex(8)
        self.cells = SharedCells(config.state_dir / f"shared-{config.instance}.cells" if config.instance else None)
        self.outages = Outages(self.cells)
        self.citizens = CitizenRegistry(config.seed, [p.province_code for p in config.provinces])
        self._client: httpx.AsyncClient | None = None
        self.oidc = OidcProvider(config, self.citizens, self.store, self.outages, self.cells, self.instance)
        self.sync = SyncReceiver(config, self.store, self.outages, self.cells)
        self.payments = PaymentPlatform(config, self.store, self.outages, self.http)
        self.forwarder = Forwarder(config, self.store, self.citizens, self.http)
        self.civil = CivilStatusSide(config, self.http)
        self.control = ControlApi(self.oidc, self.payments, self.forwarder, self.sync, self.outages)
        self.ledger = LedgerApi(self.store, self.citizens)
        self.axis = DocumentAxis(config, self.http)
        self.ca = CaApi(TestCA(config.public_url))  # the specialised-signature test CA: keys made per run

    async def http(self) -> httpx.AsyncClient:
        """The outgoing client (callbacks, forwarding), created on first use in the serving loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=OUTGOING_TIMEOUT, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.store.close()


def _guarded(endpoint: Endpoint, token: str) -> Endpoint:
    expected = f"Bearer {token}".encode()

    async def guarded(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            raise ProblemError(401, "Unauthorized", "the control token is required (Authorization: Bearer ...)",
                               [{"field": "Authorization", "message": "missing or wrong control token"}],
                               headers={"WWW-Authenticate": 'Bearer realm="haicap-control"'})
        return await endpoint(request)

    return guarded


def _guard(routes: list[Route], token: str) -> list[BaseRoute]:
    return [Route(r.path, _guarded(r.endpoint, token), methods=sorted(r.methods or [])) for r in routes]


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.title, exc.detail, exc.errors, exc.headers, instance=request.url.path)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(exc.status_code, _title(exc.status_code), exc.detail, headers=exc.headers,
                            instance=request.url.path)


async def _on_error(request: Request, exc: Exception) -> Response:
    return problem_response(500, "Internal Server Error", f"unexpected {type(exc).__name__}",
                            instance=request.url.path)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def create_app(config: NationalConfig) -> Starlette:
    """The national counterpart for ``config`` (its state in ``config.state_dir``)."""
    national = National(config)
    routes: list[BaseRoute] = [Route("/health", _health, methods=["GET"])]
    routes += national.oidc.routes + national.sync.routes + national.payments.routes
    routes += _guard(national.control.routes, config.control_token)
    routes += _guard(national.ledger.routes, config.control_token)
    routes += national.civil.routes + _guard(national.civil.control_routes, config.control_token)
    routes += national.axis.routes + _guard(national.axis.control_routes + national.axis.ledger_routes,
                                            config.control_token)
    routes += national.ca.routes + _guard(national.ca.control_routes, config.control_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await national.aclose()

    handlers: dict[Any, Any] = {ProblemError: _on_problem, HTTPException: _on_http, Exception: _on_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.national = national
    return app
