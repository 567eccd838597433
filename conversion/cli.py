"""``haicap convert check --before OLD --after NEW [--province CODE] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["register"]

OUTPUTS = ("results.json", "report.html", "junit.xml", "findings.jsonl")


def register(subparsers: Any) -> None:
    convert = subparsers.add_parser("convert", help="verify a legacy-data conversion (completeness, accuracy, "
                                    "continuity, consistency, digitisation)")
    sub = convert.add_subparsers(dest="convert_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="judge NEW as the conversion of OLD (JSONL or CSV, "
                           "contracts/schemas/conversion.schema.json)",
                           description="Exit 0 ready, 1 a rule broken, 2 could not run.")
    check.add_argument("--before", required=True, type=Path, metavar="OLD", help="the old records (JSONL or CSV)")
    check.add_argument("--after", required=True, type=Path, metavar="NEW", help="the converted records")
    check.add_argument("--province", metavar="CODE", help="judge only the dossiers of this current province")
    check.add_argument("--agency-code", metavar="CODE", help="the province's own agency code (Decision "
                       "20/2020/QĐ-TTg), a current agency with its communes' codes under it (with --province)")
    check.add_argument("--out", type=Path, default=Path("haicap-convert"), help="output folder "
                       "(default ./haicap-convert)")
    check.add_argument("--workers", type=int, default=1, metavar="N", help="split the check over N processes "
                       "(same findings; memory per process still bounded; default 1)")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from haicap.conversion.check import _require_file, check_conversion
    from haicap.conversion.outputs import build_results, write_outputs

    for path, flag in ((args.before, "--before"), (args.after, "--after")):
        _require_file(path, flag)
        if path.suffix.lower() not in {".jsonl", ".csv", ".json"}:
            raise HaicapError(f"{flag} {path}: expected a .jsonl or .csv file")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            (args.out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise HaicapError(f"--out {args.out}: {exc.strerror or exc}") from None
    report = check_conversion(args.before, args.after, args.out, province=args.province, workers=args.workers,
                              agency=args.agency_code)
    judged = report.before_records - report.outside_province
    if judged <= 0:  # no vacuous "ready": a wrong --province or an empty export judged nothing
        where = f" of province {args.province}" if args.province else ""
        raise HaicapError(f"observed 0 of {report.before_records:,} old records{where}: nothing to judge "
                          f"({report.outside_province:,} belong to other provinces; check --province and the files)")
    results = build_results(report, before=args.before, after=args.after, province=args.province)
    write_outputs(results, args.out)
    counts = ", ".join(f"{k} {n:,}" for k, n in results["finding_counts"].items()) or "none"
    share = results["digitisation"]["share"]
    rate = (report.before_records + report.after_records) / max(report.seconds, 1e-9)
    print(f"convert check: {results['verdict']} — findings: {counts}; digitisation "
          f"{'not judged' if share is None else f'{share:.2%}'}; {rate:,.0f} records/s")
    print(f"report: {args.out / 'report.html'}  results: {args.out / 'results.json'}")
    return 0 if results["verdict"] == "ready" else 1
