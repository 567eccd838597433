"""Consistency across the views of one dossier, idempotency, listings and minimal input.

A schema-valid answer can still contradict the dossier: the sync item carries another fee, the channel is
lost, the promised date lies before the receipt, a list ignores its filter, a message delivered twice takes
effect twice. These checks compare what the citizen submitted, what the province answers (201, GET by
MaHoSo, the citizen's list, the officer's view) and what reaches the national sync ledger, field by field,
for the fields the contracts share: the names come from the schemas (property names common to two
definitions), and what names alone cannot say (session-derived fields, renamed fields, the order of dates) is
data in ``contracts/correspondence.yaml``.

Idempotency, decided from the contracts: the province-dossier OpenAPI declares ``POST
/national/forwarded-dossiers`` idempotent ("200 already received (idempotent)") and ``POST
/DvcPayment/Confirm`` idempotent ("a replay changes nothing"); an officer action is not idempotent but its
repetition is refused by the transition table ("anything else is 409"), so it too must take effect once.
``POST /api/v1/dossiers`` has no idempotency key (DossierSubmission has ``additionalProperties: false`` and the
operation declares no ``Idempotency-Key`` header): two submissions are two dossiers, and are not tested as one.

Every check signs in its own citizen and files its own dossiers from the run's seeded data pool, whose records
vary which optional fields they carry; the catalogue set (one seeded and one minimal submission per offered
procedure) is filed once per process and shared by SUB-15, PAY-15, SYNC-20 and SYNC-21.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from haicap.conformance.checks.submission import citizen_session, curl_line, evidence, today_vn
from haicap.conformance.checks.sync import listed, thoi_gian_ms
from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import scenario_data
from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, check
from haicap.contract_registry import ContractRegistry, default_registry
from haicap.counterpart_client import CounterpartClient
from haicap.data_generators.agencies import NATIONAL_PORTAL_AGENCY
from haicap.data_generators.procedures import load_procedures
from haicap.http_port import ResponseLike
from haicap.province_client import CitizenSession

__all__ = [
    "SKEW_SECONDS",
    "contains",
    "correspondence",
    "date_problems",
    "disagreement",
    "narrow",
    "same",
    "shared_fields",
    "show",
]

SUBMISSION_REF = "dossier.schema.json#/$defs/DossierSubmission"
DOSSIER_REF = "dossier.schema.json#/$defs/Dossier"
FORWARDED_REF = "dossier.schema.json#/$defs/ForwardedDossier"
ITEM_REF = "sync.schema.json#/$defs/DongBoHoSoMCItem"
PROGRESS_REF = "sync.schema.json#/$defs/CapNhatTienDoHoSoMCItem"
THOI_GIAN_REF = "common.schema.json#/$defs/ThoiGian"
CORRESPONDENCE = "contracts/correspondence.yaml"
#: how far a province's clock may be from haicap's before a date counts as wrong (seconds)
SKEW_SECONDS = 60
#: extra wait beyond the sync SLA for the ledger to be read
MARGIN_SECONDS = 1.5
#: how many times a concurrent pair is delivered; the contract rule is "once or many times, one effect"
COPIES = 2
#: longest rendering of one value in a disagreement
SHOWN_CHARS = 120
_ABSENT = "absent"


# -- pure helpers (tests/test_checks_consistency.py) ----------------------------------------------
@functools.lru_cache(maxsize=4)
def _correspondence(root: str) -> dict[str, Any]:
    path = default_registry().root / "correspondence.yaml" if not root else f"{root}/correspondence.yaml"
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise CheckError(f"{CORRESPONDENCE} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise CheckError(f"{CORRESPONDENCE}: expected a mapping")
    return data


def correspondence(registry: ContractRegistry | None = None) -> dict[str, Any]:
    """``contracts/correspondence.yaml`` of the contracts folder in use."""
    return _correspondence(str((registry or default_registry()).root))


def shared_fields(a_ref: str, b_ref: str, registry: ContractRegistry | None = None) -> list[str]:
    """Property names both definitions have, in ``b_ref``'s order."""
    registry = registry or default_registry()
    mine = set(registry.property_names(a_ref))
    return [name for name in registry.property_names(b_ref) if name in mine]


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def same(a: Any, b: Any) -> bool:
    """Equal values, where absent, null, "" and [] are one (sync items omit optional fields without a value)."""
    if not _present(a) or not _present(b):
        return not _present(a) and not _present(b)
    return bool(a == b)


def contains(sent: Any, got: Any) -> bool:
    """``got`` keeps what was sent: equal scalars; for objects every sent key equal; lists element by element."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(contains(v, got.get(k)) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(
            contains(s, g) for s, g in zip(sent, got, strict=True))
    return bool(sent == got)


def show(value: Any) -> str:
    """A value as JSON for evidence (``absent`` when there is none), cut to a readable length."""
    if not _present(value):
        return _ABSENT if value is None else json.dumps(value, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def disagreement(name: str, submitted: Any, province: dict[str, Any], npsp: Any, *, sent: bool,
                 synced: bool, sender: str = "submitted") -> str:
    """``field: submitted X, province Y, NPSP Z``; province views that differ are each named; ``sender`` says
    who sent the dossier (``forwarded`` for the national portal)."""
    values = list(province.items())
    if len({show(v) for _, v in values}) <= 1:
        province_text = show(values[0][1]) if values else _ABSENT
    else:
        province_text = " / ".join(f"{show(v)} ({view})" for view, v in values)
    parts = [f"{sender} {show(submitted) if sent else 'not sent'}", f"province {province_text}"]
    if synced:
        parts.append(f"NPSP {show(npsp)}")
    return f"{name}: {', '.join(parts)}"


def _date_fields(ref: str, registry: ContractRegistry) -> list[str]:
    """Properties of ``ref`` that are a ThoiGian (yyyyMMddHHmmss, Asia/Ho_Chi_Minh)."""
    props = registry.schema(ref).get("properties", {})
    return [name for name, spec in props.items() if str(spec.get("$ref", "")).endswith(THOI_GIAN_REF.split("#")[1])]


def date_problems(doc: dict[str, Any], now_ms: int, *, ref: str = DOSSIER_REF, window: tuple[int, int] | None = None,
                  registry: ContractRegistry | None = None, history: str | None = "LichSu") -> list[str]:
    """What is wrong with a dossier's dates (empty: nothing): unreadable, out of the contract's order, an event in
    the future beyond :data:`SKEW_SECONDS`, history times going back; ``window`` (epoch ms) bounds the creation
    events (NgayNopHoSo, the first history entry) when the caller knows when it submitted."""
    registry = registry or default_registry()
    rules = correspondence(registry)
    skew = SKEW_SECONDS * 1000
    promises = set(rules.get("promises") or [])
    out: list[str] = []
    times: dict[str, int] = {}
    for name in _date_fields(ref, registry):
        value = doc.get(name)
        if value is None:
            continue
        moment = thoi_gian_ms(value)
        if moment is None:
            out.append(f"{name} {show(value)} is not a yyyyMMddHHmmss time")
            continue
        times[name] = moment
        if name not in promises and moment > now_ms + skew:
            out.append(f"{name} {value} is {(moment - now_ms) / 1000:.0f} s in the future (Asia/Ho_Chi_Minh)")
    for earlier, later in rules.get("date_order") or []:
        if earlier in times and later in times and times[later] < times[earlier]:
            out.append(f"{later} {doc[later]} is before {earlier} {doc[earlier]}")
    entries = [e for e in (doc.get(history) if history else None) or [] if isinstance(e, dict)]
    stamps = [(str(e.get("TrangThaiHoSo")), e.get("ThoiDiemXuLy"), thoi_gian_ms(e.get("ThoiDiemXuLy")))
              for e in entries]
    for (s1, v1, t1), (s2, v2, t2) in itertools.pairwise(stamps):
        if t1 is not None and t2 is not None and t2 < t1:
            out.append(f"{history}: state {s2} at {v2} is before the earlier step (state {s1} at {v1})")
    out.extend(f"{history}: state {s} at {v} is in the future" for s, v, t in stamps if t and t > now_ms + skew)
    if window is not None:
        low, high = window[0] - skew - 999, window[1] + skew
        first = [("NgayNopHoSo", doc.get("NgayNopHoSo"), times.get("NgayNopHoSo"))]
        if stamps:
            first.append((f"{history}[0].ThoiDiemXuLy", stamps[0][1], stamps[0][2]))
        for label, value, moment in first:
            if moment is not None and not low <= moment <= high:
                out.append(f"{label} {value} is {(moment - window[0]) / 3_600_000:+.2f} h from when the dossier was "
                           "submitted (Asia/Ho_Chi_Minh, yyyyMMddHHmmss)")
    return out


# -- small shared pieces --------------------------------------------------------------------------
def _json(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _officer_api(ctx: CheckContext) -> bool:
    return "officer_api" in ctx.target.capabilities and bool(ctx.target.officer_token)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _catalogue() -> dict[str, dict[str, Any]]:
    return {p["MaTTHC"]: p for p in load_procedures()}


def _in_catalogue(code: Any, catalogue: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The catalogue entry of a procedure code (a local variant ``1.001193.000.00.00.H26`` is its national one)."""
    if not isinstance(code, str):
        return None
    return catalogue.get(code) or catalogue.get(code[:8])


