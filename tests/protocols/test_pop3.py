"""Tests for lab/protocols/pop3: the messages and the conversation in memory
(which replies carry a body, long bodies in parts, both sides and an
observer), the three states of RFC 1939 and every command's replies,
locking, deletion only at QUIT, the client verbs against our server
(a RETR of megabytes among them), and hostile input on real sockets."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab import Lab
from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import pop3
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import STREAM_ABOVE, BodyEnd, BodyPart
from lab.protocols.pop3 import Pop3Command, Pop3Reply
from lab.services import Services
from lab.services.mail import MAIL_STORE, MailStore

SETTINGS = settings(deadline=None, max_examples=150)

MSG1 = b"Subject: one\r\nFrom: a@b.test\r\n\r\nfirst line\r\n.dotted\r\nthird\r\n"
MSG2 = b"Subject: two\r\n\r\nbody\r\n"


def long_message(size: int) -> bytes:
    """A message of about ``size`` octets, with dotted lines to stuff."""
    line = b".a dotted line, doubled on the wire " + b"x" * 40 + b"\r\n"
    return b"Subject: long\r\n\r\n" + line * (size // len(line))


# -- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "verb", "args"),
    [
        (b"USER alice\r\n", "USER", ("alice",)),
        (b"pass two words\r\n", "PASS", ("two words",)),  # a password may hold spaces
        (b"TOP 1 10\n", "TOP", ("1", "10")),
        (b"STAT\r\n", "STAT", ()),
    ],
)
def test_command_lines_parse(raw: bytes, verb: str, args: tuple[str, ...]) -> None:
    """Keyword upper-cased, arguments split on spaces; kind is the verb."""
    cmd = pop3.parse_command(raw)
    assert (cmd.verb, cmd.args, cmd.problem, cmd.raw) == (verb, args, "", raw)
    assert cmd.kind == verb


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"USER " + b"a" * 300 + b"\r\n", "longer than 255"),
        (b"USER a\x00\r\n", "NUL"),
        (b"USER caf\xc3\xa9\r\n", "printable ASCII"),
        (b"STAT", "no line ending"),
        (b"USER " + b"a" * 41 + b"\r\n", "longer than 40"),
        (b"LONGVERB\r\n", "3 or 4 letters"),
        (b"\r\n", "3 or 4 letters"),
    ],
)
def test_bad_command_lines(raw: bytes, problem: str) -> None:
    """RFC 2449 §4 limits and printable ASCII; they still decode, with a problem."""
    cmd = pop3.parse_command(raw)
    assert problem in cmd.problem and cmd.raw == raw


def test_pass_is_hidden_in_summaries() -> None:
    """Passwords never reach a log line."""
    cmd = Pop3Command.of("PASS", "s3cret")
    assert cmd.summary() == "PASS ••••••  (sent in cleartext)" and "s3cret" not in str(cmd.fields())
    with pytest.raises(LocalProtocolError):
        Pop3Command.of("USER", "a\r\nDELE 1")


def test_reply_of_stuffs_and_describes() -> None:
    """+OK with a body: dot-stuffed on the wire, unstuffed in `body`; a short summary."""
    reply = Pop3Reply.of(True, "2 messages", b"1 10\r\n2 20\r\n")
    assert reply.raw == b"+OK 2 messages\r\n1 10\r\n2 20\r\n.\r\n"
    assert reply.summary() == "+OK 2 messages [1 10 | 2 20]"
    dotted = Pop3Reply.of(True, "x", b".a\n")
    assert dotted.raw == b"+OK x\r\n..a\r\n.\r\n" and dotted.body == b".a\r\n"
    assert Pop3Reply.of(False, "[IN-USE] locked").response_code == "IN-USE"
    assert Pop3Reply.of(True, "ready <1.2@lab.test>").timestamp == "<1.2@lab.test>"
    assert {"info", "timestamp", "body"} <= Pop3Reply.VOLATILE
    assert Pop3Reply.of(True).kind == "reply"


def test_a_long_reply_is_sent_in_parts() -> None:
    """reply_in_parts: a short body is one reply; a long one a marked
    status line, parts of whole lines (stuffed) and the dot line."""
    assert list(pop3.reply_in_parts("x", MSG1, reply_to="RETR")) == [Pop3Reply.of(True, "x", MSG1, reply_to="RETR")]
    body = long_message(300_000)
    head, *parts, end = pop3.reply_in_parts("300000 octets", body, reply_to="RETR")
    assert isinstance(head, Pop3Reply) and head.streamed and head.body is None
    assert head.raw == b"+OK 300000 octets\r\n" and head.summary() == "+OK 300000 octets [message follows in parts]"
    assert all(isinstance(p, BodyPart) and len(p.raw) < STREAM_ABOVE + 4096 for p in parts)
    assert b"".join(p.content for p in parts) == body  # type: ignore[attr-defined]
    assert b"".join(p.raw for p in parts) == Pop3Reply.of(True, "", body).raw[len(b"+OK\r\n"):-3]
    assert end == pop3.Pop3BodyEnd(raw=b".\r\n", size=len(body), reply_to="RETR")
    assert parts[0].summary() == f'message (in parts), first {len(parts[0].content)} bytes, Subject "long"'  # type: ignore[attr-defined]
    assert end.summary() == f"end of message, {len(body)} bytes"


# -- the conversation -------------------------------------------------------------------------


def client_side(*sent: bytes) -> pop3.Pop3Conversation:
    """A client's conversation after sending ``sent`` as raw bytes."""
    conv = pop3.Pop3Conversation(Role.CLIENT)
    for data in sent:
        conv.send_data(data)
    return conv


