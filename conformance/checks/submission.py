"""Online submission: contract conformance, input validation, MaHoSo, commune codes, durability, coverage."""

from __future__ import annotations
