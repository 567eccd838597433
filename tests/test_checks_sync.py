"""The pure helpers of the sync checks: change times, matching the province's history to the ledger's,
lateness, transitions, duplicates, and the transition table kept equal to the dossier contract's."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from haicap.conformance.checks.sync import (
    ALLOWED_TRANSITIONS,
    TRANSITION_TABLE,
    Arrival,
    duplicate_changes,
    invalid_transitions,
    match_arrivals,
    thoi_gian_ms,
)
from haicap.contract_registry import default_registry

T0 = thoi_gian_ms("20250701080000")
assert T0 is not None


def _province(*statuses: str) -> list[dict[str, str]]:
    return [{"TrangThaiHoSo": s, "ThoiDiemXuLy": "20250701080000"} for s in statuses]


def _ledger(*entries: tuple[str, int]) -> list[dict[str, object]]:
    return [{"TrangThaiHoSo": s, "received_ms": T0 + after_ms, "isUpdating": "True"} for s, after_ms in entries]


def test_thoi_gian_is_read_in_vietnam_time() -> None:
    assert int(datetime(2025, 7, 1, 1, 0, tzinfo=UTC).timestamp() * 1000) == T0
    for bad in ("2025-07-01", "20251301080000", "", None, 20250701080000):
        assert thoi_gian_ms(bad) is None


def test_every_change_is_matched_in_order_and_leftovers_are_ignored() -> None:
    arrivals = match_arrivals(_province("1", "2", "6", "4"), _ledger(("1", 50), ("2", 80), ("6", 90), ("6", 95),
                                                                     ("4", 120)))
    assert [(a.status, a.delay_ms) for a in arrivals] == [("1", 50), ("2", 80), ("6", 90), ("4", 120)]


def test_a_change_not_in_the_ledger_or_out_of_order_is_missing() -> None:
    arrivals = match_arrivals(_province("1", "2", "4"), _ledger(("1", 10), ("4", 20), ("2", 30)))
    assert [(a.status, a.received_ms is not None) for a in arrivals] == [("1", True), ("2", True), ("4", False)]
    assert match_arrivals(_province("1", "5", "4", "5"), _ledger(("1", 1), ("5", 2), ("4", 3)))[-1].received_ms is None


def test_late_allows_for_the_one_second_resolution_of_the_change_time() -> None:
    assert not Arrival("2", "20250701080000", T0, T0 + 10_500).late(10)
    assert Arrival("2", "20250701080000", T0, T0 + 11_000).late(10)
    assert not Arrival("2", "20250701080000", T0, None).late(10)  # missing is not late: reported apart
    assert Arrival("2", "x", None, T0).delay_ms is None


def test_transitions_follow_the_table() -> None:
    assert invalid_transitions(["1", "2", "4", "9", "10"]) == []
    assert invalid_transitions(["1", "2", "4", "5", "4", "9", "10"]) == []
    assert invalid_transitions(["1", "2", "6", "6", "4"]) == []  # the paid-flag update repeats a status
    assert invalid_transitions(["1", "10"]) == ["1→10"]
    assert invalid_transitions(["2", "4", "2"]) == ["→2", "4→2"]
    assert invalid_transitions([]) == []


def test_duplicates_are_extra_items_beyond_changes_and_content_updates() -> None:
    province = _province("1", "2", "6", "4")
    once = _ledger(("1", 1), ("2", 2), ("6", 3), ("4", 4))
    assert duplicate_changes(province, once, []) == {}
    with_paid_flag = _ledger(("1", 1), ("2", 2), ("6", 3), ("6", 4), ("4", 5))
    assert duplicate_changes(province, with_paid_flag, [], content_updates=1) == {}
    assert duplicate_changes(province, with_paid_flag, [])["statuses"]["extra_items_per_status"] == {"6": 1}
    twice = _ledger(("1", 1), ("2", 2), ("2", 3), ("6", 4), ("4", 5), ("4", 6))
    found = duplicate_changes(province, twice, [], content_updates=1)
    assert found["statuses"]["extra_items_per_status"] == {"2": 1, "4": 1}


def test_identical_progress_items_are_duplicates_different_ones_are_not() -> None:
    item = {"MaHoSo": "m", "TrangThai": "2", "ThoiDiemXuLy": "20250701080000", "NoiDungXuLy": "a"}
    reordered = dict(reversed(list(item.items())))
    found = duplicate_changes([], [], [{"item": item}, {"item": reordered}])
    assert found["progress"] == [{"TrangThai": "2", "ThoiDiemXuLy": "20250701080000", "times": 2}]
    assert duplicate_changes([], [], [{"item": item}, {"item": {**item, "NoiDungXuLy": "b"}}]) == {}


def test_the_table_is_the_dossier_contracts() -> None:
    description = default_registry().schema("dossier.schema.json#/$defs/OfficerAction")["description"]
    parsed = {m["name"]: (m["sources"], m["target"])
              for m in re.finditer(r"(?P<name>[a-z-]+)(?: moves)? (?P<sources>[0-9|]+)→(?P<target>[0-9]+)",
                                   description)}
    assert parsed == TRANSITION_TABLE
    actions = default_registry().schema("dossier.schema.json#/$defs/OfficerAction/properties/action")["enum"]
    assert set(actions) <= set(TRANSITION_TABLE)
    assert ("1", "10") not in ALLOWED_TRANSITIONS and ("9", "10") in ALLOWED_TRANSITIONS
