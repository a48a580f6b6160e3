"""Tests for lab/protocols/socks: requests and replies in memory, the
conversation (held bytes, the tunnel decoded as the destination's
protocol) under the laws, the allow list and 4a names, and the server on
real sockets: tunnels, refusals with 91 and an event, hostile input,
BIND, back-pressure, and the client verbs."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, split_at

from lab import Lab
from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import socks
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import Data
from lab.protocols.socks import (
    Phase,
    Policy,
    SocksCommand,
    SocksConversation,
    SocksRefused,
    SocksReply,
    SocksRequest,
    Undecoded,
    parse_allow,
)

SETTINGS = settings(deadline=None, max_examples=150)


def request_bytes(port: int, ip: bytes = b"\x7f\0\0\x01", user: bytes = b"", host: bytes | None = None,
                  command: int = 1) -> bytes:
    raw = bytes([4, command]) + port.to_bytes(2, "big") + ip + user + b"\0"
    return raw if host is None else raw + host + b"\0"


# -- messages ---------------------------------------------------------------------------------


def test_a_socks4_request_is_built_and_decoded_alike() -> None:
    """IPv4 destination: SOCKS 4, the user id NUL-terminated; decoding the
    bytes gives the same fields."""
    req = SocksRequest.of("connect", "127.0.0.1", 25, "bob")
    assert req.raw == b"\x04\x01\x00\x19\x7f\x00\x00\x01bob\x00"
    (got,) = SocksConversation(Role.SERVER).feed(req.raw)
    assert got == req and got.kind == "CONNECT" and not got.socks4a
    assert got.summary() == 'CONNECT 127.0.0.1:25 (SOCKS 4) user "bob"'
    assert got.fields() == {"version": 4, "command": "1 (CONNECT)", "port": 25, "address": "127.0.0.1",
                            "user": "bob"}
    assert "port" in got.volatile


def test_a_host_name_makes_a_socks4a_request() -> None:
    """A name: DSTIP 0.0.0.1 and the name after the user id."""
    req = SocksRequest.of(SocksCommand.CONNECT, "localhost", 80)
    assert req.raw == b"\x04\x01\x00\x50\x00\x00\x00\x01\x00localhost\x00"
    (got,) = SocksConversation(Role.SERVER).feed(req.raw)
    assert got.socks4a and got.host == "localhost" and got.address == "0.0.0.1"
    assert got.summary() == "CONNECT localhost:80 (SOCKS 4a)"


@pytest.mark.parametrize(("host", "port", "user"), [("::1", 80, ""), ("127.0.0.1", 70000, ""),
                                                    ("127.0.0.1", 1, "a\0b"), ("x" * 300, 1, ""), ("", 1, "")])
def test_requests_the_wire_cannot_carry_are_refused_locally(host: str, port: int, user: str) -> None:
    """IPv6, a bad port, a NUL in a field, an overlong name: LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        SocksRequest.of("CONNECT", host, port, user)


def test_replies_name_their_code() -> None:
    """90 to 93 with their meaning; expect matches the code, and granted/rejected."""
    reply = SocksReply.of(91)
    assert reply.raw == b"\x00\x5b" + b"\0" * 6
    assert reply.summary() == "91 request rejected or failed"
    assert reply.matches(91) and reply.matches("91") and reply.matches("rejected") and not reply.matches(90)
    assert SocksReply.of(90, 1080, "127.0.0.1").summary() == "90 request granted 127.0.0.1:1080"
    assert SocksReply.of(92).fields()["code"] == "92 (rejected: no identd on the client)"
    assert {"port", "address"} <= SocksReply.of(90).volatile


# -- the conversation -------------------------------------------------------------------------


def test_the_clients_bytes_wait_for_the_reply_and_then_are_the_destinations_protocol() -> None:
    """Pipelined bytes after a request are held until the grant; then, for
    port 25, they are SMTP commands, and SMTP replies come back."""
    conv = SocksConversation(None)
    found = conv.observe(request_bytes(25) + b"EHLO x\r\n", Role.CLIENT)
    assert [type(m).__name__ for _, m in found] == ["SocksRequest"]
    assert conv.phase is Phase.REPLY and conv.buffered(Role.CLIENT) == 8
    found = conv.observe(SocksReply.of(90).raw + b"220 ready\r\n", Role.SERVER)
    assert [(side, m.summary()) for side, m in found] == [
        (Role.SERVER, "90 request granted"), (Role.CLIENT, "EHLO x"), (Role.SERVER, "220 ready")]
    assert conv.inner_name == "smtp" and conv.granted


