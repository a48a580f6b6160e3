"""Tests for lab/protocols/pop3: the codecs in memory, the three states of
RFC 1939 and every command's replies, locking, deletion only at QUIT, the
client verbs against our server, and hostile input on real sockets."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from pathlib import Path

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab import Lab
from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import pop3
from lab.protocols._base import Role, Services, Transport
from lab.protocols._mailstore import SERVICE, MailStore
from lab.protocols.pop3 import Pop3Command, Pop3Reply

SETTINGS = settings(deadline=None, max_examples=150)

MSG1 = b"Subject: one\r\nFrom: a@b.test\r\n\r\nfirst line\r\n.dotted\r\nthird\r\n"
MSG2 = b"Subject: two\r\n\r\nbody\r\n"


# -- messages and codecs ---------------------------------------------------------------------


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
    assert cmd.summary() == "PASS (password hidden)" and "s3cret" not in str(cmd.fields())
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
    assert {"info", "timestamp", "body"} <= Pop3Reply.volatile


@settings(max_examples=300)
@given(body=st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b".\r\n", b"x.y"]), max_size=12)
       .map(b"".join))
def test_a_reply_body_reads_back_as_sent(body: bytes) -> None:
    """Whatever the body (dots, bare LF, no final line end), what a client
    decodes from the stuffed bytes is the reply's own `body`."""
    reply = Pop3Reply.of(True, "body", body)
    _greeting, decoded = client_codec(b"RETR 1\r\n").feed(b"+OK ready\r\n" + reply.raw)
    assert isinstance(decoded, Pop3Reply) and decoded.body == reply.body
    assert decoded.raw == reply.raw


def client_codec(*sent: bytes) -> pop3.ClientCodec:
    codec = pop3.ClientCodec()
    for line in sent:
        codec.encode(pop3.parse_command(line))
    return codec


def test_client_codec_knows_which_replies_have_bodies() -> None:
    """Greeting: one line; LIST: a body; LIST 1: one line; -ERR: one line."""
    codec = client_codec(b"LIST\r\n", b"LIST 1\r\n", b"RETR 9\r\n", b"RETR 1\r\n")
    msgs = codec.feed(b"+OK hi\r\n+OK 1 msg\r\n1 5\r\n.\r\n+OK 1 5\r\n-ERR no such message\r\n"
                      b"+OK 5 octets\r\n..x\r\n.\r\n")
    assert [(m.ok, m.body) for m in msgs] == [  # type: ignore[attr-defined]
        (True, None), (True, b"1 5\r\n"), (True, None), (False, None), (True, b".x\r\n")]


def test_client_codec_follows_raw_sends() -> None:
    """A command sent with send_raw (`send c RETR 1`) still gets its body read."""
    codec = pop3.ClientCodec()
    codec.sent(b"CAPA\r\n")
    msgs = codec.feed(b"+OK hi\r\n+OK caps\r\nTOP\r\n.\r\n")
    assert msgs[1].body == b"TOP\r\n"  # type: ignore[attr-defined]


def test_client_codec_ignores_empty_raw_sends() -> None:
    """Sending no bytes is not the end of what was sent: the next command still counts."""
    codec = pop3.ClientCodec()
    codec.sent(b"\x00")
    codec.sent(b"")
    codec.sent(b"\x00LIST\r\nLIST\r\n")
    msgs = codec.feed(b"+OK hi\r\n-ERR bad\r\n+OK\r\n1 5\r\n.\r\n")
    assert [m.body for m in msgs] == [None, None, b"1 5\r\n"]  # type: ignore[attr-defined]


def test_client_codec_errors() -> None:
    """Not a status line, an unfinished body at EOF, an endless body: protocol errors."""
    with pytest.raises(RemoteProtocolError, match="not a POP3 status line"):
        pop3.ClientCodec().feed(b"HELLO\r\n")
    codec = client_codec(b"RETR 1\r\n")
    codec.feed(b"+OK hi\r\n+OK\r\npart")
    with pytest.raises(RemoteProtocolError, match="inside a multi-line"):
        codec.feed(b"")
    codec = pop3.ClientCodec(max_body=100)
    codec.encode(pop3.parse_command(b"RETR 1\r\n"))
    with pytest.raises(RemoteProtocolError, match="longer than 100"):
        codec.feed(b"+OK\r\n+OK\r\n" + b"x\r\n" * 100)


