"""Tests for lab/protocols/telnet: the wire format (RFC 854/855 framing,
IAC escaping, NVT line ends, NAWS and TTYPE decoding) and the
conversation of both sides, the RFC 1143 Q method, the echo and console
sessions and the client verbs, in memory; then hostile input on real
sockets."""

from __future__ import annotations

import asyncio
import functools
import socket
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session, split_at

from lab import Lab
from lab.errors import ConfigError, ConnectionClosed, LabError, LabTimeout, LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import telnet
from lab.protocols._base import Message, Role, Transport
from lab.protocols.telnet import (
    Command,
    Line,
    Negotiation,
    Negotiator,
    Q,
    Side,
    Stage,
    Subnegotiation,
    TelnetDecoder,
    TelnetServer,
    TelnetSession,
    Text,
)
from lab.services import CONSOLE

SETTINGS = settings(deadline=None, max_examples=200)
IAC, SB, SE = b"\xff", b"\xff\xfa", b"\xff\xf0"
DO, DONT, WILL, WONT = b"\xff\xfd", b"\xff\xfe", b"\xff\xfb", b"\xff\xfc"
ECHO, SGA, TTYPE, NAWS = b"\x01", b"\x03", b"\x18", b"\x1f"


def summaries(msgs: Sequence[Message]) -> list[str]:
    return [m.summary() for m in msgs]


def decode(data: bytes, *, eof: bool = False) -> list[Message]:
    decoder = TelnetDecoder()
    return decoder.feed(data) + (decoder.feed(b"") if eof else [])


def stream(msgs: Sequence[Message]) -> tuple[bytes, list[str]]:
    """What a split does not change: the text bytes (line ends included)
    and the other messages in order."""
    text = b"".join(m.data + (m.ending if isinstance(m, Line) else b"") for m in msgs
                    if isinstance(m, (Text, Line)))
    others = [m.summary() for m in msgs if not isinstance(m, (Text, Line))]
    return text, others


# -- the wire format ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (DO + ECHO, ["DO ECHO"]),
        (WILL + NAWS, ["WILL NAWS"]),
        (DONT + SGA + WONT + b"\xc7", ["DONT SGA", "WONT 199"]),
        (SB + NAWS + b"\x00\x78\x00\x28" + SE, ["SB NAWS 120x40"]),
        (SB + TTYPE + b"\x00xterm" + SE, ["SB TTYPE IS xterm"]),
        (SB + TTYPE + b"\x01" + SE, ["SB TTYPE SEND"]),
        (b"\xff\xf6", ["AYT"]),
        (b"\xff\xf1\xff\xf4\xff\xf9", ["NOP", "IP", "GA"]),
        (b"hello\r\n", ['"hello\\r\\n"']),
        (b"ls\r\x00", ['"ls\\r\\x00"']),
        (b"lf only\n", ['"lf only\\n"']),
        (b"prompt> ", ['"prompt> "']),
        (b"a\xff\xffb\r\n", ['"a\\xffb\\r\\n"']),
        (b"ab" + DO + ECHO + b"cd\r\n", ['"ab"', "DO ECHO", '"cd\\r\\n"']),
    ],
)
def test_decoded_summaries(wire: bytes, expected: list[str]) -> None:
    """Negotiation shows decoded in the log; text is apart from commands."""
    assert summaries(decode(wire)) == expected


def test_lines_and_text() -> None:
    """A line end makes a Line; what came of a line so far is a Text."""
    msgs = decode(b"one\r\ntwo\r\x00thr")
    assert [type(m) for m in msgs] == [Line, Line, Text]
    assert [m.data for m in msgs] == [b"one", b"two", b"thr"]
    assert [getattr(m, "ending", None) for m in msgs] == [b"\r\n", b"\r\x00", None]
    assert msgs[0].fields() == {"line": "one", "ending": "CR LF"}
    assert msgs[1].fields()["ending"] == "CR NUL"


def test_bare_cr_at_end_of_data_ends_the_line() -> None:
    """A client in character mode may send Enter as a bare CR: the line
    ends at once, and a late LF or NUL is the rest of it."""
    decoder = TelnetDecoder()
    first = decoder.feed(b"ls\r")
    assert [(type(m), m.data) for m in first] == [(Line, b"ls")]
    assert decoder.buffered == 0 and not decoder.idle  # a LF or NUL may still complete that CR
    rest = decoder.feed(b"\nnext\r")
    assert [(type(m), m.raw) for m in rest] == [(Text, b"\n"), (Line, b"next\r")]
    assert [(type(m), m.raw) for m in decoder.feed(b"\x00")] == [(Text, b"\x00")]
    assert decoder.idle
    # within one chunk CR LF and CR NUL stay one line end; CR + other is a CR line end
    assert [m.raw for m in decode(b"a\r\nb\r\x00c\rd")] == [b"a\r\n", b"b\r\x00", b"c\r", b"d"]


def test_iac_escaping_both_ways() -> None:
    """Data byte 255 is doubled on the wire and single in the data."""
    line = Line.of(b"\xffx\xff")
    assert line.raw == b"\xff\xffx\xff\xff\r\n"
    assert decode(line.raw) == [line]
    assert Text.of(b"\xff").raw == b"\xff\xff"
    naws = Subnegotiation.naws(255, 0xFFFF)
    assert naws.raw == SB + NAWS + b"\x00\xff\xff" + b"\xff\xff\xff\xff" + SE
    assert decode(naws.raw) == [naws]
    assert naws.summary() == "SB NAWS 255x65535"
    assert telnet.nvt_bytes("a\nb\rc\r\n\xff") == b"a\r\nb\r\x00c\r\n\xc3\xbf"
    assert telnet.nvt_bytes(b"\xff") == b"\xff\xff"


def test_iac_split_across_chunks_is_held_back() -> None:
    """An IAC at the end of the data waits for the byte that says what it is."""
    decoder = TelnetDecoder()
    assert summaries(decoder.feed(b"ab\xff")) == ['"ab"']
    assert decoder.buffered == 1
    assert summaries(decoder.feed(b"\xff")) == ['"\\xff"']
    assert decoder.feed(b"\xff\xfd") == [] and decoder.buffered == 2
    assert summaries(decoder.feed(b"\x1f")) == ["DO NAWS"]
    assert decoder.feed(SB + NAWS + b"\x00") == []
    assert summaries(decoder.feed(b"\x50\x00\x18" + SE)) == ["SB NAWS 80x24"]


def test_subnegotiation_cut_short_by_a_command() -> None:
    """SB without SE ends at the next command, as BSD telnetd reads it."""
    msgs = decode(SB + TTYPE + b"\x00vt100" + DO + ECHO)
    assert summaries(msgs) == ["SB TTYPE IS vt100 (no SE)", "DO ECHO"]
    assert isinstance(msgs[0], Subnegotiation) and not msgs[0].complete
    assert b"".join(m.raw for m in msgs) == SB + TTYPE + b"\x00vt100" + DO + ECHO


def test_malformed_naws_is_described_not_fatal() -> None:
    (msg,) = decode(SB + NAWS + b"\x00\x50\x00" + SE)
    assert isinstance(msg, Subnegotiation)
    assert msg.window is None
    assert msg.summary() == "SB NAWS malformed (3 bytes, not 4)"


def test_unknown_commands_are_kept() -> None:
    """IAC followed by a byte that is no command is shown, not fatal."""
    msgs = decode(b"\xff\x41x\r\n\xff\xf0")
    assert summaries(msgs) == ["IAC 0x41 (not a telnet command)", '"x\\r\\n"', "SE"]
    assert isinstance(msgs[0], Command) and not msgs[0].known


