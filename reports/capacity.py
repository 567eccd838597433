"""Capacity sizing from a ``step`` load run: where the system stops meeting its SLO (the knee) and how many
instances the projected cutover peak needs.

The knee is the highest *achieved* throughput among the stages that met the SLO while the load generator kept
up. A stage meets the SLO by the rule of ``haicap load``'s gate: every gate the run is gated on (each scenario's
journey error rate, each step's p95/p99/error rate) passed on the stage's own measurements, each percentile
gate with enough samples (20 for p95, 100 for p99). The stages document carries each stage's gate results
(``gates``: breaches, insufficient, judged), written by :func:`haicap.loadtests.summary.build_stages`; a breach
names its gate ("login-submit / sso_login: p95 35 ms > 20 ms"). A stage whose gates had too few samples, or
that has no gate results, is **not judged** — never "meets SLO". A stages document without per-stage gate
results (an older or hand-written one) is judged on its stage-level p95/p99/error rate against its ``slo``,
with the same minimum sample counts over its requests. A stage where the generator fell behind says nothing
about the system under test (it was under-loaded, or its latency includes the generator's own queueing): it is
inconclusive. Neither a not-judged nor an inconclusive stage is ever the knee. If the highest conclusive stage
still met the SLO, the system did not break within the tested range and the knee is only a lower bound — the
report says so.

The projected peak is

    communes × dossiers per commune per peak hour × surge factor × requests per dossier journey / 3600

with every factor configurable (:class:`Projection`) and the defaults derived from DOMAIN.md "Load shape of the
cutover" (see :data:`DEFAULTS_RATIONALE`). Instances needed = ceil(peak × (1 + headroom) / knee per instance).

Example::

    sizing = size_capacity(json.load(open("run/stages.json")), Projection(province="79", surge_factor=3))
    print("\\n".join(sizing["arithmetic"]))
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from haicap.errors import HaicapError
from haicap.loadtests.slo import min_samples

__all__ = [
    "DEFAULTS_RATIONALE",
    "NATIONAL_DOSSIERS_PER_COMMUNE_DAY",
    "NO_BREACH",
    "PROVINCE_DAILY_DOSSIERS",
    "Projection",
    "capacity_answer",
    "size_capacity",
    "validate_stages",
    "validate_timeseries",
]

#: ≈ 4.4 million dossiers 1 Jul – 19 Aug 2025 (36 working days) ≈ 122,000 a working day over 3,321 communes.
NATIONAL_DOSSIERS_PER_COMMUNE_DAY = 37.0

_WORKING_DAYS_1JUL_19AUG = 36  # 1 Jul – 19 Aug 2025: 23 weekdays in July + 13 in August

#: Province-wide dossiers per working day where DOMAIN.md gives a figure for that province.
PROVINCE_DAILY_DOSSIERS: dict[str, tuple[float, str]] = {
    "01": (8000.0, "Hà Nội communes: > 8,000 dossiers a day (published cutover figures)"),
    "79": (645_000 / _WORKING_DAYS_1JUL_19AUG,
           "HCMC: > 645,000 dossiers 1 Jul – 19 Aug = 36 working days (published cutover figures)"),
    "11": (15_000 / _WORKING_DAYS_1JUL_19AUG,
           "Điện Biên: < 15,000 dossiers 1 Jul – 19 Aug = 36 working days (published cutover figures)"),
}

#: Why each default is what it is (shown in the capacity report next to the arithmetic).
DEFAULTS_RATIONALE: dict[str, str] = {
    "communes": "the province's current commune-level units (Decision 19/2025/QĐ-TTg, admin_units())",
    "dossiers_per_commune_day": (
        "the province's own published daily figure where there is one (Hà Nội, HCMC, Điện Biên), else "
        "the national average ≈ 37 per commune per working day (4.4 M dossiers / 36 working days / 3,321 communes)"
    ),
    "office_hours": "one-stop shops open ≈ 07:00–11:00 and 13:00–17:00 on weekdays: 8 hours",
    "peak_hour_factor": (
        "[assumption] the busiest hour carries 1.5× an average office hour: peaks ≈ 07:30–10:00 and 13:30–15:30 "
        "hold 4.5 of the 8 hours (the daily pattern of the cutover figures)"
    ),
    "surge_factor": (
        "[assumption] day-one surge 2×: catch-up and retries after degraded national services (VNeID login storm "
        "30 June, Dispatch 111/CĐ-TTg: ≥ two weeks of errors and slowness) and batch re-synchronisation"
    ),
    "requests_per_dossier": (
        "[assumption] 10 requests to the province per dossier journey: the birth-registration scenario makes 8 "
        "(2 sign-on hops, submit, 4 officer actions, 1 status look-up) plus 2 status look-ups by the citizen"
    ),
    "headroom": "[assumption] 30% spare capacity above the projected peak (one instance lost, noisy neighbours)",
    "instances_tested": "the step run drove one instance of the system under test",
}

_RATE_UNITS = ("requests/s", "iterations/s")


@dataclass(frozen=True)
class Projection:
    """How busy the cutover peak is. ``None`` fields are derived from ``province`` (see DEFAULTS_RATIONALE).

    YAML / CLI form: the same keys in a mapping, e.g. ``{"province": "79", "surge_factor": 3, "headroom": 0.5}``
    (:meth:`from_dict`). ``rate_unit="iterations/s"`` (a step run that counts scenario iterations) drops the
    requests-per-dossier factor: one iteration is one dossier journey.
    """

    province: str = "01"
    communes: int | None = None
    dossiers_per_commune_day: float | None = None
    office_hours: float = 8.0
    peak_hour_factor: float = 1.5
    surge_factor: float = 2.0
    requests_per_dossier: float = 10.0
    headroom: float = 0.3
    instances_tested: int = 1

    def __post_init__(self) -> None:
        positive = {
            "office_hours": self.office_hours,
            "peak_hour_factor": self.peak_hour_factor,
            "surge_factor": self.surge_factor,
            "requests_per_dossier": self.requests_per_dossier,
            "instances_tested": self.instances_tested,
            "communes": self.communes,
            "dossiers_per_commune_day": self.dossiers_per_commune_day,
        }
        for name, value in positive.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise HaicapError(f"projection {name} must be a positive number, got {value!r}")
        if isinstance(self.headroom, bool) or not isinstance(self.headroom, int | float) or not (
            0 <= self.headroom <= 10
        ):
            raise HaicapError(f"projection headroom must be a fraction between 0 and 10 (0.3 = 30%), "
                              f"got {self.headroom!r}")
        for name in ("communes", "instances_tested"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) or float(value).is_integer()):
                raise HaicapError(f"projection {name} must be a whole number, got {value!r}")
        if not isinstance(self.province, str) or not self.province:
            raise HaicapError(f"projection province must be a province code such as '01', got {self.province!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Projection:
        if not isinstance(data, dict):
            raise HaicapError(f"a projection must be a mapping of {', '.join(cls.field_names())}, "
                              f"got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise HaicapError(f"unknown projection key {', '.join(unknown)}; valid keys: "
                              f"{', '.join(cls.field_names())}")
        return cls(**{key: _coerce(key, value) for key, value in data.items()})

    @staticmethod
    def field_names() -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(Projection))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolve(self) -> tuple[int, float, dict[str, str]]:
        """(communes, dossiers per commune per working day, where each came from)."""
        sources: dict[str, str] = {}
        communes = self.communes
        if communes is None:
            from haicap.data_generators.units import admin_units

            units = admin_units()
            province = units.province(self.province)  # HaicapError naming the valid codes
            communes = len(units.communes(self.province))
            sources["communes"] = f"{province.name}: {communes} current communes (admin_units())"
        else:
            sources["communes"] = "given"
        communes = int(communes)
        per_day = self.dossiers_per_commune_day
        if per_day is None:
            known = PROVINCE_DAILY_DOSSIERS.get(self.province)
            if known is not None and self.communes is None:
                per_day = known[0] / communes
                sources["dossiers_per_commune_day"] = f"{known[1]}: {known[0]:,.0f} / {communes} communes"
            else:
                per_day = NATIONAL_DOSSIERS_PER_COMMUNE_DAY
                sources["dossiers_per_commune_day"] = ("national average ≈ 37 per commune per working day "
                                                       "(published cutover figures)")
        else:
            sources["dossiers_per_commune_day"] = "given"
        return communes, float(per_day), sources


def _coerce(key: str, value: Any) -> Any:
    """CLI/YAML leniency: ``province: 1`` (YAML reads 01 as a number) is "01"; "3" is 3 for numeric keys."""
    if key == "province":
        return f"{value:02d}" if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and key in {"communes", "instances_tested"} else number
    return value


# -- the stages document ---------------------------------------------------------------------------------
@cache
def _validator(schema_file: str) -> jsonschema.Draft202012Validator:
    text = resources.files("haicap.reports").joinpath(schema_file).read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _raise_schema_errors(doc: Any, schema_file: str, what: str) -> None:
    errors = sorted(_validator(schema_file).iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise HaicapError(f"invalid {what}: {_path(first)}: {first.message}{more}")


def validate_timeseries(timeseries_doc: Any) -> None:
    """Raise :class:`HaicapError` naming the first offending field when ``timeseries_doc`` is not a
    timeseries.json."""
    if not isinstance(timeseries_doc, dict):
        raise HaicapError(f"timeseries document must be a JSON object with 'interval_s' and 'samples', "
                          f"got {type(timeseries_doc).__name__}")
    _raise_schema_errors(timeseries_doc, "timeseries.schema.json", "timeseries document")


def validate_stages(stages_doc: Any) -> None:
    """Raise :class:`HaicapError` naming the first offending field when ``stages_doc`` is not a stages.json."""
    if not isinstance(stages_doc, dict):
        raise HaicapError(f"stages document must be a JSON object with 'slo' and 'stages', "
                          f"got {type(stages_doc).__name__}")
    if "stages" in stages_doc and stages_doc["stages"] == []:
        raise HaicapError("stages document has no stages: the step run recorded nothing to size capacity from")
    _raise_schema_errors(stages_doc, "stages.schema.json", "stages document")
    indexes = [s["index"] for s in stages_doc["stages"]]
    if len(set(indexes)) != len(indexes):
        raise HaicapError(f"invalid stages document: stage indexes repeat: {indexes}")
    for stage in stages_doc["stages"]:
        if stage["errors"] > stage["requests"]:
            raise HaicapError(f"invalid stages document: stages[index={stage['index']}] has more errors "
                              f"({stage['errors']}) than requests ({stage['requests']})")
        _check_gates(stage)


_BREACH_KEYS = ("metric", "limit", "actual")
_INSUFFICIENT_KEYS = ("metric", "samples", "needed")


def _check_gates(stage: dict[str, Any]) -> None:
    """A stage's gate results, when present: ``{"judged": bool, "breaches": [...], "insufficient": [...]}``."""
    if "gates" not in stage:
        return
    gates, where = stage["gates"], f"stages[index={stage['index']}].gates"
    if not isinstance(gates, dict) or not isinstance(gates.get("judged"), bool):
        raise HaicapError(f"invalid stages document: {where} must be an object with judged (true/false), "
                          "breaches and insufficient")
    for key, needed in (("breaches", _BREACH_KEYS), ("insufficient", _INSUFFICIENT_KEYS)):
        items = gates.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and all(k in i for k in needed)
                                                  for i in items):
            raise HaicapError(f"invalid stages document: {where}.{key} must be a list of objects with "
                              f"{', '.join(needed)}")


# -- the knee --------------------------------------------------------------------------------------------
def _gate_name(item: dict[str, Any]) -> str:
    scenario, step = item.get("scenario"), item.get("step")
    if scenario is None:
        return str(step)
    return f"{scenario} / {step}" if step else f"{scenario} (journeys)"


def _breach_reason(breach: dict[str, Any]) -> str:
    metric, limit, actual = breach["metric"], breach["limit"], breach["actual"]
    if metric == "error_rate":
        text = f"error rate {actual:.2%} > {limit:.2%}"
    elif metric in ("p95_ms", "p99_ms"):
        text = f"{metric[:3]} {actual:,.0f} ms > {limit:,.0f} ms"
    else:
        text = f"{metric} {actual} > {limit}"
    return f"{_gate_name(breach)}: {text} ({breach.get('samples', '?')} samples)"


def _insufficient_reason(items: list[dict[str, Any]]) -> str:
    listed = ", ".join(f"{_gate_name(i)} {i['metric'][:3]} ({i['samples']} < {i['needed']})" for i in items[:4])
    more = f" and {len(items) - 4} more" if len(items) > 4 else ""
    return (f"too few samples to judge {listed}{more}: run longer stages, at higher rates, or fewer scenarios "
            "(--scenario)")


def _judge_numbers(stage: dict[str, Any], slo: dict[str, Any]) -> tuple[str, list[str]]:
    """A stage without gate results: its request percentiles and error rate against ``slo``."""
    reasons, short = [], []
    error_rate = stage["error_rate"]
    if error_rate is None:
        error_rate = stage["errors"] / stage["requests"]
    for key, label, value, pct in (("p95_ms", "p95", stage["p95_ms"], 95), ("p99_ms", "p99", stage["p99_ms"], 99)):
        limit = slo.get(key)
        if limit is None:
            continue
        if value is None:
            reasons.append(f"{label} not measured")
        elif stage["requests"] < min_samples(pct):
            short.append({"scenario": None, "step": "requests", "metric": key, "samples": stage["requests"],
                          "needed": min_samples(pct)})
        elif value > limit:
            reasons.append(f"{label} {value:,.0f} ms > {limit:,.0f} ms")
    limit = slo.get("error_rate")
    if limit is not None and error_rate > limit:
        reasons.append(f"error rate {error_rate:.2%} > {limit:.2%}")
    if reasons:
        return "breaches SLO", reasons
    return ("not judged", [_insufficient_reason(short)]) if short else ("meets SLO", [])


