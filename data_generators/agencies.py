"""Agency electronic identification codes (Decision 20/2020/QĐ-TTg, amended by 09/2025/QĐ-TTg) for units.

The format is four dot groups, ``000.00.00.H56`` for a province (H + number) and longer groups for the
units under it. No public list for the 34 provinces and 3,321 communes after 1 July 2025 was found, so:

- Province level ``000.00.00.Hnn``: Thanh Hóa H56 and Hồ Chí Minh City H29 are seen in public sources,
  Hà Nội H26 is the sandbox's default; the other provinces get the remaining numbers in the order of their
  codes [haicap assumption]. A profile for a real province passes its real agency code instead.
- Commune level ``000.gg.hh.Hnn`` [haicap assumption]: ``gg.hh`` is the commune's 1-based position in its
  province's list (by code) as a 4-digit number, so 000.00.00 stays the province itself.

MaHoSo is ``{agency code}-{yyMMdd}-{4-digit sequence}`` (DOMAIN.md), see :func:`ma_ho_so`.
"""

from __future__ import annotations

import functools
from datetime import date

from haicap.data_generators.units import admin_units

__all__ = ["NATIONAL_PORTAL_AGENCY", "commune_agency_code", "ma_ho_so", "province_agency_code"]

#: The national public service portal, as the agency of forwarded dossiers' MaHoSo [assumption, wire agreement].
NATIONAL_PORTAL_AGENCY = "000.00.00.G22"
_KNOWN_H = {"01": 26, "38": 56, "79": 29}


@functools.lru_cache(maxsize=1)
def _province_numbers() -> dict[str, int]:
    free = iter(n for n in range(1, 100) if n not in _KNOWN_H.values())
    return {p.code: _KNOWN_H.get(p.code) or next(free) for p in admin_units().provinces()}


def province_agency_code(province_code: str) -> str:
    admin_units().province(province_code)  # raises a one-line error for an unknown code
    return f"000.00.00.H{_province_numbers()[province_code]:02d}"


@functools.lru_cache(maxsize=1)
def _commune_codes() -> dict[str, str]:
    units = admin_units()
    out: dict[str, str] = {}
    for province in units.provinces():
        suffix = province_agency_code(province.code)[-3:]
        for index, commune in enumerate(units.communes(province.code), start=1):
            out[commune.code] = f"000.{index // 100:02d}.{index % 100:02d}.{suffix}"
    return out


def commune_agency_code(commune_code: str) -> str:
    """The People's Committee of a current commune (it receives the commune's dossiers)."""
    admin_units().commune(commune_code)
    return _commune_codes()[commune_code]


def ma_ho_so(agency_code: str, day: date, sequence: int) -> str:
    """``000.00.05.H26-250701-0001``; the sequence is per agency and day, 1..9999."""
    if not 1 <= sequence <= 9999:
        raise ValueError(f"MaHoSo sequence must be 1..9999, got {sequence}")
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"
