"""Client of the counterpart's document axis (control and ledger, haicap extensions) and of the province's
officer-side axis calls (haicap officer API, ``contracts/province-dossier.openapi.yaml``).

The checks deliver edXML to the province through the axis (``deliver``), change agency codes in the directory
(``rename_agency``), read what the axis recorded (``delivered`` / ``sent``) with bounded polls, and ask the
province's officer to send a document or move a received one on. Every answer is evidence: a non-2xx control
or ledger answer raises :class:`~haicap.counterpart_client.CounterpartError` naming the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from haicap.counterpart_client import CounterpartClient, CounterpartError

__all__ = ["AxisClient", "OfficerAxis"]


class AxisClient:
    """The axis part of the counterpart's control and ledger APIs."""

    def __init__(self, national: CounterpartClient) -> None:
        self._national = national

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._national._call(method, path, **kwargs)

    def deliver(self, kind: str = "valid", *, document_id: str | None = None, to_ma_xa: str | None = None
                ) -> dict[str, Any]:
        """Deliver a package (``valid``, ``malformed:<name>``, ``accept:<name>``) or the one of ``document_id``
        again; the answer ``{DocumentId, kind, http_status, StatusCode, Description, …}``."""
        body: dict[str, Any] = {"DocumentId": document_id} if document_id else {"kind": kind}
        if to_ma_xa:
            body["ToMaXa"] = to_ma_xa
        return self._call("POST", "/_control/axis/deliver", json=body)  # type: ignore[no-any-return]

    def recall(self, document_id: str) -> dict[str, Any]:
        """The sender recalls a delivered document (13 to the province); the province's HTTP answer."""
        return self._call("POST", "/_control/axis/recall", json={"DocumentId": document_id})  # type: ignore[no-any-return]

    def rename_agency(self, organ_id: str, new_organ_id: str) -> dict[str, Any]:
        return self._call("POST", "/_control/axis/agency-code",  # type: ignore[no-any-return]
                          json={"OrganId": organ_id, "NewOrganId": new_organ_id})

    def directory(self) -> dict[str, Any]:
        return self._call("GET", "/_ledger/axis/directory")  # type: ignore[no-any-return]

    def delivered(self, document_id: str) -> dict[str, Any]:
        return self._call("GET", "/_ledger/axis/delivered", params={"DocumentId": document_id})  # type: ignore[no-any-return]

    def sent(self, document_id: str) -> dict[str, Any] | None:
        return self._call("GET", "/_ledger/axis/sent", params={"DocumentId": document_id},  # type: ignore[no-any-return]
                          missing_ok=True)

    def sent_all(self) -> dict[str, Any]:
        return self._call("GET", "/_ledger/axis/sent")  # type: ignore[no-any-return]

    def wait_delivered(self, document_id: str, done: Callable[[list[str]], bool], within: float,
                       poll: float = 0.05) -> dict[str, Any]:
        """Poll until ``done(status codes the province sent)`` or ``within`` seconds pass; the last record."""
        deadline = time.monotonic() + within
        while True:
            record = self.delivered(document_id)
            if done([s["StatusCode"] for s in record.get("statuses", [])]) or time.monotonic() >= deadline:
                return record
            time.sleep(poll)

    def wait_sent(self, document_id: str, done: Callable[[dict[str, Any] | None], bool], within: float,
                  poll: float = 0.05) -> dict[str, Any] | None:
        deadline = time.monotonic() + within
        while True:
            record = self.sent(document_id)
            if done(record) or time.monotonic() >= deadline:
                return record
            time.sleep(poll)


class OfficerAxis:
    """The province's officer-side axis calls (haicap officer API): send a document, move one on."""

    def __init__(self, province_url: str, officer_token: str | None, *, timeout: float = 15.0) -> None:
        if not officer_token:
            raise CounterpartError("no officer token: the profile does not declare the officer API")
        self.base_url = province_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  headers={"Authorization": f"Bearer {officer_token}"})

    def close(self) -> None:
        self._http.close()

    def send(self, subject: str, *, to_ma_xa: str | None = None, to: str | None = None,
             from_ma_xa: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"Subject": subject}
        for key, value in (("ToMaXa", to_ma_xa), ("To", to), ("FromMaXa", from_ma_xa)):
            if value:
                body[key] = value
        return self._http.post("/officer/axis/documents", json=body)

    def set_status(self, document_id: str, code: str) -> httpx.Response:
        return self._http.post("/officer/axis/status", json={"DocumentId": document_id, "StatusCode": code})