def test_fields_kinds_and_volatile() -> None:
    """Decoded fields, the kind each message reports, and NAWS sizes as
    volatile (they differ from terminal to terminal)."""
    (naws,) = decode(SB + NAWS + b"\x00\x78\x00\x28" + SE)
    assert naws.fields()["width"] == 120 and naws.fields()["height"] == 40
    assert {"width", "height"} <= naws.volatile == Subnegotiation.VOLATILE
    assert [m.kind for m in decode(b"a\r\nb\xff\xf1\xff\xfd\x01")] == ["line", "text", "command", "negotiation"]
    assert naws.kind == "subnegotiation"
    (neg,) = decode(DO + TTYPE)
    assert neg.fields() == {"verb": "DO", "option": "TTYPE", "code": 24}
    assert Command.of("AYT").fields()["meaning"] == "are you there"
    assert Subnegotiation.ttype_is("xterm").fields()["terminal"] == "xterm"


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"x" * 9000, "line longer than 8192 bytes"),
        (b"y" * 8193 + b"\r\n", "line longer than 8192 bytes"),
        (SB + b"\x27" + b"z" * 5000, "subnegotiation of NEW-ENVIRON longer than 4096 bytes"),
        (SB + b"\x27" + b"z" * 5000 + SE, "subnegotiation of NEW-ENVIRON longer than 4096 bytes"),
    ],
)
def test_caps(wire: bytes, why: str) -> None:
    """Oversized lines and subnegotiations are refused however they arrive."""
    for pieces in ([wire], [wire[i : i + 7] for i in range(0, len(wire), 7)]):
        decoder = TelnetDecoder()
        with pytest.raises(RemoteProtocolError, match=why):
            for piece in pieces:
                decoder.feed(piece)
        with pytest.raises(RemoteProtocolError):
            decoder.feed(b"more")  # spent


def test_line_cap_counts_text_across_commands_and_chunks() -> None:
    decoder = TelnetDecoder(max_line=10)
    decoder.feed(b"12345")
    decoder.feed(b"\xff\xf1" + b"678")
    with pytest.raises(RemoteProtocolError, match="longer than 10"):
        decoder.feed(b"901")
    fine = TelnetDecoder(max_line=10)
    assert fine.feed(b"1234567890\r\n" + b"1234567890\r\n")


@pytest.mark.parametrize("tail", [IAC, DO, SB, SB + NAWS, SB + NAWS + b"\x00\x50", SB + NAWS + b"\xff"])
def test_stream_ending_inside_a_command(tail: bytes) -> None:
    """A truncated IAC sequence at the end of the stream is an error."""
    decoder = TelnetDecoder()
    with pytest.raises(RemoteProtocolError, match="stream ended inside a command") as err:
        decoder.feed(b"ok\r\n" + tail)
        decoder.feed(b"")
    assert not err.value.decoded or summaries(err.value.decoded) == ['"ok\\r\\n"']


def test_data_after_eof() -> None:
    decoder = TelnetDecoder()
    decoder.feed(b"")
    with pytest.raises(RemoteProtocolError, match="after end of stream"):
        decoder.feed(b"x")


def test_constructors_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError):
        Line.of("two\nlines")
    with pytest.raises(LocalProtocolError):
        Text.of("a\r")
    with pytest.raises(LocalProtocolError):
        Negotiation.of("MAYBE", "ECHO")
    with pytest.raises(LocalProtocolError, match="unknown option"):
        Negotiation.of("DO", "TELEPATHY")
    with pytest.raises(LocalProtocolError):
        Command.of("DO")
    with pytest.raises(LocalProtocolError):
        Subnegotiation.naws(70000, 1)
    with pytest.raises(LocalProtocolError):
        Subnegotiation.ttype_is("has space")
    assert Negotiation.of("will", "window-size").summary() == "WILL NAWS"
    assert Negotiation.of("DO", 199).summary() == "DO 199"
    assert telnet.option_code("ttype") == 24


def test_spec_and_registry() -> None:
    from lab import protocols

    spec = protocols.get("telnet")
    assert spec is telnet.SPEC
    assert spec.options is telnet.TelnetOptions and spec.client_options is telnet.TelnetClientOptions
    assert spec.transports == (Transport.TCP,) and spec.default_port == 23


# -- the conversation ----------------------------------------------------------------


@pytest.mark.parametrize("role", [*Role, None])
def test_line_caps_per_sender(role: Role | None) -> None:
    """Whoever decodes: what a client types is capped at MAX_LINE, what a
    server prints at MAX_SERVER_LINE."""
    conv = telnet.SPEC.conversation(role, Transport.TCP)
    decoders = conv._decoders
    assert all(isinstance(d, TelnetDecoder) for d in decoders.values())
    caps = {sender: getattr(decoder, "max_line", None) for sender, decoder in decoders.items()}
    assert caps == {Role.CLIENT: telnet.MAX_LINE, Role.SERVER: telnet.MAX_SERVER_LINE}


def test_a_long_line_is_fine_from_a_server_not_from_a_client() -> None:
    long_line = b"x" * 100_000 + b"\r\n"
    client_side = telnet.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert [m.raw for m in client_side.feed(long_line)] == [long_line]
    server_side = telnet.SPEC.conversation(Role.SERVER, Transport.TCP)
    with pytest.raises(RemoteProtocolError, match="line longer than 8192 bytes"):
        server_side.feed(long_line)


def test_what_a_side_sends_is_decoded_for_the_log() -> None:
    """Messages sent whole pass as they are; raw bytes are decoded, and a
    message sent after a raw CR is decoded in order with it."""
    conv = telnet.SPEC.conversation(Role.SERVER, Transport.TCP)
    assert not conv.follows_sends  # decoding depends on no history
    greeting = Line.of("hello")
    assert conv.send(greeting) == b"hello\r\n"
    assert conv.take_sent() == [greeting]
    conv.send_data(DO + NAWS + b"ls\r")
    assert summaries(conv.take_sent()) == ["DO NAWS", '"ls\\r"']
    assert conv.send(Text.of(b"\0")) == b"\0"  # the rest of a CR NUL
    assert [(type(m), m.raw) for m in conv.take_sent()] == [(Text, b"\0")]


# -- properties of the conversation ---------------------------------------------------

TELNETISH = st.lists(
    st.one_of(
        st.binary(max_size=12),
        st.sampled_from([IAC, IAC + IAC, b"\r", b"\n", b"\r\n", b"\r\x00", b"\x00",
                         DO + ECHO, WILL + NAWS, WONT + TTYPE, b"\xff\xf6", b"\xff\x41",
                         SB + NAWS + b"\x00\x50\x00\x18" + SE, SB + TTYPE + b"\x00xterm" + SE,
                         SB + TTYPE, SE]),
    ),
    max_size=30,
).map(b"".join)


