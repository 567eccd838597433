"""JSON line templates: a record whose varying parts are named slots, compiled once to a bytes ``%``-format.

Building a dict per record and serialising it costs more than everything else a fast generator does. So a
record is described once as plain JSON values (constants, encoded here with orjson) in which the per-record
parts are :class:`Slot` markers, or :class:`Text` for a string that mixes constant text and slots.
:func:`compile_template` turns that into ``b'{"MaXa":"%s",...}'`` plus the slot names in the order the format
needs them, and a record then costs one ``bytes % tuple``. Slot values are bytes that are already JSON-safe:
digits, or text escaped once with :func:`escaped` (``%s`` of bytes is a plain copy, several times faster than
formatting numbers or non-ASCII ``str`` per record).

Example::

    template, slots = compile_template({"MaXa": Text(Slot("commune")), "Nam": Text("Năm ", Slot("year"))})
    template % (b"00226", b"2025")   # b'{"MaXa":"00226","Nam":"N\\xc4\\x83m 2025"}'
    slots                            # ('commune', 'year')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Slot", "Text", "compile_template", "escaped"]


@dataclass(frozen=True, slots=True)
class Slot:
    """A per-record value. Inside :class:`Text` it is string content; on its own, a raw JSON fragment."""

    name: str


class Text:
    """A JSON string made of constant text and slots: ``Text("/files/", Slot("file"), ".pdf")``."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str | Slot) -> None:
        self.parts = parts


def escaped(text: str) -> bytes:
    """``text`` as it appears between the quotes of a JSON string, UTF-8 (orjson's escaping)."""
    return orjson.dumps(text)[1:-1]


def compile_template(value: Any) -> tuple[bytes, tuple[str, ...]]:
    """The ``%``-format of ``value`` as a JSON line (dicts keep their key order) and its slot names, in order."""
    slots: list[str] = []

    def constant(v: Any) -> bytes:
        return orjson.dumps(v).replace(b"%", b"%%")

    def emit(v: Any) -> bytes:
        if isinstance(v, Slot):
            slots.append(v.name)
            return b"%s"
        if isinstance(v, Text):
            pieces = []
            for part in v.parts:
                if isinstance(part, Slot):
                    slots.append(part.name)
                    pieces.append(b"%s")
                else:
                    pieces.append(escaped(part).replace(b"%", b"%%"))
            return b'"' + b"".join(pieces) + b'"'
        if isinstance(v, dict):
            return b"{" + b",".join(constant(str(k)) + b":" + emit(item) for k, item in v.items()) + b"}"
        if isinstance(v, (list, tuple)):
            return b"[" + b",".join(emit(item) for item in v) + b"]"
        return constant(v)

    return emit(value), tuple(slots)