def test_a_refusal_ends_the_conversation() -> None:
    """After 91 nothing more may be said: bytes from the client are an error."""
    conv = SocksConversation(Role.SERVER)
    conv.feed(request_bytes(80, ip=b"\x0a\x01\x02\x03"))
    conv.send(SocksReply.of(91))
    assert conv.phase is Phase.REFUSED
    with pytest.raises(RemoteProtocolError, match="after the request was refused"):
        conv.feed(b"GET / HTTP/1.0\r\n\r\n")


def test_bind_takes_two_replies() -> None:
    """BIND: the first grant says where the server listens, the second
    opens the tunnel."""
    conv = SocksConversation(Role.CLIENT)
    conv.send(SocksRequest.of("BIND", "127.0.0.1", 20))
    (first,) = conv.feed(SocksReply.of(90, 4000, "127.0.0.1").raw)
    assert conv.phase is Phase.REPLY and first.port == 4000
    (second,) = conv.feed(SocksReply.of(90, 20, "127.0.0.1").raw)
    assert conv.phase is Phase.RELAY and second.granted


@pytest.mark.parametrize(("data", "problem"), [
    (b"\x05\x01\x00", "version 5 is not SOCKS 4"),
    (b"\x04\x03\x00\x50", "unknown command 3"),
    (b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 2000, "request longer than 1024 bytes"),
    (b"\x04\x01\x00\x50\x00\x00\x00\x01\x00" + b"h" * 2000, "the host name has no NUL"),
    (b"\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00", "empty host name"),
])
def test_hostile_requests_are_protocol_errors(data: bytes, problem: str) -> None:
    """A bad version or command, an unterminated user id or host name past
    the cap, an empty 4a name: RemoteProtocolError, at once."""
    with pytest.raises(RemoteProtocolError, match=problem):
        SocksConversation(Role.SERVER).feed(data)


def test_a_request_cut_short_is_an_error_at_the_end_of_the_stream() -> None:
    conv = SocksConversation(Role.SERVER)
    assert conv.feed(b"\x04\x01\x00") == []
    with pytest.raises(RemoteProtocolError, match="cut short after 3 bytes"):
        conv.feed(b"")


def test_a_tunnel_that_stops_decoding_goes_on_as_plain_chunks() -> None:
    """Bytes the destination's protocol refuses become an Undecoded chunk,
    then plain Data: nothing is lost and nothing raises."""
    conv = SocksConversation(None, choose=lambda request: "pop3")
    conv.observe(request_bytes(110), Role.CLIENT)
    conv.observe(SocksReply.of(90).raw, Role.SERVER)
    garbage = b"x" * 70_000  # longer than any POP3 reply line
    found = conv.observe(garbage, Role.SERVER) + conv.observe(b"tail", Role.SERVER)
    msgs = [m for _, m in found]
    assert isinstance(msgs[0], Undecoded) and msgs[0].protocol == "pop3"
    assert all(isinstance(m, Data) for m in msgs[1:])
    assert b"".join(m.raw for m in msgs) == garbage + b"tail"
    assert Role.SERVER in conv.tunnel_problems


def test_a_tunnel_decodes_as_the_protocol_the_client_names() -> None:
    """decode= on the request (never on the wire) picks the protocol; raw picks none."""
    conv = SocksConversation(Role.CLIENT)
    conv.send(SocksRequest.of("CONNECT", "127.0.0.1", 4242, decode="smtp"))
    assert conv.feed(SocksReply.of(90).raw + b"220 hi\r\n")[1].summary() == "220 hi"
    conv = SocksConversation(Role.CLIENT)
    conv.send(SocksRequest.of("CONNECT", "127.0.0.1", 25, decode="raw"))
    assert isinstance(conv.feed(SocksReply.of(90).raw + b"220 hi\r\n")[1], Data)


def primed(port: int) -> Callable[[Role | None, Transport], SocksConversation]:
    """Conversations already past a granted request to ``port``."""

    def make(role: Role | None, transport: Transport) -> SocksConversation:
        conv = SocksConversation(role, transport)
        conv.track(Role.CLIENT, SocksRequest.of("CONNECT", "127.0.0.1", port))
        conv.track(Role.SERVER, SocksReply.of(90))
        return conv

    return make


@SETTINGS
@given(sender=st.sampled_from(Role), data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400)))
def test_law_any_bytes_from_either_side(laws: ConversationLaws, sender: Role, data: bytes, cuts: list[int]) -> None:
    """Anything, from either side, before a request: only RemoteProtocolError,
    nothing lost, splitting changes nothing."""
    laws.stream(SocksConversation, sender, data, cuts)


