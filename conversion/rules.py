"""The rules a converted dossier must follow, one finding kind each, with the rule it enforces.

A conversion is judged record by record (a dossier before, the same dossier after, joined by MaHoSo) and as a
whole (nothing dropped, duplicated or invented). The unit facts come from the official mapping
(:mod:`haicap.data_generators.units`: which current commune(s) each old ward went to, which wards were split);
the record fields from ``contracts/schemas/conversion.schema.json``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from msgspec import UNSET

from haicap.contract_registry import default_registry

__all__ = ["CLEAN", "DIGITISED", "FINDINGS", "Finding", "UnitFacts", "clean_pair", "judge_pair", "normalise_name",
           "settled_statuses"]

#: Finding kind → (family, what it means, the rule).
FINDINGS: dict[str, tuple[str, str, str]] = {
    "dropped": ("completeness", "in the old data, missing after the conversion",
                "Official Dispatch on data conversion: completeness — every record accounted for"),
    "duplicated": ("completeness", "appears more than once after the conversion", "completeness — by MaHoSo"),
    "duplicated-before": ("completeness", "appears more than once in the old data (the export before the "
                          "conversion): no one old record to account for", "completeness — by MaHoSo"),
    "invented": ("completeness", "after the conversion but not in the old data", "completeness — by MaHoSo"),
    "invalid-record": ("completeness", "not a record of the conversion contract",
                       "contracts/schemas/conversion.schema.json"),
    "foreign-code-system": ("accuracy", "the old MaXa is a code of another system (tax TMS, home affairs), not a "
                            "GSO commune code: convert it through that system's table first",
                            "Decision 19/2025/QĐ-TTg (GSO unit codes)"),
    "unknown-code": ("accuracy", "the old MaXa is a 5-digit code that is not in the last 63-province list "
                     "(merged before 2024, or invalid)", "Decision 19/2025/QĐ-TTg; Resolution 202/2025/QH15"),
    "unconverted": ("accuracy", "MaXa still holds the pre-merger code",
                    "Resolution 202/2025/QH15 and the NQ-UBTVQH arrangement resolutions (official mapping)"),
    "not-a-current-commune": ("accuracy", "MaXa after the conversion is not a current commune code",
                              "Decision 19/2025/QĐ-TTg (3,321 commune-level codes)"),
    "wrong-mapping": ("accuracy", "MaXa is a current commune the old ward did not go to",
                      "the official old → new mapping (NQ-UBTVQH arrangement resolutions)"),
    "split-undecided": ("accuracy", "the old ward was partly merged ('Nhập một phần') and no recorded decision "
                        "(QuyetDinhTach: which commune, on what basis, by whom, when) backs the chosen commune",
                        "official mapping: a partly merged ward maps to 2–5 communes; no silent pick"),
    "wrong-province": ("accuracy", "MaTinh is not the province the old province merged into",
                       "Resolution 202/2025/QH15 (34 provinces)"),
    "status-changed": ("continuity", "TrangThaiHoSo changed in the conversion",
                       "in-progress dossiers keep MaHoSo, NgayTiepNhan, NgayHenTra and status"),
    "dates-changed": ("continuity", "NgayTiepNhan or NgayHenTra changed in the conversion",
                      "in-progress dossiers keep MaHoSo, NgayTiepNhan, NgayHenTra and status"),
    "procedure-changed": ("continuity", "MaTTHC changed in the conversion", "the dossier's procedure is kept"),
    "agency-not-current": ("continuity", "MaCoQuan is not a current agency (left with one that no longer exists)",
                           "Decision 20/2020/QĐ-TTg as amended by 09/2025/QĐ-TTg (agency codes)"),
    "address-mismatch": ("consistency", "DiaChi does not name the commune of the new MaXa",
                         "address text consistent with the new unit code"),
    "not-digitised": ("digitisation", "a settled dossier of a dissolved district-level authority without its "
                      "result documents digitised and reusable (DuocSoHoa, DuocTaiSuDung)",
                      "the seed: digitise 100 % of the results of district-level authorities"),
}
_TMS = re.compile(r"^[0-9]{8}$")
_GSO = re.compile(r"^[0-9]{5}$")


@dataclass(frozen=True, slots=True)
class Finding:
    ma_ho_so: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"MaHoSo": self.ma_ho_so, "kind": self.kind, "family": FINDINGS[self.kind][0],
                "message": self.message}


@cache
def settled_statuses() -> frozenset[str]:
    """The settled TrangThaiHoSo values, read from the conversion contract (``x-settled-statuses``)."""
    document = default_registry().schema_file("conversion.schema.json")
    return frozenset(str(s) for s in document["x-settled-statuses"])


def _fold(ch: str) -> str:
    if ch in "Đđ":
        return "d"
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn").lower()
    return base if base.isascii() and base.isalnum() else " "


#: Every Latin letter with diacritics (Vietnamese included, U+00C0–U+1EFF) and every ASCII character folded to
#: a lower-case ASCII letter or digit, or a space: one str.translate instead of a per-character decomposition.
#: Latin-1 punctuation (a no-break space U+00A0, ´), general punctuation (’ U+2019 as the official table writes
#: "B’Lao", – in "Văn Miếu – Quốc Tử Giám", spaces U+2000–U+200B) and the modifier apostrophe ʼ fold to a
#: space like the ASCII ones.
_FOLD = {cp: _fold(chr(cp)) for cp in (*range(0x80), *range(0xA0, 0x250), *range(0x1E00, 0x1F00))} \
    | {cp: " " for cp in (*range(0x2000, 0x2070), 0x02BC, 0x02B9, 0x3000)}
_SPACES = re.compile(r" +")


def normalise_name(text: str) -> str:
    """Lower case, no accents, đ → d, single spaces: 'Phường Ba Đình' and 'phuong ba dinh' agree."""
    folded = unicodedata.normalize("NFC", text).translate(_FOLD)
    return _SPACES.sub(" ", folded).strip()


#: a commune's type word (folded) → the abbreviations addresses write for it ("P. Ba Đình", "X. An Phú", "ĐK. Côn Đảo")
_TYPE_ABBREVIATIONS = {"phuong": ("p",), "xa": ("x",), "dac khu": ("dk",), "thi tran": ("tt",)}


@lru_cache(maxsize=4096)
def _commune_pattern(name: str) -> re.Pattern[str]:
    """The folded commune name as whole words, its type word also written abbreviated ("p ba dinh")."""
    for kind, short in _TYPE_ABBREVIATIONS.items():
        if name.startswith(kind + " "):
            proper = re.escape(name[len(kind) + 1:])
            kinds = "|".join(re.escape(k) for k in (kind, *short))
            return re.compile(rf"(?<![0-9a-z])(?:{kinds}) {proper}(?![0-9a-z])")
    return re.compile(rf"(?<![0-9a-z]){re.escape(name)}(?![0-9a-z])")


def _verbatim(address: str, text: str) -> bool:
    """The cheap first test: the name as written, as whole words (most addresses; the rest pay the folding)."""
    at = address.find(text)
    end = at + len(text)
    return at >= 0 and (at == 0 or not address[at - 1].isalnum()) and (end == len(address)
                                                                        or not address[end].isalnum())


def names_commune(address: str, name: str) -> bool:
    """Whether ``address`` names the commune whose folded name is ``name``: compared without case, accents or đ/d,
    as whole words ("Xã An" is not named by "Xã Anh"), the type word written out or abbreviated ("Phường Ba
    Đình", "P. Ba Đình"); the name without its type is not enough ("Quận Ba Đình" names the old district)."""
    return _commune_pattern(name).search(normalise_name(address)) is not None


class UnitFacts:
    """What the official tables say, in the lookups a record check needs (built once, ~10,000 units)."""

    def __init__(self) -> None:
        from haicap.data_generators.agencies import commune_agency_code, province_agency_code
        from haicap.data_generators.units import admin_units

        units = admin_units()
        self.legacy = {w.code: w for w in units.legacy_wards()}
        self.targets = {code: frozenset(c.code for c in units.new_communes_for_legacy(code)) for code in self.legacy}
        self.split = frozenset(code for code, targets in self.targets.items() if len(targets) > 1)
        self.new_province = {p.code: units.new_province_for_legacy(p.code).code for p in units.legacy_provinces()}
        self.communes = {c.code: c for c in units.communes()}
        self.commune_names = {code: normalise_name(c.name) for code, c in self.communes.items()}
        #: the name as written (NFC): found verbatim in an address, the normalised name is found too (a cheap
        #: first test; only an address without it pays for the normalisation)
        self.commune_text = {code: unicodedata.normalize("NFC", c.name) for code, c in self.communes.items()}
        self.settled = settled_statuses()
        self.agencies = frozenset({province_agency_code(p.code) for p in units.provinces()}
                                  | {commune_agency_code(c) for c in self.communes})
        #: old ward → the current communes a record may name without a recorded decision (the one target of a
        #: ward merged whole; none of a split ward): clean_pair's one lookup of the mapping rules
        self.plain_targets = {code: targets & self.commune_text.keys() if code not in self.split else frozenset()
                              for code, targets in self.targets.items()}
        self.split_targets = {code: self.targets[code] & self.commune_text.keys() for code in self.split}
        #: old island district without wards → its đặc khu (Côn Đảo 755 → 26732 …): a dossier there had no ward
        #: code (MaXa empty or the district's code) and goes whole to the đặc khu
        self.island_zones = {district: zone for zone, district in units.island_districts().items()}


    def add_province_agency(self, province: str, agency: str) -> None:
        """A province's own agency code (its real one, which haicap's numbering may not know) and its communes'
        codes under it, as current agencies."""
        from haicap.data_generators.agencies import commune_agency_code
        from haicap.data_generators.units import admin_units

        self.agencies = self.agencies | {agency} | {commune_agency_code(c.code, agency)
                                                    for c in admin_units().communes(province)}


def _classify_old(facts: UnitFacts, old: str) -> str:
    """Why an old MaXa that is no ward of the last 63-province list is not one (the caller knows it is not)."""
    if _GSO.match(old):
        return "unknown-code"
    return "foreign-code-system"


#: what :func:`clean_pair` says of a pair: findings possible (judge it), none, none and a digitised result due
JUDGE, CLEAN, DIGITISED = 0, 1, 2


def clean_pair(facts: UnitFacts, before: Any, after: Any) -> int:
    """CLEAN or DIGITISED only when :func:`judge_pair` finds nothing (valid records, typed:
    :mod:`~haicap.conversion.typed_records`): the plain comparisons of the common case, each rule's cheapest
    sufficient test (DIGITISED: a settled dossier of a district-level authority, digitised); JUDGE sends the pair
    to ``judge_pair`` for its findings."""
    old, new = before.MaXa, after.MaXa
    if new not in facts.plain_targets.get(old, ()):
        targets = facts.split_targets.get(old)
        if targets is None or new not in targets:
            return JUDGE
        decision = after.QuyetDinhTach
        if decision is UNSET or decision.MaXa != new:
            return JUDGE
    expected = facts.new_province.get(before.MaTinh)
    if (expected is not None and after.MaTinh != expected) or before.TrangThaiHoSo != after.TrangThaiHoSo \
            or before.MaTTHC != after.MaTTHC or before.NgayTiepNhan != after.NgayTiepNhan \
            or before.NgayHenTra != after.NgayHenTra or after.MaCoQuan not in facts.agencies \
            or facts.commune_text[new] not in after.DiaChi:
        return JUDGE
    if before.CapCoQuan == "huyen" and before.TrangThaiHoSo in facts.settled:
        results = after.KetQua
        if results and all(r.DuocSoHoa is True and r.DuocTaiSuDung is True for r in results):
            return DIGITISED
        return JUDGE
    return CLEAN


def judge_pair(facts: UnitFacts, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Every rule one converted record breaks (the completeness rules are judged over the whole set)."""
    m = str(before["MaHoSo"])
    out: list[Finding] = []
    old, new = str(before["MaXa"]), str(after["MaXa"])
    district = str(before["MaHuyen"])
    if old in facts.legacy:
        out.extend(_mapping(facts, m, before, after, old, new))
    elif old in ("", district) and district in facts.island_zones:
        out.extend(_island(facts, m, before, after, facts.island_zones[district], new))
    else:
        foreign = _classify_old(facts, old)
        out.append(Finding(m, foreign, f"old MaXa {old}: {FINDINGS[foreign][1]}"))
    for key, kind in (("TrangThaiHoSo", "status-changed"), ("MaTTHC", "procedure-changed")):
        if before[key] != after[key]:
            out.append(Finding(m, kind, f"{key} {before[key]} before, {after[key]} after"))
    if before["NgayTiepNhan"] != after["NgayTiepNhan"] or before["NgayHenTra"] != after["NgayHenTra"]:
        changed = [k for k in ("NgayTiepNhan", "NgayHenTra") if before[k] != after[k]]
        out.append(Finding(m, "dates-changed", "; ".join(f"{k} {before[k]} → {after[k]}" for k in changed)))
    if after["MaCoQuan"] not in facts.agencies:
        out.append(Finding(m, "agency-not-current", f"MaCoQuan {after['MaCoQuan']} is not a current agency code"))
    text = facts.commune_text.get(new)
    if text is not None and not _verbatim(str(after["DiaChi"]), text) \
            and not names_commune(str(after["DiaChi"]), facts.commune_names[new]):
        out.append(Finding(m, "address-mismatch", f"DiaChi {after['DiaChi']!r} does not name "
                                                  f"{facts.communes[new].name} ({new})"))
    if before["CapCoQuan"] == "huyen" and before["TrangThaiHoSo"] in facts.settled:
        results = after.get("KetQua") or []
        if not results or not all(r.get("DuocSoHoa") is True and r.get("DuocTaiSuDung") is True for r in results):
            what = "no result document" if not results else "a result document not digitised or not reusable"
            out.append(Finding(m, "not-digitised", f"settled by district-level authority {before['MaCoQuan']}: "
                                                   f"{what}"))
    return out


def _mapping(facts: UnitFacts, m: str, before: dict[str, Any], after: dict[str, Any], old: str,
             new: str) -> list[Finding]:
    targets = facts.targets[old]
    out: list[Finding] = []
    if new == old and new not in facts.communes:
        out.append(Finding(m, "unconverted", f"MaXa {new} is the pre-merger code of {facts.legacy[old].name}"))
    elif new not in facts.communes:
        out.append(Finding(m, "not-a-current-commune", f"MaXa {new} (old ward {old})"))
    elif new not in targets:
        out.append(Finding(m, "wrong-mapping", f"old ward {old} ({facts.legacy[old].name}) went to "
                                               f"{', '.join(sorted(targets))}, not {new}"))
    elif old in facts.split:
        decision = after.get("QuyetDinhTach")
        if not isinstance(decision, dict) or decision.get("MaXa") != new:
            why = ("no QuyetDinhTach" if not isinstance(decision, dict)
                   else f"QuyetDinhTach names {decision.get('MaXa')}")
            out.append(Finding(m, "split-undecided", f"old ward {old} was split into {', '.join(sorted(targets))}; "
                                                     f"{new} chosen with {why}"))
    return out + _province(facts, m, before, after)


def _island(facts: UnitFacts, m: str, before: dict[str, Any], after: dict[str, Any], zone: str,
            new: str) -> list[Finding]:
    """A dossier of an old island district without wards: it goes to that district's đặc khu."""
    out: list[Finding] = []
    if new != zone:
        kind = "wrong-mapping" if new in facts.communes else "not-a-current-commune"
        out.append(Finding(m, kind, f"old island district {before['MaHuyen']} became {zone} "
                                    f"({facts.communes[zone].name}), not {new or 'an empty MaXa'}"))
    return out + _province(facts, m, before, after)


def _province(facts: UnitFacts, m: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    expected = facts.new_province.get(str(before["MaTinh"]))
    if expected is not None and str(after["MaTinh"]) != expected:
        return [Finding(m, "wrong-province", f"MaTinh {after['MaTinh']}, old province {before['MaTinh']} merged "
                                             f"into {expected}")]
    return []
