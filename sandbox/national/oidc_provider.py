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
import sqlite3
import time
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
from haicap.sandbox.national.shared_cells import SIGNING_KEYS_CELL, SharedCells
from haicap.sandbox.national.store import SHARED_TABLES, RowAppender, Store, now_ms

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


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _keys_of_run(conn: sqlite3.Connection, instance: str) -> dict[str, tuple[str, bytes]]:
    """The run's keys by role (kid, private PEM), generated by the first worker of the run (in the writer, under
    the store's write lock, so every other worker reads the same keys); that worker also empties the state an
    earlier run on this state folder left (:data:`SHARED_TABLES`), as a restart of one process always did."""
    found = {role: (kid, pem) for role, kid, pem in conn.execute(
        "SELECT role, kid, pem FROM idp_keys WHERE instance = ? AND role != 'rotated'", (instance,))}
    if found:
        return found
    for table in SHARED_TABLES:
        conn.execute(f"DELETE FROM {table}")
    generated = {"current": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 "impostor": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 "foreign_ec": ec.generate_private_key(ec.SECP256R1())}
    kid = secrets.token_hex(8)
    rows = [(instance, role, kid, _pem(key)) for role, key in generated.items()]
    conn.executemany("INSERT INTO idp_keys (instance, role, kid, pem) VALUES (?, ?, ?, ?)", rows)
    return {role: (kid, pem) for _, role, kid, pem in rows}


class SigningKeys:
    """The run's current RSA key (published), keys used only to forge tokens (``bad-signature``,
    ``alg-es256-foreign-key``), and the keys of targeted rotations (published next to the current one).

    Every worker of the run holds the same keys (generated once, in the store); a rotation is a row of the store
    and a bump of :data:`SIGNING_KEYS_CELL`, so each worker's JWKS publishes it from its next request on."""

    def __init__(self, store: Store, instance: str, cells: SharedCells) -> None:
        self._store = store
        self._cells = cells
        keys = store.write_sync(lambda conn: _keys_of_run(conn, instance), timeout=120.0)
        self.instance = instance
        self.kid = keys["current"][0]
        self.private = _load_rsa(keys["current"][1])
        self.impostor = _load_rsa(keys["impostor"][1])
        foreign = serialization.load_pem_private_key(keys["foreign_ec"][1], password=None)
        assert isinstance(foreign, ec.EllipticCurvePrivateKey)
        self.foreign_ec = foreign
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._current = _public_jwk(self.private, self.kid)
        self._rotated: list[dict[str, Any]] = []
        self._generation = -1  # of the rotated keys read (SIGNING_KEYS_CELL)
        #: RSA "key" whose modulus is not base64url (1 character): schema-shaped, but no library can parse it
        self._unparseable = {"kty": "RSA", "kid": f"{self.kid}-unparseable", "use": "sig", "alg": "RS256",
                             "n": "A", "e": "AQAB"}

    @property
    def jwks(self) -> dict[str, Any]:
        """The published JWK Set: the current key, then any rotated keys and (after a rotation) the unparseable one."""
        generation = self._cells.get_int(SIGNING_KEYS_CELL)
        if generation != self._generation:  # a worker rotated a key: read the last few of this run
            rows = self._store.read_now(lambda conn: conn.execute(
                "SELECT jwk FROM idp_keys WHERE instance = ? AND role = 'rotated' ORDER BY id DESC LIMIT ?",
                (self.instance, MAX_ROTATED_KEYS)).fetchall())
            self._rotated = [orjson.loads(jwk) for (jwk,) in reversed(rows)]
            self._generation = generation
        keys = [self._current, *self._rotated]
        return {"keys": [*keys, self._unparseable] if self._rotated else keys}

    async def rotate(self) -> tuple[str, rsa.RSAPrivateKey]:
        """A new key under a new kid, published from now on next to the current one: (kid, private key)."""
        kid = secrets.token_hex(8)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        row = (self.instance, kid, orjson.dumps(_public_jwk(private, kid)).decode())
        await self._store.write(lambda conn: conn.execute(
            "INSERT INTO idp_keys (instance, role, kid, jwk) VALUES (?, 'rotated', ?, ?)", row).rowcount)
        self._cells.bump(SIGNING_KEYS_CELL)
        return kid, private


