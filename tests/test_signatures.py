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


# -- independent producers (signxml and pyHanko used as another province would) -----------------------
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
ROOTED = b'<KetQuaGiaiQuyet Id="doc"><MaHoSo>000.00.00.H26-250701-0001</MaHoSo><KetQua loai="1">Chap thuan</KetQua>' \
         b'</KetQuaGiaiQuyet>'


def _signed(cred: OfficerCredential, signer: object = None, *, uri: str | None = None,
            pems: list[str] | None = None) -> bytes:
    """ROOTED signed by ``signer`` (default: signxml's XAdESSigner with an algorithm for the key)."""
    from lxml import etree
    from signxml.xades import XAdESSigner

    if signer is None:
        ec_key = isinstance(cred.key, ec.EllipticCurvePrivateKey)
        signer = XAdESSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256 if ec_key else SignatureMethod.RSA_SHA256)
    signed = signer.sign(etree.fromstring(ROOTED), key=cred.key_pem(),  # type: ignore[attr-defined]
                         cert=pems or cred.pem_chain(), reference_uri=uri)
    return etree.tostring(signed)  # type: ignore[no-any-return]


def _ou_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Co yeu Chinh phu"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Cuc Chung thuc so"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: x509.Name, key: object, issuer: x509.Name, issuer_key: object, *, ca: bool,
          usage: x509.KeyUsage | None = None) -> x509.Certificate:
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key())  # type: ignore[attr-defined]
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ou_ca() -> tuple[Trust, OfficerCredential]:
    """A CA of our own whose names carry an OU (signxml's legacy SigningCertificate writes the issuer's OU), with
    an RSA officer through a subordinate CA."""
    root_key, sub_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert(_ou_name("Root"), root_key, _ou_name("Root"), root_key, ca=True)
    sub = _cert(_ou_name("Sub"), sub_key, _ou_name("Root"), root_key, ca=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _cert(_subject(), key, _ou_name("Sub"), sub_key, ca=False)

    def crl(issuer: x509.Certificate, issuer_key: object) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
                .last_update(_now() - timedelta(hours=1)).next_update(_now() + timedelta(days=1))
                .sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))  # type: ignore[arg-type]

    from cryptography.hazmat.primitives import serialization

    trust = Trust.load([root.public_bytes(serialization.Encoding.PEM)], [crl(sub, sub_key), crl(root, root_key)])
    return trust, OfficerCredential(key, leaf, [sub])


@pytest.mark.parametrize("legacy", [False, True])
def test_signxml_xades_default_and_with_the_legacy_signing_certificate_are_valid(
        ou_ca: tuple[Trust, OfficerCredential], legacy: bool) -> None:
    """signxml's legacy option adds SigningCertificate (SHA-1 CertDigest, one per certificate, after V2) beside
    SigningCertificateV2; signxml 5.2's own verifier refuses both present. Neither the order nor the SHA-1
    CertDigest beside a SHA-256 V2 is a finding."""
    from signxml.xades import XAdESSigner

    trust, cred = ou_ca
    signer = XAdESSigner()
    signer.use_deprecated_legacy_signing_certificate = legacy
    data = _signed(cred, signer)
    assert (b"SigningCertificate>" in data) is legacy and b"SigningCertificateV2" in data
    result = verify_document(data, trust, _now())
    assert result.ok, result.summary()


def _xades_signer(edit: object, **kwargs: object) -> object:
    """signxml's XAdESSigner whose SignedSignatureProperties ``edit`` changes before they are digested."""
    from signxml.xades import XAdESSigner

    class Edited(XAdESSigner):  # type: ignore[misc]
        def add_signing_certificate(self, properties: object, sig_root: object, signing_settings: object) -> None:
            super().add_signing_certificate(properties, sig_root, signing_settings)
            edit(properties)  # type: ignore[operator]

    return Edited(**kwargs)


def test_a_sha1_certdigest_as_the_only_signing_certificate_reference_is_weak(
        ou_ca: tuple[Trust, OfficerCredential]) -> None:
    def only_v1(properties: object) -> None:
        properties.remove(properties.find(f"{{{XADES_NS}}}SigningCertificateV2"))  # type: ignore[attr-defined]

    trust, cred = ou_ca
    signer = _xades_signer(only_v1)
    signer.use_deprecated_legacy_signing_certificate = True  # type: ignore[attr-defined]
    found = verify_document(_signed(cred, signer), trust, _now())
    assert found.kinds() == {Kind.WEAK_ALGORITHM} and "CertDigest" in found.summary(), found.summary()


