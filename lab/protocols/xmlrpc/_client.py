"""XML-RPC client verbs over one kept-alive HTTP connection: ``call``,
``multicall`` and the introspection calls, and :class:`Proxy`, which
turns attribute access into calls (``Proxy(c).add(1, 2)``,
``Proxy(c).system.listMethods()``).

Tests: tests/protocols/test_xmlrpc.py, tests/interop/test_xmlrpc_peers.py
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import RemoteProtocolError
from lab.protocols._options import option
from lab.protocols.http._client import HttpClientOptions
from lab.protocols.xmlrpc._codec import Fault, XmlRpcDecodeError, XmlRpcFault, dumps_call, loads_response
from lab.protocols.xmlrpc._conversation import XmlRpcConversation
from lab.protocols.xmlrpc._redial import Redialing

__all__ = ["Proxy", "XmlRpcClient", "XmlRpcClientOptions"]


@dataclass(frozen=True, kw_only=True)
class XmlRpcClientOptions(HttpClientOptions):
    """How an XML-RPC client calls."""

    path: str = option("/RPC2", help="the path calls are POSTed to", metavar="URL_PATH", example="/RPC2")


class XmlRpcClient(Redialing):
    """Calls methods of an XML-RPC server.  A fault raises
    :class:`XmlRpcFault` (``code``, ``string``); a reply that is not
    XML-RPC (an HTTP error page) raises :class:`RemoteProtocolError`.
    A server that closes after each answer (HTTP/1.0) is called again on
    a new connection, a child of this one in the log."""

    path = "/RPC2"
    conversation_type = XmlRpcConversation
    shell_names: ClassVar[tuple[str, ...]] = ("proxy",)

    def proxy(self, client: Any) -> Proxy:
        """``c.proxy``: method calls as attributes, ``c.proxy.add(1, 2)``."""
        return Proxy(client)

    def set_options(self, options: HttpClientOptions) -> None:
        super().set_options(options)
        if isinstance(options, XmlRpcClientOptions):
            self.path = options.path

    async def _rpc(self, body: bytes, what: str, timeout: float) -> Any:
        headers = [("Content-Type", "text/xml"), ("User-Agent", "netlab XML-RPC client")]
        result = await self._exchange("POST", self.path, body, headers, timeout=timeout)
        if result.status != 200:
            raise RemoteProtocolError(f"xmlrpc: {what} got HTTP {result.status} {result.reason}",
                                      hint=f"is {self.path} the server's XML-RPC path?")
        if result.truncated:
            raise RemoteProtocolError(f"xmlrpc: the reply to {what} is larger than {self.max_body} bytes")
        try:
            reply = loads_response(result.body)
        except XmlRpcDecodeError as exc:
            raise RemoteProtocolError(f"xmlrpc: the reply to {what} is not XML-RPC: {exc}") from None
        if isinstance(reply, Fault):
            raise XmlRpcFault(reply.code, reply.string)
        return reply.value

    async def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        """Call ``method`` with ``params`` and return its value; a fault
        raises :class:`XmlRpcFault`."""
        try:
            body = dumps_call(method, params)
        except ValueError as exc:
            raise XmlRpcFault(-32602, f"cannot send this call: {exc}") from None
        return await self._rpc(body, method, timeout)

    async def multicall(self, calls: Iterable[tuple[str, Iterable[Any]] | list[Any]], *,
                        timeout: float = 10.0) -> list[Any]:
        """Several calls in one request (``system.multicall``): a value for
        each, or the :class:`XmlRpcFault` it came to (returned, not raised)."""
        batch = [{"methodName": name, "params": list(args)} for name, args in calls]
        answers = await self.call("system.multicall", batch, timeout=timeout)
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise RemoteProtocolError("xmlrpc: system.multicall did not answer each call")
        out: list[Any] = []
        for answer in answers:
            if isinstance(answer, list) and len(answer) == 1:
                out.append(answer[0])
            elif isinstance(answer, dict) and "faultCode" in answer:
                out.append(XmlRpcFault(int(answer["faultCode"]), str(answer.get("faultString", ""))))
            else:
                shown = repr(answer)[:100]
                raise RemoteProtocolError(f"xmlrpc: a multicall answer is neither [value] nor a fault: {shown}")
        return out

    async def list_methods(self, *, timeout: float = 10.0) -> list[str]:
        """``system.listMethods``."""
        return list(await self.call("system.listMethods", timeout=timeout))

    async def method_help(self, method: str, *, timeout: float = 10.0) -> str:
        """``system.methodHelp``."""
        return str(await self.call("system.methodHelp", method, timeout=timeout))

    async def method_signature(self, method: str, *, timeout: float = 10.0) -> Any:
        """``system.methodSignature``: ``[[return, param, ...]]`` or ``"undef"``."""
        return await self.call("system.methodSignature", method, timeout=timeout)


class Proxy:
    """Method calls as attribute access, on anything with ``call(name,
    *args)``: a lab client (blocking), or ``.acall`` for awaiting
    (``await Proxy(c, asynchronous=True).add(1, 2)``)."""

    def __init__(self, client: Any, *, asynchronous: bool = False, _prefix: str = "") -> None:
        self._client = client
        self._asynchronous = asynchronous
        self._prefix = _prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return Proxy(self._client, asynchronous=self._asynchronous, _prefix=f"{self._prefix}{name}.")

    def __call__(self, *params: Any, **kwargs: Any) -> Any:
        method = self._prefix.rstrip(".")
        if not method:
            raise TypeError("call a method of the proxy: proxy.add(1, 2)")
        fn = self._client.acall if self._asynchronous else self._client.call
        return fn(method, *params, **kwargs)

    def __repr__(self) -> str:
        return f"<XML-RPC proxy {self._prefix.rstrip('.') or 'root'}>"
