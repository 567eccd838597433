"""The registry of conformance checks: each check is a small function registered under a stable id.

Modelled on schemathesis' check registry and the OpenID conformance suite's conditions: a check has an id
namespaced by its readiness criterion (``SSO-03``), a severity, the rule it enforces (an RFC section, a decree,
a DOMAIN.md source), the capabilities it needs, and the sandbox faults it must detect (its own proof that it can
fail). Registering the same id twice is an error.

Example::

    @check("SSO-03", criterion="sso", severity="critical", title="Relying party rejects a bad ID token signature",
           rule="OpenID Connect Core 1.0 §3.1.3.7 (6)", detects=("accepts-bad-id-token-signature",))
    def rejects_bad_signature(ctx: CheckContext) -> None:
        ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from haicap.criteria import CRITERIA, CRITERION_TABLE
from haicap.evidence import EvidenceFailure

if TYPE_CHECKING:
    from haicap.conformance.context import CheckContext

__all__ = [
    "CRITERIA",
    "SEVERITIES",
    "CheckError",
    "CheckFailure",
    "CheckSkipped",
    "CheckSpec",
    "all_checks",
    "check",
    "checks_for",
    "rule_links",
]

SEVERITIES = ("critical", "major", "minor")
Severity = Literal["critical", "major", "minor"]
#: A check raises CheckFailure / CheckSkipped / CheckError, or returns a one-line summary of what it verified
#: (``"126 of 126 communes accepted"``), which a passed check's record carries as its message.
CheckFunc = Callable[["CheckContext"], "str | None"]


class CheckFailure(EvidenceFailure):
    """The system under test broke the rule. Carries its evidence: expected, actual, how to reproduce."""


class _NotJudged(Exception):
    """A check that reached no verdict, with the reason and, optionally, how to look into it (``reproduce``:
    a request or command to replay, carried in the record's ``reproduce`` field, not in the message)."""

    def __init__(self, message: str = "", *, reproduce: str | None = None) -> None:
        super().__init__(message)
        self.reproduce = reproduce


class CheckSkipped(_NotJudged):
    """The check does not apply (a capability the profile does not declare). Not a pass. pytest: skipped."""


class CheckError(_NotJudged):
    """The check could not run (target unreachable, setup failed). Not a failure of the rule. pytest: an error."""


@dataclass(frozen=True, repr=False)
class CheckSpec:
    id: str
    criterion: str
    severity: Severity
    title: str
    rule: str
    func: CheckFunc = field(repr=False)
    requires: tuple[str, ...] = ()
    detects: tuple[str, ...] = ()
    description: str = ""

    def __repr__(self) -> str:
        """The check id: what pytest-allure shows as the test's parameter."""
        return self.id

    @property
    def number(self) -> int:
        return int(self.id.rsplit("-", 1)[1])

    @property
    def rule_links(self) -> list[tuple[str, str]]:
        """``(name, url)`` of each part of :attr:`rule` that names a public document (see :func:`rule_links`)."""
        return rule_links(self.rule)


#: Public documents a rule may cite, by the name the rule text uses, and where to read them.
RULE_DOCUMENTS: dict[str, str] = {
    "OpenID Connect Core 1.0": "https://openid.net/specs/openid-connect-core-1_0.html",
    "OpenID Connect RP-Initiated Logout 1.0": "https://openid.net/specs/openid-connect-rpinitiated-1_0.html",
    "OpenID Connect Session Management": "https://openid.net/specs/openid-connect-session-1_0.html",
}
_RFC = re.compile(r"\bRFC (\d{3,5})(?:\s*§\s*([0-9][0-9.]*[0-9]|[0-9]))?")
_URL = re.compile(r"https?://[^\s;,]+")


def rule_links(rule: str) -> list[tuple[str, str]]:
    """Links for a rule text such as ``"RFC 6749 §10.12; OpenID Connect Core 1.0 §3.1.2.7"``.

    Each ``;``-separated part that cites an RFC (linked to its first section), a known OpenID specification, or
    carries a URL gives one ``(part, url)``; decrees and DOMAIN.md sources have no public URL and give none.
    """
    links: list[tuple[str, str]] = []
    for part in (p.strip() for p in rule.split(";")):
        if not part:
            continue
        url_match = _URL.search(part)
        rfc = _RFC.search(part)
        if url_match:
            url = url_match.group(0)
        elif rfc:
            url = f"https://www.rfc-editor.org/rfc/rfc{rfc.group(1)}.html"
            if rfc.group(2):
                url += f"#section-{rfc.group(2)}"
        else:
            url = next((u for name, u in RULE_DOCUMENTS.items() if part.startswith(name)), "")
        if url and url not in {u for _, u in links}:
            links.append((part, url))
    return links


_REGISTRY: dict[str, CheckSpec] = {}
_PREFIX = {c.id: c.prefix for c in CRITERION_TABLE}


def check(
    check_id: str,
    *,
    criterion: str,
    severity: Severity,
    title: str,
    rule: str,
    requires: tuple[str, ...] = (),
    detects: tuple[str, ...] = (),
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check function under ``check_id``."""
    if criterion not in CRITERIA:
        raise ValueError(f"{check_id}: unknown criterion {criterion!r} (valid: {', '.join(CRITERIA)})")
    if severity not in SEVERITIES:
        raise ValueError(f"{check_id}: unknown severity {severity!r}")
    prefix, _, number = check_id.rpartition("-")
    if prefix != _PREFIX[criterion] or not number.isdigit():
        raise ValueError(f"{check_id}: ids of criterion {criterion!r} look like {_PREFIX[criterion]}-01")

    def register(func: CheckFunc) -> CheckFunc:
        if check_id in _REGISTRY:
            raise ValueError(f"check {check_id} is registered twice ({_REGISTRY[check_id].func.__qualname__})")
        _REGISTRY[check_id] = CheckSpec(
            id=check_id,
            criterion=criterion,
            severity=severity,
            title=title,
            rule=rule,
            func=func,
            requires=requires,
            detects=detects,
            description=(func.__doc__ or "").strip(),
        )
        return func

    return register


def _load_builtin_checks() -> None:
    from haicap.conformance import checks  # noqa: F401  (importing registers them)


def all_checks() -> list[CheckSpec]:
    """Every registered check, ordered by criterion (checklist order) then number."""
    _load_builtin_checks()
    order = list(CRITERIA)
    return sorted(_REGISTRY.values(), key=lambda c: (order.index(c.criterion), c.number))


def checks_for(criteria: set[str] | None = None) -> list[CheckSpec]:
    return [c for c in all_checks() if criteria is None or c.criterion in criteria]
