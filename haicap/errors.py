"""User-facing errors: anything raised as HaicapError is printed as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["HaicapError", "did_you_mean"]


class HaicapError(Exception):
    """A problem the user can fix (bad input, unbindable port, unreachable target).

    The CLI prints ``str(error)`` on one line and exits with ``exit_code``.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean a, b?)`` naming the closest of ``choices`` to a mistyped ``word`` (difflib), or ``""``.

    >>> did_you_mean("skips-nonce-chek", ["skips-nonce-check", "late-sync"])
    ' (did you mean skips-nonce-check?)'
    """
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
