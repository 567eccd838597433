"""Forwarded MaHoSo stay unique across runs against one persistent province (each run starts a counterpart
with a fresh state), FWD-02's unsolicited dossier never reuses a code the province already holds, and FWD-03
says what the province did with another province's forward token."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from haicap.conformance.checks.forwarding import _forward_refusals, credential_verdict
from haicap.contract_registry import default_registry
from haicap.sandbox.national.app import create_app as national_app
from haicap.sandbox.national.forwarder import sequence_slot
from haicap.sandbox.national.timefmt import VN_TZ
from haicap.sandbox.runner import Sandbox
from haicap.sandbox.server import ThreadServer, bind_socket

MA_HO_SO = default_registry().validator("common.schema.json#/$defs/MaHoSo")


def test_sequence_slot_spreads_the_days_codes_over_its_seconds() -> None:
    day = [datetime(2025, 7, 1, h, m, s, tzinfo=VN_TZ) for h, m, s in ((0, 0, 0), (8, 0, 0), (12, 0, 0),
                                                                        (23, 59, 59))]
    slots = [sequence_slot(t) for t in day]
    assert slots[0] == 1 and slots[-1] == 9999 and slots == sorted(slots) and slots[2] == 5000
    assert sequence_slot(datetime(2025, 7, 1, 8, 0, 9, tzinfo=VN_TZ)) > slots[1]  # a new slot every 8.64 s


def _forward(url: str, headers: dict[str, str], **overrides: str) -> dict[str, object]:
    answer = httpx.post(url + "/_control/forward", json=overrides, headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_two_counterparts_forward_to_one_persistent_province_without_reusing_a_code(tmp_path: Path) -> None:
    with Sandbox.start(mode="thread", state_dir=tmp_path / "sandbox") as sandbox:
        headers = sandbox.control_headers()
        first = [_forward(sandbox.national_url, headers) for _ in range(2)]
        # the next certify run: a counterpart with a fresh state, the same registrations, the same province
        second_config = dataclasses.replace(sandbox.configs.national, state_dir=tmp_path / "second-run")
        second_config.state_dir.mkdir()
        with ThreadServer(national_app(second_config), bind_socket("127.0.0.1", 0)) as again:
            later = _forward(again.url, headers)
            held = _forward(again.url, headers, MaHoSo=str(first[0]["MaHoSo"]))  # an explicit code: sent as is
    codes = [str(r["MaHoSo"]) for r in (*first, later)]
    assert [r["status_code"] for r in (*first, later)] == [201, 201, 201], [r["answer"] for r in (*first, later)]
    assert len(set(codes)) == 3 and all(MA_HO_SO.is_valid(c) for c in codes), codes
    assert later["answer"] == {"MaHoSo": later["MaHoSo"], "TrangThaiHoSo": "1", "acknowledged": True}
    assert set(later.get("already_held", [])) <= set(codes[:2])  # only the earlier run's codes were skipped
    assert held["status_code"] == 200 and held["MaHoSo"] == first[0]["MaHoSo"] and "already_held" not in held


@pytest.mark.parametrize(("status", "said"), [
    (401, None),
    (403, "refused with HTTP 403 (expected 401)"),
    (400, "refused with HTTP 400 (expected 401)"),
    (201, "accepted (HTTP 201; expected 401)"),
    (200, "accepted (HTTP 200; expected 401)"),
    (502, "server error (HTTP 502; expected 401)"),
    (None, "no answer (the connection failed)"),
])
def test_credential_verdict_says_what_the_province_did(status: int | None, said: str | None) -> None:
    assert credential_verdict(status) == said


def test_forward_refusals_come_from_the_contract() -> None:
    assert _forward_refusals() == (401,)
    assert credential_verdict(403, (401, 403)) is None


def test_the_counterpart_knows_another_provinces_forward_token_with_or_without_a_registration(
        tmp_path: Path) -> None:
    """The sandbox registers a co-tenant province; a profile's counterpart has none and mints one itself."""
    from haicap.sandbox.config import build_sandbox_configs

    configs = build_sandbox_configs("http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path / "a")
    assert configs.province.co_tenant_forward_tokens == (configs.national.other_forward_registrations[0].forward_token,)
    for national in (configs.national, dataclasses.replace(configs.national, state_dir=tmp_path / "b",
                                                           other_forward_registrations=())):
        forwarder = national_app(national).state.national.forwarder
        own = national.provinces[0]
        code, token = forwarder._token("other", own)
        assert code != own.province_code and token not in (own.forward_token, "")
        assert forwarder._token(None, own) == (own.province_code, own.forward_token)
