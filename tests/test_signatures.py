"""haicap/signatures.py and the counterpart's test CA: must-reject and must-accept cases, without a sandbox.

Keys are made once per module (one RSA 2048 key: slow to generate); every document is signed in memory.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from signxml import DigestAlgorithm, SignatureMethod

from haicap.sandbox.national.test_ca import CaRefusal, TestCA, revocation_proof
from haicap.sandbox.province.signing import (
    OfficerCredential,
    minimal_pdf,
    rewrite_page_after_signing,
    sign_pdf,
    sign_xml,
)
from haicap.signatures import Kind, Trust, decode_document, dissolved_agency, verify_document

XML = b"<KetQuaGiaiQuyet><MaHoSo>000.00.00.H26-250701-0001</MaHoSo><KetQua>Chap thuan</KetQua></KetQuaGiaiQuyet>"


def _subject(agency: str = "UBND Thanh Pho Ha Noi") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nguyen Van An"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])


def _csr(key: object, subject: x509.Name | None = None) -> x509.CertificateSigningRequest:
    return x509.CertificateSigningRequestBuilder().subject_name(subject or _subject()).sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA("http://127.0.0.1:1")


@pytest.fixture(scope="module")
def ec_cred(ca: TestCA) -> OfficerCredential:
    key = ec.generate_private_key(ec.SECP256R1())
    return OfficerCredential(key, ca.issue(_csr(key)), [ca.sub.cert])


@pytest.fixture(scope="module")
def rsa_cred(ca: TestCA) -> OfficerCredential:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return OfficerCredential(key, ca.issue(_csr(key)), [ca.sub.cert])


def _trust(ca: TestCA) -> Trust:
    return Trust.load([ca.root_pem()], [ca.crl("sub"), ca.crl("root")])


def _now() -> datetime:
    return datetime.now(UTC)


def _pdf(cred: OfficerCredential, **kwargs: object) -> bytes:
    return asyncio.run(sign_pdf(minimal_pdf("ket qua"), cred, **kwargs))  # type: ignore[arg-type]


# -- must accept -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "digest"), [
    (SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256),
    (SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA384),
    (SignatureMethod.ECDSA_SHA512, DigestAlgorithm.SHA512),
])
def test_xml_ecdsa_sha2_family_through_an_intermediate_is_valid(ca: TestCA, ec_cred: OfficerCredential,
                                                                method: object, digest: object) -> None:
    result = verify_document(sign_xml(XML, ec_cred, method=method, digest=digest), _trust(ca), _now())
    assert result.ok, result.summary()
    assert len(result.chain) == 3  # signer, subordinate CA, root


@pytest.mark.parametrize("method", [SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512])
def test_xml_rsa_pkcs1_is_valid(ca: TestCA, rsa_cred: OfficerCredential, method: object) -> None:
    assert verify_document(sign_xml(XML, rsa_cred, method=method), _trust(ca), _now()).ok


def test_xml_rsa_pss_is_not_rejected(ca: TestCA, rsa_cred: OfficerCredential) -> None:
    """signxml signs but cannot verify RSA-PSS (MGF1) in XML: the verdict says so instead of a false rejection."""
    found = verify_document(sign_xml(XML, rsa_cred, method=SignatureMethod.SHA256_RSA_MGF1), _trust(ca), _now())
    assert found.kinds() == {Kind.UNSUPPORTED}, found.summary()


def test_plain_xml_dsig_without_xades_is_valid(ca: TestCA, ec_cred: OfficerCredential) -> None:
    result = verify_document(sign_xml(XML, ec_cred, xades=False), _trust(ca), _now())
    assert result.ok, result.summary()


@pytest.mark.parametrize(("md", "pss"), [("sha256", False), ("sha384", False), ("sha512", True)])
def test_pdf_rsa_pkcs1_pss_and_sha2_family_are_valid(ca: TestCA, rsa_cred: OfficerCredential, md: str,
                                                     pss: bool) -> None:
    result = verify_document(_pdf(rsa_cred, md_algorithm=md, prefer_pss=pss), _trust(ca), _now())
    assert result.ok, result.summary()


def test_pdf_countersigned_in_a_later_revision_is_valid(ca: TestCA, ec_cred: OfficerCredential) -> None:
    first = _pdf(ec_cred)
    second = asyncio.run(sign_pdf(first, ec_cred, field_name="ChuKyLanhDao"))
    assert verify_document(second, _trust(ca), _now()).ok


def test_a_signature_made_before_a_later_revocation_stays_valid() -> None:
    ca = TestCA()
    key = ec.generate_private_key(ec.SECP256R1())
    cred = OfficerCredential(key, ca.issue(_csr(key)), [ca.sub.cert])
    signed = sign_xml(XML, cred)
    ca.revoke(cred.cert.serial_number, at=_now() + timedelta(minutes=2))
    assert verify_document(signed, _trust(ca), _now() + timedelta(minutes=3)).ok
    ca2 = TestCA()
    cred2 = OfficerCredential(key, ca2.issue(_csr(key)), [ca2.sub.cert])
    ca2.revoke(cred2.cert.serial_number, at=_now() - timedelta(minutes=1))
    found = verify_document(sign_xml(XML, cred2), _trust(ca2), _now())
    assert found.kinds() == {Kind.REVOKED}, found.summary()


def _sign_references(cred: OfficerCredential, uris: list[str], *, xades: bool) -> bytes:
    """XML signed (by signxml, as another producer would) with the given Reference URIs."""
    from lxml import etree
    from signxml import XMLSigner
    from signxml.xades import XAdESSigner

    root = etree.fromstring(b'<KetQuaGiaiQuyet Id="doc"><MaHoSo>000.00.00.H26-250701-0001</MaHoSo>'
                            b'<KetQua Id="kq">Chap thuan</KetQua></KetQuaGiaiQuyet>')
    signer = (XAdESSigner if xades else XMLSigner)(signature_algorithm=SignatureMethod.ECDSA_SHA256,
                                                   digest_algorithm=DigestAlgorithm.SHA256)
    signed = signer.sign(root, key=cred.key_pem(), cert=cred.pem_chain(), reference_uri=uris)
    return etree.tostring(signed)  # type: ignore[no-any-return]


@pytest.mark.parametrize("xades", [False, True])
def test_several_references_one_of_them_the_whole_document_are_valid(ca: TestCA, ec_cred: OfficerCredential,
                                                                     xades: bool) -> None:
    """XML-DSig allows several references (a XAdES producer signs 2, 3 or more), and the whole document by its
    root Id ("#doc") as well as by URI="": not only signxml's own reference count."""
    result = verify_document(_sign_references(ec_cred, ["#doc", "#kq"], xades=xades), _trust(ca), _now())
    assert result.ok, result.summary()


