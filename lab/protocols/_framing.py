"""Framing shared by every protocol: byte chunks, datagrams, lines,
length-prefixed frames and dot-stuffed blocks, as decoders to build on.

* :class:`DataDecoder` and :class:`DatagramDecoder`: each chunk or
  datagram is one message;
* :class:`StreamBuffer`: received bytes awaiting framing, with the end of
  the stream, a sticky error, and three ways to take a frame off the
  front that a decoder may switch between mid-stream (Twisted's
  ``setRawMode``): :meth:`~StreamBuffer.next_line` under a cap,
  :meth:`~StreamBuffer.next_frame` for a header with a length field (DNS
  over TCP, FLAP, PB) and :meth:`~StreamBuffer.take`;
* :class:`LineDecoder`: lines, the ``LineReceiver`` job;
* :class:`LengthPrefixDecoder`: length-prefixed frames, the
  ``IntNStringReceiver`` job;
* :class:`DotReader`: one dot-stuffed block (SMTP ``DATA``, POP3 and NNTP
  multi-line responses), whole when it is small and in
  :class:`BodyPart` pieces ending with a :class:`BodyEnd` when it is not,
  so a 50 MB message is never one Python object.

Tests: tests/protocols/test_framing.py
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from lab.errors import RemoteProtocolError
from lab.protocols._base import Message, Role, Transport, escape_bytes
from lab.protocols._conversation import Conversation, Decoder

__all__ = [
    "MAX_LINE",
    "STREAM_ABOVE",
    "BodyEnd",
    "BodyPart",
    "Data",
    "DataDecoder",
    "DatagramDecoder",
    "DotPiece",
    "DotReader",
    "LengthPrefixDecoder",
    "Line",
    "LineDecoder",
    "ServerSpeaks",
    "StreamBuffer",
    "bytes_decoder",
]

MAX_LINE = 8192
# a body larger than this arrives in parts: the most any one message of a
# stream holds (and what a decoder buffers before it must decide)
STREAM_ABOVE = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Data(Message):
    """An uninterpreted chunk of a byte stream, or one datagram."""

    KIND: ClassVar[str] = "data"

    def fields(self) -> dict[str, Any]:
        return {"length": len(self.raw)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Line(Message):
    """One line; ``raw`` keeps its exact terminator (CRLF, LF or none)."""
    EDITABLE = ("line",)

    KIND: ClassVar[str] = "line"

    @classmethod
    def of(cls, text: str | bytes, ending: bytes = b"\r\n") -> Line:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return cls(raw=data + ending)

    @property
    def line(self) -> str:
        """The text without its terminator."""
        return self.raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def edited(self, **fields: Any) -> Line:
        self._editable(fields)
        ending = self.raw[len(self.raw.rstrip(b"\r\n")):] or b"\r\n"
        return type(self).of(str(fields["line"]), ending)

    def fields(self) -> dict[str, Any]:
        return {"line": self.line, "terminator": escape_bytes(self.raw[len(self.raw.rstrip(b"\r\n")):])}


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyPart(Message):
    """A piece of a body too large to be one message: ``raw`` is its wire
    bytes, ``content`` what it carries (dot-stuffing undone), ``offset``
    where that content starts in the body."""

    content: bytes
    offset: int = 0
    KIND: ClassVar[str] = "body"

    def summary(self) -> str:
        return f"body part, {len(self.content)} bytes from {self.offset}: {escape_bytes(self.content, 40)}"

    def fields(self) -> dict[str, Any]:
        return {"offset": self.offset, "length": len(self.content),
                "preview": self.content[:200].decode("utf-8", "replace")}


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyEnd(Message):
    """The end of a body that came in parts: ``size`` is its whole
    content's length, ``problem`` the first rule it broke (if any)."""

    size: int
    problem: str = ""
    KIND: ClassVar[str] = "end"

    def summary(self) -> str:
        return f"end of body, {self.size} bytes" + (f" ({self.problem})" if self.problem else "")

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size}
        if self.problem:
            out["problem"] = self.problem
        return out


