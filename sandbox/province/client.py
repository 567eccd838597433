"""A small synchronous client of a province's API, for tests, scenarios and checks.

Example::

    with ProvinceClient(sandbox.province_url) as province:
        token = province.login("001203012345")          # SSO through the national counterpart
        dossier = province.submit(token, {"MaTTHC": "1.001193", "MaXa": "00226", "TrichYeuHoSo": "..."})
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["ProvinceClient"]


class ProvinceClient:
    def __init__(self, base_url: str, *, officer_token: str | None = None, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.officer_token = officer_token
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ProvinceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login_response(self, cccd: str) -> httpx.Response:
        """Run the whole sign-in (province → national authorize → province callback); the callback's answer."""
        with httpx.Client(timeout=self.http.timeout, follow_redirects=True) as browser:
            return browser.get(self.base_url + "/auth/login", params={"login_hint": cccd})

    def login(self, cccd: str) -> str:
        response = self.login_response(cccd)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def submit(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/api/v1/dossiers", json=body, headers=self.bearer(token))
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def dossier(self, token: str, ma_ho_so: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/dossiers/{ma_ho_so}", headers=self.bearer(token))
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def act(self, ma_ho_so: str, action: str, **fields: Any) -> httpx.Response:
        """An officer action (needs ``officer_token``)."""
        if self.officer_token is None:
            raise ValueError("officer_token is required for officer actions")
        return self.http.post(
            f"/officer/dossiers/{ma_ho_so}/actions",
            json={"action": action, **fields},
            headers=self.bearer(self.officer_token),
        )
