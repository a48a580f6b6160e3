"""NNTP on the wire (RFC 3977 §3): commands, responses, multi-line blocks,
and the one conversation both sides share.

The client sends command lines and, once the server has answered ``POST``
with 340, the article (a dot-stuffed block, RFC 3977 §3.1.1); the server
sends responses, some with a block.  :class:`NntpConversation` keeps what
decoding either side needs, updated by :meth:`~NntpConversation.track`
for every message: the verbs asked and not yet answered (the greeting
first), whether a POST waits for its answer and whether the client's next
block is an article.  Whether a response carries a block depends on its
code *and* on the command it answers (211 is one line after GROUP, a list
after LISTGROUP): the server's decoder reads the oldest unanswered verb.
After POST the client's bytes are held until the answer has been seen:
340 makes them the article, anything else commands.  A client that sends
its article before the 340 thus has it taken as the article when the 340
comes, as INN does, and as commands when POST is refused, as INN does too.
A transit server's IHAVE and 335 work the same way.

Blocks that end within 64 KiB decode as one message; longer ones as a
head (the :class:`Response` or :class:`ArticleBlock`, marked
``streamed``), then :class:`DataPart` or :class:`ArticlePart` pieces and
a :class:`DataEnd` or :class:`ArticleEnd`.  Whoever takes them caps the
total: the server's ``--max-article``, the client verbs' :data:`MAX_BLOCK`.
A long block sent as messages (``pieces()``) passes without being decoded
again; raw bytes after its head carry it on.

Malformed command lines that fit the caps (too long for RFC 3977's 512
octets, a NUL byte, not UTF-8, empty) decode as :class:`BadCommand` so
that the server can answer 500/501 and go on, as INN does.  Only what
cannot be framed is a :class:`RemoteProtocolError`: a command line of more
than :data:`MAX_LINE_BUFFER` bytes without a line feed, a block line over
:data:`MAX_DATA_LINE`, or the stream ending inside a line or block.

Tests: tests/protocols/test_nntp.py
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Pattern, Role, Transport, escape_bytes, matches_code
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import STREAM_ABOVE, BodyEnd, BodyPart, DotPiece, DotReader, StreamBuffer

__all__ = [
    "GREETING",
    "MAX_ARTICLE_WIRE",
    "MAX_BLOCK",
    "MAX_COMMAND",
    "MAX_DATA_LINE",
    "MAX_LINE_BUFFER",
    "POSTED",
    "ArticleBlock",
    "ArticleEnd",
    "ArticlePart",
    "BadCommand",
    "Command",
    "DataEnd",
    "DataPart",
    "NntpConversation",
    "Response",
    "is_multiline",
    "parse_command",
    "parse_status",
    "stuff",
    "unstuff_line",
]

MAX_COMMAND = 512  # RFC 3977 §3.1: a command line, CRLF included
MAX_LINE_BUFFER = 4096  # beyond this without LF the stream cannot be resynchronised
MAX_ARTICLE_WIRE = 4 * 1024 * 1024  # the largest --max-article a server may set
MAX_STATUS = 4096  # RFC 3977 says 512; be lenient with servers that say more
MAX_DATA_LINE = 1024 * 1024  # a line in a block that can still be framed
MAX_BLOCK = 32 * 1024 * 1024  # the most a client verb gathers of one multi-line response
MAX_ASKED = 10_000  # verbs awaiting answers: bounded when nobody answers

# codes whose responses always carry a block (RFC 3977 §3.2, RFC 2980 XGTITLE)
_MULTILINE = frozenset({100, 101, 215, 220, 221, 222, 224, 225, 230, 231, 282})
_SECRET_ARGS = {("AUTHINFO", "PASS")}
_SENDS_ARTICLE = {"POST": 340, "IHAVE": 335}  # the answer after which the article follows
GREETING = "(greeting)"  # what the first response answers
POSTED = "(article)"  # what 240 or 441 answers: the article after a 340
_BAD = "(bad command)"  # what 500 or 501 answers


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
    text = content if content.endswith(b"\n") else content + b"\n"
    if text.count(b"\n") != text.count(b"\r\n"):  # whole runs, not line by line: articles are large
        text = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text.startswith(b"."):
        text = b"." + text
    return text.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def unstuff_line(line: bytes) -> bytes:
    """One block line as content: dot removed, ending made CRLF."""
    body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return (body[1:] if body.startswith(b".") else body) + b"\r\n"


def _unstuff(block: bytes) -> bytes:
    """A whole block's content (its ``.`` line excluded)."""
    body = block[: block.rfind(b"\n", 0, len(block) - 1) + 1]  # without the "." line
    if body.count(b"\n") != body.count(b"\r\n"):
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


