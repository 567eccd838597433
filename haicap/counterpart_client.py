"""Client of the national counterpart's control and ledger APIs (haicap extensions, not national contract).

Checks, the self-test and the post-surge integrity check use it to make the national side misbehave on purpose
(bad tokens, tampered callbacks, outages, forwarded dossiers) and to read what the province sent it.
Every response is checked: a non-2xx or non-JSON answer raises :class:`CounterpartError` naming the call.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx

from haicap.errors import HaicapError

__all__ = ["CounterpartClient", "CounterpartError"]


class CounterpartError(HaicapError):
    """The counterpart's control or ledger API did not answer as expected."""


class CounterpartClient:
    def __init__(self, base_url: str, control_token: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {control_token}"}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CounterpartClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The JSON answer; None for an empty one, or for 404 when ``missing_ok``."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CounterpartError(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 300:
            detail = response.text[:300]
            raise CounterpartError(f"{method} {self.base_url}{path}: HTTP {response.status_code}: {detail}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CounterpartError(f"{method} {self.base_url}{path}: answer is not JSON") from None

    # -- control ---------------------------------------------------------------------------------
    def next_token_defect(self, defect: str, count: int = 1, login_hint: str | None = None,
                          seconds: int | None = None) -> Any:
        """The next ``count`` ID tokens carry ``defect``: only those of citizen ``login_hint`` (a CCCD) when given,
        else those of whoever signs in next; ``seconds`` for exp-passed-by / iat-ahead-by. Returns the answer
        ``{"defect", "pending", ["login_hint"], ["seconds"]}``."""
        body: dict[str, Any] = {"defect": defect, "count": count}
        if login_hint is not None:
            body["login_hint"] = login_hint
        if seconds is not None:
            body["seconds"] = seconds
        return self._call("POST", "/_control/idp/next-token", json=body)

    def replay_callback(self, ma_tham_chieu: str) -> Any:
        return self._call("POST", f"/_control/payment/{ma_tham_chieu}/replay")

    def tamper_callback(self, ma_tham_chieu: str, defect: str) -> Any:
        return self._call("POST", f"/_control/payment/{ma_tham_chieu}/tamper", json={"defect": defect})

    def forward_dossier(self, **overrides: Any) -> Any:
        return self._call("POST", "/_control/forward", json=overrides)

    def start_outage(self, services: tuple[str, ...] = ("sync",), seconds: float | None = None) -> None:
        body: dict[str, Any] = {"services": list(services)}
        if seconds is not None:
            body["seconds"] = seconds
        self._call("POST", "/_control/outage", json=body)

    def end_outage(self) -> None:
        self._call("DELETE", "/_control/outage")

    def expire_sync_sessions(self) -> int:
        """Forget every sync session (each province must log in again); the number of sessions dropped."""
        answer = self._call("POST", "/_control/sync/expire-sessions")
        return int((answer or {}).get("expired", 0))

    # -- ledger ----------------------------------------------------------------------------------
    def synced_dossier(self, ma_ho_so: str) -> dict[str, Any] | None:
        """The latest item, status history and progress the counterpart recorded for a dossier, or None."""
        return self._call("GET", f"/_ledger/sync/dossiers/{ma_ho_so}", missing_ok=True)  # type: ignore[no-any-return]

    def synced_dossiers(self, madonvi: str | None = None, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every dossier's latest item (paged through)."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": page_size, "offset": offset}
            if madonvi:
                params["madonvi"] = madonvi
            page = self._call("GET", "/_ledger/sync/dossiers", params=params)
            items = page.get("items", page) if isinstance(page, dict) else page
            out.extend(items)
            if len(items) < page_size:
                return out
            offset += page_size

    def sync_rejections(self) -> list[dict[str, Any]]:
        page = self._call("GET", "/_ledger/sync/rejections")
        return page.get("items", page) if isinstance(page, dict) else page  # type: ignore[no-any-return]

    def sync_stats(self) -> dict[str, Any]:
        return self._call("GET", "/_ledger/sync/stats")  # type: ignore[no-any-return]

    def payment(self, ma_tham_chieu: str) -> dict[str, Any]:
        return self._call("GET", f"/_ledger/payments/{ma_tham_chieu}")  # type: ignore[no-any-return]

    def forwarded(self) -> list[dict[str, Any]]:
        page = self._call("GET", "/_ledger/forwarded")
        return page.get("items", page) if isinstance(page, dict) else page  # type: ignore[no-any-return]

    def idp_events(self) -> list[dict[str, Any]]:
        page = self._call("GET", "/_ledger/idp/events")
        return page.get("items", page) if isinstance(page, dict) else page  # type: ignore[no-any-return]

    def citizen(self, so_dinh_danh: str) -> dict[str, Any] | None:
        """The claims the counterpart's identity provider gives this CCCD, or None when it is not a test citizen."""
        return self._call("GET", f"/_ledger/idp/citizens/{so_dinh_danh}", missing_ok=True)  # type: ignore[no-any-return]

    def wait_for_status(self, ma_ho_so: str, status: str, within: float, poll: float = 0.05) -> dict[str, Any] | None:
        """Poll the ledger until the dossier's history contains ``status`` or ``within`` seconds pass."""
        if not math.isfinite(within) or within < 0:
            raise HaicapError(f"waiting for {ma_ho_so}: the wait must be a finite number of seconds, not {within}")
        deadline = time.monotonic() + within
        while True:
            record = self.synced_dossier(ma_ho_so)
            if record and status in _statuses(record):
                return record
            if time.monotonic() >= deadline:
                return record
            time.sleep(poll)


def _statuses(record: dict[str, Any]) -> list[str]:
    history = record.get("history") or []
    return [str(h.get("TrangThaiHoSo")) for h in history]
