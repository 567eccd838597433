"""Verify the specialised digital signature of an XML or PDF document; every defect is a typed finding.

A province's results (and edXML documents) carry an officer's signature made with a certificate of the
Government Cipher Committee's specialised CA (Law on Electronic Transactions 2023 art. 22; Decree 130/2018/NĐ-CP
as replaced by Decree 23/2025/NĐ-CP). :func:`verify_document` takes the document's bytes, the trust anchors and
CRLs the profile names (:class:`Trust`) and the moment the document was observed, and returns a
:class:`Verification` whose findings say what is wrong: the signature does not verify over the content (XML-DSig
with ``signxml``, ETSI EN 319 132 XAdES; PAdES, ETSI EN 319 142, with ``pyHanko``), the content changed after
signing, the chain does not reach a trust anchor (RFC 5280 §6.1), the signature was made outside a certificate's
validity or after its revocation (RFC 5280 §6.3, CRLs), a digest or signature algorithm weaker than SHA-256,
a certificate naming a dissolved (pre-merger district-level) agency, or no signature at all.

Every ds:Signature of an XML document must verify (signxml alone verifies the first); a XAdES signature's
SigningCertificate and SigningCertificateV2 may both be present (signxml 5.2 refuses that), see
contracts/rules/signatures.md.

The document is untrusted: malformed XML, PDF or certificates become a ``malformed`` finding, never an exception.
The signing time is the one the signature claims (XAdES ``SigningTime``, the CMS signing-time attribute), bounded
by when it was observed; without a claimed time, the observation time.

Example::

    trust = Trust.load(anchors=[Path("root.pem").read_bytes()], crls=[Path("sub.crl").read_bytes()])
    result = verify_document(data, trust, at=datetime.now(UTC))
    result.ok, [f.kind for f in result.findings]
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from io import BytesIO
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

__all__ = [
    "Finding",
    "Kind",
    "Trust",
    "Verification",
    "ascii_fold",
    "dissolved_agency",
    "verify_document",
    "verify_pdf",
    "verify_xml",
]

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
#: a claimed signing time may lead the observation by this much (clock skew) before it is "in the future"
CLOCK_SKEW = timedelta(minutes=5)
#: a signature's own XAdES properties (not those of a countersignature nested in its unsigned properties)
_SIGNED_SIGNATURE_PROPERTIES = (f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties/"
                                f"{{{XADES}}}SignedSignatureProperties")
#: where XAdES B-LT producers put the certificates of the path (EN 319 132-1 §5.5.1, CertificateValues)
_UNSIGNED_SIGNATURE_PROPERTIES = (f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}UnsignedProperties/"
                                  f"{{{XADES}}}UnsignedSignatureProperties")
MAX_CHAIN = 8
_WEAK = re.compile(r"(sha1|md5|md2|sha-1)(?![0-9])", re.IGNORECASE)
_WEAK_HASHES = (hashes.SHA1, hashes.MD5)
# pyHanko logs its own trust verdict (an expired or untrusted signer) as an error with a traceback; haicap judges
# the chain itself (certificate_findings) and reports it as a finding, so that log is noise in a certify run.
for _logger in ("pyhanko.sign.validation.generic_cms", "pyhanko.sign.diff_analysis"):
    logging.getLogger(_logger).setLevel(logging.CRITICAL)


class Kind(StrEnum):
    """What is wrong with a signed document (one finding each)."""

    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    MODIFIED = "modified-after-signing"
    UNTRUSTED = "untrusted-chain"
    VALIDITY = "outside-validity"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"
    WEAK_ALGORITHM = "weak-algorithm"
    KEY_USAGE = "key-usage"
    DISSOLVED_AGENCY = "dissolved-agency"
    SIGNING_TIME = "signing-time"
    #: not a defect of the document: haicap's verifier cannot check this algorithm (signxml has no RSA-PSS for XML)
    UNSUPPORTED = "unsupported-by-verifier"


@dataclass(frozen=True)
class Finding:
    kind: Kind
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


@dataclass(frozen=True)
class Verification:
    """The verdict on one document: its format, who signed when, with what, and the findings (none: valid)."""

    format: str
    findings: tuple[Finding, ...] = ()
    signer: str | None = None
    signing_time: datetime | None = None
    algorithms: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    def kinds(self) -> frozenset[Kind]:
        return frozenset(f.kind for f in self.findings)

    def summary(self) -> str:
        if self.ok:
            return f"{self.format} signed by {self.signer} at {self.signing_time:%Y-%m-%dT%H:%M:%SZ}" \
                if self.signing_time else f"{self.format} signed by {self.signer}"
        return "; ".join(str(f) for f in self.findings)


@dataclass(frozen=True)
class Trust:
    """The trust anchors and CRLs a verification uses (from the profile, or the test CA's on the sandbox)."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    #: the dissolved agency a name mentions, or None (default :func:`dissolved_agency`)
    dissolved: Callable[[str], str | None] | None = field(default=None, compare=False)

    @classmethod
    def load(cls, anchors: Iterable[bytes], crls: Iterable[bytes] = (),
             dissolved: Callable[[str], str | None] | None = None) -> Trust:
        """From PEM (one or several certificates) or DER anchors and PEM or DER CRLs; a bad one raises ValueError
        naming it (the profile's sources are the operator's, not the province's)."""
        certs: list[x509.Certificate] = []
        for index, data in enumerate(anchors):
            try:
                certs += x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data \
                    else [x509.load_der_x509_certificate(data)]
            except ValueError as exc:
                raise ValueError(f"trust anchor {index + 1} is not a PEM or DER certificate: {exc}") from None
        lists: list[x509.CertificateRevocationList] = []
        for index, data in enumerate(crls):
            try:
                lists.append(x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data))
            except ValueError as exc:
                raise ValueError(f"CRL {index + 1} is not a PEM or DER CRL: {exc}") from None
        return cls(tuple(certs), tuple(lists), dissolved)


