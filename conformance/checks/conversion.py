"""Legacy data converted completely and accurately (criterion ``conversion``): ``haicap convert check`` as checks.

The province's converted legacy data — two files the profile names (``conversion.before``/``after``) or the
export endpoint ``GET /api/v1/conversion-export/{side}`` of contracts/province-dossier.openapi.yaml — is judged
once per run by the same engine as ``haicap convert check`` (:mod:`haicap.conversion`), restricted to the target
province; each finding family becomes one check: completeness (CONV-01), accuracy (CONV-02), continuity
(CONV-03), consistency (CONV-04), digitisation (CONV-05). Every finding kind of the engine belongs to exactly one
family, so every rule ``convert check`` enforces is enforced here. An export with no record of the province
reaches no verdict (error), never a pass.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, check
from haicap.conversion.check import ConversionReport, check_conversion
from haicap.conversion.rules import FINDINGS
from haicap.errors import HaicapError

__all__ = ["ConversionVerdict", "family_verdict", "judge_export"]

#: findings quoted in a failure message
_SHOWN = 5
#: the largest export side read from the endpoint (bigger exports: name the files in the profile)
MAX_EXPORT_BYTES = 512 * 1024 * 1024


@dataclass
class ConversionVerdict:
    """One run of the engine over the province's export, shared by the five checks."""

    report: ConversionReport
    source: str
    reproduce: str
    #: family → its findings (the first :data:`_SHOWN` as objects) and count
    shown: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def judged(self) -> int:
        """Old records of the target province the engine judged."""
        return self.report.before_records - self.report.outside_province

    @property
    def paired(self) -> int:
        """Old records found converted, both sides valid: what accuracy, continuity and consistency judge."""
        return sum(self.report.converted_by_old_unit.values())

    def count(self, family: str) -> int:
        return sum(n for kind, n in self.report.by_kind.items() if FINDINGS[kind][0] == family)

    def kinds(self, family: str) -> dict[str, int]:
        return {kind: n for kind, n in sorted(self.report.by_kind.items()) if FINDINGS[kind][0] == family}


# -- pure helpers (tested in tests/test_convert_check.py) -------------------------------------------
def judge_export(before: Path, after: Path, province: str, *, source: str, reproduce: str,
                 agency: str | None = None) -> ConversionVerdict:
    """Run the ``convert check`` engine over two export files, for ``province`` (``agency``: its own agency code,
    the profile's ``agency_code``, current with its communes' codes under it)."""
    with tempfile.TemporaryDirectory(prefix="haicap-conv-") as tmp:
        try:
            report = check_conversion(before, after, Path(tmp), province=province, say=lambda _: None,
                                      agency=agency)
        except HaicapError as exc:
            raise CheckError(f"{source}: {exc}", reproduce=reproduce) from None
        verdict = ConversionVerdict(report, source, reproduce)
        for line in report.listed:  # read back from findings.jsonl, before the folder goes
            finding = orjson.loads(line)
            shown = verdict.shown.setdefault(finding["family"], [])
            if len(shown) < _SHOWN:
                shown.append(finding)
    return verdict


def family_verdict(verdict: ConversionVerdict, family: str, what: str, province: str) -> str:
    """The one-line summary of a family without findings; raises CheckError (too little) or CheckFailure."""
    CheckContext.require_evidence(verdict.judged, 1, f"old records of province {province} in {verdict.source} "
                                  f"({verdict.report.before_records:,} records, "
                                  f"{verdict.report.outside_province:,} of other provinces)",
                                  reproduce=verdict.reproduce)
    if family != "completeness":  # an export of invalid or unpaired records judges no mapping, date or address
        CheckContext.require_evidence(verdict.paired, 1, f"old records of province {province} converted (valid "
                                      f"on both sides, joined by MaHoSo) in {verdict.source}",
                                      reproduce=verdict.reproduce)
    count = verdict.count(family)
    if count:
        kinds = verdict.kinds(family)
        quoted = "; ".join(f"{f['MaHoSo']} {f['kind']}: {f['message']}" for f in verdict.shown.get(family, []))
        CheckContext.fail(
            f"{count:,} {family} finding(s) in {verdict.source} "
            f"({', '.join(f'{k} {n:,}' for k, n in kinds.items())}): {quoted}"
            + (f" … (+{count - _SHOWN:,} more)" if count > _SHOWN else ""),
            expected=f"no {family} finding: {what}",
            actual={"findings": kinds, "old_records_judged": verdict.judged},
            reproduce=verdict.reproduce)
    return f"{verdict.judged:,} old records of province {province} judged in {verdict.source}: {what}"


# -- fetching ---------------------------------------------------------------------------------------
def _verdict(ctx: CheckContext) -> ConversionVerdict:
    return ctx.shared("conversion:verdict", lambda: _judge(ctx))


def _judge(ctx: CheckContext) -> ConversionVerdict:
    target = ctx.target
    files = target.conversion_files
    if files is not None:
        before, after = Path(files[0]), Path(files[1])
        reproduce = (f"haicap convert check --before {before} --after {after} --province {target.province_code} "
                     f"--agency-code {target.agency_code}")
        return judge_export(before, after, target.province_code, source=f"the export files {before.name}, "
                            f"{after.name}", reproduce=reproduce, agency=target.agency_code)
    url = f"{target.province_url}/api/v1/conversion-export"
    reproduce = (f"curl -H 'Authorization: Bearer $OFFICER_TOKEN' {url}/before > before.jsonl; (same for after); "
                 f"haicap convert check --before before.jsonl --after after.jsonl --province {target.province_code} "
                 f"--agency-code {target.agency_code}")
    with tempfile.TemporaryDirectory(prefix="haicap-conv-export-") as tmp:
        paths = [Path(tmp) / f"{side}.jsonl" for side in ("before", "after")]
        for side, path in zip(("before", "after"), paths, strict=True):
            path.write_bytes(_export_side(ctx, side, f"{url}/{side}"))
        return judge_export(paths[0], paths[1], target.province_code,
                            source=f"GET {url}/{{before,after}}", reproduce=reproduce, agency=target.agency_code)


