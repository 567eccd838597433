"""Receiving dossiers forwarded by the national portal (``POST /national/forwarded-dossiers``).

The national side presents the forward credential; the dossier is validated, stored under the national
MaHoSo (idempotent: a second delivery answers 200 with the current state), acknowledged, and from then on
synchronised like any other dossier. Fault ``ignores-forwarded-dossiers`` acknowledges without storing;
``unauthenticated-forwarding`` skips the credential check; ``duplicate-on-concurrent-forward`` races;
``accepts-any-forward-token`` accepts the token of any province the vendor system serves (its co-tenants), not
only this province's.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from haicap.sandbox.province import consistency_faults as cf
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext, require_bearer
from haicap.sandbox.province.dossier_api import receiving_unit
from haicap.sandbox.province.problems import Problem, json_response, read_json

__all__ = ["ForwardedDossiers"]

FORWARDED_REF = "dossier.schema.json#/$defs/ForwardedDossier"
NOI_NOP_NATIONAL = "Cổng Dịch vụ công quốc gia"


class ForwardedDossiers:
    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.validator = ctx.registry.validator(FORWARDED_REF)

    async def receive(self, request: Request) -> Response:
        ctx = self.ctx
        if not ctx.has("unauthenticated-forwarding"):  # the defect: anyone may inject a dossier
            self._authenticate(request)
        body = await read_json(request, self.validator, trusting=ctx.has("500-on-malformed-input"))
        doc = self.dossier(body)
        if ctx.has("ignores-forwarded-dossiers"):  # the defect: acknowledged, never stored
            return json_response({"MaHoSo": doc["MaHoSo"], "TrangThaiHoSo": "1", "acknowledged": True}, status=201)
        policy = ctx.policy
        if ctx.has("duplicate-on-concurrent-forward"):  # the defect: "already received?" outside the transaction
            stored, created = await cf.racy_insert(ctx, doc)
        else:
            stored, created = await ctx.store.write(lambda c: d.insert_existing(c, policy, doc))
        answer = {"MaHoSo": stored["MaHoSo"], "TrangThaiHoSo": stored["TrangThaiHoSo"], "acknowledged": True}
        return json_response(answer, status=201 if created else 200)

    def _authenticate(self, request: Request) -> None:
        """401 unless the request carries this province's forward token."""
        config = self.ctx.config
        if self.ctx.has("accepts-any-forward-token"):  # the defect: any tenant's token will do
            for token in config.co_tenant_forward_tokens:
                with contextlib.suppress(Problem):
                    require_bearer(request, token, "forward")
                    return
        require_bearer(request, config.forward_token, "forward")

    def dossier(self, body: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        unit = receiving_unit(ctx, body["MaXa"])
        procedure = ctx.catalogue.get(body["MaTTHC"]) or {}
        name = body.get("TenTTHC") or procedure.get("TenTTHC")
        if not name:
            raise Problem.field(422, "MaTTHC", "unknown procedure and no TenTTHC given")
        fees = body.get("DanhSachLePhi") if "DanhSachLePhi" in body else procedure.get("DanhSachLePhi", [])
        fee = sum(int(f.get("Gia", 0)) for f in fees or [] if str(f.get("HinhThucThu", "2")) == "2")
        now = d.now_vn()
        entry = d.history_entry("1", NguoiXuLy="Cổng DVCQG", NoiDungXuLy="Tiếp nhận hồ sơ chuyển từ Cổng DVCQG")
        return d.new_dossier(
            body, procedure, unit, fees=fees, fee=fee,
            MaHoSo=body["MaHoSo"], SoBienNhan=body["MaHoSo"], TenTTHC=name, ChuHoSo=body["ChuHoSo"],
            DinhDanhCHS=body["DinhDanhCHS"], NgayNopHoSo=body["NgayNopHoSo"], NgayTiepNhan=d.thoi_gian(now),
            NgayHenTra=d.thoi_gian(now + timedelta(days=5)), NoiNopHoSo=NOI_NOP_NATIONAL, NguonHoSo="national",
            LichSu=[entry],
        )
