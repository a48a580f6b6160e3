"""Echo (RFC 862): the server sends back every byte it receives.

Over TCP the stream is echoed chunk by chunk as it arrives; over UDP each
datagram is answered with an identical datagram.

Tests: tests/protocols/test_echo.py
"""

from __future__ import annotations

from typing import Any

from lab.errors import LabTimeout
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import bytes_decoder
from lab.protocols._session import ClientVerbs, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec

__all__ = ["SPEC", "EchoClient", "EchoConversation", "EchoServer", "EchoSession"]


class EchoConversation(Conversation):
    """Uninterpreted bytes both ways: chunks over TCP, datagrams over UDP."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return bytes_decoder(self.transport)


class EchoSession(Session["EchoServer"]):
    """Sends every received message straight back."""

    def message_received(self, msg: Message) -> None:
        self.conn.send_raw(msg.raw)


class EchoServer(ServerBehaviour[Any]):
    """An echo server: a session per connection that repeats everything."""

    session_type = EchoSession


class EchoClient(ClientVerbs[Any]):
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
    conversation=EchoConversation,
    server=EchoServer,
    client=EchoClient,
)