@SETTINGS
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_any_bytes_split_anywhere(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side, received, sent or observed: only
    RemoteProtocolError, and messages add up to exactly the bytes consumed."""
    for sender in Role:
        laws.stream(telnet.SPEC.conversation, sender, data, cuts, framed=False)


@SETTINGS
@given(data=TELNETISH, cuts=st.lists(st.integers(0, 400), max_size=12), eof=st.booleans())
def test_splitting_changes_no_command_and_no_text(
    laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool
) -> None:
    """However TCP splits a telnet stream, from either side, the commands,
    their order and the text bytes decode the same (only the Text/Line
    pieces differ)."""
    for sender in Role:
        split = laws.stream(telnet.SPEC.conversation, sender, data, cuts, eof=eof, framed=False)
        whole = telnet.SPEC.conversation(sender.peer, Transport.TCP)
        try:
            msgs = whole.feed(data) + (whole.feed(b"") if eof else [])
        except RemoteProtocolError:
            continue
        assert stream(split) == stream(msgs)


@st.composite
def outgoing(draw: st.DrawFn) -> Message:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return Line.of(draw(st.binary(max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b)))
    if choice == 1:
        return Text.of(draw(st.binary(min_size=1, max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b)))
    if choice == 2:
        return Negotiation.of(draw(st.sampled_from(["DO", "DONT", "WILL", "WONT"])), draw(st.integers(0, 255)))
    if choice == 3:
        return Command.of(draw(st.sampled_from(["NOP", "AYT", "IP", "GA", "EC", "EL", "BRK", "AO", "DM"])))
    if choice == 4:
        return Subnegotiation.naws(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
    return Subnegotiation.of(draw(st.integers(0, 255)), draw(st.binary(max_size=30)))


@SETTINGS
@given(msgs=st.lists(outgoing(), max_size=20), cuts=st.lists(st.integers(0, 600), max_size=8))
def test_encoded_messages_decode_back(msgs: list[Message], cuts: list[int]) -> None:
    """Whatever we build and send, a peer decodes the same commands and
    text, with IAC escaped in data and in subnegotiations."""
    wire = b"".join(m.raw for m in msgs)
    decoder = TelnetDecoder(max_line=10**6)
    got: list[Message] = []
    for piece in split_at(wire, cuts):
        got += decoder.feed(piece)
    got += decoder.feed(b"")
    assert stream(got) == stream(msgs)


# -- the Q method ------------------------------------------------------------------------


def neg(verb: str, option: str | int) -> Negotiation:
    return Negotiation.of(verb, option)


def test_refused_options_and_accepted_ones() -> None:
    q = Negotiator(local={1}, remote={31})
    assert summaries(q.receive(neg("DO", "ECHO")).replies) == ["WILL ECHO"]
    assert q.here(1)
    assert summaries(q.receive(neg("WILL", "NAWS")).replies) == ["DO NAWS"]
    assert q.there(31)
    assert summaries(q.receive(neg("DO", "TTYPE")).replies) == ["WONT TTYPE"]
    assert summaries(q.receive(neg("WILL", "BINARY")).replies) == ["DONT BINARY"]
    assert q.summary() == {"us": ["ECHO"], "him": ["NAWS"]}


def test_no_answer_to_what_is_already_so() -> None:
    """RFC 854's loop rule: never acknowledge a mode already in effect."""
    q = Negotiator(local={1})
    q.receive(neg("DO", "ECHO"))
    again = q.receive(neg("DO", "ECHO"))
    assert again.replies == [] and again.change is None
    assert q.receive(neg("DONT", "SGA")).replies == []  # already off


def test_our_requests_and_their_answers() -> None:
    q = Negotiator()
    assert summaries(q.request(Side.HIM, 31)) == ["DO NAWS"]
    assert q.state(Side.HIM, 31) is Q.WANTYES and q.pending
    assert q.request(Side.HIM, 31) == []  # already asked
    outcome = q.receive(neg("WILL", "NAWS"))
    assert outcome.replies == []  # an answer is not answered
    assert outcome.change is not None and outcome.change.enabled and q.there(31) and not q.pending
    assert summaries(q.request(Side.US, 1)) == ["WILL ECHO"]
    outcome = q.receive(neg("DONT", "ECHO"))
    assert outcome.replies == [] and q.state(Side.US, 1) is Q.NO
    assert summaries(q.request(Side.HIM, 31, enable=False)) == ["DONT NAWS"]
    assert summaries(q.receive(neg("WONT", "NAWS")).replies) == []
    assert not q.there(31)


def test_change_of_mind_is_queued() -> None:
    """RFC 1143: asking the opposite while a request is out waits for the
    answer, then asks again."""
    q = Negotiator()
    q.request(Side.HIM, 1)  # DO ECHO sent
    assert q.request(Side.HIM, 1, enable=False) == []  # queued
    reply = q.receive(neg("WILL", "ECHO"))
    assert summaries(reply.replies) == ["DONT ECHO"]
    assert q.state(Side.HIM, 1) is Q.WANTNO
    q.receive(neg("WONT", "ECHO"))
    assert q.state(Side.HIM, 1) is Q.NO


def test_peer_that_keeps_asking_is_answered_a_bounded_number_of_times() -> None:
    q = Negotiator(max_replies=5)
    replies, problems = [], []
    for _ in range(100):
        outcome = q.receive(neg("WILL", 199))
        replies += outcome.replies
        problems += [outcome.problem] if outcome.problem else []
    assert len(replies) == 5
    assert problems == ["199 negotiated more than 5 times: no more answers"]


def test_rule_breaking_consent_is_reported() -> None:
    q = Negotiator(remote={1})
    q.receive(neg("WILL", "ECHO"))
    q.request(Side.HIM, 1, enable=False)
    outcome = q.receive(neg("WILL", "ECHO"))
    assert outcome.problem == "WILL ECHO answers our DONT ECHO"
    assert q.state(Side.HIM, 1) is Q.NO


@SETTINGS
@given(
    actions=st.lists(
        st.tuples(st.booleans(), st.sampled_from(list(Side)), st.sampled_from([1, 3, 24, 31]), st.booleans()),
        max_size=25,
    ),
    a_local=st.sets(st.sampled_from([1, 3, 24, 31])),
    a_remote=st.sets(st.sampled_from([1, 3, 24, 31])),
    b_local=st.sets(st.sampled_from([1, 3, 24, 31])),
    b_remote=st.sets(st.sampled_from([1, 3, 24, 31])),
)
def test_two_q_method_peers_never_loop_and_agree(
    actions: list[tuple[bool, Side, int, bool]], a_local: set[int], a_remote: set[int],
    b_local: set[int], b_remote: set[int],
) -> None:
    """Two peers following RFC 1143, making requests at any time, exchange
    a bounded number of messages and end up agreeing on every option."""
    peers = (Negotiator(local=a_local, remote=a_remote), Negotiator(local=b_local, remote=b_remote))
    wires: tuple[list[Negotiation], list[Negotiation]] = ([], [])  # to A, to B
    delivered = 0
    for from_a, side, option, enable in actions:
        sender = 0 if from_a else 1
        wires[1 - sender].extend(peers[sender].request(side, option, enable))
        for _ in range(2):  # deliver some in flight, in order
            for target in (0, 1):
                if wires[target]:
                    wires[1 - target].extend(peers[target].receive(wires[target].pop(0)).replies)
                    delivered += 1
    while wires[0] or wires[1]:
        for target in (0, 1):
            if wires[target]:
                wires[1 - target].extend(peers[target].receive(wires[target].pop(0)).replies)
                delivered += 1
        assert delivered < 1000, "negotiation loops"
    a, b = peers
    for option in (1, 3, 24, 31):
        assert a.here(option) == b.there(option)
        assert a.there(option) == b.here(option)
        assert not a.pending and not b.pending


# -- the server, in memory ----------------------------------------------------------


class FakeTimer:
    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when, self.fn, self.args = when, fn, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to, so timer tests are exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> FakeTimer:
        timer = FakeTimer(self.now + delay, fn, args)
        self.timers.append(timer)
        return timer

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> FakeTimer:
        return self.call_later(0.0, fn, *args)

    @property
    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]

    def advance(self, seconds: float) -> None:
        """Move on ``seconds``, running every timer due meanwhile in order."""
        end = self.now + seconds
        while due := [t for t in self.pending if t.when <= end]:
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.fn(*timer.args)
        self.now = end


def server(**options: Any) -> TelnetServer:
    """A server behaviour on a :class:`FakeClock`."""
    behaviour = telnet.SPEC.server(telnet.SPEC.resolve_options(options))
    assert isinstance(behaviour, TelnetServer)
    behaviour.clock = FakeClock()
    return behaviour


def clock_of(behaviour: TelnetServer) -> FakeClock:
    assert isinstance(behaviour.clock, FakeClock)
    return behaviour.clock


class StrictPeer(FakePeer):
    """A FakePeer on the server side of the telnet conversation that fails
    the test on any write after the session closed it."""

    def __init__(self, peer: tuple[Any, ...] = ("127.0.0.1", 40000)) -> None:
        super().__init__(spec=telnet.SPEC)
        self.peer = peer

    def send(self, msg: Message) -> None:
        assert not self.closed, f"sent {msg.summary()} after closing"
        super().send(msg)

    def send_raw(self, data: bytes) -> None:
        assert not self.closed, f"sent {data!r} after closing"
        super().send_raw(data)


class Wire:
    """A session of a server behaviour on a :class:`StrictPeer`, fed client
    bytes through the peer's conversation as the lab feeds them; what the
    server sent is decoded by a lenient decoder."""

    def __init__(self, behaviour: TelnetServer, peer: StrictPeer | None = None) -> None:
        self.server = behaviour
        self.peer = peer or StrictPeer()
        self.seen = 0
        self.session: TelnetSession = open_session(behaviour, self.peer)

    @property
    def clock(self) -> FakeClock:
        return clock_of(self.server)

    def send(self, data: bytes) -> None:
        """Bytes from the client (``b""``: it finished sending)."""
        conv = self.peer.conversation
        try:
            conv.receive_data(data)
            while not self.peer.closed and (msg := conv.next_message()) is not None:
                self.session.message_received(msg)
        except RemoteProtocolError as exc:
            if not self.peer.closed:
                self.session.protocol_error(exc)
            return
        if not data and not self.peer.closed:
            self.session.eof_received()

    def out(self) -> list[str]:
        """Summaries of what the server sent since the last call."""
        new = self.peer.data[self.seen :]
        self.seen = len(self.peer.data)
        return summaries(TelnetDecoder(max_line=10**6).feed(new))

    def text(self) -> str:
        msgs = TelnetDecoder(max_line=10**6).feed(self.peer.data[self.seen :])
        self.seen = len(self.peer.data)
        return "".join(m.text for m in msgs if isinstance(m, (Text, Line)))


TERMINAL_ANSWERS = DO + ECHO + DO + SGA + WILL + NAWS + SB + NAWS + b"\x00\x78\x00\x28" + SE + WILL + TTYPE


