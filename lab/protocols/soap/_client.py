"""SOAP 1.1 client verbs over one kept-alive HTTP connection: read the
service's WSDL (``load_wsdl``), list its ``operations``, and ``call``
one by name with keyword arguments, typed by the WSDL.  A service
without a WSDL can still be called, untyped, given its namespace.

Tests: tests/protocols/test_soap.py, tests/interop/test_soap_peers.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lab.errors import ConfigError, RemoteProtocolError
from lab.protocols._options import option
from lab.protocols.http._client import HttpClientOptions
from lab.protocols.soap._conversation import SoapConversation
from lab.protocols.soap._envelope import SoapDecodeError, dumps_envelope, loads_envelope
from lab.protocols.soap._schema import (
    Complex,
    Field,
    SchemaError,
    decode_element,
    decode_sequence,
    encode_field,
    field_for,
)
from lab.protocols.soap._wsdl import Operation, Service, WsdlError, loads_wsdl
from lab.protocols.xmlrpc._redial import Redialing

__all__ = ["SoapClient", "SoapClientOptions"]


@dataclass(frozen=True, kw_only=True)
class SoapClientOptions(HttpClientOptions):
    """How a SOAP client finds its service."""

    wsdl: str = option("/soap?wsdl", help="where the service's WSDL is on the server", metavar="URL_PATH",
                       example="/soap?wsdl")
    namespace: str | None = option(None, help="call without a WSDL: the service's namespace", metavar="URI")
    endpoint: str = option("/soap", help="call without a WSDL: the service's path", metavar="URL_PATH")


class SoapClient(Redialing):
    """Calls operations of a SOAP 1.1 document/literal service.  A fault
    raises :class:`~lab.protocols.soap._envelope.SoapFault` (``code``,
    ``string``, ``detail``).  A server that closes after each answer
    (HTTP/1.0, wsgiref) is asked again on a new connection, a child of
    this one in the log."""

    conversation_type = SoapConversation

    service: Service | None = None
    wsdl_path = "/soap?wsdl"
    namespace: str | None = None
    endpoint = "/soap"

    def set_options(self, options: HttpClientOptions) -> None:
        super().set_options(options)
        if isinstance(options, SoapClientOptions):
            self.wsdl_path = options.wsdl
            self.namespace = options.namespace
            self.endpoint = options.endpoint

    async def load_wsdl(self, path: str | None = None, *, timeout: float = 10.0) -> list[str]:
        """GET and read the WSDL (at ``path``, else the client's ``wsdl``
        option); returns the operations' names."""
        target = path or self.wsdl_path
        result = await self._exchange("GET", target, b"", [], timeout=timeout)
        if result.status != 200:
            raise RemoteProtocolError(f"soap: GET {target} answered {result.status} {result.reason}",
                                      hint="give the WSDL's path: load_wsdl('/service?wsdl')")
        if result.truncated:
            raise RemoteProtocolError(f"soap: the WSDL is larger than {self.max_body} bytes")
        try:
            self.service = loads_wsdl(result.body)
        except WsdlError as exc:
            raise RemoteProtocolError(f"soap: cannot read the WSDL at {target}: {exc}") from None
        return sorted(self.service.operations)

    async def operations(self, *, timeout: float = 10.0) -> dict[str, list[str]]:
        """Each operation and its parameters, from the WSDL (read first if need be)."""
        service = await self._service(timeout)
        return {name: [f.name for f in op.inputs] for name, op in sorted(service.operations.items())}

    async def _service(self, timeout: float) -> Service:
        if self.service is None:
            await self.load_wsdl(timeout=timeout)
        assert self.service is not None
        return self.service

    def _untyped(self, operation: str, kwargs: dict[str, Any]) -> Operation:
        assert self.namespace is not None
        try:
            inputs = tuple(field_for(k, type(v) if v is not None else str, self.namespace) for k, v in kwargs.items())
        except SchemaError as exc:
            raise ConfigError(f"soap: {exc}") from None
        return Operation(operation, self.namespace, operation, operation, inputs, f"{operation}Response", (),
                         "", self.namespace, self.namespace)

    async def call(self, operation: str, /, *, timeout: float = 10.0, **kwargs: Any) -> Any:
        """Call ``operation`` with keyword arguments: its one result, a dict
        when it has several, None when it has none."""
        if self.namespace is not None and self.service is None:
            op, path = self._untyped(operation, kwargs), self.endpoint
        else:
            service = await self._service(timeout)
            found = service.operations.get(operation)
            if found is None:
                raise ConfigError(f"soap: the service has no operation {operation!r}",
                                  hint=f"operations: {', '.join(sorted(service.operations)) or 'none'}")
            op, path = found, urlsplit(service.location).path or "/"
        unknown = set(kwargs) - {f.name for f in op.inputs}
        if unknown:
            raise ConfigError(f"soap: {operation} takes no {sorted(unknown)[0]!r}",
                              hint=f"it takes {', '.join(f.name for f in op.inputs) or 'nothing'}")
        out: list[str] = []
        try:
            encode_field(Field(op.input_element, Complex("", op.inputs), ns=op.request_ns), kwargs, out)
        except SchemaError as exc:
            raise ConfigError(f"soap: {operation}: {exc}") from None
        headers = [("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", f'"{op.action}"')]
        result = await self._exchange("POST", path, dumps_envelope("".join(out)), headers, timeout=timeout)
        if result.truncated:
            raise RemoteProtocolError(f"soap: the reply to {operation} is larger than {self.max_body} bytes")
        try:
            envelope = loads_envelope(result.body)
        except SoapDecodeError as exc:
            raise RemoteProtocolError(f"soap: {operation} got HTTP {result.status}, not a SOAP envelope: {exc}") \
                from None
        if envelope.fault is not None:
            raise envelope.fault
        if envelope.body is None:
            return None
        if not op.outputs and self.service is None:
            value = decode_element(envelope.body, None)
            return next(iter(value.values())) if isinstance(value, dict) and len(value) == 1 else value
        try:
            values = decode_sequence(envelope.body, op.outputs)
        except SchemaError as exc:
            raise RemoteProtocolError(f"soap: the reply to {operation} does not fit its WSDL: {exc}") from None
        if len(op.outputs) == 1:
            return values[op.outputs[0].name]
        return values or None
