"""A test certification authority in the shape of the government specialised CA, generated per run.

Officers sign documents and results with certificates of the Government Cipher Committee's specialised CA
(Law on Electronic Transactions 2023 art. 22; Decree 23/2025/NĐ-CP). Its policy OIDs and revocation addresses
are not public, so the counterpart plays a CA of the same name shape: a root ``C=VN, O=Ban Co yeu Chinh phu,
CN=Co quan chung thuc so Chinh phu`` and a subordinate CA under it, ECDSA P-256 keys made when the counterpart
starts (never written to disk, never committed). Provinces enrol an officer key with a CSR (``POST /ca/enrol``),
the CA publishes one DER CRL per CA (RFC 5280 §5) at ``/ca/crl/{root,sub}.der`` and its root at ``/ca/root.pem``;
a subscriber may ask for its own certificate's revocation with a proof of possession (``POST /ca/revocations``),
and haicap revokes any certificate through the control API (``POST /_control/ca/revoke``).

A test CA may issue a certificate for a validity window the request names (``not_before``/``not_after``), so a
province can be tested with a certificate that is expired or not yet valid; a production CA would not.

Example::

    ca = TestCA()
    cert = ca.issue(csr)              # an x509.Certificate issued by the subordinate CA
    ca.revoke(cert.serial_number)
    ca.crl("sub")                     # DER bytes listing it
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

__all__ = ["ROOT_NAME", "SUB_NAME", "CaRefusal", "TestCA", "revocation_proof"]

ROOT_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Co yeu Chinh phu"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Co quan chung thuc so Chinh phu"),
])
SUB_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Co yeu Chinh phu"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Co quan chung thuc so chuyen dung Chinh phu (thu nghiem)"),
])
#: how far a requested validity window may reach from now (a test CA's only limit)
MAX_WINDOW = timedelta(days=3 * 366)
DEFAULT_VALIDITY = timedelta(days=365)
_REASONS = {r.name: r for r in x509.ReasonFlags}


class CaRefusal(ValueError):
    """An enrolment or revocation request the CA refuses: ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class _Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def revocation_proof(key: Any, serial: int) -> str:
    """The subscriber's proof of possession for a revocation request: its signature over ``revoke <serial hex>``."""
    message = f"revoke {serial:x}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def _ca_cert(name: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: _Authority | None, path_length: int,
             now: datetime) -> x509.Certificate:
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


