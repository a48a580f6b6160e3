"""The slice of XML Schema that SOAP services here use: simple types
(xsd:long, double, string, boolean, base64Binary, dateTime and kin),
sequences of named elements, repeated elements for lists, and nil.

A :class:`Field` is one element of a sequence; its type is a simple
type's local name (``"long"``) or a :class:`Complex` type.  Values go to
and from XML text by the field's type; without a type (a service whose
WSDL we did not read) an element becomes its text, or a dict of its
children.

Tests: tests/protocols/test_soap.py
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import inspect
import math
import types
import typing
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Union

from lab.protocols.xmlrpc._codec import _check_text
from lab.protocols.xmlrpc._xml import local_name

__all__ = [
    "XSD",
    "XSI",
    "Complex",
    "Field",
    "SchemaError",
    "decode_element",
    "decode_sequence",
    "encode_field",
    "field_for",
    "format_simple",
    "parse_simple",
]

XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_INTS = {"int", "long", "integer", "short", "byte", "unsignedInt", "unsignedLong", "unsignedShort",
         "unsignedByte", "nonNegativeInteger", "positiveInteger", "nonPositiveInteger", "negativeInteger"}
_FLOATS = {"double", "float", "decimal"}


class SchemaError(ValueError):
    """A value that does not fit its type, either way."""


@dataclass(frozen=True)
class Complex:
    """A complex type: a sequence of fields.  ``name`` is its local name in
    the service's namespace ("" for an anonymous one)."""

    name: str
    fields: tuple[Field, ...]

    @property
    def array_of(self) -> Field | None:
        """The one repeated field of an array wrapper (spyne's
        ``longArray``, .NET's ``ArrayOfInt``), else None."""
        if len(self.fields) == 1 and self.fields[0].repeated:
            return self.fields[0]
        return None


@dataclass(frozen=True)
class Field:
    """One element of a sequence: its name, its type, how often it occurs."""

    name: str
    type: str | Complex
    min_occurs: int = 1
    max_occurs: int | None = 1  # None: unbounded
    nillable: bool = False
    ns: str = ""  # the element's namespace ("" when unqualified)

    @property
    def repeated(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1


# -- Python annotations to fields -------------------------------------------------------

_PY_SIMPLE: dict[Any, str] = {int: "long", float: "double", str: "string", bool: "boolean",
                              bytes: "base64Binary", dt.datetime: "dateTime", dt.date: "date"}


def field_for(name: str, annotation: Any, ns: str = "") -> Field:
    """The field a Python annotation stands for: a simple type, ``list[T]``
    (a repeated element), ``T | None`` (optional, nillable); no
    annotation reads as a string.  :class:`SchemaError` for others."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return Field(name, "string", ns=ns)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise SchemaError(f"{name}: only T | None unions are supported")
        inner = field_for(name, args[0], ns)
        return Field(name, inner.type, 0, inner.max_occurs, True, ns)
    if origin in (list, tuple) or annotation in (list, tuple):
        item = typing.get_args(annotation)
        inner = field_for(name, item[0] if item else str, ns)
        if inner.repeated:
            raise SchemaError(f"{name}: a list of lists has no plain XML form")
        return Field(name, inner.type, 0, None, ns=ns)
    simple = _PY_SIMPLE.get(annotation)
    if simple is None:
        raise SchemaError(f"{name}: no XML Schema type for {annotation!r}")
    return Field(name, simple, ns=ns)


# -- simple values ------------------------------------------------------------------------


def format_simple(kind: str, value: Any) -> str:
    """``value`` as the text of an ``xsd:kind`` element."""
    if kind == "boolean":
        if not isinstance(value, bool):
            raise SchemaError(f"a boolean, not {type(value).__name__}")
        return "true" if value else "false"
    if kind in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"an integer, not {type(value).__name__}")
        return str(value)
    if kind in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"a number, not {type(value).__name__}")
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "INF" if number > 0 else "-INF"
        return repr(number)
    if kind == "base64Binary":
        if not isinstance(value, (bytes, bytearray)):
            raise SchemaError(f"bytes, not {type(value).__name__}")
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "hexBinary":
        if not isinstance(value, (bytes, bytearray)):
            raise SchemaError(f"bytes, not {type(value).__name__}")
        return bytes(value).hex().upper()
    if kind == "dateTime":
        if not isinstance(value, dt.datetime):
            raise SchemaError(f"a datetime, not {type(value).__name__}")
        return value.isoformat()
    if kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise SchemaError(f"a date, not {type(value).__name__}")
        return value.isoformat()
    if not isinstance(value, str):
        raise SchemaError(f"a string, not {type(value).__name__}")
    try:
        _check_text(value)
    except ValueError as exc:
        raise SchemaError(str(exc)) from None
    return value


def parse_simple(kind: str, text: str) -> Any:
    """The Python value of an ``xsd:kind`` element's text."""
    word = text.strip()
    try:
        if kind == "boolean":
            if word in ("true", "1"):
                return True
            if word in ("false", "0"):
                return False
            raise SchemaError(f"{word[:40]!r} is not a boolean")
        if kind in _INTS:
            if not word.lstrip("+-").isdigit() or len(word) > 40:
                raise SchemaError(f"{word[:40]!r} is not an integer")
            return int(word)
        if kind in _FLOATS:
            special = {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}
            if word in special:
                return special[word]
            if len(word) > 400 or word.lower().lstrip("+-") in ("nan", "inf", "infinity"):
                raise SchemaError(f"{word[:40]!r} is not a number")
            return float(word)
        if kind == "base64Binary":
            return base64.b64decode("".join(word.split()), validate=True)
        if kind == "hexBinary":
            return bytes.fromhex(word)
        if kind == "dateTime":
            return dt.datetime.fromisoformat(word)
        if kind == "date":
            return dt.date.fromisoformat(word)
    except (ValueError, binascii.Error) as exc:
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"{word[:40]!r} is not a {kind}") from None
    return text


