"""Single sign-on, the browser side of the code flow: what the province's callback must refuse or never leak.

:mod:`sso` judges the ID token; this module judges the authorization *response* and the pages around it, the
way the OpenID Foundation's RP and FAPI client tests do: a callback without state (SSO-31) or finished by
another browser than the one that started the login (login CSRF, SSO-32), error responses with and without
state (SSO-33, SSO-34), the RFC 9207 ``iss`` of the authorization response, wrong or missing (SSO-35, SSO-36),
and what must never leak: the session token in a URL (SSO-37), the code and state through Referer (SSO-38), a
redirect off-site through the post-login ``return_to`` (SSO-39). SSO-30 judges discovery.

Design:

- **Authorization responses are made in the browser.** The counterpart sends ``iss`` in every authorization
  response and advertises ``authorization_response_iss_parameter_supported``; a wrong or missing ``iss``, a
  removed ``state`` or an error response is then written into the real callback URL by haicap's browser. The
  province cannot tell a callback the national side wrote from one the browser carries — that is the attack
  (in a mix-up or a CSRF the attacker hands the victim's browser the response) — so no control endpoint is
  needed, and a case touches only its own sign-in: parallel sign-ons of other checks are never disturbed.
- **Discovery is per issuer, not per citizen.** A province fetches discovery once for its configured issuer;
  serving a bad document there would break every sign-on of the run. The counterpart therefore serves a second,
  inert issuer path ``{national}/mixup`` whose document names ``{national}`` as its issuer (OpenID Connect
  Discovery 1.0 §4.3: "MUST NOT be used"). Only a province *instance configured against* ``{national}/mixup``
  reads it: for the embedded sandbox SSO-30 starts one (the reference province with the run's faults, on a
  free loopback port, for the length of the check); a profile names its own as ``sso_mixup_province_url``
  (without it SSO-30 is skipped, saying so).
- **Refused means: no session, a clean answer.** A refusal is a 4xx, a redirect that carries no token, or a
  200 page without a session token; a 5xx is a crash, a 200 with ``access_token`` is a session. After error
  responses the same browser must still have no cookie session (``GET /api/v1/dossiers`` → 401) and must still
  be able to sign in normally (must-accept).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from haicap.conformance.checks.sso import (
    _browser,
    _discovery,
    _new_cccd,
    _reproduce_sign_in,
    _sign_in,
    _token_event,
    _token_events_total,
    describe_response,
    redact_url,
    split_url,
    with_query_param,
)
from haicap.conformance.context import PROBE_TIMEOUT_S, CheckContext
from haicap.conformance.registry import CheckError, CheckSkipped, check
from haicap.contract_registry import default_registry
from haicap.http_port import HostNotAllowed, HttpPort, HttpxPort, ResponseLike, TargetUnreachable

__all__ = [
    "OPEN_REDIRECT_PAYLOADS",
    "SAFE_REFERRER_POLICIES",
    "destinations",
    "follows_payload",
    "issues_session",
    "referrer_policy_of",
    "resolves_off_site",
    "token_in_urls",
    "without_query_param",
]

#: Referrer-Policy values under which a page's URL query (code, state) never reaches another site.
SAFE_REFERRER_POLICIES = frozenset({"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin",
                                    "origin"})
_KNOWN_POLICIES = SAFE_REFERRER_POLICIES | {"no-referrer-when-downgrade", "origin-when-cross-origin", "unsafe-url"}
_EVIL = "evil.example"
#: return_to values that must never send the browser off-site ({host}: the province's host:port).
OPEN_REDIRECT_PAYLOADS: tuple[str, ...] = (
    f"https://{_EVIL}/", f"http://{_EVIL}/auth/callback", f"//{_EVIL}/", f"///{_EVIL}/", f"https:{_EVIL}",
    f"/\\{_EVIL}", f"\\\\{_EVIL}", f"\\/{_EVIL}", f"/\t/{_EVIL}", f"/%2F%2F{_EVIL}", f"%2F%2F{_EVIL}",
    f"%2f%2f{_EVIL}%2f", f"http://{{host}}.{_EVIL}/", f"http://{{host}}@{_EVIL}/", "javascript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
)
_URL_IN_TEXT = re.compile(r"""(?:https?:|javascript:|data:)?//?[^\s"'<>]*|(?:href|src|action)=["']?([^"'\s>]+)""")
_META_REFERRER = re.compile(r"""<meta[^>]+name=["']?referrer["']?[^>]*content=["']?([a-z-]+)""", re.IGNORECASE)
#: JSON body members that name where the browser goes next (not a problem's ``type`` URI)
_NAVIGATION_KEY = re.compile(r"return|redirect|next|url|location|continue|target", re.IGNORECASE)
_REDIRECTS = {301, 302, 303, 307, 308}
_MIXUP = "/mixup"


