"""The document axis contract as typed records: the one reader of ``contracts/schemas/axis.schema.json``.

The schema holds, as data, what the National Document Interconnection Axis (edXML, QCVN 102:2016/BTTTT) fixes:
the namespace and element paths of packages and status messages (``x-edxml``), the DocumentId and timestamp
formats (``x-formats``), the status codes with their meanings (``x-status-codes``) and the legal status order
(``x-status-transitions``). The counterpart, the reference province, the generator and the checks read them
here; nobody types a status code, an element name or a format again.

Example::

    axis = axis_contract()
    axis.allows(None, "01")              # True: a document's first status
    axis.allows("01", "06")              # False: 06 needs 03 first
    axis.sequence_problems(["01", "03", "06"])   # []
    axis.forbidden_after("03")           # ('01', '02', '03', '15', '16')
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = ["SCHEMA", "AxisContract", "TimeFormat", "axis_contract", "parse_axis_contract"]

SCHEMA = "axis.schema.json"


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """A date or timestamp layout of the contract (``YYYY/MM/DD``): its pattern and its strptime form."""

    name: str
    layout: str
    strptime: str
    regex: re.Pattern[str]

    def valid(self, value: Any) -> bool:
        if not isinstance(value, str) or not self.regex.fullmatch(value):
            return False
        try:
            datetime.strptime(value, self.strptime)
        except ValueError:
            return False
        return True

    def format(self, moment: datetime) -> str:
        return moment.strftime(self.strptime)


@dataclass(frozen=True)
class AxisContract:
    """Element names, formats, status codes and the status order of the axis contract."""

    namespace: str
    root: str
    paths: dict[str, str]
    required: tuple[str, ...]
    reference_fields: tuple[str, ...]
    attachment_fields: tuple[str, ...]
    status_root: str
    status_required: tuple[str, ...]
    status_optional: tuple[str, ...]
    document_id: re.Pattern[str]
    document_id_layout: str
    formats: dict[str, TimeFormat]
    statuses: dict[str, str]
    #: status code → who sends it ("recipient" or "sender")
    sent_by: dict[str, str]
    initial: tuple[str, ...]
    final: tuple[str, ...]
    next: dict[str, tuple[str, ...]]
    acknowledge: tuple[str, ...]
    acknowledge_within: float
    final_within: float

    # -- statuses --------------------------------------------------------------------------------
    def meaning(self, code: str) -> str:
        return self.statuses.get(code, "not a status code of the contract")

    def label(self, code: str) -> str:
        return f"{code} ({self.meaning(code)})"

    def recipient_codes(self) -> tuple[str, ...]:
        return tuple(c for c, by in self.sent_by.items() if by == "recipient")

    def allows(self, previous: str | None, status: str) -> bool:
        """Whether ``status`` may follow ``previous`` (None: the document's first status)."""
        if previous is None:
            return status in self.initial
        return status in self.next.get(previous, ())

    def forbidden_after(self, previous: str, by: str = "recipient") -> tuple[str, ...]:
        """Status codes of ``by`` that may never follow ``previous``, in contract order."""
        return tuple(c for c, who in self.sent_by.items() if who == by and not self.allows(previous, c))

    def forbidden_pairs(self, by: str = "recipient") -> list[tuple[str, str]]:
        """Every (previous, next) pair the order forbids, for the states a document can be in."""
        return [(s, c) for s in self.next for c in self.forbidden_after(s, by)]

    def path_to(self, status: str) -> tuple[str, ...]:
        """The shortest recipient status sequence from arrival to ``status`` (``03`` → ('01', '03'))."""
        paths: dict[str, tuple[str, ...]] = {c: (c,) for c in self.initial}
        frontier = list(self.initial)
        while frontier and status not in paths:
            current = frontier.pop(0)
            for nxt in self.next.get(current, ()):
                if nxt not in paths and self.sent_by.get(nxt) == "recipient":
                    paths[nxt] = (*paths[current], nxt)
                    frontier.append(nxt)
        if status not in paths:
            raise HaicapError(f"{SCHEMA}#/x-status-transitions: {status!r} cannot be reached")
        return paths[status]

    def sequence_problems(self, sequence: Sequence[str]) -> list[str]:
        """Each step of ``sequence`` the legal order forbids, as ``a → b`` with the meanings."""
        problems: list[str] = []
        previous: str | None = None
        for status in sequence:
            if status not in self.statuses:
                problems.append(f"{status!r} is not a status code")
            elif not self.allows(previous, status):
                before = "start" if previous is None else self.label(previous)
                problems.append(f"{before} → {self.label(status)}")
            previous = status
        return problems

    def is_final(self, status: str | None) -> bool:
        return status in self.final

    # -- formats ---------------------------------------------------------------------------------
    def document_id_problem(self, value: Any, sender: str | None = None, date: str | None = None) -> str | None:
        """Why ``value`` is not a DocumentId of the contract (of ``sender``, promulgated on ``date``), or None."""
        if not isinstance(value, str):
            return f"DocumentId is {value!r}, not a string"
        match = self.document_id.fullmatch(value)
        if match is None:
            return f"DocumentId {value!r} is not {self.document_id_layout}"
        organ, day = match.group(1), match.group(2)
        if not self.formats["PromulgationDate"].valid(day):
            return f"DocumentId {value!r}: {day!r} is not a date (YYYY/MM/DD)"
        if sender is not None and organ != sender:
            return f"DocumentId {value!r} starts with {organ}, not the sender's OrganId {sender}"
        if date is not None and day != date:
            return f"DocumentId {value!r} carries the date {day}, not the PromulgationDate {date}"
        return None


# -- reading the contract --------------------------------------------------------------------------
def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HaicapError(f"{SCHEMA}#/{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _format(name: str, raw: Any) -> TimeFormat:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("layout", "strptime", "pattern")):
        raise HaicapError(f"{SCHEMA}#/x-formats/{name}: expected layout, strptime and pattern strings")
    return TimeFormat(name, raw["layout"], raw["strptime"], re.compile(raw["pattern"]))


def _object(schema: dict[str, Any], key: str) -> dict[str, Any]:
    value = schema.get(key)
    if not isinstance(value, dict):
        raise HaicapError(f"{SCHEMA}#/{key}: expected an object")
    return value


def parse_axis_contract(schema: dict[str, Any]) -> AxisContract:
    """Build the typed contract from the schema file's ``x-`` keywords; a malformed one names where it is wrong."""
    edxml = _object(schema, "x-edxml")
    formats_raw = _object(schema, "x-formats")
    codes = _object(schema, "x-status-codes")
    order = _object(schema, "x-status-transitions")
    statuses = {code: str(v.get("meaning", "")) for code, v in codes.items() if isinstance(v, dict)}
    sent_by = {code: str(v.get("by", "recipient")) for code, v in codes.items() if isinstance(v, dict)}
    nxt_raw = order.get("next")
    if not isinstance(nxt_raw, dict):
        raise HaicapError(f"{SCHEMA}#/x-status-transitions/next: expected an object")
    nxt = {code: _strings(v, f"x-status-transitions/next/{code}") for code, v in nxt_raw.items()}
    for code, targets in nxt.items():
        unknown = [t for t in (code, *targets) if t not in statuses]
        if unknown:
            raise HaicapError(f"{SCHEMA}#/x-status-transitions/next/{code}: {unknown[0]!r} is not a status code")
    doc_id = formats_raw.get("DocumentId")
    if not isinstance(doc_id, dict) or not isinstance(doc_id.get("pattern"), str):
        raise HaicapError(f"{SCHEMA}#/x-formats/DocumentId: expected a pattern")
    paths = {k: v for k, v in edxml.items() if isinstance(v, str)}
    for key in ("namespace", "root", "message_header", "trace_header", "manifest_reference", "attachment",
                "status_root"):
        if key not in paths:
            raise HaicapError(f"{SCHEMA}#/x-edxml/{key}: missing")
    return AxisContract(
        namespace=paths["namespace"], root=paths["root"], paths=paths,
        required=_strings(edxml.get("required"), "x-edxml/required"),
        reference_fields=_strings(edxml.get("reference_fields"), "x-edxml/reference_fields"),
        attachment_fields=_strings(edxml.get("attachment_fields"), "x-edxml/attachment_fields"),
        status_root=paths["status_root"],
        status_required=_strings(edxml.get("status_required"), "x-edxml/status_required"),
        status_optional=_strings(edxml.get("status_optional", []), "x-edxml/status_optional"),
        document_id=re.compile(doc_id["pattern"]), document_id_layout=str(doc_id.get("layout", "")),
        formats={name: _format(name, raw) for name, raw in formats_raw.items() if name != "DocumentId"},
        statuses=statuses, sent_by=sent_by,
        initial=_strings(order.get("initial"), "x-status-transitions/initial"),
        final=_strings(order.get("final"), "x-status-transitions/final"),
        next=nxt,
        acknowledge=_strings(order.get("acknowledge"), "x-status-transitions/acknowledge"),
        acknowledge_within=float(order.get("acknowledge_within_seconds", 5)),
        final_within=float(order.get("final_within_seconds", 5)),
    )


@functools.lru_cache(maxsize=8)
def _contract(registry: ContractRegistry) -> AxisContract:
    return parse_axis_contract(registry.schema_file(SCHEMA))


def axis_contract(registry: ContractRegistry | None = None) -> AxisContract:
    """The axis contract of the contracts in use (read once per registry)."""
    return _contract(registry if registry is not None else default_registry())
