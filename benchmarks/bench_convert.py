"""``haicap convert check`` throughput and memory, measured (not asserted). Run by hand:

    .venv/bin/python benchmarks/bench_convert.py [--small 50000] [--large 2500000] [--workers 2]

Generates two conversion pairs (1 % planted defects) and checks each in a child process, once in one process and
once with ``--workers N``; prints, per run, old + converted records checked per second (wall clock, and CPU of
the one process) and the peak RSS (of the largest process), then the ratio of the large run's peak RSS to the
small one's (target: within 1.2×, the check is bounded by its hash buckets, not by the file size). Target:
≥ 200,000 records/s. Then where a record's time goes in one process: the floor of reading, parsing (orjson) and
validating (jsonschema-rs) each record, measured alone. Generation is not timed.
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
from haicap.conversion.check import check_conversion, shared_facts
shared_facts()  # the unit tables: set-up, not the check
folder, workers = Path(sys.argv[1]), int(sys.argv[2])
cpu, wall = time.process_time(), time.perf_counter()
report = check_conversion(folder / "before.jsonl", folder / "after.jsonl", folder, say=lambda s: None,
                          workers=workers)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(report.before_records + report.after_records, cpu, wall, report.findings, peak)
"""

_FLOOR = """
import sys, time, orjson
from haicap.contract_registry import default_registry
path = sys.argv[1]
valid = default_registry().validator("conversion.schema.json#/$defs/ConvertedRecord").compiled.is_valid
t = time.process_time(); lines = open(path, "rb").read().split(b"\\n")[:-1]; read = time.process_time() - t
t = time.process_time()
for line in lines:
    orjson.loads(line)
parse = time.process_time() - t
records = [orjson.loads(line) for line in lines]
t = time.process_time()
for record in records:
    valid(record)
check = time.process_time() - t
n = len(lines)
print(f"  one record alone (after.jsonl, {n:,}): read+split {read / n * 1e6:.2f} µs, orjson.loads "
      f"{parse / n * 1e6:.2f} µs, jsonschema-rs is_valid {check / n * 1e6:.2f} µs")
"""


def measure(folder: Path, workers: int) -> tuple[int, float, float, int, int]:
    """(records, CPU s of the parent, wall s, findings, peak RSS KiB) of one check in a fresh child process."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(workers)], capture_output=True,
                          text=True, check=True)
    records, cpu, wall, findings, peak = done.stdout.split()
    return int(records), float(cpu), float(wall), int(findings), int(peak)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=50_000, help="pairs (100,000 records)")
    parser.add_argument("--large", type=int, default=2_500_000, help="pairs (5,000,000 records)")
    parser.add_argument("--workers", type=int, default=2, help="the multi-process run (0: none)")
    args = parser.parse_args()
    runs = (1, args.workers) if args.workers > 1 else (1,)
    rss: dict[tuple[int, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (args.small, args.large):
            folder = Path(tmp) / str(count)
            t0 = time.perf_counter()
            ConversionPairs(seed=1, defect_rate=0.01).write(count, folder)
            print(f"generated {count:,} pairs in {time.perf_counter() - t0:.1f} s", flush=True)
            for workers in runs:
                records, cpu, wall, findings, peak = measure(folder, workers)
                rss[(count, workers)] = peak
                cpu_rate = f", {records / cpu:,.0f} records/s of CPU" if workers == 1 else ""
                print(f"{count:>10,} pairs, {workers} process(es): {records:,} records, {findings:,} findings; "
                      f"{records / wall:,.0f} records/s (wall){cpu_rate}; peak RSS {peak / 1024:,.1f} MiB",
                      flush=True)
            if count == args.small:
                print(subprocess.run([sys.executable, "-c", _FLOOR, str(folder / "after.jsonl")],
                                     capture_output=True, text=True, check=True).stdout.rstrip(), flush=True)
            (folder / "before.jsonl").unlink()
            (folder / "after.jsonl").unlink()
    for workers in runs:
        ratio = rss[(args.large, workers)] / rss[(args.small, workers)]
        print(f"peak RSS ratio {args.large:,} / {args.small:,} pairs, {workers} process(es): {ratio:.3f} "
              f"(target ≤ 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
