"""The Lab: serving, connecting, naming, hooks, limits and shutdown on real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from helpers import free_port, wait_until

from lab import ConfigError, ConnectionClosed, Lab, LabError, LabTimeout
from lab.endpoints import Client, Server
from lab.eventlog import EventFilter, EventKind
from lab.protocols._base import Message
from lab.services import ServiceKey


def test_serve_connect_send_expect_over_tcp(lab: Lab) -> None:
    """The issue's tour: serve on a free port, connect by server object, echo."""
    srv = lab.serve("echo", port=0)
    assert srv.port > 0 and srv.address == f"tcp://127.0.0.1:{srv.port}"
    c = lab.connect("echo", srv)
    c.send(b"hi\r\n")
    assert c.expect(b"hi").raw == b"hi\r\n"
    kinds = [(e.endpoint, e.kind, e.direction.value) for e in lab.log.tail(20)
             if e.kind is EventKind.MESSAGE]
    assert kinds == [("c1", EventKind.MESSAGE, "out"), (srv.name, EventKind.MESSAGE, "in"),
                     (srv.name, EventKind.MESSAGE, "out"), ("c1", EventKind.MESSAGE, "in")]


def test_serve_and_connect_over_udp(lab: Lab) -> None:
    """UDP servers answer each datagram; each peer is a connection in the log."""
    srv = lab.serve("echo", transport="udp")
    assert srv.address.startswith("udp://")
    c = lab.connect("echo", srv)
    assert c.echo(b"one datagram") == b"one datagram"
    assert c.echo(b"") == b""  # empty datagrams are legal
    assert len(srv.connections) == 1


def test_connect_by_name_and_by_address(lab: Lab) -> None:
    """A target may be a server's name or host:port."""
    srv = lab.serve("echo", name="e")
    by_name = lab.connect("echo", "e")
    by_addr = lab.connect("echo", f"127.0.0.1:{srv.port}", name="c-addr")
    assert by_name.echo("a") == b"a" and by_addr.echo("b") == b"b"
    assert set(lab.endpoints) == {"e", "c1", "c-addr"}


def test_auto_names_and_conflicts(lab: Lab) -> None:
    """Servers are named after their protocol, clients c1, c2...; a taken name is refused."""
    a, b = lab.serve("echo"), lab.serve("echo")
    assert (a.name, b.name) == ("echo1", "echo2")
    with pytest.raises(ConfigError, match="taken"):
        lab.serve("echo", name="echo1")
    with pytest.raises(ConfigError, match="bad endpoint name"):
        lab.serve("echo", name="no spaces")
    with pytest.raises(ConfigError, match="did you mean 'echo1'"):
        lab.get("ehco1")


def test_unknown_protocol_suggests(lab: Lab) -> None:
    """A mistyped protocol name gets a suggestion."""
    with pytest.raises(ConfigError, match="did you mean 'echo'"):
        lab.serve("ehco")


def test_port_in_use_is_a_readable_error(lab: Lab) -> None:
    """Binding a taken port says so and suggests port 0."""
    srv = lab.serve("echo")
    with pytest.raises(ConfigError, match="cannot listen"):
        lab.serve("echo", port=srv.port, name="again")
    assert "again" not in lab


def test_connect_refused_is_a_readable_error(lab: Lab) -> None:
    """Connecting where nothing listens names the address and leaves no endpoint."""
    port = free_port()
    with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
        lab.connect("echo", f"127.0.0.1:{port}")
    assert not lab.clients


def test_stop_closes_connections_and_frees_the_name(lab: Lab) -> None:
    """Stopping a server closes its clients' connections; the name is free again."""
    srv = lab.serve("echo", name="e")
    c = lab.connect("echo", srv)
    assert lab.stop("e") == ["e"]
    with pytest.raises(ConnectionClosed):
        c.receive(timeout=5)
    assert "e" not in lab
    lab.serve("echo", name="e")


def test_ls_reports_counters(lab: Lab) -> None:
    """ls() gives a row per endpoint with bytes in and out."""
    srv = lab.serve("echo")
    c = lab.connect("echo", srv)
    c.echo("12345")
    rows = {r["name"]: r for r in lab.ls()}
    assert rows[srv.name]["bytes_in"] == 5 and rows[srv.name]["connections"] == 1
    assert rows[c.name]["bytes_out"] == 5 and rows[c.name]["state"] == "open"


