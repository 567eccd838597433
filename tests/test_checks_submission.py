"""Pure helpers of the submission checks: how a problem names a field, MaHoSo judgement, legacy codes, echo."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from haicap.conformance.checks.submission import (
    _echo_mismatches,
    bola_verdict,
    citizen_operations,
    curl_line,
    legacy_only_codes,
    ma_ho_so_problems,
    maxa_verdict,
    minimal_instance,
    names_field,
    other_province_communes,
    problem_fields,
    request_body,
)
from haicap.contract_registry import default_registry
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


# -- SUB-04 / SUB-07 evidence: what happened, not only "not refused" ------------------------------
@pytest.mark.parametrize(("status", "body", "said"), [
    (422, _problem("MaXa"), None),
    (400, _problem("DinhDanhCHS[0].SoDinhDanh", "MaXa"), None),
    (422, _problem("MaTTHC"), "refused with HTTP 422 without naming MaXa"),
    (400, {"error": "bad commune"}, "refused with HTTP 400 without naming MaXa"),
    (200, _problem("MaXa"), "refused with HTTP 200 (expected 4xx)"),
    (201, {"MaHoSo": "002.26.00.H26-250701-0001"}, "accepted (HTTP 201, MaHoSo 002.26.00.H26-250701-0001)"),
    (201, None, "accepted (HTTP 201)"),
    (500, "Internal Server Error", "server error (HTTP 500)"),
    (302, None, "answered HTTP 302 (expected a 4xx problem naming MaXa)"),
])
def test_maxa_verdict_says_what_the_province_did(status: int, body: object, said: str | None) -> None:
    assert maxa_verdict(status, body) == said


def test_other_province_communes_are_current_communes_of_as_many_other_provinces() -> None:
    units = admin_units()
    picked = other_province_communes("01", 6, random.Random(3))
    assert len(picked) == 6 and len({origin for _, _, origin in picked}) == 6
    for code, _name, origin in picked:
        assert units.is_current_commune(code) and not units.is_current_commune(code, "01"), code
        assert origin.startswith("province ") and not origin.startswith("province 01")
    assert picked == other_province_communes("01", 6, random.Random(3))  # seeded


# -- SUB-08: operations from the contract, bodies from its schemas, verdicts ----------------------
def test_citizen_operations_on_a_dossier_come_from_the_contract() -> None:
    on_one, listing = citizen_operations(default_registry().openapi("province-dossier"))
    assert {op["id"] for op in on_one} == {"getDossier", "supplementDossier", "withdrawDossier", "startPayment",
                                           "listPayments"}
    assert [op["id"] for op in listing] == ["listDossiers"]  # not logout: its answer is no page of items
    assert all(op["refused"] == (404,) for op in on_one)  # the contract documents 404 NotFound, no 403


def test_a_contract_operation_with_a_documented_403_accepts_it_and_none_means_both() -> None:
    doc = {"paths": {"/x/{MaHoSo}": {"get": {"operationId": "a", "security": [{"citizen": []}],
                                              "responses": {"200": {}, "403": {}, "404": {}}},
                                      "post": {"operationId": "b", "security": [{"citizen": []}],
                                               "responses": {"200": {}}}},
                     "/officer/{MaHoSo}": {"get": {"security": [{"officer": []}], "responses": {"404": {}}}}}}
    on_one, listing = citizen_operations(doc)
    assert [(op["id"], op["refused"]) for op in on_one] == [("a", (403, 404)), ("b", (403, 404))]
    assert listing == []


@pytest.mark.parametrize("ref", ["dossier.schema.json#/$defs/SupplementRequest",
                                 "dossier.schema.json#/$defs/WithdrawRequest",
                                 "dossier.schema.json#/$defs/PaymentStart"])
def test_minimal_bodies_are_valid_against_the_contract(ref: str) -> None:
    body = minimal_instance(ref)
    assert default_registry().validator(ref).is_valid(body), body
    assert request_body(ref) == body and request_body(None) is None


@pytest.mark.parametrize(("status", "said"), [
    (404, None),
    (403, "answered HTTP 403 (expected 404)"),
    (200, "served to another citizen (HTTP 200; expected 404)"),
    (201, "served to another citizen (HTTP 201; expected 404)"),
    (409, "answered HTTP 409 (the dossier's state) before checking its owner (expected 404)"),
    (500, "server error (HTTP 500; expected 404)"),
])
def test_bola_verdict_says_what_another_citizen_got(status: int, said: str | None) -> None:
    assert bola_verdict(status, (404,)) == said


def test_bola_verdict_accepts_a_documented_403() -> None:
    assert bola_verdict(403, (403, 404)) is None
    assert bola_verdict(401, (403, 404)) == "answered HTTP 401 (expected 403 or 404)"
