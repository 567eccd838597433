"""Pure helpers of the submission checks: how a problem names a field, MaHoSo judgement, legacy codes, echo."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from haicap.conformance.checks.submission import (
    _echo_mismatches,
    curl_line,
    legacy_only_codes,
    ma_ho_so_problems,
    names_field,
    problem_fields,
)
from haicap.data_generators.units import admin_units

TODAY = datetime(2025, 7, 1, 9, 30)
DECLARED = {"00226": "002.26.00.H26", "00229": "002.29.00.H26"}


def _problem(*fields: str, message: str = "invalid") -> dict:
    return {"type": "about:blank", "title": "Invalid request", "status": 400,
            "errors": [{"field": f, "message": message} for f in fields]}


@pytest.mark.parametrize(("named", "wanted"), [
    ("MaXa", "MaXa"),
    ("DinhDanhCHS[0].SoDinhDanh", "DinhDanhCHS[0].SoDinhDanh"),
    ("DinhDanhCHS.0.SoDinhDanh", "DinhDanhCHS[0].SoDinhDanh"),
    ("/DinhDanhCHS/0/SoDinhDanh", "DinhDanhCHS[0].SoDinhDanh"),
    ("DinhDanhCHS[0]", "DinhDanhCHS[0].SoDinhDanh"),
    ("DinhDanhCHS[0].SoDinhDanh", "DinhDanhCHS"),
])
def test_a_problem_names_the_field_in_any_path_spelling(named: str, wanted: str) -> None:
    assert names_field(_problem(named), wanted)


@pytest.mark.parametrize(("body", "wanted"), [
    (_problem("MaTTHC"), "MaXa"),
    (_problem("(body)"), "MaXa"),
    (_problem("DinhDanhCHS[1].SoDinhDanh"), "DinhDanhCHS[0].SoDinhDanh"),
    ({"title": "Invalid request", "detail": "MaXa is wrong"}, "MaXa"),  # only in detail: not in errors
    ("MaXa", "MaXa"),
    (None, "MaXa"),
])
def test_a_problem_that_does_not_name_the_field(body: object, wanted: str) -> None:
    assert not names_field(body, wanted)


def test_an_undefined_property_is_named_by_its_quoted_name_in_a_message() -> None:
    body = _problem("(body)", message="Additional properties are not allowed ('DanhSachLePhiTuChon' was unexpected)")
    assert names_field(body, "DanhSachLePhiTuChon")
    assert not names_field(_problem("(body)", message="DanhSachLePhiTuChonX is odd"), "DanhSachLePhiTuChon")


def test_problem_fields_ignores_malformed_entries() -> None:
    assert problem_fields({"errors": [{"field": "A"}, "B", {"message": "x"}, {"field": 3}]}) == ["A", "3"]
    assert problem_fields({"errors": "MaXa"}) == []


def test_official_ma_ho_so_of_the_commune_passes() -> None:
    assert ma_ho_so_problems("002.26.00.H26-250701-0001", "00226", "000.00.00.H26", DECLARED, TODAY) == []
    assert ma_ho_so_problems("002.26.00.H26-250630-0001", "00226", "000.00.00.H26", {}, TODAY) == []


@pytest.mark.parametrize(("code", "why"), [
    ("H26-20250701-1", "is not {agency code}"),  # the bad-mahoso-format fault
    ("002.26.00.H26-250701-001", "is not {agency code}"),
    (None, "is not {agency code}"),
    ("002.26.00.H56-250701-0001", "not an agency of the province"),
    ("002.27.00.H26-250701-0001", "not a commune agency the province declares"),
    ("002.29.00.H26-250701-0001", "not the one declared for commune 00226"),
    ("002.26.00.H26-250601-0001", "not today's"),
])
def test_wrong_ma_ho_so_is_explained(code: object, why: str) -> None:
    problems = ma_ho_so_problems(code, "00226", "000.00.00.H26", DECLARED, TODAY)
    assert problems and why in problems[0], problems


def test_legacy_only_codes_are_pre_merger_wards_of_the_old_provinces_and_no_current_code() -> None:
    units = admin_units()
    codes = legacy_only_codes("79", 50, random.Random(1))  # Hồ Chí Minh City ← 74 + 77 + 79
    assert len(codes) == 50
    olds = {w.code: w.province_code for p in ("74", "77", "79") for w in units.legacy_wards(p)}
    assert all(code in olds and not units.is_current_commune(code) for code, _ in codes)
    assert {olds[c] for c, _ in codes} > {"79"}
    assert codes == legacy_only_codes("79", 50, random.Random(1))


def test_echo_compares_submitted_fields_the_dossier_also_has() -> None:
    sent = {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "x", "ChuHoSo": "Form Name",
            "TaiLieuNop": [{"TepDinhKemId": "a1", "TenTepDinhKem": "a.pdf"}]}
    kept = {**sent, "ChuHoSo": "Session Name",
            "TaiLieuNop": [{"TepDinhKemId": "a1", "TenTepDinhKem": "a.pdf", "DuongDanTaiTepTin": "/f/a1"}]}
    assert _echo_mismatches(sent, kept) == {}  # identity comes from the session; extra file metadata is fine
    changed = {**kept, "MaXa": "00229", "TaiLieuNop": []}
    assert set(_echo_mismatches(sent, changed)) == {"MaXa", "TaiLieuNop"}


def test_curl_line_never_carries_a_credential() -> None:
    line = curl_line("POST", "http://p/api/v1/dossiers", body={"TrichYeuHoSo": "it's"})
    assert "Bearer <citizen session token>" in line and "'\\''" in line
    assert "Authorization" not in curl_line("POST", "http://p/x", body={}, auth=None)
