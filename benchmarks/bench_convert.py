"""``haicap convert check`` throughput and memory, measured (not asserted). Run by hand:

    .venv/bin/python benchmarks/bench_convert.py [--small 100000] [--large 1000000]

Generates two conversion pairs (1 % planted defects), checks each in a child process and prints, per size: old +
converted records checked per second of CPU time and of wall clock (target ≥ 200,000 records/s in one process),
and the child's peak RSS; then the ratio of the large run's peak RSS to the small one's (target: within 1.2×,
the check is bounded by its hash buckets, not by the file size). Generation is not timed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from haicap.data_generators.conversion import ConversionPairs

_CHILD = """
import resource, sys, time
from pathlib import Path
from haicap.conversion.check import check_conversion
from haicap.conversion.rules import UnitFacts
UnitFacts()  # the unit tables: set-up, not the check
folder = Path(sys.argv[1])
cpu, wall = time.process_time(), time.perf_counter()
report = check_conversion(folder / "before.jsonl", folder / "after.jsonl", folder, say=lambda s: None)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(report.before_records + report.after_records, cpu, wall, report.findings,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(folder: Path) -> tuple[int, float, float, int, int]:
    """(records, CPU s, wall s, findings, peak RSS KiB) of one check in a fresh child process."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(folder)], capture_output=True, text=True, check=True)
    records, cpu, wall, findings, peak = done.stdout.split()
    return int(records), float(cpu), float(wall), int(findings), int(peak)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    rss: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (args.small, args.large):
            folder = Path(tmp) / str(count)
            t0 = time.perf_counter()
            ConversionPairs(seed=1, defect_rate=0.01).write(count, folder)
            print(f"generated {count:,} pairs in {time.perf_counter() - t0:.1f} s", flush=True)
            records, cpu, wall, findings, peak = measure(folder)
            rss[count] = peak
            print(f"{count:>10,} pairs: {records:,} records, {findings:,} findings; {records / cpu:,.0f} records/s "
                  f"(CPU), {records / wall:,.0f} records/s (wall); peak RSS {peak / 1024:,.1f} MiB", flush=True)
            (folder / "before.jsonl").unlink()
            (folder / "after.jsonl").unlink()
    print(f"peak RSS ratio {args.large:,} / {args.small:,}: {rss[args.large] / rss[args.small]:.3f} (target ≤ 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
