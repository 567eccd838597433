"""Vietnamese citizen identity numbers (CCCD): structure, validation and generation.

A CCCD is 12 digits: the 3-digit code of the (old, 63-province) province of birth registration, one
gender/century digit (0/1 male/female born 1900-1999, 2/3 2000-2099, 4/5 2100-2199, 6/7 2200-2299,
8/9 1800-1899), the last two digits of the birth year, and six random digits. There is no checksum.
"""

from __future__ import annotations

import random
from datetime import date

__all__ = ["OLD_PROVINCE_CODES", "cccd_birth_info", "is_valid_cccd", "make_cccd"]

#: The 63 old province codes as used in CCCD (3 digits, '001' Hà Nội … '096' Cà Mau).
OLD_PROVINCE_CODES: tuple[str, ...] = tuple(
    f"{c:03d}"
    for c in (
        1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37, 38,
        40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77, 79, 80,
        82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
    )
)
_CENTURY_BASE = {0: 1900, 2: 2000, 4: 2100, 6: 2200, 8: 1800}


def make_cccd(rng: random.Random, birth_date: date, female: bool, province_code: str | None = None) -> str:
    """A CCCD consistent with the birth date and gender."""
    province = province_code or rng.choice(OLD_PROVINCE_CODES)
    base = {v: k for k, v in _CENTURY_BASE.items()}[birth_date.year // 100 * 100]
    digit = base + (1 if female else 0)
    return f"{province}{digit}{birth_date.year % 100:02d}{rng.randrange(1_000_000):06d}"


def cccd_birth_info(number: str) -> tuple[str, bool, int] | None:
    """(old province code, female, birth year) for a structurally valid CCCD, else None."""
    if len(number) != 12 or not number.isdigit() or number[:3] not in OLD_PROVINCE_CODES:
        return None
    digit = int(number[3])
    year = _CENTURY_BASE[digit - digit % 2] + int(number[4:6])
    return number[:3], bool(digit % 2), year


def is_valid_cccd(number: str, birth_year: int | None = None) -> bool:
    info = cccd_birth_info(number)
    return info is not None and (birth_year is None or info[2] == birth_year)
