"""Data generator throughput and memory, measured (not asserted). Run by hand:

    /work/venv/bin/python benchmarks/bench_data.py [--count 300000] [--faker-count 10000] [--repeat 3]

Prints: dossiers/s written as JSONL by the generator's own path (the one ``haicap data generate`` uses), the rate
of calling Faker per record for the same fields, their ratio (targets: ≥ 50,000 dossiers/s and ≥ 20×), and the
peak RSS of child processes writing 100,000 and 1,000,000 dossiers (target: within 1.2×).

Fair play: set-up (Faker pools, units, contracts, templates; Faker's own lazy loading) is excluded on both sides,
file writing is included on both sides, and each rate is the best of ``--repeat`` runs for both sides alike, the
runs interleaved (one of each measurement per round) so that a busy or quiet spell of the shared machine falls on
all of them. Wall-clock rates are the targets; CPU-time rates are printed next to them because other processes
slow the wall clock, not the work.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.identity import make_cccd
from haicap.data_generators.output import write_jsonl_batches
from haicap.data_generators.procedures import load_procedures
from haicap.data_generators.units import admin_units

_CHILD = """
import resource, sys, tempfile, os
from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.output import write_jsonl_batches
count, shape = int(sys.argv[1]), sys.argv[2]
with tempfile.TemporaryDirectory() as folder:
    write_jsonl_batches(os.path.join(folder, "d.jsonl"), DossierGenerator(1, None, shape).jsonl_batches(count))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


Run = Callable[[Path], None]


def best_rates(runs: dict[str, tuple[int, Run]], folder: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Per run: (records/s by wall clock, records/s by process CPU time), each the best of ``repeat`` rounds.

    Every run writes a new file, and deletes it outside the timed part: a real run writes one file and does
    not pay for unlinking the previous run's output.
    """
    best = dict.fromkeys(runs, (0.0, 0.0))
    for attempt in range(repeat):
        for name, (count, run) in runs.items():
            path = folder / f"{name}-{attempt}.jsonl"
            started, started_cpu = time.perf_counter(), time.process_time()
            run(path)
            wall = count / (time.perf_counter() - started)
            cpu = count / max(time.process_time() - started_cpu, 1e-9)
            path.unlink()
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    return best


def pool_jsonl(count: int, shape: str) -> Run:
    """Writing ``count`` dossiers the way ``haicap data generate`` does (set-up done here, not timed)."""
    gen = DossierGenerator(1, None, shape)
    return lambda path: write_jsonl_batches(path, gen.jsonl_batches(count))


def faker_per_record(count: int, folder: Path) -> Run:
    """The naive way: Faker called per record for every person field, the submission shape's fields.

    Each field uses Faker's cheapest call for it (measured): ``md5()[:12]`` for a 12-hex-digit file id (``hexify``
    costs 5x more), ``random_number(8, fix_len=True)`` for phone digits (``numerify`` costs 3x more),
    ``random_element`` on a tuple (a list is copied on every call). Enterprise procedures get no tax code here,
    which the composed records do carry: if anything, this favours the baseline.
    """
    from faker import Faker

    fake = Faker("vi_VN")
    fake.seed_instance(1)
    rng = random.Random(1)
    procedures = load_procedures()
    communes = tuple(c.code for c in admin_units().communes())

    def write(path: Path, n: int = count) -> None:
        with open(path, "wb") as fh:
            for _ in range(n):
                procedure = procedures[rng.randrange(len(procedures))]
                female = fake.boolean()
                given = fake.first_name_female() if female else fake.first_name_male()
                name = f"{fake.last_name()} {fake.middle_name()} {given}"
                birth: date = fake.date_of_birth(minimum_age=18, maximum_age=80)
                documents = []
                for component in procedure["ThanhPhanHoSo"]:
                    code, file_id = component["MaThanhPhanHoSo"], fake.md5()[:12]
                    documents.append({
                        "TepDinhKemId": file_id, "TenTepDinhKem": f"{code}_{file_id[:6]}.pdf", "IsDeleted": False,
                        "MaThanhPhanHoSo": code, "DuongDanTaiTepTin": f"/files/{file_id}.pdf",
                        "DuocSoHoa": "1" if fake.boolean(70) else "0",
                        "DuocTaiSuDung": "1" if fake.boolean(20) else "0",
                    })  # fmt: skip
                record: dict[str, Any] = {
                    "MaTTHC": procedure["MaTTHC"],
                    "MaXa": fake.random_element(communes),
                    "TrichYeuHoSo": f"{procedure['TenTTHC']} - {name}",
                    "ChuHoSo": name,
                    "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": make_cccd(rng, birth, female)}],
                    "SoDienThoai": f"09{fake.random_number(8, fix_len=True)}",
                    "Email": fake.free_email(),
                    "KenhThucHien": "2",
                    "LoaiDoiTuong": "1",
                    "TaiLieuNop": documents,
                }
                fh.write(orjson.dumps(record) + b"\n")

    write(folder / "warm-up.jsonl", 200)  # Faker loads some providers' data on first use: not timed
    return write


def child_peak_rss_kib(count: int, shape: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(count), shape], check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--faker-count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs, on both sides (default 3)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
          f"best of {args.repeat} runs")  # fmt: skip
    shapes = ("submission", "forwarded", "sync")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = {shape: (args.count, pool_jsonl(args.count, shape)) for shape in shapes}
        runs["faker"] = (args.faker_count, faker_per_record(args.faker_count, folder))
        rates = best_rates(runs, folder, args.repeat)
    faker_wall, faker_cpu = rates.pop("faker")
    for shape, (wall, cpu) in rates.items():
        print(f"pool-composed JSONL, {shape:<10}: {wall:>10,.0f} dossiers/s  (CPU time: {cpu:>9,.0f}/s, "
              f"{args.count:,} records)")  # fmt: skip
    print(f"Faker per record, submission:    {faker_wall:>10,.0f} dossiers/s  (CPU time: {faker_cpu:>9,.0f}/s, "
          f"{args.faker_count:,} records)")  # fmt: skip
    wall, cpu = rates["submission"]
    print(f"ratio (submission): {wall / faker_wall:.1f}x  (CPU time: {cpu / faker_cpu:.1f}x)   "
          f"target >= 20x and >= 50,000/s")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not args.skip_memory:
        small, large = child_peak_rss_kib(100_000, "sync"), child_peak_rss_kib(1_000_000, "sync")
        print(f"peak RSS, sync dossiers: 100,000 -> {small / 1024:.1f} MiB, 1,000,000 -> {large / 1024:.1f} MiB, "
              f"ratio {large / small:.3f}   target <= 1.2")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
