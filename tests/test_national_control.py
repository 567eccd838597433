"""Forwarding, the control/ledger token, and that no secret ever appears in a ledger answer."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from haicap.contract_registry import default_registry
from haicap.data_generators.identity import is_valid_cccd
from haicap.data_generators.units import admin_units
from haicap.payment_checksum import checksum
from haicap.sandbox.national.testing import RecordingProvince, RunningNational, serve_national


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_forward_delivers_a_valid_dossier(client: httpx.Client, national: RunningNational,
                                          province: RecordingProvince) -> None:
    answer = client.post("/_control/forward", headers=national.control_headers())
    assert answer.status_code == 200
    record = answer.json()
    headers, dossier = province.forwarded[-1]
    endpoint = national.configs.national.provinces[0]
    assert headers["authorization"] == f"Bearer {endpoint.forward_token}"
    assert dossier == record["dossier"]
    assert record["status_code"] == 201
    assert record["answer"] == {"MaHoSo": dossier["MaHoSo"], "TrangThaiHoSo": "1", "acknowledged": True}
    assert default_registry().validator("dossier.schema.json#/$defs/ForwardedDossier").violations(dossier) == []
    assert dossier["MaHoSo"].startswith("000.00.00.G22-") and dossier["KenhThucHien"] == "2"
    assert admin_units().is_current_commune(dossier["MaXa"], endpoint.province_code)
    assert is_valid_cccd(dossier["DinhDanhCHS"][0]["SoDinhDanh"])
    second = client.post("/_control/forward", json={"MaXa": "99999", "TrichYeuHoSo": "x"},
                         headers=national.control_headers()).json()
    assert second["dossier"]["MaXa"] == "99999" and second["MaHoSo"] != record["MaHoSo"]
    ledger = client.get("/_ledger/forwarded", headers=national.control_headers()).json()
    assert [f["MaHoSo"] for f in ledger["items"]][-2:] == [record["MaHoSo"], second["MaHoSo"]]
    unknown = client.post("/_control/forward", json={"province_code": "79"}, headers=national.control_headers())
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "province_code"


def test_forward_to_an_unreachable_province_is_recorded(tmp_path: Path) -> None:
    with serve_national(tmp_path, "http://127.0.0.1:9") as running:
        answer = httpx.post(running.url + "/_control/forward", headers=running.control_headers(), timeout=15)
        assert answer.status_code == 200
        assert answer.json()["status_code"] is None and answer.json()["error"].startswith("ConnectError")


def test_every_control_and_ledger_route_needs_the_token(client: httpx.Client, national: RunningNational) -> None:
    paths = [route.path for route in national.national.control.routes + national.national.ledger.routes]
    assert len(paths) >= 14
    for path in paths:
        concrete = path.replace("{MaThamChieu}", "REF1").replace("{MaHoSo}", "000.00.00.H26-250701-0001")
        bare = {"Authorization": national.configs.national.control_token}  # the token without "Bearer"
        for headers in ({}, {"Authorization": "Bearer wrong"}, bare):
            method = "GET" if path.startswith("/_ledger") else "POST"
            response = client.request(method, concrete, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_paths_and_methods_are_problems(client: httpx.Client) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert client.get("/token").status_code == 405


def test_no_secret_in_any_ledger_answer(client: httpx.Client, national: RunningNational,
                                        province: RecordingProvince) -> None:
    cfg = national.configs.national
    rp, partner, account = cfg.clients[0], cfg.payment_partners[0], cfg.sync_accounts[0]
    # exercise every part: sign-in, sync (with a bad login), payment with callback, forwarding
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    location = client.get("/authorize", params={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "nonce": "n", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
        "login_hint": "001090123456"}).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = client.post("/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                         "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
                                         "client_secret": rp.client_secret}).json()
    client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    client.post("/sync/login", json={"username": account.username, "password": "guess", "madonvi": account.madonvi})
    session = client.post("/sync/login", json={"username": account.username, "password": account.password,
                                               "madonvi": account.madonvi}).json()["session"]
    client.post("/sync/service", json={"service": "DongBoHoSoMC", "session": session, "madonvi": account.madonvi,
                                       "isUpdating": "False", "data": [{"MaHoSo": "bad"}]})
    init = {"LoaiBanTin": "INIT", "PhienBan": "1.0.6", "MaDoiTac": partner.ma_doi_tac, "MaThamChieu": "SECRETTEST",
            "SoTien": 5000, "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "", "NgonNgu": "vi-VN",
            "MaTienTe": "VND", "MaNganHang": "", "ThongTinGiaoDich": "x", "ThoiGianGD": "20250701090000", "Ip": "::1",
            "ThongTinBienLai": {"MaDVC": "1", "MaTTHC": "1.004222", "MaDonVi": account.madonvi,
                                "MaHoSo": "000.00.00.H26-250701-0001", "HoTenNguoiNop": "A", "NoiDungThanhToan": "x",
                                "PhiLePhi": [{"LoaiPhiLePhi": "2", "TenPhiLePhi": "x", "SoTien": 5000}]}}
    init["MaXacThuc"] = checksum(init, partner.secret, "INIT")
    url = client.post("/payment/api", json=init).json()["message"]["UrlThanhToan"]
    httpx.get(url, params={"result": "success"}, timeout=10)
    client.post("/_control/forward", headers=national.control_headers())

    secrets_and_tokens = {
        "client secret": rp.client_secret, "payment secret": partner.secret, "sync password": account.password,
        "forward token": cfg.provinces[0].forward_token, "control token": cfg.control_token,
        "access token": tokens["access_token"], "id token": tokens["id_token"], "code": code,
        "code verifier": verifier, "sync session": session, "pay token": url.rsplit("/", 1)[1],
    }
    texts = []
    for route in national.national.ledger.routes:
        path = route.path.replace("{MaThamChieu}", "SECRETTEST").replace("{MaHoSo}", "000.00.00.H26-250701-0001")
        response = client.get(path, headers=national.control_headers())
        assert response.status_code in (200, 404), path
        texts.append(response.text)
    everything = "\n".join(texts)
    assert "SECRETTEST" in everything and "bad" in everything  # the ledger did record these
    for name, value in secrets_and_tokens.items():
        assert value not in everything, f"the {name} leaks into the ledger"


def test_test_ca_enrols_publishes_and_revokes_over_http(client: httpx.Client, national: RunningNational) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    root = x509.load_pem_x509_certificate(client.get("/ca/root.pem").content)
    assert root.subject.rfc4514_string() == "CN=Co quan chung thuc so Chinh phu,O=Ban Co yeu Chinh phu,C=VN"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nguyen Van An"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UBND xa Lam Thao"),
                         x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    enrolled = client.post("/ca/enrol", json={"csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
    assert enrolled.status_code == 201, enrolled.text
    serial = enrolled.json()["serial"]
    refused = client.post("/ca/enrol", json={"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA"})
    assert refused.status_code == 400 and "csr" in refused.text
    assert client.post("/_control/ca/revoke", json={"serial": serial}).status_code == 401  # control token needed
    revoked = client.post("/_control/ca/revoke", json={"serial": serial, "reason": "superseded"},
                          headers=national.control_headers())
    assert revoked.status_code == 200, revoked.text
    unknown = client.post("/_control/ca/revoke", json={"serial": "abc"}, headers=national.control_headers())
    assert unknown.status_code == 400 and "serial" in unknown.text
    crl = x509.load_der_x509_crl(client.get("/ca/crl/sub.der").content)
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
