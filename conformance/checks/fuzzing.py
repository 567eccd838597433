"""Contract fuzzing of the provincial dossier API with schemathesis, seeded and bounded.

Hand-written checks test the rules we thought of; generated input finds the ones we did not. Schemathesis
reads ``contracts/province-dossier.openapi.yaml`` and sends schema-valid (positive) and schema-breaking
(negative) requests to every operation of the province — citizen, public, officer, sign-in (``/auth/*``) and
the receiver of forwarded dossiers (with the national forward credential) — each answer must not be a 5xx,
must use a documented status code and media type, must validate against the documented schema, and a 4xx must
be an RFC 9457 problem. Sign-in operations go last, since a logout ends the citizen session the others use; each
operation not fuzzed yet keeps :data:`RESERVE_S` of the budget, so every one gets at least one case; an
operation whose credential the profile does not declare is reported as not fuzzed, with the reason. The
stateful walks (FUZZ-02) follow the links of the dossier operations only.

Runs are reproducible (Hypothesis seeded with the run seed, no example database) and bounded: at most
:data:`MAX_EXAMPLES` cases per operation and mode, :data:`BUDGET_S` seconds in all. A finding names the
operation and carries a curl reproduction with the credential replaced by a placeholder, rendered from the
bytes actually sent (:func:`curl_replay`: bash ANSI-C quoting, so invalid UTF-8, control bytes and odd header
values replay exactly); the headline reproduction is one that replays exactly.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haicap.conformance.checks.submission import citizen_session, is_problem
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, check
from haicap.contract_registry import default_registry

__all__ = ["BUDGET_S", "MAX_EXAMPLES", "Finding", "FuzzRun", "curl_replay", "headline", "shell_quote"]

CONTRACT = "province-dossier"
SUBMIT_LABEL = "POST /api/v1/dossiers"
#: cases per operation and generation mode
MAX_EXAMPLES = 12
#: wall-clock budget of one fuzzing check (seconds)
BUDGET_S = 20.0
#: seconds of the budget kept for each operation not fuzzed yet, so the early ones cannot starve it
RESERVE_S = 1.0
#: operations left out of the stateful walks: sign-in and the national portal's (no links to follow)
SKIPPED_TAGS = frozenset({"sso", "national"})
#: operations FUZZ-01 fuzzes after every other: a logout ends the citizen session the others use
LAST_TAGS = frozenset({"sso"})
#: how many findings a failure message lists in full
SHOWN = 20

log = logging.getLogger(__name__)


#: request headers the client adds on its own (curl sends its own): left out of a reproduction unless generated
CLIENT_HEADERS = frozenset({"user-agent", "accept-encoding", "accept", "connection", "content-length",
                            "x-schemathesis-testcaseid"})


@dataclass(frozen=True)
class Finding:
    operation: str
    mode: str
    problems: tuple[str, ...]
    status: int | None
    curl: str
    #: the curl line was rendered from the bytes sent (False: from the generated case, may differ)
    exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        out = {"operation": self.operation, "mode": self.mode, "status": self.status,
               "problems": list(self.problems), "reproduce": self.curl}
        if not self.exact:
            out["reproduce_exact"] = False
        return out


def shell_quote(data: bytes) -> str:
    """``data`` as one bash word that expands to exactly these bytes: ``'plain'`` for printable text, else
    ANSI-C ``$'...'`` with ``\\xHH`` for control bytes and bytes that are not UTF-8 (valid UTF-8 text is kept
    readable). A NUL cannot be in an argument at all: see :func:`curl_replay`."""
    text = data.decode("utf-8", errors="surrogateescape")
    if all(c.isprintable() and c != "'" and not 0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return f"'{text}'"
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape keeps it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in "\\'":
            out.append("\\" + char)
        elif not char.isprintable():
            out.extend(f"\\x{b:02x}" for b in char.encode("utf-8"))
        else:
            out.append(char)
    return "$'" + "".join(out) + "'"


def _printf_word(data: bytes) -> str:
    """A bash ``printf`` format that writes exactly ``data`` (NULs included)."""
    return "'" + "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in "\\%'" else f"\\x{b:02x}"
                         for b in data) + "'"


def _raw(value: str | bytes) -> bytes:
    """What goes on the wire for a header value or body that ``requests`` was given (str: ISO-8859-1, as
    http.client encodes it; text beyond Latin-1 as UTF-8, the only bytes curl could send for it)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", errors="surrogatepass")


