"""SMTP on the wire (RFC 5321): commands, replies and the DATA block.

One :class:`SmtpConversation` holds both sides.  The client sends command
lines, SASL responses (RFC 4954) and, after ``DATA``, the dot-stuffed
message; the server sends replies, single or multi-line (``250-...``).
Which of its kinds the client's next line is depends on the server's
answer (``354`` opens the message, ``334`` asks for a SASL response), so
after ``DATA`` or ``AUTH`` the client's bytes are held until the
server's reply has been seen: sent, when this side is the server;
received, when it is the client; on the other leg, for an observer.

A message up to 64 KiB decodes as one :class:`MailData`; a longer one as
:class:`MailPart` pieces and a closing :class:`MailEnd`, so a large
message is never one object here (the server decides what is too big,
and says 552).

Limits (RFC 5321 §4.5.3.1): command lines 512 octets with CRLF (longer
ones decode with a ``problem`` the server answers with 500), AUTH lines
12288 (RFC 4954 §4, and the hard cap on any command line: beyond it the
conversation fails), text lines in a message 1000 (a ``problem`` the
server refuses).  A line in a message longer than 1 MiB cannot be
framed: the rest of that message, up to ``<CRLF>.<CRLF>``, is passed on
in parts as it came (held 64 KiB at a time), and its end carries the
problem, so the server refuses the message and the session goes on.

Only CRLF ends a line (RFC 5321 §2.3.8).  A command line ending in a
bare LF still decodes, as one line, with :attr:`Command.bare_lf` set:
the server decides whether to take it.  In a message a bare LF is part
of a line, and only ``<CRLF>.<CRLF>`` ends the message, whatever the
server takes: no other sequence can smuggle a second message in.

Tests: tests/protocols/test_smtp.py, tests/protocols/test_smtp_hardening.py
"""

from __future__ import annotations

import base64
import binascii
import collections
import enum
import re
from dataclasses import dataclass
from email.message import Message as EmailMessage
from email.policy import SMTP
from typing import Any, ClassVar

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import MASK, Message, Pattern, Role, Spans, Transport, escape_bytes, matches_code
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import STREAM_ABOVE, BodyEnd, BodyPart, DotReader, StreamBuffer
from lab.services.mail import header_fields

__all__ = [
    "DEFAULT_SIZE",
    "MAX_AUTH_LINE",
    "MAX_COMMAND_LINE",
    "MAX_DATA_LINE",
    "MAX_REPLY_LINES",
    "MAX_TEXT_LINE",
    "AuthResponse",
    "ClientNext",
    "Command",
    "MailData",
    "MailEnd",
    "MailPart",
    "Reply",
    "SmtpConversation",
    "dot_stuff",
    "has_bare_lf",
    "header_fields",
    "parse_command",
]

MAX_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, CRLF included
MAX_AUTH_LINE = 12288  # RFC 4954 §4
MAX_TEXT_LINE = 1000  # RFC 5321 §4.5.3.1.6, CRLF included
MAX_DATA_LINE = 1024 * 1024  # a line in a message we can still frame (then: a problem)
MAX_REPLY_LINE = 4096  # §4.5.3.1.5 says 512; be lenient with what servers send
MAX_REPLY_LINES = 200
DEFAULT_SIZE = 10 * 1024 * 1024

_REPLY = re.compile(rb"([2-5][0-9][0-9])([ -]|\r?\n)")
_ENHANCED = re.compile(r"([245]\.\d{1,3}\.\d{1,3})(?: |$)")


def _line_problem(body: bytes, limit: int) -> str:
    if len(body) + 2 > limit:
        return f"line longer than {limit} octets"
    if b"\x00" in body:
        return "NUL byte in command"
    if any(b >= 0x80 for b in body):
        return "8-bit byte in command (SMTPUTF8 is not offered)"
    if any(b < 0x20 and b != 0x09 for b in body):
        return "control character in command"
    return ""


