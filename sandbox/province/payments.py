"""Online payment through the national payment platform: start (INIT) and the signed callback.

Start: the citizen asks to pay a dossier's fee; the province records a pending payment (committed), sends
INIT with MaXacThuc (:mod:`haicap.payment_checksum`) and returns the platform's UrlThanhToan.
Callback (``POST /DvcPayment/Confirm``): the checksum is verified, the amount must equal the payment's and the
dossier's fee, and it is idempotent per MaThamChieu (a replay changes nothing); a failure MaLoi leaves the
dossier unpaid. A paid dossier is synchronised with DuocThanhToanTrucTuyen "1".

Faults acting here: ``ignores-callback-checksum``, ``accepts-wrong-amount``, ``double-applies-replayed-callback``,
``marks-paid-on-failed-payment``, ``bad-init-checksum``, ``double-effect-on-concurrent-callback``,
``prefix-checksum-compare``, ``case-insensitive-checksum``, ``accepts-missing-checksum``,
``charges-again-on-new-transaction-id``, ``accepts-unknown-reference``, ``acts-on-any-dossier`` (payment start).
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from haicap import payment_checksum
from haicap.sandbox.group_commit import now_ms
from haicap.sandbox.province import consistency_faults as cf
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext
from haicap.sandbox.province.dossier_api import DossierApi
from haicap.sandbox.province.lazy_http import LazyAsyncClient
from haicap.sandbox.province.outbox import OutboxPolicy, enqueue_change
from haicap.sandbox.province.problems import Problem, json_response, read_json

__all__ = ["Payments"]

START_REF = "dossier.schema.json#/$defs/PaymentStart"
CALLBACK_REF = "payment.schema.json#/$defs/Callback"
PROTOCOL_VERSION = "1.0.6"
CLOSED_STATES = frozenset({"3", "7", "8", "10"})
#: faults whose province parses MaXacThuc loosely (no contract pattern) before its loose comparison
LAX_CHECKSUM_FAULTS = frozenset({"prefix-checksum-compare", "case-insensitive-checksum", "accepts-missing-checksum"})


class _CallbackRefused(Problem):
    def __init__(self, status: int, ma_loi: str, reason: str, field: str) -> None:
        super().__init__(
            status, "Payment callback refused", reason, [{"field": field, "message": reason}],
            extra={"MaLoi": ma_loi, "MoTaLoi": reason},
        )


class Payments:
    def __init__(self, ctx: ProvinceContext, dossier_api: DossierApi) -> None:
        self.ctx = ctx
        self.dossier_api = dossier_api
        self.start_v = ctx.registry.validator(START_REF)
        self.callback_v = ctx.registry.validator(CALLBACK_REF)
        self._http = LazyAsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- start -------------------------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        ma_ho_so, session = self.dossier_api.owned(request)
        body = await read_json(request, self.start_v, optional=True)
        doc = self.dossier_api.load_owned(ma_ho_so, session, fault="acts-on-any-dossier")
        fee = int(doc["PhiPhaiNop"])
        if fee <= 0:
            raise Problem.field(409, "MaHoSo", "this dossier has no fee to pay online", "Nothing to pay")
        if doc["DaThanhToan"]:
            raise Problem.field(409, "MaHoSo", "the fee is already paid", "Already paid")
        if doc["TrangThaiHoSo"] in CLOSED_STATES:
            raise Problem.field(409, "MaHoSo", f"dossier is closed (state {doc['TrangThaiHoSo']})", "Dossier closed")
        ref = f"{ma_ho_so}-{secrets.token_hex(4)}"
        ts = now_ms()
        await self.ctx.store.write(
            lambda c: c.execute(
                "INSERT INTO payments (ma_tham_chieu, ma_ho_so, so_tien, status, created_ms, updated_ms) "
                "VALUES (?, ?, ?, 'pending', ?, ?)",
                (ref, ma_ho_so, fee, ts, ts),
            ).rowcount
        )
        message = self.init_message(doc, ref, body, request.client.host if request.client else "127.0.0.1")
        url = await self._send_init(message)
        if url is None:
            await self.ctx.store.write(
                lambda c: c.execute(
                    "UPDATE payments SET status = 'failed', ma_loi = 'INIT', updated_ms = ? WHERE ma_tham_chieu = ?",
                    (now_ms(), ref),
                ).rowcount
            )
            raise Problem(502, "Payment platform refused", "the national payment platform did not accept INIT")
        answer = {"MaHoSo": ma_ho_so, "MaThamChieu": ref, "SoTien": fee, "UrlThanhToan": url}
        return json_response(answer, status=201)

    def init_message(self, doc: dict[str, Any], ref: str, body: dict[str, Any], ip: str) -> dict[str, Any]:
        partner = self.ctx.config.payment
        fees = [
            {k: v for k, v in {
                "LoaiPhiLePhi": f.get("LoaiPhiLePhi", "2"),
                "MaPhiLePhi": f.get("MaPhiLePhi"),
                "TenPhiLePhi": f["TenPhiLePhi"],
                "SoTien": int(f["Gia"]),
            }.items() if v is not None}
            for f in doc["DanhSachLePhi"]
        ]
        owner = doc["DinhDanhCHS"][0]["SoDinhDanh"]
        message: dict[str, Any] = {
            "LoaiBanTin": "INIT",
            "PhienBan": PROTOCOL_VERSION,
            "MaDoiTac": partner.ma_doi_tac,
            "MaThamChieu": ref,
            "SoTien": int(doc["PhiPhaiNop"]),
            "LoaiHinhThanhToan": "PAY",
            "MaKenhThanhToan": body.get("MaKenhThanhToan") or "1",
            "MaThietBi": "",
            "NgonNgu": "vi-VN",
            "MaTienTe": "VND",
            "MaNganHang": body.get("MaNganHang") or "",
            "ThongTinGiaoDich": f"Thanh toan phi, le phi ho so {doc['MaHoSo']}",
            "ThoiGianGD": d.thoi_gian(),
            "Ip": ip,
            "ThongTinBienLai": {
                "MaDVC": doc["MaTTHC"],
                "MaTTHC": doc["MaTTHC"],
                "TenTTHC": doc["TenTTHC"],
                "MaDonVi": doc["MaCoQuan"],
                "TenDonVi": doc.get("DonViXuLy", ""),
                "MaHoSo": doc["MaHoSo"],
                "HoTenNguoiNop": doc["ChuHoSo"],
                "NoiDungThanhToan": f"Phi, le phi ho so {doc['MaHoSo']}",
                "PhiLePhi": fees,
            },
        }
        if len(owner) in (9, 12) and owner.isdigit():
            message["ThongTinBienLai"]["SoCMNDNguoiNop"] = owner
        signed = message
        if self.ctx.has("bad-init-checksum"):  # the defect: SoTien and MaThamChieu swapped in the checksum order
            signed = {**message, "MaThamChieu": message["SoTien"], "SoTien": message["MaThamChieu"]}
        message["MaXacThuc"] = payment_checksum.checksum(signed, partner.secret, "INIT", self.ctx.registry)
        return message

    async def _send_init(self, message: dict[str, Any]) -> str | None:
        try:
            response = await self._http.client.post(
                self.ctx.config.national_url.rstrip("/") + "/payment/api",
                content=orjson.dumps(message),
                headers={"Content-Type": "application/json"},
            )
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code != 200 or not isinstance(data, dict) or str(data.get("error_code")) != "0":
            return None
        inner = data.get("message")
        url = inner.get("UrlThanhToan") if isinstance(inner, dict) else None
        return url if isinstance(url, str) and url else None

    async def list(self, request: Request) -> Response:
        ma_ho_so, session = self.dossier_api.owned(request)
        self.dossier_api.load_owned(ma_ho_so, session)
        rows = self.ctx.store.read(
            "SELECT ma_tham_chieu, so_tien, status, ma_giao_dich, ma_loi, thoi_gian_gd FROM payments "
            "WHERE ma_ho_so = ? ORDER BY created_ms",
            (ma_ho_so,),
        )
        items = [
            {k: v for k, v in {
                "MaThamChieu": ref, "MaHoSo": ma_ho_so, "SoTien": amount, "TrangThai": status,
                "MaGiaoDich": txn, "MaLoi": code, "ThoiGianGD": when,
            }.items() if v is not None}
            for ref, amount, status, txn, code, when in rows
        ]
        return json_response({"items": items})

    # -- callback ----------------------------------------------------------------------------------
    async def callback(self, request: Request) -> Response:
        ctx = self.ctx
        message = await self._read_callback(request)
        partner = ctx.config.payment
        if message["MaDoiTac"] != partner.ma_doi_tac:
            raise _CallbackRefused(400, "04", "unknown MaDoiTac", "MaDoiTac")
        if not ctx.has("ignores-callback-checksum") and not self._checksum_ok(message, partner.secret):
            raise _CallbackRefused(400, "01", "MaXacThuc does not match the message", "MaXacThuc")
        policy = ctx.policy
        faults = ctx.config.faults
        if ctx.has("double-effect-on-concurrent-callback"):  # the defect: "already processed?" read outside
            faults = await cf.stale_callback_faults(ctx, message["MaThamChieu"], faults)
        _, answer = await ctx.store.write(lambda c: _apply_callback(c, policy, message, faults))
        return json_response({"MaLoi": "00", "MoTaLoi": answer})

    async def _read_callback(self, request: Request) -> dict[str, Any]:
        """The callback, valid against the contract's Callback (400 MaLoi 04 naming the field if not)."""
        lax = bool(self.ctx.config.faults & LAX_CHECKSUM_FAULTS)
        try:
            message = await read_json(request, None)
        except Problem as problem:
            field = problem.errors[0]["field"] if problem.errors else "(body)"
            raise _CallbackRefused(400, "04", f"malformed callback: {problem.detail}", field) from None
        violations = [v for v in self.callback_v.violations(message)
                      if not (lax and v.field == "MaXacThuc")]  # the defect: MaXacThuc taken as any text
        if violations:
            detail = "; ".join(f"{v.field}: {v.message}" for v in violations[:3])
            raise _CallbackRefused(400, "04", f"malformed callback: {detail}", violations[0].field)
        return message  # type: ignore[no-any-return]

    def _checksum_ok(self, message: dict[str, Any], secret: str) -> bool:
        """The exact comparison of :func:`payment_checksum.verify`, or one fault's loose one."""
        ctx = self.ctx
        given = message.get("MaXacThuc")
        if ctx.has("accepts-missing-checksum") and not given:  # the defect: verified only when present
            return True
        if not isinstance(given, str):
            return False
        expected = payment_checksum.checksum(message, secret, "CALLBACK", ctx.registry)
        if ctx.has("prefix-checksum-compare"):  # the defect: a 32-character column
            return hmac.compare_digest(given[:32].encode("utf-8", "replace"), expected[:32].encode())
        if ctx.has("case-insensitive-checksum"):  # the defect: compared ignoring case
            return hmac.compare_digest(given.lower().encode("utf-8", "replace"), expected.encode())
        return payment_checksum.verify(message, secret, "CALLBACK", ctx.registry)


