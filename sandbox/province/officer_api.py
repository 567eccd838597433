"""The officer API (``/officer/...``, officer Bearer): list, read, and move dossiers through their states.

Transitions follow the contract's table (``dossier.schema.json`` ``x-transitions``, decided by
:func:`dossiers.transition_refusal`); anything else is a 409 problem. The transition faults switch there (e.g.
``invalid-status-transition`` lifts the table: 1→10 is allowed); ``refused-action-still-synced`` switches here:
the refusal is answered, but the refused change is still queued for the national portal;
``double-transition-on-concurrent-action`` checks the table outside the write transaction; ``list-filter-ignored``
drops the TrangThaiHoSo filter.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from haicap.sandbox.province import consistency_faults as cf
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext, require_bearer
from haicap.sandbox.province.dossier_api import dossier_list, parse_ma_ho_so, parse_page
from haicap.sandbox.province.problems import Problem, json_response, read_json

__all__ = ["OfficerApi"]

ACTION_REF = "dossier.schema.json#/$defs/OfficerAction"


class OfficerApi:
    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.action_v = ctx.registry.validator(ACTION_REF)
        self.maxa_v = ctx.registry.validator("common.schema.json#/$defs/MaXa")
        self.status_v = ctx.registry.validator("common.schema.json#/$defs/TrangThaiHoSo")

    def _auth(self, request: Request) -> None:
        require_bearer(request, self.ctx.config.officer_token, "officer")

    async def list(self, request: Request) -> Response:
        self._auth(request)
        limit, offset = parse_page(request)
        clauses, params = ["1 = 1"], []
        for name, column, validator in (("MaXa", "ma_xa", self.maxa_v), ("TrangThaiHoSo", "status", self.status_v)):
            value = request.query_params.get(name)
            if value is not None and name == "TrangThaiHoSo" and self.ctx.has("list-filter-ignored"):
                continue  # the defect: the handler never reads this filter
            if value is not None:
                if not validator.is_valid(value):
                    raise Problem.field(400, name, "invalid value")
                clauses.append(f"{column} = ?")
                params.append(value)
        return json_response(dossier_list(self.ctx, " AND ".join(clauses), tuple(params), limit, offset))

    async def get(self, request: Request) -> Response:
        self._auth(request)
        ma_ho_so = parse_ma_ho_so(self.ctx, request)
        row = self.ctx.store.read_one("SELECT doc FROM dossiers WHERE ma_ho_so = ?", (ma_ho_so,))
        if row is None:
            raise Problem.field(404, "MaHoSo", f"no dossier {ma_ho_so}", "Dossier not found")
        return Response(row[0], media_type="application/json")

    async def action(self, request: Request) -> Response:
        self._auth(request)
        ma_ho_so = parse_ma_ho_so(self.ctx, request)
        body = await read_json(request, self.action_v, trusting=self.ctx.has("500-on-malformed-input"))
        policy, faults = self.ctx.policy, self.ctx.config.faults
        enforce = True
        if self.ctx.has("double-transition-on-concurrent-action"):  # the defect: the table checked outside
            enforce = await cf.stale_transition_check(self.ctx, ma_ho_so, body)
        if body.get("action") == "complete" and self.ctx.signer is not None:  # the result, signed by the officer
            body = {**body, "DanhSachGiayToKetQua": await self.ctx.signer.results({"MaHoSo": ma_ho_so})}
        try:
            doc = await self.ctx.store.write(
                lambda c: d.op_officer_action(c, policy, ma_ho_so, body, faults=faults, enforce_transitions=enforce))
        except Problem as refused:
            if refused.status in (400, 409) and self.ctx.has("refused-action-still-synced"):
                await self.ctx.store.write(lambda c: d.op_sync_refused_action(c, policy, ma_ho_so, body))
            raise
        return json_response(doc)
