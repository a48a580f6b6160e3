"""SMTP on the wire (RFC 5321): commands, replies and the DATA block.

The server's codec reads command lines, a client's SASL responses (RFC
4954) and the dot-stuffed message after ``DATA``.  Which of these the next
line is depends on the server's answer (``354`` opens the message, ``334``
asks for a SASL response), so after ``DATA`` or ``AUTH`` the codec holds
the following bytes until the server's reply passes through
:meth:`ServerCodec.encode` (or ``sent``).  Without a reply (a codec
decoding what a client sends) it assumes the server said yes as soon as
more bytes come.

The client's codec reads replies, single or multi-line (``250-...``).

Limits (RFC 5321 §4.5.3.1): command lines 512 octets with CRLF (longer
ones decode with a ``problem`` the server answers with 500), AUTH lines
12288 (RFC 4954 §4, and the hard cap on any command line: beyond it the
codec fails), text lines in a message 1000, the message itself the SIZE
limit (beyond it the codec fails: the message cannot be kept).

Tests: tests/protocols/test_smtp.py
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
from lab.protocols._base import Codec, Message, Role, Transport, escape_bytes
from lab.protocols._framing import LineBuffer
from lab.protocols._mailstore import header_fields

__all__ = [
    "DEFAULT_SIZE",
    "MAX_AUTH_LINE",
    "MAX_COMMAND_LINE",
    "MAX_REPLY_LINES",
    "MAX_TEXT_LINE",
    "AuthResponse",
    "ClientCodec",
    "Command",
    "Greeting",
    "MailData",
    "Reply",
    "ServerCodec",
    "dot_stuff",
    "header_fields",
    "make_codec",
]

MAX_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, CRLF included
MAX_AUTH_LINE = 12288  # RFC 4954 §4
MAX_TEXT_LINE = 1000  # RFC 5321 §4.5.3.1.6, CRLF included
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

    verb: str
    arg: str = ""
    problem: str = ""

    @property
    def kind(self) -> str:  # type: ignore[override]  # hooks select a verb: srv.on("HELO", fn)
        return self.verb or "command"

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

    def summary(self) -> str:
        if self.problem:
            return f"bad command line ({self.problem}): {escape_bytes(self.raw, 60)}"
        if self.verb == "AUTH":
            mech, _, initial = self.arg.partition(" ")
            who = _plain_user(initial) if mech.upper() == "PLAIN" and initial else None
            return f"AUTH {mech.upper()}" + (f" (user {who}, password hidden)" if who is not None else
                                             " (initial response hidden)" if initial else "")
        return f"{self.verb} {self.arg}".rstrip()

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "arg": self.arg}
        if self.verb == "AUTH":
            out["arg"] = self.arg.split(" ", 1)[0] + (" ***" if " " in self.arg else "")
        if self.problem:
            out["problem"] = self.problem
        return out


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

    kind: ClassVar[str] = "auth-response"

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
        return f"auth response ({len(self.value)} base64 characters, hidden)"

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
    kind: ClassVar[str] = "data"
    volatile: ClassVar[frozenset[str]] = frozenset({"date", "message_id"})

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

    code: int
    lines: tuple[str, ...] = ()
    kind: ClassVar[str] = "reply"
    volatile: ClassVar[frozenset[str]] = frozenset({"lines"})

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

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status code (``2.0.0``) at the start of the text."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def ok(self) -> bool:
        return self.code < 400

    def summary(self) -> str:
        if len(self.lines) <= 1:
            return f"{self.code} {self.lines[0] if self.lines else ''}".rstrip()
        return f"{self.code} {self.lines[0]} / " + " / ".join(self.lines[1:])

    def fields(self) -> dict[str, Any]:
        return {"code": self.code, "enhanced": self.enhanced, "lines": list(self.lines)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Greeting(Reply):
    """The server's opening reply.  ``size_limit`` is not sent: it tells
    the server's own codec how large a message it may gather, since a
    client that says HELO never hears the SIZE an EHLO reply offers."""

    size_limit: int = DEFAULT_SIZE

    @classmethod
    def of_server(cls, text: str, size_limit: int) -> Greeting:
        reply = Reply.of(220, text)
        return cls(raw=reply.raw, code=220, lines=reply.lines, size_limit=size_limit)

    def fields(self) -> dict[str, Any]:
        return Reply.fields(self)


# -- the server's codec ------------------------------------------------------


class _Mode(enum.Enum):
    COMMAND = "command"
    HELD = "held for the server's reply"
    DATA = "message"
    AUTH = "SASL response"


class ServerCodec(LineBuffer):
    """What an SMTP server receives: :class:`Command`, :class:`AuthResponse`
    and :class:`MailData` messages; it encodes :class:`Reply` messages
    and follows them to know what the client's next line is."""

    holds_input = True  # after DATA and AUTH, until the reply: the connection asks again
    counts_terminator = True
    unit = "octets"

    def __init__(self, size_limit: int = DEFAULT_SIZE) -> None:
        super().__init__()
        self.size_limit = size_limit
        self._mode = _Mode.COMMAND
        self._held_for = ""  # "DATA" or "AUTH": which reply ends the hold
        self._assume = _Mode.COMMAND
        self._unanswered: collections.deque[str] = collections.deque(maxlen=10_000)  # bounded when nobody answers
        self._greeted = False
        self._line = 0  # in DATA: where the current line starts
        self._size = 0  # in DATA: message octets so far
        self._problem = ""
        self._replies: ClientCodec | None = None

    @property
    def mode(self) -> str:
        return self._mode.value

    def receive_data(self, data: bytes) -> None:
        if self._mode is _Mode.HELD and not self._error:
            self._assume_yes()  # nobody answered (we decode what a client sends): guess the usual
        super().receive_data(data)

    # -- following the server's replies --------------------------------

    def encode(self, msg: Message) -> bytes:
        if isinstance(msg, Reply):
            self._replied(msg)
        return msg.raw

    def sent(self, data: bytes) -> None:
        """The server sent bytes without :meth:`encode`: follow its replies."""
        if not data:
            return  # nothing sent (b"" would read as the end of the stream)
        if self._replies is None:
            self._replies = ClientCodec()
        try:
            for reply in self._replies.feed(data):
                assert isinstance(reply, Reply)
                self._replied(reply)
        except RemoteProtocolError:
            self._replies = None  # not replies; forget them

    def _replied(self, reply: Reply) -> None:
        code = reply.code
        if isinstance(reply, Greeting):
            self.size_limit = reply.size_limit
        if code == 250 and len(reply.lines) > 1:  # an EHLO reply: the SIZE it offers is our cap
            for line in reply.lines[1:]:
                word, _, value = line.partition(" ")
                if word.upper() == "SIZE" and value.strip().isdigit() and int(value) > 0:
                    self.size_limit = int(value)
        if not self._greeted:
            self._greeted = True
            return
        if not self._unanswered:
            return  # unsolicited, e.g. 421 before closing
        what = self._unanswered.popleft()
        if self._mode is _Mode.HELD and not self._unanswered and what == self._held_for:
            if what == "DATA" and code == 354:
                self._enter_data()
            elif what == "AUTH" and code == 334:
                self._mode = _Mode.AUTH
            else:
                self._mode = _Mode.COMMAND

    def _assume_yes(self) -> None:
        if self._assume is _Mode.DATA:
            self._enter_data()
        else:
            self._mode = self._assume
        self._unanswered.clear()

    def _enter_data(self) -> None:
        self._mode = _Mode.DATA
        self._line = self._scan = 0
        self._size = 0
        self._problem = ""

    def _hold(self, what: str, assume: _Mode) -> None:
        self._held_for = what
        self._assume = assume  # the mode if no reply comes
        self._mode = _Mode.HELD

    # -- decoding ---------------------------------------------------------

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        mode = self._mode
        if mode is _Mode.HELD:
            if self._eof and self._buf:
                self._assume_yes()
                return self.next_message()
            return None
        if mode is _Mode.DATA:
            return self._next_data()
        return self._next_line(mode)

    def _next_line(self, mode: _Mode) -> Message | None:
        what = "command line" if mode is _Mode.COMMAND else "SASL response"
        raw = self.next_line(MAX_AUTH_LINE, what, partial_at_eof=True)
        if raw is None:
            return None
        if mode is _Mode.AUTH:
            self._unanswered.append("AUTH")
            self._hold("AUTH", _Mode.AUTH)
            return AuthResponse(raw=raw)
        cmd = parse_command(raw)
        self._unanswered.append(cmd.verb if not cmd.problem else "?")
        if not cmd.problem and cmd.verb == "DATA":
            self._hold("DATA", _Mode.DATA)
        elif not cmd.problem and cmd.verb == "AUTH":
            # with an initial response (AUTH PLAIN xyz) the usual answer is final
            self._hold("AUTH", _Mode.COMMAND if " " in cmd.arg else _Mode.AUTH)
        return cmd

    def _next_data(self) -> Message | None:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n", self._scan)
            if end < 0:
                partial = len(buf) - self._line
                if self._size + partial > self.size_limit + 2:
                    raise self._spend(f"message larger than {self.size_limit} octets")
                if self._eof:
                    raise self._spend("connection closed in the middle of a message (no <CRLF>.<CRLF>)")
                self._scan = max(self._line, len(buf) - 1)  # a CR may await its LF
                return None
            start, stop = self._line, end + 2
            if stop - start == 3 and buf[start] == 0x2E:  # ".\r\n": the end
                raw = bytes(buf[:stop])
                del buf[:stop]
                self._mode = _Mode.COMMAND
                self._scan = 0
                self._unanswered.append("message")
                return MailData(raw=raw, problem=self._problem)
            line = buf[start:stop]
            self._size += stop - start - (1 if line[:1] == b"." else 0)
            if self._size > self.size_limit:
                raise self._spend(f"message larger than {self.size_limit} octets")
            if not self._problem:
                if stop - start > MAX_TEXT_LINE:
                    self._problem = f"a line longer than {MAX_TEXT_LINE} octets"
                elif b"\x00" in line:
                    self._problem = "a NUL byte"
            self._line = self._scan = stop


