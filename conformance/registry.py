"""The registry of conformance checks: each check is a small function registered under a stable id.

Modelled on schemathesis' check registry and the OpenID conformance suite's conditions: a check has an id
namespaced by its readiness criterion (``SSO-03``), a severity, the rule it enforces (an RFC section, a decree,
a contract path), the capabilities it needs, and the sandbox faults it must detect (its own proof that it can
fail). Registering the same id twice is an error. Every part of a rule resolves to a document users can open
(:func:`resolve_rule`): an RFC or OpenID specification, a contract file, or an entry of the criterion's rules page
``contracts/rules/<criterion>.md`` (decrees, decisions, and the national facts the rule relies on).

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
from pathlib import Path
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
    "RulePart",
    "all_checks",
    "check",
    "checks_for",
    "resolve_rule",
    "resolve_selectors",
    "rule_links",
    "rules_page",
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

    @property
    def rule_parts(self) -> list[RulePart]:
        """Each part of :attr:`rule` and the document it resolves to (see :func:`resolve_rule`)."""
        return resolve_rule(self.rule, self.criterion)


#: Public documents a rule may cite, by the name the rule text uses, and where to read them.
RULE_DOCUMENTS: dict[str, str] = {
    "OpenID Connect Core 1.0": "https://openid.net/specs/openid-connect-core-1_0.html",
    "OpenID Connect RP-Initiated Logout 1.0": "https://openid.net/specs/openid-connect-rpinitiated-1_0.html",
    "OpenID Connect Session Management": "https://openid.net/specs/openid-connect-session-1_0.html",
    "OpenID Connect Discovery 1.0": "https://openid.net/specs/openid-connect-discovery-1_0.html",
    "OpenID Connect Front-Channel Logout 1.0": "https://openid.net/specs/openid-connect-frontchannel-1_0.html",
    "OpenID Connect Back-Channel Logout 1.0": "https://openid.net/specs/openid-connect-backchannel-1_0.html",
    "OAuth 2.0 Multiple Response Type Encoding Practices":
        "https://openid.net/specs/oauth-v2-multiple-response-types-1_0.html",
    "FAPI 2.0 Security Profile": "https://openid.net/specs/fapi-security-profile-2_0.html",
}
_RFC = re.compile(r"\bRFC (\d{3,5})(?:\s*§\s*([0-9][0-9.]*[0-9]|[0-9]))?")
_URL = re.compile(r"https?://[^\s;,]+")
#: a contract file named in a rule (``contracts/province-dossier.openapi.yaml``, ``common.schema.json#/$defs/X``)
_CONTRACT = re.compile(r"(?:contracts/)?((?:schemas/|rules/)?[A-Za-z0-9_.-]+\.(?:openapi\.yaml|schema\.json|yaml|md))")
#: a legal act: Decree 45/2020/NĐ-CP, Decision 19/2025/QĐ-TTg, Resolution 202/2025/QH15, Dispatch 111/CĐ-TTg
_ACT = re.compile(r"\b(?:Decree|Decision|Resolution|Circular|Dispatch|Law|Directive)\s+(\d+(?:/\d{4})?/[^\s,;:()]+)")
_DOMAIN = re.compile(r"\bDOMAIN\.md\b:?\s*")


@dataclass(frozen=True)
class RulePart:
    """One ``;``-separated part of a rule, and the document it resolves to.

    ``kind``: ``url`` (an RFC, an OpenID specification or a cited URL), ``contract`` (a file of contracts/),
    ``rules`` (an entry of the criterion's rules page, contracts/rules/<criterion>.md: decrees and the facts
    DOMAIN.md stands for), ``qualifier`` (names no document: it narrows the part before it) or ``unresolved``.
    """

    text: str
    kind: str
    target: str = ""
    problem: str = ""

    @property
    def resolved(self) -> bool:
        return self.kind != "unresolved"


def contracts_root() -> Path:
    """The contracts folder shipped with haicap (``haicap.contracts``): the one rules cite, whatever
    HAICAP_CONTRACTS points at."""
    import haicap.contracts

    return Path(haicap.contracts.__file__).resolve().parent


@dataclass(frozen=True)
class RulesEntry:
    heading: str
    anchor: str
    cited_as: tuple[str, ...]
    acts: tuple[str, ...]


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def rules_page(criterion: str) -> list[RulesEntry]:
    """The entries (``## heading``, ``Cited as: a; b``) of contracts/rules/<criterion>.md; [] if it is missing."""
    path = contracts_root() / "rules" / f"{criterion}.md"
    if not path.is_file():
        return []
    entries: list[RulesEntry] = []
    for block in re.split(r"^## ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        heading = heading.strip()
        cited = re.search(r"^Cited as:\s*(.+)$", body, flags=re.M)
        names = tuple(n.strip().strip("`") for n in cited.group(1).split(";")) if cited else ()
        acts = tuple(dict.fromkeys(m.group(1) for m in _ACT.finditer(heading + "\n" + body)))
        entries.append(RulesEntry(heading, _anchor(heading), (heading, *names), acts))
    return entries


def _rules_target(criterion: str, entry: RulesEntry) -> str:
    return f"contracts/rules/{criterion}.md#{entry.anchor}"


def _resolve_part(part: str, criterion: str, previous: RulePart | None) -> RulePart:
    url = _URL.search(part)
    if url:
        return RulePart(part, "url", url.group(0))
    rfc = _RFC.search(part)
    if rfc:
        link = f"https://www.rfc-editor.org/rfc/rfc{rfc.group(1)}.html"
        return RulePart(part, "url", link + (f"#section-{rfc.group(2)}" if rfc.group(2) else ""))
    for name, link in RULE_DOCUMENTS.items():
        if part.startswith(name):
            return RulePart(part, "url", link)
    entries = rules_page(criterion)
    acts = [m.group(1) for m in _ACT.finditer(part)]
    if acts:
        missing = [act for act in acts if not any(act in e.acts for e in entries)]
        if missing:
            return RulePart(part, "unresolved", problem=f"no entry for {', '.join(missing)} in "
                                                         f"contracts/rules/{criterion}.md")
        entry = next(e for e in entries if acts[0] in e.acts)
        return RulePart(part, "rules", _rules_target(criterion, entry))
    topic = _DOMAIN.sub("", part, count=1).strip()
    names_domain = bool(_DOMAIN.search(part))
    for entry in entries:
        if any(topic.lower().startswith(name.lower()) for name in entry.cited_as):
            return RulePart(part, "rules", _rules_target(criterion, entry))
    contract = _CONTRACT.search(part)
    if contract and not names_domain:
        name = contract.group(1)
        root = contracts_root()
        for candidate in (root / name, root / "schemas" / name):
            if candidate.is_file():
                return RulePart(part, "contract", "contracts/" + candidate.relative_to(root).as_posix())
        return RulePart(part, "unresolved", problem=f"{name} is not a file of contracts/")
    if names_domain:
        return RulePart(part, "unresolved", problem=f"no entry of contracts/rules/{criterion}.md is cited as "
                                                    f"{topic.split(':')[0]!r} (DOMAIN.md is not shipped to users)")
    if previous is not None and previous.resolved:
        return RulePart(part, "qualifier", previous.target)
    return RulePart(part, "unresolved", problem="names no RFC, OpenID specification, URL, contract file, legal act "
                                                f"or entry of contracts/rules/{criterion}.md")


def resolve_rule(rule: str, criterion: str) -> list[RulePart]:
    """Resolve each ``;``-separated part of ``rule`` to a document users can open (see :class:`RulePart`)."""
    parts: list[RulePart] = []
    for text in (p.strip() for p in rule.split(";")):
        if text:
            parts.append(_resolve_part(text, criterion, parts[-1] if parts else None))
    return parts


def rule_links(rule: str, criterion: str | None = None) -> list[tuple[str, str]]:
    """``(part, url)`` for each part of a rule that resolves to a public URL (RFCs, OpenID specifications, cited
    URLs); with ``criterion``, also contract files and rules-page entries, as paths of the repository."""
    links: list[tuple[str, str]] = []
    for part in resolve_rule(rule, criterion or ""):
        if part.kind == "qualifier" or not part.target:
            continue
        if part.kind != "url" and criterion is None:
            continue
        if part.target not in {u for _, u in links}:
            links.append((part.text, part.target))
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


def resolve_selectors(only: list[str], flag: str = "--only") -> list[str]:
    """``--only`` values as the registry spells them (criteria lower-case, check ids upper-case); an unknown one
    is a one-line HaicapError naming the closest criteria or check ids."""
    from haicap.errors import HaicapError, did_you_mean

    ids = sorted(spec.id for spec in all_checks())
    unknown = [c for c in only if c not in CRITERIA and c.upper() not in ids]
    if unknown:
        named = [c + (did_you_mean(c.upper(), ids) if "-" in c else did_you_mean(c, CRITERIA)) for c in unknown]
        raise HaicapError(f"{flag} {', '.join(named)}: neither a criterion ({', '.join(CRITERIA)}) nor a check id "
                          "(SSO-09; see the README's check table)")
    return [c if c in CRITERIA else c.upper() for c in only]
