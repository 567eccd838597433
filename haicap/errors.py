"""User-facing errors: anything raised as HaicapError is printed as one line, without a traceback."""

from __future__ import annotations

__all__ = ["HaicapError"]


class HaicapError(Exception):
    """A problem the user can fix (bad input, unbindable port, unreachable target).

    The CLI prints ``str(error)`` on one line and exits with ``exit_code``.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
