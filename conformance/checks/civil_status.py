"""Civil-status interconnection (Decree 63/2024/NĐ-CP): the province's side of the two procedure groups.

Group 1 (birth registration + permanent residence registration + health-insurance card for a child under 6) and
group 2 (death registration + residence deregistration + funeral allowance) are filed once, on the interconnection
portal, and settled by three agencies. haicap plays the interconnection side — the Ministry of Justice's shared
civil-status system and the portal (contracts/civil-status.openapi.yaml, modelled: no public spec exists) — and
judges what the province does with one dossier of each group (set-up: civil_status_journey.py): it takes the dossier
in and sends it back as received (CIV-01); every status push carries every field in the contract's formats
(CIV-02), per component in the legal order (CIV-03); each result completes on its own and the composite closes only
with the last one (CIV-04); the composite state reaches NPSP through the sync (CIV-05); on-time registration is
free (CIV-06); the two interconnection endpoints refuse anyone without the credential (CIV-07). Groups,
components, statuses, their order and the fee rule are the contract's data (haicap/civil_status.py), never typed
here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from haicap.civil_status import (
    LIST_ITEM_REF,
    CivilStatusSpec,
    civil_status,
    order_violations,
    parse_lt,
    same_procedure,
)
from haicap.conformance.checks.civil_status_journey import Journey, journeys
from haicap.conformance.checks.sync import CLOCK_SKEW_MS, RESOLUTION_MS
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckFailure, check
from haicap.contract_registry import default_registry
from haicap.vn_time import describe_offset, whole_hours_off

REPRODUCE = ('POST <national>/_control/civil/send {"group": "1"}, then POST <national>/_control/civil/complete '
             '{"soHoSoLT": …, "component": …} per component; GET <national>/_ledger/civil/dossiers/<soHoSoLT>')
DECREE = "Decree 63/2024/NĐ-CP"


def _fail(problems: list[str], what: str, expected: Any, actual: Any) -> None:
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckFailure(f"{what}: " + "; ".join(problems[:3]) + more, expected=expected, actual=actual,
                           reproduce=REPRODUCE)


# -- pure judges (unit-tested) ----------------------------------------------------------------------
def receipt_defects(journey: Journey, validator: Any) -> list[str]:
    """What is wrong with how the province took a delivered dossier in and sent it back."""
    sent, group = journey.sent, journey.group
    where = f"group {group.id} ({group.module}) dossier {journey.so_ho_so_lt}"
    status, answer = sent.get("status_code"), sent.get("answer")
    if not journey.accepted:
        how = f"refused with HTTP {status}" if status else f"not answered ({sent.get('error') or 'no connection'})"
        return [f"{where} was {how} (expected 201)"]
    problems = []
    ack = {"maHoSo": journey.ma_ho_so, "soHoSoLT": journey.so_ho_so_lt, "accepted": True}
    wrong = [k for k, v in ack.items() if not isinstance(answer, dict) or answer.get(k) != v]
    if wrong:
        problems.append(f"{where}: the acknowledgement is wrong in {', '.join(wrong)}")
    received = journey.received()
    if not received:
        elsewhere = sorted({str(e["body"].get("id")) for e in journey.stray("received")})
        how = f" (a list item named its maHoSo under id {', '.join(elsewhere)})" if elsewhere else ""
        return [*problems, f"{where} was acknowledged but never sent back to the portal as taken in{how}"]
    for i, entry in enumerate(received):
        defects = list_item_defects(entry, journey, validator)
        if defects:
            which = "" if len(received) == 1 else f" (list item {i + 1} of {len(received)}: a re-send must name "
            which += "" if len(received) == 1 else "the same dossier)"
            problems.append(f"{where} sent back{which} with " + ", ".join(defects))
    return problems


def list_item_defects(entry: dict[str, Any], journey: Journey, validator: Any) -> list[str]:
    """What is wrong with one list item the province sent back: the contract's shape, the dossier it names (id,
    maHoSo, module, the group's lead maTTHC — with a local agency code after it too) and its ngayTiepNhan."""
    body, group = entry.get("body"), journey.group
    if not isinstance(body, dict):
        return ["not a JSON object"]
    defects = [f"{e['field']}: {e['message']}" for e in (v.as_problem_error() for v in validator.violations(body))]
    expected = {"id": journey.so_ho_so_lt, "maHoSo": journey.ma_ho_so, "module": group.module,
                "maTTHC": group.lead.maTTHC}
    defects += [f"{k} {body.get(k)!r} (expected {v!r})" for k, v in expected.items()
                if k in body and body.get(k) != v and not (k == "maTTHC" and same_procedure(body.get(k), v))]
    when = time_defect("ngayTiepNhan", body.get("ngayTiepNhan"), journey, entry.get("received_ms"))
    return defects + ([when] if when else [])


