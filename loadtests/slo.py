"""SLO gates: each scenario's and step's p95/p99 and error-rate objectives judged against what the run measured.

The objectives come from the scenario YAML (``slo`` of the scenario, overridden per step); step latency is
timed from the journey's intended start. A scenario's error rate is the share of its journeys that did not
pass every step; a step's, the share of its executions that failed. A status change that reached the national
side after its ``expect_synced`` deadline breaches the sync SLA. Every breach is listed; any breach fails.
A percentile gate over too few samples to mean anything (fewer than :func:`min_samples`: 20 for p95, 100 for
p99) is neither passed nor breached: it is listed under ``insufficient`` ("insufficient samples"), so a p99
is never judged on a short run's maximum. Percentiles are nearest-rank (see :mod:`~haicap.loadtests.histograms`).

The gates are plain data (:func:`gates`: one per scenario and one per scenario step), and :func:`judge` applies
them to any set of measurements: the whole run (:func:`evaluate_slos`) and each stage of a step run
(:func:`~haicap.loadtests.summary.build_stages`) are judged by the very same rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from haicap.loadtests.recorder import Counted, Recorder
from haicap.scenarios.engine import SLO, Scenario

__all__ = ["evaluate_slos", "gate_counts", "gates", "judge", "min_samples", "mix_slo"]


def min_samples(percentile: float) -> int:
    """Fewest samples for which the ``percentile``-th is not simply the largest: 20 for p95, 100 for p99.

    Below that, at least one sample lies above the percentile only by luck, and a "p99" is the maximum.
    """
    return math.ceil(round(100 / (100 - percentile), 9))


def _judge(breaches: list[dict[str, Any]], insufficient: list[dict[str, Any]], scenario: str, step: str | None,
           slo: SLO, stats: Counted) -> None:
    total = stats.ok + stats.failed
    if not total:
        return
    for metric, limit, pct in (("p95_ms", slo.p95_ms, 95), ("p99_ms", slo.p99_ms, 99)):
        if limit is None:
            continue
        actual = stats.latency.percentile_ms(pct)
        if total < min_samples(pct):
            insufficient.append({"scenario": scenario, "step": step, "metric": metric, "limit": limit,
                                 "actual": actual, "samples": total, "needed": min_samples(pct)})
        elif actual is not None and actual > limit:
            breaches.append({"scenario": scenario, "step": step, "metric": metric, "limit": limit,
                             "actual": actual, "samples": total})
    rate = stats.failed / total
    if slo.error_rate is not None and rate > slo.error_rate:
        breaches.append({"scenario": scenario, "step": step, "metric": "error_rate", "limit": slo.error_rate,
                         "actual": round(rate, 4), "samples": total})


#: Steps that in load mode only record an expectation (verified after the drain, by the sync-SLA gate): their
#: microseconds say nothing, so only their error rate is judged.
EXPECTATION_STEPS = frozenset({"expect_synced"})


def _step_slo(scenario: Scenario, label: str) -> SLO:
    """The strictest merged SLO among the scenario's steps with this label."""
    calls = [call for call in scenario.steps if call.label == label]
    slos = [scenario.step_slo(call) for call in calls] or [scenario.slo]
    if calls and all(call.step in EXPECTATION_STEPS for call in calls):
        slos = [SLO(error_rate=slo.error_rate) for slo in slos]

    def low(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return SLO(low([s.p95_ms for s in slos]), low([s.p99_ms for s in slos]), low([s.error_rate for s in slos]))


def _gate(scenario: str, step: str | None, slo: SLO) -> dict[str, Any]:
    return {"scenario": scenario, "step": step, "p95_ms": slo.p95_ms, "p99_ms": slo.p99_ms,
            "error_rate": slo.error_rate}


def gates(scenarios: Mapping[str, Scenario], ids: Iterable[str],
          steps: Iterable[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """The SLO gates of scenarios ``ids``, as JSON-able data: per scenario its journey error rate (``step``
    None), per step label of the scenario its p95/p99/error rate (the strictest among steps with that label);
    ``steps`` adds (scenario, label) pairs measured but not in the scenario file (judged on the scenario's SLO)."""
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    for scenario_id in ids:
        scenario = scenarios.get(scenario_id)
        if scenario is None:
            continue
        out[(scenario_id, None)] = _gate(scenario_id, None, SLO(error_rate=scenario.slo.error_rate))
        for call in scenario.steps:
            out.setdefault((scenario_id, call.label), _gate(scenario_id, call.label, _step_slo(scenario, call.label)))
    for scenario_id, label in steps:
        scenario = scenarios.get(scenario_id)
        if scenario is not None:
            out.setdefault((scenario_id, label), _gate(scenario_id, label, _step_slo(scenario, label)))
    return list(out.values())


def judge(journeys: Mapping[str, Counted], steps: Mapping[str, Counted],
          slo_gates: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Judge measured journeys (by scenario) and steps (``Recorder`` step keys) against ``slo_gates`` (from
    :func:`gates`): ``{"passed", "breaches", "insufficient"}``. Measurements without a gate are not judged."""
    by_key = {(g["scenario"], g["step"]): g for g in slo_gates}
    breaches: list[dict[str, Any]] = []
    insufficient: list[dict[str, Any]] = []
    measured = [((scenario_id, None), stats) for scenario_id, stats in sorted(journeys.items())]
    measured += [(Recorder.split_step_key(key), stats) for key, stats in sorted(steps.items())]
    for (scenario_id, step), stats in measured:
        gate = by_key.get((scenario_id, step))
        if gate is not None:
            _judge(breaches, insufficient, scenario_id, step,
                   SLO(gate.get("p95_ms"), gate.get("p99_ms"), gate.get("error_rate")), stats)
    return {"passed": not breaches, "breaches": breaches, "insufficient": insufficient}


def evaluate_slos(recorder: Recorder, scenarios: Mapping[str, Scenario],
                  sync: Mapping[str, Any] | None = None) -> dict[str, Any]:
    measured_steps = [Recorder.split_step_key(key) for key in recorder.steps]
    ids = sorted({*recorder.journeys, *(scenario_id for scenario_id, _ in measured_steps)})
    result = judge(recorder.journeys, recorder.steps, gates(scenarios, ids, measured_steps))
    if sync and sync.get("late_count"):
        result["breaches"].append({"scenario": None, "step": "expect_synced", "metric": "sync_sla",
                                   "limit": "every expected status at the national side by its deadline",
                                   "actual": f"{sync['late_count']} of {sync['checked']} late or never received",
                                   "samples": sync["checked"]})
        result["passed"] = False
    return result


def mix_slo(scenarios: Mapping[str, Scenario], ids: list[str]) -> dict[str, Any]:
    """The SLO a step run's stages are judged against: ``gates`` (:func:`gates` of the mix: a stage meets the
    SLO only if it passes every gate the run is gated on, with enough samples), plus the strictest
    scenario-level p95/p99/error rate of the mix, a one-line summary for figures."""
    chosen = [scenarios[i].slo for i in ids if i in scenarios]

    def low(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return {"p95_ms": low([s.p95_ms for s in chosen]), "p99_ms": low([s.p99_ms for s in chosen]),
            "error_rate": low([s.error_rate for s in chosen]), "gates": gates(scenarios, ids)}


def gate_counts(result: Mapping[str, Any], slo_gates: Iterable[Mapping[str, Any]],
                measured: Iterable[tuple[str, str | None]], *, sync_checked: bool = False) -> dict[str, Any]:
    """How many gates (one per scenario/step and metric with a limit) were judged, passed, breached or not
    judged: a gate is not judged when it had too few samples (``insufficient``) or none at all. The sync-SLA
    gate counts once when the run recorded expectations (it is then in ``breaches`` or passed)."""
    seen = set(measured)
    breached = {(b["scenario"], b["step"], b["metric"]) for b in result["breaches"]}
    short = {(i["scenario"], i["step"], i["metric"]) for i in result["insufficient"]}
    counts = {"total": 0, "judged": 0, "passed": 0, "breached": 0, "not_judged": 0}
    unmeasured: list[dict[str, Any]] = []
    for gate in slo_gates:
        for metric in ("p95_ms", "p99_ms", "error_rate"):
            if gate.get(metric) is None:
                continue
            key = (gate["scenario"], gate["step"], metric)
            counts["total"] += 1
            if key in short or (gate["scenario"], gate["step"]) not in seen:
                counts["not_judged"] += 1
                if key not in short:
                    unmeasured.append({"scenario": gate["scenario"], "step": gate["step"], "metric": metric})
            else:
                counts["judged"] += 1
                counts["breached" if key in breached else "passed"] += 1
    if any(b["metric"] == "sync_sla" for b in result["breaches"]) or sync_checked:
        counts["total"] += 1
        counts["judged"] += 1
        counts["breached" if any(b["metric"] == "sync_sla" for b in result["breaches"]) else "passed"] += 1
    return {**counts, "unmeasured": unmeasured}