@SETTINGS
@given(port=st.integers(1, 65535), user=st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")),
       host=st.one_of(st.none(), st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\0", b"a"))),
       tail=st.binary(max_size=100), cuts=st.lists(st.integers(0, 300)))
def test_law_requests_then_anything(laws: ConversationLaws, port: int, user: bytes, host: bytes | None,
                                    tail: bytes, cuts: list[int]) -> None:
    """A well-formed request (4 or 4a) then any bytes: one request, the
    rest held for the reply."""
    ip = b"\0\0\0\x07" if host is not None else b"\x7f\0\0\x01"
    msgs = laws.stream(SocksConversation, Role.CLIENT, request_bytes(port, ip, user, host) + tail, cuts)
    assert isinstance(msgs[0], SocksRequest) and msgs[0].port == port and len(msgs) == 1


@SETTINGS
@given(sender=st.sampled_from(Role), port=st.sampled_from([25, 110, 119, 7, 6667, 4242]),
       data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400)))
def test_law_the_tunnel_keeps_every_byte(laws: ConversationLaws, sender: Role, port: int, data: bytes,
                                         cuts: list[int]) -> None:
    """In the tunnel, decoded as SMTP, POP3, NNTP, echo, IRC or not at
    all: only RemoteProtocolError, and every byte accounted for."""
    laws.stream(primed(port), sender, data, cuts, framed=False)


SMTP_TRANSCRIPT = [
    (Role.CLIENT, request_bytes(25, user=b"alice")),
    (Role.SERVER, SocksReply.of(90, 25, "127.0.0.1").raw + b"220 lab.test ESMTP\r\n"),
    (Role.CLIENT, b"EHLO x\r\nMAIL FROM:<a@lab.test>\r\n"),
    (Role.SERVER, b"250-lab.test\r\n250 PIPELINING\r\n250 ok\r\n"),
    (Role.CLIENT, b"RCPT TO:<b@lab.test>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"),
    (Role.SERVER, b"250 ok\r\n354 go on\r\n250 queued\r\n"),
    (Role.CLIENT, b"QUIT\r\n"),
    (Role.SERVER, b"221 bye\r\n"),
]


@SETTINGS
@given(cuts=st.lists(st.integers(0, 200)))
def test_law_an_observer_sees_the_same_however_the_transcript_is_cut(cuts: list[int]) -> None:
    """A SOCKS session carrying SMTP, split anywhere, decodes to the same
    messages on each side (the message after DATA released by 354)."""

    def observe(pieces_of: Callable[[bytes], list[bytes]]) -> dict[Role, list[Message]]:
        conv = SocksConversation(None)
        seen: dict[Role, list[Message]] = {Role.CLIENT: [], Role.SERVER: []}
        for sender, chunk in SMTP_TRANSCRIPT:
            for piece in pieces_of(chunk):
                for side, msg in conv.observe(piece, sender):
                    seen[side].append(msg)
        return seen

    whole = observe(lambda chunk: [chunk])
    assert observe(lambda chunk: split_at(chunk, cuts)) == whole
    assert [m.summary() for m in whole[Role.CLIENT]][:3] == [
        'CONNECT 127.0.0.1:25 (SOCKS 4) user "alice"', "EHLO x", "MAIL FROM:<a@lab.test>"]
    assert any("message" in m.summary() for m in whole[Role.CLIENT])


# -- the policy ---------------------------------------------------------------------------------


def test_the_allow_list_parses_networks_and_ports() -> None:
    rules = parse_allow("127.0.0.0/8, 10.0.0.0/8:80,192.0.2.7:8000-8080")
    assert [str(r) for r in rules] == ["127.0.0.0/8", "10.0.0.0/8:80", "192.0.2.7/32:8000-8080"]


@pytest.mark.parametrize("text", ["", "::1/128", "10.0.0.0/8:0", "10.0.0.0/8:99999", "nonsense",
                                  "10.0.0.0/8:90-80", "127.0.0.1,,", "10.0.0.0/8:http"])
def test_a_bad_allow_list_is_a_config_error(text: str) -> None:
    """Validated when the server starts, with the option's name and an example."""
    with pytest.raises(ConfigError, match="socks: --allow"):
        socks.SPEC.resolve_options({"allow": text})


def test_options_validate_hosts_and_decode() -> None:
    opts = socks.SPEC.resolve_options({"lab_host": ["mail.lab.test=127.0.0.2"], "decode": ["2525=smtp", "pop3"]})
    assert opts.lab_host == (("mail.lab.test", "127.0.0.2"),)
    assert opts.decode == ((2525, "smtp"), (0, "pop3"))
    for bad in ({"lab_host": "x=example.com"}, {"decode": "gopherish"}, {"decode": "99999=smtp"},
                {"max_request": "4"}):
        with pytest.raises(ConfigError):
            socks.SPEC.resolve_options(bad)


def decide(policy: Policy, data: bytes) -> tuple[str | None, str]:
    (req,) = SocksConversation(Role.SERVER).feed(data)
    verdict = policy.decide(req)
    return verdict.address, verdict.reason


