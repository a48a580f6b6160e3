"""The HTTP/1.1 server: routes set live from the shell or a lab file,
then files under ``--path`` (or, without one, a few built-in pages).

Each connection is an :class:`HttpSession`: requests are answered one
after another in the order they came (pipelining), bodies are gathered
up to ``--max-body`` (413 beyond), ``Expect: 100-continue`` gets its
``100`` when the request's turn comes, and a file goes out in parts
while the client reads, so a 1 GB file is never in memory.

Tests: tests/protocols/test_http.py, tests/protocols/test_http_server.py,
tests/interop/test_http_peers.py
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import json
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from lab.errors import ConfigError, ConnectionClosed, ProtocolError
from lab.protocols._base import Message
from lab.protocols._options import Options, integer, name_value, option, size, yes_no
from lab.protocols._session import Peer, ServerBehaviour, Session
from lab.protocols.http import _static
from lab.protocols.http._codec import HttpError
from lab.protocols.http._messages import (
    PART,
    HttpBody,
    HttpEnd,
    HttpRequestHead,
    HttpResponseHead,
    find_header,
    make_response,
    reason,
)

__all__ = ["DEFAULT_MAX_BODY", "Handler", "HttpOptions", "HttpRequest", "HttpResponse", "HttpServer",
           "HttpSession"]

DEFAULT_MAX_BODY = 10 * 1024 * 1024
MAX_QUEUED = 64  # requests pipelined behind the one being answered
PARTS_PER_PASS = 16  # file parts one connection sends per pass of the loop (1 MiB)
SERVER_NAME = "netlab"


@dataclass(frozen=True, kw_only=True)
class HttpOptions(Options):
    """How an HTTP server is set up."""

    path: str | None = option(None, help="serve the files under DIR (without it: a few built-in pages)",
                              metavar="DIR")
    index: tuple[str, ...] = option(help="a folder's index file (default index.html, index.htm)",
                                    multiple=True, metavar="NAME", example="index.html")
    listing: bool = option(True, help="list a folder without an index file", parse=yes_no(),
                           metavar="yes|no")
    routes: tuple[tuple[str, str], ...] = option(
        help="a dynamic route: PATH=MODULE:FUNCTION, the function called with each request",
        parse=name_value("PATH=MODULE:FUNCTION"), multiple=True, metavar="PATH=MODULE:FUNCTION",
        example="/hello=mymodule:hello")
    max_body: int = option(DEFAULT_MAX_BODY, help="the largest request body in bytes, K or M (413 beyond)",
                           parse=size(1024 * 1024 * 1024), metavar="BYTES", example="10M", show_default="10M")
    max_requests: int = option(1000, help="requests one connection may make before it is closed",
                               parse=integer(1), metavar="N")


@dataclass
class HttpRequest:
    """What a route handler receives: a whole request, body included."""

    method: str
    target: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    peer: tuple[str, int] | None = None
    version: str = "HTTP/1.1"
    raw_path: str = ""  # the path as sent, before percent-decoding

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (any case), or ``default``."""
        found = find_header(self.headers, name)
        return default if found is None else found

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpResponse:
    """What a route handler may return: a status, a body, headers."""

    def __init__(self, status: int = 200, body: bytes | str = b"", headers: Iterable[tuple[str, str]] = (),
                 content_type: str | None = None) -> None:
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a three-digit code")
        self.status = status
        self.headers = list(headers)
        if isinstance(body, str):
            self.body = body.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            self.body = bytes(body)
        if content_type is not None and not any(k.lower() == "content-type" for k, _ in self.headers):
            self.headers.append(("Content-Type", content_type))

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {len(self.body)} bytes)"


Handler = Callable[[HttpRequest], Any]


def as_response(result: Any) -> HttpResponse:
    """A handler's return value as a response."""
    if isinstance(result, HttpResponse):
        return result
    if result is None:
        return HttpResponse(204)
    if isinstance(result, str):
        return HttpResponse(200, result)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return HttpResponse(200, bytes(result), content_type="application/octet-stream")
    if isinstance(result, (dict, list)):
        return HttpResponse(200, json.dumps(result).encode("utf-8") + b"\n", content_type="application/json")
    raise TypeError(f"a route returned {type(result).__name__}: return str, bytes, dict, list or HttpResponse")


