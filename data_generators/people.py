"""Citizens and enterprises as the national identity provider describes them (UserInfo claims).

A citizen has a Faker vi_VN name, a CCCD consistent with the birth date and gender (birth-registration
province from the old 63 codes, biased to the old provinces merged into the citizen's current one), a mobile
number, an e-mail and a permanent address in a real current commune. An enterprise account carries the
enterprise's tax code (valid check digit), name and registered address plus its legal representative's
identity, which is how the national portal models enterprise accounts. Record keys are the contract's
(``idp.schema.json#/$defs/UserInfo``) in contract order; records are composed from :mod:`pools` with a seeded
``random.Random``, never by calling Faker per record.

Example::

    people = PersonFactory(seed=7, province_code="01")
    rng = random.Random(7)
    people.citizen(rng)["SoDinhDanh"]      # '001085012345'-like, consistent with NgayThangNamSinh
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from haicap.contract_registry import default_registry
from haicap.data_generators.contact import ascii_fold, email_for, make_mobile
from haicap.data_generators.identity import OLD_PROVINCE_CODES, cccd_birth_info
from haicap.data_generators.pools import FakerPools, faker_pools
from haicap.data_generators.taxcode import make_tax_code
from haicap.data_generators.units import admin_units

__all__ = ["USERINFO_REF", "PersonFactory"]

USERINFO_REF = "idp.schema.json#/$defs/UserInfo"
ADDRESS_REF = "idp.schema.json#/$defs/DiaChi"
#: Ages are counted from the cutover day so that the same seed gives the same people on any day.
REFERENCE_DAY = date(2025, 7, 1)
_CENTURY_DIGIT = {1800: 8, 1900: 0, 2000: 2, 2100: 4}


class PersonFactory:
    """Composes citizens and enterprises for one seed, optionally within one province."""

    def __init__(self, seed: int, province_code: str | None = None, pools: FakerPools | None = None) -> None:
        units = admin_units()
        self.province_code = province_code
        self.pools = pools or faker_pools(seed)
        communes = units.communes(province_code)  # validates the province code
        provinces = {p.code: p.name for p in units.provinces()}
        #: (code, name, kind, province code, province name); phường are weighted x3 (denser population).
        self.communes = tuple(
            (c.code, c.name, c.kind, c.province_code, provinces[c.province_code]) for c in communes
        )
        self._weighted = tuple(c for c in self.communes for _ in range(3 if c[2] == "Phường" else 1))
        legacy_names = {p.code: p.name for p in units.legacy_provinces()}
        self._old_province_names = {f"{code:0>3}": legacy_names[code] for code in legacy_names}
        merges = units.province_merges()
        self._home_old = {new: tuple(f"{o:0>3}" for o in olds) for new, olds in merges.items()}
        registry = default_registry()
        self.userinfo_fields = tuple(registry.property_names(USERINFO_REF))
        self.address_fields = tuple(registry.property_names(ADDRESS_REF))
        self._reference_ordinal = REFERENCE_DAY.toordinal()

    # -- parts -------------------------------------------------------------------------------------
    def commune(self, rng: random.Random) -> tuple[str, str, str, str, str]:
        return self._weighted[int(rng.random() * len(self._weighted))]

    def address(self, rng: random.Random, commune: tuple[str, str, str, str, str] | None = None) -> dict[str, Any]:
        code, name, kind, province_code, province_name = commune or self.commune(rng)
        if kind == "Phường":
            street = self.pools.streets[int(rng.random() * len(self.pools.streets))]
            detail = f"Số {rng.randrange(1, 300)} {street}"
        else:
            detail = f"{'Thôn' if rng.random() < 0.6 else 'Xóm'} {rng.randrange(1, 20)}"
        values = {
            "MaTinh": province_code,
            "TenTinh": province_name,
            "MaXa": code,
            "TenXa": name,
            "ChiTiet": detail,
            "DiaChiDayDu": f"{detail}, {name}, {province_name}",
        }
        return {k: values[k] for k in self.address_fields if k in values}

    def name(self, rng: random.Random, female: bool) -> str:
        p = self.pools
        family = p.family[int(rng.random() * len(p.family))]
        if female:
            middle = p.middle_female[int(rng.random() * len(p.middle_female))]
            given = p.given_female[int(rng.random() * len(p.given_female))]
        else:
            middle = p.middle_male[int(rng.random() * len(p.middle_male))]
            given = p.given_male[int(rng.random() * len(p.given_male))]
        return f"{family} {middle} {given}"

    def birth_date(self, rng: random.Random, min_age: int = 18, max_age: int = 80) -> date:
        return date.fromordinal(self._reference_ordinal - rng.randrange(min_age * 365 + 1, max_age * 365))

    def cccd(self, rng: random.Random, birth: date, female: bool, commune_province: str) -> str:
        # Most people live in (one of the old provinces of) the province where their birth was registered.
        if rng.random() < 0.8:
            olds = self._home_old[commune_province]
            old = olds[int(rng.random() * len(olds))]
        else:
            old = OLD_PROVINCE_CODES[int(rng.random() * len(OLD_PROVINCE_CODES))]
        digit = _CENTURY_DIGIT[birth.year // 100 * 100] + female
        return f"{old}{digit}{birth.year % 100:02d}{rng.randrange(1_000_000):06d}"

    # -- records -----------------------------------------------------------------------------------
    def citizen(self, rng: random.Random) -> dict[str, Any]:
        """A citizen's UserInfo claims (LoaiTaiKhoan 1)."""
        female = rng.random() < 0.5
        name = self.name(rng, female)
        birth = self.birth_date(rng)
        home = self.address(rng)
        number = self.cccd(rng, birth, female, home["MaTinh"])
        values: dict[str, Any] = {
            "sub": number,
            "LoaiTaiKhoan": "1",
            "SoDinhDanh": number,
            "HoVaTen": name,
            "ThuDienTu": email_for(rng, ascii_fold(name)),
            "SoDienThoai": make_mobile(rng),
            "GioiTinh": "2" if female else "1",
            "NgayThangNamSinh": f"{birth:%Y%m%d}",
            "NoiDangKyKhaiSinh": self._old_province_names[number[:3]],
            "ThuongTru": home,
            "NoiOHienNay": home,
            "QuocTich": "VN",
        }
        return {k: values[k] for k in self.userinfo_fields if k in values}

    def enterprise(self, rng: random.Random) -> dict[str, Any]:
        """An enterprise account's UserInfo (LoaiTaiKhoan 2): the representative's identity plus the enterprise.

        ``ThuongTru`` carries the enterprise's registered head-office address [haicap assumption].
        """
        person = self.citizen(rng)
        head_office = self.address(rng)
        p = self.pools
        suffix = p.company_suffixes[int(rng.random() * len(p.company_suffixes))]
        trade = p.streets[int(rng.random() * len(p.streets))]
        family = p.family[int(rng.random() * len(p.family))]
        name = f"{suffix} {family} {trade}"
        tax_code = make_tax_code(rng, _tax_prefix(head_office["MaTinh"]))
        values = dict(person)
        values.update(
            LoaiTaiKhoan="2",
            MaSoThue=tax_code,
            MaSoDoanhNghiep=tax_code,
            TenDoanhNghiep=name,
            ThuongTru=head_office,
            ThuDienTu=f"lienhe@{ascii_fold(trade).replace(' ', '')}{tax_code[-4:]}.vn",
        )
        return {k: values[k] for k in self.userinfo_fields if k in values}

    def citizen_for_cccd(self, number: str) -> dict[str, Any]:
        """A deterministic profile for any structurally valid CCCD (the sandbox's "every CCCD is a citizen").

        Gender and birth year come from the number; the rest from a generator seeded with it.
        """
        info = cccd_birth_info(number)
        if info is None:
            raise ValueError(f"{number!r} is not a structurally valid CCCD")
        _province, female, year = info
        rng = random.Random(number)
        birth = date(year, 1, 1).toordinal() + rng.randrange(365)
        record = self.citizen(rng)
        name = self.name(rng, female)
        record.update(
            sub=number, SoDinhDanh=number, HoVaTen=name, GioiTinh="2" if female else "1",
            NgayThangNamSinh=f"{date.fromordinal(birth):%Y%m%d}", ThuDienTu=email_for(rng, ascii_fold(name)),
            NoiDangKyKhaiSinh=self._old_province_names[number[:3]],
        )  # fmt: skip
        return {k: record[k] for k in self.userinfo_fields if k in record}


def _tax_prefix(province_code: str) -> str:
    """First two digits of an MST follow the issuing tax department; HCMC issues 03, others their code [I]."""
    return "03" if province_code == "79" else province_code
