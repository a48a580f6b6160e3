"""Connections: where bytes meet conversations, sessions and the event log.

A :class:`Connection` is one conversation on the wire: an accepted TCP
socket, one UDP peer of a server, or a client's socket.  Received bytes go
into its protocol's :class:`~lab.protocols.Conversation`; the messages
that come out are recorded as its endpoint's capture level asks and
handed to the server's session (or, for a client, queued for
``receive``/``expect``).  Everything this side sends goes through the
same conversation, so the state follows both directions.

The loop is shared by every endpoint of a lab, so a connection is fair:

* it handles at most :data:`BATCH` messages, or :data:`PASS_TIME` of
  work, per pass of the loop, then stops reading and comes back on the
  next pass;
* while its peer does not read what it is sent (the write buffer is past
  the high-water mark) it stops *handling* input, not only reading it;
* what it holds is bounded: input stops being read past
  :data:`MAX_PENDING` bytes not yet handled, a client's inbox past
  :data:`INBOX_LIMIT` messages or :data:`INBOX_BYTES`;
* it never writes into a transport that is closing (asyncio warns on
  every such write, and a flood of warnings can block the loop).

A slow client must not hold a connection forever by trickling bytes
(each one resets the idle timer): a server's periodic sweep calls
:meth:`StreamConnection.check_pace`, which closes a connection whose
message has been arriving for longer than the server's line timeout
unless its bytes average the minimum rate (a body flowing at a healthy
pace).  Nothing of this runs per byte.

Tests: tests/test_lab.py, tests/test_hostile.py, tests/test_fairness.py
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.errors import ConnectionClosed, LabError, LabTimeout, ProtocolError, RemoteProtocolError
from lab.eventlog import Capture, Direction, EventKind
from lab.protocols._base import Message, Pattern, Role, Transport, describe_pattern
from lab.protocols._conversation import Conversation

if TYPE_CHECKING:
    from lab.endpoints import Endpoint
    from lab.protocols._session import Session

__all__ = ["ANSWERING", "BATCH", "ConnState", "Connection", "DatagramPeer", "RecordedConnection",
           "StreamConnection"]

# True while a client's verbs react to what arrived (and in the tasks they
# start then): what they send, like IRC's PONG to a PING, is the client's
# own doing, which a recording leaves to the client that replays it
ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("netlab_answering", default=False)

logger = logging.getLogger(__name__)

BATCH = 64  # messages one connection handles per pass of the loop
PASS_TIME = 0.002  # seconds of handling per pass, looked at every few messages
_TIME_EVERY = 8
MAX_PENDING = 2 * 1024 * 1024  # bytes received and not yet handled before reading stops
HOLD_READ_AHEAD = 256 * 1024  # bytes read behind a held message before reading stops
INBOX_LIMIT = 10_000  # messages a client holds for receive/expect
INBOX_BYTES = 16 * 1024 * 1024  # ... and their bytes
READ_SIZE = 256 * 1024
CLOSE_GRACE = 2.0  # seconds a connection cut for slowness may take to send its last reply


class ConnState(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# Why a connection is not reading (any reason is enough): bits, not an
# enum.Flag, because they are tested on every pass of every connection
BACKLOG = 1  # a batch ran out with input left: back next pass
PEER_SLOW = 2  # our replies do not drain: handle nothing more
INBOX = 4  # nobody takes a client's messages
PENDING = 8  # too much input held unhandled
HELD = 16  # an intercept holds a message: what follows it waits


_OPEN = ConnState.OPEN  # a global, not an enum lookup, in the loops that run per message


class Connection:
    """Common core of every connection; subclasses move the bytes."""

    transport_kind: Transport = Transport.TCP
    # the source address this connection counts against on its server
    source: str | None = None
    # the last message summarised: a server relaying one message to many
    # connections (an IRC channel) records it once per copy
    _summarised: tuple[Message | None, str] = (None, "")

    def __init__(self, endpoint: Endpoint, conn_id: str, role: Role, conversation: Conversation) -> None:
        self.endpoint = endpoint
        self.id = conn_id
        self.role = role
        self.conversation = conversation
        self._conv = conversation
        # stateless protocols (echo, IRC): straight to the decoder, on every read
        decoder = conversation.stateless_decoder()
        self._feed_in = decoder.receive_data if decoder is not None else conversation.receive_data
        self._next_in = decoder.next_message if decoder is not None else conversation.next_message
        self._own = conversation.stateless_decoder(role)  # what this side sends, the same way
        self._capture: Capture = endpoint.capture  # kept in step by Endpoint.capture
        self._recording = self._capture is not Capture.OFF
        self._follow_sends = conversation.follows_sends or self._capture is not Capture.OFF
        self._log = endpoint.lab.log
        self._loop = endpoint.lab.loop
        self._clock = endpoint.lab.clock
        self._proto = endpoint.spec.name
        self.session: Session[Any] | None = None
        self._handle: Callable[[Message], Any] | None = None
        self.state = ConnState.OPENING
        self.peer: tuple[Any, ...] = ()
        self.local: tuple[Any, ...] = ()
        self.bytes_in = self.bytes_out = 0
        self.msgs_in = self.msgs_out = 0
        self.close_reason = ""
        self.write_paused = False
        self._now = self._clock.time
        self.last_active = self._now()
        self._inbox: deque[Message] | None = deque() if role is Role.CLIENT else None
        self._inbox_bytes = 0
        # client verbs that watch every message as it arrives (keep-alives)
        self.observer: Callable[[Message], None] | None = None
        self._skipped: deque[Message] = deque(maxlen=5)
        self._wakeup: asyncio.Future[None] | None = None
        self._closed_future: asyncio.Future[None] = self._loop.create_future()
        self._chunk: bytes | None = None  # received, not yet in the log
        self._processing = False
        self._again: asyncio.Handle | None = None  # the next pass, when one is due
        self._paused = 0
        self._eof_pending = False  # the peer finished sending; tell the session once caught up
        self._unchecked = 0  # bytes received since the input held was last measured
        self._held: Any = None  # the message an intercept holds here, if one does
        self._send_noted = False
        # connections that belong to this one (FTP's data connections), while open
        self.children: list[RecordedConnection] = []
        self.parent: Connection | None = None

    @property
    def transport(self) -> Transport:
        return self.transport_kind

    def child(self, suffix: str, conversation: Conversation, peer: tuple[Any, ...], local: tuple[Any, ...], *,
              close: Callable[[], None] | None = None) -> RecordedConnection:
        """Record a connection that belongs to this one (an FTP data
        connection) and whose socket the protocol runs itself: its id is
        this one's with ``.suffix`` (``f#1.d2``), its events go to this
        endpoint's log, ``conversation`` (an observer) decodes what it
        reports, and it is listed in :attr:`children` while open."""
        conn = RecordedConnection(self.endpoint, f"{self.id}.{suffix}", self.role, conversation)
        conn.parent = self
        conn.attach(peer, local, close)
        conn.announce()
        self.children.append(conn)
        return conn

    def extra_info(self, name: str, default: Any = None) -> Any:
        """What the transport tells of itself (asyncio's ``get_extra_info``:
        ``"socket"``, ``"sockname"``, ...), or ``default``."""
        return default

    def _set_capture(self, capture: Capture) -> None:
        self._capture = capture
        self._recording = capture is not Capture.OFF
        self._follow_sends = self._conv.follows_sends or capture is not Capture.OFF

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

    def _flush_chunk(self) -> None:
        """Record the raw chunk received, if no message has taken it."""
        chunk, self._chunk = self._chunk, None
        if chunk and self._capture is Capture.FULL:
            self._log.emit(EventKind.DATA, self.endpoint.name, self.id, Direction.IN, self._proto, None, chunk)

    # -- receiving -------------------------------------------------------

    def _received(self, data: bytes) -> None:
        """Take bytes the peer sent (``b""``: it finished sending)."""
        # the hot path of every server: keep it free of needless calls
        self.last_active = self._now()
        size = len(data)
        self.bytes_in += size
        self._unchecked += size
        if self._chunk is not None:
            self._flush_chunk()
        try:
            self._feed_in(data)
        except ProtocolError as exc:
            self._chunk = data or None
            self._flush_chunk()
            self._protocol_error(exc)
            return
        if data:
            self._chunk = data
        elif self.transport_kind is Transport.TCP:
            self._eof_pending = True
        if not self._processing and self._again is None:
            self._process()

    def _process(self) -> None:
        """Handle messages from the peer: at most :data:`BATCH`, and none
        while the peer does not read our replies."""
        self._again = None
        if self._processing:
            return
        self._processing = True
        try:
            if self._inbox is None:
                self._serve_batch()
            else:
                self._queue_batch()
        except ProtocolError as exc:
            self._flush_chunk()
            self._protocol_error(exc)
        finally:
            self._processing = False

    def _serve_batch(self) -> None:
        """A server's pass: each message to its session, in order."""
        next_message = self._next_in
        follows = self._conv.follows_sends
        recording = self._recording
        budget = BATCH
        deadline = self._now() + PASS_TIME
        while budget:
            budget -= 1
            if not budget % _TIME_EVERY and self._now() > deadline:
                break  # slow messages: the others' turn
            if self.state is not _OPEN:
                self._log_after_hang_up()
                return
            if self.write_paused:
                return  # resume_writing comes back here
            if self._held is not None:
                self._read_while_held()
                return  # the release comes back here
            msg = next_message()
            if msg is None:
                if self._chunk is not None or self._paused or self._eof_pending or self._unchecked > MAX_PENDING // 4:
                    self._caught_up()
                return
            self.msgs_in += 1
            if recording:
                chunk, self._chunk = self._chunk, None
                self._record(Direction.IN, chunk, [msg])
            else:
                self._chunk = None
            if self.endpoint.breakpoints and self._hold(msg):
                return
            handle = self._handle
            if handle is not None:
                try:
                    handle(msg)
                except ConnectionClosed:
                    pass  # the connection went away under the handler; connection_lost follows
                except Exception as exc:
                    self.error(f"handling {msg.kind} raised {format_exception(exc)}")
                    logger.debug("handler of %s raised", self.id, exc_info=True)
            if follows:
                self._log_sent(None)
        self._more_later()

    def _queue_batch(self) -> None:
        """A client's pass: each message to the inbox (and the verbs' watcher)."""
        next_message = self._next_in
        follows = self._conv.follows_sends
        deadline = self._now() + PASS_TIME
        for count in range(1, BATCH + 1):
            if not count % _TIME_EVERY and self._now() > deadline:
                break
            if self._held is not None:
                self._read_while_held()
                return
            if self._inbox_over():
                self._pause(INBOX)
                return
            msg = next_message()
            if msg is None:
                self._caught_up()
                return
            self.msgs_in += 1
            if self._capture is not Capture.OFF:
                chunk, self._chunk = self._chunk, None
                self._record(Direction.IN, chunk, [msg])
            else:
                self._chunk = None
            if self.endpoint.breakpoints and self._hold(msg):
                return
            self._queue(msg)
            if follows:
                self._log_sent(None)  # an answer may release what we sent
        self._more_later()

    def _hold(self, msg: Message) -> bool:
        """Does an intercept hold ``msg``?  If so this connection stops
        here (reading too) until the message is released or dropped."""
        endpoint = self.endpoint
        intercepts = endpoint.lab.intercepts
        rule = intercepts.match(endpoint.name, self.id, Direction.IN, self._proto, msg, endpoint.breakpoints)
        if rule is None:
            return False
        self._held = intercepts.hold(rule, self.id, Direction.IN, self.role.peer, msg, self._go_on)
        self._read_while_held()
        return True

    def _read_while_held(self) -> None:
        """Go on reading behind a held message, up to a bound, so a peer
        that resets the connection is noticed."""
        if self._conv.buffered() > HOLD_READ_AHEAD:
            self._pause(HELD)

    def _go_on(self, msg: Message | None) -> None:
        """The held message was released (perhaps edited) or dropped."""
        self._held = None
        if msg is not None and self.state is not ConnState.CLOSED:
            if self._inbox is not None:
                self._queue(msg)
            elif self._handle is not None and self.state is _OPEN:
                try:
                    self._handle(msg)
                except ConnectionClosed:
                    pass
                except Exception as exc:
                    self.error(f"handling {msg.kind} raised {format_exception(exc)}")
                if self._conv.follows_sends:
                    self._log_sent(None)
        self._resume(HELD)
        if self._again is None and not self._processing and self.state is not ConnState.CLOSED:
            self._again = self._loop.call_soon(self._process)

    def _more_later(self) -> None:
        """The batch ran out: stop reading, come back on the next pass."""
        self._pause(BACKLOG)
        self._again = self._loop.call_soon(self._process)

    def _log_after_hang_up(self) -> None:
        """The server hung up: what the peer sent after that is logged, up
        to a batch of it, and never handled."""
        if self._capture is not Capture.OFF:
            try:
                for _ in range(BATCH):
                    msg = self._conv.next_message()
                    if msg is None:
                        break
                    chunk, self._chunk = self._chunk, None
                    self._record(Direction.IN, chunk, [msg])
            except ProtocolError:
                pass
        self._flush_chunk()

    def _caught_up(self) -> None:
        """No message is ready: read again, and pass on a pending EOF."""
        if self._chunk is not None:
            self._flush_chunk()
        # what is held unhandled is looked at only once enough came to matter
        if self._paused or self._unchecked > MAX_PENDING // 4:
            self._unchecked = 0
            if self._conv.buffered() > MAX_PENDING:
                self._pause(PENDING)  # held for an answer that has not come
            else:
                self._resume(BACKLOG | PENDING)
        if self._eof_pending and self.state is ConnState.OPEN:
            self._eof_pending = False
            self._peer_finished()

    def _peer_finished(self) -> None:
        """Every message before the peer's EOF has been handled."""

    def _queue(self, msg: Message) -> None:
        if self.observer is not None:
            token = ANSWERING.set(True)
            try:
                self.observer(msg)
            except Exception as exc:
                self.error(f"watching {msg.kind} raised {format_exception(exc)}")
                logger.debug("observer of %s raised", self.id, exc_info=True)
            finally:
                ANSWERING.reset(token)
        inbox = self._inbox
        assert inbox is not None
        inbox.append(msg)
        self._inbox_bytes += len(msg.raw)
        self._wake()

    def _inbox_over(self) -> bool:
        inbox = self._inbox
        return inbox is not None and (len(inbox) >= INBOX_LIMIT or self._inbox_bytes >= INBOX_BYTES)

    def _protocol_error(self, exc: ProtocolError) -> None:
        self.error(f"protocol error from peer: {exc}")
        if self.session is not None:
            self.endpoint.guard(self, "protocol_error", self.session.protocol_error, exc)
        else:
            self.abort(f"protocol error: {exc}")

    def _pause(self, why: int) -> None:
        if not self._paused:
            self._pause_reading()
        self._paused |= why

    def _resume(self, why: int) -> None:
        if self._paused & why:
            self._paused &= ~why
            if not self._paused:
                self._resume_reading()

    def _pause_reading(self) -> None:
        """Stop reading from the socket (where there is one to stop)."""

    def _resume_reading(self) -> None:
        pass

    def _taken(self, msg: Message) -> None:
        """receive/expect took ``msg`` from the inbox."""
        self._inbox_bytes -= len(msg.raw)
        if self._paused & INBOX and not self._inbox_over():
            self._resume(INBOX)
            if self._again is None and not self._processing:
                self._again = self._loop.call_soon(self._process)

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
        self._check_open()
        data = self._conv.send(msg)
        self._write(data)
        self.bytes_out += len(data)
        self._log_sent(data)
        self._sent()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are; the conversation follows them and the log
        shows them decoded."""
        if self.state is not _OPEN:
            self._check_open()
        self._write(data)
        self.bytes_out += len(data)
        if not self._follow_sends:
            return
        own = self._own
        if own is None:
            self._conv.send_data(data)
            self._log_sent(data)
            self._sent()
            return
        # stateless: only the log wants these, decoded straight away
        msgs = []
        try:
            if data or self.transport_kind is Transport.UDP:
                own.receive_data(data)
            while (msg := own.next_message()) is not None:
                msgs.append(msg)
        except RemoteProtocolError as exc:
            self._own = None  # as the conversation does: followed no further
            self._conv.send_error = exc
            self._log_sent(data)
            return
        self.msgs_out += len(msgs)
        if self._capture is not Capture.OFF:
            self._record(Direction.OUT, data, msgs)

    def inject(self, data: bytes, to: Role) -> None:
        """Send ``data`` to the side at the other end (the only one this
        connection reaches: a proxied connection reaches both)."""
        if to is not self.role.peer:
            raise LabError(f"{self.id} talks to its {self.role.peer.value} only",
                           hint=f"inject {self.id} --to {self.role.peer.value} ...")
        self.send_raw(data)

    def _log_sent(self, raw: bytes | None) -> None:
        conv = self._conv
        msgs = conv.take_sent()
        if conv.send_error is not None and not self._send_noted:
            self._send_noted = True
            self.note(f"outgoing bytes do not decode as {self._proto}: {conv.send_error}")
        self.msgs_out += len(msgs)
        if msgs or raw:
            self._record(Direction.OUT, raw, msgs)

    def _sent(self) -> None:
        """After a send: what we said may release input held for it (the
        delayed 354 after SMTP's DATA), so look again on the next pass."""
        if (self._conv.follows_sends and self._inbox is None and self._again is None
                and not self._processing and self._conv.buffered()):
            self._again = self._loop.call_soon(self._process)

    def _check_open(self) -> None:
        if self.state in (ConnState.CLOSING, ConnState.CLOSED):
            raise ConnectionClosed(f"{self.id} is closed", hint="connect again")

    # -- waiting (client side) ------------------------------------------

    async def _wait_for_message(self, deadline: float | None) -> None:
        loop = self._loop
        self._wakeup = loop.create_future()
        try:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait_for(asyncio.shield(self._wakeup), timeout)
        finally:
            self._wakeup = None

    def _deadline(self, timeout: float | None) -> float | None:
        return None if timeout is None else self._loop.time() + timeout

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
        self._taken(msg)
        return msg

    async def expect(self, pattern: Pattern, timeout: float | None = 10.0) -> Message:
        """Skip messages until one matches ``pattern`` (see
        :meth:`Message.matches`) and return it; the failure says what
        arrived instead."""
        inbox = self._require_inbox()
        deadline = self._deadline(timeout)
        while True:
            while inbox:
                msg = inbox.popleft()
                self._taken(msg)
                if msg.matches(pattern):
                    return msg
                self._skipped.append(msg)
            if self.state is ConnState.CLOSED:
                raise ConnectionClosed(
                    f"{self.id} closed before {describe_pattern(pattern)} arrived"
                    f" ({self.close_reason or 'by peer'}){self._arrived()}"
                )
            try:
                await self._wait_for_message(deadline)
            except TimeoutError:
                raise LabTimeout(
                    f"{self.id}: expected {describe_pattern(pattern)} within {timeout} s{self._arrived()}"
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
        if self._inbox is not None:
            self._drain_at_close()
        elif self._conv.role is not None and self._conv.buffered():
            self.note(f"{self._conv.buffered()} bytes received were not handled: the connection closed")
        self.state = ConnState.CLOSED
        if self._held is not None:
            self._held = None
            self.endpoint.lab.intercepts.forget(self.id)
        if self._again is not None:
            self._again.cancel()
            self._again = None
        self.close_reason = self.close_reason or reason
        self._emit(EventKind.CLOSE, text=f"{self.close_reason}; in {self.bytes_in} B, out {self.bytes_out} B")
        if not self._closed_future.done():
            self._closed_future.set_result(None)
        self._wake()
        self.endpoint.connection_closed(self)

    def _drain_at_close(self) -> None:
        """A client keeps every message that arrived before the close."""
        if self._processing:
            return
        self._processing = True
        try:
            while (msg := self._conv.next_message()) is not None:
                self.msgs_in += 1
                self._record(Direction.IN, self._chunk, [msg])
                self._chunk = None
                self._queue(msg)
        except ProtocolError as exc:
            self.error(f"protocol error from peer: {exc}")
        finally:
            self._processing = False
            self._flush_chunk()

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

    def __init__(self, endpoint: Endpoint, conn_id: str, role: Role, conversation: Conversation,
                 idle_timeout: float | None = None) -> None:
        super().__init__(endpoint, conn_id, role, conversation)
        self._transport: asyncio.Transport | None = None
        self._idle_timeout = idle_timeout
        self._idle_handle: Any = None
        self._rbuf: memoryview = endpoint.lab.read_buffer
        self._pending: list[bytes] = []  # sent this loop pass, when coalescing
        # the message now arriving, as the pace sweep last saw it: since
        # when (0: none), and the counters then
        self._partial_at = 0.0
        self._partial_msgs = 0
        self._partial_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.peer = tuple(transport.get_extra_info("peername") or ())
        self.local = tuple(transport.get_extra_info("sockname") or ())
        self.state = ConnState.OPEN
        if not self.endpoint.admit(self):
            return
        ends = (self.peer, self.local) if self.role is Role.SERVER else (self.local, self.peer)
        self._emit(EventKind.OPEN, text=" -> ".join(format_address(a) for a in ends))
        self._write = self._write_now  # type: ignore[method-assign]
        if self.endpoint.coalesce_writes:
            self._write = self._write_later  # type: ignore[method-assign]
        if self._idle_timeout:
            self._idle_handle = self._clock.call_later(self._idle_timeout, self._check_idle)
        self.endpoint.opened(self)

    def extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._transport
        return default if transport is None else transport.get_extra_info(name, default)

    def get_buffer(self, sizehint: int) -> memoryview:
        # shared by every connection of the loop: each read is copied out
        # in buffer_updated before the loop reads again
        return self._rbuf

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self._rbuf[:nbytes].tobytes())

    data_received = Connection._received  # for feeding bytes by hand

    def eof_received(self) -> bool:
        self.note("peer finished sending (EOF)")
        self._received(b"")
        # a server's session decides when our side closes; a client closes
        return self.session is not None and self.state is ConnState.OPEN

    def _peer_finished(self) -> None:
        if self.session is not None:
            self.endpoint.guard(self, "eof_received", self.session.eof_received)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._closed(f"lost: {exc}" if exc else "closed")

    def pause_writing(self) -> None:
        # a peer that sends but does not read must not grow our buffers:
        # handle none of its input (and read none) until our replies drain
        self.write_paused = True
        if self.role is Role.SERVER:
            self._pause(PEER_SLOW)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.role is not Role.SERVER:
            return
        self._resume(PEER_SLOW)
        if self.state is not ConnState.OPEN:
            return
        if self.session is not None:
            self.endpoint.guard(self, "writable", self.session.writable)
        if self._again is None and not self._processing and (self._conv.buffered() or self._eof_pending):
            self._again = self._loop.call_soon(self._process)

    def _pause_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing() and self.state is ConnState.OPEN:
            transport.resume_reading()

    def _check_idle(self) -> None:
        assert self._idle_timeout is not None
        quiet = self._clock.time() - self.last_active
        if quiet >= self._idle_timeout:
            self._idle_handle = None
            self.error(f"idle for {self._idle_timeout:g} s: closing")
            self.abort(f"idle timeout ({self._idle_timeout:g} s)")
        else:
            self._idle_handle = self._clock.call_later(self._idle_timeout - quiet, self._check_idle)

    def check_pace(self, now: float, line_timeout: float, min_rate: float) -> bool:
        """Called by the server's sweep: close this connection if a message
        has been arriving for more than ``line_timeout`` seconds at less
        than ``min_rate`` bytes a second on average (0: any pace is too
        slow); True if it did.

        Its age is measured from the first sweep that saw it, so it is
        cut between one and one sweep interval late.  Input waiting on
        this side (a paused or held connection) is not the peer's doing
        and is not timed.
        """
        if self.state is not _OPEN:
            return False
        buffered = self._conv.buffered()
        if not buffered or self._paused or self.write_paused or self._held is not None:
            self._partial_at = 0.0
            return False
        if not self._partial_at or self.msgs_in != self._partial_msgs:
            # a new message began (or one ended since the last look)
            self._partial_at = now
            self._partial_msgs = self.msgs_in
            self._partial_bytes = self.bytes_in - buffered
            return False
        age = now - self._partial_at
        if age < line_timeout:
            return False
        received = self.bytes_in - self._partial_bytes
        if min_rate and received >= min_rate * age:
            return False  # a long message arriving at a healthy pace
        self._partial_at = 0.0
        why = f"message not complete after {age:.0f} s ({received} B"
        why += f", under {min_rate:g} B/s)" if min_rate else ")"
        self.close_reason = self.close_reason or f"too slow: {why}"
        # the path of a line too long: the session's error reply, then it hangs up
        self._protocol_error(RemoteProtocolError(why))
        if self.state is _OPEN:
            self.abort(f"too slow: {why}")
        elif self.state is ConnState.CLOSING:
            # a peer that does not read would hold the closing connection
            self._clock.call_later(CLOSE_GRACE, self._abort_if_open, f"too slow: {why}")
        return True

    def _abort_if_open(self, reason: str) -> None:
        if self.state is not ConnState.CLOSED:
            self.abort(reason)

    def _write(self, data: bytes) -> None:
        raise ConnectionClosed(f"{self.id} is not open")

    def _write_now(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            # the socket failed (the peer reset it): handle nothing more, for
            # connection_lost follows, and asyncio warns on every such write
            self.state = ConnState.CLOSING
            raise ConnectionClosed(f"{self.id} is closed")
        transport.write(data)

    def _write_later(self, data: bytes) -> None:
        # the flush runs before the loop next polls for input, so this
        # saves system calls without adding a wait
        if not self._pending:
            self._loop.call_soon(self._flush)
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
            self._conv.send_eof()
            self.state = ConnState.CLOSING
            self._transport.close()

    def abort(self, reason: str = "aborted") -> None:
        self.close_reason = self.close_reason or reason
        self._pending.clear()
        if self._transport is not None and self.state is not ConnState.CLOSED:
            self.state = ConnState.CLOSING
            self._transport.abort()

    def half_close(self) -> None:
        """Send EOF (TCP FIN) but keep reading."""
        if self._transport is not None and self._transport.can_write_eof():
            self._flush()
            self._conv.send_eof()
            self._transport.write_eof()


class DatagramPeer(Connection):
    """One remote address talking to a UDP server."""

    transport_kind = Transport.UDP

    def __init__(self, endpoint: Endpoint, conn_id: str, conversation: Conversation,
                 transport: asyncio.DatagramTransport, addr: tuple[Any, ...], sock: Any) -> None:
        super().__init__(endpoint, conn_id, Role.SERVER, conversation)
        self._transport = transport
        self._sock = sock
        self.peer = addr
        self.local = tuple(transport.get_extra_info("sockname") or ())
        self.state = ConnState.OPEN
        self._write = self._send_to  # type: ignore[method-assign]

    def _send_to(self, data: bytes) -> None:
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

    def __init__(self, endpoint: Endpoint, conn_id: str, conversation: Conversation) -> None:
        super().__init__(endpoint, conn_id, Role.CLIENT, conversation)
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


class RecordedConnection(Connection):
    """A connection whose socket a library owns (see
    :mod:`lab.protocols._library`): it records what the library reports,
    decoding raw bytes with an observer of the protocol's conversation,
    and closes through the library."""

    def __init__(self, endpoint: Endpoint, conn_id: str, role: Role, conversation: Conversation) -> None:
        super().__init__(endpoint, conn_id, role, conversation)
        self._inbox = None  # the library's verbs read what arrives, not expect()
        self._close_fn: Callable[[], None] | None = None

    def attach(self, peer: tuple[Any, ...], local: tuple[Any, ...], close: Callable[[], None] | None) -> None:
        """The library opened the connection: where it runs, how to close it."""
        self.peer, self.local = tuple(peer or ()), tuple(local or ())
        self._close_fn = close
        self.state = ConnState.OPEN

    def announce(self) -> None:
        """Record the opening (once the endpoint admitted the connection)."""
        ends = (self.peer, self.local) if self.role is Role.SERVER else (self.local, self.peer)
        self._emit(EventKind.OPEN, text=" -> ".join(format_address(a) if a else "?" for a in ends))

    def received(self, data: bytes | Message) -> None:
        self._report(data, self.role.peer)

    def sent(self, data: bytes | Message) -> None:
        self._report(data, self.role)

    def _report(self, data: bytes | Message, sender: Role) -> None:
        if self.state is not ConnState.OPEN:
            return
        incoming = sender is not self.role
        raw = data.raw if isinstance(data, Message) else bytes(data)
        self.last_active = self._now()
        if incoming:
            self.bytes_in += len(raw)
        else:
            self.bytes_out += len(raw)
        if isinstance(data, Message):
            found = [(sender, data)]
        else:
            try:
                found = self._conv.observe(raw, sender)
            except ProtocolError as exc:
                found = [(side, m) for side, m in exc.decoded]
                self.note(f"{'received' if incoming else 'sent'} bytes do not decode as {self._proto}: {exc}")
        chunk: bytes | None = raw  # goes with the first message of its own direction
        for side, msg in found:
            inward = side is not self.role
            if inward:
                self.msgs_in += 1
            else:
                self.msgs_out += 1
            self._record(Direction.IN if inward else Direction.OUT, chunk if side is sender else None, [msg])
            if side is sender:
                chunk = None
        if chunk:
            self._record(Direction.IN if incoming else Direction.OUT, chunk, [])

    def closed(self, reason: str = "closed") -> None:
        self._closed(reason)

    def tally(self, received: int = 0, sent: int = 0) -> None:
        """Count bytes that moved without being recorded one by one (a
        data transfer logs a preview and its size, not every chunk); the
        parent counts as active too."""
        if self.state is ConnState.OPEN:
            self.bytes_in += received
            self.bytes_out += sent
            self.last_active = now = self._now()
            if self.parent is not None:
                self.parent.last_active = now  # a long transfer keeps its control connection from idling out

    def _closed(self, reason: str) -> None:
        super()._closed(reason)
        parent = self.parent
        if parent is not None and self in parent.children:
            parent.children.remove(self)

    def _write(self, data: bytes) -> None:
        raise LabError(f"{self.id}: a library owns this socket", hint="use the protocol's verbs")

    def close(self) -> None:
        self.abort("closed")

    def abort(self, reason: str = "aborted") -> None:
        if self.state is ConnState.CLOSED:
            return
        self.close_reason = self.close_reason or reason
        self.state = ConnState.CLOSING
        close, self._close_fn = self._close_fn, None
        if close is not None:
            try:
                close()
            except Exception as exc:
                self.error(f"closing raised {format_exception(exc)}")
        self._closed(reason)


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
