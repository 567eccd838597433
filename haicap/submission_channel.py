"""The submission channel: how a test dossier gets into the province.

After 1 July 2025 a provincial system need not accept citizens' submissions itself: citizens file on the National
Public Service Portal, which forwards each dossier to the province (``POST {province}/national/forwarded-dossiers``).
A check or a journey that needs "a dossier of this citizen in this commune" asks the channel, chosen from the
profile's capabilities:

- ``citizen_api`` (capability ``submission``): the province's own ``POST /api/v1/dossiers`` with the citizen's
  session;
- ``national_forward`` (``forwarding`` without ``submission``): haicap, as the national portal, forwards the
  citizen's dossier (counterpart control ``POST /_control/forward``): the same citizen (DinhDanhCHS, ChuHoSo),
  procedure, commune and documents, under a MaHoSo the national portal assigns. The citizen then follows, pays,
  supplements or withdraws it on the province through single sign-on, as after a real hand-off.

Either way the answer is a response: 201 with a body carrying the dossier's MaHoSo, or the province's refusal.

Example::

    channel = choose_channel(target.capabilities, province, national, "01")
    response = channel.submit(session, payload)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Protocol

import httpx
import yaml

from haicap.errors import HaicapError
from haicap.http_port import ResponseLike

__all__ = ["CitizenApiChannel", "NationalForwardChannel", "SubmissionChannel", "choose_channel", "forward_fields"]

FORWARDED_REF = "dossier.schema.json#/$defs/ForwardedDossier"


class SubmissionChannel(Protocol):
    kind: str

    def submit(self, session: Any, payload: dict[str, Any], *, name: str = "submit dossier") -> ResponseLike: ...


class CitizenApiChannel:
    """The province's citizen submission API (``POST /api/v1/dossiers``)."""

    kind = "citizen_api"
    label = "submission"

    def __init__(self, province: Any) -> None:
        self.province = province  # haicap.province_client.ProvinceClient

    def submit(self, session: Any, payload: dict[str, Any], *, name: str = "submit dossier") -> ResponseLike:
        return self.province.submit(session, payload, name=name)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, Any]]:
    from haicap.contract_registry import default_registry

    data = yaml.safe_load((default_registry().root / "procedures.yaml").read_text(encoding="utf-8")) or {}
    return {p["MaTTHC"]: p for p in data.get("procedures", []) if isinstance(p, dict) and p.get("MaTTHC")}


def forward_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The forwarded dossier's fields a submission determines: every field the submission has that the
    contract's ForwardedDossier has too (read from the contract), plus the procedure's name and fees from the
    contract's catalogue (``procedures.yaml``). The national portal assigns MaHoSo and NgayNopHoSo."""
    from haicap.contract_registry import default_registry

    allowed = set(default_registry().schema(FORWARDED_REF).get("properties", {})) - {"MaHoSo", "NgayNopHoSo"}
    fields = {k: v for k, v in payload.items() if k in allowed}
    procedure = _catalogue().get(str(payload.get("MaTTHC")))
    if procedure is None:
        raise HaicapError(f"procedure {payload.get('MaTTHC')} is not in the contracts' procedures.yaml: its name "
                          "and fees for a forwarded dossier are unknown")
    fields.setdefault("TenTTHC", procedure.get("TenTTHC", ""))
    fields.setdefault("DanhSachLePhi", [dict(f) for f in procedure.get("DanhSachLePhi", [])])
    return fields


class NationalForwardChannel:
    """haicap, as the national portal, forwards the citizen's dossier to the province."""

    kind = "national_forward"
    label = "dossier forwarded by the national portal"

    def __init__(self, province: Any, national: Any, province_code: str) -> None:
        self.province = province  # haicap.province_client.ProvinceClient (its on_submitted hook is told)
        self.national = national  # haicap.counterpart_client.CounterpartClient
        self.province_code = province_code

    def submit(self, session: Any, payload: dict[str, Any], *, name: str = "submit dossier") -> ResponseLike:
        record = self.national.forward_dossier(province_code=self.province_code, **forward_fields(payload))
        status = record.get("status_code") if isinstance(record, dict) else None
        if not isinstance(status, int):
            error = record.get("error") if isinstance(record, dict) else record
            raise HaicapError(f"the national portal could not forward a dossier to the province: {error}")
        answer = record.get("answer")
        if status in (200, 201) and isinstance(answer, dict) and isinstance(answer.get("MaHoSo"), str):
            if self.province.on_submitted is not None:
                self.province.on_submitted(answer["MaHoSo"], session)
            return httpx.Response(201 if status == 201 else status, json=answer)
        return httpx.Response(status, json=answer if answer is not None else {"detail": record.get("error")})


def choose_channel(capabilities: Iterable[str], province: Any, national: Any, province_code: str
                   ) -> SubmissionChannel:
    """The citizen API when ``submission`` is declared, else the national forward when ``forwarding`` is."""
    declared = set(capabilities)
    if "submission" in declared:
        return CitizenApiChannel(province)
    if "forwarding" in declared:
        return NationalForwardChannel(province, national, province_code)
    raise HaicapError("no submission channel: the profile declares neither submission nor forwarding")
