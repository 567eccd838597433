"""Online payment through the national payment platform (INIT, callback, MaXacThuc, amounts, idempotency).

The rules are the NPSP Payment Platform protocol 1.0.6 as modelled in ``contracts/national-payment.openapi.yaml``
and ``contracts/schemas/payment.schema.json`` (its ``x-checksum-fields``), and the callback operation of
``contracts/province-dossier.openapi.yaml``: the province's INIT carries a MaXacThuc the platform accepts and the
procedure's fee; the province verifies the callback's MaXacThuc exactly (not a prefix, not ignoring case or
whitespace, not only when present) and its amount, applies a payment once whatever MaGiaoDich reports it again,
refuses a callback for a reference it never issued, leaves the dossier unpaid on a failure, and tells the
national portal that the fee was paid online (DuocThanhToanTrucTuyen "1"). Each check signs in a new citizen
and submits its own dossier with a fee, so the checks are independent of each other and of their order.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import scenario_data
from haicap.conformance.registry import CheckFailure, check
from haicap.contract_registry import default_registry
from haicap.counterpart_client import CounterpartError
from haicap.http_port import ResponseLike
from haicap.province_client import CitizenSession, LoginFailed

#: A procedure with an online fee (contracts/procedures.yaml: 1.004222 Đăng ký thường trú, 10,000 VND; the
#: journey scenarios/library/permanent-residence-paid.yaml pays the same procedure).
FEE_PROCEDURE = "1.004222"
RULE = ("contracts/national-payment.openapi.yaml, contracts/schemas/payment.schema.json (NPSP Payment Platform "
        "protocol 1.0.6)")
CALLBACK_RULE = "contracts/province-dossier.openapi.yaml POST /DvcPayment/Confirm (paymentCallback)"
#: How long a callback may take to settle on the province once the pay page answered (bounded wait).
SETTLE_SECONDS = 10.0


def _body(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def _answer(response: ResponseLike) -> dict[str, Any]:
    return {"status": response.status_code, "body": _body(response)}


def _catalogue_fee(procedure: str) -> int | None:
    from haicap.data_generators.procedures import load_procedures  # contracts/procedures.yaml

    entry = next((p for p in load_procedures() if p["MaTTHC"] == procedure), None)
    return int(entry["PhiPhaiNop"]) if entry else None


@dataclass
class Payment:
    """A citizen's dossier with a fee, and the payment the province started for it."""

    session: CitizenSession
    ma_ho_so: str
    fee: int
    ma_tham_chieu: str
    url: str
    started: dict[str, Any]


def _payable_dossier(ctx: CheckContext) -> tuple[CitizenSession, dict[str, Any]]:
    """Sign a new citizen in, submit a dossier with a fee and (a back office) ask for the fee: state 6."""
    data = scenario_data(ctx)
    citizen = data.citizen()
    try:
        session = ctx.province.login(citizen["SoDinhDanh"])
    except LoginFailed as exc:
        raise CheckFailure(f"single sign-on failed, so no dossier could be paid: {exc}", expected="a session",
                           actual=None if exc.response is None else _answer(exc.response)) from None
    payload = data.submission(FEE_PROCEDURE, None, citizen)
    submitted = ctx.province.submit(session, payload)
    if submitted.status_code != 201:
        raise CheckFailure(f"submitting a dossier of procedure {FEE_PROCEDURE} (with a fee) failed",
                           expected="HTTP 201", actual=_answer(submitted), reproduce="POST /api/v1/dossiers")
    dossier = submitted.json()
    if "back_office" in ctx.target.capabilities:
        for action in ("receive", "request-payment"):
            moved = ctx.province.officer_action(dossier["MaHoSo"], action)
            if moved.status_code != 200:
                raise CheckFailure(f"officer {action} on {dossier['MaHoSo']} failed", expected="HTTP 200",
                                   actual=_answer(moved),
                                   reproduce=f"POST /officer/dossiers/{dossier['MaHoSo']}/actions {{action: {action}}}")
            dossier = moved.json()
    return session, dossier