def test_by_default_only_loopback_is_reached() -> None:
    """Never an open proxy: 10.1.2.3, 0.0.0.0, broadcast and port 0 are refused;
    127.x is granted."""
    policy = Policy()
    assert decide(policy, request_bytes(80))[0] == "127.0.0.1"
    assert decide(policy, request_bytes(80, ip=b"\x7f\x05\x06\x07"))[0] == "127.5.6.7"
    for ip in (b"\x0a\x01\x02\x03", b"\0\0\0\0", b"\xff\xff\xff\xff", b"\xc0\xa8\x01\x01"):
        address, reason = decide(policy, request_bytes(80, ip=ip))
        assert address is None and reason
    assert decide(policy, request_bytes(0))[0] is None


def test_4a_names_resolve_only_in_the_lab() -> None:
    """localhost and --lab-host names resolve; anything else is refused without DNS;
    a name that resolves outside the allow list is refused too."""
    policy = Policy(hosts=[("mail.lab.test", "127.0.0.9"), ("far.lab.test", "10.0.0.1")])
    assert decide(policy, request_bytes(25, b"\0\0\0\1", host=b"localhost"))[0] == "127.0.0.1"
    assert decide(policy, request_bytes(25, b"\0\0\0\1", host=b"MAIL.lab.test."))[0] == "127.0.0.9"
    assert decide(policy, request_bytes(25, b"\0\0\0\1", host=b"127.0.0.3"))[0] == "127.0.0.3"
    address, reason = decide(policy, request_bytes(25, b"\0\0\0\1", host=b"example.com"))
    assert address is None and "does not resolve 'example.com'" in reason
    address, reason = decide(policy, request_bytes(25, b"\0\0\0\1", host=b"far.lab.test"))
    assert address is None and "not in the allow list" in reason


def test_ports_users_and_bind_rules() -> None:
    policy = Policy(allow=parse_allow("127.0.0.0/8:25"), users=["alice"], bind=False)
    assert decide(policy, request_bytes(25, user=b"alice"))[0] == "127.0.0.1"
    assert "not in the allow list" in decide(policy, request_bytes(80, user=b"alice"))[1]
    assert "user id 'bob'" in decide(policy, request_bytes(25, user=b"bob"))[1]
    assert "BIND is turned off" in decide(policy, request_bytes(25, user=b"alice", command=2))[1]


# -- the server, on real sockets -----------------------------------------------------------------


class Destination:
    """A plain TCP server on loopback in a thread: echoes, or sends ``greeting`` first."""

    def __init__(self, greeting: bytes = b"", echo: bool = True) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.greeting, self.echo = greeting, echo
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                while self.echo and (data := conn.recv(65536)):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def dest() -> Iterator[Destination]:
    d = Destination()
    yield d
    d.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_until_closed(sock: socket.socket, limit: int = 1 << 16) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def events(lab: Lab, name: str, kind: EventKind) -> list[str]:
    return [e.text or e.summary or "" for e in lab.log.query(EventFilter(endpoint=name, kinds=frozenset({kind})))]


def test_a_tunnel_relays_both_ways_and_the_log_decodes_it(lab: Lab, dest: Destination) -> None:
    """CONNECT with a user id: 90, then the destination's echo; the log shows
    the request, the reply and the relayed chunks."""
    srv = lab.serve("socks", name="sx")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port, user=b"bob") + b"early")
        reply = recv_exactly(s, 8)
        assert reply[:2] == b"\x00\x5a" and int.from_bytes(reply[2:4], "big") == dest.port
        assert recv_exactly(s, 5) == b"early"
        s.sendall(b"later")
        assert recv_exactly(s, 5) == b"later"
    wait_until(lambda: not srv.connections, what="the tunnel to close")
    msgs = events(lab, "sx", EventKind.MESSAGE)
    assert msgs[:2] == [f'CONNECT 127.0.0.1:{dest.port} (SOCKS 4) user "bob"', "90 request granted"
                        f" 127.0.0.1:{dest.port}"]
    assert '"early"' in msgs and '"later"' in msgs


