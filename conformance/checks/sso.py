"""Single sign-on: the province as a relying party of the national identity provider (OpenID Connect Core 1.0).

The province's ``/auth/login`` redirect is inspected parameter by parameter (SSO-01), its logout must end the
national session too (SSO-02), and its callback must refuse what an OpenID relying party refuses: ID tokens
that are forged or not meant for it (SSO-03…09, the counterpart arms the defect through its control API), a
forged state (SSO-10), a replayed authorization code (SSO-11). Finally the identity of a dossier must be the
one the national provider vouched for, not what the form says (SSO-12).

Each sign-in is made by a fresh citizen of its own, and a defect is armed for that citizen only (control API
``login_hint``): sign-ins of other checks, xdist workers or clients of the counterpart can neither take it nor
receive it, so the checks need no turn-taking. As evidence, each sign-in then looks up in the counterpart's IdP
event ledger which defect the ID token issued for its citizen really carried.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt

from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, CheckFailure, check
from haicap.data_generators.identity import make_cccd
from haicap.errors import HaicapError
from haicap.http_port import HttpPort, HttpxPort, ResponseLike
from haicap.province_client import CitizenSession, LoginFailed, LoginHops, ProvinceClient

__all__ = [
    "ID_TOKEN_DEFECTS",
    "authorization_request_findings",
    "describe_response",
    "redact_url",
    "split_url",
    "with_query_param",
]

#: One check per ID token defect of the counterpart: (check id, defect, fault it detects, what is wrong, rule).
ID_TOKEN_DEFECTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("SSO-03", "bad-signature", "accepts-bad-id-token-signature",
     "an ID token whose signature does not verify against the national JWKS",
     "OpenID Connect Core 1.0 §3.1.3.7 (6); RFC 7515 §5.2"),
    ("SSO-04", "alg-none", "accepts-alg-none",
     "an unsigned ID token (alg none)",
     "OpenID Connect Core 1.0 §3.1.3.7 (6)-(7); RFC 8725 §3.1"),
    ("SSO-05", "wrong-iss", "skips-issuer-check",
     "an ID token whose iss is not the national issuer",
     "OpenID Connect Core 1.0 §3.1.3.7 (2)"),
    ("SSO-06", "wrong-aud", "skips-audience-check",
     "an ID token whose aud does not contain the province's client_id",
     "OpenID Connect Core 1.0 §3.1.3.7 (3)"),
    ("SSO-07", "expired", "accepts-expired-id-token",
     "an expired ID token (exp in the past)",
     "OpenID Connect Core 1.0 §3.1.3.7 (9)"),
    ("SSO-08", "iat-future", "accepts-future-iat",
     "an ID token issued in the future (iat one hour ahead)",
     "OpenID Connect Core 1.0 §3.1.3.7 (10)"),
    ("SSO-09", "nonce-mismatch", "skips-nonce-check",
     "an ID token whose nonce is not the one sent in the authentication request",
     "OpenID Connect Core 1.0 §3.1.3.7 (11), §15.5.2"),
)

_SECRET_PARAMS = frozenset({"id_token_hint", "code", "code_verifier", "client_secret", "access_token", "id_token"})
_SECRET_KEYS = frozenset({"access_token", "id_token", "refresh_token", "session", "client_secret"})
_LEDGER_WINDOW = 500
_EVENTS = "/_ledger/idp/events"


# -- pure helpers (tested in tests/test_checks_sso.py) ------------------------------------------------
def split_url(url: str) -> tuple[str, dict[str, str]]:
    """(scheme://host/path, first value of each query parameter)."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(key, value)
    return base, params


def with_query_param(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (added when absent)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    pairs.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def redact_url(url: str) -> str:
    """``url`` with the values of token-like query parameters (codes, ID token hints) replaced by ``***``."""
    parts = urlsplit(url)
    pairs = [(k, "***" if k in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="*")))


def describe_response(response: ResponseLike | None, limit: int = 300) -> str:
    """``HTTP <status>`` plus the Location or a trimmed body, with tokens left out."""
    if response is None:
        return "no response"
    out = f"HTTP {response.status_code}"
    location = response.headers.get("location")
    if location:
        return f"{out} Location: {redact_url(location)}"
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f"{out} {text[:limit]}" if text else out
    if isinstance(body, dict):
        body = {k: ("***" if k in _SECRET_KEYS else v) for k, v in body.items()}
    text = json.dumps(body, ensure_ascii=False)
    return f"{out} {text[:limit]}{'…' if len(text) > limit else ''}"


def authorization_request_findings(location: str, authorization_endpoint: str) -> list[str]:
    """What is wrong with an OpenID authentication request (the province's redirect to ``authorize``).

    Empty when it is a code-flow request to ``authorization_endpoint`` with scope openid, client_id,
    redirect_uri, state, nonce, a PKCE S256 challenge and acr_values LoA1.
    """
    base, params = split_url(location)
    findings: list[str] = []
    if base != authorization_endpoint.rstrip("?"):
        findings.append(f"redirects to {base}, not the national authorization_endpoint {authorization_endpoint}")
    if params.get("response_type") != "code":
        findings.append(f"response_type is {params.get('response_type')!r}, expected 'code'")
    if "openid" not in params.get("scope", "").split():
        findings.append(f"scope {params.get('scope')!r} does not contain openid")
    for name in ("client_id", "redirect_uri", "state", "nonce"):
        if not params.get(name):
            findings.append(f"{name} is missing")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not challenge:
        findings.append("code_challenge is missing (no PKCE)")
    elif len(challenge) != 43 or not all(c.isalnum() or c in "-_" for c in challenge):
        findings.append(f"code_challenge {challenge!r} is not a base64url SHA-256 digest (43 characters)")
    if method != "S256":
        findings.append(f"code_challenge_method is {method!r}, expected 'S256'")
    if "LoA1" not in params.get("acr_values", "").split():
        findings.append(f"acr_values {params.get('acr_values')!r} does not request LoA1")
    return findings


# -- set-up helpers ---------------------------------------------------------------------------------
def _new_cccd(ctx: CheckContext, purpose: str) -> str:
    rng = ctx.rng(f"sso:{purpose}")
    return make_cccd(rng, date(rng.randint(1950, 2004), rng.randint(1, 12), 1), rng.random() < 0.5)


def _discovery(ctx: CheckContext) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        url = ctx.target.national_url.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=10.0)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CheckError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200 or not isinstance(data, dict):
            raise CheckError(f"GET {url}: HTTP {response.status_code}")
        return data

    return ctx.shared("sso:discovery", fetch)


