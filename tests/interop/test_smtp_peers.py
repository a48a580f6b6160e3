"""Interop: SMTP against peers nobody here wrote.

Python's smtplib, swaks and curl deliver through our server; our client
delivers to aiosmtpd, whose Maildir we read back.
"""

from __future__ import annotations

import mailbox
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Proc, free_port, require

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.smtp import SmtpReplyError
from lab.services.mail import MAIL_STORE, MailStore

pytestmark = pytest.mark.interop

MESSAGE = (b"From: Bob <bob@far.test>\r\nTo: Alice <alice@lab.test>\r\nSubject: interop\r\n\r\n"
           b"Hello Alice.\r\n.A line that starts with a dot.\r\n..and one with two.\r\nBye.\r\n")


def run(args: list[str], stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)


def store(lab: Lab) -> MailStore:
    found = lab.services.find(MAIL_STORE)
    assert isinstance(found, MailStore), "nothing was delivered"
    return found


def body_of(data: bytes) -> bytes:
    """The message after our Return-Path and Received trace lines."""
    head, _, rest = data.partition(b"\r\n")
    assert head.startswith(b"Return-Path: <")
    assert rest.startswith(b"Received: from ")
    lines = rest.split(b"\r\n")
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


def received_by(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
            if e.direction.value == "in"]


# -- our server, foreign clients ----------------------------------------------------


def test_smtplib_against_our_smtp(lab: Lab) -> None:
    """smtplib: EHLO, SIZE, AUTH LOGIN/PLAIN, sendmail with a dotted line, VRFY,
    refused relaying, QUIT; the stored bytes are exactly what it sent."""
    srv = lab.serve("smtp", user=["bob=builder"])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as client:
        code, _ = client.ehlo("peer.test")
        assert code == 250 and client.has_extn("size") and client.has_extn("pipelining")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("bob", "builder")
        refused = client.sendmail("bob@far.test", ["alice@lab.test", "postmaster"], MESSAGE)
        assert refused == {}
        assert client.verify("alice")[0] == 250
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            client.sendmail("bob@far.test", ["carol@elsewhere.test"], MESSAGE)
        assert info.value.recipients["carol@elsewhere.test"][0] == 550
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("bob@far.test", ["alice@lab.test"], MESSAGE, mail_options=["SIZE=999999999"])
    (msg,) = store(lab).messages("alice")
    assert body_of(msg.data) == MESSAGE
    assert b"with ESMTPA id" in msg.data
    assert len(store(lab).messages("postmaster")) == 1
    assert any(s.startswith("AUTH ") for s in received_by(lab, srv.name))


def test_smtplib_wrong_password(lab: Lab) -> None:
    """smtplib sees 535 for a bad password and can still send unauthenticated."""
    srv = lab.serve("smtp", user=["bob=builder"])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("bob", "wrong")
        assert info.value.smtp_code == 535
        client.sendmail("", ["alice@lab.test"], b"Subject: bounce\r\n\r\nx\r\n")
    assert store(lab).messages("alice")[0].data.startswith(b"Return-Path: <>\r\n")


def test_swaks_against_our_smtp(lab: Lab) -> None:
    """swaks with AUTH PLAIN and PIPELINING delivers; a relay attempt fails with 550."""
    srv = lab.serve("smtp", user=["bob=builder"])
    swaks = require("swaks")
    ok = run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "bob@far.test", "--to", "alice@lab.test",
              "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", "builder", "--pipeline",
              "--header", "Subject: from swaks", "--body", "Hi from swaks.\n.dot line\n", "--helo", "swaks.test"])
    assert ok.returncode == 0, ok.stdout.decode()
    assert b"250 2.0.0 OK queued as" in ok.stdout
    (msg,) = store(lab).messages("alice")
    assert b"Subject: from swaks\r\n" in msg.data and b"\r\n.dot line\r\n" in msg.data
    relay = run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "bob@far.test", "--to",
                 "carol@elsewhere.test", "--helo", "swaks.test"])
    assert relay.returncode != 0 and b"550 5.7.1 relaying denied" in relay.stdout


def test_curl_against_our_smtp(lab: Lab) -> None:
    """curl smtp:// uploads a message to two recipients."""
    srv = lab.serve("smtp")
    out = run([require("curl"), "-sS", f"smtp://127.0.0.1:{srv.port}/curl.test", "--mail-from", "bob@far.test",
               "--mail-rcpt", "alice@lab.test", "--mail-rcpt", "dodo@localhost", "-T", "-"], MESSAGE)
    assert out.returncode == 0, out.stderr.decode()
    assert body_of(store(lab).messages("alice")[0].data) == MESSAGE
    assert body_of(store(lab).messages("dodo")[0].data) == MESSAGE
    assert "EHLO curl.test" in received_by(lab, srv.name)


