"""pytest plugin of the conformance suite (entry point ``pytest11: haicap``).

Options: ``--profile FILE`` (a province's staging system; haicap runs the national counterpart for it),
``--haicap-fault ID`` (faults of the embedded sandbox, used when no profile is given), ``--haicap-seed``,
``--haicap-only CRITERION`` and ``--haicap-results FILE`` (raw per-check records for ``haicap certify``).

The target is started once, on the controller, in ``pytest_configure`` — only when conformance checks are
requested (a profile, a fault, ``--haicap-run``, or collecting ``conformance/``) — and handed to pytest-xdist
workers through ``workerinput``; without xdist the session uses it directly. Each check's outcome is recorded
with its metadata in ``user_properties`` so that reports merge across workers.

pytest's own outcome says what the record says, so the console, JUnit and Allure agree with ``results.json``:
passed; failed (a ``<failure>`` whose text is the evidence: message, expected, actual, reproduce, rule, seed);
skipped (with the reason); error (``<error>``, Allure "broken") when the check could not run or has a bug. Only
a bug keeps its traceback: for the rest the evidence is the story, not the stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ExceptionChainRepr, ReprEntry, ReprFileLocation, ReprTraceback

from haicap.conformance.registry import CheckError, CheckFailure, CheckSkipped, CheckSpec
from haicap.errors import HaicapError
from haicap.http_port import TargetUnreachable
from haicap.redaction import Redactor
from haicap.target import Target

_TARGET_KEY = "haicap_target"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("haicap", "haicap conformance suite")
    group.addoption("--profile", dest="haicap_profile", metavar="FILE", help="province profile YAML")
    group.addoption("--province", dest="haicap_province", metavar="CODE",
                    help="province code the embedded reference province plays (default 01); must match a profile")
    group.addoption("--haicap-fault", dest="haicap_faults", action="append", default=[], metavar="ID",
                    help="switch a named fault on in the embedded sandbox (repeatable)")
    group.addoption("--haicap-seed", dest="haicap_seed", type=int, default=0, help="seed of data and fuzz cases")
    group.addoption("--haicap-only", dest="haicap_only", action="append", default=[], metavar="CRITERION|CHECK",
                    help="run only the checks of this readiness criterion, or this check id (repeatable)")
    group.addoption("--haicap-results", dest="haicap_results", metavar="FILE",
                    help="write the per-check records (JSON) here")
    group.addoption("--haicap-run", dest="haicap_run", action="store_true",
                    help="start the target even if conformance/ is not named on the command line")
    group.addoption("--haicap-target-file", dest="haicap_target_file", metavar="FILE",
                    help="use the already running target described in FILE (written by haicap certify)")
    group.addoption("--haicap-console", dest="haicap_console", action="store_true",
                    help="haicap's own progress lines only: no pytest dots, percentages or summary sections "
                    "(haicap certify prints the evidence itself); collection errors are still printed")


def _wanted(config: pytest.Config) -> bool:
    opt = config.option
    if opt.haicap_profile or opt.haicap_faults or opt.haicap_run or opt.haicap_province:
        return True
    package_dir = Path(__file__).resolve().parent
    for arg in config.args:
        name = str(arg).split("::", 1)[0]
        if name in {"haicap.conformance", "haicap.conformance.test_conformance"}:
            return True
        path = Path(name).resolve()
        if path == package_dir or package_dir in path.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "haicap_check(id): a haicap conformance check")
    if config.pluginmanager.hasplugin("xdist") and not config.pluginmanager.has_plugin("haicap-xdist"):
        config.pluginmanager.register(_XdistHooks(), "haicap-xdist")
    if hasattr(config, "workerinput"):  # an xdist worker: the controller started the target
        raw = config.workerinput.get(_TARGET_KEY)  # type: ignore[attr-defined]
        if raw:
            config.stash[_target_stash] = _target_from_json(raw)
        return
    if config.option.haicap_target_file:
        config.stash[_target_stash] = _target_from_json(Path(config.option.haicap_target_file).read_text())
        return
    if not _wanted(config):
        return
    from haicap.conformance.registry import resolve_selectors
    from haicap.target import open_target

    try:  # a mistyped criterion or check id would deselect everything in silence
        config.option.haicap_only = resolve_selectors(config.option.haicap_only, "--haicap-only")
    except HaicapError as exc:
        raise pytest.UsageError(str(exc)) from None

    stack = contextlib.ExitStack()
    try:
        target = stack.enter_context(
            open_target(config.option.haicap_profile, faults=config.option.haicap_faults,
                        seed=config.option.haicap_seed, province=config.option.haicap_province)
        )
    except HaicapError as exc:  # an unusable profile is one line, not an INTERNALERROR traceback
        stack.close()
        raise pytest.UsageError(str(exc)) from None
    if config.option.haicap_profile:  # a miswired province stops here, as in haicap certify (exit 2 there)
        from haicap.conformance.preflight import preflight_message, run_preflight

        preflight = run_preflight(target)
        if not preflight["ok"]:
            stack.close()
            raise pytest.UsageError(f"pre-flight failed: {preflight_message(preflight)}")
    config.stash[_target_stash] = target
    config.stash[_stack_stash] = stack


class _XdistHooks:
    """Hooks that only exist when pytest-xdist is loaded (pluggy rejects unknown hook names otherwise)."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        target = node.config.stash.get(_target_stash, None)
        if target is not None:
            node.workerinput[_TARGET_KEY] = target_to_json(target)


