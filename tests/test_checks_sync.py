"""The pure helpers of the sync checks: change times, matching the province's history to the ledger's,
lateness, transitions, duplicates, and the transition table kept equal to the dossier contract's."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from haicap.conformance.checks.sync import (
    ALLOWED_TRANSITIONS,
    TRANSITION_TABLE,
    Arrival,
    duplicate_changes,
    invalid_transitions,
    judge_event_time,
    judge_ma_ho_so_date,
    match_arrivals,
    missing_progress,
    rejection_reason,
    thoi_gian_ms,
)
from haicap.conformance.checks.sync_faults import outage_plan
from haicap.contract_registry import default_registry
from haicap.vn_time import describe_offset, format_thoi_gian, vn_date_code, whole_hours_off

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


# -- evidence messages: rejected, missing progress, time zones, outage plan ----------------------------
def _refusal(ma_ho_so: str, status: str, *errors: tuple[str, str], service: str = "DongBoHoSoMC") -> dict[str, object]:
    field = "TrangThai" if service == "CapNhatTienDoHoSoMC" else "TrangThaiHoSo"
    return {"MaHoSo": ma_ho_so, "service": service, "item": {"MaHoSo": ma_ho_so, field: status},
            "errors": [{"field": f, "message": m} for f, m in errors]}


def test_a_refused_item_is_reported_as_rejected_with_the_reason() -> None:
    refusals = [_refusal("m1", "2", ("NgayHenTra", "is a required property")),
                _refusal("m1", "4", ("MaXa", "'00001' is not a current commune"), ("ChuHoSo", "too short")),
                _refusal("m1", "4", ("TrangThai", "'11' is not one of"), service="CapNhatTienDoHoSoMC")]
    assert rejection_reason(refusals, "m1", "2") == "rejected: NgayHenTra: is a required property"
    assert rejection_reason(refusals, "m1", "4") == ("rejected: MaXa: '00001' is not a current commune; "
                                                     "ChuHoSo: too short")
    assert rejection_reason(refusals, "m1", "4", service="CapNhatTienDoHoSoMC") == (
        "rejected: TrangThai: '11' is not one of")
    assert rejection_reason(refusals, "m1", "9") is None  # never refused: it did not arrive
    assert rejection_reason(refusals, "m2", "2") is None
    many = _refusal("m3", "1", *[(f"F{i}", "bad") for i in range(5)])
    assert rejection_reason([many], "m3", "1") == "rejected: F0: bad; F1: bad; F2: bad (+2 more)"
    assert rejection_reason([{"MaHoSo": "m4", "item": None, "errors": None}], "m4", "None") == (
        "rejected: no reason given")  # untrusted shapes never crash


def test_progress_is_required_per_listed_change_in_order() -> None:
    required = frozenset(default_registry().schema("sync.schema.json#/$defs/CapNhatTienDoHoSoMCItem")
                         ["x-requires-progress"])
    assert "1" not in required and {"2", "4", "5", "7", "9", "10"} <= required
    history = _province("1", "2", "5", "4", "9")
    sent = [{"item": {"TrangThai": s}} for s in ("1", "2", "5", "4", "9")]
    assert missing_progress(history, sent, required) == []
    assert missing_progress(history, sent[1:], required) == []  # state 1 is not required
    gaps = missing_progress(_province("1", "2", "4", "5", "4"), [{"item": {"TrangThai": "2"}},
                                                               {"item": {"TrangThai": "4"}}], required)
    assert [g["TrangThai"] for g in gaps] == ["5", "4"]  # one progress item serves one change
    assert [g["TrangThai"] for g in missing_progress(history, [], required)] == ["2", "5", "4", "9"]


def test_whole_hour_offsets_are_time_zone_errors() -> None:
    assert whole_hours_off(-7 * 3_600_000) == -7
    assert whole_hours_off(-7 * 3_600_000 + 30_000) == -7
    assert whole_hours_off(25_200_000 + 600_000) is None  # 7 h 10 min: late, not a zone
    assert whole_hours_off(0) is None and whole_hours_off(30 * 3_600_000) is None
    assert describe_offset("NgayTiepNhan", -7) == "NgayTiepNhan is 7 h behind: a UTC time sent as Vietnam time"
    assert describe_offset("ThoiDiemXuLy", 1) == "ThoiDiemXuLy is 1 h ahead: a UTC+8 time sent as Vietnam time"


def test_event_times_are_judged_in_vietnam_time() -> None:
    sent = T0 + 2_000
    assert judge_event_time("NgayTiepNhan", "20250701080000", T0, sent) is None
    assert judge_event_time("NgayTiepNhan", "20250701010000", T0, sent) == (
        "NgayTiepNhan is 7 h behind: a UTC time sent as Vietnam time (20250701010000)")
    assert judge_event_time("NgayNopHoSo", "20250701150000", T0, sent).startswith("NgayNopHoSo is 7 h ahead")
    assert judge_event_time("NgayTra", "20250701081000", T0, sent) == (
        "NgayTra 20250701081000 is 596 s after the national side received it")  # late or early, not a zone
    assert judge_event_time("NgayTra", "20250701075000", T0, sent).endswith("s before the dossier was walked")
    assert judge_event_time("NgayTra", "2025-07-01", T0, sent) == "NgayTra '2025-07-01' is not a yyyyMMddHHmmss time"


def test_the_mahoso_date_is_the_vietnam_date() -> None:
    late_utc = int(datetime(2025, 7, 1, 23, 30, tzinfo=UTC).timestamp() * 1000)
    assert vn_date_code(late_utc) == "250702" and format_thoi_gian(late_utc) == "20250702063000"
    assert judge_ma_ho_so_date("000.00.00.H26-250702-0001", late_utc, late_utc + 1000) is None
    assert judge_ma_ho_so_date("000.00.00.H26-250701-0001", late_utc, late_utc + 1000) == (
        "the MaHoSo date 250701 is the UTC date; in Viet Nam it was 250702 when the dossier was created")
    assert "not the Vietnam date" in str(judge_ma_ho_so_date("000.00.00.H26-250615-0001", late_utc, late_utc))
    midnight = int(datetime(2025, 7, 1, 16, 59, 59, tzinfo=UTC).timestamp() * 1000)  # 23:59:59 in Viet Nam
    for day in ("250701", "250702"):  # created across Vietnamese midnight: either date is right
        assert judge_ma_ho_so_date(f"000.00.00.H26-{day}-0001", midnight, midnight + 2000) is None
    assert judge_ma_ho_so_date("H26-20250701-1", late_utc, late_utc) is None  # the format is SUB's verdict


def test_the_outage_is_three_retry_intervals_and_refused_when_it_would_hurt_other_checks() -> None:
    sandbox = outage_plan(0.4, 10)
    assert sandbox.seconds == pytest.approx(1.2) and sandbox.change_budget == 3 and sandbox.unsafe is None
    default = outage_plan(1, 10)  # a profile's default retry interval
    assert default.seconds == 3 and default.change_budget == 3 and default.unsafe is None
    slow = outage_plan(2, 10)  # 6 s outage + 2 s retry + 0.5 s of changes leaves less than 2 s of the SLA
    assert slow.seconds == 6 and slow.unsafe is not None and "sync_retry_seconds" in slow.unsafe
    assert outage_plan(60, 600).unsafe is None


def test_a_change_time_off_by_whole_hours_is_a_time_zone_error_not_lateness() -> None:
    utc = Arrival("2", "20250701010000", thoi_gian_ms("20250701010000"), T0 + 800)
    assert utc.late(10) and utc.zone_error(10) == "ThoiDiemXuLy is 7 h behind: a UTC time sent as Vietnam time"
    ahead = Arrival("2", "20250701090000", thoi_gian_ms("20250701090000"), T0 + 800)
    assert ahead.early() and ahead.zone_error(10) == "ThoiDiemXuLy is 1 h ahead: a UTC+8 time sent as Vietnam time"
    on_time = Arrival("2", "20250701080000", T0, T0 + 800)
    assert on_time.zone_error(10) is None and not on_time.early() and not on_time.late(10)
    assert Arrival("2", "20250701080000", T0, T0 + 30_000).zone_error(10) is None  # merely late
    assert not Arrival("2", "20250701080000", T0, T0 - 1500).early()  # within the clock skew
