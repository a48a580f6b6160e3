"""WSDL 1.1 for document/literal SOAP 1.1 services: generated from a
service's operations (Python functions, typed by their annotations),
and read back from any service's WSDL (ours, spyne's, .NET-style
``ArrayOf`` types) into the same :class:`Service` a client calls by
operation name.

A generated WSDL is the "wrapped" convention zeep, suds and spyne
follow: operation ``add(a, b)`` takes an element ``add`` holding ``a``
and ``b`` and answers ``addResponse`` holding ``addResult``.

Tests: tests/protocols/test_soap.py
"""

from __future__ import annotations

import inspect
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.protocols.soap._schema import XSD, Complex, Field, SchemaError, field_for
from lab.protocols.xmlrpc._xml import XmlRefused, local_name, parse_xml, xml_text

__all__ = ["WSDL", "Operation", "Service", "WsdlError", "dumps_wsdl", "loads_wsdl", "operation_for"]

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_HTTP = "http://schemas.xmlsoap.org/soap/http"


class WsdlError(ValueError):
    """A WSDL that cannot be read, or a function that cannot be described."""


@dataclass(frozen=True)
class Operation:
    """One operation: its name, SOAPAction, the wrapper elements of its
    request and response and their fields."""

    name: str
    namespace: str
    action: str
    input_element: str
    inputs: tuple[Field, ...]
    output_element: str
    outputs: tuple[Field, ...]
    doc: str = ""
    input_ns: str = ""  # namespace of the input wrapper (the namespace by default)
    output_ns: str = ""

    @property
    def request_ns(self) -> str:
        return self.input_ns or self.namespace

    @property
    def response_ns(self) -> str:
        return self.output_ns or self.namespace


@dataclass(frozen=True)
class Service:
    """A service: its name, target namespace, address and operations."""

    name: str
    namespace: str
    location: str
    operations: dict[str, Operation] = field(default_factory=dict)


def operation_for(fn: Callable[..., Any], name: str, namespace: str) -> Operation:
    """An operation described by ``fn``'s signature and annotations;
    :class:`WsdlError` when a parameter's type has no XML form."""
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError) as exc:
        raise WsdlError(f"{name}: cannot read its signature: {exc}") from None
    inputs = []
    try:
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise WsdlError(f"{name}: *args and **kwargs have no WSDL form")
            inputs.append(field_for(p.name, hints.get(p.name, p.annotation), namespace))
        returns = hints.get("return", sig.return_annotation)
        outputs: tuple[Field, ...] = ()
        if returns is not None and returns is not type(None):
            outputs = (field_for(f"{name}Result", returns, namespace),)
    except SchemaError as exc:
        raise WsdlError(str(exc)) from None
    return Operation(name, namespace, name, name, tuple(inputs), f"{name}Response", outputs,
                     inspect.getdoc(fn) or "", namespace, namespace)


# -- writing -----------------------------------------------------------------------------


def _element_decl(f: Field) -> str:
    kind = f"xsd:{f.type}" if isinstance(f.type, str) else f"tns:{f.type.name}"
    occurs = ""
    if f.min_occurs != 1:
        occurs += f' minOccurs="{f.min_occurs}"'
    if f.max_occurs != 1:
        occurs += ' maxOccurs="unbounded"' if f.max_occurs is None else f' maxOccurs="{f.max_occurs}"'
    if f.nillable:
        occurs += ' nillable="true"'
    return f'<xsd:element name="{f.name}" type="{kind}"{occurs}/>'


