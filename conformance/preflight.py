"""Pre-flight of a certification run: is the province wired to *this* counterpart, before any check runs?

A province configured against another identity provider, an old sync password or a forward token of last week
makes dozens of checks fail or error with messages that contradict each other. The pre-flight probes the wiring
first, within :data:`BUDGET_S` seconds, and stops the run (exit 2) naming the profile field most likely wrong:

- the province answers at ``province_url`` (any HTTP answer);
- sso: ``GET /auth/login`` redirects to this counterpart's authorize endpoint with the registered
  ``client_id`` and ``redirect_uri``;
- sync: the counterpart's sync receiver has seen no refused login without a successful one (it counts both:
  ``/_ledger/sync/stats``); a province that has not logged in yet does so on its first sync;
- payment: the profile names a partner and secret, and the callback URL answers (not 404/405);
- forwarding: ``POST /national/forwarded-dossiers`` with the profile's forward token and an empty body is not
  refused as unauthenticated (401/403): a 4xx for the body, or 2xx, shows the token was accepted.

Only capabilities the profile declares are probed. Nothing the province sends is trusted: any answer is parsed
defensively and a probe never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from haicap.target import Target

__all__ = ["BUDGET_S", "Probe", "run_preflight"]

#: the whole pre-flight stays within this many seconds, whatever the province does
BUDGET_S = 20.0
PROBE_TIMEOUT_S = 4.0


@dataclass
class Probe:
    name: str
    status: str  # passed | failed | skipped
    message: str
    field: str | None = None
    seconds: float = 0.0


class _Stop(Exception):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {PROBE_TIMEOUT_S:.0f}s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text})"
    return text


class _Preflight:
    def __init__(self, target: Target, client: httpx.Client, deadline: float) -> None:
        self.target = target
        self.client = client
        self.deadline = deadline
        self.wiring = target.wiring
        self.discovery: dict[str, Any] = {}  # the counterpart's, read by the counterpart probe

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        timeout = max(0.5, min(PROBE_TIMEOUT_S, self.deadline - time.monotonic()))
        return self.client.request(method, url, timeout=timeout, follow_redirects=False, **kwargs)

    # -- probes ----------------------------------------------------------------------------------
    def province(self) -> str:
        url = self.target.province_url
        try:
            response = self.request("GET", url + "/health")
        except httpx.HTTPError as exc:
            raise _Stop(f"the province does not answer at {url}: {_describe(exc)}", "province_url") from None
        return f"the province answers at {url} (GET /health: HTTP {response.status_code})"

    def counterpart(self) -> str:
        url = self.target.national_url + "/.well-known/openid-configuration"
        while True:  # it was just started: give it a moment
            try:
                response = self.request("GET", url)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > self.deadline - 1:
                raise _Stop(f"haicap's national counterpart does not answer at {self.target.national_url}",
                            "national.listen")
            time.sleep(0.1)
        document = response.json()
        self.discovery = document if isinstance(document, dict) else {}
        return f"the counterpart serves its discovery document at {url}"

    def sso(self) -> str:
        login = self.target.province_url + "/auth/login"
        try:
            response = self.request("GET", login)
        except httpx.HTTPError as exc:
            raise _Stop(f"GET {login}: {_describe(exc)}", "province_url") from None
        location = response.headers.get("location", "")
        authorize = str(self.discovery.get("authorization_endpoint", ""))
        if response.status_code >= 500:
            public_url = self.wiring.get("national.public_url", self.target.national_url)
            raise _Stop(f"GET {login} answers HTTP {response.status_code} instead of redirecting to "
                        f"{_base(authorize)}: the province cannot reach the identity provider it is configured with, "
                        f"which must be {public_url}", "national.public_url")
        if not response.is_redirect or not location:
            raise _Stop(f"GET {login} answers HTTP {response.status_code}, not a redirect to the national authorize "
                        "endpoint (contracts/province-dossier.openapi.yaml GET /auth/login)", "province_url")
        if _base(location) != _base(authorize):
            raise _Stop(f"the province redirects to {_base(location)}, this counterpart is {_base(authorize)}",
                        "national.public_url")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items() if v}
        for key, field in (("client_id", "credentials.oidc_client_id"),
                           ("redirect_uri", "credentials.oidc_redirect_uri")):
            wanted = self.wiring.get(field)
            if wanted is not None and query.get(key) != wanted:
                raise _Stop(f"the province sends {key}={query.get(key)!r}, the profile registers {wanted!r}", field)
        return f"/auth/login redirects to {_base(authorize)} with the registered client_id and redirect_uri"

    def sync(self) -> str:
        if "credentials.sync_username" not in self.wiring:
            raise _Stop("sync is declared but the profile names no sync account (sync_username and "
                        "sync_password_env)", "credentials.sync_username")
        url = self.target.national_url + "/_ledger/sync/stats"
        try:
            stats = self.request("GET", url, headers=self.target.control_headers()).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _Stop(f"cannot ask the counterpart's sync receiver ({exc})", "national.listen") from None
        logins, refused = int(stats.get("logins", 0)), int(stats.get("login_failures", 0))
        if refused and not logins:
            raise _Stop(f"the province tried to log in to the national sync API {refused} time(s) and was refused: "
                        f"it does not use the profile's account {self.wiring['credentials.sync_username']!r}, its "
                        "password (credentials.sync_password_env) or agency_code as madonvi",
                        "credentials.sync_username")
        if logins:
            return f"the province has logged in to the national sync API ({logins} time(s))"
        return "the province has not logged in to the national sync API yet (it does on its first sync)"

    def payment(self) -> str:
        partner = self.wiring.get("credentials.payment_partner")
        if not partner:
            raise _Stop("payment is declared but the profile names no payment partner (payment_partner and "
                        "payment_secret_env)", "credentials.payment_partner")
        url = self.wiring["credentials.payment_callback_url"]
        try:
            response = self.request("POST", url, json={})
        except httpx.HTTPError as exc:
            raise _Stop(f"the payment callback URL {url}: {_describe(exc)}", "credentials.payment_callback_url") \
                from None
        if response.status_code in (404, 405):
            raise _Stop(f"POST {url} answers HTTP {response.status_code}: no payment callback there",
                        "credentials.payment_callback_url")
        return f"partner {partner} registered; the callback URL answers (HTTP {response.status_code} to an empty body)"

    def forwarding(self) -> str:
        if not self.target.forward_token:
            raise _Stop("forwarding is declared but the profile names no forward token",
                        "credentials.forward_token_env")
        url = self.target.province_url + "/national/forwarded-dossiers"
        try:
            response = self.request("POST", url, json={},
                                    headers={"Authorization": f"Bearer {self.target.forward_token}"})
        except httpx.HTTPError as exc:
            raise _Stop(f"POST {url}: {_describe(exc)}", "province_url") from None
        if response.status_code in (401, 403):
            raise _Stop(f"the province refuses the profile's forward token: POST {url} answers HTTP "
                        f"{response.status_code}", "credentials.forward_token_env")
        if response.status_code in (404, 405):
            raise _Stop(f"POST {url} answers HTTP {response.status_code}: no forwarded-dossier endpoint there",
                        "province_url")
        return f"the forward token is accepted (HTTP {response.status_code} to an empty body)"


#: (probe, capability it needs or None)
_PROBES: tuple[tuple[str, str | None], ...] = (
    ("province", None), ("counterpart", None), ("sso", "sso"), ("sync", "sync"), ("payment", "payment"),
    ("forwarding", "forwarding"),
)


def run_preflight(target: Target, *, budget_s: float = BUDGET_S) -> dict[str, Any]:
    """Run the probes in order; the first that fails stops the pre-flight. Returns results.json's ``preflight``."""
    t0 = time.monotonic()
    probes: list[Probe] = []
    with httpx.Client(trust_env=False) as client:
        pre = _Preflight(target, client, t0 + budget_s)
        for name, capability in _PROBES:
            if capability is not None and capability not in target.capabilities:
                probes.append(Probe(name, "skipped", f"capability not declared: {capability}"))
                continue
            started = time.monotonic()
            probe: Callable[[], str] = getattr(pre, name)
            try:
                probes.append(Probe(name, "passed", probe(), seconds=round(time.monotonic() - started, 3)))
            except _Stop as stop:
                probes.append(Probe(name, "failed", str(stop), stop.field, round(time.monotonic() - started, 3)))
                break
    ok = all(p.status != "failed" for p in probes)
    return {"ok": ok, "seconds": round(time.monotonic() - t0, 3), "probes": [asdict(p) for p in probes]}