def test_opening_offers_echo_and_sga_and_asks_naws_and_ttype() -> None:
    wire = Wire(server())
    assert wire.out() == ["WILL ECHO", "WILL SGA", "DO NAWS", "DO TTYPE"]
    wire.send(TERMINAL_ANSWERS)
    assert wire.out() == ["SB TTYPE SEND"]  # asked once the client agreed to TTYPE
    wire.send(SB + TTYPE + b"\x00XTERM" + SE)
    greeting = wire.text()
    assert "terminal XTERM; window 120x40; options: we ECHO, SGA; you TTYPE, NAWS" in greeting
    assert "every line you type comes back" in greeting
    assert wire.session.window == (120, 40) and wire.session.terminal == "XTERM"
    assert "window 120x40" in wire.peer.notes and "terminal XTERM" in wire.peer.notes
    assert wire.clock.pending == []  # the greeting wait is over


def test_greeting_waits_for_a_client_that_answers_nothing() -> None:
    """The server's clock, not the client, ends the wait."""
    wire = Wire(server())
    wire.out()
    wire.clock.advance(0.99)
    assert wire.text() == ""
    wire.clock.advance(0.01)
    greeting = wire.text()
    assert "comes back" in greeting and "options: we none; you none" in greeting
    assert wire.session.stage is Stage.ECHOING


def test_greeting_wait_is_an_option() -> None:
    """--greeting-wait sets how long the server waits for answers (a slow
    client, a lesson on a loaded machine); nonsense is refused."""
    assert server().options.greeting_wait == 1.0
    assert server(greeting_wait="30").options.greeting_wait == 30.0
    for bad in ("0", "-1", "soon", "301"):
        with pytest.raises(ConfigError, match="greeting-wait"):
            server(greeting_wait=bad)
    wire = Wire(server(greeting_wait="0.05"))
    wire.out()
    wire.clock.advance(0.05)
    assert "options: we none; you none" in wire.text()


def test_refusing_client_gets_greeted_and_ga_after_each_turn() -> None:
    """Without SGA in force the server hands the turn over with GA."""
    wire = Wire(server())
    wire.out()
    wire.send(DONT + ECHO + DONT + SGA + WONT + NAWS + WONT + TTYPE)
    out = wire.out()
    assert out[-1] == "GA" and any("comes back" in s for s in out)
    wire.send(b"hi\r\n")
    assert wire.out() == ['"hi\\r\\n"', "GA"]  # no character echo: the client echoes


def echo_session(**options: Any) -> Wire:
    wire = Wire(server(**options))
    wire.send(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE)
    wire.out()
    return wire


def test_character_mode_echo_then_the_line() -> None:
    """Keys come one by one (Enter as CR NUL); each is echoed, then the line."""
    wire = echo_session()
    before = len(wire.peer.writes)
    for key in (b"h", b"i", b"\r\x00"):
        wire.send(key)
    assert wire.peer.writes[before:] == [b"h", b"i", b"\r\n", b"hi\r\n"]


def test_line_editing() -> None:
    """BS/DEL, IAC EC, ^U, IAC EL, NUL and arrow keys edit as a terminal would."""
    wire = echo_session()
    wire.send(b"abX\x7fc\x08d\r\n")  # DEL then BS
    assert wire.text().endswith("\r\nabd\r\n")
    wire.send(b"junk\xff\xf8ok\xff\xf7K\r\n")  # EL, then EC
    assert wire.text().endswith("\r\noK\r\n")
    wire.send(b"x\x15y\x00z\x1b[Aw\r\n")  # ^U, NUL, up-arrow
    assert wire.text().endswith("\r\nyzw\r\n")
    wire.send("żółw\x7f\r\n".encode())  # erase a whole UTF-8 character
    assert wire.text().endswith("\r\nżół\r\n")


def test_nul_bytes_never_reach_a_line() -> None:
    wire = echo_session()
    wire.send(b"\x00a\x00\x00b\x00\r\n")
    assert wire.text().endswith("\r\nab\r\n")


@pytest.mark.parametrize("ending", [b"\x04", b"\x03", b"\xff\xf4", b"\xff\xec"])
def test_echo_session_ends_on_ctrl_d_ctrl_c_ip_eof(ending: bytes) -> None:
    wire = echo_session()
    wire.send(ending)
    assert "Goodbye." in wire.text()
    assert wire.peer.closed and wire.session.stage is Stage.CLOSED


def test_are_you_there_and_other_commands() -> None:
    wire = echo_session()
    wire.send(b"\xff\xf6")
    assert wire.out() == ['"[netlab: yes, still here]\\r\\n"']
    wire.send(b"\xff\xf1\xff\xf2\xff\xf9\xff\xf5\xff\x41\xff\xf0")  # NOP DM GA AO 0x41 SE
    assert wire.out() == []
    assert wire.peer.notes[-3:] == ["AO: output is never held back here, nothing to discard",
                                    "ignored IAC 0x41 (not a telnet command)", "ignored SE without SB"]


def test_subnegotiation_for_an_option_not_in_force_is_ignored() -> None:
    wire = Wire(server())
    wire.send(SB + NAWS + b"\x00\x10\x00\x10" + SE)
    assert wire.session.window is None
    assert wire.peer.notes[-1] == "ignored SB NAWS: the client does not perform it"
    wire.send(WILL + NAWS + SB + NAWS + b"\x00\x10" + SE)
    assert wire.peer.notes[-1] == "ignored malformed NAWS of 2 bytes"


def test_window_resizes_are_noted() -> None:
    wire = echo_session()
    wire.send(SB + NAWS + b"\x00\xc8\x00\x32" + SE)
    assert wire.session.window == (200, 50)
    assert wire.peer.notes[-1] == "window 200x50"


def test_sessions_keep_their_own_state() -> None:
    """Two connections to one server: each session has its own options,
    window and stage."""
    behaviour = server()
    first, second = Wire(behaviour), Wire(behaviour, StrictPeer())
    first.send(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE)
    second.send(DONT + ECHO)
    assert (first.session.window, first.session.stage) == ((120, 40), Stage.ECHOING)
    assert (second.session.window, second.session.stage) == (None, Stage.NEGOTIATING)
    assert first.session.negotiator.here(1) and not second.session.negotiator.here(1)


def test_negotiation_loop_from_a_hostile_client_is_bounded() -> None:
    """A client flipping an option forever gets a bounded number of answers."""
    wire = echo_session()
    wire.send((WILL + b"\xc7" + WONT + b"\xc7") * 200 + (DONT + ECHO + DO + ECHO) * 200)
    assert len(wire.out()) <= 2 * 16 + 2
    assert any("negotiated more than" in note for note in wire.peer.notes)
    wire.send(b"still\r\n")
    assert wire.text().endswith("still\r\n")


def test_protocol_error_says_why_and_closes() -> None:
    wire = echo_session()
    wire.send(b"A" * 10_000)
    assert "netlab: line longer than 8192 bytes; closing" in wire.text()
    assert wire.peer.closed


def test_connection_lost_cancels_the_greeting_wait() -> None:
    """A client gone before the greeting leaves no timer behind."""
    wire = Wire(server())
    assert len(wire.clock.pending) == 1
    wire.peer.closed = True
    wire.session.connection_lost()
    assert wire.clock.pending == [] and wire.session.stage is Stage.CLOSED
    wire.clock.advance(5)  # and nothing is written


@SETTINGS
@given(data=st.binary(max_size=300))
def test_line_editor_keeps_only_what_a_line_may_hold(data: bytes) -> None:
    """Whatever is typed, the line holds no control character but TAB,
    stays within its cap, and erasing it all leaves nothing."""
    editor = telnet.LineEditor(max_length=64)
    editor.feed(data)
    assert len(editor.buffer) <= 64
    assert not any((b < 0x20 and b != 0x09) or b == 0x7F for b in editor.buffer)
    editor.feed(b"\x7f" * 200)
    assert editor.buffer == b""