# -- messages -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Message):
    """One command line: ``verb`` upper-cased, ``arg`` the rest.  A line
    that breaks a rule (too long, NUL, 8-bit) still decodes, with
    ``problem`` saying which rule: the server answers it with 500."""
    EDITABLE = ("verb", "arg")

    verb: str
    arg: str = ""
    problem: str = ""
    SECRET: ClassVar[bool] = True  # AUTH's initial response

    def secret_spans(self) -> Spans:
        raw = self.raw
        if raw[:5].upper() != b"AUTH ":
            return ()
        end = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
        words = raw[:end].strip(b" ").split(b" ")
        if len(words) < 3:
            return ()
        start = raw.index(words[2], raw.index(words[1]) + len(words[1]))
        return ((start, end),)

    @property
    def kind(self) -> str:  # hooks select a verb: srv.on("HELO", fn)
        return self.verb or "command"

    @property
    def bare_lf(self) -> bool:
        """The line ended in LF without CR (RFC 5321 §2.3.8 allows only CRLF)."""
        return self.raw.endswith(b"\n") and not self.raw.endswith(b"\r\n")

    @classmethod
    def of(cls, verb: str, arg: str = "") -> Command:
        """The command line ``VERB arg``; :class:`LocalProtocolError` for
        characters SMTP cannot carry."""
        line = f"{verb} {arg}" if arg else verb
        if any(c in line for c in "\r\n\x00") or not verb:
            raise LocalProtocolError(f"smtp: cannot send command {line!r}",
                                     hint="a command is one line: no CR, LF or NUL")
        if not line.isascii():
            raise LocalProtocolError(f"smtp: cannot send command {line!r}",
                                     hint="only ASCII: this client does not speak SMTPUTF8")
        return parse_command(line.encode("ascii") + b"\r\n")

    def edited(self, **fields: Any) -> Command:
        self._editable(fields)
        return Command.of(str(fields.get("verb", self.verb)), str(fields.get("arg", self.arg)))

    def summary(self) -> str:
        if self.problem:
            return f"bad command line ({self.problem}): {escape_bytes(self.raw, 60)}"
        if self.verb == "AUTH":
            mech, _, initial = self.arg.partition(" ")
            who = _plain_user(initial) if mech.upper() == "PLAIN" and initial else None
            return f"AUTH {mech.upper()}" + (f" {MASK}  (user {who}, sent in cleartext, base64)" if who is not None
                                             else f" {MASK}  (sent in cleartext, base64)" if initial else "")
        return f"{self.verb} {self.arg}".rstrip() + (" (bare LF)" if self.bare_lf else "")

    def revealed(self) -> str:
        if self.verb != "AUTH" or self.problem or not self.secret_spans():
            return self.summary()
        mech, _, initial = self.arg.partition(" ")
        return f"AUTH {mech.upper()} {initial}  (sent in cleartext{_decoded(initial)})"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "arg": self.arg}
        if self.verb == "AUTH":
            out["arg"] = self.arg.split(" ", 1)[0] + (" ***" if " " in self.arg else "")
        if self.problem:
            out["problem"] = self.problem
        if self.bare_lf:
            out["line_ending"] = "bare LF"
        return out


