"""The outbox: every state change of a dossier reaches the national sync API, even across outages.

A change is written as outbox rows in the same transaction as the dossier (:func:`enqueue_change`), so a
committed change cannot be forgotten. :class:`OutboxDelivery` is a background task that sends pending rows in
batches (DongBoHoSoMC creates with isUpdating "False", updates with "True", CapNhatTienDoHoSoMC progress),
logs in and logs in again when the session expires, backs off while the national side is down (HTTP 503/5xx,
timeouts, refused connections) and never drops a row: a row leaves the queue only when the national side has
recorded it, answered "already exists" (error_code 3), or rejected the item itself (kept with the reason).
Rows of one dossier are sent in order: a round makes its calls in the order creates, updates, progress, and
takes a dossier's next rows only while that order keeps them in sequence (at most one per call), so a change
and its progress entry travel in the same round.

Cost: changes are coalesced for a few milliseconds so one sync call carries many items, and items travel as the
JSON bytes stored with the row (never parsed and re-serialised). When the province runs as several worker
processes, exactly one of them delivers: the holder of an exclusive ``flock`` on ``<db>.outbox-lock`` (if it
dies the kernel releases the lock and another worker takes over); it polls for the others' commits.

Faults acting here: ``no-status-sync`` (changes after the first are never queued), ``no-progress-sync``
(CapNhatTienDoHoSoMC never queued), ``late-sync``, ``duplicate-sync`` (every delivered batch is sent once more),
``gives-up-after-3-attempts`` and ``drops-changes-during-outage`` (a row is dropped after 3 failed attempts, or
after its first, as an inline call without an outbox would), ``never-logs-in-again`` (an expired session is
kept: every call is refused from then on).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from haicap.sandbox.config import SyncAccount
from haicap.sandbox.group_commit import now_ms
from haicap.sandbox.province.faults import GIVE_UP_ATTEMPTS, LATE_SYNC_DELAY
from haicap.sandbox.province.store import Store
from haicap.sandbox.province.sync_http import JsonPoster, SyncHttpError
from haicap.sandbox.province.sync_items import SyncItemBuilder

__all__ = ["OutboxDelivery", "OutboxPolicy", "enqueue_change", "outbox_counts"]

log = logging.getLogger(__name__)

DONGBO = "DongBoHoSoMC"
TIENDO = "CapNhatTienDoHoSoMC"


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """What gets queued: the item builder plus the ``no-status-sync`` and ``no-progress-sync`` switches."""

    builder: SyncItemBuilder
    sync_updates: bool = True
    sync_progress: bool = True

    @classmethod
    def for_faults(cls, builder: SyncItemBuilder, faults: Collection[str]) -> OutboxPolicy:
        return cls(builder=builder, sync_updates="no-status-sync" not in faults,
                   sync_progress="no-progress-sync" not in faults)


def enqueue_change(
    conn: sqlite3.Connection,
    policy: OutboxPolicy,
    dossier: dict[str, Any],
    *,
    created: bool,
    entry: dict[str, Any] | None,
) -> None:
    """Queue the dossier's new state (and its progress entry) inside the caller's transaction."""
    if not created and not policy.sync_updates:
        return
    ts = now_ms()
    rows = [
        (dossier["MaHoSo"], DONGBO, "False" if created else "True", policy.builder.dossier_item(dossier), ts),
    ]
    if entry is not None and policy.sync_progress:
        rows.append((dossier["MaHoSo"], TIENDO, "", policy.builder.progress_item(dossier, entry), ts))
    conn.executemany(
        "INSERT INTO outbox (ma_ho_so, service, is_updating, item, created_ms) VALUES (?, ?, ?, ?, ?)",
        [(m, s, u, orjson.dumps(i), t) for m, s, u, i, t in rows],
    )


def outbox_counts(store: Store) -> dict[str, int]:
    """Pending, delivered, rejected and (faults only) dropped rows (for /health and tests)."""
    pending = store.read_one("SELECT count(*) FROM outbox WHERE delivered_ms IS NULL")
    rejected = store.read_one("SELECT count(*) FROM outbox WHERE outcome = 'rejected'")
    dropped = store.read_one("SELECT count(*) FROM outbox WHERE outcome = 'dropped'")
    total = store.read_one("SELECT count(*) FROM outbox")
    p, r, x, t = (pending or (0,))[0], (rejected or (0,))[0], (dropped or (0,))[0], (total or (0,))[0]
    return {"pending": p, "rejected": r, "dropped": x, "delivered": t - p - r - x}


def _call_rank(service: str, is_updating: str) -> int:
    """Order of the calls in a round: DongBoHoSoMC creates, DongBoHoSoMC updates, CapNhatTienDoHoSoMC."""
    if service == DONGBO:
        return 0 if is_updating == "False" else 1
    return 2


class _Transient(Exception):
    """The national side could not take the call now: retry later, keep every row."""


@dataclass(slots=True)
class _Row:
    id: int
    ma_ho_so: str
    service: str
    is_updating: str
    item: bytes  # the item's JSON, as stored


class OutboxDelivery:
    """The background sender. ``start()`` in the app's lifespan, ``stop()`` at shutdown."""

    def __init__(
        self,
        store: Store,
        national_url: str,
        account: SyncAccount,
        *,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        batch_size: int = 500,
        faults: Collection[str] = (),
        timeout: float = 10.0,
        coalesce: float = 0.02,
        poll: float = 0.5,
    ) -> None:
        self.store = store
        self.national_url = national_url.rstrip("/")
        self.account = account
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.batch_size = batch_size
        self.delay_ms = int(LATE_SYNC_DELAY * 1000) if "late-sync" in faults else 0
        self.resend = "duplicate-sync" in faults
        #: the defect of gives-up-after-3-attempts / drops-changes-during-outage: failed attempts before a row goes
        self.give_up_after = min((n for f, n in GIVE_UP_ATTEMPTS.items() if f in faults), default=0)
        self._attempts: dict[int, int] = {}  # row id → failed attempts (only counted when giving up is on)
        self.relogin = "never-logs-in-again" not in faults
        self.timeout = timeout
        #: seconds to let changes gather before a call (unless a full batch is waiting)
        self.coalesce = coalesce
        #: seconds between looks at the table when nothing woke us (commits of other worker processes)
        self.poll = poll
        self._session: str | None = None
        self._lock_path = store.path.with_name(store.path.name + ".outbox-lock")
        self._lock_fd: int | None = None
        self._waiting = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: JsonPoster | None = None
        self.last_error: str = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = JsonPoster(self.national_url, timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="province-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock: another worker may deliver
            self._lock_fd = None

    @property
    def leading(self) -> bool:
        """True while this process is the one that delivers."""
        return self._lock_fd is not None

    def notify(self) -> None:
        """Thread-safe wake-up (the store calls it after each commit); a no-op unless the loop is waiting."""
        loop = self._loop
        if self._waiting and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    def _try_lead(self) -> bool:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    # -- the loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.retry_initial
        while not self._try_lead():  # another worker process delivers; take over if it goes
            await asyncio.sleep(max(self.poll, 0.5))
        while True:
            try:
                self._wake.clear()
                self._waiting = True  # before the read: a commit from now on wakes us
                rows = self._pending()
                if rows:
                    self._waiting = False
                    await self._deliver(rows)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
                    self._waiting = False
                if len(rows) < self.batch_size and self.coalesce > 0:
                    await asyncio.sleep(self.coalesce)  # let more changes gather: one call carries many
                backoff = self.retry_initial
            except _Transient as exc:
                self.last_error = str(exc)
                log.info("outbox: national side unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stop delivery for good
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("outbox: unexpected error")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)

    def _pending(self) -> list[_Row]:
        """The next rows to send: each dossier's oldest pending rows, as many as one round sends in order."""
        cutoff = now_ms() - self.delay_ms
        fetched = self.store.read(
            "SELECT id, ma_ho_so, service, is_updating, item FROM outbox "
            "WHERE delivered_ms IS NULL AND created_ms <= ? ORDER BY id LIMIT ?",
            (cutoff, self.batch_size * 4),
        )
        last: dict[str, int] = {}  # MaHoSo → call rank of its last row taken
        closed: set[str] = set()  # dossiers whose next row must wait for the next round
        rows: list[_Row] = []
        for row_id, ma_ho_so, service, is_updating, item in fetched:
            if ma_ho_so in closed:
                continue
            rank = _call_rank(service, is_updating)
            if last.get(ma_ho_so, -1) >= rank:
                closed.add(ma_ho_so)
                continue
            last[ma_ho_so] = rank
            rows.append(_Row(row_id, ma_ho_so, service, is_updating, item))
            if len(rows) >= self.batch_size:
                break
        return rows

    async def _deliver(self, rows: list[_Row]) -> None:
        groups: dict[tuple[str, str], list[_Row]] = {}
        for row in rows:
            groups.setdefault((row.service, row.is_updating), []).append(row)
        done: list[tuple[list[_Row], dict[int, str]]] = []  # calls answered: marked in one write per round
        try:
            for key in sorted(groups, key=lambda k: _call_rank(*k)):  # creates, updates, progress: see _pending
                service, is_updating = key
                done.append((groups[key], await self._send(service, is_updating, groups[key])))
        except _Transient:
            if self.give_up_after:
                answered = {row.id for rows_, _ in done for row in rows_}
                await self._count_failure([r for r in rows if r.id not in answered])
            raise
        finally:  # also when a later call of the round failed: what was answered must not be sent again
            if done:
                await self.store.write(lambda conn: self._mark(conn, done))

    async def _count_failure(self, rows: list[_Row]) -> None:
        """The defect of the give-up faults: a row that failed ``give_up_after`` times leaves the queue unsent."""
        given_up = []
        for row in rows:
            self._attempts[row.id] = self._attempts.get(row.id, 0) + 1
            if self._attempts[row.id] >= self.give_up_after:
                given_up.append(row.id)
                del self._attempts[row.id]
        if given_up:
            log.warning("outbox: giving up on %d change(s) after %d failed attempt(s)", len(given_up),
                        self.give_up_after)
            await self.store.write(lambda conn: conn.executemany(
                "UPDATE outbox SET delivered_ms = ?, outcome = 'dropped' WHERE id = ?",
                [(now_ms(), row_id) for row_id in given_up]))

    async def _send(self, service: str, is_updating: str, rows: list[_Row]) -> dict[int, str]:
        """One call; the rows the national side rejected (index → reason), or :class:`_Transient`."""
        envelope: dict[str, Any] = {"service": service, "madonvi": self.account.madonvi}
        if service == DONGBO:
            envelope["isUpdating"] = is_updating
        data = b',"data":[' + b",".join(r.item for r in rows) + b"]}"
        answer = await self._call(envelope, data)
        code = str(answer.get("error_code"))
        rejected: dict[int, str] = {}
        if code in {"0", "00", "3", "-3", "-2"}:
            by_code = {r.ma_ho_so: i for i, r in enumerate(rows)}
            for error in answer.get("errors") or []:
                if not isinstance(error, dict):
                    continue
                index = error.get("index")
                if not isinstance(index, int) or not 0 <= index < len(rows):
                    index = by_code.get(str(error.get("MaHoSo")))
                if index is not None:
                    reason = f"{error.get('field', '')}: {error.get('message', '')}"
                    rejected[index] = (rejected.get(index, "") + "; " + reason).lstrip("; ")
        else:
            raise _Transient(f"{service} answered error_code {code}: {answer.get('message', '')}")
        if self.resend:  # the defect: the delivered batch goes out again, as a retry that ignores the answer
            await self._call(envelope, data)
        return rejected

    @staticmethod
    def _mark(conn: sqlite3.Connection, done: list[tuple[list[_Row], dict[int, str]]]) -> None:
        ts = now_ms()
        conn.executemany(
            "UPDATE outbox SET delivered_ms = ?, outcome = ?, detail = ? WHERE id = ?",
            [
                (ts, "rejected" if i in rejected else "delivered", rejected.get(i), row.id)
                for rows, rejected in done
                for i, row in enumerate(rows)
            ],
        )
        refused = sum(len(rejected) for _, rejected in done)
        if refused:
            log.warning("outbox: %d item(s) rejected by the national side", refused)

    async def _call(self, envelope: dict[str, Any], data: bytes = b"}") -> dict[str, Any]:
        """POST the envelope (``data``: the raw tail ``,"data":[...]}`` spliced in) with a live session."""
        for attempt in range(2):
            if self._session is None:
                await self._login()
            envelope["session"] = self._session
            status, content = await self._post("/sync/service", orjson.dumps(envelope)[:-1] + data)
            answer = self._json(content)
            if status == 401 or answer.get("error_code") == "-1":
                if not self.relogin:  # the defect: the dead session is kept, every call is refused from now on
                    raise _Transient("sync session refused")
                self._session = None  # expired or unknown: log in again once
                if attempt == 0:
                    continue
                raise _Transient("sync session refused after a fresh login")
            if status >= 500:
                raise _Transient(f"HTTP {status}")
            if status >= 400 and answer.get("error_code") not in {"-2", "3", "-3"}:
                raise _Transient(f"HTTP {status}: {answer.get('message', '')}")
            return answer
        raise _Transient("unreachable")  # pragma: no cover

    async def _login(self) -> None:
        body = {"username": self.account.username, "password": self.account.password, "madonvi": self.account.madonvi}
        status, content = await self._post("/sync/login", orjson.dumps(body))
        answer = self._json(content)
        session = answer.get("session")
        if status != 200 or answer.get("error_code") != "0" or not isinstance(session, str):
            raise _Transient(f"sync login refused (HTTP {status}, error_code {answer.get('error_code')})")
        self._session = session

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self._client is not None
        try:
            return await self._client.post(path, body)
        except SyncHttpError as exc:
            raise _Transient(str(exc)) from None

    @staticmethod
    def _json(content: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
