"""A POP3 conversation: both sides decoded against one state table.

Whether a response carries a multi-line body depends on the command it
answers (RETR, TOP, CAPA always; LIST and UIDL without an argument), so
:class:`Pop3Conversation` keeps, for every command the client sends, the
verb and whether a positive reply has a body, the greeting first; the
reply decoder reads the oldest entry at each status line and the
reply's :meth:`~Pop3Conversation.track` retires it.  The same table
serves a client (its commands sent, the replies received), a server (the
commands received, its own replies followed) and an observer.

Tests: tests/protocols/test_pop3.py
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from lab.errors import LocalProtocolError
from lab.protocols._base import Message, Role, Transport, escape_bytes
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import BodyEnd, BodyPart, DotReader, StreamBuffer
from lab.protocols.pop3._messages import (
    Pop3BodyEnd,
    Pop3BodyPart,
    Pop3Command,
    Pop3Reply,
    Pop3SaslResponse,
    parse_command,
    wants_body,
)

__all__ = [
    "MAX_BODY_LINE",
    "MAX_LINE",
    "MAX_RESPONSE_LINE",
    "MAX_UNANSWERED",
    "Pop3CommandDecoder",
    "Pop3Conversation",
    "Pop3ReplyDecoder",
]

MAX_LINE = 4096  # the hard cap on a command line: beyond it the decoder fails
MAX_RESPONSE_LINE = 512  # RFC 2449 §4, for status lines; beyond it the decoder fails
# mail lines should stay under 998 octets (RFC 5322 §2.1.1), but real mail
# breaks that; this only keeps one line from filling memory
MAX_BODY_LINE = 1024 * 1024
MAX_UNANSWERED = 10_000  # commands awaiting replies before the client's side is held


class Pop3CommandDecoder(StreamBuffer):
    """What a POP3 client sends: :class:`Pop3Command` lines (LF alone
    accepted; a line over :data:`MAX_LINE` octets spends the decoder), or
    a :class:`Pop3SaslResponse` when the server's last word was a SASL
    challenge.  Held while :data:`MAX_UNANSWERED` commands await replies."""

    counts_terminator = True
    unit = "octets"
    conversation: Pop3Conversation | None = None

    def next_message(self) -> Message | None:
        self._check()
        conv = self.conversation
        if conv is not None and len(conv.pending) >= MAX_UNANSWERED:
            return None
        raw = self.next_line(MAX_LINE, "command line", partial_at_eof=True)
        if raw is None:
            return None
        if conv is not None and conv.sasl_due:
            return Pop3SaslResponse(raw=raw)
        return parse_command(raw)


class Pop3ReplyDecoder(StreamBuffer):
    """What a POP3 server sends: :class:`Pop3Reply` messages, a long body
    after its reply as :class:`Pop3BodyPart` messages and a
    :class:`Pop3BodyEnd`.
    Whether a ``+OK`` has a body is the conversation's word."""

    counts_terminator = True
    unit = "octets"
    conversation: Pop3Conversation | None = None

    def __init__(self) -> None:
        super().__init__()
        self._reader = DotReader(max_line=MAX_BODY_LINE, what="multi-line response")
        self._head: tuple[bytes, str, str] | None = None  # status line, info, verb: awaiting its body
        self._next: Pop3BodyPart | None = None  # the first part, after its streamed reply
        self._verb = ""  # the verb a body in parts answers

    @property
    def buffered(self) -> int:
        held = len(self._head[0]) if self._head else 0
        return len(self._buf) + held + (len(self._next.raw) if self._next else 0)

    @property
    def idle(self) -> bool:
        return self.buffered == 0 and not self._reader.reading

    def next_message(self) -> Message | None:
        self._check()
        if self._next is not None:
            part, self._next = self._next, None
            return part
        conv = self.conversation
        if self._head is None and not self._reader.reading:
            if conv is None or not conv.body_open:
                return self._status_line(conv)
            if not self._buf:
                return None  # parts sent as messages pass without this decoder
            # bytes after a reply and parts sent as messages: they carry on the body
            self._reader.resume(conv.body_size)
            self._verb = conv.body_verb
        return self._body()

    def _status_line(self, conv: Pop3Conversation | None) -> Message | None:
        line = self.next_line(MAX_RESPONSE_LINE, "status line")
        if line is None:
            if self._eof and self._buf:
                self._fail(f"server closed inside a response: {escape_bytes(bytes(self._buf), 60)}")
            return None
        word, _, rest = line.rstrip(b"\r\n").partition(b" ")
        if word not in (b"+OK", b"-ERR", b"+"):
            self._fail(f"not a POP3 status line: {escape_bytes(line, 60)}")
        info = rest.decode("utf-8", "replace")
        verb, body = conv.answering() if conv is not None else ("", False)
        if word == b"+OK" and body:
            self._head = (line, info, verb)
            return self._body()
        return Pop3Reply(raw=line, ok=word != b"-ERR", info=info, continuation=word == b"+", reply_to=verb)

    def _body(self) -> Message | None:
        piece = self._reader.read(self)
        if piece is None:
            return None
        if self._head is not None:
            status, info, verb = self._head
            self._head = None
            if piece.last:  # the whole body within the limit: one reply
                return Pop3Reply(raw=status + piece.raw, ok=True, info=info, body=piece.content, reply_to=verb)
            self._verb = verb
            self._next = Pop3BodyPart(raw=piece.raw, content=piece.content, offset=piece.offset, reply_to=verb)
            return Pop3Reply(raw=status, ok=True, info=info, reply_to=verb, streamed=True)
        if piece.last:
            return Pop3BodyEnd(raw=piece.raw, size=piece.size, problem=piece.problem, reply_to=self._verb)
        return Pop3BodyPart(raw=piece.raw, content=piece.content, offset=piece.offset, reply_to=self._verb)


