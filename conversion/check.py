"""Judge a conversion in constant memory: two passes over the files, whatever their size.

Pass 1 splits both files into buckets by a hash of MaHoSo (the raw lines, with their line numbers, in a
temporary folder), so a dossier's old and new records land in the same bucket; the number of buckets follows
the input size (about 4 MB of input per bucket). Pass 2 loads one bucket at a time, joins old and new by
MaHoSo and applies :mod:`~haicap.conversion.rules`: completeness over the bucket (dropped, duplicated,
invented), every record rule on each pair. Findings stream to ``findings.jsonl``; counts, the reconciliation
tables (old province/district → new province/commune, per status) and the digitisation share are small.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from haicap.contract_registry import default_registry
from haicap.conversion.rules import FINDINGS, Finding, UnitFacts, judge_pair, settled_statuses
from haicap.errors import HaicapError

__all__ = ["ConversionReport", "check_conversion"]

BYTES_PER_BUCKET = 4 * 1024 * 1024
MAX_BUCKETS = 1024
#: findings kept in results.json (all of them are in findings.jsonl)
LISTED = 100_000
_MAHOSO = re.compile(rb'"MaHoSo"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_FIELDS = ("KetQua", "QuyetDinhTach")


@dataclass
class ConversionReport:
    before_records: int = 0
    after_records: int = 0
    outside_province: int = 0
    findings: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    listed: list[dict[str, str]] = field(default_factory=list)
    by_old_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    converted_by_old_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_new_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    status_before: Counter[str] = field(default_factory=Counter)
    status_after: Counter[str] = field(default_factory=Counter)
    digitisation_due: int = 0
    digitised: int = 0
    seconds: float = 0.0

    def add(self, finding: Finding, sink: IO[bytes]) -> None:
        record = finding.as_dict()
        sink.write(orjson.dumps(record) + b"\n")
        self.findings += 1
        self.by_kind[finding.kind] += 1
        if len(self.listed) < LISTED:
            self.listed.append(record)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, one JSON object as bytes) of a JSONL or CSV file (CSV rows become JSON objects)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for number, row in enumerate(csv.DictReader(fh), start=2):
                record: dict[str, Any] = dict(row)
                for key in _JSON_FIELDS:
                    if record.get(key):
                        with contextlib.suppress(ValueError):  # left as text: the schema check names it
                            record[key] = json.loads(record[key])
                    elif key in record:
                        del record[key]
                yield number, orjson.dumps(record)
        return
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as editors write
                line = line[3:]
            if line.strip():
                yield number, line.rstrip(b"\r\n")


def _partition(path: Path, side: str, folder: Path, buckets: int) -> int:
    files = [open(folder / f"{i}.{side}", "ab", buffering=1 << 16) for i in range(buckets)]  # noqa: SIM115
    count = 0
    try:
        for number, line in _lines(path):
            match = _MAHOSO.search(line)
            key = match.group(1) if match else b""
            files[zlib.crc32(key) % buckets].write(b"%d\t%s\n" % (number, line))
            count += 1
    finally:
        for fh in files:
            fh.close()
    return count


def _load(path: Path, file: Path, side: str, report: ConversionReport, sink: IO[bytes],
          validator: Any, invalid: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The valid records of one bucket side; an invalid one is a finding, its MaHoSo added to ``invalid``."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            number_text, _, body = raw.rstrip(b"\n").partition(b"\t")
            where = f"{file.name}:{int(number_text)}"
            try:
                record = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                report.add(Finding(f"({where})", "invalid-record", f"{where}: not a JSON object ({exc})"), sink)
                continue
            if not isinstance(record, dict) or not validator.is_valid(record):
                problems = "; ".join(f"{v.field}: {v.message}" for v in validator.violations(record, limit=3)) \
                    if isinstance(record, dict) else "not an object"
                ma_ho_so = record.get("MaHoSo") if isinstance(record, dict) else None
                report.add(Finding(str(ma_ho_so or f"({where})"), "invalid-record",
                                   f"{where}: {side} record: {problems}"), sink)
                if isinstance(ma_ho_so, str):
                    invalid.add(ma_ho_so)
                continue
            yield int(number_text), record


def _bucket(facts: UnitFacts, folder: Path, index: int, files: tuple[Path, Path], report: ConversionReport,
            sink: IO[bytes], validators: tuple[Any, Any], keep: Callable[[dict[str, Any]], bool]) -> None:
    before: dict[str, dict[str, Any]] = {}
    invalid: set[str] = set()  # MaHoSo of records already reported invalid: not also dropped or invented
    for _, record in _load(folder / f"{index}.before", files[0], "old", report, sink, validators[0], invalid):
        if not keep(record):
            report.outside_province += 1
            continue
        before.setdefault(str(record["MaHoSo"]), record)
        report.by_old_unit[(str(record["MaTinh"]), str(record["MaHuyen"]))] += 1
        report.status_before[str(record["TrangThaiHoSo"])] += 1
    seen: Counter[str] = Counter()
    for _, record in _load(folder / f"{index}.after", files[1], "converted", report, sink, validators[1], invalid):
        m = str(record["MaHoSo"])
        old = before.get(m)
        if old is None and not keep_after(record, keep):
            continue
        seen[m] += 1
        if seen[m] == 2:
            report.add(Finding(m, "duplicated", f"MaHoSo {m} appears more than once after the conversion"), sink)
        if seen[m] > 1:
            continue
        report.by_new_unit[(str(record["MaTinh"]), str(record["MaXa"]))] += 1
        report.status_after[str(record["TrangThaiHoSo"])] += 1
        if old is None:
            if m not in invalid:
                report.add(Finding(m, "invented", f"MaHoSo {m} is not in the old data"), sink)
            continue
        report.converted_by_old_unit[(str(old["MaTinh"]), str(old["MaHuyen"]))] += 1
        if old["CapCoQuan"] == "huyen" and str(old["TrangThaiHoSo"]) in settled_statuses():
            report.digitisation_due += 1
        findings = judge_pair(facts, old, record)
        if old["CapCoQuan"] == "huyen" and str(old["TrangThaiHoSo"]) in settled_statuses() and not any(
                f.kind == "not-digitised" for f in findings):
            report.digitised += 1
        for finding in findings:
            report.add(finding, sink)
    for m in before:
        if m not in seen and m not in invalid:
            report.add(Finding(m, "dropped", f"MaHoSo {m} is in the old data, not after the conversion"), sink)


def keep_after(record: dict[str, Any], keep: Callable[[dict[str, Any]], bool]) -> bool:
    """An unmatched converted record counts (as invented) when it belongs to the province judged."""
    return keep({**record, "_after": True})


def check_conversion(before: Path, after: Path, out: Path, *, province: str | None = None,
                     say: Callable[[str], None] = print) -> ConversionReport:
    """Judge ``after`` as the conversion of ``before``; findings go to ``out/findings.jsonl``."""
    for path, flag in ((before, "--before"), (after, "--after")):
        if not path.is_file():
            raise HaicapError(f"{flag} {path}: no such file")
    t0 = time.monotonic()
    facts = UnitFacts()
    registry = default_registry()
    validators = (registry.validator("conversion.schema.json#/$defs/LegacyRecord"),
                  registry.validator("conversion.schema.json#/$defs/ConvertedRecord"))
    keep = _province_filter(facts, province)
    buckets = max(1, min(MAX_BUCKETS, (before.stat().st_size + after.stat().st_size) // BYTES_PER_BUCKET + 1))
    report = ConversionReport()
    with tempfile.TemporaryDirectory(prefix="haicap-convert-") as tmp:
        folder = Path(tmp)
        report.before_records = _partition(before, "before", folder, buckets)
        report.after_records = _partition(after, "after", folder, buckets)
        say(f"convert check: {report.before_records:,} old and {report.after_records:,} converted records in "
            f"{buckets} bucket(s), {time.monotonic() - t0:.1f} s")
        with (out / "findings.jsonl").open("wb") as sink:
            last = time.monotonic()
            for index in range(buckets):
                _bucket(facts, folder, index, (before, after), report, sink, validators, keep)
                if time.monotonic() - last > 5:
                    last = time.monotonic()
                    say(f"convert check: bucket {index + 1}/{buckets}, {report.findings:,} findings so far")
    report.seconds = time.monotonic() - t0
    return report


def _province_filter(facts: UnitFacts, province: str | None) -> Callable[[dict[str, Any]], bool]:
    if province is None:
        return lambda record: True
    from haicap.data_generators.units import admin_units

    admin_units().province(province)  # one line naming the valid codes

    def keep(record: dict[str, Any]) -> bool:
        if record.get("_after"):
            return str(record.get("MaTinh")) == province
        return facts.new_province.get(str(record.get("MaTinh"))) == province

    return keep


def kinds_table() -> list[dict[str, str]]:
    return [{"kind": k, "family": f, "meaning": m, "rule": r} for k, (f, m, r) in FINDINGS.items()]
