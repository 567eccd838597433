"""The civil-status interconnection contract as typed records: the one reader every component uses.

The two procedure groups of Decree 63/2024/NĐ-CP (birth: LTKS, death: LTKT), their three components each, the
status values and their legal order, the fee rule and the composite state live once, as data, in
``contracts/schemas/civil_status.schema.json`` (``x-groups``, ``x-status-order``, ``x-fee``, ``x-composite``).
The counterpart's interconnection side, the reference province and the conformance checks read them here;
:func:`order_violations` is the one judge of a component's push sequence, so every forbidden order is the
table's complement, never a list typed twice. The contract is modelled (no public spec exists).

Example::

    spec = civil_status()
    spec.group("1").components[0].maTTHC          # '1.001193'
    spec.order.allows("1", "3")                   # False: a component cannot skip processing
    order_violations(spec.order, [("1", t0), ("3", t1)])   # ['1 → 3 ...']
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = [
    "LT_FORMAT",
    "SCHEMA",
    "CivilStatusSpec",
    "Component",
    "Group",
    "StatusOrder",
    "civil_status",
    "format_lt",
    "order_violations",
    "parse_lt",
    "parse_spec",
    "same_procedure",
]

SCHEMA = "civil_status.schema.json"
LIST_ITEM_REF = f"{SCHEMA}#/$defs/DossierListItem"
DOSSIER_REF = f"{SCHEMA}#/$defs/InterconnectedDossier"
PUSH_REF = f"{SCHEMA}#/$defs/StatusPush"
RESULT_REF = f"{SCHEMA}#/$defs/ComponentResult"
ACK_REF = f"{SCHEMA}#/$defs/DossierAck"
MA_TTHC_REF = "common.schema.json#/$defs/MaTTHC"
#: strftime of the interconnection's dd/MM/yyyy HH:mm:ss
LT_FORMAT = "%d/%m/%Y %H:%M:%S"
VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
_LT = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")


def format_lt(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as dd/MM/yyyy HH:mm:ss in Viet Nam time."""
    return (moment or datetime.now(VN_TZ)).astimezone(VN_TZ).strftime(LT_FORMAT)


def parse_lt(value: Any) -> datetime | None:
    """A dd/MM/yyyy HH:mm:ss string as an aware datetime (Viet Nam time); None when it is not one."""
    if not isinstance(value, str) or not _LT.match(value):
        return None
    try:
        return datetime.strptime(value, LT_FORMAT).replace(tzinfo=VN_TZ)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Component:
    """One procedure of a group: its id, procedure code, label, the result it issues and the issuing agency."""

    id: str
    maTTHC: str
    label: str
    result: str
    agency: str


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    module: str
    label: str
    rule: str
    components: tuple[Component, ...]

    @property
    def lead(self) -> Component:
        """The civil-status component (birth or death registration): the list item's maTTHC."""
        return self.components[0]

    def component(self, key: str) -> Component | None:
        """The component with this id or maTTHC (also with a local agency code after it, see same_procedure)."""
        return next((c for c in self.components if key == c.id or same_procedure(key, c.maTTHC)), None)


def same_procedure(code: Any, national: str) -> bool:
    """Whether ``code`` names the procedure ``national``: the code itself or, as the contract's MaTTHC allows
    ("optionally followed by the local agency code"), that code with a province's agency code after it
    (1.001193.000.00.00.H26 is the province's instance of 1.001193)."""
    if not isinstance(code, str):
        return False
    if code == national:
        return True
    return code.startswith(national + ".") and default_registry().validator(MA_TTHC_REF).is_valid(code)


@dataclass(frozen=True, slots=True)
class StatusOrder:
    """The legal order of a component's statuses (x-status-order)."""

    states: tuple[str, ...]
    initial: str
    completed: str
    next: dict[str, tuple[str, ...]]

    def allows(self, current: str, following: str) -> bool:
        """Whether a push of ``following`` may come after ``current`` (a repeat is a retry: allowed)."""
        return following == current or following in self.next.get(current, ())

    def terminal(self) -> tuple[str, ...]:
        return tuple(s for s in self.states if not self.next.get(s))

    def forbidden_pairs(self) -> list[tuple[str, str]]:
        """Every (current, following) pair the order never allows."""
        return [(a, b) for a in self.states for b in self.states if not self.allows(a, b)]

    def path_to(self, state: str) -> tuple[str, ...]:
        """The statuses from ``initial`` to ``state`` along ``next`` (shortest)."""
        paths: dict[str, tuple[str, ...]] = {self.initial: (self.initial,)}
        frontier = [self.initial]
        while frontier:
            current = frontier.pop(0)
            for nxt in self.next.get(current, ()):
                if nxt not in paths:
                    paths[nxt] = (*paths[current], nxt)
                    frontier.append(nxt)
        if state not in paths:
            raise HaicapError(f"{SCHEMA} x-status-order: {state!r} is unreachable from {self.initial!r}")
        return paths[state]


