"""Synchronisation under national faults: an outage of the sync API, and sync sessions that expire.

The rule (``contracts/national-sync.openapi.yaml`` /sync/service, 503 and 401 answers): while the national side
is down nothing is lost — every change made meanwhile reaches the national ledger after recovery, exactly once,
within the SLA counted from recovery — and a session the national side refused (error_code -1) is replaced by
a new login, then delivery goes on.

Both faults are global states of the counterpart, and other checks (and pytest-xdist workers) may be syncing
their own dossiers of the same province at the same time. They are designed so those checks cannot be hurt:

- The outage lasts ``3 × R`` from the last change the check makes, where R is the province's retry interval
  (the reference province's ``outbox_retry_max`` in the sandbox, 0.4 s; a profile's ``sync_retry_seconds``,
  default 1 s). A change another check makes meanwhile is delayed by at most the time SYNC-10 takes for its
  three changes (capped: the change budget), the outage and one retry interval. SYNC-10 runs only when that
  leaves ``CONCURRENT_MARGIN`` of the SLA for the delivery itself, with a change budget of at least
  ``MIN_CHANGE_BUDGET`` (else it reports that it could not run, naming the figures); no other check waits less
  than the SLA. Three times R makes a province that gives up after a few attempts show it, whatever its back-off.
- Expiring sessions costs a correct province one login; a province that does not log in again is broken for
  every check from then on, which is the defect itself. SYNC-19 has the highest id of the criterion, so in a
  sequential run it is the last sync check.
Neither check switches anything on without a bound: the outage is always given in seconds (never "until
switched off"), so a check that dies midway leaves no outage behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from haicap.conformance.checks.sync import (
    MARGIN_SECONDS,
    duplicate_changes,
    listed,
    match_arrivals,
    rejection_reason,
)
from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import scenario_data
from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, check
from haicap.province_client import CitizenSession, LoginFailed

__all__ = ["OUTAGE_INTERVALS", "OutagePlan", "outage_plan"]

RULE = "contracts/national-sync.openapi.yaml /sync/service"
#: how many retry intervals the outage lasts after the check's last change
OUTAGE_INTERVALS = 3
#: seconds the check may take for its three changes during the outage (at most; a safety cap on the outage too)
CHANGE_BUDGET = 3.0
MIN_CHANGE_BUDGET = 0.5
#: seconds of the SLA left to a concurrent check's change after the longest delay the outage can cause it
CONCURRENT_MARGIN = 2.0
#: the changes SYNC-10 makes while the national sync is down: the submission, then these officer actions
OUTAGE_ACTIONS = ("receive", "process")
PROCEDURE = "1.001193"


@dataclass(frozen=True)
class OutagePlan:
    seconds: float  # the outage, counted from the check's last change
    change_budget: float  # the most the check may take for its changes before that
    unsafe: str | None  # why it cannot run alongside other checks, or None


def outage_plan(retry_seconds: float, sla_seconds: float) -> OutagePlan:
    """How long the outage lasts and how long the check may take for its changes, within the SLA of others."""
    outage = OUTAGE_INTERVALS * retry_seconds
    budget = min(CHANGE_BUDGET, sla_seconds - CONCURRENT_MARGIN - outage - retry_seconds)
    unsafe = None
    if budget < MIN_CHANGE_BUDGET:
        unsafe = (f"an outage of {OUTAGE_INTERVALS} × the {retry_seconds:g} s retry interval, plus one retry and "
                  f"{MIN_CHANGE_BUDGET:g} s for the check's changes, would leave other checks' changes less than "
                  f"{CONCURRENT_MARGIN:g} s of the {sla_seconds:g} s SLA: declare a shorter sync_retry_seconds or a "
                  "longer sync_sla_seconds in the profile")
    return OutagePlan(outage, max(budget, 0.0), unsafe)


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def _login(ctx: CheckContext) -> tuple[CitizenSession, dict[str, Any]]:
    data = scenario_data(ctx)
    citizen = data.citizen()
    try:
        return ctx.province.login(citizen["SoDinhDanh"]), citizen
    except LoginFailed as exc:
        raise CheckError(f"single sign-on failed, no dossier to change: {exc}") from None


def _submit(ctx: CheckContext, session: CitizenSession, citizen: dict[str, Any]) -> str:
    answer = ctx.province.submit(session, scenario_data(ctx).submission(PROCEDURE, None, citizen))
    if answer.status_code != 201:
        raise CheckError(f"submitting a dossier failed (HTTP {answer.status_code}): {str(_body(answer))[:200]}")
    return str(answer.json()["MaHoSo"])


def _act(ctx: CheckContext, ma_ho_so: str, action: str) -> None:
    answer = ctx.province.officer_action(ma_ho_so, action)
    if answer.status_code != 200:
        raise CheckError(f"officer action {action!r} on {ma_ho_so} failed (HTTP {answer.status_code}): "
                         f"{str(_body(answer))[:200]}")


def _history(ctx: CheckContext, ma_ho_so: str, session: CitizenSession) -> list[dict[str, Any]]:
    answer = ctx.province.dossier(session, ma_ho_so)
    if answer.status_code != 200:
        raise CheckError(f"reading dossier {ma_ho_so} from the province failed (HTTP {answer.status_code})")
    return [e for e in answer.json().get("LichSu") or [] if isinstance(e, dict)]


def _wait_for(ctx: CheckContext, ma_ho_so: str, statuses: list[str], until: float) -> dict[str, Any]:
    """The ledger record once it holds ``statuses`` in order (or whatever it holds at ``until``, monotonic)."""
    while True:
        record = ctx.national.synced_dossier(ma_ho_so) or {}
        history = [{"TrangThaiHoSo": s, "ThoiDiemXuLy": ""} for s in statuses]
        if all(a.received_ms is not None for a in match_arrivals(history, list(record.get("history") or []))):
            return record
        if time.monotonic() >= until:
            return record
        time.sleep(0.05)


@dataclass
class _Outage:
    seconds: float
    recovered_ms: int
    refused: int  # sync calls the national side refused meanwhile


def _synced_before(ctx: CheckContext, session: CitizenSession, citizen: dict[str, Any], sla: float) -> str:
    """A dossier submitted and synchronised while the national side is up: the province delivers at all."""
    ma_ho_so = _submit(ctx, session, citizen)
    if not _wait_for(ctx, ma_ho_so, ["1"], time.monotonic() + sla + MARGIN_SECONDS).get("history"):
        raise CheckSkipped(f"the new dossier {ma_ho_so} did not reach the national ledger within {sla:g} s with the "
                           "national side up, before any outage (SYNC-01's verdict)",
                           reproduce=f"GET <national>/_ledger/sync/dossiers/{ma_ho_so}")
    return ma_ho_so


def _changes_during_outage(ctx: CheckContext, session: CitizenSession, citizen: dict[str, Any], synced: str,
                           plan: OutagePlan) -> tuple[str, _Outage]:
    """Switch the sync off; act on the synced dossier and submit a new one; restart the outage clock from the last
    change. Returns the new dossier's MaHoSo and what the outage was."""
    outage = plan.seconds
    before = int(ctx.national.sync_stats().get("outage_refusals", 0))
    ctx.national.start_outage(("sync",), seconds=round(outage + plan.change_budget, 3))
    began = time.monotonic()
    for action in OUTAGE_ACTIONS:
        _act(ctx, synced, action)
    created = _submit(ctx, session, citizen)
    took = time.monotonic() - began
    if took > plan.change_budget:
        raise CheckError(f"the province took {took:.1f} s for {1 + len(OUTAGE_ACTIONS)} changes, more than the "
                         f"{plan.change_budget:.1f} s the outage may add to other checks' delays: not judged")
    ctx.national.start_outage(("sync",), seconds=outage)  # restart: OUTAGE_INTERVALS retry intervals from now
    recovered_ms = int((time.time() + outage) * 1000)
    time.sleep(outage)
    refused = int(ctx.national.sync_stats().get("outage_refusals", 0)) - before
    return created, _Outage(outage, recovered_ms, refused)