def _load_rsa(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


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


class OidcProvider:
    """The identity provider's state and endpoints; :attr:`routes` are mounted by the app."""

    def __init__(self, config: NationalConfig, citizens: CitizenRegistry, store: Store, outages: Outages,
                 cells: SharedCells, instance: str) -> None:
        self.issuer = config.public_url.rstrip("/")
        self.clients: dict[str, OidcClient] = {c.client_id: c for c in config.clients}
        self.citizens = citizens
        self.store = store
        self.outages = outages
        self.keys = SigningKeys(store, instance, cells)
        self._events = RowAppender(store, _INSERT_EVENT)
        self._authorized = 0  # codes issued by this worker (expired rows are pruned every PRUNE_EVERY)
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
    async def arm(self, defect: str, count: int, login_hint: str | None = None, seconds: int | None = None) -> int:
        """The next ``count`` ID tokens carry ``defect`` — only those issued for citizen ``login_hint`` when given.

        ``seconds`` is how far exp lies in the past (``exp-passed-by``) or iat in the future (``iat-ahead-by``).
        Returns how many defective tokens are pending for the same target (that citizen, or anyone). Raises
        :class:`ValueError` for an unknown defect, a login_hint that is not a valid CCCD, or too many targets.
        The defects are rows of the store, so whichever worker issues the citizen's next token applies them.
        """
        if defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        if login_hint is not None and (not _CCCD.match(login_hint) or self.citizens.get(login_hint) is None):
            raise ValueError("login_hint is not a valid citizen identity number (CCCD)")
        return await self.store.write(lambda conn: _arm(conn, defect, count, login_hint, seconds))

    async def pending(self) -> int:
        """Defective tokens still to be issued, untargeted and targeted."""
        return await self.store.read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM idp_defects").fetchone()[0]))

    # -- helpers ---------------------------------------------------------------------------------
    def _check_up(self) -> None:
        if self.outages.is_down("idp"):
            raise ProblemError(503, "Service Unavailable", "the national identity provider is down (sandbox outage)",
                               headers={"Retry-After": str(self.outages.retry_after("idp"))})

    async def _event(self, kind: str, outcome: str, *, client_id: str | None = None, cccd: str | None = None,
                     defect: str | None = None, detail: str = "", also: tuple[str, tuple[Any, ...]] | None = None
                     ) -> None:
        await self._events.append((now_ms(), kind, outcome, client_id, cccd, defect, detail), also)

    def _prune(self) -> None:
        """Every :data:`PRUNE_EVERY` codes this worker issues, drop expired codes and tokens (not awaited)."""
        self._authorized += 1
        if self._authorized % PRUNE_EVERY == 0:
            with contextlib.suppress(RuntimeError):  # the store is closing
                self.store.submit(_prune_expired)

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
        self._prune()
        record = orjson.dumps([client_id, redirect_uri, login_hint, q.get("nonce"), challenge, acr, int(now)])
        detail = f"pkce={'S256' if challenge else 'none'} nonce={'yes' if q.get('nonce') else 'no'} " \
                 f"state={'yes' if state else 'no'} acr={acr}"
        # the code is committed with the event, before the redirect: the token request may reach another worker
        await self._event("authorize", "ok", client_id=client_id, cccd=login_hint, detail=detail,
                          also=(_INSERT_CODE, (code, now + CODE_TTL, record)))
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
        access = secrets.token_urlsafe(32)
        verifier = form.get("code_verifier")
        grant, failure, armed = await self.store.write(
            lambda conn: _redeem(conn, code, access, client, redirect_uri, verifier, now))
        if grant is None or failure:
            return _token_error("invalid_grant", failure or "")  # the event was recorded with the redemption
        defect = armed.defect if armed else None
        citizen = self.citizens.get(grant.cccd)
        assert citizen is not None  # the code was only issued for a valid CCCD
        rotated = await self.keys.rotate() if defect == "rotated-key" else None
        id_token = self._id_token(grant, client, citizen.claims(), int(now), armed, rotated)
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
                  armed: _Armed | None, rotated: tuple[str, rsa.RSAPrivateKey] | None = None) -> str:
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
        return self._sign(payload, headers, armed.defect if armed else None, client, rotated)

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

    def _sign(self, payload: dict[str, Any], headers: dict[str, Any], defect: str | None, client: OidcClient,
              rotated: tuple[str, rsa.RSAPrivateKey] | None = None) -> str:
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
        if rotated is not None:  # rotated-key: the key generated for this one token
            headers["kid"], key = rotated
        if algorithm == "RS256":
            return _rs256(payload, headers, key)
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)

    # -- userinfo --------------------------------------------------------------------------------
    def _access_token(self, token: str) -> _AccessToken | None:
        """The access token's record, read from the store (a primary-key lookup on this thread's connection)."""
        rows = self.store.read_now(lambda conn: conn.execute(
            "SELECT cccd, client_id, expires, defect FROM idp_access WHERE token = ?", (token,)).fetchall())
        return _AccessToken(*rows[0]) if rows else None

    async def userinfo(self, request: Request) -> Response:
        self._check_up()
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        record = self._access_token(token) if token else None
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
        if cccd:  # every access token of the citizen, whichever worker issued it
            revoked = (cccd,)
            await self.store.write(lambda conn: conn.execute("DELETE FROM idp_access WHERE cccd = ?", revoked).rowcount)
        await self._event("logout", "ok", client_id=client.client_id if client else None, cccd=cccd)
        if target:
            params = {"state": q["state"]} if "state" in q else {}
            return RedirectResponse(_with_params(target, params) if params else target, status_code=302)
        return HTMLResponse("<!doctype html><html><body><p>Đã đăng xuất (signed out).</p></body></html>")


