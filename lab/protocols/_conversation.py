"""Conversations: one connection's protocol, both sides, sans-IO.

A :class:`Conversation` is h11's ``Connection`` for any protocol: it holds
a :class:`Decoder` for what each side sends and the state both sides
share, updated by :meth:`Conversation.track` for every message either
side sends.  It plays one of three parts:

* **server** or **client** (``role``): :meth:`~Conversation.receive_data`
  and :meth:`~Conversation.next_message` decode what the other side sends;
  :meth:`~Conversation.send` and :meth:`~Conversation.send_data` take what
  this side sends (a message, or raw bytes, which are decoded too), so
  the state follows both directions without side channels;
* **observer** (``role=None``): decodes both directions of a conversation
  it is not part of (a proxy, a capture), against the same state table.

A decoder may hold input back until the other side answers: after SMTP's
``DATA`` the next bytes are the message only if the server says 354.  The
owner of a conversation therefore asks for messages again after every
send (and, as an observer, after every message of the other side).

Tests: tests/protocols/test_conversation.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from lab.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Role, Transport

__all__ = ["Conversation", "ConversationFactory", "Decoder"]


class Decoder:
    """Frames and parses what one side of a conversation sends.

    Feed bytes with :meth:`receive_data` (``b""`` means that side finished
    sending) and pull messages with :meth:`next_message` until it returns
    ``None``: more bytes are needed, or the conversation holds this side's
    input until the other side answers.  Decoding raises
    :class:`RemoteProtocolError` on bytes the protocol forbids and nothing
    else; after an error the decoder is spent and keeps raising it.

    ``conversation`` is the one the decoder belongs to (set by it): the
    place to read the state both sides share.
    """

    conversation: Conversation | None = None

    def receive_data(self, data: bytes) -> None:
        raise NotImplementedError

    def next_message(self) -> Message | None:
        raise NotImplementedError

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a message."""
        return 0

    @property
    def idle(self) -> bool:
        """No message is half received: one sent whole may pass without
        being decoded again."""
        return self.buffered == 0

    def feed(self, data: bytes) -> list[Message]:
        """Receive ``data`` and return every message now complete; on an
        error the messages before the bad bytes are on its ``decoded``."""
        out: list[Message] = []
        try:
            self.receive_data(data)
            while (msg := self.next_message()) is not None:
                out.append(msg)
        except ProtocolError as exc:
            exc.decoded = out
            raise
        return out


