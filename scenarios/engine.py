"""Scenarios: citizen journeys in YAML, run step by step for conformance and as weighted tasks under load.

A scenario file names its journey, weight in the load mix, required capabilities, default SLOs, and a list of
steps; each step is ``{step_name: {params}}`` with optional ``slo`` and ``name``. Steps are small Python
functions registered with :func:`step` together with a JSON Schema of their parameters, so a typo in a
scenario is reported as ``file:line: steps[2].submit_dossier.procedure: ...`` before anything runs.

Example::

    scenario = load_scenario("scenarios/library/birth-registration.yaml")
    results = ScenarioRunner(context).run(scenario)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import jsonschema

from haicap.errors import HaicapError
from haicap.evidence import EvidenceFailure
from haicap.yaml_source import YamlDocument, load_yaml_document

__all__ = [
    "LIBRARY",
    "SLO",
    "Scenario",
    "ScenarioContext",
    "ScenarioData",
    "ScenarioRunner",
    "StepCall",
    "StepFailed",
    "StepResult",
    "StepSkipped",
    "load_scenario",
    "load_scenarios",
    "step",
    "steps",
]

LIBRARY = Path(__file__).resolve().parent / "library"
SCHEMA_PATH = Path(__file__).resolve().parent / "scenario.schema.json"
Mode = Literal["conformance", "load"]


class StepFailed(EvidenceFailure):
    """The system under test did not do what the step expects; carries expected vs actual."""


class StepSkipped(Exception):
    """The step needs a capability the target does not declare."""


@dataclass(frozen=True)
class SLO:
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None

    def merged(self, override: SLO | None) -> SLO:
        if override is None:
            return self
        return SLO(
            p95_ms=override.p95_ms if override.p95_ms is not None else self.p95_ms,
            p99_ms=override.p99_ms if override.p99_ms is not None else self.p99_ms,
            error_rate=override.error_rate if override.error_rate is not None else self.error_rate,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SLO | None:
        return None if data is None else cls(**data)


@dataclass(frozen=True)
class StepSpec:
    name: str
    func: Callable[[ScenarioContext, dict[str, Any]], None]
    params_schema: dict[str, Any]
    requires: tuple[str, ...]
    description: str


_STEPS: dict[str, StepSpec] = {}


def step(
    name: str, *, params: dict[str, Any] | None = None, requires: tuple[str, ...] = ()
) -> Callable[[Callable[[ScenarioContext, dict[str, Any]], None]], Callable[[ScenarioContext, dict[str, Any]], None]]:
    """Register a step function under ``name`` with the JSON Schema of its parameters."""
    schema = {"type": "object", "additionalProperties": False, "properties": {}, **(params or {})}

    def register(func: Callable[[ScenarioContext, dict[str, Any]], None]) -> Callable[..., None]:
        if name in _STEPS:
            raise ValueError(f"step {name!r} is registered twice")
        jsonschema.Draft202012Validator.check_schema(schema)
        _STEPS[name] = StepSpec(name, func, schema, requires, (func.__doc__ or "").strip())
        return func

    return register


def steps() -> dict[str, StepSpec]:
    """Every registered step (the built-in ones are registered on first use)."""
    from haicap.scenarios import steps as _builtin  # noqa: F401

    return dict(_STEPS)


@dataclass(frozen=True)
class StepCall:
    step: str
    params: dict[str, Any]
    label: str
    slo: SLO | None
    line: int


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    description: str
    rule: str
    weight: float
    requires: tuple[str, ...]
    slo: SLO
    steps: tuple[StepCall, ...]
    path: Path

    def step_slo(self, call: StepCall) -> SLO:
        return self.slo.merged(call.slo)

    def capabilities(self) -> set[str]:
        needed = set(self.requires)
        registry = steps()
        for call in self.steps:
            needed.update(registry[call.step].requires)
        return needed


class ScenarioData(Protocol):
    """Where steps get citizens and dossier payloads (a pre-generated pool under load)."""

    def citizen(self) -> dict[str, Any]: ...

    def submission(self, procedure: str, commune: str | None, citizen: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class ScenarioContext:
    """Everything a step may touch; ``state`` carries the journey (session, dossier, payment) between steps."""

    province: Any  # haicap.province_client.ProvinceClient
    national: Any | None  # haicap.counterpart_client.CounterpartClient, None if the ledger is not reachable
    data: ScenarioData
    capabilities: frozenset[str]
    province_code: str
    sync_sla_seconds: float = 10.0
    mode: Mode = "conformance"
    communes: tuple[str, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    #: (MaHoSo, TrangThaiHoSo, deadline epoch, SLA seconds) left by expect_synced in load mode, verified by the
    #: load integrity check after the run
    sync_expectations: list[tuple[str, str, float, float]] = field(default_factory=list)
    #: how dossiers come in (haicap.submission_channel.SubmissionChannel); None: chosen from the capabilities
    submission_channel: Any | None = None

    def channel(self) -> Any:
        """The submission channel: the citizen API, or a national forward when only forwarding is declared."""
        if self.submission_channel is None:
            from haicap.submission_channel import choose_channel

            self.submission_channel = choose_channel(self.capabilities, self.province, self.national,
                                                     self.province_code)
        return self.submission_channel

    def require(self, *capabilities: str) -> None:
        missing = [c for c in capabilities if c not in self.capabilities]
        if missing:
            raise StepSkipped(f"capability not declared: {', '.join(missing)}")

    def get(self, key: str, step_name: str) -> Any:
        if key not in self.state:
            raise HaicapError(f"step {step_name} needs {key!r} from an earlier step (e.g. sso_login, submit_dossier)")
        return self.state[key]


@dataclass
class StepResult:
    call: StepCall
    status: Literal["passed", "failed", "skipped", "error"]
    seconds: float
    message: str = ""
    expected: Any = None
    actual: Any = None
    reproduce: str | None = None


class ScenarioRunner:
    """Run a scenario's steps in order; stop at the first step that does not pass."""

    def __init__(self, context: ScenarioContext) -> None:
        self.context = context

    def run(self, scenario: Scenario) -> list[StepResult]:
        registry = steps()
        results: list[StepResult] = []
        for call in scenario.steps:
            spec = registry[call.step]
            started = time.perf_counter()
            try:
                self.context.require(*spec.requires)
                spec.func(self.context, call.params)
            except StepFailed as exc:
                results.append(StepResult(call, "failed", time.perf_counter() - started, exc.message,
                                          exc.expected, exc.actual, exc.reproduce))
                break
            except StepSkipped as exc:
                results.append(StepResult(call, "skipped", time.perf_counter() - started, str(exc)))
                break
            except HaicapError as exc:
                results.append(StepResult(call, "error", time.perf_counter() - started, str(exc)))
                break
            results.append(StepResult(call, "passed", time.perf_counter() - started))
        return results