def test_hook_replaces_behaviour_and_errors_are_events(lab: Lab) -> None:
    """srv.on() overrides handling live; a hook that raises is logged and serving goes on."""
    srv = lab.serve("echo")
    srv.on("data", lambda msg, conn: conn.send(msg.raw.upper()))
    c = lab.connect("echo", srv)
    assert c.echo("shout") == b"SHOUT"

    def broken(msg: Message, conn: object) -> None:
        raise ValueError("oops")

    srv.off()
    srv.on("data", broken, replace=False)
    assert c.echo("still works") == b"still works"
    errors = lab.log.query(EventFilter(kinds=frozenset({EventKind.ERROR})))
    assert any("ValueError: oops" in e.summary for e in errors)


def test_connection_limit_refuses_extra_clients(lab: Lab) -> None:
    """Beyond max_connections new connections are closed and logged; old ones keep working."""
    srv = lab.serve("echo", max_connections=2)
    first = [lab.connect("echo", srv) for _ in range(2)]
    extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    assert extra.recv(10) == b""  # closed by the server
    extra.close()
    assert srv.refused == 1
    assert all(c.echo("ok") == b"ok" for c in first)
    assert any("refused" in e.summary for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.ERROR}))))


def test_idle_connections_are_closed(lab: Lab) -> None:
    """A client that never speaks is disconnected after the idle timeout."""
    srv = lab.serve("echo", idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        assert s.recv(10) == b""
    wait_until(lambda: any("idle" in e.summary for e in lab.log.query(EventFilter(endpoint=srv.name))),
               what="an idle event")


def test_expect_failure_says_what_arrived(lab: Lab) -> None:
    """A timed-out expect lists the messages that did arrive."""
    c = lab.connect("echo", lab.serve("echo"))
    c.send(b"apples\r\n")
    with pytest.raises(LabTimeout, match=r'expected .*pears.*got "apples'):
        c.expect("pears", timeout=0.5)


def test_async_api_from_another_loop(lab: Lab) -> None:
    """aserve/aconnect/aexpect work when awaited from a different event loop."""

    async def main() -> bytes:
        srv = await lab.aserve("echo")
        c = await lab.aconnect("echo", srv)
        await c.asend(b"from afar\r\n")
        msg = await c.aexpect(b"afar")
        await c.aclose()
        return msg.raw

    assert asyncio.run(main()) == b"from afar\r\n"


def test_closing_the_lab_stops_everything() -> None:
    """Closing stops servers and clients, ends the thread and frees the port."""
    lab = Lab.start()
    srv = lab.serve("echo")
    port = srv.port
    lab.connect("echo", srv)
    lab.close()
    assert not [t for t in threading.enumerate() if t.name == "netlab-reactor" and t.is_alive()]
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    with pytest.raises(LabError):
        lab.serve("echo")


def test_endpoint_types_and_reprs(lab: Lab) -> None:
    """Reprs say what an endpoint is, for shells."""
    srv = lab.serve("echo")
    c = lab.connect("echo", srv)
    assert isinstance(srv, Server) and isinstance(c, Client)
    assert "listening" in repr(srv) and "echo" in repr(c)
    assert "echo" in dir(c) and "aecho" in dir(c)


def test_a_server_offers_its_behaviours_shell_names(lab: Lab) -> None:
    """`srv.NAME` reaches the behaviour's own API where the behaviour lists NAME; nothing else leaks."""
    srv = lab.serve("echo")
    type(srv.behaviour).shell_names = ("check_bind",)
    try:
        assert srv.check_bind == srv.behaviour.check_bind and "check_bind" in dir(srv)
    finally:
        del type(srv.behaviour).shell_names
    with pytest.raises(AttributeError, match="has no attribute 'session_type'"):
        _ = srv.session_type


def test_the_lab_runs_on_uvloop() -> None:
    """The same lab works on uvloop: TCP through the shared read buffer, and UDP."""
    with Lab.start(loop="uvloop") as lab:
        big = b"x" * 300_000
        assert lab.connect("echo", lab.serve("echo")).echo(big) == big
        assert lab.connect("time", lab.serve("time", transport="udp")).get().year >= 2026


def test_servers_of_one_lab_share_services(lab: Lab) -> None:
    """Two servers in one lab see one Services object; a second lab has its own."""
    a = lab.serve("echo")
    b = lab.serve("discard")
    assert a.behaviour.services is b.behaviour.services is lab.services
    key: ServiceKey[dict[str, int]] = ServiceKey("test.store", dict)
    store = lab.services.get(key)
    assert b.behaviour.services.get(key) is store
    assert key in lab.services and lab.services.names() == ["lab.console", "lab.listeners", "test.store"]
    with Lab() as other:
        assert other.services.find(key) is None



def test_connect_refuses_client_options_a_protocol_does_not_have(lab: Lab) -> None:
    """An unknown client option is a ConfigError naming what exists; nothing connects."""
    srv = lab.serve("echo")
    with pytest.raises(ConfigError, match="echo: unknown client option 'colour'") as info:
        lab.connect("echo", srv, name="c", options={"colour": "red"})
    assert "none" in (info.value.hint or "") and "c" not in lab
    assert srv.accepted == 0


def test_byte_totals_outlive_the_connections(lab: Lab) -> None:
    """After its clients have gone, a server still shows what they moved
    (live connections 0, totals kept), as `ls` and the console tree show."""
    srv = lab.serve("echo", name="e")
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"hello\r\n")
            assert s.recv(100) == b"hello\r\n"
    wait_until(lambda: not srv.connections, 10, "both connections closed")
    status = srv.status()
    assert (status["connections"], status["accepted"]) == (0, 2)
    assert (status["bytes_in"], status["bytes_out"]) == (14, 14)


