"""Connections: where bytes meet codecs, behaviours and the event log.

A :class:`Connection` is one conversation: an accepted TCP socket, one UDP
peer of a server, or a client's socket.  It feeds received bytes to the
protocol's codec, records what its endpoint's capture level asks for, and
hands each message to the server behaviour (or, for a client, queues it
for ``receive``/``expect``).

Tests: tests/test_lab.py, tests/test_hostile.py
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import re
import traceback
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from lab.errors import ConnectionClosed, LabError, LabTimeout, ProtocolError
from lab.eventlog import Capture, Direction, EventKind
from lab.protocols._base import Codec, Message, Role, Transport, escape_bytes

if TYPE_CHECKING:
    from lab.endpoints import Endpoint

__all__ = ["ANSWERING", "ConnState", "Connection", "DatagramPeer", "Pattern", "StreamConnection", "match"]

# True while a client's verbs react to what arrived (and in the tasks they
# start then): what they send, like IRC's PONG to a PING, is the client's
# own doing, which a recording leaves to the client that replays it
ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("netlab_answering", default=False)

logger = logging.getLogger(__name__)

INBOX_LIMIT = 10_000
READ_SIZE = 256 * 1024

Pattern = bytes | str | re.Pattern[Any] | int | Callable[[Message], bool]


def match(pattern: Pattern, msg: Message) -> bool:
    """Does ``msg`` satisfy ``pattern``?

    bytes: contained in the raw bytes; str: contained in the text; a
    compiled regex: searched in the text (str) or raw bytes (bytes); an
    int: equals the message's ``code`` (reply codes); a callable: its
    verdict.
    """
    if isinstance(pattern, bytes):
        return pattern in msg.raw
    if isinstance(pattern, str):
        return pattern in msg.text
    if isinstance(pattern, re.Pattern):
        target = msg.raw if isinstance(pattern.pattern, bytes) else msg.text
        return pattern.search(target) is not None
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        return getattr(msg, "code", None) == pattern
    if callable(pattern):
        return bool(pattern(msg))
    raise TypeError(f"cannot match a message against {type(pattern).__name__}")


def describe(pattern: Pattern) -> str:
    if isinstance(pattern, re.Pattern):
        return f"/{pattern.pattern!s}/"
    if isinstance(pattern, bytes):
        return escape_bytes(pattern)
    if callable(pattern) and not isinstance(pattern, (str, int)):
        return getattr(pattern, "__name__", "predicate")
    return repr(pattern)


class ConnState(enum.Enum):
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Connection:
    """Common core of every connection; subclasses supply ``_write``."""

    transport_kind: Transport = Transport.TCP
    # the last message summarised: a server relaying one message to many
    # connections (an IRC channel) records it once per copy
    _summarised: tuple[Message | None, str] = (None, "")

    def __init__(self, endpoint: Endpoint, conn_id: str, role: Role, codec: Codec) -> None:
        self.endpoint = endpoint
        self.id = conn_id
        self.role = role
        self.codec = codec
        self._feed = codec.feed
        # a codec that holds input until we answer (SMTP's DATA) says so
        self._holds_input: bool = getattr(codec, "holds_input", False)
        self._capture: Capture = endpoint.capture  # kept in step by Endpoint.capture
        self._log = endpoint.lab.log
        self._proto = endpoint.spec.name
        self._behaviour = getattr(endpoint, "behaviour", None)
        self._mirror: Codec | None = None
        self._mirror_broken = False
        self.state = ConnState.OPENING
        self.peer: tuple[Any, ...] = ()
        self.local: tuple[Any, ...] = ()
        self.bytes_in = self.bytes_out = 0
        self.msgs_in = self.msgs_out = 0
        self.close_reason = ""
        self.write_paused = False
        self.last_active = monotonic()
        self._inbox: deque[Message] | None = deque() if role is Role.CLIENT else None
        # client verbs that watch every message as it arrives (keep-alives)
        self.observer: Callable[[Message], None] | None = None
        self._skipped: deque[Message] = deque(maxlen=5)
        self._wakeup: asyncio.Future[None] | None = None
        self._closed_future: asyncio.Future[None] = endpoint.lab.loop.create_future()

    @property
    def transport(self) -> Transport:
        return self.transport_kind

    # -- recording -------------------------------------------------------

    def _emit(self, kind: EventKind, direction: Direction = Direction.NONE, **kw: Any) -> None:
        self._log.emit(kind, endpoint=self.endpoint.name, conn=self.id, direction=direction,
                       protocol=self._proto, **kw)

    def note(self, text: str) -> None:
        """Add an info event about this connection to the log."""
        if self._capture is not Capture.OFF:
            self._emit(EventKind.INFO, text=text)

    def error(self, text: str) -> None:
        """Add an error event (recorded at every capture level)."""
        self._emit(EventKind.ERROR, text=text)

    def _record(self, direction: Direction, raw: bytes | None, msgs: list[Message]) -> None:
        # positional emit calls: this runs for every message at full capture
        capture = self._capture
        if capture is Capture.OFF:
            return
        emit, name, cid, proto = self._log.emit, self.endpoint.name, self.id, self._proto
        if capture is Capture.FULL:
            # a chunk that is exactly one message is recorded once, as that message
            if raw and not (len(msgs) == 1 and msgs[0].raw == raw):
                emit(EventKind.DATA, name, cid, direction, proto, None, raw)
            for msg in msgs:
                emit(EventKind.MESSAGE, name, cid, direction, proto, None, msg.raw, msg)
        else:
            for msg in msgs:
                last, summary = Connection._summarised
                if msg is not last:
                    summary = msg.summary()
                    Connection._summarised = (msg, summary)
                emit(EventKind.MESSAGE, name, cid, direction, proto, summary)

    # -- receiving -------------------------------------------------------

    def _received(self, data: bytes) -> None:
        """Decode, record and deliver received bytes (``b""``: end of stream)."""
        # the hot path of every server: keep it free of needless calls
        self.last_active = monotonic()
        self.bytes_in += len(data)
        error = None
        try:
            msgs = self._feed(data)
        except ProtocolError as exc:
            msgs, error = exc.decoded, exc
        self.msgs_in += len(msgs)
        if self._capture is not Capture.OFF:
            self._record(Direction.IN, data, msgs)
        self._deliver(msgs)
        if error is not None:
            self._protocol_error(error)
        elif msgs and self._holds_input:
            self._release_held()

    def _release_held(self) -> None:
        """Deliver what the codec held back until we answered (after SMTP's
        DATA the next bytes are a message only if we said 354)."""
        while self.state is ConnState.OPEN or self.state is ConnState.OPENING:
            try:
                msg = self.codec.next_message()
            except ProtocolError as exc:
                self._protocol_error(exc)
                return
            if msg is None:
                return
            self.msgs_in += 1
            self._record(Direction.IN, None, [msg])
            self._deliver([msg])

    def _deliver(self, msgs: list[Message]) -> None:
        """Hand messages to the behaviour (server) or the inbox (client)."""
        if self._inbox is not None:
            if self.observer is not None:
                self._observe(msgs)
            self._queue(msgs)
            return
        handle = self.endpoint.handle
        for msg in msgs:
            if self.state is not ConnState.OPEN:
                break  # the server hung up: the rest of the chunk is only logged
            try:
                handle(self, msg)
            except Exception as exc:
                self.error(f"handling {msg.kind} raised {format_exception(exc)}")
                logger.debug("handler of %s raised", self.id, exc_info=True)

    def _observe(self, msgs: list[Message]) -> None:
        observer = self.observer
        assert observer is not None
        token = ANSWERING.set(True)
        try:
            for msg in msgs:
                try:
                    observer(msg)
                except Exception as exc:
                    self.error(f"watching {msg.kind} raised {format_exception(exc)}")
                    logger.debug("observer of %s raised", self.id, exc_info=True)
        finally:
            ANSWERING.reset(token)

    def _queue(self, msgs: list[Message]) -> None:
        inbox = self._inbox
        assert inbox is not None
        inbox.extend(msgs)
        if len(inbox) >= INBOX_LIMIT:
            self._inbox_full()
        if msgs:
            self._wake()

    def _protocol_error(self, exc: ProtocolError) -> None:
        self.error(f"protocol error from peer: {exc}")
        if self._behaviour is not None:
            self.endpoint.guard(self, "protocol_error", self._behaviour.protocol_error, self, exc)
        else:
            self.abort(f"protocol error: {exc}")

    def _eof(self) -> None:
        """The peer finished sending: let the codec flush a last message."""
        self._received(b"")

    def _inbox_full(self) -> None:
        """Nobody is consuming: stop reading (TCP) or forget the oldest (UDP)."""
        assert self._inbox is not None
        while len(self._inbox) >= INBOX_LIMIT:
            self._inbox.popleft()

    def _inbox_drained(self) -> None:
        """Called when receive/expect take messages out of a full inbox."""

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- sending ---------------------------------------------------------

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def send(self, msg: Message | bytes | str) -> None:
        """Encode and send a message (bytes and str are sent as they are)."""
        if not isinstance(msg, Message):
            self.send_raw(msg.encode() if isinstance(msg, str) else msg)
            return
        raw = self.codec.encode(msg)
        self._check_open()
        self._write(raw)
        self.bytes_out += len(raw)
        self.msgs_out += 1
        self._record(Direction.OUT, raw, [msg])

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are; the log still shows them decoded."""
        if self.state is not ConnState.OPEN:
            self._check_open()
        self._write(data)
        self.codec.sent(data)
        self.bytes_out += len(data)
        if self._capture is not Capture.OFF:
            self._record(Direction.OUT, data, self._decode_outgoing(data))

    def _decode_outgoing(self, data: bytes) -> list[Message]:
        if self._mirror_broken:
            return []
        if self._mirror is None:
            self._mirror = self.endpoint.spec.codec(self.role.peer, self.transport_kind)
        try:
            msgs = self._mirror.feed(data)
        except ProtocolError as exc:
            self._mirror_broken = True
            self.note(f"outgoing bytes do not decode as {self._proto}: {exc}")
            return []
        self.msgs_out += len(msgs)
        return msgs

    def _check_open(self) -> None:
        if self.state in (ConnState.CLOSING, ConnState.CLOSED):
            raise ConnectionClosed(f"{self.id} is closed", hint="connect again")

    # -- waiting (client side) ------------------------------------------

    async def _wait_for_message(self, deadline: float | None) -> None:
        loop = self.endpoint.lab.loop
        self._wakeup = loop.create_future()
        try:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait_for(asyncio.shield(self._wakeup), timeout)
        finally:
            self._wakeup = None

    def _deadline(self, timeout: float | None) -> float | None:
        return None if timeout is None else self.endpoint.lab.loop.time() + timeout

    async def receive(self, timeout: float | None = 10.0) -> Message:
        """The next message from the peer; :class:`ConnectionClosed` once
        the peer has closed and nothing is left; :class:`LabTimeout`."""
        inbox = self._require_inbox()
        deadline = self._deadline(timeout)
        while not inbox:
            if self.state is ConnState.CLOSED:
                raise ConnectionClosed(f"{self.id} closed: {self.close_reason or 'by peer'}")
            try:
                await self._wait_for_message(deadline)
            except TimeoutError:
                raise LabTimeout(f"{self.id}: nothing arrived within {timeout} s") from None
        msg = inbox.popleft()
        self._inbox_drained()
        return msg

    async def expect(self, pattern: Pattern, timeout: float | None = 10.0) -> Message:
        """Skip messages until one matches ``pattern`` (see :func:`match`)
        and return it; the failure says what arrived instead."""
        inbox = self._require_inbox()
        deadline = self._deadline(timeout)
        while True:
            while inbox:
                msg = inbox.popleft()
                if match(pattern, msg):
                    self._inbox_drained()
                    return msg
                self._skipped.append(msg)
            self._inbox_drained()
            if self.state is ConnState.CLOSED:
                raise ConnectionClosed(
                    f"{self.id} closed before {describe(pattern)} arrived"
                    f" ({self.close_reason or 'by peer'}){self._arrived()}"
                )
            try:
                await self._wait_for_message(deadline)
            except TimeoutError:
                raise LabTimeout(
                    f"{self.id}: expected {describe(pattern)} within {timeout} s{self._arrived()}"
                ) from None

    def _arrived(self) -> str:
        if not self._skipped:
            return "; nothing arrived"
        return "; got " + ", ".join(m.summary() for m in self._skipped)

    def _require_inbox(self) -> deque[Message]:
        if self._inbox is None:
            raise LabError(f"{self.id} is a server-side connection", hint="expect on a client")
        return self._inbox

    @property
    def pending(self) -> int:
        """Messages received and not yet consumed by receive/expect."""
        return len(self._inbox) if self._inbox is not None else 0

    async def wait_closed(self, timeout: float | None = 10.0) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._closed_future), timeout)
        except TimeoutError:
            raise LabTimeout(f"{self.id} still open after {timeout} s") from None

    # -- closing ---------------------------------------------------------

    def close(self) -> None:
        """Close after sending what is buffered."""
        raise NotImplementedError

    def abort(self, reason: str = "aborted") -> None:
        """Close at once, dropping buffered output."""
        raise NotImplementedError

    def _closed(self, reason: str) -> None:
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        self.close_reason = self.close_reason or reason
        self._emit(EventKind.CLOSE, text=f"{self.close_reason}; in {self.bytes_in} B, out {self.bytes_out} B")
        if not self._closed_future.done():
            self._closed_future.set_result(None)
        self._wake()
        self.endpoint.connection_closed(self)

    def status(self) -> str:
        host_port = format_address(self.peer) if self.peer else "?"
        return (
            f"{self.id} {self.state.value} {host_port} in {self.bytes_in} B/{self.msgs_in} msg,"
            f" out {self.bytes_out} B/{self.msgs_out} msg"
        )

    def __repr__(self) -> str:
        return f"<Connection {self.status()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from lab.reprs import pretty

        pretty(self, p, cycle)

    def _repr_html_(self) -> str:
        from lab.reprs import html_of

        return html_of(self)


