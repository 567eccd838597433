"""The outage switch: national services that currently answer 503, for how long.

Real national services went down or degraded around the cutover (VNeID the morning of 30 June 2025, errors
and slowness 1–15 July); a province must queue and retry through that. The control API switches a service
(``sync``, ``payment``, ``idp``) off, for a number of seconds or until switched on again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

__all__ = ["SERVICES", "Outages"]

SERVICES = ("sync", "payment", "idp")


class Outages:
    """Which services are down. ``is_down`` is called on every request, so it is a dict lookup."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # service -> monotonic deadline (math.inf: until cleared)

    def is_down(self, service: str) -> bool:
        until = self._until.get(service)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._until[service]
        return False

    def retry_after(self, service: str) -> int:
        until = self._until.get(service)
        if until is None or until == math.inf:
            return 1
        return max(1, math.ceil(until - time.monotonic()))

    def start(self, services: Iterable[str], seconds: float | None) -> None:
        deadline = math.inf if seconds is None else time.monotonic() + seconds
        for service in services:
            self._until[service] = deadline

    def clear(self) -> None:
        self._until.clear()

    def state(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for service in SERVICES:
            if self.is_down(service):
                until = self._until[service]
                out[service] = None if until == math.inf else round(until - time.monotonic(), 3)
        return out