# -- dissolved agencies -----------------------------------------------------------------------------
def ascii_fold(text: str) -> str:
    """Lower case, no diacritics (certificates spell "Ban Co yeu Chinh phu"), đ → d, single spaces."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain.lower()).split())


@lru_cache(maxsize=1)
def _district_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    from haicap.data_generators.units import admin_units

    names = {ascii_fold(w.district_name): f"{w.district_name} ({w.province_name})"
             for w in admin_units().legacy_wards()}
    names.pop("", None)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![0-9a-z])(?:{alternatives})(?![0-9a-z])"), names


def dissolved_agency(text: str) -> str | None:
    """The pre-merger district-level unit ``text`` names (``UBND huyen Lam Thao`` → ``Huyện Lâm Thao (Tỉnh Phú
    Thọ)``), or None: the district level was dissolved on 1 July 2025 (the 63-province list's districts)."""
    pattern, names = _district_pattern()
    match = pattern.search(ascii_fold(text))
    return names[match.group(0)] if match else None


# -- entry point ------------------------------------------------------------------------------------
def verify_document(data: bytes, trust: Trust, at: datetime, *, whole_document: bool = True,
                    parts: Collection[str] = ()) -> Verification:
    """Verify an XML or PDF document's signature (format by its first bytes). ``whole_document`` False accepts
    an XML signature whose first reference is a part of the document (an edXML envelope signing its content);
    ``parts`` (Clark names, ``{ns}edXMLEnvelope``) then names the parts it may be, besides the whole document."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"%PDF-"):
        return verify_pdf(data, trust, at)
    if head.startswith(b"<"):
        return verify_xml(data, trust, at, whole_document=whole_document, parts=parts)
    return Verification("unknown", (Finding(Kind.MALFORMED, "neither XML nor PDF (no '<' or '%PDF-' at the start)"),))


def decode_document(content: Any) -> bytes | Finding:
    """The bytes of a base64 ``NoiDung``, or the finding that it is not base64."""
    if not isinstance(content, str):
        return Finding(Kind.MALFORMED, f"the document content is {type(content).__name__}, not a base64 string")
    try:  # base64 wrapped in lines (MIME encoders, RFC 2045 §6.8) is the same bytes: whitespace is dropped
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        return Finding(Kind.MALFORMED, f"the document content is not base64: {exc}")


# -- XML ---------------------------------------------------------------------------------------------
def _xml_parser() -> Any:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False)


def verify_xml(data: bytes, trust: Trust, at: datetime, *, whole_document: bool = True,
               parts: Collection[str] = ()) -> Verification:
    """Every enveloped XML-DSig (or XAdES) signature of the document, each over the whole document (or over a
    part: ``whole_document``, one of ``parts`` when given); a document with several signatures is valid only when
    each is. A ds:Signature nested in another (a XAdES countersignature in its UnsignedProperties) signs that
    signature: it must verify too, without the whole-document rule."""
    from lxml import etree

    try:
        root = etree.fromstring(data, parser=_xml_parser())
    except etree.XMLSyntaxError as exc:
        return Verification("xml", (Finding(Kind.MALFORMED, f"not well-formed XML: {exc}"),))
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    if not signatures:
        return Verification("xml", (Finding(Kind.UNSIGNED, "no ds:Signature element in the document"),))
    verdicts = [_verify_xml_signature(data, root, signature, trust, at, whole_document=whole_document,
                                      parts=parts, cover=not _nested(signature)) for signature in signatures]
    return _combined(verdicts)


def _nested(signature: Any) -> bool:
    """A ds:Signature inside another (a XAdES CounterSignature in its UnsignedSignatureProperties): it signs that
    signature, not the document, so the whole-document rule is not its own."""
    return any(a.tag == f"{{{DS}}}Signature" for a in signature.iterancestors())


def _combined(verdicts: Sequence[Verification]) -> Verification:
    """One verdict of several signatures: the first names the signer; each finding says which signature."""
    first = verdicts[0]
    if len(verdicts) == 1:
        return first
    findings = tuple(Finding(f.kind, f"ds:Signature {index} of {len(verdicts)}: {f.reason}")
                     for index, v in enumerate(verdicts, 1) for f in v.findings)
    return Verification(first.format, findings, first.signer, first.signing_time,
                        tuple(dict.fromkeys(a for v in verdicts for a in v.algorithms)), first.chain)


def _signed_info_algorithms(signature: Any) -> tuple[str, ...]:
    """The SignatureMethod and the Reference DigestMethods: what protects the content (a XAdES CertDigest only
    names a certificate, judged by :func:`_cert_digest_findings`)."""
    paths = (f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod",
             f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestMethod")
    return tuple(dict.fromkeys(str(e.get("Algorithm")) for path in paths for e in signature.iterfind(path)))


def _structure_findings(signature: Any) -> list[Finding]:
    """XML-DSig §4: a SignedInfo and a SignatureValue; DigestValue and SignatureValue are base64 (ds:CryptoBinary,
    ds:DigestValueType): a character outside base64 is malformed, not skipped as a lenient decoder would."""
    missing = [n for n in ("SignedInfo", "SignatureValue") if signature.find(f"{{{DS}}}{n}") is None]
    if missing:
        return [Finding(Kind.MALFORMED, f"the ds:Signature has no ds:{' nor ds:'.join(missing)}")]
    findings = []
    own = (f"{{{DS}}}SignatureValue", f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestValue")
    for element in (e for path in own for e in signature.iterfind(path)):
        try:
            base64.b64decode("".join((element.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            findings.append(Finding(Kind.MALFORMED, f"a ds:{_local_name(element)} is not base64: {exc}"))
    return findings


def _local_name(element: Any) -> str:
    return str(element.tag).rpartition("}")[2]


def _verify_xml_signature(data: bytes, root: Any, signature: Any, trust: Trust, at: datetime, *,
                          whole_document: bool, parts: Collection[str], cover: bool = True) -> Verification:
    structure = _structure_findings(signature)
    if structure:
        return Verification("xml", tuple(structure))
    algorithms = _signed_info_algorithms(signature)
    findings = [Finding(Kind.WEAK_ALGORITHM, f"{a} is weaker than SHA-256") for a in algorithms if _WEAK.search(a)]
    certs, bad = _keyinfo_certificates(signature)
    findings += bad
    if not certs:
        findings.append(Finding(Kind.UNTRUSTED, "the signature carries no X.509 certificate (ds:X509Certificate)"))
        return Verification("xml", tuple(findings), algorithms=algorithms)
    leaf = _leaf(certs, trust.anchors)
    xades = signature.find(f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties") is not None
    findings += _xml_signature_findings(data, root, leaf, xades,
                                        frozenset(parts) if not whole_document else frozenset(),
                                        signature=signature, anchors=trust.anchors,
                                        cover=cover and (whole_document or bool(parts)))
    if xades:
        findings += _cert_digest_findings(signature, leaf)
    claimed, time_findings = _xades_signing_time(signature)
    findings += time_findings
    moment, more = _signing_moment(claimed, at)
    findings += more
    chain, cert_findings = certificate_findings(leaf, certs, trust, moment)
    return Verification("xml", tuple(findings + cert_findings), leaf.subject.rfc4514_string(), moment,
                        algorithms, chain)


def _keyinfo_certificates(signature: Any) -> tuple[list[x509.Certificate], list[Finding]]:
    """The certificates of the signature's KeyInfo (the signer first, usually) and of its XAdES CertificateValues
    (not those of a countersignature nested in it)."""
    certs, findings = [], []
    values = f"{_UNSIGNED_SIGNATURE_PROPERTIES}/{{{XADES}}}CertificateValues/{{{XADES}}}EncapsulatedX509Certificate"
    for element in [*signature.iterfind(f"{{{DS}}}KeyInfo//{{{DS}}}X509Certificate"), *signature.iterfind(values)]:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split()),
                                                                          validate=True)))
        except (ValueError, binascii.Error) as exc:
            findings.append(Finding(Kind.MALFORMED, f"a ds:X509Certificate is not a DER certificate: {exc}"))
    return certs, findings


def _leaf(certs: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate] = ()) -> x509.Certificate:
    """The end-entity certificate: of those that issued none of the others, the first whose chain reaches a
    trust anchor (KeyInfo may carry an unrelated certificate, a cross certificate, before the signer's), else
    the first (KeyInfo lists the signer first)."""
    candidates = [c for c in certs if not any(o.issuer == c.subject and o is not c for o in certs)] or [certs[0]]
    if len(candidates) > 1:
        reaching = [c for c in candidates if not build_chain(c, certs, anchors)[1]]
        candidates = reaching or candidates
    return candidates[0]


def _xml_signature_findings(data: bytes, root: Any, leaf: x509.Certificate, xades: bool,
                            parts: frozenset[str] = frozenset(), *, signature: Any = None,
                            anchors: Sequence[x509.Certificate] = (), cover: bool = True) -> list[Finding]:
    """signxml's verdict on the signature at its place in the document (``signature``, else the first); with
    ``cover``, that one of its references is the whole document (or one of ``parts``)."""
    from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod
    from signxml.exceptions import InvalidInput, InvalidSignature
    from signxml.xades import XAdESSignatureConfiguration

    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    # validity is judged at the signing time by certificate_findings, not by signxml at "now"
    middle = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    # any number of references (XML-DSig §4.4.3 allows several; XAdES producers sign 2 or 3: the document, the
    # SignedProperties, perhaps the KeyInfo): one of them must cover the whole document, judged below
    every = {"signature_methods": frozenset(SignatureMethod), "digest_algorithms": frozenset(DigestAlgorithm),
             "verification_time": middle, "expect_references": True}
    located, located_xades = _verifier_classes()
    path = _element_path(root, signature if signature is not None else root.find(f".//{{{DS}}}Signature"))
    try:
        if xades:
            verifier = located_xades(path, anchors)
            results = verifier.verify(data, x509_cert=pem, expect_config=XAdESSignatureConfiguration(**every))
        else:
            results = located(path).verify(data, x509_cert=pem, expect_config=SignatureConfiguration(**every))
    except InvalidSignature as exc:
        return [Finding(Kind.BAD_SIGNATURE, f"the signature does not verify over the content: {exc}")]
    except InvalidInput as exc:
        return [Finding(Kind.MALFORMED, f"the signature cannot be processed: {exc}")]
    except NotImplementedError:
        return [Finding(Kind.UNSUPPORTED, "signxml cannot verify this SignatureMethod (e.g. RSA-PSS in XML); "
                                          "the document is neither accepted nor rejected")]
    except Exception as exc:  # signxml and lxml raise many types on hostile input: each is a finding
        return [Finding(Kind.MALFORMED, f"the signature cannot be processed: {type(exc).__name__}: {exc}")]
    return _coverage_findings(results, root, signature, parts) if cover else []


def _coverage_findings(results: Any, root: Any, signature: Any, parts: frozenset[str]) -> list[Finding]:
    """Whether the verified references include the whole document (or one of ``parts``), not only fragments."""
    covered = [getattr(getattr(r, "signed_xml", None), "tag", None)
               for r in (results if isinstance(results, list) else [results])]
    whole = root.tag in covered and _references_root(root, signature)
    part = bool(parts) and any(t in parts for t in covered) and _references_part(root, parts, signature)
    if whole or part:
        return []
    tags = ", ".join(str(t) for t in covered)
    if parts:
        return [Finding(Kind.BAD_SIGNATURE, f"the signature covers {tags}, not the whole document ({root.tag}) "
                                            f"nor {' or '.join(sorted(parts))}: a fragment of the content")]
    return [Finding(Kind.BAD_SIGNATURE, f"the signature covers {tags}, not the whole document ({root.tag}): "
                                        "an enveloped signature must reference the document (URI=\"\")")]


def _element_path(root: Any, element: Any) -> tuple[int, ...]:
    """The element's position below ``root``: the index among its parent's element children at each level."""
    steps: list[int] = []
    while element is not root and element.getparent() is not None:
        parent = element.getparent()
        steps.append([c for c in parent if isinstance(c.tag, str)].index(element))
        element = parent
    return tuple(reversed(steps))


def _at_path(root: Any, path: Sequence[int]) -> Any:
    from signxml.exceptions import InvalidInput

    element = root
    for step in path:
        children = [c for c in element if isinstance(c.tag, str)]
        if step >= len(children):
            raise InvalidInput("the ds:Signature is not where the document had it")
        element = children[step]
    if element.tag != f"{{{DS}}}Signature":
        raise InvalidInput("the ds:Signature is not where the document had it")
    return element


@lru_cache(maxsize=1)
def _verifier_classes() -> tuple[Any, Any]:
    """signxml verifiers that verify the ds:Signature at a given position (signxml's own take the first), the
    XAdES one with :func:`_check_signing_certificate` in place of signxml 5.2's digest check."""
    from signxml import XMLVerifier
    from signxml.xades import XAdESVerifier

    class Located(XMLVerifier):  # type: ignore[misc]
        def __init__(self, path: tuple[int, ...] = ()) -> None:
            super().__init__()
            self.path = path

        def _get_signature(self, root: Any) -> Any:
            return _at_path(root, self.path)

    class LocatedXAdES(Located, XAdESVerifier):  # type: ignore[misc]
        def __init__(self, path: tuple[int, ...] = (), anchors: Sequence[x509.Certificate] = ()) -> None:
            super().__init__(path)
            self.anchors = tuple(anchors)

        def _verify_cert_digests(self, verify_result: Any) -> None:
            _check_signing_certificate(verify_result, self.x509_cert, self.anchors)

        def validate_schema(self, signature: Any) -> None:
            super().validate_schema(_schema_order(signature))

    return Located, LocatedXAdES


def _schema_order(signature: Any) -> Any:
    """A copy of the signature for schema validation only, whose SigningCertificate properties are merged and put
    before SigningCertificateV2 as the EN 319 132-1 schema orders them: signxml 5.2's legacy option emits V2
    first and one SigningCertificate per certificate, and what they mean does not depend on that order."""
    import copy

    copied = copy.deepcopy(signature)
    for properties in copied.iter(f"{{{XADES}}}SignedSignatureProperties"):
        legacy = properties.findall(f"{{{XADES}}}SigningCertificate")
        current = properties.find(f"{{{XADES}}}SigningCertificateV2")
        if not legacy:
            continue
        for extra in legacy[1:]:
            legacy[0].extend(list(extra))
            properties.remove(extra)
        if current is not None:
            current.addprevious(legacy[0])
    return copied


def _cert_refs(signature_properties: Any) -> dict[str, list[Any]]:
    """The xades:Cert elements of the SigningCertificate (v1, obsolete) and SigningCertificateV2 properties."""
    return {name: [c for e in signature_properties.iterfind(f"{{{XADES}}}{name}")
                   for c in e.iterfind(f"{{{XADES}}}Cert")]
            for name in ("SigningCertificate", "SigningCertificateV2")}


def _cert_ref_digest(ref: Any) -> tuple[str, Any, bytes]:
    """A xades:Cert's digest: (algorithm URI, its hash, the digest value); InvalidInput when unreadable."""
    from signxml.algorithms import DigestAlgorithm, digest_algorithm_implementations
    from signxml.exceptions import InvalidInput

    method = ref.find(f"{{{XADES}}}CertDigest/{{{DS}}}DigestMethod")
    value = ref.find(f"{{{XADES}}}CertDigest/{{{DS}}}DigestValue")
    uri = str(method.get("Algorithm")) if method is not None else ""
    try:
        algorithm = digest_algorithm_implementations[DigestAlgorithm(uri)]()
        digest = base64.b64decode("".join((value.text or "").split()), validate=True)
    except (ValueError, KeyError, AttributeError, binascii.Error) as exc:
        raise InvalidInput(f"a xades:CertDigest cannot be read ({uri or 'no DigestMethod'}): {exc}") from None
    return uri, algorithm, digest


def _referenced(ref: Any, known: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate a xades:Cert names (by digest and, in v1, serial number); InvalidDigest when none."""
    from signxml.exceptions import InvalidDigest

    _, algorithm, digest = _cert_ref_digest(ref)
    serial = ref.findtext(f"{{{XADES}}}IssuerSerial/{{{DS}}}X509SerialNumber")
    for cert in known:
        if cert.fingerprint(algorithm) == digest:
            if serial is not None and serial.strip() != str(cert.serial_number):
                raise InvalidDigest(f"a xades:Cert names serial {serial.strip()} but its digest is of "
                                    f"certificate serial {cert.serial_number}")
            return cert
    raise InvalidDigest("a xades:CertDigest matches no certificate of the signature or the trust anchors")


def _check_signing_certificate(result: Any, signing_pem: Any, anchors: Sequence[x509.Certificate]) -> None:
    """ETSI EN 319 132-1 §5.2.2: SigningCertificateV2 (or the obsolete SigningCertificate, or both, as producers
    that also serve old verifiers emit) references the signing certificate, in any position, and may reference
    others of its path; every reference must name a known certificate. signxml 5.2 refuses both properties
    together and wants the signer first."""
    from signxml.exceptions import InvalidDigest, InvalidInput

    signing = x509.load_pem_x509_certificate(signing_pem.encode())
    certs, _ = _keyinfo_certificates(result.signature_xml)
    known = [signing, *certs, *anchors]
    properties = result.signed_xml.find(f"{{{XADES}}}SignedSignatureProperties")
    groups = _cert_refs(properties) if properties is not None else {}
    if not any(groups.values()):
        raise InvalidInput("no xades:SigningCertificateV2 (or SigningCertificate) with a xades:Cert")
    for name, refs in groups.items():
        named = [_referenced(ref, known) for ref in refs]
        if refs and signing not in named:
            raise InvalidDigest(f"xades:{name} does not reference the signing certificate")


def _cert_digest_findings(signature: Any, leaf: x509.Certificate) -> list[Finding]:
    """A SHA-1/MD5 CertDigest is a finding only when it is the sole reference to the signing certificate: it names
    a certificate (signed by its CA, checked on its own) and, beside a SHA-256 SigningCertificateV2, is the
    obsolete v1 property kept for old verifiers (ETSI EN 319 132-1 §5.2.2)."""
    from signxml.exceptions import InvalidInput

    properties = signature.find(_SIGNED_SIGNATURE_PROPERTIES)
    weak, strong = [], False
    for ref in (r for refs in _cert_refs(properties).values() for r in refs) if properties is not None else ():
        try:
            uri, algorithm, digest = _cert_ref_digest(ref)
        except InvalidInput:
            continue  # reported by the verifier
        if leaf.fingerprint(algorithm) == digest:
            weak.append(uri) if _WEAK.search(uri) else None
            strong = strong or not _WEAK.search(uri)
    if weak and not strong:
        return [Finding(Kind.WEAK_ALGORITHM, f"the signing certificate is referenced only by a {weak[0]} "
                                             "CertDigest, weaker than SHA-256")]
    return []


def _references_root(root: Any, signature: Any = None) -> bool:
    """Whether a Reference of the signature names the whole document: URI="" or "#" + the root's Id (a nested
    element of the root's name is a fragment, however its tag reads)."""
    signature = signature if signature is not None else root.find(f".//{{{DS}}}Signature")
    ids = {v for k, v in root.attrib.items() if k in ("Id", "ID", "id")}
    uris = [r.get("URI") for r in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")] \
        if signature is not None else []
    return any(u == "" or (u is not None and u.startswith("#") and u[1:] in ids) for u in uris)


def _references_part(root: Any, parts: frozenset[str], signature: Any = None) -> bool:
    """Whether a Reference of the signature names, by its Id, a child of the root that is one of ``parts``
    (the edXMLEnvelope itself, not a nested element of the same name placed elsewhere)."""
    signature = signature if signature is not None else root.find(f".//{{{DS}}}Signature")
    ids = {v for child in root if child.tag in parts for k, v in child.attrib.items() if k in ("Id", "ID", "id")}
    uris = [r.get("URI") for r in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")] \
        if signature is not None else []
    return any(u is not None and u.startswith("#") and u[1:] in ids for u in uris)


def _xades_signing_time(signature: Any) -> tuple[datetime | None, list[Finding]]:
    """The claimed xades:SigningTime; one without a time zone (xs:dateTime allows it) is read as Viet Nam time
    (UTC+7 all year), the province's clock: read as UTC it would lie 7 hours ahead and look made in the future."""
    from haicap.vn_time import VN_TZ

    element = signature.find(f"{_SIGNED_SIGNATURE_PROPERTIES}/{{{XADES}}}SigningTime")
    if element is None or not (element.text or "").strip():
        return None, []
    try:
        moment = datetime.fromisoformat(element.text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None, [Finding(Kind.MALFORMED, f"xades:SigningTime {element.text.strip()!r} is not an xs:dateTime")]
    return (moment if moment.tzinfo else moment.replace(tzinfo=VN_TZ)), []


def _signing_moment(claimed: datetime | None, at: datetime) -> tuple[datetime, list[Finding]]:
    if claimed is None:
        return at, []
    if claimed > at + CLOCK_SKEW:
        return at, [Finding(Kind.SIGNING_TIME, f"the claimed signing time {claimed.isoformat()} is after the document "
                                               f"was observed ({at.isoformat()})")]
    return claimed, []


# -- PDF ---------------------------------------------------------------------------------------------
def verify_pdf(data: bytes, trust: Trust, at: datetime) -> Verification:
    """Every PAdES signature of the PDF; the last one must cover the whole file (or only signature updates)."""
    try:
        from pyhanko.pdf_utils.reader import PdfFileReader

        reader = PdfFileReader(BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
    except Exception as exc:  # pyHanko raises many types on a hostile PDF: each is a finding
        return Verification("pdf", (Finding(Kind.MALFORMED, f"not a readable PDF: {type(exc).__name__}: {exc}"),))
    if not signatures:
        return Verification("pdf", (Finding(Kind.UNSIGNED, "the PDF has no signature field with a signature"),))
    verdicts = [_pdf_signature(sig, trust, at) for sig in signatures]
    last = verdicts[-1]
    findings = tuple(f for v in verdicts for f in v.findings)
    return Verification("pdf", findings, last.signer, last.signing_time,
                        tuple(a for v in verdicts for a in v.algorithms), last.chain)


def _pdf_signature(sig: Any, trust: Trust, at: datetime) -> Verification:
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        digest = str(sig.md_algorithm)
        mechanism = str(sig.signer_info["signature_algorithm"]["algorithm"].native)
        embedded = [x509.load_der_x509_certificate(c.chosen.dump()) for c in sig.signed_data["certificates"]
                    if c.name == "certificate"]
        leaf = x509.load_der_x509_certificate(sig.signer_cert.dump())
    except Exception as exc:
        return Verification("pdf", (Finding(Kind.MALFORMED, f"the signature's CMS cannot be read: "
                                                            f"{type(exc).__name__}: {exc}"),))
    algorithms = (digest, mechanism)
    findings = [Finding(Kind.WEAK_ALGORITHM, f"{a} is weaker than SHA-256") for a in algorithms if _WEAK.search(a)]
    try:
        context = ValidationContext(trust_roots=[_asn1(c) for c in trust.anchors],
                                    other_certs=[_asn1(c) for c in embedded],
                                    allow_fetching=False, revocation_mode="soft-fail")
        status = asyncio.run(async_validate_pdf_signature(sig, signer_validation_context=context))
    except Exception as exc:
        findings.append(Finding(Kind.BAD_SIGNATURE, f"the signature cannot be validated: {type(exc).__name__}: {exc}"))
        return Verification("pdf", tuple(findings), leaf.subject.rfc4514_string(), None, algorithms)
    findings += _pdf_integrity(status)
    claimed = status.signer_reported_dt
    moment, more = _signing_moment(claimed.astimezone(UTC) if claimed else None, at)
    chain, cert_findings = certificate_findings(leaf, embedded, trust, moment)
    return Verification("pdf", tuple(findings + more + cert_findings), leaf.subject.rfc4514_string(), moment,
                        algorithms, chain)


def _asn1(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _pdf_integrity(status: Any) -> list[Finding]:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    if not status.intact:
        return [Finding(Kind.BAD_SIGNATURE, "the message digest does not match the signed byte range: the signed "
                                            "content was changed")]
    if not status.valid:
        return [Finding(Kind.BAD_SIGNATURE, "the CMS signature does not verify with the signer's key")]
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return []
    level = status.modification_level
    if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION and level is not None \
            and level <= ModificationLevel.FORM_FILLING and status.docmdp_ok is not False:
        return []  # later revisions only add signatures, time stamps or fill forms (ETSI EN 319 142-1 §5.4)
    return [Finding(Kind.MODIFIED, f"the PDF was changed after signing (incremental update; coverage "
                                   f"{getattr(status.coverage, 'name', status.coverage)}, modification level "
                                   f"{getattr(level, 'name', level)})")]


# -- certificates (RFC 5280) ------------------------------------------------------------------------
def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def certificate_findings(leaf: x509.Certificate, others: Sequence[x509.Certificate], trust: Trust,
                         moment: datetime) -> tuple[tuple[str, ...], list[Finding]]:
    """The chain (subjects, leaf first) from ``leaf`` to a trust anchor, and what is wrong with it at ``moment``:
    not reaching an anchor, a certificate outside its validity or revoked before ``moment``, a SHA-1/MD5
    certificate signature, a signer certificate without digitalSignature/nonRepudiation, a dissolved agency."""
    chain, findings = build_chain(leaf, others, trust.anchors)
    findings += _usage_findings(leaf)
    findings += _agency_findings(leaf, trust.dissolved or dissolved_agency)
    reached = bool(chain) and _is_anchor(chain[-1], trust.anchors)
    for cert in chain if reached else [leaf]:
        if _is_anchor(cert, trust.anchors):
            continue
        if cert.signature_hash_algorithm is not None and isinstance(cert.signature_hash_algorithm, _WEAK_HASHES):
            findings.append(Finding(Kind.WEAK_ALGORITHM, f"certificate {_name(cert)} is signed with "
                                                         f"{cert.signature_hash_algorithm.name}"))
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            findings.append(Finding(Kind.VALIDITY, f"signed at {moment:%Y-%m-%dT%H:%M:%SZ}, outside the validity of "
                                                   f"{_name(cert)} ({cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} – "
                                                   f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"))
    if reached:
        for cert, issuer in itertools.pairwise(chain):
            findings += _revocation_findings(cert, issuer, trust.crls, moment)
    return tuple(_name(c) for c in chain), findings


def _is_anchor(cert: x509.Certificate, anchors: Sequence[x509.Certificate]) -> bool:
    return any(cert == anchor for anchor in anchors)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # wrong name, bad signature, unsupported key: not this issuer
        return False
    return True


def build_chain(leaf: x509.Certificate, others: Sequence[x509.Certificate],
                anchors: Sequence[x509.Certificate]) -> tuple[list[x509.Certificate], list[Finding]]:
    """Walk issuer by issuer (name and signature, RFC 5280 §6.1.3) through the signature's certificates to an
    anchor; each issuer must be a CA (basicConstraints cA, keyCertSign)."""
    chain = [leaf]
    pool = [*anchors, *others]
    while not _is_anchor(chain[-1], anchors):
        current = chain[-1]
        issuer = next((c for c in pool if c not in chain and _issued_by(current, c)), None)
        if issuer is None:
            if current.issuer == current.subject:
                why = f"{_name(current)} is self-signed and not a trust anchor"
            else:
                why = (f"no trust anchor or included intermediate issued {_name(current)} "
                       f"(issuer {current.issuer.rfc4514_string()})")
            return chain, [Finding(Kind.UNTRUSTED, f"the chain does not reach a trust anchor: {why}")]
        problem = _ca_problem(issuer)
        if problem:
            return chain, [Finding(Kind.UNTRUSTED, f"{_name(issuer)} issued {_name(current)} but {problem}")]
        chain.append(issuer)
        if len(chain) > MAX_CHAIN:
            return chain, [Finding(Kind.UNTRUSTED, f"the chain is longer than {MAX_CHAIN} certificates")]
    return chain, []


def _ca_problem(cert: x509.Certificate) -> str | None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "has no basicConstraints (not a CA, RFC 5280 §4.2.1.9)"
    except ValueError as exc:
        return f"its extensions cannot be read: {exc}"
    if not constraints.ca:
        return "is not a CA (basicConstraints cA false, RFC 5280 §4.2.1.9)"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        return f"its extensions cannot be read: {exc}"
    return None if usage.key_cert_sign else "its keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3)"


def _usage_findings(leaf: x509.Certificate) -> list[Finding]:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        return [Finding(Kind.MALFORMED, f"the signer certificate's extensions cannot be read: {exc}")]
    if usage.digital_signature or usage.content_commitment:
        return []
    return [Finding(Kind.KEY_USAGE, f"{_name(leaf)} has neither digitalSignature nor nonRepudiation in its keyUsage "
                                    "(RFC 5280 §4.2.1.3)")]


def _agency_findings(leaf: x509.Certificate, dissolved: Callable[[str], str | None]) -> list[Finding]:
    oids = (NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME)
    for attribute in leaf.subject:
        if attribute.oid in oids:
            unit = dissolved(str(attribute.value))
            if unit:
                return [Finding(Kind.DISSOLVED_AGENCY, f"the signer certificate names {attribute.value!r}, an agency "
                                                       f"of {unit}, a district-level unit dissolved on 1 July 2025")]
    return []


def _revocation_findings(cert: x509.Certificate, issuer: x509.Certificate,
                         crls: Sequence[x509.CertificateRevocationList], moment: datetime) -> list[Finding]:
    """RFC 5280 §6.3: a CRL of the issuer, signed by it, that lists the certificate revoked at or before
    ``moment`` (a later revocation leaves an earlier signature valid)."""
    covering = [c for c in crls if c.issuer == issuer.subject and c.is_signature_valid(issuer.public_key())]  # type: ignore[arg-type]
    if not covering:
        return [Finding(Kind.REVOCATION_UNKNOWN, f"no CRL of {_name(issuer)} (signed by it) among the revocation "
                                                 f"sources: the status of {_name(cert)} is unknown")]
    for crl in covering:
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= moment:
            return [Finding(Kind.REVOKED, f"{_name(cert)} (serial {cert.serial_number:x}) was revoked at "
                                          f"{entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ}, at or before the signing "
                                          f"time {moment:%Y-%m-%dT%H:%M:%SZ}")]
    return []