def _iso(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def push_defects(push: Any, journey: Journey, spec: CivilStatusSpec) -> list[str]:
    """Every field of one status push that is missing, empty, in the wrong format or naming the wrong dossier."""
    if not isinstance(push, dict):
        return ["the push is not a JSON object"]
    problems = []
    completed = spec.order.completed
    for name in spec.push_fields:
        value = push.get(name)
        if name not in push:
            problems.append(f"{name} missing")
        elif not isinstance(value, str):
            problems.append(f"{name} is {type(value).__name__}, not a string")
        elif value == "" and (name != "ketQuaXuLy" or push.get("trangThai") == completed):
            problems.append(f"{name} empty" + (" in a completed push (it carries the result)"
                                                if name == "ketQuaXuLy" else ""))
    when = push.get("thoiGianThucHien")
    if isinstance(when, str) and when and parse_lt(when) is None:
        kind = "ISO 8601" if _iso(when) else "not a date"
        problems.append(f"thoiGianThucHien {when!r} ({kind}; expected dd/MM/yyyy HH:mm:ss)")
    status = push.get("trangThai")
    if isinstance(status, str) and status and status not in spec.order.states:
        problems.append(f"trangThai {status!r} is not a status ({', '.join(spec.order.states)})")
    for name, value in (("soHoSoLT", journey.so_ho_so_lt), ("maHoSo", journey.ma_ho_so)):
        if isinstance(push.get(name), str) and push.get(name) and push[name] != value:
            problems.append(f"{name} {push[name]!r} (the dossier's is {value!r})")
    code = push.get("maTTHC")
    if isinstance(code, str) and code and journey.group.component(code) is None:
        problems.append(f"maTTHC {code!r} is not a component of group {journey.group.id} "
                        f"({', '.join(c.maTTHC for c in journey.group.components)})")
    return problems


def _code(journey: Journey, pushed: Any) -> Any:
    """The component's maTTHC a push names (its own, or with a local agency code after it); else as pushed."""
    component = journey.group.component(pushed) if isinstance(pushed, str) else None
    return component.maTTHC if component is not None else pushed


def _push_time(entry: dict[str, Any], journey: Journey) -> list[str]:
    body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
    found = time_defect("thoiGianThucHien", body.get("thoiGianThucHien"), journey, entry.get("received_ms"))
    return [found] if found else []


def stray_push_defects(accepted: list[Journey]) -> list[str]:
    """Pushes naming a dossier's maHoSo under another soHoSoLT: the portal cannot place them."""
    return [f"{j.group.module} push ({e['body'].get('maTTHC')} {e['body'].get('trangThai')}) names soHoSoLT "
            f"{e['body'].get('soHoSoLT')!r} (the dossier's is {j.so_ho_so_lt!r}): the portal cannot place it"
            for j in accepted for e in j.stray("pushes")]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def time_defect(name: str, value: Any, journey: Journey, arrived_ms: Any) -> str | None:
    """What is wrong with a dd/MM/yyyy HH:mm:ss time (NgayGioLT: Asia/Ho_Chi_Minh) the province sent about the
    dossier: it records something that happened after the portal delivered the dossier (or at the portal's own
    ngayTiepNhan, which a province may echo) and before the message carrying it arrived, each widened by the clock
    skew. A whole number of hours off is the time-zone error it is (a UTC clock written as Viet Nam time)."""
    moment = _ms(parse_lt(value))
    delivered = [m for m in (journey.sent.get("sent_ms"),
                             _ms(parse_lt((journey.sent.get("dossier") or {}).get("ngayTiepNhan"))))
                 if isinstance(m, int) and not isinstance(m, bool)]
    if moment is None or not delivered or not isinstance(arrived_ms, int):
        return None  # the format is judged elsewhere; without both bounds there is nothing to judge
    low, high = min(delivered) - CLOCK_SKEW_MS - RESOLUTION_MS, arrived_ms + CLOCK_SKEW_MS
    if low <= moment <= high:
        return None
    error = moment - (low if moment < low else high)
    hours = whole_hours_off(error, tolerance_ms=max(120_000, high - low))
    if hours is not None:
        return describe_offset(name, hours) + f" ({value})"
    if moment > high:
        return f"{name} {value} is {error / 1000:.0f} s after the portal received it"
    return f"{name} {value} is {-error / 1000:.0f} s before the portal delivered the dossier"


def component_sequences(journey: Journey) -> dict[str, list[tuple[str, datetime | None]]]:
    """Each component's pushes (status, time) in arrival order, keyed by the component's maTTHC."""
    sequences: dict[str, list[tuple[str, datetime | None]]] = defaultdict(list)
    for entry in journey.pushes():
        body = entry.get("body")
        if isinstance(body, dict) and isinstance(body.get("maTTHC"), str):
            sequences[_code(journey, body["maTTHC"])].append((str(body.get("trangThai")),
                                                             parse_lt(body.get("thoiGianThucHien"))))
    return dict(sequences)


def interleaved(journey: Journey) -> bool:
    """Whether pushes of one component were interleaved with another's (a must-accept case of CIV-03)."""
    codes = [_code(journey, e["body"].get("maTTHC")) for e in journey.pushes() if isinstance(e.get("body"), dict)]
    runs = [c for i, c in enumerate(codes) if i == 0 or codes[i - 1] != c]
    return len(runs) > len(set(runs))


def order_defects(journey: Journey, spec: CivilStatusSpec) -> list[str]:
    """Each component's pushes against the legal order, and every component of the group that got no push."""
    sequences = component_sequences(journey)
    gid = journey.group.id
    problems = [f"group {gid} {code}: {p}" for code, seq in sequences.items()
                for p in order_violations(spec.order, seq)]
    return problems + [f"group {gid} {c.maTTHC}: no push" for c in journey.group.components
                       if c.maTTHC not in sequences]


def completion_defects(journey: Journey, spec: CivilStatusSpec) -> list[str]:
    """Each result delivered must come back as that component's completed push carrying it, no component may be
    completed before its result was issued, and the composite must stay open until the last result."""
    group, completed = journey.group, spec.order.completed
    where = f"group {group.id} dossier {journey.ma_ho_so}"
    problems: list[str] = []
    issued: dict[str, int] = {}
    for done in journey.completions:
        issued[done.ma_tthc] = done.sent_ms
        if not (isinstance(done.status_code, int) and 200 <= done.status_code < 300):
            problems.append(f"{where}: the {done.component} result was answered HTTP {done.status_code}")
    for entry in journey.pushes():
        body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
        code = _code(journey, body.get("maTTHC"))
        if body.get("trangThai") == completed and code in issued and entry.get("received_ms", 0) < issued[code]:
            problems.append(f"{where}: {code} pushed completed before its result was issued")
        if body.get("trangThai") == completed and code not in issued:
            problems.append(f"{where}: {code} pushed completed although no result was issued for it")
    for done in journey.completions:
        matching = [e["body"] for e in journey.pushes() if isinstance(e.get("body"), dict)
                    and same_procedure(e["body"].get("maTTHC"), done.ma_tthc)
                    and e["body"].get("trangThai") == completed]
        label = group.component(done.component).label if group.component(done.component) else done.component
        if not matching:
            problems.append(f"{where}: the {done.component} result ({label}) never completed: no completed push "
                            "within the sync SLA after the last result")
        elif not any(_carries(m.get("ketQuaXuLy"), done.result) for m in matching):
            problems.append(f"{where}: the {done.component} completed push carries ketQuaXuLy "
                            f"{matching[-1].get('ketQuaXuLy')!r}, not the result issued ({done.result!r})")
        if not done.final and done.composite_after == spec.composite_closed:
            problems.append(f"{where}: closed (TrangThaiHoSo {spec.composite_closed}) with the {done.component} "
                            f"result while other results were still open")
    problems += _closed_early_at_npsp(journey, spec)
    return problems


def _carries(pushed: Any, issued: str) -> bool:
    """Whether a completed push's ketQuaXuLy carries the result issued: the same text, or a text containing it
    (a province may say "Đã cấp: <result>"); the contract fixes the field, not its wording."""
    return isinstance(pushed, str) and bool(issued.strip()) and issued.strip() in pushed


def _closed_early_at_npsp(journey: Journey, spec: CivilStatusSpec) -> list[str]:
    finals = [c.sent_ms for c in journey.completions if c.final]
    history = (journey.npsp or {}).get("history") or []
    closed = [h.get("received_ms", 0) for h in history if str(h.get("TrangThaiHoSo")) == spec.composite_closed]
    if finals and closed and min(closed) < finals[0]:
        return [f"group {journey.group.id} dossier {journey.ma_ho_so}: NPSP received the closed composite "
                f"({spec.composite_closed}) {finals[0] - min(closed)} ms before the last result was issued"]
    return []


#: DongBoHoSoMC DuocThanhToanTrucTuyen "1": paid online (sync.schema.json) — money taken for a free registration
PAID_ONLINE = "1"


def fee_defects(journey: Journey, spec: CivilStatusSpec) -> list[str]:
    """An on-time registration that reached NPSP with a fee, or that waited for a payment."""
    item = (journey.npsp or {}).get("item") or {}
    where = f"group {journey.group.id} ({journey.group.lead.label}) dossier {journey.ma_ho_so}"
    problems = []
    fees = item.get("DanhSachLePhi") or []
    charged = [f for f in fees if isinstance(f, dict) and _amount(f.get("Gia")) != spec.fee.get("onTimeAmount", 0)]
    if charged:
        problems.append(f"{where}: DanhSachLePhi charges " + ", ".join(
            f"{f.get('TenPhiLePhi') or f.get('MaPhiLePhi')} {f.get('Gia')}" for f in charged))
    owed = item.get("PhiPhaiNop")
    if owed is not None and _amount(owed) != spec.fee.get("onTimeAmount", 0):
        problems.append(f"{where}: PhiPhaiNop {owed!r} (an on-time registration owes nothing)")
    if str(item.get("DuocThanhToanTrucTuyen")) == PAID_ONLINE:
        problems.append(f"{where}: DuocThanhToanTrucTuyen {PAID_ONLINE} (paid online) for a registration that is "
                        "free")
    waits = [h for h in (journey.npsp or {}).get("history") or []
             if str(h.get("TrangThaiHoSo")) == spec.fee.get("paymentState", "6")]
    if waits:
        problems.append(f"{where}: waited for a payment (TrangThaiHoSo {spec.fee.get('paymentState', '6')})")
    return problems


def composite_sync_problems(states: list[str], spec: CivilStatusSpec, where: str, sla: float) -> list[str]:
    """What is wrong with one dossier's DongBoHoSoMC history at NPSP: it must show the composite open (any state of
    x-composite open: a province may sync 1, 2 or 4 first, or only one of them) before it shows it closed."""
    shown = " → ".join(states) or "none"
    if not states:
        return [f"{where}: nothing synced to NPSP"]
    closed = states.index(spec.composite_closed) if spec.composite_closed in states else len(states)
    problems = []
    if not any(s in spec.composite_open for s in states[:closed]):
        problems.append(f"{where}: NPSP never saw it open ({', '.join(spec.composite_open)}) before it closed "
                        f"(states {shown})")
    reopened = [s for s in states[closed + 1:] if s in spec.composite_open]
    if reopened:
        problems.append(f"{where}: reopened at NPSP ({', '.join(reopened)}) after it closed (states {shown}); "
                        f"all three results were issued")
    if spec.composite_closed not in states:
        problems.append(f"{where}: the closed composite ({spec.composite_closed}) did not reach NPSP within "
                        f"{sla:g} s of the last result (states {shown})")
    return problems


def _amount(value: Any) -> float | None:
    """A fee amount as a number: 0, 0.0, "0" and "0.00" are all zero."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _accepted(ctx: CheckContext) -> list[Journey]:
    done = journeys(ctx)
    return [j for j in done if j.accepted]


def _groups(spec: CivilStatusSpec) -> str:
    return " and ".join(f"group {g.id} ({g.module})" for g in spec.groups.values())


# -- checks -----------------------------------------------------------------------------------------
@check("CIV-01", criterion="civil_status", severity="critical",
       title="An interconnected dossier of each group is taken in from the portal and sent back as received",
       rule="Decree 63/2024/NĐ-CP (groups 1 and 2 filed once on the interconnection portal); contracts/"
            "civil-status.openapi.yaml POST /lienthong/dossiers (province: 201 DossierAck) and POST "
            "/lienthong/dossiers (portal: DossierListItem); civil_status.schema.json",
       requires=("civil_status",), detects=("civil-loses-portal-dossier", "civil-refuses-death-group"))
def dossier_taken_in(ctx: CheckContext) -> str:
    """The portal delivers a birth (LTKS) and a death (LTKT) dossier, each with an extra field the province must
    accept: each is acknowledged 201 with its maHoSo and soHoSoLT, and sent back to the portal as a valid list item
    {id, maDonVi, maTTHC, module, maHoSo, ngayTiepNhan} naming the same dossier."""
    spec = civil_status()
    done = journeys(ctx)
    answered = [j for j in done if j.sent.get("status_code") is not None]
    ctx.require_evidence(len(answered), len(spec.groups), "answers to delivered interconnected dossiers",
                         reproduce=REPRODUCE)
    validator = default_registry().validator(LIST_ITEM_REF)
    problems = [p for j in done for p in receipt_defects(j, validator)]
    _fail(problems, "interconnected dossiers not taken in properly",
          expected="201 {maHoSo, soHoSoLT, accepted: true}, then a DossierListItem sent back to the portal",
          actual=[{"group": j.group.id, "status": j.sent.get("status_code"), "answer": j.sent.get("answer"),
                   "sent_back": [r.get("body") for r in j.received()]} for j in done])
    return (f"{_groups(spec)} dossiers ({', '.join(j.ma_ho_so for j in done)}) acknowledged "
            f"(HTTP {', '.join(str(j.sent['status_code']) for j in done)}, an extra field accepted) and sent back "
            f"as valid list items")


@check("CIV-02", criterion="civil_status", severity="critical",
       title="Every status push carries every field, with dates as dd/MM/yyyy HH:mm:ss",
       rule="contracts/civil-status.openapi.yaml POST /lienthong/trang-thai; civil_status.schema.json StatusPush "
            "and NgayGioLT (dd/MM/yyyy HH:mm:ss); Decree 63/2024/NĐ-CP (status of each procedure reported to the "
            "interconnection portal)",
       requires=("civil_status",), detects=("civil-push-missing-field", "civil-push-iso-dates"))
def push_fields(ctx: CheckContext) -> str:
    """Each push of both dossiers has maTTHC, soHoSoLT, maHoSo, trangThai, thoiGianThucHien, nguoiXuLy,
    noiDungXuLy and ketQuaXuLy (non-empty; ketQuaXuLy may be empty except in a completed push), the time as
    dd/MM/yyyy HH:mm:ss (ISO 8601 is named as such) in Viet Nam time between the delivery and the push's arrival
    (± clock skew; a UTC clock is named), a status of the contract, the dossier's own codes (a push under another
    soHoSoLT is named) and a component of its group (its maTTHC, also with a local agency code after it). Extra
    fields are accepted."""
    spec = civil_status()
    accepted = _accepted(ctx)
    pushes = [(j, e) for j in accepted for e in [*j.pushes(), *j.stray("pushes")]]
    owed = sum(len(j.group.components) * len(spec.order.path_to(spec.order.completed)) for j in accepted)
    ctx.require_evidence(len(pushes), max(owed, 1), "status pushes owed for the two interconnected dossiers",
                         reproduce=REPRODUCE)
    problems = [f"{j.group.module} push {i + 1} ({(e.get('body') or {}).get('maTTHC')} "
                f"{(e.get('body') or {}).get('trangThai')}): {d}"
                for j in accepted for i, e in enumerate(j.pushes())
                for d in [*push_defects(e.get("body"), j, spec), *_push_time(e, j)]]
    problems = stray_push_defects(accepted) + problems
    _fail(problems, "status pushes not in the contract's shape",
          expected={"fields": list(spec.push_fields), "thoiGianThucHien": "dd/MM/yyyy HH:mm:ss"},
          actual=[e.get("body") for _, e in pushes[:6]])
    extra = sorted({k for _, e in pushes if isinstance(e.get("body"), dict) for k in e["body"]} - set(spec.push_fields))
    return (f"{len(pushes)} pushes over {_groups(spec)}, each with all {len(spec.push_fields)} fields and "
            f"dd/MM/yyyy HH:mm:ss times" + (f" (extra fields accepted: {', '.join(extra)})" if extra else ""))


@check("CIV-03", criterion="civil_status", severity="critical",
       title="Each component's status pushes arrive in the legal order",
       rule="civil_status.schema.json x-status-order (received → processing → completed or refused, nothing after "
            "a terminal status, thoiGianThucHien never back in time); Decree 63/2024/NĐ-CP (each procedure of the "
            "group settled in its own sequence)",
       requires=("civil_status",), detects=("civil-pushes-out-of-order",))
def push_order(ctx: CheckContext) -> str:
    """Per component of both dossiers (pushes of different components may interleave): the first push is the
    initial status, every next one a step the order allows (a repeat is a retry), none after a terminal status,
    and times never go back; every component is pushed."""
    spec = civil_status()
    accepted = _accepted(ctx)
    sequences = {(j.group.id, code): seq for j in accepted for code, seq in component_sequences(j).items()}
    # the evidence is the pushes themselves: a province that pushed, but never for some component (or only under
    # another component's maTTHC), fails with "no push" instead of hiding behind "too little to judge"
    ctx.require_evidence(sum(bool(j.pushes()) for j in accepted), max(len(accepted), 1),
                         "interconnected dossiers with status pushes", reproduce=REPRODUCE)
    problems = [p for j in accepted for p in order_defects(j, spec)]
    _fail(problems, "status pushes out of the legal order",
          expected={"initial": spec.order.initial, "next": spec.order.next},
          actual={f"{g} {code}": [s for s, _ in seq] for (g, code), seq in sequences.items()})
    mixed = sum(interleaved(j) for j in accepted)
    shown = ", ".join(" → ".join(s for s, _ in seq) for seq in list(sequences.values())[:2])
    return (f"{len(sequences)} components in order ({shown} …); pushes of different components interleaved in "
            f"{mixed} of {len(accepted)} dossiers")


@check("CIV-04", criterion="civil_status", severity="critical",
       title="Each of the three results completes on its own, in any order; the composite closes with the last",
       rule="Decree 63/2024/NĐ-CP (group 1: birth extract, residence registration, health-insurance card, group 2: "
            "death extract, residence deregistration, funeral allowance — each issued by its own agency); "
            "civil_status.schema.json x-composite; contracts/civil-status.openapi.yaml POST /lienthong/ket-qua",
       requires=("civil_status",), detects=("civil-closes-on-first-result", "civil-component-never-completes"))
def results_complete_independently(ctx: CheckContext) -> str:
    """The agencies issue the three results of each dossier one at a time, neither group starting with the
    civil-status extract and the two dossiers interleaved: each result comes back as that component's completed
    push carrying the result issued (its text, perhaps worded around), no component is completed before its
    result, and the composite stays open (back office and NPSP) until the last result."""
    spec = civil_status()
    accepted = _accepted(ctx)
    issued = [c for j in accepted for c in j.completions]
    owed = sum(len(j.group.components) for j in accepted)
    ctx.require_evidence(len(issued), max(owed, 1), "component results issued", reproduce=REPRODUCE)
    problems = [p for j in accepted for p in completion_defects(j, spec)]
    _fail(problems, "component results not completed independently",
          expected="a completed push per result, carrying it; the composite closed only with the last result",
          actual=[{"group": j.group.id, "results": [(c.component, c.status_code, c.composite_after)
                                                    for c in j.completions]} for j in accepted])
    orders = "; ".join(f"group {j.group.id}: " + " → ".join(c.component for c in j.completions) for j in accepted)
    return f"{len(issued)} results each completed on its own ({orders}); composites open until the last result"


@check("CIV-05", criterion="civil_status", severity="critical",
       title="The composite state of the interconnected dossier reaches NPSP through the sync",
       rule="Decree 63/2024/NĐ-CP (the settlement of the interconnected procedures is published on the national "
            "portal); contracts/national-sync.openapi.yaml DongBoHoSoMC; civil_status.schema.json x-composite",
       requires=("civil_status", "sync"), detects=("civil-composite-not-synced",))
def composite_synced(ctx: CheckContext) -> str:
    """Each dossier's DongBoHoSoMC history in the national ledger shows it open (states of x-composite open) after
    its creation, and closed once all three results completed, within the sync SLA."""
    spec = civil_status()
    accepted = _accepted(ctx)
    ctx.require_evidence(len(accepted), len(spec.groups), "interconnected dossiers taken in", reproduce=REPRODUCE)
    sla = ctx.target.sync_sla_seconds
    problems = [p for j in accepted
                for p in composite_sync_problems([str(h.get("TrangThaiHoSo")) for h in
                                                  (j.npsp or {}).get("history") or []],
                                                 spec, f"group {j.group.id} dossier {j.ma_ho_so}", sla)]
    _fail(problems, "composite state of interconnected dossiers not synchronised",
          expected=f"DongBoHoSoMC history: open states {', '.join(spec.composite_open)}, then {spec.composite_closed}",
          actual={j.ma_ho_so: [h.get("TrangThaiHoSo") for h in (j.npsp or {}).get("history") or []]
                  for j in accepted})
    return "; ".join(f"group {j.group.id} {j.ma_ho_so} at NPSP: "
                     + " → ".join(str(h.get("TrangThaiHoSo")) for h in (j.npsp or {}).get("history") or [])
                     for j in accepted)


@check("CIV-06", criterion="civil_status", severity="major",
       title="On-time birth and death registration through the interconnection charges no fee",
       rule="Law on Civil Status 2014 Art. 11 (on-time birth and death registration exempt from fees); "
            "Decree 63/2024/NĐ-CP (fees of the interconnected procedures); civil_status.schema.json x-fee",
       requires=("civil_status", "sync"), detects=("civil-fee-on-time",))
def on_time_registration_free(ctx: CheckContext) -> str:
    """Both dossiers are registered on time (dangKyDungHan true): the DongBoHoSoMC item the province syncs has no
    fee (DanhSachLePhi empty or every Gia 0 — a listed fee of 0 is accepted) and never waits for a payment."""
    spec = civil_status()
    accepted = [j for j in _accepted(ctx) if j.npsp and j.npsp.get("item")]
    ctx.require_evidence(len(accepted), len(spec.groups), "synced interconnected dossiers", reproduce=REPRODUCE)
    problems = [p for j in accepted for p in fee_defects(j, spec)]
    _fail(problems, "on-time registration charged",
          expected="no fee: DanhSachLePhi empty or every Gia 0, no TrangThaiHoSo 6",
          actual={j.ma_ho_so: (j.npsp or {}).get("item", {}).get("DanhSachLePhi") for j in accepted})
    return f"{len(accepted)} on-time registrations ({_groups(spec)}) synced without a fee or a payment wait"


#: CIV-07's requests without the interconnection credential (RFC 6750 §3.1: missing, invalid, malformed token) and
#: the refusals each may get: a malformed Authorization header is an ``invalid_request``, which RFC 6750 §3.1
#: answers 400 — as legitimate a refusal as 401
CREDENTIAL_CASES: tuple[tuple[str, dict[str, str], tuple[int, ...]], ...] = (
    ("no Authorization header", {}, (401,)),
    ("a wrong Bearer token", {"Authorization": "Bearer haicap-not-the-interconnection-credential"}, (401,)),
    ("a Bearer scheme without a token", {"Authorization": "Bearer"}, (401, 400)),
)


def _unsolicited(journey: Journey, ctx: CheckContext) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, what, body) of CIV-07: a delivery the portal never made (a fresh maHoSo and id, otherwise like the
    journey's dossier) and a forged result for the journey's dossier (its social-insurance component)."""
    rng = ctx.rng("CIV-07")
    head = journey.ma_ho_so.rsplit("-", 1)[0]
    dossier = {**(journey.sent.get("dossier") or {}), "id": f"{journey.so_ho_so_lt}-forged",
               "maHoSo": f"{head}-{rng.randrange(1, 10_000):04d}"}
    component = journey.group.components[-1]
    result = {"soHoSoLT": journey.so_ho_so_lt, "maHoSo": journey.ma_ho_so, "maTTHC": component.maTTHC,
              "ketQuaXuLy": f"{component.result} giả mạo", "thoiGianThucHien": dossier.get("ngayTiepNhan", "")}
    return [("/lienthong/dossiers", "a dossier delivery", dossier), ("/lienthong/ket-qua", "a component result",
                                                                      result)]


