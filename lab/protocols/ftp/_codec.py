"""FTP's control connection, sans-IO (RFC 959 §4-5, RFC 2389 FEAT, RFC
3659, RFC 2428): command lines from the client, replies from the server,
and the summary of a transfer on a data connection.

A command is one line, ``VERB [argument]`` (the argument is the rest of
the line: a file name may hold spaces).  A reply is a three-digit code
and text; a multi-line reply opens with ``123-``, may hold any lines,
and ends with a line starting ``123 `` (RFC 959 §4.2): it decodes as one
:class:`FtpReply`.  Nothing here depends on what was said before, so
both sides frame alone.

Tests: tests/protocols/test_ftp.py
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError
from lab.protocols._base import MASK, Message, Pattern, Role, Spans, Transport, escape_bytes, matches_code
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import DataDecoder, StreamBuffer

__all__ = [
    "MAX_LINE",
    "MAX_REPLY",
    "REPLY_MEANINGS",
    "FtpCommand",
    "FtpCommandDecoder",
    "FtpConversation",
    "FtpDataConversation",
    "FtpReply",
    "FtpReplyDecoder",
    "FtpTransfer",
    "meaning",
    "parse_command",
]

MAX_LINE = 8192  # a command or reply line longer than this is a protocol error
MAX_REPLY = 64 * 1024  # a multi-line reply held whole, at most
PREVIEW = 256  # bytes of a transfer kept in the log

# RFC 959 §4.2.2 (with RFC 2228, 2428, 3659's additions), by code
REPLY_MEANINGS: dict[int, str] = {
    110: "restart marker",
    120: "service ready in a few minutes",
    125: "data connection already open; transfer starting",
    150: "file status okay; about to open data connection",
    200: "command okay",
    202: "command not implemented, superfluous here",
    211: "system status, or help reply",
    212: "directory status",
    213: "file status",
    214: "help message",
    215: "system type",
    220: "service ready for new user",
    221: "service closing control connection",
    225: "data connection open; no transfer in progress",
    226: "closing data connection; requested file action successful",
    227: "entering passive mode",
    229: "entering extended passive mode",
    230: "user logged in, proceed",
    250: "requested file action okay, completed",
    257: "pathname (created, or the working directory)",
    331: "user name okay, need password",
    332: "need account for login",
    350: "requested file action pending further information",
    421: "service not available, closing control connection",
    425: "can't open data connection",
    426: "connection closed; transfer aborted",
    450: "requested file action not taken (file unavailable)",
    451: "requested action aborted: local error in processing",
    452: "requested action not taken: insufficient storage",
    500: "syntax error, command unrecognized",
    501: "syntax error in parameters or arguments",
    502: "command not implemented",
    503: "bad sequence of commands",
    504: "command not implemented for that parameter",
    522: "network protocol not supported",
    530: "not logged in",
    532: "need account for storing files",
    550: "requested action not taken (file unavailable, not found, no access)",
    551: "requested action aborted: page type unknown",
    552: "requested file action aborted: exceeded storage allocation",
    553: "requested action not taken: file name not allowed",
}

_FIRST_DIGIT = {1: "positive preliminary", 2: "positive completion", 3: "positive intermediate",
                4: "transient negative", 5: "permanent negative"}


def meaning(code: int | None) -> str:
    """What RFC 959 says a reply code means."""
    if code is None:
        return "not a reply"
    return REPLY_MEANINGS.get(code) or _FIRST_DIGIT.get(code // 100, "unknown") + " reply"


# -- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FtpCommand(Message):
    """A command line: ``verb`` upper-cased and its ``arg`` (the rest of
    the line, spaces kept).  A line that breaks a rule still decodes,
    with ``problem`` saying which: the server answers it with 500/501.
    PASS is a secret: masked in live views, never on disk."""

    verb: str
    arg: str = ""
    problem: str = ""
    KIND: ClassVar[str] = "command"
    SECRET: ClassVar[bool] = True  # PASS (and ACCT) carry a password
    EDITABLE: ClassVar[tuple[str, ...]] = ("verb", "arg")

    @property
    def kind(self) -> str:
        return self.verb or self.KIND  # hooks select a verb: srv.on("RETR", fn)

    @property
    def volatile(self) -> frozenset[str]:
        # PORT/EPRT name a port the client's OS chose: another each run
        return _PORT_ARG if self.verb in ("PORT", "EPRT") else frozenset()

    def secret_spans(self) -> Spans:
        head = self.raw[:5].upper()
        if head not in (b"PASS ", b"ACCT "):
            return ()
        raw = self.raw
        end = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
        return ((5, end),) if end > 5 else ()

    @classmethod
    def of(cls, verb: str, arg: str = "") -> FtpCommand:
        """A command to send; :class:`LocalProtocolError` for CR, LF or
        NUL (Telnet end-of-line would cut it) or a line too long."""
        line = f"{verb} {arg}" if arg else verb
        if any(c in line for c in "\r\n\x00"):
            raise LocalProtocolError(f"ftp: cannot send {line[:40]!r}: CR, LF and NUL end or cut a command")
        raw = line.encode("utf-8") + b"\r\n"
        if len(raw) > MAX_LINE:
            raise LocalProtocolError(f"ftp: command line of {len(raw)} bytes (at most {MAX_LINE})")
        return parse_command(raw)

    def edited(self, **fields: Any) -> FtpCommand:
        self._editable(fields)
        return FtpCommand.of(str(fields.get("verb", self.verb)), str(fields.get("arg", self.arg)))

    def summary(self) -> str:
        if self.problem:
            return f"bad command line ({self.problem}): {escape_bytes(self.raw, 60)}"
        if self.secret_spans():
            return f"{self.verb} {MASK}  (sent in cleartext)"
        return f"{self.verb} {self.arg}".rstrip()

    def revealed(self) -> str:
        if self.problem or not self.secret_spans():
            return self.summary()
        return f"{self.verb} {self.arg}  (sent in cleartext)"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "arg": "***" if self.secret_spans() else self.arg}
        if self.problem:
            out["problem"] = self.problem
        return out


_VERB = re.compile(r"[A-Za-z]{3,4}")
_PORT_ARG = frozenset({"arg"})


def parse_command(raw: bytes) -> FtpCommand:
    """Decode one command line (terminator included, if any).  Lenient:
    a bare LF ends a line too, and the argument is UTF-8 (RFC 2640) or,
    failing that, Latin-1, byte for byte."""
    body = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    # Telnet IP and Synch (IAC IP IAC DM) may precede an ABOR (RFC 959 §4.1.3)
    body = body.lstrip(b"\xff\xf4\xf2")
    problem = ""
    if b"\x00" in body:
        problem = "NUL byte in command"
    elif b"\r" in body:
        problem = "CR inside a command"
    elif not raw.endswith(b"\n"):
        problem = "no line ending"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    verb, _, arg = text.partition(" ")
    if not problem and not _VERB.fullmatch(verb):
        problem = "a command is 3 or 4 letters"
    return FtpCommand(raw=raw, verb=verb.upper()[:16], arg=arg, problem=problem)


class FtpCommandDecoder(StreamBuffer):
    """What a client sends: command lines, each a :class:`FtpCommand`."""

    def next_message(self) -> Message | None:
        self._check()
        raw = self.next_line(MAX_LINE, "command line", partial_at_eof=True)
        return None if raw is None else parse_command(raw)


# -- replies ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FtpReply(Message):
    """A reply: its ``code`` and ``lines`` of text (one, or every line of
    a multi-line reply, each without its code).  A line that is no reply
    decodes with ``code`` None and a ``problem``."""

    code: int | None
    lines: tuple[str, ...] = ()
    problem: str = ""
    KIND: ClassVar[str] = "reply"
    # the text is the server's own wording (RFC 959 §4.2); 227/229 carry ports
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"lines"})

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def multiline(self) -> bool:
        return len(self.lines) > 1

    @property
    def meaning(self) -> str:
        return meaning(self.code)

    @classmethod
    def of(cls, code: int, *lines: str) -> FtpReply:
        """A reply to send: one line, or a multi-line reply whose inner
        lines are indented (so none looks like its end)."""
        if not 100 <= code <= 599:
            raise LocalProtocolError(f"ftp: reply code {code} is not three digits from 100")
        texts = [line.replace("\r", " ").replace("\n", " ").replace("\x00", " ") for line in lines] or [""]
        if len(texts) == 1:
            raw = f"{code} {texts[0]}\r\n".encode("utf-8", "surrogateescape")
        else:
            middle = "".join(f" {t}\r\n" for t in texts[1:-1])
            raw = f"{code}-{texts[0]}\r\n{middle}{code} {texts[-1]}\r\n".encode("utf-8", "surrogateescape")
        return cls(raw=raw, code=code, lines=tuple(texts))

    def matches(self, pattern: Pattern) -> bool:
        return matches_code(self, self.code, pattern)

    def summary(self) -> str:
        if self.code is None:
            return f"bad reply line ({self.problem}): {escape_bytes(self.raw, 60)}"
        first = self.lines[0] if self.lines else ""
        more = f" [+{len(self.lines) - 1} lines]" if len(self.lines) > 1 else ""
        return f"{self.code} {first[:100]}{more}  ({self.meaning})"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "meaning": self.meaning, "lines": list(self.lines)}
        if self.problem:
            out["problem"] = self.problem
        return out


_REPLY_LINE = re.compile(rb"(\d{3})([ -]?)(.*?)\r?\n?\Z", re.S)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class FtpReplyDecoder(StreamBuffer):
    """What a server sends: replies, a multi-line one whole (up to
    :data:`MAX_REPLY` bytes; past that, a protocol error)."""

    def __init__(self) -> None:
        super().__init__()
        self._code: bytes | None = None  # the code of a multi-line reply being read
        self._lines: list[bytes] = []
        self._size = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._size

    @property
    def idle(self) -> bool:
        return not self._buf and self._code is None

    def next_message(self) -> Message | None:
        self._check()
        while True:
            raw = self.next_line(MAX_LINE, "reply line", partial_at_eof=True)
            if raw is None:
                if self._eof and self._code is not None:
                    self._fail("stream ended inside a multi-line reply")
                return None
            if self._code is not None:
                self._lines.append(raw)
                self._size += len(raw)
                if raw[:3] == self._code and raw[3:4] in (b" ", b"\r", b"\n", b""):
                    return self._multiline()
                if self._size > MAX_REPLY:
                    self._fail(f"multi-line reply longer than {MAX_REPLY} bytes")
                continue
            match = _REPLY_LINE.match(raw)
            if match is None or raw[:1] not in (b"1", b"2", b"3", b"4", b"5") or (
                    not match.group(2) and match.group(3)):
                return FtpReply(raw=raw, code=None, lines=(_text(raw).rstrip("\r\n"),),
                                problem="a reply starts with a three-digit code and a space or hyphen")
            code, sep, text = match.groups()
            if sep == b"-":
                self._code, self._lines, self._size = code, [raw], len(raw)
                continue
            return FtpReply(raw=raw, code=int(code), lines=(_text(text),))

    def _multiline(self) -> FtpReply:
        lines, code = self._lines, self._code
        assert code is not None
        self._code, self._lines, self._size = None, [], 0
        texts = []
        for i, line in enumerate(lines):
            body = line.rstrip(b"\r\n") if line.endswith(b"\n") else line
            if i == 0 or i == len(lines) - 1:
                body = body[4:]
            elif body[:4] == code + b"-":
                body = body[4:]  # some servers repeat the code on every line
            elif body[:1] == b" ":
                body = body[1:]
            texts.append(_text(body))
        return FtpReply(raw=b"".join(lines), code=int(code), lines=tuple(texts))


class FtpConversation(Conversation):
    """Both sides of an FTP control connection.  Framing needs nothing
    said before, so both sides decode alone (``follows_sends`` is false);
    a client may only send commands and a server only replies."""

    follows_sends = False

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return FtpCommandDecoder() if sender is Role.CLIENT else FtpReplyDecoder()

    def encode(self, msg: Message) -> bytes:
        wanted = FtpCommand if self.role is Role.CLIENT else FtpReply
        if not isinstance(msg, wanted):
            raise LocalProtocolError(f"an FTP {self.role.value if self.role else 'observer'} does not send "
                                     f"{type(msg).__name__}")
        return msg.raw


# -- data connections ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FtpTransfer(Message):
    """What one data connection carried, as the log keeps it: ``raw`` is a
    preview (the first :data:`PREVIEW` bytes), ``size`` the whole count,
    ``command`` the one that asked for it (``RETR a.txt``), ``mode``
    ``binary`` or ``ascii``, and whether it ``complete``\\ d."""

    command: str
    size: int
    mode: str = "binary"
    complete: bool = True
    KIND: ClassVar[str] = "transfer"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"size"})

    @classmethod
    def of(cls, command: str, head: bytes, size: int, mode: str = "binary", complete: bool = True) -> FtpTransfer:
        return cls(raw=bytes(head[:PREVIEW]), command=command, size=size, mode=mode, complete=complete)

    def summary(self) -> str:
        state = "" if self.complete else ", cut short"
        preview = f" {escape_bytes(self.raw, 60)}" if self.raw else ""
        return f"{self.command}: {self.size} bytes ({self.mode}{state}){preview}"

    def fields(self) -> dict[str, Any]:
        return {"command": self.command, "size": self.size, "mode": self.mode, "complete": self.complete,
                "preview": escape_bytes(self.raw, PREVIEW)}


class FtpDataConversation(Conversation):
    """A data connection: bytes without framing (the lab records a
    transfer as one :class:`FtpTransfer`, not chunk by chunk)."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return DataDecoder()
