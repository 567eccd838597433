"""``--until-breach``: a step run that extends its staircase by itself until a stage breaks.

The planned staircase (``start_rate``, ``step_rate``, stages of ``duration / stages`` seconds) is extended, before
anything runs, to every stage at the step increment that stays within ``--max-rate`` and the duration cap
(``--max-duration``), at most :data:`MAX_STAGES` (:func:`extend_staircase`). While the run lasts, the controller
judges each stage as soon as its journeys are done (:class:`StageWatch`), by the very gates the capacity report
applies afterwards (:func:`~haicap.loadtests.slo.judge` on the stage's own journeys and steps), and stops the load
at the first stage that breaches one, that misses the sync SLA, or where the generator fell behind (a higher stage
could not be judged either; not with ``--no-require-kept-up``). After the run only the stages that ran to their
end are reported (:func:`ran_stages`); a staircase that reached its last stage without a breach gives the knee's
lower bound with the reason (:func:`limit_reason`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haicap.errors import HaicapError
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import ShapeSpec, Stage
from haicap.loadtests.slo import judge

__all__ = ["DEFAULT_MAX_DURATION_S", "MAX_STAGES", "StageWatch", "Staircase", "extend_staircase", "limit_reason",
           "ran_stages"]

#: the duration cap of an ``--until-breach`` run without ``--max-duration`` (20 min)
DEFAULT_MAX_DURATION_S = 1200.0
#: the most stages a staircase has (the shape schema's maximum of ``stages``)
MAX_STAGES = 100
#: a stage's reports reach the master within about this long after its end (workers report every second)
REPORT_LAG_S = 2.0
CPU_LIMIT = 80.0


@dataclass(frozen=True)
class Staircase:
    """The extended staircase: its stages, their length, and what bounds it (``"max rate"``, ``"duration cap"``
    or ``"stages"``)."""

    stages: int
    stage_s: float
    bound: str
    max_rate: float
    max_duration: float
    top_rate: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def extend_staircase(spec: ShapeSpec, max_rate: float, max_duration: float) -> tuple[ShapeSpec, Staircase]:
    """The step ``spec`` extended at its step increment within ``max_rate`` and ``max_duration``; refused (one
    line naming the option) when it cannot climb or its first stage is already beyond a bound."""
    if spec.name != "step":
        raise HaicapError(f"--until-breach extends a step staircase; this run's shape is {spec.name} (use --shape "
                          "step)")
    start, step = float(spec.params["start_rate"]), float(spec.params["step_rate"])
    stage_s = spec.duration / int(spec.params["stages"])
    if step <= 0:
        raise HaicapError("--until-breach climbs by params.step_rate: give --set step_rate=R with R > 0")
    if start > max_rate:
        raise HaicapError(f"--until-breach: the first stage's rate {start:g}/s (params.start_rate) is above "
                          f"--max-rate {max_rate:g}: nothing to climb")
    if stage_s > max_duration:
        raise HaicapError(f"--until-breach: one stage lasts {stage_s:g} s (duration / stages), longer than "
                          f"--max-duration {max_duration:g}")
    by_rate = math.floor((max_rate - start) / step + 1e-9) + 1
    by_time = math.floor(max_duration / stage_s + 1e-9)
    count = min(by_rate, by_time, MAX_STAGES)
    bound = "max rate" if count == by_rate else "duration cap" if count == by_time else "stages"
    params = {**spec.params, "stages": count}
    extended = dataclasses.replace(spec, duration=round(count * stage_s, 6), params=params)
    return extended, Staircase(count, stage_s, bound, max_rate, max_duration, start + (count - 1) * step)


def limit_reason(staircase: Mapping[str, Any]) -> str:
    """Why a staircase that never breached stopped climbing, in the summary's words."""
    top = f"{float(staircase['top_rate']):g}/s"
    if staircase["bound"] == "max rate":
        return f"max rate {float(staircase['max_rate']):g}/s reached without breach (last stage {top})"
    if staircase["bound"] == "duration cap":
        return (f"duration cap {float(staircase['max_duration']):g} s reached without breach (last stage {top}; "
                "--max-duration to climb further)")
    return f"{MAX_STAGES} stages (the most a staircase has) reached without breach (last stage {top})"


