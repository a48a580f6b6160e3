"""Interop: XML-RPC with peers nobody here wrote, over real sockets.

* Python's ``xmlrpc.client`` (every type, faults, MultiCall, introspection)
  and Twisted's ``xmlrpc.Proxy`` (in a subprocess) against our server;
* our client against ``xmlrpc.server.SimpleXMLRPCServer`` (in a thread)
  and Twisted's ``web.xmlrpc.XMLRPC`` (a subprocess);
* ``xmlrpc.client`` -> ``netlab proxy`` -> ``SimpleXMLRPCServer``, with
  the proxy decoding both directions;
* curl posting a call by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socketserver
import subprocess
import sys
import textwrap
import threading
import xmlrpc.client as xmlrpc_client
import xmlrpc.server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, free_port, require, wait_for_port, wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.xmlrpc import Proxy, XmlRpcFault

pytestmark = pytest.mark.interop

EVERY_TYPE: list[Any] = [42, -(2**31), 2**40, 2.5, True, False, "héllo <&> \t", None,
                         dt.datetime(2026, 12, 4, 15, 30, 1), b"\x00\xffbytes",
                         [1, "two", [3.0, None]], {"k": {"nested": [b"x"]}, "empty": []}]


def _stdlib(port: int, path: str = "/RPC2") -> xmlrpc_client.ServerProxy:
    """The standard library's client; use it in ``with`` so its socket closes."""
    return xmlrpc_client.ServerProxy(f"http://127.0.0.1:{port}{path}", allow_none=True, use_builtin_types=True)


# what xmlrpc.client can send: it refuses integers beyond 32 bits (it reads i8)
STDLIB_SENDS = [v for v in EVERY_TYPE if not isinstance(v, int) or -(2**31) <= v < 2**31]


def test_xmlrpc_client_calls_our_server_with_every_type(lab: Lab) -> None:
    """The standard library's client: each type echoed back equal, i8 included."""
    srv = lab.serve("xmlrpc")
    with _stdlib(srv.port) as p:
        for value in STDLIB_SENDS:
            assert p.echo(value) == value
        assert p.add(2, 3) == 5 and p.upper("abc") == "ABC"
        assert isinstance(p.now(), dt.datetime)
        types = p.types()
    assert types["i8"] == 2**40 and types["base64"] == b"\x00\x01binary"


def test_xmlrpc_client_gets_faults_and_the_server_goes_on(lab: Lab) -> None:
    srv = lab.serve("xmlrpc")
    with _stdlib(srv.port) as p:
        with pytest.raises(xmlrpc_client.Fault) as err:
            p.nope()
        assert err.value.faultCode == -32601
        with pytest.raises(xmlrpc_client.Fault) as err:
            p.add(1)
        assert err.value.faultCode == -32602
        with pytest.raises(xmlrpc_client.Fault) as err:
            p.divide(1, 0)
        assert err.value.faultCode == -32500 and "ZeroDivisionError" in err.value.faultString
        assert p.add(1, 1) == 2
    notes = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.INFO})))]
    assert any("fault -32601 for nope" in n for n in notes)


def test_xmlrpc_client_multicall_and_introspection(lab: Lab) -> None:
    srv = lab.serve("xmlrpc")
    with _stdlib(srv.port, "/") as p:
        multi = xmlrpc_client.MultiCall(p)
        multi.add(1, 2)
        multi.upper("x")
        multi.divide(1, 0)
        results = multi()
        assert results[0] == 3 and results[1] == "X"
        with pytest.raises(xmlrpc_client.Fault):
            results[2]
        assert "system.multicall" in p.system.listMethods()
        assert p.system.methodHelp("add") == "The sum of two numbers."
        assert p.system.methodSignature("add") == [["int", "int", "int"]]


def test_functions_registered_from_the_shell_reach_xmlrpc_client(lab: Lab) -> None:
    srv = lab.serve("xmlrpc", demo="no")

    @srv.register
    def greet(name: str) -> str:
        return f"hello {name}"

    with _stdlib(srv.port) as p:
        assert p.greet("bob") == "hello bob"