def curl_replay(method: str, url: str, headers: list[tuple[str, str | bytes]], body: str | bytes | None) -> str:
    """A curl command that sends this request byte for byte (bash): the URL as sent (``--globoff
    --path-as-is``: no globbing, no dot-segment removal), each header as sent (an empty value as ``Name;``),
    the body with ``--data-binary`` (through ``printf`` when it holds a NUL, which no argument can)."""
    parts = [f"curl -X {method} --globoff --path-as-is {shell_quote(_raw(url))}"]
    for name, value in headers:
        raw = _raw(value)
        line = _raw(name) + (b": " + raw if raw else b";")
        parts.append(f"-H {shell_quote(line)}")
    if body is not None:
        data = _raw(body)
        parts.append(f"--data-binary @<(printf -- {_printf_word(data)})" if b"\x00" in data
                     else f"--data-binary {shell_quote(data)}")
    return " ".join(parts)


def headline(findings: list[Finding]) -> Finding:
    """The finding whose reproduction leads a failure: one that replays exactly, a 5xx or dropped connection
    first (the most serious), then the shortest command."""
    return min(findings, key=lambda f: (not f.exact, not (f.status is None or f.status >= 500), len(f.curl)))


class _OutOfTime(Exception):
    pass


@dataclass
class FuzzRun:
    """One bounded schemathesis run over the province contract; credentials never leave it in clear."""

    base_url: str
    seed: int
    credentials: dict[str, str]  # security scheme name → bearer token
    budget_s: float = BUDGET_S
    max_examples: int = MAX_EXAMPLES
    findings: list[Finding] = field(default_factory=list)
    cases: int = 0
    skipped: list[str] = field(default_factory=list)
    timed_out: bool = False
    #: operations whose share of the budget ran out before their examples did
    cut: set[str] = field(default_factory=set)
    #: answers judged, by status code, and the operations they came from (a passed check's summary)
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)

    def _redact(self, text: str) -> str:
        for scheme, token in self.credentials.items():
            text = text.replace(token, f"<{scheme} token>")
        return text

    def _auth(self, operation: Any) -> tuple[dict[str, str], dict[str, str]] | None:
        """(headers sent, headers shown) for the operation's security scheme; None if no credential."""
        requirements = operation.definition.raw.get("security")
        if not requirements:
            return {}, {}
        for requirement in requirements:
            for scheme in requirement:
                if scheme in self.credentials:
                    return ({"Authorization": f"Bearer {self.credentials[scheme]}"},
                            {"Authorization": f"Bearer <{scheme} token>"})
        return None

    def run(self) -> None:
        import schemathesis
        from hypothesis import HealthCheck, Phase, given, seed, settings
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode

        path = default_registry().openapi_path(CONTRACT)
        schema = schemathesis.openapi.from_path(path)
        deadline = time.monotonic() + self.budget_s
        checks = _checks()
        operations = fuzz_order([result.ok() for result in schema.get_all_operations()])
        runs = [(op, self._auth(op)) for op in operations]
        self.skipped += [f"{op.label} (no {_schemes(op)} credential declared)" for op, auth in runs if auth is None]
        slots = [(op, auth, mode) for op, auth in runs if auth is not None
                 for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        for index, (operation, (sent, shown), mode) in enumerate(slots):
            if time.monotonic() >= deadline and operation.label in self.operations:
                self.cut.add(operation.label)
                continue
            # the budget, less a reserve for each later operation not fuzzed yet (each gets one case at least)
            later = {op.label for op, _, _ in slots[index + 1:]} - self.operations - {operation.label}
            share = deadline - RESERVE_S * len(later)
            one = self._one_case(operation, mode, sent, shown, checks, share)
            test = seed(self.seed)(settings(
                max_examples=self.max_examples, deadline=None, database=None, derandomize=False,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False, print_blob=False,
            )(given(case=operation.as_strategy(generation_mode=mode))(one)))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    test()
            except _OutOfTime:  # this operation's share is spent: on to the next one
                self.timed_out = self.timed_out or time.monotonic() >= deadline
                self.cut.add(operation.label)
            except Unsatisfiable:  # nothing to break (e.g. negative cases of an operation without input)
                continue
        self.skipped += [f"{op.label} (not reached within the {self.budget_s:g} s budget)"
                         for op, auth in runs if auth is not None and op.label not in self.operations]

    def _one_case(self, operation: Any, mode: Any, sent: dict[str, str], shown: dict[str, str],
                  checks: list[Callable[..., Any]], deadline: float) -> Callable[[Any], None]:
        def one(case: Any) -> None:
            if time.monotonic() > deadline and operation.label in self.operations:
                raise _OutOfTime
            _authorize(case, sent)
            try:
                response = case.call(base_url=self.base_url, headers=sent, allow_redirects=False, timeout=10)
            except Exception as exc:  # a dropped connection is a finding, not a crash of the check
                self.cases += 1
                self._record(case, _mode_name(mode), shown, None, [f"no answer: {type(exc).__name__}"],
                             _prepared(case, self.base_url, sent))
                return
            self.judge(case, response, _mode_name(mode), sent, shown, checks)

        return one

    def judge(self, case: Any, response: Any, mode: str, sent: dict[str, str], shown: dict[str, str],
              checks: list[Callable[..., Any]], recorder: Any = None) -> None:
        """Run the checks on one answer and record a finding if any fails (never raises)."""
        from schemathesis.core.failures import Failure, FailureGroup

        self.cases += 1
        self.statuses[response.status_code] += 1
        self.operations.add(case.operation.label)
        problems: list[str] = []
        try:
            case.validate_response(response, checks=checks, headers=sent,
                                   transport_kwargs={"base_url": self.base_url}, recorder=recorder)
        except FailureGroup as group:
            problems += [_describe(f) for f in group.exceptions]
        except Failure as failure:
            problems.append(_describe(failure))
        answer = _HttpxLike(response)
        if response.status_code >= 400 and not is_problem(answer):
            problems.append(f"HTTP {response.status_code} without an RFC 9457 problem body "
                            f"(Content-Type {answer.headers.get('content-type', 'none')})")
        elif response.status_code in {400, 422} and not _names_fields(answer):
            problems.append(f"HTTP {response.status_code} problem does not name the offending field "
                            "(errors[].field missing or empty)")
        if problems:
            self._record(case, mode, shown, response.status_code, problems, getattr(response, "request", None))

    def _record(self, case: Any, mode: str, shown: dict[str, str], status: int | None, problems: list[str],
                request: Any = None) -> None:
        curl, exact = self._curl(case, shown, request)
        self.findings.append(Finding(case.operation.label, mode, tuple(self._redact(p)[:400] for p in problems),
                                     status, self._redact(curl), exact))

    def _curl(self, case: Any, shown: dict[str, str], request: Any) -> tuple[str, bool]:
        """The reproduction: from the request as sent when there is one, else schemathesis' rendering."""
        if request is not None:
            try:
                generated = {str(k).lower() for k in (case.headers or {})}
                headers = [(name, shown.get("Authorization", value) if name.lower() == "authorization" else value)
                           for name, value in request.headers.items()
                           if name.lower() not in CLIENT_HEADERS or name.lower() in generated]
                return curl_replay(str(request.method), str(request.url), headers, request.body), True
            except Exception:  # pragma: no cover - an odd request object: fall back to the case
                log.debug("no exact curl for %s", case.operation.label, exc_info=True)
        try:
            curl = case.as_curl_command(headers=shown, base_url=self.base_url)
        except Exception as exc:  # pragma: no cover - curl rendering of an odd case
            curl = f"(no curl: {type(exc).__name__})"
        if shown.get("Authorization"):
            curl = curl.replace("Authorization: [Filtered]", f"Authorization: {shown['Authorization']}")
        return curl, False

    def run_stateful(self, submission: Callable[[], dict[str, Any]], max_examples: int = 10, steps: int = 6) -> None:
        """Walk the contract's links (submit → get, supplement, withdraw, payments) as a Hypothesis state
        machine; each submitted body is a valid one from ``submission()``, so the links have a dossier."""
        import schemathesis
        from hypothesis import HealthCheck, Phase, settings

        path = default_registry().openapi_path(CONTRACT)
        schema = schemathesis.openapi.from_path(path).exclude(tag=sorted(SKIPPED_TAGS))
        machine = schema.as_state_machine()
        from schemathesis.specs.openapi.checks import ensure_resource_availability

        run, checks = self, [*_checks(), ensure_resource_availability]
        deadline = time.monotonic() + self.budget_s

        class Driven(machine):  # type: ignore[misc, valid-type]
            def before_call(self, case: Any) -> None:
                if time.monotonic() > deadline:
                    raise _OutOfTime
                if case.operation.label == SUBMIT_LABEL:
                    case.body = submission()
                _authorize(case, (run._auth(case.operation) or ({}, {}))[0])

            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                sent, _ = run._auth(case.operation) or ({}, {})
                return {"base_url": run.base_url, "headers": sent, "allow_redirects": False, "timeout": 10}

            def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                                  **kwargs: Any) -> None:
                sent, shown = run._auth(case.operation) or ({}, {})
                run.judge(case, response, "stateful", sent, shown, checks, getattr(self, "recorder", None))

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Driven.run(settings=settings(
                    max_examples=max_examples, stateful_step_count=steps, deadline=None, database=None,
                    derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                    report_multiple_bugs=False, print_blob=False))
        except _OutOfTime:
            self.timed_out = True