def after(*commands: bytes) -> Callable[[Role | None, Transport], pop3.Pop3Conversation]:
    """Conversations of any part that have seen the client send ``commands``."""

    def make(role: Role | None, transport: Transport) -> pop3.Pop3Conversation:
        conv = pop3.Pop3Conversation(role, transport)
        for line in commands:
            conv.track(Role.CLIENT, pop3.parse_command(line))
        return conv

    return make


@pytest.mark.parametrize("role", [*Role, None])
def test_a_decoder_per_sender(role: Role | None) -> None:
    """Commands from the client, replies from the server, in every part; TCP port 110."""
    conv = pop3.SPEC.conversation(role, Transport.TCP)
    assert isinstance(conv._decoders[Role.CLIENT], pop3.Pop3CommandDecoder)
    assert isinstance(conv._decoders[Role.SERVER], pop3.Pop3ReplyDecoder)
    assert pop3.SPEC.default_port == 110 and pop3.SPEC.options is pop3.Pop3Options


def test_the_client_knows_which_replies_have_bodies() -> None:
    """Greeting: one line; LIST: a body; LIST 1: one line; -ERR: one line."""
    conv = client_side(b"LIST\r\nLIST 1\r\n", b"RETR 9\r\n")
    conv.send(Pop3Command.of("RETR", 1))
    msgs = conv.feed(b"+OK hi\r\n+OK 1 msg\r\n1 5\r\n.\r\n+OK 1 5\r\n-ERR no such message\r\n"
                     b"+OK 5 octets\r\n..x\r\n.\r\n")
    assert [(m.ok, m.body, m.reply_to) for m in msgs] == [  # type: ignore[attr-defined]
        (True, None, ""), (True, b"1 5\r\n", "LIST"), (True, None, "LIST"), (False, None, "RETR"),
        (True, b".x\r\n", "RETR")]
    assert list(conv.pending) == []


def test_the_client_follows_raw_sends() -> None:
    """A command sent as bytes (`send c RETR 1`) still gets its body read,
    however the bytes were cut."""
    conv = client_side(b"CA", b"PA\r", b"\n")
    msgs = conv.feed(b"+OK hi\r\n+OK caps\r\nTOP\r\n.\r\n")
    assert msgs[1].body == b"TOP\r\n"  # type: ignore[attr-defined]


def test_the_client_ignores_empty_raw_sends() -> None:
    """Sending no bytes is not the end of what was sent: the next command still counts."""
    conv = client_side(b"\x00", b"", b"\x00LIST\r\nLIST\r\n")
    msgs = conv.feed(b"+OK hi\r\n-ERR bad\r\n+OK\r\n1 5\r\n.\r\n")
    assert [m.body for m in msgs] == [None, None, b"1 5\r\n"]  # type: ignore[attr-defined]


def test_reply_decoding_errors() -> None:
    """Not a status line, a status line too long, an unfinished body at EOF,
    a body line of over a megabyte: protocol errors."""
    with pytest.raises(RemoteProtocolError, match="not a POP3 status line"):
        client_side().feed(b"HELLO\r\n")
    with pytest.raises(RemoteProtocolError, match="status line longer than 512"):
        client_side().feed(b"+OK " + b"x" * 600)
    conv = client_side(b"RETR 1\r\n")
    conv.feed(b"+OK hi\r\n+OK\r\npart")
    with pytest.raises(RemoteProtocolError, match="inside a multi-line"):
        conv.feed(b"")
    with pytest.raises(RemoteProtocolError, match="longer than 1048576"):
        client_side(b"RETR 1\r\n").feed(b"+OK hi\r\n+OK\r\n" + b"x" * (pop3.MAX_BODY_LINE + 10))


def test_a_long_body_arrives_in_parts() -> None:
    """Over 64 KiB: the reply marked streamed, parts, an end; the parts add
    up to the body and none is much over 64 KiB."""
    body = long_message(1_000_000)
    conv = client_side(b"RETR 1\r\nNOOP\r\n")
    msgs = conv.feed(b"+OK hi\r\n" + Pop3Reply.of(True, "big", body).raw + b"+OK\r\n")
    _greeting, head, *parts, end, noop = msgs
    assert isinstance(head, Pop3Reply) and head.streamed and head.reply_to == "RETR" and head.body is None
    assert all(isinstance(p, BodyPart) and len(p.raw) < STREAM_ABOVE + 4096 for p in parts)
    assert b"".join(p.content for p in parts) == body  # type: ignore[attr-defined]
    assert isinstance(end, BodyEnd) and end.size == len(body) and end.raw == b".\r\n"
    assert isinstance(noop, Pop3Reply) and noop.reply_to == "NOOP" and not conv.body_open


