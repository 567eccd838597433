"""Load shapes: the target arrival rate (journeys per second) at each moment of a run.

A shape is a tiny extension point in the spirit of Locust's ``LoadTestShape``: subclass :class:`LoadShape`,
implement :meth:`~LoadShape.rate`, register it. Optional hooks say which journeys arrive in a phase
(:meth:`~LoadShape.mix`), what happens to the national side meanwhile (:meth:`~LoadShape.events`) and which
stages a run has (:meth:`~LoadShape.stages`, used for the capacity knee). Every shape has a duration; the
runner clips its rate to ``--max-rate`` and stops by itself at the end.

Example::

    class Flat(LoadShape):
        name = "flat"
        def rate(self, t: float) -> float:
            return self.params["rate"]
"""

from __future__ import annotations

import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import jsonschema

from haicap.errors import HaicapError
from haicap.yaml_source import load_yaml_document

__all__ = [
    "DEFAULT_MIX",
    "SHAPES",
    "CutoverShape",
    "LoadShape",
    "ShapeEvent",
    "ShapeSpec",
    "SoakShape",
    "SpikeShape",
    "Stage",
    "StepShape",
    "arrival_times",
    "build_shape",
    "load_shape_file",
    "parse_set_options",
]

SCHEMA_PATH = Path(__file__).resolve().parent / "shape.schema.json"
#: the key of :meth:`LoadShape.mix` meaning "the scenarios' own weighted mix"
DEFAULT_MIX = "*"


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
    """Target arrival rate over ``duration`` seconds; subclasses set ``name`` and implement :meth:`rate`."""

    name: ClassVar[str]

    def __init__(self, duration: float, params: Mapping[str, Any]) -> None:
        self.duration = float(duration)
        self.params = dict(params)

    @abstractmethod
    def rate(self, t: float) -> float:
        """Target journeys per second at ``t`` seconds after the start (0 <= t < duration)."""

    def mix(self, t: float) -> Mapping[str, float] | None:
        """Share of each journey arriving at ``t`` (``"*"``: the scenarios' weighted mix); None: only ``"*"``."""
        return None

    def events(self) -> list[ShapeEvent]:
        return []

    def stages(self) -> list[Stage] | None:
        return None

    def describe(self) -> str:
        return f"{self.name}: {self.duration:g} s"


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


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


class CutoverShape(LoadShape):
    """Day one of the switch, compressed: office-hours double peaks × a surge factor, a first-login storm at
    opening, and a batch re-sync burst when the national side comes back from an outage late in the day."""

    name = "cutover"

    def __init__(self, duration: float, params: Mapping[str, Any]) -> None:
        super().__init__(duration, params)
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

    def hour(self, t: float) -> float:
        return self.open_h + t * self.compression / 3600

    def _parts(self, t: float) -> tuple[float, float, float]:
        h = self.hour(t)
        base = self.peak * _interpolate(DAY_PROFILE, h)
        storm = self.peak * float(self.params["storm_factor"]) if h < self.storm_end_h else 0.0
        burst = self.peak * float(self.params["resync_factor"]) if self.resync_h <= h < self.resync_end_h else 0.0
        return base, storm, burst

    def rate(self, t: float) -> float:
        return sum(self._parts(t))

    def mix(self, t: float) -> Mapping[str, float] | None:
        base, storm, burst = self._parts(t)
        if not storm and not burst:
            return None
        return {DEFAULT_MIX: base, "first-login": storm, "batch-resync": burst}

    def events(self) -> list[ShapeEvent]:
        minutes = float(self.params["outage_minutes"])
        if minutes <= 0:
            return []
        seconds = minutes * 60 / self.compression
        start = (self.resync_h - self.open_h) * 3600 / self.compression - seconds
        return [ShapeEvent(at=max(0.0, start), action="sync-outage", seconds=seconds)]

    def describe(self) -> str:
        p = self.params
        minute = 60 / self.compression
        return (f"cutover: office day {p['open']}–{p['close']} compressed {self.compression:,.0f}× into "
                f"{self.duration:g} s (1 s ≈ {self.compression / 60:,.1f} min of the day, 1 min ≈ {minute:.2f} s); "
                f"peak {p['peak_rate']}/s × day-one surge {p['surge_factor']} = {self.peak:g}/s; "
                f"first-login storm {p['storm_minutes']} min at opening (+{p['storm_factor']}× peak); "
                f"batch re-sync burst at {p['resync_at']} for {p['resync_minutes']} min (+{p['resync_factor']}× peak)"
                + (f" after a {p['outage_minutes']} min national sync outage" if float(p["outage_minutes"]) else ""))


