"""Tests for lab/protocols/soap: XML Schema values both ways, envelopes
and faults, WSDL written from annotations and read back (ours, and
shapes other toolkits write), junk refused with a fault code; then the
server and client through a loopback and on real sockets."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, Loopback, Runner

from lab.errors import ConfigError
from lab.protocols import soap
from lab.protocols._base import Role, Transport
from lab.protocols.soap import _envelope as env
from lab.protocols.soap._schema import Complex, Field, SchemaError, decode_sequence, encode_field, field_for
from lab.protocols.soap._wsdl import Service, WsdlError, dumps_wsdl, loads_wsdl, operation_for
from lab.protocols.xmlrpc._xml import parse_xml

SETTINGS = settings(deadline=None, max_examples=150)
NS = "urn:netlab:test"

XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters=[chr(c) for c in range(0x20) if c not in (9, 10, 13)]
                                 + ["\ufffe", "\uffff"]), max_size=30)
SIMPLE = {
    "long": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "double": st.floats(allow_nan=False),
    "string": XML_TEXT,
    "boolean": st.booleans(),
    "base64Binary": st.binary(max_size=30),
    "dateTime": st.datetimes(min_value=dt.datetime(1, 1, 1)),
}


def _round_trip(fields: tuple[Field, ...], value: dict[str, Any]) -> Any:
    out: list[str] = []
    wrapper = Field("op", Complex("", fields), ns=NS)
    encode_field(wrapper, value, out)
    return decode_sequence(parse_xml("".join(out).encode()), fields)


@SETTINGS
@given(st.data())
def test_simple_types_and_lists_round_trip(data: st.DataObject) -> None:
    """Each simple type, alone, repeated and nillable, comes back equal."""
    kinds = data.draw(st.lists(st.sampled_from(sorted(SIMPLE)), min_size=1, max_size=4))
    fields, value = [], {}
    for i, kind in enumerate(kinds):
        shape = data.draw(st.sampled_from(["one", "list", "optional"]))
        if shape == "one":
            fields.append(Field(f"f{i}", kind, ns=NS))
            value[f"f{i}"] = data.draw(SIMPLE[kind])
        elif shape == "list":
            fields.append(Field(f"f{i}", kind, 0, None, ns=NS))
            value[f"f{i}"] = data.draw(st.lists(SIMPLE[kind], max_size=3))
        else:
            fields.append(Field(f"f{i}", kind, 0, 1, True, ns=NS))
            value[f"f{i}"] = data.draw(st.none() | SIMPLE[kind])
    assert _round_trip(tuple(fields), value) == value


def test_infinities_and_nan_have_xsd_spellings() -> None:
    got = _round_trip((Field("x", "double", 0, None, ns=NS),), {"x": [math.inf, -math.inf]})
    assert got == {"x": [math.inf, -math.inf]}
    nan = _round_trip((Field("x", "double", ns=NS),), {"x": math.nan})
    assert math.isnan(nan["x"])


def test_array_wrapper_types_take_and_give_plain_lists() -> None:
    """spyne's integerArray, .NET's ArrayOfInt: a list in, a list out."""
    array = Complex("integerArray", (Field("integer", "integer", 0, None, True, NS),))
    assert _round_trip((Field("xs", array, ns=NS),), {"xs": [1, 2, 3]}) == {"xs": [1, 2, 3]}


@pytest.mark.parametrize(("kind", "value"), [("long", "1"), ("boolean", 1), ("string", b"x"), ("double", "x"),
                                              ("string", "nul\x00")])
def test_values_of_the_wrong_type_are_refused(kind: str, value: Any) -> None:
    with pytest.raises(SchemaError):
        encode_field(Field("x", kind), value, [])


@pytest.mark.parametrize(
    ("xml", "words"),
    [
        (b"<op><x>abc</x></op>", "not an integer"),
        (b"<op><y>1</y></op>", "unexpected element"),
        (b"<op/>", "lacks <x>"),
        (b"<op><x>1</x><x>2</x></op>", "more than once"),
    ],
)
def test_elements_that_do_not_fit_are_schema_errors(xml: bytes, words: str) -> None:
    with pytest.raises(SchemaError, match=words):
        decode_sequence(parse_xml(xml), (Field("x", "long"),))


def test_annotations_to_fields() -> None:
    assert field_for("a", int) == Field("a", "long")
    assert field_for("a", list[float]) == Field("a", "double", 0, None)
    assert field_for("a", str | None) == Field("a", "string", 0, 1, True)
    assert field_for("a", bytes).type == "base64Binary"
    with pytest.raises(SchemaError):
        field_for("a", dict)
    with pytest.raises(SchemaError):
        field_for("a", list[list[int]])


# -- envelopes ------------------------------------------------------------------------------


def test_an_envelope_round_trips_with_header_and_body() -> None:
    data = env.dumps_envelope(f'<add xmlns="{NS}"><a>1</a></add>', header=f'<t xmlns="{NS}">x</t>')
    got = env.loads_envelope(data)
    assert got.operation == "add" and got.fault is None
    assert [h.tag for h in got.headers] == [f"{{{NS}}}t"]


@SETTINGS
@given(st.sampled_from(env.FAULT_CODES), XML_TEXT, st.none() | XML_TEXT.filter(lambda t: t.strip() == t and t))
def test_faults_round_trip(code: str, text: str, detail: str | None) -> None:
    got = env.loads_envelope(env.dumps_fault(code, text, detail)).fault
    assert got is not None
    assert (got.code, got.string, got.detail) == (code, text, detail)


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"<x/>", "Client", "expected a SOAP <Envelope>"),
        (b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>', "VersionMismatch",
         "SOAP 1.2"),
        (f'<Envelope xmlns="{env.SOAP_ENV}"/>'.encode(), "Client", "no <Body>"),
        (b"<Envelope", "Client", "not well-formed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "Client", "DTD"),
    ],
)
def test_what_is_not_an_envelope_gets_a_fault_code(data: bytes, code: str, words: str) -> None:
    with pytest.raises(env.SoapDecodeError, match=words) as err:
        env.loads_envelope(data)
    assert err.value.code == code


def test_must_understand_headers_are_listed() -> None:
    data = env.dumps_envelope("<x/>", header=f'<t xmlns="{NS}" xmlns:s="{env.SOAP_ENV}" s:mustUnderstand="1"/>')
    assert env.loads_envelope(data).must_understand() == ["t"]


@SETTINGS
@given(st.binary(max_size=300))
def test_junk_gives_a_decode_error_never_a_crash(junk: bytes) -> None:
    with pytest.raises(env.SoapDecodeError):
        env.loads_envelope(junk)


# -- WSDL ---------------------------------------------------------------------------------------


def add(a: int, b: int) -> int:
    """The sum."""
    return a + b


def stats(xs: list[float], label: str | None = None) -> list[str]:
    return []


def ping() -> None:
    """Nothing back."""


def test_our_wsdl_reads_back_as_the_same_service() -> None:
    ops = {f.__name__: operation_for(f, f.__name__, NS) for f in (add, stats, ping)}
    service = Service("Lab", NS, "http://127.0.0.1:8080/soap", ops)
    back = loads_wsdl(dumps_wsdl(service))
    assert back == service


def test_a_function_without_an_xml_form_is_refused() -> None:
    def bad(x: dict[str, int]) -> int:
        return 0

    def star(*xs: int) -> int:
        return 0

    for fn in (bad, star):
        with pytest.raises(WsdlError):
            operation_for(fn, fn.__name__, NS)


SPYNE_STYLE = b"""<?xml version='1.0'?>
<wsdl:definitions xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
 xmlns:s11="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tns="spyne.lab" targetNamespace="spyne.lab">
