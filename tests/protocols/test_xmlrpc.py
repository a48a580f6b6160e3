"""Tests for lab/protocols/xmlrpc: the codec (every type both ways, against
the standard library's marshaller too, junk and hostile XML refused with
a fault code), the dispatcher (system.* methods, multicall, faults), the
conversation and messages in memory, the server and client verbs
through a loopback, and the server on real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import xmlrpc.client
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.errors import ConfigError
from lab.protocols.xmlrpc import _codec as codec
from lab.protocols.xmlrpc._dispatch import Dispatcher, demo_functions, import_function

SETTINGS = settings(deadline=None, max_examples=150)

# characters XML 1.0 can carry
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters=[chr(c) for c in range(0x20) if c not in (9, 10, 13)]
                                 + ["\ufffe", "\uffff"]), max_size=30)
SCALARS = (
    st.integers(min_value=codec.INT64[0], max_value=codec.INT64[1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans() | XML_TEXT | st.none() | st.binary(max_size=40)
    | st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0))
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(XML_TEXT, inner, max_size=4), max_leaves=20)
INT32 = st.integers(min_value=codec.INT32[0], max_value=codec.INT32[1])


# -- the codec ------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(VALUES, max_size=4))
def test_every_type_round_trips_in_a_call(params: list[Any]) -> None:
    """Whatever XML-RPC can carry comes back equal, nested or not."""
    got = codec.loads(codec.dumps_call("lab.echo", params))
    assert got == codec.Call("lab.echo", tuple(params))


@SETTINGS
@given(VALUES)
def test_every_type_round_trips_in_a_response(value: Any) -> None:
    assert codec.loads(codec.dumps_response(value)) == codec.Response(value)


@SETTINGS
@given(st.integers(), XML_TEXT)
def test_faults_round_trip(code: int, text: str) -> None:
    code = max(min(code, codec.INT32[1]), codec.INT32[0])
    assert codec.loads(codec.dumps_fault(code, text)) == codec.Fault(code, text)


# the standard library writes a CR as it is, which any XML parser reads as LF
NO_CR = XML_TEXT.map(lambda t: t.replace("\r", ""))
STDLIB_VALUES = st.recursive(
    INT32 | st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | NO_CR | st.none()
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NO_CR, inner, max_size=3), max_leaves=10)


@SETTINGS
@given(st.lists(STDLIB_VALUES, max_size=3))
def test_the_standard_library_reads_what_we_write_and_we_read_what_it_writes(params: list[Any]) -> None:
    """xmlrpc.client, an independent marshaller, agrees with us both ways."""
    theirs, method = xmlrpc.client.loads(codec.dumps_call("echo", params), use_builtin_types=True)
    assert (list(theirs), method) == (params, "echo")
    ours = codec.loads(xmlrpc.client.dumps(tuple(params), "echo", allow_none=True).encode())
    assert ours == codec.Call("echo", tuple(params))


def test_types_by_name_and_extensions() -> None:
    """Each typed element, the i4/i8 spellings, an untyped value as a string,
    both dateTime spellings."""
    doc = (b"<?xml version='1.0'?><methodCall><methodName>t</methodName><params>"
           b"<param><value><i4>-7</i4></value></param>"
           b"<param><value><i8>9000000000</i8></value></param>"
           b"<param><value>bare text</value></param>"
           b"<param><value><boolean>1</boolean></value></param>"
           b"<param><value><double>-1.5e3</double></value></param>"
           b"<param><value><dateTime.iso8601>2026-12-04T15:30:00</dateTime.iso8601></value></param>"
           b"<param><value><base64>aGk=\n</base64></value></param>"
           b"<param><value><nil/></value></param>"
           b"</params></methodCall>")
    assert codec.loads(doc).params == (-7, 9_000_000_000, "bare text", True, -1500.0,
                                       dt.datetime(2026, 12, 4, 15, 30), b"hi", None)


def test_big_integers_travel_as_i8_and_carriage_returns_survive() -> None:
    body = codec.dumps_response([2**31, "a\r\nb"])
    assert b"<i8>2147483648</i8>" in body and b"&#13;" in body
    assert codec.loads(body) == codec.Response([2**31, "a\r\nb"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**64, {1: "x"}, {"a"}, "nul\x00", object()])
def test_what_xmlrpc_cannot_carry_is_refused_before_sending(value: Any) -> None:
    with pytest.raises(ValueError):
        codec.dumps_response(value)


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        codec.encode_value(loop)


@pytest.mark.parametrize(
    ("doc", "code", "words"),
    [
        (b"not xml", codec.NOT_WELLFORMED, "not well-formed"),
        (b"<methodCall><methodName>a</methodName>", codec.NOT_WELLFORMED, "not well-formed"),
        (b"<methodCall/>", codec.INVALID_XMLRPC, "methodName"),
        (b"<methodCall><methodName>bad name!</methodName></methodCall>", codec.INVALID_XMLRPC, "method name"),
        (b"<html/>", codec.INVALID_XMLRPC, "methodCall"),
        (b"<methodCall><methodName>a</methodName><params><param><value><int>x</int></value></param>"
         b"</params></methodCall>", codec.INVALID_XMLRPC, "not an integer"),
        (b"<methodCall><methodName>a</methodName><params><param><value><int>99999999999</int></value>"
         b"</param></params></methodCall>", codec.INVALID_XMLRPC, "out of range"),
        (b"<methodCall><methodName>a</methodName><params><param><value><double>nan</double></value>"
         b"</param></params></methodCall>", codec.INVALID_XMLRPC, "finite"),
        (b"<methodCall><methodName>a</methodName><params><param><value><blob/></value>"
         b"</param></params></methodCall>", codec.INVALID_XMLRPC, "unknown XML-RPC type"),
        (b"<methodResponse><params/></methodResponse>", codec.INVALID_XMLRPC, "one value"),
        (b"<methodResponse><fault><value><string>x</string></value></fault></methodResponse>",
         codec.INVALID_XMLRPC, "faultCode"),
    ],
)
def test_documents_that_are_not_xmlrpc_get_the_right_fault_code(doc: bytes, code: int, words: str) -> None:
    with pytest.raises(codec.XmlRpcDecodeError, match=words) as err:
        codec.loads(doc)
    assert err.value.code == code


@SETTINGS
@given(st.binary(max_size=300))
def test_junk_gives_a_decode_error_never_a_crash(junk: bytes) -> None:
    with pytest.raises(codec.XmlRpcDecodeError):
        codec.loads(junk)


@SETTINGS
@given(st.lists(VALUES, max_size=3), st.data())
def test_damaged_documents_give_a_decode_error_or_a_value(params: list[Any], data: st.DataObject) -> None:
    """A valid call with bytes changed, cut or inserted anywhere: a decode
    error or some call, nothing else."""
    doc = bytearray(codec.dumps_call("m", params))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(doc) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            doc[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del doc[at:at + data.draw(st.integers(1, 20))]
        else:
            doc[at:at] = data.draw(st.sampled_from([b"<", b">", b"&", b"<value>", b"</data>", b"\x00", b"<i8>"]))
        if not doc:
            break
    try:
        got = codec.loads(bytes(doc))
    except codec.XmlRpcDecodeError:
        return
    assert isinstance(got, (codec.Call, codec.Response, codec.Fault))


# -- the dispatcher -----------------------------------------------------------------------------


def _call(d: Dispatcher, method: str, *params: Any) -> codec.Response | codec.Fault:
    result = d.dispatch(codec.dumps_call(method, params))
    if not isinstance(result, tuple):
        result = asyncio.run(result)  # type: ignore[arg-type]
    body, _outcomes = result
    return codec.loads_response(body)


@pytest.fixture
def disp() -> Dispatcher:
    d = Dispatcher()
    for name, fn in demo_functions().items():
        d.register(fn, name)
    return d


def test_registered_functions_answer(disp: Dispatcher) -> None:
    assert _call(disp, "add", 2, 3) == codec.Response(5)
    assert _call(disp, "echo", {"a": [1, None]}) == codec.Response({"a": [1, None]})
    assert isinstance(_call(disp, "now"), codec.Response)


def test_the_decorator_and_replacing_a_function(disp: Dispatcher) -> None:
    @disp.register
    def twice(x: int) -> int:
        return 2 * x

    disp.register(lambda x: 3 * x, "twice")
    assert _call(disp, "twice", 2) == codec.Response(6)
    disp.unregister("twice")
    assert "twice" not in disp.methods()


def test_unknown_method_bad_params_and_raising_functions_are_faults(disp: Dispatcher) -> None:
    assert _call(disp, "nope") == codec.Fault(codec.METHOD_NOT_FOUND, "method 'nope' is not supported")
    bad = _call(disp, "add", 1)
    assert isinstance(bad, codec.Fault) and bad.code == codec.INVALID_PARAMS and "b" in bad.string
    boom = _call(disp, "divide", 1, 0)
    assert isinstance(boom, codec.Fault) and boom.code == codec.APPLICATION_ERROR
    assert "ZeroDivisionError" in boom.string


def test_a_function_may_raise_its_own_fault(disp: Dispatcher) -> None:
    def picky(x: int) -> int:
        raise xmlrpc.client.Fault(4, "too picky")

    disp.register(picky)
    assert _call(disp, "picky", 1) == codec.Fault(4, "too picky")


def test_a_result_xmlrpc_cannot_carry_is_an_internal_error(disp: Dispatcher) -> None:
    disp.register(lambda: {1, 2}, "aset")
    got = _call(disp, "aset")
    assert isinstance(got, codec.Fault) and got.code == codec.INTERNAL_ERROR


def test_coroutine_functions_are_awaited(disp: Dispatcher) -> None:
    async def slow(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    disp.register(slow)
    assert _call(disp, "slow", 1) == codec.Response(2)
    assert _call(disp, "system.multicall", [{"methodName": "slow", "params": [4]}]) == codec.Response([[5]])


def test_introspection(disp: Dispatcher) -> None:
    listed = _call(disp, "system.listMethods")
    assert isinstance(listed, codec.Response)
    assert {"add", "echo", "now", "system.listMethods", "system.methodHelp", "system.multicall"} <= set(listed.value)
    assert _call(disp, "system.methodHelp", "add") == codec.Response("The sum of two numbers.")
    assert _call(disp, "system.methodSignature", "add") == codec.Response([["int", "int", "int"]])
    assert _call(disp, "system.methodSignature", "echo") == codec.Response("undef")
    missing = _call(disp, "system.methodHelp", "nope")
    assert isinstance(missing, codec.Fault) and missing.code == codec.METHOD_NOT_FOUND


def test_multicall_answers_each_call_or_its_fault(disp: Dispatcher) -> None:
    got = _call(disp, "system.multicall", [
        {"methodName": "add", "params": [1, 2]},
        {"methodName": "nope", "params": []},
        {"methodName": "divide", "params": [1, 0]},
        {"methodName": "system.multicall", "params": [[]]},
        "not a struct",
    ])
    assert isinstance(got, codec.Response)
    first, *faults = got.value
    assert first == [3]
    assert [f["faultCode"] for f in faults] == [codec.METHOD_NOT_FOUND, codec.APPLICATION_ERROR,
                                                 codec.INVALID_PARAMS, codec.INVALID_PARAMS]


def test_multicall_is_bounded(disp: Dispatcher) -> None:
    calls = [{"methodName": "add", "params": [1, 1]}] * 1001
    got = _call(disp, "system.multicall", calls)
    assert isinstance(got, codec.Fault) and "at most 1000" in got.string


def test_a_malformed_request_is_a_fault_and_an_outcome(disp: Dispatcher) -> None:
    body, outcomes = disp.dispatch(b"<methodCall><oops")  # type: ignore[misc]
    fault = codec.loads(body)
    assert isinstance(fault, codec.Fault) and fault.code == codec.NOT_WELLFORMED
    assert outcomes[0].fault == codec.NOT_WELLFORMED


@SETTINGS
@given(st.binary(max_size=200))
def test_the_dispatcher_answers_junk_with_a_fault(junk: bytes) -> None:
    d = Dispatcher()
    body, _ = d.dispatch(junk)  # type: ignore[misc]
    assert isinstance(codec.loads(body), codec.Fault)


def test_registration_mistakes_are_config_errors(disp: Dispatcher) -> None:
    with pytest.raises(ConfigError):
        disp.register(lambda: 1)
    with pytest.raises(ConfigError):
        disp.register(len, "system.len")
    with pytest.raises(ConfigError):
        disp.unregister("nope")


def test_import_function() -> None:
    assert import_function("operator:add")(1, 2) == 3
    for bad in ("operator", "nosuchmodule_xyz:f", "operator:nosuch", "math:pi"):
        with pytest.raises(ConfigError):
            import_function(bad)
