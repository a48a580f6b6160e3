"""Tests for lab/protocols/discard.py: conversation, sessions and verbs, in memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.protocols import discard, get
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder
from lab.protocols._options import NoOptions

SETTINGS = settings(deadline=None, max_examples=200)


def test_spec_is_registered() -> None:
    """The registry finds discard on port 9 over TCP and UDP, without options."""
    spec = get("discard")
    assert spec is discard.SPEC
    assert spec.default_port == 9
    assert set(spec.transports) == {Transport.TCP, Transport.UDP}
    assert spec.resolve_options({}) == NoOptions()


@pytest.mark.parametrize("role", [*Role, None])
def test_decoders_per_transport(role: Role | None) -> None:
    """Chunks over TCP, datagrams over UDP, from either side."""
    for sender in Role:
        assert isinstance(discard.SPEC.conversation(role, Transport.TCP)._decoders[sender], DataDecoder)
        assert isinstance(discard.SPEC.conversation(role, Transport.UDP)._decoders[sender], DatagramDecoder)


@pytest.mark.parametrize("transport", list(Transport))
def test_server_sends_nothing_and_stays_open(make_peer: type[FakePeer], transport: Transport) -> None:
    """Whatever arrives, nothing goes back and the connection stays open."""
    peer = make_peer(transport, spec=discard.SPEC)
    session = open_session(discard.SPEC.server(discard.SPEC.resolve_options({})), peer)
    for raw in (b"hello\r\n", b"", b"\x00\xff" * 100):
        session.message_received(Data(raw=raw))
    assert peer.writes == []
    assert not peer.closed


def test_server_counts_discarded_bytes(make_peer: type[FakePeer]) -> None:
    """The server keeps a tally of what it threw away, over all its sessions."""
    server = discard.DiscardServer(NoOptions())
    server.session(make_peer(conn_id="a")).message_received(Data(raw=b"abc"))
    server.session(make_peer(conn_id="b")).message_received(Data(raw=b"de"))
    assert server.discarded == 5


def test_server_closes_on_eof(peer: FakePeer) -> None:
    """When the client half-closes, the server closes too."""
    discard.DiscardServer(NoOptions()).session(peer).eof_received()
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


def test_verb_half_close_closes_the_server(loopback: type[Loopback], arun: Runner) -> None:
    """A client that finishes sending finds the server gone."""

    async def main() -> bool:
        lb = loopback(discard.SPEC)
        await discard.DiscardClient(lb).discard(b"bye")
        lb.half_close()
        await lb.wait_closed(1.0)
        return lb.server_lost

    assert arun(main()) is True


@SETTINGS
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side, split anywhere, add up exactly, received,
    sent or observed."""
    for sender in Role:
        laws.stream(discard.SPEC.conversation, sender, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=80), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams decode one-to-one, each its own raw bytes."""
    for sender in Role:
        msgs = laws.datagrams(discard.SPEC.conversation, sender, datagrams)
        assert len(msgs) == len(datagrams)


@SETTINGS
@given(payloads=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=5),
       cuts=st.lists(st.integers(0, 100), max_size=5))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              payloads: list[bytes], cuts: list[int]) -> None:
    """A recorded discard exchange replays to an observer, split anywhere:
    all from the client, nothing from the server."""

    async def main() -> Loopback:
        lb = Loopback(discard.SPEC)
        for payload in payloads:
            await discard.DiscardClient(lb).discard(payload)
        return lb

    lb = arun(main())
    conv = discard.SPEC.conversation(None, Transport.TCP)
    seen = {Role.CLIENT: b"", Role.SERVER: b""}
    for sender, chunk in lb.transcript:
        for side, msg in conv.observe(chunk, sender):
            seen[side] += msg.raw
    assert seen == {Role.CLIENT: b"".join(payloads), Role.SERVER: b""}
