"""Dossiers for the procedure catalogue, in the three shapes the contracts define, fast and streaming.

- ``submission``: what a signed-in citizen posts to a province (``dossier.schema.json#/$defs/DossierSubmission``);
- ``forwarded``: what the national portal forwards to a province, national MaHoSo (``…/ForwardedDossier``);
- ``sync``: a dossier as the province synchronises it to the national portal, with the commune agency's MaHoSo,
  fees, status and dates (``sync.schema.json#/$defs/DongBoHoSoMCItem``).

Keys and their order come from the contract (``property_names``); a field the contract drops disappears from the
output, a required field this module cannot fill is an error at start-up. Records are composed from the Faker
pools with one seeded ``random.Random`` stream, so a seed reproduces the same records byte for byte, and
nothing is kept between records except per-day MaHoSo counters (memory is flat in the count). Dates start on
the cutover day (1 July 2025) and advance one day per ``per_commune_per_day`` dossiers per commune (DOMAIN.md:
≈ 37 a commune a day); times fall in office hours. Nested constant parts (fee lists) are shared between
records: treat records as read-only.

Example::

    gen = DossierGenerator(seed=1, province_code="01", shape="sync")
    for record in gen.records(1000):
        ...
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.data_generators.agencies import NATIONAL_PORTAL_AGENCY, commune_agency_code
from haicap.data_generators.contact import EMAIL_DOMAINS, MOBILE_PREFIXES, ascii_fold
from haicap.data_generators.identity import OLD_PROVINCE_CODES
from haicap.data_generators.people import REFERENCE_DAY, PersonFactory
from haicap.data_generators.procedures import load_procedures
from haicap.data_generators.taxcode import make_tax_code
from haicap.errors import HaicapError

__all__ = ["SHAPES", "DossierGenerator"]

SHAPES: dict[str, str] = {
    "submission": "dossier.schema.json#/$defs/DossierSubmission",
    "forwarded": "dossier.schema.json#/$defs/ForwardedDossier",
    "sync": "sync.schema.json#/$defs/DongBoHoSoMCItem",
}
#: TrangThaiHoSo mix of a synchronised backlog [haicap assumption]: mostly in progress or returned.
_STATUS_WEIGHTS = {"1": 10, "2": 15, "3": 3, "4": 30, "5": 5, "6": 5, "7": 2, "8": 1, "9": 9, "10": 20}
#: KenhThucHien mix of Hà Nội 1 Jul – 23 Sep 2025 (DOMAIN.md): 59.71% online, 40.05% in person, 0.24% post.
_CHANNEL_PER_10000 = (("2", 5971), ("1", 4005), ("3", 24))
_PROCESSING_DAYS = 3
#: Applicant (name, e-mail local part) pairs per gender drawn once from the Faker pools.
_APPLICANT_TABLE = 4096
_DOC_KEYS = (
    "TepDinhKemId", "TenTepDinhKem", "IsDeleted", "MaThanhPhanHoSo", "DuongDanTaiTepTin", "DuocSoHoa", "DuocTaiSuDung",
)  # fmt: skip


def _email_local(name: str) -> str:
    parts = ascii_fold(name).split()
    return f"{parts[-1]}.{''.join(parts[:-1])}"


def _table(pairs: list[tuple[str, int]] | tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    return tuple(value for value, weight in pairs for _ in range(weight))


def _item_ref(ref: str, registry: ContractRegistry, field: str) -> str:
    """The ``$ref`` of the item schema of an array property (TaiLieuNop, DanhSachLePhi...)."""
    schema = registry.schema(ref)["properties"].get(field, {})
    item = schema.get("items", {}).get("$ref")
    if item is None:
        return ""
    filename = ref.partition("#")[0]
    return f"{filename}{item}" if item.startswith("#") else item


class DossierGenerator:
    """Streams dossiers of one shape for one seed, optionally within one province."""

    def __init__(
        self,
        seed: int,
        province_code: str | None = None,
        shape: str = "submission",
        *,
        people: PersonFactory | None = None,
        start: date = REFERENCE_DAY,
        per_commune_per_day: int = 40,
        registry: ContractRegistry | None = None,
    ) -> None:
        if shape not in SHAPES:
            raise HaicapError(f"unknown dossier shape {shape!r}; valid shapes: {', '.join(SHAPES)}")
        registry = registry or default_registry()
        self.seed = seed
        self.shape = shape
        self.ref = SHAPES[shape]
        self.people = people or PersonFactory(seed, province_code)
        self.fields = tuple(registry.property_names(self.ref))
        self.required = tuple(registry.required_names(self.ref))
        self.procedures = load_procedures(registry)
        self._agency = {c[0]: commune_agency_code(c[0]) for c in self.people.communes}
        self._docs_fields = self._item_fields(registry, "TaiLieuNop")
        self._fee_fields = self._item_fields(registry, "DanhSachLePhi")
        self._flag_is_bool = self._docs_flag_type(registry)
        self._fees = {p["MaTTHC"]: self._fee_list(p) for p in self.procedures}
        self._status_table = _table(list(_STATUS_WEIGHTS.items()))
        self._channel_table = _table(_CHANNEL_PER_10000)
        communes = len(self.people.communes)
        self.per_day = max(1, per_commune_per_day * communes)
        if shape == "forwarded":  # one national agency: its daily sequence is the limit
            self.per_day = min(self.per_day, 9999)
        self.start = start
        self._prepare_fast_tables()
        self._check_required()

    # -- set-up helpers ----------------------------------------------------------------------------
    def _item_fields(self, registry: ContractRegistry, field: str) -> tuple[str, ...]:
        if field not in self.fields:
            return ()
        item = _item_ref(self.ref, registry, field)
        return tuple(registry.property_names(item)) if item else ()

    def _docs_flag_type(self, registry: ContractRegistry) -> bool:
        item = _item_ref(self.ref, registry, "TaiLieuNop") if "TaiLieuNop" in self.fields else ""
        if not item:
            return True
        return registry.schema(item).get("properties", {}).get("DuocSoHoa", {}).get("type") == "boolean"

    def _fee_list(self, procedure: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: fee[k] for k in self._fee_fields if k in fee} for fee in procedure.get("DanhSachLePhi", [])]

    def _check_required(self) -> None:
        """Compose probe records (a throwaway stream) and name any required field the generator leaves out."""
        probe = random.Random(0)
        days = [f"{self.start + timedelta(days=k):%Y%m%d}" for k in range(_PROCESSING_DAYS + 30)]
        filled: set[str] = set(self.fields)
        for _ in range(4 * len(self.procedures)):
            filled &= set(self.compose(probe, days, {}))
        missing = [f for f in self.required if f not in filled]
        if missing:
            raise HaicapError(f"{self.ref} requires {', '.join(missing)}, which the dossier generator cannot fill")

    # -- streaming ---------------------------------------------------------------------------------
    def records(self, count: int, rng: random.Random | None = None) -> Iterator[dict[str, Any]]:
        """``count`` records; the same seed (and no ``rng``) always yields the same sequence."""
        rng = rng or random.Random(self.seed)
        counters: dict[str, int] = {}
        day_index = -1
        days: list[str] = []
        for i in range(count):
            if i // self.per_day != day_index:
                day_index = i // self.per_day
                first = self.start + timedelta(days=day_index)
                days = [f"{first + timedelta(days=k):%Y%m%d}" for k in range(_PROCESSING_DAYS + 30)]
                counters.clear()
            yield self.compose(rng, days, counters)

    def _prepare_fast_tables(self) -> None:
        """Tables that turn each per-record choice into one ``rng.random()`` and an index (set-up, once)."""
        people = self.people
        table_rng = random.Random(f"{self.seed}-applicants")
        self._applicants = tuple(
            tuple(
                (name, _email_local(name))
                for name in (people.name(table_rng, female) for _ in range(_APPLICANT_TABLE))
            )
            for female in (False, True)
        )
        self._old_provinces = {pc: olds for pc, olds in people._home_old.items()}
        self._proc = tuple(
            (
                p,
                p.get("LoaiDoiTuong", "1"),
                "Hộ kinh doanh" if p.get("MaLinhVuc") == "DKKD" else "Công ty TNHH",
                tuple(c["MaThanhPhanHoSo"] for c in p.get("ThanhPhanHoSo", [])),
            )
            for p in self.procedures
        )
        self._docs_direct = self._docs_fields == _DOC_KEYS

    def compose(self, rng: random.Random, days: list[str], counters: dict[str, int]) -> dict[str, Any]:
        """One record. ``days[0]`` is the submission day (yyyyMMdd), later entries the following days."""
        random_ = rng.random
        procedure, subject, company_kind, components = self._proc[int(random_() * len(self._proc))]
        weighted = self.people._weighted
        commune = weighted[int(random_() * len(weighted))]
        code = commune[0]
        female = random_() < 0.5
        applicants = self._applicants[female]
        name, local = applicants[int(random_() * _APPLICANT_TABLE)]
        # age 18-80 on the cutover day; the century digit and year digits must agree with the birth year
        year = 2007 - int(random_() * 62)
        olds = self._old_provinces[commune[3]] if random_() < 0.8 else OLD_PROVINCE_CODES
        old = olds[int(random_() * len(olds))]
        number = f"{old}{(0 if year < 2000 else 2) + female}{year % 100:02d}{int(random_() * 1_000_000):06d}"
        identities = [{"LoaiDinhDanh": "1", "SoDinhDanh": number}]
        owner = name
        if subject == "2":
            tax_code = make_tax_code(rng, "03" if commune[3] == "79" else commune[3])
            identities.append({"LoaiDinhDanh": "3", "SoDinhDanh": tax_code})
            owner = f"{company_kind} {name}"
        channel = "2" if self.shape != "sync" else self._channel_table[int(random_() * 10000)]
        minute = 420 + int(random_() * 600)  # 07:00-17:00
        submitted = f"{days[0]}{minute // 60:02d}{minute % 60:02d}{int(random_() * 60):02d}"
        prefix = MOBILE_PREFIXES[int(random_() * len(MOBILE_PREFIXES))]
        values: dict[str, Any] = {
            "MaTTHC": procedure["MaTTHC"],
            "TenTTHC": procedure["TenTTHC"],
            "MaXa": code,
            "ChuHoSo": owner,
            "DinhDanhCHS": identities,
            "SoDienThoai": f"{prefix}{int(random_() * 10_000_000):07d}",
            "Email": f"{local}{int(random_() * 100)}@{EMAIL_DOMAINS[int(random_() * len(EMAIL_DOMAINS))]}",
            "TrichYeuHoSo": f"{procedure['TenTTHC']} - {owner}",
            "KenhThucHien": channel,
            "LoaiDoiTuong": subject,
            "NgayNopHoSo": submitted,
        }
        if self._docs_fields:
            values["TaiLieuNop"] = self._documents(random_, components)
        if self.shape == "forwarded":
            sequence = counters[""] = counters.get("", 0) + 1
            values["MaHoSo"] = f"{NATIONAL_PORTAL_AGENCY}-{days[0][2:]}-{sequence:04d}"
            values["DanhSachLePhi"] = self._fees[procedure["MaTTHC"]]
        elif self.shape == "sync":
            self._sync_values(rng, values, procedure, days, counters, submitted)
        return {k: values[k] for k in self.fields if k in values}

    def _documents(self, random_: Any, components: tuple[str, ...]) -> list[dict[str, Any]]:
        yes, no = (True, False) if self._flag_is_bool else ("1", "0")
        docs = []
        for component in components:
            file_id = f"{int(random_() * 0xFFFFFFFFFFFF):012x}"
            doc = {
                "TepDinhKemId": file_id,
                "TenTepDinhKem": f"{component}_{file_id[:6]}.pdf",
                "IsDeleted": False,
                "MaThanhPhanHoSo": component,
                "DuongDanTaiTepTin": f"/files/{file_id}.pdf",
                "DuocSoHoa": yes if random_() < 0.7 else no,
                "DuocTaiSuDung": yes if random_() < 0.2 else no,
            }
            docs.append(doc if self._docs_direct else {k: doc[k] for k in self._docs_fields if k in doc})
        return docs

    def _sync_values(
        self,
        rng: random.Random,
        values: dict[str, Any],
        procedure: dict[str, Any],
        days: list[str],
        counters: dict[str, int],
        submitted: str,
    ) -> None:
        code = values["MaXa"]
        agency = self._agency[code]
        sequence = counters[code] = counters.get(code, 0) + 1
        if sequence > 9999:  # more than a commune's daily sequence allows: file it under the next agency day
            raise HaicapError(f"more than 9999 dossiers a day for commune {code}; lower per_commune_per_day")
        ma_ho_so = f"{agency}-{days[0][2:]}-{sequence:04d}"
        status = self._status_table[int(rng.random() * len(self._status_table))]
        fee = procedure.get("PhiPhaiNop", 0)
        paid = values["KenhThucHien"] == "2" and status not in ("1", "3", "6")
        paid_online = "2" if not fee else ("1" if paid else "0")
        values.update(
            MaHoSo=ma_ho_so,
            SoBienNhan=ma_ho_so,
            MaLinhVuc=procedure.get("MaLinhVuc"),
            TenLinhVuc=procedure.get("TenLinhVuc"),
            NgayTiepNhan=submitted,
            NgayHenTra=f"{days[_PROCESSING_DAYS]}170000",
            TrangThaiHoSo=status,
            NoiNopHoSo="Cổng Dịch vụ công" if values["KenhThucHien"] == "2" else "Bộ phận Một cửa",
            DonViXuLy=agency,
            SoGiayToChuHoSo=values["DinhDanhCHS"][0]["SoDinhDanh"],
            TaiKhoanDuocXacThucVoiVNeID="1" if values["KenhThucHien"] == "2" else "0",
            DuocThanhToanTrucTuyen=paid_online,
            DanhSachLePhi=self._fees[procedure["MaTTHC"]],
        )
        if status == "3":
            values["NgayTuChoi"] = f"{days[1]}090000"
        elif status in ("9", "10"):
            values["NgayKetThucXuLy"] = f"{days[2]}160000"
            if status == "10":
                values["NgayTra"] = f"{days[_PROCESSING_DAYS]}100000"
        for key in ("MaLinhVuc", "TenLinhVuc"):
            if values[key] is None:
                del values[key]
