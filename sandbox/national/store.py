"""The counterpart's durable record: its tables, on the sandbox's group-commit SQLite engine.

The sync receiver is on the hot path of every province submission, so writes never block the event loop: a
handler awaits :meth:`Store.write`, and an item is acknowledged only after the batch that recorded it has
committed (:class:`~haicap.sandbox.group_commit.GroupCommitStore`, ``synchronous=NORMAL``: WAL survives a crash of
the process, which is what a test counterpart needs). Reads for the ledger API run in a worker thread.

Ledger rows written on every request of a sign-on (the identity provider's events) go through a
:class:`RowAppender`: rows appended while a batch waits for the writer join it and are inserted with one
``executemany``, so a login storm costs one queued op per batch rather than one per event, and every caller is
still answered only after the commit that recorded its row (checks read the ledger right after a response).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from haicap.sandbox.group_commit import GroupCommitStore, now_ms

__all__ = ["SCHEMA", "SHARED_SCHEMA", "SHARED_TABLES", "RowAppender", "Store", "now_ms"]

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

#: State the workers of one run share (``--national-workers``), scoped to the run: the worker that finds no
#: signing keys of its run (:attr:`NationalConfig.instance`) empties these tables first, under the write lock.
SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS idp_keys (
    id INTEGER PRIMARY KEY, instance TEXT NOT NULL, role TEXT NOT NULL, kid TEXT NOT NULL, jwk TEXT, pem BLOB
);
CREATE TABLE IF NOT EXISTS idp_codes (code TEXT PRIMARY KEY, expires REAL NOT NULL, record BLOB NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idp_used_codes (code TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idp_access (
    token TEXT PRIMARY KEY, cccd TEXT NOT NULL, client_id TEXT NOT NULL, expires REAL NOT NULL, defect TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idp_access_cccd ON idp_access (cccd);
CREATE INDEX IF NOT EXISTS idp_access_expires ON idp_access (expires);
CREATE TABLE IF NOT EXISTS idp_defects (id INTEGER PRIMARY KEY, cccd TEXT, defect TEXT NOT NULL, seconds INTEGER);
CREATE INDEX IF NOT EXISTS idp_defects_cccd ON idp_defects (cccd, id);
CREATE TABLE IF NOT EXISTS sync_sessions (token TEXT PRIMARY KEY, madonvi TEXT NOT NULL, expires REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_txns (
    MaDoiTac TEXT NOT NULL, MaThamChieu TEXT NOT NULL, token TEXT NOT NULL UNIQUE, state BLOB NOT NULL,
    PRIMARY KEY (MaDoiTac, MaThamChieu)
);
CREATE INDEX IF NOT EXISTS payment_txns_ref ON payment_txns (MaThamChieu);
"""
SHARED_TABLES = ("idp_keys", "idp_codes", "idp_used_codes", "idp_access", "idp_defects", "sync_sessions",
                 "payment_txns")


class Store(GroupCommitStore):
    """The counterpart's SQLite record, started on creation.

    Example::

        store = Store(state_dir / "national.sqlite3")
        n = await store.write(lambda conn: conn.execute("INSERT ...").rowcount)
        rows = await store.read(lambda conn: conn.execute("SELECT ...").fetchall())
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema=SCHEMA + SHARED_SCHEMA, synchronous="NORMAL")
        self.start()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a read connection in a worker thread (sees every committed write)."""
        return await anyio.to_thread.run_sync(self.read_now, fn)

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Synchronous read (start-up, tests)."""
        return fn(self.reader())


class _Batch:
    __slots__ = ("also", "done", "rows")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.rows: list[Sequence[Any]] = []
        self.also: dict[str, list[Sequence[Any]]] = {}  # rows of other INSERT statements, same transaction


class RowAppender:
    """Rows for one ``INSERT`` statement, group-inserted: :meth:`append` returns once its row is committed.

    At most one batch is with the writer at a time; rows appended meanwhile collect in the next batch, handed
    over when the first has committed (or at the end of the current event-loop turn when none is in flight).
    A storm of events therefore costs a few writer round trips, not one each; a lone event waits one commit.
    Batches are built and handed over on the event loop only, so the writer never sees a list that still grows;
    the appender serves one event loop at a time (a new loop takes over when the previous one has ended).

    Example::

        events = RowAppender(store, "INSERT INTO idp_events (at_ms, kind) VALUES (?, ?)")
        await events.append((now_ms(), "jwks"))
    """

    def __init__(self, store: Store, sql: str) -> None:
        self.store = store
        self.sql = sql
        self._open: _Batch | None = None  # collecting rows, not yet handed to the writer
        self._busy = False  # a batch is with the writer, or a hand-over is scheduled
        self._loop: asyncio.AbstractEventLoop | None = None

    async def append(self, row: Sequence[Any], also: tuple[str, Sequence[Any]] | None = None) -> None:
        """Return once ``row`` (and ``also``: a row of another statement, e.g. an authorization code) is committed."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or the previous loop ended (its commit can no longer reach it)
            self._loop, self._busy = loop, False
            if self._open is not None:  # rows of callers that went with that loop: still recorded
                orphans, orphans_also = self._open.rows, self._open.also
                self._open = _Batch(loop.create_future())
                self._open.rows.extend(orphans)
                self._open.also.update(orphans_also)
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(loop.create_future())
        batch.rows.append(row)
        if also is not None:
            batch.also.setdefault(also[0], []).append(also[1])
        if not self._busy:
            self._busy = True
            loop.call_soon(self._hand_over, loop)
        await asyncio.shield(batch.done)  # a caller that goes away must not cancel its neighbours' commit

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._open = self._open, None
        if batch is None:
            self._busy = False
            return
        rows, sql, also = batch.rows, self.sql, batch.also

        def insert(conn: sqlite3.Connection) -> int:
            for other, more in also.items():
                conn.executemany(other, more)
            return conn.executemany(sql, rows).rowcount

        try:
            submitted = self.store.submit(insert)
        except RuntimeError as exc:  # the store is closed
            self._busy = False
            batch.done.set_exception(exc)
            return

        def committed(source: concurrent.futures.Future[Any]) -> None:  # in the writer thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
                loop.call_soon_threadsafe(self._committed, loop, source, batch)

        submitted.add_done_callback(committed)

    def _committed(self, loop: asyncio.AbstractEventLoop, source: concurrent.futures.Future[Any],
                   batch: _Batch) -> None:
        if not batch.done.done():
            error = source.exception()
            if error is None:
                batch.done.set_result(None)
            else:
                batch.done.set_exception(error)
        self._hand_over(loop)  # the rows that came meanwhile (or nothing: then idle)