#: A stage where every gate it could judge passed but some gates had too few samples: evidence for a lower
#: bound of the knee ("knee ≥ X"), never the knee itself.
NO_BREACH = "no breach (partly judged)"


def _judge(stage: dict[str, Any], slo: dict[str, Any]) -> tuple[str, list[str]]:
    """("meets SLO" | "no breach (partly judged)" | "breaches SLO" | "not judged" | "inconclusive", reasons)."""
    if not stage["generator_kept_up"]:
        return "inconclusive", ["the load generator did not keep up (backlog or CPU > 80%): the system was "
                                "under-loaded or its latency includes the generator's queueing"]
    if stage["requests"] == 0:
        return "inconclusive", ["no requests were recorded in this stage"]
    gates = stage.get("gates")
    if gates is None:
        return _judge_numbers(stage, slo)
    if not gates.get("judged"):
        return "not judged", [gates.get("note") or "the stage has no SLO gate results"]
    breaches = gates.get("breaches") or []
    if breaches:
        return "breaches SLO", [_breach_reason(b) for b in breaches]
    counts = gates.get("counts") or {}
    if gates.get("insufficient") or counts.get("not_judged"):
        if counts.get("judged"):
            return NO_BREACH, [f"judged {counts['judged']} of {counts['total']} gates, none breached; "
                               + (_insufficient_reason(gates["insufficient"]) if gates.get("insufficient")
                                  else "the others had no samples in this stage")]
        return "not judged", [_insufficient_reason(gates.get("insufficient") or [])]
    return "meets SLO", []


