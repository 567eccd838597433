"""Official administrative units (Decision 19/2025/QĐ-TTg) from the vietnamadminunits dataset.

The current list has 34 provinces and 3,321 commune-level units with their official 5-digit codes; the
legacy list has the 63 provinces and their wards before 1 July 2025. Loaded once, lazily, from the SQLite
file the package ships (read-only). Note that 3,316 current codes reuse the code of one merged old ward:
the same code is not the same unit, so "is this a current code" is a lookup in the current list.

Example::

    units = admin_units()
    units.commune("00226").name      # 'Phường Văn Miếu - Quốc Tử Giám'
    [c.code for c in units.communes("01")][:3]
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from haicap.errors import HaicapError

__all__ = ["AdminUnits", "Commune", "LegacyWard", "Province", "admin_units"]


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Commune:
    """A current commune-level unit: xã, phường or đặc khu."""

    code: str
    name: str
    kind: str  # "Xã" | "Phường" | "Đặc khu"
    province_code: str


@dataclass(frozen=True, slots=True)
class LegacyWard:
    """A commune-level unit of the 63-province list (before 1 July 2025)."""

    code: str
    name: str
    district_code: str
    district_name: str
    province_code: str
    province_name: str


def _dataset_path() -> Path:
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).resolve().parent / "data" / "dataset.db"


class AdminUnits:
    """Both lists, indexed by code."""

    def __init__(self, dataset: Path | None = None) -> None:
        path = dataset or _dataset_path()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            current = conn.execute(
                "SELECT DISTINCT provinceCode, province, wardCode, ward, wardType FROM admin_units"
            ).fetchall()
            legacy = conn.execute(
                "SELECT DISTINCT provinceCode, province, districtCode, district, wardCode, ward "
                "FROM admin_units_legacy WHERE wardCode IS NOT NULL AND wardCode != ''"
            ).fetchall()
        finally:
            conn.close()
        self._provinces = {pc: Province(pc, pn) for pc, pn, *_ in current}
        self._communes = {wc: Commune(wc, wn, wt, pc) for pc, _pn, wc, wn, wt in current}
        self._by_province: dict[str, list[Commune]] = {}
        for commune in sorted(self._communes.values(), key=lambda c: c.code):
            self._by_province.setdefault(commune.province_code, []).append(commune)
        self._legacy_provinces = {pc: Province(pc, pn) for pc, pn, *_ in legacy}
        self._legacy = {wc: LegacyWard(wc, wn, dc, dn, pc, pn) for pc, pn, dc, dn, wc, wn in legacy}

    # current list ---------------------------------------------------------------------------------
    def provinces(self) -> list[Province]:
        return sorted(self._provinces.values(), key=lambda p: p.code)

    def province(self, code: str) -> Province:
        try:
            return self._provinces[code]
        except KeyError:
            raise HaicapError(
                f"unknown province code {code!r}; valid codes: {', '.join(sorted(self._provinces))}"
            ) from None

    def communes(self, province_code: str | None = None) -> list[Commune]:
        if province_code is None:
            return sorted(self._communes.values(), key=lambda c: c.code)
        self.province(province_code)
        return list(self._by_province[province_code])

    def commune(self, code: str) -> Commune:
        try:
            return self._communes[code]
        except KeyError:
            raise HaicapError(f"{code!r} is not a current commune code (Decision 19/2025/QĐ-TTg)") from None

    def is_current_commune(self, code: str, province_code: str | None = None) -> bool:
        commune = self._communes.get(code)
        return commune is not None and (province_code is None or commune.province_code == province_code)

    # legacy list ----------------------------------------------------------------------------------
    def legacy_provinces(self) -> list[Province]:
        return sorted(self._legacy_provinces.values(), key=lambda p: p.code)

    def legacy_wards(self, province_code: str | None = None) -> list[LegacyWard]:
        wards = sorted(self._legacy.values(), key=lambda w: w.code)
        return [w for w in wards if province_code is None or w.province_code == province_code]

    def legacy_ward(self, code: str) -> LegacyWard:
        try:
            return self._legacy[code]
        except KeyError:
            raise HaicapError(f"{code!r} is not a commune code of the 63-province list") from None


@functools.lru_cache(maxsize=1)
def admin_units() -> AdminUnits:
    """The process-wide instance (loaded on first use, about 0.1 s)."""
    return AdminUnits()
