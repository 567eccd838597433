"""The national portal forwarding a dossier to a province.

Citizens also submit on the National Public Service Portal; the portal forwards each dossier to the province
that handles it (``POST {province}/national/forwarded-dossiers`` with the forwarding credential). The
forwarder builds a valid dossier — MaHoSo of the portal's agency 000.00.00.G22 [assumption, wire agreement],
a current commune of the province, a valid CCCD and a real procedure from ``contracts/procedures.yaml`` —
applies overrides (so invalid dossiers can be sent on purpose), sends it and records the province's answer.
A province that cannot be reached is recorded, never raised. On request (``credential_of``) it presents the
forward token the portal issued to *another* province instead (the config's ``other_forward_registrations``,
or, when it has none, one minted here for the next province code), which the province must refuse.

MaHoSo stays unique across runs against one persistent province, although each run starts a counterpart with
a fresh state: the 4-digit sequence of the day (at most 9,999 codes a day, the format's limit) starts at the
slot of the time of day (:func:`sequence_slot`, one slot every 8.64 s), so a later run starts past an earlier
one; and a province answering 200 (it already holds the code: a dossier of an earlier run) makes the forwarder
take the next number and send again, a few times at most, since the national portal never assigns a code twice.
The day's last number is a counter of the store, allocated in the writer, so the workers of one counterpart
(``--national-workers``) never hand out one code twice.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any

import httpx
import orjson
import yaml

from haicap.contract_registry import default_registry
from haicap.data_generators.identity import make_cccd
from haicap.data_generators.units import admin_units
from haicap.sandbox.config import NationalConfig, ProvinceEndpoint, co_tenant_registration
from haicap.sandbox.national.citizens import CitizenRegistry
from haicap.sandbox.national.outbound import post_json
from haicap.sandbox.national.problems import ProblemError
from haicap.sandbox.national.store import Store, now_ms
from haicap.sandbox.national.timefmt import VN_TZ, thoi_gian

__all__ = ["NATIONAL_PORTAL_AGENCY", "Forwarder", "load_procedures", "sequence_slot"]

NATIONAL_PORTAL_AGENCY = "000.00.00.G22"
FORWARD_PATH = "/national/forwarded-dossiers"
#: codes a day: MaHoSo ends in a 4-digit sequence (common.schema.json MaHoSo)
SEQUENCES_PER_DAY = 9999
#: how many codes the province already holds the forwarder skips before it reports the province's answer
MAX_TAKEN = 20
_FALLBACK_PROCEDURE: dict[str, Any] = {"MaTTHC": "1.001193", "TenTTHC": "Đăng ký khai sinh", "DanhSachLePhi": [],
                                       "ThanhPhanHoSo": [{"MaThanhPhanHoSo": "TKKS",
                                                          "TenThanhPhanHoSo": "Tờ khai đăng ký khai sinh"}]}


def load_procedures() -> list[dict[str, Any]]:
    """The procedure catalogue of the contracts folder (``procedures.yaml``), or birth registration alone."""
    path = default_registry().root / "procedures.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        procedures = [p for p in data.get("procedures", []) if isinstance(p, dict) and p.get("MaTTHC")]
    except (OSError, yaml.YAMLError, AttributeError):
        procedures = []
    return [p for p in procedures if p.get("LoaiDoiTuong", "1") == "1"] or [_FALLBACK_PROCEDURE]


def sequence_slot(moment: datetime) -> int:
    """The first sequence number (1..9999) a counterpart started at ``moment`` (Asia/Ho_Chi_Minh) uses: the
    day's codes spread over its seconds, so runs started later in the day start further on."""
    local = moment.astimezone(VN_TZ)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return 1 + seconds * SEQUENCES_PER_DAY // 86400


def _sequence_of(ma_ho_so: str, day: str) -> int:
    agency_day, _, sequence = ma_ho_so.rpartition("-")
    return int(sequence) if agency_day == f"{NATIONAL_PORTAL_AGENCY}-{day}" and sequence.isdigit() else 0


