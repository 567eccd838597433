"""What a load run measures, kept as additive deltas so workers' reports merge exactly on the master.

A worker records into a :class:`Recorder`; every few seconds :meth:`Recorder.take_report` hands over what
was recorded since the last report (plain dicts, histograms HDR-encoded) and starts afresh; the master adds
reports into its own :class:`Recorder` with :meth:`Recorder.add_report`. Counts add, histograms add, per-second
samples add (rates, in-flight, backlog) or take the maximum (target rate, generator CPU).

Latencies are timed from each journey's *intended* start: the first request of a journey carries the time the
arrival waited in the generator (coordinated omission corrected); steps are what the scenario SLOs speak about.

A step run also keeps each stage's measurements apart (:meth:`Recorder.stage`): every recording method takes the
``stage`` of the journey's intended start and records into that stage's own Recorder as well, so a stage is
judged by the run's SLO gates on exactly its own journeys.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any

from haicap.loadtests.histograms import Latency

__all__ = ["Recorder", "SecondSample"]

_SEP = "\x1f"


@dataclass
class SecondSample:
    latency: Latency = field(default_factory=Latency)
    requests: int = 0
    errors: int = 0
    started: int = 0
    completed: int = 0
    target_rate: float = 0.0
    in_flight: int = 0
    backlog: int = 0
    cpu: float = 0.0
    #: workers that sampled in-flight/backlog/cpu this second (those add up over workers, not over reports)
    sampled: int = 0

    def add(self, other: SecondSample) -> None:
        self.latency.merge(other.latency)
        self.requests += other.requests
        self.errors += other.errors
        self.started += other.started
        self.completed += other.completed
        self.target_rate = max(self.target_rate, other.target_rate)
        self.in_flight += other.in_flight
        self.backlog += other.backlog
        self.cpu = max(self.cpu, other.cpu)
        self.sampled += other.sampled

    def to_wire(self) -> dict[str, Any]:
        return {"h": self.latency.encode(), "r": self.requests, "e": self.errors, "s": self.started,
                "c": self.completed, "t": self.target_rate, "i": self.in_flight, "b": self.backlog,
                "u": self.cpu, "n": self.sampled}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> SecondSample:
        return cls(Latency.decode(d["h"]), d["r"], d["e"], d["s"], d["c"], d["t"], d["i"], d["b"], d["u"], d["n"])


#: How many of the slowest journeys the summary names with their trace ids.
SLOWEST_KEPT = 10


@dataclass
class Counted:
    latency: Latency = field(default_factory=Latency)
    ok: int = 0
    failed: int = 0

    def add(self, other: Counted) -> None:
        self.latency.merge(other.latency)
        self.ok += other.ok
        self.failed += other.failed

    def to_wire(self) -> dict[str, Any]:
        return {"h": self.latency.encode(), "ok": self.ok, "failed": self.failed}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Counted:
        return cls(Latency.decode(d["h"]), d["ok"], d["failed"])


class Recorder:
    """Measurements of one worker (or, on the master, of all of them)."""

    def __init__(self, start_epoch: float | None = None) -> None:
        self.start_epoch = time.time() if start_epoch is None else start_epoch
        self._reset()
        self.transport_errors_total = 0
        self.requests_total = 0  # recorded here since the start (reports hand over deltas; this stays)

    def _reset(self) -> None:
        self.requests: dict[str, Counted] = {}
        self.steps: dict[str, Counted] = {}  # "scenario\x1fstep label"
        self.journeys: dict[str, Counted] = {}  # per scenario: whole-journey latency, passed/failed
        self.seconds: dict[int, SecondSample] = {}
        self.lag = Latency()
        #: MaHoSo -> [latest status the SUT reported, whether the journey ended knowing it for sure]
        self.accepted: dict[str, list[Any]] = {}
        self.expectations: list[list[Any]] = []  # [MaHoSo, TrangThaiHoSo, deadline epoch, SLA s]
        self.transport_errors = 0
        self.failures_sample: dict[str, str] = {}  # a few failure messages by step, for the summary
        #: host -> requests never sent because the system under test pointed the generator at a host not allowed
        self.refused: dict[str, int] = {}
        #: stage index -> the measurements of the journeys whose intended start fell in that stage (step runs)
        self.stages: dict[int, Recorder] = {}
        #: the slowest journeys with their W3C trace ids: [ms, scenario, trace id, passed], at most SLOWEST_KEPT
        self.slowest: list[list[Any]] = []

    def stage(self, index: int) -> Recorder:
        """The measurements of stage ``index`` (created on first use)."""
        rec = self.stages.get(index)
        if rec is None:
            rec = self.stages[index] = Recorder(self.start_epoch)
        return rec

    # -- recording (worker) ------------------------------------------------------------------------
    def second(self, now: float | None = None) -> SecondSample:
        key = int((time.time() if now is None else now) - self.start_epoch)
        sample = self.seconds.get(key)
        if sample is None:
            sample = self.seconds[key] = SecondSample()
        return sample

    def request(self, name: str, ms: float, failed: bool, transport_error: bool = False,
                stage: int | None = None) -> None:
        if stage is not None:
            self.stage(stage).request(name, ms, failed, transport_error)
        entry = self.requests.get(name) or self.requests.setdefault(name, Counted())
        entry.latency.record_ms(ms)
        sample = self.second()
        sample.latency.record_ms(ms)
        sample.requests += 1
        self.requests_total += 1
        if failed:
            entry.failed += 1
            sample.errors += 1
        else:
            entry.ok += 1
        if transport_error:
            self.transport_errors += 1
            self.transport_errors_total += 1

    def refused_host(self, host: str) -> None:
        self.refused[host] = self.refused.get(host, 0) + 1

    def step(self, scenario: str, label: str, ms: float, passed: bool, message: str = "",
             stage: int | None = None) -> None:
        if stage is not None:
            self.stage(stage).step(scenario, label, ms, passed)
        key = f"{scenario}{_SEP}{label}"
        entry = self.steps.get(key) or self.steps.setdefault(key, Counted())
        entry.latency.record_ms(ms)
        if passed:
            entry.ok += 1
        else:
            entry.failed += 1
            if message and len(self.failures_sample) < 50:
                self.failures_sample.setdefault(key, message[:300])

    def journey(self, scenario: str, ms: float, passed: bool, stage: int | None = None,
                trace_id: str | None = None) -> None:
        if stage is not None:
            self.stage(stage).journey(scenario, ms, passed)
        if trace_id is not None:
            self._keep_slowest([[round(ms, 3), scenario, trace_id, passed]])
        entry = self.journeys.get(scenario) or self.journeys.setdefault(scenario, Counted())
        entry.latency.record_ms(ms)
        if passed:
            entry.ok += 1
        else:
            entry.failed += 1
        self.second().completed += 1

    def _keep_slowest(self, entries: list[list[Any]]) -> None:
        self.slowest = heapq.nlargest(SLOWEST_KEPT, [*self.slowest, *entries], key=lambda e: e[0])

    def unfinished_journey(self, scenario: str, ms: float, stage: int | None = None) -> None:
        """A journey killed while still running at the end: a failed journey, but not a completion."""
        if stage is not None:
            self.stage(stage).unfinished_journey(scenario, ms)
        entry = self.journeys.get(scenario) or self.journeys.setdefault(scenario, Counted())
        entry.latency.record_ms(ms)
        entry.failed += 1

    def arrival(self, lag_ms: float, stage: int | None = None) -> None:
        if stage is not None:
            self.stage(stage).arrival(lag_ms)
        self.lag.record_ms(max(lag_ms, 0.0))
        self.second().started += 1

    def gauge(self, target_rate: float, in_flight: int, backlog: int, cpu: float) -> None:
        sample = self.second()
        sample.target_rate = max(sample.target_rate, target_rate)
        sample.in_flight, sample.backlog, sample.cpu, sample.sampled = in_flight, backlog, max(sample.cpu, cpu), 1

    def dossier(self, ma_ho_so: str, status: str | None, certain: bool) -> None:
        self.accepted[ma_ho_so] = [status, certain]

    # -- reports -----------------------------------------------------------------------------------
    def take_report(self, final: bool = False) -> dict[str, Any]:
        """Everything recorded since the last report (seconds still running stay unless ``final``)."""
        current = int(time.time() - self.start_epoch)
        done = {k: v for k, v in self.seconds.items() if final or k < current}
        report = {
            "requests": {k: v.to_wire() for k, v in self.requests.items()},
            "steps": {k: v.to_wire() for k, v in self.steps.items()},
            "journeys": {k: v.to_wire() for k, v in self.journeys.items()},
            "seconds": {str(k): v.to_wire() for k, v in done.items()},
            "lag": self.lag.encode(),
            "accepted": self.accepted,
            "expectations": self.expectations,
            "transport_errors": self.transport_errors,
            "failures_sample": self.failures_sample,
            "refused": self.refused,
            "slowest": self.slowest,
            "stages": {str(i): rec.take_report(final=True) for i, rec in self.stages.items()},
        }
        running = {k: v for k, v in self.seconds.items() if k not in done}
        self._reset()
        self.seconds = running
        return report

    def add_report(self, report: dict[str, Any]) -> None:
        for attr in ("requests", "steps", "journeys"):
            mine: dict[str, Counted] = getattr(self, attr)
            for key, wire in report[attr].items():
                mine.setdefault(key, Counted()).add(Counted.from_wire(wire))
        for key, wire in report["seconds"].items():
            self.seconds.setdefault(int(key), SecondSample()).add(SecondSample.from_wire(wire))
        self.lag.merge(Latency.decode(report["lag"]))
        self.accepted.update(report["accepted"])
        self.expectations.extend(report["expectations"])
        self.transport_errors += report["transport_errors"]
        self.transport_errors_total += report["transport_errors"]
        for key, message in report["failures_sample"].items():
            if len(self.failures_sample) < 50:
                self.failures_sample.setdefault(key, message)
        self._keep_slowest(list(report.get("slowest") or []))
        for host, count in (report.get("refused") or {}).items():
            self.refused[host] = self.refused.get(host, 0) + int(count)
        for index, stage_report in (report.get("stages") or {}).items():
            self.stage(int(index)).add_report(stage_report)

    # -- views (master) ----------------------------------------------------------------------------
    @staticmethod
    def split_step_key(key: str) -> tuple[str, str]:
        scenario, _, label = key.partition(_SEP)
        return scenario, label

    def totals(self) -> Counted:
        out = Counted()
        for entry in self.requests.values():
            out.add(entry)
        return out
