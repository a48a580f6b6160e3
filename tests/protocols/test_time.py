"""Tests for lab/protocols/time.py: the 32-bit value, the 2036 wrap, the
conversation, the offset option, sessions and verbs, in memory."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import ConfigError, ConnectionClosed, RemoteProtocolError
from lab.protocols import time as time_proto
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder

SETTINGS = settings(deadline=None, max_examples=200)
TimeValue = time_proto.TimeValue
UTC = dt.UTC
NOW = 1_795_525_782  # 2026-11-24, a fixed "now" for the wrap rule


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def seconds(msgs: list[Message]) -> list[int]:
    """The values of decoded TimeValue messages (anything else fails)."""
    assert all(isinstance(m, TimeValue) for m in msgs)
    return [m.seconds for m in msgs if isinstance(m, TimeValue)]


def frame(seconds: int) -> bytes:
    return struct.pack("!I", seconds)


# -- the value ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "when"),
    [  # the examples of RFC 868
        (2_208_988_800, utc(1970, 1, 1)),
        (2_398_291_200, utc(1976, 1, 1)),
        (2_524_521_600, utc(1980, 1, 1)),
        (2_629_584_000, utc(1983, 5, 1)),
    ],
)
def test_rfc_868_examples(seconds: int, when: dt.datetime) -> None:
    """The RFC's own examples decode and encode both ways."""
    value = TimeValue.decode(frame(seconds))
    assert value.seconds == seconds
    assert value.datetime == when
    assert TimeValue.at(when.timestamp()) == value


def test_value_wraps_in_2036() -> None:
    """After 2036-02-07 06:28:16 UTC the counter restarts at 0 and reads as
    the new era, not as 1900."""
    wrap = utc(2036, 2, 7, 6, 28, 16)
    assert TimeValue.at(wrap.timestamp()).seconds == 0
    assert TimeValue.decode(frame(0)).datetime == wrap
    assert TimeValue.decode(frame(0)).unix_time(now=NOW) == int(wrap.timestamp())


def test_value_near_now_is_not_shifted() -> None:
    """A value within 68 years before now stays in the first era."""
    now_value = TimeValue.at(NOW)
    assert now_value.unix_time(now=NOW) == NOW
    assert TimeValue.at(NOW - 60 * 365 * 86400).unix_time(now=NOW) == NOW - 60 * 365 * 86400


def test_value_before_1970_in_an_early_now() -> None:
    """Seen from 1950, second 0 is 1900 itself."""
    early_now = utc(1950, 1, 1).timestamp()
    assert TimeValue.decode(frame(0)).unix_time(now=early_now) == -time_proto.EPOCH_OFFSET


def test_value_describes_itself() -> None:
    """Fields: seconds and the UTC time, both volatile."""
    value = TimeValue.decode(frame(2_208_988_800))
    assert value.kind == "time"
    assert value.fields() == {"seconds": 2_208_988_800, "utc": "1970-01-01T00:00:00+00:00"}
    assert value.volatile == {"seconds", "utc"}
    assert value.summary() == "time 2208988800 = 1970-01-01 00:00:00 UTC"


# -- the conversation ------------------------------------------------------------------


def client(transport: Transport = Transport.TCP) -> Conversation:
    return time_proto.SPEC.conversation(Role.CLIENT, transport)


def test_stream_decoder_reassembles_split_frames() -> None:
    """TCP may split a frame or join two: the decoder buffers."""
    conv = client()
    data = frame(1) + frame(2)
    assert conv.feed(data[:3]) == []
    assert conv.buffered() == 3
    assert seconds(conv.feed(data[3:])) == [1, 2]
    assert conv.feed(b"") == []


def test_stream_decoder_refuses_a_partial_frame_at_eof() -> None:
    """Bytes left over when the stream ends are a protocol error, and the
    decoder stays spent."""
    conv = client()
    assert seconds(conv.feed(frame(7) + b"\x00\x01")) == [7]
    with pytest.raises(RemoteProtocolError, match="2 of the 4 bytes"):
        conv.feed(b"")
    with pytest.raises(RemoteProtocolError):
        conv.feed(frame(1))


def test_stream_decoder_refuses_data_after_eof() -> None:
    """Nothing may follow the end of the stream."""
    conv = client()
    conv.feed(b"")
    with pytest.raises(RemoteProtocolError, match="after end of stream"):
        conv.feed(frame(1))


def test_datagram_decoder_wants_exactly_four_bytes() -> None:
    """A UDP answer is one 4-byte value; anything else is an error."""
    conv = client(Transport.UDP)
    assert seconds(conv.feed(frame(9))) == [9]
    with pytest.raises(RemoteProtocolError, match="holds 4 bytes, this one 5"):
        conv.feed(frame(9) + b"x")
    with pytest.raises(RemoteProtocolError):
        conv.feed(frame(9))


@pytest.mark.parametrize("role", [*Role, None])
def test_client_bytes_are_anything(role: Role | None) -> None:
    """What a client sends is never an error: the server ignores it."""
    assert isinstance(time_proto.SPEC.conversation(role, Transport.TCP)._decoders[Role.CLIENT], DataDecoder)
    assert isinstance(time_proto.SPEC.conversation(role, Transport.UDP)._decoders[Role.CLIENT], DatagramDecoder)


