"""Tests for lab/protocols/chargen.py: the pattern, sessions and their flow
control, the conversation and verbs, in memory."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import LabTimeout
from lab.protocols import chargen
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder, Line, LineDecoder
from lab.protocols._session import Session

SETTINGS = settings(deadline=None, max_examples=200)
BATCH = chargen.BATCH_LINES * 74

FIRST_LINE = b' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n'


async def turns(n: int = 5) -> None:
    """Let the loop run ``n`` times, so call_soon callbacks fire."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- the pattern -------------------------------------------------------------------


def test_pattern_first_lines() -> None:
    """Line 0 starts with space (as inetd's), each next line one char later."""
    text = chargen.pattern(0, 3 * 74)
    lines = text.split(b"\r\n")[:3]
    assert text[:74] == FIRST_LINE
    assert lines[1] == FIRST_LINE[1:72] + b"h"
    assert lines[2].startswith(b'"#$')


def test_pattern_lines_are_72_printables_and_crlf() -> None:
    """All 95 lines: 72 printing characters then CRLF, every line distinct."""
    cycle = chargen.pattern(0, 95 * 74)
    lines = [cycle[i * 74 : (i + 1) * 74] for i in range(95)]
    assert len(set(lines)) == 95
    for line in lines:
        assert line.endswith(b"\r\n")
        assert all(0x20 <= b < 0x7F for b in line[:72])


def test_pattern_repeats_every_95_lines() -> None:
    """Line 95 is line 0 again; lengths beyond one cycle work."""
    assert chargen.pattern(95, 74) == FIRST_LINE
    long = chargen.pattern(3, 20_000)
    assert len(long) == 20_000
    assert long[: 95 * 74] == long[95 * 74 : 2 * 95 * 74]


@SETTINGS
@given(first=st.integers(0, 500), length=st.integers(0, 8000))
def test_pattern_is_a_window_on_one_stream(first: int, length: int) -> None:
    """pattern(k, n) is the stream from line k on, cut to n bytes."""
    stream = chargen.pattern(0, (first % 95) * 74 + length)
    assert chargen.pattern(first, length) == stream[(first % 95) * 74 :]


# -- TCP server ----------------------------------------------------------------------


def tcp_session(peer: FakePeer) -> chargen.ChargenSession:
    session = open_session(chargen.SPEC.server(chargen.SPEC.resolve_options({})), peer)
    assert isinstance(session, chargen.ChargenSession)
    return session


def test_tcp_server_streams_until_paused(make_peer: type[FakePeer], arun: Runner) -> None:
    """It writes batches while the transport takes them, stops when paused,
    and what it wrote is the pattern from the start."""

    async def main() -> None:
        peer = make_peer(window=3 * BATCH, spec=chargen.SPEC)
        session = tcp_session(peer)
        await turns(20)
        assert peer.paused
        assert len(peer.data) == 3 * BATCH  # nothing written once paused
        assert peer.data == chargen.pattern(0, 3 * BATCH)
        assert all(isinstance(m, chargen.Characters) for m in peer.sent)
        session.connection_lost()

    arun(main())


def test_tcp_server_resumes_when_writable(make_peer: type[FakePeer], arun: Runner) -> None:
    """writable() picks the stream up where it stopped."""

    async def main() -> None:
        peer = make_peer(window=BATCH)
        session = tcp_session(peer)
        await turns()
        assert len(peer.data) == BATCH
        peer.resume()
        session.writable()
        await turns()
        assert len(peer.data) == 2 * BATCH
        assert peer.data == chargen.pattern(0, 2 * BATCH)
        session.connection_lost()

    arun(main())


def test_tcp_server_stops_after_connection_lost(make_peer: type[FakePeer], arun: Runner) -> None:
    """Once the connection is gone no batch is sent, even one already
    scheduled, and writable() starts nothing."""

    async def main() -> None:
        peer = make_peer()
        session = tcp_session(peer)
        session.connection_lost()
        session.writable()
        written = len(peer.writes)
        await turns()
        assert len(peer.writes) == written == 1

    arun(main())


def test_tcp_server_stops_quietly_when_closing(make_peer: type[FakePeer], arun: Runner) -> None:
    """A batch due after the connection started closing raises nothing."""

    async def main() -> None:
        peer = make_peer()
        tcp_session(peer)
        peer.closed = True  # closing: sends raise ConnectionClosed
        await turns()
        assert len(peer.writes) == 1

    arun(main())


