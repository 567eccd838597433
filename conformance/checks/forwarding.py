"""Dossiers forwarded by the national portal: received, acknowledged, processed and synced back.

A citizen may file on the National Public Service Portal; the portal forwards the dossier to the province
(``POST /national/forwarded-dossiers`` with the national credential, contracts/province-dossier.openapi.yaml
``receiveForwardedDossier``) under the MaHoSo it assigned. The national readiness checklist counts "dossiers
forwarded from NPSP received and processed": the province must acknowledge, store, and from then on synchronise
the dossier's states under that same MaHoSo; and since the endpoint creates dossiers, it must refuse anyone who
does not present the credential the portal issued to *this* province (none, a wrong one, another province's).
"""

from __future__ import annotations

import time
from typing import Any

from haicap.conformance.checks.submission import (
    curl_line,
    evidence,
    legacy_only_codes,
    maxa_verdict,
    other_province_communes,
    scenario_data,
    today_vn,
)
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError, CheckFailure, check
from haicap.contract_registry import default_registry
from haicap.data_generators.agencies import NATIONAL_PORTAL_AGENCY

FORWARD_PATH = "/national/forwarded-dossiers"


def _statuses(record: dict[str, Any] | None) -> list[str]:
    return [str(h.get("TrangThaiHoSo")) for h in (record or {}).get("history") or []]


def _officer_api(ctx: CheckContext) -> bool:
    return "officer_api" in ctx.target.capabilities and bool(ctx.target.officer_token)


def _expect_synced(ctx: CheckContext, ma_ho_so: str, status: str, after: str) -> float:
    """Wait (bounded by the SLA) for ``status`` of ``ma_ho_so`` in the national ledger; seconds it took."""
    sla = ctx.target.sync_sla_seconds
    started = time.monotonic()
    record = ctx.national.wait_for_status(ma_ho_so, status, within=sla)
    took = time.monotonic() - started
    ctx.expect(status in _statuses(record),
               f"state {status} of forwarded dossier {ma_ho_so} did not reach the national ledger within {sla:g} s "
               f"({after})",
               expected=f"DongBoHoSoMC item with MaHoSo {ma_ho_so}, TrangThaiHoSo {status}, within {sla:g} s",
               actual={"statuses synced": _statuses(record)} if record else "nothing synced for this MaHoSo",
               reproduce=f"POST <national>/_control/forward, then GET <national>/_ledger/sync/dossiers/{ma_ho_so}")
    return took


@check("FWD-01", criterion="forwarding", severity="critical",
       title="A dossier forwarded by the national portal is acknowledged, stored and its states synced back",
       rule="contracts/province-dossier.openapi.yaml POST /national/forwarded-dossiers → 201 ForwardAck {MaHoSo, "
            "TrangThaiHoSo 1, acknowledged}; national readiness checklist of 28 June 2025: 'dossiers forwarded from "
            "NPSP received and processed'",
       requires=("forwarding", "sync"), detects=("ignores-forwarded-dossiers",))
