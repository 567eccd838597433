"""Dossiers for the procedure catalogue, in the three shapes the contracts define, fast and streaming.

- ``submission``: what a signed-in citizen posts to a province (``dossier.schema.json#/$defs/DossierSubmission``);
- ``forwarded``: what the national portal forwards to a province, national MaHoSo (``…/ForwardedDossier``);
- ``sync``: a dossier as the province synchronises it to the national portal, with the commune agency's MaHoSo,
  fees, status and dates (``sync.schema.json#/$defs/DongBoHoSoMCItem``).

Keys and their order come from the contract (``property_names``); a field the contract drops disappears from the
output, a required field this module cannot fill is an error at start-up. What a sender sends (``submission``,
``forwarded``) varies, seeded, in which *optional* fields it carries: each record takes one of
:data:`OPTIONAL_PATTERNS` presence patterns — every optional field, none (the contract's required fields only),
or a subset drawn from the seed — so receivers are exercised with both full and minimal input. Sync items keep
every field they have a value for (their optional fields follow the dossier's state, not a sender's choice).
Dates start on the cutover day (1 July 2025) and advance one day per ``per_commune_per_day`` dossiers per commune
(DOMAIN.md: ≈ 37 a commune a day); times fall in office hours. Names come from the Faker pools (a per-seed table
of applicants).

How it is fast (≥ 50,000 records/s written; benchmarks/bench_data.py measures it): at start-up every *variant*
of a record (procedure × status × channel: the choices that decide which fields exist and their constant values)
is described once, with :class:`~.templates.Slot` markers for the per-record parts, and compiled to a bytes JSON
line template in contract order (:mod:`.templates`). Records are then made in batches of 4,096: one vectorised
numpy draw per per-record quantity (numbers come out as rows of ASCII digits, never formatted one by one), then
one ``bytes %`` per record. :meth:`jsonl_batches` yields the lines; :meth:`records` parses those same lines, so
the dict and JSONL outputs cannot disagree. A seed reproduces the same bytes (numpy's PCG64 ``Generator``; its
streams are stable in practice but numpy does not promise them across releases); nothing is kept between batches
except the day's MaHoSo counters (memory is flat in the count).

Example::

    gen = DossierGenerator(seed=1, province_code="01", shape="sync")
    for record in gen.records(1000):
        ...
    for count, lines in gen.jsonl_batches(1_000_000):   # whole \\n-terminated JSON lines
        fh.write(lines)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.data_generators.agencies import NATIONAL_PORTAL_AGENCY, commune_agency_code
from haicap.data_generators.contact import EMAIL_DOMAINS, MOBILE_PREFIXES, ascii_fold
from haicap.data_generators.identity import OLD_PROVINCE_CODES
from haicap.data_generators.people import REFERENCE_DAY, PersonFactory
from haicap.data_generators.procedures import load_procedures
from haicap.data_generators.taxcode import WEIGHTS
from haicap.data_generators.templates import Slot, Text, compile_template, escaped
from haicap.errors import HaicapError

__all__ = ["OPTIONAL_PATTERNS", "SHAPES", "VARIED_SHAPES", "DossierGenerator"]

SHAPES: dict[str, str] = {
    "submission": "dossier.schema.json#/$defs/DossierSubmission",
    "forwarded": "dossier.schema.json#/$defs/ForwardedDossier",
    "sync": "sync.schema.json#/$defs/DongBoHoSoMCItem",
}
#: Shapes whose records vary which optional fields they carry (what a sender sends).
VARIED_SHAPES = frozenset({"submission", "forwarded"})
#: Presence patterns of the optional fields: 0 all of them, 1 none, the others a seeded subset each.
OPTIONAL_PATTERNS = 4
#: TrangThaiHoSo mix of a synchronised backlog [haicap assumption]: mostly in progress or returned.
_STATUS_WEIGHTS = {"1": 10, "2": 15, "3": 3, "4": 30, "5": 5, "6": 5, "7": 2, "8": 1, "9": 9, "10": 20}
#: KenhThucHien mix of Hà Nội 1 Jul – 23 Sep 2025 (DOMAIN.md): 59.71% online, 40.05% in person, 0.24% post.
_CHANNEL_PER_10000 = {"2": 5971, "1": 4005, "3": 24}
_PROCESSING_DAYS = 3
#: Applicant (name, e-mail local part) pairs per gender drawn once from the Faker pools.
_APPLICANT_TABLE = 4096
#: Records per batch: large enough to amortise the numpy calls, small enough to keep memory flat (~3 MB).
_BATCH = 4096
_NAME = Slot("name")
_CCCD = Slot("cccd")
_SUBMITTED = Text(Slot("day0"), Slot("time"))
_DECIMAL = np.frombuffer(b"0123456789", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: Birth years 2007, 2006, ... 1946: aged 18 to 80 on the cutover day.
_BIRTH_YEARS = 62
_TAX_BODY_WEIGHTS = np.array(WEIGHTS[2:], dtype=np.int64)


def _email_local(name: str) -> str:
    parts = ascii_fold(name).split()
    return f"{parts[-1]}.{''.join(parts[:-1])}"


def _item_ref(ref: str, registry: ContractRegistry, field: str) -> str:
    """The ``$ref`` of the item schema of an array property (TaiLieuNop, DanhSachLePhi...)."""
    schema = registry.schema(ref)["properties"].get(field, {})
    item = schema.get("items", {}).get("$ref")
    if item is None:
        return ""
    filename = ref.partition("#")[0]
    return f"{filename}{item}" if item.startswith("#") else item


def _objects(values: list[bytes]) -> np.ndarray:
    """A numpy object array, so that fancy indexing picks ready values for a whole batch at once."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _digit_rows(texts: list[str]) -> np.ndarray:
    """Equal-length ASCII texts as a ``(len, width)`` uint8 matrix, to pick rows from per batch."""
    return np.frombuffer("".join(texts).encode(), dtype=np.uint8).reshape(len(texts), -1)


