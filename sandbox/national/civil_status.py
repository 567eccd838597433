"""The interconnection side of the civil-status procedure groups (Decree 63/2024/NĐ-CP), played by haicap.

haicap stands for the Ministry of Justice's shared electronic civil-status system and the interconnection portal
(LTKS: birth group, LTKT: death group) toward a province: on command (control API) it delivers an interconnected
dossier of group 1 or 2 to the province (``POST {province}/lienthong/dossiers`` with the province's credential) and
issues a component's result (the birth extract, the residence registration, the health-insurance card…: ``POST
{province}/lienthong/ket-qua``); it receives what the province sends back (the dossier it took in: ``POST
/lienthong/dossiers``) and the status pushes (``POST /lienthong/trang-thai``), validates each against the contract
and records all of them, valid or not, in arrival order, so the checks judge them (``GET /_ledger/civil/...``).

The wire agreement is modelled (contracts/civil-status.openapi.yaml): one credential per province, the forward
token the national side already holds for it, presented both ways. State is kept in memory (the counterpart runs
as one process; see app.py).
"""

from __future__ import annotations

import hmac
import itertools
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.civil_status import LIST_ITEM_REF, PUSH_REF, SCHEMA, civil_status, format_lt
from haicap.contract_registry import default_registry
from haicap.data_generators.identity import make_cccd
from haicap.data_generators.units import admin_units
from haicap.sandbox.config import NationalConfig, ProvinceEndpoint
from haicap.sandbox.national.forwarder import sequence_slot
from haicap.sandbox.national.outbound import post_json
from haicap.sandbox.national.problems import JSONResponse, ProblemError, json_body, valid_body
from haicap.sandbox.national.store import now_ms
from haicap.sandbox.national.timefmt import VN_TZ

__all__ = ["INTERCONNECTION_AGENCY", "CivilStatusSide"]

#: the agency code under which the interconnection portal numbers the dossiers it delivers [I: modelled]
INTERCONNECTION_AGENCY = "000.00.00.G16"
DOSSIERS_PATH = "/lienthong/dossiers"
RESULTS_PATH = "/lienthong/ket-qua"
SEQUENCES_PER_DAY = 9999


