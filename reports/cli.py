"""``haicap verify BUNDLE [--trust KEY]``: check a certification bundle offline.

Exit 0 when the bundle is intact and, with ``--trust``, signed by that key; 1 naming each member that does not
match (changed, missing, extra) or a wrong key; 2 when the file is not a bundle at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify", help="verify a signed certification bundle (bundle.zip) offline",
        description="Check a haicap certification bundle: its signature, the signer against a trusted key, and "
        "every member against the signed manifest.",
        epilog="exit: 0 verified; 1 not verified (each problem is listed); 2 the bundle or key cannot be read",
    )
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle.zip of a haicap certify run")
    parser.add_argument("--trust", type=Path, metavar="KEY",
                        help="PEM public key (Ed25519) the bundle must be signed with, e.g. the province's "
                        "(without it: intact, but anyone could have signed it)")
    parser.set_defaults(handler=run_verify)
    board = subparsers.add_parser(
        "scoreboard", help="verify every province's bundle in a folder and write the 34-province scoreboard",
        description="One row per province (its newest verified bundle), one column per national criterion, and "
        "a totals row 'x / 34' like the 28-June checklist; board.html, board.json and board.csv.",
    )
    board.add_argument("folder", type=Path, metavar="DIR", nargs="?",
                       help="folder of bundle zips (one or more per province); not with --demo")
    board.add_argument("--out", type=Path, default=Path("board"), help="output folder (default ./board)")
    board.add_argument("--keys", type=Path, metavar="KEYDIR",
                       help="folder of trusted public keys named <province>.pub (default: bundles are checked "
                       "intact, signers not checked)")
    board.add_argument("--max-age", type=float, default=30.0, metavar="DAYS",
                       help="a bundle older than this is stale (default 30)")
    board.add_argument("--include-sandbox", action="store_true",
                       help="show bundles of embedded-sandbox runs too (marked; refused by default: they certify "
                       "haicap's reference province, not a province's system)")
    board.add_argument("--demo", action="store_true",
                       help="certify the 34 provinces as sandbox provinces with the faults that reproduce the "
                       "28-June checklist counts (haicap/checklist.py) and render their board (every check: about "
                       "34 x 50 s of CPU; see --quick)")
    board.add_argument("--quick", action="store_true",
                       help="with --demo: certify per column only the checks that claim its fault (a few seconds "
                       "per province); the board's title and cells say 'quick set'")
    board.add_argument("--workers", type=int, default=0, metavar="N",
                       help="with --demo: parallel certifications (default: one per core)")
    board.set_defaults(handler=run_scoreboard)


def run_verify(args: argparse.Namespace) -> int:
    from haicap.errors import HaicapError
    from haicap.reports.bundle import load_public_key, verify_bundle

    trusted = load_public_key(args.trust) if args.trust else None
    problems, info = verify_bundle(args.bundle, trusted)
    if info is None:
        raise HaicapError(f"{args.bundle}: {problems[0]}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    what = (f"{args.bundle}: province {info.province}, readiness {info.readiness}, created {info.created}, "
            f"{info.files} files, signed by key {info.key_id}")
    if problems:
        print(f"NOT VERIFIED — {what}: {len(problems)} problem(s)")
        return 1
    print(f"verified — {what}" + (" (the trusted key)" if trusted is not None else
                                    " (no --trust given: intact, but the signer is not checked)"))
    return 0


def run_scoreboard(args: argparse.Namespace) -> int:
    import math

    from haicap.errors import HaicapError
    from haicap.reports.scoreboard import write_board

    if args.demo:
        if args.folder is not None:
            raise HaicapError("--demo certifies its own 34 sandbox provinces: give no DIR")
        if args.workers < 0:
            raise HaicapError("--workers must be 0 (one per core) or more")
        from haicap.reports.scoreboard_demo import run_demo

        return run_demo(args.out, quick=args.quick, workers=args.workers)
    if args.folder is None:
        raise HaicapError("scoreboard: give the folder of bundles (DIR), or --demo")
    if args.quick:
        raise HaicapError("--quick applies to --demo only")
    if not (math.isfinite(args.max_age) and args.max_age > 0):
        raise HaicapError(f"--max-age must be a positive number of days, got {args.max_age:g}")
    if args.keys is None:
        print("scoreboard: note: no --keys: each bundle is checked intact, but not who signed it")
    doc = write_board(args.folder, args.out, keys=args.keys, max_age_days=args.max_age,
                      include_sandbox=args.include_sandbox)
    totals = ", ".join(f"{c} {n}/34" for c, n in doc["totals"].items())
    print(f"scoreboard: {len(doc['rows'])} province(s), {len(doc['rejected'])} bundle(s) rejected — {totals}")
    for rejected in doc["rejected"]:
        print(f"REJECTED {rejected['bundle']}: {'; '.join(rejected['problems'])}")
    print(f"board: {args.out / 'board.html'}")
    return 1 if doc["rejected"] else 0
