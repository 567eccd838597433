"""Citizen sessions and pending sign-ins, shared by every worker process of the province through SQLite.

The province may run as several processes accepting on one socket, so a citizen who signs in on one worker
sends the next request to another. Sessions therefore live in the ``sessions`` table (keyed by the SHA-256 of
the bearer token, never the token itself) and each process keeps a cache of the sessions it has seen, so a
request costs a dictionary lookup, not a query. A logout deletes the row, then bumps a revocation counter in a
small memory-mapped file (``sessions.gen`` next to the database); every process compares that counter with the
one it last saw before trusting its cache, and drops the cache when it moved. Since the counter moves after
the delete has committed and before the logout answers, no worker accepts a token after its logout returned.

Pending sign-ins (state, nonce, PKCE verifier) are rows too, consumed by ``DELETE ... RETURNING`` inside the
writer transaction: a callback finishes its sign-in on any worker, and exactly once.

Example::

    sessions = SessionStore(store)
    token, session = await sessions.issue("001099012345", "Nguyễn Văn A", id_token)
    sessions.get(token)          # the session, from any worker process
    await sessions.revoke(token)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import secrets
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.store import Store

__all__ = ["SESSION_TTL", "CitizenSession", "PendingLogin", "PendingLogins", "SessionStore"]

SESSION_TTL = 3600
#: expired rows are purged on every this many writes of a kind
_PURGE_EVERY = 1000


@dataclass(frozen=True, slots=True)
class CitizenSession:
    """A signed-in citizen. Identity comes from the national identity provider, never from a request body."""

    so_dinh_danh: str
    ho_va_ten: str
    id_token: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str = field(repr=False)
    created: float  # wall clock (time.time()): compared across processes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _Generation:
    """A 64-bit counter in a memory-mapped file shared by the worker processes (read: no system call)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < 8:
            os.ftruncate(self._fd, 8)  # zero-filled; a concurrent ftruncate to the same size changes nothing
        self._map = mmap.mmap(self._fd, 8)

    def value(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def bump(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # read-modify-write across processes
        try:
            self._map[:8] = (self.value() + 1).to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._map.close()
            os.close(self._fd)


class SessionStore:
    """Bearer session tokens → sessions (in the store, expiring; cached per process)."""

    def __init__(self, store: Store, max_cached: int = 200_000) -> None:
        self.store = store
        self._generation = _Generation(store.path.with_name(store.path.name + ".sessions.gen"))
        self._seen = self._generation.value()
        self._cache: OrderedDict[str, CitizenSession] = OrderedDict()
        self._max = max_cached
        self._issued = 0

    def close(self) -> None:
        self._generation.close()

    async def issue(self, so_dinh_danh: str, ho_va_ten: str, id_token: str) -> tuple[str, CitizenSession]:
        """A new session, committed before this returns (the next request may reach another worker)."""
        token = secrets.token_urlsafe(32)
        session = CitizenSession(so_dinh_danh, ho_va_ten, id_token, time.time() + SESSION_TTL)
        self._issued += 1
        purge = self._issued % _PURGE_EVERY == 0

        def op(conn: sqlite3.Connection) -> None:
            if purge:
                conn.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            conn.execute(
                "INSERT INTO sessions (token_hash, so_dinh_danh, ho_va_ten, id_token, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(token), so_dinh_danh, ho_va_ten, id_token, session.expires_at),
            )

        await self.store.write(op)
        self._remember(token, session)
        return token, session

    def _remember(self, token: str, session: CitizenSession) -> None:
        self._cache[token] = session
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def get(self, token: str) -> CitizenSession | None:
        generation = self._generation.value()
        if generation != self._seen:  # a logout happened somewhere: forget what may have been revoked
            self._cache.clear()
            self._seen = generation
        session = self._cache.get(token)
        if session is None:
            row = self.store.read_one(
                "SELECT so_dinh_danh, ho_va_ten, id_token, expires_at FROM sessions WHERE token_hash = ?",
                (_digest(token),),
            )
            if row is None:
                return None
            session = CitizenSession(*row)
            self._remember(token, session)
        if session.expires_at < time.time():
            self._cache.pop(token, None)
            return None
        return session

    async def revoke(self, token: str) -> CitizenSession | None:
        session = self.get(token)
        await self.store.write(
            lambda conn: conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),)).rowcount
        )
        self._cache.pop(token, None)
        self._generation.bump()  # after the commit: a worker that reloads now finds the row gone
        return session

    def from_request(self, request: Request) -> tuple[str, CitizenSession]:
        """The caller's (token, session), or a 401 problem."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        session = self.get(token) if token and scheme.lower() == "bearer" else None
        if session is None:
            raise Problem(
                401,
                "Unauthorized",
                "a valid citizen session is required (Authorization: Bearer <token from /auth/callback>)",
                headers={"WWW-Authenticate": 'Bearer realm="province"'},
            )
        return token, session


class PendingLogins:
    """Sign-ins between ``/auth/login`` and ``/auth/callback`` (state, nonce, PKCE verifier), in the store."""

    def __init__(self, store: Store, ttl: float, max_pending: int) -> None:
        self.store = store
        self.ttl = ttl
        self.max_pending = max_pending
        self._added = 0

    async def add(self) -> tuple[str, PendingLogin]:
        """A new pending sign-in and its id (the ``haicap_login`` cookie), committed before this returns."""
        login_id = secrets.token_urlsafe(24)
        pending = PendingLogin(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), time.time()
        )
        self._added += 1
        purge = self._added % _PURGE_EVERY == 0
        ttl, bound = self.ttl, self.max_pending

        def op(conn: sqlite3.Connection) -> None:
            if purge:
                conn.execute("DELETE FROM pending_logins WHERE created < ?", (time.time() - ttl,))
                conn.execute(
                    "DELETE FROM pending_logins WHERE id <= (SELECT max(id) FROM pending_logins) - ?", (bound,)
                )
            conn.execute(
                "INSERT INTO pending_logins (login_id, state, nonce, verifier, created) VALUES (?, ?, ?, ?, ?)",
                (login_id, pending.state, pending.nonce, pending.verifier, pending.created),
            )

        await self.store.write(op)
        return login_id, pending

    async def take(self, login_id: str | None, state: str) -> PendingLogin | None:
        """Consume the sign-in ``login_id`` (or, for a client without cookies, the one with this ``state``)."""

        def op(conn: sqlite3.Connection) -> tuple[str, str, str, float] | None:
            column, key = ("login_id", login_id) if login_id is not None else ("state", state)
            sql = f"DELETE FROM pending_logins WHERE {column} = ? RETURNING state, nonce, verifier, created"
            rows = conn.execute(sql, (key,)).fetchall()  # run to completion: every match is consumed
            return rows[0] if rows else None

        row = await self.store.write(op)
        if row is None:
            return None
        pending = PendingLogin(*row)
        if pending.created < time.time() - self.ttl:
            return None
        return pending
