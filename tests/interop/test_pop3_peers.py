"""Interop: POP3 against peers nobody here wrote, and the mail lesson.

poplib and curl read mail from our server; our client reads mail from
dovecot.  The lesson: smtplib sends a message through our SMTP server and
poplib fetches the very same bytes from our POP3 server in the same lab.
"""

from __future__ import annotations

import poplib
import smtplib
import subprocess
from pathlib import Path

import pytest
from helpers import Proc, free_port, require, wait_for_port

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.pop3 import Pop3ReplyError
from lab.services.mail import MAIL_STORE, MailStore

pytestmark = pytest.mark.interop

MSG1 = b"From: bob@far.test\r\nSubject: first\r\n\r\nHello.\r\n.dotted line\r\nBye.\r\n"
MSG2 = b"From: carol@far.test\r\nSubject: second\r\n\r\nSecond body.\r\n"


def run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=timeout)


def filled(lab: Lab) -> MailStore:
    store = lab.services.get(MAIL_STORE)
    store.deliver(["alice"], MSG1)
    store.deliver(["alice"], MSG2)
    return store


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


# -- our server, foreign clients ----------------------------------------------------


def test_poplib_against_our_pop3(lab: Lab) -> None:
    """poplib: CAPA, USER/PASS, STAT, LIST, UIDL, RETR (dot-unstuffed), TOP, DELE,
    RSET, QUIT; deletion happens at QUIT."""
    srv = lab.serve("pop3")
    store = filled(lab)
    client = poplib.POP3("127.0.0.1", srv.port, timeout=20)
    assert client.getwelcome().startswith(b"+OK")
    assert {"TOP", "USER", "UIDL", "RESP-CODES"} <= set(client.capa())
    client.user("alice")
    assert client.pass_("wonderland").startswith(b"+OK alice has 2 messages")
    assert client.stat() == (2, len(MSG1) + len(MSG2))
    assert client.list()[1] == [f"1 {len(MSG1)}".encode(), f"2 {len(MSG2)}".encode()]
    uids = [line.split()[1].decode() for line in client.uidl()[1]]
    assert uids == [m.uid for m in store.messages("alice")]
    _, lines, octets = client.retr(1)
    assert lines == lines_of(MSG1) and octets >= len(MSG1)
    assert client.top(2, 0)[1] == [b"From: carol@far.test", b"Subject: second", b""]
    client.dele(1)
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.retr(1)
    client.rset()
    client.dele(2)
    assert len(store.messages("alice")) == 2  # not before QUIT
    assert client.quit().startswith(b"+OK")
    assert [m.data for m in store.messages("alice")] == [MSG1]


def test_poplib_apop_and_errors(lab: Lab) -> None:
    """poplib's APOP works; RETR before login and a wrong password are -ERR."""
    srv = lab.serve("pop3", user=["alice=secret"])
    filled(lab)
    client = poplib.POP3("127.0.0.1", srv.port, timeout=20)
    with pytest.raises(poplib.error_proto, match="not valid in the authorization state"):
        client.retr(1)
    client.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_("wrong")
    assert client.apop("alice", "secret").startswith(b"+OK")
    assert client.stat()[0] == 2
    second = poplib.POP3("127.0.0.1", srv.port, timeout=20)
    second.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_("secret")
    client.quit()
    second.user("alice")
    assert second.pass_("secret").startswith(b"+OK")
    second.quit()


def test_curl_against_our_pop3(lab: Lab) -> None:
    """curl pop3:// lists the maildrop and retrieves message 1 byte for byte."""
    srv = lab.serve("pop3")
    filled(lab)
    curl = require("curl")
    listing = run([curl, "-sS", f"pop3://alice:wonderland@127.0.0.1:{srv.port}/"])
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == f"1 {len(MSG1)}\r\n2 {len(MSG2)}\r\n".encode()
    message = run([curl, "-sS", f"pop3://alice:wonderland@127.0.0.1:{srv.port}/1"])
    assert message.returncode == 0 and message.stdout == MSG1
    refused = run([curl, "-sS", f"pop3://alice:nope@127.0.0.1:{srv.port}/1"])
    assert refused.returncode != 0 and refused.stdout == b""


# -- foreign server, our client ------------------------------------------------------


@pytest.fixture
def dovecot_mail() -> list[bytes]:
    """dovecot starts with this module's two messages (see conftest.py)."""
    return [MSG1, MSG2]


def test_our_client_against_dovecot(dovecot: tuple[int, Path], lab: Lab) -> None:
    """Our verbs against dovecot: login, capa, stat, list, uidl, retr, top, dele
    at QUIT; a wrong password is a Pop3ReplyError."""
    port, maildir = dovecot
    bad = lab.connect("pop3", f"127.0.0.1:{port}")
    bad.user("alice")
    with pytest.raises(Pop3ReplyError):
        bad.pass_("wrong", timeout=20)
    bad.close()  # dovecot waits for open sessions when it stops
    c = lab.connect("pop3", f"127.0.0.1:{port}")
    assert "Dovecot" in c.wait_greeting().info
    assert {"TOP", "UIDL", "USER"} <= set(c.capa())
    assert c.login("alice", "wonderland").ok
    assert c.stat() == (2, len(MSG1) + len(MSG2))
    assert c.list() == {1: len(MSG1), 2: len(MSG2)}
    assert c.uidl() == {1: "1000000001.M1P1.lab", 2: "1000000002.M2P1.lab"}
    assert c.retr(1) == MSG1
    assert c.top(2, 0) == b"From: carol@far.test\r\nSubject: second\r\n\r\n"
    assert c.dele(1).ok
    assert not c.command("RETR 1").ok
    assert c.quit().ok
    left = [p.name.split(":")[0] for p in (*(maildir / "cur").iterdir(), *(maildir / "new").iterdir())]
    assert left == ["1000000002.M2P1.lab"]


