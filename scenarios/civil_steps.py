"""Scenario steps of the civil-status interconnection (Decree 63/2024/NĐ-CP), usable in conformance and load.

``civil_status_delivery`` has haicap's interconnection portal deliver an interconnected dossier of a group to the
province (it must acknowledge it); ``civil_status_result`` has one component's agency issue its result. In
conformance mode the result step waits (bounded) for the province's completed push of that component; in load mode
it only checks the delivery was accepted, and ``expect_synced`` of the closed composite (9) records the expectation
the integrity check verifies after the run. Groups and components are the contract's (haicap/civil_status.py).
"""

from __future__ import annotations

from typing import Any

from haicap.civil_status import civil_status
from haicap.interconnection_client import InterconnectionClient
from haicap.scenarios.engine import ScenarioContext, StepFailed, step

__all__ = ["civil_status_delivery", "civil_status_result"]

_SPEC = civil_status()
_GROUPS = sorted(_SPEC.groups)
_COMPONENTS = sorted({c.id for g in _SPEC.groups.values() for c in g.components})
#: how long a conformance run waits for the province's completed push (seconds)
PUSH_WAIT = 5.0


def _client(ctx: ScenarioContext) -> InterconnectionClient:
    if ctx.national is None:
        raise StepFailed("the national counterpart is not reachable", expected="a counterpart", actual=None)
    return InterconnectionClient(ctx.national)


@step("civil_status_delivery", params={"properties": {"group": {"enum": _GROUPS, "default": _GROUPS[0]}}},
      requires=("civil_status",))
def civil_status_delivery(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The interconnection portal delivers one interconnected dossier of ``group``; the province acknowledges it."""
    group = str(params.get("group", _GROUPS[0]))
    sent = _client(ctx).send_dossier(group, province_code=ctx.province_code)
    ack = sent.get("answer")
    if sent.get("status_code") not in (200, 201) or not isinstance(ack, dict) or ack.get("accepted") is not True:
        raise StepFailed(f"the province did not take in interconnected dossier {sent.get('soHoSoLT')}",
                         expected={"status_code": 201, "accepted": True},
                         actual={"status_code": sent.get("status_code"), "answer": ack, "error": sent.get("error")})
    ctx.state.update(ma_ho_so=ack.get("maHoSo"), so_ho_so_lt=sent["soHoSoLT"], civil_group=group)
    ctx.state.pop("session", None)  # the dossier belongs to a citizen of the interconnection portal


@step("civil_status_result", params={"required": ["component"],
                                     "properties": {"component": {"enum": _COMPONENTS}}},
      requires=("civil_status",))
def civil_status_result(ctx: ScenarioContext, params: dict[str, Any]) -> None:
    """The agency of ``component`` issues its result; the province accepts it (and, outside load, pushes it)."""
    so_ho_so_lt = ctx.get("so_ho_so_lt", "civil_status_result")
    group = _SPEC.group(str(ctx.state.get("civil_group", _GROUPS[0])))
    component = group.component(params["component"])
    if component is None:
        raise StepFailed(f"group {group.id} has no component {params['component']}",
                         expected=[c.id for c in group.components], actual=params["component"])
    client = _client(ctx)
    delivered = client.complete(so_ho_so_lt, component.id)
    if not isinstance(delivered.get("status_code"), int) or not 200 <= delivered["status_code"] < 300:
        raise StepFailed(f"the province refused the {component.id} result of {so_ho_so_lt}",
                         expected="2xx", actual={"status_code": delivered.get("status_code"),
                                                 "answer": delivered.get("answer")})
    if ctx.mode == "load":
        return
    completed = _SPEC.order.completed
    record = client.wait(so_ho_so_lt, lambda r: any(
        isinstance(p.get("body"), dict) and p["body"].get("maTTHC") == component.maTTHC
        and p["body"].get("trangThai") == completed for p in r.get("pushes") or []), PUSH_WAIT)
    if record is None or not any(isinstance(p.get("body"), dict) and p["body"].get("trangThai") == completed
                                 and p["body"].get("maTTHC") == component.maTTHC for p in record.get("pushes") or []):
        raise StepFailed(f"no completed push of {component.id} for {so_ho_so_lt} within {PUSH_WAIT:g} s",
                         expected={"maTTHC": component.maTTHC, "trangThai": completed}, actual=None)
