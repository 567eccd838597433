"""The national sync receiver: sessions, per-item validation, duplicates, outages, look-up, the ledger."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.sandbox.national.testing import RunningNational

_SEQ = itertools.count(1)


def _login(client: httpx.Client, national: RunningNational) -> str:
    account = national.configs.national.sync_accounts[0]
    response = client.post("/sync/login", json={"username": account.username, "password": account.password,
                                                "madonvi": account.madonvi})
    assert response.status_code == 200 and response.json()["error_code"] == "0"
    return str(response.json()["session"])


def _item(national: RunningNational, **overrides: Any) -> dict[str, Any]:
    agency = national.configs.national.sync_accounts[0].madonvi
    item: dict[str, Any] = {
        "MaHoSo": f"{agency}-250701-{next(_SEQ):04d}", "MaTTHC": "1.001193", "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Nguyễn Văn An", "LoaiDoiTuong": "1", "NgayTiepNhan": "20250701080000",
        "NgayHenTra": "20250703170000", "TrangThaiHoSo": "2", "KenhThucHien": "2", "NoiNopHoSo": "DVC tỉnh",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001090123456"}], "DuocThanhToanTrucTuyen": "0",
        "MaXa": admin_units().communes("01")[0].code,
    }
    item.update(overrides)
    assert set(default_registry().required_names("sync.schema.json#/$defs/DongBoHoSoMCItem")) <= set(item)
    return item


def _call(client: httpx.Client, national: RunningNational, session: str, service: str, **body: Any) -> httpx.Response:
    madonvi = national.configs.national.sync_accounts[0].madonvi
    return client.post("/sync/service", json={"service": service, "session": session, "madonvi": madonvi, **body})


def _ledger(client: httpx.Client, national: RunningNational, path: str, **params: Any) -> Any:
    response = client.get(f"/_ledger/{path}", params=params, headers=national.control_headers())
    return response


def test_login_rejects_bad_credentials(client: httpx.Client, national: RunningNational) -> None:
    account = national.configs.national.sync_accounts[0]
    bad = client.post("/sync/login", json={"username": account.username, "password": "wrong",
                                           "madonvi": account.madonvi})
    assert bad.status_code == 401 and bad.json()["error_code"] == "-1"
    assert account.password not in bad.text
    malformed = client.post("/sync/login", json={"username": account.username})
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "-4"
    assert {e["field"] for e in malformed.json()["errors"]} == {"password", "madonvi"}


def test_items_are_recorded_with_history(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    item = _item(national)
    created = _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=[item])
    assert created.json() == {"error_code": "0", "message": "1 item(s) recorded", "accepted": 1}
    updated = _call(client, national, session, "DongBoHoSoMC", isUpdating="True",
                    data=[{**item, "TrangThaiHoSo": "4"}])
    assert updated.json()["error_code"] == "0"
    record = _ledger(client, national, f"sync/dossiers/{item['MaHoSo']}").json()
    assert record["TrangThaiHoSo"] == "4" and record["item"]["TrangThaiHoSo"] == "4"
    assert [h["TrangThaiHoSo"] for h in record["history"]] == ["2", "4"]
    assert record["history"][0]["received_ms"] <= record["history"][1]["received_ms"]
    assert abs(record["history"][0]["received_ms"] - time.time() * 1000) < 60_000
    looked_up = _call(client, national, session, "TraCuuHoSo", MaHoSo=item["MaHoSo"]).json()
    assert looked_up["error_code"] == "0" and looked_up["result"][0]["TrangThaiHoSo"] == "4"
    unknown = _call(client, national, session, "TraCuuHoSo", MaHoSo="000.00.00.H26-250701-9999").json()
    assert unknown["error_code"] == "-5" and unknown["result"] == []


def test_existing_dossier_answers_3(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    item = _item(national)
    assert _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=[item]).json()["error_code"] == "0"
    before = _ledger(client, national, "sync/stats").json()["duplicates"]
    again = _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=[item]).json()
    assert again["error_code"] == "3" and again["duplicates"] == [item["MaHoSo"]]
    assert _ledger(client, national, "sync/stats").json()["duplicates"] == before + 1
    assert len(_ledger(client, national, f"sync/dossiers/{item['MaHoSo']}").json()["history"]) == 1


def test_bad_items_are_refused_by_field_and_good_ones_recorded(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    good = _item(national)
    missing = _item(national)
    del missing["NgayHenTra"]
    bad_date = _item(national, NgayTiepNhan="2025-07-01 08:00")
    legacy = next(w.code for w in admin_units().legacy_wards("01") if not admin_units().is_current_commune(w.code))
    pre_merger = _item(national, MaXa=legacy)
    elsewhere = _item(national, MaXa=admin_units().communes("79")[0].code)
    refused_without_date = _item(national, TrangThaiHoSo="3")
    data = [good, missing, bad_date, pre_merger, elsewhere, refused_without_date]
    answer = _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=data).json()
    assert answer["error_code"] == "-2" and answer["accepted"] == 1
    by_dossier = {(e["MaHoSo"], e["field"]) for e in answer["errors"]}
    assert (missing["MaHoSo"], "NgayHenTra") in by_dossier
    assert (bad_date["MaHoSo"], "NgayTiepNhan") in by_dossier
    assert (pre_merger["MaHoSo"], "MaXa") in by_dossier
    assert (elsewhere["MaHoSo"], "MaXa") in by_dossier
    assert (refused_without_date["MaHoSo"], "NgayTuChoi") in by_dossier
    assert _ledger(client, national, f"sync/dossiers/{good['MaHoSo']}").status_code == 200
    assert _ledger(client, national, f"sync/dossiers/{missing['MaHoSo']}").status_code == 404
    rejections = _ledger(client, national, "sync/rejections", limit=10000).json()["items"]
    refused = {r["MaHoSo"]: r for r in rejections}
    assert refused[pre_merger["MaHoSo"]]["errors"][0]["field"] == "MaXa"
    assert refused[pre_merger["MaHoSo"]]["item"]["MaXa"] == legacy


def test_progress_is_recorded(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    item = _item(national)
    _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=[item])
    step = {"MaHoSo": item["MaHoSo"], "NguoiXuLy": "Cán bộ A", "ThoiDiemXuLy": "20250701090000",
            "NoiDungXuLy": "Tiếp nhận", "TrangThai": "2"}
    assert _call(client, national, session, "CapNhatTienDoHoSoMC", data=[step]).json()["error_code"] == "0"
    bad = _call(client, national, session, "CapNhatTienDoHoSoMC", data=[{**step, "TrangThai": "11"}]).json()
    assert bad["error_code"] == "-2" and bad["errors"][0]["field"] == "TrangThai"
    progress = _ledger(client, national, f"sync/dossiers/{item['MaHoSo']}").json()["progress"]
    assert [p["item"]["NoiDungXuLy"] for p in progress] == ["Tiếp nhận"]


def test_sessions_expire_and_are_checked(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    item = _item(national)
    unknown = _call(client, national, "not-a-session", "DongBoHoSoMC", isUpdating="False", data=[item])
    assert unknown.status_code == 401 and unknown.json()["error_code"] == "-1"
    other = client.post("/sync/service", json={"service": "TraCuuHoSo", "session": session,
                                               "madonvi": "000.00.00.H56", "MaHoSo": item["MaHoSo"]})
    assert other.status_code == 401
    expired = client.post("/_control/sync/expire-sessions", headers=national.control_headers())
    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    after = _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=[item])
    assert after.status_code == 401 and after.json()["error_code"] == "-1"
    assert _ledger(client, national, f"sync/dossiers/{item['MaHoSo']}").status_code == 404
    fresh = _login(client, national)
    assert _call(client, national, fresh, "DongBoHoSoMC", isUpdating="False", data=[item]).json()["error_code"] == "0"


def test_malformed_envelopes(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    no_data = _call(client, national, session, "DongBoHoSoMC", isUpdating="False")
    assert no_data.status_code == 400 and no_data.json()["error_code"] == "-4"
    assert no_data.json()["errors"][0]["field"] == "data"
    unknown = _call(client, national, session, "LayDanhMucVuTru", data=[{}])
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "service"
    not_json = client.post("/sync/service", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error_code"] == "-4"


def test_outage_answers_503_until_switched_off(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    headers = national.control_headers()
    on = client.post("/_control/outage", json={"services": ["sync"]}, headers=headers)
    assert on.status_code == 200 and on.json()["outages"] == {"sync": None}
    try:
        down = _call(client, national, session, "TraCuuHoSo", MaHoSo="000.00.00.H26-250701-0001")
        assert down.status_code == 503 and "retry-after" in down.headers
        assert client.post("/sync/login", json={}).status_code == 503
    finally:
        assert client.delete("/_control/outage", headers=headers).json() == {"outages": {}}
    assert _call(client, national, session, "TraCuuHoSo", MaHoSo="000.00.00.H26-250701-0001").status_code == 200
    client.post("/_control/outage", json={"services": ["sync"], "seconds": 0.3}, headers=headers)
    assert client.post("/sync/login", json={}).status_code == 503
    time.sleep(0.4)
    assert client.post("/sync/login", json={}).status_code == 400
    bad = client.post("/_control/outage", json={"services": ["everything"]}, headers=headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"].startswith("services")


def test_stats_and_listing(client: httpx.Client, national: RunningNational) -> None:
    session = _login(client, national)
    items = [_item(national) for _ in range(3)]
    _call(client, national, session, "DongBoHoSoMC", isUpdating="False", data=items)
    stats = _ledger(client, national, "sync/stats").json()
    assert stats["dossiers"] >= 3 and stats["items"] >= 3 and stats["logins"] >= 1 and stats["communes"] >= 1
    madonvi = national.configs.national.sync_accounts[0].madonvi
    page = _ledger(client, national, "sync/dossiers", madonvi=madonvi, limit=2).json()
    assert page["total"] == stats["dossiers"] and len(page["items"]) == 2
    assert _ledger(client, national, "sync/dossiers", limit=0).status_code == 400
    assert client.get("/_ledger/sync/stats").status_code == 401


def test_refused_calls_are_counted_for_outage_and_session_evidence(client: httpx.Client,
                                                                   national: RunningNational) -> None:
    """SYNC-10 and SYNC-19 read these counters: calls refused while down, calls with a dead session."""
    headers = national.control_headers()
    session = _login(client, national)
    before = _ledger(client, national, "sync/stats").json()
    client.post("/_control/outage", json={"services": ["sync"], "seconds": 5}, headers=headers)
    try:
        assert _call(client, national, session, "TraCuuHoSo", MaHoSo="000.00.00.H26-250701-0001").status_code == 503
        assert client.post("/sync/login", json={}).status_code == 503
    finally:
        client.delete("/_control/outage", headers=headers)
    client.post("/_control/sync/expire-sessions", headers=headers)
    dead = _call(client, national, session, "TraCuuHoSo", MaHoSo="000.00.00.H26-250701-0001")
    assert dead.status_code == 401 and dead.json()["error_code"] == "-1"
    after = _ledger(client, national, "sync/stats").json()
    assert after["outage_refusals"] - before["outage_refusals"] == 2
    assert after["session_refusals"] - before["session_refusals"] == 1
    assert after["logins"] == before["logins"]