def _start(ctx: CheckContext, *, refused: str = "the province returned no payment URL") -> Payment:
    """A dossier waiting for its fee and a started online payment (INIT accepted: UrlThanhToan returned)."""
    session, dossier = _payable_dossier(ctx)
    ma_ho_so = dossier["MaHoSo"]
    started = ctx.province.start_payment(session, ma_ho_so)
    body = _body(started)
    if started.status_code != 201 or not isinstance(body, dict) or not body.get("UrlThanhToan") \
            or not body.get("MaThamChieu"):
        raise CheckFailure(f"starting the online payment of {ma_ho_so} failed: {refused}",
                           expected="HTTP 201 with MaThamChieu and UrlThanhToan (the platform accepted INIT)",
                           actual=_answer(started), reproduce=f"POST /api/v1/dossiers/{ma_ho_so}/payments")
    return Payment(session, ma_ho_so, int(dossier.get("PhiPhaiNop", 0)), body["MaThamChieu"], body["UrlThanhToan"],
                   body)


def _payments(ctx: CheckContext, payment: Payment) -> list[dict[str, Any]]:
    listed = ctx.province.payments(payment.session, payment.ma_ho_so)
    body = _body(listed)
    if listed.status_code != 200:
        raise CheckFailure(f"listing the payments of {payment.ma_ho_so} failed", expected="HTTP 200",
                           actual=_answer(listed), reproduce=f"GET /api/v1/dossiers/{payment.ma_ho_so}/payments")
    items = body.get("items", body) if isinstance(body, dict) else body
    return [p for p in items or [] if isinstance(p, dict)]


def _mine(items: list[dict[str, Any]], payment: Payment) -> dict[str, Any] | None:
    return next((p for p in items if p.get("MaThamChieu") == payment.ma_tham_chieu), None)


def _settle(ctx: CheckContext, payment: Payment, result: str) -> dict[str, Any]:
    """Pay (or fail to) on the national pay page and wait, bounded, until the province's payment leaves pending."""
    page = ctx.province.pay(payment.url, result)
    if page.status_code >= 400:
        raise CheckFailure("the national payment page refused the payment", expected="2xx", actual=_answer(page))
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        mine = _mine(_payments(ctx, payment), payment)
        if mine is not None and mine.get("TrangThai") != "pending":
            return mine
        if time.monotonic() > deadline:
            raise CheckFailure(f"payment {payment.ma_tham_chieu} is still pending {SETTLE_SECONDS:g}s after the "
                               f"platform's {result} callback", expected="the callback processed",
                               actual={"payment": mine, "pay_page": _body(page)})
        time.sleep(0.05)


def _dossier(ctx: CheckContext, payment: Payment) -> dict[str, Any]:
    response = ctx.province.dossier(payment.session, payment.ma_ho_so)
    if response.status_code != 200:
        raise CheckFailure(f"reading dossier {payment.ma_ho_so} failed", expected="HTTP 200",
                           actual=_answer(response), reproduce=f"GET /api/v1/dossiers/{payment.ma_ho_so}")
    return response.json()  # type: ignore[no-any-return]


def _json_text(value: Any) -> str:
    """A value as the JSON it came in (``false``, not Python's ``False``), for a summary."""
    return json.dumps(value, ensure_ascii=False)


def _paid_view(dossier: dict[str, Any]) -> dict[str, Any]:
    return {k: dossier.get(k) for k in ("DaThanhToan", "SoTienDaThanhToan", "PhiPhaiNop", "TrangThaiHoSo")}


def _expect_unpaid(ctx: CheckContext, payment: Payment, after: str) -> dict[str, Any]:
    dossier = _dossier(ctx, payment)
    ctx.expect(dossier.get("DaThanhToan") is False and not dossier.get("SoTienDaThanhToan"),
               f"dossier {payment.ma_ho_so} shows the fee as paid after {after}",
               expected={"DaThanhToan": False, "SoTienDaThanhToan": 0}, actual=_paid_view(dossier),
               reproduce=f"GET /api/v1/dossiers/{payment.ma_ho_so}")
    return dossier


#: what each tamper defect of the platform changes in its last callback (the national control API,
#: contracts/schemas/payment.schema.json ControlTamperRequest)
TAMPERED = {
    "bad-checksum": "MaXacThuc altered (its first hex digit), every other field as in the platform's last callback",
    "checksum-last-digits": "MaXacThuc with only its last two hex digits changed",
    "checksum-uppercase": "MaXacThuc upper-cased (the contract's digest is lowercase hex)",
    "checksum-truncated": "MaXacThuc with its last hex digit cut off",
    "checksum-whitespace": "MaXacThuc followed by a space",
    "checksum-empty": "MaXacThuc empty (\"\")",
    "checksum-missing": "no MaXacThuc field at all",
    "wrong-amount": "SoTien changed and MaXacThuc validly recomputed, every other field as in the platform's "
                    "last callback",
    "new-transaction-id": "the success callback again with a new MaGiaoDich (and ThoiGianGD), validly signed",
    "unknown-reference": "a validly signed callback for a MaThamChieu the province never issued",
}
#: every way a MaXacThuc can be mis-compared that PAY-02 tries (each must be refused)
CHECKSUM_DEFECTS = ("bad-checksum", "checksum-last-digits", "checksum-uppercase", "checksum-truncated",
                    "checksum-whitespace", "checksum-empty", "checksum-missing")


