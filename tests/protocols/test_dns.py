"""Tests for lab/protocols/dns/: the codec and its laws, the zones, the
server's answers (kept and made anew), every malformed shape, zone
transfers and the client verbs, in memory."""

from __future__ import annotations

import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab import protocols
from lab.errors import ConfigError
from lab.jail import path_options
from lab.protocols import dns as d
from lab.protocols._base import Role, Transport

SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


def server(**options: object) -> d.DnsServer:
    behaviour = d.SPEC.server(d.SPEC.resolve_options(options))
    behaviour.started()
    return behaviour


def ask(behaviour: d.DnsServer, wire: bytes, *, tcp: bool = False, peer: FakePeer | None = None) -> list[bytes]:
    conn = peer or FakePeer(Transport.TCP if tcp else Transport.UDP)
    return behaviour.answer(wire, tcp, conn) or []


def query(name: str, rdtype: str = "A", *, edns: int | None = 1232, qid: int = 0x1234) -> bytes:
    q = d.make_query(name, rdtype, edns=edns)
    q.id = qid
    return q.to_wire()


def parsed(wire: bytes) -> dns.message.Message:
    return dns.message.from_wire(wire)


# -- the spec and the codec -------------------------------------------------------


def test_spec_is_registered_with_both_transports() -> None:
    """`serve dns` finds it; UDP first (the default), TCP too; the zone file is a jailed path."""
    spec = protocols.get("dns")
    assert spec is d.SPEC
    assert spec.transports == (Transport.UDP, Transport.TCP)
    assert "zone_file" in path_options(spec)


def test_summaries_and_fields_of_a_query_and_its_answer() -> None:
    """A query reads `query A www.lab.test`, its answer `answer NOERROR www.lab.test A 127.0.0.2`."""
    srv = server()
    q = d.DnsMessage.of(query("www.lab.test"))
    assert q.kind == "query" and q.summary() == "query A www.lab.test"
    (reply,) = ask(srv, q.raw)
    a = d.DnsMessage.of(reply)
    assert a.kind == "answer"
    assert a.summary() == "answer NOERROR www.lab.test A 127.0.0.2"
    tree = a.fields()
    assert tree["qr"] == "response" and tree["rcode"] == "NOERROR"
    assert "aa" in tree["flags"] and "ra" not in tree["flags"] and "rd" in tree["flags"]
    assert tree["question"] == [{"name": "www.lab.test", "type": "A", "class": "IN"}]
    assert tree["answer"] == [{"name": "www.lab.test", "ttl": 300, "class": "IN", "type": "A", "data": "127.0.0.2"}]
    assert tree["edns"]["udp_size"] == 1232
    assert "id" in a.volatile
    assert a.values("A") == ["127.0.0.2"]


def test_matches_rcodes_nodata_and_truncation() -> None:
    """`expect d NXDOMAIN` compares the rcode; NODATA and TC have their own words; queries match no rcode."""
    srv = server()
    nx = d.DnsMessage.of(ask(srv, query("nope.lab.test"))[0])
    assert nx.matches("NXDOMAIN") and not nx.matches("NOERROR")
    assert nx.summary() == "answer NXDOMAIN nope.lab.test A"
    assert nx.authority[0].type == "SOA"
    nodata = d.DnsMessage.of(ask(srv, query("www.lab.test", "MX"))[0])
    assert nodata.matches("NOERROR") and nodata.matches("NODATA") and not nodata.matches("NXDOMAIN")
    assert nodata.summary().endswith("(no data)")
    tc = d.DnsMessage.of(ask(srv, query("big.lab.test", "TXT", edns=None))[0])
    assert tc.matches("TC") and tc.truncated and "[truncated]" in tc.summary()
    assert not d.DnsMessage.of(query("www.lab.test")).matches("NOERROR")
    assert nx.matches("nope.lab.test") and nx.matches(b"\x04nope")


def test_a_malformed_message_says_why() -> None:
    """Bytes that are no DNS message decode anyway, with the reason."""
    short = d.DnsMessage.of(b"\x01\x02\x03")
    assert short.kind == "malformed" and "shorter than a 12-byte header" in short.summary()
    cut = d.DnsMessage.of(query("www.lab.test", edns=None)[:-3])
    assert cut.summary().startswith("malformed query:") and cut.problem
    assert "problem" in cut.fields()


