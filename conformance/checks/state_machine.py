"""The dossier state machine, enumerated: every (state, action) pair the contract's table forbids is refused and
changes nothing, every pair it allows is accepted.

The rule is the table of ``contracts/schemas/dossier.schema.json`` (``x-transitions``, read through
:mod:`haicap.dossier_states`) and the 409 Conflict of ``contracts/province-dossier.openapi.yaml`` ("the dossier's
state does not allow this action"): a forbidden action — an officer's (officer API) or the citizen's (supplement,
withdraw, with the citizen's own session) — and an action whose precondition does not hold (processing a dossier
in state 6 whose requested fee is unpaid) must be answered with a 409 problem, leave the dossier in its state (read
back) and put nothing new into the national sync ledger for that dossier. The contract names the status (the
table's ``refusal``, documented as 409 on each of the three operations), so another 4xx is a wrong answer — a
client cannot tell "not in this state" from "malformed request" — and a 5xx is never a refusal.

How it stays fast: a planner walks one dossier to each source state along the shortest allowed path (learning,
and then avoiding, allowed steps a province refuses), and every forbidden action of that state is tried on that
one dossier, since a refusal leaves it where it was; only a dossier that moved is replaced. The ledger is read
once after the walks (a short bounded wait until each walked change is there) and once after a settle window
following the last probe: a refused action reached the national portal when the ledger then holds more distinct
items of the refused action's target state (progress items, or the status history of a province that sends none,
or items the national side received and refused) than before, beyond what the province's own history explains.
A dossier a wrongly allowed action moved serves its new state. The allowed pairs no walk used are tried last, one
dossier each. Everything runs once per process (``ctx.shared``) and is judged by six checks (SYNC-09 walks its own).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from haicap.conformance.checks.payment import FEE_PROCEDURE
from haicap.conformance.checks.sync import listed
from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import scenario_data
from haicap.conformance.registry import CheckError, CheckFailure, check
from haicap.contract_registry import default_registry
from haicap.dossier_states import StateMachine, state_machine
from haicap.http_port import ResponseLike
from haicap.province_client import CitizenSession, LoginFailed

__all__ = ["Attempt", "Exploration", "attempt_defects", "charge_refusals", "ledger_extras", "probe_plan"]

TABLE = "contracts/schemas/dossier.schema.json x-transitions"
CONFLICT = "contracts/province-dossier.openapi.yaml 409 Conflict"
PROBLEM_REF = "common.schema.json#/$defs/Problem"
#: How long the walked dossiers' changes may take to show in the ledger before probing starts (bounded; the
#: judgement compares item counts with the province's history, so a slower ledger only widens the window).
CATCHUP_SECONDS = 5.0
#: The window after the last probe in which a refused change that was pushed anyway must arrive: at least this,
#: or twice the slowest catch-up the walks showed, never more than the SLA.
SETTLE_SECONDS = 0.5
POLL_SECONDS = 0.05
#: Submissions tried (each in another commune) before the walk gives up: a refused commune is SUB-05's verdict.
SUBMIT_TRIES = 3
#: How long an acknowledged dossier may take to become readable before another is submitted.
VISIBLE_SECONDS = 2.0


# -- what one attempt saw, and its defects (pure; tests/test_checks_state_machine.py) --------------
@dataclass
class Attempt:
    """One action tried on a dossier in ``state``: the answer, the state read back, and what reached NPSP."""

    state: str
    action: str
    performer: str
    ma_ho_so: str
    status: int
    body: Any
    after: str | None
    #: the state the table leads to when the pair is allowed; None for a forbidden pair
    expected: str | None = None
    #: preconditions that did not hold (a precondition pair), empty for a pair the table forbids outright
    unmet: tuple[str, ...] = ()
    #: statuses of national items the refusal produced (None: the ledger was not judged)
    synced: list[str] | None = None
    #: the text sent with the action (NoiDungXuLy, GhiChu, LyDo), by which its national item is recognised
    marker: str = ""

    @property
    def pair(self) -> str:
        unmet = f" with {', '.join(self.unmet)} unmet" if self.unmet else ""
        return f"{self.action} in {self.state}{unmet}"

    def reproduce(self) -> str:
        if self.performer == "officer":
            return (f"POST /officer/dossiers/{self.ma_ho_so}/actions {{\"action\": \"{self.action}\"}} "
                    f"(dossier in state {self.state})")
        return f"POST /api/v1/dossiers/{self.ma_ho_so}/{self.action} as its citizen (dossier in state {self.state})"


def _is_problem(body: Any) -> bool:
    return isinstance(body, dict) and default_registry().validator(PROBLEM_REF).is_valid(body)


def attempt_defects(attempt: Attempt, refusal_status: int) -> list[str]:
    """What is wrong with one attempt (empty: nothing), in words for the evidence."""
    if attempt.expected is not None:
        if attempt.status != 200:
            return [f"{attempt.pair} refused with HTTP {attempt.status} (expected 200, state {attempt.expected})"]
        if attempt.after != attempt.expected:
            return [f"{attempt.pair} → HTTP 200, but the dossier is in state {attempt.after} "
                    f"(expected {attempt.expected})"]
        return []
    if attempt.status < 400:
        return [f"{attempt.pair} → HTTP {attempt.status}, state {attempt.after}"]
    defects: list[str] = []
    if attempt.status >= 500:
        defects.append(f"{attempt.pair} → HTTP {attempt.status}: a 5xx is never a refusal "
                       f"(expected {refusal_status})")
    elif attempt.status != refusal_status:
        defects.append(f"{attempt.pair} refused with HTTP {attempt.status} (expected {refusal_status})")
    elif not _is_problem(attempt.body):
        defects.append(f"{attempt.pair} refused with HTTP {attempt.status} without an RFC 9457 problem body")
    if attempt.after != attempt.state:
        defects.append(f"{attempt.pair} refused, but the dossier moved to state {attempt.after}")
    if attempt.synced:
        defects.append(f"{attempt.pair} refused, but reached the national portal (new item in state "
                       f"{', '.join(attempt.synced)})")
    return defects


def ledger_extras(province_history: Iterable[Any], record: dict[str, Any] | None) -> Counter[str]:
    """National items per state beyond the province's own changes into that state.

    Counted on the progress items (CapNhatTienDoHoSoMC), each distinct content once, so a re-sent item (SYNC-04's
    defect) is not taken for a new change; on the status history only when the province sends no progress.
    """
    own = Counter(str(e.get("TrangThaiHoSo")) for e in province_history if isinstance(e, dict))
    record = record or {}
    distinct = {orjson.dumps(p["item"], option=orjson.OPT_SORT_KEYS): p["item"] for p in record.get("progress") or []
                if isinstance(p, dict) and isinstance(p.get("item"), dict)}
    if distinct:
        counted = Counter(str(item.get("TrangThai")) for item in distinct.values())
    else:
        counted = Counter(str(h.get("TrangThaiHoSo")) for h in record.get("history") or [] if isinstance(h, dict))
    return Counter({state: n - own[state] for state, n in counted.items() if n > own[state]})


def charge_refusals(attempts: list[Attempt], new: Counter[str], texts: list[str], machine: StateMachine) -> None:
    """Set ``synced`` on each refused attempt of one dossier: charged when a national item carries its marker, or
    when the new items of its target state outnumber those the marked attempts explain (a province that does not
    echo the text sent with an action is judged on counts alone)."""
    refused = [a for a in attempts if a.expected is None and a.status >= 400]
    marked = {id(a) for a in refused if a.marker and any(a.marker in text for text in texts)}
    explained = Counter(machine.transition(a.action).target for a in refused if id(a) in marked)
    for attempt in refused:
        target = machine.transition(attempt.action).target
        attempt.synced = [target] if id(attempt) in marked or new[target] > explained[target] else []


# -- the exploration ---------------------------------------------------------------------------------
@dataclass
class Held:
    """A dossier the explorer walked, where it is now, and the ledger's surplus items before probing."""

    ma_ho_so: str
    state: str
    spent: bool = False
    baseline: Counter[str] = field(default_factory=Counter)
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class Exploration:
    """Every attempt the explorer made, for the checks to judge."""

    probes: list[Attempt]
    accepts: dict[tuple[str, str], Attempt]
    #: "action in state" → why it could not be tried (state unreachable, precondition already met)
    unprobed: dict[str, str]
    dossiers: int
    window: float | None  # seconds the ledger was watched after the last probe (None: sync not declared)
    seconds: float
    lagging: int = 0


