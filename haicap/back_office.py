"""The back-office seam: how haicap gets an officer's action done on a province's dossier.

A real provincial system has its own back office; haicap's officer API (``/officer/dossiers/...``) is only
one way to drive it. Every officer action a check or a scenario step needs goes through one small
:class:`BackOffice`, chosen in the profile (``back_office: {kind: ...}``):

- ``officer_api`` — the officer API of haicap's contract (contracts/province-dossier.openapi.yaml, officer tag);
- ``operator`` — a person does it: haicap prints each instruction (Vietnamese and English), writes it as JSON to
  ``OUT/operator/pending/<id>.json``, and completes the step when the province's own citizen dossier API shows the
  new state (bounded polling, a per-step deadline); the instruction then moves to ``OUT/operator/done/`` (or
  ``expired/`` when the deadline passed: the check could not run);
- ``plugin`` — a vendor's adapter, ``module:Class`` or an entry point of group ``haicap.back_office``: a class
  built with a :class:`BackOfficeContext` that implements :class:`BackOffice`.

The action names and their transitions are read from the dossier contract
(``dossier.schema.json#/$defs/OfficerAction``), never typed here. Checks that must *attempt a forbidden action*
(probing a refusal) keep needing the real officer API (capability ``officer_api``); every other officer action
needs only capability ``back_office``, which any configured back office provides.

Example (a vendor adapter)::

    class MyBackOffice:
        kind = "plugin"

        def __init__(self, context: BackOfficeContext) -> None:
            self.api = MyVendorClient(context.options["url"])

        def act(self, ma_ho_so, action, *, expect_from, expect_to, fields):
            answer = self.api.move(ma_ho_so, action)
            return ActionOutcome(answer.status, dossier=answer.body)

        def dossier(self, ma_ho_so):
            return ActionOutcome(200, dossier=self.api.get(ma_ho_so))
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from haicap.errors import HaicapError
from haicap.http_port import ResponseLike

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "ActionOutcome",
    "BackOffice",
    "BackOfficeContext",
    "BackOfficeError",
    "BackOfficeSettings",
    "CitizenView",
    "Instruction",
    "OfficerApiBackOffice",
    "OperatorBackOffice",
    "Transition",
    "build_back_office",
    "load_plugin",
    "officer_transitions",
    "status_names",
]

ENTRY_POINT_GROUP = "haicap.back_office"
KINDS = ("officer_api", "operator", "plugin")
OFFICER_ACTION_REF = "dossier.schema.json#/$defs/OfficerAction"
STATUS_REF = "common.schema.json#/$defs/TrangThaiHoSo"
DEFAULT_DEADLINE_SECONDS = 300.0
DEFAULT_POLL_SECONDS = 1.0
VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
#: How an officer action reads in an instruction (Vietnamese); keys are the contract's action names
#: (tests/test_back_office.py keeps them equal to the OfficerAction enum). An unknown action reads as its name.
ACTION_VI = {
    "receive": "tiếp nhận",
    "reject": "từ chối tiếp nhận",
    "process": "chuyển xử lý",
    "request-supplement": "yêu cầu bổ sung giấy tờ",
    "request-payment": "yêu cầu thực hiện nghĩa vụ tài chính",
    "stop": "dừng xử lý",
    "complete": "hoàn thành xử lý",
    "return-result": "trả kết quả",
}


class BackOfficeError(HaicapError):
    """The back office could not get the action done (a missed operator deadline, an unreadable dossier): the
    check or step that needed it could not run — never a verdict on the province."""


# -- the contract's table ------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str


@lru_cache(maxsize=1)
def officer_transitions() -> dict[str, Transition]:
    """Every officer action of the dossier contract with the states it starts from and leads to.

    Read from ``OfficerAction``: the action names from its enum, the table from its description
    ("receive 1→2, reject 1→3, process 2|6→4 …"). An action of the enum missing from the table is an error.
    """
    from haicap.contract_registry import default_registry

    schema = default_registry().schema(OFFICER_ACTION_REF)
    names = schema["properties"]["action"]["enum"]
    table = {m["name"]: Transition(m["name"], frozenset(m["sources"].split("|")), m["target"])
             for m in re.finditer(r"(?P<name>[a-z-]+) (?P<sources>[0-9|]+)→(?P<target>[0-9]+)",
                                  schema.get("description", ""))}
    missing = [n for n in names if n not in table]
    if missing:
        raise HaicapError(f"contracts {OFFICER_ACTION_REF}: no transition given for {', '.join(missing)}")
    return {n: table[n] for n in names}


@lru_cache(maxsize=1)
def status_names() -> dict[str, str]:
    """TrangThaiHoSo code → name, from the contract ("1 Mới đăng ký, 2 Được tiếp nhận, …")."""
    from haicap.contract_registry import default_registry

    description = default_registry().schema(STATUS_REF).get("description", "")
    return {m[1]: m[2].strip() for m in re.finditer(r"(\d+) ([^,.0-9]+)", description.split(":", 1)[-1])}


# -- what a back office answers --------------------------------------------------------------------
@dataclass(frozen=True)
class ActionOutcome:
    """What came of an officer action (or a read): the HTTP-like status, the dossier as it is now, a message.

    ``response`` keeps the province's own answer when there was one (officer API), so a check judges exactly
    what the province said; otherwise :meth:`as_response` builds an equivalent answer (200 with the dossier,
    or a problem body with the message).
    """

    status_code: int
    dossier: dict[str, Any] | None = None
    message: str = ""
    response: ResponseLike | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_response(cls, response: ResponseLike) -> ActionOutcome:
        try:
            body = response.json()
        except ValueError:
            body = None
        return cls(response.status_code, body if isinstance(body, dict) else None, response=response)

    def as_response(self) -> ResponseLike:
        if self.response is not None:
            return self.response
        if self.dossier is not None and self.status_code < 400:
            return httpx.Response(self.status_code, json=self.dossier)
        return httpx.Response(self.status_code, json={"title": self.message or "back office", "status":
                                                      self.status_code, "detail": self.message})


@runtime_checkable
class BackOffice(Protocol):
    """One officer action on one dossier, and a read of a dossier as the back office sees it."""

    kind: str

    def act(self, ma_ho_so: str, action: str, *, expect_from: frozenset[str], expect_to: str,
            fields: Mapping[str, Any]) -> ActionOutcome: ...

    def dossier(self, ma_ho_so: str) -> ActionOutcome: ...


# -- settings (profile) and what a back office may use ---------------------------------------------
@dataclass(frozen=True)
class BackOfficeSettings:
    """The profile's ``back_office`` (kind None: no back office; the officer actions' checks are skipped)."""

    kind: str | None = "officer_api"
    plugin: str | None = None
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "plugin":
            out["plugin"] = self.plugin
        if self.kind == "operator":
            out["deadline_seconds"] = self.deadline_seconds
        return out


@dataclass
class BackOfficeContext:
    """What haicap hands a back office: where the province is, the officer token (if the profile names one),
    the profile's ``back_office.options``, the run folder, a console line printer, and the dossier as its
    citizen sees it (:class:`CitizenView`)."""

    province_url: str
    officer_token: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    run_dir: Path = field(default_factory=Path.cwd)
    console: Callable[[str], None] = print
    citizen_view: CitizenView | None = None
    allowed_hosts: frozenset[str] = frozenset()


class CitizenView:
    """A dossier read through the province's citizen API (GET /api/v1/dossiers/{MaHoSo}) with its owner's
    session: the one that submitted it in this run, or — for a dossier the national portal forwarded — its
    owner signed in through the national identity provider (haicap plays it)."""

    def __init__(self, province: Any, national: Any | None) -> None:
        self.province = province  # haicap.province_client.ProvinceClient
        self.national = national  # haicap.counterpart_client.CounterpartClient
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def remember(self, ma_ho_so: str, session: Any) -> None:
        with self._lock:
            self._sessions[ma_ho_so] = session

    def _owner_session(self, ma_ho_so: str) -> Any:
        with self._lock:
            session = self._sessions.get(ma_ho_so)
        if session is not None:
            return session
        owner = self._forwarded_owner(ma_ho_so)
        if owner is None:
            raise BackOfficeError(f"cannot follow dossier {ma_ho_so}: haicap neither submitted nor forwarded it in "
                                  "this run, so it has no citizen session to read it with")
        session = self.province.login(owner)
        self.remember(ma_ho_so, session)
        return session

    def _forwarded_owner(self, ma_ho_so: str) -> str | None:
        if self.national is None:
            return None
        for record in reversed(self.national.forwarded()):
            dossier = record.get("dossier") if isinstance(record, dict) else None
            if isinstance(dossier, dict) and dossier.get("MaHoSo") == ma_ho_so:
                ids = [d for d in dossier.get("DinhDanhCHS") or [] if isinstance(d, dict)]
                return str(ids[0].get("SoDinhDanh")) if ids else None
        return None

    def read(self, ma_ho_so: str) -> ActionOutcome:
        return ActionOutcome.from_response(self.province.dossier(self._owner_session(ma_ho_so), ma_ho_so,
                                                                 name="get dossier (back office)"))


# -- officer API -----------------------------------------------------------------------------------
class OfficerApiBackOffice:
    """haicap's officer API contract, called with the profile's officer token; answers are the province's own."""

    kind = "officer_api"

    def __init__(self, province: Any) -> None:
        self.province = province  # haicap.province_client.ProvinceClient

    def act(self, ma_ho_so: str, action: str, *, expect_from: frozenset[str] = frozenset(), expect_to: str = "",
            fields: Mapping[str, Any] | None = None) -> ActionOutcome:
        return ActionOutcome.from_response(self.province.officer_api_action(ma_ho_so, action, **dict(fields or {})))

    def dossier(self, ma_ho_so: str) -> ActionOutcome:
        return ActionOutcome.from_response(self.province.officer_api_dossier(ma_ho_so))


