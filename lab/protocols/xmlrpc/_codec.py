"""The XML-RPC codec: Python values to ``<value>`` elements and back,
calls, responses and faults (the XML-RPC specification, with the
``<nil/>`` and ``<i8>`` extensions that Python, Apache and Twisted
speak).

=====================  ===========================================
XML-RPC                Python
=====================  ===========================================
int, i4 (32-bit)       int
i8 (64-bit)            int (sent as i8 beyond 32 bits)
double                 float (finite only)
boolean                bool
string, bare text      str
nil                    None
dateTime.iso8601       datetime.datetime (naive, as the spec has it)
base64                 bytes
struct                 dict[str, value]
array                  list (a tuple is sent as an array)
=====================  ===========================================

Nothing here does I/O.  Bytes from the network go through
:func:`~lab.protocols.xmlrpc._xml.parse_xml` (defusedxml, depth and
element caps); what cannot be decoded raises :class:`XmlRpcDecodeError`
with the fault code a server answers it with.

Tests: tests/protocols/test_xmlrpc.py
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from lab.errors import LabError
from lab.protocols.xmlrpc._xml import XmlRefused, local_name, parse_xml, xml_text

__all__ = [
    "APPLICATION_ERROR",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_XMLRPC",
    "METHOD_NOT_FOUND",
    "NOT_WELLFORMED",
    "Call",
    "Fault",
    "Response",
    "Value",
    "XmlRpcDecodeError",
    "XmlRpcFault",
    "dumps_call",
    "dumps_fault",
    "dumps_response",
    "encode_value",
    "format_datetime",
    "loads",
    "loads_call",
    "loads_response",
]

# fault codes of the "specification for fault code interoperability"
# (xmlrpc-epi), which Python's xmlrpc.client and most servers share
NOT_WELLFORMED = -32700
INVALID_XMLRPC = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
APPLICATION_ERROR = -32500

INT32 = (-(2**31), 2**31 - 1)
# each level is three elements (value, array, data / struct, member, value); with
# the document's own four, this stays within what the parser takes (MAX_DEPTH)
MAX_NESTING = 19
INT64 = (-(2**63), 2**63 - 1)

Value = Union[int, float, bool, str, None, bytes, dt.datetime, list["Value"], dict[str, "Value"]]  # noqa: UP007

# characters XML 1.0 cannot carry, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_METHOD_NAME = re.compile(r"[A-Za-z0-9_.:/]+")
# the spec's form, and the dashed one some servers send
_DATE = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})T([0-9]{2}):?([0-9]{2}):?([0-9]{2})")


class XmlRpcFault(LabError):
    """A fault the server answered with (``code``, ``string``)."""

    def __init__(self, code: int, string: str) -> None:
        super().__init__(f"XML-RPC fault {code}: {string}")
        self.code = code
        self.string = string


class XmlRpcDecodeError(LabError):
    """Bytes that are not an XML-RPC document; ``code`` is the fault a
    server answers them with, ``bomb`` True for hostile XML."""

    def __init__(self, message: str, *, code: int = INVALID_XMLRPC, bomb: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.bomb = bomb


@dataclass(frozen=True, slots=True)
class Call:
    """A ``<methodCall>``: the method's name and its parameters."""

    method: str
    params: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Response:
    """A ``<methodResponse>`` with one value."""

    value: Any


@dataclass(frozen=True, slots=True)
class Fault:
    """A ``<methodResponse>`` holding a ``<fault>``."""

    code: int
    string: str


# -- encoding ---------------------------------------------------------------------------


def _check_text(text: str) -> str:
    bad = _NOT_XML.search(text)
    if bad:
        raise ValueError(f"XML cannot carry the character U+{ord(bad.group()):04X}")
    return xml_text(text)


def format_datetime(value: dt.datetime) -> str:
    """``YYYYMMDDTHH:MM:SS``, the year always four digits (strftime's %Y
    is not, before 1000)."""
    return (f"{value.year:04d}{value.month:02d}{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")


