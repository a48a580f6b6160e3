"""NNTP on the wire (RFC 3977 §3): commands, responses, multi-line blocks.

Sans-IO codecs for both roles.  The server's codec reads command lines and,
after it has answered ``POST`` with 340, the article that follows (a
dot-stuffed block, RFC 3977 §3.1.1).  The client's codec reads responses;
whether a response carries a block depends on its code *and* on the
command it answers (211 is one line after GROUP, a list after LISTGROUP),
so the client codec remembers what was asked, in order: commands it
encodes, and raw bytes the client sent (:meth:`ClientCodec.sent`).

Malformed command lines that fit the caps (too long for RFC 3977's 512
octets, a NUL byte, not UTF-8, empty) are decoded as :class:`BadCommand`
so that the server can answer 500/501 and go on, as INN does.  Only what
cannot be framed at all is a :class:`RemoteProtocolError`: a line of more
than :data:`MAX_LINE_BUFFER` bytes without a line feed, an article beyond
:data:`MAX_ARTICLE_WIRE`, or the stream ending inside a line or article.

Tests: tests/protocols/test_nntp.py
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import Message, escape_bytes
from lab.protocols._framing import LineBuffer

__all__ = [
    "GREETING",
    "MAX_ARTICLE_WIRE",
    "MAX_BLOCK",
    "MAX_COMMAND",
    "MAX_LINE_BUFFER",
    "ArticleBlock",
    "BadCommand",
    "ClientCodec",
    "Command",
    "Response",
    "ServerCodec",
    "is_multiline",
    "stuff",
    "unstuff_line",
]

MAX_COMMAND = 512  # RFC 3977 §3.1: a command line, CRLF included
MAX_LINE_BUFFER = 4096  # beyond this without LF the stream cannot be resynchronised
MAX_ARTICLE_WIRE = 4 * 1024 * 1024  # the most a POST may send; servers cap lower
MAX_STATUS = 4096  # RFC 3977 says 512; be lenient with servers that say more
MAX_BLOCK = 32 * 1024 * 1024  # the most a client reads in one multi-line response
MAX_DATA_LINE = 1024 * 1024

# codes whose responses always carry a block (RFC 3977 §3.2, RFC 2980 XGTITLE)
_MULTILINE = frozenset({100, 101, 215, 220, 221, 222, 224, 225, 230, 231, 282})
_TERMINATORS = (b".\r\n", b".\n")
_SECRET_ARGS = {("AUTHINFO", "PASS")}
GREETING = "(greeting)"  # what the first response answers


def is_multiline(code: int, verb: str | None) -> bool:
    """Does response ``code`` to command ``verb`` carry a block?"""
    if code == 211:
        return verb == "LISTGROUP"
    return code in _MULTILINE


def stuff(content: bytes) -> bytes:
    """``content`` as a dot-stuffed block with its terminating ``.`` line;
    lines end in CRLF (a bare LF becomes CRLF)."""
    if not content:
        return b".\r\n"
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        line = line[:-1] if line.endswith(b"\r") else line
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def unstuff_line(line: bytes) -> bytes:
    """One block line as content: dot removed, ending made CRLF."""
    body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return (body[1:] if body.startswith(b".") else body) + b"\r\n"


def _lines_of(data: bytes | None) -> list[str]:
    if not data:
        return []
    return data.decode("utf-8", "replace").split("\r\n")[:-1]


# -- messages -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Message):
    """A command line: ``verb`` in upper case, then its arguments."""

    verb: str
    args: tuple[str, ...] = ()

    @property
    def kind(self) -> str:  # type: ignore[override]  # hooks match the verb: srv.on("POST", fn)
        return self.verb

    @classmethod
    def of(cls, verb: str, *args: str | int) -> Command:
        """The command ``verb args...``; :class:`LocalProtocolError` if it
        would break RFC 3977 §3.1 (length, line breaks, NUL, empty words)."""
        words = [verb.upper(), *(str(a) for a in args)]
        for word in words:
            if not word or any(c in word for c in " \t\r\n\0"):
                raise LocalProtocolError(f"nntp: cannot send argument {word!r}",
                                         hint="arguments are single words without spaces or line breaks")
        raw = " ".join(words).encode("utf-8") + b"\r\n"
        if len(raw) > MAX_COMMAND:
            raise LocalProtocolError(f"nntp: command of {len(raw)} octets; RFC 3977 allows {MAX_COMMAND}")
        return cls(raw=raw, verb=words[0], args=tuple(words[1:]))

    def _shown_args(self) -> tuple[str, ...]:
        if (self.verb, self.args[:1] and self.args[0].upper()) in _SECRET_ARGS:
            return (self.args[0], "****")
        return self.args

    def summary(self) -> str:
        return " ".join((self.verb, *self._shown_args()))

    def fields(self) -> dict[str, Any]:
        return {"verb": self.verb, "args": list(self._shown_args())}


@dataclass(frozen=True, slots=True, kw_only=True)
class BadCommand(Message):
    """A command line the server cannot take, and why (answered with 500/501)."""

    reason: str
    kind: ClassVar[str] = "bad-command"

    def summary(self) -> str:
        return f"bad command ({self.reason}): {escape_bytes(self.raw, 60)}"

    def fields(self) -> dict[str, Any]:
        return {"reason": self.reason, "length": len(self.raw)}


def _header_fields(content: bytes) -> list[list[str]]:
    head = content.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    out: list[list[str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1][1] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            out.append([name, value.strip()])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleBlock(Message):
    """An article sent after ``POST``'s 340: ``content`` is the article
    itself (CRLF lines, dot-stuffing removed); ``raw`` is the block."""

    content: bytes
    kind: ClassVar[str] = "article"

    @classmethod
    def of(cls, content: bytes | str) -> ArticleBlock:
        data = content.encode("utf-8") if isinstance(content, str) else content
        raw = stuff(data)
        return cls(raw=raw, content=b"".join(unstuff_line(x) for x in _split_block(raw)))

    def header(self, name: str) -> str | None:
        return next((v for n, v in _header_fields(self.content) if n.lower() == name.lower()), None)

    def summary(self) -> str:
        subject = self.header("Subject")
        groups = self.header("Newsgroups")
        return (f"article {subject!r} to {groups or '?'}" if subject is not None
                else "article") + f" ({len(self.content)} bytes)"

    def fields(self) -> dict[str, Any]:
        body = self.content.partition(b"\r\n\r\n")[2]
        return {"headers": _header_fields(self.content), "bytes": len(self.content),
                "body_lines": body.count(b"\r\n")}


def _split_block(raw: bytes) -> list[bytes]:
    """The data lines of a block (terminator excluded), endings kept."""
    lines = raw.split(b"\n")[:-2]  # drop what follows the last LF and the "." line
    return [line + b"\n" for line in lines]


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Message):
    """A status line (``code``, ``text``) and, for multi-line responses,
    the block's content in ``data`` (CRLF lines, unstuffed); ``None`` for
    single-line responses."""

    code: int
    text: str = ""
    data: bytes | None = None
    answers: str = ""  # the verb this answers, as the client codec saw it
    kind: ClassVar[str] = "response"

    @classmethod
    def of(cls, code: int, text: str = "", data: bytes | list[str] | None = None) -> Response:
        """A response; ``data`` (bytes or lines) makes it multi-line."""
        if not 100 <= code <= 599:
            raise LocalProtocolError(f"nntp: response code {code} is not 1xx-5xx")
        if any(c in text for c in "\r\n\0"):
            raise LocalProtocolError("nntp: a status line cannot hold CR, LF or NUL")
        status = (f"{code} {text}" if text else str(code)).encode("utf-8") + b"\r\n"
        if data is None:
            return response_class(code)(raw=status, code=code, text=text)
        if isinstance(data, list):
            data = "".join(line + "\r\n" for line in data).encode("utf-8")
        block = stuff(data)
        content = b"".join(unstuff_line(x) for x in _split_block(block))
        return response_class(code)(raw=status + block, code=code, text=text, data=content)

    @property
    def lines(self) -> list[str]:
        """The block's lines as text (empty for a single-line response)."""
        return _lines_of(self.data)

    @property
    def ok(self) -> bool:
        return self.code < 400

    def summary(self) -> str:
        status = f"{self.code} {self.text}".rstrip()
        if self.data is None:
            return status
        count = self.data.count(b"\r\n")
        return f"{status} (+{count} line{'s' if count != 1 else ''})"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "text": self.text}
        if self.answers:
            out["answers"] = self.answers
        if self.data is not None:
            lines = self.lines
            out["lines"] = lines[:50] + ([f"... {len(lines) - 50} more"] if len(lines) > 50 else [])
            out["bytes"] = len(self.data)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DateResponse(Response):
    """111: the server's clock."""

    volatile: ClassVar[frozenset[str]] = frozenset({"text"})