def fuzz_order(operations: list[Any]) -> list[Any]:
    """Contract order, except that sign-in operations (:data:`LAST_TAGS`) come after every other and, among
    them, those that need the citizen session (logout) last of all."""
    def key(item: tuple[int, Any]) -> tuple[bool, bool, int]:
        index, operation = item
        raw = operation.definition.raw
        last = bool(set(raw.get("tags") or []) & LAST_TAGS)
        return last, last and bool(raw.get("security")), index

    return [operation for _, operation in sorted(enumerate(operations), key=key)]


def _schemes(operation: Any) -> str:
    return "/".join(sorted({s for r in operation.definition.raw.get("security") or [] for s in r})) or "no"


def _prepared(case: Any, base_url: str, sent: dict[str, str]) -> Any:
    """The request ``requests`` would send for ``case`` (when sending it failed before an answer), or None."""
    try:
        import requests

        kwargs = case.as_transport_kwargs(base_url=base_url, headers=sent)
        wanted = ("method", "url", "headers", "params", "cookies", "data", "json", "files")
        return requests.Request(**{k: v for k, v in kwargs.items() if k in wanted}).prepare()
    except Exception:  # a case requests itself cannot prepare: the generated rendering will do
        return None


def _authorize(case: Any, sent: dict[str, str]) -> None:
    """Put our credential on the case: a generated Authorization header would win over the one we send."""
    if sent:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = {**headers, **sent}