def test_a_signing_certificate_property_naming_another_certificate_is_rejected(ca: TestCA,
                                                                                ec_cred: OfficerCredential) -> None:
    """Certificate substitution: SigningCertificateV2 names only the subordinate CA, not the signer."""
    def only_ca(properties: object) -> None:
        v2 = properties.find(f"{{{XADES_NS}}}SigningCertificateV2")  # type: ignore[attr-defined]
        v2.remove(v2[0])

    signer = _xades_signer(only_ca, signature_algorithm=SignatureMethod.ECDSA_SHA256)
    found = verify_document(_signed(ec_cred, signer), _trust(ca), _now())
    assert found.kinds() == {Kind.BAD_SIGNATURE} and "signing certificate" in found.summary(), found.summary()


def _exclusive_signer(xades: bool) -> object:
    """A producer that signs with exclusive c14n and says so in every Reference (signxml's XAdESSigner digests
    SignedProperties with exclusive c14n but writes no Transform, so XML-DSig §4.4.3.2's default, inclusive
    C14N 1.0, applies and its own output does not verify: a signxml signer defect, rightly rejected)."""
    from signxml import CanonicalizationMethod, XMLSigner
    from signxml.xades import XAdESSigner

    exclusive = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0

    class Exclusive(XAdESSigner if xades else XMLSigner):  # type: ignore[misc]
        def _add_reference_to_signed_info(self, sig_root: object, node: object, **attrs: object) -> None:
            from lxml import etree

            super()._add_reference_to_signed_info(sig_root, node, **attrs)
            reference = self._find(sig_root, "SignedInfo").findall(f"{{{DS_NS}}}Reference")[-1]
            transforms = etree.Element(f"{{{DS_NS}}}Transforms")
            etree.SubElement(transforms, f"{{{DS_NS}}}Transform", Algorithm=exclusive.value)
            reference.insert(0, transforms)

    return Exclusive(signature_algorithm=SignatureMethod.ECDSA_SHA256, c14n_algorithm=exclusive)


@pytest.mark.parametrize("uri", [None, "#doc"])
@pytest.mark.parametrize("c14n", ["exclusive", "inclusive-1.0", "inclusive-1.1"])
@pytest.mark.parametrize("xades", [False, True])
def test_exclusive_and_inclusive_c14n_over_the_document_or_its_root_id_are_valid(
        ca: TestCA, ec_cred: OfficerCredential, uri: str | None, c14n: str, xades: bool) -> None:
    from signxml import CanonicalizationMethod, XMLSigner
    from signxml.xades import XAdESSigner

    if c14n == "exclusive":
        signer = _exclusive_signer(xades)
    else:
        method = CanonicalizationMethod.CANONICAL_XML_1_0 if c14n == "inclusive-1.0" \
            else CanonicalizationMethod.CANONICAL_XML_1_1
        signer = (XAdESSigner if xades else XMLSigner)(signature_algorithm=SignatureMethod.ECDSA_SHA256,
                                                       c14n_algorithm=method)
    result = verify_document(_signed(ec_cred, signer, uri=uri), _trust(ca), _now())
    assert result.ok, result.summary()


def _issued(ca: TestCA, key: object, usage: x509.KeyUsage | None = None) -> OfficerCredential:
    cert = _cert(_subject(), key, ca.sub.cert.subject, ca.sub.key, ca=False, usage=usage)
    return OfficerCredential(key, cert, [ca.sub.cert])


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
], ids=["p384", "rsa3072", "rsa4096"])
def test_other_key_types_and_a_signer_without_key_usage_are_valid(ca: TestCA, make: object) -> None:
    cred = _issued(ca, make())  # type: ignore[operator]
    for data in (_signed(cred), sign_xml(ROOTED, cred, xades=False)):
        result = verify_document(data, _trust(ca), _now())
        assert result.ok, result.summary()