def test_an_endless_body_is_never_held_whole() -> None:
    """A body that never ends goes on in parts: what is buffered stays small."""
    conv = client_side(b"RETR 1\r\n")
    conv.feed(b"+OK hi\r\n+OK\r\n")
    got = 0
    for _ in range(40):
        got += sum(len(m.raw) for m in conv.feed(b"y" * 70 + b"\r\n" + b"z" * 50_000 + b"\r\n"))
        assert conv.buffered() < 2 * STREAM_ABOVE
    assert got > 1_500_000


def test_the_server_hard_cap_on_command_lines() -> None:
    """4096 octets without a line end spend the server's conversation."""
    conv = pop3.Pop3Conversation(Role.SERVER)
    with pytest.raises(RemoteProtocolError, match="longer than 4096"):
        conv.feed(b"A" * 5000)


def test_the_server_follows_its_own_replies() -> None:
    """A server's replies, sent whole or as bytes, keep the table right:
    raw bytes decode against the commands received, and raw bytes in the
    middle of a body sent as messages carry on that body."""
    conv = pop3.Pop3Conversation(Role.SERVER)
    conv.send(Pop3Reply.of(True, "hi"))
    assert [m.verb for m in conv.feed(b"RETR 1\r\nLIST\r\nRETR 2\r\n")] == ["RETR", "LIST", "RETR"]  # type: ignore[attr-defined]
    conv.take_sent()
    head, first, *rest = pop3.reply_in_parts("big", long_message(200_000), reply_to="RETR")
    conv.send(head)
    conv.send(first)
    assert conv.feed(b"NOOP\r\n")[0].kind == "NOOP"  # pipelined meanwhile: it waits its turn
    for msg in rest:
        conv.send(msg)
    assert conv.take_sent() == [head, first, *rest] and not conv.body_open  # as sent, not decoded again
    conv.send_data(b"+OK 1 msg\r\n1 5\r\n.\r\n")
    listing = conv.take_sent()
    assert [(m.body, m.reply_to) for m in listing] == [(b"1 5\r\n", "LIST")]  # type: ignore[attr-defined]
    head, first, *_ = pop3.reply_in_parts("big", long_message(100_000), reply_to="RETR")
    conv.send(head)
    conv.send(first)
    conv.send_data(b"..last\r\n.\r\n")
    part, end = conv.take_sent()[2:]
    size = len(first.content)  # type: ignore[attr-defined]
    assert part == pop3.Pop3BodyPart(raw=b"..last\r\n", content=b".last\r\n", offset=size, reply_to="RETR")
    assert end == pop3.Pop3BodyEnd(raw=b".\r\n", size=size + 7, reply_to="RETR") and not conv.body_open
    conv.send_data(b"+OK\r\n")
    assert [m.reply_to for m in conv.take_sent()] == ["NOOP"]  # type: ignore[attr-defined]


def test_a_sasl_exchange_keeps_the_table_in_step() -> None:
    """After a `+` challenge the client's next line is a SASL response
    (hidden), not a command: the final reply answers AUTH, and LIST's
    body is still read."""
    conv = pop3.Pop3Conversation(None)
    seen = conv.observe(b"AUTH PLAIN\r\n", Role.CLIENT)
    seen += conv.observe(b"+OK hi\r\n+ \r\n", Role.SERVER)
    seen += conv.observe(b"AGFsaWNlAHdvbmRlcmxhbmQ=\r\nLIST\r\n", Role.CLIENT)
    seen += conv.observe(b"-ERR [AUTH] no\r\n+OK\r\n1 5\r\n.\r\n", Role.SERVER)
    msgs = [m for _, m in seen]
    assert isinstance(msgs[3], pop3.Pop3SaslResponse)
    assert msgs[3].summary() == "SASL response ••••••  (sent in cleartext, base64)"
    assert [getattr(m, "reply_to", None) for m in msgs if isinstance(m, Pop3Reply)] == ["", "AUTH", "AUTH", "LIST"]
    assert msgs[-1].body == b"1 5\r\n"  # type: ignore[attr-defined]


def test_each_side_sends_only_its_own_messages() -> None:
    """A client sends no replies, a server no commands, nobody a stray body part."""
    with pytest.raises(LocalProtocolError, match="a client sends commands"):
        pop3.Pop3Conversation(Role.CLIENT).send(Pop3Reply.of(True))
    with pytest.raises(LocalProtocolError, match="a server sends replies"):
        pop3.Pop3Conversation(Role.SERVER).send(Pop3Command.of("NOOP"))
    with pytest.raises(LocalProtocolError, match="without a streamed reply"):
        pop3.Pop3Conversation(Role.SERVER).send(BodyPart(raw=b"x\r\n", content=b"x\r\n"))


@settings(max_examples=300)
@given(body=st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b".\r\n", b"x.y"]), max_size=12)
       .map(b"".join))
def test_a_reply_body_reads_back_as_sent(body: bytes) -> None:
    """Whatever the body (dots, bare LF, no final line end), what a client
    decodes from the stuffed bytes is the reply's own `body`."""
    reply = Pop3Reply.of(True, "body", body)
    _greeting, decoded = client_side(b"RETR 1\r\n").feed(b"+OK ready\r\n" + reply.raw)
    assert isinstance(decoded, Pop3Reply) and decoded.body == reply.body
    assert decoded.raw == reply.raw


