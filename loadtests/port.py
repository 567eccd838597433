"""The :class:`~haicap.http_port.HttpPort` over Locust's FastHttpSession, one per journey (its own cookies).

Requests are named by the step's label so Locust's statistics read like the journey; redirects are never
followed (the SSO steps follow them hop by hop); a transport failure raises
:class:`~haicap.http_port.TargetUnreachable`. An absolute URL (a redirect or a URL the system under test
handed out) is sent only to loopback or a host the run allows (the target's, the national side's,
``--allow-target``): any other is never sent, but recorded as a failed request and raised as
:class:`~haicap.http_port.HostNotAllowed`, so a province configured with a real IdP cannot turn the load
generator on it. The request event goes through :class:`TimedEvent`, which adds
the time the journey waited in the generator to its first request (latency from the *intended* start) and
records every request into the worker's :class:`~haicap.loadtests.recorder.Recorder` before Locust sees it.

Imported only in Locust processes (it imports locust, which monkey-patches with gevent).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from locust.contrib.fasthttp import FastHttpSession

from haicap.http_port import HostNotAllowed, TargetUnreachable, allowed_with_base, ensure_allowed_host
from haicap.loadtests.recorder import Recorder

__all__ = ["LocustPort", "TimedEvent"]


class TimedEvent:
    """Stands in for ``environment.events.request``: corrects, records, then forwards to Locust."""

    def __init__(self, forward: Any, recorder: Recorder) -> None:
        self._forward = forward
        self._recorder = recorder
        self.pending_lag_ms = 0.0
        self.stage: int | None = None  # the journey's stage (step runs), by its intended start

    def fire(self, **meta: Any) -> None:
        meta["response_time"] = float(meta.get("response_time") or 0.0) + self.pending_lag_ms
        self.pending_lag_ms = 0.0
        response = meta.get("response")
        status = getattr(response, "status_code", 0) or 0
        transport = status == 0
        self._recorder.request(meta["name"], meta["response_time"], meta.get("exception") is not None or transport,
                               transport, stage=self.stage)
        self._forward.fire(**meta)

    def refused(self, method: str, name: str, host: str, error: HostNotAllowed) -> None:
        """A request never sent (its host is not allowed): a failed request, not a transport error."""
        self._recorder.request(name, 0.0, True, False, stage=self.stage)
        self._recorder.refused_host(host)
        self._forward.fire(request_type=method, name=name, response_time=0.0, response_length=0, response=None,
                           context={}, exception=error)


class _Response:
    """The ResponseLike view of a FastResponse (text never None, headers case-insensitive)."""

    __slots__ = ("_raw", "status_code")

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.status_code = int(raw.status_code or 0)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._raw.headers or {}

    @property
    def text(self) -> str:
        return self._raw.text or ""

    def json(self) -> Any:
        return self._raw.json()


def new_trace_id() -> str:
    """A W3C Trace Context trace id: 16 random bytes, lowercase hex, never all zeros."""
    return secrets.token_hex(16)


class LocustPort:
    """One journey's browser: every request carries the journey's W3C ``traceparent`` (one trace id per
    journey, a new span id per request), so a slow journey can be found in the province's own traces."""

    def __init__(self, base_url: str, event: TimedEvent, *, client_pool: Any = None, timeout: float = 30.0,
                 allowed_hosts: frozenset[str] = frozenset(), trace_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.trace_id = trace_id or new_trace_id()
        self._event = event
        self.allowed_hosts = allowed_with_base(self.base_url, allowed_hosts)
        self._session = FastHttpSession(self.base_url, request_event=event, user=None, client_pool=client_pool,
                                        network_timeout=timeout, connection_timeout=timeout, max_retries=0)

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
    ) -> _Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        label = name or url.split("?", 1)[0]
        try:
            ensure_allowed_host(url, self.allowed_hosts)
        except HostNotAllowed as exc:
            self._event.refused(method, label, _host(url), exc)
            raise
        sent_headers = dict(headers or {})
        sent_headers.setdefault("traceparent", f"00-{self.trace_id}-{secrets.token_hex(8)}-01")
        body: Any = content
        if data is not None:
            body = urlencode(data)
            sent_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        raw = self._session.request(method, url, name=label, data=body, json=json,
                                    headers=sent_headers, allow_redirects=False)
        if not raw.status_code:
            error = getattr(raw, "error", None)
            where = url if url.startswith("http") else self.base_url + url
            raise TargetUnreachable(f"{method} {where}: {type(error).__name__ if error else 'no answer'}: {error}")
        return _Response(raw)

    def fresh(self) -> LocustPort:
        """A port with an empty cookie jar (a new browser) sharing the connection pool and the timing."""
        return LocustPort(self.base_url, self._event, client_pool=self._session.client.clientpool,
                          allowed_hosts=self.allowed_hosts, trace_id=self.trace_id)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