@SETTINGS
@given(text=st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs", "Cc")), max_size=40))
def test_line_editor_keeps_printable_text_as_typed(text: str) -> None:
    editor = telnet.LineEditor()
    edit = editor.feed(text.encode())
    assert editor.take() == bytes(edit.echo) == text.encode()


@SETTINGS
@given(data=TELNETISH, mode=st.sampled_from(["echo", "console"]))
def test_servers_survive_any_client_bytes(data: bytes, mode: str) -> None:
    """Any telnet-ish input: the session never raises and never writes
    after it closed (StrictPeer fails the test if it does)."""
    # a password no example will type: statements need a running loop
    behaviour = server(mode=mode, password="no example types this") if mode == "console" else server()
    behaviour.services.set(CONSOLE, FakeConsole())
    wire = Wire(behaviour)
    for piece in (data[: len(data) // 2], data[len(data) // 2 :], b""):
        if wire.peer.closed:
            break  # a closed connection delivers nothing more
        wire.send(piece)
        wire.clock.advance(1.0)


# -- the console, in memory ---------------------------------------------------------


class FakeConsole:
    """Stands in for the lab's CONSOLE service; a statement takes
    ``turns`` passes of the loop."""

    def __init__(self, answers: dict[str, str] | None = None, turns: int = 0) -> None:
        self.answers = answers or {}
        self.turns = turns
        self.ran: list[str] = []

    async def run(self, text: str) -> str:
        self.ran.append(text)
        for _ in range(self.turns):
            await asyncio.sleep(0)
        if text not in self.answers:
            raise LabError(f"`{text}`: unknown command", hint="`help`\nlists the commands")
        return self.answers[text]

    def complete(self, line: str) -> list[str]:
        word = "" if not line or line[-1].isspace() else line.split()[-1]
        return sorted(w for w in self.answers if w.startswith(word))


async def turns(count: int = 20) -> None:
    """Let the loop run statement tasks for a few passes."""
    for _ in range(count):
        await asyncio.sleep(0)


CONSOLE_TYPING = st.lists(
    st.one_of(TELNETISH, st.sampled_from([b"s3cret\r\n", b"ls\r\n", b"l\t", b"\t", b"slow\r\n",
                                          b"quit\r\n", b"\x03", b"\xff\xf4", b"\r\x00"])),
    max_size=12,
)


@settings(deadline=None, max_examples=100)
@given(pieces=CONSOLE_TYPING, pauses=st.lists(st.integers(0, 3), min_size=12, max_size=12))
def test_console_survives_any_typing(arun: Runner, pieces: list[bytes], pauses: list[int]) -> None:
    """Logged in or not, running a statement or not: any input leaves the
    console consistent, never writes after it closed, and a closed session
    leaves no timer or typed-ahead line behind."""

    async def main() -> None:
        behaviour = server(mode="console", password="s3cret")
        behaviour.services.set(CONSOLE, FakeConsole({"ls": "e1", "slow": "done"}, turns=2))
        wire = Wire(behaviour)
        wire.send(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE)
        for piece, pause in zip(pieces, pauses, strict=False):
            if wire.peer.closed:
                break
            wire.send(piece)
            await turns(pause)
            wire.clock.advance(pause / 2)  # sometimes the wrong password's delay runs out
        await turns()
        if wire.peer.closed:
            wire.session.connection_lost()
            assert wire.session.stage is Stage.CLOSED
            assert not wire.clock.pending and not wire.session.queue
        await turns()

    arun(main())


def console(fake: FakeConsole | None = None, **options: Any) -> TelnetServer:
    behaviour = server(mode="console", password="s3cret", **options)
    behaviour.services.set(CONSOLE, fake or FakeConsole())
    return behaviour


def test_console_needs_a_password() -> None:
    with pytest.raises(ConfigError, match="needs a password") as err:
        server(mode="console")
    assert "--password" in str(err.value)


def test_console_password_file(tmp_path: Any) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    assert server(mode="console", password_file=str(secret)).password == "from-a-file"
    with pytest.raises(ConfigError, match="--password-file cannot read"):
        server(mode="console", password_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="password on its first line"):
        server(mode="console", password_file=str(tmp_path / "empty"))


def test_console_options_are_checked() -> None:
    """Bad values are refused with the option's name and an example."""
    with pytest.raises(ConfigError, match="telnet: --mode wants echo or console, got 'shell'") as err:
        server(mode="shell")
    assert err.value.hint == "e.g. --mode console"
    with pytest.raises(ConfigError, match="login-attempts"):
        server(mode="console", password="x", login_attempts="0")
    with pytest.raises(ConfigError, match="--password wants"):
        server(mode="console", password=" padded ")
    options = telnet.SPEC.resolve_options({"mode": "CONSOLE", "password": "x", "allow_remote": "yes",
                                           "login_attempts": 5})
    assert options == telnet.TelnetOptions(mode=telnet.Mode.CONSOLE, password="x", allow_remote=True,
                                           login_attempts=5)
    assert telnet.TelnetOptions.get("allow_remote").flag  # a switch on the command line


def test_client_options_are_typed_and_checked() -> None:
    options = telnet.SPEC.resolve_client_options({"terminal": "vt100", "width": 100, "negotiate": "manual"})
    assert options == telnet.TelnetClientOptions(terminal=("vt100",), width=100, height=24,
                                                 negotiate=telnet.Negotiate.MANUAL)
    for bad, why in (({"width": "0"}, "1-65535"), ({"terminal": "has space"}, "printing ASCII"),
                     ({"negotiate": "maybe"}, "auto or manual")):
        with pytest.raises(ConfigError, match=why):
            telnet.SPEC.resolve_client_options(bad)


def test_console_refuses_a_non_loopback_bind_unless_allowed() -> None:
    behaviour = console()
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        behaviour.check_bind(host)
    for host in ("0.0.0.0", "::", "192.0.2.7", ""):
        with pytest.raises(ConfigError, match="reachable from other machines"):
            behaviour.check_bind(host)
    console(allow_remote=True).check_bind("0.0.0.0")
    server().check_bind("0.0.0.0")  # the echo service may listen anywhere


def test_console_refuses_remote_peers_unless_allowed() -> None:
    remote = Wire(console(), StrictPeer(("192.0.2.7", 5000)))
    assert remote.peer.closed and "loopback connections only" in remote.text()
    assert not remote.clock.pending
    mapped = Wire(console(), StrictPeer(("::ffff:127.0.0.1", 5000, 0, 0)))
    assert not mapped.peer.closed
    allowed = Wire(console(allow_remote=True), StrictPeer(("192.0.2.7", 5000)))
    assert not allowed.peer.closed


def test_console_without_a_lab_says_so() -> None:
    behaviour = server(mode="console", password="pw")
    wire = Wire(behaviour)
    wire.send(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE)
    assert "no lab console here" in wire.text()
    assert wire.peer.closed


def console_session(arun: Runner, script: Callable[[Wire], Awaitable[Any]],
                    fake: FakeConsole | None = None, **options: Any) -> Any:
    async def main() -> Any:
        wire = Wire(console(fake, **options))
        wire.send(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE)
        return await script(wire)

    return arun(main())


async def settle(wire: Wire, until: str, passes: int = 200) -> str:
    """What the server says until ``until`` shows up (statements run as
    tasks, so the loop gets a few passes)."""
    seen = wire.text()
    for _ in range(passes):
        if until in seen:
            return seen
        await asyncio.sleep(0)
        seen += wire.text()
    raise AssertionError(f"{until!r} never came; got {seen!r}")


def test_console_password_is_not_echoed_and_statements_run(arun: Runner) -> None:
    fake = FakeConsole({"ls": "NAME  KIND\ne1    server", "help": "commands: ls"})

    async def script(wire: Wire) -> None:
        assert (await settle(wire, "Password: ")).startswith("netlab console")
        assert wire.session.stage is Stage.PASSWORD
        for key in b"s3cret":
            wire.send(bytes((key,)))
        wire.send(b"\r\x00")
        said = await settle(wire, "netlab> ")
        assert "s3cret" not in said and "Logged in" in said
        wire.send(b"ls\r\n")
        said = await settle(wire, "netlab> ")
        assert said == "ls\r\nNAME  KIND\r\ne1    server\r\nnetlab> "
        wire.send(b"bogus\r\n")
        said = await settle(wire, "netlab> ")
        assert "error: `bogus`: unknown command — `help` lists the commands\r\n" in said  # one line
        wire.send(b"help\r\n")
        assert "quit     leave the console" in await settle(wire, "netlab> ")
        wire.send(b"\r\n")
        assert (await settle(wire, "netlab> ")) == "\r\nnetlab> "
        wire.send(b"quit\r\n")
        assert "Goodbye." in await settle(wire, "Goodbye.")
        assert wire.peer.closed

    console_session(arun, script, fake)
    assert fake.ran == ["ls", "bogus", "help"]


def test_console_completes_with_tab_in_character_mode(arun: Runner) -> None:
    fake = FakeConsole({"help": "commands", "serve": "", "stop": "", "ls": "nothing"})

    async def script(wire: Wire) -> None:
        await settle(wire, "Password: ")
        wire.send(b"s3cret\r\x00")
        await settle(wire, "netlab> ")
        wire.send(b"he\t")
        assert await settle(wire, "lp ") == "help "  # completed, with a space
        wire.send(b"\x15s\t")  # ^U, then two candidates
        said = await settle(wire, "netlab> s")
        assert "serve  stop\r\n" in said
        wire.send(b"\x15zz\t")
        assert (await settle(wire, "\a")).endswith("zz\a")
        wire.send(b"\x15l\t\r\x00")  # TAB inside typed data
        assert "nothing" in await settle(wire, "netlab> ")

    console_session(arun, script, fake)
    assert fake.ran == ["ls"]


def test_console_limits_login_attempts(arun: Runner) -> None:
    """A wrong password is answered only when the server's clock says the
    delay is over; typing meanwhile is dropped; the third failure hangs up."""
    fake = FakeConsole()

    async def script(wire: Wire) -> None:
        await settle(wire, "Password: ")
        wire.send(b"guess1\r\n")
        assert wire.session.stage is Stage.LOCKED
        wire.send(b"typed-ahead\r\n")  # dropped while locked
        wire.clock.advance(0.99)
        assert "Login incorrect" not in wire.text()
        wire.clock.advance(0.01)
        said = await settle(wire, "Password: ")
        assert "Login incorrect." in said
        wire.send(b"guess2\r\n")
        wire.clock.advance(1.0)
        await settle(wire, "Password: ")
        wire.send(b"s3cret-not\r\n")
        said = await settle(wire, "goodbye")
        assert "Too many failures" in said and wire.peer.closed
        assert wire.peer.notes[-1] == "console login failed (3 of 3)"
        assert not wire.clock.pending

    console_session(arun, script, fake)
    assert fake.ran == []


def test_console_queues_typed_ahead_lines_and_interrupts(arun: Runner) -> None:
    fake = FakeConsole({"slow": "done", "fast": "quick"}, turns=5)

    async def script(wire: Wire) -> None:
        await settle(wire, "Password: ")
        wire.send(b"s3cret\r\n")
        await settle(wire, "netlab> ")
        wire.send(b"slow\r\nfast\r\n")
        assert list(wire.session.queue) == ["fast"]
        said = await settle(wire, "quick\r\nnetlab> ")
        assert said.index("done") < said.index("quick")
        wire.send(b"slow\r\n")
        await asyncio.sleep(0)  # the statement starts
        wire.send(b"\xff\xf4")  # IAC IP
        said = await settle(wire, "netlab> ")
        assert "interrupted" in said and "done" not in said
        wire.send(b"slow\r\n\xff\xf4")  # interrupted before it even started
        said = await settle(wire, "netlab> ")
        assert "interrupted" in said and "done" not in said
        wire.send(b"fast\r\n")
        assert "quick" in await settle(wire, "netlab> ")

    console_session(arun, script, fake)
    assert fake.ran == ["slow", "fast", "slow", "fast"]


def test_console_client_leaving_mid_statement(arun: Runner) -> None:
    """The statement runs to its end; nobody is told, nothing is written."""
    fake = FakeConsole({"slow": "done"}, turns=5)

    async def script(wire: Wire) -> None:
        await settle(wire, "Password: ")
        wire.send(b"s3cret\r\n")
        await settle(wire, "netlab> ")
        wire.send(b"slow\r\n")
        wire.peer.closed = True
        wire.session.connection_lost()
        await turns()
        assert not wire.server.tasks  # finished and forgotten

    console_session(arun, script, fake)
    assert fake.ran == ["slow"]


# -- the client verbs, in memory ------------------------------------------------------


class WatchedLoopback(Loopback):
    """A loopback whose client verbs see each message as it arrives, from
    the server's opening on, as the lab's client connections do."""

    def __init__(self, options: dict[str, Any] | None = None, **kw: Any) -> None:
        self.verbs = telnet.TelnetClient(self)
        super().__init__(telnet.SPEC, options=options, **kw)

    def _to_client(self, data: bytes) -> None:
        before = len(self.inbox)
        super()._to_client(data)
        for msg in list(self.inbox)[before:]:
            self.verbs.message_received(msg)


def watched(**options: Any) -> tuple[WatchedLoopback, telnet.TelnetClient]:
    link = WatchedLoopback(options)
    return link, link.verbs


def sent_by_client(link: Loopback) -> list[str]:
    return summaries(TelnetDecoder().feed(b"".join(link.client_writes)))


def test_client_negotiates_and_reads(arun: Runner) -> None:
    async def main() -> None:
        link, client = watched()
        await client.configure(terminal=["xterm-256color", "xterm"], width=100, height=30)
        greeting = await client.read_until("ends the session.\n")
        assert "terminal xterm-256color; window 100x30" in greeting
        state = await client.negotiated()
        assert state["we"] == ["TTYPE", "NAWS"] and state["server"] == ["SGA"]  # ECHO refused
        await client.send_line("hello")
        assert await client.read_line() == "hello"
        await client.configure(width=132)
        assert link.session.window == (132, 30)
        assert await client.request("DO", "ECHO") == ["DO ECHO"]
        await client.send_line("twice")
        assert await client.read_line() == "twice"  # the server echoes as we type
        assert await client.read_line() == "twice"
        with pytest.raises(LabTimeout, match=r"'never' did not arrive within 0\.05 s"):
            await client.read_until("never", timeout=0.05)

    arun(main())


def test_client_answers_as_messages_arrive_with_no_verb_reading(arun: Runner) -> None:
    """The answers go out from message_received, once each, while nothing
    but the channel's own receive reads (as raw expect does)."""

    async def main() -> None:
        link, client = watched()
        while "ends the session" not in (await link.receive()).text:
            pass
        assert sent_by_client(link) == ["DONT ECHO", "DO SGA", "WILL NAWS", "SB NAWS 80x24", "WILL TTYPE",
                                        "SB TTYPE IS dumb"]
        assert (await client.negotiated())["we"] == ["TTYPE", "NAWS"]
        assert (link.session.window, link.session.terminal) == ((80, 24), "dumb")
        await client.negotiate(quiet=0.05)  # a verb reading now answers nothing again
        assert len(link.client_writes) == 6

    arun(main())


class SentChannel:
    """A channel that only records what the client sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = False

    async def send(self, msg: Message) -> None:
        if self.closed:
            raise ConnectionClosed("closed by peer")
        self.sent.append(msg.summary())


def test_client_keeps_window_sizes_in_order(arun: Runner) -> None:
    """A resize right after the server's DO NAWS goes out after the size
    the answer carries, never before it."""

    async def main() -> list[str]:
        channel = SentChannel()
        client = telnet.TelnetClient(channel)  # type: ignore[arg-type]
        client.message_received(Negotiation.of("DO", "NAWS"))
        await client.configure(width=100)  # before the loop sent the answers
        await asyncio.sleep(0)
        return channel.sent

    assert arun(main()) == ["WILL NAWS", "SB NAWS 80x24", "SB NAWS 100x24"]


def test_client_answer_caps_and_timing_marks(arun: Runner) -> None:
    """A server asking a thousand times for a refused option gets at most
    16 refusals; each DO TM gets its answer; a closed connection swallows
    answers quietly."""

    async def main() -> None:
        channel = SentChannel()
        client = telnet.TelnetClient(channel)  # type: ignore[arg-type]
        for _ in range(1000):
            client.message_received(Negotiation.of("WILL", 199))
        for _ in range(3):
            client.message_received(Negotiation.of("DO", "TM"))
        await asyncio.sleep(0)
        assert channel.sent == ["DONT 199"] * 16 + ["WONT TM"] * 3
        channel.closed = True
        client.message_received(Negotiation.of("DO", 200))
        await asyncio.sleep(0)
        assert not client._outbox and client._flusher is None

    arun(main())


def test_client_cycles_terminal_types_per_rfc_1091(arun: Runner) -> None:
    async def main() -> list[str]:
        link, client = watched()
        await client.configure(terminal=["A", "B"])
        await client.read_until("ends the session.\n")  # the server's own SEND got "A"
        sent = []
        for _ in range(4):
            client.message_received(Subnegotiation.ttype_send())
        await asyncio.sleep(0)  # the answers go out from the loop
        for data in link.client_writes:
            sent += [m.terminal for m in TelnetDecoder().feed(data) if isinstance(m, Subnegotiation)]
        return [t for t in sent if t]

    assert arun(main()) == ["A", "B", "B", "A", "B"]


def test_client_text_survives_tcp_splits(arun: Runner, loopback: type[Loopback]) -> None:
    """A CR LF split by TCP reads as one line end; CR NUL as CR; NUL
    (an NVT no-op) and split UTF-8 characters come out right."""

    async def main() -> list[str]:
        client = telnet.TelnetClient(loopback(telnet.SPEC))
        decoder = TelnetDecoder()
        for piece in (b"one\r", b"\ntw", b"o\x00\r\n", "żó".encode()[:3], "żó".encode()[3:] + b"\r\n",
                      b"50%\r\x00100%\r\n"):
            for msg in decoder.feed(piece):
                client._take(msg)
        return [await client.read_line() for _ in range(4)]

    assert arun(main()) == ["one", "two", "żó", "50%\r100%"]


def test_client_login_and_run(arun: Runner) -> None:
    fake = FakeConsole({"ls": "e1 server"})

    async def main() -> None:
        def prepare(behaviour: TelnetServer) -> None:
            behaviour.services.set(CONSOLE, fake)
            behaviour.failure_delay = 0  # "Login incorrect" on the next pass of the loop

        link = WatchedLoopback({"mode": "console", "password": "pw"}, prepare=prepare)
        client = link.verbs
        with pytest.raises(LabError, match="login refused: Login incorrect"):
            await client.login("wrong")
        banner = await client.login("pw")
        assert banner.startswith("Logged in")
        assert await client.run("ls") == "e1 server"

    arun(main())


def test_client_raw_sends(arun: Runner) -> None:
    async def main() -> None:
        _, client = watched()
        await client.read_until("ends the session.\n")
        await client.send_command("AYT")
        assert "still here" in await client.read_line()
        await client.send_text("par")
        await client.send_raw(b"tial\r\n")
        assert await client.read_line() == "partial"
        await client.send_raw(b"\x04")
        assert "Goodbye." in await client.read_all()

    arun(main())


def test_client_options_set_what_it_reports() -> None:
    """Client options, typed, become the terminal types, window and
    negotiation policy of the verbs."""
    client = telnet.TelnetClient(SentChannel())  # type: ignore[arg-type]
    assert (client.terminals, client.window, client.manual) == (["dumb"], (80, 24), False)
    client.set_options(telnet.TelnetClientOptions.resolve(
        {"terminal": ["VT220", "VT100"], "width": "132", "negotiate": "manual"}, proto="telnet"))
    assert (client.terminals, client.window, client.manual) == (["VT220", "VT100"], (132, 24), True)
    client.message_received(Negotiation.of("DO", "NAWS"))  # manual: nothing is answered
    assert not client._outbox and client._flusher is None


# -- an observer of whole conversations -------------------------------------------------


async def console_conversation() -> Loopback:
    """Negotiation both ways, NAWS and TTYPE, a failed and a good console
    login, statements, commands and raw typing, then quit."""

    def prepare(behaviour: TelnetServer) -> None:
        behaviour.services.set(CONSOLE, FakeConsole({"ls": "e1 server", "help": "commands: ls"}))
        behaviour.failure_delay = 0

    link = WatchedLoopback({"mode": "console", "password": "pw"}, prepare=prepare)
    client = link.verbs
    await client.configure(terminal=["xterm-256color", "xterm"], width=100, height=30)
    with pytest.raises(LabError, match="login refused"):
        await client.login("wrong")
    await client.login("pw")
    assert await client.run("ls") == "e1 server"
    await client.configure(width=132)  # NAWS once in force
    assert await client.request("WILL", "BINARY") == ["WILL BINARY"]  # refused by the server
    assert await client.request("DO", "ECHO") == ["DO ECHO"]  # now the server echoes
    await client.send_command("AYT")
    await client.read_until("still here]\n")
    assert "commands: ls" in await client.run("help")
    await client.send_text("hel\xff")
    await client.send_raw(b"\x7fp\r\x00")  # DEL, then Enter as CR NUL
    await client.read_until("netlab> ")
    await client.send_line("quit")
    assert "Goodbye." in await client.read_all()
    return link


async def echo_conversation() -> Loopback:
    """A character-mode echo session: keys one at a time, a bare CR,
    line editing commands, SB from a client that was not asked, ^D."""
    link, client = watched(greeting_wait="30")
    await client.read_until("ends the session.\n")
    for key in (b"h", b"i", b"\r", b"\x00", b"x\xff\xf7", b"ok\r\n"):
        await client.send_raw(key)
    await client.send_raw(SB + b"\x27\x00\x01" + SE + b"\xff\x41")  # NEW-ENVIRON not agreed, unknown command
    await client.send_line("last")
    await client.read_until("last\n")
    await client.send_raw(b"\x04")
    await client.read_all()
    return link


CONVERSATIONS = {"console": console_conversation, "echo": echo_conversation}


@functools.cache
def recorded(name: str) -> Loopback:
    """One recorded conversation per name, made once for every example."""
    link: Loopback = asyncio.run(CONVERSATIONS[name]())
    assert not link.errors and link.client_error is None
    return link


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, name: str) -> None:
    """Replayed chunk by chunk as it crossed the wire, a recorded
    conversation decodes to an observer exactly as each side decoded it."""
    seen = laws.observer_replays(telnet.SPEC.conversation, recorded(name), [])
    assert any(isinstance(m, Subnegotiation) and m.window for m in seen[Role.SERVER])
    assert any(isinstance(m, Negotiation) for m in seen[Role.CLIENT])


@SETTINGS
@given(name=st.sampled_from(list(CONVERSATIONS)), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_an_observer_split_anywhere_sees_the_same_commands_and_text(
    name: str, cuts: list[int]
) -> None:
    """Split anywhere, a recorded conversation gives an observer the same
    commands in the same order and the same text, on each side, as the
    two sides saw (only where text breaks into Text pieces may differ:
    telnet hands out what has come of a line at once)."""
    link = recorded(name)
    conv = telnet.SPEC.conversation(None, Transport.TCP)
    seen: dict[Role, list[Message]] = {Role.CLIENT: [], Role.SERVER: []}
    for sender, chunk in link.transcript:
        for piece in split_at(chunk, cuts):
            for side, msg in conv.observe(piece, sender):
                seen[side.peer].append(msg)  # keyed by who received it
    for receiver in Role:
        assert stream(seen[receiver]) == stream(link.seen[receiver])
        wire = b"".join(chunk for sender, chunk in link.transcript if sender is receiver.peer)
        assert b"".join(m.raw for m in seen[receiver]) == wire


# -- hostile input on real sockets ------------------------------------------------------


def raw_session(port: int, payload: bytes, *, read: bool = True, timeout: float = 20) -> bytes:
    """Connect, send ``payload``, and read until the server closes."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if read:
            try:
                while data := s.recv(65536):
                    got += data
            except ConnectionResetError:
                pass
    return got


def events(lab: Lab, endpoint: str, kind: EventKind) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({kind})))]