def _names_fields(answer: _HttpxLike) -> bool:
    """A validation problem lists its offending fields (``errors: [{field, message}]``, field non-empty)."""
    try:
        errors = answer.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return bool(errors) and all(isinstance(e, dict) and e.get("field") for e in errors)


def _mode_name(mode: Any) -> str:
    return str(getattr(mode, "value", mode))


class _HttpxLike:
    """A schemathesis Response seen through the ResponseLike protocol (status, headers, text, json)."""

    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in response.headers.items()}
        self._response = response

    @property
    def text(self) -> str:
        return str(self._response.text)

    def json(self) -> Any:
        return self._response.json()


def _checks() -> list[Callable[..., Any]]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _describe(failure: Any) -> str:
    title = getattr(failure, "title", type(failure).__name__)
    message = str(getattr(failure, "message", "") or "").strip().splitlines()
    return f"{title}: {message[0]}" if message else str(title)


def _credentials(ctx: CheckContext, purpose: str, citizen: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Bearer tokens by security scheme: a newly signed-in citizen (appended to ``citizen``), the officer's."""
    credentials: dict[str, str] = {}
    if "sso" in ctx.target.capabilities:
        person, session = citizen_session(ctx, purpose)
        credentials["citizen"] = session.access_token
        if citizen is not None:
            citizen.append(person)
    if "officer_api" in ctx.target.capabilities and ctx.target.officer_token:
        credentials["officer"] = ctx.target.officer_token
    if "forwarding" in ctx.target.capabilities and ctx.target.forward_token:
        credentials["forward"] = ctx.target.forward_token
    return credentials


@check("FUZZ-01", criterion="fuzzing", severity="major",
       title="Generated requests to every operation get documented, schema-valid answers, never a 5xx",
       rule="contracts/province-dossier.openapi.yaml under schemathesis (positive and negative cases); RFC 9457",
       requires=("fuzzing",), detects=("500-on-malformed-input",))
def contract_fuzzing(ctx: CheckContext) -> str:
    """Schemathesis generates schema-valid and schema-breaking requests (seeded by the run seed, at most
    12 per operation and mode, 20 s in all) for every operation of the contract: citizen (signed in), public,
    officer, sign-in (last) and the forwarded-dossier receiver (national forward credential); every answer
    must be no 5xx, a documented status and media type, valid against the documented schema, and every 4xx
    an RFC 9457 problem. The operations of the contract must all be fuzzed or named as not fuzzed."""
    try:
        import schemathesis  # noqa: F401
    except ImportError as exc:  # pragma: no cover - schemathesis is a dependency
        raise CheckError(f"schemathesis is not installed: {exc}") from None
    run = FuzzRun(ctx.target.province_url, ctx.seed, _credentials(ctx, "FUZZ-01"))
    started = time.monotonic()
    run.run()
    return _report(ctx, run, time.monotonic() - started, "generated requests")


def _report(ctx: CheckContext, run: FuzzRun, elapsed: float, what: str) -> str:
    """Fail with the findings, or say what was generated and how it was answered."""
    if run.cases == 0:
        raise CheckSkipped("no operation of the contract could be fuzzed with the declared credentials")
    ctx.require_evidence(len(run.operations), 1, "operations of the contract answered")
    if run.findings:
        by_operation: dict[str, int] = {}
        for finding in run.findings:
            by_operation[finding.operation] = by_operation.get(finding.operation, 0) + 1
        raise CheckFailure(
            f"{len(run.findings)} of {run.cases} {what} broke the contract: "
            + ", ".join(f"{op} ×{n}" for op, n in by_operation.items()),
            expected="no 5xx; documented status, media type and schema; 4xx as application/problem+json",
            actual={"findings": [f.as_dict() for f in run.findings[:SHOWN]],
                    "more": max(0, len(run.findings) - SHOWN), "cases": run.cases, "seconds": round(elapsed, 1),
                    "seed": ctx.seed, "not fuzzed": run.skipped},
            reproduce=headline(run.findings).curl)
    classes = Counter(f"{status // 100}xx" for status in run.statuses.elements())
    answered = ", ".join(f"{cls} ×{n}" for cls, n in sorted(classes.items()))
    return (f"{run.cases} {what} over {len(run.operations)} operations (seed {ctx.seed}, {elapsed:.1f} s"
            + (f", {len(run.cut)} operations cut short by the {run.budget_s:g} s budget" if run.cut else "")
            + f"): 0 server errors, every answer documented and schema-valid ({answered})"
            + (f"; not fuzzed: {', '.join(run.skipped)}" if run.skipped else ""))


@check("FUZZ-02", criterion="fuzzing", severity="major",
       title="Stateful walks along the contract's links find every created dossier and get conformant answers",
       rule="contracts/province-dossier.openapi.yaml links (submitDossier → getDossier, supplement, withdraw, "
            "payments) under schemathesis' state machine; a 201-created resource must not be 404",
       requires=("fuzzing", "sso", "submission"), detects=("loses-dossiers-under-concurrency",))
def stateful_fuzzing(ctx: CheckContext) -> str:
    """Schemathesis' state machine over the contract's links (deterministic, at most 10 walks of 6 steps,
    20 s): each submission is a valid one, then linked operations use its MaHoSo. Every answer is judged
    as in FUZZ-01, and a dossier just answered 201 must not be 404 on the linked GET."""
    from haicap.conformance.checks.submission import submission_payload

    citizen: list[dict[str, Any]] = []
    run = FuzzRun(ctx.target.province_url, ctx.seed, _credentials(ctx, "FUZZ-02", citizen))
    started = time.monotonic()
    run.run_stateful(lambda: submission_payload(ctx, citizen[0]))
    elapsed = time.monotonic() - started
    return _report(ctx, run, elapsed, "calls in stateful walks")
