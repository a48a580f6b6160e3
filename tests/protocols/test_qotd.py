"""Tests for lab/protocols/qotd.py: quotes, the 512-byte limit, rotation,
codecs and verbs, in memory."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab.errors import ConfigError, RemoteProtocolError
from lab.protocols import qotd
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataCodec, DatagramCodec, Line, LineCodec

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
    assert qotd.SPEC.resolve_options({"quote": longest}) == {"quote": [longest]}


def test_quote_option_refuses_512_bytes() -> None:
    """RFC 865: a quote is less than 512 characters."""
    with pytest.raises(ConfigError, match="RFC 865 allows 511") as info:
        qotd.SPEC.resolve_options({"quote": "x" * (qotd.MAX_QUOTE - 1)})
    assert info.value.hint


def test_quote_option_counts_crlf_line_breaks() -> None:
    """Each line break costs two bytes on the wire."""
    with pytest.raises(ConfigError):
        qotd.parse_quote("ab\n" * 170)  # 170 * 4 bytes once sent


@pytest.mark.parametrize("bad", ["tab\there", "bell\a", "caf\u00e9"])
def test_quote_option_refuses_non_ascii_and_controls(bad: str) -> None:
    """Only printing ASCII, spaces and line breaks are allowed."""
    with pytest.raises(ConfigError, match="may not contain"):
        qotd.SPEC.resolve_options({"quote": [bad]})


def test_quote_option_repeats() -> None:
    """--quote may be given several times."""
    assert qotd.SPEC.resolve_options({"quote": ["a", "b"]}) == {"quote": ["a", "b"]}
    assert qotd.SPEC.resolve_options({}) == {"quote": []}


# -- server --------------------------------------------------------------------------------


def test_tcp_server_sends_one_quote_and_closes(peer: FakePeer) -> None:
    """On connect: one quote, CRLF-terminated, then close."""
    server_with("Hello,\nworld.").connection_made(peer)
    assert peer.data == b"Hello,\r\nworld.\r\n"
    assert peer.closed


def test_server_rotates_quotes(make_peer: type[FakePeer]) -> None:
    """Quotes come in turn, then start over."""
    server = server_with("a", "b")
    served = []
    for n in range(3):
        peer = make_peer(conn_id=f"c{n}")
        server.connection_made(peer)
        served.append(peer.data)
    assert served == [b"a\r\n", b"b\r\n", b"a\r\n"]


def test_server_defaults_to_built_in_quotes(peer: FakePeer) -> None:
    """Without --quote the first default comes first."""
    server_with().connection_made(peer)
    assert peer.data == qotd.Quote.of(qotd.DEFAULT_QUOTES[0]).raw
    assert b"Postel" in peer.data


def test_udp_server_answers_each_datagram(make_peer: type[FakePeer]) -> None:
    """One quote per datagram; nothing is closed."""
    peer = make_peer(Transport.UDP)
    server = server_with("a", "b")
    server.connection_made(peer)
    server.message_received(peer, Data(raw=b""))
    server.message_received(peer, Data(raw=b"more"))
    assert peer.writes == [b"a\r\n", b"b\r\n"]
    assert not peer.closed


# -- codecs ---------------------------------------------------------------------------------


def test_codecs() -> None:
    """Client: lines (TCP) or Quote datagrams (UDP); server: raw input."""
    assert type(qotd.SPEC.codec(Role.CLIENT, Transport.TCP)) is LineCodec
    assert qotd.SPEC.codec(Role.CLIENT, Transport.UDP).feed(b"hi\r\n") == [qotd.Quote.decode(b"hi\r\n")]
    assert isinstance(qotd.SPEC.codec(Role.SERVER, Transport.TCP), DataCodec)
    assert isinstance(qotd.SPEC.codec(Role.SERVER, Transport.UDP), DatagramCodec)


def test_client_codec_splits_a_quote_into_lines() -> None:
    """Over TCP the quote arrives as its lines."""
    codec = qotd.SPEC.codec(Role.CLIENT, Transport.TCP)
    assert codec.feed(b"a\r\nb") + codec.feed(b"") == [Line(raw=b"a\r\n"), Line(raw=b"b")]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: only protocol errors, exact re-encoding."""
    codec_laws.stream(lambda: qotd.SPEC.codec(Role.CLIENT, Transport.TCP), data, cuts)
    codec_laws.stream(lambda: qotd.SPEC.codec(Role.SERVER, Transport.TCP), data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=600), max_size=8))
def test_datagram_codec_laws(codec_laws: CodecLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one and re-encode exactly."""
    for role in Role:
        codec_laws.datagrams(partial(qotd.SPEC.codec, role, Transport.UDP), datagrams)


@SETTINGS
@given(quote=st.text(st.sampled_from("ab \n\r~"), max_size=120))
def test_quote_round_trips_through_both_codecs(quote: str) -> None:
    """A quote the server accepts reaches a client intact, by TCP or UDP."""
    sent = qotd.Quote.of(qotd.parse_quote(quote))
    tcp = qotd.SPEC.codec(Role.CLIENT, Transport.TCP)
    lines = tcp.feed(sent.raw) + tcp.feed(b"")
    assert qotd.Quote.decode(b"".join(m.raw for m in lines)).quote == sent.quote
    udp = qotd.SPEC.codec(Role.CLIENT, Transport.UDP)
    assert udp.feed(sent.raw)[0].fields() == {"quote": sent.quote}


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

    def prepare(server: qotd.QotdServer) -> None:
        def flood(conn: object) -> None:
            for _ in range(2000):
                conn.send_raw(b"x" * 70 + b"\r\n")  # type: ignore[attr-defined]

        server.connection_made = flood  # type: ignore[method-assign]

    async def main() -> None:
        lb = loopback(qotd.SPEC, prepare=prepare)
        await qotd.QotdClient(lb).get()

    with pytest.raises(RemoteProtocolError, match="longer than"):
        arun(main())
