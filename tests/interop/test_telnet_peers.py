"""Interop: telnet against peers nobody here wrote.

The Debian `telnet` client (GNU inetutils) and `telnetlib3-client`, each on a
real pty through pexpect, use our echo service and log into our console;
our client talks to `telnetlib3-server` and to GNU inetutils `telnetd`
(behind socat, running a small login script on a real pty).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pexpect
import pytest
from helpers import require

from lab import Lab
from lab.eventlog import EventFilter, EventKind

pytestmark = pytest.mark.interop

ROWS, COLUMNS = 40, 120
PASSWORD = "tr0ub4dor"


def spawn(program: str, port: int) -> pexpect.spawn:
    env = dict(os.environ, TERM="xterm", LANG="C.UTF-8")
    return pexpect.spawn(require(program), ["127.0.0.1", str(port)], env=env, encoding="utf-8",
                         codec_errors="replace", timeout=20, dimensions=(ROWS, COLUMNS))


@pytest.fixture
def terminals() -> Iterator[list[pexpect.spawn]]:
    """Children to close at the end, whatever happened."""
    children: list[pexpect.spawn] = []
    yield children
    for child in children:
        child.close(force=True)


def seen(lab: Lab, endpoint: str, direction: str) -> list[str]:
    """Summaries of the messages ``endpoint`` received (in) or sent (out)."""
    found = lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
    return [e.summary for e in found if e.direction.value == direction]


def received_lines(lab: Lab, endpoint: str) -> list[tuple[bytes, bytes]]:
    found = lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))
    return [(e.message.data, e.message.ending) for e in found  # type: ignore[union-attr]
            if e.direction.value == "in" and e.message is not None and e.message.kind == "line"]


# -- foreign clients, our server -------------------------------------------------------


def test_debian_telnet_against_our_echo_service(lab: Lab, terminals: list[pexpect.spawn]) -> None:
    """Debian telnet agrees to our ECHO and SGA (character mode), reports
    its window and terminal type, and sends Enter as CR NUL."""
    srv = lab.serve("telnet")
    term = spawn("telnet", srv.port)
    terminals.append(term)
    term.expect(f"terminal XTERM; window {COLUMNS}x{ROWS}; options: we ECHO, SGA; you TTYPE, NAWS")
    term.expect("ends the session")
    for key in "key":  # one at a time: each comes back as the server's echo
        term.send(key)
        term.expect_exact(key)
    term.send("\r")
    term.expect(r"\r\nkey\r\n")
    term.send("hello, telnet\r")
    term.expect(r"hello, telnet\r\nhello, telnet\r\n")
    term.send("\x04")
    term.expect("Goodbye.")
    term.expect(pexpect.EOF)
    got = seen(lab, srv.name, "in")
    for summary in ("DO ECHO", "DO SGA", "WILL NAWS", f"SB NAWS {COLUMNS}x{ROWS}", "WILL TTYPE",
                    "SB TTYPE IS XTERM"):
        assert summary in got
    assert seen(lab, srv.name, "out")[:5] == ["WILL ECHO", "WILL SGA", "DO NAWS", "DO TTYPE", "SB TTYPE SEND"]
    assert (b"hello, telnet", b"\r\x00") in received_lines(lab, srv.name)  # Enter is CR NUL
    assert ['"k"', '"e"', '"y"'] == [s for s in got if s in ('"k"', '"e"', '"y"')]  # character mode


def test_debian_telnet_logs_into_the_console(lab: Lab, terminals: list[pexpect.spawn]) -> None:
    """A person at Debian telnet logs in (the password is not echoed, a
    wrong one is refused), starts a server with `serve echo` (completed
    with TAB), sees it in `ls`, and the lab really has it."""
    con = lab.serve("telnet", mode="console", password=PASSWORD, name="console")
    term = spawn("telnet", con.port)
    terminals.append(term)
    term.expect("Password: ")
    term.send("wrong\r")
    term.expect("Login incorrect.")
    term.expect("Password: ")
    term.send(PASSWORD + "\r")
    term.expect("Logged in")
    assert PASSWORD not in term.before
    term.expect("netlab> ")
    term.send("ser\t")  # TAB completes the command, then the protocol
    term.expect_exact("serve ")
    term.send("ec\t")
    term.expect_exact("echo ")
    term.send("as viatelnet\r")
    term.expect(r"viatelnet: echo listening on tcp://127\.0\.0\.1:(\d+)\r\n")
    port = int(term.match.group(1))
    term.expect("netlab> ")
    term.send("ls\r")
    term.expect("netlab> ")
    listing = term.before
    assert "viatelnet  server  echo" in listing and "console    server  telnet" in listing
    assert lab["viatelnet"].kind.label == "server" and getattr(lab["viatelnet"], "port", None) == port
    assert lab.connect("echo", "viatelnet").echo("same lab") == b"same lab"
    term.send("nonsense\r")
    term.expect(r"error: `nonsense`: unknown command 'nonsense' [^\r\n]*\r\nnetlab> ")
    term.send("quit\r")
    term.expect("Goodbye.")
    term.expect(pexpect.EOF)
    assert "console login" in [e.summary for e in lab.log.query(EventFilter(endpoint="console"))]


def test_telnetlib3_client_against_our_echo_service(lab: Lab, terminals: list[pexpect.spawn]) -> None:
    """telnetlib3's client negotiates, reports xterm and the pty's size,
    and sends Enter as a bare CR, which ends the line at once."""
    srv = lab.serve("telnet")
    term = spawn("telnetlib3-client", srv.port)
    terminals.append(term)
    term.expect(f"terminal xterm; window {COLUMNS}x{ROWS}; options: we ECHO, SGA; you TTYPE, NAWS")
    term.expect("ends the session")
    term.send("from telnetlib3\r")
    term.expect(r"from telnetlib3\r\nfrom telnetlib3\r\n")
    term.send("\x04")
    term.expect("Goodbye.")
    term.expect(pexpect.EOF)
    assert "SB TTYPE IS xterm" in seen(lab, srv.name, "in")
    assert received_lines(lab, srv.name)[-1][1] in (b"\r", b"\r\x00", b"\r\n")


def test_telnetlib3_client_logs_into_the_console(lab: Lab, terminals: list[pexpect.spawn]) -> None:
    con = lab.serve("telnet", mode="console", password=PASSWORD)
    term = spawn("telnetlib3-client", con.port)
    terminals.append(term)
    term.expect("Password: ")
    term.send(PASSWORD + "\r")
    term.expect("Logged in")
    assert PASSWORD not in term.before
    term.expect("netlab> ")
    term.send("serve discard as sink\r")
    term.expect("sink: discard listening")
    term.expect("netlab> ")
    assert "sink" in lab
    term.send("quit\r")
    term.expect(pexpect.EOF)


# -- our client, a foreign server -----------------------------------------------------


def test_our_client_against_telnetlib3_server(lab: Lab, telnetlib3_server: int) -> None:
    """Our client answers telnetlib3's negotiation (TTYPE, NAWS, SGA yes;
    BINARY, CHARSET, NEW-ENVIRON, ECHO no), then uses its shell."""
    c = lab.connect("telnet", f"127.0.0.1:{telnetlib3_server}")
    c.configure(width=100, height=30)
    assert c.read_until("tel:sh> ", timeout=20).endswith("tel:sh> ")
    state = c.negotiate(quiet=0.3)
    assert set(state["we"]) >= {"TTYPE", "NAWS"} and "SGA" in state["server"]
    assert "ECHO" not in state["server"]
    out = seen(lab, c.name, "out")
    assert "SB TTYPE IS dumb" in out and "SB NAWS 100x30" in out and "DONT ECHO" in out
    assert "SB TTYPE SEND" in seen(lab, c.name, "in")
    assert "toggle [option|all]" in c.run("help", prompt="tel:sh> ", timeout=20)
    answered_once(lab, c.name)
    assert c.run("toggle echo", prompt="tel:sh> ", timeout=20) == "will echo."
    c.configure(echo=True)  # now let the server echo
    c.run("toggle echo", prompt="tel:sh> ", timeout=20)
    c.negotiate(quiet=0.3)
    c.send_line("quit")
    assert "Goodbye." in c.read_all(timeout=20)


# telnetlib3's question -> our answer
TELNETLIB3_ANSWERS = {"DO TTYPE": "WILL TTYPE", "WILL SGA": "DO SGA", "WILL BINARY": "DONT BINARY",
                      "DO NAWS": "WILL NAWS", "DO CHARSET": "WONT CHARSET", "WILL ECHO": "DONT ECHO",
                      "DO NEW-ENVIRON": "WONT NEW-ENVIRON"}


def answered_once(lab: Lab, endpoint: str) -> None:
    """Each of telnetlib3's questions got one answer (a refused option asked
    again is refused again), and each SB TTYPE SEND one SB TTYPE IS."""
    out, got = seen(lab, endpoint, "out"), seen(lab, endpoint, "in")
    for question, answer in TELNETLIB3_ANSWERS.items():
        assert out.count(answer) == got.count(question) >= 1, (question, got, out)
    assert sum(s.startswith("SB TTYPE IS") for s in out) == got.count("SB TTYPE SEND") >= 1


def test_raw_send_and_expect_against_telnetlib3_server(lab: Lab, telnetlib3_server: int) -> None:
    """No verb reads: the client still answers telnetlib3's negotiation,
    once each, and the shell works with plain send and expect."""
    c = lab.connect("telnet", f"127.0.0.1:{telnetlib3_server}")
    c.expect("tel:sh> ", timeout=20)
    c.send(b"help\r\n")
    c.expect("toggle [option|all]", timeout=20)
    answered_once(lab, c.name)
    assert [s for s in seen(lab, c.name, "out") if s.startswith("SB NAWS")] == ["SB NAWS 80x24"]
    c.send(b"quit\r\n")
    c.expect("Goodbye.", timeout=20)


def test_command_language_against_telnetlib3_server(lab: Lab, telnetlib3_server: int) -> None:
    from lab.commands import Interpreter

    results = Interpreter(lab).execute(
        f'connect telnet 127.0.0.1:{telnetlib3_server} as t; expect t "tel:sh> ";'
        ' send t help; expect t "toggle [option|all]"; send t "toggle echo"; expect t "will echo.";'
        ' send t help; expect t "toggle [option|all]"', timeout=90)
    assert "will echo." in results[-3].value.text
    assert seen(lab, "t", "in").count("WILL ECHO") == 2  # asked again after the toggle, refused again
    answered_once(lab, "t")


def test_our_client_against_inetutils_telnetd(lab: Lab, telnetd: int) -> None:
    """telnetd asks for much (TSPEED, XDISPLOC, NEW-ENVIRON, LINEMODE, TM,
    BINARY...): our client refuses what it does not do, gives TTYPE and
    NAWS, logs in, and a window resize reaches the pty."""
    # client options, known before connecting: telnetd asks for the terminal type at once
    c = lab.connect("telnet", f"127.0.0.1:{telnetd}", options={"terminal": "vt100", "width": 100, "height": 30})
    assert c.login("secret", user="alice", prompt="$ ", timeout=30).endswith("Welcome, alice (vt100)")
    assert c.run("hello", prompt="$ ") == "you said: hello; rows and columns: 30 100"
    c.configure(width=132, height=50)
    assert c.run("resized", prompt="$ ") == "you said: resized; rows and columns: 50 132"
    out = seen(lab, c.name, "out")
    for summary in ("WILL TTYPE", "SB TTYPE IS vt100", "WILL NAWS", "SB NAWS 100x30", "SB NAWS 132x50",
                    "WONT LINEMODE", "WONT NEW-ENVIRON", "DONT ECHO"):
        assert summary in out
    assert "secret" not in "".join(seen(lab, c.name, "in"))  # the pty did not echo it
    c.send_line("exit")
    # telnetd may close before the pty's last line ("bye") drains: only the close is certain
    c.read_all(timeout=20)  # raises unless the server closes