def still_serves(lab: Lab, port: int) -> None:
    c = lab.connect("telnet", f"127.0.0.1:{port}")
    c.read_until("ends the session.\n", timeout=20)
    c.send_line("still here")
    assert c.read_line(timeout=20) == "still here"
    lab.stop(c)


def test_megabyte_line_is_refused_while_others_are_served(lab: Lab) -> None:
    srv = lab.serve("telnet")
    other = lab.connect("telnet", srv)
    other.read_until("ends the session.\n", timeout=20)
    tracemalloc.start()
    try:
        reply = raw_session(srv.port, b"A" * (1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert b"netlab: line longer than 8192 bytes; closing" in reply
    assert peak < 4 * 1024 * 1024
    other.send_line("after the flood")
    assert other.read_line(timeout=20) == "after the flood"
    wait_until(lambda: any("line longer" in s for s in events(lab, srv.name, EventKind.ERROR)),
               what="the error event")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"ok\r\n\xff", "stream ended inside a command"),
        (b"ok\r\n\xff\xfd", "stream ended inside a command"),
        (SB + NAWS + b"\x00\x50", "stream ended inside a command"),
        (SB + b"\x27" + b"v" * 10_000, "subnegotiation of NEW-ENVIRON longer than 4096 bytes"),
    ],
)
def test_truncated_and_oversized_commands(lab: Lab, payload: bytes, error: str) -> None:
    """A stream that stops inside IAC, or an SB that never ends: an error
    event, and the server goes on serving."""
    srv = lab.serve("telnet")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    wait_until(lambda: any(error in e for e in events(lab, srv.name, EventKind.ERROR)), timeout=20,
               what=f"an error event about {error!r}")
    still_serves(lab, srv.port)


