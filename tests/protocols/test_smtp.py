"""Tests for lab/protocols/smtp: the conversation in memory, the server's replies
to every command in every state, the client verbs against our server, and
hostile input on real sockets."""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
from typing import Any

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab import Lab
from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import smtp
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import STREAM_ABOVE
from lab.protocols.smtp import AuthResponse, Command, MailData, MailEnd, MailPart, Reply
from lab.services import Services
from lab.services.mail import MAIL_STORE, MailStore

SETTINGS = settings(deadline=None, max_examples=150)


# -- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "verb", "arg"),
    [
        (b"EHLO client.test\r\n", "EHLO", "client.test"),
        (b"ehlo client.test\n", "EHLO", "client.test"),  # lower case, bare LF
        (b"MAIL FROM:<a@b.test> SIZE=10\r\n", "MAIL", "FROM:<a@b.test> SIZE=10"),
        (b"QUIT\r\n", "QUIT", ""),
        (b"NOOP   \r\n", "NOOP", ""),
    ],
)
def test_command_lines_parse(raw: bytes, verb: str, arg: str) -> None:
    """A verb, upper-cased, and its argument; raw kept exactly."""
    cmd = smtp.parse_command(raw)
    assert (cmd.verb, cmd.arg, cmd.problem, cmd.raw) == (verb, arg, "", raw)
    assert cmd.kind == verb  # hooks select by verb


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"HELO " + b"x" * 600 + b"\r\n", "longer than 512"),
        (b"HELO a\x00b\r\n", "NUL"),
        (b"HELO caf\xc3\xa9\r\n", "8-bit"),
        (b"HELO a\x07b\r\n", "control"),
        (b"QUIT", "no line ending"),
    ],
)
def test_bad_command_lines_decode_with_a_problem(raw: bytes, problem: str) -> None:
    """Rule breakers still decode (the server answers 500), keeping their bytes."""
    cmd = smtp.parse_command(raw)
    assert problem in cmd.problem
    assert cmd.raw == raw
    assert "bad command line" in cmd.summary()


def test_auth_lines_may_be_long() -> None:
    """RFC 4954 §4: AUTH lines up to 12288 octets."""
    assert smtp.parse_command(b"AUTH PLAIN " + b"A" * 5000 + b"\r\n").problem == ""


def test_command_of_refuses_line_breaks() -> None:
    """A command cannot smuggle a second line."""
    with pytest.raises(LocalProtocolError):
        Command.of("MAIL", "FROM:<a@b>\r\nRCPT TO:<c@d>")
    assert Command.of("RCPT", "TO:<a@b>").raw == b"RCPT TO:<a@b>\r\n"


def test_auth_summaries_hide_passwords() -> None:
    """AUTH PLAIN shows the user, never the password; SASL lines hide their content."""
    token = base64.b64encode(b"\x00alice\x00s3cret").decode()
    cmd = Command.of("AUTH", f"PLAIN {token}")
    assert cmd.summary() == "AUTH PLAIN ••••••  (user alice, sent in cleartext, base64)"
    assert token not in str(cmd.fields())
    assert "s3cret" not in AuthResponse.of(b"s3cret").summary()
    assert AuthResponse.of(None).summary() == "auth cancelled (*)"


def test_reply_of_and_summary() -> None:
    """Multi-line replies: code-text lines, code SP text last."""
    reply = Reply.of(250, "lab.test greets x", "PIPELINING", "SIZE 100")
    assert reply.raw == b"250-lab.test greets x\r\n250-PIPELINING\r\n250 SIZE 100\r\n"
    assert reply.summary() == "250 lab.test greets x / PIPELINING / SIZE 100"
    assert Reply.of(221).raw == b"221\r\n"
    assert Reply.of(550, "5.7.1 relaying denied").enhanced == "5.7.1"
    assert "lines" in reply.volatile
    with pytest.raises(LocalProtocolError):
        Reply.of(250, "two\r\nlines")
    with pytest.raises(LocalProtocolError):
        Reply.of(600, "x")


def test_dot_stuffing_round_trip() -> None:
    """Leading dots doubled, line ends made CRLF, the dot line added."""
    data = MailData.of(b"Subject: x\n\n.hidden\n..two\nlast")
    assert data.raw == b"Subject: x\r\n\r\n..hidden\r\n...two\r\nlast\r\n.\r\n"
    assert data.content == b"Subject: x\r\n\r\n.hidden\r\n..two\r\nlast\r\n"
    assert data.size == len(data.content)
    assert MailData.of(b"").raw == b".\r\n"


def test_mail_data_describes_the_message() -> None:
    """The summary names size and subject; fields list the headers; dates are volatile."""
    data = MailData.of("Subject: =?utf-8?q?caf=C3=A9?=\r\nFrom: a@b\r\nDate: Tue, 1 Jan 2030\r\n\r\nhi\r\n")
    assert data.summary() == 'message, 72 bytes, Subject "café"'
    fields = data.fields()
    assert (fields["subject"], fields["from"]) == ("café", "a@b")
    assert {"date", "message_id"} <= data.volatile


# -- the conversation ------------------------------------------------------------------------


