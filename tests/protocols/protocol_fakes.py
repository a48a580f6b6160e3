"""In-memory stand-ins for protocol tests (fixtures in conftest.py).

* :class:`FakePeer`: a :class:`Peer` that records what a server behaviour does.
* :class:`Loopback`: client verbs wired to a server behaviour through both
  codecs, with flow control, no sockets.
* :class:`CodecLaws`: the properties every codec must keep, for hypothesis
  tests: bytes split anywhere decode the same, raise nothing but
  :class:`RemoteProtocolError`, and re-encode to exactly what was consumed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from lab.errors import ConnectionClosed, LabTimeout, ProtocolError, RemoteProtocolError
from lab.protocols._base import Codec, Message, ProtocolSpec, Role, Transport

__all__ = ["CodecLaws", "FakePeer", "Loopback", "Runner", "split_at"]

Runner = Callable[[Any], Any]


class FakePeer:
    """Records sends, notes and closing instead of doing I/O.

    Like the lab's connections, writing after :meth:`close` raises
    :class:`ConnectionClosed`. With ``window`` set, ``write_paused`` turns
    true once that many bytes were written since the last :meth:`resume`.
    """

    def __init__(
        self,
        transport: Transport = Transport.TCP,
        *,
        conn_id: str = "srv-1",
        codec: Codec | None = None,
        window: int | None = None,
        on_write: Callable[[bytes], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.id = conn_id
        self.peer: tuple[Any, ...] = ("127.0.0.1", 40000)
        self.transport = transport
        self.codec = codec
        self.window = window
        self.sent: list[Message] = []  # messages given to send()
        self.writes: list[bytes] = []  # every write, from send() or send_raw()
        self.notes: list[str] = []
        self.closed = False
        self.paused = False
        self._since_resume = 0
        self._on_write = on_write
        self._on_close = on_close

    @property
    def write_paused(self) -> bool:
        return self.paused

    @property
    def data(self) -> bytes:
        """Everything written, joined."""
        return b"".join(self.writes)

    def send(self, msg: Message) -> None:
        data = self.codec.encode(msg) if self.codec is not None else msg.raw
        self._write(data)
        self.sent.append(msg)

    def send_raw(self, data: bytes) -> None:
        self._write(bytes(data))

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed(f"{self.id} is closed")
        self.writes.append(data)
        if self.window is not None:
            self._since_resume += len(data)
            if self._since_resume >= self.window:
                self.paused = True
        if self._on_write is not None:
            self._on_write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._on_close is not None:
                self._on_close()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def resume(self) -> None:
        self.paused = False
        self._since_resume = 0


class Loopback:
    """One client and one server behaviour joined in memory.

    It is the client's :class:`Channel` (give it to the verbs class) and
    owns the server side's :class:`FakePeer` (``peer``). Bytes go through
    the real codecs of both roles. Like ``lab.connection``: ``receive``
    raises :class:`ConnectionClosed` once the server closed and nothing is
    left, :class:`LabTimeout` when nothing comes in time; behaviour
    exceptions are caught and listed in ``errors`` (the lab logs them).
    With ``window``, the server's peer pauses while that many bytes wait
    unread by the client, and resumes when the client has read half.
    Build it inside a running loop: TCP servers start on construction,
    after ``prepare(behaviour)`` if given (to set a clock, a seed).
    """

    def __init__(
        self,
        spec: ProtocolSpec,
        transport: Transport = Transport.TCP,
        options: Mapping[str, Any] | None = None,
        *,
        window: int | None = None,
        prepare: Callable[[Any], None] | None = None,
    ) -> None:
        self.spec = spec
        self.transport = transport
        # Any: tests reach into the protocol's own behaviour class
        self.behaviour: Any = spec.server(spec.resolve_options(options or {}))
        self.server_codec = spec.codec(Role.SERVER, transport)
        self.client_codec = spec.codec(Role.CLIENT, transport)
        self.peer = FakePeer(
            transport, codec=self.server_codec, on_write=self._to_client, on_close=self._server_closed
        )
        self.window = window
        self.inbox: deque[Message] = deque()
        self.client_writes: list[bytes] = []
        self.errors: list[BaseException] = []
        self.client_error: ProtocolError | None = None
        self.closed = False
        self.server_lost = False
        self._unread = 0
        self._arrived = asyncio.Event()
        self._connected = False
        if prepare is not None:
            prepare(self.behaviour)
        if transport is Transport.TCP:
            self._connect()

    # -- server side --------------------------------------------------------

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.errors.append(exc)

    def _connect(self) -> None:
        self._connected = True
        self._guard(self.behaviour.connection_made, self.peer)

    def _dispatch(self, data: bytes) -> None:
        # as the lab does: messages decoded before an error are handed over
        # first, and none once the server has hung up
        error = None
        try:
            msgs = self.server_codec.feed(data)
        except ProtocolError as exc:
            msgs, error = exc.decoded, exc
        for msg in msgs:
            if self.peer.closed:
                return
            self._guard(self.behaviour.message_received, self.peer, msg)
        if error is not None and not self.peer.closed:
            self._guard(self.behaviour.protocol_error, self.peer, error)

    def _to_client(self, data: bytes) -> None:
        if self.transport is Transport.TCP and not data:
            return  # transport.write(b"") sends nothing
        try:
            msgs = self.client_codec.feed(data)
        except ProtocolError as exc:
            self.client_error = exc  # the lab aborts the client connection
            self._client_gone()
            return
        for msg in msgs:
            self.inbox.append(msg)
            self._unread += len(msg.raw)
        if self.window is not None and self._unread >= self.window:
            self.peer.paused = True
        self._arrived.set()

    def _server_closed(self) -> None:
        if self.transport is Transport.UDP:
            self._lose_server()  # a datagram peer is merely forgotten
            return
        try:
            self.inbox.extend(self.client_codec.feed(b""))
        except ProtocolError as exc:
            self.client_error = exc
        self._client_gone()

    def _client_gone(self) -> None:
        self.closed = True
        self._arrived.set()
        self._lose_server()

    def _lose_server(self) -> None:
        if not self.server_lost:
            self.server_lost = True
            self.peer.closed = True
            self._guard(self.behaviour.connection_lost, self.peer)

    # -- the Channel ---------------------------------------------------------

    async def send(self, msg: Message) -> None:
        await self.send_raw(self.client_codec.encode(msg))

    async def send_raw(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed("client is closed")
        self.client_writes.append(bytes(data))
        if self.transport is Transport.UDP:
            if not self._connected:
                self._connect()
            self._dispatch(bytes(data))
        elif data:
            self._dispatch(bytes(data))

    def half_close(self) -> None:
        """The client sends EOF: the server codec flushes, then eof_received."""
        self._dispatch(b"")
        if not self.peer.closed:
            self._guard(self.behaviour.eof_received, self.peer)

    async def receive(self, timeout: float | None = 10.0) -> Message:
        while not self.inbox:
            if self.closed:
                raise ConnectionClosed("closed by peer")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                raise LabTimeout(f"nothing arrived within {timeout} s") from None
        msg = self.inbox.popleft()
        self._unread -= len(msg.raw)
        if self.peer.paused and self.window is not None and self._unread <= self.window // 2:
            self.peer.resume()
            # the transport reports "drained" from the loop, not from inside a read
            asyncio.get_running_loop().call_soon(self._guard, self.behaviour.writable, self.peer)
        return msg

    async def expect(self, pattern: Any, timeout: float | None = 10.0) -> Message:
        while True:
            msg = await self.receive(timeout)
            if pattern(msg) if callable(pattern) else pattern in msg.raw:
                return msg

    async def wait_closed(self, timeout: float | None = 10.0) -> None:
        async def closed() -> None:
            while not self.closed:
                self._arrived.clear()
                await self._arrived.wait()

        try:
            await asyncio.wait_for(closed(), timeout)
        except TimeoutError:
            raise LabTimeout(f"still open after {timeout} s") from None

    async def close(self) -> None:
        self.closed = True
        self._lose_server()


# -- codec laws ------------------------------------------------------------------


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length) into
    non-empty pieces; empty data gives no pieces."""
    points = sorted({c % len(data) for c in cuts} - {0}) if data else []
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if a < b]


