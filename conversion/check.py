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
import gc
import itertools
import json
import multiprocessing
import operator
import re
import shutil
import tempfile
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from haicap.contract_registry import default_registry
from haicap.conversion.rules import CLEAN, DIGITISED, FINDINGS, Finding, UnitFacts, clean_pair, judge_pair
from haicap.conversion.typed_records import record_types, to_plain
from haicap.errors import HaicapError

__all__ = ["ConversionReport", "check_conversion"]

BYTES_PER_BUCKET = 4 * 1024 * 1024
MAX_BUCKETS = 1024
#: findings kept in results.json (all of them are in findings.jsonl)
LISTED = 100_000
#: bytes of lines read at a time in pass 1 (and the least share of a file per worker, times 16)
BLOCK = 256 * 1024
#: bytes of write buffers of all buckets' files together in pass 1
WRITE_BUFFERS = 4 * 1024 * 1024
#: bytes of a bucket's lines parsed and validated together in pass 2 (one jsonschema-rs call per run)
RUN = 64 * 1024
_MAHOSO = re.compile(rb'"MaHoSo"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_FIELDS = ("KetQua", "QuyetDinhTach")


@dataclass
class ConversionReport:
    before_records: int = 0
    after_records: int = 0
    outside_province: int = 0
    findings: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    #: where every finding is (findings.jsonl); the ones results.json lists are read back from it, not kept in
    #: memory: a few thousand small objects living through the whole check pin the heap pages of every bucket's
    #: records around them, and the peak RSS grew with the input (20 MiB for 5,000 findings)
    findings_path: Path | None = None
    by_old_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    converted_by_old_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_new_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    status_before: Counter[str] = field(default_factory=Counter)
    status_after: Counter[str] = field(default_factory=Counter)
    digitisation_due: int = 0
    digitised: int = 0
    seconds: float = 0.0

    def merge(self, other: ConversionReport) -> None:
        """Add the counts of ``other`` (the next range of buckets) to these."""
        self.outside_province += other.outside_province
        self.findings += other.findings
        self.digitisation_due += other.digitisation_due
        self.digitised += other.digitised
        for mine, theirs in ((self.by_kind, other.by_kind), (self.by_old_unit, other.by_old_unit),
                             (self.converted_by_old_unit, other.converted_by_old_unit),
                             (self.by_new_unit, other.by_new_unit), (self.status_before, other.status_before),
                             (self.status_after, other.status_after)):
            mine.update(theirs)

    def add(self, finding: Finding, sink: IO[bytes]) -> None:
        line = orjson.dumps(finding.as_dict())
        sink.write(line + b"\n")
        self.findings += 1
        self.by_kind[finding.kind] += 1

    @property
    def listed(self) -> list[bytes]:
        """The first LISTED findings, as their findings.jsonl lines."""
        if self.findings_path is None or not self.findings_path.exists():
            return []
        with self.findings_path.open("rb") as fh:
            return [line.rstrip(b"\n") for line in itertools.islice(fh, LISTED)]

    def listed_findings(self) -> list[dict[str, str]]:
        """The findings results.json lists, as objects."""
        return [orjson.loads(line) for line in self.listed]


def _csv_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, the row as a JSON object in bytes) of a CSV file (KetQua, QuyetDinhTach as JSON text), as
    Excel writes it too: a byte order mark, CRLF, ``;`` or a tab as the separator (Excel's list separator in a
    locale with a decimal comma), cells quoted over several lines (the row's number is its first line), empty
    rows (``,,,``) skipped like blank lines. A row with more cells than the header is a string naming that (the
    judge reports it as an invalid record); text that is not UTF-8 or a header without MaHoSo is an error."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            yield from _csv_rows(path, fh)
    except UnicodeDecodeError as exc:
        raise HaicapError(f"{path}: not UTF-8 text ({exc.reason}): save the export as 'CSV UTF-8'") from None


def _csv_rows(path: Path, fh: IO[str]) -> Iterator[tuple[int, bytes]]:
    first = fh.readline()
    delimiter = next((d for d in (",", ";", "\t") if "MaHoSo" in (c.strip().strip('"') for c in first.split(d))), None)
    if delimiter is None:
        raise HaicapError(f"{path}:1: not a CSV header naming the record's columns (no MaHoSo column, "
                          f"contracts/schemas/conversion.schema.json): {first[:120].strip()!r}")
    reader = csv.reader(itertools.chain((first,), fh), delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    end = reader.line_num
    for row in reader:
        number, end = end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            yield number, orjson.dumps(f"CSV row of {len(row)} cells, the header has {len(columns)} (a separator "
                                       "in an unquoted cell?)")
            continue
        record: dict[str, Any] = dict(zip(columns, row, strict=False))  # a short row: its missing fields named
        for key in _JSON_FIELDS:
            if record.get(key):
                with contextlib.suppress(ValueError):  # left as text: the schema check names it
                    record[key] = json.loads(record[key])
            elif key in record:
                del record[key]
        yield number, orjson.dumps(record)


def _jsonl_blocks(path: Path, start: int, end: int) -> Iterator[list[bytes]]:
    """The lines (with their line ends) of bytes ``start:end`` of a JSONL file (``start`` at a line start), a few
    hundred kB at a time: many small objects, never one block of megabytes (freed blocks of varying sizes would
    fragment the heap and let the peak RSS grow with the number of buckets)."""
    with path.open("rb", buffering=1 << 16) as fh:
        fh.seek(start)
        pos = start
        while pos < end:
            lines = fh.readlines(BLOCK)
            if not lines:
                break
            size = sum(map(len, lines))
            if pos + size > end:
                kept: list[bytes] = []
                for line in lines:
                    if pos >= end:
                        break
                    kept.append(line)
                    pos += len(line)
                lines = kept
            else:
                pos += size
            yield lines


def _key(line: bytes) -> bytes:
    """The MaHoSo of a raw JSON line (its bucket key): a plain search first, the pattern for any other spelling;
    a MaHoSo with escapes (``HS\\/01``, ``\\u00d0``) or a line with a second "MaHoSo" (a nested object's) is
    parsed, so the same dossier lands in the same bucket however each side spells it."""
    i = line.find(b'"MaHoSo":"')
    if i >= 0:
        j = line.find(b'"', i + 10)
        key = line[i + 10:j]
    else:
        match = _MAHOSO.search(line)
        if match is None:
            return _parsed_key(line)
        key, j = match.group(1), match.end()
    if b"\\" in key or line.find(b'"MaHoSo"', j) >= 0:
        return _parsed_key(line)
    return key


def _parsed_key(line: bytes) -> bytes:
    """The top-level MaHoSo of a JSON line, decoded (b"" when the line is no object with a MaHoSo string)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return b""
    value = record.get("MaHoSo") if type(record) is dict else None
    return value.encode() if isinstance(value, str) else b""


@dataclass(frozen=True)
class _Part:
    """One share of pass 1: lines ``start:end`` of a file (the whole file for CSV), numbered from ``first_line``."""

    path: Path
    side: str
    start: int
    end: int
    first_line: int
    tag: int


class _Buckets:
    """Pass 1's output for one share: each bucket's raw lines (one JSON value a line, as pass 2 decodes them) and,
    beside them, the line numbers they had in the input (for a bad record's location), flushed as they fill."""

    def __init__(self, folder: Path, part: _Part, buckets: int) -> None:
        buffer = max(4096, min(1 << 16, WRITE_BUFFERS // buckets))  # all buckets' buffers together stay small
        self.lines = [open(folder / f"{i}.{part.side}.{part.tag}", "wb", buffering=buffer)  # noqa: SIM115
                      for i in range(buckets)]
        self.numbers = [array("Q") for _ in range(buckets)]
        self.paths = [folder / f"{i}.{part.side}.{part.tag}.lines" for i in range(buckets)]
        self.pending, self.count, self.buckets = 0, 0, buckets

    def add(self, key: bytes, number: int, line: bytes) -> None:
        """One line (without its line end) of the slow lane."""
        bucket = zlib.crc32(key) % self.buckets
        self.lines[bucket].write(line + b"\n")
        self.numbers[bucket].append(number)
        self._counted(1)

    def add_block(self, keys: list[str], first: int, lines: list[bytes]) -> None:
        """A block of valid lines (each ending in a line end) whose MaHoSo were decoded at once."""
        crc32, n = zlib.crc32, self.buckets
        groups: list[list[int]] = [[] for _ in range(n)]
        for index, key in enumerate(keys):
            groups[crc32(key.encode("utf-8", "surrogatepass")) % n].append(index)
        for bucket, indexes in enumerate(groups):
            if indexes:
                self.lines[bucket].write(b"".join([lines[i] for i in indexes]))
                self.numbers[bucket].extend(map(first.__add__, indexes))
        self._counted(len(keys))

    def _counted(self, added: int) -> None:
        self.count += added
        self.pending += added
        if self.pending >= 1 << 16:  # the line numbers of a share never all sit in memory
            self._flush()

    def _flush(self) -> None:
        for numbers, path in zip(self.numbers, self.paths, strict=True):
            if numbers:
                with path.open("ab") as fh:
                    numbers.tofile(fh)
                del numbers[:]
        self.pending = 0

    def close(self) -> None:
        self._flush()
        for fh in self.lines:
            fh.close()


class _Key(msgspec.Struct, gc=False):
    MaHoSo: str


_KEYS = msgspec.json.Decoder(_Key)


def _fast_block(lines: list[bytes]) -> list[str] | None:
    """The MaHoSo of every line of a block, decoded in one call; None when a line is blank, holds other than one
    JSON object with a string MaHoSo, or the block does not end a line (the slow lane then takes it line by line)."""
    body = b"".join(lines)
    if not body.endswith(b"\n") or not all(map(bytes.strip, lines)):
        return None
    try:
        keys = _KEYS.decode_lines(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return [k.MaHoSo for k in keys] if len(keys) == len(lines) else None


def _partition(part: _Part, folder: Path, buckets: int) -> int:
    out = _Buckets(folder, part, buckets)
    try:
        if part.path.suffix.lower() == ".csv":
            for number, line in _csv_lines(part.path):
                out.add(_key(line), number, line)
            return out.count
        number = part.first_line
        for lines in _jsonl_blocks(part.path, part.start, part.end):
            if number == 1 and lines and lines[0].startswith(b"\xef\xbb\xbf"):  # a byte order mark, as editors write
                lines[0] = lines[0][3:]
            keys = _fast_block(lines)
            if keys is not None:
                out.add_block(keys, number, lines)
            else:
                _slow_block(out, number, lines)
            number += len(lines)
        return out.count
    finally:
        out.close()


def _slow_block(out: _Buckets, first: int, lines: list[bytes]) -> None:
    """A block the fast lane refused, line by line: blank lines skipped, any other line to its MaHoSo's bucket."""
    for number, raw in enumerate(lines, start=first):
        line = raw.rstrip(b"\r\n")
        if line and not line.isspace():
            out.add(_key(line), number, line)


def _shares(path: Path, side: str, workers: int) -> list[_Part]:
    """Split a JSONL file at line starts into ``workers`` shares, each with the number of its first line."""
    size = path.stat().st_size
    if workers <= 1 or path.suffix.lower() == ".csv" or size < workers * 16 * BLOCK:
        return [_Part(path, side, 0, size, 1, 0)]
    cuts = [0]
    with path.open("rb") as fh:
        for k in range(1, workers):
            fh.seek(max(cuts[-1], size * k // workers))
            fh.readline()
            cuts.append(min(fh.tell(), size))
        cuts.append(size)
        firsts, line = [1], 1
        for a, b in itertools.pairwise(cuts[:-1]):
            fh.seek(a)
            left = b - a
            while left > 0:
                chunk = fh.read(min(BLOCK, left))
                line += chunk.count(b"\n")
                left -= len(chunk)
            firsts.append(line)
    return [_Part(path, side, a, b, first, tag)
            for tag, ((a, b), first) in enumerate(zip(itertools.pairwise(cuts), firsts, strict=True))]


class _Judge:
    """Pass 2 over a range of buckets: join old and new by MaHoSo, every rule on every pair, findings to a sink."""

    def __init__(self, facts: UnitFacts, files: tuple[Path, Path], keep: _ProvinceFilter | None,
                 sink: IO[bytes]) -> None:
        registry = default_registry()
        self.validators = (registry.validator("conversion.schema.json#/$defs/LegacyRecord"),
                           registry.validator("conversion.schema.json#/$defs/ConvertedRecord"))
        self.batches = _batch_validators()
        self.types = (record_types("LegacyRecord"), record_types("ConvertedRecord"))
        self.facts, self.files, self.keep, self.sink = facts, files, keep, sink
        self.report = ConversionReport()

    def add(self, finding: Finding) -> None:
        self.report.add(finding, self.sink)

    def records(self, paths: list[Path], which: int, invalid: set[str]) -> list[Any]:
        """The valid records of one bucket side, typed, in file order. The fast lane decodes the side at once; a
        side it refuses takes the exact lane (:meth:`_load`), where an invalid record is a finding."""
        data = b"".join(path.read_bytes() for path in paths)
        typed = self.types[which]
        records = typed.decode(data, data.count(b"\n")) if data else []
        if records is not None:
            return records
        del data
        return [typed.convert(record) for run in self._load(paths, which, invalid) for record in run]

    def _load(self, paths: list[Path], which: int, invalid: set[str]) -> Iterator[list[dict[str, Any]]]:
        """The exact lane: the valid records of one bucket side, in runs in file order; an invalid one is a finding
        (at its place between the runs), its MaHoSo added to ``invalid``.

        A few hundred lines are parsed and validated at a time, the run in one jsonschema-rs call (an array of
        the records: one crossing into Rust, not one per record); only a run that fails is validated again
        record by record, to find and report the invalid ones exactly.
        """
        loads, many = orjson.loads, self.batches[which].is_valid
        for path in paths:
            numbers = array("Q")
            with contextlib.suppress(FileNotFoundError), path.with_name(path.name + ".lines").open("rb") as fh:
                numbers.frombytes(fh.read())
            with path.open("rb", buffering=1 << 16) as fh:
                at = 0
                while raws := fh.readlines(RUN):  # a run at a time: no bucket-sized allocation
                    run_numbers = numbers[at:at + len(raws)]
                    at += len(raws)
                    records: list[Any] = []
                    try:
                        records = [loads(raw) for raw in raws]
                    except orjson.JSONDecodeError:
                        records = []
                    if len(records) == len(raws) and many(records):
                        yield records
                    else:
                        yield from self._run(raws, run_numbers, which, invalid)

    def _run(self, raws: list[bytes], numbers: Sequence[int], which: int,
             invalid: set[str]) -> Iterator[list[dict[str, Any]]]:
        """A run with an invalid record in it, record by record: the valid ones between the findings."""
        loads, one = orjson.loads, self.validators[which].compiled.is_valid
        valid: list[dict[str, Any]] = []
        for raw, number in zip(raws, numbers, strict=True):
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                if valid:
                    yield valid
                    valid = []
                where = f"{self.files[which].name}:{number}"
                self.add(Finding(f"({where})", "invalid-record", f"{where}: not a JSON object ({exc})"))
                continue
            if type(record) is dict and one(record):
                valid.append(record)
            else:
                if valid:
                    yield valid
                    valid = []
                self._invalid(record, number, which, invalid)
        if valid:
            yield valid

    def _invalid(self, record: Any, number: int, which: int, invalid: set[str]) -> None:
        where = f"{self.files[which].name}:{number}"
        side = ("old", "converted")[which]
        if isinstance(record, dict):
            problems = "; ".join(f"{v.field}: {v.message}" for v in self.validators[which].violations(record, limit=3))
            ma_ho_so = record.get("MaHoSo")
        elif isinstance(record, str) and self.files[which].suffix.lower() == ".csv":
            problems, ma_ho_so = record, None  # what _csv_lines found wrong with the row
        else:
            problems, ma_ho_so = "not an object", None
        self.add(Finding(str(ma_ho_so or f"({where})"), "invalid-record", f"{where}: {side} record: {problems}"))
        if isinstance(ma_ho_so, str):
            invalid.add(ma_ho_so)

    def bucket(self, parts: tuple[list[Path], list[Path]]) -> None:
        invalid: set[str] = set()  # MaHoSo of records already reported invalid: not also dropped or invented
        before = self._before(self.records(parts[0], 0, invalid))
        seen = self._after(self.records(parts[1], 1, invalid), before, invalid)
        for m in before:
            if m not in seen and m not in invalid:
                self.add(Finding(m, "dropped", f"MaHoSo {m} is in the old data, not after the conversion"))

    def _before(self, records: list[Any]) -> dict[str, Any]:
        """The old records of a bucket by MaHoSo (the first of each), counted per old unit and status (the
        counts over the whole bucket at once, in C: ``Counter.update`` of the fields)."""
        report, keep = self.report, self.keep
        if keep is not None:
            kept = [record for record in records if keep.old(record)]
            report.outside_province += len(records) - len(kept)
            records = kept
        _count(report.by_old_unit, records, "MaTinh", "MaHuyen")
        report.status_before.update(map(_STATUS, records))
        before = dict(zip(map(_MA_HO_SO, records), records, strict=True))
        if len(before) < len(records):  # a MaHoSo twice in the old data: no one record to convert it from
            before = {}
            for record in records:
                before.setdefault(record.MaHoSo, record)
            self._duplicated_before(records)
        return before

    def _duplicated_before(self, records: list[Any]) -> None:
        counts = Counter(map(_MA_HO_SO, records))
        for m, n in counts.items():
            if n > 1:
                self.add(Finding(m, "duplicated-before", f"MaHoSo {m} appears {n} times in the old data"))

    def _after(self, records: list[Any], before: dict[str, Any], invalid: set[str]) -> set[str]:
        """Join the converted records of a bucket to ``before``: duplicated, invented, every record rule on a
        pair; the MaHoSo seen after the conversion. A clean pair costs :func:`clean_pair` alone."""
        report, keep, facts, add = self.report, self.keep, self.facts, self.add
        seen: set[str] = set()
        duplicated: set[str] = set()
        by_new_unit, status_after, converted = report.by_new_unit, report.status_after, report.converted_by_old_unit
        for record, old in zip(records, map(before.get, map(_MA_HO_SO, records)), strict=True):
            m = record.MaHoSo
            if old is None and keep is not None and not keep.new(record):
                continue
            if m in seen:
                if m not in duplicated:
                    duplicated.add(m)
                    add(Finding(m, "duplicated", f"MaHoSo {m} appears more than once after the conversion"))
                continue
            seen.add(m)
            by_new_unit[(record.MaTinh, record.MaXa)] += 1
            status_after[record.TrangThaiHoSo] += 1
            if old is None:
                if m not in invalid:
                    add(Finding(m, "invented", f"MaHoSo {m} is not in the old data"))
                continue
            converted[(old.MaTinh, old.MaHuyen)] += 1
            clean = clean_pair(facts, old, record)
            if clean == DIGITISED:
                report.digitisation_due += 1
                report.digitised += 1
            elif clean != CLEAN:
                self._judged(to_plain(old), to_plain(record))
        return seen

    def _judged(self, old: dict[str, Any], record: dict[str, Any]) -> None:
        """A pair :func:`clean_pair` could not clear: every finding of :func:`judge_pair`, the digitisation share."""
        report = self.report
        findings = judge_pair(self.facts, old, record)
        if old["CapCoQuan"] == "huyen" and old["TrangThaiHoSo"] in self.facts.settled:
            report.digitisation_due += 1
            if not any(f.kind == "not-digitised" for f in findings):
                report.digitised += 1
        for finding in findings:
            self.add(finding)


_STATUS, _MA_HO_SO = operator.attrgetter("TrangThaiHoSo"), operator.attrgetter("MaHoSo")


def _count(counter: Counter[tuple[str, str]], records: list[Any], first: str, second: str) -> None:
    """Count ``records`` by the pair of two fields (in C: no Python code per record)."""
    counter.update(zip(map(operator.attrgetter(first), records), map(operator.attrgetter(second), records),
                       strict=True))


@dataclass(frozen=True)
class _ProvinceFilter:
    """The records of one province: an old record by the province its old one merged into, a converted one by its
    own MaTinh (an unmatched converted record counts, as invented, only when it belongs to the province)."""

    facts: UnitFacts
    province: str

    def old(self, record: Any) -> bool:
        return self.facts.new_province.get(str(record.MaTinh)) == self.province

    def new(self, record: Any) -> bool:
        return str(record.MaTinh) == self.province


def check_conversion(before: Path, after: Path, out: Path, *, province: str | None = None,
                     say: Callable[[str], None] = print, workers: int = 1,
                     agency: str | None = None) -> ConversionReport:
    """Judge ``after`` as the conversion of ``before``; findings go to ``out/findings.jsonl``.

    ``workers`` > 1 splits both passes over that many processes (each file at line starts for pass 1, the
    buckets in contiguous ranges for pass 2): the same findings in the same order, memory per process bounded
    by one bucket as before. ``agency`` is the province's own agency code (the profile's ``agency_code``):
    it and its communes' codes under it are current agencies too (with ``province`` only).
    """
    for path, flag in ((before, "--before"), (after, "--after")):
        _require_file(path, flag)
    if workers < 1:
        raise HaicapError(f"--workers {workers}: must be at least 1")
    t0 = time.monotonic()
    if agency is not None and province is None:
        raise HaicapError("--agency-code needs --province (the province whose agency code it is)")
    facts = shared_facts(province if agency else None, agency)
    if province is not None:
        _province_filter(facts, province)  # an unknown code fails here, before any work
    buckets = max(workers, min(MAX_BUCKETS, (before.stat().st_size + after.stat().st_size) // BYTES_PER_BUCKET + 1))
    with tempfile.TemporaryDirectory(prefix="haicap-convert-") as tmp, _pool(workers) as pool:
        folder = Path(tmp)
        parts = [*_shares(before, "before", workers), *_shares(after, "after", workers)]
        counts = list(pool(_partition_job, [(part, folder, buckets) for part in parts]))
        report = ConversionReport()
        say(f"convert check: {sum(counts):,} records in {buckets} bucket(s), {time.monotonic() - t0:.1f} s")
        tags = (tuple(p.tag for p in parts if p.side == "before"), tuple(p.tag for p in parts if p.side == "after"))
        ranges = [r for r in (range(buckets * w // workers, buckets * (w + 1) // workers) for w in range(workers)) if r]
        sinks = [out / "findings.jsonl"] if workers == 1 else [folder / f"findings.{w}" for w in range(len(ranges))]
        jobs = [(folder, r, tags, (before, after), province, agency, sink)
                for r, sink in zip(ranges, sinks, strict=True)]
        last = time.monotonic()
        for done, part_report in enumerate(pool(_judge_job, jobs), start=1):
            report.merge(part_report)
            if time.monotonic() - last > 5:
                last = time.monotonic()
                say(f"convert check: {done}/{len(jobs)} bucket range(s), {report.findings:,} findings so far")
        if workers > 1:
            with (out / "findings.jsonl").open("wb") as sink:
                for path in sinks:
                    with path.open("rb") as fh:
                        shutil.copyfileobj(fh, sink, 1 << 20)
    report.before_records = sum(n for p, n in zip(parts, counts, strict=True) if p.side == "before")
    report.after_records = sum(n for p, n in zip(parts, counts, strict=True) if p.side == "after")
    report.findings_path = out / "findings.jsonl"
    report.seconds = time.monotonic() - t0
    return report


def _require_file(path: Path, flag: str) -> None:
    """A clear error for an input that is not a readable file."""
    if path.is_dir():
        raise HaicapError(f"{flag} {path}: is a directory (name the export file)")
    if not path.is_file():
        raise HaicapError(f"{flag} {path}: no such file")


@cache
def _batch_validators() -> tuple[Any, Any]:
    """jsonschema-rs validators of an array of old / converted records, built from the same definitions of
    ``contracts/schemas/conversion.schema.json`` (a run of records is valid when each record is)."""
    import jsonschema_rs

    document = default_registry().schema_file("conversion.schema.json")
    return tuple(jsonschema_rs.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                              "$defs": document["$defs"], "type": "array",
                                              "items": {"$ref": f"#/$defs/{name}"}}, validate_formats=False)
                 for name in ("LegacyRecord", "ConvertedRecord"))  # type: ignore[return-value]


@cache
def shared_facts(province: str | None = None, agency: str | None = None) -> UnitFacts:
    """The unit tables, built once per process (and inherited by forked workers); with the province's own agency
    code among the current agencies when one is given."""
    facts = UnitFacts()
    if province is not None and agency is not None:
        facts.add_province_agency(province, agency)
    return facts


@contextlib.contextmanager
def _pool(workers: int) -> Iterator[Callable[[Callable[..., Any], list[tuple[Any, ...]]], Iterator[Any]]]:
    """``map(function, argument tuples)`` in this process, or over ``workers`` forked processes (in order)."""
    if workers == 1:
        yield lambda fn, jobs: (fn(*job) for job in jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        yield lambda fn, jobs: executor.map(fn, *zip(*jobs, strict=True))


def _partition_job(part: _Part, folder: Path, buckets: int) -> int:
    return _partition(part, folder, buckets)


def _judge_job(folder: Path, indexes: range, tags: tuple[tuple[int, ...], tuple[int, ...]], files: tuple[Path, Path],
               province: str | None, agency: str | None, sink_path: Path) -> ConversionReport:
    facts = shared_facts(province if agency else None, agency)
    keep = _province_filter(facts, province)
    with sink_path.open("wb") as sink, _collect_per_bucket() as collect:
        judge = _Judge(facts, files, keep, sink)
        for index in indexes:
            judge.bucket(([folder / f"{index}.before.{t}" for t in tags[0]],
                          [folder / f"{index}.after.{t}" for t in tags[1]]))
            collect()
    return judge.report


@contextlib.contextmanager
def _collect_per_bucket() -> Iterator[Callable[[], object]]:
    """The cyclic garbage collector off while buckets are judged, one young-generation collection after each.

    A bucket's tens of thousands of record dicts (acyclic: reference counting frees them) set off a collection
    every 700 allocations, and each one walks the bucket's records held so far: about a fifth of pass 2's CPU.
    Collecting once per bucket, when its records are gone, keeps any cycle from living longer than a bucket.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield lambda: gc.collect(0)
    finally:
        if was:
            gc.enable()


def _province_filter(facts: UnitFacts, province: str | None) -> _ProvinceFilter | None:
    if province is None:
        return None
    from haicap.data_generators.units import admin_units

    admin_units().province(province)  # one line naming the valid codes
    return _ProvinceFilter(facts, province)


def kinds_table() -> list[dict[str, str]]:
    return [{"kind": k, "family": f, "meaning": m, "rule": r} for k, (f, m, r) in FINDINGS.items()]