@pytest.mark.parametrize("order", ["reversed", "root-first"])
def test_x509data_with_the_chain_in_any_order_is_valid(ca: TestCA, ec_cred: OfficerCredential, order: str) -> None:
    """signxml writes SigningCertificateV2 in the order of the chain it is given: the signer need not be first
    (EN 319 132-1 §5.2.2 asks a reference to the signing certificate, not its position)."""
    root = ca.root_pem().decode()
    pems = list(reversed(ec_cred.pem_chain())) if order == "reversed" else [root, *ec_cred.pem_chain()]
    for xades in (True, False):
        from signxml import XMLSigner

        signer = None if xades else XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256)
        result = verify_document(_signed(ec_cred, signer, pems=pems), _trust(ca), _now())
        assert result.ok, result.summary()


def _timed(text: str, **kwargs: object) -> object:
    def set_time(properties: object) -> None:
        properties.find(f"{{{XADES_NS}}}SigningTime").text = text  # type: ignore[attr-defined]

    return _xades_signer(set_time, signature_algorithm=SignatureMethod.ECDSA_SHA256, **kwargs)


def test_signing_time_with_an_offset_and_fractional_seconds(ca: TestCA, ec_cred: OfficerCredential) -> None:
    from datetime import timezone

    moment = (_now() - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=7)))
    result = verify_document(_signed(ec_cred, _timed(moment.isoformat(timespec="microseconds"))), _trust(ca), _now())
    assert result.ok and result.signing_time == moment, result.summary()
    local = verify_document(_signed(ec_cred, _timed(moment.replace(tzinfo=None).isoformat(timespec="seconds"))),
                            _trust(ca), _now())  # no time zone: the province's clock, Viet Nam time
    assert local.ok and local.signing_time == moment.replace(microsecond=0), local.summary()
    future = (_now() + timedelta(hours=1)).astimezone(timezone(timedelta(hours=7))).isoformat(timespec="milliseconds")
    found = verify_document(_signed(ec_cred, _timed(future)), _trust(ca), _now())
    assert found.kinds() == {Kind.SIGNING_TIME}, found.summary()


def test_signer_key_usage_without_digital_signature_or_non_repudiation(ca: TestCA) -> None:
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)  # keyEncipherment only
    found = verify_document(_signed(_issued(ca, ec.generate_private_key(ec.SECP256R1()), usage)), _trust(ca), _now())
    assert found.kinds() == {Kind.KEY_USAGE}, found.summary()


def test_every_signature_of_the_document_must_verify(ca: TestCA, ec_cred: OfficerCredential) -> None:
    """A broken ds:Signature beside a good one is a finding, whichever comes first (signxml verifies the first
    only). A second enveloped signature also changes what the first signed, so both are reported."""
    import copy

    from lxml import etree

    good = etree.fromstring(_signed(ec_cred))
    broken = copy.deepcopy(good.find(f"{{{DS_NS}}}Signature"))
    value = broken.find(f"{{{DS_NS}}}SignatureValue")
    value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    for where in (0, len(good)):
        document = copy.deepcopy(good)
        document.insert(where, copy.deepcopy(broken))
        found = verify_document(etree.tostring(document), _trust(ca), _now())
        assert Kind.BAD_SIGNATURE in found.kinds(), found.summary()
        assert f"ds:Signature {1 if where == 0 else 2} of 2: the signature does not verify" in found.summary()


def test_a_broken_signature_hidden_in_the_unsigned_properties_is_a_finding(ca: TestCA,
                                                                           ec_cred: OfficerCredential) -> None:
    """A ds:Signature inside another (where a XAdES CounterSignature goes) is verified too, without the
    whole-document rule: it signs the outer signature. The outer stays valid (its enveloped transform drops all
    of itself); the copy put inside does not verify."""
    import copy

    from lxml import etree

    document = etree.fromstring(_signed(ec_cred))
    outer = document.find(f"{{{DS_NS}}}Signature")
    inner = etree.fromstring(etree.tostring(copy.deepcopy(outer)).replace(b"SignXML", b"Counter"))  # own Ids
    properties = outer.find(f".//{{{XADES_NS}}}QualifyingProperties")
    etree.SubElement(etree.SubElement(etree.SubElement(properties, f"{{{XADES_NS}}}UnsignedProperties"),
                                      f"{{{XADES_NS}}}UnsignedSignatureProperties"),
                     f"{{{XADES_NS}}}CounterSignature").append(inner)
    found = verify_document(etree.tostring(document), _trust(ca), _now())
    assert found.kinds() == {Kind.BAD_SIGNATURE} and found.summary().startswith("bad-signature: ds:Signature 2 of 2")


