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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import ConfigError, RemoteProtocolError
from lab.protocols._base import (
    AnswerServer,
    ClientVerbs,
    Codec,
    Message,
    Option,
    ProtocolSpec,
    Role,
    Transport,
)
from lab.protocols._framing import DataCodec, DatagramCodec, StreamBuffer
from lab.protocols._verbs import Deadline, ask

__all__ = ["EPOCH_OFFSET", "SPEC", "TimeClient", "TimeServer", "TimeValue", "parse_offset"]

EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01, both UTC
_WRAP = 2**32
_FRAME = struct.Struct("!I")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeValue(Message):
    """One 4-byte time: ``seconds`` since 1900 as sent, modulo 2**32."""

    seconds: int
    kind: ClassVar[str] = "time"
    volatile: ClassVar[frozenset[str]] = frozenset({"seconds", "utc"})

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
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=self.unix_time()
        )

    def summary(self) -> str:
        return f"time {self.seconds} = {self.datetime.strftime('%Y-%m-%d %H:%M:%S')} UTC"

    def fields(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "utc": self.datetime.isoformat()}


class _TimeStream(StreamBuffer):
    """4-byte frames out of a TCP stream, which may split or join them.

    A stream that ends inside a frame is a :class:`RemoteProtocolError`.
    """

    def next_message(self) -> Message | None:
        if self._error:
            raise self._error
        if len(self._buf) >= _FRAME.size:
            raw = bytes(self._buf[: _FRAME.size])
            del self._buf[: _FRAME.size]
            return TimeValue.decode(raw)
        if self._eof and self._buf:
            self._fail(f"stream ended after {len(self._buf)} of the 4 bytes of a time")
        return None


class _TimeDatagrams(DatagramCodec):
    """Each datagram must be exactly one 4-byte time."""

    def __init__(self) -> None:
        super().__init__(TimeValue)
        self._error: RemoteProtocolError | None = None

    def decode(self, data: bytes) -> Message:
        if self._error:
            raise self._error
        if len(data) != _FRAME.size:
            self._error = RemoteProtocolError(
                f"a time datagram holds 4 bytes, this one {len(data)}"
            )
            raise self._error
        return TimeValue.decode(bytes(data))


def make_codec(role: Role, transport: Transport) -> Codec:
    """Client: :class:`TimeValue` frames or datagrams. Server: raw chunks
    or datagrams, whose content does not matter."""
    if role is Role.CLIENT:
        return _TimeDatagrams() if transport is Transport.UDP else _TimeStream()
    return DatagramCodec() if transport is Transport.UDP else DataCodec()


def parse_offset(text: str) -> int:
    """``--offset``: whole seconds, may be negative."""
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"time: --offset must be whole seconds, not {text!r}", hint="e.g. --offset -3600"
        ) from None


class TimeServer(AnswerServer):
    """Sends the current time, moved by ``offset`` seconds: on connect over
    TCP (then closes), in answer to each datagram over UDP."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        offset = self.options.get("offset") or 0
        self.offset = parse_offset(offset) if isinstance(offset, str) else int(offset)
        self.clock: Callable[[], float] = time.time  # tests set a fixed clock

    def _now(self) -> TimeValue:
        return TimeValue.at(self.clock() + self.offset)

    def answer(self) -> Message:
        return self._now()


class TimeClient(ClientVerbs):
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
    codec=make_codec,
    server=TimeServer,
    client=TimeClient,
    options=(
        Option(
            name="offset",
            help="serve a clock this many seconds ahead (negative: behind)",
            default=0,
            parse=parse_offset,
            metavar="SECONDS",
        ),
    ),
    keywords=("clock", "rdate"),
)