def test_tcp_messages_carry_their_length() -> None:
    """Over TCP `raw` is the frame, `wire` the message."""
    wire = query("www.lab.test")
    msg = d.DnsMessage.of(wire, tcp=True)
    assert msg.raw == struct.pack("!H", len(wire)) + wire and msg.wire == wire
    assert msg.fields()["tcp_length"] == len(wire)


# -- the laws -------------------------------------------------------------------------

names = st.from_regex(r"[a-zA-Z0-9*_-]{1,12}(\.[a-zA-Z0-9-]{1,10}){0,3}", fullmatch=True)
rdtypes = st.sampled_from(["A", "AAAA", "MX", "TXT", "SRV", "CNAME", "NS", "SOA", "ANY", "PTR", "CAA"])


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    name = draw(names)
    edns = draw(st.sampled_from([None, 512, 1232, 4096, 65535]))
    q = dns.message.make_query(name, draw(rdtypes), use_edns=0 if edns is not None else False, payload=edns or 512,
                               want_dnssec=draw(st.booleans()))
    q.id = draw(st.integers(0, 65535))
    if draw(st.booleans()):
        q.flags &= ~dns.flags.RD
    if draw(st.booleans()):
        q.flags |= dns.flags.AD | dns.flags.CD
    return q.to_wire()


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6), st.sampled_from(list(Role)))
def test_law_any_stream_decodes_the_same_however_split(laws: ConversationLaws, data: bytes, cuts: list[int],
                                                        sender: Role) -> None:
    """Any bytes over TCP: only RemoteProtocolError escapes, nothing is lost, cuts change nothing."""
    laws.stream(d.SPEC.conversation, sender, data, cuts)


@SETTINGS
@given(st.lists(queries(), min_size=1, max_size=4), st.lists(st.integers(0, 500), max_size=8))
def test_law_framed_queries_come_out_whole(laws: ConversationLaws, wires: list[bytes], cuts: list[int]) -> None:
    """Queries framed for TCP come out one message each, whatever the cuts."""
    msgs = laws.stream(d.SPEC.conversation, Role.CLIENT, b"".join(frame(w) for w in wires), cuts)
    assert [m.wire for m in msgs] == wires  # type: ignore[attr-defined]


@SETTINGS
@given(st.lists(st.binary(max_size=600), max_size=6))
def test_law_every_datagram_is_one_message(laws: ConversationLaws, datagrams: list[bytes]) -> None:
    """Any datagram, even garbage, is one message: the peer's decoding never stops."""
    assert len(laws.datagrams(d.SPEC.conversation, Role.CLIENT, datagrams)) == len(datagrams)


@SETTINGS
@given(st.binary(max_size=600))
def test_law_any_bytes_have_a_summary_and_fields(data: bytes) -> None:
    """The decoded view never raises, whatever the bytes."""
    msg = d.DnsMessage.of(data)
    assert isinstance(msg.summary(), str) and isinstance(msg.fields(), dict)
    assert d.quick_key(data, False) is None or len(data) >= 17


@SETTINGS
@given(queries())
def test_law_a_decoded_query_is_what_dnspython_reads(wire: bytes) -> None:
    """Our view of a query agrees with dnspython: question, flags, EDNS size."""
    msg, ref = d.DnsMessage.of(wire), dns.message.from_wire(wire)
    assert msg.question == ((ref.question[0].name.to_text(omit_final_dot=True) or ".",
                             dns.rdatatype.to_text(ref.question[0].rdtype), "IN"),)
    assert ("rd" in msg.flags) == bool(ref.flags & dns.flags.RD)
    assert (msg.edns is None) == (ref.edns < 0)


@SETTINGS
@given(queries(), st.booleans())
def test_law_a_kept_answer_is_the_answer_made_anew(wire: bytes, tcp: bool) -> None:
    """The cache changes nothing a client can see: the same bytes as the
    slow path for the same query, whatever the ID and the case of the name."""
    cached, fresh = server(), server(cache=False)
    first = ask(cached, wire, tcp=tcp)
    again = bytearray(wire)
    again[0:2] = b"\xbe\xef"
    again[12:] = bytes(again[12:]).swapcase() if d.quick_key(wire, tcp) else bytes(again[12:])
    assert ask(cached, bytes(again), tcp=tcp) == ask(fresh, bytes(again), tcp=tcp)
    assert first == ask(fresh, wire, tcp=tcp)