def dumps_wsdl(service: Service) -> bytes:
    """The WSDL 1.1 document of a document/literal service."""
    tns = xml_text(service.namespace)
    elements, messages, port_ops, binding_ops = [], [], [], []
    for op in service.operations.values():
        for wrapper, fields in ((op.input_element, op.inputs), (op.output_element, op.outputs)):
            decls = "".join(_element_decl(f) for f in fields)
            elements.append(f'<xsd:element name="{wrapper}"><xsd:complexType><xsd:sequence>{decls}'
                            "</xsd:sequence></xsd:complexType></xsd:element>")
        messages.append(f'<wsdl:message name="{op.name}SoapIn"><wsdl:part name="parameters" '
                        f'element="tns:{op.input_element}"/></wsdl:message>'
                        f'<wsdl:message name="{op.name}SoapOut"><wsdl:part name="parameters" '
                        f'element="tns:{op.output_element}"/></wsdl:message>')
        doc = f"<wsdl:documentation>{xml_text(op.doc)}</wsdl:documentation>" if op.doc else ""
        port_ops.append(f'<wsdl:operation name="{op.name}">{doc}<wsdl:input message="tns:{op.name}SoapIn"/>'
                        f'<wsdl:output message="tns:{op.name}SoapOut"/></wsdl:operation>')
        binding_ops.append(f'<wsdl:operation name="{op.name}"><soap:operation soapAction="{xml_text(op.action)}" '
                           'style="document"/><wsdl:input><soap:body use="literal"/></wsdl:input>'
                           '<wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>')
    name = xml_text(service.name)
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f'<wsdl:definitions xmlns:wsdl="{WSDL}" xmlns:soap="{WSDL_SOAP}" xmlns:xsd="{XSD}" '
        f'xmlns:tns="{tns}" targetNamespace="{tns}" name="{name}">'
        f'<wsdl:types><xsd:schema targetNamespace="{tns}" elementFormDefault="qualified">'
        f'{"".join(elements)}</xsd:schema></wsdl:types>'
        f'{"".join(messages)}'
        f'<wsdl:portType name="{name}PortType">{"".join(port_ops)}</wsdl:portType>'
        f'<wsdl:binding name="{name}Binding" type="tns:{name}PortType">'
        f'<soap:binding style="document" transport="{SOAP_HTTP}"/>{"".join(binding_ops)}</wsdl:binding>'
        f'<wsdl:service name="{name}"><wsdl:port name="{name}Port" binding="tns:{name}Binding">'
        f'<soap:address location="{xml_text(service.location)}"/></wsdl:port></wsdl:service>'
        "</wsdl:definitions>\n"
    ).encode()


# -- reading -----------------------------------------------------------------------------


class _Schemas:
    """The global elements and named types of every schema in a WSDL."""

    def __init__(self, types_el: ET.Element | None) -> None:
        self.elements: dict[str, tuple[ET.Element, str, bool]] = {}
        self.complex: dict[str, tuple[ET.Element, str, bool]] = {}
        self.simple: dict[str, str] = {}
        self._built: dict[str, Complex] = {}
        if types_el is None:
            return
        for schema in types_el.iter(f"{{{XSD}}}schema"):
            tns = schema.get("targetNamespace", "")
            qualified = schema.get("elementFormDefault") == "qualified"
            for kid in schema:
                name = kid.get("name")
                if not name:
                    continue
                if kid.tag == f"{{{XSD}}}element":
                    self.elements[name] = (kid, tns, qualified)
                elif kid.tag == f"{{{XSD}}}complexType":
                    self.complex[name] = (kid, tns, qualified)
                elif kid.tag == f"{{{XSD}}}simpleType":
                    base = next((r.get("base", "") for r in kid.iter(f"{{{XSD}}}restriction")), "string")
                    self.simple[name] = base.rpartition(":")[2] or "string"

    def type_of(self, ref: str, depth: int) -> str | Complex:
        local = ref.rpartition(":")[2]
        if local in self.complex:
            if local not in self._built:
                el, tns, qualified = self.complex[local]
                self._built[local] = Complex(local, ())  # a type that refers to itself stops here
                self._built[local] = Complex(local, self.sequence(el, tns, qualified, depth + 1))
            return self._built[local]
        return self.simple.get(local, local)

    def sequence(self, complex_el: ET.Element, tns: str, qualified: bool, depth: int) -> tuple[Field, ...]:
        if depth > 16:
            raise WsdlError("types nested deeper than 16 levels")
        out = []
        for group in complex_el:
            if local_name(group.tag) not in ("sequence", "all"):
                continue
            for el in group:
                if el.tag != f"{{{XSD}}}element":
                    continue
                out.append(self.field(el, tns, qualified, depth))
        return tuple(out)

    def field(self, el: ET.Element, tns: str, qualified: bool, depth: int) -> Field:
        ref = el.get("ref")
        if ref:
            target = self.elements.get(ref.rpartition(":")[2])
            if target is None:
                raise WsdlError(f"element ref {ref!r} is not defined")
            inner = self.field(target[0], target[1], True, depth + 1)
            return Field(inner.name, inner.type, int(el.get("minOccurs", "1")), _max(el), inner.nillable, target[1])
        name = el.get("name") or ""
        kind: str | Complex
        inline = el.find(f"{{{XSD}}}complexType")
        if inline is not None:
            kind = Complex("", self.sequence(inline, tns, qualified, depth + 1))
        else:
            kind = self.type_of(el.get("type", "xsd:string"), depth)
        try:
            low = int(el.get("minOccurs", "1"))
        except ValueError:
            raise WsdlError(f"element {name!r}: bad minOccurs") from None
        return Field(name, kind, low, _max(el), el.get("nillable") == "true", tns if qualified else "")

    def wrapper(self, name: str) -> tuple[str, tuple[Field, ...]]:
        """The namespace and fields of a global element used as a wrapper."""
        found = self.elements.get(name)
        if found is None:
            raise WsdlError(f"element {name!r} is not defined in the WSDL's types")
        el, tns, qualified = found
        inline = el.find(f"{{{XSD}}}complexType")
        if inline is not None:
            return tns, self.sequence(inline, tns, qualified, 0)
        kind = self.type_of(el.get("type", ""), 0)
        if isinstance(kind, Complex):
            return tns, kind.fields
        raise WsdlError(f"element {name!r} is not a wrapper of parameters")


