"""Echo (RFC 862): the server sends back every byte it receives.

Over TCP the stream is echoed chunk by chunk as it arrives; over UDP each
datagram is answered with an identical datagram.

Tests: tests/protocols/test_echo.py
"""

from __future__ import annotations

from lab.errors import LabTimeout
from lab.protocols._base import (
    ClientVerbs,
    Message,
    Peer,
    ProtocolSpec,
    ServerBehaviour,
    Transport,
)
from lab.protocols._framing import bytes_codec

__all__ = ["SPEC", "EchoClient", "EchoServer"]


class EchoServer(ServerBehaviour):
    """Sends every received message straight back."""

    def message_received(self, conn: Peer, msg: Message) -> None:
        conn.send_raw(msg.raw)


class EchoClient(ClientVerbs):
    """Verbs for talking to an echo server."""

    async def echo(self, data: bytes | str, timeout: float = 5.0) -> bytes:
        """Send ``data`` and return what comes back, once as many bytes as
        were sent have arrived (TCP may split or join chunks)."""
        payload = data.encode() if isinstance(data, str) else data
        await self.channel.send_raw(payload)
        got = b""
        while len(got) < len(payload):
            try:
                msg = await self.channel.receive(timeout)
            except LabTimeout:
                raise LabTimeout(
                    f"echo: {len(got)} of {len(payload)} bytes came back within {timeout} s"
                ) from None
            got += msg.raw
        return got


SPEC = ProtocolSpec(
    name="echo",
    summary="sends back every byte it receives",
    rfc="RFC 862",
    default_port=7,
    transports=(Transport.TCP, Transport.UDP),
    codec=bytes_codec,
    server=EchoServer,
    client=EchoClient,
)