@SETTINGS
@given(body=st.binary(max_size=200), ok=st.booleans())
def test_reply_round_trip(body: bytes, ok: bool) -> None:
    """A RETR reply built by the server decodes to the same body in the client."""
    reply = Pop3Reply.of(ok, "x", body if ok else None)
    decoded = client_side(b"RETR 1\r\n").feed(b"+OK hi\r\n" + reply.raw)[1]
    assert decoded == dataclasses.replace(reply, reply_to="RETR")


_POP_BITS = [b"USER a\r\n", b"PASS b c\r\n", b"RETR 1\r\n", b"LIST\r\n", b"\r\n", b"\n", b"\x00", b"\xff",
             b"x" * 300, b"STAT"]
_REPLY_BITS = [b"+OK x\r\n", b"-ERR y\r\n", b"1 2\r\n", b".\r\n", b"..z\r\n", b"+ \r\n", b"\n", b"\xff", b"+O"]
_COMMANDS = [b"LIST\r\n", b"RETR 1\r\n", b"STAT\r\n", b"CAPA\r\n", b"AUTH X\r\n"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_POP_BITS) | st.binary(max_size=20), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 1000), max_size=8), eof=st.booleans())
def test_command_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Any client bytes split anywhere, received, sent or observed: only
    protocol errors, exact bytes, the same messages."""
    laws.stream(pop3.SPEC.conversation, Role.CLIENT, data, cuts, eof=eof)


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=10), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 500), max_size=8), eof=st.booleans(),
       sent=st.lists(st.sampled_from(_COMMANDS), max_size=5))
def test_reply_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool, sent: list[bytes]) -> None:
    """Server bytes split anywhere decode the same, whatever commands were sent."""
    laws.stream(after(*sent), Role.SERVER, data, cuts, eof=eof)


_BODY_LINES = [b"a" * 997 + b"\r\n", b"." + b"b" * 2000 + b"\n", b"..\r\n", b"\r\n", b"c" * 30_000 + b"\r\n"]


@settings(deadline=None, max_examples=40)
@given(lines=st.lists(st.sampled_from(_BODY_LINES), min_size=1, max_size=120),
       cuts=st.lists(st.integers(0, 400_000), max_size=8), eof=st.booleans())
def test_long_body_laws(laws: ConversationLaws, lines: list[bytes], cuts: list[int], eof: bool) -> None:
    """A body of any length, whole or in parts, decodes the same however
    it is cut, for the client, the server and an observer."""
    data = b"+OK hi\r\n+OK body\r\n" + b"".join(lines) + b".\r\n-ERR\r\n"
    laws.stream(after(b"RETR 1\r\n", b"TOP 1 2\r\n"), Role.SERVER, data, cuts, eof=eof)


# -- the server, in memory ---------------------------------------------------------------------


def make_server(store: MailStore | None = None, **options: object) -> pop3.Pop3Server:
    server = pop3.SPEC.server(pop3.SPEC.resolve_options(options))
    assert isinstance(server, pop3.Pop3Server)
    if store is not None:
        server.services.set(MAIL_STORE, store)
    server.started()
    return server


def filled_store() -> MailStore:
    store = MailStore()
    store.deliver(["alice"], MSG1)
    store.deliver(["alice"], MSG2)
    return store


class Dialog:
    """One POP3 session of a server behaviour, driven by bytes: the server's
    side through its conversation, its replies decoded by a client's."""

    def __init__(self, server: pop3.Pop3Server, conn_id: str = "p-1") -> None:
        self.server = server
        self.peer = FakePeer(spec=pop3.SPEC, conn_id=conn_id)
        self.client = pop3.Pop3Conversation(Role.CLIENT)
        self.session: pop3.Pop3Session = open_session(server, self.peer)
        self.greeting = self._read()[0]

    def _read(self) -> list[Pop3Reply]:
        data = self.peer.data
        self.peer.writes.clear()
        replies = self.client.feed(data)
        assert all(isinstance(r, Pop3Reply) for r in replies)
        return replies  # type: ignore[return-value]

    def send(self, data: bytes) -> list[Pop3Reply]:
        self.client.send_data(data)
        conv = self.peer.conversation
        try:
            conv.receive_data(data)
            while (msg := conv.next_message()) is not None:
                self.session.message_received(msg)
        except RemoteProtocolError as exc:
            self.session.protocol_error(exc)
        return self._read()

    def oks(self, data: bytes) -> list[bool]:
        return [r.ok for r in self.send(data)]

    def lost(self) -> None:
        self.peer.closed = True
        self.session.connection_lost()


def logged_in(store: MailStore | None = None, conn_id: str = "p-1") -> Dialog:
    s = Dialog(make_server(store or filled_store()), conn_id)
    assert s.oks(b"USER alice\r\nPASS wonderland\r\n") == [True, True]
    return s


def test_greeting_has_an_apop_timestamp() -> None:
    """+OK with <...@lab.test>, and CAPA in AUTHORIZATION."""
    s = Dialog(make_server())
    assert s.greeting.ok and s.greeting.timestamp and s.greeting.timestamp.endswith("@lab.test>")
    capa = s.send(b"CAPA\r\n")[0]
    assert {"TOP", "USER", "UIDL", "RESP-CODES", "PIPELINING"} <= set(capa.lines)


