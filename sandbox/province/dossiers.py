"""The dossier domain: MaHoSo allocation, the state transition table, and the write operations.

Every function named ``op_*`` runs inside the store's writer transaction (``store.write(lambda conn:
op_x(conn, ...))``): it reads the dossier, applies one change, writes it back and queues the change in the
outbox in the same transaction, so a change is durable and synced, or neither.

MaHoSo is ``{agency code of the receiving commune}-{yyMMdd}-{4-digit sequence}`` with the day in
Asia/Ho_Chi_Minh; the sequence is allocated inside the transaction, so it is unique under any concurrency.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from haicap.sandbox.group_commit import now_ms
from haicap.sandbox.province.outbox import OutboxPolicy, enqueue_change
from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.units import ReceivingUnit

__all__ = [
    "CITIZEN_WITHDRAWABLE",
    "TRANSITIONS",
    "VN_TZ",
    "allocate_sequence",
    "clock_strings",
    "day_code",
    "format_ma_ho_so",
    "load_dossier",
    "new_dossier",
    "op_create",
    "op_officer_action",
    "op_supplement",
    "op_withdraw",
    "save_dossier",
    "thoi_gian",
]

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

#: action → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "receive": (frozenset({"1"}), "2"),
    "reject": (frozenset({"1"}), "3"),
    "process": (frozenset({"2", "6"}), "4"),
    "request-supplement": (frozenset({"2", "4"}), "5"),
    "request-payment": (frozenset({"2", "4"}), "6"),
    "stop": (frozenset({"2", "4", "5", "6"}), "8"),
    "complete": (frozenset({"4"}), "9"),
    "return-result": (frozenset({"9"}), "10"),
}
CITIZEN_WITHDRAWABLE = frozenset({"1", "2", "4", "5", "6"})
SUPPLEMENTABLE = frozenset({"5"})
#: the date field an arrival in a state sets
_STATE_DATES = {"2": "NgayTiepNhan", "3": "NgayTuChoi", "9": "NgayKetThucXuLy", "10": "NgayTra"}
MAX_SEQUENCE = 9999


def now_vn() -> datetime:
    return datetime.now(VN_TZ)


@functools.lru_cache(maxsize=8)
def clock_strings(second: int, days: int = 0) -> tuple[str, str]:
    """(yyyyMMddHHmmss, yyMMdd) of the Unix ``second`` plus ``days``, in Asia/Ho_Chi_Minh.

    Cached: under load every request of one second asks for the same strings (strftime once per second).
    """
    moment = datetime.fromtimestamp(second, VN_TZ) + timedelta(days=days)
    return moment.strftime("%Y%m%d%H%M%S"), moment.strftime("%y%m%d")


def thoi_gian(moment: datetime | None = None) -> str:
    """yyyyMMddHHmmss in Asia/Ho_Chi_Minh (now by default)."""
    if moment is None:
        return clock_strings(int(time.time()))[0]
    return moment.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def day_code(moment: datetime | None = None) -> str:
    """yyMMdd in Asia/Ho_Chi_Minh (today by default)."""
    if moment is None:
        return clock_strings(int(time.time()))[1]
    return moment.astimezone(VN_TZ).strftime("%y%m%d")


def format_ma_ho_so(agency: str, day: str, sequence: int) -> str:
    return f"{agency}-{day}-{sequence:04d}"


def format_ma_ho_so_home_made(agency: str, day: str, sequence: int) -> str:
    """The defect of fault ``bad-mahoso-format``: ``H26-20261122-1`` (H-group, yyyyMMdd, unpadded sequence)."""
    return f"{agency.rsplit('.', 1)[-1]}-20{day}-{sequence}"


def allocate_sequence(conn: sqlite3.Connection, agency: str, day: str) -> int:
    """The next sequence of ``agency`` on ``day`` (inside the writer transaction: unique)."""
    row = conn.execute(
        "INSERT INTO sequences (agency, day, last) VALUES (?, ?, 1) "
        "ON CONFLICT (agency, day) DO UPDATE SET last = last + 1 RETURNING last",
        (agency, day),
    ).fetchone()
    sequence = int(row[0])
    if sequence > MAX_SEQUENCE:
        raise Problem(503, "Daily capacity reached", f"{agency} has received {MAX_SEQUENCE} dossiers today")
    return sequence


def peek_sequence(conn: sqlite3.Connection, agency: str, day: str) -> int:
    """The next sequence as a plain read would see it (used by fault ``duplicate-mahoso``)."""
    row = conn.execute("SELECT last FROM sequences WHERE agency = ? AND day = ?", (agency, day)).fetchone()
    return (int(row[0]) if row else 0) + 1


def load_dossier(conn: sqlite3.Connection, ma_ho_so: str) -> dict[str, Any]:
    row = conn.execute("SELECT doc FROM dossiers WHERE ma_ho_so = ?", (ma_ho_so,)).fetchone()
    if row is None:
        raise Problem.field(404, "MaHoSo", f"no dossier {ma_ho_so}", "Dossier not found")
    doc: dict[str, Any] = orjson.loads(row[0])
    return doc


def save_dossier(conn: sqlite3.Connection, doc: dict[str, Any], *, insert: bool = False, replace: bool = False) -> None:
    owner = doc["DinhDanhCHS"][0]["SoDinhDanh"]
    ts = now_ms()
    blob = orjson.dumps(doc)
    if insert:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        conn.execute(
            f"{verb} INTO dossiers (ma_ho_so, owner, ma_xa, status, doc, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc["MaHoSo"], owner, doc["MaXa"], doc["TrangThaiHoSo"], blob, ts, ts),
        )
    else:
        conn.execute(
            "UPDATE dossiers SET status = ?, doc = ?, updated_ms = ? WHERE ma_ho_so = ?",
            (doc["TrangThaiHoSo"], blob, ts, doc["MaHoSo"]),
        )


def new_dossier(body: dict[str, Any], procedure: dict[str, Any], unit: ReceivingUnit, *, fees: list[Any] | None,
                fee: int, **own: Any) -> dict[str, Any]:
    """A dossier in state 1: the fields a citizen's submission and a dossier forwarded by the national portal take
    alike from the request, the procedure catalogue and the receiving commune; ``own`` holds what differs (owner,
    dates, where it was filed, history). Fields whose value is None are left out."""
    doc: dict[str, Any] = {
        "MaTTHC": body["MaTTHC"],
        "MaLinhVuc": procedure.get("MaLinhVuc"),
        "TenLinhVuc": procedure.get("TenLinhVuc"),
        "MaXa": unit.code,
        "MaCoQuan": unit.agency_code,
        "DonViXuLy": f"UBND {unit.name}",
        "SoDienThoai": body.get("SoDienThoai"),
        "Email": body.get("Email"),
        "TrichYeuHoSo": body["TrichYeuHoSo"],
        "KenhThucHien": body.get("KenhThucHien") or "2",
        "LoaiDoiTuong": body.get("LoaiDoiTuong") or procedure.get("LoaiDoiTuong") or "1",
        "TrangThaiHoSo": "1",
        "TaiLieuNop": body.get("TaiLieuNop") or [],
        "DanhSachLePhi": fees or [],
        "PhiPhaiNop": fee,
        "DaThanhToan": False,
        "SoTienDaThanhToan": 0,
        "DuocThanhToanTrucTuyen": "0" if fee else "2",
        **own,
    }
    return {k: v for k, v in doc.items() if v is not None}


def history_entry(status: str, **fields: Any) -> dict[str, Any]:
    entry = {"TrangThaiHoSo": status, "ThoiDiemXuLy": thoi_gian()}
    entry.update({k: v for k, v in fields.items() if v})
    return entry


def op_create(
    conn: sqlite3.Connection,
    policy: OutboxPolicy,
    doc: dict[str, Any],
    agency: str,
    day: str,
    *,
    sequence: int | None = None,
    formatter: Callable[[str, str, int], str] = format_ma_ho_so,
) -> dict[str, Any]:
    """Insert a new dossier (state 1) with a fresh MaHoSo, and queue its creation for sync.

    ``sequence`` given means it was allocated outside the transaction (fault ``duplicate-mahoso``):
    the insert then overwrites whatever holds that MaHoSo, as a non-unique key would.
    """
    racy = sequence is not None
    if sequence is None:
        sequence = allocate_sequence(conn, agency, day)
    else:
        conn.execute(
            "INSERT INTO sequences (agency, day, last) VALUES (?, ?, ?) "
            "ON CONFLICT (agency, day) DO UPDATE SET last = max(last, excluded.last)",
            (agency, day, sequence),
        )
    doc = {**doc, "MaHoSo": formatter(agency, day, sequence)}
    doc["SoBienNhan"] = doc["MaHoSo"]
    entry = doc["LichSu"][-1]
    save_dossier(conn, doc, insert=True, replace=racy)
    enqueue_change(conn, policy, doc, created=True, entry=entry)
    return doc


def insert_existing(conn: sqlite3.Connection, policy: OutboxPolicy, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Insert a dossier whose MaHoSo was assigned elsewhere (forwarded); (stored doc, created?)."""
    row = conn.execute("SELECT doc FROM dossiers WHERE ma_ho_so = ?", (doc["MaHoSo"],)).fetchone()
    if row is not None:
        return orjson.loads(row[0]), False
    save_dossier(conn, doc, insert=True)
    enqueue_change(conn, policy, doc, created=True, entry=doc["LichSu"][-1])
    return doc, True


