"""The provincial public-service portal is closed: its old pages lead to the national portal, nothing is done there.

From 1 July 2025 citizens reach online procedures on the National Public Service Portal only
(contracts/rules/portal.md). No specification of the closing is public, so every URL comes from the profile
(``portal:``, :class:`haicap.portal.PortalSettings`). PORT-01 follows each old procedure and submission page's
redirects (at most ``max_redirects`` hops, each on a host the profile names or on loopback) to the national
portal's host, and to a URL that names the page's procedure; PORT-02 finds no submission form on any page the old
portal still serves and probes the old submission endpoints (refused, nothing created); PORT-03 finds no local
sign-in (no password field, the old sign-in URLs lead to national sign-on, a POST of credentials is refused).
haicap never requests the national portal itself: reaching a URL on its host ends a walk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckSkipped, check
from haicap.hosts import is_loopback_host
from haicap.http_port import HttpxPort, TargetUnreachable
from haicap.portal import OldPage, PortalSettings

__all__ = [
    "Form",
    "Walk",
    "Walker",
    "judge_old_walk",
    "judge_refusal",
    "judge_variant",
    "meta_refresh",
    "names_procedure",
    "national_problem",
    "on_host",
    "parse_forms",
    "parse_refresh",
    "password_fields",
    "plain_http_variant",
    "submission_forms",
    "walk_variants",
]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: what a closed endpoint may answer (RFC 9110 §15.5.4, §15.5.5, §15.5.6, §15.5.11), besides a redirect to NPSP
REFUSALS = frozenset({403, 404, 405, 410})
#: the longest meta refresh delay (seconds) still taken as a redirect ("you are being redirected…" pages)
META_REFRESH_MAX = 5
_MAX_PAGE = 1_000_000
_SHOWN = 4


# -- pure helpers (tested in tests/test_checks_portal.py) ---------------------------------------------
def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port


def on_host(url: str, base: str) -> bool:
    """``url`` is on the host (and port) of ``base``; a base without a port accepts the scheme's default port,
    so ``http://x`` → ``https://x`` (an upgrade) stays on the host."""
    scheme, host, port = _origin(url)
    _, b_host, b_port = _origin(base)
    if not host or host != b_host:
        return False
    if b_port is not None:
        return (port or {"http": 80, "https": 443}.get(scheme)) == b_port
    return port is None or port == {"http": 80, "https": 443}.get(scheme)


def national_problem(url: str, national: str) -> str | None:
    """Why ``url`` is not a landing on the national portal ``national`` (None when it is): another host, or a
    downgrade to http when the profile's national portal is https."""
    if not on_host(url, national):
        return f"{_host_of(url) or url} is not the national portal {_host_of(national)}"
    if _origin(url)[0] != "https" and _origin(url)[0] != _origin(national)[0]:
        return f"{url.split('?', 1)[0]} is plain http: the national portal is {national}"
    return None


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.lower()


def names_procedure(url: str, code: str) -> bool:
    """``url`` names procedure ``code`` (MaTTHC) in its path or query (decoded), as a whole token: ``1.001193``
    in ``?ma_thu_tuc=1.001193`` or ``/thu-tuc/1.001193.000.00.00.H26``, not in ``1.0011934``."""
    parts = urlsplit(url)
    text = unquote(parts.path + "?" + parts.query + "#" + parts.fragment)
    start = text.find(code)
    while start != -1:
        before = text[start - 1] if start else "/"
        after = text[start + len(code)] if start + len(code) < len(text) else "/"
        if not before.isalnum() and not (after.isdigit()):
            return True
        start = text.find(code, start + 1)
    return False