def test_address_mistakes_say_what_is_wrong(lab: Lab) -> None:
    """A port past 65535 is out of range (as `serve` says), not "not an
    address"; a refused connection names the address, and the lab's own
    servers only when it has some."""
    from lab.lab import parse_address

    with pytest.raises(ConfigError, match=r"port 99999 is out of range — use 1-65535"):
        parse_address("127.0.0.1:99999")
    with pytest.raises(ConfigError, match="not an address"):
        parse_address("127.0.0.1")
    port = free_port()
    with pytest.raises(ConfigError) as err:
        lab.connect("echo", f"127.0.0.1:{port}")
    assert str(err.value).endswith(f"is a server listening on 127.0.0.1:{port}?")
    lab.serve("echo", name="mine")
    with pytest.raises(ConfigError, match=r"The lab's: mine \(`ls` shows their addresses\)"):
        lab.connect("echo", f"127.0.0.1:{port}")


def test_quiet_udp_peers_are_forgotten(lab: Lab) -> None:
    """UDP has no close: a peer silent past the idle timeout (at most 30 s
    by default) leaves the live list; the totals keep what it sent."""
    from lab.endpoints import UDP_PEER_IDLE

    assert lab.serve("echo", transport="udp", name="u30")._udp_idle == UDP_PEER_IDLE == 30.0
    srv = lab.serve("echo", transport="udp", name="u", idle_timeout=0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(b"ping\r\n", ("127.0.0.1", srv.port))
        assert s.recv(100) == b"ping\r\n"
    wait_until(lambda: srv.accepted == 1 and not srv.connections, 10, "the quiet peer forgotten")
    assert srv.status()["bytes_in"] == 6


def test_the_listeners_service_names_what_listens_where(lab: Lab) -> None:
    """LISTENERS: the protocol of a lab server or proxy by TCP address (for
    relays into the lab); nothing for UDP, other ports or stopped servers."""
    from lab.services import LISTENERS

    listeners = lab.services.get(LISTENERS)
    mx = lab.serve("smtp", name="mx")
    udp = lab.serve("echo", transport="udp")
    assert listeners.protocol_at("127.0.0.1", mx.port) == "smtp"
    assert listeners.protocol_at("127.0.0.2", mx.port) is None
    assert listeners.protocol_at("127.0.0.1", udp.port) is None
    mx.stop()
    assert listeners.protocol_at("127.0.0.1", mx.port) is None
