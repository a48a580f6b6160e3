"""SMTP hardening: over-size messages answered with 552 and the session
kept (RFC 5321 §4.5.3.1.10, RFC 1870 §6), bare LF refused unless the
server is told to take it (RFC 5321 §2.3.8), and the client's 8BITMIME
(RFC 6152 §3).  Codec and server run in memory; the tests whose names
say interop use real sockets and peers nobody here wrote (smtplib,
swaks, aiosmtpd).
"""

from __future__ import annotations

import itertools
import smtplib
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import require, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from test_smtp import Dialogue, store_of

from lab import Lab
from lab.errors import LocalProtocolError, RemoteProtocolError
from lab.eventlog import EventFilter, EventKind
from lab.protocols import smtp
from lab.protocols._base import Role
from lab.protocols.smtp import Command, MailData, MailEnd, MailPart, SmtpConversation
from lab.protocols.smtp._codec import MAX_DATA_LINE, has_bare_lf
from lab.services.mail import MAIL_STORE

OPEN_DATA = b"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n"


def notes(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.INFO})))]


def sent_by(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
            if e.direction.value == "out"]


# -- codec ------------------------------------------------------------------------------


@given(st.binary(max_size=60))
def test_has_bare_lf_is_an_lf_without_its_cr(data: bytes) -> None:
    """has_bare_lf says whether some LF is not preceded by CR."""
    assert has_bare_lf(data) == any(b == 0x0A and (i == 0 or data[i - 1] != 0x0D) for i, b in enumerate(data))


@given(body=st.binary(max_size=40).filter(lambda b: b"\n" not in b), ending=st.sampled_from([b"\r\n", b"\n"]))
def test_command_bare_lf_is_the_line_ending(body: bytes, ending: bytes) -> None:
    """A command line ending in LF alone decodes with bare_lf; CRLF never does."""
    cmd = smtp.parse_command(body + ending)
    assert cmd.bare_lf == (ending == b"\n" and not body.endswith(b"\r"))
    assert ("line_ending" in cmd.fields()) == cmd.bare_lf


def test_commands_made_here_never_end_in_bare_lf() -> None:
    """Command.of always writes CRLF."""
    assert not Command.of("HELO", "x").bare_lf
    assert smtp.parse_command(b"HELO x\n").summary() == "HELO x (bare LF)"


def decode_client(conv: SmtpConversation, data: bytes, cuts: list[int]) -> list[object]:
    """Feed ``data`` cut at ``cuts`` to a server-side conversation, answering
    DATA with 354 the moment it decodes."""
    out: list[object] = []
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    for start, end in itertools.pairwise(bounds):
        conv.receive_data(data[start:end])
        while (msg := conv.next_message()) is not None:
            out.append(msg)
            if isinstance(msg, Command):
                conv.send(smtp.Reply.of(354 if msg.verb == "DATA" else 250, "ok"))
            elif isinstance(msg, (MailData, MailEnd)):
                conv.send(smtp.Reply.of(552, "too big"))
    return out


UNFRAMABLE = (b"Subject: big\r\n\r\n" + b"a\r\n" * 30_000 + b"x" * (MAX_DATA_LINE + 5000) + b"\r\n"
              + b"tail\n.\r\nnot the end\r\n.\n\r\n")


@settings(max_examples=25)  # a megabyte per example
@given(cuts=st.lists(st.integers(0, len(OPEN_DATA) + len(UNFRAMABLE) + 20), max_size=6))
def test_a_line_too_long_to_frame_skips_to_the_end_of_the_message(cuts: list[int]) -> None:
    """However the bytes are cut: the message comes in parts, every byte in
    some message, memory held to about 64 KiB, the end carries the long-line
    problem; only CRLF.CRLF ends it, and the next command decodes."""
    data = OPEN_DATA + UNFRAMABLE + b".\r\nNOOP\r\n"
    conv = SmtpConversation(Role.SERVER)
    conv.send(smtp.Reply.of(220, "hi"))
    msgs = decode_client(conv, data, cuts)
    assert b"".join(m.raw for m in msgs) == data  # type: ignore[attr-defined]
    assert [m.verb for m in msgs if isinstance(m, Command)] == ["EHLO", "MAIL", "RCPT", "DATA", "NOOP"]
    parts = [m for m in msgs if isinstance(m, MailPart)]
    (end,) = [m for m in msgs if isinstance(m, MailEnd)]
    assert end.problem == "a line longer than 1000 octets"
    assert end.size == sum(len(p.content) for p in parts) >= len(UNFRAMABLE) - 10
    assert [p.offset for p in parts] == [sum(len(q.content) for q in parts[:i]) for i in range(len(parts))]
    assert conv.buffered() == 0


