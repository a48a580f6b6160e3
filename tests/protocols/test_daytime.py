"""Tests for lab/protocols/daytime.py: the date line, options, sessions,
the conversation and verbs, in memory."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import ConfigError, ConnectionClosed
from lab.protocols import daytime
from lab.protocols._base import Role, Transport
from lab.protocols._framing import Data, DataDecoder, DatagramDecoder

SETTINGS = settings(deadline=None, max_examples=200)
WHEN = 1_795_525_782.0  # a fixed instant; lines are checked against local-time ctime


def fixed_server(**options: str) -> daytime.DaytimeServer:
    server = daytime.SPEC.server(daytime.SPEC.resolve_options(options))
    assert isinstance(server, daytime.DaytimeServer)
    set_clock(server)
    return server


def set_clock(server: daytime.DaytimeServer) -> None:
    server.wall_clock = lambda: WHEN


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
    with pytest.raises(ConfigError, match="daytime: --format wants a format on one line") as info:
        daytime.SPEC.resolve_options({"format": "%H\n%M"})
    assert info.value.hint


def test_format_option_default_is_ctime() -> None:
    """No --format means ctime."""
    assert daytime.SPEC.resolve_options({}) == daytime.DaytimeOptions(format=None)
    assert daytime.SPEC.resolve_options({"format": "%H"}) == daytime.DaytimeOptions(format="%H")


def test_unknown_option_is_refused() -> None:
    """Options other than --format are refused."""
    with pytest.raises(ConfigError, match="unknown option"):
        daytime.SPEC.resolve_options({"colour": "x"})


# -- server --------------------------------------------------------------------------


def test_tcp_server_sends_the_date_and_closes(make_peer: type[FakePeer]) -> None:
    """On connect: one date line, then close."""
    peer = make_peer(spec=daytime.SPEC)
    open_session(fixed_server(), peer)
    assert peer.data == time.ctime(WHEN).encode() + b"\r\n"
    assert peer.sent == [daytime.Daytime.at(WHEN)]
    assert peer.closed


def test_tcp_server_with_format(make_peer: type[FakePeer]) -> None:
    """--format shapes the line."""
    peer = make_peer(spec=daytime.SPEC)
    open_session(fixed_server(format="%H:%M:%S"), peer)
    assert peer.data == time.strftime("%H:%M:%S", time.localtime(WHEN)).encode() + b"\r\n"


def test_udp_server_answers_every_datagram(make_peer: type[FakePeer]) -> None:
    """Each datagram, empty or not, gets one date datagram; nothing is
    closed."""
    peer = make_peer(Transport.UDP, spec=daytime.SPEC)
    session = open_session(fixed_server(), peer)
    session.message_received(Data(raw=b""))
    session.message_received(Data(raw=b"what time is it?"))
    assert peer.writes == [time.ctime(WHEN).encode() + b"\r\n"] * 2
    assert not peer.closed


def test_tcp_server_ignores_client_data(peer: FakePeer) -> None:
    """Data from a TCP client makes no second answer."""
    session = fixed_server().session(peer)
    session.message_received(Data(raw=b"hello\r\n"))
    assert peer.writes == []


# -- the conversation ------------------------------------------------------------------


@pytest.mark.parametrize("role", [*Role, None])
def test_decoders(role: Role | None) -> None:
    """The client's bytes are raw chunks or datagrams; the server's are
    Daytime lines or datagrams, for either side and an observer."""
    for transport, kind in ((Transport.TCP, DataDecoder), (Transport.UDP, DatagramDecoder)):
        assert isinstance(daytime.SPEC.conversation(role, transport)._decoders[Role.CLIENT], kind)
    assert not daytime.SPEC.conversation(role, Transport.TCP).follows_sends


def test_client_decodes_the_date_line() -> None:
    """A line split anywhere is one Daytime message; a datagram is one too."""
    tcp = daytime.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert tcp.feed(b"Mon Jan  1 00:00:00 2024\r") == []
    assert tcp.feed(b"\n") == [daytime.Daytime.decode(b"Mon Jan  1 00:00:00 2024\r\n")]
    udp = daytime.SPEC.conversation(Role.CLIENT, Transport.UDP)
    assert [m.text for m in udp.feed(b"now\r\n")] == ["now"]


def test_client_takes_an_unterminated_line_at_eof() -> None:
    """A server that closes without CRLF still gave a date."""
    conv = daytime.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert [m.text for m in conv.feed(b"12:00") + conv.feed(b"")] == ["12:00"]


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side, split anywhere: only protocol errors, and
    messages that add up exactly, received, sent or observed."""
    laws.stream(daytime.SPEC.conversation, Role.SERVER, data, cuts)
    laws.stream(daytime.SPEC.conversation, Role.CLIENT, data, cuts, framed=False)


@SETTINGS
@given(datagrams=st.lists(st.binary(max_size=100), max_size=8))
def test_datagram_laws(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagrams from either side decode one-to-one, each its own bytes."""
    for sender in Role:
        assert len(laws.datagrams(daytime.SPEC.conversation, sender, datagrams)) == len(datagrams)


@SETTINGS
@given(fmt=st.sampled_from([None, "%Y-%m-%d", "%H:%M:%S", "no codes"]),
       cuts=st.lists(st.integers(0, 60), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              fmt: str | None, cuts: list[int]) -> None:
    """A recorded TCP exchange replays to an observer, split anywhere."""

    async def main() -> Loopback:
        lb = Loopback(daytime.SPEC, options={"format": fmt} if fmt else {}, prepare=set_clock)
        await daytime.DaytimeClient(lb).get()
        return lb

    lb = arun(main())
    seen = laws.observer_replays(daytime.SPEC.conversation, lb, cuts)
    assert [m.text for m in seen[Role.CLIENT]] == [daytime.Daytime.at(WHEN, fmt).text]


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
