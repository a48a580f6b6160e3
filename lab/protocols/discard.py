"""Discard (RFC 863): the server throws away everything it receives.

Over TCP the server reads and drops the stream until the client closes;
over UDP it drops every datagram and answers none. A sink for watching
what a client sends.

Tests: tests/protocols/test_discard.py
"""

from __future__ import annotations

from typing import Any

from lab.protocols._base import Message, Transport
from lab.protocols._session import ClientVerbs, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec
from lab.protocols.echo import EchoConversation

__all__ = ["SPEC", "DiscardClient", "DiscardServer", "DiscardSession"]


class DiscardSession(Session["DiscardServer"]):
    """Drops every message, counting its bytes on the server."""

    def message_received(self, msg: Message) -> None:
        self.server.discarded += len(msg.raw)


class DiscardServer(ServerBehaviour[Any]):
    """Drops every message and counts the bytes it dropped."""

    session_type = DiscardSession

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.discarded = 0  # bytes dropped since the server started, for `ls`/inspection


class DiscardClient(ClientVerbs[Any]):
    """Verbs for talking to a discard server."""

    async def discard(self, data: bytes | str) -> int:
        """Send ``data`` as it is (str as UTF-8) and return the number of
        bytes sent; nothing ever comes back."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        await self.channel.send_raw(payload)
        return len(payload)


SPEC = ProtocolSpec(
    name="discard",
    summary="throws away everything it receives",
    rfc="RFC 863",
    default_port=9,
    transports=(Transport.TCP, Transport.UDP),
    conversation=EchoConversation,  # bytes both ways, as for echo
    server=DiscardServer,
    client=DiscardClient,
    keywords=("sink",),
)