# -- pure helpers (tested in tests/test_checks_sso_flow.py) -------------------------------------------
def without_query_param(url: str, name: str) -> str:
    """``url`` without query parameter ``name`` (every occurrence)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def resolves_off_site(url: str, page: str) -> bool:
    """Whether a browser on ``page`` that is sent to ``url`` (a Location, a link) leaves ``page``'s origin.

    Reads ``url`` the way browsers do (WHATWG URL): surrounding spaces and control characters dropped, tabs and
    newlines removed anywhere, ``\\`` taken as ``/``, three or more leading slashes as two; a scheme other than
    the page's (``https:evil``, ``javascript:``) is another origin. Percent-encoded characters are not decoded:
    ``/%2F%2Fevil`` is a path on the page's site."""
    cleaned = url.strip("".join(chr(c) for c in range(0x21)))
    cleaned = re.sub(r"[\t\n\r]", "", cleaned).replace("\\", "/")
    cleaned = re.sub(r"^/{3,}", "//", cleaned)
    joined = urlsplit(urljoin(page, cleaned))
    base = urlsplit(page)
    if joined.scheme.lower() != base.scheme.lower():
        return True
    defaults = {"http": 80, "https": 443}
    try:
        here = (base.hostname, base.port or defaults.get(base.scheme))
        there = (joined.hostname, joined.port or defaults.get(joined.scheme))
    except ValueError:  # an unparseable port: not this site
        return True
    return there != here


def referrer_policy_of(response: ResponseLike) -> str | None:
    """The effective Referrer-Policy of a page: the last known value of the header (a comma list), else of a
    ``<meta name="referrer">`` in an HTML body; None when it sets none."""
    header = response.headers.get("referrer-policy") or ""
    known = [v.strip().lower() for v in header.split(",") if v.strip().lower() in _KNOWN_POLICIES]
    if known:
        return known[-1]
    if "html" in (response.headers.get("content-type") or ""):
        meta = _META_REFERRER.search(response.text)
        if meta and meta.group(1).lower() in _KNOWN_POLICIES:
            return meta.group(1).lower()
    return None


