"""SOAP 1.1 (W3C Note, 8 May 2000): document/literal web services over
HTTP/1.1, described by a WSDL 1.1 generated from Python annotations.

* ``_envelope``: envelopes and faults, parsed through defusedxml;
* ``_schema``: the XML Schema types used (simple types, lists, nil);
* ``_wsdl``: WSDL written for a service and read from any service;
* ``_messages``, ``_conversation``: the decoded view over HTTP;
* ``_server``: :class:`SoapServer`, :class:`SoapOptions`;
* ``_client``: :class:`SoapClient`.

Tests: tests/protocols/test_soap.py, tests/test_xml_bombs.py,
tests/interop/test_soap_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.soap._client import SoapClient, SoapClientOptions
from lab.protocols.soap._conversation import SoapConversation
from lab.protocols.soap._envelope import SOAP_ENV, Envelope, SoapDecodeError, SoapFault, dumps_envelope, dumps_fault
from lab.protocols.soap._messages import SoapReply, SoapRequest
from lab.protocols.soap._schema import Complex, Field, SchemaError
from lab.protocols.soap._server import DEFAULT_NAMESPACE, SoapOptions, SoapServer, SoapSession, demo_operations
from lab.protocols.soap._wsdl import Operation, Service, WsdlError, dumps_wsdl, loads_wsdl, operation_for

__all__ = [
    "DEFAULT_NAMESPACE",
    "SOAP_ENV",
    "SPEC",
    "Complex",
    "Envelope",
    "Field",
    "Operation",
    "SchemaError",
    "Service",
    "SoapClient",
    "SoapClientOptions",
    "SoapConversation",
    "SoapDecodeError",
    "SoapFault",
    "SoapOptions",
    "SoapReply",
    "SoapRequest",
    "SoapServer",
    "SoapSession",
    "WsdlError",
    "demo_operations",
    "dumps_envelope",
    "dumps_fault",
    "dumps_wsdl",
    "loads_wsdl",
    "operation_for",
]


def _refusal(msg: object) -> bytes:
    body = dumps_fault("Client", "not in the recording")
    return (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


SPEC = ProtocolSpec(
    name="soap",
    summary="offers Python functions as a SOAP 1.1 web service with a WSDL, and calls services",
    rfc="SOAP 1.1, WSDL 1.1",
    default_port=8080,
    transports=(Transport.TCP,),
    conversation=SoapConversation,
    server=SoapServer,
    client=SoapClient,
    options=SoapOptions,
    client_options=SoapClientOptions,
    idle_timeout=60.0,
    keywords=("soap", "wsdl", "xml", "web service", "rpc"),
    requests=Requests(_refusal),
)
