"""Legacy dossiers for conversion checks: records filed under old (pre-1 July 2025) units, converted.

Each line is a dossier as the new system holds it after conversion (the sync contract's fields, ``MaXa``
being the converted current commune) plus two objects that are not part of any contract:
``HoSoCu`` — the old unit the dossier was filed under (MaXa, TenXa, MaHuyen, TenHuyen, MaTinh, TenTinh of the
63-province list) — and ``KyVong`` — what a correct conversion allows: every current commune the old ward went
to (several when it was split) and the new province. Optional planted defects imitate a faulty conversion:

- ``wrong-mapping``: MaXa is a current commune of the right province that the old ward did not go to;
- ``unconverted``: MaXa still holds the pre-merger code;
- ``dropped``: the record is missing from the output;
- ``duplicated``: the record appears twice.

The manifest lists every planted defect by MaHoSo, so a conversion check can be scored against it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.units import admin_units
from haicap.errors import HaicapError

__all__ = ["DEFECTS", "LegacyDossierGenerator", "LegacyManifest"]

DEFECTS: tuple[str, ...] = ("wrong-mapping", "unconverted", "dropped", "duplicated")


@dataclass
class LegacyManifest:
    seed: int
    province: str | None
    defect_rate: float
    source_records: int = 0
    written: int = 0
    defects: dict[str, list[str]] = field(default_factory=lambda: {d: [] for d in DEFECTS})

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "legacy-dossiers",
            "seed": self.seed,
            "province": self.province,
            "defect_rate": self.defect_rate,
            "source_records": self.source_records,
            "written": self.written,
            "defect_counts": {name: len(ids) for name, ids in self.defects.items()},
            "defects": self.defects,
        }


class LegacyDossierGenerator:
    """Streams converted legacy dossiers; ``manifest`` is complete once the stream is exhausted."""

    def __init__(
        self,
        seed: int,
        province_code: str | None = None,
        defect_rate: float = 0.0,
        defects: tuple[str, ...] = DEFECTS,
    ) -> None:
        if not 0.0 <= defect_rate <= 1.0:
            raise HaicapError(f"defect rate must be between 0 and 1, got {defect_rate}")
        unknown = [d for d in defects if d not in DEFECTS]
        if unknown:
            raise HaicapError(f"unknown defect {unknown[0]!r}; valid defects: {', '.join(DEFECTS)}")
        units = admin_units()
        self.seed = seed
        self.dossiers = DossierGenerator(seed, province_code, shape="sync")
        merges = units.province_merges()
        olds = merges[province_code] if province_code else tuple(p.code for p in units.legacy_provinces())
        self.wards = tuple(w for old in olds for w in units.legacy_wards(old))
        self._targets = {w.code: tuple(c.code for c in units.new_communes_for_legacy(w.code)) for w in self.wards}
        self._new_province = {old: units.new_province_for_legacy(old).code for old in olds}
        self._province_communes = {
            p: tuple(c.code for c in units.communes(p)) for p in set(self._new_province.values())
        }
        self._current = {c.code for c in units.communes()}
        self.defect_rate = defect_rate
        self.defect_kinds = defects
        self.manifest = LegacyManifest(seed, province_code, defect_rate)

    def records(self, count: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        manifest = self.manifest
        for base in self.dossiers.records(count):
            ward = self.wards[int(rng.random() * len(self.wards))]
            targets = self._targets[ward.code]
            new_province = self._new_province[ward.province_code]
            record = dict(base)
            record["MaXa"] = targets[int(rng.random() * len(targets))]
            record["HoSoCu"] = {
                "MaXa": ward.code,
                "TenXa": ward.name,
                "MaHuyen": ward.district_code,
                "TenHuyen": ward.district_name,
                "MaTinh": ward.province_code,
                "TenTinh": ward.province_name,
            }
            record["KyVong"] = {"MaXa": list(targets), "MaTinh": new_province}
            manifest.source_records += 1
            defect = None
            if self.defect_kinds and rng.random() < self.defect_rate:
                defect = self.defect_kinds[int(rng.random() * len(self.defect_kinds))]
                if defect == "unconverted" and ward.code in self._current:
                    # 3,316 old codes live on as current codes: keeping one is a wrong mapping, not a visible leftover
                    defect = "wrong-mapping" if "wrong-mapping" in self.defect_kinds else None
            if defect == "wrong-mapping":
                communes = self._province_communes[new_province]
                wrong = [c for c in (communes[int(rng.random() * len(communes))] for _ in range(8)) if c not in targets]
                record["MaXa"] = wrong[0] if wrong else next(c for c in communes if c not in targets)
            elif defect == "unconverted":
                record["MaXa"] = ward.code
            if defect is not None:
                manifest.defects[defect].append(record["MaHoSo"])
            if defect == "dropped":
                continue
            manifest.written += 1
            yield record
            if defect == "duplicated":
                manifest.written += 1
                yield record