@SETTINGS
@given(data=st.binary(max_size=64), cuts=st.lists(st.integers(0, 100), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: 4-byte frames that add up exactly, and an
    error exactly when the stream ends inside a frame; any client bytes."""
    msgs = laws.stream(time_proto.SPEC.conversation, Role.SERVER, data, cuts)
    assert len(msgs) == len(data) // 4
    laws.stream(time_proto.SPEC.conversation, Role.SERVER, data, cuts, eof=False)
    laws.stream(time_proto.SPEC.conversation, Role.CLIENT, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=8), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams: one value each until one is not 4 bytes long; the
    client may send anything."""
    msgs = laws.datagrams(time_proto.SPEC.conversation, Role.SERVER, datagrams)
    good = 0
    for datagram in datagrams:
        if len(datagram) != 4:
            break
        good += 1
    assert len(msgs) == good
    assert len(laws.datagrams(time_proto.SPEC.conversation, Role.CLIENT, datagrams)) == len(datagrams)


@SETTINGS
@given(unix=st.integers(0, 2**33), cuts=st.lists(st.integers(0, 8), max_size=4))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              unix: int, cuts: list[int]) -> None:
    """A recorded TCP exchange replays to an observer, split anywhere."""

    async def main() -> Loopback:
        lb = Loopback(time_proto.SPEC, prepare=lambda server: setattr(server, "wall_clock", lambda: unix))
        await time_proto.TimeClient(lb).get()
        return lb

    seen = laws.observer_replays(time_proto.SPEC.conversation, arun(main()), cuts)
    assert seconds(seen[Role.CLIENT]) == [TimeValue.at(unix).seconds]


# -- options and server ----------------------------------------------------------------------


def server_at(unix: float, **options: str) -> time_proto.TimeServer:
    server = time_proto.SPEC.server(time_proto.SPEC.resolve_options(options))
    assert isinstance(server, time_proto.TimeServer)
    server.wall_clock = lambda: unix
    return server


def test_offset_option_parses_whole_seconds() -> None:
    """--offset takes an integer, negative allowed; default 0."""
    assert time_proto.SPEC.resolve_options({}) == time_proto.TimeOptions(offset=0)
    assert time_proto.SPEC.resolve_options({"offset": "-3600"}) == time_proto.TimeOptions(offset=-3600)
    assert time_proto.SPEC.resolve_options({"offset": 86400}) == time_proto.TimeOptions(offset=86400)


@pytest.mark.parametrize(("given", "why"), [("1.5", "whole seconds"), ("soon", "whole seconds"),
                                            (str(2**32 + 1), "the counter wraps")])
def test_offset_option_refuses_non_integers(given: str, why: str) -> None:
    """A bad --offset is a ConfigError naming the option, with a hint."""
    with pytest.raises(ConfigError, match=f"time: --offset wants .*{why}") as info:
        time_proto.SPEC.resolve_options({"offset": given})
    assert info.value.hint == "e.g. --offset -3600"


def test_tcp_server_sends_four_bytes_and_closes(make_peer: type[FakePeer]) -> None:
    """On connect: the 4-byte time, then close."""
    peer = make_peer(spec=time_proto.SPEC)
    open_session(server_at(0), peer)
    assert peer.data == frame(2_208_988_800)
    assert peer.sent == [TimeValue.at(0)]
    assert peer.closed


def test_server_applies_the_offset(peer: FakePeer) -> None:
    """--offset skews the clock served."""
    open_session(server_at(0, offset="3600"), peer)
    assert peer.data == frame(2_208_988_800 + 3600)


def test_udp_server_answers_each_datagram(make_peer: type[FakePeer]) -> None:
    """Every datagram gets the time back; nothing is closed."""
    peer = make_peer(Transport.UDP, spec=time_proto.SPEC)
    session = open_session(server_at(10), peer)
    session.message_received(Data(raw=b""))
    session.message_received(Data(raw=b"junk"))
    assert peer.writes == [frame(2_208_988_810)] * 2
    assert not peer.closed


# -- verbs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
def test_verb_get(loopback: type[Loopback], arun: Runner, transport: Transport) -> None:
    """get() returns the server's time as an aware UTC datetime."""

    def prepare(server: time_proto.TimeServer) -> None:
        server.wall_clock = lambda: NOW

    async def main() -> dt.datetime:
        lb = loopback(time_proto.SPEC, transport, prepare=prepare)
        return await time_proto.TimeClient(lb).get()

    assert arun(main()) == dt.datetime.fromtimestamp(NOW, UTC)


def test_verb_get_sees_a_broken_answer(loopback: type[Loopback], arun: Runner) -> None:
    """A malformed answer aborts the client: get() reports the closed
    connection."""

    def prepare(server: Any) -> None:
        server.answer = lambda: Data(raw=b"abc")  # 3 bytes where 4 belong

    async def main() -> None:
        lb = loopback(time_proto.SPEC, Transport.UDP, prepare=prepare)
        try:
            await time_proto.TimeClient(lb).get()
        finally:
            assert isinstance(lb.client_error, RemoteProtocolError)

    with pytest.raises(ConnectionClosed, match="without sending the time"):
        arun(main())
