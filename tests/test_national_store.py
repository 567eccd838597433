"""The counterpart's hot-path state: group-inserted ledger rows (committed before append returns, batched, never
lost or hung, with the rows of another statement when asked) and the pruning of expired codes and tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from haicap.sandbox.national.store import RowAppender, Store

SQL = "INSERT INTO idp_events (at_ms, kind, outcome, detail) VALUES (?, ?, ?, ?)"


def _count(store: Store, detail: str) -> int:
    return int(store.read_now(lambda c: c.execute("SELECT COUNT(*) FROM idp_events WHERE detail = ?",
                                                  (detail,)).fetchone()[0]))


def test_every_row_is_committed_before_its_append_returns_and_rows_share_batches(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.sqlite3")
    appender = RowAppender(store, SQL)
    submitted = 0
    submit = store.submit

    def counting(op):  # type: ignore[no-untyped-def]
        nonlocal submitted
        submitted += 1
        return submit(op)

    store.submit = counting  # type: ignore[method-assign]
    seen: list[int] = []

    async def one(i: int) -> None:
        await appender.append((i, "token", "ok", f"row-{i}"))
        seen.append(_count(store, f"row-{i}"))  # visible to a reader the moment append returned

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(200)))
        await appender.append((0, "jwks", "ok", "lone"))  # an idle appender still commits a lone row

    try:
        asyncio.run(main())
        assert seen == [1] * 200
        assert _count(store, "lone") == 1
        assert submitted < 50, f"{submitted} writer round trips for 201 rows: rows are not batched"
        rows = store.read_now(lambda c: c.execute("SELECT at_ms FROM idp_events WHERE kind = 'token' ORDER BY id")
                              .fetchall())
        assert [r[0] for r in rows] == list(range(200))  # the ledger keeps the order of the events
    finally:
        store.close()


def test_a_closed_store_refuses_appends_instead_of_hanging(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.sqlite3")
    appender = RowAppender(store, SQL)
    store.close()

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(RuntimeError, match="closed"):
                await asyncio.wait_for(appender.append((0, "jwks", "ok", "")), 5)

    asyncio.run(main())


def test_a_cancelled_caller_does_not_lose_its_neighbours_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.sqlite3")
    appender = RowAppender(store, SQL)

    async def main() -> None:
        first = asyncio.ensure_future(appender.append((1, "token", "ok", "gone")))
        second = asyncio.ensure_future(appender.append((2, "token", "ok", "kept")))
        await asyncio.sleep(0)
        first.cancel()
        await second

    try:
        asyncio.run(main())
        assert _count(store, "kept") == 1
    finally:
        store.close()


def test_rows_of_another_statement_are_committed_with_the_appended_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.sqlite3")
    appender = RowAppender(store, SQL)
    code_sql = "INSERT INTO idp_codes (code, expires, record) VALUES (?, ?, ?)"

    async def main() -> None:
        await asyncio.gather(*(appender.append((1, "authorize", "ok", "with-code"), (code_sql, (f"c{i}", 1e12, b"[]")))
                               for i in range(50)))

    try:
        asyncio.run(main())
        assert _count(store, "with-code") == 50
        assert store.read_now(lambda c: c.execute("SELECT COUNT(*) FROM idp_codes").fetchone()[0]) == 50
    finally:
        store.close()


def test_expired_codes_and_tokens_are_pruned_and_live_ones_kept(tmp_path: Path) -> None:
    from haicap.sandbox.national.oidc_provider import _prune_expired

    store = Store(tmp_path / "n.sqlite3")
    try:
        store.write_sync(lambda c: c.executemany("INSERT INTO idp_used_codes (code, expires) VALUES (?, ?)",
                                                 [("old", 1.0), ("live", 1e12)]))
        store.write_sync(_prune_expired)
        assert store.read_now(lambda c: c.execute("SELECT code FROM idp_used_codes").fetchall()) == [("live",)]
    finally:
        store.close()


def test_an_appender_outlives_the_event_loop_it_was_first_used_on(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.sqlite3")
    appender = RowAppender(store, SQL)
    try:
        for i in range(3):  # e.g. a test client that runs each request on a new loop
            asyncio.run(asyncio.wait_for(appender.append((i, "jwks", "ok", f"loop-{i}")), 5))
            assert _count(store, f"loop-{i}") == 1
    finally:
        store.close()
