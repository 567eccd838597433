"""Waivers: known failures accepted for a while, with an owner and an end date (as the OpenID suite's expected
failures, with the expiry its users asked for).

A waivers file (YAML, ``haicap/schemas/waivers.schema.json``) lists (check, province, reason, approver,
expires, ticket). Applied to a certify run's results:

- a failed check with a waiver for this province that has not expired is *waived*: its criterion reads
  "ready with waiver" (until the earliest expiry among its waivers) when every failure in it is waived, and
  the run "ready with waiver" when every criterion is ready or ready with waiver;
- an expired waiver changes nothing: the failure counts, and the record says the waiver expired on that day;
- a waiver whose check now **passes** is *stale* and fails the run until it is removed (a waiver must not
  outlive its defect unnoticed);
- waivers of checks this run did not select, or of other provinces, are listed as unused.

Days are Asia/Ho_Chi_Minh days: a waiver "expires 2026-12-31" holds through that day in Viet Nam.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError
from haicap.yaml_source import load_yaml_document

__all__ = ["VIETNAM", "Waiver", "apply_waivers", "load_waivers", "today_in_vietnam"]

SCHEMA = Path(__file__).resolve().parent / "schemas" / "waivers.schema.json"
VIETNAM = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")
READY_WITH_WAIVER = "ready with waiver"


@dataclass(frozen=True)
class Waiver:
    check: str
    province: str
    reason: str
    approver: str
    expires: dt.date
    ticket: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expires": self.expires.isoformat()}


def today_in_vietnam(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(VIETNAM).date()


def load_waivers(path: Path) -> list[Waiver]:
    """The waivers of ``path``; a mistake is one line naming file, line and field."""
    import json

    document = load_yaml_document(path)
    items = document.data.get("waivers") if isinstance(document.data, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("expires"), dt.date):  # YAML reads 2026-12-31 as a date
            item["expires"] = item["expires"].isoformat()
    document.validate(json.loads(SCHEMA.read_text(encoding="utf-8")))
    waivers = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(document.data["waivers"]):
        try:
            expires = dt.date.fromisoformat(item["expires"])
        except ValueError:
            raise document.error(("waivers", index, "expires"), f"{item['expires']!r} is not a calendar date") from None
        key = (item["check"], item["province"])
        if key in seen:
            raise document.error(("waivers", index, "check"), f"{key[0]} is waived twice for province {key[1]}")
        seen.add(key)
        waivers.append(Waiver(item["check"], item["province"], item["reason"], item["approver"], expires,
                              item.get("ticket")))
    return waivers


def apply_waivers(results: dict[str, Any], waivers: list[Waiver], today: dt.date,
                  verdicts: Callable[[list[dict[str, Any]]], dict[str, str]],
                  readiness: Callable[[dict[str, str]], str]) -> dict[str, Any]:
    """A copy of ``results`` with ``waivers`` applied (see the module docstring). ``verdicts`` and
    ``readiness`` are the results module's own rules, applied to the checks as if active waivers had passed."""
    out = copy.deepcopy(results)
    province = (out.get("target") or {}).get("province")
    by_check = {w.check: w for w in waivers if w.province == province}
    statuses = {c["id"]: c["status"] for c in out["checks"]}
    active: dict[str, Waiver] = {}
    for record in out["checks"]:
        waiver = by_check.get(record["id"])
        if waiver is None or record["status"] != "failed":
            continue
        state = "active" if today <= waiver.expires else "expired"
        record["waiver"] = {**waiver.as_dict(), "state": state}
        if state == "active":
            active[record["id"]] = waiver
    # a waiver that still holds while its check passes is stale; an expired one is only listed as expired
    stale = [w.as_dict() for w in by_check.values() if statuses.get(w.check) == "passed" and today <= w.expires]
    expired_unused = [w.check for w in by_check.values() if today > w.expires and statuses.get(w.check) != "failed"]
    unused = [w.as_dict() for w in waivers if w.province != province or w.check not in statuses]
    as_passed = [{**c, "status": "passed"} if c["id"] in active else c for c in out["checks"]]
    waived_verdicts = verdicts(as_passed)
    until: dict[str, str] = {}
    for criterion, verdict in out["verdicts"].items():
        waived_here = [w for cid, w in active.items() if _criterion(out, cid) == criterion]
        if verdict != "not ready" or not waived_here or waived_verdicts.get(criterion) == "not ready":
            continue
        if waived_verdicts.get(criterion) == "ready":
            out["verdicts"][criterion] = READY_WITH_WAIVER
            until[criterion] = min(w.expires for w in waived_here).isoformat()
        else:  # every failure waived, the rest not complete: what the criterion would be without them
            out["verdicts"][criterion] = waived_verdicts[criterion]
    out["waivers"] = {"applied": sorted(active), "until": until, "stale": stale, "unused": unused,
                      "expired": sorted({*expired_unused, *(c["id"] for c in out["checks"]
                                                            if (c.get("waiver") or {}).get("state") == "expired")})}
    summary = out["summary"]
    plain = {k: ("ready" if v == READY_WITH_WAIVER else v) for k, v in out["verdicts"].items()}
    overall = readiness(plain)
    summary["readiness"] = READY_WITH_WAIVER if overall == "ready" and until else overall
    failed_unwaived = sum(1 for c in out["checks"] if c["status"] == "failed" and c["id"] not in active)
    summary["waived"] = len(active)
    summary["ok"] = (failed_unwaived == 0 and summary.get("error", 0) == 0 and summary.get("passed", 0) > 0
                     and not stale)
    if stale:
        summary["readiness"] = "not ready"
    return out


def _criterion(results: dict[str, Any], check_id: str) -> str | None:
    return next((c["criterion"] for c in results["checks"] if c["id"] == check_id), None)


def check_file(path: Path) -> None:
    """Validate a waivers file before a run touches anything (one-line errors)."""
    if not path.is_file():
        raise HaicapError(f"--waivers {path}: no such file")
    load_waivers(path)
