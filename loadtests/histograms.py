"""Latency histograms that merge across Locust workers without losing percentile accuracy.

Choice: HdrHistogram (``hdrh``) with 3 significant digits over 1 µs … 1 h, recorded in microseconds. Adding
two HDR histograms is exact (bucket counts add), so the master's percentiles are those of all samples with a
relative error ≤ 0.1 %; a histogram travels as HDR's compressed base64 form (hundreds of bytes, whatever the
sample count), which keeps worker reports small where exact sample arrays would grow with the run.

Example::

    h = Latency()
    h.record_ms(12.5)
    other = Latency.decode(h.encode())
    h.merge(other); h.percentile_ms(95)
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

__all__ = ["Latency"]

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_DIGITS = 3


class Latency:
    """One mergeable latency distribution (milliseconds in, milliseconds out)."""

    __slots__ = ("_h",)

    def __init__(self, hist: HdrHistogram | None = None) -> None:
        self._h = hist or HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def record_ms(self, ms: float) -> None:
        self._h.record_value(min(max(int(ms * 1000), _LOWEST_US), _HIGHEST_US))

    def merge(self, other: Latency) -> None:
        if other.count:
            self._h.add(other._h)

    def percentile_ms(self, p: float) -> float | None:
        if not self.count:
            return None
        return round(self._h.get_value_at_percentile(p) / 1000, 3)

    def max_ms(self) -> float | None:
        return round(self._h.get_max_value() / 1000, 3) if self.count else None

    def summary(self) -> dict[str, float | None]:
        return {"p50": self.percentile_ms(50), "p95": self.percentile_ms(95), "p99": self.percentile_ms(99),
                "max": self.max_ms()}

    def encode(self) -> str:
        return self._h.encode().decode("ascii") if self.count else ""

    @classmethod
    def decode(cls, encoded: str) -> Latency:
        if not encoded:
            return cls()
        out = cls()
        out._h.decode_and_add(encoded)
        return out