@SETTINGS
@given(queries())
def test_law_the_key_covers_only_plain_queries(wire: bytes) -> None:
    """A query gets a cache key only if it is one question with no EDNS option."""
    key = d.quick_key(wire, False)
    ref = dns.message.from_wire(wire)
    assert (key is not None) == (len(ref.question) == 1 and not ref.options and len(wire) <= 512)


def test_observer_replays_a_session_over_udp_and_tcp(laws: ConversationLaws, arun: Runner) -> None:
    """An observer of a real exchange (verbs against the server) sees what the two sides saw."""
    for transport in Transport:
        async def main(transport: Transport = transport) -> Loopback:
            lb = Loopback(d.SPEC, transport)
            client = d.DnsClient(lb)
            assert (await client.query("www.lab.test")).values() == ["127.0.0.2"]
            assert (await client.query("nope.lab.test")).rcode == "NXDOMAIN"
            assert (await client.query("alias.lab.test", "A")).values("A") == ["127.0.0.2"]
            return lb

        lb = arun(main())
        laws.observer_replays(d.SPEC.conversation, lb, [1, 3, 17])


# -- the zones ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rdtype", "rcode", "answer"), [
    ("www.lab.test", "A", "NOERROR", ["127.0.0.2"]),
    ("WWW.Lab.Test", "AAAA", "NOERROR", ["::1"]),
    ("lab.test", "MX", "NOERROR", ["10 mail.lab.test."]),
    ("lab.test", "TXT", "NOERROR", ['"netlab demo zone"']),
    ("_http._tcp.lab.test", "SRV", "NOERROR", ["0 5 80 www.lab.test."]),
    ("ftp.lab.test", "A", "NOERROR", ["www.lab.test.", "127.0.0.2"]),
    ("alias.lab.test", "A", "NOERROR", ["ftp.lab.test.", "www.lab.test.", "127.0.0.2"]),
    ("ftp.lab.test", "CNAME", "NOERROR", ["www.lab.test."]),
    ("any.thing.dyn.lab.test", "A", "NOERROR", ["127.0.0.4"]),
    ("dyn.lab.test", "A", "NOERROR", []),  # an empty non-terminal: NODATA, not NXDOMAIN
    ("_tcp.lab.test", "SRV", "NOERROR", []),
    ("nope.lab.test", "A", "NXDOMAIN", []),
    ("x.www.lab.test", "A", "NXDOMAIN", []),
    ("example.com", "A", "REFUSED", []),
    ("test", "A", "REFUSED", []),
])
def test_the_demo_zone_answers(name: str, rdtype: str, rcode: str, answer: list[str]) -> None:
    """Records, CNAME chains, wildcards (RFC 4592), NODATA, NXDOMAIN, REFUSED outside."""
    msg = d.DnsMessage.of(ask(server(), query(name, rdtype))[0])
    assert msg.rcode == rcode and msg.values() == answer
    assert ("aa" in msg.flags) == (rcode != "REFUSED") and "ra" not in msg.flags
    if rcode == "NXDOMAIN" or (rcode == "NOERROR" and not answer):
        (soa,) = msg.authority
        assert soa.type == "SOA" and soa.ttl == 300


def test_wildcard_answers_carry_the_asked_name_and_additional_addresses() -> None:
    """A wildcard answer is owned by the name asked; MX and SRV answers bring their hosts' addresses."""
    msg = d.DnsMessage.of(ask(server(), query("a.b.dyn.lab.test", "TXT"))[0])
    assert msg.answer[0].name == "a.b.dyn.lab.test"
    mx = d.DnsMessage.of(ask(server(), query("lab.test", "MX"))[0])
    assert [(r.name, r.data) for r in mx.additional] == [("mail.lab.test", "127.0.0.3")]


