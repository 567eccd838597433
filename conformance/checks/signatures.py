"""Dossier results carry a valid specialised digital signature (criterion signatures, SIG-…).

Officers sign results with certificates of the Government Cipher Committee's specialised CA (Law on Electronic
Transactions 2023 art. 22; Decree 130/2018/NĐ-CP, replaced by Decree 23/2025/NĐ-CP; contracts/rules/signatures.md).
A birth-registration journey is walked to its result; each result document (``DanhSachGiayToKetQua``,
``TepKetQuaKySo``: XML with an enveloped XML-DSig/XAdES signature, ETSI EN 319 132, or PDF with PAdES, ETSI EN
319 142) read from the province's dossier API, and the copy synced to the national portal, is verified by
:mod:`haicap.signatures` against the profile's trust anchors and CRLs (``signature_trust_anchors``,
``signature_crls``; on the sandbox the counterpart's per-run test CA). Each check judges one family of findings,
so a report names the defect: SIG-01 signed at all, SIG-02 integrity, SIG-03 chain, SIG-04 time and revocation,
SIG-05 algorithms, SIG-06 agency.

Must-accept (proven in tests/test_signatures.py): SHA-256/384/512; RSA PKCS#1 v1.5, RSA-PSS and ECDSA; XAdES or
plain XML-DSig; a chain through an intermediate CA; a signature made before a later revocation; a PDF signed
again in a later incremental revision (an added signature is not a modification).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from haicap.conformance.context import CheckContext
from haicap.conformance.journeys import prepare_journey, scenario_data
from haicap.conformance.registry import CheckError, CheckSkipped, check
from haicap.signatures import Finding, Kind, Trust, Verification, decode_document, verify_document

__all__ = ["Observed", "Result", "judge", "load_trust"]

JOURNEY = "birth-registration"
RULE = "Law on Electronic Transactions 2023 art. 22; Decree 23/2025/NĐ-CP; contracts/rules/signatures.md"
_SHOWN = 4


@dataclass
class Result:
    """One result document as one side holds it, and its verification."""

    where: str  # "province" or "national ledger"
    ma_ho_so: str
    name: str
    verification: Verification

    def describe(self) -> str:
        return f"{self.ma_ho_so} {self.name} ({self.where}, {self.verification.format})"


@dataclass
class Observed:
    results: list[Result] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    #: completed dossiers whose province view has no result document
    without_results: list[str] = field(default_factory=list)

    def signed(self) -> list[Result]:
        return [r for r in self.results if not r.verification.kinds() & {Kind.UNSIGNED, Kind.MALFORMED}]


def _fetch(source: str, ctx: CheckContext) -> bytes:
    if "://" in source:
        import httpx

        try:
            response = httpx.get(source, timeout=10.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise CheckError(f"cannot fetch the revocation or trust source {source}: {exc}") from None
        return response.content
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CheckError(f"cannot read {source}: {exc.strerror}") from None


def load_trust(ctx: CheckContext) -> Trust:
    """The profile's anchors and CRLs, fetched now (a CRL is read at the start of the run, RFC 5280 §6.3)."""
    anchors = [_fetch(s, ctx) for s in ctx.target.signature_trust_anchors]
    crls = [_fetch(s, ctx) for s in ctx.target.signature_crls]
    try:
        return Trust.load(anchors, crls)
    except ValueError as exc:
        raise CheckError(f"the profile's signature sources: {exc}") from None


