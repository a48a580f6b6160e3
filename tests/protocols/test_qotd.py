"""Tests for lab/protocols/qotd.py: quotes, the 512-byte limit, rotation,
the conversation and verbs, in memory."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import ConfigError, RemoteProtocolError
from lab.protocols import qotd
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder, Line, LineDecoder
from lab.protocols._session import AnswerSession

SETTINGS = settings(deadline=None, max_examples=200)


def server_with(*quotes: str) -> qotd.QotdServer:
    options = qotd.SPEC.resolve_options({"quote": list(quotes)} if quotes else {})
    server = qotd.SPEC.server(options)
    assert isinstance(server, qotd.QotdServer)
    return server


# -- the message -------------------------------------------------------------------


def test_quote_of_uses_crlf_and_ends_with_one() -> None:
    """Any line breaks become CRLF; the quote ends with exactly one."""
    msg = qotd.Quote.of("one\ntwo\r\nthree\n\n")
    assert msg.raw == b"one\r\ntwo\r\nthree\r\n"
    assert msg.quote == "one\ntwo\nthree"


def test_quote_decode_is_lenient() -> None:
    """Whatever a server sends is a quote, bad UTF-8 included."""
    msg = qotd.Quote.decode(b"caf\xe9\r\n")
    assert msg.quote == "caf\ufffd"
    assert msg.raw == b"caf\xe9\r\n"


def test_quote_describes_itself() -> None:
    """kind quote, field quote, a summary counting lines."""
    msg = qotd.Quote.of("a\nb")
    assert msg.kind == "quote"
    assert msg.fields() == {"quote": "a\nb"}
    assert msg.summary().startswith("quote (2 lines) ")


# -- options ---------------------------------------------------------------------------


def test_default_quotes_fit_the_rfc() -> None:
    """Every built-in quote passes the same check as --quote."""
    for quote in qotd.DEFAULT_QUOTES:
        assert qotd.parse_quote(quote) == quote


def test_quote_option_accepts_511_bytes_on_the_wire() -> None:
    """509 characters plus CRLF... the limit counts the wire bytes."""
    longest = "x" * (qotd.MAX_QUOTE - 2)
    assert qotd.SPEC.resolve_options({"quote": longest}) == qotd.QotdOptions(quote=(longest,))


def test_quote_option_refuses_512_bytes() -> None:
    """RFC 865: a quote is less than 512 characters."""
    with pytest.raises(ConfigError, match="RFC 865 allows 511") as info:
        qotd.SPEC.resolve_options({"quote": "x" * (qotd.MAX_QUOTE - 1)})
    assert info.value.hint


def test_quote_option_counts_crlf_line_breaks() -> None:
    """Each line break costs two bytes on the wire."""
    with pytest.raises(ValueError, match="680 bytes on the wire"):
        qotd.parse_quote("ab\n" * 170)  # 170 * 4 bytes once sent


@pytest.mark.parametrize("bad", ["tab\there", "bell\a", "caf\u00e9"])
def test_quote_option_refuses_non_ascii_and_controls(bad: str) -> None:
    """Only printing ASCII, spaces and line breaks are allowed."""
    with pytest.raises(ConfigError, match="may not contain"):
        qotd.SPEC.resolve_options({"quote": [bad]})


def test_quote_option_repeats() -> None:
    """--quote may be given several times."""
    assert qotd.SPEC.resolve_options({"quote": ["a", "b"]}) == qotd.QotdOptions(quote=("a", "b"))
    assert qotd.SPEC.resolve_options({}) == qotd.QotdOptions(quote=())


# -- server --------------------------------------------------------------------------------


def test_tcp_server_sends_one_quote_and_closes(make_peer: type[FakePeer]) -> None:
    """On connect: one quote, CRLF-terminated, then close."""
    peer = make_peer(spec=qotd.SPEC)
    open_session(server_with("Hello,\nworld."), peer)
    assert peer.data == b"Hello,\r\nworld.\r\n"
    assert peer.sent == [qotd.Quote.of("Hello,\nworld.")]
    assert peer.closed


def test_server_rotates_quotes(make_peer: type[FakePeer]) -> None:
    """Quotes come in turn across connections, then start over."""
    server = server_with("a", "b")
    served = []
    for n in range(3):
        peer = make_peer(conn_id=f"c{n}")
        open_session(server, peer)
        served.append(peer.data)
    assert served == [b"a\r\n", b"b\r\n", b"a\r\n"]


def test_server_defaults_to_built_in_quotes(peer: FakePeer) -> None:
    """Without --quote the first default comes first."""
    open_session(server_with(), peer)
    assert peer.data == qotd.Quote.of(qotd.DEFAULT_QUOTES[0]).raw
    assert b"Postel" in peer.data


def test_udp_server_answers_each_datagram(make_peer: type[FakePeer]) -> None:
    """One quote per datagram; nothing is closed."""
    peer = make_peer(Transport.UDP, spec=qotd.SPEC)
    session = open_session(server_with("a", "b"), peer)
    assert isinstance(session, AnswerSession)
    session.message_received(Data(raw=b""))
    session.message_received(Data(raw=b"more"))
    assert peer.writes == [b"a\r\n", b"b\r\n"]
    assert not peer.closed


# -- the conversation ------------------------------------------------------------------------


def test_decoders() -> None:
    """Server: lines (TCP) or Quote datagrams (UDP); client: raw input."""
    for role in (*Role, None):
        tcp = qotd.SPEC.conversation(role, Transport.TCP)._decoders
        udp = qotd.SPEC.conversation(role, Transport.UDP)._decoders
        assert type(tcp[Role.SERVER]) is LineDecoder
        assert isinstance(tcp[Role.CLIENT], DataDecoder)
        assert isinstance(udp[Role.CLIENT], DatagramDecoder)
    client_udp = qotd.SPEC.conversation(Role.CLIENT, Transport.UDP)
    assert client_udp.feed(b"hi\r\n") == [qotd.Quote.decode(b"hi\r\n")]


def test_client_splits_a_quote_into_lines() -> None:
    """Over TCP the quote arrives as its lines."""
    conv = qotd.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert conv.feed(b"a\r\nb") + conv.feed(b"") == [Line(raw=b"a\r\n"), Line(raw=b"b")]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side split anywhere: only protocol errors, and
    messages that add up exactly, received, sent or observed."""
    laws.stream(qotd.SPEC.conversation, Role.SERVER, data, cuts)
    laws.stream(qotd.SPEC.conversation, Role.CLIENT, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=600), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams from either side decode one-to-one, each its own bytes."""
    for sender in Role:
        assert len(laws.datagrams(qotd.SPEC.conversation, sender, datagrams)) == len(datagrams)


@SETTINGS
@given(quote=st.text(st.sampled_from("ab \n\r~"), max_size=120))
def test_quote_round_trips_through_both_transports(quote: str) -> None:
    """A quote the server accepts reaches a client intact, by TCP or UDP."""
    sent = qotd.Quote.of(qotd.parse_quote(quote))
    tcp = qotd.SPEC.conversation(Role.CLIENT, Transport.TCP)
    lines = tcp.feed(sent.raw) + tcp.feed(b"")
    assert qotd.Quote.decode(b"".join(m.raw for m in lines)).quote == sent.quote
    udp = qotd.SPEC.conversation(Role.CLIENT, Transport.UDP)
    assert udp.feed(sent.raw)[0].fields() == {"quote": sent.quote}


@SETTINGS
@given(quotes=st.lists(st.text(st.sampled_from("ab \n~"), min_size=1, max_size=80), min_size=1, max_size=3),
       cuts=st.lists(st.integers(0, 100), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              quotes: list[str], cuts: list[int]) -> None:
    """A recorded TCP exchange, a quote of several lines, replays to an
    observer split anywhere."""

    async def main() -> tuple[Loopback, str]:
        lb = Loopback(qotd.SPEC, options={"quote": quotes})
        return lb, await qotd.QotdClient(lb).get()

    lb, got = arun(main())
    seen = laws.observer_replays(qotd.SPEC.conversation, lb, cuts)
    assert qotd.Quote.decode(b"".join(m.raw for m in seen[Role.CLIENT])).quote == got
    assert got == qotd.Quote.of(quotes[0]).quote


# -- verbs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
def test_verb_get(loopback: type[Loopback], arun: Runner, transport: Transport) -> None:
    """get() returns the whole quote with \\n line breaks, TCP or UDP."""

    async def main() -> str:
        lb = loopback(qotd.SPEC, transport, {"quote": ["First line,\nsecond line."]})
        return await qotd.QotdClient(lb).get()

    assert arun(main()) == "First line,\nsecond line."


def test_verb_get_refuses_an_endless_sender(loopback: type[Loopback], arun: Runner) -> None:
    """A server that never stops (chargen on the wrong port) cannot make
    get() read forever."""

    class Flood(AnswerSession):
        def connection_made(self) -> None:
            for _ in range(2000):
                self.conn.send_raw(b"x" * 70 + b"\r\n")

    def prepare(server: Any) -> None:
        server.session_type = Flood

    async def main() -> None:
        lb = loopback(qotd.SPEC, prepare=prepare)
        await qotd.QotdClient(lb).get()

    with pytest.raises(RemoteProtocolError, match="longer than"):
        arun(main())