def test_any_gives_every_record_of_the_name() -> None:
    """ANY at the apex: SOA, NS, A, AAAA, MX, TXT."""
    msg = d.DnsMessage.of(ask(server(), query("lab.test", "ANY"))[0])
    assert {r.type for r in msg.answer} == {"SOA", "NS", "A", "AAAA", "MX", "TXT"}


def test_a_cname_loop_in_the_zone_ends() -> None:
    """a -> b -> a: the chain stops instead of looping."""
    srv = server(zone=["loop.test"], record=["a.loop.test CNAME b.loop.test.", "b.loop.test CNAME a.loop.test."])
    msg = d.DnsMessage.of(ask(srv, query("a.loop.test"))[0])
    assert msg.rcode == "NOERROR" and [r.type for r in msg.answer] == ["CNAME", "CNAME"]


def test_zones_from_records_a_mapping_and_a_zone_file(tmp_path: object) -> None:
    """--record lines, a lab file's mapping ('NAME TYPE': VALUE) and a master file all serve."""
    srv = server(record=["www.lab.test A 127.0.0.7", "lab.test MX 5 mx.lab.test."])
    assert d.DnsMessage.of(ask(srv, query("www.lab.test"))[0]).values() == ["127.0.0.7"]
    mapped = d.SPEC.server(d.SPEC.resolve_options({"zone": ["x.test"], "record": {"h.x.test A": "127.0.0.8"}}))
    mapped.started()
    assert d.DnsMessage.of(ask(mapped, query("h.x.test"))[0]).values() == ["127.0.0.8"]
    from pathlib import Path

    path = Path(str(tmp_path)) / "z.zone"
    path.write_text("$ORIGIN file.test.\n$TTL 60\n@ SOA ns hm 7 1 1 1 60\n@ NS ns\nns A 127.0.0.1\n"
                    "host A 127.0.0.5\n")
    filed = server(zone_file=str(path))
    msg = d.DnsMessage.of(ask(filed, query("host.file.test"))[0])
    assert msg.values() == ["127.0.0.5"] and msg.answer[0].ttl == 60
    assert filed.zone.serial() == 7


@pytest.mark.parametrize(("options", "words"), [
    ({"record": ["www.lab.test A"]}, "NAME TYPE VALUE"),
    ({"record": ["www.lab.test BOGUS 1"]}, "unknown record type"),
    ({"record": ["www.lab.test A not-an-address"]}, "not a A record"),
    ({"record": ["www.other.test A 127.0.0.1"]}, "in none of the zones"),
    ({"forward": "192.0.2.1:53"}, "loopback"),
    ({"edns_size": "9000"}, "512"),
])
def test_bad_options_are_refused_plainly(options: dict[str, object], words: str) -> None:
    """Each mistake is one line that says what is wrong."""
    with pytest.raises(ConfigError) as err:
        server(**options)
    assert words in str(err.value)


