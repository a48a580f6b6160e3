"""Proxies: a decoding relay between a real client and a real server.

A :class:`Proxy` listens like a server; for each client that connects it
dials the target and relays, both ways, exactly the bytes each side sends
(nothing added, lost or reordered), while an observer of the protocol's
conversation decodes both directions into the log: ``in`` is what the
client sent, ``out`` what the server sent.  The two sockets of a
:class:`ProxyConnection` are paired as Twisted's ``portforward`` pairs
them: while one side does not read, the proxy stops reading the other;
a half-close passes through.

With a breakpoint set (:mod:`lab.intercept`) or a hook, the relay works
message by message instead of chunk by chunk: each decoded message is
forwarded as the exact bytes it came in, unless it is held, edited,
dropped or replaced; a direction whose bytes stop decoding goes back to
plain relaying, so a decoder never breaks the traffic it watches.

Tests: tests/test_proxy.py, tests/interop/test_proxy_peers.py
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, cast

from lab.connection import HOLD_READ_AHEAD, MAX_PENDING, PASS_TIME, Connection, ConnState, format_address
from lab.endpoints import EndpointKind, Hook, ListeningEndpoint, ServerState, udp_socket
from lab.errors import ConfigError, LabError, ProtocolError
from lab.eventlog import Capture, Direction, EventKind
from lab.protocols._base import Message, Role, Transport
from lab.protocols._spec import ProtocolSpec

if TYPE_CHECKING:
    from lab.intercept import Held
    from lab.lab import Lab

__all__ = ["Proxy", "ProxyConnection"]

logger = logging.getLogger(__name__)

BATCH = 64
_DIRECTION = {Role.CLIENT: Direction.IN, Role.SERVER: Direction.OUT}
_SIDES = (Role.CLIENT, Role.SERVER)  # iterating the Enum itself costs more on hot paths


class _Leg(asyncio.Protocol):
    """One socket of a proxied connection: the client's (accepted, ``side``
    CLIENT: the client is at its far end) or the server's (dialled)."""

    def __init__(self, pair: ProxyConnection, side: Role) -> None:
        self.pair = pair
        self.side = side
        self.transport: asyncio.Transport | None = None
        self.eof = False  # the far end finished sending
        self.closed = False
        self.other: _Leg | None = None  # the opposite socket, once both are made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pair._leg_made(self)

    # a plain Protocol, not a BufferedProtocol: the bytes are kept (relayed,
    # queued, logged), and asyncio's own bytes object saves copying them out
    def data_received(self, data: bytes) -> None:
        pair = self.pair
        other = self.other
        if other is None or pair._recording or pair.proxy.breakpoints or pair.proxy._hooks:
            pair._from(self.side, data)
            return
        # nobody looks at these bytes: straight across, the hot path at capture off
        pair.last_active = pair._now()
        if self.side is Role.CLIENT:
            pair.bytes_in += len(data)
        else:
            pair.bytes_out += len(data)
        transport = other.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        self.pair._eof(self.side)
        return True  # the pair decides when this socket closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pair._lost(self.side, exc)

    def pause_writing(self) -> None:
        self.pair._blocked(self.side, True)

    def resume_writing(self) -> None:
        self.pair._blocked(self.side, False)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)


class _DatagramLeg(asyncio.DatagramProtocol):
    """The proxy's own socket to the target, for one UDP client."""

    def __init__(self, pair: ProxyConnection, sock: socket.socket) -> None:
        self.pair = pair
        self.sock = sock  # for empty datagrams, which asyncio's transports skip
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        early, self.pair._early = self.pair._early, []
        for data in early:
            self.send(data)

    def send(self, data: bytes) -> None:
        if data:
            assert self.transport is not None
            self.transport.sendto(data)
        else:
            try:
                self.sock.send(b"")
            except OSError as exc:
                self.pair.error(f"cannot send an empty datagram to the server: {exc}")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.pair._from(Role.SERVER, data)

    def error_received(self, exc: Exception) -> None:
        self.pair.error(f"datagram error toward the server: {exc}")


