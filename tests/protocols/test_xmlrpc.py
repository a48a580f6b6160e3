"""Tests for lab/protocols/xmlrpc: the codec (every type both ways, against
the standard library's marshaller too, junk and hostile XML refused with
a fault code), the dispatcher (system.* methods, multicall, faults), the
conversation and messages in memory, the server and client verbs
through a loopback, and the server on real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import xmlrpc.client as xmlrpc_client
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, Loopback, Runner

from lab.errors import ConfigError, RemoteProtocolError
from lab.protocols import xmlrpc
from lab.protocols._base import Role, Transport
from lab.protocols.xmlrpc import _codec as codec
from lab.protocols.xmlrpc._dispatch import Dispatcher, demo_functions, import_function
from lab.protocols.xmlrpc._messages import XmlRpcCall, XmlRpcReply

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


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(XML_TEXT, inner, max_size=4), max_leaves=20).filter(
    lambda v: _depth(v) <= codec.MAX_NESTING)
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
    theirs, method = xmlrpc_client.loads(codec.dumps_call("echo", params), use_builtin_types=True)
    assert (list(theirs), method) == (params, "echo")
    ours = codec.loads(xmlrpc_client.dumps(tuple(params), "echo", allow_none=True).encode())
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


def test_the_deepest_value_we_send_is_one_we_read() -> None:
    """Nesting is capped when sending as the parser caps it when reading."""
    value: Any = "core"
    for _ in range(codec.MAX_NESTING):
        value = [value]
    for doc in (codec.dumps_call("m", [value]), codec.dumps_response(value), codec.dumps_response({"k": value[0]})):
        codec.loads(doc)
    with pytest.raises(ValueError, match="nested deeper"):
        codec.dumps_response([value])


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
        raise xmlrpc_client.Fault(4, "too picky")

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


# -- messages and the conversation -------------------------------------------------------------


def _post(body: bytes, target: str = "/RPC2") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
            % (target.encode(), len(body))) + body


def _reply(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_a_call_and_its_reply_decode_as_xmlrpc() -> None:
    """Summary, kind and fields speak XML-RPC, beside the HTTP head's;
    expect matches the method, the status and fault codes."""
    conv = xmlrpc.SPEC.conversation(None, Transport.TCP)
    (_, call), = conv.observe(_post(codec.dumps_call("add", [1, {"k": b"\x00"}])), Role.CLIENT)
    assert isinstance(call, XmlRpcCall) and call.summary() == "XML-RPC call add(1, {k: <1 bytes>})"
    assert call.kind == "add" and call.matches("add") and call.matches("POST")
    assert call.fields()["params"] == [1, {"k": 'base64: 1 bytes "\\x00"'}]
    assert call.fields()["target"] == "/RPC2" and call.fields()["method"] == "POST"
    (_, reply), = conv.observe(_reply(codec.dumps_fault(-32601, "no such method")), Role.SERVER)
    assert isinstance(reply, XmlRpcReply) and reply.fault
    assert reply.summary() == "XML-RPC fault -32601: no such method"
    assert reply.matches(-32601) and reply.matches("fault") and reply.matches(200) and "date" not in reply.volatile


def test_a_call_that_does_not_decode_keeps_its_problem() -> None:
    conv = xmlrpc.SPEC.conversation(None, Transport.TCP)
    (_, call), = conv.observe(_post(b"<methodCall><methodName>x"), Role.CLIENT)
    assert isinstance(call, XmlRpcCall) and call.fault_code == codec.NOT_WELLFORMED
    assert "undecodable" in call.summary()


def test_field_trees_are_bounded() -> None:
    """A call with 2,000 values and a long string shows a bounded tree."""
    conv = xmlrpc.SPEC.conversation(None, Transport.TCP)
    big = codec.dumps_call("echo", [list(range(2_000)), "x" * 5_000])
    (_, call), = conv.observe(_post(big), Role.CLIENT)
    tree = call.fields()["params"]
    assert len(tree[0]) <= 201 and len(tree[1]) < 300
    assert len(call.summary()) < 200


def test_a_call_over_64k_stays_plain_http() -> None:
    conv = xmlrpc.SPEC.conversation(None, Transport.TCP)
    got = conv.observe(_post(codec.dumps_call("echo", ["x" * 70_000])), Role.CLIENT)
    assert not any(isinstance(m, XmlRpcCall) for _, m in got)


_CALL_BITS = [_post(codec.dumps_call("add", [1, 2])), _post(codec.dumps_call("echo", [[None, 1.5, "é"]])),
              _post(b"<methodCall>"), _post(b"junk"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n", b"\xff"]
_REPLY_BITS = [_reply(codec.dumps_response(3)), _reply(codec.dumps_fault(1, "x")), _reply(b"<oops"),
               b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", b"junk"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_CALL_BITS) | st.binary(max_size=10), max_size=8).map(b"".join),
       cuts=st.lists(st.integers(0, 2000), max_size=8), eof=st.booleans())
def test_call_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Client bytes split anywhere, received, sent or observed: only protocol
    errors, exact bytes, the same messages."""
    laws.stream(xmlrpc.SPEC.conversation, Role.CLIENT, data, cuts, eof=eof)


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=8), max_size=6).map(b"".join),
       cuts=st.lists(st.integers(0, 1500), max_size=8), eof=st.booleans())
