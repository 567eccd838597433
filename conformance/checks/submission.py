"""Online submission: contract conformance, input validation, MaHoSo, commune codes, durability, coverage.

The national checklist counts a province as tested for online submission only when every commune, ward and
special zone accepted a dossier; around that, a submission must honour the provincial dossier
contract (``contracts/province-dossier.openapi.yaml``): a 201 carries a schema-valid Dossier in state 1 with
an official, unique MaHoSo, bad input is a 4xx RFC 9457 problem naming the field (never a 5xx), pre-merger
ward codes and other provinces' communes are refused, an acknowledged dossier is never lost, however many
citizens submit at once, and no citizen reaches another's dossier (OWASP API1:2023).

Each check signs a fresh test citizen in (any structurally valid CCCD is one) and builds its payloads from
the run's seeded data pool, so checks are independent and reproducible from the seed.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, CheckFailure, check
from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.http_port import HttpxPort, ResponseLike, TargetUnreachable
from haicap.province_client import CitizenSession, LoginFailed

__all__ = [
    "DOSSIER_REF",
    "citizen_session",
    "curl_line",
    "evidence",
    "names_field",
    "parallel",
    "problem_fields",
    "restriction_note",
    "scenario_data",
    "submission_payload",
    "submit_concurrently",
    "today_vn",
]

DOSSIER_REF = "dossier.schema.json#/$defs/Dossier"
SUBMISSION_REF = "dossier.schema.json#/$defs/DossierSubmission"
MA_HO_SO_REF = "common.schema.json#/$defs/MaHoSo"
PROBLEM_REF = "common.schema.json#/$defs/Problem"
#: the procedure the submission checks file (birth registration: free, every commune receives it)
PROCEDURE = "1.001193"
SUBMIT_PATH = "/api/v1/dossiers"
#: identity fields come from the SSO session, not the form (judged by the SSO criterion)
SESSION_FIELDS = frozenset({"ChuHoSo", "DinhDanhCHS"})
#: workers for concurrent submits (the sandbox and the machine are small; a real province can take more)
WORKERS = 16
#: concurrent citizens of the durability burst (SUB-06), 10 dossiers each
CLIENTS = 20
VN_UTC_OFFSET = timedelta(hours=7)

T = TypeVar("T")
R = TypeVar("R")


# -- helpers shared by the submission, fuzzing and forwarding checks ---------------------------------
def evidence(response: ResponseLike, limit: int = 600) -> dict[str, Any]:
    """Status and (trimmed) body of a response, for ``actual=``."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:limit]
    else:
        text = json.dumps(body, ensure_ascii=False)
        if len(text) > limit:
            body = text[:limit] + "…"
    return {"status": response.status_code, "body": body}


def curl_line(method: str, url: str, *, body: Any = None, content_type: str | None = "application/json",
              auth: str | None = "<citizen session token>") -> str:
    """A curl reproduction without secrets: the credential is a placeholder."""
    parts = [f"curl -X {method} '{url}'"]
    if auth:
        parts.append(f"-H 'Authorization: Bearer {auth}'")
    if body is not None:
        if content_type:
            parts.append(f"-H 'Content-Type: {content_type}'")
        data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        parts.append("-d '" + data.replace("'", "'\\''") + "'")
    return " ".join(parts)


def citizen_session(ctx: CheckContext, purpose: str) -> tuple[dict[str, Any], CitizenSession]:
    """A new test citizen of the run's data pool, signed in through the national identity provider."""
    citizen = scenario_data(ctx).citizen()
    try:
        session = ctx.province.login(citizen["SoDinhDanh"])
    except LoginFailed as exc:
        raise CheckError(f"{purpose}: single sign-on failed, so submission cannot be tested: {exc}") from None
    return citizen, session


def submission_payload(ctx: CheckContext, citizen: dict[str, Any], commune: str | None = None) -> dict[str, Any]:
    """A valid DossierSubmission of the citizen, in ``commune`` (default: one drawn from the pool)."""
    return scenario_data(ctx).submission(PROCEDURE, commune, citizen)  # type: ignore[no-any-return]