def checksum_defects(registry: Any = None) -> tuple[str, ...]:
    """:data:`CHECKSUM_DEFECTS`, without the upper-cased digest when the contract's MaXacThuc admits it (a
    contract whose digest is not lowercase-only makes a case-insensitive comparison correct)."""
    validator = (registry or default_registry()).validator("payment.schema.json#/$defs/MaXacThuc")
    upper_ok = validator.is_valid("ABCDEF" + "0" * 58)
    return tuple(d for d in CHECKSUM_DEFECTS if not (upper_ok and d == "checksum-uppercase"))


def callback_verdict(status: int | None, answer: Any, error: str | None = None) -> str | None:
    """What the province did with a callback it must refuse; None when it refused it as the contract says
    (HTTP 4xx with MaLoi != "00"). A refusal with the wrong HTTP status is said so, not called accepted."""
    ma_loi = answer.get("MaLoi") if isinstance(answer, dict) else None
    if status is None:
        return f"no answer ({error or 'the connection failed'})"
    if status >= 500:
        return f"server error (HTTP {status}, MaLoi {ma_loi!r})"
    if 200 <= status < 300:
        if ma_loi in (None, "00"):
            return f"accepted (HTTP {status}, MaLoi {ma_loi!r})"
        return f"refused with HTTP {status} (expected 4xx), MaLoi {ma_loi!r}"
    if 400 <= status < 500:
        if ma_loi == "00":
            return f"answered HTTP {status} but MaLoi '00' (accepted)"
        if ma_loi is None:
            return f"refused with HTTP {status} without a MaLoi (expected MaLoi != '00')"
        return None
    return f"answered HTTP {status} (expected 4xx with MaLoi != '00')"


def _sent(callback: Any, defect: str, fee: int) -> dict[str, Any]:
    """What the tampered callback carried: its fields (MaXacThuc only as a fact), the defect, SoTien vs fee."""
    fields = {k: v for k, v in callback.items() if k != "MaXacThuc"} if isinstance(callback, dict) else {}
    amount = fields.get("SoTien")
    signed = defect in ("wrong-amount", "new-transaction-id", "unknown-reference")
    return {"defect": f"{defect}: {TAMPERED.get(defect, defect)}",
            "SoTien_sent": amount, "fee_of_the_dossier": fee,
            "MaXacThuc": "valid for the fields" if signed else "does not match the fields",
            "callback": fields}


def _tamper(ctx: CheckContext, payment: Payment, defect: str) -> dict[str, Any]:
    """Have the platform send its last callback altered by ``defect``; what was sent, what came back, verdict."""
    delivery = ctx.national.tamper_callback(payment.ma_tham_chieu, defect)
    status, answer, error = delivery.get("status_code"), delivery.get("answer"), delivery.get("error")
    return {"defect": defect, "sent": _sent(delivery.get("callback"), defect, payment.fee),
            "province_answer": {"status": status, "answer": answer, "error": error},
            "verdict": callback_verdict(status, answer, error)}


def _reproduce(payment: Payment, defect: str) -> str:
    return (f"POST <national>/_control/payment/{payment.ma_tham_chieu}/tamper {{\"defect\": \"{defect}\"}} "
            f"→ the platform POSTs the callback to <province>/DvcPayment/Confirm")


def _state(ctx: CheckContext, payment: Payment) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return _paid_view(_dossier(ctx, payment)), _payments(ctx, payment)


def _expect_unchanged(ctx: CheckContext, payment: Payment, before: tuple[dict[str, Any], list[dict[str, Any]]],
                      what: str, sent: list[dict[str, Any]], reproduce: str) -> tuple[dict[str, Any], list[Any]]:
    after = _state(ctx, payment)
    ctx.expect(after == before, f"{what} changed dossier {payment.ma_ho_so} or its payments",
               expected={"dossier": before[0], "payments": before[1]},
               actual={"dossier": after[0], "payments": after[1], "sent": sent}, reproduce=reproduce)
    return after


