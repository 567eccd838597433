"""Agency electronic identification codes (Decision 20/2020/QĐ-TTg, amended by 09/2025/QĐ-TTg) for units.

The format is four dot groups, ``000.00.00.H56`` for a province (H + number) and longer groups for the
units under it. No public list for the 34 provinces and 3,321 communes after 1 July 2025 was found, so:

- Province level ``000.00.00.Hnn``: Thanh Hóa H56 and Hồ Chí Minh City H29 are seen in public sources,
  Hà Nội H26 is the sandbox's default; the other provinces get the remaining numbers in the order of their
  codes [haicap assumption]. A profile for a real province passes its real agency code instead.
- Commune level [haicap assumption, the same rule as the reference province and the dossier contract]:
  ``{first 3 digits of the commune code}.{last 2 digits}.00.{province H-group}``, so commune 00226 of Hà Nội
  (``000.00.00.H26``) is received by ``002.26.00.H26``. Unique per commune; 9,999 dossiers a commune a day.

- Pre-merger district People's Committees (retired on 1 July 2025) [haicap assumption]:
  ``{3-digit district code}.00.99.{province H-group}`` — no current commune or province code has 99 there.

MaHoSo is ``{agency code}-{yyMMdd}-{4-digit sequence}`` (DOMAIN.md), see :func:`ma_ho_so`.

:func:`agency_directory` is the agency-code directory the national document axis serves (the counterpart's
``GET /axis/agencies``): ministries, every current province, and for the provinces named every commune and the
retired district codes of their old provinces.
"""

from __future__ import annotations

import functools
from datetime import date

from haicap.data_generators.units import admin_units

__all__ = [
    "MINISTRIES",
    "NATIONAL_PORTAL_AGENCY",
    "agency_directory",
    "commune_agency_code",
    "district_agency_code",
    "ma_ho_so",
    "province_agency_code",
]

#: The national public service portal, as the agency of forwarded dossiers' MaHoSo [assumption, wire agreement].
NATIONAL_PORTAL_AGENCY = "000.00.00.G22"
_KNOWN_H = {"01": 26, "38": 56, "79": 29}
#: ministry-level agencies of the directory (G groups) [G03 seen in public sources; the names are illustrative]
MINISTRIES: tuple[tuple[str, str], ...] = (
    ("000.00.00.G03", "Bộ Nội vụ"),
    ("000.00.00.G09", "Văn phòng Chính phủ"),
    (NATIONAL_PORTAL_AGENCY, "Cổng Dịch vụ công quốc gia"),
)


@functools.lru_cache(maxsize=1)
def _province_numbers() -> dict[str, int]:
    free = iter(n for n in range(1, 100) if n not in _KNOWN_H.values())
    return {p.code: _KNOWN_H.get(p.code) or next(free) for p in admin_units().provinces()}


def province_agency_code(province_code: str) -> str:
    admin_units().province(province_code)  # raises a one-line error for an unknown code
    return f"000.00.00.H{_province_numbers()[province_code]:02d}"


def commune_agency_code(commune_code: str, province_agency: str | None = None) -> str:
    """The People's Committee of a current commune (it receives the commune's dossiers)."""
    commune = admin_units().commune(commune_code)
    group = (province_agency or province_agency_code(commune.province_code)).rsplit(".", 1)[-1]
    return f"{commune_code[:3]}.{commune_code[3:]}.00.{group}"


def ma_ho_so(agency_code: str, day: date, sequence: int) -> str:
    """``000.00.05.H26-250701-0001``; the sequence is per agency and day, 1..9999."""
    if not 1 <= sequence <= 9999:
        raise ValueError(f"MaHoSo sequence must be 1..9999, got {sequence}")
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"


def district_agency_code(district_code: str, province_agency: str) -> str:
    """The retired code of a pre-merger district People's Committee (see the module docstring)."""
    return f"{district_code[-3:].zfill(3)}.00.99.{province_agency.rsplit('.', 1)[-1]}"


def agency_directory(provinces: dict[str, str]) -> list[dict[str, object]]:
    """Directory entries (contracts axis.schema.json AgencyEntry): ``provinces`` maps a province code to its
    registered agency code; those get their communes and retired districts, every other province its level."""
    units = admin_units()
    entries: list[dict[str, object]] = [{"OrganId": code, "OrganName": name, "Level": "ministry", "Active": True}
                                        for code, name in MINISTRIES]
    for province in units.provinces():
        agency = provinces.get(province.code) or province_agency_code(province.code)
        entries.append({"OrganId": agency, "OrganName": f"UBND {province.name}", "Level": "province",
                        "MaTinh": province.code, "Active": True})
        if province.code not in provinces:
            continue
        for commune in units.communes(province.code):
            entries.append({"OrganId": commune_agency_code(commune.code, agency), "OrganName": f"UBND {commune.name}",
                            "Level": "commune", "MaTinh": province.code, "MaXa": commune.code, "Active": True})
        districts = {w.district_code: w.district_name for old in units.province_merges().get(province.code,
                                                                                            (province.code,))
                     for w in units.legacy_wards(old)}
        for district_code, name in sorted(districts.items()):
            entries.append({"OrganId": district_agency_code(district_code, agency), "OrganName": f"UBND {name}",
                            "Level": "district", "MaTinh": province.code, "Active": False, "ReplacedBy": agency})
    return entries