def test_stat_list_uidl_retr_top() -> None:
    """The TRANSACTION commands on a two-message maildrop."""
    s = logged_in()
    size1, size2 = len(MSG1), len(MSG2)
    assert s.send(b"STAT\r\n")[0].info == f"2 {size1 + size2}"
    assert s.send(b"LIST\r\n")[0].body == f"1 {size1}\r\n2 {size2}\r\n".encode()
    assert s.send(b"LIST 2\r\n")[0].info == f"2 {size2}"
    uidl = s.send(b"UIDL\r\n")[0]
    assert len(uidl.lines) == 2 and uidl.lines[0].startswith("1 ")
    assert s.send(b"RETR 1\r\n")[0].body == MSG1  # dot-stuffed on the wire, same bytes here
    assert s.send(b"TOP 1 1\r\n")[0].body == b"Subject: one\r\nFrom: a@b.test\r\n\r\nfirst line\r\n"
    assert s.send(b"TOP 1 9\r\n")[0].body == MSG1
    assert s.send(b"TOP 2 0\r\n")[0].body == b"Subject: two\r\n\r\n"
    assert s.oks(b"NOOP\r\n") == [True]


def test_deletes_happen_only_at_quit() -> None:
    """DELE marks; RSET unmarks; a lost connection deletes nothing; QUIT deletes."""
    store = filled_store()
    s = logged_in(store)
    assert s.oks(b"DELE 1\r\nRETR 1\r\nDELE 1\r\nLIST 1\r\n") == [True, False, False, False]
    assert s.send(b"STAT\r\n")[0].info == f"1 {len(MSG2)}"
    assert s.oks(b"RSET\r\n") == [True]
    assert s.send(b"STAT\r\n")[0].info.startswith("2 ")
    s.oks(b"DELE 2\r\n")
    s.lost()
    assert len(store.messages("alice")) == 2  # no QUIT, no deletion
    s = logged_in(store, "p-2")
    s.oks(b"DELE 2\r\n")
    assert s.send(b"QUIT\r\n")[0].info.endswith("(1 message left)")
    assert [m.data for m in store.messages("alice")] == [MSG1]
    assert s.peer.closed


@pytest.mark.parametrize(
    ("script", "oks"),
    [
        (b"RETR 1\r\n", [False]),  # RETR before PASS
        (b"STAT\r\n", [False]),
        (b"PASS wonderland\r\n", [False]),  # PASS before USER
        (b"USER alice\r\nPASS wrong\r\n", [True, False]),
        (b"USER nobody\r\nPASS x\r\n", [True, False]),  # USER says nothing about who exists
        (b"XYZZY\r\n", [False]),
        (b"USER\r\n", [False]),
        (b"APOP alice 0123\r\n", [False]),
        (b"USER a\x00b\r\n", [False]),
        (b"QUIT\r\n", [True]),
    ],
)
def test_authorization_state_errors(script: bytes, oks: list[bool]) -> None:
    """Commands out of state, bad passwords, garbage: -ERR each."""
    assert Dialog(make_server(filled_store())).oks(script) == oks


def test_transaction_state_errors() -> None:
    """Logged in: no USER again, bad message numbers, bad syntax."""
    s = logged_in()
    assert s.oks(b"USER bob\r\nRETR 9\r\nRETR 0\r\nRETR x\r\nRETR\r\nTOP 1\r\nDELE\r\nLIST 3\r\n") == [False] * 8
    err = s.send(b"PASS x\r\n")[0]
    assert "not valid in the transaction state" in err.info


def test_wrong_password_has_the_auth_code() -> None:
    """RFC 3206: -ERR [AUTH] for bad credentials."""
    s = Dialog(make_server())
    assert s.send(b"USER alice\r\nPASS nope\r\n")[1].response_code == "AUTH"


def test_apop_login() -> None:
    """APOP name md5(timestamp + password)."""
    s = Dialog(make_server(filled_store()))
    assert s.greeting.timestamp
    digest = hashlib.md5((s.greeting.timestamp + "wonderland").encode()).hexdigest()
    reply = s.send(f"APOP alice {digest}\r\n".encode())[0]
    assert reply.ok and reply.info == f"alice has 2 messages ({len(MSG1) + len(MSG2)} octets)"


def test_a_mailbox_is_locked_by_one_session() -> None:
    """A second login gets -ERR [IN-USE]; after QUIT (or a drop) the lock is free."""
    store = filled_store()
    server = make_server(store)
    first = Dialog(server, "p-1")
    first.oks(b"USER alice\r\nPASS wonderland\r\n")
    second = Dialog(server, "p-2")
    reply = second.send(b"USER alice\r\nPASS wonderland\r\n")[1]
    assert not reply.ok and reply.response_code == "IN-USE"
    first.lost()
    assert second.oks(b"USER alice\r\nPASS wonderland\r\n") == [True, True]