def _callback_refused(ctx: CheckContext, payment: Payment, defect: str, what: str) -> str:
    """Send the platform's last callback altered by ``defect``: the province must refuse it (4xx, MaLoi != 00)
    and neither the dossier's paid state nor its payments may change. The evidence says what was sent (the
    defect, SoTien against the fee, the callback's fields) and what came back."""
    before = _state(ctx, payment)
    tried = _tamper(ctx, payment, defect)
    came_back, sent = tried["province_answer"], tried["sent"]
    ctx.require_evidence(int(came_back["status"] is not None), 1, f"answer to the callback with {what}",
                         reproduce=_reproduce(payment, defect))
    detail = (f"SoTien {sent['SoTien_sent']} for a fee of {payment.fee}, validly signed" if defect == "wrong-amount"
              else f"a MaXacThuc that does not match its fields (SoTien {sent['SoTien_sent']}, fee {payment.fee})")
    answer = came_back["answer"]
    ctx.expect(tried["verdict"] is None,
               f"a callback with {what} ({detail}) was {tried['verdict']}"
               + (f" {answer.get('MoTaLoi')!r}" if isinstance(answer, dict) and answer.get("MoTaLoi") else ""),
               expected=f"HTTP 4xx with MaLoi != \"00\" for a callback with {detail}",
               actual={"sent": sent, "province_answer": came_back}, reproduce=_reproduce(payment, defect))
    after = _expect_unchanged(ctx, payment, before, f"a callback with {what} ({detail})", [sent],
                              _reproduce(payment, defect))
    ma_loi = answer.get("MaLoi") if isinstance(answer, dict) else None
    return (f"callback of {payment.ma_tham_chieu} carrying {detail}: refused with HTTP {came_back['status']}, "
            f"MaLoi {ma_loi}; dossier {payment.ma_ho_so} (DaThanhToan {_json_text(after[0].get('DaThanhToan'))}) "
            f"and its {len(after[1])} payment(s) unchanged")


# -- the checks ------------------------------------------------------------------------------------
@check("PAY-01", criterion="payment", severity="critical", requires=("payment",),
       title="INIT carries a MaXacThuc the platform verifies and the procedure's fee",
       rule=f"{RULE}; MaXacThuc over payment.schema.json InitRequest x-checksum-fields",
       detects=("bad-init-checksum",))
def init_checksum(ctx: CheckContext) -> str:
    """Starting a payment makes the province send INIT; the platform's ledger shows it accepted (its MaXacThuc
    verified over the contract's field order) with SoTien equal to the procedure's fee."""
    payment = _start(ctx, refused="no UrlThanhToan, the payment platform did not accept the province's INIT "
                                  "(MaXacThuc over the contract's x-checksum-fields order, or its fields)")
    try:
        record = ctx.national.payment(payment.ma_tham_chieu)
    except CounterpartError as exc:
        raise CheckFailure(f"the payment platform has no accepted INIT for {payment.ma_tham_chieu}",
                           expected="an INIT recorded by the platform", actual=str(exc)) from None
    init = record.get("init") or {}
    receipt = init.get("ThongTinBienLai") or {}
    fee = _catalogue_fee(FEE_PROCEDURE)
    wanted = {"SoTien": fee if fee is not None else payment.fee, "MaHoSo": payment.ma_ho_so}
    got = {"SoTien": init.get("SoTien"), "MaHoSo": receipt.get("MaHoSo")}
    ctx.expect(got == wanted and payment.fee == wanted["SoTien"],
               f"INIT {payment.ma_tham_chieu} does not charge the fee of procedure {FEE_PROCEDURE} for "
               f"{payment.ma_ho_so}", expected={**wanted, "PhiPhaiNop": wanted["SoTien"]},
               actual={**got, "PhiPhaiNop": payment.fee},
               reproduce=f"GET <national>/_ledger/payments/{payment.ma_tham_chieu}")
    return (f"INIT {payment.ma_tham_chieu} for dossier {payment.ma_ho_so} accepted by the platform (MaXacThuc "
            f"verified, UrlThanhToan returned), SoTien {got['SoTien']} = fee of procedure {FEE_PROCEDURE}")