def _json(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def issues_session(response: ResponseLike | None) -> bool:
    """Whether a callback answer hands out a session: a 2xx JSON body with an ``access_token``."""
    if response is None or not 200 <= response.status_code < 300:
        return False
    body = _json(response)
    return isinstance(body, dict) and bool(body.get("access_token"))


def destinations(response: ResponseLike) -> list[tuple[str, str]]:
    """Every (where, URL) a province answer sends the browser to or offers it: Location, Content-Location and
    Refresh headers, the ``return_to`` (or another navigation member: ``next``, ``redirect_url``…) of a JSON body,
    links and URLs of any other body (href, src, action)."""
    found: list[tuple[str, str]] = []
    for header in ("location", "content-location"):
        if response.headers.get(header):
            found.append((header.title(), response.headers[header]))
    refresh = response.headers.get("refresh") or ""
    if "url=" in refresh.lower():
        found.append(("Refresh", refresh[refresh.lower().index("url=") + 4:].strip("'\" ")))
    body = _json(response)
    if isinstance(body, dict):
        found += [(f"body {key}", value) for key, value in body.items()
                  if isinstance(value, str) and _NAVIGATION_KEY.search(key)]
    elif body is None:
        found += [("body link", m.group(1) or m.group(0)) for m in _URL_IN_TEXT.finditer(response.text)
                  if len(m.group(1) or m.group(0)) > 2]
    return found


def token_in_urls(token: str, response: ResponseLike) -> list[str]:
    """Where ``token`` appears in a URL of ``response`` (see :func:`destinations`), for evidence."""
    return [where for where, url in destinations(response) if token in url]


# -- set-up helpers ---------------------------------------------------------------------------------
def _start_login(browser: HttpPort, cccd: str) -> tuple[ResponseLike, dict[str, str]]:
    """GET /auth/login in ``browser``: the answer and the parameters of its redirect to the national side."""
    answer = browser.request("GET", "/auth/login?" + urlencode({"login_hint": cccd}), name="/auth/login")
    location = answer.headers.get("location") if answer.status_code in _REDIRECTS else None
    if not location:
        raise CheckError(f"GET /auth/login did not redirect to the national authorize endpoint (see SSO-01): "
                         f"{describe_response(answer)}")
    params = split_url(location)[1]
    if not params.get("redirect_uri") or not params.get("state"):
        raise CheckError(f"the sign-on request carries no redirect_uri or state (see SSO-01): {redact_url(location)}")
    return answer, params


def _callback_url(browser: HttpPort, cccd: str) -> str:
    """The real callback URL (code, state, iss) of a login ``browser`` starts, not yet opened."""
    login, _ = _start_login(browser, cccd)
    authorize = browser.request("GET", login.headers["location"], name="national /authorize")
    url = authorize.headers.get("location") if authorize.status_code in _REDIRECTS else None
    if not url or "code" not in split_url(url)[1]:
        raise CheckError(f"the national authorize endpoint did not answer a code: {describe_response(authorize)}")
    return url


def _refusal_problem(response: ResponseLike) -> str | None:
    """Why an answer to a callback that must be refused is not a clean refusal, or None when it is one."""
    if issues_session(response):
        return f"issued a session (HTTP {response.status_code} with access_token)"
    if response.status_code >= 500:
        return f"crashed: HTTP {response.status_code}"
    if response.status_code in _REDIRECTS:
        tokens = [u for _, u in destinations(response) if "access_token" in u or "session" in u.lower()]
        if tokens:
            return f"redirected with a token in the URL ({redact_url(tokens[0])})"
    elif not (400 <= response.status_code < 500 or response.status_code == 200):
        return f"answered HTTP {response.status_code} (expected a 4xx or an error page)"
    return None


def _no_cookie_session(browser: HttpPort) -> str | None:
    """None when ``browser`` (no Authorization header) has no session on the dossier API, else what it got."""
    answer = browser.request("GET", "/api/v1/dossiers", name="dossiers without a token")
    if answer.status_code in {401, 403}:
        return None
    return f"the browser then has a session of its own (GET /api/v1/dossiers → HTTP {answer.status_code})"


def _refused(browser: HttpPort, response: ResponseLike) -> str | None:
    """Why ``response`` to a callback that must be refused is not a clean refusal in ``browser`` (a session in
    the answer or in the browser's cookies, a crash), or None when it is one. A crash is judged before the
    cookie probe (a server may drop the connection after a 5xx)."""
    return _refusal_problem(response) or _no_cookie_session(browser)


def _issuer(ctx: CheckContext) -> str:
    issuer = _discovery(ctx).get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise CheckError("the counterpart's discovery document names no issuer")
    return issuer


# -- SSO-30 -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _browser_on(ctx: CheckContext, base_url: str) -> Iterator[HttpxPort]:
    port = HttpxPort(base_url, allowed_hosts=frozenset(ctx.target.allowed_hosts))
    try:
        yield port
    finally:
        port.close()


def _mixup_province(ctx: CheckContext, issuer: str) -> contextlib.AbstractContextManager[str]:
    """A reference-province instance (the run's faults) configured against ``issuer`` (embedded runs only),
    from the embedded target's provider: the checks never import the sandbox."""
    from haicap.target import embedded_provider

    return embedded_provider().province_against(ctx.target, issuer)


def _mixup_document(ctx: CheckContext, mixup: str) -> tuple[str, str]:
    """The issuer and authorization_endpoint the counterpart's inert ``{mixup}`` discovery document names (an
    issuer other than ``mixup``), or CheckError naming the URL and what it should have served."""
    served = ctx.target.national_url.rstrip("/") + _MIXUP + "/.well-known/openid-configuration"
    expected = f"expected a JSON discovery document naming an issuer other than {mixup} and an authorization_endpoint"
    try:
        response = httpx.get(served, timeout=PROBE_TIMEOUT_S)
        document = response.json()
    except httpx.TimeoutException:
        raise CheckError(f"GET {served}: no answer within {PROBE_TIMEOUT_S:g} s; {expected}") from None
    except (httpx.HTTPError, ValueError) as exc:
        raise CheckError(f"GET {served}: {type(exc).__name__}: {exc}; {expected}") from None
    named = document.get("issuer") if isinstance(document, dict) else None
    endpoint = document.get("authorization_endpoint") if isinstance(document, dict) else None
    ctx.require_evidence(int(isinstance(named, str) and named != mixup and isinstance(endpoint, str)), 1,
                         f"mismatching discovery document at {served} (HTTP {response.status_code}, issuer {named!r}; "
                         f"{expected})")
    return str(named), str(endpoint)


def _mixup_login(ctx: CheckContext, browser: HttpxPort, mixup: str, cccd: str) -> httpx.Response:
    """``GET /auth/login`` on the instance configured against ``mixup``; an instance that does not answer (within
    the context's bounded probe, then the login itself) is a check that could not run, named with its URL."""
    url = browser.base_url
    where = ("the profile's sso_mixup_province_url " if ctx.target.sso_mixup_url else "the embedded ") + url
    expected = f"expected an instance of the province configured against the issuer {mixup} answering /auth/login"
    cause = ctx.unreachable(url)
    try:
        if cause:
            raise TargetUnreachable(cause)
        return browser.request("GET", "/auth/login?" + urlencode({"login_hint": cccd}), name="/auth/login (mixup)")
    except TargetUnreachable as exc:
        raise CheckError(f"the mix-up instance at {where} is unreachable: {exc}; {expected}",
                         reproduce=f"curl -i '{url}/auth/login?login_hint={cccd}'") from None


@check("SSO-30", criterion="sso", severity="critical",
       title="A discovery document whose issuer is not the configured issuer is not used",
       rule="OpenID Connect Discovery 1.0 §4.3; RFC 8414 §3.3; RFC 9700 §4.4.2",
       requires=("sso",), detects=("accepts-discovery-issuer-mismatch",))
def refuses_discovery_issuer_mismatch(ctx: CheckContext) -> str:
    """A province configured against the counterpart's second issuer ``{national}/mixup`` fetches
    ``{national}/mixup/.well-known/openid-configuration``, which names ``{national}`` as its issuer. The values
    differ, so the document must not be used: ``/auth/login`` must not send the browser to the
    ``authorization_endpoint`` it names (a refusal, or an endpoint of the configured issuer's own)."""
    mixup = _issuer(ctx) + _MIXUP  # the issuer URL as the province reaches the counterpart
    named, endpoint = _mixup_document(ctx, mixup)
    if not ctx.target.embedded and not ctx.target.sso_mixup_url:
        raise CheckSkipped(f"needs a second instance of the province configured against the issuer {mixup} (haicap "
                           "cannot reconfigure a province)",
                           reproduce=f"start an instance whose national issuer is {mixup} and add "
                                     "sso_mixup_province_url: <its base URL> to the profile")
    cccd = _new_cccd(ctx, "SSO-30")
    with contextlib.ExitStack() as stack:
        url = ctx.target.sso_mixup_url or stack.enter_context(_mixup_province(ctx, mixup))
        answer = _mixup_login(ctx, stack.enter_context(_browser_on(ctx, url)), mixup, cccd)
    location = answer.headers.get("location") if answer.status_code in _REDIRECTS else None
    used = location is not None and split_url(location)[0] == endpoint
    ctx.expect(
        not used,
        f"the province configured against {mixup} used a discovery document naming issuer {named}: /auth/login "
        f"redirected to its authorization_endpoint {endpoint}",
        expected=f"no redirect to {endpoint} (a refusal: discovery issuer {named} ≠ configured {mixup})",
        actual=describe_response(answer),
        reproduce=f"configure the province with issuer {mixup} (the profile's sso_mixup_province_url must be such an "
                  f"instance), then GET {url}/auth/login?login_hint={cccd}",
    )
    return (f"province instance {url} configured against {mixup} (discovery names issuer {named}): /auth/login → "
            f"{describe_response(answer)}, the document was not used")


# -- SSO-31 -----------------------------------------------------------------------------------------
@check("SSO-31", criterion="sso", severity="critical",
       title="Relying party rejects a callback without state",
       rule="RFC 6749 §10.12; RFC 9700 §4.7.1; OpenID Connect Core 1.0 §3.1.2.7",
       requires=("sso",), detects=("accepts-missing-state",))
def rejects_missing_state(ctx: CheckContext) -> str:
    """The state parameter is removed from the real callback (and, second case, left empty): the province sent a
    state, so a response without it cannot be bound to the login and must be refused, with no session."""
    cases: dict[str, Callable[[str], str]] = {
        "state removed": lambda url: without_query_param(url, "state"),
        "state empty": lambda url: with_query_param(url, "state", ""),
    }
    seen: list[str] = []
    for label, tamper in cases.items():
        with _browser(ctx) as browser:
            cccd, hops = _sign_in(ctx, f"SSO-31:{label}", tamper=tamper, port=browser)
            assert hops.callback is not None
            problem = _refused(browser, hops.callback)
        ctx.expect(
            problem is None,
            f"a callback with the {label}: the province {problem}",
            expected="a refusal (4xx or an error page: no state, the response cannot be bound to the login), no "
                     "session",
            actual=describe_response(hops.callback),
            reproduce=_reproduce_sign_in(ctx, cccd, then=f"open the callback URL with the {label}"),
        )
        seen.append(f"{label} → HTTP {hops.callback.status_code}")
    ctx.require_evidence(len(seen), len(cases), "callbacks without a usable state")
    return "real callbacks refused: " + "; ".join(seen)


# -- SSO-32 -----------------------------------------------------------------------------------------
@check("SSO-32", criterion="sso", severity="critical",
       title="A callback carried to another browser is refused (state bound to the browser that started the login)",
       rule="RFC 6749 §10.12; RFC 9700 §4.7.1; OpenID Connect Core 1.0 §3.1.2.7",
       requires=("sso",), detects=("state-not-bound-to-browser",))
def binds_state_to_browser(ctx: CheckContext) -> str:
    """Login CSRF: browser A starts a login and obtains its callback URL (code, valid state) but does not open it;
    browser B opens it — once with no cookie of the province at all, once with a login of its own started. The
    state is valid, but not B's: the province must issue B no session."""
    seen: list[str] = []
    for label in ("B has no cookie", "B started its own login"):
        cccd = _new_cccd(ctx, f"SSO-32:{label}")
        with _browser(ctx) as browser_a, _browser(ctx) as browser_b:
            url = _callback_url(browser_a, cccd)
            if label == "B started its own login":
                _start_login(browser_b, _new_cccd(ctx, "SSO-32:B"))
            answer = browser_b.request("GET", url, name="/auth/callback (another browser)")
            problem = _refused(browser_b, answer)
            own = browser_a.request("GET", url, name="/auth/callback (own browser)")
        ctx.expect(
            problem is None,
            f"browser B opened browser A's callback URL ({label}) and the province {problem}: a login started "
            "elsewhere can be planted in a citizen's browser",
            expected="no session for B: the state belongs to the login of browser A (its cookie)",
            actual=describe_response(answer),
            reproduce=(f"browser A: GET {ctx.target.province_url}/auth/login?login_hint={cccd}, follow to the "
                       f"national authorize, keep the callback URL; browser B ({label}): open that URL"),
        )
        seen.append(f"{label} → HTTP {answer.status_code}; A's own browser then → HTTP {own.status_code}")
    ctx.require_evidence(len(seen), 2, "callbacks opened by another browser")
    return "A's callback opened by browser B refused: " + "; ".join(seen)


# -- SSO-33, SSO-34 ---------------------------------------------------------------------------------
def _error_codes() -> list[str]:
    return default_registry().enum("idp.schema.json#/$defs/AuthorizationErrorCode")


def _error_url(redirect_uri: str, error: str | None, state: str | None, issuer: str) -> str:
    params = {} if error is None else {"error": error, "error_description": f"haicap: {error}"}
    if state is not None:
        params["state"] = state
    params["iss"] = issuer
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)