def forwarded_dossier_processed(ctx: CheckContext) -> str:
    """The counterpart forwards one dossier: the province answers 201 ``acknowledged: true`` with the same
    MaHoSo; the officer API returns it; its state 1 reaches the national ledger within the SLA; after an
    officer receives it, state 2 does too."""
    sent = ctx.national.forward_dossier()
    ma_ho_so = sent.get("MaHoSo") or (sent.get("dossier") or {}).get("MaHoSo")
    answer = sent.get("answer")
    repro = "POST <national>/_control/forward (the counterpart forwards one dossier with its credential)"
    held = sent.get("already_held") or []
    ctx.expect(sent.get("status_code") == 201 and isinstance(answer, dict),
               f"the province did not accept forwarded dossier {ma_ho_so}"
               + (f" (after answering 200 'already held' for {len(held)} new code(s) of the national portal)"
                  if held else ""),
               expected="201 {MaHoSo, TrangThaiHoSo '1', acknowledged: true}",
               actual={"status": sent.get("status_code"), "body": answer, "error": sent.get("error"),
                       **({"codes_answered_as_already_held": held} if held else {})},
               reproduce=repro)
    ack = {"MaHoSo": ma_ho_so, "TrangThaiHoSo": "1", "acknowledged": True}
    wrong = {k: answer.get(k) for k, v in ack.items() if answer.get(k) != v}
    ctx.expect(not wrong, f"the acknowledgement of {ma_ho_so} is wrong in {', '.join(wrong)}",
               expected=ack, actual=answer, reproduce=repro)
    officer = _officer_api(ctx)
    if officer:
        stored = ctx.province.officer_dossier(ma_ho_so)
        ctx.expect(stored.status_code == 200,
                   f"forwarded dossier {ma_ho_so} was acknowledged but is not stored (officer GET)",
                   expected=f"GET /officer/dossiers/{ma_ho_so} → 200", actual=evidence(stored),
                   reproduce=curl_line("GET", f"{ctx.target.province_url}/officer/dossiers/{ma_ho_so}",
                                       auth="<officer token>"))
    first = _expect_synced(ctx, ma_ho_so, "1", "after the acknowledgement")
    sla = ctx.target.sync_sla_seconds
    head = f"forwarded dossier {ma_ho_so} acknowledged (HTTP {sent.get('status_code')}, TrangThaiHoSo 1)"
    if "back_office" not in ctx.target.capabilities:
        return (f"{head}; state 1 in the national ledger (waited {first:.1f} s, SLA {sla:g} s); not processed "
                "further (no back office declared)")
    received = ctx.province.officer_action(ma_ho_so, "receive")
    ctx.expect(received.status_code == 200, f"an officer cannot receive forwarded dossier {ma_ho_so}",
               expected="200, state 2", actual=evidence(received),
               reproduce=curl_line("POST", f"{ctx.target.province_url}/officer/dossiers/{ma_ho_so}/actions",
                                   body={"action": "receive"}, auth="<officer token>"))
    second = _expect_synced(ctx, ma_ho_so, "2", "after the officer received it")
    stored_note = f", stored (officer GET → HTTP {stored.status_code})" if officer else ""
    return (f"{head}{stored_note}; in the national ledger: state 1 (waited "
            f"{first:.1f} s), state 2 after the officer's receive (waited {second:.1f} s), SLA {sla:g} s")


#: FWD-02's forwards without the national credential (RFC 6750 §3.1: missing, malformed or invalid token)
CREDENTIAL_CASES: tuple[tuple[str, dict[str, str]], ...] = (
    ("no Authorization header", {}),
    ("a wrong Bearer token", {"Authorization": "Bearer haicap-not-the-forward-token"}),
    ("a Bearer scheme without a token", {"Authorization": "Bearer"}),
)
#: codes tried for FWD-02's unsolicited dossier before giving up on finding one the province does not hold
UNSOLICITED_TRIES = 20


def _unsolicited_dossier(ctx: CheckContext) -> dict[str, Any]:
    """A well-formed ForwardedDossier for the province that the national side never sent: with the officer
    API, under a code the province does not hold yet (forwarded codes of earlier runs may be anywhere in the
    day's 9,999), so a 200 afterwards can only mean the refused forward created it."""
    rng = ctx.rng("FWD-02")
    record: dict[str, Any] = scenario_data(ctx).pool.dossier(rng.randrange(10_000), "forwarded")
    day = f"{today_vn():%y%m%d}"
    for _ in range(UNSOLICITED_TRIES):
        record["MaHoSo"] = f"{NATIONAL_PORTAL_AGENCY}-{day}-{rng.randrange(1, 10_000):04d}"
        if not _officer_api(ctx) or ctx.province.officer_dossier(record["MaHoSo"]).status_code == 404:
            return record
    raise CheckError(f"the province holds each of {UNSOLICITED_TRIES} national-portal codes tried for "
                     f"{day}: no free MaHoSo for an unsolicited dossier")


