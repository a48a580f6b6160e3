"""Endpoints: the named things in a lab (servers, clients, proxies).

Each endpoint lives on the reactor loop.  Its public methods come in
pairs, ``stop()`` to block from any thread and ``astop()`` to await from
any loop; both run the same coroutine on the reactor.

What an endpoint can do is declared once, by its :class:`EndpointKind`
and that kind's :class:`Can` flags, so the command language, the
front-ends and recordings ask ``endpoint.can(Can.EXPECT)`` instead of
testing classes.

Tests: tests/test_lab.py
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import errno
import functools
import inspect
import ipaddress
import itertools
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

from lab.budget import DEFAULT_LIMITS, BudgetLimits, ReplyBudget
from lab.connection import (
    Connection,
    DatagramClientConnection,
    DatagramPeer,
    RecordedConnection,
    StreamConnection,
    format_address,
    format_exception,
)
from lab.errors import ConfigError, LabError
from lab.eventlog import Capture, EventKind
from lab.protocols._base import Clock, Message, Pattern, Role, Timer, Transport
from lab.protocols._library import Dialing, Listener, Listening, TrafficRecord
from lab.protocols._options import Options
from lab.protocols._session import ClientVerbs, ServerBehaviour
from lab.protocols._spec import ProtocolSpec

if TYPE_CHECKING:
    from lab.intercept import Breakpoint
    from lab.lab import Lab

__all__ = ["BACKGROUND", "Can", "Client", "Endpoint", "EndpointKind", "Hook", "ListeningEndpoint", "Server",
           "ServerState", "default_per_source"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Hook = Callable[[Message, Connection], Any]

DEFAULT_MAX_CONNECTIONS = 256
# a message (command line, request, body) must arrive within this many
# seconds, unless its bytes average DEFAULT_MIN_RATE a second (nginx's
# client_header_timeout, Apache's mod_reqtimeout header=20-40,MinRate=500)
DEFAULT_LINE_TIMEOUT = 30.0
DEFAULT_MIN_RATE = 500.0
PACE_SWEEP = 1.0  # seconds between looks at the messages arriving, at most
UDP_PEER_LIMIT = 1024
# UDP has no close: a peer silent this long (or the idle timeout, if shorter)
# is forgotten, so request/answer clients do not pile up as open connections
UDP_PEER_IDLE = 30.0
# the read buffer of a UDP server: room for the largest datagram; asyncio's
# own 256 KiB makes the allocator map and unmap memory for every datagram
UDP_READ_SIZE = 65536


class Can(enum.Flag):
    """What an endpoint can do."""

    NONE = 0
    LISTEN = enum.auto()  # has an address others connect to
    CONNECT = enum.auto()  # opens connections to a target
    SEND = enum.auto()  # send/expect/receive on its own connection
    VERBS = enum.auto()  # the protocol's client verbs
    HOOK = enum.auto()  # srv.on(kind, fn): hooks on received messages
    RELAY = enum.auto()  # passes traffic between two legs


class EndpointKind(enum.Enum):
    """The kinds of endpoint, each with what it can do."""

    SERVER = ("server", Can.LISTEN | Can.HOOK)
    CLIENT = ("client", Can.CONNECT | Can.SEND | Can.VERBS)
    PROXY = ("proxy", Can.LISTEN | Can.CONNECT | Can.HOOK | Can.RELAY)

    def __init__(self, label: str, can: Can) -> None:
        self.label = label
        self.can = can

    def __str__(self) -> str:
        return self.label


class ServerState(enum.Enum):
    STARTING = "starting"
    LISTENING = "listening"
    STOPPED = "stopped"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Set (in its own task) by what runs the lab for the user, such as the demo:
# endpoints made meanwhile are scenery, and a recording leaves them out.
BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("netlab_background", default=False)


class Endpoint:
    """Something with a name, a protocol and a capture level."""

    kind: EndpointKind
    # what an intercept holds here (lab.intercept): empty, the usual case, costs nothing
    breakpoints: tuple[Breakpoint, ...] = ()

    def __init__(self, lab: Lab, name: str, spec: ProtocolSpec, transport: Transport,
                 capture: Capture) -> None:
        self.lab = lab
        self.name = name
        self.spec = spec
        self.transport = transport
        self._capture = capture
        self.background = BACKGROUND.get()

    @property
    def capture(self) -> Capture:
        """What this endpoint records; changing it applies at once."""
        return self._capture

    @capture.setter
    def capture(self, value: Capture | str) -> None:
        self._capture = Capture(value)
        for conn in self.live_connections():
            conn._set_capture(self._capture)

    @property
    def abilities(self) -> Can:
        """What this endpoint can do: its kind's abilities, less what its
        protocol cannot offer (no hooks where a library owns the socket)."""
        return self.kind.can

    def can(self, what: Can) -> bool:
        """Can this endpoint do ``what`` (all of it, for several flags)?"""
        return what in self.abilities

    @property
    def coalesce_writes(self) -> bool:
        """Do its TCP connections gather one loop pass's writes into one?"""
        return False

    def live_connections(self) -> list[Connection]:
        return []

    @property
    def address(self) -> str:
        """Where it listens, or what it talks to (``tcp://127.0.0.1:7007``)."""
        raise NotImplementedError

    def hooks(self) -> list[tuple[str, Hook, bool]]:
        """The live hooks as (message kind, function, replaces the protocol's handling)."""
        return []

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """The host and port clients connect to, for endpoints that listen."""
        return None

    @property
    def protocol(self) -> str:
        return self.spec.name

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return self.lab.reactor.call(coro, timeout)

    async def _acall(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self.lab.reactor.run_async(coro)

    # hooks used by connections (reactor thread)

    def admit(self, conn: Connection) -> bool:
        return True

    def opened(self, conn: Connection) -> None:
        pass

    def connection_closed(self, conn: Connection) -> None:
        pass

    def guard(self, conn: Connection, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call user or behaviour code; an exception becomes an error event
        and the endpoint keeps serving."""
        try:
            return fn(*args)
        except Exception as exc:
            conn.error(f"{what} raised {format_exception(exc)}")
            logger.debug("%s in %s raised", what, self.name, exc_info=True)
            return None

    async def _shut(self) -> None:
        """Stop serving or close, as this kind of endpoint does."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    def _describe(self) -> str:
        """What the repr says after the name and protocol."""
        raise NotImplementedError

    # __repr__ and _repr_pretty_ in one class: IPython uses whichever it
    # finds first walking the MRO, and the pretty one is wanted
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.spec.name} {self._describe()}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from lab.reprs import pretty

        pretty(self, p, cycle)

    def _repr_html_(self) -> str:
        from lab.reprs import html_of

        return html_of(self)


def default_per_source(max_connections: int) -> int:
    """The connections one source address may hold by default: a quarter
    of the cap, so no one source fills it, but at least 4, so a small cap
    still lets one host open a few."""
    return min(max_connections, max(4, max_connections // 4))


class ListeningEndpoint(Endpoint):
    """What servers and proxies share: an address clients connect to, a
    cap on connections (in all and per source address), their counts,
    hooks, and one status shape."""

    def __init__(self, lab: Lab, name: str, spec: ProtocolSpec, *, host: str, port: int,
                 transport: Transport, capture: Capture, max_connections: int,
                 idle_timeout: float | None, max_per_source: int = 0) -> None:
        super().__init__(lab, name, spec, transport, capture)
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_per_source = max_per_source  # 0: no cap per source address
        self._per_source: dict[str, int] = {}
        self.state = ServerState.STARTING
        self.connections: dict[str, Connection] = OrderedDict()
        self.accepted = 0
        self.refused = 0
        # what connections that have closed moved: totals outlive them
        self.closed_bytes_in = self.closed_bytes_out = 0
        self._ids = itertools.count(1)
        self._hooks: dict[str, list[tuple[Hook, bool]]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_sock: socket.socket | None = None

    def _forget(self, conn: Connection) -> bool:
        """Take a closed connection off the live list, keeping its byte
        counts in the totals; False if it was not on it."""
        if self.connections.pop(conn.id, None) is None:
            return False
        source = conn.source
        if source is not None:
            left = self._per_source[source] - 1
            if left:
                self._per_source[source] = left
            else:
                del self._per_source[source]
        self.closed_bytes_in += conn.bytes_in
        self.closed_bytes_out += conn.bytes_out
        return True

    @property
    def listen_address(self) -> tuple[str, int]:
        return self.host, self.port

    def admit(self, conn: Connection) -> bool:
        """Count ``conn`` in, or refuse it (over the cap, or stopping)."""
        if len(self.connections) >= self.max_connections:
            self.refused += 1
            conn.error(f"refused {format_address(conn.peer)}: {self.max_connections} connections already open")
            conn.abort("connection limit")
            return False
        if self.state is not ServerState.LISTENING:
            conn.abort(f"{self.kind.label} stopping")
            return False
        if self.max_per_source and conn.peer:
            # per address, loopback too: 127.0.0.2 is another source than 127.0.0.1
            source = str(conn.peer[0])
            held = self._per_source.get(source, 0)
            if held >= self.max_per_source:
                self.refused += 1
                conn.error(f"refused {format_address(conn.peer)}: {held} connections already open from {source}"
                           f" (at most {self.max_per_source} per source)")
                conn.abort("per-source connection limit")
                return False
            self._per_source[source] = held + 1
            conn.source = source
        self.accepted += 1
        self.connections[conn.id] = conn
        return True

    def hooks(self) -> list[tuple[str, Hook, bool]]:
        return [(kind, fn, replace) for kind, fns in self._hooks.items() for fn, replace in fns]

    def off(self, kind: str | None = None) -> None:
        """Remove the hooks for ``kind``, or all hooks."""
        if kind is None:
            self._hooks.clear()
        else:
            self._hooks.pop(kind, None)

    def status(self) -> dict[str, Any]:
        conns = list(self.connections.values())
        return {
            "name": self.name,
            "kind": self.kind.label,
            "protocol": self.spec.name,
            "address": self.address,
            "state": self.state.value,
            "connections": len(conns),
            "accepted": self.accepted,
            "refused": self.refused,
            "bytes_in": self.closed_bytes_in + sum(c.bytes_in for c in conns),
            "bytes_out": self.closed_bytes_out + sum(c.bytes_out for c in conns),
            "capture": self.capture.value,
        }

    def _describe(self) -> str:
        return f"{self.address} {self.state.value}, {len(self.connections)} connections"


class Server(ListeningEndpoint):
    """A listening server: one behaviour, one session per connection."""

    kind = EndpointKind.SERVER

    def __init__(self, lab: Lab, name: str, spec: ProtocolSpec, *, host: str, port: int,
                 transport: Transport, options: Options, capture: Capture,
                 max_connections: int, idle_timeout: float | None, max_per_source: int = 0,
                 line_timeout: float | None = None, min_rate: float = 0.0) -> None:
        super().__init__(lab, name, spec, host=host, port=port, transport=transport, capture=capture,
                         max_connections=max_connections, idle_timeout=idle_timeout,
                         max_per_source=max_per_source)
        self.options = options
        # slow clients (TCP): a message arriving longer than line_timeout
        # (None: no limit) closes its connection unless it averages min_rate
        # bytes a second (0: however fast it comes)
        self.line_timeout = line_timeout
        self.min_rate = min_rate
        self._pace_sweep: Timer | None = None
        self.given_options: dict[str, Any] = {}  # as the user wrote them, for saving the lab
        self.behaviour: ServerBehaviour[Any] = spec.server(options)
        self.behaviour.services = lab.services
        self.behaviour.clock = lab.clock
        self._udp_reaper: Timer | None = None
        self._udp_peers: OrderedDict[tuple[Any, ...], DatagramPeer] = OrderedDict()
        # over UDP: what each source address may be sent (lab.budget); change .limits at will
        self.reply_budget: ReplyBudget | None = None
        self.budget_limits: BudgetLimits | None = DEFAULT_LIMITS  # None: no budget (Lab.serve's reply_budget="off")
        self._listener: Listener | None = None  # a library's, when it owns the sockets

    @property
    def coalesce_writes(self) -> bool:
        return self.behaviour.coalesce_writes

    def __getattr__(self, name: str) -> Any:
        # __dict__, not attributes: this runs for every missing name, even mid-__init__
        behaviour = self.__dict__.get("behaviour")
        if behaviour is not None and name in type(behaviour).shell_names:
            return getattr(behaviour, name)
        raise AttributeError(
            f"{type(self).__name__} {self.__dict__.get('name', '?')!r} has no attribute {name!r}"
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(type(self.behaviour).shell_names))

    @property
    def abilities(self) -> Can:
        return self.kind.can & ~Can.HOOK if self.spec.listen is not None else self.kind.can

    # -- life ------------------------------------------------------------

    @property
    def address(self) -> str:
        """``tcp://127.0.0.1:7007``"""
        return f"{self.transport.value}://{format_address((self.host, self.port))}"

    async def _start(self) -> None:
        loop = self.lab.loop
        try:
            if self.spec.listen is not None:
                self._listener = await self.spec.listen(Listening(
                    self.host, self.port, self.options, _Recorder(self), self.lab.services, self.lab.clock,
                    idle_timeout=self.idle_timeout))
            elif self.transport is Transport.TCP:
                self._server = await loop.create_server(
                    self._new_stream, self.host, self.port, reuse_address=True, backlog=512
                )
            else:
                sock = self._udp_sock = udp_socket(self.host, self.port, bind=True)
                if self.spec.tcp_beside_udp:  # DNS: TCP on the same port, for answers too big for UDP
                    sock, stream = self._tcp_beside(sock)
                    self._udp_sock = sock
                    self._server = await loop.create_server(self._new_stream, sock=stream, backlog=512)
                limits = getattr(self.options, "reply_budget", None)  # a protocol may offer it as an option
                if isinstance(limits, BudgetLimits):
                    self.budget_limits = limits
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpServerProtocol(self), sock=sock
                )
                if hasattr(transport, "max_size"):  # asyncio's own transport (uvloop reads its own way)
                    transport.max_size = UDP_READ_SIZE
                if self.budget_limits is None:
                    self._udp = transport
                else:
                    self.reply_budget = ReplyBudget(self.budget_limits, self.lab.clock.time, self._budget_report)
                    self._udp = _BudgetedTransport(transport, self.reply_budget)
                self._udp_reaper = self.lab.clock.call_later(self._reap_interval, self._reap_udp_peers)
        except OSError as exc:
            where = f"{self.transport.value} {format_address((self.host, self.port))}"
            hint = {
                errno.EADDRINUSE: "the port is taken: pick another (0 = any free port)",
                errno.EACCES: "ports below 1024 need root: pick a port above 1023",
            }.get(exc.errno or 0, "check the host address")
            raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}", hint=hint) from None
        self.port = self._listener.port if self._listener is not None else self._bound_port()
        try:
            self.behaviour.started()
        except BaseException:
            await self._close_listener()
            raise
        self.state = ServerState.LISTENING
        if self._server is not None:  # running always, so line_timeout may be changed live
            self._pace_sweep = self.lab.clock.call_later(self._pace_interval, self._sweep_pace)
        self.lab.log.emit(EventKind.LISTEN, endpoint=self.name, protocol=self.spec.name,
                          text=f"{self.spec.name} listening on {self.address}"
                               + (" and tcp on the same port" if self.spec.tcp_beside_udp
                                  and self.transport is Transport.UDP else ""))

    def _tcp_beside(self, sock: socket.socket) -> tuple[socket.socket, socket.socket]:
        """A TCP socket bound to the UDP socket's port; for port 0, another
        pair until a port is free for both."""
        for _ in range(20):
            port = sock.getsockname()[1]
            stream = socket.socket(sock.family, socket.SOCK_STREAM)
            try:
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                stream.bind((self.host, port))
                return sock, stream
            except OSError:
                stream.close()
                if self.port:
                    sock.close()
                    raise
            sock.close()
            sock = udp_socket(self.host, 0, bind=True)
        sock.close()
        raise OSError(errno.EADDRINUSE, "no port is free for both UDP and TCP")

    def _bound_port(self) -> int:
        if self._server is not None:
            return int(cast(asyncio.Server, self._server).sockets[0].getsockname()[1])
        assert self._udp_sock is not None
        return int(self._udp_sock.getsockname()[1])

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            await asyncio.wait_for(listener.wait_closed(), 5.0)
        if self._udp is not None:
            self._udp.close()
        if self._udp_reaper is not None:
            self._udp_reaper.cancel()
        if self._pace_sweep is not None:
            self._pace_sweep.cancel()

    async def _stop(self, timeout: float = 2.0) -> None:
        if self.state is ServerState.STOPPED:
            return
        self.state = ServerState.STOPPED
        if self._udp_reaper is not None:
            self._udp_reaper.cancel()
        if self._pace_sweep is not None:
            self._pace_sweep.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for conn in list(self.connections.values()):
            conn.abort("server stopped")
        if self._udp is not None:
            self._udp.close()
        if listener is not None:
            try:
                await asyncio.wait_for(listener.wait_closed(), timeout)
            except TimeoutError:
                logger.warning("server %s: its library did not close within %s s", self.name, timeout)
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout)
            except TimeoutError:
                logger.warning("server %s did not close within %s s", self.name, timeout)
        # let transports deliver connection_lost before we report
        for _ in range(3):
            if not self.connections:
                break
            await asyncio.sleep(0)
        for conn in list(self.connections.values()):
            conn._closed("server stopped")  # every session hears connection_lost before stopped()
        try:
            self.behaviour.stopped()
        except Exception as exc:
            self.lab.log.emit(EventKind.ERROR, endpoint=self.name, protocol=self.spec.name,
                              text=f"stopped raised {format_exception(exc)}")
        self.lab.log.emit(EventKind.STOP, endpoint=self.name, protocol=self.spec.name,
                          text=f"stopped after {self.accepted} connections ({self.refused} refused)")

    async def _shut(self) -> None:
        await self._stop()

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self.lab.stop(self)

    async def astop(self) -> None:
        await self.lab.astop(self)

    # -- connections -----------------------------------------------------

    def _new_stream(self) -> StreamConnection:
        conn_id = f"{self.name}#{next(self._ids)}"
        return StreamConnection(self, conn_id, Role.SERVER,
                                self.spec.conversation(Role.SERVER, Transport.TCP), self.idle_timeout)

    def opened(self, conn: Connection) -> None:
        session = self.guard(conn, "session", self.behaviour.session, conn)
        if session is None:
            conn.abort("no session")
            return
        conn.session = session
        self._bind(conn)
        self.guard(conn, "connection_made", session.connection_made)

    def connection_closed(self, conn: Connection) -> None:
        if isinstance(conn, DatagramPeer):
            self._udp_peers.pop(conn.peer, None)
        if self._forget(conn) and conn.session is not None:
            self.guard(conn, "connection_lost", conn.session.connection_lost)

    def live_connections(self) -> list[Connection]:
        return list(self.connections.values())

    def _bind(self, conn: Connection) -> None:
        # the hot path calls the session directly unless hooks are set
        session = conn.session
        if session is None:
            return
        if self._hooks:
            conn._handle = functools.partial(self._handle_hooked, conn)
        else:
            conn._handle = session.message_received

    def _rebind(self) -> None:
        for conn in self.connections.values():
            self._bind(conn)

    def _handle_hooked(self, conn: Connection, msg: Message) -> None:
        hooks = self._hooks
        replaced = False
        for fn, replace in hooks.get(msg.kind, []) + hooks.get("*", []):
            self.guard(conn, f"hook {getattr(fn, '__name__', 'hook')}", fn, msg, conn)
            replaced = replaced or replace
        if not replaced and conn.session is not None:
            conn.session.message_received(msg)

    def on(self, kind: str, fn: Hook, *, replace: bool = True) -> Hook:
        """Run ``fn(msg, conn)`` for each received message of ``kind``
        (``"*"`` for all) on the reactor thread.  With ``replace`` (the
        default) the protocol's own handling is skipped for that message;
        otherwise ``fn`` only observes.  Exceptions are logged, not fatal."""
        self._hooks.setdefault(kind, []).append((fn, replace))
        self._rebind()
        return fn

    def off(self, kind: str | None = None) -> None:
        """Remove the hooks for ``kind``, or all hooks."""
        super().off(kind)
        self._rebind()

    # -- slow clients ----------------------------------------------------

    @property
    def _pace_interval(self) -> float:
        return min(PACE_SWEEP, max(0.05, (self.line_timeout or PACE_SWEEP) / 4))

    def _sweep_pace(self) -> None:
        """One timer per server, not per connection: look at every message
        still arriving and cut the ones too slow (see check_pace)."""
        self._pace_sweep = None
        if self.state is not ServerState.LISTENING:
            return
        limit = self.line_timeout
        cut = 0
        if limit:
            now = self.lab.clock.time()
            min_rate = self.min_rate
            for conn in list(self.connections.values()):
                if isinstance(conn, StreamConnection) and conn.check_pace(now, limit, min_rate):
                    cut += 1
        if cut > 1:
            self.lab.log.emit(EventKind.INFO, endpoint=self.name, protocol=self.spec.name,
                              text=f"closed {cut} connections whose messages arrived too slowly")
        self._pace_sweep = self.lab.clock.call_later(self._pace_interval, self._sweep_pace)

    # -- UDP -------------------------------------------------------------

    @property
    def _reap_interval(self) -> float:
        return max(0.05, self._udp_idle / 3)

    @property
    def _udp_idle(self) -> float:
        return min(self.idle_timeout or UDP_PEER_IDLE, UDP_PEER_IDLE)

    def _budget_report(self, text: str) -> None:
        self.lab.log.emit(EventKind.INFO, endpoint=self.name, protocol=self.spec.name, text=text)

    def _datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        budget = self.reply_budget
        if budget is not None and not budget.admit(addr[0], len(data)):
            return  # over its budget: unanswered, and counted rather than logged
        conn = self._udp_peers.get(addr)
        if conn is None:
            assert self._udp is not None
            if len(self._udp_peers) >= UDP_PEER_LIMIT:
                # UDP has no close: forget the quietest peer to stay bounded
                next(iter(self._udp_peers.values())).close()
            conn = DatagramPeer(self, f"{self.name}#{next(self._ids)}",
                                self.spec.conversation(Role.SERVER, Transport.UDP), self._udp, addr,
                                self._udp_sock)
            self._udp_peers[addr] = conn
            self.connections[conn.id] = conn
            self.accepted += 1
            conn._emit(EventKind.OPEN, text=f"udp {format_address(addr)}")
            self.opened(conn)
        else:
            self._udp_peers.move_to_end(addr)
        conn._received(data)

    def _reap_udp_peers(self) -> None:
        now = self.lab.clock.time()
        limit = self._udp_idle
        for conn in list(self.connections.values()):
            if isinstance(conn, DatagramPeer) and now - conn.last_active >= limit:
                conn.close()
        if self.reply_budget is not None:
            self.reply_budget.sweep()
        self._udp_reaper = self.lab.clock.call_later(self._reap_interval, self._reap_udp_peers)


class _Recorder:
    """The :class:`~lab.protocols._library.Recorder` of a library-owned
    server: one recorded connection per connection the library opens."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def opened(self, peer: tuple[Any, ...], local: tuple[Any, ...], *,
               close: Callable[[], None] | None = None) -> TrafficRecord:
        server = self.server
        conn = RecordedConnection(server, f"{server.name}#{next(server._ids)}", Role.SERVER,
                                  server.spec.conversation(None, server.transport))
        conn.attach(peer, local, close)
        if server.admit(conn):
            conn.announce()
        return conn


class _ClientRecorder:
    """The :class:`~lab.protocols._library.Recorder` of a library-owned
    client: its one connection."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def opened(self, peer: tuple[Any, ...], local: tuple[Any, ...], *,
               close: Callable[[], None] | None = None) -> TrafficRecord:
        conn = self.client.conn
        assert isinstance(conn, RecordedConnection)
        conn.attach(peer, local, close)
        conn.announce()
        return conn


