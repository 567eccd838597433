"""Keep secrets out of everything haicap writes: messages, records, report files.

Secrets of a run (client secret, control and officer tokens, payment key, sync password) are known by value;
any occurrence in a string is replaced by ``[REDACTED]``. Bearer tokens and MaXacThuc values of captured
requests are masked by pattern as well, since a province's own tokens are not known in advance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[REDACTED]"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r'(?i)("?(?:access_token|id_token|refresh_token|client_secret|password|session|MaXacThuc)"?\s*[:=]\s*"?)'
               r'[A-Za-z0-9._~+/=-]{8,}'),
)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret that contains another is replaced whole
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
        return value

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def files(self, folder: Path) -> int:
        """Redact every text file below ``folder`` in place; returns how many files changed."""
        changed = 0
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            try:
                original = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            redacted = self.text(original)
            if redacted != original:
                path.write_text(redacted, encoding="utf-8")
                changed += 1
        return changed