@check("FWD-02", criterion="forwarding", severity="critical",
       title="Forwarding without the national credential is refused with 401",
       rule="RFC 6750 §3.1 (missing or invalid bearer token → 401); contracts/province-dossier.openapi.yaml "
            "receiveForwardedDossier (security forward: Authorization: Bearer <forward token>; 401 Unauthorized)",
       requires=("forwarding",), detects=("unauthenticated-forwarding",))
def forwarding_requires_credential(ctx: CheckContext) -> str:
    """POST a well-formed forwarded dossier with no Authorization header, with a wrong Bearer token and with
    the Bearer scheme but no token: each answered 401, and the dossier is not created."""
    url = ctx.target.province_url + FORWARD_PATH
    body = _unsolicited_dossier(ctx)
    accepted: list[dict[str, Any]] = []
    answers: list[str] = []
    for label, headers in CREDENTIAL_CASES:
        response = ctx.province.port.request("POST", FORWARD_PATH, json=body, headers=headers,
                                             name="forward without credential")
        answers.append(f"{label} → HTTP {response.status_code}")
        verdict = credential_verdict(response.status_code, _forward_refusals())
        if verdict is not None:
            accepted.append({"credential": label, "MaHoSo": body["MaHoSo"], "verdict": verdict,
                             **evidence(response, 300)})
    ctx.require_evidence(len(answers), len(CREDENTIAL_CASES), "answers to forwards without the national credential")
    if accepted:
        first = accepted[0]
        raise CheckFailure(
            f"forwarding with {first['credential']} was {first['verdict']}"
            + (f" (and {len(accepted) - 1} more)" if len(accepted) > 1 else ""),
            expected="401 for a request without the national forward credential", actual=accepted,
            reproduce=curl_line("POST", url, body=body, auth=None))
    created = "not checked (no officer API declared)"
    if _officer_api(ctx):
        stored = ctx.province.officer_dossier(body["MaHoSo"])
        ctx.expect(stored.status_code == 404, f"a refused forward still created dossier {body['MaHoSo']}",
                   expected="404 (not created)", actual=evidence(stored))
        created = f"not created (officer GET → HTTP {stored.status_code})"
    return f"unsolicited dossier {body['MaHoSo']}: {', '.join(answers)}; {created}"


def credential_verdict(status: int | None, refused: tuple[int, ...] = (401,), error: str | None = None) -> str | None:
    """What a province did with a forward that carries a credential not issued to it; None when refused as the
    contract documents (``refused``: its 401, and 403 if documented)."""
    expected = " or ".join(str(s) for s in refused)
    if status is None:
        return f"no answer ({error or 'the connection failed'})"
    if status in refused:
        return None
    if 200 <= status < 300:
        return f"accepted (HTTP {status}; expected {expected})"
    if status >= 500:
        return f"server error (HTTP {status}; expected {expected})"
    return f"refused with HTTP {status} (expected {expected})"


def _forward_refusals() -> tuple[int, ...]:
    """The statuses the contract documents for a forward with a wrong credential: 401, and 403 if listed."""
    op = default_registry().openapi("province-dossier")["paths"][FORWARD_PATH]["post"]
    return tuple(int(c) for c in ("401", "403") if c in op.get("responses", {})) or (401,)


@check("FWD-03", criterion="forwarding", severity="critical",
       title="A forward carrying the credential the national portal issued to another province is refused",
       rule="RFC 6750 §3.1 (invalid_token → 401); contracts/province-dossier.openapi.yaml receiveForwardedDossier "
            "(security forward: the credential issued to this province; 401 Unauthorized); OWASP API2:2023",
       requires=("forwarding",), detects=("accepts-any-forward-token", "unauthenticated-forwarding"))