def udp_socket(host: str, port: int, *, bind: bool) -> socket.socket:
    """A non-blocking UDP socket bound (server) or connected (client) to
    ``host:port``.  We keep the socket itself because asyncio's transports
    silently drop empty datagrams, which RFC 864-868 clients must send."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if bind:
            sock.bind(infos[0][4])
        else:
            sock.connect(infos[0][4])
    except OSError:
        sock.close()
        raise
    return sock


class _BudgetedTransport(asyncio.DatagramTransport):
    """A UDP server's transport as its peers use it: every reply is taken
    from the reply budget of the address it goes to, whenever it is sent."""

    def __init__(self, transport: asyncio.DatagramTransport, budget: ReplyBudget) -> None:
        super().__init__()
        self._transport = transport
        self._budget = budget

    def sendto(self, data: Any, addr: Any = None) -> None:
        if addr is not None:
            self._budget.spend(addr[0], len(data))
        self._transport.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()


class _UdpServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: Server) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.server._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.server.lab.log.emit(EventKind.ERROR, endpoint=self.server.name,
                                 protocol=self.server.spec.name, text=f"datagram error: {exc}")


class _Channel:
    """Adapts a client connection to the :class:`Channel` verbs drive."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def transport(self) -> Transport:
        return self._conn.transport_kind

    @property
    def clock(self) -> Clock:
        return self._conn.endpoint.lab.clock

    @property
    def peer(self) -> tuple[Any, ...]:
        """The server's address, once connected."""
        return self._conn.peer

    @property
    def local(self) -> tuple[Any, ...]:
        """This side's address, once connected."""
        return self._conn.local

    def child(self, suffix: str, conversation: Any, peer: tuple[Any, ...], local: tuple[Any, ...], *,
              close: Callable[[], None] | None = None) -> RecordedConnection:
        """A connection of this client's own (an FTP data connection), in
        the log as a child of this one: see :meth:`Connection.child`."""
        return self._conn.child(suffix, conversation, peer, local, close=close)

    async def send(self, msg: Message) -> None:
        self._conn.send(msg)

    async def send_raw(self, data: bytes) -> None:
        self._conn.send_raw(data)

    async def receive(self, timeout: float | None = 10.0) -> Message:
        return await self._conn.receive(timeout)

    async def expect(self, pattern: Any, timeout: float | None = 10.0) -> Message:
        return await self._conn.expect(pattern, timeout)

    async def wait_closed(self, timeout: float | None = 10.0) -> None:
        await self._conn.wait_closed(timeout)

    async def close(self) -> None:
        self._conn.close()