def test_eof_while_skipping_is_the_usual_error() -> None:
    """The client closing inside an unframable message ends the conversation as
    inside any message."""
    conv = SmtpConversation(Role.SERVER)
    conv.send(smtp.Reply.of(220, "hi"))
    decode_client(conv, OPEN_DATA + b"y" * (MAX_DATA_LINE + 10), [])
    conv.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="ended inside a message"):
        conv.next_message()


# -- server, in memory ------------------------------------------------------------------


def test_bare_lf_commands_are_refused_by_default() -> None:
    """A command ending in bare LF gets a 500 that names it, is not run, and the session goes on."""
    s = Dialogue()
    (reply,) = s.send(b"EHLO x\n")
    assert reply.code == 500 and "bare <LF>" in reply.lines[0]
    assert s.session.state is smtp.SmtpState.FRESH
    assert s.codes(b"EHLO x\r\n") == [250]
    # a bare-LF DATA is not a DATA: what follows is read as commands again
    assert s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\nNOOP\r\n") == [250, 250, 500, 250]


def test_accept_bare_lf_takes_commands_and_normalizes_messages() -> None:
    """--accept-bare-lf: LF-only commands run; bare LF in a message is stored as CRLF;
    only CRLF.CRLF ends the message all the same."""
    s = Dialogue(accept_bare_lf=True)
    assert s.codes(b"EHLO x\nMAIL FROM:<>\nRCPT TO:<a@lab.test>\nDATA\n") == [250, 250, 250, 354]
    assert s.codes(b"Subject: lf\n\nline one\n.\nstill in\r\n.\r\n") == [250]
    (msg,) = store_of(s.server).messages("a")
    assert msg.data.endswith(b"Subject: lf\r\n\r\nline one\r\n.\r\nstill in\r\n")


def test_bare_lf_in_a_message_is_refused_by_default() -> None:
    """A message with a bare LF: 554 naming it at its end, nothing delivered, session on;
    the smuggling sequences LF.LF and LF.CRLF do not end it."""
    s = Dialogue()
    s.codes(OPEN_DATA)
    replies = s.send(b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@far.test>\n.\r\nmore\r\n.\r\n")
    assert [r.code for r in replies] == [554] and "bare <LF>" in replies[0].lines[0]
    assert store_of(s.server).messages("a") == []
    assert s.codes(b"NOOP\r\n") == [250]


def test_oversize_message_is_refused_and_noted_and_the_session_goes_on() -> None:
    """Over --size: 552 at the end, an info note with the size, and the next mail is taken."""
    s = Dialogue(size="2K")
    s.codes(OPEN_DATA)
    assert s.codes(b"z" * 900 + b"\r\n" + b"y" * 900 + b"\r\n" + b"w" * 900 + b"\r\n.\r\n") == [552]
    assert any("over the size limit (2K)" in n for n in s.peer.notes)
    assert s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nsmall\r\n.\r\n") == [250, 250, 354, 250]


def test_without_8bitmime_body_and_8bit_messages_are_refused() -> None:
    """--accept-8bitmime no: EHLO does not offer it, BODY= is 555, an 8-bit message 554."""
    s = Dialogue(accept_8bitmime="no")
    assert "8BITMIME" not in s.send(b"EHLO x\r\n")[0].lines
    assert s.codes(b"MAIL FROM:<> BODY=8BITMIME\r\n") == [555]
    assert s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nSubject: caf\xc3\xa9\r\n.\r\n") == [250, 250, 354,
                                                                                                     554]
    assert s.codes(b"MAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\nplain\r\n.\r\n") == [250, 250, 354, 250]


def test_with_8bitmime_body_parameters_are_taken() -> None:
    """The default server offers 8BITMIME and takes BODY=8BITMIME and BODY=7BIT."""
    s = Dialogue()
    assert "8BITMIME" in s.send(b"EHLO x\r\n")[0].lines
    assert s.codes(b"MAIL FROM:<> BODY=8BITMIME\r\nRSET\r\nMAIL FROM:<> BODY=7BIT\r\n") == [250, 250, 250]


