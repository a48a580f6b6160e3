"""HTTP/1.1 client verbs: ``get``, ``head``, ``post`` and ``request``,
over one kept-alive connection.

Each verb sends one request and reads its response: a head, and a body
framed by Content-Length, chunked, or the connection closing (a response
to HEAD, a 1xx, 204 or 304 has none).  A body is kept up to the client's
``max_body``; the rest is read and counted, not kept (``truncated``).

Tests: tests/protocols/test_http.py, tests/interop/test_http_peers.py
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lab.errors import ConnectionClosed, RemoteProtocolError
from lab.protocols._options import Options, option, size
from lab.protocols._session import ClientVerbs
from lab.protocols._verbs import Deadline
from lab.protocols.http._messages import Headers, HttpBody, HttpEnd, HttpRequestHead, HttpResponseHead, find_header

__all__ = ["DEFAULT_CLIENT_BODY", "HttpClient", "HttpClientOptions", "HttpResult"]

DEFAULT_CLIENT_BODY = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class HttpClientOptions(Options):
    """How an HTTP client asks."""

    host: str | None = option(None, help="the Host header (default: the server's address)", metavar="NAME")
    max_body: int = option(DEFAULT_CLIENT_BODY, help="response body bytes kept (the rest is counted)",
                           parse=size(1 << 40), metavar="BYTES", example="1M", show_default="64M")


@dataclass
class HttpResult:
    """A response as a verb returns it."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    size: int = 0  # body bytes received, kept or not
    truncated: bool = False
    version: str = "HTTP/1.1"
    interim: list[HttpResponseHead] = field(default_factory=list)  # 1xx responses before it

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (any case), or ``default``."""
        found = find_header(self.headers, name)
        return default if found is None else found

    @property
    def text(self) -> str:
        kind = self.header("content-type") or ""
        charset = "utf-8"
        for param in kind.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        more = ", truncated" if self.truncated else ""
        return f"<HttpResult {self.status} {self.reason}, {self.size} bytes{more}>"


class HttpClient(ClientVerbs[HttpClientOptions]):
    """Verbs for talking to an HTTP/1.1 server over one connection, kept
    alive between requests.  A server that closes after a response ends
    the connection: later verbs raise :class:`ConnectionClosed`."""

    max_body: int = DEFAULT_CLIENT_BODY

    def set_options(self, options: HttpClientOptions) -> None:
        super().set_options(options)
        self.max_body = options.max_body

    def _host(self) -> str:
        if self.options is not None and self.options.host:
            return self.options.host
        peer = getattr(self.channel, "peer", ())
        if isinstance(peer, tuple) and len(peer) >= 2:
            host = str(peer[0])
            return (f"[{host}]" if ":" in host else host) + f":{peer[1]}"
        return "localhost"

    async def request(self, method: str, target: str = "/", body: bytes | str = b"",
                      headers: Iterable[tuple[str, str]] = (), *, timeout: float = 10.0) -> HttpResult:
        """Send one request and read its whole response (1xx answers are
        kept on ``interim``).  A Host header is added when missing."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        pairs = list(headers)
        if not any(k.lower() == "host" for k, _ in pairs):
            pairs.insert(0, ("Host", self._host()))
        method = method.upper()
        await self.channel.send(HttpRequestHead.of(method, target, pairs, data))
        return await self._response(Deadline(timeout), f"the response to {method} {target}")

    async def get(self, target: str = "/", headers: Iterable[tuple[str, str]] = (), *,
                  timeout: float = 10.0) -> HttpResult:
        """GET ``target``."""
        return await self.request("GET", target, b"", headers, timeout=timeout)

    async def head(self, target: str = "/", headers: Iterable[tuple[str, str]] = (), *,
                   timeout: float = 10.0) -> HttpResult:
        """HEAD ``target``: the head of what GET would answer, no body."""
        return await self.request("HEAD", target, b"", headers, timeout=timeout)

    async def post(self, target: str, body: bytes | str | dict[str, Any] | list[Any] = b"",
                   headers: Iterable[tuple[str, str]] = (), *, content_type: str | None = None,
                   timeout: float = 10.0) -> HttpResult:
        """POST ``body`` to ``target`` (a dict or list goes as JSON)."""
        pairs = list(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            content_type = content_type or "application/json"
        if content_type is None and not any(k.lower() == "content-type" for k, _ in pairs):
            content_type = "text/plain; charset=utf-8" if isinstance(body, str) else "application/octet-stream"
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        return await self.request("POST", target, body, pairs, timeout=timeout)

    async def _response(self, deadline: Deadline, what: str) -> HttpResult:
        interim: list[HttpResponseHead] = []
        while True:
            try:
                msg = await deadline.receive(self.channel, what)
            except ConnectionClosed:
                raise ConnectionClosed(f"http: the server closed without sending {what}",
                                       hint="connect again") from None
            if not isinstance(msg, HttpResponseHead):
                raise RemoteProtocolError(f"expected a response head, got {msg.summary()}")
            if msg.status < 200 and msg.status != 101:
                interim.append(msg)
                continue
            break
        result = HttpResult(status=msg.status, reason=msg.reason, headers=msg.headers, version=msg.version,
                            interim=interim)
        if msg.complete:
            result.body = msg.body[:self.max_body]
            result.size = len(msg.body)
            result.truncated = len(msg.body) > self.max_body
            return result
        kept = bytearray()
        size = 0
        while True:
            try:
                part = await deadline.receive(self.channel, f"the rest of {what}")
            except ConnectionClosed:
                raise ConnectionClosed(f"http: the connection closed inside {what}") from None
            if isinstance(part, HttpEnd):
                break
            if not isinstance(part, HttpBody):
                raise RemoteProtocolError(f"expected a body part, got {part.summary()}")
            size += len(part.content)
            room = self.max_body - len(kept)
            if room > 0:
                kept += part.content[:room]
        result.body = bytes(kept)
        result.size = size
        result.truncated = size > len(kept)
        return result