def import_handler(spec: str, what: str = "route handler") -> Handler:
    """``module:function`` as the function (a lab file's routes, XML-RPC's
    and SOAP's functions); :class:`ConfigError` saying why when it is not one."""
    module, colon, name = spec.partition(":")
    if not colon or not module or not name:
        raise ConfigError(f"{what} {spec!r} is not MODULE:FUNCTION", hint="e.g. operator:add")
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {what} {spec!r}: {exc}",
                          hint="the module must be importable here (on sys.path, or PYTHONPATH)") from None
    if not callable(obj):
        raise ConfigError(f"{what} {spec!r} is not callable")
    return obj


@dataclass
class Route:
    handler: Handler
    methods: frozenset[str] | None = None


# -- built-in pages, served without --path ------------------------------------------------------


def _welcome(server: HttpServer) -> Callable[[HttpRequest], HttpResponse]:
    def page(request: HttpRequest) -> HttpResponse:
        import html

        items = "".join(f'<li><a href="{html.escape(p, quote=True)}">{html.escape(p)}</a></li>'
                        for p in sorted(server.routes()))
        body = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>netlab</title></head>\n"
                f"<body><h1>netlab HTTP server</h1>\n<p>Routes:</p><ul>{items}</ul>\n"
                "<p>Add one from the shell: <code>srv.route(\"/x\", fn)</code>.</p></body></html>\n")
        return HttpResponse(200, body, content_type="text/html; charset=utf-8")

    return page


def _hello(request: HttpRequest) -> str:
    return "hello from netlab\n"


def _echo(request: HttpRequest) -> dict[str, Any]:
    return {"method": request.method, "target": request.target, "path": request.path, "query": request.query,
            "headers": [[k, v] for k, v in request.headers],
            "body": request.body[:4096].decode("utf-8", "replace"), "body_size": len(request.body)}