class CodecLaws:
    """The properties every codec keeps; each check returns the messages."""

    @staticmethod
    def _spent(codec: Codec) -> None:
        # after an error the codec is spent: it keeps raising
        with pytest.raises(ProtocolError):
            codec.feed(b"more")

    def stream(
        self,
        make: Callable[[], Codec],
        data: bytes,
        cuts: list[int],
        *,
        eof: bool = True,
        framed: bool = True,
    ) -> list[Message]:
        """Feed a stream codec ``data`` in pieces (then EOF) and check that
        only :class:`RemoteProtocolError` escapes, that the messages
        re-encode to exactly the bytes consumed, and, for ``framed`` codecs
        (not raw chunks), that splitting changes no message."""
        msgs, error, codec = self._feed_stream(make(), split_at(data, cuts), eof)
        wire = b"".join(codec.encode(m) for m in msgs)
        assert data.startswith(wire)
        whole_msgs, whole_error, _ = self._feed_stream(make(), [data] if data else [], eof)
        assert (error is None) == (whole_error is None)
        if error is not None:
            self._spent(codec)
            return msgs
        assert len(wire) + codec.buffered == len(data)
        if eof:
            assert wire == data
        if framed:
            assert msgs == whole_msgs
        return msgs

    @staticmethod
    def _feed_stream(
        codec: Codec, pieces: list[bytes], eof: bool
    ) -> tuple[list[Message], RemoteProtocolError | None, Codec]:
        msgs: list[Message] = []
        for piece in [*pieces, b""] if eof else pieces:
            try:
                msgs += codec.feed(piece)
            except RemoteProtocolError as exc:
                return msgs, exc, codec
        return msgs, None, codec

    def datagrams(self, make: Callable[[], Codec], datagrams: list[bytes]) -> list[Message]:
        """Feed a datagram codec: one message per datagram, re-encoding to
        that datagram, or a :class:`RemoteProtocolError` that spends it."""
        codec = make()
        msgs: list[Message] = []
        for datagram in datagrams:
            try:
                got = codec.feed(datagram)
            except RemoteProtocolError:
                self._spent(codec)
                break
            assert len(got) == 1
            assert codec.encode(got[0]) == datagram
            msgs += got
        return msgs