def _items(doc: Any) -> list[dict[str, Any]]:
    items = doc.get("DanhSachGiayToKetQua") if isinstance(doc, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _verify_items(items: Iterable[dict[str, Any]], where: str, ma: str, trust: Trust, at: datetime) -> list[Result]:
    out = []
    for index, item in enumerate(items):
        name = str(item.get("GiayToId") or item.get("TenGiayTo") or f"#{index + 1}")
        signed = item.get("TepKetQuaKySo")
        if not isinstance(signed, dict):
            verdict = Verification("none", (Finding(Kind.UNSIGNED, "the result carries no signed document "
                                                                   "(TepKetQuaKySo)"),))
        else:
            data = decode_document(signed.get("NoiDung"))
            verdict = (Verification("unknown", (data,)) if isinstance(data, Finding)
                       else verify_document(data, trust, at))
        out.append(Result(where, ma, name, verdict))
    return out


def _national_copy(ctx: CheckContext, ma: str) -> dict[str, Any] | None:
    """The latest item the national ledger holds with results, waiting up to the sync SLA."""
    deadline = time.monotonic() + ctx.target.sync_sla_seconds
    while True:
        record = ctx.national.synced_dossier(ma) or {}
        item = record.get("item")
        if _items(item):
            return item  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _observe(ctx: CheckContext, journey: Any) -> Observed:
    trust = load_trust(ctx)
    run = journey.run(check=False)
    if not run.ma_ho_so or not run.passed:
        raise CheckError(f"journey {JOURNEY} did not walk a dossier to its result (its own checks say why)")
    ma = run.ma_ho_so
    at = datetime.now(UTC)
    view = ctx.province.officer_dossier(ma) if "officer_api" in ctx.target.capabilities else None
    if view is None or view.status_code != 200:
        view = ctx.province.dossier(run.state.get("session"), ma)
    doc = view.json() if view.status_code == 200 else {}
    seen = Observed(completed=[ma])
    province_items = _items(doc)
    if not province_items:
        seen.without_results.append(ma)
    seen.results += _verify_items(province_items, "province", ma, trust, at)
    if "sync" in ctx.target.capabilities:
        national = _national_copy(ctx, ma)
        seen.results += _verify_items(_items(national), "national ledger", ma, trust, at)
    return seen


def _from_sync_walk(ctx: CheckContext) -> Observed | None:
    """The dossiers the sync checks walk (shared, so a full run walks them once): the completed ones' results as
    the province showed them after the walk and as the national ledger last recorded them."""
    from haicap.conformance.checks import sync

    walk = sync.shared_observation(ctx)
    trust = ctx.shared("signatures:trust", lambda: load_trust(ctx))
    at = datetime.now(UTC)
    seen = Observed()
    for dossier in walk.walked:
        history = {e.get("TrangThaiHoSo") for e in dossier.history}
        if "9" not in history:
            continue
        seen.completed.append(dossier.ma_ho_so)
        items = _items(dossier.province)
        if not items:
            seen.without_results.append(dossier.ma_ho_so)
        seen.results += _verify_items(items, "province", dossier.ma_ho_so, trust, at)
        seen.results += _verify_items(_items((dossier.record or {}).get("item")), "national ledger",
                                      dossier.ma_ho_so, trust, at)
    return seen if seen.completed else None


def _observed(ctx: CheckContext) -> Observed:
    """From the sync walk when the profile declares sync; otherwise one journey of our own."""
    if "sync" in ctx.target.capabilities:
        seen = ctx.shared("signatures:from-sync-walk", lambda: _from_sync_walk(ctx))
        if seen is not None:
            return seen
    scenario_data(ctx)  # resolve shared data outside the shared factory (its lock is not reentrant)
    journey = prepare_journey(ctx, JOURNEY)
    return ctx.shared("signatures:observed", lambda: _observe(ctx, journey))


def judge(ctx: CheckContext, kinds: frozenset[Kind], what: str) -> str:
    """Fail on the results whose verification has a finding of ``kinds``; the summary otherwise."""
    seen = _observed(ctx)
    ctx.require_evidence(len(seen.results), 1, f"result documents of the completed dossier(s) "
                                               f"{', '.join(seen.completed)}",
                         reproduce=f"GET /officer/dossiers/{seen.completed[0]} (DanhSachGiayToKetQua)")
    signed = seen.signed()
    if not signed:
        raise CheckSkipped(f"could not judge {what}: none of the {len(seen.results)} result documents is signed "
                           "(SIG-01's verdict)")
    unsupported = [r for r in signed if Kind.UNSUPPORTED in r.verification.kinds()]
    signed = [r for r in signed if r not in unsupported]
    if not signed:
        raise CheckError(f"could not judge {what}: haicap's verifier cannot check the algorithm of any of the "
                         f"{len(unsupported)} signed documents ({unsupported[0].verification.summary()})")
    bad = [(r, [f for f in r.verification.findings if f.kind in kinds]) for r in signed]
    bad = [(r, found) for r, found in bad if found]
    ctx.expect(
        not bad,
        f"{len(bad)} of {len(signed)} signed result documents: "
        + "; ".join(f"{r.describe()}: {' / '.join(f.reason for f in found)}" for r, found in bad[:_SHOWN]),
        expected=what,
        actual=[{"document": r.describe(), "signer": r.verification.signer,
                 "findings": [str(f) for f in found]} for r, found in bad[:_SHOWN]],
        reproduce=f"GET /officer/dossiers/{seen.completed[0]} → DanhSachGiayToKetQua[].TepKetQuaKySo",
    )
    first = signed[0].verification
    return (f"{len(signed)} signed result documents ({', '.join(sorted({r.verification.format for r in signed}))}; "
            f"province and national copies): {what}; e.g. {first.summary()}"
            + (f"; {len(unsupported)} not verifiable by haicap (algorithm)" if unsupported else ""))


# -- the checks ------------------------------------------------------------------------------------
@check("SIG-01", criterion="signatures", severity="critical",
       title="Every result document carries a signature, in a readable signed XML or PDF",
       rule=f"{RULE}; contracts/schemas/signatures.schema.json SignedDocument; ETSI EN 319 132-1 §4; "
            "ETSI EN 319 142-1 §5",
       requires=("signatures", "back_office"), detects=("result-unsigned",))
def results_signed(ctx: CheckContext) -> str:
    """A completed dossier has result documents (``DanhSachGiayToKetQua``), each with ``TepKetQuaKySo`` whose
    ``NoiDung`` is base64 of a well-formed XML with a ds:Signature or a PDF with a signed signature field, at the
    province and in the copy synced to the national portal. Rejected: no result documents, a result without
    TepKetQuaKySo, content that is not base64, neither XML nor PDF, malformed XML/PDF/CMS/certificate, no
    signature. Accepted: XAdES or plain enveloped XML-DSig; PAdES (ETSI.CAdES.detached) or adbe.pkcs7.detached."""
    seen = _observed(ctx)
    ctx.require_evidence(len(seen.completed), 1, "dossiers walked to their result")
    ctx.expect(not seen.without_results,
               f"completed dossier(s) {', '.join(seen.without_results)} carry no result document",
               expected="DanhSachGiayToKetQua with the signed result (TepKetQuaKySo)", actual="no DanhSachGiayToKetQua",
               reproduce=f"GET /officer/dossiers/{seen.without_results[0] if seen.without_results else ''}")
    bad = [r for r in seen.results if r.verification.kinds() & {Kind.UNSIGNED, Kind.MALFORMED}]
    ctx.expect(not bad, f"{len(bad)} of {len(seen.results)} result documents are not signed documents: "
               + "; ".join(f"{r.describe()}: {r.verification.summary()}" for r in bad[:_SHOWN]),
               expected="each result a signed XML (ds:Signature) or PDF (signature field)",
               actual=[{"document": r.describe(), "findings": [str(f) for f in r.verification.findings]}
                       for r in bad[:_SHOWN]],
               reproduce=f"GET /officer/dossiers/{seen.completed[0]} → DanhSachGiayToKetQua[].TepKetQuaKySo")
    return (f"{len(seen.results)} result documents of {', '.join(seen.completed)} (province and national copies), "
            f"each a signed {'/'.join(sorted({r.verification.format for r in seen.results}))}")


@check("SIG-02", criterion="signatures", severity="critical",
       title="The signature verifies over the whole content; nothing changed after signing",
       rule=f"{RULE}; W3C XML Signature 1.1 §3.2 (reference and signature validation); ETSI EN 319 132-1; "
            "ETSI EN 319 142-1 §5.4 (incremental updates); ISO 32000-2 §12.8",
       requires=("signatures", "back_office"), detects=("result-modified-after-signing",))
def signature_verifies(ctx: CheckContext) -> str:
    """Each signed result verifies: XML — every reference digest and the SignatureValue (signxml), the
    reference covering the whole document (an enveloped URI="" reference, not a fragment: signature wrapping),
    XAdES SigningCertificate matching the signer; PDF — the message digest over the ByteRange and the CMS
    signature (pyHanko), the signature covering the whole file or later revisions adding only signatures, time
    stamps or form fields. Rejected: content edited after signing (XML text, a PDF incremental update of the
    page), a wrong SignatureValue, a fragment-only reference."""
    return judge(ctx, frozenset({Kind.BAD_SIGNATURE, Kind.MODIFIED}),
                 "each signature verifies over the whole document")


@check("SIG-03", criterion="signatures", severity="critical",
       title="The signer's certificate chains to a trust anchor of the specialised CA",
       rule=f"{RULE}; RFC 5280 §6.1 (path validation), §4.2.1.9 basicConstraints, §4.2.1.3 keyUsage",
       requires=("signatures", "back_office"), detects=("result-signer-self-signed",))
def chain_trusted(ctx: CheckContext) -> str:
    """The signer's certificate is issued, name and signature, by a chain of CAs (basicConstraints cA,
    keyCertSign) included in the signature and ending at one of the profile's trust anchors; the signer's
    keyUsage (when present) has digitalSignature or nonRepudiation. Rejected: self-signed, issued by an unknown
    CA, a missing intermediate, an end-entity acting as CA. Accepted: a chain through an intermediate CA."""
    return judge(ctx, frozenset({Kind.UNTRUSTED, Kind.KEY_USAGE}),
                 "each signer chains to a trust anchor of the specialised CA")


@check("SIG-04", criterion="signatures", severity="critical",
       title="Signed within the certificate's validity and before any revocation",
       rule=f"{RULE}; RFC 5280 §6.1.3 (validity), §6.3 and §5.3.2 (CRL, revocation date)",
       requires=("signatures", "back_office"),
       detects=("result-signer-expired", "result-signer-revoked", "result-signed-before-not-before"))
def signed_in_validity(ctx: CheckContext) -> str:
    """At the signing time (XAdES SigningTime, the CMS signing-time; without one, when haicap read the result;
    a claimed time more than 5 minutes after that is itself a finding), every certificate of the chain is within
    notBefore–notAfter, and no CRL of its issuer (signed by it) lists it revoked at or before that time; a CA of
    the chain with no CRL among the revocation sources is a finding (status unknown). Accepted: a certificate
    revoked after the signature was made."""
    return judge(ctx, frozenset({Kind.VALIDITY, Kind.REVOKED, Kind.REVOCATION_UNKNOWN, Kind.SIGNING_TIME}),
                 "each signature made within its certificates' validity and before any revocation")


@check("SIG-05", criterion="signatures", severity="major",
       title="Digest and signature algorithms are SHA-256 or stronger",
       rule=f"{RULE}; ETSI TS 119 312 (cryptographic suites); RFC 6194 (SHA-1 deprecated)",
       requires=("signatures", "back_office"), detects=("result-signed-sha1",))
def strong_algorithms(ctx: CheckContext) -> str:
    """Every DigestMethod and the SignatureMethod (XML), the CMS digest and signature algorithm (PDF), and the
    signature of each non-anchor certificate use SHA-256 or stronger. Rejected: SHA-1, MD5. Accepted: SHA-256,
    SHA-384, SHA-512 with RSA PKCS#1 v1.5, RSA-PSS or ECDSA."""
    return judge(ctx, frozenset({Kind.WEAK_ALGORITHM}), "SHA-256 or stronger throughout")


@check("SIG-06", criterion="signatures", severity="major",
       title="The signing certificate names a current agency, not a dissolved district-level one",
       rule=f"{RULE}; Law on Organisation of Local Government 2025 (two-level local government, no district level "
            "from 1 July 2025)",
       requires=("signatures", "back_office"), detects=("result-signer-dissolved-agency",))
def current_agency(ctx: CheckContext) -> str:
    """The signer certificate's O, OU and CN name no district, urban district, town or district-level city of
    the 63-province list (matched without diacritics as certificates spell them: ``UBND huyen Lam Thao``)."""
    return judge(ctx, frozenset({Kind.DISSOLVED_AGENCY}), "each signer names a current agency")


# -- SIG-07: edXML packages over the document axis ---------------------------------------------------
#: the verifier's finding kinds SIG-07 fails on: every kind but "haicap cannot check this algorithm"
EDXML_FAILING = frozenset(Kind) - {Kind.UNSUPPORTED}
EDXML_RULE = ("QCVN 102:2016/BTTTT (edXML DigitalSignature); W3C XML Signature 1.1 §3.2; ETSI EN 319 132-1 "
              f"(XAdES); {RULE}")


def edxml_findings(document_id: str, verification: Verification) -> list[str]:
    """One line per failing finding of a package's verification: ``DocumentId: kind: reason``."""
    return [f"{document_id}: {f}" for f in verification.findings if f.kind in EDXML_FAILING]


def _sent_packages(ctx: CheckContext) -> list[tuple[str, bytes | Finding, datetime]]:
    """The packages the province sent for the axis checks (shared: sent once), as the axis received them."""
    from haicap.conformance.checks import document_axis

    packages = []
    for plan in document_axis._sends(ctx):
        document_id = str(plan["answer"].get("DocumentId"))
        record = document_axis._arrived(ctx, document_id)
        if record is None:
            continue
        full = document_axis._axis(ctx).sent(document_id) or {}
        at = datetime.fromtimestamp(int(record.get("at") or time.time() * 1000) / 1000, UTC)
        packages.append((document_id, decode_document(full.get("package")), at))
    return packages


@check("SIG-07", criterion="signatures", severity="critical",
       title="Every edXML package the province sends carries a valid signature over its content",
       rule=f"{EDXML_RULE}; contracts/schemas/axis.schema.json x-edxml.signature",
       requires=("signatures", "document_axis", "officer_api"),
       detects=("edxml-unsigned", "edxml-modified-after-signing"))
def edxml_signed(ctx: CheckContext) -> str:
    """The officer sends documents over the axis (the ones the AXIS checks send); each package as the axis
    received it carries an enveloped XML-DSig/XAdES signature that verifies over the whole package or its
    edXMLEnvelope (not a fragment), chains to the profile's trust anchors, was made within its certificates'
    validity and before any revocation (CRLs), uses SHA-256 or stronger, and names a current agency. Every
    finding kind of :mod:`haicap.signatures` is a failure naming the DocumentId; a package whose algorithm
    haicap cannot verify (RSA-PSS in XML) is neither."""
    from haicap.axis_contract import axis_contract

    contract = axis_contract()
    trust = ctx.shared("signatures:trust", lambda: load_trust(ctx))
    envelope = f"{{{contract.namespace}}}{contract.paths.get('envelope', 'edXMLEnvelope')}"
    packages = _sent_packages(ctx)
    reproduce = (f"POST {ctx.target.province_url}/officer/axis/documents {{\"Subject\": …}}; "
                 "GET /_ledger/axis/sent?DocumentId=… (control token) → package")
    ctx.require_evidence(len(packages), 1, "edXML packages the province sent, at the axis", reproduce=reproduce)
    findings: list[str] = []
    verdicts: list[Verification] = []
    for document_id, data, at in packages:
        verdict = (Verification("unknown", (data,)) if isinstance(data, Finding)
                   else verify_document(data, trust, at, whole_document=False, parts=(envelope,)))
        verdicts.append(verdict)
        findings += edxml_findings(document_id, verdict)
    ctx.expect(not findings, f"{len(findings)} signature findings on {len(packages)} sent edXML packages: "
               + "; ".join(findings[:_SHOWN]) + (f"; … (+{len(findings) - _SHOWN} more)"
                                                 if len(findings) > _SHOWN else ""),
               expected="each package signed (ds:Signature in edXMLHeader), verifying over the package or its "
                        "envelope, chained to a trust anchor, in validity, not revoked, SHA-256+, current agency",
               actual=findings[:_SHOWN], reproduce=reproduce)
    checked = [v for v in verdicts if v.ok]
    if not checked:
        raise CheckError(f"could not judge: haicap's verifier cannot check the algorithm of any of the "
                         f"{len(packages)} sent packages ({verdicts[0].summary()})")
    return (f"{len(packages)} sent edXML packages ({', '.join(d for d, _, _ in packages)}) signed and valid; "
            f"e.g. {checked[0].summary()}")
