"""Servers and clients: a behaviour makes one session per connection;
client verbs drive a channel.

The split is Twisted's Factory and Protocol: a :class:`ServerBehaviour`
is made once per listening server, from the protocol's options, and
makes a :class:`Session` for every connection (every UDP peer), which
holds that connection's state and handles its messages.  Client verbs
(:class:`ClientVerbs`) are the protocol's verbs as coroutines over a
:class:`Channel`.

Everything here runs on the reactor thread.

Tests: tests/protocols/test_session.py
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from lab.errors import ProtocolError
from lab.protocols._base import Clock, LoopClock, Message, Pattern, Transport
from lab.protocols._conversation import Conversation

if TYPE_CHECKING:
    from lab.services import Services

__all__ = [
    "AnswerServer",
    "AnswerSession",
    "Channel",
    "ClientVerbs",
    "Peer",
    "ServerBehaviour",
    "Session",
]


class Peer(Protocol):
    """What a session sees of its connection."""

    id: str
    peer: tuple[Any, ...]  # the remote address

    @property
    def transport(self) -> Transport: ...
    @property
    def conversation(self) -> Conversation: ...
    @property
    def write_paused(self) -> bool:
        """The peer is not reading: stop producing until :meth:`Session.writable`."""
        ...
    def send(self, msg: Message) -> None: ...
    def send_raw(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def note(self, text: str) -> None:
        """An info event about this connection in the lab's log."""
        ...


B = TypeVar("B", bound="ServerBehaviour[Any]")
OptionsT = TypeVar("OptionsT")


class Session(Generic[B]):
    """One connection's side of a server: its state and its handlers.

    ``server`` is the behaviour that made it (shared state and options
    live there), ``conn`` the connection.  An exception escaping a
    handler is logged as an error event and the server keeps serving.
    """

    def __init__(self, server: B, conn: Peer) -> None:
        self.server = server
        self.conn = conn

    def connection_made(self) -> None:
        """The client connected (TCP) or sent its first datagram (UDP)."""

    def message_received(self, msg: Message) -> None:
        """A complete message arrived."""

    def eof_received(self) -> None:
        """The client half-closed; by default, close our side too."""
        self.conn.close()

    def writable(self) -> None:
        """The transport drained after :attr:`Peer.write_paused` was true."""

    def connection_lost(self) -> None:
        """The connection is gone."""

    def protocol_error(self, exc: ProtocolError) -> None:
        """The client broke the protocol; by default, hang up."""
        self.conn.close()


class ServerBehaviour(Generic[OptionsT]):
    """How a server behaves: made once per listening server, it makes one
    :class:`Session` per connection (``session_type``).

    The lab installs ``services`` (its shared stores) and ``clock`` right
    after construction (private ones until then, so a behaviour also
    works alone in tests) and calls the lifecycle hooks in order:
    :meth:`check_bind` before listening, :meth:`started` once listening,
    :meth:`session` per connection, :meth:`stopped` at the end.
    """

    session_type: ClassVar[type[Session[Any]]] = Session
    # True: what a TCP connection sends during one pass of the event loop
    # leaves in one write at the end of the pass (a fan-out to many clients
    # then costs one system call per client, not one per line)
    coalesce_writes: ClassVar[bool] = False
    # attributes a user reaches on the Server itself (``srv.route``, ``srv.zone``):
    # the behaviour's own API, offered in the shell without ``srv.behaviour.``
    shell_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: OptionsT) -> None:
        from lab.services import Services  # protocols import services, not the other way round

        self.options = options
        self.services: Services = Services()
        self.clock: Clock = LoopClock()

    def check_bind(self, host: str) -> None:
        """Before listening on ``host``: raise :class:`ConfigError` to refuse
        it (a console beyond loopback)."""

    def started(self) -> None:
        """Listening, with the lab's services and clock: attach stores, start
        timers.  A :class:`LabError` here stops the server from starting."""

    def session(self, conn: Peer) -> Session[Any]:
        """A new session for ``conn``."""
        return self.session_type(self, conn)

    def stopped(self) -> None:
        """Every connection is closed: cancel timers, let go of stores."""


class AnswerSession(Session["AnswerServer[Any]"]):
    """Over TCP, send one answer on connect and close; over UDP, answer
    every datagram (RFC 865/867/868)."""

    def connection_made(self) -> None:
        if self.conn.transport is Transport.TCP:
            self.conn.send(self.server.answer())
            self.conn.close()

    def message_received(self, msg: Message) -> None:
        if self.conn.transport is Transport.UDP:
            self.conn.send(self.server.answer())


class AnswerServer(ServerBehaviour[OptionsT]):
    """The shape of the speak-once services; subclasses give :meth:`answer`."""

    session_type = AnswerSession

    def answer(self) -> Message:
        """The message to send now."""
        raise NotImplementedError


class Channel(Protocol):
    """What client verbs drive: one client connection, usable from coroutines
    on the reactor loop."""

    @property
    def transport(self) -> Transport: ...
    @property
    def clock(self) -> Clock:
        """The lab's clock, for verbs that time things (rate limits)."""
        ...

    async def send(self, msg: Message) -> None: ...
    async def send_raw(self, data: bytes) -> None: ...
    async def receive(self, timeout: float | None = None) -> Message: ...
    async def expect(self, pattern: Pattern, timeout: float | None = None) -> Message: ...
    async def wait_closed(self, timeout: float | None = None) -> None: ...
    async def close(self) -> None: ...


class ClientVerbs(Generic[OptionsT]):
    """Base for a protocol's client verbs: public coroutine methods.

    The Lab exposes each verb ``v`` on its client endpoint twice: ``v(...)``
    blocks (for threads and scripts) and ``av(...)`` is awaitable.
    ``options`` are the protocol's client options, set before the
    connection opens.
    """

    # the library's client connection, for a protocol whose library owns
    # the socket (``ProtocolSpec.dial``); None otherwise
    link: Any = None
    # objects a user reaches on the Client itself beside the verbs (XML-RPC's
    # ``c.proxy``): each names a method called with the Client, whose result
    # is what ``c.NAME`` gives
    shell_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.options: OptionsT | None = None

    def set_options(self, options: OptionsT) -> None:
        """The client options, given before the connection opens; override
        to apply them."""
        self.options = options

    def message_received(self, msg: Message) -> None:
        """Called on the reactor thread with each message as it arrives,
        before ``receive``/``expect`` see it: the place to answer
        keep-alives (IRC's PING) whether or not a verb is waiting."""

    @classmethod
    def verbs(cls) -> dict[str, Callable[..., Any]]:
        """Verb name -> coroutine function, for completion and ``call``."""
        return {
            name: fn
            for name, fn in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not name.startswith("_")
        }

    @classmethod
    def watches(cls) -> bool:
        """Does this class override :meth:`message_received`?"""
        return cls.message_received is not ClientVerbs.message_received
