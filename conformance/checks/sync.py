"""Synchronisation of dossier records to the national portal (DongBoHoSoMC / CapNhatTienDoHoSoMC / TraCuuHoSo).

The rules are DOMAIN.md "Dossier sync to NPSP" and the sync contract (``contracts/schemas/sync.schema.json``):
every state change of a dossier reaches the national portal within the profile's SLA
(``sync_sla_seconds``), each item carries the contract's required fields, the status history only follows the
transitions of the dossier contract, each change is recorded once, and what TraCuuHoSo returns agrees with the
province.

Evidence comes from both sides: the province's own history of a dossier (its ``LichSu``, with the time of each
state change) and the national counterpart's ledger (the latest item, and every item received with its receive
time). The dossiers are walked through their states by the shipped journeys (birth registration, a supplement,
a withdrawal and, when payment is declared, a paid fee), once per process, then the ledger is read with a
single bounded wait: SLA plus a small margin after the last change, never more.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import PreparedJourney, prepare_journey, scenario_data
from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, check
from haicap.contract_registry import default_registry
from haicap.dossier_states import state_machine
from haicap.http_port import ResponseLike
from haicap.province_client import CitizenSession, LoginFailed

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TRANSITION_TABLE",
    "Arrival",
    "duplicate_changes",
    "invalid_transitions",
    "listed",
    "match_arrivals",
    "thoi_gian_ms",
]

RULE = "DOMAIN.md: Dossier sync to NPSP"
ITEM_REF = "sync.schema.json#/$defs/DongBoHoSoMCItem"

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

_VN = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
#: entries of a list shown in full in a failure's evidence; the rest are counted ("+8 more")
SHOWN = 10


# -- pure helpers (tests/test_checks_sync.py) -----------------------------------------------------
def listed(items: list[Any], limit: int = SHOWN) -> list[Any]:
    """The first ``limit`` items, then ``"+N more"`` for the rest, so evidence never drops entries silently."""
    return items[:limit] + ([f"+{len(items) - limit} more"] if len(items) > limit else [])


def thoi_gian_ms(value: Any) -> int | None:
    """A ``yyyyMMddHHmmss`` time (Asia/Ho_Chi_Minh) as epoch milliseconds, or None if it is not one."""
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        return None
    try:
        moment = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=_VN)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


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


@dataclass
class Observation:
    walked: list[Walked]
    sla_seconds: float
    stats_before: dict[str, Any]
    finished: float  # monotonic time the ledger was last read


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
    walked: list[Walked] = []
    for journey, required in prepared:
        run = journey.run(check=required)
        if run.ma_ho_so and run.passed:
            walked.append(Walked(run.scenario.id, run.ma_ho_so, run.state.get("session")))
    if not walked:
        raise CheckError("no journey walked a dossier through its states")
    deadline = time.monotonic() + sla + MARGIN_SECONDS  # every change happened before now
    for dossier in walked:
        dossier.province = _province_view(ctx, dossier.ma_ho_so, dossier.session)
    pending = list(walked)
    while True:
        for dossier in pending:
            dossier.record = ctx.national.synced_dossier(dossier.ma_ho_so)
        pending = [d for d in pending if not d.complete()]
        if not pending or time.monotonic() >= deadline:
            return Observation(walked, sla, stats_before, time.monotonic())
        time.sleep(0.1)


def _observed(ctx: CheckContext) -> Observation:
    """The walked dossiers and the ledger's view of them, computed once per process."""
    scenario_data(ctx)  # resolve shared data before entering the shared factory (its lock is not reentrant)
    prepared = [(prepare_journey(ctx, name, defer_sync=True), required) for name, required in WALKS
                if required or ctx.target.capabilities >= {"payment"}]
    return ctx.shared("sync:observed", lambda: _walk_and_observe(ctx, prepared))


def _where(dossier: Walked) -> str:
    return f"{dossier.ma_ho_so} ({dossier.journey})"


# -- the checks ------------------------------------------------------------------------------------
@check("SYNC-01", criterion="sync", severity="critical", requires=("sync",),
       title="Every state change reaches the national portal within the SLA",
       rule=f"{RULE}: DongBoHoSoMC on every TrangThaiHoSo change; SLA = profile sync_sla_seconds",
       detects=("no-status-sync", "late-sync"))