def _move(
    conn: sqlite3.Connection, policy: OutboxPolicy, doc: dict[str, Any], target: str, entry: dict[str, Any]
) -> dict[str, Any]:
    doc["TrangThaiHoSo"] = target
    date_field = _STATE_DATES.get(target)
    if date_field:
        doc[date_field] = entry["ThoiDiemXuLy"]
    doc["LichSu"].append(entry)
    save_dossier(conn, doc)
    enqueue_change(conn, policy, doc, created=False, entry=entry)
    return doc


def op_officer_action(
    conn: sqlite3.Connection,
    policy: OutboxPolicy,
    ma_ho_so: str,
    action: dict[str, Any],
    *,
    enforce_transitions: bool = True,
) -> dict[str, Any]:
    doc = load_dossier(conn, ma_ho_so)
    name = action["action"]
    sources, target = TRANSITIONS[name]
    current = doc["TrangThaiHoSo"]
    if enforce_transitions:
        if current not in sources:
            raise Problem(
                409,
                "Invalid transition",
                f"action {name!r} moves a dossier from state {'/'.join(sorted(sources, key=int))} to {target}; "
                f"{ma_ho_so} is in state {current}",
                [{"field": "action", "message": f"not allowed in state {current}"}],
            )
        if name == "process" and current == "6" and not doc["DaThanhToan"] and doc["PhiPhaiNop"] > 0:
            raise Problem(
                409, "Fee not paid", f"{ma_ho_so} waits for its fee of {doc['PhiPhaiNop']} VND",
                [{"field": "action", "message": "the fee is not paid yet"}],
            )
    if action.get("NgayHenTra"):
        doc["NgayHenTra"] = action["NgayHenTra"]
    entry = history_entry(
        target,
        NguoiXuLy=action.get("NguoiXuLy"),
        ChucDanh=action.get("ChucDanh"),
        PhongBanXuLy=action.get("PhongBanXuLy"),
        NoiDungXuLy=action.get("NoiDungXuLy"),
    )
    return _move(conn, policy, doc, target, entry)