def test_uidl_of_odd_maildir_names_is_still_a_uidl(tmp_path: Path) -> None:
    """A file name with a space (another tool's) becomes a hex UIDL; sizes match RETR."""
    for sub in ("tmp", "new", "cur"):
        (tmp_path / "alice" / sub).mkdir(parents=True)
    (tmp_path / "alice" / "new" / "odd name").write_bytes(b"Subject: odd\n\nbare LF\n")
    s = logged_in(MailStore(tmp_path))
    uid = s.send(b"UIDL 1\r\n")[0].info.split()[1]
    assert len(uid) == 32 and uid.isalnum()
    size = int(s.send(b"LIST 1\r\n")[0].info.split()[1])
    assert len(s.send(b"RETR 1\r\n")[0].body or b"") == size


def test_the_maildrop_is_a_snapshot_at_login() -> None:
    """Mail that arrives during a session shows up in the next one."""
    store = filled_store()
    s = logged_in(store)
    store.deliver(["alice"], b"Subject: late\r\n\r\nx\r\n")
    assert s.send(b"STAT\r\n")[0].info.startswith("2 ")
    s.send(b"QUIT\r\n")
    assert logged_in(store, "p-2").send(b"STAT\r\n")[0].info.startswith("3 ")


def test_too_many_errors_hang_up() -> None:
    """Twenty bad commands: the server closes."""
    s = Dialog(make_server())
    s.send(b"XXXX\r\n" * 25)
    assert s.peer.closed


def test_a_line_over_the_hard_cap_is_answered_and_closed() -> None:
    """A command line past 4096 octets: -ERR naming the cap, then the server hangs up."""
    s = Dialog(make_server())
    reply = s.send(b"USER " + b"x" * 5000)
    assert [r.info for r in reply] == ["command line longer than 4096 octets; closing"] and s.peer.closed


def test_user_option_replaces_demo_accounts() -> None:
    """--user NAME=PASSWORD; bad forms are config errors naming the option."""
    s = Dialog(make_server(filled_store(), user=["carol=pw"]))
    assert s.oks(b"USER alice\r\nPASS wonderland\r\nUSER carol\r\nPASS pw\r\n") == [True, False, True, True]
    with pytest.raises(ConfigError, match="pop3: --user wants NAME=PASSWORD"):
        pop3.SPEC.resolve_options({"user": ["carol"]})
    options = pop3.SPEC.resolve_options({"hostname": "mail.test"})
    assert options == pop3.Pop3Options(hostname="mail.test") and options.maildir is None


def test_the_mail_store_is_attached_at_start(tmp_path: Path) -> None:
    """started() attaches the store of the server's services, in --maildir
    if given; a second, different Maildir is refused then."""
    server = make_server(maildir=str(tmp_path / "mail"))
    store = server.services.get(MAIL_STORE)
    assert server.store is store and store.maildir == (tmp_path / "mail").resolve()
    other = pop3.SPEC.server(pop3.SPEC.resolve_options({"maildir": str(tmp_path / "other")}))
    other.services = server.services
    with pytest.raises(ConfigError, match="already lives in"):
        other.started()


def test_shares_the_store_with_smtp(arun: Runner) -> None:
    """A POP3 and an SMTP server on one Services see the same mailboxes."""
    from lab.protocols import smtp

    services = Services()

    def share(server: Any) -> None:
        server.services = services

    async def main() -> bytes:
        mx = Loopback(smtp.SPEC, prepare=share)
        for line in (b"HELO x\r\n", b"MAIL FROM:<>\r\n", b"RCPT TO:<alice@lab.test>\r\n", b"DATA\r\n",
                     b"Subject: shared\r\n\r\nhi\r\n.\r\n", b"QUIT\r\n"):
            await mx.send_raw(line)
        client = pop3.Pop3Client(Loopback(pop3.SPEC, prepare=share))
        await client.login("alice", "wonderland")
        return await client.retr(1)

    assert arun(main()).endswith(b"Subject: shared\r\n\r\nhi\r\n")


# -- the client verbs ---------------------------------------------------------------------------------


def serving(store: MailStore) -> Callable[[Any], None]:
    """A loopback's prepare: the server reads ``store``."""

    def prepare(server: Any) -> None:
        server.services.set(MAIL_STORE, store)

    return prepare


def test_client_verbs(loopback: type[Loopback], arun: Runner) -> None:
    """login, stat, list, uidl, retr, top, dele, rset, noop, capa, quit."""

    async def main() -> None:
        client = pop3.Pop3Client(loopback(pop3.SPEC, prepare=serving(filled_store())))
        assert (await client.wait_greeting()).ok
        assert "UIDL" in await client.capa()
        assert (await client.login("alice", "wonderland")).ok
        assert await client.stat() == (2, len(MSG1) + len(MSG2))
        assert await client.list() == {1: len(MSG1), 2: len(MSG2)}
        assert await client.list(2) == {2: len(MSG2)}
        assert list(await client.uidl()) == [1, 2]
        assert await client.retr(1) == MSG1
        assert (await client.top(2, 0)) == b"Subject: two\r\n\r\n"
        assert (await client.dele(1)).ok
        with pytest.raises(pop3.Pop3ReplyError, match="already deleted"):
            await client.retr(1)
        assert (await client.rset()).ok and (await client.noop()).ok
        assert not (await client.command("RETR 7")).ok
        assert await client.fetch_all() == [MSG1, MSG2]
        assert (await client.quit()).ok

    arun(main())


