"""The pure parts of the state machine checks: the evidence each attempt gives, and which national items a
refusal is charged with."""

from __future__ import annotations

from typing import Any

from haicap.conformance.checks.state_machine import Attempt, attempt_defects, ledger_extras, probe_plan
from haicap.dossier_states import state_machine

PROBLEM = {"type": "https://example/problems/invalid-transition", "title": "Invalid transition", "status": 409}


def _forbidden(status: int, after: str | None = "9", body: Any = PROBLEM, synced: list[str] | None = None,
               state: str = "9", action: str = "withdraw") -> Attempt:
    return Attempt(state, action, "citizen", "000.00.04.H26-250701-0001", status, body, after, synced=synced)


def test_a_clean_refusal_has_no_defect() -> None:
    assert attempt_defects(_forbidden(409, synced=[]), 409) == []


def test_a_wrongly_allowed_pair_says_what_happened() -> None:
    assert attempt_defects(_forbidden(200, after="7"), 409) == ["withdraw in 9 → HTTP 200, state 7"]


def test_a_refusal_with_the_wrong_status_names_both() -> None:
    assert attempt_defects(_forbidden(400, body={**PROBLEM, "status": 400}), 409) == [
        "withdraw in 9 refused with HTTP 400 (expected 409)"]
    assert attempt_defects(_forbidden(500, body="Internal Server Error"), 409) == [
        "withdraw in 9 → HTTP 500: a 5xx is never a refusal (expected 409)"]


def test_a_409_without_a_problem_body_is_a_defect() -> None:
    assert attempt_defects(_forbidden(409, body={"error": "no"}), 409) == [
        "withdraw in 9 refused with HTTP 409 without an RFC 9457 problem body"]


def test_a_refusal_that_moved_or_synced_says_so() -> None:
    assert attempt_defects(_forbidden(409, after="7", synced=["7"]), 409) == [
        "withdraw in 9 refused, but the dossier moved to state 7",
        "withdraw in 9 refused, but reached the national portal (new item in state 7)",
    ]


def test_an_allowed_pair_must_be_accepted_into_the_target_state() -> None:
    accepted = Attempt("5", "stop", "officer", "M", 200, {}, "8", expected="8")
    assert attempt_defects(accepted, 409) == []
    refused = Attempt("5", "stop", "officer", "M", 409, PROBLEM, "5", expected="8")
    assert attempt_defects(refused, 409) == ["stop in 5 refused with HTTP 409 (expected 200, state 8)"]
    elsewhere = Attempt("5", "stop", "officer", "M", 200, {}, "4", expected="8")
    assert attempt_defects(elsewhere, 409) == ["stop in 5 → HTTP 200, but the dossier is in state 4 (expected 8)"]


def test_reproduce_names_the_request() -> None:
    officer = Attempt("3", "receive", "officer", "M-1", 200, {}, "2")
    assert officer.reproduce().startswith('POST /officer/dossiers/M-1/actions {"action": "receive"}')
    assert _forbidden(200).reproduce().startswith("POST /api/v1/dossiers/000.00.04.H26-250701-0001/withdraw")


def test_ledger_extras_counts_only_items_the_province_history_does_not_explain() -> None:
    history = [{"TrangThaiHoSo": "1"}, {"TrangThaiHoSo": "2"}]
    record = {"history": [{"TrangThaiHoSo": "1"}, {"TrangThaiHoSo": "2"}, {"TrangThaiHoSo": "10"}],
              "progress": [{"item": {"TrangThai": "1"}}, {"item": {"TrangThai": "2"}}, {"item": {"TrangThai": "2"}}]}
    assert ledger_extras(history, record) == {"10": 1, "2": 1}
    assert ledger_extras(history, None) == {}
    assert ledger_extras(history, {"history": ["junk", {"x": 1}], "progress": [{"item": "junk"}]}) == {"None": 1}


def test_the_probe_plan_covers_every_forbidden_and_conditional_pair() -> None:
    machine = state_machine()
    plan = probe_plan(machine)
    planned = {(s, a) for s, actions in plan.items() for a, _ in actions}
    assert planned == set(machine.forbidden_pairs()) | {("6", "process")}
    assert ("process", ("fee-paid",)) in plan["6"]
    assert "1" in plan and len(planned) == 81


def test_a_precondition_pair_names_the_unmet_precondition() -> None:
    unpaid = Attempt("6", "process", "officer", "M", 200, {}, "4", unmet=("fee-paid",))
    assert attempt_defects(unpaid, 409) == ["process in 6 with fee-paid unmet → HTTP 200, state 4"]