@dataclass(frozen=True)
class CivilStatusSpec:
    groups: dict[str, Group]
    order: StatusOrder
    fee: dict[str, Any]
    composite_open: tuple[str, ...]
    composite_closed: str
    push_fields: tuple[str, ...]
    list_item_fields: tuple[str, ...]

    def group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise HaicapError(f"{SCHEMA} x-groups: no group {group_id!r}") from None

    def group_of(self, ma_tthc: str) -> Group | None:
        """The group whose lead procedure (list item maTTHC) is ``ma_tthc``."""
        return next((g for g in self.groups.values() if g.lead.maTTHC == ma_tthc), None)

    def group_of_module(self, module: str) -> Group | None:
        return next((g for g in self.groups.values() if g.module == module), None)


def order_violations(order: StatusOrder, pushes: Sequence[tuple[str, datetime | None]]) -> list[str]:
    """What is wrong with one component's pushes (status, thoiGianThucHien) in arrival order: a first push that is
    not the initial status, a step the order forbids (backwards, skipping, after a terminal status), a time that
    goes back. Empty: in order."""
    problems: list[str] = []
    if not pushes:
        return problems
    if pushes[0][0] != order.initial:
        problems.append(f"first status {pushes[0][0]} (expected {order.initial})")
    for (before, t0), (after, t1) in itertools.pairwise(pushes):
        if not order.allows(before, after):
            allowed = ", ".join(order.next.get(before, ())) or "nothing (terminal)"
            problems.append(f"{before} → {after} (after {before} only {allowed})")
        if t0 is not None and t1 is not None and t1 < t0:
            problems.append(f"thoiGianThucHien goes back from {format_lt(t0)} to {format_lt(t1)} ({before} → {after})")
    return problems


def _components(raw: Any, where: str) -> tuple[Component, ...]:
    if not isinstance(raw, list) or len(raw) != 3:
        raise HaicapError(f"{SCHEMA} {where}.components: expected the group's three components")
    out = []
    for i, c in enumerate(raw):
        try:
            out.append(Component(str(c["id"]), str(c["maTTHC"]), str(c["label"]), str(c["result"]),
                                 str(c.get("agency", ""))))
        except (KeyError, TypeError):
            raise HaicapError(f"{SCHEMA} {where}.components[{i}]: needs id, maTTHC, label, result") from None
    return tuple(out)


def parse_spec(schema: dict[str, Any], states: Iterable[str], push_fields: Sequence[str],
               list_fields: Sequence[str]) -> CivilStatusSpec:
    """Build the typed spec from the schema file's ``x-*`` tables; a malformed one names where it is wrong."""
    states = tuple(states)
    raw_groups = schema.get("x-groups")
    if not isinstance(raw_groups, dict) or not raw_groups:
        raise HaicapError(f"{SCHEMA}: expected an x-groups object")
    groups = {gid: Group(gid, str(g.get("module")), str(g.get("label", "")), str(g.get("rule", "")),
                         _components(g.get("components"), f"x-groups.{gid}"))
              for gid, g in raw_groups.items()}
    raw = schema.get("x-status-order") or {}
    nxt = raw.get("next")
    if not isinstance(nxt, dict) or set(nxt) - set(states):
        raise HaicapError(f"{SCHEMA} x-status-order.next: expected an object over the statuses {states}")
    order = StatusOrder(states, str(raw.get("initial")), str(raw.get("completed")),
                        {s: tuple(nxt.get(s, ())) for s in states})
    for name in (order.initial, order.completed):
        if name not in states:
            raise HaicapError(f"{SCHEMA} x-status-order: {name!r} is not a status ({', '.join(states)})")
    composite = schema.get("x-composite") or {}
    return CivilStatusSpec(groups=groups, order=order, fee=dict(schema.get("x-fee") or {}),
                           composite_open=tuple(composite.get("open", ())),
                           composite_closed=str(composite.get("closed", "9")),
                           push_fields=tuple(push_fields), list_item_fields=tuple(list_fields))


@functools.lru_cache(maxsize=8)
def _spec(registry: ContractRegistry) -> CivilStatusSpec:
    return parse_spec(registry.schema_file(SCHEMA), registry.enum(f"{SCHEMA}#/$defs/TrangThaiLT"),
                      registry.required_names(PUSH_REF), registry.required_names(LIST_ITEM_REF))


def civil_status(registry: ContractRegistry | None = None) -> CivilStatusSpec:
    """The interconnection spec of the contracts in use (read once per registry)."""
    return _spec(registry if registry is not None else default_registry())
