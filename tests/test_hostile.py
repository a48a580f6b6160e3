"""Hostile input on real sockets: oversized lines, garbage, silent clients and
connection storms never stop a server from serving the next client, keep
memory bounded, and each incident is an event in the log."""

from __future__ import annotations

import os
import socket
import tracemalloc
from typing import Any

import pytest
from helpers import wait_until

from lab import Lab
from lab.endpoints import Server
from lab.eventlog import EventFilter, EventKind
from lab.protocols import Conversation, Decoder, Message, ProtocolSpec, Role, ServerBehaviour, Session, Transport
from lab.protocols._framing import LineDecoder

USERS = ["alice=Alice Liddell"]


def errors(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.ERROR})))]


def well_behaved_finger(lab: Lab, srv: Server) -> None:
    c = lab.connect("finger", srv)
    assert "Alice Liddell" in c.query("alice", timeout=20)


def blast(port: int, total: int, chunk: int = 64 * 1024) -> bytes:
    """Send `total` bytes with no newline, then read what the server says."""
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        block = b"A" * chunk
        sent = 0
        try:
            while sent < total:
                s.sendall(block)
                sent += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up on us, as it should
        try:
            while data := s.recv(65536):
                reply += data
        except ConnectionResetError:
            pass
    return reply


def test_ten_megabyte_line_to_finger(lab: Lab) -> None:
    """A 10 MB line without a newline is refused early; memory stays small."""
    srv = lab.serve("finger", user=USERS)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        reply = blast(srv.port, 10 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while a 10 MB line arrived"
    assert reply == b"" or reply.startswith(b"finger:")
    wait_until(lambda: any("longer than" in e for e in errors(lab, srv.name)), what="an error event")
    well_behaved_finger(lab, srv)


def test_binary_garbage_to_finger(lab: Lab) -> None:
    """NULs and high bytes get an error reply and an event; the server goes on."""
    srv = lab.serve("finger", user=USERS)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(bytes(range(256)) + b"\r\n")
        reply = b""
        while data := s.recv(4096):
            reply += data
    assert reply.startswith(b"finger: ")
    wait_until(lambda: errors(lab, srv.name), what="an error event")
    well_behaved_finger(lab, srv)


@pytest.mark.parametrize("protocol", ["echo", "discard", "finger", "daytime", "qotd", "time", "chargen"])
def test_garbage_to_every_tcp_server(lab: Lab, protocol: str) -> None:
    """Random bytes to each server never break it: a second client is still served."""
    srv = lab.serve(protocol, idle_timeout=5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(os.urandom(4096) + b"\n\x00\xff\r\n" + os.urandom(1024))
        s.settimeout(20)
        try:
            s.recv(1024)
        except (ConnectionResetError, TimeoutError):
            pass
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        if protocol in ("echo",):
            s.sendall(b"ok\r\n")
            assert s.recv(10) == b"ok\r\n"
        elif protocol in ("daytime", "qotd", "time", "chargen"):
            assert s.recv(10)
    assert srv.state.value == "listening"


def test_silent_client_is_timed_out_while_others_are_served(lab: Lab) -> None:
    """A client that connects and never speaks is closed after the idle time;
    meanwhile other clients get answers."""
    srv = lab.serve("finger", user=USERS, idle_timeout=1.0)
    silent = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    try:
        well_behaved_finger(lab, srv)
        assert silent.recv(10) == b""  # closed by the server
    finally:
        silent.close()
    assert any("idle" in e for e in errors(lab, srv.name))


@pytest.mark.parametrize("protocol", ["echo", "finger"])
def test_five_hundred_connections_opened_and_dropped(lab: Lab, protocol: str) -> None:
    """500 connections at once, dropped at once: the next client is served and
    every connection left an event."""
    srv = lab.serve(protocol, user=USERS) if protocol == "finger" else lab.serve(protocol)
    socks = []
    try:
        for _ in range(500):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            socks.append(s)
    finally:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST: as abrupt as a drop gets
    if protocol == "finger":
        well_behaved_finger(lab, srv)
    else:
        c = lab.connect("echo", srv)
        assert c.echo("still here") == b"still here"

    live = 1 if protocol == "echo" else 0  # the well-behaved echo client stays connected
    wait_until(lambda: len(srv.connections) == live, timeout=30, what="every dropped connection to close")
    events = lab.log.query(EventFilter(endpoint=srv.name))
    opened = sum(1 for e in events if e.kind is EventKind.OPEN)
    refused = sum(1 for e in events if e.kind is EventKind.ERROR and "refused" in e.summary)
    closed = sum(1 for e in events if e.kind is EventKind.CLOSE)
    assert opened + refused >= 1
    assert closed >= opened - 1  # all but the live well-behaved one
    assert srv.accepted + srv.refused == opened + refused


def test_client_that_never_reads_cannot_grow_the_echo_buffer(lab: Lab) -> None:
    """Backpressure: an echo client that writes but never reads stalls itself,
    not the server's memory."""
    srv = lab.serve("echo", capture="off")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    s.setblocking(False)
    sent = 0
    block = b"x" * 65536
    try:
        for _ in range(2000):  # at most 128 MiB offered
            try:
                sent += s.send(block)
            except BlockingIOError:
                # kernel buffers full both ways: the server stopped reading
                if wait_until_blocked(s, block):
                    break
        (conn,) = srv.connections.values()
        assert conn.bytes_in < 64 * 1024 * 1024
        assert conn.write_paused
    finally:
        s.close()
    c = lab.connect("echo", srv)
    assert c.echo("next") == b"next"


def wait_until_blocked(s: socket.socket, block: bytes) -> bool:
    """True once sending stays blocked for a while (the peer stopped reading)."""
    import select

    _, writable, _ = select.select([], [s], [], 1.0)
    return not writable


class _Lines(Conversation):
    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return LineDecoder()


class _HangUpSession(Session[Any]):
    def message_received(self, msg: Message) -> None:
        self.conn.send_raw(b"bye\r\n")  # raises if called again after the hang-up
        self.conn.close()


class _AnswerOnceThenHangUp(ServerBehaviour[Any]):
    session_type = _HangUpSession


HANG_UP = ProtocolSpec(name="hangup", summary="answers one line and hangs up", rfc="-", default_port=0,
                       transports=(Transport.TCP,), conversation=_Lines, server=_AnswerOnceThenHangUp)


def test_lines_after_a_hang_up_are_logged_not_handled(lab: Lab) -> None:
    """Two lines in one segment to a server that hangs up after the first:
    the second is logged as received but never handed to the behaviour."""
    srv = lab.serve(HANG_UP)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(b"one\r\ntwo\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply == b"bye\r\n"
    wait_until(lambda: not srv.connections, timeout=30)
    assert errors(lab, srv.name) == []
    messages = lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE})))
    received = [e.message.raw for e in messages if e.message is not None and e.direction.value == "in"]
    assert received == [b"one\r\n", b"two\r\n"]
