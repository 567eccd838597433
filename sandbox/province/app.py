"""The reference province: a correct provincial system (the sandbox's default SUT), with switchable faults.

``create_app(config)`` wires the parts: SSO relying party (:mod:`sso`), citizen dossier API
(:mod:`dossier_api`), officer API (:mod:`officer_api`), payments (:mod:`payments`), forwarded dossiers
(:mod:`forwarded`), units (:mod:`units`), the closed old portal (:mod:`old_portal`), the durable store
(:mod:`store`) and the outbox that syncs every change to the national side (:mod:`outbox`). Routes are documented in
``contracts/province-dossier.openapi.yaml``.

Example::

    app = create_app(configs.province)      # a Starlette app; serve it with uvicorn
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.contract_registry import default_registry
from haicap.sandbox.config import ProvinceConfig
from haicap.sandbox.province.catalogue import Catalogue
from haicap.sandbox.province.civil_status import CivilStatusDossiers
from haicap.sandbox.province.context import ProvinceContext
from haicap.sandbox.province.conversion_export import ConversionExport
from haicap.sandbox.province.document_axis import DocumentAxisProvince
from haicap.sandbox.province.dossier_api import DossierApi
from haicap.sandbox.province.fast_lane import FastLaneStarlette
from haicap.sandbox.province.forwarded import ForwardedDossiers
from haicap.sandbox.province.officer_api import OfficerApi
from haicap.sandbox.province.old_portal import OldPortal
from haicap.sandbox.province.outbox import OutboxDelivery, OutboxPolicy, outbox_counts
from haicap.sandbox.province.payments import Payments
from haicap.sandbox.province.problems import Problem, json_response, problem_response
from haicap.sandbox.province.sessions import SessionStore
from haicap.sandbox.province.signing import result_signer
from haicap.sandbox.province.sso import RelyingParty
from haicap.sandbox.province.store import Store
from haicap.sandbox.province.sync_items import SyncItemBuilder
from haicap.sandbox.province.units import ProvinceUnits

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(config: ProvinceConfig) -> Starlette:
    """The province's ASGI app for ``config`` (state in ``config.state_dir``, faults in ``config.faults``)."""
    registry = default_registry()
    faults = config.faults
    store = Store(config.state_dir / "province.sqlite3")
    ctx = ProvinceContext(
        config=config,
        registry=registry,
        store=store,
        units=ProvinceUnits(config.province_code, config.agency_code, faults),
        catalogue=Catalogue.load(registry, faults),
        sessions=SessionStore(store),
        policy=OutboxPolicy.for_faults(SyncItemBuilder(registry, faults), faults),
        signer=result_signer(config),
    )
    outbox = OutboxDelivery(
        store,
        config.national_url,
        config.sync,
        retry_initial=config.outbox_retry_initial,
        retry_max=config.outbox_retry_max,
        faults=faults,
        poll=0.5 if config.workers == 1 else 0.05,  # other workers' commits wake nobody here: look often
    )
    store.on_commit = outbox.notify
    rp = RelyingParty(config.national_url, config.oidc, ctx.sessions, registry, faults, store=store)
    dossiers = DossierApi(ctx)
    officer = OfficerApi(ctx)
    payments = Payments(ctx, dossiers)
    forwarded = ForwardedDossiers(ctx)
    old_portal = OldPortal(ctx, dossiers)
    civil = CivilStatusDossiers(ctx)
    axis = DocumentAxisProvince(ctx)

    async def health(request: Request) -> Response:
        counts = outbox_counts(store)
        body = {"status": "ok", "outbox_pending": counts["pending"], "outbox_rejected": counts["rejected"]}
        return json_response(body)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store.start()
        outbox.start()
        try:
            yield
        finally:
            await outbox.stop()
            await rp.aclose()
            await payments.aclose()
            await civil.aclose()
            await axis.aclose()
            store.close()
            ctx.sessions.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/auth/login", rp.login, methods=["GET"]),
        Route("/auth/callback", rp.callback, methods=["GET"]),
        Route("/auth/logout", rp.logout, methods=["GET"]),
        Route("/auth/logged-out", rp.logged_out, methods=["GET"]),
        Route("/api/v1/procedures", dossiers.procedures, methods=["GET"]),
        Route("/api/v1/units", dossiers.units, methods=["GET"]),
        Route("/api/v1/dossiers", dossiers.submit, methods=["POST"]),
        Route("/api/v1/dossiers", dossiers.list, methods=["GET"]),
        Route("/api/v1/dossiers/{MaHoSo}", dossiers.get, methods=["GET"]),
        Route("/api/v1/dossiers/{MaHoSo}/supplement", dossiers.supplement, methods=["POST"]),
        Route("/api/v1/dossiers/{MaHoSo}/withdraw", dossiers.withdraw, methods=["POST"]),
        Route("/api/v1/dossiers/{MaHoSo}/payments", payments.start, methods=["POST"]),
        Route("/api/v1/dossiers/{MaHoSo}/payments", payments.list, methods=["GET"]),
        Route("/DvcPayment/Confirm", payments.callback, methods=["POST"]),
        Route("/national/forwarded-dossiers", forwarded.receive, methods=["POST"]),
        Route("/lienthong/dossiers", civil.receive, methods=["POST"]),
        Route("/lienthong/ket-qua", civil.result, methods=["POST"]),
        Route("/api/v1/conversion-export/{side}", ConversionExport(ctx).export, methods=["GET"]),
        Route("/officer/dossiers", officer.list, methods=["GET"]),
        Route("/officer/dossiers/{MaHoSo}", officer.get, methods=["GET"]),
        Route("/officer/dossiers/{MaHoSo}/actions", officer.action, methods=["POST"]),
        *old_portal.routes(),  # the closed provincial portal (redirects to the national portal)
        Route("/axis/edxml", axis.receive, methods=["POST"]),  # the document axis (document_axis.py)
        Route("/axis/status", axis.receive_status, methods=["POST"]),
        Route("/officer/axis/documents", axis.officer_send, methods=["POST"]),
        Route("/officer/axis/documents", axis.officer_document, methods=["GET"]),
        Route("/officer/axis/status", axis.officer_status, methods=["POST"]),
    ]

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        problem = Problem(exc.status_code, title, str(exc.detail), headers=dict(exc.headers or {}))
        return problem_response(problem, request.url.path)

    async def on_error(request: Request, exc: Exception) -> Response:
        log.error("province: unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem_response(Problem(500, "Internal error", "the province could not handle this request"))

    handlers: dict[Any, Any] = {Problem: on_problem, HTTPException: on_http, Exception: on_error}
    app = FastLaneStarlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.fast_lane(  # the load-test hot paths: same endpoints and problem answers, without the generic dispatch
        post={"/api/v1/dossiers": dossiers.submit},
        get_by_key={"/api/v1/dossiers/": ("MaHoSo", dossiers.get)},
        on_error=on_error,
    )
    app.state.ctx = ctx
    app.state.outbox = outbox
    return app