def _find_knee(stages_doc: dict[str, Any], unit: str) -> dict[str, Any]:
    slo = stages_doc["slo"]
    stages = sorted(stages_doc["stages"], key=lambda s: s["index"])
    judged = []
    for stage in stages:
        verdict, reasons = _judge(stage, slo)
        judged.append({**stage, "verdict": verdict, "reasons": reasons})
    meeting = [j for j in judged if j["verdict"] == "meets SLO"]
    breaching = [j for j in judged if j["verdict"] == "breaches SLO"]
    inconclusive = [j for j in judged if j["verdict"] == "inconclusive"]
    not_judged = [j for j in judged if j["verdict"] == "not judged"]
    notes: list[str] = []
    for group, word in ((inconclusive, "inconclusive"), (not_judged, "not judged")):
        if group:
            notes.append(f"stage(s) {', '.join(str(j['index']) for j in group)} {word}: "
                         + "; ".join(sorted({j['reasons'][0] for j in group})) + " — not used for the knee")
    knee = max(meeting, key=lambda j: (j["achieved_rate"], -j["index"])) if meeting else None
    lower_bound = False
    partial = [j for j in judged if j["verdict"] == NO_BREACH]
    if knee is None and partial:
        return _partial_knee(judged, partial, breaching, notes, unit)
    if knee is None:
        if breaching:
            first = min(breaching, key=lambda j: j["index"])
            lower = [j for j in not_judged if j["index"] < first["index"]]
            notes.append(f"no stage met the SLO: the system breached it at {first['achieved_rate']:,.1f} {unit} "
                         f"(stage {first['index']})"
                         + (f"; the stage(s) below, {', '.join(str(j['index']) for j in lower)}, were not judged: "
                            "run longer stages" if lower else "; run a lower staircase"))
        elif not_judged:
            notes.append("no stage could be judged against the SLO gates (see above); no knee")
        else:
            notes.append("no conclusive stage: the generator never kept up; add workers (--processes) and rerun")
    else:
        higher_breach = [j for j in breaching if j["achieved_rate"] >= knee["achieved_rate"]
                         or j["index"] > knee["index"]]
        if not higher_breach:
            lower_bound = True
            notes.append(f"no conclusive stage breached the SLO: the knee is at least {knee['achieved_rate']:,.1f} "
                         f"{unit} (a lower bound); extend the staircase to find where it breaks")
        breaking = min(higher_breach, key=lambda j: j["index"]) if higher_breach else None
        if breaking is not None:
            notes.append(f"first breach above the knee: stage {breaking['index']} at "
                         f"{breaking['achieved_rate']:,.1f} {unit} ({'; '.join(breaking['reasons'])})")
    return {"stages": judged, "knee": knee, "lower_bound": lower_bound, "notes": notes}


