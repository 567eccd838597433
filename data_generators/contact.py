"""Contact details: Vietnamese mobile numbers and e-mail addresses derived from a person's name.

Mobile numbers use the carriers' current 10-digit prefixes (Viettel 032–039, 086, 096–098; VinaPhone
081–085, 088, 091, 094; MobiFone 070, 076–079, 089, 090, 093; Vietnamobile 052, 056, 058, 092;
Gmobile 059, 099), which all match the contracts' SoDienThoai pattern.
"""

from __future__ import annotations

import random
import unicodedata

__all__ = ["EMAIL_DOMAINS", "MOBILE_PREFIXES", "ascii_fold", "email_for", "make_mobile"]

MOBILE_PREFIXES: tuple[str, ...] = (
    "032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098",
    "081", "082", "083", "084", "085", "088", "091", "094",
    "070", "076", "077", "078", "079", "089", "090", "093",
    "052", "056", "058", "092", "059", "099",
)  # fmt: skip
EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com.vn", "outlook.com", "vnpt.vn", "fpt.vn", "hotmail.com")


def make_mobile(rng: random.Random) -> str:
    return f"{MOBILE_PREFIXES[int(rng.random() * len(MOBILE_PREFIXES))]}{rng.randrange(10_000_000):07d}"


def ascii_fold(text: str) -> str:
    """'Nguyễn Văn Đức' -> 'nguyen van duc' (đ/Đ have no decomposition, so they are mapped by hand)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def email_for(rng: random.Random, folded_name: str) -> str:
    """An address like 'duc.nguyenvan87@gmail.com' from an ASCII-folded 'nguyen van duc'."""
    parts = folded_name.split()
    local = f"{parts[-1]}.{''.join(parts[:-1])}{rng.randrange(100)}"
    return f"{local}@{EMAIL_DOMAINS[int(rng.random() * len(EMAIL_DOMAINS))]}"
