"""Protocols whose library owns the socket (asyncssh for SSH): the narrow
interface through which such a protocol reports into the lab.

Most protocols hand the lab a conversation and a behaviour, and the lab
reads and writes the sockets.  A protocol built on a library that does its
own I/O instead starts that library itself, from ``ProtocolSpec.listen``
(a server) or ``ProtocolSpec.dial`` (a client), and tells the lab what
happens through a :class:`Recorder`:

    async def listen(where: Listening) -> Listener:
        async def on_connection(reader, writer):
            record = where.recorder.opened(writer.get_extra_info("peername"),
                                           writer.get_extra_info("sockname"), close=writer.close)
            ...
            record.received(line)          # bytes, decoded by the protocol's conversation
            record.sent(Reply(raw=...))    # or a message the library already parsed
            record.closed("client left")
        server = await asyncio.start_server(on_connection, where.host, where.port)
        return AsyncioListener(server)

The lab lists the connections, counts their bytes and messages, records
them at the endpoint's capture level, and closes them (``close``) when
the endpoint stops.  Nothing here knows the Lab.

Tests: tests/test_library.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lab.protocols._base import Clock, Message

if TYPE_CHECKING:
    from lab.services import Services

__all__ = ["AsyncioListener", "Dialing", "Link", "Listener", "Listening", "Recorder", "TrafficRecord"]


class TrafficRecord(Protocol):
    """One connection a library owns, as the lab's log sees it.  Every
    method may be called after the connection closed (it is ignored)."""

    id: str

    def received(self, data: bytes | Message) -> None:
        """What the other side sent: raw bytes (the protocol's conversation
        decodes them) or a message the library already parsed."""
        ...

    def sent(self, data: bytes | Message) -> None:
        """What this side sent, likewise."""
        ...

    def note(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...

    def closed(self, reason: str = "closed") -> None:
        """The connection is gone (the library closed it or saw it close)."""
        ...


class Recorder(Protocol):
    """Given to a library-owned server or client: opens a record per
    connection."""

    def opened(self, peer: tuple[Any, ...], local: tuple[Any, ...], *,
               close: Callable[[], None] | None = None) -> TrafficRecord:
        """A connection began; ``close`` is how the lab closes it (``stop``)."""
        ...


class Listener(Protocol):
    """What ``ProtocolSpec.listen`` returns: the library's listening server."""

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one the OS chose)."""
        ...

    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


@dataclass(frozen=True)
class Listening:
    """Where and how a library-owned server is to listen."""

    host: str
    port: int
    options: Any
    recorder: Recorder
    services: Services
    clock: Clock
    # seconds a connection may stay quiet (the server's idle_timeout; None: no limit): the
    # library closes it in the protocol's own way (SSH sends a DISCONNECT)
    idle_timeout: float | None = None


class Link(Protocol):
    """What ``ProtocolSpec.dial`` returns: the library's client connection,
    which the protocol's client verbs drive (as ``self.link``)."""

    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


@dataclass(frozen=True)
class Dialing:
    """Where a library-owned client is to connect."""

    host: str
    port: int
    options: Any
    recorder: Recorder
    clock: Clock
    timeout: float


class AsyncioListener:
    """A :class:`Listener` around an ``asyncio`` server (``start_server``)."""

    def __init__(self, server: asyncio.AbstractServer) -> None:
        self._server = server

    @property
    def port(self) -> int:
        sockets = getattr(self._server, "sockets", None) or ()
        return int(sockets[0].getsockname()[1]) if sockets else 0

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()
