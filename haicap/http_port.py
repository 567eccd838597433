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

__all__ = ["HostNotAllowed", "HttpPort", "HttpxPort", "ResponseLike", "TargetUnreachable", "allowed_with_base",
           "ensure_allowed_host"]


class TargetUnreachable(HaicapError):
    """The system under test could not be reached (connection refused, timeout, reset)."""


class HostNotAllowed(HaicapError):
    """A URL (typically a redirect or a URL the system under test handed out) points at a host nobody allowed."""


def ensure_allowed_host(url: str, allowed_hosts: frozenset[str]) -> None:
    """Refuse an absolute URL whose host is neither loopback nor in ``allowed_hosts``.

    The system under test chooses redirect targets and payment URLs; haicap must never follow one to a host the
    user did not name (a staging province configured with the real national IdP would otherwise turn a load
    test's sign-in storm on production).
    """
    from haicap.hosts import is_loopback_host

    host = httpx.URL(url).host if url.startswith(("http://", "https://")) else ""
    if host and not is_loopback_host(host) and host.lower() not in allowed_hosts:
        raise HostNotAllowed(f"refusing to send a request to {host} ({url.split('?', 1)[0]}): not loopback and "
                             "not an allowed target (name it with --allow-target or in the profile)")


def allowed_with_base(base_url: str, allowed_hosts: frozenset[str]) -> frozenset[str]:
    """The hosts a port may reach besides loopback: those named, lower-cased, and the base URL's own host (the
    user chose it)."""
    return frozenset({*(h.lower() for h in allowed_hosts), httpx.URL(base_url).host.lower()})


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

    def __init__(self, base_url: str, *, timeout: float = 15.0, allowed_hosts: frozenset[str] = frozenset()) -> None:
        self.base_url = base_url.rstrip("/")
        self.allowed_hosts = allowed_with_base(self.base_url, allowed_hosts)
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
        ensure_allowed_host(url, self.allowed_hosts)
        try:
            return self._client.request(
                method, url, json=json, params=params, data=data, headers=headers, content=content
            )
        except httpx.RemoteProtocolError as exc:
            if "location header" in str(exc).lower():  # an invalid redirect is the province's answer, not a lost link
                return httpx.Response(502, text=f"the province answered with an invalid Location header: {exc}")
            where = url if url.startswith("http") else self.base_url + url
            raise TargetUnreachable(f"{method} {where}: {type(exc).__name__}: {exc or 'no answer'}") from None
        except httpx.TransportError as exc:
            where = url if url.startswith("http") else self.base_url + url
            raise TargetUnreachable(f"{method} {where}: {type(exc).__name__}: {exc or 'no answer'}") from None

    def fresh(self) -> HttpxPort:
        """A new port to the same base URL with an empty cookie jar (a new browser)."""
        return HttpxPort(self.base_url, timeout=self._client.timeout.read or 15.0, allowed_hosts=self.allowed_hosts)

    def close(self) -> None:
        self._client.close()