def every_change_in_time(ctx: CheckContext) -> str:
    """Dossiers walked through their states (journeys): each state change in the province's history is in the
    national ledger, received no later than the SLA after the change (ThoiDiemXuLy → receive time)."""
    seen = _observed(ctx)
    missing: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    total = 0
    delays: list[int] = []
    for dossier in seen.walked:
        for arrival in dossier.arrivals():
            total += 1
            if arrival.delay_ms is not None:
                delays.append(arrival.delay_ms)
            if arrival.received_ms is None:
                missing.append({"MaHoSo": dossier.ma_ho_so, **arrival.evidence()})
            elif arrival.late(seen.sla_seconds):
                late.append({"MaHoSo": dossier.ma_ho_so, **arrival.evidence()})
    ctx.expect(not missing and not late,
               f"{len(missing) + len(late)} of {total} state changes did not reach the national portal within "
               f"{seen.sla_seconds:g}s ({len(missing)} not received within the SLA, {len(late)} received late)",
               expected=f"every state change received within {seen.sla_seconds:g}s of its ThoiDiemXuLy",
               actual={"not_received": listed(missing), "late": listed(late)},
               reproduce="haicap certify --only sync; then GET <national>/_ledger/sync/dossiers/{MaHoSo} against "
                         "GET /api/v1/dossiers/{MaHoSo} LichSu")
    slowest = f"slowest {max(delays) / 1000:.1f} s" if delays else "none timed"
    return (f"{total} state changes of {len(seen.walked)} dossiers ({', '.join(d.journey for d in seen.walked)}) "
            f"reached the national portal, {slowest} of a {seen.sla_seconds:g} s SLA (ThoiDiemXuLy to receipt)")


@check("SYNC-02", criterion="sync", severity="critical", requires=("sync",),
       title="Synchronised items carry every required field of the contract",
       rule=f"{RULE}; {ITEM_REF} required fields", detects=("sync-missing-fields",))
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
       rule=f"{RULE}: TrangThaiHoSo; dossier.schema.json#/$defs/OfficerAction (transition table)",
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
    bad = {}
    steps: set[str] = set()
    for dossier in seen.walked:
        statuses = [str(h.get("TrangThaiHoSo")) for h in dossier.ledger_history]
        path = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
        steps.update(f"{a}→{b}" for a, b in itertools.pairwise(path))
        wrong = invalid_transitions(statuses)
        if wrong:
            bad[_where(dossier)] = {"history": statuses, "not_allowed": wrong}
    ctx.expect(not bad, f"the national status history of {len(bad)} dossier(s) contains transitions the table "
                        "does not allow", expected=sorted(f"{a}→{b}" for a, b in ALLOWED_TRANSITIONS), actual=bad,
               reproduce="GET <national>/_ledger/sync/dossiers/{MaHoSo}")
    return (f"{probed}; the national "
            f"status histories of {len(seen.walked)} dossiers hold only allowed transitions "
            f"({', '.join(sorted(steps, key=lambda t: tuple(int(x) for x in t.split('→')))) or 'none'})")


@check("SYNC-04", criterion="sync", severity="major", requires=("sync",),
       title="Each state change is recorded once (no duplicates)",
       rule=f"{RULE}: DongBoHoSoMC isUpdating; CapNhatTienDoHoSoMC", detects=("duplicate-sync",))
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
    return (f"{len(seen.walked)} dossiers: {items} national items for {changes} state changes"
            + (f" and {paid} paid-flag update{'s' if paid > 1 else ''}" if paid else "")
            + f", {progress} progress items, none repeated")


@check("SYNC-05", criterion="sync", severity="major", requires=("sync",),
       title="TraCuuHoSo agrees with the province's current state",
       rule=f"{RULE}: TraCuuHoSo returns the latest DongBoHoSoMC item", detects=("no-status-sync",))
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
        mismatch = {f: {"province": current.get(f), "TraCuuHoSo": item.get(f)}
                    for f in fields if str(current.get(f)) != str(item.get(f))}
        if mismatch:
            differ[_where(dossier)] = mismatch
    ctx.expect(not differ, f"TraCuuHoSo disagrees with the province on {len(differ)} of {len(seen.walked)} dossiers",
               expected="the latest national item equals the province's current state", actual=differ,
               reproduce="POST <national>/sync/service {\"service\": \"TraCuuHoSo\", \"MaHoSo\": ...}")
    return (f"TraCuuHoSo's item (the national latest) agrees with the province on {len(seen.walked)} of "
            f"{len(seen.walked)} dossiers ({compared} state fields compared; current states {', '.join(states)})")