def _commune(ctx: CheckContext, purpose: str, default: str) -> str:
    communes = ctx.target.communes
    return ctx.rng(purpose).choice(list(communes)) if communes else default


def _await_ledger(ctx: CheckContext, codes: list[str], ready: Callable[[dict[str, Any]], bool]
                  ) -> dict[str, dict[str, Any] | None]:
    """Poll the national ledger, bounded by the sync SLA, until ``ready(record)`` holds for every dossier."""
    deadline = time.monotonic() + ctx.target.sync_sla_seconds + MARGIN_SECONDS
    records: dict[str, dict[str, Any] | None] = dict.fromkeys(codes)
    pending = list(codes)
    while True:
        for code in pending:
            records[code] = ctx.national.synced_dossier(code)
        pending = [c for c in pending if not (records[c] and ready(records[c]))]  # type: ignore[arg-type]
        if not pending or time.monotonic() >= deadline:
            return records
        time.sleep(0.1)


def _not_in_ledger(ctx: CheckContext, missing: list[str], total: int, rule_owner: str) -> CheckSkipped:
    refused = {r.get("MaHoSo") for r in ctx.national.sync_rejections()} & set(missing)
    why = (f"the national side refused the items of {len(refused)} ({rule_owner}'s verdict)" if refused else
           f"nothing arrived within the {ctx.target.sync_sla_seconds:g} s sync SLA (SYNC-01's verdict)")
    return CheckSkipped(f"observed {total - len(missing)} of {total} dossiers in the national ledger: {why}; "
                        f"not there: {', '.join(listed(missing, 5))}",
                        reproduce=f"GET <national>/_ledger/sync/dossiers/{missing[0]}")


# -- the catalogue set: one seeded and one minimal submission per offered procedure ---------------
@dataclass
class Filed:
    """One submission of the catalogue set and what the province answered."""

    procedure: str
    minimal: bool
    payload: dict[str, Any]
    status: int
    body: Any
    window: tuple[int, int]  # epoch ms: sent, answered
    origin: str = "submitted"  # or "forwarded" (by the national portal)

    @property
    def dossier(self) -> dict[str, Any] | None:
        return self.body if self.status == 201 and isinstance(self.body, dict) else None

    @property
    def label(self) -> str:
        kind = "minimal" if self.minimal else f"{len(self.payload)} fields"
        kind = kind if self.origin == "submitted" else f"{self.origin}, {kind}"
        code = self.dossier.get("MaHoSo") if self.dossier else None
        return f"{code or 'refused'} ({self.procedure}, {kind})"


@dataclass
class CatalogueSet:
    session: CitizenSession
    offered: list[dict[str, Any]]
    offered_answer: dict[str, Any]
    filed: list[Filed] = field(default_factory=list)

    def accepted(self) -> list[Filed]:
        return [f for f in self.filed if f.dossier is not None]


def _file(ctx: CheckContext, session: CitizenSession, procedure: str, payload: dict[str, Any],
          minimal: bool) -> Filed:
    sent = _now_ms()
    response = ctx.province.submit(session, payload, name="submit (consistency)")
    return Filed(procedure, minimal, payload, response.status_code, _json(response), (sent, _now_ms()))


def _build_set(ctx: CheckContext) -> CatalogueSet:
    citizen, session = citizen_session(ctx, "the consistency checks")
    answer = ctx.province.procedures()
    body = _json(answer)
    items = body.get("items") if isinstance(body, dict) else None
    offered = [p for p in items or [] if isinstance(p, dict)]
    batch = CatalogueSet(session, offered, evidence(answer, 300))
    catalogue = _catalogue()
    required = default_registry().required_names(SUBMISSION_REF)
    data = scenario_data(ctx)
    for entry in offered:
        known = _in_catalogue(entry.get("MaTTHC"), catalogue)
        if known is None:
            continue
        code = known["MaTTHC"]
        seeded = data.submission(code, None, citizen)
        seeded["MaXa"] = _commune(ctx, f"consistency:{code}", seeded["MaXa"])
        minimal = {name: seeded[name] for name in required if name in seeded}
        batch.filed.append(_file(ctx, session, code, seeded, False))
        batch.filed.append(_file(ctx, session, code, minimal, True))
    return batch


def _catalogue_set(ctx: CheckContext) -> CatalogueSet:
    scenario_data(ctx)  # resolve the shared pool before entering this factory
    return ctx.shared("consistency:catalogue-set", lambda: _build_set(ctx))


# -- SUB-15 ----------------------------------------------------------------------------------------
@check("SUB-15", criterion="submission", severity="critical",
       title="A minimal valid submission (required fields only) is accepted for every offered procedure",
       rule="contracts/schemas/dossier.schema.json#/$defs/DossierSubmission (required: the rest is optional); "
            "contracts/province-dossier.openapi.yaml POST /api/v1/dossiers 201",
       requires=("sso", "submission"), detects=("requires-optional-fields",))
