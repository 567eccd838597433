"""The national counterpart as two worker processes on one port: every part's state is shared.

One module-scoped counterpart (``--national-workers 2``) against a recording province. To make a request land on
a chosen worker, the other one is paused (SIGSTOP): the kernel then hands every new connection on the shared
listening socket to the running one. Each test crosses workers for one part: a sign-on (authorize on one worker,
token and userinfo on the other; a code redeemed twice; targeted defects and key rotation), outages, sync
sessions, payment replay, and the forwarder's sequence numbers.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import os
import random
import secrets
import signal
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from haicap.data_generators.identity import make_cccd
from haicap.payment_checksum import checksum
from haicap.sandbox.config import OidcClient, SandboxConfigs, build_sandbox_configs
from haicap.sandbox.national.testing import RecordingProvince
from haicap.sandbox.runner import NATIONAL_FACTORY, national_run
from haicap.sandbox.server import ProcessServer, bind_socket, url_of


class TwoWorkers:
    def __init__(self, server: ProcessServer, configs: SandboxConfigs, province: RecordingProvince) -> None:
        self.server = server
        self.configs = configs
        self.province = province
        self.url = server.url
        self.rp = configs.province.oidc
        self.control = {"Authorization": f"Bearer {configs.national.control_token}"}

    @contextlib.contextmanager
    def on(self, index: int) -> Iterator[httpx.Client]:
        """A client whose every request reaches worker ``index`` (the other is paused meanwhile)."""
        time.sleep(0.05)  # let the other worker finish its writer batch (it must not be paused holding the lock)
        paused = [pid for i, pid in enumerate(self.server.pids) if i != index]
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        try:
            with httpx.Client(base_url=self.url, timeout=10.0, headers={"Connection": "close"}) as client:
                yield client
        finally:
            for pid in paused:
                os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    root: Path = tmp_path_factory.mktemp("national-workers")
    with RecordingProvince.serve() as province:
        sock = bind_socket("127.0.0.1", 0)
        configs = build_sandbox_configs(url_of(sock), province.url, root)
        province.secret = configs.province.payment.secret
        configs.national.state_dir.mkdir(parents=True, exist_ok=True)
        server = ProcessServer(NATIONAL_FACTORY, national_run(configs.national, 2), sock, "national", workers=2)
        server.start()
        try:
            yield TwoWorkers(server, configs, province)
        finally:
            server.stop()


_RNG = random.Random(2026)


def _cccd() -> str:
    return make_cccd(_RNG, date(1990, 1, 1 + _RNG.randrange(28)), _RNG.random() < 0.5, "001")


def _authorize(rp: OidcClient, client: httpx.Client, cccd: str) -> tuple[str, str]:
    """(code, verifier) of an authorization request of ``cccd`` by relying party ``rp`` sent through ``client``."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer = client.get("/authorize", params={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": cccd})
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0], verifier


def _token(rp: OidcClient, client: httpx.Client, code: str, verifier: str) -> httpx.Response:
    return client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
                                       "client_secret": rp.client_secret, "code_verifier": verifier})


def test_the_counterpart_runs_as_two_processes(two: TwoWorkers) -> None:
    assert len(two.server.pids) == 2 and two.server.is_alive()
    keys = []
    for index in (0, 1):
        with two.on(index) as client:
            keys.append(client.get("/jwks").json()["keys"][0])
    assert keys[0] == keys[1]  # one signing key for the run, whichever worker publishes it


