"""Scenario steps of the National Document Interconnection Axis (edXML, QCVN 102:2016/BTTTT).

``axis_receive_document``: the axis (haicap's counterpart) delivers a document; the province answers 01 and
acknowledges 03 within the contract's SLA. ``axis_officer_status``: the officer moves it on (04, 05, 06) in the
legal order. ``axis_send_document``: the officer sends a document to a commune through the axis (From/To the
current codes of the directory); with the ledger reachable, it must reach a final status. The status codes,
order and SLA come from ``contracts/schemas/axis.schema.json`` (``haicap/axis_contract.py``).
"""

from __future__ import annotations

import time
from typing import Any

from haicap.axis_client import AxisClient
from haicap.axis_contract import axis_contract
from haicap.scenarios.engine import ScenarioContext, StepFailed, step

_AXIS = axis_contract()


def _any_commune(ctx: ScenarioContext) -> str:
    if ctx.communes:
        return ctx.communes[len(ctx.state.get("axis_sends", ())) % len(ctx.communes)]
    from haicap.data_generators.units import admin_units

    return admin_units().communes(ctx.province_code)[0].code


def _pushed(record: dict[str, Any]) -> list[str]:
    return [s["StatusCode"] for s in record.get("statuses", [])]


@step("axis_receive_document", requires=("document_axis",))
def axis_receive_document(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The axis delivers a valid edXML document; the province answers 01 then sends 03 within the SLA."""
    if ctx.national is None:
        raise StepFailed("the axis needs the counterpart's control API", expected="a reachable counterpart",
                         actual=None)
    axis = AxisClient(ctx.national)
    answer = axis.deliver()
    if answer.get("StatusCode") != _AXIS.acknowledge[0]:
        raise StepFailed(f"the delivered document was answered {answer.get('StatusCode')} "
                         f"(HTTP {answer.get('http_status')})", expected=_AXIS.acknowledge[0],
                         actual={k: answer.get(k) for k in ("http_status", "StatusCode", "Description")})
    record = axis.wait_delivered(answer["DocumentId"], lambda pushed: _AXIS.acknowledge[-1] in pushed,
                                 within=_AXIS.acknowledge_within)
    if _AXIS.acknowledge[-1] not in _pushed(record):
        raise StepFailed(f"document {answer['DocumentId']} was not acknowledged {_AXIS.acknowledge[-1]} within "
                         f"{_AXIS.acknowledge_within:g} s", expected=list(_AXIS.acknowledge), actual=_pushed(record))
    ctx.state["axis_document"] = answer["DocumentId"]


@step("axis_officer_status", params={"required": ["status"],
                                     "properties": {"status": {"enum": list(_AXIS.recipient_codes())}}},
      requires=("document_axis", "officer_api"))
def axis_officer_status(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The officer moves the received document to ``status`` (the province sends it to the axis)."""
    document_id = ctx.get("axis_document", "axis_officer_status")
    response = ctx.province.port.request("POST", "/officer/axis/status", name="axis officer status",
                                         json={"DocumentId": document_id, "StatusCode": params["status"]},
                                         headers=ctx.province._officer_headers())
    if response.status_code != 200:
        raise StepFailed(f"officer status {params['status']} on {document_id}: HTTP {response.status_code}",
                         expected=200, actual=response.text[:300])


@step("axis_send_document", params={"properties": {"commune": {"type": "string", "pattern": "^([0-9]{5}|any)$",
                                                               "default": "any"}}},
      requires=("document_axis", "officer_api"))
def axis_send_document(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The officer sends a document to a commune's People's Committee through the axis; in conformance mode it
    must reach the axis and a final status there."""
    commune = params.get("commune", "any")
    if commune == "any":
        commune = _any_commune(ctx)
    response = ctx.province.port.request("POST", "/officer/axis/documents", name="axis send document",
                                         json={"Subject": "Văn bản điện tử (haicap)", "ToMaXa": commune},
                                         headers=ctx.province._officer_headers())
    if response.status_code != 202:
        raise StepFailed(f"axis send to commune {commune}: HTTP {response.status_code}", expected=202,
                         actual=response.text[:300])
    document_id = response.json()["DocumentId"]
    ctx.state["axis_sent"] = document_id
    if ctx.mode == "load" or ctx.national is None:
        return
    deadline = time.monotonic() + _AXIS.final_within
    record = AxisClient(ctx.national).wait_sent(
        document_id, lambda r: r is not None and _AXIS.is_final((_pushed(r) or [None])[-1]),
        within=max(0.0, deadline - time.monotonic()))
    if record is None or not _AXIS.is_final((_pushed(record) or [None])[-1]):
        raise StepFailed(f"document {document_id} did not reach a final status at the axis", expected=_AXIS.final,
                         actual=None if record is None else _pushed(record))