class Pages:
    """Routes that answer with fixed text, for the command language, where
    no Python function can be named (``call h pages.add /hi "hello"``)."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server

    def add(self, path: str, text: str, content_type: str = "text/plain; charset=utf-8", status: int = 200) -> str:
        """Answer GET and HEAD of ``path`` with ``text`` from the next request on."""
        if not 200 <= int(status) <= 599:
            raise ConfigError(f"status {status} is not a final HTTP status (200-599)")
        code, body = int(status), str(text).encode("utf-8")

        def page(request: HttpRequest) -> HttpResponse:
            return HttpResponse(code, body, content_type=content_type)  # a fresh one: the server adds headers

        page.__qualname__ = f"page of {len(body)} B"
        self._server.route(path, page, methods=("GET", "HEAD"))
        return path

    def remove(self, path: str) -> str:
        """Forget the route of ``path`` (a page or any other)."""
        self._server.unroute(path)
        return path

    def list(self) -> dict[str, str]:
        """Every route: path -> what answers it."""
        return self._server.routes()


class HttpServer(ServerBehaviour[HttpOptions]):
    """Answers requests from its routes, then from files under
    ``options.path``.  Subclasses (XML-RPC, SOAP) add routes in
    :meth:`started` or their constructor."""

    shell_names: ClassVar[tuple[str, ...]] = ("route", "unroute", "routes", "pages")

    def __init__(self, options: HttpOptions) -> None:
        super().__init__(options)
        self._routes: dict[str, Route] = {}
        self.pages = Pages(self)
        self.root: Path | None = None
        self.index = options.index or ("index.html", "index.htm")
        self._date = (0, "")
        for path, spec in options.routes:
            self.route(path, import_handler(spec))
        if options.path is None:
            self.route("/", _welcome(self), methods=("GET", "HEAD"), replace=False)
            self.route("/hello", _hello, methods=("GET", "HEAD"), replace=False)
            self.route("/echo", _echo, replace=False)

    def started(self) -> None:
        if self.options.path is not None:
            root = Path(os.path.realpath(os.path.expanduser(self.options.path)))
            if not root.is_dir():
                raise ConfigError(f"http: --path {self.options.path!r} is not a folder")
            self.root = root

    # -- routes (any thread: the table is replaced whole, never edited in place) --------------

    def route(self, path: str, handler: Handler | str | None = None, *,
              methods: Iterable[str] | None = None, replace: bool = True) -> Any:
        """Answer requests for ``path`` with ``handler(request)``, which
        returns str, bytes, a dict or list (JSON), an
        :class:`HttpResponse`, or an awaitable of one.  Without a handler,
        a decorator.  A route of the same path is replaced; the change
        holds from the next request."""
        if handler is None:
            def decorate(fn: Handler) -> Handler:
                self.route(path, fn, methods=methods)
                return fn
            return decorate
        if not path.startswith("/"):
            raise ConfigError(f"a route path starts with '/', got {path!r}")
        fn = import_handler(handler) if isinstance(handler, str) else handler
        if not callable(fn):
            raise ConfigError(f"the handler for {path} is not callable")
        allowed = frozenset(m.upper() for m in methods) if methods is not None else None
        if not replace and path in self._routes:
            return fn
        table = dict(self._routes)
        table[path] = Route(fn, allowed)
        self._routes = table
        return fn

    def unroute(self, path: str) -> None:
        """Forget the route of ``path``; :class:`ConfigError` if there is none."""
        if path not in self._routes:
            raise ConfigError(f"no route {path!r}", hint="srv.routes() lists them")
        table = dict(self._routes)
        del table[path]
        self._routes = table

    def routes(self) -> dict[str, str]:
        """Path -> handler name, for a look from the shell."""
        return {p: getattr(r.handler, "__qualname__", repr(r.handler)) +
                (f" [{', '.join(sorted(r.methods))}]" if r.methods else "") for p, r in self._routes.items()}

    def find_route(self, path: str) -> Route | None:
        return self._routes.get(path)

    # -- helpers for sessions ---------------------------------------------------------------

    def date(self) -> str:
        now = int(self.clock.wall())
        if self._date[0] != now:
            self._date = (now, _static.http_date(now))
        return self._date[1]

    def handle(self, request: HttpRequest) -> Any:
        """The answer to ``request`` when no route took it: files, or 404.
        Subclasses may override; return what a handler returns, or a
        :class:`FileAnswer`."""
        if self.root is None:
            return HttpResponse(404, f"nothing at {request.path}\n")
        return serve_file(self, request)


@dataclass
class FileAnswer:
    """A response whose body streams from an open file: ``segments`` are
    (bytes before, offset, length) runs, ``tail`` bytes after them."""

    status: int
    headers: list[tuple[str, str]]
    fd: int
    segments: list[tuple[bytes, int, int]]
    tail: bytes = b""
    total: int = 0


def serve_file(server: HttpServer, request: HttpRequest) -> Any:
    """GET or HEAD of a file or folder under the server's root."""
    assert server.root is not None
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(405, "files take GET and HEAD\n", headers=[("Allow", "GET, HEAD")])
    raw_path = request.raw_path or request.path
    target = _static.map_path(server.root, raw_path)
    if target is None:
        return HttpResponse(404, "not found\n")
    try:
        st = os.stat(target)
    except OSError:
        return HttpResponse(404, "not found\n")
    if stat.S_ISDIR(st.st_mode):
        if not raw_path.endswith("/"):
            location = raw_path + "/" + (f"?{request.query}" if request.query else "")
            return HttpResponse(301, f"see {location}\n", headers=[("Location", location)])
        for name in server.index:
            candidate = target / name
            if candidate.is_file() and _static.map_path(server.root, raw_path + name) is not None:
                target, st = candidate, os.stat(candidate)
                break
        else:
            if not server.options.listing:
                return HttpResponse(403, "no index file, and listings are off\n")
            return HttpResponse(200, _static.listing(target, request.path), content_type="text/html; charset=utf-8")
    if not stat.S_ISREG(st.st_mode):
        return HttpResponse(404, "not found\n")
    headers_in = {k.lower(): v for k, v in reversed(request.headers)}
    etag = _static.etag_of(st)
    validators = [("ETag", etag), ("Last-Modified", _static.http_date(st.st_mtime)), ("Accept-Ranges", "bytes")]
    if _static.not_modified(headers_in, etag, st.st_mtime):
        return HttpResponse(304, headers=validators)
    kind = _static.content_type(target)
    size_ = st.st_size
    status = 200
    segments: list[tuple[bytes, int, int]] = [(b"", 0, size_)]
    tail = b""
    headers = [*validators]
    ranges_header = headers_in.get("range")
    if ranges_header is not None and request.method == "GET" and _static.range_applies(headers_in, etag, st.st_mtime):
        ranges = _static.parse_ranges(ranges_header, size_)
        if ranges is not None:
            if not ranges:
                return HttpResponse(416, headers=[("Content-Range", f"bytes */{size_}"), *validators])
            status = 206
            if len(ranges) == 1:
                r = ranges[0]
                segments = [(b"", r.start, r.length)]
                headers.append(("Content-Range", f"bytes {r.start}-{r.end}/{size_}"))
            else:
                mark = _static.boundary()
                segments = [(f"--{mark}\r\nContent-Type: {kind}\r\nContent-Range: bytes {r.start}-{r.end}/{size_}"
                             f"\r\n\r\n".encode() if i == 0 else
                             f"\r\n--{mark}\r\nContent-Type: {kind}\r\nContent-Range: bytes {r.start}-{r.end}/"
                             f"{size_}\r\n\r\n".encode(), r.start, r.length) for i, r in enumerate(ranges)]
                tail = f"\r\n--{mark}--\r\n".encode()
                kind = f"multipart/byteranges; boundary={mark}"
    headers.append(("Content-Type", kind))
    total = sum(len(p) + n for p, _, n in segments) + len(tail)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return HttpResponse(403, "cannot read that file\n")
    return FileAnswer(status, headers, fd, segments, tail, total)


