"""The shared set-up of the civil-status checks: one interconnected dossier of each group, walked to its end.

haicap, as the interconnection portal, delivers a group-1 (birth) and a group-2 (death) dossier, waits for the
province's receipt and first pushes, then has the agencies issue the three results of each dossier one at a time,
the two dossiers interleaved and each in its own order (group 1 backwards from the social-insurance card, group 2
from the middle: neither starts with the civil-status extract), waiting after each result for the province's
completed push. It notes, after each non-final result, the composite state the back office shows, and finally waits
(bounded by the sync SLA) for the closed composite in the NPSP ledger. Every check judges one side of this
evidence, so the set-up runs once per run (``ctx.shared``) and costs about a second on the sandbox.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from haicap.civil_status import CivilStatusSpec, Group, civil_status, same_procedure
from haicap.conformance.context import CheckContext
from haicap.counterpart_client import CounterpartError
from haicap.interconnection_client import InterconnectionClient

__all__ = ["COMPLETION_ORDERS", "PUSH_WAIT", "Completion", "Journey", "journeys"]

#: how long to wait for a push the province owes (seconds): the sandbox answers in milliseconds
PUSH_WAIT = 1.5
#: the order the components' results are issued in, per group (indexes into x-groups components)
#: how long after the walk NPSP is read again, for a composite reopened after it closed (seconds)
SETTLE_SECONDS = 1.0
COMPLETION_ORDERS: dict[str, tuple[int, ...]] = {"1": (2, 0, 1), "2": (1, 2, 0)}


@dataclass
class Completion:
    """One result issued: the component, when (counterpart clock, ms), the delivery's answer, and what the
    back office showed afterwards."""

    component: str
    ma_tthc: str
    sent_ms: int
    result: str
    status_code: int | None
    answer: Any
    final: bool
    composite_after: str | None = None


@dataclass
class Journey:
    group: Group
    sent: dict[str, Any]
    completions: list[Completion] = field(default_factory=list)
    record: dict[str, Any] | None = None
    npsp: dict[str, Any] | None = None
    #: what the province sent for this dossier (its maHoSo) under another soHoSoLT / id: recorded as unmatched
    strays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def so_ho_so_lt(self) -> str:
        return str(self.sent.get("soHoSoLT", ""))

    @property
    def ma_ho_so(self) -> str:
        return str((self.sent.get("dossier") or {}).get("maHoSo", ""))

    @property
    def accepted(self) -> bool:
        return isinstance(self.sent.get("status_code"), int) and 200 <= self.sent["status_code"] < 300

    def pushes(self) -> list[dict[str, Any]]:
        return list((self.record or {}).get("pushes") or [])

    def received(self) -> list[dict[str, Any]]:
        return list((self.record or {}).get("received") or [])

    def stray(self, kind: str) -> list[dict[str, Any]]:
        """Unmatched entries of ``kind`` ("pushes", "received") naming this dossier's maHoSo."""
        return [e for e in self.strays if e.get("kind") == kind]


def _completed_push(record: dict[str, Any], ma_tthc: str, completed: str) -> bool:
    return any(isinstance(p.get("body"), dict) and same_procedure(p["body"].get("maTTHC"), ma_tthc)
               and p["body"].get("trangThai") == completed for p in record.get("pushes") or [])


def _first_pushes(spec: CivilStatusSpec, group: Group) -> int:
    """Pushes a province owes once it has taken a dossier in: each component received, then processing."""
    return len(group.components) * (len(spec.order.path_to(spec.order.completed)) - 1)


def _composite(ctx: CheckContext, ma_ho_so: str) -> str | None:
    if "officer_api" not in ctx.target.capabilities or not ctx.target.officer_token:
        return None
    response = ctx.province.officer_dossier(ma_ho_so)
    if response.status_code != 200:
        return None
    try:
        return str(response.json().get("TrangThaiHoSo"))
    except (ValueError, AttributeError):
        return None


def _complete(ctx: CheckContext, lt: InterconnectionClient, spec: CivilStatusSpec, journey: Journey,
              index: int, final: bool) -> None:
    component = journey.group.components[index]
    try:
        delivered = lt.complete(journey.so_ho_so_lt, component.id)
    except CounterpartError:
        return
    done = Completion(component.id, component.maTTHC, int(delivered.get("sent_ms") or 0),
                      str((delivered.get("result") or {}).get("ketQuaXuLy", "")), delivered.get("status_code"),
                      delivered.get("answer"), final)
    journey.completions.append(done)
    lt.wait(journey.so_ho_so_lt, lambda r: _completed_push(r, component.maTTHC, spec.order.completed), PUSH_WAIT)
    if not final:
        done.composite_after = _composite(ctx, journey.ma_ho_so)


def _run(ctx: CheckContext) -> list[Journey]:
    spec = civil_status()
    lt = InterconnectionClient(ctx.national)
    journeys = [Journey(group, lt.send_dossier(gid, province_code=ctx.target.province_code))
                for gid, group in spec.groups.items()]
    for journey in journeys:
        owed = _first_pushes(spec, journey.group)
        if journey.accepted:
            lt.wait(journey.so_ho_so_lt, lambda r, n=owed: len(r.get("pushes") or []) >= n
                    and bool(r.get("received")), PUSH_WAIT)
    steps = max(len(j.group.components) for j in journeys)
    for step in range(steps):
        for journey in journeys:
            order = COMPLETION_ORDERS.get(journey.group.id, tuple(range(len(journey.group.components))))
            if journey.accepted and step < len(order):
                _complete(ctx, lt, spec, journey, order[step], final=step == len(order) - 1)
    sla = ctx.target.sync_sla_seconds
    deadline = time.monotonic() + sla
    for journey in journeys:
        if journey.accepted:
            left = max(0.0, deadline - time.monotonic())
            journey.npsp = ctx.national.wait_for_status(journey.ma_ho_so, spec.composite_closed, within=left)
            # pushes are judged as they stand at the sync SLA, not PUSH_WAIT (a pacing of the walk, not a limit)
            journey.record = lt.wait(journey.so_ho_so_lt, lambda r, j=journey: _all_completed(r, j, spec),
                                     max(0.0, deadline - time.monotonic()))
        else:
            journey.record = lt.record(journey.so_ho_so_lt)
    _settle(ctx, journeys)
    _strays(lt, journeys)
    return journeys


def _settle(ctx: CheckContext, journeys: list[Journey]) -> None:
    """Read NPSP again a moment after the walk: a composite reopened right after it closed shows there."""
    if any(j.accepted for j in journeys):
        time.sleep(SETTLE_SECONDS)
    for journey in journeys:
        if journey.accepted:
            journey.npsp = ctx.national.synced_dossier(journey.ma_ho_so) or journey.npsp


def _strays(lt: InterconnectionClient, journeys: list[Journey]) -> None:
    try:
        unmatched = lt.unmatched()
    except CounterpartError:
        return
    for journey in journeys:
        journey.strays = [e for e in unmatched if isinstance(e.get("body"), dict)
                          and e["body"].get("maHoSo") == journey.ma_ho_so]


def _all_completed(record: dict[str, Any], journey: Journey, spec: CivilStatusSpec) -> bool:
    return all(_completed_push(record, c.ma_tthc, spec.order.completed) for c in journey.completions)


def journeys(ctx: CheckContext) -> list[Journey]:
    """The run's two interconnected dossiers, walked once and shared by every civil-status check."""
    return ctx.shared("civil_status:journeys", lambda: _run(ctx))