def test_signature_wrapping_with_the_signed_root_moved_into_an_object(ca: TestCA, ec_cred: OfficerCredential) -> None:
    import copy

    from lxml import etree
    from signxml import CanonicalizationMethod, XMLSigner

    signer = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = etree.fromstring(_signed(ec_cred, signer, uri="#doc"))
    signature = signed.find(f"{{{DS_NS}}}Signature")
    original = copy.deepcopy(signed)
    original.remove(original.find(f"{{{DS_NS}}}Signature"))
    forged = etree.fromstring(b'<KetQuaGiaiQuyet Id="forged"><KetQua loai="1">Tu choi</KetQua></KetQuaGiaiQuyet>')
    etree.SubElement(signature, f"{{{DS_NS}}}Object").append(original)
    forged.append(signature)
    found = verify_document(etree.tostring(forged), _trust(ca), _now())
    assert found.kinds() == {Kind.BAD_SIGNATURE} and "not the whole document" in found.summary(), found.summary()


@pytest.mark.parametrize(("old", "new"), [
    (b"<ds:SignatureValue>", b"<ds:SignatureValue>!!"),
    (b"<ds:DigestValue>", b"<ds:DigestValue>%%"),
    (b"<ds:X509Certificate>", b"<ds:X509Certificate>QUFBQQ=="),
])
def test_malformed_base64_in_the_signature_is_malformed(ca: TestCA, ec_cred: OfficerCredential, old: bytes,
                                                        new: bytes) -> None:
    """A lenient base64 decoder skips '!' and verifies the rest: the value is not ds:CryptoBinary, a finding."""
    found = verify_document(_signed(ec_cred).replace(old, new, 1), _trust(ca), _now())
    assert Kind.MALFORMED in found.kinds(), found.summary()


def test_a_signature_without_signed_info_is_malformed(ca: TestCA) -> None:
    for body in (b"", b"<ds:KeyInfo/>"):
        data = b'<a><ds:Signature xmlns:ds="' + DS_NS.encode() + b'">' + body + b"</ds:Signature></a>"
        assert verify_document(data, _trust(ca), _now()).kinds() == {Kind.MALFORMED}


