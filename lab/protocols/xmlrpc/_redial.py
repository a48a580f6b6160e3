"""A fresh connection for a request when the server closed the last one.

An HTTP/1.0 server (wsgiref, Python's SimpleXMLRPCServer by default)
closes the connection after each response; an XML-RPC or SOAP client is
expected to connect again.  The lab's client is one connection, so a
request that finds it closed goes out on a connection of the client's
own, recorded in the log as a child of it (``c1.r1``), and is read with
the protocol's conversation.  Only a request that was never sent is
sent again: a call is not repeated once the server may have run it.

Tests: tests/interop/test_soap_peers.py, tests/interop/test_xmlrpc_peers.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from lab.errors import ConnectionClosed, LabTimeout, ProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation
from lab.protocols._verbs import Deadline
from lab.protocols.http._client import HttpClient, HttpResult
from lab.protocols.http._messages import HttpBody, HttpEnd, HttpRequestHead, HttpResponseHead

__all__ = ["Redialing"]

READ = 64 * 1024


class Redialing(HttpClient):
    """HTTP client verbs whose requests go out again on a new connection
    when the server closed the client's own."""

    conversation_type: Callable[[Role | None, Transport], Conversation]
    _dials = 0

    async def _exchange(self, method: str, target: str, body: bytes, headers: Iterable[tuple[str, str]], *,
                       timeout: float) -> HttpResult:
        """One request and its response, on the client's connection or, if
        the server closed that one, on a new one."""
        pairs = list(headers)
        if not any(k.lower() == "host" for k, _ in pairs):
            pairs.insert(0, ("Host", self._host()))
        try:
            await self.channel.send(HttpRequestHead.of(method, target, pairs, body))
        except ConnectionClosed:
            if not hasattr(self.channel, "child"):
                raise
            return await self._redial(method, target, body, pairs, timeout)
        # closed from here on, the call may have run: it is not repeated
        return await self._response(Deadline(timeout), f"the response to {method} {target}")

    async def _redial(self, method: str, target: str, body: bytes, pairs: list[tuple[str, str]],
                      timeout: float) -> HttpResult:
        channel: Any = self.channel
        peer = tuple(channel.peer)
        if len(peer) < 2:
            raise ConnectionClosed("the connection is closed and its address is unknown", hint="connect again")
        request = HttpRequestHead.of(method, target, pairs, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(peer[0], peer[1]), timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionClosed(f"cannot connect again to {peer[0]}:{peer[1]}: {exc}") from None
        self._dials += 1
        local = writer.get_extra_info("sockname") or ()
        record = channel.child(f"r{self._dials}", self.conversation_type(None, Transport.TCP),
                               writer.get_extra_info("peername") or peer, local, close=writer.close)
        conv = self.conversation_type(Role.CLIENT, Transport.TCP)
        try:
            data = conv.send(request)
            writer.write(data)
            record.sent(data)
            msgs: list[Message] = []
            while (result := self._complete(msgs)) is None:
                left = deadline - loop.time()
                if left <= 0:
                    raise LabTimeout(f"the response to {method} {target} did not arrive within {timeout} s")
                chunk = await asyncio.wait_for(reader.read(READ), left)
                if chunk:
                    record.received(chunk)
                msgs += conv.feed(chunk)
                if not chunk and self._complete(msgs) is None:
                    raise ConnectionClosed(f"the server closed without answering {method} {target}")
            return result
        except ProtocolError as exc:
            raise RemoteProtocolError(f"the response to {method} {target} is not HTTP: {exc}") from None
        except TimeoutError:
            raise LabTimeout(f"the response to {method} {target} did not arrive within {timeout} s") from None
        finally:
            writer.close()
            record.closed("done")

    def _complete(self, msgs: list[Message]) -> HttpResult | None:
        """The result once ``msgs`` hold a whole final response."""
        heads = [i for i, m in enumerate(msgs) if isinstance(m, HttpResponseHead) and (m.status >= 200 or
                                                                                     m.status == 101)]
        if not heads:
            return None
        head = msgs[heads[0]]
        assert isinstance(head, HttpResponseHead)
        result = HttpResult(status=head.status, reason=head.reason, headers=head.headers, version=head.version)
        if head.complete:
            body = head.body
        else:
            parts = msgs[heads[0] + 1:]
            if not parts or not isinstance(parts[-1], HttpEnd):
                return None
            body = b"".join(p.content for p in parts if isinstance(p, HttpBody))
        result.body, result.size = body[:self.max_body], len(body)
        result.truncated = len(body) > self.max_body
        return result
