"""The open-model scheduler alone, at a ladder of rates, against an endpoint that is not the bottleneck.

Run by ``bench_load.py`` as ``python benchmarks/scheduler_driver.py '<spec json>'`` (gevent monkey-patches on
import, so it runs in its own process); prints one JSON line per rate as it goes. Each rate is one ``soak``
shape (no ramp) driven by haicap's own :class:`~haicap.loadtests.openmodel.ArrivalScheduler`; every arrival
does what a journey's first request does in ``haicap load`` — a fresh :class:`~haicap.loadtests.port.LocustPort`
over the shared connection pool, the request timed from the intended start by
:class:`~haicap.loadtests.port.TimedEvent`, recorded in a :class:`~haicap.loadtests.recorder.Recorder` and
forwarded to Locust's statistics — then records the journey. The target is a hello-world ASGI app, so what is
measured is the scheduler and the generator's per-arrival cost, not the system under test.

Spec: ``{"url", "rates": [float], "stage_s", "max_in_flight", "server_pid", "cpu_stop": 80}``; the ladder stops
after the first rate at which the generator's CPU reaches ``cpu_stop`` (per-second maximum).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
from geventhttpclient.client import HTTPClientPool  # noqa: E402
from locust.env import Environment  # noqa: E402

from haicap.loadtests.openmodel import ArrivalScheduler  # noqa: E402
from haicap.loadtests.port import LocustPort, TimedEvent  # noqa: E402
from haicap.loadtests.recorder import Recorder  # noqa: E402
from haicap.loadtests.shapes import arrival_times, build_shape  # noqa: E402


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def measure_rate(env: Environment, pool: HTTPClientPool, spec: dict[str, Any], rate: float) -> dict[str, Any]:
    duration = float(spec["stage_s"])
    shape = build_shape("soak", duration, {"rate": rate, "ramp_s": 0}).build()
    planned = sum(1 for _ in arrival_times(shape, rate))
    start = time.time() + 0.2
    recorder = Recorder(start)

    def run_one(n: int, intended: float, lag: float) -> None:
        event = TimedEvent(env.events.request, recorder)
        event.pending_lag_ms = lag * 1000
        port = LocustPort(spec["url"], event, client_pool=pool)
        ok = port.request("GET", "/", name="hello").status_code == 200
        recorder.journey("hello", (time.time() - intended) * 1000, ok)

    scheduler = ArrivalScheduler(shape, run_one, recorder, start_epoch=start, max_rate=rate,
                                 max_in_flight=int(spec["max_in_flight"]))
    me = psutil.Process()
    server = psutil.Process(int(spec["server_pid"]))
    gevent.sleep(max(0.0, start - time.time()))
    psutil.cpu_percent(None)  # machine-wide, since this call: shows when other work starves the generator
    cpu0, server0 = _cpu_s(me), _cpu_s(server)
    t0 = time.perf_counter()
    scheduler.run(grace_s=5.0)
    elapsed = time.perf_counter() - t0
    cpu1, server1 = _cpu_s(me), _cpu_s(server)
    machine = psutil.cpu_percent(None)
    window = range(int(duration))
    seconds = [recorder.seconds[t] for t in window if t in recorder.seconds]
    started_in_window = sum(s.started for s in seconds)
    requests = recorder.totals()
    return {
        "rate": rate,
        "duration_s": duration,
        "planned": planned,
        "target": planned / duration,
        "achieved": started_in_window / duration,
        "started_total": scheduler.started,
        "completed": sum(s.completed for s in seconds) / duration,
        "held_back": scheduler.held_back,
        "dropped": scheduler.dropped,
        "start_lag_ms": recorder.lag.summary(),
        "latency_ms": requests.latency.summary(),
        "failures": requests.failed,
        "cpu_mean": 100 * (cpu1 - cpu0) / elapsed,
        "cpu_max": max([s.cpu for s in seconds] + [0.0]),
        "server_cpu_mean": 100 * (server1 - server0) / elapsed,
        "machine_cpu_mean": machine,
        "in_flight_max": max([s.in_flight for s in seconds] + [0]),
    }


def main(spec: dict[str, Any]) -> None:
    env = Environment()
    env.create_local_runner()  # hooks Locust's statistics to the request event, as in a real run
    pool = HTTPClientPool(concurrency=int(spec["max_in_flight"]) + 10, network_timeout=30.0,
                          connection_timeout=10.0, insecure=True)
    for rate in spec["rates"]:
        result = measure_rate(env, pool, spec, float(rate))
        print(json.dumps(result), flush=True)
        if result["cpu_max"] >= float(spec.get("cpu_stop", 80.0)):
            break


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