def format_address(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class StreamConnection(Connection, asyncio.BufferedProtocol):
    """A TCP connection, accepted by a server or opened by a client.

    It reads into its lab's one shared buffer and copies out exactly what
    arrived.  asyncio's own reads allocate 256 KiB per chunk and shrink it
    in place, which pins heap pages while the event log holds chunks or
    their summaries: about twice the CPU per message when recording.
    """

    def __init__(self, endpoint: Endpoint, conn_id: str, role: Role, codec: Codec,
                 idle_timeout: float | None = None) -> None:
        super().__init__(endpoint, conn_id, role, codec)
        self._transport: asyncio.Transport | None = None
        self._idle_timeout = idle_timeout
        self._idle_handle: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._rbuf: memoryview = endpoint.lab.read_buffer
        self._pending: list[bytes] = []  # sent this loop pass, when coalescing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.peer = tuple(transport.get_extra_info("peername") or ())
        self.local = tuple(transport.get_extra_info("sockname") or ())
        self.state = ConnState.OPEN
        if not self.endpoint.admit(self):
            return
        ends = (self.peer, self.local) if self.role is Role.SERVER else (self.local, self.peer)
        self._emit(EventKind.OPEN, text=" -> ".join(format_address(a) for a in ends))
        self._write = transport.write  # type: ignore[attr-defined,method-assign]
        if self._behaviour is not None and self._behaviour.coalesce_writes:
            self._write = self._write_later  # type: ignore[method-assign]
        if self._idle_timeout:
            self._idle_handle = self.endpoint.lab.loop.call_later(self._idle_timeout, self._check_idle)
        self.endpoint.opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        # shared by every connection of the loop: each read is copied out
        # in buffer_updated before the loop reads again
        return self._rbuf

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self._rbuf[:nbytes].tobytes())

    data_received = Connection._received  # for feeding bytes by hand

    def eof_received(self) -> bool:
        self.note("peer finished sending (EOF)")
        self._eof()
        if self._behaviour is not None and self.state is ConnState.OPEN:
            self.endpoint.guard(self, "eof_received", self._behaviour.eof_received, self)
            return True  # the behaviour decides when our side closes
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._closed(f"lost: {exc}" if exc else "closed")

    def pause_writing(self) -> None:
        # a peer that sends but does not read must not grow our buffers:
        # stop reading its requests until our replies drain
        self.write_paused = True
        if self._transport is not None and self.role is Role.SERVER:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._transport is not None and self.role is Role.SERVER and self.state is ConnState.OPEN:
            self._transport.resume_reading()
        if self._behaviour is not None:
            self.endpoint.guard(self, "writable", self._behaviour.writable, self)

    def _check_idle(self) -> None:
        loop = self.endpoint.lab.loop
        assert self._idle_timeout is not None
        quiet = monotonic() - self.last_active
        if quiet >= self._idle_timeout:
            self._idle_handle = None
            self.error(f"idle for {self._idle_timeout:g} s: closing")
            self.abort(f"idle timeout ({self._idle_timeout:g} s)")
        else:
            self._idle_handle = loop.call_later(self._idle_timeout - quiet, self._check_idle)

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def _write_later(self, data: bytes) -> None:
        # the flush runs before the loop next polls for input, so this
        # saves system calls without adding a wait
        if not self._pending:
            self.endpoint.lab.loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None and self.state is ConnState.OPEN:
            self._flush()
            self.state = ConnState.CLOSING
            self._transport.close()

    def abort(self, reason: str = "aborted") -> None:
        self.close_reason = self.close_reason or reason
        self._pending.clear()
        if self._transport is not None and self.state is not ConnState.CLOSED:
            self.state = ConnState.CLOSING
            self._transport.abort()

    def _inbox_full(self) -> None:
        if self._transport is not None and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def _inbox_drained(self) -> None:
        if self._reading_paused and self._inbox is not None and len(self._inbox) < INBOX_LIMIT // 2:
            self._reading_paused = False
            if self._transport is not None and self.state is ConnState.OPEN:
                self._transport.resume_reading()

    def half_close(self) -> None:
        """Send EOF (TCP FIN) but keep reading."""
        if self._transport is not None and self._transport.can_write_eof():
            self._flush()
            self._transport.write_eof()


