"""The National Document Interconnection Axis (edXML, QCVN 102:2016/BTTTT) and the agency-code directory.

haicap plays the axis (``sandbox/national/axis.py``, contract ``contracts/national-axis.openapi.yaml`` and
``contracts/schemas/axis.schema.json``). It delivers documents to the province and records every status message
the province sends; it receives the province's documents, answers them as the recipient (01, 03, 06) and judges
their agency codes against its directory. The rules (status codes, legal order, formats, element names) are
read from the contract through ``haicap/axis_contract.py``; the packages come from ``haicap/edxml.py``.

Checks AXIS-01 … AXIS-10: acknowledgement (01 then 03) within the SLA; every malformed kind answered 02 with a
reason and never a crash; the must-accept variants accepted; one DocumentId processed once; the legal status
order (every forbidden step refused, a forward skip 03 → 06 accepted); current agency codes of the right level
in sent documents; DocumentId and timestamp formats; the new code used after a directory change; every sent
document reaching a final status; a recall (13) answered 15 or 16.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from haicap.axis_client import AxisClient, OfficerAxis
from haicap.axis_contract import AxisContract, axis_contract
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, check
from haicap.edxml import ACCEPT_VARIANTS, MALFORMED_VARIANTS

__all__ = ["acknowledgement_problems", "code_findings", "delivered_sequence"]

_RULE = "QCVN 102:2016/BTTTT (edXML)"
_SHOWN = 6


# -- pure helpers (tests/test_axis.py) ---------------------------------------------------------------
def delivered_sequence(answer_code: str | None, pushed: Sequence[str]) -> list[str]:
    """The statuses the province gave one delivered document: the answer's, then the pushed ones (a 01 pushed
    again after a 01 answer counts once)."""
    sequence = [answer_code] if answer_code else []
    rest = list(pushed)
    if rest and sequence and rest[0] == sequence[0]:
        rest = rest[1:]
    return sequence + rest


def acknowledgement_problems(sequence: Sequence[str], contract: AxisContract) -> list[str]:
    """Why ``sequence`` does not start with the contract's acknowledgement (01 then 03), or []."""
    ack = list(contract.acknowledge)
    if sequence[: len(ack)] == ack:
        return []
    if not sequence:
        return ["no status at all"]
    labels = " → ".join(contract.label(c) for c in sequence)
    if sequence[0] != ack[0]:
        return [f"the first status is {labels.split(' → ')[0]}, not {contract.label(ack[0])}"]
    return [f"only {labels}: {contract.label(ack[1])} never followed"]


def code_findings(role: str, organ: str, entry: dict[str, Any] | None, *, province: str, level: str,
                  ma_xa: str | None = None) -> list[str]:
    """What is wrong with ``organ`` as the ``role`` (From/To) of a document: the directory entry must be active,
    of the province (for its own agencies), of the expected ``level`` and, for a commune, of ``ma_xa``."""
    if entry is None:
        return [f"{role} {organ} is not in the axis' agency directory"]
    findings: list[str] = []
    if not entry.get("Active"):
        what = ("a pre-merger district People's Committee code, retired on 1 July 2025"
                if entry.get("Level") == "district" else "a retired code")
        findings.append(f"{role} {organ} is {what}" + (f" (now {entry['ReplacedBy']})" if entry.get("ReplacedBy")
                                                         else ""))
    if level in ("province", "commune") and entry.get("MaTinh") != province:
        findings.append(f"{role} {organ} is an agency of province {entry.get('MaTinh')}, not of {province}")
    if entry.get("Level") != level and entry.get("Active"):
        findings.append(f"{role} {organ} is a {entry.get('Level')}-level agency, expected the {level} level")
    if ma_xa and entry.get("MaXa") not in (None, ma_xa) and entry.get("Active"):
        findings.append(f"{role} {organ} is the agency of commune {entry.get('MaXa')}, not of {ma_xa}")
    return findings