def problem_fields(body: Any) -> list[str]:
    """The field names an RFC 9457 problem body puts forward (``errors[].field``)."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [str(e.get("field")) for e in body["errors"] if isinstance(e, dict) and e.get("field") is not None]


def _path(field: str) -> tuple[str, ...]:
    """``DinhDanhCHS[0].SoDinhDanh``, ``/DinhDanhCHS/0/SoDinhDanh``, ``DinhDanhCHS.0.SoDinhDanh`` → parts."""
    return tuple(p for p in re.split(r"[.\[\]/]+", field.strip().lstrip("$#")) if p)


def names_field(body: Any, field: str) -> bool:
    """Whether a problem body names ``field`` in ``errors``: an ``errors[].field`` equal to it, or a path
    containing it or contained in it (``DinhDanhCHS[0]`` for ``DinhDanhCHS[0].SoDinhDanh`` and vice versa), or,
    for a property the contract does not define, an ``errors[].message`` quoting its name."""
    wanted = _path(field)
    for named in problem_fields(body):
        got = _path(named)
        if got and (got[: len(wanted)] == wanted or wanted[: len(got)] == got):
            return True
    quoted = re.compile(rf"""["'`]{re.escape(wanted[-1])}["'`]""") if wanted else None
    errors = body.get("errors") if isinstance(body, dict) else None
    return bool(quoted) and any(isinstance(e, dict) and quoted.search(str(e.get("message", "")))
                                for e in errors or [])


def is_problem(response: ResponseLike) -> bool:
    """An RFC 9457 problem: ``application/problem+json`` with a body valid against the common Problem schema."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/problem+json":
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return default_registry().validator(PROBLEM_REF).is_valid(body)


def parallel(func: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> list[R]:
    """``func`` over ``items`` from a thread pool, results in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def scenario_data(ctx: CheckContext) -> Any:
    """The run's data pool (one per process, per xdist worker its own walk: conformance/journeys.py)."""
    from haicap.conformance.journeys import scenario_data as shared_pool

    return shared_pool(ctx)


def _communes(ctx: CheckContext) -> list[tuple[str, str]]:
    """(code, name) of every current commune, ward and special zone of the province (or the profile's subset)."""
    units = admin_units()
    official = {c.code: c.name for c in units.communes(ctx.target.province_code)}
    wanted = ctx.target.communes or tuple(official)
    return [(code, official.get(code, "(not a current commune of the province)")) for code in wanted]


class ThreadPorts:
    """One HTTP connection pool per worker thread (httpx clients are not shared across threads)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()
        self._all: list[HttpxPort] = []
        self._lock = threading.Lock()

    def get(self) -> HttpxPort:
        port: HttpxPort | None = getattr(self._local, "port", None)
        if port is None:
            port = self._local.port = HttpxPort(self.base_url, timeout=30.0)
            with self._lock:
                self._all.append(port)
        return port

    def __enter__(self) -> ThreadPorts:
        return self

    def __exit__(self, *exc: object) -> None:
        for port in self._all:
            port.close()


def submit_concurrently(ctx: CheckContext, jobs: list[tuple[CitizenSession, dict[str, Any]]],
                        workers: int = WORKERS) -> list[ResponseLike]:
    """POST each (session, payload) from a pool of ``workers`` threads, each with its own connection."""
    with ThreadPorts(ctx.target.province_url) as ports:
        return parallel(lambda job: ports.get().request("POST", SUBMIT_PATH, json=job[1], headers=job[0].headers(),
                                                        name="submit dossier (concurrent)"), jobs, workers)


def _json(response: ResponseLike) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _submit_one(ctx: CheckContext, purpose: str, commune: str | None = None
                ) -> tuple[CitizenSession, dict[str, Any], ResponseLike]:
    citizen, session = citizen_session(ctx, purpose)
    payload = submission_payload(ctx, citizen, commune)
    return session, payload, ctx.province.submit(session, payload)


def _expect_201(ctx: CheckContext, response: ResponseLike, payload: dict[str, Any], what: str) -> dict[str, Any]:
    url = ctx.target.province_url + SUBMIT_PATH
    body = _json(response)
    if response.status_code != 201 or not isinstance(body, dict):
        raise CheckFailure(f"{what}: a valid submission was not accepted (HTTP {response.status_code})",
                           expected="201 with the Dossier", actual=evidence(response),
                           reproduce=curl_line("POST", url, body=payload))
    return body


# -- SUB-01 ----------------------------------------------------------------------------------------
def _echoed_fields(payload: dict[str, Any]) -> list[str]:
    """Fields of the submission that the Dossier contract also has (identity fields aside): kept as sent."""
    registry = default_registry()
    common = set(registry.property_names(SUBMISSION_REF)) & set(registry.property_names(DOSSIER_REF))
    return [name for name in sorted(common - SESSION_FIELDS) if name in payload]


def _echo_mismatches(payload: dict[str, Any], dossier: dict[str, Any]) -> dict[str, Any]:
    """Fields of the submission (those the Dossier contract also has) that the dossier does not carry as sent."""
    out: dict[str, Any] = {}
    for name in _echoed_fields(payload):
        sent, got = payload[name], dossier.get(name)
        if isinstance(sent, list):
            ok = isinstance(got, list) and len(got) == len(sent) and all(
                isinstance(g, dict) and all(g.get(k) == v for k, v in s.items()) if isinstance(s, dict) else g == s
                for s, g in zip(sent, got, strict=False))
        else:
            ok = got == sent
        if not ok:
            out[name] = {"sent": sent, "got": got}
    return out


@check("SUB-01", criterion="submission", severity="critical",
       title="A valid submission is accepted as a contract-conformant dossier in state 1, readable back",
       rule="contracts/province-dossier.openapi.yaml: POST /api/v1/dossiers 201 → Dossier; GET by MaHoSo; list",
       requires=("sso", "submission"), detects=("bad-mahoso-format",))
def submission_contract(ctx: CheckContext) -> str:
    """POST a valid DossierSubmission: 201 with a body valid against ``Dossier``, TrangThaiHoSo "1", the
    submitted fields echoed; GET /api/v1/dossiers/{MaHoSo} returns the same dossier and the applicant's
    list contains it."""
    session, payload, response = _submit_one(ctx, "SUB-01")
    dossier = _expect_201(ctx, response, payload, "POST /api/v1/dossiers")
    url = ctx.target.province_url + SUBMIT_PATH
    reproduce = curl_line("POST", url, body=payload)
    violations = default_registry().validator(DOSSIER_REF).violations(dossier)
    if violations:
        raise CheckFailure(
            f"the 201 body breaks the Dossier schema in {len(violations)} place(s): "
            + "; ".join(f"{v.field or '(root)'}: {v.message}" for v in violations[:3]),
            expected="a body valid against dossier.schema.json#/$defs/Dossier",
            actual={"violations": [{"field": v.field, "message": v.message} for v in violations[:10]],
                    "MaHoSo": dossier.get("MaHoSo")},
            reproduce=reproduce)
    ctx.expect(dossier["TrangThaiHoSo"] == "1", "a new dossier is not in state 1 (Mới đăng ký)",
               expected="TrangThaiHoSo '1'", actual=dossier["TrangThaiHoSo"], reproduce=reproduce)
    wrong = _echo_mismatches(payload, dossier)
    ctx.expect(not wrong, f"submitted fields not kept as sent: {', '.join(wrong)}",
               expected="the submitted values", actual=wrong, reproduce=reproduce)
    ma_ho_so = dossier["MaHoSo"]
    got = ctx.province.dossier(session, ma_ho_so)
    read_back = _json(got)
    get_line = curl_line("GET", f"{url}/{ma_ho_so}")
    ctx.expect(got.status_code == 200 and isinstance(read_back, dict),
               f"GET {SUBMIT_PATH}/{ma_ho_so} does not return the dossier just created",
               expected="200 with the dossier", actual=evidence(got), reproduce=get_line)
    differ = sorted(k for k in dossier if read_back.get(k) != dossier[k])
    ctx.expect(not differ, f"GET by MaHoSo returns a different dossier: {', '.join(differ)} differ",
               expected={k: dossier[k] for k in differ}, actual={k: read_back.get(k) for k in differ},
               reproduce=get_line)
    listed = ctx.province.dossiers(session)
    items = (_json(listed) or {}).get("items") if isinstance(_json(listed), dict) else None
    codes = [i.get("MaHoSo") for i in items or [] if isinstance(i, dict)]
    ctx.expect(listed.status_code == 200 and ma_ho_so in codes,
               f"the applicant's list does not contain {ma_ho_so}", expected=f"{ma_ho_so} among the items",
               actual=evidence(listed), reproduce=curl_line("GET", url))
    echoed = len(_echoed_fields(payload))
    return (f"dossier {ma_ho_so} (MaTTHC {payload.get('MaTTHC')}, MaXa {payload.get('MaXa')}): HTTP 201 valid "
            f"against Dossier, TrangThaiHoSo {dossier['TrangThaiHoSo']}, {echoed} submitted fields kept as sent; "
            f"GET by MaHoSo returned the same {len(dossier)} fields; listed among the applicant's {len(codes)} "
            "dossiers")


# -- SUB-02 ----------------------------------------------------------------------------------------
def _bad_inputs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Each bad request: label, the field a problem must name (None: the body as a whole), how to send it."""
    from haicap.data_generators.invalid import invalid_variants

    cases: list[dict[str, Any]] = [
        {"label": v.label, "field": v.field, "json": v.record, "description": v.description}
        for v in invalid_variants(payload, "submission") if v.detectable_by == "schema"
    ]
    raw = json.dumps(payload, ensure_ascii=False)
    cases += [
        {"label": "malformed-json", "field": None, "content": raw[: len(raw) // 2].encode(),
         "content_type": "application/json", "description": "JSON cut in the middle"},
        {"label": "wrong-content-type", "field": None, "content": raw.encode(), "content_type": "text/plain",
         "description": "a JSON body sent as text/plain"},
        {"label": "empty-body", "field": None, "content": b"", "content_type": "application/json",
         "description": "no body at all"},
        {"label": "not-an-object", "field": None, "content": b"[]", "content_type": "application/json",
         "description": "a JSON array instead of an object"},
    ]
    return cases


def _send_bad(port: HttpxPort, session: CitizenSession, case: dict[str, Any]) -> ResponseLike:
    if "json" in case:
        return port.request("POST", SUBMIT_PATH, json=case["json"], headers=session.headers(), name="bad input")
    headers = {**session.headers(), "Content-Type": case["content_type"]}
    return port.request("POST", SUBMIT_PATH, content=case["content"], headers=headers, name="bad input")


def _repro_bad(url: str, case: dict[str, Any]) -> str:
    body = case.get("json", case.get("content", b"").decode("utf-8", "replace"))
    return curl_line("POST", url, body=body if body != "" else None,
                     content_type=case.get("content_type", "application/json"))


@check("SUB-02", criterion="submission", severity="critical",
       title="Bad input is refused with a 4xx RFC 9457 problem naming the field, never a 5xx",
       rule="RFC 9457 §3; RFC 9110 §15.5 (4xx client errors); contracts/province-dossier.openapi.yaml POST "
            "/api/v1/dossiers",
       requires=("sso", "submission"), detects=("500-on-malformed-input",))
def bad_input_refused(ctx: CheckContext) -> str:
    """Every schema-invalid variant of a valid submission (haicap.data_generators.invalid), malformed JSON,
    a wrong content type, an empty body and a non-object body: each answered 4xx with
    ``application/problem+json``; a schema variant's problem names the offending field in ``errors``."""
    citizen, session = citizen_session(ctx, "SUB-02")
    payload = submission_payload(ctx, citizen)
    url = ctx.target.province_url + SUBMIT_PATH
    findings: list[dict[str, Any]] = []
    first_repro: str | None = None
    port = HttpxPort(ctx.target.province_url, timeout=15.0)
    cases = _bad_inputs(payload)
    statuses: Counter[int] = Counter()
    for case in cases:
        try:
            response = _send_bad(port, session, case)
        except TargetUnreachable as exc:  # the server dropped the connection instead of answering
            port.close()
            port = HttpxPort(ctx.target.province_url, timeout=15.0)
            ctx.province.health()  # still up? (raises TargetUnreachable → error, if the whole target is gone)
            findings.append({"variant": case["label"], "field": case["field"], "what": case["description"],
                             "verdict": "no answer: the connection was dropped", "status": None,
                             "body": str(exc).split(": ", 1)[-1]})
            first_repro = first_repro or _repro_bad(url, case)
            continue
        status = response.status_code
        statuses[status] += 1
        if status >= 500:
            verdict = "server error"
        elif status < 400:
            verdict = "accepted"
        elif not is_problem(response):
            verdict = "not an RFC 9457 problem (application/problem+json with type, title, status)"
        elif case["field"] is not None and not names_field(_json(response), case["field"]):
            verdict = f"the problem does not name {case['field']} in errors[].field"
        else:
            continue
        findings.append({"variant": case["label"], "field": case["field"], "what": case["description"],
                         "verdict": verdict, **evidence(response, 300)})
        first_repro = first_repro or _repro_bad(url, case)
    port.close()
    if findings:
        server_errors = sum(f["status"] is None or f["status"] >= 500 for f in findings)
        raise CheckFailure(
            f"{len(findings)} bad input(s) not refused properly ({server_errors} with a 5xx or no answer): "
            + ", ".join(f"{f['variant']} → {f['status'] or 'no answer'}" for f in findings[:6]),
            expected="4xx application/problem+json naming the offending field",
            actual=findings, reproduce=first_repro)
    named = sum(case["field"] is not None for case in cases)
    return (f"{len(cases)} bad inputs ({named} schema variants, {len(cases) - named} malformed requests) each refused "
            f"with an RFC 9457 problem ({', '.join(f'HTTP {s} ×{n}' for s, n in sorted(statuses.items()))}); "
            f"each of the {named} problems named its field")


# -- SUB-03 ----------------------------------------------------------------------------------------
def _declared_agencies(ctx: CheckContext) -> dict[str, str]:
    """MaXa → MaCoQuan the province declares (GET /api/v1/units), {} if it declares none."""
    def load() -> dict[str, str]:
        response = ctx.province.units()
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            return {}
        return {u["MaXa"]: u["MaCoQuan"] for u in body.get("DonVi") or []
                if isinstance(u, dict) and isinstance(u.get("MaXa"), str) and isinstance(u.get("MaCoQuan"), str)}

    return ctx.shared("submission:declared-agencies", load)


def ma_ho_so_problems(code: Any, commune: str, province_agency: str, declared: dict[str, str],
                      today: datetime) -> list[str]:
    """What is wrong with a MaHoSo issued for a dossier filed in ``commune`` (empty: nothing)."""
    if not isinstance(code, str) or not default_registry().validator(MA_HO_SO_REF).is_valid(code):
        return [f"{code!r} is not {{agency code}}-{{yyMMdd}}-{{4-digit sequence}} (common.schema MaHoSo)"]
    agency, day, _sequence = code.rsplit("-", 2)
    out = []
    group = province_agency.rsplit(".", 1)[-1]
    if not agency.endswith("." + group):
        out.append(f"agency {agency} is not an agency of the province ({group})")
    elif declared and agency not in set(declared.values()):
        out.append(f"agency {agency} is not a commune agency the province declares (GET /api/v1/units)")
    elif declared.get(commune) not in (None, agency):
        out.append(f"agency {agency} is not the one declared for commune {commune} ({declared[commune]})")
    days = {(today + timedelta(days=d)).strftime("%y%m%d") for d in (-1, 0, 1)}
    if day not in days:
        out.append(f"date part {day} is not today's (yyMMdd, Asia/Ho_Chi_Minh)")
    return out


def today_vn() -> datetime:
    return datetime.now(timezone(VN_UTC_OFFSET))


@check("SUB-03", criterion="submission", severity="critical",
       title="MaHoSo has the official format, names the receiving agency and is unique under concurrency",
       rule="contracts/schemas/common.schema.json#/$defs/MaHoSo: {agency code}-{yyMMdd}-{4-digit sequence}; "
            "contracts/province-dossier.openapi.yaml (receiving commune agency)",
       requires=("sso", "submission"), detects=("duplicate-mahoso", "bad-mahoso-format"))
def ma_ho_so_official_and_unique(ctx: CheckContext) -> str:
    """40 concurrent submissions in one commune: every 201 carries a MaHoSo of the official pattern whose
    agency part is a commune agency of the province (the one declared for the commune, when the province
    declares its units) and whose date part is today's; all 40 codes are distinct."""
    citizen, session = citizen_session(ctx, "SUB-03")
    commune, commune_name = ctx.rng("SUB-03").choice(_communes(ctx))
    payloads = [submission_payload(ctx, citizen, commune) for _ in range(40)]
    responses = submit_concurrently(ctx, [(session, p) for p in payloads])
    url = ctx.target.province_url + SUBMIT_PATH
    refused = [evidence(r, 300) for r in responses if r.status_code != 201]
    ctx.expect(not refused, f"{len(refused)} of 40 concurrent valid submissions in commune {commune} refused",
               expected="201 for each", actual=refused[:5], reproduce=curl_line("POST", url, body=payloads[0]))
    codes = [(_json(r) or {}).get("MaHoSo") for r in responses]
    declared = _declared_agencies(ctx)
    today = today_vn()
    bad = {str(c): p for c in dict.fromkeys(codes)
           if (p := ma_ho_so_problems(c, commune, ctx.target.agency_code, declared, today))}
    first = next(iter(bad.items()), ("", [""]))
    ctx.expect(not bad, f"MaHoSo not in the official form: {first[0]}: {first[1][0]}",
               expected="{agency code of the receiving commune}-{yyMMdd}-{4-digit sequence}, e.g. "
                        "000.17.22.H56-210531-0001", actual=dict(list(bad.items())[:5]),
               reproduce=curl_line("POST", url, body=payloads[0]))
    seen: dict[str, int] = {}
    for code in codes:
        seen[code] = seen.get(code, 0) + 1
    duplicates = {c: n for c, n in seen.items() if n > 1}
    ctx.expect(not duplicates, f"{sum(duplicates.values())} of 40 concurrent submissions share "
               f"{len(duplicates)} MaHoSo", expected="40 distinct MaHoSo", actual=duplicates,
               reproduce=f"40 concurrent POST {url} in commune {commune} (seed {ctx.seed})")
    agencies = sorted({str(c).rsplit("-", 2)[0] for c in codes})
    ordered = sorted(str(c) for c in codes)
    return (f"{len(codes)} concurrent submissions in commune {commune} {commune_name}: {len(seen)} distinct MaHoSo "
            f"of agency {', '.join(agencies)}, dated today ({ordered[0]} … {ordered[-1]})")


# -- SUB-04 ----------------------------------------------------------------------------------------
def legacy_only_codes(province_code: str, how_many: int, rng: Any) -> list[tuple[str, str]]:
    """(code, name) of pre-merger wards of the province's old provinces whose code is not a current commune."""
    units = admin_units()
    olds = units.province_merges().get(province_code, (province_code,))
    wards = sorted({w.code: w.name for old in olds for w in units.legacy_wards(old)
                    if not units.is_current_commune(w.code)}.items())
    return rng.sample(wards, min(how_many, len(wards)))


@check("SUB-04", criterion="submission", severity="major",
       title="Pre-merger (63-province) ward codes are refused as MaXa with a 4xx naming MaXa",
       rule="Decision 19/2025/QĐ-TTg: commune codes in force from 1 July 2025",
       requires=("sso", "submission"), detects=("pre-merger-commune-codes",))
def pre_merger_codes_refused(ctx: CheckContext) -> str:
    """Submit with MaXa = ward codes of the province's pre-merger provinces that are no current commune
    code: each must be refused with a 4xx problem naming MaXa."""
    legacy = legacy_only_codes(ctx.target.province_code, 6, ctx.rng("SUB-04"))
    if not legacy:
        raise CheckError(f"no pre-merger ward code of province {ctx.target.province_code} is free of reuse")
    return _refuse_maxa(ctx, "SUB-04", [(code, name, "pre-merger ward") for code, name in legacy],
                        "pre-merger ward codes")


# -- SUB-05 ----------------------------------------------------------------------------------------
@check("SUB-05", criterion="submission", severity="critical",
       title="Every commune, ward and special zone of the province accepts an online submission",
       rule="national readiness checklist of 28 June 2025: online submission tested in every commune, ward and "
            "special zone at least once; Decision 19/2025/QĐ-TTg (the communes)",
       requires=("sso", "submission_channel"), detects=("draft-commune-codes",))
def commune_coverage(ctx: CheckContext) -> str:
    """One valid submission in every current commune of the province (Decision 19/2025/QĐ-TTg): each
    answered 201 (through the submission channel: the citizen API, or a national forward when the province
    declares no submission API). A profile may restrict the communes (``communes``); then a refusal still
    fails, but all accepted is no pass: the check errors, naming the communes covered and how many were not tested."""
    citizen, session = citizen_session(ctx, "SUB-05")
    communes = _communes(ctx)
    coverage = ctx.target.commune_coverage()
    restriction = restriction_note(coverage)
    payloads = [submission_payload(ctx, citizen, code) for code, _ in communes]
    channel = ctx.submission_channel
    responses = (submit_concurrently(ctx, [(session, p) for p in payloads]) if channel.kind == "citizen_api"
                 else [channel.submit(session, p) for p in payloads])
    refused = [{"MaXa": code, "TenXa": name, **evidence(r, 300)}
               for (code, name), r in zip(communes, responses, strict=True) if r.status_code != 201]
    if refused:
        raise CheckFailure(
            f"{len(refused)} of {len(communes)} communes refused a valid submission: "
            + ", ".join(f"{r['MaXa']} {r['TenXa']} → {r['status']}" for r in refused[:5])
            + (f" ({restriction})" if restriction else ""),
            expected=f"201 in each of the {len(communes)} communes", actual=refused,
            reproduce=curl_line("POST", ctx.target.province_url + SUBMIT_PATH,
                                body=payloads[communes.index((refused[0]["MaXa"], refused[0]["TenXa"]))]))
    if restriction:
        untested = [f"{c.code} {c.name}" for c in admin_units().communes(ctx.target.province_code)
                    if c.code not in set(coverage["codes"])]
        raise CheckError(
            f"not a full pass: {restriction}; all {len(communes)} accepted "
            f"({', '.join(f'{code} {name}' for code, name in communes[:10])}"
            f"{f', +{len(communes) - 10} more' if len(communes) > 10 else ''}); not tested: "
            f"{', '.join(untested[:5])}{f', +{len(untested) - 5} more' if len(untested) > 5 else ''}. The national "
            "checklist needs every commune, ward and special zone tested at least once: remove `communes` from "
            "the profile for a verdict",
            reproduce="haicap certify --profile <profile without `communes`> --only submission")
    codes = {(_json(r) or {}).get("MaHoSo") for r in responses}
    return (f"{len(communes)} of {coverage['official']} communes of province {ctx.target.province_code} accepted "
            f"a {channel.label} ({len(responses)} dossiers, {len(codes - {None})} distinct MaHoSo)")


def restriction_note(coverage: dict[str, Any]) -> str:
    """What a profile's commune restriction leaves out (empty: every official commune is covered)."""
    if not coverage.get("restricted") or not coverage.get("not_covered"):
        return ""
    return (f"the profile's `communes` restricts coverage to {coverage['covered']} of the {coverage['official']} "
            f"official communes; {coverage['not_covered']} not tested")


# -- SUB-06 ----------------------------------------------------------------------------------------
@check("SUB-06", criterion="submission", severity="critical",
       title="Every acknowledged submission survives a burst of concurrent clients",
       rule="contracts/province-dossier.openapi.yaml: POST /api/v1/dossiers 201 = committed (durable)",
       requires=("sso", "submission"), detects=("loses-dossiers-under-concurrency",))
def durable_under_concurrency(ctx: CheckContext) -> str:
    """20 citizens submit 10 dossiers each, all at once; afterwards every MaHoSo answered 201 is readable by
    GET and listed in its applicant's dossiers."""
    clients = parallel(lambda i: citizen_session(ctx, "SUB-06"), range(CLIENTS), 8)
    per_client = 10
    jobs = [(session, submission_payload(ctx, citizen)) for citizen, session in clients for _ in range(per_client)]
    answers = list(zip((job[0] for job in jobs), submit_concurrently(ctx, jobs, CLIENTS), strict=True))
    url = ctx.target.province_url + SUBMIT_PATH
    acknowledged: dict[str, CitizenSession] = {}
    for session, response in answers:
        body = _json(response)
        if response.status_code == 201 and isinstance(body, dict) and body.get("MaHoSo"):
            acknowledged[body["MaHoSo"]] = session
    refused = [evidence(r, 200) for _, r in answers if r.status_code != 201]
    # A refusal is honest (and judged by SUB-03/SUB-05); this rule is about what was acknowledged.
    ctx.expect(len(acknowledged) >= len(jobs) // 2,
               f"{len(refused)} of {len(jobs)} concurrent valid submissions refused: durability cannot be judged",
               expected="201 for most", actual=refused[:5], reproduce=curl_line("POST", url, body=jobs[0][1]))
    listed: dict[str, set[str]] = {}
    for _, session in clients:
        response = ctx.province.port.request("GET", f"{SUBMIT_PATH}?limit=200", headers=session.headers(),
                                             name="list dossiers")
        body = _json(response)
        items = body.get("items") if isinstance(body, dict) else None
        listed[session.cccd] = {i.get("MaHoSo") for i in items or [] if isinstance(i, dict)}
    missing_list = [m for m, s in acknowledged.items() if m not in listed.get(s.cccd, set())]
    with ThreadPorts(ctx.target.province_url) as ports:
        reads = parallel(lambda item: ports.get().request("GET", f"{SUBMIT_PATH}/{item[0]}",
                                                          headers=item[1].headers(), name="get dossier"),
                         list(acknowledged.items()))
    unreadable = [m for m, r in zip(acknowledged, reads, strict=True) if r.status_code != 200]
    lost = sorted(set(missing_list) | set(unreadable))
    ctx.expect(not lost, f"{len(lost)} of {len(acknowledged)} acknowledged dossiers are lost",
               expected="every MaHoSo answered 201 readable by GET and in the applicant's list",
               actual={"not readable": unreadable[:10], "not listed": missing_list[:10],
                       "acknowledged": len(acknowledged), "refused": len(refused)},
               reproduce=f"{CLIENTS} clients x {per_client} concurrent POST {url}, then GET each (seed {ctx.seed})")
    return (f"{len(jobs)} concurrent submissions by {len(clients)} citizens: {len(acknowledged)} acknowledged "
            f"(201), {len(refused)} refused; all {len(acknowledged)} readable by GET and in their applicant's list")


# -- evidence helpers of SUB-04 and SUB-07 ---------------------------------------------------------
def maxa_verdict(status: int, body: Any, field: str = "MaXa") -> str | None:
    """What a province did with a submission it must refuse for ``field``; None when it refused it properly
    (a 4xx problem naming the field). A refusal with the wrong status or without the field name is said so."""
    if status >= 500:
        return f"server error (HTTP {status})"
    if 200 <= status < 300:
        if names_field(body, field):
            return f"refused with HTTP {status} (expected 4xx)"
        code = body.get("MaHoSo") if isinstance(body, dict) else None
        return f"accepted (HTTP {status}{f', MaHoSo {code}' if code else ''})"
    if 400 <= status < 500:
        return None if names_field(body, field) else f"refused with HTTP {status} without naming {field}"
    return f"answered HTTP {status} (expected a 4xx problem naming {field})"


def _refuse_maxa(ctx: CheckContext, purpose: str, codes: list[tuple[str, str, str]], what: str) -> str:
    """Submit with each (MaXa, name, where from): each must be a 4xx problem naming MaXa; a summary if so."""
    ctx.require_evidence(len(codes), 1, what)
    citizen, session = citizen_session(ctx, purpose)
    url = ctx.target.province_url + SUBMIT_PATH
    wrong: list[dict[str, Any]] = []
    statuses: Counter[int] = Counter()
    for code, name, origin in codes:
        response = ctx.province.submit(session, submission_payload(ctx, citizen, code), name=f"submit ({purpose})")
        statuses[response.status_code] += 1
        verdict = maxa_verdict(response.status_code, _json(response))
        if verdict is not None:
            wrong.append({"MaXa": code, "unit": f"{name} ({origin})", "verdict": verdict, **evidence(response, 300)})
    if wrong:
        raise CheckFailure(
            f"{len(wrong)} of {len(codes)} {what} not refused properly: "
            + ", ".join(f"{w['MaXa']} {w['unit']} {w['verdict']}" for w in wrong[:4]),
            expected="a 4xx RFC 9457 problem naming MaXa in errors[].field", actual=wrong,
            reproduce=curl_line("POST", url, body=submission_payload(ctx, citizen, wrong[0]["MaXa"])))
    return (f"{len(codes)} of {len(codes)} {what} refused with a problem naming MaXa "
            f"({', '.join(f'HTTP {s} ×{n}' for s, n in sorted(statuses.items()))}): "
            + ", ".join(f"{code} {name} ({origin})" for code, name, origin in codes))


# -- SUB-07 ----------------------------------------------------------------------------------------
#: other provinces SUB-07 draws a current commune from
OTHER_PROVINCES = 6


def other_province_communes(province_code: str, how_many: int, rng: Any) -> list[tuple[str, str, str]]:
    """(code, name, province) of one current commune in each of ``how_many`` other provinces."""
    units = admin_units()
    others = [p for p in units.provinces() if p.code != province_code]
    picked = rng.sample(others, min(how_many, len(others)))
    return [(c.code, c.name, f"province {p.code} {p.name}")
            for p in sorted(picked, key=lambda p: p.code)
            for c in [rng.choice(units.communes(p.code))]]


@check("SUB-07", criterion="submission", severity="major",
       title="Current communes of other provinces are refused as MaXa with a 4xx naming MaXa",
       rule="Decision 19/2025/QĐ-TTg (communes of each of the 34 provinces); contracts/province-dossier.openapi.yaml "
            "POST /api/v1/dossiers 422 (MaXa a current commune of this province); RFC 9457 §3",
       requires=("sso", "submission"), detects=("accepts-other-province-communes",))
def other_province_communes_refused(ctx: CheckContext) -> str:
    """Submit with MaXa = a current commune code of each of 6 other provinces (seeded): each is a real, valid
    commune of the country but not of this province, and must be refused with a 4xx problem naming MaXa."""
    codes = other_province_communes(ctx.target.province_code, OTHER_PROVINCES, ctx.rng("SUB-07"))
    return _refuse_maxa(ctx, "SUB-07", codes, "current communes of other provinces")


# -- SUB-08 ----------------------------------------------------------------------------------------
DOSSIER_CONTRACT = "province-dossier"
#: a procedure with a fee, so starting a payment of another's dossier would succeed if the owner is not checked
OWNED_PROCEDURE = "1.004222"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def citizen_operations(openapi: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(operations on one dossier, list operations) of the contract that a citizen session calls: those with
    the ``citizen`` security scheme whose path takes {MaHoSo}, and the GETs of a collection without it."""
    on_one: list[dict[str, Any]] = []
    listing: list[dict[str, Any]] = []
    for path, item in (openapi.get("paths") or {}).items():
        for method in HTTP_METHODS:
            op = item.get(method) if isinstance(item, dict) else None
            if not isinstance(op, dict) or not any("citizen" in r for r in op.get("security") or []):
                continue
            entry = {"method": method.upper(), "path": path, "id": op.get("operationId", f"{method} {path}"),
                     "refused": _refusal_statuses(op), "body": _body_ref(op)}
            if "{MaHoSo}" in path:
                on_one.append(entry)
            elif method == "get" and "{" not in path and _lists_items(op):
                listing.append(entry)
    return on_one, listing


def _lists_items(op: dict[str, Any]) -> bool:
    """Whether the operation's 200 answer is a page of items (an object schema with an ``items`` property)."""
    content = (((op.get("responses") or {}).get("200") or {}).get("content") or {}).get("application/json") or {}
    ref = (content.get("schema") or {}).get("$ref")
    if not isinstance(ref, str):
        return False
    return "items" in (default_registry().schema(ref.removeprefix("schemas/")).get("properties") or {})


def _refusal_statuses(op: dict[str, Any]) -> tuple[int, ...]:
    """The statuses the operation documents for 'not the caller's' (403, 404), or both when it documents none."""
    documented = tuple(int(c) for c in ("403", "404") if c in (op.get("responses") or {}))
    return documented or (403, 404)


def _body_ref(op: dict[str, Any]) -> str | None:
    schema = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get("schema")
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref.removeprefix("schemas/") if isinstance(ref, str) else None


def minimal_instance(ref: str, registry: Any = None, depth: int = 0) -> Any:
    """The smallest instance of the contract schema at ``ref`` (required properties only, minimum lengths and
    counts, first enum value), so a request is refused for who sends it, not for its body."""
    registry = registry or default_registry()
    filename = ref.partition("#")[0]
    schema = registry.schema(ref)
    return _minimal(schema, filename, registry, depth)


def _minimal(schema: Any, filename: str, registry: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        target = str(schema["$ref"])
        full = (filename + target) if target.startswith("#") else target
        return minimal_instance(full, registry, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _minimal(props.get(name, {}), filename, registry, depth + 1)
                for name in schema.get("required") or []}
    if kind == "array":
        item = _minimal(schema.get("items", {}), filename, registry, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "string":
        return "haicap" + "x" * max(0, int(schema.get("minLength", 1)) - 6)
    return None


def request_body(ref: str | None) -> Any:
    """A valid body for an operation (its request schema's minimal instance), or None when it takes none."""
    if ref is None:
        return None
    body = minimal_instance(ref)
    return body if default_registry().validator(ref).is_valid(body) else {}


def bola_verdict(status: int, refused: tuple[int, ...]) -> str | None:
    """What a province did when a citizen called an operation on another citizen's dossier; None when it
    refused as the contract documents (``refused``: 403/404)."""
    expected = " or ".join(str(s) for s in refused)
    if status in refused:
        return None
    if status >= 500:
        return f"server error (HTTP {status}; expected {expected})"
    if 200 <= status < 300:
        return f"served to another citizen (HTTP {status}; expected {expected})"
    if status == 409:
        return f"answered HTTP 409 (the dossier's state) before checking its owner (expected {expected})"
    return f"answered HTTP {status} (expected {expected})"


def _owner_dossier(ctx: CheckContext, session: CitizenSession, citizen: dict[str, Any]) -> dict[str, Any]:
    payload = scenario_data(ctx).submission(OWNED_PROCEDURE, None, citizen)
    response = ctx.province.submit(session, payload, name="submit (SUB-08 owner)")
    return _expect_201(ctx, response, payload, "SUB-08: the owner's submission")


def _probe_other(ctx: CheckContext, op: dict[str, Any], intruder: CitizenSession, owner: CitizenSession,
                 dossier: dict[str, Any]) -> dict[str, Any] | None:
    """The intruder calls ``op`` on the owner's dossier; a finding (or None) after the owner reads it again."""
    ma_ho_so = dossier["MaHoSo"]
    path = op["path"].replace("{MaHoSo}", ma_ho_so)
    body = request_body(op["body"])
    before = ctx.province.dossier(owner, ma_ho_so)
    response = ctx.province.port.request(op["method"], path, json=body, headers=intruder.headers(),
                                         name=f"{op['id']} (another citizen's)")
    verdict = bola_verdict(response.status_code, op["refused"])
    after = ctx.province.dossier(owner, ma_ho_so)
    changed = op["method"] != "GET" and _json(after) != _json(before)
    if verdict is None and not changed:
        return None
    return {"operation": f"{op['method']} {op['path']} ({op['id']})", "MaHoSo": ma_ho_so,
            "verdict": verdict or f"refused with HTTP {response.status_code} but the dossier changed",
            "dossier_changed": changed, **evidence(response, 300),
            "reproduce": curl_line(op["method"], ctx.target.province_url + path, body=body,
                                   auth="<session token of another citizen>")}


@check("SUB-08", criterion="submission", severity="critical",
       title="A citizen can neither read, list, supplement, withdraw nor pay another citizen's dossier",
       rule="OWASP API Security Top 10 2023 API1 (Broken Object Level Authorization); "
            "contracts/province-dossier.openapi.yaml: every citizen operation on {MaHoSo} answers 404 NotFound "
            "'no such dossier (or not the caller's)'; the list holds the signed-in citizen's dossiers only",
       requires=("sso", "submission"), detects=("reads-any-dossier", "acts-on-any-dossier"))
def others_dossiers_out_of_reach(ctx: CheckContext) -> str:
    """Citizen A files one dossier (with a fee) per citizen operation of the contract that takes a MaHoSo;
    citizen B calls each operation on A's dossier with a valid body: each answered as the contract documents
    for 'not the caller's' (403/404, never 2xx, 409 or 5xx), and A's dossier unchanged; B's list never shows
    A's dossiers, while A's list does."""
    on_one, listing = citizen_operations(default_registry().openapi(DOSSIER_CONTRACT))
    ctx.require_evidence(len(on_one), 1, "citizen operations on a MaHoSo in contracts/province-dossier.openapi.yaml")
    owner_citizen, owner = citizen_session(ctx, "SUB-08")
    _, intruder = citizen_session(ctx, "SUB-08")
    dossiers = [_owner_dossier(ctx, owner, owner_citizen) for _ in on_one]
    owned = {d["MaHoSo"] for d in dossiers}
    unreadable = sorted(m for m in owned if ctx.province.dossier(owner, m).status_code != 200)
    ctx.expect(not unreadable, f"{len(unreadable)} of {len(owned)} dossiers just filed cannot be read by their own "
               "applicant (the must-accept side of the rule: the owner is served, others are not)",
               expected="200 for the owner's GET by MaHoSo", actual={"not readable by the owner": unreadable},
               reproduce=curl_line("GET", f"{ctx.target.province_url}{SUBMIT_PATH}/{next(iter(unreadable), '')}"))
    findings = [f for op, dossier in zip(on_one, dossiers, strict=True)
                if (f := _probe_other(ctx, op, intruder, owner, dossier)) is not None]
    listed = _listing_findings(ctx, listing, owner, intruder, owned)
    findings += listed["findings"]
    if findings:
        raise CheckFailure(
            f"{len(findings)} of {len(on_one) + len(listing)} operations let a citizen reach another's dossier: "
            + "; ".join(f"{f['operation']} {f['verdict']}" for f in findings[:5]),
            expected="404 (or the 403 an operation documents) for another citizen's MaHoSo; the dossier "
                     "unchanged; another citizen's dossiers absent from the list",
            actual=findings, reproduce=findings[0].get("reproduce"))
    documented = sorted({"/".join(map(str, op["refused"])) for op in on_one})
    return (f"citizen B was refused on all {len(on_one)} operations on citizen A's dossiers "
            f"({', '.join(op['id'] for op in on_one)}; HTTP {', '.join(documented)} as documented); A's "
            f"{len(owned)} dossiers unchanged; {listed['summary']}")


def _listing_findings(ctx: CheckContext, listing: list[dict[str, Any]], owner: CitizenSession,
                      intruder: CitizenSession, owned: set[str]) -> dict[str, Any]:
    """B's lists must hold none of A's dossiers, A's list all of them (else the probe proves nothing)."""
    findings: list[dict[str, Any]] = []
    seen = []
    for op in listing:
        mine = ctx.province.port.request("GET", op["path"], params={"limit": "200"}, headers=owner.headers(),
                                         name=f"{op['id']} (owner)")
        theirs = ctx.province.port.request("GET", op["path"], params={"limit": "200"}, headers=intruder.headers(),
                                           name=f"{op['id']} (another citizen)")
        own_codes, other_codes = _codes(mine), _codes(theirs)
        missing = sorted(owned - own_codes)
        ctx.expect(not missing, f"{op['id']} of the applicant lacks {len(missing)} of the {len(owned)} dossiers they "
                   "just filed (the must-accept side: the owner's list holds them)",
                   expected=f"all {len(owned)} in the owner's list", actual={"missing": missing, **evidence(mine, 300)},
                   reproduce=curl_line("GET", f"{ctx.target.province_url}{op['path']}?limit=200"))
        leaked = sorted(owned & other_codes)
        if theirs.status_code >= 500 or leaked:
            findings.append({"operation": f"GET {op['path']} ({op['id']})",
                             "verdict": f"lists {len(leaked)} dossier(s) of another citizen" if leaked
                             else f"server error (HTTP {theirs.status_code})",
                             "leaked": leaked, "status": theirs.status_code,
                             "reproduce": curl_line("GET", f"{ctx.target.province_url}{op['path']}?limit=200",
                                                    auth="<session token of another citizen>")})
        seen.append(f"{op['id']}: A sees {len(own_codes & owned)} of A's {len(owned)}, B sees 0")
    return {"findings": findings, "summary": "; ".join(seen) or "no list operation in the contract"}


def _codes(response: ResponseLike) -> set[str]:
    body = _json(response)
    items = body.get("items") if isinstance(body, dict) else None
    return {str(i.get("MaHoSo")) for i in items or [] if isinstance(i, dict)}