# -- operator --------------------------------------------------------------------------------------
def _state(outcome: ActionOutcome) -> str | None:
    value = (outcome.dossier or {}).get("TrangThaiHoSo") if outcome.status_code == 200 else None
    return None if value is None else str(value)


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, VN_TZ).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Instruction:
    """One thing the operator is asked to do, as written to ``OUT/operator/pending/<id>.json``."""

    id: str
    ma_ho_so: str
    action: str
    source: str
    target: str
    deadline: float  # epoch seconds
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def vietnamese(self) -> str:
        names = status_names()
        return (f"Hồ sơ {self.ma_ho_so}: {ACTION_VI.get(self.action, self.action)} ({self.source} "
                f"{names.get(self.source, '')} → {self.target} {names.get(self.target, '')})").replace("  ", " ")

    @property
    def text(self) -> str:
        """The console line: Vietnamese, the transition, the contract's action name (English)."""
        return (f"Hồ sơ {self.ma_ho_so}: {ACTION_VI.get(self.action, self.action)} ({self.source} → {self.target})"
                f" — {self.action}")

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "MaHoSo": self.ma_ho_so,
            "action": self.action,
            "from": self.source,
            "to": self.target,
            "deadline": datetime.fromtimestamp(self.deadline, VN_TZ).isoformat(timespec="seconds"),
            "instruction_vi": self.vietnamese,
            "instruction_en": f"dossier {self.ma_ho_so}: {self.action} (state {self.source} → {self.target}) in "
                              "the province's back office",
            "fields": dict(self.fields),
        }


