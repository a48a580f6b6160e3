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

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import ConnectionClosed, LabTimeout
from lab.protocols._base import Message, Timer, Transport, escape_bytes
from lab.protocols._conversation import Decoder
from lab.protocols._framing import DatagramDecoder, LineDecoder, ServerSpeaks
from lab.protocols._session import ClientVerbs, Peer, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec
from lab.protocols._verbs import Deadline, request

__all__ = [
    "BATCH_LINES",
    "LINE_WIDTH",
    "MAX_DATAGRAM",
    "SPEC",
    "Characters",
    "ChargenClient",
    "ChargenConversation",
    "ChargenServer",
    "ChargenSession",
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

    KIND: ClassVar[str] = "chargen"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"length"})  # UDP lengths are random

    def summary(self) -> str:
        return f"{len(self.raw)} characters {escape_bytes(self.raw, 40)}"

    def fields(self) -> dict[str, Any]:
        return {"length": len(self.raw)}


class ChargenConversation(ServerSpeaks):
    """The server's pattern as lines (TCP) or :class:`Characters` datagrams
    (UDP); the client's bytes or datagrams, which the server throws away."""

    def server_stream(self) -> Decoder:
        return LineDecoder()

    def server_datagrams(self) -> Decoder:
        return DatagramDecoder(Characters)


class ChargenSession(Session["ChargenServer"]):
    """One client: over TCP, where it is in the pattern and the pump that
    feeds it; over UDP, an answer per datagram."""

    def __init__(self, server: ChargenServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.next_line = 0
        self._next_batch: Timer | None = None  # the pump's pending call
        self._streaming = False

    def connection_made(self) -> None:
        if self.conn.transport is Transport.TCP:
            self._streaming = True
            self._pump()

    def message_received(self, msg: Message) -> None:
        if self.conn.transport is Transport.UDP:
            self.conn.send(self.server.datagram())
        # RFC 864: data from a TCP client is thrown away

    def writable(self) -> None:
        if self._streaming and self._next_batch is None:
            self._pump()

    def connection_lost(self) -> None:
        self._stop()

    def _stop(self) -> None:
        self._streaming = False
        if self._next_batch is not None:
            self._next_batch.cancel()
            self._next_batch = None

    def _pump(self) -> None:
        """Send one batch, then come back on the next loop turn, unless the
        transport asked us to pause: then :meth:`writable` resumes.

        Pausing on ``write_paused`` is what keeps the server's buffer
        bounded however slowly the client reads.
        """
        self._next_batch = None
        if not self._streaming or self.conn.write_paused:
            return
        batch = pattern(self.next_line, BATCH_LINES * _LINE_SIZE)
        try:
            self.conn.send(Characters(raw=batch))
        except ConnectionClosed:
            self._stop()  # closing already (idle timeout, `stop`): connection_lost follows
            return
        self.next_line = (self.next_line + BATCH_LINES) % len(_LINES)
        if not self.conn.write_paused:
            # the loop turn lets reads and other connections run between batches
            self._next_batch = self.server.clock.call_soon(self._pump)


class ChargenServer(ServerBehaviour[Any]):
    """Streams the pattern to TCP clients as fast as they read it; answers
    UDP datagrams with a random-length run of it."""

    session_type = ChargenSession

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        # UDP answers go on through the pattern whoever asks, as inetd's do
        self._next_datagram_line = 0
        self.rng = random.Random()  # replace with a seeded one for repeatable lengths

    def datagram(self) -> Characters:
        """The next UDP answer: 0 to 512 characters, one line further on."""
        length = self.rng.randint(0, MAX_DATAGRAM)
        first = self._next_datagram_line
        self._next_datagram_line = (first + 1) % len(_LINES)
        return Characters(raw=pattern(first, length))


class ChargenClient(ClientVerbs[Any]):
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
    conversation=ChargenConversation,
    server=ChargenServer,
    client=ChargenClient,
    keywords=("generator", "flood", "load"),
)
