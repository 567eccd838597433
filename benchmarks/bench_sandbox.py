"""Reference province under load, measured (not asserted). Run by hand:

    /work/venv/bin/python benchmarks/bench_sandbox.py [--users 32] [--warmup 3] [--measure 10] [--repeat 3]
        [--workers 1 2]

Issue 2's target: the province's submit endpoint (durable group-committed write + outbox to the national sync
API) and a read endpoint (GET dossier) against a hello-world ASGI app served the same way (uvicorn in a
spawned process on a pre-bound socket, :class:`haicap.sandbox.server.ProcessServer`), load from one Locust
FastHttpUser process on loopback (``locust_driver.py``, closed model, no wait).

Two cores are shared by the servers, the generator and whatever else runs on the machine, and one Locust
process cannot saturate a server faster than itself. So capacity is reported two ways:
- throughput: requests/s achieved in the window (for hello-world this is what the generator can produce);
- CPU cost: requests per server-process CPU-second (province + national for submit, since the outbox's sync
  calls cost the national side too), i.e. what one core would serve if the server had it to itself.
The target: submit capacity ≥ 3× the generator's rate. The province is measured with 1 and 2 worker processes
(``--workers``), each in its own sandbox, so the cost of sharing state across processes is visible; CPU per
request is split into province (all workers) and national side. Runs are interleaved and repeated; the median
is printed with the min–max spread and the machine's load average, so the noise is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from haicap.data_generators.pool import DataPool
from haicap.province_client import ProvinceClient
from haicap.sandbox.runner import Sandbox
from haicap.sandbox.server import ProcessServer, bind_socket

HERE = Path(__file__).resolve().parent
PROVINCE = "01"


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


def hello_app(_config: Any) -> Any:
    """Factory for :class:`ProcessServer`: a bare ASGI hello-world (no framework)."""
    return _hello


def submission_bodies(seed: int, size: int) -> list[bytes]:
    """Pool submissions re-owned by pool citizen 0 (the one signed in), serialised once, before the run."""
    pool = DataPool.build(seed=seed, size=size, province=PROVINCE)
    owner = pool.citizen(0)
    bodies = []
    for i in range(size):
        dossier = pool.submission(i)
        dossier["DinhDanhCHS"] = [{"LoaiDinhDanh": "1", "SoDinhDanh": owner["SoDinhDanh"]}]
        bodies.append(orjson.dumps(dossier))
    return bodies


def run_driver(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "locust_driver.py"), json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(HERE)})
    if proc.returncode != 0:
        raise SystemExit(f"locust driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):8,.0f}  [{min(values):,.0f}–{max(values):,.0f}]"


def _province_pids(sandbox: Sandbox) -> tuple[list[int], int]:
    by_name = {s.name: s for s in sandbox.servers if isinstance(s, ProcessServer)}
    return by_name["province"].pids, by_name["national"].pid or 0


def _prepare(sandbox: Sandbox, bodies: list[bytes]) -> dict[str, str]:
    """Sign the bodies' owner in and submit once: the env of the submit and get users."""
    client = ProvinceClient(sandbox.province_url)
    cccd = DataPool.build(seed=7, size=1, province=PROVINCE).citizen(0)["SoDinhDanh"]  # bodies' owner
    session = client.login(cccd)
    first = httpx.post(sandbox.province_url + "/api/v1/dossiers", content=bodies[0],
                       headers={**session.headers(), "Content-Type": "application/json"})
    if first.status_code != 201:
        raise SystemExit(f"sanity submit failed: {first.status_code} {first.text[:300]}")
    return {"HAICAP_BENCH_TOKEN": session.access_token, "HAICAP_BENCH_MAHOSO": first.json()["MaHoSo"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--measure", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="province worker counts to measure (default: 1 2)")
    args = parser.parse_args()
    timeout = args.warmup + args.measure + 60
    cores = os.cpu_count() or 1

    hello = ProcessServer("bench_sandbox:hello_app", None, bind_socket("127.0.0.1", 0), "hello")
    hello.start()
    sandboxes: dict[int, Sandbox] = {}
    specs: dict[str, dict[str, Any]] = {}
    n_province: dict[str, int] = {}  # spec → how many of its pids are province workers (the rest: national)
    try:
        bodies = submission_bodies(7, 50)
        base = {"users": args.users, "warmup_s": args.warmup, "measure_s": args.measure}
        specs["hello"] = {**base, "user": "hello", "host": hello.url, "pids": [hello.pid], "env": {}}
        for workers in args.workers:
            sandbox = sandboxes[workers] = Sandbox.start(mode="process", province_workers=workers)
            province_pids, national_pid = _province_pids(sandbox)
            env = _prepare(sandbox, bodies)
            for user in ("submit", "get"):
                name = f"{user} {workers}w"
                specs[name] = {**base, "user": user, "host": sandbox.province_url, "env": env,
                               "pids": [*province_pids, national_pid]}
                n_province[name] = len(province_pids)
        load_before = os.getloadavg()
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in specs}
        for rep in range(args.repeat):
            for name, spec in specs.items():
                r = run_driver(spec, timeout)
                results[name].append(r)
                print(f"  run {rep + 1} {name:9s}: {r['rate']:7,.0f} req/s, {r['failures']} failures, "
                      f"generator CPU {r['generator_cpu']:.0%}, server CPU-s "
                      f"{' + '.join(f'{c:.2f}' for c in r['server_cpu_s'])} over {r['elapsed_s']:.1f} s, "
                      f"p50/p95/p99 {r['p50_ms']:.0f}/{r['p95_ms']:.0f}/{r['p99_ms']:.0f} ms"
                      + (f", errors: {r['errors']}" if r["errors"] else ""), flush=True)
        load_after = os.getloadavg()
        ledgers = {w: httpx.get(sb.national_url + "/_ledger/sync/stats", headers=sb.control_headers())
                   for w, sb in sandboxes.items()}
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
        hello.stop()

    med = statistics.median

    def rates(name: str) -> list[float]:
        return [r["rate"] for r in results[name]]

    def per_cpu(name: str, which: str = "all") -> list[float]:
        """Requests per server CPU-second: all server processes, or the province workers only."""
        n = n_province.get(name, 1)
        cut = slice(None) if which == "all" else slice(0, n)
        return [r["requests"] / max(sum(r["server_cpu_s"][cut]), 1e-9) for r in results[name]]

    def ms_per_request(name: str, part: slice) -> float:
        return med([1000 * sum(r["server_cpu_s"][part]) / max(r["requests"], 1) for r in results[name]])

    gen_rate = med(rates("hello"))
    gen_cpu = [r["requests"] / max(r["generator_cpu_s"], 1e-9) for r in results["hello"]]
    gen_cpu_rate = med(gen_cpu)
    print()
    print(f"machine: {cores} cores, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after "
          f"(other work on the machine competes for the same cores); {args.users} users, "
          f"{args.measure:g} s windows, {args.repeat} interleaved repeats; median [min–max]")
    print("throughput (req/s):")
    for name in specs:
        print(f"  {name:28s}{_spread(rates(name))}")
    print("CPU cost (requests per server CPU-second = single-core capacity):")
    print(f"  {'hello-world server':28s}{_spread(per_cpu('hello'))}")
    for workers in args.workers:
        print(f"  {f'submit {workers}w: province only':28s}{_spread(per_cpu(f'submit {workers}w', 'province'))}")
        print(f"  {f'submit {workers}w: province + national':28s}{_spread(per_cpu(f'submit {workers}w'))}")
        print(f"  {f'get {workers}w: province only':28s}{_spread(per_cpu(f'get {workers}w', 'province'))}")
    print("CPU per request (ms; province = all its workers; the rest of a worker's CPU: store writer and other "
          "threads):")
    print(f"  {'hello-world server':28s}{ms_per_request('hello', slice(None)):.3f}")
    print(f"  {'generator (per request)':28s}{1000 / gen_cpu_rate:.3f}")
    for name in specs:
        if name == "hello":
            continue
        n = n_province[name]
        shares = [sum(r["server_loop_cpu_s"][:n]) / max(sum(r["server_cpu_s"][:n]), 1e-9) for r in results[name]]
        print(f"  {name:28s}province {ms_per_request(name, slice(0, n)):.3f} (event loop {med(shares):.0%}), "
              f"national {ms_per_request(name, slice(n, None)):.3f}")
    print("generator (one Locust FastHttpUser process, against hello-world):")
    print(f"  {'req/s':28s}{_spread(rates('hello'))}")
    print(f"  {'req per generator CPU-s':28s}{_spread(gen_cpu)}")
    print("ratios (medians):")
    for workers in args.workers:
        submit, get = f"submit {workers}w", f"get {workers}w"
        usable = min(workers + 1, cores)  # province workers + the national process, at most the machine's cores
        print(f"  {workers} province worker(s):")
        print(f"    submit / hello-world throughput      {med(rates(submit)) / gen_rate:.2f}")
        print(f"    get / hello-world throughput         {med(rates(get)) / gen_rate:.2f}")
        print(f"    submit / hello-world CPU cost        {med(per_cpu(submit)) / med(per_cpu('hello')):.2f}")
        print(f"    get / hello-world CPU cost           {med(per_cpu(get, 'province')) / med(per_cpu('hello')):.2f}")
        print(f"    submit throughput / generator rate   {med(rates(submit)) / gen_rate:.2f}  "
              "(bounded by the shared cores: generator and servers run on the same ones)")
        ratio_rate = med(per_cpu(submit)) / gen_rate
        print(f"    submit capacity (province+national per CPU-s) / generator req/s        {ratio_rate:.2f}  "
              f"target ≥ 3: {'met' if ratio_rate >= 3 else 'NOT met'}")
        ratio = med(per_cpu(submit)) / gen_cpu_rate
        print(f"    submit capacity per CPU-s / generator req per generator CPU-s          {ratio:.2f}  "
              f"target ≥ 3: {'met' if ratio >= 3 else 'NOT met'}")
        if workers > 1:
            print(f"    same, with the {usable} cores {workers} workers + national can use (projection) "
                  f"{ratio * usable:.2f}  target ≥ 3: {'met' if ratio * usable >= 3 else 'NOT met'}")
    for workers, ledger in ledgers.items():
        if ledger.status_code == 200:
            print(f"national sync ledger after the run ({workers}w): {ledger.json()}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")
