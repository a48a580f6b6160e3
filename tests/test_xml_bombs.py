"""Hostile XML against the XML-RPC and SOAP servers, on real sockets:
billion laughs, quadratic blowup, external entities and DTDs, deep
nesting and an oversized body are each refused with a fault and an
event, quickly and without the memory they ask for, while a client
connected before them is still answered.  The parser alone refuses
each too (lab/protocols/xmlrpc/_xml.py)."""

from __future__ import annotations

import http.client
import socket
import time
import xmlrpc.client as xmlrpc_client

import pytest

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.soap import _envelope as env
from lab.protocols.xmlrpc import _codec as codec
from lab.protocols.xmlrpc._xml import XmlRefused, parse_xml


def billion_laughs() -> bytes:
    lines = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?><!DOCTYPE methodCall [{"".join(lines)}]>'
            "<methodCall><methodName>echo</methodName><params><param><value><string>&lol9;</string></value>"
            "</param></params></methodCall>").encode()


def quadratic_blowup() -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY a "{"x" * 50_000}">]>'
            "<methodCall><methodName>echo</methodName><params><param><value><string>"
            + "&a;" * 10_000 + "</string></value></param></params></methodCall>").encode()


def external_entity() -> bytes:
    return (b'<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<methodCall><methodName>echo</methodName><params><param><value><string>&xxe;</string></value>"
            b"</param></params></methodCall>")


def external_dtd() -> bytes:
    return (b'<?xml version="1.0"?><!DOCTYPE methodCall SYSTEM "http://127.0.0.1:9/evil.dtd">'
            b"<methodCall><methodName>echo</methodName></methodCall>")


def deep_nesting(levels: int = 50_000) -> bytes:
    return (b"<?xml version='1.0'?><methodCall><methodName>echo</methodName><params><param>"
            + b"<value><array><data>" * levels + b"</data></array></value>" * levels
            + b"</param></params></methodCall>")


BOMBS = {"billion laughs": billion_laughs, "quadratic blowup": quadratic_blowup,
         "external entity": external_entity, "external DTD": external_dtd, "deep nesting": deep_nesting}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_the_parser_refuses_each_bomb(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(XmlRefused) as err:
        parse_xml(BOMBS[name]())
    assert err.value.bomb
    assert time.monotonic() - started < 30  # refused, not expanded (a bound, not a timing claim)


def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _oversized(port: int, path: str, size: int) -> tuple[int, bytes]:
    """A head announcing ``size`` bytes with ``Expect: 100-continue``: the
    server answers before any of the body is sent (RFC 9110 §10.1.1)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: lab\r\nContent-Type: text/xml\r\n"
                  f"Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _envelope(inner: bytes) -> bytes:
    """A bomb's DTD kept in front, its document in a SOAP body."""
    head, sep, rest = inner.partition(b"<methodCall>")
    return head + (f'<soap:Envelope xmlns:soap="{env.SOAP_ENV}"><soap:Body>'.encode() + sep + rest
                   + b"</soap:Body></soap:Envelope>")


def _notes(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.INFO})))]


def test_xmlrpc_server_refuses_bombs_with_faults_and_keeps_serving(lab: Lab) -> None:
    srv = lab.serve("xmlrpc", max_body="4M")
    with xmlrpc_client.ServerProxy(f"http://127.0.0.1:{srv.port}/RPC2") as early:
        assert early.add(1, 1) == 2  # connected before the bombs, kept alive
        for name, make in BOMBS.items():
            status, body = _post(srv.port, "/RPC2", make())
            fault = codec.loads(body)
            assert status == 200 and isinstance(fault, codec.Fault), name
            assert fault.code == codec.NOT_WELLFORMED, (name, fault)
            assert early.add(2, 2) == 4, name
        status, body = _oversized(srv.port, "/RPC2", 5_000_000)
        oversized = codec.loads(body)
        assert isinstance(oversized, codec.Fault) and "larger than the server takes" in oversized.string
        assert early.add(3, 3) == 6
    notes = _notes(lab, srv.name)
    refused = [n for n in notes if n.startswith("XML-RPC call refused")]
    assert len(refused) == len(BOMBS) + 1, notes
    assert any("nested deeper" in n for n in refused) and any("a DTD" in n for n in refused)


def test_soap_server_refuses_bombs_with_faults_and_keeps_serving(lab: Lab) -> None:
    srv = lab.serve("soap", max_body="4M")
    c = lab.connect("soap", srv)
    assert c.call("add", a=1, b=1) == 2
    for name, make in BOMBS.items():
        status, body = _post(srv.port, "/soap", _envelope(make()))
        fault = env.loads_envelope(body).fault
        assert status == 500 and fault is not None and fault.code == "Client", (name, body[:200])
        assert c.call("add", a=2, b=2) == 4, name
    status, body = _oversized(srv.port, "/soap", 5_000_000)
    fault = env.loads_envelope(body).fault
    assert status == 500 and fault is not None and "larger than the server takes" in fault.string
    assert c.call("add", a=3, b=3) == 6
    notes = [n for n in _notes(lab, srv.name) if n.startswith("SOAP fault Client")]
    assert len(notes) == len(BOMBS) + 1, notes