def test_references_to_fragments_only_are_not_the_whole_document(ca: TestCA, ec_cred: OfficerCredential) -> None:
    found = verify_document(_sign_references(ec_cred, ["#kq"], xades=False), _trust(ca), _now())
    assert found.kinds() == {Kind.BAD_SIGNATURE} and "not the whole document" in found.summary(), found.summary()


def test_a_nested_element_named_like_the_root_is_a_fragment(ca: TestCA, ec_cred: OfficerCredential) -> None:
    from lxml import etree
    from signxml import XMLSigner

    root = etree.fromstring(b'<KetQuaGiaiQuyet><KetQuaGiaiQuyet Id="inner">Chap thuan</KetQuaGiaiQuyet>'
                            b'<KetQua>Tu choi</KetQua></KetQuaGiaiQuyet>')
    signed = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256
                       ).sign(root, key=ec_cred.key_pem(), cert=ec_cred.pem_chain(), reference_uri=["#inner"])
    found = verify_document(etree.tostring(signed), _trust(ca), _now())
    assert found.kinds() == {Kind.BAD_SIGNATURE} and "not the whole document" in found.summary(), found.summary()


# -- must reject -----------------------------------------------------------------------------------
def test_xml_changed_after_signing(ca: TestCA, ec_cred: OfficerCredential) -> None:
    signed = sign_xml(XML, ec_cred).replace(b"Chap thuan", b"Tu choi")
    assert verify_document(signed, _trust(ca), _now()).kinds() == {Kind.BAD_SIGNATURE}