def server_conv() -> smtp.SmtpConversation:
    """A server-side conversation that has greeted."""
    conv = smtp.SmtpConversation(Role.SERVER)
    conv.send(Reply.of(220, "hi"))
    return conv


def replies(conv: smtp.SmtpConversation, *codes: int) -> None:
    for code in codes:
        conv.send(Reply.of(code, "x"))


def pull(conv: smtp.SmtpConversation) -> list[Message]:
    out = []
    while (msg := conv.next_message()) is not None:
        out.append(msg)
    return out


def test_data_holds_the_client_until_354() -> None:
    """After DATA the client's next bytes wait for the server's answer: 354 makes them a message."""
    conv = server_conv()
    msgs = conv.feed(b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert [m.summary() for m in msgs] == ["DATA"]
    assert conv.client_next is smtp.ClientNext.WAIT_DATA and conv.buffered() > 0
    replies(conv, 354)
    rest = pull(conv)
    assert isinstance(rest[0], MailData) and rest[0].content == b"Subject: hi\r\n\r\nbody\r\n"
    assert isinstance(rest[1], Command) and rest[1].verb == "QUIT"


def test_refused_data_keeps_reading_commands() -> None:
    """A 503 to DATA means the next line is a command again."""
    conv = server_conv()
    assert [m.summary() for m in conv.feed(b"DATA\r\nQUIT\r\n")] == ["DATA"]
    replies(conv, 503)
    (msg,) = pull(conv)
    assert isinstance(msg, Command) and msg.verb == "QUIT"


def test_pipelined_replies_are_followed() -> None:
    """MAIL, RCPT, DATA in one packet: only the third reply decides what follows."""
    conv = server_conv()
    assert len(conv.feed(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n.\r\n")) == 3
    replies(conv, 250)
    assert conv.client_next is smtp.ClientNext.WAIT_DATA
    replies(conv, 250, 354)
    (msg,) = pull(conv)
    assert isinstance(msg, MailData) and msg.content == b""


def test_raw_replies_are_followed() -> None:
    """Replies sent as raw bytes are decoded too, so the state follows them."""
    conv = smtp.SmtpConversation(Role.SERVER)
    conv.send_data(b"220 hi\r\n")
    conv.feed(b"DATA\r\n")
    conv.send_data(b"35")
    conv.send_data(b"")  # an empty raw send is not the end of the replies
    assert conv.client_next is smtp.ClientNext.WAIT_DATA
    conv.send_data(b"4 go\r\n")
    assert conv.client_next is smtp.ClientNext.MESSAGE
    assert [m.summary() for m in conv.take_sent()] == ["220 hi", "354 go"]


def test_an_observer_waits_for_the_real_answer() -> None:
    """An observer holds the client's bytes after DATA until it sees the server's reply."""
    conv = smtp.SmtpConversation(None)
    conv.observe(b"220 hi\r\n", Role.SERVER)
    got = conv.observe(b"DATA\r\nhello\r\n.\r\n", Role.CLIENT)
    assert [m.summary() for _, m in got] == ["DATA"]
    got = conv.observe(b"354 go\r\n", Role.SERVER)
    assert [(side, m.kind) for side, m in got] == [(Role.SERVER, "reply"), (Role.CLIENT, "data")]
    refused = smtp.SmtpConversation(None)
    refused.observe(b"220 hi\r\n", Role.SERVER)
    refused.observe(b"DATA\r\nQUIT\r\n", Role.CLIENT)
    got = refused.observe(b"554 no\r\n", Role.SERVER)
    assert [m.summary() for _, m in got] == ["554 no", "QUIT"]


def test_auth_login_exchange() -> None:
    """334 makes the next line a SASL response; 235 ends the exchange."""
    conv = server_conv()
    assert conv.feed(b"AUTH LOGIN\r\n")[0].summary() == "AUTH LOGIN"
    replies(conv, 334)
    assert isinstance(conv.feed(b"dXNlcg==\r\n")[0], AuthResponse)
    replies(conv, 334)
    assert isinstance(conv.feed(b"cGFzcw==\r\n")[0], AuthResponse)
    replies(conv, 235)
    assert isinstance(conv.feed(b"NOOP\r\n")[0], Command)


def test_message_problems() -> None:
    """A text line over 1000 octets or a NUL marks the message (the server refuses it)."""
    long, nul = b"x" * 1200 + b"\r\n", b"a\x00b\r\n"
    for body, problem in ((long + b".\r\n", "longer than 1000"), (nul + b".\r\n", "NUL"),
                          (nul + long + b".\r\n", "NUL"), (long + nul + b".\r\n", "longer than 1000"),
                          (b"\x00" + long + b".\r\n", "longer than 1000")):
        conv = server_conv()
        conv.feed(b"DATA\r\n")
        replies(conv, 354)
        (msg,) = conv.feed(body)
        assert isinstance(msg, MailData) and problem in msg.problem


def test_a_large_message_arrives_in_parts() -> None:
    """Over 64 KiB a message is parts and an end, never one object; the content adds up."""
    content = b"Subject: big\r\n\r\n" + b"".join(b"line %06d .x\r\n" % i for i in range(20_000))
    data = MailData.of(content)
    conv = server_conv()
    conv.feed(b"DATA\r\n")
    replies(conv, 354)
    msgs = conv.feed(data.raw)
    assert isinstance(msgs[0], MailPart) and isinstance(msgs[-1], MailEnd)
    assert all(len(m.raw) <= STREAM_ABOVE + 1000 for m in msgs)
    assert b"".join(m.content for m in msgs if isinstance(m, MailPart)) == data.content
    assert b"".join(m.raw for m in msgs) == data.raw
    assert msgs[-1].size == data.size
    assert msgs[0].summary().startswith('message (in parts), first') and 'Subject "big"' in msgs[0].summary()
    assert conv.client_next is smtp.ClientNext.COMMAND


def test_command_line_hard_cap() -> None:
    """More than 12288 octets without a line end spends the conversation's client side at once."""
    conv = server_conv()
    with pytest.raises(RemoteProtocolError, match="longer than 12288"):
        conv.feed(b"A" * 13000)
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"QUIT\r\n")


def test_end_of_stream_in_data_is_an_error() -> None:
    """A client that closes inside the message has sent no message."""
    conv = server_conv()
    conv.feed(b"DATA\r\n")
    replies(conv, 354)
    assert conv.feed(b"partial\r\n") == []
    with pytest.raises(RemoteProtocolError, match="ended inside a message"):
        conv.feed(b"")


def test_a_dot_after_a_bare_lf_is_not_unstuffed() -> None:
    """Lines end in CRLF: a dot after a bare LF is text, kept as sent."""
    conv = server_conv()
    conv.feed(b"DATA\r\n")
    replies(conv, 354)
    (msg,) = conv.feed(b"a\n.b\r\n..c\r\n.\r\n")
    assert isinstance(msg, MailData) and msg.content == b"a\n.b\r\n.c\r\n" and msg.size == len(msg.content)


def test_data_end_needs_crlf_dot_crlf() -> None:
    """A bare-LF dot line does not end the message (no SMTP smuggling)."""
    conv = server_conv()
    conv.feed(b"DATA\r\n")
    replies(conv, 354)
    assert conv.feed(b"a\n.\nMAIL FROM:<x@y>\r\n") == []
    (msg,) = conv.feed(b".\r\n")
    assert isinstance(msg, MailData) and b"MAIL FROM" in msg.content


def test_each_side_sends_only_its_own_messages() -> None:
    """A server cannot send a command, a client cannot send a reply."""
    with pytest.raises(LocalProtocolError):
        smtp.SmtpConversation(Role.SERVER).send(Command.of("NOOP"))
    with pytest.raises(LocalProtocolError):
        smtp.SmtpConversation(Role.CLIENT).send(Reply.of(250))
    with pytest.raises(LocalProtocolError):
        smtp.SmtpConversation(None).send(Reply.of(250))


_SMTP_BITS = [b"EHLO x\r\n", b"DATA\r\n", b"AUTH LOGIN\r\n", b"MAIL FROM:<a@b>\r\n", b"hi\r\n", b".\r\n",
              b"..x\r\n", b"\r\n", b"\n", b"\r", b".", b"\x00", b"\xff", b"QUIT", b"x" * 700, b"*\r\n"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_SMTP_BITS) | st.binary(max_size=20), max_size=25).map(b"".join),
       cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_client_side_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """What a client sends, split anywhere: only protocol errors, exact bytes, the same messages
    for the server receiving it, the client sending it and an observer (all held after DATA)."""
    laws.stream(smtp.SPEC.conversation, Role.CLIENT, data, cuts)


class Answering(smtp.SmtpConversation):
    """A server side that answers each client message at once: 354 to DATA,
    334 to AUTH and to every other SASL line, 250 to the rest."""

    sasl = 0

    def track(self, sender: Role, msg: Message) -> None:
        super().track(sender, msg)
        if sender is not Role.CLIENT or isinstance(msg, MailPart):
            return
        code = 250
        if isinstance(msg, Command) and msg.verb in ("DATA", "AUTH") and not msg.problem:
            code = 354 if msg.verb == "DATA" else 334
        elif isinstance(msg, AuthResponse):
            self.sasl += 1
            code = 334 if self.sasl % 2 else 235
        self.send(Reply.of(code))


def answering(role: Role | None, transport: Transport) -> smtp.SmtpConversation:
    conv = Answering(role, transport)
    conv.send(Reply.of(220))
    return conv


@SETTINGS
@given(data=st.lists(st.sampled_from(_SMTP_BITS) | st.binary(max_size=20), max_size=25).map(b"".join),
       cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_client_side_laws_with_replies(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """The same with a server that answers each message as it comes."""
    laws.stream(answering, Role.CLIENT, data, cuts, parts=(Role.SERVER,))
    laws.stream(answering, Role.CLIENT, data, cuts, eof=False, parts=(Role.SERVER,))


_REPLY_BITS = [b"250 ok\r\n", b"250-a\r\n", b"250 b\r\n", b"354\r\n", b"550-x\n", b"220 ", b"\r\n", b"999 x\r\n",
               b"25", b"0 x\r\n", b"\xff"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=10), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 500), max_size=8))
