"""The citizen's dossier API under ``/api/v1``: submit, get, list, supplement, withdraw; catalogue and units.

The applicant is the signed-in citizen: ChuHoSo and DinhDanhCHS come from the SSO session (a body's
DinhDanhCHS must contain the session's CCCD). The commune must be a current commune of this province. A 201
means the dossier and its outbox row are committed.

Faults acting here: ``identity-from-body``, ``500-on-malformed-input``, ``duplicate-mahoso``,
``loses-dossiers-under-concurrency``, ``bad-mahoso-format``, ``requires-optional-fields``,
``hen-tra-before-tiep-nhan``, ``accepts-other-province-communes``, ``reads-any-dossier``, ``acts-on-any-dossier``
(and ``pre-merger-commune-codes``, ``draft-commune-codes`` through :mod:`units`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from haicap.data_generators.units import admin_units
from haicap.sandbox.province import consistency_faults as cf
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.context import ProvinceContext
from haicap.sandbox.province.problems import Problem, json_response, read_json
from haicap.sandbox.province.sessions import CitizenSession
from haicap.sandbox.province.units import ReceivingUnit, commune_agency_code

__all__ = ["DossierApi", "parse_ma_ho_so", "parse_page", "receiving_unit"]

log = logging.getLogger(__name__)

SUBMISSION_REF = "dossier.schema.json#/$defs/DossierSubmission"
SUPPLEMENT_REF = "dossier.schema.json#/$defs/SupplementRequest"
WITHDRAW_REF = "dossier.schema.json#/$defs/WithdrawRequest"
#: promised result date: submission + this many days [I: procedures take 1-15 working days]
PROMISE_DAYS = 5
NOI_NOP = "Hệ thống thông tin giải quyết TTHC cấp tỉnh"
_HOME_MADE_MA_HO_SO = re.compile(r"[GH][0-9]{2}-[0-9]{8}-[0-9]{1,4}")


def parse_ma_ho_so(ctx: ProvinceContext, request: Request) -> str:
    value = str(request.path_params["MaHoSo"])
    if ctx.has("bad-mahoso-format") and _HOME_MADE_MA_HO_SO.fullmatch(value):
        return value  # the faulty province serves the codes it hands out
    if not ctx.registry.validator("common.schema.json#/$defs/MaHoSo").is_valid(value):
        raise Problem.field(400, "MaHoSo", "must be {agency code}-{yyMMdd}-{4-digit sequence}")
    return value


def parse_page(request: Request) -> tuple[int, int]:
    out = []
    for name, default, low, high in (("limit", 50, 1, 200), ("offset", 0, 0, 10**9)):
        raw = request.query_params.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            raise Problem.field(400, name, "must be an integer") from None
        if not low <= value <= high:
            raise Problem.field(400, name, f"must be between {low} and {high}")
        out.append(value)
    return out[0], out[1]


def dossier_list(ctx: ProvinceContext, where: str, params: tuple[Any, ...], limit: int, offset: int) -> dict[str, Any]:
    total = ctx.store.read_one(f"SELECT count(*) FROM dossiers WHERE {where}", params)
    rows = ctx.store.read(
        f"SELECT doc FROM dossiers WHERE {where} ORDER BY rowid DESC LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return {
        "items": [orjson.loads(r[0]) for r in rows],
        "total": (total or (0,))[0],
        "limit": limit,
        "offset": offset,
    }


def receiving_unit(ctx: ProvinceContext, code: str) -> ReceivingUnit:
    """The commune a dossier (submitted or forwarded) is filed in: a current commune of this province (a 422
    problem naming MaXa if not)."""
    units = admin_units()
    if ctx.has("accepts-other-province-communes") and units.is_current_commune(code):
        commune = units.commune(code)  # the defect: the national list, not the province's part of it
        return ReceivingUnit(code, commune.name, commune_agency_code(code, ctx.config.agency_code))
    return ctx.units.check_commune(code)


class _WriteBehind:
    """The defect of ``loses-dossiers-under-concurrency``: acknowledged inserts wait in a buffer that is
    updated with a read-modify-write across an await, and flushed later. Concurrent appends overwrite
    each other; nothing is durable when the 201 goes out."""

    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.buffer: list[tuple[dict[str, Any], str, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, doc: dict[str, Any], agency: str, day: str) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_soon())
        pending = self.buffer
        await asyncio.sleep(0.002)  # e.g. a cache round-trip
        self.buffer = [*pending, (doc, agency, day)]

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.05)
        batch, self.buffer = self.buffer, []
        policy = self.ctx.policy
        for doc, agency, day in batch:
            seq = int(doc["MaHoSo"].rsplit("-", 1)[1])
            with contextlib.suppress(Exception):
                await self.ctx.store.write(
                    lambda c, doc=doc, a=agency, dy=day, s=seq: d.op_create(c, policy, doc, a, dy, sequence=s)
                )


class DossierApi:
    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.submission = ctx.registry.validator(SUBMISSION_REF)
        self.supplement_v = ctx.registry.validator(SUPPLEMENT_REF)
        self.withdraw_v = ctx.registry.validator(WITHDRAW_REF)
        self._write_behind = _WriteBehind(ctx)

    # -- public catalogue --------------------------------------------------------------------------
    async def procedures(self, request: Request) -> Response:
        return json_response({"items": self.ctx.catalogue.all()})

    async def units(self, request: Request) -> Response:
        return json_response(self.ctx.units.declaration())

    # -- submit ------------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        ctx = self.ctx
        _, session = ctx.sessions.from_request(request)
        trusting = ctx.has("500-on-malformed-input")
        body = await read_json(request, self.submission, trusting=trusting)
        if ctx.has("requires-optional-fields"):  # the defect: optional contact fields demanded
            cf.contact_fields_required(body)
        doc, agency = self.new_dossier(body, session)
        day = d.day_code()
        policy = ctx.policy
        if ctx.has("loses-dossiers-under-concurrency"):
            seq = await ctx.store.write(lambda c: d.allocate_sequence(c, agency, day))
            ma_ho_so = d.format_ma_ho_so(agency, day, seq)
            doc = {**doc, "MaHoSo": ma_ho_so, "SoBienNhan": ma_ho_so}
            await self._write_behind.add(doc, agency, day)
            stored = doc
        elif ctx.has("duplicate-mahoso"):
            seq = d.peek_sequence(ctx.store.reader(), agency, day)  # read ...
            await asyncio.sleep(0.002)  # ... other requests run here ...
            stored = await ctx.store.write(lambda c: d.op_create(c, policy, doc, agency, day, sequence=seq))  # write
        elif ctx.has("bad-mahoso-format"):  # the defect: a home-made code, numbered per province and day
            province_agency = ctx.config.agency_code
            stored = await ctx.store.write(lambda c: d.op_create(
                c, policy, doc, province_agency, day, formatter=d.format_ma_ho_so_home_made))
        else:
            stored = await ctx.store.write(lambda c: d.op_create(c, policy, doc, agency, day))
        location = f"/api/v1/dossiers/{stored['MaHoSo']}"
        return json_response(stored, status=201, headers={"Location": location})

    def new_dossier(self, body: dict[str, Any], session: CitizenSession) -> tuple[dict[str, Any], str]:
        """The dossier for a submission (state 1, no MaHoSo yet) and the receiving agency code."""
        ctx = self.ctx
        procedure = ctx.catalogue.get(body["MaTTHC"])
        if procedure is None:
            raise Problem.field(422, "MaTTHC", f"{body['MaTTHC']} is not a procedure this province receives online")
        unit = receiving_unit(ctx, body["MaXa"])
        identity = {"LoaiDinhDanh": "1", "SoDinhDanh": session.so_dinh_danh}
        given = body.get("DinhDanhCHS")
        owner_name = session.ho_va_ten
        if ctx.has("identity-from-body"):  # the defect: whatever the form says
            identities = given or [identity]
            owner_name = body.get("ChuHoSo") or owner_name
        else:
            if given is not None and identity not in given:
                raise Problem.field(
                    403, "DinhDanhCHS", "must contain the signed-in citizen's SoDinhDanh (LoaiDinhDanh 1)",
                    "Identity mismatch",
                )
            identities = [identity, *[x for x in (given or []) if x.get("LoaiDinhDanh") != "1"]]
        second = int(time.time())
        now, _ = d.clock_strings(second)
        wrong_sign = ctx.has("hen-tra-before-tiep-nhan")  # the defect: the processing days counted back
        promised, _ = d.clock_strings(second, cf.promise_days(PROMISE_DAYS) if wrong_sign else PROMISE_DAYS)
        fee = int(procedure["PhiPhaiNop"])
        entry = d.history_entry("1", NguoiXuLy=owner_name, NoiDungXuLy="Nộp hồ sơ trực tuyến")
        doc = d.new_dossier(
            body, procedure, unit, fees=procedure.get("DanhSachLePhi"), fee=fee,
            TenTTHC=procedure["TenTTHC"], ChuHoSo=owner_name, DinhDanhCHS=identities,
            TaiKhoanDuocXacThucVoiVNeID="1", NgayNopHoSo=now, NgayTiepNhan=now, NgayHenTra=promised,
            NoiNopHoSo=NOI_NOP, NguonHoSo="province", LichSu=[entry],
        )
        return doc, unit.agency_code

    # -- reads -------------------------------------------------------------------------------------
    def owned(self, request: Request) -> tuple[str, CitizenSession]:
        _, session = self.ctx.sessions.from_request(request)
        ma_ho_so = parse_ma_ho_so(self.ctx, request)
        return ma_ho_so, session

    def load_owned(self, ma_ho_so: str, session: CitizenSession, *, fault: str = "reads-any-dossier") -> dict[str, Any]:
        """The caller's dossier, or 404 (also when it is another citizen's: its existence is not disclosed).
        ``fault`` names the defect that skips the owner check at this call (reads or actions)."""
        if self.ctx.has(fault):  # the defect: any signed-in citizen gets any dossier
            row = self.ctx.store.read_one("SELECT doc FROM dossiers WHERE ma_ho_so = ?", (ma_ho_so,))
        else:
            row = self.ctx.store.read_one(
                "SELECT doc FROM dossiers WHERE ma_ho_so = ? AND owner = ?", (ma_ho_so, session.so_dinh_danh)
            )
        if row is None:
            raise Problem.field(404, "MaHoSo", f"no dossier {ma_ho_so} for this citizen", "Dossier not found")
        doc: dict[str, Any] = orjson.loads(row[0])
        return doc

    def acting_owner(self, ma_ho_so: str, session: CitizenSession) -> str:
        """Whose dossier a citizen action may change: the caller's (fault ``acts-on-any-dossier``: whoever owns
        ``ma_ho_so``, so the owner check in :mod:`dossiers` passes for anyone)."""
        if self.ctx.has("acts-on-any-dossier"):
            row = self.ctx.store.read_one("SELECT owner FROM dossiers WHERE ma_ho_so = ?", (ma_ho_so,))
            if row is not None:
                return str(row[0])
        return session.so_dinh_danh

    async def get(self, request: Request) -> Response:
        ma_ho_so, session = self.owned(request)
        return json_response(self.load_owned(ma_ho_so, session))

    async def list(self, request: Request) -> Response:
        _, session = self.ctx.sessions.from_request(request)
        limit, offset = parse_page(request)
        return json_response(dossier_list(self.ctx, "owner = ?", (session.so_dinh_danh,), limit, offset))

    # -- citizen actions ---------------------------------------------------------------------------
    async def supplement(self, request: Request) -> Response:
        ma_ho_so, session = self.owned(request)
        body = await read_json(request, self.supplement_v, trusting=self.ctx.has("500-on-malformed-input"))
        policy, owner, faults = self.ctx.policy, self.acting_owner(ma_ho_so, session), self.ctx.config.faults
        doc = await self.ctx.store.write(lambda c: d.op_supplement(c, policy, ma_ho_so, owner, body, faults=faults))
        return json_response(doc)

    async def withdraw(self, request: Request) -> Response:
        ma_ho_so, session = self.owned(request)
        body = await read_json(request, self.withdraw_v, trusting=self.ctx.has("500-on-malformed-input"))
        policy, owner, faults = self.ctx.policy, self.acting_owner(ma_ho_so, session), self.ctx.config.faults
        doc = await self.ctx.store.write(lambda c: d.op_withdraw(c, policy, ma_ho_so, owner, body, faults=faults))
        return json_response(doc)