class TestCA:
    """Root and subordinate CA, the certificates issued and those revoked (thread-safe)."""

    __test__ = False  # not a pytest test class

    def __init__(self, crl_base_url: str = "", now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _Authority(root_key, _ca_cert(ROOT_NAME, root_key, None, 1, now))
        sub_key = ec.generate_private_key(ec.SECP256R1())
        self.sub = _Authority(sub_key, _ca_cert(SUB_NAME, sub_key, self.root, 0, now))
        self.crl_base_url = crl_base_url.rstrip("/")
        self._issued: dict[int, x509.Certificate] = {}
        self._revoked: dict[int, tuple[datetime, x509.ReasonFlags | None]] = {}
        self._lock = threading.Lock()

    # -- enrolment -----------------------------------------------------------------------------------
    def issue(self, csr: x509.CertificateSigningRequest, *, not_before: datetime | None = None,
              not_after: datetime | None = None) -> x509.Certificate:
        """An officer certificate for ``csr`` (validated: its signature, subject C=VN with CN and O, an EC key
        on P-256/P-384/P-521 or RSA of 2048 bits or more), valid from ``not_before`` to ``not_after``."""
        _validate_csr(csr)
        now = datetime.now(UTC)
        start = not_before or now - timedelta(minutes=5)
        end = not_after or start + DEFAULT_VALIDITY
        if start >= end:
            raise CaRefusal("not_after", "not_after must be later than not_before")
        if abs(start - now) > MAX_WINDOW or abs(end - now) > MAX_WINDOW:
            raise CaRefusal("not_before", "the validity window reaches more than three years from now")
        builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.sub.cert.subject)
                   .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.sub.key.public_key()),
                                  critical=False))
        if self.crl_base_url:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{self.crl_base_url}/ca/crl/sub.der")],
                                           None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        cert = builder.sign(self.sub.key, hashes.SHA256())
        with self._lock:
            self._issued[cert.serial_number] = cert
        return cert

    # -- revocation ----------------------------------------------------------------------------------
    def revoke(self, serial: int, *, at: datetime | None = None, reason: str | None = None) -> datetime:
        """Revoke an issued certificate (from ``at``, default now); the revocation time."""
        if serial not in self._issued:
            raise CaRefusal("serial", f"no certificate with serial {serial:x} was issued by this CA")
        if reason is not None and reason not in _REASONS:
            raise CaRefusal("reason", f"unknown reason {reason!r} (RFC 5280 §5.3.1: {', '.join(_REASONS)})")
        when = (at or datetime.now(UTC)).replace(microsecond=0)
        with self._lock:
            self._revoked.setdefault(serial, (when, _REASONS.get(reason or "")))
            return self._revoked[serial][0]

    def revoke_by_subscriber(self, cert_pem: str, proof: str) -> datetime:
        """The subscriber revokes its own certificate: ``proof`` = :func:`revocation_proof` with its key."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
            signature = base64.b64decode(proof, validate=True)
        except ValueError as exc:
            raise CaRefusal("certificate", f"not a PEM certificate and a base64 proof: {exc}") from None
        issued = self._issued.get(cert.serial_number)
        if issued is None or issued != cert:
            raise CaRefusal("certificate", "this CA did not issue that certificate")
        message = f"revoke {cert.serial_number:x}".encode()
        key = cert.public_key()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            else:
                raise CaRefusal("certificate", "unsupported key type")
        except InvalidSignature:
            raise CaRefusal("proof", "the proof does not verify with the certificate's key") from None
        return self.revoke(cert.serial_number, reason="key_compromise")

    def crl(self, which: str = "sub") -> bytes:
        """The current CRL (DER) of the subordinate CA (``sub``: the officer certificates) or of the root."""
        authority = self.sub if which == "sub" else self.root
        now = datetime.now(UTC).replace(microsecond=0)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(authority.cert.subject)
                   .last_update(now - timedelta(seconds=1)).next_update(now + timedelta(days=1))
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                                  critical=False))
        if which == "sub":
            with self._lock:
                revoked = dict(self._revoked)
            for serial, (when, reason) in sorted(revoked.items()):
                entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
                if reason is not None:
                    entry = entry.add_extension(x509.CRLReason(reason), critical=False)
                builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def root_pem(self) -> bytes:
        return self.root.cert.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        """The subordinate CA's certificate (what a signer includes besides its own)."""
        return self.sub.cert.public_bytes(serialization.Encoding.PEM)

    def describe(self) -> dict[str, Any]:
        return {"root": self.root.cert.subject.rfc4514_string(), "sub": self.sub.cert.subject.rfc4514_string(),
                "issued": len(self._issued), "revoked": sorted(f"{s:x}" for s in self._revoked)}