@pytest.mark.parametrize(("request_", "why"), [
    (request_bytes(80, ip=b"\x0a\x01\x02\x03"), "10.1.2.3:80 is not in the allow list"),
    (request_bytes(80, ip=b"\0\0\0\0"), "0.0.0.0 is not a host"),
    (request_bytes(80, ip=b"\0\0\0\1", host=b"www.example.com"), "does not resolve 'www.example.com'"),
    (request_bytes(80, ip=b"\0\0\0\1", host=b"far.lab.test"), "far.lab.test (10.0.0.1):80 is not in the allow list"),
])
def test_refusals_answer_91_and_log_why(lab: Lab, request_: bytes, why: str) -> None:
    """Not an open proxy: 91, the connection closed, an error event with the
    reason (a 4a name the lab knows, but outside the allow list, too)."""
    srv = lab.serve("socks", name="sx", lab_host=["far.lab.test=10.0.0.1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_)
        assert recv_until_closed(s) == SocksReply.of(91).raw
    wait_until(lambda: any(why in t for t in events(lab, "sx", EventKind.ERROR)), what="the refusal event")


def test_a_destination_that_refuses_gets_91(lab: Lab) -> None:
    """Nobody listening at an allowed address: 91 and why."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        srv = lab.serve("socks", name="sx")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            s.sendall(request_bytes(port))
            assert recv_until_closed(s) == SocksReply.of(91).raw
    wait_until(lambda: any("cannot reach" in t for t in events(lab, "sx", EventKind.ERROR)), what="the event")


@pytest.mark.parametrize(("data", "half_close", "answer", "why"), [
    (b"\x04\x01\x00\x50\x7f\0\0\x01" + b"u" * 5000, False, SocksReply.of(91).raw, "request longer than 1024"),
    (b"\x05\x01\x00", False, SocksReply.of(91).raw, "version 5 is not SOCKS 4"),
    (b"\x04\x01\x00\x50\x7f", True, SocksReply.of(91).raw, "cut short after 5 bytes"),
    (request_bytes(80, ip=b"\x0a\0\0\x01") + b"garbage after" * 100, False, SocksReply.of(91).raw,
     "not in the allow list"),
])
def test_hostile_clients_get_a_reply_or_a_close_and_an_event(lab: Lab, dest: Destination, data: bytes,
                                                             half_close: bool, answer: bytes, why: str) -> None:
    """Oversized user id, bad version, a truncated request, garbage after a
    refusal: 91 and a close, an error event, and the server still serves."""
    srv = lab.serve("socks", name="sx")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        assert recv_until_closed(s) == answer  # what it sent after is read and dropped: no reset
    wait_until(lambda: any(why in t for t in events(lab, "sx", EventKind.ERROR)), what="the event")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port) + b"ok")
        assert recv_exactly(s, 10)[8:] == b"ok"


def test_bind_listens_for_the_host_named_and_relays(lab: Lab) -> None:
    """BIND: 90 with where it listens; the named host connects there; a
    second 90; then both ways, as FTP's active data connection would."""
    srv = lab.serve("socks", name="sx")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(20, command=2))
        first = recv_exactly(s, 8)
        assert first[:2] == b"\x00\x5a"
        port = int.from_bytes(first[2:4], "big")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as back:
            second = recv_exactly(s, 8)
            assert second[:2] == b"\x00\x5a" and second[4:] == b"\x7f\0\0\x01"
            back.sendall(b"from the far side")
            assert recv_exactly(s, 17) == b"from the far side"
            s.sendall(b"and back")
            assert recv_exactly(back, 8) == b"and back"


def test_bind_from_another_host_is_refused(lab: Lab) -> None:
    """The connection back must come from the address in the request."""
    srv = lab.serve("socks", name="sx")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(20, ip=b"\x7f\0\0\x05", command=2))
        port = int.from_bytes(recv_exactly(s, 8)[2:4], "big")
        with socket.create_connection(("127.0.0.1", port), timeout=30):
            assert recv_until_closed(s) == SocksReply.of(91).raw
    wait_until(lambda: any("came from 127.0.0.1, not 127.0.0.5" in t
                           for t in events(lab, "sx", EventKind.ERROR)), what="the event")


def test_a_slow_reader_holds_the_destination_back(lab: Lab) -> None:
    """Back-pressure: a destination sending 64 MiB to a client that does not
    read is held back once the buffers fill, the relay holding little;
    then everything arrives."""
    total = 64 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KiB
    sent = [0]
    sink = socket.create_server(("127.0.0.1", 0))

    def produce() -> None:
        conn, _ = sink.accept()
        with conn:
            while sent[0] < total:
                conn.sendall(block)
                sent[0] += len(block)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    srv = lab.serve("socks", name="sx", capture="off")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(sink.getsockname()[1]))
        assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
        seen: list[int] = []

        def stalled() -> bool:
            seen.append(sent[0])
            return len(seen) > 50 and seen[-1] > 0 and len(set(seen[-50:])) == 1

        wait_until(stalled, timeout=60, what="the producer to be held back")
        assert sent[0] < total // 4  # held back by the kernel's buffers, not filling ours
        (tunnel,) = srv._listener.relay.tunnels
        transport = tunnel.legs[Role.CLIENT].transport
        assert transport.get_write_buffer_size() <= 1024 * 1024
        received = 0
        while received < total:
            chunk = s.recv(1 << 20)
            assert chunk, "closed early"
            received += len(chunk)
        assert received == total
    thread.join(30)
    sink.close()


