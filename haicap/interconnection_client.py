"""Client of the counterpart's civil-status interconnection side (haicap control and ledger extensions).

The checks make the interconnection portal deliver an interconnected dossier to the province, make a component's
agency issue its result, and read back what the province sent: the dossier it took in and its status pushes, in
arrival order, each with the contract violations the counterpart found (contracts/civil-status.openapi.yaml).
It rides on :class:`~haicap.counterpart_client.CounterpartClient` (same control token, same error reporting).

Example::

    lt = InterconnectionClient(ctx.national)
    sent = lt.send_dossier("1")
    lt.complete(sent["soHoSoLT"], "bhyt")
    lt.wait(sent["soHoSoLT"], lambda r: len(r["pushes"]) >= 7, within=2.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from haicap.counterpart_client import CounterpartClient
from haicap.errors import HaicapError

__all__ = ["InterconnectionClient"]


class InterconnectionClient:
    def __init__(self, counterpart: CounterpartClient) -> None:
        self.counterpart = counterpart

    def send_dossier(self, group: str, *, province_code: str | None = None,
                     overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The portal delivers one dossier of ``group`` ("1" birth, "2" death); the record (what was sent, the
        province's answer)."""
        body: dict[str, Any] = {"group": group}
        if province_code:
            body["province_code"] = province_code
        if overrides:
            body["overrides"] = overrides
        return self.counterpart._call("POST", "/_control/civil/send", json=body)  # type: ignore[no-any-return]

    def complete(self, so_ho_so_lt: str, component: str) -> dict[str, Any]:
        """The agency of ``component`` issues its result to the province; the delivery (result, answer)."""
        return self.counterpart._call("POST", "/_control/civil/complete",  # type: ignore[no-any-return]
                                      json={"soHoSoLT": so_ho_so_lt, "component": component})

    def record(self, so_ho_so_lt: str) -> dict[str, Any] | None:
        """Everything recorded for one interconnected dossier: sent, received, pushes, results."""
        return self.counterpart._call("GET", f"/_ledger/civil/dossiers/{so_ho_so_lt}",  # type: ignore[no-any-return]
                                      missing_ok=True)

    def unmatched(self) -> list[dict[str, Any]]:
        """What the province sent naming no delivered dossier (a wrong soHoSoLT or id), in arrival order: each with
        its ``kind`` ("received" list items, "pushes")."""
        listing = self.counterpart._call("GET", "/_ledger/civil/dossiers")
        return list((listing or {}).get("unmatched") or []) if isinstance(listing, dict) else []

    def wait(self, so_ho_so_lt: str, done: Callable[[dict[str, Any]], bool], within: float,
             poll: float = 0.03) -> dict[str, Any] | None:
        """Poll the record until ``done(record)`` or ``within`` seconds pass; the last record seen."""
        if not math.isfinite(within) or within < 0:
            raise HaicapError(f"waiting for {so_ho_so_lt}: the wait must be a finite number of seconds")
        deadline = time.monotonic() + within
        while True:
            record = self.record(so_ho_so_lt)
            if record is not None and done(record):
                return record
            if time.monotonic() >= deadline:
                return record
            time.sleep(poll)