def _partial_knee(judged: list[dict[str, Any]], partial: list[dict[str, Any]], breaching: list[dict[str, Any]],
                  notes: list[str], unit: str) -> dict[str, Any]:
    """No stage was judged on every gate, but some passed every gate they could judge: the highest of those
    below the first breach is a lower bound of the knee ("knee ≥ X"), between X and the breach if there is one."""
    first = min(breaching, key=lambda j: j["index"]) if breaching else None
    below = [j for j in partial if first is None or j["index"] < first["index"]]
    if not below:
        assert first is not None
        notes.append(f"no stage met the SLO: the system breached it at {first['achieved_rate']:,.1f} {unit} "
                     f"(stage {first['index']}; {'; '.join(first['reasons'])}); run a lower staircase")
        return {"stages": judged, "knee": None, "lower_bound": False, "notes": notes}
    knee = max(below, key=lambda j: (j["achieved_rate"], -j["index"]))
    judged_counts = knee.get("gates", {}).get("counts", {})
    share = f"{judged_counts.get('judged', '?')} of {judged_counts.get('total', '?')} gates"
    if first is None:
        notes.append(f"knee ≥ {knee['achieved_rate']:,.1f} {unit}: no stage breached the gates it could judge "
                     f"(stage {knee['index']} judged {share}); extend the staircase or lengthen the stages to "
                     "find where it breaks")
    else:
        notes.append(f"knee between {knee['achieved_rate']:,.1f} and {first['achieved_rate']:,.1f} {unit}: stage "
                     f"{first['index']} breached ({'; '.join(first['reasons'])}); stage {knee['index']} below it "
                     f"breached none of the {share} it could judge")
    return {"stages": judged, "knee": knee, "lower_bound": True, "notes": notes}


def capacity_answer(sizing: dict[str, Any]) -> str:
    """The capacity answer in one line, as the console prints it."""
    unit, knee, instances = sizing["rate_unit"], sizing["knee"], sizing["instances"]
    if knee is None:
        return "capacity: no knee — " + (sizing["notes"][-1] if sizing["notes"] else "no stage could be judged")
    rate = knee["achieved_rate"]
    head = (f"capacity: knee ≥ {rate:,.1f} {unit} (a lower bound)" if sizing["knee_is_lower_bound"]
            else f"capacity: knee {rate:,.1f} {unit}")
    peak = sizing["peak"]["rate_with_headroom"]
    if instances is not None:
        head += (f"; the projected peak with headroom, {peak:,.2f} {unit}, needs "
                 f"{'at most ' if sizing['knee_is_lower_bound'] else ''}{instances} instance"
                 f"{'s' if instances != 1 else ''}")
    return head


