"""Pools of Faker vi_VN values, drawn once per seed, that fast record composers index into.

Calling Faker per record costs tens of microseconds per field; drawing a few hundred values once and then
choosing among them with a seeded ``random.Random`` keeps Faker's vocabulary and frequencies while making
bulk generation cheap. Faker's vi_VN person formats put the given name first (Western order), so names are
composed here from its parts in Vietnamese order: family, middle, given. Pools are plain tuples: picklable
and cheap to rebuild in a worker process from the seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["FakerPools", "faker_pools"]


@dataclass(frozen=True, slots=True)
class FakerPools:
    family: tuple[str, ...]
    middle_male: tuple[str, ...]
    middle_female: tuple[str, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    streets: tuple[str, ...]
    company_suffixes: tuple[str, ...]

    @classmethod
    def from_faker(cls, seed: int, size: int = 512) -> FakerPools:
        from faker import Faker

        fake = Faker("vi_VN")
        fake.seed_instance(seed)
        middles = [fake.middle_name() for _ in range(size)]
        return cls(
            family=tuple(fake.last_name() for _ in range(size)),
            middle_male=tuple(m for m in middles if m != "Thị"),
            # about half of Vietnamese women's names carry the middle name Thị
            middle_female=tuple(m if i % 2 else "Thị" for i, m in enumerate(middles) if m != "Văn"),
            given_male=tuple(fake.first_name_male() for _ in range(size)),
            given_female=tuple(fake.first_name_female() for _ in range(size)),
            streets=tuple(fake.street_name() for _ in range(size)),
            company_suffixes=tuple(fake.company_suffix() for _ in range(size // 4)),
        )


@functools.lru_cache(maxsize=8)
def faker_pools(seed: int) -> FakerPools:
    """The pools for a seed (cached per process)."""
    return FakerPools.from_faker(seed)
