"""The HTTP server's limits and defences on real sockets: request
smuggling shapes refused with 400 and the connection closed, caps on the
request line, the head and the body (414, 431, 413), a request trickled
one byte at a time cut by the request deadline (408), pipelined requests
answered in order, and a thousand kept-alive connections served at once."""

from __future__ import annotations

import asyncio
import selectors
import socket
import time

import pytest
from helpers import wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols import http


def read_all(s: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        return read_all(s)


SMUGGLING = {
    "CL.TE": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "TE.CL": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    "two CLs": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nGET /",
    "CL list": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 0\r\n\r\nGET /",
    "obs-fold": b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n",
    "folded TE": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "chunk overflow": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"10000000000000000000001\r\nx\r\n0\r\n\r\n",
    "TE not chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
    "space before colon": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
    "bare LF chunk": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_smuggling_shapes_get_400_and_the_connection_closes(lab: Lab, name: str) -> None:
    """Ambiguous framing is refused with 400, and nothing after it is read
    as another request; the server goes on serving others."""
    srv = lab.serve("http")
    got = exchange(srv.port, SMUGGLING[name] + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got[:200]
    assert got.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in got
    assert b"hello from netlab" not in got
    errors = lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.ERROR})))
    assert any("protocol error" in e.summary for e in errors)
    assert exchange(srv.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(
        b"hello from netlab\n")


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /" + b"a" * (http.MAX_REQUEST_LINE + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * (http.MAX_HEADERS + 5) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (http.MAX_HEAD + 10) + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host (RFC 9112 §3.2)
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000, 413),
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"y" * 1024 + b"\r\n"
     + b"400\r\n" + b"y" * 1024 + b"\r\n0\r\n\r\n", 413),
    (b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", 405),
], ids=["414", "431-count", "431-size", "no-host", "two-hosts", "505", "413-length", "413-chunked", "connect"])
def test_caps_answer_with_their_status(lab: Lab, data: bytes, status: int) -> None:
    """Each cap answers with its own status code; the server keeps serving."""
    srv = lab.serve("http", max_body="1K")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = read_all(s)
    assert got.startswith(b"HTTP/1.1 %d " % status), got[:200]
    assert exchange(srv.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(
        b"hello from netlab\n")


def test_a_body_over_the_cap_is_refused_before_100_continue(lab: Lab) -> None:
    """Expect: 100-continue with a body over the cap: 413 at once, no 100."""
    srv = lab.serve("http", max_body="1K")
    got = exchange(srv.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                             b"Content-Length: 5000\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in got


def test_headers_trickled_one_byte_at_a_time_are_cut_by_the_deadline(lab: Lab) -> None:
    """One byte every 100 ms never completes a head: the request deadline
    cuts it with 408 and the connection closes (bounded in time)."""
    srv = lab.serve("http", line_timeout=1.0, min_rate=100)
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 400 + b"\r\n\r\n"
    got = bytearray()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.setblocking(False)
        deadline = time.monotonic() + 30
        closed = False
        for byte in request:
            if time.monotonic() > deadline:
                break
            try:
                s.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            try:
                chunk = s.recv(65536)
                got += chunk
                if not chunk:
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
        assert closed, "the slow request was never cut"
    assert got.startswith(b"HTTP/1.1 408 Request Timeout"), bytes(got[:200])
    wait_until(lambda: not srv.connections, timeout=20, what="the slow connection to close")


def test_pipelined_requests_are_answered_in_order(lab: Lab) -> None:
    """A slow async route first, fast ones behind it: answers in request order."""
    srv = lab.serve("http")

    async def slow(request: http.HttpRequest) -> str:
        await asyncio.sleep(0.2)
        return "slow\n"

    srv.route("/slow", slow)
    srv.route("/fast", lambda request: f"fast {request.query}\n")
    data = (b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /fast?1 HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"HEAD /fast?2 HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"GET /fast?3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = exchange(srv.port, data)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in got.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"slow\n", b"fast 1\n", b"", b"fast 3\n"]


def test_route_changes_take_effect_on_the_next_request_of_a_kept_alive_connection(lab: Lab) -> None:
    """Replacing a route from another thread: the same connection sees the new one next."""
    srv = lab.serve("http")
    srv.route("/v", lambda request: "one\n")
    c = lab.connect("http", srv)
    assert c.get("/v").text == "one\n"
    srv.route("/v", lambda request: "two\n")
    assert c.get("/v").text == "two\n"
    assert len(srv.connections) == 1


def test_a_thousand_kept_alive_connections_are_served(lab: Lab) -> None:
    """1,000 connections open at once, each asks twice on the same
    connection; every answer comes, none is refused."""
    count = 1000
    srv = lab.serve("http", max_connections=count + 50, max_per_source=0, capture="summary")
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    got: dict[int, bytearray] = {}
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = b"hello from netlab\n"
    try:
        for i in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            socks.append(s)
            got[i] = bytearray()
            sel.register(s, selectors.EVENT_WRITE, i)
        pending_write = set(range(count))
        deadline = time.monotonic() + 120
        asked: dict[int, int] = dict.fromkeys(range(count), 0)
        while time.monotonic() < deadline and any(got[i].count(answer) < 2 for i in range(count)):
            for key, events in sel.select(0.5):
                i = key.data
                s = socks[i]
                if events & selectors.EVENT_WRITE and i in pending_write:
                    try:
                        s.send(request)
                    except (BlockingIOError, InterruptedError):
                        continue
                    asked[i] += 1
                    pending_write.discard(i)
                    sel.modify(s, selectors.EVENT_READ, i)
                elif events & selectors.EVENT_READ:
                    chunk = s.recv(65536)
                    assert chunk, f"connection {i} was closed"
                    got[i] += chunk
                    if got[i].count(answer) == 1 and asked[i] == 1:
                        s.send(request)  # the second request on the same connection
                        asked[i] += 1
        done = sum(got[i].count(answer) == 2 for i in range(count))
        assert done == count, f"{done} of {count} connections got both answers"
        assert srv.refused == 0 and srv.accepted == count
    finally:
        sel.close()
        for s in socks:
            s.close()


def test_a_client_that_half_closes_still_gets_every_answer(lab: Lab) -> None:
    """Requests, then the client's end of sending (shutdown): the slow answer
    and the ones behind it all come, then the server closes."""
    srv = lab.serve("http")

    async def slow(request: http.HttpRequest) -> str:
        await asyncio.sleep(0.2)
        return "late\n"

    srv.route("/slow", slow)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        got = read_all(s)
    assert got.count(b"HTTP/1.1 200 OK") == 2 and b"late\n" in got and got.endswith(b"hello from netlab\n")