class Conversation:
    """Both sides of one connection of one protocol.

    Subclasses give a decoder per side (:meth:`decoder`), the state table
    (:meth:`track`) and, where a side may only send certain messages, a
    check in :meth:`encode`.  ``follows_sends`` is False for protocols
    whose decoding never depends on what either side said before (echo,
    IRC): a connection may then skip decoding what it sends when nobody
    looks.
    """

    follows_sends: ClassVar[bool] = True

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.role = role
        self.transport = transport
        self._decoders: dict[Role, Decoder] = {}
        for side in Role:
            decoder = self.decoder(side)
            decoder.conversation = self
            self._decoders[side] = decoder
        # the other side's decoder, looked up once: every received byte passes here
        self._incoming: Decoder | None = None if role is None else self._decoders[role.peer]
        self._incoming_side: Role = Role.SERVER if role is None else role.peer
        self._tracks = type(self).track is not Conversation.track
        self._sent: list[Message] = []
        # set when what this side sends stopped decoding (raw bytes the
        # protocol forbids): they are still sent, no longer followed
        self.send_error: RemoteProtocolError | None = None

    # -- what a protocol provides -----------------------------------------

    def decoder(self, sender: Role) -> Decoder:
        """A new decoder for what ``sender`` sends."""
        raise NotImplementedError

    def track(self, sender: Role, msg: Message) -> None:
        """The state table: every message either side sends passes here
        once, in the order that side sent it."""

    def encode(self, msg: Message) -> bytes:
        """The bytes that put ``msg`` on the wire from this side;
        :class:`LocalProtocolError` if this side may not send it."""
        return msg.raw

    # -- who is who -------------------------------------------------------

    @property
    def observer(self) -> bool:
        """True when decoding a conversation this side is not part of."""
        return self.role is None

    def _side(self, sender: Role | None) -> Role:
        if sender is not None:
            if sender is self.role:
                raise ValueError(f"{sender.value} is this side: give its bytes to send_data()")
            return sender
        if self.role is None:
            raise ValueError("an observer needs to be told who sent the bytes")
        return self.role.peer

    # -- receiving --------------------------------------------------------

    def receive_data(self, data: bytes, sender: Role | None = None) -> None:
        """Bytes the other side sent (``b""``: it finished sending); an
        observer names the ``sender``."""
        decoder = self._incoming if sender is None else None
        if decoder is None:
            decoder = self._decoders[self._side(sender)]
        decoder.receive_data(data)

    def next_message(self, sender: Role | None = None) -> Message | None:
        """The next complete message from the other side (or ``sender``),
        or ``None``; :class:`RemoteProtocolError` if its bytes break the
        protocol."""
        decoder = self._incoming if sender is None else None
        if decoder is not None:
            side = self._incoming_side
        else:
            side = self._side(sender)
            decoder = self._decoders[side]
        msg = decoder.next_message()
        if msg is not None and self._tracks:
            self.track(side, msg)
            if self.follows_sends and self.role is not None:
                self._drain_own()  # an answer may release what this side sent
        return msg

    def feed(self, data: bytes, sender: Role | None = None) -> list[Message]:
        """:meth:`receive_data`, then every message now complete."""
        out: list[Message] = []
        try:
            self.receive_data(data, sender)
            while (msg := self.next_message(sender)) is not None:
                out.append(msg)
        except ProtocolError as exc:
            exc.decoded = out
            raise
        return out

    def stateless_decoder(self, sender: Role | None = None) -> Decoder | None:
        """The decoder of what ``sender`` (the other side) sends, when nothing
        here needs to see what it decodes (no state table): a connection may
        then use it directly, on its hottest path."""
        if self._tracks or self.follows_sends or self.role is None:
            return None
        return self._decoders[sender or self.role.peer]

    def buffered(self, sender: Role | None = None) -> int:
        """Bytes from the other side (or ``sender``) not yet a message."""
        if sender is None and self._incoming is not None:
            return self._incoming.buffered
        return self._decoders[sender if sender is not None else self._side(None)].buffered

    def observe(self, data: bytes, sender: Role) -> list[tuple[Role, Message]]:
        """As an observer: take bytes ``sender`` sent and return every
        message now complete on either side, in the order they follow.

        An answer on one side may release what the other side sent before
        it (the 354 after SMTP's ``DATA``), and those bytes come before
        whatever the answering side said next: so after each message of
        ``sender``, the other side decodes what it can first.
        """
        if self.role is not None:
            raise ValueError("observe() is for observers; this side is the " + self.role.value)
        out: list[tuple[Role, Message]] = []
        other = sender.peer
        try:
            self.receive_data(data, sender)
            while True:
                while (released := self.next_message(other)) is not None:
                    out.append((other, released))
                msg = self.next_message(sender)
                if msg is None:
                    break
                out.append((sender, msg))
        except ProtocolError as exc:
            exc.decoded = out
            raise
        return out

    # -- sending ----------------------------------------------------------

    def send(self, msg: Message) -> bytes:
        """The bytes for ``msg``, sent by this side; the state follows it."""
        if self.role is None:
            raise LocalProtocolError("an observer sends nothing", hint="only the two sides send")
        data = self.encode(msg)
        own = self._decoders[self.role]
        if self.send_error is None and not own.idle:
            # a raw send left half a message: these bytes complete it
            self._feed_own(data)
        else:
            self.track(self.role, msg)
            self._sent.append(msg)
        return data

    def send_data(self, data: bytes) -> None:
        """Raw bytes this side sends: decoded like the other side's, so the
        state follows them and the log can show them as messages."""
        if self.role is None:
            raise LocalProtocolError("an observer sends nothing", hint="only the two sides send")
        if data or self.transport is Transport.UDP:  # b"" ends a stream, but is a datagram
            self._feed_own(data)

    def send_eof(self) -> None:
        """This side finished sending: a last unterminated piece may now
        decode."""
        if self.role is not None:
            self._feed_own(b"")

    def take_sent(self) -> list[Message]:
        """What this side sent since the last call, decoded, in order."""
        sent, self._sent = self._sent, []
        return sent

    def _feed_own(self, data: bytes) -> None:
        if self.send_error is not None:
            return
        assert self.role is not None
        try:
            self._decoders[self.role].receive_data(data)
        except RemoteProtocolError as exc:
            self.send_error = exc
            return
        self._drain_own()

    def _drain_own(self) -> None:
        if self.send_error is not None:
            return
        assert self.role is not None
        own = self._decoders[self.role]
        try:
            while (msg := own.next_message()) is not None:
                self.track(self.role, msg)
                self._sent.append(msg)
        except RemoteProtocolError as exc:
            self.send_error = exc

    def __repr__(self) -> str:
        part = self.role.value if self.role is not None else "observer"
        return f"<{type(self).__name__} {part} {self.transport.value}>"


# what ProtocolSpec.conversation is: a Conversation subclass, or a function
ConversationFactory = Callable[[Role | None, Transport], Conversation]
