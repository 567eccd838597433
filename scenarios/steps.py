"""The built-in scenario steps: each one action of a citizen, an officer or the national portal.

A step does the action through the province client, asserts only what the action itself promises (a 201
with a MaHoSo, a 200 with the new status), and leaves the journey's state (session, dossier, payment) in
``ctx.state`` for the next step. Deeper judgement (contract shape, sync fields, timing) belongs to checks.
In load mode ``expect_synced`` does not poll: it records an expectation the integrity check verifies after
the run, so waiting never throttles the load.

Capabilities: ``submission_channel`` (derived) brings a dossier in — the citizen submission API (``submission``)
or a national forward; the signed-in citizen's own look-up, supplement and withdrawal of its dossier need only
``sso`` (a province whose submission moved to the national portal keeps its citizen pages); officer actions need
``back_office`` (derived: any back office of the profile).
"""

from __future__ import annotations

import time
from typing import Any

from haicap.contract_registry import default_registry
from haicap.dossier_states import state_machine
from haicap.http_port import ResponseLike
from haicap.province_client import LoginFailed
from haicap.scenarios.engine import ScenarioContext, StepFailed, step

_REGISTRY = default_registry()
_ACTIONS = _REGISTRY.schema("dossier.schema.json#/$defs/OfficerAction/properties/action")["enum"]
_STATUSES = _REGISTRY.enum("common.schema.json#/$defs/TrangThaiHoSo")
_MACHINE = state_machine(_REGISTRY)  # the contract's transition table: where each action leads
_MATTHC_PATTERN = _REGISTRY.schema("common.schema.json#/$defs/MaTTHC")["pattern"]


