"""Both sides of the civil-status interconnection on one sandbox: the counterpart's control calls are validated by
their Control* schemas, what the province sends is recorded (valid or not) and needs the credential, and the
reference province takes a repeat delivery idempotently and refuses a result it cannot place."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from haicap.civil_status import format_lt
from haicap.sandbox.runner import Sandbox


@pytest.fixture(scope="module")
def sides() -> Iterator[tuple[Sandbox, httpx.Client]]:
    with Sandbox.start(mode="thread") as sb, httpx.Client(base_url=sb.national_url, headers=sb.control_headers(),
                                                          timeout=15.0) as national:
        yield sb, national


def test_control_calls_are_validated_naming_the_field(sides: tuple[Sandbox, httpx.Client]) -> None:
    _, national = sides
    bad = national.post("/_control/civil/send", json={"group": "3"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "group"
    extra = national.post("/_control/civil/send", json={"group": "1", "nope": 1})
    assert extra.status_code == 400
    sent = national.post("/_control/civil/send", json={"group": "1"}).json()
    unknown = national.post("/_control/civil/complete", json={"soHoSoLT": sent["soHoSoLT"], "component": "khai-tu"})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "component"
    missing = national.post("/_control/civil/complete", json={"soHoSoLT": "nope", "component": "bhyt"})
    assert missing.status_code == 404


def test_pushes_need_the_credential_and_invalid_ones_are_recorded(sides: tuple[Sandbox, httpx.Client]) -> None:
    sb, national = sides
    sent = national.post("/_control/civil/send", json={"group": "2"}).json()
    push = {"soHoSoLT": sent["soHoSoLT"], "maTTHC": "1.000656", "trangThai": "1", "thoiGianThucHien": "2026-12-02"}
    assert httpx.post(sb.national_url + "/lienthong/trang-thai", json=push).status_code == 401
    token = sb.configs.province.forward_token
    answer = httpx.post(sb.national_url + "/lienthong/trang-thai", json=push,
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and answer.json()["accepted"] is False
    record = national.get(f"/_ledger/civil/dossiers/{sent['soHoSoLT']}").json()
    fields = {v["field"] for p in record["pushes"] for v in p["violations"]}
    assert {"maHoSo", "nguoiXuLy", "thoiGianThucHien"} <= fields


def test_province_repeat_delivery_and_misplaced_result(sides: tuple[Sandbox, httpx.Client]) -> None:
    sb, national = sides
    sent = national.post("/_control/civil/send", json={"group": "1"}).json()
    assert sent["status_code"] == 201
    headers = {"Authorization": f"Bearer {sb.configs.province.forward_token}"}
    again = httpx.post(sb.province_url + "/lienthong/dossiers", json=sent["dossier"], headers=headers)
    assert again.status_code == 200 and again.json()["accepted"] is True
    result = {"soHoSoLT": sent["soHoSoLT"], "maHoSo": sent["dossier"]["maHoSo"], "maTTHC": "1.000656",
              "ketQuaXuLy": "Trích lục khai tử số 1", "thoiGianThucHien": format_lt()}
    wrong_component = httpx.post(sb.province_url + "/lienthong/ket-qua", json=result, headers=headers)
    assert wrong_component.status_code == 422 and wrong_component.json()["errors"][0]["field"] == "maTTHC"
    other = httpx.post(sb.province_url + "/lienthong/ket-qua", headers=headers,
                       json={**result, "maTTHC": "1.002978", "soHoSoLT": "LTKS-other"})
    assert other.status_code == 409
    no_date = httpx.post(sb.province_url + "/lienthong/ket-qua", headers=headers,
                         json={**result, "thoiGianThucHien": "2026-12-02T10:00:00"})
    assert no_date.status_code in (400, 422)


@pytest.mark.parametrize("mode", ["conformance", "load"])
def test_interconnected_birth_journey_runs(sides: tuple[Sandbox, httpx.Client], mode: str) -> None:
    from unittest.mock import MagicMock

    from haicap.counterpart_client import CounterpartClient
    from haicap.criteria import ALL_CAPABILITIES
    from haicap.loadtests.journeys import load_mix_scenarios
    from haicap.province_client import ProvinceClient
    from haicap.scenarios.engine import ScenarioContext, ScenarioRunner

    sb, _ = sides
    with CounterpartClient(sb.national_url, sb.configs.national.control_token) as national:
        province = ProvinceClient(sb.province_url, officer_token=sb.configs.province.officer_token)
        ctx = ScenarioContext(province=province, national=national, data=MagicMock(), capabilities=ALL_CAPABILITIES,
                              province_code=sb.configs.province.province_code, mode=mode)  # type: ignore[arg-type]
        results = ScenarioRunner(ctx).run(load_mix_scenarios()["interconnected-birth"])
        province.close()
    assert [(r.call.step, r.status) for r in results] == [
        ("civil_status_delivery", "passed"), ("expect_synced", "passed"), ("civil_status_result", "passed"),
        ("civil_status_result", "passed"), ("civil_status_result", "passed"), ("expect_synced", "passed")]
    if mode == "load":
        assert [s for _, s, _, _ in ctx.sync_expectations] == ["4", "9"]