def test_server_side_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Replies split anywhere decode the same; garbage is a protocol error."""
    laws.stream(smtp.SPEC.conversation, Role.SERVER, data, cuts)
    laws.stream(smtp.SPEC.conversation, Role.SERVER, data, cuts, eof=False)


@SETTINGS
@given(code=st.integers(200, 599), lines=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                                             max_size=30), max_size=5))
def test_reply_round_trip(code: int, lines: list[str]) -> None:
    """Reply.of encodes what a client decodes back."""
    reply = Reply.of(code, *lines)
    decoded = smtp.SmtpConversation(Role.CLIENT).feed(reply.raw)
    assert decoded == [reply]


@SETTINGS
@given(content=st.binary(max_size=300))
def test_dot_stuffing_survives_the_server(content: bytes) -> None:
    """Whatever the message, the server gets back its CRLF-normalised content."""
    conv = server_conv()
    conv.feed(b"DATA\r\n")
    replies(conv, 354)
    data = MailData.of(content)
    msgs = conv.feed(data.raw)
    assert len(msgs) == 1 and isinstance(msgs[0], MailData)
    assert msgs[0].content == data.content
    assert msgs[0].size == len(data.content)


def test_replies_multi_line_and_errors() -> None:
    """Multi-line replies group; a changed code or a non-reply is an error."""
    msgs = smtp.SmtpConversation(Role.CLIENT).feed(b"250-a\r\n250-b\r\n250 c\r\n220 x\n")
    assert [(m.code, m.lines) for m in msgs if isinstance(m, Reply)] == [(250, ("a", "b", "c")), (220, ("x",))]
    with pytest.raises(RemoteProtocolError, match="code changed"):
        smtp.SmtpConversation(Role.CLIENT).feed(b"250-a\r\n251 b\r\n")
    with pytest.raises(RemoteProtocolError, match="not an SMTP reply"):
        smtp.SmtpConversation(Role.CLIENT).feed(b"hello\r\n")


def test_replies_match_their_code() -> None:
    """expect 250 / "250" compares the code; other patterns as for any message."""
    reply = Reply.of(250, "2.1.0 sender <a@b> ok")
    assert reply.matches(250) and reply.matches("250") and not reply.matches(354)
    assert reply.matches("sender") and reply.matches(b"<a@b>") and not Reply.of(354, "250").matches("250")


@functools.cache
def recorded_session() -> Loopback:
    """A pipelined transaction, AUTH LOGIN, a refused DATA, a large message and QUIT."""

    async def main() -> Loopback:
        lb = Loopback(smtp.SPEC, options={"user": ["alice=pw"]})
        client = smtp.SmtpClient(lb)
        await client.send_mail("a@far.test", ["b@lab.test", "c@far.test"], "Subject: one\n\nhi\n")
        assert (await client.auth("alice", "pw", mechanism="LOGIN")).code == 235
        await client.rset()
        assert (await client.data("refused")).code == 503
        await client.send_mail("a@far.test", "b@lab.test", b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 1000)
        await client.quit()
        return lb

    lb: Loopback = asyncio.run(main())
    assert any(isinstance(m, MailPart) for m in lb.seen[Role.SERVER])
    return lb


@settings(deadline=None, max_examples=40)  # each example replays a 70 KB session
@given(cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, cuts: list[int]) -> None:
    """A recorded session replayed to an observer, split anywhere: the same messages on both sides."""
    laws.observer_replays(smtp.SPEC.conversation, recorded_session(), cuts)


# -- the server, in memory ---------------------------------------------------------------------


class Dialogue:
    """One SMTP session with a server behaviour through a server-side conversation."""

    def __init__(self, server: smtp.SmtpServer | None = None, **options: object) -> None:
        self.server = server or make_server(**options)
        self.conv = smtp.SmtpConversation(Role.SERVER)
        self.peer = FakePeer(conversation=self.conv)
        self.session = open_session(self.server, self.peer)

    def send(self, data: bytes) -> list[Reply]:
        start = len(self.peer.sent)
        try:
            self.conv.receive_data(data)
            while not self.peer.closed and (msg := self.conv.next_message()) is not None:
                self.session.message_received(msg)  # one at a time: an answer may release more
        except RemoteProtocolError as exc:
            self.session.protocol_error(exc)
        return [m for m in self.peer.sent[start:] if isinstance(m, Reply)]

    def codes(self, data: bytes) -> list[int]:
        return [r.code for r in self.send(data)]


def make_server(**options: object) -> smtp.SmtpServer:
    server = smtp.SPEC.server(smtp.SPEC.resolve_options(options))
    assert isinstance(server, smtp.SmtpServer)
    return server


def store_of(server: smtp.SmtpServer) -> MailStore:
    return server.store


def test_greeting_and_ehlo_extensions() -> None:
    """220 greeting; EHLO lists PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES; AUTH only with users."""
    s = Dialogue()
    assert s.peer.sent[0].raw == b"220 lab.test ESMTP netlab ready\r\n"
    reply = s.send(b"EHLO me.test\r\n")[0]
    assert reply.code == 250 and reply.lines[0] == "lab.test greets me.test"
    assert {"PIPELINING", f"SIZE {smtp.DEFAULT_SIZE}", "8BITMIME", "ENHANCEDSTATUSCODES"} <= set(reply.lines)
    assert not any(x.startswith("AUTH") for x in reply.lines)
    with_users = Dialogue(user=["alice=pw"]).send(b"EHLO me\r\n")[0]
    assert "AUTH PLAIN LOGIN" in with_users.lines


def test_a_whole_transaction_delivers_with_trace_headers() -> None:
    """MAIL, RCPT, DATA deliver once per mailbox, with Return-Path and Received first."""
    s = Dialogue()
    assert s.codes(b"HELO me\r\nMAIL FROM:<bob@far.test>\r\nRCPT TO:<Alice@LAB.test>\r\n"
                   b"RCPT TO:<postmaster>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n") == [250, 250, 250, 250, 250, 354]
    assert s.codes(b"Subject: hi\r\n\r\n..dot\r\n.\r\n") == [250]
    store = store_of(s.server)
    (msg,) = store.messages("alice")
    assert msg.data.startswith(b"Return-Path: <bob@far.test>\r\nReceived: from me ([127.0.0.1])\r\n")
    assert msg.data.endswith(b"\r\nSubject: hi\r\n\r\n.dot\r\n")
    assert b" with SMTP id " in msg.data
    assert len(store.messages("postmaster")) == 1


@pytest.mark.parametrize(
    ("script", "codes"),
    [
        (b"MAIL FROM:<a@b.test>\r\n", [503]),  # before HELO
        (b"HELO x\r\nRCPT TO:<a@lab.test>\r\n", [250, 503]),  # RCPT before MAIL
        (b"HELO x\r\nDATA\r\n", [250, 503]),  # DATA before MAIL
        (b"HELO x\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n", [250, 250, 554]),  # DATA without RCPT
        (b"HELO x\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n", [250, 250, 503]),  # nested MAIL
        (b"HELO x\r\nMAIL FROM:a@b.test\r\n", [250, 501]),  # no brackets
        (b"HELO x\r\nMAIL TO:<a@b.test>\r\n", [250, 501]),
        (b"HELO x\r\nMAIL FROM:<not an address>\r\n", [250, 553]),
        (b"HELO x\r\nMAIL FROM:<a@b.test> SIZE=10\r\n", [250, 555]),  # SIZE needs EHLO
        (b"EHLO x\r\nMAIL FROM:<a@b.test> SIZE=999999999\r\n", [250, 552]),
        (b"EHLO x\r\nMAIL FROM:<a@b.test> FOO=1\r\n", [250, 555]),
        (b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<someone@elsewhere.test>\r\n", [250, 250, 550]),  # no relaying
        (b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<bad address>\r\n", [250, 250, 501]),
        (b"HELO\r\n", [501]),
        (b"EHLO\r\n", [501]),
        (b"BOGUS\r\n", [500]),
        (b"\r\n", [500]),
        (b"HELO a\x00b\r\n", [500]),
        (b"EXPN list\r\n", [502]),
        (b"VRFY\r\n", [501]),
        (b"VRFY nobody\r\n", [252]),
        (b"VRFY x@elsewhere.test\r\n", [550]),
        (b"HELP\r\n", [214]),
        (b"NOOP\r\n", [250]),
        (b"RSET\r\n", [250]),
        (b"DATA extra\r\n", [501]),
        (b"AUTH PLAIN\r\n", [502]),  # no users configured
        (b"QUIT\r\n", [221]),
    ],
)
def test_reply_codes(script: bytes, codes: list[int]) -> None:
    """Each mistake gets the reply code RFC 5321 gives it."""
    assert Dialogue().codes(script) == codes


def test_rset_forgets_the_transaction() -> None:
    """After RSET, RCPT needs a new MAIL."""
    s = Dialogue()
    assert s.codes(b"HELO x\r\nMAIL FROM:<>\r\nRSET\r\nRCPT TO:<a@lab.test>\r\n") == [250, 250, 250, 503]


def test_refused_messages_are_not_delivered() -> None:
    """Long lines (500) and NUL bytes (554) refuse the message; nothing lands."""
    s = Dialogue()
    s.codes(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
    assert s.codes(b"x" * 1200 + b"\r\n.\r\n") == [500]
    s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
    assert s.codes(b"a\x00b\r\n.\r\n") == [554]
    assert store_of(s.server).messages("a") == []
    assert s.codes(b"NOOP\r\n") == [250]  # the session goes on


def test_size_option_and_oversized_data() -> None:
    """--size is advertised; a message over it gets 552 at its end and the session goes on
    (RFC 1870 §6), for HELO clients too."""
    s = Dialogue(size="1K")
    assert "SIZE 1024" in s.send(b"EHLO x\r\n")[0].lines
    s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
    assert s.codes(b"x" * 900 + b"\r\n" + b"y" * 900 + b"\r\n") == []
    assert s.codes(b".\r\n") == [552]
    assert not s.peer.closed and store_of(s.server).messages("a") == []
    assert s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nsmall\r\n.\r\n") == [250, 250, 354, 250]
    helo = Dialogue(size="100")
    assert helo.codes(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n"
                      + b"z" * 200 + b"\r\n.\r\n") == [250, 250, 250, 354, 552]


def test_a_message_larger_than_the_stream_threshold_is_delivered_whole() -> None:
    """A 1 MB message arrives in parts and lands in the store complete."""
    s = Dialogue()
    content = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 60_000
    s.codes(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
    assert s.codes(MailData.of(content).raw) == [250]
    assert store_of(s.server).messages("a")[0].data.endswith(content)


def test_recipient_limit() -> None:
    """More recipients than --max-recipients: 452 (RFC 5321 §4.5.3.1.10)."""
    s = Dialogue(max_recipients="2")
    assert s.codes(b"HELO x\r\nMAIL FROM:<>\r\n" + b"RCPT TO:<a@lab.test>\r\n" * 3) == [250, 250, 250, 250, 452]


def test_domain_option() -> None:
    """--domain replaces the default domains; postmaster always works."""
    s = Dialogue(domain=["example.test"])
    assert s.codes(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<a@lab.test>\r\n"
                   b"RCPT TO:<postmaster>\r\n") == [250, 250, 250, 550, 250]


def test_too_many_errors_hang_up() -> None:
    """Twenty bad commands: 421 and the connection closes."""
    s = Dialogue()
    codes = s.codes(b"BAD\r\n" * 25)
    assert codes[-1] == 421 and len(codes) == 20 and s.peer.closed


def test_auth_plain_and_login() -> None:
    """AUTH PLAIN with an initial response and AUTH LOGIN's two challenges."""
    s = Dialogue(user=["alice=wonderland"])
    token = base64.b64encode(b"\x00alice\x00wonderland")
    assert s.codes(b"EHLO x\r\nAUTH PLAIN " + token + b"\r\n") == [250, 235]
    assert s.codes(b"AUTH PLAIN " + token + b"\r\n") == [503]  # already
    s = Dialogue(user=["alice=wonderland"])
    s.codes(b"EHLO x\r\n")
    first = s.send(b"AUTH LOGIN\r\n")[0]
    assert (first.code, base64.b64decode(first.lines[0])) == (334, b"Username:")
    assert s.codes(base64.b64encode(b"alice") + b"\r\n") == [334]
    assert s.codes(base64.b64encode(b"wrong") + b"\r\n") == [535]
    assert s.codes(b"AUTH PLAIN\r\n") == [334]
    assert s.codes(b"*\r\n") == [501]
    assert s.codes(b"AUTH PLAIN\r\n!!notbase64\r\n") == [334, 501]
    assert s.codes(b"AUTH CRAM-MD5\r\n") == [504]
    assert s.codes(b"NOOP\r\n") == [250]


