"""XML-RPC as the log shows it: an HTTP request that carries a call, and
an HTTP response that carries a value or a fault, decoded.

:class:`XmlRpcCall` *is* an HTTP request head (a subclass), with the
method name and parameters read from its body; :class:`XmlRpcReply` an
HTTP response head with the value or the fault.  So everything HTTP
does with them still works, and the summary and field tree speak
XML-RPC.  A body that does not decode keeps its ``problem``; a body
too large to arrive whole (more than 64 KiB) stays plain HTTP.

Tests: tests/protocols/test_xmlrpc.py
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from lab.protocols._base import Message, Pattern, escape_bytes
from lab.protocols.http._messages import HttpHead, HttpRequestHead, HttpResponseHead
from lab.protocols.xmlrpc._codec import Call, Fault, XmlRpcDecodeError, format_datetime, loads

__all__ = ["XmlRpcCall", "XmlRpcReply", "as_call", "as_reply", "plain", "value_text", "value_tree"]

MAX_NODES = 200  # values a field tree shows
MAX_TEXT = 200  # characters of one string it shows


def value_tree(value: Any, budget: list[int] | None = None) -> Any:
    """A value as a bounded tree for the detail view: at most
    :data:`MAX_NODES` values, long strings and bytes cut, types shown
    where JSON-ish display would hide them."""
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        return "…"
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"… ({len(value)} characters)"
    if isinstance(value, (bytes, bytearray)):
        return f"base64: {len(value)} bytes {escape_bytes(bytes(value), 40)}"
    if isinstance(value, dt.datetime):
        return f"dateTime {format_datetime(value)}"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if budget[0] <= 0:
                out["…"] = f"{len(value) - len(out)} more members"
                break
            out[str(key)[:MAX_TEXT]] = value_tree(item, budget)
        return out
    if isinstance(value, (list, tuple)):
        items: list[Any] = []
        for item in value:
            if budget[0] <= 0:
                items.append(f"… {len(value) - len(items)} more")
                break
            items.append(value_tree(item, budget))
        return items
    return value


def value_text(value: Any, limit: int = 60) -> str:
    """A value in one short line, for summaries."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, (bytes, bytearray)):
        text = f"<{len(value)} bytes>"
    elif isinstance(value, dt.datetime):
        text = format_datetime(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {value_text(v, 20)}" for k, v in list(value.items())[:6]) + (
            ", …}" if len(value) > 6 else "}")
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(value_text(v, 20) for v in list(value)[:6]) + (", …]" if len(value) > 6 else "]")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class XmlRpcCall(HttpRequestHead):
    """A POST carrying a ``<methodCall>``: ``call`` is the method name,
    ``params`` the parameters; ``problem`` says why a body did not decode
    (``fault_code`` the fault it earns).  ``kind`` is the method name,
    so ``srv.on("add", fn)`` hooks one method."""

    call: str = ""
    params: tuple[Any, ...] = ()
    problem: str = ""
    fault_code: int | None = None

    @property
    def kind(self) -> str:
        return self.call or "xmlrpc-call"

    def summary(self) -> str:
        if self.problem:
            return f"XML-RPC call, undecodable: {self.problem[:100]}"
        calls = self.params[0] if self.call == "system.multicall" and len(self.params) == 1 else None
        if isinstance(calls, list):
            names = [c.get("methodName", "?") if isinstance(c, dict) else "?" for c in calls[:8]]
            more = ", …" if len(calls) > 8 else ""
            return f"XML-RPC call system.multicall of {len(calls)}: {', '.join(map(str, names))}{more}"
        args = ", ".join(value_text(p, 30) for p in self.params)
        return f"XML-RPC call {self.call}({args})"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call": self.call, "params": value_tree(list(self.params))}
        if self.problem:
            out = {"problem": self.problem, "fault_code": self.fault_code}
        out.update(HttpRequestHead.fields(self))  # flat: volatile names (date) are top-level
        return out

    def matches(self, pattern: Pattern) -> bool:
        # `expect s add` is about the method called
        if isinstance(pattern, str) and pattern == self.call:
            return True
        return HttpRequestHead.matches(self, pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class XmlRpcReply(HttpResponseHead):
    """A response carrying a ``<methodResponse>``: its ``value``, or a
    fault (``fault_code``, ``fault_string``); ``problem`` for a body that
    did not decode.  ``expect c 200`` is the HTTP status, ``expect c
    -32601`` (or ``"fault"``) a fault."""

    value: Any = None
    fault_code: int | None = None
    fault_string: str = ""
    problem: str = ""
    KIND: ClassVar[str] = "xmlrpc-reply"

    @property
    def fault(self) -> bool:
        return self.fault_code is not None

    def summary(self) -> str:
        if self.problem:
            return f"XML-RPC reply, undecodable ({self.status}): {self.problem[:100]}"
        if self.fault_code is not None:
            return f"XML-RPC fault {self.fault_code}: {self.fault_string[:100]}"
        return f"XML-RPC reply {value_text(self.value)}"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.problem:
            out = {"problem": self.problem}
        elif self.fault_code is not None:
            out = {"fault": {"faultCode": self.fault_code, "faultString": self.fault_string[:MAX_TEXT]}}
        else:
            out = {"value": value_tree(self.value)}
        out.update(HttpResponseHead.fields(self))  # flat: volatile names (date) are top-level
        return out

    def matches(self, pattern: Pattern) -> bool:
        if self.fault_code is not None:
            if pattern == "fault" or pattern == self.fault_code or pattern == str(self.fault_code):
                return True
        return HttpResponseHead.matches(self, pattern)


_BASE_FIELDS: dict[type, frozenset[str]] = {
    HttpRequestHead: frozenset(f.name for f in fields(HttpRequestHead)),
    HttpResponseHead: frozenset(f.name for f in fields(HttpResponseHead)),
}


def _copy(msg: HttpHead, cls: type[XmlRpcCall] | type[XmlRpcReply], **extra: Any) -> Any:
    """``msg`` as ``cls``, the XML-RPC view of its HTTP class, with ``extra`` fields."""
    base = HttpRequestHead if issubclass(cls, HttpRequestHead) else HttpResponseHead
    return cls(**{name: getattr(msg, name) for name in _BASE_FIELDS[base]}, **extra)


def plain(msg: Message) -> Message:
    """The HTTP message under an XML-RPC one (itself for any other)."""
    if isinstance(msg, XmlRpcCall):
        return HttpRequestHead(**{name: getattr(msg, name) for name in _BASE_FIELDS[HttpRequestHead]})
    if isinstance(msg, XmlRpcReply):
        return HttpResponseHead(**{name: getattr(msg, name) for name in _BASE_FIELDS[HttpResponseHead]})
    return msg


def as_call(msg: HttpRequestHead) -> Message:
    """A whole POST with a body, read as a call; anything else unchanged."""
    if type(msg) is not HttpRequestHead or msg.method != "POST" or not msg.complete or not msg.body:
        return msg
    try:
        got = loads(msg.body)
    except XmlRpcDecodeError as exc:
        return _copy(msg, XmlRpcCall, problem=str(exc), fault_code=exc.code)
    if not isinstance(got, Call):
        return _copy(msg, XmlRpcCall, problem="the body is a response, not a call", fault_code=-32600)
    return _copy(msg, XmlRpcCall, call=got.method, params=got.params)


def as_reply(msg: HttpResponseHead) -> Message:
    """A whole response holding a ``<methodResponse>``, read as a reply;
    anything else (a WSDL, an error page) unchanged."""
    if type(msg) is not HttpResponseHead or not msg.complete or b"methodResponse" not in msg.body[:512]:
        return msg
    try:
        got = loads(msg.body)
    except XmlRpcDecodeError as exc:
        return _copy(msg, XmlRpcReply, problem=str(exc))
    if isinstance(got, Fault):
        return _copy(msg, XmlRpcReply, fault_code=got.code, fault_string=got.string)
    if isinstance(got, Call):
        return msg
    return _copy(msg, XmlRpcReply, value=got.value)
