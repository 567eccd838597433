"""The national API contracts as loaded data: one registry every component reads.

Contracts live in a folder (``contracts/`` by default, or the folder named by ``HAICAP_CONTRACTS``):
OpenAPI 3.1 documents ``<name>.openapi.yaml`` and JSON Schema 2020-12 files ``schemas/<name>.schema.json``.
Schemas refer to each other by relative path (``common.schema.json#/$defs/MaHoSo``); references are
resolved inside the contracts folder only, never over the network.

Example::

    registry = default_registry()
    violations = registry.validator("sync.schema.json#/$defs/DongBoHoSoMCItem").violations(item)
    fields = registry.property_names("sync.schema.json#/$defs/DongBoHoSoMCItem")
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema_rs
import yaml

from haicap.errors import HaicapError

__all__ = [
    "ContractRegistry",
    "SchemaValidator",
    "Violation",
    "contracts_digest",
    "default_contracts_dir",
    "default_registry",
]

PACKAGED_CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"


def default_contracts_dir() -> Path:
    """The contracts folder in use: ``$HAICAP_CONTRACTS`` if set, else the packaged one."""
    override = os.environ.get("HAICAP_CONTRACTS")
    if override:
        return Path(override)
    try:  # installed (non-editable): the folder is the haicap.contracts package
        import haicap.contracts as packaged

        return Path(packaged.__file__).resolve().parent
    except ImportError:  # pragma: no cover - source checkout without install
        return PACKAGED_CONTRACTS


@dataclass(frozen=True, slots=True)
class Violation:
    """One way an instance breaks its schema: the offending field and what was expected."""

    field: str
    message: str

    def as_problem_error(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def _field_path(path: list[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class SchemaValidator:
    """A compiled JSON Schema (jsonschema-rs) that reports violations by field name."""

    def __init__(self, ref: str, compiled: Any) -> None:
        self.ref = ref
        self._compiled = compiled

    def is_valid(self, instance: Any) -> bool:
        return bool(self._compiled.is_valid(instance))

    @property
    def compiled(self) -> Any:
        """The jsonschema-rs validator itself: its ``is_valid`` without this wrapper's call, for hot loops."""
        return self._compiled

    def violations(self, instance: Any, limit: int = 20) -> list[Violation]:
        """Every violation (up to ``limit``), each naming the field; empty when valid."""
        found: list[Violation] = []
        for error in self._compiled.iter_errors(instance):
            path = list(error.instance_path)
            kind = error.kind
            missing = getattr(kind, "property", None)
            if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required) and missing is not None:
                path.append(str(missing))
            found.append(Violation(field=_field_path(path) or "(body)", message=error.message))
            if len(found) >= limit:
                break
        return found


class ContractRegistry:
    """Loads OpenAPI documents and JSON Schemas from one contracts folder, with caching."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_contracts_dir()
        if not self.root.is_dir():
            raise HaicapError(f"contracts folder {self.root} does not exist (set HAICAP_CONTRACTS to a folder)")
        self.schemas_dir = self.root / "schemas"
        self._validators: dict[str, SchemaValidator] = {}

    # -- documents -------------------------------------------------------------------------------
    def openapi_names(self) -> list[str]:
        return sorted(p.name.removesuffix(".openapi.yaml") for p in self.root.glob("*.openapi.yaml"))

    def openapi_path(self, name: str) -> Path:
        path = self.root / f"{name}.openapi.yaml"
        if not path.is_file():
            raise HaicapError(
                f"no contract {name!r} in {self.root} (have: {', '.join(self.openapi_names()) or 'none'})"
            )
        return path

    def openapi(self, name: str) -> dict[str, Any]:
        return _load_yaml(self.openapi_path(name))

    def schema_names(self) -> list[str]:
        return sorted(p.name for p in self.schemas_dir.glob("*.schema.json"))

    def schema_file(self, filename: str) -> dict[str, Any]:
        path = self.schemas_dir / filename
        if not path.is_file():
            raise HaicapError(f"no schema file {filename!r} in {self.schemas_dir}")
        return _load_json(path)

    def schema(self, ref: str) -> dict[str, Any]:
        """The (unresolved) schema at ``file.schema.json#/json/pointer``."""
        filename, _, pointer = ref.partition("#")
        node: Any = self.schema_file(filename)
        for token in (t for t in pointer.split("/") if t):
            token = token.replace("~1", "/").replace("~0", "~")
            try:
                node = node[token]
            except (KeyError, TypeError):
                raise HaicapError(f"schema reference {ref!r} does not resolve (at {token!r})") from None
        return node  # type: ignore[no-any-return]

    def property_names(self, ref: str) -> list[str]:
        """Top-level property names of an object schema, in contract order (no field list typed twice)."""
        return list(self.schema(ref).get("properties", {}))

    def required_names(self, ref: str) -> list[str]:
        return list(self.schema(ref).get("required", []))

    def enum(self, ref: str) -> list[Any]:
        return list(self.schema(ref)["enum"])

    # -- validation ------------------------------------------------------------------------------
    def validator(self, ref: str) -> SchemaValidator:
        """A cached compiled validator for ``file.schema.json#/$defs/Name`` (or a whole file)."""
        cached = self._validators.get(ref)
        if cached is not None:
            return cached
        filename, _, pointer = ref.partition("#")
        base_uri = (self.schemas_dir / filename).resolve().as_uri()
        wrapper = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"{base_uri}#{pointer}"}
        try:
            compiled = jsonschema_rs.validator_for(
                wrapper, retriever=self._retrieve, base_uri=base_uri + "-root", validate_formats=False
            )
        except Exception as exc:  # jsonschema-rs raises ValueError/ReferencingError on a bad schema
            raise HaicapError(f"schema {ref!r} in {self.schemas_dir} cannot be compiled: {exc}") from exc
        validator = SchemaValidator(ref, compiled)
        self._validators[ref] = validator
        return validator

    def _retrieve(self, uri: str) -> Any:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"contracts may only reference files inside {self.root}, not {uri}")
        path = Path(unquote(parsed.path)).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"{path} is outside the contracts folder {self.root}")
        return _load_json(path)

    def iter_schema_files(self) -> Iterator[Path]:
        yield from sorted(self.schemas_dir.glob("*.schema.json"))


@functools.lru_cache(maxsize=8)
def _load_json_cached(path: str, mtime: float) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _load_json(path: Path) -> Any:
    try:
        return _load_json_cached(str(path), path.stat().st_mtime)
    except json.JSONDecodeError as exc:
        raise HaicapError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except OSError as exc:
        raise HaicapError(f"{path}: cannot read: {exc.strerror}") from exc


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise HaicapError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HaicapError(f"{path}: expected a mapping at the top level")
    return data


def contracts_digest(root: Path | None = None) -> str:
    """SHA-256 over the contracts folder in use (each YAML/JSON/Markdown file's relative path and bytes, in
    order): two runs made against the same contracts have the same digest, whatever the install path."""
    import hashlib

    folder = root or default_contracts_dir()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".yaml", ".json", ".md"}):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def default_registry() -> ContractRegistry:
    """The process-wide registry over :func:`default_contracts_dir`."""
    return ContractRegistry()
