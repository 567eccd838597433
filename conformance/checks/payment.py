"""Online payment through the national payment platform (INIT, callback, MaXacThuc, amounts, idempotency)."""

from __future__ import annotations
