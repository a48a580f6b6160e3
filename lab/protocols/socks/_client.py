"""The SOCKS client's verbs: ask for a tunnel, then use it.

After :meth:`SocksClient.connect` the lab client is the tunnel: its raw
``send``/``expect`` go to the destination, and what comes back is
decoded as the destination's protocol.  :meth:`SocksClient.talk` runs
that protocol's own client verbs through the tunnel.

Tests: tests/protocols/test_socks.py, tests/interop/test_socks_peers.py
"""

from __future__ import annotations

from typing import Any

from lab.errors import LabError, LocalProtocolError, RemoteProtocolError
from lab.protocols._session import ClientVerbs
from lab.protocols.socks._conversation import default_choice
from lab.protocols.socks._messages import GRANTED, SocksCommand, SocksReply, SocksRequest

__all__ = ["SocksClient", "SocksRefused"]


class SocksRefused(LabError):
    """The server did not grant the request (``code`` 91 to 93)."""

    def __init__(self, reply: SocksReply) -> None:
        super().__init__(f"socks: {reply.summary()}",
                         hint="the server refused the destination (a lab SOCKS server reaches only what --allow lists)")
        self.reply = reply
        self.code = reply.code


def _port(value: int | str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LocalProtocolError(f"socks: a port is a number from 0 to 65535, not {value!r}") from None


class SocksClient(ClientVerbs[Any]):
    """CONNECT and BIND, SOCKS 4 or 4a by the host given."""

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.reply: SocksReply | None = None  # the last reply
        self._through: dict[str, Any] = {}
        self.carries: str | None = None  # the protocol this side decodes the tunnel as

    async def _reply(self, timeout: float) -> SocksReply:
        msg = await self.channel.receive(timeout)
        if not isinstance(msg, SocksReply):
            raise RemoteProtocolError(f"socks: expected a reply, got {msg.summary()}")
        self.reply = msg
        if msg.code != GRANTED:
            raise SocksRefused(msg)
        return msg

    async def connect(self, host: str, port: int | str, user: str = "", decode: str = "",
                      timeout: float = 10.0) -> SocksReply:
        """Ask for a tunnel to ``host:port`` (SOCKS 4 for an IPv4 address,
        4a for a name, which the server resolves), with ``user`` as the user
        id.  ``decode`` names the protocol the tunnel carries, for the log
        (``raw`` for none; by default the one whose port it is).  Raises
        :class:`SocksRefused` unless granted."""
        request = SocksRequest.of(SocksCommand.CONNECT, host, _port(port), user, decode=decode)
        self.carries = default_choice(request)
        await self.channel.send(request)
        return await self._reply(timeout)

    async def bind(self, host: str, port: int | str = 0, user: str = "", decode: str = "",
                   timeout: float = 10.0) -> SocksReply:
        """Ask the server to listen for one connection from ``host`` (BIND);
        returns the first reply, whose address and port the other host is
        to connect to.  :meth:`accept` waits for it."""
        request = SocksRequest.of(SocksCommand.BIND, host, _port(port), user, decode=decode)
        self.carries = default_choice(request)
        await self.channel.send(request)
        return await self._reply(timeout)

    async def accept(self, timeout: float = 60.0) -> SocksReply:
        """After :meth:`bind`: wait for the second reply (the host connected
        back; the tunnel is open)."""
        return await self._reply(timeout)

    async def talk(self, protocol: str, verb: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``protocol``'s client verb through the open tunnel:
        ``c.talk("smtp", "send_mail", "a@lab.test", ["b@lab.test"], text)``."""
        if self.reply is None or not self.reply.granted:
            raise LocalProtocolError("socks: no tunnel yet", hint="connect first: c.connect(host, port)")
        if protocol != self.carries:
            raise LocalProtocolError(f"socks: this tunnel is decoded as {self.carries or 'plain bytes'},"
                                     f" not {protocol}", hint=f"connect with decode={protocol!r}")
        verbs = self._through.get(protocol)
        if verbs is None:
            from lab.protocols import get

            verbs = self._through[protocol] = get(protocol).client(self.channel)
        fn = verbs.verbs().get(verb)
        if fn is None:
            raise LocalProtocolError(f"socks: {protocol} has no verb {verb!r}",
                                     hint=", ".join(sorted(verbs.verbs())) or "it has none")
        return await fn(verbs, *args, **kwargs)
