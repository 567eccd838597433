"""Build the national sync items (DongBoHoSoMC, CapNhatTienDoHoSoMC) from a dossier.

The field lists come from the sync contract (``registry.property_names``), never typed here: an item is
the dossier's values for the contract's fields, so a field added to the contract flows through. Faults
acting here: ``sync-missing-fields`` (required fields dropped), ``no-paid-flag-sync`` (DuocThanhToanTrucTuyen
never "1"), ``sync-fee-from-wrong-field`` (fee amounts from the amount paid), ``channel-not-synced``
(KenhThucHien not mapped: the desk default) and ``utc-timestamps`` (every ThoiGian field of an item in UTC).

Example::

    builder = SyncItemBuilder(default_registry())
    item = builder.dossier_item(dossier)
    progress = builder.progress_item(dossier, dossier["LichSu"][-1])
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from haicap.contract_registry import ContractRegistry
from haicap.vn_time import to_ms

__all__ = ["DOSSIER_ITEM_REF", "PROGRESS_ITEM_REF", "SyncItemBuilder"]

DOSSIER_ITEM_REF = "sync.schema.json#/$defs/DongBoHoSoMCItem"
PROGRESS_ITEM_REF = "sync.schema.json#/$defs/CapNhatTienDoHoSoMCItem"

#: Labels of the states, used as the default NoiDungXuLy of a progress entry.
STATE_LABELS = {
    "1": "Mới đăng ký",
    "2": "Được tiếp nhận",
    "3": "Không được tiếp nhận",
    "4": "Đang xử lý",
    "5": "Yêu cầu bổ sung giấy tờ",
    "6": "Yêu cầu thực hiện nghĩa vụ tài chính",
    "7": "Công dân yêu cầu rút hồ sơ",
    "8": "Dừng xử lý",
    "9": "Đã xử lý xong",
    "10": "Đã trả kết quả",
}


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _time_fields(registry: ContractRegistry, ref: str) -> frozenset[str]:
    """The item's fields of the contract's ThoiGian format (``common.schema.json#/$defs/ThoiGian``)."""
    properties = registry.schema(ref).get("properties", {})
    return frozenset(name for name, spec in properties.items()
                     if isinstance(spec, dict) and str(spec.get("$ref", "")).endswith("/ThoiGian"))


def _as_utc(value: Any) -> Any:
    """The defect of ``utc-timestamps``: a Vietnam time rewritten as the UTC wall clock of the same instant."""
    ms = to_ms(value)
    return value if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d%H%M%S")


class SyncItemBuilder:
    """Turns a dossier (and one of its history entries) into contract-shaped sync items."""

    def __init__(self, registry: ContractRegistry, faults: Collection[str] = ()) -> None:
        self.dossier_fields = registry.property_names(DOSSIER_ITEM_REF)
        self.progress_fields = registry.property_names(PROGRESS_ITEM_REF)
        required = registry.required_names(DOSSIER_ITEM_REF)
        # sync-missing-fields: the identity of the item stays, the rest of what is required goes
        keep = {"MaHoSo", "TrangThaiHoSo"}
        self._dropped = {f for f in required if f not in keep} if "sync-missing-fields" in faults else set()
        self._paid_flag = "no-paid-flag-sync" not in faults
        self._fee_from_paid = "sync-fee-from-wrong-field" in faults
        self._channel = "channel-not-synced" not in faults
        utc = "utc-timestamps" in faults
        self._utc_dossier = _time_fields(registry, DOSSIER_ITEM_REF) if utc else frozenset()
        self._utc_progress = _time_fields(registry, PROGRESS_ITEM_REF) if utc else frozenset()

    def dossier_item(self, dossier: dict[str, Any]) -> dict[str, Any]:
        item = {
            name: dossier[name]
            for name in self.dossier_fields
            if name not in self._dropped and _present(dossier.get(name))
        }
        if not self._paid_flag and item.get("DuocThanhToanTrucTuyen") == "1":
            item["DuocThanhToanTrucTuyen"] = "0"
        if self._fee_from_paid and item.get("DanhSachLePhi"):  # the defect: Gia mapped from the amount paid
            paid = int(dossier.get("SoTienDaThanhToan") or 0)
            item["DanhSachLePhi"] = [{**fee, "Gia": paid} for fee in item["DanhSachLePhi"]]
        if not self._channel and "KenhThucHien" in item:  # the defect: not mapped, the one-stop desk's default
            item["KenhThucHien"] = "1"
        for name in self._utc_dossier & item.keys():
            item[name] = _as_utc(item[name])
        return item

    def progress_item(self, dossier: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
        status = entry["TrangThaiHoSo"]
        source = {
            **entry,
            "MaHoSo": dossier["MaHoSo"],
            "TrangThai": status,
            "NguoiXuLy": entry.get("NguoiXuLy") or "Hệ thống",
            "NoiDungXuLy": entry.get("NoiDungXuLy") or STATE_LABELS[status],
            "NgayBatDau": dossier.get("NgayTiepNhan"),
            "NgayKetThucTheoQuyDinh": dossier.get("NgayHenTra"),
        }
        item = {name: source[name] for name in self.progress_fields if _present(source.get(name))}
        for name in self._utc_progress & item.keys():
            item[name] = _as_utc(item[name])
        return item