def minimal_submission_accepted(ctx: CheckContext) -> str:
    """For every procedure the province offers (GET /api/v1/procedures) that the catalogue knows: a submission
    with only the contract's required fields is answered 201 with a schema-valid Dossier in state 1, and so is
    the run's seeded submission (which carries some or all optional fields)."""
    batch = _catalogue_set(ctx)
    minimal = [f for f in batch.filed if f.minimal]
    ctx.require_evidence(len(minimal), 1, "minimal submissions (no offered procedure is in contracts/procedures.yaml)",
                         reproduce="GET /api/v1/procedures")
    validator = default_registry().validator(DOSSIER_REF)
    wrong: list[str] = []
    for filed in batch.filed:
        if filed.dossier is None:
            named = [e.get("field") for e in (filed.body or {}).get("errors") or [] if isinstance(e, dict)] \
                if isinstance(filed.body, dict) else []
            wrong.append(f"{filed.procedure} {'minimal' if filed.minimal else 'seeded'} "
                         f"({', '.join(sorted(filed.payload))}) refused with HTTP {filed.status}"
                         + (f" naming {', '.join(map(str, named))}" if named else ""))
        elif violations := validator.violations(filed.dossier):
            wrong.append(f"{filed.label}: the 201 body breaks Dossier at {violations[0].field}: "
                         f"{violations[0].message}")
        elif filed.dossier.get("TrangThaiHoSo") != "1":
            wrong.append(f"{filed.label}: TrangThaiHoSo {show(filed.dossier.get('TrangThaiHoSo'))}, not \"1\"")
    first = next((f for f in batch.filed if f.dossier is None), batch.filed[0])
    ctx.expect(not wrong, f"{len(wrong)} of {len(batch.filed)} valid submissions not answered with a new, valid "
               "dossier: "
               + "; ".join(wrong[:3]), expected="201 with a Dossier in state 1 for required fields only, and with "
               "any optional fields", actual=listed(wrong),
               reproduce=curl_line("POST", ctx.target.province_url + "/api/v1/dossiers", body=first.payload))
    required = default_registry().required_names(SUBMISSION_REF)
    optional = len(default_registry().property_names(SUBMISSION_REF)) - len(required)
    sizes = sorted({len(f.payload) for f in batch.filed if not f.minimal})
    return (f"{len(minimal)} minimal submissions ({', '.join(required)} only) and {len(batch.filed) - len(minimal)} "
            f"seeded ones ({'/'.join(map(str, sizes))} of {len(required) + optional} fields) of "
            f"{len(minimal)} offered procedures: each answered 201, a valid Dossier in state 1")


# -- PAY-15 ----------------------------------------------------------------------------------------
def _fee_view(source: dict[str, Any]) -> dict[str, Any]:
    return {"PhiPhaiNop": source.get("PhiPhaiNop"), "DanhSachLePhi": source.get("DanhSachLePhi") or []}


def _fee_problems(where: str, got: dict[str, Any], wanted: dict[str, Any], *, paid_flag: bool) -> list[str]:
    out = []
    fee = int(wanted.get("PhiPhaiNop") or 0)
    if got.get("PhiPhaiNop") != fee:
        out.append(f"{where}: PhiPhaiNop {show(got.get('PhiPhaiNop'))}, catalogue {fee}")
    if not contains(wanted.get("DanhSachLePhi") or [], got.get("DanhSachLePhi") or []):
        out.append(f"{where}: DanhSachLePhi {show(got.get('DanhSachLePhi'))}, catalogue "
                   f"{show(wanted.get('DanhSachLePhi') or [])}")
    flag = "0" if fee else "2"  # Dossier: 0 not (yet) paid online, 2 no fee applies
    if paid_flag and got.get("DuocThanhToanTrucTuyen") != flag:
        out.append(f"{where}: DuocThanhToanTrucTuyen {show(got.get('DuocThanhToanTrucTuyen'))} for "
                   f"{'an unpaid fee' if fee else 'a free procedure'}, expected \"{flag}\"")
    return out


@check("PAY-15", criterion="payment", severity="critical",
       title="Every offered procedure lists and charges the catalogue's fee, free procedures included",
       rule="contracts/procedures.yaml (PhiPhaiNop, DanhSachLePhi); contracts/schemas/dossier.schema.json#/$defs/"
            "Dossier (PhiPhaiNop, DuocThanhToanTrucTuyen \"2\" = no fee applies)",
       requires=("sso", "submission"), detects=("wrong-fee-for-free-procedure",))
def fees_match_catalogue(ctx: CheckContext) -> str:
    """GET /api/v1/procedures gives each catalogue procedure the catalogue's PhiPhaiNop and DanhSachLePhi
    (0 and none for a free one), and a new dossier of each carries the same fee and DuocThanhToanTrucTuyen "2"
    when free, "0" (not yet paid) when not."""
    batch = _catalogue_set(ctx)
    catalogue = _catalogue()
    known = [(p, _in_catalogue(p.get("MaTTHC"), catalogue)) for p in batch.offered]
    known_pairs = [(p, c) for p, c in known if c is not None]
    ctx.require_evidence(len(known_pairs), 1, "offered procedures that contracts/procedures.yaml knows",
                         reproduce="GET /api/v1/procedures")
    problems: list[str] = []
    for listed_entry, entry in known_pairs:
        problems += _fee_problems(f"GET /api/v1/procedures {listed_entry.get('MaTTHC')}", _fee_view(listed_entry),
                                  entry, paid_flag=False)
    dossiers = batch.accepted()
    ctx.require_evidence(len(dossiers), 1, "accepted dossiers of offered procedures (SUB-15 judges refusals)")
    for filed in dossiers:
        problems += _fee_problems(f"dossier {filed.label}", filed.dossier or {}, catalogue[filed.procedure],
                                  paid_flag=True)
    ctx.expect(not problems, f"{len(problems)} fee(s) differ from the catalogue: " + "; ".join(problems[:3]),
               expected={c["MaTTHC"]: c["PhiPhaiNop"] for _, c in known_pairs}, actual=listed(problems),
               reproduce="GET /api/v1/procedures; POST /api/v1/dossiers for each MaTTHC")
    free = sum(1 for _, c in known_pairs if not c.get("PhiPhaiNop"))
    fees = ", ".join(f"{c['MaTTHC']} {c['PhiPhaiNop']}" for _, c in known_pairs)
    return (f"{len(known_pairs)} offered procedures ({free} free) list the catalogue's fee ({fees} VND) and "
            f"{len(dossiers)} new dossiers of them carry it, DuocThanhToanTrucTuyen \"2\" when free, \"0\" otherwise")


# -- SYNC-20 ---------------------------------------------------------------------------------------
@dataclass
class Views:
    """One dossier as each side sees it."""

    filed: Filed
    province: dict[str, dict[str, Any]]  # view name → Dossier
    record: dict[str, Any] | None  # the national ledger's record (latest item, history, progress)
    sent_ref: str = SUBMISSION_REF  # what the sender's body is

    @property
    def reference(self) -> dict[str, Any]:
        """The province's first view (the 201 answer of a submission, the officer's view of a forwarded one)."""
        return next(iter(self.province.values()))

    @property
    def item(self) -> dict[str, Any] | None:
        return (self.record or {}).get("item")


def _find_listed(ctx: CheckContext, session: CitizenSession, ma_ho_so: str) -> dict[str, Any] | None:
    response = ctx.province.port.request("GET", "/api/v1/dossiers?limit=200", headers=session.headers(),
                                         name="list dossiers")
    body = _json(response)
    items = body.get("items") if isinstance(body, dict) else None
    return next((i for i in items or [] if isinstance(i, dict) and i.get("MaHoSo") == ma_ho_so), None)


def _province_views(ctx: CheckContext, session: CitizenSession, filed: Filed) -> dict[str, dict[str, Any]]:
    dossier = filed.dossier or {}
    code = str(dossier.get("MaHoSo"))
    views: dict[str, dict[str, Any]] = {"201": dossier}
    got = ctx.province.dossier(session, code)
    views["GET"] = _json(got) if got.status_code == 200 and isinstance(_json(got), dict) else {}
    views["list"] = _find_listed(ctx, session, code) or {}
    if _officer_api(ctx):
        officer = ctx.province.officer_dossier(code)
        views["officer"] = _json(officer) if officer.status_code == 200 and isinstance(_json(officer), dict) else {}
    return views


def _session_disagreements(views: Views, session: CitizenSession) -> list[str]:
    """Identity: the session's CCCD and name on every province view and at the national side."""
    out = []
    rules = correspondence().get("session_fields") or {}
    sent_payload = views.filed.payload
    for name, rule in rules.items():
        claim = str(rule.get("claim")) if isinstance(rule, dict) else str(rule)
        when = rule.get("when") or {} if isinstance(rule, dict) else {}
        wanted = session.claims.get(claim) or (session.cccd if claim == "SoDinhDanh" else None)
        if wanted is None or any(str(views.reference.get(k)) != str(v) for k, v in when.items()):
            continue
        seen = {**views.province, **({"NPSP": views.item} if views.item else {})}
        for view, doc in seen.items():
            value = doc.get(name)
            ok = (isinstance(value, list) and any(isinstance(x, dict) and x.get(claim) == wanted for x in value)) \
                if isinstance(value, list) or claim == "SoDinhDanh" else value == wanted
            if not ok:
                out.append(f"{name}: session {claim} {show(wanted)}, {view} {show(value)}"
                           + (f" (submitted {show(sent_payload.get(name))})" if name in sent_payload else ""))
    return out


