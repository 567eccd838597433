"""Every named fault of the reference province is observable by a direct probe, and the correct province
does not show it. A probe returns True when it sees the defect."""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx
import pytest
from test_province_e2e import Harness, new_cccd, wait_for

from haicap.criteria import CRITERIA
from haicap.data_generators.units import admin_units
from haicap.province_client import CitizenSession
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


# -- conversion: the export of the converted legacy data ---------------------------------------------
def _export(h: Harness) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(old record, its converted record or None) of the province's export, read directly."""
    sides = []
    for side in ("before", "after"):
        answer = h.province.conversion_export(side)
        assert answer.status_code == 200, answer.text
        sides.append([json.loads(line) for line in answer.text.splitlines() if line.strip()])
    after = {r["MaHoSo"]: r for r in sides[1]}
    assert sides[0]
    return [(old, after.get(old["MaHoSo"])) for old in sides[0]]


@probe("conversion-drops-record")
def _conversion_drops(h: Harness) -> bool:
    return any(new is None for _, new in _export(h))


@probe("conversion-silent-split-pick")
def _conversion_split(h: Harness) -> bool:
    units = admin_units()
    return any(new is not None and len(units.new_communes_for_legacy(old["MaXa"])) > 1 and "QuyetDinhTach" not in new
               for old, new in _export(h))


@probe("conversion-stale-agency")
def _conversion_agency(h: Harness) -> bool:
    return any(new is not None and new["MaCoQuan"] == old["MaCoQuan"] for old, new in _export(h))


@probe("conversion-stale-address")
def _conversion_address(h: Harness) -> bool:
    names = {c.code: c.name for c in admin_units().communes("01")}
    return any(new is not None and names[new["MaXa"]] not in new["DiaChi"] for _, new in _export(h))


@probe("conversion-not-digitised")
def _conversion_digitised(h: Harness) -> bool:
    return any(new is not None and old["CapCoQuan"] == "huyen" and old["TrangThaiHoSo"] in ("9", "10")
               and not (new["KetQua"] and all(r["DuocSoHoa"] and r["DuocTaiSuDung"] for r in new["KetQua"]))
               for old, new in _export(h))
