"""The pure parts of the state machine checks: the evidence each attempt gives, and which national items a
refusal is charged with."""

from __future__ import annotations

from collections import Counter
from typing import Any

from haicap.conformance.checks.state_machine import (
    Attempt,
    attempt_defects,
    charge_refusals,
    ledger_extras,
    probe_plan,
)
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
    progress = [{"item": {"TrangThai": "1", "ThoiDiemXuLy": "a"}}, {"item": {"TrangThai": "2", "ThoiDiemXuLy": "b"}}]
    pushed = {"item": {"TrangThai": "10", "ThoiDiemXuLy": "c"}}
    record = {"history": [{"TrangThaiHoSo": s} for s in ("1", "2", "2", "2")], "progress": [*progress, pushed]}
    assert ledger_extras(history, record) == {"10": 1}  # progress decides: the repeated history items are ignored
    assert ledger_extras(history, {**record, "progress": [*progress, progress[1], progress[1]]}) == {}  # re-sent
    assert ledger_extras(history, {"history": record["history"]}) == {"2": 2}  # no progress: the history counts
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


# -- the explorer against an in-memory province (no sandbox): reuse, replacement, walking around refusals ---------
class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body, self.text = status, body, str(body)

    def json(self) -> Any:
        return self._body


class _MemoryProvince:
    """Follows the contract's table, except the pairs in ``lift`` (accepted) and ``block`` (refused); records what
    it pushes to its ``ledger`` (``sync_refused``: the refused change too)."""

    def __init__(self, lift: set[tuple[str, str]] = frozenset(), block: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
                 status: int = 409, sync_refused: bool = False, fee: int = 10000) -> None:
        self.machine = state_machine()
        self.fee = fee
        self.lift, self.block, self.status, self.sync_refused = lift, block, status, sync_refused
        self.docs: dict[str, dict[str, Any]] = {}
        self.ledger: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def login(self, cccd: str) -> Any:
        from haicap.province_client import CitizenSession

        return CitizenSession(cccd, "token", {"SoDinhDanh": cccd})

    def _push(self, m: str, state: str) -> None:
        record = self.ledger.setdefault(m, {"history": [], "progress": []})
        record["history"].append({"TrangThaiHoSo": state})
        record["progress"].append({"item": {"TrangThai": state, "ThoiDiemXuLy": str(self.requests)}})

    def submit(self, session: Any, payload: Any, **_: Any) -> _Answer:
        self.requests += 1
        m = f"000.00.04.H26-250701-{len(self.docs) + 1:04d}"
        self.docs[m] = {"MaHoSo": m, "TrangThaiHoSo": "1", "LichSu": [{"TrangThaiHoSo": "1"}], "PhiPhaiNop": self.fee,
                        "DaThanhToan": False}
        self._push(m, "1")
        return _Answer(201, self.docs[m])

    def _act(self, m: str, action: str) -> _Answer:
        self.requests += 1
        doc = self.docs[m]
        state, transition = doc["TrangThaiHoSo"], self.machine.transition(action)
        allowed = self.machine.allows(state, action) and (state, action) not in self.block
        if not allowed and (state, action) not in self.lift:
            if self.sync_refused:
                self._push(m, transition.target)
            return _Answer(self.status, {"type": "about:blank", "title": "Invalid transition", "status": self.status})
        doc["TrangThaiHoSo"] = transition.target
        doc["LichSu"].append({"TrangThaiHoSo": transition.target})
        self._push(m, transition.target)
        return _Answer(200, dict(doc))

    def officer_action(self, m: str, action: str, **_: Any) -> _Answer:
        return self._act(m, action)

    def supplement(self, session: Any, m: str, body: Any, **_: Any) -> _Answer:
        return self._act(m, "supplement")

    def withdraw(self, session: Any, m: str, body: Any, **_: Any) -> _Answer:
        return self._act(m, "withdraw")

    def officer_dossier(self, m: str) -> _Answer:
        self.requests += 1
        return _Answer(200, dict(self.docs[m]))


class _MemoryNational:
    def __init__(self, province: _MemoryProvince) -> None:
        self.province = province

    def synced_dossier(self, m: str) -> dict[str, Any] | None:
        return self.province.ledger.get(m)

    def sync_rejections(self) -> list[dict[str, Any]]:
        return []


