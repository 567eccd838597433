"""Single sign-on to the OpenID relying-party bar: every way an ID token, the JWKS or userinfo can be wrong, and the
valid variations a relying party must not refuse (OpenID Connect Core 1.0 §3.1.3.7, §5.3.2; RFC 8725; RFC 7517).

SSO-03…09 (:mod:`sso`) refuse the gross defects; these checks follow the OpenID Foundation RP and FAPI client tests:
an ID token without sub/aud/iat/exp/iss or nonce, audiences not (only) this client without a proper azp, any
algorithm other than the registered RS256 (HS256 with the client secret or the public key, RS384, PS256 with the
right key, ES256 with a foreign key), a stale iat, exp past the profile's declared clock skew, a userinfo answer
about another subject (must reject); a one-element aud array, no kid with a one-key JWKS, exp and iat inside the
skew, token_type ``bearer``, no expires_in, a national key rotation next to an unparseable key, and a JWKS cached
rather than fetched on every sign-on (must accept: a false rejection breaks every citizen's sign-on).

Every case signs a fresh citizen in with the counterpart's defect or variation armed for that citizen only, and
the counterpart's IdP ledger confirms what the token carried (``_sign_in`` of :mod:`sso`). The key rotation is
targeted too (see :func:`key_rotation`), so it never disturbs concurrent sign-ins of other checks or xdist workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from haicap.conformance.checks.sso import (
    _EVENTS,
    _discovery,
    _ledger,
    _ledger_error,
    _new_cccd,
    _reproduce_sign_in,
    _sign_in,
    describe_response,
)
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, CheckFailure, Severity, check
from haicap.http_port import ResponseLike
from haicap.province_client import LoginFailed, ProvinceClient

__all__ = ["ACCEPT_RULES", "JWKS_BURST", "REJECT_RULES", "TOKEN_DEFECTS", "TokenCase", "TokenRule", "skew_pair"]

#: Sign-ons of the JWKS-caching burst (SSO-28), and how many JWKS fetches they may cause at most.
JWKS_BURST = 20
_MAX_BURST_FETCHES = 4


def skew_pair(skew: int) -> tuple[int, int]:
    """(seconds just inside, seconds just beyond) a declared clock skew: skew − 10 s (at least half the skew
    inside) and skew + 5 s."""
    return skew - min(10, skew // 2), skew + 5


@dataclass(frozen=True)
class TokenCase:
    """One sign-in: the counterpart's defect or variation, what it is in words, and its ``seconds`` (from the
    profile's declared clock skew) for the clock defects."""

    defect: str
    what: str
    seconds: Callable[[int], int] | None = None

    def armed_seconds(self, ctx: CheckContext) -> int | None:
        return self.seconds(ctx.target.sso_clock_skew_seconds) if self.seconds else None

    def describe(self, ctx: CheckContext) -> str:
        seconds = self.armed_seconds(ctx)
        return self.what.format(seconds=seconds, skew=ctx.target.sso_clock_skew_seconds)


@dataclass(frozen=True)
class TokenRule:
    """A check: its id, title, rule, the faults it detects and the cases it enumerates."""

    check_id: str
    title: str
    rule: str
    detects: tuple[str, ...]
    cases: tuple[TokenCase, ...]
    severity: Severity = "critical"


def _inside(skew: int) -> int:
    return skew_pair(skew)[0]


def _beyond(skew: int) -> int:
    return skew_pair(skew)[1]