def _apply_callback(
    conn: sqlite3.Connection, policy: OutboxPolicy, message: dict[str, Any], faults: frozenset[str]
) -> tuple[bool, str]:
    """Inside the writer transaction: check amount and idempotency, then apply the outcome once."""
    ref = message["MaThamChieu"]
    row = conn.execute("SELECT ma_ho_so, so_tien, status, ma_giao_dich FROM payments WHERE ma_tham_chieu = ?",
                       (ref,)).fetchone()
    if row is None:
        if "accepts-unknown-reference" in faults:  # the defect: whatever cannot be matched is acknowledged
            return False, f"no payment {ref}; nothing to do"
        raise _CallbackRefused(404, "03", f"unknown MaThamChieu {ref}", "MaThamChieu")
    ma_ho_so, amount, status, settled_txn = row
    doc = d.load_dossier(conn, ma_ho_so)
    if "accepts-wrong-amount" not in faults and (message["SoTien"] != amount or amount != doc["PhiPhaiNop"]):
        raise _CallbackRefused(400, "02", f"SoTien {message['SoTien']} differs from the fee {amount}", "SoTien")
    success = message["MaLoi"] == "00" or "marks-paid-on-failed-payment" in faults
    ts = now_ms()

    def record(applied: bool, answer: str) -> None:
        conn.execute(
            "INSERT INTO callbacks (ma_tham_chieu, ma_giao_dich, ma_loi, applied, answer, received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ref, message["MaGiaoDich"], message["MaLoi"], int(applied), answer, ts),
        )

    # the defect of charges-again-on-new-transaction-id: a callback is a duplicate only with the same MaGiaoDich
    new_txn = "charges-again-on-new-transaction-id" in faults and message["MaGiaoDich"] != settled_txn
    if status != "pending" and "double-applies-replayed-callback" not in faults and not new_txn:
        answer = f"already processed ({status})"
        record(False, answer)
        return False, answer
    conn.execute(
        "UPDATE payments SET status = ?, ma_giao_dich = ?, ma_loi = ?, thoi_gian_gd = ?, updated_ms = ? "
        "WHERE ma_tham_chieu = ?",
        ("paid" if success else "failed", message["MaGiaoDich"], message["MaLoi"], message["ThoiGianGD"], ts, ref),
    )
    if not success:
        record(True, "payment failure recorded; the dossier stays unpaid")
        return True, "payment failure recorded"
    doc["DaThanhToan"] = True
    doc["SoTienDaThanhToan"] = int(doc.get("SoTienDaThanhToan", 0)) + int(message["SoTien"])
    doc["DuocThanhToanTrucTuyen"] = "1"
    d.save_dossier(conn, doc)
    enqueue_change(conn, policy, doc, created=False, entry=None)  # no state change: the item carries the flag
    record(True, "payment applied")
    return True, "payment applied"
