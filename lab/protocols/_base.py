"""The protocol contract: what every protocol module provides.

A protocol is a :class:`ProtocolSpec` holding

* a sans-IO **codec** factory: ``codec(role, transport)`` returns a
  :class:`Codec` that turns the bytes *received* by that role into
  :class:`Message` objects and turns messages that role sends into bytes;
* a **server behaviour** factory: ``server(options)`` returns a
  :class:`ServerBehaviour` that reacts to messages on one listening socket;
* a **client verbs** class (:class:`ClientVerbs`) with the protocol's verbs
  as coroutines, driven through a :class:`Channel`;
* declared **options** (:class:`Option`) for the command line and the lab.

Nothing here knows about sockets, asyncio transports or the Lab.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from lab.errors import ConfigError, ProtocolError

__all__ = [
    "AnswerServer",
    "Channel",
    "ClientVerbs",
    "Codec",
    "Message",
    "Option",
    "Peer",
    "ProtocolSpec",
    "Role",
    "ServerBehaviour",
    "Services",
    "Transport",
    "escape_bytes",
]


class Role(enum.Enum):
    """Which side of a conversation a codec or endpoint plays."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class Transport(enum.Enum):
    """The socket kind a protocol runs over."""

    TCP = "tcp"
    UDP = "udp"


