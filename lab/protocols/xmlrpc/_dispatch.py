"""The XML-RPC dispatcher: registered functions by name, the
``system.*`` introspection methods (listMethods, methodHelp,
methodSignature) and ``system.multicall``, and a fault for every
failure: an unknown method, parameters that do not fit, a function that
raises, a document that is not XML-RPC.

Sans-IO: :meth:`Dispatcher.dispatch` takes a request body and returns
the response body (or an awaitable of one, when a function is a
coroutine).

Tests: tests/protocols/test_xmlrpc.py
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lab.errors import ConfigError
from lab.protocols.http._server import import_handler
from lab.protocols.xmlrpc._codec import (
    APPLICATION_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    Call,
    XmlRpcDecodeError,
    XmlRpcFault,
    dumps_fault,
    dumps_response,
    loads_call,
)

__all__ = ["MAX_MULTICALL", "Dispatcher", "Outcome", "demo_functions", "import_function"]

MAX_MULTICALL = 1000  # calls in one system.multicall

Function = Callable[..., Any]

_SIGNATURE_TYPES = {int: "int", float: "double", bool: "boolean", str: "string", bytes: "base64",
                    dt.datetime: "dateTime.iso8601", list: "array", tuple: "array", dict: "struct",
                    type(None): "nil"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call came to, for the log: the method, and the fault code
    (None when it succeeded)."""

    method: str
    fault: int | None = None
    detail: str = ""


def _type_name(annotation: Any) -> str | None:
    if isinstance(annotation, str):
        return {"int": "int", "float": "double", "bool": "boolean", "str": "string", "bytes": "base64",
                "list": "array", "dict": "struct", "None": "nil"}.get(annotation.split("[")[0])
    return _SIGNATURE_TYPES.get(getattr(annotation, "__origin__", annotation))


def _signature(fn: Function) -> list[list[str]] | str:
    """``[[return, param...]]`` from annotations, or ``"undef"`` when any is missing."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "undef"
    names = [_type_name(sig.return_annotation)]
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY):
            return "undef"
        names.append(_type_name(p.annotation))
    if any(n is None for n in names):
        return "undef"
    return [[n for n in names if n is not None]]


def _as_fault(exc: Exception) -> XmlRpcFault:
    """The fault a function's exception becomes: its own code when it is a
    fault (ours, or ``xmlrpc.client.Fault``), an application error otherwise."""
    if isinstance(exc, XmlRpcFault):
        return exc
    code, string = getattr(exc, "faultCode", None), getattr(exc, "faultString", None)
    if isinstance(code, int) and isinstance(string, str):
        return XmlRpcFault(code, string)
    return XmlRpcFault(APPLICATION_ERROR, f"{type(exc).__name__}: {exc}")


def _binds(fn: Function, params: tuple[Any, ...]) -> str | None:
    """Why ``params`` do not fit ``fn``'s positional parameters, or None."""
    try:
        inspect.signature(fn).bind(*params)
    except TypeError as exc:
        return str(exc)
    except ValueError:
        return None  # a builtin without a signature: let it say
    return None