def _decoded(value: str) -> str:
    """What base64 ``value`` says, for a revealed summary: ``, base64 of "..."``."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ", not base64"
    return f", base64 of {escape_bytes(data)}"


def _plain_user(initial: str) -> str | None:
    try:
        parts = base64.b64decode(initial, validate=True).split(b"\x00")
    except (binascii.Error, ValueError):
        return None
    return parts[1].decode("utf-8", "replace") if len(parts) == 3 else None


def parse_command(raw: bytes) -> Command:
    """Decode one command line (terminator included, if any)."""
    body = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
    limit = MAX_AUTH_LINE if body[:5].upper() == b"AUTH " else MAX_COMMAND_LINE
    problem = _line_problem(body, limit)
    text = body.decode("ascii", "replace")
    verb, _, arg = text.strip(" ").partition(" ")
    if not raw.endswith(b"\n"):
        problem = problem or "no line ending"
    if problem:
        verb = verb[:16] if verb.isascii() and verb.isalpha() else ""
        return Command(raw=raw, verb=verb.upper(), arg="", problem=problem)
    return Command(raw=raw, verb=verb.upper(), arg=arg.strip(" "))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse(Message):
    """A client's line in a SASL exchange (base64, or ``*`` to cancel)."""

    KIND: ClassVar[str] = "auth-response"
    SECRET: ClassVar[bool] = True  # PLAIN and LOGIN send the password base64-encoded here

    def secret_spans(self) -> Spans:
        end = len(self.raw.rstrip(b"\r\n"))
        return () if not end or self.value == "*" else ((0, end),)

    @property
    def value(self) -> str:
        return self.raw.rstrip(b"\r\n").decode("ascii", "replace").strip()

    @classmethod
    def of(cls, data: bytes | None) -> AuthResponse:
        """The base64 line for ``data``; ``None`` cancels (``*``)."""
        return cls(raw=(b"*" if data is None else base64.b64encode(data)) + b"\r\n")

    def summary(self) -> str:
        if self.value == "*":
            return "auth cancelled (*)"
        return f"auth response {MASK}  (sent in cleartext, base64)"

    def revealed(self) -> str:
        if self.value == "*":
            return self.summary()
        return f"auth response {self.value}  (sent in cleartext{_decoded(self.value)})"

    def fields(self) -> dict[str, Any]:
        return {"length": len(self.value), "cancel": self.value == "*"}


def dot_stuff(content: bytes) -> bytes:
    """``content`` as the DATA block: bare LF and CR made CRLF, a final
    CRLF added, lines starting with ``.`` doubled, ``.CRLF`` appended."""
    text = re.sub(rb"\r\n|\r|\n", b"\r\n", content)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    text = re.sub(rb"(?m)^\.", b"..", text)
    return text + b".\r\n"


def has_bare_lf(content: bytes) -> bool:
    """Does ``content`` hold an LF that is not part of a CRLF?"""
    return content.count(b"\n") != content.count(b"\r\n")


def unstuff(raw: bytes) -> bytes:
    """The message inside a DATA block: the ``.`` line dropped, leading
    dots undoubled."""
    body = raw[:-3]  # ".\r\n"
    # lines end in CRLF only here, so a line-opening dot follows CRLF or opens the block
    body = body.replace(b"\r\n.", b"\r\n")
    return body[1:] if body.startswith(b".") else body