def _encode(value: Any, out: list[str], depth: int, seen: set[int]) -> None:
    if depth > MAX_NESTING:
        raise ValueError(f"a value nested deeper than {MAX_NESTING} arrays or structs")
    if value is None:
        out.append("<value><nil/></value>")
    elif isinstance(value, bool):
        out.append(f"<value><boolean>{int(value)}</boolean></value>")
    elif isinstance(value, int):
        if INT32[0] <= value <= INT32[1]:
            out.append(f"<value><int>{value}</int></value>")
        elif INT64[0] <= value <= INT64[1]:
            out.append(f"<value><i8>{value}</i8></value>")
        else:
            raise ValueError(f"an integer beyond 64 bits: {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"XML-RPC has no {value}")
        out.append(f"<value><double>{value!r}</double></value>")
    elif isinstance(value, str):
        out.append(f"<value><string>{_check_text(value)}</string></value>")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(f"<value><base64>{base64.b64encode(bytes(value)).decode('ascii')}</base64></value>")
    elif isinstance(value, dt.datetime):
        out.append(f"<value><dateTime.iso8601>{format_datetime(value)}</dateTime.iso8601></value>")
    elif isinstance(value, (list, tuple, Mapping)):
        if id(value) in seen:
            raise ValueError("a value that contains itself")
        seen.add(id(value))
        if isinstance(value, Mapping):
            out.append("<value><struct>")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"a struct member name must be a string, not {type(key).__name__}")
                out.append(f"<member><name>{_check_text(key)}</name>")
                _encode(item, out, depth + 1, seen)
                out.append("</member>")
            out.append("</struct></value>")
        else:
            out.append("<value><array><data>")
            for item in value:
                _encode(item, out, depth + 1, seen)
            out.append("</data></array></value>")
        seen.discard(id(value))
    else:
        raise ValueError(f"XML-RPC cannot carry a {type(value).__name__}")


def encode_value(value: Any) -> str:
    """One ``<value>`` element; :class:`ValueError` for what XML-RPC
    cannot carry (NaN, a 65-bit integer, a set, a NUL character)."""
    out: list[str] = []
    _encode(value, out, 0, set())
    return "".join(out)


_HEAD = "<?xml version='1.0'?>\n"


def dumps_call(method: str, params: tuple[Any, ...] | list[Any] = ()) -> bytes:
    """A ``<methodCall>`` document."""
    if not _METHOD_NAME.fullmatch(method):
        raise ValueError(f"a method name is letters, digits and _.:/ only, not {method!r}")
    body = "".join(f"<param>{encode_value(p)}</param>" for p in params)
    return (f"{_HEAD}<methodCall><methodName>{method}</methodName>"
            f"<params>{body}</params></methodCall>\n").encode()


def dumps_response(value: Any) -> bytes:
    """A ``<methodResponse>`` with one value."""
    return (f"{_HEAD}<methodResponse><params><param>{encode_value(value)}</param></params>"
            "</methodResponse>\n").encode()


def dumps_fault(code: int, string: str) -> bytes:
    """A ``<methodResponse>`` holding a fault."""
    fault = encode_value({"faultCode": int(code), "faultString": _NOT_XML.sub("?", string)})
    return f"{_HEAD}<methodResponse><fault>{fault}</fault></methodResponse>\n".encode()


# -- decoding ---------------------------------------------------------------------------


def _bad(message: str) -> XmlRpcDecodeError:
    return XmlRpcDecodeError(message, code=INVALID_XMLRPC)


def _children(el: ET.Element) -> list[ET.Element]:
    return list(el)


def _only_child(el: ET.Element, what: str) -> ET.Element:
    kids = _children(el)
    if len(kids) != 1:
        raise _bad(f"<{local_name(el.tag)}> must hold one <{what}>, it holds {len(kids)} elements")
    return kids[0]


