"""The province's database: its tables, on the sandbox's group-commit SQLite engine.

A 2xx from the province means committed: every write goes through
:class:`~haicap.sandbox.group_commit.GroupCommitStore` with ``synchronous=FULL``, and several province processes
(``--province-workers N``) share the file through that engine's cross-process write lock.

Example::

    store = Store(path); store.start()
    n = store.write_sync(lambda conn: conn.execute("INSERT ...").rowcount)
    rows = store.read("SELECT ...")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from haicap.sandbox.group_commit import GroupCommitStore, WriteOp

__all__ = ["SCHEMA", "Store", "WriteOp"]

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


class Store(GroupCommitStore):
    """The province's database: :meth:`write` (durable, group-committed) and :meth:`read`."""

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(path, schema=SCHEMA, synchronous="FULL", on_commit=on_commit)

    def start(self) -> Store:
        super().start()
        return self

    def read(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        return self.reader().execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.reader().execute(sql, params).fetchone()
        return row
