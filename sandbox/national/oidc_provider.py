"""The national identity provider: OpenID Connect authorization code flow with PKCE, and named defects.

It plays NPSP/VNeID single sign-on for real — RS256 keys generated at start, discovery, JWKS, single-use
authorization codes that expire, PKCE S256, nonce and state echo, access tokens for userinfo, RP-initiated
logout — so a province's relying party can be tested against it. On command (control API) the next ID
tokens are bad in one named way, which is what OpenID RP certification checks a relying party rejects.
A defect is either untargeted (the next tokens, whoever signs in) or targeted at one citizen (the next
tokens issued for that CCCD only), so that concurrent sign-ins of other citizens can neither take nor
receive it:

- ``bad-signature``: signed by another RSA key under the same ``kid``;
- ``alg-none``: unsigned, header ``alg: none``;
- ``wrong-iss`` / ``wrong-aud``: another issuer / audience;
- ``expired``: ``exp`` in the past; ``iat-future``: ``iat`` (and ``exp``) in the future;
- ``nonce-mismatch``: a nonce other than the one the client sent;
- ``no-sub`` … ``no-nonce``: that claim left out; ``aud-without-client``, ``aud-secondary-no-azp``,
  ``aud-secondary-foreign-azp``: audiences not (only) this client without a proper ``azp``;
- ``alg-hs256-client-secret`` / ``alg-hs256-public-key`` (algorithm confusion), ``alg-rs384``, ``alg-ps256``,
  ``alg-es256-foreign-key``: an algorithm other than the registered RS256;
- ``iat-week-old``; ``exp-passed-by`` / ``iat-ahead-by`` (``seconds`` from the control request: the clock-skew pair);
- ``userinfo-sub-mismatch``: a good ID token, but userinfo for its access token answers another ``sub``.

Some named variations are valid and must be accepted: ``aud-array`` (a one-element aud array), ``no-kid`` (one
key in the JWKS), ``token-type-lowercase`` (``bearer``), ``no-expires-in``, and ``rotated-key``. A rotation must
not disturb concurrent sign-ins of other citizens, checks or xdist workers, so it only affects the one token it is
armed for: that token is signed by a freshly generated key under a new kid, which is published in the JWKS from
that moment on *next to* the current key (never instead of it) together with one extra key nobody can parse
(RFC 7517 §5: a relying party skips it). Every other token stays signed by the current key, so a relying party
that has not refetched the JWKS keeps validating them; the last few rotated keys stay published (a bounded list).
Every GET /jwks is recorded in the IdP event ledger (kind ``jwks``), so a check can count JWKS fetches.

Every authorization response (code or error) carries ``iss`` and discovery advertises
``authorization_response_iss_parameter_supported`` (RFC 9207), so a relying party can defend against mix-up.
A second, inert issuer path ``/mixup`` serves a discovery document whose ``issuer`` is not the URL it is served
under (OpenID Connect Discovery 1.0 §4.3): only a province instance configured against ``{issuer}/mixup`` ever
reads it, so it disturbs no other sign-on.

Errors follow the protocols: at /token the RFC 6749 JSON ``{"error", "error_description"}``; at /authorize a
redirect with ``error`` once the client and redirect URI are known, a problem+json before that.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import jwt
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import RSAAlgorithm
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from haicap.contract_registry import default_registry
from haicap.sandbox.config import NationalConfig, OidcClient
from haicap.sandbox.national.citizens import CitizenRegistry
from haicap.sandbox.national.outage import Outages
from haicap.sandbox.national.problems import JSONResponse, ProblemError
from haicap.sandbox.national.store import RowAppender, Store, now_ms

__all__ = ["CODE_TTL", "DEFECTS", "ID_TOKEN_TTL", "MAX_TARGETED_CITIZENS", "OidcProvider", "SigningKeys"]

CODE_TTL = 60.0
#: Bound on the citizens with targeted defects pending at once (a control client that never signs them in).
MAX_TARGETED_CITIZENS = 10_000
ACCESS_TOKEN_TTL = 3600
ID_TOKEN_TTL = 600
#: How many rotated keys stay published next to the current one (the oldest rotated key goes first).
MAX_ROTATED_KEYS = 4
_WEEK = 7 * 24 * 3600
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CCCD = re.compile(r"^[0-9]{12}$")


def _defects() -> tuple[str, ...]:
    return tuple(default_registry().enum("idp.schema.json#/$defs/IdTokenDefect"))


DEFECTS = _defects()


def _public_jwk(private: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


class SigningKeys:
    """The run's current RSA key (published), keys used only to forge tokens (``bad-signature``,
    ``alg-es256-foreign-key``), and the keys of targeted rotations (published next to the current one)."""

    def __init__(self) -> None:
        self.kid = secrets.token_hex(8)
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.foreign_ec = ec.generate_private_key(ec.SECP256R1())
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._current = _public_jwk(self.private, self.kid)
        self._rotated: deque[tuple[str, rsa.RSAPrivateKey, dict[str, Any]]] = deque(maxlen=MAX_ROTATED_KEYS)
        #: RSA "key" whose modulus is not base64url (1 character): schema-shaped, but no library can parse it
        self._unparseable = {"kty": "RSA", "kid": f"{self.kid}-unparseable", "use": "sig", "alg": "RS256",
                             "n": "A", "e": "AQAB"}

    @property
    def jwks(self) -> dict[str, Any]:
        """The published JWK Set: the current key, then any rotated keys and (after a rotation) the unparseable one."""
        keys = [self._current, *(jwk for _, _, jwk in self._rotated)]
        return {"keys": [*keys, self._unparseable] if self._rotated else keys}

    def rotate(self) -> tuple[str, rsa.RSAPrivateKey]:
        """A new key under a new kid, published from now on next to the current one: (kid, private key)."""
        kid = secrets.token_hex(8)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rotated.append((kid, private, _public_jwk(private, kid)))
        return kid, private


@dataclass(slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    cccd: str
    nonce: str | None
    code_challenge: str | None
    acr: str
    auth_time: int
    expires: float


@dataclass(slots=True)
class _AccessToken:
    cccd: str
    client_id: str
    expires: float
    defect: str | None = None


@dataclass(frozen=True, slots=True)
class _Armed:
    """A pending defect, with its ``seconds`` (exp-passed-by, iat-ahead-by)."""

    defect: str
    seconds: int | None = None

    def describe(self) -> str:
        return f" seconds={self.seconds}" if self.seconds is not None else ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hs256(payload: Mapping[str, Any], headers: Mapping[str, Any], key: bytes) -> str:
    """An HS256 JWT by hand: PyJWT (rightly) refuses an HMAC key that looks like a PEM public key."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", **headers}, separators=(",", ":")).encode())
    body = _b64(json.dumps(dict(payload), separators=(",", ":")).encode())
    signature = hmac.new(key, f"{head}.{body}".encode("ascii"), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _rs256(payload: Mapping[str, Any], headers: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """An RS256 JWT straight through ``cryptography`` (the same JWS PyJWT makes: header keys sorted, compact
    serialisation; claims as UTF-8 JSON), without PyJWT's per-call key preparation and header handling: the
    signature is most of the counterpart's cost of a sign-on."""
    head = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT", **headers}, option=orjson.OPT_SORT_KEYS))
    signing_input = f"{head}.{_b64(orjson.dumps(payload))}"
    signature = key.sign(signing_input.encode("ascii"), _PKCS1V15, _SHA256)
    return f"{signing_input}.{_b64(signature)}"


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _with_params(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _token_error(error: str, description: str, status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=all_headers)


class _Expiries:
    """When each entry of a dict expires, in the order they were added, so that pruning the expired entries
    costs O(expired) instead of a scan of the dict on every request (a storm keeps tens of thousands of codes
    and access tokens alive: a scan per sign-on made each sign-on cost more the more came before it).

    As before, expired entries are dropped only while the dict holds more than ``bound``; an entry removed by
    other means (a redeemed code, a logout) leaves a stale queue slot, compacted when they outnumber the live."""

    def __init__(self, bound: int, expiry: Callable[[Any], float]) -> None:
        self.bound = bound
        self._expiry = expiry
        self._queue: deque[tuple[float, str]] = deque()

    def add(self, key: str, expires: float) -> None:
        self._queue.append((expires, key))

    def prune(self, table: dict[str, Any], now: float, on_drop: Callable[[str, Any], None] | None = None) -> None:
        queue = self._queue
        if len(table) > self.bound:
            while queue and queue[0][0] < now:
                _, key = queue.popleft()
                value = table.get(key)
                if value is not None and self._expiry(value) < now:
                    del table[key]
                    if on_drop is not None:
                        on_drop(key, value)
        if len(queue) > 2 * len(table) + self.bound:  # amortised: at most once per len(table) + bound additions
            self._queue = deque(sorted((self._expiry(v), k) for k, v in table.items()))


class OidcProvider:
    """The identity provider's state and endpoints; :attr:`routes` are mounted by the app."""

    def __init__(self, config: NationalConfig, citizens: CitizenRegistry, store: Store, outages: Outages) -> None:
        self.issuer = config.public_url.rstrip("/")
        self.clients: dict[str, OidcClient] = {c.client_id: c for c in config.clients}
        self.citizens = citizens
        self.store = store
        self.outages = outages
        self.keys = SigningKeys()
        self._events = RowAppender(store, "INSERT INTO idp_events (at_ms, kind, outcome, client_id, SoDinhDanh, "
                                          "defect, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")
        self._codes: dict[str, _Grant] = {}
        self._used_codes: dict[str, float] = {}
        self._access: dict[str, _AccessToken] = {}
        self._tokens_of: dict[str, list[str]] = {}  # CCCD -> its access tokens (logout revokes them)
        self._code_expiries = _Expiries(10_000, lambda grant: grant.expires)
        self._used_expiries = _Expiries(10_000, float)
        self._access_expiries = _Expiries(100_000, lambda record: record.expires)
        self._pending: deque[_Armed] = deque()
        self._targeted: dict[str, deque[_Armed]] = {}
        self.routes = [
            Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/mixup/.well-known/openid-configuration", self.mixup_discovery, methods=["GET"]),
            Route("/jwks", self.jwks, methods=["GET"]),
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/end-session", self.end_session, methods=["GET"]),
        ]

    # -- control ---------------------------------------------------------------------------------
    def arm(self, defect: str, count: int, login_hint: str | None = None, seconds: int | None = None) -> int:
        """The next ``count`` ID tokens carry ``defect`` — only those issued for citizen ``login_hint`` when given.

        ``seconds`` is how far exp lies in the past (``exp-passed-by``) or iat in the future (``iat-ahead-by``).
        Returns how many defective tokens are pending for the same target (that citizen, or anyone). Raises
        :class:`ValueError` for an unknown defect, a login_hint that is not a valid CCCD, or too many targets.
        """
        if defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        armed = _Armed(defect, seconds)
        if login_hint is None:
            self._pending.extend([armed] * count)
            return len(self._pending)
        if not _CCCD.match(login_hint) or self.citizens.get(login_hint) is None:
            raise ValueError("login_hint is not a valid citizen identity number (CCCD)")
        queue = self._targeted.get(login_hint)
        if queue is None:
            if len(self._targeted) >= MAX_TARGETED_CITIZENS:
                raise ValueError(f"{MAX_TARGETED_CITIZENS} citizens already have targeted defects pending")
            queue = self._targeted[login_hint] = deque()
        queue.extend([armed] * count)
        return len(queue)

    @property
    def pending(self) -> int:
        """Defective tokens still to be issued, untargeted and targeted."""
        return len(self._pending) + sum(len(q) for q in self._targeted.values())

    def _take_defect(self, cccd: str) -> tuple[_Armed | None, bool]:
        """(the defect of the next ID token for ``cccd`` or None, whether it was targeted at that citizen)."""
        queue = self._targeted.get(cccd)
        if queue:
            defect = queue.popleft()
            if not queue:
                del self._targeted[cccd]
            return defect, True
        return (self._pending.popleft() if self._pending else None), False

    # -- helpers ---------------------------------------------------------------------------------
    def _check_up(self) -> None:
        if self.outages.is_down("idp"):
            raise ProblemError(503, "Service Unavailable", "the national identity provider is down (sandbox outage)",
                               headers={"Retry-After": str(self.outages.retry_after("idp"))})

    async def _event(self, kind: str, outcome: str, *, client_id: str | None = None, cccd: str | None = None,
                     defect: str | None = None, detail: str = "") -> None:
        await self._events.append((now_ms(), kind, outcome, client_id, cccd, defect, detail))

    def _prune(self, now: float) -> None:
        self._code_expiries.prune(self._codes, now)
        self._used_expiries.prune(self._used_codes, now)
        self._access_expiries.prune(self._access, now, self._forget_token)

    def _forget_token(self, token: str, record: _AccessToken) -> None:
        tokens = self._tokens_of.get(record.cccd)
        if tokens is not None:
            with contextlib.suppress(ValueError):
                tokens.remove(token)
            if not tokens:
                del self._tokens_of[record.cccd]

    # -- discovery -------------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        self._check_up()
        return JSONResponse(self._metadata())

    async def mixup_discovery(self, request: Request) -> Response:
        """Served under ``{issuer}/mixup`` but naming ``{issuer}``: a relying party configured against
        ``{issuer}/mixup`` must not use it (OpenID Connect Discovery 1.0 §4.3)."""
        self._check_up()
        return JSONResponse(self._metadata())

    def _metadata(self) -> dict[str, Any]:
        i = self.issuer
        claims = default_registry().property_names("idp.schema.json#/$defs/UserInfo")
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "end_session_endpoint": f"{i}/end-session",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": ["LoA1", "LoA2"],
            "claims_supported": ["iss", "aud", "exp", "iat", "nonce", "auth_time", "acr", *claims],
            "authorization_response_iss_parameter_supported": True,
        }

    async def jwks(self, request: Request) -> Response:
        self._check_up()
        keys = self.keys.jwks
        await self._event("jwks", "ok", detail=f"keys={len(keys['keys'])}")  # a check counts the fetches
        return JSONResponse(keys)

    # -- authorize -------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        self._check_up()
        q = request.query_params
        client_id = q.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            await self._event("authorize", "invalid_client", client_id=client_id or None, detail="unknown client_id")
            raise ProblemError(400, "Bad Request", "unknown client_id",
                               [{"field": "client_id", "message": "not a registered client"}])
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri != client.redirect_uri:
            await self._event("authorize", "invalid_request", client_id=client_id, detail="unregistered redirect_uri")
            raise ProblemError(400, "Bad Request", "redirect_uri is not registered for this client",
                               [{"field": "redirect_uri", "message": "must equal the registered redirect URI"}])
        state = q.get("state")

        def redirect_error(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if state is not None:
                params["state"] = state
            params["iss"] = self.issuer  # RFC 9207 §2: error responses too
            return RedirectResponse(_with_params(redirect_uri, params), status_code=302)

        if q.get("response_type") != "code":
            await self._event("authorize", "unsupported_response_type", client_id=client_id)
            return redirect_error("unsupported_response_type", "only response_type=code is supported")
        if "openid" not in q.get("scope", "").split():
            await self._event("authorize", "invalid_scope", client_id=client_id)
            return redirect_error("invalid_scope", "scope must contain openid")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if challenge is not None or method is not None:
            if method != "S256":
                await self._event("authorize", "invalid_request", client_id=client_id, detail="PKCE method")
                return redirect_error("invalid_request", "code_challenge_method must be S256")
            if challenge is None or not _CHALLENGE.match(challenge):
                await self._event("authorize", "invalid_request", client_id=client_id, detail="PKCE challenge")
                return redirect_error("invalid_request", "code_challenge must be 43-128 base64url characters")
        login_hint = q.get("login_hint")
        if login_hint is None:
            return HTMLResponse(self._login_form(q))
        citizen = self.citizens.get(login_hint) if _CCCD.match(login_hint) else None
        if citizen is None:
            raise ProblemError(400, "Bad Request", "login_hint is not a valid citizen identity number (CCCD)",
                               [{"field": "login_hint", "message": "expected a structurally valid 12-digit CCCD"}])
        now = time.time()
        acr = (q.get("acr_values") or "LoA1").split()[0]
        code = secrets.token_urlsafe(32)
        self._prune(now)
        self._codes[code] = _Grant(client_id, redirect_uri, login_hint, q.get("nonce"), challenge, acr,
                                   int(now), now + CODE_TTL)
        self._code_expiries.add(code, now + CODE_TTL)
        detail = f"pkce={'S256' if challenge else 'none'} nonce={'yes' if q.get('nonce') else 'no'} " \
                 f"state={'yes' if state else 'no'} acr={acr}"
        await self._event("authorize", "ok", client_id=client_id, cccd=login_hint, detail=detail)
        params = {"code": code}
        if state is not None:
            params["state"] = state
        params["iss"] = self.issuer  # RFC 9207 §2
        return RedirectResponse(_with_params(redirect_uri, params), status_code=302)

    def _login_form(self, q: Mapping[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
            if k != "login_hint"
        )
        return (
            "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Đăng nhập (haicap sandbox)</title>"
            "</head><body><h1>Cổng Dịch vụ công quốc gia — đăng nhập thử nghiệm</h1>"
            "<p>Sandbox: any structurally valid 12-digit CCCD is a test citizen.</p>"
            f"<form method=\"get\" action=\"{html.escape(self.issuer)}/authorize\">{hidden}"
            "<label>Số định danh (CCCD) <input name=\"login_hint\" pattern=\"[0-9]{12}\" required></label>"
            "<button type=\"submit\">Đăng nhập</button></form></body></html>"
        )

    # -- token -----------------------------------------------------------------------------------
    def _authenticate_client(self, request: Request, form: Mapping[str, str]) -> tuple[OidcClient | None, bool]:
        """(client or None, whether Basic auth was used)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
                raw_id, _, raw_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, True
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            basic = True
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            basic = False
        client = self.clients.get(client_id)
        if client is None or not _same(secret, client.client_secret):
            return None, basic
        return client, basic

    async def token(self, request: Request) -> Response:
        self._check_up()
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _token_error("invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return _token_error("invalid_request", "the form body cannot be parsed")
        form: dict[str, str] = {}
        for key, value in pairs:
            if key in form:
                return _token_error("invalid_request", f"parameter {key} is repeated")
            form[key] = value
        client, basic = self._authenticate_client(request, form)
        if client is None:
            await self._event("token", "invalid_client", client_id=form.get("client_id") or None)
            headers = {"WWW-Authenticate": 'Basic realm="national-idp"'} if basic else None
            return _token_error("invalid_client", "client authentication failed", 401, headers)
        if form.get("grant_type") != "authorization_code":
            await self._event("token", "unsupported_grant_type", client_id=client.client_id)
            return _token_error("unsupported_grant_type", "only authorization_code is supported")
        code = form.get("code")
        redirect_uri = form.get("redirect_uri")
        if not code or not redirect_uri:
            missing = "code" if not code else "redirect_uri"
            await self._event("token", "invalid_request", client_id=client.client_id, detail=f"missing {missing}")
            return _token_error("invalid_request", f"{missing} is required")
        now = time.time()
        grant = self._codes.pop(code, None)
        if grant is None:
            reused = code in self._used_codes
            reason = "the authorization code was already used" if reused else "unknown authorization code"
            await self._event("token", "invalid_grant", client_id=client.client_id, detail=reason)
            return _token_error("invalid_grant", reason)
        self._used_codes[code] = grant.expires
        self._used_expiries.add(code, grant.expires)
        failure = self._check_grant(grant, client, redirect_uri, form.get("code_verifier"), now)
        if failure:
            await self._event("token", "invalid_grant", client_id=client.client_id, cccd=grant.cccd, detail=failure)
            return _token_error("invalid_grant", failure)
        armed, targeted = self._take_defect(grant.cccd)
        defect = armed.defect if armed else None
        citizen = self.citizens.get(grant.cccd)
        assert citizen is not None  # the code was only issued for a valid CCCD
        id_token = self._id_token(grant, client, citizen.claims(), int(now), armed)
        access = secrets.token_urlsafe(32)
        self._access[access] = _AccessToken(grant.cccd, client.client_id, now + ACCESS_TOKEN_TTL, defect)
        self._access_expiries.add(access, now + ACCESS_TOKEN_TTL)
        self._tokens_of.setdefault(grant.cccd, []).append(access)
        target = (" target=login_hint" if targeted else " target=any") + armed.describe() if armed else ""
        await self._event("token", "ok", client_id=client.client_id, cccd=grant.cccd, defect=defect,
                          detail=f"pkce={'S256' if grant.code_challenge else 'none'}{target}")
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_TTL,
                                "id_token": id_token, "scope": "openid"}
        if defect == "token-type-lowercase":
            body["token_type"] = "bearer"
        elif defect == "no-expires-in":
            del body["expires_in"]
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @staticmethod
    def _check_grant(grant: _Grant, client: OidcClient, redirect_uri: str, verifier: str | None,
                     now: float) -> str | None:
        if grant.expires < now:
            return "the authorization code has expired"
        if grant.client_id != client.client_id:
            return "the authorization code was issued to another client"
        if redirect_uri != grant.redirect_uri:
            return "redirect_uri does not match the one of the authorization request"
        if grant.code_challenge is not None:
            if not verifier or not _VERIFIER.match(verifier):
                return "code_verifier is missing or malformed (PKCE)"
            if not _same(_pkce_s256(verifier), grant.code_challenge):
                return "code_verifier does not match the code_challenge (PKCE)"
        return None

    def _id_token(self, grant: _Grant, client: OidcClient, claims: Mapping[str, Any], now: int,
                  armed: _Armed | None) -> str:
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": claims["sub"],
            "aud": client.client_id,
            "exp": now + ID_TOKEN_TTL,
            "iat": now,
            "auth_time": grant.auth_time,
            "acr": grant.acr,
            "LoaiTaiKhoan": claims["LoaiTaiKhoan"],
            "SoDinhDanh": claims["SoDinhDanh"],
            "HoVaTen": claims["HoVaTen"],
            "NgayThangNamSinh": claims["NgayThangNamSinh"],
        }
        if grant.nonce is not None:
            payload["nonce"] = grant.nonce
        headers: dict[str, Any] = {"kid": self.keys.kid}
        if armed is not None:
            self._mutate_claims(payload, headers, armed, client.client_id, now)
        return self._sign(payload, headers, armed.defect if armed else None, client)

    def _mutate_claims(self, payload: dict[str, Any], headers: dict[str, Any], armed: _Armed, client_id: str,
                       now: int) -> None:
        """Apply a claim or header defect (a signing defect leaves the claims alone)."""
        seconds = armed.seconds or 0
        unknown = f"{client_id}-unknown-client"
        mutate: dict[str, Callable[[], None]] = {
            "wrong-iss": lambda: payload.update(iss=f"{self.issuer}/not-the-issuer"),
            "wrong-aud": lambda: payload.update(aud=f"{client_id}-other"),
            "expired": lambda: payload.update(iat=now - 2 * ID_TOKEN_TTL, exp=now - ID_TOKEN_TTL),
            "iat-future": lambda: payload.update(iat=now + 3600, exp=now + 3600 + ID_TOKEN_TTL),
            "nonce-mismatch": lambda: payload.update(nonce=secrets.token_urlsafe(16)),
            "aud-without-client": lambda: payload.update(aud=[f"{client_id}-other"]),  # one: no azp rule
            "aud-secondary-no-azp": lambda: payload.update(aud=[client_id, unknown]),
            "aud-secondary-foreign-azp": lambda: payload.update(aud=[client_id, unknown], azp=unknown),
            "aud-array": lambda: payload.update(aud=[client_id]),
            "iat-week-old": lambda: payload.update(iat=now - _WEEK, auth_time=now - _WEEK),
            "exp-passed-by": lambda: payload.update(exp=now - seconds, iat=now - seconds - ID_TOKEN_TTL),
            "iat-ahead-by": lambda: payload.update(iat=now + seconds, exp=now + seconds + ID_TOKEN_TTL),
            "no-kid": lambda: headers.pop("kid"),
        }
        if armed.defect in mutate:
            mutate[armed.defect]()
        elif armed.defect.startswith("no-") and armed.defect[3:] in ("sub", "aud", "iat", "exp", "iss", "nonce"):
            payload.pop(armed.defect[3:], None)

    def _sign(self, payload: dict[str, Any], headers: dict[str, Any], defect: str | None, client: OidcClient) -> str:
        """The token signed as ``defect`` says (RS256 with the current key when it is not a signing defect)."""
        if defect == "alg-none":
            return jwt.encode(payload, None, algorithm="none", headers=headers)
        if defect == "alg-hs256-client-secret":
            return _hs256(payload, headers, client.client_secret.encode("utf-8"))
        if defect == "alg-hs256-public-key":
            return _hs256(payload, headers, self.keys.public_pem)
        if defect == "alg-es256-foreign-key":
            return jwt.encode(payload, self.keys.foreign_ec, algorithm="ES256", headers=headers)
        algorithm = {"alg-rs384": "RS384", "alg-ps256": "PS256"}.get(defect or "", "RS256")
        key: rsa.RSAPrivateKey = self.keys.impostor if defect == "bad-signature" else self.keys.private
        if defect == "rotated-key":
            headers["kid"], key = self.keys.rotate()
        if algorithm == "RS256":
            return _rs256(payload, headers, key)
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)

    # -- userinfo --------------------------------------------------------------------------------
    async def userinfo(self, request: Request) -> Response:
        self._check_up()
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        record = self._access.get(token) if token else None
        if record is None or record.expires < time.time():
            await self._event("userinfo", "invalid_token", detail="missing" if not token else "unknown or expired")
            raise ProblemError(401, "Unauthorized", "a valid Bearer access token is required",
                               [{"field": "Authorization", "message": "missing, unknown or expired access token"}],
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        citizen = self.citizens.get(record.cccd)
        assert citizen is not None
        claims = dict(citizen.claims())
        defect = "userinfo-sub-mismatch" if record.defect == "userinfo-sub-mismatch" else None
        if defect:  # another subject than the ID token of this sign-in named (OpenID Connect Core §5.3.2)
            claims["sub"] = f"{claims['sub']}-other"
        await self._event("userinfo", "ok", client_id=record.client_id, cccd=record.cccd, defect=defect)
        return JSONResponse(claims, headers={"Cache-Control": "no-store"})

    # -- end-session -----------------------------------------------------------------------------
    async def end_session(self, request: Request) -> Response:
        q = request.query_params
        hint = q.get("id_token_hint")
        client: OidcClient | None = None
        cccd: str | None = None
        if hint:
            try:
                claims = jwt.decode(hint, self.keys.private.public_key(), algorithms=["RS256"],
                                    options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
                                    issuer=self.issuer)
            except jwt.PyJWTError:
                await self._event("logout", "invalid_request", detail="id_token_hint not issued here")
                raise ProblemError(400, "Bad Request", "id_token_hint was not issued by this provider",
                                   [{"field": "id_token_hint", "message": "signature or issuer invalid"}]) from None
            aud = claims.get("aud")
            client = self.clients.get(aud if isinstance(aud, str) else "")
            cccd = claims.get("SoDinhDanh")
        target = q.get("post_logout_redirect_uri")
        if target:
            candidates = [client] if client else list(self.clients.values())
            if not any(c.post_logout_redirect_uri == target for c in candidates):
                await self._event("logout", "invalid_request", client_id=client.client_id if client else None,
                                  detail="unregistered post_logout_redirect_uri")
                raise ProblemError(400, "Bad Request", "post_logout_redirect_uri is not registered",
                                   [{"field": "post_logout_redirect_uri", "message": "not registered for the client"}])
        for token in self._tokens_of.pop(cccd, []) if cccd else []:
            self._access.pop(token, None)
        await self._event("logout", "ok", client_id=client.client_id if client else None, cccd=cccd)
        if target:
            params = {"state": q["state"]} if "state" in q else {}
            return RedirectResponse(_with_params(target, params) if params else target, status_code=302)
        return HTMLResponse("<!doctype html><html><body><p>Đã đăng xuất (signed out).</p></body></html>")
