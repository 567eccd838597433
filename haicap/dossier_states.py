"""The dossier state machine of the contract as typed records: the one reader every component uses.

The table lives once, as data, in ``contracts/schemas/dossier.schema.json`` under ``x-transitions``: for each
action who performs it (an officer through the officer API, the citizen through the dossier API), the states it
may start from, the state it leads to, and the preconditions that must also hold in a source state (processing
a dossier that waits for its fee, state 6, only once the fee is paid). Every other (state, action) pair is
refused with the contract's refusal status (409) and changes nothing. The reference province enforces this
table, the conformance checks enumerate it and the scenario steps follow it; nobody types it again.

Example::

    machine = state_machine()
    machine.transition("receive").target           # '2'
    machine.allows("6", "process", met={"fee-paid"})  # True
    machine.forbidden_pairs("citizen")             # [('2', 'supplement'), ..., ('10', 'withdraw')]
    machine.path_to("10")                          # ('receive', 'process', 'complete', 'return-result')
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = [
    "PERFORMERS",
    "PRECONDITION_TESTS",
    "TABLE_REF",
    "Performer",
    "Precondition",
    "StateMachine",
    "Transition",
    "parse_state_machine",
    "state_machine",
]

#: Where the table lives in the contracts folder.
TABLE_REF = "dossier.schema.json#/x-transitions"
STATES_REF = "common.schema.json#/$defs/TrangThaiHoSo"
Performer = Literal["officer", "citizen"]
PERFORMERS: tuple[Performer, ...] = ("officer", "citizen")


@dataclass(frozen=True, slots=True)
class Precondition:
    """A condition an action needs in some source state, beyond the table (``fee-paid``)."""

    id: str
    description: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One action: who performs it, where it may start, where it leads, and what else it needs where."""

    action: str
    performer: Performer
    sources: tuple[str, ...]
    target: str
    operation: str
    description: str
    #: source state → ids of the preconditions that must hold when the action starts there
    preconditions: Mapping[str, tuple[str, ...]]

    def requires(self, state: str) -> tuple[str, ...]:
        """The preconditions of this action when it starts from ``state`` (empty: the table alone decides)."""
        return self.preconditions.get(state, ())

    def starts_from(self, state: str) -> bool:
        return state in self.sources


#: How each precondition of the contract is judged on a dossier (a Dossier of dossier.schema.json); a
#: precondition without a test here never holds.
PRECONDITION_TESTS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "fee-paid": lambda doc: doc.get("DaThanhToan") is True or _amount(doc.get("PhiPhaiNop")) <= 0,
}