def _judge_error_answers(ctx: CheckContext, answers: list[tuple[str, str, ResponseLike]]) -> None:
    bad = [(label, url, answer, problem) for label, url, answer in answers
           if (problem := _refusal_problem(answer)) is not None]
    if bad:
        label, url, _, problem = bad[0]
        ctx.fail(f"{len(bad)} of {len(answers)} error responses were not refused cleanly; first: {label} → "
                 f"{problem}",
                 expected="no session, no 5xx: a 4xx refusal or an error page",
                 actual={lbl: describe_response(a) for lbl, _, a, _ in bad[:6]},
                 reproduce=f"GET {redact_url(url)}")


@check("SSO-33", criterion="sso", severity="critical",
       title="An error response of the national side (access_denied, login_required, …) gives no session and no 5xx",
       rule="RFC 6749 §4.1.2.1; OpenID Connect Core 1.0 §3.1.2.6; RFC 9207 §2",
       requires=("sso",), detects=("500-on-error-callback",))
def handles_error_responses(ctx: CheckContext) -> str:
    """For every authorization error code (contracts/schemas/idp.schema.json AuthorizationErrorCode) and an
    unknown one, the browser that started a login comes back with ``error`` and the login's right state and iss;
    then once with ``error=access_denied`` added to a real response that also carries a valid code. Each must
    end without a session and without a 5xx; the browser then has no cookie session, and a normal sign-in in the
    same browser still works."""
    issuer = _issuer(ctx)
    codes = [*_error_codes(), "haicap_unknown_error"]
    answers: list[tuple[str, str, ResponseLike]] = []
    with _browser(ctx) as browser:
        for code in codes:
            _, params = _start_login(browser, _new_cccd(ctx, f"SSO-33:{code}"))
            url = _error_url(params["redirect_uri"], code, params["state"], issuer)
            answers.append((f"error={code} with the right state", url,
                            browser.request("GET", url, name="/auth/callback (error response)")))
            if answers[-1][2].status_code >= 500:
                _judge_error_answers(ctx, answers)  # a crash fails now (the server may drop the connection)
        cccd, hops = _sign_in(ctx, "SSO-33:with-code", port=browser,
                              tamper=lambda url: with_query_param(url, "error", "access_denied"))
        assert hops.callback is not None and hops.callback_url is not None
        answers.append(("error=access_denied next to a valid code", hops.callback_url, hops.callback))
        _judge_error_answers(ctx, answers)
        ctx.require_evidence(len(answers), len(codes) + 1, "error responses answered")
        cookie_session = _no_cookie_session(browser)
        ctx.expect(cookie_session is None, f"after error responses {cookie_session}",
                   expected="GET /api/v1/dossiers without a token → 401", actual=cookie_session)
        after, normal = _sign_in(ctx, "SSO-33:after", port=browser)
    ctx.expect(
        normal.callback is not None and issues_session(normal.callback),
        "after error responses, a normal sign-in in the same browser no longer works",
        expected="HTTP 200 with a province session", actual=describe_response(normal.callback),
        reproduce=_reproduce_sign_in(ctx, after),
    )
    statuses = sorted({a.status_code for _, _, a in answers})
    return (f"{len(answers)} error responses ({len(codes) - 1} codes of the contract, an unknown code, error next "
            f"to a valid code of citizen {cccd}) refused without a session: HTTP {statuses}; the browser then "
            "signed in normally")


