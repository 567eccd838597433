"""Synchronisation of dossier records to the national portal (DongBoHoSoMC / CapNhatTienDoHoSoMC / TraCuuHoSo).

The rules are the sync contract's (``contracts/national-sync.openapi.yaml`` /sync/service and
``contracts/schemas/sync.schema.json``): every state change of a dossier reaches the national portal within the
profile's SLA (``sync_sla_seconds``), each item carries the contract's required fields, the status history only
follows the transitions of the dossier contract, each change is recorded once, every change to a state the
contract lists in ``x-requires-progress`` has its CapNhatTienDoHoSoMC item, every time is Asia/Ho_Chi_Minh, and
what TraCuuHoSo returns agrees with the province. (Outages and expired sessions: :mod:`.sync_faults`.)

No vacuous pass: each check first requires the evidence its rule needs (``ctx.require_evidence``: the state
changes the journeys promise, the transitions, the timestamps). When that evidence is missing only because
nothing arrived at the national side — SYNC-01's verdict — the check is skipped naming SYNC-01, never passed.
An item the national side refused is reported as "rejected: <field>: <why>", not as "did not reach".

Evidence comes from both sides: the province's own history of a dossier (its ``LichSu``, with the time of each
state change) and the national counterpart's ledger (the latest item, and every item received with its receive
time). The dossiers are walked through their states by the shipped journeys (birth registration, a supplement,
a withdrawal and, when payment is declared, a paid fee), once per process, then the ledger is read with a
single bounded wait: SLA plus a small margin after the last change, never more.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import PreparedJourney, prepare_journey, scenario_data
from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, check
from haicap.contract_registry import default_registry
from haicap.dossier_states import state_machine
from haicap.http_port import ResponseLike
from haicap.province_client import CitizenSession, LoginFailed
from haicap.vn_time import describe_offset, to_ms, vn_date_code, whole_hours_off

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TRANSITION_TABLE",
    "Arrival",
    "duplicate_changes",
    "invalid_transitions",
    "judge_event_time",
    "judge_ma_ho_so_date",
    "listed",
    "match_arrivals",
    "missing_progress",
    "rejection_reason",
    "thoi_gian_ms",
]

RULE = "contracts/national-sync.openapi.yaml /sync/service DongBoHoSoMC"
ITEM_REF = "sync.schema.json#/$defs/DongBoHoSoMCItem"
PROGRESS_REF = "sync.schema.json#/$defs/CapNhatTienDoHoSoMCItem"
#: a province's clock may differ from haicap's by this much before an event time counts as wrong
CLOCK_SKEW_MS = 2000

#: The transition table of the dossier contract (``dossier.schema.json`` ``x-transitions``, read by
#: haicap.dossier_states): action → ("2|6", "4"), the source states joined by "|" and the target.
TRANSITION_TABLE: dict[str, tuple[str, str]] = {
    t.action: ("|".join(t.sources), t.target) for t in state_machine().transitions.values()
}
#: (from, to) pairs a dossier's status history may contain.
ALLOWED_TRANSITIONS: frozenset[tuple[str, str]] = state_machine().allowed_steps()
#: A new dossier enters the national record in state 1 (Mới đăng ký).
INITIAL_STATUS = "1"

#: The journeys that walk dossiers through their states (scenarios/library), and whether the walk must pass.
#: The paid journey is optional evidence: a payment defect is the payment checks' verdict, not sync's.
WALKS: tuple[tuple[str, bool], ...] = (
    ("birth-registration", True),
    ("death-registration-supplement", True),
    ("marriage-withdrawal", True),
    ("permanent-residence-paid", False),
)
#: ThoiDiemXuLy has one-second resolution: a change happened up to 999 ms after the time it carries.
RESOLUTION_MS = 1000
#: Extra wait beyond the SLA for the ledger to be read (resolution of the change time plus a poll interval).
MARGIN_SECONDS = 1.5
#: Dossier fields that carry its state; TraCuuHoSo must agree with the province on each one both sides hold.
STATE_FIELDS = ("TrangThaiHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTuChoi", "NgayKetThucXuLy", "NgayTra")

#: entries of a list shown in full in a failure's evidence; the rest are counted ("+8 more")
SHOWN = 10


# -- pure helpers (tests/test_checks_sync.py) -----------------------------------------------------
def listed(items: list[Any], limit: int = SHOWN) -> list[Any]:
    """The first ``limit`` items, then ``"+N more"`` for the rest, so evidence never drops entries silently."""
    return items[:limit] + ([f"+{len(items) - limit} more"] if len(items) > limit else [])


def thoi_gian_ms(value: Any) -> int | None:
    """A ``yyyyMMddHHmmss`` time (Asia/Ho_Chi_Minh) as epoch milliseconds, or None if it is not one."""
    return to_ms(value)


def rejection_reason(rejections: list[dict[str, Any]], ma_ho_so: str, status: str, *,
                     service: str = "DongBoHoSoMC") -> str | None:
    """``"rejected: NgayHenTra: 'x' does not match …"`` when the national side refused the item of ``ma_ho_so``
    in state ``status`` (TrangThaiHoSo, or TrangThai for progress), else None: what happened, not "did not reach"."""
    state_field = "TrangThai" if service == "CapNhatTienDoHoSoMC" else "TrangThaiHoSo"
    for refusal in reversed(rejections):
        item = refusal.get("item") if isinstance(refusal.get("item"), dict) else {}
        if (refusal.get("MaHoSo") != ma_ho_so or refusal.get("service", service) != service
                or str(item.get(state_field)) != status):
            continue
        errors = [e for e in refusal.get("errors") or [] if isinstance(e, dict)]
        why = "; ".join(f"{e.get('field', '?')}: {e.get('message', '')}" for e in errors[:3]) or "no reason given"
        return f"rejected: {why}" + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")
    return None


def missing_progress(province_history: list[dict[str, Any]], progress: list[dict[str, Any]],
                     required: frozenset[str]) -> list[dict[str, str]]:
    """The province's changes to a state in ``required`` with no CapNhatTienDoHoSoMC item of that TrangThai,
    matched in order (each ledger progress item serves one change)."""
    received = [str((p.get("item") or {}).get("TrangThai")) for p in progress]
    missing: list[dict[str, str]] = []
    position = 0
    for entry in province_history:
        status = str(entry.get("TrangThaiHoSo"))
        if status not in required:
            continue
        try:
            position = received.index(status, position) + 1
        except ValueError:
            missing.append({"TrangThai": status, "ThoiDiemXuLy": str(entry.get("ThoiDiemXuLy", ""))})
    return missing


def judge_event_time(field_name: str, value: Any, earliest_ms: int, latest_ms: int) -> str | None:
    """What is wrong with an event time (a ThoiGian that records when something happened) that must lie between
    ``earliest_ms`` (before the walk began) and ``latest_ms`` (when the national side received it), each widened
    by the clock skew; None when it does. A whole number of hours off is a time-zone error, said so."""
    moment = to_ms(value)
    if moment is None:
        return f"{field_name} {value!r} is not a yyyyMMddHHmmss time"
    low, high = earliest_ms - CLOCK_SKEW_MS - RESOLUTION_MS, latest_ms + CLOCK_SKEW_MS
    if low <= moment <= high:
        return None
    error = moment - (low if moment < low else high)
    hours = whole_hours_off(error, tolerance_ms=max(120_000, high - low))
    if hours is not None:
        return describe_offset(field_name, hours) + f" ({value})"
    if moment > high:
        return f"{field_name} {value} is {error / 1000:.0f} s after the national side received it"
    return f"{field_name} {value} is {-error / 1000:.0f} s before the dossier was walked"


_MA_HO_SO_DATE = re.compile(r"-(\d{6})-\d{4}$")


def judge_ma_ho_so_date(ma_ho_so: str, earliest_ms: int, latest_ms: int) -> str | None:
    """What is wrong with the date part of a MaHoSo created between the two instants; None when it is the
    Vietnam date of one of them (or the MaHoSo has no ``-yyMMdd-nnnn`` tail: its format is another check's)."""
    found = _MA_HO_SO_DATE.search(ma_ho_so)
    if found is None:
        return None
    day = found.group(1)
    vn_days = {vn_date_code(earliest_ms), vn_date_code(latest_ms)}
    if day in vn_days:
        return None
    utc_days = {time.strftime("%y%m%d", time.gmtime(t / 1000)) for t in (earliest_ms, latest_ms)}
    expected = "/".join(sorted(vn_days))
    if day in utc_days:
        return f"the MaHoSo date {day} is the UTC date; in Viet Nam it was {expected} when the dossier was created"
    return f"the MaHoSo date {day} is not the Vietnam date of the dossier's creation ({expected})"


@dataclass(frozen=True)
class Arrival:
    """One state change of the province and the ledger entry that recorded it (None: not received)."""

    status: str
    changed: str  # the province's ThoiDiemXuLy
    changed_ms: int | None
    received_ms: int | None

    @property
    def delay_ms(self) -> int | None:
        if self.received_ms is None or self.changed_ms is None:
            return None
        return self.received_ms - self.changed_ms

    def late(self, sla_seconds: float) -> bool:
        """Received, but certainly after the SLA (the change time is truncated to the second)."""
        delay = self.delay_ms
        return delay is not None and delay - (RESOLUTION_MS - 1) > sla_seconds * 1000

    def early(self) -> bool:
        """Received before the change time it carries (beyond clock skew): the time is wrong, not the sync."""
        delay = self.delay_ms
        return delay is not None and delay < -CLOCK_SKEW_MS

    def zone_error(self, sla_seconds: float) -> str | None:
        """``"ThoiDiemXuLy is 7 h behind: a UTC time sent as Vietnam time"`` when the change time is off the
        receipt by whole hours (within the SLA), else None."""
        delay = self.delay_ms
        if delay is None:
            return None
        hours = whole_hours_off(-delay, tolerance_ms=int(sla_seconds * 1000) + RESOLUTION_MS)
        return None if hours is None else describe_offset("ThoiDiemXuLy", hours)

    def evidence(self) -> dict[str, Any]:
        delay = self.delay_ms
        return {"TrangThaiHoSo": self.status, "changed": self.changed,
                "received_after_s": None if delay is None else round(delay / 1000, 3)}


def match_arrivals(province_history: list[dict[str, Any]], ledger_history: list[dict[str, Any]]) -> list[Arrival]:
    """Pair each state change of the province (in order) with the first later ledger entry of that status.

    Ledger entries left over are updates without a state change (the paid flag) or duplicates; a change with
    no entry is missing.
    """
    arrivals: list[Arrival] = []
    position = 0
    for entry in province_history:
        status = str(entry.get("TrangThaiHoSo"))
        changed = str(entry.get("ThoiDiemXuLy", ""))
        received: int | None = None
        for index in range(position, len(ledger_history)):
            if str(ledger_history[index].get("TrangThaiHoSo")) == status:
                received = int(ledger_history[index]["received_ms"])
                position = index + 1
                break
        arrivals.append(Arrival(status, changed, thoi_gian_ms(changed), received))
    return arrivals


def invalid_transitions(statuses: list[str]) -> list[str]:
    """The steps of a status history that the transition table does not allow (``"1→10"``; ``"→4"`` for a
    history that does not start at 1). Repeats of a status are updates, not transitions."""
    path = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    bad = [] if not path or path[0] == INITIAL_STATUS else [f"→{path[0]}"]
    bad.extend(f"{a}→{b}" for a, b in itertools.pairwise(path) if (a, b) not in ALLOWED_TRANSITIONS)
    return bad


def duplicate_changes(
    province_history: list[dict[str, Any]],
    ledger_history: list[dict[str, Any]],
    progress: list[dict[str, Any]],
    *,
    content_updates: int = 0,
) -> dict[str, Any]:
    """What the ledger recorded more than once for one dossier (empty: nothing).

    ``statuses``: ledger items per status beyond the province's state changes, less ``content_updates``
    (updates that change fields without a state change, e.g. the paid flag, are not duplicates);
    ``progress``: CapNhatTienDoHoSoMC items received more than once with identical content.
    """
    changes = Counter(str(e.get("TrangThaiHoSo")) for e in province_history)
    received = Counter(str(e.get("TrangThaiHoSo")) for e in ledger_history)
    extra = {s: n - changes[s] for s, n in received.items() if n > changes[s]}
    out: dict[str, Any] = {}
    if sum(extra.values()) > content_updates:
        out["statuses"] = {"extra_items_per_status": extra, "content_updates_expected": content_updates}
    seen = Counter(orjson.dumps(p.get("item"), option=orjson.OPT_SORT_KEYS) for p in progress)
    repeated = [orjson.loads(blob) for blob, n in seen.items() if n > 1]
    if repeated:
        out["progress"] = [{"TrangThai": (r or {}).get("TrangThai"), "ThoiDiemXuLy": (r or {}).get("ThoiDiemXuLy"),
                            "times": seen[orjson.dumps(r, option=orjson.OPT_SORT_KEYS)]} for r in repeated]
    return out


# -- the walk and the observation (once per process) ----------------------------------------------
@dataclass
class Walked:
    """A dossier a journey walked through its states, as the province and the national ledger see it."""

    journey: str
    ma_ho_so: str
    session: CitizenSession | None
    #: the states the journey's expect_synced steps promise to reach the national side
    expected: list[str] = field(default_factory=list)
    province: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        return [e for e in self.province.get("LichSu") or [] if isinstance(e, dict)]

    @property
    def ledger_history(self) -> list[dict[str, Any]]:
        return list((self.record or {}).get("history") or [])

    def arrivals(self) -> list[Arrival]:
        return match_arrivals(self.history, self.ledger_history)

    def complete(self) -> bool:
        return all(a.received_ms is not None for a in self.arrivals())

    @property
    def progress(self) -> list[dict[str, Any]]:
        return list((self.record or {}).get("progress") or [])


@dataclass
class Observation:
    walked: list[Walked]
    sla_seconds: float
    stats_before: dict[str, Any]
    finished: float  # monotonic time the ledger was last read
    started_ms: int = 0  # wall clock before the first journey began
    walked_ms: int = 0  # wall clock after the last change
    deadline: float = 0.0  # monotonic: SLA plus margin after the last change

    def expected_changes(self) -> int:
        return sum(len(d.expected) for d in self.walked)

    def arrived(self) -> list[Walked]:
        """The walked dossiers every state change of which reached the national ledger."""
        return [d for d in self.walked if d.record and d.complete()]


def _body(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def _province_view(ctx: CheckContext, ma_ho_so: str, session: CitizenSession | None) -> dict[str, Any]:
    response = ctx.province.dossier(session, ma_ho_so) if session else ctx.province.officer_dossier(ma_ho_so)
    if response.status_code != 200:
        raise CheckFailure(f"reading dossier {ma_ho_so} from the province failed", expected="HTTP 200",
                           actual={"status": response.status_code, "body": _body(response)},
                           reproduce=f"GET /api/v1/dossiers/{ma_ho_so}")
    return response.json()  # type: ignore[no-any-return]


def _walk_and_observe(ctx: CheckContext, prepared: list[tuple[PreparedJourney, bool]]) -> Observation:
    sla = ctx.target.sync_sla_seconds
    stats_before = ctx.national.sync_stats()
    started_ms = int(time.time() * 1000)
    walked: list[Walked] = []
    for journey, required in prepared:
        run = journey.run(check=required)
        if run.ma_ho_so and run.passed:
            expected = [status for code, status, *_ in run.sync_expectations if code == run.ma_ho_so]
            walked.append(Walked(run.scenario.id, run.ma_ho_so, run.state.get("session"), expected))
    if not walked:
        raise CheckError("no journey walked a dossier through its states")
    walked_ms = int(time.time() * 1000)
    deadline = time.monotonic() + sla + MARGIN_SECONDS  # every change happened before now
    for dossier in walked:
        dossier.province = _province_view(ctx, dossier.ma_ho_so, dossier.session)
    pending = list(walked)
    while True:
        for dossier in pending:
            dossier.record = ctx.national.synced_dossier(dossier.ma_ho_so)
        pending = [d for d in pending if not d.complete()]
        if not pending or time.monotonic() >= deadline:
            return Observation(walked, sla, stats_before, time.monotonic(), started_ms, walked_ms, deadline)
        time.sleep(0.1)


def shared_observation(ctx: CheckContext) -> Observation:
    """The walked dossiers and the ledger's view of them, computed once per process (other criteria read the
    same walk: the signed results of its completed dossiers, SIG-…)."""
    return _observed(ctx)


def _observed(ctx: CheckContext) -> Observation:
    """The walked dossiers and the ledger's view of them, computed once per process."""
    scenario_data(ctx)  # resolve shared data before entering the shared factory (its lock is not reentrant)
    prepared = [(prepare_journey(ctx, name, defer_sync=True), required) for name, required in WALKS
                if required or ctx.target.capabilities >= {"payment"}]
    return ctx.shared("sync:observed", lambda: _walk_and_observe(ctx, prepared))


def _where(dossier: Walked) -> str:
    return f"{dossier.ma_ho_so} ({dossier.journey})"


def _skip_unless_arrived(seen: Observation, what: str) -> list[Walked]:
    """The walked dossiers whose changes all arrived; none: skipped, since arrival is SYNC-01's verdict."""
    arrived = seen.arrived()
    if not arrived:
        raise CheckSkipped(
            f"could not judge {what}: the state changes of none of the {len(seen.walked)} walked dossiers reached "
            f"the national ledger within the {seen.sla_seconds:g} s SLA (SYNC-01's verdict)",
            reproduce=f"GET <national>/_ledger/sync/dossiers/{seen.walked[0].ma_ho_so}")
    return arrived


def _disagreement(name: str, province: Any, national: Any) -> dict[str, Any]:
    """The two values, with the time-zone diagnosis when a time is off by whole hours."""
    out: dict[str, Any] = {"province": province, "TraCuuHoSo": national}
    mine, theirs = to_ms(province), to_ms(national)
    hours = whole_hours_off(theirs - mine, tolerance_ms=0) if mine is not None and theirs is not None else None
    if hours is not None:
        out["diagnosis"] = describe_offset(name, hours)
    return out


# -- the checks ------------------------------------------------------------------------------------
@check("SYNC-01", criterion="sync", severity="critical", requires=("sync",),
       title="Every state change reaches the national portal within the SLA",
       rule=f"{RULE}: a DongBoHoSoMC item on every TrangThaiHoSo change; SLA = profile sync_sla_seconds",
       detects=("no-status-sync", "late-sync"))
def every_change_in_time(ctx: CheckContext) -> str:
    """Dossiers walked through their states (journeys): each state change in the province's history is in the
    national ledger, received no later than the SLA after the change (ThoiDiemXuLy → receive time). A change the
    national side refused is reported with the reason it gave ("rejected: …"), apart from one never received."""
    seen = _observed(ctx)
    ctx.require_evidence(sum(len(d.history) for d in seen.walked), seen.expected_changes(),
                         "state changes in the province's LichSu of the walked dossiers (the journeys' expect_synced "
                         "steps)", reproduce="GET /api/v1/dossiers/{MaHoSo} (LichSu)")
    rejections = ctx.national.sync_rejections() if any(not d.complete() for d in seen.walked) else []
    missing: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    zoned: list[dict[str, Any]] = []
    total = refused = 0
    delays: list[int] = []
    for dossier in seen.walked:
        for arrival in dossier.arrivals():
            total += 1
            if arrival.delay_ms is not None:
                delays.append(arrival.delay_ms)
            if arrival.received_ms is None:
                reason = rejection_reason(rejections, dossier.ma_ho_so, arrival.status)
                refused += reason is not None
                missing.append({"MaHoSo": dossier.ma_ho_so, **arrival.evidence(),
                                "outcome": reason or f"not received within {seen.sla_seconds:g} s"})
            elif (zone := arrival.zone_error(seen.sla_seconds)) is not None:
                zoned.append({"MaHoSo": dossier.ma_ho_so, **arrival.evidence(), "diagnosis": zone})
            elif arrival.late(seen.sla_seconds) or arrival.early():
                late.append({"MaHoSo": dossier.ma_ho_so, **arrival.evidence()})
    zones = sorted({z["diagnosis"] for z in zoned})
    ctx.expect(not missing and not late and not zoned,
               f"{len(missing) + len(late) + len(zoned)} of {total} state changes did not reach the national portal "
               f"within {seen.sla_seconds:g}s ({len(missing) - refused} not received within the SLA, {refused} "
               f"rejected by the national side, {len(late)} received late or before their ThoiDiemXuLy"
               + (f", {len(zoned)} timed in another zone: {'; '.join(zones)}" if zoned else "") + ")",
               expected=f"every state change received within {seen.sla_seconds:g}s of its ThoiDiemXuLy",
               actual={"not_received": listed(missing), "late": listed(late), "time_zone": listed(zoned)},
               reproduce="haicap certify --only sync; then GET <national>/_ledger/sync/dossiers/{MaHoSo} against "
                         "GET /api/v1/dossiers/{MaHoSo} LichSu")
    slowest = f"slowest {max(delays) / 1000:.1f} s" if delays else "none timed"
    return (f"{total} state changes of {len(seen.walked)} dossiers ({', '.join(d.journey for d in seen.walked)}) "
            f"reached the national portal, {slowest} of a {seen.sla_seconds:g} s SLA (ThoiDiemXuLy to receipt)")


@check("SYNC-02", criterion="sync", severity="critical", requires=("sync",),
       title="Synchronised items carry every required field of the contract",
       rule=f"contracts/schemas/{ITEM_REF} required fields; {RULE}", detects=("sync-missing-fields",))
def required_fields(ctx: CheckContext) -> str:
    """The national side refused none of the walked dossiers' items, and the latest item of each validates
    against DongBoHoSoMCItem. Dossiers of which no item has arrived (read again now) have no fields to judge:
    arrival is SYNC-01's rule, so if any is missing this check is skipped, saying which and how to look."""
    seen = _observed(ctx)
    mine = {d.ma_ho_so for d in seen.walked}
    refused = [r for r in ctx.national.sync_rejections() if r.get("MaHoSo") in mine]
    ctx.expect(not refused, f"the national portal refused {len(refused)} item(s) of {len(mine)} walked dossiers",
               expected="no item refused",
               actual=listed([{"MaHoSo": r.get("MaHoSo"), "service": r.get("service"),
                               "errors": listed(r.get("errors") or [], 5)} for r in refused], 5),
               reproduce="GET <national>/_ledger/sync/rejections")
    validator = default_registry().validator(ITEM_REF)
    invalid: dict[str, Any] = {}
    absent: list[str] = []
    for dossier in seen.walked:
        record = dossier.record if (dossier.record or {}).get("item") else ctx.national.synced_dossier(dossier.ma_ho_so)
        item = (record or {}).get("item")
        if item is None:
            absent.append(dossier.ma_ho_so)
            continue
        violations = validator.violations(item)
        if violations:
            invalid[dossier.ma_ho_so] = listed([{"field": v.field, "message": v.message} for v in violations], 5)
    first = next(iter(invalid), "{MaHoSo}")
    ctx.expect(not invalid, f"{len(invalid)} synchronised item(s) do not validate against {ITEM_REF}",
               expected=f"items valid against {ITEM_REF}", actual=invalid,
               reproduce=f"GET <national>/_ledger/sync/dossiers/{first} (item)")
    if absent:
        raise CheckSkipped(
            f"could not check fields: nothing arrived within the SLA for {len(absent)} of {len(seen.walked)} "
            f"walked dossiers ({seen.sla_seconds:g} s after the last change, read again since) — a timing "
            "problem (SYNC-01's verdict), not a field defect"
            + (f"; the {len(seen.walked) - len(absent)} that arrived carry every required field" if
               len(absent) < len(seen.walked) else "")
            + f". Not arrived: {', '.join(listed(absent, 5))}",
            reproduce=f"GET <national>/_ledger/sync/dossiers/{absent[0]}")
    ctx.require_evidence(len(seen.walked) - len(absent), len(seen.walked), "latest national items of the walked "
                         "dossiers validated")
    required = default_registry().required_names(ITEM_REF)
    return (f"the latest items of {len(seen.walked)} of {len(seen.walked)} walked dossiers validate against "
            f"DongBoHoSoMCItem ({len(required)} required fields); the national side refused none of their items")


def _refused_on_new_dossier(ctx: CheckContext) -> str:
    """SYNC-03's probe (officer API only): forbidden officer actions on a new dossier are refused with 409 and
    change nothing."""
    data = scenario_data(ctx)
    citizen = data.citizen()
    try:
        session = ctx.province.login(citizen["SoDinhDanh"])
    except LoginFailed as exc:
        raise CheckError(f"single sign-on failed, no dossier to act on: {exc}") from None
    submitted = ctx.province.submit(session, data.submission("1.001193", None, citizen))
    if submitted.status_code != 201:
        raise CheckError(f"submitting a dossier failed (HTTP {submitted.status_code}): {str(_body(submitted))[:200]}")
    ma_ho_so = submitted.json()["MaHoSo"]
    refusals: list[str] = []
    for action in ("return-result", "complete"):
        answer = ctx.province.officer_api_action(ma_ho_so, action)
        refusals.append(f"{action} → HTTP {answer.status_code}")
        ctx.expect(answer.status_code == 409,
                   f"officer action {action!r} on new dossier {ma_ho_so} (state 1) was not refused with 409",
                   expected=f"HTTP 409 ({action} starts from {TRANSITION_TABLE[action][0]})",
                   actual={"status": answer.status_code, "body": _body(answer)},
                   reproduce=f"POST /officer/dossiers/{ma_ho_so}/actions {{\"action\": \"{action}\"}}")
    status = _province_view(ctx, ma_ho_so, session).get("TrangThaiHoSo")
    ctx.expect(str(status) == INITIAL_STATUS, f"refused actions moved dossier {ma_ho_so}",
               expected=INITIAL_STATUS, actual=status)
    return f"on new dossier {ma_ho_so} officer {', '.join(refusals)}, it stayed in state {status}"


@check("SYNC-03", criterion="sync", severity="major", requires=("sync", "back_office"),
       title="Status transitions follow the dossier state table",
       rule="contracts/schemas/dossier.schema.json#/$defs/OfficerAction (transition table); "
            f"{RULE} TrangThaiHoSo history",
       detects=("invalid-status-transition",))
def valid_transitions(ctx: CheckContext) -> str:
    """An officer action that the table does not allow (return-result or complete on a new dossier) is
    refused with 409 and leaves the dossier new (probed with the officer API only: an operator or a plugin is
    never asked to attempt a forbidden action); the ledger's status history of every walked dossier contains
    only allowed transitions."""
    probed = (_refused_on_new_dossier(ctx) if "officer_api" in ctx.target.capabilities and ctx.target.officer_token
              else "forbidden officer actions not attempted (no officer API: a back office is asked for allowed "
                   "actions only)")
    seen = _observed(ctx)
    made = sum(max(0, len(d.history) - 1) for d in seen.walked)
    ctx.require_evidence(made, len(seen.walked), "transitions in the province's LichSu of the walked dossiers")
    bad = {}
    steps: set[str] = set()
    judged = 0
    for dossier in seen.walked:
        statuses = [str(h.get("TrangThaiHoSo")) for h in dossier.ledger_history]
        path = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
        judged += max(0, len(path) - 1)
        steps.update(f"{a}→{b}" for a, b in itertools.pairwise(path))
        wrong = invalid_transitions(statuses)
        if wrong:
            bad[_where(dossier)] = {"history": statuses, "not_allowed": wrong}
    ctx.expect(not bad, f"the national status history of {len(bad)} dossier(s) contains transitions the table "
                        "does not allow", expected=sorted(f"{a}→{b}" for a, b in ALLOWED_TRANSITIONS), actual=bad,
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo}")
    if judged == 0:
        raise CheckSkipped(
            f"{probed}, but none of the {made} transitions the province made reached the national ledger "
            "(SYNC-01's verdict): the national status history could not be judged",
            reproduce=f"GET <national>/_ledger/sync/dossiers/{seen.walked[0].ma_ho_so}")
    return (f"{probed}; the national "
            f"status histories of {len(seen.walked)} dossiers hold only allowed transitions ({judged} of {made} "
            f"made: {', '.join(sorted(steps, key=lambda t: tuple(int(x) for x in t.split('→'))))})")


@check("SYNC-04", criterion="sync", severity="major", requires=("sync",),
       title="Each state change is recorded once (no duplicates)",
       rule="contracts/national-sync.openapi.yaml /sync/service: each change recorded once (DongBoHoSoMC "
            "isUpdating, CapNhatTienDoHoSoMC)", detects=("duplicate-sync",))
def no_duplicates(ctx: CheckContext) -> str:
    """For every walked dossier the ledger holds one item per state change (an update that changes fields,
    like the paid flag, is not a duplicate) and no progress item twice with identical content."""
    seen = _observed(ctx)
    settle = min(0.5, seen.sla_seconds / 20) - (time.monotonic() - seen.finished)
    if settle > 0:  # a re-send follows its original closely: give it a moment to land
        time.sleep(settle)
    found: dict[str, Any] = {}
    items = changes = progress = paid = 0
    for dossier in seen.walked:
        record = ctx.national.synced_dossier(dossier.ma_ho_so) or {}
        paid_updates = 1 if dossier.province.get("DaThanhToan") and dossier.province.get("PhiPhaiNop") else 0
        items += len(record.get("history") or [])
        changes += len(dossier.history)
        progress += len(record.get("progress") or [])
        paid += paid_updates
        duplicates = duplicate_changes(dossier.history, record.get("history") or [], record.get("progress") or [],
                                       content_updates=paid_updates)
        if duplicates:
            found[_where(dossier)] = duplicates
    stats = ctx.national.sync_stats()
    recreated = int(stats.get("duplicates", 0)) - int(seen.stats_before.get("duplicates", 0))
    ctx.expect(not found, f"{len(found)} of {len(seen.walked)} walked dossiers were recorded more than once",
               expected="one item per state change, one progress item per change",
               actual={"dossiers": found, "create_duplicates_counted_by_the_national_side": recreated},
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo} (history, progress)")
    if items < changes or not progress:
        _skip_unless_arrived(seen, "duplicates")
        short = (f"{items} DongBoHoSoMC items for {changes} state changes (SYNC-01's verdict)" if items < changes
                 else f"no CapNhatTienDoHoSoMC item for {changes} state changes (SYNC-11's verdict)")
        raise CheckSkipped(
            f"no duplicate among the {items} DongBoHoSoMC and {progress} CapNhatTienDoHoSoMC items that arrived, but "
            f"too few arrived to judge every change: {short}",
            reproduce=f"GET <national>/_ledger/sync/dossiers/{seen.walked[0].ma_ho_so}")
    ctx.require_evidence(items, changes, "DongBoHoSoMC items for the walked dossiers' state changes")
    return (f"{len(seen.walked)} dossiers: {items} national items for {changes} state changes"
            + (f" and {paid} paid-flag update{'s' if paid > 1 else ''}" if paid else "")
            + f", {progress} progress items, none repeated")


@check("SYNC-05", criterion="sync", severity="major", requires=("sync",),
       title="TraCuuHoSo agrees with the province's current state",
       rule="contracts/national-sync.openapi.yaml /sync/service TraCuuHoSo (the latest DongBoHoSoMC item)",
       detects=("no-status-sync",))
def lookup_consistent(ctx: CheckContext) -> str:
    """For every walked dossier, the national portal's latest item (what TraCuuHoSo returns) has the
    province's current TrangThaiHoSo and state dates."""
    seen = _observed(ctx)
    differ: dict[str, Any] = {}
    compared = 0
    states: list[str] = []
    for dossier in seen.walked:
        item = (dossier.record or {}).get("item") or {}
        current = _province_view(ctx, dossier.ma_ho_so, dossier.session)
        fields = [f for f in STATE_FIELDS if f in current and (f in item or f == "TrangThaiHoSo")]
        compared += len(fields)
        states.append(str(current.get("TrangThaiHoSo")))
        mismatch = {f: _disagreement(f, current.get(f), item.get(f) if item else "(not found: error_code -5)")
                    for f in fields if str(current.get(f)) != str(item.get(f))}
        if mismatch:
            differ[_where(dossier)] = mismatch
    ctx.require_evidence(compared, len(seen.walked), "state fields compared (TrangThaiHoSo of each walked dossier)")
    ctx.expect(not differ, f"TraCuuHoSo disagrees with the province on {len(differ)} of {len(seen.walked)} dossiers",
               expected="the latest national item equals the province's current state", actual=differ,
               reproduce="POST <national>/sync/service {\"service\": \"TraCuuHoSo\", \"MaHoSo\": ...}")
    return (f"TraCuuHoSo's item (the national latest) agrees with the province on {len(seen.walked)} of "
            f"{len(seen.walked)} dossiers ({compared} state fields compared; current states {', '.join(states)})")


def _required_progress() -> frozenset[str]:
    """The states the contract says need a CapNhatTienDoHoSoMC item (``x-requires-progress``)."""
    states = default_registry().schema(PROGRESS_REF).get("x-requires-progress")
    if not isinstance(states, list) or not states:
        raise CheckError(f"the contract declares no x-requires-progress list at contracts/schemas/{PROGRESS_REF}")
    return frozenset(str(s) for s in states)


def _missing_progress(ctx: CheckContext, seen: Observation, arrived: list[Walked],
                      required: frozenset[str]) -> dict[str, list[dict[str, str]]]:
    """Per dossier, the required progress items not in the ledger by the walk's deadline (progress may travel
    in a later call than its item), each with what happened to it ("rejected: …" or "not received")."""
    missing: dict[str, list[dict[str, str]]] = {}
    while True:
        for dossier in arrived:
            record = ctx.national.synced_dossier(dossier.ma_ho_so) or {}
            gaps = missing_progress(dossier.history, list(record.get("progress") or []), required)
            if gaps:
                missing[dossier.ma_ho_so] = gaps
            else:
                missing.pop(dossier.ma_ho_so, None)
        if not missing or time.monotonic() >= seen.deadline:
            break
        time.sleep(0.1)
    rejections = ctx.national.sync_rejections() if missing else []
    for ma_ho_so, gaps in missing.items():
        for gap in gaps:
            gap["outcome"] = rejection_reason(rejections, ma_ho_so, gap["TrangThai"],
                                              service="CapNhatTienDoHoSoMC") or "not received"
    return missing


@check("SYNC-11", criterion="sync", severity="major", requires=("sync",),
       title="Every state change the contract lists has its CapNhatTienDoHoSoMC progress item",
       rule=f"contracts/schemas/{PROGRESS_REF} x-requires-progress; "
            "contracts/national-sync.openapi.yaml /sync/service CapNhatTienDoHoSoMC",
       detects=("no-progress-sync",))
def progress_for_each_change(ctx: CheckContext) -> str:
    """For every walked dossier whose DongBoHoSoMC changes arrived, each change to a state in the contract's
    ``x-requires-progress`` list has a CapNhatTienDoHoSoMC item with that TrangThai in the national ledger (in
    order), within the same SLA; a progress item the national side refused is reported with its reason."""
    seen = _observed(ctx)
    required = _required_progress()
    arrived = _skip_unless_arrived(seen, "progress items")
    states = ", ".join(sorted(required, key=int))
    needed = sum(1 for d in arrived for e in d.history if str(e.get("TrangThaiHoSo")) in required)
    ctx.require_evidence(needed, len(arrived), f"changes to a state of x-requires-progress ({states}) in the walked "
                                               "dossiers' LichSu")
    missing = _missing_progress(ctx, seen, arrived, required)
    count = sum(len(g) for g in missing.values())
    ctx.expect(not missing, f"{count} of {needed} state changes that need a CapNhatTienDoHoSoMC item have none in "
                            f"the national ledger ({seen.sla_seconds:g} s SLA)",
               expected=f"one CapNhatTienDoHoSoMC item per change to a state in x-requires-progress ({states})",
               actual={where: listed(gaps, 5) for where, gaps in missing.items()},
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo} (progress) against "
                         "GET /api/v1/dossiers/{MaHoSo} LichSu")
    skipped = len(seen.walked) - len(arrived)
    return (f"{needed} of {needed} changes to states {states} of {len(arrived)} "
            f"dossiers have their CapNhatTienDoHoSoMC item" + (f" ({skipped} dossiers not judged: their changes did "
                                                               "not all arrive, SYNC-01)" if skipped else ""))


_ZONE = re.compile(r"(\d+ h (?:behind|ahead): a \S+ time sent as Vietnam time)")


def _event_fields(ref: str) -> list[str]:
    names = default_registry().schema(ref).get("x-event-times")
    if not isinstance(names, list) or not names:
        raise CheckError(f"the contract declares no x-event-times list at contracts/schemas/{ref}")
    return [str(n) for n in names]


def _time_findings(seen: Observation, dossier: Walked, item_fields: list[str],
                   progress_fields: list[str]) -> tuple[int, list[str]]:
    """(event times judged, what is wrong) for one dossier's national record."""
    record = dossier.record or {}
    received = [int(h["received_ms"]) for h in dossier.ledger_history if isinstance(h.get("received_ms"), int)]
    judged, wrong = 0, []
    item = record.get("item") or {}
    for name in (f for f in item_fields if f in item):
        judged += 1
        if (problem := judge_event_time(name, item[name], seen.started_ms, max(received, default=0))) is not None:
            wrong.append(problem)
    for entry in dossier.progress:
        step = entry.get("item") or {}
        for name in (f for f in progress_fields if f in step):
            judged += 1
            problem = judge_event_time(name, step[name], seen.started_ms, int(entry.get("received_ms") or 0))
            if problem is not None:
                wrong.append(f"progress TrangThai {step.get('TrangThai')}: {problem}")
    judged += 1
    if (problem := judge_ma_ho_so_date(dossier.ma_ho_so, seen.started_ms, seen.walked_ms)) is not None:
        wrong.append(problem)
    return judged, wrong


@check("SYNC-12", criterion="sync", severity="major", requires=("sync",),
       title="Times and MaHoSo dates are Vietnam time (Asia/Ho_Chi_Minh)",
       rule="contracts/schemas/common.schema.json#/$defs/ThoiGian (yyyyMMddHHmmss, Asia/Ho_Chi_Minh); "
            f"contracts/schemas/{ITEM_REF} x-event-times; contracts/schemas/common.schema.json#/$defs/MaHoSo",
       detects=("utc-timestamps",))
def vietnam_time(ctx: CheckContext) -> str:
    """Every event time (the contract's ``x-event-times`` of DongBoHoSoMC and CapNhatTienDoHoSoMC items) of the
    walked dossiers, read as Vietnam time, lies between the start of the walk and the moment the national side
    received it (± clock skew); a time off by whole hours is reported as the time-zone error it is. The date part
    of each MaHoSo is the Vietnam date of its creation (a dossier created at 23:30 UTC is dated the next day)."""
    seen = _observed(ctx)
    arrived = _skip_unless_arrived(seen, "the times of the national items")
    item_fields, progress_fields = _event_fields(ITEM_REF), _event_fields(PROGRESS_REF)
    judged = 0
    wrong: dict[str, list[str]] = {}
    for dossier in arrived:
        count, problems = _time_findings(seen, dossier, item_fields, progress_fields)
        judged += count
        if problems:
            wrong[_where(dossier)] = problems
    ctx.require_evidence(judged, 2 * len(arrived), "event times and MaHoSo dates of the walked dossiers")
    shifted = sorted({m.group(1) for ps in wrong.values() for p in ps if (m := _ZONE.search(p))})
    ctx.expect(not wrong, f"{sum(map(len, wrong.values()))} times of {len(wrong)} of {len(arrived)} dossiers are not "
                          "Vietnam time" + (f" ({'; '.join(shifted)})" if shifted else ""),
               expected="event times between the walk's start and their receipt, read as Asia/Ho_Chi_Minh; MaHoSo "
                        "dated with the Vietnam date",
               actual={where: listed(problems, 6) for where, problems in wrong.items()},
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo} (item, progress)")
    return (f"{judged} event times and MaHoSo dates of {len(arrived)} dossiers are Vietnam time (each between the "
            "walk's start and its receipt)")
