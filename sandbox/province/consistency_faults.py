"""The defects of the consistency faults, kept apart so the correct code carries a one-line switch each.

Each function below is what the reference province does *instead of* the correct step when its fault is on;
the call sites (``dossier_api``, ``forwarded``, ``payments``, ``officer_api``, ``catalogue``, ``sync_items``)
decide with ``ctx.has(fault)`` where the correct code decides. They reproduce defects seen in real systems:
a check-then-act race across an ``await`` (concurrent forwards, callbacks, officer actions), a catalogue import
that fills an empty fee with a default charge, a form that insists on optional contact fields, a promised date
counted with the wrong sign.

Example::

    if ctx.has("duplicate-on-concurrent-forward"):
        stored, created = await racy_insert(ctx, doc)
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from haicap.dossier_states import state_machine
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext
from haicap.sandbox.province.outbox import enqueue_change
from haicap.sandbox.province.problems import Problem

__all__ = [
    "DEFAULT_CHARGE",
    "RACE_WINDOW",
    "charge_free_procedures",
    "contact_fields_required",
    "promise_days",
    "racy_insert",
    "stale_callback_faults",
    "stale_transition_check",
]

#: the window of the check-then-act races: the slow step between the check and the write (seconds)
RACE_WINDOW = 0.05
#: ``wrong-fee-for-free-procedure``: the charge a catalogue import puts on a procedure whose fee is empty (VND)
DEFAULT_CHARGE = 20000
#: ``requires-optional-fields``: what the faulty form insists on (optional in DossierSubmission)
_CONTACT_FIELDS = ("SoDienThoai", "Email")


def charge_free_procedures(procedures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``wrong-fee-for-free-procedure``: a free procedure (PhiPhaiNop 0) gets the default online charge."""
    out = []
    for procedure in procedures:
        if not procedure.get("PhiPhaiNop"):
            fee = {"TenPhiLePhi": "Lệ phí giải quyết thủ tục (mặc định)", "MaPhiLePhi": "LPMD", "HinhThucThu": "2",
                   "Gia": DEFAULT_CHARGE, "LoaiPhiLePhi": "2"}
            procedure = {**procedure, "PhiPhaiNop": DEFAULT_CHARGE, "DanhSachLePhi": [fee]}
        out.append(procedure)
    return out


def contact_fields_required(body: dict[str, Any]) -> None:
    """``requires-optional-fields``: refuse a submission without the (optional) contact fields."""
    missing = [name for name in _CONTACT_FIELDS if not body.get(name)]
    if missing:
        raise Problem(422, "Invalid request", f"{', '.join(missing)} required to notify the applicant",
                      [{"field": name, "message": "required"} for name in missing])


def promise_days(days: int) -> int:
    """``hen-tra-before-tiep-nhan``: the processing time counted back from the receipt instead of forward."""
    return -days


async def racy_insert(ctx: ProvinceContext, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``duplicate-on-concurrent-forward``: "already received?" is asked outside the writer transaction, then the
    attachments are fetched, then the dossier is written as new: two concurrent deliveries both create it."""
    row = ctx.store.read_one("SELECT doc FROM dossiers WHERE ma_ho_so = ?", (doc["MaHoSo"],))
    if row is not None:
        return orjson.loads(row[0]), False
    await asyncio.sleep(RACE_WINDOW)  # e.g. fetching the attachments from the national portal
    policy = ctx.policy

    def write(conn: Any) -> dict[str, Any]:
        d.save_dossier(conn, doc, insert=True, replace=True)
        enqueue_change(conn, policy, doc, created=True, entry=doc["LichSu"][-1])
        return doc

    return await ctx.store.write(write), True


async def stale_callback_faults(ctx: ProvinceContext, ref: Any, faults: frozenset[str]) -> frozenset[str]:
    """``double-effect-on-concurrent-callback``: the "already processed?" test of a callback reads the payment
    outside the writer transaction; a payment still pending then is applied without looking again (the
    transaction skips its own idempotency test, as fault ``double-applies-replayed-callback`` does)."""
    row = ctx.store.read_one("SELECT status FROM payments WHERE ma_tham_chieu = ?", (str(ref),))
    await asyncio.sleep(RACE_WINDOW)  # e.g. a receipt number requested from the treasury
    if row is not None and row[0] == "pending":
        return faults | {"double-applies-replayed-callback"}
    return faults


async def stale_transition_check(ctx: ProvinceContext, ma_ho_so: str, action: dict[str, Any]) -> bool:
    """``double-transition-on-concurrent-action``: the transition table is checked against the state read outside
    the writer transaction; the write then trusts it (``enforce_transitions`` off). Returns that flag."""
    row = ctx.store.read_one("SELECT status FROM dossiers WHERE ma_ho_so = ?", (ma_ho_so,))
    await asyncio.sleep(RACE_WINDOW)  # e.g. the officer's permissions looked up in the directory
    if row is not None and not state_machine().transition(action["action"]).starts_from(str(row[0])):
        raise Problem(409, "Invalid transition", f"{ma_ho_so} is in state {row[0]}",
                      [{"field": "action", "message": f"not allowed in state {row[0]}"}])
    return False