def _owned(doc: dict[str, Any], owner: str) -> None:
    if doc["DinhDanhCHS"][0]["SoDinhDanh"] != owner:
        raise Problem.field(404, "MaHoSo", f"no dossier {doc['MaHoSo']} for this citizen", "Dossier not found")


def op_supplement(
    conn: sqlite3.Connection, policy: OutboxPolicy, ma_ho_so: str, owner: str, body: dict[str, Any]
) -> dict[str, Any]:
    doc = load_dossier(conn, ma_ho_so)
    _owned(doc, owner)
    if doc["TrangThaiHoSo"] not in SUPPLEMENTABLE:
        raise Problem(
            409, "Invalid transition", f"{ma_ho_so} is in state {doc['TrangThaiHoSo']}: no supplement was requested",
            [{"field": "MaHoSo", "message": "no supplement requested"}],
        )
    doc["TaiLieuNop"] = [*doc.get("TaiLieuNop", []), *body["TaiLieuNop"]]
    entry = history_entry("4", NguoiXuLy=doc["ChuHoSo"], NoiDungXuLy=body.get("GhiChu") or "Công dân bổ sung hồ sơ")
    return _move(conn, policy, doc, "4", entry)


def op_withdraw(
    conn: sqlite3.Connection, policy: OutboxPolicy, ma_ho_so: str, owner: str, body: dict[str, Any]
) -> dict[str, Any]:
    doc = load_dossier(conn, ma_ho_so)
    _owned(doc, owner)
    if doc["TrangThaiHoSo"] not in CITIZEN_WITHDRAWABLE:
        raise Problem(
            409, "Invalid transition", f"{ma_ho_so} is in state {doc['TrangThaiHoSo']} and can no longer be withdrawn",
            [{"field": "MaHoSo", "message": "cannot be withdrawn in this state"}],
        )
    entry = history_entry("7", NguoiXuLy=doc["ChuHoSo"], NoiDungXuLy=f"Công dân rút hồ sơ: {body['LyDo']}")
    return _move(conn, policy, doc, "7", entry)