@pytest.fixture
def simple_server() -> Iterator[tuple[int, xmlrpc.server.SimpleXMLRPCServer]]:
    """The standard library's SimpleXMLRPCServer in a thread, on a free port."""
    class KeepAlive(xmlrpc.server.SimpleXMLRPCRequestHandler):
        protocol_version = "HTTP/1.1"  # one connection for many calls, as our client keeps it
        timeout = 30

    class Threaded(socketserver.ThreadingMixIn, xmlrpc.server.SimpleXMLRPCServer):
        daemon_threads = True  # a kept-alive connection must not hold shutdown()

    server = Threaded(("127.0.0.1", 0), KeepAlive, allow_none=True, logRequests=False, use_builtin_types=True)
    server.register_introspection_functions()
    server.register_multicall_functions()
    server.register_function(lambda a, b: a + b, "add")
    server.register_function(lambda x: x, "echo")

    def fail() -> None:
        raise ValueError("told to fail")

    server.register_function(fail, "fail")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_our_client_against_simplexmlrpcserver(lab: Lab, simple_server: tuple[int, Any]) -> None:
    port, _ = simple_server
    c = lab.connect("xmlrpc", f"127.0.0.1:{port}")
    for value in STDLIB_SENDS:  # its marshaller cannot answer an i8
        assert c.call("echo", value) == value
    assert Proxy(c).add(2, 3) == 5
    with pytest.raises(XmlRpcFault) as err:
        c.call("fail")
    assert err.value.code == 1 and "told to fail" in err.value.string
    got = c.multicall([("add", (1, 2)), ("nope", ())])
    assert got[0] == 3 and isinstance(got[1], XmlRpcFault)
    assert "add" in c.list_methods()
    replies = [e.summary for e in lab.log.query(EventFilter(endpoint=c.name, kinds=frozenset({EventKind.MESSAGE})))]
    assert "XML-RPC reply 5" in replies and any(r.startswith("XML-RPC fault 1:") for r in replies)


def test_xmlrpc_client_through_the_netlab_proxy(lab: Lab, simple_server: tuple[int, Any]) -> None:
    """xmlrpc.client -> netlab proxy -> SimpleXMLRPCServer: same answers,
    and the proxy's log holds each call and reply decoded."""
    port, _ = simple_server
    px = lab.proxy("xmlrpc", to=f"127.0.0.1:{port}")
    with _stdlib(px.port) as p:
        assert p.add(20, 22) == 42
        assert p.echo({"a": [None, b"b"]}) == {"a": [None, b"b"]}
        with pytest.raises(xmlrpc_client.Fault):
            p.fail()

    def summaries() -> list[str]:
        return [e.summary for e in lab.log.query(EventFilter(endpoint=px.name, kinds=frozenset({EventKind.MESSAGE})))]

    wait_until(lambda: sum(s.startswith("XML-RPC fault 1") for s in summaries()) >= 1, what="the fault in the log")
    got = summaries()
    assert "XML-RPC call add(20, 22)" in got and "XML-RPC reply 42" in got


TWISTED_SERVER = textwrap.dedent("""
    import sys
    from twisted.internet import reactor
    from twisted.web import server, xmlrpc

    class Lab(xmlrpc.XMLRPC):
        def xmlrpc_add(self, a, b):
            return a + b
        def xmlrpc_echo(self, x):
            return x
        def xmlrpc_fail(self):
            raise xmlrpc.Fault(7, "twisted says no")

    lab = Lab(allowNone=True, useDateTime=True)
    xmlrpc.addIntrospection(lab)
    port = reactor.listenTCP(0, server.Site(lab), interface="127.0.0.1")
    print("PORT", port.getHost().port, flush=True)
    reactor.run()
""")


@pytest.fixture
def twisted_server(tmp_path: Path) -> Iterator[int]:
    """Twisted's web.xmlrpc server in a subprocess; its port from its first line."""
    script = tmp_path / "twisted_xmlrpc_server.py"
    script.write_text(TWISTED_SERVER)
    proc = Proc([sys.executable, "-W", "ignore", str(script)])
    try:
        line = proc.wait_for(r"^PORT \d+", timeout=30)
        yield int(line.split()[1])
    finally:
        proc.stop(15)


def test_our_client_against_twisted(lab: Lab, twisted_server: int) -> None:
    c = lab.connect("xmlrpc", f"127.0.0.1:{twisted_server}", options={"path": "/"})
    assert c.call("add", 40, 2) == 42
    for value in STDLIB_SENDS:  # Twisted marshals with the standard library
        assert c.call("echo", value) == value
    with pytest.raises(XmlRpcFault) as err:
        c.call("fail")
    assert (err.value.code, err.value.string) == (7, "twisted says no")
    assert "add" in c.list_methods()


