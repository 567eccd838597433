"""The national sync receiver: session login, DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo.

It authenticates the province's sync account, validates every item on its own against the contract (the
compiled validators of ``sync.schema.json``, plus the one rule a schema cannot hold: MaXa must be a current
commune of the province the account belongs to), records the valid items and the status history with
receive times, and records the refused ones with their field violations. An item is acknowledged only after
the transaction holding it committed (see :mod:`.store`), which is what "synchronised" means to a checker.
It also counts the calls it refused while switched off (``outage_refusals``) and those carrying an unknown or
expired session (``session_refusals``): the evidence that a province retried through an outage, or kept calling
with a dead session instead of logging in again.

This is on the hot path of every province submission under load: validators are compiled once, JSON is
orjson, and the SQLite work happens in the store's writer thread, many calls per commit.

Sessions are rows of the store (``sync_sessions``), so a session opened on one worker of the counterpart is
honoured by every other; each worker caches the sessions it has read, and drops its cache when the generation in
:data:`~.shared_cells.SYNC_SESSIONS_CELL` changes (the control API expiring every session bumps it).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.sandbox.config import NationalConfig, SyncAccount
from haicap.sandbox.national.outage import Outages
from haicap.sandbox.national.shared_cells import SYNC_SESSIONS_CELL, SharedCells
from haicap.sandbox.national.store import Store, now_ms

__all__ = ["SESSION_TTL", "SyncReceiver"]

SESSION_TTL = 3600.0
_SCHEMA = "sync.schema.json#/$defs/"


@dataclass(slots=True)
class _Session:
    madonvi: str
    expires: float


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _errors(violations: list[Any], ma_ho_so: str | None = None, index: int | None = None) -> list[dict[str, Any]]:
    out = []
    for v in violations:
        entry: dict[str, Any] = {"field": v.field, "message": v.message}
        if ma_ho_so is not None:
            entry["MaHoSo"] = ma_ho_so
        if index is not None:
            entry["index"] = index
        out.append(entry)
    return out


class SyncReceiver:
    """Sessions, validation and recording of the sync API; :attr:`routes` are mounted by the app."""

    def __init__(self, config: NationalConfig, store: Store, outages: Outages, cells: SharedCells) -> None:
        registry = default_registry()
        self.store = store
        self.outages = outages
        self.accounts: dict[str, SyncAccount] = {a.username: a for a in config.sync_accounts}
        self.province_of: dict[str, str] = {p.agency_code: p.province_code for p in config.provinces}
        self._units = admin_units()
        self._login = registry.validator(_SCHEMA + "LoginRequest")
        self._envelope = registry.validator(_SCHEMA + "ServiceRequest")
        self._item = registry.validator(_SCHEMA + "DongBoHoSoMCItem")
        self._progress = registry.validator(_SCHEMA + "CapNhatTienDoHoSoMCItem")
        self._cells = cells
        self._sessions: dict[str, _Session] = {}  # this worker's cache of the store's sessions
        self._generation = cells.get_int(SYNC_SESSIONS_CELL)
        self.routes = [
            Route("/sync/login", self.login, methods=["POST"]),
            Route("/sync/service", self.service, methods=["POST"]),
        ]

    # -- control ---------------------------------------------------------------------------------
    async def expire_sessions(self) -> int:
        """Forget every session (the next call of each province answers -1 and it must log in again)."""
        count = await self.store.write(lambda conn: conn.execute("DELETE FROM sync_sessions").rowcount)
        self._cells.bump(SYNC_SESSIONS_CELL)  # after the commit: every worker drops its cache
        self._sessions.clear()
        return int(count)

    def _session(self, token: str) -> _Session | None:
        """The live session ``token`` names (this worker's cache, else the store), or None."""
        generation = self._cells.get_int(SYNC_SESSIONS_CELL)
        if generation != self._generation or len(self._sessions) > 10_000:
            self._sessions.clear()
            self._generation = generation
        session = self._sessions.get(token)
        if session is None:
            rows = self.store.read_now(lambda conn: conn.execute(
                "SELECT madonvi, expires FROM sync_sessions WHERE token = ?", (token,)).fetchall())
            if not rows:
                return None
            session = self._sessions[token] = _Session(*rows[0])
        if session.expires < time.time():
            del self._sessions[token]
            return None
        return session

    # -- helpers ---------------------------------------------------------------------------------
    def _outage(self) -> Response | None:
        if self.outages.is_down("sync"):
            return _answer(503, {"error_code": "-1", "message": "the national sync service is unavailable"},
                           {"Retry-After": str(self.outages.retry_after("sync"))})
        return None

    @staticmethod
    async def _parse(request: Request) -> tuple[Any, Response | None]:
        raw = await request.body()
        try:
            return orjson.loads(raw), None
        except orjson.JSONDecodeError as exc:
            return None, _answer(400, {"error_code": "-4", "message": "the body is not valid JSON",
                                       "errors": [{"field": "(body)", "message": str(exc)}]})

    # -- login -----------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        if (down := self._outage()) is not None:
            await self.store.write(lambda conn: _bump(conn, "outage_refusals", 1))
            return down
        body, bad = await self._parse(request)
        if bad is not None:
            return bad
        violations = self._login.violations(body)
        if violations:
            return _answer(400, {"error_code": "-4", "message": "invalid login request", "errors": _errors(violations)})
        account = self.accounts.get(body["username"])
        ok = (
            account is not None
            and secrets.compare_digest(body["password"].encode(), account.password.encode())
            and account.madonvi == body["madonvi"]
        )
        if not ok or account is None:
            await self.store.write(lambda conn: _bump(conn, "login_failures", 1))
            return _answer(401, {"error_code": "-1", "message": "wrong username, password or madonvi"})
        token = secrets.token_urlsafe(32)
        session = (token, account.madonvi, time.time() + SESSION_TTL)

        def open_session(conn: sqlite3.Connection) -> None:
            _bump(conn, "logins", 1)
            conn.execute("DELETE FROM sync_sessions WHERE expires < ?", (time.time(),))
            conn.execute("INSERT INTO sync_sessions (token, madonvi, expires) VALUES (?, ?, ?)", session)

        await self.store.write(open_session)
        return _answer(200, {"error_code": "0", "message": "login successful", "session": token,
                             "expires_in": int(SESSION_TTL)})

    # -- service ---------------------------------------------------------------------------------
    async def service(self, request: Request) -> Response:
        if (down := self._outage()) is not None:
            await self.store.write(lambda conn: _bump(conn, "outage_refusals", 1))
            return down
        body, bad = await self._parse(request)
        if bad is not None:
            return bad
        violations = self._envelope.violations(body)
        if violations:
            return _answer(400, {"error_code": "-4", "message": "invalid service request",
                                 "errors": _errors(violations)})
        session = self._session(body["session"])
        if session is None:
            await self.store.write(lambda conn: _bump(conn, "session_refusals", 1))
            return _answer(401, {"error_code": "-1", "message": "session unknown or expired: log in again"})
        if session.madonvi != body["madonvi"]:
            return _answer(401, {"error_code": "-1", "message": "the session belongs to another madonvi"})
        service = body["service"]
        if service == "DongBoHoSoMC":
            return await self._dong_bo(body)
        if service == "CapNhatTienDoHoSoMC":
            return await self._tien_do(body)
        return await self._tra_cuu(body)

    def _check_item(self, item: Any, madonvi: str, index: int) -> list[dict[str, Any]]:
        ma_ho_so = item.get("MaHoSo") if isinstance(item, dict) else None
        ma_ho_so = ma_ho_so if isinstance(ma_ho_so, str) else None
        errors = _errors(self._item.violations(item), ma_ho_so, index)
        if not errors:
            province = self.province_of.get(madonvi)
            if not self._units.is_current_commune(item["MaXa"], province):
                where = f"of province {province}" if province else ""
                errors.append({"MaHoSo": ma_ho_so, "index": index, "field": "MaXa",
                               "message": f"{item['MaXa']!r} is not a current commune code {where} "
                                          "(Decision 19/2025/QĐ-TTg)".replace("  ", " ")})
        return errors

    async def _dong_bo(self, body: dict[str, Any]) -> Response:
        madonvi = body["madonvi"]
        creating = body["isUpdating"] == "False"
        good: list[tuple[str, str, str, bytes]] = []
        refused: list[tuple[str | None, bytes, bytes]] = []
        all_errors: list[dict[str, Any]] = []
        for index, item in enumerate(body["data"]):
            errors = self._check_item(item, madonvi, index)
            if errors:
                all_errors.extend(errors)
                refused.append((errors[0].get("MaHoSo"), orjson.dumps(errors), orjson.dumps(item)))
            else:
                good.append((item["MaHoSo"], item["TrangThaiHoSo"], item["MaXa"], orjson.dumps(item)))
        received = now_ms()
        flag = body["isUpdating"]

        def record(conn: sqlite3.Connection) -> list[str]:
            duplicates: list[str] = []
            for ma_ho_so, status, ma_xa, blob in good:
                if creating:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO sync_dossiers (MaHoSo, madonvi, TrangThaiHoSo, MaXa, first_ms, "
                        "last_ms, item) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (ma_ho_so, madonvi, status, ma_xa, received, received, blob))
                    if cur.rowcount == 0:
                        duplicates.append(ma_ho_so)
                        continue
                else:
                    conn.execute(
                        "INSERT INTO sync_dossiers (MaHoSo, madonvi, TrangThaiHoSo, MaXa, first_ms, last_ms, item) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (MaHoSo) DO UPDATE SET madonvi = excluded.madonvi, "
                        "TrangThaiHoSo = excluded.TrangThaiHoSo, MaXa = excluded.MaXa, last_ms = excluded.last_ms, "
                        "item = excluded.item",
                        (ma_ho_so, madonvi, status, ma_xa, received, received, blob))
                conn.execute(
                    "INSERT INTO sync_items (MaHoSo, madonvi, received_ms, isUpdating, TrangThaiHoSo) "
                    "VALUES (?, ?, ?, ?, ?)", (ma_ho_so, madonvi, received, flag, status))
            if refused:
                conn.executemany(
                    "INSERT INTO sync_rejections (received_ms, service, madonvi, MaHoSo, errors, item) "
                    "VALUES (?, 'DongBoHoSoMC', ?, ?, ?, ?)",
                    [(received, madonvi, m, e, i) for m, e, i in refused])
            if duplicates:
                _bump(conn, "duplicates", len(duplicates))
            return duplicates

        duplicates = await self.store.write(record) if (good or refused) else []
        accepted = len(good) - len(duplicates)
        answer: dict[str, Any] = {"accepted": accepted}
        if duplicates:
            answer["duplicates"] = duplicates
        if all_errors:
            answer.update(error_code="-2", message=f"{len(refused)} item(s) refused, {accepted} recorded",
                          errors=all_errors)
        elif duplicates:
            answer.update(error_code="3", message=f"{len(duplicates)} dossier(s) already exist")
        else:
            answer.update(error_code="0", message=f"{accepted} item(s) recorded")
        return _answer(200, answer)

    async def _tien_do(self, body: dict[str, Any]) -> Response:
        madonvi = body["madonvi"]
        good: list[tuple[str, bytes]] = []
        refused: list[tuple[str | None, bytes, bytes]] = []
        all_errors: list[dict[str, Any]] = []
        for index, item in enumerate(body["data"]):
            ma_ho_so = item.get("MaHoSo") if isinstance(item, dict) else None
            ma_ho_so = ma_ho_so if isinstance(ma_ho_so, str) else None
            errors = _errors(self._progress.violations(item), ma_ho_so, index)
            if errors:
                all_errors.extend(errors)
                refused.append((ma_ho_so, orjson.dumps(errors), orjson.dumps(item)))
            else:
                good.append((item["MaHoSo"], orjson.dumps(item)))
        received = now_ms()

        def record(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO sync_progress (MaHoSo, madonvi, received_ms, item) VALUES (?, ?, ?, ?)",
                             [(m, madonvi, received, blob) for m, blob in good])
            conn.executemany(
                "INSERT INTO sync_rejections (received_ms, service, madonvi, MaHoSo, errors, item) "
                "VALUES (?, 'CapNhatTienDoHoSoMC', ?, ?, ?, ?)", [(received, madonvi, m, e, i) for m, e, i in refused])

        await self.store.write(record)
        if all_errors:
            return _answer(200, {"error_code": "-2", "message": f"{len(refused)} item(s) refused, {len(good)} recorded",
                                 "accepted": len(good), "errors": all_errors})
        return _answer(200, {"error_code": "0", "message": f"{len(good)} item(s) recorded", "accepted": len(good)})

    async def _tra_cuu(self, body: dict[str, Any]) -> Response:
        ma_ho_so = body["MaHoSo"]
        row = await self.store.read(lambda conn: conn.execute(
            "SELECT item FROM sync_dossiers WHERE MaHoSo = ?", (ma_ho_so,)).fetchone())
        if row is None:
            return _answer(200, {"error_code": "-5", "message": f"dossier {ma_ho_so} not found", "result": []})
        return _answer(200, {"error_code": "0", "message": "found", "result": [orjson.loads(row[0])]})


def _bump(conn: sqlite3.Connection, name: str, by: int) -> None:
    conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, by))