_CORE = "OpenID Connect Core 1.0"
REJECT_RULES: tuple[TokenRule, ...] = (
    TokenRule("SSO-13", "Relying party rejects an ID token without sub, aud, iat, exp or iss",
              f"{_CORE} §2 (REQUIRED claims), §3.1.3.7 (2), (3), (9), (10)",
              ("accepts-missing-sub", "accepts-missing-aud", "accepts-missing-iat", "accepts-missing-exp",
               "accepts-missing-iss", "skips-issuer-check", "skips-audience-check"),
              tuple(TokenCase(f"no-{claim}", f"an ID token without {claim}")
                    for claim in ("sub", "aud", "iat", "exp", "iss"))),
    TokenRule("SSO-14", "Relying party rejects an ID token without nonce when it sent one",
              f"{_CORE} §3.1.3.7 (11), §15.5.2", ("accepts-missing-nonce", "skips-nonce-check"),
              (TokenCase("no-nonce", "an ID token without nonce although the authentication request sent one"),)),
    TokenRule("SSO-15", "Relying party rejects an ID token whose aud array does not contain its client_id",
              f"{_CORE} §3.1.3.7 (3)", ("accepts-aud-list-without-client", "skips-audience-check"),
              (TokenCase("aud-without-client", "an ID token whose aud is an array without the province's client_id"),)),
    TokenRule("SSO-16", "Relying party rejects several audiences without azp naming it",
              f"{_CORE} §3.1.3.7 (4), (5); FAPI 1.0 Advanced §5.2.2.1",
              ("skips-azp-check", "skips-audience-check"),
              (TokenCase("aud-secondary-no-azp", "an ID token with aud [client_id, an unknown client] and no azp"),
               TokenCase("aud-secondary-foreign-azp",
                         "an ID token with aud [client_id, an unknown client] and azp the unknown client"))),
    TokenRule("SSO-17", "Relying party rejects HS256 ID tokens (algorithm confusion)",
              f"RFC 8725 §2.1, §3.1; {_CORE} §3.1.3.7 (6)-(8), §10.1",
              ("accepts-hs256-client-secret", "verifies-only-rs256-signatures"),
              (TokenCase("alg-hs256-client-secret", "an HS256 ID token signed with the province's client secret"),
               TokenCase("alg-hs256-public-key",
                         "an HS256 ID token whose HMAC key is the national RSA public key (PEM)"))),
    TokenRule("SSO-18", "Relying party rejects ID tokens in any algorithm other than the registered RS256",
              f"RFC 8725 §3.1; {_CORE} §3.1.3.7 (7); OpenID Connect Dynamic Client Registration 1.0 §2 "
              "(id_token_signed_response_alg)",
              ("accepts-any-rsa-alg", "verifies-only-rs256-signatures"),
              (TokenCase("alg-rs384", "an RS384 ID token signed with the national key"),
               TokenCase("alg-ps256", "a PS256 ID token signed with the national key"),
               TokenCase("alg-es256-foreign-key", "an ES256 ID token signed by a foreign key under the national kid"))),
    TokenRule("SSO-19", "Relying party rejects an ID token issued a week ago, even with a valid exp",
              f"{_CORE} §3.1.3.7 (10); FAPI 1.0 Advanced client test iat-is-week-in-past", ("accepts-stale-iat",),
              (TokenCase("iat-week-old", "an ID token whose iat is a week old (exp still valid)"),)),
    TokenRule("SSO-20", "Relying party rejects an ID token expired just beyond the declared clock skew",
              f"{_CORE} §3.1.3.7 (9); RFC 7519 §4.1.4; haicap profile sso_clock_skew_seconds",
              ("clock-skew-five-minutes", "accepts-expired-id-token"),
              (TokenCase("exp-passed-by", "an ID token expired {seconds} s ago (declared skew {skew} s)", _beyond),)),
    TokenRule("SSO-21", "Relying party rejects a userinfo answer whose sub is not the ID token's",
              f"{_CORE} §5.3.2; OpenID RP test rp-userinfo-bad-sub-claim", ("skips-userinfo-sub-check",),
              (TokenCase("userinfo-sub-mismatch", "a userinfo answer whose sub differs from the ID token's sub"),)),
)

ACCEPT_RULES: tuple[TokenRule, ...] = (
    TokenRule("SSO-22", "Relying party accepts an ID token whose aud is a one-element array",
              f"{_CORE} §2 (aud: an array or a single string); RFC 7519 §4.1.3", ("rejects-aud-array",),
              (TokenCase("aud-array", "an ID token whose aud is the one-element array [client_id]"),), "major"),
    TokenRule("SSO-23", "Relying party accepts an ID token without kid when the JWKS has one key",
              f"{_CORE} §10.1; RFC 7515 §4.1.4 (kid OPTIONAL); OpenID RP test rp-id_token-kid-absent-single-jwks",
              ("requires-kid",),
              (TokenCase("no-kid", "an ID token without kid (the national JWKS has one key)"),), "major"),
    TokenRule("SSO-24", "Relying party accepts exp and iat inside the declared clock skew",
              f"{_CORE} §3.1.3.7 (9), (10); RFC 7519 §4.1.4 (small leeway); haicap profile sso_clock_skew_seconds",
              ("no-clock-leeway",),
              (TokenCase("exp-passed-by", "an ID token expired {seconds} s ago (declared skew {skew} s)", _inside),
               TokenCase("iat-ahead-by", "an ID token issued {seconds} s ahead (declared skew {skew} s)", _inside)),
              "major"),
    TokenRule("SSO-25", "Relying party accepts token_type in any case (bearer)",
              "RFC 6749 §5.1, §7.1 (token_type is case insensitive); OpenID RP test token-type-case-insensitivity",
              ("rejects-lowercase-token-type",),
              (TokenCase("token-type-lowercase", "a token response with token_type 'bearer'"),), "major"),
    TokenRule("SSO-26", "Relying party accepts a token response without expires_in",
              "RFC 6749 §5.1 (expires_in RECOMMENDED); OpenID RP test token-endpoint-without-expires_in",
              ("requires-expires-in",),
              (TokenCase("no-expires-in", "a token response without expires_in"),), "major"),
)

