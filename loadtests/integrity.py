"""Integrity after the surge: every dossier the system accepted reached the national ledger, in its latest status.

During the run each journey reports the MaHoSo the province accepted (201, or an acknowledged forward) and the
latest TrangThaiHoSo the province answered; ``certain`` is false when the journey broke off (then only the
dossier's presence is required: its last status is not known). After the load, the ledger of the national
counterpart is polled for up to the drain window until every accepted dossier is there with that status; what
is still absent or stale is listed. ``expect_synced`` steps also left (MaHoSo, status, deadline) expectations:
a status that reached the national side after its deadline is a breach of the sync SLA.

The province's own record counts too (:func:`check_province_records`): every accepted dossier must still be
readable at the province by MaHoSo (officer API), with its latest status. A province that answers 201 and then
loses the dossier locally fails here even when what it did send reached the ledger.

All checks take ``should_stop``: when the user asks again to stop, the drain is cut short after one look at
the ledger (``cut_short`` in the result: what is listed missing may only have been late).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from haicap.counterpart_client import CounterpartClient, CounterpartError

__all__ = ["check_integrity", "check_province_records", "check_sync_deadlines", "deadline_after_outages"]

MAX_LISTED = 200
#: Parallel reads of the province's records after the load (a few connections, not a second load).
PROVINCE_READERS = 8
#: What reading one dossier at the province gives: (HTTP status, its TrangThaiHoSo or None), or raises OSError-like.
ProvinceRead = Callable[[str], tuple[int, "str | None"]]


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


def deadline_after_outages(deadline: float, within: float | None, outages: Sequence[tuple[float, float]]) -> float:
    """The SLA counted from recovery: a status whose SLA window ``[deadline - within, deadline]`` overlaps a
    national outage ``(start, end)`` (epochs) is due ``within`` seconds after the outage ended, not before."""
    if within is None:
        return deadline
    for start, end in outages:
        if deadline > start and deadline - within < end:
            deadline = max(deadline, end + within)
    return deadline


def check_sync_deadlines(
    national: CounterpartClient, expectations: Sequence[Sequence[Any]], *, limit: int = 2000,
    should_stop: Callable[[], bool] = lambda: False, outages: Sequence[tuple[float, float]] = (),
) -> dict[str, Any]:
    """For each (MaHoSo, status, deadline[, SLA s]) expectation: did the status reach the ledger by its deadline
    (counted from the end of a national outage that overlapped its SLA window)?"""
    by_dossier: dict[str, list[tuple[str, float]]] = {}
    for m, status, deadline, *rest in expectations:
        within = float(rest[0]) if rest else None
        by_dossier.setdefault(str(m), []).append(
            (str(status), deadline_after_outages(float(deadline), within, outages)))
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


def _province_problem(answer: tuple[int, str | None] | str, status: str | None, certain: bool) -> str | None:
    if isinstance(answer, str):
        return answer
    code, current = answer
    if code == 404:
        return "lost at the province (HTTP 404 by MaHoSo after a 201)"
    if code != 200:
        return f"not readable at the province (HTTP {code})"
    if certain and status is not None and current != status:
        return f"stale status at the province ({current}, the journey last saw {status})"
    return None


def check_province_records(
    read: ProvinceRead,
    accepted: Mapping[str, Sequence[Any]],
    *,
    budget_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Read every accepted dossier back at the province (``read(MaHoSo)``), a few in parallel, within
    ``budget_s``. ``checked`` is false when not every dossier could be read in time (then nothing is claimed
    about the unread ones); each dossier that is gone or stale is listed with its problem."""
    deadline = time.monotonic() + budget_s
    results: dict[str, tuple[int, str | None] | str] = {}

    def one(ma_ho_so: str) -> None:
        if should_stop() or time.monotonic() > deadline:
            return
        try:
            results[ma_ho_so] = read(ma_ho_so)
        except Exception as exc:  # a transport error is evidence about this dossier, not a crash
            results[ma_ho_so] = f"not readable at the province ({type(exc).__name__})"

    if accepted:
        say(f"integrity: reading {len(accepted)} accepted dossiers back at the province")
    pool = ThreadPoolExecutor(PROVINCE_READERS)
    futures = [pool.submit(one, m) for m in sorted(accepted)]
    # a province that hangs must not hold the run past its budget: reads still waiting are abandoned (their
    # client's own timeout ends them), and nothing is claimed about those dossiers
    wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    results = dict(results)  # a snapshot: an abandoned read may still land
    lost: list[dict[str, Any]] = []
    for m in sorted(results):
        status, certain = accepted[m]
        problem = _province_problem(results[m], status, bool(certain))
        if problem:
            lost.append({"MaHoSo": m, "expected_status": status if certain else None, "problem": problem})
    unread = len(accepted) - len(results)
    out: dict[str, Any] = {"checked": unread == 0, "accepted": len(accepted), "read": len(results),
                           "lost_count": len(lost), "lost": lost[:MAX_LISTED]}
    if unread:
        out["error"] = (f"{unread} of {len(accepted)} accepted dossiers were not read back at the province "
                        f"within {budget_s:g} s")
    return out