def other_province_token_refused(ctx: CheckContext) -> str:
    """The counterpart forwards a valid dossier for this province presenting the forward token the national
    portal issued to another province: answered as the contract documents (401), and not stored."""
    sent = ctx.national.forward_dossier(credential_of="other")
    status = sent.get("status_code")
    ma_ho_so = sent.get("MaHoSo") or (sent.get("dossier") or {}).get("MaHoSo")
    repro = ('POST <national>/_control/forward {"credential_of": "other"} (the counterpart forwards one dossier '
             "with the forward token of another province)")
    ctx.require_evidence(int(status is not None), 1, "answer to a forward with another province's token",
                         reproduce=repro)
    verdict = credential_verdict(status, _forward_refusals(), sent.get("error"))
    other = sent.get("credential_of", "another province")
    ctx.expect(verdict is None,
               f"a forward of {ma_ho_so} with the token of province {other} was {verdict}",
               expected="HTTP 401 (the token is not this province's)",
               actual={"status": status, "body": sent.get("answer"), "credential_of": other}, reproduce=repro)
    created = "not checked (no officer API declared)"
    if _officer_api(ctx):
        stored = ctx.province.officer_dossier(str(ma_ho_so))
        ctx.expect(stored.status_code == 404, f"a refused forward with province {other}'s token still created "
                                              f"dossier {ma_ho_so}",
                   expected="404 (not created)", actual=evidence(stored), reproduce=repro)
        created = f"not created (officer GET → HTTP {stored.status_code})"
    return (f"forward of {ma_ho_so} with the forward token of province {other}: refused with HTTP {status}; "
            f"{created}")


#: FWD-04 tries this many communes of other provinces and as many pre-merger wards of this one
FOREIGN_COMMUNES = 3


@check("FWD-04", criterion="forwarding", severity="major",
       title="A forwarded dossier whose MaXa is not a current commune of the province is refused naming MaXa",
       rule="Decision 19/2025/QĐ-TTg (communes of the 34 provinces); contracts/province-dossier.openapi.yaml "
            "receiveForwardedDossier 422 (Problem naming the field); RFC 9457 §3",
       requires=("forwarding",), detects=("accepts-other-province-communes", "pre-merger-commune-codes"))
def forwarded_commune_checked(ctx: CheckContext) -> str:
    """The counterpart forwards, with the right credential, valid dossiers whose MaXa is a current commune of
    another province (3, seeded) or a pre-merger ward code of this province (3): each refused with a 4xx
    problem naming MaXa, as a citizen's submission is (SUB-04, SUB-07)."""
    rng = ctx.rng("FWD-04")
    province = ctx.target.province_code
    codes = [*other_province_communes(province, FOREIGN_COMMUNES, rng),
             *[(code, name, "pre-merger ward") for code, name in legacy_only_codes(province, FOREIGN_COMMUNES, rng)]]
    answers = [(code, name, origin, ctx.national.forward_dossier(MaXa=code)) for code, name, origin in codes]
    answered = [a for a in answers if a[3].get("status_code") is not None]
    ctx.require_evidence(len(answered), len(codes), "answers to forwarded dossiers in a foreign or old commune",
                         reproduce='POST <national>/_control/forward {"MaXa": "<code>"}')
    wrong = [{"MaXa": code, "unit": f"{name} ({origin})", "MaHoSo": sent.get("MaHoSo"),
              "verdict": verdict, "status": sent.get("status_code"), "body": sent.get("answer")}
             for code, name, origin, sent in answers
             if (verdict := maxa_verdict(int(sent["status_code"]), sent.get("answer"))) is not None]
    if wrong:
        raise CheckFailure(
            f"{len(wrong)} of {len(codes)} forwarded dossiers outside the province's current communes not refused "
            "properly: " + ", ".join(f"{w['MaXa']} {w['unit']} {w['verdict']}" for w in wrong[:4]),
            expected="a 4xx RFC 9457 problem naming MaXa in errors[].field", actual=wrong,
            reproduce=f'POST <national>/_control/forward {{"MaXa": "{wrong[0]["MaXa"]}"}}')
    return (f"{len(codes)} of {len(codes)} forwarded dossiers refused with a problem naming MaXa (HTTP "
            f"{', '.join(sorted({str(a[3]['status_code']) for a in answers}))}): "
            + ", ".join(f"{code} {name} ({origin})" for code, name, origin in codes))
