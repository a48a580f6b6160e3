"""Interop: SOAP 1.1 with peers nobody here wrote, over real sockets.

* zeep and suds-community read our WSDL and call our server (every demo
  operation's types, lists, optional parameters, faults, an operation
  registered live);
* our client reads spyne's WSDL and calls spyne 2.14 (its WSGI app under
  wsgiref, which closes after each answer, in a subprocess);
* zeep -> ``netlab proxy`` -> spyne, the proxy decoding both directions.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, free_port, wait_for_port, wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.soap import SoapFault

pytestmark = [
    pytest.mark.interop,
    # zeep and suds use pkg_resources-era APIs and lxml features that warn on import
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def _zeep(port: int, path: str = "/soap") -> Any:
    import zeep

    return zeep.Client(f"http://127.0.0.1:{port}{path}?wsdl")


def test_zeep_calls_our_server_through_its_wsdl(lab: Lab) -> None:
    srv = lab.serve("soap")
    z = _zeep(srv.port)
    assert z.service.add(a=2, b=40) == 42
    assert z.service.upper(text="héllo <&>") == "HÉLLO <&>"
    assert z.service.total(values=[1.5, 2.5, 3]) == 7.0
    assert z.service.split(text="a b c") == ["a", "b", "c"]
    assert z.service.split(text="a,b", sep=",") == ["a", "b"]
    assert z.service.reverse(data=b"\x00\x01\xff") == b"\xff\x01\x00"
    assert isinstance(z.service.now(), dt.datetime)


def test_zeep_gets_soap_faults_and_the_server_goes_on(lab: Lab) -> None:
    import zeep.exceptions

    srv = lab.serve("soap")
    z = _zeep(srv.port)
    with pytest.raises(zeep.exceptions.Fault) as err:
        z.service.divide(a=1.0, b=0.0)
    assert err.value.code.endswith("Server") and "ZeroDivisionError" in err.value.message
    assert z.service.add(a=1, b=1) == 2
    notes = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.INFO})))]
    assert any(n.startswith("SOAP fault Server for divide") for n in notes)


def test_an_operation_registered_live_reaches_zeep(lab: Lab) -> None:
    srv = lab.serve("soap", demo="no")

    @srv.register
    def greet(name: str, times: int = 1) -> list[str]:
        """Hello, several times."""
        return [f"hello {name}"] * times

    z = _zeep(srv.port)
    assert z.service.greet(name="bob", times=2) == ["hello bob", "hello bob"]


def test_suds_calls_our_server_through_its_wsdl(lab: Lab) -> None:
    from suds.client import Client

    srv = lab.serve("soap")
    client = Client(f"http://127.0.0.1:{srv.port}/soap?wsdl", cache=None)
    assert client.service.add(2, 3) == 5
    assert client.service.upper("suds") == "SUDS"
    assert client.service.total([1.0, 2.0]) == 3.0
    with pytest.raises(Exception, match="ZeroDivisionError"):
        client.service.divide(1.0, 0.0)


SPYNE_SERVER = textwrap.dedent("""
    import logging, sys, warnings
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    from wsgiref.simple_server import WSGIRequestHandler, make_server
    from spyne import Application, Array, Double, Fault, Integer, Iterable, ServiceBase, Unicode, rpc
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

    class Lab(ServiceBase):
        @rpc(Integer, Integer, _returns=Integer)
        def add(ctx, a, b):
            return a + b

        @rpc(Unicode, Integer, _returns=Iterable(Unicode))
        def say_hello(ctx, name, times):
            for _ in range(times):
                yield f"Hello, {name}"

        @rpc(Array(Double), _returns=Double)
        def mean(ctx, xs):
            return sum(xs) / len(xs)

        @rpc(Unicode)
        def refuse(ctx, why):
            raise Fault(faultcode="Client.Refused", faultstring=why)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    app = Application([Lab], tns="spyne.lab", in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    httpd = make_server("127.0.0.1", 0, WsgiApplication(app), handler_class=Quiet)
    print("PORT", httpd.server_port, flush=True)
    httpd.serve_forever()
""")


@pytest.fixture
def spyne_server(tmp_path: Path) -> Iterator[int]:
    """spyne 2.14's WSGI application under wsgiref, in a subprocess; its port
    from its first line."""
    script = tmp_path / "spyne_server.py"
    script.write_text(SPYNE_SERVER)
    proc = Proc([sys.executable, str(script)])
    try:
        line = proc.wait_for(r"^PORT \d+", timeout=60)
        yield int(line.split()[1])
    finally:
        proc.stop(15)


def test_our_client_reads_spynes_wsdl_and_calls_it(lab: Lab, spyne_server: int) -> None:
    """wsgiref closes after each answer: each call after the first goes on a
    new connection, recorded as a child of the client's."""
    c = lab.connect("soap", f"127.0.0.1:{spyne_server}", options={"wsdl": "/?wsdl"})
    assert c.load_wsdl() == ["add", "mean", "refuse", "say_hello"]
    assert c.operations()["say_hello"] == ["name", "times"]
    assert c.call("add", a=2, b=3) == 5
    assert c.call("say_hello", name="lab", times=2) == ["Hello, lab", "Hello, lab"]
    assert c.call("mean", xs=[1.0, 2.0, 6.0]) == 3.0
    with pytest.raises(SoapFault) as err:
        c.call("refuse", why="not today")
    assert (err.value.code, err.value.string) == ("Client.Refused", "not today")
    kids = {e.conn for e in lab.log.query(EventFilter(endpoint=c.name, kinds=frozenset({EventKind.OPEN})))}
    assert len(kids) >= 4 and all(k.startswith(f"{c.conn.id}") for k in kids)
    summaries = [e.summary for e in lab.log.query(EventFilter(endpoint=c.name, kinds=frozenset({EventKind.MESSAGE})))]
    assert "SOAP add(a='2', b='3')" in summaries and "SOAP fault Client.Refused: not today" in summaries


def test_zeep_through_the_netlab_proxy_to_spyne(lab: Lab, spyne_server: int) -> None:
    """zeep -> netlab proxy -> spyne: the same answers, and the proxy's log
    holds each request and reply decoded."""
    px = lab.proxy("soap", to=f"127.0.0.1:{spyne_server}")
    z = _zeep(px.port, "/")
    assert z.service.add(a=20, b=22) == 42
    assert z.service.say_hello(name="proxy", times=1) == ["Hello, proxy"]

    def summaries() -> list[str]:
        return [e.summary for e in lab.log.query(EventFilter(endpoint=px.name, kinds=frozenset({EventKind.MESSAGE})))]

    wait_until(lambda: any(s.startswith("SOAP say_helloResponse") for s in summaries()), what="the reply in the log")
    got = summaries()
    assert "SOAP add(a='20', b='22')" in got and "SOAP addResponse {addResult: '42'}" in got


def test_zeep_through_a_netlab_proxy_process_to_spyne(spyne_server: int) -> None:
    """`netlab proxy soap --json` as a process between zeep and spyne: the
    WSDL and the call pass, and the printed events are decoded SOAP."""
    args = [sys.executable, "-m", "lab", "proxy", "soap", "--to", f"127.0.0.1:{spyne_server}", "--json"]
    with Proc(args) as proc:
        line = proc.wait_for(r"proxy on tcp://127\.0\.0\.1:\d+", timeout=60, stream="stderr")
        match = re.search(r"tcp://127\.0\.0\.1:(\d+)", line)
        assert match is not None
        z = _zeep(int(match.group(1)), "/")
        assert z.service.add(a=1, b=2) == 3
        proc.wait_for(r"SOAP addResponse", timeout=30, stream="stdout")
        proc.stop()


def test_zeep_calls_a_netlab_serve_process(tmp_path: Path) -> None:
    port = free_port()
    with Proc([sys.executable, "-m", "lab", "serve", "soap", "--port", str(port), "--namespace", "urn:cli"]):
        wait_for_port(port, timeout=60)
        z = _zeep(port)
        assert z.service.upper(text="cli") == "CLI"
