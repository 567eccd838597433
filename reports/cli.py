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
    )
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle.zip of a haicap certify run")
    parser.add_argument("--trust", type=Path, metavar="KEY",
                        help="PEM public key (Ed25519) the bundle must be signed with, e.g. the province's")
    parser.set_defaults(handler=run_verify)


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