def _explore(province: _MemoryProvince, monkeypatch: Any) -> Any:
    from haicap.conformance.checks import state_machine as sm
    from haicap.conformance.context import CheckContext
    from haicap.target import Target

    monkeypatch.setattr(sm, "SETTLE_SECONDS", 0.0)
    ctx = CheckContext(Target("memory", "01", "000.00.00.H26", "http://127.0.0.1:9", "http://127.0.0.1:9", "t",
                              officer_token="o"))
    ctx._province = province
    ctx.national = _MemoryNational(province)  # type: ignore[assignment]
    return sm.explore(ctx)


def _defects(attempts: Any) -> list[str]:
    return [d for a in attempts for d in attempt_defects(a, 409)]


def test_a_correct_province_passes_every_pair_with_one_dossier_per_state(monkeypatch: Any) -> None:
    province = _MemoryProvince()
    seen = _explore(province, monkeypatch)
    assert len(seen.probes) == 81 and not seen.unprobed and _defects(seen.probes) == []
    assert len(seen.accepts) == len(state_machine().allowed_pairs()) and _defects(seen.accepts.values()) == []
    assert seen.dossiers == 16  # ten probed states, six more for the allowed pairs no walk used
    assert all(a.synced == [] for a in seen.probes)


def test_every_wrongly_allowed_pair_is_found_and_its_dossier_replaced(monkeypatch: Any) -> None:
    lifted = {("9", "withdraw"), ("10", "withdraw"), ("3", "receive"), ("3", "reject"), ("6", "process")}
    seen = _explore(_MemoryProvince(lift=lifted), monkeypatch)
    wrong = {(a.state, a.action) for a in seen.probes if attempt_defects(a, 409)}
    assert wrong == lifted and len(seen.probes) == 81
    assert "withdraw in 9 → HTTP 200, state 7" in _defects(seen.probes)


def test_a_refused_allowed_step_is_walked_around_and_reported(monkeypatch: Any) -> None:
    seen = _explore(_MemoryProvince(block={("2", "stop"), ("5", "withdraw")}), monkeypatch)
    assert len(seen.probes) == 81 and not seen.unprobed and _defects(seen.probes) == []
    assert sorted(_defects(seen.accepts.values())) == [
        "stop in 2 refused with HTTP 409 (expected 200, state 8)",
        "withdraw in 5 refused with HTTP 409 (expected 200, state 7)",
    ]


def test_wrong_status_and_pushed_refusals_are_charged_to_their_pairs(monkeypatch: Any) -> None:
    seen = _explore(_MemoryProvince(status=400, sync_refused=True), monkeypatch)
    defects = _defects(seen.probes)
    assert "withdraw in 9 refused with HTTP 400 (expected 409)" in defects
    assert "withdraw in 9 refused, but reached the national portal (new item in state 7)" in defects
    assert all(a.synced for a in seen.probes)


def test_a_precondition_already_met_is_not_probed_but_said(monkeypatch: Any) -> None:
    seen = _explore(_MemoryProvince(fee=0), monkeypatch)  # a free dossier may be processed from 6
    assert len(seen.probes) == 80 and _defects(seen.probes) == []
    assert list(seen.unprobed) == ["process in 6"] and "meets fee-paid already" in seen.unprobed["process in 6"]


def test_a_pushed_refusal_is_charged_by_its_marker_then_by_counts() -> None:
    machine = state_machine()
    process = Attempt("1", "process", "officer", "M", 409, PROBLEM, "1", marker="probe 1")
    supplement = Attempt("1", "supplement", "citizen", "M", 409, PROBLEM, "1", marker="probe 2")
    stop = Attempt("1", "stop", "officer", "M", 409, PROBLEM, "1", marker="probe 3")
    charge_refusals([process, supplement, stop], Counter({"4": 1}), ['{"NoiDungXuLy": "probe 1"}'], machine)
    assert (process.synced, supplement.synced, stop.synced) == (["4"], [], [])  # both lead to 4: the marker decides
    charge_refusals([process, supplement, stop], Counter({"4": 1, "8": 1}), [], machine)  # no marker echoed
    assert (process.synced, supplement.synced, stop.synced) == (["4"], ["4"], ["8"])