def test_authenticated_mail_says_esmtpa() -> None:
    """The Received line records an authenticated submission."""
    s = Dialogue(user=["alice=wonderland"])
    token = base64.b64encode(b"\x00alice\x00wonderland")
    s.codes(b"EHLO x\r\nAUTH PLAIN " + token + b"\r\nMAIL FROM:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\n"
            b"DATA\r\nhi\r\n.\r\n")
    assert b"with ESMTPA id" in store_of(s.server).messages("bob")[0].data


def test_servers_of_one_lab_share_the_store() -> None:
    """Two servers with the same Services deliver into one store."""
    services = Services()
    first, second = make_server(), make_server()
    first.services = second.services = services
    for server in (first, second):
        Dialogue(server).codes(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nhi\r\n.\r\n")
    store = services.find(MAIL_STORE)
    assert isinstance(store, MailStore) and len(store.messages("a")) == 2


def test_options_refuse_nonsense() -> None:
    """Bad domains, users and sizes are config errors with hints."""
    for opts in ({"domain": ["not a domain"]}, {"user": ["nopassword"]}, {"size": "lots"}, {"size": "1000M"},
                 {"max_recipients": "0"}):
        with pytest.raises(ConfigError) as info:
            smtp.SPEC.resolve_options(opts)
        assert info.value.hint


# -- the client verbs --------------------------------------------------------------------------------


def test_send_mail_verb_pipelines_and_delivers(loopback: type[Loopback], arun: Runner) -> None:
    """send_mail: EHLO, then MAIL/RCPT/DATA before any reply (PIPELINING), then the message."""

    async def main() -> tuple[Reply, Loopback]:
        lb = loopback(smtp.SPEC)
        client = smtp.SmtpClient(lb)
        reply = await client.send_mail("bob@far.test", ["alice@lab.test"], "Subject: hi\n\n.dot\n")
        return reply, lb

    reply, lb = arun(main())
    assert reply.code == 250 and "queued as" in reply.lines[0]
    assert lb.client_writes[1:4] == [b"MAIL FROM:<bob@far.test> SIZE=21\r\n", b"RCPT TO:<alice@lab.test>\r\n",
                                     b"DATA\r\n"]
    assert lb.client_writes[4] == b"Subject: hi\r\n\r\n..dot\r\n.\r\n"
    assert lb.behaviour.store.messages("alice")[0].data.endswith(b"Subject: hi\r\n\r\n.dot\r\n")


def test_send_mail_refusals(loopback: type[Loopback], arun: Runner) -> None:
    """A refused recipient among good ones is kept in `refused`; all refused raises and resets."""

    async def main() -> tuple[dict[str, Reply], str]:
        client = smtp.SmtpClient(loopback(smtp.SPEC))
        await client.send_mail("a@b.test", ["x@lab.test", "y@far.test"], "hi")
        refused = dict(client.refused)
        with pytest.raises(smtp.SmtpReplyError) as info:
            await client.send_mail("a@b.test", "y@far.test", "hi")
        return refused, str(info.value)

    refused, error = arun(main())
    assert list(refused) == ["y@far.test"] and refused["y@far.test"].code == 550
    assert "RCPT TO:<y@far.test> refused: 550" in error


def test_send_mail_takes_an_email_message(loopback: type[Loopback], arun: Runner) -> None:
    """An email.message.EmailMessage is sent with CRLF line ends, as the stdlib renders it."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "Grüße"
    msg["From"] = "bob@far.test"
    msg.set_content("Hallo.\n.leading dot\n")

    async def main() -> bytes:
        lb = loopback(smtp.SPEC)
        await smtp.SmtpClient(lb).send_mail("bob@far.test", "alice@lab.test", msg)
        return lb.behaviour.store.messages("alice")[0].data

    stored = arun(main())
    assert stored.endswith(b"\r\n\r\nHallo.\r\n.leading dot\r\n")
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" in stored


def test_non_ascii_addresses_are_refused_locally(loopback: type[Loopback], arun: Runner) -> None:
    """SMTPUTF8 is not spoken: the error says so before anything is sent."""

    async def main() -> None:
        with pytest.raises(LocalProtocolError) as info:
            await smtp.SmtpClient(loopback(smtp.SPEC)).send_mail("zoë@far.test", "alice@lab.test", "x")
        assert "SMTPUTF8" in str(info.value)

    arun(main())


def test_command_verbs_and_auth(loopback: type[Loopback], arun: Runner) -> None:
    """Each verb returns the reply; auth LOGIN answers both challenges."""

    async def main() -> list[int]:
        client = smtp.SmtpClient(loopback(smtp.SPEC, options={"user": ["alice=pw"]}))
        codes = [(await client.ehlo()).code, (await client.auth("alice", "pw", mechanism="LOGIN")).code]
        codes += [(await client.mail("a@b.test")).code, (await client.rcpt("c@lab.test")).code,
                  (await client.data("x")).code, (await client.noop()).code, (await client.vrfy("c")).code,
                  (await client.rset()).code, (await client.command("HELP")).code, (await client.quit()).code]
        return codes

    assert arun(main()) == [250, 235, 250, 250, 250, 250, 250, 250, 214, 221]


# -- hostile input on real sockets ----------------------------------------------------------------------


def talk(port: int, data: bytes, *, close_early: bool = False, timeout: float = 20) -> bytes:
    """Send ``data``, half-close, read every reply until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.recv(1024)  # greeting
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        if close_early:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return b""
        out = b""
        try:
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass  # the server hung up first (and the reset may eat its last words)
        return out


def sent_by(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
            if e.direction.value == "out"]


def deliveries(lab: Lab) -> int:
    store = lab.services.find(MAIL_STORE)
    return 0 if store is None else sum(len(store.messages(n)) for n in store.names())


def still_serves(lab: Lab, port: int) -> None:
    c = lab.connect("smtp", port)
    assert c.send_mail("a@b.test", "ok@lab.test", "Subject: fine\n\nstill here\n").code == 250
    c.quit()


def test_hostile_clients_get_replies_and_others_are_served(lab: Lab) -> None:
    """Missing CRLF, a 1 MB line, NUL bytes, unknown verbs, commands out of state:
    the right replies, no delivery, and the next client is served."""
    srv = lab.serve("smtp")
    before = deliveries(lab)
    # commands out of state and garbage: 503, 500; a line ending in a bare LF is refused
    out = talk(srv.port, b"RCPT TO:<a@lab.test>\r\nDATA\nXYZZY\r\nHELO a\x00b\r\nQUIT\r\n")
    assert [line[:3] for line in out.split(b"\r\n") if line] == [b"503", b"500", b"500", b"500", b"221"]
    # a command without CRLF before the client closes: answered, and refused
    assert talk(srv.port, b"NOOP") == b"500 5.5.2 no line ending\r\n"
    # a 1 MB line: 500, and the server hangs up on that client (the log shows the
    # reply even when the client's unread bytes make the close a reset that eats it)
    out = talk(srv.port, b"HELO " + b"x" * (1 << 20) + b"\r\n")
    assert out in (b"", b"500 5.5.2 command line longer than 12288 octets; closing\r\n")
    wait_until(lambda: "500 5.5.2 command line longer than 12288 octets; closing" in sent_by(lab, srv.name),
               what="the 500 reply in the log")
    # a client that half-closes right after 354: nothing to deliver
    out = talk(srv.port, b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
    assert out.endswith(b"354 start mail input; end with <CRLF>.<CRLF>\r\n")
    assert deliveries(lab) == before
    still_serves(lab, srv.port)


def test_one_megabyte_line_in_data(lab: Lab) -> None:
    """A 1 MB text line in a message: 500, nothing delivered, the session goes on."""
    srv = lab.serve("smtp")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
        assert [f.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        s.sendall(b"Subject: long\r\n\r\n" + b"z" * (1 << 20) + b"\r\n.\r\nNOOP\r\n")
        assert f.readline().startswith(b"500 5.5.2 message refused: it has a line longer than 1000")
        assert f.readline().startswith(b"250")
    assert deliveries(lab) == 0


def test_disconnect_in_the_middle_of_data_delivers_nothing(lab: Lab) -> None:
    """An abrupt close (RST) or a plain close inside DATA: no partial message, ever."""
    srv = lab.serve("smtp")
    start = b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nSubject: half\r\n\r\nsome of it\r\n"
    talk(srv.port, start, close_early=True)  # RST
    talk(srv.port, start)  # FIN
    talk(srv.port, start + b".")  # a dot without its CRLF
    wait_until(lambda: not srv.connections, what="the hostile connections to close")
    assert deliveries(lab) == 0
    notes = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset(
        {EventKind.INFO, EventKind.ERROR})))]
    assert any("nothing delivered" in n or "no message delivered" in n for n in notes)
    still_serves(lab, srv.port)
    assert deliveries(lab) == 1