# -- the lesson ------------------------------------------------------------------------


def test_mail_lesson_smtplib_delivers_poplib_retrieves_the_same_bytes(lab: Lab) -> None:
    """One lab, an SMTP and a POP3 server: smtplib sends, poplib fetches the very
    bytes sent, after the trace lines the SMTP server adds (RFC 5321 §4.4)."""
    mx = lab.serve("smtp", name="mx")
    pop = lab.serve("pop3", name="pop", user=["alice=wonderland"])
    sent = (b"From: Bob <bob@far.test>\r\nTo: Alice <alice@lab.test>\r\nSubject: Lunch?\r\n"
            b"Message-ID: <lesson-1@far.test>\r\n\r\nNoon at the usual place.\r\n.\r\n- Bob\r\n")
    with smtplib.SMTP("127.0.0.1", mx.port, timeout=20) as smtp:
        smtp.sendmail("bob@far.test", ["alice@lab.test"], sent)
    box = poplib.POP3("127.0.0.1", pop.port, timeout=20)
    box.user("alice")
    box.pass_("wonderland")
    _, lines, _ = box.retr(1)
    box.quit()
    got = b"\r\n".join(lines) + b"\r\n"
    trace, _, rest = got.partition(b"\r\nFrom: Bob")
    assert b"From: Bob" + rest == sent
    assert trace.startswith(b"Return-Path: <bob@far.test>\r\nReceived: from ")
    # the log tells the story, one readable line per step
    story = [f"{e.endpoint} {e.direction.arrow} {e.summary}" for e in lab.log.query(
        EventFilter(kinds=frozenset({EventKind.MESSAGE}))) if e.endpoint in ("mx", "pop")]
    for step in ("mx <- MAIL FROM:<bob@far.test>", "mx <- RCPT TO:<alice@lab.test>", "mx <- DATA",
                 "mx -> 354 start mail input; end with <CRLF>.<CRLF>",
                 f'mx <- message, {len(sent)} bytes, Subject "Lunch?"', "pop <- USER alice",
                 "pop <- PASS ••••••  (sent in cleartext)", "pop -> +OK alice has 1 message (", "pop <- RETR 1",
                 "pop -> +OK", "pop <- QUIT"):
        assert any(line.startswith(step) for line in story), (step, story)
    assert any(line.startswith("pop -> +OK") and line.endswith('lines, Subject "Lunch?"]') for line in story)


def test_mail_lesson_with_our_own_clients(lab: Lab) -> None:
    """The same lesson with netlab's clients: send_mail, then login/retr/dele/quit."""
    mx = lab.serve("smtp")
    pop = lab.serve("pop3")
    sender = lab.connect("smtp", mx)
    sender.send_mail("bob@far.test", "alice@lab.test", "Subject: hi\n\nfrom our client\n")
    sender.quit()
    reader = lab.connect("pop3", pop)
    reader.login("alice", "wonderland")
    assert reader.stat()[0] == 1
    assert reader.retr(1).endswith(b"Subject: hi\r\n\r\nfrom our client\r\n")
    reader.dele(1)
    reader.quit()
    assert lab.services.get(MAIL_STORE).messages("alice") == []


def test_netlab_serve_processes_share_a_maildir(tmp_path: Path) -> None:
    """`netlab serve smtp --maildir D` and `netlab serve pop3 --maildir D` in two
    processes: smtplib delivers to one, poplib reads from the other."""
    import sys

    smtp_port, pop_port = free_port(), free_port()
    maildir = str(tmp_path / "mail")
    serve = [sys.executable, "-m", "lab", "serve"]
    with Proc([*serve, "smtp", "--port", str(smtp_port), "--maildir", maildir]) as mx, \
            Proc([*serve, "pop3", "--port", str(pop_port), "--maildir", maildir, "--user", "alice=pw"]) as pop:
        wait_for_port(smtp_port, timeout=30)
        wait_for_port(pop_port, timeout=30)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as client:
            client.sendmail("bob@far.test", ["alice@lab.test"], MSG1)
        mx.wait_for(r"delivered \d+ bytes from <bob@far.test> to alice")
        box = poplib.POP3("127.0.0.1", pop_port, timeout=20)
        box.user("alice")
        box.pass_("pw")
        assert b"\r\n".join(box.retr(1)[1]).endswith(MSG1.rstrip(b"\r\n"))
        box.dele(1)
        box.quit()
        pop.wait_for(r"deleted 1 message")
    assert MailStore(maildir).messages("alice") == []