@check("PAY-02", criterion="payment", severity="critical", requires=("payment",),
       title="A callback whose MaXacThuc is not exactly the right checksum is refused",
       rule=f"{RULE}: MaXacThuc, lowercase hex SHA-256 over Callback x-checksum-fields, verified by the partner; "
            f"{CALLBACK_RULE}: MaLoi 01 for a wrong MaXacThuc",
       detects=("ignores-callback-checksum", "prefix-checksum-compare", "case-insensitive-checksum",
                "accepts-missing-checksum"))
def callback_checksum(ctx: CheckContext) -> str:
    """The platform's callback re-sent with its MaXacThuc altered in every way a comparison can be lax (first
    digit changed, only the last two digits changed, upper-cased, truncated by one digit, a trailing space,
    empty, left out): each is refused (4xx, MaLoi != "00") and the dossier and its payments do not change."""
    payment = _start(ctx)
    _settle(ctx, payment, "failure")
    before = _state(ctx, payment)
    defects = checksum_defects()
    tried = [_tamper(ctx, payment, defect) for defect in defects]
    answered = [t for t in tried if t["province_answer"]["status"] is not None]
    ctx.require_evidence(len(answered), len(defects), "answers to callbacks with a tampered MaXacThuc",
                         reproduce=_reproduce(payment, defects[0]))
    wrong = [t for t in tried if t["verdict"] is not None]
    if wrong:
        raise CheckFailure(
            f"{len(wrong)} of {len(tried)} callbacks with a wrong MaXacThuc not refused: "
            + "; ".join(f"{TAMPERED[t['defect']]}: {t['verdict']}" for t in wrong),
            expected="HTTP 4xx with MaLoi != \"00\" for each (the MaXacThuc compared exactly, as lowercase hex)",
            actual=wrong, reproduce=_reproduce(payment, wrong[0]["defect"]))
    _expect_unchanged(ctx, payment, before, f"{len(tried)} callbacks with a wrong MaXacThuc",
                      [t["sent"] for t in tried], _reproduce(payment, defects[0]))
    statuses = Counter(f"HTTP {t['province_answer']['status']} MaLoi {t['province_answer']['answer'].get('MaLoi')}"
                       for t in tried if isinstance(t["province_answer"]["answer"], dict))
    return (f"{len(tried)} of {len(tried)} callbacks of {payment.ma_tham_chieu} with a wrong MaXacThuc refused "
            f"({', '.join(f'{k} ×{n}' for k, n in sorted(statuses.items()))}): "
            + ", ".join(t["defect"] for t in tried)
            + f"; dossier {payment.ma_ho_so} and its payments unchanged")


@check("PAY-03", criterion="payment", severity="critical", requires=("payment",),
       title="A callback for another amount than the fee is refused",
       rule=f"{RULE}: the amount matches the dossier fee", detects=("accepts-wrong-amount",))
def callback_amount(ctx: CheckContext) -> str:
    """A validly signed callback whose SoTien differs from the dossier's fee is refused (4xx, MaLoi != "00")
    and the dossier stays unpaid."""
    payment = _start(ctx)
    _settle(ctx, payment, "failure")
    return _callback_refused(ctx, payment, "wrong-amount", "an amount other than the fee")


@check("PAY-04", criterion="payment", severity="critical", requires=("payment",),
       title="A replayed callback changes nothing", rule=f"{RULE}: a replayed callback charges nothing twice",
       detects=("double-applies-replayed-callback",))