def _field_disagreements(views: Views) -> list[str]:
    registry = default_registry()
    session_fields = set(correspondence().get("session_fields") or {}) if views.sent_ref == SUBMISSION_REF else set()
    echoed = set(shared_fields(views.sent_ref, DOSSIER_REF)) - session_fields
    synced = set(shared_fields(DOSSIER_REF, ITEM_REF)) if views.item is not None else set()
    out = []
    for name in registry.property_names(DOSSIER_REF):
        province = {view: doc.get(name) for view, doc in views.province.items()}
        reference = province[next(iter(province))]
        sent = name in echoed and name in views.filed.payload
        bad = not all(same(reference, value) for value in province.values())
        bad = bad or (sent and not contains(views.filed.payload[name], reference))
        npsp = (views.item or {}).get(name)
        only_npsp = not bad and name in synced and not same(reference, npsp)
        if only_npsp and narrow(reference, npsp):  # name the element fields that differ, not the whole list
            for path, mine, theirs in narrow(reference, npsp):
                out.append(disagreement(f"{name}{path}", None, {"province": mine}, theirs, sent=False, synced=True,
                                        sender=views.filed.origin))
        elif bad or only_npsp:
            out.append(disagreement(name, views.filed.payload.get(name), province, npsp, sent=sent,
                                    synced=name in synced, sender=views.filed.origin))
    return out


def narrow(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """Where two lists of objects of one length differ: ``([i].Field, a's value, b's value)``; [] otherwise."""
    if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(isinstance(x, dict) for x in [*a, *b])):
        return []
    return [(f"[{i}].{key}", x.get(key), y.get(key)) for i, (x, y) in enumerate(zip(a, b, strict=True))
            for key in dict.fromkeys([*x, *y]) if not same(x.get(key), y.get(key))]


def _renamed_disagreements(views: Views) -> list[str]:
    progress = [p.get("item") for p in (views.record or {}).get("progress") or [] if isinstance(p, dict)]
    latest = progress[-1] if progress and isinstance(progress[-1], dict) else None
    if latest is None:
        return []
    out = []
    current = views.province.get("GET") or views.reference
    for ref, names in (correspondence().get("renamed") or {}).items():
        if ref != PROGRESS_REF:
            continue
        for theirs, ours in names.items():
            if theirs in latest and not same(latest[theirs], current.get(ours)):
                out.append(f"{ours}: province {show(current.get(ours))}, NPSP progress {theirs} "
                           f"{show(latest[theirs])}")
    return out


@check("SYNC-20", criterion="sync", severity="critical",
       title="The submission, the province's views and the national ledger agree field by field",
       rule=f"contracts/schemas/{DOSSIER_REF}, {SUBMISSION_REF}, {ITEM_REF}: a field both define carries one value; "
            f"{CORRESPONDENCE} (session and renamed fields)",
       requires=("sso", "submission", "sync"), detects=("sync-fee-from-wrong-field", "channel-not-synced"))
def views_agree(ctx: CheckContext) -> str:
    """For the catalogue set (a seeded and a minimal dossier of every offered procedure, with and without fee):
    what was submitted, the 201 answer, GET by MaHoSo, the citizen's list entry, the officer's GET and the
    national ledger's latest DongBoHoSoMC item (and its latest progress item) agree on every field their
    contracts share; identity is the session's everywhere. With forwarding and the officer API, a dossier the
    national portal forwards agrees likewise between what it sent (ForwardedDossier), the officer's view and the
    ledger. Each disagreement is reported as ``field: submitted X, province Y, NPSP Z``."""
    batch = _catalogue_set(ctx)
    accepted = batch.accepted()
    fees = [f for f in accepted if (f.dossier or {}).get("PhiPhaiNop")]
    ctx.require_evidence(len(accepted) - len(fees), 1, "accepted dossiers of a free procedure")
    ctx.require_evidence(len(fees), 1, "accepted dossiers of a procedure with a fee")
    codes = [str((f.dossier or {})["MaHoSo"]) for f in accepted]
    forwarded = _forwarded_views(ctx)
    if forwarded is not None:
        codes.append(str(forwarded.filed.payload["MaHoSo"]))
    records = _await_ledger(ctx, codes, lambda r: bool(r.get("item")) and bool(r.get("progress")))
    everything = [Views(f, _province_views(ctx, batch.session, f), records[c]) for f, c in zip(accepted, codes,
                                                                                             strict=False)]
    if forwarded is not None:
        forwarded.record = records[codes[-1]]
        everything.append(forwarded)
    found = {}
    for views in everything:
        unread = [view for view, doc in views.province.items() if not doc]
        if unread:
            found[views.filed.label] = [f"not returned by {', '.join(unread)} (HTTP 200 with the dossier expected)"]
            continue
        wrong = _field_disagreements(views) + _renamed_disagreements(views)
        if views.sent_ref == SUBMISSION_REF:
            wrong += _session_disagreements(views, batch.session)
        if wrong:
            found[views.filed.label] = wrong
    first = next(iter(found), "")
    ctx.expect(not found, f"{len(found)} of {len(everything)} dossiers disagree across views: {first}: "
               + "; ".join(found.get(first, [])[:3]), expected="one value per field in every view",
               actual={k: listed(v) for k, v in found.items()},
               reproduce="GET /api/v1/dossiers/{MaHoSo}, GET /officer/dossiers/{MaHoSo}, "
                         "GET <national>/_ledger/sync/dossiers/{MaHoSo}")
    missing = [c for c in codes if not (records[c] or {}).get("item")]
    if missing:
        raise _not_in_ledger(ctx, missing, len(codes), "SYNC-02")
    compared = len(default_registry().property_names(DOSSIER_REF))
    views_named = ", ".join(everything[0].province) + ", NPSP"
    also = (f"; forwarded {forwarded.filed.label} agrees with what the national portal sent in the officer's view "
            "and the ledger" if forwarded is not None else "")
    return (f"{len(accepted)} submitted dossiers ({len(fees)} with a fee, {len(accepted) - len(fees)} free, "
            f"{sum(f.minimal for f in accepted)} minimal) agree in {views_named} on each of the {compared} Dossier "
            f"fields ({len(shared_fields(DOSSIER_REF, ITEM_REF))} shared with DongBoHoSoMCItem, the progress item's "
            f"renamed ones and the session's identity){also}")


def _forwarded_views(ctx: CheckContext) -> Views | None:
    """A dossier the national portal forwards, as it sent it and as the officer sees it (officer API and
    forwarding declared; None otherwise, or when the province refused it: FWD-01's verdict)."""
    if "forwarding" not in ctx.target.capabilities or not _officer_api(ctx):
        return None
    sent = ctx.national.forward_dossier()
    body = sent.get("dossier") if isinstance(sent.get("dossier"), dict) else None
    if sent.get("status_code") != 201 or body is None:
        return None
    officer = ctx.province.officer_dossier(str(body["MaHoSo"]))
    doc = _json(officer) if officer.status_code == 200 and isinstance(_json(officer), dict) else {}
    filed = Filed(str(body.get("MaTTHC")), False, body, 201, doc, (0, 0), origin="forwarded")
    return Views(filed, {"officer": doc}, None, sent_ref=FORWARDED_REF)