def _body(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _expect_status(response: ResponseLike, expected: int, what: str) -> Any:
    if response.status_code != expected:
        raise StepFailed(f"{what}: expected HTTP {expected}, got {response.status_code}",
                         expected=expected, actual={"status": response.status_code, "body": _body(response)})
    return _body(response)


@step("sso_login", params={"properties": {"citizen": {"enum": ["new", "same"], "default": "new"}}},
      requires=("sso",))
def sso_login(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """Sign a test citizen in through the national identity provider; the province returns a session."""
    if params.get("citizen", "new") == "new" or "citizen" not in ctx.state:
        ctx.state["citizen"] = ctx.data.citizen()
    cccd = ctx.state["citizen"]["SoDinhDanh"]
    try:
        session = ctx.province.login(cccd)
    except LoginFailed as exc:
        actual = None if exc.response is None else {"status": exc.response.status_code, "body": _body(exc.response)}
        raise StepFailed(f"single sign-on failed: {exc}", expected="a province session", actual=actual) from None
    if session.claims.get("SoDinhDanh") != cccd:
        raise StepFailed("the province session does not carry the signed-in citizen's SoDinhDanh",
                         expected=cccd, actual=session.claims.get("SoDinhDanh"))
    ctx.state["session"] = session


@step("submit_dossier", params={
    "required": ["procedure"],
    "properties": {
        "procedure": {"type": "string", "pattern": _MATTHC_PATTERN},
        "commune": {"type": "string", "pattern": "^([0-9]{5}|any|next)$", "default": "any"},
    },
}, requires=("submission_channel",))
def submit_dossier(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """Submit a dossier for a procedure in a commune (``any``: drawn from the data; ``next``: coverage order),
    through the submission channel: the citizen API, or a national forward when the province has no submission
    API."""
    session = ctx.get("session", "submit_dossier")
    commune = params.get("commune", "any")
    if commune == "next":
        index = ctx.state.get("commune_index", 0)
        commune = ctx.communes[index % len(ctx.communes)] if ctx.communes else "any"
        ctx.state["commune_index"] = index + 1
    payload = ctx.data.submission(params["procedure"], None if commune == "any" else commune, ctx.state["citizen"])
    body = _expect_status(ctx.channel().submit(session, payload), 201, "submit dossier")
    if not isinstance(body, dict) or not body.get("MaHoSo"):
        raise StepFailed("the 201 answer carries no MaHoSo", expected="a Dossier with MaHoSo", actual=body)
    ctx.state.update(dossier=body, ma_ho_so=body["MaHoSo"], submission=payload)


@step("officer_action", params={
    "required": ["action"],
    "properties": {"action": {"enum": _ACTIONS}, "NoiDungXuLy": {"type": "string"}},
}, requires=("back_office",))
def officer_action(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """An officer moves the dossier (receive, process, request-supplement, complete, return-result …), through
    the run's back office (the officer API, a guided operator or a vendor's plugin: haicap/back_office.py)."""
    ma_ho_so = ctx.get("ma_ho_so", "officer_action")
    extra = {"NoiDungXuLy": params["NoiDungXuLy"]} if "NoiDungXuLy" in params else {}
    body = _expect_status(ctx.province.officer_action(ma_ho_so, params["action"], **extra), 200,
                          f"officer {params['action']} on {ma_ho_so}")
    ctx.state["dossier"] = _expect_moved(body, params["action"], ma_ho_so)


def _expect_moved(body: Any, action: str, ma_ho_so: str) -> Any:
    """The 200 answer of an action shows the dossier in the state the contract's table leads it to."""
    target = _MACHINE.transition(action).target
    state = body.get("TrangThaiHoSo") if isinstance(body, dict) else None
    if str(state) != target:
        raise StepFailed(f"after {action} dossier {ma_ho_so} is in state {state}, not {target}", expected=target,
                         actual=state)
    return body


@step("expect_status", params={"required": ["status"], "properties": {"status": {"enum": _STATUSES}}},
      requires=("sso",))
def expect_status(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The citizen sees the dossier in the given TrangThaiHoSo."""
    ma_ho_so = ctx.get("ma_ho_so", "expect_status")
    session = ctx.state.get("session")
    response = ctx.province.dossier(session, ma_ho_so) if session else ctx.province.officer_dossier(ma_ho_so)
    body = _expect_status(response, 200, f"get dossier {ma_ho_so}")
    if str(body.get("TrangThaiHoSo")) != params["status"]:
        raise StepFailed(f"dossier {ma_ho_so} is not in status {params['status']}",
                         expected=params["status"], actual=body.get("TrangThaiHoSo"))


@step("expect_synced", params={
    "required": ["status"],
    "properties": {
        "status": {"enum": _STATUSES},
        "within": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "paid": {"type": "boolean"},
    },
}, requires=("sync",))
def expect_synced(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The national side has received the dossier in this status within ``within`` s (default: the SLA)."""
    ma_ho_so = ctx.get("ma_ho_so", "expect_synced")
    within = float(params.get("within", ctx.sync_sla_seconds))
    if ctx.mode == "load":
        ctx.sync_expectations.append((ma_ho_so, params["status"], time.time() + within, within))
        return
    if ctx.national is None:
        raise StepFailed("the national counterpart's ledger is not reachable", expected="a ledger", actual=None)
    record = ctx.national.wait_for_status(ma_ho_so, params["status"], within)
    seen = [h.get("TrangThaiHoSo") for h in (record or {}).get("history", [])]
    if params["status"] not in [str(s) for s in seen]:
        raise StepFailed(f"status {params['status']} of {ma_ho_so} did not reach the national side within {within:g}s",
                         expected=params["status"], actual={"statuses_received": seen})
    paid_flag = (record or {}).get("item", {}).get("DuocThanhToanTrucTuyen")
    if params.get("paid") and str(paid_flag) != "1":
        raise StepFailed(f"the paid flag of {ma_ho_so} did not reach the national side",
                         expected={"DuocThanhToanTrucTuyen": "1"}, actual={"DuocThanhToanTrucTuyen": paid_flag})


@step("pay", params={"properties": {"result": {"enum": ["success", "failure"], "default": "success"},
                                    "within": {"type": "number", "exclusiveMinimum": 0, "maximum": 600}}},
      requires=("payment",))
def pay(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """Start the online payment, pay (or fail to) on the national platform, see the dossier's paid flag."""
    ma_ho_so = ctx.get("ma_ho_so", "pay")
    session = ctx.get("session", "pay")
    started = _expect_status(ctx.province.start_payment(session, ma_ho_so), 201, f"start payment of {ma_ho_so}")
    ctx.state["payment"] = started
    result = params.get("result", "success")
    paid_page = ctx.province.pay(started["UrlThanhToan"], result)
    if paid_page.status_code >= 400:
        raise StepFailed("the national payment page refused the payment", expected="2xx",
                         actual={"status": paid_page.status_code, "body": _body(paid_page)})
    # the payment settles when the province has processed the callback: its payment leaves "pending"
    reference = started.get("MaThamChieu")
    deadline = time.monotonic() + float(params.get("within", 10))
    while True:
        listed = _expect_status(ctx.province.payments(session, ma_ho_so), 200, f"list payments of {ma_ho_so}")
        items = listed.get("items", listed) if isinstance(listed, dict) else listed
        mine = next((p for p in items or [] if p.get("MaThamChieu") == reference), None)
        if mine is not None and mine.get("TrangThai") != "pending":
            break
        if time.monotonic() > deadline:
            raise StepFailed(f"payment {reference} of {ma_ho_so} is still pending after the {result} callback",
                             expected="paid or failed", actual=mine)
        time.sleep(0.05)
    body = _expect_status(ctx.province.dossier(session, ma_ho_so), 200, f"get dossier {ma_ho_so}")
    want_paid = result == "success"
    if bool(body.get("DaThanhToan")) != want_paid or mine.get("TrangThai") != ("paid" if want_paid else "failed"):
        raise StepFailed(f"after a {result} payment dossier {ma_ho_so} shows DaThanhToan={body.get('DaThanhToan')!r}",
                         expected={"DaThanhToan": want_paid, "TrangThai": "paid" if want_paid else "failed"},
                         actual={"DaThanhToan": body.get("DaThanhToan"), "TrangThai": mine.get("TrangThai")})
    ctx.state["dossier"] = body


@step("supplement", params={"properties": {"GhiChu": {"type": "string"}}}, requires=("sso",))
def supplement(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The citizen supplies the requested documents (5 → 4)."""
    ma_ho_so = ctx.get("ma_ho_so", "supplement")
    session = ctx.get("session", "supplement")
    documents = ctx.state.get("submission", {}).get("TaiLieuNop") or []
    body = {"TaiLieuNop": documents[:1] or [_placeholder_document()], **params}
    answer = _expect_status(ctx.province.supplement(session, ma_ho_so, body), 200, f"supplement {ma_ho_so}")
    ctx.state["dossier"] = _expect_moved(answer, "supplement", ma_ho_so)


def _placeholder_document() -> dict[str, Any]:
    return {"TepDinhKemId": "bo-sung-1", "TenTepDinhKem": "bo-sung.pdf", "IsDeleted": False,
            "MaThanhPhanHoSo": "BS", "DuongDanTaiTepTin": "/files/bo-sung-1", "DuocSoHoa": "0",
            "DuocTaiSuDung": "0"}  # sync.schema.json#/$defs/TaiLieuNopItem: "0" | "1"


@step("withdraw", params={"properties": {"LyDo": {"type": "string", "minLength": 1}}}, requires=("sso",))
def withdraw(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The citizen withdraws the dossier (→ 7)."""
    ma_ho_so = ctx.get("ma_ho_so", "withdraw")
    session = ctx.get("session", "withdraw")
    body = _expect_status(ctx.province.withdraw(session, ma_ho_so, {"LyDo": params.get("LyDo", "Công dân rút hồ sơ")}),
                          200, f"withdraw {ma_ho_so}")
    ctx.state["dossier"] = _expect_moved(body, "withdraw", ma_ho_so)


@step("forward_from_national", params={"properties": {"MaXa": {"type": "string", "pattern": "^[0-9]{5}$"}}},
      requires=("forwarding",))
def forward_from_national(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The national portal forwards a dossier submitted there; the province must acknowledge it."""
    if ctx.national is None:
        raise StepFailed("the national counterpart is not reachable", expected="a counterpart", actual=None)
    answer = ctx.national.forward_dossier(**params)
    # the counterpart reports the province's HTTP answer as {"status_code", "answer", "error", ...}
    ack = answer.get("answer") if isinstance(answer, dict) else None
    status = answer.get("status_code") if isinstance(answer, dict) else None
    if not isinstance(ack, dict) or not ack.get("acknowledged") or not ack.get("MaHoSo"):
        raise StepFailed("the province did not acknowledge the forwarded dossier",
                         expected={"status_code": 201, "acknowledged": True},
                         actual={"status_code": status, "answer": ack, "error": answer.get("error")})
    ctx.state.update(ma_ho_so=ack["MaHoSo"], forwarded=answer)
    ctx.state.pop("session", None)  # the forwarded dossier belongs to a citizen of the national portal


@step("cover_communes", params={
    "required": ["procedure"],
    "properties": {"procedure": {"type": "string", "pattern": _MATTHC_PATTERN}},
}, requires=("submission_channel",))
def cover_communes(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """Submit one dossier in every commune, ward and special zone of the province (through the submission
    channel); each must be accepted."""
    session = ctx.get("session", "cover_communes")
    refused: dict[str, Any] = {}
    accepted: list[str] = []
    for commune in ctx.communes:
        payload = ctx.data.submission(params["procedure"], commune, ctx.state["citizen"])
        response = ctx.channel().submit(session, payload, name="submit dossier (coverage)")
        if response.status_code == 201:
            accepted.append(response.json()["MaHoSo"])
        else:
            refused[commune] = {"status": response.status_code, "body": _body(response)}
    ctx.state["coverage"] = {"accepted": accepted, "refused": refused}
    if not ctx.communes:
        raise StepFailed("no commune list for the province", expected="the official commune list", actual=[])
    if refused:
        first = dict(list(refused.items())[:5])
        raise StepFailed(f"{len(refused)} of {len(ctx.communes)} communes refused a valid submission",
                         expected="201 in every commune", actual=first)


from haicap.scenarios import axis_steps as _axis_steps  # noqa: E402,F401  (document axis steps)
from haicap.scenarios import civil_steps as _civil_steps  # noqa: E402,F401  (registers the civil-status steps)