@dataclass(frozen=True, slots=True, kw_only=True)
class MailData(Message):
    """The DATA block: ``raw`` is dot-stuffed and ends with ``.CRLF``;
    ``content`` is the message itself.  ``problem`` names a rule the
    block broke (a text line over 1000 octets, a NUL byte): the server
    refuses such a message."""

    problem: str = ""
    KIND: ClassVar[str] = "data"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"date", "message_id"})

    @classmethod
    def of(cls, content: bytes | str | EmailMessage) -> MailData:
        """The DATA block for a message given as bytes, text (sent as
        UTF-8) or an :class:`email.message.Message`."""
        if isinstance(content, EmailMessage):
            data = content.as_bytes(policy=SMTP)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
        return cls(raw=dot_stuff(data))

    @property
    def content(self) -> bytes:
        return unstuff(self.raw)

    @property
    def size(self) -> int:
        """``len(content)``, counted without building it: each line that
        starts with a dot on the wire lost one in the message."""
        body = self.raw[:-3]
        return len(body) - body.count(b"\r\n.") - body.startswith(b".")

    def _headers(self) -> list[tuple[str, str]]:
        # header lines never start with a dot, so the stuffed head is the head
        return header_fields(self.raw[:65536])

    def header(self, name: str) -> str | None:
        for key, value in self._headers():
            if key.lower() == name.lower():
                return value
        return None

    def summary(self) -> str:
        size = self.size
        subject = self.header("Subject")
        what = f"message, {size} bytes" + (f', Subject "{subject[:60]}"' if subject is not None else "")
        return what + (f" ({self.problem})" if self.problem else "")

    def fields(self) -> dict[str, Any]:
        headers = self._headers()
        get = {k.lower(): v for k, v in reversed(headers)}
        out: dict[str, Any] = {
            "size": self.size,
            "from": get.get("from"),
            "to": get.get("to"),
            "subject": get.get("subject"),
            "date": get.get("date"),
            "message_id": get.get("message-id"),
            "headers": [f"{k}: {v}" for k, v in headers],
        }
        if self.problem:
            out["problem"] = self.problem
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply(Message):
    """A server reply: a three-digit ``code`` and its text ``lines`` (one
    per line of a multi-line reply).  Reply text is for people (RFC 5321
    §4.2), so it is volatile; the code is not."""
    EDITABLE = ("code", "lines")

    code: int
    lines: tuple[str, ...] = ()
    KIND: ClassVar[str] = "reply"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"lines"})

    @classmethod
    def of(cls, code: int, *lines: str) -> Reply:
        """The reply ``code`` with ``lines`` of text (``250-a``, ``250 b``)."""
        if not 200 <= code <= 599:
            raise LocalProtocolError(f"smtp: reply code {code} is not 2xx-5xx")
        texts = list(lines) or [""]
        for text in texts:
            if any(c in text for c in "\r\n") or not text.isascii():
                raise LocalProtocolError(f"smtp: cannot send reply text {text!r}")
        parts = [f"{code}-{t}" for t in texts[:-1]] + [f"{code} {texts[-1]}" if texts[-1] else str(code)]
        raw = "".join(p + "\r\n" for p in parts).encode("ascii")
        return cls(raw=raw, code=code, lines=tuple(lines) if len(lines) != 1 or lines[0] else ())

    def edited(self, **fields: Any) -> Reply:
        self._editable(fields)
        lines = fields.get("lines", self.lines)
        return Reply.of(int(fields.get("code", self.code)), *([lines] if isinstance(lines, str) else lines))

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status code (``2.0.0``) at the start of the text."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def ok(self) -> bool:
        return self.code < 400

    def matches(self, pattern: Pattern) -> bool:
        """A reply code (``250``, ``"250"``) matches the code; anything
        else as for every message."""
        return matches_code(self, self.code, pattern)

    def summary(self) -> str:
        if len(self.lines) <= 1:
            return f"{self.code} {self.lines[0] if self.lines else ''}".rstrip()
        return f"{self.code} {self.lines[0]} / " + " / ".join(self.lines[1:])

    def fields(self) -> dict[str, Any]:
        return {"code": self.code, "enhanced": self.enhanced, "lines": list(self.lines)}



@dataclass(frozen=True, slots=True, kw_only=True)
class MailPart(BodyPart):
    """A piece of a message too large to be one :class:`MailData`; the
    first names the message by its headers."""

    KIND: ClassVar[str] = "data"

    def summary(self) -> str:
        if self.offset == 0:
            subject = next((v for k, v in header_fields(self.content) if k.lower() == "subject"), None)
            return (f"message (in parts), first {len(self.content)} bytes"
                    + (f', Subject "{subject[:60]}"' if subject is not None else ""))
        return f"message part, {len(self.content)} bytes from {self.offset}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MailEnd(BodyEnd):
    """The ``.`` line that ends a message sent in parts."""

    KIND: ClassVar[str] = "data-end"

    def summary(self) -> str:
        return f"end of message, {self.size} bytes" + (f" ({self.problem})" if self.problem else "")


# -- the conversation --------------------------------------------------------------


class ClientNext(enum.Enum):
    """What the client's next bytes are, as the replies so far decide."""

    COMMAND = "a command"
    WAIT_DATA = "held until the reply to DATA"
    MESSAGE = "the message"
    WAIT_AUTH = "held until the reply to AUTH"
    SASL = "a SASL response"


_LONG_TEXT_LINE = re.compile(rb"(?:[^\r]|\r(?!\n)){%d,}" % (MAX_TEXT_LINE - 1))


