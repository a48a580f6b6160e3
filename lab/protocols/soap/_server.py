"""The SOAP 1.1 server: the HTTP server with a service route (``/soap``
by default) that answers document/literal envelopes from Python
functions and describes them in a WSDL at ``/soap?wsdl``, typed from
the functions' annotations.

Functions come from the shell (``srv.register(fn)``, or as a decorator),
from a lab file (``functions: {add: "module:function"}``) or, with none
given, a demo set.  Faults follow SOAP 1.1 §4.4: ``Client`` for what
the caller got wrong (bad XML, an unknown operation, parameters that do
not fit), ``Server`` for a function that raised, ``VersionMismatch``
for another envelope namespace, ``MustUnderstand`` for a header entry
that must be understood; each goes with HTTP 500 and an event.

Tests: tests/protocols/test_soap.py, tests/test_xml_bombs.py,
tests/interop/test_soap_peers.py
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import ConfigError
from lab.protocols._base import Message
from lab.protocols._options import name_value, option, size, yes_no
from lab.protocols.http._messages import HttpRequestHead
from lab.protocols.http._server import HttpOptions, HttpRequest, HttpResponse, HttpServer, HttpSession
from lab.protocols.soap._envelope import SoapDecodeError, SoapFault, dumps_envelope, dumps_fault, loads_envelope
from lab.protocols.soap._messages import plain
from lab.protocols.soap._schema import Complex, Field, SchemaError, decode_sequence, encode_field
from lab.protocols.soap._wsdl import Operation, Service, WsdlError, dumps_wsdl, operation_for
from lab.protocols.xmlrpc._dispatch import import_function

__all__ = ["DEFAULT_NAMESPACE", "SoapOptions", "SoapResponse", "SoapServer", "SoapSession", "demo_operations"]

DEFAULT_NAMESPACE = "urn:netlab:soap"
XML = "text/xml; charset=utf-8"


@dataclass(frozen=True, kw_only=True)
class SoapOptions(HttpOptions):
    """How a SOAP server is set up (and the HTTP server under it)."""

    path: str | None = option(None, help="also serve the files under DIR on other paths", metavar="DIR")

    functions: tuple[tuple[str, str], ...] = option(
        help="an operation, NAME=MODULE:FUNCTION (imported: refused in safe mode)",
        parse=name_value("NAME=MODULE:FUNCTION"), multiple=True, metavar="NAME=MODULE:FUNCTION",
        example="add=operator:add")
    demo: bool = option(True, help="with no --functions, offer the demo operations (add, echo, now, ...)",
                        parse=yes_no(), metavar="yes|no")
    service_path: str = option("/soap", help="the path of the service (its WSDL at PATH?wsdl)",
                               metavar="URL_PATH", example="/soap")
    namespace: str = option(DEFAULT_NAMESPACE, help="the service's target namespace", metavar="URI")
    service: str = option("Lab", help="the service's name in its WSDL", metavar="NAME")
    max_body: int = option(1024 * 1024, help="the largest request in bytes, K or M (a fault beyond, then close)",
                           parse=size(256 * 1024 * 1024), metavar="BYTES", example="1M", show_default="1M")


def demo_operations() -> dict[str, Callable[..., Any]]:
    """What a server offers when given no functions: one of each shape."""

    def add(a: int, b: int) -> int:
        """The sum of two integers."""
        return a + b

    def echo(text: str) -> str:
        """The text it was given."""
        return text

    def upper(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    def divide(a: float, b: float) -> float:
        """a / b; dividing by zero answers with a Server fault."""
        return a / b

    def total(values: list[float]) -> float:
        """The sum of a list of numbers."""
        return float(sum(values))

    def split(text: str, sep: str | None = None) -> list[str]:
        """The words of a text (or its pieces between sep)."""
        return text.split(sep)

    def now() -> dt.datetime:
        """The server's date and time (UTC)."""
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def reverse(data: bytes) -> bytes:
        """The bytes backwards (base64Binary both ways)."""
        return data[::-1]

    return {f.__name__: f for f in (add, echo, upper, divide, total, split, now, reverse)}