class Dispatcher:
    """Functions by method name, and the calls that reach them.

    :meth:`register` may be called from any thread (the shell's): the
    table is replaced whole, so the reactor always sees one consistent
    table.
    """

    def __init__(self, *, introspection: bool = True, multicall: bool = True) -> None:
        self._lock = threading.Lock()
        self._functions: dict[str, Function] = {}
        self.introspection = introspection
        self.multicall = multicall

    # -- the table --------------------------------------------------------

    def register(self, fn: Function | None = None, name: str | None = None) -> Any:
        """Offer ``fn`` as method ``name`` (its own name by default); with no
        ``fn``, a decorator.  A function of the same name is replaced."""
        if fn is None:
            return lambda f: self.register(f, name)
        if not callable(fn):
            raise ConfigError(f"{fn!r} is not callable")
        method = name or getattr(fn, "__name__", None)
        if not method or method == "<lambda>":
            raise ConfigError("give a name for this function", hint="register(fn, name='add')")
        if method.startswith("system."):
            raise ConfigError(f"{method!r}: system.* names belong to the server")
        with self._lock:
            table = dict(self._functions)
            table[method] = fn
            self._functions = table
        return fn

    def unregister(self, name: str) -> None:
        """Withdraw method ``name``; :class:`ConfigError` if there is none."""
        with self._lock:
            if name not in self._functions:
                raise ConfigError(f"no method {name!r}", hint=f"methods: {', '.join(self.methods()) or 'none'}")
            table = dict(self._functions)
            del table[name]
            self._functions = table

    def methods(self) -> list[str]:
        """The registered methods' names, sorted (without system.*)."""
        return sorted(self._functions)

    def function(self, name: str) -> Function | None:
        return self._functions.get(name)

    def _system(self) -> dict[str, Function]:
        out: dict[str, Function] = {}
        if self.introspection:
            out |= {"system.listMethods": self._list_methods, "system.methodHelp": self._method_help,
                    "system.methodSignature": self._method_signature}
        if self.multicall:
            out["system.multicall"] = self._multicall_marker
        return out

    def _list_methods(self) -> list[str]:
        return sorted([*self._functions, *self._system()])

    def _method_help(self, name: str) -> str:
        fn = self._functions.get(name) or self._system().get(name)
        if fn is None:
            raise XmlRpcFault(METHOD_NOT_FOUND, f"no method {name!r}")
        return inspect.getdoc(fn) or ""

    def _method_signature(self, name: str) -> list[list[str]] | str:
        fn = self._functions.get(name)
        if fn is None:
            if name in self._system():
                return "undef"
            raise XmlRpcFault(METHOD_NOT_FOUND, f"no method {name!r}")
        return _signature(fn)

    def _multicall_marker(self, calls: list[Any]) -> Any:
        """Runs several calls in one request: a list of {methodName, params} structs,
        answered by a list of one-element arrays (results) or fault structs."""
        raise AssertionError("handled by the dispatcher")  # pragma: no cover

    # -- calls ------------------------------------------------------------

    def dispatch(self, body: bytes) -> tuple[bytes, list[Outcome]] | Awaitable[tuple[bytes, list[Outcome]]]:
        """The response body for a request body, and what each call came
        to; an awaitable when a function is a coroutine."""
        try:
            call = loads_call(body)
        except XmlRpcDecodeError as exc:
            return dumps_fault(exc.code, str(exc)), [Outcome("", exc.code, str(exc))]
        if call.method == "system.multicall" and self.multicall:
            return self._run_multicall(call)
        result = self._invoke(call.method, call.params)
        if inspect.isawaitable(result):
            return self._finish_async(call.method, result)
        return self._response(call.method, result)

    def _response(self, method: str, result: Any) -> tuple[bytes, list[Outcome]]:
        if isinstance(result, XmlRpcFault):
            return dumps_fault(result.code, result.string), [Outcome(method, result.code, result.string)]
        try:
            return dumps_response(result), [Outcome(method)]
        except ValueError as exc:
            text = f"{method} returned what XML-RPC cannot carry: {exc}"
            return dumps_fault(INTERNAL_ERROR, text), [Outcome(method, INTERNAL_ERROR, text)]

    async def _finish_async(self, method: str, pending: Awaitable[Any]) -> tuple[bytes, list[Outcome]]:
        return self._response(method, await self._settle(pending))

    @staticmethod
    async def _settle(pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except Exception as exc:
            return _as_fault(exc)

    def _invoke(self, method: str, params: tuple[Any, ...]) -> Any:
        """The result of one call, an :class:`XmlRpcFault` standing for a
        fault, or an awaitable of either."""
        fn = self._functions.get(method) or self._system().get(method)
        if fn is None or fn == self._multicall_marker:
            return XmlRpcFault(METHOD_NOT_FOUND, f"method {method!r} is not supported")
        problem = _binds(fn, params)
        if problem is not None:
            return XmlRpcFault(INVALID_PARAMS, f"{method}: {problem}")
        try:
            result = fn(*params)
        except Exception as exc:
            return _as_fault(exc)
        if inspect.isawaitable(result):
            return self._settle(result)
        return result

    def _run_multicall(self, call: Call) -> Any:
        calls = call.params[0] if len(call.params) == 1 else None
        if not isinstance(calls, list):
            fault = XmlRpcFault(INVALID_PARAMS, "system.multicall takes one array of calls")
            return self._response(call.method, fault)
        if len(calls) > MAX_MULTICALL:
            fault = XmlRpcFault(INVALID_PARAMS, f"system.multicall takes at most {MAX_MULTICALL} calls")
            return self._response(call.method, fault)
        results: list[Any] = []
        outcomes: list[Outcome] = []
        pending = False
        for item in calls:
            if (not isinstance(item, dict) or not isinstance(item.get("methodName"), str)
                    or not isinstance(item.get("params", []), list)):
                results.append(XmlRpcFault(INVALID_PARAMS, "each call is a struct of methodName and params"))
            elif item["methodName"] == "system.multicall":
                results.append(XmlRpcFault(INVALID_PARAMS, "system.multicall cannot nest"))
            else:
                result = self._invoke(item["methodName"], tuple(item.get("params", [])))
                pending = pending or inspect.isawaitable(result)
                results.append(result)
            outcomes.append(Outcome(item.get("methodName", "") if isinstance(item, dict) else ""))
        if pending:
            return self._finish_multicall(results, outcomes)
        return self._multicall_response(results, outcomes)

    async def _finish_multicall(self, results: list[Any], outcomes: list[Outcome]) -> tuple[bytes, list[Outcome]]:
        settled = [await r if inspect.isawaitable(r) else r for r in results]
        return self._multicall_response(settled, outcomes)

    @staticmethod
    def _multicall_response(results: list[Any], outcomes: list[Outcome]) -> tuple[bytes, list[Outcome]]:
        answer: list[Any] = []
        done: list[Outcome] = []
        for result, outcome in zip(results, outcomes, strict=True):
            if isinstance(result, XmlRpcFault):
                answer.append({"faultCode": result.code, "faultString": result.string})
                done.append(Outcome(outcome.method, result.code, result.string))
                continue
            try:
                dumps_response(result)
            except ValueError as exc:
                text = f"{outcome.method} returned what XML-RPC cannot carry: {exc}"
                answer.append({"faultCode": INTERNAL_ERROR, "faultString": text})
                done.append(Outcome(outcome.method, INTERNAL_ERROR, text))
                continue
            answer.append([result])
            done.append(outcome)
        return dumps_response(answer), [Outcome("system.multicall"), *done]


def import_function(ref: str) -> Function:
    """The function named ``module:function`` (a lab file's ``functions:``);
    :class:`ConfigError` when it cannot be found."""
    fn: Function = import_handler(ref, "function")
    return fn


def demo_functions() -> dict[str, Function]:
    """What a server offers when given no functions: something to call at once."""

    def add(a: int, b: int) -> int:
        """The sum of two numbers."""
        return a + b

    def echo(value: Any) -> Any:
        """The value it was given, whatever its type."""
        return value

    def now() -> dt.datetime:
        """The server's date and time (UTC) as a dateTime.iso8601."""
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    def upper(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    def divide(a: float, b: float) -> float:
        """a / b; dividing by zero answers with a fault."""
        return a / b

    def types() -> dict[str, Any]:
        """One value of every XML-RPC type, to see how each travels."""
        return {"int": 42, "i8": 2**40, "double": 2.5, "boolean": True, "string": "hello <world> & co",
                "nil": None, "dateTime": dt.datetime(2026, 1, 2, 3, 4, 5), "base64": b"\x00\x01binary",
                "array": [1, "two", 3.0], "struct": {"nested": [True]}}

    return {f.__name__: f for f in (add, echo, now, upper, divide, types)}
