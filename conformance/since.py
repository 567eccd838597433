"""``haicap certify --since bundle.zip``: delta re-certification against a previous signed bundle.

A province that changed one thing should not wait for the whole suite, and a reader of the new report must still
see why each check's verdict can be trusted. So the previous bundle is verified first (a bundle that does not
verify is refused, exit 2, naming the first problem), then each selected check is either **re-run** or
**carried** with the record from the bundle's results.json (``carried_from``: the bundle's created time).

A check is re-run when (each reason is recorded, per check, in results.json ``delta.checks``):

- the whole suite changed: haicap's version or the contracts' SHA-256 (``versions.json``) differ from this
  haicap's — every check re-runs;
- haicap's shared code changed (``shared_sha256``: the runner, the clients, the sandbox, the data generators):
  every check re-runs;
- its own code changed: its hash in ``versions.json`` differs from this haicap's, or the bundle has none (a new
  check); or the code its module's checks share changed (``check_modules``: the module without its ``@check``
  functions) — every check of that module re-runs;
- the profile changed in a field it reads: the redacted profile in the bundle is compared with the current one,
  field by field. Only the fields in :data:`FIELD_CRITERIA` are attributed (to the criteria whose checks read
  them); ``capabilities`` re-runs the checks that require a capability that was added or removed (and every check
  needing a derived one); a change to any other field re-runs everything (conservative: a URL, a credential or a
  back office reaches every criterion). Secret *values* are not in the bundle, so a rotated secret is not seen;
- it did not pass in the bundle: failed, error, skipped, or waived.

Everything else is carried (``carried_from``: when the check last really ran — the bundle's created time, or the
time a record already carried in that bundle had). ``--since`` is refused for another province, another seed,
the embedded sandbox against a profile's province (or the reverse), another set of sandbox faults, or a bundle
whose run stopped in its pre-flight: the carried evidence would describe another target.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["FIELD_CRITERIA", "SinceBundle", "check_since_matches", "load_since", "plan_delta", "profile_changes"]

#: Profile fields that reach only some criteria (the checks that read them live in these criteria's modules), or
#: none (``name`` is a label, ``signing_key_file`` signs the bundle). Any other field re-runs every check.
FIELD_CRITERIA: dict[str, frozenset[str]] = {
    "name": frozenset(),
    "signing_key_file": frozenset(),
    "sso_clock_skew_seconds": frozenset({"sso"}),
    "sso_mixup_province_url": frozenset({"sso"}),
    "sync_retry_seconds": frozenset({"sync"}),
}
_NOT_PASSED = {"failed": "failed in the bundle", "error": "reached no verdict (error) in the bundle",
               "skipped": "skipped in the bundle"}


@dataclass(frozen=True)
class SinceBundle:
    """What a verified bundle carries into a delta run."""

    path: Path
    created: str
    signer: str
    results: dict[str, Any]
    versions: dict[str, Any]
    profile: dict[str, Any] | None
    junit: bytes | None


def load_since(path: Path, trusted: Any = None) -> SinceBundle:
    """The bundle at ``path``, verified (and signed by ``trusted`` when given); HaicapError names why not."""
    from haicap.reports.bundle import read_bundle, verify_members
    from haicap.reports.results import SCHEMA_PATH

    try:
        members = read_bundle(path)
    except HaicapError as exc:
        raise HaicapError(f"--since: {exc}") from None
    problems, info = verify_members(members, trusted)
    if problems or info is None:
        more = f" (and {len(problems) - 1} more problem(s); haicap verify lists them)" if len(problems) > 1 else ""
        raise HaicapError(f"--since {path}: the bundle does not verify: {problems[0]}{more}; nothing was run")
    try:
        import jsonschema

        results = json.loads(members["results.json"])
        jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
        versions = json.loads(members["versions.json"])
        profile = json.loads(members["profile.redacted.json"]) if "profile.redacted.json" in members else None
    except KeyError as exc:
        raise HaicapError(f"--since {path}: the bundle has no {exc.args[0]}: made by an older haicap; run a full "
                          "certify") from None
    except (ValueError, jsonschema.ValidationError) as exc:
        raise HaicapError(f"--since {path}: results.json or versions.json is unusable: "
                          f"{str(exc).splitlines()[0]}") from None
    return SinceBundle(path, info.created, info.key_id, results, versions, profile, members.get("junit.xml"))


def check_since_matches(since: SinceBundle, *, embedded: bool, province: str, faults: list[str],
                        seed: int) -> None:
    """Refuse a bundle of another target: its carried evidence would describe something this run does not test."""
    before = since.results["target"]
    how = "run without --since (a full certify)"
    name = f"--since {since.path}"
    if since.results.get("preflight", {}).get("ok") is False or not since.results["checks"]:
        raise HaicapError(f"{name}: that run stopped before any check ran; nothing to carry; {how}")
    if bool(before.get("embedded_sandbox")) != embedded:
        was = "the embedded sandbox" if before.get("embedded_sandbox") else "a profile's province"
        raise HaicapError(f"{name}: the bundle tested {was}; {how}")
    if before.get("province") != province:
        raise HaicapError(f"{name}: the bundle tested province {before.get('province')}, not {province}; {how}")
    if embedded and sorted(set(faults)) != sorted(before.get("faults") or []):
        was = ", ".join(before.get("faults") or []) or "none"
        raise HaicapError(f"{name}: the bundle tested the sandbox with faults {was}, not "
                          f"{', '.join(sorted(set(faults))) or 'none'}; pass the same --fault values, or {how}")
    if since.results["seed"] != seed:
        raise HaicapError(f"{name}: the bundle was run with --seed {since.results['seed']}, not {seed}; {how}")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def profile_changes(before: dict[str, Any] | None, now: dict[str, Any] | None) -> list[str]:
    """The dotted paths of the profile fields that differ (added, removed or changed), sorted."""
    old, new = _flatten(before or {}), _flatten(now or {})
    return sorted(path for path in set(old) | set(new) if old.get(path, _MISSING) != new.get(path, _MISSING))


_MISSING = object()


def _field_change(field: str) -> str:
    top = field.split(".")[0]
    if top == "capabilities":
        return f"profile field {field} changed: re-runs the checks requiring a capability added or removed"
    if top in FIELD_CRITERIA:
        reach = ", ".join(sorted(FIELD_CRITERIA[top])) or "no criterion"
        return f"profile field {field} changed: read by {reach}"
    return f"profile field {field} changed: reaches every criterion"


def _capability_change(before: dict[str, Any] | None, now: dict[str, Any] | None) -> set[str]:
    old = set((before or {}).get("capabilities") or [])
    new = set((now or {}).get("capabilities") or [])
    return old ^ new


def _suite_reasons(since: SinceBundle, current: dict[str, Any], changed_fields: list[str]) -> list[str]:
    """Reasons that re-run every check."""
    reasons = []
    if since.versions.get("haicap") != current["haicap"]:
        reasons.append(f"haicap changed: {since.versions.get('haicap')} → {current['haicap']}")
    if since.versions.get("contracts_sha256") != current["contracts_sha256"]:
        reasons.append(f"the contracts changed (SHA-256 {str(since.versions.get('contracts_sha256'))[:12]}… → "
                       f"{current['contracts_sha256'][:12]}…)")
    if since.versions.get("shared_sha256") != current.get("shared_sha256"):
        reasons.append("haicap's shared code changed (runner, clients, sandbox or data generators)"
                       if since.versions.get("shared_sha256") else "the bundle does not record haicap's shared code")
    unattributed = [f for f in changed_fields if f.split(".")[0] not in FIELD_CRITERIA
                    and f.split(".")[0] != "capabilities"]
    if unattributed:
        reasons.append(f"the profile changed in {', '.join(unattributed)}, which reaches every criterion")
    return reasons


def _module_reason(spec: Any, since: SinceBundle, current: dict[str, Any]) -> list[str]:
    module = spec.func.__module__
    old = (since.versions.get("check_modules") or {}).get(module)
    if old == (current.get("check_modules") or {}).get(module):
        return []
    return [f"the shared code of its module {module.rsplit('.', 1)[-1]} changed" if old else
            f"the bundle has no hash of its module {module.rsplit('.', 1)[-1]}"]


def _check_reasons(spec: Any, record: dict[str, Any] | None, old_hash: Any, new_hash: str,
                   field_reasons: dict[str, list[str]], capabilities: set[str], waived: set[str]) -> list[str]:
    reasons = []
    if record is None:
        reasons.append("not in the bundle (a check added since, or not selected then)")
    if old_hash is None:
        reasons.append("the bundle has no hash of its code")
    elif old_hash != new_hash:
        reasons.append(f"its code changed (hash {str(old_hash)[:12]}… → {new_hash[:12]}…)")
    reasons += field_reasons.get(spec.criterion, [])
    touched = set(spec.requires) & (capabilities | {"back_office", "submission_channel"} if capabilities else set())
    if touched:
        reasons.append(f"the profile's capabilities changed ({', '.join(sorted(capabilities))}); it requires "
                       f"{', '.join(sorted(touched))}")
    if record is not None:
        if record["status"] in _NOT_PASSED:
            reasons.append(_NOT_PASSED[record["status"]])
        if record["id"] in waived:
            reasons.append("waived in the bundle (a waiver is not a pass)")
    return reasons


def plan_delta(since: SinceBundle, selected: list[Any], current_versions: dict[str, Any],
               profile: dict[str, Any] | None) -> dict[str, Any]:
    """The ``delta`` section: what changed, and per selected check whether it re-runs and why."""
    changed_fields = profile_changes(since.profile, profile)
    suite = _suite_reasons(since, current_versions, changed_fields)
    field_reasons: dict[str, list[str]] = {}
    for field in changed_fields:
        for criterion in sorted(FIELD_CRITERIA.get(field.split(".")[0], frozenset())):
            field_reasons.setdefault(criterion, []).append(f"the profile's {field} changed (read by {criterion})")
    capabilities = _capability_change(since.profile, profile)
    records = {c["id"]: c for c in since.results["checks"]}
    waived = set((since.results.get("waivers") or {}).get("applied") or [])
    old_hashes = since.versions.get("checks") or {}
    checks: dict[str, dict[str, Any]] = {}
    for spec in selected:
        record = records.get(spec.id)
        reasons = list(suite) + _check_reasons(spec, record, old_hashes.get(spec.id), current_versions["checks"][
            spec.id], field_reasons, capabilities, waived) + _module_reason(spec, since, current_versions)
        if reasons:
            checks[spec.id] = {"rerun": True, "reasons": reasons}
        else:
            checks[spec.id] = {"rerun": False, "reasons": [
                "carried: passed in the bundle; its code, the contracts, haicap "
                f"{current_versions['haicap']} and the profile fields it reads are unchanged"]}
    selected_ids = {spec.id for spec in selected}
    code = sorted(spec.id for spec in selected if old_hashes.get(spec.id) != current_versions["checks"][spec.id])
    old_modules = since.versions.get("check_modules") or {}
    modules = sorted(m.rsplit(".", 1)[-1] for m, digest in (current_versions.get("check_modules") or {}).items()
                     if old_modules.get(m) != digest and any(spec.func.__module__ == m for spec in selected))
    return {
        "since": {"bundle": str(since.path), "created": since.created, "signer": since.signer,
                  "haicap": since.versions.get("haicap"), "readiness": since.results["summary"]["readiness"]},
        "changes": [r for r in suite if not r.startswith("the profile")] + [_field_change(f) for f in changed_fields]
        + ([f"the code of {len(code)} check(s) changed or is new: {', '.join(code)}"] if code else [])
        + ([f"the shared code of check module(s) {', '.join(modules)} changed"] if modules else []),
        "rerun": sorted(cid for cid, c in checks.items() if c["rerun"]),
        "carried": sorted(cid for cid, c in checks.items() if not c["rerun"]),
        "removed": sorted(cid for cid in records if cid not in current_versions["checks"]),
        "not_selected": sorted(cid for cid in records if cid in current_versions["checks"]
                               and cid not in selected_ids),
        "checks": checks,
    }


def carried_records(since: SinceBundle, delta: dict[str, Any]) -> list[dict[str, Any]]:
    """The bundle's records of the carried checks, each marked with the bundle's created time."""
    carried = set(delta["carried"])
    out = []
    for record in since.results["checks"]:
        if record["id"] in carried:
            copied = copy.deepcopy(record)
            copied.pop("waiver", None)  # this run's --waivers decide; a carried record passed anyway
            copied.setdefault("carried_from", since.created)  # carried twice: when the check last really ran
            out.append(copied)
    return out


def carried_junit(since: SinceBundle, delta: dict[str, Any], out: Path) -> bool:
    """Write to ``out`` the bundle's JUnit test cases of the carried checks only; False when it had no junit."""
    import xml.etree.ElementTree as ET

    if since.junit is None:
        return False
    try:
        root = ET.fromstring(since.junit)
    except ET.ParseError:
        return False
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return False
    carried = set(delta["carried"])
    for case in list(suite):
        if case.tag == "testcase" and case.get("name", "").split(" ")[0] not in carried:
            suite.remove(case)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return True
