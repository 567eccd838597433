"""``haicap data``: generate synthetic data files and export the official administrative units.

    haicap data generate --kind dossiers --count 1000000 --seed 7 --out dossiers.jsonl [--province 01]
    haicap data generate --kind citizens --count 100 --out - | head      # "-" is standard output
    haicap data generate --kind edxml --count 100000 --out packages.jsonl   # valid edXML packages, one a line
    haicap data units --province 01 --format csv [--legacy] [--out units.csv]

Importing this module is cheap: Faker, the unit tables and the contracts are loaded inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["KINDS", "register"]

KINDS = ("citizens", "enterprises", "dossiers", "legacy-dossiers", "conversion", "edxml")
SHAPES = ("submission", "forwarded", "sync")
UNIT_FORMATS = ("csv", "json")


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="deterministic synthetic data and the official administrative units")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    gen = sub.add_parser("generate", help="write citizens, enterprises or dossiers to a file (JSONL or CSV)")
    gen.add_argument("--kind", required=True, metavar="|".join(KINDS), help="what to generate")
    gen.add_argument("--count", required=True, type=int, help="number of records")
    gen.add_argument("--seed", type=int, default=0, help="the same seed gives a byte-identical file (default 0)")
    gen.add_argument(
        "--out", required=True,
        help="output file (written atomically; a device or FIFO is written directly; '-' is standard output)",
    )  # fmt: skip
    gen.add_argument(
        "--manifest", help="legacy-dossiers: where to write the planted-defect manifest "
        "(default <out>.manifest.json; none when --out is standard output or a device unless given)",
    )  # fmt: skip
    gen.add_argument("--province", help="current province code (34-province list); default: all provinces")
    gen.add_argument("--format", default="jsonl", metavar="jsonl|csv", help="file format (default jsonl)")
    gen.add_argument(
        "--shape", metavar="|".join(SHAPES),
        help="dossiers: citizen submission, national forward or national sync item (default submission)",
    )  # fmt: skip
    gen.add_argument("--defect-rate", type=float,
                     help="legacy-dossiers: share of records with a planted defect, 0..1 (default 0)")
    gen.add_argument("--quiet", action="store_true", help="no progress line")
    gen.set_defaults(handler=_generate)

    units = sub.add_parser("units", help="export the official units (Decision 19/2025/QĐ-TTg) or the legacy list")
    units.add_argument("--province", help="only this province (current code; with --legacy an old code)")
    units.add_argument("--legacy", action="store_true", help="the 63-province list with each ward's new commune(s)")
    units.add_argument("--format", default="csv", metavar="csv|json", help="output format (default csv)")
    units.add_argument("--out", help="output file (default or '-': standard output)")
    units.set_defaults(handler=_units)


def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise HaicapError(f"unknown {name} {value!r}; valid {name}s: {', '.join(valid)}")
    return value


def _generate(args: argparse.Namespace) -> int:
    from haicap.data_generators.output import FORMATS, STDOUT, Progress, write_jsonl_batches, write_records

    kind = _choice("kind", args.kind, KINDS)
    fmt = _choice("format", args.format, FORMATS)
    if args.count <= 0:
        raise HaicapError(f"--count must be a positive number of records, got {args.count}")
    for flag, value, applies_to in (("--shape", args.shape, ("dossiers",)),
                                    ("--defect-rate", args.defect_rate, ("legacy-dossiers", "conversion")),
                                    ("--manifest", args.manifest, ("legacy-dossiers",))):
        if value is not None and kind not in applies_to:
            raise HaicapError(f"{flag} applies to --kind {' or '.join(applies_to)} only, not to {kind}")
    if args.province is not None:
        from haicap.data_generators.units import admin_units

        admin_units().province(args.province)
    if kind == "conversion":
        return _conversion_pairs(args)
    records, columns, after, batches = _source(kind, args)
    where = "standard output" if args.out == STDOUT else args.out
    progress = Progress(args.count, f"{kind} -> {where}", enabled=not args.quiet)  # on stderr, never in the data
    if fmt == "jsonl" and batches is not None:  # the source renders its own JSON lines (fast path)
        written = write_jsonl_batches(args.out, batches, progress)
    else:
        written = write_records(args.out, records, args.count, fmt, columns=columns, progress=progress)
    if after is not None:
        after()
    if args.quiet:
        return 0
    print(f"wrote {written:,} {kind} to {where}", file=sys.stderr)
    return 0


def _conversion_pairs(args: argparse.Namespace) -> int:
    """--kind conversion: OUT is a folder for before.jsonl, after.jsonl and manifest.json."""
    from haicap.data_generators.conversion import ConversionPairs

    if args.format != "jsonl":
        raise HaicapError("--kind conversion writes JSONL (before.jsonl, after.jsonl); --format csv is not offered")
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise HaicapError(f"--out {folder}: --kind conversion writes a folder (before.jsonl, after.jsonl, "
                          "manifest.json), and this is a file")
    pairs = ConversionPairs(args.seed, args.province, args.defect_rate or 0.0)
    try:
        manifest = pairs.write(args.count, folder)
    except OSError as exc:
        raise HaicapError(f"--out {folder}: {exc.strerror or exc}") from None
    if not args.quiet:
        planted = sum(len(v) for v in manifest.defects.values())
        print(f"wrote {manifest.before:,} old and {manifest.after:,} converted records to {folder} "
              f"({planted:,} planted defects in manifest.json)", file=sys.stderr)
    return 0


def _source(kind: str, args: argparse.Namespace) -> tuple[Any, list[str], Any, Any]:
    """(record iterator, CSV columns in contract order, callable to run after a successful write,
    iterator of ready JSONL batches or None). The iterators are lazy: only the one used runs."""
    import random

    if kind in ("citizens", "enterprises"):
        from haicap.data_generators.people import PersonFactory

        people = PersonFactory(args.seed, args.province)
        make = people.citizen if kind == "citizens" else people.enterprise
        rng = random.Random(args.seed)
        return (make(rng) for _ in range(args.count)), list(people.userinfo_fields), None, None
    if kind == "edxml":
        from haicap.data_generators.edxml_packages import EdxmlGenerator

        if args.format != "jsonl":
            raise HaicapError("--kind edxml writes JSONL (one package a line); --format csv is not offered")
        edxml = EdxmlGenerator(args.seed, args.province)
        return edxml.records(args.count), ["DocumentId", "From", "To", "edxml"], None, edxml.jsonl_batches(args.count)
    if kind == "dossiers":
        from haicap.data_generators.dossiers import DossierGenerator

        shape = _choice("shape", args.shape or "submission", SHAPES)
        gen = DossierGenerator(args.seed, args.province, shape)
        return gen.records(args.count), list(gen.fields), None, gen.jsonl_batches(args.count)
    from haicap.data_generators.legacy import LegacyDossierGenerator
    from haicap.data_generators.output import is_special_target, write_records

    legacy = LegacyDossierGenerator(args.seed, args.province, args.defect_rate or 0.0)
    # "-.manifest.json" or "/dev/null.manifest.json" is nobody's intention
    skip = args.manifest is None and is_special_target(args.out)
    manifest_path = args.manifest if args.manifest is not None else f"{args.out}.manifest.json"
    if not skip:
        _check_manifest_path(manifest_path, args.out)

    def write_manifest() -> None:
        if skip:
            if not args.quiet:
                print("no manifest of planted defects written (give --manifest PATH to keep it)", file=sys.stderr)
            return
        try:
            write_records(manifest_path, [legacy.manifest.as_dict()], 1, "jsonl")
        except HaicapError:  # data without its manifest cannot be checked: leave neither
            if not is_special_target(args.out):
                Path(args.out).unlink(missing_ok=True)
            raise
        if not args.quiet:
            print(f"manifest of planted defects: {manifest_path}", file=sys.stderr)

    columns = [*legacy.dossiers.fields, "HoSoCu", "KyVong"]
    return legacy.records(args.count), columns, write_manifest, None


def _check_manifest_path(manifest: str, out: str) -> None:
    """Before any record is generated: the manifest can be written and does not overwrite the data."""
    path, data = Path(manifest), Path(out)
    if out != "-" and path.resolve() == data.resolve():
        raise HaicapError(f"--manifest {manifest} is the --out file: the manifest would replace the data")
    folder = path.parent
    if not folder.is_dir():
        raise HaicapError(f"cannot write the manifest {manifest}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise HaicapError(f"cannot write the manifest {manifest}: folder {folder} is not writable")
    if path.is_dir():
        raise HaicapError(f"cannot write the manifest {manifest}: it is a folder")


def _units(args: argparse.Namespace) -> int:
    import orjson

    from haicap.data_generators.output import STDOUT, write_records
    from haicap.data_generators.units import admin_units

    fmt = _choice("format", args.format, UNIT_FORMATS)
    units = admin_units()
    rows: list[dict[str, Any]]
    if args.legacy:
        if args.province is not None and args.province not in {p.code for p in units.legacy_provinces()}:
            valid = ", ".join(p.code for p in units.legacy_provinces())
            raise HaicapError(f"unknown old province code {args.province!r}; valid codes: {valid}")
        rows = [
            {
                "MaXaCu": w.code, "TenXaCu": w.name, "MaHuyenCu": w.district_code, "TenHuyenCu": w.district_name,
                "MaTinhCu": w.province_code, "TenTinhCu": w.province_name,
                "MaXaMoi": [c.code for c in units.new_communes_for_legacy(w.code)],
                "MaTinhMoi": units.new_province_for_legacy(w.province_code).code,
            }
            for w in units.legacy_wards(args.province)
        ]  # fmt: skip
    else:
        from haicap.data_generators.agencies import commune_agency_code

        names = {p.code: p.name for p in units.provinces()}
        rows = [
            {"MaXa": c.code, "TenXa": c.name, "LoaiDonVi": c.kind, "MaTinh": c.province_code,
             "TenTinh": names[c.province_code], "MaCoQuan": commune_agency_code(c.code)}
            for c in units.communes(args.province)
        ]  # fmt: skip
    columns = list(rows[0]) if rows else []
    if args.out is None or args.out == STDOUT:
        if fmt == "json":
            sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            import csv

            from haicap.data_generators.output import _cell

            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([_cell(row[c]) for c in columns] for row in rows)
        return 0
    if fmt == "json":
        write_records(args.out, [rows], 1, "jsonl")  # one JSON document
    else:
        write_records(args.out, rows, len(rows), "csv", columns=columns)
    return 0