def test_nul_bytes_and_invalid_iac_on_the_wire(lab: Lab) -> None:
    srv = lab.serve("telnet")
    c = lab.connect("telnet", srv)
    c.read_until("ends the session.\n", timeout=20)
    c.send_raw(b"\x00a\x00b\xff\x41c\xff\xf0\r\n")
    assert c.read_line(timeout=20) == "abc"
    assert "ignored IAC 0x41 (not a telnet command)" in events(lab, srv.name, EventKind.INFO)


def test_negotiation_loop_on_the_wire(lab: Lab) -> None:
    """A client that asks for a refused option a thousand times gets a
    bounded number of refusals and the server keeps serving it."""
    srv = lab.serve("telnet")
    c = lab.connect("telnet", srv)
    c.read_until("ends the session.\n", timeout=20)
    c.send_raw(WILL + b"\xc7" * 1 + (WILL + b"\xc7") * 999)
    c.send_line("after")
    assert c.read_line(timeout=20) == "after"
    dont = [s for s in events(lab, c.name, EventKind.MESSAGE) if s == "DONT 199"]
    assert 1 <= len(dont) <= 16


def test_abrupt_disconnect_in_the_middle_of_a_console_statement(lab: Lab) -> None:
    con = lab.serve("telnet", mode="console", password="pw")
    with socket.create_connection(("127.0.0.1", con.port), timeout=20) as s:
        s.sendall(TERMINAL_ANSWERS + SB + TTYPE + b"\x00xterm" + SE + b"pw\r\n")
        got = b""
        while b"netlab> " not in got:
            got += s.recv(4096)
        s.sendall(b"serve echo as during; expect nobody x\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    wait_until(lambda: "during" in lab, timeout=20, what="the statement to run anyway")
    k = lab.connect("telnet", con)
    k.login("pw")
    assert "during" in k.run("ls")


def test_console_statements_act_on_the_same_lab(lab: Lab) -> None:
    con = lab.serve("telnet", mode="console", password="pw", name="console")
    k = lab.connect("telnet", con)
    k.login("pw")
    assert "e1: echo listening on tcp://127.0.0.1:" in k.run("serve echo as e1")
    assert "e1" in lab and lab["e1"].kind.label == "server"
    said = k.run("connect e1 as c9; send c9 ping; expect c9 ping")
    assert 'c9 <- "ping\\r\\n"' in said
    assert "error: `stop nothing`: no endpoint named 'nothing'" in k.run("stop nothing")
    assert "console" in k.run("ls")


# -- negotiation answered on real sockets, with or without a verb reading ---------------

OUR_SERVER_ANSWERS = ["DONT ECHO", "DO SGA", "WILL NAWS", "SB NAWS 80x24", "WILL TTYPE", "SB TTYPE IS dumb"]


def windows(srv: Any) -> list[tuple[int, int] | None]:
    """The window each live session of a lab server knows."""
    return [conn.session.window for conn in srv.live_connections() if isinstance(conn.session, TelnetSession)]


def negotiation_sent(lab: Lab, endpoint: str) -> list[str]:
    """What ``endpoint`` sent that is not text."""
    found = lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
    return [e.summary for e in found if e.direction.value == "out" and e.message is not None
            and e.message.kind not in ("text", "line")]


def test_raw_send_and_expect_get_negotiation_answered(lab: Lab) -> None:
    """With no verb reading, the client still answers the server's opening,
    each question once, so the server greets with what it learnt at once."""
    srv = lab.serve("telnet")
    c = lab.connect("telnet", srv)
    assert "terminal dumb; window 80x24" in c.expect("terminal", timeout=20).text
    c.expect("ends the session", timeout=20)
    c.send(b"raw line\r\n")
    c.expect("raw line", timeout=20)
    assert negotiation_sent(lab, c.name) == OUR_SERVER_ANSWERS
    assert (lab.log.query(EventFilter(endpoint=srv.name, text="questions unanswered"))) == []


def test_verbs_reading_answer_nothing_twice(lab: Lab) -> None:
    """Verbs reading the same messages the hook answers send no second
    answer; a resize once NAWS is in force goes out once."""
    srv = lab.serve("telnet")
    c = lab.connect("telnet", srv)
    assert "terminal dumb; window 80x24" in c.read_until("ends the session.\n", timeout=20)
    assert c.negotiate(quiet=0.2)["we"] == ["TTYPE", "NAWS"]
    c.configure(width=100)
    c.send_line("after")
    assert c.read_line(timeout=20) == "after"
    assert negotiation_sent(lab, c.name) == [*OUR_SERVER_ANSWERS, "SB NAWS 100x24"]
    wait_until(lambda: windows(srv) == [(100, 24)], what="the server to learn the new window")


def test_command_language_client_negotiates(lab: Lab) -> None:
    from lab.commands import Interpreter

    srv = lab.serve("telnet", name="tsrv")
    results = Interpreter(lab).execute(
        f'connect telnet 127.0.0.1:{srv.port} as t; expect t terminal; expect t "ends the session";'
        ' send t "via the language"; expect t "via the language"', timeout=60)
    assert "terminal dumb; window 80x24" in results[1].value.text
    assert negotiation_sent(lab, "t") == OUR_SERVER_ANSWERS


def test_a_hostile_server_gets_bounded_answers_with_no_verb_reading(lab: Lab) -> None:
    """A server repeating a refused option a thousand times and asking for
    timing marks: at most 16 refusals, one answer per mark, and the client
    still reads what follows."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(20)
        c = lab.connect("telnet", f"127.0.0.1:{listener.getsockname()[1]}")
        server, _ = listener.accept()
        with server:
            server.sendall(WILL + b"\xc7" + (WILL + b"\xc7") * 999 + (DO + b"\x06") * 3 + b"end\r\n")
            c.expect("end", timeout=20)
            c.send(b"bye\r\n")
            got = b""
            server.settimeout(20)
            while not got.endswith(b"bye\r\n"):
                got += server.recv(65536)
    assert negotiation_sent(lab, c.name) == ["DONT 199"] * 16 + ["WONT TM"] * 3
    assert got == (DONT + b"\xc7") * 16 + (WONT + b"\x06") * 3 + b"bye\r\n"


# -- from the command line and the command language -----------------------------------


def test_cli_refuses_a_console_without_password_or_beyond_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    from lab.cli import main

    assert main(["serve", "telnet", "--mode", "console"]) != 0
    assert "the console needs a password" in capsys.readouterr().err
    assert main(["serve", "telnet", "--mode", "console", "--password", "x", "--host", "0.0.0.0"]) != 0
    assert "--allow-remote" in capsys.readouterr().err


def test_serve_command_takes_the_telnet_options(lab: Lab) -> None:
    from lab.commands import Interpreter

    Interpreter(lab).execute(
        "serve telnet --mode console --password pw --allow-remote --login-attempts 5 as tc")
    behaviour = lab["tc"].behaviour
    assert isinstance(behaviour, TelnetServer)
    options = behaviour.options
    assert (options.mode, options.allow_remote, options.login_attempts) == (telnet.Mode.CONSOLE, True, 5)
    with pytest.raises(LabError, match="needs a password"):
        Interpreter(lab).execute("serve telnet --mode console")


def test_client_options_are_known_before_the_server_asks(lab: Lab) -> None:
    """Terminal types and window given as client options are what the
    server learns, however fast it asks."""
    srv = lab.serve("telnet", greeting_wait="30")
    c = lab.connect("telnet", srv, options={"terminal": ["XTERM", "VT100"], "width": "120", "height": 40})
    assert "terminal XTERM; window 120x40" in c.expect("terminal", timeout=20).text
    assert "SB TTYPE IS XTERM" in negotiation_sent(lab, c.name)


def test_manual_negotiation_leaves_every_question_unanswered(lab: Lab) -> None:
    """negotiate=manual: the client answers nothing; the server greets
    after its wait saying so, and answers typed by hand are what it sees."""
    srv = lab.serve("telnet", greeting_wait="0.5")
    c = lab.connect("telnet", srv, options={"negotiate": "manual"})
    c.expect("every line you type", timeout=20)
    assert negotiation_sent(lab, c.name) == []
    c.send(b"\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x19\xff\xf0")  # WILL NAWS, SB NAWS 80x25
    wait_until(lambda: windows(srv) == [(80, 25)], what="the server to learn the hand-made window")
    assert negotiation_sent(lab, c.name) == ["WILL NAWS", "SB NAWS 80x25"]