def test_tcp_server_never_runs_two_pumps(make_peer: type[FakePeer], arun: Runner) -> None:
    """A stray writable() while a batch is scheduled adds no extra batch."""

    async def main() -> None:
        peer = make_peer()
        session = tcp_session(peer)
        session.writable()
        session.writable()
        assert len(peer.writes) == 1
        await asyncio.sleep(0)
        assert len(peer.writes) == 2
        session.connection_lost()

    arun(main())


def test_tcp_server_discards_client_data(make_peer: type[FakePeer], arun: Runner) -> None:
    """Bytes from a TCP client change nothing."""

    async def main() -> None:
        peer = make_peer(window=BATCH)
        session = tcp_session(peer)
        session.message_received(Data(raw=b"stop!\r\n"))
        await turns()
        assert peer.data == chargen.pattern(0, BATCH)
        session.connection_lost()

    arun(main())


def test_tcp_sessions_keep_their_own_place(make_peer: type[FakePeer], arun: Runner) -> None:
    """Two connections to one server each get the pattern from the start."""

    async def main() -> None:
        server = chargen.SPEC.server(chargen.SPEC.resolve_options({}))
        peers = [make_peer(conn_id=f"c{n}", window=2 * BATCH) for n in range(2)]
        sessions = [open_session(server, peer) for peer in peers]
        await turns()
        assert [p.data for p in peers] == [chargen.pattern(0, 2 * BATCH)] * 2
        for session in sessions:
            session.connection_lost()

    arun(main())


def test_tcp_batches_follow_the_server_clock(make_peer: type[FakePeer]) -> None:
    """The next batch is scheduled on the behaviour's clock, not on a loop
    the session finds by itself."""

    class Pending:
        def cancel(self) -> None:
            pass

    class Manual:
        """A clock that runs nothing until told."""

        def __init__(self) -> None:
            self.due: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

        def time(self) -> float:
            return 0.0

        def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Pending:
            raise AssertionError("chargen has no timers")

        def call_soon(self, fn: Callable[..., Any], *args: Any) -> Pending:
            self.due.append((fn, args))
            return Pending()

    server = chargen.SPEC.server(chargen.SPEC.resolve_options({}))
    clock = server.clock = Manual()
    peer = make_peer()
    open_session(server, peer)
    assert len(peer.writes) == 1 and len(clock.due) == 1
    fn, args = clock.due.pop()
    fn(*args)
    assert peer.data == chargen.pattern(0, 2 * BATCH)


# -- UDP server ------------------------------------------------------------------------


def test_udp_server_answers_each_datagram_with_a_random_run(make_peer: type[FakePeer]) -> None:
    """One datagram of 0..512 pattern bytes per datagram received, each
    starting one line later."""
    peer = make_peer(Transport.UDP, spec=chargen.SPEC)
    server = chargen.ChargenServer(chargen.SPEC.resolve_options({}))
    server.rng = random.Random(1)
    session = open_session(server, peer)
    assert peer.writes == []
    for _ in range(50):
        session.message_received(Data(raw=b""))
    assert len(peer.writes) == 50
    lengths = {len(w) for w in peer.writes}
    assert max(lengths) <= 512 and len(lengths) > 10
    for k, datagram in enumerate(peer.writes):
        assert datagram == chargen.pattern(k, len(datagram))
    assert not peer.closed


def test_udp_lengths_reach_both_bounds(make_peer: type[FakePeer]) -> None:
    """Lengths are drawn from 0 to 512 inclusive."""
    peer = make_peer(Transport.UDP)
    server = chargen.ChargenServer(chargen.SPEC.resolve_options({}))

    class Edges(random.Random):
        values = iter([0, 512])

        def randint(self, a: int, b: int) -> int:
            assert (a, b) == (0, 512)
            return next(self.values)

    server.rng = Edges()
    session = open_session(server, peer)
    session.message_received(Data(raw=b"x"))
    session.message_received(Data(raw=b"x"))
    assert [len(w) for w in peer.writes] == [0, 512]


# -- messages and the conversation ---------------------------------------------------------


def test_characters_message_describes_itself() -> None:
    """Length is the field, and it is volatile (UDP lengths are random)."""
    msg = chargen.Characters(raw=FIRST_LINE)
    assert msg.kind == "chargen"
    assert msg.fields() == {"length": 74}
    assert "length" in msg.volatile
    assert msg.summary().startswith("74 characters ")