@dataclass
class _Incoming:
    """A request on its way in, then waiting its turn."""

    head: HttpRequestHead
    body: bytes | bytearray = b""
    size: int = 0
    done: bool = False
    refuse: int = 0  # a status to answer instead (413), the connection closing after
    why: str = ""
    continued: bool = False
    waiting: bool = False  # in the queue, its body counted in the session's held bytes


class _FileSender:
    """Sends a file's segments in parts while the client reads."""

    def __init__(self, session: HttpSession, answer: FileAnswer) -> None:
        self.session = session
        self.answer = answer
        self.segments = deque(answer.segments)
        self.offset = 0  # body bytes sent

    def run(self) -> bool | None:
        """Send while the peer reads, at most :data:`PARTS_PER_PASS` parts:
        True once everything is sent, None when the pass is used up and
        more can go at once (the caller comes back on the next pass)."""
        conn = self.session.conn
        answer = self.answer
        budget = PARTS_PER_PASS
        while not conn.write_paused:
            budget -= 1
            if budget < 0:
                return None  # a fast reader must not hold the loop for a whole file
            if not self.segments:
                if answer.tail:
                    self._send(answer.tail)
                    answer.tail = b""
                    continue
                conn.send(HttpEnd(raw=b"", size=self.offset))
                self.close()
                return True
            prefix, start, length = self.segments[0]
            if prefix:
                self._send(prefix)
                self.segments[0] = (b"", start, length)
                continue
            if not length:
                self.segments.popleft()
                continue
            n = min(PART, length)
            data = os.pread(answer.fd, n, start)
            if not data:
                raise OSError("the file shrank while it was sent")
            self.segments[0] = (b"", start + len(data), length - len(data))
            self._send(data)
        return False

    def _send(self, data: bytes) -> None:
        self.session.conn.send(HttpBody(raw=data, content=data, offset=self.offset))
        self.offset += len(data)

    def close(self) -> None:
        if self.answer.fd >= 0:
            os.close(self.answer.fd)
            self.answer.fd = -1


def _validated(head: HttpRequestHead, response: HttpResponse) -> HttpResponse:
    """A route's 200 to GET gets a weak ETag from its body (as Express
    gives one), so a client's conditional GET can be answered 304."""
    if any(k.lower() == "etag" for k, _ in response.headers):
        etag = next(v for k, v in response.headers if k.lower() == "etag")
    else:
        etag = 'W/"' + hashlib.sha1(response.body, usedforsecurity=False).hexdigest()[:16] + '"'
        response.headers.append(("ETag", etag))
    wanted = head.header("if-none-match")
    if wanted is not None and _static.not_modified({"if-none-match": wanted}, etag, 0):
        return HttpResponse(304, headers=[(k, v) for k, v in response.headers if k.lower() in (
            "etag", "cache-control", "expires", "vary", "content-location")])
    return response


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


