"""In-memory stand-ins for protocol tests (fixtures in conftest.py).

* :class:`FakePeer`: a :class:`Peer` that records what a session does.
* :class:`Loopback`: client verbs wired to a server behaviour through the
  two sides' conversations, with flow control, no sockets; it keeps the
  transcript (who sent which bytes, in order) and what each side decoded.
* :class:`ConversationLaws`: the properties every conversation keeps, for
  hypothesis tests: bytes split anywhere decode the same, raise nothing
  but :class:`RemoteProtocolError`, and add up to exactly what was
  consumed, whether the conversation receives them, sends them or
  observes them; and an observer replaying a transcript sees what the
  two sides saw.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from lab.errors import ConnectionClosed, LabTimeout, ProtocolError, RemoteProtocolError
from lab.protocols._base import LoopClock, Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._spec import ProtocolSpec

__all__ = ["ConversationLaws", "FakePeer", "Loopback", "Runner", "decoding", "open_session", "split_at"]

Runner = Callable[[Any], Any]
Factory = Callable[[Role | None, Transport], Conversation]


class FakePeer:
    """Records sends, notes and closing instead of doing I/O.

    Like the lab's connections, writing after :meth:`close` raises
    :class:`ConnectionClosed`, and a message goes through the
    ``conversation`` (a server-side one by default, when a ``spec`` is
    given).  With ``window`` set, ``write_paused`` turns true once that
    many bytes were written since the last :meth:`resume`.
    """

    def __init__(
        self,
        transport: Transport = Transport.TCP,
        *,
        conn_id: str = "srv-1",
        spec: ProtocolSpec | None = None,
        conversation: Conversation | None = None,
        window: int | None = None,
        on_write: Callable[[bytes], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.id = conn_id
        self.peer: tuple[Any, ...] = ("127.0.0.1", 40000)
        self.transport = transport
        if conversation is None and spec is not None:
            conversation = spec.conversation(Role.SERVER, transport)
        self._conversation = conversation
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
    def conversation(self) -> Conversation:
        if self._conversation is None:
            raise AttributeError("this FakePeer has no conversation: give it spec= or conversation=")
        return self._conversation

    @property
    def write_paused(self) -> bool:
        return self.paused

    @property
    def data(self) -> bytes:
        """Everything written, joined."""
        return b"".join(self.writes)

    def send(self, msg: Message) -> None:
        if self.closed:
            raise ConnectionClosed(f"{self.id} is closed")
        data = self._conversation.send(msg) if self._conversation is not None else msg.raw
        self._write(data)
        self.sent.append(msg)

    def send_raw(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed(f"{self.id} is closed")
        if self._conversation is not None:
            self._conversation.send_data(bytes(data))
        self._write(bytes(data))

    def _write(self, data: bytes) -> None:
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


def open_session(behaviour: Any, peer: FakePeer) -> Any:
    """A session of ``behaviour`` on ``peer``, told it is connected."""
    session = behaviour.session(peer)
    session.connection_made()
    return session


class Loopback:
    """One client and one server session joined in memory.

    It is the client's :class:`Channel` (give it to the verbs class) and
    owns the server side's :class:`FakePeer` (``peer``) and
    :class:`Session` (``session``).  Bytes go through the real
    conversations of both sides.  Like ``lab.connection``: ``receive``
    raises :class:`ConnectionClosed` once the server closed and nothing
    is left, :class:`LabTimeout` when nothing comes in time; session
    exceptions are caught and listed in ``errors`` (the lab logs them);
    the server looks for messages again after each of its sends (an
    answer may release input it held).  With ``window``, the server's
    peer pauses while that many bytes wait unread by the client, and
    resumes when the client has read half.  Build it inside a running
    loop: TCP sessions start on construction, after ``prepare(behaviour)``
    if given (to set a clock, a seed).

    ``transcript`` is every chunk in wire order as ``(sender, bytes)``;
    ``seen`` what each side's conversation decoded from the other.
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
        self.server_conv = spec.conversation(Role.SERVER, transport)
        self.client_conv = spec.conversation(Role.CLIENT, transport)
        self.peer = FakePeer(
            transport, conversation=self.server_conv, on_write=self._to_client, on_close=self._server_closed
        )
        self.session: Any = None
        self.window = window
        self.inbox: deque[Message] = deque()
        self.client_writes: list[bytes] = []
        self.transcript: list[tuple[Role, bytes]] = []
        self.seen: dict[Role, list[Message]] = {Role.CLIENT: [], Role.SERVER: []}
        self.errors: list[BaseException] = []
        # client verbs that watch each message as it arrives (as the lab calls them)
        self.observer: Callable[[Message], None] | None = None
        self.clock = LoopClock()
        self.client_error: ProtocolError | None = None
        self.closed = False
        self.server_lost = False
        self._unread = 0
        self._arrived = asyncio.Event()
        self._connected = False
        self._pumping = False
        if prepare is not None:
            prepare(self.behaviour)
        self.behaviour.started()
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
        self.session = self.behaviour.session(self.peer)
        self._guard(self.session.connection_made)

    def _dispatch(self, data: bytes) -> None:
        self.transcript.append((Role.CLIENT, data))
        try:
            self.server_conv.receive_data(data)
        except ProtocolError as exc:
            if not self.peer.closed:
                self._guard(self.session.protocol_error, exc)
            return
        self._pump()

    def _pump(self) -> None:
        """Hand the session every message ready, as the lab does: one at a
        time, none once the server has hung up."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.peer.closed:
                try:
                    msg = self.server_conv.next_message()
                except ProtocolError as exc:
                    self._guard(self.session.protocol_error, exc)
                    return
                if msg is None:
                    return
                self.seen[Role.SERVER].append(msg)
                self._guard(self.session.message_received, msg)
        finally:
            self._pumping = False

    def _to_client(self, data: bytes) -> None:
        if self.transport is Transport.TCP and not data:
            return  # transport.write(b"") sends nothing
        self.transcript.append((Role.SERVER, data))
        try:
            msgs = self.client_conv.feed(data)
        except ProtocolError as exc:
            self.client_error = exc  # the lab aborts the client connection
            self._client_gone()
            return
        self._take(msgs)
        if self.window is not None and self._unread >= self.window:
            self.peer.paused = True
        # what the server said may release what it held of ours
        asyncio.get_running_loop().call_soon(self._pump)

    def watch(self, verbs: Any) -> Any:
        """Let ``verbs`` see each message as it arrives (keep-alives); returns them."""
        if verbs.watches():
            self.observer = verbs.message_received
        return verbs

    def _take(self, msgs: list[Message]) -> None:
        for msg in msgs:
            self.seen[Role.CLIENT].append(msg)
            if self.observer is not None:
                self._guard(self.observer, msg)
            self.inbox.append(msg)
            self._unread += len(msg.raw)
        self._arrived.set()

    def _server_closed(self) -> None:
        if self.transport is Transport.UDP:
            self._lose_server()  # a datagram peer is merely forgotten
            return
        try:
            self._take(self.client_conv.feed(b""))
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
            if self.session is not None:
                self._guard(self.session.connection_lost)

    # -- the Channel ---------------------------------------------------------

    async def send(self, msg: Message) -> None:
        if self.closed:
            raise ConnectionClosed("client is closed")
        self._deliver(self.client_conv.send(msg))

    async def send_raw(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed("client is closed")
        self.client_conv.send_data(bytes(data))
        self._deliver(bytes(data))

    def _deliver(self, data: bytes) -> None:
        self.client_writes.append(data)
        if self.transport is Transport.UDP:
            if not self._connected:
                self._connect()
            self._dispatch(data)
        elif data:
            self._dispatch(data)

    def half_close(self) -> None:
        """The client sends EOF: the server decodes what is left, then
        the session hears eof_received."""
        self.client_conv.send_eof()
        self._dispatch(b"")
        if not self.peer.closed:
            self._guard(self.session.eof_received)

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
            asyncio.get_running_loop().call_soon(self._guard, self.session.writable)
        return msg

    async def expect(self, pattern: Any, timeout: float | None = 10.0) -> Message:
        while True:
            msg = await self.receive(timeout)
            if msg.matches(pattern):
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


# -- conversation laws -----------------------------------------------------------


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length) into
    non-empty pieces; empty data gives no pieces."""
    points = sorted({c % len(data) for c in cuts} - {0}) if data else []
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if a < b]


