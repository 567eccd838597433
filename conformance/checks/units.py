"""Administrative units and agency identification codes declared by the province (Decision 19/2025/QĐ-TTg).

Since 1 July 2025 a province serves the communes, wards and special zones of the official 34-province list,
and every receiving agency has an electronic identification code (Decision 20/2020/QĐ-TTg as amended by
09/2025/QĐ-TTg). The province declares both at ``GET /api/v1/units``; UNIT-01 compares the communes with the
official list (missing, extra — pre-merger ward codes named as such — and names), UNIT-02 checks the agency
codes: format (the ``MaCoQuan`` pattern of the contracts), uniqueness and the province's H-number.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, check
from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.errors import HaicapError

__all__ = ["UnitsDiff", "agency_code_findings", "diff_units", "summarise"]

_SHOWN = 8


# -- pure helpers (tested in tests/test_checks_units.py) ----------------------------------------------
def _norm(text: Any) -> str:
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


@dataclass(frozen=True)
class UnitsDiff:
    """How a declared commune list differs from the official one."""

    missing: list[tuple[str, str]] = field(default_factory=list)  # (code, official name)
    extra_legacy: list[tuple[str, str]] = field(default_factory=list)  # (code, declared name): pre-merger codes
    extra_unknown: list[tuple[str, str]] = field(default_factory=list)  # (code, declared name)
    duplicates: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # (code, declared name, official name)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra_legacy or self.extra_unknown or self.duplicates or self.renamed)


def diff_units(
    declared: Sequence[Mapping[str, Any]],
    official: Mapping[str, str],
    legacy: Iterable[str] = (),
) -> UnitsDiff:
    """Compare declared ``{MaXa, TenXa}`` rows with the official ``{code: name}`` of the province.

    ``legacy`` holds the pre-merger ward codes of the province's old provinces: an extra code found there is
    reported as a pre-merger code. A code that is both current and pre-merger counts as current (3,316 current
    codes reuse an old ward's code); if the declared name is not the official one it is reported as renamed.
    """
    legacy_codes = set(legacy)
    codes = [str(row.get("MaXa")) for row in declared]
    counts = Counter(codes)
    names = {str(row.get("MaXa")): _norm(row.get("TenXa", "")) for row in declared}
    diff = UnitsDiff(duplicates=sorted(c for c, n in counts.items() if n > 1))
    for code, name in official.items():
        if code not in counts:
            diff.missing.append((code, name))
        elif names[code] != _norm(name):
            diff.renamed.append((code, names[code], name))
    for code in sorted(set(codes) - set(official)):
        (diff.extra_legacy if code in legacy_codes else diff.extra_unknown).append((code, names[code]))
    return diff


def summarise(items: Sequence[Any], shown: int = _SHOWN) -> str:
    """``a, b, c … (+N more)`` for a message."""
    text = ", ".join(" ".join(x) if isinstance(x, tuple) else str(x) for x in items[:shown])
    return text + (f" … (+{len(items) - shown} more)" if len(items) > shown else "")


def agency_code_findings(
    province_code: str,
    communes: Sequence[Mapping[str, Any]],
    pattern: str,
    expected_province_code: str | None = None,
) -> list[str]:
    """What is wrong with the declared agency codes: the province's and each commune's ``MaCoQuan``.

    Each must match ``pattern`` (common.schema MaCoQuan), be unique, and end with the province's H-number (the
    last group of the province-level code, which must be an H group); the province-level code must equal
    ``expected_province_code`` when given (the code the province is registered under with the counterpart).
    """
    regex = re.compile(pattern)
    findings: list[str] = []
    if not isinstance(province_code, str) or not regex.fullmatch(province_code):
        findings.append(f"the province-level MaCoQuan {province_code!r} does not match {pattern}")
        group = None
    else:
        group = province_code.rsplit(".", 1)[1]
        if not group.startswith("H"):
            findings.append(f"the province-level MaCoQuan {province_code} ends with {group}, a ministry (G) group, "
                            "not a province H-number")
    if expected_province_code and province_code != expected_province_code:
        findings.append(f"the province-level MaCoQuan {province_code!r} is not the agency code the province is "
                        f"registered under ({expected_province_code})")
    malformed = [(str(c.get("MaXa")), repr(c.get("MaCoQuan"))) for c in communes
                 if not isinstance(c.get("MaCoQuan"), str) or not regex.fullmatch(c["MaCoQuan"])]
    if malformed:
        findings.append(f"{len(malformed)} commune MaCoQuan do not match {pattern}: "
                        + summarise([f"{code}→{value}" for code, value in malformed]))
    codes = Counter(str(c.get("MaCoQuan")) for c in communes)
    clashes = sorted(code for code, n in codes.items() if n > 1)
    if clashes:
        findings.append(f"{len(clashes)} commune MaCoQuan are used by several communes: " + summarise(clashes))
    if province_code in codes:
        findings.append(f"a commune uses the province-level MaCoQuan {province_code}")
    if group is not None:
        other = [(str(c.get("MaXa")), str(c.get("MaCoQuan"))) for c in communes
                 if isinstance(c.get("MaCoQuan"), str) and regex.fullmatch(c["MaCoQuan"])
                 and c["MaCoQuan"].rsplit(".", 1)[1] != group]
        if other:
            findings.append(f"{len(other)} commune MaCoQuan do not end with the province's {group}: "
                            + summarise([f"{code}→{value}" for code, value in other]))
    return findings


# -- fetching ---------------------------------------------------------------------------------------
def _declaration(ctx: CheckContext) -> dict[str, Any]:
    answer = ctx.province.units()
    if answer.status_code != 200:
        ctx.fail("GET /api/v1/units did not answer the units declaration",
                 expected="HTTP 200 with a UnitsDeclaration (MaTinh, TenTinh, MaCoQuan, DonVi)",
                 actual=f"HTTP {answer.status_code} {answer.text[:300]}",
                 reproduce=f"GET {ctx.target.province_url}/api/v1/units")
    try:
        body = answer.json()
    except ValueError:
        body = None
    rows = body.get("DonVi") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        ctx.fail("GET /api/v1/units is not a UnitsDeclaration (no DonVi list of objects)",
                 expected="an object with MaTinh, TenTinh, MaCoQuan and DonVi: [{MaXa, TenXa, LoaiDonVi, MaCoQuan}]",
                 actual=answer.text[:300], reproduce=f"GET {ctx.target.province_url}/api/v1/units")
    return body  # type: ignore[no-any-return]


# -- UNIT-01 ----------------------------------------------------------------------------------------
@check("UNIT-01", criterion="units", severity="critical",
       title="The declared communes are exactly the official current communes of the province",
       rule="Decision 19/2025/QĐ-TTg (administrative unit codes, 34 provinces); Resolution 202/2025/QH15",
       requires=("units",), detects=("wrong-agency-codes",))
def communes_match_official_list(ctx: CheckContext) -> str:
    """``GET /api/v1/units`` names the target province (MaTinh, TenTinh) and lists every current commune, ward
    and special zone of it, with its official code and name, and nothing else: no pre-merger ward code, no
    commune of another province, no duplicate."""
    reproduce = f"GET {ctx.target.province_url}/api/v1/units"
    body = _declaration(ctx)
    units = admin_units()
    province = ctx.target.province_code
    declared_province = body.get("MaTinh")
    ctx.expect(
        declared_province == province,
        f"the units declaration is for province {declared_province!r}, the target is province {province}",
        expected={"MaTinh": province}, actual={"MaTinh": declared_province}, reproduce=reproduce,
    )
    try:
        official_province = units.province(province)
    except HaicapError as exc:
        raise CheckError(str(exc)) from None
    official = {c.code: c.name for c in units.communes(province)}
    merged_from = units.province_merges().get(province, (province,))
    legacy = {w.code for old in merged_from for w in units.legacy_wards(old)}
    diff = diff_units(body["DonVi"], official, legacy)
    problems: list[str] = []
    if _norm(body.get("TenTinh", "")) != _norm(official_province.name):
        problems.append(f"TenTinh is {body.get('TenTinh')!r}, officially {official_province.name!r}")
    if diff.missing:
        problems.append(f"{len(diff.missing)} official communes missing: {summarise(diff.missing)}")
    if diff.extra_legacy:
        problems.append(f"{len(diff.extra_legacy)} pre-merger ward codes declared (no longer valid since "
                        f"1 July 2025): {summarise(diff.extra_legacy)}")
    if diff.extra_unknown:
        problems.append(f"{len(diff.extra_unknown)} codes that are not communes of province {province}: "
                        f"{summarise(diff.extra_unknown)}")
    if diff.duplicates:
        problems.append(f"{len(diff.duplicates)} codes declared twice: {summarise(diff.duplicates)}")
    if diff.renamed:
        problems.append(f"{len(diff.renamed)} names differ from the official ones: "
                        + summarise([f"{code} {declared!r} (official {name!r})" for code, declared, name
                                     in diff.renamed]))
    ctx.expect(
        not problems,
        f"the declared communes of province {province} differ from the official list: " + "; ".join(problems),
        expected={"communes": len(official), "TenTinh": official_province.name},
        actual={"declared": len(body["DonVi"]), "missing": len(diff.missing),
                "pre_merger_codes": len(diff.extra_legacy), "unknown_codes": len(diff.extra_unknown),
                "duplicates": len(diff.duplicates), "names_differ": len(diff.renamed)},
        reproduce=reproduce,
    )
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(Counter(str(row.get("LoaiDonVi"))
                                                                  for row in body["DonVi"]).items()))
    return (f"province {declared_province} {body.get('TenTinh')}: {len(body['DonVi'])} declared communes = the "
            f"{len(official)} official ones, codes and names ({kinds}); no pre-merger, unknown or duplicate code")


# -- UNIT-02 ----------------------------------------------------------------------------------------
@check("UNIT-02", criterion="units", severity="critical",
       title="Agency identification codes are well-formed, unique and carry the province's H-number",
       rule="Decision 20/2020/QĐ-TTg as amended by Decision 09/2025/QĐ-TTg (agency electronic identification "
            "codes); contracts common.schema.json MaCoQuan",
       requires=("units",), detects=("wrong-agency-codes",))
def agency_codes_well_formed(ctx: CheckContext) -> str:
    """The province-level ``MaCoQuan`` is the code the province is registered under and ends with an H group;
    every commune's ``MaCoQuan`` matches the agency-code format, is unique, and ends with the same H-number."""
    body = _declaration(ctx)
    pattern = default_registry().schema("common.schema.json#/$defs/MaCoQuan")["pattern"]
    findings = agency_code_findings(body.get("MaCoQuan"), body["DonVi"], pattern, ctx.target.agency_code)
    group = ctx.target.agency_code.rsplit(".", 1)[-1]
    ctx.expect(
        not findings,
        "the declared agency codes are wrong: " + "; ".join(findings),
        expected=f"province {ctx.target.agency_code}; each commune a unique code matching {pattern} "
                 f"ending with .{group}",
        actual={"MaCoQuan": body.get("MaCoQuan"),
                "communes_sample": [{k: u.get(k) for k in ("MaXa", "MaCoQuan")} for u in body["DonVi"][:3]]},
        reproduce=f"GET {ctx.target.province_url}/api/v1/units",
    )
    return (f"province MaCoQuan {body.get('MaCoQuan')} (as registered); {len(body['DonVi'])} commune MaCoQuan, "
            f"{len({u.get('MaCoQuan') for u in body['DonVi']})} distinct, all of the agency-code format and ending "
            f"with .{group}")
