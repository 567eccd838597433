"""Pure helpers of the units checks: the commune list comparison and the agency code rules."""

from __future__ import annotations

from haicap.conformance.checks.units import agency_code_findings, diff_units, summarise
from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.sandbox.province.units import ProvinceUnits

PATTERN = default_registry().schema("common.schema.json#/$defs/MaCoQuan")["pattern"]
OFFICIAL = {"00004": "Phường Ba Đình", "00008": "Phường Ngọc Hà", "00025": "Phường Giảng Võ"}


def rows(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"MaXa": code, "TenXa": name} for code, name in pairs]


def test_the_official_list_itself_has_no_difference() -> None:
    assert diff_units(rows(*OFFICIAL.items()), OFFICIAL).ok


def test_missing_extra_duplicate_and_renamed_communes_are_told_apart() -> None:
    declared = rows(("00004", "Phường Trúc Bạch"), ("00008", "Phường Ngọc Hà"), ("00008", "Phường Ngọc Hà"),
                    ("00001", "Phường Phúc Xá"), ("99999", "Xã Không Có"))
    diff = diff_units(declared, OFFICIAL, legacy={"00001", "00004"})
    assert diff.missing == [("00025", "Phường Giảng Võ")]
    assert diff.extra_legacy == [("00001", "Phường Phúc Xá")]
    assert diff.extra_unknown == [("99999", "Xã Không Có")]
    assert diff.duplicates == ["00008"]
    assert diff.renamed == [("00004", "Phường Trúc Bạch", "Phường Ba Đình")]
    assert not diff.ok


def test_names_compare_in_nfc_and_ignore_spacing() -> None:
    decomposed = "Phường Ba Đình".replace("ư", "u\u031b")
    assert diff_units(rows(("00004", f" {decomposed}  "), *list(OFFICIAL.items())[1:]), OFFICIAL).ok


def test_summarise_shows_a_few_then_a_count() -> None:
    assert summarise(["a", "b"]) == "a, b"
    assert summarise([("00001", "X")] * 10, shown=2) == "00001 X, 00001 X … (+8 more)"


def test_agency_codes_of_the_reference_province_are_right() -> None:
    body = ProvinceUnits("01", "000.00.00.H26").declaration()
    assert agency_code_findings(body["MaCoQuan"], body["DonVi"], PATTERN, "000.00.00.H26") == []
    official = {c.code: c.name for c in admin_units().communes("01")}
    assert diff_units(body["DonVi"], official).ok


def test_the_stale_declaration_is_caught_by_both_rules() -> None:
    body = ProvinceUnits("01", "000.00.00.H26", faults={"wrong-agency-codes"}).declaration()
    findings = agency_code_findings(body["MaCoQuan"], body["DonVi"], PATTERN, "000.00.00.H26")
    assert len(findings) == 1 and "commune MaCoQuan do not match" in findings[0] and "001.00001.H26" in findings[0]
    official = {c.code: c.name for c in admin_units().communes("01")}
    legacy = {w.code for w in admin_units().legacy_wards("01")}
    diff = diff_units(body["DonVi"], official, legacy)
    assert diff.extra_legacy and diff.renamed and not diff.extra_unknown


def test_each_agency_code_defect_is_named() -> None:
    communes = [{"MaXa": "00004", "MaCoQuan": "000.04.00.H26"}, {"MaXa": "00008", "MaCoQuan": "000.04.00.H26"},
                {"MaXa": "00025", "MaCoQuan": "000.25.00.H27"}, {"MaXa": "00031", "MaCoQuan": "00031"}]
    findings = agency_code_findings("000.00.00.H26", communes, PATTERN, "000.00.00.H26")
    assert any("used by several communes: 000.04.00.H26" in f for f in findings)
    assert any("do not end with the province's H26: 00025→000.25.00.H27" in f for f in findings)
    assert any("do not match" in f and "00031→'00031'" in f for f in findings)
    ministry = agency_code_findings("000.00.00.G03", [], PATTERN, None)
    assert ministry == ["the province-level MaCoQuan 000.00.00.G03 ends with G03, a ministry (G) group, not a "
                        "province H-number"]
    assert "not the agency code the province is registered under (000.00.00.H26)" in agency_code_findings(
        "000.00.00.H56", [], PATTERN, "000.00.00.H26")[0]
    assert "does not match" in agency_code_findings("H26", [], PATTERN, None)[0]
    clash = agency_code_findings("000.00.00.H26", [{"MaXa": "00004", "MaCoQuan": "000.00.00.H26"}], PATTERN, None)
    assert clash == ["a commune uses the province-level MaCoQuan 000.00.00.H26"]
