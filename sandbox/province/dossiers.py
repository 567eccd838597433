"""The dossier domain: MaHoSo allocation, the state transition rules, and the write operations.

The transition table is the contract's (``dossier.schema.json`` ``x-transitions``, read by
:mod:`haicap.dossier_states`); :func:`transition_refusal` is the one place that decides whether an action may
start from a dossier's state, and where the transition faults switch (a defect lifts a refusal or refuses an
allowed pair, nothing else).

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
from collections.abc import Callable, Collection
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from haicap.dossier_states import StateMachine, Transition, state_machine
from haicap.sandbox.group_commit import now_ms
from haicap.sandbox.province.outbox import OutboxPolicy, enqueue_change
from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.units import ReceivingUnit

__all__ = [
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
    "transition_refusal",
]

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

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


def _arrive(doc: dict[str, Any], target: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The dossier in ``target``: its state, the date that state sets, the history entry (in place)."""
    doc["TrangThaiHoSo"] = target
    date_field = _STATE_DATES.get(target)
    if date_field:
        doc[date_field] = entry["ThoiDiemXuLy"]
    doc["LichSu"].append(entry)
    return doc


def _move(
    conn: sqlite3.Connection, policy: OutboxPolicy, doc: dict[str, Any], target: str, entry: dict[str, Any]
) -> dict[str, Any]:
    _arrive(doc, target, entry)
    save_dossier(conn, doc)
    enqueue_change(conn, policy, doc, created=False, entry=entry)
    return doc


def op_officer_action(
    conn: sqlite3.Connection,
    policy: OutboxPolicy,
    ma_ho_so: str,
    action: dict[str, Any],
    *,
    faults: Collection[str] = (),
    enforce_transitions: bool = True,
) -> dict[str, Any]:
    """Move the dossier by an officer action, or raise the refusal (``enforce_transitions`` False: fault
    ``invalid-status-transition``, kept for callers that switch it directly)."""
    if not enforce_transitions:
        faults = {*faults, "invalid-status-transition"}
    doc = load_dossier(conn, ma_ho_so)
    name = action["action"]
    refusal = transition_refusal(doc, name, faults=faults)
    if refusal is not None:
        raise refusal
    if action.get("NgayHenTra"):
        doc["NgayHenTra"] = action["NgayHenTra"]
    if action.get("DanhSachGiayToKetQua"):  # the signed results of a completion (officer_api, signing.py)
        doc["DanhSachGiayToKetQua"] = action["DanhSachGiayToKetQua"]
    return _move(conn, policy, doc, _machine().transition(name).target, _officer_entry(doc, action))