class DatagramPeer(Connection):
    """One remote address talking to a UDP server."""

    transport_kind = Transport.UDP

    def __init__(self, endpoint: Endpoint, conn_id: str, codec: Codec,
                 transport: asyncio.DatagramTransport, addr: tuple[Any, ...], sock: Any) -> None:
        super().__init__(endpoint, conn_id, Role.SERVER, codec)
        self._transport = transport
        self._sock = sock
        self.peer = addr
        self.local = tuple(transport.get_extra_info("sockname") or ())
        self.state = ConnState.OPEN

    def _write(self, data: bytes) -> None:
        if data:
            self._transport.sendto(data, self.peer)
        else:
            send_empty(self, lambda: self._sock.sendto(b"", self.peer))

    def close(self) -> None:
        self._closed("forgotten")

    def abort(self, reason: str = "aborted") -> None:
        self._closed(reason)


class DatagramClientConnection(Connection, asyncio.DatagramProtocol):
    """A client's connected UDP socket."""

    transport_kind = Transport.UDP

    def __init__(self, endpoint: Endpoint, conn_id: str, codec: Codec) -> None:
        super().__init__(endpoint, conn_id, Role.CLIENT, codec)
        self._transport: asyncio.DatagramTransport | None = None
        self.sock: Any = None  # the socket itself, for empty datagrams

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.peer = tuple(transport.get_extra_info("peername") or ())
        self.local = tuple(transport.get_extra_info("sockname") or ())
        self.state = ConnState.OPEN
        self._emit(EventKind.OPEN, text=f"udp {format_address(self.local)} -> {format_address(self.peer)}")

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._received(data)

    def error_received(self, exc: Exception) -> None:
        self.error(f"datagram error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(f"lost: {exc}" if exc else "closed")

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        if data:
            self._transport.sendto(data)
        else:
            sock = self.sock
            assert sock is not None
            send_empty(self, lambda: sock.send(b""))

    def close(self) -> None:
        if self._transport is not None and self.state is ConnState.OPEN:
            self.state = ConnState.CLOSING
            self._transport.close()

    def abort(self, reason: str = "aborted") -> None:
        self.close_reason = self.close_reason or reason
        if self._transport is not None and self.state is not ConnState.CLOSED:
            self.state = ConnState.CLOSING
            self._transport.abort()


def send_empty(conn: Connection, send: Callable[[], Any]) -> None:
    """Send an empty datagram, which asyncio's transports skip."""
    try:
        send()
    except OSError as exc:
        conn.error(f"cannot send empty datagram: {exc}")


def format_exception(exc: BaseException) -> str:
    """``ValueError: bad thing (at file.py:12 in fn)``: one readable line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"
