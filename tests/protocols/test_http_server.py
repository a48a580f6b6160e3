"""Tests for the HTTP server's sessions in memory (FakePeer): keep-alive
rules, answers in request order, 100-continue when the request's turn
comes, a file streamed only while the client reads (a 1 GB file never in
memory), errors answered and the connection closed."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from protocol_fakes import FakePeer, Runner, open_session

from lab.protocols import http
from lab.protocols._base import Role
from lab.protocols.http import PART, HttpConversation, HttpResponseHead


def server(**options: Any) -> Any:
    behaviour = http.SPEC.server(http.SPEC.resolve_options(options))
    behaviour.started()
    return behaviour


def feed(session: Any, peer: FakePeer, data: bytes) -> None:
    """Give ``data`` to the session as the lab does: each message, in order."""
    conv = peer.conversation
    try:
        conv.receive_data(data)
        while not peer.closed and (msg := conv.next_message()) is not None:
            session.message_received(msg)
    except http.HttpError as exc:
        session.protocol_error(exc)


def responses(peer: FakePeer, *requests: bytes) -> list[HttpResponseHead]:
    """What the client side decodes from everything the server wrote."""
    conv = HttpConversation(Role.CLIENT)
    for raw in requests:
        conv.send_data(raw)
    conv.take_sent()
    return [m for m in conv.feed(peer.data) if isinstance(m, HttpResponseHead)]


GET = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


def test_http_1_0_closes_unless_asked_to_keep_alive() -> None:
    """HTTP/1.0: closed after the answer, unless Connection: keep-alive."""
    peer = FakePeer(spec=http.SPEC)
    session = open_session(server(), peer)
    feed(session, peer, b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not peer.closed and b"Connection: keep-alive" in peer.data
    feed(session, peer, b"GET /hello HTTP/1.0\r\n\r\n")
    assert peer.closed and peer.data.endswith(b"Connection: close\r\nContent-Length: 18\r\n\r\nhello from netlab\n")


def test_connection_close_and_max_requests_end_the_connection() -> None:
    """Connection: close is honoured; so is the per-connection request cap."""
    peer = FakePeer(spec=http.SPEC)
    session = open_session(server(max_requests=3), peer)
    feed(session, peer, GET * 5)
    got = responses(peer, GET * 5)
    assert [r.status for r in got] == [200, 200, 200] and got[-1].header("connection") == "close"
    assert peer.closed


def test_head_of_a_route_has_its_length_and_no_body() -> None:
    """HEAD runs the GET route and sends the head only."""
    peer = FakePeer(spec=http.SPEC)
    session = open_session(server(), peer)
    feed(session, peer, b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert peer.data.endswith(b"Content-Length: 18\r\n\r\n")


def test_continue_comes_when_the_request_is_next(arun: Runner) -> None:
    """Behind a slow answer, a request expecting 100-continue gets its
    100 only once the answers before it are out: nothing is interleaved."""

    async def main() -> FakePeer:
        behaviour = server()
        gate = asyncio.Event()

        async def slow(request: http.HttpRequest) -> str:
            await gate.wait()
            return "slow\n"

        behaviour.route("/slow", slow)
        behaviour.route("/up", lambda request: f"{len(request.body)}\n")
        peer = FakePeer(spec=http.SPEC)
        session = open_session(behaviour, peer)
        feed(session, peer, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        await asyncio.sleep(0)
        assert peer.data == b""
        gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert peer.data.endswith(b"slow\nHTTP/1.1 100 Continue\r\n\r\n")
        feed(session, peer, b"abcd")
        return peer

    peer = arun(main())
    assert [r.status for r in responses(peer, b"GET /slow HTTP/1.1\r\n\r\n", b"POST /up HTTP/1.1\r\n\r\n")] == \
        [200, 100, 200]
    assert peer.data.endswith(b"\r\n\r\n4\n")


def test_a_bad_request_is_answered_and_the_connection_closed() -> None:
    """A smuggling shape after a good request: its answer, then 400, then close."""
    peer = FakePeer(spec=http.SPEC)
    session = open_session(server(), peer)
    feed(session, peer, GET + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert [r.status for r in responses(peer, GET, GET)] == [200, 400]
    assert peer.closed


def test_an_async_route_that_raises_gives_500(arun: Runner) -> None:
    """An awaitable that fails: 500, a note, and the next request is answered."""

    async def main() -> FakePeer:
        behaviour = server()

        async def broken(request: http.HttpRequest) -> str:
            raise LookupError("gone")

        behaviour.route("/broken", broken)
        peer = FakePeer(spec=http.SPEC)
        session = open_session(behaviour, peer)
        feed(session, peer, b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
        for _ in range(5):
            await asyncio.sleep(0)
        return peer

    peer = arun(main())
    assert [r.status for r in responses(peer, GET, GET)] == [500, 200]
    assert any("LookupError: gone" in note for note in peer.notes)


def test_without_path_there_are_built_in_pages_and_with_one_there_are_not(tmp_path: Path) -> None:
    """The built-in pages make `serve http` useful at once; --path replaces them."""
    assert set(server().routes()) == {"/", "/hello", "/echo"}
    assert server(path=str(tmp_path)).routes() == {}
    with pytest.raises(Exception, match="not a folder"):
        server(path=str(tmp_path / "missing"))


def test_a_gigabyte_file_streams_only_while_the_client_reads(tmp_path: Path) -> None:
    """A 1 GB (sparse) file: the server writes about one window, waits,
    and goes on at each resume; what it holds stays a part or two."""
    big = tmp_path / "huge.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    peer = FakePeer(spec=http.SPEC, window=256 * 1024)
    session = open_session(server(path=str(tmp_path)), peer)
    feed(session, peer, b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Content-Length: 1073741824\r\n" in peer.data
    for _ in range(20):
        assert peer.paused
        written = sum(len(w) for w in peer.writes)
        peer.writes.clear()
        assert written <= 256 * 1024 + PART + 1024
        peer.resume()
        session.writable()
    assert session.sender is not None  # still under way, never read whole
    session.connection_lost()
    assert session.sender is None


def test_a_file_that_fits_a_part_goes_whole_and_closes_its_descriptor(tmp_path: Path) -> None:
    """Small files are read at once; no descriptor is left open."""
    (tmp_path / "a.txt").write_text("x" * 100)
    before = len(os.listdir("/proc/self/fd"))
    peer = FakePeer(spec=http.SPEC)
    session = open_session(server(path=str(tmp_path)), peer)
    for _ in range(20):
        feed(session, peer, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(os.listdir("/proc/self/fd")) == before
    assert peer.data.count(b"x" * 100) == 20


def test_a_fast_reader_does_not_hold_the_loop_for_a_whole_file(arun: Runner, tmp_path: Path) -> None:
    """A client that never makes the server wait still gets the file in
    passes of a bounded size: other connections get their turns between."""
    data = os.urandom(5 * 1024 * 1024)
    (tmp_path / "f.bin").write_bytes(data)

    async def main() -> tuple[list[int], bytes]:
        peer = FakePeer(spec=http.SPEC)  # never paused
        session = open_session(server(path=str(tmp_path)), peer)
        written: list[int] = []
        feed(session, peer, b"GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(200):
            written.append(len(peer.data))
            if session.sender is None:
                break
            await asyncio.sleep(0)
        return written, peer.data

    written, out = arun(main())
    passes = [b - a for a, b in itertools.pairwise(written) if b > a]
    assert len(passes) >= 4 and max(passes) <= 16 * PART + 1024
    assert out.endswith(data)


def test_pipelined_bodies_waiting_are_capped_together() -> None:
    """Requests with bodies queued behind a slow answer may not add up past
    --max-body: the connection is closed with a note."""
    behaviour = server(max_body="10K")
    behaviour.route("/slow", lambda request: asyncio.get_event_loop().create_future())
    peer = FakePeer(spec=http.SPEC)
    session = open_session(behaviour, peer)
    post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n" + b"p" * 8000

    async def main() -> None:
        feed(session, peer, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + post + post)

    asyncio.run(main())
    assert peer.closed and any("add up to more than 10240" in note for note in peer.notes)