_new = object.__new__
_set_raw = Message.__dict__["raw"].__set__


class _WholeMessages(Decoder):
    """A decoder whose every input is a whole message, queued as it came."""

    def __init__(self) -> None:
        self._pending: deque[Message] = deque()

    def next_message(self) -> Message | None:
        return self._pending.popleft() if self._pending else None

    @property
    def buffered(self) -> int:
        return sum(len(m.raw) for m in self._pending)

    @property
    def idle(self) -> bool:
        return True


class DataDecoder(_WholeMessages):
    """Each received chunk is one :class:`Data` message (a byte stream)."""

    def receive_data(self, data: bytes) -> None:
        if data:
            # Data(raw=data) without the frozen dataclass __init__: this is
            # the per-chunk cost of every byte-stream server
            msg = _new(Data)
            _set_raw(msg, data if type(data) is bytes else bytes(data))
            self._pending.append(msg)


class DatagramDecoder(_WholeMessages):
    """Each datagram, even an empty one, is one message of ``message_type``."""

    def __init__(self, message_type: type[Message] = Data) -> None:
        super().__init__()
        self._type = message_type
        self._error: RemoteProtocolError | None = None

    def decode(self, data: bytes) -> Message:
        """Turn one datagram into a message; subclasses validate here."""
        return self._type(raw=bytes(data))

    def receive_data(self, data: bytes) -> None:
        if self._error:
            raise self._error
        try:
            self._pending.append(self.decode(data))
        except RemoteProtocolError as exc:
            self._error = exc
            raise


def bytes_decoder(transport: Transport) -> Decoder:
    """Uninterpreted bytes: chunks over TCP, datagrams over UDP."""
    return DatagramDecoder() if transport is Transport.UDP else DataDecoder()


class ServerSpeaks(Conversation):
    """The shape of the RFC 864-868 services: the server's output decoded
    by :meth:`server_stream` (TCP) or :meth:`server_datagrams` (UDP); what
    the client sends (nothing, or any datagram as a request) is bytes."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        if sender is Role.CLIENT:
            return bytes_decoder(self.transport)
        return self.server_datagrams() if self.transport is Transport.UDP else self.server_stream()

    def server_stream(self) -> Decoder:
        raise NotImplementedError

    def server_datagrams(self) -> Decoder:
        raise NotImplementedError


class StreamBuffer(Decoder):
    """Received bytes awaiting framing, for decoders to build on: end of
    stream (``b""``), data after it refused, and a sticky error: once a
    decoder has failed it keeps raising the same error.

    ``counts_terminator`` says whether a line's cap includes its CRLF or
    LF (SMTP and POP3 count octets on the wire); ``unit`` names what caps
    count in error messages.
    """

    counts_terminator: ClassVar[bool] = False
    unit: ClassVar[str] = "bytes"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._scan = 0  # where to look for the next LF

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def ended(self) -> bool:
        """The sender finished sending."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        if self._error:
            raise self._error
        if not data:
            self._eof = True
            return
        if self._eof:
            self._fail("data after end of stream")
        self._buf += data

    def _spend(self, why: str, hint: str | None = None) -> RemoteProtocolError:
        """Drop what is buffered and remember the error: the decoder is spent."""
        self._buf.clear()
        self._error = RemoteProtocolError(why, hint=hint)
        return self._error

    def _fail(self, why: str, hint: str | None = None) -> NoReturn:
        raise self._spend(why, hint)

    def _check(self) -> None:
        if self._error:
            raise self._error

    # -- lines --------------------------------------------------------------

    def next_line(self, limit: int, what: str = "line", *, partial_at_eof: bool = False) -> bytes | None:
        """The next complete line with its terminator, or None.

        A line over ``limit`` is an error as soon as it is certain, however
        the bytes were split.  At end of stream an unterminated tail is
        returned if ``partial_at_eof``; otherwise it stays buffered for the
        caller to judge.
        """
        buf = self._buf
        end = buf.find(b"\n", self._scan)
        if end < 0:
            if self.counts_terminator:
                waiting = len(buf)
            else:
                waiting = len(buf) - 1 if buf.endswith(b"\r") else len(buf)  # a CR may await its LF
            if waiting > limit:
                self._fail(f"{what} longer than {limit} {self.unit}")
            if partial_at_eof and self._eof and buf:
                raw = bytes(buf)
                buf.clear()
                self._scan = 0
                return raw
            self._scan = len(buf)
            return None
        if self.counts_terminator:
            length = end + 1
        else:
            length = end - 1 if end and buf[end - 1] == 0x0D else end  # without CRLF or LF
        if length > limit:
            self._fail(f"{what} longer than {limit} {self.unit}")
        raw = bytes(buf[: end + 1])
        del buf[: end + 1]
        self._scan = 0
        return raw

    # -- length-prefixed frames ---------------------------------------------

    def next_frame(self, *, header: int, length_at: int = 0, length_format: str = "!H",
                   counts_header: bool = False, limit: int = 65535, what: str = "frame") -> bytes | None:
        """The next whole frame (header included), or None.

        The frame opens with ``header`` bytes holding its length as
        ``length_format`` (a :mod:`struct` format) at ``length_at``; the
        length counts the header too if ``counts_header``.  A length over
        ``limit`` is an error at once, before its bytes arrive.
        """
        buf = self._buf
        if len(buf) < header:
            return None
        (length,) = struct.unpack_from(length_format, buf, length_at)
        total = length if counts_header else header + length
        if total < header or total - (0 if counts_header else header) > limit:
            self._fail(f"{what} length {length} is out of range (at most {limit})")
        if len(buf) < total:
            return None
        raw = bytes(buf[:total])
        del buf[:total]
        self._scan = 0
        return raw

    def take(self, size: int | None = None) -> bytes:
        """Up to ``size`` buffered bytes (all if None), taken off the front."""
        buf = self._buf
        end = len(buf) if size is None else min(size, len(buf))
        raw = bytes(buf[:end])
        del buf[:end]
        self._scan = 0
        return raw


