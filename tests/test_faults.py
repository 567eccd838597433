"""Every named fault of the reference province is observable by a direct probe, and the correct province
does not show it. A probe returns True when it sees the defect."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx
import pytest
from test_province_e2e import Harness, new_cccd, wait_for

from haicap.data_generators.units import admin_units
from haicap.sandbox.province.faults import FAULTS
from haicap.sandbox.runner import Sandbox

Probe = Callable[[Harness], bool]
PROBES: dict[str, Probe] = {}


def probe(fault_id: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        assert fault_id in FAULTS and fault_id not in PROBES
        PROBES[fault_id] = fn
        return fn

    return register


# -- sso -------------------------------------------------------------------------------------------
def _login_with_defect(h: Harness, defect: str) -> bool:
    assert h.national.post("/_control/idp/next-token", json={"defect": defect, "count": 1}).status_code < 300
    answer = h.province.login_hops(new_cccd()).callback
    assert answer is not None and answer.status_code in (200, 401), answer
    return answer.status_code == 200


for _fault, _defect in {
    "accepts-bad-id-token-signature": "bad-signature",
    "accepts-alg-none": "alg-none",
    "skips-issuer-check": "wrong-iss",
    "skips-audience-check": "wrong-aud",
    "accepts-expired-id-token": "expired",
    "accepts-future-iat": "iat-future",
    "skips-nonce-check": "nonce-mismatch",
}.items():
    probe(_fault)(lambda h, defect=_defect: _login_with_defect(h, defect))


def _callback_url(browser: httpx.Client, h: Harness) -> str:
    login = browser.get(h.sb.province_url + "/auth/login", params={"login_hint": new_cccd()})
    authorize = browser.get(login.headers["location"])
    assert authorize.status_code == 302, authorize.text
    return authorize.headers["location"]


@probe("skips-state-check")
def _state(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        url = urlparse(_callback_url(browser, h))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        query["state"] = "forged-" + query["state"]
        return browser.get(urlunparse(url._replace(query=urlencode(query)))).status_code == 200


@probe("accepts-reused-code")
def _reused_code(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        url = _callback_url(browser, h)
        assert browser.get(url).status_code == 200
        return browser.get(url).status_code == 200


@probe("identity-from-body")
def _identity(h: Harness) -> bool:
    token, cccd = h.login()
    other = new_cccd()
    body = {
        "MaTTHC": "1.001193",
        "MaXa": "00226",
        "TrichYeuHoSo": "x",
        "ChuHoSo": "Người Khác",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": other}],
    }
    answer = h.http.post("/api/v1/dossiers", json=body, headers=token.headers())
    return answer.status_code == 201 and answer.json()["DinhDanhCHS"][0]["SoDinhDanh"] != cccd


# -- submission ------------------------------------------------------------------------------------
@probe("pre-merger-commune-codes")
def _pre_merger(h: Harness) -> bool:
    current = {c.code for c in admin_units().communes("01")}
    old = next(w.code for w in admin_units().legacy_wards("01") if w.code not in current)
    token, _ = h.login()
    body = {"MaTTHC": "1.001193", "MaXa": old, "TrichYeuHoSo": "x"}
    return h.http.post("/api/v1/dossiers", json=body, headers=token.headers()).status_code == 201


@probe("500-on-malformed-input")
def _malformed(h: Harness) -> bool:
    token, _ = h.login()
    headers = {**token.headers(), "Content-Type": "application/json"}
    return h.http.post("/api/v1/dossiers", content=b'{"MaTTHC": ', headers=headers).status_code >= 500


def _concurrent_submits(h: Harness, n: int = 60, workers: int = 20) -> tuple[str, list[str]]:
    token, _cccd = h.login()

    def submit(_: int) -> str | None:
        with httpx.Client(base_url=h.sb.province_url, timeout=30.0) as http:
            body = {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "x"}
            r = http.post("/api/v1/dossiers", json=body, headers=token.headers())
            return r.json()["MaHoSo"] if r.status_code == 201 else None

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        codes = [c for c in pool.map(submit, range(n)) if c]
    return token, codes


@probe("duplicate-mahoso")
def _duplicates(h: Harness) -> bool:
    _, codes = _concurrent_submits(h)
    return len(set(codes)) < len(codes)


@probe("loses-dossiers-under-concurrency")
def _lost(h: Harness) -> bool:
    token, codes = _concurrent_submits(h)
    time.sleep(0.3)  # let any write-behind buffer flush
    listed = h.http.get("/api/v1/dossiers?limit=200", headers=token.headers()).json()
    return listed["total"] < len(codes)


@probe("invalid-status-transition")
def _transition(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    return h.act(m, "return-result") == 200


# -- payment ---------------------------------------------------------------------------------------
def _paid_dossier(h: Harness, result: str = "success") -> tuple[str, str, dict]:
    token, _ = h.login()
    m = h.submit(token, MaTTHC="1.004222")["MaHoSo"]
    payment = h.pay(token, m, result)
    return token, m, payment


@probe("ignores-callback-checksum")
def _checksum(h: Harness) -> bool:
    _, _, payment = _paid_dossier(h)
    tampered = h.national.post(f"/_control/payment/{payment['MaThamChieu']}/tamper", json={"defect": "bad-checksum"})
    return tampered.json()["status_code"] == 200


@probe("accepts-wrong-amount")
def _amount(h: Harness) -> bool:
    _, _, payment = _paid_dossier(h)
    tampered = h.national.post(f"/_control/payment/{payment['MaThamChieu']}/tamper", json={"defect": "wrong-amount"})
    return tampered.json()["status_code"] == 200


@probe("double-applies-replayed-callback")
def _replay(h: Harness) -> bool:
    token, m, payment = _paid_dossier(h)
    replayed = h.national.post(f"/_control/payment/{payment['MaThamChieu']}/replay")
    assert replayed.json()["status_code"] == 200
    return h.province.dossier(token, m).json()["SoTienDaThanhToan"] > payment["SoTien"]


@probe("marks-paid-on-failed-payment")
def _failed_payment(h: Harness) -> bool:
    token, m, _ = _paid_dossier(h, "failure")
    return h.province.dossier(token, m).json()["DaThanhToan"] is True


@probe("no-paid-flag-sync")
def _paid_flag(h: Harness) -> bool:
    _, m, _ = _paid_dossier(h)
    assert wait_for(h.drained)
    entry = h.ledger(m)
    return entry is None or entry["item"].get("DuocThanhToanTrucTuyen") != "1"


# -- sync ------------------------------------------------------------------------------------------
@probe("no-status-sync")
def _status_sync(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    assert h.act(m, "receive") == 200
    return h.synced(m, "2", timeout=3) is None


@probe("late-sync")
def _late(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    return h.synced(m, "1", timeout=3) is None


@probe("sync-missing-fields")
def _missing_fields(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    assert wait_for(h.drained)
    rejections = h.national.get("/_ledger/sync/rejections").json()
    return any(m in str(r) for r in rejections.get("items", rejections if isinstance(rejections, list) else []))


# -- forwarding ------------------------------------------------------------------------------------
@probe("ignores-forwarded-dossiers")
def _forwarded(h: Harness) -> bool:
    sent = h.national.post("/_control/forward", json={}).json()
    m = sent.get("MaHoSo") or sent["dossier"]["MaHoSo"]
    officer = h.sb.officer_headers()
    return h.http.get(f"/officer/dossiers/{m}", headers=officer).status_code == 404


# -- units -----------------------------------------------------------------------------------------
@probe("wrong-agency-codes")
def _units(h: Harness) -> bool:
    declared = h.http.get("/api/v1/units").json()["DonVi"]
    current = {c.code for c in admin_units().communes("01")}
    return any(u["MaXa"] not in current for u in declared) or any(
        h.sb.configs.province.agency_code[-3:] != u["MaCoQuan"][-3:] or u["MaCoQuan"].count(".") != 3
        for u in declared
    )


# -- the tests -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def correct() -> Iterator[Harness]:
    with Sandbox.start(mode="thread") as sb:
        h = Harness(sb)
        yield h
        h.close()


def test_every_fault_has_a_probe() -> None:
    assert set(PROBES) == set(FAULTS)
    assert {f.breaks for f in FAULTS.values()} == {"sso", "submission", "payment", "sync", "forwarding", "units"}


@pytest.mark.parametrize("fault_id", sorted(FAULTS))
def test_fault_is_observable(fault_id: str, correct: Harness) -> None:
    check = PROBES[fault_id]
    with Sandbox.start(mode="thread", faults={fault_id}) as sb:
        faulty = Harness(sb)
        try:
            assert check(faulty), f"{fault_id}: the defect is not observable"
        finally:
            faulty.close()
    assert not check(correct), f"{fault_id}: the correct province shows the defect"


# -- payment INIT and sync duplicates (probes of the faults added with the payment and sync checks) --
@probe("bad-init-checksum")
def _init_checksum(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token, MaTTHC="1.004222")["MaHoSo"]
    start = h.http.post(f"/api/v1/dossiers/{m}/payments", headers=token.headers())
    assert start.status_code in (201, 502), start.text
    return start.status_code == 502  # the platform refused the INIT's MaXacThuc


@probe("duplicate-sync")
def _duplicate_sync(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    assert h.act(m, "receive") == 200
    assert h.synced(m, "2", timeout=5) is not None
    assert wait_for(h.drained)
    entry = h.ledger(m)
    assert entry is not None
    statuses = [e["TrangThaiHoSo"] for e in entry["history"]]
    progress = [str(p["item"]) for p in entry["progress"]]  # a resent item decodes to the same dict, same order
    return statuses.count("2") > 1 or len(progress) != len(set(progress))


# -- submission format/coverage and forwarding credential (faults added with the submission/forwarding checks) --
@probe("bad-mahoso-format")
def _bad_ma_ho_so(h: Harness) -> bool:
    from haicap.contract_registry import default_registry

    session, _ = h.login()
    code = h.submit(session)["MaHoSo"]
    assert h.province.dossier(session, code).status_code == 200  # the province serves what it hands out
    return not default_registry().validator("common.schema.json#/$defs/MaHoSo").is_valid(code)


@probe("draft-commune-codes")
def _draft_codes(h: Harness) -> bool:
    session, _ = h.login()
    assert h.province.submit(session, {"MaTTHC": "1.001193", "MaXa": "00229", "TrichYeuHoSo": "x"}).status_code == 201
    refused = h.province.submit(session, {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "x"})
    return refused.status_code == 422 and "MaXa" in refused.text


@probe("unauthenticated-forwarding")
def _unauthenticated_forwarding(h: Harness) -> bool:
    body = dict(h.national.post("/_control/forward", json={}).json()["dossier"])
    body["MaHoSo"] = body["MaHoSo"][:-4] + "9999"  # a dossier the national side never forwarded
    answer = h.http.post("/national/forwarded-dossiers", json=body)  # no credential
    assert answer.status_code in (201, 401), answer.text
    return answer.status_code == 201


# -- sso: sign-on request and logout (appended with checks SSO-01 and SSO-02) -----------------------------
@probe("no-pkce")
def _no_pkce(h: Harness) -> bool:
    login = httpx.get(h.sb.province_url + "/auth/login", params={"login_hint": new_cccd()}, timeout=15.0)
    assert login.status_code == 302, login.text
    query = parse_qs(urlparse(login.headers["location"]).query)
    return "code_challenge" not in query and "code_challenge_method" not in query


@probe("local-logout-only")
def _local_logout(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        callback = browser.get(_callback_url(browser, h))
        assert callback.status_code == 200, callback.text
        bearer = {"Authorization": f"Bearer {callback.json()['access_token']}"}
        answer = browser.get(h.sb.province_url + "/auth/logout", headers=bearer)
        assert answer.status_code < 400, answer.text
        assert browser.get(h.sb.province_url + "/api/v1/dossiers", headers=bearer).status_code == 401
    return answer.status_code != 302 or not answer.headers["location"].startswith(h.sb.national_url + "/end-session?")


# -- sso: ID-token, JWKS and userinfo rules to the OpenID RP bar (faults added with SSO-13 … SSO-28) --
def _accepted_with(h: Harness, defect: str, **extra: object) -> bool:
    """Whether the province gives a session to a citizen whose token carries ``defect`` (targeted at them)."""
    cccd = new_cccd()
    armed = h.national.post("/_control/idp/next-token", json={"defect": defect, "login_hint": cccd, **extra})
    assert armed.status_code == 200, armed.text
    answer = h.province.login_hops(cccd).callback
    assert answer is not None and answer.status_code in (200, 401), answer
    return answer.status_code == 200


for _fault, (_defect, _extra) in {
    "accepts-missing-sub": ("no-sub", {}),
    "accepts-missing-aud": ("no-aud", {}),
    "accepts-missing-iat": ("no-iat", {}),
    "accepts-missing-exp": ("no-exp", {}),
    "accepts-missing-iss": ("no-iss", {}),
    "accepts-missing-nonce": ("no-nonce", {}),
    "accepts-aud-list-without-client": ("aud-without-client", {}),
    "skips-azp-check": ("aud-secondary-no-azp", {}),
    "accepts-hs256-client-secret": ("alg-hs256-client-secret", {}),
    "accepts-any-rsa-alg": ("alg-ps256", {}),
    "verifies-only-rs256-signatures": ("alg-es256-foreign-key", {}),
    "accepts-stale-iat": ("iat-week-old", {}),
    "clock-skew-five-minutes": ("exp-passed-by", {"seconds": 65}),
    "skips-userinfo-sub-check": ("userinfo-sub-mismatch", {}),
}.items():
    probe(_fault)(lambda h, defect=_defect, extra=_extra: _accepted_with(h, defect, **extra))

for _fault, (_defect, _extra) in {  # must-accept variations: the defect is a refusal
    "rejects-aud-array": ("aud-array", {}),
    "requires-kid": ("no-kid", {}),
    "no-clock-leeway": ("iat-ahead-by", {"seconds": 50}),
    "rejects-lowercase-token-type": ("token-type-lowercase", {}),
    "requires-expires-in": ("no-expires-in", {}),
}.items():
    probe(_fault)(lambda h, defect=_defect, extra=_extra: not _accepted_with(h, defect, **extra))


def _refuses_rotated_key(h: Harness) -> bool:
    assert h.login()  # the JWKS is cached now
    return not _accepted_with(h, "rotated-key")


probe("no-jwks-refetch-on-unknown-kid")(_refuses_rotated_key)
probe("discards-jwks-with-unparseable-key")(_refuses_rotated_key)


@probe("fetches-jwks-every-sign-on")
def _jwks_storm(h: Harness) -> bool:
    def fetches() -> int:
        return int(h.national.get("/_ledger/idp/events", params={"kind": "jwks", "limit": 1}).json()["total"])

    h.login()
    before = fetches()
    for _ in range(3):
        h.login()
    return fetches() - before >= 3
