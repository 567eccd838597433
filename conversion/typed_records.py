"""Old and converted records decoded and validated in one C pass: msgspec types built from the conversion contract.

``convert check`` spends most of its time turning JSON lines into checked records. Parsing each line with orjson
and validating it with jsonschema-rs costs two crossings and a dict per record; msgspec decodes a whole bucket of
lines straight into typed records and checks types, required fields, enums and lengths as it goes. The types are
built here from the ``$defs`` of ``contracts/schemas/conversion.schema.json`` (the contract stays the one place
the record format lives); the schema's ``pattern`` keywords are checked in bulk, one regular-expression match over
all the values of a field in a bucket.

The typed decode is the fast lane, never the judge of validity: a bucket it refuses (one bad record, an
unexpected shape) goes through the exact lane (orjson + jsonschema-rs, record by record), which names what is
wrong where. So the one property that matters is that the typed decode accepts nothing the schema rejects: only
keywords whose meaning it reproduces exactly are translated, and any other keyword in the contract is an error
here (tests/test_convert_check.py compares the two lanes on valid and broken records).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import msgspec

from haicap.contract_registry import default_registry

__all__ = ["RecordTypes", "record_types", "to_plain"]

#: keywords that say nothing about validity (or are given by the translation itself)
_NOTES = frozenset({"description", "title", "$comment", "examples"})
#: the body of a pattern the bulk check reproduces exactly: literals, escaped dots and dashes, positive character
#: classes of plain characters, counted repetition — nothing that can match a line end or the bulk separator
_SIMPLE_BODY = re.compile(r"(?:\[[0-9A-Za-z_\-]+\]|\\[.\-]|[0-9A-Za-z_\-]|\{[0-9]+(?:,[0-9]*)?\}|[?*+])*")
_SEPARATOR = "\x00"


class UnsupportedSchema(ValueError):
    """The contract uses a keyword the typed decode cannot reproduce exactly (extend the translation)."""


@dataclass(frozen=True)
class _Pattern:
    """One ``pattern`` of a top-level field: every value of the field in a bucket matches it, checked at once."""

    field: str
    bulk: re.Pattern[str]
    optional: bool

    def holds(self, records: Sequence[Any]) -> bool:
        """Whether the field of every record (absent: an optional field not given) matches: one fullmatch over the
        values joined by a separator the pattern cannot match (a value holding it adds a part, and the count
        tells)."""
        values = list(map(operator.attrgetter(self.field), records))
        if self.optional:
            values = [v for v in values if v is not msgspec.UNSET]
        if not values:
            return True
        joined = _SEPARATOR.join(values)
        return joined.count(_SEPARATOR) == len(values) - 1 and self.bulk.fullmatch(joined) is not None


@dataclass(frozen=True)
class RecordTypes:
    """The typed record of one definition and how to check a decoded bucket of them."""

    struct: type[msgspec.Struct]
    decoder: msgspec.json.Decoder[Any]
    patterns: tuple[_Pattern, ...]

    def decode(self, data: bytes, lines: int) -> list[Any] | None:
        """The records of ``data`` (``lines`` non-blank JSON lines), or None when any is not a valid record (or a
        line holds other than one JSON value): the caller then takes the exact lane."""
        try:
            records = self.decoder.decode_lines(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if len(records) != lines:
            return None
        if not all(pattern.holds(records) for pattern in self.patterns):
            return None
        return records

    def convert(self, record: dict[str, Any]) -> Any:
        """A record the exact lane found valid, as the typed record (so one set of rules reads both lanes)."""
        return msgspec.convert(record, self.struct)


def to_plain(record: msgspec.Struct) -> dict[str, Any]:
    """A typed record as the plain object it was decoded from (absent optional fields absent)."""
    plain: dict[str, Any] = msgspec.to_builtins(record)
    return plain


@cache
def record_types(name: str) -> RecordTypes:
    """The typed decode of ``conversion.schema.json#/$defs/<name>`` (LegacyRecord, ConvertedRecord)."""
    document = default_registry().schema_file("conversion.schema.json")
    translator = _Translator(document["$defs"], top=name)
    struct = translator.struct(name)
    patterns = tuple(_Pattern(field, re.compile(rf"(?:{body}{_SEPARATOR})*{body}"), optional)
                     for field, body, optional in translator.top_patterns.get(name, ()))
    return RecordTypes(struct, msgspec.json.Decoder(struct), patterns)


