"""The XML-RPC server: the HTTP server with a route that answers
``<methodCall>`` POSTs (at ``/RPC2`` and ``/`` by default) from a
:class:`~lab.protocols.xmlrpc._dispatch.Dispatcher`.

Functions come from the shell (``srv.register(fn)``, or as a decorator),
from a lab file (``functions: {add: "module:function"}``) or, with none
given, the demo set (add, echo, now, upper, divide, types).  Every
failure is a fault, and every fault an event in the log; a body larger
than ``--max-body`` is a fault too, after which the connection closes.

Tests: tests/protocols/test_xmlrpc.py, tests/test_xml_bombs.py,
tests/interop/test_xmlrpc_peers.py
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.protocols._base import Message
from lab.protocols._options import name_value, option, size, yes_no
from lab.protocols.http._messages import HttpRequestHead
from lab.protocols.http._server import HttpOptions, HttpRequest, HttpResponse, HttpServer, HttpSession
from lab.protocols.xmlrpc._codec import INVALID_XMLRPC, dumps_fault
from lab.protocols.xmlrpc._dispatch import Dispatcher, Outcome, demo_functions, import_function
from lab.protocols.xmlrpc._messages import plain

__all__ = ["DEFAULT_RPC_PATHS", "XmlRpcOptions", "XmlRpcResponse", "XmlRpcServer", "XmlRpcSession"]

DEFAULT_RPC_PATHS = ("/RPC2", "/")
XML = "text/xml"


@dataclass(frozen=True, kw_only=True)
class XmlRpcOptions(HttpOptions):
    """How an XML-RPC server is set up (and the HTTP server under it)."""

    path: str | None = option(None, help="also serve the files under DIR on other paths", metavar="DIR")

    functions: tuple[tuple[str, str], ...] = option(
        help="a function to offer, NAME=MODULE:FUNCTION (imported: refused in safe mode)",
        parse=name_value("NAME=MODULE:FUNCTION"), multiple=True, metavar="NAME=MODULE:FUNCTION",
        example="add=operator:add")
    demo: bool = option(True, help="with no --functions, offer the demo ones (add, echo, now, upper, divide, types)",
                        parse=yes_no(), metavar="yes|no")
    rpc_path: tuple[str, ...] = option(help="a path calls are POSTed to (default /RPC2 and /)", multiple=True,
                                       metavar="URL_PATH", example="/RPC2")
    introspection: bool = option(True, help="answer system.listMethods, methodHelp and methodSignature",
                                 parse=yes_no(), metavar="yes|no")
    multicall: bool = option(True, help="answer system.multicall", parse=yes_no(), metavar="yes|no")
    max_body: int = option(1024 * 1024, help="the largest call in bytes, K or M (a fault beyond, then close)",
                           parse=size(256 * 1024 * 1024), metavar="BYTES", example="1M", show_default="1M")


class XmlRpcResponse(HttpResponse):
    """A response with what each call in it came to, for the log."""

    def __init__(self, body: bytes, outcomes: list[Outcome]) -> None:
        super().__init__(200, body, content_type=XML)
        self.outcomes = outcomes


class XmlRpcSession(HttpSession):
    """An HTTP session that notes every fault it answers."""

    server: XmlRpcServer

    def message_received(self, msg: Message) -> None:
        # HTTP's session takes the HTTP message under the XML-RPC view
        super().message_received(plain(msg))

    def _answer_whole(self, head: HttpRequestHead | None, response: HttpResponse, *, close: bool) -> None:
        if isinstance(response, XmlRpcResponse):
            for outcome in response.outcomes:
                if outcome.fault is None:
                    continue
                if outcome.method:
                    self.conn.note(f"XML-RPC fault {outcome.fault} for {outcome.method}: {outcome.detail[:200]}")
                else:
                    self.conn.note(f"XML-RPC call refused ({outcome.fault}): {outcome.detail[:200]}")
        elif response.status == 413 and head is not None and head.method == "POST" and \
                self.server.is_rpc_path(head.target):
            text = (f"the call is larger than the server takes ({self.server.options.max_body} bytes): "
                    "refused unread")
            self.conn.note(f"XML-RPC call refused ({INVALID_XMLRPC}): {text}")
            response = HttpResponse(200, dumps_fault(INVALID_XMLRPC, text), content_type=XML)
            close = True  # the rest of the body is not read
        super()._answer_whole(head, response, close=close)


class XmlRpcServer(HttpServer):
    """Answers XML-RPC calls POSTed to its RPC paths; other paths are the
    HTTP server's (routes, files)."""

    session_type = XmlRpcSession
    shell_names: ClassVar[tuple[str, ...]] = (*HttpServer.shell_names, "register", "unregister", "methods",
                                              "dispatcher")
    options: XmlRpcOptions

    def __init__(self, options: XmlRpcOptions) -> None:
        super().__init__(options)
        for path in ("/hello", "/echo", "/"):  # HTTP's built-in pages: this server has its own
            if path not in dict(options.routes) and self.find_route(path) is not None:
                self.unroute(path)
        self.dispatcher = Dispatcher(introspection=options.introspection, multicall=options.multicall)
        for name, ref in options.functions:
            self.dispatcher.register(import_function(ref), name)
        if not options.functions and options.demo:
            for name, fn in demo_functions().items():
                self.dispatcher.register(fn, name)
        self.rpc_paths = options.rpc_path or DEFAULT_RPC_PATHS
        for path in self.rpc_paths:
            self.route(path, self.answer)

    # -- the shell's API ---------------------------------------------------------------------

    def register(self, fn: Callable[..., Any] | None = None, name: str | None = None) -> Any:
        """Offer ``fn`` as method ``name`` (its own name by default); with
        no ``fn``, a decorator: ``@srv.register``.  Takes effect on the
        next call."""
        return self.dispatcher.register(fn, name)

    def unregister(self, name: str) -> None:
        """Withdraw method ``name``."""
        self.dispatcher.unregister(name)

    def methods(self) -> list[str]:
        """The methods offered (system.* left out)."""
        return self.dispatcher.methods()

    # -- answering ---------------------------------------------------------------------------

    def is_rpc_path(self, target: str) -> bool:
        return target.partition("?")[0] in self.rpc_paths

    def answer(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        """The route: a call POSTed is dispatched; a GET gets a page
        listing the methods."""
        if request.method in ("GET", "HEAD"):
            lines = [f"netlab XML-RPC server: POST calls to {request.path}", "", "methods:"]
            for name in self.dispatcher.methods():
                doc = (inspect.getdoc(self.dispatcher.function(name)) or "").partition("\n")[0]
                lines.append(f"  {name}" + (f"  {doc}" if doc else ""))
            return HttpResponse(200, "\n".join(lines) + "\n")
        if request.method != "POST":
            return HttpResponse(405, "XML-RPC calls are POSTed\n", headers=[("Allow", "GET, HEAD, POST")])
        if len(request.body) > self.options.max_body:
            text = f"the call is larger than the server takes ({self.options.max_body} bytes)"
            return XmlRpcResponse(dumps_fault(INVALID_XMLRPC, text), [Outcome("", INVALID_XMLRPC, text)])
        result = self.dispatcher.dispatch(request.body)
        if isinstance(result, tuple):
            return XmlRpcResponse(*result)
        return self._finish(result)

    @staticmethod
    async def _finish(pending: Awaitable[tuple[bytes, list[Outcome]]]) -> HttpResponse:
        return XmlRpcResponse(*await pending)
