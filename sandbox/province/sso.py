"""Relying party of the national identity provider (OIDC authorization code flow, PKCE S256, nonce).

``/auth/login`` remembers (state, nonce, code_verifier) under a ``haicap_login`` cookie and redirects to the
national ``authorize`` endpoint (``login_hint`` passed through, so automated clients sign a test citizen in
without a UI). ``/auth/callback`` consumes that login once, exchanges the code with the client secret and the
verifier, validates the ID token (RS256 only, signature against the national JWKS, iss, aud, exp, iat, nonce),
fetches userinfo and issues a province session. Every refusal is a 401 problem naming the reason.
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
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from haicap.contract_registry import ContractRegistry
from haicap.sandbox.config import OidcClient
from haicap.sandbox.province.problems import Problem, json_response

__all__ = ["CitizenSession", "RelyingParty", "SessionStore"]

LOGIN_COOKIE = "haicap_login"
LOGIN_TTL = 600.0
SESSION_TTL = 3600
CLOCK_LEEWAY = 60
MAX_PENDING = 100_000


@dataclass(frozen=True, slots=True)
class CitizenSession:
    """A signed-in citizen. Identity comes from the national identity provider, never from a request body."""

    so_dinh_danh: str
    ho_va_ten: str
    id_token: str = field(repr=False)
    expires_at: float


@dataclass(slots=True)
class _PendingLogin:
    state: str
    nonce: str
    verifier: str = field(repr=False)
    created: float


class SessionStore:
    """Bearer session tokens → sessions (in memory, expiring)."""

    def __init__(self, max_sessions: int = 500_000) -> None:
        self._sessions: OrderedDict[str, CitizenSession] = OrderedDict()
        self._max = max_sessions

    def issue(self, so_dinh_danh: str, ho_va_ten: str, id_token: str) -> tuple[str, CitizenSession]:
        token = secrets.token_urlsafe(32)
        session = CitizenSession(so_dinh_danh, ho_va_ten, id_token, time.time() + SESSION_TTL)
        self._sessions[token] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str) -> CitizenSession | None:
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires_at < time.time():
            self._sessions.pop(token, None)
            return None
        return session

    def revoke(self, token: str) -> CitizenSession | None:
        return self._sessions.pop(token, None)

    def from_request(self, request: Request) -> tuple[str, CitizenSession]:
        """The caller's (token, session), or a 401 problem."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        session = self.get(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if session is None:
            raise Problem(
                401,
                "Unauthorized",
                "a valid citizen session is required (Authorization: Bearer <token from /auth/callback>)",
                headers={"WWW-Authenticate": 'Bearer realm="province"'},
            )
        return token.strip(), session


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _refuse(reason: str) -> Problem:
    return Problem(401, "Sign-in refused", reason)


