"""results.json of ``haicap certify``: built from the per-check records, schema-validated, merged on re-runs.

A criterion's verdict follows the national checklist: *ready* when every check of it passed, *not ready* when
any failed, *could not run* when one errored and none failed, *not tested* when all were skipped or none was run
(``--only``). Every criterion of the checklist has a verdict, so a partial run can never read as a full one.

The run's readiness is *ready* only when every criterion is ready; *not ready* / *could not run* when any criterion
is; *not tested* when no check passed; otherwise *incomplete* (some criteria ready, the others not tested). ``ok``
(exit 0) means no check failed or errored and at least one passed: a run that verified nothing is not a success.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from haicap import __version__
from haicap.conformance.registry import CRITERIA, CheckSpec
from haicap.errors import HaicapError

__all__ = ["build_results", "load_results", "readiness", "verdicts", "write_results"]

SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"
STATUSES = ("passed", "failed", "skipped", "error")


def verdicts(checks: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for criterion in CRITERIA:
        statuses = {c["status"] for c in checks if c["criterion"] == criterion}
        if not statuses:
            out[criterion] = "not tested"
        elif "failed" in statuses:
            out[criterion] = "not ready"
        elif "error" in statuses:
            out[criterion] = "could not run"
        elif statuses == {"skipped"}:
            out[criterion] = "not tested"
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
    return "incomplete" if "ready" in values else "not tested"


def build_results(
    records: list[dict[str, Any]],
    expected: list[CheckSpec],
    *,
    target: dict[str, Any],
    seed: int,
    started: str,
    finished: str,
    previous: dict[str, Any] | None = None,
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
                "rule": spec.rule, "status": "error", "message": "the check did not run (see the pytest output)",
            }
    order = {criterion: i for i, criterion in enumerate(CRITERIA)}
    checks = sorted(by_id.values(), key=lambda c: (order.get(c["criterion"], 99), c["id"]))
    counts = Counter(c["status"] for c in checks)
    summary = {"total": len(checks), **{s: counts.get(s, 0) for s in STATUSES}}
    summary["ok"] = summary["failed"] == 0 and summary["error"] == 0 and summary["passed"] > 0
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
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise HaicapError(f"{path}: no previous results to re-run (run without --rerun-failed first)") from None
    except (ValueError, jsonschema.ValidationError) as exc:
        raise HaicapError(f"{path}: not a haicap results file: {str(exc).splitlines()[0]}") from None
    return data  # type: ignore[no-any-return]
