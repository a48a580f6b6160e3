"""Helpers shared by client verbs: asking a datagram server, deadlines,
reading a reply that ends when the server closes.

Tests: tests/protocols/test_verbs.py
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from lab.errors import ConnectionClosed, LabTimeout, RemoteProtocolError
from lab.protocols._base import Message, Transport
from lab.protocols._session import Channel, ClientVerbs

__all__ = ["Deadline", "GreetedClient", "ask", "read_until_closed", "request"]

R = TypeVar("R", bound=Message)


async def request(channel: Channel) -> None:
    """Ask a server that answers datagrams to speak.

    Over UDP this sends the empty request datagram (RFC 864-868 servers
    answer any datagram); over TCP those servers speak first, so nothing
    is sent.
    """
    if channel.transport is Transport.UDP:
        await channel.send_raw(b"")


class Deadline:
    """One time budget shared by several waits of one verb."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._end = None if timeout is None else self._loop.time() + timeout

    def left(self) -> float | None:
        """Seconds left (never negative), or ``None`` for no limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - self._loop.time())

    async def receive(self, channel: Channel, what: str) -> Message:
        """The next message, within what is left of the budget.

        :class:`LabTimeout` names ``what`` was awaited;
        :class:`ConnectionClosed` passes through.
        """
        try:
            return await channel.receive(self.left())
        except LabTimeout:
            raise LabTimeout(f"{what} did not arrive within {self.timeout} s") from None


async def ask(channel: Channel, deadline: Deadline, proto: str, what: str) -> Message:
    """Request the answer of a speak-once service (RFC 865/867/868) and
    return its first message; a server that closes first is a
    :class:`ConnectionClosed` saying so."""
    await request(channel)
    try:
        return await deadline.receive(channel, what)
    except ConnectionClosed:
        raise ConnectionClosed(f"{proto}: the server closed without sending {what}") from None


async def read_until_closed(
    channel: Channel, deadline: Deadline, *, limit: int, what: str
) -> list[Message]:
    """Every message until the server closes the connection.

    Raises :class:`LabTimeout` if the server has not closed by the
    ``deadline``, and
    :class:`RemoteProtocolError` once the messages add up to more than
    ``limit`` bytes, so an endless sender (chargen on the wrong port) cannot
    hold the verb forever.
    """
    got: list[Message] = []
    size = 0
    while True:
        try:
            msg = await deadline.receive(channel, f"the end of the {what}")
        except ConnectionClosed:
            return got
        got.append(msg)
        size += len(msg.raw)
        if size > limit:
            raise RemoteProtocolError(f"{what} longer than {limit} bytes")


_GREETING = "the server's greeting"


class GreetedClient(ClientVerbs[Any], Generic[R]):
    """Verbs for a server that greets first (SMTP, POP3): the first verb
    reads the greeting, unless it arrived before."""

    reply_type: type[R]  # the protocol's reply message
    reply_noun: str  # "an SMTP reply", for the error on anything else
    greeting: R | None = None

    def message_received(self, msg: Message) -> None:
        """Note the greeting as it arrives: an ``expect`` may take it from
        the inbox before the first verb runs, which must not then wait."""
        if self.greeting is None and isinstance(msg, self.reply_type):
            self.greeting = msg

    async def _next_reply(self, deadline: Deadline, what: str) -> R:
        while True:
            msg = await deadline.receive(self.channel, what)
            if msg is self.greeting and what != _GREETING:
                continue  # still in the inbox when the first verb ran
            if not isinstance(msg, self.reply_type):
                raise RemoteProtocolError(f"expected {self.reply_noun}, got {msg.summary()}")
            return msg

    async def _greeted(self, deadline: Deadline) -> R:
        if self.greeting is None:
            self.greeting = await self._next_reply(deadline, _GREETING)
        return self.greeting
