"""What a check receives: the target, clients for both sides, seeded data and a per-run cache.

A check never builds its own HTTP clients or data: it asks the context, so every check of a run shares one
seed (reproducible data), one set of clients and one redaction list, and expensive set-up (a signed-in
citizen, a dossier walked through every state) is done once per process with :meth:`CheckContext.shared`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from haicap.conformance.registry import CheckError, CheckFailure
from haicap.counterpart_client import CounterpartClient
from haicap.target import Target

__all__ = ["CheckContext"]

T = TypeVar("T")


class CheckContext:
    def __init__(self, target: Target, seed: int = 0) -> None:
        self.target = target
        self.seed = seed
        self.national = CounterpartClient(target.national_url, target.control_token)
        self._shared: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._province: Any = None

    @property
    def province(self) -> Any:
        """The province client (citizen, officer and callback sides), created on first use."""
        if self._province is None:
            from haicap.province_client import ProvinceClient

            self._province = ProvinceClient(
                self.target.province_url, officer_token=self.target.officer_token, seed=self.seed,
                allowed_hosts=frozenset(self.target.allowed_hosts),
            )
        return self._province

    def ensure_reachable(self) -> None:
        """Raise CheckError with the cause if the province did not answer its health probe (probed once)."""
        cause = self.shared("reachability", self._probe)
        if cause:
            raise CheckError(cause)

    def _probe(self) -> str:
        from haicap.http_port import HttpxPort, TargetUnreachable

        port = HttpxPort(self.target.province_url, timeout=5.0)
        try:
            port.request("GET", "/health")
        except TargetUnreachable as exc:
            return f"the province is unreachable: {exc}"
        finally:
            port.close()
        return ""

    def rng(self, purpose: str) -> random.Random:
        """A random generator reproducible from the run seed and a purpose label."""
        return random.Random(f"{self.seed}:{purpose}")

    @staticmethod
    def require_evidence(observed: int, needed: int, what: str, *, reproduce: str | None = None) -> None:
        """No vacuous pass: a check that saw fewer than ``needed`` of ``what`` reached no verdict.

        Raises :class:`CheckError` ("observed 0 of 3 progress items") so the record is ``error`` (could not run),
        never ``passed`` on nothing. Call it before judging, with the evidence the check's rule needs.
        """
        if observed < needed:
            raise CheckError(f"observed {observed} of {needed} {what}: too little to judge", reproduce=reproduce)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """Compute ``factory()`` once per process and reuse it across checks (failures are not cached).

        One lock per key, so a factory may itself call ``shared`` for another key (a journey needing data).
        """
        with self._lock:
            if key in self._shared:
                return self._shared[key]  # type: ignore[no-any-return]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._shared:
                self._shared[key] = factory()
            return self._shared[key]  # type: ignore[no-any-return]

    @staticmethod
    def fail(message: str, *, expected: Any = None, actual: Any = None, reproduce: str | None = None) -> None:
        raise CheckFailure(message, expected=expected, actual=actual, reproduce=reproduce)

    def expect(self, condition: bool, message: str, *, expected: Any = None, actual: Any = None,
               reproduce: str | None = None) -> None:
        if not condition:
            self.fail(message, expected=expected, actual=actual, reproduce=reproduce)

    def close(self) -> None:
        self.national.close()
        if self._province is not None:
            self._province.close()
