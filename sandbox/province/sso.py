"""Relying party of the national identity provider (OIDC authorization code flow, PKCE S256, nonce).

``/auth/login`` remembers (state, nonce, code_verifier) under a ``haicap_login`` cookie (a row of the store, so
the callback may reach any worker process: :mod:`sessions`) and redirects to the national ``authorize``
endpoint (``login_hint`` passed through, so automated clients sign a test citizen in without a UI). An optional
``return_to`` (a path on this province only, never another site) is kept in a ``haicap_return`` cookie.
``/auth/callback`` answers an error response of the national side with a refusal (no session, no code
redeemed), then requires the RFC 9207 ``iss`` to be the national issuer (present, since the national side
advertises ``authorization_response_iss_parameter_supported``), a ``state`` equal to the one of the
login *this browser* started (its cookie: a callback carried to another browser finds nothing, login CSRF),
consumes that login once, exchanges the code with the client secret and the verifier, validates the ID token
(RS256 only, signature against the national JWKS, then the claim rules of :mod:`id_token`: iss, aud/azp, exp,
iat, nonce, sub), fetches userinfo (same sub) and issues a province session (a row of the store too, cached by
each worker), naming the kept ``return_to``. The JWKS is cached: fetched on the first sign-in and again only
for an unknown kid (a key rotation), at most once a second, so a login storm causes no JWKS storm; a key it
cannot parse is skipped (RFC 7517 §5).
Every refusal is a 4xx problem naming the reason; every callback answer carries ``Referrer-Policy:
no-referrer`` (its URL holds the code and state). Discovery is used only when its ``issuer`` is the configured
national issuer (OpenID Connect Discovery 1.0 §4.3).
``/auth/logout`` ends the session and redirects to the national end-session endpoint.

The ``sso`` faults of :mod:`faults` each switch off one of these checks, where it is made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from haicap.contract_registry import ContractRegistry
from haicap.sandbox.config import OidcClient
from haicap.sandbox.province.id_token import CLOCK_LEEWAY, Refused, check_claims
from haicap.sandbox.province.lazy_http import LazyAsyncClient
from haicap.sandbox.province.problems import Problem, json_response
from haicap.sandbox.province.sessions import SESSION_TTL, CitizenSession, PendingLogin, PendingLogins, SessionStore
from haicap.sandbox.province.store import Store

__all__ = ["CLOCK_LEEWAY", "CitizenSession", "RelyingParty", "SessionStore"]

LOGIN_COOKIE = "haicap_login"
RETURN_COOKIE = "haicap_return"
MAX_RETURN_TO = 2000
#: on every /auth/callback answer: the callback URL carries the code and state (RFC 9700 §4.2.4)
CALLBACK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
LOGIN_TTL = 600.0
#: The one ID-token algorithm registered with the national provider (its id_token_signing_alg_values_supported).
ID_TOKEN_ALG = "RS256"
#: What the ``accepts-any-rsa-alg`` fault lets through: any RSA algorithm of the JWKS key.
_ANY_RSA_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
#: Unknown-kid refetches of the JWKS at most this often (seconds).
JWKS_REFETCH_INTERVAL = 1.0
_NO_CLAIM_CHECKS = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False,
                    "verify_aud": False, "verify_sub": False, "verify_jti": False}
MAX_PENDING = 100_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def _refuse(reason: str) -> Problem:
    return Problem(401, "Sign-in refused", reason)


def is_local_path(value: str) -> bool:
    """Whether ``value`` is a path on this site that no browser resolves to another host: it starts with one
    ``/``, has no second ``/`` or ``\\`` right after it, no backslash, control character or space anywhere
    (browsers drop tabs and newlines and read ``\\`` as ``/``), and no scheme or host."""
    if not value.startswith("/") or len(value) > MAX_RETURN_TO:
        return False
    if value[1:2] in {"/", "\\"} or "\\" in value or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


class RelyingParty:
    """The province's OIDC client. Routes: :meth:`login`, :meth:`callback`, :meth:`logout`, :meth:`logged_out`."""

    def __init__(
        self,
        national_url: str,
        client: OidcClient,
        sessions: SessionStore,
        registry: ContractRegistry,
        faults: Collection[str] = (),
        *,
        store: Store,
    ) -> None:
        self.issuer = national_url.rstrip("/")
        self.client = client
        self.sessions = sessions
        self.store = store
        self.faults = frozenset(faults)
        self._pending = PendingLogins(store, LOGIN_TTL, MAX_PENDING)
        self._discovery: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._keys_fetched = 0.0
        self._keys_lock = asyncio.Lock()
        self._cccd = registry.validator("common.schema.json#/$defs/SoCCCD")
        self._http = LazyAsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- discovery and keys ------------------------------------------------------------------------
    async def _metadata(self) -> dict[str, Any]:
        if self._discovery is None:
            try:
                response = await self._http.client.get(self.issuer + "/.well-known/openid-configuration")
                data = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise Problem(502, "Identity provider unavailable", f"discovery failed: {type(exc).__name__}") from None
            if response.status_code != 200 or not isinstance(data, dict):
                raise Problem(502, "Identity provider unavailable", f"discovery answered HTTP {response.status_code}")
            if "accepts-discovery-issuer-mismatch" not in self.faults and data.get("issuer") != self.issuer:
                raise Problem(502, "Identity provider misconfigured",
                              "the discovery document names another issuer than the configured national issuer")
            self._discovery = data
        return self._discovery

    async def _endpoint(self, name: str, default_path: str) -> str:
        value = (await self._metadata()).get(name)
        return value if isinstance(value, str) and value else self.issuer + default_path

    async def _fetch_keys(self) -> None:
        """Replace the cached keys by the national JWKS, skipping keys that cannot be parsed (RFC 7517 §5)."""
        try:
            response = await self._http.client.get(await self._endpoint("jwks_uri", "/jwks"))
            keys = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise _refuse(f"national JWKS unavailable ({type(exc).__name__})") from None
        fresh: dict[str | None, Any] = {}
        for jwk in keys if isinstance(keys, list) else []:
            try:
                fresh[jwk.get("kid")] = jwt.PyJWK(jwk).key
            except (jwt.PyJWTError, AttributeError, TypeError, ValueError):
                if "discards-jwks-with-unparseable-key" in self.faults:  # the defect: the whole set is dropped
                    return
                continue
        self._keys = fresh

    async def _signing_keys(self, kid: str | None) -> list[Any]:
        """The keys that may have signed a token with header ``kid``: that key (the JWKS fetched again when the kid
        is unknown: a rotation), or without a kid every cached key (the usual case: the JWKS has one)."""
        faults = self.faults
        if "fetches-jwks-every-sign-on" in faults:  # the defect: no cache, a JWKS storm during a login storm
            await self._fetch_keys()
        unknown = kid is not None and kid not in self._keys and "no-jwks-refetch-on-unknown-kid" not in faults
        if not self._keys or unknown:
            async with self._keys_lock:  # concurrent sign-ins wait for one JWKS fetch, not fail
                first = not self._keys
                if first or (kid not in self._keys and time.monotonic() - self._keys_fetched > JWKS_REFETCH_INTERVAL):
                    if not first:  # only refetches are rate-limited (a random kid cannot force a JWKS storm)
                        self._keys_fetched = time.monotonic()
                    await self._fetch_keys()
        if kid is None:
            if "requires-kid" in faults:  # the defect: a token without kid is refused even with one key
                raise _refuse("id_token header has no kid")
            return list(self._keys.values())
        key = self._keys.get(kid)
        if key is None:
            raise _refuse(f"id_token signature invalid: signing key {kid!r} is not in the national JWKS")
        return [key]

    # -- routes ------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        login_hint = request.query_params.get("login_hint")
        if login_hint is not None and not self._cccd.is_valid(login_hint):
            raise Problem.field(400, "login_hint", "must be a 12-digit CCCD")
        return_to = request.query_params.get("return_to")
        if return_to is not None and "open-redirect-after-login" not in self.faults and not is_local_path(return_to):
            raise Problem.field(400, "return_to", "must be a path on this province (one leading /, no host)")
        login_id, pending = await self._pending.add()
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uri,
            "scope": "openid",
            "acr_values": "LoA1",
            "state": pending.state,
            "nonce": pending.nonce,
        }
        if "no-pkce" not in self.faults:
            params["code_challenge"] = _b64url(hashlib.sha256(pending.verifier.encode("ascii")).digest())
            params["code_challenge_method"] = "S256"
        if login_hint:
            params["login_hint"] = login_hint
        authorize = await self._endpoint("authorization_endpoint", "/authorize")
        response = RedirectResponse(f"{authorize}?{urlencode(params)}", status_code=302)
        response.set_cookie(LOGIN_COOKIE, login_id, max_age=int(LOGIN_TTL), path="/auth", httponly=True, samesite="lax")
        if return_to:
            response.set_cookie(RETURN_COOKIE, return_to, max_age=int(LOGIN_TTL), path="/auth", httponly=True,
                                samesite="lax")
        else:
            response.delete_cookie(RETURN_COOKIE, path="/auth")
        return response

    async def _take_pending(self, request: Request, state: str) -> PendingLogin:
        """The login this browser started and this callback finishes, consumed (a replayed callback finds
        nothing). Found by the browser's login cookie only: a state carried to another browser is refused."""
        if "state-not-bound-to-browser" in self.faults:  # the defect: whoever holds the state finishes the login
            login_id = None
        else:
            login_id = request.cookies.get(LOGIN_COOKIE)
            if not login_id:
                raise _refuse("no sign-in was started in this browser (login cookie missing)")
        pending = await self._pending.take(login_id, state)
        if pending is None:
            raise _refuse("no pending sign-in for this callback (unknown, expired or already used)")
        if not state and "accepts-missing-state" in self.faults:  # the defect: state compared only when present
            return pending
        if "skips-state-check" not in self.faults and not hmac.compare_digest(pending.state, state):
            raise _refuse("state mismatch")
        return pending

    async def _check_iss(self, iss: str | None) -> None:
        """RFC 9207 §2.4: ``iss`` of an authorization response must be the national issuer, and is required when
        the national side advertises ``authorization_response_iss_parameter_supported``."""
        if "ignores-iss-parameter" in self.faults:
            return
        if iss is None:
            advertised = (await self._metadata()).get("authorization_response_iss_parameter_supported") is True
            if not advertised or "accepts-missing-iss-parameter" in self.faults:
                return
            raise _refuse("the authorization response carries no iss although the national side sends it (RFC 9207)")
        if not hmac.compare_digest(iss.encode(), self.issuer.encode()):
            raise _refuse("the authorization response iss is not the national issuer (RFC 9207 mix-up)")

    async def callback(self, request: Request) -> Response:
        headers = dict(CALLBACK_HEADERS)
        if "leaks-code-via-referer" in self.faults:  # the defect: the page's Referer carries code and state
            del headers["Referrer-Policy"]
        try:
            response = await self._callback(request)
        except Problem as problem:
            problem.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    async def _callback(self, request: Request) -> Response:
        query = request.query_params
        crashes = "500-on-error-callback" in self.faults  # the defect: the handler assumes a code is always there
        error = query.get("error")
        if error is not None and not crashes:
            raise _refuse(f"the national identity provider answered error {error[:64]!r} (no session)")
        code, state = query["code"] if crashes else query.get("code"), query.get("state")
        if not code:
            raise Problem.field(400, "code", "required")
        if not state and "accepts-missing-state" not in self.faults:
            raise Problem.field(400, "state", "required")
        await self._check_iss(query.get("iss"))
        if "accepts-reused-code" in self.faults:
            completed = self.store.read_one(
                "SELECT so_dinh_danh, ho_va_ten, id_token FROM reused_codes WHERE code_hash = ?", (_code_hash(code),)
            )
            if completed is not None:
                return await self._signed_in(*completed, request=request)
        pending = await self._take_pending(request, state or "")
        tokens = await self._exchange(code, pending.verifier)
        id_token = tokens.get("id_token")
        access_token = tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise _refuse("token endpoint answered without id_token or access_token")
        claims = await self._validate_id_token(id_token, pending.nonce)
        userinfo = await self._userinfo(access_token, claims.get("sub"))
        cccd = userinfo.get("SoDinhDanh") or claims.get("SoDinhDanh")
        name = userinfo.get("HoVaTen") or claims.get("HoVaTen")
        if not isinstance(cccd, str) or not self._cccd.is_valid(cccd):
            raise _refuse("the identity provider gave no valid SoDinhDanh")
        if not isinstance(name, str) or not name.strip():
            raise _refuse("the identity provider gave no HoVaTen")
        if "accepts-reused-code" in self.faults:
            await self.store.write(lambda conn: conn.execute(
                "INSERT OR REPLACE INTO reused_codes (code_hash, so_dinh_danh, ho_va_ten, id_token) "
                "VALUES (?, ?, ?, ?)",
                (_code_hash(code), cccd, name, id_token),
            ).rowcount)
        return await self._signed_in(cccd, name, id_token, request=request)

    async def _signed_in(self, cccd: str, name: str, id_token: str, *, request: Request) -> Response:
        token, _ = await self.sessions.issue(cccd, name, id_token)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": SESSION_TTL,
            "claims": {"SoDinhDanh": cccd, "HoVaTen": name},
        }
        return_to = request.cookies.get(RETURN_COOKIE)
        if return_to and ("open-redirect-after-login" in self.faults or is_local_path(return_to)):
            body["return_to"] = return_to
            if "access-token-in-url" in self.faults:  # the defect: a single-page-app hand-off in the fragment
                body["return_to"] = f"{return_to}#{urlencode({'access_token': token})}"
        response = json_response(body, headers={"Cache-Control": "no-store"})
        response.delete_cookie(LOGIN_COOKIE, path="/auth")
        response.delete_cookie(RETURN_COOKIE, path="/auth")
        return response

    async def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client.redirect_uri,
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret,
        }
        if "no-pkce" not in self.faults:
            form["code_verifier"] = verifier
        try:
            response = await self._http.client.post(await self._endpoint("token_endpoint", "/token"), data=form)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse(f"token endpoint unavailable ({type(exc).__name__})") from None
        if response.status_code != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            raise _refuse(f"token endpoint refused the code (HTTP {response.status_code}, error {error!r})")
        self._check_token_response(data)
        return data

    def _check_token_response(self, data: dict[str, Any]) -> None:
        """RFC 6749 §5.1, §7.1: token_type is Bearer, compared case-insensitively; expires_in is optional."""
        token_type = data.get("token_type")
        if "rejects-lowercase-token-type" in self.faults:  # the defect: a case-sensitive comparison
            bearer = token_type == "Bearer"
        else:
            bearer = isinstance(token_type, str) and token_type.lower() == "bearer"
        if not bearer:
            raise _refuse(f"token endpoint answered token_type {token_type!r}, not Bearer")
        if "expires_in" not in data and "requires-expires-in" in self.faults:  # the defect: RECOMMENDED as required
            raise _refuse("token endpoint answered without expires_in")

    async def _userinfo(self, access_token: str, sub: Any) -> dict[str, Any]:
        """The userinfo answer for ``access_token``, whose sub must be the ID token's ``sub`` (OpenID Connect
        Core 1.0 §5.3.2: otherwise the answer is about someone else and must not be used)."""
        try:
            response = await self._http.client.get(
                await self._endpoint("userinfo_endpoint", "/userinfo"),
                headers={"Authorization": f"Bearer {access_token}"},
            )
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse(f"userinfo unavailable ({type(exc).__name__})") from None
        if response.status_code != 200 or not isinstance(data, dict):
            raise _refuse(f"userinfo refused (HTTP {response.status_code})")
        if "skips-userinfo-sub-check" in self.faults or (sub is None and "accepts-missing-sub" in self.faults):
            return data
        if data.get("sub") != sub:
            raise _refuse("userinfo sub differs from the id_token sub")
        return data

    async def _verified_claims(self, id_token: str) -> dict[str, Any]:
        """The claims of an ID token whose algorithm is the registered RS256 and whose signature verifies against a
        national key (RFC 8725 §3.1: the algorithm is pinned, never taken from the token)."""
        faults = self.faults
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise _refuse("id_token is not a JWT") from None
        alg = header.get("alg")
        unverified = {"verify_signature": False}
        if alg == "none" and "accepts-alg-none" in faults:
            return jwt.decode(id_token, options=unverified)
        if alg == "HS256" and "accepts-hs256-client-secret" in faults:  # the defect: algorithm confusion
            return jwt.decode(id_token, self.client.client_secret, algorithms=["HS256"], options=_NO_CLAIM_CHECKS)
        if alg != ID_TOKEN_ALG and "verifies-only-rs256-signatures" in faults:
            return jwt.decode(id_token, options=unverified)
        algorithms = _ANY_RSA_ALGS if "accepts-any-rsa-alg" in faults else [ID_TOKEN_ALG]
        if alg not in algorithms:
            raise _refuse(f"id_token alg {alg!r} is not the registered {ID_TOKEN_ALG}")
        if "accepts-bad-id-token-signature" in faults:
            return jwt.decode(id_token, options=unverified)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _refuse("id_token header kid is not a string")
        keys = await self._signing_keys(kid)
        for key in keys:
            try:
                return jwt.decode(id_token, key, algorithms=algorithms, options=_NO_CLAIM_CHECKS)
            except jwt.InvalidSignatureError:
                continue
        raise _refuse("id_token signature invalid")

    async def _validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            claims = await self._verified_claims(id_token)
            check_claims(claims, issuer=self.issuer, client_id=self.client.client_id, nonce=nonce,
                         faults=self.faults, now=time.time())
        except jwt.PyJWTError as exc:
            raise _refuse(f"id_token invalid: {exc}") from None
        except Refused as exc:
            raise _refuse(str(exc)) from None
        return claims

    async def logout(self, request: Request) -> Response:
        token, session = self.sessions.from_request(request)
        await self.sessions.revoke(token)
        if "local-logout-only" in self.faults:  # the defect: the national session stays open
            return json_response({"logged_out": True})
        params = {
            "id_token_hint": session.id_token,
            "post_logout_redirect_uri": self.client.post_logout_redirect_uri,
            "state": secrets.token_urlsafe(16),
        }
        end_session = await self._endpoint("end_session_endpoint", "/end-session")
        return RedirectResponse(f"{end_session}?{urlencode(params)}", status_code=302)

    async def logged_out(self, request: Request) -> Response:
        return json_response({"logged_out": True})