#: every how many authorization codes a worker prunes expired codes, used codes and access tokens
PRUNE_EVERY = 1024
_INSERT_CODE = "INSERT INTO idp_codes (code, expires, record) VALUES (?, ?, ?)"
_INSERT_EVENT = ("INSERT INTO idp_events (at_ms, kind, outcome, client_id, SoDinhDanh, defect, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)")


def _prune_expired(conn: sqlite3.Connection) -> None:
    now = time.time()
    for table in ("idp_codes", "idp_used_codes", "idp_access"):
        conn.execute(f"DELETE FROM {table} WHERE expires < ?", (now,))


def _arm(conn: sqlite3.Connection, defect: str, count: int, login_hint: str | None, seconds: int | None) -> int:
    """Queue ``count`` defects for ``login_hint`` (None: anyone), in the writer; how many are pending for it."""
    if login_hint is not None and not conn.execute(
            "SELECT 1 FROM idp_defects WHERE cccd = ? LIMIT 1", (login_hint,)).fetchall():
        targets = conn.execute("SELECT COUNT(DISTINCT cccd) FROM idp_defects WHERE cccd IS NOT NULL").fetchone()[0]
        if targets >= MAX_TARGETED_CITIZENS:
            raise ValueError(f"{MAX_TARGETED_CITIZENS} citizens already have targeted defects pending")
    conn.executemany("INSERT INTO idp_defects (cccd, defect, seconds) VALUES (?, ?, ?)",
                     [(login_hint, defect, seconds)] * count)
    return int(conn.execute("SELECT COUNT(*) FROM idp_defects WHERE cccd IS ?", (login_hint,)).fetchone()[0])


_TAKE_DEFECT = ("DELETE FROM idp_defects WHERE id = (SELECT id FROM idp_defects WHERE cccd {} ORDER BY id LIMIT 1) "
                "RETURNING defect, seconds")
_TAKE_TARGETED, _TAKE_ANY = _TAKE_DEFECT.format("= ?"), _TAKE_DEFECT.format("IS NULL")


def _take_defect(conn: sqlite3.Connection, cccd: str) -> tuple[_Armed | None, bool]:
    """(the defect of the next ID token for ``cccd`` or None, whether it was targeted at that citizen), consumed."""
    rows = conn.execute(_TAKE_TARGETED, (cccd,)).fetchall()
    if rows:
        return _Armed(*rows[0]), True
    rows = conn.execute(_TAKE_ANY).fetchall()
    return (_Armed(*rows[0]) if rows else None), False


def _redeem(conn: sqlite3.Connection, code: str, access: str, client: OidcClient, redirect_uri: str,
            verifier: str | None, now: float) -> tuple[_Grant | None, str | None, _Armed | None]:
    """Consume ``code`` atomically (``DELETE ... RETURNING``: a code sent to two workers at once is redeemed by
    one), check the grant, take the next defect, record the access token and the IdP event, all in one writer op
    (one round trip per token request): (grant, failure, defect)."""
    found = conn.execute("DELETE FROM idp_codes WHERE code = ? RETURNING expires, record", (code,)).fetchall()
    if not found:
        reused = bool(conn.execute("SELECT 1 FROM idp_used_codes WHERE code = ?", (code,)).fetchall())
        reason = "the authorization code was already used" if reused else "unknown authorization code"
        conn.execute(_INSERT_EVENT, (now_ms(), "token", "invalid_grant", client.client_id, None, None, reason))
        return None, reason, None
    expires, record = found[0]
    conn.execute("INSERT OR REPLACE INTO idp_used_codes (code, expires) VALUES (?, ?)", (code, expires))
    grant = _Grant(*orjson.loads(record), expires)
    failure = OidcProvider._check_grant(grant, client, redirect_uri, verifier, now)
    if failure:
        conn.execute(_INSERT_EVENT, (now_ms(), "token", "invalid_grant", client.client_id, grant.cccd, None, failure))
        return grant, failure, None
    armed, targeted = _take_defect(conn, grant.cccd)
    defect = armed.defect if armed else None
    conn.execute("INSERT INTO idp_access (token, cccd, client_id, expires, defect) VALUES (?, ?, ?, ?, ?)",
                 (access, grant.cccd, client.client_id, now + ACCESS_TOKEN_TTL, defect))
    target = (" target=login_hint" if targeted else " target=any") + armed.describe() if armed else ""
    detail = f"pkce={'S256' if grant.code_challenge else 'none'}{target}"
    conn.execute(_INSERT_EVENT, (now_ms(), "token", "ok", client.client_id, grant.cccd, defect, detail))
    return grant, None, armed
