"""XML-RPC (the XML-RPC specification, with ``<nil/>`` and ``<i8>``):
remote procedure calls as XML documents POSTed over HTTP/1.1.

The server is netlab's HTTP server with an XML-RPC route; the client is
its HTTP client with ``call`` and ``multicall``; the log shows each call
(method and parameters) and each reply (value or fault) decoded.

* ``_xml``: XML from the network through defusedxml, with depth caps;
* ``_codec``: values, calls, responses and faults, both ways;
* ``_dispatch``: :class:`Dispatcher`: functions, system.*, multicall, faults;
* ``_messages``, ``_conversation``: the decoded view over HTTP;
* ``_server``: :class:`XmlRpcServer`, :class:`XmlRpcOptions`;
* ``_client``: :class:`XmlRpcClient`, :class:`Proxy`.

Tests: tests/protocols/test_xmlrpc.py, tests/test_xml_bombs.py,
tests/interop/test_xmlrpc_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.xmlrpc._client import Proxy, XmlRpcClient, XmlRpcClientOptions
from lab.protocols.xmlrpc._codec import (
    APPLICATION_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_XMLRPC,
    METHOD_NOT_FOUND,
    NOT_WELLFORMED,
    Call,
    Fault,
    Response,
    XmlRpcDecodeError,
    XmlRpcFault,
    dumps_call,
    dumps_fault,
    dumps_response,
    loads,
)
from lab.protocols.xmlrpc._conversation import XmlRpcConversation
from lab.protocols.xmlrpc._dispatch import Dispatcher, demo_functions
from lab.protocols.xmlrpc._messages import XmlRpcCall, XmlRpcReply
from lab.protocols.xmlrpc._server import XmlRpcOptions, XmlRpcServer, XmlRpcSession

__all__ = [
    "APPLICATION_ERROR",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_XMLRPC",
    "METHOD_NOT_FOUND",
    "NOT_WELLFORMED",
    "SPEC",
    "Call",
    "Dispatcher",
    "Fault",
    "Proxy",
    "Response",
    "XmlRpcCall",
    "XmlRpcClient",
    "XmlRpcClientOptions",
    "XmlRpcConversation",
    "XmlRpcDecodeError",
    "XmlRpcFault",
    "XmlRpcOptions",
    "XmlRpcReply",
    "XmlRpcServer",
    "XmlRpcSession",
    "demo_functions",
    "dumps_call",
    "dumps_fault",
    "dumps_response",
    "loads",
]


def _refusal(msg: object) -> bytes:
    body = dumps_fault(METHOD_NOT_FOUND, "not in the recording")
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


SPEC = ProtocolSpec(
    name="xmlrpc",
    summary="calls Python functions over HTTP with XML-RPC, and calls them on other servers",
    rfc="XML-RPC (1999)",
    default_port=8080,
    transports=(Transport.TCP,),
    conversation=XmlRpcConversation,
    server=XmlRpcServer,
    client=XmlRpcClient,
    options=XmlRpcOptions,
    client_options=XmlRpcClientOptions,
    idle_timeout=60.0,
    keywords=("rpc", "xml", "xml-rpc", "remote procedure call", "web service"),
    requests=Requests(_refusal),
)