class Pop3Conversation(Conversation):
    """One POP3 connection, both sides, for a client, a server or an
    observer.

    The state both sides share: ``pending``, for each command not yet
    answered (the greeting first), its verb and whether a ``+OK`` to it
    carries a body; ``sasl_due`` after a ``+`` challenge (the client's
    next line answers it); ``body_open``, ``body_verb`` and ``body_size``
    while a long body is under way.  A client sends commands and SASL responses, a
    server replies and body parts.
    """

    follows_sends: ClassVar[bool] = True

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.pending: deque[tuple[str, bool]] = deque([("", False)])
        self.sasl_due = False
        self.body_open = False
        self.body_verb = ""
        self.body_size = 0
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return Pop3CommandDecoder() if sender is Role.CLIENT else Pop3ReplyDecoder()

    def answering(self) -> tuple[str, bool]:
        """The command the next reply answers: its verb and whether a
        ``+OK`` brings a body (none for a reply nobody asked for)."""
        return self.pending[0] if self.pending else ("", False)

    def track(self, sender: Role, msg: Message) -> None:
        if sender is Role.CLIENT:
            if isinstance(msg, Pop3SaslResponse):
                self.sasl_due = False
            elif isinstance(msg, Pop3Command):
                self.pending.append((msg.verb, not msg.problem and wants_body(msg.verb, msg.args)))
        elif isinstance(msg, Pop3Reply):
            if msg.continuation:
                self.sasl_due = True
                return
            if self.pending:
                self.pending.popleft()
            self.sasl_due = False
            self.body_open, self.body_verb, self.body_size = msg.streamed, msg.reply_to, 0
        elif isinstance(msg, BodyPart):
            self.body_size = msg.offset + len(msg.content)
        elif isinstance(msg, BodyEnd):
            self.body_open = False

    def encode(self, msg: Message) -> bytes:
        if self.role is Role.CLIENT and isinstance(msg, (Pop3Reply, BodyPart, BodyEnd)):
            raise LocalProtocolError(f"pop3: a client sends commands, not {msg.summary()!r}")
        if self.role is Role.SERVER and isinstance(msg, (Pop3Command, Pop3SaslResponse)):
            raise LocalProtocolError(f"pop3: a server sends replies, not {msg.summary()!r}")
        if isinstance(msg, (BodyPart, BodyEnd)) and not self.body_open:
            raise LocalProtocolError("pop3: a body part without a streamed reply before it",
                                     hint="send the +OK with streamed=True first")
        return msg.raw
