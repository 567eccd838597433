"""Interconnected civil-status dossiers (Decree 63/2024/NĐ-CP) in the reference province.

The interconnection portal delivers a dossier of group 1 (birth registration + permanent residence registration +
health-insurance card for a child under 6) or group 2 (death registration + residence deregistration + funeral
allowance) to ``POST /lienthong/dossiers``; the province stores it under the portal's maHoSo (no fee when it is
registered on time), receives and starts processing it (states 1 → 2 → 4, synced to NPSP through the outbox like
any dossier), sends the taken-in dossier back to the portal as a list item and pushes, per component, the status
``received`` then ``processing``. Each component's result arrives on its own (``POST /lienthong/ket-qua``), in
any order: the province records it on the dossier, pushes that component's ``completed`` status carrying the
result, and closes the composite (4 → 9, synced) once all three are completed. Groups, components, statuses
and their order are the contract's (haicap/civil_status.py); pushes leave in order from one queue.

Faults acting here: ``civil-pushes-out-of-order``, ``civil-push-missing-field``, ``civil-push-iso-dates``,
``civil-closes-on-first-result``, ``civil-component-never-completes``, ``civil-composite-not-synced``,
``civil-fee-on-time``, ``civil-loses-portal-dossier``, ``civil-refuses-death-group``,
``civil-unauthenticated-interconnection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from haicap.civil_status import DOSSIER_REF, RESULT_REF, CivilStatusSpec, Group, civil_status, format_lt
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext, require_bearer
from haicap.sandbox.province.dossier_api import receiving_unit
from haicap.sandbox.province.outbox import OutboxPolicy
from haicap.sandbox.province.problems import Problem, json_response, read_json

__all__ = ["CivilStatusDossiers"]

log = logging.getLogger(__name__)

PORTAL_DOSSIERS = "/lienthong/dossiers"
PORTAL_PUSH = "/lienthong/trang-thai"
NOI_NOP = "Cổng liên thông hộ tịch"
OFFICER = "Công chức tư pháp - hộ tịch"
#: the fee the ``civil-fee-on-time`` defect charges (the late-registration fee of a provincial resolution)
WRONG_FEE = {"TenPhiLePhi": "Lệ phí đăng ký hộ tịch", "MaPhiLePhi": "LPHT", "HinhThucThu": "2", "Gia": 8000,
             "LoaiPhiLePhi": "2"}
SEND_ATTEMPTS = 5


class _Sender:
    """One queue, one task: what the province sends the portal leaves in the order it was queued."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def put(self, path: str, body: dict[str, Any]) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._http = httpx.AsyncClient(timeout=10.0)
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._queue.put_nowait((path, body))

    async def _run(self) -> None:
        assert self._queue is not None and self._http is not None
        while True:
            path, body = await self._queue.get()
            for attempt in range(SEND_ATTEMPTS):
                try:
                    response = await self._http.post(self.base_url + path, json=body,
                                                     headers={"Authorization": f"Bearer {self.token}"})
                    if response.status_code < 500:
                        break
                except httpx.HTTPError as exc:
                    log.warning("civil status: %s failed (%s), attempt %d", path, exc, attempt + 1)
                await asyncio.sleep(0.1 * (attempt + 1))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()