TWISTED_CLIENT = textwrap.dedent("""
    import datetime, json, sys
    from twisted.internet import defer, task
    from twisted.web.xmlrpc import Proxy

    @defer.inlineCallbacks
    def main(reactor, url):
        proxy = Proxy(url.encode(), allowNone=True, useDateTime=True)
        out = {}
        out["add"] = yield proxy.callRemote("add", 2, 3)
        out["upper"] = yield proxy.callRemote("upper", "twisted")
        when = yield proxy.callRemote("echo", datetime.datetime(2026, 12, 4, 15, 30))
        out["echo_date"] = when.isoformat()
        out["echo_struct"] = yield proxy.callRemote("echo", {"a": [1, 2.5, True, None]})
        try:
            yield proxy.callRemote("divide", 1, 0)
        except Exception as exc:
            out["fault"] = [exc.faultCode, exc.faultString]
        print(json.dumps(out), flush=True)

    task.react(main, sys.argv[1:])
""")


def test_twisted_proxy_calls_our_server(lab: Lab, tmp_path: Path) -> None:
    srv = lab.serve("xmlrpc")
    script = tmp_path / "twisted_xmlrpc_client.py"
    script.write_text(TWISTED_CLIENT)
    done = subprocess.run([sys.executable, "-W", "ignore", str(script), f"http://127.0.0.1:{srv.port}/RPC2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["add"] == 5 and out["upper"] == "TWISTED"
    assert out["echo_date"] == "2026-12-04T15:30:00"
    assert out["echo_struct"] == {"a": [1, 2.5, True, None]}
    assert out["fault"][0] == -32500 and "ZeroDivisionError" in out["fault"][1]


def test_curl_posts_a_call(lab: Lab) -> None:
    srv = lab.serve("xmlrpc")
    call = b"<?xml version='1.0'?><methodCall><methodName>add</methodName><params>" \
           b"<param><value><i4>7</i4></value></param><param><value><int>8</int></value></param></params></methodCall>"
    done = subprocess.run([require("curl"), "-sS", "-H", "Content-Type: text/xml", "--data-binary", "@-",
                           f"http://127.0.0.1:{srv.port}/RPC2"], input=call, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert xmlrpc_client.loads(done.stdout)[0] == (15,)


def test_our_client_against_an_http10_server_that_closes_each_time(lab: Lab) -> None:
    """SimpleXMLRPCServer as it comes (HTTP/1.0): each call after the first
    goes out on a new connection, a child of the client's in the log."""
    server = xmlrpc.server.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)
    server.register_function(lambda a, b: a + b, "add")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        c = lab.connect("xmlrpc", f"127.0.0.1:{server.server_address[1]}")
        assert [c.call("add", n, 1) for n in range(3)] == [1, 2, 3]
        opened = [e.conn for e in lab.log.query(EventFilter(endpoint=c.name, kinds=frozenset({EventKind.OPEN})))]
        assert len(opened) == 3 and opened[0] == c.conn.id
        assert all(o.startswith(f"{c.conn.id}.r") for o in opened[1:])
        c.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_netlab_processes_serve_and_proxy_for_xmlrpc_client(simple_server: tuple[int, Any]) -> None:
    """`netlab serve xmlrpc` and `netlab proxy xmlrpc --json` as processes:
    xmlrpc.client calls the first, and the second on its way to
    SimpleXMLRPCServer, whose events print decoded."""
    port = free_port()
    with Proc([sys.executable, "-m", "lab", "serve", "xmlrpc", "--port", str(port)]):
        wait_for_port(port, timeout=60)
        with _stdlib(port) as p:
            assert p.add(2, 2) == 4 and p.upper("cli") == "CLI"
    far, _ = simple_server
    args = [sys.executable, "-m", "lab", "proxy", "xmlrpc", "--to", f"127.0.0.1:{far}", "--json"]
    with Proc(args) as proc:
        line = proc.wait_for(r"proxy on tcp://127\.0\.0\.1:\d+", timeout=60, stream="stderr")
        match = re.search(r"tcp://127\.0\.0\.1:(\d+)", line)
        assert match is not None
        with _stdlib(int(match.group(1))) as p:
            assert p.add(5, 6) == 11
        proc.wait_for(r"XML-RPC reply 11", timeout=30, stream="stdout")
        proc.stop()
