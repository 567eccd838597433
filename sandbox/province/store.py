"""Durable SQLite storage of the province: one writer thread with group commit, WAL readers.

A 2xx from the province means committed. Writes are functions ``op(conn) -> result`` handed to a single
writer thread, which runs every queued op of a batch inside one transaction (each in its own savepoint, so a
refused op does not undo its neighbours), commits with ``synchronous=FULL``, and only then resolves the
callers' futures. One fsync serves a whole batch: that is how a single SQLite file takes thousands of
durable writes per second. Reads use a per-thread connection (WAL: readers never block the writer).

Example::

    store = Store(path); store.start()
    n = store.write_sync(lambda conn: conn.execute("INSERT ...").rowcount)
    rows = store.read("SELECT ...")
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SCHEMA", "Store", "WriteOp"]

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteOp = Callable[[sqlite3.Connection], T]

SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    ma_ho_so   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    ma_xa      TEXT NOT NULL,
    status     TEXT NOT NULL,
    doc        BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dossiers_owner ON dossiers(owner);
CREATE INDEX IF NOT EXISTS dossiers_xa_status ON dossiers(ma_xa, status);
CREATE TABLE IF NOT EXISTS sequences (
    agency TEXT NOT NULL,
    day    TEXT NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (agency, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ma_ho_so     TEXT NOT NULL,
    service      TEXT NOT NULL,
    is_updating  TEXT NOT NULL,
    item         BLOB NOT NULL,
    created_ms   INTEGER NOT NULL,
    delivered_ms INTEGER,
    outcome      TEXT,
    detail       TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE delivered_ms IS NULL;
CREATE TABLE IF NOT EXISTS payments (
    ma_tham_chieu TEXT PRIMARY KEY,
    ma_ho_so      TEXT NOT NULL,
    so_tien       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    ma_giao_dich  TEXT,
    ma_loi        TEXT,
    thoi_gian_gd  TEXT,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_dossier ON payments(ma_ho_so);
CREATE TABLE IF NOT EXISTS callbacks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ma_tham_chieu TEXT NOT NULL,
    ma_giao_dich  TEXT,
    ma_loi        TEXT,
    applied       INTEGER NOT NULL,
    answer        TEXT NOT NULL,
    received_ms   INTEGER NOT NULL
);
"""

_STOP = object()
_MAX_BATCH = 1024


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Store:
    """The province's database: :meth:`write` (durable, group-committed) and :meth:`read`."""

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._local = threading.local()
        self._thread = threading.Thread(target=self._run, name=f"store-writer-{self.path.name}", daemon=True)
        self._writer = _connect(self.path)
        self._writer.executescript(SCHEMA)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Store:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer and close the connections."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._started = False
        self._writer.close()

    # -- writes ------------------------------------------------------------------------------------
    def submit(self, op: WriteOp[T]) -> concurrent.futures.Future[T]:
        """Queue ``op``; the future resolves after the transaction that ran it has committed."""
        if not self._started:
            raise RuntimeError("store not started")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((op, future))
        return future

    async def write(self, op: WriteOp[T]) -> T:
        return await asyncio.wrap_future(self.submit(op))

    def write_sync(self, op: WriteOp[T], timeout: float = 30.0) -> T:
        return self.submit(op).result(timeout)

    def _run(self) -> None:
        conn = self._writer
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            batch = [(op, f) for op, f in batch if f.set_running_or_notify_cancel()]  # a cancelled caller: skip
            try:
                self._run_batch(conn, batch)
            except Exception:  # the writer must outlive any single batch
                log.exception("province store: batch failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError("the store could not run this write"))

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[tuple[WriteOp[Any], concurrent.futures.Future[Any]]]
    ) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _ in batch:
                conn.execute("SAVEPOINT op")
                try:
                    result = op(conn)
                except BaseException as exc:  # the op refused (a Problem) or failed: undo it alone
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # the commit itself failed: nobody's write is durable
            log.error("province store: transaction failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(exc)
            return
        for (ok, value), (_, future) in zip(outcomes, batch, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self.on_commit is not None:
            try:
                self.on_commit()
            except Exception:  # pragma: no cover - a notifier must never stop the writer
                log.exception("province store: on_commit failed")

    # -- reads -------------------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def read(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        return self._reader().execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._reader().execute(sql, params).fetchone()
        return row