# -- SYNC-21 ---------------------------------------------------------------------------------------
_WALK = ("receive", "process", "complete", "return-result")


def _walk(ctx: CheckContext, session: CitizenSession, payload: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                          list[str]]:
    """Submit and walk a dossier to its result; each change's dates against when it happened."""
    sent = _now_ms()
    submitted = ctx.province.submit(session, payload, name="submit (dates walk)")
    doc = _json(submitted)
    if submitted.status_code != 201 or not isinstance(doc, dict):
        raise CheckFailure("a valid submission for the dates walk was refused", expected="201",
                           actual=evidence(submitted), reproduce="POST /api/v1/dossiers")
    problems = [f"after submission: {p}" for p in date_problems(doc, _now_ms(), window=(sent, _now_ms()))]
    for action in _WALK:
        before = dict(doc)
        started = _now_ms()
        moved = ctx.province.officer_action(doc["MaHoSo"], action)
        body = _json(moved)
        if moved.status_code != 200 or not isinstance(body, dict):
            raise CheckFailure(f"officer {action} on {doc['MaHoSo']} failed", expected="HTTP 200",
                               actual=evidence(moved), reproduce=f"POST /officer/dossiers/{doc['MaHoSo']}/actions")
        doc, ended = body, _now_ms()
        problems += [f"after {action}: {p}" for p in date_problems(doc, ended) + _set_by(before, doc, started, ended)]
    return doc, problems


def _set_by(before: dict[str, Any], after: dict[str, Any], started: int, ended: int) -> list[str]:
    """Event dates an action set (changed) that are not the time of the action (within the skew)."""
    promises = set(correspondence().get("promises") or [])
    low, high = started - SKEW_SECONDS * 1000 - 999, ended + SKEW_SECONDS * 1000
    out = []
    for name in _date_fields(DOSSIER_REF, default_registry()):
        moment = thoi_gian_ms(after.get(name))
        if name in promises or moment is None or after.get(name) == before.get(name):
            continue
        if not low <= moment <= high:
            out.append(f"{name} {after[name]} is {(moment - started) / 1000:+.0f} s from the action that set it")
    return out


@check("SYNC-21", criterion="sync", severity="major",
       title="A dossier's dates are in their order, in Asia/Ho_Chi_Minh, and none lies in the future",
       rule=f"contracts/schemas/{THOI_GIAN_REF} (yyyyMMddHHmmss, Asia/Ho_Chi_Minh); {CORRESPONDENCE} date_order "
            "(NgayNopHoSo ≤ NgayTiepNhan ≤ NgayHenTra …); contracts/schemas/sync.schema.json#/$defs/DongBoHoSoMCItem",
       requires=("sso", "submission"), detects=("hen-tra-before-tiep-nhan",))
def dates_in_order(ctx: CheckContext) -> str:
    """Every dossier of the catalogue set, and (officer API) one walked to its result: each date readable, in
    the contract's order (NgayNopHoSo ≤ NgayTiepNhan ≤ NgayHenTra, …), no event later than now plus a minute,
    the history's times non-decreasing, NgayNopHoSo within a minute of when haicap submitted (a UTC clock is 7 h
    off), each date set by an officer action the time of that action; the national ledger's items (sync) obey
    the same order and their progress times do not go back."""
    batch = _catalogue_set(ctx)
    accepted = batch.accepted()
    ctx.require_evidence(len(accepted), 1, "accepted dossiers to read dates from")
    problems: dict[str, list[str]] = {}
    for filed in accepted:
        found = date_problems(filed.dossier or {}, _now_ms(), window=filed.window)
        if found:
            problems[filed.label] = found
    walked = ""
    if _officer_api(ctx):
        payload = next(f.payload for f in accepted if not (f.dossier or {}).get("PhiPhaiNop"))
        doc, found = _walk(ctx, batch.session, payload)
        walked = f"; {doc['MaHoSo']} walked 1→{doc.get('TrangThaiHoSo')} by {', '.join(_WALK)}"
        if found:
            problems[f"{doc['MaHoSo']} (walked)"] = found
    ctx.expect(not problems, f"{len(problems)} dossier(s) with dates out of order or out of time: "
               + "; ".join(f"{k}: {v[0]}" for k, v in list(problems.items())[:3]),
               expected="NgayNopHoSo ≤ NgayTiepNhan ≤ NgayHenTra …, events not in the future, Asia/Ho_Chi_Minh",
               actual={k: listed(v) for k, v in problems.items()}, reproduce="GET /api/v1/dossiers/{MaHoSo}")
    synced = _ledger_dates(ctx, [str((f.dossier or {})["MaHoSo"]) for f in accepted]) \
        if "sync" in ctx.target.capabilities else ""
    return (f"dates of {len(accepted)} new dossiers in order and within {SKEW_SECONDS} s of their submission"
            f"{walked}{synced}")


def _ledger_dates(ctx: CheckContext, codes: list[str]) -> str:
    records = _await_ledger(ctx, codes, lambda r: bool(r.get("item")))
    problems: dict[str, list[str]] = {}
    for code, record in records.items():
        item = (record or {}).get("item")
        if not item:
            continue
        found = date_problems(item, _now_ms(), ref=ITEM_REF, history=None)
        steps = [p.get("item") or {} for p in (record or {}).get("progress") or []]
        times = [thoi_gian_ms(s.get("ThoiDiemXuLy")) for s in steps]
        found += [f"progress ThoiDiemXuLy {b['ThoiDiemXuLy']} received after {a['ThoiDiemXuLy']} goes back"
                  for a, b, ta, tb in zip(steps, steps[1:], times, times[1:], strict=False) if ta and tb and tb < ta]
        if found:
            problems[code] = found
    ctx.expect(not problems, f"national items of {len(problems)} dossier(s) have dates out of order: "
               + "; ".join(f"{k}: {v[0]}" for k, v in list(problems.items())[:3]),
               expected="the item's dates in the contract's order", actual={k: listed(v) for k, v in problems.items()},
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo}")
    arrived = sum(1 for r in records.values() if (r or {}).get("item"))
    return f"; {arrived} of {len(codes)} national items in order, progress times non-decreasing"


