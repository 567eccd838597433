"""Will a run judge its SLO gates? The samples each gate can expect, from the shape and the mix, before any load.

A percentile gate needs its minimum samples (:func:`~haicap.loadtests.slo.min_samples`: 20 for a p95, 100 for a
p99) or it is "not judged". How many it gets follows from the shape alone: the arrivals (the integral of the
rate, clipped to the rate cap), the share of each scenario in the mix at each arrival (the cutover's storm and
burst phases ask for their own journeys) and how often the scenario runs the step. So before the load starts,
haicap can say which gates the run cannot judge, and the shortest duration that would judge them all; a run
without ``--duration`` takes that duration (between :data:`AUTO_MIN_S` and :data:`AUTO_MAX_S`).

The estimate is an expectation; the mix is drawn at random, so a gate is counted as judgeable only with a
margin (:data:`MARGIN`) above its minimum. Journeys that fail early run fewer steps: the estimate is an upper
bound, which is why the run still reports the gates it did not judge.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haicap.loadtests.shapes import DEFAULT_MIX, LoadShape, ShapeSpec, arrival_times
from haicap.loadtests.slo import gates, min_samples
from haicap.scenarios.engine import Scenario

__all__ = ["AUTO_MAX_S", "AUTO_MIN_S", "GateNeed", "as_json", "duration_to_judge", "expected_journeys",
           "percentile_gate_count", "summarize", "unjudgeable"]

#: A gate counts as judgeable when its expected samples are at least this many times its minimum.
MARGIN = 1.25
#: Bounds of the duration a run without ``--duration`` takes.
AUTO_MIN_S = 60.0
AUTO_MAX_S = 1200.0
_CANDIDATES = (60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700, 3600)
_PERCENTILES = (("p95_ms", 95), ("p99_ms", 99))


@dataclass(frozen=True)
class GateNeed:
    """A percentile gate and the samples the run can expect for it, against the samples it needs."""

    scenario: str
    step: str | None
    metric: str
    needed: int
    expected: float

    def describe(self) -> str:
        where = " / ".join(x for x in (self.scenario, self.step) if x)
        return (f"{where} {self.metric} (~{self.expected:.0f} expected, {self.needed * MARGIN:.0f} wanted: "
                f"{self.needed} plus the margin for the random mix)")


def expected_journeys(shape: LoadShape, weights: Mapping[str, float], max_rate: float,
                      known: Collection[str]) -> dict[str, float]:
    """Expected journeys of each scenario over the run: every arrival shared between the phase's journeys
    (``shape.mix(t)``, its default part split by the mix ``weights``; a phase journey counts when it is one of
    the ``known`` scenarios) as :class:`~haicap.loadtests.journeys.Mix` draws it."""
    total = sum(weights.values())
    out: Counter[str] = Counter()
    for _, t in arrival_times(shape, max_rate):
        phase = shape.mix(t) or {DEFAULT_MIX: 1.0}
        keys = {k: w for k, w in phase.items() if w > 0 and (k == DEFAULT_MIX or k in known)}
        phase_total = sum(keys.values()) or 1.0
        for key, weight in keys.items():
            share = weight / phase_total
            if key == DEFAULT_MIX:
                for scenario_id, w in weights.items():
                    out[scenario_id] += share * w / total
            else:
                out[key] += share
    return dict(out)


def unjudgeable(shape: LoadShape, weights: Mapping[str, float], scenarios: Mapping[str, Scenario],
                max_rate: float) -> list[GateNeed]:
    """The percentile gates of the mix this run cannot expect to judge (fewer expected samples than needed)."""
    journeys = expected_journeys(shape, weights, max_rate, scenarios)
    short: list[GateNeed] = []
    for gate in gates(scenarios, sorted(journeys)):
        step = gate["step"]
        if step is None:
            continue  # journey gates judge the error rate only, which any sample judges
        runs_per_journey = sum(1 for call in scenarios[gate["scenario"]].steps if call.label == step)
        expected = journeys[gate["scenario"]] * runs_per_journey
        for metric, pct in _PERCENTILES:
            if gate.get(metric) is not None and expected < min_samples(pct) * MARGIN:
                short.append(GateNeed(gate["scenario"], step, metric, min_samples(pct), expected))
    return short


def duration_to_judge(spec: ShapeSpec, weights: Mapping[str, float], scenarios: Mapping[str, Scenario],
                      max_rate: float, *, longest: float = _CANDIDATES[-1]) -> float | None:
    """The shortest of a ladder of durations (60 s … ``longest``) at which every gate gets its samples, or None
    when even ``longest`` does not (the rate, not the duration, is then what to change)."""
    for duration in _CANDIDATES:
        if duration > longest:
            break
        try:
            shape = dataclasses.replace(spec, duration=float(duration)).build()
        except Exception:  # a duration the shape's own checks refuse is skipped, not chosen
            continue
        if not unjudgeable(shape, weights, scenarios, max_rate):
            return float(duration)
    return None


def summarize(short: Sequence[GateNeed], total: int, limit: int = 4) -> str:
    listed = ", ".join(g.describe() for g in short[:limit])
    more = f" and {len(short) - limit} more" if len(short) > limit else ""
    return f"{len(short)} of {total} percentile gates cannot get their samples: {listed}{more}"


def percentile_gate_count(weights: Mapping[str, float], scenarios: Mapping[str, Scenario],
                          extra: Sequence[str] = ()) -> int:
    ids = sorted({*weights, *extra} & set(scenarios))
    return sum(1 for g in gates(scenarios, ids) if g["step"] is not None
               for metric, _ in _PERCENTILES if g.get(metric) is not None)


def as_json(short: Sequence[GateNeed]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(g) | {"expected": round(g.expected, 1)} for g in short]
