"""POP3 on the wire (RFC 1939, 2449): commands and responses.

A command is one line, a keyword and arguments.  A response is a status
line (``+OK`` or ``-ERR``), and for some commands on success a multi-line
body ending with a line holding a single dot.  Whether a body follows
depends on the command (RETR, TOP, CAPA always; LIST and UIDL without an
argument), so the client's codec follows what its side sends: through
:meth:`ClientCodec.encode` and ``sent``.

Tests: tests/protocols/test_pop3.py
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import Codec, Message, Role, Transport, escape_bytes
from lab.protocols._framing import LineBuffer
from lab.protocols._mailstore import header_fields

__all__ = [
    "MAX_BODY",
    "MAX_COMMAND_LINE",
    "MAX_LINE",
    "ClientCodec",
    "Pop3Command",
    "Pop3Reply",
    "ServerCodec",
    "make_codec",
    "parse_command",
    "wants_body",
]

MAX_COMMAND_LINE = 255  # RFC 2449 §4, CRLF included
MAX_LINE = 4096  # the hard cap on any line: beyond it the codec fails
MAX_RESPONSE_LINE = 512  # RFC 2449 §4, for status lines; beyond it the codec fails
MAX_BODY = 64 * 1024 * 1024  # a client stops reading a multi-line body beyond this
MAX_ARG = 40  # RFC 2449 §4

_TIMESTAMP = re.compile(r"<[^<>@\s]+@[^<>\s]+>")
_RESP_CODE = re.compile(r"\[([A-Za-z0-9/-]+)\]")


def wants_body(verb: str, args: tuple[str, ...]) -> bool:
    """Does a positive reply to this command carry a multi-line body?"""
    return verb in ("RETR", "TOP", "CAPA") or (verb in ("LIST", "UIDL", "AUTH") and not args)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Command(Message):
    """A command line: ``verb`` upper-cased and its ``args``.  A line that
    breaks a rule still decodes, with ``problem`` saying which: the server
    answers it with ``-ERR``."""

    verb: str
    args: tuple[str, ...] = ()
    problem: str = ""

    @property
    def kind(self) -> str:  # type: ignore[override]  # hooks select a verb: srv.on("RETR", fn)
        return self.verb or "command"

    @classmethod
    def of(cls, verb: str, *args: str | int) -> Pop3Command:
        line = " ".join([verb, *(str(a) for a in args)])
        if any(c in line for c in "\r\n\x00") or not line.isascii():
            raise LocalProtocolError(f"pop3: cannot send command {line!r}")
        return parse_command(line.encode("ascii") + b"\r\n")

    def summary(self) -> str:
        if self.problem:
            return f"bad command line ({self.problem}): {escape_bytes(self.raw, 60)}"
        if self.verb == "PASS":
            return "PASS (password hidden)"
        return " ".join([self.verb, *self.args])

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "args": list(self.args)}
        if self.verb == "PASS":
            out["args"] = ["***"]
        if self.problem:
            out["problem"] = self.problem
        return out


def parse_command(raw: bytes) -> Pop3Command:
    """Decode one command line (terminator included, if any)."""
    body = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
    problem = ""
    if len(body) + 2 > MAX_COMMAND_LINE:
        problem = f"line longer than {MAX_COMMAND_LINE} octets"
    elif b"\x00" in body:
        problem = "NUL byte in command"
    elif any(b >= 0x80 or (b < 0x20 and b != 0x09) for b in body):
        problem = "command is not printable ASCII"
    elif not raw.endswith(b"\n"):
        problem = "no line ending"
    text = body.decode("ascii", "replace")
    verb, _, rest = text.partition(" ")
    # PASS takes the rest of the line: a password may hold spaces (RFC 1939 §7)
    args = tuple([rest] if verb.upper() == "PASS" and rest else rest.split(" ") if rest else [])
    if not problem and any(len(a) > MAX_ARG for a in args) and verb.upper() != "PASS":
        problem = f"argument longer than {MAX_ARG} characters"
    if not problem and (not verb or not verb.isalpha() or len(verb) > 4):
        problem = "a command is a keyword of 3 or 4 letters"
    if problem:
        return Pop3Command(raw=raw, verb=verb.upper()[:8] if verb.isascii() and verb.isalpha() else "",
                           problem=problem)
    return Pop3Command(raw=raw, verb=verb.upper(), args=args)


def stuff(body: bytes) -> bytes:
    """A multi-line body on the wire: CRLF line ends, leading dots doubled,
    the ``.CRLF`` end line (the mail store's canonical form, dot-stuffed)."""
    return _stuff_lines(_crlf_lines(body))


def _crlf_lines(body: bytes) -> bytes:
    """``body`` with CRLF line ends and a final CRLF."""
    # the store keeps CRLF already: skip the regex when no bare LF is left
    text = body if body.count(b"\n") == body.count(b"\r\n") else re.sub(rb"\r?\n", b"\r\n", body)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def _stuff_lines(text: bytes) -> bytes:
    if text.startswith(b".") or b"\n." in text:
        text = re.sub(rb"(?m)^\.", b"..", text)
    return text + b".\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Reply(Message):
    """A response: ``ok`` (``+OK``) or not (``-ERR``), the rest of the
    status line in ``info``, and for multi-line responses the ``body`` (dot-unstuffed,
    CRLF line ends).  ``continuation`` marks a SASL ``+`` line."""

    ok: bool
    info: str = ""
    body: bytes | None = None
    continuation: bool = False
    reply_to: str = ""  # the command answered, when the client's codec knows it
    kind: ClassVar[str] = "reply"
    volatile: ClassVar[frozenset[str]] = frozenset({"info", "timestamp", "body"})

    @classmethod
    def of(cls, ok: bool, text: str = "", body: bytes | None = None, *, reply_to: str = "") -> Pop3Reply:
        if any(c in text for c in "\r\n") or not text.isascii():
            raise LocalProtocolError(f"pop3: cannot send status text {text!r}")
        status = ("+OK" if ok else "-ERR") + (f" {text}" if text else "")
        raw = status.encode("ascii") + b"\r\n"
        if body is not None:
            body = _crlf_lines(body)  # what the client gets back once it undoes the stuffing
            raw += _stuff_lines(body)
        return cls(raw=raw, ok=ok, info=text, body=body, reply_to=reply_to)

    @property
    def response_code(self) -> str | None:
        """The RFC 2449 response code (``IN-USE``, ``AUTH``), if any.  Not
        ``code``: that name means a numeric reply code to patterns."""
        m = _RESP_CODE.match(self.info)
        return m.group(1).upper() if m else None

    @property
    def timestamp(self) -> str | None:
        """The APOP timestamp in a greeting (``<pid.clock@host>``)."""
        m = _TIMESTAMP.search(self.info)
        return m.group(0) if m else None

    @property
    def lines(self) -> list[str]:
        """The body as text lines (empty when there is no body)."""
        if not self.body:
            return []
        return self.body.decode("utf-8", "replace").split("\r\n")[:-1]

    def summary(self) -> str:
        status = "+" if self.continuation else "+OK" if self.ok else "-ERR"
        text = f"{status} {self.info}".rstrip()
        if self.body is not None:
            count = self.body.count(b"\r\n")  # not .lines: a RETR body may be megabytes
            if self.reply_to in ("RETR", "TOP"):
                subject = next((v for k, v in header_fields(self.body) if k.lower() == "subject"), None)
                what = "message" if self.reply_to == "RETR" else "top of message"
                text += f" [{what}, {count} lines" + (f', Subject "{subject[:60]}"]' if subject else "]")
            elif count <= 6 and len(self.body) < 240 and all(len(x) < 40 for x in self.lines):
                text += " [" + " | ".join(self.lines) + "]"
            else:
                text += f" [{count} lines, {len(self.body)} bytes]"
        return text

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "reply_to": self.reply_to, "info": self.info,
                               "response_code": self.response_code, "timestamp": self.timestamp}
        if self.body is not None:
            out["lines"] = self.body.count(b"\r\n")
            out["body"] = self.body[:4096].decode("utf-8", "replace")
        return out



