"""The Locust side of ``haicap load``: a driver user per worker process running the open-model scheduler,
and the controller on the master (or the single local process) that merges reports, prints progress, runs
the shape's events, stops the run, and writes Locust's HTML/CSV and the merged measurements.

Run as a child process of ``haicap load`` (``python -m haicap.loadtests.locust_app PLAN``) or as a worker
(``python -m haicap.loadtests.locust_app --worker --master-host H --master-port P``), so that Locust's gevent
monkey-patching never touches the process that runs the sandbox. Messages between master and workers:
``haicap_setup`` (master → worker: the plan, the worker's index), ``haicap_ready`` (worker built its data),
``haicap_go`` (the common start time), ``haicap_report`` (every second: measurement deltas),
``haicap_stop`` (stop early), ``haicap_final`` (last deltas and the generator's own figures).

Stopping, in levels: SIGINT or SIGTERM (``haicap load`` passes its own on as SIGTERM; Ctrl-C reaches every
process of the group) stops the arrivals, running journeys get the grace window, and the measurements are still
written with the signal recorded (level 1). SIGUSR1 — what ``haicap load`` sends on a second stop — kills the
running journeys at once (not judged: the stop is ours, not the system's), and the measurements are still
written (level 2); the master passes both levels on to its workers (``haicap_stop``, ``haicap_hurry``). A
process with a parent repeats no level on a repeated SIGINT/SIGTERM (one Ctrl-C reaches it directly *and*
through its parent); a worker started by hand goes to level 2 on the second and exits on the third. A process
started with ``--parent-pid`` asks for a signal when its parent dies (:func:`haicap.parent_death.die_with_parent`)
and, orphaned, exits at once: nobody is left to judge the run, so it must not keep loading the target. Signals
that arrive while this module is still importing are recorded and acted on as soon as the handlers are in place.

The controller is also the run's watchdog: whatever the workers do (hung, frozen, cut off), it stops waiting
:data:`~haicap.loadtests.WATCHDOG_SLACK_S` after the shape and the grace window, writes what they reported, marked
``time_bound``, and stops them. With ``--until-breach`` it judges each stage as it ends
(:class:`~haicap.loadtests.until_breach.StageWatch`) and stops the load at the first that breaks.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import signal  # noqa: E402

_EARLY_SIGNALS: list[int] = []  # stop signals received before the gevent handlers were installed


def _record_early_signal(signum: int, frame: object) -> None:
    _EARLY_SIGNALS.append(signum)


for _signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
    try:
        signal.signal(_signum, _record_early_signal)
    except ValueError:  # not the main thread (imported by a test, say): the process is not ours to steer
        break

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent import GreenletExit  # noqa: E402
from gevent.event import AsyncResult, Event  # noqa: E402
from geventhttpclient.client import HTTPClientPool  # noqa: E402
from locust import User, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.exception import StopUser  # noqa: E402
from locust.html import get_html_report  # noqa: E402
from locust.log import setup_logging  # noqa: E402
from locust.runners import CONNECT_RETRY_COUNT, CONNECT_TIMEOUT  # noqa: E402
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV  # noqa: E402

from haicap.counterpart_client import CounterpartClient  # noqa: E402
from haicap.errors import HaicapError  # noqa: E402
from haicap.loadtests import WATCHDOG_SLACK_S  # noqa: E402
from haicap.loadtests.journeys import Mix, run_journey  # noqa: E402
from haicap.loadtests.openmodel import ArrivalScheduler  # noqa: E402
from haicap.loadtests.port import LocustPort, TimedEvent  # noqa: E402
from haicap.loadtests.recorder import Recorder  # noqa: E402
from haicap.loadtests.shapes import ShapeSpec, StageIndex  # noqa: E402
from haicap.loadtests.stopping import exit_code_for, signal_name  # noqa: E402
from haicap.parent_death import die_with_parent, end_child, orphaned  # noqa: E402
from haicap.province_client import ProvinceClient  # noqa: E402
from haicap.scenarios.data import PoolScenarioData  # noqa: E402
from haicap.scenarios.engine import ScenarioContext, load_scenarios  # noqa: E402

SETUP_TIMEOUT_S = 120.0
REPORT_INTERVAL_S = 1.0
#: how long a worker keeps trying to reach its master (Locust's retries)
MASTER_WAIT_S = CONNECT_TIMEOUT * (CONNECT_RETRY_COUNT + 1)

Send = Callable[[str, Any], None]


# -- worker side -----------------------------------------------------------------------------------
def _connection_budget(wanted: int) -> int:
    """Connections per host this process may open: ``wanted``, raising the open-file limit towards it.

    Every in-flight journey may hold a connection; a low soft limit (1024 is common) would turn a generous
    in-flight bound into "too many open files". If the hard limit is lower, journeys share fewer connections
    (their waiting is inside their latency, timed from the intended start) and a note says so.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted * 2 + 200  # province and national hosts, plus the process's own files
    if soft != resource.RLIM_INFINITY and soft < needed:
        new_soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        allowed = max(10, (soft - 200) // 2)
        print(f"haicap load: note: open-file limit {soft} allows {allowed} connections per host, not {wanted}; "
              "journeys beyond that wait for a connection (ulimit -n to raise it)", flush=True)
        return allowed
    return wanted


class WorkerLoad:
    """Everything one generator process needs: data, scenarios, clients, the recorder and the scheduler."""

    def __init__(self, setup: dict[str, Any], send: Send) -> None:
        self.setup = setup
        self.send = send
        self.index, self.count = int(setup["worker_index"]), int(setup["worker_count"])
        scenario_dir = Path(tempfile.mkdtemp(prefix="haicap-scenarios-"))
        try:
            for name, text in setup["scenario_files"].items():
                (scenario_dir / name).write_text(text, encoding="utf-8")
            self.scenarios = load_scenarios([scenario_dir])
        finally:
            shutil.rmtree(scenario_dir, ignore_errors=True)
        self.mix = Mix.build(self.scenarios, setup["only"], frozenset(setup["capabilities"]))
        pool = PoolScenarioData.build(int(setup["seed"]), setup["province_code"], size=int(setup["pool_size"]))
        self.data = PoolScenarioData(pool.pool, start=self.index, stride=self.count)
        self.shape = ShapeSpec(**setup["shape"]).build()
        self.stage_index = StageIndex(self.shape, float(setup["max_rate"]))
        self.national = CounterpartClient(setup["national_url"], setup["control_token"])
        self.connections = _connection_budget(int(setup["max_in_flight"]) + 10)
        self.client_pool = HTTPClientPool(concurrency=self.connections, network_timeout=30.0,
                                          connection_timeout=10.0, insecure=True)
        self.request_event: Any = None  # environment.events.request, set by the driver
        self.recorder: Recorder | None = None
        self.scheduler: ArrivalScheduler | None = None
        self.stop_requested = False
        self.finished = Event()  # set once the final report was handed to send()
        self._journeys: set[gevent.Greenlet] = set()  # running journeys, for a stop at once (hurry)
        self.hurried = False
        self.killed = 0  # journeys killed by hurry(): unfinished, not judged

    def run(self, start_epoch: float) -> None:
        self.recorder = Recorder(start_epoch)
        self.scheduler = ArrivalScheduler(
            self.shape, self.run_one, self.recorder, start_epoch=start_epoch, max_rate=float(self.setup["max_rate"]),
            worker_index=self.index, worker_count=self.count, max_in_flight=int(self.setup["max_in_flight"]),
        )
        if self.stop_requested:  # the stop came while this process built its data or waited for the start
            self.scheduler.stop()
        reporter = gevent.spawn(self._report_loop)
        try:
            self.scheduler.run(grace_s=float(self.setup["grace_s"]))
        finally:
            reporter.kill(block=True)
            scheduler = self.scheduler
            self.send("haicap_final", {
                "index": self.index,
                "report": self.recorder.take_report(final=True),
                "generator": {"index": self.index, "cpu_max": scheduler.cpu_max,
                              "backlog_max": scheduler.backlog_max, "dropped": scheduler.dropped,
                              "in_flight_at_end": scheduler.in_flight, "started": scheduler.started,
                              "held_back": scheduler.held_back, "requests": self.recorder.requests_total,
                              "unfinished": scheduler.unfinished + self.killed,
                              "max_in_flight": scheduler.cap, "connections": self.connections},
            })
            self.finished.set()
            self.national.close()

    def stop(self) -> None:
        self.stop_requested = True
        if self.scheduler is not None:
            self.scheduler.stop()

    def hurry(self) -> None:
        """Stop at once: no new arrivals, and the running journeys are killed now (each records itself as an
        unfinished, failed journey), so the final report follows within moments instead of the grace window."""
        self.stop()
        self.hurried = True
        gevent.killall(list(self._journeys), block=False)

    def _report_loop(self) -> None:
        assert self.recorder is not None
        while True:
            gevent.sleep(REPORT_INTERVAL_S)
            self.send("haicap_report", self.recorder.take_report())

    def run_one(self, n: int, intended: float, lag: float) -> None:
        assert self.recorder is not None
        setup = self.setup
        rng = random.Random(int(setup["seed"]) * 1_000_003 + n)
        scenario = self.mix.choose(rng, self.shape.mix(intended - self.recorder.start_epoch))
        stage = self.stage_index.of_arrival(n)
        event = TimedEvent(self.request_event, self.recorder)
        event.pending_lag_ms = lag * 1000
        event.stage = stage
        port = LocustPort(setup["province_url"], event, client_pool=self.client_pool,
                          allowed_hosts=frozenset(setup["allowed_hosts"]))
        province = ProvinceClient(port=port, officer_token=setup["officer_token"], seed=int(setup["seed"]),
                                  port_factory=port.fresh)
        context = ScenarioContext(
            province=province, national=self.national, data=self.data,
            capabilities=frozenset(setup["capabilities"]), province_code=setup["province_code"],
            sync_sla_seconds=float(setup["sync_sla_seconds"]), mode="load", communes=tuple(setup["communes"]),
        )
        current = gevent.getcurrent()
        self._journeys.add(current)
        try:
            run_journey(scenario, context, self.recorder, lag, stage=stage, trace_id=port.trace_id)
        except GreenletExit:  # still running when the grace window ended: the slowest journeys count, as failed
            if self.hurried:  # killed by hurry(), not by the scheduler (which counts its own): our doing, not the
                self.killed += 1  # system's, so not judged as a failed journey either
            else:
                self.recorder.unfinished_journey(scenario.id, (time.time() - intended) * 1000, stage=stage)
            why = ("killed by a second stop signal (not judged)" if self.hurried
                   else "still running when the grace window after the load ended")
            self.recorder.failures_sample.setdefault(f"{scenario.id}\x1f(journey)", f"unfinished: {why}")
            raise
        except Exception as exc:  # a bug or an unexpected answer must not kill the arrival's greenlet
            self.recorder.journey(scenario.id, (time.time() - intended) * 1000, False, stage=stage)
            self.recorder.failures_sample.setdefault(f"{scenario.id}\x1f(journey)",
                                                     f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._journeys.discard(current)


_SETUP: AsyncResult = AsyncResult()
_GO: AsyncResult = AsyncResult()
_WORKER: dict[str, WorkerLoad] = {}
_LOCAL_SEND: dict[str, Send] = {}


class Driver(User):
    """One per generator process: runs that process's share of the arrivals, then stops."""

    @task
    def drive(self) -> None:
        send = _LOCAL_SEND.get("send") or self._send_to_master
        setup = _SETUP.get(timeout=SETUP_TIMEOUT_S)
        try:
            worker = WorkerLoad(setup, send)
        except Exception as exc:
            send("haicap_final", {"index": setup.get("worker_index", 0), "error": f"{type(exc).__name__}: {exc}",
                                  "traceback": traceback.format_exc()})
            raise StopUser() from None
        worker.request_event = self.environment.events.request
        _WORKER["load"] = worker
        send("haicap_ready", {"index": worker.index})
        start_epoch = _GO.get(timeout=SETUP_TIMEOUT_S)
        worker.run(float(start_epoch))
        raise StopUser()

    def _send_to_master(self, kind: str, data: Any) -> None:
        assert self.environment.runner is not None
        self.environment.runner.send_message(kind, data)


def _on_setup(environment: Environment, msg: Any, **_: Any) -> None:
    _SETUP.set(msg.data)


def _on_go(environment: Environment, msg: Any, **_: Any) -> None:
    _GO.set(msg.data)


def _on_stop(environment: Environment, msg: Any, **_: Any) -> None:
    worker = _WORKER.get("load")
    if worker is not None:
        worker.stop()


# -- stopping ----------------------------------------------------------------------------------------
#: "signal": the first SIGINT/SIGTERM this process received; "level": 1 stop arrivals, 2 kill running journeys
_STOP: dict[str, int] = {}
HURRY_SIGNAL = signal.SIGUSR1


def _install_stop_handlers(parent_pid: int | None, on_level: Callable[[int], None]) -> None:
    """Stop signals raise the stop level and call ``on_level(level)`` (in a greenlet) when it rises; an orphan
    exits at once. See the module docstring for the levels."""
    count = [0]

    def handle(signum: int) -> None:
        if orphaned(parent_pid):  # haicap was killed: nobody will judge this run; stop loading the target now
            os._exit(exit_code_for(_STOP.get("signal", signum)))
        if signum == HURRY_SIGNAL:
            level = 2
        else:
            _STOP.setdefault("signal", signum)
            count[0] += 1
            level = 1 if parent_pid is not None else count[0]
        if level >= 3:
            print(f"haicap load: {signal_name(signum)} a third time: stopping at once", flush=True)
            os._exit(exit_code_for(_STOP["signal"]))
        if level > _STOP.get("level", 0):
            _STOP["level"] = level
            on_level(level)

    for signum in (signal.SIGINT, signal.SIGTERM, HURRY_SIGNAL):
        gevent.signal_handler(signum, handle, signum)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    while _EARLY_SIGNALS:
        handle(_EARLY_SIGNALS.pop(0))


def _on_hurry(environment: Environment | None, msg: Any, **_: Any) -> None:
    worker = _WORKER.get("load")
    if worker is not None:
        worker.hurry()


def _leave(runner: Any, grace_s: float) -> None:
    """A worker asked to stop: end its arrivals, let its final report reach the master, then disconnect."""
    worker = _WORKER.get("load")
    if worker is not None:
        worker.stop()
        if worker.scheduler is not None:  # running: its final report follows the grace window
            worker.finished.wait(timeout=grace_s + 15)
            gevent.sleep(0.5)  # let ZeroMQ send it
    runner.quit()


def run_worker(master_host: str, master_port: int, *, parent_pid: int | None = None) -> int:
    """Be one worker of the master at ``master_host:master_port``; returns 0, or 128 + signal when stopped.

    ``parent_pid``: started by a local master (``--processes``), which speaks for it; otherwise (a worker
    started by hand) it says where it waits and for how long.
    """
    setup_logging("WARNING")
    say = (lambda text: None) if parent_pid is not None else (lambda text: print(text, flush=True))
    where = f"{master_host}:{master_port}"
    runners: list[Any] = []

    def on_level(level: int) -> None:
        name = signal_name(_STOP.get("signal", HURRY_SIGNAL))
        if not runners:  # still looking for the master: nothing runs yet
            say(f"haicap load: worker stopped ({name}) before it reached the master at {where}")
            sys.stdout.flush()
            os._exit(exit_code_for(_STOP.get("signal", signal.SIGTERM)))
        if level >= 2:
            say("haicap load: worker stopping at once: running journeys killed (not judged); "
                "a third signal exits without reporting")
            _on_hurry(None, None)
            return
        say(f"haicap load: worker stopping ({name}): no new arrivals; its running journeys finish, then it "
            "reports to the master and leaves (again to stop at once)")
        load = _WORKER.get("load")
        gevent.spawn(_leave, runners[0], float(load.setup.get("grace_s", 20.0)) if load else 0.0)

    _install_stop_handlers(parent_pid, on_level)
    say(f"haicap load: worker waiting for the master at {where} (up to {MASTER_WAIT_S:.0f} s; start it with "
        f"haicap load --master --master-port {master_port})")
    env = Environment(user_classes=[Driver])
    try:
        runner = env.create_worker_runner(master_host, master_port)
    except ConnectionError:
        raise HaicapError(f"no master answered at {where} within {MASTER_WAIT_S:.0f} s (is haicap load --master "
                          f"--master-port {master_port} running, and is {master_host} the right host?)") from None
    runner.register_message("haicap_setup", _on_setup)
    runner.register_message("haicap_go", _on_go)
    runner.register_message("haicap_stop", _on_stop)
    runner.register_message("haicap_hurry", _on_hurry)
    runners.append(runner)
    # Locust sends "client_ready" while it connects, before a handler can be registered: a setup sent on that
    # signal can arrive first and be dropped as an unknown message. A hello once the handlers exist closes the race.
    runner.send_message("haicap_hello", None)
    say(f"haicap load: worker connected to the master at {where}; it runs its share of the load when the run "
        "starts")
    runner.greenlet.join()
    return exit_code_for(_STOP["signal"]) if "signal" in _STOP else 0


# -- master / local side ---------------------------------------------------------------------------
class Controller:
    """Merges reports, prints progress, runs shape events, decides when the run is over."""

    def __init__(self, plan: dict[str, Any], env: Environment, worker_count: int) -> None:
        self.plan = plan
        self.env = env
        self.worker_count = worker_count
        self.recorder = Recorder()
        self.ready: set[int] = set()
        self.finals: dict[int, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.stop_reason: str | None = None
        self.stopped_by: int | None = None  # the signal that stopped the run
        self.stopped_at_s: float | None = None  # seconds into the shape when the arrivals were stopped
        self.hurried = False  # running journeys were killed (a second stop)
        self.start_epoch = 0.0
        self.events_done: list[dict[str, Any]] = []
        self.shape = ShapeSpec(**plan["shape"]).build()
        self._broadcast: Callable[[str, Any], None] = lambda kind, data: None
        #: why the watchdog ended the run before every worker reported its end (None: they all did)
        self.time_bound: str | None = None
        self.watch: Any = None  # --until-breach: judges each stage as it ends
        if plan.get("until_breach"):
            from haicap.loadtests.until_breach import StageWatch

            self.watch = StageWatch(self.shape.stages() or [], list(plan.get("stage_gates") or []), self._sync_check,
                                    require_kept_up=bool(plan.get("require_kept_up", True)))

    def _sync_check(self, expectations: Any) -> dict[str, Any]:
        from haicap.loadtests.integrity import check_sync_deadlines

        with CounterpartClient(self.plan["national_url"], self.plan["control_token"]) as national:
            return check_sync_deadlines(national, expectations, limit=500)

    # messages from workers (or the local driver)
    def receive(self, kind: str, data: Any) -> None:
        if kind == "haicap_ready":
            self.ready.add(int(data["index"]))
        elif kind == "haicap_report":
            self.recorder.add_report(data)
        elif kind == "haicap_final":
            if "error" in data:
                self.errors.append(f"worker {data['index']}: {data['error']}")
                self.finals[int(data["index"])] = {"index": int(data["index"]), "cpu_max": 0.0, "backlog_max": 0,
                                                   "dropped": 0, "started": 0, "held_back": 0, "requests": 0}
                return
            self.recorder.add_report(data["report"])
            self.finals[int(data["index"])] = data["generator"]

    def user_stop(self) -> bool:
        """A stop signal arrived: record it once (reason, when) and say so. True while the run is stopping."""
        if not _STOP.get("level"):
            return False
        signum = _STOP.get("signal", signal.SIGTERM)
        if self.stopped_by is None:
            self.stopped_by = signum
            t = max(0.0, time.time() - self.start_epoch) if self.start_epoch else 0.0
            self.stopped_at_s = round(min(t, self.shape.duration), 2)
            when = f" at t={t:.1f} s of {self.shape.duration:g} s" if self.start_epoch else " before the load started"
            self.stop_reason = f"interrupted by {signal_name(signum)} (stopped by the user){when}"
            grace = float(self.plan["grace_s"])
            print(f"haicap load: {self.stop_reason}: no new arrivals; running journeys get ≤ {grace:g} s",
                  flush=True)
        return True

    def wait(self, what: str, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if self.user_stop():
                return False
            if self.errors or time.monotonic() > deadline:
                if not self.errors:
                    self.errors.append(f"timed out after {timeout:.0f} s waiting for {what}")
                return False
            gevent.sleep(0.05)
        return True

    def run(self, broadcast: Callable[[str, Any], None]) -> None:
        self._broadcast = broadcast
        plan = self.plan
        if not self.wait("workers to build their data", lambda: len(self.ready) >= self.worker_count,
                         SETUP_TIMEOUT_S):
            broadcast("haicap_stop", None)
            return
        self.start_epoch = time.time() + 0.3
        self.recorder.start_epoch = self.start_epoch
        broadcast("haicap_go", self.start_epoch)
        if plan.get("status_file"):  # haicap load's own watchdog counts its bound from the start of the load
            Path(plan["status_file"]).write_text(json.dumps({"start_epoch": self.start_epoch}), encoding="utf-8")
        events = [gevent.spawn(self._event, ev) for ev in self.shape.events()]
        grace = float(plan["grace_s"])
        limit = self.shape.duration + grace + WATCHDOG_SLACK_S
        last_progress = 0.0
        while len(self.finals) < self.worker_count:
            gevent.sleep(0.25)
            t = time.time() - self.start_epoch
            if self.stopped_by is None and self.user_stop():
                broadcast("haicap_stop", None)
                limit = min(limit, t + grace + WATCHDOG_SLACK_S)
                if self.events_done:  # a national outage this run started must not outlast it
                    gevent.spawn(self._end_outage)
            if _STOP.get("level", 0) >= 2 and not self.hurried:
                self.hurried = True
                print("haicap load: stopping at once: running journeys killed (not judged)", flush=True)
                broadcast("haicap_hurry", None)
                limit = min(limit, t + WATCHDOG_SLACK_S)
            if t - last_progress >= float(plan["progress_s"]) and t < self.shape.duration + 1:
                last_progress = t
                self._progress(t)
            if self.stop_reason is None:
                reason = self._unreachable(t) or self._breached(t)
                if reason:
                    self.stop_reason = reason
                    print(f"haicap load: stopping early: {reason}", flush=True)
                    broadcast("haicap_stop", None)
                    limit = min(limit, t + grace + WATCHDOG_SLACK_S)
            if t > limit:
                self._at_time_bound(limit)
                break
        gevent.killall(events, block=False)

    def _breached(self, t: float) -> str | None:
        """--until-breach: the reason to stop at the first stage that broke (and when the load stopped)."""
        if self.watch is None or t >= self.shape.duration:
            return None
        reason: str | None = self.watch.poll(t, self.recorder)
        if reason:
            self.stopped_at_s = round(min(t, self.shape.duration), 2)
        return reason

    def _at_time_bound(self, limit: float) -> None:
        missing = sorted(set(range(self.worker_count)) - set(self.finals))
        many = self.worker_count != 1
        self.time_bound = (f"stopped at the time bound: {len(missing)} of {self.worker_count} generator "
                           f"process{'es' if many else ''} had not reported {'their' if many else 'its'} end "
                           f"{limit:.0f} s after the load started (the shape, the {float(self.plan['grace_s']):g} s "
                           f"grace window and {WATCHDOG_SLACK_S:g} s): measurements after their last report are "
                           "missing")
        print(f"haicap load: {self.time_bound}", flush=True)

    def _event(self, event: Any) -> None:
        gevent.sleep(max(0.0, self.start_epoch + event.at - time.time()))
        if self.stop_reason:
            return
        record = {"t": round(event.at, 2), "action": event.action, "seconds": round(event.seconds, 2)}
        try:
            with CounterpartClient(self.plan["national_url"], self.plan["control_token"]) as national:
                national.start_outage(("sync",), event.seconds)
            print(f"haicap load: t={event.at:.1f}s national sync outage for {event.seconds:.1f} s "
                  "(the province must queue and re-sync)", flush=True)
        except Exception as exc:  # the counterpart's control API is ours: report, do not stop the load
            record["error"] = str(exc)
        self.events_done.append(record)

    def _end_outage(self) -> None:
        try:
            with CounterpartClient(self.plan["national_url"], self.plan["control_token"]) as national:
                national.end_outage()
        except Exception as exc:  # the counterpart's control API is ours: report, do not stop the stop
            print(f"haicap load: note: could not end the national outage ({exc})", flush=True)

    def _window(self, t: float, width: int) -> tuple[float, float, Any, int, int, int]:
        from haicap.loadtests.histograms import Latency

        last = int(t) - 2  # reports arrive every second: the last complete second may still be on its way
        keys = [k for k in range(last - width + 1, last + 1) if k in self.recorder.seconds]
        latency = Latency()
        requests = errors = completed = backlog = 0
        target = 0.0
        for k in keys:
            target += self.recorder.seconds[k].target_rate / len(keys)
            s = self.recorder.seconds[k]
            latency.merge(s.latency)
            requests += s.requests
            errors += s.errors
            completed += s.completed
            backlog = max(backlog, s.backlog)
        return target, completed / max(len(keys), 1), latency, errors, backlog, requests

    def _progress(self, t: float) -> None:
        target, achieved, latency, errors, backlog, _ = self._window(t, 3)
        p95 = latency.percentile_ms(95)
        total = self.recorder.totals()
        print(f"t={t:5.0f}s  target {target:6.1f}/s  achieved {achieved:6.1f}/s  "
              f"p95 {'-' if p95 is None else f'{p95:.0f} ms':>8}  errors {total.failed} (+{errors})  "
              f"backlog {backlog}", flush=True)

    def _unreachable(self, t: float) -> str | None:
        if self.recorder.transport_errors_total < 5:
            return None
        _, _, _, errors, _, requests = self._window(t, 3)
        if requests and errors == requests:
            return (f"target unreachable: {self.recorder.transport_errors_total} connection failures and no "
                    f"answer for 3 s from {self.plan['province_url']}")
        return None


def _write_locust_outputs(env: Environment, out: Path) -> None:
    try:
        (out / "locust.html").write_text(get_html_report(env, show_download_link=False), encoding="utf-8")
    except Exception as exc:  # the HTML report is a convenience; the run's verdict does not depend on it
        print(f"haicap load: note: Locust HTML report not written ({type(exc).__name__}: {exc})", flush=True)
    stats = StatsCSV(env, PERCENTILES_TO_REPORT)
    with open(out / "locust_stats.csv", "w", newline="", encoding="utf-8") as fh:
        stats.requests_csv(csv.writer(fh))
    with open(out / "locust_failures.csv", "w", newline="", encoding="utf-8") as fh:
        stats.failures_csv(csv.writer(fh))


def _spawn_workers(count: int, port: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-P", "-m", "haicap.loadtests.locust_app", "--worker",
                              "--master-host", "127.0.0.1", "--master-port", str(port),
                              "--parent-pid", str(os.getpid())])
            for _ in range(count)]


def _stop_workers(procs: list[subprocess.Popen[bytes]], wait_s: float = 10.0) -> None:
    for proc in procs:
        end_child(proc, wait_s=wait_s, term_wait_s=5 if wait_s else 1)


def _setup_for(plan: dict[str, Any], index: int, count: int) -> dict[str, Any]:
    keys = ("province_url", "national_url", "control_token", "officer_token", "province_code", "capabilities",
            "sync_sla_seconds", "communes", "scenario_files", "only", "shape", "max_rate", "max_in_flight",
            "seed", "pool_size", "grace_s", "allowed_hosts")
    setup = {k: plan[k] for k in keys}
    setup["max_in_flight"] = max(1, int(plan["max_in_flight"]) // count)
    return {**setup, "worker_index": index, "worker_count": count}


def run_master(plan: dict[str, Any], *, parent_pid: int | None = None) -> int:
    setup_logging("WARNING")
    _install_stop_handlers(parent_pid, lambda level: None)  # the controller acts on it
    out = Path(plan["out"])
    env = Environment(user_classes=[Driver])
    workers = int(plan["workers"])
    procs: list[subprocess.Popen[bytes]] = []
    if workers == 0:
        controller = Controller(plan, env, 1)
        runner: Any = env.create_local_runner()
        _LOCAL_SEND["send"] = controller.receive

        def broadcast(kind: str, data: Any) -> None:
            if kind == "haicap_go":
                _GO.set(data)
            elif kind == "haicap_stop":
                _on_stop(env, None)
            elif kind == "haicap_hurry":
                _on_hurry(env, None)

        _SETUP.set(_setup_for(plan, 0, 1))
        runner.start(1, spawn_rate=1)
    else:
        controller = Controller(plan, env, workers)
        runner = env.create_master_runner(plan["master_bind"], int(plan["master_port"]))
        for kind in ("haicap_ready", "haicap_report", "haicap_final"):
            runner.register_message(kind, lambda environment, msg, kind=kind, **_: controller.receive(kind, msg.data))
        hellos: list[str] = []  # worker node ids whose message handlers are in place, in order of arrival

        def on_hello(environment: Environment, msg: Any, **_: Any) -> None:
            if msg.node_id not in hellos:
                hellos.append(msg.node_id)

        runner.register_message("haicap_hello", on_hello)
        if plan["spawn_workers"]:
            procs = _spawn_workers(workers, int(plan["master_port"]))
        else:
            print(f"haicap load: master on {plan['master_bind']}:{plan['master_port']}, waiting for {workers} "
                  "worker(s) (haicap load --worker --master-host HOST --master-port PORT)", flush=True)
        if not controller.wait(f"{workers} workers to connect", lambda: len(hellos) >= workers,
                               float(plan["connect_timeout_s"])):
            runner.quit()
            _stop_workers(procs, 2.0 if controller.stopped_by else 10.0)
            return _finish(controller, env, out, plan)
        for index, node_id in enumerate(hellos[:workers]):
            runner.send_message("haicap_setup", _setup_for(plan, index, workers), client_id=node_id)

        def broadcast(kind: str, data: Any) -> None:
            runner.send_message(kind, data)

        runner.start(workers, spawn_rate=workers)
    metrics = _start_metrics(plan, controller)
    try:
        controller.run(broadcast)
    finally:
        if metrics is not None:
            metrics.shutdown()
        runner.quit()
        _stop_workers(procs, 0.0 if controller.time_bound else 2.0 if controller.stopped_by else 10.0)
    return _finish(controller, env, out, plan)


def _start_metrics(plan: dict[str, Any], controller: Controller) -> Any:
    """The OpenMetrics endpoint over the controller's merged recorder, when the plan asks for one."""
    port = int(plan.get("metrics_port") or 0)
    if not port:
        return None
    from haicap.loadtests.metrics import serve_metrics

    bind = str(plan.get("metrics_bind") or "127.0.0.1")
    try:
        server = serve_metrics(lambda: controller.recorder, bind, port)
    except OSError as exc:
        controller.errors.append(f"--metrics-port {port}: cannot listen on {bind}:{port}: {exc.strerror or exc}")
        return None
    print(f"haicap load: OpenMetrics at http://{bind}:{port}/metrics while the run lasts", flush=True)
    return server


def _finish(controller: Controller, env: Environment, out: Path, plan: dict[str, Any]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    _write_locust_outputs(env, out)
    raw = {
        "start_epoch": controller.start_epoch,
        "report": controller.recorder.take_report(final=True),
        "generators": list(controller.finals.values()),
        "workers": controller.worker_count,
        "stop_reason": controller.stop_reason,
        "stopped_by_signal": controller.stopped_by,
        "stopped_at_s": controller.stopped_at_s,
        "errors": controller.errors,
        "events": controller.events_done,
        "time_bound": controller.time_bound,
        "until_breach": controller.watch.judged if controller.watch is not None else None,
    }
    (out / "raw.json").write_text(json.dumps(raw), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m haicap.loadtests.locust_app")
    parser.add_argument("plan", nargs="?", type=Path)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=5557)
    parser.add_argument("--parent-pid", type=int, help="stop when this process (haicap load) dies")
    args = parser.parse_args(argv)
    try:
        if args.worker:
            return run_worker(args.master_host, args.master_port, parent_pid=args.parent_pid)
        if args.plan is None:
            raise HaicapError("give the run plan file (or --worker)")
        plan = json.loads(args.plan.read_text(encoding="utf-8"))
        args.plan.unlink(missing_ok=True)  # it holds tokens: gone as soon as read
        return run_master(plan, parent_pid=args.parent_pid)
    except HaicapError as exc:
        print(f"haicap load: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
