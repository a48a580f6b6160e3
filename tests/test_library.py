"""A protocol whose library owns the socket reports through the recorder
interface (lab/protocols/_library.py): a stand-in built on asyncio's
streams, served and dialled from a real lab, traffic decoded in the log,
connections listed, capped and closed by the lab."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from helpers import wait_until

from lab import Lab
from lab.endpoints import Can, EndpointKind
from lab.errors import CommandError, ConfigError
from lab.eventlog import Direction, EventFilter, EventKind
from lab.protocols import ClientVerbs, Conversation, Decoder, ProtocolSpec, Role, ServerBehaviour, Transport
from lab.protocols._framing import Line, LineDecoder
from lab.protocols._library import AsyncioListener, Dialing, Listener, Listening


class Lines(Conversation):
    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return LineDecoder(64)


async def listen(where: Listening) -> Listener:
    """The 'library': asyncio streams, answering each line in capitals."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = where.recorder.opened(writer.get_extra_info("peername"), writer.get_extra_info("sockname"),
                                       close=writer.close)
        try:
            while line := await reader.readline():
                record.received(line)
                answer = Line(raw=line.upper())
                writer.write(answer.raw)
                record.sent(answer)  # a message the library made itself
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            record.closed("client left")
            writer.close()

    return AsyncioListener(await asyncio.start_server(on_connection, where.host, where.port))


class _Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: Any) -> None:
        self.reader, self.writer, self.record = reader, writer, record

    def close(self) -> None:
        self.writer.close()

    async def wait_closed(self) -> None:
        await self.writer.wait_closed()


async def dial(where: Dialing) -> _Link:
    reader, writer = await asyncio.open_connection(where.host, where.port)
    record = where.recorder.opened(writer.get_extra_info("peername"), writer.get_extra_info("sockname"),
                                   close=writer.close)
    return _Link(reader, writer, record)


class ShoutClient(ClientVerbs[Any]):
    async def shout(self, text: str) -> str:
        """Send a line through the library, return the answer."""
        link = self.link
        data = text.encode() + b"\n"
        link.writer.write(data)
        link.record.sent(data)  # raw bytes: the conversation decodes them
        answer = await link.reader.readline()
        link.record.received(answer)
        return answer.decode().strip()


SHOUT = ProtocolSpec(name="shout", summary="answers lines in capitals (a library owns its sockets)", rfc="-",
                     default_port=0, transports=(Transport.TCP,), conversation=Lines, server=ServerBehaviour,
                     client=ShoutClient, listen=listen, dial=dial)


def messages(lab: Lab, endpoint: str) -> list[tuple[str, str]]:
    return [(e.direction.value, e.summary) for e in lab.log.query(
        EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))]


def test_a_library_owned_server_is_recorded_like_any_other(lab: Lab) -> None:
    """Served from the lab: listed, its connection opened, both directions
    decoded (raw bytes and library-made messages alike), counted, closed."""
    srv = lab.serve(SHOUT, name="sh")
    assert srv.kind is EndpointKind.SERVER and srv.can(Can.LISTEN) and not srv.can(Can.HOOK)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        f = s.makefile("rb")
        s.sendall(b"hello\nworld\n")
        assert [f.readline(), f.readline()] == [b"HELLO\n", b"WORLD\n"]
        wait_until(lambda: len(srv.connections) == 1, what="the recorded connection")
        (conn,) = srv.live_connections()
        # the library reports its answer just after writing it
        wait_until(lambda: conn.bytes_in == conn.bytes_out == 12, what="both lines counted")
        f.close()  # the socket's file keeps it open otherwise
    wait_until(lambda: not srv.connections, what="the close to be recorded")
    assert messages(lab, "sh") == [("in", '"hello\\n"'), ("out", '"HELLO\\n"'),
                                   ("in", '"world\\n"'), ("out", '"WORLD\\n"')]
    kinds = [e.kind for e in lab.log.query(EventFilter(endpoint="sh"))]
    assert kinds[0] is EventKind.LISTEN and EventKind.OPEN in kinds and EventKind.CLOSE in kinds
    assert lab.ls()[0]["accepted"] == 1


def test_capture_levels_apply(lab: Lab) -> None:
    """capture off: no messages in the log, the counters still count."""
    srv = lab.serve(SHOUT, capture="off")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"quiet\n")
        with s.makefile("rb") as f:
            assert f.readline() == b"QUIET\n"
        wait_until(lambda: srv.live_connections() and srv.live_connections()[0].bytes_out == 6,
                   what="the answer to be counted")
    assert messages(lab, srv.name) == []


def test_stopping_closes_what_the_library_holds(lab: Lab) -> None:
    """stop closes the library's connections and listener through the recorder."""
    srv = lab.serve(SHOUT)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"x\n")
        with s.makefile("rb") as f:
            assert f.readline() == b"X\n"
            lab.stop(srv)
            assert f.readline() == b""  # our side closed by the lab
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()


def test_the_connection_cap_holds(lab: Lab) -> None:
    """max_connections refuses the extra connection by closing it through the library."""
    srv = lab.serve(SHOUT, max_connections=1)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as first:
        first.sendall(b"a\n")
        with first.makefile("rb") as f:
            assert f.readline() == b"A\n"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as second:
            try:
                assert second.recv(10) == b""
            except ConnectionResetError:
                pass
    assert srv.refused == 1


def test_undecodable_bytes_are_noted_not_fatal(lab: Lab) -> None:
    """A line over the conversation's cap is a note; the library and the lab go on."""
    srv = lab.serve(SHOUT)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"y" * 100 + b"\nok\n")
        with s.makefile("rb") as f:
            assert f.readline() == b"Y" * 100 + b"\n" and f.readline() == b"OK\n"
    notes = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.INFO})))]
    assert any("do not decode as shout" in n for n in notes)


def test_a_library_owned_client_records_through_the_same_interface(lab: Lab) -> None:
    """dial: the verbs drive the library; the client is listed, its traffic
    decoded; send/expect are refused with a reason."""
    srv = lab.serve(SHOUT)
    c = lab.connect(SHOUT, srv, name="c")
    assert c.shout("hi there") == "HI THERE"
    assert c.can(Can.CONNECT) and c.can(Can.VERBS) and not c.can(Can.SEND)
    assert messages(lab, "c") == [("out", '"hi there\\n"'), ("in", '"HI THERE\\n"')]
    from lab.commands import Interpreter

    with pytest.raises(CommandError, match="not a client"):
        Interpreter(lab).execute("send c hello")
    lab.stop(c)
    assert c.conn.state.value == "closed"


def test_a_library_that_cannot_listen_is_a_config_error(lab: Lab) -> None:
    """A port in use: the same one-line error as for any server."""
    busy = lab.serve(SHOUT)
    with pytest.raises(ConfigError, match="cannot listen"):
        lab.serve(SHOUT, port=busy.port)


def test_events_keep_their_directions(lab: Lab) -> None:
    """What the client sent is in, what the library answered is out."""
    srv = lab.serve(SHOUT)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"dir\n")
        with s.makefile("rb") as f:
            assert f.readline() == b"DIR\n"
    wait_until(lambda: not srv.connections, what="the close")
    directions = [e.direction for e in lab.log.query(EventFilter(endpoint=srv.name,
                                                                 kinds=frozenset({EventKind.MESSAGE})))]
    assert directions == [Direction.IN, Direction.OUT]