@pytest.mark.parametrize("role", [*Role, None])
def test_decoders(role: Role | None) -> None:
    """Server: lines or Characters datagrams; client: raw input."""
    tcp = chargen.SPEC.conversation(role, Transport.TCP)._decoders
    udp = chargen.SPEC.conversation(role, Transport.UDP)._decoders
    assert type(tcp[Role.SERVER]) is LineDecoder
    assert isinstance(tcp[Role.CLIENT], DataDecoder)
    assert isinstance(udp[Role.SERVER], DatagramDecoder) and isinstance(udp[Role.CLIENT], DatagramDecoder)
    assert chargen.SPEC.conversation(Role.CLIENT, Transport.UDP).feed(b"ab") == [chargen.Characters(raw=b"ab")]


def test_client_reads_the_stream_as_lines() -> None:
    """The TCP stream, split anywhere, decodes into the pattern's lines."""
    conv = chargen.SPEC.conversation(Role.CLIENT, Transport.TCP)
    data = chargen.pattern(0, 10 * 74)
    lines = conv.feed(data[:100]) + conv.feed(data[100:])
    assert lines == [Line(raw=chargen.pattern(k, 74)) for k in range(10)]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Server lines and client chunks, split anywhere: only protocol errors,
    messages that add up exactly, received, sent or observed."""
    laws.stream(chargen.SPEC.conversation, Role.SERVER, data, cuts)
    laws.stream(chargen.SPEC.conversation, Role.CLIENT, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=600), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams from either side decode one-to-one, each its own bytes."""
    for sender in Role:
        assert len(laws.datagrams(chargen.SPEC.conversation, sender, datagrams)) == len(datagrams)


@SETTINGS
@given(lines=st.integers(1, 200), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              lines: int, cuts: list[int]) -> None:
    """A recorded TCP stream, batches joined and split anywhere, replays to
    an observer as the client's lines."""

    async def main() -> Loopback:
        lb = Loopback(chargen.SPEC, window=2 * BATCH)
        await chargen.ChargenClient(lb).read(lines)
        await lb.close()
        return lb

    lb = arun(main())
    seen = laws.observer_replays(chargen.SPEC.conversation, lb, cuts)
    assert len(seen[Role.CLIENT]) >= lines
    assert seen[Role.CLIENT][:lines] == [Line(raw=chargen.pattern(k, 74)) for k in range(lines)]


# -- verbs -------------------------------------------------------------------------------------


def test_verb_read_over_tcp(loopback: type[Loopback], arun: Runner) -> None:
    """read(3) gives the first three lines, then the stream continues."""

    async def main() -> tuple[list[str], list[str]]:
        lb = loopback(chargen.SPEC, window=4 * BATCH)
        client = chargen.ChargenClient(lb)
        first = await client.read(3)
        more = await client.read()
        await lb.close()
        assert lb.errors == []
        return first, more

    first, more = arun(main())
    assert first == [chargen.pattern(k, 72).decode() for k in range(3)]
    assert more == [chargen.pattern(3, 72).decode()]


def test_verb_read_keeps_the_server_bounded(loopback: type[Loopback], arun: Runner) -> None:
    """A slow reader holds the server to its window: it never buffers
    unboundedly, and reading on drains and resumes it."""

    async def main() -> None:
        window = 2 * BATCH
        lb = loopback(chargen.SPEC, window=window)
        client = chargen.ChargenClient(lb)
        await turns(50)
        assert lb.peer.paused
        assert len(lb.peer.data) <= window + BATCH
        lines = await client.read(500)
        assert lines[94] == chargen.pattern(94, 72).decode()
        assert lines[95] == lines[0]
        assert len(lb.peer.data) <= 500 * 74 + window + BATCH
        await lb.close()
        assert lb.errors == []

    arun(main())


def test_verb_read_over_udp(loopback: type[Loopback], arun: Runner) -> None:
    """Over UDP read() asks for datagrams until it has enough lines."""

    async def main() -> tuple[list[str], int]:
        lb = loopback(chargen.SPEC, Transport.UDP)
        lb.behaviour.rng = random.Random(7)
        lines = await chargen.ChargenClient(lb).read(8)
        return lines, len(lb.client_writes)

    lines, requests = arun(main())
    assert len(lines) == 8
    assert all(set(line) <= {chr(c) for c in range(0x20, 0x7F)} for line in lines)
    assert requests >= 2  # one datagram holds at most 7 lines


def test_verb_read_times_out_with_a_count(loopback: type[Loopback], arun: Runner) -> None:
    """A server that sends nothing makes read() say how far it got."""

    async def main() -> None:
        lb = loopback(chargen.SPEC, Transport.UDP)
        lb.behaviour.session_type = Session  # hears, never answers
        await chargen.ChargenClient(lb).read(2, timeout=0.01)

    with pytest.raises(LabTimeout, match=r"0 of 2 lines arrived within 0\.01 s"):
        arun(main())
