"""The protocol spec: everything the lab needs to serve and speak one
protocol, in one declaration.

Tests: tests/protocols/test_base.py
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation
from lab.protocols._library import Dialing, Link, Listener, Listening
from lab.protocols._options import NoOptions, Option, Options
from lab.protocols._session import ClientVerbs, ServerBehaviour

__all__ = ["ProtocolSpec", "Requests"]


@dataclass(frozen=True)
class Requests:
    """How a protocol's clients ask, for a server that answers from a
    recording (``netlab mock``): it matches each request message by its
    verb, answers what the recording lacks with ``refusal`` (the
    protocol's own error reply, never silence) and, where every request
    has exactly one reply (``one_reply_each``: SMTP, POP3, NNTP), pairs
    pipelined requests with their replies in order."""

    refusal: Callable[[Message], bytes]
    one_reply_each: bool = True


@dataclass(frozen=True, kw_only=True)
class ProtocolSpec:
    """One protocol: its name and description, its conversation (both
    sides decoded), its server behaviour and client verbs, and its option
    dataclasses (server and client).

    A protocol whose library owns the socket also gives ``listen`` and/or
    ``dial`` (see :mod:`lab.protocols._library`): the lab then lets the
    library do the I/O and records what it reports.
    """

    name: str
    summary: str
    rfc: str
    default_port: int
    transports: tuple[Transport, ...]
    conversation: Callable[[Role | None, Transport], Conversation]
    server: Callable[[Any], ServerBehaviour[Any]]
    client: type[ClientVerbs[Any]] = ClientVerbs
    options: type[Options] = NoOptions
    client_options: type[Options] = NoOptions
    line_ending: bytes = b"\r\n"
    idle_timeout: float = 300.0
    keywords: tuple[str, ...] = field(default=())
    listen: Callable[[Listening], Awaitable[Listener]] | None = None
    dial: Callable[[Dialing], Awaitable[Link]] | None = None
    requests: Requests | None = None  # request/reply protocols: how a mock answers per message
    # a UDP server also listens on TCP on the same port, one endpoint (DNS: RFC 7766 §5)
    tcp_beside_udp: bool = False

    def option(self, name: str) -> Option:
        """A server option by name; :class:`ConfigError` if there is none."""
        from lab.errors import ConfigError

        try:
            return self.options.get(name)
        except KeyError:
            raise ConfigError(f"protocol {self.name!r} has no option {name!r}") from None

    def resolve_options(self, given: Any) -> Options:
        """Server options from names and values: defaults filled in,
        unknown names refused, strings parsed."""
        if isinstance(given, self.options):
            return given
        return self.options.resolve(given, proto=self.name)

    def resolve_client_options(self, given: Any) -> Options:
        """Client options (``connect ... -o NAME=VALUE``), checked the same way."""
        if isinstance(given, self.client_options):
            return given
        return self.client_options.resolve(given, proto=self.name, what="client ")

    def iter_transports(self) -> Iterator[str]:
        return (t.value for t in self.transports)