class ProxyConnection(Connection):
    """One client relayed to the target: two sockets, one conversation
    observed, one line of connections in the lab."""

    def __init__(self, proxy: Proxy, conn_id: str) -> None:
        super().__init__(proxy, conn_id, Role.SERVER, proxy.spec.conversation(None, proxy.transport))
        self.proxy = proxy
        self.legs: dict[Role, Any] = {}
        self._early: list[bytes] = []  # the client's bytes before the server answered the dial
        self._broken: set[Role] = set()  # sides whose bytes no longer decode
        self._chunks: dict[Role, bytes | None] = {Role.CLIENT: None, Role.SERVER: None}
        self._waiting: dict[Role, bytearray] = {Role.CLIENT: bytearray(), Role.SERVER: bytearray()}
        self._queued: dict[Role, deque[Message]] = {Role.CLIENT: deque(), Role.SERVER: deque()}
        self._holding: dict[Role, Held | None] = {Role.CLIENT: None, Role.SERVER: None}
        self._decoding = False
        self._again_decode: asyncio.Handle | None = None
        self._reading_paused: dict[Role, set[str]] = {Role.CLIENT: set(), Role.SERVER: set()}
        self._eof_seen: set[Role] = set()
        self.ended_by: Role | None = None  # the side that finished or closed first
        self._eof_passed: set[Role] = set()
        # bytes of a side already relayed as they came, ahead of the
        # messages they will decode into (after the side finished sending)
        self._ahead: dict[Role, int] = {Role.CLIENT: 0, Role.SERVER: 0}
        self._dial: asyncio.Task[Any] | None = None

    # -- the two sockets ---------------------------------------------------

    def _leg_made(self, leg: _Leg) -> None:
        transport = leg.transport
        assert transport is not None
        if self.state is ConnState.CLOSED or (leg.side is Role.SERVER and self.state is not ConnState.OPEN):
            transport.close()  # dialled too late: the client is gone
            return
        self.legs[leg.side] = leg
        other = self.legs.get(leg.side.peer)
        if isinstance(other, _Leg):
            leg.other, other.other = other, leg
        if leg.side is Role.CLIENT:
            self.peer = tuple(transport.get_extra_info("peername") or ())
            self.local = tuple(transport.get_extra_info("sockname") or ())
            self.state = ConnState.OPEN
            if not self.proxy.admit(self):
                return
            target = format_address(self.proxy.target)
            self._emit(EventKind.OPEN, text=f"{format_address(self.peer)} -> {format_address(self.local)}"
                                            f" -> {target}")
            self._idle_start()
            self._dial = self._loop.create_task(self._connect())
        else:
            self.note(f"connected to the server {format_address(self.proxy.target)}")
            early, self._early = self._early, []
            for data in early:
                self._relay(Role.CLIENT, data)
            self._unpause_side(Role.CLIENT, "dial")
            if Role.CLIENT in self._eof_seen:
                self._pass_eof(Role.CLIENT)

    async def _connect(self) -> None:
        host, port = self.proxy.target
        self._pause_side(Role.CLIENT, "dial")
        try:
            await asyncio.wait_for(self._loop.create_connection(lambda: _Leg(self, Role.SERVER), host, port),
                                   self.proxy.connect_timeout)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            self.error(f"cannot reach the server {format_address(self.proxy.target)}: {reason}")
            self.abort("the server cannot be reached")

    def _idle_start(self) -> None:
        timeout = self.proxy.idle_timeout
        if timeout:
            self._idle = self._clock.call_later(timeout, self._check_idle)

    def _check_idle(self) -> None:
        timeout = self.proxy.idle_timeout
        assert timeout
        quiet = self._clock.time() - self.last_active
        if quiet >= timeout:
            self.error(f"idle for {timeout:g} s: closing")
            self.abort(f"idle timeout ({timeout:g} s)")
        elif self.state is not ConnState.CLOSED:
            self._idle = self._clock.call_later(timeout - quiet, self._check_idle)

    # -- bytes in ----------------------------------------------------------

    def _from(self, sender: Role, data: bytes) -> None:
        """``sender`` sent ``data``: relay it (now, or message by message)
        and decode it for the log."""
        self.last_active = self._now()
        if sender is Role.CLIENT:
            self.bytes_in += len(data)
        else:
            self.bytes_out += len(data)
        if sender is Role.CLIENT and Role.SERVER not in self.legs and self.transport_kind is Transport.TCP:
            self._early.append(data)  # the server is being dialled
            return
        self._relay(sender, data)

    def _relay(self, sender: Role, data: bytes) -> None:
        if sender in self._broken:
            self._write_to(sender.peer, data)
            return
        by_message = self.proxy._by_message
        if not by_message:
            self._write_to(sender.peer, data)
            if not self._recording:
                return
        else:
            self._waiting[sender] += data
            if self._holding[sender] is not None:
                self._read_behind_held(sender)
        chunk = self._chunks[sender]
        if chunk is not None and self._capture is Capture.FULL:
            self._emit_data(sender, chunk)
        self._chunks[sender] = data
        try:
            self._conv.receive_data(data, sender)
        except ProtocolError as exc:
            self._undecodable(sender, exc)
            return
        self._decode_soon()

    def _watching(self, sender: Role) -> bool:
        """Is anyone looking at what ``sender`` says (the log, an intercept, a hook)?"""
        return sender not in self._broken and (self._recording or self.proxy._by_message)

    def _eof(self, sender: Role) -> None:
        self._eof_seen.add(sender)
        self.ended_by = self.ended_by or sender
        self.note(f"the {sender.value} finished sending (EOF)")
        if sender not in self._broken and self._watching(sender):
            try:
                self._conv.receive_data(b"", sender)
            except ProtocolError as exc:
                self._undecodable(sender, exc)
        self._decode_soon()
        self._pass_eof(sender)

    def _pass_eof(self, sender: Role) -> None:
        """Half-close toward the other side, once everything before went."""
        if sender in self._eof_passed or (sender is Role.CLIENT and Role.SERVER not in self.legs):
            return  # done already, or after the dial
        if self._waiting[sender] or self._queued[sender] or self._holding[sender] is not None:
            return  # after what is still to go
        if self.transport_kind is Transport.UDP:
            return
        self._eof_passed.add(sender)
        other = self.legs.get(sender.peer)
        transport = other.transport if other is not None else None
        if transport is not None and not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        if self._eof_seen >= {Role.CLIENT, Role.SERVER}:
            self.close()

    def _lost(self, side: Role, exc: Exception | None) -> None:
        if self.state is ConnState.CLOSED:
            return
        self.ended_by = self.ended_by or side
        other = self.legs.get(side.peer)
        if side is Role.SERVER and self.state is ConnState.OPEN:
            self.note(f"the server closed{f': {exc}' if exc else ''}")
        # what the far side sent before is flushed to this side, then it closes
        if other is not None and other.transport is not None and not other.transport.is_closing():
            self._flush_waiting(side)
            if exc is not None:
                other.transport.abort()
            else:
                other.transport.close()
        if other is None or other.closed or other.transport is None:
            self._closed(f"lost: {exc}" if exc else "closed")

    def _blocked(self, side: Role, blocked: bool) -> None:
        """The socket toward ``side`` cannot take more (or can again): the
        bytes for it come from the other side, so read that one no more."""
        if blocked:
            self._pause_side(side.peer, "peer slow")
        else:
            self._unpause_side(side.peer, "peer slow")

    def _pause_side(self, side: Role, why: str) -> None:
        reasons = self._reading_paused[side]
        if not reasons:
            leg = self.legs.get(side)
            if leg is not None and isinstance(leg, _Leg) and leg.transport is not None \
                    and not leg.transport.is_closing():
                leg.transport.pause_reading()
        reasons.add(why)

    def _unpause_side(self, side: Role, why: str) -> None:
        reasons = self._reading_paused[side]
        if why in reasons:
            reasons.discard(why)
            leg = self.legs.get(side)
            if not reasons and leg is not None and isinstance(leg, _Leg) and leg.transport is not None \
                    and not leg.transport.is_closing():
                leg.transport.resume_reading()

    # -- bytes out ---------------------------------------------------------

    def _write_to(self, to: Role, data: bytes) -> None:
        if to is Role.SERVER and self.transport_kind is Transport.UDP:
            dleg = self.legs.get(Role.SERVER)
            if dleg is None or dleg.transport is None:
                self._early.append(data)  # the socket toward the server is on its way
            else:
                dleg.send(data)
            return
        if to is Role.CLIENT and self.transport_kind is Transport.UDP:
            self.proxy._send_to_client(self, data)
            return
        leg = self.legs.get(to)
        if leg is not None:
            leg.write(data)

    def inject(self, data: bytes, to: Role) -> None:
        """Send ``data`` to one side as if the other had sent it (it is
        logged, marked, but not decoded into the conversation)."""
        if self.state is not ConnState.OPEN:
            raise LabError(f"{self.id} is closed", hint="inject into an open connection")
        self._write_to(to, data)
        self.note(f"injected toward the {to.value}: {len(data)} bytes")
        if self._capture is not Capture.OFF:
            self._log.emit(EventKind.DATA, self.endpoint.name, self.id, _DIRECTION[to.peer], self._proto,
                           "injected " + repr(data[:60]), data)

    # -- decoding ----------------------------------------------------------

    def _decode_soon(self) -> None:
        if not self._decoding and self._again_decode is None:
            self._decode()

    def _decode(self) -> None:
        """Decode both directions for the log (and, message by message,
        relay): a bounded batch per pass of the loop, as connections do."""
        self._again_decode = None
        if self._decoding or self.state is ConnState.CLOSED:
            return
        self._decoding = True
        budget = BATCH
        deadline = self._now() + PASS_TIME
        try:
            # the sides in turn, each until it has nothing, until neither
            # has: a message on one side may release the other's
            quiet = turn = 0
            while quiet < 2 and budget > 0:
                sender = _SIDES[turn]
                turn ^= 1
                got = False
                while budget > 0 and sender not in self._broken:
                    try:
                        msg = self._conv.next_message(sender)
                    except ProtocolError as exc:
                        self._undecodable(sender, exc)
                        break
                    if msg is None:
                        break
                    budget -= 1
                    got = True
                    self._decoded(sender, msg)
                    if not budget % 8 and self._now() > deadline:
                        budget = 0
                quiet = 1 if got else quiet + 1
            for sender in _SIDES:
                if not budget:
                    break
                chunk = self._chunks[sender]
                if chunk is not None and self._capture is Capture.FULL and not self._conv.buffered(sender):
                    self._emit_data(sender, chunk)  # bytes no message took (yet)
                    self._chunks[sender] = None
        finally:
            self._decoding = False
        if budget <= 0:
            for side in _SIDES:
                self._pause_side(side, "backlog")
            self._again_decode = self._loop.call_soon(self._decode)
            return
        for side in _SIDES:
            over = self._conv.buffered(side) > MAX_PENDING
            if over or self._reading_paused[side]:
                self._unpause_side(side, "backlog")
                if over:
                    self._pause_side(side, "pending")
                else:
                    self._unpause_side(side, "pending")
        if self._eof_seen:
            for sender in _SIDES:
                if sender in self._eof_seen and not self._queued[sender] and self._holding[sender] is None:
                    # nothing more will come: what never became a message goes as it is
                    self._flush_waiting(sender)
                    self._pass_eof(sender)

    def _decoded(self, sender: Role, msg: Message) -> None:
        direction = _DIRECTION[sender]
        if sender is Role.CLIENT:
            self.msgs_in += 1
        else:
            self.msgs_out += 1
        if self._recording:
            chunk, self._chunks[sender] = self._chunks[sender], None
            self._record(direction, chunk, [msg])
        if self.proxy._by_message and sender not in self._broken:
            self._queued[sender].append(msg)
            self._forward(sender)

    def _forward(self, sender: Role) -> None:
        """Relay ``sender``'s decoded messages in order, each as the exact
        bytes it came in, until one is held."""
        queued, waiting = self._queued[sender], self._waiting[sender]
        proxy = self.proxy
        while queued and self._holding[sender] is None:
            msg = queued.popleft()
            size = len(msg.raw)
            ahead = min(self._ahead[sender], size)
            if ahead:
                self._ahead[sender] -= ahead  # relayed already: logged, not sent again
                if ahead == size:
                    continue
            original, waiting[:] = bytes(waiting[: size - ahead]), waiting[size - ahead:]
            if proxy._hooks and self._hooked(sender, msg):
                continue
            if proxy.breakpoints:
                rule = proxy.lab.intercepts.match(proxy.name, self.id, _DIRECTION[sender], self._proto, msg,
                                                  proxy.breakpoints)
                if rule is not None:
                    go_on = functools.partial(self._go_on_with, sender, original=original)
                    self._holding[sender] = proxy.lab.intercepts.hold(
                        rule, self.id, _DIRECTION[sender], sender, msg, go_on)
                    self._read_behind_held(sender)
                    return
            self._write_to(sender.peer, original)
        if not queued and sender in self._eof_seen and not waiting:
            self._pass_eof(sender)

    def _read_behind_held(self, sender: Role) -> None:
        """Go on reading behind a held message, up to a bound, so a side
        that resets the connection is noticed."""
        if len(self._waiting[sender]) > HOLD_READ_AHEAD:
            self._pause_side(sender, "held")

    def _go_on_with(self, sender: Role, new: Message | None, *, original: bytes) -> None:
        held = self._holding[sender]
        self._holding[sender] = None
        if self.state is not ConnState.OPEN:
            return
        if new is not None:
            self._write_to(sender.peer, original if held is not None and new is held.message else new.raw)
        self._unpause_side(sender, "held")
        self._forward(sender)

    def _hooked(self, sender: Role, msg: Message) -> bool:
        """Run the proxy's hooks on ``msg``; True when one replaces the relay."""
        replaced = False
        for fn, replace in self.proxy._hooks.get(msg.kind, []) + self.proxy._hooks.get("*", []):
            self.proxy.guard(self, f"hook {getattr(fn, '__name__', 'hook')}", fn, msg, self)
            replaced = replaced or replace
        return replaced

    def _undecodable(self, sender: Role, exc: ProtocolError) -> None:
        """``sender``'s bytes stopped decoding: note it, and relay them plainly
        from now on (what waited for a message goes first)."""
        if sender in self._broken:
            return
        self._broken.add(sender)
        self.note(f"what the {sender.value} sends no longer decodes as {self._proto} ({exc});"
                  " relaying it as it comes")
        if self._holding[sender] is None:
            self._queued[sender].clear()
            data = bytes(self._waiting[sender])
            self._waiting[sender].clear()
            if data:
                self._write_to(sender.peer, data)

    def _flush_waiting(self, sender: Role) -> None:
        """Relay what waits to become messages, as it is."""
        waiting = self._waiting[sender]
        if waiting and self._holding[sender] is None:
            data = bytes(waiting)
            waiting.clear()
            pending = sum(len(m.raw) for m in self._queued[sender])
            self._ahead[sender] += len(data) - pending
            self._queued[sender].clear()
            self._write_to(sender.peer, data)

    def _emit_data(self, sender: Role, chunk: bytes) -> None:
        self._log.emit(EventKind.DATA, self.endpoint.name, self.id, _DIRECTION[sender], self._proto, None, chunk)

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSING
        for leg in list(self.legs.values()):
            if isinstance(leg, _Leg) and leg.transport is not None:
                leg.transport.close()
        self._maybe_done()

    def abort(self, reason: str = "aborted") -> None:
        if self.state is ConnState.CLOSED:
            return
        self.close_reason = self.close_reason or reason
        self.state = ConnState.CLOSING
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        for leg in list(self.legs.values()):
            if isinstance(leg, _Leg) and leg.transport is not None:
                leg.transport.abort()
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.transport_kind is Transport.UDP or all(
                not isinstance(leg, _Leg) or leg.closed for leg in self.legs.values()):
            self._closed(self.close_reason or "closed")

    def _closed(self, reason: str) -> None:
        if self.state is ConnState.CLOSED:
            return
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        idle = getattr(self, "_idle", None)
        if idle is not None:
            idle.cancel()
        for side in Role:
            if self._holding[side] is not None:
                self._holding[side] = None
        self.endpoint.lab.intercepts.forget(self.id)
        if self.transport_kind is Transport.UDP:
            dleg = self.legs.get(Role.SERVER)
            if dleg is not None and dleg.transport is not None:
                dleg.transport.close()
        super()._closed(reason)