# -- real sockets and peers -----------------------------------------------------------------


@pytest.mark.interop
def test_interop_smtplib_oversize_then_a_good_mail_in_one_session(lab: Lab) -> None:
    """smtplib without SIZE (HELO): its over-size message gets 552 after the whole
    upload, the same session then delivers; with EHLO, SIZE= too big is 552 up front."""
    srv = lab.serve("smtp", size="64K")
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 60 + b"\r\n"
    big = big * 200  # ~190 KB in normal lines
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as client:
        client.helo("peer.test")
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("bob@far.test", ["alice@lab.test"], big)
        assert info.value.smtp_code == 552
        assert client.sendmail("bob@far.test", ["alice@lab.test"], b"Subject: ok\r\n\r\nfine\r\n") == {}
        client.ehlo("peer.test")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("bob@far.test", ["alice@lab.test"], big)  # smtplib sends SIZE= itself
        assert refused.value.smtp_code == 552
        assert client.noop()[0] == 250
    (msg,) = lab.services.find(MAIL_STORE).messages("alice")  # type: ignore[union-attr]
    assert msg.data.endswith(b"Subject: ok\r\n\r\nfine\r\n")
    wait_until(lambda: sum("over the size limit (64K)" in n for n in notes(lab, srv.name)) == 2,
               timeout=20, what="a note for each refusal")


@pytest.mark.interop
def test_interop_a_single_line_larger_than_any_frame_is_552_not_a_reset(lab: Lab) -> None:
    """A raw client sends 3 MB without a line break in DATA: the server reads to
    CRLF.CRLF, answers 552 and serves the next command on the same connection."""
    srv = lab.serve("smtp", size="1M")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@lab.test>\r\nDATA\r\n")
        assert [f.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        chunk = b"0123456789abcdef" * 4096
        for _ in range(3 * 1024 * 1024 // len(chunk)):
            s.sendall(chunk)
        s.sendall(b"\r\n.\r\nNOOP\r\n")
        assert f.readline().startswith(b"552 5.3.4 message size exceeds fixed maximum message size")
        assert f.readline().startswith(b"250 2.0.0 OK")
    assert lab.services.find(MAIL_STORE) is None or store_has_nothing(lab)


def store_has_nothing(lab: Lab) -> bool:
    found = lab.services.find(MAIL_STORE)
    return all(not found.messages(n) for n in found.names())  # type: ignore[union-attr]


@pytest.mark.interop
def test_interop_raw_socket_bare_lf_commands(lab: Lab) -> None:
    """Over a socket: bare-LF commands are refused naming bare <LF>; with
    accept_bare_lf the same bytes deliver a message."""
    script = b"HELO x\nMAIL FROM:<>\nRCPT TO:<a@lab.test>\nDATA\nSubject: lf\n\nhi\r\n.\r\nQUIT\n"
    strict = lab.serve("smtp", name="strict")
    out = talk(strict.port, script + b"QUIT\r\n")
    # every line but "hi" and "." ends in a bare LF (those two are unknown commands)
    assert out.count(b"500 5.5.2 bare <LF> received") == 7
    assert out.endswith(b"221 2.0.0 lab.test closing connection\r\n") and out.count(b"221") == 1
    lenient = lab.serve("smtp", name="lenient", accept_bare_lf=True)
    out = talk(lenient.port, script)
    assert [line[:3] for line in out.split(b"\r\n") if line] == [b"250", b"250", b"250", b"354", b"250", b"221"]


def talk(port: int, data: bytes) -> bytes:
    """Send ``data`` (which ends with a QUIT) and read replies until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.recv(1024)
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.interop
def test_interop_swaks_oversize_body(lab: Lab, tmp_path: Path) -> None:
    """swaks sends a body over --size from a file: it sees 552, nothing is stored,
    and the server's note says why."""
    swaks = require("swaks")
    srv = lab.serve("smtp", size="32K")
    body = tmp_path / "big.txt"
    body.write_bytes(b"Subject: big\r\n\r\n" + b"line of a big body, repeated\r\n" * 4000)
    out = subprocess.run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "bob@far.test", "--to",
                          "alice@lab.test", "--helo", "swaks.test", "--data", f"@{body}"],
                         capture_output=True, timeout=60)
    assert out.returncode != 0
    assert b"552 5.3.4 message size exceeds fixed maximum message size (32768)" in out.stdout
    assert b"221" in out.stdout  # swaks went on to QUIT in the same session
    assert lab.services.find(MAIL_STORE) is None or store_has_nothing(lab)
    wait_until(lambda: any("over the size limit (32K)" in n for n in notes(lab, srv.name)), timeout=20,
               what="the refusal's note")