@dataclass(frozen=True)
class Form:
    method: str
    action: str
    inputs: tuple[tuple[str, str], ...]  # (type, name)

    def has(self, input_type: str) -> bool:
        return any(kind == input_type for kind, _ in self.inputs)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.loose: list[tuple[str, str]] = []  # inputs outside any form
        self.meta: list[str] = []
        self._open: list[tuple[str, str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._open.append(((a.get("method") or "get").strip().lower(), a.get("action", ""), []))
        elif tag in ("input", "textarea", "select"):
            kind = (a.get("type") or "text").strip().lower() if tag == "input" else tag
            (self._open[-1][2] if self._open else self.loose).append((kind, a.get("name", "")))
        elif tag == "meta" and a.get("http-equiv", "").strip().lower() == "refresh":
            self.meta.append(a.get("content", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open:
            self.close_form()

    def close_form(self) -> None:
        method, action, inputs = self._open.pop()
        self.forms.append(Form(method, action, tuple(inputs)))


def _parse(html: str) -> _FormParser:
    parser = _FormParser()
    try:
        parser.feed(html[:_MAX_PAGE])
        parser.close()
    except Exception:  # untrusted markup: whatever was parsed so far is what we judge
        pass
    while parser._open:  # a form never closed still counts
        parser.close_form()
    return parser


def parse_forms(html: str) -> list[Form]:
    return _parse(html).forms


def parse_refresh(content: str) -> tuple[float, str] | None:
    """``(delay, url)`` of a refresh directive (``0; url=…``, the ``Refresh`` header or a meta tag), or None."""
    delay, _, rest = content.partition(";")
    rest = rest.strip()
    if rest[:4].lower() == "url=":
        rest = rest[4:].strip()
    rest = rest.strip("'\"")
    try:
        seconds = float(delay.strip())
    except ValueError:
        return None
    return (seconds, rest) if rest else None


def meta_refresh(html: str) -> tuple[float, str] | None:
    """``(delay, url)`` of a ``<meta http-equiv="refresh" content="0; url=…">`` redirect, or None."""
    for content in _parse(html).meta:
        found = parse_refresh(content)
        if found:
            return found
    return None


def submission_forms(html: str, page_url: str, national: str) -> list[str]:
    """Forms of an old page that still take a submission: a POST form or a file upload, unless it sends to the
    national portal. A GET form without file input (a look-up search) is not one, nor a sign-in form (a password
    field: :func:`password_fields`)."""
    found = []
    for form in parse_forms(html):
        action = urljoin(page_url, form.action) if form.action else page_url
        if on_host(action, national) or form.has("password"):  # a sign-in form is PORT-03's
            continue
        if form.method == "post" or form.has("file"):
            kinds = sorted({kind for kind, _ in form.inputs})
            found.append(f"<form method={form.method} action={action.split('?', 1)[0]}> with "
                         f"{len(form.inputs)} fields ({', '.join(kinds) or 'none'})")
    return found


def password_fields(html: str) -> int:
    """How many ``<input type=password>`` a page has, in forms or not."""
    parsed = _parse(html)
    return sum(kind == "password" for form in parsed.forms for kind, _ in form.inputs) + sum(
        kind == "password" for kind, _ in parsed.loose)


def judge_refusal(status: int, location: str | None, url: str, landing: Callable[[str], bool],
                  what: str = "the submission") -> str | None:
    """Why an answer to a POST on a closed endpoint is not a refusal (None when it is one): 403/404/405/410, or a
    redirect whose target ``landing`` accepts (the national portal or identity provider)."""
    if status in REFUSALS:
        return None
    if status in REDIRECTS:
        if not location:
            return f"answered HTTP {status} without a Location"
        target = urljoin(url, location)
        if landing(target):
            return None
        where = "back onto the old portal" if on_host(target, url) else f"to {_host_of(target)}"
        return (f"answered HTTP {status} redirecting {where} ({target.split('?', 1)[0]}): what a form that "
                f"still works answers after taking {what}")
    if 200 <= status < 300:
        return f"answered HTTP {status}: {what} was taken (expected 403/404/405/410 or a redirect to NPSP)"
    if status == 401:
        return "answered HTTP 401: the endpoint is live and asks for its own sign-in (a closed one answers 410/404)"
    if status in (400, 422):
        return (f"answered HTTP {status}: the endpoint is live and validates the form (a closed one answers "
                "410/404/403/405)")
    if status >= 500:
        return f"answered HTTP {status}: an error, not a refusal (403/404/405/410 or a redirect to NPSP)"
    return f"answered HTTP {status}: not a refusal (403/404/405/410 or a redirect to NPSP)"


def _summarise(items: Sequence[str], shown: int = _SHOWN) -> str:
    return "; ".join(items[:shown]) + (f"; … (+{len(items) - shown} more)" if len(items) > shown else "")


# -- walking the old portal ---------------------------------------------------------------------------
@dataclass
class Page:
    url: str
    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Walk:
    """Where one old URL led: the hops taken, the landing on the national side (never fetched), or the problem."""

    start: str
    hops: list[str] = field(default_factory=list)  # "301 → url"
    landing: str | None = None
    problem: str | None = None
    page: Page | None = None  # the page the old side still served (the end of the walk), if any
    unreachable: str | None = None

    def describe(self) -> str:
        return " → ".join([self.start, *self.hops])


class Walker:
    """Follows redirects by hand (each hop judged before it is requested), over one cookie jar."""

    def __init__(self, settings: PortalSettings, allowed: Iterable[str], timeout: float = 10.0,
                 port: Any = None) -> None:
        self.settings = settings
        self.allowed = frozenset(h.lower() for h in allowed) | settings.old_hosts()
        #: any HttpPort (tests give a scripted one); requests absolute URLs only
        self.port = port or HttpxPort(settings.all_urls()[0], timeout=timeout, allowed_hosts=self.allowed)

    def may_follow(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return urlsplit(url).scheme in ("http", "https") and (is_loopback_host(host) or host in self.allowed)

    def request(self, method: str, url: str, data: dict[str, str] | None = None) -> Any:
        return self.port.request(method, url, data=data, headers={"Accept": "text/html,*/*"})

    def walk(self, url: str, landing: Callable[[str], bool]) -> Walk:
        walk, current, seen = Walk(url), url, {url}
        for _ in range(self.settings.max_redirects + 1):
            try:
                answer = self.request("GET", current)
            except TargetUnreachable as exc:
                walk.unreachable = str(exc)
                return walk
            status, text = answer.status_code, answer.text[:_MAX_PAGE]
            location = answer.headers.get("location")
            kind = str(status)
            if status not in REDIRECTS:
                refresh = (parse_refresh(answer.headers.get("refresh", "")) or meta_refresh(text)
                           if 200 <= status < 300 else None)
                if refresh is None or refresh[0] > META_REFRESH_MAX:
                    walk.page = Page(current, status, text, dict(answer.headers))
                    walk.problem = self._not_redirected(status, text, refresh)
                    return walk
                location, kind = refresh[1], f"meta refresh {refresh[0]:g} s"
            if not location:
                walk.problem = f"HTTP {status} without a Location at {current}"
                return walk
            target = urljoin(current, location)
            walk.hops.append(f"{kind} → {target}")
            if landing(target):
                walk.landing = target
                return walk
            if not self.may_follow(target):
                walk.problem = (f"redirects to {target.split('?', 1)[0]}: {_host_of(target)} is not the national "
                                f"portal {_host_of(self.settings.national_portal)} (not followed)")
                return walk
            if target in seen:
                walk.problem = f"a redirect loop back to {target}"
                return walk
            seen.add(target)
            current = target
        walk.problem = f"more than {self.settings.max_redirects} redirects without reaching the national portal"
        return walk

    @staticmethod
    def _not_redirected(status: int, text: str, refresh: tuple[float, str] | None) -> str:
        if refresh is not None:
            return f"a page with a {refresh[0]:g} s meta refresh (more than {META_REFRESH_MAX} s) instead of a redirect"
        if 200 <= status < 300:
            forms = len(parse_forms(text))
            return f"still serves a page (HTTP {status}" + (f", {forms} form(s)" if forms else "") + ")"
        return f"answered HTTP {status} instead of redirecting to the national portal"

    def close(self) -> None:
        self.port.close()


def _settings(ctx: CheckContext) -> PortalSettings:
    settings = ctx.target.portal
    if settings is None:  # the capability says portal, yet no URLs: a target built without them
        raise CheckSkipped("the target names no old portal URLs (profile section portal)")
    return settings


def _lands_national(settings: PortalSettings) -> Callable[[str], bool]:
    return lambda url: on_host(url, settings.national_portal)


def _lands_sign_on(settings: PortalSettings) -> Callable[[str], bool]:
    idp = settings.national_idp or settings.national_portal
    return lambda url: on_host(url, settings.national_portal) or on_host(url, idp)


@dataclass
class Survey:
    """Every GET walk of the run's old URLs, shared by the three checks."""

    old: list[tuple[OldPage, Walk]]
    lookup: list[Walk]
    login: list[Walk]
    #: the plain-http variants of https old URLs (old bookmarks and links): (page, walk), reachable ones only
    variants: list[tuple[OldPage, Walk]] = field(default_factory=list)

    def pages(self) -> list[Page]:
        walks = [w for _, w in self.old + self.variants] + self.lookup + self.login
        return [w.page for w in walks if w.page is not None and w.page.text]


def plain_http_variant(url: str) -> str | None:
    """``http://host/path`` for ``https://host/path`` (no explicit port): where an old bookmark may still point."""
    parts = urlsplit(url)
    if parts.scheme != "https" or _origin(url)[2] is not None:
        return None
    return "http" + url[len("https"):]


def walk_variants(walker: Walker, pages: Sequence[OldPage], landing: Callable[[str], bool]
                  ) -> list[tuple[OldPage, Walk]]:
    """Walk the plain-http variant of each https old URL; a host that does not answer on http is not asked
    again (nothing listens there: no entry point)."""
    silent: set[str] = set()
    walks = []
    for page in pages:
        variant = plain_http_variant(page.url)
        host = _host_of(variant or "")
        if variant is None or host in silent:
            continue
        walk = walker.walk(variant, landing)
        if walk.unreachable:
            silent.add(host)
            continue
        walks.append((OldPage(variant, page.procedure), walk))
    return walks


def _survey(ctx: CheckContext) -> Survey:
    settings = _settings(ctx)
    walker = Walker(settings, ctx.target.allowed_hosts)
    try:
        national, sign_on = _lands_national(settings), _lands_sign_on(settings)
        return Survey(old=[(page, walker.walk(page.url, national)) for page in settings.old_urls],
                      lookup=[walker.walk(url, national) for url in settings.lookup_urls],
                      login=[walker.walk(url, sign_on) for url in settings.login_urls],
                      variants=walk_variants(walker, settings.old_urls, national))
    finally:
        walker.close()


def _survey_shared(ctx: CheckContext) -> Survey:
    return ctx.shared("portal:survey", lambda: _survey(ctx))


def _reproduce(url: str, method: str = "GET") -> str:
    return f"curl -si -X {method} '{url}'" if method != "GET" else f"curl -si '{url}'"


# -- PORT-01 ----------------------------------------------------------------------------------------
def judge_variant(page: OldPage, walk: Walk, national: str) -> str | None:
    """An http variant may also be gone (403/404/410: no entry point); else it is judged like the old URL."""
    if walk.page is not None and walk.page.status in (403, 404, 410):
        return None
    return judge_old_walk(page, walk, national)


def judge_old_walk(page: OldPage, walk: Walk, national: str) -> str | None:
    """Why an old page's walk is not a redirect to its procedure on the national portal (None when it is)."""
    if walk.problem:
        return walk.problem
    assert walk.landing is not None
    problem = national_problem(walk.landing, national)
    if problem:
        return problem
    if page.procedure and not names_procedure(walk.landing, page.procedure):
        return (f"lands on {walk.landing}, which does not name procedure {page.procedure} (the citizen has to "
                "find it again)")
    return None


@check("PORT-01", criterion="portal", severity="critical",
       title="Every old procedure and submission page redirects to its procedure on the national portal",
       rule="provincial portal closed; old pages redirect to the national portal; RFC 9110 §15.4",
       requires=("portal",),
       detects=("old-portal-still-serves-form", "old-portal-redirects-elsewhere", "old-portal-redirects-to-home"))
def old_pages_redirect(ctx: CheckContext) -> str:
    """Each of ``portal.old_urls`` answers a redirect (301, 302, 303, 307, 308, or a meta refresh of at most
    5 s) whose chain — at most ``max_redirects`` hops, every hop on a host the profile names or on loopback, http→
    https and trailing-slash hops accepted — ends on the national portal's host (https, or the profile's scheme),
    at a URL naming the page's procedure when the profile gives one. A page still served, a 404, a redirect to any
    other host (never followed), a loop or a landing on the national home page fails. The plain-http variant of an
    https old URL (old bookmarks) is judged alike, unless nothing answers there or it is gone (403/404/410)."""
    settings = _settings(ctx)
    survey = _survey_shared(ctx)
    reached = [(p, w) for p, w in survey.old if w.unreachable is None]
    unreachable = [f"{w.start} ({w.unreachable})" for _, w in survey.old if w.unreachable]
    ctx.require_evidence(len(reached), len(settings.old_urls), "old portal URLs answered"
                         + (f" (unreachable: {_summarise(unreachable)})" if unreachable else ""),
                         reproduce=_reproduce(settings.old_urls[0].url))
    wrong = [(p, w, judge_old_walk(p, w, settings.national_portal)) for p, w in reached]
    wrong += [(p, w, judge_variant(p, w, settings.national_portal)) for p, w in survey.variants]
    wrong = [(p, w, why) for p, w, why in wrong if why]
    ctx.expect(
        not wrong,
        f"{len(wrong)} of {len(reached)} old portal URLs do not lead to the national portal "
        f"{settings.national_portal}: " + _summarise([f"{p.url}: {why}" for p, _, why in wrong]),
        expected=f"a redirect to {settings.national_portal}/… naming the procedure, within "
                 f"{settings.max_redirects} hops",
        actual=[{"url": p.url, "chain": w.describe(), "problem": why} for p, w, why in wrong[:_SHOWN]],
        reproduce=_reproduce(wrong[0][0].url) if wrong else None,
    )
    hops = sum(len(w.hops) for _, w in reached)
    named = sum(1 for p, _ in reached if p.procedure)
    variants = f"; {len(survey.variants)} http:// variant(s) too" if survey.variants else ""
    return (f"{len(reached)} of {len(settings.old_urls)} old URLs redirect to {_host_of(settings.national_portal)} "
            f"({hops} hops in all); {named} land on a URL naming their procedure{variants}")


# -- PORT-02 ----------------------------------------------------------------------------------------
def _marker(ctx: CheckContext) -> dict[str, str]:
    from haicap.data_generators.identity import make_cccd
    from haicap.data_generators.units import admin_units

    rng = ctx.rng("portal:submission-probe")
    communes = list(ctx.target.communes or [c.code for c in admin_units().communes(ctx.target.province_code)])
    cccd = make_cccd(rng, date(1970 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28)),
                     bool(rng.randrange(2)), ctx.target.province_code)
    return {"MaXa": rng.choice(communes), "ChuHoSo": "Nguyễn Văn Kiểm Thử", "SoDinhDanh": cccd,
            "TrichYeuHoSo": f"haicap PORT-02 probe {rng.randrange(10**9):09d}", "SoDienThoai": "0912345678"}


def _procedure_of(url: str, settings: PortalSettings) -> str:
    from haicap.data_generators.procedures import load_procedures

    codes = [p.procedure for p in settings.old_urls if p.procedure] + [p["MaTTHC"] for p in load_procedures()]
    return next((code for code in codes if names_procedure(url, code)), codes[0])


def _created(ctx: CheckContext, marker: dict[str, str], within: float) -> tuple[list[str], str]:
    """Where a dossier of the marker citizen shows up, and where haicap looked: the officer API (when it answers:
    a creation shows at once) and the national sync ledger (polled for ``within`` seconds without the officer
    API: every dossier a province creates reaches it within the sync SLA)."""
    found: list[str] = []
    items = _officer_list(ctx, marker["MaXa"])
    if items is not None:
        found += [f"officer API: {d.get('MaHoSo')}" for d in items if isinstance(d, dict) and _is_marker(d, marker)]
        within = 0.0
    deadline = time.monotonic() + within
    while True:
        found += [f"national sync ledger: {d.get('MaHoSo')}" for d in ctx.national.synced_dossiers()
                  if isinstance(d, dict) and _is_marker(d.get("item", d), marker)]
        if found or time.monotonic() >= deadline:
            where = "national sync ledger" + ("" if items is None else " and officer API")
            return found, where
        time.sleep(0.5)


def _officer_list(ctx: CheckContext, ma_xa: str) -> list[Any] | None:
    """The officer API's dossiers of one commune (newest first), or None without a usable officer API."""
    if "officer_api" not in ctx.target.capabilities or not ctx.target.officer_token:
        return None
    try:
        answer = ctx.province.port.request("GET", "/officer/dossiers", params={"MaXa": ma_xa, "limit": "200"},
                                           headers={"Authorization": f"Bearer {ctx.target.officer_token}"},
                                           name="officer list dossiers")
        items = answer.json().get("items") if answer.status_code == 200 else None
    except (TargetUnreachable, ValueError, AttributeError):
        return None
    return items if isinstance(items, list) else None


def _is_marker(doc: Any, marker: dict[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    ids = doc.get("DinhDanhCHS") if isinstance(doc.get("DinhDanhCHS"), list) else []
    return doc.get("TrichYeuHoSo") == marker["TrichYeuHoSo"] or any(
        isinstance(i, dict) and i.get("SoDinhDanh") == marker["SoDinhDanh"] for i in ids)


def _probe_submissions(ctx: CheckContext, settings: PortalSettings, marker: dict[str, str]
                       ) -> tuple[int, list[str]]:
    walker = Walker(settings, ctx.target.allowed_hosts)
    problems, answered = [], 0
    try:
        for url in settings.submission_urls:
            try:
                answer = walker.request("POST", url, data={**marker, "MaTTHC": _procedure_of(url, settings)})
            except TargetUnreachable:
                continue
            answered += 1
            why = judge_refusal(answer.status_code, answer.headers.get("location"), url,
                                _lands_national(settings))
            if why:
                problems.append(f"POST {url}: {why}")
    finally:
        walker.close()
    return answered, problems


@check("PORT-02", criterion="portal", severity="critical",
       title="The old portal takes no submission: no submission form, the old POST refused, nothing created",
       rule="provincial portal closed; no local submission; contracts/national-sync.openapi.yaml",
       requires=("portal",), detects=("old-portal-still-serves-form", "old-portal-accepts-submissions"))
def no_local_submission(ctx: CheckContext) -> str:
    """No page the old portal still serves (old URLs, look-up and sign-in pages) carries a submission form (a POST
    form or a file upload not sent to the national portal; a GET search form is a look-up and is accepted). Each
    of ``portal.submission_urls`` answers a form POST of a marker citizen with 403, 404, 405, 410 or a redirect to
    the national portal; then no dossier of that citizen exists in the officer API (when declared) or in the
    national sync ledger (polled for the sync SLA when there is no officer API)."""
    settings = _settings(ctx)
    ctx.require_evidence(len(settings.submission_urls), 1, "old submission endpoints declared "
                                                           "(profile portal.submission_urls)")
    survey = _survey_shared(ctx)
    pages = survey.pages()
    forms = [f"{p.url}: {f}" for p in pages for f in submission_forms(p.text, p.url, settings.national_portal)]
    marker = _marker(ctx)
    answered, refused_wrongly = _probe_submissions(ctx, settings, marker)
    ctx.require_evidence(answered, len(settings.submission_urls), "old submission endpoints answered",
                         reproduce=_reproduce(settings.submission_urls[0], "POST"))
    created, where = _created(ctx, marker, min(ctx.target.sync_sla_seconds, 30.0))
    problems = ([f"{len(forms)} submission form(s) still served: " + _summarise(forms)] if forms else []) + \
        refused_wrongly + ([f"a dossier of the probe's citizen {marker['SoDinhDanh']} was created: "
                            + _summarise(created)] if created else [])
    ctx.expect(
        not problems,
        "the old portal still takes submissions: " + "; ".join(problems),
        expected="no POST/upload form on old pages; each old submission POST answered 403/404/405/410 or a "
                 "redirect to the national portal; nothing created",
        actual={"forms": forms[:_SHOWN], "submission_answers": refused_wrongly[:_SHOWN], "created": created[:_SHOWN]},
        reproduce=(f"curl -si -X POST --data-urlencode 'TrichYeuHoSo={marker['TrichYeuHoSo']}' "
                   f"'{settings.submission_urls[0]}'"),
    )
    return (f"{len(pages)} page(s) still served, none with a submission form; {answered} old submission POST(s) "
            f"refused; no dossier of the probe citizen in the {where}")


# -- PORT-03 ----------------------------------------------------------------------------------------
def _login_problems(survey: Survey) -> list[str]:
    """Old sign-in URLs that neither lead to national sign-on, nor are gone (404/410), nor serve a page (a page's
    password fields are judged with every page)."""
    problems = []
    for walk in survey.login:
        if walk.unreachable or walk.landing is not None:
            continue
        page = walk.page
        if page is not None and (page.status in (404, 410) or 200 <= page.status < 300):
            continue
        problems.append(f"{walk.start}: {walk.problem}")
    return problems


def _probe_logins(ctx: CheckContext, settings: PortalSettings) -> tuple[int, list[str]]:
    walker = Walker(settings, ctx.target.allowed_hosts)
    problems, answered = [], 0
    body = {"username": "haicap-probe", "password": "not-a-real-password", "TenDangNhap": "haicap-probe",
            "MatKhau": "not-a-real-password"}
    try:
        for url in settings.login_urls:
            try:
                answer = walker.request("POST", url, data=body)
            except TargetUnreachable:
                continue
            answered += 1
            why = judge_refusal(answer.status_code, answer.headers.get("location"), url, _lands_sign_on(settings),
                                what="the credentials")
            if why:
                cookie = " and set a cookie" if answer.headers.get("set-cookie") else ""
                problems.append(f"POST {url}: {why}{cookie}")
    finally:
        walker.close()
    return answered, problems


@check("PORT-03", criterion="portal", severity="critical",
       title="The old portal has no local sign-in: no password field, sign-in leads to national single sign-on",
       rule="provincial portal closed; no local sign-in; OpenID Connect Core 1.0 §3.1.2.1",
       requires=("portal",), detects=("old-portal-local-login",))
def no_local_sign_in(ctx: CheckContext) -> str:
    """No page the old portal still serves has a password field. Each of ``portal.login_urls`` redirects to the
    national portal or the national identity provider (directly, or through the province's own single sign-on
    start), or answers 404/410, or serves a page without a password field; a POST of credentials to it is refused
    (403, 404, 405, 410, or a redirect to national sign-on)."""
    settings = _settings(ctx)
    ctx.require_evidence(len(settings.login_urls), 1, "old sign-in URLs declared (profile portal.login_urls)")
    survey = _survey_shared(ctx)
    seen = [w for w in survey.login if w.unreachable is None]
    ctx.require_evidence(len(seen), len(settings.login_urls), "old sign-in URLs answered",
                         reproduce=_reproduce(settings.login_urls[0]))
    pages = survey.pages()
    with_password = [f"{p.url} ({password_fields(p.text)} password field(s))" for p in pages if password_fields(p.text)]
    answered, posts = _probe_logins(ctx, settings)
    problems = ([f"{len(with_password)} page(s) with a password field: " + _summarise(with_password)]
                if with_password else []) + _login_problems(survey) + posts
    ctx.expect(
        not problems,
        "the old portal still signs citizens in locally: " + "; ".join(problems),
        expected="no password field; old sign-in URLs lead to national single sign-on or are gone; a credentials "
                 "POST refused",
        actual={"problems": problems[:_SHOWN], "sign_in_chains": [w.describe() for w in survey.login[:_SHOWN]]},
        reproduce=_reproduce(settings.login_urls[0]),
    )
    landed = sum(1 for w in seen if w.landing)
    return (f"{len(pages)} page(s) still served, no password field; {landed} of {len(seen)} old sign-in URL(s) "
            f"lead to national sign-on; {answered} credentials POST(s) refused")