# -- the client verbs ----------------------------------------------------------------------------


def test_the_client_tunnels_and_then_talks_raw(lab: Lab, dest: Destination) -> None:
    """connect() (4 for an address, 4a for a name) returns the grant; then
    send/expect go through the tunnel."""
    srv = lab.serve("socks", name="sx")
    c = lab.connect("socks", srv)
    reply = c.connect("localhost", dest.port, user="carol")
    assert reply.code == 90
    c.send(b"ping\r\n")
    assert c.expect(b"ping").raw == b"ping\r\n"
    assert any("(SOCKS 4a) user \"carol\"" in t for t in events(lab, "sx", EventKind.MESSAGE))


def test_a_refused_client_raises_with_the_code(lab: Lab) -> None:
    srv = lab.serve("socks", name="sx")
    c = lab.connect("socks", srv)
    with pytest.raises(SocksRefused) as caught:
        c.connect("10.9.8.7", 80)
    assert caught.value.code == 91


def test_the_client_speaks_smtp_through_the_tunnel(lab: Lab) -> None:
    """talk() runs SMTP's own verbs through the tunnel; the server's log
    shows the SMTP messages decoded (a lab SMTP server listens there)."""
    mx = lab.serve("smtp", name="mx")
    srv = lab.serve("socks", name="sx")
    c = lab.connect("socks", srv)
    c.connect("127.0.0.1", mx.port)
    with pytest.raises(LocalProtocolError, match="decoded as plain bytes, not smtp"):
        c.talk("smtp", "noop")  # the client cannot know the port is the lab's SMTP server
    c = lab.connect("socks", srv)
    c.connect("127.0.0.1", mx.port, decode="smtp")
    c.talk("smtp", "send_mail", "a@lab.test", ["alice@lab.test"], "Subject: via socks\r\n\r\nhello\r\n")
    wait_until(lambda: any(t.startswith("250 2.0.0") for t in events(lab, "sx", EventKind.MESSAGE)),
               what="the mail accepted")
    msgs = events(lab, "sx", EventKind.MESSAGE)
    assert any(t.startswith("MAIL FROM:<a@lab.test>") for t in msgs)
    assert any(t.startswith("250") for t in msgs)


def test_decode_names_the_tunnels_protocol_over_the_lab_servers(lab: Lab, dest: Destination) -> None:
    """--decode PORT=raw shows a lab SMTP server's tunnel as chunks; --decode
    PORT=smtp decodes a foreign server's."""
    mx = lab.serve("smtp", name="mx")
    smtpish = Destination(greeting=b"220 far ESMTP\r\n", echo=False)
    try:
        srv = lab.serve("socks", name="sx", decode=[f"{mx.port}=raw", f"{smtpish.port}=smtp"])
        for port in (mx.port, smtpish.port):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
                s.sendall(request_bytes(port))
                assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
                assert recv_exactly(s, 4) == b"220 "
        wait_until(lambda: any(t == "220 far ESMTP" for t in events(lab, "sx", EventKind.MESSAGE)), what="smtp")
        assert any(t.startswith('"220 lab.test') for t in events(lab, "sx", EventKind.MESSAGE))
    finally:
        smtpish.close()


def test_a_safe_mode_lab_keeps_tunnels_to_loopback(tmp_path: Any) -> None:
    """--safe: an allow list or a 4a name beyond 127.0.0.0/8 is refused
    before the server starts; loopback rules are taken."""
    from lab.jail import Jail

    with Lab.start() as lab:
        lab.jail = Jail([tmp_path])
        for options in ({"allow": "10.0.0.0/8"}, {"allow": ["127.0.0.0/8", "0.0.0.0/0:80"]},
                        {"lab_host": ["far.lab.test=192.0.2.1"]}):
            with pytest.raises(ConfigError, match="beyond loopback"):
                lab.serve("socks", **options)
        srv = lab.serve("socks", allow="127.0.0.0/8:25,127.0.0.2", lab_host=["mx.lab.test=127.0.0.3"])
        assert srv.port


def test_the_connection_cap_and_the_idle_limit(lab: Lab, dest: Destination) -> None:
    """max_connections refuses the one too many (an event); a tunnel silent
    for --idle seconds is closed (an event); stopping the server closes
    the tunnels it holds."""
    srv = lab.serve("socks", name="sx", max_connections=1, idle=0.5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port))
        assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as extra:
            assert recv_until_closed(extra) == b""
        wait_until(lambda: any("1 connections already open" in t for t in events(lab, "sx", EventKind.ERROR)),
                   what="the cap's event")
        assert recv_until_closed(s) == b""  # idle: closed by the server
    wait_until(lambda: any("idle for 0.5 s" in t for t in events(lab, "sx", EventKind.ERROR)), what="idle")
    srv2 = lab.serve("socks", name="sy")
    with socket.create_connection(("127.0.0.1", srv2.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port))
        assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
        wait_until(lambda: len(srv2.connections) == 1, what="the tunnel listed")
        srv2.stop()
        assert recv_until_closed(s) == b""
    assert not srv2._listener


