"""Latency histograms that merge across Locust workers without losing percentile accuracy.

Choice: HdrHistogram (``hdrh``) with 3 significant digits over 1 µs … 1 h, recorded in microseconds. Adding
two HDR histograms is exact (bucket counts add), so the master's percentiles are those of all samples with a
relative error ≤ 0.1 %; a histogram travels as HDR's compressed base64 form (hundreds of bytes, whatever the
sample count), which keeps worker reports small where exact sample arrays would grow with the run.

Percentiles are **nearest-rank**: the p-th percentile of n samples is the smallest sample with at least p % of
the samples at or below it, the sample of rank ``ceil(p / 100 × n)`` (:func:`nearest_rank`). So with 158 samples
of 100 ms and 2 of 5 s, p99 is 5 s (rank 159), never a value that 1 % of the samples exceed: a p99 gate judges
the slowest 1 %. (``hdrh``'s own ``get_value_at_percentile`` rounds the rank, ``int(p / 100 × n + 0.5)``, which
is one rank too low there.) The value reported is the upper end of that sample's HDR bucket (≤ 0.1 % above it).

Example::

    h = Latency()
    h.record_ms(12.5)
    other = Latency.decode(h.encode())
    h.merge(other); h.percentile_ms(95)
"""

from __future__ import annotations

from fractions import Fraction

from hdrh.histogram import HdrHistogram

__all__ = ["Latency", "nearest_rank"]

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_DIGITS = 3


def nearest_rank(p: float, n: int) -> int:
    """1-based rank of the ``p``-th percentile of ``n`` samples: ``ceil(p / 100 × n)``, at least 1, at most n.

    Exact for decimal ``p`` (95, 99.9): ``0.95 × 20`` is 19, not the 19.000000000000004 floats would give.
    """
    if n <= 0:
        raise ValueError("nearest_rank needs at least one sample")
    exact = Fraction(str(p)) * n / 100
    return min(max(-(-exact.numerator // exact.denominator), 1), n)


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
        count = self.count
        # hdrh finds the value at rank int(q / 100 × count + 0.5); q = 100 × rank / count makes that the rank
        return round(self._h.get_value_at_percentile(100 * nearest_rank(p, count) / count) / 1000, 3)

    def max_ms(self) -> float | None:
        return round(self._h.get_max_value() / 1000, 3) if self.count else None

    def summary(self) -> dict[str, float | None]:
        return {"p50": self.percentile_ms(50), "p95": self.percentile_ms(95), "p99": self.percentile_ms(99),
                "max": self.max_ms()}

    def recorded(self) -> list[tuple[float, int]]:
        """Every recorded HDR bucket as (value in seconds, count), in increasing order."""
        if not self.count:
            return []
        return [(it.value_iterated_to / 1_000_000, int(it.count_at_value_iterated_to))
                for it in self._h.get_recorded_iterator()]

    def encode(self) -> str:
        return self._h.encode().decode("ascii") if self.count else ""

    @classmethod
    def decode(cls, encoded: str) -> Latency:
        if not encoded:
            return cls()
        out = cls()
        out._h.decode_and_add(encoded)
        return out