def target_to_json(target: Target) -> str:
    return json.dumps(dataclasses.asdict(target), default=sorted)


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_stack_stash, None)
    if stack is not None:
        stack.close()


def _target_from_json(raw: str) -> Target:
    """Inverse of :func:`target_to_json`."""
    data = json.loads(raw)
    for key in ("capabilities", "faults"):
        data[key] = frozenset(data[key])
    data["secret_values"] = tuple(data["secret_values"])
    data["allowed_hosts"] = tuple(data.get("allowed_hosts", ()))
    if data.get("communes") is not None:
        data["communes"] = tuple(data["communes"])
    return Target(**data)


#: With ``--haicap-console`` each line of haicap's own starts with this (haicap certify shows those lines only,
#: without it, and keeps whatever else pytest or its plugins print in OUT/pytest.log).
CONSOLE_MARK = "\x1ehaicap\x1f"


def say(config: pytest.Config | None, line: str) -> None:
    """Print one line of haicap's own progress (a check's outcome, an operator instruction)."""
    mark = CONSOLE_MARK if config is not None and config.option.haicap_console else ""
    print(mark + line, flush=True)


_target_stash = pytest.StashKey[Target]()
#: What a passed check says it verified (the check function's return value), set by test_check.
PASSED_SUMMARY = pytest.StashKey[str]()
_stack_stash = pytest.StashKey[contextlib.ExitStack]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = set(config.option.haicap_only)
    if not only:
        return
    keep, drop = [], []
    for item in items:
        spec = _spec_of(item)
        (keep if spec is None or spec.criterion in only or spec.id in only else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _spec_of(item: pytest.Item) -> CheckSpec | None:
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("spec") if callspec is not None else None
    return spec if isinstance(spec, CheckSpec) else None


@pytest.fixture(scope="session")
def haicap_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    target = pytestconfig.stash.get(_target_stash, None)
    if target is not None:
        yield target
        return
    from haicap.target import open_target

    option = pytestconfig.option
    with open_target(None, seed=option.haicap_seed, province=option.haicap_province) as started:
        yield started


@pytest.fixture(scope="session")
def haicap_context(haicap_target: Target, pytestconfig: pytest.Config) -> Iterator[Any]:
    from haicap.conformance.context import CheckContext

    context = CheckContext(haicap_target, seed=pytestconfig.option.haicap_seed, console=_console(pytestconfig))
    yield context
    context.close()


def _console(config: pytest.Config) -> Any:
    """Print a line to the real terminal while a check runs (the back office's operator instructions)."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def console(line: str) -> None:
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            say(config, line)

    return console


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
    """Make a check's report: its haicap record (user_properties) and a pytest outcome that says the same.

    failed → a failure whose text is the evidence (no traceback); skipped → skipped with the reason; could not
    run → an error (junit ``<error>``, Allure "broken"), also when raised while the check ran; an unexpected
    exception (a bug in the check) → an error that keeps its traceback.
    """
    spec = _spec_of(item)
    if spec is None:
        return None
    report = pytest.TestReport.from_item_and_call(item, call)
    if call.when != "call" and not (call.when == "setup" and report.outcome != "passed"):
        return report
    target = item.config.stash.get(_target_stash, None)
    redact = Redactor(target.secret_values if target else ())
    record = redact.value(_record(spec, call.excinfo, report.duration, item.stash.get(PASSED_SUMMARY, "")))
    item.user_properties.append(("haicap_check", json.dumps(record, ensure_ascii=False)))
    report.user_properties = list(item.user_properties)
    seed = item.config.option.haicap_seed
    _shape_report(report, spec, call.excinfo, record, seed, item.config.option.tbstyle)
    _allure_report(spec, record, seed)
    return report


def _record(spec: CheckSpec, excinfo: pytest.ExceptionInfo[BaseException] | None, duration: float,
            summary: str = "") -> dict[str, Any]:
    """The check's haicap record (checks.raw.json → results.json); a passed check's message is its summary."""
    record: dict[str, Any] = {
        "id": spec.id,
        "criterion": spec.criterion,
        "severity": spec.severity,
        "title": spec.title,
        "rule": spec.rule,
        "detects": list(spec.detects),
        "duration_s": round(duration, 3),
    }
    if excinfo is None:
        record.update(status="passed", message=summary)
    elif excinfo.errisinstance(CheckFailure):
        failure: CheckFailure = excinfo.value  # type: ignore[assignment]
        record.update(status="failed", message=failure.message, expected=_jsonable(failure.expected),
                      actual=_jsonable(failure.actual), reproduce=failure.reproduce)
    elif excinfo.errisinstance(CheckSkipped) or excinfo.errisinstance(pytest.skip.Exception):
        record.update(status="skipped", message=str(excinfo.value))
        _add_reproduce(record, excinfo.value)
    elif excinfo.errisinstance(CheckError):
        record.update(status="error", message=str(excinfo.value))
        _add_reproduce(record, excinfo.value)
    elif excinfo.errisinstance(TargetUnreachable):  # announced by the HTTP port: what was asked of whom, and why
        record.update(status="error", message=f"a system under test did not answer: {excinfo.value}")
    else:
        record.update(status="error", message=f"{excinfo.typename}: {excinfo.value}")
    return record


def _add_reproduce(record: dict[str, Any], exc: BaseException) -> None:
    """Copy how to look into a skipped or could-not-run check (``CheckSkipped``/``CheckError(reproduce=...)``)
    into its record. test_check turns a CheckSkipped into ``pytest.skip`` inside its ``except``, so the
    CheckSkipped is then the skip's context."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, (CheckSkipped, CheckError)):
            if candidate.reproduce:
                record["reproduce"] = candidate.reproduce
            return


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _could_not_run(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """An announced "could not run" (target unreachable, setup refused), as opposed to a bug in the check."""
    return excinfo.errisinstance(CheckError) or excinfo.errisinstance(HaicapError)


def _shape_report(report: pytest.TestReport, spec: CheckSpec, excinfo: pytest.ExceptionInfo[BaseException] | None,
                  record: dict[str, Any], seed: int, tbstyle: str) -> None:
    """Make pytest's outcome (terminal, JUnit, Allure) agree with the record, with the evidence as the text."""
    status = record["status"]
    if excinfo is None or status == "passed":
        return
    where, line = _check_location(spec, excinfo)
    if status == "skipped":
        report.outcome = "skipped"
        report.longrepr = (where, line, f"Skipped: {record['message']}")
        return
    report.outcome = "failed"
    if status == "failed":
        report.longrepr = _text_repr(evidence_text(spec, record, seed), where, line,
                                     f"{spec.id} failed: {record['message']}")
        return
    # could not run, or a bug in the check: an error, like a failing fixture (JUnit writes <error> for setup only)
    report.when = "setup"
    if _could_not_run(excinfo):
        summary = f"{spec.id} could not run: {record['message']}"
        text = summary + ("\n" + _field("reproduce", record["reproduce"]) if record.get("reproduce") else "")
        report.longrepr = _text_repr(text, where, line, summary)
    elif tbstyle in ("line", "no"):
        # a bug in the check: its stack is the story, even when the run asked for one line per failure
        # (haicap certify does); error summaries print the longrepr only, not the crash line
        code = spec.func.__code__
        excinfo.traceback = excinfo.traceback.cut(path=code.co_filename, firstlineno=code.co_firstlineno - 1)
        report.longrepr = excinfo.getrepr(style="short", funcargs=False, tbfilter=True)


def evidence_text(spec: CheckSpec, record: dict[str, Any], seed: int) -> str:
    """A failed check's evidence, readable: the fact, then expected, actual, how to reproduce, the rule, the seed."""
    lines = [f"{spec.id} failed: {record['message']}"]
    for label in ("expected", "actual", "reproduce"):
        if record.get(label) not in (None, ""):
            lines.append(_field(label, record[label]))
    lines.append(_field("rule", spec.rule))
    lines.append(_field("seed", seed))
    return "\n".join(lines)


def _field(label: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
    head = f"  {label + ':':<11}"
    return head + text.replace("\n", "\n" + " " * len(head))


def _text_repr(text: str, where: str, line: int, crash: str) -> ExceptionChainRepr:
    """A longrepr that is just ``text`` (like ``pytest.fail(pytrace=False)``), with ``crash`` as its one-line
    message (JUnit's message attribute, ``-r`` summaries). A standard repr, so it crosses pytest-xdist intact."""
    entry = ReprEntry(text.splitlines(), None, None, None, "value")
    return ExceptionChainRepr([(ReprTraceback([entry], None, "value"), ReprFileLocation(where, line, crash), None)])


def _check_location(spec: CheckSpec, excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, int]:
    """Where in the check's module it stopped, as a package path (``haicap/conformance/checks/sso.py``, line):
    the deepest frame in that module, else the check's ``def`` line."""
    code = spec.func.__code__
    line = code.co_firstlineno
    for entry in excinfo.traceback:
        if str(entry.path) == code.co_filename:
            line = entry.lineno + 1
    return spec.func.__module__.replace(".", "/") + ".py", line


def _allure_report(spec: CheckSpec, record: dict[str, Any], seed: int) -> None:
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    with contextlib.suppress(Exception):  # allure is inactive without --alluredir
        allure.dynamic.label("criterion", spec.criterion)
        allure.dynamic.label("check_id", spec.id)
        allure.dynamic.severity(allure.severity_level.CRITICAL if spec.severity == "critical"
                                else allure.severity_level.NORMAL if spec.severity == "major"
                                else allure.severity_level.MINOR)
        allure.dynamic.feature(spec.criterion)
        allure.dynamic.title(f"{spec.id} {spec.title}")
        allure.dynamic.label("rule", spec.rule)
        for part in spec.rule_parts:
            if part.kind in ("url", "contract", "rules"):  # a public URL, or a path of the repository/package
                allure.dynamic.link(part.target, name=part.text)
        if record["status"] != "passed":
            evidence = {key: record[key] for key in ("id", "status", "message", "expected", "actual", "reproduce",
                                                     "rule") if key in record}
            evidence["seed"] = seed
            allure.attach(json.dumps(evidence, ensure_ascii=False, indent=2), name="evidence",
                          attachment_type=allure.attachment_type.JSON)


@pytest.hookimpl(trylast=True)  # after the JUnit writer opened this test case: it is renamed below
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # pytest copies user_properties onto every phase's report: take the record once, from the phase that made it
    if not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    for name, value in getattr(report, "user_properties", []):
        if name == "haicap_check":
            record = json.loads(value)
            _RECORDS.append(record)
            _junit_reads_like_the_report(report, record)
            say(_SESSION_CONFIG[0] if _SESSION_CONFIG else None,
                f"  {record['status']:<8} {record['id']:<8} {record['title']}")


@pytest.hookimpl(wrapper=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """With ``--haicap-console`` pytest counts each outcome but writes no letter (``.``, ``F``) for it: the
    ``  passed   SSO-01 …`` line printed by :func:`pytest_runtest_logreport` is the progress."""
    status = yield
    if config.option.haicap_console and status:
        return (status[0], "", "")
    return status


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """With ``--haicap-console`` pytest's summary sections are off: a module that cannot be imported still says why."""
    config = _SESSION_CONFIG[0] if _SESSION_CONFIG else None
    if report.failed and config is not None and config.option.haicap_console:
        for line in f"haicap: cannot collect {report.nodeid or 'the checks'}:\n{report.longreprtext}".splitlines():
            say(config, line)


def _junit_reads_like_the_report(report: pytest.TestReport, record: dict[str, Any]) -> None:
    """JUnit test case classname = the criterion, name = ``SSO-09 Relying party rejects …`` (not
    ``test_conformance.test_check[SSO-09]``), so a CI dashboard reads like the readiness report."""
    config = _SESSION_CONFIG[0] if _SESSION_CONFIG else None
    if config is None:
        return
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    reporter = xml.node_reporter(report)
    reporter.attrs["classname"] = record["criterion"]
    reporter.attrs["name"] = f"{record['id']} {record['title']}"


_RECORDS: list[dict[str, Any]] = []


_SESSION_CONFIG: list[pytest.Config] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _RECORDS.clear()
    _SESSION_CONFIG[:] = [session.config]


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.option.haicap_results
    if path and not hasattr(session.config, "workerinput"):
        seen: dict[str, dict[str, Any]] = {}
        for record in _RECORDS:
            seen[record["id"]] = record  # one record per check (a setup error and no call)
        Path(path).write_text(json.dumps(list(seen.values()), ensure_ascii=False, indent=2), encoding="utf-8")