# -- loading ---------------------------------------------------------------------------------------
def _step_calls(document: YamlDocument) -> tuple[StepCall, ...]:
    registry = steps()
    calls: list[StepCall] = []
    for index, raw in enumerate(document.data["steps"]):
        names = [k for k in raw if k not in {"slo", "name"}]
        if len(names) != 1:
            raise document.error(("steps", index), f"a step has exactly one step name, got {names or 'none'}")
        name = names[0]
        if name not in registry:
            raise document.error(("steps", index, name),
                                 f"unknown step; valid steps: {', '.join(sorted(registry))}")
        params = raw[name] if raw[name] is not None else {}
        validator = jsonschema.Draft202012Validator(registry[name].params_schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(params))
        if error is not None:
            raise document.error(("steps", index, name, *error.absolute_path), error.message)
        calls.append(StepCall(
            step=name,
            params=params,
            label=raw.get("name") or name,
            slo=SLO.from_dict(raw.get("slo")),
            line=document.line_of(("steps", index)),
        ))
    return tuple(calls)


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate one scenario file; errors name file, line and field."""
    document = load_yaml_document(path)
    if not isinstance(document.data, dict):
        raise HaicapError(f"{document.path}: a scenario is a mapping with id, title and steps")
    document.validate(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    data = document.data
    return Scenario(
        id=data["id"],
        title=data["title"],
        description=data.get("description", ""),
        rule=data.get("rule", ""),
        weight=float(data.get("weight", 1)),
        requires=tuple(data.get("requires", ())),
        slo=SLO.from_dict(data.get("slo")) or SLO(),
        steps=_step_calls(document),
        path=document.path,
    )


def load_scenarios(paths: Iterable[Path | str] | None = None) -> dict[str, Scenario]:
    """The shipped library (``scenarios/library/*.yaml``) or the given files/folders, by id."""
    files: list[Path] = []
    for entry in ([LIBRARY] if paths is None else [Path(p) for p in paths]):
        files.extend(sorted(entry.glob("*.yaml")) if entry.is_dir() else [entry])
    scenarios: dict[str, Scenario] = {}
    for file in files:
        scenario = load_scenario(file)
        if scenario.id in scenarios:
            raise HaicapError(f"{file}: scenario id {scenario.id!r} is also used by {scenarios[scenario.id].path}")
        scenarios[scenario.id] = scenario
    return scenarios