class LineDecoder(StreamBuffer):
    """Lines ending in LF (CRLF accepted); the Twisted ``LineReceiver`` job.

    A line longer than ``max_length`` bytes, not counting its CRLF or LF,
    raises :class:`RemoteProtocolError` as soon as more than that many bytes
    are buffered without a newline, so a hostile peer cannot make us hold
    more; the verdict is the same however the bytes were split.  At end
    of stream an unterminated tail becomes a last line unless
    ``partial_at_eof`` is false, in which case it is an error.
    """

    message_type: type[Line] = Line

    def __init__(self, max_length: int = MAX_LINE, *, partial_at_eof: bool = True) -> None:
        super().__init__()
        self.max_length = max_length
        self.partial_at_eof = partial_at_eof

    def decode_line(self, raw: bytes) -> Message:
        """Turn one complete line into a message; subclasses parse here."""
        return self.message_type(raw=raw)

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        buf = self._buf
        end = buf.find(b"\n", self._scan)
        if 0 <= end <= self.max_length:  # the hot path: a whole line, surely under the cap
            raw = bytes(buf[: end + 1])
            del buf[: end + 1]
            self._scan = 0
            return self.decode_line(raw)
        line = self.next_line(self.max_length, partial_at_eof=self.partial_at_eof)
        if line is None:
            if self._eof and self._buf:
                self._fail("stream ended inside a line")
            return None
        return self.decode_line(line)