def _officer_entry(doc: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    return history_entry(
        _machine().transition(action["action"]).target,
        NguoiXuLy=action.get("NguoiXuLy"),
        ChucDanh=action.get("ChucDanh"),
        PhongBanXuLy=action.get("PhongBanXuLy"),
        NoiDungXuLy=action.get("NoiDungXuLy"),
    )


def op_sync_refused_action(
    conn: sqlite3.Connection, policy: OutboxPolicy, ma_ho_so: str, action: dict[str, Any]
) -> None:
    """The defect of fault ``refused-action-still-synced``: the refused action's change is queued for the national
    portal although the dossier itself is left as it was."""
    doc = load_dossier(conn, ma_ho_so)
    entry = _officer_entry(doc, action)
    enqueue_change(conn, policy, _arrive(doc, entry["TrangThaiHoSo"], entry), created=False, entry=entry)


def _owned(doc: dict[str, Any], owner: str) -> None:
    if doc["DinhDanhCHS"][0]["SoDinhDanh"] != owner:
        raise Problem.field(404, "MaHoSo", f"no dossier {doc['MaHoSo']} for this citizen", "Dossier not found")


def op_supplement(
    conn: sqlite3.Connection, policy: OutboxPolicy, ma_ho_so: str, owner: str, body: dict[str, Any], *,
    faults: Collection[str] = (),
) -> dict[str, Any]:
    doc = load_dossier(conn, ma_ho_so)
    _owned(doc, owner)
    refusal = transition_refusal(doc, "supplement", faults=faults)
    if refusal is not None:
        raise refusal
    doc["TaiLieuNop"] = [*doc.get("TaiLieuNop", []), *body["TaiLieuNop"]]
    target = _machine().transition("supplement").target
    entry = history_entry(target, NguoiXuLy=doc["ChuHoSo"], NoiDungXuLy=body.get("GhiChu") or "Công dân bổ sung hồ sơ")
    return _move(conn, policy, doc, target, entry)


def op_withdraw(
    conn: sqlite3.Connection, policy: OutboxPolicy, ma_ho_so: str, owner: str, body: dict[str, Any], *,
    faults: Collection[str] = (),
) -> dict[str, Any]:
    doc = load_dossier(conn, ma_ho_so)
    _owned(doc, owner)
    refusal = transition_refusal(doc, "withdraw", faults=faults)
    if refusal is not None:
        raise refusal
    target = _machine().transition("withdraw").target
    entry = history_entry(target, NguoiXuLy=doc["ChuHoSo"], NoiDungXuLy=f"Công dân rút hồ sơ: {body['LyDo']}")
    return _move(conn, policy, doc, target, entry)


# -- the transition rule and its faults -------------------------------------------------------------
def _machine() -> StateMachine:
    return state_machine()


#: Faults that let a pair the table refuses go through: fault → (transition, current state) → lifted?
_LIFTS: dict[str, Callable[[Transition, str], bool]] = {
    "invalid-status-transition": lambda t, state: t.performer == "officer",
    "officer-actions-on-closed-dossiers": lambda t, state: t.performer == "officer"
    and state in _machine().terminal_states(),
    "withdraw-after-decision": lambda t, state: t.action == "withdraw" and state in {"9", "10"},
    "supplement-without-request": lambda t, state: t.action == "supplement"
    and _machine().transition("withdraw").starts_from(state),  # wherever the citizen can still withdraw
}
#: Faults that refuse a pair the table allows (a false rejection).
_BLOCKS: dict[str, Callable[[Transition, str], bool]] = {
    "withdraw-refused-while-waiting": lambda t, state: t.action == "withdraw" and state in {"5", "6"},
    "stop-only-while-processing": lambda t, state: t.action == "stop" and state != "4",
}


def _unmet(action: str, doc: dict[str, Any], faults: Collection[str]) -> list[str]:
    """The preconditions the dossier does not meet (judged by the contract's tests), as the faults distort them."""
    unmet = list(_machine().unmet(action, doc))
    if "processes-unpaid-dossier" in faults:
        unmet = [p for p in unmet if p != "fee-paid"]
    if ("refuses-process-after-payment" in faults and "fee-paid" in _machine().transition(action).requires(
            str(doc["TrangThaiHoSo"])) and int(doc.get("PhiPhaiNop") or 0) > 0 and "fee-paid" not in unmet):
        unmet.append("fee-paid")  # the paid flag is not consulted
    return unmet


def transition_refusal(doc: dict[str, Any], action: str, *, faults: Collection[str] = ()) -> Problem | None:
    """Why ``action`` may not start from the dossier's state (a 409 problem), or None when the contract's table
    and the preconditions of that state allow it."""
    machine = _machine()
    transition = machine.transition(action)
    current = str(doc["TrangThaiHoSo"])
    status = 400 if "transition-refused-with-400" in faults else machine.refusal_status
    field = "action" if transition.performer == "officer" else "MaHoSo"
    lifted = any(lift(transition, current) for fault, lift in _LIFTS.items() if fault in faults)
    blocked = any(block(transition, current) for fault, block in _BLOCKS.items() if fault in faults)
    if (not transition.starts_from(current) and not lifted) or blocked:
        return Problem(
            status, "Invalid transition",
            f"action {action!r} moves a dossier from state {'/'.join(transition.sources)} to {transition.target}; "
            f"{doc['MaHoSo']} is in state {current}",
            [{"field": field, "message": f"{action} is not allowed in state {current}"}],
        )
    if lifted and "invalid-status-transition" in faults:
        return None
    unmet = _unmet(action, doc, faults)
    if unmet:
        described = "; ".join(machine.preconditions[p].description if p in machine.preconditions else p for p in unmet)
        return Problem(
            status, "Precondition not met", f"{action} of {doc['MaHoSo']} in state {current} needs: {described}",
            [{"field": field, "message": f"precondition not met: {', '.join(unmet)}"}],
        )
    return None
