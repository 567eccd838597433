"""``haicap sandbox``: run the national counterpart and the reference province in the foreground.

Prints both URLs, writes the per-run credentials (control, officer and test-client secrets) to a file
readable only by the user instead of printing them, and stops cleanly on Ctrl-C. ``--list-faults`` prints
the named faults; ``--selftest`` drives real traffic through the real flows and prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the embedded sandbox (national counterpart + reference province)",
        description="Run the national counterpart and the reference province on loopback, in the foreground.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--national-port", type=int, default=8710, metavar="N", help="default 8710 (0 = any free)")
    parser.add_argument("--province-port", type=int, default=8720, metavar="M", help="default 8720 (0 = any free)")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="ID", help="switch a named fault on (repeatable)"
    )
    parser.add_argument("--list-faults", action="store_true", help="print the named faults and exit")
    parser.add_argument(
        "--province-workers", type=int, default=1, metavar="N",
        help="serve the reference province with N processes on its one port (default 1)",
    )
    parser.add_argument(
        "--selftest", action="store_true", help="start on free ports, drive the real flows once, print the result"
    )
    parser.add_argument("--state-dir", type=Path, help="keep SQLite stores here (default: a temporary folder)")
    parser.set_defaults(handler=run)


def list_faults() -> str:
    from haicap.sandbox.province.faults import FAULTS

    width = max(len(fault_id) for fault_id in FAULTS)
    lines = [f"{'FAULT'.ljust(width)}  {'BREAKS':<11} WHAT IT DOES"]
    for fault_id, fault in sorted(FAULTS.items()):
        lines.append(f"{fault_id.ljust(width)}  {fault.breaks:<11} {fault.description}")
    return "\n".join(lines)


def _write_credentials(sandbox: Any) -> Path:
    national, province = sandbox.configs.national, sandbox.configs.province
    path = Path(sandbox.state_dir) / "credentials.json"
    data = {
        "national_url": national.public_url,
        "province_url": province.public_url,
        "control_token": national.control_token,
        "officer_token": province.officer_token,
        "oidc_client_id": province.oidc.client_id,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    return path


def run(args: argparse.Namespace) -> int:
    if args.list_faults:
        print(list_faults())
        return 0
    from haicap.sandbox.runner import Sandbox

    if args.selftest:
        from haicap.sandbox.selftest import run_selftest

        with Sandbox.start(host=args.host, faults=args.fault, state_dir=args.state_dir,
                           province_workers=args.province_workers) as sandbox:
            return run_selftest(sandbox, out=sys.stdout)

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Sandbox.start(
            host=args.host,
            national_port=args.national_port,
            province_port=args.province_port,
            faults=args.fault,
            state_dir=args.state_dir,
            province_workers=args.province_workers,
        ) as sandbox:
            credentials = _write_credentials(sandbox)
            print(f"national counterpart  {sandbox.national_url}  (OIDC: {sandbox.national_url}"
                  "/.well-known/openid-configuration)")
            workers = sandbox.configs.province.workers
            several = f"  ({workers} worker processes)" if workers > 1 else ""
            print(f"reference province    {sandbox.province_url}{several}")
            print(f"faults                {', '.join(sorted(sandbox.faults)) or 'none (correct province)'}")
            print(f"credentials           {credentials} (readable by you only)")
            print("Press Ctrl-C to stop.", flush=True)
            try:
                while not stop.wait(0.5):
                    dead = [server.name for server in sandbox.servers if not server.is_alive()]  # type: ignore[union-attr]
                    if dead:
                        print(f"haicap: error: the {', '.join(dead)} server stopped unexpectedly", file=sys.stderr)
                        return 1
            except KeyboardInterrupt:
                pass
            print("stopping…", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