def replayed_callback(ctx: CheckContext) -> str:
    """After a successful payment the platform sends the same callback again: the province's payments and the
    dossier's amount paid do not change (SoTienDaThanhToan stays the fee, never double)."""
    payment = _start(ctx)
    _settle(ctx, payment, "success")
    before_dossier = _paid_view(_dossier(ctx, payment))
    before_payments = _payments(ctx, payment)
    delivery = ctx.national.replay_callback(payment.ma_tham_chieu)
    ctx.require_evidence(int(delivery.get("status_code") is not None), 1, "answer to the replayed callback",
                         reproduce=f"POST <national>/_control/payment/{payment.ma_tham_chieu}/replay")
    after_dossier = _paid_view(_dossier(ctx, payment))
    after_payments = _payments(ctx, payment)
    reproduce = f"POST <national>/_control/payment/{payment.ma_tham_chieu}/replay"
    ctx.expect(after_dossier == before_dossier and after_payments == before_payments,
               f"replaying the callback of {payment.ma_tham_chieu} changed dossier {payment.ma_ho_so}",
               expected={"dossier": before_dossier, "payments": before_payments},
               actual={"dossier": after_dossier, "payments": after_payments,
                       "province_answer": {"status": delivery.get("status_code"), "answer": delivery.get("answer")}},
               reproduce=reproduce)
    ctx.expect(after_dossier.get("DaThanhToan") is True and after_dossier.get("SoTienDaThanhToan") == payment.fee,
               f"dossier {payment.ma_ho_so} does not show its fee paid exactly once",
               expected={"DaThanhToan": True, "SoTienDaThanhToan": payment.fee}, actual=after_dossier,
               reproduce=reproduce)
    answer = delivery.get("answer")
    ma_loi = f", MaLoi {answer.get('MaLoi')}" if isinstance(answer, dict) and answer.get("MaLoi") else ""
    return (f"replayed callback of {payment.ma_tham_chieu} answered HTTP {delivery.get('status_code')}{ma_loi}; "
            f"dossier {payment.ma_ho_so} still paid once (SoTienDaThanhToan {after_dossier.get('SoTienDaThanhToan')}"
            f" for a fee of {payment.fee}), its {len(after_payments)} payment(s) unchanged")


@check("PAY-05", criterion="payment", severity="critical", requires=("payment",),
       title="A failed payment leaves the dossier unpaid", rule=f"{RULE}: a failed payment leaves the dossier unpaid",
       detects=("marks-paid-on-failed-payment",))
def failed_payment(ctx: CheckContext) -> str:
    """The citizen's payment fails (callback MaLoi != "00"): the payment is recorded as failed and the dossier
    stays unpaid."""
    payment = _start(ctx)
    settled = _settle(ctx, payment, "failure")
    ctx.expect(settled.get("TrangThai") != "paid", f"the failed payment {payment.ma_tham_chieu} is recorded as paid",
               expected={"TrangThai": "failed"}, actual=settled,
               reproduce=f"GET {payment.url}?result=failure")
    dossier = _expect_unpaid(ctx, payment, "a failed payment")
    return (f"failed payment {payment.ma_tham_chieu} recorded as {settled.get('TrangThai')}; dossier "
            f"{payment.ma_ho_so} unpaid (DaThanhToan {_json_text(dossier.get('DaThanhToan'))}, SoTienDaThanhToan "
            f"{dossier.get('SoTienDaThanhToan')}, fee {payment.fee})")


@check("PAY-06", criterion="payment", severity="major", requires=("payment", "sync"),
       title="The paid flag reaches the national portal within the sync SLA",
       rule=f"{RULE}: status reaches NPSP (DongBoHoSoMC DuocThanhToanTrucTuyen \"1\")",
       detects=("no-paid-flag-sync",))
def paid_flag_synced(ctx: CheckContext) -> str:
    """After a successful payment the dossier's synchronised item carries DuocThanhToanTrucTuyen "1" at the
    national side within the profile's sync SLA."""
    payment = _start(ctx)
    _settle(ctx, payment, "success")
    sla = ctx.target.sync_sla_seconds
    paid_at = time.monotonic()
    deadline = paid_at + sla
    flag: Any = None
    while True:
        record = ctx.national.synced_dossier(payment.ma_ho_so)
        seen_after = time.monotonic() - paid_at
        flag = ((record or {}).get("item") or {}).get("DuocThanhToanTrucTuyen")
        if str(flag) == "1" or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    ctx.expect(str(flag) == "1",
               f"the paid flag of {payment.ma_ho_so} did not reach the national portal within {sla:g}s of the payment",
               expected={"DuocThanhToanTrucTuyen": "1"}, actual={"DuocThanhToanTrucTuyen": flag},
               reproduce=f"GET <national>/_ledger/sync/dossiers/{payment.ma_ho_so}")
    return (f"DuocThanhToanTrucTuyen \"1\" of paid dossier {payment.ma_ho_so} seen at the national portal "
            f"{seen_after:.1f} s after the payment settled, SLA {sla:g} s")


def _paid_count(payments: list[dict[str, Any]]) -> int:
    return sum(p.get("TrangThai") == "paid" for p in payments)


@check("PAY-07", criterion="payment", severity="critical", requires=("payment",),
       title="A settled payment reported again under a new MaGiaoDich charges nothing",
       rule=f"{RULE}: one transaction per MaThamChieu; {CALLBACK_RULE}: idempotent per MaThamChieu",
       detects=("charges-again-on-new-transaction-id",))
