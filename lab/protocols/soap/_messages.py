"""SOAP as the log shows it: an HTTP request carrying an envelope, read
as the operation called and its parameters; an HTTP response read as
the operation's answer or a fault.  Both are subclasses of HTTP's heads,
so HTTP still sees HTTP.  Without the service's WSDL the values are read
untyped: text, or a dict of child elements.

Tests: tests/protocols/test_soap.py
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from lab.protocols._base import Message, Pattern
from lab.protocols.http._messages import HttpRequestHead, HttpResponseHead
from lab.protocols.soap._envelope import SoapDecodeError, loads_envelope
from lab.protocols.soap._schema import SchemaError, decode_element
from lab.protocols.xmlrpc._messages import MAX_TEXT, value_text, value_tree

__all__ = ["SoapReply", "SoapRequest", "as_reply", "as_request", "plain", "soap_view"]

_REQUEST_FIELDS = frozenset(f.name for f in fields(HttpRequestHead))
_RESPONSE_FIELDS = frozenset(f.name for f in fields(HttpResponseHead))


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapRequest(HttpRequestHead):
    """A POST carrying a SOAP envelope: ``operation`` (the body's first
    element), ``params`` read untyped, ``action`` (the SOAPAction
    header); ``problem`` when the envelope does not decode.  ``kind`` is
    the operation: ``srv.on("add", fn)``."""

    operation: str = ""
    params: Any = None
    action: str = ""
    problem: str = ""

    @property
    def kind(self) -> str:
        return self.operation or "soap-request"

    def summary(self) -> str:
        if self.problem:
            return f"SOAP request, undecodable: {self.problem[:100]}"
        if isinstance(self.params, dict):
            args = ", ".join(f"{k}={value_text(v, 30)}" for k, v in list(self.params.items())[:8])
        else:
            args = value_text(self.params, 60) if self.params else ""
        return f"SOAP {self.operation}({args})"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = ({"problem": self.problem} if self.problem else
                               {"operation": self.operation, "action": self.action,
                                "params": value_tree(self.params)})
        out.update(HttpRequestHead.fields(self))  # flat: volatile names (date) are top-level
        return out

    def matches(self, pattern: Pattern) -> bool:
        if isinstance(pattern, str) and pattern == self.operation:
            return True
        return HttpRequestHead.matches(self, pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapReply(HttpResponseHead):
    """A response carrying a SOAP envelope: the answer element and its
    value read untyped, or a fault (``fault_code`` such as ``Client``,
    ``fault_string``).  ``expect c 500`` is the status; ``expect c
    Client`` (or ``"fault"``) a fault."""

    element: str = ""
    value: Any = None
    fault_code: str = ""
    fault_string: str = ""
    problem: str = ""
    KIND: ClassVar[str] = "soap-reply"

    def summary(self) -> str:
        if self.problem:
            return f"SOAP reply, undecodable ({self.status}): {self.problem[:100]}"
        if self.fault_code:
            return f"SOAP fault {self.fault_code}: {self.fault_string[:100]}"
        return f"SOAP {self.element} {value_text(self.value)}"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.problem:
            out = {"problem": self.problem}
        elif self.fault_code:
            out = {"fault": {"faultcode": self.fault_code, "faultstring": self.fault_string[:MAX_TEXT]}}
        else:
            out = {"element": self.element, "value": value_tree(self.value)}
        out.update(HttpResponseHead.fields(self))  # flat: volatile names (date) are top-level
        return out

    def matches(self, pattern: Pattern) -> bool:
        if self.fault_code and pattern in ("fault", self.fault_code):
            return True
        return HttpResponseHead.matches(self, pattern)


def _untyped(el: Any) -> Any:
    try:
        return decode_element(el, None)
    except (SchemaError, RecursionError):
        return None


def as_request(msg: HttpRequestHead) -> Message:
    """A whole POST holding an envelope, read as SOAP; anything else unchanged."""
    if type(msg) is not HttpRequestHead or msg.method != "POST" or not msg.complete or not msg.body:
        return msg
    base = {name: getattr(msg, name) for name in _REQUEST_FIELDS}
    action = (msg.header("soapaction") or "").strip('"')
    try:
        envelope = loads_envelope(msg.body)
    except SoapDecodeError as exc:
        return SoapRequest(**base, action=action, problem=str(exc))
    body = envelope.body
    return SoapRequest(**base, operation=envelope.operation, action=action,
                       params=_untyped(body) if body is not None else None)


def as_reply(msg: HttpResponseHead) -> Message:
    """A whole response holding an envelope, read as SOAP; anything else
    (a WSDL, an error page) unchanged."""
    if type(msg) is not HttpResponseHead or not msg.complete or b"Envelope" not in msg.body[:1024]:
        return msg
    base = {name: getattr(msg, name) for name in _RESPONSE_FIELDS}
    try:
        envelope = loads_envelope(msg.body)
    except SoapDecodeError as exc:
        return SoapReply(**base, problem=str(exc))
    if envelope.fault is not None:
        return SoapReply(**base, fault_code=envelope.fault.code, fault_string=envelope.fault.string)
    body = envelope.body
    return SoapReply(**base, element=envelope.operation, value=_untyped(body) if body is not None else None)


def plain(msg: Message) -> Message:
    """The HTTP message under a SOAP one (itself for any other)."""
    if isinstance(msg, SoapRequest):
        return HttpRequestHead(**{name: getattr(msg, name) for name in _REQUEST_FIELDS})
    if isinstance(msg, SoapReply):
        return HttpResponseHead(**{name: getattr(msg, name) for name in _RESPONSE_FIELDS})
    return msg


def soap_view(msg: Message) -> Message:
    """``msg`` as SOAP when it is a whole request or reply, else itself."""
    if type(msg) is HttpRequestHead:
        return as_request(msg)
    if type(msg) is HttpResponseHead:
        return as_reply(msg)
    return msg
