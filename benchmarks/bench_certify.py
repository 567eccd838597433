"""How long `haicap certify` takes for one province against the embedded sandbox (target ≤ 60 s), measured.

    .venv/bin/python benchmarks/bench_certify.py [--rounds 3] [--workers 0 2]
    .venv/bin/python benchmarks/bench_certify.py --seeds 0 1 2 3 4     # false failures of the reference province

Prints the wall time of each full run (sandbox start, every check, reports), the slowest checks, and the
best/median per worker setting. Run by hand; machines are shared, so read the median, not one run. With
``--seeds``, certifies the correct reference province once per seed and lists every check that did not pass
(target: none — a false failure of a correct province is a defect).
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


def one_run(workers: int, out: Path, seed: int = 0, strict: bool = True) -> tuple[float, dict]:  # type: ignore[type-arg]
    cmd = [sys.executable, "-m", "haicap.cli", "certify", "--out", str(out), "--seed", str(seed)]
    if workers:
        cmd += ["-n", str(workers)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 and strict:
        raise SystemExit(f"certify failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, json.loads((out / "results.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--seeds", type=int, nargs="+", help="certify once per seed and list false failures")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.seeds:
        false_failures(args.seeds)
        return
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


def false_failures(seeds: list[int]) -> None:
    total = 0
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            elapsed, results = one_run(0, Path(folder) / f"seed{seed}", seed=seed, strict=False)
            bad = [c for c in results["checks"] if c["status"] != "passed"]
            total += len(bad)
            print(f"seed {seed}: {results['summary']['passed']}/{results['summary']['total']} passed in {elapsed:.1f} s"
                  + "".join(f"\n  {c['id']} {c['status']}: {c['message'][:300]}" for c in bad), flush=True)
    print(f"false failures over seeds {seeds}: {total} (target 0)")


if __name__ == "__main__":
    main()
