"""The counterpart's durable record: its tables, on the sandbox's group-commit SQLite engine.

The sync receiver is on the hot path of every province submission, so writes never block the event loop: a
handler awaits :meth:`Store.write`, and an item is acknowledged only after the batch that recorded it has
committed (:class:`~haicap.sandbox.group_commit.GroupCommitStore`, ``synchronous=NORMAL``: WAL survives a crash of
the process, which is what a test counterpart needs). Reads for the ledger API run in a worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from haicap.sandbox.group_commit import GroupCommitStore, now_ms

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


class Store(GroupCommitStore):
    """The counterpart's SQLite record, started on creation.

    Example::

        store = Store(state_dir / "national.sqlite3")
        n = await store.write(lambda conn: conn.execute("INSERT ...").rowcount)
        rows = await store.read(lambda conn: conn.execute("SELECT ...").fetchall())
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, schema=SCHEMA, synchronous="NORMAL")
        self.start()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a read connection in a worker thread (sees every committed write)."""
        return await anyio.to_thread.run_sync(self.read_now, fn)

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Synchronous read (start-up, tests)."""
        return fn(self.reader())