def _dot_pieces(block: bytes) -> Iterator[DotPiece]:
    """A whole dot-stuffed block cut as a decoder cuts it: one piece when
    it is small, else parts and the closing dot line."""
    buf = StreamBuffer()
    buf.receive_data(block)
    reader = DotReader(max_line=len(block) + 2)
    while (piece := reader.read(buf)) is not None:
        yield piece
        if piece.last:
            return


def _lines_of(data: bytes | None) -> list[str]:
    if not data:
        return []
    return data.decode("utf-8", "replace").split("\r\n")[:-1]


# -- what the client sends ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Message):
    """A command line: ``verb`` in upper case, then its arguments."""
    EDITABLE = ("verb", "args")

    verb: str
    args: tuple[str, ...] = ()
    KIND: ClassVar[str] = "command"

    @property
    def kind(self) -> str:  # hooks match the verb: srv.on("POST", fn)
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

    def edited(self, **fields: Any) -> Command:
        self._editable(fields)
        args = fields.get("args", self.args)
        return Command.of(str(fields.get("verb", self.verb)), *(args.split() if isinstance(args, str) else args))

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
    KIND: ClassVar[str] = "bad-command"

    def summary(self) -> str:
        return f"bad command ({self.reason}): {escape_bytes(self.raw, 60)}"

    def fields(self) -> dict[str, Any]:
        return {"reason": self.reason, "length": len(self.raw)}


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
    itself (CRLF lines, dot-stuffing removed); ``raw`` is the block.  A
    ``streamed`` one is only the article's first part: :class:`ArticlePart`
    pieces and an :class:`ArticleEnd` follow."""

    content: bytes
    streamed: bool = False
    KIND: ClassVar[str] = "article"

    @classmethod
    def of(cls, content: bytes | str) -> ArticleBlock:
        data = content.encode("utf-8") if isinstance(content, str) else content
        raw = stuff(data)
        return cls(raw=raw, content=_unstuff(raw))

    def pieces(self) -> Iterator[Message]:
        """This article as the server's decoder sees it: itself, or in parts
        when it is long (to send each without holding the whole in a log)."""
        if self.streamed or len(self.raw) <= STREAM_ABOVE:  # surely whole
            yield self
            return
        for piece in _dot_pieces(self.raw):
            yield _article_piece(piece)

    def header(self, name: str) -> str | None:
        return next((v for n, v in _header_fields(self.content) if n.lower() == name.lower()), None)

    def summary(self) -> str:
        subject = self.header("Subject")
        groups = self.header("Newsgroups")
        what = f"article {subject!r} to {groups or '?'}" if subject is not None else "article"
        if self.streamed:
            return f"{what} (in parts, first {len(self.content)} bytes)"
        return f"{what} ({len(self.content)} bytes)"

    def fields(self) -> dict[str, Any]:
        body = self.content.partition(b"\r\n\r\n")[2]
        out: dict[str, Any] = {"headers": _header_fields(self.content), "bytes": len(self.content),
                               "body_lines": body.count(b"\r\n")}
        if self.streamed:
            out["streamed"] = True
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticlePart(BodyPart):
    """A later piece of a posted article too long to be one message."""

    KIND: ClassVar[str] = "article-part"

    def summary(self) -> str:
        return f"article part, {len(self.content)} bytes from {self.offset}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleEnd(BodyEnd):
    """The ``.`` line ending a posted article that came in parts."""

    KIND: ClassVar[str] = "article-end"

    def summary(self) -> str:
        return f"end of article, {self.size} bytes"


def _article_piece(piece: DotPiece) -> Message:
    if piece.first:
        return ArticleBlock(raw=piece.raw, content=piece.content, streamed=not piece.last)
    if piece.last:
        return ArticleEnd(raw=piece.raw, size=piece.size, problem=piece.problem)
    return ArticlePart(raw=piece.raw, content=piece.content, offset=piece.offset)


# -- what the server sends ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Message):
    """A status line (``code``, ``text``) and, for multi-line responses,
    the block's content in ``data`` (CRLF lines, unstuffed); ``None`` for
    single-line responses.  A ``streamed`` response holds only the first
    part of its block: :class:`DataPart` pieces and a :class:`DataEnd`
    follow.  ``answers`` is the verb it answers, as the decoder saw it."""

    code: int
    text: str = ""
    data: bytes | None = None
    answers: str = ""
    streamed: bool = False
    KIND: ClassVar[str] = "response"

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
        return response_class(code)(raw=status + block, code=code, text=text, data=_unstuff(block))

    def pieces(self) -> Iterator[Message]:
        """This response as the client's decoder sees it: itself, or a
        streamed head, parts and an end when its block is long (to send
        each without holding the whole in a log)."""
        if self.data is None or self.streamed or len(self.raw) <= STREAM_ABOVE:  # surely whole
            yield self
            return
        status = self.raw[: self.raw.index(b"\n") + 1]
        for piece in _dot_pieces(self.raw[len(status):]):
            if piece.first:
                yield type(self)(raw=status + piece.raw, code=self.code, text=self.text, data=piece.content,
                                 answers=self.answers, streamed=not piece.last)
            elif piece.last:
                yield DataEnd(raw=piece.raw, size=piece.size)
            else:
                yield DataPart(raw=piece.raw, content=piece.content, offset=piece.offset)

    @property
    def lines(self) -> list[str]:
        """The block's lines as text (empty for a single-line response)."""
        return _lines_of(self.data)

    @property
    def ok(self) -> bool:
        return self.code < 400

    def matches(self, pattern: Pattern) -> bool:
        """A response code (``250``, ``"250"``) matches the code; anything
        else as for every message."""
        return matches_code(self, self.code, pattern)

    def summary(self) -> str:
        status = f"{self.code} {self.text}".rstrip()
        if self.data is None:
            return status
        if self.streamed:
            return f"{status} (in parts, first {len(self.data)} bytes)"
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
        if self.streamed:
            out["streamed"] = True
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DateResponse(Response):
    """111: the server's clock."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"text"})


@dataclass(frozen=True, slots=True, kw_only=True)
class IdResponse(Response):
    """A response naming an article by number and Message-ID (223, 240,
    340), which the server may have made up."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"text"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleResponse(Response):
    """Article text, overview or new-news lists: they carry server-made
    dates, Message-IDs and paths (and ``lines`` and ``bytes`` show them)."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"text", "data", "lines", "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DataPart(BodyPart):
    """A later piece of a response's block too long to be one message."""

    KIND: ClassVar[str] = "data-part"
    # long blocks are articles and lists, full of server-made ids and dates
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"preview"})

    def summary(self) -> str:
        return f"response data, {len(self.content)} bytes from {self.offset}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEnd(BodyEnd):
    """The ``.`` line ending a response's block that came in parts."""

    KIND: ClassVar[str] = "data-end"

    def summary(self) -> str:
        return f"end of response data, {self.size} bytes"


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