def test_a_destination_that_does_not_read_holds_the_client_back(lab: Lab) -> None:
    """Back-pressure the other way: a client sending to a destination that
    reads nothing is stopped once buffers fill, with little held by us."""
    sink = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(sink.accept()[0]), daemon=True)
    thread.start()
    srv = lab.serve("socks", name="sx", capture="off")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            s.sendall(request_bytes(sink.getsockname()[1]))
            assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
            s.setblocking(False)
            sent, block = 0, b"x" * 65536
            for _ in range(2000):  # at most 128 MiB
                try:
                    sent += s.send(block)
                except BlockingIOError:
                    break
            assert sent < 64 * 1024 * 1024, "nothing held the client back"
            (tunnel,) = srv._listener.relay.tunnels
            assert tunnel.legs[Role.SERVER].transport.get_write_buffer_size() <= 1024 * 1024
            thread.join(10)
            (conn,) = accepted
            conn.settimeout(30)
            received = 0
            s.setblocking(True)
            while received < sent:
                chunk = conn.recv(1 << 20)
                assert chunk
                received += len(chunk)
            assert received == sent
    finally:
        for conn in accepted:
            conn.close()
        sink.close()


def test_bind_through_the_client_verbs(lab: Lab) -> None:
    """bind() returns where the server listens; accept() the caller; then
    the tunnel works both ways."""
    srv = lab.serve("socks", name="sx")
    c = lab.connect("socks", srv)
    first = c.bind("127.0.0.1", 20, decode="raw")
    with socket.create_connection((first.address, first.port), timeout=30) as back:
        second = c.accept(timeout=30)
        assert second.granted and second.address == "127.0.0.1"
        back.sendall(b"called back\r\n")
        assert c.expect(b"called back").raw == b"called back\r\n"
        c.send(b"hello caller\r\n")
        assert recv_exactly(back, 14) == b"hello caller\r\n"


