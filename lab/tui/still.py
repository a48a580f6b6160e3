"""A still lab: real servers and clients joined by in-memory pipes, with
fixed ports, addresses and times, so the screen it makes is the same on
every run (for the README's screenshot and the snapshot tests); and, on
request, a proxy whose intercepts hold a few messages.

Nothing here binds a socket or needs the reactor to run.

Tests: tests/tui/test_snapshots.py
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab import protocols
from lab.connection import StreamConnection
from lab.endpoints import Client, Server, ServerState
from lab.eventlog import Capture, Direction, EventKind
from lab.lab import Lab
from lab.protocols._base import Role, Transport
from lab.proxy import Proxy

if TYPE_CHECKING:
    from lab.tui.app import NetlabApp

__all__ = ["START", "pose", "still_holds", "still_lab"]

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


class _Wire:
    """Bytes in flight between pipe ends, delivered in order by :meth:`flush`
    (after the sender has logged what it sent, as on a real network)."""

    def __init__(self) -> None:
        self.pending: deque[Callable[[], object]] = deque()

    def flush(self) -> None:
        while self.pending:
            self.pending.popleft()()


class _Pipe(asyncio.Transport):
    """One end of an in-memory TCP connection."""

    def __init__(self, wire: _Wire, here: tuple[str, int], there: tuple[str, int]) -> None:
        super().__init__()
        self.wire = wire
        self.here, self.there = here, there
        self.peer_conn: StreamConnection | None = None
        self.own: StreamConnection | None = None
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.there, "sockname": self.here}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self.peer_conn
        if peer is not None and not self.closed:
            chunk = bytes(data)
            self.wire.pending.append(lambda: peer._received(chunk))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        own, peer = self.own, self.peer_conn
        if peer is not None:
            self.wire.pending.append(peer.eof_received)
        for conn in (own, peer):
            if conn is not None:
                self.wire.pending.append(functools.partial(conn.connection_lost, None))

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.close()


def _server(lab: Lab, name: str, proto: str, port: int, **options: Any) -> Server:
    spec = protocols.get(proto)
    server = Server(lab, name, spec, host="127.0.0.1", port=port, transport=Transport.TCP,
                    options=spec.resolve_options(options), capture=Capture.FULL,
                    max_connections=64, idle_timeout=None)
    server.state = ServerState.LISTENING
    lab.endpoints[name] = server
    lab.log.emit(EventKind.LISTEN, endpoint=name, protocol=proto, text=f"{proto} listening on {server.address}")
    return server


def _connect(lab: Lab, wire: _Wire, name: str, server: Server, client_port: int) -> Client:
    client = Client(lab, name, server.spec, Transport.TCP, Capture.FULL, (server.host, server.port))
    lab.endpoints[name] = client
    here, there = ("127.0.0.1", client_port), (server.host, server.port)
    conn = StreamConnection(server, f"{server.name}#{next(server._ids)}", Role.SERVER,
                            server.spec.conversation(Role.SERVER, Transport.TCP))
    client_end, server_end = _Pipe(wire, here, there), _Pipe(wire, there, here)
    client_end.own, client_end.peer_conn = client.conn, conn  # type: ignore[assignment]
    server_end.own, server_end.peer_conn = conn, client.conn  # type: ignore[assignment]
    assert isinstance(client.conn, StreamConnection)
    client.conn.connection_made(client_end)
    conn.connection_made(server_end)
    return client


def still_lab() -> Lab:
    """Servers (echo, finger, daytime) with a few exchanges, every event
    timed from :data:`START`.  The reactor is not started; close the lab
    with ``lab.reactor.loop.close()``."""
    lab = Lab()
    echo = _server(lab, "echo", "echo", 7007)
    finger = _server(lab, "finger", "finger", 7079, user=["alice=Alice Liddell", "bob=Bob the Builder"],
                     plan=["alice=Follow the white rabbit."])
    _server(lab, "daytime", "daytime", 7013)
    wire = _Wire()
    c1 = _connect(lab, wire, "c1", echo, 50001)
    for line in (b"hello, lab\r\n", b"ping\r\n", b"the quick brown fox\r\n"):
        c1.conn.send_raw(line)
        wire.flush()
    q = _connect(lab, wire, "q", finger, 50002)
    q.conn.send_raw(b"/W alice\r\n")
    wire.flush()
    c2 = _connect(lab, wire, "c2", echo, 50003)
    c2.conn.send_raw(b"echo... echo...\r\n")
    wire.flush()
    for n, event in enumerate(lab.log.snapshot()):
        event.wall = START + 0.25 * n + 0.001 * (n % 7)
        event.mono = event.wall - START
    return lab


def pose(app: NetlabApp) -> None:
    """Put a mounted app over :func:`still_lab` in the pose of the
    screenshot: the finger query selected, a second of stats drawn."""
    rows = list(app.traffic.rows)
    index = next((i for i, e in enumerate(rows) if e.conn == "finger#1" and e.kind is EventKind.MESSAGE), 0)
    app.traffic.follow = False
    app.traffic.select_index(index)
    app.rates.count(app.lab.log.snapshot())
    app.rates.tick(1.0)
    app.sample_stats_view()
    app.refresh_status()


def still_holds(lab: Lab) -> None:
    """Add an SMTP proxy (not listening: nothing binds) whose breakpoints
    hold a command from its client and a reply from its server, held
    since a fixed time (``START + 40`` and ``+ 41``)."""
    spec = protocols.get("smtp")
    proxy = Proxy(lab, "px", spec, host="127.0.0.1", port=7025, transport=Transport.TCP,
                  target=("127.0.0.1", 2525), capture=Capture.FULL, max_connections=64, idle_timeout=None)
    proxy.state = ServerState.LISTENING
    lab.endpoints["px"] = proxy
    intercepts = lab.intercepts
    for n, (text, conn, sender, raw) in enumerate((
            ("m:MAIL in", "px#1", Role.CLIENT, b"MAIL FROM:<alice@lab.test> SIZE=1024\r\n"),
            ("354 out", "px#2", Role.SERVER, b"354 start mail input; end with <CRLF>.<CRLF>\r\n"))):
        rule = intercepts.add("px", text)
        (msg,) = spec.conversation(None, Transport.TCP).feed(raw, sender)
        direction = Direction.IN if sender is Role.CLIENT else Direction.OUT
        held = intercepts.hold(rule, conn, direction, sender, msg, lambda _: None)
        held.since = START + 40 + n