def _export_side(ctx: CheckContext, side: str, url: str) -> bytes:
    try:
        answer = ctx.province.conversion_export(side)
    except HaicapError as exc:
        raise CheckError(f"GET {url}: {exc}") from None
    if answer.status_code != 200:
        ctx.fail(f"GET {url} answered HTTP {answer.status_code} (expected 200 with the {side} records)",
                 expected="HTTP 200, application/x-ndjson: one record of contracts/schemas/conversion.schema.json "
                          "per line", actual=f"HTTP {answer.status_code} {answer.text[:300]}",
                 reproduce=f"curl -H 'Authorization: Bearer $OFFICER_TOKEN' {url}")
    body = answer.content
    if len(body) > MAX_EXPORT_BYTES:
        raise CheckError(f"GET {url}: {len(body):,} bytes, more than {MAX_EXPORT_BYTES:,}: name the export files "
                         "in the profile (conversion.before, conversion.after) instead")
    return bytes(body)


def _run(ctx: CheckContext, family: str, what: str) -> str:
    return family_verdict(_verdict(ctx), family, what, ctx.target.province_code)


# -- the checks -------------------------------------------------------------------------------------
@check("CONV-01", criterion="conversion", severity="critical",
       title="Every old dossier is accounted for after the conversion: none dropped, duplicated or invented",
       rule="Completeness of converted dossiers: every record accounted for by MaHoSo; "
            "contracts/schemas/conversion.schema.json",
       requires=("conversion",), detects=("conversion-drops-record",))
def conversion_complete(ctx: CheckContext) -> str:
    """Joined by MaHoSo, every old record of the province has exactly one converted record, and no converted
    record of the province lacks an old one; every record of both sides is a record of the conversion contract
    (an invalid one is named by file, line and field)."""
    return _run(ctx, "completeness", "every old record converted once, nothing invented, every record valid")


@check("CONV-02", criterion="conversion", severity="critical",
       title="Every old unit code is converted to the commune of the official mapping (split wards decided)",
       rule="Decision 19/2025/QĐ-TTg (GSO unit codes); Resolution 202/2025/QH15; the official old → new mapping: "
            "a partly merged ward needs a recorded decision, never a silent pick",
       requires=("conversion",), detects=("conversion-silent-split-pick",))
def conversion_accurate(ctx: CheckContext) -> str:
    """The new MaXa is a current commune the old ward went to (never the pre-merger code, never another
    commune), with a recorded decision (QuyetDinhTach naming that commune) where the old ward was partly merged;
    MaTinh is the province the old one merged into; old codes of another code system or older than the last
    63-province list are reported as such."""
    return _run(ctx, "accuracy", "every old ward code mapped by the official table, split wards decided")


@check("CONV-03", criterion="conversion", severity="critical",
       title="Converted dossiers keep MaHoSo, procedure, dates and status, and name a current agency",
       rule="Continuity of in-progress dossiers: MaHoSo, NgayTiepNhan, NgayHenTra and status kept; "
            "Decision 20/2020/QĐ-TTg, amended by Decision 09/2025/QĐ-TTg (no agency that no longer exists)",
       requires=("conversion",), detects=("conversion-stale-agency",))
def conversion_continuous(ctx: CheckContext) -> str:
    """TrangThaiHoSo, MaTTHC, NgayTiepNhan and NgayHenTra are unchanged by the conversion, and MaCoQuan is a
    current agency (the province's or a current commune's), never a dissolved district's or an old ward's."""
    return _run(ctx, "continuity", "status, procedure and dates kept, every agency a current one")


@check("CONV-04", criterion="conversion", severity="major",
       title="The address of every converted dossier names the commune of its new code",
       rule="Address consistent with the new unit; Decision 19/2025/QĐ-TTg (commune names)",
       requires=("conversion",), detects=("conversion-stale-address",))
def conversion_consistent(ctx: CheckContext) -> str:
    """DiaChi names the commune of the new MaXa (compared without case, accents, đ/d)."""
    return _run(ctx, "consistency", "every address names the new commune")


@check("CONV-05", criterion="conversion", severity="critical",
       title="Every settled dossier of a dissolved district-level authority has its results digitised (100 %)",
       rule="Digitisation of district-level results: every result marked DuocSoHoa and DuocTaiSuDung; "
            "contracts/schemas/conversion.schema.json",
       requires=("conversion",), detects=("conversion-not-digitised",))
def conversion_digitised(ctx: CheckContext) -> str:
    """Every settled dossier (x-settled-statuses of the conversion contract) of a district-level authority
    carries at least one result document, each digitised and reusable: the share must be 100 %."""
    verdict = _verdict(ctx)
    province = ctx.target.province_code
    CheckContext.require_evidence(verdict.report.digitisation_due, 1, "settled dossiers of district-level "
                                  f"authorities of province {province} in {verdict.source}",
                                  reproduce=verdict.reproduce)
    summary = family_verdict(verdict, "digitisation", "the results of district-level authorities digitised",
                             province)
    return f"{summary}: {verdict.report.digitised:,} of {verdict.report.digitisation_due:,} (100 %)"

