"""Pure helpers and evidence of the consistency checks (conformance/checks/consistency.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from haicap.conformance.checks.consistency import (
    DOSSIER_REF,
    ITEM_REF,
    SUBMISSION_REF,
    concurrently,
    contains,
    correspondence,
    date_problems,
    disagreement,
    narrow,
    same,
    shared_fields,
    show,
)
from haicap.contract_registry import default_registry
from haicap.sandbox.province.dossiers import VN_TZ


def _at(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def _now() -> datetime:
    return datetime.now(VN_TZ)


def test_shared_fields_come_from_the_schemas() -> None:
    registry = default_registry()
    shared = shared_fields(DOSSIER_REF, ITEM_REF)
    assert shared == [f for f in registry.property_names(ITEM_REF) if f in registry.property_names(DOSSIER_REF)]
    assert {"KenhThucHien", "DanhSachLePhi", "NgayHenTra", "DinhDanhCHS"} <= set(shared)
    assert "PhiPhaiNop" not in shared  # the province's own field, not in the sync item
    assert set(shared_fields(SUBMISSION_REF, DOSSIER_REF)) <= set(registry.property_names(SUBMISSION_REF))


def test_correspondence_names_fields_the_contracts_define() -> None:
    registry = default_registry()
    rules = correspondence()
    dossier = set(registry.property_names(DOSSIER_REF))
    assert set(rules["session_fields"]) <= set(registry.property_names(SUBMISSION_REF)) & dossier
    for ref, names in rules["renamed"].items():
        assert set(names) <= set(registry.property_names(ref)), ref
        assert set(names.values()) <= dossier
    dates = {name for pair in rules["date_order"] for name in pair} | set(rules["promises"])
    assert dates <= dossier and dates <= set(registry.property_names(ITEM_REF))


def test_same_treats_absent_and_empty_alike_and_contains_is_a_subset() -> None:
    assert same(None, []) and same("", None) and same([], None)
    assert not same("2", "1") and not same(None, "1") and same([{"Gia": 1}], [{"Gia": 1}])
    assert contains({"a": 1}, {"a": 1, "b": 2}) and not contains({"a": 1}, {"a": 2})
    assert contains([{"Id": "x"}], [{"Id": "x", "IsDeleted": False}]) and not contains([{"Id": "x"}], [])


def test_a_disagreement_names_every_side() -> None:
    line = disagreement("KenhThucHien", "2", {"201": "2", "GET": "2"}, "1", sent=True, synced=True)
    assert line == 'KenhThucHien: submitted "2", province "2", NPSP "1"'
    line = disagreement("DanhSachLePhi", None, {"201": [], "GET": [{"Gia": 5}]}, None, sent=False, synced=False)
    assert line == 'DanhSachLePhi: submitted not sent, province [] (201) / [{"Gia":5}] (GET)'
    assert narrow([{"Gia": 10000, "Ten": "x"}], [{"Gia": 0, "Ten": "x"}]) == [("[0].Gia", 10000, 0)]
    assert narrow([{"Gia": 1}], [{"Gia": 1}, {"Gia": 2}]) == [] and narrow("a", "b") == []
    assert show(None) == "absent" and show("x" * 500).endswith("…") and len(show("x" * 500)) == 120


def test_dates_in_order_pass_and_each_defect_is_named() -> None:
    now = _now()
    good = {"NgayNopHoSo": _at(now), "NgayTiepNhan": _at(now), "NgayHenTra": _at(now + timedelta(days=5)),
            "LichSu": [{"TrangThaiHoSo": "1", "ThoiDiemXuLy": _at(now)}]}
    sent = int(time.time() * 1000)
    assert date_problems(good, sent, window=(sent - 500, sent + 500)) == []
    swapped = {**good, "NgayHenTra": _at(now - timedelta(days=5))}
    assert date_problems(swapped, sent) == [f"NgayHenTra {swapped['NgayHenTra']} is before NgayTiepNhan "
                                            f"{good['NgayTiepNhan']}"]
    future = {**good, "NgayTiepNhan": _at(now + timedelta(hours=1)), "NgayHenTra": _at(now + timedelta(days=6))}
    assert any("NgayTiepNhan" in p and "in the future" in p for p in date_problems(future, sent))
    utc = {**good, "NgayNopHoSo": (now - timedelta(hours=7)).strftime("%Y%m%d%H%M%S")}  # written in UTC
    problems = date_problems(utc, sent, window=(sent - 500, sent + 500))
    assert any(p.startswith("NgayNopHoSo") and "-7.00 h" in p for p in problems), problems
    back = {**good, "LichSu": [{"TrangThaiHoSo": "1", "ThoiDiemXuLy": _at(now)},
                               {"TrangThaiHoSo": "2", "ThoiDiemXuLy": _at(now - timedelta(minutes=5))}]}
    assert any("LichSu: state 2" in p and "before the earlier step" in p for p in date_problems(back, sent))
    assert date_problems({**good, "NgayTra": "2025-07-01"}, sent) == ['NgayTra "2025-07-01" is not a yyyyMMddHHmmss '
                                                                      "time"]


@pytest.mark.parametrize("copies", [2, 3])
def test_concurrently_starts_the_calls_together(copies: int) -> None:
    started: list[float] = []

    def call() -> int:
        started.append(time.monotonic())
        time.sleep(0.05)
        return len(started)

    results = concurrently([call] * copies)
    assert results == [copies] * copies  # every call saw every start: none waited for another to finish
    assert max(started) - min(started) < 0.05
