"""The national payment platform: INIT, QUERY, GET_BILL, the citizen's pay page and signed callbacks.

A province (partner ``MaDoiTac``) opens a transaction with INIT and sends the citizen to ``UrlThanhToan``;
the sandbox's pay page settles it by query parameter (``result=success|failure``, no UI) and POSTs the
signed CALLBACK to the partner's registered callback URL (``deliveries=N``: N copies at once), recording the
partner's answer. Every message's
MaXacThuc is checked with :mod:`haicap.payment_checksum` (the field order comes from the contract). On command
(control API) the last callback is sent again unchanged (replay) or altered (:data:`TAMPERS`: a MaXacThuc
changed, upper-cased, truncated, padded, empty or left out; a wrong amount; a new MaGiaoDich; an unknown
MaThamChieu), so a checker can see whether the province charges twice or trusts a forged callback.

Outgoing calls use one ``httpx.AsyncClient`` with timeouts; a partner that cannot be reached is recorded,
never turned into an error of the platform.

Transactions are rows of the store (``payment_txns``: the whole transaction as JSON), so an INIT on one worker of
the counterpart, its pay page on another and a replay or tamper through the control API on a third all see one
transaction; INIT and settlement run in the writer, so a transaction is opened and settled once.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from haicap.contract_registry import default_registry
from haicap.payment_checksum import checksum, verify
from haicap.sandbox.config import NationalConfig, PaymentPartner
from haicap.sandbox.national.outage import Outages
from haicap.sandbox.national.outbound import post_json
from haicap.sandbox.national.problems import JSONResponse, ProblemError
from haicap.sandbox.national.store import Store, now_ms
from haicap.sandbox.national.timefmt import thoi_gian

__all__ = ["TAMPERS", "PaymentPlatform"]

_SCHEMA = "payment.schema.json#/$defs/"
_VALIDATORS = {"INIT": "InitRequest", "QUERY": "QueryRequest", "GET_BILL": "GetBillRequest"}
_FAILURE_CODE = "24"  # [I] the citizen cancelled / the bank refused


@dataclass(slots=True)
class _Txn:
    partner: PaymentPartner
    init: dict[str, Any]
    token: str
    status: str = "3"
    ma_giao_dich: str | None = None
    ma_ngan_hang: str = ""
    thoi_gian_gd: str | None = None
    last_callback: dict[str, Any] | None = None
    bill_no: str | None = None
    queries: int = 0

    def dump(self) -> bytes:
        return orjson.dumps({"partner": self.partner.ma_doi_tac, "init": self.init, "token": self.token,
                             "status": self.status, "ma_giao_dich": self.ma_giao_dich,
                             "ma_ngan_hang": self.ma_ngan_hang, "thoi_gian_gd": self.thoi_gian_gd,
                             "last_callback": self.last_callback, "bill_no": self.bill_no, "queries": self.queries})

    @property
    def ref(self) -> str:
        return str(self.init["MaThamChieu"])

    @property
    def amount(self) -> int:
        return int(self.init["SoTien"])


#: most copies of one callback the pay page delivers at once (``deliveries=N``)
MAX_DELIVERIES = 5


def _deliveries(request: Request) -> int:
    """``deliveries=N`` on the pay page (haicap extension): the platform sends the callback N times at once, as a
    platform delivering at least once does when it retries before the first answer arrived. Default 1."""
    raw = request.query_params.get("deliveries", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DELIVERIES:
        raise ProblemError(400, "Bad Request", f"deliveries must be 1 to {MAX_DELIVERIES}",
                           [{"field": "deliveries", "message": f"an integer from 1 to {MAX_DELIVERIES}"}])
    return int(raw)


def _error(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error_code": code, "message": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _resigned(callback: dict[str, Any], secret: str) -> dict[str, Any]:
    callback["MaXacThuc"] = checksum(callback, secret, "CALLBACK")
    return callback


def _with_checksum(change: Callable[[str], str | None]) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """A tamper that replaces the valid MaXacThuc by ``change(valid)`` (None: the field is left out)."""
    def alter(callback: dict[str, Any], secret: str) -> dict[str, Any]:
        value = change(str(callback.get("MaXacThuc", "")))
        if value is None:
            callback.pop("MaXacThuc", None)
        else:
            callback["MaXacThuc"] = value
        return callback

    return alter


def _flip(digit: str) -> str:
    return "0" if digit != "0" else "1"


def _wrong_amount(callback: dict[str, Any], secret: str) -> dict[str, Any]:
    callback["SoTien"] = int(callback["SoTien"]) + 1000
    return _resigned(callback, secret)


def _new_transaction_id(callback: dict[str, Any], secret: str) -> dict[str, Any]:
    callback["MaGiaoDich"] = f"GD{now_ms()}{secrets.randbelow(10_000):04d}"
    callback["ThoiGianGD"] = thoi_gian()
    return _resigned(callback, secret)


def _unknown_reference(callback: dict[str, Any], secret: str) -> dict[str, Any]:
    callback["MaThamChieu"] = f"HAICAP-UNKNOWN-{secrets.token_hex(8)}"
    return _resigned(callback, secret)


#: what each tamper defect of the control API (payment.schema.json ControlTamperRequest) does to the last
#: callback; every other field stays as the platform sent it
TAMPERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "bad-checksum": _with_checksum(lambda good: _flip(good[:1]) + good[1:]),
    "checksum-last-digits": _with_checksum(lambda good: good[:-2] + _flip(good[-2:-1]) + _flip(good[-1:])),
    "checksum-uppercase": _with_checksum(str.upper),
    "checksum-truncated": _with_checksum(lambda good: good[:-1]),
    "checksum-whitespace": _with_checksum(lambda good: good + " "),
    "checksum-empty": _with_checksum(lambda good: ""),
    "checksum-missing": _with_checksum(lambda good: None),
    "wrong-amount": _wrong_amount,
    "new-transaction-id": _new_transaction_id,
    "unknown-reference": _unknown_reference,
}


class PaymentPlatform:
    """Transactions, the payment API and callback delivery; :attr:`routes` are mounted by the app."""

    def __init__(self, config: NationalConfig, store: Store, outages: Outages,
                 http: Callable[[], Awaitable[httpx.AsyncClient]]) -> None:
        registry = default_registry()
        self.public_url = config.public_url.rstrip("/")
        self.store = store
        self.outages = outages
        self._http = http
        self.partners = {p.ma_doi_tac: p for p in config.payment_partners}
        self._validators = {kind: registry.validator(_SCHEMA + name) for kind, name in _VALIDATORS.items()}
        self.routes = [
            Route("/payment/api", self.api, methods=["POST"]),
            Route("/payment/pay/{token}", self.pay, methods=["GET"]),
        ]

    # -- the partner API -------------------------------------------------------------------------
    async def api(self, request: Request) -> Response:
        if self.outages.is_down("payment"):
            return _error(503, "7", "the payment platform is unavailable",
                          headers={"Retry-After": str(self.outages.retry_after("payment"))})
        try:
            message = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _error(400, "1", "the body is not valid JSON", [{"field": "(body)", "message": str(exc)}])
        kind = message.get("LoaiBanTin") if isinstance(message, dict) else None
        validator = self._validators.get(kind) if isinstance(kind, str) else None
        if validator is None:
            return _error(400, "1", "unknown message type",
                          [{"field": "LoaiBanTin", "message": f"must be one of {', '.join(_VALIDATORS)}"}])
        violations = validator.violations(message)
        if violations:
            return _error(400, "1", f"invalid {kind} message", [v.as_problem_error() for v in violations])
        partner = self.partners.get(message["MaDoiTac"])
        if partner is None:
            return _error(401, "3", "unknown partner", [{"field": "MaDoiTac", "message": "not a registered partner"}])
        if not verify(message, partner.secret, kind):
            return _error(401, "2", "MaXacThuc does not match the message",
                          [{"field": "MaXacThuc", "message": f"wrong checksum for {kind} (see x-checksum-fields)"}])
        if kind == "INIT":
            return await self._init(partner, message)
        txn = self._find("MaDoiTac = ? AND MaThamChieu = ?", (partner.ma_doi_tac, message["MaThamChieu"]))
        if txn is None:
            return _error(404, "5", "transaction not found",
                          [{"field": "MaThamChieu", "message": "no INIT with this reference"}])
        if kind == "QUERY":
            key = (partner.ma_doi_tac, txn.ref)
            txn = await self.store.write(lambda conn: self._count_query(conn, key)) or txn
            body: dict[str, Any] = {"LoaiBanTin": "QUERY", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": txn.ref,
                                    "SoTien": txn.amount, "TrangThaiGD": txn.status}
        else:
            body = {"LoaiBanTin": "GET_BILL", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": txn.ref,
                    "SoTien": txn.amount, "TrangThaiGD": txn.status,
                    "ThongTinBienLai": txn.init["ThongTinBienLai"]}
            if txn.bill_no:
                body["SoBienLai"] = txn.bill_no
        if txn.ma_giao_dich:
            body["MaGiaoDich"] = txn.ma_giao_dich
            body["MaNganHang"] = txn.ma_ngan_hang
        if txn.thoi_gian_gd:
            body["ThoiGianGD"] = txn.thoi_gian_gd
        return JSONResponse({"error_code": "0", "message": body})

    async def _init(self, partner: PaymentPartner, message: dict[str, Any]) -> Response:
        fees = sum(int(f["SoTien"]) for f in message["ThongTinBienLai"]["PhiLePhi"])
        if fees != message["SoTien"]:
            return _error(400, "6", "SoTien does not equal the sum of the fees",
                          [{"field": "SoTien", "message": f"{message['SoTien']} != sum of PhiLePhi[].SoTien = {fees}"}])
        fresh = _Txn(partner=partner, init=message, token=secrets.token_urlsafe(24))
        txn = await self.store.write(lambda conn: self._open(conn, fresh))
        if txn.init["MaXacThuc"] != message["MaXacThuc"]:
            return _error(409, "4", "MaThamChieu already used for another transaction",
                          [{"field": "MaThamChieu", "message": "already used"}])
        return JSONResponse({"error_code": "0", "message": {
            "LoaiBanTin": "INIT", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": txn.ref, "SoTien": txn.amount,
            "ThoiGianGD": message["ThoiGianGD"], "UrlThanhToan": f"{self.public_url}/payment/pay/{txn.token}"}})

    # -- the citizen's pay page ------------------------------------------------------------------
    async def pay(self, request: Request) -> Response:
        if self.outages.is_down("payment"):
            raise ProblemError(503, "Service Unavailable", "the payment platform is unavailable",
                               headers={"Retry-After": str(self.outages.retry_after("payment"))})
        txn = self._find("token = ?", (request.path_params["token"],))
        if txn is None:
            raise ProblemError(404, "Not Found", "unknown payment token",
                               [{"field": "token", "message": "no transaction has this payment URL"}])
        result = request.query_params.get("result")
        if result is None:
            base = f"{self.public_url}/payment/pay/{txn.token}"
            return HTMLResponse(
                "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Thanh toán</title></head><body>"
                f"<p>{txn.amount} VND — {txn.ref}</p><a href=\"{base}?result=success\">Thanh toán</a> "
                f"<a href=\"{base}?result=failure\">Hủy</a></body></html>")
        if result not in ("success", "failure"):
            raise ProblemError(400, "Bad Request", "result must be success or failure",
                               [{"field": "result", "message": "expected success or failure"}])
        copies = _deliveries(request)
        bank = request.query_params.get("MaNganHang") or txn.init.get("MaNganHang") or "VCB"
        key = (txn.partner.ma_doi_tac, txn.ref)
        txn, settled = await self.store.write(lambda conn: self._settle(conn, key, result == "success", bank))
        if not settled or txn.last_callback is None:
            return JSONResponse({"MaThamChieu": txn.ref, "TrangThaiGD": txn.status, "callback_status": None,
                                 "callback_answer": None, "detail": "already settled; nothing sent"})
        callback = txn.last_callback
        sent = await asyncio.gather(*(self._deliver(txn, dict(callback), "original") for _ in range(copies)))
        delivery = sent[0]
        answer: dict[str, Any] = {"MaThamChieu": txn.ref, "TrangThaiGD": txn.status,
                                  "callback_status": delivery["status_code"], "callback_answer": delivery["answer"]}
        if copies > 1:
            answer["deliveries"] = [{"status_code": x["status_code"], "answer": x["answer"], "error": x["error"]}
                                    for x in sent]
        return JSONResponse(answer)

    # -- control ---------------------------------------------------------------------------------
    def transaction(self, ma_tham_chieu: str) -> _Txn:
        txn = self._find("MaThamChieu = ? ORDER BY rowid DESC LIMIT 1", (ma_tham_chieu,))
        if txn is None:
            raise ProblemError(404, "Not Found", f"no transaction {ma_tham_chieu}",
                               [{"field": "MaThamChieu", "message": "unknown"}])
        if txn.last_callback is None:
            raise ProblemError(409, "Conflict", "no callback was sent for this transaction yet",
                               [{"field": "MaThamChieu", "message": "pay it first (GET UrlThanhToan?result=...)"}])
        return txn

    async def replay(self, ma_tham_chieu: str) -> dict[str, Any]:
        txn = self.transaction(ma_tham_chieu)
        assert txn.last_callback is not None
        return await self._deliver(txn, dict(txn.last_callback), "replay")

    async def tamper(self, ma_tham_chieu: str, defect: str) -> dict[str, Any]:
        txn = self.transaction(ma_tham_chieu)
        assert txn.last_callback is not None
        alter = TAMPERS.get(defect)
        if alter is None:  # the contract's enum names a defect this platform cannot produce
            raise ProblemError(400, "Bad Request", f"unknown tamper defect {defect!r}",
                               [{"field": "defect", "message": f"one of {', '.join(TAMPERS)}"}])
        forged = alter(dict(txn.last_callback), txn.partner.secret)
        return await self._deliver(txn, forged, defect)

    # -- the shared record -----------------------------------------------------------------------
    def _load(self, state: bytes) -> _Txn | None:
        data = orjson.loads(state)
        partner = self.partners.get(data.pop("partner"))
        return None if partner is None else _Txn(partner=partner, **data)

    def _find(self, where: str, params: tuple[str, ...]) -> _Txn | None:
        """The transaction the ``where`` clause selects (whichever worker opened it), or None."""
        rows = self.store.read_now(lambda conn: conn.execute(
            f"SELECT state FROM payment_txns WHERE {where}", params).fetchall())
        return self._load(rows[0][0]) if rows else None

    def _stored(self, conn: sqlite3.Connection, key: tuple[str, str]) -> _Txn | None:
        rows = conn.execute("SELECT state FROM payment_txns WHERE MaDoiTac = ? AND MaThamChieu = ?", key).fetchall()
        return self._load(rows[0][0]) if rows else None

    @staticmethod
    def _save(conn: sqlite3.Connection, txn: _Txn) -> None:
        conn.execute("UPDATE payment_txns SET state = ? WHERE MaDoiTac = ? AND MaThamChieu = ?",
                     (txn.dump(), txn.partner.ma_doi_tac, txn.ref))

    def _open(self, conn: sqlite3.Connection, fresh: _Txn) -> _Txn:
        """In the writer: the transaction already opened under the reference, or ``fresh``, recorded now."""
        key = (fresh.partner.ma_doi_tac, fresh.ref)
        existing = self._stored(conn, key)
        if existing is not None:
            return existing
        conn.execute("INSERT INTO payment_txns (MaDoiTac, MaThamChieu, token, state) VALUES (?, ?, ?, ?)",
                     (*key, fresh.token, fresh.dump()))
        conn.execute("INSERT OR REPLACE INTO payments (MaDoiTac, MaThamChieu, SoTien, MaHoSo, TrangThaiGD, init_ms, "
                     "init) VALUES (?, ?, ?, ?, '3', ?, ?)",
                     (*key, fresh.amount, fresh.init["ThongTinBienLai"].get("MaHoSo"), now_ms(),
                      orjson.dumps(fresh.init)))
        return fresh

    def _count_query(self, conn: sqlite3.Connection, key: tuple[str, str]) -> _Txn | None:
        txn = self._stored(conn, key)
        if txn is not None:
            txn.queries += 1
            self._save(conn, txn)
            conn.execute("UPDATE payments SET queries = queries + 1 WHERE MaDoiTac = ? AND MaThamChieu = ?", key)
        return txn

    def _settle(self, conn: sqlite3.Connection, key: tuple[str, str], success: bool,
                bank: str) -> tuple[_Txn, bool]:
        """In the writer: settle a pending transaction once and build its signed callback: (txn, settled now)."""
        txn = self._stored(conn, key)
        assert txn is not None  # read before; transactions are never deleted while the run lasts
        if txn.status != "3":
            return txn, False
        txn.status = "1" if success else "4"
        txn.ma_giao_dich = f"GD{now_ms()}{secrets.randbelow(10_000):04d}"
        txn.ma_ngan_hang = bank[:50]
        txn.thoi_gian_gd = thoi_gian()
        if txn.status == "1":
            txn.bill_no = f"BL{secrets.randbelow(10**10):010d}"
        callback: dict[str, Any] = {
            "LoaiBanTin": "CALLBACK", "MaLoi": "00" if txn.status == "1" else _FAILURE_CODE,
            "MaDoiTac": txn.partner.ma_doi_tac, "MaThamChieu": txn.ref, "SoTien": txn.amount, "MaTienTe": "VND",
            "MaGiaoDich": txn.ma_giao_dich, "MaNganHang": txn.ma_ngan_hang, "ThoiGianGD": txn.thoi_gian_gd,
            "ThongTinGiaoDich": txn.init["ThongTinGiaoDich"],
        }
        callback["MaXacThuc"] = checksum(callback, txn.partner.secret, "CALLBACK")
        txn.last_callback = callback
        self._save(conn, txn)
        conn.execute("UPDATE payments SET TrangThaiGD = ?, MaGiaoDich = ?, settled_ms = ? WHERE MaDoiTac = ? AND "
                     "MaThamChieu = ?", (txn.status, txn.ma_giao_dich, now_ms(), *key))
        return txn, True

    # -- delivery --------------------------------------------------------------------------------
    async def _deliver(self, txn: _Txn, callback: dict[str, Any], kind: str) -> dict[str, Any]:
        started = time.perf_counter()
        status, answer, error = await post_json(await self._http(), txn.partner.callback_url, callback)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        record = {"at_ms": now_ms(), "kind": kind, "callback": callback, "status_code": status, "answer": answer,
                  "error": error, "elapsed_ms": elapsed}
        row = (txn.partner.ma_doi_tac, txn.ref, record["at_ms"], kind, orjson.dumps(callback), status,
               orjson.dumps(answer), error, elapsed)

        def insert(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "INSERT INTO payment_callbacks (MaDoiTac, MaThamChieu, at_ms, kind, callback, status_code, answer, "
                "error, elapsed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row).rowcount

        await self.store.write(insert)
        return record
