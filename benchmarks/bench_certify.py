"""How long `haicap certify` takes for one province against the embedded sandbox (target ≤ 60 s), measured.

    /work/venv/bin/python benchmarks/bench_certify.py [--rounds 3] [--workers 0 2]

Prints the wall time of each full run (sandbox start, every check, reports), the slowest checks, and the
best/median per worker setting. Run by hand; machines are shared, so read the median, not one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(workers: int, out: Path) -> tuple[float, dict]:  # type: ignore[type-arg]
    cmd = [sys.executable, "-m", "haicap.cli", "certify", "--out", str(out)]
    if workers:
        cmd += ["-n", str(workers)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"certify failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, json.loads((out / "results.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    timings: dict[int, list[float]] = {w: [] for w in args.workers}
    last: dict = {}  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for workers in args.workers:  # interleaved, so busy spells hit every setting alike
                elapsed, last = one_run(workers, Path(folder) / f"r{round_}w{workers}")
                timings[workers].append(elapsed)
                print(f"round {round_ + 1}, workers {workers}: {elapsed:5.1f} s "
                      f"({last['summary']['passed']}/{last['summary']['total']} checks passed)", flush=True)
    for workers, values in timings.items():
        print(f"workers {workers}: best {min(values):.1f} s, median {statistics.median(values):.1f} s "
              f"(target ≤ 60 s: {'met' if statistics.median(values) <= 60 else 'NOT met'})")
    slowest = sorted(last["checks"], key=lambda c: c.get("duration_s", 0), reverse=True)[:5]
    print("slowest checks (last run): " + ", ".join(f"{c['id']} {c.get('duration_s', 0):.1f} s" for c in slowest))


if __name__ == "__main__":
    main()