def _ledger(ctx: CheckContext) -> httpx.Client:
    return httpx.Client(base_url=ctx.target.national_url, headers=ctx.target.control_headers(), timeout=10.0)


def _ledger_error(exc: Exception) -> CheckError:
    return CheckError(f"the counterpart's IdP event ledger is unreadable: {type(exc).__name__}: {exc}")


def _token_events_total(ctx: CheckContext) -> int:
    """How many token-endpoint events the counterpart has recorded so far (a mark before a sign-in)."""
    try:
        with _ledger(ctx) as http:
            return int(http.get(_EVENTS, params={"kind": "token", "limit": 1}).raise_for_status().json()["total"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise _ledger_error(exc) from None


def _token_event(ctx: CheckContext, cccd: str, since: int) -> dict[str, Any] | None:
    """The counterpart's latest token-endpoint event for ``cccd`` recorded after mark ``since`` (which defect
    its ID token carried), or None when the code was not exchanged."""
    try:
        with _ledger(ctx) as http:
            total = int(http.get(_EVENTS, params={"kind": "token", "limit": 1}).raise_for_status().json()["total"])
            offset = max(since, total - _LEDGER_WINDOW)
            page = http.get(_EVENTS, params={"kind": "token", "limit": _LEDGER_WINDOW, "offset": offset})
            items = page.raise_for_status().json()["items"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise _ledger_error(exc) from None
    return next((e for e in reversed(items) if e.get("SoDinhDanh") == cccd), None)


def _sign_in(
    ctx: CheckContext,
    purpose: str,
    *,
    defect: str | None = None,
    tamper: Callable[[str], str] | None = None,
    port: HttpPort | None = None,
    partial: bool = False,
    seconds: int | None = None,
) -> tuple[str, LoginHops]:
    """Walk the sign-on hops for a new citizen, the ID token carrying ``defect`` (or none) for sure.

    The defect is armed for this citizen only, and the counterpart's ledger must confirm the ID token issued
    for the citizen carried exactly it. A sign-on that does not reach the province callback is a
    :class:`CheckError` (this check cannot run), unless ``partial`` (SSO-01 judges the hops itself). ``seconds``
    goes with the clock defects (exp-passed-by, iat-ahead-by)."""
    cccd = _new_cccd(ctx, purpose)
    since = _token_events_total(ctx)
    if defect is not None:
        ctx.national.next_token_defect(defect, login_hint=cccd, seconds=seconds)
    hops = ctx.province.login_hops(cccd, port=port, tamper_callback=tamper)
    if hops.callback is None:
        if partial:
            return cccd, hops
        raise CheckError("sign-on did not reach the province callback: GET /auth/login → "
                         f"{describe_response(hops.login)}; national authorize → "
                         f"{describe_response(hops.authorize)}")
    event = _token_event(ctx, cccd, since)
    if event is None:  # the code was never exchanged (refused before the token endpoint)
        if defect is None:
            return cccd, hops
        raise CheckError(f"the province refused the callback before exchanging the code, so the '{defect}' "
                         f"ID token was never examined: {describe_response(hops.callback)}")
    if event.get("outcome") != "ok":
        raise CheckError(f"the counterpart's token endpoint refused the province's code exchange for citizen {cccd} "
                         f"({event.get('outcome')}: {event.get('detail')}), so no ID token was examined")
    applied = event.get("defect")
    if applied != defect and defect is None:
        raise CheckError(f"the ID token issued for citizen {cccd} carried defect {applied} although none was armed "
                         "for it: another client of the counterpart armed an untargeted defect (next-token without "
                         "login_hint), see the counterpart's IdP event ledger")
    if applied != defect:
        raise CheckError(f"the ID token issued for citizen {cccd} carried defect {applied or 'none'}, not {defect} "
                         "(counterpart IdP event ledger): does the counterpart support targeted defects "
                         "(next-token login_hint)?")
    return cccd, hops


def _session(ctx: CheckContext, purpose: str) -> tuple[str, CitizenSession]:
    """A signed-in new citizen (the sign-on itself is judged by SSO-01)."""
    cccd, hops = _sign_in(ctx, purpose)
    try:
        return cccd, ProvinceClient.session_from_callback(cccd, hops.callback)  # type: ignore[arg-type]
    except LoginFailed as exc:
        raise CheckError(f"a normal sign-in failed, so this check cannot run (see SSO-01): {exc}") from None


@contextlib.contextmanager
def _browser(ctx: CheckContext) -> Iterator[HttpxPort]:
    """A new browser (own cookie jar) on the province."""
    port = HttpxPort(ctx.target.province_url, allowed_hosts=frozenset(ctx.target.allowed_hosts))
    try:
        yield port
    finally:
        port.close()


def _expected_name(ctx: CheckContext, cccd: str) -> str | None:
    """HoVaTen the counterpart's identity provider gives ``cccd``, as its ledger reports it (whatever its seed)."""
    claims = ctx.national.citizen(cccd)
    name = claims.get("HoVaTen") if isinstance(claims, dict) else None
    return name if isinstance(name, str) else None


def _reproduce_sign_in(ctx: CheckContext, cccd: str, defect: str | None = None, then: str = "",
                       seconds: int | None = None) -> str:
    steps = []
    if defect:
        extra = f", \"seconds\": {seconds}" if seconds is not None else ""
        steps.append(f"POST {ctx.target.national_url}/_control/idp/next-token "
                     f"{{\"defect\": \"{defect}\", \"login_hint\": \"{cccd}\"{extra}}}")
    steps.append(f"GET {ctx.target.province_url}/auth/login?login_hint={cccd}, follow the 302 to the national "
                 "authorize endpoint and its 302 to the province callback")
    if then:
        steps.append(then)
    return "; ".join(steps)


# -- SSO-01 -----------------------------------------------------------------------------------------
@check("SSO-01", criterion="sso", severity="critical",
       title="Sign-on is an authorization code request with state, nonce and PKCE S256, and yields the citizen",
       rule="OpenID Connect Core 1.0 §3.1.2.1, §3.1.3; RFC 6749 §4.1.1; RFC 7636 §4.3; RFC 9700 §2.1.1",
       requires=("sso",), detects=("no-pkce",))
def sign_on_request(ctx: CheckContext) -> str:
    """The province's ``/auth/login`` redirects to the national authorize endpoint with response_type=code, scope
    openid, client_id, its registered redirect_uri, a fresh state and nonce, a PKCE S256 code_challenge and
    acr_values LoA1; the code flow then completes with a province session carrying the citizen's SoDinhDanh
    and HoVaTen as the national identity provider gave them."""
    discovery = _discovery(ctx)
    authorize_endpoint = str(discovery.get("authorization_endpoint", ""))
    cccd, hops = _sign_in(ctx, "SSO-01", partial=True)
    reproduce = _reproduce_sign_in(ctx, cccd)
    if hops.authorize_url is None:
        raise CheckFailure(
            "GET /auth/login did not redirect to the national authorize endpoint",
            expected=f"302 Location: {authorize_endpoint}?response_type=code&…",
            actual=describe_response(hops.login),
            reproduce=f"GET {ctx.target.province_url}/auth/login?login_hint={cccd}",
        )
    findings = authorization_request_findings(hops.authorize_url, authorize_endpoint)
    ctx.expect(
        not findings,
        "the sign-on request is not a well-formed authorization code request: " + "; ".join(findings),
        expected=f"302 to {authorize_endpoint}?response_type=code&scope=openid&client_id=…&redirect_uri=…&state=…"
                 "&nonce=…&code_challenge=<43 chars>&code_challenge_method=S256&acr_values=LoA1",
        actual=f"Location: {redact_url(hops.authorize_url)}",
        reproduce=f"GET {ctx.target.province_url}/auth/login?login_hint={cccd}",
    )
    first = split_url(hops.authorize_url)[1]
    with _browser(ctx) as browser:
        again = browser.request("GET", "/auth/login?" + urlencode({"login_hint": cccd}), name="/auth/login")
    second = split_url(again.headers.get("location") or "")[1]
    reused = [p for p in ("state", "nonce", "code_challenge") if first.get(p) and first.get(p) == second.get(p)]
    ctx.expect(
        not reused,
        f"{', '.join(reused)} repeated across two sign-ons: they must be fresh, unguessable values per request",
        expected="a new state, nonce and code_challenge for every authentication request (RFC 9700 §2.1, §4.7.1)",
        actual={p: "same value twice" for p in reused},
        reproduce=f"GET {ctx.target.province_url}/auth/login twice and compare the Location parameters",
    )
    redirect_uri = first.get("redirect_uri", "")
    callback_url = hops.callback_url or ""
    ctx.expect(
        split_url(callback_url)[0] == redirect_uri and "code" in split_url(callback_url)[1],
        "the national authorize endpoint did not send the browser back to the redirect_uri with a code",
        expected=f"302 to {redirect_uri}?code=…&state=…",
        actual=describe_response(hops.authorize),
        reproduce=reproduce,
    )
    try:
        session = ProvinceClient.session_from_callback(cccd, hops.callback)  # type: ignore[arg-type]
    except LoginFailed as exc:
        raise CheckFailure(
            "the code flow did not complete: the province callback issued no session",
            expected="HTTP 200 with a province session (access_token, claims SoDinhDanh and HoVaTen)",
            actual=describe_response(exc.response) if exc.response is not None else str(exc),
            reproduce=reproduce,
        ) from None
    name = _expected_name(ctx, cccd)
    claims = session.claims
    wrong = {}
    if claims.get("SoDinhDanh") != cccd:
        wrong["SoDinhDanh"] = claims.get("SoDinhDanh")
    if not isinstance(claims.get("HoVaTen"), str) or (name is not None and claims.get("HoVaTen") != name):
        wrong["HoVaTen"] = claims.get("HoVaTen")
    ctx.expect(
        not wrong,
        "the province session does not carry the national identity: " + ", ".join(
            f"{k} is {v!r}" for k, v in wrong.items()),
        expected={"SoDinhDanh": cccd, "HoVaTen": name},
        actual={k: claims.get(k) for k in ("SoDinhDanh", "HoVaTen")},
        reproduce=reproduce,
    )
    listed = ctx.province.dossiers(session, name="SSO-01 list dossiers")
    ctx.expect(
        listed.status_code == 200,
        "the session issued by the callback is not accepted by the dossier API",
        expected="GET /api/v1/dossiers with the session → HTTP 200",
        actual=describe_response(listed),
        reproduce=reproduce + "; GET /api/v1/dossiers with Authorization: Bearer <session>",
    )
    return (f"citizen {cccd}: /auth/login → HTTP {hops.login.status_code} to {authorize_endpoint} "
            f"(response_type {first.get('response_type')}, PKCE {first.get('code_challenge_method')}, acr_values "
            f"{first.get('acr_values')}; state, nonce and code_challenge new on a second sign-on); callback → "
            f"session with SoDinhDanh {claims.get('SoDinhDanh')} and HoVaTen {claims.get('HoVaTen')!r} as the "
            f"national IdP gave them; dossier list → HTTP {listed.status_code}")


# -- SSO-02 -----------------------------------------------------------------------------------------
@check("SSO-02", criterion="sso", severity="major",
       title="Logout ends the province session and redirects to the national end-session endpoint",
       rule="OpenID Connect RP-Initiated Logout 1.0 §2, §3; OpenID Connect Session Management",
       requires=("sso",), detects=("local-logout-only",))
def logout(ctx: CheckContext) -> str:
    """``/auth/logout`` answers a redirect to the national ``end_session_endpoint`` with the citizen's
    ``id_token_hint`` and a registered ``post_logout_redirect_uri`` (which the national side accepts), and the
    province session no longer opens the dossier API afterwards."""
    discovery = _discovery(ctx)
    end_session = str(discovery.get("end_session_endpoint", ""))
    issuer = str(discovery.get("issuer", ""))
    cccd, session = _session(ctx, "SSO-02")
    reproduce = _reproduce_sign_in(ctx, cccd, then="GET /auth/logout with Authorization: Bearer <session>")
    answer = ctx.province.port.request("GET", "/auth/logout", headers=session.headers(), name="/auth/logout")
    problems: list[str] = []
    back = ""
    location = answer.headers.get("location") if answer.status_code in {302, 303, 307} else None
    if location is None:
        problems.append(f"GET /auth/logout answered HTTP {answer.status_code} without a redirect to the national "
                        "end-session endpoint (the national session stays open)")
    else:
        base, params = split_url(location)
        if base != end_session:
            problems.append(f"logout redirects to {base}, not the national end_session_endpoint {end_session}")
        missing = [p for p in ("id_token_hint", "post_logout_redirect_uri") if not params.get(p)]
        if missing:
            problems.append(f"the end-session request lacks {' and '.join(missing)}")
        hint = params.get("id_token_hint")
        if hint:
            try:
                claims = jwt.decode(hint, options={"verify_signature": False})
            except jwt.PyJWTError:
                claims = None
            if claims is None:
                problems.append("id_token_hint is not a JWT")
            elif claims.get("iss") != issuer or claims.get("SoDinhDanh", cccd) != cccd:
                problems.append("id_token_hint is not the ID token of this sign-in "
                                f"(iss {claims.get('iss')!r}, SoDinhDanh {claims.get('SoDinhDanh')!r})")
        if not problems:
            national = ctx.province.port.request("GET", location, name="national /end-session")
            back = national.headers.get("location", "") if national.status_code in {302, 303} else ""
            if not back.startswith(params["post_logout_redirect_uri"]):
                problems.append("the national end-session endpoint did not accept the request: "
                                f"{describe_response(national)}")
    after = ctx.province.dossiers(session, name="SSO-02 dossiers after logout")
    if after.status_code != 401:
        problems.append(f"the province session still works after logout (GET /api/v1/dossiers → HTTP "
                        f"{after.status_code})")
    ctx.expect(
        not problems,
        "logout is incomplete: " + "; ".join(problems),
        expected=f"302 to {end_session}?id_token_hint=…&post_logout_redirect_uri=<registered>&state=…, "
                 "then the province session answers 401",
        actual=describe_response(answer),
        reproduce=reproduce,
    )
    return (f"citizen {cccd}: /auth/logout → HTTP {answer.status_code} to {end_session} with this sign-in's "
            f"id_token_hint; the national end-session redirected back to {split_url(back)[0]}; the province "
            f"session then answered HTTP {after.status_code}")


# -- SSO-03 … SSO-09 --------------------------------------------------------------------------------
def _rejects_defective_id_token(ctx: CheckContext, check_id: str, defect: str, what: str) -> str:
    cccd, hops = _sign_in(ctx, check_id, defect=defect)
    callback = hops.callback
    assert callback is not None
    reproduce = _reproduce_sign_in(ctx, cccd, defect)
    expected = "the callback refuses the sign-in with a 4xx (no province session)"
    ctx.expect(
        callback.status_code >= 300,
        f"the province issued a session for {what} (counterpart defect '{defect}')",
        expected=expected, actual=describe_response(callback), reproduce=reproduce,
    )
    ctx.expect(
        400 <= callback.status_code < 500,
        f"the callback answered HTTP {callback.status_code} to {what}, not a 4xx refusal",
        expected=expected, actual=describe_response(callback), reproduce=reproduce,
    )
    after, hops_after = _sign_in(ctx, f"{check_id}:after")
    ok = hops_after.callback is not None and hops_after.callback.status_code == 200
    ctx.expect(
        ok,
        f"after refusing {what}, a normal sign-in no longer works",
        expected="HTTP 200 with a province session",
        actual=describe_response(hops_after.callback),
        reproduce=_reproduce_sign_in(ctx, after),
    )
    return (f"'{defect}' ID token (confirmed by the counterpart's IdP ledger for citizen {cccd}) refused: callback "
            f"answered HTTP {callback.status_code}, no session; a normal sign-in right after → HTTP "
            f"{hops_after.callback.status_code if hops_after.callback is not None else '?'}")


def _register_id_token_check(check_id: str, defect: str, fault: str, what: str, rule: str) -> None:
    def run(ctx: CheckContext) -> str:
        return _rejects_defective_id_token(ctx, check_id, defect, what)

    run.__name__ = run.__qualname__ = f"rejects_{defect.replace('-', '_')}"
    run.__doc__ = (f"After the counterpart is told to issue {what} (control API defect '{defect}'), the province's "
                   "callback must refuse the sign-in with a 4xx and issue no session; a normal sign-in right "
                   "after still works.")
    check(check_id, criterion="sso", severity="critical", title=f"Relying party rejects {what}", rule=rule,
          requires=("sso",), detects=(fault,))(run)


for _spec in ID_TOKEN_DEFECTS:
    _register_id_token_check(*_spec)


# -- SSO-10 -----------------------------------------------------------------------------------------
@check("SSO-10", criterion="sso", severity="critical",
       title="Relying party rejects a callback whose state is not the one it sent",
       rule="RFC 6749 §10.12; RFC 9700 §4.7.1; OpenID Connect Core 1.0 §3.1.2.7",
       requires=("sso",), detects=("skips-state-check",))
def rejects_state_mismatch(ctx: CheckContext) -> str:
    """The callback URL coming back from the national authorize endpoint is altered to carry another state;
    the province must refuse it (CSRF protection) and issue no session."""

    def forge(url: str) -> str:
        return with_query_param(url, "state", "forged-" + split_url(url)[1].get("state", ""))

    cccd, hops = _sign_in(ctx, "SSO-10", tamper=forge)
    callback = hops.callback
    assert callback is not None
    reproduce = _reproduce_sign_in(ctx, cccd, then="change the callback's state to 'forged-<state>' before the GET")
    ctx.expect(
        400 <= callback.status_code < 500,
        f"the province answered HTTP {callback.status_code} to a callback whose state is not the one it sent",
        expected="a 4xx refusal (state mismatch), no session",
        actual=describe_response(callback),
        reproduce=reproduce,
    )
    return f"callback for citizen {cccd} carrying state 'forged-<state>' refused: HTTP {callback.status_code}"


# -- SSO-11 -----------------------------------------------------------------------------------------
@check("SSO-11", criterion="sso", severity="critical",
       title="A replayed callback (reused authorization code) yields no session",
       rule="RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5; OpenID Connect Core 1.0 §3.1.3.2",
       requires=("sso",), detects=("accepts-reused-code",))
def rejects_reused_code(ctx: CheckContext) -> str:
    """A sign-in completes, then the browser opens the very same callback URL (same code, same state) again:
    the second request must not produce a session."""
    with _browser(ctx) as browser:
        cccd, hops = _sign_in(ctx, "SSO-11", port=browser)
        first = hops.callback
        assert first is not None and hops.callback_url is not None
        if first.status_code != 200:
            raise CheckError(f"the first sign-in failed, so the replay cannot be tested (see SSO-01): "
                             f"{describe_response(first)}")
        replay = browser.request("GET", hops.callback_url, name="/auth/callback (replayed)")
    ctx.expect(
        400 <= replay.status_code < 500,
        f"the replayed callback (authorization code already used) answered HTTP {replay.status_code}",
        expected="a 4xx refusal of the second use of the code, no session",
        actual=describe_response(replay),
        reproduce=_reproduce_sign_in(ctx, cccd, then="GET the same callback URL a second time"),
    )
    return (f"citizen {cccd}: first callback → HTTP {first.status_code} with a session; the same callback (code "
            f"already used) again → HTTP {replay.status_code}")


# -- SSO-12 -----------------------------------------------------------------------------------------
def _data(ctx: CheckContext) -> Any:
    """The run's data pool (one per process, per xdist worker its own walk: conformance/journeys.py)."""
    from haicap.conformance.journeys import scenario_data

    return scenario_data(ctx)


def _citizen_procedure(ctx: CheckContext, data: Any) -> str:
    """A procedure the province receives online and the data pool has a citizen dossier for (birth first)."""
    answer = ctx.province.procedures()
    try:
        offered = [p["MaTTHC"] for p in answer.json()["items"]]
    except (ValueError, KeyError, TypeError):
        raise CheckError(f"GET /api/v1/procedures gave no procedure list: {describe_response(answer)}") from None
    for code in ("1.001193", "1.000656", "1.000894", *offered):
        if code not in offered:
            continue
        try:
            sample = data.submission(code, None, {"SoDinhDanh": "000000000000", "HoVaTen": "x"})
        except HaicapError:  # the pool has no dossier of this procedure
            continue
        if sample.get("LoaiDoiTuong", "1") == "1" and "DinhDanhCHS" in sample:
            return code
    raise CheckError(f"none of the province's procedures has a citizen dossier in the data pool: {offered}")


@check("SSO-12", criterion="sso", severity="critical",
       title="The dossier carries the signed-in identity (CCCD, name), not the one claimed in the body",
       rule="OpenID Connect Core 1.0 §5.1, §5.7; Decree 45/2020/NĐ-CP art. 11 (VNeID-authenticated applicant)",
       requires=("sso", "submission"), detects=("identity-from-body",))
def identity_on_dossier(ctx: CheckContext) -> str:
    """A signed-in citizen submits a dossier whose body names another person as applicant (ChuHoSo and the
    DinhDanhCHS of LoaiDinhDanh 1). The province must either refuse it, or store the dossier with the SSO
    identity: the signed-in citizen's SoDinhDanh and HoVaTen."""
    data = _data(ctx)
    cccd, session = _session(ctx, "SSO-12")
    name = session.claims.get("HoVaTen")
    me = {"SoDinhDanh": cccd, "HoVaTen": name}
    procedure = _citizen_procedure(ctx, data)
    own = ctx.province.submit(session, data.submission(procedure, None, me), name="SSO-12 own dossier")
    if own.status_code != 201:
        raise CheckError(f"the province refused the citizen's own well-formed {procedure} dossier, so the identity "
                         f"rule cannot be tested (see the submission checks): {describe_response(own)}")
    other = data.citizen()
    if other["SoDinhDanh"] == cccd:
        other = data.citizen()
    body = data.submission(procedure, None, other)
    answer = ctx.province.submit(session, body, name="SSO-12 dossier claiming another person")
    reproduce = _reproduce_sign_in(ctx, cccd, then=(
        f"POST /api/v1/dossiers (MaTTHC {procedure}) with ChuHoSo {other['HoVaTen']!r} and DinhDanhCHS "
        f"[{{LoaiDinhDanh 1, SoDinhDanh {other['SoDinhDanh']}}}]"))
    if 400 <= answer.status_code < 500:  # refused: the identity cannot be overridden by the form
        return (f"citizen {cccd}'s own {procedure} dossier → HTTP {own.status_code}; a dossier naming citizen "
                f"{other['SoDinhDanh']} as applicant refused: HTTP {answer.status_code}")
    ctx.expect(
        answer.status_code == 201,
        f"the submission naming another person answered HTTP {answer.status_code}",
        expected="a 4xx refusal, or 201 with the SSO identity on the dossier",
        actual=describe_response(answer),
        reproduce=reproduce,
    )
    try:
        dossier = answer.json()
    except ValueError:
        dossier = None
    if not isinstance(dossier, dict):
        raise CheckError(f"the 201 answer to the submission is not a dossier: {describe_response(answer)}")
    ma_ho_so = dossier.get("MaHoSo")
    if "DinhDanhCHS" not in dossier or "ChuHoSo" not in dossier:  # a summary answer: read the stored dossier
        stored = ctx.province.dossier(session, str(ma_ho_so), name="SSO-12 get dossier")
        ctx.expect(
            stored.status_code == 200,
            f"dossier {ma_ho_so}, submitted by the signed-in citizen {cccd}, is not theirs to read: it was filed "
            "under the identity claimed in the body",
            expected="HTTP 200 (the dossier belongs to the signed-in citizen)",
            actual=describe_response(stored), reproduce=reproduce,
        )
        dossier = stored.json()
    ids = [d.get("SoDinhDanh") for d in dossier.get("DinhDanhCHS") or [] if d.get("LoaiDinhDanh") == "1"]
    wrong: list[str] = []
    if ids != [cccd]:
        wrong.append(f"DinhDanhCHS (LoaiDinhDanh 1) is {ids}, the signed-in citizen is {cccd}")
    if dossier.get("ChuHoSo") != name:
        wrong.append(f"ChuHoSo is {dossier.get('ChuHoSo')!r}, the signed-in citizen is {name!r}")
    ctx.expect(
        not wrong,
        f"dossier {ma_ho_so} carries the identity claimed in the request body, not the SSO identity: "
        + "; ".join(wrong),
        expected={"ChuHoSo": name, "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": cccd}]},
        actual={"ChuHoSo": dossier.get("ChuHoSo"), "DinhDanhCHS": dossier.get("DinhDanhCHS")},
        reproduce=reproduce,
    )
    return (f"dossier {ma_ho_so} ({procedure}) whose body names citizen {other['SoDinhDanh']} was stored "
            f"(HTTP {answer.status_code}) under the signed-in identity: DinhDanhCHS {cccd}, ChuHoSo {name!r}")