# -- elements -------------------------------------------------------------------------------


def _nil(el: ET.Element) -> bool:
    return el.get(f"{{{XSI}}}nil") in ("true", "1")


def encode_field(field: Field, value: Any, out: list[str], scope: str = "", depth: int = 0) -> None:
    """The element(s) for ``value`` in ``field`` appended to ``out``;
    ``scope`` is the default namespace in force where they go."""
    if depth > 32:
        raise SchemaError("a value nested deeper than 32 levels")
    if field.repeated:
        if value is None:
            return
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"{field.name}: a list, not {type(value).__name__}")
        one = Field(field.name, field.type, 1, 1, field.nillable, field.ns)
        for item in value:
            encode_field(one, item, out, scope, depth + 1)
        return
    xmlns = f' xmlns="{field.ns}"' if field.ns != scope else ""
    if value is None:
        if field.min_occurs == 0 and not field.nillable:
            return
        out.append(f'<{field.name}{xmlns} xsi:nil="true" xmlns:xsi="{XSI}"/>')
        return
    if isinstance(field.type, str):
        try:
            text = format_simple(field.type, value)
        except SchemaError as exc:
            raise SchemaError(f"{field.name}: {exc}") from None
        out.append(f"<{field.name}{xmlns}>{_check_text(text)}</{field.name}>")
        return
    complex_type = field.type
    array = complex_type.array_of
    if array is not None and isinstance(value, (list, tuple)):
        value = {array.name: list(value)}
    if not isinstance(value, dict):
        raise SchemaError(f"{field.name}: a dict of {', '.join(f.name for f in complex_type.fields)}")
    unknown = set(value) - {f.name for f in complex_type.fields}
    if unknown:
        raise SchemaError(f"{field.name}: no element {sorted(unknown)[0]!r}")
    out.append(f"<{field.name}{xmlns}>")
    for sub in complex_type.fields:
        encode_field(sub, value.get(sub.name), out, field.ns, depth + 1)
    out.append(f"</{field.name}>")


def decode_element(el: ET.Element, kind: str | Complex | None) -> Any:
    """The value of one element, read as ``kind`` (None: untyped: text, or
    a dict of children with repeated names as lists)."""
    if _nil(el):
        return None
    if isinstance(kind, str):
        return parse_simple(kind, el.text or "")
    if kind is None:
        kids = list(el)
        if not kids:
            return el.text or ""
        out: dict[str, Any] = {}
        for kid in kids:
            name = local_name(kid.tag)
            value = decode_element(kid, None)
            if name in out:
                prior = out[name]
                out[name] = [*prior, value] if isinstance(prior, list) else [prior, value]
            else:
                out[name] = value
        return out
    return decode_sequence(el, kind.fields, array=kind.array_of)


def decode_sequence(el: ET.Element, fields: tuple[Field, ...], *, array: Field | None = None) -> Any:
    """The children of ``el`` read against ``fields``: a dict by field
    name (lists for repeated fields), or a plain list for an array
    wrapper; :class:`SchemaError` for an unknown or missing element."""
    by_name = {f.name: f for f in fields}
    got: dict[str, Any] = {f.name: [] for f in fields if f.repeated}
    for kid in el:
        name = local_name(kid.tag)
        field = by_name.get(name)
        if field is None:
            raise SchemaError(f"unexpected element <{name}> in <{local_name(el.tag)}>")
        try:
            value = decode_element(kid, field.type)
        except SchemaError as exc:
            raise SchemaError(f"<{name}>: {exc}") from None
        if field.repeated:
            got[name].append(value)
        elif name in got:
            raise SchemaError(f"<{name}> more than once in <{local_name(el.tag)}>")
        else:
            got[name] = value
    for field in fields:
        if field.name not in got:
            if field.min_occurs > 0 and not field.nillable:
                raise SchemaError(f"<{local_name(el.tag)}> lacks <{field.name}>")
            got[field.name] = None
    if array is not None:
        return got[array.name]
    return got

