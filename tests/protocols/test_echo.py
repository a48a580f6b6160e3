"""Tests for lab/protocols/echo.py: conversation, sessions and verbs, in memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import LabTimeout
from lab.protocols import echo
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder

SETTINGS = settings(deadline=None, max_examples=200)


@pytest.mark.parametrize("role", [*Role, None])
def test_decoders_per_transport(role: Role | None) -> None:
    """Streams are chunks, UDP is datagrams, for both sides and an observer."""
    for sender in Role:
        assert isinstance(echo.SPEC.conversation(role, Transport.TCP)._decoders[sender], DataDecoder)
        assert isinstance(echo.SPEC.conversation(role, Transport.UDP)._decoders[sender], DatagramDecoder)


def test_spec_basics() -> None:
    """Port 7, both transports."""
    assert echo.SPEC.default_port == 7
    assert set(echo.SPEC.transports) == {Transport.TCP, Transport.UDP}


def test_session_echoes_each_message(peer: FakePeer) -> None:
    """Every message goes straight back, byte for byte."""
    session = open_session(echo.SPEC.server(echo.SPEC.resolve_options({})), peer)
    session.message_received(Data(raw=b"hello\r\n"))
    session.message_received(Data(raw=b"\x00\xff"))
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
        lb.session.message_received = lambda msg: None
        await echo.EchoClient(lb).echo(b"abc", timeout=0.01)

    with pytest.raises(LabTimeout, match="0 of 3 bytes"):
        arun(main())


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side, split anywhere, add up exactly, received,
    sent or observed."""
    for sender in Role:
        laws.stream(echo.SPEC.conversation, sender, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=80), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one, each its own raw bytes."""
    for sender in Role:
        laws.datagrams(echo.SPEC.conversation, sender, datagrams)


@SETTINGS
@given(payloads=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=5),
       cuts=st.lists(st.integers(0, 100), max_size=5))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              payloads: list[bytes], cuts: list[int]) -> None:
    """A recorded echo exchange replays to an observer, split anywhere."""

    async def main() -> Loopback:
        lb = Loopback(echo.SPEC)
        for payload in payloads:
            await echo.EchoClient(lb).echo(payload)
        return lb

    lb = arun(main())
    conv = echo.SPEC.conversation(None, Transport.TCP)
    seen = {Role.CLIENT: b"", Role.SERVER: b""}
    for sender, chunk in lb.transcript:
        for side, msg in conv.observe(chunk, sender):
            seen[side] += msg.raw
    assert seen[Role.CLIENT] == seen[Role.SERVER] == b"".join(payloads)