# -- the client's codec -------------------------------------------------------


class ClientCodec(LineBuffer):
    """What an SMTP client receives: :class:`Reply` messages."""

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        buf = self._buf
        pos = 0
        code = None
        lines: list[str] = []
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_REPLY_LINE:
                    raise self._spend(f"reply line longer than {MAX_REPLY_LINE} octets")
                if self._eof and buf:
                    raise self._spend(f"server closed inside a reply: {escape_bytes(bytes(buf), 60)}")
                return None
            line = bytes(buf[pos : end + 1])
            if len(line) > MAX_REPLY_LINE:
                raise self._spend(f"reply line longer than {MAX_REPLY_LINE} octets")
            m = _REPLY.match(line)
            if m is None:
                raise self._spend(f"not an SMTP reply line: {escape_bytes(line, 60)}")
            if code is not None and int(m.group(1)) != code:
                raise self._spend(f"reply code changed inside a multi-line reply: {escape_bytes(line, 60)}")
            code = int(m.group(1))
            text = line[4:].rstrip(b"\r\n") if m.group(2) in (b" ", b"-") else b""
            lines.append(text.decode("utf-8", "replace"))
            pos = end + 1
            if m.group(2) != b"-":
                raw = bytes(buf[:pos])
                del buf[:pos]
                if lines == [""]:
                    lines = []
                return Reply(raw=raw, code=code, lines=tuple(lines))
            if len(lines) >= MAX_REPLY_LINES:
                raise self._spend(f"multi-line reply longer than {MAX_REPLY_LINES} lines")


def make_codec(role: Role, transport: Transport) -> Codec:
    """Server: commands, SASL responses, messages.  Client: replies."""
    return ServerCodec() if role is Role.SERVER else ClientCodec()