@check("SYNC-10", criterion="sync", severity="critical", requires=("sync", "officer_api"),
       title="Changes made while the national sync is down arrive once each after recovery, within the SLA",
       rule=f"{RULE} 503 (retry later; nothing lost); SLA = profile sync_sla_seconds counted from recovery",
       detects=("gives-up-after-3-attempts", "drops-changes-during-outage"))
def survives_outage(ctx: CheckContext) -> str:
    """A dossier is submitted and synchronised; then the national sync is switched off for 3 × the province's
    retry interval (counted from the last change) while an officer receives and processes that dossier and a
    citizen submits another (updates and a create). After recovery each change made meanwhile must be in the
    national ledger exactly once (one DongBoHoSoMC item per change, no progress item twice), received within the
    SLA counted from recovery."""
    sla = ctx.target.sync_sla_seconds
    plan = outage_plan(ctx.target.sync_retry_seconds, sla)
    if plan.unsafe:
        raise CheckError(plan.unsafe)
    session, citizen = _login(ctx)
    synced = _synced_before(ctx, session, citizen, sla)
    created, down = _changes_during_outage(ctx, session, citizen, synced, plan)
    histories = {m: _history(ctx, m, session) for m in (synced, created)}
    during = {synced: histories[synced][1:], created: histories[created]}  # the first change of `synced` was before
    ctx.require_evidence(sum(map(len, during.values())), 1 + len(OUTAGE_ACTIONS),
                         "state changes made during the outage (the province's LichSu)")
    until = time.monotonic() + sla + MARGIN_SECONDS
    for ma_ho_so, history in histories.items():
        _wait_for(ctx, ma_ho_so, [str(e.get("TrangThaiHoSo")) for e in history], until)
    time.sleep(min(0.5, sla / 20))  # a re-send follows its original closely: give it a moment to land
    records = {m: ctx.national.synced_dossier(m) or {} for m in histories}
    last = _judge_outage(ctx, histories, during, records, down, sla)
    ctx.require_evidence(down.refused, 1, "sync calls refused during the outage (the province delivered everything, "
                                          "but made no call while the national side was down: not exercised)")
    return (f"{sum(map(len, during.values()))} changes of {synced} and {created} made during a {plan.seconds:g} s "
            f"sync outage ({OUTAGE_INTERVALS} × the {ctx.target.sync_retry_seconds:g} s retry interval; the national "
            f"side refused {down.refused} calls meanwhile) reached the national ledger once each, the last "
            f"{last:.1f} s after recovery (SLA {sla:g} s)")


