"""Durable SQLite storage of the province: one writer thread with group commit, WAL readers.

A 2xx from the province means committed. Writes are functions ``op(conn) -> result`` handed to a single
writer thread, which runs every queued op of a batch inside one transaction (each in its own savepoint, so a
refused op does not undo its neighbours), commits with ``synchronous=FULL``, and only then resolves the
callers' futures (the awaited ones of one event loop with a single wake-up of that loop). One fsync serves a
whole batch: that is how a single SQLite file takes thousands of durable writes per second. Reads use a
per-thread connection (WAL: readers never block the writer).

Several province processes may share the file: each has its writer thread, and a batch's transaction holds an
exclusive ``flock`` on ``<db>.writelock`` as well as SQLite's write lock, so a waiting writer is woken the
moment the other commits (SQLite's own busy handler would poll with sleeps of up to 100 ms).

Example::

    store = Store(path); store.start()
    n = store.write_sync(lambda conn: conn.execute("INSERT ...").rowcount)
    rows = store.read("SELECT ...")
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
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
CREATE TABLE IF NOT EXISTS sessions (
    token_hash   BLOB PRIMARY KEY,
    so_dinh_danh TEXT NOT NULL,
    ho_va_ten    TEXT NOT NULL,
    id_token     TEXT NOT NULL,
    expires_at   REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_logins (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    login_id TEXT NOT NULL UNIQUE,
    state    TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_logins_state ON pending_logins(state);
CREATE TABLE IF NOT EXISTS reused_codes (
    code_hash    BLOB PRIMARY KEY,
    so_dinh_danh TEXT NOT NULL,
    ho_va_ten    TEXT NOT NULL,
    id_token     TEXT NOT NULL
) WITHOUT ROWID;
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

_AnyFuture = concurrent.futures.Future[Any] | asyncio.Future[Any]


def _claim(future: _AnyFuture) -> bool:
    """False if the caller has gone (cancelled): its op is then not run."""
    if isinstance(future, concurrent.futures.Future):
        return future.set_running_or_notify_cancel()
    return not future.cancelled()


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _resolve(outcomes: list[tuple[_AnyFuture, bool, Any]]) -> None:
    """Resolve futures from the writer thread: thread-safe ones directly, awaited ones with one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for future, ok, value in outcomes:
        if isinstance(future, concurrent.futures.Future):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        else:
            by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
    for loop, pending in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(_settle, pending)


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
        self._lock_fd = os.open(self.path.with_name(self.path.name + ".writelock"), os.O_RDWR | os.O_CREAT, 0o600)
        self._writer = _connect(self.path)
        with self._exclusive():
            self._writer.executescript(SCHEMA)
        self._started = False

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the cross-process write lock (blocking; the kernel wakes us when the holder releases it)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # -- writes ------------------------------------------------------------------------------------
    def submit(self, op: WriteOp[T]) -> concurrent.futures.Future[T]:
        """Queue ``op``; the future resolves after the transaction that ran it has committed."""
        if not self._started:
            raise RuntimeError("store not started")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((op, future))
        return future

    async def write(self, op: WriteOp[T]) -> T:
        """Run ``op`` in the writer transaction; returns its result once committed (raises what it raised)."""
        if not self._started:
            raise RuntimeError("store not started")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((op, future))
        return await future

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
            batch = [(op, f) for op, f in batch if _claim(f)]  # a cancelled caller: skip its op
            try:
                with self._exclusive():
                    self._run_batch(conn, batch)
            except Exception:  # the writer must outlive any single batch
                log.exception("province store: batch failed")
                error = RuntimeError("the store could not run this write")
                _resolve([(f, False, error) for _, f in batch if not f.done()])

    def _run_batch(self, conn: sqlite3.Connection, batch: list[tuple[WriteOp[Any], _AnyFuture]]) -> None:
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
            _resolve([(f, False, exc) for _, f in batch])
            return
        _resolve([(f, ok, value) for (ok, value), (_, f) in zip(outcomes, batch, strict=True)])
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