# -- the server's codec ------------------------------------------------------


class ServerCodec(LineBuffer):
    """What a POP3 server receives: :class:`Pop3Command` lines (LF alone
    accepted; a line over :data:`MAX_LINE` octets spends the codec)."""

    counts_terminator = True
    unit = "octets"

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        raw = self.next_line(MAX_LINE, "command line", partial_at_eof=True)
        return None if raw is None else parse_command(raw)


# -- the client's codec -------------------------------------------------------


class ClientCodec(LineBuffer):
    """What a POP3 client receives: :class:`Pop3Reply` messages.  It knows
    which replies carry a body from the commands its side sends; with
    nothing sent (the greeting) a reply is one line."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        super().__init__()
        self.max_body = max_body
        # (verb, body follows?) per command sent, the greeting first
        self._pending: collections.deque[tuple[str, bool]] = collections.deque([("", False)], maxlen=10_000)
        self._sent = ServerCodec()

    def encode(self, msg: Message) -> bytes:
        if isinstance(msg, Pop3Command):
            self._sent_command(msg)
            return msg.raw
        self.sent(msg.raw)
        return msg.raw

    def _sent_command(self, cmd: Pop3Command) -> None:
        self._pending.append((cmd.verb, not cmd.problem and wants_body(cmd.verb, cmd.args)))

    def sent(self, data: bytes) -> None:
        """Our side sent bytes without :meth:`encode`: note their commands."""
        if not data:
            return  # nothing sent (b"" would read as the end of the stream)
        try:
            for cmd in self._sent.feed(data):
                assert isinstance(cmd, Pop3Command)
                self._sent_command(cmd)
        except RemoteProtocolError:
            self._sent = ServerCodec()

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        buf = self._buf
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > MAX_RESPONSE_LINE:
                raise self._spend(f"status line longer than {MAX_RESPONSE_LINE} octets")
            if self._eof and buf:
                raise self._spend(f"server closed inside a response: {escape_bytes(bytes(buf), 60)}")
            return None
        if end + 1 > MAX_RESPONSE_LINE:
            raise self._spend(f"status line longer than {MAX_RESPONSE_LINE} octets")
        status = bytes(buf[:end]).rstrip(b"\r")
        word, _, rest = status.partition(b" ")
        if word not in (b"+OK", b"-ERR", b"+"):
            raise self._spend(f"not a POP3 status line: {escape_bytes(bytes(buf[: end + 1]), 60)}")
        ok = word != b"-ERR"
        text = rest.decode("utf-8", "replace")
        verb, multi = self._pending[0] if self._pending else ("", False)
        if not (ok and word == b"+OK" and multi):
            if self._pending and word != b"+":
                self._pending.popleft()
            raw = bytes(buf[: end + 1])
            del buf[: end + 1]
            self._scan = 0
            return Pop3Reply(raw=raw, ok=ok, info=text, continuation=word == b"+", reply_to=verb)
        # a body follows: find the line holding a single dot
        start = end + 1
        pos = max(start, self._scan)
        while True:
            stop = buf.find(b"\n", pos)
            if stop < 0:
                if len(buf) - start > self.max_body:
                    raise self._spend(f"multi-line response longer than {self.max_body} octets")
                if self._eof:
                    raise self._spend("server closed inside a multi-line response")
                self._scan = pos
                return None
            line = buf[pos : stop + 1]
            if line in (b".\r\n", b".\n"):
                break
            pos = stop + 1
        self._pending.popleft()
        raw = bytes(buf[: stop + 1])
        body_raw = raw[start:]
        del buf[: stop + 1]
        self._scan = 0
        body = re.sub(rb"(?m)^\.", b"", body_raw[: -len(line)]) if body_raw != line else b""
        return Pop3Reply(raw=raw, ok=True, info=text, body=body, reply_to=verb)


def make_codec(role: Role, transport: Transport) -> Codec:
    """Server: command lines.  Client: responses, with their bodies."""
    return ServerCodec() if role is Role.SERVER else ClientCodec()
