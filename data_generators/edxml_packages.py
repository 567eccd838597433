"""Valid edXML packages (QCVN 102:2016/BTTTT) in bulk, for load pools and the axis benchmarks.

``haicap data generate --kind edxml --count N --out packages.jsonl [--province 01]`` writes one JSON line per
package: ``{"DocumentId", "From", "To", "edxml"}`` (the package as a string). Senders are ministries and
province-level agencies of the axis directory (``data_generators/agencies.py``), recipients the commune
agencies of the province (every province when none is given); dates start on 1 July 2025, so the same seed
always gives the same bytes. Each package is built by ``haicap/edxml.py``'s template and is valid against the
contract (``tests/test_axis.py`` reads a sample back).

Example::

    gen = EdxmlGenerator(seed=7, province="01")
    first = next(gen.packages(1))      # bytes of one valid package
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import orjson

from haicap.axis_contract import axis_contract
from haicap.data_generators.agencies import MINISTRIES, commune_agency_code, province_agency_code
from haicap.data_generators.units import admin_units
from haicap.edxml import PackageSpec, build_package
from haicap.vn_time import VN_TZ

__all__ = ["EdxmlGenerator"]

_BATCH = 2000
_START = datetime(2025, 7, 1, 8, 0, 0, tzinfo=VN_TZ)
_SUBJECTS = ("Về việc triển khai chính quyền địa phương hai cấp", "Về việc công bố thủ tục hành chính",
             "Về việc cập nhật mã định danh cơ quan", "Báo cáo tình hình tiếp nhận hồ sơ",
             "Về việc đồng bộ dữ liệu hồ sơ lên Cổng Dịch vụ công quốc gia")
_ATTACHMENTS = (("van-ban.pdf", "application/pdf"), ("phu-luc.docx", "application/vnd.openxmlformats-"
                                                                      "officedocument.wordprocessingml.document"),
                ("bang-tinh.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


class EdxmlGenerator:
    """Deterministic valid packages from ``seed`` (of one current province's communes, or all)."""

    def __init__(self, seed: int = 0, province: str | None = None) -> None:
        self.seed = seed
        self.contract = axis_contract()
        units = admin_units()
        provinces = [units.province(province)] if province else units.provinces()
        self.senders = [*MINISTRIES, *((province_agency_code(p.code), f"UBND {p.name}") for p in provinces)]
        self.recipients = [(commune_agency_code(c.code, province_agency_code(c.province_code)), f"UBND {c.name}")
                           for p in provinces for c in units.communes(p.code)]
        self._bodies = [base64.b64encode(f"%PDF-1.4 haicap {i} ".encode() * (8 + 8 * i)).decode()
                        for i in range(3)]

    def packages(self, count: int) -> Iterator[bytes]:
        for spec in self._specs(count):
            yield build_package(spec, self.contract)

    def _specs(self, count: int) -> Iterator[PackageSpec]:
        rng = random.Random(self.seed)
        date_format = self.contract.formats["PromulgationDate"]
        trace_format = self.contract.formats["TraceTimestamp"]
        for n in range(count):
            moment = _START + timedelta(seconds=n * 7)
            sender, name = self.senders[rng.randrange(len(self.senders))]
            to = self.recipients[rng.randrange(len(self.recipients))]
            date = date_format.format(moment)
            number = n + 1
            attachments = tuple((f"att{k}", *_ATTACHMENTS[k], self._bodies[k]) for k in range(rng.randrange(1, 4)))
            yield PackageSpec(from_organ=sender, from_name=name, to=(to,), number=number, notation="UBND-VP",
                              subject=_SUBJECTS[n % len(_SUBJECTS)], promulgation_date=date,
                              trace_timestamp=trace_format.format(moment),
                              document_id=f"{sender},{date},{number}/UBND-VP", attachments=attachments)

    def jsonl_batches(self, count: int) -> Iterator[tuple[int, bytes]]:
        """(records, their ``\\n``-terminated JSON lines) per batch."""
        batch: list[bytes] = []
        for spec in self._specs(count):
            batch.append(orjson.dumps({"DocumentId": spec.document_id, "From": spec.from_organ, "To": spec.to[0][0],
                                       "edxml": build_package(spec, self.contract).decode("utf-8")}))
            if len(batch) == _BATCH:
                yield len(batch), b"\n".join(batch) + b"\n"
                batch = []
        if batch:
            yield len(batch), b"\n".join(batch) + b"\n"

    def records(self, count: int) -> Iterator[dict[str, str]]:
        for _, chunk in self.jsonl_batches(count):
            for line in chunk.splitlines():
                yield orjson.loads(line)
