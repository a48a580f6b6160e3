"""Character generator (RFC 864): an endless stream of printable characters.

The pattern is the classic one: lines of 72 of the 95 printing ASCII
characters, each line starting one character later than the one before,
CRLF terminated, repeating every 95 lines. Over TCP the server sends it
from the moment a client connects until the client goes away, and
discards whatever the client sends. Over UDP each datagram received is
answered with one datagram of 0 to 512 characters of the pattern.

Tests: tests/protocols/test_chargen.py
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import ConnectionClosed, LabTimeout
from lab.protocols._base import (
    ClientVerbs,
    Codec,
    Message,
    Peer,
    ProtocolSpec,
    Role,
    ServerBehaviour,
    Transport,
    escape_bytes,
)
from lab.protocols._framing import DatagramCodec, LineCodec, bytes_codec
from lab.protocols._verbs import Deadline, request

__all__ = [
    "BATCH_LINES",
    "LINE_WIDTH",
    "MAX_DATAGRAM",
    "SPEC",
    "Characters",
    "ChargenClient",
    "ChargenServer",
    "pattern",
]

PRINTABLE = bytes(range(0x20, 0x7F))  # the 95 printing characters, space first as in inetd
LINE_WIDTH = 72
BATCH_LINES = 64  # lines per write: ~4.7 KB, small enough to notice a pause promptly
MAX_DATAGRAM = 512  # RFC 864: a UDP answer holds 0 to 512 characters

_LINES = tuple(
    (PRINTABLE * 2)[start : start + LINE_WIDTH] + b"\r\n" for start in range(len(PRINTABLE))
)
# Two whole cycles, so any run shorter than one cycle is a single slice.
_CYCLE = b"".join(_LINES)
_TWO_CYCLES = _CYCLE * 2
_LINE_SIZE = LINE_WIDTH + 2


def pattern(first_line: int, length: int) -> bytes:
    """``length`` bytes of the pattern starting at line ``first_line``
    (counted from 0, modulo 95)."""
    start = (first_line % len(_LINES)) * _LINE_SIZE
    if length <= len(_CYCLE):
        return _TWO_CYCLES[start : start + length]
    whole = (_TWO_CYCLES[start : start + len(_CYCLE)]) * (length // len(_CYCLE) + 1)
    return whole[:length]


@dataclass(frozen=True, slots=True, kw_only=True)
class Characters(Message):
    """A run of the chargen pattern: one UDP datagram, or one TCP batch
    as the server sent it."""

    kind: ClassVar[str] = "chargen"
    volatile: ClassVar[frozenset[str]] = frozenset({"length"})  # UDP lengths are random

    def summary(self) -> str:
        return f"{len(self.raw)} characters {escape_bytes(self.raw, 40)}"

    def fields(self) -> dict[str, Any]:
        return {"length": len(self.raw)}


def make_codec(role: Role, transport: Transport) -> Codec:
    """Client: lines (TCP) or :class:`Characters` datagrams (UDP).
    Server: raw chunks or datagrams, which it throws away."""
    if role is Role.CLIENT:
        return DatagramCodec(Characters) if transport is Transport.UDP else LineCodec()
    return bytes_codec(role, transport)


@dataclass(slots=True)
class _Stream:
    """Where one TCP connection is in the pattern."""

    next_line: int = 0
    scheduled: bool = False  # a call_soon for the next batch is pending


class ChargenServer(ServerBehaviour):
    """Streams the pattern to TCP clients as fast as they read it; answers
    UDP datagrams with a random-length run of it."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self._streams: dict[str, _Stream] = {}
        self._next_datagram_line = 0
        self.rng = random.Random()  # replace with a seeded one for repeatable lengths

    def connection_made(self, conn: Peer) -> None:
        if conn.transport is Transport.TCP:
            self._streams[conn.id] = _Stream()
            self._pump(conn)

    def message_received(self, conn: Peer, msg: Message) -> None:
        if conn.transport is not Transport.UDP:
            return  # RFC 864: data from a TCP client is thrown away
        length = self.rng.randint(0, MAX_DATAGRAM)
        first = self._next_datagram_line
        self._next_datagram_line = (first + 1) % len(_LINES)
        conn.send(Characters(raw=pattern(first, length)))

    def writable(self, conn: Peer) -> None:
        stream = self._streams.get(conn.id)
        if stream is not None and not stream.scheduled:
            self._pump(conn)

    def connection_lost(self, conn: Peer) -> None:
        self._streams.pop(conn.id, None)

    def _pump(self, conn: Peer) -> None:
        """Send one batch, then come back on the next loop turn, unless the
        transport asked us to pause: then :meth:`writable` resumes.

        Pausing on ``write_paused`` is what keeps the server's buffer
        bounded however slowly the client reads.
        """
        stream = self._streams.get(conn.id)
        if stream is None:
            return  # the connection went away while this call was pending
        stream.scheduled = False
        if conn.write_paused:
            return
        batch = pattern(stream.next_line, BATCH_LINES * _LINE_SIZE)
        try:
            conn.send(Characters(raw=batch))
        except ConnectionClosed:
            # closing already (idle timeout, `stop`): connection_lost follows
            self._streams.pop(conn.id, None)
            return
        stream.next_line = (stream.next_line + BATCH_LINES) % len(_LINES)
        if not conn.write_paused:
            stream.scheduled = True
            # a behaviour has no timer: the loop turn lets reads and other
            # connections run between batches
            asyncio.get_running_loop().call_soon(self._pump, conn)


class ChargenClient(ClientVerbs):
    """Verbs for talking to a chargen server."""

    async def read(self, lines: int = 1, timeout: float = 5.0) -> list[str]:
        """The next ``lines`` lines of the pattern, without their CRLF.

        Over TCP these are the next lines of the stream, which keeps
        coming: close the client when done. Over UDP each line is a piece
        of an answered datagram between CRLFs (the last piece of a datagram
        may be a partial line), and datagrams are requested until there are
        enough. :class:`LabTimeout` if they do not arrive within
        ``timeout`` seconds in all.
        """
        deadline = Deadline(timeout)
        got: list[str] = []
        await request(self.channel)
        while len(got) < lines:
            try:
                msg = await deadline.receive(self.channel, f"{lines} chargen line(s)")
            except ConnectionClosed:
                raise ConnectionClosed(
                    f"chargen: the server closed after {len(got)} of {lines} lines"
                ) from None
            except LabTimeout:
                raise LabTimeout(
                    f"chargen: {len(got)} of {lines} lines arrived within {timeout} s"
                ) from None
            if isinstance(msg, Characters):
                got.extend(msg.raw.decode("ascii", "replace").split("\r\n"))
                if got and got[-1] == "":
                    got.pop()  # the datagram ended with a whole line
                if len(got) < lines:
                    await request(self.channel)
            else:
                got.append(msg.raw.rstrip(b"\r\n").decode("ascii", "replace"))
        return got[:lines]


SPEC = ProtocolSpec(
    name="chargen",
    summary="sends an endless rotating pattern of printable characters",
    rfc="RFC 864",
    default_port=19,
    transports=(Transport.TCP, Transport.UDP),
    codec=make_codec,
    server=ChargenServer,
    client=ChargenClient,
    keywords=("generator", "flood", "load"),
)
