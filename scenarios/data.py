"""Scenario data drawn from a pre-generated :class:`~haicap.data_generators.pool.DataPool`.

Steps ask for "a citizen" and "a submission of procedure P in commune C for this citizen"; the pool holds
ready-made records, indexed here by procedure once, so a step costs a lookup and a dict copy, never a Faker
call. Successive calls walk the pool (``start``/``stride`` let Locust users share one pool without overlap).

The pool's records vary, seeded, which optional fields they carry (``data_generators.dossiers``), so the steps and
checks that submit them exercise full and minimal input alike. One exception: a submission for a given citizen
always names that citizen (DinhDanhCHS, and ChuHoSo for a person's dossier), because the caller asked for a
dossier *of this citizen* — the identity checks need the body to say whom it claims; a submission without
identity fields is the must-accept case SUB-15 sends on purpose.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from haicap.data_generators.pool import DataPool
from haicap.errors import HaicapError

__all__ = ["PoolScenarioData"]


class PoolScenarioData:
    def __init__(self, pool: DataPool, *, start: int = 0, stride: int = 1) -> None:
        self.pool = pool
        self._citizens = itertools.count(start, stride)
        self._lock = threading.Lock()
        self._by_procedure: dict[str, list[int]] = {}
        for index in range(pool.size):
            self._by_procedure.setdefault(pool.submission(index)["MaTTHC"], []).append(index)
        self._next: dict[str, itertools.count[int]] = {
            code: itertools.count(start, stride) for code in self._by_procedure
        }

    @classmethod
    def build(cls, seed: int, province: str, size: int = 2_000) -> PoolScenarioData:
        return cls(DataPool.build(seed=seed, size=size, province=province))

    def citizen(self) -> dict[str, Any]:
        with self._lock:
            index = next(self._citizens)
        return self.pool.citizen(index)

    def submission(self, procedure: str, commune: str | None, citizen: dict[str, Any]) -> dict[str, Any]:
        indexes = self._by_procedure.get(procedure)
        if not indexes:
            raise HaicapError(f"the data pool has no dossier for procedure {procedure} "
                              f"(known: {', '.join(sorted(self._by_procedure))})")
        with self._lock:
            index = indexes[next(self._next[procedure]) % len(indexes)]
        record = self.pool.submission(index)
        if commune is not None:
            record["MaXa"] = commune
        fields = self.pool.submission_fields
        if "DinhDanhCHS" in record or "DinhDanhCHS" in fields:
            extra = [d for d in record.get("DinhDanhCHS") or [] if d.get("LoaiDinhDanh") != "1"]
            record["DinhDanhCHS"] = [{"LoaiDinhDanh": "1", "SoDinhDanh": citizen["SoDinhDanh"]}, *extra]
        if ("ChuHoSo" in record or "ChuHoSo" in fields) and record.get("LoaiDoiTuong", "1") == "1" \
                and citizen.get("HoVaTen"):
            record["ChuHoSo"] = citizen["HoVaTen"]
        return _in_contract_order(record, self.pool.submission_fields)


def _in_contract_order(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The record's keys in the contract's order (restored identity fields go back where the contract has them)."""
    return {k: record[k] for k in (*fields, *record) if k in record} if fields else record
