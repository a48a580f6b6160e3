"""XML from the network, parsed defensively: defusedxml refuses DTDs,
entities and external references (billion laughs, quadratic blowup,
XXE), and a depth and element count cap refuses deep nesting before a
tree is built.  Shared by XML-RPC and SOAP.

Tests: tests/test_xml_bombs.py, tests/protocols/test_xmlrpc.py
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "XmlRefused", "local_name", "parse_xml", "xml_text"]

MAX_DEPTH = 64  # elements nested inside each other
MAX_ELEMENTS = 200_000  # elements in one document


class XmlRefused(ValueError):
    """The document is not well-formed XML, or is hostile (a DTD, an
    entity, an external reference, too deep, too many elements).
    ``bomb`` is True for the hostile kinds."""

    def __init__(self, message: str, *, bomb: bool = False) -> None:
        super().__init__(message)
        self.bomb = bomb


class _CappedTree:
    """An ElementTree builder that counts depth and elements as the
    parser goes, so a hostile document is refused before it is built."""

    def __init__(self, max_depth: int, max_elements: int) -> None:
        self._tb = ET.TreeBuilder()
        self._depth = 0
        self._count = 0
        self._max_depth = max_depth
        self._max_elements = max_elements

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self._depth += 1
        self._count += 1
        if self._depth > self._max_depth:
            raise XmlRefused(f"XML nested deeper than {self._max_depth} elements", bomb=True)
        if self._count > self._max_elements:
            raise XmlRefused(f"XML with more than {self._max_elements} elements", bomb=True)
        return self._tb.start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return self._tb.end(tag)

    def data(self, text: str) -> None:
        self._tb.data(text)

    def close(self) -> ET.Element:
        return self._tb.close()


def parse_xml(data: bytes, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS) -> ET.Element:
    """The root element of ``data``; :class:`XmlRefused` for anything that
    is not a well-formed, DTD-free document within the caps."""
    parser = DefusedXMLParser(target=_CappedTree(max_depth, max_elements), forbid_dtd=True,
                              forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        root: Any = parser.close()
    except XmlRefused:
        raise
    except DefusedXmlException as exc:
        what = type(exc).__name__.replace("Forbidden", "").replace("DTD", "a DTD") or "it"
        raise XmlRefused(f"XML refused: {what.lower() if what != 'a DTD' else what} "
                         f"is not allowed ({exc})", bomb=True) from None
    except ET.ParseError as exc:
        raise XmlRefused(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError, RecursionError, MemoryError) as exc:
        raise XmlRefused(f"XML refused: {exc}") from None
    if not isinstance(root, ET.Element):
        raise XmlRefused("XML without a root element")
    return root


def local_name(tag: str) -> str:
    """``{namespace}name`` without its namespace."""
    return tag.rpartition("}")[2]


def xml_text(text: str) -> str:
    """``text`` escaped for element content; a CR survives as ``&#13;``
    (a parser turns a literal CR into LF)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))