def test_pipelined_session_in_one_write(lab: Lab) -> None:
    """`printf ... | nc`: a whole session in one packet, message included, is delivered."""
    srv = lab.serve("smtp")
    out = talk(srv.port, b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@lab.test>\r\nDATA\r\n"
                         b"Subject: one shot\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    assert [line[:3] for line in out.split(b"\r\n") if line[3:4] == b" "] == [b"250", b"250", b"250", b"354",
                                                                              b"250", b"221"]
    assert deliveries(lab) == 1


def test_spec() -> None:
    """One conversation for both sides; TCP only, port 25."""
    assert smtp.SPEC.conversation is smtp.SmtpConversation
    assert smtp.SPEC.transports == (Transport.TCP,) and smtp.SPEC.default_port == 25


def test_a_delayed_354_gets_the_message_sent_with_data(lab: Lab) -> None:
    """A server that answers DATA a moment later (as a relay does) still reads the
    message the client sent in the same write as DATA."""
    srv = lab.serve("smtp")

    def later(msg: Command, conn: Any) -> None:
        lab.clock.call_later(0.2, conn.session.handle_data, msg.arg)

    srv.on("DATA", later)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nSubject: late\r\n\r\nhi\r\n.\r\n")
        assert [f.readline()[:3] for _ in range(5)] == [b"250", b"250", b"250", b"354", b"250"]
    assert deliveries(lab) == 1