@check("SSO-34", criterion="sso", severity="major",
       title="An error response without state, or for a login never started, is refused cleanly",
       rule="RFC 6749 §4.1.2.1, §10.12; OpenID Connect Core 1.0 §3.1.2.6",
       requires=("sso",), detects=("500-on-error-callback",))
def handles_unsolicited_error_responses(ctx: CheckContext) -> str:
    """Error responses the province cannot bind to a login of this browser — without state, with a state of a
    login never started, in a browser with and without a login of its own — and a bare callback with no
    parameter at all: no session, no 5xx, and the browser has no cookie session afterwards."""
    issuer = _issuer(ctx)
    with _browser(ctx) as browser:
        _, params = _start_login(browser, _new_cccd(ctx, "SSO-34:redirect-uri"))
    redirect_uri = params["redirect_uri"]
    state = ctx.rng("SSO-34:state").getrandbits(128).to_bytes(16, "big").hex()
    cases: list[tuple[str, str, bool]] = [  # (label, URL, whether the browser starts a login first)
        ("error=access_denied without state, no login started", _error_url(redirect_uri, "access_denied", None,
                                                                           issuer), False),
        ("error=login_required with the state of no login", _error_url(redirect_uri, "login_required", state,
                                                                       issuer), False),
        ("error=access_denied without state, a login started", _error_url(redirect_uri, "access_denied", None,
                                                                          issuer), True),
        ("error=server_error with another state, a login started", _error_url(redirect_uri, "server_error", state,
                                                                              issuer), True),
        ("a bare callback (no parameter at all)", redirect_uri, False),
    ]
    answers: list[tuple[str, str, ResponseLike]] = []
    cookie_sessions: list[str] = []
    for label, url, started in cases:
        with _browser(ctx) as browser:
            if started:
                _start_login(browser, _new_cccd(ctx, f"SSO-34:{label}"))
            answers.append((label, url, browser.request("GET", url, name="/auth/callback (unsolicited)")))
            if answers[-1][2].status_code < 500:  # a crash is judged below; the server may drop the connection
                cookie_sessions += [f"{label}: {s}" for s in [_no_cookie_session(browser)] if s]
    _judge_error_answers(ctx, answers)
    ctx.require_evidence(len(answers), len(cases), "unsolicited error responses answered")
    ctx.expect(not cookie_sessions, "a browser has a session after an unsolicited error response: "
               + "; ".join(cookie_sessions), expected="GET /api/v1/dossiers without a token → 401",
               actual=cookie_sessions)
    return "; ".join(f"{label} → HTTP {answer.status_code}" for label, _, answer in answers)