def _form_pdf() -> bytes:
    """A one-page PDF with a text field (the document number a later revision fills)."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    name, numbers = generic.pdf_name, (lambda *v: generic.ArrayObject([generic.NumberObject(n) for n in v]))
    writer = PdfFileWriter()
    writer.insert_page(generic.DictionaryObject({
        name("/Type"): name("/Page"), name("/MediaBox"): numbers(0, 0, 595, 842),
        name("/Resources"): generic.DictionaryObject(),
        name("/Contents"): writer.add_object(generic.StreamObject(stream_data=b"0 0 1 rg 50 700 200 50 re f"))}))
    page = writer.root["/Pages"]["/Kids"][0]
    field = writer.add_object(generic.DictionaryObject({
        name("/FT"): name("/Tx"), name("/T"): generic.TextStringObject("SoVanBan"), name("/Type"): name("/Annot"),
        name("/Subtype"): name("/Widget"), name("/Rect"): numbers(50, 600, 250, 620), name("/P"): page,
        name("/F"): generic.NumberObject(4), name("/DA"): generic.TextStringObject("/Helv 10 Tf 0 g")}))
    page.get_object()[name("/Annots")] = generic.ArrayObject([field])
    writer.root[name("/AcroForm")] = generic.DictionaryObject({name("/Fields"): generic.ArrayObject([field])})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _fill(signed: bytes, value: str) -> bytes:
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    name = generic.pdf_name
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    field = writer.root["/AcroForm"]["/Fields"][0].get_object()
    field[name("/V")] = generic.TextStringObject(value)
    field[name("/AP")] = generic.DictionaryObject({name("/N"): writer.add_object(generic.StreamObject(
        {name("/Type"): name("/XObject"), name("/Subtype"): name("/Form"),
         name("/BBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 200, 20)])},
        stream_data=f"BT /Helv 10 Tf 2 5 Td ({value}) Tj ET".encode()))})
    writer.update_container(field)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_form_filled_in_a_later_revision_then_signed_again_is_valid(ca: TestCA,
                                                                        ec_cred: OfficerCredential) -> None:
    filled = _fill(asyncio.run(sign_pdf(_form_pdf(), ec_cred)), "123/QD-UBND")
    for data in (filled, asyncio.run(sign_pdf(filled, ec_cred, field_name="ChuKyLanhDao"))):
        result = verify_document(data, _trust(ca), _now())
        assert result.ok, result.summary()
    found = verify_document(rewrite_page_after_signing(filled), _trust(ca), _now())
    assert found.kinds() == {Kind.MODIFIED}, found.summary()


def test_intermediates_in_xades_certificate_values_are_used(ca: TestCA, ec_cred: OfficerCredential) -> None:
    """XAdES B-LT producers carry the path in the unsigned CertificateValues, KeyInfo only the signer."""
    from cryptography.hazmat.primitives import serialization
    from lxml import etree

    leaf_only = [ec_cred.pem_chain()[0]]
    document = etree.fromstring(_signed(ec_cred, pems=leaf_only))
    found = verify_document(etree.tostring(document), _trust(ca), _now())
    assert found.kinds() == {Kind.UNTRUSTED}, found.summary()
    properties = document.find(f".//{{{XADES_NS}}}QualifyingProperties")
    unsigned = etree.SubElement(etree.SubElement(properties, f"{{{XADES_NS}}}UnsignedProperties"),
                                f"{{{XADES_NS}}}UnsignedSignatureProperties")
    values = etree.SubElement(unsigned, f"{{{XADES_NS}}}CertificateValues")
    etree.SubElement(values, f"{{{XADES_NS}}}EncapsulatedX509Certificate").text = base64.b64encode(
        ca.sub.cert.public_bytes(serialization.Encoding.DER)).decode()
    result = verify_document(etree.tostring(document), _trust(ca), _now())
    assert result.ok and len(result.chain) == 3, result.summary()


def test_a_valid_countersignature_nested_in_the_unsigned_properties_is_valid(ca: TestCA,
                                                                             ec_cred: OfficerCredential) -> None:
    """A second officer countersigns (ETSI EN 319 132-1 §5.4.2, CounterSignature): a detached signature over the
    first SignatureValue, put in the first signature's UnsignedSignatureProperties (exclusive c14n: made outside the
    context it is moved into; inclusive c14n would take in the namespaces of its new ancestors)."""
    from lxml import etree
    from signxml import CanonicalizationMethod, SignatureConstructionMethod, XMLSigner

    document = etree.fromstring(_signed(ec_cred))
    outer = document.find(f"{{{DS_NS}}}Signature")
    outer.find(f"{{{DS_NS}}}SignatureValue").set("Id", "sv-1")
    document = etree.fromstring(etree.tostring(document))
    counter = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.ECDSA_SHA256,
                        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,  # moved after
                        ).sign(document, key=ec_cred.key_pem(), cert=ec_cred.pem_chain(), reference_uri="#sv-1")
    properties = document.find(f"{{{DS_NS}}}Signature/{{{DS_NS}}}Object/{{{XADES_NS}}}QualifyingProperties")
    etree.SubElement(etree.SubElement(etree.SubElement(properties, f"{{{XADES_NS}}}UnsignedProperties"),
                                      f"{{{XADES_NS}}}UnsignedSignatureProperties"),
                     f"{{{XADES_NS}}}CounterSignature").append(counter)
    result = verify_document(etree.tostring(document), _trust(ca), _now())
    assert result.ok, result.summary()


def test_an_unrelated_certificate_before_the_signer_in_keyinfo(ca: TestCA, ec_cred: OfficerCredential) -> None:
    """The signer is the end-entity certificate whose chain reaches a trust anchor, not merely the first."""
    from cryptography.hazmat.primitives import serialization
    from signxml import XMLSigner

    key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert(_subject("Cong ty Khac"), key, _subject("Cong ty Khac"), key, ca=False)
    pems = [stranger.public_bytes(serialization.Encoding.PEM).decode(), *ec_cred.pem_chain()]
    for signer in (None, XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256)):
        result = verify_document(_signed(ec_cred, signer, pems=pems), _trust(ca), _now())
        assert result.ok and "Nguyen Van An" in str(result.signer), result.summary()
