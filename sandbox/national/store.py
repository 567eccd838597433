"""The counterpart's durable record: SQLite (WAL) with one writer thread that commits in groups.

The sync receiver is on the hot path of every province submission, so writes never block the event loop:
a handler hands a small function to :meth:`Store.write`, the writer thread runs every function waiting in
its queue inside one transaction (each in its own savepoint, so one failing job does not undo the others),
commits once, and only then resolves the handlers' futures — an item is acknowledged only after it is on
disk. Reads for the ledger API use a separate connection in a worker thread (WAL lets them run alongside).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

__all__ = ["SCHEMA", "Store", "now_ms"]

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_dossiers (
    MaHoSo TEXT PRIMARY KEY, madonvi TEXT NOT NULL, TrangThaiHoSo TEXT NOT NULL, MaXa TEXT,
    first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, item BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_dossiers_madonvi ON sync_dossiers (madonvi, MaHoSo);
CREATE TABLE IF NOT EXISTS sync_items (
    id INTEGER PRIMARY KEY, MaHoSo TEXT NOT NULL, madonvi TEXT NOT NULL, received_ms INTEGER NOT NULL,
    isUpdating TEXT NOT NULL, TrangThaiHoSo TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_items_mahoso ON sync_items (MaHoSo, id);
CREATE TABLE IF NOT EXISTS sync_progress (
    id INTEGER PRIMARY KEY, MaHoSo TEXT NOT NULL, madonvi TEXT NOT NULL, received_ms INTEGER NOT NULL,
    item BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_progress_mahoso ON sync_progress (MaHoSo, id);
CREATE TABLE IF NOT EXISTS sync_rejections (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, service TEXT NOT NULL, madonvi TEXT NOT NULL,
    MaHoSo TEXT, errors BLOB NOT NULL, item BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    MaDoiTac TEXT NOT NULL, MaThamChieu TEXT NOT NULL, SoTien INTEGER NOT NULL, MaHoSo TEXT,
    TrangThaiGD TEXT NOT NULL, MaGiaoDich TEXT, init_ms INTEGER NOT NULL, settled_ms INTEGER,
    queries INTEGER NOT NULL DEFAULT 0, init BLOB NOT NULL, PRIMARY KEY (MaDoiTac, MaThamChieu)
);
CREATE TABLE IF NOT EXISTS payment_callbacks (
    id INTEGER PRIMARY KEY, MaDoiTac TEXT NOT NULL, MaThamChieu TEXT NOT NULL, at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL, callback BLOB NOT NULL, status_code INTEGER, answer BLOB, error TEXT, elapsed_ms REAL
);
CREATE INDEX IF NOT EXISTS payment_callbacks_ref ON payment_callbacks (MaThamChieu, id);
CREATE TABLE IF NOT EXISTS forwarded (
    id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, province_code TEXT NOT NULL, MaHoSo TEXT NOT NULL,
    url TEXT NOT NULL, dossier BLOB NOT NULL, status_code INTEGER, answer BLOB, error TEXT
);
CREATE TABLE IF NOT EXISTS idp_events (
    id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
    client_id TEXT, SoDinhDanh TEXT, defect TEXT, detail TEXT
);
"""

#: At most this many jobs share one transaction.
MAX_GROUP = 1024


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], loop: asyncio.AbstractEventLoop,
                 future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future


def _resolve(results: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    for future, value, failed in results:
        if future.done():
            continue
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Store:
    """SQLite store with a group-committing writer thread and a read connection.

    Example::

        store = Store(state_dir / "national.sqlite3")
        n = await store.write(lambda conn: conn.execute("INSERT ...").rowcount)
        rows = await store.read(lambda conn: conn.execute("SELECT ...").fetchall())
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer_conn = _connect(path)
        self._writer_conn.executescript(SCHEMA)
        self._read_conn = _connect(path)
        self._read_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="national-store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    # -- writing ---------------------------------------------------------------------------------
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer thread inside a transaction; return once it is committed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, loop, future))
        return await future

    def _run(self) -> None:
        conn = self._writer_conn
        while True:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
            self._run_group(conn, group)
            if stop:
                break
        conn.close()

    def _run_group(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, bool]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, exc, True))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, value, False))
            conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: nothing of the group is durable
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            outcomes = [(job, exc, True) for job in group]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, bool]]] = {}
        for job, value, failed in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, value, failed))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutting down)
                loop.call_soon_threadsafe(_resolve, results)

    # -- reading ---------------------------------------------------------------------------------
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the read connection in a worker thread (sees every committed write)."""
        return await anyio.to_thread.run_sync(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            return fn(self._read_conn)

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Synchronous read (start-up, tests)."""
        return self._read_sync(fn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        with self._read_lock:
            self._read_conn.close()