def _judge_outage(ctx: CheckContext, histories: dict[str, list[dict[str, Any]]],
                  during: dict[str, list[dict[str, Any]]], records: dict[str, dict[str, Any]], down: _Outage,
                  sla: float) -> float:
    """Fail on a lost, late or repeated change made during the outage; else the seconds from recovery to the
    last arrival."""
    reproduce = (f"POST <national>/_control/outage {{\"services\": [\"sync\"], \"seconds\": {down.seconds:g}}}, "
                 f"change dossiers, then GET <national>/_ledger/sync/dossiers/{{MaHoSo}} ({', '.join(histories)})")
    arrivals = {m: match_arrivals(h, list(records[m].get("history") or []))[len(h) - len(during[m]):]
                for m, h in histories.items()}
    lost = {m: [a for a in found if a.received_ms is None] for m, found in arrivals.items()}
    if any(lost.values()):
        rejections = ctx.national.sync_rejections()
        total = sum(map(len, arrivals.values()))
        raise CheckFailure(
            f"{sum(map(len, lost.values()))} of {total} changes made during the {down.seconds:g} s outage did not "
            f"reach the national ledger within {sla:g} s after recovery (the national side refused {down.refused} "
            "calls during the outage, then answered normally): dropped or held back instead of delivered",
            expected="every change made during the outage delivered after recovery",
            actual={m: [{**a.evidence(), "outcome": "received" if a.received_ms is not None else
                         (rejection_reason(rejections, m, a.status) or f"not received {sla:g} s after recovery")}
                        for a in found] for m, found in arrivals.items()},
            reproduce=reproduce)
    late = [{"MaHoSo": m, **a.evidence(), "after_recovery_s": round(((a.received_ms or 0) - down.recovered_ms) / 1000,
                                                                    3)}
            for m, found in arrivals.items() for a in found if (a.received_ms or 0) - down.recovered_ms > sla * 1000]
    ctx.expect(not late, f"{len(late)} changes made during the outage arrived more than {sla:g} s after recovery",
               expected=f"received within {sla:g} s of recovery", actual=listed(late), reproduce=reproduce)
    twice = {m: found for m in histories
             if (found := duplicate_changes(histories[m], list(records[m].get("history") or []),
                                            list(records[m].get("progress") or [])))}
    ctx.expect(not twice, "changes made during the outage were recorded more than once after recovery",
               expected="each change exactly once", actual=twice, reproduce=reproduce)
    received = [a.received_ms or 0 for found in arrivals.values() for a in found]
    return max(0.0, (max(received, default=down.recovered_ms) - down.recovered_ms) / 1000)