# -- concurrency -----------------------------------------------------------------------------------
def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (each in its own thread, released together); results in order."""
    import threading

    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=10)
        return call()

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _statuses_of(record: dict[str, Any] | None, status: str) -> tuple[int, int]:
    """How many DongBoHoSoMC items and progress items of ``status`` the ledger holds for one dossier."""
    items = sum(1 for h in (record or {}).get("history") or [] if str(h.get("TrangThaiHoSo")) == status)
    renamed = correspondence().get("renamed", {}).get(PROGRESS_REF, {})
    state_field = next((theirs for theirs, ours in renamed.items() if ours == "TrangThaiHoSo"), "TrangThaiHoSo")
    progress = sum(1 for p in (record or {}).get("progress") or []
                   if str((p.get("item") or {}).get(state_field)) == status)
    return items, progress


def _ledger_once(ctx: CheckContext, codes: list[str], status: str) -> tuple[str, list[str]]:
    """Wait (bounded) for ``status`` of each dossier in the ledger, let a duplicate land, and count: (summary,
    problems)."""
    records = _await_ledger(ctx, codes, lambda r: _statuses_of(r, status) >= (1, 1))
    arrived = [c for c in codes if _statuses_of(records[c], status) >= (1, 1)]
    if arrived:
        time.sleep(min(0.5, ctx.target.sync_sla_seconds / 20))  # a second effect travels right behind the first
    problems = []
    for code in arrived:
        items, progress = _statuses_of(ctx.national.synced_dossier(code), status)
        if (items, progress) != (1, 1):
            problems.append(f"{code}: the national ledger holds {items} DongBoHoSoMC item(s) and {progress} progress "
                            f"item(s) of state {status} (one each expected)")
    late = f"; state {status} of {len(codes) - len(arrived)} not there within the SLA (SYNC-01's verdict)" \
        if len(arrived) < len(codes) else ""
    return (f"the national ledger holds one item and one progress item of state {status} for {len(arrived)} of "
            f"{len(codes)}{late}"), problems


def _fresh_citizen_dossier(ctx: CheckContext, purpose: str, fee: bool) -> tuple[CitizenSession, dict[str, Any]]:
    citizen, session = citizen_session(ctx, purpose)
    code = next(p["MaTTHC"] for p in load_procedures() if bool(p.get("PhiPhaiNop")) == fee)
    payload = scenario_data(ctx).submission(code, None, citizen)
    payload["MaXa"] = _commune(ctx, purpose, payload["MaXa"])
    response = ctx.province.submit(session, payload, name=f"submit ({purpose})")
    body = _json(response)
    if response.status_code != 201 or not isinstance(body, dict):
        raise CheckFailure(f"{purpose}: a valid submission of {code} was refused (HTTP {response.status_code})",
                           expected="201", actual=evidence(response),
                           reproduce=curl_line("POST", ctx.target.province_url + "/api/v1/dossiers", body=payload))
    return session, body


# -- SYNC-22 ---------------------------------------------------------------------------------------
@check("SYNC-22", criterion="sync", severity="major", requires=("sso", "submission", "officer_api"),
       title="An officer action sent twice, at once or in a row, moves the dossier once",
       rule="contracts/schemas/dossier.schema.json#/$defs/OfficerAction (receive 1→2; anything else is 409); "
            "RFC 9110 §9.2.2 (a repeated request must not repeat the effect)",
       detects=("double-transition-on-concurrent-action",))
def repeated_action_once(ctx: CheckContext) -> str:
    """Two concurrent ``receive`` actions on a new dossier, then a third: exactly one answers 200, the others 409;
    the dossier's history has one state-2 entry; the national ledger (sync) one state-2 item and progress item."""
    _, dossier = _fresh_citizen_dossier(ctx, "SYNC-22", fee=False)
    code = dossier["MaHoSo"]
    answers = concurrently([lambda: ctx.province.officer_action(code, "receive", name="receive (concurrent)")] * COPIES)
    answers.append(ctx.province.officer_action(code, "receive", name="receive (again)"))
    statuses = [a.status_code for a in answers]
    stored = ctx.province.officer_dossier(code)
    doc = _json(stored) if stored.status_code == 200 else None
    ctx.require_evidence(int(isinstance(doc, dict)), 1, f"officer views of {code} after the actions")
    history = [str(e.get("TrangThaiHoSo")) for e in (doc or {}).get("LichSu") or [] if isinstance(e, dict)]
    problems = []
    if statuses.count(200) != 1 or any(s not in (200, 409) for s in statuses):
        problems.append(f"answers {', '.join(f'HTTP {s}' for s in statuses)} (one 200, then 409 expected)")
    if history.count("2") != 1:
        problems.append(f"the dossier's history has {history.count('2')} state-2 entries ({'→'.join(history)})")
    summary = "no sync declared"
    if "sync" in ctx.target.capabilities:
        summary, found = _ledger_once(ctx, [code], "2")
        problems += found
    repro = (f"{COPIES} concurrent POST /officer/dossiers/{code}/actions {{\"action\": \"receive\"}}, then one more")
    ctx.expect(not problems, f"receive sent {COPIES} times at once and once more took effect more than once on "
               f"{code}: " + "; ".join(problems), expected="one 200 and 409s; one state change everywhere",
               actual={"answers": [evidence(a, 200) for a in answers], "history": history}, reproduce=repro)
    return (f"{COPIES} concurrent receives and one more on {code}: {', '.join(f'HTTP {s}' for s in statuses)}; one "
            f"state-2 entry in its history ({'→'.join(history)}); {summary}")


# -- FWD-07 ----------------------------------------------------------------------------------------
def _fresh_national_code(ctx: CheckContext, rng: Any) -> str:
    day = f"{today_vn():%y%m%d}"
    for _ in range(20):
        code = f"{NATIONAL_PORTAL_AGENCY}-{day}-{rng.randrange(1, 10_000):04d}"
        if not _officer_api(ctx) or ctx.province.officer_dossier(code).status_code == 404:
            return code
    raise CheckError(f"the province holds each of 20 national-portal codes tried for {day}")


