"""The control API (haicap extension, control token required): make the national side misbehave on purpose.

Certification needs a counterpart that can be bad in named ways: the next ID tokens (of anyone, or of the
one citizen named by ``login_hint``) carry a defect, the last payment callback is replayed or tampered with,
a dossier is forwarded, the national services go down for a while, sync sessions expire. Request bodies are
validated against the ``Control*`` definitions of the contracts; errors are problem+json naming the field.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.contract_registry import default_registry
from haicap.sandbox.national.forwarder import Forwarder
from haicap.sandbox.national.oidc_provider import OidcProvider
from haicap.sandbox.national.outage import Outages
from haicap.sandbox.national.payment_platform import PaymentPlatform
from haicap.sandbox.national.problems import JSONResponse, ProblemError, json_body, valid_body
from haicap.sandbox.national.sync_receiver import SyncReceiver

__all__ = ["ControlApi"]


class ControlApi:
    """Control endpoints over the counterpart's parts; :attr:`routes` are mounted behind the control token."""

    def __init__(self, oidc: OidcProvider, payments: PaymentPlatform, forwarder: Forwarder, sync: SyncReceiver,
                 outages: Outages) -> None:
        registry = default_registry()
        self.oidc = oidc
        self.payments = payments
        self.forwarder = forwarder
        self.sync = sync
        self.outages = outages
        self._next_token = registry.validator("idp.schema.json#/$defs/ControlNextTokenRequest")
        self._tamper = registry.validator("payment.schema.json#/$defs/ControlTamperRequest")
        self._outage = registry.validator("sync.schema.json#/$defs/ControlOutageRequest")
        self.routes = [
            Route("/_control/idp/next-token", self.next_token, methods=["POST"]),
            Route("/_control/payment/{MaThamChieu}/replay", self.replay, methods=["POST"]),
            Route("/_control/payment/{MaThamChieu}/tamper", self.tamper, methods=["POST"]),
            Route("/_control/forward", self.forward, methods=["POST"]),
            Route("/_control/outage", self.outage, methods=["GET", "POST", "DELETE"]),
            Route("/_control/sync/expire-sessions", self.expire_sessions, methods=["POST"]),
        ]

    async def next_token(self, request: Request) -> Response:
        body = await valid_body(request, self._next_token)
        login_hint = body.get("login_hint")
        try:
            pending = await self.oidc.arm(body["defect"], int(body.get("count", 1)), login_hint, body.get("seconds"))
        except ValueError as exc:
            raise ProblemError(400, "Bad Request", "invalid control request",
                               [{"field": "login_hint", "message": str(exc)}]) from None
        answer: dict[str, Any] = {"defect": body["defect"], "pending": pending}
        if login_hint is not None:
            answer["login_hint"] = login_hint
        if "seconds" in body:
            answer["seconds"] = body["seconds"]
        return JSONResponse(answer)

    async def replay(self, request: Request) -> Response:
        return JSONResponse(await self.payments.replay(request.path_params["MaThamChieu"]))

    async def tamper(self, request: Request) -> Response:
        body = await valid_body(request, self._tamper)
        return JSONResponse(await self.payments.tamper(request.path_params["MaThamChieu"], body["defect"]))

    async def forward(self, request: Request) -> Response:
        body = await json_body(request, required=False)
        if not isinstance(body, dict):
            raise ProblemError(400, "Bad Request", "the body must be a JSON object",
                               [{"field": "(body)", "message": "expected an object of dossier field overrides"}])
        return JSONResponse(await self.forwarder.forward(body))

    async def outage(self, request: Request) -> Response:
        if request.method == "POST":
            body = await valid_body(request, self._outage)
            self.outages.start(body.get("services", ["sync"]), body.get("seconds"))
        elif request.method == "DELETE":
            self.outages.clear()
        return JSONResponse({"outages": self.outages.state()})

    async def expire_sessions(self, request: Request) -> Response:
        return JSONResponse({"expired": await self.sync.expire_sessions()})
