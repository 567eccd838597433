"""End to end: the reference province against the real national counterpart (SSO, submit, officer, pay,
sync, forwarding, outage), and the no-loss test under concurrency with the national side down for a while."""

from __future__ import annotations

import concurrent.futures
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from haicap.data_generators.identity import make_cccd
from haicap.data_generators.units import admin_units
from haicap.province_client import CitizenSession, ProvinceClient
from haicap.sandbox.runner import Sandbox

_rng = random.Random(20250701)


def new_cccd() -> str:
    return make_cccd(_rng, date(_rng.randint(1950, 2004), _rng.randint(1, 12), 1), _rng.random() < 0.5)


def wait_for(probe: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Harness:
    """A sandbox with a province client, a control/ledger client of the national side, and waits."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.province = ProvinceClient(sb.province_url, officer_token=sb.configs.province.officer_token)
        self.http = httpx.Client(base_url=sb.province_url, timeout=15.0)  # raw calls: malformed input etc.
        self.national = httpx.Client(base_url=sb.national_url, headers=sb.control_headers(), timeout=15.0)

    def close(self) -> None:
        self.province.close()
        self.http.close()
        self.national.close()

    def login(self) -> tuple[CitizenSession, str]:
        cccd = new_cccd()
        return self.province.login(cccd), cccd

    def act(self, ma_ho_so: str, action: str) -> int:
        return self.province.officer_action(ma_ho_so, action).status_code

    def submit(self, session: CitizenSession, **fields: Any) -> dict[str, Any]:
        body = {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "Đăng ký khai sinh cho con", **fields}
        response = self.province.submit(session, body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def pay(self, session: CitizenSession, ma_ho_so: str, result: str = "success") -> dict[str, Any]:
        start = self.province.start_payment(session, ma_ho_so)
        assert start.status_code == 201, start.text
        paid = self.province.pay(start.json()["UrlThanhToan"], result)
        assert paid.status_code == 200, paid.text
        return {**start.json(), **paid.json()}

    def drained(self) -> bool:
        return httpx.get(self.sb.province_url + "/health").json()["outbox_pending"] == 0

    def ledger(self, ma_ho_so: str) -> dict[str, Any] | None:
        response = self.national.get(f"/_ledger/sync/dossiers/{ma_ho_so}")
        return response.json() if response.status_code == 200 else None

    def synced(self, ma_ho_so: str, status: str, timeout: float = 10.0) -> dict[str, Any] | None:
        def probe() -> dict[str, Any] | None:
            entry = self.ledger(ma_ho_so)
            return entry if entry and entry["TrangThaiHoSo"] == status else None

        result: dict[str, Any] | None = wait_for(probe, timeout)
        return result


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with Sandbox.start(mode="thread") as sb:
        h = Harness(sb)
        yield h
        h.close()


def test_sso_login_puts_the_national_identity_on_the_dossier(harness: Harness) -> None:
    cccd = new_cccd()
    answer = harness.province.login_hops(cccd).callback
    assert answer is not None and answer.status_code == 200, answer
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["claims"]["SoDinhDanh"] == cccd
    session = ProvinceClient.session_from_callback(cccd, answer)
    dossier = harness.submit(session, ChuHoSo="Tên Khác Trên Form")
    assert dossier["DinhDanhCHS"][0] == {"LoaiDinhDanh": "1", "SoDinhDanh": cccd}
    assert dossier["ChuHoSo"] == session.claims["HoVaTen"]
    logout = harness.province.logout(session)
    assert logout.status_code == 302 and "/end-session?" in logout.headers["location"]
    assert harness.province.dossiers(session).status_code == 401


def test_full_journey_reaches_the_national_ledger(harness: Harness) -> None:
    session, _ = harness.login()
    dossier = harness.submit(session, MaTTHC="1.004222")
    m = dossier["MaHoSo"]
    assert dossier["PhiPhaiNop"] == 10000 and dossier["DuocThanhToanTrucTuyen"] == "0"
    assert harness.synced(m, "1")
    for action in ("receive", "request-payment"):
        assert harness.act(m, action) == 200
    assert harness.act(m, "process") == 409  # the fee is not paid yet
    payment = harness.pay(session, m)
    assert payment["callback_answer"]["MaLoi"] == "00"
    paid = harness.province.dossier(session, m).json()
    assert paid["DaThanhToan"] is True and paid["SoTienDaThanhToan"] == 10000
    for action in ("process", "complete", "return-result"):
        assert harness.act(m, action) == 200
    def complete() -> dict[str, Any] | None:  # the state and its progress entry travel in two calls
        entry = harness.ledger(m)
        return entry if entry and entry["TrangThaiHoSo"] == "10" and len(entry["progress"]) == 6 else None

    final = wait_for(complete)
    assert final is not None, harness.ledger(m)
    assert final["item"]["DuocThanhToanTrucTuyen"] == "1" and final["item"]["NgayTra"]
    statuses = [h["TrangThaiHoSo"] for h in final["history"]]
    assert [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]] == ["1", "2", "6", "4", "9", "10"]
    assert len(final["progress"]) == 6


def test_supplement_and_withdraw(harness: Harness) -> None:
    session, _ = harness.login()
    m = harness.submit(session)["MaHoSo"]
    supplement = {"TaiLieuNop": [{"TepDinhKemId": "f-2", "TenTepDinhKem": "giay-chung-sinh.pdf"}]}
    assert harness.province.supplement(session, m, supplement).status_code == 409
    for action in ("receive", "request-supplement"):
        assert harness.act(m, action) == 200
    done = harness.province.supplement(session, m, supplement)
    assert done.status_code == 200 and done.json()["TrangThaiHoSo"] == "4"
    withdrawn = harness.province.withdraw(session, m, {"LyDo": "nộp nhầm"})
    assert withdrawn.status_code == 200 and withdrawn.json()["TrangThaiHoSo"] == "7"
    assert harness.synced(m, "7")


def test_malformed_input_is_a_problem_naming_the_field(harness: Harness) -> None:
    session, _ = harness.login()
    http, headers = harness.http, session.headers()
    cases = [
        (
            http.post("/api/v1/dossiers", content=b"{oops", headers={**headers, "Content-Type": "application/json"}),
            400,
            "(body)",
        ),
        (http.post("/api/v1/dossiers", json={"MaTTHC": "1.001193", "MaXa": 226}, headers=headers), 400, "MaXa"),
        (
            http.post(
                "/api/v1/dossiers", json={"MaTTHC": "9.999999", "MaXa": "00226", "TrichYeuHoSo": "x"}, headers=headers
            ),
            422,
            "MaTTHC",
        ),
        (http.get("/api/v1/dossiers/not-a-code", headers=headers), 400, "MaHoSo"),
        (http.get("/api/v1/dossiers/000.00.00.H26-250701-9999", headers=headers), 404, "MaHoSo"),
        (http.get("/api/v1/dossiers?limit=abc", headers=headers), 400, "limit"),
    ]
    for response, status, field in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert http.post("/api/v1/dossiers", json={}).status_code == 401


def test_forwarded_dossier_is_stored_acknowledged_and_synced(harness: Harness) -> None:
    sent = harness.national.post("/_control/forward", json={})
    assert sent.status_code == 200, sent.text
    m = sent.json()["MaHoSo"] if "MaHoSo" in sent.json() else sent.json()["dossier"]["MaHoSo"]
    stored = harness.province.officer_dossier(m)
    assert stored.status_code == 200 and stored.json()["NguonHoSo"] == "national"
    assert harness.act(m, "receive") == 200
    assert harness.synced(m, "2")


def test_outbox_survives_an_outage(harness: Harness) -> None:
    session, _ = harness.login()
    assert harness.national.post("/_control/outage", json={"services": ["sync"]}).status_code in (200, 201, 204)
    try:
        codes = [harness.submit(session)["MaHoSo"] for _ in range(20)]
        time.sleep(0.5)
        assert not harness.drained() and harness.ledger(codes[0]) is None
    finally:
        harness.national.delete("/_control/outage")
    assert all(harness.synced(m, "1", timeout=20) for m in codes)


def test_no_dossier_lost_while_the_national_side_is_down() -> None:
    full = os.environ.get("HAICAP_FULL") == "1"
    total, clients = (10_000, 50) if full else (500, 20)
    with Sandbox.start() as sb:
        h = Harness(sb)
        sessions = [h.login()[0] for _ in range(clients)]
        h.national.post("/_control/outage", json={"services": ["sync"], "seconds": 2 if not full else 10})

        communes = [c.code for c in admin_units().communes("01")]

        def client(i: int) -> int:  # MaHoSo holds 9,999 dossiers per commune per day: spread them
            accepted = 0
            with httpx.Client(base_url=sb.province_url, timeout=30.0) as http:
                headers = sessions[i].headers()
                for n in range(total // clients):
                    body = {"MaTTHC": "1.001193", "MaXa": communes[(i + n) % len(communes)], "TrichYeuHoSo": "x"}
                    accepted += http.post("/api/v1/dossiers", json=body, headers=headers).status_code == 201
            return accepted

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            accepted = sum(pool.map(client, range(clients)))
        assert accepted == total

        def recorded() -> int:
            count: int = h.national.get("/_ledger/sync/stats").json()["dossiers"]
            return count

        assert wait_for(lambda: recorded() >= accepted, timeout=120 if full else 40, interval=0.5)
        assert recorded() == accepted
        h.close()