def _forward_copies(ctx: CheckContext, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The national side forwards ``body`` :data:`COPIES` times at once (one control client per thread, made
    before the start so that the copies leave together)."""
    clients = [CounterpartClient(ctx.target.national_url, ctx.target.control_token) for _ in range(COPIES)]
    try:
        return concurrently([lambda c=c: c.forward_dossier(**body) for c in clients])
    finally:
        for client in clients:
            client.close()


def _ack_problems(records: list[dict[str, Any]], code: str, created: int) -> list[str]:
    statuses = [r.get("status_code") for r in records]
    out = []
    if statuses.count(201) != created or any(s not in (200, 201) for s in statuses):
        out.append(f"answers {', '.join(f'HTTP {s}' for s in statuses)} ({created} × 201 stored, the rest 200 "
                   "already received, expected)")
    for r in records:
        answer = r.get("answer") if isinstance(r.get("answer"), dict) else {}
        if r.get("status_code") in (200, 201) and (answer.get("MaHoSo") != code
                                                  or answer.get("acknowledged") is not True):
            out.append(f"an acknowledgement names {show(answer.get('MaHoSo'))}, acknowledged "
                       f"{show(answer.get('acknowledged'))} (expected {code}, true)")
    return out


@check("FWD-07", criterion="forwarding", severity="critical", requires=("forwarding",),
       title="A forwarded dossier delivered twice, at once or in a row, is stored and synced once",
       rule="RFC 9110 §9.2.2 (idempotent: the effect of several identical requests is that of one); "
            "contracts/province-dossier.openapi.yaml POST /national/forwarded-dossiers 201 stored, 200 already "
            "received (idempotent)",
       detects=("duplicate-on-concurrent-forward",))
def forward_idempotent(ctx: CheckContext) -> str:
    """The national side forwards a dossier, then the same one twice more in a row: 201, then 200 twice, same
    MaHoSo. It forwards another one twice at once: one 201 and one 200. Each is stored once (officer API: one
    history entry) and synced once (sync: one state-1 item and progress item in the national ledger)."""
    first = ctx.national.forward_dossier()
    body = dict(first.get("dossier") or {})
    code = str(first.get("MaHoSo") or body.get("MaHoSo"))
    ctx.require_evidence(int(first.get("status_code") == 201), 1,
                         f"forwarded dossiers accepted (HTTP {first.get('status_code')} for {code}: FWD-01's verdict)",
                         reproduce="POST <national>/_control/forward")
    again = [ctx.national.forward_dossier(**body) for _ in range(COPIES)]
    problems = [f"in a row: {p}" for p in _ack_problems([first, *again], code, 1)]
    rng = ctx.rng("FWD-07")
    for _ in range(3):  # a code an earlier run left on a persistent province answers 200 twice: take another
        twin = {**body, "MaHoSo": _fresh_national_code(ctx, rng)}
        pair = _forward_copies(ctx, twin)
        if any(r.get("status_code") != 200 for r in pair):
            break
    problems += [f"at once: {p}" for p in _ack_problems(pair, twin["MaHoSo"], 1)]
    stored = ""
    if _officer_api(ctx):
        for target in (code, twin["MaHoSo"]):
            doc = _json(ctx.province.officer_dossier(target)) or {}
            entries = len(doc.get("LichSu") or []) if isinstance(doc, dict) else 0
            if entries != 1:
                problems.append(f"{target} has {entries} history entries after repeated deliveries (1 expected)")
        stored = "; each stored with one history entry"
    synced = ""
    if "sync" in ctx.target.capabilities:
        summary, found = _ledger_once(ctx, [code, twin["MaHoSo"]], "1")
        problems += found
        synced = f"; {summary}"
    ctx.expect(not problems, "a forwarded dossier delivered more than once took effect more than once: "
               + "; ".join(problems[:3]), expected="one 201 then 200s, one dossier, one creation synced",
               actual={"in_a_row": [r.get("status_code") for r in [first, *again]],
                       "at_once": [{"status": r.get("status_code"), "answer": r.get("answer")} for r in pair],
                       "problems": problems},
               reproduce=f"{COPIES} concurrent POST <national>/_control/forward with the same body (MaHoSo "
                         f"{twin['MaHoSo']})")
    return (f"{code} forwarded 3 times in a row: HTTP {', '.join(str(r.get('status_code')) for r in [first, *again])};"
            f" {twin['MaHoSo']} {COPIES} times at once: HTTP {', '.join(str(r.get('status_code')) for r in pair)}"
            f"{stored}{synced}")


# -- PAY-16 ----------------------------------------------------------------------------------------
#: how long a callback may take to settle on the province once the pay page answered (bounded wait)
SETTLE_SECONDS = 10.0


def _payable(ctx: CheckContext) -> tuple[CitizenSession, dict[str, Any], dict[str, Any]]:
    """A new dossier with a fee (officer API: asked for its fee, state 6) and its started payment."""
    session, dossier = _fresh_citizen_dossier(ctx, "PAY-16", fee=True)
    code = dossier["MaHoSo"]
    if _officer_api(ctx):
        for action in ("receive", "request-payment"):
            moved = ctx.province.officer_action(code, action)
            if moved.status_code != 200:
                raise CheckFailure(f"officer {action} on {code} failed", expected="HTTP 200", actual=evidence(moved),
                                   reproduce=f"POST /officer/dossiers/{code}/actions")
    started = ctx.province.start_payment(session, code)
    body = _json(started)
    if started.status_code != 201 or not isinstance(body, dict) or not body.get("UrlThanhToan"):
        raise CheckFailure(f"starting the online payment of {code} failed (PAY-01 judges INIT)",
                           expected="201 with MaThamChieu and UrlThanhToan", actual=evidence(started),
                           reproduce=f"POST /api/v1/dossiers/{code}/payments")
    return session, dossier, body


def _paid_state(ctx: CheckContext, session: CitizenSession, code: str, ref: str) -> dict[str, Any]:
    """The dossier's paid fields and the payment's outcome, once it left pending (bounded wait)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        doc = _json(ctx.province.dossier(session, code)) or {}
        payments = (_json(ctx.province.payments(session, code)) or {}).get("items") or []
        mine = [p for p in payments if isinstance(p, dict) and p.get("MaThamChieu") == ref]
        if (mine and mine[0].get("TrangThai") != "pending") or time.monotonic() > deadline:
            view = {k: doc.get(k) for k in ("DaThanhToan", "SoTienDaThanhToan", "PhiPhaiNop")}
            return {**view, "payments": [{k: p.get(k) for k in ("MaThamChieu", "SoTien", "TrangThai")}
                                         for p in payments if isinstance(p, dict)]}
        time.sleep(0.05)


def _delivery_problems(deliveries: list[Any], how: str) -> list[str]:
    out = []
    for d in deliveries:
        d = d if isinstance(d, dict) else {}
        answer = d.get("answer") if isinstance(d.get("answer"), dict) else {}
        if d.get("status_code") != 200 or answer.get("MaLoi") != "00":
            out.append(f"{how}: a copy answered HTTP {d.get('status_code')}, MaLoi {show(answer.get('MaLoi'))} "
                       "(200 with MaLoi 00 expected: a replay is accepted and changes nothing)")
    return out


@check("PAY-16", criterion="payment", severity="critical", requires=("sso", "submission", "payment"),
       title="A payment callback delivered twice, at once or in a row, pays once",
       rule="RFC 9110 §9.2.2 (idempotent); contracts/province-dossier.openapi.yaml POST /DvcPayment/Confirm "
            "(idempotent: MaLoi 00 also for a replay, which changes nothing)",
       detects=("double-effect-on-concurrent-callback",))
def callback_idempotent(ctx: CheckContext) -> str:
    """The national platform delivers the success callback of a new payment twice at once (``deliveries=2`` on
    its pay page: at-least-once delivery), then replays it twice in a row: every copy is answered 200 with MaLoi
    "00", the dossier shows its fee paid exactly once (SoTienDaThanhToan = PhiPhaiNop) and the payment is paid."""
    session, dossier, started = _payable(ctx)
    code, ref, fee = dossier["MaHoSo"], str(started["MaThamChieu"]), int(started.get("SoTien") or 0)
    url = str(started["UrlThanhToan"])
    page = ctx.province.port.request("GET", f"{url}{'&' if '?' in url else '?'}result=success&deliveries={COPIES}",
                                     name="national pay (deliveries)")
    paid = _json(page) or {}
    ctx.require_evidence(len(paid.get("deliveries") or []), COPIES,
                         f"callback copies delivered by the pay page (HTTP {page.status_code})",
                         reproduce=f"GET {url}?result=success&deliveries={COPIES}")
    problems = _delivery_problems(paid["deliveries"], "at once")
    at_once = _paid_state(ctx, session, code, ref)
    replays = [ctx.national.replay_callback(ref) for _ in range(COPIES)]
    problems += _delivery_problems(replays, "in a row")
    after = _paid_state(ctx, session, code, ref)
    for label, state in (("after the concurrent copies", at_once), ("after the replays", after)):
        if state.get("DaThanhToan") is not True or state.get("SoTienDaThanhToan") != fee:
            problems.append(f"{label}: DaThanhToan {show(state.get('DaThanhToan'))}, SoTienDaThanhToan "
                            f"{show(state.get('SoTienDaThanhToan'))} for a fee of {fee}")
    mine = [p for p in after["payments"] if p.get("MaThamChieu") == ref]
    if [p.get("TrangThai") for p in mine] != ["paid"]:
        problems.append(f"payment {ref}: {show(mine)} (one payment, paid, expected)")
    ctx.expect(not problems, f"the callback of {ref} delivered {2 * COPIES} times did not pay exactly once: "
               + "; ".join(problems[:3]), expected={"DaThanhToan": True, "SoTienDaThanhToan": fee},
               actual={"after_concurrent": at_once, "after_replays": after, "problems": problems},
               reproduce=f"GET {url}?result=success&deliveries={COPIES}; POST <national>/_control/payment/{ref}/replay"
                         " twice")
    return (f"success callback of {ref} (dossier {code}, fee {fee}) delivered {COPIES} times at once and replayed "
            f"{COPIES} times: each answered 200 MaLoi 00; paid once (SoTienDaThanhToan {after['SoTienDaThanhToan']}),"
            " one payment, paid")


# -- SUB-16 ----------------------------------------------------------------------------------------
#: pages of 200 an officer-list search reads at most before giving up on finding a dossier known to match
SEARCH_PAGES = 5
#: seeded records SUB-16 tries per procedure before it has no dossier to list
TRIES = 24


def _page(ctx: CheckContext, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = ctx.province.port.request("GET", path, headers=headers, name=path.split("?")[0])
    body = _json(response)
    return response.status_code, body if isinstance(body, dict) else {}


def _citizen_list_problems(ctx: CheckContext, session: CitizenSession, codes: list[str]) -> list[str]:
    """The citizen's list: exactly their dossiers, newest first, total right, limit and offset honoured."""
    headers = session.headers()
    out = []
    status, full = _page(ctx, "/api/v1/dossiers?limit=200", headers)
    items = [i for i in full.get("items") or [] if isinstance(i, dict)]
    got = [i.get("MaHoSo") for i in items]
    newest_first = list(reversed(codes))
    if status != 200 or got != newest_first or full.get("total") != len(codes):
        out.append(f"GET /api/v1/dossiers (HTTP {status}): {show(got)}, total {show(full.get('total'))} for a "
                   f"citizen with {show(newest_first)} (newest first)")
    strangers = [i.get("MaHoSo") for i in items if not any(isinstance(x, dict) and x.get("SoDinhDanh") == session.cccd
                                                            for x in i.get("DinhDanhCHS") or [])]
    if strangers:
        out.append(f"GET /api/v1/dossiers lists dossiers of another applicant: {show(strangers)}")
    for offset in range(0, len(codes), 2):
        status, page = _page(ctx, f"/api/v1/dossiers?limit=2&offset={offset}", headers)
        part = [i.get("MaHoSo") for i in page.get("items") or [] if isinstance(i, dict)]
        want = newest_first[offset: offset + 2]
        if status != 200 or part != want or page.get("limit") != 2 or page.get("offset") != offset:
            out.append(f"GET /api/v1/dossiers?limit=2&offset={offset} (HTTP {status}): {show(part)}, limit "
                       f"{show(page.get('limit'))}, offset {show(page.get('offset'))} (expected {show(want)})")
    return out


def _officer_filter_problems(ctx: CheckContext, query: dict[str, str], member: str | None,
                             excluded: list[str]) -> list[str]:
    """Every item of GET /officer/dossiers?<query> matches it; ``member`` is found; ``excluded`` are not."""
    headers = ctx.target.officer_headers()
    base = "/officer/dossiers?" + "&".join(f"{k}={v}" for k, v in query.items())
    out: list[str] = []
    found: set[Any] = set()
    total = None
    for page_no in range(SEARCH_PAGES):
        status, page = _page(ctx, f"{base}&limit=200&offset={page_no * 200}", headers)
        items = [i for i in page.get("items") or [] if isinstance(i, dict)]
        if status != 200:
            return [f"GET {base} answered HTTP {status}"]
        if len(items) > 200:
            out.append(f"GET {base}&limit=200 returned {len(items)} items")
        wrong = [i for i in items if any(str(i.get(k)) != v for k, v in query.items())]
        if wrong:
            sample = ", ".join(f"{i.get('MaHoSo')} ({', '.join(f'{k} {i.get(k)}' for k in query)})" for i in wrong[:3])
            out.append(f"GET {base} returned {len(wrong)} of {len(items)} items that do not match: {sample}")
            return out  # the filter is not applied: presence says nothing more
        found |= {i.get("MaHoSo") for i in items}
        total = page.get("total")
        if len(items) < 200 or (member in found):
            break
    if member is not None and member not in found and not (isinstance(total, int) and total > SEARCH_PAGES * 200):
        out.append(f"GET {base} does not return {member}, which matches it")
    out += [f"GET {base} returns {code}, which does not match it" for code in excluded if code in found]
    return out


def list_filters(operation: str = "officerListDossiers") -> list[str]:
    """The filters of a list operation of contracts/province-dossier.openapi.yaml: its query parameters that are
    not paging (integers: limit, offset); each names the Dossier field it filters on."""
    document = default_registry().openapi("province-dossier")
    for item in document.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                return [p["name"] for p in op.get("parameters") or [] if isinstance(p, dict) and p.get("in") == "query"
                        and (p.get("schema") or {}).get("type") != "integer"]
    return []


def _officer_lists(ctx: CheckContext, codes: list[str]) -> tuple[list[str], str]:
    """Receive the first dossier (state 2), then for each filter of GET /officer/dossiers (from the contract), and
    for all of them together, ask with the values of one dossier: only matching items, that dossier among them,
    the dossiers that differ not."""
    moved = ctx.province.officer_action(codes[0], "receive")
    ctx.expect(moved.status_code == 200, f"an officer cannot receive {codes[0]}, acknowledged with 201 (HTTP "
               f"{moved.status_code})", expected="HTTP 200, state 2", actual=evidence(moved),
               reproduce=f"POST /officer/dossiers/{codes[0]}/actions {{\"action\": \"receive\"}}")
    docs = {c: _json(ctx.province.officer_dossier(c)) or {} for c in codes}
    filters = list_filters()
    ctx.require_evidence(len(filters), 1, "filters of officerListDossiers in contracts/province-dossier.openapi.yaml")
    problems: list[str] = []
    asked = 0
    for member in (codes[0], codes[1]):
        mine = docs[member]
        for names in [[name] for name in filters] + [filters]:
            query = {name: str(mine.get(name)) for name in names}
            excluded = [c for c in codes if any(str(docs[c].get(n)) != v for n, v in query.items())]
            problems += _officer_filter_problems(ctx, query, member, excluded)
            asked += 1
    return problems, (f"{asked} officer lists filtered by {', '.join(filters)} (alone and together, with the values "
                      f"of a received and a new dossier) return only matching items, the dossier asked for and not "
                      "the ones that differ")


@check("SUB-16", criterion="submission", severity="major", requires=("sso", "submission"),
       title="Every list returns what it says: the citizen's dossiers, paged; the officer's, filtered",
       rule="contracts/province-dossier.openapi.yaml listDossiers (the signed-in citizen's dossiers, newest first, "
            "limit/offset) and officerListDossiers (MaXa, TrangThaiHoSo filters); "
            "contracts/schemas/dossier.schema.json#/$defs/DossierList",
       detects=("list-filter-ignored",))
def lists_return_what_they_say(ctx: CheckContext) -> str:
    """A new citizen files three dossiers: their list holds exactly those, newest first, with the right total,
    and pages of two (limit/offset) cut it as they say. With the officer API, one dossier is received (state 2):
    GET /officer/dossiers filtered by each of its contract's filters (MaXa, TrangThaiHoSo), and by all together,
    with the values of the received and of a new dossier, returns only matching items, includes the dossier asked
    for and leaves out those of the three that differ."""
    citizen, session = citizen_session(ctx, "SUB-16")
    data = scenario_data(ctx)
    codes: list[str] = []
    refused = 0
    for procedure in [p["MaTTHC"] for p in load_procedures()][:3]:
        for _ in range(TRIES):  # a refusal is another check's verdict (SUB-15, SUB-01): try the next record
            payload = data.submission(procedure, None, citizen)
            payload["MaXa"] = _commune(ctx, f"SUB-16:{procedure}", payload["MaXa"])
            answer = ctx.province.submit(session, payload, name="submit (lists)")
            body = _json(answer)
            if answer.status_code == 201 and isinstance(body, dict):
                codes.append(body["MaHoSo"])
                break
            refused += 1
    ctx.require_evidence(len(codes), 3, f"dossiers accepted to list ({refused} seeded submissions refused: SUB-01 and "
                         "SUB-15 judge refusals)")
    problems = _citizen_list_problems(ctx, session, codes)
    officer = "no officer API declared"
    if _officer_api(ctx):
        found, officer = _officer_lists(ctx, codes)
        problems += found
    ctx.expect(not problems, f"{len(problems)} list(s) do not return what they say: " + "; ".join(problems[:3]),
               expected="each item matches the list's filter; items known to match are present",
               actual=listed(problems), reproduce="GET /api/v1/dossiers?limit=2&offset=0; GET /officer/dossiers?"
                                                  "TrangThaiHoSo=2")
    return (f"citizen list of {len(codes)} new dossiers newest first, total {len(codes)}, pages of 2 exact; "
            f"{officer}")