def test_a_sign_on_crosses_workers_and_a_code_is_redeemed_once(two: TwoWorkers) -> None:
    cccd = _cccd()
    with two.on(0) as client:
        code, verifier = _authorize(two.rp, client, cccd)
    with two.on(1) as client:
        token = _token(two.rp, client, code, verifier)
        assert token.status_code == 200, token.text
    with two.on(0) as client:
        again = _token(two.rp, client, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert "already used" in again.json()["error_description"]
        userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert userinfo.status_code == 200 and userinfo.json()["SoDinhDanh"] == cccd
        jwks = jwt.PyJWKSet.from_dict(client.get("/jwks").json())
    claims = jwt.decode(token.json()["id_token"], jwks.keys[0].key, algorithms=["RS256"],
                        audience=two.configs.province.oidc.client_id)
    assert claims["SoDinhDanh"] == cccd
    with two.on(1) as client:  # logout on worker 2 revokes the token worker 1 answered for
        assert client.get("/end-session", params={"id_token_hint": token.json()["id_token"]}).status_code == 200
    with two.on(0) as client:
        assert client.get("/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
                          ).status_code == 401


def test_a_code_sent_to_both_workers_at_once_is_redeemed_once(two: TwoWorkers) -> None:
    for _ in range(5):
        with httpx.Client(base_url=two.url, timeout=10.0, headers={"Connection": "close"}) as client:
            code, verifier = _authorize(two.rp, client, _cccd())

            def redeem(_: int, code: str = code, verifier: str = verifier) -> int:
                with httpx.Client(base_url=two.url, timeout=10.0, headers={"Connection": "close"}) as each:
                    return _token(two.rp, each, code, verifier).status_code

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                statuses = sorted(pool.map(redeem, range(4)))
        assert statuses == [200, 400, 400, 400]


def test_a_targeted_defect_armed_on_one_worker_applies_on_the_other(two: TwoWorkers) -> None:
    cccd = _cccd()
    with two.on(0) as client:
        armed = client.post("/_control/idp/next-token", json={"defect": "wrong-iss", "login_hint": cccd},
                            headers=two.control)
        assert armed.status_code == 200 and armed.json()["pending"] == 1
        rotated = client.post("/_control/idp/next-token", json={"defect": "rotated-key", "login_hint": cccd},
                              headers=two.control)
        assert rotated.json()["pending"] == 2
    with two.on(1) as client:
        first = _token(two.rp, client, *_authorize(two.rp, client, cccd)).json()["id_token"]
        second = _token(two.rp, client, *_authorize(two.rp, client, cccd)).json()["id_token"]
        third = _token(two.rp, client, *_authorize(two.rp, client, cccd)).json()["id_token"]
    assert jwt.decode(first, options={"verify_signature": False})["iss"].endswith("/not-the-issuer")
    kid = jwt.get_unverified_header(second)["kid"]
    with two.on(0) as client:  # the key rotated on worker 2 is published by worker 1
        assert kid in [k["kid"] for k in client.get("/jwks").json()["keys"]]
    assert jwt.get_unverified_header(third)["kid"] != kid  # consumed once: the next token is normal again


def test_an_outage_started_on_one_worker_is_seen_on_all(two: TwoWorkers) -> None:
    with two.on(0) as client:
        assert client.post("/_control/outage", json={"services": ["idp"], "seconds": 30},
                           headers=two.control).status_code == 200
    try:
        with two.on(1) as client:
            down = client.get("/jwks")
            assert down.status_code == 503 and int(down.headers["retry-after"]) > 20
            assert client.get("/_control/outage", headers=two.control).json()["outages"]["idp"] > 20
    finally:
        with two.on(1) as client:
            client.delete("/_control/outage", headers=two.control)
    with two.on(0) as client:
        assert client.get("/jwks").status_code == 200


def _sync(two: TwoWorkers, client: httpx.Client, session: str) -> httpx.Response:
    madonvi = two.configs.national.sync_accounts[0].madonvi
    return client.post("/sync/service", json={"service": "TraCuuHoSo", "session": session, "madonvi": madonvi,
                                              "MaHoSo": "000.00.00.H26-250701-9999"})


def test_a_sync_session_and_its_expiry_cross_workers(two: TwoWorkers) -> None:
    account = two.configs.national.sync_accounts[0]
    with two.on(0) as client:
        login = client.post("/sync/login", json={"username": account.username, "password": account.password,
                                                 "madonvi": account.madonvi})
        session = login.json()["session"]
    with two.on(1) as client:
        assert _sync(two, client, session).json()["error_code"] == "-5"  # a known session: the lookup ran
    with two.on(0) as client:
        assert _sync(two, client, session).json()["error_code"] == "-5"  # now cached by worker 1
        assert client.post("/_control/sync/expire-sessions", headers=two.control).json()["expired"] >= 1
    for index in (1, 0):
        with two.on(index) as client:
            refused = _sync(two, client, session)
            assert refused.status_code == 401 and refused.json()["error_code"] == "-1"


def _init(two: TwoWorkers) -> dict[str, Any]:
    partner = two.configs.province.payment
    ref = f"WORKERS{secrets.randbelow(10**8):08d}"
    message: dict[str, Any] = {
        "LoaiBanTin": "INIT", "PhienBan": "1.0.6", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": ref,
        "SoTien": 10000, "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "web", "NgonNgu": "vi-VN",
        "MaTienTe": "VND", "MaNganHang": "", "ThongTinGiaoDich": f"Lệ phí hồ sơ {ref}", "ThoiGianGD": "20250701090000",
        "Ip": "127.0.0.1",
        "ThongTinBienLai": {
            "MaDVC": "1.004222", "MaTTHC": "1.004222", "MaDonVi": "000.00.00.H26",
            "MaHoSo": "000.00.00.H26-250701-0001",
            "HoTenNguoiNop": "Nguyễn Văn An", "NoiDungThanhToan": "Lệ phí đăng ký thường trú",
            "PhiLePhi": [{"LoaiPhiLePhi": "2", "TenPhiLePhi": "Lệ phí", "SoTien": 10000}],
        },
    }
    message["MaXacThuc"] = checksum(message, partner.secret, "INIT")
    return message


def test_a_payment_opened_on_one_worker_is_paid_and_replayed_on_the_others(two: TwoWorkers) -> None:
    message = _init(two)
    with two.on(0) as client:
        url = client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"]
    with two.on(1) as client:
        assert client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"] == url  # idempotent
        paid = client.get(urlsplit(url).path, params={"result": "success"}).json()
        assert paid["TrangThaiGD"] == "1" and paid["callback_status"] == 200
    with two.on(0) as client:
        again = client.get(urlsplit(url).path, params={"result": "success"}).json()
        assert again["callback_status"] is None  # settled once, whichever worker was asked
        replay = client.post(f"/_control/payment/{message['MaThamChieu']}/replay", headers=two.control).json()
    assert replay["kind"] == "replay" and replay["callback"] == paid_callback(two, message["MaThamChieu"])


def paid_callback(two: TwoWorkers, ref: str) -> dict[str, Any]:
    sent = [c for c in two.province.callbacks if c.get("MaThamChieu") == ref]
    assert len(sent) == 2 and sent[0] == sent[1]  # the original and its replay, byte for byte the same fields
    return sent[0]


def test_forwarded_codes_are_unique_across_workers(two: TwoWorkers) -> None:
    codes = []
    for index in (0, 1, 0, 1):
        with two.on(index) as client:
            for _ in range(2):
                record = client.post("/_control/forward", json={}, headers=two.control).json()
                assert record["status_code"] == 201, record
                codes.append(record["MaHoSo"])
    assert len(set(codes)) == len(codes) == 8
    sequences = [int(c.rsplit("-", 1)[1]) for c in codes]
    assert sequences == sorted(sequences)  # one sequence, continued by whichever worker forwards next


def test_a_profiles_counterpart_runs_as_workers_that_share_the_run(tmp_path: Path) -> None:
    """What ``haicap load --profile … --national-workers 2`` starts (the rehearsal's counterpart): without a shared
    run, half the token requests would reach a worker that never saw the code."""
    from haicap.sandbox.target_provider import SandboxProvider

    probe = bind_socket("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}"
    with RecordingProvince.serve() as province:
        configs = build_sandbox_configs(url, province.url, tmp_path)
        configs.national.state_dir.mkdir(parents=True, exist_ok=True)
        with SandboxProvider().counterpart(configs.national, f"127.0.0.1:{port}", national_workers=2):
            rp = configs.province.oidc
            statuses = []
            for _ in range(8):
                with httpx.Client(base_url=url, timeout=10.0, headers={"Connection": "close"}) as client:
                    code, verifier = _authorize(rp, client, _cccd())
                with httpx.Client(base_url=url, timeout=10.0, headers={"Connection": "close"}) as client:
                    statuses.append(_token(rp, client, code, verifier).status_code)
    assert statuses == [200] * 8
