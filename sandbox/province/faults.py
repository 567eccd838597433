"""Named, switchable defects of the reference province: the suite's proof that its checks can fail.

Each fault reproduces one real defect when its id is in ``ProvinceConfig.faults``. The switch sits at the
exact place where the correct code does the right thing (``if fault not in faults: check()``), so a fault
changes one decision and nothing else. ``breaks`` names the readiness criterion of the national checklist the
defect fails (sso, submission, payment, sync, forwarding, units).

Example::

    FAULTS["skips-nonce-check"].breaks    # 'sso'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULTS", "Fault"]


@dataclass(frozen=True, slots=True)
class Fault:
    id: str
    breaks: str
    description: str


_FAULTS = [
    # sso: the relying party's ID token validation (OpenID RP certification rules)
    Fault("accepts-bad-id-token-signature", "sso", "ID token signature not verified against the national JWKS"),
    Fault("accepts-alg-none", "sso", "an unsigned ID token (alg none) is accepted"),
    Fault("skips-issuer-check", "sso", "ID token iss not compared with the national issuer"),
    Fault("skips-audience-check", "sso", "ID token aud not required to contain the province's client_id"),
    Fault("accepts-expired-id-token", "sso", "ID token exp not checked"),
    Fault("accepts-future-iat", "sso", "ID token iat in the future accepted"),
    Fault("skips-nonce-check", "sso", "ID token nonce not compared with the one sent at login"),
    Fault("skips-state-check", "sso", "callback state not compared with the login's state (CSRF)"),
    Fault("accepts-reused-code", "sso", "a replayed callback (same authorization code) yields a new session"),
    Fault("identity-from-body", "sso", "ChuHoSo/DinhDanhCHS taken from the request body, not the SSO session"),
    Fault("no-pkce", "sso", "the authorization request carries no PKCE code_challenge (RFC 7636, RFC 9700 §2.1.1)"),
    Fault("local-logout-only", "sso", "logout ends the province session only, no redirect to the national end-session"),
    # sso: ID-token, JWKS and userinfo rules to the OpenID RP bar (SSO-13 … SSO-28)
    Fault("accepts-missing-sub", "sso", "an ID token without sub is accepted (the identity taken from userinfo alone)"),
    Fault("accepts-missing-aud", "sso", "an ID token without aud is accepted (aud compared only when present)"),
    Fault("accepts-missing-iat", "sso", "an ID token without iat is accepted (iat checked only when present)"),
    Fault("accepts-missing-exp", "sso", "an ID token without exp is accepted (exp checked only when present)"),
    Fault("accepts-missing-iss", "sso", "an ID token without iss is accepted (iss compared only when present)"),
    Fault("accepts-missing-nonce", "sso", "an ID token without nonce is accepted although one was sent"),
    Fault("accepts-aud-list-without-client", "sso",
          "aud compared only when it is a string: an aud array without the province's client_id is accepted"),
    Fault("skips-azp-check", "sso", "several audiences accepted without azp, or with azp naming another client"),
    Fault("accepts-hs256-client-secret", "sso",
          "HS256 ID tokens verified with the client secret (algorithm confusion: anyone holding it forges tokens)"),
    Fault("accepts-any-rsa-alg", "sso",
          "the algorithm is not pinned to the registered RS256: RS384/RS512/PS256… with the national key accepted"),
    Fault("verifies-only-rs256-signatures", "sso",
          "only RS256 signatures are verified: a token in another algorithm (ES256, HS256…) is decoded unverified"),
    Fault("accepts-stale-iat", "sso", "an ID token issued long ago (iat a week old) accepted while exp is valid"),
    Fault("clock-skew-five-minutes", "sso",
          "a 300 s clock leeway instead of the declared skew: tokens expired minutes ago are accepted"),
    Fault("skips-userinfo-sub-check", "sso", "userinfo used although its sub differs from the ID token's sub"),
    Fault("rejects-aud-array", "sso",
          "an aud array, even the one-element [client_id], is refused (aud taken as a string)"),
    Fault("requires-kid", "sso", "an ID token without kid is refused although the national JWKS has a single key"),
    Fault("no-clock-leeway", "sso",
          "no clock leeway: a token expired a second ago or with iat a second ahead is refused"),
    Fault("rejects-lowercase-token-type", "sso", "token_type compared case-sensitively: 'bearer' is refused"),
    Fault("requires-expires-in", "sso", "a token response without expires_in (RECOMMENDED, not required) is refused"),
    Fault("no-jwks-refetch-on-unknown-kid", "sso",
          "the JWKS is cached forever: after a national key rotation (a new kid) every sign-in is refused"),
    Fault("discards-jwks-with-unparseable-key", "sso",
          "a JWKS with one key it cannot parse is dropped whole: the rotated key is never learnt"),
    Fault("fetches-jwks-every-sign-on", "sso", "the JWKS is fetched for every sign-in (no cache: a JWKS storm)"),
    # submission
    Fault("pre-merger-commune-codes", "submission", "pre-merger (63-province) ward codes accepted as MaXa"),
    Fault("500-on-malformed-input", "submission", "malformed JSON or missing fields crash the handler (HTTP 500)"),
    Fault("duplicate-mahoso", "submission", "the MaHoSo sequence is read and written non-atomically: duplicates"),
    Fault(
        "loses-dossiers-under-concurrency",
        "submission",
        "201 before the write is durable, through a racy write-behind buffer: concurrent submits get lost",
    ),
    Fault("invalid-status-transition", "sync",
          "officer actions ignore the transition table (e.g. 1→10): the national history gets invalid transitions"),
    Fault("bad-mahoso-format", "submission",
          "MaHoSo in a home-made format (H26-20261122-1) instead of {agency}-{yyMMdd}-{4 digits}"),
    Fault("draft-commune-codes", "submission",
          "the draft ward-code list was loaded: a few official codes (e.g. 00226) are refused as MaXa"),
    # payment
    Fault("ignores-callback-checksum", "payment", "payment callback MaXacThuc not verified"),
    Fault("accepts-wrong-amount", "payment", "payment callback amount not compared with the dossier's fee"),
    Fault("double-applies-replayed-callback", "payment", "a replayed callback is applied again (paid twice)"),
    Fault("marks-paid-on-failed-payment", "payment", "a failure callback (MaLoi != 00) marks the dossier paid"),
    Fault("no-paid-flag-sync", "payment", "DuocThanhToanTrucTuyen never reaches the national side as 1"),
    Fault("bad-init-checksum", "payment",
          "INIT MaXacThuc built in a wrong field order (SoTien before MaThamChieu): the platform refuses it"),
    # sync
    Fault("no-status-sync", "sync", "only the first state of a dossier is synchronised, later changes never"),
    Fault("late-sync", "sync", "changes are synchronised 30 s late (beyond the SLA)"),
    Fault("sync-missing-fields", "sync", "required fields are dropped from DongBoHoSoMC items"),
    Fault("duplicate-sync", "sync",
          "the outbox sends every delivered batch a second time (a retry without idempotency): duplicates"),
    # forwarding
    Fault("ignores-forwarded-dossiers", "forwarding", "forwarded dossiers are acknowledged but never stored or synced"),
    Fault("unauthenticated-forwarding", "forwarding",
          "POST /national/forwarded-dossiers accepted without the national forward credential"),
    # units
    Fault("wrong-agency-codes", "units", "declares the pre-merger ward list with malformed agency codes"),
]

#: Every fault by id.
FAULTS: dict[str, Fault] = {fault.id: fault for fault in _FAULTS}

#: How late the ``late-sync`` fault delivers (seconds).
LATE_SYNC_DELAY = 30.0