def test_pdf_incremental_update_after_signing(ca: TestCA, ec_cred: OfficerCredential) -> None:
    found = verify_document(rewrite_page_after_signing(_pdf(ec_cred)), _trust(ca), _now())
    assert found.kinds() == {Kind.MODIFIED}, found.summary()


def test_pdf_bytes_changed_inside_the_signed_range(ca: TestCA, ec_cred: OfficerCredential) -> None:
    signed = _pdf(ec_cred)
    tampered = signed.replace(b"200 50 re f", b"201 50 re f", 1)
    assert tampered != signed
    assert Kind.BAD_SIGNATURE in verify_document(tampered, _trust(ca), _now()).kinds()


def test_sha1_xml_signature_is_weak(ca: TestCA, ec_cred: OfficerCredential) -> None:
    found = verify_document(sign_xml(XML, ec_cred, sha1=True), _trust(ca), _now())
    assert found.kinds() == {Kind.WEAK_ALGORITHM}
    assert any("sha1" in f.reason for f in found.findings)


def test_untrusted_self_signed_and_missing_intermediate(ca: TestCA, ec_cred: OfficerCredential) -> None:
    other = TestCA()
    assert verify_document(sign_xml(XML, ec_cred), _trust(other), _now()).kinds() == {Kind.UNTRUSTED}
    without_sub = OfficerCredential(ec_cred.key, ec_cred.cert, [])
    found = verify_document(sign_xml(XML, without_sub), _trust(ca), _now())
    assert found.kinds() == {Kind.UNTRUSTED}
    assert "no trust anchor or included intermediate" in found.summary()