class SoapResponse(HttpResponse):
    """A response with the fault it carries, for the log."""

    def __init__(self, status: int, body: bytes, fault: SoapFault | None = None, operation: str = "") -> None:
        super().__init__(status, body, content_type=XML)
        self.fault = fault
        self.operation = operation


class SoapSession(HttpSession):
    """An HTTP session that notes every fault it answers."""

    server: SoapServer

    def message_received(self, msg: Message) -> None:
        super().message_received(plain(msg))

    def _answer_whole(self, head: HttpRequestHead | None, response: HttpResponse, *, close: bool) -> None:
        if isinstance(response, SoapResponse) and response.fault is not None:
            fault = response.fault
            what = f" for {response.operation}" if response.operation else ""
            self.conn.note(f"SOAP fault {fault.code}{what}: {fault.string[:200]}")
        elif response.status == 413 and head is not None and head.method == "POST" and \
                head.target.partition("?")[0] == self.server.options.service_path:
            text = f"the request is larger than the server takes ({self.server.options.max_body} bytes)"
            self.conn.note(f"SOAP fault Client: {text}")
            response = HttpResponse(500, dumps_fault("Client", text), content_type=XML)
            close = True  # the rest of the body is not read
        super()._answer_whole(head, response, close=close)


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Any]
    operation: Operation


