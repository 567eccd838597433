"""The read API over everything the counterpart recorded (haicap extension, control token required).

Checks and the post-surge integrity count read the counterpart's view here: the latest item of every synced
dossier with its status history and receive times, refused items with their violations, counters, payment
transactions with each callback sent and the province's answer, forwarded dossiers, identity-provider
events, and the identity the provider gives each test citizen. Nothing secret is stored, so nothing secret can be
returned: no client secrets, passwords, sessions, codes or tokens (ID-token events carry the defect applied, never
the token).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.sandbox.national.citizens import CitizenRegistry
from haicap.sandbox.national.problems import JSONResponse, ProblemError, query_int
from haicap.sandbox.national.store import Store

__all__ = ["LedgerApi"]


def _page(request: Request) -> tuple[int, int]:
    return query_int(request, "limit", 1000, 1, 10_000), query_int(request, "offset", 0, 0, 10**12)


def _json(blob: bytes | None) -> Any:
    return None if blob is None else orjson.loads(blob)


def _where(filters: dict[str, str | None]) -> tuple[str, list[Any]]:
    parts = [f"{column} = ?" for column, value in filters.items() if value]
    args = [value for value in filters.values() if value]
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


class LedgerApi:
    """Read-only views; :attr:`routes` are mounted by the app behind the control token."""

    def __init__(self, store: Store, citizens: CitizenRegistry) -> None:
        self.store = store
        self.citizens = citizens
        self.routes = [
            Route("/_ledger/sync/dossiers", self.dossiers, methods=["GET"]),
            Route("/_ledger/sync/dossiers/{MaHoSo}", self.dossier, methods=["GET"]),
            Route("/_ledger/sync/rejections", self.rejections, methods=["GET"]),
            Route("/_ledger/sync/stats", self.stats, methods=["GET"]),
            Route("/_ledger/payments", self.payments, methods=["GET"]),
            Route("/_ledger/payments/{MaThamChieu}", self.payment, methods=["GET"]),
            Route("/_ledger/forwarded", self.forwarded, methods=["GET"]),
            Route("/_ledger/idp/events", self.idp_events, methods=["GET"]),
            Route("/_ledger/idp/citizens/{SoDinhDanh}", self.idp_citizen, methods=["GET"]),
        ]

    # -- sync ------------------------------------------------------------------------------------
    async def dossiers(self, request: Request) -> Response:
        limit, offset = _page(request)
        where, args = _where({"madonvi": request.query_params.get("madonvi")})

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            total = conn.execute(f"SELECT COUNT(*) FROM sync_dossiers{where}", args).fetchone()[0]
            rows = conn.execute(
                "SELECT MaHoSo, madonvi, TrangThaiHoSo, first_ms, last_ms, item FROM sync_dossiers"
                f"{where} ORDER BY MaHoSo LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
            return {"total": total, "items": [_dossier_row(r) for r in rows]}

        return JSONResponse(await self.store.read(query))

    async def dossier(self, request: Request) -> Response:
        ma_ho_so = request.path_params["MaHoSo"]

        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT MaHoSo, madonvi, TrangThaiHoSo, first_ms, last_ms, item FROM sync_dossiers "
                               "WHERE MaHoSo = ?", (ma_ho_so,)).fetchone()
            progress = conn.execute("SELECT received_ms, item FROM sync_progress WHERE MaHoSo = ? ORDER BY id",
                                    (ma_ho_so,)).fetchall()
            if row is None and not progress:
                return None
            history = conn.execute("SELECT received_ms, TrangThaiHoSo, isUpdating FROM sync_items WHERE MaHoSo = ? "
                                   "ORDER BY id", (ma_ho_so,)).fetchall()
            out: dict[str, Any] = _dossier_row(row) if row else {"MaHoSo": ma_ho_so, "madonvi": None, "item": None}
            out["history"] = [{"received_ms": h[0], "TrangThaiHoSo": h[1], "isUpdating": h[2]} for h in history]
            out["progress"] = [{"received_ms": p[0], "item": _json(p[1])} for p in progress]
            return out

        found = await self.store.read(query)
        if found is None:
            raise ProblemError(404, "Not Found", f"no dossier {ma_ho_so} was synchronised",
                               [{"field": "MaHoSo", "message": "unknown"}])
        return JSONResponse(found)

    async def rejections(self, request: Request) -> Response:
        limit, offset = _page(request)
        where, args = _where({"madonvi": request.query_params.get("madonvi"),
                              "service": request.query_params.get("service")})

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            total = conn.execute(f"SELECT COUNT(*) FROM sync_rejections{where}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT received_ms, service, madonvi, MaHoSo, errors, item FROM sync_rejections{where} "
                "ORDER BY id LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
            items = [{"received_ms": r[0], "service": r[1], "madonvi": r[2], "MaHoSo": r[3], "errors": _json(r[4]),
                      "item": _json(r[5])} for r in rows]
            return {"total": total, "items": items}

        return JSONResponse(await self.store.read(query))

    async def stats(self, request: Request) -> Response:
        madonvi = request.query_params.get("madonvi")
        where, args = _where({"madonvi": madonvi})

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            def count(sql: str) -> int:
                return int(conn.execute(sql + where, args).fetchone()[0])

            counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            return {
                "dossiers": count("SELECT COUNT(*) FROM sync_dossiers"),
                "items": count("SELECT COUNT(*) FROM sync_items"),
                "progress": count("SELECT COUNT(*) FROM sync_progress"),
                "rejections": count("SELECT COUNT(*) FROM sync_rejections"),
                "communes": count("SELECT COUNT(DISTINCT MaXa) FROM sync_dossiers"),
                "duplicates": int(counters.get("duplicates", 0)),
                "logins": int(counters.get("logins", 0)),
                "login_failures": int(counters.get("login_failures", 0)),
                "outage_refusals": int(counters.get("outage_refusals", 0)),
                "session_refusals": int(counters.get("session_refusals", 0)),
            }

        return JSONResponse(await self.store.read(query))

    # -- payments --------------------------------------------------------------------------------
    async def payments(self, request: Request) -> Response:
        limit, offset = _page(request)

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            total = conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
            rows = conn.execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments ORDER BY init_ms LIMIT ? OFFSET ?",
                                (limit, offset)).fetchall()
            return {"total": total, "items": [_payment_row(r) for r in rows]}

        return JSONResponse(await self.store.read(query))

    async def payment(self, request: Request) -> Response:
        ref = request.path_params["MaThamChieu"]

        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE MaThamChieu = ? "
                               "ORDER BY init_ms DESC LIMIT 1", (ref,)).fetchone()
            if row is None:
                return None
            out = _payment_row(row)
            callbacks = conn.execute(
                "SELECT at_ms, kind, callback, status_code, answer, error, elapsed_ms FROM payment_callbacks "
                "WHERE MaDoiTac = ? AND MaThamChieu = ? ORDER BY id", (out["MaDoiTac"], ref)).fetchall()
            out["callbacks"] = [{"at_ms": c[0], "kind": c[1], "callback": _json(c[2]), "status_code": c[3],
                                 "answer": _json(c[4]), "error": c[5], "elapsed_ms": c[6]} for c in callbacks]
            return out

        found = await self.store.read(query)
        if found is None:
            raise ProblemError(404, "Not Found", f"no transaction {ref}", [{"field": "MaThamChieu",
                                                                            "message": "unknown"}])
        return JSONResponse(found)

    # -- forwarding and identity -----------------------------------------------------------------
    async def forwarded(self, request: Request) -> Response:
        limit, offset = _page(request)

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            total = conn.execute("SELECT COUNT(*) FROM forwarded").fetchone()[0]
            rows = conn.execute("SELECT at_ms, province_code, MaHoSo, url, dossier, status_code, answer, error "
                                "FROM forwarded ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            items = [{"at_ms": r[0], "province_code": r[1], "MaHoSo": r[2], "url": r[3], "dossier": _json(r[4]),
                      "status_code": r[5], "answer": _json(r[6]), "error": r[7]} for r in rows]
            return {"total": total, "items": items}

        return JSONResponse(await self.store.read(query))

    async def idp_events(self, request: Request) -> Response:
        limit, offset = _page(request)
        where, args = _where({"kind": request.query_params.get("kind")})

        def query(conn: sqlite3.Connection) -> dict[str, Any]:
            total = conn.execute(f"SELECT COUNT(*) FROM idp_events{where}", args).fetchone()[0]
            rows = conn.execute(f"SELECT at_ms, kind, outcome, client_id, SoDinhDanh, defect, detail FROM idp_events"
                                f"{where} ORDER BY id LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
            items = [{"at_ms": r[0], "kind": r[1], "outcome": r[2], "client_id": r[3], "SoDinhDanh": r[4],
                      "defect": r[5], "detail": r[6]} for r in rows]
            return {"total": total, "items": items}

        return JSONResponse(await self.store.read(query))

    async def idp_citizen(self, request: Request) -> Response:
        cccd = request.path_params["SoDinhDanh"]
        citizen = self.citizens.get(cccd)
        if citizen is None:
            raise ProblemError(404, "Not Found", f"{cccd!r} is not a valid CCCD, so no test citizen has it",
                               [{"field": "SoDinhDanh", "message": "12 digits: birth-province code, gender/century "
                                 "digit, birth-year digits, serial"}])
        return JSONResponse(citizen.claims())


_PAYMENT_COLUMNS = "MaDoiTac, MaThamChieu, SoTien, MaHoSo, TrangThaiGD, MaGiaoDich, init_ms, settled_ms, queries, init"


def _payment_row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"MaDoiTac": r[0], "MaThamChieu": r[1], "SoTien": r[2], "MaHoSo": r[3], "TrangThaiGD": r[4],
            "MaGiaoDich": r[5], "init_ms": r[6], "settled_ms": r[7], "queries": r[8], "init": _json(r[9])}


def _dossier_row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"MaHoSo": r[0], "madonvi": r[1], "TrangThaiHoSo": r[2], "first_received_ms": r[3],
            "last_received_ms": r[4], "item": _json(r[5])}