def _escape_table() -> dict[int, str]:
    table = {b: f"\\x{b:02x}" for b in range(256) if not 0x20 <= b < 0x7F}
    table.update({0x5C: "\\\\", 0x22: '\\"', 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"})
    return table


_ESCAPE = _escape_table()


def escape_bytes(data: bytes, limit: int = 200) -> str:
    """Render bytes as a double-quoted, escaped, printable string.

    Longer input is cut at ``limit`` bytes with a note of the full size.
    """
    # latin-1 maps each byte to the code point of the same number
    text = '"' + data[:limit].decode("latin-1").translate(_ESCAPE) + '"'
    if len(data) > limit:
        text += f" … ({len(data)} bytes)"
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One decoded protocol message; ``raw`` is its exact wire bytes.

    Subclasses add decoded fields.  ``kind`` names the message type for hooks
    and filters; ``volatile`` names fields whose values change from run to
    run (dates, ids, ports) so that recordings can match them loosely;
    ``keepalive`` marks a message the peer sends on its own clock (a
    server's PING to a quiet client), which recordings note but do not
    expect.
    """

    raw: bytes
    kind: ClassVar[str] = "data"
    volatile: ClassVar[frozenset[str]] = frozenset()
    keepalive: ClassVar[bool] = False

    def summary(self) -> str:
        """A one-line human description."""
        return escape_bytes(self.raw)

    def fields(self) -> dict[str, Any]:
        """The decoded fields as a tree (nested dicts and lists)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "raw"
        }

    @property
    def text(self) -> str:
        """The raw bytes decoded leniently as text."""
        return self.raw.decode("utf-8", "replace")


class Codec:
    """Sans-IO decoder/encoder for one role of one protocol.

    Feed received bytes with :meth:`receive_data` (``b""`` means the peer
    closed), then pull messages with :meth:`next_message` until it returns
    ``None``.  :meth:`feed` does both at once.  Decoding raises
    :class:`~lab.errors.RemoteProtocolError` on bytes the protocol forbids
    and nothing else; encoding raises
    :class:`~lab.errors.LocalProtocolError`.  After an error the codec is
    spent: it keeps raising.  When :meth:`feed` raises, the messages it
    decoded before the bad bytes are on the error's ``decoded`` list.
    """

    def receive_data(self, data: bytes) -> None:
        raise NotImplementedError

    def next_message(self) -> Message | None:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Message]:
        """Receive ``data`` and return every message now complete."""
        out: list[Message] = []
        try:
            self.receive_data(data)
            while (msg := self.next_message()) is not None:
                out.append(msg)
        except ProtocolError as exc:
            exc.decoded = out  # the good messages before the bad bytes
            raise
        return out

    def encode(self, msg: Message) -> bytes:
        """The bytes that put ``msg`` on the wire."""
        return msg.raw

    def sent(self, data: bytes) -> None:
        """This role sent ``data`` as raw bytes, not through :meth:`encode`.

        Codecs that follow the conversation keep track here: NNTP's and
        POP3's multi-line responses depend on the command, and SMTP's
        server codec must know whether it answered ``354``.
        """

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a message."""
        return 0


class Peer(Protocol):
    """What a server behaviour sees of one connection (reactor thread only)."""

    id: str
    peer: tuple[Any, ...]

    @property
    def transport(self) -> Transport: ...
    def send(self, msg: Message) -> None: ...
    def send_raw(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def note(self, text: str) -> None: ...
    @property
    def write_paused(self) -> bool: ...


class Services:
    """Shared state that several servers of one lab use together.

    The mail store SMTP delivers into and POP3 serves, the chat rooms IRC
    and later XMPP share: a protocol asks for a service by key and every
    server of the same lab gets the same object.  Keys are dotted names
    owned by the protocol module that creates them (``"mail.store"``).
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, key: str, factory: Callable[[], Any]) -> Any:
        """The service under ``key``, created by ``factory()`` the first time."""
        try:
            return self._items[key]
        except KeyError:
            value = self._items[key] = factory()
            return value

    def find(self, key: str) -> Any | None:
        """The service under ``key``, or None when nobody created it."""
        return self._items.get(key)

    def set(self, key: str, value: Any) -> None:
        """Install ``value`` under ``key`` (replacing any earlier one)."""
        self._items[key] = value

    def keys(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class ServerBehaviour:
    """How a server reacts; one instance per listening server.

    Every method runs on the reactor thread.  An exception escaping a
    method is logged as an error event and the server keeps serving.
    ``services`` is the lab's shared :class:`Services`, installed right
    after construction (a private one until then, so a behaviour also works
    alone in tests): use it from :meth:`connection_made` on, not in
    ``__init__``.
    """

    # True: what a TCP connection sends during one pass of the event loop
    # leaves in one write at the end of the pass (a fan-out to many clients
    # then costs one system call per client, not one per line)
    coalesce_writes: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        self.services = Services()

    def connection_made(self, conn: Peer) -> None:
        """A client connected (TCP) or a new peer sent a datagram (UDP)."""

    def message_received(self, conn: Peer, msg: Message) -> None:
        """A complete message arrived from ``conn``."""

    def eof_received(self, conn: Peer) -> None:
        """The client half-closed; by default, close our side too."""
        conn.close()

    def writable(self, conn: Peer) -> None:
        """The transport drained after :attr:`Peer.write_paused` was true."""

    def connection_lost(self, conn: Peer) -> None:
        """The connection is gone."""

    def protocol_error(self, conn: Peer, exc: Exception) -> None:
        """The client broke the protocol; by default, hang up."""
        conn.close()


class AnswerServer(ServerBehaviour):
    """The shape of the RFC 865/867/868 services: over TCP, send one answer
    on connect and close; over UDP, answer every datagram."""

    def answer(self) -> Message:
        """The message to send now."""
        raise NotImplementedError

    def connection_made(self, conn: Peer) -> None:
        if conn.transport is Transport.TCP:
            conn.send(self.answer())
            conn.close()

    def message_received(self, conn: Peer, msg: Message) -> None:
        if conn.transport is Transport.UDP:
            conn.send(self.answer())


class Channel(Protocol):
    """What client verbs drive: one client connection, usable from coroutines
    on the reactor loop."""

    @property
    def transport(self) -> Transport: ...

    async def send(self, msg: Message) -> None: ...
    async def send_raw(self, data: bytes) -> None: ...
    async def receive(self, timeout: float | None = None) -> Message: ...
    async def expect(self, pattern: Any, timeout: float | None = None) -> Message: ...
    async def wait_closed(self, timeout: float | None = None) -> None: ...
    async def close(self) -> None: ...


class ClientVerbs:
    """Base for a protocol's client verbs: public coroutine methods.

    The Lab exposes each verb ``v`` on its client endpoint twice: ``v(...)``
    blocks (for threads and scripts) and ``av(...)`` is awaitable.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.options: dict[str, Any] = {}

    def set_options(self, options: Mapping[str, Any]) -> None:
        """The client options (``ProtocolSpec.client_options``, resolved),
        given before the connection opens; override to apply them."""
        self.options = dict(options)

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


def _parse_str(text: str) -> str:
    return text


def _option_text(value: Any) -> str:
    """A typed option value (a YAML number or boolean) as command-line text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Option:
    """A protocol-specific server option, e.g. finger's ``--user``.

    ``parse`` turns one command-line string into a value; with
    ``multiple`` the option may repeat and the values form a list.
    """

    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = _parse_str
    multiple: bool = False
    metavar: str | None = None

    @property
    def option_string(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class ProtocolSpec:
    """Everything the Lab needs to serve and speak one protocol."""

    name: str
    summary: str
    rfc: str
    default_port: int
    transports: tuple[Transport, ...]
    codec: Callable[[Role, Transport], Codec]
    server: Callable[[Mapping[str, Any]], ServerBehaviour]
    client: type[ClientVerbs] = ClientVerbs
    options: Sequence[Option] = ()
    client_options: Sequence[Option] = ()
    line_ending: bytes = b"\r\n"
    idle_timeout: float = 300.0
    keywords: tuple[str, ...] = field(default=())

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise ConfigError(f"protocol {self.name!r} has no option {name!r}")

    def resolve_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Server options: defaults filled in, unknown names refused,
        strings parsed."""
        return self._resolve(self.options, given, "")

    def resolve_client_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Client options (``connect ... --option NAME=VALUE``), checked the
        same way as server options."""
        return self._resolve(self.client_options, given, "client ")

    def _resolve(self, declared: Sequence[Option], given: Mapping[str, Any], what: str) -> dict[str, Any]:
        known = {opt.name: opt for opt in declared}
        unknown = sorted(set(given) - set(known))
        if unknown:
            if what:
                names = ", ".join(opt.name for opt in declared) or "none"
            else:
                names = ", ".join(opt.option_string for opt in declared) or "none"
            raise ConfigError(
                f"{self.name}: unknown {what}option {unknown[0]!r}",
                hint=f"{what}options of {self.name}: {names}",
            )
        out: dict[str, Any] = {}
        for name, opt in known.items():
            if name not in given:
                out[name] = list(opt.default or []) if opt.multiple else opt.default
                continue
            value = given[name]
            if opt.multiple:
                if isinstance(value, Mapping):  # a lab file's {alice: Alice Liddell}
                    value = [f"{k}={_option_text(v)}" for k, v in value.items()]
                items = value if isinstance(value, (list, tuple)) else [value]
                out[name] = [self._parse_typed(opt, v) for v in items]
            else:
                out[name] = self._parse_typed(opt, value)
        return out

    def _parse_typed(self, opt: Option, value: Any) -> Any:
        """Strings and the scalars a lab file gives (numbers, true/false)
        go through ``opt.parse``; a mapping or list where one value belongs
        is refused; other objects from Python code pass as they are."""
        if isinstance(value, (bool, int, float)) and not getattr(opt, "flag", False):
            value = _option_text(value)
        if isinstance(value, str):
            return opt.parse(value)
        if value is None or isinstance(value, Mapping) or (isinstance(value, list) and not opt.multiple):
            what = "nothing" if value is None else "a mapping" if isinstance(value, Mapping) else "a list"
            raise ConfigError(f"{self.name}: {opt.option_string} wants one value, not {what}",
                              hint=f"e.g. {opt.option_string} {opt.metavar or 'VALUE'}")
        return value

    def iter_transports(self) -> Iterator[str]:
        return (t.value for t in self.transports)