#: Every counterpart defect or variation these checks arm (a test matches them to the contract's IdTokenDefect).
TOKEN_DEFECTS: frozenset[str] = frozenset(
    {case.defect for rule in (*REJECT_RULES, *ACCEPT_RULES) for case in rule.cases} | {"rotated-key"})


# -- ledger -----------------------------------------------------------------------------------------
def _jwks_fetches(ctx: CheckContext) -> int:
    """How many times anyone fetched the national JWKS so far (the counterpart's IdP ledger, kind jwks)."""
    try:
        with _ledger(ctx) as http:
            return int(http.get(_EVENTS, params={"kind": "jwks", "limit": 1}).raise_for_status().json()["total"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise _ledger_error(exc) from None


def _national_jwks(ctx: CheckContext) -> list[Any]:
    """The keys the counterpart publishes now (its advertised jwks_uri)."""
    url = str(_discovery(ctx).get("jwks_uri") or ctx.target.national_url.rstrip("/") + "/jwks")
    try:
        keys = httpx.get(url, timeout=10.0).raise_for_status().json()["keys"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise CheckError(f"GET {url}: {type(exc).__name__}: {exc}") from None
    return keys if isinstance(keys, list) else []


# -- judging --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Seen:
    case: TokenCase
    cccd: str
    callback: ResponseLike
    what: str
    seconds: int | None

    def line(self) -> str:
        return f"'{self.case.defect}' (citizen {self.cccd}): {describe_response(self.callback)}"


def _sign_ins(ctx: CheckContext, rule: TokenRule) -> list[_Seen]:
    seen = []
    for case in rule.cases:
        seconds = case.armed_seconds(ctx)
        cccd, hops = _sign_in(ctx, f"{rule.check_id}:{case.defect}", defect=case.defect, seconds=seconds)
        assert hops.callback is not None
        seen.append(_Seen(case, cccd, hops.callback, case.describe(ctx), seconds))
    ctx.require_evidence(len(seen), len(rule.cases), "sign-ins with the armed defect confirmed by the IdP ledger")
    return seen


def _reproduce(ctx: CheckContext, seen: Sequence[_Seen]) -> str:
    return " | ".join(_reproduce_sign_in(ctx, s.cccd, s.case.defect, seconds=s.seconds) for s in seen)


def _session_works(seen: _Seen) -> str | None:
    """None when the callback gave a session for the citizen; else what went wrong."""
    if seen.callback.status_code != 200:
        return f"refused {seen.what}: {describe_response(seen.callback)}"
    try:
        session = ProvinceClient.session_from_callback(seen.cccd, seen.callback)
    except LoginFailed as exc:
        return f"answered {seen.what} with HTTP 200 but no usable session: {exc}"
    if session.claims.get("SoDinhDanh") not in (None, seen.cccd):
        return f"signed in citizen {session.claims.get('SoDinhDanh')} instead of {seen.cccd} for {seen.what}"
    return None


def _rejects(ctx: CheckContext, rule: TokenRule) -> str:
    seen = _sign_ins(ctx, rule)
    accepted = [s for s in seen if s.callback.status_code < 300]
    others = [s for s in seen if s not in accepted]
    ctx.expect(
        not accepted,
        "the province issued a session for " + "; ".join(s.what for s in accepted)
        + (f" (it refused {'; '.join(s.what for s in others)})" if others else ""),
        expected="each callback refuses the sign-in with a 4xx (no province session)",
        actual="; ".join(s.line() for s in accepted), reproduce=_reproduce(ctx, accepted),
    )
    odd = [s for s in seen if not 400 <= s.callback.status_code < 500]
    ctx.expect(
        not odd,
        "the callback did not answer a 4xx refusal to " + "; ".join(
            f"{s.what} (HTTP {s.callback.status_code})" for s in odd),
        expected="a 4xx refusal", actual="; ".join(s.line() for s in odd), reproduce=_reproduce(ctx, odd),
    )
    after, hops = _sign_in(ctx, f"{rule.check_id}:after")
    status = hops.callback.status_code if hops.callback is not None else None
    ctx.expect(status == 200, "after refusing the defective tokens, a normal sign-in no longer works",
               expected="HTTP 200 with a province session", actual=describe_response(hops.callback),
               reproduce=_reproduce_sign_in(ctx, after))
    refused = ", ".join(f"'{s.case.defect}' → HTTP {s.callback.status_code}" for s in seen)
    return (f"{len(seen)} defective sign-in(s), each confirmed by the counterpart's IdP ledger, refused: {refused}; "
            f"a normal sign-in right after → HTTP {status}")


def _accepts(ctx: CheckContext, rule: TokenRule) -> str:
    seen = _sign_ins(ctx, rule)
    problems = [(s, p) for s in seen if (p := _session_works(s)) is not None]
    ctx.expect(
        not problems,
        "the province " + "; ".join(p for _, p in problems) + " — a valid sign-in refused breaks citizens' sign-on",
        expected="HTTP 200 with a province session for the citizen",
        actual="; ".join(s.line() for s, _ in problems), reproduce=_reproduce(ctx, [s for s, _ in problems]),
    )
    return (f"{len(seen)} valid sign-in(s), each confirmed by the counterpart's IdP ledger, accepted with a session "
            "for the citizen: " + "; ".join(f"{s.what} → HTTP {s.callback.status_code}" for s in seen))


def _no_kid_premise(ctx: CheckContext, rule: TokenRule, outcome: Callable[[], str]) -> str:
    """SSO-23's rule holds for a one-key JWKS: a refusal while the JWKS has several keys (a key rotation, SSO-27,
    ran on this counterpart) may be right (OpenID RP test kid-absent-multiple-jwks), so it is no verdict."""
    try:
        return outcome()
    except CheckFailure as failure:
        keys = _national_jwks(ctx)
        if len(keys) > 1:
            raise CheckError(f"the national JWKS now holds {len(keys)} keys (a key rotation ran on this counterpart), "
                             "so refusing an ID token without kid may be right: the one-key rule cannot be judged; "
                             f"the province said: {failure.actual}") from None
        raise


def _register(rule: TokenRule, accept: bool) -> None:
    def run(ctx: CheckContext) -> str:
        if rule.check_id == "SSO-23":
            return _no_kid_premise(ctx, rule, lambda: _accepts(ctx, rule))
        return _accepts(ctx, rule) if accept else _rejects(ctx, rule)

    verb = "accepts" if accept else "rejects"
    run.__name__ = run.__qualname__ = f"{verb}_{rule.cases[0].defect.replace('-', '_')}"
    cases = "; ".join(case.what for case in rule.cases)
    run.__doc__ = (f"For each case ({cases}) a fresh citizen signs in with the counterpart's "
                   f"{'variation' if accept else 'defect'} armed for them; the province's callback must "
                   + ("answer HTTP 200 with a session for that citizen." if accept else
                      "refuse with a 4xx and issue no session, and a normal sign-in right after still works."))
    check(rule.check_id, criterion="sso", severity=rule.severity, title=rule.title, rule=rule.rule,
          requires=("sso",), detects=rule.detects)(run)


for _rule in REJECT_RULES:
    _register(_rule, accept=False)
for _rule in ACCEPT_RULES:
    _register(_rule, accept=True)


# -- SSO-27 -----------------------------------------------------------------------------------------
@check("SSO-27", criterion="sso", severity="critical",
       title="After a national key rotation (new kid) the relying party fetches the JWKS again, skipping a key it "
             "cannot parse",
       rule="OpenID Connect Core 1.0 §10.1.1; RFC 7517 §5 (ignore keys not understood); OpenID RP tests "
            "rp-key-rotation-op-sign-key, ignores-unparseable-key-in-jwks",
       requires=("sso",), detects=("no-jwks-refetch-on-unknown-kid", "discards-jwks-with-unparseable-key"))
def key_rotation(ctx: CheckContext) -> str:
    """A first citizen signs in (the province now holds the national JWKS). The counterpart then rotates: the next
    ID token, for a second citizen, is signed by a new key under a new kid, published from that moment next to the
    current key together with an extra key nobody can parse. The province must fetch the JWKS again on the unknown
    kid, skip the unparseable key and accept the token; a third sign-in (current key) still works.

    Concurrency: the rotation is targeted (control API ``rotated-key`` with ``login_hint``), so only that one
    token is signed by the new key; every other token — of other checks, xdist workers or load — stays signed by
    the current key, which remains published. A province that never refetches keeps validating them, and one that
    refetches finds the current key still there: a rotation never breaks another sign-in."""
    first, hops = _sign_in(ctx, "SSO-27:before")
    if hops.callback is None or hops.callback.status_code != 200:
        raise CheckError(f"a normal sign-in failed, so the rotation cannot be tested (see SSO-01): "
                         f"{describe_response(hops.callback)}")
    mark = _jwks_fetches(ctx)
    rotated, hops = _sign_in(ctx, "SSO-27:rotated", defect="rotated-key")
    assert hops.callback is not None
    fetches = _jwks_fetches(ctx) - mark
    keys = _national_jwks(ctx)
    seen = _Seen(TokenCase("rotated-key", "an ID token signed by the rotated key"), rotated, hops.callback,
                 "an ID token signed by a new national key under a new kid", None)
    problem = _session_works(seen)
    ctx.expect(
        problem is None,
        f"after the national key rotation the province {problem} (it fetched the JWKS {fetches} time(s) meanwhile; "
        f"the JWKS holds {len(keys)} keys, one of them unparseable): it must fetch the JWKS again on an unknown kid "
        "and skip a key it cannot parse",
        expected="HTTP 200 with a session", actual=seen.line(),
        reproduce=_reproduce_sign_in(ctx, rotated, "rotated-key"),
    )
    after, hops_after = _sign_in(ctx, "SSO-27:after")
    status = hops_after.callback.status_code if hops_after.callback is not None else None
    ctx.expect(status == 200, "after the key rotation, a sign-in with the current national key is refused",
               expected="HTTP 200 with a province session", actual=describe_response(hops_after.callback),
               reproduce=_reproduce_sign_in(ctx, after))
    return (f"citizen {first} signed in; the token of citizen {rotated} was signed by a new key under a new kid "
            f"(JWKS then {len(keys)} keys, one unparseable): accepted (HTTP 200) after {fetches} JWKS fetch(es); "
            f"a sign-in with the current key right after → HTTP {status}")


# -- SSO-28 -----------------------------------------------------------------------------------------
@check("SSO-28", criterion="sso", severity="major",
       title="The relying party caches the national JWKS: no JWKS fetch on every sign-on",
       rule="OpenID Connect Core 1.0 §10.1.1 (keys fetched when the kid is unknown); RFC 8725 §3.10; RFC 9700 "
            "§4.1 (no JWKS storm during a login storm)",
       requires=("sso",), detects=("fetches-jwks-every-sign-on",))
def caches_jwks(ctx: CheckContext) -> str:
    """A burst of sign-ons of new citizens, all with tokens signed by the current national key: the counterpart's
    ledger counts the JWKS fetches meanwhile. A province that caches the JWKS fetches it at most a few times (a
    cold cache, another check's key rotation, several worker processes), not once per sign-on."""
    mark = _jwks_fetches(ctx)
    ok = 0
    last: ResponseLike | None = None
    for index in range(JWKS_BURST):  # plain sign-ons (no defect armed): the burst is about the JWKS traffic only
        last = ctx.province.login_hops(_new_cccd(ctx, f"SSO-28:{index}")).callback
        ok += last is not None and last.status_code == 200
    ctx.require_evidence(ok, JWKS_BURST, "successful sign-ons of the burst",
                         reproduce=f"last callback: {describe_response(last)}")
    fetches = _jwks_fetches(ctx) - mark
    ctx.expect(
        fetches <= _MAX_BURST_FETCHES,
        f"the province fetched the national JWKS {fetches} times during {JWKS_BURST} sign-ons: it does not cache it "
        "(a login storm becomes a JWKS storm on the national identity provider)",
        expected=f"at most {_MAX_BURST_FETCHES} JWKS fetches (refetch only on an unknown kid)",
        actual=f"{fetches} GET /jwks during {JWKS_BURST} sign-ons",
        reproduce=f"sign {JWKS_BURST} citizens in (GET /auth/login?login_hint=<CCCD>, follow the redirects) and "
                  "count kind=jwks in GET /_ledger/idp/events",
    )
    return f"{JWKS_BURST} sign-ons (all HTTP 200) caused {fetches} national JWKS fetch(es)"