def decoding(make: Callable[[], Decoder]) -> Factory:
    """A conversation whose two sides both decode with ``make()``: the laws
    for one decoder on its own."""

    class Both(Conversation):
        follows_sends = False

        def decoder(self, sender: Role) -> Decoder:
            return make()

    return Both


class ConversationLaws:
    """The properties every conversation keeps; each check returns the
    messages decoded."""

    @staticmethod
    def _feed(conv: Conversation, sender: Role, pieces: list[bytes], eof: bool,
              as_sender: bool) -> tuple[list[Message], ProtocolError | None]:
        msgs: list[Message] = []
        for piece in [*pieces, b""] if eof else pieces:
            if as_sender:
                if piece:
                    conv.send_data(piece)
                else:
                    conv.send_eof()
                msgs += conv.take_sent()
                if conv.send_error is not None:
                    return msgs, conv.send_error
                continue
            try:
                conv.receive_data(piece, sender if conv.role is None else None)
                while (msg := conv.next_message(sender if conv.role is None else None)) is not None:
                    msgs.append(msg)
            except RemoteProtocolError as exc:
                return msgs, exc
        return msgs, None

    def stream(
        self,
        factory: Factory,
        sender: Role,
        data: bytes,
        cuts: list[int],
        *,
        eof: bool = True,
        framed: bool = True,
        parts: tuple[Role | None, ...] | None = None,
    ) -> list[Message]:
        """Give ``data`` from ``sender`` in pieces (then EOF) to a
        conversation that receives it (the other side), one that sends it
        (``sender`` itself, through ``send_data``) and an observer, and
        check for each: only :class:`RemoteProtocolError` escapes (a
        sender's own errors land on ``send_error``), the messages and what
        is still buffered add up to exactly the bytes given, and, for
        ``framed`` conversations (not raw chunks), splitting changes no
        message.  All three decode the same messages."""
        results: list[list[Message]] = []
        for part in parts if parts is not None else (sender.peer, sender, None):
            as_sender = part is sender
            pieces = split_at(data, cuts)
            conv = factory(part, Transport.TCP)
            msgs, error = self._feed(conv, sender, pieces, eof, as_sender)
            whole_msgs, whole_error = self._feed(factory(part, Transport.TCP), sender,
                                                 [data] if data else [], eof, as_sender)
            assert (error is None) == (whole_error is None), (part, error, whole_error)
            wire = b"".join(m.raw for m in msgs)
            assert data.startswith(wire), (part, wire[:80], data[:80])
            if error is None:
                # nothing lost: what is not a message yet is still held (waiting,
                # say, for an answer the other side never gave)
                assert len(wire) + conv._decoders[sender].buffered == len(data), part
                if framed:
                    assert msgs == whole_msgs, part
            elif not as_sender:
                with pytest.raises(ProtocolError):  # spent: it keeps raising
                    conv.receive_data(b"more", sender if conv.role is None else None)
                    conv.next_message(sender if conv.role is None else None)
            results.append(msgs)
        if framed:
            for other in results[1:]:
                assert other == results[0]
        return results[0]

    def datagrams(self, factory: Factory, sender: Role, datagrams: list[bytes]) -> list[Message]:
        """Datagrams from ``sender``: one message per datagram, its raw
        bytes the datagram, or a :class:`RemoteProtocolError` that spends
        the conversation's side."""
        conv = factory(sender.peer, Transport.UDP)
        msgs: list[Message] = []
        for datagram in datagrams:
            try:
                got = conv.feed(datagram)
            except RemoteProtocolError:
                with pytest.raises(ProtocolError):
                    conv.feed(b"x")
                break
            assert len(got) == 1
            assert got[0].raw == datagram
            msgs += got
        return msgs

    def observer_replays(self, factory: Factory, lb: Loopback, cuts: list[int]) -> dict[Role, list[Message]]:
        """Feed a loopback's transcript, each chunk split at ``cuts``, to an
        observer: it decodes the same messages, on each side, as the two
        sides did."""
        conv = factory(None, lb.transport)
        seen: dict[Role, list[Message]] = {Role.CLIENT: [], Role.SERVER: []}
        for sender, chunk in lb.transcript:
            pieces = split_at(chunk, cuts) if lb.transport is Transport.TCP else [chunk]
            for piece in pieces:
                for side, msg in conv.observe(piece, sender):
                    seen[side.peer].append(msg)  # keyed by who received it, as lb.seen is
        assert seen[Role.SERVER] == lb.seen[Role.SERVER]
        assert seen[Role.CLIENT] == lb.seen[Role.CLIENT]
        return seen