def _validate_csr(csr: x509.CertificateSigningRequest) -> None:
    if not csr.is_signature_valid:
        raise CaRefusal("csr", "the CSR's signature does not verify (no proof of possession)")
    for oid, label in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O")):
        if not csr.subject.get_attributes_for_oid(oid):
            raise CaRefusal("csr", f"the subject has no {label} (an officer certificate names the person and agency)")
    country = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)]
    if country != ["VN"]:
        raise CaRefusal("csr", f"the subject's C must be VN, not {country or 'absent'}")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CaRefusal("csr", f"an RSA key of {key.key_size} bits (2048 or more needed)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise CaRefusal("csr", f"curve {key.curve.name} (P-256, P-384 or P-521 needed)")
    else:
        raise CaRefusal("csr", f"unsupported key type {type(key).__name__}")


def _when(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise CaRefusal(name, f"{value!r} is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CaApi:
    """The CA's HTTP face: public enrolment, publication and revocation; :attr:`control_routes` go behind the
    control token."""

    def __init__(self, ca: TestCA) -> None:
        from haicap.contract_registry import default_registry

        self.ca = ca
        self._enrol = default_registry().validator("signatures.schema.json#/$defs/EnrolRequest")
        self._subscriber = default_registry().validator("signatures.schema.json#/$defs/RevocationRequest")
        self._revoke = default_registry().validator("signatures.schema.json#/$defs/ControlRevokeRequest")

    @property
    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [
            Route("/ca/root.pem", self.root, methods=["GET"]),
            Route("/ca/chain.pem", self.chain, methods=["GET"]),
            Route("/ca/crl/{which}.der", self.crl, methods=["GET"]),
            Route("/ca/enrol", self.enrol, methods=["POST"]),
            Route("/ca/revocations", self.subscriber_revocation, methods=["POST"]),
        ]

    @property
    def control_routes(self) -> list[Any]:
        from starlette.routing import Route

        return [Route("/_control/ca/revoke", self.control_revoke, methods=["POST"]),
                Route("/_control/ca", self.describe, methods=["GET"])]

    async def _body(self, request: Any, validator: Any) -> dict[str, Any]:
        from haicap.sandbox.national.problems import valid_body

        return await valid_body(request, validator, detail="invalid CA request")

    @staticmethod
    def _refused(exc: CaRefusal) -> Exception:
        from haicap.sandbox.national.problems import ProblemError

        return ProblemError(400, "Bad Request", str(exc), [{"field": exc.field, "message": str(exc)}])

    async def root(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(self.ca.root_pem(), media_type="application/x-pem-file")

    async def chain(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(self.ca.chain_pem(), media_type="application/x-pem-file")

    async def crl(self, request: Any) -> Any:
        from starlette.responses import Response

        which = request.path_params["which"]
        if which not in ("root", "sub"):
            return Response(status_code=404)
        return Response(self.ca.crl(which), media_type="application/pkix-crl")

    async def enrol(self, request: Any) -> Any:
        from haicap.sandbox.national.problems import JSONResponse

        body = await self._body(request, self._enrol)
        try:
            csr = x509.load_pem_x509_csr(body["csr"].encode())
        except ValueError as exc:
            raise self._refused(CaRefusal("csr", f"not a PEM certificate signing request: {exc}")) from None
        try:
            cert = self.ca.issue(csr, not_before=_when(body, "not_before"), not_after=_when(body, "not_after"))
        except CaRefusal as exc:
            raise self._refused(exc) from None
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return JSONResponse({"certificate": pem, "chain": [self.ca.chain_pem().decode()],
                             "serial": f"{cert.serial_number:x}"}, status_code=201)

    async def subscriber_revocation(self, request: Any) -> Any:
        from haicap.sandbox.national.problems import JSONResponse

        body = await self._body(request, self._subscriber)
        try:
            when = self.ca.revoke_by_subscriber(body["certificate"], body["proof"])
        except CaRefusal as exc:
            raise self._refused(exc) from None
        return JSONResponse({"revoked_at": when.isoformat()})

    async def control_revoke(self, request: Any) -> Any:
        from haicap.sandbox.national.problems import JSONResponse

        body = await self._body(request, self._revoke)
        try:
            when = self.ca.revoke(int(body["serial"], 16), at=_when(body, "revoked_at"), reason=body.get("reason"))
        except CaRefusal as exc:
            raise self._refused(exc) from None
        return JSONResponse({"serial": body["serial"], "revoked_at": when.isoformat()})

    async def describe(self, request: Any) -> Any:
        from haicap.sandbox.national.problems import JSONResponse

        return JSONResponse(self.ca.describe())
