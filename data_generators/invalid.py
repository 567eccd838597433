"""Invalid variants of a valid record, one defect each, labelled with what is wrong, for negative tests.

Each :class:`Variant` says which field is broken, how (``label``), and who can notice: ``schema`` defects
break the contract's JSON Schema (the receiver must answer 4xx naming ``field``); ``semantic`` defects pass
the schema and need the receiver's own knowledge (the official unit list, the tax-code check digit, the
catalogue, the signed-in identity). Variants are produced only for fields the record's contract has.

Example::

    for variant in invalid_variants(record, "submission"):
        response = client.post(url, json=variant.record)   # expect 4xx naming variant.field
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.data_generators.dossiers import SHAPES
from haicap.data_generators.taxcode import tax_code_check_digit
from haicap.data_generators.units import admin_units

__all__ = ["Variant", "invalid_variants"]


@dataclass(frozen=True, slots=True)
class Variant:
    label: str
    field: str
    detectable_by: str  # "schema" | "semantic"
    description: str
    record: dict[str, Any]


def _with(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy with ``path`` (``A`` or ``A[0].B``) set to ``value``."""
    out = copy.deepcopy(record)
    node: Any = out
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return out


def _wrong_check_digit(code: str) -> str:
    check = tax_code_check_digit(code[:9])
    return f"{code[:9]}{((check or 0) + 1) % 10}"


def invalid_variants(
    record: dict[str, Any], shape: str, registry: ContractRegistry | None = None
) -> list[Variant]:
    """Every applicable one-defect variant of a valid dossier record of ``shape`` (see ``dossiers.SHAPES``)."""
    registry = registry or default_registry()
    ref = SHAPES[shape]
    fields = set(registry.property_names(ref))
    required = registry.required_names(ref)
    out: list[Variant] = []

    def add(label: str, path: str, detect: str, description: str, make: Callable[[], dict[str, Any]]) -> None:
        if path.split("[")[0].split(".")[0] in fields:
            out.append(Variant(label, path, detect, description, make()))

    cccd = record.get("DinhDanhCHS", [{}])[0].get("SoDinhDanh", "")
    units = admin_units()
    if cccd:
        p = "DinhDanhCHS[0].SoDinhDanh"
        add("cccd-too-short", p, "schema", "CCCD of 11 digits", lambda: _with(record, p, cccd[:11]))
        add("cccd-too-long", p, "schema", "CCCD of 13 digits", lambda: _with(record, p, cccd + "0"))
        add("cccd-not-digits", p, "schema", "CCCD with a letter", lambda: _with(record, p, cccd[:11] + "A"))
        add("cccd-unknown-province", p, "schema", "birth-province code 000 does not exist",
            lambda: _with(record, p, "000" + cccd[3:]))  # fmt: skip
        flipped = str(int(cccd[3]) ^ 2)  # 1900s <-> 2000s, same gender: the birth year no longer matches
        add("cccd-century-mismatch", p, "semantic",
            "gender/century digit disagrees with the owner's birth year (not the signed-in identity)",
            lambda: _with(record, p, cccd[:3] + flipped + cccd[4:]))  # fmt: skip
        add("identity-type-unknown", "DinhDanhCHS[0].LoaiDinhDanh", "schema", "LoaiDinhDanh 9 is not defined",
            lambda: _with(record, "DinhDanhCHS[0].LoaiDinhDanh", "9"))  # fmt: skip
    for index, identity in enumerate(record.get("DinhDanhCHS", [])):
        if identity.get("LoaiDinhDanh") == "3":
            p = f"DinhDanhCHS[{index}].SoDinhDanh"
            add("tax-code-checksum", p, "semantic", "tax code with a wrong check digit",
                lambda p=p, n=identity["SoDinhDanh"]: _with(record, p, _wrong_check_digit(n)))  # fmt: skip
    ma_xa = record.get("MaXa")
    if ma_xa:
        old = next(w.code for w in units.legacy_wards() if not units.is_current_commune(w.code))
        add("commune-pre-merger", "MaXa", "semantic", f"pre-merger ward code {old} (not in Decision 19/2025)",
            lambda: _with(record, "MaXa", old))  # fmt: skip
        province = units.commune(ma_xa).province_code
        other = next(c.code for c in units.communes() if c.province_code != province)
        add("commune-other-province", "MaXa", "semantic", f"current commune {other} of another province",
            lambda: _with(record, "MaXa", other))  # fmt: skip
        add("commune-format", "MaXa", "schema", "commune code of 4 digits", lambda: _with(record, "MaXa", ma_xa[1:]))
    add("procedure-format", "MaTTHC", "schema", "MaTTHC without its dot", lambda: _with(record, "MaTTHC", "1001193"))
    add("procedure-unknown", "MaTTHC", "semantic", "MaTTHC 9.999999 is not in the catalogue",
        lambda: _with(record, "MaTTHC", "9.999999"))  # fmt: skip
    add("phone-format", "SoDienThoai", "schema", "mobile number with the retired 01x prefix",
        lambda: _with(record, "SoDienThoai", "01234567890"))  # fmt: skip
    # Some contracts constrain Email with a pattern, others leave it free text: then only the receiver can tell.
    email_schema = registry.schema(ref).get("properties", {}).get("Email", {})
    email_detect = "schema" if "pattern" in email_schema or "format" in email_schema else "semantic"
    add("email-format", "Email", email_detect, "e-mail without @", lambda: _with(record, "Email", "nguyen.van.a"))
    add("channel-unknown", "KenhThucHien", "schema", "KenhThucHien 4 is not defined",
        lambda: _with(record, "KenhThucHien", "4"))  # fmt: skip
    for date_field in ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra"):
        value = record.get(date_field)
        if value:
            iso = f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}"
            add("date-format", date_field, "schema", f"ISO 8601 {iso} instead of yyyyMMddHHmmss",
                lambda f=date_field, v=iso: _with(record, f, v))  # fmt: skip
    if record.get("MaHoSo"):
        add("dossier-code-format", "MaHoSo", "schema", "MaHoSo with a 3-digit sequence",
            lambda: _with(record, "MaHoSo", record["MaHoSo"][:-4] + record["MaHoSo"][-3:]))  # fmt: skip
    if record.get("TrangThaiHoSo"):
        add("status-unknown", "TrangThaiHoSo", "schema", "TrangThaiHoSo 11 is not defined",
            lambda: _with(record, "TrangThaiHoSo", "11"))  # fmt: skip
    for name in required:
        if name in record:
            out.append(Variant("missing-required", name, "schema", f"required field {name} left out",
                               {k: v for k, v in copy.deepcopy(record).items() if k != name}))  # fmt: skip
    schema = registry.schema(ref)
    if schema.get("additionalProperties") is False:
        out.append(Variant("unknown-field", "DanhSachLePhiTuChon", "schema", "a field the contract does not define",
                           {**copy.deepcopy(record), "DanhSachLePhiTuChon": []}))  # fmt: skip
    return out