# -- our client's 8BITMIME ---------------------------------------------------------------------

EIGHT_BIT = "Subject: caf\u00e9\n\nna\u00efve r\u00e9sum\u00e9\n"


@pytest.mark.interop
def test_interop_client_sends_body_8bitmime_when_offered(lab: Lab) -> None:
    """To a server offering 8BITMIME, 8-bit mail goes with BODY=8BITMIME; 7-bit mail without."""
    srv = lab.serve("smtp")
    c = lab.connect("smtp", srv.port)
    assert c.send_mail("bob@far.test", "alice@lab.test", EIGHT_BIT).code == 250
    assert c.send_mail("bob@far.test", "alice@lab.test", "Subject: plain\n\nascii\n").code == 250
    mails = [s for s in sent_by(lab, c.name) if s.startswith("MAIL ")]
    eight = len(EIGHT_BIT.replace("\n", "\r\n").encode())
    assert mails == [f"MAIL FROM:<bob@far.test> SIZE={eight} BODY=8BITMIME", "MAIL FROM:<bob@far.test> SIZE=25"]
    first = lab.services.find(MAIL_STORE).messages("alice")[0]  # type: ignore[union-attr]
    assert first.data.endswith(EIGHT_BIT.replace("\n", "\r\n").encode())


@pytest.mark.interop
def test_interop_client_refuses_8bit_mail_to_a_7bit_server(lab: Lab) -> None:
    """To a server without 8BITMIME, send_mail fails locally before MAIL: nothing of the
    message is sent, and the session still serves 7-bit mail."""
    srv = lab.serve("smtp", accept_8bitmime=False)
    c = lab.connect("smtp", srv.port)
    with pytest.raises(LocalProtocolError, match="does not offer 8BITMIME"):
        c.send_mail("bob@far.test", "alice@lab.test", EIGHT_BIT)
    assert not any(s.startswith("MAIL ") for s in sent_by(lab, c.name))
    assert c.send_mail("bob@far.test", "alice@lab.test", "Subject: plain\n\nascii\n").code == 250


@pytest.mark.interop
def test_interop_client_sends_body_8bitmime_to_aiosmtpd(lab: Lab, aiosmtpd: tuple[int, Path]) -> None:
    """aiosmtpd offers 8BITMIME: our 8-bit mail goes with BODY=8BITMIME and arrives intact."""
    port, maildir = aiosmtpd
    c = lab.connect("smtp", f"127.0.0.1:{port}")
    assert c.send_mail("bob@far.test", "alice@lab.test", EIGHT_BIT).code == 250
    assert any(s.endswith("BODY=8BITMIME") for s in sent_by(lab, c.name) if s.startswith("MAIL "))
    (name,) = [p for p in (maildir / "new").iterdir()]
    assert "na\u00efve r\u00e9sum\u00e9".encode() in name.read_bytes()


@pytest.mark.interop
def test_interop_client_refuses_8bit_mail_to_aiosmtpd_told_not_to_offer_it(lab: Lab) -> None:
    """aiosmtpd with decode_data (it then offers no 8BITMIME): our 8-bit mail is refused locally, before
    MAIL, and 7-bit mail still goes through in the same session."""
    import sys

    from helpers import Proc, free_port, wait_for_port

    port = free_port()
    script = ("import asyncio, sys\n"
              "from aiosmtpd.controller import Controller\n"
              "from aiosmtpd.handlers import Sink\n"
              "c = Controller(Sink(), hostname='127.0.0.1', port=int(sys.argv[1]), decode_data=True)\n"
              "c.start()\n"
              "sys.stdin.read()\n")
    with Proc([sys.executable, "-c", script, str(port)]):
        wait_for_port(port, timeout=30)
        c = lab.connect("smtp", f"127.0.0.1:{port}")
        with pytest.raises(LocalProtocolError, match="does not offer 8BITMIME"):
            c.send_mail("bob@far.test", "alice@lab.test", EIGHT_BIT)
        assert not any(s.startswith("MAIL ") for s in sent_by(lab, c.name))
        assert c.send_mail("bob@far.test", "alice@lab.test", "Subject: plain\n\nascii\n").code == 250