# -- SSO-35, SSO-36 ---------------------------------------------------------------------------------
def _iss_supported(ctx: CheckContext) -> None:
    if _discovery(ctx).get("authorization_response_iss_parameter_supported") is not True:
        raise CheckError("the counterpart's discovery does not advertise authorization_response_iss_parameter_"
                         "supported, so RFC 9207 does not oblige the province to check iss")


def _iss_case(ctx: CheckContext, label: str, tamper: Callable[[str], str]) -> tuple[str, str, str | None]:
    """One sign-in whose callback ``iss`` is rewritten: (citizen, evidence, what is wrong or None)."""
    original: list[str] = []

    def rewrite(url: str) -> str:
        original.append(split_url(url)[1].get("iss", ""))
        return tamper(url)

    since = _token_events_total(ctx)
    with _browser(ctx) as browser:
        cccd, hops = _sign_in(ctx, f"iss:{label}", tamper=rewrite, port=browser)
        assert hops.callback is not None
        if original != [_issuer(ctx)]:
            raise CheckError(f"the counterpart's authorization response carried iss {original!r}, not its issuer")
        problem = _refused(browser, hops.callback)
    redeemed = _token_event(ctx, cccd, since) is not None
    if problem is None and redeemed:
        problem = "redeemed the authorization code at the national token endpoint before refusing"
    return cccd, f"{label} → HTTP {hops.callback.status_code}{', code redeemed' if redeemed else ''}", problem


def _judge_iss_cases(ctx: CheckContext, cases: dict[str, Callable[[str], str]]) -> list[str]:
    _iss_supported(ctx)
    seen: list[str] = []
    for label, tamper in cases.items():
        cccd, evidence, problem = _iss_case(ctx, label, tamper)
        ctx.expect(
            problem is None,
            f"a callback whose iss is {label} was not refused: the province {problem}",
            expected="a refusal (4xx or an error page, no session) before the code is redeemed (RFC 9207 §2.4: iss "
                     "must equal the issuer the login was sent to)",
            actual=evidence,
            reproduce=_reproduce_sign_in(ctx, cccd, then=f"rewrite the callback's iss ({label}) before the GET"),
        )
        seen.append(evidence)
    ctx.require_evidence(len(seen), len(cases), "callbacks with a rewritten iss")
    return seen


@check("SSO-35", criterion="sso", severity="critical",
       title="Relying party rejects an authorization response whose iss is not the national issuer (mix-up)",
       rule="RFC 9207 §2.4; RFC 9700 §4.4.2",
       requires=("sso",), detects=("ignores-iss-parameter",))
def rejects_wrong_iss(ctx: CheckContext) -> str:
    """The counterpart advertises ``authorization_response_iss_parameter_supported`` and sends ``iss`` in every
    authorization response. The real callback's iss is replaced by another issuer, by the issuer with a trailing
    slash, with a path added, in upper case (RFC 9207 compares by simple string comparison) and by an empty
    value: each must be refused, before the code is redeemed."""
    issuer = _issuer(ctx)
    wrong = {
        "another issuer (https://evil.example)": f"https://{_EVIL}",
        "the issuer with a trailing slash": issuer + "/",
        "the issuer with /mixup added": issuer + _MIXUP,
        "the issuer in upper case": issuer.upper(),
        "empty": "",
    }
    cases = {label: (lambda url, value=value: with_query_param(url, "iss", value)) for label, value in wrong.items()}
    seen = _judge_iss_cases(ctx, cases)
    return f"authorization responses from a foreign iss refused: {'; '.join(seen)}"


@check("SSO-36", criterion="sso", severity="critical",
       title="Relying party rejects an authorization response without iss when the provider advertises it",
       rule="RFC 9207 §2.4; OpenID FAPI 2.0 Security Profile §5.3.2.2",
       requires=("sso",), detects=("ignores-iss-parameter", "accepts-missing-iss-parameter"))
def rejects_missing_iss(ctx: CheckContext) -> str:
    """The national side advertises ``authorization_response_iss_parameter_supported``, so an authorization
    response without ``iss`` is not one it sent: the real callback stripped of iss must be refused before the code
    is redeemed. Must-accept: the untouched callback, carrying the right iss, signs the citizen in."""
    seen = _judge_iss_cases(ctx, {"missing": lambda url: without_query_param(url, "iss")})
    cccd, hops = _sign_in(ctx, "SSO-36:right-iss")
    ctx.expect(
        issues_session(hops.callback),
        "a callback carrying the right iss (RFC 9207) was refused",
        expected="HTTP 200 with a province session", actual=describe_response(hops.callback),
        reproduce=_reproduce_sign_in(ctx, cccd),
    )
    return f"{seen[0]}; the untouched callback with the right iss → HTTP 200 with a session (citizen {cccd})"


# -- SSO-37 -----------------------------------------------------------------------------------------
def _relative_return_to() -> str:
    return "/api/v1/dossiers?page=1"


