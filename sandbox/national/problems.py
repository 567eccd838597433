"""RFC 9457 problem responses and small JSON helpers shared by the counterpart's endpoints.

Every endpoint that is not bound to a protocol-specific error format (OAuth errors at /token, the sync
envelope, the payment platform's error codes) answers errors as ``application/problem+json`` naming the
offending field. :class:`ProblemError` can be raised anywhere in a handler; the app renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["JSONResponse", "ProblemError", "json_body", "problem_response", "query_int"]


class JSONResponse(Response):
    """A JSON response rendered with orjson (fast; UTF-8 as is)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ProblemError(Exception):
    """Raise to answer with a problem+json; ``errors`` is a list of ``{"field", "message"}``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [dict(e) for e in errors]
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/problem+json", headers=dict(headers or {})
    )


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body, or a 400 problem naming ``(body)``."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ProblemError(400, "Bad Request", "a JSON body is required", [{"field": "(body)", "message": "empty"}])
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            400, "Bad Request", "the body is not valid JSON", [{"field": "(body)", "message": str(exc)}]
        ) from None


async def valid_body(request: Request, validator: Any, *, required: bool = True,
                     detail: str = "invalid control request") -> dict[str, Any]:
    """The request's JSON body checked by a contract validator (``ContractRegistry.validator``), or a 400 problem
    listing every violation."""
    body = await json_body(request, required=required)
    violations = validator.violations(body)
    if violations:
        raise ProblemError(400, "Bad Request", detail, [v.as_problem_error() for v in violations])
    return body  # type: ignore[no-any-return]


def query_int(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within bounds, or a 400 problem naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProblemError(400, "Bad Request", f"{name} must be an integer",
                           [{"field": name, "message": f"{raw!r} is not an integer"}]) from None
    if not minimum <= value <= maximum:
        raise ProblemError(400, "Bad Request", f"{name} out of range",
                           [{"field": name, "message": f"must be between {minimum} and {maximum}"}])
    return value