def _text_problem(lines: bytes) -> str:
    """The first rule a run of message lines breaks (RFC 5321 §4.5.3.1.6:
    1000 octets with CRLF; no NUL), or ""."""
    long = _LONG_TEXT_LINE.search(lines)
    nul = lines.find(b"\x00")
    if long is None and nul < 0:
        return ""
    if nul >= 0:
        before = lines.rfind(b"\r\n", 0, nul)
        nul_line = before + 2 if before >= 0 else 0
    # the first offending line decides; a line both too long and with a NUL is "too long"
    if long is not None and (nul < 0 or long.start() <= nul_line):
        return f"a line longer than {MAX_TEXT_LINE} octets"
    return "a NUL byte"


class _Unframable(RemoteProtocolError):
    """A line in a message too long to frame: skip to the message's end."""


class _MailReader(DotReader):
    """The DATA block's reader: a line it cannot frame starts skipping
    (in the decoder) instead of failing the conversation."""

    def _too_long(self, stream: StreamBuffer) -> RemoteProtocolError:
        return _Unframable(f"line in a message longer than {self.max_line} octets")


_END_OF_DATA = b"\r\n.\r\n"


class _ClientDecoder(StreamBuffer):
    """What an SMTP client sends: commands, SASL responses, the message."""

    counts_terminator = True
    unit = "octets"

    def __init__(self, conversation: SmtpConversation) -> None:
        super().__init__()
        self._conv = conversation
        self._data = self._reader()
        self._offset = 0  # content handed out of the message in parts so far
        # skipping an unframable message: the bytes before _buf start a line
        self._skipping = False
        self._line_start = True

    @staticmethod
    def _reader() -> DotReader:
        return _MailReader(max_line=MAX_DATA_LINE, crlf_only=True, line_problem=_text_problem, what="message")

    @property
    def idle(self) -> bool:
        return not self._buf and not self._data.reading and not self._skipping

    def next_message(self) -> Message | None:
        self._check()
        conv = self._conv
        step = conv.client_next
        if step is ClientNext.WAIT_DATA or step is ClientNext.WAIT_AUTH:
            return None  # the server's reply decides what these bytes are
        if step is ClientNext.MESSAGE:
            if self._skipping:
                return self._skip()
            try:
                piece = self._data.read(self)
            except _Unframable:
                self._skipping, self._line_start = True, True
                return self._skip()
            if piece is None:
                return None
            if piece.last:
                self._offset = 0
                if piece.first:
                    return MailData(raw=piece.raw, problem=piece.problem)
                return MailEnd(raw=piece.raw, size=piece.size, problem=piece.problem)
            self._offset = piece.offset + len(piece.content)
            return MailPart(raw=piece.raw, content=piece.content, offset=piece.offset)
        what = "command line" if step is ClientNext.COMMAND else "SASL response"
        raw = self.next_line(MAX_AUTH_LINE, what, partial_at_eof=True)
        if raw is None:
            return None
        if step is ClientNext.SASL:
            return AuthResponse(raw=raw)
        return parse_command(raw)

    def _skip(self) -> Message | None:
        """The rest of a message with a line too long to frame, passed on
        as it came, up to ``<CRLF>.<CRLF>``: its content is not undone
        (the message is refused whole), only 64 KiB of it is held."""
        buf = self._buf
        if self._line_start and buf.startswith(b".\r\n"):
            size = self._offset
            self.take(3)
            self._skipping, self._offset, self._data = False, 0, self._reader()
            return MailEnd(raw=b".\r\n", size=size, problem=f"a line longer than {MAX_TEXT_LINE} octets")
        at = buf.find(_END_OF_DATA)
        if at >= 0:
            cut = at + 2  # the lines before the dot line
        elif self._eof:
            self._skipping = False
            self._fail("the stream ended inside a message")
        elif len(buf) < STREAM_ABOVE:
            return None
        else:
            cut = len(buf) - (len(_END_OF_DATA) - 1)  # the end may be arriving cut
        raw = self.take(cut)
        self._line_start = raw.endswith(b"\r\n")
        part = MailPart(raw=raw, content=raw, offset=self._offset)
        self._offset += len(raw)
        return part