class RelyingParty:
    """The province's OIDC client. Routes: :meth:`login`, :meth:`callback`, :meth:`logout`, :meth:`logged_out`."""

    def __init__(
        self,
        national_url: str,
        client: OidcClient,
        sessions: SessionStore,
        registry: ContractRegistry,
        faults: Collection[str] = (),
    ) -> None:
        self.issuer = national_url.rstrip("/")
        self.client = client
        self.sessions = sessions
        self.faults = frozenset(faults)
        self._pending: OrderedDict[str, _PendingLogin] = OrderedDict()
        self._completed: dict[str, tuple[str, str, str]] = {}  # fault accepts-reused-code only
        self._discovery: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._keys_fetched = 0.0
        self._keys_lock = asyncio.Lock()
        self._cccd = registry.validator("common.schema.json#/$defs/SoCCCD")
        self._http: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        return self._http

    # -- discovery and keys ------------------------------------------------------------------------
    async def _metadata(self) -> dict[str, Any]:
        if self._discovery is None:
            try:
                response = await self.http.get(self.issuer + "/.well-known/openid-configuration")
                data = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise Problem(502, "Identity provider unavailable", f"discovery failed: {type(exc).__name__}") from None
            if response.status_code != 200 or not isinstance(data, dict):
                raise Problem(502, "Identity provider unavailable", f"discovery answered HTTP {response.status_code}")
            self._discovery = data
        return self._discovery

    async def _endpoint(self, name: str, default_path: str) -> str:
        value = (await self._metadata()).get(name)
        return value if isinstance(value, str) and value else self.issuer + default_path

    async def _signing_key(self, kid: str | None) -> Any:
        if kid not in self._keys:
            async with self._keys_lock:  # concurrent first sign-ins wait for one JWKS fetch, not fail
                if kid not in self._keys and time.monotonic() - self._keys_fetched > 1.0:
                    self._keys_fetched = time.monotonic()
                    try:
                        response = await self.http.get(await self._endpoint("jwks_uri", "/jwks"))
                        keys = response.json().get("keys", [])
                    except (httpx.HTTPError, ValueError, AttributeError) as exc:
                        raise _refuse(f"national JWKS unavailable ({type(exc).__name__})") from None
                    fresh: dict[str, Any] = {}
                    for jwk in keys if isinstance(keys, list) else []:
                        try:
                            fresh[jwk.get("kid")] = jwt.PyJWK(jwk).key
                        except (jwt.PyJWKError, AttributeError, TypeError):
                            continue
                    self._keys = fresh
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            raise _refuse(f"id_token signature invalid: signing key {kid!r} is not in the national JWKS")
        return key

    # -- routes ------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        login_hint = request.query_params.get("login_hint")
        if login_hint is not None and not self._cccd.is_valid(login_hint):
            raise Problem.field(400, "login_hint", "must be a 12-digit CCCD")
        now = time.monotonic()
        while self._pending and (
            len(self._pending) >= MAX_PENDING or next(iter(self._pending.values())).created < now - LOGIN_TTL
        ):
            self._pending.popitem(last=False)
        login_id = secrets.token_urlsafe(24)
        pending = _PendingLogin(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), now)
        self._pending[login_id] = pending
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
        return response

    def _take_pending(self, request: Request, state: str) -> _PendingLogin:
        """The login this callback finishes, consumed (a replayed callback finds nothing)."""
        login_id = request.cookies.get(LOGIN_COOKIE)
        if login_id is None:  # a client without cookies: find the login by its state
            login_id = next((k for k, p in self._pending.items() if hmac.compare_digest(p.state, state)), None)
        pending = self._pending.pop(login_id, None) if login_id else None
        if pending is None or pending.created < time.monotonic() - LOGIN_TTL:
            raise _refuse("no pending sign-in for this callback (unknown, expired or already used)")
        if "skips-state-check" not in self.faults and not hmac.compare_digest(pending.state, state):
            raise _refuse("state mismatch")
        return pending

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        if query.get("error"):
            raise _refuse(f"identity provider answered error {query.get('error')!r}")
        code, state = query.get("code"), query.get("state")
        if not code:
            raise Problem.field(400, "code", "required")
        if not state:
            raise Problem.field(400, "state", "required")
        if "accepts-reused-code" in self.faults and code in self._completed:
            cccd, name, id_token = self._completed[code]
            return self._signed_in(cccd, name, id_token)
        pending = self._take_pending(request, state)
        tokens = await self._exchange(code, pending.verifier)
        id_token = tokens.get("id_token")
        access_token = tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise _refuse("token endpoint answered without id_token or access_token")
        claims = await self._validate_id_token(id_token, pending.nonce)
        userinfo = await self._userinfo(access_token)
        if userinfo.get("sub") != claims.get("sub"):
            raise _refuse("userinfo sub differs from the id_token sub")
        cccd = userinfo.get("SoDinhDanh") or claims.get("SoDinhDanh")
        name = userinfo.get("HoVaTen") or claims.get("HoVaTen")
        if not isinstance(cccd, str) or not self._cccd.is_valid(cccd):
            raise _refuse("the identity provider gave no valid SoDinhDanh")
        if not isinstance(name, str) or not name.strip():
            raise _refuse("the identity provider gave no HoVaTen")
        if "accepts-reused-code" in self.faults:
            self._completed[code] = (cccd, name, id_token)
        return self._signed_in(cccd, name, id_token)

    def _signed_in(self, cccd: str, name: str, id_token: str) -> Response:
        token, _ = self.sessions.issue(cccd, name, id_token)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": SESSION_TTL,
            "claims": {"SoDinhDanh": cccd, "HoVaTen": name},
        }
        response = json_response(body, headers={"Cache-Control": "no-store"})
        response.delete_cookie(LOGIN_COOKIE, path="/auth")
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
            response = await self.http.post(await self._endpoint("token_endpoint", "/token"), data=form)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse(f"token endpoint unavailable ({type(exc).__name__})") from None
        if response.status_code != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            raise _refuse(f"token endpoint refused the code (HTTP {response.status_code}, error {error!r})")
        return data

    async def _userinfo(self, access_token: str) -> dict[str, Any]:
        try:
            response = await self.http.get(
                await self._endpoint("userinfo_endpoint", "/userinfo"),
                headers={"Authorization": f"Bearer {access_token}"},
            )
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse(f"userinfo unavailable ({type(exc).__name__})") from None
        if response.status_code != 200 or not isinstance(data, dict):
            raise _refuse(f"userinfo refused (HTTP {response.status_code})")
        return data

    async def _validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        faults = self.faults
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise _refuse("id_token is not a JWT") from None
        alg = header.get("alg")
        try:
            if alg == "none" and "accepts-alg-none" in faults:
                claims = jwt.decode(id_token, options={"verify_signature": False})
            elif alg != "RS256":
                raise _refuse(f"id_token alg {alg!r} is not accepted (RS256 only)")
            else:
                verify = "accepts-bad-id-token-signature" not in faults
                key = await self._signing_key(header.get("kid")) if verify else None
                claims = jwt.decode(
                    id_token,
                    key,
                    algorithms=["RS256"],
                    options={
                        "verify_signature": verify,
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                        "verify_iss": False,
                        "verify_aud": False,
                    },
                )
        except jwt.InvalidSignatureError:
            raise _refuse("id_token signature invalid") from None
        except jwt.PyJWTError as exc:
            raise _refuse(f"id_token invalid: {exc}") from None
        now = time.time()
        if "skips-issuer-check" not in faults and claims.get("iss") != self.issuer:
            raise _refuse(f"id_token iss {claims.get('iss')!r} is not the national issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if "skips-audience-check" not in faults:
            if self.client.client_id not in audiences:
                raise _refuse("id_token aud does not contain this province's client_id")
            if len(audiences) > 1 and claims.get("azp") != self.client.client_id:
                raise _refuse("id_token has several audiences and azp is not this province's client_id")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _refuse("id_token exp and iat are required numbers")
        if "accepts-expired-id-token" not in faults and exp + CLOCK_LEEWAY < now:
            raise _refuse("id_token expired")
        if "accepts-future-iat" not in faults and iat - CLOCK_LEEWAY > now:
            raise _refuse("id_token iat is in the future")
        if "skips-nonce-check" not in faults and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise _refuse("nonce mismatch")
        if not claims.get("sub"):
            raise _refuse("id_token has no sub")
        return claims

    async def logout(self, request: Request) -> Response:
        token, session = self.sessions.from_request(request)
        self.sessions.revoke(token)
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
