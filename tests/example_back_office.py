"""An example back-office plugin, as a vendor would ship one for its own back office.

It drives the reference province's officer API through its own HTTP calls (httpx), to show the whole extension
point: a class built with a :class:`~haicap.back_office.BackOfficeContext`, with ``kind``, ``act`` and ``dossier``.
A real adapter would call the vendor's back office instead. Named in a profile as::

    back_office: {kind: plugin, plugin: "example_back_office:ExampleBackOffice"}

or registered as an entry point of group ``haicap.back_office``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from haicap.back_office import ActionOutcome, BackOfficeContext


class ExampleBackOffice:
    kind = "plugin"

    def __init__(self, context: BackOfficeContext) -> None:
        if not context.officer_token:
            raise ValueError("this example needs credentials.officer_token_env in the profile")
        self.client = httpx.Client(base_url=context.province_url, timeout=15.0,
                                   headers={"Authorization": f"Bearer {context.officer_token}"})
        self.actions: list[tuple[str, str]] = []  # what it was asked to do, for tests

    def act(self, ma_ho_so: str, action: str, *, expect_from: frozenset[str], expect_to: str,
            fields: Mapping[str, Any]) -> ActionOutcome:
        self.actions.append((ma_ho_so, action))
        answer = self.client.post(f"/officer/dossiers/{ma_ho_so}/actions", json={"action": action, **fields})
        body = answer.json() if answer.headers.get("content-type", "").endswith("json") else None
        if answer.status_code == 200 and isinstance(body, dict) and str(body.get("TrangThaiHoSo")) != expect_to:
            return ActionOutcome(502, dossier=body, message=f"the back office left {ma_ho_so} in state "
                                                           f"{body.get('TrangThaiHoSo')}, not {expect_to}")
        return ActionOutcome(answer.status_code, dossier=body if isinstance(body, dict) else None,
                             message="" if answer.status_code == 200 else answer.text[:300])

    def dossier(self, ma_ho_so: str) -> ActionOutcome:
        answer = self.client.get(f"/officer/dossiers/{ma_ho_so}")
        body = answer.json() if answer.status_code == 200 else None
        return ActionOutcome(answer.status_code, dossier=body, message="" if body else answer.text[:300])
