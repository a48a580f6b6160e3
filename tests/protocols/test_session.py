"""Tests for lab/protocols/_session.py: a behaviour makes a session per
connection and hears its lifecycle hooks in order, in memory and from a
real lab; the answer services' shape; client verbs."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from helpers import wait_until
from protocol_fakes import FakePeer, open_session

from lab import Lab
from lab.errors import ConfigError, ProtocolError, RemoteProtocolError
from lab.protocols import ClientVerbs, Message, ProtocolSpec, ServerBehaviour, Session, Transport
from lab.protocols._framing import Line
from lab.protocols._session import AnswerServer
from lab.protocols.echo import EchoConversation


def test_defaults_close_on_eof_and_on_a_protocol_error() -> None:
    """A session with nothing overridden hangs up on EOF and on bytes that break the protocol."""
    for call in (lambda s: s.eof_received(), lambda s: s.protocol_error(RemoteProtocolError("bad"))):
        peer = FakePeer()
        session = open_session(ServerBehaviour(None), peer)
        call(session)
        assert peer.closed


def test_a_behaviour_makes_one_session_per_connection() -> None:
    """session_type is what session() makes; each holds its own connection."""

    class Mine(Session[Any]):
        pass

    class Server(ServerBehaviour[Any]):
        session_type = Mine

    server = Server(None)
    first, second = server.session(FakePeer()), server.session(FakePeer())
    assert isinstance(first, Mine) and first is not second and first.server is server
    assert first.conn is not second.conn


class Answer(AnswerServer[Any]):
    def answer(self) -> Message:
        return Line.of("42")


def test_an_answer_server_answers_once_over_tcp_and_each_datagram_over_udp() -> None:
    tcp = FakePeer()
    open_session(Answer(None), tcp)
    assert tcp.writes == [b"42\r\n"] and tcp.closed
    udp = FakePeer(Transport.UDP)
    session = open_session(Answer(None), udp)
    session.message_received(Line.of("?"))
    session.message_received(Line.of("?"))
    assert udp.writes == [b"42\r\n", b"42\r\n"] and not udp.closed


def test_verbs_are_the_public_coroutines() -> None:
    class Verbs(ClientVerbs[Any]):
        async def ask(self) -> None: ...
        async def _private(self) -> None: ...
        def plain(self) -> None: ...

        def message_received(self, msg: Message) -> None: ...

    assert list(Verbs.verbs()) == ["ask"] and Verbs.watches() and not ClientVerbs.watches()


# -- the lifecycle, from a real lab ---------------------------------------------------------

CALLS: list[str] = []


class Traced(Session["TracedServer"]):
    def connection_made(self) -> None:
        CALLS.append("connection_made")

    def message_received(self, msg: Message) -> None:
        CALLS.append("message_received")
        self.conn.send_raw(msg.raw)

    def connection_lost(self) -> None:
        CALLS.append("connection_lost")


class TracedServer(ServerBehaviour[Any]):
    session_type = Traced

    def check_bind(self, host: str) -> None:
        CALLS.append(f"check_bind {host}")
        if host == "127.0.0.9":
            raise ConfigError("not there")

    def started(self) -> None:
        CALLS.append("started")
        if self.options is not None and getattr(self.options, "fail", False):
            raise ConfigError("cannot start")

    def session(self, conn: Any) -> Session[Any]:
        CALLS.append("session")
        return super().session(conn)

    def stopped(self) -> None:
        CALLS.append("stopped")


TRACED = ProtocolSpec(name="traced", summary="echo, telling what happens", rfc="-", default_port=0,
                      transports=(Transport.TCP,), conversation=EchoConversation, server=TracedServer)


def test_hooks_run_in_order(lab: Lab) -> None:
    """check_bind, started, then per connection session and its handlers;
    stopped after every session heard connection_lost."""
    CALLS.clear()
    srv = lab.serve(TRACED)
    assert srv.behaviour.clock is lab.clock and srv.behaviour.services is lab.services
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"hi")
        assert s.recv(10) == b"hi"
        lab.stop(srv)
    wait_until(lambda: "stopped" in CALLS, what="stopped")
    assert CALLS == ["check_bind 127.0.0.1", "started", "session", "connection_made", "message_received",
                     "connection_lost", "stopped"]


def test_a_refused_bind_or_start_serves_nothing(lab: Lab) -> None:
    """check_bind refuses before listening; a started() that raises closes the listener again."""
    with pytest.raises(ConfigError, match="not there"):
        lab.serve(TRACED, host="127.0.0.9")

    class Failing:
        fail = True

    spec = ProtocolSpec(name="traced", summary="-", rfc="-", default_port=0, transports=(Transport.TCP,),
                        conversation=EchoConversation, server=lambda options: TracedServer(Failing()))
    with pytest.raises(ConfigError, match="cannot start"):
        lab.serve(spec)
    assert lab.endpoints == {}


def test_a_session_error_is_an_event_and_the_server_goes_on(lab: Lab) -> None:
    """A handler that raises: an error event; the next message is handled."""

    class Fussy(Session[Any]):
        def message_received(self, msg: Message) -> None:
            if msg.raw.startswith(b"boom"):
                raise ProtocolError("boom")
            self.conn.send_raw(msg.raw)

    class FussyServer(ServerBehaviour[Any]):
        session_type = Fussy

    spec = ProtocolSpec(name="fussy", summary="-", rfc="-", default_port=0, transports=(Transport.TCP,),
                        conversation=EchoConversation, server=FussyServer)
    srv = lab.serve(spec)
    c = lab.connect("echo", srv)
    c.send(b"boom")
    wait_until(lambda: any("raised ProtocolError: boom" in e.summary for e in lab.log.tail(20)),
               what="the error event")
    c.send(b"fine")
    assert c.expect(b"fine").raw == b"fine"
