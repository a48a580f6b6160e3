"""The proxy on loopback: exact bytes both ways, decoded in the log;
half-close passed on; back-pressure across the legs with bounded
memory; UDP; refusals and an unreachable server; the CLI.

Interop with foreign clients and servers: tests/interop/test_proxy_peers.py.
"""

from __future__ import annotations

import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import Proc, free_port, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import Lab
from lab.errors import ConfigError
from lab.eventlog import Direction, EventFilter, EventKind
from lab.proxy import Proxy

NETLAB = [sys.executable, "-m", "lab"]


def dial(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout)


def read_exactly(sock: socket.socket, size: int, timeout: float = 20.0) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_until(sock: socket.socket, token: bytes, timeout: float = 20.0) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while token not in out and (chunk := sock.recv(4096)):
        out += chunk
    return bytes(out)


def read_to_eof(sock: socket.socket, timeout: float = 20.0) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


def messages(lab: Lab, endpoint: str, direction: Direction) -> list[bytes]:
    flt = EventFilter(endpoint=endpoint, direction=direction, kinds=frozenset({EventKind.MESSAGE}))
    return [e.raw for e in lab.log.query(flt) if e.raw is not None]


class _Recording(socketserver.BaseRequestHandler):
    """Reads to EOF, then answers with a digest of what it read, then closes."""

    def handle(self) -> None:
        got = bytearray()
        while chunk := self.request.recv(65536):
            got += chunk
        self.server.received.append(bytes(got))  # type: ignore[attr-defined]
        self.request.sendall(b"got %d bytes\r\n" % len(got))


@pytest.fixture
def eof_server() -> Iterator[socketserver.ThreadingTCPServer]:
    """A stdlib server that needs the client's half-close to answer."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recording)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# -- bytes --------------------------------------------------------------------------


def test_bytes_pass_unchanged_and_both_directions_are_decoded(lab: Lab) -> None:
    """Every byte value, in odd chunks, comes back through an echo server
    exactly; the proxy's log has the client's and the server's messages."""
    echo = lab.serve("echo")
    px = lab.proxy("echo", echo, name="px")
    payload = bytes(range(256)) * 40 + b"line one\r\nline two\n"
    with dial(px.port) as sock:
        for i in range(0, len(payload), 997):
            sock.sendall(payload[i:i + 997])
        assert read_exactly(sock, len(payload)) == payload
    wait_until(lambda: not px.connections, 10, "the proxied connection to close")
    assert b"".join(messages(lab, "px", Direction.IN)) == payload
    assert b"".join(messages(lab, "px", Direction.OUT)) == payload
    assert lab.log.query(EventFilter(endpoint="px", kinds=frozenset({EventKind.OPEN})))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12))
def test_any_bytes_in_any_chunks_arrive_in_order(lab: Lab, chunks: list[bytes]) -> None:
    """Property: whatever a client writes, in whatever pieces, the server
    gets the same bytes in the same order and echoes them back."""
    px = lab.endpoints.get("anyproxy") or lab.proxy("echo", lab.serve("echo"), name="anyproxy")
    assert isinstance(px, Proxy)
    with dial(px.port) as sock:
        for chunk in chunks:
            sock.sendall(chunk)
        sent = b"".join(chunks)
        assert read_exactly(sock, len(sent)) == sent


def test_capture_off_still_relays_and_counts(lab: Lab) -> None:
    """With capture off the bytes pass and are counted; no message is logged."""
    px = lab.proxy("echo", lab.serve("echo"), name="quiet", capture="off")
    with dial(px.port) as sock:
        sock.sendall(b"x" * 100_000)
        assert read_exactly(sock, 100_000) == b"x" * 100_000
    assert not messages(lab, "quiet", Direction.IN)
    wait_until(lambda: px.accepted == 1 and not px.connections, 10)


def test_a_line_too_long_to_decode_is_still_relayed(lab: Lab) -> None:
    """Bytes the protocol cannot decode (a 200 KB SMTP line, echoed back)
    pass through exactly both ways; the log says decoding stopped; the
    proxy goes on."""
    px = lab.proxy("smtp", lab.serve("echo"), name="px")
    line = b"NOOP " + b"a" * 200_000 + b"\r\n"
    with dial(px.port) as sock:
        sock.sendall(line)
        assert read_exactly(sock, len(line)) == line
        sock.sendall(b"QUIT\r\n")
        assert read_exactly(sock, 6) == b"QUIT\r\n"
    notes = [e.text or "" for e in lab.log.query(EventFilter(endpoint="px", kinds=frozenset({EventKind.INFO})))]
    assert any("no longer decodes as smtp" in n for n in notes), notes
    with dial(px.port) as sock:  # a new connection decodes afresh
        sock.sendall(b"NOOP\r\n")
        assert read_exactly(sock, 6) == b"NOOP\r\n"
    wait_until(lambda: any(m.startswith(b"NOOP\r\n") for m in messages(lab, "px", Direction.IN)), 10)