<wsdl:types><xs:schema targetNamespace="spyne.lab" elementFormDefault="qualified">
<xs:complexType name="integerArray"><xs:sequence>
<xs:element name="integer" type="xs:integer" minOccurs="0" maxOccurs="unbounded" nillable="true"/>
</xs:sequence></xs:complexType>
<xs:complexType name="mean"><xs:sequence><xs:element name="xs" type="tns:integerArray" minOccurs="0" nillable="true"/>
</xs:sequence></xs:complexType>
<xs:complexType name="meanResponse"><xs:sequence>
<xs:element name="meanResult" type="xs:double" minOccurs="0" nillable="true"/></xs:sequence></xs:complexType>
<xs:element name="mean" type="tns:mean"/><xs:element name="meanResponse" type="tns:meanResponse"/>
</xs:schema></wsdl:types>
<wsdl:message name="mean"><wsdl:part name="mean" element="tns:mean"/></wsdl:message>
<wsdl:message name="meanResponse"><wsdl:part name="meanResponse" element="tns:meanResponse"/></wsdl:message>
<wsdl:service name="S"><wsdl:port name="App" binding="tns:App"><s11:address location="http://127.0.0.1/"/>
</wsdl:port></wsdl:service>
<wsdl:portType name="App"><wsdl:operation name="mean"><wsdl:input message="tns:mean"/>
<wsdl:output message="tns:meanResponse"/></wsdl:operation></wsdl:portType>
<wsdl:binding name="App" type="tns:App"><s11:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
<wsdl:operation name="mean"><s11:operation soapAction="mean" style="document"/></wsdl:operation></wsdl:binding>
</wsdl:definitions>"""


def test_a_wsdl_with_named_types_and_array_wrappers() -> None:
    """The shape spyne writes: element -> named complexType -> array type."""
    service = loads_wsdl(SPYNE_STYLE)
    op = service.operations["mean"]
    assert (service.name, service.location, op.action) == ("S", "http://127.0.0.1/", "mean")
    (xs,) = op.inputs
    assert isinstance(xs.type, Complex) and xs.type.array_of is not None
    assert op.outputs[0].name == "meanResult"


@pytest.mark.parametrize("data", [b"<definitions/>", b"not xml",
                                  b'<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>'])
def test_what_is_not_a_usable_wsdl_is_a_wsdl_error(data: bytes) -> None:
    with pytest.raises(WsdlError):
        loads_wsdl(data)


# -- the server and client, in memory ---------------------------------------------------------------


def _post(body: bytes, target: str = "/soap") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nSOAPAction: \"add\"\r\n"
            b"Content-Length: %d\r\n\r\n" % (target.encode(), len(body))) + body


def _call(op: str, inner: str, ns: str = "urn:netlab:soap") -> bytes:
    return env.dumps_envelope(f'<{op} xmlns="{ns}">{inner}</{op}>')


def test_client_verbs_against_the_server(loopback: type[Loopback], arun: Runner, laws: ConversationLaws) -> None:
    """The client reads the WSDL and calls by name with keywords, typed both
    ways; faults raise; an observer replaying the transcript sees the same."""

    async def main() -> Loopback:
        lb = loopback(soap.SPEC)
        c = soap.SoapClient(lb)
        ops = await c.operations()
        assert ops["add"] == ["a", "b"] and ops["split"] == ["text", "sep"]
        assert await c.call("add", a=2, b=40) == 42
        assert await c.call("total", values=[1.5, 2.5]) == 4.0
        assert await c.call("split", text="a b") == ["a", "b"]
        assert await c.call("reverse", data=b"\x00\x01") == b"\x01\x00"
        assert isinstance(await c.call("now"), dt.datetime)
        with pytest.raises(env.SoapFault) as err:
            await c.call("divide", a=1.0, b=0.0)
        assert err.value.code == "Server" and "ZeroDivisionError" in err.value.string
        with pytest.raises(ConfigError, match="no operation"):
            await c.call("nope")
        with pytest.raises(ConfigError, match="takes no 'c'"):
            await c.call("add", a=1, c=2)
        return lb

    lb = arun(main())
    summaries = [m.summary() for m in lb.seen[Role.SERVER]]
    assert "SOAP add(a='2', b='40')" in summaries
    assert any(n.startswith("SOAP fault Server for divide") for n in lb.peer.notes)
    laws.observer_replays(soap.SPEC.conversation, lb, [5, 100, 1000])


def test_operations_registered_live_appear_in_the_wsdl(loopback: type[Loopback], arun: Runner) -> None:
    async def main() -> None:
        lb = loopback(soap.SPEC, options={"demo": "no"})
        c = soap.SoapClient(lb)
        assert await c.operations() == {}

        @lb.behaviour.register
        def greet(name: str, times: int = 1) -> list[str]:
            """Hello, several times."""
            return [f"hello {name}"] * times

        assert "greet" in await c.load_wsdl()
        assert await c.call("greet", name="bob", times=2) == ["hello bob", "hello bob"]
        assert await c.call("greet", name="al") == ["hello al"]  # the default fills a missing optional
        with pytest.raises(ConfigError, match="annotate"):
            lb.behaviour.register(_bad_op)

    arun(main())


def _bad_op(x: dict[str, int]) -> int:
    return 0


def test_calling_without_a_wsdl_given_the_namespace(loopback: type[Loopback], arun: Runner) -> None:
    async def main() -> None:
        lb = loopback(soap.SPEC)
        c = soap.SoapClient(lb)
        c.set_options(soap.SoapClientOptions(namespace="urn:netlab:soap"))
        assert await c.call("upper", text="abc") == "ABC"
        assert await c.call("add", a=1, b=2) == "3"  # untyped: the text

    arun(main())


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"<oops", "Client", "not well-formed"),
        (_call("nope", ""), "Client", "no operation 'nope'"),
        (_call("add", "<a>1</a><b>x</b>"), "Client", "<b>: 'x' is not an integer"),
        (_call("add", "<a>1</a>"), "Client", "lacks <b>"),
        (_call("add", "<a>1</a><b>2</b>", ns="urn:other"), "Client", "namespace"),
        (b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>', "VersionMismatch",
         "SOAP 1.2"),
        (env.dumps_envelope("<x/>", header=f'<t xmlns="urn:x" xmlns:s="{env.SOAP_ENV}" s:mustUnderstand="1"/>'),
         "MustUnderstand", "'t'"),
        (env.dumps_envelope(""), "Client", "no operation"),
    ],
)
def test_bad_requests_get_the_right_fault(loopback: type[Loopback], arun: Runner, body: bytes, code: str,
                                          words: str) -> None:
    async def main() -> None:
        lb = loopback(soap.SPEC)
        c = soap.SoapClient(lb)
        result = await c.request("POST", "/soap", body, [("Content-Type", "text/xml")])
        assert result.status == 500
        fault = env.loads_envelope(result.body).fault
        assert fault is not None and fault.code == code and words in fault.string
        assert await c.call("add", a=1, b=1) == 2  # and the connection goes on

    arun(main())


def test_get_describes_the_service(loopback: type[Loopback], arun: Runner) -> None:
    async def main() -> None:
        lb = loopback(soap.SPEC)
        c = soap.SoapClient(lb)
        page = await c.get("/soap")
        assert page.status == 200 and "add(a, b)  The sum of two integers." in page.text
        wsdl = await c.get("/soap?wsdl")
        service = loads_wsdl(wsdl.body)
        assert service.location == "http://localhost/soap" and "add" in service.operations

    arun(main())


def test_the_decoded_view_of_requests_and_replies() -> None:
    conv = soap.SPEC.conversation(None, Transport.TCP)
    (_, req), = conv.observe(_post(_call("add", "<a>1</a><b>2</b>")), Role.CLIENT)
    assert isinstance(req, soap.SoapRequest) and req.kind == "add" and req.action == "add"
    assert req.summary() == "SOAP add(a='1', b='2')" and req.matches("add")
    fault = env.dumps_fault("Client", "no")
    reply_bytes = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % len(fault) + fault
    (_, reply), = conv.observe(reply_bytes, Role.SERVER)
    assert isinstance(reply, soap.SoapReply) and reply.summary() == "SOAP fault Client: no"
    assert reply.matches("Client") and reply.matches(500) and reply.fields()["fault"]["faultcode"] == "Client"


_SOAP_BITS = [_post(_call("add", "<a>1</a><b>2</b>")), _post(b"<oops"), _post(b"x"),
              b"GET /soap?wsdl HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n", b"\xff"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_SOAP_BITS) | st.binary(max_size=10), max_size=8).map(b"".join),
       cuts=st.lists(st.integers(0, 2000), max_size=8), eof=st.booleans())
def test_request_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    laws.stream(soap.SPEC.conversation, Role.CLIENT, data, cuts, eof=eof)


def _answer(server: Any, body: bytes) -> Any:
    from lab.protocols.http import HttpRequest

    return server.answer(HttpRequest(method="POST", target="/soap", path="/soap", query="", headers=[("Host", "x")],
                                     body=body))


@SETTINGS
@given(st.binary(max_size=300) | st.sampled_from([b"", b"<", _call("add", "<a>1</a><b>2</b>")]), st.data())
def test_the_server_answers_junk_and_damaged_envelopes_with_a_fault(body: bytes, data: st.DataObject) -> None:
    """Any bytes, or a good envelope damaged anywhere: a 200 answer or a 500
    fault envelope, never an exception."""
    server = soap.SPEC.server(soap.SPEC.resolve_options({}))
    doc = bytearray(body)
    for _ in range(data.draw(st.integers(0, 3))):
        if not doc:
            break
        at = data.draw(st.integers(0, len(doc) - 1))
        doc[at:at + data.draw(st.integers(0, 5))] = data.draw(st.sampled_from([b"", b"<", b"&", b"<b>", b"\x00"]))
    response = _answer(server, bytes(doc))
    assert response.status in (200, 500)
    parsed = env.loads_envelope(response.body)
    assert (response.status == 500) == (parsed.fault is not None)


NAMES = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True)
FIELDS = st.lists(st.builds(lambda name, kind, shape: Field(name, kind, *shape, ns=NS), NAMES,
                            st.sampled_from([*sorted(SIMPLE), "date", "int", "hexBinary"]),
                            st.sampled_from([(1, 1, False), (0, None, False), (0, 1, True)])),
                  max_size=4, unique_by=lambda f: f.name)


@SETTINGS
@given(st.dictionaries(NAMES, st.tuples(FIELDS, FIELDS.map(lambda fs: fs[:1])), min_size=1, max_size=4),
       XML_TEXT.filter(lambda t: t.strip() == t))
def test_any_service_reads_back_from_its_wsdl(ops: dict[str, Any], doc: str) -> None:
    """Operations of any simple, repeated or optional fields: the WSDL
    written for them reads back as the same service."""
    from lab.protocols.soap._wsdl import Operation

    operations = {name: Operation(name, NS, name, name, tuple(inputs), f"{name}Response", tuple(outputs),
                                  doc, NS, NS)
                  for name, (inputs, outputs) in ops.items() if f"{name}Response" not in ops}
    service = Service("Svc", NS, "http://127.0.0.1:1/soap", operations)
    assert loads_wsdl(dumps_wsdl(service)) == service


_REPLY_BITS = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(b) + b
               for b in (env.dumps_envelope(f'<addResponse xmlns="{NS}"><addResult>3</addResult></addResponse>'),
                         env.dumps_fault("Client", "no"), b"<oops")] + [b"junk", b"\r\n"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=8), max_size=6).map(b"".join),
       cuts=st.lists(st.integers(0, 1500), max_size=8), eof=st.booleans())
def test_reply_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    def after_posts(role: Role | None, transport: Transport) -> Any:
        conv = soap.SPEC.conversation(role, transport)
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
