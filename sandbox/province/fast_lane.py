"""Starlette with the province's hottest routes dispatched directly: submit a dossier, get a dossier.

Under load these two requests are nearly all the traffic, and Starlette's generic path (error middleware,
exception middleware, a router that tries each route's pattern in turn, two wrappers around ``send``) cost a
tenth of the CPU of a submission. :class:`FastLaneStarlette` recognises the two routes by their exact shape and
runs the same endpoint with the same error handling the app's exception handlers give (a :class:`Problem`
becomes its problem response; anything else is the app's 500 problem, then re-raised for the server's log,
as Starlette's ``ServerErrorMiddleware`` does). Every other request, and anything with a ``root_path``, takes
the ordinary Starlette path.

Example::

    app = FastLaneStarlette(routes=..., exception_handlers=...)
    app.fast_lane(post={"/api/v1/dossiers": submit}, get_by_key={"/api/v1/dossiers/": ("MaHoSo", get)})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from haicap.sandbox.province.problems import Problem, problem_response

__all__ = ["Endpoint", "FastLaneStarlette"]

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastLaneStarlette(Starlette):
    """A Starlette app whose registered hot routes skip the middleware stack and the route scan."""

    _post: dict[str, Endpoint]
    _get_by_key: dict[str, tuple[str, Endpoint]]
    _on_error: ErrorHandler | None

    def fast_lane(
        self,
        *,
        post: dict[str, Endpoint] | None = None,
        get_by_key: dict[str, tuple[str, Endpoint]] | None = None,
        on_error: ErrorHandler | None = None,
    ) -> None:
        """``post``: exact path → endpoint; ``get_by_key``: prefix ending in ``/`` → (path parameter, endpoint)
        for ``prefix{param}`` with one non-empty segment; ``on_error``: the app's handler of other exceptions."""
        self._post = dict(post or {})
        self._get_by_key = dict(get_by_key or {})
        self._on_error = on_error

    def _match(self, scope: Scope) -> Endpoint | None:
        if scope.get("root_path") or not hasattr(self, "_post"):
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST":
            return self._post.get(path)
        if method == "GET":
            prefix, _, key = path.rpartition("/")
            found = self._get_by_key.get(prefix + "/")
            if found is not None and key:
                scope["path_params"] = {found[0]: key}
                return found[1]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._match(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive, send)
        error: Exception | None = None
        try:
            response = await endpoint(request)
        except Problem as problem:
            response = problem_response(problem, request.url.path)
        except Exception as exc:
            if self._on_error is None:
                raise
            error = exc
            response = await self._on_error(request, exc)
        await response(scope, receive, send)
        if error is not None:
            raise error
