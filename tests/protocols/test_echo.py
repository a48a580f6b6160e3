"""Tests for lab/protocols/echo.py: codecs, behaviour and verbs, in memory."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab.errors import LabTimeout
from lab.protocols import echo
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataCodec, DatagramCodec

SETTINGS = settings(deadline=None, max_examples=200)


@pytest.mark.parametrize("role", list(Role))
def test_codec_per_transport(role: Role) -> None:
    """Streams are chunks, UDP is datagrams, for both roles."""
    assert isinstance(echo.SPEC.codec(role, Transport.TCP), DataCodec)
    assert isinstance(echo.SPEC.codec(role, Transport.UDP), DatagramCodec)


def test_spec_basics() -> None:
    """Port 7, both transports."""
    assert echo.SPEC.default_port == 7
    assert set(echo.SPEC.transports) == {Transport.TCP, Transport.UDP}


def test_server_echoes_each_message(peer: FakePeer) -> None:
    """Every message goes straight back, byte for byte."""
    server = echo.SPEC.server({})
    server.message_received(peer, Data(raw=b"hello\r\n"))
    server.message_received(peer, Data(raw=b"\x00\xff"))
    assert peer.writes == [b"hello\r\n", b"\x00\xff"]


def test_verb_echo_over_tcp(loopback: type[Loopback], arun: Runner) -> None:
    """echo() sends and returns what came back."""

    async def main() -> bytes:
        lb = loopback(echo.SPEC)
        return await echo.EchoClient(lb).echo("ping")

    assert arun(main()) == b"ping"


def test_verb_echo_over_udp(loopback: type[Loopback], arun: Runner) -> None:
    """Over UDP one datagram comes back."""

    async def main() -> bytes:
        lb = loopback(echo.SPEC, Transport.UDP)
        return await echo.EchoClient(lb).echo(b"\x01\x02")

    assert arun(main()) == b"\x01\x02"


def test_verb_echo_times_out_with_a_count(loopback: type[Loopback], arun: Runner) -> None:
    """A silent server makes echo() say how much came back."""

    async def main() -> None:
        lb = loopback(echo.SPEC)
        lb.behaviour.message_received = lambda conn, msg: None
        await echo.EchoClient(lb).echo(b"abc", timeout=0.01)

    with pytest.raises(LabTimeout, match="0 of 3 bytes"):
        arun(main())


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_stream_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes, split anywhere, re-encode exactly, for both roles."""
    for role in Role:
        codec_laws.stream(partial(echo.SPEC.codec, role, Transport.TCP), data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=80), max_size=8))
def test_datagram_codec_laws(codec_laws: CodecLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one and re-encode exactly."""
    for role in Role:
        codec_laws.datagrams(partial(echo.SPEC.codec, role, Transport.UDP), datagrams)
