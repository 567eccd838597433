"""RFC 9457 problem responses, and reading a JSON body against a contract schema.

Every refusal of the reference province is an ``application/problem+json`` body whose ``errors`` name the
offending fields, so a client (or a conformance check) learns what to fix; never a bare 500 or a traceback.
Handlers raise :class:`Problem`; the app turns it into a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from haicap.contract_registry import SchemaValidator

__all__ = ["Problem", "json_response", "problem_response", "read_json"]

PROBLEM_TYPE = "https://haicap.dev/problems/"


class Problem(Exception):
    """A refusal with an HTTP status, a one-line detail and the fields at fault."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: Sequence[Mapping[str, str]] = (),
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    @classmethod
    def field(cls, status: int, field: str, message: str, title: str = "Invalid request") -> Problem:
        """A problem about one field (the common case)."""
        return cls(status, title, f"{field}: {message}", [{"field": field, "message": message}])

    def body(self, instance: str = "") -> dict[str, Any]:
        slug = self.title.lower().replace(" ", "-")
        body: dict[str, Any] = {"type": PROBLEM_TYPE + slug, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


def problem_response(problem: Problem, instance: str = "") -> Response:
    return Response(
        orjson.dumps(problem.body(instance)),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )


async def read_json(
    request: Request, validator: SchemaValidator | None, *, optional: bool = False, trusting: bool = False
) -> Any:
    """The request's JSON body, validated against ``validator``; a :class:`Problem` naming the field if not.

    ``trusting`` is the defect of fault ``500-on-malformed-input``: the body is parsed without a guard and
    not validated, so malformed input surfaces later as an unhandled exception.
    """
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    if trusting:
        return orjson.loads(raw)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in {"application/json", "application/problem+json"}:
        raise Problem(
            415,
            "Unsupported media type",
            f"expected Content-Type application/json, got {content_type or 'none'!r}",
            [{"field": "(body)", "message": "the body must be application/json"}],
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem.field(400, "(body)", f"malformed JSON: {exc}", "Malformed JSON") from None
    if validator is not None:
        violations = validator.violations(data)
        if violations:
            raise Problem(
                400,
                "Invalid request",
                "; ".join(f"{v.field}: {v.message}" for v in violations[:3]),
                [v.as_problem_error() for v in violations],
            )
    return data
