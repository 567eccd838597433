"""The national payment platform: MaXacThuc both ways, pay → signed callback, replay and tamper."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx

from haicap.contract_registry import default_registry
from haicap.payment_checksum import checksum, verify
from haicap.sandbox.config import PaymentPartner
from haicap.sandbox.national.testing import RecordingProvince, RunningNational, serve_national

_SEQ = itertools.count(1)




def _partner(national: RunningNational) -> PaymentPartner:
    return national.configs.national.payment_partners[0]


def _init(partner: PaymentPartner, amount: int = 10000, **overrides: Any) -> dict[str, Any]:
    ref = f"REF{next(_SEQ):06d}"
    message: dict[str, Any] = {
        "LoaiBanTin": "INIT", "PhienBan": "1.0.6", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": ref,
        "SoTien": amount, "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "web", "NgonNgu": "vi-VN",
        "MaTienTe": "VND", "MaNganHang": "", "ThongTinGiaoDich": f"Lệ phí hồ sơ {ref}", "ThoiGianGD": "20250701090000",
        "Ip": "127.0.0.1",
        "ThongTinBienLai": {
            "MaDVC": "1.004222", "MaTTHC": "1.004222", "MaDonVi": "000.00.00.H26",
            "MaHoSo": "000.00.00.H26-250701-0001",
            "HoTenNguoiNop": "Nguyễn Văn An", "NoiDungThanhToan": "Lệ phí đăng ký thường trú",
            "PhiLePhi": [{"LoaiPhiLePhi": "2", "TenPhiLePhi": "Lệ phí", "SoTien": amount}],
        },
    }
    message.update(overrides)
    message["MaXacThuc"] = checksum(message, partner.secret, "INIT")
    return message


def _signed(partner: PaymentPartner, kind: str, ref: str) -> dict[str, Any]:
    message = {"LoaiBanTin": kind, "PhienBan": "1.0.6", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": ref,
               "ThoiGianGD": "20250701090500"}
    message["MaXacThuc"] = checksum(message, partner.secret, kind)
    return message


def _status(client: httpx.Client, partner: PaymentPartner, ref: str) -> str:
    answer = client.post("/payment/api", json=_signed(partner, "QUERY", ref)).json()
    assert default_registry().validator("payment.schema.json#/$defs/QueryResponse").violations(answer) == []
    return str(answer["message"]["TrangThaiGD"])


def test_init_checks_the_checksum(client: httpx.Client, national: RunningNational) -> None:
    partner = _partner(national)
    message = _init(partner)
    good = client.post("/payment/api", json=message)
    assert good.status_code == 200
    body = good.json()
    assert default_registry().validator("payment.schema.json#/$defs/InitResponse").violations(body) == []
    assert body["message"]["UrlThanhToan"].startswith(f"{national.url}/payment/pay/")
    assert client.post("/payment/api", json=message).json() == body  # an identical INIT is idempotent
    tampered = {**_init(partner), "SoTien": 1}
    tampered["ThongTinBienLai"]["PhiLePhi"][0]["SoTien"] = 1
    bad = client.post("/payment/api", json=tampered)
    assert bad.status_code == 401
    assert bad.json()["error_code"] == "2" and bad.json()["errors"][0]["field"] == "MaXacThuc"
    assert partner.secret not in bad.text
    other_secret = _init(partner)
    other_secret["MaXacThuc"] = checksum(other_secret, "not-the-secret", "INIT")
    assert client.post("/payment/api", json=other_secret).json()["error_code"] == "2"
    reused = _init(partner, MaThamChieu=message["MaThamChieu"], ThongTinGiaoDich="khác")
    assert client.post("/payment/api", json=reused).status_code == 409


def test_init_validates_fields_amount_and_partner(client: httpx.Client, national: RunningNational) -> None:
    partner = _partner(national)
    wrong_sum = _init(partner, amount=10000)
    wrong_sum["ThongTinBienLai"]["PhiLePhi"][0]["SoTien"] = 5000
    answer = client.post("/payment/api", json=wrong_sum)
    assert answer.status_code == 400 and answer.json()["error_code"] == "6"
    invalid = _init(partner, ThoiGianGD="01/07/2025")
    answer = client.post("/payment/api", json=invalid)
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "ThoiGianGD"
    stranger = _init(PaymentPartner("DVC99", "x", "http://127.0.0.1:9"))
    assert client.post("/payment/api", json=stranger).json()["error_code"] == "3"
    assert client.post("/payment/api", json={"LoaiBanTin": "REFUND"}).json()["errors"][0]["field"] == "LoaiBanTin"
    assert client.post("/payment/api", json=_signed(partner, "QUERY", "NOPE")).status_code == 404


def test_pay_sends_a_signed_callback(client: httpx.Client, national: RunningNational,
                                     province: RecordingProvince) -> None:
    partner = _partner(national)
    message = _init(partner, amount=25000)
    url = client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"]
    assert _status(client, partner, message["MaThamChieu"]) == "3"
    before = len(province.callbacks)
    paid = httpx.get(url, params={"result": "success"}, timeout=10).json()
    assert paid["TrangThaiGD"] == "1" and paid["callback_status"] == 200
    assert paid["callback_answer"] == {"MaLoi": "00", "MoTaLoi": "ok"}
    callback = province.callbacks[before]
    assert default_registry().validator("payment.schema.json#/$defs/Callback").violations(callback) == []
    assert verify(callback, partner.secret, "CALLBACK")
    assert callback["MaLoi"] == "00" and callback["SoTien"] == 25000
    assert callback["MaThamChieu"] == message["MaThamChieu"]
    assert _status(client, partner, message["MaThamChieu"]) == "1"
    again = httpx.get(url, params={"result": "failure"}, timeout=10).json()
    assert again["TrangThaiGD"] == "1" and len(province.callbacks) == before + 1  # settled: nothing sent
    bill = client.post("/payment/api", json=_signed(partner, "GET_BILL", message["MaThamChieu"])).json()
    assert default_registry().validator("payment.schema.json#/$defs/GetBillResponse").violations(bill) == []
    assert bill["message"]["SoBienLai"]


def test_failed_payment(client: httpx.Client, national: RunningNational, province: RecordingProvince) -> None:
    partner = _partner(national)
    message = _init(partner)
    url = client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"]
    assert httpx.get(url, params={"result": "failure"}, timeout=10).json()["TrangThaiGD"] == "4"
    assert province.callbacks[-1]["MaLoi"] != "00" and verify(province.callbacks[-1], partner.secret, "CALLBACK")
    assert _status(client, partner, message["MaThamChieu"]) == "4"
    assert httpx.get(url, params={"result": "maybe"}, timeout=10).status_code == 400
    assert httpx.get(f"{national.url}/payment/pay/unknown", timeout=10).status_code == 404


def test_replay_and_tamper(client: httpx.Client, national: RunningNational, province: RecordingProvince) -> None:
    partner = _partner(national)
    headers = national.control_headers()
    message = _init(partner, amount=30000)
    ref = message["MaThamChieu"]
    url = client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"]
    assert client.post(f"/_control/payment/{ref}/replay", headers=headers).status_code == 409  # nothing sent yet
    httpx.get(url, params={"result": "success"}, timeout=10)
    original = province.callbacks[-1]
    replay = client.post(f"/_control/payment/{ref}/replay", headers=headers)
    assert replay.status_code == 200 and replay.json()["kind"] == "replay"
    assert province.callbacks[-1] == original
    bad = client.post(f"/_control/payment/{ref}/tamper", json={"defect": "bad-checksum"}, headers=headers).json()
    assert not verify(province.callbacks[-1], partner.secret, "CALLBACK")
    assert bad["status_code"] == 400 and bad["answer"]["MaLoi"] != "00"
    client.post(f"/_control/payment/{ref}/tamper", json={"defect": "wrong-amount"}, headers=headers)
    forged = province.callbacks[-1]
    assert verify(forged, partner.secret, "CALLBACK") and forged["SoTien"] != original["SoTien"]
    invalid = client.post(f"/_control/payment/{ref}/tamper", json={"defect": "nice"}, headers=headers)
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"] == "defect"
    assert client.post(f"/_control/payment/{ref}/replay").status_code == 401
    record = client.get(f"/_ledger/payments/{ref}", headers=headers).json()
    assert [c["kind"] for c in record["callbacks"]] == ["original", "replay", "bad-checksum", "wrong-amount"]
    assert record["TrangThaiGD"] == "1" and record["SoTien"] == 30000
    assert [c["status_code"] for c in record["callbacks"]][:2] == [200, 200]


def test_unreachable_partner_is_recorded(tmp_path: Path) -> None:
    with serve_national(tmp_path, "http://127.0.0.1:9") as running:  # nothing listens on port 9
        partner = running.configs.national.payment_partners[0]
        with httpx.Client(base_url=running.url, timeout=15) as http:
            url = http.post("/payment/api", json=_init(partner)).json()["message"]["UrlThanhToan"]
            paid = httpx.get(url, params={"result": "success"}, timeout=15)
            assert paid.status_code == 200 and paid.json()["callback_status"] is None
            items = http.get("/_ledger/payments", headers=running.control_headers()).json()["items"]
            ref = items[0]["MaThamChieu"]
            record = http.get(f"/_ledger/payments/{ref}", headers=running.control_headers()).json()
            assert record["callbacks"][0]["error"].startswith("ConnectError")


def test_every_tamper_defect_of_the_contract_alters_the_callback_as_it_says(
        client: httpx.Client, national: RunningNational, province: RecordingProvince) -> None:
    from haicap.sandbox.national.payment_platform import TAMPERS

    enum = default_registry().schema("payment.schema.json#/$defs/ControlTamperRequest")["properties"]["defect"]["enum"]
    assert list(TAMPERS) == enum
    partner = _partner(national)
    headers = national.control_headers()
    message = _init(partner, amount=20000)
    ref = message["MaThamChieu"]
    url = client.post("/payment/api", json=message).json()["message"]["UrlThanhToan"]
    httpx.get(url, params={"result": "success"}, timeout=10)
    original = province.callbacks[-1]
    good = original["MaXacThuc"]
    sent: dict[str, dict[str, Any]] = {}
    for defect in enum:
        delivery = client.post(f"/_control/payment/{ref}/tamper", json={"defect": defect}, headers=headers)
        assert delivery.status_code == 200 and delivery.json()["kind"] == defect, delivery.text
        sent[defect] = province.callbacks[-1]
    differs = {d: sorted(k for k in set(original) | set(c) if original.get(k) != c.get(k)) for d, c in sent.items()}
    for defect in ("bad-checksum", "checksum-last-digits", "checksum-uppercase", "checksum-truncated",
                   "checksum-whitespace", "checksum-empty"):
        assert differs[defect] == ["MaXacThuc"], defect
    assert "MaXacThuc" not in sent["checksum-missing"] and differs["checksum-missing"] == ["MaXacThuc"]
    assert sent["checksum-last-digits"]["MaXacThuc"][:-2] == good[:-2]
    assert sent["checksum-uppercase"]["MaXacThuc"] == good.upper() != good
    assert sent["checksum-truncated"]["MaXacThuc"] == good[:-1]
    assert sent["checksum-whitespace"]["MaXacThuc"] == good + " " and sent["checksum-empty"]["MaXacThuc"] == ""
    assert differs["wrong-amount"] == ["MaXacThuc", "SoTien"]
    assert set(differs["new-transaction-id"]) <= {"MaXacThuc", "MaGiaoDich", "ThoiGianGD"}
    assert "MaGiaoDich" in differs["new-transaction-id"]
    assert differs["unknown-reference"] == ["MaThamChieu", "MaXacThuc"]
    for defect in ("wrong-amount", "new-transaction-id", "unknown-reference"):
        assert verify(sent[defect], partner.secret, "CALLBACK"), defect
