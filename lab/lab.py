"""The Lab: named endpoints on one reactor, and the event log they share.

Every front-end talks to a :class:`Lab`.  Its operations are coroutines
that run on the reactor loop; each has a blocking twin for threads
(``serve``) and an awaitable twin for any event loop (``aserve``)::

    with Lab.start() as lab:                 # reactor in a daemon thread
        srv = lab.serve("echo", port=0)      # 0 = any free port
        c = lab.connect("echo", srv)
        c.send(b"hi\\r\\n")
        c.expect(b"hi")

Tests: tests/test_lab.py
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar, cast

from lab import protocols
from lab.budget import DEFAULT_LIMITS, BudgetLimits, parse_budget
from lab.connection import READ_SIZE
from lab.endpoints import (
    DEFAULT_LINE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_RATE,
    Client,
    Endpoint,
    EndpointKind,
    ListeningEndpoint,
    Server,
    ServerState,
    default_per_source,
    is_loopback,
)
from lab.errors import ConfigError
from lab.eventlog import Capture, EventKind, EventLog
from lab.intercept import DEFAULT_TIMEOUT as DEFAULT_HOLD
from lab.intercept import Breakpoint, Held, Intercepts
from lab.jail import Jail
from lab.protocols._base import LoopClock, Message, Transport
from lab.protocols._spec import ProtocolSpec
from lab.proxy import Proxy
from lab.reactor import Reactor
from lab.services import CONSOLE, LISTENERS, Console, Listeners, Services

__all__ = ["Lab"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_ADDR_RE = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s]+)):(?P<port>\d{1,5})$")

Target = "Server | str | tuple[str, int]"


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    m = _ADDR_RE.match(text.strip())
    if not m:
        raise ConfigError(f"not an address: {text!r}", hint="write host:port, e.g. 127.0.0.1:7007")
    if int(m["port"]) > 65535:
        raise ConfigError(f"port {m['port']} is out of range", hint="use 1-65535")
    return (m["v6"] or m["host"], int(m["port"]))


def _capture(value: Capture | str | None, default: Capture) -> Capture:
    if value is None:
        return default
    if isinstance(value, Capture):
        return value
    try:
        return Capture(value)
    except ValueError:
        raise ConfigError(f"unknown capture level {value!r}", hint="use full, summary or off") from None


def _budget(value: str | BudgetLimits | None, kind: Transport) -> BudgetLimits | None:
    """A UDP server's reply budget: ``RATE[/BURST[/RATIO]]`` or ``off``."""
    if value is None or isinstance(value, BudgetLimits):
        return value if value is not None else DEFAULT_LIMITS
    if kind is not Transport.UDP:
        raise ConfigError("a reply budget is for UDP servers", hint="TCP answers only who connected")
    try:
        return parse_budget(value)
    except ValueError as exc:
        raise ConfigError(f"reply budget {exc}", hint="e.g. 4K/16K/2: bytes a second, burst, times what "
                          "a source sends; or off") from None


def _transport(spec: ProtocolSpec, value: Transport | str | None) -> Transport:
    if value is None:
        return spec.transports[0]
    try:
        kind = value if isinstance(value, Transport) else Transport(value.lower())
    except ValueError:
        raise ConfigError(f"unknown transport {value!r}", hint="use tcp or udp") from None
    if kind not in spec.transports:
        raise ConfigError(f"{spec.name} does not run over {kind.value}",
                          hint=f"it runs over {', '.join(spec.iter_transports())}")
    return kind


