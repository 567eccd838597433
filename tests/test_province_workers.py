"""The reference province as several worker processes on one port: every piece of state is shared.

Sign-ins, sessions, logouts, MaHoSo sequences and the outbox must behave as with one process. To make a
request land on a chosen worker, the other one is paused (SIGSTOP): the kernel then hands every new connection
on the shared listening socket to the running one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_province_e2e import Harness, new_cccd, wait_for

from haicap.data_generators.units import admin_units
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.store import Store
from haicap.sandbox.runner import Sandbox

SUBMISSION = {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "Đăng ký khai sinh cho con"}


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Sandbox]:
    with Sandbox.start(province_workers=2) as sb:
        yield sb


@contextlib.contextmanager
def only(sb: Sandbox, index: int) -> Iterator[None]:
    """Pause every province worker but ``index`` (after the outbox has drained, so no writer holds a lock)."""
    pids = sb.servers[1].pids  # type: ignore[union-attr]
    assert wait_for(lambda: httpx.get(sb.province_url + "/health").json()["outbox_pending"] == 0, 20)
    time.sleep(0.1)
    paused = [pid for i, pid in enumerate(pids) if i != index]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)


def fresh(sb: Sandbox) -> httpx.Client:
    """A client whose connections are opened now (so they go to the worker that is running)."""
    return httpx.Client(base_url=sb.province_url, timeout=10.0, headers={"Connection": "close"})


def test_the_province_runs_as_two_processes(two_workers: Sandbox) -> None:
    server = two_workers.servers[1]
    assert server.name == "province" and len(server.pids) == 2 and server.is_alive()  # type: ignore[union-attr]
    assert two_workers.configs.province.workers == 2


def test_sign_in_session_and_logout_cross_workers(two_workers: Sandbox) -> None:
    sb = two_workers
    cccd = new_cccd()
    with fresh(sb) as http:
        with only(sb, 0):  # the sign-in starts on worker 1 ...
            login = http.get("/auth/login", params={"login_hint": cccd})
            assert login.status_code == 302
            authorize = httpx.get(login.headers["location"])
            assert authorize.status_code == 302
        with only(sb, 1):  # ... and its callback lands on worker 2, which must know the pending sign-in
            callback = http.get(authorize.headers["location"])
            assert callback.status_code == 200, callback.text
            token = callback.json()["access_token"]
            replay = http.get(authorize.headers["location"])
            assert replay.status_code == 401  # consumed once, whichever worker saw it
    auth = {"Authorization": f"Bearer {token}"}
    with fresh(sb) as http:
        with only(sb, 0):  # the session issued on worker 2 is honoured by worker 1 (which now caches it)
            submitted = http.post("/api/v1/dossiers", json=SUBMISSION, headers=auth)
            assert submitted.status_code == 201, submitted.text
            ma_ho_so = submitted.json()["MaHoSo"]
            assert submitted.json()["DinhDanhCHS"][0]["SoDinhDanh"] == cccd
        with only(sb, 1):  # logout on worker 2 ...
            assert http.get(f"/api/v1/dossiers/{ma_ho_so}", headers=auth).status_code == 200
            assert http.get("/auth/logout", headers=auth).status_code == 302
        with only(sb, 0):  # ... and worker 1 no longer accepts the token it had cached
            refused = http.get(f"/api/v1/dossiers/{ma_ho_so}", headers=auth)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"


def test_no_dossier_lost_or_duplicated_across_workers(two_workers: Sandbox) -> None:
    total, clients = 400, 16
    h = Harness(two_workers)
    sessions = [h.login()[0] for _ in range(clients)]
    before = h.national.get("/_ledger/sync/stats").json()
    h.national.post("/_control/outage", json={"services": ["sync"], "seconds": 2})
    communes = [c.code for c in admin_units().communes("01")]

    def client(i: int) -> list[str]:
        codes = []
        with httpx.Client(base_url=two_workers.province_url, timeout=30.0) as http:
            for n in range(total // clients):
                body = {**SUBMISSION, "MaXa": communes[(i * 7 + n) % len(communes)]}
                response = http.post("/api/v1/dossiers", json=body, headers=sessions[i].headers())
                if response.status_code == 201:
                    codes.append(response.json()["MaHoSo"])
        return codes

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        codes = [c for batch in pool.map(client, range(clients)) for c in batch]
    assert len(codes) == total and len(set(codes)) == total  # every 201 got its own MaHoSo

    def stats() -> dict[str, int]:
        now: dict[str, int] = h.national.get("/_ledger/sync/stats").json()
        return {k: now[k] - before.get(k, 0) for k in ("dossiers", "items", "duplicates")}

    assert wait_for(lambda: stats()["dossiers"] >= total, timeout=60, interval=0.5), stats()
    time.sleep(0.5)
    assert stats() == {"dossiers": total, "items": total, "duplicates": 0}  # each change sent exactly once
    assert all(h.ledger(m) for m in codes[:: total // 20])
    h.close()


def _allocate(path: str, count: int, agency: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = Store(Path(path)).start()
    futures = [store.submit(lambda c: d.allocate_sequence(c, agency, "261122")) for _ in range(count)]
    out.put([f.result(30) for f in futures])
    store.close()


def test_sequences_are_unique_across_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    path = str(tmp_path / "province.sqlite3")
    Store(Path(path)).close()  # the schema, once
    procs = [ctx.Process(target=_allocate, args=(path, 300, "002.26.00.H26", out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    allocated = sorted(s for part in got for s in part)
    assert allocated == list(range(1, 901))