class Explorer:
    """Walks dossiers through the table and tries actions on them, as an officer and as their citizen."""

    def __init__(self, ctx: CheckContext, machine: StateMachine) -> None:
        self.ctx, self.machine = ctx, machine
        self.data = scenario_data(ctx)
        self.citizen = self.data.citizen()
        try:
            self.session: CitizenSession = ctx.province.login(self.citizen["SoDinhDanh"])
        except LoginFailed as exc:
            raise CheckError(f"single sign-on failed, no dossier to walk through its states: {exc}") from None
        self.ledger = "sync" in ctx.target.capabilities
        self.refused_steps: set[tuple[str, str]] = set()
        self.accepts: dict[tuple[str, str], Attempt] = {}
        self.dossiers = 0
        self.sent = 0
        self.catchup = 0.0
        self.lagging = 0  # walked dossiers whose changes the ledger had not all received before probing

    # -- acting ------------------------------------------------------------------------------------
    def _call(self, ma_ho_so: str, action: str, marker: str) -> ResponseLike:
        transition = self.machine.transition(action)
        if transition.performer == "officer":
            return self.ctx.province.officer_action(ma_ho_so, action, name=f"state machine: {action}",
                                                    NoiDungXuLy=marker)
        calls: dict[str, Callable[[], ResponseLike]] = {
            "supplementDossier": lambda: self.ctx.province.supplement(
                self.session, ma_ho_so, {"TaiLieuNop": self._documents(), "GhiChu": marker},
                name="state machine: supplement"),
            "withdrawDossier": lambda: self.ctx.province.withdraw(
                self.session, ma_ho_so, {"LyDo": marker}, name="state machine: withdraw"),
        }
        if transition.operation not in calls:
            raise CheckError(f"no way to perform citizen action {action!r} (operation {transition.operation!r})")
        return calls[transition.operation]()

    def _documents(self) -> list[Any]:
        documents = self.data.submission(FEE_PROCEDURE, None, self.citizen).get("TaiLieuNop") or []
        return documents[:1] or [{"TepDinhKemId": "bo-sung-1", "TenTepDinhKem": "bo-sung.pdf", "IsDeleted": False,
                                  "MaThanhPhanHoSo": "BS", "DuongDanTaiTepTin": "/files/bo-sung-1"}]

    def _visible(self, ma_ho_so: str) -> bool:
        """Whether the acknowledged dossier can be read (bounded wait: a lost one is SUB-06's verdict, not ours)."""
        deadline = time.monotonic() + VISIBLE_SECONDS
        while self.state_of(ma_ho_so) is None:
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def unmet(self, held: Held, action: str) -> tuple[str, ...]:
        """The preconditions of ``action`` the dossier does not meet now (read back; the contract's tests)."""
        body = _json(self.ctx.province.officer_dossier(held.ma_ho_so))
        return self.machine.unmet(action, body) if isinstance(body, dict) else ()

    def state_of(self, ma_ho_so: str) -> str | None:
        response = self.ctx.province.officer_dossier(ma_ho_so)
        body = _json(response)
        return str(body.get("TrangThaiHoSo")) if response.status_code == 200 and isinstance(body, dict) else None

    def attempt(self, held: Held, action: str, *, allowed: bool, unmet: tuple[str, ...] = ()) -> Attempt:
        """Try ``action`` on the dossier and read its state back (an accepted allowed step that answers the
        table's target state is taken at its word: a walk costs one request per step)."""
        transition = self.machine.transition(action)
        self.sent += 1
        marker = f"haicap kiểm tra trạng thái {self.sent}: {action} ở trạng thái {held.state}"
        response = self._call(held.ma_ho_so, action, marker)
        body = _json(response)
        answered = str(body.get("TrangThaiHoSo")) if isinstance(body, dict) else None
        trusted = allowed and response.status_code == 200 and answered == transition.target
        after = answered if trusted else self.state_of(held.ma_ho_so)
        result = Attempt(held.state, action, transition.performer, held.ma_ho_so, response.status_code, body,
                         after, transition.target if allowed else None, unmet, marker=marker)
        if allowed:
            self.accepts.setdefault((held.state, action), result)
            if response.status_code != 200 or after != transition.target:
                self.refused_steps.add((held.state, action))  # the planner walks around it from now on
        held.spent = after is None
        held.state = after or held.state
        return result

    # -- walking -----------------------------------------------------------------------------------
    def _submit(self) -> Held:
        """A new, readable dossier of the fee procedure; a refused commune (SUB-05's verdict) or an acknowledged
        dossier that cannot be read (SUB-06's) is replaced by another submission."""
        for _ in range(SUBMIT_TRIES):
            payload = self.data.submission(FEE_PROCEDURE, None, self.citizen)
            submitted = self.ctx.province.submit(self.session, payload, name="state machine: submit")
            body = _json(submitted)
            if submitted.status_code == 201 and isinstance(body, dict) and body.get("MaHoSo") \
                    and self._visible(str(body["MaHoSo"])):
                self.dossiers += 1
                return Held(str(body["MaHoSo"]), str(body.get("TrangThaiHoSo")))
        raise CheckError(f"submitting a dossier of {FEE_PROCEDURE} failed (HTTP {submitted.status_code}, "
                         f"MaXa {payload.get('MaXa')}): {str(body)[:200]}", reproduce="POST /api/v1/dossiers")

    def walk(self, state: str) -> Held | None:
        """A fresh dossier in ``state`` along the shortest path the province has not refused; None: unreachable."""
        for _ in range(len(self.machine.transitions) + 1):
            path = self.machine.path_to(state, avoid=self.refused_steps)
            if path is None:
                return None
            held = self._submit()
            for action in path:
                self.attempt(held, action, allowed=True)
                if held.spent or held.state != self.machine.transition(action).target:
                    break
            else:
                return held
        return None

    # -- the ledger --------------------------------------------------------------------------------
    def _history(self, held: Held) -> list[Any]:
        body = _json(self.ctx.province.officer_dossier(held.ma_ho_so))
        return list(body.get("LichSu") or []) if isinstance(body, dict) else []

    def _rejected(self, rejections: list[Any] | None = None) -> Counter[tuple[str, str]]:
        """Items the national side received and refused, per (MaHoSo, TrangThaiHoSo): sent is sent."""
        if rejections is None:
            rejections = self.ctx.national.sync_rejections()
        return Counter((str(r.get("MaHoSo")), str(r["item"].get("TrangThaiHoSo")))
                       for r in rejections if isinstance(r, dict) and isinstance(r.get("item"), dict))

    @staticmethod
    def _surplus(held: Held, history: list[Any], record: dict[str, Any] | None,
                 rejected: Counter[tuple[str, str]]) -> Counter[str]:
        surplus = ledger_extras(history, record)
        surplus.update({state: n for (m, state), n in rejected.items() if m == held.ma_ho_so})
        return surplus

    def baseline(self, helds: list[Held]) -> None:
        """Wait (bounded) until the walked changes are in the ledger, then note each dossier's surplus items."""
        if not self.ledger or not helds:
            return
        histories = {h.ma_ho_so: self._history(h) for h in helds}
        started = time.monotonic()  # every walked change happened before now
        deadline = started + min(CATCHUP_SECONDS, self.ctx.target.sync_sla_seconds)
        pending = list(helds)
        while pending:
            rejected = self._rejected()
            for held in list(pending):
                record = self.ctx.national.synced_dossier(held.ma_ho_so) or {}
                arrived = len(record.get("history") or []) + sum(
                    n for (m, _), n in rejected.items() if m == held.ma_ho_so)
                caught_up = arrived >= len(histories[held.ma_ho_so])
                if caught_up or time.monotonic() > deadline:
                    held.baseline = self._surplus(held, histories[held.ma_ho_so], record, rejected)
                    if caught_up:  # a ledger that never caught up sets no pace for the settle window
                        self.catchup = max(self.catchup, time.monotonic() - started)
                    else:
                        self.lagging += 1
                    pending.remove(held)
            if pending:
                time.sleep(POLL_SECONDS)

    def judge_ledger(self, helds: list[Held]) -> float | None:
        """After a settle window, attribute each dossier's new surplus items to the refusals tried on it."""
        if not self.ledger:
            return None
        window = min(max(SETTLE_SECONDS, 2 * self.catchup), self.ctx.target.sync_sla_seconds)
        time.sleep(window)
        rejections = [r for r in self.ctx.national.sync_rejections() if isinstance(r, dict)]
        rejected = self._rejected(rejections)
        for held in helds:
            record = self.ctx.national.synced_dossier(held.ma_ho_so)
            new = self._surplus(held, self._history(held), record, rejected) - held.baseline
            texts = [orjson.dumps(p).decode() for p in (record or {}).get("progress") or []]
            texts += [orjson.dumps(r).decode() for r in rejections if r.get("MaHoSo") == held.ma_ho_so]
            charge_refusals(held.attempts, new, texts, self.machine)
        return window


