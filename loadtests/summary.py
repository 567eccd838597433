"""The files a load run leaves behind: summary.json, timeseries.json and (step shape) stages.json.

Built from the merged measurements (:class:`~haicap.loadtests.recorder.Recorder`) after the run. Rates are
journeys (scenario iterations) per second: ``target`` is what the shape asked for (after the ``--max-rate``
clip), ``achieved`` what the generator started, ``completed`` what finished; latencies are of HTTP requests
timed from the journey's intended start. summary.json is validated against ``summary.schema.json``.

A timeseries second's ``target_rate`` is the number of arrivals planned in that second. A stage of a step run
holds the journeys whose *intended* start falls in it (:class:`~haicap.loadtests.shapes.StageIndex`): each
journey, with its steps and requests, counts in exactly one stage, and the stages add up to the run. Its
``target_rate`` is the shape's rate in the stage; it meets the SLO only by the rule of the run's gate
(:func:`~haicap.loadtests.slo.judge`: every scenario and step p95/p99/error-rate gate, with the same minimum
sample counts) applied to the stage's own measurements, recorded per stage by the generator.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from haicap.loadtests.recorder import Counted, Recorder, SecondSample
from haicap.loadtests.shapes import LoadShape, Stage, StageIndex, arrival_times
from haicap.loadtests.slo import gate_counts, judge

__all__ = ["NO_STAGE_MEASUREMENTS", "SUMMARY_SCHEMA", "build_stages", "build_timeseries", "planned_per_second",
           "validate_summary"]

SUMMARY_SCHEMA = Path(__file__).resolve().parent / "summary.schema.json"
CPU_LIMIT = 80.0
#: why a stage is not judged when the generator recorded no measurements per stage
NO_STAGE_MEASUREMENTS = ("the run recorded no per-stage measurements of its scenarios and steps, so the stage "
                         "cannot be judged by the SLO gates (the requests of the stage are shown, not judged)")


def planned_per_second(shape: LoadShape, max_rate: float) -> Counter[int]:
    """Arrivals planned in each second of the run (second ``t`` is [t, t + 1))."""
    return Counter(int(t) for _, t in arrival_times(shape, max_rate))


def build_timeseries(recorder: Recorder, shape: LoadShape, max_rate: float) -> dict[str, Any]:
    planned = planned_per_second(shape, max_rate)
    last = max([*recorder.seconds, math.ceil(shape.duration) - 1])
    samples = []
    for t in range(0, last + 1):
        s = recorder.seconds.get(t) or SecondSample()
        samples.append({
            "t": t,
            "target_rate": planned.get(t, 0),
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


def _generator_kept_up(recorder: Recorder, stage: Stage) -> bool:
    """CPU ≤ 80 % and no backlog in every second the stage touches (generator gauges are sampled by the clock)."""
    seconds = [recorder.seconds[t] for t in range(math.floor(stage.start), math.ceil(stage.end))
               if t in recorder.seconds]
    return all(s.cpu <= CPU_LIMIT and s.backlog == 0 for s in seconds)


def _stage_entry(stage: Stage, target: float, planned: int, started: int, completed: int, totals: Counted,
                 kept_up: bool, verdict: dict[str, Any]) -> dict[str, Any]:
    duration = stage.end - stage.start
    requests = totals.ok + totals.failed
    return {
        "index": stage.index,
        "target_rate": round(target, 3),
        "planned": planned,
        "started": started,
        "achieved_rate": round(started / duration, 3),
        "completed_rate": round(completed / duration, 3),
        "duration_s": round(duration, 3),
        "requests": requests,
        "errors": totals.failed,
        "error_rate": round(totals.failed / requests, 5) if requests else 0.0,
        "p50_ms": totals.latency.percentile_ms(50),
        "p95_ms": totals.latency.percentile_ms(95),
        "p99_ms": totals.latency.percentile_ms(99),
        "generator_kept_up": kept_up,
        "gates": verdict,
    }


def build_stages(recorder: Recorder, shape: LoadShape, max_rate: float, slo: Mapping[str, Any],
                 by_stage: Mapping[int, Recorder] | None = None) -> dict[str, Any]:
    """stages.json of a step run: one entry per stage, judged by the run's SLO gates on its own measurements.

    ``slo`` is :func:`~haicap.loadtests.slo.mix_slo` (its ``gates`` are the rule); ``by_stage`` the measurements
    of the journeys whose intended start fell in each stage (stage index → Recorder). Each entry's ``gates`` is
    ``{"judged", "passed", "breaches", "insufficient", "note"}``: without ``by_stage`` (or without gates) a
    stage is not judged, and its requests are then those recorded in the seconds whose middle falls in it (the
    seconds after the end in the last stage's).
    """
    index = StageIndex(shape, max_rate)
    slo_gates = slo.get("gates")
    last = math.nextafter(index.stages[-1].end, -math.inf) if index.stages else 0.0  # the tail: the last stage's
    stages = []
    for stage in index.stages:
        target = min(stage.target_rate, max_rate)
        kept_up = _generator_kept_up(recorder, stage)
        if by_stage is not None and slo_gates is not None:
            measured = by_stage.get(stage.index) or Recorder(recorder.start_epoch)
            verdict = {"judged": True, **judge(measured.journeys, measured.steps, slo_gates), "note": None}
            keys = [(j, None) for j in measured.journeys] + [Recorder.split_step_key(k) for k in measured.steps]
            counts = gate_counts(verdict, slo_gates, keys)
            verdict["counts"] = {k: counts[k] for k in ("total", "judged", "passed", "breached", "not_judged")}
            started = sum(s.started for s in measured.seconds.values())
            completed = sum(s.completed for s in measured.seconds.values())
            totals = measured.totals()
        else:
            seconds = [s for t, s in recorder.seconds.items() if index.of_time(min(t + 0.5, last)) == stage.index]
            totals = Counted()
            for s in seconds:
                totals.latency.merge(s.latency)
                totals.failed += s.errors
                totals.ok += s.requests - s.errors
            started, completed = sum(s.started for s in seconds), sum(s.completed for s in seconds)
            note = NO_STAGE_MEASUREMENTS if by_stage is None else "the run's SLO gates were not given"
            verdict = {"judged": False, "passed": None, "breaches": [], "insufficient": [], "note": note}
        stages.append(_stage_entry(stage, target, index.planned(stage.index), started, completed, totals, kept_up,
                                   verdict))
    return {"slo": dict(slo), "stages": stages}


def validate_summary(summary: dict[str, Any]) -> None:
    schema = json.loads(SUMMARY_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(summary)
