"""Data generator throughput and memory, measured (not asserted). Run by hand:

    /work/venv/bin/python benchmarks/bench_data.py [--count 300000] [--faker-count 10000]

Prints: dossiers/s written as JSONL (pool-composed), the rate of calling Faker per record for the same fields,
their ratio (target ≥ 20×, and ≥ 50,000 dossiers/s), and the peak RSS of child processes writing 100,000 and
1,000,000 dossiers (target: within 1.2×).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.identity import make_cccd
from haicap.data_generators.output import write_records
from haicap.data_generators.procedures import load_procedures
from haicap.data_generators.units import admin_units

_CHILD = """
import resource, sys, tempfile, os
from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.output import write_records
count, shape = int(sys.argv[1]), sys.argv[2]
with tempfile.TemporaryDirectory() as folder:
    write_records(os.path.join(folder, "d.jsonl"), DossierGenerator(1, None, shape).records(count), count)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_pool_jsonl(count: int, shape: str, folder: Path) -> float:
    gen = DossierGenerator(1, None, shape)  # set-up (Faker pools, units, contracts) is not timed
    started = time.perf_counter()
    write_records(folder / f"{shape}.jsonl", gen.records(count), count)
    return count / (time.perf_counter() - started)


def bench_faker_per_record(count: int, folder: Path) -> float:
    """The naive way: Faker called for every person field of every record, same record shape (submission)."""
    from faker import Faker

    fake = Faker("vi_VN")
    fake.seed_instance(1)
    rng = random.Random(1)
    procedures = load_procedures()
    communes = [c.code for c in admin_units().communes()]
    started = time.perf_counter()
    with open(folder / "faker.jsonl", "wb") as fh:
        for _ in range(count):
            procedure = procedures[rng.randrange(len(procedures))]
            female = fake.boolean()
            given = fake.first_name_female() if female else fake.first_name_male()
            name = f"{fake.last_name()} {fake.middle_name()} {given}"
            birth: date = fake.date_of_birth(minimum_age=18, maximum_age=80)
            record: dict[str, Any] = {
                "MaTTHC": procedure["MaTTHC"],
                "MaXa": fake.random_element(communes),
                "TrichYeuHoSo": f"{procedure['TenTTHC']} - {name}",
                "ChuHoSo": name,
                "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": make_cccd(rng, birth, female)}],
                "SoDienThoai": fake.numerify("09########"),
                "Email": fake.free_email(),
                "KenhThucHien": "2",
                "LoaiDoiTuong": "1",
                "TaiLieuNop": [
                    {"TepDinhKemId": (file_id := fake.hexify("^^^^^^^^^^^^")),
                     "TenTepDinhKem": f"{c['MaThanhPhanHoSo']}_{file_id[:6]}.pdf", "IsDeleted": False,
                     "MaThanhPhanHoSo": c["MaThanhPhanHoSo"], "DuongDanTaiTepTin": f"/files/{file_id}.pdf",
                     "DuocSoHoa": "1" if fake.boolean(70) else "0", "DuocTaiSuDung": "1" if fake.boolean(20) else "0"}
                    for c in procedure["ThanhPhanHoSo"]
                ],
            }  # fmt: skip
            fh.write(orjson.dumps(record) + b"\n")
    return count / (time.perf_counter() - started)


def child_peak_rss_kib(count: int, shape: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(count), shape], check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--faker-count", type=int, default=10_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rates = {shape: bench_pool_jsonl(args.count, shape, folder) for shape in ("submission", "forwarded", "sync")}
        faker_rate = bench_faker_per_record(args.faker_count, folder)
    for shape, rate in rates.items():
        print(f"pool-composed JSONL, {shape:<10}: {rate:>10,.0f} dossiers/s ({args.count:,} records)")
    print(f"Faker per record, submission: {faker_rate:>10,.0f} dossiers/s ({args.faker_count:,} records)")
    print(f"ratio (submission): {rates['submission'] / faker_rate:.1f}x   target >= 20x and >= 50,000/s")
    if not args.skip_memory:
        small, large = child_peak_rss_kib(100_000, "sync"), child_peak_rss_kib(1_000_000, "sync")
        print(f"peak RSS, sync dossiers: 100,000 -> {small / 1024:.1f} MiB, 1,000,000 -> {large / 1024:.1f} MiB, "
              f"ratio {large / small:.3f}   target <= 1.2")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