class LengthPrefixDecoder(StreamBuffer):
    """Frames of a fixed header holding the frame's length (Twisted's
    ``IntNStringReceiver``): 2 bytes for DNS over TCP (RFC 7766), FLAP's
    6-byte header with the length at offset 4.  Each frame becomes a
    message through :meth:`decode_frame`; the stream may not end inside a
    frame.
    """

    def __init__(self, *, header: int = 2, length_at: int = 0, length_format: str = "!H",
                 counts_header: bool = False, limit: int = 65535, what: str = "frame") -> None:
        super().__init__()
        self._frame = {"header": header, "length_at": length_at, "length_format": length_format,
                       "counts_header": counts_header, "limit": limit, "what": what}

    def check_header(self, header: bytes) -> None:
        """Refuse a frame by its header (a wrong marker byte): call
        :meth:`_fail`.  By default every header is fine."""

    def decode_frame(self, raw: bytes) -> Message:
        """Turn one whole frame (header included) into a message."""
        return Data(raw=raw)

    def next_message(self) -> Message | None:
        self._check()
        header = self._frame["header"]
        assert isinstance(header, int)
        if len(self._buf) >= header:
            self.check_header(bytes(self._buf[:header]))
        raw = self.next_frame(**self._frame)  # type: ignore[arg-type]
        if raw is None:
            if self._eof and self._buf:
                self._fail(f"stream ended inside a {self._frame['what']} ({len(self._buf)} bytes)")
            return None
        return self.decode_frame(raw)


# -- dot-stuffed blocks ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DotPiece:
    """What :class:`DotReader` took: the whole block (``first`` and
    ``last``), a part of a long one, or a long one's closing dot line
    (``last`` only, no content)."""

    raw: bytes
    content: bytes
    first: bool
    last: bool
    offset: int  # where this content starts in the block's content
    size: int  # content so far, this piece included
    problem: str  # the first rule the block broke so far, if any