def _json(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def probe_plan(machine: StateMachine) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """State → the actions to try there, each with the preconditions left unmet (a fee dossier never pays)."""
    plan: dict[str, list[tuple[str, tuple[str, ...]]]] = {s: [] for s in machine.states}
    for state, action in machine.forbidden_pairs():
        plan[state].append((action, ()))
    for state, action, preconditions in machine.conditional_pairs():
        plan[state].append((action, preconditions))
    return {s: actions for s, actions in plan.items() if actions}


def _probe_all(explorer: Explorer, plan: dict[str, list[tuple[str, tuple[str, ...]]]]
               ) -> tuple[list[Held], dict[str, str]]:
    """Rounds: a dossier per state with actions left, every action tried on it until one moves it."""
    current: dict[str, Held] = {}
    used: list[Held] = []
    unprobed: dict[str, str] = {}
    while plan:
        fresh = {}
        for state in [s for s in plan if s not in current or current[s].spent or current[s].state != s]:
            held = explorer.walk(state)
            if held is None:
                unprobed.update({f"{a} in {state}": "the state is unreachable along allowed steps"
                                 for a, _ in plan.pop(state)})
                continue
            fresh[state] = held
        explorer.baseline(list(fresh.values()))
        current.update(fresh)
        used.extend(fresh.values())
        for state in list(plan):
            held = current[state]
            while plan[state] and not held.spent and held.state == state:
                action, unmet = plan[state].pop(0)
                if unmet and not explorer.unmet(held, action):
                    unprobed[f"{action} in {state}"] = f"dossier {held.ma_ho_so} meets {', '.join(unmet)} already"
                    continue
                held.attempts.append(explorer.attempt(held, action, allowed=False, unmet=unmet))
            moved_to = current.get(held.state)
            if held.state != state and not held.spent and (moved_to is None or moved_to.state != held.state):
                current[held.state] = held  # moved by a wrongly allowed action: it now serves its new state
            if not plan[state]:
                del plan[state]
    return used, unprobed


def _accept_rest(explorer: Explorer, helds: list[Held]) -> None:
    """Try each allowed (unconditional) pair no walk used, on a probed dossier still in its state or a new one."""
    idle = {h.state: h for h in helds if not h.spent}
    for state, action in explorer.machine.allowed_pairs():
        if (state, action) in explorer.accepts:
            continue
        held = idle.pop(state, None) if state in idle and idle[state].state == state else None
        held = held or explorer.walk(state)
        if held is not None:
            explorer.attempt(held, action, allowed=True)


def explore(ctx: CheckContext) -> Exploration:
    started = time.monotonic()
    machine = state_machine()
    explorer = Explorer(ctx, machine)
    helds, unprobed = _probe_all(explorer, probe_plan(machine))
    window = explorer.judge_ledger(helds)
    _accept_rest(explorer, helds)
    probes = [a for h in helds for a in h.attempts if a.expected is None]
    return Exploration(probes, explorer.accepts, unprobed, explorer.dossiers, window,
                       time.monotonic() - started, explorer.lagging)


def _explored(ctx: CheckContext) -> Exploration:
    scenario_data(ctx)  # resolve shared data before entering the shared factory (its lock is not reentrant)
    return ctx.shared("state-machine:exploration", lambda: explore(ctx))


# -- judging ---------------------------------------------------------------------------------------
def _judge_refusals(ctx: CheckContext, seen: Exploration, mine: list[Attempt], expected_pairs: int,
                    what: str) -> str:
    machine = state_machine()
    why = "; ".join(f"{pair}: {reason}" for pair, reason in seen.unprobed.items())
    ctx.require_evidence(len(mine), expected_pairs, f"{what} probed" + (f" (not probed: {why})" if why else ""),
                         reproduce="haicap certify --only sync --only submission")
    wrong = [(a, d) for a in mine for d in attempt_defects(a, machine.refusal_status)]
    if wrong:
        groups: dict[str, list[str]] = {}
        for attempt, defect in wrong:
            groups.setdefault(_kind(attempt, defect), []).append(f"{defect} ({attempt.ma_ho_so})")
        raise CheckFailure(
            f"{len({id(a) for a, _ in wrong})} of {len(mine)} {what}: not refused cleanly",
            expected=f"HTTP {machine.refusal_status} problem, the state unchanged, nothing new at the national portal",
            actual={kind: listed(items) for kind, items in groups.items()}, reproduce=wrong[0][0].reproduce())
    states = sorted({a.state for a in mine}, key=int)
    ledger = (f"nothing new at the national portal within {seen.window:.1f} s of the last probe"
              if seen.window is not None else "the national ledger not judged (sync not declared)")
    if seen.lagging:
        ledger += (f" (the ledger had not received every walked change of {seen.lagging} dossiers within "
                   f"{CATCHUP_SECONDS:g} s: SYNC-01's verdict)")
    return (f"{len(mine)} {what} (states {', '.join(states)}) refused with HTTP {machine.refusal_status} problems, "
            f"no dossier moved, {ledger}; {seen.dossiers} dossiers walked, {seen.seconds:.1f} s")


def _kind(attempt: Attempt, defect: str) -> str:
    if attempt.status < 400:
        return "wrongly allowed"
    if "moved to" in defect:
        return "moved despite the refusal"
    if "national portal" in defect:
        return "reached the national portal despite the refusal"
    return "refused with the wrong answer"


def _judge_accepts(ctx: CheckContext, seen: Exploration, performer: str, what: str) -> str:
    pairs = state_machine().allowed_pairs(performer)  # type: ignore[arg-type]
    tried = [seen.accepts[p] for p in pairs if p in seen.accepts]
    ctx.require_evidence(len(tried), len(pairs), what)
    wrong = [(a, d) for a in tried for d in attempt_defects(a, state_machine().refusal_status)]
    ctx.expect(not wrong, f"{len(wrong)} of {len(tried)} {what}: not accepted",
               expected="HTTP 200 and the dossier in the table's target state",
               actual=listed([f"{d} ({a.ma_ho_so})" for a, d in wrong]),
               reproduce=wrong[0][0].reproduce() if wrong else None)
    return (f"{len(tried)} {what} accepted, each leading to the table's state "
            f"({', '.join(f'{a.pair}→{a.expected}' for a in tried)})")


# -- the checks ------------------------------------------------------------------------------------
@check("SYNC-06", criterion="sync", severity="critical", requires=("sync", "officer_api", "sso", "submission"),
       title="Every officer action the state table forbids is refused with 409 and changes nothing",
       rule=f"{TABLE}; {CONFLICT}; contracts/national-sync.openapi.yaml (a refused action is no state change)",
       detects=("invalid-status-transition", "officer-actions-on-closed-dossiers", "refused-action-still-synced",
                "transition-refused-with-400"))
def officer_forbidden_pairs(ctx: CheckContext) -> str:
    """Every (state, action) pair of an officer action that the table forbids, tried on a dossier walked to that
    state: refused with a 409 problem, the dossier read back in the same state, and no new item for it in the
    national ledger."""
    seen = _explored(ctx)
    mine = [a for a in seen.probes if a.performer == "officer" and not a.unmet]
    return _judge_refusals(ctx, seen, mine, len(state_machine().forbidden_pairs("officer")),
                           "forbidden officer (state, action) pairs")


@check("SYNC-07", criterion="sync", severity="critical", requires=("officer_api", "sso", "submission"),
       title="Every officer action the state table allows is accepted",
       rule=f"{TABLE}; contracts/province-dossier.openapi.yaml officerAction 200",
       detects=("stop-only-while-processing",))
def officer_allowed_pairs(ctx: CheckContext) -> str:
    """Every (state, action) pair of an officer action the table allows without a precondition is answered 200
    and leads the dossier to the table's target state (a false refusal blocks the office's work)."""
    return _judge_accepts(ctx, _explored(ctx), "officer", "allowed officer (state, action) pairs")


@check("SYNC-08", criterion="sync", severity="critical", requires=("sync", "officer_api", "sso", "submission"),
       title="A dossier waiting for its fee is not processed before the fee is paid",
       rule=f"{TABLE} (process from 6: precondition fee-paid); {CONFLICT}",
       detects=("processes-unpaid-dossier", "invalid-status-transition"))
def unpaid_not_processed(ctx: CheckContext) -> str:
    """Every action allowed only under a precondition (processing a dossier in state 6), tried while it does not
    hold (the requested fee unpaid): refused with a 409 problem, the state unchanged, nothing new nationally."""
    seen = _explored(ctx)
    mine = [a for a in seen.probes if a.unmet]
    expected = len(state_machine().conditional_pairs())
    return _judge_refusals(ctx, seen, mine, expected,
                           f"(state, action) pair{'' if expected == 1 else 's'} with an unmet precondition")


@check("SYNC-09", criterion="sync", severity="major", requires=("officer_api", "sso", "submission", "payment"),
       title="A dossier whose requested fee is paid can be processed",
       rule=f"{TABLE} (process from 6 once fee-paid); contracts/national-payment.openapi.yaml callback",
       detects=("refuses-process-after-payment",))
def paid_processed(ctx: CheckContext) -> str:
    """A fee dossier walked to state 6, paid online through the national payment platform, is then accepted for
    processing (200, state 4)."""
    explorer = Explorer(ctx, state_machine())
    held = explorer.walk("6")
    if held is None:
        raise CheckError("no dossier could be walked to state 6 (request-payment)")
    _pay(ctx, explorer.session, held.ma_ho_so)
    attempt = explorer.attempt(held, "process", allowed=True)
    defects = attempt_defects(attempt, state_machine().refusal_status)
    ctx.expect(not defects, f"paid dossier {held.ma_ho_so} in state 6 could not be processed",
               expected="HTTP 200, state 4", actual={"defects": defects, "body": attempt.body},
               reproduce=attempt.reproduce())
    return f"dossier {held.ma_ho_so} in state 6 with its fee paid online was processed (HTTP 200, state 4)"


def _pay(ctx: CheckContext, session: CitizenSession, ma_ho_so: str) -> None:
    started = ctx.province.start_payment(session, ma_ho_so)
    body = _json(started)
    if started.status_code != 201 or not isinstance(body, dict) or not body.get("UrlThanhToan"):
        raise CheckError(f"the online payment of {ma_ho_so} could not start (HTTP {started.status_code}): "
                         "the payment checks judge that", reproduce=f"POST /api/v1/dossiers/{ma_ho_so}/payments")
    ctx.province.pay(body["UrlThanhToan"], "success")
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        dossier = _json(ctx.province.dossier(session, ma_ho_so))
        if isinstance(dossier, dict) and dossier.get("DaThanhToan"):
            return
        time.sleep(POLL_SECONDS)
    raise CheckError(f"dossier {ma_ho_so} was not marked paid within 10 s of a successful payment (PAY checks)")


@check("SUB-30", criterion="submission", severity="critical", requires=("sso", "submission", "officer_api"),
       title="Every citizen supplement or withdrawal the state table forbids is refused with 409 and changes nothing",
       rule=f"{TABLE}; {CONFLICT} (supplementDossier, withdrawDossier)",
       detects=("withdraw-after-decision", "supplement-without-request", "transition-refused-with-400"))
def citizen_forbidden_pairs(ctx: CheckContext) -> str:
    """Every (state, action) pair of a citizen action (supplement, withdraw) the table forbids, tried with the
    owner's session on a dossier walked there: refused with a 409 problem, the state unchanged and (sync declared)
    nothing new in the national ledger."""
    seen = _explored(ctx)
    mine = [a for a in seen.probes if a.performer == "citizen" and not a.unmet]
    return _judge_refusals(ctx, seen, mine, len(state_machine().forbidden_pairs("citizen")),
                           "forbidden citizen (state, action) pairs")


@check("SUB-31", criterion="submission", severity="critical", requires=("sso", "submission", "officer_api"),
       title="The citizen can supplement and withdraw wherever the state table allows",
       rule=f"{TABLE}; contracts/province-dossier.openapi.yaml supplementDossier, withdrawDossier 200",
       detects=("withdraw-refused-while-waiting",))
def citizen_allowed_pairs(ctx: CheckContext) -> str:
    """Every (state, action) pair of a citizen action the table allows is answered 200 and leads to the table's
    target state (withdrawal until a decision, a supplement when one was requested)."""
    return _judge_accepts(ctx, _explored(ctx), "citizen", "allowed citizen (state, action) pairs")
