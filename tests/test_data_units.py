"""Official administrative units and the old→new mapping, checked against Decision 19/2025 facts and the GSO table."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import pytest

from haicap.data_generators import units as units_module
from haicap.data_generators.units import ISLAND_SPECIAL_ZONE_CODES, MAPPING_ERRATA, AdminUnits, admin_units
from haicap.errors import HaicapError

OFFICIAL_CSV = "admin-units-2025-conversion-official.csv"
#: DOMAIN.md: typos in the official table, as (new code, code printed, code meant).
DOCUMENTED_TYPOS = {("00562", "00553"): "00556", ("01648", "01615"): "01651", ("02494", "02485"): "02482"}
#: A typo of the official table that DOMAIN.md does not list: the accent of "Xã" is missing.
UNDOCUMENTED_NAME_TYPOS = {"24496": ("Xa Ea Kly", "Xã Ea Kly")}
#: DOMAIN.md: Phường 4 of Tân An is labelled old province 82 though it was Long An (80).
DOCUMENTED_OLD_PROVINCE_TYPOS = {"27691": "80"}
#: Not in DOMAIN.md: Xã Tiên Hải (Thành phố Hà Tiên) is labelled old province 89; Hà Tiên was Kiên Giang (91).
UNDOCUMENTED_OLD_PROVINCE_TYPOS = {"30781": "91"}

#: DOMAIN.md's province merges (new ← old), typed here as the independent expectation.
DOMAIN_MERGES = {
    "08": ("02", "08"), "15": ("10", "15"), "19": ("06", "19"), "24": ("24", "27"), "25": ("17", "25", "26"),
    "31": ("30", "31"), "33": ("33", "34"), "37": ("35", "36", "37"), "44": ("44", "45"), "48": ("48", "49"),
    "51": ("51", "62"), "52": ("52", "64"), "56": ("56", "58"), "66": ("54", "66"), "68": ("60", "67", "68"),
    "75": ("70", "75"), "79": ("74", "77", "79"), "80": ("72", "80"), "82": ("82", "87"), "86": ("83", "84", "86"),
    "91": ("89", "91"), "92": ("92", "93", "94"), "96": ("95", "96"),
}  # fmt: skip
DOMAIN_PROVINCES = (
    "01 04 08 11 12 14 15 19 20 22 24 25 31 33 37 38 40 42 44 46 48 51 52 56 66 68 75 79 80 82 86 91 92 96".split()  # noqa: SIM905
)
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def _name_key(name: str) -> str:
    """Compare names regardless of old/new tone placement (Hoá/Hóa), NFC/NFD, apostrophe and dash style."""
    name = name.replace("’", "'").replace("–", "-")
    words = []
    for word in re.split(r"\s+", name.strip()):
        decomposed = unicodedata.normalize("NFD", word)
        tones = "".join(sorted(ch for ch in decomposed if ch in _TONES))
        words.append(unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONES)) + tones)
    return " ".join(words).casefold()


def _official_rows() -> list[list[str]]:
    for folder in Path(__file__).resolve().parents:
        path = folder / "shared" / "reference" / OFFICIAL_CSV
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            return [[cell.strip() for cell in row] for row in rows[2:] if row[2].strip()]
    pytest.skip(f"official conversion table ../shared/reference/{OFFICIAL_CSV} not found above {Path(__file__).parent}")


def _code_in_parens(label: str) -> str:
    match = re.search(r"\((\d+)\)\s*$", label)
    assert match, label
    return match.group(1)


@pytest.fixture(scope="module")
def units() -> AdminUnits:
    return admin_units()


def test_counts_of_the_34_province_list(units: AdminUnits) -> None:
    assert [p.code for p in units.provinces()] == DOMAIN_PROVINCES
    communes = units.communes()
    assert len(communes) == 3321
    kinds = {kind: sum(c.kind == kind for c in communes) for kind in ("Xã", "Phường", "Đặc khu")}
    assert kinds == {"Xã": 2621, "Phường": 687, "Đặc khu": 13}
    assert sum(len(units.communes(p.code)) for p in units.provinces()) == 3321


def test_legacy_list_has_63_provinces(units: AdminUnits) -> None:
    assert len(units.legacy_provinces()) == 63
    assert len(units.legacy_wards()) == 10035


def test_official_codes_not_draft_ones(units: AdminUnits) -> None:
    assert units.commune("00226").name == "Phường Văn Miếu - Quốc Tử Giám"
    assert units.commune("00229").name == "Phường Kim Liên"
    assert units.commune("00226").province_code == "01"


def test_island_special_zones_have_new_codes(units: AdminUnits) -> None:
    for code in ISLAND_SPECIAL_ZONE_CODES:
        assert units.commune(code).kind == "Đặc khu"
        assert units.legacy_wards_for_commune(code) == []
        with pytest.raises(HaicapError):
            units.legacy_ward(code)
    assert set(units.island_districts()) == set(ISLAND_SPECIAL_ZONE_CODES)


def test_province_merges_match_domain(units: AdminUnits) -> None:
    merges = units.province_merges()
    assert {new: olds for new, olds in merges.items() if olds != (new,)} == DOMAIN_MERGES
    assert sorted(old for olds in merges.values() for old in olds) == [p.code for p in units.legacy_provinces()]
    assert units.new_province_for_legacy("26").code == "25"
    with pytest.raises(HaicapError, match="unknown old province code '03'"):
        units.new_province_for_legacy("03")


def test_mapping_both_ways(units: AdminUnits) -> None:
    # Xã Cổ Bi (Gia Lâm) was split across three new communes.
    assert [c.code for c in units.new_communes_for_legacy("00553")] == ["00136", "00541", "00565"]
    assert units.is_split("00553")
    assert not units.is_split("00004")
    assert "00553" in [w.code for w in units.legacy_wards_for_commune("00541")]
    assert [c.code for c in units.new_communes_for_legacy("00004")] == ["00004"]
    splits = sum(units.is_split(w.code) for w in units.legacy_wards())
    # DOMAIN.md says 441; the official table (typos corrected) and this mapping both give 440.
    assert splits == 440
    with pytest.raises(HaicapError):
        units.new_communes_for_legacy("99999")
    with pytest.raises(HaicapError):
        units.legacy_wards_for_commune("00013")  # an old ward code that is not a current code


def test_every_old_ward_maps_to_a_current_commune_of_the_merged_province(units: AdminUnits) -> None:
    for ward in units.legacy_wards():
        targets = units.new_communes_for_legacy(ward.code)
        assert targets, ward
        new_province = units.new_province_for_legacy(ward.province_code).code
        assert {c.province_code for c in targets} == {new_province}, ward


def test_unknown_codes_are_one_line_errors(units: AdminUnits) -> None:
    with pytest.raises(HaicapError, match="unknown province code '03'; valid codes: 01, 04"):
        units.province("03")
    assert not units.is_current_commune("00013")
    assert units.is_current_commune("00226", "01")
    assert not units.is_current_commune("00226", "79")


def test_new_codes_and_names_agree_with_official_table(units: AdminUnits) -> None:
    rows = _official_rows()
    assert len(rows) == 10571
    official = {row[2]: (row[1], _code_in_parens(row[0])) for row in rows}
    assert set(official) == {c.code for c in units.communes()}
    name_differences = {
        code: (name, units.commune(code).name)
        for code, (name, _province) in official.items()
        if _name_key(name) != _name_key(units.commune(code).name)
    }
    assert name_differences == UNDOCUMENTED_NAME_TYPOS
    assert {code: province for code, (_name, province) in official.items()} == {
        c.code: c.province_code for c in units.communes()
    }


def test_mapping_pairs_agree_with_official_table(units: AdminUnits) -> None:
    rows = _official_rows()
    official = {(row[2], DOCUMENTED_TYPOS.get((row[2], row[4]), row[4])) for row in rows if row[4]}
    assert len(official) == 10565  # 10,571 rows minus 5 island districts and 1 coastal area without ward codes
    assert set(units.mapping_pairs()) == official
    old_province = {DOCUMENTED_TYPOS.get((row[2], row[4]), row[4]): _code_in_parens(row[7]) for row in rows if row[4]}
    assert {code: old_province[code] for code in DOCUMENTED_OLD_PROVINCE_TYPOS} == {"27691": "82"}
    assert {code: old_province[code] for code in UNDOCUMENTED_OLD_PROVINCE_TYPOS} == {"30781": "89"}
    old_province |= DOCUMENTED_OLD_PROVINCE_TYPOS | UNDOCUMENTED_OLD_PROVINCE_TYPOS
    assert old_province == {w.code: w.province_code for w in units.legacy_wards()}
    islands = {row[2]: _code_in_parens(row[6]) for row in rows if not row[4] and row[2] in ISLAND_SPECIAL_ZONE_CODES}
    assert islands == units.island_districts()


def test_package_mapping_differs_from_official_exactly_by_the_errata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw vietnamadminunits mapping: 10,564 of the 10,565 official pairs, plus 33 spurious ones.

    If a package release fixes them, this fails and MAPPING_ERRATA can shrink.
    """
    monkeypatch.setattr(units_module, "MAPPING_ERRATA", ())
    raw = set(AdminUnits().mapping_pairs())
    corrected = set(admin_units().mapping_pairs())
    added = {(new, old) for new, old, action, _ in MAPPING_ERRATA if action == "add"}
    removed = {(new, old) for new, old, action, _ in MAPPING_ERRATA if action == "remove"}
    assert (len(added), len(removed)) == (1, 33)
    assert corrected - raw == added
    assert raw - corrected == removed
    assert len(raw & corrected) == 10564
