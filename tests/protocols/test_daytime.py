"""Tests for lab/protocols/daytime.py: the date line, options, codecs and
verbs, in memory."""

from __future__ import annotations

import time
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab.errors import ConfigError, ConnectionClosed
from lab.protocols import daytime
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataCodec, DatagramCodec

SETTINGS = settings(deadline=None, max_examples=200)
WHEN = 1_795_525_782.0  # a fixed instant; lines are checked against local-time ctime


def fixed_server(**options: str) -> daytime.DaytimeServer:
    server = daytime.SPEC.server(daytime.SPEC.resolve_options(options))
    assert isinstance(server, daytime.DaytimeServer)
    server.clock = lambda: WHEN
    return server


def set_clock(server: daytime.DaytimeServer) -> None:
    server.clock = lambda: WHEN


# -- the message ---------------------------------------------------------------


def test_daytime_at_uses_ctime_by_default() -> None:
    """The default line is ctime of local time, CRLF terminated, like inetd."""
    msg = daytime.Daytime.at(WHEN)
    assert msg.text == time.ctime(WHEN)
    assert msg.raw == time.ctime(WHEN).encode() + b"\r\n"
    assert len(msg.text) == 24


def test_daytime_at_with_format() -> None:
    """A strftime format replaces ctime."""
    msg = daytime.Daytime.at(WHEN, "%Y-%m-%d")
    assert msg.text == time.strftime("%Y-%m-%d", time.localtime(WHEN))


def test_daytime_at_keeps_the_line_printable() -> None:
    """Non-ASCII output (a locale's month name) becomes '?': RFC 867 text
    is printing ASCII."""
    msg = daytime.Daytime.at(WHEN, "été %Y")
    assert msg.text.startswith("?t? ")
    msg.raw.decode("ascii")


def test_daytime_fields_and_volatility() -> None:
    """text is the decoded field, volatile because it changes every run."""
    msg = daytime.Daytime.decode(b"Tue Nov 24 13:09:42 2026\r\n")
    assert msg.kind == "daytime"
    assert msg.fields() == {"text": "Tue Nov 24 13:09:42 2026"}
    assert msg.volatile == frozenset({"text"})
    assert msg.summary() == "daytime 'Tue Nov 24 13:09:42 2026'"


def test_daytime_text_is_required() -> None:
    """The text field has no default (it must not inherit Message.text)."""
    with pytest.raises(TypeError):
        daytime.Daytime(raw=b"x")  # type: ignore[call-arg]


# -- options -----------------------------------------------------------------------


def test_format_option_is_checked() -> None:
    """A format with a line break is refused with a hint."""
    with pytest.raises(ConfigError) as info:
        daytime.SPEC.resolve_options({"format": "%H\n%M"})
    assert info.value.hint


def test_format_option_default_is_ctime() -> None:
    """No --format means ctime."""
    assert daytime.SPEC.resolve_options({}) == {"format": None}


def test_unknown_option_is_refused() -> None:
    """Options other than --format are refused."""
    with pytest.raises(ConfigError, match="unknown option"):
        daytime.SPEC.resolve_options({"colour": "x"})


# -- server --------------------------------------------------------------------------


def test_tcp_server_sends_the_date_and_closes(peer: FakePeer) -> None:
    """On connect: one date line, then close."""
    server = fixed_server()
    server.connection_made(peer)
    assert peer.data == time.ctime(WHEN).encode() + b"\r\n"
    assert peer.closed


def test_tcp_server_with_format(peer: FakePeer) -> None:
    """--format shapes the line."""
    server = fixed_server(format="%H:%M:%S")
    server.connection_made(peer)
    assert peer.data == time.strftime("%H:%M:%S", time.localtime(WHEN)).encode() + b"\r\n"


def test_udp_server_answers_every_datagram(make_peer: type[FakePeer]) -> None:
    """Each datagram, empty or not, gets one date datagram; nothing is
    closed."""
    peer = make_peer(Transport.UDP)
    server = fixed_server()
    server.connection_made(peer)
    server.message_received(peer, Data(raw=b""))
    server.message_received(peer, Data(raw=b"what time is it?"))
    assert peer.writes == [time.ctime(WHEN).encode() + b"\r\n"] * 2
    assert not peer.closed


def test_tcp_server_ignores_client_data(peer: FakePeer) -> None:
    """Data from a TCP client makes no second answer."""
    server = fixed_server()
    server.message_received(peer, Data(raw=b"hello\r\n"))
    assert peer.writes == []


# -- codecs ---------------------------------------------------------------------------


def test_codecs() -> None:
    """Server codecs take raw input; client codecs make Daytime messages."""
    assert isinstance(daytime.SPEC.codec(Role.SERVER, Transport.TCP), DataCodec)
    assert isinstance(daytime.SPEC.codec(Role.SERVER, Transport.UDP), DatagramCodec)
    tcp = daytime.SPEC.codec(Role.CLIENT, Transport.TCP)
    assert tcp.feed(b"Mon Jan  1 00:00:00 2024\r") == []
    assert tcp.feed(b"\n") == [daytime.Daytime.decode(b"Mon Jan  1 00:00:00 2024\r\n")]
    udp = daytime.SPEC.codec(Role.CLIENT, Transport.UDP)
    assert [m.text for m in udp.feed(b"now\r\n")] == ["now"]


def test_client_codec_takes_an_unterminated_line_at_eof() -> None:
    """A server that closes without CRLF still gave a date."""
    codec = daytime.SPEC.codec(Role.CLIENT, Transport.TCP)
    assert [m.text for m in codec.feed(b"12:00") + codec.feed(b"")] == ["12:00"]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: only protocol errors, exact re-encoding."""
    codec_laws.stream(lambda: daytime.SPEC.codec(Role.CLIENT, Transport.TCP), data, cuts)
    codec_laws.stream(
        lambda: daytime.SPEC.codec(Role.SERVER, Transport.TCP), data, cuts, framed=False
    )


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=100), max_size=8))
def test_datagram_codec_laws(codec_laws: CodecLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one and re-encode exactly."""
    for role in Role:
        codec_laws.datagrams(partial(daytime.SPEC.codec, role, Transport.UDP), datagrams)


# -- verbs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
def test_verb_get(loopback: type[Loopback], arun: Runner, transport: Transport) -> None:
    """get() returns the date line over TCP and over UDP."""

    async def main() -> str:
        lb = loopback(daytime.SPEC, transport, prepare=set_clock)
        return await daytime.DaytimeClient(lb).get()

    assert arun(main()) == time.ctime(WHEN)


def test_verb_get_after_the_server_closed(loopback: type[Loopback], arun: Runner) -> None:
    """The TCP server spoke and hung up before get(): the line is still there."""

    async def main() -> tuple[str, bool]:
        lb = loopback(daytime.SPEC)
        return await daytime.DaytimeClient(lb).get(), lb.closed

    text, closed = arun(main())
    assert closed
    assert len(text) == 24


def test_verb_get_when_nothing_was_sent(loopback: type[Loopback], arun: Runner) -> None:
    """A server that closes in silence gives a clear ConnectionClosed."""

    async def main() -> None:
        lb = loopback(daytime.SPEC)
        lb.inbox.clear()
        await daytime.DaytimeClient(lb).get()

    with pytest.raises(ConnectionClosed, match="without sending the date"):
        arun(main())