class CivilStatusSide:
    """Delivers dossiers and results, records what the province sends; :attr:`routes` are public (the province
    calls them with its credential), :attr:`control_routes` go behind the control token."""

    def __init__(self, config: NationalConfig, http: Callable[[], Awaitable[httpx.AsyncClient]]) -> None:
        registry = default_registry()
        self.spec = civil_status(registry)
        self.provinces = {p.province_code: p for p in config.provinces}
        self._http = http
        self._rng = random.Random(f"civil:{config.seed}")
        self._ids = itertools.count(1)
        self._sequence = sequence_slot(datetime.now(VN_TZ))
        self._push = registry.validator(PUSH_REF)
        self._item = registry.validator(LIST_ITEM_REF)
        self._send_req = registry.validator(f"{SCHEMA}#/$defs/ControlCivilSendRequest")
        self._complete_req = registry.validator(f"{SCHEMA}#/$defs/ControlCivilCompleteRequest")
        #: soHoSoLT → the record of one interconnected dossier
        self.dossiers: dict[str, dict[str, Any]] = {}
        #: pushes and sent-back items that named no dossier this side delivered
        self.unmatched: list[dict[str, Any]] = []
        self.routes = [
            Route(DOSSIERS_PATH, self.receive_dossier, methods=["POST"]),
            Route("/lienthong/trang-thai", self.receive_push, methods=["POST"]),
        ]
        self.control_routes = [
            Route("/_control/civil/send", self.control_send, methods=["POST"]),
            Route("/_control/civil/complete", self.control_complete, methods=["POST"]),
            Route("/_ledger/civil/dossiers", self.ledger_list, methods=["GET"]),
            Route("/_ledger/civil/dossiers/{soHoSoLT}", self.ledger_one, methods=["GET"]),
        ]

    # -- building --------------------------------------------------------------------------------
    def _next_codes(self, module: str) -> tuple[str, str]:
        now = datetime.now(VN_TZ)
        day = f"{now:%y%m%d}"
        sequence = self._sequence
        self._sequence += 1
        ma_ho_so = f"{INTERCONNECTION_AGENCY}-{day}-{(sequence - 1) % SEQUENCES_PER_DAY + 1:04d}"
        return f"{module}-{day}-{self._rng.randrange(16**8):08x}-{next(self._ids)}", ma_ho_so

    def build(self, group_id: str, province: ProvinceEndpoint) -> dict[str, Any]:
        """A valid interconnected dossier of ``group_id`` for ``province`` (registered on time)."""
        group = self.spec.group(group_id)
        rng = self._rng
        so_ho_so_lt, ma_ho_so = self._next_codes(group.module)
        commune = rng.choice(admin_units().communes(province.province_code))
        parent = make_cccd(rng, datetime(rng.randint(1975, 2000), rng.randint(1, 12), rng.randint(1, 28)).date(),
                           rng.random() < 0.5)
        subject = "khai sinh cho con" if group.module == "LTKS" else "khai tử cho người thân"
        return {
            "id": so_ho_so_lt, "maDonVi": province.agency_code, "maTTHC": group.lead.maTTHC, "module": group.module,
            "maHoSo": ma_ho_so, "ngayTiepNhan": format_lt(), "MaXa": commune.code, "ChuHoSo": "Nguyễn Văn Liên",
            "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": parent}],
            "TrichYeuHoSo": f"Liên thông {group.module}: đăng ký {subject}, {commune.name}",
            "dangKyDungHan": True,
            "nhomThuTuc": group.label,  # an extra field: the province must accept it
        }

    def _province(self, code: str | None) -> ProvinceEndpoint:
        if code is None and self.provinces:
            return next(iter(self.provinces.values()))
        if code in self.provinces:
            return self.provinces[code]
        raise ProblemError(400, "Bad Request", f"province {code} is not registered",
                           [{"field": "province_code", "message": f"registered: {', '.join(sorted(self.provinces))}"}])

    # -- control ---------------------------------------------------------------------------------
    async def control_send(self, request: Request) -> Response:
        body = await valid_body(request, self._send_req)
        province = self._province(body.get("province_code"))
        dossier = {**self.build(body["group"], province), **(body.get("overrides") or {})}
        url = province.base_url.rstrip("/") + DOSSIERS_PATH
        status, answer, error = await post_json(await self._http(), url, dossier,
                                                {"Authorization": f"Bearer {province.forward_token}"})
        record = {"soHoSoLT": str(dossier.get("id", "")), "group": body["group"], "province_code":
                  province.province_code, "sent_ms": now_ms(), "dossier": dossier, "status_code": status,
                  "answer": answer, "error": error, "received": [], "pushes": [], "results": []}
        self.dossiers[record["soHoSoLT"]] = record
        return JSONResponse(_public(record))

    async def control_complete(self, request: Request) -> Response:
        body = await valid_body(request, self._complete_req)
        record = self.dossiers.get(body["soHoSoLT"])
        if record is None:
            raise ProblemError(404, "Not Found", f"no interconnected dossier {body['soHoSoLT']} was delivered",
                               [{"field": "soHoSoLT", "message": "unknown"}])
        group = self.spec.group(record["group"])
        component = group.component(body["component"])
        if component is None:
            raise ProblemError(400, "Bad Request", f"group {group.id} has no component {body['component']!r}",
                               [{"field": "component",
                                 "message": f"one of {', '.join(c.id for c in group.components)}"}])
        province = self.provinces[record["province_code"]]
        result = {"soHoSoLT": record["soHoSoLT"], "maHoSo": record["dossier"].get("maHoSo"),
                  "maTTHC": component.maTTHC,
                  "ketQuaXuLy": f"{component.result} số {self._rng.randrange(10**6, 10**7)}",
                  "coQuanCap": component.agency, "thoiGianThucHien": format_lt()}
        url = province.base_url.rstrip("/") + RESULTS_PATH
        sent_ms = now_ms()
        status, answer, error = await post_json(await self._http(), url, result,
                                                {"Authorization": f"Bearer {province.forward_token}"})
        entry = {"component": component.id, "sent_ms": sent_ms, "result": result, "status_code": status,
                 "answer": answer, "error": error}
        record["results"].append(entry)
        return JSONResponse(entry)

    # -- what the province sends -----------------------------------------------------------------
    def _caller(self, request: Request) -> ProvinceEndpoint:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        for province in self.provinces.values():
            if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                  province.forward_token.encode()):
                return province
        raise ProblemError(401, "Unauthorized", "the province's interconnection credential is required",
                           [{"field": "Authorization", "message": "missing or wrong Bearer token"}],
                           headers={"WWW-Authenticate": 'Bearer realm="lienthong"'})

    async def _record(self, request: Request, validator: Any, kind: str, key: str) -> Response:
        province = self._caller(request)
        try:
            body = await json_body(request)
        except ProblemError as exc:
            self.unmatched.append({"kind": kind, "received_ms": now_ms(), "body": None, "violations": exc.errors})
            raise
        violations = [v.as_problem_error() for v in validator.violations(body)]
        entry = {"received_ms": now_ms(), "province_code": province.province_code, "body": body,
                 "violations": violations}
        record = self.dossiers.get(str(body.get(key, ""))) if isinstance(body, dict) else None
        if record is None:
            self.unmatched.append({"kind": kind, **entry})
        else:
            record[kind].append(entry)
        if violations:
            return JSONResponse({"accepted": False, "errors": violations}, status_code=400)
        return JSONResponse({"accepted": True})

    async def receive_dossier(self, request: Request) -> Response:
        return await self._record(request, self._item, "received", "id")

    async def receive_push(self, request: Request) -> Response:
        return await self._record(request, self._push, "pushes", "soHoSoLT")

    # -- ledger ----------------------------------------------------------------------------------
    async def ledger_list(self, request: Request) -> Response:
        return JSONResponse({"items": [_public(r) for r in self.dossiers.values()], "unmatched": self.unmatched})

    async def ledger_one(self, request: Request) -> Response:
        record = self.dossiers.get(request.path_params["soHoSoLT"])
        if record is None:
            raise ProblemError(404, "Not Found", "no such interconnected dossier",
                               [{"field": "soHoSoLT", "message": "unknown"}])
        return JSONResponse(_public(record))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "MaHoSo": record["dossier"].get("maHoSo")}

