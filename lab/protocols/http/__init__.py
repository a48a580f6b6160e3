"""HTTP/1.1 (RFC 9110, RFC 9112): a server of routes and files, a client
with keep-alive, and a conversation that decodes both directions.

* ``_messages``: request and response heads, body parts, the end of a body;
* ``_codec``: :class:`HttpConversation`, heads framed under caps and parsed
  by llhttp (``httptools``), bodies framed by length, chunks or close;
* ``_server``: :class:`HttpServer` (routes, then files), :class:`HttpSession`,
  :class:`HttpRequest`, :class:`HttpResponse`, :class:`HttpOptions`;
* ``_static``: mapping a path under a root, validators, ranges, listings;
* ``_client``: :class:`HttpClient` and :class:`HttpResult`.

Tests: tests/protocols/test_http.py, tests/protocols/test_http_server.py,
tests/test_http_traversal.py, tests/interop/test_http_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.http._client import HttpClient, HttpClientOptions, HttpResult
from lab.protocols.http._codec import (
    MAX_HEAD,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    HttpConversation,
    HttpDecoder,
    HttpError,
)
from lab.protocols.http._messages import (
    PART,
    REASONS,
    HttpBody,
    HttpEnd,
    HttpHead,
    HttpRequestHead,
    HttpResponseHead,
    meaning,
    reason,
)
from lab.protocols.http._server import (
    FileAnswer,
    Handler,
    HttpOptions,
    HttpRequest,
    HttpResponse,
    HttpServer,
    HttpSession,
    as_response,
)

__all__ = [
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_REQUEST_LINE",
    "PART",
    "REASONS",
    "SPEC",
    "FileAnswer",
    "Handler",
    "HttpBody",
    "HttpClient",
    "HttpClientOptions",
    "HttpConversation",
    "HttpDecoder",
    "HttpEnd",
    "HttpError",
    "HttpHead",
    "HttpOptions",
    "HttpRequest",
    "HttpRequestHead",
    "HttpResponse",
    "HttpResponseHead",
    "HttpResult",
    "HttpServer",
    "HttpSession",
    "as_response",
    "meaning",
    "reason",
]


def _refusal(msg: object) -> bytes:
    body = b"not in the recording\n"
    return (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


SPEC = ProtocolSpec(
    name="http",
    summary="serves routes and files to web clients, and fetches pages",
    rfc="RFC 9110, RFC 9112",
    default_port=80,
    transports=(Transport.TCP,),
    conversation=HttpConversation,
    server=HttpServer,
    client=HttpClient,
    options=HttpOptions,
    client_options=HttpClientOptions,
    idle_timeout=60.0,  # a kept-alive connection left quiet
    keywords=("web", "www", "http", "curl", "browser", "rest"),
    requests=Requests(_refusal),
)