# -- step ------------------------------------------------------------------------------------------
class StepShape(LoadShape):
    """A staircase of stages of equal length: start_rate, start_rate + step_rate, ... (finding the knee)."""

    name = "step"

    def __init__(self, duration: float, params: Mapping[str, Any]) -> None:
        super().__init__(duration, params)
        self.count = int(self.params["stages"])
        self.stage_s = self.duration / self.count

    def _rate_of(self, index: int) -> float:
        return float(self.params["start_rate"]) + index * float(self.params["step_rate"])

    def rate(self, t: float) -> float:
        return self._rate_of(min(int(t // self.stage_s), self.count - 1))

    def stages(self) -> list[Stage]:
        return [Stage(i, i * self.stage_s, (i + 1) * self.stage_s, self._rate_of(i)) for i in range(self.count)]

    def describe(self) -> str:
        rates = ", ".join(f"{self._rate_of(i):g}" for i in range(self.count))
        return f"step: {self.count} stages of {self.stage_s:g} s at {rates} journeys/s"


# -- spike -----------------------------------------------------------------------------------------
class SpikeShape(LoadShape):
    """A steady base rate with one sudden spike (e.g. a cash-gift announcement sending everyone to VNeID)."""

    name = "spike"

    def _window(self) -> tuple[float, float]:
        start = float(self.params["spike_at"]) * self.duration
        return start, start + float(self.params["spike_s"])

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

    def rate(self, t: float) -> float:
        ramp = float(self.params["ramp_s"])
        rate = float(self.params["rate"])
        return rate if ramp <= 0 or t >= ramp else rate * t / ramp

    def describe(self) -> str:
        return f"soak: {self.params['rate']}/s for {self.duration:g} s after a {self.params['ramp_s']} s ramp"


def arrival_times(shape: LoadShape, max_rate: float) -> Iterator[tuple[int, float]]:
    """(n, intended seconds after start) of every arrival of a run, all workers together: uniform spacing,
    ``t_{n+1} = t_n + 1 / rate(t_n)`` with the rate clipped to ``max_rate``."""
    t, n = 0.0, 0
    anchor_t, anchor_n, anchor_rate = 0.0, 0, -1.0  # within a constant rate: no float drift
    while t < shape.duration - 1e-9:
        rate = min(shape.rate(t), max_rate)
        if rate <= 1e-9:
            t += 0.05
            anchor_rate = -1.0
            continue
        if rate != anchor_rate:
            anchor_t, anchor_n, anchor_rate = t, n, rate
        yield n, t
        n += 1
        t = anchor_t + (n - anchor_n) / rate


SHAPES: dict[str, type[LoadShape]] = {s.name: s for s in (CutoverShape, StepShape, SpikeShape, SoakShape)}


# -- parameters ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapeSpec:
    """A validated shape choice; picklable and JSON-able so workers build the same shape."""

    name: str
    duration: float
    params: dict[str, Any]

    def build(self) -> LoadShape:
        return SHAPES[self.name](self.duration, self.params)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "duration": self.duration, "params": self.params}


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
    spec.build()  # cross-field checks (e.g. open < close)
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
