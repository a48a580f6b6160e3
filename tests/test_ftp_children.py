"""Connections that belong to another (FTP's data connections,
lab/connection.py ``Connection.child``): their ids hang off the parent's,
their events go to the parent's endpoint, they are listed as the parent's
children while open, and a transfer counts its bytes without logging
each chunk."""

from __future__ import annotations

import socket

from helpers import wait_until

from lab import Lab
from lab.eventlog import Direction, EventFilter, EventKind
from lab.protocols import Conversation, Decoder, Role
from lab.protocols._framing import Data, DataDecoder


class Chunks(Conversation):
    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return DataDecoder()


def test_a_child_connection_is_logged_under_its_parent(lab: Lab) -> None:
    """id f#N.d1, OPEN/MESSAGE/CLOSE on the parent's endpoint, bytes tallied, unlisted once closed."""
    srv = lab.serve("echo", name="e")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"hi\n")
        assert s.recv(10) == b"hi\n"
        (parent,) = srv.live_connections()
        closed: list[bool] = []

        async def make() -> None:
            child = parent.child("d1", Chunks(None), ("127.0.0.1", 5000), ("127.0.0.1", 6000),
                                 close=lambda: closed.append(True))
            assert child.id == f"{parent.id}.d1" and child.parent is parent and parent.children == [child]
            child.sent(Data(raw=b"preview"))
            child.tally(sent=993)
            assert child.bytes_out == 1000
            child.closed("transfer complete")
            assert parent.children == []

        lab.reactor.call(make(), 10)
    events = lab.log.query(EventFilter(conn=f"{parent.id}.d1"))
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.OPEN, EventKind.MESSAGE, EventKind.CLOSE]
    assert all(e.endpoint == "e" for e in events)
    assert events[1].direction is Direction.OUT
    assert "out 1000 B" in events[2].text
    wait_until(lambda: not srv.connections, what="the parent to close")
    assert not closed  # closed by its owner, not by the lab


def test_a_stream_connection_tells_its_transport_extras(lab: Lab) -> None:
    """extra_info reaches the socket (FTP sets SO_OOBINLINE on it), with a default for what is unknown."""
    srv = lab.serve("echo", name="e")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"hi\n")
        assert s.recv(10) == b"hi\n"
        (conn,) = srv.live_connections()
        assert conn.extra_info("sockname")[1] == srv.port
        assert conn.extra_info("socket") is not None
        assert conn.extra_info("no such thing", 7) == 7