def _amount(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1  # unknown: a fee is due


@dataclass(frozen=True)
class StateMachine:
    """The dossier state table: states, the initial state, the refusal status, actions and preconditions."""

    states: tuple[str, ...]
    initial: str
    refusal_status: int
    transitions: Mapping[str, Transition]
    preconditions: Mapping[str, Precondition]

    # -- the table -------------------------------------------------------------------------------
    def transition(self, action: str) -> Transition:
        try:
            return self.transitions[action]
        except KeyError:
            raise HaicapError(f"{TABLE_REF}: no action {action!r} (known: {', '.join(self.transitions)})") from None

    def actions(self, performer: Performer | None = None) -> tuple[str, ...]:
        """Action names in contract order, of one performer or all."""
        return tuple(a for a, t in self.transitions.items() if performer is None or t.performer == performer)

    def allows(self, state: str, action: str, *, met: Collection[str] = ()) -> bool:
        """Whether ``action`` may start from ``state`` when the preconditions in ``met`` hold."""
        transition = self.transition(action)
        return transition.starts_from(state) and all(p in met for p in transition.requires(state))

    def unmet(self, action: str, doc: Mapping[str, Any]) -> tuple[str, ...]:
        """The preconditions of ``action`` from the dossier's current state that ``doc`` does not meet."""
        state = str(doc.get("TrangThaiHoSo"))
        return tuple(p for p in self.transition(action).requires(state)
                     if not PRECONDITION_TESTS.get(p, lambda _: False)(doc))

    def allowed_steps(self) -> frozenset[tuple[str, str]]:
        """Every (from, to) pair a dossier's status history may contain."""
        return frozenset((s, t.target) for t in self.transitions.values() for s in t.sources)

    def allowed_pairs(self, performer: Performer | None = None, *, conditional: bool = False) -> list[tuple[str, str]]:
        """(state, action) pairs the table allows; ``conditional`` False leaves out those with a precondition."""
        return [(s, a) for s in self.states for a in self.actions(performer)
                if self.transitions[a].starts_from(s) and (conditional or not self.transitions[a].requires(s))]

    def forbidden_pairs(self, performer: Performer | None = None) -> list[tuple[str, str]]:
        """(state, action) pairs the table never allows, state-major (a precondition pair is not one of them)."""
        return [(s, a) for s in self.states for a in self.actions(performer) if not self.transitions[a].starts_from(s)]

    def conditional_pairs(self, performer: Performer | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
        """(state, action, preconditions) allowed only when the preconditions hold: refused when they do not."""
        return [(s, a, self.transitions[a].requires(s)) for s in self.states for a in self.actions(performer)
                if self.transitions[a].starts_from(s) and self.transitions[a].requires(s)]

    def terminal_states(self) -> tuple[str, ...]:
        """States no action leaves (3, 7, 8, 10)."""
        return tuple(s for s in self.states if not any(t.starts_from(s) for t in self.transitions.values()))

    # -- planning --------------------------------------------------------------------------------
    def path_to(self, state: str, *, avoid: Collection[tuple[str, str]] = (),
                performers: Collection[str] = PERFORMERS) -> tuple[str, ...] | None:
        """The shortest list of actions that walks a new dossier (``initial``) to ``state``.

        Only unconditional steps are used (a precondition may not be satisfiable by the walker); ``avoid`` holds
        (state, action) pairs not to use (e.g. ones a province was seen to refuse). None: unreachable.
        """
        previous: dict[str, tuple[str, str] | None] = {self.initial: None}
        queue = deque([self.initial])
        while queue:
            current = queue.popleft()
            if current == state:
                break
            for action, transition in self.transitions.items():
                if (transition.performer not in performers or not transition.starts_from(current)
                        or transition.requires(current) or (current, action) in avoid
                        or transition.target in previous):
                    continue
                previous[transition.target] = (current, action)
                queue.append(transition.target)
        if state not in previous:
            return None
        path: list[str] = []
        node = state
        while (step := previous[node]) is not None:
            node, action = step
            path.append(action)
        return tuple(reversed(path))


# -- reading the contract --------------------------------------------------------------------------
def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise HaicapError(f"{TABLE_REF} {where}: expected a non-empty list of strings, got {value!r}")
    return tuple(value)


def _state(value: Any, states: tuple[str, ...], where: str) -> str:
    if value not in states:
        raise HaicapError(f"{TABLE_REF} {where}: {value!r} is not a TrangThaiHoSo ({', '.join(states)})")
    return cast(str, value)


def _transition(action: str, raw: Any, states: tuple[str, ...], known: Iterable[str]) -> Transition:
    where = f"actions.{action}"
    if not isinstance(raw, dict):
        raise HaicapError(f"{TABLE_REF} {where}: expected an object")
    performer = raw.get("performer")
    if performer not in PERFORMERS:
        raise HaicapError(f"{TABLE_REF} {where}.performer: {performer!r} is not one of {', '.join(PERFORMERS)}")
    sources = tuple(_state(s, states, f"{where}.from") for s in _strings(raw.get("from"), f"{where}.from"))
    raw_pre = raw.get("preconditions") or {}
    if not isinstance(raw_pre, dict):
        raise HaicapError(f"{TABLE_REF} {where}.preconditions: expected an object (source state → ids)")
    preconditions: dict[str, tuple[str, ...]] = {}
    for source, ids in raw_pre.items():
        if source not in sources:
            raise HaicapError(f"{TABLE_REF} {where}.preconditions: {source!r} is not one of its source states")
        preconditions[source] = _strings(ids, f"{where}.preconditions.{source}")
        unknown = sorted(set(preconditions[source]) - set(known))
        if unknown:
            raise HaicapError(f"{TABLE_REF} {where}.preconditions.{source}: unknown precondition {unknown[0]!r}")
    return Transition(action=action, performer=cast(Performer, performer), sources=sources,
                      target=_state(raw.get("to"), states, f"{where}.to"), operation=str(raw.get("operation", "")),
                      description=str(raw.get("description", "")), preconditions=preconditions)


def parse_state_machine(table: Any, states: Iterable[str]) -> StateMachine:
    """Build the typed table from the contract's ``x-transitions`` object; a malformed one names where it is wrong."""
    states = tuple(states)
    if not isinstance(table, dict) or not isinstance(table.get("actions"), dict) or not table["actions"]:
        raise HaicapError(f"{TABLE_REF}: expected an object with a non-empty 'actions' object")
    raw_pre = table.get("preconditions") or {}
    if not isinstance(raw_pre, dict):
        raise HaicapError(f"{TABLE_REF} preconditions: expected an object (id → description)")
    preconditions = {pid: Precondition(pid, str(text)) for pid, text in raw_pre.items()}
    refusal = table.get("refusal", 409)
    if not isinstance(refusal, int) or not 400 <= refusal <= 499:
        raise HaicapError(f"{TABLE_REF} refusal: expected a 4xx status, got {refusal!r}")
    transitions = {action: _transition(action, raw, states, preconditions)
                   for action, raw in table["actions"].items()}
    return StateMachine(states=states, initial=_state(table.get("initial", "1"), states, "initial"),
                        refusal_status=refusal, transitions=transitions, preconditions=preconditions)


@functools.lru_cache(maxsize=8)
def _machine(registry: ContractRegistry) -> StateMachine:
    return parse_state_machine(registry.schema(TABLE_REF), registry.enum(STATES_REF))


def state_machine(registry: ContractRegistry | None = None) -> StateMachine:
    """The state table of the contracts in use (read once per registry)."""
    return _machine(registry if registry is not None else default_registry())
