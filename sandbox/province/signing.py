"""The reference province signs its results: an officer key enrolled at the national test CA, XAdES and PAdES.

When an officer completes a dossier (→ 9), the result documents — an XML decision and a PDF — are signed with
the officer's specialised certificate (Law on Electronic Transactions 2023 art. 22): the XML with an enveloped
XAdES-BES signature (ETSI EN 319 132, ``signxml``), the PDF with a PAdES B-B signature (ETSI EN 319 142,
``pyHanko``), SHA-256 and ECDSA P-256. The key is made when the first result is signed and the certificate is
obtained by a CSR at the counterpart's CA (``POST {national}/ca/enrol``), as an agency enrols with the CA. The
results travel in ``DanhSachGiayToKetQua`` (``TepKetQuaKySo``, contracts/schemas/signatures.schema.json).

The signature faults switch here: ``result-modified-after-signing``, ``result-signed-sha1``,
``result-signer-self-signed``, ``result-signer-expired``, ``result-signer-revoked``,
``result-signed-before-not-before``, ``result-signer-dissolved-agency``, ``result-unsigned``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from haicap.sandbox.national.test_ca import ROOT_NAME, revocation_proof
from haicap.signatures import ascii_fold

__all__ = ["EDXML_SIGNATURE_PLACEHOLDER", "OfficerCredential", "ResultSigner", "minimal_pdf", "result_signer",
           "rewrite_page_after_signing", "sign_edxml", "sign_pdf", "sign_xml"]

OFFICER = "Nguyen Van An"
#: Bytes reserved in the PDF for the CMS signature (an ECDSA P-256 signature with a 3-certificate chain needs about
#: 2.5 KiB): given, pyHanko need not make a dummy signature first to estimate it, which halves the signing cost.
PDF_SIGNATURE_RESERVE = 8192
SIGNATURE_FAULTS = frozenset({"result-modified-after-signing", "result-signed-sha1", "result-signer-self-signed",
                              "result-signer-expired", "result-signer-revoked", "result-signed-before-not-before",
                              "result-signer-dissolved-agency", "result-unsigned"})


class OfficerCredential:
    """A signing key, its certificate and the chain to include (the CA's intermediates)."""

    def __init__(self, key: Any, cert: x509.Certificate, chain: list[x509.Certificate]) -> None:
        self.key = key
        self.cert = cert
        self.chain = chain
        self._pdf_signers: dict[bool, Any] = {}

    def pem_chain(self) -> list[str]:
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in [self.cert, *self.chain]]

    def pdf_signer(self, prefer_pss: bool = False) -> Any:
        """pyHanko's signer for this credential, made once (building it re-encodes the certificates: slow)."""
        from asn1crypto import keys as asn1_keys
        from asn1crypto import x509 as asn1_x509
        from pyhanko.sign import signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        cached = self._pdf_signers.get(prefer_pss)
        if cached is None:
            def der(cert: x509.Certificate) -> Any:
                return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

            key = asn1_keys.PrivateKeyInfo.load(self.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            store = SimpleCertificateStore.from_certs([der(c) for c in self.chain])
            cached = signers.SimpleSigner(signing_cert=der(self.cert), signing_key=key, prefer_pss=prefer_pss,
                                          cert_registry=store)
            self._pdf_signers[prefer_pss] = cached
        return cached

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def sign_xml(document: bytes, credential: OfficerCredential, *, sha1: bool = False, xades: bool = True,
             method: Any = None, digest: Any = None) -> bytes:
    """An enveloped XML-DSig (XAdES-BES with ``xades``) signature over the whole document; ``method``/``digest``
    (signxml ``SignatureMethod``/``DigestAlgorithm``) default to SHA-256 with the key's algorithm."""
    from lxml import etree
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner
    from signxml.xades import XAdESSigner

    root = etree.fromstring(document)
    if method is None:
        if isinstance(credential.key, ec.EllipticCurvePrivateKey):
            method = SignatureMethod.ECDSA_SHA1 if sha1 else SignatureMethod.ECDSA_SHA256
        else:
            method = SignatureMethod.RSA_SHA1 if sha1 else SignatureMethod.RSA_SHA256
    digest = digest or (DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256)
    signer_class: type[XMLSigner] = XAdESSigner if xades else XMLSigner
    if sha1:  # the defect of result-signed-sha1: a legacy signer (signxml refuses SHA-1 by default)
        signer_class = type("LegacySha1Signer", (signer_class,), {"check_deprecated_methods": lambda self: None})
    signer = signer_class(signature_algorithm=method, digest_algorithm=digest)
    signed = signer.sign(root, key=credential.key_pem(), cert=credential.pem_chain())
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")  # type: ignore[no-any-return]


#: where the edXML signature goes (contracts/schemas/axis.schema.json ``x-edxml.signature``): signxml replaces a
#: ``ds:Signature Id="placeholder"`` with the enveloped signature and leaves it out of the digest
EDXML_SIGNATURE_PLACEHOLDER = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'


async def sign_edxml(package: bytes, credential: OfficerCredential) -> bytes:
    """An edXML package (built with :data:`EDXML_SIGNATURE_PLACEHOLDER` in its header) signed with an enveloped
    XAdES-BES signature over the whole package (URI="", so the attachments too), SHA-256; off the serving loop."""
    return await asyncio.to_thread(sign_xml, package, credential)


def minimal_pdf(title: str) -> bytes:
    """A one-page PDF (pyHanko's writer) whose Info title and page name the result."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    name = generic.pdf_name
    writer = PdfFileWriter()
    content = writer.add_object(generic.StreamObject(stream_data=b"0 0 1 rg 50 700 200 50 re f"))
    writer.insert_page(generic.DictionaryObject({
        name("/Type"): name("/Page"),
        name("/MediaBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)]),
        name("/Resources"): generic.DictionaryObject(),
        name("/Contents"): content,
    }))
    writer.set_info(generic.DictionaryObject({name("/Title"): generic.TextStringObject(title)}))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


async def sign_pdf(document: bytes, credential: OfficerCredential, *, md_algorithm: str = "sha256",
                   prefer_pss: bool = False, field_name: str = "ChuKyCanBo") -> bytes:
    """A PAdES B-B signature (ETSI EN 319 142-1) over the whole PDF."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    signer = credential.pdf_signer(prefer_pss)
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm=md_algorithm,
                                        subfilter=SigSeedSubFilter.PADES)

    def sign() -> bytes:  # pyHanko's CPU-bound work (~10 ms), off the serving loop so other requests interleave
        pdf_signer = signers.PdfSigner(meta, signer)
        out = pdf_signer.sign_pdf(IncrementalPdfFileWriter(BytesIO(document)), bytes_reserved=PDF_SIGNATURE_RESERVE)
        return out.getvalue()  # type: ignore[no-any-return]

    return await asyncio.to_thread(sign)