def test_a_zone_file_without_origin_is_refused(tmp_path: object) -> None:
    """No $ORIGIN: a ConfigError saying to add one."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "z.zone"
    path.write_text("host A 127.0.0.5\n")
    with pytest.raises(ConfigError):
        server(zone_file=str(path))


# -- live edits --------------------------------------------------------------------------


def test_an_edit_is_seen_on_the_next_query_and_bumps_the_serial() -> None:
    """zone.add / zone.remove through srv.zone: the kept answers go, the SOA serial goes up."""
    srv = server()
    before = srv.zone.serial()
    assert d.DnsMessage.of(ask(srv, query("new.lab.test"))[0]).rcode == "NXDOMAIN"
    assert d.DnsMessage.of(ask(srv, query("new.lab.test"))[0]).rcode == "NXDOMAIN"  # now kept
    assert srv.zone.add("new", "A", "127.0.0.9") == before + 1
    assert d.DnsMessage.of(ask(srv, query("new.lab.test"))[0]).values() == ["127.0.0.9"]
    srv.zone.add("new.lab.test", "A", "127.0.0.10", ttl=5)
    msg = d.DnsMessage.of(ask(srv, query("new.lab.test"))[0])
    assert sorted(msg.values()) == ["127.0.0.10", "127.0.0.9"] and msg.answer[0].ttl == 5
    assert srv.zone.remove("new", "A", "127.0.0.9") == 1
    assert d.DnsMessage.of(ask(srv, query("new.lab.test"))[0]).values() == ["127.0.0.10"]
    assert srv.zone.remove("new") == 1
    assert d.DnsMessage.of(ask(srv, query("new.lab.test"))[0]).rcode == "NXDOMAIN"
    assert srv.zone.serial() == before + 4
    soa = d.DnsMessage.of(ask(srv, query("lab.test", "SOA"))[0]).values()[0]
    assert soa.split()[2] == str(before + 4)
    assert "new" not in srv.zone.show()


def test_edits_that_break_the_rules_are_refused() -> None:
    """A CNAME beside other data, the SOA by hand, a name outside the zones."""
    zone = server().zone
    with pytest.raises(ConfigError, match="CNAME"):
        zone.add("www", "CNAME", "mail")
    with pytest.raises(ConfigError, match="CNAME"):
        zone.add("ftp", "A", "127.0.0.1")
    with pytest.raises(ConfigError, match="SOA"):
        zone.add("@", "SOA", "a. b. 1 1 1 1 1")
    with pytest.raises(ConfigError, match="none of the zones"):
        zone.add("www.example.com.", "A", "127.0.0.1")
    assert zone.remove("@", "NS") == 0  # the apex NS stays


def test_edits_from_another_thread_never_show_half_a_zone() -> None:
    """While a thread adds and removes, every answer is whole: the answer
    section matches an A record that was in the zone."""
    srv = server()
    stop = threading.Event()

    def editor() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            srv.zone.add("flip", "A", f"127.0.1.{n % 200}")
            srv.zone.remove("flip")
            n += 1

    worker = threading.Thread(target=editor)
    worker.start()
    try:
        for i in range(3000):
            msg = d.DnsMessage.of(ask(srv, query("flip.lab.test", qid=i))[0])
            assert msg.rcode in ("NOERROR", "NXDOMAIN") and not msg.problem
            assert len(msg.values()) <= 1
    finally:
        stop.set()
        worker.join(30)


# -- EDNS and truncation ------------------------------------------------------------------


def test_edns_sizes_are_clamped_and_tc_set_when_an_answer_does_not_fit() -> None:
    """No EDNS: 512 bytes; EDNS asks between 512 and 4096, within our --edns-size (1232)."""
    srv = server()
    plain = ask(srv, query("big.lab.test", "TXT", edns=None))[0]
    assert len(plain) <= 512 and parsed(plain).flags & dns.flags.TC
    fits = parsed(ask(srv, query("big.lab.test", "TXT", edns=1232))[0])
    assert not fits.flags & dns.flags.TC and len(fits.answer[0]) == 8 and fits.payload == 1232
    tiny = ask(srv, query("big.lab.test", "TXT", edns=100))[0]  # below 512: taken as 512
    assert len(tiny) <= 512 and parsed(tiny).flags & dns.flags.TC
    small = server(edns_size="512")
    assert parsed(ask(small, query("big.lab.test", "TXT", edns=4096))[0]).flags & dns.flags.TC
    over_tcp = parsed(ask(srv, query("big.lab.test", "TXT", edns=None), tcp=True)[0])
    assert not over_tcp.flags & dns.flags.TC and len(over_tcp.answer[0]) == 8


def test_the_do_bit_is_copied_and_edns_version_1_gets_badvers() -> None:
    """RFC 3225 and RFC 6891 §6.1.3."""
    srv = server()
    q = dns.message.make_query("www.lab.test", "A", want_dnssec=True)
    assert parsed(ask(srv, q.to_wire())[0]).ednsflags & dns.flags.DO
    q = dns.message.make_query("www.lab.test", "A", use_edns=1)
    assert parsed(ask(srv, q.to_wire())[0]).rcode() == dns.rcode.BADVERS


# -- malformed queries --------------------------------------------------------------------


def header(qid: int = 7, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QUESTION = b"\x03www\x03lab\x04test\x00\x00\x01\x00\x01"
MALFORMED = {
    "a truncated header": (b"\x00\x07\x01", None),
    "a truncated question": (header() + QUESTION[:-3], "FORMERR"),
    "a compression loop": (header() + b"\xc0\x0c\x00\x01\x00\x01", "FORMERR"),
    "a pointer forward": (header() + b"\xc0\x20\x00\x01\x00\x01", "FORMERR"),
    "giant counts": (header(an=65535, ns=65535, ar=65535) + QUESTION, "FORMERR"),
    "QR=1 as a query": (header(flags=0x8100) + QUESTION, None),
    "opcode NOTIFY": (header(flags=0x2000) + QUESTION, "NOTIMP"),
    "opcode UPDATE": (header(flags=0x2800) + QUESTION, "NOTIMP"),
    "two questions": (header(qd=2) + QUESTION + QUESTION, "FORMERR"),
    "no question": (header(qd=0), "FORMERR"),
    "trailing junk": (header() + QUESTION + b"junk", "FORMERR"),
    "a label over 63": (header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", "FORMERR"),
    "a question for OPT": (header() + b"\x00\x00\x29\x00\x01", "FORMERR"),
}


@pytest.mark.parametrize("shape", MALFORMED)
@pytest.mark.parametrize("transport", list(Transport))
def test_each_malformed_shape_gets_formerr_or_is_dropped_and_the_server_goes_on(shape: str, transport: Transport,
                                                                              make_peer: type[FakePeer]) -> None:
    """FORMERR (NOTIMP for other opcodes) with the ID, or nothing for what
    cannot be answered; an event says so; the next query is answered."""
    wire, rcode = MALFORMED[shape]
    peer = make_peer(transport, spec=d.SPEC)
    srv = server()
    session = open_session(srv, peer)
    tcp = transport is Transport.TCP
    session.message_received(d.DnsMessage.of(wire, tcp=tcp))
    if rcode is None:
        assert peer.writes == []
    else:
        (reply,) = peer.writes
        reply = reply[2:] if tcp else reply
        assert reply[:2] == wire[:2] and reply[2] & 0x80
        assert dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0xF)) == rcode
    assert peer.notes, "an event says what was wrong"
    session.message_received(d.DnsMessage.of(query("www.lab.test"), tcp=tcp))
    assert d.DnsMessage(raw=peer.writes[-1], framed=tcp).values() == ["127.0.0.2"]


# -- zone transfers -------------------------------------------------------------------------


def test_axfr_over_tcp_from_loopback_sends_the_zone_between_two_soas(make_peer: type[FakePeer]) -> None:
    """RFC 5936: SOA first and last, every record between."""
    srv = server()
    replies = ask(srv, query("lab.test", "AXFR", edns=None), tcp=True, peer=make_peer(Transport.TCP))
    records = [r for w in replies for r in d.DnsMessage.of(w).answer]
    assert records[0].type == records[-1].type == "SOA"
    assert len(records) == srv.zone.zone().count() + 1


@pytest.mark.parametrize(("transport", "host", "zone", "rcode"), [
    (Transport.UDP, "127.0.0.1", "lab.test", "REFUSED"),
    (Transport.TCP, "192.0.2.1", "lab.test", "REFUSED"),
    (Transport.TCP, "127.0.0.1", "www.lab.test", "NOTAUTH"),
])
def test_axfr_is_refused_over_udp_beyond_the_allow_list_and_for_other_names(
        transport: Transport, host: str, zone: str, rcode: str, make_peer: type[FakePeer]) -> None:
    """Transfers go over TCP, to allowed addresses, for our zones only."""
    peer = make_peer(transport)
    peer.peer = (host, 5000)
    (reply,) = ask(server(), query(zone, "AXFR", edns=None), tcp=transport is Transport.TCP, peer=peer)
    assert d.DnsMessage.of(reply).rcode == rcode
    assert peer.notes


# -- client verbs ------------------------------------------------------------------------------


def test_verbs_query_and_axfr_over_tcp(arun: Runner) -> None:
    """Over a TCP client: a query, a transfer, on the one connection."""

    async def main() -> None:
        lb = Loopback(d.SPEC, Transport.TCP)
        client = d.DnsClient(lb)
        answer = await client.query("mail.lab.test")
        assert answer.rcode == "NOERROR" and answer.values() == ["127.0.0.3"]
        records = await client.axfr("lab.test")
        assert records[0].type == "SOA" and records[-1].type == "SOA"
        big = await client.query("big.lab.test", "TXT", edns=None)
        assert not big.truncated and len(big.values()) == 8

    arun(main())


def test_verbs_refused_axfr_raises(arun: Runner) -> None:
    """A refused transfer is a DnsError naming the rcode."""

    async def main() -> None:
        lb = Loopback(d.SPEC, Transport.TCP, {"axfr_allow": ["192.0.2.0/24"]})
        with pytest.raises(d.DnsError, match="REFUSED"):
            await d.DnsClient(lb).axfr("lab.test")

    arun(main())


def test_the_mock_refusal_keeps_the_id() -> None:
    """A recording's mock answers an unknown query REFUSED, with its ID and framing."""
    assert d.SPEC.requests is not None
    reply = d.SPEC.requests.refusal(d.DnsMessage.of(query("x.lab.test", qid=99), tcp=True))
    msg = d.DnsMessage.of(reply[2:])
    assert msg.id == 99 and msg.rcode == "REFUSED"


