"""Every contract document is a valid OpenAPI 3.1 document and every schema compiles."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from haicap.contract_registry import ContractRegistry, default_registry

REGISTRY = default_registry()


@pytest.mark.parametrize("name", REGISTRY.openapi_names())
def test_openapi_document_is_valid(name: str) -> None:
    path = REGISTRY.openapi_path(name)
    spec = REGISTRY.openapi(name)
    assert spec["openapi"].startswith("3.1"), f"{path} must be OpenAPI 3.1"
    validate(spec, base_uri=path.as_uri())


@pytest.mark.parametrize("filename", REGISTRY.schema_names())
def test_every_schema_definition_compiles(filename: str) -> None:
    document = REGISTRY.schema_file(filename)
    assert document.get("$schema") == "https://json-schema.org/draft/2020-12/schema", filename
    for name in document.get("$defs", {}):
        REGISTRY.validator(f"{filename}#/$defs/{name}")


def test_common_formats_accept_and_refuse() -> None:
    def ok(name: str, value: str) -> bool:
        return REGISTRY.validator(f"common.schema.json#/$defs/{name}").is_valid(value)

    assert ok("MaHoSo", "000.17.22.H56-210531-0001")
    assert not ok("MaHoSo", "000.17.22.H56-211331-0001")  # month 13
    assert ok("MaTTHC", "1.001193") and ok("MaTTHC", "1.001193.000.00.00.H56")
    assert not ok("MaTTHC", "1.1193")
    assert ok("SoCCCD", "001203012345") and not ok("SoCCCD", "099203012345")  # 099 is no province
    assert ok("ThoiGian", "20250701083000") and not ok("ThoiGian", "2025-07-01 08:30")
    assert ok("SoDienThoai", "0912345678") and ok("SoDienThoai", "+84912345678")
    assert not ok("SoDienThoai", "0112345678")


def test_violations_name_the_field() -> None:
    validator = REGISTRY.validator("common.schema.json#/$defs/DinhDanh")
    assert [v.field for v in validator.violations({"LoaiDinhDanh": "1"})] == ["SoDinhDanh"]
    fields = {v.field for v in validator.violations({"LoaiDinhDanh": "1", "SoDinhDanh": "12"})}
    assert fields == {"SoDinhDanh"}


def test_contracts_folder_can_be_swapped(tmp_path, monkeypatch) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "x.schema.json").write_text(
        '{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"A": {"type": "integer"}}}'
    )
    monkeypatch.setenv("HAICAP_CONTRACTS", str(tmp_path))
    registry = ContractRegistry()
    assert registry.root == tmp_path
    assert registry.validator("x.schema.json#/$defs/A").violations("no")[0].field == "(body)"


def test_references_outside_the_contracts_folder_are_refused(tmp_path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "x.schema.json").write_text(
        '{"$schema": "https://json-schema.org/draft/2020-12/schema",'
        ' "$defs": {"A": {"$ref": "https://example.org/evil.json"}}}'
    )
    from haicap.errors import HaicapError

    with pytest.raises(HaicapError, match="cannot be compiled"):
        ContractRegistry(tmp_path).validator("x.schema.json#/$defs/A")
