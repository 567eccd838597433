"""Bundle verification and the 34-province scoreboard, timed (not asserted). Run by hand:

    .venv/bin/python benchmarks/bench_bundle.py [--run haicap-certify]

Takes a real ``haicap certify`` run folder (default: runs one against the embedded sandbox into a temporary
folder), times ``verify_bundle`` of its bundle.zip (target ≤ 1 s), then signs 34 copies of that evidence as the
34 provinces (each with its own key, results.json's province changed) and times ``write_board`` over them
(target ≤ 10 s). Prints the figures and the bundle's size and member count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haicap.data_generators.units import admin_units
from haicap.reports.bundle import verify_bundle, write_bundle
from haicap.reports.scoreboard import write_board


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="an existing certify run folder with bundle.zip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            subprocess.run([sys.executable, "-m", "haicap.cli", "certify", "--out", str(run)], check=False,
                           capture_output=True)
        bundle = run / "bundle.zip"
        with zipfile.ZipFile(bundle) as zf:
            members = len(zf.namelist())
        t0 = time.perf_counter()
        problems, _ = verify_bundle(bundle)
        verify_s = time.perf_counter() - t0
        print(f"bundle {bundle.stat().st_size / 1024:,.0f} KiB, {members} members: verify {verify_s * 1000:,.0f} ms "
              f"(target ≤ 1000 ms){'; PROBLEMS: ' + '; '.join(problems) if problems else ''}")
        folder = Path(tmp) / "bundles"
        folder.mkdir()
        results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        for province in admin_units().provinces():
            copy = Path(tmp) / f"p{province.code}"
            shutil.copytree(run, copy, ignore=shutil.ignore_patterns("bundle.*"))
            results["target"]["province"] = province.code
            (copy / "results.json").write_text(json.dumps(results), encoding="utf-8")
            write_bundle(copy, Ed25519PrivateKey.generate(), created=results["finished"],
                         out=folder / f"{province.code}.zip")
        t0 = time.perf_counter()
        doc = write_board(folder, Path(tmp) / "board", max_age_days=3650, include_sandbox=True)
        board_s = time.perf_counter() - t0
        print(f"scoreboard of {len(doc['rows'])} bundles: {board_s:.2f} s (target ≤ 10 s); rejected "
              f"{len(doc['rejected'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
