"""Scenario journeys under load: the mix to draw from, and one journey run as one arrival of the open model.

The mix is every scenario with a weight > 0 (the YAML ``weight``), plus the load-only journeys in
``loadtests/journeys/`` (``first-login``, ``batch-resync``, weight 0) that shapes ask for by name in a phase.
A journey runs with the scenario engine in ``mode="load"`` (``expect_synced`` records an expectation instead
of polling); each step is timed (the first from the arrival's intended start) and recorded, and every dossier
the system accepted is reported with the latest status it answered, for the integrity check after the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import DEFAULT_MIX
from haicap.scenarios.engine import LIBRARY, Scenario, ScenarioContext, ScenarioRunner, load_scenarios

__all__ = ["LOAD_JOURNEYS", "Mix", "load_mix_scenarios", "run_journey"]

LOAD_JOURNEYS = Path(__file__).resolve().parent / "journeys"


def load_mix_scenarios(paths: Iterable[Path | str] | None = None) -> dict[str, Scenario]:
    """The shipped library (or ``paths``) plus the load-only journeys, by id."""
    return load_scenarios([*(paths or [LIBRARY]), LOAD_JOURNEYS])


@dataclass(frozen=True)
class Mix:
    """Weighted choice of scenarios; ``only`` restricts the default mix (unknown ids name the valid ones)."""

    scenarios: Mapping[str, Scenario]
    weights: Mapping[str, float]

    @classmethod
    def build(cls, scenarios: Mapping[str, Scenario], only: Iterable[str] = (),
              capabilities: frozenset[str] | None = None) -> Mix:
        chosen = list(only)
        unknown = [s for s in chosen if s not in scenarios]
        if unknown:
            raise HaicapError(f"unknown scenario {', '.join(unknown)}; valid scenarios: {', '.join(sorted(scenarios))}")
        if chosen:
            weights = {s: scenarios[s].weight or 1.0 for s in chosen}
        else:
            weights = {s: sc.weight for s, sc in scenarios.items() if sc.weight > 0}
        if capabilities is not None:
            weights = {s: w for s, w in weights.items() if scenarios[s].capabilities() <= capabilities}
        if not weights:
            raise HaicapError("no scenario left in the load mix (weights 0, or capabilities the target lacks)")
        return cls(scenarios, weights)

    def choose(self, rng: random.Random, phase: Mapping[str, float] | None) -> Scenario:
        if phase:
            keys = [k for k, w in phase.items() if w > 0 and (k == DEFAULT_MIX or k in self.scenarios)]
            if keys:
                pick = rng.choices(keys, weights=[phase[k] for k in keys])[0]
                if pick != DEFAULT_MIX:
                    return self.scenarios[pick]
        ids = list(self.weights)
        return self.scenarios[rng.choices(ids, weights=[self.weights[i] for i in ids])[0]]


def _latest_status(state: dict[str, Any], ma_ho_so: str) -> str | None:
    dossier = state.get("dossier")
    if isinstance(dossier, dict) and dossier.get("MaHoSo") == ma_ho_so and dossier.get("TrangThaiHoSo") is not None:
        return str(dossier["TrangThaiHoSo"])
    forwarded = state.get("forwarded")
    if isinstance(forwarded, dict) and isinstance(forwarded.get("answer"), dict):
        return str(forwarded["answer"].get("TrangThaiHoSo") or "1")
    return None


def run_journey(scenario: Scenario, context: ScenarioContext, recorder: Recorder, lag_s: float = 0.0,
                stage: int | None = None, trace_id: str | None = None) -> bool:
    """Run ``scenario`` once and record it; ``lag_s`` is how late the arrival started (added to the first step
    and the journey: latency from the intended start); ``stage``: the stage of its intended start (step runs),
    where its steps and journey are also recorded. True if every step passed."""
    started = time.perf_counter()
    results = ScenarioRunner(context).run(scenario)
    passed = len(results) == len(scenario.steps) and all(r.status == "passed" for r in results)
    for index, result in enumerate(results):
        ok = result.status == "passed"
        recorder.step(scenario.id, result.call.label, (result.seconds + (lag_s if index == 0 else 0.0)) * 1000, ok,
                      "" if ok else f"{result.status}: {result.message}", stage=stage)
    recorder.journey(scenario.id, (time.perf_counter() - started + lag_s) * 1000, passed, stage=stage,
                     trace_id=trace_id)
    ma_ho_so = context.state.get("ma_ho_so")
    if ma_ho_so:
        recorder.dossier(ma_ho_so, _latest_status(context.state, ma_ho_so), certain=passed)
    expectations = [[m, status, deadline, within] for m, status, deadline, within in context.sync_expectations]
    recorder.expectations.extend(expectations)
    if stage is not None:  # a staircase judges each stage's sync SLA on its own (--until-breach)
        recorder.stage(stage).expectations.extend(expectations)
    return passed