def test_reply_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    def after_posts(role: Role | None, transport: Transport) -> Any:
        conv = xmlrpc.SPEC.conversation(role, transport)
        for _ in range(6):  # what the replies answer
            if role is Role.SERVER:
                conv.receive_data(_post(b"x"))
                conv.next_message()
            elif role is Role.CLIENT:
                conv.send_data(_post(b"x"))
                conv.take_sent()
            else:
                conv.observe(_post(b"x"), Role.CLIENT)
        return conv

    laws.stream(after_posts, Role.SERVER, data, cuts, eof=eof)


# -- the server and client, in memory ---------------------------------------------------------------


def test_client_verbs_against_the_server(loopback: type[Loopback], arun: Runner, laws: ConversationLaws) -> None:
    """call, multicall, the introspection verbs and the proxy, over one
    connection; an observer replaying the transcript sees the same."""

    async def main() -> Loopback:
        lb = loopback(xmlrpc.SPEC)
        c = xmlrpc.XmlRpcClient(lb)
        assert await c.call("add", 40, 2) == 42
        assert await c.call("echo", {"when": dt.datetime(2026, 12, 4, 15, 0)}) == {
            "when": dt.datetime(2026, 12, 4, 15, 0)}
        got = await c.multicall([("add", (1, 2)), ("nope", ())])
        assert got[0] == 3 and isinstance(got[1], codec.XmlRpcFault) and got[1].code == codec.METHOD_NOT_FOUND
        assert "add" in await c.list_methods()
        assert await c.method_help("upper") == "The text in capitals."
        assert await c.method_signature("add") == [["int", "int", "int"]]
        with pytest.raises(codec.XmlRpcFault) as err:
            await c.call("divide", 1, 0)
        assert err.value.code == codec.APPLICATION_ERROR
        proxy = xmlrpc.Proxy(_Async(c), asynchronous=True)
        assert await proxy.upper("abc") == "ABC"
        assert "system.multicall" in await proxy.system.listMethods()
        return lb

    lb = arun(main())
    assert [m.summary() for m in lb.seen[Role.SERVER]][:2] == ["XML-RPC call add(40, 2)",
                                                               "XML-RPC call echo({when: 20261204T15:00:00})"]
    assert any(n.startswith("XML-RPC fault -32500 for divide") for n in lb.peer.notes)
    laws.observer_replays(xmlrpc.SPEC.conversation, lb, [5, 100, 1000])


class _Async:
    """A client's verbs as the lab offers them to a proxy (acall)."""

    def __init__(self, verbs: Any) -> None:
        self.acall = verbs.call


def test_functions_registered_from_another_thread(loopback: type[Loopback], arun: Runner) -> None:
    """srv.register from the shell's thread takes effect on the next call."""
    import threading

    async def main() -> None:
        lb = loopback(xmlrpc.SPEC, options={"demo": "no"})
        c = xmlrpc.XmlRpcClient(lb)
        assert await c.list_methods() == ["system.listMethods", "system.methodHelp", "system.methodSignature",
                                          "system.multicall"]

        def shell() -> None:
            @lb.behaviour.register
            def square(x: int) -> int:
                """x times x."""
                return x * x

        t = threading.Thread(target=shell)
        t.start()
        t.join()
        assert await c.call("square", 7) == 49
        lb.behaviour.unregister("square")
        with pytest.raises(codec.XmlRpcFault):
            await c.call("square", 7)

    arun(main())