class _ServerDecoder(StreamBuffer):
    """What an SMTP server sends: replies, single or multi-line."""

    def next_message(self) -> Message | None:
        self._check()
        buf = self._buf
        pos = 0
        code = None
        lines: list[str] = []
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_REPLY_LINE:
                    self._fail(f"reply line longer than {MAX_REPLY_LINE} octets")
                if self._eof and buf:
                    self._fail(f"server closed inside a reply: {escape_bytes(bytes(buf), 60)}")
                return None
            line = bytes(buf[pos : end + 1])
            if len(line) > MAX_REPLY_LINE:
                self._fail(f"reply line longer than {MAX_REPLY_LINE} octets")
            m = _REPLY.match(line)
            if m is None:
                self._fail(f"not an SMTP reply line: {escape_bytes(line, 60)}")
            if code is not None and int(m.group(1)) != code:
                self._fail(f"reply code changed inside a multi-line reply: {escape_bytes(line, 60)}")
            code = int(m.group(1))
            text = line[4:].rstrip(b"\r\n") if m.group(2) in (b" ", b"-") else b""
            lines.append(text.decode("utf-8", "replace"))
            pos = end + 1
            if m.group(2) != b"-":
                raw = self.take(pos)
                return Reply(raw=raw, code=code, lines=tuple(lines) if lines != [""] else ())
            if len(lines) >= MAX_REPLY_LINES:
                self._fail(f"multi-line reply longer than {MAX_REPLY_LINES} lines")


class SmtpConversation(Conversation):
    """Both sides of an SMTP session and the one state they share: which
    client commands await replies, and what the client's next bytes are.

    ``client_next`` is the table's state: after ``DATA`` the client's
    bytes wait for the reply (354: the message; else commands), after
    ``AUTH`` or a SASL response likewise (334: another SASL response).
    """

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.client_next = ClientNext.COMMAND
        self.greeted = False
        # what each reply answers, oldest first (bounded when nobody answers)
        self.unanswered: collections.deque[str] = collections.deque(maxlen=10_000)
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return _ClientDecoder(self) if sender is Role.CLIENT else _ServerDecoder()

    def encode(self, msg: Message) -> bytes:
        side = self.role
        if side is Role.SERVER and not isinstance(msg, Reply):
            raise LocalProtocolError(f"smtp: a server sends replies, not {type(msg).__name__}")
        if side is Role.CLIENT and isinstance(msg, Reply):
            raise LocalProtocolError("smtp: a client sends commands, not replies")
        return msg.raw

    def track(self, sender: Role, msg: Message) -> None:
        if sender is Role.CLIENT:
            if isinstance(msg, Command):
                self.unanswered.append(msg.verb if not msg.problem else "?")
                if not msg.problem and msg.verb == "DATA":
                    self.client_next = ClientNext.WAIT_DATA
                elif not msg.problem and msg.verb == "AUTH":
                    self.client_next = ClientNext.WAIT_AUTH
            elif isinstance(msg, AuthResponse):
                self.unanswered.append("AUTH")
                self.client_next = ClientNext.WAIT_AUTH
            elif isinstance(msg, (MailData, MailEnd)):
                self.unanswered.append("message")
                self.client_next = ClientNext.COMMAND
            return
        if not isinstance(msg, Reply):
            return
        if not self.greeted:
            self.greeted = True  # the greeting answers nothing
            return
        if not self.unanswered:
            return  # unsolicited, e.g. 421 before closing
        what = self.unanswered.popleft()
        if what == "DATA" and self.client_next is ClientNext.WAIT_DATA:
            self.client_next = ClientNext.MESSAGE if msg.code == 354 else ClientNext.COMMAND
        elif what == "AUTH" and self.client_next is ClientNext.WAIT_AUTH:
            self.client_next = ClientNext.SASL if msg.code == 334 else ClientNext.COMMAND
