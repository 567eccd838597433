"""The outage switch: national services that currently answer 503, for how long.

Real national services went down or degraded around the cutover (VNeID the morning of 30 June 2025, errors
and slowness 1–15 July); a province must queue and retry through that. The control API switches a service
(``sync``, ``payment``, ``idp``) off, for a number of seconds or until switched on again.

The deadlines live in :class:`~.shared_cells.SharedCells` (a memory-mapped file shared by every worker of the
counterpart), so an outage started through the control API on one worker is seen by all on their next request;
they are ``CLOCK_MONOTONIC`` times, which every process of the machine shares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from haicap.sandbox.national.shared_cells import OUTAGE_CELLS, SharedCells

__all__ = ["SERVICES", "Outages"]

SERVICES = ("sync", "payment", "idp")
_CELL = dict(zip(SERVICES, OUTAGE_CELLS, strict=True))  # the deadlines, in the shared file
_UP = 0.0


class Outages:
    """Which services are down. ``is_down`` is called on every request: one read of shared memory."""

    def __init__(self, cells: SharedCells | None = None) -> None:
        self._cells = cells if cells is not None else SharedCells()

    def _until(self, service: str) -> float | None:
        """The monotonic deadline of an outage of ``service`` still running (math.inf: until cleared), else None."""
        cell = _CELL.get(service)
        if cell is None:
            return None
        until = self._cells.get_float(cell)
        return until if until != _UP and time.monotonic() < until else None

    def is_down(self, service: str) -> bool:
        return self._until(service) is not None

    def retry_after(self, service: str) -> int:
        until = self._until(service)
        if until is None or until == math.inf:
            return 1
        return max(1, math.ceil(until - time.monotonic()))

    def start(self, services: Iterable[str], seconds: float | None) -> None:
        deadline = math.inf if seconds is None else time.monotonic() + seconds
        for service in services:
            if service in _CELL:
                self._cells.set_float(_CELL[service], deadline)

    def clear(self) -> None:
        for cell in _CELL.values():
            self._cells.set_float(cell, _UP)

    def state(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for service in SERVICES:
            until = self._until(service)
            if until is not None:
                out[service] = None if until == math.inf else round(until - time.monotonic(), 3)
        return out