def test_functions_from_options_and_refused_ones(loopback: type[Loopback], arun: Runner) -> None:
    async def main() -> None:
        lb = loopback(xmlrpc.SPEC, options={"functions": {"plus": "operator:add", "neg": "operator:neg"}})
        c = xmlrpc.XmlRpcClient(lb)
        assert await c.call("plus", 2, 2) == 4 and await c.call("neg", 3) == -3
        assert "add" not in await c.list_methods()  # no demo functions beside given ones

    arun(main())
    with pytest.raises(ConfigError):
        xmlrpc.SPEC.server(xmlrpc.SPEC.resolve_options({"functions": ["x=nosuchmodule_q:f"]}))


def test_get_lists_the_methods_and_other_verbs_get_405(loopback: type[Loopback], arun: Runner) -> None:
    async def main() -> None:
        lb = loopback(xmlrpc.SPEC)
        c = xmlrpc.XmlRpcClient(lb)
        page = await c.get("/RPC2")
        assert page.status == 200 and "add  The sum of two numbers." in page.text
        assert (await c.request("PUT", "/RPC2", b"x")).status == 405
        assert (await c.get("/hello")).status == 404  # HTTP's demo pages are not on an XML-RPC server

    arun(main())


def test_async_functions_and_the_path_option(loopback: type[Loopback], arun: Runner) -> None:
    async def later(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 10

    async def main() -> None:
        lb = loopback(xmlrpc.SPEC, options={"rpc_path": ["/api"]})
        lb.behaviour.register(later)
        c = xmlrpc.XmlRpcClient(lb)
        c.set_options(xmlrpc.XmlRpcClientOptions(path="/api"))
        assert await c.call("later", 2) == 20
        c.path = "/RPC2"
        with pytest.raises(RemoteProtocolError, match="404"):
            await c.call("later", 2)

    arun(main())


def test_an_oversized_call_is_a_fault(loopback: type[Loopback], arun: Runner) -> None:
    """A call over --max-body: a fault and an event, and the connection
    closes (the rest of the body is not read); another client is served."""

    async def main() -> None:
        for size in (5000, 100_000):  # whole, and still streaming
            lb = loopback(xmlrpc.SPEC, options={"max_body": "2K"})
            c = xmlrpc.XmlRpcClient(lb)
            with pytest.raises(codec.XmlRpcFault, match="larger than the server takes") as err:
                await c.call("echo", "x" * size)
            assert err.value.code == codec.INVALID_XMLRPC
            await lb.wait_closed()
            assert any("refused (-32600)" in n for n in lb.peer.notes)

    arun(main())


# -- lab files and safe mode ---------------------------------------------------------------------

LAB_FILE = """name: functions
lab:
  rpc:
    protocol: {protocol}
    options:
      functions: {{plus: "operator:add"}}
"""


@pytest.mark.parametrize("protocol", ["xmlrpc", "soap"])
def test_safe_mode_refuses_functions_with_the_place_in_the_file(tmp_path: Any, protocol: str) -> None:
    """functions name Python to import and run: refused under --safe, at the
    key's line; a trusted file loads."""
    import re

    from lab.errors import ScenarioError
    from lab.scenarios import load_file

    path = tmp_path / "functions.yaml"
    path.write_text(LAB_FILE.format(protocol=protocol), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_file(path, safe=True)
    text = str(info.value)
    assert re.match(rf"{re.escape(str(path))}:6:\d+: ", text), text
    assert "functions" in text and "safe mode refuses" in text
    assert load_file(path) is not None


def test_a_client_offers_its_proxy(lab: Any) -> None:
    """c.proxy.add(1, 2) on a lab client: the verbs' shell names reach the Client."""
    srv = lab.serve("xmlrpc")
    c = lab.connect("xmlrpc", srv)
    assert c.proxy.add(1, 2) == 3
    assert "system.multicall" in c.proxy.system.listMethods()
    assert "proxy" in dir(c)
    with pytest.raises(codec.XmlRpcFault):
        c.proxy.nope()
    with pytest.raises(AttributeError):
        _ = c.exchange