class Proxy(ListeningEndpoint):
    """A decoding relay: listens like a server, dials ``target`` for every
    client, and relays both ways."""

    kind = EndpointKind.PROXY

    def __init__(self, lab: Lab, name: str, spec: ProtocolSpec, *, host: str, port: int, transport: Transport,
                 target: tuple[str, int], capture: Capture, max_connections: int, idle_timeout: float | None,
                 connect_timeout: float = 10.0) -> None:
        super().__init__(lab, name, spec, host=host, port=port, transport=transport, capture=capture,
                         max_connections=max_connections, idle_timeout=idle_timeout)
        self.connections: dict[str, ProxyConnection] = OrderedDict()  # type: ignore[assignment]
        self.target = target
        self.connect_timeout = connect_timeout
        self._udp_pairs: OrderedDict[tuple[Any, ...], ProxyConnection] = OrderedDict()

    # -- what it is -------------------------------------------------------

    @property
    def address(self) -> str:
        return (f"{self.transport.value}://{format_address((self.host, self.port))}"
                f" -> {format_address(self.target)}")

    def live_connections(self) -> list[Connection]:
        return list(self.connections.values())

    @property
    def _by_message(self) -> bool:
        """Relay message by message (an intercept or a hook may act on each)?"""
        return bool(self.breakpoints or self._hooks)

    # -- life -------------------------------------------------------------

    async def _start(self) -> None:
        loop = self.lab.loop
        try:
            if self.transport is Transport.TCP:
                self._server = await loop.create_server(self._accept, self.host, self.port, reuse_address=True,
                                                        backlog=512)
                self.port = int(cast(asyncio.Server, self._server).sockets[0].getsockname()[1])
            else:
                sock = self._udp_sock = udp_socket(self.host, self.port, bind=True)
                self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpFront(self), sock=sock)
                self.port = int(sock.getsockname()[1])
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.transport.value} {format_address((self.host, self.port))}:"
                              f" {exc.strerror or exc}", hint="pick another port (0 = any free port)") from None
        if self.target[1] == self.port and self.target[0] in (self.host, "127.0.0.1", "::1", "localhost"):
            await self._shut()
            raise ConfigError(f"{self.name} would relay to itself ({format_address(self.target)})",
                              hint="--to names the server; --listen is where clients connect")
        self.state = ServerState.LISTENING
        self.lab.log.emit(EventKind.LISTEN, endpoint=self.name, protocol=self.spec.name,
                          text=f"{self.spec.name} proxy listening on {self.address}")

    async def _shut(self) -> None:
        if self.state is ServerState.STOPPED:
            return
        self.state = ServerState.STOPPED
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections.values()):
            conn.abort("proxy stopped")
        if self._udp is not None:
            self._udp.close()
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except TimeoutError:
                logger.warning("proxy %s did not close within 2 s", self.name)
        for conn in list(self.connections.values()):
            conn._closed("proxy stopped")
        self.lab.log.emit(EventKind.STOP, endpoint=self.name, protocol=self.spec.name,
                          text=f"stopped after {self.accepted} connections ({self.refused} refused)")

    def stop(self) -> None:
        self.lab.stop(self)

    # -- connections ------------------------------------------------------

    def _accept(self) -> _Leg:
        pair = ProxyConnection(self, f"{self.name}#{next(self._ids)}")
        return _Leg(pair, Role.CLIENT)

    def connection_closed(self, conn: Connection) -> None:
        self._forget(conn)
        self._udp_pairs.pop(conn.peer, None)

    def _datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        pair = self._udp_pairs.get(addr)
        if pair is None:
            pair = ProxyConnection(self, f"{self.name}#{next(self._ids)}")
            pair.transport_kind = Transport.UDP
            pair.peer = addr
            pair.state = ConnState.OPEN
            if not self.admit(pair):
                return
            self._udp_pairs[addr] = pair
            pair._emit(EventKind.OPEN, text=f"udp {format_address(addr)} -> {format_address(self.target)}")
            try:
                sock = udp_socket(*self.target, bind=False)
            except OSError as exc:
                pair.error(f"cannot reach the server: {exc}")
                pair._closed("the server cannot be reached")
                return
            leg = _DatagramLeg(pair, sock)
            pair.legs[Role.SERVER] = leg
            self.lab.loop.create_task(self.lab.loop.create_datagram_endpoint(lambda: leg, sock=sock))
            pair._idle_start()
        else:
            self._udp_pairs.move_to_end(addr)
        pair._from(Role.CLIENT, data)

    def _send_to_client(self, pair: ProxyConnection, data: bytes) -> None:
        if data and self._udp is not None:
            self._udp.sendto(data, pair.peer)
        elif self._udp_sock is not None:
            try:
                self._udp_sock.sendto(b"", pair.peer)
            except OSError as exc:
                pair.error(f"cannot send an empty datagram to the client: {exc}")

    # -- hooks ------------------------------------------------------------

    def on(self, kind: str, fn: Hook, *, replace: bool = False) -> Hook:
        """Run ``fn(msg, conn)`` for each message of ``kind`` (``"*"``: all)
        either side sends; with ``replace`` the message is not relayed (the
        hook may ``conn.inject(...)`` something else)."""
        self._hooks.setdefault(kind, []).append((fn, replace))
        return fn


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.proxy._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.proxy.lab.log.emit(EventKind.ERROR, endpoint=self.proxy.name, protocol=self.proxy.spec.name,
                                text=f"datagram error: {exc}")