def test_client_apop(loopback: type[Loopback], arun: Runner) -> None:
    """apop() computes the digest from the greeting's timestamp."""

    async def main() -> bool:
        client = pop3.Pop3Client(loopback(pop3.SPEC))
        return (await client.apop("bob", "builder")).ok

    assert arun(main())


def test_a_retr_of_megabytes_streams(loopback: type[Loopback], arun: Runner) -> None:
    """A 5 MB message: retr returns it byte for byte; it crossed in parts of
    about 64 KiB each way, paced by the client's reading; command() gathers
    a whole reply too; a TOP of it is short again."""
    big = long_message(5_000_000)
    store = MailStore()
    store.deliver(["alice"], big)

    async def main() -> Loopback:
        lb = loopback(pop3.SPEC, window=256 * 1024, prepare=serving(store))
        client = pop3.Pop3Client(lb)
        await client.login("alice", "wonderland")
        assert await client.retr(1) == big
        whole = await client.command("RETR 1")
        assert whole.body == big and not whole.streamed and whole.raw == Pop3Reply.of(True, whole.info, big).raw
        assert await client.top(1, 1) == b"Subject: long\r\n\r\n" + big.split(b"\r\n")[2] + b"\r\n"
        assert (await client.quit()).ok
        return lb

    lb = arun(main())
    assert lb.errors == [] and lb.client_error is None
    largest = STREAM_ABOVE + 4096
    assert max(len(m.raw) for m in lb.peer.sent) < largest  # as the server sent them
    assert max(len(m.raw) for m in lb.seen[Role.CLIENT]) < largest  # as the client decoded them
    assert sum(isinstance(m, BodyPart) for m in lb.seen[Role.CLIENT]) > 2 * len(big) // STREAM_ABOVE - 5


def test_the_client_caps_a_body_and_stays_in_step(loopback: type[Loopback], arun: Runner) -> None:
    """A body over max_body is refused once read to its end; the next verb works."""
    store = MailStore()
    store.deliver(["alice"], long_message(300_000))

    async def main() -> None:
        client = pop3.Pop3Client(loopback(pop3.SPEC, prepare=serving(store)))
        client.max_body = 100_000
        await client.login("alice", "wonderland")
        with pytest.raises(RemoteProtocolError, match="more than 100000"):
            await client.retr(1)
        assert await client.stat() == (1, len(store.messages("alice")[0].data))

    arun(main())


def test_commands_wait_for_a_long_reply(loopback: type[Loopback], arun: Runner) -> None:
    """Pipelined behind a long RETR, NOOP is answered after its last part,
    and an EOF closes only once the body has gone out."""
    store = MailStore()
    store.deliver(["alice"], long_message(1_000_000))

    async def main() -> list[Message]:
        lb = loopback(pop3.SPEC, window=128 * 1024, prepare=serving(store))
        await pop3.Pop3Client(lb).login("alice", "wonderland")
        await lb.send_raw(b"RETR 1\r\nNOOP\r\n")
        lb.half_close()
        got: list[Message] = []
        while not lb.closed or lb.inbox:
            got.append(await lb.receive())
            if got[-1].kind == "reply" and getattr(got[-1], "reply_to", "") == "NOOP":
                break
        return got

    got = arun(main())
    head, *parts, end, noop = got
    assert isinstance(head, Pop3Reply) and head.streamed
    assert all(isinstance(p, BodyPart) for p in parts) and isinstance(end, BodyEnd)
    assert isinstance(noop, Pop3Reply) and noop.ok and noop.reply_to == "NOOP"


@settings(deadline=None, max_examples=40)
@given(cuts=st.lists(st.integers(0, 150_000), max_size=6), apop=st.booleans())
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner, cuts: list[int],
                                              apop: bool) -> None:
    """A whole session (greeting, USER/PASS or APOP, STAT, LIST, UIDL, RETR
    of a short and of a long message, TOP, DELE, QUIT) replays to an
    observer, split anywhere, as the two sides saw it."""
    store = MailStore()
    store.deliver(["alice"], MSG1)
    store.deliver(["alice"], long_message(150_000))

    async def main() -> Loopback:
        lb = Loopback(pop3.SPEC, prepare=serving(store))
        client = pop3.Pop3Client(lb)
        if apop:
            await client.apop("alice", "wonderland")
        else:
            await client.login("alice", "wonderland")
        await client.stat()
        await client.list()
        await client.uidl()
        assert await client.retr(1) == MSG1
        await client.retr(2)
        await client.top(2, 3)
        await client.dele(1)
        await client.quit()
        return lb

    lb = arun(main())
    seen = laws.observer_replays(pop3.SPEC.conversation, lb, cuts)
    assert any(isinstance(m, BodyPart) for m in seen[Role.CLIENT])
    assert [m.kind for m in seen[Role.SERVER]][-3:] == ["TOP", "DELE", "QUIT"]


# -- hostile input on real sockets ----------------------------------------------------------------------