# -- document_axis ---------------------------------------------------------------------------------
def _axis_deliver(h: Harness, **body: Any) -> dict[str, Any]:
    answer = h.national.post("/_control/axis/deliver", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _axis_pushed(h: Harness, document_id: str, wait: float = 0.5) -> list[str]:
    time.sleep(wait)
    record = h.national.get("/_ledger/axis/delivered", params={"DocumentId": document_id}).json()
    return [s["StatusCode"] for s in record["statuses"]]


def _axis_send(h: Harness, **body: Any) -> dict[str, Any]:
    answer = h.http.post("/officer/axis/documents", json={"Subject": "probe", **body},
                         headers=h.sb.officer_headers())
    assert answer.status_code == 202, answer.text
    time.sleep(0.3)
    record = h.national.get("/_ledger/axis/sent", params={"DocumentId": answer.json()["DocumentId"]})
    return record.json() if record.status_code == 200 else {}


@probe("ack-only-arrived")
def _axis_ack(h: Harness) -> bool:
    return "03" not in _axis_pushed(h, _axis_deliver(h)["DocumentId"])


@probe("500-on-malformed-edxml")
def _axis_500(h: Harness) -> bool:
    return _axis_deliver(h, kind="malformed:not-xml")["http_status"] == 500


@probe("accepts-malformed-edxml")
def _axis_lenient(h: Harness) -> bool:
    return _axis_deliver(h, kind="malformed:reference-without-attachment").get("StatusCode") == "01"


@probe("rejects-optional-edxml-elements")
def _axis_strict(h: Harness) -> bool:
    return _axis_deliver(h, kind="accept:optional-elements").get("StatusCode") == "02"


@probe("processes-duplicate-document")
def _axis_duplicate(h: Harness) -> bool:
    document_id = _axis_deliver(h)["DocumentId"]
    _axis_pushed(h, document_id, 0.3)
    _axis_deliver(h, DocumentId=document_id)
    return _axis_pushed(h, document_id).count("03") > 1


@probe("status-out-of-order")
def _axis_order(h: Harness) -> bool:
    document_id = _axis_deliver(h)["DocumentId"]
    _axis_pushed(h, document_id, 0.3)
    answer = h.http.post("/officer/axis/status", json={"DocumentId": document_id, "StatusCode": "01"},
                         headers=h.sb.officer_headers())
    return answer.status_code == 200


@probe("pre-merger-district-organ-id")
def _axis_district(h: Harness) -> bool:
    return _axis_send(h, ToMaXa="00226")["codes"].get(h.sb.configs.province.agency_code) is None


@probe("bad-document-id-format")
def _axis_document_id(h: Harness) -> bool:
    return _axis_send(h, ToMaXa="00226") == {}


@probe("bad-status-timestamp")
def _axis_timestamp(h: Harness) -> bool:
    document_id = _axis_deliver(h)["DocumentId"]
    time.sleep(0.5)
    record = h.national.get("/_ledger/axis/delivered", params={"DocumentId": document_id}).json()
    return any(s["problems"] for s in record["statuses"])


@probe("stale-agency-directory")
def _axis_stale(h: Harness) -> bool:
    directory = h.national.get("/_ledger/axis/directory").json()["agencies"]
    commune = next(e for e in directory if e.get("MaXa") == "00226" and e["Active"])
    _axis_send(h, ToMaXa="00226")
    new = commune["OrganId"].replace(".00.H", ".07.H")
    assert h.national.post("/_control/axis/agency-code",
                           json={"OrganId": commune["OrganId"], "NewOrganId": new}).status_code == 200
    return _axis_send(h, ToMaXa="00226")["To"] != [new]


@probe("ignores-recall")
def _axis_recall(h: Harness) -> bool:
    document_id = _axis_deliver(h)["DocumentId"]
    _axis_pushed(h, document_id, 0.3)
    assert h.national.post("/_control/axis/recall", json={"DocumentId": document_id}).status_code == 200
    return not {"15", "16"} & set(_axis_pushed(h, document_id))


@probe("sent-document-lost")
def _axis_lost(h: Harness) -> bool:
    return _axis_send(h, ToMaXa="00004") == {}


# -- the tests -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def correct() -> Iterator[Harness]:
    with Sandbox.start(mode="thread") as sb:
        h = Harness(sb)
        yield h
        h.close()


def test_every_fault_has_a_probe() -> None:
    assert set(PROBES) == set(FAULTS)
    # every checklist criterion has faults that break it (fuzzing's faults break the criterion of the API they hit)
    assert {f.breaks for f in FAULTS.values()} == set(CRITERIA) - {"fuzzing"}


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


# -- consistency: views, idempotency, lists, minimal input (appended with SUB-15/16, SYNC-20/21/22, PAY-15/16,
# FWD-07) ---------------------------------------------------------------------------------------------------
def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    import threading

    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=10)
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _synced_item(h: Harness, ma_ho_so: str) -> dict:
    assert h.synced(ma_ho_so, "1", timeout=5) is not None
    entry = h.ledger(ma_ho_so)
    assert entry is not None
    return entry["item"]  # type: ignore[no-any-return]


@probe("sync-fee-from-wrong-field")
def _sync_fee(h: Harness) -> bool:
    token, _ = h.login()
    dossier = h.submit(token, MaTTHC="1.004222")
    return _synced_item(h, dossier["MaHoSo"])["DanhSachLePhi"] != dossier["DanhSachLePhi"]


@probe("channel-not-synced")
def _channel(h: Harness) -> bool:
    token, _ = h.login()
    dossier = h.submit(token, KenhThucHien="2")
    return _synced_item(h, dossier["MaHoSo"])["KenhThucHien"] != "2"


@probe("hen-tra-before-tiep-nhan")
def _hen_tra(h: Harness) -> bool:
    token, _ = h.login()
    dossier = h.submit(token)
    return dossier["NgayHenTra"] < dossier["NgayTiepNhan"]  # yyyyMMddHHmmss: text order is time order


