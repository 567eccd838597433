"""The units the province serves: its current communes, their agency codes, and the commune check on input.

Assumption [I] (also in the contract): a dossier is received by the People's Committee of the commune where
it is filed, and that committee's agency code is derived from the official 5-digit commune code and the
province's agency code as ``{first 3 digits}.{last 2 digits}.00.{province H-group}`` (commune 00226 of Hà Nội,
``000.00.00.H26`` → ``002.26.00.H26``). Codes are unique per commune, well-formed (common.schema MaCoQuan),
deterministic, and let MaHoSo hold 9,999 dossiers per commune per day instead of per province.

Example::

    units = ProvinceUnits("01", "000.00.00.H26")
    units.check_commune("00226").agency_code   # '002.26.00.H26'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from haicap.data_generators.units import AdminUnits, admin_units
from haicap.sandbox.province.problems import Problem

__all__ = ["ProvinceUnits", "ReceivingUnit", "commune_agency_code", "draft_refused_codes"]

#: official commune codes the draft ward list had under another code (DOMAIN.md) [C: 00226]
DRAFT_DIFFERS = frozenset({"00226"})


def commune_agency_code(commune_code: str, province_agency_code: str) -> str:
    """The agency code of a commune's People's Committee (see the module docstring for the rule)."""
    group = province_agency_code.rsplit(".", 1)[-1]
    return f"{commune_code[:3]}.{commune_code[3:]}.00.{group}"


def draft_refused_codes(units: AdminUnits, province_code: str) -> tuple[str, ...]:
    """Official codes the draft ward list (fault ``draft-commune-codes``) lacks, in this province.

    The draft list of mid-2025 (e.g. package vietnam-provinces 2025.10.1) differs from Decision 19/2025 for 114
    wards; 00226 (officially Phường Văn Miếu - Quốc Tử Giám) is the documented one. Elsewhere the fault
    simulates the same defect on the province's first commune [I].
    """
    codes = {c.code for c in units.communes(province_code)}
    known = tuple(sorted(DRAFT_DIFFERS & codes))
    return known or tuple(sorted(codes)[:1])


@dataclass(frozen=True, slots=True)
class ReceivingUnit:
    """The commune a dossier is filed in, and the agency that receives it."""

    code: str
    name: str
    agency_code: str


class ProvinceUnits:
    """The province's communes, with the defects of faults ``pre-merger-commune-codes``, ``wrong-agency-codes``
    and ``draft-commune-codes``."""

    def __init__(
        self,
        province_code: str,
        agency_code: str,
        faults: Collection[str] = (),
        units: AdminUnits | None = None,
    ) -> None:
        self.province_code = province_code
        self.agency_code = agency_code
        self._units = units or admin_units()
        self._province = self._units.province(province_code)
        self._accepts_legacy = "pre-merger-commune-codes" in faults
        self._stale_declaration = "wrong-agency-codes" in faults
        self._draft_refused = draft_refused_codes(self._units, province_code) if "draft-commune-codes" in faults else ()
        self._old_provinces = set(self._units.province_merges().get(province_code, (province_code,)))

    def check_commune(self, code: str, field: str = "MaXa") -> ReceivingUnit:
        """The receiving unit for ``code``, or a 422 problem naming ``field`` when it is not a current commune
        of this province (a pre-merger ward code, another province's commune, or no commune at all)."""
        if self._units.is_current_commune(code, self.province_code) and code not in self._draft_refused:
            commune = self._units.commune(code)
            return ReceivingUnit(code, commune.name, commune_agency_code(code, self.agency_code))
        if self._accepts_legacy:  # the defect: the old ward list was never replaced
            legacy = {w.code: w for w in self._legacy_wards()}.get(code)
            if legacy is not None:
                return ReceivingUnit(code, legacy.name, commune_agency_code(code, self.agency_code))
        raise Problem.field(
            422,
            field,
            f"{code!r} is not a current commune of province {self.province_code} (Decision 19/2025/QĐ-TTg); "
            "pre-merger ward codes are no longer valid",
            "Unknown commune",
        )

    def _legacy_wards(self) -> list[Any]:
        return [w for old in sorted(self._old_provinces) for w in self._units.legacy_wards(old)]

    def declaration(self) -> dict[str, Any]:
        """The UnitsDeclaration body: the province and every commune it serves, with agency codes."""
        if self._stale_declaration:  # the defect: the pre-merger unit list, with its old-style codes
            units = [
                {
                    "MaXa": w.code,
                    "TenXa": w.name,
                    "LoaiDonVi": "",
                    "MaCoQuan": f"{w.district_code}.{w.code}.{self.agency_code[-3:]}",
                }
                for w in self._legacy_wards()
            ]
        else:
            units = [
                {
                    "MaXa": c.code,
                    "TenXa": c.name,
                    "LoaiDonVi": c.kind,
                    "MaCoQuan": commune_agency_code(c.code, self.agency_code),
                }
                for c in self._units.communes(self.province_code)
            ]
        return {
            "MaTinh": self.province_code,
            "TenTinh": self._province.name,
            "MaCoQuan": self.agency_code,
            "DonVi": units,
        }