def test_signed_outside_validity(ca: TestCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    expired = ca.issue(_csr(key), not_before=now - timedelta(days=40), not_after=now - timedelta(days=1))
    early = ca.issue(_csr(key), not_before=now + timedelta(days=1), not_after=now + timedelta(days=40))
    for cert in (expired, early):
        found = verify_document(sign_xml(XML, OfficerCredential(key, cert, [ca.sub.cert])), _trust(ca), now)
        assert found.kinds() == {Kind.VALIDITY}, found.summary()


def test_no_crl_for_the_issuer_is_unknown_status(ca: TestCA, ec_cred: OfficerCredential) -> None:
    trust = Trust.load([ca.root_pem()], [ca.crl("root")])
    assert verify_document(sign_xml(XML, ec_cred), trust, _now()).kinds() == {Kind.REVOCATION_UNKNOWN}


def test_dissolved_agency(ca: TestCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cred = OfficerCredential(key, ca.issue(_csr(key, _subject("UBND huyen Lam Thao"))), [ca.sub.cert])
    found = verify_document(sign_xml(XML, cred), _trust(ca), _now())
    assert found.kinds() == {Kind.DISSOLVED_AGENCY}
    assert "Lâm Thao" in found.summary()


def test_dissolved_agency_matching() -> None:
    assert dissolved_agency("UBND Quận Ba Đình") is not None
    assert dissolved_agency("UBND Phuong Ba Dinh") is None  # a current ward of the same name
    assert dissolved_agency("UBND Thanh Pho Ha Noi") is None
    assert dissolved_agency("Cong an Quan 10") is not None
    assert dissolved_agency("Quan 100") is None


@pytest.mark.parametrize(("data", "kind"), [
    (b"", Kind.MALFORMED), (b"hello", Kind.MALFORMED), (b"<a><b></a>", Kind.MALFORMED),
    (XML, Kind.UNSIGNED), (b"%PDF-1.7\n garbage", Kind.MALFORMED),
    (b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', Kind.UNSIGNED),
])
def test_untrusted_input_is_a_finding_never_a_crash(ca: TestCA, data: bytes, kind: Kind) -> None:
    assert kind in verify_document(data, _trust(ca), _now()).kinds()


def test_unsigned_pdf_and_broken_certificate(ca: TestCA, ec_cred: OfficerCredential) -> None:
    assert verify_document(minimal_pdf("x"), _trust(ca), _now()).kinds() == {Kind.UNSIGNED}
    signed = sign_xml(XML, ec_cred)
    start = signed.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    broken = signed[:start] + b"AAAA" + signed[start + 4:]
    assert Kind.MALFORMED in verify_document(broken, _trust(ca), _now()).kinds()
    assert decode_document("not base64!").kind == Kind.MALFORMED  # type: ignore[union-attr]
    assert decode_document(base64.b64encode(b"x").decode()) == b"x"
    wrapped = base64.encodebytes(bytes(range(256)) * 2).decode()  # MIME-style, a line break every 76 characters
    assert "\n" in wrapped and decode_document(wrapped) == bytes(range(256)) * 2


# -- the test CA -----------------------------------------------------------------------------------
def test_ca_refuses_bad_requests(ca: TestCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    no_country = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A"),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "B")])
    with pytest.raises(CaRefusal, match="C must be VN"):
        ca.issue(_csr(key, no_country))
    with pytest.raises(CaRefusal, match="later than"):
        ca.issue(_csr(key), not_before=_now(), not_after=_now() - timedelta(days=1))
    with pytest.raises(CaRefusal, match="serial"):
        ca.revoke(12345)


def test_subscriber_revocation_needs_the_key(ca: TestCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(_csr(key))
    pem = cert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                       fromlist=["Encoding"]).Encoding.PEM).decode()
    with pytest.raises(CaRefusal, match="proof"):
        ca.revoke_by_subscriber(pem, revocation_proof(ec.generate_private_key(ec.SECP256R1()), cert.serial_number))
    ca.revoke_by_subscriber(pem, revocation_proof(key, cert.serial_number))
    crl = x509.load_der_x509_crl(ca.crl("sub"))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert crl.is_signature_valid(ca.sub.cert.public_key())  # type: ignore[arg-type]


# -- the profile's signature sources ----------------------------------------------------------------
def test_profile_signature_sources_are_validated(tmp_path: Path, ca: TestCA,
                                                  profile_file: Callable[..., Path]) -> None:
    from haicap.errors import HaicapError
    from haicap.target import _capabilities, back_office_settings, load_profile

    path = profile_file("capabilities: [sso, signatures]\n")
    with pytest.raises(HaicapError, match="capabilities\\[1\\]: signatures needs signature_trust_anchors"):
        load_profile(path)
    (tmp_path / "root.pem").write_bytes(ca.root_pem())
    (tmp_path / "sub.crl").write_bytes(ca.crl("sub"))
    (tmp_path / "bad.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    profile_file("signature_trust_anchors: [root.pem]\nsignature_crls: [sub.crl, http://127.0.0.1:8710/crl.der]\n")
    data = load_profile(path).data
    assert "signatures" in _capabilities(data, back_office_settings(data))
    for extra, message in (("signature_trust_anchors: [bad.pem]\n", "signature_trust_anchors\\[0\\]: .*bad.pem: trust "
                                                                     "anchor 1 is not a PEM or DER certificate"),
                           ("signature_trust_anchors: [missing.pem]\n", "signature_trust_anchors\\[0\\]: cannot read"),
                           ("signature_trust_anchors: [root.pem]\nsignature_crls: [root.pem]\n",
                            "signature_crls\\[0\\]: .*CRL 1 is not a PEM or DER CRL")):
        profile_file(extra)
        with pytest.raises(HaicapError, match=message):
            load_profile(path)
    profile_file()
    data = load_profile(path).data
    assert "signatures" not in _capabilities(data, back_office_settings(data))


# -- edXML packages (SIG-07) -----------------------------------------------------------------------------
def _edxml(cred: OfficerCredential | None, reference: str | None = None, id_on: str = "") -> bytes:
    """A package signed as the reference province signs it (whole package), or by ``reference`` to an Id put on
    the element ``id_on`` (an envelope-only or a fragment-only signature); no ``cred``: unsigned."""
    from dataclasses import replace

    from lxml import etree
    from signxml import XMLSigner

    from haicap.edxml import PackageSpec, build_package
    from haicap.sandbox.province.signing import EDXML_SIGNATURE_PLACEHOLDER, sign_edxml

    spec = PackageSpec.new("000.00.00.H26", "UBND", [("000.00.01.H26", "Xa")], 7, notation="UBND-VP")
    if cred is None:
        return build_package(spec)
    package = build_package(replace(spec, signature=EDXML_SIGNATURE_PLACEHOLDER))
    if reference is None:
        return asyncio.run(sign_edxml(package, cred))
    package = package.replace(f"<{id_on}>".encode(), f'<{id_on} Id="{reference}">'.encode(), 1)
    signed = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256).sign(
        etree.fromstring(package), key=cred.key_pem(), cert=cred.pem_chain(), reference_uri=f"#{reference}")
    return etree.tostring(signed)  # type: ignore[no-any-return]


def _edxml_verdict(ca: TestCA, data: bytes) -> object:
    from haicap.axis_contract import axis_contract

    envelope = f"{{{axis_contract().namespace}}}edXMLEnvelope"
    return verify_document(data, _trust(ca), _now(), whole_document=False, parts=(envelope,))


def test_edxml_signed_over_the_package_or_the_envelope_is_valid(ca: TestCA, ec_cred: OfficerCredential) -> None:
    from haicap.edxml import read_package

    whole = _edxml(ec_cred)
    assert read_package(whole).document_id  # the signed package is still a valid package for the axis
    assert read_package(whole).signed and not read_package(_edxml(None)).signed  # the ds:Signature is seen
    assert b"<edXMLHeader>" in whole and b"</TraceHeaderList><ds:Signature" in whole  # where x-edxml.signature says
    for data in (whole, _edxml(ec_cred, "envelope", "edXMLEnvelope")):
        verdict = _edxml_verdict(ca, data)
        assert verdict.ok, verdict.summary()  # type: ignore[attr-defined]


def test_edxml_fragment_or_changed_header_is_rejected(ca: TestCA, ec_cred: OfficerCredential) -> None:
    from haicap.conformance.checks.signatures import edxml_findings

    fragment = _edxml_verdict(ca, _edxml(ec_cred, "subject", "Subject"))
    assert fragment.kinds() == {Kind.BAD_SIGNATURE}, fragment.summary()  # type: ignore[attr-defined]
    assert "a fragment of the content" in fragment.summary()  # type: ignore[attr-defined]
    changed = _edxml(ec_cred).replace(b"</Subject>", b" (sua)</Subject>", 1)
    lines = edxml_findings("000.00.00.H26,2026/12/02,7/UBND-VP", _edxml_verdict(ca, changed))  # type: ignore[arg-type]
    assert lines and lines[0].startswith("000.00.00.H26,2026/12/02,7/UBND-VP: bad-signature: "), lines
    unsigned = _edxml_verdict(ca, _edxml(None))
    assert unsigned.kinds() == {Kind.UNSIGNED}, unsigned.summary()  # type: ignore[attr-defined]