def after_run_probe(target: Target) -> dict[str, Any] | None:
    """After the checks: a province whose every sync login was refused gets one probe naming the credential,
    instead of a reader puzzling over sync checks that each say something else. None when nothing points at it."""
    if "sync" not in target.capabilities:
        return None
    try:
        with httpx.Client(trust_env=False, timeout=PROBE_TIMEOUT_S) as client:
            stats = client.get(target.national_url + "/_ledger/sync/stats", headers=target.control_headers()).json()
        logins, refused = int(stats.get("logins", 0)), int(stats.get("login_failures", 0))
    except (httpx.HTTPError, ValueError, TypeError, AttributeError):
        return None
    if not refused or logins:
        return None
    account = target.wiring.get("credentials.sync_username", "")
    return asdict(Probe("sync (after the run)", "failed", f"every login of the province to the national sync API was "
                        f"refused ({refused} time(s)): it does not use the profile's account {account!r}, its password "
                        "(credentials.sync_password_env) or agency_code as madonvi", "credentials.sync_username"))


def preflight_message(preflight: dict[str, Any]) -> str:
    """One line for a failed pre-flight: ``national.public_url: the province redirects to …``."""
    failed = next(p for p in preflight["probes"] if p["status"] == "failed")
    return f"{failed['field']}: {failed['message']}" if failed.get("field") else failed["message"]
