"""``haicap sandbox``: run the national counterpart and the reference province in the foreground.

Prints both URLs, writes the per-run credentials (control, officer and test-client secrets) to a file
readable only by the user instead of printing them, and stops cleanly on Ctrl-C. ``--list-faults`` prints
the named faults; ``--selftest`` drives real traffic through the real flows and prints the result.

``--national-url URL`` is the rehearsal of a real province: the reference province alone, wired to an external
national counterpart at URL (the one ``haicap certify --profile`` starts), with a ready profile
(``rehearsal.yaml``) and its secrets (``rehearsal.env``, mode 0600) written to the state folder.
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
    parser.add_argument("--province-port", type=int, metavar="M",
                        help="default 8720; with --national-url any free port (0 = any free)")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="ID", help="switch a named fault on (repeatable)"
    )
    parser.add_argument("--list-faults", action="store_true", help="print the named faults and exit")
    parser.add_argument(
        "--province-workers", type=int, default=1, metavar="N",
        help="serve the reference province with N processes on its one port (default 1)",
    )
    parser.add_argument(
        "--national-workers", type=int, default=1, metavar="N",
        help="serve the national counterpart with N processes on its one port, sharing its state (default 1; at "
             "most this machine's cores unless --oversubscribe)",
    )
    parser.add_argument("--oversubscribe", action="store_true",
                        help="allow --national-workers above this machine's usable CPU cores (refused by default)")
    parser.add_argument(
        "--selftest", action="store_true", help="start on free ports, drive the real flows once, print the result"
    )
    parser.add_argument("--state-dir", type=Path, help="keep SQLite stores here (default: a temporary folder)")
    parser.add_argument("--national-url", metavar="URL",
                        help="rehearsal: run the reference province alone, wired to the counterpart haicap certify "
                             "runs at URL (http://127.0.0.1:PORT), and write a ready profile and .env to the state "
                             "folder")
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
        "oidc_client_secret": province.oidc.client_secret,
        "oidc_redirect_uri": province.oidc.redirect_uri,
        "payment_partner": province.payment.ma_doi_tac,
        "payment_secret": province.payment.secret,
        "sync_username": province.sync.username,
        "sync_password": province.sync.password,
        "forward_token": province.forward_token,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    return path


def _serve_until_stopped(servers: list[Any]) -> int:
    """Wait for Ctrl-C or SIGTERM; 1 if a server died on its own."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            dead = [server.name for server in servers if not server.is_alive()]
            if dead:
                print(f"haicap: error: the {', '.join(dead)} server stopped unexpectedly", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("stopping…", flush=True)
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from haicap.sandbox.runner import Rehearsal

    if args.selftest or args.province_workers != 1 or args.national_workers != 1:
        from haicap.errors import HaicapError

        raise HaicapError("--national-url runs the province alone: without --selftest, --province-workers or "
                          "--national-workers (the counterpart is the one haicap certify or haicap load starts for "
                          "the profile: give it workers with  haicap load --profile rehearsal.yaml "
                          "--national-workers N)")
    port = args.province_port or 0
    with Rehearsal.start(args.national_url, province_port=port, state_dir=args.state_dir, faults=args.fault,
                         host=args.host) as rehearsal:
        print(f"rehearsal province    {rehearsal.province_url}  (wired to the counterpart at {args.national_url})")
        print(f"faults                {', '.join(sorted(rehearsal.config.faults)) or 'none (correct province)'}")
        print(f"profile               {rehearsal.profile_path}")
        print(f"secrets               {rehearsal.env_path} (readable by you only)")
        print(f"certify it:           set -a; . {rehearsal.env_path}; set +a; "
              f"haicap certify --profile {rehearsal.profile_path}", flush=True)
        return _serve_until_stopped([rehearsal.server])


def run(args: argparse.Namespace) -> int:
    if args.list_faults:
        print(list_faults())
        return 0
    from haicap.sandbox.runner import Sandbox

    if args.national_url:
        return _rehearse(args)
    from haicap.loadtests.cli import check_national_workers

    check_national_workers(args.national_workers, args.oversubscribe)
    if args.selftest:
        from haicap.sandbox.selftest import run_selftest

        with Sandbox.start(host=args.host, faults=args.fault, state_dir=args.state_dir,
                           province_workers=args.province_workers,
                           national_workers=args.national_workers) as sandbox:
            return run_selftest(sandbox, out=sys.stdout)

    with Sandbox.start(
        host=args.host,
        national_port=args.national_port,
        province_port=8720 if args.province_port is None else args.province_port,
        faults=args.fault,
        state_dir=args.state_dir,
        province_workers=args.province_workers,
        national_workers=args.national_workers,
    ) as sandbox:
        credentials = _write_credentials(sandbox)
        national_workers = sandbox.configs.national.workers
        print(f"national counterpart  {sandbox.national_url}  (OIDC: {sandbox.national_url}"
              "/.well-known/openid-configuration)"
              + (f"  ({national_workers} worker processes)" if national_workers > 1 else ""))
        workers = sandbox.configs.province.workers
        several = f"  ({workers} worker processes)" if workers > 1 else ""
        print(f"reference province    {sandbox.province_url}{several}")
        print(f"faults                {', '.join(sorted(sandbox.faults)) or 'none (correct province)'}")
        print(f"credentials           {credentials} (readable by you only)", flush=True)
        return _serve_until_stopped(sandbox.servers)
