"""The reader of the contract's dossier state table (haicap.dossier_states): the data, the planner, malformed
tables named where they are wrong, and the prose of the contract kept equal to the data."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from haicap.contract_registry import default_registry
from haicap.dossier_states import TABLE_REF, parse_state_machine, state_machine
from haicap.errors import HaicapError

STATES = [str(n) for n in range(1, 11)]


def _table() -> dict[str, Any]:
    return copy.deepcopy(default_registry().schema(TABLE_REF))


def test_the_table_reads_as_typed_records() -> None:
    machine = state_machine()
    assert machine.states == tuple(STATES) and machine.initial == "1" and machine.refusal_status == 409
    assert machine.actions("citizen") == ("supplement", "withdraw")
    assert machine.transition("process").sources == ("2", "6") and machine.transition("process").target == "4"
    assert machine.transition("process").requires("6") == ("fee-paid",)
    assert machine.transition("process").requires("2") == ()
    assert machine.terminal_states() == ("3", "7", "8", "10")
    assert ("9", "10") in machine.allowed_steps() and ("1", "10") not in machine.allowed_steps()


def test_pairs_split_the_whole_grid() -> None:
    machine = state_machine()
    grid = {(s, a) for s in machine.states for a in machine.actions()}
    allowed = set(machine.allowed_pairs(conditional=True))
    forbidden = set(machine.forbidden_pairs())
    assert allowed | forbidden == grid and not allowed & forbidden
    assert machine.conditional_pairs() == [("6", "process", ("fee-paid",))]
    assert ("6", "process") not in machine.allowed_pairs()
    assert ("9", "withdraw") in machine.forbidden_pairs("citizen")
    assert len(machine.forbidden_pairs("officer")) == 66 and len(machine.forbidden_pairs("citizen")) == 14


def test_allows_honours_preconditions() -> None:
    machine = state_machine()
    assert not machine.allows("6", "process") and machine.allows("6", "process", met={"fee-paid"})
    assert machine.allows("2", "process") and not machine.allows("1", "process", met={"fee-paid"})


def test_the_planner_finds_shortest_allowed_paths() -> None:
    machine = state_machine()
    assert machine.path_to("1") == ()
    assert machine.path_to("10") == ("receive", "process", "complete", "return-result")
    assert machine.path_to("8") == ("receive", "stop")
    assert machine.path_to("8", avoid={("2", "stop")}) == ("receive", "process", "stop")
    assert machine.path_to("7", performers=("officer",)) is None
    assert machine.path_to("4", avoid={("2", "process")}) == ("receive", "request-supplement", "supplement")
    for state in machine.states:  # every state is reachable, and the path really leads there
        node = machine.initial
        for action in machine.path_to(state) or ():
            assert machine.allows(node, action)
            node = machine.transition(action).target
        assert node == state


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t["actions"]["receive"].update(to="11"), "actions.receive.to: '11' is not a TrangThaiHoSo"),
    (lambda t: t["actions"]["receive"].update(performer="robot"), "actions.receive.performer"),
    (lambda t: t["actions"]["stop"].update({"from": []}), "actions.stop.from: expected a non-empty list"),
    (lambda t: t["actions"]["process"]["preconditions"].update({"4": ["fee-paid"]}), "'4' is not one of its source"),
    (lambda t: t["actions"]["process"]["preconditions"].update({"6": ["signed"]}), "unknown precondition 'signed'"),
    (lambda t: t.update(refusal=200), "refusal: expected a 4xx status"),
    (lambda t: t.update(actions={}), "non-empty 'actions'"),
])
def test_a_malformed_table_is_named(mutate: Any, message: str) -> None:
    table = _table()
    mutate(table)
    with pytest.raises(HaicapError, match=re.escape(message)):
        parse_state_machine(table, STATES)


# -- the prose of the contract agrees with the data -------------------------------------------------
def _arrows(text: str) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["sources"], m["target"])
            for m in re.finditer(r"(?P<name>[a-z-]+)(?: moves)? (?P<sources>[0-9|]+)→(?P<target>[0-9]+)", text)}


def test_the_officer_action_prose_is_the_table() -> None:
    registry = default_registry()
    machine = state_machine()
    description = registry.schema("dossier.schema.json#/$defs/OfficerAction")["description"]
    assert _arrows(description) == {t.action: ("|".join(t.sources), t.target) for t in machine.transitions.values()}
    conditional = {(s, a) for s, a, _ in machine.conditional_pairs()}
    assert conditional == {("6", "process")} and "(6 only once paid)" in description
    assert f"Anything else is {machine.refusal_status}" in description
    enum = registry.schema("dossier.schema.json#/$defs/OfficerAction/properties/action")["enum"]
    assert enum == list(machine.actions("officer"))


def test_the_citizen_operations_prose_is_the_table() -> None:
    registry = default_registry()
    machine = state_machine()
    supplement, withdraw = machine.transition("supplement"), machine.transition("withdraw")
    paths = registry.openapi("province-dossier")["paths"]
    summaries = {op["operationId"]: op.get("summary", "") for item in paths.values() for op in item.values()
                 if isinstance(op, dict) and "operationId" in op}
    assert f"state {'|'.join(supplement.sources)} → {supplement.target}" in summaries[supplement.operation]
    assert f"→ {withdraw.target}" in summaries[withdraw.operation]
    assert f"(state {supplement.sources[0]})" in registry.schema("dossier.schema.json#/$defs/SupplementRequest")[
        "description"]
    assert f"({supplement.target})" in registry.schema("dossier.schema.json#/$defs/SupplementRequest")["description"]
    assert f"(state {withdraw.target})" in registry.schema("dossier.schema.json#/$defs/WithdrawRequest")["description"]
    refusal = str(machine.refusal_status)
    for operation in (supplement.operation, withdraw.operation, "officerAction"):
        responses = next(op["responses"] for item in paths.values() for op in item.values()
                         if isinstance(op, dict) and op.get("operationId") == operation)
        assert refusal in responses, f"{operation} does not document the refusal {refusal}"


def test_unmet_preconditions_are_judged_on_the_dossier() -> None:
    machine = state_machine()
    waiting = {"TrangThaiHoSo": "6", "PhiPhaiNop": 10000, "DaThanhToan": False}
    assert machine.unmet("process", waiting) == ("fee-paid",)
    assert machine.unmet("process", {**waiting, "DaThanhToan": True}) == ()
    assert machine.unmet("process", {**waiting, "PhiPhaiNop": 0}) == ()
    assert machine.unmet("process", {**waiting, "PhiPhaiNop": "junk"}) == ("fee-paid",)  # untrusted: a fee is due
    assert machine.unmet("process", {**waiting, "TrangThaiHoSo": "2"}) == ()
