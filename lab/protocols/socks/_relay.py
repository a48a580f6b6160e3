"""The SOCKS server's sockets: it owns them (``ProtocolSpec.listen``),
because each connection dials, or listens for, a second one.

A :class:`_Tunnel` pairs the client's socket with the destination's as
Twisted's ``portforward`` does: while one socket's writes are blocked the
other is not read, so memory stays bounded whatever the speeds, and a
half-close passes through.  Everything either side sends is decoded by
one observer of :class:`SocksConversation` (the request and reply, then
the destination's protocol) and reported to the lab as messages.

Tests: tests/protocols/test_socks.py, tests/interop/test_socks_peers.py
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine
from typing import Any

from lab.errors import ProtocolError, RemoteProtocolError
from lab.protocols._base import Clock, Message, Role, Timer
from lab.protocols._framing import Data
from lab.protocols._library import AsyncioListener, Listener, Listening, TrafficRecord
from lab.protocols.socks._conversation import SocksConversation, load_ports, protocol_for_port
from lab.protocols.socks._messages import GRANTED, REJECTED, SocksCommand, SocksReply, SocksRequest
from lab.protocols.socks._policy import Policy, Verdict
from lab.services import LISTENERS

__all__ = ["Relay", "RelayListener", "listen"]

# a client's bytes after its request, before the tunnel opens, that we keep
# (and after a refusal, that we read and drop before closing)
_EARLY_LIMIT = 64 * 1024
_LINGER = 1.0  # seconds a refused client may take to read its reply before we close


class _Leg(asyncio.Protocol):
    """One socket of a tunnel: the client's (CLIENT) or the destination's (SERVER)."""

    def __init__(self, tunnel: _Tunnel, side: Role) -> None:
        self.tunnel = tunnel
        self.side = side
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.tunnel.made(self)

    def data_received(self, data: bytes) -> None:
        self.tunnel.data(self.side, data)

    def eof_received(self) -> bool:
        self.tunnel.eof(self.side)
        return True  # the tunnel decides when this socket closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.tunnel.lost(self.side)

    def pause_writing(self) -> None:
        self.tunnel.blocked(self.side, True)

    def resume_writing(self) -> None:
        self.tunnel.blocked(self.side, False)

    def write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _Turnaway(asyncio.Protocol):
    """A second connection to a BIND port: only one is awaited."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class Relay:
    """One SOCKS server's sockets, its policy and its options."""

    def __init__(self, where: Listening) -> None:
        opts = where.options
        self.host = where.host
        self.recorder = where.recorder
        self.clock: Clock = where.clock
        self.options = opts
        self.policy = Policy(allow=[rule for rules in opts.allow for rule in rules], hosts=opts.lab_host,
                             users=opts.user, bind=opts.bind)
        self.decode_ports = {port: name for port, name in opts.decode if port}
        self.decode_all = next((name for port, name in opts.decode if not port), "")
        self.tunnels: set[_Tunnel] = set()
        self.listeners = where.services.get(LISTENERS)
        # the protocols' default ports: loading every protocol takes a
        # while, so a thread does it when the server starts, off the loop
        self.ports_loaded: asyncio.Future[Any] | None = None

    async def choose(self, request: SocksRequest, address: str) -> str | None:
        """The protocol a tunnel to ``address`` carries: --decode's, then
        the lab server's listening there, then the one whose default port
        it is."""
        name = self.decode_ports.get(request.port) or self.decode_all
        if name:
            return None if name == "raw" else name
        found = self.listeners.protocol_at(address, request.port)
        if found:
            return found
        if self.ports_loaded is not None:
            try:
                await asyncio.shield(self.ports_loaded)
            except Exception:
                return None  # the registry did not load: the tunnel goes undecoded
        return protocol_for_port(request.port)

    def accept(self) -> _Leg:
        tunnel = _Tunnel(self)
        return _Leg(tunnel, Role.CLIENT)