class _Translator:
    """JSON Schema definitions → msgspec types, keyword by keyword; anything else raises UnsupportedSchema."""

    def __init__(self, definitions: dict[str, Any], top: str) -> None:
        self.definitions, self.top = definitions, top
        self.structs: dict[str, type[msgspec.Struct]] = {}
        #: definition → (field, pattern body, optional) of its own fields, checked in bulk over a bucket
        self.top_patterns: dict[str, list[tuple[str, str, bool]]] = {}
        self._current: str | None = None

    def struct(self, name: str) -> type[msgspec.Struct]:
        if name in self.structs:
            return self.structs[name]
        schema = self.definitions.get(name)
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"$defs/{name} is not a definition")
        _only(schema, {"type", "required", "properties"}, f"$defs/{name}")
        if schema.get("type") != "object" or "additionalProperties" in schema:
            raise UnsupportedSchema(f"$defs/{name}: only an object with properties is translated")
        required = set(schema.get("required", ()))
        properties: dict[str, Any] = schema.get("properties", {})
        if not required <= properties.keys():
            raise UnsupportedSchema(f"$defs/{name}: a required field without a property")
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        outer, self._current = self._current, name
        try:
            for field, spec in properties.items():
                kind = self.type_of(spec, f"$defs/{name}/properties/{field}", (field, field not in required))
                fields.append((field, kind) if field in required
                              else (field, kind | msgspec.UnsetType, msgspec.UNSET))
        finally:
            self._current = outer
        fields.sort(key=len)  # required fields (no default) before optional ones, as a Struct wants
        made = msgspec.defstruct(f"Typed{name}", fields, gc=False)
        self.structs[name] = made
        return made

    def type_of(self, spec: Any, where: str, field: tuple[str, bool] | None = None) -> Any:
        if not isinstance(spec, dict):
            raise UnsupportedSchema(f"{where}: not a schema object")
        if "$ref" in spec:
            _only(spec, {"$ref"}, where)
            ref = spec["$ref"]
            if not ref.startswith("#/$defs/"):
                raise UnsupportedSchema(f"{where}: $ref {ref} outside this file")
            return self.struct(ref.removeprefix("#/$defs/"))
        if "enum" in spec:
            _only(spec, {"enum"}, where)
            if not spec["enum"] or not all(isinstance(v, str) for v in spec["enum"]):
                raise UnsupportedSchema(f"{where}: only an enum of strings is translated")
            return Literal[tuple(spec["enum"])]
        kind = spec.get("type")
        if kind == "string":
            return self._string(spec, where, field)
        if kind == "boolean":
            _only(spec, {"type"}, where)
            return bool
        if kind == "array":
            _only(spec, {"type", "items"}, where)
            return list[self.type_of(spec.get("items", {}), f"{where}/items")]  # type: ignore[misc]
        raise UnsupportedSchema(f"{where}: type {kind!r} is not translated")

    def _string(self, spec: dict[str, Any], where: str, field: tuple[str, bool] | None) -> Any:
        _only(spec, {"type", "minLength", "maxLength", "pattern"}, where)
        meta: dict[str, Any] = {}
        if "minLength" in spec:
            meta["min_length"] = int(spec["minLength"])
        if "maxLength" in spec:
            meta["max_length"] = int(spec["maxLength"])
        if "pattern" in spec:
            body = _pattern_body(spec["pattern"], where)
            if field is not None and self._current == self.top:
                self.top_patterns.setdefault(self._current, []).append((field[0], body, field[1]))
            else:  # a field of a nested object (rare in a record): msgspec checks it with the anchored body
                meta["pattern"] = rf"\A(?:{body})\Z"
        return Annotated[str, msgspec.Meta(**meta)] if meta else str


def _pattern_body(pattern: Any, where: str) -> str:
    """The body of an anchored ``^…$`` pattern in the subset whose Python and ECMA-262 meanings are the same."""
    if not isinstance(pattern, str) or not (pattern.startswith("^") and pattern.endswith("$")):
        raise UnsupportedSchema(f"{where}: pattern {pattern!r} is not anchored ^…$")
    body = pattern[1:-1]
    if not _SIMPLE_BODY.fullmatch(body):
        raise UnsupportedSchema(f"{where}: pattern {pattern!r} is outside the translated subset")
    return body


def _only(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(spec) - allowed - _NOTES
    if extra:
        raise UnsupportedSchema(f"{where}: keyword(s) {', '.join(sorted(extra))} are not translated")
