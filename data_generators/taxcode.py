"""Enterprise tax codes (mã số thuế, MST): the check digit, validation and generation.

A 10-digit MST is N1..N9 plus a check digit N10 (Circular 105/2020/TT-BTC and its predecessors): with the
weights 31, 29, 23, 19, 17, 13, 7, 5, 3 over N1..N9, ``N10 = 10 - (sum mod 11)``; a sum whose result is 10
cannot carry a valid check digit, so such a 9-digit prefix is never issued. Branches add ``-NNN`` (001–999).
Checked against published codes (Vinamilk 0300588569, Viettel 0100109106, FPT 0101248141, Vietcombank
0100112437, Hòa Phát 0900189284, Masan 0303576603, Vingroup 0101245486) in the tests.

Example::

    make_tax_code(random.Random(1))       # a valid 10-digit code
    is_valid_tax_code("0100109106")       # True
"""

from __future__ import annotations

import random

__all__ = ["WEIGHTS", "is_valid_tax_code", "make_tax_code", "tax_code_check_digit"]

WEIGHTS: tuple[int, ...] = (31, 29, 23, 19, 17, 13, 7, 5, 3)


def tax_code_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no digit can be valid (the formula gives 10)."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError(f"expected 9 digits, got {first_nine!r}")
    check = 10 - sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True)) % 11
    return None if check == 10 else check


def is_valid_tax_code(code: str) -> bool:
    """True for a 10-digit code with the right check digit, optionally followed by a branch ``-NNN``/``NNN``."""
    main, branch = code[:10], code[10:].removeprefix("-")
    if len(main) != 10 or not main.isdigit():
        return False
    if branch and (len(branch) != 3 or not branch.isdigit() or branch == "000"):
        return False
    return tax_code_check_digit(main[:9]) == int(main[9])


def make_tax_code(rng: random.Random, province_prefix: str | None = None) -> str:
    """A valid 10-digit code; ``province_prefix`` gives its first two digits (e.g. "01" Hà Nội, "03" HCMC)."""
    while True:
        prefix = province_prefix or f"{rng.randrange(1, 100):02d}"
        first_nine = f"{prefix}{rng.randrange(10_000_000):07d}"
        check = tax_code_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"
