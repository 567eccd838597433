"""Integrity after the surge: every dossier the system accepted reached the national ledger, in its latest status.

During the run each journey reports the MaHoSo the province accepted (201, or an acknowledged forward) and the
latest TrangThaiHoSo the province answered; ``certain`` is false when the journey broke off (then only the
dossier's presence is required: its last status is not known). After the load, the ledger of the national
counterpart is polled for up to the drain window until every accepted dossier is there with that status; what
is still absent or stale is listed. ``expect_synced`` steps also left (MaHoSo, status, deadline) expectations:
a status that reached the national side after its deadline is a breach of the sync SLA.

Both checks take ``should_stop``: when the user asks again to stop, the drain is cut short after one look at
the ledger (``cut_short`` in the result: what is listed missing may only have been late).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from haicap.counterpart_client import CounterpartClient, CounterpartError

__all__ = ["check_integrity", "check_sync_deadlines"]

MAX_LISTED = 200


def _ok(ledger_item: Mapping[str, Any] | None, status: str | None, certain: bool) -> bool:
    if ledger_item is None:
        return False
    return not certain or status is None or str(ledger_item.get("TrangThaiHoSo")) == status


def check_integrity(
    national: CounterpartClient,
    accepted: Mapping[str, Sequence[Any]],
    drain_s: float,
    *,
    poll_s: float = 1.0,
    say: Callable[[str], None] = print,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Poll the ledger until every accepted dossier is there (with its status), ``drain_s`` passes or
    ``should_stop()``."""
    started = time.monotonic()
    deadline = started + drain_s
    ledger: dict[str, Mapping[str, Any]] = {}
    error = None
    cut_short = False
    while True:
        try:
            ledger = {item["MaHoSo"]: item for item in national.synced_dossiers()}
            error = None
        except CounterpartError as exc:
            error = str(exc)
        bad = [m for m, (status, certain) in accepted.items() if not _ok(ledger.get(m), status, certain)]
        if not bad or time.monotonic() >= deadline:
            break
        if should_stop():
            cut_short = True
            break
        say(f"integrity: {len(accepted) - len(bad)}/{len(accepted)} accepted dossiers in the national ledger, "
            f"waiting (≤ {max(0.0, deadline - time.monotonic()):.0f} s more)")
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    missing: list[dict[str, Any]] = []
    for m in sorted(bad):
        status, certain = accepted[m]
        item = ledger.get(m)
        entry: dict[str, Any] = {"MaHoSo": m, "expected_status": status if certain else None}
        entry["ledger_status"] = None if item is None else str(item.get("TrangThaiHoSo"))
        entry["problem"] = "not in the national ledger" if item is None else "stale status in the national ledger"
        missing.append(entry)
    result: dict[str, Any] = {
        "checked": error is None,
        "accepted": len(accepted),
        "synced": len(accepted) - len(bad),
        "missing_count": len(missing),
        "missing": missing[:MAX_LISTED],
        "drain_s": drain_s,
        "drained_in_s": round(time.monotonic() - started, 2),
        "cut_short": cut_short,
    }
    if error:
        result["error"] = error
    return result


def check_sync_deadlines(
    national: CounterpartClient, expectations: Sequence[Sequence[Any]], *, limit: int = 2000,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """For each (MaHoSo, status, deadline) expectation: did the status reach the ledger by its deadline?"""
    by_dossier: dict[str, list[tuple[str, float]]] = {}
    for m, status, deadline in expectations:
        by_dossier.setdefault(str(m), []).append((str(status), float(deadline)))
    late: list[dict[str, Any]] = []
    checked = 0
    looked = 0
    for m in sorted(by_dossier)[:limit]:
        if should_stop():
            break
        looked += 1
        try:
            record = national.synced_dossier(m) or {}
        except CounterpartError:
            continue
        received: dict[str, int] = {}
        for entry in record.get("history") or []:
            received.setdefault(str(entry.get("TrangThaiHoSo")), int(entry.get("received_ms") or 0))
        for status, deadline in by_dossier[m]:
            checked += 1
            at = received.get(status)
            if at is None or at / 1000 > deadline:
                late.append({"MaHoSo": m, "status": status,
                             "late_by_s": None if at is None else round(at / 1000 - deadline, 2)})
    return {"expectations": len(expectations), "checked": checked, "late_count": len(late),
            "late": late[:MAX_LISTED], "truncated": looked < len(by_dossier)}
