"""`netlab mock` answering ordinary clients: recordings made with netlab's
own clients (which pipeline, and name themselves differently) served to
smtplib, poplib, nntplib and the `irc` library.  Requests match per
protocol message; what a recording lacks gets the protocol's error reply.
"""

from __future__ import annotations

import poplib
import re
import smtplib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import Proc
from test_irc_peers import irclib
from test_nntp_peers import nntplib

from lab import Lab
from lab.commands import Interpreter

pytestmark = pytest.mark.interop


def record(path: Path, *statements: str) -> Path:
    with Lab.start() as lab:
        interp = Interpreter(lab)
        interp.execute(f"record start {path}", 10)
        for statement in statements:
            interp.execute(statement, 30)
        interp.execute("record stop", 10)
    return path


@contextmanager
def mock(path: Path, *args: str) -> Iterator[tuple[Proc, int]]:
    """`netlab mock` serving one connection of ``path``; its port."""
    with Proc([sys.executable, "-m", "lab", "mock", str(path), "--connections", "1", *args]) as proc:
        line = proc.wait_for(r"listening on tcp://", 30, stream="stderr")
        m = re.search(r"tcp://\S+:(\d+)", line)
        assert m is not None
        yield proc, int(m.group(1))


def summary(proc: Proc) -> str:
    """The mock's closing summary, once its one client has gone."""
    line = proc.wait_for(r"mock served", 60, stream="stderr")
    proc.popen.wait(30)
    return line


def test_smtplib_gets_the_replies_to_a_pipelined_recording(tmp_path: Path) -> None:
    """netlab's client pipelined MAIL, RCPT and DATA and said EHLO
    client.lab.test; smtplib says `ehlo [127.0.0.1]`-style names and waits
    for each reply: every command is answered as recorded, and a command
    the recording lacks gets 500 at once, never silence."""
    path = record(tmp_path / "smtp.yaml", "serve smtp as mx", "connect mx as c",
                  "call c send_mail carol@lab.test bob@lab.test 'Subject: hi'", "call c quit")
    with mock(path) as (proc, port):
        with smtplib.SMTP("127.0.0.1", port, local_hostname="somewhere.example", timeout=10) as smtp:
            code, _ = smtp.ehlo()
            assert code == 250 and smtp.has_extn("pipelining")
            assert smtp.noop()[0] == 500  # not recorded: refused as SMTP refuses
            refused = smtp.sendmail("carol@lab.test", ["bob@lab.test"], "Subject: hi\r\n\r\nHello.\r\n")
            assert refused == {}
            assert smtp.quit()[0] == 221
        out = summary(proc)
    # EHLO, MAIL, RCPT, DATA, the mail and QUIT; NOOP listed as unmatched
    assert "6 requests matched, 1 unmatched" in out, proc.output()
    assert "unmatched: 'noop'" in proc.output()


def test_poplib_reads_a_mailbox_from_a_recording(tmp_path: Path) -> None:
    """USER, PASS, STAT, LIST, RETR and QUIT from poplib get the recorded
    replies, multi-line ones whole; an unrecorded NOOP gets -ERR."""
    path = record(tmp_path / "pop3.yaml", "serve smtp as m", "serve pop3 as s", "connect m as w",
                  "call w send_mail a@lab.test alice@lab.test 'Subject: hi'", "connect s as c",
                  "call c login alice wonderland", "call c stat", "call c list", "call c retr 1", "call c quit")
    with mock(path, "--server", "s") as (proc, port):
        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        assert pop.getwelcome().startswith(b"+OK")
        pop.user("alice")
        pop.pass_("wonderland")
        count, _size = pop.stat()
        assert count == 1
        _resp, listing, _octets = pop.list()
        assert listing and listing[0].startswith(b"1 ")
        _resp, lines, _octets = pop.retr(1)
        assert b"Subject: hi" in lines
        with pytest.raises(poplib.error_proto, match="not in the recording"):
            pop.noop()
        assert pop.quit().startswith(b"+OK")
        out = summary(proc)
    assert "1 unmatched" in out, proc.output()
    assert "do not decode" not in proc.output()


def test_nntplib_reads_a_group_from_a_recording(tmp_path: Path) -> None:
    """nntplib asks CAPABILITIES on connect, then GROUP and QUIT: answered
    from a recording made with netlab's NNTP client; DATE, not recorded,
    gets 500."""
    path = record(tmp_path / "nntp.yaml", "serve nntp as s", "connect s as c", "call c capabilities",
                  "call c group lab.test", "send c QUIT", "expect c 205")
    module = nntplib()
    with mock(path) as (proc, port):
        with module.NNTP("127.0.0.1", port, readermode=False, timeout=10) as news:
            resp, _count, _first, _last, name = news.group("lab.test")
            assert resp.startswith("211") and name == "lab.test"
            with pytest.raises(module.NNTPPermanentError, match="500"):
                news.date()  # not recorded
        out = summary(proc)
    assert "1 unmatched" in out, proc.output()


def test_the_irc_library_registers_and_joins_from_a_recording(tmp_path: Path) -> None:
    """The `irc` library's NICK and USER (its own real name) get the
    recorded welcome, its JOIN the recorded names; an unknown command 421."""
    path = record(tmp_path / "irc.yaml", "serve irc as s", "connect s as a", "send a 'NICK alice'",
                  "send a 'USER alice 0 * :Alice'", "expect a 376", "send a 'JOIN #lab'", "expect a 366")
    with mock(path) as (proc, port):
        with irclib(port, "alice") as peer:
            assert peer.fields(r"^WELCOME\t", 30)[0] == "WELCOME"
            peer.do("join #lab")
            assert "#lab" in peer.fields(r"^JOIN\t", 30)
            peer.do("raw FROBNICATE now")
            assert peer.fields(r"^UNKNOWNCOMMAND\t", 30)
            peer.do("quit bye")
        out = summary(proc)
    assert "1 unmatched" in out, proc.output()