def _int(text: str, low: int, high: int, what: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", text):
        raise _bad(f"<{what}> holds {text[:40]!r}, not an integer")
    number = int(text)
    if not low <= number <= high:
        raise _bad(f"<{what}> {number} is out of range")
    return number


def decode_value(el: ET.Element) -> Any:
    """The Python value of a ``<value>`` element (depth is bounded by the parser)."""
    if local_name(el.tag) != "value":
        raise _bad(f"expected <value>, got <{local_name(el.tag)}>")
    kids = _children(el)
    if not kids:
        return el.text or ""  # no type: a string
    if len(kids) > 1:
        raise _bad("a <value> holds one typed element")
    typed = kids[0]
    kind = local_name(typed.tag)
    text = typed.text or ""
    if kind in ("int", "i4"):
        return _int(text, *INT32, what=kind)
    if kind == "i8":
        return _int(text, *INT64, what=kind)
    if kind == "boolean":
        if text.strip() not in ("0", "1"):
            raise _bad(f"<boolean> holds {text[:40]!r}, not 0 or 1")
        return text.strip() == "1"
    if kind == "double":
        try:
            number = float(text.strip())
        except ValueError:
            raise _bad(f"<double> holds {text[:40]!r}, not a number") from None
        if not math.isfinite(number):
            raise _bad(f"<double> holds {text.strip()[:40]!r}, not a finite number")
        return number
    if kind == "string":
        return text
    if kind == "nil":
        return None
    if kind == "base64":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _bad("<base64> does not hold base64") from None
    if kind == "dateTime.iso8601":
        match = _DATE.fullmatch(text.strip())
        if match:
            try:
                year, month, day, hour, minute, second = (int(g) for g in match.groups())
                return dt.datetime(year, month, day, hour, minute, second)
            except ValueError:
                pass
        raise _bad(f"<dateTime.iso8601> holds {text[:40]!r}, not YYYYMMDDTHH:MM:SS")
    if kind == "struct":
        out: dict[str, Any] = {}
        for member in typed:
            if local_name(member.tag) != "member":
                raise _bad(f"<struct> holds <{local_name(member.tag)}>, not <member>")
            name = value = None
            for part in member:
                if local_name(part.tag) == "name":
                    name = part.text or ""
                elif local_name(part.tag) == "value":
                    value = part
            if name is None or value is None:
                raise _bad("a <member> needs a <name> and a <value>")
            out[name] = decode_value(value)
        return out
    if kind == "array":
        data = _only_child(typed, "data")
        if local_name(data.tag) != "data":
            raise _bad("an <array> holds one <data>")
        return [decode_value(item) for item in data]
    raise _bad(f"unknown XML-RPC type <{kind}>")


def _document(data: bytes) -> ET.Element:
    try:
        return parse_xml(data)
    except XmlRefused as exc:
        raise XmlRpcDecodeError(str(exc), code=NOT_WELLFORMED, bomb=exc.bomb) from None


def _params(el: ET.Element | None) -> tuple[Any, ...]:
    if el is None:
        return ()
    if local_name(el.tag) != "params":
        raise _bad(f"expected <params>, got <{local_name(el.tag)}>")
    out = []
    for param in el:
        if local_name(param.tag) != "param":
            raise _bad(f"<params> holds <{local_name(param.tag)}>, not <param>")
        out.append(decode_value(_only_child(param, "value")))
    return tuple(out)


def loads(data: bytes) -> Call | Response | Fault:
    """A call, a response or a fault from a document's bytes;
    :class:`XmlRpcDecodeError` for anything else."""
    root = _document(data)
    kind = local_name(root.tag)
    kids = _children(root)
    if kind == "methodCall":
        names = [k for k in kids if local_name(k.tag) == "methodName"]
        if len(names) != 1:
            raise _bad("a <methodCall> needs one <methodName>")
        method = (names[0].text or "").strip()
        if not _METHOD_NAME.fullmatch(method):
            raise _bad(f"bad method name {method[:60]!r}")
        rest = [k for k in kids if k is not names[0]]
        if len(rest) > 1:
            raise _bad("a <methodCall> holds a <methodName> and <params>")
        return Call(method, _params(rest[0] if rest else None))
    if kind == "methodResponse":
        if len(kids) != 1:
            raise _bad("a <methodResponse> holds <params> or <fault>")
        body = kids[0]
        if local_name(body.tag) == "fault":
            value = decode_value(_only_child(body, "value"))
            if (not isinstance(value, dict) or not isinstance(value.get("faultCode"), int)
                    or isinstance(value.get("faultCode"), bool)
                    or not isinstance(value.get("faultString"), str)):
                raise _bad("a <fault> is a struct of faultCode (int) and faultString (string)")
            return Fault(value["faultCode"], value["faultString"])
        params = _params(body)
        if len(params) != 1:
            raise _bad(f"a response holds one value, not {len(params)}")
        return Response(params[0])
    raise _bad(f"expected <methodCall> or <methodResponse>, got <{kind}>")


def loads_call(data: bytes) -> Call:
    """A ``<methodCall>``; :class:`XmlRpcDecodeError` for anything else."""
    got = loads(data)
    if not isinstance(got, Call):
        raise _bad("expected a <methodCall>")
    return got


def loads_response(data: bytes) -> Response | Fault:
    """A ``<methodResponse>``; :class:`XmlRpcDecodeError` for anything else."""
    got = loads(data)
    if isinstance(got, Call):
        raise _bad("expected a <methodResponse>, got a <methodCall>")
    return got
