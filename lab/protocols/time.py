"""Time (RFC 868): the server tells the time as 4 bytes, the seconds since
1900-01-01 00:00 UTC as a big-endian unsigned 32-bit number.

Over TCP the server sends the 4 bytes as soon as a client connects, then
closes; over UDP it answers any datagram (clients send an empty one).
The counter wraps in February 2036; decoding assumes the value nearest
to now. ``--offset`` serves a clock that is wrong on purpose.

Tests: tests/protocols/test_time.py
"""

from __future__ import annotations

import datetime as dt
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import RemoteProtocolError
from lab.protocols._base import Message, Transport
from lab.protocols._conversation import Decoder
from lab.protocols._framing import DatagramDecoder, ServerSpeaks, StreamBuffer
from lab.protocols._options import Options, option
from lab.protocols._session import AnswerServer, ClientVerbs
from lab.protocols._spec import ProtocolSpec
from lab.protocols._verbs import Deadline, ask

__all__ = [
    "EPOCH_OFFSET",
    "SPEC",
    "TimeClient",
    "TimeConversation",
    "TimeOptions",
    "TimeServer",
    "TimeValue",
    "parse_offset",
]

EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01, both UTC
_WRAP = 2**32
_FRAME = struct.Struct("!I")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeValue(Message):
    """One 4-byte time: ``seconds`` since 1900 as sent, modulo 2**32."""

    seconds: int
    KIND: ClassVar[str] = "time"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"seconds", "utc"})

    @classmethod
    def at(cls, unix_time: float) -> TimeValue:
        """The value a server sends at the epoch time ``unix_time``."""
        seconds = (int(unix_time) + EPOCH_OFFSET) % _WRAP
        return cls(raw=_FRAME.pack(seconds), seconds=seconds)

    @classmethod
    def decode(cls, raw: bytes) -> TimeValue:
        """Exactly 4 bytes; the caller checks the length."""
        return cls(raw=bytes(raw), seconds=_FRAME.unpack(raw)[0])

    def unix_time(self, now: float | None = None) -> int:
        """Seconds since 1970, taking the 2036 wrap into account: a value
        that would lie more than 2**31 s (~68 years) before ``now`` is read
        as the next era."""
        unix = self.seconds - EPOCH_OFFSET
        now = time.time() if now is None else now
        if unix < now - 2**31:
            unix += _WRAP
        return unix

    @property
    def datetime(self) -> dt.datetime:
        """The time as an aware UTC datetime (see :meth:`unix_time`)."""
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.unix_time())

    def summary(self) -> str:
        return f"time {self.seconds} = {self.datetime.strftime('%Y-%m-%d %H:%M:%S')} UTC"

    def fields(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "utc": self.datetime.isoformat()}


class _TimeStream(StreamBuffer):
    """4-byte frames out of a TCP stream, which may split or join them.

    A stream that ends inside a frame is a :class:`RemoteProtocolError`.
    """

    def next_message(self) -> Message | None:
        self._check()
        if len(self._buf) >= _FRAME.size:
            return TimeValue.decode(self.take(_FRAME.size))
        if self._eof and self._buf:
            self._fail(f"stream ended after {len(self._buf)} of the 4 bytes of a time")
        return None


class _TimeDatagrams(DatagramDecoder):
    """Each datagram must be exactly one 4-byte time."""

    def __init__(self) -> None:
        super().__init__(TimeValue)

    def decode(self, data: bytes) -> Message:
        if len(data) != _FRAME.size:
            raise RemoteProtocolError(f"a time datagram holds 4 bytes, this one {len(data)}")
        return TimeValue.decode(bytes(data))


class TimeConversation(ServerSpeaks):
    """The server's :class:`TimeValue` frames (TCP) or datagrams (UDP); the
    client's bytes or datagrams, whose content does not matter."""

    def server_stream(self) -> Decoder:
        return _TimeStream()

    def server_datagrams(self) -> Decoder:
        return _TimeDatagrams()


def parse_offset(text: str) -> int:
    """``--offset``: whole seconds, negative allowed, within one turn of the
    32-bit counter (a larger offset would read as a smaller one)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"wants whole seconds, got {text!r}") from None
    if abs(value) > _WRAP:
        raise ValueError(f"wants at most {_WRAP} seconds either way (the counter wraps), got {text!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class TimeOptions(Options):
    """How wrong a time server's clock is."""

    offset: int = option(
        0, help="serve a clock this many seconds ahead (negative: behind)", parse=parse_offset,
        metavar="SECONDS", example="-3600")


class TimeServer(AnswerServer[TimeOptions]):
    """Sends the current time, moved by ``offset`` seconds: on connect over
    TCP (then closes), in answer to each datagram over UDP."""

    def __init__(self, options: TimeOptions) -> None:
        super().__init__(options)
        # the time told, not a timer: wall time, which tests fix
        self.wall_clock: Callable[[], float] = time.time

    def answer(self) -> Message:
        return TimeValue.at(self.wall_clock() + self.options.offset)


class TimeClient(ClientVerbs[Any]):
    """Verbs for talking to a time server."""

    async def get(self, timeout: float = 5.0) -> dt.datetime:
        """The server's time as an aware UTC datetime (over UDP this sends
        the empty request datagram first)."""
        msg = await ask(self.channel, Deadline(timeout), "time", "the time")
        if not isinstance(msg, TimeValue):
            raise RemoteProtocolError(f"time: expected 4 bytes, got {msg.summary()}")
        return msg.datetime


SPEC = ProtocolSpec(
    name="time",
    summary="tells the time as 32-bit seconds since 1900",
    rfc="RFC 868",
    default_port=37,
    transports=(Transport.TCP, Transport.UDP),
    conversation=TimeConversation,
    server=TimeServer,
    client=TimeClient,
    options=TimeOptions,
    keywords=("clock", "rdate"),
)
