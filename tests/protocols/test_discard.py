"""Tests for lab/protocols/discard.py: codecs, behaviour and verbs, in memory."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab.protocols import discard, get
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataCodec, DatagramCodec

SETTINGS = settings(deadline=None, max_examples=200)


def test_spec_is_registered() -> None:
    """The registry finds discard on port 9 over TCP and UDP."""
    spec = get("discard")
    assert spec is discard.SPEC
    assert spec.default_port == 9
    assert set(spec.transports) == {Transport.TCP, Transport.UDP}
    assert spec.resolve_options({}) == {}


@pytest.mark.parametrize("role", list(Role))
def test_codec_per_transport(role: Role) -> None:
    """Chunks over TCP, datagrams over UDP."""
    assert isinstance(discard.SPEC.codec(role, Transport.TCP), DataCodec)
    assert isinstance(discard.SPEC.codec(role, Transport.UDP), DatagramCodec)


@pytest.mark.parametrize("transport", list(Transport))
def test_server_sends_nothing_and_stays_open(make_peer: type[FakePeer], transport: Transport) -> None:
    """Whatever arrives, nothing goes back and the connection stays open."""
    peer = make_peer(transport)
    server = discard.SPEC.server({})
    server.connection_made(peer)
    for raw in (b"hello\r\n", b"", b"\x00\xff" * 100):
        server.message_received(peer, Data(raw=raw))
    assert peer.writes == []
    assert not peer.closed


def test_server_counts_discarded_bytes(peer: FakePeer) -> None:
    """The server keeps a tally of what it threw away."""
    server = discard.DiscardServer({})
    server.message_received(peer, Data(raw=b"abc"))
    server.message_received(peer, Data(raw=b"de"))
    assert server.discarded == 5


def test_server_closes_on_eof(peer: FakePeer) -> None:
    """When the client half-closes, the server closes too."""
    discard.SPEC.server({}).eof_received(peer)
    assert peer.closed


@pytest.mark.parametrize("transport", list(Transport))
def test_verb_send_returns_byte_count(loopback: type[Loopback], arun: Runner, transport: Transport) -> None:
    """send() reports how many bytes went out; the server got them all and
    answered nothing."""

    async def main() -> tuple[int, int, int, bool]:
        lb = loopback(discard.SPEC, transport)
        sent = await discard.DiscardClient(lb).discard("héllo")
        return sent, lb.behaviour.discarded, len(lb.inbox), lb.peer.closed

    assert arun(main()) == (6, 6, 0, False)


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_stream_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes, split anywhere, re-encode exactly, for both roles."""
    for role in Role:
        codec_laws.stream(partial(discard.SPEC.codec, role, Transport.TCP), data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=80), max_size=8))
def test_datagram_codec_laws(codec_laws: CodecLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one and re-encode exactly."""
    for role in Role:
        msgs = codec_laws.datagrams(partial(discard.SPEC.codec, role, Transport.UDP), datagrams)
        assert len(msgs) == len(datagrams)