# -- the conversation ----------------------------------------------------------------


class _ClientDecoder(StreamBuffer):
    """What an NNTP client sends: command lines and, after POST's 340, the
    article; after POST, nothing until the answer has been seen."""

    def __init__(self, conversation: NntpConversation) -> None:
        super().__init__()
        self._conv = conversation
        self._article = DotReader(max_line=MAX_DATA_LINE, what="posted article")

    @property
    def idle(self) -> bool:
        # after POST a message sent whole waits here too: the answer decides what it is
        return not self._buf and not self._article.reading and not self._conv.post_waiting

    def next_message(self) -> Message | None:
        self._check()
        conv = self._conv
        if conv.article_next or conv.article_open or self._article.reading:
            if not self._article.reading:
                if not self._buf:
                    return None  # nothing yet (a client may close instead), or parts sent as messages
                if conv.article_open:
                    # bytes after parts sent as messages: they carry on the article
                    self._article.resume(conv.article_size)
            piece = self._article.read(self)
            return None if piece is None else _article_piece(piece)
        if conv.post_waiting:
            return None  # the answer to POST says what these bytes are
        raw = self.next_line(MAX_LINE_BUFFER, "command line")
        if raw is None:
            if self._eof and self._buf:
                self._fail("the stream ended inside a command line (no CRLF)")
            return None
        return parse_command(raw)


