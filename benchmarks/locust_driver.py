"""One bounded, headless Locust measurement in its own process, for the benchmarks (not part of the product).

Run by the benchmark scripts as ``python benchmarks/locust_driver.py '<spec json>'``; prints one JSON line.
Locust (gevent, which monkey-patches on import) runs only here, so the benchmark parent stays an ordinary
process that starts servers.
The measurement window follows a warm-up: statistics are reset when the window opens, and the CPU time of
this process and of the server processes (``pids``) is read at both ends with psutil, so throughput and CPU
cost describe exactly the same seconds.

Spec: ``{"host", "user": "hello" | "submit" | "get" | "journey" | "module:Class", "users", "warmup_s", "measure_s",
"pids": [int], "env": {name: value}}``. ``submit`` posts pre-serialised pool dossiers owned by the signed-in
citizen (Bearer token in ``HAICAP_BENCH_TOKEN``); ``get`` reads ``HAICAP_BENCH_MAHOSO``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, ClassVar

import gevent
import psutil
from locust import FastHttpUser, events, task
from locust.env import Environment


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _main_thread_cpu(proc: psutil.Process) -> float:
    """CPU of the process's main thread (the server's event loop); the rest is its worker threads."""
    for thread in proc.threads():
        if thread.id == proc.pid:
            return thread.user_time + thread.system_time  # type: ignore[no-any-return]
    return 0.0


class HelloUser(FastHttpUser):
    @task
    def hello(self) -> None:
        self.client.get("/", name="hello")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['HAICAP_BENCH_TOKEN']}"}


class SubmitUser(FastHttpUser):
    bodies: ClassVar[list[bytes]] = []
    counter: ClassVar[int] = 0

    @task
    def submit(self) -> None:
        cls = SubmitUser
        body = cls.bodies[cls.counter % len(cls.bodies)]
        cls.counter += 1
        with self.client.post("/api/v1/dossiers", data=body, name="submit dossier", catch_response=True,
                              headers={**_auth(), "Content-Type": "application/json"}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")


class GetUser(FastHttpUser):
    @task
    def get(self) -> None:
        with self.client.get(f"/api/v1/dossiers/{os.environ['HAICAP_BENCH_MAHOSO']}", name="get dossier",
                             headers=_auth(), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")


class BareJourneyUser(FastHttpUser):
    """The bench journey of bench_load.py written as plain Locust: sign in (3 hops), submit, N status reads.

    Same requests as haicap's scenario users make for that journey, without the scenario engine, the open-model
    scheduler or haicap's recorder: the yardstick for their overhead.
    """

    pool: ClassVar[Any] = None
    reads: ClassVar[int] = 20
    counter: ClassVar[int] = 0

    @task
    def journey(self) -> None:
        cls = BareJourneyUser
        index = cls.counter
        cls.counter += 1
        citizen = cls.pool.citizen(index)
        cccd = citizen["SoDinhDanh"]
        self.client.cookiejar.clear()
        login = self.client.get(f"/auth/login?login_hint={cccd}", name="/auth/login", allow_redirects=False)
        authorize = self.client.get(login.headers["location"], name="national /authorize", allow_redirects=False)
        callback = self.client.get(authorize.headers["location"], name="/auth/callback", allow_redirects=False)
        auth = {"Authorization": f"Bearer {callback.json()['access_token']}"}
        dossier = cls.pool.submission(index)
        dossier["DinhDanhCHS"] = [{"LoaiDinhDanh": "1", "SoDinhDanh": cccd}]
        with self.client.post("/api/v1/dossiers", json=dossier, headers=auth, name="submit dossier",
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}")
                return
            ma_ho_so = response.json()["MaHoSo"]
        for _ in range(cls.reads):
            self.client.get(f"/api/v1/dossiers/{ma_ho_so}", headers=auth, name="get dossier")


def _user_class(name: str) -> type:
    builtin = {"hello": HelloUser, "submit": SubmitUser, "get": GetUser, "journey": BareJourneyUser}
    if name in builtin:
        return builtin[name]
    module_name, _, attr = name.partition(":")
    import importlib

    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.update({k: str(v) for k, v in spec.get("env", {}).items()})
    user_class = _user_class(spec["user"])
    if user_class is SubmitUser:
        from bench_sandbox import submission_bodies

        SubmitUser.bodies = submission_bodies(int(spec.get("pool_seed", 7)), int(spec.get("pool_size", 2000)))
    if user_class is BareJourneyUser:
        from haicap.data_generators.pool import DataPool

        BareJourneyUser.pool = DataPool.build(
            seed=int(spec.get("pool_seed", 11)), size=int(spec.get("pool_size", 2000)),
            province=spec.get("province", "01"))
        BareJourneyUser.reads = int(spec.get("reads", 20))
    user_class.host = spec["host"]
    env = Environment(user_classes=[user_class], events=events, host=spec["host"])
    runner = env.create_local_runner()
    me = psutil.Process()
    servers = [psutil.Process(pid) for pid in spec.get("pids", [])]
    runner.start(int(spec["users"]), spawn_rate=float(spec["users"]))
    gevent.sleep(float(spec["warmup_s"]))
    env.stats.reset_all()
    loop0 = [_main_thread_cpu(p) for p in servers]
    cpu0, server0, t0 = _cpu(me), [_cpu(p) for p in servers], time.perf_counter()
    gevent.sleep(float(spec["measure_s"]))
    total = env.stats.total
    requests, failures = total.num_requests, total.num_failures
    elapsed = time.perf_counter() - t0
    cpu1, server1 = _cpu(me), [_cpu(p) for p in servers]
    loop1 = [_main_thread_cpu(p) for p in servers]
    p50, p95, p99 = (total.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
    errors = [f"{e.method} {e.name}: {e.error}" for e in list(env.stats.errors.values())[:3]]
    runner.quit()
    return {
        "user": spec["user"],
        "users": spec["users"],
        "elapsed_s": elapsed,
        "requests": requests,
        "failures": failures,
        "rate": requests / elapsed,
        "generator_cpu_s": cpu1 - cpu0,
        "generator_cpu": (cpu1 - cpu0) / elapsed,
        "server_cpu_s": [b - a for a, b in zip(server0, server1, strict=True)],
        "server_loop_cpu_s": [b - a for a, b in zip(loop0, loop1, strict=True)],
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "errors": errors,
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    print(json.dumps(measure(json.loads(sys.argv[1]))), flush=True)