@dataclass(frozen=True, slots=True, kw_only=True)
class IdResponse(Response):
    """A response naming an article by number and Message-ID (223, 240,
    340), which the server may have made up."""

    volatile: ClassVar[frozenset[str]] = frozenset({"text"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleResponse(Response):
    """Article text, overview or new-news lists: they carry server-made
    dates, Message-IDs and paths (and ``lines`` and ``bytes`` show them)."""

    volatile: ClassVar[frozenset[str]] = frozenset({"text", "data", "lines", "bytes"})


_CLASSES: dict[int, type[Response]] = {
    111: DateResponse, 223: IdResponse, 240: IdResponse, 340: IdResponse,
    220: ArticleResponse, 221: ArticleResponse, 222: ArticleResponse,
    224: ArticleResponse, 225: ArticleResponse, 230: ArticleResponse,
}


def response_class(code: int) -> type[Response]:
    return _CLASSES.get(code, Response)


def parse_status(raw: bytes) -> tuple[int, str]:
    """``ddd[ text]`` -> (code, text); :class:`RemoteProtocolError` otherwise."""
    line = raw.rstrip(b"\r\n")
    code_b, text_b = line[:3], line[3:]
    if len(code_b) != 3 or not code_b.isdigit() or code_b[:1] not in b"12345" \
            or (text_b and text_b[:1] not in b" \t"):
        raise RemoteProtocolError(f"not an NNTP status line: {escape_bytes(raw, 60)}",
                                  hint="is this an NNTP server?")
    return int(code_b), text_b.strip().decode("utf-8", "replace")


# -- codecs ---------------------------------------------------------------------------


class _Mode(enum.Enum):
    COMMAND = "command"
    POST_SENT = "awaiting the answer to POST"
    ARTICLE = "reading an article"


class ServerCodec(LineBuffer):
    """What an NNTP server receives: :class:`Command` and
    :class:`BadCommand` lines, and after its 340 answer to POST one
    :class:`ArticleBlock`.

    The codec learns what the server answered from :meth:`encode`: after a
    decoded POST it reads nothing as a command until the answer is encoded
    (340: the article follows; anything else: back to commands).  Bytes
    that arrive before that answer were sent before the client could see
    it; they are taken as the article, as INN does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mode = _Mode.COMMAND
        self._parts: list[bytes] = []
        self._size = 0
        self._unanswered: deque[str] = deque()  # verbs decoded, answers not yet encoded
        self._early = False  # an article is arriving before POST was answered
        self._orphan = False  # ... and POST was refused: no answer will come

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        while True:
            if self.mode is _Mode.COMMAND:
                line = self.next_line(MAX_LINE_BUFFER, "command line")
            else:
                line = self.next_line(MAX_ARTICLE_WIRE, "article line")
            if line is None:
                self._at_end()
                return None
            if self.mode is _Mode.COMMAND:
                msg = parse_command(line)
                if isinstance(msg, Command):
                    self._unanswered.append(msg.verb)
                    if msg.verb == "POST":
                        self.mode = _Mode.POST_SENT
                else:
                    self._unanswered.append("")
                return msg
            if self.mode is _Mode.POST_SENT:
                self.mode, self._early = _Mode.ARTICLE, True
            article = self._article_line(line)
            if article is not None:
                return article

    def _article_line(self, line: bytes) -> ArticleBlock | None:
        self._parts.append(line)
        self._size += len(line)
        if self._size > MAX_ARTICLE_WIRE:
            self._fail(f"article longer than {MAX_ARTICLE_WIRE} bytes")
        if line not in _TERMINATORS:
            return None
        raw = b"".join(self._parts)
        content = b"".join(unstuff_line(x) for x in self._parts[:-1])
        self._parts, self._size, self.mode = [], 0, _Mode.COMMAND
        if not self._orphan:
            self._unanswered.append("ARTICLE")
        self._early = self._orphan = False
        return ArticleBlock(raw=raw, content=content)

    def _at_end(self) -> None:
        if not self._eof:
            return
        if self._parts or (self.mode is _Mode.ARTICLE and self._buf):
            size = self._size + len(self._buf)
            self._fail(f"the connection closed inside an article ({size} bytes discarded)")
        if self._buf:
            self._fail("the stream ended inside a command line (no CRLF)")

    def encode(self, msg: Message) -> bytes:
        if isinstance(msg, Response) and self._unanswered:
            verb = self._unanswered.popleft()
            if verb == "POST":
                if self.mode is _Mode.POST_SENT:
                    self.mode = _Mode.ARTICLE if msg.code == 340 else _Mode.COMMAND
                elif self._early and msg.code != 340:
                    self._orphan = True  # the article still arriving gets no answer
                elif msg.code != 340 and self._unanswered and self._unanswered[0] == "ARTICLE":
                    self._unanswered.popleft()  # it already arrived; nobody answers it
        return msg.raw


def parse_command(raw: bytes) -> Command | BadCommand:
    """One command line (terminator included) as a :class:`Command`, or
    a :class:`BadCommand` saying what is wrong with it."""
    body = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
    if len(raw) > MAX_COMMAND:
        return BadCommand(raw=raw, reason=f"line longer than {MAX_COMMAND} octets")
    if b"\0" in body:
        return BadCommand(raw=raw, reason="NUL byte in the command line")
    if b"\r" in body:
        return BadCommand(raw=raw, reason="CR inside the command line")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return BadCommand(raw=raw, reason="the command line is not UTF-8")
    words = text.split()
    if not words:
        return BadCommand(raw=raw, reason="empty command line")
    if not all(c.isprintable() for c in text.replace("\t", " ")):
        return BadCommand(raw=raw, reason="control character in the command line")
    return Command(raw=raw, verb=words[0].upper(), args=tuple(words[1:]))


class ClientCodec(LineBuffer):
    """What an NNTP client receives: :class:`Response` messages, with the
    block for multi-line ones.

    It keeps, in order, the verbs it was asked to send (through
    :meth:`encode` and :meth:`sent`); the first response answers the
    server's greeting.  A response that arrives when nothing is pending is
    read by its code alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self._asked: deque[str] = deque([GREETING])
        self._status: tuple[bytes, int, str, str] | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._post_accepted = False  # a 340 arrived: the next block we send is the article
        self._out = bytearray()  # raw bytes sent, not yet a whole line
        self._out_article = False

    @property
    def pending(self) -> list[str]:
        """Verbs sent and not yet answered, oldest first."""
        return list(self._asked)

    def encode(self, msg: Message) -> bytes:
        if isinstance(msg, Command):
            self._asked.append(msg.verb)
        elif isinstance(msg, ArticleBlock):
            self._asked.append("ARTICLE")
            self._post_accepted = False
        return msg.raw

    def sent(self, data: bytes) -> None:
        """Account for bytes the client sent without :meth:`encode`."""
        self._out += data
        while (end := self._out.find(b"\n")) >= 0:
            line = bytes(self._out[: end + 1])
            del self._out[: end + 1]
            if self._out_article or self._post_accepted:
                self._out_article, self._post_accepted = True, False
                if line in _TERMINATORS:
                    self._out_article = False
                    self._asked.append("ARTICLE")
                continue
            words = line.split()
            self._asked.append(words[0].decode("utf-8", "replace").upper() if words else "")
        if len(self._out) > MAX_LINE_BUFFER and not self._out_article:
            self._out.clear()

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        while True:
            if self._status is None:
                line = self.next_line(MAX_STATUS, "status line")
                if line is None:
                    self._at_end()
                    return None
                try:
                    code, text = parse_status(line)
                except RemoteProtocolError as exc:
                    self._fail(exc.message, exc.hint)
                    raise
                verb = self._asked.popleft() if self._asked else None
                if code == 340 and verb in ("POST", None):
                    self._post_accepted = True
                if not is_multiline(code, verb):
                    return response_class(code)(raw=line, code=code, text=text, answers=verb or "")
                self._status = (line, code, text, verb or "")
                continue
            line = self.next_line(MAX_DATA_LINE, "response line")
            if line is None:
                self._at_end()
                return None
            self._parts.append(line)
            self._size += len(line)
            if self._size > MAX_BLOCK:
                self._fail(f"multi-line response longer than {MAX_BLOCK} bytes")
            if line in _TERMINATORS:
                status, code, text, verb = self._status
                content = b"".join(unstuff_line(x) for x in self._parts[:-1])
                raw = status + b"".join(self._parts)
                self._status, self._parts, self._size = None, [], 0
                return response_class(code)(raw=raw, code=code, text=text, data=content, answers=verb)

    def _at_end(self) -> None:
        if not self._eof:
            return
        if self._status is not None:
            self._fail(f"the connection closed inside a {self._status[1]} response's data")
        if self._buf:
            self._fail("the stream ended inside a status line (no CRLF)")