def talk(port: int, data: bytes) -> bytes:
    """The greeting, then what the server answers to ``data`` until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        out = s.makefile("rb").readline()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass  # the server hung up first
        return out


def test_hostile_clients_get_errors_and_others_are_served(lab: Lab) -> None:
    """RETR before PASS, NUL bytes, unknown verbs, no CRLF, a 1 MB line: -ERR each,
    and a well-behaved client still reads its mail."""
    srv = lab.serve("pop3")
    lab.services.get(MAIL_STORE).deliver(["alice"], MSG1)
    out = talk(srv.port, b"RETR 1\r\nUSER a\x00\r\nFOO\nDELE 1\r\nSTAT")
    statuses = [line.split(b" ")[0] for line in out.split(b"\r\n") if line]
    assert statuses == [b"+OK", b"-ERR", b"-ERR", b"-ERR", b"-ERR", b"-ERR"]
    # a 1 MB line: -ERR and the server hangs up (the reset of a close with unread
    # bytes may eat the reply on the wire; the log has it)
    out = talk(srv.port, b"USER " + b"x" * (1 << 20) + b"\r\n")
    assert out.startswith(b"+OK") and out.count(b"\r\n") in (1, 2)
    messages = EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE}))
    wait_until(lambda: any(e.summary == "-ERR command line longer than 4096 octets; closing"
                           for e in lab.log.query(messages)), what="the -ERR in the log")
    wait_until(lambda: not srv.connections, what="the hostile connections to close")
    c = lab.connect("pop3", srv)
    c.login("alice", "wonderland")
    assert c.retr(1) == MSG1
    c.quit()


def test_a_long_message_through_real_sockets(lab: Lab) -> None:
    """A 3 MB message, server to client over TCP: the same bytes, and the log
    holds parts, never the whole body."""
    srv = lab.serve("pop3")
    big = long_message(3_000_000)
    lab.services.get(MAIL_STORE).deliver(["alice"], big)
    c = lab.connect("pop3", srv)
    c.login("alice", "wonderland")
    assert c.retr(1) == big
    c.quit()
    events = lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE})))
    assert any(e.summary.endswith("[message follows in parts]") for e in events)
    assert any(e.summary == f"end of message, {len(big)} bytes" for e in events)


# -- in a lab: the command language ------------------------------------------------------------


def test_mail_lesson_in_the_command_language(lab: Lab) -> None:
    """The lesson typed by hand: raw SMTP lines, then raw POP3 lines; RETR's body
    arrives as one decoded response because the conversation follows raw sends."""
    from lab.commands import Interpreter

    script = r"""
    serve smtp as mx; serve pop3 as pop
    connect mx as s; expect s 220
    send s "EHLO student.test"; expect s 250
    send s "MAIL FROM:<bob@far.test>"; expect s 250
    send s "RCPT TO:<alice@lab.test>"; expect s 250
    send s DATA; expect s 354
    send s "Subject: by hand\r\n\r\nTyped line by line.\r\n.."; send s "."; expect s /queued as/
    send s QUIT; expect s 221
    connect pop as p; expect p +OK
    send p "USER alice"; expect p +OK
    send p "PASS wonderland"; expect p "alice has 1 message ("
    send p "RETR 1"; expect p "Typed line by line."
    send p QUIT; expect p "signing off"
    """
    results = Interpreter(lab).execute(script, timeout=60)
    retr = results[-3].value
    assert isinstance(retr, Pop3Reply) and retr.body is not None
    assert retr.body.endswith(b"Subject: by hand\r\n\r\nTyped line by line.\r\n.\r\n")
    assert retr.summary() == f'+OK {len(retr.body)} octets [message, 9 lines, Subject "by hand"]'


@SETTINGS
@given(chunks=st.lists(st.sampled_from([*_POP_BITS, b"USER alice\r\n", b"PASS wonderland\r\n", b"DELE 1\r\n",
                                        b"QUIT\r\n", b"TOP 1 0\r\n", b"UIDL\r\n", b"RSET\r\n"])
                       | st.binary(max_size=30), max_size=30),
       eof=st.booleans())
def test_server_survives_any_client_bytes(loopback: type[Loopback], arun: Runner, chunks: list[bytes],
                                          eof: bool) -> None:
    """Whatever a client sends, no session method raises, every response
    decodes, and a message is gone only after a QUIT."""
    store = filled_store()

    async def main() -> None:
        lb = loopback(pop3.SPEC, prepare=serving(store))
        for chunk in chunks:
            if lb.peer.closed:
                break
            await lb.send_raw(chunk)
        if eof and not lb.peer.closed:
            lb.half_close()
        assert lb.errors == [] and lb.client_error is None
        if len(store.messages("alice")) < 2:
            assert b"QUIT" in b"".join(chunks)
        await lb.close()
        assert store.lock("alice", "the next session")  # the session's lock went with it

    arun(main())


def test_verbs_after_the_greeting_was_expected_by_hand(lab: Lab) -> None:
    """`expect c +OK` takes the greeting from the inbox: the first verb must
    not wait for it again; without the expect, the verb reads past it."""
    srv = lab.serve("pop3")
    c = lab.connect("pop3", srv)
    assert c.expect("+OK").ok
    assert c.user("alice").ok
    d = lab.connect("pop3", srv)
    wait_until(lambda: d.verbs.greeting is not None, what="the greeting to arrive")
    assert d.user("bob").ok