class CivilStatusDossiers:
    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.spec: CivilStatusSpec = civil_status(ctx.registry)
        self.dossier_validator = ctx.registry.validator(DOSSIER_REF)
        self.result_validator = ctx.registry.validator(RESULT_REF)
        self.sender = _Sender(ctx.config.national_url, ctx.config.forward_token)
        # the defect of civil-composite-not-synced: the composite's moves are never queued for NPSP
        self.policy: OutboxPolicy = (dataclasses.replace(ctx.policy, sync_updates=False, sync_progress=False)
                                     if ctx.has("civil-composite-not-synced") else ctx.policy)

    async def aclose(self) -> None:
        await self.sender.aclose()

    def _authenticate(self, request: Request) -> None:
        """401 unless the request carries the interconnection credential."""
        if not self.ctx.has("civil-unauthenticated-interconnection"):  # the defect: anyone may deliver or complete
            require_bearer(request, self.ctx.config.forward_token, "lienthong")

    # -- the portal delivers a dossier -------------------------------------------------------------
    async def receive(self, request: Request) -> Response:
        ctx = self.ctx
        self._authenticate(request)
        body = await read_json(request, self.dossier_validator)
        group = self.spec.group_of_module(body["module"])
        if group is None or group.lead.maTTHC != body["maTTHC"]:
            raise Problem.field(422, "maTTHC", f"{body['maTTHC']} is not the lead procedure of module {body['module']}")
        if group.module == "LTKT" and ctx.has("civil-refuses-death-group"):  # the defect: only births wired up
            raise Problem.field(422, "module", "module LTKT is not supported")
        ack = {"maHoSo": body["maHoSo"], "soHoSoLT": body["id"], "accepted": True}
        if ctx.has("civil-loses-portal-dossier"):  # the defect: acknowledged, never stored
            return json_response(ack, status=201)
        doc = self._dossier(body, group)
        stored, created = await ctx.store.write(lambda conn: self._take_in(conn, doc))
        if created:
            self._queue_receipt(stored, group)
        return json_response(ack, status=201 if created else 200)

    def _dossier(self, body: dict[str, Any], group: Group) -> dict[str, Any]:
        ctx = self.ctx
        unit = receiving_unit(ctx, body["MaXa"])
        procedure = ctx.catalogue.get(group.lead.maTTHC) or {}
        on_time = body.get(self.spec.fee.get("onTimeField", "dangKyDungHan")) is True
        charged = not on_time or ctx.has("civil-fee-on-time")  # the defect: the on-time exemption is not applied
        fees = [dict(WRONG_FEE)] if charged else []
        fee = sum(int(f["Gia"]) for f in fees)
        now = d.now_vn()
        entry = d.history_entry("1", NguoiXuLy="Cổng liên thông", NoiDungXuLy="Tiếp nhận hồ sơ liên thông")
        doc = d.new_dossier(
            {**body, "MaTTHC": group.lead.maTTHC}, procedure, unit, fees=fees, fee=fee,
            MaHoSo=body["maHoSo"], SoBienNhan=body["maHoSo"], TenTTHC=procedure.get("TenTTHC") or group.lead.label,
            ChuHoSo=body["ChuHoSo"], DinhDanhCHS=body["DinhDanhCHS"], NgayNopHoSo=d.thoi_gian(now),
            NgayTiepNhan=d.thoi_gian(now), NgayHenTra=d.thoi_gian(now + timedelta(days=3)), NoiNopHoSo=NOI_NOP,
            NguonHoSo="national", LichSu=[entry],
        )
        doc["LienThong"] = {"soHoSoLT": body["id"], "module": group.module, "group": group.id,
                            "components": {c.id: {"trangThai": self.spec.order.initial} for c in group.components}}
        return doc

    def _take_in(self, conn: sqlite3.Connection, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        stored, created = d.insert_existing(conn, self.ctx.policy, doc)
        if created:
            for action in ("receive", "process"):  # the one-stop desk takes it in and starts processing
                stored = d.op_officer_action(conn, self.policy, doc["MaHoSo"],
                                             {"action": action, "NguoiXuLy": OFFICER})
        return stored, created

    def _queue_receipt(self, doc: dict[str, Any], group: Group) -> None:
        lt = doc["LienThong"]
        self.sender.put(PORTAL_DOSSIERS, {
            "id": lt["soHoSoLT"], "maDonVi": doc["MaCoQuan"], "maTTHC": group.lead.maTTHC, "module": group.module,
            "maHoSo": doc["MaHoSo"], "ngayTiepNhan": format_lt(),
        })
        order = self.spec.order
        steps = [(order.initial, "Tiếp nhận hồ sơ liên thông")]
        steps += [(s, "Đang xử lý hồ sơ liên thông") for s in order.path_to(order.completed)[1:-1]]
        if self.ctx.has("civil-pushes-out-of-order"):  # the defect: the queue is filled newest first
            steps.reverse()
        for status, text in steps:
            for component in group.components:
                self._push(doc, component.maTTHC, status, text, "")

    def _push(self, doc: dict[str, Any], ma_tthc: str, status: str, text: str, result: str) -> None:
        ctx = self.ctx
        when = (datetime.now(d.VN_TZ).isoformat(timespec="seconds") if ctx.has("civil-push-iso-dates")
                else format_lt())
        push = {"maTTHC": ma_tthc, "soHoSoLT": doc["LienThong"]["soHoSoLT"], "maHoSo": doc["MaHoSo"],
                "trangThai": status, "thoiGianThucHien": when, "nguoiXuLy": OFFICER, "noiDungXuLy": text,
                "ketQuaXuLy": result}
        if ctx.has("civil-push-missing-field"):  # the defect: the adapter never maps the officer
            del push["nguoiXuLy"]
        self.sender.put(PORTAL_PUSH, push)

    # -- a component's result ------------------------------------------------------------------------
    async def result(self, request: Request) -> Response:
        ctx = self.ctx
        self._authenticate(request)
        body = await read_json(request, self.result_validator)
        outcome = await ctx.store.write(lambda conn: self._reflect(conn, body))
        if outcome is not None:
            doc, ma_tthc = outcome
            self._push(doc, ma_tthc, self.spec.order.completed, "Đã có kết quả", body["ketQuaXuLy"])
        return json_response({"maHoSo": body["maHoSo"], "soHoSoLT": body["soHoSoLT"], "accepted": True})

    def _reflect(self, conn: sqlite3.Connection, body: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """Record the result on the dossier; close the composite when it is the last one. (doc, component
        maTTHC) to push, or None when nothing changed (a repeat)."""
        doc = d.load_dossier(conn, body["maHoSo"])
        lt = doc.get("LienThong")
        if not isinstance(lt, dict) or lt.get("soHoSoLT") != body["soHoSoLT"]:
            raise Problem.field(409, "soHoSoLT", f"{body['maHoSo']} is not interconnected dossier {body['soHoSoLT']}")
        group = self.spec.group(lt["group"])
        component = group.component(body["maTTHC"])
        if component is None:
            raise Problem.field(422, "maTTHC", f"{body['maTTHC']} is not a component of group {group.id}")
        state = lt["components"][component.id]
        completed = self.spec.order.completed
        if state.get("trangThai") == completed:
            return None
        if component.agency == "social-insurance" and self.ctx.has("civil-component-never-completes"):
            return None  # the defect: the social-insurance result is acknowledged and dropped
        state.update(trangThai=completed, ketQuaXuLy=body["ketQuaXuLy"], thoiGianThucHien=body["thoiGianThucHien"])
        d.save_dossier(conn, doc)
        done = [c for c in lt["components"].values() if c.get("trangThai") == completed]
        closes = len(done) == len(group.components) or self.ctx.has("civil-closes-on-first-result")
        if closes and d.transition_refusal(doc, "complete") is None:
            doc = d.op_officer_action(conn, self.policy, doc["MaHoSo"], {
                "action": "complete", "NguoiXuLy": OFFICER,
                "NoiDungXuLy": "Hoàn thành liên thông: " + "; ".join(c.get("ketQuaXuLy", "") for c in done)})
        return doc, component.maTTHC