def test_server_codec_hard_cap() -> None:
    """4096 octets without a line end spend the server codec."""
    codec = pop3.ServerCodec()
    with pytest.raises(RemoteProtocolError, match="longer than 4096"):
        codec.feed(b"A" * 5000)


_POP_BITS = [b"USER a\r\n", b"PASS b c\r\n", b"RETR 1\r\n", b"LIST\r\n", b"\r\n", b"\n", b"\x00", b"\xff",
             b"x" * 300, b"STAT"]
_REPLY_BITS = [b"+OK x\r\n", b"-ERR y\r\n", b"1 2\r\n", b".\r\n", b"..z\r\n", b"+ \r\n", b"\n", b"\xff", b"+O"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_POP_BITS) | st.binary(max_size=20), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 1000), max_size=8))
def test_server_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes split anywhere: only protocol errors, exact bytes, same messages."""
    codec_laws.stream(pop3.ServerCodec, data, cuts)
    codec_laws.stream(pop3.ServerCodec, data, cuts, eof=False)


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=10), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 500), max_size=8),
       sent=st.lists(st.sampled_from([b"LIST\r\n", b"RETR 1\r\n", b"STAT\r\n", b"CAPA\r\n"]), max_size=5))
def test_client_codec_laws(codec_laws: CodecLaws, data: bytes, cuts: list[int], sent: list[bytes]) -> None:
    """Responses split anywhere decode the same, whatever commands were sent."""
    codec_laws.stream(lambda: client_codec(*sent), data, cuts)
    codec_laws.stream(lambda: client_codec(*sent), data, cuts, eof=False)


@SETTINGS
@given(body=st.binary(max_size=200), ok=st.booleans())
def test_reply_round_trip(body: bytes, ok: bool) -> None:
    """A RETR reply built by the server decodes to the same body in the client."""
    reply = Pop3Reply.of(ok, "x", body if ok else None)
    decoded = client_codec(b"RETR 1\r\n").feed(b"+OK hi\r\n" + reply.raw)[1]
    assert decoded == dataclasses.replace(reply, reply_to="RETR")


# -- the server, in memory ---------------------------------------------------------------------


def make_server(store: MailStore | None = None, **options: object) -> pop3.Pop3Server:
    server = pop3.SPEC.server(pop3.SPEC.resolve_options(options))
    assert isinstance(server, pop3.Pop3Server)
    if store is not None:
        server.services.set(SERVICE, store)
    return server


def filled_store() -> MailStore:
    store = MailStore()
    store.deliver(["alice"], MSG1)
    store.deliver(["alice"], MSG2)
    return store


class Session:
    """One POP3 conversation with a server behaviour through both codecs."""

    def __init__(self, server: pop3.Pop3Server, conn_id: str = "p-1") -> None:
        self.server = server
        self.codec = pop3.ServerCodec()
        self.replies = pop3.ClientCodec()
        self.peer = FakePeer(conn_id=conn_id)
        server.connection_made(self.peer)
        self.greeting = self._read()[0]

    def _read(self) -> list[Pop3Reply]:
        data = b"".join(self.peer.writes)
        self.peer.writes.clear()
        return self.replies.feed(data)  # type: ignore[return-value]

    def send(self, data: bytes) -> list[Pop3Reply]:
        self.replies.sent(data)
        try:
            msgs = self.codec.feed(data)
        except RemoteProtocolError as exc:
            self.server.protocol_error(self.peer, exc)
            return self._read()
        for msg in msgs:
            self.server.message_received(self.peer, msg)
        return self._read()

    def oks(self, data: bytes) -> list[bool]:
        return [r.ok for r in self.send(data)]

    def lost(self) -> None:
        self.peer.closed = True
        self.server.connection_lost(self.peer)


def logged_in(store: MailStore | None = None, conn_id: str = "p-1") -> Session:
    s = Session(make_server(store or filled_store()), conn_id)
    assert s.oks(b"USER alice\r\nPASS wonderland\r\n") == [True, True]
    return s


def test_greeting_has_an_apop_timestamp() -> None:
    """+OK with <...@lab.test>, and CAPA in AUTHORIZATION."""
    s = Session(make_server())
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
    assert Session(make_server(filled_store())).oks(script) == oks


def test_transaction_state_errors() -> None:
    """Logged in: no USER again, bad message numbers, bad syntax."""
    s = logged_in()
    assert s.oks(b"USER bob\r\nRETR 9\r\nRETR 0\r\nRETR x\r\nRETR\r\nTOP 1\r\nDELE\r\nLIST 3\r\n") == [False] * 8
    err = s.send(b"PASS x\r\n")[0]
    assert "not valid in the transaction state" in err.info


def test_wrong_password_has_the_auth_code() -> None:
    """RFC 3206: -ERR [AUTH] for bad credentials."""
    s = Session(make_server())
    assert s.send(b"USER alice\r\nPASS nope\r\n")[1].response_code == "AUTH"


def test_apop_login() -> None:
    """APOP name md5(timestamp + password)."""
    s = Session(make_server(filled_store()))
    assert s.greeting.timestamp
    digest = hashlib.md5((s.greeting.timestamp + "wonderland").encode()).hexdigest()
    reply = s.send(f"APOP alice {digest}\r\n".encode())[0]
    assert reply.ok and reply.info == f"alice has 2 messages ({len(MSG1) + len(MSG2)} octets)"


def test_a_mailbox_is_locked_by_one_session() -> None:
    """A second login gets -ERR [IN-USE]; after QUIT (or a drop) the lock is free."""
    store = filled_store()
    server = make_server(store)
    first = Session(server, "p-1")
    first.oks(b"USER alice\r\nPASS wonderland\r\n")
    second = Session(server, "p-2")
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
    s = Session(make_server())
    s.send(b"XXXX\r\n" * 25)
    assert s.peer.closed


def test_user_option_replaces_demo_accounts() -> None:
    """--user NAME=PASSWORD; bad forms are config errors."""
    s = Session(make_server(filled_store(), user=["carol=pw"]))
    assert s.oks(b"USER alice\r\nPASS wonderland\r\nUSER carol\r\nPASS pw\r\n") == [True, False, True, True]
    with pytest.raises(ConfigError):
        pop3.SPEC.resolve_options({"user": ["carol"]})


def test_shares_the_store_with_smtp() -> None:
    """A POP3 and an SMTP server on one Services see the same mailboxes."""
    from lab.protocols import smtp

    services = Services()
    smtp_server = smtp.SPEC.server(smtp.SPEC.resolve_options({}))
    pop_server = make_server()
    smtp_server.services = pop_server.services = services
    codec = smtp.ServerCodec()
    peer = FakePeer(codec=codec)
    smtp_server.connection_made(peer)
    for msg in codec.feed(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n"):
        smtp_server.message_received(peer, msg)
    for msg in codec.feed(b"Subject: shared\r\n\r\nhi\r\n.\r\n"):
        smtp_server.message_received(peer, msg)
    s = Session(pop_server)
    s.oks(b"USER alice\r\nPASS wonderland\r\n")
    assert s.send(b"RETR 1\r\n")[0].body.endswith(b"Subject: shared\r\n\r\nhi\r\n")  # type: ignore[union-attr]


# -- the client verbs ---------------------------------------------------------------------------------


def test_client_verbs(loopback: type[Loopback], arun: Runner) -> None:
    """login, stat, list, uidl, retr, top, dele, rset, noop, capa, quit."""

    def prepare(server: pop3.Pop3Server) -> None:
        server.services.set(SERVICE, filled_store())

    async def main() -> None:
        client = pop3.Pop3Client(loopback(pop3.SPEC, prepare=prepare))
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


def test_codec_is_chosen_per_role() -> None:
    """Server: commands; client: responses; TCP port 110."""
    assert isinstance(pop3.SPEC.codec(Role.SERVER, Transport.TCP), pop3.ServerCodec)
    assert isinstance(pop3.SPEC.codec(Role.CLIENT, Transport.TCP), pop3.ClientCodec)
    assert pop3.SPEC.default_port == 110


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
    lab.services.get(SERVICE, MailStore).deliver(["alice"], MSG1)
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


# -- in a lab: the command language ------------------------------------------------------------


def test_mail_lesson_in_the_command_language(lab: Lab) -> None:
    """The lesson typed by hand: raw SMTP lines, then raw POP3 lines; RETR's body
    arrives as one decoded response because the client codec follows raw sends."""
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
    """Whatever a client sends, no behaviour method raises, every response
    decodes, and a message is gone only after a QUIT."""
    store = filled_store()

    def prepare(server: pop3.Pop3Server) -> None:
        server.services.set(SERVICE, store)

    async def main() -> None:
        lb = loopback(pop3.SPEC, prepare=prepare)
        for chunk in chunks:
            if lb.peer.closed:
                break
            lb.client_codec.sent(chunk)  # as the lab's connection does for raw sends
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