@probe("double-transition-on-concurrent-action")
def _double_transition(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    clients = [httpx.Client(base_url=h.sb.province_url, headers=h.sb.officer_headers(), timeout=15.0) for _ in "ab"]
    try:
        answers = _at_once([lambda c=c: c.post(f"/officer/dossiers/{m}/actions", json={"action": "receive"})
                            for c in clients])
    finally:
        for c in clients:
            c.close()
    return [a.status_code for a in answers].count(200) > 1


@probe("list-filter-ignored")
def _list_filter(h: Harness) -> bool:
    token, _ = h.login()
    h.submit(token)  # a dossier in state 1
    listed = h.http.get("/officer/dossiers?TrangThaiHoSo=2&limit=200", headers=h.sb.officer_headers()).json()
    return any(item["TrangThaiHoSo"] != "2" for item in listed["items"])


@probe("requires-optional-fields")
def _requires_optional(h: Harness) -> bool:
    token, _ = h.login()
    minimal = {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "x"}  # the contract's required fields
    answer = h.province.submit(token, minimal)
    assert answer.status_code in (201, 422), answer.text
    return answer.status_code == 422


@probe("wrong-fee-for-free-procedure")
def _free_fee(h: Harness) -> bool:
    procedures = {p["MaTTHC"]: p for p in h.http.get("/api/v1/procedures").json()["items"]}
    return procedures["1.001193"]["PhiPhaiNop"] != 0  # birth registration is free (contracts/procedures.yaml)


@probe("double-effect-on-concurrent-callback")
def _double_callback(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token, MaTTHC="1.004222")["MaHoSo"]
    start = h.province.start_payment(token, m)
    assert start.status_code == 201, start.text
    paid = httpx.get(start.json()["UrlThanhToan"] + "?result=success&deliveries=2", timeout=15.0)
    assert paid.status_code == 200 and len(paid.json()["deliveries"]) == 2, paid.text
    return h.province.dossier(token, m).json()["SoTienDaThanhToan"] > start.json()["SoTien"]


@probe("duplicate-on-concurrent-forward")
def _double_forward(h: Harness) -> bool:
    body = dict(h.national.post("/_control/forward", json={}).json()["dossier"])
    body["MaHoSo"] = body["MaHoSo"][:-4] + "9998"  # a fresh code, delivered twice at once
    clients = [httpx.Client(base_url=h.sb.national_url, headers=h.sb.control_headers(), timeout=15.0) for _ in "ab"]
    try:
        answers = _at_once([lambda c=c: c.post("/_control/forward", json=body) for c in clients])
    finally:
        for c in clients:
            c.close()
    return [a.json()["status_code"] for a in answers].count(201) > 1
# -- sso flow (probes of the faults added with SSO-30…39) ------------------------------------------
def _query_without(url: str, *names: str, **values: str) -> str:
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items() if k not in names}
    return urlunparse(parts._replace(query=urlencode({**query, **values})))


