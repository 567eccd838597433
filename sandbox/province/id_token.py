"""The relying party's rules for the claims of a national ID token (OpenID Connect Core 1.0 §3.1.3.7, §2).

:mod:`sso` verifies the signature; :func:`check_claims` then applies every claim rule, each in a small function so
that each ``sso`` fault of :mod:`faults` switches off exactly one decision where it is made. A refusal is a
:class:`Refused` naming the reason (the callback turns it into a 401 problem).

Example::

    check_claims(claims, issuer="https://idp", client_id="province-01", nonce=sent, faults=frozenset(), now=time())
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

__all__ = ["CLOCK_LEEWAY", "MAX_ID_TOKEN_AGE", "WIDE_CLOCK_LEEWAY", "Refused", "check_claims"]

#: The reference province's clock leeway (seconds) on exp and iat: what the profile's sso_clock_skew_seconds
#: declares by default (haicap.target.Target), so the checks' clock-skew pair brackets it.
CLOCK_LEEWAY = 60
#: The leeway of the ``clock-skew-five-minutes`` fault (a common library default).
WIDE_CLOCK_LEEWAY = 300
#: An ID token is consumed moments after its issue: one issued longer ago than this (plus leeway) is stale.
MAX_ID_TOKEN_AGE = 3600


class Refused(Exception):
    """The ID token breaks a rule (the message says which)."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_issuer(claims: Mapping[str, Any], issuer: str, faults: frozenset[str]) -> None:
    """§3.1.3.7 (2): iss is exactly the national issuer."""
    iss = claims.get("iss")
    if iss is None and "accepts-missing-iss" in faults:  # the defect: only a present iss is compared
        return
    if "skips-issuer-check" not in faults and iss != issuer:
        raise Refused(f"id_token iss {iss!r} is not the national issuer" if iss is not None else "id_token has no iss")


def _audiences(aud: Any, faults: frozenset[str]) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if "rejects-aud-array" in faults:  # the defect: aud taken to be a string, an array refused
            raise Refused("id_token aud is not a string")
        return aud
    raise Refused("id_token aud is neither a string nor an array of strings")


def _check_audience(claims: Mapping[str, Any], client_id: str, faults: frozenset[str]) -> None:
    """§3.1.3.7 (3)-(5): aud contains this client; several audiences need azp, and azp must be this client."""
    aud = claims.get("aud")
    if "skips-audience-check" in faults or (aud is None and "accepts-missing-aud" in faults):
        return
    if aud is None:
        raise Refused("id_token has no aud")
    audiences = _audiences(aud, faults)
    only_strings_compared = "accepts-aud-list-without-client" in faults and isinstance(aud, list)
    if client_id not in audiences and not only_strings_compared:
        raise Refused("id_token aud does not contain this province's client_id")
    if "skips-azp-check" in faults:
        return
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise Refused("id_token has several audiences but no azp")
    if azp is not None and azp != client_id:
        raise Refused("id_token azp is not this province's client_id")


def _leeway(faults: frozenset[str]) -> int:
    if "no-clock-leeway" in faults:
        return 0
    return WIDE_CLOCK_LEEWAY if "clock-skew-five-minutes" in faults else CLOCK_LEEWAY


def _check_times(claims: Mapping[str, Any], faults: frozenset[str], now: float) -> None:
    """§3.1.3.7 (9)-(10): exp in the future and iat not in the future nor stale, both within the leeway."""
    leeway = _leeway(faults)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not (exp is None and "accepts-missing-exp" in faults):
        if not _number(exp):
            raise Refused("id_token has no numeric exp")
        if "accepts-expired-id-token" not in faults and now >= exp + leeway:
            raise Refused(f"id_token expired {now - exp:.0f} s ago (leeway {leeway} s)")
    if iat is None and "accepts-missing-iat" in faults:
        return
    if not _number(iat):
        raise Refused("id_token has no numeric iat")
    if "accepts-future-iat" not in faults and iat > now + leeway:
        raise Refused(f"id_token iat is {iat - now:.0f} s in the future (leeway {leeway} s)")
    if "accepts-stale-iat" not in faults and now - iat > MAX_ID_TOKEN_AGE + leeway:
        raise Refused(f"id_token was issued {now - iat:.0f} s ago (stale: more than {MAX_ID_TOKEN_AGE} s)")


def _check_nonce(claims: Mapping[str, Any], nonce: str, faults: frozenset[str]) -> None:
    """§3.1.3.7 (11): the nonce sent in the authentication request comes back, exactly."""
    got = claims.get("nonce")
    if "skips-nonce-check" in faults or (got is None and "accepts-missing-nonce" in faults):
        return
    if not isinstance(got, str):
        raise Refused("id_token has no nonce although one was sent")
    if not hmac.compare_digest(got.encode("utf-8"), nonce.encode("utf-8")):
        raise Refused("nonce mismatch")


def _check_subject(claims: Mapping[str, Any], faults: frozenset[str]) -> None:
    """§2: sub is REQUIRED, a non-empty string."""
    sub = claims.get("sub")
    if sub is None and "accepts-missing-sub" in faults:  # the defect: the identity is taken from userinfo alone
        return
    if not isinstance(sub, str) or not sub:
        raise Refused("id_token has no sub")


def check_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str, faults: frozenset[str],
                 now: float) -> None:
    """Every claim rule of an ID token whose signature verified; raises :class:`Refused` naming the first broken."""
    _check_issuer(claims, issuer, faults)
    _check_audience(claims, client_id, faults)
    _check_times(claims, faults, now)
    _check_nonce(claims, nonce, faults)
    _check_subject(claims, faults)
