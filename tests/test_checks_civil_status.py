"""The civil-status judges, on hand-made evidence: every forbidden status order, every push field, each component
on its own, the fee rule, and the must-accept cases (any completion order, extra fields, interleaved pushes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from haicap.civil_status import VN_TZ, civil_status, format_lt, order_violations, parse_lt, parse_spec
from haicap.conformance.checks.civil_status import (
    CREDENTIAL_CASES,
    completion_defects,
    component_sequences,
    composite_sync_problems,
    credential_verdict,
    fee_defects,
    interleaved,
    order_defects,
    push_defects,
    receipt_defects,
    stray_push_defects,
    time_defect,
)
from haicap.conformance.checks.civil_status_journey import Completion, Journey
from haicap.contract_registry import default_registry
from haicap.errors import HaicapError

SPEC = civil_status()
T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=VN_TZ)
SO, MA = "LTKS-261202-00000001-1", "000.00.00.G16-261202-0001"


def _push(code: str, status: str, seconds: int = 0, result: str = "", **extra: Any) -> dict[str, Any]:
    return {"maTTHC": code, "soHoSoLT": SO, "maHoSo": MA, "trangThai": status,
            "thoiGianThucHien": format_lt(T0 + timedelta(seconds=seconds)), "nguoiXuLy": "Cán bộ",
            "noiDungXuLy": "Xử lý", "ketQuaXuLy": result, **extra}


def _journey(group: str = "1", pushes: list[dict[str, Any]] | None = None, **kw: Any) -> Journey:
    sent = {"soHoSoLT": SO, "status_code": 201, "answer": {"maHoSo": MA, "soHoSoLT": SO, "accepted": True},
            "dossier": {"maHoSo": MA}}
    j = Journey(SPEC.group(group), sent, **kw)
    j.record = {"pushes": [{"received_ms": 1000 + i, "body": p} for i, p in enumerate(pushes or [])],
                "received": []}
    return j


def _complete_run(order: tuple[int, ...], group: str = "1") -> Journey:
    comps = SPEC.group(group).components
    pushes = [_push(c.maTTHC, s) for s in ("1", "2") for c in comps]
    completions = []
    for step, index in enumerate(order):
        c = comps[index]
        completions.append(Completion(c.id, c.maTTHC, 2000 + 10 * step, f"{c.result} số {step}", 200, {},
                                      final=step == len(order) - 1, composite_after="4"))
        pushes.append(_push(c.maTTHC, "3", 1 + step, f"{c.result} số {step}"))
    j = _journey(group, pushes, completions=completions)
    for i, entry in enumerate(j.record["pushes"][6:]):  # type: ignore[index]
        entry["received_ms"] = 2005 + 10 * i
    return j


# -- the status order --------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", SPEC.order.forbidden_pairs())
def test_every_forbidden_status_order_is_reported(pair: tuple[str, str]) -> None:
    before, after = pair
    path = list(SPEC.order.path_to(before)) if before in ("1", "2", "3") else ["1", "4"]
    sequence = [(s, T0) for s in [*path, after]]
    assert any(f"{before} → {after}" in p for p in order_violations(SPEC.order, sequence))


def test_a_first_push_other_than_received_and_a_time_going_back_are_reported() -> None:
    assert order_violations(SPEC.order, [("2", T0)]) == ["first status 2 (expected 1)"]
    back = order_violations(SPEC.order, [("1", T0), ("2", T0 - timedelta(seconds=1))])
    assert len(back) == 1 and "goes back" in back[0]


def test_legal_orders_and_retries_are_accepted() -> None:
    for seq in (["1", "2", "3"], ["1", "4"], ["1", "2", "4"], ["1", "1", "2", "2", "3", "3"]):
        assert order_violations(SPEC.order, [(s, T0) for s in seq]) == [], seq


def test_pushes_of_components_interleaved_are_judged_per_component() -> None:
    comps = SPEC.group("1").components
    pushes = [_push(c.maTTHC, s) for s in ("1", "2") for c in comps]
    j = _journey("1", pushes)
    assert interleaved(j)
    sequences = component_sequences(j)
    assert all(order_violations(SPEC.order, seq) == [] for seq in sequences.values())
    assert set(sequences) == {c.maTTHC for c in comps}


# -- push fields ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", SPEC.push_fields)
def test_every_missing_push_field_is_named(field: str) -> None:
    push = _push("1.001193", "3", result="Trích lục khai sinh số 1")
    del push[field]
    assert f"{field} missing" in push_defects(push, _journey(), SPEC)


@pytest.mark.parametrize("field", [f for f in SPEC.push_fields if f != "ketQuaXuLy"])
def test_every_empty_push_field_is_named(field: str) -> None:
    push = _push("1.001193", "1", **{field: ""})
    assert any(d.startswith(f"{field} empty") for d in push_defects(push, _journey(), SPEC))


def test_a_completed_push_without_its_result_is_reported_an_open_one_is_not() -> None:
    assert push_defects(_push("1.001193", "1"), _journey(), SPEC) == []
    assert any("ketQuaXuLy empty" in d for d in push_defects(_push("1.001193", "3"), _journey(), SPEC))


@pytest.mark.parametrize("when,kind", [("2026-12-02T10:00:00+07:00", "ISO 8601"), ("20261202100000", "ISO 8601"),
                                       ("2/12/2026 10:00", "not a date"), ("02/12/2026", "ISO 8601")])
def test_dates_not_in_dd_mm_yyyy_are_named(when: str, kind: str) -> None:
    defects = push_defects(_push("1.001193", "1", thoiGianThucHien=when), _journey(), SPEC)
    assert any("thoiGianThucHien" in d and "dd/MM/yyyy HH:mm:ss" in d for d in defects)


def test_wrong_codes_and_statuses_are_named_extra_fields_accepted() -> None:
    assert push_defects(_push("1.001193", "1", ghiChu="extra", x=1), _journey(), SPEC) == []
    assert any("trangThai '7'" in d for d in push_defects(_push("1.001193", "7"), _journey(), SPEC))
    assert any("not a component" in d for d in push_defects(_push("1.000656", "1"), _journey(), SPEC))
    assert any("soHoSoLT" in d for d in push_defects(_push("1.001193", "1", soHoSoLT="X"), _journey(), SPEC))
    assert push_defects([], _journey(), SPEC) == ["the push is not a JSON object"]
    assert parse_lt("31/02/2026 10:00:00") is None


# -- each component on its own -------------------------------------------------------------------------
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (2, 0, 1)])
@pytest.mark.parametrize("group", ["1", "2"])
def test_components_completing_in_any_order_are_accepted(order: tuple[int, ...], group: str) -> None:
    assert completion_defects(_complete_run(order, group), SPEC) == []


def test_a_component_that_never_completes_is_named() -> None:
    j = _complete_run((2, 0, 1))
    j.record["pushes"] = [p for p in j.record["pushes"]  # type: ignore[index]
                          if not (p["body"]["maTTHC"] == "1.002978" and p["body"]["trangThai"] == "3")]
    assert any("bhyt result" in d and "never completed" in d for d in completion_defects(j, SPEC))


def test_a_composite_closed_before_the_last_result_is_reported() -> None:
    j = _complete_run((0, 1, 2))
    j.completions[0].composite_after = "9"
    assert any("closed" in d for d in completion_defects(j, SPEC))
    j = _complete_run((0, 1, 2))
    j.npsp = {"history": [{"TrangThaiHoSo": "9", "received_ms": 2001}]}
    assert any("before the last result" in d for d in completion_defects(j, SPEC))


def test_a_completed_push_wording_its_result_around_the_issued_text_is_accepted() -> None:
    j = _complete_run((2, 0, 1))
    for entry in j.record["pushes"][6:]:  # type: ignore[index]
        entry["body"]["ketQuaXuLy"] = f"Đã cấp: {entry['body']['ketQuaXuLy']} (bản điện tử)"
    assert completion_defects(j, SPEC) == []


def test_a_wrong_result_or_an_unrequested_completion_is_reported() -> None:
    j = _complete_run((0, 1, 2))
    j.record["pushes"][-1]["body"]["ketQuaXuLy"] = "something else"  # type: ignore[index]
    assert any("not the result issued" in d for d in completion_defects(j, SPEC))
    j = _complete_run((0, 1))
    j.completions[-1].final = False
    j.record["pushes"].append({"received_ms": 9, "body": _push("1.002978", "3", 5, "x")})  # type: ignore[index]
    assert any("no result was issued" in d for d in completion_defects(j, SPEC))


# -- fee and receipt -------------------------------------------------------------------------------------
def test_fee_rule() -> None:
    free = _journey(npsp={"item": {"DanhSachLePhi": []}, "history": [{"TrangThaiHoSo": "1"}]})
    zero = _journey(npsp={"item": {"DanhSachLePhi": [{"TenPhiLePhi": "LP", "Gia": 0}]}, "history": []})
    charged = _journey(npsp={"item": {"DanhSachLePhi": [{"TenPhiLePhi": "LP", "Gia": 8000}]}, "history": []})
    waits = _journey(npsp={"item": {}, "history": [{"TrangThaiHoSo": "6"}]})
    assert fee_defects(free, SPEC) == [] and fee_defects(zero, SPEC) == []
    assert "LP 8000" in fee_defects(charged, SPEC)[0]
    assert "waited for a payment" in fee_defects(waits, SPEC)[0]


def test_a_fee_listed_as_zero_in_any_spelling_is_free() -> None:
    for gia in (0, 0.0, "0", "0.00"):
        listed = _journey(npsp={"item": {"DanhSachLePhi": [{"TenPhiLePhi": "LP", "Gia": gia}]}, "history": []})
        assert fee_defects(listed, SPEC) == [], gia
    assert fee_defects(_journey(npsp={"item": {"DanhSachLePhi": [{"TenPhiLePhi": "LP", "Gia": "8000.00"}]},
                                      "history": []}), SPEC)


@pytest.mark.parametrize("states", [["1", "2", "9"], ["2", "9"], ["1", "9"], ["1", "1", "4", "9"],
                                    ["2", "4", "9", "9", "10"]])
def test_a_composite_synced_open_in_any_open_state_then_closed_passes(states: list[str]) -> None:
    assert composite_sync_problems(states, SPEC, "d", 5) == []


@pytest.mark.parametrize(("states", "said"), [([], "nothing synced"), (["1"], "did not reach NPSP"),
                                              (["9"], "never saw it open"), (["1", "2"], "did not reach NPSP"),
                                              (["2", "4", "9", "4"], "reopened at NPSP (4)")])
def test_a_composite_never_closed_or_never_open_at_npsp_is_reported(states: list[str], said: str) -> None:
    assert said in " ".join(composite_sync_problems(states, SPEC, "d", 5))


def test_credentials_refused_401_or_400_for_a_malformed_header_only() -> None:
    allowed = {label: refused for label, _, refused in CREDENTIAL_CASES}
    assert credential_verdict(400, allowed["a Bearer scheme without a token"]) is None
    assert credential_verdict(401, allowed["a Bearer scheme without a token"]) is None
    assert credential_verdict(400, allowed["a wrong Bearer token"]) == "refused with HTTP 400 (expected 401)"
    assert credential_verdict(200, allowed["no Authorization header"]) == "accepted (HTTP 200; expected 401)"
    assert credential_verdict(None) == "not answered"


def test_receipt_defects() -> None:
    validator = default_registry().validator("civil_status.schema.json#/$defs/DossierListItem")
    j = _journey()
    assert "never sent back" in receipt_defects(j, validator)[0]
    j.record["received"] = [{"body": {"id": SO, "maDonVi": "001.66.00.H26", "maTTHC": "1.001193",  # type: ignore
                                      "module": "LTKS", "maHoSo": MA, "ngayTiepNhan": format_lt(T0), "x": 1}}]
    assert receipt_defects(j, validator) == []
    j.record["received"][0]["body"]["ngayTiepNhan"] = "2026-12-02"  # type: ignore[index]
    assert "ngayTiepNhan" in receipt_defects(j, validator)[0]
    refused = _journey("2")
    refused.sent["status_code"] = 422
    assert "refused with HTTP 422" in receipt_defects(refused, validator)[0]


def test_the_reader_names_a_malformed_table() -> None:
    schema = default_registry().schema_file("civil_status.schema.json")
    broken = {**schema, "x-status-order": {**schema["x-status-order"], "initial": "9"}}
    with pytest.raises(HaicapError, match="x-status-order"):
        parse_spec(broken, SPEC.order.states, SPEC.push_fields, SPEC.list_item_fields)
    with pytest.raises(HaicapError, match="three components"):
        parse_spec({**schema, "x-groups": {"1": {"module": "LTKS", "components": []}}}, SPEC.order.states,
                   SPEC.push_fields, SPEC.list_item_fields)


# -- found by an independent province (helper indep-civil) ---------------------------------------------------
LOCAL = ".000.00.00.H26"  # a province's agency code after the national procedure code (MaTTHC allows it)


def test_a_procedure_code_with_the_local_agency_code_after_it_names_the_component() -> None:
    comps = SPEC.group("1").components
    pushes = [_push(c.maTTHC + LOCAL, s) for s in ("1", "2") for c in comps]
    j = _journey("1", pushes)
    assert all(push_defects(p, j, SPEC) == [] for p in pushes)
    assert order_defects(j, SPEC) == []
    assert set(component_sequences(j)) == {c.maTTHC for c in comps}
    run = _complete_run((2, 0, 1))
    for entry in run.record["pushes"]:  # type: ignore[index]
        entry["body"]["maTTHC"] += LOCAL
    assert completion_defects(run, SPEC) == []
    # a suffix that is no agency code, or another procedure's code, is still not the component
    assert any("not a component" in d for d in push_defects(_push("1.001193.x", "1"), j, SPEC))
    assert any("not a component" in d for d in push_defects(_push("1.000656" + LOCAL, "1"), j, SPEC))


def test_a_component_pushed_only_under_another_components_code_has_no_push() -> None:
    lead = SPEC.group("1").lead.maTTHC
    j = _journey("1", [_push(lead, s) for s in ("1", "1", "1", "2", "2", "2")])
    missing = [d for d in order_defects(j, SPEC) if d.endswith("no push")]
    assert len(missing) == 2 and lead not in " ".join(missing)


def _timed(sent_ms: int) -> Journey:
    j = _journey()
    j.sent["sent_ms"] = sent_ms
    j.sent["dossier"]["ngayTiepNhan"] = format_lt(T0)  # type: ignore[index]
    return j


def test_a_push_time_between_delivery_and_arrival_is_accepted_a_utc_or_future_one_is_not() -> None:
    t0 = int(T0.timestamp() * 1000)
    j = _timed(t0)
    assert time_defect("thoiGianThucHien", format_lt(T0), j, t0) is None  # the same second as the delivery
    assert time_defect("thoiGianThucHien", format_lt(T0 + timedelta(seconds=30)), j, t0 + 30_000) is None
    utc = time_defect("thoiGianThucHien", format_lt(T0 - timedelta(hours=7)), j, t0 + 1000)
    assert utc is not None and "7 h behind" in utc
    late = time_defect("thoiGianThucHien", format_lt(T0 + timedelta(seconds=90)), j, t0 + 1000)
    assert late is not None and "after the portal received it" in late
    early = time_defect("thoiGianThucHien", format_lt(T0 - timedelta(seconds=90)), j, t0 + 1000)
    assert early is not None and "before the portal delivered" in early
    # the portal's own ngayTiepNhan (earlier than the delivery) may be echoed
    j.sent["dossier"]["ngayTiepNhan"] = format_lt(T0 - timedelta(minutes=40))  # type: ignore[index]
    assert time_defect("ngayTiepNhan", format_lt(T0 - timedelta(minutes=40)), j, t0 + 1000) is None


def test_pushes_under_another_soHoSoLT_are_named() -> None:
    j = _journey()
    j.strays = [{"kind": "pushes", "body": _push("1.001193", "1", soHoSoLT=SO + "-X")},
                {"kind": "received", "body": {"id": SO + "-X", "maHoSo": MA}}]
    found = stray_push_defects([j])
    assert len(found) == 1 and "cannot place it" in found[0]
    validator = default_registry().validator("civil_status.schema.json#/$defs/DossierListItem")
    assert "under id " + SO + "-X" in receipt_defects(j, validator)[0]


def test_a_list_item_with_the_local_procedure_code_is_accepted() -> None:
    validator = default_registry().validator("civil_status.schema.json#/$defs/DossierListItem")
    j = _journey()
    j.record["received"] = [{"body": {"id": SO, "maDonVi": "001.66.00.H26", "maTTHC": "1.001193" + LOCAL,  # type: ignore
                                      "module": "LTKS", "maHoSo": MA, "ngayTiepNhan": format_lt(T0)}}]
    assert receipt_defects(j, validator) == []


def test_every_list_item_sent_back_is_judged_an_identical_resend_is_accepted() -> None:
    validator = default_registry().validator("civil_status.schema.json#/$defs/DossierListItem")
    item = {"id": SO, "maDonVi": "001.66.00.H26", "maTTHC": "1.001193", "module": "LTKS", "maHoSo": MA,
            "ngayTiepNhan": format_lt(T0)}
    j = _journey()
    j.record["received"] = [{"body": item}, {"body": {**item, "ngayTiepNhan": format_lt(T0 + timedelta(seconds=5))}}]  # type: ignore
    assert receipt_defects(j, validator) == []
    j.record["received"].append({"body": {**item, "module": "LTKT"}})  # type: ignore[union-attr]
    found = receipt_defects(j, validator)
    assert len(found) == 1 and "list item 3 of 3" in found[0] and "module 'LTKT'" in found[0]


def test_a_fee_owed_or_paid_online_on_a_free_registration_is_reported_no_fee_flags_are_accepted() -> None:
    owed = _journey(npsp={"item": {"DanhSachLePhi": [], "PhiPhaiNop": 8000}, "history": []})
    paid = _journey(npsp={"item": {"DuocThanhToanTrucTuyen": "1"}, "history": []})
    assert "PhiPhaiNop 8000" in fee_defects(owed, SPEC)[0]
    assert "paid online" in fee_defects(paid, SPEC)[0]
    for flag in ("0", "2"):
        assert fee_defects(_journey(npsp={"item": {"DuocThanhToanTrucTuyen": flag, "PhiPhaiNop": "0"},
                                          "history": []}), SPEC) == []