# -- half-close -----------------------------------------------------------------------


def test_half_close_passes_through(lab: Lab, eof_server: socketserver.ThreadingTCPServer) -> None:
    """The client shuts down its sending side: the server sees EOF, answers,
    and the answer reaches the client, followed by the server's close."""
    px = lab.proxy("discard", f"127.0.0.1:{eof_server.server_address[1]}", name="px")
    with dial(px.port) as sock:
        sock.sendall(b"first part\r\nsecond part\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_eof(sock) == b"got 25 bytes\r\n"
    assert eof_server.received == [b"first part\r\nsecond part\r\n"]  # type: ignore[attr-defined]
    notes = [e.text or "" for e in lab.log.query(EventFilter(endpoint="px", kinds=frozenset({EventKind.INFO})))]
    assert any("client finished sending" in n for n in notes), notes


# -- back-pressure ----------------------------------------------------------------------


@pytest.fixture
def deaf_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never reads from them."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], held
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def _buffered(px: Proxy) -> int:
    """Bytes the proxy holds for all its connections: what its sockets
    wait to write, what its decoders keep."""
    total = 0
    for conn in list(px.connections.values()):
        for leg in list(conn.legs.values()):
            transport = getattr(leg, "transport", None)
            if transport is not None and not transport.is_closing():
                total += transport.get_write_buffer_size()
        total += sum(len(b) for b in conn._waiting.values())
    return total


def test_a_server_that_stops_reading_stops_the_proxy_reading_the_client(
        lab: Lab, deaf_server: tuple[int, list[socket.socket]]) -> None:
    """The client writes until its own socket is full: the proxy paused
    reading it instead of buffering; memory stays bounded; another
    connection through another proxy on the same lab is served meanwhile."""
    port, _ = deaf_server
    px = lab.proxy("discard", f"127.0.0.1:{port}", name="px", capture="full")
    other = lab.proxy("echo", lab.serve("echo"), name="other")
    block = b"z" * 65536
    sent = 0
    with dial(px.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.settimeout(1.0)
        deadline = time.monotonic() + 60
        stalled = False
        while time.monotonic() < deadline and sent < 512 * 1024 * 1024:
            try:
                sent += sock.send(block)
            except TimeoutError:
                stalled = True  # the proxy stopped reading: the client's socket filled
                break
        assert stalled, f"sent {sent} bytes and the proxy kept reading"
        wait_until(lambda: px.connections and next(iter(px.connections.values())).legs, 10)
        assert _buffered(px) < 8 * 1024 * 1024, _buffered(px)
        with dial(other.port) as probe:
            probe.sendall(b"still here\r\n")
            assert read_exactly(probe, 12) == b"still here\r\n"
    assert sent < 64 * 1024 * 1024


def test_a_client_that_stops_reading_stops_the_proxy_reading_the_server(lab: Lab) -> None:
    """chargen never stops sending; a client that never reads makes the
    proxy stop reading chargen, with memory bounded."""
    px = lab.proxy("chargen", lab.serve("chargen"), name="px", capture="full")
    with dial(px.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_until(lambda: px.connections and next(iter(px.connections.values())).bytes_out > 0, 10)
        conn = next(iter(px.connections.values()))

        def settled() -> bool:
            before = conn.bytes_out
            time.sleep(0.3)  # sampling a counter, not waiting for an event
            return conn.bytes_out == before

        wait_until(settled, 30, "the proxy to stop reading chargen")
        assert conn.bytes_out < 32 * 1024 * 1024
        assert _buffered(px) < 8 * 1024 * 1024


# -- UDP ------------------------------------------------------------------------------


def test_udp_datagrams_are_relayed_one_for_one(lab: Lab) -> None:
    """Each client address gets its own pair; datagrams keep their bounds."""
    echo = lab.serve("echo", transport="udp")
    px = lab.proxy("echo", echo, name="pu")
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for i, sock in enumerate(socks):
            sock.settimeout(10)
            for n in range(3):
                data = f"client {i} datagram {n}".encode()
                sock.sendto(data, ("127.0.0.1", px.port))
                assert sock.recvfrom(2048)[0] == data
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: len(messages(lab, "pu", Direction.OUT)) >= 6, 10)
    assert px.accepted == 2
    got = messages(lab, "pu", Direction.IN)
    assert sorted(d for d in got if d) == sorted(f"client {i} datagram {n}".encode() for i in range(2)
                                                 for n in range(3))


# -- refusals and failures ------------------------------------------------------------


def test_an_unreachable_server_closes_the_client_with_a_reason(lab: Lab) -> None:
    """Nothing listens at the target: the client is closed, the log says
    why, and the proxy keeps listening."""
    px = lab.proxy("echo", f"127.0.0.1:{free_port()}", name="px")
    for _ in range(2):
        with dial(px.port) as sock:
            assert read_to_eof(sock) == b""
    errors = [e.text or "" for e in lab.log.query(EventFilter(endpoint="px", kinds=frozenset({EventKind.ERROR})))]
    assert any("cannot reach the server" in t for t in errors), errors
    assert px.state.value == "listening"


def test_connections_beyond_the_cap_are_refused(lab: Lab) -> None:
    """max_connections caps clients: the next one is refused and counted."""
    px = lab.proxy("echo", lab.serve("echo"), name="px", max_connections=1)
    with dial(px.port) as first:
        first.sendall(b"a\r\n")
        assert read_exactly(first, 3) == b"a\r\n"
        with dial(px.port) as second:
            assert read_to_eof(second) == b""
        wait_until(lambda: px.refused == 1, 10)


def test_a_proxy_to_itself_and_bad_targets_are_refused(lab: Lab) -> None:
    """A proxy cannot relay to its own address; targets are checked."""
    port = free_port()
    with pytest.raises(ConfigError, match="relay to itself"):
        lab.proxy("echo", f"127.0.0.1:{port}", port=port)
    with pytest.raises(ConfigError, match="no server named"):
        lab.proxy("echo", "nowhere")
    client = lab.connect("echo", lab.serve("echo"))
    with pytest.raises(ConfigError, match="is a client"):
        lab.proxy("echo", client)
    assert not [e for e in lab.endpoints.values() if isinstance(e, Proxy)]


def test_a_hook_sees_both_directions(lab: Lab) -> None:
    """proxy.on(kind, fn) runs for messages either side sends."""
    px = lab.proxy("echo", lab.serve("echo"), name="px")
    seen: list[bytes] = []
    px.on("data", lambda msg, conn: seen.append(msg.raw))
    with dial(px.port) as sock:
        sock.sendall(b"hooked\r\n")
        assert read_exactly(sock, 8) == b"hooked\r\n"
    wait_until(lambda: len(seen) >= 2, 10)
    assert seen[:2] == [b"hooked\r\n", b"hooked\r\n"]


# -- the command line -------------------------------------------------------------------


def test_netlab_proxy_prints_both_directions_and_a_summary(lab: Lab) -> None:
    """`netlab proxy` in the foreground: JSON events for both directions,
    and a summary on Ctrl-C."""
    import json

    echo = lab.serve("echo")
    with Proc([*NETLAB, "proxy", "echo", "--to", f"127.0.0.1:{echo.port}", "--json"]) as proc:
        line = proc.wait_for(r"echo proxy on tcp://", 30, stream="stderr")
        m = re.search(r"tcp://127\.0\.0\.1:(\d+) -> ", line)
        assert m is not None
        with dial(int(m.group(1))) as sock:
            sock.sendall(b"over the wire\r\n")
            assert read_exactly(sock, 15) == b"over the wire\r\n"
        seen = {"in": False, "out": False}
        while not all(seen.values()):
            event = json.loads(proc.wait_for(r'"kind": ?"msg"', 30, stream="stdout"))
            seen[event["dir"]] = True
        assert proc.stop(timeout=20) == 0
        proc.wait_for(r"stopped echo-proxy1: 1 connections", 10, stream="stderr")


def test_netlab_proxy_reports_a_bad_listen_address() -> None:
    """A bad --listen is a usage error with an example."""
    import subprocess

    done = subprocess.run([*NETLAB, "proxy", "echo", "--to", "127.0.0.1:7", "--listen", "x:y"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--listen wants [HOST:]PORT" in done.stderr and "e.g." in done.stderr
