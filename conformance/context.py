"""What a check receives: the target, clients for both sides, seeded data and a per-run cache.

A check never builds its own HTTP clients or data: it asks the context, so every check of a run shares one
seed (reproducible data), one set of clients and one redaction list, and expensive set-up (a signed-in
citizen, a dossier walked through every state) is done once per process with :meth:`CheckContext.shared`.

Officer actions of every check go through ``ctx.province.officer_action(...)``; underneath, the province client
hands them to the run's back office (:attr:`CheckContext.back_office`: the officer API, a guided operator or a
vendor's plugin, from the profile), so a check never knows which. Dossiers come in through
:attr:`CheckContext.submission_channel` (the citizen API, or haicap forwarding them as the national portal).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from haicap.conformance.registry import CheckError, CheckFailure
from haicap.counterpart_client import CounterpartClient
from haicap.target import Target

__all__ = ["PROBE_TIMEOUT_S", "CheckContext"]

T = TypeVar("T")
#: how long :meth:`CheckContext.unreachable` waits for any answer before calling a system unreachable
PROBE_TIMEOUT_S = 5.0


class CheckContext:
    def __init__(self, target: Target, seed: int = 0, *, console: Callable[[str], None] | None = None) -> None:
        self.target = target
        #: prints one line where the person running haicap sees it (pytest's capture bypassed by the plugin)
        self.console: Callable[[str], None] = console or (lambda line: print(line, flush=True))
        self.seed = seed
        self.national = CounterpartClient(target.national_url, target.control_token)
        self._shared: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._province: Any = None
        self._channel: Any = None

    @property
    def province(self) -> Any:
        """The province client (citizen, officer and callback sides), created on first use."""
        if self._province is None:
            from haicap.province_client import ProvinceClient

            province = ProvinceClient(
                self.target.province_url, officer_token=self.target.officer_token, seed=self.seed,
                allowed_hosts=frozenset(self.target.allowed_hosts),
            )
            province.back_office = self._make_back_office(province)
            self._province = province
        return self._province

    @property
    def back_office(self) -> Any:
        """How officer actions are done (haicap.back_office.BackOffice), or None when the profile has none."""
        return self.province.back_office

    @property
    def submission_channel(self) -> Any:
        """How dossiers come in (haicap.submission_channel.SubmissionChannel), chosen from the capabilities."""
        if self._channel is None:
            from haicap.submission_channel import choose_channel

            self._channel = choose_channel(self.target.capabilities, self.province, self.national,
                                           self.target.province_code)
        return self._channel

    def _make_back_office(self, province: Any) -> Any:
        from pathlib import Path

        from haicap.back_office import BackOfficeContext, CitizenView, build_back_office

        settings = self.target.back_office
        view = CitizenView(province, self.national)
        province.on_submitted = view.remember
        context = BackOfficeContext(
            province_url=self.target.province_url, officer_token=self.target.officer_token,
            options=settings.options, run_dir=Path(self.target.run_dir) if self.target.run_dir else Path.cwd(),
            console=self.console, citizen_view=view, allowed_hosts=frozenset(self.target.allowed_hosts),
        )
        return build_back_office(settings, context, province)

    def ensure_reachable(self) -> None:
        """Raise CheckError with the cause if the province did not answer its health probe (probed once)."""
        cause = self.shared("reachability", self._probe)
        if cause:
            raise CheckError(cause)

    def _probe(self) -> str:
        cause = self.unreachable(self.target.province_url)
        return f"the province is unreachable: {cause}" if cause else ""

    def unreachable(self, base_url: str, path: str = "/health") -> str:
        """Why ``GET {base_url}{path}`` got no HTTP answer within :data:`PROBE_TIMEOUT_S` (any status is an
        answer), or "" when it answered: the one bounded probe before a check talks to a system it was told of."""
        from haicap.http_port import HttpxPort, TargetUnreachable

        port = HttpxPort(base_url, timeout=PROBE_TIMEOUT_S, allowed_hosts=frozenset(self.target.allowed_hosts))
        try:
            port.request("GET", path)
        except TargetUnreachable as exc:
            return f"{exc} (no answer within {PROBE_TIMEOUT_S:g} s)" if "Timeout" in str(exc) else str(exc)
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