def _max(el: ET.Element) -> int | None:
    value = el.get("maxOccurs", "1")
    if value == "unbounded":
        return None
    try:
        return int(value)
    except ValueError:
        raise WsdlError(f"bad maxOccurs {value!r}") from None


def loads_wsdl(data: bytes) -> Service:
    """A document/literal service from its WSDL 1.1; :class:`WsdlError`
    for what cannot be read (RPC/encoded services among them)."""
    try:
        root = parse_xml(data)
    except XmlRefused as exc:
        raise WsdlError(str(exc)) from None
    if root.tag != f"{{{WSDL}}}definitions":
        raise WsdlError(f"not a WSDL 1.1 document: <{local_name(root.tag)}>")
    tns = root.get("targetNamespace", "")
    schemas = _Schemas(root.find(f"{{{WSDL}}}types"))
    messages = {}
    for msg in root.findall(f"{{{WSDL}}}message"):
        parts = msg.findall(f"{{{WSDL}}}part")
        if len(parts) == 1 and parts[0].get("element"):
            messages[msg.get("name", "")] = parts[0].get("element", "").rpartition(":")[2]
    port_types: dict[str, dict[str, tuple[str, str, str]]] = {}
    for pt in root.findall(f"{{{WSDL}}}portType"):
        ops = {}
        for op in pt.findall(f"{{{WSDL}}}operation"):
            io = {local_name(k.tag): k.get("message", "").rpartition(":")[2] for k in op
                  if local_name(k.tag) in ("input", "output")}
            doc = op.find(f"{{{WSDL}}}documentation")
            ops[op.get("name", "")] = (io.get("input", ""), io.get("output", ""),
                                       (doc.text or "") if doc is not None else "")
        port_types[pt.get("name", "")] = ops
    bindings: dict[str, tuple[str, dict[str, str]]] = {}
    for b in root.findall(f"{{{WSDL}}}binding"):
        soap_binding = b.find(f"{{{WSDL_SOAP}}}binding")
        if soap_binding is None:
            continue  # SOAP 1.2 or HTTP bindings: not ours
        if soap_binding.get("style", "document") != "document":
            continue
        actions = {}
        for op in b.findall(f"{{{WSDL}}}operation"):
            soap_op = op.find(f"{{{WSDL_SOAP}}}operation")
            actions[op.get("name", "")] = soap_op.get("soapAction", "") if soap_op is not None else ""
        bindings[b.get("name", "")] = (b.get("type", "").rpartition(":")[2], actions)
    for svc in root.findall(f"{{{WSDL}}}service"):
        for port in svc.findall(f"{{{WSDL}}}port"):
            address = port.find(f"{{{WSDL_SOAP}}}address")
            binding = bindings.get(port.get("binding", "").rpartition(":")[2])
            if address is None or binding is None:
                continue
            port_type, actions = binding
            operations = {}
            for name, (msg_in, msg_out, text) in port_types.get(port_type, {}).items():
                if msg_in not in messages:
                    raise WsdlError(f"operation {name!r}: its input is not one literal element")
                in_el = messages[msg_in]
                in_ns, inputs = schemas.wrapper(in_el)
                out_el = messages.get(msg_out, "")
                out_ns, outputs = schemas.wrapper(out_el) if out_el else ("", ())
                operations[name] = Operation(name, tns, actions.get(name, ""), in_el, inputs, out_el, outputs,
                                             text, in_ns, out_ns)
            return Service(svc.get("name", ""), tns, address.get("location", ""), operations)
    raise WsdlError("the WSDL has no SOAP 1.1 document/literal port")