def _random_digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return _DECIMAL[rng.integers(10, size=(n, width), dtype=np.uint8)]  # type: ignore[no-any-return]


def _random_hex(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return _HEX[np.frombuffer(rng.bytes(n * width), dtype=np.uint8).reshape(n, width) & 15]  # type: ignore[no-any-return]


def _text(*parts: np.ndarray) -> np.ndarray:
    """Character matrices side by side, as one bytes value per row (dtype ``S{width}``)."""
    joined = np.ascontiguousarray(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
    return joined.view(f"S{joined.shape[1]}").ravel()


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
        self._docs_fields = self._item_fields(registry, "TaiLieuNop")
        fee_fields = self._item_fields(registry, "DanhSachLePhi")
        self._fees = {
            p["MaTTHC"]: [{k: fee[k] for k in fee_fields if k in fee} for fee in p.get("DanhSachLePhi", [])]
            for p in self.procedures
        }
        self.per_day = max(1, per_commune_per_day * len(self.people.communes))
        if shape == "forwarded":  # one national agency: its daily sequence is the limit
            self.per_day = min(self.per_day, 9999)
        self.start = start
        self._statuses = tuple(_STATUS_WEIGHTS) if shape == "sync" else ("",)
        self._channels = tuple(_CHANNEL_PER_10000) if shape == "sync" else ("2",)
        self.omitted = self._optional_patterns() if shape in VARIED_SHAPES else (frozenset(),)
        self._prepare_tables(registry)
        self._compile_variants()

    # -- set-up ------------------------------------------------------------------------------------
    def _optional_patterns(self) -> tuple[frozenset[str], ...]:
        """The optional fields each presence pattern leaves out: none, all, then seeded subsets."""
        optional = [f for f in self.fields if f not in self.required]
        rng = random.Random(f"{self.seed}-optional")
        patterns = [frozenset(), frozenset(optional)]
        for _ in range(100 * OPTIONAL_PATTERNS):  # proper, distinct subsets (fewer if there are too few fields)
            if len(patterns) == OPTIONAL_PATTERNS:
                break
            subset = frozenset(f for f in optional if rng.random() < 0.5)
            if subset not in patterns:
                patterns.append(subset)
        return tuple(dict.fromkeys(patterns))

    def _item_fields(self, registry: ContractRegistry, field: str) -> tuple[str, ...]:
        if field not in self.fields:
            return ()
        item = _item_ref(self.ref, registry, field)
        return tuple(registry.property_names(item)) if item else ()

    def _prepare_tables(self, registry: ContractRegistry) -> None:
        """Lookup arrays that turn a batch of random indices into a batch of values."""
        people = self.people
        table_rng = random.Random(f"{self.seed}-applicants")
        names = [people.name(table_rng, female) for female in (False, True) for _ in range(_APPLICANT_TABLE)]
        self._names = _objects([escaped(n) for n in names])  # index: female * _APPLICANT_TABLE + k
        self._email_locals = _objects([escaped(_email_local(n)) for n in names])
        self._email_domains = _objects([escaped(d) for d in EMAIL_DOMAINS])
        self._numbers = _objects([b"%d" % k for k in range(100)])
        self._mobile_prefixes = _digit_rows(list(MOBILE_PREFIXES))
        self._hhmm = _digit_rows([f"{m // 60:02d}{m % 60:02d}" for m in range(420, 1020)])  # 07:00-17:00
        self._seconds = _digit_rows([f"{s:02d}" for s in range(60)])
        self._sequences_4 = _digit_rows([f"{k:04d}" for k in range(10_000)])
        # CCCD digits 4-6: century-and-gender digit, then the year's last two digits; row female * 62 + k
        years = [2007 - k for k in range(_BIRTH_YEARS)]
        self._birth_digits = _digit_rows([f"{(0 if y < 2000 else 2) + f}{y % 100:02d}" for f in (0, 1) for y in years])
        self._old_digits = _digit_rows(list(OLD_PROVINCE_CODES))
        weighted = people._weighted  # phường count 3x
        provinces = sorted({c[3] for c in weighted})
        self._commune_codes = _objects([escaped(c[0]) for c in weighted])
        self._commune_agencies = _objects([escaped(commune_agency_code(c[0])) for c in weighted])
        self._commune_keys = np.array([int(c[0]) for c in weighted], dtype=np.int64)
        self._commune_province = np.array([provinces.index(c[3]) for c in weighted], dtype=np.int64)
        home_olds = [[OLD_PROVINCE_CODES.index(o) for o in people._home_old[p]] for p in provinces]
        width = max(len(olds) for olds in home_olds)
        self._home_olds = np.array([(olds * width)[:width] for olds in home_olds], dtype=np.int64)
        self._home_old_count = np.array([len(olds) for olds in home_olds], dtype=np.int64)
        # first two MST digits follow the issuing tax department; HCMC issues 03 [haicap assumption, as people.py]
        tax_prefixes = ["03" if p == "79" else p for p in provinces]
        self._tax_prefixes = _digit_rows(tax_prefixes)
        self._tax_prefix_sums = np.array([int(p[0]) * WEIGHTS[0] + int(p[1]) * WEIGHTS[1] for p in tax_prefixes])
        item = _item_ref(self.ref, registry, "TaiLieuNop") if self._docs_fields else ""
        flag_type = registry.schema(item).get("properties", {}).get("DuocSoHoa", {}).get("type") if item else None
        self._yes_no = _objects([b"false", b"true"] if flag_type in (None, "boolean") else [b'"0"', b'"1"'])
        self._max_docs = max(len(p.get("ThanhPhanHoSo", [])) for p in self.procedures)
        self._status_bounds = np.cumsum([_STATUS_WEIGHTS[s] for s in self._statuses]) if self.shape == "sync" else None
        self._channel_bounds = np.cumsum(list(_CHANNEL_PER_10000.values())) if self.shape == "sync" else None

    def _compile_variants(self) -> None:
        """One JSON line template per (procedure, status, channel); checks that every required field is filled."""
        keys = [(p, s, c, m) for p in self.procedures for s in self._statuses for c in self._channels
                for m in self.omitted]
        specs = [self._spec(*key) for key in keys]
        filled = set.intersection(*(set(spec) for spec in specs))
        missing = [f for f in self.required if f not in filled]
        if missing:
            raise HaicapError(f"{self.ref} requires {', '.join(missing)}, which the dossier generator cannot fill")
        self._variants = [compile_template(spec) for spec in specs]
        self._enterprise_variant = np.array([p.get("LoaiDoiTuong", "1") == "2" for p, _, _, _ in keys])
        self._slots = {name for _, names in self._variants for name in names}

    def _spec(self, procedure: dict[str, Any], status: str, channel: str, omitted: frozenset[str] = frozenset()
              ) -> dict[str, Any]:
        """A record of this variant: constants, and Slot/Text markers for the per-record parts; contract order;
        the optional fields of ``omitted`` left out."""
        subject = procedure.get("LoaiDoiTuong", "1")
        owner_kind = ""
        identities: list[dict[str, Any]] = [{"LoaiDinhDanh": "1", "SoDinhDanh": Text(_CCCD)}]
        if subject == "2":  # an enterprise files it: the owner is the firm, identified by its tax code too
            owner_kind = "Hộ kinh doanh " if procedure.get("MaLinhVuc") == "DKKD" else "Công ty TNHH "
            identities.append({"LoaiDinhDanh": "3", "SoDinhDanh": Text(Slot("tax_code"))})
        values: dict[str, Any] = {
            "MaTTHC": procedure["MaTTHC"],
            "TenTTHC": procedure["TenTTHC"],
            "MaXa": Text(Slot("commune")),
            "ChuHoSo": Text(owner_kind, _NAME),
            "DinhDanhCHS": identities,
            "SoDienThoai": Text(Slot("phone")),
            "Email": Text(Slot("email_local"), Slot("email_number"), "@", Slot("email_domain")),
            "TrichYeuHoSo": Text(f"{procedure['TenTTHC']} - {owner_kind}", _NAME),
            "KenhThucHien": channel,
            "LoaiDoiTuong": subject,
            "NgayNopHoSo": _SUBMITTED,
        }
        if self._docs_fields:
            components = [c["MaThanhPhanHoSo"] for c in procedure.get("ThanhPhanHoSo", [])]
            values["TaiLieuNop"] = [self._document_spec(i, component) for i, component in enumerate(components)]
        if self.shape == "forwarded":
            values["MaHoSo"] = Text(f"{NATIONAL_PORTAL_AGENCY}-", Slot("yymmdd"), "-", Slot("sequence"))
            values["DanhSachLePhi"] = self._fees[procedure["MaTTHC"]]
        elif self.shape == "sync":
            values.update(self._sync_spec(procedure, status, channel))
        return {k: values[k] for k in self.fields if k in values and k not in omitted}

    def _document_spec(self, i: int, component: str) -> dict[str, Any]:
        file_id = Slot(f"file{i}")
        doc = {
            "TepDinhKemId": Text(file_id),
            "TenTepDinhKem": Text(f"{component}_", Slot(f"file{i}_short"), ".pdf"),  # first 6 hex digits
            "IsDeleted": False,
            "MaThanhPhanHoSo": component,
            "DuongDanTaiTepTin": Text("/files/", file_id, ".pdf"),
            "DuocSoHoa": Slot(f"scanned{i}"),
            "DuocTaiSuDung": Slot(f"reusable{i}"),
        }
        return {k: doc[k] for k in self._docs_fields if k in doc}

    def _sync_spec(self, procedure: dict[str, Any], status: str, channel: str) -> dict[str, Any]:
        online = channel == "2"
        paid = online and status not in ("1", "3", "6")
        ma_ho_so = Text(Slot("agency"), "-", Slot("yymmdd"), "-", Slot("sequence"))
        values: dict[str, Any] = {
            "MaHoSo": ma_ho_so,
            "SoBienNhan": ma_ho_so,
            "NgayTiepNhan": _SUBMITTED,
            "NgayHenTra": Text(Slot(f"day{_PROCESSING_DAYS}"), "170000"),
            "TrangThaiHoSo": status,
            "NoiNopHoSo": "Cổng Dịch vụ công" if online else "Bộ phận Một cửa",
            "DonViXuLy": Text(Slot("agency")),
            "SoGiayToChuHoSo": Text(_CCCD),
            "TaiKhoanDuocXacThucVoiVNeID": "1" if online else "0",
            "DuocThanhToanTrucTuyen": "2" if not procedure.get("PhiPhaiNop", 0) else ("1" if paid else "0"),
            "DanhSachLePhi": self._fees[procedure["MaTTHC"]],
        }
        for key in ("MaLinhVuc", "TenLinhVuc"):
            if procedure.get(key) is not None:
                values[key] = procedure[key]
        if status == "3":
            values["NgayTuChoi"] = Text(Slot("day1"), "090000")
        elif status in ("9", "10"):
            values["NgayKetThucXuLy"] = Text(Slot("day2"), "160000")
            if status == "10":
                values["NgayTra"] = Text(Slot(f"day{_PROCESSING_DAYS}"), "100000")
        return values

    # -- streaming ---------------------------------------------------------------------------------
    def jsonl_batches(self, count: int) -> Iterator[tuple[int, bytes]]:
        """``count`` records as JSON lines: (number of records, their ``\\n``-terminated lines) per batch.

        The same seed always gives the same bytes.
        """
        rng = np.random.default_rng(self.seed)
        counters: dict[int, int] = {}
        done = 0
        while done < count:
            day_index, in_day = divmod(done, self.per_day)
            if in_day == 0:
                counters.clear()
            first = self.start + timedelta(days=day_index)
            days = [f"{first + timedelta(days=k):%Y%m%d}" for k in range(_PROCESSING_DAYS + 1)]
            size = min(_BATCH, count - done, self.per_day - in_day)  # a batch never straddles two days
            yield size, self._batch(rng, size, days, counters)
            done += size

    def records(self, count: int) -> Iterator[dict[str, Any]]:
        """``count`` records as dicts (the parsed :meth:`jsonl_batches`); the same seed, the same sequence."""
        loads = orjson.loads
        for _, chunk in self.jsonl_batches(count):
            for line in chunk.splitlines():
                yield loads(line)

    def _batch(self, rng: np.random.Generator, n: int, days: list[str], counters: dict[int, int]) -> bytes:
        """``n`` JSON lines: every per-record value drawn for the whole batch, then one template fill per line.

        The variants are drawn first and sorted, so that each variant's records are one run that fills its
        template straight from the columns; the other values are independent draws, so row ``j`` of every column
        simply belongs to the ``j``-th record of that sorted order. The lines are then put back in drawing order.
        """
        variant = self._draw_variants(rng, n)
        order = np.argsort(variant, kind="stable")
        variant = variant[order]
        columns = self._draw(rng, n, variant)
        if "sequence" in self._slots:  # MaHoSo numbers count up in file order
            keys = np.empty(n, dtype=np.int64)
            keys[order] = columns["sequence_key"]
            sequences = np.array(self._sequences(keys.tolist(), counters))
            columns["sequence"] = _text(self._sequences_4[sequences[order]])
        values = {name: column.tolist() for name, column in columns.items() if name in self._slots}
        for k, day in enumerate(days):
            values[f"day{k}"] = [day.encode()] * n
        values["yymmdd"] = [days[0][2:].encode()] * n
        lines: list[bytes] = []
        starts = [0, *(np.flatnonzero(np.diff(variant)) + 1).tolist()]
        for start, end in zip(starts, [*starts[1:], n], strict=True):
            template, slots = self._variants[variant[start]]
            lines.extend(template % row for row in zip(*(values[name][start:end] for name in slots), strict=True))
        in_order = np.empty(n + 1, dtype=object)
        in_order[order] = lines
        in_order[n] = b""  # the last line's newline
        return b"\n".join(in_order.tolist())

    def _draw_variants(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Which template each record uses: its procedure, for sync items its status and channel, for what a
        sender sends its optional-field pattern."""
        variant = rng.integers(len(self.procedures), size=n) * len(self._statuses)
        if self._status_bounds is not None and self._channel_bounds is not None:
            status = np.searchsorted(self._status_bounds, rng.integers(self._status_bounds[-1], size=n), side="right")
            channel = np.searchsorted(self._channel_bounds, rng.integers(10_000, size=n), side="right")
            variant = (variant + status) * len(self._channels) + channel
        if len(self.omitted) > 1:  # which optional fields the record carries
            variant = variant * len(self.omitted) + rng.integers(len(self.omitted), size=n)
        return variant  # type: ignore[no-any-return]

    def _draw(self, rng: np.random.Generator, n: int, variant: np.ndarray) -> dict[str, np.ndarray]:
        """The other per-record values of a batch, one vectorised draw each, in this order (reproducibility).

        Numbers are drawn as rows of ASCII digits (random digits, or rows of a small table), never formatted.
        """
        integers, uniform = rng.integers, rng.random
        commune = integers(len(self._commune_codes), size=n)
        female = (uniform(n) < 0.5).astype(np.int64)
        applicant = integers(_APPLICANT_TABLE, size=n) + female * _APPLICANT_TABLE
        province = self._commune_province[commune]
        # most people live in (one of the old provinces of) the province where their birth was registered
        home = self._home_olds[province, (uniform(n) * self._home_old_count[province]).astype(np.int64)]
        old = np.where(uniform(n) < 0.8, home, integers(len(OLD_PROVINCE_CODES), size=n))
        birth = female * _BIRTH_YEARS + integers(_BIRTH_YEARS, size=n)
        prefix = self._mobile_prefixes[integers(len(self._mobile_prefixes), size=n)]
        enterprise = self._enterprise_variant[variant]
        tax_codes = np.zeros(n, dtype="S10")  # only enterprise procedures carry one
        tax_codes[enterprise] = self._tax_codes(rng, province[enterprise])
        columns: dict[str, np.ndarray] = {
            "commune": self._commune_codes[commune],
            "agency": self._commune_agencies[commune],
            "sequence_key": self._commune_keys[commune] if self.shape == "sync" else np.zeros(n, dtype=np.int64),
            "name": self._names[applicant],
            "cccd": _text(self._old_digits[old], self._birth_digits[birth], _random_digits(rng, n, 6)),
            "tax_code": tax_codes,
            "time": _text(self._hhmm[integers(len(self._hhmm), size=n)], self._seconds[integers(60, size=n)]),
            "phone": _text(prefix, _random_digits(rng, n, 7)),
            "email_local": self._email_locals[applicant],
            "email_number": self._numbers[integers(100, size=n)],
            "email_domain": self._email_domains[integers(len(self._email_domains), size=n)],
        }
        for i in range(self._max_docs if self._docs_fields else 0):
            file_id = _random_hex(rng, n, 12)
            columns[f"file{i}"] = _text(file_id)
            columns[f"file{i}_short"] = _text(file_id[:, :6])
            columns[f"scanned{i}"] = self._yes_no[(uniform(n) < 0.7).astype(np.int64)]
            columns[f"reusable{i}"] = self._yes_no[(uniform(n) < 0.2).astype(np.int64)]
        return columns

    def _tax_codes(self, rng: np.random.Generator, province: np.ndarray) -> np.ndarray:
        """Valid 10-digit MSTs (taxcode.py's check digit) with each province's two-digit prefix.

        Nine digits whose weighted sum is 0 mod 11 would need check digit 10 and are never issued; bumping the
        last digit (weight 3) moves the sum by +3, or by -27 from 9 to 0, neither 0 mod 11: one fix suffices.
        """
        body = rng.integers(10, size=(len(province), 7), dtype=np.int64)
        total = self._tax_prefix_sums[province] + body @ _TAX_BODY_WEIGHTS
        fix = total % 11 == 0
        body[fix, 6] = (body[fix, 6] + 1) % 10
        total = self._tax_prefix_sums[province] + body @ _TAX_BODY_WEIGHTS
        check = 10 - total % 11
        return _text(self._tax_prefixes[province], _DECIMAL[body], _DECIMAL[check][:, None])

    def _sequences(self, keys: list[int], counters: dict[int, int]) -> list[int]:
        """The MaHoSo sequence of each record: per commune (sync) or national (forwarded), per day."""
        sequences = []
        for key in keys:
            counters[key] = sequence = counters.get(key, 0) + 1
            sequences.append(sequence)
        if sequences and max(sequences) > 9999:
            raise HaicapError("more than 9999 dossiers a day for one agency; lower per_commune_per_day")
        return sequences
