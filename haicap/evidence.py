"""A failure that carries its evidence: what was expected, what came back, and how to reproduce it.

Both a conformance check (CheckFailure) and a scenario step (StepFailed) fail this way, so reports show the
same three facts whichever raised it (the schemathesis / OpenID conformance suite style).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvidenceFailure"]


class EvidenceFailure(AssertionError):
    def __init__(self, message: str, *, expected: Any = None, actual: Any = None, reproduce: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual
        self.reproduce = reproduce