class OperatorBackOffice:
    """A person carries out each action in the province's own back office, guided by instructions.

    ``act`` reads the dossier as its citizen (the state before), writes the instruction to ``pending/``, then
    polls the citizen API every ``poll_seconds`` until the dossier is in the new state (→ ``done/``, 200 with the
    dossier), leaves for another state (→ ``expired/``, :class:`BackOfficeError`), or the deadline passes
    (→ ``expired/``, :class:`BackOfficeError` naming the instruction).
    """

    kind = "operator"
    #: seconds between two "waiting for the operator" lines while an instruction is pending
    PROGRESS_EVERY = 10.0
    #: missed deadlines in a row after which the operator is taken to be gone: later actions fail at once instead
    #: of each waiting a whole deadline (a check that could not run is retried by the next one that needs it)
    MAX_MISSED_IN_A_ROW = 2

    def __init__(self, context: BackOfficeContext, *, deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
                 poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        if context.citizen_view is None:
            raise HaicapError("the operator back office needs the citizen dossier API to see an action done")
        self.view = context.citizen_view
        self.console = context.console
        self.folder = context.run_dir / "operator"
        self.deadline_seconds = deadline_seconds
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._missed: list[str] = []  # ids of the instructions missed in a row
        for sub in ("pending", "done", "expired"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)

    def dossier(self, ma_ho_so: str) -> ActionOutcome:
        return self.view.read(ma_ho_so)

    def act(self, ma_ho_so: str, action: str, *, expect_from: frozenset[str], expect_to: str,
            fields: Mapping[str, Any]) -> ActionOutcome:
        if len(self._missed) >= self.MAX_MISSED_IN_A_ROW:
            raise BackOfficeError(f"not asking the operator to {action} dossier {ma_ho_so}: the deadlines of "
                                  f"{len(self._missed)} instructions in a row were missed ({', '.join(self._missed)})")
        before = self.view.read(ma_ho_so)
        state = _state(before)
        if state is None:
            raise BackOfficeError(f"cannot ask the operator to {action} dossier {ma_ho_so}: its citizen cannot read "
                                  f"it (GET /api/v1/dossiers/{ma_ho_so} → HTTP {before.status_code})")
        if state not in expect_from:
            raise BackOfficeError(f"not asking the operator to {action} dossier {ma_ho_so}: it is in state {state}, "
                                  f"and {action} starts from {'|'.join(sorted(expect_from, key=int))}")
        instruction = self._write(ma_ho_so, action, state, expect_to, fields)
        self.console(f"haicap: operator, please: {instruction.text} — before {_hhmm(instruction.deadline)} "
                     f"({self.folder / 'pending' / (instruction.id + '.json')})")
        return self._await(instruction)

    def _write(self, ma_ho_so: str, action: str, state: str, target: str, fields: Mapping[str, Any]) -> Instruction:
        with self._lock:
            base = f"{ma_ho_so}-{action}"
            number = 1
            while any((self.folder / sub / f"{base}-{number}.json").exists() for sub in ("pending", "done", "expired")):
                number += 1
            instruction = Instruction(f"{base}-{number}", ma_ho_so, action, state, target,
                                      time.time() + self.deadline_seconds, dict(fields))
            path = self.folder / "pending" / f"{instruction.id}.json"
            partial = path.with_suffix(".json.part")
            partial.write_text(json.dumps(instruction.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
            os.replace(partial, path)  # the operator never sees half a file
        return instruction

    def _await(self, instruction: Instruction) -> ActionOutcome:
        last_line = time.monotonic()
        while True:
            now = self.view.read(instruction.ma_ho_so)
            state = _state(now)
            if state == instruction.target:
                self._move(instruction, "done", {"observed": state})
                self._missed.clear()
                return now
            if state is not None and state != instruction.source:
                self._move(instruction, "expired", {"observed": state})
                raise BackOfficeError(f"operator instruction {instruction.id} ({instruction.text}): the dossier went "
                                      f"to state {state}, not {instruction.target}")
            if time.time() >= instruction.deadline:
                self._move(instruction, "expired", {"observed": state})
                self._missed.append(instruction.id)
                raise BackOfficeError(
                    f"operator instruction {instruction.id} ({instruction.text}) was not carried out by its deadline "
                    f"{_hhmm(instruction.deadline)} ({self.deadline_seconds:g} s): the dossier is still in state "
                    f"{state}")
            if time.monotonic() - last_line >= self.PROGRESS_EVERY:
                self.console(self.progress())
                last_line = time.monotonic()
            time.sleep(min(self.poll_seconds, max(0.0, instruction.deadline - time.time())))

    def _move(self, instruction: Instruction, where: str, extra: dict[str, Any]) -> None:
        source = self.folder / "pending" / f"{instruction.id}.json"
        body = {**instruction.as_json(), where: datetime.now(VN_TZ).isoformat(timespec="seconds"), **extra}
        target = self.folder / where / source.name
        target.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            source.unlink()

    def progress(self) -> str:
        """``waiting for the operator: 3 pending, 2 done, next deadline 04:12:00`` (every worker's instructions)."""
        pending = sorted((self.folder / "pending").glob("*.json"))
        deadlines = []
        for path in pending:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                deadlines.append(datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["deadline"]))
        done = len(list((self.folder / "done").glob("*.json")))
        expired = len(list((self.folder / "expired").glob("*.json")))
        line = f"haicap: waiting for the operator: {len(pending)} pending, {done} done"
        line += f", {expired} expired" if expired else ""
        return line + (f", next deadline {min(deadlines).astimezone(VN_TZ):%H:%M:%S}" if deadlines else "")


# -- plugins ---------------------------------------------------------------------------------------
def load_plugin(spec: str) -> type:
    """The class a plugin names: ``module:Class``, or an entry point of group ``haicap.back_office``."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise HaicapError(f"cannot import back-office plugin module {module_name!r}: {exc}") from None
        found = getattr(module, attr, None)
        if not isinstance(found, type):
            raise HaicapError(f"back-office plugin {spec!r}: module {module_name} has no class {attr}")
        return found
    named = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if not named:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise HaicapError(f"no back-office plugin {spec!r} in entry point group {ENTRY_POINT_GROUP} "
                          f"(installed: {', '.join(known) or 'none'}); or name it as module:Class")
    loaded = named[0].load()
    if not isinstance(loaded, type):
        raise HaicapError(f"back-office plugin {spec!r} is not a class")
    return loaded


def build_back_office(settings: BackOfficeSettings, context: BackOfficeContext, province: Any) -> BackOffice | None:
    """The back office the settings choose (None: no back office configured)."""
    if settings.kind is None:
        return None
    if settings.kind == "officer_api":
        return OfficerApiBackOffice(province)
    if settings.kind == "operator":
        return OperatorBackOffice(context, deadline_seconds=settings.deadline_seconds,
                                  poll_seconds=settings.poll_seconds)
    if settings.kind == "plugin" and settings.plugin:
        instance = load_plugin(settings.plugin)(context)
        if not isinstance(instance, BackOffice):
            raise HaicapError(f"back-office plugin {settings.plugin} does not implement BackOffice "
                              "(kind, act(ma_ho_so, action, *, expect_from, expect_to, fields), dossier(ma_ho_so))")
        return instance
    raise HaicapError(f"unknown back-office kind {settings.kind!r} (known: {', '.join(KINDS)})")
