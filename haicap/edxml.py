"""edXML packages and status messages of the document axis (QCVN 102:2016/BTTTT): build, read safely, vary.

Everything a party sends over the axis is untrusted: :func:`parse_xml` uses lxml with no network access, no
entity resolution, no DTD loading and ``huge_tree`` off, refuses any DOCTYPE (entity expansion) and oversized
input. :func:`read_package` and :func:`read_status` judge a message against the contract
(``haicap/axis_contract.py``: element paths, required elements, DocumentId and timestamp formats, manifest
references and base64 attachments by cid) and raise :class:`EdxmlError` with a ``kind`` and a reason that a
status 02 can carry. :func:`build_package` writes a package from a string template (fast enough for the load
pools), :func:`variant` derives the malformed and the must-accept packages the checks deliver.

The ``Signature`` element (XML-DSig) is optional and not verified here: that is the signatures criterion's seam.

Example::

    spec = PackageSpec.new("000.00.00.G03", "Bộ Nội vụ", [("000.00.00.H26", "UBND Hà Nội")], number=12)
    package = read_package(build_package(spec))
    package.document_id        # '000.00.00.G03,2026/12/02,12/CV'
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from haicap.axis_contract import AxisContract, axis_contract
from haicap.errors import HaicapError
from haicap.vn_time import VN_TZ

__all__ = [
    "ACCEPT_VARIANTS",
    "MALFORMED_VARIANTS",
    "MAX_BYTES",
    "EdxmlError",
    "Package",
    "PackageSpec",
    "StatusMessage",
    "build_package",
    "build_status",
    "parse_xml",
    "read_package",
    "read_status",
    "variant",
]

#: the largest message read (bytes): attachments of a document, not a denial of service
MAX_BYTES = 8 * 1024 * 1024
_MAX_ATTACHMENTS = 100
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          dtd_validation=False, remove_pis=True, collect_ids=False)
_ORGAN = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[GH][0-9]{2}$")


class EdxmlError(HaicapError):
    """A message that is not a valid edXML package or status message: ``kind`` and the reason (for a 02)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# -- reading ---------------------------------------------------------------------------------------
def parse_xml(data: bytes | str) -> Any:
    """The root element of untrusted XML, or EdxmlError (not-xml, doctype, too-large)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_BYTES:
        raise EdxmlError("too-large", f"the message is {len(raw)} bytes, more than {MAX_BYTES}")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise EdxmlError("not-xml", f"not well-formed XML: {exc}"[:300]) from None
    except ValueError as exc:
        raise EdxmlError("not-xml", f"not XML: {exc}"[:300]) from None
    if root is None:
        raise EdxmlError("not-xml", "no XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise EdxmlError("doctype", "a DOCTYPE (DTD, entities) is not allowed in an edXML message")
    return root


def _q(contract: AxisContract, path: str) -> str:
    return "/".join(f"{{{contract.namespace}}}{part}" for part in path.split("/"))


#: XML-DSig's namespace: the DigitalSignature of an edXML package is a ``ds:Signature`` (axis.schema.json
#: ``x-edxml.signature_note``)
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


def _signed(root: Any, contract: AxisContract) -> bool:
    """A ``ds:Signature`` (or an edXML-namespace Signature element) sits where the contract puts the signature."""
    path = contract.paths.get("signature", "Signature")
    parent_path, _, name = path.rpartition("/")
    parent = root.find(_q(contract, parent_path)) if parent_path else root
    if parent is None:
        return False
    return parent.find(f"{{{XMLDSIG_NS}}}{name}") is not None or parent.find(_q(contract, name)) is not None


def _text(root: Any, contract: AxisContract, path: str) -> str | None:
    node = root.find(_q(contract, path))
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def _check_root(root: Any, contract: AxisContract, name: str) -> None:
    expected = f"{{{contract.namespace}}}{name}"
    if root.tag != expected:
        tag = str(root.tag)
        kind = "wrong-namespace" if tag.rpartition("}")[2] == name else "wrong-root"
        raise EdxmlError(kind, f"the root element is {tag}, expected {expected}")


@dataclass(frozen=True, slots=True)
class Package:
    """What a valid edXML package says (the fields the axis and the checks use)."""

    document_id: str
    from_organ: str
    from_name: str
    to_organs: tuple[str, ...]
    code_number: str
    code_notation: str
    promulgation_date: str
    subject: str
    trace_organ: str
    trace_timestamp: str
    #: ContentId → (AttachmentName, ContentType, decoded size)
    attachments: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    signed: bool = False


def _bare_cid(value: str | None) -> str:
    text = (value or "").strip()
    return text[4:] if text.lower().startswith("cid:") else text


def _attachments(root: Any, contract: AxisContract) -> dict[str, tuple[str, str, int]]:
    refs: dict[str, tuple[str, str]] = {}
    for ref in root.iterfind(_q(contract, contract.paths["manifest_reference"])):
        cid = _bare_cid(ref.findtext(_q(contract, "ContentId")) or ref.get("href"))
        if not cid:
            raise EdxmlError("reference-without-cid", "an edXMLManifest Reference has no ContentId (cid)")
        refs[cid] = (ref.findtext(_q(contract, "AttachmentName")) or "",
                     ref.findtext(_q(contract, "ContentType")) or "")
    found: dict[str, tuple[str, str, int]] = {}
    for attachment in root.iterfind(_q(contract, contract.paths["attachment"])):
        if len(found) >= _MAX_ATTACHMENTS:
            raise EdxmlError("too-many-attachments", f"more than {_MAX_ATTACHMENTS} attachments")
        cid = _bare_cid(attachment.findtext(_q(contract, "ContentId")))
        if cid not in refs:
            raise EdxmlError("attachment-not-in-manifest",
                             f"attachment cid:{cid} is not referenced by the edXMLManifest")
        value = "".join((attachment.findtext(_q(contract, "Value")) or "").split())
        try:
            size = len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise EdxmlError("bad-base64", f"attachment cid:{cid} is not valid base64") from None
        found[cid] = (*refs[cid], size)
    missing = sorted(set(refs) - set(found))
    if missing:
        raise EdxmlError("reference-without-attachment",
                         f"the edXMLManifest references cid:{missing[0]} but no attachment carries it")
    return found


def read_package(data: bytes | str, contract: AxisContract | None = None) -> Package:
    """The package in ``data``, or EdxmlError naming the first defect (for a status 02's Description)."""
    contract = contract or axis_contract()
    root = parse_xml(data)
    _check_root(root, contract, contract.root)
    for path in contract.required:
        if _text(root, contract, path) is None:
            raise EdxmlError("missing-element", f"required element {path} is missing or empty")
    header = contract.paths["message_header"]
    get = lambda path: _text(root, contract, f"{header}/{path}") or ""  # noqa: E731
    sender = get("From/OrganId")
    to_organs = tuple((node.text or "").strip() for node in root.iterfind(_q(contract, f"{header}/To/OrganId")))
    trace = contract.paths["trace_header"]
    trace_organ = _text(root, contract, f"{trace}/OrganId") or ""
    for where, organ in (("From/OrganId", sender), *(("To/OrganId", o) for o in to_organs),
                         ("TraceHeader/OrganId", trace_organ)):
        if not _ORGAN.fullmatch(organ):
            raise EdxmlError("bad-organ-id", f"{where} {organ!r} is not an agency identification code")
    date = get("PromulgationInfo/PromulgationDate")
    if not contract.formats["PromulgationDate"].valid(date):
        raise EdxmlError("bad-date", f"PromulgationDate {date!r} is not {contract.formats['PromulgationDate'].layout}")
    problem = contract.document_id_problem(get("DocumentId"), sender, date)
    if problem:
        raise EdxmlError("bad-document-id", problem)
    stamp = _text(root, contract, f"{trace}/Timestamp") or ""
    if not contract.formats["TraceTimestamp"].valid(stamp):
        raise EdxmlError("bad-timestamp",
                         f"TraceHeader Timestamp {stamp!r} is not {contract.formats['TraceTimestamp'].layout}")
    return Package(
        document_id=get("DocumentId"), from_organ=sender, from_name=get("From/OrganName"), to_organs=to_organs,
        code_number=get("Code/CodeNumber"), code_notation=get("Code/CodeNotation"), promulgation_date=date,
        subject=get("Subject"), trace_organ=trace_organ, trace_timestamp=stamp,
        attachments=_attachments(root, contract),
        signed=_signed(root, contract),
    )


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A status message: which document it answers, who sends it, the code and the time."""

    document_id: str
    response_organ: str
    from_organ: str
    code: str
    description: str
    timestamp: str
    #: format problems that do not stop the message being read (a timestamp not in the contract's layout)
    problems: tuple[str, ...] = ()


def read_status(data: bytes | str, contract: AxisContract | None = None) -> StatusMessage:
    """The status message in ``data`` (its format problems listed), or EdxmlError when it cannot be read."""
    contract = contract or axis_contract()
    root = parse_xml(data)
    _check_root(root, contract, contract.status_root)
    rejection = _text(root, contract, "StatusCode") == "02"  # a 02 may answer a package it could not read
    for path in contract.status_required:
        if _text(root, contract, path) is None and not (rejection and path.startswith("ResponseFor/")):
            raise EdxmlError("missing-element", f"required element {contract.status_root}/{path} is missing")
    get = lambda path: _text(root, contract, path) or ""  # noqa: E731
    code = get("StatusCode")
    if code not in contract.statuses:
        raise EdxmlError("bad-status-code", f"StatusCode {code!r} is not one of {', '.join(contract.statuses)}")
    problems: list[str] = []
    stamp = get("Timestamp")
    if not contract.formats["StatusTimestamp"].valid(stamp):
        problems.append(f"Timestamp {stamp!r} is not {contract.formats['StatusTimestamp'].layout}")
    problem = contract.document_id_problem(get("ResponseFor/DocumentId"))
    if problem and not rejection:
        problems.append(f"ResponseFor {problem}")
    return StatusMessage(document_id=get("ResponseFor/DocumentId"), response_organ=get("ResponseFor/OrganId"),
                         from_organ=get("From/OrganId"), code=code, description=get("Description"),
                         timestamp=stamp, problems=tuple(problems))


# -- building --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PackageSpec:
    """What :func:`build_package` writes; ``document_id`` and the dates are derived unless given."""

    from_organ: str
    from_name: str
    to: tuple[tuple[str, str], ...]
    number: int
    notation: str = "CV"
    subject: str = "Văn bản điện tử"
    content: str = ""
    promulgation_date: str = ""
    trace_timestamp: str = ""
    document_id: str = ""
    #: (ContentId, AttachmentName, ContentType, base64 value)
    attachments: tuple[tuple[str, str, str, str], ...] = ()
    #: raw XML inserted into MessageHeader (optional elements)
    extra_header: str = ""
    signature: str = ""

    @staticmethod
    def new(from_organ: str, from_name: str, to: Sequence[tuple[str, str]], number: int, *,
            moment: datetime | None = None, contract: AxisContract | None = None, **kw: Any) -> PackageSpec:
        contract = contract or axis_contract()
        now = (moment or datetime.now(VN_TZ)).astimezone(VN_TZ)
        date = contract.formats["PromulgationDate"].format(now)
        notation = kw.pop("notation", "CV")
        return PackageSpec(from_organ=from_organ, from_name=from_name, to=tuple(to), number=number,
                           notation=notation, promulgation_date=date,
                           trace_timestamp=contract.formats["TraceTimestamp"].format(now),
                           document_id=f"{from_organ},{date},{number}/{notation}", **kw)


def _organ_xml(tag: str, organ: str, name: str) -> str:
    return f"<{tag}><OrganId>{escape(organ)}</OrganId><OrganName>{escape(name)}</OrganName></{tag}>"


def build_package(spec: PackageSpec, contract: AxisContract | None = None) -> bytes:
    """The edXML package of ``spec`` (UTF-8); a template, not a DOM, so the load pools get thousands a second."""
    contract = contract or axis_contract()
    to = "".join(_organ_xml("To", organ, name) for organ, name in spec.to)
    refs = "".join(f"<Reference><ContentId>cid:{escape(cid)}</ContentId><AttachmentName>{escape(name)}"
                   f"</AttachmentName><ContentType>{escape(ctype)}</ContentType><Description>{escape(name)}"
                   "</Description></Reference>" for cid, name, ctype, _ in spec.attachments)
    files = "".join(f"<Attachment><ContentId>{escape(cid)}</ContentId><AttachmentName>{escape(name)}</AttachmentName>"
                    f"<ContentType>{escape(ctype)}</ContentType><Value>{value}</Value></Attachment>"
                    for cid, name, ctype, value in spec.attachments)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{contract.root} xmlns="{contract.namespace}"><edXMLEnvelope>'
        f"<edXMLHeader><MessageHeader>{_organ_xml('From', spec.from_organ, spec.from_name)}{to}"
        f"<Code><CodeNumber>{spec.number}</CodeNumber><CodeNotation>{escape(spec.notation)}</CodeNotation></Code>"
        f"<PromulgationInfo><Place>Hà Nội</Place><PromulgationDate>{spec.promulgation_date}</PromulgationDate>"
        "</PromulgationInfo><DocumentType><Type>1</Type><TypeName>Công văn</TypeName></DocumentType>"
        f"<Subject>{escape(spec.subject)}</Subject><Content>{escape(spec.content)}</Content>{spec.extra_header}"
        f"<DocumentId>{escape(spec.document_id)}</DocumentId></MessageHeader>"
        f"<TraceHeaderList><TraceHeader><OrganId>{escape(spec.from_organ)}</OrganId>"
        f"<Timestamp>{spec.trace_timestamp}</Timestamp></TraceHeader><Bussiness><BussinessDocType>0"
        f"</BussinessDocType></Bussiness></TraceHeaderList>{spec.signature}</edXMLHeader>"
        f"<edXMLBody><edXMLManifest>{refs}</edXMLManifest></edXMLBody></edXMLEnvelope>"
        f"<AttachmentEncoded>{files}</AttachmentEncoded></{contract.root}>"
    ).encode()


def build_status(document_id: str, response_organ: str, from_organ: str, code: str, *, description: str = "",
                 timestamp: str | None = None, contract: AxisContract | None = None) -> bytes:
    """A status message answering ``document_id`` (Timestamp now, dd/MM/yyyy HH:mm:ss, unless given)."""
    contract = contract or axis_contract()
    stamp = timestamp if timestamp is not None else contract.formats["StatusTimestamp"].format(datetime.now(VN_TZ))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{contract.status_root} xmlns="{contract.namespace}">'
        f"<ResponseFor><OrganId>{escape(response_organ)}</OrganId><DocumentId>{escape(document_id)}</DocumentId>"
        f"</ResponseFor><From><OrganId>{escape(from_organ)}</OrganId></From><StatusCode>{escape(code)}</StatusCode>"
        f"<Description>{escape(description)}</Description><Timestamp>{escape(stamp)}</Timestamp>"
        f"</{contract.status_root}>"
    ).encode()


# -- variants the checks deliver ---------------------------------------------------------------------
_PDF = base64.b64encode(b"%PDF-1.4\n% haicap test document\n%%EOF\n").decode()
_SAMPLE = (("att1", "van-ban.pdf", "application/pdf", _PDF),)


def _mutate(data: bytes, change: Callable[[Any, AxisContract], None]) -> bytes:
    contract = axis_contract()
    root = etree.fromstring(data, _PARSER)
    change(root, contract)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _drop(path: str) -> Callable[[bytes], bytes]:
    def drop(data: bytes) -> bytes:
        def change(root: Any, contract: AxisContract) -> None:
            node = root.find(_q(contract, path))
            if node is not None:
                node.getparent().remove(node)
        return _mutate(data, change)
    return drop


def _set(path: str, value: str) -> Callable[[bytes], bytes]:
    def set_text(data: bytes) -> bytes:
        def change(root: Any, contract: AxisContract) -> None:
            root.find(_q(contract, path)).text = value
        return _mutate(data, change)
    return set_text


def _wrong_namespace(data: bytes) -> bytes:
    return data.replace(axis_contract().namespace.encode(), b"http://example.invalid/edXML", 1)


def _doctype(data: bytes) -> bytes:
    body = data.split(b"?>", 1)[1]
    return (b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            + body.replace(b"<Content>", b"<Content>&b;", 1))


def _spec_variant(change: Callable[[PackageSpec], PackageSpec]) -> Callable[[PackageSpec], bytes]:
    return lambda spec: build_package(change(spec))


def _byte_variant(change: Callable[[bytes], bytes]) -> Callable[[PackageSpec], bytes]:
    return lambda spec: change(build_package(replace(spec, attachments=spec.attachments or _SAMPLE)))


def _missing_variants() -> dict[str, Callable[[PackageSpec], bytes]]:
    return {f"missing:{'/'.join(path.split('/')[-2:])}": _byte_variant(_drop(path))
            for path in axis_contract().required}


def _header(path: str) -> str:
    return f"{axis_contract().paths['message_header']}/{path}"


def _malformed() -> dict[str, Callable[[PackageSpec], bytes]]:
    contract = axis_contract()
    trace = contract.paths["trace_header"]
    return {
        "not-xml": lambda spec: build_package(spec)[: len(build_package(spec)) // 2],
        "not-edxml": lambda spec: b'<?xml version="1.0"?><html><body>not a package</body></html>',
        "wrong-namespace": _byte_variant(_wrong_namespace),
        "doctype-entities": _byte_variant(_doctype),
        **_missing_variants(),
        "document-id-separators": _spec_variant(lambda s: replace(
            s, document_id=s.document_id.replace(",", "-", 2))),
        "document-id-iso-date": _spec_variant(lambda s: replace(
            s, document_id=s.document_id.replace(s.promulgation_date, s.promulgation_date.replace("/", "-")))),
        "document-id-other-sender": _spec_variant(lambda s: replace(
            s, document_id=s.document_id.replace(s.from_organ, "000.00.00.G99", 1))),
        "document-id-no-notation": _spec_variant(lambda s: replace(
            s, document_id=s.document_id.rsplit("/", 1)[0])),
        "promulgation-date-format": _byte_variant(_set(_header("PromulgationInfo/PromulgationDate"), "02-12-2026")),
        "trace-timestamp-format": _byte_variant(_set(f"{trace}/Timestamp", "2026-12-02T10:00:00+07:00")),
        "organ-id-format": _byte_variant(_set(_header("From/OrganId"), "H26")),
        "attachment-not-in-manifest": _byte_variant(_drop(f"{contract.paths['manifest_reference']}")),
        "reference-without-attachment": _byte_variant(_drop(contract.paths["attachment"])),
        "bad-base64": _byte_variant(_set(f"{contract.paths['attachment']}/Value", "@@not*base64@@")),
    }


def _prefixed(data: bytes) -> bytes:
    """The same package with the edXML namespace on a prefix (``<edXML:edXML xmlns:edXML=…>``), not the default:
    XML Namespaces 1.0 makes the two the same document."""
    head, _, body = data.partition(b"?>")
    body = re.sub(rb"<(/?)([A-Za-z])", rb"<\1edXML:\2", body).replace(b' xmlns="', b' xmlns:edXML="', 1)
    return head + b"?>" + body


def _pretty(data: bytes) -> bytes:
    """The same package indented, with attachment values wrapped at 76 columns (as MIME base64 is)."""
    root = etree.fromstring(data, _PARSER)
    for value in root.iter(f"{{{axis_contract().namespace}}}Value"):
        text = value.text or ""
        value.text = "\n" + "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


_TYPES = (("a.pdf", "application/pdf"), ("b.docx", "application/vnd.openxmlformats-officedocument."
                                                "wordprocessingml.document"),
          ("c.zip", "application/zip"), ("d.xml", "text/xml"), ("e.bin", "application/octet-stream"),
          ("f.png", "image/png"))


def _accept() -> dict[str, Callable[[PackageSpec], bytes]]:
    extra = ("<SignerInfo><Competence>TM. UBND</Competence><Position>Chủ tịch</Position><FullName>Nguyễn Văn A"
             "</FullName></SignerInfo><DueDate>2026/12/31</DueDate><ToPlaces><Place>Lưu VT</Place></ToPlaces>"
             "<OtherInfo><Priority>0</Priority><PageAmount>1</PageAmount></OtherInfo><SteeringType>0"
             "</SteeringType><VendorExtension><Note>an element the contract does not name</Note></VendorExtension>")
    many = tuple((f"att{i}", name, ctype, _PDF) for i, (name, ctype) in enumerate(_TYPES))
    signature = ('<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/>'
                 "<SignatureValue>AAAA</SignatureValue></Signature>")
    return {
        "plain": _spec_variant(lambda s: s),
        "optional-elements": _spec_variant(lambda s: replace(s, extra_header=extra)),
        "attachments-any-type": _spec_variant(lambda s: replace(s, attachments=many)),
        "unverified-signature-element": _spec_variant(lambda s: replace(s, signature=signature)),
        "several-recipients": _spec_variant(lambda s: replace(s, to=(*s.to, ("000.00.00.G03", "Bộ Nội vụ")))),
        "namespace-prefix": _byte_variant(_prefixed),
        "pretty-printed": _byte_variant(_pretty),
    }


#: variant name → builder: each must be answered 02 (with a reason), never accepted, never a crash
MALFORMED_VARIANTS: dict[str, Callable[[PackageSpec], bytes]] = _malformed()
#: variant name → builder: each is a valid package (optional elements, any attachment type…) to accept
ACCEPT_VARIANTS: dict[str, Callable[[PackageSpec], bytes]] = _accept()


def variant(kind: str, spec: PackageSpec) -> bytes:
    """``valid``, ``malformed:<name>`` or ``accept:<name>`` for ``spec``; HaicapError for an unknown kind."""
    family, _, name = kind.partition(":")
    table = {"malformed": MALFORMED_VARIANTS, "accept": ACCEPT_VARIANTS}.get(family)
    if kind == "valid":
        return build_package(replace(spec, attachments=spec.attachments or _SAMPLE))
    if table is None or name not in table:
        raise HaicapError(f"unknown edXML variant {kind!r} (valid, malformed:{'|'.join(MALFORMED_VARIANTS)}, "
                          f"accept:{'|'.join(ACCEPT_VARIANTS)})")
    return table[name](spec)
