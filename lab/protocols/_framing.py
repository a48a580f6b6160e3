"""Framing shared by many protocols: byte chunks, lines, datagrams.

Tests: tests/protocols/test_framing.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from lab.errors import RemoteProtocolError
from lab.protocols._base import Codec, Message, Role, Transport, escape_bytes

__all__ = ["MAX_LINE", "Data", "DataCodec", "DatagramCodec", "Line", "LineBuffer", "LineCodec", "StreamBuffer"]

MAX_LINE = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class Data(Message):
    """An uninterpreted chunk of a byte stream, or one datagram."""

    kind: ClassVar[str] = "data"

    def fields(self) -> dict[str, Any]:
        return {"length": len(self.raw)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Line(Message):
    """One line; ``raw`` keeps its exact terminator (CRLF, LF or none)."""

    kind: ClassVar[str] = "line"

    @classmethod
    def of(cls, text: str | bytes, ending: bytes = b"\r\n") -> Line:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return cls(raw=data + ending)

    @property
    def line(self) -> str:
        """The text without its terminator."""
        return self.raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def summary(self) -> str:
        return escape_bytes(self.raw)

    def fields(self) -> dict[str, Any]:
        return {"line": self.line, "terminator": escape_bytes(self.raw[len(self.raw.rstrip(b"\r\n")):])}


_new = object.__new__
_set_raw = Message.__dict__["raw"].__set__


def _data(data: bytes) -> Data:
    """``Data(raw=data)`` without the frozen dataclass ``__init__``: this is
    the per-chunk cost of every byte-stream server."""
    msg = _new(Data)
    _set_raw(msg, data if type(data) is bytes else bytes(data))
    return msg


class DataCodec(Codec):
    """Each received chunk is one :class:`Data` message (a byte stream)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[Message] = []

    def receive_data(self, data: bytes) -> None:
        if data:
            self._pending.append(_data(data))

    def next_message(self) -> Message | None:
        return self._pending.pop(0) if self._pending else None

    def feed(self, data: bytes) -> list[Message]:
        if not data:
            return []
        msg = _new(Data)  # _data() inlined: once per chunk of every stream
        _set_raw(msg, data if type(data) is bytes else bytes(data))
        return [msg]


class DatagramCodec(Codec):
    """Each datagram, even an empty one, is one message of ``message_type``."""

    def __init__(self, message_type: type[Message] = Data) -> None:
        self._type = message_type
        self._pending: list[Message] = []

    def decode(self, data: bytes) -> Message:
        """Turn one datagram into a message; subclasses validate here."""
        return self._type(raw=bytes(data))

    def receive_data(self, data: bytes) -> None:
        self._pending.append(self.decode(data))

    def next_message(self) -> Message | None:
        return self._pending.pop(0) if self._pending else None

    def feed(self, data: bytes) -> list[Message]:
        return [self.decode(data)]


def bytes_codec(role: Role, transport: Transport) -> Codec:
    """Uninterpreted bytes for either role: chunks over TCP, datagrams over
    UDP (echo, discard, the receiving side of several services)."""
    return DatagramCodec() if transport is Transport.UDP else DataCodec()


class StreamBuffer(Codec):
    """Received bytes awaiting framing, for codecs to build on: end of
    stream (``b""``), data after it refused, and a sticky error: once a
    codec has failed it keeps raising the same error."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

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
        """Drop what is buffered and remember the error: the codec is spent."""
        self._buf.clear()
        self._error = RemoteProtocolError(why, hint=hint)
        return self._error

    def _fail(self, why: str, hint: str | None = None) -> NoReturn:
        raise self._spend(why, hint)


class LineBuffer(StreamBuffer):
    """A :class:`StreamBuffer` that hands out lines (LF or CRLF ended)
    under a cap with :meth:`next_line`.

    ``counts_terminator`` says whether a line's cap includes its CRLF or LF
    (SMTP and POP3 count octets on the wire); ``unit`` names what the cap
    counts in error messages.
    """

    counts_terminator: ClassVar[bool] = False
    unit: ClassVar[str] = "bytes"

    def __init__(self) -> None:
        super().__init__()
        self._scan = 0  # where to look for the next LF

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


class LineCodec(LineBuffer):
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
