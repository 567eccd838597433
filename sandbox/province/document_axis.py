"""The reference province on the National Document Interconnection Axis (edXML, QCVN 102:2016/BTTTT).

A delivered package (``POST /axis/edxml``, the axis' credential) is read safely (``haicap/edxml.py``): a
malformed or schema-invalid one is answered with a status 02 naming the defect (HTTP 400, never a crash); a
valid one with 01 (arrived), then 03 (accepted) is pushed to the axis' ``POST /axis/status``; the same
DocumentId again is answered 01 and processed once. The officer moves a received document on (04, 05, 06,
``POST /officer/axis/status``) in the legal order of the contract (``x-status-transitions``; a step out of order
is refused with 409 and sends nothing). The officer sends documents (``POST /officer/axis/documents``) with
From/To OrganId the current codes of the axis' agency directory, which is re-validated (ETag) before every send
so a changed code is used at once; each package is signed with the officer's enrolled credential (enveloped
XAdES over the whole package, the Signature where ``x-edxml.signature`` puts it; ``signing.py``). Status
messages about the province's own documents (``POST /axis/status``) are recorded. The faults of :mod:`faults`
(``ack-only-arrived`` … ``sent-document-lost``, ``edxml-unsigned``, ``edxml-modified-after-signing``) switch
single decisions.

State is in memory (a run's documents are few) [haicap simplification: a production system keeps it durable].
So the axis side needs one province worker: with ``--province-workers`` > 1 a document's later requests (the
officer's status, a repeat delivery) may reach a worker that never saw it, until this state moves into the store.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from haicap.axis_contract import axis_contract
from haicap.edxml import EdxmlError, PackageSpec, build_package, build_status, parse_xml, read_package, read_status
from haicap.sandbox.province.context import ProvinceContext, require_bearer
from haicap.sandbox.province.lazy_http import LazyAsyncClient
from haicap.sandbox.province.problems import Problem, json_response
from haicap.sandbox.province.signing import EDXML_SIGNATURE_PLACEHOLDER, sign_edxml
from haicap.vn_time import VN_TZ

__all__ = ["DocumentAxisProvince"]

log = logging.getLogger(__name__)
XML = "application/xml"
#: MessageHeader children a strict (faulty) reader knows; the contract allows any optional element
_STRICT_KNOWN = frozenset({"From", "To", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
                           "DocumentId"})
#: malformed kinds the ``accepts-malformed-edxml`` fault lets through (it reads only the envelope)
_LENIENT = frozenset({"missing-element", "bad-organ-id", "bad-date", "bad-document-id", "bad-timestamp",
                      "attachment-not-in-manifest", "reference-without-attachment", "bad-base64"})


class DocumentAxisProvince:
    """Routes of the province's axis side; :meth:`aclose` on shutdown."""

    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.contract = axis_contract()
        self.national = ctx.config.national_url.rstrip("/")
        self.received: dict[str, dict[str, Any]] = {}
        self.sent: dict[str, dict[str, Any]] = {}
        self._http = LazyAsyncClient()
        self._directory: dict[str, Any] | None = None
        self._etag: str | None = None
        self._numbers = itertools.count(int(time.time() * 1000) % 10**9)
        self._queue: asyncio.Queue[tuple[str, str, str, str]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._send_body = ctx.registry.validator("axis.schema.json#/$defs/OfficerSendRequest")
        self._status_body = ctx.registry.validator("axis.schema.json#/$defs/OfficerStatusRequest")

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        await self._http.aclose()

    # -- answers -----------------------------------------------------------------------------------
    def _answer(self, document_id: str, response_organ: str, code: str, description: str = "",
                http_status: int = 200) -> Response:
        body = build_status(document_id, response_organ, self.ctx.config.agency_code, code,
                            description=description, timestamp=self._timestamp(), contract=self.contract)
        return Response(body, status_code=http_status, media_type=XML)

    def _timestamp(self) -> str:
        now = datetime.now(VN_TZ)
        if self.ctx.has("bad-status-timestamp"):  # the defect: ISO 8601 instead of dd/MM/yyyy HH:mm:ss
            return now.strftime("%Y-%m-%dT%H:%M:%S")
        return self.contract.formats["StatusTimestamp"].format(now)

    # -- receiving ---------------------------------------------------------------------------------
    async def receive(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.forward_token, "national axis")
        raw = await request.body()
        try:
            package = read_package(raw, self.contract)
        except EdxmlError as exc:
            if self.ctx.has("500-on-malformed-edxml"):  # the defect: the reader's error escapes
                raise RuntimeError(exc.reason) from None
            if self.ctx.has("accepts-malformed-edxml") and exc.kind in _LENIENT:
                return self._accept_unchecked(raw)
            return self._answer("", "", "02", exc.reason, http_status=400)
        if self.ctx.has("rejects-optional-edxml-elements"):
            unknown = self._strict_unknown(raw, package.attachments)
            if unknown:
                return self._answer(package.document_id, package.from_organ, "02", unknown, http_status=400)
        known = self.received.get(package.document_id)
        if known is not None and not self.ctx.has("processes-duplicate-document"):
            known["repeats"] += 1
            return self._answer(package.document_id, package.from_organ, "01")
        self.received[package.document_id] = {"DocumentId": package.document_id, "From": package.from_organ,
                                              "To": package.to_organs[0], "StatusCode": "01", "history": ["01"],
                                              "repeats": 0}
        if not self.ctx.has("ack-only-arrived"):
            self._move(package.document_id, "03")
        return self._answer(package.document_id, package.from_organ, "01")

    def _accept_unchecked(self, raw: bytes) -> Response:
        root = parse_xml(raw)
        ns = self.contract.namespace
        document_id = "".join(root.itertext(f"{{{ns}}}DocumentId")) or f"unknown-{next(self._numbers)}"
        sender = "".join(root.itertext(f"{{{ns}}}OrganId"))[:13]
        self.received[document_id] = {"DocumentId": document_id, "From": sender, "To": self.ctx.config.agency_code,
                                      "StatusCode": "01", "history": ["01"], "repeats": 0}
        return self._answer(document_id, sender, "01")

    def _strict_unknown(self, raw: bytes, attachments: dict[str, tuple[str, str, int]]) -> str:
        root = parse_xml(raw)
        ns = self.contract.namespace
        header = root.find("/".join(f"{{{ns}}}{p}" for p in self.contract.paths["message_header"].split("/")))
        for child in header:
            name = str(child.tag).rpartition("}")[2]
            if name not in _STRICT_KNOWN:
                return f"unknown element {name} in MessageHeader"
        odd = sorted({ctype for _, ctype, _ in attachments.values() if ctype != "application/pdf"})
        return f"attachment content type {odd[0]} is not accepted" if odd else ""

    def _move(self, document_id: str, code: str) -> None:
        record = self.received[document_id]
        record["StatusCode"] = code
        record["history"].append(code)
        self._enqueue(document_id, record["From"], record["To"], code)

    def _enqueue(self, document_id: str, response_organ: str, from_organ: str, code: str) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.ensure_future(self._push_loop())
        self._queue.put_nowait((document_id, response_organ, from_organ, code))

    async def _push_loop(self) -> None:
        """Status messages to the axis, in the order they were made (one queue, one sender)."""
        assert self._queue is not None
        while True:
            document_id, response_organ, from_organ, code = await self._queue.get()
            body = build_status(document_id, response_organ, from_organ, code, timestamp=self._timestamp(),
                                contract=self.contract)
            for attempt in range(3):
                try:
                    response = await self._http.client.post(self.national + "/axis/status", content=body,
                                                            headers={"Content-Type": XML})
                    if response.status_code < 500:
                        break
                except httpx.HTTPError as exc:
                    log.warning("province: status %s of %s not delivered: %s", code, document_id, exc)
                await asyncio.sleep(0.1 * (attempt + 1))

    def _answer_recall(self, record: dict[str, Any]) -> None:
        """A recall (13) is agreed (15) while the document is still open, refused (16) once it is finished."""
        if self.contract.allows(record["StatusCode"], "13"):
            record["StatusCode"] = "13"
            record["history"].append("13")
            self._move(record["DocumentId"], "15")
        else:
            self._enqueue(record["DocumentId"], record["From"], record["To"], "16")

    # -- the officer moves a received document on --------------------------------------------------
    async def officer_status(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.officer_token, "officer")
        body = await _json(request)
        violations = self._status_body.violations(body)
        if violations:
            raise Problem(422, "Invalid request", "invalid status request", [v.as_problem_error() for v in violations])
        record = self.received.get(str(body.get("DocumentId")))
        if record is None:
            raise Problem.field(404, "DocumentId", "no document with this DocumentId was received", "Not found")
        code = body["StatusCode"]
        if self.contract.sent_by.get(code) != "recipient":
            raise Problem.field(422, "StatusCode", f"{code} is not a status the recipient sends")
        if not self.ctx.has("status-out-of-order") and not self.contract.allows(record["StatusCode"], code):
            allowed = ", ".join(c for c in self.contract.next.get(record["StatusCode"], ())
                                if self.contract.sent_by.get(c) == "recipient") or "none (final)"
            raise Problem.field(409, "StatusCode", f"{code} may not follow {record['StatusCode']} "
                                f"(allowed next: {allowed})", "Status out of order")
        self._move(record["DocumentId"], code)
        return json_response({"DocumentId": record["DocumentId"], "StatusCode": code, "history": record["history"]})

    async def officer_document(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.officer_token, "officer")
        document_id = request.query_params.get("DocumentId", "")
        record = self.received.get(document_id) or self.sent.get(document_id)
        if record is None:
            raise Problem.field(404, "DocumentId", "no such document", "Not found")
        return json_response(record)

    # -- sending -----------------------------------------------------------------------------------
    async def _agencies(self) -> dict[str, Any]:
        if self._directory is not None and self.ctx.has("stale-agency-directory"):
            return self._directory  # the defect: the directory fetched once is used forever
        headers = {"If-None-Match": self._etag} if self._etag and self._directory is not None else {}
        try:
            response = await self._http.client.get(self.national + "/axis/agencies", headers=headers)
        except httpx.HTTPError as exc:
            if self._directory is None:
                raise Problem(503, "Directory unavailable", f"the axis directory cannot be read: {exc}") from None
            return self._directory
        if response.status_code == 200:
            self._directory = orjson.loads(response.content)
            self._etag = response.headers.get("etag")
        elif self._directory is None:
            raise Problem(503, "Directory unavailable", f"the axis directory answered HTTP {response.status_code}")
        return self._directory

    def _own_code(self, agencies: list[dict[str, Any]], ma_xa: str | None) -> str:
        province = self.ctx.config.province_code
        if self.ctx.has("pre-merger-district-organ-id"):  # the defect: the old district's code is still sent
            old = [a for a in agencies if a.get("Level") == "district" and a.get("MaTinh") == province]
            if old:
                return str(old[0]["OrganId"])
        level, key = ("commune", "MaXa") if ma_xa else ("province", "MaTinh")
        want = ma_xa or province
        for entry in agencies:
            if entry.get("Active") and entry.get("Level") == level and entry.get(key) == want:
                return str(entry["OrganId"])
        raise Problem.field(422, "FromMaXa" if ma_xa else "(province)", "no active agency in the axis directory")

    @staticmethod
    def _recipient(agencies: list[dict[str, Any]], body: dict[str, Any]) -> tuple[str, str]:
        if body.get("ToMaXa"):
            for entry in agencies:
                if entry.get("Active") and entry.get("Level") == "commune" and entry.get("MaXa") == body["ToMaXa"]:
                    return str(entry["OrganId"]), str(entry.get("OrganName", ""))
            raise Problem.field(422, "ToMaXa", "no active commune agency with this code in the axis directory")
        to = str(body.get("To") or "000.00.00.G03")
        for entry in agencies:
            if entry.get("OrganId") == to and entry.get("Active"):
                return to, str(entry.get("OrganName", ""))
        raise Problem.field(422, "To", "not an active agency of the axis directory")

    async def officer_send(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.officer_token, "officer")
        body = await _json(request)
        violations = self._send_body.violations(body)
        if violations:
            raise Problem(422, "Invalid request", "invalid send request", [v.as_problem_error() for v in violations])
        agencies = (await self._agencies()).get("agencies", [])
        sender = self._own_code(agencies, body.get("FromMaXa"))
        to = self._recipient(agencies, body)
        spec = PackageSpec.new(sender, f"UBND tỉnh {self.ctx.config.province_code}", [to], next(self._numbers),
                               notation="UBND-VP", subject=body["Subject"], contract=self.contract)
        if self.ctx.has("bad-document-id-format"):  # the defect: a home-made DocumentId
            spec = replace(spec, document_id=f"{sender}-{spec.promulgation_date.replace('/', '')}-{spec.number}")
        record = {"DocumentId": spec.document_id, "From": sender, "To": to[0], "StatusCode": None, "statuses": []}
        self.sent[spec.document_id] = record
        if not self.ctx.has("sent-document-lost"):  # the defect: queued, never sent
            try:
                package = await self._signed_package(spec)
                answer = await self._http.client.post(self.national + "/axis/edxml", content=package,
                                                      headers={"Content-Type": XML})
                record["StatusCode"] = read_status(answer.content, self.contract).code
            except (httpx.HTTPError, EdxmlError) as exc:
                record["error"] = str(exc)[:300]
        return json_response({"DocumentId": spec.document_id, "From": sender, "To": to[0]}, status=202)

    async def _signed_package(self, spec: PackageSpec) -> bytes:
        """The package signed with the officer's enrolled credential (the one results are signed with), the
        enveloped signature where the contract puts it (``x-edxml.signature``, after the TraceHeaderList)."""
        if self.ctx.signer is None or self.ctx.has("edxml-unsigned"):  # the defect: no DigitalSignature
            return build_package(spec, self.contract)
        package = build_package(replace(spec, signature=EDXML_SIGNATURE_PLACEHOLDER), self.contract)
        signed = await sign_edxml(package, await self.ctx.signer.credential())
        if self.ctx.has("edxml-modified-after-signing"):  # the defect: a header field edited after signing
            signed = signed.replace(b"</Subject>", " (đã sửa)</Subject>".encode(), 1)
        return signed

    async def receive_status(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.forward_token, "national axis")
        try:
            message = read_status(await request.body(), self.contract)
        except EdxmlError as exc:
            return self._answer("", "", "02", exc.reason, http_status=400)
        received = self.received.get(message.document_id)
        if message.code == "13" and received is not None:
            if not self.ctx.has("ignores-recall"):  # the defect: a recall is recorded and never answered
                self._answer_recall(received)
            return Response(status_code=204)
        record = self.sent.get(message.document_id)
        if record is not None:
            record["statuses"].append(message.code)
            record["StatusCode"] = message.code
        return Response(status_code=204)


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Problem.field(400, "(body)", "not valid JSON") from None
