"""Discard (RFC 863): the server throws away everything it receives.

Over TCP the server reads and drops the stream until the client closes;
over UDP it drops every datagram and answers none. A sink for watching
what a client sends.

Tests: tests/protocols/test_discard.py
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.protocols._base import (
    ClientVerbs,
    Message,
    Peer,
    ProtocolSpec,
    ServerBehaviour,
    Transport,
)
from lab.protocols._framing import bytes_codec

__all__ = ["SPEC", "DiscardClient", "DiscardServer"]


class DiscardServer(ServerBehaviour):
    """Drops every message and counts the bytes it dropped."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.discarded = 0  # bytes dropped since the server started, for `ls`/inspection

    def message_received(self, conn: Peer, msg: Message) -> None:
        self.discarded += len(msg.raw)


class DiscardClient(ClientVerbs):
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
    codec=bytes_codec,
    server=DiscardServer,
    client=DiscardClient,
    keywords=("sink",),
)