def credential_verdict(status: int | None, refused: tuple[int, ...] = (401,)) -> str | None:
    """None when refused as the contract and RFC 6750 §3.1 allow (``refused``); else what happened."""
    if status in refused:
        return None
    expected = " or ".join(str(s) for s in refused)
    if status is None:
        return "not answered"
    if 200 <= status < 300:
        return f"accepted (HTTP {status}; expected {expected})"
    return f"refused with HTTP {status} (expected {expected})"


@check("CIV-07", criterion="civil_status", severity="critical",
       title="Deliveries and component results without the interconnection credential are refused with 401",
       rule="RFC 6750 §3.1 (missing or invalid bearer token → 401); contracts/civil-status.openapi.yaml security "
            "lienthong (POST /lienthong/dossiers and POST /lienthong/ket-qua: 401)",
       requires=("civil_status",), detects=("civil-unauthenticated-interconnection",))
def interconnection_requires_credential(ctx: CheckContext) -> str:
    """POST an unsolicited interconnected dossier and a forged result (a health-insurance card nobody issued) for
    the run's birth dossier with no Authorization header, a wrong Bearer token and the Bearer scheme without a
    token: each answered 401 (the malformed header 401 or 400, RFC 6750 §3.1 invalid_request); with the officer
    API, the unsolicited dossier was not created."""
    accepted = _accepted(ctx)
    ctx.require_evidence(len(accepted), 1, "interconnected dossiers taken in (to forge requests for)",
                         reproduce=REPRODUCE)
    requests = _unsolicited(accepted[0], ctx)
    wrong, answers = [], []
    for path, what, body in requests:
        for label, headers, refused in CREDENTIAL_CASES:
            response = ctx.province.port.request("POST", path, json=body, headers=headers,
                                                 name="interconnection without credential")
            answers.append(response.status_code)
            verdict = credential_verdict(response.status_code, refused)
            if verdict is not None:
                wrong.append(f"{what} with {label} was {verdict}")
    ctx.require_evidence(len(answers), len(requests) * len(CREDENTIAL_CASES), "answers without the credential")
    created = "not checked (no officer API declared)"
    if "officer_api" in ctx.target.capabilities and ctx.target.officer_token:
        forged = requests[0][2]["maHoSo"]
        stored = ctx.province.officer_dossier(forged).status_code
        if stored != 404:
            wrong.append(f"the unsolicited dossier {forged} exists after the refused delivery (officer GET → "
                         f"HTTP {stored})")
        created = f"the unsolicited dossier not created (officer GET → HTTP {stored})"
    _fail(wrong, "interconnection requests without the credential not refused",
          expected="401 for every request without the province's interconnection credential (400 also for a "
                   "malformed Authorization header, RFC 6750 §3.1 invalid_request)",
          actual={"answers": answers, "paths": [p for p, _, _ in requests]})
    return (f"{len(answers)} requests without the credential ({len(requests)} endpoints × {len(CREDENTIAL_CASES)} "
            f"ways) refused ({', '.join(sorted({str(a) for a in answers}))}); {created}")
