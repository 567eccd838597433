"""Official administrative units (Decision 19/2025/QĐ-TTg) from the vietnamadminunits dataset.

The current list has 34 provinces and 3,321 commune-level units with their official 5-digit codes; the
legacy list has the 63 provinces and their wards before 1 July 2025; the old→new mapping is one-to-many
(about 440 old wards were split across 2–5 new communes). Loaded once, lazily, from the SQLite file and the
converter table (``converter_2025.json``, keyed by normalised names, joined to codes through the dataset's
key columns) that the package ships, read-only. Note that 3,316 current codes reuse the code of one merged
old ward: the same code is not the same unit, so "is this a current code" is a lookup in the current list.

The package's mapping differs from the official conversion table in 34 pairs (measured against the GSO table
in ``tests/test_data_units.py``): 33 spurious extra targets where two old wards share a name (e.g. two
"Phường 4" in Tây Ninh and Long An) and one missing part-merge. :data:`MAPPING_ERRATA` corrects them, each
with its reason, so conversion checks expect what the official table says.

Example::

    units = admin_units()
    units.commune("00226").name      # 'Phường Văn Miếu - Quốc Tử Giám'
    [c.code for c in units.communes("01")][:3]
    [c.code for c in units.new_communes_for_legacy("00553")]   # Xã Cổ Bi, split: ['00136', '00541', '00565']
    [w.code for w in units.legacy_wards_for_commune("00004")]  # the old wards merged into Phường Ba Đình
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from haicap.errors import HaicapError

__all__ = [
    "ISLAND_SPECIAL_ZONE_CODES",
    "MAPPING_ERRATA",
    "AdminUnits",
    "Commune",
    "LegacyWard",
    "Province",
    "admin_units",
]

#: The five island đặc khu that got new codes (old island districts without wards).
ISLAND_SPECIAL_ZONE_CODES: tuple[str, ...] = ("11948", "19742", "20333", "21548", "26732")

#: Corrections to the package's old→new mapping, as (new code, old code, "add" | "remove", reason).
#: Found by comparing with the official conversion table; the package links same-named old wards of
#: different districts/provinces to each other's new commune.
_COLLISION = "package links a same-named old ward of another district to this commune; official: whole merge elsewhere"
MAPPING_ERRATA: tuple[tuple[str, str, str, str], ...] = (
    ("09817", "09013", "add", "official: Xã Văn Khê merged in part into Xã Ô Diên (package has 3 of its 4 targets)"),
    *(
        (new, old, "remove", _COLLISION)
        for new, old in (
            ("06184", "06079"), ("10804", "11890"), ("10843", "11890"), ("11911", "10798"), ("23041", "23053"),
            ("25459", "27691"), ("27694", "25462"), ("28087", "28036"), ("28921", "29734"), ("29182", "29623"),
            ("29734", "28924"), ("29869", "28252"), ("29869", "28270"), ("29869", "28437"), ("29869", "28439"),
            ("29869", "29902"), ("29869", "29908"), ("31246", "31714"), ("31288", "31666"), ("31378", "31582"),
            ("31378", "31657"), ("31408", "31741"), ("31473", "31744"), ("31480", "31669"), ("31495", "31606"),
            ("31582", "31379"), ("31591", "31483"), ("31639", "31480"), ("31654", "31378"), ("31666", "31268"),
            ("31726", "31246"), ("31741", "31438"), ("31741", "31474"),
        )
    ),
)


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


def _data_dir() -> Path:
    # find_spec locates the package without importing it (its import builds address parsers: ~0.6 s).
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or spec.origin is None:  # pragma: no cover - it is a dependency
        raise HaicapError("the vietnamadminunits package is not installed")
    return Path(spec.origin).resolve().parent / "data"


def _dataset_path() -> Path:
    return _data_dir() / "dataset.db"


class AdminUnits:
    """Both lists, indexed by code."""

    def __init__(self, dataset: Path | None = None, converter: Path | None = None) -> None:
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
            new_keys = conn.execute("SELECT provinceKey, wardKey, wardCode, provinceCode FROM admin_units").fetchall()
            old_keys = conn.execute(
                "SELECT provinceKey, districtKey, wardKey, wardCode, districtCode, provinceCode FROM admin_units_legacy"
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
        with open(converter or _data_dir() / "converter_2025.json", encoding="utf-8") as fh:
            table = json.load(fh)
        self._load_mapping(table, new_keys, old_keys)

    def _load_mapping(self, table: dict, new_keys: list[tuple], old_keys: list[tuple]) -> None:
        new_code = {(pk, wk): code for pk, wk, code, _pc in new_keys}
        new_province = {pk: pc for pk, _wk, _code, pc in new_keys}
        old_ward: dict[str, str] = {}
        old_district: dict[str, str] = {}
        old_province: dict[str, str] = {}
        for pk, dk, wk, code, district_code, pc in old_keys:
            old_province[pk] = pc
            if code:
                old_ward[f"{pk}_{dk}_{wk}"] = code
            else:  # an island district without wards: it became a đặc khu as a whole
                old_district[f"{pk}_{dk}_"] = district_code
        pairs: set[tuple[str, str]] = set()
        islands: dict[str, str] = {}

        def link(new: str, old_key: str) -> None:
            if old_key in old_ward:
                pairs.add((new, old_ward[old_key]))
            elif old_key in old_district:
                islands[new] = old_district[old_key]
            else:  # pragma: no cover - a dataset inconsistency, surfaced by the tests' counts
                raise HaicapError(f"vietnamadminunits converter names unknown old unit {old_key!r}")

        for pk, wards in table["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
            for wk, olds in wards.items():
                for old_key in olds:
                    link(new_code[(pk, wk)], old_key)
        for pk, divided in table["DICT_PROVINCE_WARD_DIVIDED"].items():
            for old_key, targets in divided.items():
                for target in targets:
                    link(new_code[(pk, target["newWardKey"])], old_key)
        for new, old, action, _reason in MAPPING_ERRATA:
            if action == "add":
                pairs.add((new, old))
            else:
                pairs.discard((new, old))
        self._new_for_old: dict[str, list[str]] = {}
        self._old_for_new: dict[str, list[str]] = {}
        for new, old in sorted(pairs):
            self._new_for_old.setdefault(old, []).append(new)
            self._old_for_new.setdefault(new, []).append(old)
        self._island_districts = islands
        self._merges: dict[str, tuple[str, ...]] = {
            new_province[pk]: tuple(sorted(old_province[o] for o in olds))
            for pk, olds in sorted(table["DICT_PROVINCE"].items())
        }
        self._new_province_for_old = {old: new for new, olds in self._merges.items() for old in olds}

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


    # old → new -----------------------------------------------------------------------------------
    def province_merges(self) -> dict[str, tuple[str, ...]]:
        """New province code → the old province codes merged into it (``"25": ("17", "25", "26")``)."""
        return dict(sorted(self._merges.items()))

    def new_province_for_legacy(self, old_province_code: str) -> Province:
        try:
            return self._provinces[self._new_province_for_old[old_province_code]]
        except KeyError:
            raise HaicapError(
                f"unknown old province code {old_province_code!r}; valid codes: "
                f"{', '.join(sorted(self._new_province_for_old))}"
            ) from None

    def new_communes_for_legacy(self, old_code: str) -> list[Commune]:
        """The current commune(s) an old ward went to; more than one when it was split ("Nhập một phần")."""
        self.legacy_ward(old_code)
        return [self._communes[c] for c in self._new_for_old.get(old_code, ())]

    def legacy_wards_for_commune(self, code: str) -> list[LegacyWard]:
        """The old wards (whole or in part) a current commune was formed from; empty for the island đặc khu."""
        self.commune(code)
        return [self._legacy[c] for c in self._old_for_new.get(code, ())]

    def is_split(self, old_code: str) -> bool:
        return len(self._new_for_old.get(old_code, ())) > 1

    def island_districts(self) -> dict[str, str]:
        """New đặc khu code → old island district code (districts without wards, converted whole)."""
        return dict(sorted(self._island_districts.items()))

    def mapping_pairs(self) -> list[tuple[str, str]]:
        """Every (new commune code, old ward code) pair of the conversion, sorted."""
        return sorted((new, old) for new, olds in self._old_for_new.items() for old in olds)


@functools.lru_cache(maxsize=1)
def admin_units() -> AdminUnits:
    """The process-wide instance (loaded on first use, about 0.1 s)."""
    return AdminUnits()
