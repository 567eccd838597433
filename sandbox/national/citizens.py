"""Test citizens of the national identity provider, synthesised from a CCCD and the run's seed.

In the sandbox any structurally valid CCCD signs in (``login_hint``). Its profile must be stable (the same
CCCD and seed give the same person in every run and every process) and consistent with the number: the
birth year and gender come from the CCCD, the birth-registration province from its first three digits.
The permanent residence is a real current commune (Decision 19/2025/QĐ-TTg) of one of the provinces the
counterpart serves, so a relying party can check commune codes against the official list.

Profiles are composed from Faker vi_VN vocabulary pools drawn once per process and seed
(:func:`~haicap.data_generators.pools.faker_pools`), with a ``random.Random`` seeded from the seed and the CCCD,
and cached: Faker itself is never called per citizen (that cost ~0.5 ms a citizen, a login storm signs in
thousands of distinct citizens).

Example::

    registry = CitizenRegistry(seed=0, province_codes=["01"])
    registry.get("001090123456").claims()["HoVaTen"]
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from haicap.data_generators.identity import cccd_birth_info
from haicap.data_generators.pools import FakerPools, faker_pools
from haicap.data_generators.units import admin_units

__all__ = ["Citizen", "CitizenRegistry"]

_SUB_NAMESPACE = uuid.UUID("6f1c2d1e-8f5b-4b7a-9d0e-2a1b3c4d5e6f")
_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Citizen:
    """One test citizen; :meth:`claims` is what userinfo returns."""

    sub: str
    so_dinh_danh: str
    ho_va_ten: str
    female: bool
    birth_date: date
    phone: str
    email: str
    birth_province: str
    home_town: str
    residence: dict[str, str]
    #: the composed claims (filled on first use; every call of :meth:`claims` returns a fresh copy)
    _claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def claims(self) -> dict[str, Any]:
        """The UserInfo claims, a copy the caller may change (composed once per citizen: two calls a sign-on)."""
        if not self._claims:
            self._claims.update(self._compose())
        c = self._claims
        return {**c, "ThuongTru": dict(c["ThuongTru"]), "NoiOHienNay": dict(c["NoiOHienNay"]), "loAs": [*c["loAs"]]}

    def _compose(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "LoaiTaiKhoan": "1",
            "SoDinhDanh": self.so_dinh_danh,
            "HoVaTen": self.ho_va_ten,
            "ThuDienTu": self.email,
            "SoDienThoai": self.phone,
            "GioiTinh": "2" if self.female else "1",
            "NgayThangNamSinh": self.birth_date.strftime("%Y%m%d"),
            "NoiDangKyKhaiSinh": self.birth_province,
            "QueQuan": self.home_town,
            "ThuongTru": dict(self.residence),
            "NoiOHienNay": dict(self.residence),
            "QuocTich": "VN",
            "TechID": hashlib.sha256(f"techid:{self.sub}".encode()).hexdigest()[:32],
            "loAs": ["LoA1", "LoA2"],
            "IAL": "2",
        }


def _ascii(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii() and c.isalnum()).lower()


class CitizenRegistry:
    """Deterministic test citizens: ``get(cccd)`` returns None for a number that is not a valid CCCD."""

    def __init__(self, seed: int, province_codes: Sequence[str]) -> None:
        self.seed = seed
        units = admin_units()
        codes = [c for c in province_codes if c in {p.code for p in units.provinces()}] or ["01"]
        self._communes = [c for code in codes for c in units.communes(code)]
        self._province_names = {p.code: p.name for p in units.provinces()}
        self._legacy_names = {p.code: p.name for p in units.legacy_provinces()}
        self._cache: OrderedDict[str, Citizen] = OrderedDict()
        self._pools: FakerPools | None = None

    def _vocabulary(self) -> FakerPools:
        if self._pools is None:  # drawn on first use (importing Faker is slow; most processes never need it)
            self._pools = faker_pools(self.seed)
        return self._pools

    def get(self, cccd: str) -> Citizen | None:
        cached = self._cache.get(cccd)
        if cached is not None:
            self._cache.move_to_end(cccd)
            return cached
        info = cccd_birth_info(cccd)
        if info is None:
            return None
        citizen = self._build(cccd, *info)
        self._cache[cccd] = citizen
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return citizen

    def _build(self, cccd: str, old_province: str, female: bool, year: int) -> Citizen:
        digest = hashlib.sha256(f"{self.seed}:{cccd}".encode()).digest()
        rng = random.Random(digest)
        pools = self._vocabulary()
        family = pools.family[rng.randrange(len(pools.family))]
        middles = pools.middle_female if female else pools.middle_male
        givens = pools.given_female if female else pools.given_male
        name = f"{family} {middles[rng.randrange(len(middles))]} {givens[rng.randrange(len(givens))]}"
        month = rng.randint(1, 12)
        day = rng.randint(1, 28)
        commune = rng.choice(self._communes)
        street = f"Số {rng.randrange(1, 300)} {pools.streets[rng.randrange(len(pools.streets))]}"
        province_name = self._province_names.get(commune.province_code, "")
        full = f"{street}, {commune.name}, {province_name}"
        birth_province = self._legacy_names.get(old_province[1:], "")
        phone = "0" + rng.choice("3579") + f"{rng.randrange(100_000_000):08d}"
        email = f"{_ascii(name)}{rng.randrange(1000)}@example.vn"
        return Citizen(
            sub=str(uuid.uuid5(_SUB_NAMESPACE, f"{self.seed}:{cccd}")),
            so_dinh_danh=cccd,
            ho_va_ten=name,
            female=female,
            birth_date=date(year, month, day),
            phone=phone,
            email=email,
            birth_province=birth_province,
            home_town=birth_province,
            residence={
                "MaTinh": commune.province_code,
                "TenTinh": province_name,
                "MaXa": commune.code,
                "TenXa": commune.name,
                "ChiTiet": street,
                "DiaChiDayDu": full,
            },
        )
