"""SLO gates: each scenario's and step's p95/p99 and error-rate objectives judged against what the run measured.

The objectives come from the scenario YAML (``slo`` of the scenario, overridden per step); step latency is
timed from the journey's intended start. A scenario's error rate is the share of its journeys that did not
pass every step; a step's, the share of its executions that failed. A status change that reached the national
side after its ``expect_synced`` deadline breaches the sync SLA. Every breach is listed; any breach fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haicap.loadtests.recorder import Counted, Recorder
from haicap.scenarios.engine import SLO, Scenario

__all__ = ["evaluate_slos", "mix_slo"]


def _judge(breaches: list[dict[str, Any]], scenario: str, step: str | None, slo: SLO, stats: Counted) -> None:
    total = stats.ok + stats.failed
    if not total:
        return
    for metric, limit, pct in (("p95_ms", slo.p95_ms, 95), ("p99_ms", slo.p99_ms, 99)):
        actual = stats.latency.percentile_ms(pct)
        if limit is not None and actual is not None and actual > limit:
            breaches.append({"scenario": scenario, "step": step, "metric": metric, "limit": limit,
                             "actual": actual, "samples": total})
    rate = stats.failed / total
    if slo.error_rate is not None and rate > slo.error_rate:
        breaches.append({"scenario": scenario, "step": step, "metric": "error_rate", "limit": slo.error_rate,
                         "actual": round(rate, 4), "samples": total})


def _step_slo(scenario: Scenario, label: str) -> SLO:
    """The strictest merged SLO among the scenario's steps with this label."""
    slos = [scenario.step_slo(call) for call in scenario.steps if call.label == label] or [scenario.slo]

    def low(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return SLO(low([s.p95_ms for s in slos]), low([s.p99_ms for s in slos]), low([s.error_rate for s in slos]))


def evaluate_slos(recorder: Recorder, scenarios: Mapping[str, Scenario],
                  sync: Mapping[str, Any] | None = None) -> dict[str, Any]:
    breaches: list[dict[str, Any]] = []
    for scenario_id, stats in sorted(recorder.journeys.items()):
        scenario = scenarios.get(scenario_id)
        if scenario is not None:
            _judge(breaches, scenario_id, None, SLO(error_rate=scenario.slo.error_rate), stats)
    for key, stats in sorted(recorder.steps.items()):
        scenario_id, label = Recorder.split_step_key(key)
        scenario = scenarios.get(scenario_id)
        if scenario is not None:
            _judge(breaches, scenario_id, label, _step_slo(scenario, label), stats)
    if sync and sync.get("late_count"):
        breaches.append({"scenario": None, "step": "expect_synced", "metric": "sync_sla",
                         "limit": "every expected status at the national side by its deadline",
                         "actual": f"{sync['late_count']} of {sync['checked']} late or never received",
                         "samples": sync["checked"]})
    return {"passed": not breaches, "breaches": breaches}


def mix_slo(scenarios: Mapping[str, Scenario], ids: list[str]) -> dict[str, float | None]:
    """One SLO for the whole mix (the strictest scenario-level objectives), used to judge load stages."""
    chosen = [scenarios[i].slo for i in ids if i in scenarios]

    def low(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return {"p95_ms": low([s.p95_ms for s in chosen]), "p99_ms": low([s.p99_ms for s in chosen]),
            "error_rate": low([s.error_rate for s in chosen])}