def test_curl_refused_recipient(lab: Lab) -> None:
    """curl reports our 550 for a recipient elsewhere and nothing is stored."""
    srv = lab.serve("smtp")
    out = run([require("curl"), "-sS", f"smtp://127.0.0.1:{srv.port}", "--mail-from", "bob@far.test",
               "--mail-rcpt", "carol@elsewhere.test", "-T", "-"], MESSAGE)
    assert out.returncode != 0 and b"550" in out.stderr
    assert lab.services.find(MAIL_STORE) is None or store(lab).names() == []


# -- foreign server, our client ------------------------------------------------------


def test_our_client_against_aiosmtpd(lab: Lab, aiosmtpd: tuple[int, Path]) -> None:
    """send_mail to aiosmtpd: the Maildir holds our message, dots unstuffed, for both recipients."""
    port, maildir = aiosmtpd
    c = lab.connect("smtp", f"127.0.0.1:{port}")
    assert c.wait_greeting().code == 220
    reply = c.send_mail("bob@far.test", ["alice@lab.test", "dodo@example.test"], MESSAGE)
    assert reply.code == 250
    assert c.verbs.extensions == {"8BITMIME": "", "HELP": ""}  # aiosmtpd offers no PIPELINING: one by one
    assert c.vrfy("alice").code in (250, 252, 502)
    assert c.noop().code == 250
    assert c.quit().code == 221
    (msg,) = list(mailbox.Maildir(maildir))
    assert msg["X-MailFrom"] == "bob@far.test"
    assert msg["X-RcptTo"] == "alice@lab.test, dodo@example.test"
    assert msg["Subject"] == "interop"
    body = msg.get_payload()
    assert isinstance(body, str)
    assert body.replace("\r\n", "\n") == ("Hello Alice.\n.A line that starts with a dot.\n..and one with two.\n"
                                          "Bye.\n")


def test_our_client_sees_aiosmtpd_refusals(lab: Lab, aiosmtpd: tuple[int, Path]) -> None:
    """Raw command verbs against aiosmtpd: out-of-order commands get 503, unknown 500."""
    port, _ = aiosmtpd
    c = lab.connect("smtp", f"127.0.0.1:{port}")
    assert c.rcpt("alice@lab.test").code == 503
    assert c.command("XYZZY").code == 500
    assert c.ehlo("lab.test").code == 250
    assert c.data("x").code == 503
    assert c.command("MAIL FROM:<a@b.test> BOGUS=1").code == 555
    assert c.mail("a@b.test").code == 250
    assert c.mail("a@b.test").code == 503  # nested MAIL
    with pytest.raises(SmtpReplyError, match="refused: 503"):
        c.send_mail("a@b.test", "alice@lab.test", "x")  # send_mail meets the open transaction
    assert c.send_mail("a@b.test", "alice@lab.test", "x").code == 250  # ... which its RSET cleared


# aiosmtpd with AUTH over plain TCP (its command line cannot turn off the TLS
# requirement): accounts alice/wonderland; every message as one JSON line
AUTH_SERVER = """
import json, signal, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alice", b"wonderland")
    return AuthResult(success=ok, handled=False, auth_data=data)  # handled=False: aiosmtpd sends the 535

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"user": session.login_data.decode() if session.login_data else None,
                          "from": envelope.mail_from, "to": envelope.rcpt_tos,
                          "content": envelope.original_content.decode()}), flush=True)
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), authenticator=authenticator,
                        auth_require_tls=False, auth_required=True)
controller.start()
print("ready", flush=True)
signal.sigwait([signal.SIGINT, signal.SIGTERM])
controller.stop()
"""


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_our_client_authenticates_to_aiosmtpd(lab: Lab, mechanism: str) -> None:
    """AUTH PLAIN and LOGIN against aiosmtpd's RFC 4954 code: a wrong password
    gets 535, the right one 235, and the message carries the login."""
    import json

    port = free_port()
    with Proc([sys.executable, "-c", AUTH_SERVER, str(port)]) as server:
        server.wait_for("^ready$", timeout=30)
        c = lab.connect("smtp", f"127.0.0.1:{port}")
        assert c.ehlo().code == 250
        assert "AUTH" in c.verbs.extensions
        assert c.mail("bob@far.test").code == 530  # aiosmtpd: authentication required
        assert c.auth("alice", "wrong", mechanism=mechanism).code == 535
        assert c.auth("alice", "wonderland", mechanism=mechanism).code == 235
        assert c.send_mail("bob@far.test", "alice@lab.test", MESSAGE).code == 250
        got = json.loads(server.wait_for(r'^\{"user"', timeout=30))
        c.quit()
    assert got["user"] == "alice" and got["to"] == ["alice@lab.test"]
    assert got["content"].replace("\r\n", "\n") == MESSAGE.decode().replace("\r\n", "\n")