class DotReader:
    """Reads one block of lines that ends with a line holding a single dot,
    lines that open with a dot doubled (RFC 5321 §4.5.2, RFC 1939 §3,
    RFC 3977 §3.1.1), from a :class:`StreamBuffer`.

    A block that ends within ``whole_up_to`` bytes comes back whole; a
    longer one comes in parts of whole lines about that size, then its
    closing dot line on its own.  Nothing here caps the total: whoever
    takes the parts decides what is too large (and can say so in the
    protocol's own words).  ``line_problem`` judges a run of whole lines
    (terminators included) and names the first rule one of them breaks,
    or says ""; the block keeps the first verdict.  ``max_line`` caps a
    line, without its terminator (a :class:`RemoteProtocolError` beyond
    it, however the bytes are cut); with ``crlf_only`` only ``.CRLF``
    ends the block and only CRLF ends a line (SMTP), else LF alone does
    too and is made CRLF in the content.

    The work is done on whole runs of bytes, not line by line: a 900 KB
    article is framed in a few C-speed passes.
    """

    def __init__(self, *, max_line: int, whole_up_to: int = STREAM_ABOVE, crlf_only: bool = False,
                 line_problem: Callable[[bytes], str] | None = None, what: str = "block") -> None:
        self.max_line = max_line
        self.whole_up_to = whole_up_to
        self.crlf_only = crlf_only
        self.line_problem = line_problem
        self.what = what
        run = (rb"(?:[^\r]|\r(?!\n))" if crlf_only else rb"[^\n]")
        self._long = re.compile(run + rb"{%d,}" % (max_line + 1))  # a line that may be too long
        self._reset()

    def _reset(self) -> None:
        self._checked = 0  # complete lines before this offset in the buffer are judged
        self._searched = 0  # no dot line starts before this offset
        self._size = 0  # content handed out
        self._streaming = False
        self._problem = ""

    @property
    def reading(self) -> bool:
        """Inside a block (some of it judged or handed out)."""
        return self._checked > 0 or self._streaming

    def resume(self, size: int) -> None:
        """Go on with a block already under way: ``size`` bytes of its
        content went by without being read here (sent whole as a message)."""
        self._streaming = True
        self._size = size

    def _too_long(self, stream: StreamBuffer) -> RemoteProtocolError:
        return stream._spend(f"line in a {self.what} longer than {self.max_line} {stream.unit}")

    def _end(self, buf: bytearray) -> tuple[int, int] | None:
        """Where the dot line starts and how long it is, if it has come
        (searching on from where the last search stopped)."""
        if buf.startswith(b".\r\n"):
            return 0, 3
        if buf.startswith(b".\n") and not self.crlf_only:
            return 0, 2
        start = max(0, self._searched - 4)
        if self.crlf_only:
            at = buf.find(b"\r\n.\r\n", start)
            end = (at + 2, 3) if at >= 0 else None
        else:
            found = [(at + 1, n) for at, n in ((buf.find(b"\n.\r\n", start), 3), (buf.find(b"\n.\n", start), 2))
                     if at >= 0]
            end = min(found) if found else None
        self._searched = end[0] if end is not None else len(buf)  # found: the next look finds it again
        return end

    def _lines_end(self, buf: bytearray, start: int = 0) -> int:
        """Where the complete lines in ``buf`` end (from ``start`` on)."""
        if self.crlf_only:
            at = buf.rfind(b"\r\n", start)
            return at + 2 if at >= 0 else start
        return buf.rfind(b"\n", start) + 1 or start

    def _judge(self, stream: StreamBuffer, upto: int) -> None:
        """Check the complete lines not judged yet, up to ``upto``."""
        if upto <= self._checked:
            return
        run = bytes(stream._buf[self._checked:upto])
        if len(run) > self.max_line:
            for m in self._long.finditer(run):
                length = len(m.group())
                if not self.crlf_only and m.group().endswith(b"\r") and m.end() < len(run):
                    length -= 1  # the CR of its CRLF
                if length > self.max_line:
                    raise self._too_long(stream)
        if self.line_problem is not None and not self._problem:
            self._problem = self.line_problem(run)
        self._checked = upto

    def _content(self, raw: bytes) -> bytes:
        """Whole lines as content: leading dots undoubled, lines CRLF ended."""
        if not self.crlf_only and raw.count(b"\n") != raw.count(b"\r\n"):
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if raw.startswith(b"."):
            raw = raw[1:]
        return raw.replace(b"\r\n.", b"\r\n")

    def read(self, stream: StreamBuffer) -> DotPiece | None:
        """The next piece of the block, or None until more bytes come;
        :class:`RemoteProtocolError` when the stream ends inside it."""
        buf = stream._buf
        end = self._end(buf)
        if end is None:
            complete = self._lines_end(buf, self._checked)
            self._judge(stream, complete)
            # the same verdict however the bytes are cut: a CR may still await its LF
            waiting = len(buf) - complete - (1 if buf.endswith(b"\r") else 0)
            if waiting > self.max_line:
                raise self._too_long(stream)
            if stream._eof:
                raise stream._spend(f"the stream ended inside a {self.what}")
        else:
            complete = end[0]
            self._judge(stream, complete)
        if end is not None and end[0] <= self.whole_up_to:
            if end[0] and self._streaming:
                return self._piece(stream, end[0], first=False, last=False)  # the lines before the dot
            return self._piece(stream, end[0] + end[1], first=not self._streaming, last=True, content_end=end[0])
        # long: cut at the first line end past the threshold
        if self.crlf_only:
            at = buf.find(b"\r\n", self.whole_up_to - 1, complete)
            cut = at + 2 if at >= 0 else 0
        else:
            at = buf.find(b"\n", self.whole_up_to, complete)
            cut = at + 1 if at >= 0 else 0
        if not cut:
            return None
        return self._piece(stream, cut, first=not self._streaming, last=False)

    def _piece(self, stream: StreamBuffer, size: int, *, first: bool, last: bool,
               content_end: int | None = None) -> DotPiece:
        raw = stream.take(size)
        self._checked = max(0, self._checked - size)
        self._searched = max(0, self._searched - size)
        if last and not first:
            content = b""  # a long block's closing dot line
        else:
            content = self._content(raw[:content_end] if content_end is not None else raw)
        piece = DotPiece(raw=raw, content=content, first=first, last=last, offset=self._size,
                         size=self._size + len(content), problem=self._problem)
        if last:
            self._reset()
        else:
            self._size += len(content)
            self._streaming = True
        return piece