def new_transaction_id(ctx: CheckContext) -> str:
    """After a successful payment the platform sends a validly signed success callback for the same
    MaThamChieu with a new MaGiaoDich: accepted or refused, the amount paid stays the fee and no second
    payment is recorded as paid."""
    payment = _start(ctx)
    _settle(ctx, payment, "success")
    before_dossier, before_payments = _state(ctx, payment)
    tried = _tamper(ctx, payment, "new-transaction-id")
    came_back = tried["province_answer"]
    reproduce = _reproduce(payment, "new-transaction-id")
    ctx.require_evidence(int(came_back["status"] is not None), 1, "answer to the callback with a new MaGiaoDich",
                         reproduce=reproduce)
    after_dossier, after_payments = _state(ctx, payment)
    got = {"SoTienDaThanhToan": after_dossier.get("SoTienDaThanhToan"), "DaThanhToan": after_dossier.get("DaThanhToan"),
           "payments recorded as paid": _paid_count(after_payments)}
    wanted = {"SoTienDaThanhToan": payment.fee, "DaThanhToan": True, "payments recorded as paid": 1}
    ctx.expect(got == wanted and before_dossier.get("SoTienDaThanhToan") == payment.fee,
               f"the payment {payment.ma_tham_chieu} of dossier {payment.ma_ho_so}, reported again under a new "
               f"MaGiaoDich, was charged again: SoTienDaThanhToan {got['SoTienDaThanhToan']} for a fee of "
               f"{payment.fee}",
               expected=wanted, actual={**got, "before": before_dossier, "payments": after_payments,
                                        "sent": tried["sent"], "province_answer": came_back},
               reproduce=reproduce)
    answer = came_back["answer"]
    ma_loi = answer.get("MaLoi") if isinstance(answer, dict) else None
    return (f"success callback of {payment.ma_tham_chieu} re-sent with MaGiaoDich "
            f"{tried['sent']['callback'].get('MaGiaoDich')}: answered HTTP {came_back['status']}, MaLoi {ma_loi}; "
            f"dossier {payment.ma_ho_so} still paid once (SoTienDaThanhToan {got['SoTienDaThanhToan']} for a fee of "
            f"{payment.fee}, {len(before_payments)} payment(s) before, {len(after_payments)} after, 1 paid)")


@check("PAY-08", criterion="payment", severity="critical", requires=("payment",),
       title="A callback for a MaThamChieu the province never issued is refused",
       rule=f"{RULE}: MaThamChieu is the partner's reference; {CALLBACK_RULE}: MaLoi 03 unknown MaThamChieu "
            "(HTTP 404)",
       detects=("accepts-unknown-reference",))
def unknown_reference(ctx: CheckContext) -> str:
    """A validly signed callback (the platform's last one for a real payment, with its MaThamChieu replaced by
    one the province never issued) is refused: HTTP 4xx with MaLoi != "00" (the contract: 404, MaLoi 03);
    the real payment's dossier does not change."""
    payment = _start(ctx)
    _settle(ctx, payment, "failure")
    before = _state(ctx, payment)
    tried = _tamper(ctx, payment, "unknown-reference")
    came_back, sent = tried["province_answer"], tried["sent"]
    reproduce = _reproduce(payment, "unknown-reference")
    ctx.require_evidence(int(came_back["status"] is not None), 1, "answer to the callback for an unknown MaThamChieu",
                         reproduce=reproduce)
    unknown = sent["callback"].get("MaThamChieu")
    ctx.expect(tried["verdict"] is None,
               f"a validly signed callback for MaThamChieu {unknown}, which the province never issued, was "
               f"{tried['verdict']}",
               expected="HTTP 4xx with MaLoi != \"00\" (contract: HTTP 404, MaLoi 03)",
               actual={"sent": sent, "province_answer": came_back}, reproduce=reproduce)
    _expect_unchanged(ctx, payment, before, f"a callback for the unknown MaThamChieu {unknown}", [sent], reproduce)
    answer = came_back["answer"]
    return (f"validly signed callback for the unknown MaThamChieu {unknown} refused with HTTP {came_back['status']}, "
            f"MaLoi {answer.get('MaLoi') if isinstance(answer, dict) else None}; dossier {payment.ma_ho_so} of the "
            "real payment unchanged")