class _Tunnel:
    """One client: its request, the verdict, then the relay both ways."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        opts = relay.options
        self.conv = SocksConversation(None, choose=lambda request: self.choice, max_request=opts.max_request)
        self.choice: str | None = None  # the protocol the tunnel carries, chosen once granted
        self.record: TrafficRecord | None = None
        self.legs: dict[Role, _Leg] = {}
        self.stage = "request"  # request, dialing, binding, relay, closing
        self.early = bytearray()  # the client's bytes until the tunnel opens
        self.early_back = bytearray()  # the destination's, likewise (read before reading paused)
        self.plain: set[Role] = set()  # sides whose bytes no longer decode
        self.eofs: set[Role] = set()
        self._paused: dict[Role, set[str]] = {Role.CLIENT: set(), Role.SERVER: set()}
        self._task: asyncio.Task[Any] | None = None
        self._bind_server: asyncio.AbstractServer | None = None
        self._bound: asyncio.Future[_Leg] | None = None
        self._idle: Timer | None = None
        self._late: Timer | None = None  # the deadline for the whole request
        self._linger: Timer | None = None  # closing the client after a refusal
        self.dropped = 0  # bytes the client sent after it was refused
        self.last_active = relay.clock.time()
        self.done = False
        self.ended_by: Role | None = None  # the side that finished first
        self.close_reason = ""  # ours, when we hung up

    # -- sockets -----------------------------------------------------------

    def made(self, leg: _Leg) -> None:
        transport = leg.transport
        assert transport is not None
        if leg.side is Role.SERVER:
            if self.stage not in ("dialing", "binding") or Role.SERVER in self.legs:
                transport.close()  # too late: the client is gone, or a second caller
                return
            self.legs[Role.SERVER] = leg
            self._pause(Role.SERVER, "opening")  # nothing goes to the client before its reply
            if self._bound is not None and not self._bound.done():
                self._bound.set_result(leg)
            return
        self.legs[Role.CLIENT] = leg
        self.relay.tunnels.add(self)
        peer = transport.get_extra_info("peername") or ()
        local = transport.get_extra_info("sockname") or ()
        self.record = self.relay.recorder.opened(peer, local, close=self.abort)
        if self.done:
            return  # the lab refused it (a connection cap)
        self._idle = self.relay.clock.call_later(self.relay.options.idle, self._check_idle)
        self._late = self.relay.clock.call_later(self.relay.options.request_timeout, self._request_late)

    def data(self, side: Role, data: bytes) -> None:
        if self.done:
            return
        self.last_active = self.relay.clock.time()
        if self.stage == "relay":
            self._show(side, data)  # logged before the peer can act on it
            self.legs[side.peer].write(data)
            return
        if side is Role.SERVER:
            self.early_back += data  # the destination spoke before we granted: kept for after the reply
            return
        if self.stage == "closing":
            # after a refusal: dropped, up to a bound, while the reply leaves
            self.dropped += len(data)
            if self.dropped > _EARLY_LIMIT:
                self._close_client()
            return
        self.early += data
        self._show(side, data)
        if self.stage == "request" and self.conv.request is not None:
            self._requested(self.conv.request)
        elif len(self.early) > _EARLY_LIMIT:
            self._pause(Role.CLIENT, "early")

    def eof(self, side: Role) -> None:
        self.eofs.add(side)
        if self.ended_by is None:
            self.ended_by = side
        if side is Role.CLIENT and self.stage == "request":
            self._show(side, b"")  # a request cut short is an error of its own
            if not self.done and self.stage == "request":
                self._hang_up("the client finished sending without a request")
            return
        if self.stage == "closing" and side is Role.CLIENT:
            self._close_client()  # it heard the reply and is done
            return
        if self.stage != "relay":
            return
        self._show(side, b"")
        other = self.legs.get(side.peer)
        if other is not None and other.transport is not None and other.transport.can_write_eof():
            other.transport.write_eof()
        if self.eofs >= {Role.CLIENT, Role.SERVER}:
            self.close()

    def lost(self, side: Role) -> None:
        if self.ended_by is None:
            self.ended_by = side
        other = self.legs.get(side.peer)
        if other is not None and not other.closed and other.transport is not None:
            other.transport.close()  # what it has been written still goes
        if all(leg.closed for leg in self.legs.values()):
            first = self.ended_by or side
            self._finish(self.close_reason or f"the {'client' if first is Role.CLIENT else 'destination'} closed")

    def blocked(self, side: Role, blocked: bool) -> None:
        """Writes to ``side`` are blocked (or flow again): stop (or go on)
        reading the other side."""
        if blocked:
            self._pause(side.peer, f"{side.value} blocked")
        else:
            self._resume(side.peer, f"{side.value} blocked")

    def _pause(self, side: Role, why: str) -> None:
        reasons = self._paused[side]
        leg = self.legs.get(side)
        if not reasons and leg is not None and leg.transport is not None and not leg.transport.is_closing():
            leg.transport.pause_reading()
        reasons.add(why)

    def _resume(self, side: Role, why: str) -> None:
        reasons = self._paused[side]
        reasons.discard(why)
        leg = self.legs.get(side)
        if not reasons and leg is not None and leg.transport is not None and not leg.transport.is_closing():
            leg.transport.resume_reading()

    # -- the log -----------------------------------------------------------

    def _show(self, sender: Role, data: bytes) -> None:
        """Decode what ``sender`` sent and report every message now complete."""
        record = self.record
        if record is None:
            return
        if sender in self.plain:
            if data:
                self._report(record, sender, Data(raw=data))
            return
        try:
            found = self.conv.observe(data, sender)
        except Exception as exc:
            if isinstance(exc, ProtocolError):
                problem, found = exc, list(exc.decoded)
            else:
                # a decoder's bug must cost the log its decoding, not the tunnel its bytes
                record.error(f"decoding what the {sender.value} sends failed: {type(exc).__name__}: {exc}")
                problem, found = RemoteProtocolError(f"undecodable ({type(exc).__name__})"), []
            self.plain.add(sender)
            for side, msg in found:
                self._report(record, side, msg)
            if self.stage == "request" and sender is Role.CLIENT and self.conv.request is None:
                self._bad_request(problem)
            else:
                record.note(f"what the {sender.value} sends no longer decodes ({problem}); shown as it comes")
                if not found and data:
                    self._report(record, sender, Data(raw=data))
            return
        for side, msg in found:
            self._report(record, side, msg)

    @staticmethod
    def _report(record: TrafficRecord, side: Role, msg: Message) -> None:
        if side is Role.CLIENT:
            record.received(msg)
        else:
            record.sent(msg)

    # -- the request -------------------------------------------------------

    def _bad_request(self, exc: ProtocolError) -> None:
        assert self.record is not None
        data = bytes(self.early)
        if data:
            self._report(self.record, Role.CLIENT, Data(raw=data[:1024]))
        hint = f" ({exc.hint})" if exc.hint else ""
        self.record.error(f"bad request: {exc.message}{hint}; answered {REJECTED} and closed")
        self._reply(SocksReply.of(REJECTED))
        self._hang_up("bad request")

    def _request_late(self) -> None:
        self._late = None
        if self.stage == "request" and not self.done:
            if self.record is not None:
                self.record.error(f"no whole request within {self.relay.options.request_timeout:g} s"
                                  f" ({len(self.early)} bytes came): closing")
            self.abort()

    def _requested(self, request: SocksRequest) -> None:
        if self._late is not None:
            self._late.cancel()
            self._late = None
        del self.early[:len(request.raw)]
        verdict = self.relay.policy.decide(request)
        if not verdict.granted:
            self._refuse(request, verdict.reason)
            return
        self._pause(Role.CLIENT, "opening")
        loop = asyncio.get_running_loop()
        if request.command == SocksCommand.BIND:
            self.stage = "binding"
            self._task = loop.create_task(self._guarded(self._bind(request, verdict)))
        else:
            self.stage = "dialing"
            self._task = loop.create_task(self._guarded(self._dial(request, verdict)))

    async def _guarded(self, opening: Coroutine[Any, Any, None]) -> None:
        """Run a dial or a bind; a bug in it closes this tunnel, with an event, and nothing else."""
        try:
            await opening
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.record is not None:
                self.record.error(f"opening the tunnel failed: {type(exc).__name__}: {exc}")
            self.abort()

    def _refuse(self, request: SocksRequest, reason: str) -> None:
        assert self.record is not None
        self.record.error(f"refused {request.summary()}: {reason}")
        self._reply(SocksReply.of(REJECTED))
        self._hang_up("refused")

    def _reply(self, reply: SocksReply) -> None:
        if Role.CLIENT in self.plain and self.record is not None:
            self._report(self.record, Role.SERVER, reply)  # the observer is spent on the bad request
        else:
            self._show(Role.SERVER, reply.raw)
        leg = self.legs.get(Role.CLIENT)
        if leg is not None:
            leg.write(reply.raw)

    def _hang_up(self, reason: str) -> None:
        """Close the client's socket after the reply.  Bytes it still sends
        are read and dropped for a moment first: closing with them unread
        would reset the connection, and the reply could be lost with it."""
        self.stage = "closing"
        self.close_reason = reason
        leg = self.legs.get(Role.CLIENT)
        if leg is None or leg.transport is None or leg.transport.is_closing():
            return
        if Role.CLIENT in self.eofs or not leg.transport.can_write_eof():
            leg.transport.close()  # the reply still goes out first
            return
        leg.transport.write_eof()
        self._paused[Role.CLIENT].clear()
        leg.transport.resume_reading()
        self._linger = self.relay.clock.call_later(_LINGER, self._close_client)

    def _close_client(self) -> None:
        self._linger = None
        leg = self.legs.get(Role.CLIENT)
        if leg is not None and leg.transport is not None:
            leg.transport.close()

    async def _dial(self, request: SocksRequest, verdict: Verdict) -> None:
        assert verdict.address is not None
        loop = asyncio.get_running_loop()
        timeout = self.relay.options.connect_timeout
        try:
            await asyncio.wait_for(loop.create_connection(lambda: _Leg(self, Role.SERVER), verdict.address,
                                                          request.port), timeout)
        except (OSError, TimeoutError) as exc:
            why = f"timed out after {timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            if not self.done:
                self._refuse(request, f"cannot reach {verdict.address}:{request.port}: {why}")
            return
        if self.done or Role.SERVER not in self.legs:
            return
        self.choice = await self.relay.choose(request, verdict.address)
        if self.done:
            return
        self._open(SocksReply.of(GRANTED, request.port, verdict.address))

    async def _bind(self, request: SocksRequest, verdict: Verdict) -> None:
        loop = asyncio.get_running_loop()
        self._bound = loop.create_future()
        client = self.legs[Role.CLIENT].transport
        assert client is not None
        local = client.get_extra_info("sockname") or (self.relay.host, 0)
        try:
            self._bind_server = await loop.create_server(
                lambda: _Turnaway() if self._bound is None or self._bound.done() else _Leg(self, Role.SERVER),
                local[0], 0)
        except OSError as exc:
            self._refuse(request, f"cannot listen for the connection back: {exc.strerror or exc}")
            return
        host, port = self._bind_server.sockets[0].getsockname()[:2]
        try:
            address = str(ipaddress.IPv4Address(host))
        except ValueError:
            address = "0.0.0.0"
        self._reply(SocksReply.of(GRANTED, port, address))
        assert self.record is not None
        self.record.note(f"BIND: listening on {address}:{port} for {verdict.address}")
        try:
            leg = await asyncio.wait_for(asyncio.shield(self._bound), self.relay.options.bind_timeout)
        except TimeoutError:
            self._close_bind_server()
            if not self.done:
                self._refuse(request, f"nobody connected back within {self.relay.options.bind_timeout:g} s")
            return
        finally:
            self._close_bind_server()
        if self.done:
            return
        assert leg.transport is not None
        peer = leg.transport.get_extra_info("peername") or ("0.0.0.0", 0)
        if peer[0] != verdict.address:
            # RFC: the connection back must come from the host the client named
            leg.transport.abort()
            self._refuse(request, f"the connection back came from {peer[0]}, not {verdict.address}")
            return
        assert verdict.address is not None
        self.choice = await self.relay.choose(request, verdict.address)
        if self.done:
            return
        self._open(SocksReply.of(GRANTED, int(peer[1]), str(peer[0])))

    def _close_bind_server(self) -> None:
        server, self._bind_server = self._bind_server, None
        if server is not None:
            server.close()

    def _open(self, reply: SocksReply) -> None:
        """The destination is there: grant, pass on what the client sent
        early, and relay."""
        self._reply(reply)
        self.stage = "relay"
        early, self.early = bytes(self.early), bytearray()
        self.legs[Role.SERVER].write(early)
        back, self.early_back = bytes(self.early_back), bytearray()
        if back:
            self.data(Role.SERVER, back)
        self._resume(Role.SERVER, "opening")
        self._resume(Role.CLIENT, "opening")
        self._resume(Role.CLIENT, "early")
        if Role.CLIENT in self.eofs:
            self.eofs.discard(Role.CLIENT)
            self.eof(Role.CLIENT)

    # -- the end -----------------------------------------------------------

    def _check_idle(self) -> None:
        self._idle = None
        if self.done:
            return
        limit = self.relay.options.idle
        quiet = self.relay.clock.time() - self.last_active
        if quiet >= limit:
            if self.record is not None:
                self.record.error(f"idle for {limit:g} s: closing")
            self.abort()
        else:
            self._idle = self.relay.clock.call_later(limit - quiet, self._check_idle)

    def close(self) -> None:
        for leg in self.legs.values():
            if leg.transport is not None:
                leg.transport.close()

    def abort(self) -> None:
        """Close both sockets now (the lab stops the server, a cap, idle)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._close_bind_server()
        for leg in self.legs.values():
            if leg.transport is not None:
                leg.transport.abort()
        self._finish("aborted")

    def _finish(self, reason: str) -> None:
        if self.done:
            return
        self.done = True
        self.stage = "closing"
        for timer in (self._idle, self._late, self._linger):
            if timer is not None:
                timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._close_bind_server()
        self.relay.tunnels.discard(self)
        if self.record is not None:
            self.record.closed(reason)


class RelayListener(AsyncioListener):
    """The listening socket, and the relay behind it (its open ``tunnels``)."""

    def __init__(self, server: asyncio.AbstractServer, relay: Relay) -> None:
        super().__init__(server)
        self.relay = relay


async def listen(where: Listening) -> Listener:
    """Serve SOCKS 4/4a on ``where``."""
    relay = Relay(where)
    loop = asyncio.get_running_loop()
    relay.ports_loaded = loop.run_in_executor(None, load_ports)
    server = await loop.create_server(relay.accept, where.host, where.port, reuse_address=True, backlog=512)
    return RelayListener(server, relay)