def _login_with_return_to(ctx: CheckContext, purpose: str, return_to: str,
                          browser: HttpPort) -> tuple[str, Any]:
    cccd = _new_cccd(ctx, purpose)
    return cccd, ctx.province.login_hops(cccd, port=browser, return_to=return_to)


@check("SSO-37", criterion="sso", severity="critical",
       title="The session token never appears in a URL (redirects, return_to, links of the callback page, logout)",
       rule="RFC 9700 §4.3.2, §2.1.2; RFC 6750 §5.3; OpenID Connect Core 1.0 §3.1.2.7",
       requires=("sso",), detects=("access-token-in-url",))
def no_token_in_url(ctx: CheckContext) -> str:
    """A citizen signs in with a relative ``return_to`` (and once without); the session token the callback hands
    out must not appear in any URL the province sends the browser to or offers it: the callback's Location,
    Content-Location and Refresh, its ``return_to``, links of its page, nor the logout redirect."""
    findings: list[str] = []
    seen = 0
    with _browser(ctx) as browser:
        cccd, hops = _login_with_return_to(ctx, "SSO-37", _relative_return_to(), browser)
        plain_cccd, plain = _sign_in(ctx, "SSO-37:plain", port=browser)
        for label, callback in (("with return_to", hops.callback), ("without return_to", plain.callback)):
            body = _json(callback) if callback is not None else None
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise CheckError(f"the sign-in {label} gave no session token to look for (see SSO-01): "
                                 f"{describe_response(callback)}")
            seen += 1
            findings += [f"callback {label}: {where}" for where in token_in_urls(token, callback)]
        logout = browser.request("GET", "/auth/logout", headers={"Authorization": f"Bearer {token}"},
                                 name="/auth/logout")
        findings += [f"logout: {where}" for where in token_in_urls(token, logout)]
    ctx.require_evidence(seen, 2, "sign-ins with a session token")
    ctx.expect(
        not findings,
        "the session token is put in a URL (browser history, logs, Referer): " + "; ".join(findings),
        expected="the token only in the callback's JSON body (or a cookie), in no Location, return_to or link",
        actual=findings,
        reproduce=f"GET {ctx.target.province_url}/auth/login?login_hint={cccd}&return_to="
                  f"{_relative_return_to()}, follow the hops, read the callback's return_to and Location",
    )
    return (f"citizens {cccd} (return_to {_relative_return_to()}) and {plain_cccd}: the session token appears in no "
            "Location, Refresh, return_to or link of the callback, nor in the logout redirect")


# -- SSO-38 -----------------------------------------------------------------------------------------
def _referer_problem(response: ResponseLike, holds: str = "the code") -> str | None:
    if response.status_code in _REDIRECTS:
        location = response.headers.get("location") or ""
        if not {"code", "state"} & set(split_url(location)[1]):
            return None  # the query is dropped: the next page's URL carries neither
    policy = referrer_policy_of(response)
    if policy in SAFE_REFERRER_POLICIES:
        return None
    return (f"Referrer-Policy {policy!r}" if policy else "no Referrer-Policy") + f" on a page whose URL holds {holds}"


@check("SSO-38", criterion="sso", severity="major",
       title="The callback page does not hand the code and state to other sites through Referer",
       rule="RFC 9700 §4.2.4; RFC 6749 §10.6; W3C Referrer Policy §3",
       requires=("sso",), detects=("leaks-code-via-referer",))
def no_code_via_referer(ctx: CheckContext) -> str:
    """The callback URL holds the code and state; any resource or link of the page it answers would send that URL
    to another site as Referer. Every callback answer — a successful sign-in, a refused one (forged state), an
    error response page — must either set a Referrer-Policy that keeps the query on the site (no-referrer,
    same-origin, strict-origin, strict-origin-when-cross-origin, origin; header or ``<meta name=referrer>``), or
    redirect at once to a URL without code and state."""
    answers: list[tuple[str, str, ResponseLike]] = []
    cccd, hops = _sign_in(ctx, "SSO-38")
    assert hops.callback is not None
    answers.append(("successful callback", cccd, hops.callback))
    forged, refused = _sign_in(ctx, "SSO-38:refused", tamper=lambda url: with_query_param(url, "state", "forged"))
    assert refused.callback is not None
    answers.append(("refused callback (forged state)", forged, refused.callback))
    with _browser(ctx) as browser:
        started = _new_cccd(ctx, "SSO-38:error")
        _, params = _start_login(browser, started)
        url = _error_url(params["redirect_uri"], "access_denied", params["state"], _issuer(ctx))
        answers.append(("error response page", started, browser.request("GET", url, name="/auth/callback (error)")))
    ctx.require_evidence(len(answers), 3, "callback answers")
    problems = [(label, who, problem) for label, who, answer in answers
                if (problem := _referer_problem(answer, "the state" if label.startswith("error") else "the code"))]
    ctx.expect(
        not problems,
        "the callback page lets the code and state leak through Referer: " + "; ".join(
            f"{label}: {problem}" for label, _, problem in problems),
        expected="Referrer-Policy: no-referrer (or same-origin, strict-origin…), or a redirect dropping the query",
        actual={label: answer.headers.get("referrer-policy") for label, _, answer in answers},
        reproduce=_reproduce_sign_in(ctx, problems[0][1] if problems else cccd,
                                     then="read the callback answer's Referrer-Policy header"),
    )
    return "; ".join(f"{label} → HTTP {answer.status_code}, Referrer-Policy {referrer_policy_of(answer)}"
                     f"{' (redirect dropping the query)' if answer.status_code in _REDIRECTS else ''}"
                     for label, _, answer in answers)