class HttpSession(Session["HttpServer"]):
    """One connection: requests in, answered in order."""

    def __init__(self, server: HttpServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.queue: deque[_Incoming] = deque()
        self.incoming: _Incoming | None = None  # the request whose body is arriving
        self.busy = False  # a response is being produced (a handler's awaitable, a file)
        self.sender: _FileSender | None = None
        self.task: asyncio.Future[Any] | None = None
        self.served = 0
        self.closing = False
        self.gone = False
        self.held = 0  # body bytes of the requests waiting in the queue
        self.eof = False  # the client half-closed: close once everything is answered

    # -- input -----------------------------------------------------------

    def message_received(self, msg: Message) -> None:
        if self.closing:
            return
        if type(msg) is HttpRequestHead:
            if len(self.queue) >= MAX_QUEUED:
                self.conn.note(f"more than {MAX_QUEUED} requests pipelined: closing")
                self.closing = True
                self.conn.close()
                return
            item = _Incoming(msg, size=len(msg.body), done=msg.complete)
            limit = self.server.options.max_body
            if msg.complete:
                item.body = msg.body
                if len(msg.body) > limit:
                    item.refuse, item.body = 413, b""
                    item.why = f"a body of {len(msg.body)} bytes (at most {limit})"
                if not self.queue and not self.busy and not self.gone:
                    self._answer(item)  # the usual case: nothing waits before it
                    return
            else:
                if msg.length is not None and msg.length > limit:
                    item.refuse, item.done = 413, True
                    item.why = f"a body of {msg.length} bytes (at most {limit})"
                self.incoming = item
            self.queue.append(item)
            item.waiting = True
            self.held += len(item.body)
            if self._holding_too_much():
                return
            self.pump()
        elif type(msg) is HttpBody:
            body_of = self.incoming
            if body_of is None:
                return
            item = body_of
            item.size += len(msg.content)
            if item.refuse:
                return
            if item.size > self.server.options.max_body:
                item.refuse, item.done = 413, True
                item.why = f"a body of more than {self.server.options.max_body} bytes"
                if item.waiting:
                    self.held -= len(item.body)
                item.body = b""
                self.pump()
                return
            if type(item.body) is bytes:
                item.body = bytearray(item.body)
            item.body += msg.content
            if item.waiting:
                self.held += len(msg.content)
                self._holding_too_much()
        elif type(msg) is HttpEnd:
            ended = self.incoming
            self.incoming = None
            if ended is not None and not ended.done:
                ended.done = True
                self.pump()

    def protocol_error(self, exc: ProtocolError) -> None:
        # anything else comes from the lab: a request that did not arrive in time
        status = exc.status if isinstance(exc, HttpError) else 408
        self.queue.clear()
        self.incoming = None
        if self.sender is not None or self.task is not None:
            self.closing = True  # a response is under way: it cannot be interrupted by another
            self.conn.close()
            return
        self._answer_whole(None, HttpResponse(status, f"{reason(status)}: {exc}\n"), close=True)

    def writable(self) -> None:
        if self.sender is not None:
            self._run_sender()

    def eof_received(self) -> None:
        """The client finished sending (a half-close): answer what it asked,
        then close."""
        self.eof = True
        if not self.busy and not self.queue:
            self.conn.close()

    def connection_lost(self) -> None:
        self.gone = True
        if self.sender is not None:
            self.sender.close()
            self.sender = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.queue.clear()

    # -- answering, in order ---------------------------------------------

    def pump(self) -> None:
        """Answer the requests at the front of the queue that are ready."""
        while self.queue and not self.busy and not self.closing and not self.gone:
            item = self.queue[0]
            if not item.done:
                if not item.continued and "100-continue" in _tokens(item.head.header("expect")):
                    item.continued = True
                    if item.head.version == "HTTP/1.1":
                        self.conn.send(HttpResponseHead.of(100, answers=item.head.method))
                return
            self.queue.popleft()
            item.waiting = False
            self.held -= len(item.body)
            self._answer(item)
        if self.eof and not self.queue and not self.busy and not self.closing and not self.gone:
            self.closing = True  # the client finished sending, and everything it asked is answered
            self.conn.close()

    def _holding_too_much(self) -> bool:
        """Bodies of pipelined requests waiting behind an answer are capped
        together by --max-body: a client cannot make the server hold many."""
        if self.held <= self.server.options.max_body or len(self.queue) < 2:
            return False
        self.conn.note(f"pipelined request bodies waiting add up to more than {self.server.options.max_body} bytes:"
                       " closing")
        self.closing = True
        self.queue.clear()
        self.conn.close()
        return True

    def _keep_alive(self, head: HttpRequestHead) -> bool:
        tokens = _tokens(head.header("connection"))
        if head.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def _answer(self, item: _Incoming) -> None:
        head = item.head
        self.served += 1
        close = self.served >= self.server.options.max_requests or not self._keep_alive(head)
        if item.refuse:
            self.conn.note(f"{head.method} {head.target}: refused {item.refuse}, {item.why}")
            self._answer_whole(head, HttpResponse(item.refuse, f"{reason(item.refuse)}: {item.why}\n"), close=True)
            return
        request = self._request(item)
        if isinstance(request, HttpResponse):
            self._answer_whole(head, request, close=close or request.status == 400)
            return
        route = self.server.find_route(request.path)
        try:
            if route is not None:
                if route.methods is not None and request.method not in route.methods and not (
                        request.method == "HEAD" and "GET" in route.methods):
                    allow = ", ".join(sorted(route.methods))
                    result: Any = HttpResponse(405, f"{request.path} takes {allow}\n", headers=[("Allow", allow)])
                else:
                    result = route.handler(request)
            else:
                result = self.server.handle(request)
        except Exception as exc:
            self._failed(head, exc, close)
            return
        kind = type(result)
        if (kind is str or kind is bytes or kind is dict or kind is list) and self._fast(head, result, close):
            return
        if inspect.isawaitable(result):
            self.busy = True
            self.task = asyncio.ensure_future(result)
            self.task.add_done_callback(lambda task: self._awaited(task, head, close))
            return
        self._deliver(head, result, close)

    def _awaited(self, task: asyncio.Future[Any], head: HttpRequestHead, close: bool) -> None:
        self.task = None
        self.busy = False
        if self.gone or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failed(head, exc, close)
        else:
            self._deliver(head, task.result(), close)
        self.pump()

    def _failed(self, head: HttpRequestHead, exc: BaseException, close: bool) -> None:
        text = f"route {head.method} {head.target} raised {type(exc).__name__}: {exc}"
        report = getattr(self.conn, "error", None)
        (report if callable(report) else self.conn.note)(text)
        self._answer_whole(head, HttpResponse(500, "Internal Server Error: the route failed\n"), close=close)

    def _deliver(self, head: HttpRequestHead, result: Any, close: bool) -> None:
        if isinstance(result, FileAnswer):
            self._answer_file(head, result, close)
            return
        try:
            response = as_response(result)
        except TypeError as exc:
            self._failed(head, exc, close)
            return
        if head.method in ("GET", "HEAD") and response.status == 200:
            response = _validated(head, response)
        self._answer_whole(head, response, close=close)

    def _fast(self, head: HttpRequestHead, result: str | bytes | dict[str, Any] | list[Any], close: bool) -> bool:
        """A route's plain 200, written straight out (the usual answer, on
        the hot path); False when the general path must answer it (a
        conditional GET that matches)."""
        if type(result) is str:
            body, kind = result.encode("utf-8"), "text/plain; charset=utf-8"
        elif type(result) is bytes:
            body, kind = result, "application/octet-stream"
        else:
            try:
                body, kind = json.dumps(result).encode("utf-8") + b"\n", "application/json"
            except (TypeError, ValueError):
                return False
        method = head.method
        date = self.server.date()
        connection = "close" if close else "keep-alive"
        size = str(len(body))
        if method == "GET" or method == "HEAD":
            etag = 'W/"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:16] + '"'
            if head.header("if-none-match") is not None:
                return False
            headers: tuple[tuple[str, str], ...] = (("Date", date), ("Server", SERVER_NAME), ("Content-Type", kind),
                                                    ("ETag", etag), ("Connection", connection),
                                                    ("Content-Length", size))
            text = (f"HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: {SERVER_NAME}\r\nContent-Type: {kind}\r\n"
                    f"ETag: {etag}\r\nConnection: {connection}\r\nContent-Length: {size}\r\n\r\n")
        else:
            headers = (("Date", date), ("Server", SERVER_NAME), ("Content-Type", kind), ("Connection", connection),
                       ("Content-Length", size))
            text = (f"HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: {SERVER_NAME}\r\nContent-Type: {kind}\r\n"
                    f"Connection: {connection}\r\nContent-Length: {size}\r\n\r\n")
        raw = text.encode("latin-1")
        if method == "HEAD":
            msg = make_response(raw, 200, "OK", "HTTP/1.1", headers, b"", "none", len(body), True, method)
        else:
            msg = make_response(raw + body, 200, "OK", "HTTP/1.1", headers, body, "length", len(body), True, method)
        try:
            self.conn.send(msg)
        except ConnectionClosed:
            return True
        if close:
            self.closing = True
            self.conn.close()
        return True

    def _request(self, item: _Incoming) -> HttpRequest | HttpResponse:
        head = item.head
        hosts = [v for k, v in head.headers if len(k) == 4 and k.lower() == "host"]
        if (head.version == "HTTP/1.1" and len(hosts) != 1) or len(hosts) > 1:
            return HttpResponse(400, "Bad Request: HTTP/1.1 wants exactly one Host header (RFC 9112 §3.2)\n")
        if head.method == "CONNECT":
            return HttpResponse(405, "this server is not a proxy\n", headers=[("Allow", "GET, HEAD, POST")])
        target = head.target
        if target.startswith("/"):
            raw_path, _, query = target.partition("?")
        elif head.method == "OPTIONS" and target == "*":
            raw_path, query = "*", ""
        elif "://" in target:
            parts = urlsplit(target)
            if parts.scheme.lower() not in ("http", "https"):
                return HttpResponse(400, "Bad Request: an absolute target must be http\n")
            raw_path, query = parts.path or "/", parts.query
        else:
            return HttpResponse(400, f"Bad Request: cannot use the target {target[:80]!r}\n")
        peer = self.conn.peer
        request = HttpRequest(method=head.method, target=target,
                              path=unquote(raw_path, errors="replace") if "%" in raw_path else raw_path,
                              query=query, headers=list(head.headers), body=bytes(item.body),
                              peer=(str(peer[0]), int(peer[1])) if len(peer) >= 2 else None, version=head.version,
                              raw_path=raw_path)
        return request

    def _finish_headers(self, headers: list[tuple[str, str]], close: bool) -> list[tuple[str, str]]:
        out = [("Date", self.server.date()), ("Server", SERVER_NAME), *headers]
        out.append(("Connection", "close" if close else "keep-alive"))
        return out

    def _answer_whole(self, head: HttpRequestHead | None, response: HttpResponse, *, close: bool) -> None:
        method = head.method if head is not None else ""
        headers = self._finish_headers(response.headers, close)
        try:
            msg = HttpResponseHead.of(response.status, headers, response.body, answers=method or "GET",
                                      version="HTTP/1.1")
            self.conn.send(msg)
        except ConnectionClosed:
            return
        if close:
            self.closing = True
            self.conn.close()

    def _answer_file(self, head: HttpRequestHead, answer: FileAnswer, close: bool) -> None:
        headers = self._finish_headers(answer.headers, close)
        if head.method == "HEAD" or answer.total <= PART:
            try:
                body = b"" if head.method == "HEAD" else self._read_all(answer)
            finally:
                os.close(answer.fd)
            msg = HttpResponseHead.of(answer.status, headers, body, answers=head.method, length=answer.total)
            self.conn.send(msg)
            if close:
                self.closing = True
                self.conn.close()
            return
        self.conn.send(HttpResponseHead.of(answer.status, headers, answers=head.method, length=answer.total,
                                           streamed=True))
        self.busy = True
        self.sender = _FileSender(self, answer)
        self._close_after = close
        self._run_sender()

    @staticmethod
    def _read_all(answer: FileAnswer) -> bytes:
        out = bytearray()
        for prefix, start, length in answer.segments:
            out += prefix
            out += os.pread(answer.fd, length, start)
        out += answer.tail
        return bytes(out)

    def _sender_again(self) -> None:
        if self.sender is not None and not self.gone and not self.conn.write_paused:
            self._run_sender()

    def _run_sender(self) -> None:
        sender = self.sender
        assert sender is not None
        try:
            done = sender.run()
        except ConnectionClosed:
            sender.close()
            self.sender = None
            return
        except OSError as exc:
            sender.close()
            self.sender = None
            self.conn.note(f"reading the file failed: {exc}; closing")
            self.closing = True
            self.conn.close()
            return
        if done is None:
            self.server.clock.call_soon(self._sender_again)
            return
        if done:
            self.sender = None
            self.busy = False
            if self._close_after:
                self.closing = True
                self.conn.close()
                return
            self.pump()


HttpServer.session_type = HttpSession