@probe("accepts-discovery-issuer-mismatch")
def _discovery_issuer(h: Harness) -> bool:
    import shutil
    import tempfile
    from pathlib import Path

    from haicap.sandbox.config import build_sandbox_configs
    from haicap.sandbox.province.app import create_app
    from haicap.sandbox.server import ThreadServer, bind_socket, url_of

    root = Path(tempfile.mkdtemp(prefix="haicap-probe-mixup-"))
    sock = bind_socket("127.0.0.1", 0)
    configs = build_sandbox_configs(h.sb.national_url + "/mixup", url_of(sock), root, faults=h.sb.faults)
    configs.province.state_dir.mkdir(parents=True)
    server = ThreadServer(create_app(configs.province), sock)
    try:
        server.start()
        answer = httpx.get(server.url + "/auth/login", params={"login_hint": new_cccd()}, timeout=15.0)
        return answer.status_code == 302
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@probe("accepts-missing-state")
def _missing_state(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        return browser.get(_query_without(_callback_url(browser, h), "state")).status_code == 200


@probe("state-not-bound-to-browser")
def _login_csrf(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as a, httpx.Client(timeout=15.0) as b:
        return b.get(_callback_url(a, h)).status_code == 200


@probe("500-on-error-callback")
def _error_callback(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        login = browser.get(h.sb.province_url + "/auth/login", params={"login_hint": new_cccd()})
        sent = {k: v[0] for k, v in parse_qs(urlparse(login.headers["location"]).query).items()}
        answer = browser.get(sent["redirect_uri"], params={"error": "access_denied", "state": sent["state"],
                                                           "iss": h.sb.national_url})
        assert answer.status_code != 200
        return answer.status_code >= 500


@probe("ignores-iss-parameter")
def _wrong_iss(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        return browser.get(_query_without(_callback_url(browser, h), iss="https://evil.example")).status_code == 200


@probe("accepts-missing-iss-parameter")
def _missing_iss(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        return browser.get(_query_without(_callback_url(browser, h), "iss")).status_code == 200


@probe("access-token-in-url")
def _token_in_url(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        login = browser.get(h.sb.province_url + "/auth/login", params={"login_hint": new_cccd(), "return_to": "/x"})
        callback = browser.get(browser.get(login.headers["location"]).headers["location"])
        body = callback.json()
        return body["access_token"] in body.get("return_to", "")


@probe("leaks-code-via-referer")
def _referer(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        callback = browser.get(_callback_url(browser, h))
        assert callback.status_code == 200
        return callback.headers.get("referrer-policy") is None


@probe("open-redirect-after-login")
def _open_redirect(h: Harness) -> bool:
    with httpx.Client(timeout=15.0) as browser:
        login = browser.get(h.sb.province_url + "/auth/login",
                            params={"login_hint": new_cccd(), "return_to": "//evil.example/"})
        if login.status_code != 302:
            return False
        callback = browser.get(browser.get(login.headers["location"]).headers["location"])
        return callback.json().get("return_to") == "//evil.example/"
# -- the dossier state machine (faults added with SYNC-06..09, SUB-30/31) -------------------------------------
def _walked(h: Harness, *actions: str, **fields: Any) -> tuple[CitizenSession, str]:
    session, _ = h.login()
    m = h.submit(session, **fields)["MaHoSo"]
    for action in actions:
        assert h.act(m, action) == 200, action
    return session, m


_SUPPLEMENT = {"TaiLieuNop": [{"TepDinhKemId": "bs-1", "TenTepDinhKem": "bs.pdf", "IsDeleted": False,
                               "MaThanhPhanHoSo": "BS", "DuongDanTaiTepTin": "/files/bs-1"}]}


@probe("officer-actions-on-closed-dossiers")
def _closed(h: Harness) -> bool:
    _, m = _walked(h, "reject")
    return h.act(m, "receive") == 200


@probe("processes-unpaid-dossier")
def _unpaid(h: Harness) -> bool:
    _, m = _walked(h, "receive", "request-payment", MaTTHC="1.004222")
    return h.act(m, "process") == 200


@probe("refuses-process-after-payment")
def _paid_refused(h: Harness) -> bool:
    session, m = _walked(h, "receive", "request-payment", MaTTHC="1.004222")
    h.pay(session, m)
    assert wait_for(lambda: h.province.dossier(session, m).json()["DaThanhToan"])
    return h.act(m, "process") == 409


@probe("stop-only-while-processing")
def _stop(h: Harness) -> bool:
    _, m = _walked(h, "receive", "request-supplement")
    return h.act(m, "stop") == 409


@probe("refused-action-still-synced")
def _refused_synced(h: Harness) -> bool:
    _, m = _walked(h)
    assert h.act(m, "return-result") == 409
    assert wait_for(h.drained)
    entry = h.ledger(m)
    return entry is not None and "10" in [e["TrangThaiHoSo"] for e in entry["history"]]


@probe("transition-refused-with-400")
def _refused_400(h: Harness) -> bool:
    _, m = _walked(h)
    return h.act(m, "complete") == 400


@probe("withdraw-after-decision")
def _withdraw_decided(h: Harness) -> bool:
    session, m = _walked(h, "receive", "process", "complete")
    return h.province.withdraw(session, m, {"LyDo": "x"}).status_code == 200


@probe("supplement-without-request")
def _supplement_unrequested(h: Harness) -> bool:
    session, m = _walked(h, "receive")
    return h.province.supplement(session, m, _SUPPLEMENT).status_code == 200


@probe("withdraw-refused-while-waiting")
def _withdraw_waiting(h: Harness) -> bool:
    session, m = _walked(h, "receive", "request-supplement")
    return h.province.withdraw(session, m, {"LyDo": "x"}).status_code == 409
# -- sync under faults, progress and time zones (faults added with checks SYNC-10, -11, -12, -19) -----------
def _lost_during_outage(h: Harness, seconds: float) -> bool:
    token, _ = h.login()
    h.national.post("/_control/outage", json={"services": ["sync"], "seconds": seconds})
    m = h.submit(token)["MaHoSo"]
    time.sleep(seconds)
    return h.synced(m, "1", timeout=3) is None


@probe("gives-up-after-3-attempts")
def _gives_up(h: Harness) -> bool:
    return _lost_during_outage(h, 2.0)  # attempts at about 0, 0.2, 0.6, 1.0 s: more than 3 fail


@probe("drops-changes-during-outage")
def _drops_during_outage(h: Harness) -> bool:
    return _lost_during_outage(h, 0.5)


@probe("never-logs-in-again")
def _never_relogs(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    assert h.synced(m, "1", timeout=5) is not None
    assert h.national.post("/_control/sync/expire-sessions").status_code == 200
    assert h.act(m, "receive") == 200
    return h.synced(m, "2", timeout=3) is None


@probe("no-progress-sync")
def _no_progress(h: Harness) -> bool:
    token, _ = h.login()
    m = h.submit(token)["MaHoSo"]
    assert h.act(m, "receive") == 200
    assert h.synced(m, "2", timeout=5) is not None
    assert wait_for(h.drained)
    entry = h.ledger(m)
    return entry is not None and not entry["progress"]


@probe("utc-timestamps")
def _utc_timestamps(h: Harness) -> bool:
    from haicap.vn_time import to_ms

    token, _ = h.login()
    dossier = h.submit(token)
    assert h.synced(dossier["MaHoSo"], "1", timeout=5) is not None
    entry = h.ledger(dossier["MaHoSo"])
    assert entry is not None
    sent, kept = to_ms(entry["item"]["NgayNopHoSo"]), to_ms(dossier["NgayNopHoSo"])
    assert sent is not None and kept is not None
    return kept - sent == 7 * 3_600_000
# -- submission, payment and forwarding rules (appended with SUB-07/08, PAY-02/07/08, FWD-03) ---------------
@probe("accepts-other-province-communes")
def _other_province_commune(h: Harness) -> bool:
    token, _ = h.login()
    foreign = admin_units().communes("79")[0].code
    body = {"MaTTHC": "1.001193", "MaXa": foreign, "TrichYeuHoSo": "x"}
    answer = h.province.submit(token, body)
    assert answer.status_code in (201, 422), answer.text
    return answer.status_code == 201


@probe("reads-any-dossier")
def _reads_any(h: Harness) -> bool:
    owner, _ = h.login()
    other, _ = h.login()
    m = h.submit(owner)["MaHoSo"]
    return h.province.dossier(other, m).status_code == 200


@probe("acts-on-any-dossier")
def _acts_on_any(h: Harness) -> bool:
    owner, _ = h.login()
    other, _ = h.login()
    m = h.submit(owner)["MaHoSo"]
    withdrawn = h.province.withdraw(other, m, {"LyDo": "không phải hồ sơ của tôi"})
    return withdrawn.status_code == 200 and h.province.dossier(owner, m).json()["TrangThaiHoSo"] == "7"


def _tampered_status(h: Harness, defect: str) -> int:
    _, _, payment = _paid_dossier(h)
    sent = h.national.post(f"/_control/payment/{payment['MaThamChieu']}/tamper", json={"defect": defect})
    assert sent.status_code == 200, sent.text
    return int(sent.json()["status_code"])


for _fault, _defect in {
    "prefix-checksum-compare": "checksum-last-digits",
    "case-insensitive-checksum": "checksum-uppercase",
    "accepts-missing-checksum": "checksum-missing",
    "accepts-unknown-reference": "unknown-reference",
}.items():
    probe(_fault)(lambda h, defect=_defect: _tampered_status(h, defect) == 200)


@probe("charges-again-on-new-transaction-id")
def _new_transaction_id(h: Harness) -> bool:
    token, m, payment = _paid_dossier(h)
    sent = h.national.post(f"/_control/payment/{payment['MaThamChieu']}/tamper", json={"defect": "new-transaction-id"})
    assert sent.status_code == 200, sent.text
    return h.province.dossier(token, m).json()["SoTienDaThanhToan"] > payment["SoTien"]


@probe("accepts-any-forward-token")
def _any_forward_token(h: Harness) -> bool:
    sent = h.national.post("/_control/forward", json={"credential_of": "other"}).json()
    assert sent["status_code"] in (201, 401) and sent["credential_of"] != "01", sent
    return sent["status_code"] == 201
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


# -- portal: the closed provincial portal (sandbox/province/old_portal.py; PORT-01..03) -----------------
@probe("old-portal-still-serves-form")
def _old_form_served(h: Harness) -> bool:
    answer = h.http.get("/portal/nop-ho-so/1.001193")
    return answer.status_code == 200 and "<form" in answer.text


def _old_procedure_location(h: Harness) -> str:
    answer = h.http.get("/portal/thu-tuc/1.001193")
    assert answer.status_code in (301, 302, 303, 307, 308), answer.status_code
    return answer.headers["location"]


@probe("old-portal-redirects-elsewhere")
def _old_redirect_elsewhere(h: Harness) -> bool:
    return not _old_procedure_location(h).startswith(h.sb.national_url + "/")


@probe("old-portal-redirects-to-home")
def _old_redirect_home(h: Harness) -> bool:
    return "1.001193" not in _old_procedure_location(h)


@probe("old-portal-accepts-submissions")
def _old_post_creates(h: Harness) -> bool:
    marker = f"old portal probe {time.monotonic_ns()}"
    answer = h.http.post("/portal/nop-ho-so/1.001193", data={"MaXa": "00226", "ChuHoSo": "Nguyễn Văn A",
                                                              "SoDinhDanh": new_cccd(), "TrichYeuHoSo": marker})
    assert answer.status_code in (303, 410), answer.status_code
    listed = h.http.get("/officer/dossiers", params={"MaXa": "00226", "limit": "200"},
                        headers=h.sb.officer_headers()).json()["items"]
    return any(d.get("TrichYeuHoSo") == marker for d in listed)


@probe("old-portal-local-login")
def _old_local_login(h: Harness) -> bool:
    page = h.http.get("/portal/dang-nhap")
    signed_in = h.http.post("/portal/dang-nhap", data={"username": "u", "password": "p"})
    return 'type="password"' in page.text or "set-cookie" in signed_in.headers


# -- civil-status interconnection (sandbox/province/civil_status.py) ---------------------------------
def _civil(h: Harness, group: str = "1", complete: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """Deliver one interconnected dossier, issue the named results; (interconnection record, NPSP record)."""
    sent = h.national.post("/_control/civil/send", json={"group": group}).json()
    so = sent["soHoSoLT"]
    ledger = f"/_ledger/civil/dossiers/{so}"
    wait_for(lambda: len(h.national.get(ledger).json()["pushes"]) >= 6, timeout=2.0)
    for component in complete:
        h.national.post("/_control/civil/complete", json={"soHoSoLT": so, "component": component})
        time.sleep(0.1)
    ma_ho_so = sent["dossier"]["maHoSo"]
    npsp = wait_for(lambda: (r := h.national.get(f"/_ledger/sync/dossiers/{ma_ho_so}")).status_code == 200
                    and len(r.json()["history"]) >= 3 and r.json(), timeout=2.0) or {}
    return h.national.get(ledger).json(), npsp


def _civil_pushes(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["body"] for p in record["pushes"]]


@probe("civil-pushes-out-of-order")
def _civil_order(h: Harness) -> bool:
    first = {}
    for push in _civil_pushes(_civil(h)[0]):
        first.setdefault(push["maTTHC"], push["trangThai"])
    return any(s != "1" for s in first.values())


@probe("civil-push-missing-field")
def _civil_missing(h: Harness) -> bool:
    return any("nguoiXuLy" not in p for p in _civil_pushes(_civil(h)[0]))


@probe("civil-push-iso-dates")
def _civil_iso(h: Harness) -> bool:
    return any("T" in p.get("thoiGianThucHien", "") for p in _civil_pushes(_civil(h)[0]))


@probe("civil-closes-on-first-result")
def _civil_closes_early(h: Harness) -> bool:
    record, _ = _civil(h, complete=("bhyt",))
    officer = h.http.get(f"/officer/dossiers/{record['MaHoSo']}", headers=h.sb.officer_headers()).json()
    return officer["TrangThaiHoSo"] == "9"


@probe("civil-component-never-completes")
def _civil_never(h: Harness) -> bool:
    record, _ = _civil(h, complete=("bhyt",))
    wait_for(lambda: len(h.national.get(f"/_ledger/civil/dossiers/{record['soHoSoLT']}").json()["pushes"]) >= 7,
             timeout=1.0)
    pushes = _civil_pushes(h.national.get(f"/_ledger/civil/dossiers/{record['soHoSoLT']}").json())
    return not any(p["trangThai"] == "3" for p in pushes)


@probe("civil-composite-not-synced")
def _civil_not_synced(h: Harness) -> bool:
    _, npsp = _civil(h)
    return [e["TrangThaiHoSo"] for e in npsp.get("history", [])] != ["1", "2", "4"]


@probe("civil-fee-on-time")
def _civil_fee(h: Harness) -> bool:
    _, npsp = _civil(h)
    return any(int(f.get("Gia", 0)) > 0 for f in (npsp.get("item") or {}).get("DanhSachLePhi") or [])


@probe("civil-loses-portal-dossier")
def _civil_lost(h: Harness) -> bool:
    sent = h.national.post("/_control/civil/send", json={"group": "1"}).json()
    assert sent["status_code"] == 201
    officer = h.sb.officer_headers()
    return h.http.get(f"/officer/dossiers/{sent['dossier']['maHoSo']}", headers=officer).status_code == 404


@probe("civil-refuses-death-group")
def _civil_death_refused(h: Harness) -> bool:
    return h.national.post("/_control/civil/send", json={"group": "2"}).json()["status_code"] != 201


@probe("civil-unauthenticated-interconnection")
def _civil_unauthenticated(h: Harness) -> bool:
    result = {"soHoSoLT": "LTKS-x", "maHoSo": "000.00.00.G16-261202-0001", "maTTHC": "1.002978",
              "ketQuaXuLy": "Thẻ giả", "thoiGianThucHien": "02/12/2026 10:00:00"}
    return h.http.post("/lienthong/ket-qua", json=result).status_code != 401
# -- signed results (faults added with SIG-01..06) ---------------------------------------------------------
def _result_kinds(h: Harness) -> set[str]:
    """The findings of the verifier on the signed results of a completed dossier, against the run's test CA."""
    from datetime import UTC, datetime

    from haicap.signatures import Trust, decode_document, verify_document

    _, m = _walked(h, "receive", "process", "complete")
    items = h.province.officer_dossier(m).json().get("DanhSachGiayToKetQua") or []
    assert len(items) == 2, items
    crls = [h.national.get(f"/ca/crl/{w}.der").content for w in ("sub", "root")]
    trust = Trust.load([h.national.get("/ca/root.pem").content], crls)
    kinds: set[str] = set()
    for item in items:
        data = decode_document(item["TepKetQuaKySo"]["NoiDung"])
        assert isinstance(data, bytes)
        kinds |= {str(k) for k in verify_document(data, trust, datetime.now(UTC)).kinds()}
    return kinds


for _fault, _kind in {
    "result-modified-after-signing": "bad-signature",
    "result-signed-sha1": "weak-algorithm",
    "result-signer-self-signed": "untrusted-chain",
    "result-signer-expired": "outside-validity",
    "result-signer-revoked": "revoked",
    "result-signed-before-not-before": "outside-validity",
    "result-signer-dissolved-agency": "dissolved-agency",
    "result-unsigned": "unsigned",
}.items():
    probe(_fault)(lambda h, kind=_kind: kind in _result_kinds(h))


# -- signed edXML packages (faults added with SIG-07) ------------------------------------------------------
def _edxml_kinds(h: Harness) -> set[str]:
    """The verifier's findings on one package the officer sent over the axis, as the axis received it."""
    import base64
    from datetime import UTC, datetime

    from haicap.axis_contract import axis_contract
    from haicap.signatures import Trust, verify_document

    record = _axis_send(h, ToMaXa="00226")
    assert record.get("package"), record
    crls = [h.national.get(f"/ca/crl/{w}.der").content for w in ("sub", "root")]
    trust = Trust.load([h.national.get("/ca/root.pem").content], crls)
    verdict = verify_document(base64.b64decode(record["package"]), trust, datetime.now(UTC), whole_document=False,
                              parts=(f"{{{axis_contract().namespace}}}edXMLEnvelope",))
    return {str(k) for k in verdict.kinds()}


probe("edxml-unsigned")(lambda h: "unsigned" in _edxml_kinds(h))
probe("edxml-modified-after-signing")(lambda h: "bad-signature" in _edxml_kinds(h))
