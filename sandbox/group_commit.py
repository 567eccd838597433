"""Durable SQLite writes at thousands per second: one writer thread, group commit, WAL readers.

Both sandbox apps answer only after their write is on disk (a province's 2xx means committed; the counterpart
acknowledges a sync item only once it is recorded). Writes are functions ``op(conn) -> result`` handed to a single
writer thread, which runs every queued op of a batch inside one transaction (each in its own savepoint, so a
refused op does not undo its neighbours), commits once, and only then resolves the callers' futures (the awaited
ones of one event loop with a single wake-up of that loop). One fsync serves a whole batch. Reads use a per-thread
connection (WAL: readers never block the writer).

Several processes may share a file: each has its writer thread, and a batch's transaction holds an exclusive
``flock`` on ``<db>.writelock`` as well as SQLite's write lock, so a waiting writer is woken the moment the other
commits (SQLite's own busy handler would poll with sleeps of up to 100 ms).

Example::

    store = GroupCommitStore(path, schema=SCHEMA).start()
    n = store.write_sync(lambda conn: conn.execute("INSERT ...").rowcount)
    rows = store.reader().execute("SELECT ...").fetchall()
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = ["GroupCommitStore", "WriteOp", "now_ms"]

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteOp = Callable[[sqlite3.Connection], T]

#: At most this many ops share one transaction.
MAX_BATCH = 1024

_STOP = object()

_AnyFuture = concurrent.futures.Future[Any] | asyncio.Future[Any]


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every ``*_ms`` column."""
    return time.time_ns() // 1_000_000


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


class GroupCommitStore:
    """A SQLite file with :meth:`write` (durable, group-committed) and per-thread :meth:`reader` connections.

    ``synchronous`` is SQLite's pragma: ``FULL`` survives a power cut, ``NORMAL`` (WAL) a process crash.
    """

    def __init__(self, path: Path, *, schema: str, synchronous: Literal["FULL", "NORMAL"] = "FULL",
                 on_commit: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.on_commit = on_commit
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._local = threading.local()
        self._thread = threading.Thread(target=self._run, name=f"store-writer-{self.path.name}", daemon=True)
        self._lock_fd = os.open(self.path.with_name(self.path.name + ".writelock"), os.O_RDWR | os.O_CREAT, 0o600)
        self._writer = self._connect()
        with self._exclusive():
            self._writer.executescript(schema)
        self._started = False
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the cross-process write lock (blocking; the kernel wakes us when the holder releases it)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> GroupCommitStore:
        if self._closed:
            raise RuntimeError("the store is closed")
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer and close the connections (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._started = False
        self._writer.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # -- writes ------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("the store is closed" if self._closed else "the store is not started")

    def submit(self, op: WriteOp[T]) -> concurrent.futures.Future[T]:
        """Queue ``op``; the future resolves after the transaction that ran it has committed."""
        self._check_open()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((op, future))
        return future

    async def write(self, op: WriteOp[T]) -> T:
        """Run ``op`` in the writer transaction; returns its result once committed (raises what it raised)."""
        self._check_open()
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
            while len(batch) < MAX_BATCH:
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
                log.exception("%s: batch failed", self.path.name)
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
            log.error("%s: transaction failed: %s", self.path.name, exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _resolve([(f, False, exc) for _, f in batch])
            return
        _resolve([(f, ok, value) for (ok, value), (_, f) in zip(outcomes, batch, strict=True)])
        if self.on_commit is not None:
            try:
                self.on_commit()
            except Exception:  # pragma: no cover - a notifier must never stop the writer
                log.exception("%s: on_commit failed", self.path.name)

    # -- reads -------------------------------------------------------------------------------------
    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (sees every committed write)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn
