"""SOAP 1.1 envelopes (W3C Note, 8 May 2000): a request or response
``<Envelope>`` with an optional ``<Header>`` and a ``<Body>``, and
``<Fault>`` with its four codes (VersionMismatch, MustUnderstand,
Client, Server).  Parsed through defusedxml with depth and element caps.

Tests: tests/protocols/test_soap.py
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from lab.errors import LabError
from lab.protocols.xmlrpc._codec import _NOT_XML
from lab.protocols.xmlrpc._xml import XmlRefused, local_name, parse_xml, xml_text

__all__ = [
    "SOAP_ENV",
    "Envelope",
    "SoapDecodeError",
    "SoapFault",
    "dumps_envelope",
    "dumps_fault",
    "loads_envelope",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
FAULT_CODES = ("VersionMismatch", "MustUnderstand", "Client", "Server")


class SoapFault(LabError):
    """A SOAP fault: ``code`` (``Client``, ``Server``, ...: the local part
    of the faultcode), ``string`` and an optional ``detail`` text."""

    def __init__(self, code: str, string: str, detail: str | None = None, actor: str | None = None) -> None:
        super().__init__(f"SOAP fault {code}: {string}")
        self.code = code
        self.string = string
        self.detail = detail
        self.actor = actor


class SoapDecodeError(LabError):
    """Bytes that are not a SOAP 1.1 envelope; ``code`` is the fault a
    server answers with, ``bomb`` True for hostile XML."""

    def __init__(self, message: str, *, code: str = "Client", bomb: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.bomb = bomb


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: its header entries, the first element of its body
    (None for an empty body) and, for a fault, the fault."""

    headers: tuple[ET.Element, ...] = ()
    body: ET.Element | None = None
    fault: SoapFault | None = None
    extra: tuple[ET.Element, ...] = field(default=())  # body elements after the first

    @property
    def operation(self) -> str:
        """The local name of the body's first element ("" when empty)."""
        return local_name(self.body.tag) if self.body is not None else ""

    def must_understand(self) -> list[str]:
        """Header entries marked ``mustUnderstand="1"`` (SOAP 1.1 §4.2.3)."""
        return [local_name(h.tag) for h in self.headers if h.get(f"{{{SOAP_ENV}}}mustUnderstand") in ("1", "true")]


def dumps_envelope(body: str, header: str = "") -> bytes:
    """An envelope around ``body`` (and ``header``), both XML text."""
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (f"<?xml version='1.0' encoding='utf-8'?>\n<soap:Envelope xmlns:soap=\"{SOAP_ENV}\">"
            f"{head}<soap:Body>{body}</soap:Body></soap:Envelope>\n").encode()


def dumps_fault(code: str, string: str, detail: str | None = None) -> bytes:
    """A fault envelope; ``code`` is one of SOAP 1.1's four (or a dotted
    refinement of one, ``Client.Authentication``)."""
    text = xml_text(_NOT_XML.sub("?", string))
    more = f"<detail>{xml_text(_NOT_XML.sub('?', detail))}</detail>" if detail else ""
    return dumps_envelope(f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring>"
                          f"{more}</soap:Fault>")


def _fault(el: ET.Element) -> SoapFault:
    parts = {local_name(k.tag): k for k in el}
    code = (parts["faultcode"].text or "").strip() if "faultcode" in parts else ""
    string = (parts["faultstring"].text or "") if "faultstring" in parts else ""
    detail_el = parts.get("detail")
    detail = None
    if detail_el is not None:
        detail = "".join(detail_el.itertext()).strip() or None
    actor = parts["faultactor"].text if "faultactor" in parts else None
    return SoapFault(code.rpartition(":")[2] or "Server", string, detail, actor)


def loads_envelope(data: bytes) -> Envelope:
    """An envelope from its bytes; :class:`SoapDecodeError` for anything
    else (``VersionMismatch`` for another envelope namespace, SOAP 1.1
    §4.4)."""
    try:
        root = parse_xml(data)
    except XmlRefused as exc:
        raise SoapDecodeError(str(exc), bomb=exc.bomb) from None
    if local_name(root.tag) != "Envelope":
        raise SoapDecodeError(f"expected a SOAP <Envelope>, got <{local_name(root.tag)}>")
    ns = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    if ns != SOAP_ENV:
        which = "SOAP 1.2" if ns == SOAP12_ENV else repr(ns or "no namespace")
        raise SoapDecodeError(f"this service speaks SOAP 1.1, the envelope is {which}", code="VersionMismatch")
    kids = list(root)
    headers: tuple[ET.Element, ...] = ()
    if kids and kids[0].tag == f"{{{SOAP_ENV}}}Header":
        headers = tuple(kids[0])
        kids = kids[1:]
    if not kids or kids[0].tag != f"{{{SOAP_ENV}}}Body":
        raise SoapDecodeError("the envelope has no <Body>")
    entries = list(kids[0])
    if not entries:
        return Envelope(headers)
    first = entries[0]
    if first.tag == f"{{{SOAP_ENV}}}Fault":
        return Envelope(headers, first, _fault(first))
    return Envelope(headers, first, None, tuple(entries[1:]))