# -- sizing ----------------------------------------------------------------------------------------------
def size_capacity(stages_doc: Any, projection: Projection | dict[str, Any] | None = None) -> dict[str, Any]:
    """Knee, projected peak and instances needed, with the arithmetic as lines of text.

    Returns ``{"rate_unit", "slo", "knee": {...} | None, "knee_is_lower_bound", "knee_per_instance", "stages":
    [{"index", "verdict", "reasons", ...}], "notes", "projection", "sources", "peak": {...}, "instances" |
    None, "arithmetic": [str], "assumptions": {field: why}}``.
    """
    validate_stages(stages_doc)
    if projection is None:
        projection = Projection()
    elif isinstance(projection, dict):
        projection = Projection.from_dict(projection)
    elif not isinstance(projection, Projection):
        raise HaicapError(f"projection must be a Projection or a mapping, got {type(projection).__name__}")
    unit = stages_doc.get("rate_unit", "requests/s")
    found = _find_knee(stages_doc, unit)

    communes, per_day, sources = projection.resolve()
    per_hour = per_day / projection.office_hours * projection.peak_hour_factor
    dossiers_hour = communes * per_hour * projection.surge_factor
    per_dossier = projection.requests_per_dossier if unit == "requests/s" else 1.0
    peak_rate = dossiers_hour * per_dossier / 3600.0
    needed_rate = peak_rate * (1 + projection.headroom)
    word = "requests" if unit == "requests/s" else "journeys"
    arithmetic = [
        f"dossiers per commune in the peak hour = {per_day:,.2f} per day / {projection.office_hours:g} office hours "
        f"× {projection.peak_hour_factor:g} peak-hour factor = {per_hour:,.2f}",
        f"peak dossiers per hour = {communes:,} communes × {per_hour:,.2f} × {projection.surge_factor:g} surge "
        f"= {dossiers_hour:,.0f}",
    ]
    if unit == "requests/s":
        arithmetic.append(f"projected peak = {dossiers_hour:,.0f} dossiers/h × {per_dossier:g} requests per dossier "
                          f"/ 3600 s = {peak_rate:,.2f} requests/s")
    else:
        arithmetic.append(f"projected peak = {dossiers_hour:,.0f} journeys/h / 3600 s = {peak_rate:,.3f} "
                          "iterations/s (one scenario iteration is one dossier journey)")
    arithmetic.append(f"needed with {projection.headroom:.0%} headroom = {peak_rate:,.2f} × "
                      f"{1 + projection.headroom:g} = {needed_rate:,.2f} {unit}")

    knee = found["knee"]
    instances: int | None = None
    knee_per_instance: float | None = None
    if knee is not None and knee["achieved_rate"] > 0:
        knee_per_instance = knee["achieved_rate"] / projection.instances_tested
        raw = needed_rate / knee_per_instance
        instances = max(1, math.ceil(raw - 1e-9))
        if projection.instances_tested != 1:
            arithmetic.append(f"knee per instance = {knee['achieved_rate']:,.1f} {unit} / "
                              f"{projection.instances_tested} instances tested = {knee_per_instance:,.1f}")
        arithmetic.append(f"instances = ceil({needed_rate:,.2f} / {knee_per_instance:,.1f} {unit} per instance) "
                          f"= ceil({raw:,.3f}) = {instances}"
                          + (" (the knee is a lower bound, so this is an upper bound)" if found["lower_bound"]
                             else ""))
    else:
        arithmetic.append("instances: not computable — no stage met the SLO with the generator keeping up")

    return {
        "rate_unit": unit,
        "slo": dict(stages_doc["slo"]),
        "knee": knee,
        "knee_is_lower_bound": found["lower_bound"],
        "knee_lower_bound": knee["achieved_rate"] if knee is not None and found["lower_bound"] else None,
        "knee_per_instance": knee_per_instance,
        "stages": found["stages"],
        "notes": found["notes"],
        "projection": {**projection.to_dict(), "communes": communes, "dossiers_per_commune_day": per_day},
        "sources": sources,
        "peak": {
            "dossiers_per_commune_hour": per_hour,
            "dossiers_per_hour": dossiers_hour,
            f"{word}_per_dossier": per_dossier,
            "rate": peak_rate,
            "rate_with_headroom": needed_rate,
        },
        "instances": instances,
        "arithmetic": arithmetic,
        "assumptions": dict(DEFAULTS_RATIONALE),
    }