def rewrite_page_after_signing(signed: bytes) -> bytes:
    """The defect of ``result-modified-after-signing`` for a PDF: an incremental update replaces the page."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"1 0 0 rg 50 600 300 80 re f"))
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _self_signed(key: Any, subject: x509.Name) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ROOT_NAME).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))


class ResultSigner:
    """The province's officer credential (enrolled once, on first use) and the signed results it makes."""

    def __init__(self, national_url: str, province_name: str, faults: Collection[str] = (),
                 legacy_district: str = "") -> None:
        self.national_url = national_url.rstrip("/")
        self.province_name = ascii_fold(province_name).title()
        self.faults = frozenset(faults)
        self.legacy_district = legacy_district
        self._credential: OfficerCredential | None = None
        self._lock = asyncio.Lock()

    def _subject(self) -> x509.Name:
        agency = f"UBND {ascii_fold(self.legacy_district).title()}" if "result-signer-dissolved-agency" in self.faults \
            and self.legacy_district else f"UBND {self.province_name}"
        return x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, OFFICER),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Trung tam Phuc vu hanh chinh cong"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, self.province_name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ])

    async def credential(self) -> OfficerCredential:
        async with self._lock:
            if self._credential is None:
                self._credential = await self._enrol()
            return self._credential

    async def _enrol(self) -> OfficerCredential:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = self._subject()
        if "result-signer-self-signed" in self.faults:  # the defect: a certificate no CA issued
            return OfficerCredential(key, _self_signed(key, subject), [])
        body: dict[str, Any] = {"csr": x509.CertificateSigningRequestBuilder().subject_name(subject)
                                .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()}
        now = datetime.now(UTC)
        if "result-signer-expired" in self.faults:
            body.update(not_before=(now - timedelta(days=400)).isoformat(),
                        not_after=(now - timedelta(days=30)).isoformat())
        if "result-signed-before-not-before" in self.faults:
            body.update(not_before=(now + timedelta(days=1)).isoformat(),
                        not_after=(now + timedelta(days=366)).isoformat())
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = (await client.post(f"{self.national_url}/ca/enrol", json=body)).raise_for_status().json()
            cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
            chain = [x509.load_pem_x509_certificate(p.encode()) for p in answer["chain"]]
            if "result-signer-revoked" in self.faults:  # the key was compromised; the province keeps using it
                revoked = await client.post(f"{self.national_url}/ca/revocations", json={
                    "certificate": answer["certificate"], "proof": revocation_proof(key, cert.serial_number)})
                revoked.raise_for_status()
        return OfficerCredential(key, cert, chain)

    async def results(self, dossier: dict[str, Any]) -> list[dict[str, Any]]:
        """The dossier's signed result documents, as ``DanhSachGiayToKetQua`` items."""
        ma = str(dossier.get("MaHoSo", ""))
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><KetQuaGiaiQuyet><MaHoSo>{ma}</MaHoSo>'
               f'<MaTTHC>{dossier.get("MaTTHC", "")}</MaTTHC><KetQua>Chap thuan</KetQua></KetQuaGiaiQuyet>').encode()
        pdf = minimal_pdf(f"Ket qua giai quyet ho so {ma}")
        if "result-unsigned" not in self.faults:
            credential = await self.credential()
            xml = sign_xml(xml, credential, sha1="result-signed-sha1" in self.faults)
            pdf = await sign_pdf(pdf, credential)
            if "result-modified-after-signing" in self.faults:
                xml = xml.replace(b"<KetQua>Chap thuan</KetQua>", b"<KetQua>Tu choi</KetQua>")
                pdf = await asyncio.to_thread(rewrite_page_after_signing, pdf)
        return [_item(f"{ma}-QD", "Quyet dinh giai quyet (XML)", "xml", xml),
                _item(f"{ma}-KQ", "Ket qua giai quyet (PDF)", "pdf", pdf)]


def _item(ident: str, name: str, kind: str, data: bytes) -> dict[str, Any]:
    return {"TenGiayTo": name, "GiayToId": ident, "MaGiayToKetQua": ident,
            "TepKetQuaKySo": {"DinhDang": kind, "NoiDung": base64.b64encode(data).decode(),
                              "TenTep": f"{ident}.{kind}"}}


def result_signer(config: Any) -> ResultSigner:
    """The signer of a reference province (``ProvinceConfig``): its province's name, and for the dissolved-agency
    fault a district of the pre-merger provinces it absorbed."""
    from haicap.data_generators.units import admin_units

    units = admin_units()
    old = units.province_merges().get(config.province_code) or (config.province_code,)
    wards = units.legacy_wards(old[0])
    return ResultSigner(config.national_url, units.province(config.province_code).name, config.faults,
                        legacy_district=wards[0].district_name if wards else "")
