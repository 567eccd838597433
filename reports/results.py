"""results.json of ``haicap certify``: built from the per-check records, schema-validated, merged on re-runs.

A criterion's verdict follows the national checklist: *ready* only when every check of it was run and passed;
*not ready* when any failed; *could not run* when one errored (reached no verdict) and none failed; *incomplete*
when some passed but others were skipped (a capability not declared) or not selected (``--only SSO-09``); *not
tested* when all were skipped or none was run (``--only``). Every criterion of the checklist has a verdict, so a
partial run can never read as a full one.

The run's readiness is *ready* only when every criterion is ready; *not ready* / *could not run* when any
criterion is; *not tested* when no check passed; otherwise *incomplete*.

The exit code (``summary.exit_code``, one scheme for ``certify`` and ``load``): 0 every selected check passed;
1 a rule was broken (a check failed); 2 the run could not start (pre-flight, arguments, profile — raised as
:class:`~haicap.errors.HaicapError`); 3 incomplete: a selected check was skipped (capability not declared) or
reached no verdict (error), unless ``allow_incomplete``. A run that verified nothing is never 0.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from haicap import __version__
from haicap.conformance.registry import CRITERIA, CheckSpec, all_checks
from haicap.errors import HaicapError

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_UNUSABLE", "build_results", "exit_code",
           "load_results", "preflight_results", "readiness", "verdicts", "write_results"]

SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"
STATUSES = ("passed", "failed", "skipped", "error")
EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE, EXIT_INCOMPLETE = 0, 1, 2, 3


def verdicts(checks: list[dict[str, Any]], registered: dict[str, set[str]] | None = None) -> dict[str, str]:
    """One verdict per criterion (see the module docstring). ``registered``: the check ids of each criterion
    (default: the registry's), so a criterion of which only some checks were selected is *incomplete*."""
    if registered is None:
        registered = {}
        for spec in all_checks():
            registered.setdefault(spec.criterion, set()).add(spec.id)
    out: dict[str, str] = {}
    for criterion in CRITERIA:
        mine = [c for c in checks if c["criterion"] == criterion]
        statuses = {c["status"] for c in mine}
        if not statuses or statuses == {"skipped"}:
            out[criterion] = "not tested"
        elif "failed" in statuses:
            out[criterion] = "not ready"
        elif "error" in statuses:
            out[criterion] = "could not run"
        elif "skipped" in statuses or not registered.get(criterion, set()) <= {c["id"] for c in mine}:
            out[criterion] = "incomplete"
        else:
            out[criterion] = "ready"
    return out


def readiness(by_criterion: dict[str, str]) -> str:
    """The run's overall verdict from the per-criterion ones (see the module docstring)."""
    values = set(by_criterion.values())
    for verdict in ("not ready", "could not run"):
        if verdict in values:
            return verdict
    if values == {"ready"}:
        return "ready"
    return "incomplete" if values & {"ready", "incomplete"} else "not tested"


def exit_code(summary: dict[str, Any], *, allow_incomplete: bool = False) -> int:
    """0 / 1 / 3 from a run's counts (2 is for runs that could not start: see the module docstring)."""
    if summary["failed"]:
        return EXIT_FAILED
    if summary["passed"] == 0:
        return EXIT_INCOMPLETE
    if (summary["error"] or summary["skipped"]) and not allow_incomplete:
        return EXIT_INCOMPLETE
    return EXIT_OK


def build_results(
    records: list[dict[str, Any]],
    expected: list[CheckSpec],
    *,
    target: dict[str, Any],
    seed: int,
    started: str,
    finished: str,
    previous: dict[str, Any] | None = None,
    allow_incomplete: bool = False,
    preflight: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge records (and, on a re-run, the previous results) into one results document."""
    by_id: dict[str, dict[str, Any]] = {}
    if previous is not None:
        by_id.update({c["id"]: c for c in previous["checks"]})
    by_id.update({r["id"]: r for r in records})
    for spec in expected:  # a check that produced no record did not run: say so, never drop it
        if spec.id not in by_id:
            by_id[spec.id] = {
                "id": spec.id, "criterion": spec.criterion, "severity": spec.severity, "title": spec.title,
                "rule": spec.rule, "status": "error",
                "message": "the check did not run (see pytest.log in the run folder)",
            }
    order = {criterion: i for i, criterion in enumerate(CRITERIA)}
    checks = sorted(by_id.values(), key=lambda c: (order.get(c["criterion"], 99), c["id"]))
    counts = Counter(c["status"] for c in checks)
    summary = {"total": len(checks), **{s: counts.get(s, 0) for s in STATUSES}}
    summary["ok"] = summary["failed"] == 0 and summary["error"] == 0 and summary["passed"] > 0
    summary["exit_code"] = exit_code(summary, allow_incomplete=allow_incomplete)
    by_criterion = verdicts(checks)
    summary["readiness"] = readiness(by_criterion)
    reruns = list(previous.get("reruns", [])) if previous else []
    if previous is not None:  # the first run's target stays the target; each re-run says what it changed
        reruns.append({"started": started, "finished": finished, "checks": sorted(r["id"] for r in records),
                       "faults": target.get("faults", [])})
    return {
        "haicap_version": __version__,
        "target": previous["target"] if previous else target,
        **({"reruns": reruns} if reruns else {}),
        "seed": seed,
        "started": previous["started"] if previous else started,
        "finished": finished,
        "checks": checks,
        "summary": summary,
        "verdicts": by_criterion,
        **({"preflight": preflight} if preflight is not None else {}),
    }


def preflight_results(
    preflight: dict[str, Any], *, target: dict[str, Any], seed: int, started: str, finished: str,
    criteria: set[str] | None,
) -> dict[str, Any]:
    """results.json of a run stopped by its pre-flight: no check ran, the selected criteria could not run."""
    by_criterion = {c: ("could not run" if criteria is None or c in criteria else "not tested") for c in CRITERIA}
    summary = {"total": 0, **{s: 0 for s in STATUSES}, "ok": False, "readiness": "could not run",
               "exit_code": EXIT_UNUSABLE}
    return {"haicap_version": __version__, "target": target, "seed": seed, "started": started, "finished": finished,
            "checks": [], "summary": summary, "verdicts": by_criterion, "preflight": preflight}


def write_results(path: Path, results: dict[str, Any]) -> None:
    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise HaicapError(f"{path}: no previous results to re-run (run without --rerun-failed first)") from None
    except OSError as exc:  # a folder of that name, no permission
        raise HaicapError(f"{path}: cannot read the previous results: {exc.strerror}") from None
    except (ValueError, jsonschema.ValidationError) as exc:
        raise HaicapError(f"{path}: not a haicap results file: {str(exc).splitlines()[0]}") from None
    return data  # type: ignore[no-any-return]