def to_findings(tos: Sequence[str], codes: dict[str, Any], want: tuple[str, str | None],
                province: str) -> list[str]:
    """The recipients of a sent document: one of them is the agency asked for (the level, the commune); a further
    recipient (a copy to another agency, the sender itself) only needs to be an active code of the directory."""
    level, ma_xa = want
    judged = [code_findings("To", o, codes.get(o), province=province, level=level, ma_xa=ma_xa) for o in tos]
    if not tos or all(judged):
        return [f for found in judged for f in found] or ["the document names no To/OrganId"]
    others: list[str] = []
    for organ, found in zip(tos, judged, strict=True):
        entry = codes.get(organ)
        if found and (entry is None or not entry.get("Active")):
            others += code_findings("To", organ, entry, province=str((entry or {}).get("MaTinh")),
                                    level=str((entry or {}).get("Level")))
    return others


def _summary(items: Sequence[str]) -> str:
    return "; ".join(items[:_SHOWN]) + (f"; … (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


# -- shared set-up -----------------------------------------------------------------------------------
def _axis(ctx: CheckContext) -> AxisClient:
    return ctx.shared("axis:client", lambda: AxisClient(ctx.national))


def _officer(ctx: CheckContext) -> OfficerAxis:
    return ctx.shared("axis:officer", lambda: OfficerAxis(ctx.target.province_url, ctx.target.officer_token))


def _reproduce(ctx: CheckContext, kind: str) -> str:
    return (f"POST {ctx.target.national_url}/_control/axis/deliver {{\"kind\": \"{kind}\"}} (control token), "
            f"then GET /_ledger/axis/delivered?DocumentId=…")


def _deliver_and_wait(ctx: CheckContext, kind: str = "valid") -> tuple[dict[str, Any], dict[str, Any]]:
    """Deliver one package and wait (bounded by the SLA) for the acknowledgement; (answer, ledger record)."""
    contract = axis_contract()
    answer = _axis(ctx).deliver(kind)
    if answer.get("http_status") is None:
        raise CheckError(f"the axis could not reach the province at {answer.get('url')}: {answer.get('error')}")
    document_id = answer["DocumentId"]
    ack = list(contract.acknowledge)
    record = _axis(ctx).wait_delivered(
        document_id, lambda pushed: delivered_sequence(answer.get("StatusCode"), pushed)[: len(ack)] == ack
        or answer.get("StatusCode") not in (ack[0], None) or answer["http_status"] >= 500,
        within=contract.acknowledge_within)
    return answer, record


def _delivered(ctx: CheckContext) -> tuple[dict[str, Any], dict[str, Any]]:
    return ctx.shared("axis:delivered", lambda: _deliver_and_wait(ctx))


def _pushed(record: dict[str, Any]) -> list[str]:
    return [s["StatusCode"] for s in record.get("statuses", [])]


def _directory(ctx: CheckContext) -> list[dict[str, Any]]:
    return ctx.shared("axis:directory", lambda: list(_axis(ctx).directory().get("agencies", [])))


def _communes(ctx: CheckContext) -> list[dict[str, Any]]:
    province = ctx.target.province_code
    communes = [e for e in _directory(ctx) if e.get("Level") == "commune" and e.get("MaTinh") == province
                and e.get("Active")]
    if len(communes) < 3:
        raise CheckError(f"the axis directory lists {len(communes)} communes of province {province}: too few")
    return communes


# -- AXIS-01 -----------------------------------------------------------------------------------------
@check("AXIS-01", criterion="document_axis", severity="critical",
       title="A delivered document is acknowledged: 01 (arrived) then 03 (accepted) within the SLA",
       rule=f"{_RULE}: status messages; contracts/schemas/axis.schema.json x-status-transitions",
       requires=("document_axis",), detects=("ack-only-arrived",))
def acknowledges_delivered_documents(ctx: CheckContext) -> str:
    """The axis delivers a valid edXML package; the province answers 01 and sends 03 within the contract's
    ``acknowledge_within_seconds``, and the statuses follow the legal order from the start."""
    contract = axis_contract()
    started = time.monotonic()
    answer, record = _delivered(ctx)
    reproduce = _reproduce(ctx, "valid")
    ctx.expect(answer["http_status"] < 300,
               f"the delivered package was refused with HTTP {answer['http_status']} (expected 2xx and status 01)",
               expected="HTTP 200 with a Status 01", actual={k: answer.get(k) for k in
                                                            ("http_status", "StatusCode", "Description")},
               reproduce=reproduce)
    sequence = delivered_sequence(answer.get("StatusCode"), _pushed(record))
    ctx.require_evidence(len(sequence), 1, "status answers to the delivered document", reproduce=reproduce)
    problems = acknowledgement_problems(sequence, contract) + contract.sequence_problems(sequence)
    ctx.expect(not problems,
               f"document {answer['DocumentId']} was not acknowledged within "
               f"{contract.acknowledge_within:g} s: " + _summary(problems),
               expected=" → ".join(contract.label(c) for c in contract.acknowledge),
               actual={"answer": answer.get("StatusCode"), "statuses": _pushed(record)}, reproduce=reproduce)
    return (f"document {answer['DocumentId']}: answered {answer.get('StatusCode')} (HTTP {answer['http_status']}, "
            f"{answer.get('ms')} ms), then {', '.join(_pushed(record))} within {time.monotonic() - started:.2f} s")


# -- AXIS-02 -----------------------------------------------------------------------------------------
def _malformed_finding(answer: dict[str, Any], record: dict[str, Any]) -> str | None:
    status = answer.get("http_status")
    if status is None:
        return f"no answer ({answer.get('error')})"
    if status >= 500:
        return f"crashed with HTTP {status}"
    code = answer.get("StatusCode")
    if code is None:
        return f"answered HTTP {status} without a status message ({answer.get('answer_problem')})"
    if code != "02":
        return f"answered {code} (HTTP {status}): accepted instead of rejected"
    if not answer.get("Description"):
        return "answered 02 without a reason (Description empty)"
    later = [c for c in _pushed(record) if c != "02"]
    if later:
        return f"answered 02, then still sent {', '.join(later)}"
    return None


@check("AXIS-02", criterion="document_axis", severity="critical",
       title="Every malformed or schema-invalid edXML package is answered 02 with a reason, never a crash",
       rule=f"{_RULE}: package structure and status 02; contracts/schemas/axis.schema.json x-edxml",
       requires=("document_axis",), detects=("500-on-malformed-edxml", "accepts-malformed-edxml"))
def rejects_malformed_packages(ctx: CheckContext) -> str:
    """Each malformed kind of ``haicap/edxml.py`` (not XML, not edXML, wrong namespace, a DOCTYPE with entities,
    every required element missing, four bad DocumentIds, bad date, timestamp and OrganId formats, an attachment
    whose cid is not in the manifest, a manifest reference without its attachment, bad base64) is answered with a
    Status 02 carrying a Description, on HTTP 200 or 4xx, and nothing else follows."""
    axis = _axis(ctx)
    answers = [(kind, axis.deliver(f"malformed:{kind}")) for kind in MALFORMED_VARIANTS]
    ctx.require_evidence(len(answers), len(MALFORMED_VARIANTS), "malformed packages delivered",
                         reproduce=_reproduce(ctx, "malformed:not-xml"))
    findings = []
    for kind, answer in answers:
        finding = _malformed_finding(answer, axis.delivered(answer["DocumentId"]))
        if finding:
            findings.append(f"{kind}: {finding}")
    ctx.expect(not findings, f"{len(findings)} of {len(answers)} malformed packages were not answered 02 with a "
               "reason: " + _summary(findings),
               expected="HTTP 200/4xx with Status 02 and a Description, for every kind",
               actual=findings[:_SHOWN],
               reproduce=_reproduce(ctx, "malformed:" + (findings[0].split(":")[0] if findings else "not-xml")))
    codes = sorted({str(a.get("http_status")) for _, a in answers})
    return (f"{len(answers)} malformed kinds ({', '.join(list(MALFORMED_VARIANTS)[:4])} …) each answered 02 with a "
            f"reason (HTTP {'/'.join(codes)}), none crashed or was processed further")


# -- AXIS-03 -----------------------------------------------------------------------------------------
@check("AXIS-03", criterion="document_axis", severity="major",
       title="Valid packages with optional elements, several recipients or any attachment type are accepted",
       rule=f"{_RULE}: optional elements and attachments; contracts/schemas/axis.schema.json x-edxml",
       requires=("document_axis",), detects=("rejects-optional-edxml-elements",))
def accepts_valid_variants(ctx: CheckContext) -> str:
    """Must-accept: a package with the optional header elements (SignerInfo, DueDate, ToPlaces, OtherInfo,
    SteeringType) and an element the contract does not name, attachments of six content types, an unverified
    Signature element (verification is the signatures criterion's), several recipients, the edXML namespace on a
    prefix instead of the default, an indented package with base64 wrapped at 76 columns — each is answered 01 and
    acknowledged, and so is a package with no attachment at all. A false rejection stops a valid document."""
    contract = axis_contract()
    results = [(kind, *_deliver_and_wait(ctx, f"accept:{kind}")) for kind in ACCEPT_VARIANTS]
    ctx.require_evidence(sum(a.get("http_status") is not None for _, a, _ in results), len(results),
                         "answers to valid package variants")
    findings = []
    for kind, answer, record in results:
        sequence = delivered_sequence(answer.get("StatusCode"), _pushed(record))
        if answer["http_status"] >= 300 or acknowledgement_problems(sequence, contract):
            reason = f" ({answer.get('Description')})" if answer.get("Description") else ""
            findings.append(f"{kind}: HTTP {answer['http_status']}, statuses {' → '.join(sequence) or 'none'}"
                            + reason)
    ctx.expect(not findings, f"{len(findings)} valid packages were refused or not acknowledged: "
               + _summary(findings), expected="01 then 03 for each", actual=findings[:_SHOWN],
               reproduce=_reproduce(ctx, "accept:" + (findings[0].split(":")[0] if findings else "plain")))
    return f"{len(results)} valid variants ({', '.join(ACCEPT_VARIANTS)}) each answered 01 and acknowledged 03"


# -- AXIS-04 -----------------------------------------------------------------------------------------
@check("AXIS-04", criterion="document_axis", severity="major",
       title="The same DocumentId delivered twice is handled once",
       rule=f"{_RULE}: DocumentId identifies a document; contracts/schemas/axis.schema.json x-status-transitions",
       requires=("document_axis",), detects=("processes-duplicate-document",))
def duplicate_document_once(ctx: CheckContext) -> str:
    """The axis delivers a document, waits for its acknowledgement, then delivers the same package again: the
    second answer is not a crash nor a rejection (the document was received), and no status is sent again."""
    contract = axis_contract()
    first, record = _deliver_and_wait(ctx)
    document_id = first["DocumentId"]
    before = _pushed(record)
    ctx.require_evidence(len(before), 1, "status messages after the first delivery")
    again = _axis(ctx).deliver(document_id=document_id)
    after = _axis(ctx).wait_delivered(document_id, lambda pushed: len(pushed) > len(before), within=0.5)
    repeated = _pushed(after)[len(before):]
    reproduce = (f"{_reproduce(ctx, 'valid')}; then POST /_control/axis/deliver {{\"DocumentId\": \"{document_id}\"}}")
    problems = []
    if again.get("http_status") is None or again["http_status"] >= 500:
        problems.append(f"the second delivery crashed or went unanswered (HTTP {again.get('http_status')})")
    elif again.get("StatusCode") == "02":
        problems.append(f"the second delivery was answered 02 ({again.get('Description')}): the sender reads a "
                        "received document as rejected")
    if repeated:
        problems.append(f"statuses sent again for the second delivery: {', '.join(repeated)}")
    problems += contract.sequence_problems(delivered_sequence(first.get("StatusCode"), _pushed(after)))
    ctx.expect(not problems, f"document {document_id} delivered twice was handled twice: " + _summary(problems),
               expected="one processing; the repeat answered 01 (or the current status), nothing sent again",
               actual={"second_answer": again.get("StatusCode"), "statuses": _pushed(after)}, reproduce=reproduce)
    return (f"document {document_id} delivered twice: second answer {again.get('StatusCode')} "
            f"(HTTP {again['http_status']}), statuses {', '.join(_pushed(after))} once")


# -- AXIS-05 -----------------------------------------------------------------------------------------
def _walk(ctx: CheckContext, contract: AxisContract, document_id: str, path: Sequence[str]
          ) -> tuple[list[str], list[str], int]:
    """Move the document along ``path``, trying every forbidden status before each step; (findings, steps done,
    refusals observed)."""
    officer = _officer(ctx)
    findings: list[str] = []
    done: list[str] = []
    refused = 0
    state = contract.acknowledge[-1]
    for step in (*path, None):
        for code in contract.forbidden_after(state):
            answer = officer.set_status(document_id, code)
            if answer.status_code < 300:
                findings.append(f"{contract.label(code)} after {state} accepted (HTTP {answer.status_code})")
                state = code
            elif answer.status_code >= 500:
                findings.append(f"{code} after {state} crashed (HTTP {answer.status_code})")
            else:
                refused += 1
        if step is None:
            break
        answer = officer.set_status(document_id, step)
        if answer.status_code >= 300:
            findings.append(f"{contract.label(step)} after {state} (allowed) refused with HTTP {answer.status_code}: "
                            f"{answer.text[:120]}")
            break
        done.append(step)
        state = step
    return findings, done, refused


@check("AXIS-05", criterion="document_axis", severity="critical",
       title="Status messages follow the legal order: every forbidden step refused, a forward skip accepted",
       rule=f"{_RULE}: status codes 01–06, 13/15/16; contracts/schemas/axis.schema.json x-status-transitions",
       requires=("document_axis", "officer_api"), detects=("status-out-of-order",))
def status_order(ctx: CheckContext) -> str:
    """From every state of a received document (03, 04, 05, 06) the officer tries every recipient status the
    order forbids (going back, repeating, 02 after acceptance, 15/16 without a recall, anything after 06): each
    is refused and sends nothing. The document walks 03 → 04 → 05 → 06; a second one goes 03 → 06 directly —
    the order allows a forward skip (a document that needs no assignment), so that must be accepted. What the
    axis recorded must follow the order."""
    contract = axis_contract()
    deliveries = [_deliver_and_wait(ctx), _deliver_and_wait(ctx)]
    for answer, record in deliveries:
        sequence = delivered_sequence(answer.get("StatusCode"), _pushed(record))
        if sequence[-1:] != [contract.acknowledge[-1]]:
            raise CheckError(f"document {answer['DocumentId']} was not acknowledged {contract.acknowledge[-1]} "
                             f"(statuses {' → '.join(sequence) or 'none'}; AXIS-01 judges that): no state to walk from")
    (first, _), (second, _) = deliveries
    full = tuple(c for c in ("04", "05", "06") if c in contract.statuses)
    findings, done, refused = _walk(ctx, contract, first["DocumentId"], full)
    skip_findings, skip_done, skip_refused = _walk(ctx, contract, second["DocumentId"], ("06",))
    findings += [f"(03 → 06 document) {f}" for f in skip_findings]
    ctx.require_evidence(refused + skip_refused + len(findings), 10, "answers to forbidden status steps")
    axis = _axis(ctx)
    for answer, steps in ((first, done), (second, skip_done)):
        wanted = len(steps) + 1
        record = axis.wait_delivered(answer["DocumentId"], lambda pushed, n=wanted: len(pushed) >= n,
                                     within=contract.acknowledge_within)
        sequence = delivered_sequence(answer.get("StatusCode"), _pushed(record))
        findings += [f"{answer['DocumentId']} recorded {step}" for step in contract.sequence_problems(sequence)]
    ctx.expect(not findings, "the status order is not kept: " + _summary(findings),
               expected=f"refusal (4xx, nothing sent) of each forbidden step; {' → '.join(('03', *full))} and "
                        "03 → 06 accepted", actual=findings[:_SHOWN],
               reproduce=f"POST {ctx.target.province_url}/officer/axis/status {{\"DocumentId\": …, \"StatusCode\": …}}")
    return (f"{refused + skip_refused} forbidden steps refused from states 03/04/05/06; 03 → {' → '.join(done)} and "
            f"03 → {' → '.join(skip_done)} accepted and recorded in order")


# -- sends by the province -----------------------------------------------------------------------------
def _sends(ctx: CheckContext) -> list[dict[str, Any]]:
    """The officer sends two documents: province level → a commune, a commune → the province level."""
    def make() -> list[dict[str, Any]]:
        communes = _communes(ctx)
        province_entry = next((e for e in _directory(ctx) if e.get("Level") == "province"
                               and e.get("MaTinh") == ctx.target.province_code), None)
        if province_entry is None:
            raise CheckError(f"the axis directory has no province-level agency of {ctx.target.province_code}")
        plans = [
            {"want_from": ("province", None), "want_to": ("commune", communes[0]["MaXa"]),
             "call": {"to_ma_xa": communes[0]["MaXa"]}},
            {"want_from": ("commune", communes[1]["MaXa"]), "want_to": ("province", None),
             "call": {"from_ma_xa": communes[1]["MaXa"], "to": province_entry["OrganId"]}},
        ]
        for plan in plans:
            answer = _officer(ctx).send("Văn bản kiểm thử trục liên thông (haicap)", **plan["call"])
            if answer.status_code >= 300:
                raise CheckError(f"the officer API refused to send a document: HTTP {answer.status_code} "
                                 f"{answer.text[:200]}")
            plan["answer"] = answer.json()
        return plans
    return ctx.shared("axis:sends", make)


def _arrived(ctx: CheckContext, document_id: str) -> dict[str, Any] | None:
    contract = axis_contract()
    return _axis(ctx).wait_sent(document_id, lambda r: r is not None or _rejection(ctx, document_id) is not None,
                                within=contract.final_within)


def _rejection(ctx: CheckContext, document_id: str) -> dict[str, Any] | None:
    return next((r for r in _axis(ctx).sent_all().get("rejected", []) if r.get("DocumentId") == document_id), None)


# -- AXIS-06 -----------------------------------------------------------------------------------------
@check("AXIS-06", criterion="document_axis", severity="critical",
       title="Sent documents carry current agency codes of the right level (no pre-merger district code)",
       rule="Decision 20/2020/QĐ-TTg as amended by Decision 09/2025/QĐ-TTg (agency electronic identification "
            f"codes); {_RULE}: From/To OrganId",
       requires=("document_axis", "officer_api"), detects=("pre-merger-district-organ-id",))
def sent_codes_current(ctx: CheckContext) -> str:
    """The officer sends from the province level to a commune and from a commune to the province level: each
    From and To OrganId is an active code of the axis directory, of the target province, of the level asked for
    (province or commune, the commune asked for) — not a dissolved district's, another province's or unknown."""
    sends = _sends(ctx)
    findings: list[str] = []
    seen = 0
    for plan in sends:
        document_id = plan["answer"]["DocumentId"]
        record = _arrived(ctx, document_id)
        if record is None:
            rejection = _rejection(ctx, document_id)
            raise CheckError(f"document {document_id} did not reach the axis ("
                             f"{'answered 02: ' + rejection['reason'] if rejection else 'nothing arrived'}): "
                             "its codes cannot be judged (AXIS-07/AXIS-09 judge that)")
        seen += 1
        level, ma_xa = plan["want_from"]
        findings += code_findings("From", record["From"], record["codes"].get(record["From"]),
                                  province=ctx.target.province_code, level=level, ma_xa=ma_xa)
        findings += to_findings(record["To"], record["codes"], plan["want_to"], ctx.target.province_code)
    ctx.require_evidence(seen, len(sends), "sent documents at the axis")
    ctx.expect(not findings, "sent documents carry wrong agency codes: " + _summary(findings),
               expected="active directory codes of the province, at the level asked for",
               actual=findings[:_SHOWN], reproduce=f"POST {ctx.target.province_url}/officer/axis/documents "
                                                   "{\"Subject\": …, \"ToMaXa\": …}; GET /_ledger/axis/sent")
    return (f"{seen} sent documents: From/To " + ", ".join(f"{p['answer'].get('From')}→{p['answer'].get('To')}"
                                                         for p in sends) + " are active codes of the right level")


# -- AXIS-07 -----------------------------------------------------------------------------------------
@check("AXIS-07", criterion="document_axis", severity="major",
       title="DocumentId, PromulgationDate and timestamps are in the contract's formats",
       rule=f"{_RULE}: DocumentId and timestamp formats; contracts/schemas/axis.schema.json x-formats",
       requires=("document_axis", "officer_api"), detects=("bad-document-id-format", "bad-status-timestamp"))
def formats(ctx: CheckContext) -> str:
    """Sent documents have DocumentId ``{OrganId},{YYYY/MM/DD},{number}/{notation}`` (the sender's code, the
    PromulgationDate), PromulgationDate YYYY/MM/DD and TraceHeader Timestamp yyyy/MM/dd HH:mm:ss; the province's
    status messages carry Timestamp dd/MM/yyyy HH:mm:ss."""
    contract = axis_contract()
    findings: list[str] = []
    judged = 0
    for plan in _sends(ctx):
        document_id = plan["answer"]["DocumentId"]
        record = _arrived(ctx, document_id)
        if record is None:
            rejection = _rejection(ctx, document_id)
            if rejection is None:
                raise CheckError(f"document {document_id} never reached the axis: its formats cannot be judged")
            findings.append(f"{document_id}: answered 02 by the axis: {rejection['reason']}")
        else:
            problem = contract.document_id_problem(record["DocumentId"], record["From"], record["PromulgationDate"])
            findings += [problem] if problem else []
        judged += 1
    answer, record = _delivered(ctx)
    statuses = record.get("statuses", [])
    for status in statuses:
        findings += [f"status {status['StatusCode']} of {answer['DocumentId']}: {p}"
                     for p in status.get("problems", [])]
    ctx.require_evidence(judged + len(statuses), 3, "sent documents and status messages")
    ctx.expect(not findings, "formats differ from the contract: " + _summary(findings),
               expected={name: f.layout for name, f in contract.formats.items()} | {
                   "DocumentId": contract.document_id_layout}, actual=findings[:_SHOWN],
               reproduce="GET /_ledger/axis/sent and /_ledger/axis/delivered (control token)")
    return (f"{judged} sent documents and {len(statuses)} status messages in the contract's formats "
            f"(e.g. {_sends(ctx)[0]['answer']['DocumentId']}, Timestamp {statuses[0]['Timestamp']})")


# -- AXIS-08 -----------------------------------------------------------------------------------------
def _new_code(organ: str, taken: set[str]) -> str:
    head, _, group = organ.rpartition(".")
    first, second, _third = head.split(".")
    for n in range(1, 99):
        candidate = f"{first}.{second}.{n:02d}.{group}"
        if candidate not in taken:
            return candidate
    raise CheckError(f"no free code to rename {organ} to")


@check("AXIS-08", criterion="document_axis", severity="critical",
       title="After the directory changes an agency code, the province's next send uses the new code",
       rule="Decision 20/2020/QĐ-TTg as amended by Decision 09/2025/QĐ-TTg (agency electronic identification "
            f"codes); {_RULE}: agency directory",
       requires=("document_axis", "officer_api"), detects=("stale-agency-directory",))
def directory_change_used(ctx: CheckContext) -> str:
    """The officer sends to a commune; the axis directory then gives that commune's People's Committee a new
    code; the officer's next send to the commune must carry the new code as To OrganId (the province keeps its
    directory in sync), not the retired one."""
    commune = _communes(ctx)[-1]
    officer, axis = _officer(ctx), _axis(ctx)
    first = officer.send("Trước khi đổi mã (haicap)", to_ma_xa=commune["MaXa"])
    if first.status_code >= 300:
        raise CheckError(f"the officer API refused to send: HTTP {first.status_code} {first.text[:200]}")
    old = commune["OrganId"]
    new = _new_code(old, {str(e["OrganId"]) for e in _directory(ctx)})
    axis.rename_agency(old, new)
    second = officer.send("Sau khi đổi mã (haicap)", to_ma_xa=commune["MaXa"])
    if second.status_code >= 300:
        ctx.fail(f"after the directory changed {old} to {new}, the officer's send to commune {commune['MaXa']} "
                 f"was refused with HTTP {second.status_code}", expected=f"a document to {new}",
                 actual=second.text[:300])
    record = _arrived(ctx, second.json()["DocumentId"])
    ctx.require_evidence(int(record is not None), 1, "document sent after the change at the axis")
    assert record is not None
    ctx.expect(new in record["To"] and old not in record["To"],
               f"after the directory changed commune {commune['MaXa']}'s agency code {old} → {new}, the next "
               f"document still went to {', '.join(record['To'])}",
               expected={"To": f"{new} among the recipients, {old} not"}, actual={"To": record["To"]},
               reproduce=f"POST /_control/axis/agency-code {{\"OrganId\": \"{old}\", \"NewOrganId\": \"{new}\"}}; "
                         f"then POST {ctx.target.province_url}/officer/axis/documents {{\"ToMaXa\": "
                         f"\"{commune['MaXa']}\"}}")
    return f"commune {commune['MaXa']}: code changed {old} → {new}; the next document went to {new}"


# -- AXIS-09 -----------------------------------------------------------------------------------------
@check("AXIS-09", criterion="document_axis", severity="critical",
       title="Every document the province sends reaches the axis and a final status",
       rule=f"{_RULE}: status messages; contracts/schemas/axis.schema.json x-status-transitions",
       requires=("document_axis", "officer_api"), detects=("sent-document-lost",))
def sent_documents_final(ctx: CheckContext) -> str:
    """Each document the officer sent reaches the axis within ``final_within_seconds`` and gets a final status
    there (the recipient's 06), and the province takes the status messages the axis sends back (HTTP 2xx)."""
    contract = axis_contract()
    findings: list[str] = []
    finals = 0
    sends = _sends(ctx)
    for plan in sends:
        document_id = plan["answer"]["DocumentId"]
        record = _axis(ctx).wait_sent(
            document_id, lambda r: r is not None and contract.is_final(_pushed(r)[-1] if _pushed(r) else None)
            and len(r.get("pushes", [])) >= 2, within=contract.final_within)
        if record is None:
            rejection = _rejection(ctx, document_id)
            findings.append(f"{document_id}: " + (f"answered 02 by the axis ({rejection['reason']})" if rejection
                                                  else f"never reached the axis in {contract.final_within:g} s"))
            continue
        last = _pushed(record)[-1]
        if not contract.is_final(last):
            findings.append(f"{document_id}: last status {contract.label(last)}, not final")
        bad = [p for p in record.get("pushes", []) if not (p.get("http_status") or 0) < 300]
        if bad:
            error = f", {bad[0]['error']}" if bad[0].get("error") else ""
            findings.append(f"{document_id}: the province refused status {bad[0]['StatusCode']} from the axis "
                            f"(HTTP {bad[0].get('http_status')}{error})")
        finals += int(contract.is_final(last))
    ctx.expect(not findings, "sent documents did not reach a final status: " + _summary(findings),
               expected=f"each at the axis with a final status ({', '.join(contract.final)})",
               actual=findings[:_SHOWN], reproduce="GET /_ledger/axis/sent?DocumentId=… (control token)")
    ctx.require_evidence(finals, len(sends), "sent documents with a final status")
    return f"{finals} sent documents reached the axis and a final status (06), status pushes answered 2xx"


# -- AXIS-10 -----------------------------------------------------------------------------------------
@check("AXIS-10", criterion="document_axis", severity="major",
       title="A sender's recall (13) of a delivered document is answered 15 (agreed) or 16 (refused)",
       rule=f"{_RULE}: status codes 13, 15, 16; contracts/schemas/axis.schema.json x-status-transitions",
       requires=("document_axis",), detects=("ignores-recall",))
def recall_answered(ctx: CheckContext) -> str:
    """The axis delivers a document, waits for its acknowledgement, then its sender recalls it (13): the province
    takes the message (HTTP 2xx) and answers, within the SLA, with one of the statuses the order allows after 13
    (15 agreed, 16 refused), and with nothing else."""
    contract = axis_contract()
    answer, record = _deliver_and_wait(ctx)
    document_id = answer["DocumentId"]
    before = _pushed(record)
    ctx.require_evidence(len(before), 1, "status messages before the recall")
    recall = _axis(ctx).recall(document_id)
    answers = contract.next.get("13", ())
    after = _axis(ctx).wait_delivered(document_id, lambda pushed: any(c in answers for c in pushed[len(before):]),
                                      within=contract.acknowledge_within)
    replies = _pushed(after)[len(before):]
    reproduce = f"{_reproduce(ctx, 'valid')}; then POST /_control/axis/recall {{\"DocumentId\": \"{document_id}\"}}"
    ctx.expect(recall.get("http_status") is not None and recall["http_status"] < 300,
               f"the recall (13) of {document_id} was refused with HTTP {recall.get('http_status')}",
               expected="HTTP 2xx", actual=recall, reproduce=reproduce)
    sequence = [*delivered_sequence(answer.get("StatusCode"), before), "13", *replies]
    problems = contract.sequence_problems(sequence)
    ctx.expect(bool(replies) and not problems,
               f"the recall of {document_id} was not answered "
               f"{' or '.join(contract.label(c) for c in answers)} within {contract.acknowledge_within:g} s"
               + (f": {_summary(problems)}" if problems and replies else ""),
               expected=f"one of {', '.join(answers)} after 13", actual={"statuses": sequence}, reproduce=reproduce)
    return f"document {document_id}: {' → '.join(sequence)} (the recall answered {replies[0]})"