def test_a_repeated_question_over_udp_gets_its_kept_answer_until_the_zone_changes(make_peer: type[FakePeer]) -> None:
    """The session's hottest path (the same bytes, another ID) answers as the slow path does, and an edit ends it."""
    srv = server()
    peer = make_peer(Transport.UDP, spec=d.SPEC)
    session = open_session(srv, peer)
    for qid in (1, 2, 3):
        session.message_received(d.DnsMessage.of(query("www.lab.test", qid=qid)))
    assert srv.cached == 2
    fresh = ask(server(cache=False), query("www.lab.test", qid=3))
    assert peer.writes[-1] == fresh[0]
    srv.zone.add("www", "A", "127.0.0.99")
    session.message_received(d.DnsMessage.of(query("www.lab.test", qid=4)))
    assert sorted(d.DnsMessage.of(peer.writes[-1]).values()) == ["127.0.0.2", "127.0.0.99"]


@SETTINGS
@given(queries())
def test_law_a_query_summarised_by_hand_reads_as_dnspython_has_it(wire: bytes) -> None:
    """The hand-read summary of a plain query is the one the full decode gives."""
    from lab.protocols.dns._codec import _quick_query_summary

    quick = _quick_query_summary(wire)
    assert quick is None or quick == d.DnsMessage.of(wire)._summary()


