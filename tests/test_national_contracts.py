"""The national contracts (idp, sync, payment) are valid OpenAPI 3.1 / JSON Schema, and the checksum rule holds."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from referencing.exceptions import Unresolvable

from haicap.contract_registry import default_registry
from haicap.errors import HaicapError
from haicap.payment_checksum import checksum, checksum_fields, message_types, verify

NATIONAL_DOCS = ["national-idp", "national-sync", "national-payment"]
NATIONAL_SCHEMAS = ["idp.schema.json", "sync.schema.json", "payment.schema.json"]


def _load(name: str) -> tuple[dict[str, Any], Path]:
    path = default_registry().openapi_path(name).resolve()
    return yaml.safe_load(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("name", NATIONAL_DOCS)
def test_openapi_document_is_valid(name: str) -> None:
    spec, path = _load(name)
    assert spec["openapi"] == "3.1.0"
    validate(spec, base_uri=path.as_uri())


def test_openapi_validation_really_resolves_schema_files() -> None:
    spec, path = _load("national-sync")
    broken = copy.deepcopy(spec)
    broken["paths"]["/sync/login"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "schemas/sync.schema.json#/$defs/NoSuchThing"
    }
    with pytest.raises(Unresolvable):
        validate(broken, base_uri=path.as_uri())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize("name", NATIONAL_DOCS)
def test_every_ref_resolves(name: str) -> None:
    """openapi-spec-validator does not walk request bodies or callbacks: resolve every $ref ourselves."""
    spec, _ = _load(name)
    registry = default_registry()
    refs = _refs(spec)
    assert refs
    for ref in refs:
        target, _, pointer = ref.partition("#")
        if target:
            assert target.startswith("schemas/"), ref
            registry.validator(f"{target.removeprefix('schemas/')}#{pointer}")
        else:
            node: Any = spec
            for token in pointer.strip("/").split("/"):
                node = node[token]


@pytest.mark.parametrize("name", NATIONAL_DOCS)
def test_control_paths_are_tagged_and_secured(name: str) -> None:
    spec, _ = _load(name)
    for path, item in spec["paths"].items():
        if not path.startswith(("/_control", "/_ledger")):
            continue
        for op in item.values():
            assert "sandbox-control" in op["tags"], path
            assert op.get("security") == [{"controlToken": []}], path


@pytest.mark.parametrize("filename", NATIONAL_SCHEMAS)
def test_every_def_compiles(filename: str) -> None:
    registry = default_registry()
    defs = registry.schema(f"{filename}#/$defs")
    assert defs
    for name in defs:
        registry.validator(f"{filename}#/$defs/{name}")


def test_item_fields_follow_domain() -> None:
    registry = default_registry()
    names = registry.property_names("sync.schema.json#/$defs/DongBoHoSoMCItem")
    for field in ("MaHoSo", "NgayTiepNhan", "DinhDanhCHS", "TaiLieuNop", "DanhSachLePhi", "MaXa", "NoiNopHoSo"):
        assert field in names
    required = registry.required_names("sync.schema.json#/$defs/DongBoHoSoMCItem")
    assert {"MaXa", "DuocThanhToanTrucTuyen", "TrangThaiHoSo"} <= set(required)
    bad = registry.validator("sync.schema.json#/$defs/DongBoHoSoMCItem").violations(
        {"MaHoSo": "x", "NgayTiepNhan": "2025-07-01", "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "1"}]}
    )
    fields = {v.field for v in bad}
    assert {"MaHoSo", "NgayTiepNhan", "MaXa", "DinhDanhCHS[0].SoDinhDanh"} <= fields


def test_checksum_fields_come_from_the_contract() -> None:
    assert message_types() == ["CALLBACK", "GET_BILL", "INIT", "QUERY"]
    assert checksum_fields("QUERY") == ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
    assert checksum_fields("INIT")[-1] == "Ip"
    with pytest.raises(HaicapError):
        checksum_fields("REFUND")


def test_checksum_rule() -> None:
    msg = {"LoaiBanTin": "QUERY", "PhienBan": "1.0.6", "MaDoiTac": "DVC01", "MaThamChieu": "R1",
           "ThoiGianGD": "20250701080000"}
    expected = hashlib.sha256(b"QUERY|1.0.6|DVC01|R1|20250701080000|s3cret").hexdigest()
    assert checksum(msg, "s3cret", "QUERY") == expected
    signed = {**msg, "MaXacThuc": expected}
    assert verify(signed, "s3cret", "QUERY")
    assert not verify(signed, "other", "QUERY")
    assert not verify({**signed, "MaThamChieu": "R2"}, "s3cret", "QUERY")
    assert not verify(msg, "s3cret", "QUERY")
    # integers render in decimal, missing fields as ''
    cb = {"LoaiBanTin": "CALLBACK", "MaLoi": "00", "SoTien": 50000}
    raw = "CALLBACK|00||" + "|50000" + "|" * 5 + "|k"
    assert checksum(cb, "k", "CALLBACK") == hashlib.sha256(raw.encode()).hexdigest()