class Lab:
    """Named servers and clients on one reactor, with one event log.

    Create one with :meth:`start` (reactor in a background thread) or pass
    a :class:`Reactor` you run yourself.  Closing the lab stops every
    endpoint; closing a lab that :meth:`start` made also stops its reactor.
    """

    def __init__(self, reactor: Reactor | None = None, *, log_capacity: int = 100_000,
                 capture: Capture | str = Capture.FULL, loop: str = "asyncio", log: EventLog | None = None,
                 keep_secrets: bool = False) -> None:
        self._own_reactor = reactor is None
        self.reactor = reactor or Reactor(loop)
        self.log = log if log is not None else EventLog(log_capacity)  # given: a saved log to look at
        self.log.bind(self._soon)
        self.keep_secrets = keep_secrets
        self.capture = _capture(capture, Capture.FULL)
        self.endpoints: dict[str, Endpoint] = {}
        # every protocol timer asks this clock
        self.clock = LoopClock(self.reactor.loop)
        # state shared by this lab's servers (mail store, chat rooms)
        self.services = Services()
        # the command language for consoles that servers offer (telnet)
        self.services.set(CONSOLE, self._console())
        # what listens where, for servers relaying into the lab (SOCKS)
        self.services.set(LISTENERS, self._listeners())
        # one read buffer for every TCP connection of this lab's loop
        self.read_buffer = memoryview(bytearray(READ_SIZE))
        self._counters: dict[str, itertools.count[int]] = {}
        self.clients_made = 0  # since the start: short-lived clients (the demo's) are seldom there to count
        self._closed = False
        # breakpoints and what they hold
        self.intercepts = Intercepts(self)
        # safe mode: the folders files may live in, and no console or wide bind
        self.jail: Jail | None = None
        self.reactor.on_shutdown(self._aclose)

    @property
    def keep_secrets(self) -> bool:
        """Write secrets (passwords, credentials) in clear to files: the
        log's spill, `log save`, `log export`, recordings and `save`.  Off
        by default: files get them masked or left out."""
        return self.log.keep_secrets

    @keep_secrets.setter
    def keep_secrets(self, value: bool) -> None:
        self.log.keep_secrets = bool(value)

    def _soon(self, fn: Callable[[], None]) -> None:
        loop = self.reactor.loop
        if loop.is_closed():
            fn()
        else:
            loop.call_soon(fn)

    def _console(self) -> Console:
        """The command language for a console a server offers (see
        :class:`lab.services.Console`)."""
        lab = self

        class _LabConsole:
            def __init__(self) -> None:
                self._interpreter: Any = None

            @property
            def interpreter(self) -> Any:
                if self._interpreter is None:
                    from lab.commands import Interpreter  # commands import the Lab, not the reverse

                    self._interpreter = Interpreter(lab)
                return self._interpreter

            async def run(self, text: str) -> str:
                return "\n".join(r.text for r in await self.interpreter.aexecute(text) if r.text)

            def complete(self, line: str) -> list[str]:
                return list(self.interpreter.complete(line))

        return _LabConsole()

    def _listeners(self) -> Listeners:
        """The lab's listening endpoints by address (see
        :class:`lab.services.Listeners`)."""
        lab = self

        class _LabListeners:
            def protocol_at(self, host: str, port: int) -> str | None:
                for endpoint in list(lab.endpoints.values()):
                    if not isinstance(endpoint, ListeningEndpoint) or endpoint.transport is not Transport.TCP:
                        continue
                    if endpoint.port != port or endpoint.state is not ServerState.LISTENING:
                        continue
                    where = "127.0.0.1" if endpoint.host == "localhost" else endpoint.host
                    if where in (host, "0.0.0.0", "::", ""):
                        return endpoint.spec.name
                return None

        return _LabListeners()

    @classmethod
    def start(cls, **kwargs: Any) -> Lab:
        """A lab whose reactor runs in a daemon thread."""
        lab = cls(**kwargs)
        lab.reactor.start()
        return lab

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.reactor.loop

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return self.reactor.call(coro, timeout)

    async def _acall(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self.reactor.run_async(coro)

    # -- names -----------------------------------------------------------

    def _name(self, given: str | None, stem: str) -> str:
        if given is not None:
            if not NAME_RE.fullmatch(given):
                raise ConfigError(f"bad endpoint name {given!r}",
                                  hint="use letters, digits, _ . - (up to 32), starting with a letter")
            if given in self.endpoints:
                raise ConfigError(f"name {given!r} is taken", hint="`ls` shows the names in use")
            return given
        counter = self._counters.setdefault(stem, itertools.count(1))
        while (name := f"{stem}{next(counter)}") in self.endpoints:
            pass
        return name

    def __getitem__(self, name: str) -> Endpoint:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.endpoints

    def _ipython_key_completions_(self) -> list[str]:
        """``lab["<Tab>`` completes endpoint names in IPython."""
        return list(self.endpoints)

    def get(self, name: str) -> Endpoint:
        """The endpoint called ``name``; :class:`ConfigError` with a hint."""
        try:
            return self.endpoints[name]
        except KeyError:
            close = protocols.suggest(name, list(self.endpoints))
            hint = f"did you mean {close!r}?" if close else (
                "`ls` lists endpoints" if self.endpoints else "the lab is empty: `serve` something first")
            raise ConfigError(f"no endpoint named {name!r}", hint=hint) from None

    @property
    def servers(self) -> list[Server]:
        return [cast(Server, e) for e in self.of_kind(EndpointKind.SERVER)]

    @property
    def clients(self) -> list[Client]:
        return [cast(Client, e) for e in self.of_kind(EndpointKind.CLIENT)]

    def of_kind(self, kind: EndpointKind) -> list[Endpoint]:
        """The endpoints of one kind, in creation order."""
        return [e for e in self.endpoints.values() if e.kind is kind]

    # -- serve -----------------------------------------------------------

    async def _serve(self, protocol: str | ProtocolSpec, *, port: int | None = 0, host: str = "127.0.0.1",
                     name: str | None = None, transport: Transport | str | None = None,
                     capture: Capture | str | None = None,
                     max_connections: int = DEFAULT_MAX_CONNECTIONS,
                     idle_timeout: float | None = None, max_per_source: int | None = None,
                     line_timeout: float | None = None, min_rate: float | None = None,
                     reply_budget: str | BudgetLimits | None = None, **options: Any) -> Server:
        self._check_open()
        # a spec object serves a behaviour built on the fly (a mock from a recording)
        spec = protocol if isinstance(protocol, ProtocolSpec) else protocols.get(protocol)
        kind = _transport(spec, transport)
        port = 0 if port is None else port
        if not 0 <= port <= 65535:
            raise ConfigError(f"port {port} is out of range", hint="use 0-65535 (0 = any free port)")
        if max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        for cap, value in (("max_per_source", max_per_source), ("line_timeout", line_timeout),
                           ("min_rate", min_rate)):
            if value is not None and value < 0:
                raise ConfigError(f"{cap} must not be negative", hint="0 turns it off")
        budget = _budget(reply_budget, kind)
        if self.jail is not None:
            options = self.jail.check_serve(spec, host, options)
        resolved = spec.resolve_options(options)
        server = Server(
            self, self._name(name, spec.name), spec, host=host, port=port, transport=kind,
            options=resolved, capture=_capture(capture, self.capture),
            max_connections=max_connections,
            idle_timeout=spec.idle_timeout if idle_timeout is None else (idle_timeout or None),
            max_per_source=default_per_source(max_connections) if max_per_source is None else max_per_source,
            line_timeout=DEFAULT_LINE_TIMEOUT if line_timeout is None else (line_timeout or None),
            min_rate=DEFAULT_MIN_RATE if min_rate is None else min_rate,
        )
        if reply_budget is not None:
            server.budget_limits = budget
        server.behaviour.check_bind(host)  # a behaviour may refuse an address (a console beyond loopback)
        server.given_options = dict(options)
        self.endpoints[server.name] = server
        try:
            await server._start()
        except BaseException:
            del self.endpoints[server.name]
            raise
        if not is_loopback(host):
            self.log.emit(EventKind.INFO, endpoint=server.name, protocol=spec.name,
                          text=f"warning: {server.address} is reachable from other machines")
        return server

    def serve(self, protocol: str | ProtocolSpec, **kwargs: Any) -> Server:
        """Start a server; see :meth:`aserve`."""
        return self._call(self._serve(protocol, **kwargs))

    async def aserve(self, protocol: str | ProtocolSpec, **kwargs: Any) -> Server:
        """Start a ``protocol`` server on ``host:port`` (default 127.0.0.1,
        any free port) and return it once it listens.

        Keywords: ``name``, ``transport`` (tcp/udp), ``capture``
        (full/summary/off), ``max_connections``, ``idle_timeout`` (seconds,
        0 for none), the slow-client caps and the protocol's own options.

        Slow clients: ``max_per_source`` connections at most from one
        source address (default a quarter of ``max_connections``, at least 4);
        ``line_timeout`` seconds for a message to arrive (default 30)
        unless it averages ``min_rate`` bytes a second (default 500).
        0 turns each off; ``min_rate=0`` makes the line timeout absolute.
        """
        return await self._acall(self._serve(protocol, **kwargs))

    # -- connect ---------------------------------------------------------

    def _resolve_target(self, spec: ProtocolSpec, target: Any,
                        transport: Transport | str | None) -> tuple[tuple[str, int], Transport]:
        if isinstance(target, str) and target in self.endpoints:
            target = self.endpoints[target]
        if isinstance(target, Endpoint):
            listening = target.listen_address
            if listening is None:
                raise ConfigError(f"{target.name!r} is a {target.kind}", hint="connect to a server or host:port")
            if target.spec.name != spec.name:
                logger.info("connecting %s client to %s server", spec.name, target.spec.name)
            kind = _transport(spec, transport or target.transport)
            host, port = listening
            return (host if host not in ("0.0.0.0", "::", "") else "127.0.0.1", port), kind
        if isinstance(target, tuple):
            return (str(target[0]), int(target[1])), _transport(spec, transport)
        if isinstance(target, int):
            return ("127.0.0.1", target), _transport(spec, transport)
        if isinstance(target, str):
            if ":" not in target and not target.isdigit():
                close = protocols.suggest(target, [s.name for s in self.servers])
                raise ConfigError(f"no server named {target!r}",
                                  hint=f"did you mean {close!r}?" if close else "give a server name or host:port")
            addr = ("127.0.0.1", int(target)) if target.isdigit() else parse_address(target)
            return addr, _transport(spec, transport)
        raise ConfigError(f"cannot connect to {target!r}", hint="give a server, its name or host:port")

    async def _connect(self, protocol: str | ProtocolSpec, target: Any, *, name: str | None = None,
                       transport: Transport | str | None = None,
                       capture: Capture | str | None = None, timeout: float = 10.0,
                       options: Mapping[str, Any] | None = None) -> Client:
        self._check_open()
        spec = protocol if isinstance(protocol, ProtocolSpec) else protocols.get(protocol)
        resolved = spec.resolve_client_options(options or {})
        addr, kind = self._resolve_target(spec, target, transport)
        if self.jail is not None:
            self.jail.check_address(addr[0])
        client = Client(self, self._name(name, "c"), spec, kind, _capture(capture, self.capture), addr)
        client.verbs.set_options(resolved)
        client.given_options = dict(options or {})
        self.endpoints[client.name] = client
        self.clients_made += 1
        try:
            await client._open(timeout)
        except BaseException:
            del self.endpoints[client.name]
            raise
        return client

    def connect(self, protocol: str | ProtocolSpec, target: Any, **kwargs: Any) -> Client:
        """Connect a client; see :meth:`aconnect`."""
        return self._call(self._connect(protocol, target, **kwargs))

    async def aconnect(self, protocol: str | ProtocolSpec, target: Any, **kwargs: Any) -> Client:
        """Open a ``protocol`` client to ``target``: a :class:`Server`, a
        server's name, ``"host:port"`` or a ``(host, port)`` tuple.

        Keywords: ``name`` (default ``c1``, ``c2``...), ``transport``,
        ``capture``, ``timeout``, and ``options``: the protocol's client
        options by name (e.g. telnet's ``{"terminal": "vt100"}``), applied
        before the connection opens, so a server that speaks first meets a
        client already set up.
        """
        return await self._acall(self._connect(protocol, target, **kwargs))

    # -- proxy -----------------------------------------------------------

    async def _proxy(self, protocol: str | ProtocolSpec, to: Any, *, port: int | None = 0,
                     host: str = "127.0.0.1", name: str | None = None, transport: Transport | str | None = None,
                     capture: Capture | str | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                     idle_timeout: float | None = None, connect_timeout: float = 10.0) -> Proxy:
        self._check_open()
        spec = protocol if isinstance(protocol, ProtocolSpec) else protocols.get(protocol)
        target, kind = self._resolve_target(spec, to, transport)
        if self.jail is not None:
            self.jail.check_address(host)
            self.jail.check_address(target[0])
        port = 0 if port is None else port
        if not 0 <= port <= 65535:
            raise ConfigError(f"port {port} is out of range", hint="use 0-65535 (0 = any free port)")
        if max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        proxy = Proxy(self, self._name(name, f"{spec.name}-proxy"), spec, host=host, port=port, transport=kind,
                      target=target, capture=_capture(capture, self.capture), max_connections=max_connections,
                      idle_timeout=spec.idle_timeout if idle_timeout is None else (idle_timeout or None),
                      connect_timeout=connect_timeout)
        self.endpoints[proxy.name] = proxy
        try:
            await proxy._start()
        except BaseException:
            del self.endpoints[proxy.name]
            raise
        if not is_loopback(host):
            self.log.emit(EventKind.INFO, endpoint=proxy.name, protocol=spec.name,
                          text=f"warning: {proxy.address} is reachable from other machines")
        return proxy

    def proxy(self, protocol: str | ProtocolSpec, to: Any, **kwargs: Any) -> Proxy:
        """Start a proxy; see :meth:`aproxy`."""
        return self._call(self._proxy(protocol, to, **kwargs))

    async def aproxy(self, protocol: str | ProtocolSpec, to: Any, **kwargs: Any) -> Proxy:
        """Relay ``protocol`` connections to ``to`` (a server, its name or
        ``"host:port"``), decoding both directions: clients connect to
        ``host:port`` (default 127.0.0.1, any free port).

        Keywords: ``name``, ``transport``, ``capture``, ``max_connections``,
        ``idle_timeout``, ``connect_timeout``.
        """
        return await self._acall(self._proxy(protocol, to, **kwargs))

    # -- intercept ---------------------------------------------------------

    def intercept(self, endpoint: str | Endpoint, filter_text: str = "", *, timeout: float = DEFAULT_HOLD,
                  then: str = "release") -> Breakpoint:
        """Hold what matches ``filter_text`` on ``endpoint`` (a proxy: both
        directions; a server or a client: what it receives) until released,
        dropped or edited, or ``timeout`` seconds (then ``then``)."""
        name = endpoint.name if isinstance(endpoint, Endpoint) else endpoint
        return self._call(self._on_loop(self.intercepts.add, name, filter_text, timeout=timeout, then=then))

    def unintercept(self, endpoint: str | Endpoint) -> int:
        """Remove the endpoint's breakpoints; returns how many there were."""
        name = endpoint.name if isinstance(endpoint, Endpoint) else endpoint
        return self._call(self._on_loop(self.intercepts.clear, name))

    def held(self) -> list[Held]:
        """What the intercepts hold now, oldest first."""
        return self._call(self._on_loop(self.intercepts.held))

    def wait_held(self, count: int = 1, timeout: float = 10.0, endpoint: str | None = None) -> list[Held]:
        """Wait until ``count`` messages are held (on ``endpoint``, if given)."""
        return self._call(self.intercepts.wait(count, timeout, endpoint), timeout + 5)

    def release(self, held_id: str) -> Held:
        """Let a held message go on as it is."""
        return self._call(self._on_loop(self.intercepts.release, held_id))

    def drop(self, held_id: str) -> Held:
        """Let a held message go nowhere."""
        return self._call(self._on_loop(self.intercepts.drop, held_id))

    def edit(self, held_id: str, raw: bytes | str | None = None, **fields: Any) -> Message:
        """Change a held message (its raw bytes, or decoded fields
        re-encoded by the protocol) and let it go on."""
        data = raw.encode() if isinstance(raw, str) else raw
        return self._call(self._on_loop(self.intercepts.edit, held_id, data, **fields))

    async def _on_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    # -- stop ------------------------------------------------------------

    async def _stop(self, target: Endpoint | str) -> list[str]:
        if target == "all":
            names = list(self.endpoints)
            for name in reversed(names):
                await self._stop(name)
            return names
        endpoint = target if isinstance(target, Endpoint) else self.get(target)
        await endpoint._shut()
        self.endpoints.pop(endpoint.name, None)
        return [endpoint.name]

    def stop(self, target: Endpoint | str) -> list[str]:
        """Stop an endpoint (or ``"all"``); returns the names stopped."""
        return self._call(self._stop(target))

    async def astop(self, target: Endpoint | str) -> list[str]:
        return await self._acall(self._stop(target))

    # -- status ----------------------------------------------------------

    def ls(self) -> list[dict[str, Any]]:
        """One status row per endpoint, in creation order."""
        return [e.status() for e in list(self.endpoints.values())]

    # -- closing ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this lab is closed", hint="start a new one")

    async def _aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in reversed(list(self.endpoints)):
            try:
                await self._stop(name)
            except Exception:
                logger.exception("stopping %s failed", name)
        self.log.flush()

    def close(self) -> None:
        """Stop every endpoint; stop the reactor too if this lab made it."""
        if self._own_reactor:
            self.reactor.stop()
        elif not self._closed and self.reactor.running:
            self._call(self._aclose())
        self.log.stop_spill()

    async def aclose(self) -> None:
        await self._acall(self._aclose())

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Lab {len(self.servers)} servers, {len(self.clients)} clients,"
                f" {self.log.total} events>")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from lab.reprs import pretty

        pretty(self, p, cycle)

    def _repr_html_(self) -> str:
        from lab.reprs import html_of

        return html_of(self)