def test_a_decoder_that_breaks_costs_the_log_its_decoding_not_the_tunnel(lab: Lab, dest: Destination,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the destination protocol's decoder (not a protocol error):
    an error event, the bytes still relayed and logged as chunks."""
    from lab.protocols.socks import _conversation

    def broken(name: str, transport: Transport) -> Any:
        class Broken(SocksConversation):
            def next_message(self, sender: Role | None = None) -> Message | None:
                raise ZeroDivisionError("a decoder bug")

        return Broken(None, transport)

    monkeypatch.setattr(_conversation, "_inner_conversation", broken)
    srv = lab.serve("socks", name="sx", decode=["echo"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port))
        assert recv_exactly(s, 8)[:2] == b"\x00\x5a"
        s.sendall(b"still relayed")
        assert recv_exactly(s, 13) == b"still relayed"
    wait_until(lambda: any("a decoder bug" in t for t in events(lab, "sx", EventKind.ERROR)), what="the event")
    assert '"still relayed"' in events(lab, "sx", EventKind.MESSAGE)


@SETTINGS
@given(text=st.text(alphabet="0123456789./:,- abcdef", max_size=40))
def test_law_the_allow_list_parser_says_yes_or_why_not(text: str) -> None:
    """Any text: rules whose networks are IPv4 and ports in range, or a
    ValueError (which the option turns into a one-line ConfigError)."""
    try:
        rules = parse_allow(text)
    except ValueError as exc:
        assert str(exc).startswith("wants ")
        return
    assert rules and all(1 <= r.low <= r.high <= 65535 and r.network.version == 4 for r in rules)


def test_a_port_that_is_no_number_is_a_clear_error(lab: Lab) -> None:
    srv = lab.serve("socks", name="sx")
    c = lab.connect("socks", srv)
    with pytest.raises(LocalProtocolError, match="a port is a number"):
        c.connect("localhost", "smtp")


def test_a_slow_request_holds_no_slot(lab: Lab, dest: Destination) -> None:
    """A client that sends half a request and waits is closed after
    --request-timeout, with an event; a quick one is served meanwhile."""
    srv = lab.serve("socks", name="sx", request_timeout=0.5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as slow:
        slow.sendall(b"\x04\x01\x00")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as quick:
            quick.sendall(request_bytes(dest.port) + b"hi")
            assert recv_exactly(quick, 10)[8:] == b"hi"
        assert recv_until_closed(slow) == b""
    wait_until(lambda: any("no whole request within 0.5 s (3 bytes came)" in t
                           for t in events(lab, "sx", EventKind.ERROR)), what="the event")


def test_a_netlab_proxy_in_front_sees_what_the_server_saw(lab: Lab) -> None:
    """The observer on real sockets: a proxy between our client and our
    server decodes the request and the reply as the server's log has them,
    and every byte of the tunnel after (as chunks: unlike the server, the
    proxy cannot know a lab SMTP server listens there)."""
    mx = lab.serve("smtp", name="mx")
    sx = lab.serve("socks", name="sx")
    px = lab.proxy("socks", sx, name="px")
    c = lab.connect("socks", px)
    c.connect("127.0.0.1", mx.port, user="gina", decode="smtp")
    c.talk("smtp", "send_mail", "gina@lab.test", ["alice@lab.test"], "Subject: seen twice\r\n\r\nhi\r\n")
    c.talk("smtp", "quit")
    wait_until(lambda: not sx.connections and not px.connections, what="both to close")

    def said(name: str, direction: str) -> list[bytes]:
        return [e.raw or b"" for e in lab.log.query(EventFilter(endpoint=name, kinds=frozenset({EventKind.MESSAGE})))
                if e.direction.value == direction]

    for direction in ("in", "out"):
        assert said("px", direction)[0] == said("sx", direction)[0]
        assert b"".join(said("px", direction)) == b"".join(said("sx", direction))
    assert said("sx", "in")[1:4] == [b"EHLO " + said("sx", "in")[1][5:], b"MAIL FROM:<gina@lab.test> SIZE=27\r\n",
                                     b"RCPT TO:<alice@lab.test>\r\n"]


def test_a_hundred_hostile_clients_leave_the_server_serving(lab: Lab, dest: Destination) -> None:
    """Random bytes, random cuts, abrupt closes from 100 clients: every one
    is answered or closed, nothing raises, and a good client is served."""
    import random

    rng = random.Random(4)
    # random requests may name any port: only the test's own destination is allowed
    srv = lab.serve("socks", name="sx", request_timeout=5, allow=f"127.0.0.1:{dest.port}")
    for _ in range(100):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
        if rng.random() < 0.5:
            junk = b"\x04" + junk  # past the version byte, into the fields
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            try:
                s.sendall(junk)
                if rng.random() < 0.5:
                    s.shutdown(socket.SHUT_WR)
                    recv_until_closed(s)
            except OSError:
                pass  # hung up on mid-send: as good as an answer
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(request_bytes(dest.port) + b"fine")
        assert recv_exactly(s, 12)[8:] == b"fine"
    assert not any("raised" in t or "Traceback" in t for t in events(lab, "sx", EventKind.ERROR))
    wait_until(lambda: len(srv.connections) <= 1, what="the hostile ones gone")


def test_the_well_known_ports_agree_with_the_protocols() -> None:
    """Each well-known port names a protocol whose default port it is (or
    one not written yet); once loaded, every protocol's port is known, and
    a port two protocols claim decodes as neither."""
    from lab.protocols import names
    from lab.protocols.socks import _conversation

    ports = _conversation.load_ports()
    for port, name in _conversation.WELL_KNOWN.items():
        assert name not in names() or ports.get(port) == name, (port, name)
    assert _conversation.protocol_for_port(25) == "smtp" and _conversation.protocol_for_port(4242) is None
    assert "socks" not in ports.values()


@SETTINGS
@given(command=st.sampled_from([1, 2]), port=st.integers(0, 65535), ip=st.binary(min_size=4, max_size=4),
       user=st.binary(max_size=20).map(lambda b: b.replace(b"\0", b"")),
       host=st.one_of(st.none(), st.sampled_from([b"localhost", b"LOCALHOST.", b"mx.lab.test", b"127.9.9.9",
                                                   b"10.0.0.1", b"example.com", b"0.0.0.0", b"::1"])))
def test_law_never_an_open_proxy(command: int, port: int, ip: bytes, user: bytes, host: bytes | None) -> None:
    """Whatever the request, a grant is an address inside the allow list
    (loopback by default), never 0.0.0.0, and a CONNECT never to port 0."""
    import ipaddress

    if host is not None:
        ip = b"\0\0\0\x01"
    elif ip[:3] == b"\0\0\0":
        ip = b"\0\0\0\0"  # 0.0.0.x would say a 4a name follows
    policy = Policy(hosts=[("mx.lab.test", "127.0.0.25")])
    (req,) = SocksConversation(Role.SERVER).feed(request_bytes(port, ip, user, host, command))
    verdict = policy.decide(req)
    if verdict.granted:
        assert verdict.address is not None
        address = ipaddress.IPv4Address(verdict.address)
        assert address in ipaddress.IPv4Network("127.0.0.0/8") and not address.is_unspecified
        assert command == 2 or port != 0
    else:
        assert verdict.reason