@check("SYNC-19", criterion="sync", severity="critical", requires=("sync", "back_office"),
       title="After the national side expires the sync session, the province logs in again and delivers",
       rule=f"{RULE} 401 error_code -1 (session unknown or expired: log in again); /sync/login",
       detects=("never-logs-in-again",))
def logs_in_again(ctx: CheckContext) -> str:
    """A dossier is submitted and synchronised (the province holds a live session); the national side forgets
    every sync session; an officer then receives the dossier. That change must reach the national ledger within
    the SLA, which takes a new login: the evidence counts the calls refused for the dead session and the logins."""
    sla = ctx.target.sync_sla_seconds
    session, citizen = _login(ctx)
    ma_ho_so = _submit(ctx, session, citizen)
    if not (_wait_for(ctx, ma_ho_so, ["1"], time.monotonic() + sla + MARGIN_SECONDS).get("history")):
        raise CheckSkipped(f"the new dossier {ma_ho_so} did not reach the national ledger within {sla:g} s even "
                           "before the sessions expired (SYNC-01's verdict)",
                           reproduce=f"GET <national>/_ledger/sync/dossiers/{ma_ho_so}")
    before = ctx.national.sync_stats()
    expired = ctx.national.expire_sync_sessions()
    _act(ctx, ma_ho_so, "receive")
    changed = time.time()
    ctx.require_evidence(len(_history(ctx, ma_ho_so, session)), 2, f"state changes of {ma_ho_so} (the province's "
                                                                   "LichSu)")
    record = _wait_for(ctx, ma_ho_so, ["1", "2"], time.monotonic() + sla + MARGIN_SECONDS)
    after = ctx.national.sync_stats()
    logins = int(after.get("logins", 0)) - int(before.get("logins", 0))
    refused = int(after.get("session_refusals", 0)) - int(before.get("session_refusals", 0))
    statuses = [str(h.get("TrangThaiHoSo")) for h in record.get("history") or []]
    ctx.expect("2" in statuses,
               f"the change made after the national side expired the sync sessions did not arrive within {sla:g} s: "
               f"the national side refused {refused} call(s) with an expired session (error_code -1) and saw "
               f"{logins} new login(s)" + (" — the province never logged in again" if logins == 0 else ""),
               expected="a new /sync/login, then the change delivered within the SLA",
               actual={"MaHoSo": ma_ho_so, "national_history": statuses, "sessions_expired": expired,
                       "calls_refused_for_the_dead_session": refused, "new_logins": logins},
               reproduce=f"POST <national>/_control/sync/expire-sessions, then act on a dossier and GET "
                         f"<national>/_ledger/sync/dossiers/{ma_ho_so}")
    received = max(int(h["received_ms"]) for h in record["history"] if str(h.get("TrangThaiHoSo")) == "2")
    return (f"after {expired} sync session(s) were expired the province logged in again ({logins} new login(s), "
            f"{refused} call(s) refused for the dead session) and the change of {ma_ho_so} arrived "
            f"{max(0.0, received / 1000 - changed):.1f} s later (SLA {sla:g} s)")
