"""A pool of ready-made citizens and dossier payloads that load tests draw from by index.

Built once per worker from (seed, size, province): entry ``i`` is a citizen (UserInfo claims, whose CCCD
signs in through the national identity provider with ``login_hint``) and that citizen's dossier payloads in
each contract shape, already serialised with orjson. A request handler costs an index lookup (and, for a
dict, one ``orjson.loads`` giving a fresh copy), never a Faker call. The pool pickles as its recipe
(seed, size, province) and is rebuilt on the other side: a few hundred milliseconds for 10,000 entries.

Example::

    pool = DataPool.build(seed=7, size=10_000, province="01")
    cccd = pool.citizen(i)["SoDinhDanh"]
    client.post(url, content=pool.submission_json(i), headers={"content-type": "application/json"})
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from haicap.data_generators.dossiers import DossierGenerator
from haicap.data_generators.people import PersonFactory

__all__ = ["DataPool"]


class DataPool:
    """``size`` (citizen, dossier) entries; indexes wrap around, so any non-negative int is valid."""

    def __init__(self, seed: int, size: int, province: str | None, entries: dict[str, list[bytes]],
                 submission_fields: tuple[str, ...] = ()) -> None:
        self.seed = seed
        self.size = size
        self.province = province
        self._entries = entries
        #: the submission contract's field names, in its order
        self.submission_fields = submission_fields

    @classmethod
    def build(cls, seed: int, size: int = 10_000, province: str | None = None) -> DataPool:
        if size <= 0:
            raise ValueError(f"pool size must be positive, got {size}")
        people = PersonFactory(seed, province)
        rng = random.Random(seed)
        citizens = [people.citizen(rng) for _ in range(size)]
        entries: dict[str, list[bytes]] = {"citizen": [orjson.dumps(c) for c in citizens]}
        fields: tuple[str, ...] = ()
        for shape in ("submission", "forwarded", "sync"):
            gen = DossierGenerator(seed, province, shape, people=people)
            fields = gen.fields if shape == "submission" else fields
            serialised = []
            for citizen, record in zip(citizens, gen.records(size), strict=True):
                serialised.append(orjson.dumps(_owned_by(record, citizen)))
            entries[shape] = serialised
        return cls(seed, size, province, entries, fields)

    def __reduce__(self) -> tuple[Any, tuple[int, int, str | None]]:
        return (DataPool.build, (self.seed, self.size, self.province))

    def __len__(self) -> int:
        return self.size

    def citizen(self, index: int) -> dict[str, Any]:
        return orjson.loads(self._entries["citizen"][index % self.size])  # type: ignore[no-any-return]

    def citizen_json(self, index: int) -> bytes:
        return self._entries["citizen"][index % self.size]

    def dossier(self, index: int, shape: str = "submission") -> dict[str, Any]:
        """Citizen ``index``'s dossier in ``shape`` (submission, forwarded, sync), a fresh dict."""
        return orjson.loads(self._entries[shape][index % self.size])  # type: ignore[no-any-return]

    def dossier_json(self, index: int, shape: str = "submission") -> bytes:
        return self._entries[shape][index % self.size]

    def submission(self, index: int) -> dict[str, Any]:
        return self.dossier(index, "submission")

    def submission_json(self, index: int) -> bytes:
        return self._entries["submission"][index % self.size]


def _owned_by(record: dict[str, Any], citizen: dict[str, Any]) -> dict[str, Any]:
    """The record with the citizen as its owner: the identity the province sees in the SSO session."""
    record = dict(record)
    identities = [dict(d) for d in record.get("DinhDanhCHS", [])]
    if identities:
        identities[0] = {"LoaiDinhDanh": "1", "SoDinhDanh": citizen["SoDinhDanh"]}
        record["DinhDanhCHS"] = identities
    if "ChuHoSo" in record and record.get("LoaiDoiTuong", "1") == "1":
        record["ChuHoSo"] = citizen["HoVaTen"]
    if "SoGiayToChuHoSo" in record:
        record["SoGiayToChuHoSo"] = citizen["SoDinhDanh"]
    for field, claim in (("SoDienThoai", "SoDienThoai"), ("Email", "ThuDienTu")):
        if field in record and claim in citizen:
            record[field] = citizen[claim]
    return record
