"""Conversion test pairs: old dossiers under pre-merger units, their conversion, and planted defects.

``haicap data generate --kind conversion --count N --defect-rate R --seed S --out DIR`` writes
``DIR/before.jsonl`` (``LegacyRecord``s of contracts/schemas/conversion.schema.json: old ward, district,
province and agency), ``DIR/after.jsonl`` (their ``ConvertedRecord``s: the current commune of the official
mapping — with a recorded decision where the old ward was split —, the new province, a current agency, the
address naming the new commune, results digitised) and ``DIR/manifest.json``, which lists every planted defect
by MaHoSo and kind. Each planted defect breaks exactly one rule of :mod:`haicap.conversion.rules`, under the
same kind name, so ``haicap convert check`` can be scored against the manifest: it must find exactly these.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from haicap.errors import HaicapError

__all__ = ["PLANTED", "ConversionPairs"]

#: The defects a pair can carry (each is a finding kind of haicap.conversion.rules).
PLANTED: tuple[str, ...] = (
    "dropped", "duplicated", "invented", "foreign-code-system", "unknown-code", "unconverted", "wrong-mapping",
    "split-undecided", "wrong-province", "status-changed", "dates-changed", "procedure-changed",
    "agency-not-current", "address-mismatch", "not-digitised",
)
_STATUSES = ("1", "2", "4", "5", "6", "8", "9", "10")
_LEVELS = ("huyen", "huyen", "xa", "xa", "xa", "tinh")
_STREETS = ("Số 12 Lê Lợi", "Số 5 ngõ 3 Trần Phú", "Thôn Đông", "Số 88 Nguyễn Trãi", "Tổ 4", "Xóm Mới")
_PROCEDURES = ("1.001193", "1.000656", "1.000894", "2.000815", "1.004227")


@dataclass
class Manifest:
    seed: int
    province: str | None
    defect_rate: float
    before: int = 0
    after: int = 0
    defects: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in PLANTED})

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "conversion", "seed": self.seed, "province": self.province, "defect_rate": self.defect_rate,
                "before_records": self.before, "after_records": self.after,
                "defect_counts": {k: len(v) for k, v in self.defects.items()}, "defects": self.defects}


class ConversionPairs:
    """Streams (before, [after records]) pairs; ``manifest`` is complete once exhausted."""

    def __init__(self, seed: int, province: str | None = None, defect_rate: float = 0.0) -> None:
        from haicap.data_generators.agencies import commune_agency_code, province_agency_code
        from haicap.data_generators.units import admin_units

        if not 0.0 <= defect_rate <= 1.0:
            raise HaicapError(f"--defect-rate must be between 0 and 1, got {defect_rate}")
        units = admin_units()
        olds = units.province_merges()[province] if province else tuple(p.code for p in units.legacy_provinces())
        self.wards = tuple(w for old in olds for w in units.legacy_wards(old))
        self.targets = {w.code: tuple(c.code for c in units.new_communes_for_legacy(w.code)) for w in self.wards}
        self.new_province = {old: units.new_province_for_legacy(old).code for old in olds}
        self.province_name = {p.code: p.name for p in units.provinces()}
        self.communes = {c.code: c for c in units.communes()}
        self.province_communes = {p: tuple(c.code for c in units.communes(p)) for p in set(self.new_province.values())}
        self.legacy_codes = frozenset(w.code for w in units.legacy_wards())
        self.current = frozenset(self.communes)
        self.commune_agency = commune_agency_code
        self.province_agency = province_agency_code
        self.all_provinces = tuple(p.code for p in units.provinces())
        self.seed = seed
        self.manifest = Manifest(seed, province, defect_rate)

    def _pair(self, rng: random.Random, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        ward = self.wards[int(rng.random() * len(self.wards))]
        targets = self.targets[ward.code]
        target = targets[int(rng.random() * len(targets))]
        province = self.new_province[ward.province_code]
        level = _LEVELS[int(rng.random() * len(_LEVELS))]
        status = _STATUSES[int(rng.random() * len(_STATUSES))]
        day = 1 + int(rng.random() * 28)
        month = 1 + int(rng.random() * 6)
        received = f"2025{month:02d}{day:02d}0{8 + int(rng.random() * 2)}3000"
        due = f"2025{month + 1:02d}{day:02d}170000"
        old_agency = {"huyen": f"000.{ward.district_code}.00.L{ward.province_code}",
                      "xa": f"{ward.code[:3]}.{ward.code[3:]}.00.L{ward.province_code}",
                      "tinh": f"000.00.00.L{ward.province_code}"}[level]
        street = _STREETS[int(rng.random() * len(_STREETS))]
        results = ([{"TenGiayTo": "Kết quả giải quyết", "DuocSoHoa": True, "DuocTaiSuDung": True}]
                   if status in ("9", "10") else [])
        before = {"MaHoSo": f"{old_agency}-{month:02d}{day:02d}-{n:07d}", "MaTTHC": _PROCEDURES[n % 5],
                  "TrangThaiHoSo": status, "NgayTiepNhan": received, "NgayHenTra": due, "MaXa": ward.code,
                  "MaHuyen": ward.district_code, "MaTinh": ward.province_code, "MaCoQuan": old_agency,
                  "CapCoQuan": level, "DiaChi": f"{street}, {ward.name}, {ward.district_name}, {ward.province_name}",
                  "KetQua": results}
        after = {key: before[key] for key in ("MaHoSo", "MaTTHC", "TrangThaiHoSo", "NgayTiepNhan", "NgayHenTra")}
        after.update(self._placed(target, province, level, street), KetQua=[dict(r) for r in results])
        if len(targets) > 1:
            after["QuyetDinhTach"] = {"MaXa": target, "CanCu": f"địa chỉ: {street}",
                                      "NguoiQuyetDinh": "Cán bộ chuyển đổi", "NgayQuyetDinh": "20250701080000"}
        return before, after

    def _placed(self, commune: str, province: str, level: str, street: str) -> dict[str, Any]:
        agency = self.province_agency(province) if level == "tinh" else self.commune_agency(commune)
        return {"MaXa": commune, "MaTinh": province, "MaCoQuan": agency,
                "DiaChi": f"{street}, {self.communes[commune].name}, {self.province_name[province]}"}

    def _applicable(self, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        kinds = [k for k in PLANTED if k not in ("split-undecided", "unconverted", "not-digitised")]
        if "QuyetDinhTach" in after:
            kinds.append("split-undecided")
        if before["MaXa"] not in self.current:
            kinds.append("unconverted")
        if before["CapCoQuan"] == "huyen" and before["TrangThaiHoSo"] in ("9", "10"):
            kinds.append("not-digitised")
        return kinds

    def _plant(self, rng: random.Random, kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
        """Apply ``kind`` to the pair; the converted records to write (none when dropped, two when duplicated)."""
        old = before["MaXa"]
        if kind == "dropped":
            return []
        if kind == "duplicated":
            return [after, after]
        if kind == "invented":
            return [after, {**after, "MaHoSo": after["MaHoSo"] + "-X"}]
        if kind == "foreign-code-system":
            before["MaXa"] = f"1{before['MaTinh']}{old}"  # a tax-system (TMS) style code: 8 digits
        elif kind == "unknown-code":
            before["MaXa"] = next(c for c in (f"{rng.randrange(100000):05d}" for _ in range(1000))
                                  if c not in self.legacy_codes)
        elif kind == "unconverted":
            after["MaXa"] = old
        elif kind == "wrong-mapping":
            communes = self.province_communes[after["MaTinh"]]
            wrong = next(c for c in (communes[int(rng.random() * len(communes))] for _ in range(50))
                         if c not in self.targets[old])
            after.update(self._placed(wrong, after["MaTinh"], before["CapCoQuan"], "Số 1"))
            after.pop("QuyetDinhTach", None)
        elif kind == "split-undecided":
            del after["QuyetDinhTach"]
        elif kind == "wrong-province":
            after["MaTinh"] = next(p for p in self.all_provinces if p != after["MaTinh"])
        elif kind == "status-changed":
            after["TrangThaiHoSo"] = next(s for s in _STATUSES if s != before["TrangThaiHoSo"])
        elif kind == "dates-changed":
            due = after["NgayHenTra"]
            day = int(due[6:8])
            after["NgayHenTra"] = f"{due[:6]}{day + 1 if day < 28 else day - 1:02d}{due[8:]}"  # one day off
        elif kind == "procedure-changed":
            after["MaTTHC"] = next(p for p in _PROCEDURES if p != before["MaTTHC"])
        elif kind == "agency-not-current":
            after["MaCoQuan"] = before["MaCoQuan"]
        elif kind == "address-mismatch":
            self._misplace_address(rng, after)
        elif kind == "not-digitised":
            after["KetQua"] = [{**after["KetQua"][0], "DuocSoHoa": False}] if rng.random() < 0.5 else []
        return [after]

    def _misplace_address(self, rng: random.Random, after: dict[str, Any]) -> None:
        from haicap.conversion.rules import normalise_name

        own = normalise_name(self.communes[after["MaXa"]].name)
        communes = self.province_communes[after["MaTinh"]]
        for _ in range(100):
            other = self.communes[communes[int(rng.random() * len(communes))]]
            text = f"Số 1, {other.name}, {self.province_name[after['MaTinh']]}"
            if own not in normalise_name(text):
                after["DiaChi"] = text
                return
        raise HaicapError("could not plant an address mismatch")  # pragma: no cover - 100 tries

    def pairs(self, count: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        rng = random.Random(f"conversion:{self.seed}")
        for n in range(count):
            before, after = self._pair(rng, n)
            written = [after]
            if rng.random() < self.manifest.defect_rate:
                kinds = self._applicable(before, after)
                kind = kinds[int(rng.random() * len(kinds))]
                written = self._plant(rng, kind, before, after)
                self.manifest.defects[kind].append(before["MaHoSo"] if kind != "invented" else
                                                   written[1]["MaHoSo"])
            self.manifest.before += 1
            self.manifest.after += len(written)
            yield before, written

    def pairs_with(self, count: int, kinds: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """``count`` correct pairs, except that each of ``kinds`` is planted once, in the first pair it applies to
        (the reference province's export faults); ``defect_rate`` is not used."""
        rng = random.Random(f"conversion-faults:{self.seed}")
        waiting = list(kinds)
        for before, written in self.pairs(count):
            kind = next((k for k in waiting if k in self._applicable(before, written[0])), None)
            if kind is not None and len(written) == 1:
                waiting.remove(kind)
                written = self._plant(rng, kind, before, written[0])
                self.manifest.defects[kind].append(before["MaHoSo"] if kind != "invented" else written[1]["MaHoSo"])
                self.manifest.after += len(written) - 1
            yield before, written
        if waiting:
            raise HaicapError(f"no pair of {count} could carry {', '.join(waiting)}")

    def write(self, count: int, folder: Path) -> Manifest:
        """before.jsonl, after.jsonl and manifest.json in ``folder`` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "before.jsonl").open("wb") as old, (folder / "after.jsonl").open("wb") as new:
            for before, written in self.pairs(count):
                old.write(orjson.dumps(before) + b"\n")
                for record in written:
                    new.write(orjson.dumps(record) + b"\n")
        (folder / "manifest.json").write_bytes(orjson.dumps(self.manifest.as_dict(), option=orjson.OPT_INDENT_2))
        return self.manifest