def test_hooks_select_commands_by_verb(lab: Lab) -> None:
    """srv.on("HELO", fn) replaces the HELO handling only; the rest is the protocol's."""
    srv = lab.serve("smtp")

    def rude(msg: object, conn: object) -> None:
        conn.send(Reply.of(250, "I'll call you whatever I like"))  # type: ignore[attr-defined]

    srv.on("HELO", rude)
    c = lab.connect("smtp", srv)
    assert c.helo("me").lines == ("I'll call you whatever I like",)
    assert c.noop().code == 250
    assert c.mail("a@b.test").code == 503  # the server never saw a HELO


def test_smtp_is_registered_and_served_from_the_command_line() -> None:
    """`netlab serve smtp --help` lists the options; `netlab protocols` the protocols."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "lab", "serve", "smtp", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--domain", "--user", "--size", "--max-recipients", "--maildir", "--hostname"):
        assert flag in out.stdout
    listing = subprocess.run([sys.executable, "-m", "lab", "protocols"], capture_output=True, text=True, timeout=60)
    assert "smtp" in listing.stdout and "pop3" in listing.stdout


def test_connection_cap(lab: Lab) -> None:
    """max_connections refuses the extra client, closing it without a greeting."""
    srv = lab.serve("smtp", max_connections=1)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as first:
        assert first.recv(100).startswith(b"220 ")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as second:
            try:
                assert second.recv(100) == b""
            except ConnectionResetError:
                pass
    assert srv.refused == 1
    wait_until(lambda: not srv.connections, what="the first client to be gone")
    still_serves(lab, srv.port)


def test_idle_clients_are_closed(lab: Lab) -> None:
    """A client silent for idle_timeout seconds is hung up on; others are served."""
    srv = lab.serve("smtp", idle_timeout=1.0)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as quiet:
        assert quiet.recv(100).startswith(b"220 ")
        try:
            assert quiet.recv(100) == b""
        except ConnectionResetError:
            pass
    still_serves(lab, srv.port)


def test_verbs_after_the_greeting_was_expected_by_hand(lab: Lab) -> None:
    """`expect c 220` takes the greeting from the inbox: the first verb must
    not wait for it again; without the expect, the verb reads past it."""
    srv = lab.serve("smtp")
    c = lab.connect("smtp", srv)
    assert c.expect(220).code == 220
    assert c.ehlo("me").code == 250
    assert c.verbs.greeting is not None and c.verbs.greeting.code == 220
    d = lab.connect("smtp", srv)
    wait_until(lambda: d.verbs.greeting is not None, what="the greeting to arrive")
    assert d.noop().code == 250