class SoapServer(HttpServer):
    """Answers SOAP 1.1 requests at its service path; other paths are the
    HTTP server's (routes, files)."""

    session_type = SoapSession
    shell_names: ClassVar[tuple[str, ...]] = (*HttpServer.shell_names, "register", "unregister", "operations",
                                              "wsdl")
    options: SoapOptions

    def __init__(self, options: SoapOptions) -> None:
        super().__init__(options)
        if not options.service_path.startswith("/"):
            raise ConfigError(f"soap: --service-path starts with '/', got {options.service_path!r}")
        for path in ("/hello", "/echo", "/"):  # HTTP's built-in pages: this server has its own
            if path not in dict(options.routes) and self.find_route(path) is not None:
                self.unroute(path)
        self._lock = threading.Lock()
        self._table: dict[str, _Entry] = {}
        for name, ref in options.functions:
            self.register(import_function(ref), name)
        if not options.functions and options.demo:
            for name, fn in demo_operations().items():
                self.register(fn, name)
        self.route(options.service_path, self.answer)

    # -- the shell's API ---------------------------------------------------------------------

    def register(self, fn: Callable[..., Any] | None = None, name: str | None = None) -> Any:
        """Offer ``fn`` as operation ``name`` (its own name by default),
        typed by its annotations (int, float, str, bool, bytes, datetime,
        ``list[T]``, ``T | None``); with no ``fn``, a decorator.  The WSDL
        describes it from the next request on."""
        if fn is None:
            return lambda f: self.register(f, name)
        op_name = str(name or getattr(fn, "__name__", ""))
        if not op_name.isidentifier():
            raise ConfigError(f"an operation name is an identifier, not {op_name!r}",
                              hint="register(fn, name='add')")
        try:
            operation = operation_for(fn, op_name, self.options.namespace)
        except WsdlError as exc:
            raise ConfigError(f"soap: cannot offer {op_name}: {exc}",
                              hint="annotate with int, float, str, bool, bytes, datetime, list[T] or T | None") \
                from None
        with self._lock:
            table = dict(self._table)
            table[op_name] = _Entry(fn, operation)
            self._table = table
        return fn

    def unregister(self, name: str) -> None:
        """Withdraw operation ``name``."""
        with self._lock:
            if name not in self._table:
                raise ConfigError(f"no operation {name!r}", hint=f"operations: {', '.join(self._table) or 'none'}")
            table = dict(self._table)
            del table[name]
            self._table = table

    def operations(self) -> list[str]:
        """The operations offered, sorted."""
        return sorted(self._table)

    def service(self, location: str) -> Service:
        """The service as its WSDL describes it, at ``location``."""
        return Service(self.options.service, self.options.namespace, location,
                       {name: entry.operation for name, entry in sorted(self._table.items())})

    def wsdl(self, location: str | None = None) -> str:
        """The WSDL, as text (``location`` defaults to this server's address)."""
        return dumps_wsdl(self.service(location or f"http://127.0.0.1{self.options.service_path}")).decode()

    # -- answering ---------------------------------------------------------------------------

    def answer(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        """The route: ``GET ?wsdl`` is the WSDL, a POST an operation."""
        if request.method in ("GET", "HEAD"):
            location = f"http://{request.header('host') or '127.0.0.1'}{request.path}"
            if request.query.lower() in ("wsdl", "wsdl=", "singlewsdl"):
                return HttpResponse(200, dumps_wsdl(self.service(location)), content_type=XML)
            lines = [f"netlab SOAP 1.1 service {self.options.service}: its WSDL is at {location}?wsdl", "",
                     "operations:"]
            for op in self.service(location).operations.values():
                inputs = ", ".join(f.name for f in op.inputs)
                lines.append(f"  {op.name}({inputs})" + (f"  {op.doc.partition(chr(10))[0]}" if op.doc else ""))
            return HttpResponse(200, "\n".join(lines) + "\n")
        if request.method != "POST":
            return HttpResponse(405, "SOAP requests are POSTed\n", headers=[("Allow", "GET, HEAD, POST")])
        if len(request.body) > self.options.max_body:
            text = f"the request is larger than the server takes ({self.options.max_body} bytes)"
            return self._fault(SoapFault("Client", text))
        try:
            envelope = loads_envelope(request.body)
        except SoapDecodeError as exc:
            return self._fault(SoapFault(exc.code, str(exc)))
        not_understood = envelope.must_understand()
        if not_understood:
            return self._fault(SoapFault("MustUnderstand", f"header {not_understood[0]!r} is not understood here"))
        if envelope.fault is not None or envelope.body is None:
            return self._fault(SoapFault("Client", "the body holds no operation"))
        body = envelope.body
        name = envelope.operation
        entry = self._table.get(name)
        if entry is None:
            return self._fault(SoapFault("Client", f"no operation {name!r}"), name)
        namespace = body.tag[1:].partition("}")[0] if body.tag.startswith("{") else ""
        if namespace != entry.operation.namespace:
            return self._fault(SoapFault("Client", f"{name} is in namespace {entry.operation.namespace!r}, "
                                                   f"not {namespace!r}"), name)
        try:
            args = decode_sequence(body, entry.operation.inputs)
        except (SchemaError, RecursionError) as exc:
            return self._fault(SoapFault("Client", f"{name}: {exc}"), name)
        params = inspect.signature(entry.fn).parameters
        kwargs = {k: v for k, v in args.items() if not (v is None and params[k].default is not inspect.Parameter.empty)}
        try:
            result = entry.fn(**kwargs)
        except Exception as exc:
            return self._server_fault(name, exc)
        if inspect.isawaitable(result):
            return self._finish(entry.operation, result)
        return self._result(entry.operation, result)

    async def _finish(self, operation: Operation, pending: Awaitable[Any]) -> HttpResponse:
        try:
            result = await pending
        except Exception as exc:
            return self._server_fault(operation.name, exc)
        return self._result(operation, result)

    def _server_fault(self, name: str, exc: Exception) -> SoapResponse:
        if isinstance(exc, SoapFault):
            return self._fault(exc, name)
        return self._fault(SoapFault("Server", f"{type(exc).__name__}: {exc}", type(exc).__name__), name)

    def _result(self, operation: Operation, result: Any) -> HttpResponse:
        out: list[str] = []
        wrapper = Field(operation.output_element, Complex("", operation.outputs), ns=operation.namespace)
        value = {operation.outputs[0].name: result} if operation.outputs else {}
        try:
            encode_field(wrapper, value, out)
        except SchemaError as exc:
            return self._fault(SoapFault("Server", f"{operation.name} returned what its WSDL does not allow: {exc}"),
                               operation.name)
        return SoapResponse(200, dumps_envelope("".join(out)), None, operation.name)

    @staticmethod
    def _fault(fault: SoapFault, operation: str = "") -> SoapResponse:
        # SOAP 1.1 §6.2: a fault goes with 500 Internal Server Error
        return SoapResponse(500, dumps_fault(fault.code, fault.string, fault.detail), fault, operation)
