"""Load shapes: the target arrival rate (journeys per second) at each moment of a run.

A shape is a tiny extension point in the spirit of Locust's ``LoadTestShape``: subclass :class:`LoadShape`,
implement :meth:`~LoadShape.rate`, register it. Optional hooks say which journeys arrive in a phase
(:meth:`~LoadShape.mix`), what happens to the national side meanwhile (:meth:`~LoadShape.events`) and which
stages a run has (:meth:`~LoadShape.stages`, used for the capacity knee). Every shape has a duration; the
runner clips its rate to ``--max-rate`` and stops by itself at the end.

Arrivals follow the rate's integral: arrival ``n`` (0, 1, 2 …) is due when ∫₀ᵗ rate reaches ``n + ½``, the
middle of its unit of the integral (:func:`arrival_times`), so a ramp from 0, a rate below 1/s or a step up is
followed exactly, and the number of arrivals in any stretch is the integral over it rounded (± 1). A shape
whose rate is linear between the times it names in :meth:`~LoadShape.breakpoints` sets ``piecewise_linear``
and is integrated exactly; any other is sampled every :data:`SAMPLE_S` seconds.

Example::

    class Flat(LoadShape):
        name = "flat"
        def rate(self, t: float) -> float:
            return self.params["rate"]
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, NoReturn

import jsonschema

from haicap.errors import HaicapError
from haicap.yaml_source import load_yaml_document

__all__ = [
    "DEFAULT_MIX",
    "RESYNC_JOURNEY",
    "SAMPLE_S",
    "SHAPES",
    "STORM_JOURNEY",
    "CutoverShape",
    "LoadShape",
    "ShapeEvent",
    "ShapeSpec",
    "SoakShape",
    "SpikeShape",
    "Stage",
    "StageIndex",
    "StepShape",
    "arrival_times",
    "build_shape",
    "load_shape_file",
    "parse_set_options",
    "planned_arrivals",
    "rate_integral",
]

SCHEMA_PATH = Path(__file__).resolve().parent / "shape.schema.json"
#: the key of :meth:`LoadShape.mix` meaning "the scenarios' own weighted mix"
DEFAULT_MIX = "*"
#: the load-only journeys of the cutover's first-login storm and batch re-sync burst (loadtests/journeys/)
STORM_JOURNEY = "first-login"
RESYNC_JOURNEY = "batch-resync"
#: seconds between rate samples when integrating a shape that is not ``piecewise_linear``
SAMPLE_S = 0.01


@dataclass(frozen=True)
class Stage:
    index: int
    start: float
    end: float
    target_rate: float


@dataclass(frozen=True)
class ShapeEvent:
    """Something done to the national counterpart at ``at`` seconds (e.g. a sync outage of ``seconds``)."""

    at: float
    action: str
    seconds: float


class LoadShape(ABC):
    """Target arrival rate over ``duration`` seconds; subclasses set ``name`` and implement :meth:`rate`.

    ``selected``: the scenarios the user chose (``--scenario``), None for the default mix; a shape with phases
    of its own journeys (the cutover's storm and burst) runs a phase only when its journey is in the selection.
    Constructors refuse impossible parameters with a one-line :class:`HaicapError` naming the parameter.
    """

    name: ClassVar[str]
    #: True when :meth:`rate` is linear between consecutive :meth:`breakpoints` (and stage bounds): the arrival
    #: schedule is then exact; otherwise the rate is sampled every :data:`SAMPLE_S` seconds
    piecewise_linear: ClassVar[bool] = False

    def __init__(self, duration: float, params: Mapping[str, Any], selected: Collection[str] | None = None) -> None:
        self.duration = float(duration)
        self.params = dict(params)
        self.selected = frozenset(selected) if selected else None

    @abstractmethod
    def rate(self, t: float) -> float:
        """Target journeys per second at ``t`` seconds after the start (0 <= t < duration)."""

    def breakpoints(self) -> list[float]:
        """Times where the rate may jump or change slope (stage bounds are added by themselves)."""
        return []

    def mix(self, t: float) -> Mapping[str, float] | None:
        """Share of each journey arriving at ``t`` (``"*"``: the scenarios' weighted mix); None: only ``"*"``."""
        return None

    def events(self) -> list[ShapeEvent]:
        return []

    def stages(self) -> list[Stage] | None:
        return None

    def describe(self) -> str:
        return f"{self.name}: {self.duration:g} s"

    def includes(self, journey: str) -> bool:
        """Whether a phase of ``journey`` runs: always with the default mix, else only if the user selected it."""
        return self.selected is None or journey in self.selected

    def _refuse(self, param: str, value: Any, problem: str, allowed: str) -> NoReturn:
        shown = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
        raise HaicapError(f"shape {self.name}: params.{param}: {shown} {problem}; allowed: {allowed}")


# -- cutover ---------------------------------------------------------------------------------------
#: relative intensity of counter traffic over an office-hours day (DOMAIN.md "Daily pattern"):
#: peaks 07:30–10:00 and 13:30–15:30, a lunch trough, a tail towards 17:00
DAY_PROFILE: tuple[tuple[float, float], ...] = (
    (7.0, 0.35), (7.5, 1.0), (10.0, 1.0), (11.0, 0.55), (12.0, 0.3), (13.0, 0.5),
    (13.5, 1.0), (15.5, 1.0), (17.0, 0.35),
)


def _hours(value: str) -> float:
    hh, _, mm = value.partition(":")
    return int(hh) + int(mm or 0) / 60


def _clock(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


class CutoverShape(LoadShape):
    """Day one of the switch, compressed: office-hours double peaks × a surge factor, a first-login storm at
    opening, and a batch re-sync burst when the national side comes back from an outage late in the day.

    The storm is made of ``first-login`` journeys and the burst of ``batch-resync`` journeys: with a
    ``--scenario`` selection, each runs only if its journey is selected (otherwise the rate is the office day
    alone, and :meth:`describe` says so). The national sync outage happens either way: it tests the province's
    queue whatever the journeys.
    """

    name = "cutover"
    piecewise_linear = True

    def __init__(self, duration: float, params: Mapping[str, Any], selected: Collection[str] | None = None) -> None:
        super().__init__(duration, params, selected)
        p = self.params
        self.open_h, self.close_h = _hours(p["open"]), _hours(p["close"])
        if self.close_h <= self.open_h:
            raise HaicapError(f"cutover: close {p['close']} must be after open {p['open']}")
        self.day_s = (self.close_h - self.open_h) * 3600
        self.compression = self.day_s / self.duration
        self.peak = float(p["peak_rate"]) * float(p["surge_factor"])
        self.storm_end_h = self.open_h + float(p["storm_minutes"]) / 60
        self.resync_h = _hours(p["resync_at"])
        self.resync_end_h = self.resync_h + float(p["resync_minutes"]) / 60
        self.storm_on = self.includes(STORM_JOURNEY) and float(p["storm_minutes"]) > 0 and float(p["storm_factor"]) > 0
        self.burst_on = (self.includes(RESYNC_JOURNEY) and float(p["resync_minutes"]) > 0
                         and float(p["resync_factor"]) > 0)
        self._check()

    def _check(self) -> None:
        p = self.params
        day_min = (self.close_h - self.open_h) * 60
        hours = f"the office day {p['open']}–{p['close']}"
        if float(p["storm_minutes"]) > day_min:
            self._refuse("storm_minutes", float(p["storm_minutes"]), f"minutes of storm is longer than {hours}",
                         f"0 to {day_min:g}")
        uses_resync = float(p["outage_minutes"]) > 0 or self.burst_on
        if uses_resync and not self.open_h <= self.resync_h < self.close_h:
            self._refuse("resync_at", p["resync_at"], f"is outside {hours}",
                         f"{p['open']} to {_clock(self.close_h - 1 / 60)}")
        if self.burst_on and self.resync_end_h > self.close_h + 1e-9:
            self._refuse("resync_minutes", float(p["resync_minutes"]),
                         f"minutes from {p['resync_at']} run the re-sync burst past closing ({p['close']})",
                         f"0 to {(self.close_h - self.resync_h) * 60:g} with resync_at {p['resync_at']}")
        outage = float(p["outage_minutes"])
        if outage > 0 and self.resync_h - outage / 60 < self.open_h - 1e-9:
            self._refuse("outage_minutes", outage,
                         f"minutes before {p['resync_at']} start the sync outage before opening ({p['open']})",
                         f"0 to {(self.resync_h - self.open_h) * 60:g} with resync_at {p['resync_at']}")

    def hour(self, t: float) -> float:
        return self.open_h + t * self.compression / 3600

    def _t(self, hour: float) -> float:
        return (hour - self.open_h) * 3600 / self.compression

    def breakpoints(self) -> list[float]:
        hours = [h for h, _ in DAY_PROFILE] + [self.storm_end_h, self.resync_h, self.resync_end_h]
        return [self._t(h) for h in hours]

    def _parts(self, t: float) -> tuple[float, float, float]:
        h = self.hour(t)
        base = self.peak * _interpolate(DAY_PROFILE, h)
        storm = self.peak * float(self.params["storm_factor"]) if self.storm_on and h < self.storm_end_h else 0.0
        burst = (self.peak * float(self.params["resync_factor"])
                 if self.burst_on and self.resync_h <= h < self.resync_end_h else 0.0)
        return base, storm, burst

    def rate(self, t: float) -> float:
        return sum(self._parts(t))

    def mix(self, t: float) -> Mapping[str, float] | None:
        base, storm, burst = self._parts(t)
        if not storm and not burst:
            return None
        return {DEFAULT_MIX: base, STORM_JOURNEY: storm, RESYNC_JOURNEY: burst}

    def events(self) -> list[ShapeEvent]:
        seconds = self.outage_seconds()
        if seconds <= 0:
            return []
        end = self._t(self.resync_h)
        return [ShapeEvent(at=end - seconds, action="sync-outage", seconds=seconds)]

    def outage_seconds(self) -> float:
        """Real seconds of the national sync outage before ``resync_at``: the compressed ``outage_minutes``, at
        least ``outage_min_s`` (several of a province's retry intervals), never starting before the run."""
        minutes = float(self.params["outage_minutes"])
        if minutes <= 0:
            return 0.0
        wanted = max(minutes * 60 / self.compression, float(self.params["outage_min_s"]))
        return min(wanted, self._t(self.resync_h))

    def describe(self) -> str:
        p = self.params
        minute = 60 / self.compression
        real = self.outage_seconds()
        floor = (f"at least outage_min_s {p['outage_min_s']:g} s" if real >= float(p["outage_min_s"]) - 1e-9
                 else f"outage_min_s {p['outage_min_s']:g} s clipped to the start of the run")
        outage = (f" after a {p['outage_minutes']} min national sync outage ({real:.1f} s real, {floor})"
                  if float(p["outage_minutes"]) else "")
        if self.storm_on:
            storm = f"first-login storm {p['storm_minutes']} min at opening (+{p['storm_factor']}× peak)"
        elif not self.includes(STORM_JOURNEY):
            storm = f"no first-login storm ({STORM_JOURNEY} is not among the selected scenarios)"
        else:
            storm = "no first-login storm"
        if self.burst_on:
            burst = (f"batch re-sync burst at {p['resync_at']} for {p['resync_minutes']} min "
                     f"(+{p['resync_factor']}× peak){outage}")
        elif not self.includes(RESYNC_JOURNEY):
            burst = f"no batch re-sync burst ({RESYNC_JOURNEY} is not among the selected scenarios)"
            burst += f"; a{outage.removeprefix(' after a')} before {p['resync_at']}" if outage else ""
        else:
            burst = "no batch re-sync burst" + (f"; a{outage.removeprefix(' after a')} before {p['resync_at']}"
                                                if outage else "")
        return (f"cutover: office day {p['open']}–{p['close']} compressed {self.compression:,.0f}× into "
                f"{self.duration:g} s (1 s ≈ {self.compression / 60:,.1f} min of the day, 1 min ≈ {minute:.2f} s); "
                f"peak {p['peak_rate']}/s × day-one surge {p['surge_factor']} = {self.peak:g}/s; {storm}; {burst}")


# -- step ------------------------------------------------------------------------------------------
#: shortest stage of a step run: below it a stage's rate and percentiles mean nothing
MIN_STAGE_S = 1.0


class StepShape(LoadShape):
    """A staircase of stages of equal length: start_rate, start_rate + step_rate, ... (finding the knee)."""

    name = "step"
    piecewise_linear = True

    def __init__(self, duration: float, params: Mapping[str, Any], selected: Collection[str] | None = None) -> None:
        super().__init__(duration, params, selected)
        self.count = int(self.params["stages"])
        self.stage_s = self.duration / self.count
        if self.stage_s < MIN_STAGE_S:
            self._refuse("stages", self.count, f"stages of {self.stage_s:g} s in a {self.duration:g} s run are "
                         f"shorter than {MIN_STAGE_S:g} s", f"1 to {max(1, math.floor(self.duration / MIN_STAGE_S))}")

    def _rate_of(self, index: int) -> float:
        return float(self.params["start_rate"]) + index * float(self.params["step_rate"])

    def rate(self, t: float) -> float:
        return self._rate_of(min(int(t // self.stage_s), self.count - 1))

    def stages(self) -> list[Stage]:
        bounds = [i * self.stage_s for i in range(self.count)] + [self.duration]
        return [Stage(i, bounds[i], bounds[i + 1], self._rate_of(i)) for i in range(self.count)]

    def describe(self) -> str:
        rates = ", ".join(f"{self._rate_of(i):g}" for i in range(self.count))
        return f"step: {self.count} stages of {self.stage_s:g} s at {rates} journeys/s"


# -- spike -----------------------------------------------------------------------------------------
class SpikeShape(LoadShape):
    """A steady base rate with one sudden spike (e.g. a cash-gift announcement sending everyone to VNeID)."""

    name = "spike"
    piecewise_linear = True

    def __init__(self, duration: float, params: Mapping[str, Any], selected: Collection[str] | None = None) -> None:
        super().__init__(duration, params, selected)
        spike_s, spike_at = float(self.params["spike_s"]), float(self.params["spike_at"])
        if spike_s > self.duration:
            self._refuse("spike_s", spike_s, f"s of spike is longer than the {self.duration:g} s run",
                         f"up to {self.duration:g}")
        start, end = self._window()
        if end > self.duration + 1e-9:
            latest = (self.duration - spike_s) / self.duration
            self._refuse("spike_at", spike_at, f"puts the {spike_s:g} s spike at {start:g}–{end:g} s, past the end "
                         f"of the {self.duration:g} s run", f"0 to {math.floor(latest * 10_000) / 10_000:g} "
                         f"with spike_s {spike_s:g} (the spike must end by {self.duration:g} s)")

    def _window(self) -> tuple[float, float]:
        start = float(self.params["spike_at"]) * self.duration
        return start, start + float(self.params["spike_s"])

    def breakpoints(self) -> list[float]:
        return list(self._window())

    def rate(self, t: float) -> float:
        start, end = self._window()
        return float(self.params["spike_rate"] if start <= t < end else self.params["base_rate"])

    def describe(self) -> str:
        start, end = self._window()
        return (f"spike: {self.params['base_rate']}/s, {self.params['spike_rate']}/s from {start:g} s to "
                f"{end:g} s, {self.duration:g} s in all")


# -- soak ------------------------------------------------------------------------------------------
class SoakShape(LoadShape):
    """A long steady rate after a short ramp: leaks, queue growth, slow degradation."""

    name = "soak"
    piecewise_linear = True

    def breakpoints(self) -> list[float]:
        return [float(self.params["ramp_s"])]

    def rate(self, t: float) -> float:
        ramp = float(self.params["ramp_s"])
        rate = float(self.params["rate"])
        return rate if ramp <= 0 or t >= ramp else rate * t / ramp

    def describe(self) -> str:
        ramp = float(self.params["ramp_s"])
        if ramp > self.duration:  # not refused (a ramp is a valid run), but never described as a soak it is not
            return (f"soak: a ramp only, 0 → {self.rate(self.duration):g}/s over the {self.duration:g} s (ramp_s "
                    f"{self.params['ramp_s']} is longer than the run: the rate never reaches {self.params['rate']}/s)")
        return f"soak: {self.params['rate']}/s for {self.duration:g} s after a {self.params['ramp_s']} s ramp"


# -- the arrival schedule --------------------------------------------------------------------------
class _Piece(NamedTuple):
    """Over [start, end) the clipped rate goes linearly from ``r0`` to ``r1``; ``before`` = ∫ rate up to start."""

    start: float
    end: float
    r0: float
    r1: float
    before: float

    @property
    def area(self) -> float:
        return (self.r0 + self.r1) / 2 * (self.end - self.start)

    def time_of(self, m: float) -> float:
        """The time in [start, end) at which ∫ rate from ``start`` reaches ``m``."""
        m = max(m, 0.0)
        width = self.end - self.start
        slope = (self.r1 - self.r0) / width
        if slope == 0:
            tau = m / self.r0
        else:  # r0·τ + slope·τ²/2 = m, in the form that stays accurate when r0 is 0 or slope is tiny
            root = math.sqrt(max(self.r0 * self.r0 + 2 * slope * m, 0.0))
            tau = 2 * m / (self.r0 + root) if self.r0 + root > 0 else 0.0
        t = self.start + tau
        return t if t < self.end else math.nextafter(self.end, -math.inf)


def _knots(shape: LoadShape) -> list[float]:
    points = {0.0, shape.duration, *shape.breakpoints()}
    for stage in shape.stages() or []:
        points.update((stage.start, stage.end))
    return sorted(p for p in points if 0 <= p <= shape.duration)


def _linear_pieces(shape: LoadShape) -> Iterator[tuple[float, float, float, float]]:
    """(a, b, rate at a, rate just before b) with the rate linear in between, unclipped."""
    for a, b in itertools.pairwise(_knots(shape)):
        if b <= a:
            continue
        if shape.piecewise_linear:  # two interior samples: exact for a line, and never on a jump
            width = b - a
            r1, r3 = shape.rate(a + width / 4), shape.rate(a + 3 * width / 4)
            half = (r3 - r1) / 2
            yield a, b, r1 - half, r3 + half
            continue
        cells = max(1, math.ceil((b - a) / SAMPLE_S))
        for i in range(cells):
            x = a + (b - a) * i / cells
            y = b if i + 1 == cells else a + (b - a) * (i + 1) / cells
            r = shape.rate((x + y) / 2)
            yield x, y, r, r


def _clip(a: float, b: float, ra: float, rb: float, cap: float) -> Iterator[tuple[float, float, float, float]]:
    """The line from (a, ra) to (b, rb) clamped to [0, cap], cut where it crosses 0 or cap."""
    cuts = [a, b]
    for level in (0.0, cap):
        if (ra - level) * (rb - level) < 0:
            cuts.append(a + (b - a) * (level - ra) / (rb - ra))
    cuts.sort()

    def at(t: float) -> float:
        return min(max(ra + (rb - ra) * (t - a) / (b - a), 0.0), cap)

    for x, y in itertools.pairwise(cuts):
        if y > x:
            yield x, y, at(x), at(y)


def _pieces(shape: LoadShape, max_rate: float) -> Iterator[_Piece]:
    total = 0.0
    for a, b, ra, rb in _linear_pieces(shape):
        for x, y, rx, ry in _clip(a, b, ra, rb, max_rate):
            piece = _Piece(x, y, rx, ry, total)
            total += piece.area
            yield piece


#: arrival n is due when the integral of the rate reaches n + ARRIVAL_OFFSET (the middle of its unit)
ARRIVAL_OFFSET = 0.5


def _arrivals_below(integral: float) -> int:
    """How many arrivals fall before the moment ∫ rate = ``integral``: those with n + ½ below it (with a
    tolerance for float noise, so that an arrival due exactly at a stage boundary belongs to the next stage)."""
    edge = integral - ARRIVAL_OFFSET - max(1e-9, 1e-11 * abs(integral))
    return max(0, math.ceil(edge))


def arrival_times(shape: LoadShape, max_rate: float) -> Iterator[tuple[int, float]]:
    """(n, intended seconds after start) of every arrival of a run, all workers together: arrival ``n`` is due
    when the integral of the rate (clipped to ``max_rate``) from 0 reaches ``n + ½``. Deterministic; a stretch
    at rate 0 has no arrival, a rate below 1/s still gets its arrivals, and each stage gets its own rate."""
    n = 0
    for piece in _pieces(shape, max_rate):
        below = _arrivals_below(piece.before + piece.area)
        while n < below:
            yield n, piece.time_of(n + ARRIVAL_OFFSET - piece.before)
            n += 1


def rate_integral(shape: LoadShape, max_rate: float) -> float:
    """∫ rate over the whole run (clipped to ``max_rate``): the journeys the shape asks for."""
    return sum(piece.area for piece in _pieces(shape, max_rate))


def planned_arrivals(shape: LoadShape, max_rate: float) -> int:
    """How many arrivals :func:`arrival_times` yields (:func:`rate_integral` rounded), without listing them."""
    return _arrivals_below(rate_integral(shape, max_rate))


class StageIndex:
    """Which stage an arrival belongs to, by its intended start: exactly, by arrival number or intended time.

    ``first[i]`` is the number of the first arrival of stage ``i`` (and ``first[-1]`` the number after the last
    arrival), so stage ``i`` has ``first[i + 1] - first[i]`` planned arrivals and none is in two stages.
    """

    def __init__(self, shape: LoadShape, max_rate: float) -> None:
        self.stages = shape.stages() or []
        before: dict[float, float] = {}
        total = 0.0
        for piece in _pieces(shape, max_rate):
            before.setdefault(piece.start, piece.before)
            total = piece.before + piece.area
        before.setdefault(shape.duration, total)
        self.first = [_arrivals_below(before.get(s.start, 0.0)) for s in self.stages]
        if self.stages:
            self.first.append(_arrivals_below(before.get(self.stages[-1].end, total)))
        self._starts = [s.start for s in self.stages]

    def planned(self, index: int) -> int:
        return self.first[index + 1] - self.first[index]

    def of_arrival(self, n: int) -> int | None:
        if not self.stages or not self.first[0] <= n < self.first[-1]:
            return None
        return bisect.bisect_right(self.first, n, hi=len(self.stages)) - 1

    def of_time(self, t: float) -> int | None:
        """The stage whose [start, end) holds ``t`` (an intended time as :func:`arrival_times` yields it)."""
        if not self.stages or not self.stages[0].start <= t < self.stages[-1].end:
            return None
        return bisect.bisect_right(self._starts, t) - 1


SHAPES: dict[str, type[LoadShape]] = {s.name: s for s in (CutoverShape, StepShape, SpikeShape, SoakShape)}


# -- parameters ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapeSpec:
    """A validated shape choice; picklable and JSON-able so workers build the same shape.

    ``selected``: the scenarios the user chose (``--scenario``; empty for the default mix), see
    :class:`LoadShape` — set it with :meth:`with_selection` so that every process builds the same phases.
    """

    name: str
    duration: float
    params: dict[str, Any]
    selected: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "selected", tuple(self.selected))  # a JSON round trip makes it a list

    def build(self) -> LoadShape:
        return SHAPES[self.name](self.duration, self.params, self.selected or None)

    def with_selection(self, scenarios: Iterable[str]) -> ShapeSpec:
        return dataclasses.replace(self, selected=tuple(scenarios))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "duration": self.duration, "params": self.params, "selected": list(self.selected)}


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _defaults(name: str) -> dict[str, Any]:
    props = _schema()["$defs"][name]["properties"]
    return {key: prop["default"] for key, prop in props.items() if "default" in prop}


def _check_name(name: str) -> None:
    if name not in SHAPES:
        raise HaicapError(f"unknown shape {name!r}; valid shapes: {', '.join(sorted(SHAPES))}")


def build_shape(name: str, duration: float | None, params: Mapping[str, Any] | None = None) -> ShapeSpec:
    """Validate ``params`` (given ones over the shape's defaults) and return the spec; errors name the field."""
    _check_name(name)
    merged = {**_defaults(name), **(params or {})}
    # JSON Schema bounds let NaN through (every comparison with it is false): refuse non-finite numbers first
    for field, value in [("duration", duration), *((f"params.{k}", v) for k, v in merged.items())]:
        if isinstance(value, float) and not math.isfinite(value):
            raise HaicapError(f"shape {name}: {field}: must be a finite number, not {value}")
    document = {"shape": name, "params": merged, **({"duration": duration} if duration is not None else {})}
    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path) or "(shape)"
        raise HaicapError(f"shape {name}: {field}: {error.message}")
    spec = ShapeSpec(name, float(duration if duration is not None else _schema()["properties"]["duration"]["default"]),
                     merged)
    shape = spec.build()  # cross-field checks (e.g. open < close, a spike inside the run)
    if rate_integral(shape, math.inf) <= 0:
        raise HaicapError(f"shape {name}: every rate is 0 over the {spec.duration:g} s: no journey would arrive")
    return spec


def load_shape_file(path: Path | str, *, duration: float | None = None,
                    overrides: Mapping[str, Any] | None = None) -> ShapeSpec:
    """A shape YAML (``shape``, ``duration``, ``params``); errors are ``file:line: field: message``."""
    document = load_yaml_document(path)
    if not isinstance(document.data, dict):
        raise HaicapError(f"{document.path}: a shape file is a mapping with shape, duration and params")
    document.validate(_schema())
    name = document.data["shape"]
    params = {**_defaults(name), **document.data.get("params", {})}
    document.data["params"] = params
    document.validate(_schema())  # params against the shape's own definitions, with line numbers
    return build_shape(name, duration if duration is not None else document.data.get("duration"),
                       {**params, **(overrides or {})})


def parse_set_options(values: list[str]) -> dict[str, Any]:
    """``--set key=value`` flags: values parsed as YAML scalars (numbers stay numbers, ``"07:00"`` a string)."""
    import yaml

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise HaicapError(f"--set {item!r}: expected KEY=VALUE (e.g. --set surge_factor=3)")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, float) and not math.isfinite(value):
            raise HaicapError(f"--set {item!r}: give a finite number, not {raw.strip()}")
        out[key.strip()] = raw if key.strip() in {"open", "close", "resync_at"} else value
    return out