class Forwarder:
    """Builds and sends forwarded dossiers; the sequence continues from what the store already holds and never
    starts before the time-of-day slot (:func:`sequence_slot`)."""

    def __init__(self, config: NationalConfig, store: Store, citizens: CitizenRegistry,
                 http: Callable[[], Awaitable[httpx.AsyncClient]]) -> None:
        self.provinces = {p.province_code: p for p in config.provinces}
        others = config.other_forward_registrations or tuple(
            co_tenant_registration(p.province_code, p.base_url) for p in config.provinces[:1])
        #: forward tokens by province code: the registered provinces' and other provinces' (never forwarded to)
        self.tokens = {p.province_code: p.forward_token for p in (*others, *config.provinces)}
        self.store = store
        self.citizens = citizens
        self._http = http
        self._rng = random.Random(f"forward:{config.seed}")
        self._procedures = load_procedures()

    async def next_ma_ho_so(self, now: datetime) -> str:
        """A code of the national portal for ``now``: after the last one used today (by any worker, or by an
        earlier run on this state folder), never before the slot."""
        day = f"{now.astimezone(VN_TZ):%y%m%d}"
        slot = sequence_slot(now)
        last = await self.store.write(lambda conn: _allocate(conn, day, slot))
        return f"{NATIONAL_PORTAL_AGENCY}-{day}-{(last - 1) % SEQUENCES_PER_DAY + 1:04d}"

    def _province(self, code: str | None) -> ProvinceEndpoint:
        if code is None:
            if not self.provinces:
                raise ProblemError(400, "Bad Request", "no province is registered to forward to")
            return next(iter(self.provinces.values()))
        try:
            return self.provinces[code]
        except KeyError:
            raise ProblemError(400, "Bad Request", f"province {code} is not registered",
                               [{"field": "province_code",
                                 "message": f"registered: {', '.join(sorted(self.provinces))}"}]) from None

    def build(self, province_code: str, ma_ho_so: str) -> dict[str, Any]:
        """A valid forwarded dossier for a province under ``ma_ho_so`` (:meth:`next_ma_ho_so`; the content is
        deterministic per run seed)."""
        rng = self._rng
        today = datetime.now(VN_TZ)
        procedure = rng.choice(self._procedures)
        commune = rng.choice(admin_units().communes(province_code))
        birth = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        cccd = make_cccd(rng, birth, rng.random() < 0.5)
        citizen = self.citizens.get(cccd)
        assert citizen is not None
        documents = [
            {"TepDinhKemId": f"{ma_ho_so}-{i + 1}", "TenTepDinhKem": f"{c.get('TenThanhPhanHoSo', 'Tệp')}.pdf",
             "MaThanhPhanHoSo": c.get("MaThanhPhanHoSo", ""), "IsDeleted": False, "DuocSoHoa": "1",
             "DuocTaiSuDung": "0"}
            for i, c in enumerate(procedure.get("ThanhPhanHoSo", []))
        ]
        return {
            "MaHoSo": ma_ho_so,
            "MaTTHC": procedure["MaTTHC"],
            "TenTTHC": procedure.get("TenTTHC", ""),
            "MaXa": commune.code,
            "ChuHoSo": citizen.ho_va_ten,
            "LoaiDoiTuong": "1",
            "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": cccd}],
            "SoDienThoai": citizen.phone,
            "Email": citizen.email,
            "TrichYeuHoSo": f"{procedure.get('TenTTHC', 'Hồ sơ')} — {citizen.ho_va_ten}, {commune.name}",
            "NgayNopHoSo": thoi_gian(today),
            "KenhThucHien": "2",
            "TaiLieuNop": documents,
            "DanhSachLePhi": [dict(f) for f in procedure.get("DanhSachLePhi", [])],
        }

    async def forward(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Build, override, send; return the record (what was sent, the province's answer or the error)."""
        fields = dict(overrides)
        code = fields.pop("province_code", None)
        if code is not None and not isinstance(code, str):
            raise ProblemError(400, "Bad Request", "province_code must be a string",
                               [{"field": "province_code", "message": "expected a 2-digit province code"}])
        province = self._province(code)
        token = self._token(fields.pop("credential_of", None), province)
        taken: list[str] = []
        while True:
            record = await self._send(province, fields, token)
            if "MaHoSo" in fields or not _already_held(record) or len(taken) >= MAX_TAKEN:
                break
            taken.append(record["MaHoSo"])  # a dossier of an earlier run: the portal never reuses a code
        if taken:
            record["already_held"] = taken
        return record

    def _token(self, credential_of: Any, province: ProvinceEndpoint) -> tuple[str, str]:
        """(province code, forward token) to present: ``province``'s own, or the one issued to ``credential_of``;
        ``"other"`` picks a province other than ``province``."""
        if credential_of is None:
            return province.province_code, province.forward_token
        if credential_of == "other":
            credential_of = next((c for c in self.tokens if c != province.province_code), None)
        if not isinstance(credential_of, str) or credential_of not in self.tokens:
            raise ProblemError(400, "Bad Request", "no forward credential is known for that province",
                               [{"field": "credential_of",
                                 "message": f"known: other, {', '.join(sorted(self.tokens))}"}])
        return credential_of, self.tokens[credential_of]

    async def _send(self, province: ProvinceEndpoint, fields: Mapping[str, Any],
                    token: tuple[str, str]) -> dict[str, Any]:
        dossier = self.build(province.province_code, await self.next_ma_ho_so(datetime.now(VN_TZ)))
        dossier.update(fields)
        url = province.base_url.rstrip("/") + FORWARD_PATH
        status, answer, error = await post_json(await self._http(), url, dossier,
                                                {"Authorization": f"Bearer {token[1]}"})
        record = {"at_ms": now_ms(), "province_code": province.province_code,
                  "MaHoSo": str(dossier.get("MaHoSo", "")), "url": url, "dossier": dossier,
                  "status_code": status, "answer": answer, "error": error}
        if token[0] != province.province_code:
            record["credential_of"] = token[0]
        row = (record["at_ms"], province.province_code, record["MaHoSo"], url, orjson.dumps(dossier), status,
               orjson.dumps(answer), error)

        def insert(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "INSERT INTO forwarded (at_ms, province_code, MaHoSo, url, dossier, status_code, answer, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row).rowcount

        await self.store.write(insert)
        return record


def _already_held(record: Mapping[str, Any]) -> bool:
    """The province answered 200 for the code: it holds a dossier under it already (wire agreement: a second
    delivery of one MaHoSo answers 200 with the current state)."""
    answer = record.get("answer")
    return record.get("status_code") == 200 and isinstance(answer, dict) and answer.get("MaHoSo") == record["MaHoSo"]


def _allocate(conn: sqlite3.Connection, day: str, slot: int) -> int:
    """In the writer: the next sequence number of ``day`` (after the counter, or the codes an earlier run on this
    state folder forwarded, and never before ``slot``)."""
    name = f"forward_sequence:{day}"
    rows = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchall()
    if rows:
        last = int(rows[0][0])
    else:
        held = conn.execute("SELECT MaHoSo FROM forwarded WHERE MaHoSo LIKE ?", (f"{NATIONAL_PORTAL_AGENCY}-{day}-%",))
        last = max((_sequence_of(m, day) for (m,) in held), default=0)
    last = max(last + 1, slot)
    conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = "
                 "excluded.value", (name, last))
    return last
