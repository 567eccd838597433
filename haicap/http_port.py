"""The one HTTP interface the province client and scenario steps talk through.

Conformance runs it over httpx; load tests over Locust's FastHttpSession (so requests are timed and named by
step in Locust's statistics). Both keep cookies per client and never follow redirects on their own: the SSO
steps follow them explicitly so each hop can be checked. Transport failures become :class:`TargetUnreachable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from haicap.errors import HaicapError

__all__ = ["HttpPort", "HttpxPort", "ResponseLike", "TargetUnreachable"]


class TargetUnreachable(HaicapError):
    """The system under test could not be reached (connection refused, timeout, reset)."""


class ResponseLike(Protocol):
    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


class HttpPort(Protocol):
    base_url: str

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> ResponseLike: ...


class HttpxPort:
    """HttpPort over a synchronous httpx client (one cookie jar per port)."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, follow_redirects=False)

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        try:
            return self._client.request(
                method, url, json=json, params=params, data=data, headers=headers, content=content
            )
        except httpx.TransportError as exc:
            where = url if url.startswith("http") else self.base_url + url
            raise TargetUnreachable(f"{method} {where}: {type(exc).__name__}: {exc or 'no answer'}") from None

    def fresh(self) -> HttpxPort:
        """A new port to the same base URL with an empty cookie jar (a new browser)."""
        return HttpxPort(self.base_url, timeout=self._client.timeout.read or 15.0)

    def close(self) -> None:
        self._client.close()