def ran_stages(spec: ShapeSpec, stopped_at_s: float | None) -> ShapeSpec:
    """The staircase of the stages that ran to their end before the load stopped at ``stopped_at_s``."""
    count = int(spec.params["stages"])
    if stopped_at_s is None or stopped_at_s >= spec.duration - 1e-6:
        return spec
    stage_s = spec.duration / count
    done = max(1, min(count, math.floor(stopped_at_s / stage_s + 1e-6)))
    return dataclasses.replace(spec, duration=round(done * stage_s, 6), params={**spec.params, "stages": done})


SyncCheck = Callable[[Sequence[Sequence[Any]]], dict[str, Any]]


class StageWatch:
    """Judges the stages of a running staircase in order, as their journeys finish; :meth:`poll` returns the
    reason to stop at the first that breaks.

    A stage is judged when every journey it started has finished and its reports are in (``REPORT_LAG_S`` after
    its end), or one stage length after its end with what finished by then; its sync expectations when their
    deadlines have passed (``sync_check``: the ledger's verdict on them).
    """

    def __init__(self, stages: Iterable[Stage], gates: list[dict[str, Any]], sync_check: SyncCheck | None,
                 require_kept_up: bool = True) -> None:
        self.stages = list(stages)
        self.gates = gates
        self.sync_check = sync_check
        #: a stage where the generator fell behind stops the climb (``--no-require-kept-up``: it does not)
        self.require_kept_up = require_kept_up
        self.next = 0  # the first stage not judged yet
        self.judged: list[dict[str, Any]] = []

    def poll(self, t: float, recorder: Recorder) -> str | None:
        while self.next < len(self.stages):
            stage = self.stages[self.next]
            measured = recorder.stages.get(stage.index) or Recorder(recorder.start_epoch)
            if not self._ready(t, stage, measured):
                return None
            self.next += 1
            reason = self._verdict(stage, measured, recorder)
            self.judged.append({"index": stage.index, "target_rate": stage.target_rate, "breach": reason})
            if reason:
                return (f"until-breach: stage {stage.index} at {stage.target_rate:g}/s broke ({reason}); the "
                        "staircase stops here")
        return None

    def _ready(self, t: float, stage: Stage, measured: Recorder) -> bool:
        if t < stage.end + REPORT_LAG_S:
            return False
        started = sum(s.started for s in measured.seconds.values())
        finished = sum(c.ok + c.failed for c in measured.journeys.values())
        waited = t >= stage.end + max(stage.end - stage.start, REPORT_LAG_S)  # judge what finished by then
        due = [float(e[2]) for e in measured.expectations]  # deadlines are ≤ the sync SLA away: bounded
        synced = not due or t >= max(due) + REPORT_LAG_S
        return synced and (finished >= started or waited)

    def _verdict(self, stage: Stage, measured: Recorder, recorder: Recorder) -> str | None:
        seconds = [recorder.seconds[k] for k in range(math.floor(stage.start), math.ceil(stage.end))
                   if k in recorder.seconds]
        if self.require_kept_up and any(s.cpu > CPU_LIMIT or s.backlog > 0 for s in seconds):
            return ("the load generator did not keep up (backlog or CPU > 80%), so no higher stage could be judged "
                    "either: add generator processes (--processes)")
        result = judge(measured.journeys, measured.steps, self.gates)
        parts = [f"{' / '.join(x for x in (b['scenario'], b['step']) if x)} {b['metric']} {b['actual']} > "
                 f"{b['limit']}" for b in result["breaches"]]
        if measured.expectations and self.sync_check is not None:
            sync = self.sync_check(measured.expectations)
            if sync.get("late_count"):
                parts.append(f"sync SLA: {sync['late_count']} of {sync['checked']} expected statuses late or never "
                             "received by the national side")
        return "; ".join(parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "") if parts else None
