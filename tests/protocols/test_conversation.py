"""Tests for lab/protocols/_conversation.py: one conversation, both sides,
three parts (server, client, observer), on a small protocol whose client
is held after ASK until the server says YES or NO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import Line, LineDecoder


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload(Message):
    """A line the client sends once the server said YES."""

    KIND: ClassVar[str] = "payload"


class ClientLines(LineDecoder):
    def __init__(self, conversation: Gate) -> None:
        super().__init__(64)
        self.gate = conversation

    def next_message(self) -> Message | None:
        if self.gate.waiting:
            self._check()
            return None  # held: the answer to ASK says what comes next
        msg = super().next_message()
        if msg is not None and self.gate.open:
            return Payload(raw=msg.raw)
        return msg


class Gate(Conversation):
    """ASK holds the client; YES makes its next line a payload, NO a line."""

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.waiting = False
        self.open = False
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return ClientLines(self) if sender is Role.CLIENT else LineDecoder(64)

    def encode(self, msg: Message) -> bytes:
        if self.role is Role.SERVER and isinstance(msg, Payload):
            raise LocalProtocolError("a server sends no payload")
        return msg.raw

    def track(self, sender: Role, msg: Message) -> None:
        if sender is Role.CLIENT:
            if isinstance(msg, Payload):
                self.open = False
            elif msg.raw.strip() == b"ASK":
                self.waiting = True
        elif self.waiting:
            self.waiting = False
            self.open = msg.raw.strip() == b"YES"


def kinds(msgs: list[Message]) -> list[str]:
    return [f"{m.kind}:{m.raw.strip().decode()}" for m in msgs]


def test_a_server_holds_the_client_until_it_answers() -> None:
    """The bytes after ASK wait; the server's YES (sent whole) makes them a payload."""
    conv = Gate(Role.SERVER)
    assert kinds(conv.feed(b"ASK\nsecret\nbye\n")) == ["line:ASK"]
    assert conv.buffered() == len(b"secret\nbye\n")
    conv.send(Line.of("YES"))
    assert kinds(conv.feed(b"")) == ["payload:secret", "line:bye"]


def test_a_refusal_makes_the_held_bytes_lines() -> None:
    conv = Gate(Role.SERVER)
    conv.feed(b"ASK\nsecret\n")
    conv.send_data(b"NO\n")  # raw bytes are followed too
    assert kinds(conv.feed(b"")) == ["line:secret"]


def test_a_client_holds_its_own_bytes_until_the_answer_arrives() -> None:
    """What the client sends is decoded too: the payload is known only once YES came back."""
    conv = Gate(Role.CLIENT)
    conv.send_data(b"ASK\nsecret\n")
    assert kinds(conv.take_sent()) == ["line:ASK"]
    assert kinds(conv.feed(b"YES\n")) == ["line:YES"]
    assert kinds(conv.take_sent()) == ["payload:secret"]


def test_an_observer_sees_released_bytes_before_the_next_answer() -> None:
    """The answer that releases the client comes first, then what it released,
    then whatever the server said after it."""
    conv = Gate(None)
    assert conv.observe(b"ASK\nsecret\n", Role.CLIENT) == [(Role.CLIENT, Line(raw=b"ASK\n"))]
    got = conv.observe(b"YES\nthanks\n", Role.SERVER)
    assert [(side.value, m.raw) for side, m in got] == [
        ("server", b"YES\n"), ("client", b"secret\n"), ("server", b"thanks\n")]
    assert isinstance(got[1][1], Payload)


def test_a_message_sent_whole_after_half_a_raw_line_is_decoded_with_it() -> None:
    """A raw send that stopped mid-line: the next message completes that line."""
    conv = Gate(Role.CLIENT)
    conv.send_data(b"hal")
    assert conv.take_sent() == []
    conv.send(Line.of("f"))
    assert kinds(conv.take_sent()) == ["line:half"]


def test_each_part_keeps_to_its_role() -> None:
    """Who sent the bytes must be said by an observer and only by it; observers send nothing."""
    observer, server = Gate(None), Gate(Role.SERVER)
    with pytest.raises(ValueError, match="told who sent"):
        observer.receive_data(b"x\n")
    with pytest.raises(ValueError, match="send_data"):
        server.receive_data(b"x\n", Role.SERVER)
    with pytest.raises(ValueError, match="for observers"):
        server.observe(b"x\n", Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        observer.send(Line.of("x"))
    with pytest.raises(LocalProtocolError):
        server.send(Payload(raw=b"p\n"))
    assert observer.observer and not server.observer
    assert repr(server) == "<Gate server tcp>"


def test_raw_sends_that_do_not_decode_are_noted_and_still_followed_no_further() -> None:
    """A line over the cap from this side: send_error says so; decoding this side stops."""
    conv = Gate(Role.CLIENT)
    conv.send_data(b"x" * 100)
    assert isinstance(conv.send_error, RemoteProtocolError)
    conv.send_data(b"ok\n")
    assert conv.take_sent() == []


def test_the_end_of_what_this_side_sends_flushes_a_last_line() -> None:
    conv = Gate(Role.CLIENT)
    conv.send_data(b"tail")
    conv.send_eof()
    assert kinds(conv.take_sent()) == ["line:tail"]


def test_an_empty_datagram_sent_is_a_message() -> None:
    """Over UDP b"" is a datagram, not the end of anything."""
    from lab.protocols.echo import EchoConversation

    conv = EchoConversation(Role.CLIENT, Transport.UDP)
    conv.send_data(b"")
    assert [m.raw for m in conv.take_sent()] == [b""]


_BITS = [b"ASK\n", b"YES\n", b"NO\n", b"hello\n", b"x", b"\n", b"\r\n", b"y" * 70]


@settings(deadline=None, max_examples=150)
@given(data=st.lists(st.sampled_from(_BITS), max_size=12).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=6))
def test_the_laws_hold_for_either_side(data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side: received, sent or observed, the same messages."""
    ConversationLaws().stream(Gate, Role.CLIENT, data, cuts)
    ConversationLaws().stream(Gate, Role.SERVER, data, cuts)
