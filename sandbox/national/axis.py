"""The National Document Interconnection Axis of the counterpart (edXML, QCVN 102:2016/BTTTT).

It plays the axis between the province and the rest of the state: it accepts the province's edXML packages
(``POST /axis/edxml``: a malformed one is answered with a status 02 naming the defect, a valid one with 01, then
the recipient's 03 and 06 are pushed to the province's ``POST /axis/status``), delivers packages to the province
on command (the control API: valid ones, the malformed variants of ``haicap/edxml.py`` that must be answered 02,
and the must-accept variants), records every status message the province sends (``POST /axis/status``) and
serves the agency-code directory (``GET /axis/agencies``, from ``data_generators/agencies.py``) with a control
call that changes a code. The ledger (``/_ledger/axis/...``) shows what happened, for the checks.

State lives in memory (one process, one event loop; see app.py): a run's documents are few.
Contract: ``contracts/national-axis.openapi.yaml`` and ``contracts/schemas/axis.schema.json``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haicap.axis_contract import axis_contract
from haicap.contract_registry import default_registry
from haicap.data_generators.agencies import agency_directory
from haicap.edxml import MAX_BYTES, EdxmlError, PackageSpec, build_status, read_package, read_status, variant
from haicap.sandbox.config import NationalConfig, ProvinceEndpoint
from haicap.sandbox.national.problems import JSONResponse, ProblemError, valid_body

__all__ = ["DocumentAxis"]

XML = "application/xml"
_DOCUMENT_ID = re.compile(rb"<DocumentId>([^<]{1,200})</DocumentId>")
DELIVER_PATH = "/axis/edxml"
STATUS_PATH = "/axis/status"
#: the sender of the documents the axis delivers to the province [I: a ministry of the directory]
SENDER = ("000.00.00.G03", "Bộ Nội vụ")
#: the axis itself, in the answers it gives (the Government Office operates it) [I]
AXIS_ORGAN = "000.00.00.G09"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Directory:
    """The agency-code directory: entries by OrganId, a version that grows with every change."""

    def __init__(self, provinces: dict[str, str]) -> None:
        self.entries: dict[str, dict[str, Any]] = {str(e["OrganId"]): dict(e) for e in agency_directory(provinces)}
        self.version = 1

    def body(self) -> bytes:
        return orjson.dumps({"version": self.version, "agencies": list(self.entries.values())})

    def etag(self) -> str:
        return f'"axis-directory-{self.version}"'

    def current(self, organ: str) -> str:
        """The active code for ``organ`` (following ReplacedBy), itself when unknown."""
        seen = {organ}
        entry = self.entries.get(organ)
        while entry is not None and not entry.get("Active") and entry.get("ReplacedBy") not in (None, *seen):
            organ = str(entry["ReplacedBy"])
            seen.add(organ)
            entry = self.entries.get(organ)
        return organ

    def rename(self, old: str, new: str) -> dict[str, Any]:
        entry = self.entries.get(old)
        if entry is None or not entry.get("Active"):
            raise ProblemError(404, "Not Found", f"no active agency {old} in the directory",
                               [{"field": "OrganId", "message": "not an active code of the directory"}])
        if new in self.entries:
            raise ProblemError(409, "Conflict", f"{new} is already in the directory",
                               [{"field": "NewOrganId", "message": "already used"}])
        self.entries[new] = {**entry, "OrganId": new}
        self.entries[old] = {**entry, "Active": False, "ReplacedBy": new}
        self.version += 1
        return {"OrganId": old, "NewOrganId": new, "version": self.version}


class DocumentAxis:
    """The axis routes (:attr:`routes`), its control (:attr:`control_routes`) and ledger (:attr:`ledger_routes`)."""

    def __init__(self, config: NationalConfig, http: Callable[[], Awaitable[httpx.AsyncClient]]) -> None:
        self.contract = axis_contract()
        self.http = http
        self.provinces: tuple[ProvinceEndpoint, ...] = config.provinces
        self._directory: Directory | None = None
        self._directory_of = {p.province_code: p.agency_code for p in config.provinces}
        self._numbers = itertools.count(_now_ms() % 10**9)
        self.delivered: dict[str, dict[str, Any]] = {}
        self.sent: dict[str, dict[str, Any]] = {}
        self.rejected: list[dict[str, Any]] = []
        self.orphan_statuses: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        registry = default_registry()
        self._deliver_body = registry.validator("axis.schema.json#/$defs/ControlDeliverRequest")
        self._rename_body = registry.validator("axis.schema.json#/$defs/ControlAgencyCodeRequest")
        self._recall_body = registry.validator("axis.schema.json#/$defs/ControlRecallRequest")
        self.routes = [
            Route(DELIVER_PATH, self.receive_package, methods=["POST"]),
            Route(STATUS_PATH, self.receive_status, methods=["POST"]),
            Route("/axis/agencies", self.agencies, methods=["GET"]),
        ]
        self.control_routes = [
            Route("/_control/axis/deliver", self.deliver, methods=["POST"]),
            Route("/_control/axis/agency-code", self.rename, methods=["POST"]),
            Route("/_control/axis/recall", self.recall, methods=["POST"]),
        ]
        self.ledger_routes = [
            Route("/_ledger/axis/delivered", self.ledger_delivered, methods=["GET"]),
            Route("/_ledger/axis/sent", self.ledger_sent, methods=["GET"]),
            Route("/_ledger/axis/directory", self.ledger_directory, methods=["GET"]),
        ]

    @property
    def directory(self) -> Directory:
        if self._directory is None:  # built on first use: the unit tables load once
            self._directory = Directory(self._directory_of)
        return self._directory

    # -- answers -----------------------------------------------------------------------------------
    def _status(self, document_id: str, response_organ: str, code: str, description: str = "",
                http_status: int = 200) -> Response:
        body = build_status(document_id, response_organ, AXIS_ORGAN, code, description=description,
                            contract=self.contract)
        return Response(body, status_code=http_status, media_type=XML)

    # -- the province sends ------------------------------------------------------------------------
    async def receive_package(self, request: Request) -> Response:
        raw = await request.body()
        try:
            package = read_package(raw, self.contract)
        except EdxmlError as exc:
            found = _DOCUMENT_ID.search(raw[:MAX_BYTES])
            self.rejected.append({"kind": exc.kind, "reason": exc.reason, "at": _now_ms(),
                                  "DocumentId": found.group(1).decode("utf-8", "replace")[:200] if found else None,
                                  "excerpt": raw[:300].decode("utf-8", "replace")})
            return self._status("", "", "02", exc.reason, http_status=400)
        record = self.sent.get(package.document_id)
        if record is not None:
            record["repeats"] += 1
            return self._status(package.document_id, package.from_organ, "01")
        self.sent[package.document_id] = record = {
            "DocumentId": package.document_id, "From": package.from_organ, "To": list(package.to_organs),
            "PromulgationDate": package.promulgation_date, "TraceTimestamp": package.trace_timestamp,
            "Subject": package.subject, "attachments": len(package.attachments), "at": _now_ms(), "repeats": 0,
            "codes": self._judge_codes(package.from_organ, package.to_organs),
            "statuses": [{"StatusCode": "01", "at": _now_ms()}], "pushes": [],
            # the package as it arrived, for the signatures criterion (SIG-07 verifies its DigitalSignature)
            "package": base64.b64encode(raw).decode(),
        }
        self._spawn(self._process_sent(record))
        return self._status(package.document_id, package.from_organ, "01")

    def _judge_codes(self, sender: str, to: tuple[str, ...]) -> dict[str, Any]:
        entries = self.directory.entries
        return {organ: ({k: entries[organ].get(k) for k in ("Level", "MaTinh", "MaXa", "Active", "ReplacedBy")}
                        if organ in entries else None) for organ in (sender, *to)}

    async def _process_sent(self, record: dict[str, Any]) -> None:
        """The recipient's side: accepted (03), then finished (06), each pushed to the province."""
        for code in ("03", "06"):
            answer = await self._push_status(record["DocumentId"], record["From"], code)
            record["pushes"].append({"StatusCode": code, **answer})
            record["statuses"].append({"StatusCode": code, "at": _now_ms()})

    async def _push_status(self, document_id: str, response_organ: str, code: str) -> dict[str, Any]:
        province = self._province_of(response_organ)
        body = build_status(document_id, response_organ, (self._to_of(document_id) or SENDER[0]), code,
                            contract=self.contract)
        try:
            client = await self.http()
            response = await client.post(province.base_url.rstrip("/") + STATUS_PATH, content=body,
                                         headers={"Content-Type": XML,
                                                  "Authorization": f"Bearer {province.forward_token}"})
        except httpx.HTTPError as exc:
            return {"http_status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"http_status": response.status_code}

    def _to_of(self, document_id: str) -> str | None:
        record = self.sent.get(document_id)
        return record["To"][0] if record and record["To"] else None

    def _province_of(self, organ: str) -> ProvinceEndpoint:
        group = organ.rsplit(".", 1)[-1]
        for province in self.provinces:
            if province.agency_code.rsplit(".", 1)[-1] == group:
                return province
        return self.provinces[0]

    def _spawn(self, job: Awaitable[None]) -> None:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- status messages from the province ---------------------------------------------------------
    async def receive_status(self, request: Request) -> Response:
        raw = await request.body()
        try:
            message = read_status(raw, self.contract)
        except EdxmlError as exc:
            self.orphan_statuses.append({"reason": exc.reason, "at": _now_ms()})
            return self._status("", "", "02", exc.reason, http_status=400)
        entry = {"StatusCode": message.code, "Timestamp": message.timestamp, "Description": message.description,
                 "From": message.from_organ, "problems": list(message.problems), "at": _now_ms()}
        record = self.delivered.get(message.document_id)
        if record is None:
            self.orphan_statuses.append({**entry, "DocumentId": message.document_id})
            return Response(status_code=204)
        record["statuses"].append(entry)
        return Response(status_code=204)

    # -- the directory -----------------------------------------------------------------------------
    async def agencies(self, request: Request) -> Response:
        etag = self.directory.etag()
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(self.directory.body(), media_type="application/json", headers={"ETag": etag})

    async def rename(self, request: Request) -> Response:
        body = await valid_body(request, self._rename_body, required=False)
        return JSONResponse(self.directory.rename(body["OrganId"], body["NewOrganId"]))

    # -- delivering to the province ----------------------------------------------------------------
    def _spec(self, province: ProvinceEndpoint, to_ma_xa: str | None) -> PackageSpec:
        to = self.directory.current(province.agency_code)
        if to_ma_xa:
            to = next((o for o, e in self.directory.entries.items() if e.get("MaXa") == to_ma_xa and e["Active"]),
                      to)
        name = str(self.directory.entries.get(to, {}).get("OrganName", ""))
        return PackageSpec.new(*SENDER, [(to, name)], next(self._numbers), contract=self.contract,
                               subject="Văn bản thử nghiệm trục liên thông (haicap)")

    async def deliver(self, request: Request) -> Response:
        body = await valid_body(request, self._deliver_body, required=False)
        province = self.provinces[0]
        repeat = body.get("DocumentId")
        if repeat is not None:
            record = self.delivered.get(repeat)
            if record is None:
                raise ProblemError(404, "Not Found", f"no delivered document {repeat}",
                                   [{"field": "DocumentId", "message": "never delivered"}])
            spec, kind = record["spec"], record["kind"]
        else:
            kind = body.get("kind", "valid")
            spec = self._spec(province, body.get("ToMaXa"))
            try:
                variant(kind, spec)
            except Exception as exc:  # an unknown variant name
                raise ProblemError(400, "Bad Request", str(exc), [{"field": "kind", "message": str(exc)}]) from None
            record = {"DocumentId": spec.document_id, "kind": kind, "spec": spec, "To": spec.to[0][0],
                      "statuses": [], "deliveries": []}
            self.delivered[spec.document_id] = record
        answer = await self._send(province, variant(kind, spec))
        record["deliveries"].append(answer)
        return JSONResponse({"DocumentId": spec.document_id, "kind": kind, **answer})

    async def recall(self, request: Request) -> Response:
        """The sender recalls a delivered document: a status 13 to the province's POST /axis/status."""
        body = await valid_body(request, self._recall_body, required=False)
        record = self.delivered.get(body["DocumentId"])
        if record is None:
            raise ProblemError(404, "Not Found", f"no delivered document {body['DocumentId']}",
                               [{"field": "DocumentId", "message": "never delivered"}])
        province = self.provinces[0]
        message = build_status(record["DocumentId"], SENDER[0], SENDER[0], "13", description="Thu hồi văn bản",
                               contract=self.contract)
        try:
            client = await self.http()
            response = await client.post(province.base_url.rstrip("/") + STATUS_PATH, content=message, headers={
                "Content-Type": XML, "Authorization": f"Bearer {province.forward_token}"})
            answer: dict[str, Any] = {"http_status": response.status_code}
        except httpx.HTTPError as exc:
            answer = {"http_status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
        record.setdefault("recalls", []).append({"at": _now_ms(), "after": len(record["statuses"]), **answer})
        return JSONResponse({"DocumentId": record["DocumentId"], **answer})

    async def _send(self, province: ProvinceEndpoint, package: bytes) -> dict[str, Any]:
        url = province.base_url.rstrip("/") + DELIVER_PATH
        started = time.monotonic()
        try:
            client = await self.http()
            response = await client.post(url, content=package, headers={
                "Content-Type": XML, "Authorization": f"Bearer {province.forward_token}"})
        except httpx.HTTPError as exc:
            return {"url": url, "http_status": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
        answer: dict[str, Any] = {"url": url, "http_status": response.status_code,
                                  "ms": round((time.monotonic() - started) * 1000, 1)}
        try:
            status = read_status(response.content, self.contract)
            answer.update(StatusCode=status.code, Description=status.description, problems=list(status.problems))
        except EdxmlError as exc:
            answer.update(StatusCode=None, answer_problem=exc.reason, excerpt=response.text[:300])
        return answer

    # -- ledger ------------------------------------------------------------------------------------
    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "spec"}

    async def ledger_delivered(self, request: Request) -> Response:
        document_id = request.query_params.get("DocumentId")
        if document_id is None:
            return JSONResponse({"items": [self._public(r) for r in self.delivered.values()],
                                 "orphan_statuses": self.orphan_statuses[-50:]})
        record = self.delivered.get(document_id)
        if record is None:
            raise ProblemError(404, "Not Found", f"no delivered document {document_id}")
        return JSONResponse(self._public(record))

    async def ledger_sent(self, request: Request) -> Response:
        document_id = request.query_params.get("DocumentId")
        if document_id is None:
            items = [{k: v for k, v in r.items() if k != "package"} for r in self.sent.values()]  # lean listing
            return JSONResponse({"items": items, "rejected": self.rejected[-50:]})
        record = self.sent.get(document_id)
        if record is None:
            raise ProblemError(404, "Not Found", f"no document {document_id} received from the province")
        return JSONResponse(record)

    async def ledger_directory(self, request: Request) -> Response:
        return Response(self.directory.body(), media_type="application/json")