class _ServerDecoder(StreamBuffer):
    """What an NNTP server sends: responses, with the block the code and
    the verb they answer call for."""

    def __init__(self, conversation: NntpConversation) -> None:
        super().__init__()
        self._conv = conversation
        self._status: Response | None = None  # a multi-line response awaiting its block
        self._block = DotReader(max_line=MAX_DATA_LINE, what="multi-line response")

    @property
    def idle(self) -> bool:
        return not self._buf and self._status is None and not self._block.reading

    def next_message(self) -> Message | None:
        self._check()
        conv = self._conv
        status = self._status
        if status is None and not self._block.reading and conv.data_open:
            if not self._buf:
                return None  # parts sent as messages pass without this decoder
            # bytes after a streamed head or parts sent as messages: they carry on the block
            self._block.resume(conv.data_size)
        elif status is None and not self._block.reading:
            raw = self.next_line(MAX_STATUS, "status line")
            if raw is None:
                if self._eof and self._buf:
                    self._fail("the stream ended inside a status line (no CRLF)")
                return None
            try:
                code, text = parse_status(raw)
            except RemoteProtocolError as exc:
                self._fail(exc.message, exc.hint)
            verb = conv.asked[0] if conv.asked else None
            response = response_class(code)(raw=raw, code=code, text=text, answers=verb or "")
            if not is_multiline(code, verb):
                return response
            status = self._status = response
        piece = self._block.read(self)
        if piece is None:
            return None
        if piece.first:
            assert status is not None  # a resumed block has no first piece
            self._status = None  # the reader knows it is inside a block from now on
            return type(status)(raw=status.raw + piece.raw, code=status.code, text=status.text,
                                data=piece.content, answers=status.answers, streamed=not piece.last)
        if piece.last:
            return DataEnd(raw=piece.raw, size=piece.size)
        return DataPart(raw=piece.raw, content=piece.content, offset=piece.offset)


class NntpConversation(Conversation):
    """Both sides of an NNTP connection and the state they share.

    ``asked`` holds the verbs asked and not yet answered, oldest first
    (the greeting, :data:`POSTED` for an article, a marker for a bad
    line); ``post_waiting`` is true from a POST (or a transit IHAVE) until
    its answer; ``article_next`` from a 340 (335) until the article starts.
    ``article_open`` and ``data_open`` say that a posted article or a
    response's block is under way in parts, ``article_size`` and
    ``data_size`` how much of it went by: parts sent as messages pass
    without a decoder, and raw bytes after them carry on the block.
    """

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.asked: deque[str] = deque([GREETING], maxlen=MAX_ASKED)
        self.post_waiting = False
        self.article_next = False
        self.article_open, self.article_size = False, 0
        self.data_open, self.data_size = False, 0
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return _ClientDecoder(self) if sender is Role.CLIENT else _ServerDecoder(self)

    def encode(self, msg: Message) -> bytes:
        if self.role is Role.SERVER and isinstance(msg, (Command, BadCommand, ArticleBlock, ArticlePart,
                                                         ArticleEnd)):
            raise LocalProtocolError(f"nntp: a server sends responses, not {type(msg).__name__}")
        if self.role is Role.CLIENT:
            if isinstance(msg, (Response, DataPart, DataEnd)):
                raise LocalProtocolError(f"nntp: a client sends commands, not {type(msg).__name__}")
            if isinstance(msg, ArticleBlock) and not (self.article_next or self.post_waiting):
                raise LocalProtocolError("nntp: an article goes after POST and its 340 answer",
                                         hint="send POST first (the post verb does both)")
        # parts follow their head (a head pipelined after POST waits in the decoder)
        article_part = isinstance(msg, (ArticlePart, ArticleEnd))
        if (article_part and not (self.article_open or self.post_waiting)) or (
                isinstance(msg, (DataPart, DataEnd)) and not self.data_open):
            raise LocalProtocolError(f"nntp: {msg.summary()} without a streamed message before it",
                                     hint="send the article or response with streamed=True first")
        return msg.raw

    def track(self, sender: Role, msg: Message) -> None:
        if sender is Role.CLIENT:
            if isinstance(msg, Command):
                self.asked.append(msg.verb)
                if msg.verb in _SENDS_ARTICLE:
                    self.post_waiting = True
            elif isinstance(msg, BadCommand):
                self.asked.append(_BAD)
            elif isinstance(msg, ArticleBlock):
                self.article_next = False
                self.article_open, self.article_size = msg.streamed, len(msg.content)
                self.asked.append(POSTED)  # answered once its last part is in
            elif isinstance(msg, ArticlePart):
                self.article_size = msg.offset + len(msg.content)
            elif isinstance(msg, ArticleEnd):
                self.article_open = False
            return
        if isinstance(msg, DataPart):
            self.data_size = msg.offset + len(msg.content)
            return
        if isinstance(msg, DataEnd):
            self.data_open = False
            return
        if not isinstance(msg, Response):
            return
        self.data_open, self.data_size = msg.streamed, len(msg.data or b"")
        verb = self.asked.popleft() if self.asked else None
        if verb in _SENDS_ARTICLE:
            self.post_waiting = False
            self.article_next = msg.code == _SENDS_ARTICLE[verb]
