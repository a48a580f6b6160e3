"""POP3 messages (RFC 1939, 2449): command lines, SASL response lines and
responses, and how a response's body goes on the wire.

A command is one line, a keyword and arguments.  A response is a status
line (``+OK`` or ``-ERR``) and, for some commands on success, a
multi-line body ending with a line holding a single dot.  A body up to
:data:`~lab.protocols._framing.STREAM_ABOVE` bytes is part of its
:class:`Pop3Reply`; a longer one follows its reply (marked ``streamed``)
as :class:`~lab.protocols._framing.BodyPart` messages and a
:class:`~lab.protocols._framing.BodyEnd`.

Tests: tests/protocols/test_pop3.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError
from lab.protocols._base import MASK, Message, Spans, escape_bytes
from lab.protocols._framing import STREAM_ABOVE, BodyEnd, BodyPart
from lab.services.mail import header_fields

__all__ = [
    "MAX_ARG",
    "MAX_COMMAND_LINE",
    "Pop3BodyEnd",
    "Pop3BodyPart",
    "Pop3Command",
    "Pop3Reply",
    "Pop3SaslResponse",
    "parse_command",
    "reply_in_parts",
    "wants_body",
]

MAX_COMMAND_LINE = 255  # RFC 2449 §4, CRLF included
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
    EDITABLE = ("verb", "args")

    verb: str
    args: tuple[str, ...] = ()
    problem: str = ""
    KIND: ClassVar[str] = "command"
    SECRET: ClassVar[bool] = True  # PASS, APOP's digest, AUTH's initial response

    def secret_spans(self) -> Spans:
        verb = self.raw[:5].upper()
        if verb not in (b"PASS ", b"APOP ", b"AUTH "):
            return ()
        raw = self.raw
        end = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
        if verb == b"PASS ":
            return ((5, end),) if end > 5 else ()  # the rest of the line, even a bad one
        # APOP name DIGEST, AUTH MECH INITIAL: the last of three words
        words = raw[:end].split(b" ")
        if len(words) < 3:
            return ()
        return ((end - len(words[-1]), end),)

    @property
    def kind(self) -> str:
        return self.verb or self.KIND  # hooks select a verb: srv.on("RETR", fn)

    @classmethod
    def of(cls, verb: str, *args: str | int) -> Pop3Command:
        line = " ".join([verb, *(str(a) for a in args)])
        if any(c in line for c in "\r\n\x00") or not line.isascii():
            raise LocalProtocolError(f"pop3: cannot send command {line!r}")
        return parse_command(line.encode("ascii") + b"\r\n")

    def edited(self, **fields: Any) -> Pop3Command:
        self._editable(fields)
        args = fields.get("args", self.args)
        return Pop3Command.of(str(fields.get("verb", self.verb)), *(args.split() if isinstance(args, str) else args))

    def summary(self) -> str:
        if self.problem:
            return f"bad command line ({self.problem}): {escape_bytes(self.raw, 60)}"
        if self.verb == "PASS":
            return f"PASS {MASK}  (sent in cleartext)"
        if self.verb == "APOP" and len(self.args) == 2:
            return f"APOP {self.args[0]} {MASK}  (digest, replayable)"
        if self.verb == "AUTH" and len(self.args) == 2:
            return f"AUTH {self.args[0]} {MASK}  (sent in cleartext, base64)"
        return " ".join([self.verb, *self.args])

    def revealed(self) -> str:
        if self.problem or not self.secret_spans():
            return self.summary()
        return " ".join([self.verb, *self.args]) + "  (sent in cleartext)"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "args": list(self.args)}
        if self.verb == "PASS":
            out["args"] = ["***"]
        elif self.verb in ("APOP", "AUTH") and len(self.args) == 2:
            out["args"] = [self.args[0], "***"]
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3SaslResponse(Message):
    """A line answering the server's ``+`` challenge during AUTH (RFC
    5034): base64 credentials, or ``*`` to cancel; hidden in summaries."""

    KIND: ClassVar[str] = "sasl"
    SECRET: ClassVar[bool] = True

    @property
    def cancel(self) -> bool:
        return self.raw.strip() == b"*"

    def secret_spans(self) -> Spans:
        end = len(self.raw.rstrip(b"\r\n"))
        return () if self.cancel or not end else ((0, end),)

    def summary(self) -> str:
        return "* (SASL exchange cancelled)" if self.cancel else f"SASL response {MASK}  (sent in cleartext, base64)"

    def revealed(self) -> str:
        if self.cancel:
            return self.summary()
        line = escape_bytes(self.raw.rstrip(b"\r\n"))
        return f"SASL response {line}  (sent in cleartext, base64)"

    def fields(self) -> dict[str, Any]:
        return {"cancel": self.cancel}


def _crlf_lines(body: bytes) -> bytes:
    """``body`` with CRLF line ends and a final CRLF."""
    # the store keeps CRLF already: skip the regex when no bare LF is left
    text = body if body.count(b"\n") == body.count(b"\r\n") else re.sub(rb"\r?\n", b"\r\n", body)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def _stuffed(lines: bytes) -> bytes:
    """CRLF-ended lines with their leading dots doubled."""
    if lines.startswith(b".") or b"\n." in lines:
        return re.sub(rb"(?m)^\.", b"..", lines)
    return lines


def _status(ok: bool, text: str) -> bytes:
    if any(c in text for c in "\r\n") or not text.isascii():
        raise LocalProtocolError(f"pop3: cannot send status text {text!r}")
    return (("+OK" if ok else "-ERR") + (f" {text}" if text else "")).encode("ascii") + b"\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Reply(Message):
    """A response: ``ok`` (``+OK``) or not (``-ERR``), the rest of the
    status line in ``info``, and for multi-line responses the ``body``
    (dot-unstuffed, CRLF line ends).  A body too long to be one message
    follows in parts: the reply is then only its status line, with
    ``streamed`` set and no ``body``.  ``continuation`` marks a SASL
    ``+`` line; ``reply_to`` is the verb answered."""

    ok: bool
    info: str = ""
    body: bytes | None = None
    continuation: bool = False
    reply_to: str = ""
    streamed: bool = False
    KIND: ClassVar[str] = "reply"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"info", "timestamp", "body"})

    @classmethod
    def of(cls, ok: bool, text: str = "", body: bytes | None = None, *, reply_to: str = "") -> Pop3Reply:
        """A whole reply (for a body of any size: :func:`reply_in_parts`
        sends a long one in parts)."""
        raw = _status(ok, text)
        if body is not None:
            body = _crlf_lines(body)  # what the client gets back once it undoes the stuffing
            raw += _stuffed(body) + b".\r\n"
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

    def _what(self) -> str:
        return _WHAT.get(self.reply_to, "")

    def summary(self) -> str:
        status = "+" if self.continuation else "+OK" if self.ok else "-ERR"
        text = f"{status} {self.info}".rstrip()
        if self.streamed:
            return text + f" [{self._what() or 'body'} follows in parts]"
        if self.body is not None:
            count = self.body.count(b"\r\n")  # not .lines: a body may be large
            if what := self._what():
                subject = next((v for k, v in header_fields(self.body) if k.lower() == "subject"), None)
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
        if self.streamed:
            out["streamed"] = True
        return out


_WHAT = {"RETR": "message", "TOP": "top of message"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3BodyPart(BodyPart):
    """A piece of a body too long to be part of its :class:`Pop3Reply`;
    ``reply_to`` is the verb answered.  The first piece of a message
    names it by its Subject."""

    reply_to: str = ""

    def summary(self) -> str:
        what = _WHAT.get(self.reply_to, "body")
        if self.offset == 0 and self.reply_to in _WHAT:
            subject = next((v for k, v in header_fields(self.content) if k.lower() == "subject"), None)
            return (f"{what} (in parts), first {len(self.content)} bytes"
                    + (f', Subject "{subject[:60]}"' if subject is not None else ""))
        return f"{what} part, {len(self.content)} bytes from {self.offset}"

    def fields(self) -> dict[str, Any]:
        return {"reply_to": self.reply_to, **BodyPart.fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3BodyEnd(BodyEnd):
    """The dot line ending a body that came in parts; ``size`` is the
    whole body's length."""

    reply_to: str = ""

    def summary(self) -> str:
        return f"end of {_WHAT.get(self.reply_to, 'body')}, {self.size} bytes"

    def fields(self) -> dict[str, Any]:
        return {"reply_to": self.reply_to, **BodyEnd.fields(self)}


def reply_in_parts(text: str, body: bytes, *, reply_to: str = "",
                   part_size: int = STREAM_ABOVE) -> Iterator[Message]:
    """A ``+OK`` reply with a body, as messages to send one by one: the
    whole :class:`Pop3Reply` when the body is short, else its status line
    (``streamed``), parts of whole lines about ``part_size`` bytes each
    and the closing dot line, so no message holds the whole body."""
    if len(body) <= part_size:
        yield Pop3Reply.of(True, text, body, reply_to=reply_to)
        return
    yield Pop3Reply(raw=_status(True, text), ok=True, info=text, reply_to=reply_to, streamed=True)
    pos = offset = 0
    while pos < len(body):
        # cut after a LF: a part holds whole lines, its CRLFs intact
        cut = body.find(b"\n", pos + part_size - 1)
        end = len(body) if cut < 0 else cut + 1
        content = _crlf_lines(body[pos:end])
        yield Pop3BodyPart(raw=_stuffed(content), content=content, offset=offset, reply_to=reply_to)
        offset += len(content)
        pos = end
    yield Pop3BodyEnd(raw=b".\r\n", size=offset, reply_to=reply_to)
