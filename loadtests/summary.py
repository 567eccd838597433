"""The files a load run leaves behind: summary.json, timeseries.json and (step shape) stages.json.

Built from the merged measurements (:class:`~haicap.loadtests.recorder.Recorder`) after the run. Rates are
journeys (scenario iterations) per second: ``target`` is what the shape asked for (after the ``--max-rate``
clip), ``achieved`` what the generator started, ``completed`` what finished; latencies are of HTTP requests
timed from the journey's intended start. summary.json is validated against ``summary.schema.json``.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path
from typing import Any

import jsonschema

from haicap.loadtests.histograms import Latency
from haicap.loadtests.recorder import Recorder, SecondSample
from haicap.loadtests.shapes import LoadShape, arrival_times

__all__ = ["SUMMARY_SCHEMA", "build_stages", "build_timeseries", "validate_summary"]

SUMMARY_SCHEMA = Path(__file__).resolve().parent / "summary.schema.json"
CPU_LIMIT = 80.0


class _Arrivals:
    """The intended arrival times of the run, for exact target rates over any window."""

    def __init__(self, shape: LoadShape, max_rate: float) -> None:
        self.times = [t for _, t in arrival_times(shape, max_rate)]

    def rate(self, start: float, end: float) -> float:
        count = bisect.bisect_left(self.times, end) - bisect.bisect_left(self.times, start)
        return count / max(end - start, 1e-9)


def build_timeseries(recorder: Recorder, shape: LoadShape, max_rate: float) -> dict[str, Any]:
    arrivals = _Arrivals(shape, max_rate)
    last = max([*recorder.seconds, math.ceil(shape.duration) - 1])
    samples = []
    for t in range(0, last + 1):
        s = recorder.seconds.get(t) or SecondSample()
        samples.append({
            "t": t,
            "target_rate": round(arrivals.rate(t, t + 1), 3) if t < shape.duration else 0.0,
            "achieved_rate": s.started,
            "completed_rate": s.completed,
            "p50_ms": s.latency.percentile_ms(50),
            "p95_ms": s.latency.percentile_ms(95),
            "p99_ms": s.latency.percentile_ms(99),
            "errors": s.errors,
            "requests": s.requests,
            "in_flight": s.in_flight,
            "backlog": s.backlog,
            "generator_cpu": round(s.cpu, 1),
        })
    return {"interval_s": 1, "samples": samples}


def build_stages(recorder: Recorder, shape: LoadShape, max_rate: float, slo: dict[str, Any]) -> dict[str, Any]:
    arrivals = _Arrivals(shape, max_rate)
    stages = []
    for stage in shape.stages() or []:
        latency = Latency()
        requests = errors = started = completed = backlog = 0
        cpu = 0.0
        for t in range(int(stage.start), math.ceil(stage.end)):
            s = recorder.seconds.get(t)
            if s is None:
                continue
            latency.merge(s.latency)
            requests += s.requests
            errors += s.errors
            started += s.started
            completed += s.completed
            backlog = max(backlog, s.backlog)
            cpu = max(cpu, s.cpu)
        duration = stage.end - stage.start
        stages.append({
            "index": stage.index,
            "target_rate": round(arrivals.rate(stage.start, stage.end), 3),
            "achieved_rate": round(started / duration, 3),
            "completed_rate": round(completed / duration, 3),
            "duration_s": round(duration, 3),
            "requests": requests,
            "errors": errors,
            "error_rate": round(errors / requests, 5) if requests else 0.0,
            "p50_ms": latency.percentile_ms(50),
            "p95_ms": latency.percentile_ms(95),
            "p99_ms": latency.percentile_ms(99),
            "generator_kept_up": cpu <= CPU_LIMIT and backlog == 0,
        })
    return {"slo": slo, "stages": stages}


def validate_summary(summary: dict[str, Any]) -> None:
    schema = json.loads(SUMMARY_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(summary)
