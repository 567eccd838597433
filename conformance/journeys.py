"""Run a shipped scenario journey from inside a conformance check.

Checks that need "a dossier walked through its states" do not re-implement the walk: they run the journey the
load tests also run (``scenarios/library/*.yaml``) with the check's clients, seeded data and profile settings.
A step that does not pass becomes the check's verdict (failed / skipped / error) with the step's evidence.

``defer_sync=True`` runs the journey's ``expect_synced`` steps the way load mode does: they record
``(MaHoSo, status, deadline)`` instead of polling, so a check can walk the dossier at full speed and then judge
every state change against the ledger itself, with one bounded wait instead of one per step.

Example::

    run = run_journey(ctx, "birth-registration", defer_sync=True)
    run.ma_ho_so, run.sync_expectations
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped
from haicap.errors import HaicapError
from haicap.scenarios.engine import Scenario, ScenarioContext, ScenarioRunner, StepResult, load_scenarios

if TYPE_CHECKING:
    from haicap.conformance.context import CheckContext
    from haicap.scenarios.data import PoolScenarioData

__all__ = ["JourneyRun", "PreparedJourney", "prepare_journey", "run_journey", "scenario", "scenario_context",
           "scenario_data"]


def _worker_slot() -> tuple[int, int]:
    """(this pytest-xdist worker's index, the number of workers); (0, 1) without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return index, max(int(count) if count.isdigit() else 1, 1)


def scenario_data(ctx: CheckContext) -> PoolScenarioData:
    """The run's shared data pool (built once per process from the run seed and the target's province).

    Under pytest-xdist each worker walks the pool from its own index with the workers' count as stride, so two
    workers never sign in the same citizen: a check that judges "this citizen's dossiers" sees only its own."""
    from haicap.scenarios.data import PoolScenarioData

    def build() -> PoolScenarioData:
        index, count = _worker_slot()
        return PoolScenarioData(PoolScenarioData.build(ctx.seed, ctx.target.province_code).pool, start=index,
                                stride=count)

    return ctx.shared("data", build)


def _communes(ctx: CheckContext) -> tuple[str, ...]:
    if ctx.target.communes:
        return tuple(ctx.target.communes)

    def official() -> tuple[str, ...]:
        from haicap.data_generators.units import admin_units

        return tuple(c.code for c in admin_units().communes(ctx.target.province_code))

    return ctx.shared(f"communes:{ctx.target.province_code}", official)


def scenario_context(ctx: CheckContext, *, defer_sync: bool = False) -> ScenarioContext:
    """A fresh ScenarioContext (its own journey state) over the check's clients and profile settings: officer
    steps go through the run's back office (``ctx.province``), submissions through its submission channel."""
    return ScenarioContext(
        province=ctx.province,
        national=ctx.national,
        data=scenario_data(ctx),
        capabilities=frozenset(ctx.target.capabilities),
        province_code=ctx.target.province_code,
        sync_sla_seconds=ctx.target.sync_sla_seconds,
        mode="load" if defer_sync else "conformance",
        communes=_communes(ctx),
        submission_channel=ctx.submission_channel if "submission_channel" in ctx.target.capabilities else None,
    )


def scenario(ctx: CheckContext, scenario_id: str) -> Scenario:
    """A shipped scenario by id (the library is loaded and validated once per process)."""
    library = ctx.shared("scenarios:library", load_scenarios)
    try:
        return library[scenario_id]
    except KeyError:
        raise CheckError(f"no shipped scenario {scenario_id!r} (known: {', '.join(sorted(library))})") from None


@dataclass
class JourneyRun:
    """The outcome of one journey: step results, the final journey state and the deferred sync expectations."""

    scenario: Scenario
    context: ScenarioContext
    results: list[StepResult]

    @property
    def state(self) -> dict[str, Any]:
        return self.context.state

    @property
    def ma_ho_so(self) -> str | None:
        value = self.context.state.get("ma_ho_so")
        return value if isinstance(value, str) else None

    @property
    def sync_expectations(self) -> list[tuple[str, str, float, float]]:
        return self.context.sync_expectations

    @property
    def passed(self) -> bool:
        return len(self.results) == len(self.scenario.steps) and all(r.status == "passed" for r in self.results)

    def raise_for_status(self) -> JourneyRun:
        """Turn the first step that did not pass into the check's verdict; return self when all passed."""
        for index, result in enumerate(self.results):
            if result.status == "passed":
                continue
            where = f"journey {self.scenario.id}, step {index + 1} ({result.call.label}, " \
                    f"{self.scenario.path.name}:{result.call.line})"
            if result.status == "failed":
                raise CheckFailure(f"{where}: {result.message}", expected=result.expected, actual=result.actual,
                                   reproduce=result.reproduce or f"haicap scenario step {result.call.step} "
                                                                 f"of {self.scenario.path.name}")
            if result.status == "skipped":
                raise CheckSkipped(f"{where}: {result.message}")
            raise CheckError(f"{where}: {result.message}")
        if not self.passed:
            raise CheckError(f"journey {self.scenario.id} stopped after {len(self.results)} step(s)")
        return self


@dataclass(frozen=True)
class PreparedJourney:
    """A scenario and a fresh context, resolved up front (see :func:`prepare_journey`)."""

    scenario: Scenario
    context: ScenarioContext

    def run(self, *, check: bool = True) -> JourneyRun:
        """Run the steps; with ``check`` (default) a step that did not pass is raised as the check's verdict."""
        missing = sorted(self.scenario.capabilities() - self.context.capabilities)
        if missing:
            raise CheckSkipped(f"journey {self.scenario.id} needs capabilities the profile does not declare: "
                               f"{', '.join(missing)}")
        try:
            results = ScenarioRunner(self.context).run(self.scenario)
        except HaicapError as exc:  # an unreachable target surfaces as the check's error, with the cause
            raise CheckError(f"journey {self.scenario.id}: {exc}") from exc
        run = JourneyRun(self.scenario, self.context, results)
        return run.raise_for_status() if check else run


def prepare_journey(ctx: CheckContext, scenario_id: str, *, defer_sync: bool = False) -> PreparedJourney:
    """Resolve the scenario and a fresh context now, run later.

    ``CheckContext.shared`` holds one non-reentrant lock while its factory runs, so a factory must not call
    anything that uses ``ctx.shared`` (``run_journey`` does): prepare the journeys outside, run them inside.
    """
    return PreparedJourney(scenario(ctx, scenario_id), scenario_context(ctx, defer_sync=defer_sync))


def run_journey(ctx: CheckContext, scenario_id: str, *, defer_sync: bool = False, check: bool = True) -> JourneyRun:
    """Run the shipped journey ``scenario_id``; with ``check`` (default) a step that did not pass is raised.

    Not inside a ``ctx.shared`` factory: use :func:`prepare_journey` there.
    """
    return prepare_journey(ctx, scenario_id, defer_sync=defer_sync).run(check=check)