# -- SSO-39 -----------------------------------------------------------------------------------------
def follows_payload(url: str, page: str) -> bool:
    """Whether destination ``url`` (on ``page``) is an off-site return_to payload followed: off-site, and to the
    payloads' host or a ``javascript:`` / ``data:`` URL (an unrelated off-site link, e.g. to the national portal,
    is no open redirect)."""
    lowered = url.strip().lower()
    return resolves_off_site(url, page) and (_EVIL in lowered or lowered.startswith(("javascript:", "data:")))


def _open_redirect(ctx: CheckContext, payload: str) -> tuple[str, str | None]:
    """(evidence, what went wrong or None) for one return_to value that points off-site."""
    with _browser(ctx) as browser:
        try:
            _, hops = _login_with_return_to(ctx, f"SSO-39:{payload}", payload, browser)
        except HostNotAllowed as exc:  # a hop pointed the browser at the payload's host
            return f"{payload!r}: a sign-on hop led off-site", f"sent the browser off-site ({exc})"
    if hops.login.status_code >= 500:
        return f"{payload!r}: /auth/login → HTTP {hops.login.status_code}", "crashed on it at /auth/login"
    if hops.authorize_url is None:  # refused (or an error page) at /auth/login: only where it sends the browser
        page = ctx.target.province_url + "/auth/login"
        off = [u for where, u in destinations(hops.login) if not where.startswith("body") and follows_payload(u, page)]
        return (f"{payload!r}: /auth/login → HTTP {hops.login.status_code}",
                f"/auth/login sent the browser to {off[0]!r}" if off else None)
    if hops.callback is None:
        raise CheckError(f"sign-on with return_to {payload!r} did not reach the callback: "
                         f"{describe_response(hops.authorize)}")
    page = hops.callback_url or ctx.target.province_url
    off = [(where, u) for where, u in destinations(hops.callback) if follows_payload(u, page)]
    evidence = f"{payload!r}: /auth/login → 302, callback → HTTP {hops.callback.status_code}"
    if hops.callback.status_code >= 500:
        return evidence, "the callback crashed on it"
    return evidence, (f"the callback's {off[0][0]} sends the browser off-site to {off[0][1]!r}" if off else None)


@check("SSO-39", criterion="sso", severity="critical",
       title="The post-login return_to never redirects off-site; a relative return_to is honoured",
       rule="RFC 9700 §4.11.1; RFC 6749 §10.15; contracts/province-dossier.openapi.yaml /auth/login return_to",
       requires=("sso",), detects=("open-redirect-after-login",))
def no_open_redirect_after_login(ctx: CheckContext) -> str:
    """``/auth/login?return_to=…`` with absolute URLs to another host, scheme-relative ``//host``, ``https:host``,
    backslash and tab tricks, percent-encoded slashes, user-info and suffix tricks, ``javascript:`` and ``data:``:
    the province may refuse them or drop them, but neither ``/auth/login`` nor the callback may send the browser
    (Location, Refresh, the session's ``return_to``, a link) to another origin. Must-accept: a relative
    ``return_to`` comes back as the session's ``return_to`` (or the callback's redirect)."""
    host = urlsplit(ctx.target.province_url).netloc
    payloads = [p.replace("{host}", host) for p in OPEN_REDIRECT_PAYLOADS]
    seen: list[str] = []
    for payload in payloads:
        evidence, problem = _open_redirect(ctx, payload)
        ctx.expect(
            problem is None,
            f"open redirect after login: with return_to {payload!r} {problem}",
            expected="a refusal of the return_to, or a sign-in whose destinations stay on the province's site",
            actual=evidence,
            reproduce=f"GET {ctx.target.province_url}/auth/login?{urlencode({'return_to': payload})}&login_hint=…, "
                      "follow the hops, read the callback's Location and return_to",
        )
        seen.append(evidence)
    ctx.require_evidence(len(seen), len(payloads), "return_to values tried")
    relative = _relative_return_to()
    with _browser(ctx) as browser:
        cccd, hops = _login_with_return_to(ctx, "SSO-39:relative", relative, browser)
    # where the session sends the citizen, without a fragment (a token there is SSO-37's finding, not this one's)
    kept = [u.split("#")[0] for _, u in destinations(hops.callback)] if hops.callback is not None else []
    ctx.expect(
        hops.callback is not None and relative in kept and (
            issues_session(hops.callback) or hops.callback.status_code in _REDIRECTS),
        f"a relative return_to ({relative}) was not honoured after sign-in",
        expected=f"a session whose return_to is {relative} (or a redirect to it)",
        actual=describe_response(hops.callback),
        reproduce=f"GET {ctx.target.province_url}/auth/login?{urlencode({'return_to': relative})}"
                  f"&login_hint={cccd}, follow the hops",
    )
    refused = sum(" → 302" not in e for e in seen)
    return (f"{len(payloads)} off-site return_to values: {refused} refused at /auth/login, "
            f"{len(payloads) - refused} signed in without leaving the site; relative {relative} honoured")