class Client(Endpoint):
    """A client connection with the protocol's verbs.

    ``c.send(...)``, ``c.expect(...)`` and each verb (``c.query(...)`` for
    finger) block with a timeout; ``c.asend(...)``, ``c.aexpect(...)``,
    ``c.aquery(...)`` are awaitable from any loop.
    """

    kind = EndpointKind.CLIENT

    def __init__(self, lab: Lab, name: str, spec: ProtocolSpec, transport: Transport,
                 capture: Capture, target: tuple[str, int]) -> None:
        super().__init__(lab, name, spec, transport, capture)
        self.target = target
        self.conn: Connection
        if spec.dial is not None:
            # the library does the I/O: the connection only records what it reports
            self.conn = RecordedConnection(self, name, Role.CLIENT, spec.conversation(None, transport))
        elif transport is Transport.TCP:
            self.conn = StreamConnection(self, name, Role.CLIENT, spec.conversation(Role.CLIENT, transport))
        else:
            self.conn = DatagramClientConnection(self, name, spec.conversation(Role.CLIENT, transport))
        self.given_options: dict[str, Any] = {}  # as the user gave them, for recordings
        self.verbs: ClientVerbs[Any] = spec.client(_Channel(self.conn))
        if self.verbs.watches():
            self.conn.observer = self.verbs.message_received

    @property
    def address(self) -> str:
        return f"{self.transport.value}://{format_address(self.target)}"

    @property
    def abilities(self) -> Can:
        return self.kind.can & ~Can.SEND if self.spec.dial is not None else self.kind.can

    def live_connections(self) -> list[Connection]:
        return [self.conn]

    async def _open(self, timeout: float) -> None:
        loop = self.lab.loop
        host, port = self.target
        try:
            if self.spec.dial is not None:
                dialing = Dialing(host, port, self.verbs.options, _ClientRecorder(self), self.lab.clock, timeout)
                self.verbs.link = await asyncio.wait_for(self.spec.dial(dialing), timeout)
            elif self.transport is Transport.TCP:
                conn = self.conn
                assert isinstance(conn, StreamConnection)
                await asyncio.wait_for(loop.create_connection(lambda: conn, host, port), timeout)
            else:
                sock = udp_socket(host, port, bind=False)
                dconn = self.conn
                assert isinstance(dconn, DatagramClientConnection)
                dconn.sock = sock
                await loop.create_datagram_endpoint(lambda: dconn, sock=sock)
        except TimeoutError:
            raise ConfigError(f"connecting to {self.address} timed out after {timeout} s") from None
        except OSError as exc:
            servers = [e.name for e in self.lab.endpoints.values() if e.can(Can.LISTEN)]
            where = format_address((host, port))
            hint = f"is a server listening on {where}?"
            if servers:  # only a lab with servers of its own has some to suggest
                hint += f" The lab's: {', '.join(servers[:5])} (`ls` shows their addresses)"
            raise ConfigError(f"cannot connect to {self.address}: {exc.strerror or exc}", hint=hint) from None

    async def _shut(self) -> None:
        await self._close()

    async def _close(self) -> None:
        self.conn.close()
        link = self.verbs.link
        try:
            if link is not None:
                await asyncio.wait_for(link.wait_closed(), 2.0)
            await self.conn.wait_closed(2.0)
        except (LabError, TimeoutError):
            self.conn.abort("close timed out")

    # -- plain I/O -------------------------------------------------------

    async def _send(self, data: Message | bytes | str) -> None:
        self.conn.send(data)

    def send(self, data: Message | bytes | str) -> None:
        """Send a message, or bytes/str exactly as given."""
        self._call(self._send(data))

    async def asend(self, data: Message | bytes | str) -> None:
        await self._acall(self._send(data))

    def expect(self, pattern: Pattern, timeout: float = 10.0) -> Message:
        """Wait for a message matching ``pattern``; see :meth:`Message.matches`."""
        return self._call(self.conn.expect(pattern, timeout), timeout + 5.0)

    async def aexpect(self, pattern: Pattern, timeout: float = 10.0) -> Message:
        return await self._acall(self.conn.expect(pattern, timeout))

    def receive(self, timeout: float = 10.0) -> Message:
        """The next message from the server."""
        return self._call(self.conn.receive(timeout), timeout + 5.0)

    async def areceive(self, timeout: float = 10.0) -> Message:
        return await self._acall(self.conn.receive(timeout))

    def close(self) -> None:
        """Close the connection (the client stays listed until stopped)."""
        self.lab.stop(self)

    async def aclose(self) -> None:
        await self.lab.astop(self)

    # -- verbs -----------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # __dict__, not attributes: this runs for every missing name, even mid-__init__
        holder = self.__dict__.get("verbs")
        verbs = type(holder).verbs() if holder is not None else {}
        if name in verbs:
            return self._blocking_verb(name)
        if name.startswith("a") and name[1:] in verbs:
            return self._async_verb(name[1:])
        if holder is not None and name in type(holder).shell_names:
            return getattr(holder, name)(self)  # made for this client: it may call the verbs above
        raise AttributeError(
            f"{type(self).__name__} {self.__dict__.get('name', '?')!r} has no attribute {name!r}"
        )

    def __dir__(self) -> list[str]:
        verbs = type(self.verbs).verbs()
        return sorted(set(super().__dir__()) | set(verbs) | {"a" + v for v in verbs}
                      | set(type(self.verbs).shell_names))

    def _blocking_verb(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.verbs, name)
        param = inspect.signature(fn).parameters.get("timeout")
        default = param.default if param is not None and isinstance(param.default, (int, float)) else 30.0

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            # the verb enforces its own timeout; the bridge waits a little longer
            timeout = kwargs.get("timeout", default)
            return self._call(fn(*args, **kwargs), None if timeout is None else timeout + 5.0)

        return call

    def _async_verb(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.verbs, name)

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._acall(fn(*args, **kwargs))

        return call

    def status(self) -> dict[str, Any]:
        c = self.conn
        return {
            "name": self.name,
            "kind": self.kind.label,
            "protocol": self.spec.name,
            "address": self.address,
            "state": c.state.value,
            "connections": 1 if c.state.value == "open" else 0,
            "accepted": 0,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "capture": self.capture.value,
        }

    def _describe(self) -> str:
        return f"-> {self.address} {self.conn.state.value}"