@SETTINGS
@given(st.binary(min_size=12, max_size=80), st.sampled_from([b"", b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"]))
def test_law_odd_bytes_summarised_by_hand_read_as_dnspython_has_them(head: bytes, opt: bytes) -> None:
    """Whatever the bytes, when the hand reading gives a summary it is dnspython's."""
    from lab.protocols.dns._codec import _quick_query_summary

    wire = head + opt
    quick = _quick_query_summary(wire)
    assert quick is None or quick == d.DnsMessage.of(wire)._summary()


def test_summaries_are_kept_per_message_without_its_id() -> None:
    """The same answer with another ID is summarised once."""
    from lab.protocols.dns import _codec

    srv = server()
    first = d.DnsMessage.of(ask(srv, query("mail.lab.test", qid=1))[0])
    assert first.summary() == "answer NOERROR mail.lab.test A 127.0.0.3"
    assert first.wire[2:] in _codec._SUMMARIES
    again = d.DnsMessage.of(ask(srv, query("mail.lab.test", qid=2))[0])
    assert again.summary() == first.summary() and again._view is None  # not decoded at all


def test_an_intercept_may_edit_id_rcode_flags_and_answer() -> None:
    """edited() makes the message anew from changed fields; a bad value is a LocalProtocolError."""
    from lab.errors import LocalProtocolError

    answer = d.DnsMessage.of(ask(server(), query("www.lab.test", qid=5))[0], tcp=True)
    lied = answer.edited(rcode="NXDOMAIN", flags=["aa"], id=6)
    assert lied.framed and lied.id == 6 and lied.rcode == "NXDOMAIN" and lied.flags == ("aa",)
    moved = answer.edited(answer=["www.lab.test 60 A 127.0.0.66"])
    assert moved.values() == ["127.0.0.66"] and moved.answer[0].ttl == 60
    with pytest.raises(LocalProtocolError):
        answer.edited(rcode="LOUDLY")
    with pytest.raises(LocalProtocolError):
        answer.edited(question="x")
