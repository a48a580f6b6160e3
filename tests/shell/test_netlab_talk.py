"""`netlab talk PROTO HOST:PORT` on a real pty, against lab servers, socat,
and a protocol added by a plugin (its conversation decodes, its verbs complete)."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from helpers import Proc, free_port, require, wait_for_port, wait_until
from ptyterm import Terminal

from lab import Lab
from lab.protocols import get
from lab.shell.talk import TalkCompleter, hexdump, verb_arguments, wire_verbs

TALK = [sys.executable, "-m", "lab", "talk"]

PLUGIN = textwrap.dedent(
    '''
    """A mail-like line protocol no one in netlab wrote: replies carry codes."""
    from dataclasses import dataclass
    from typing import ClassVar

    from lab.errors import RemoteProtocolError
    from lab.protocols import ClientVerbs, Conversation, Message, ProtocolSpec, Role, ServerBehaviour, Transport
    from lab.protocols._framing import LineDecoder


    @dataclass(frozen=True, slots=True, kw_only=True)
    class Reply(Message):
        code: int
        text: str
        KIND: ClassVar[str] = "reply"

        def summary(self):
            return f"reply {self.code}: {self.text}"


    class ReplyDecoder(LineDecoder):
        def decode_line(self, raw):
            text = raw.rstrip(b"\\r\\n").decode("utf-8", "replace")
            if not text[:3].isdigit():
                raise RemoteProtocolError(f"no reply code in {text!r}")
            return Reply(raw=raw, code=int(text[:3]), text=text[4:])


    class MailLike(Conversation):
        follows_sends = False

        def decoder(self, sender):
            return ReplyDecoder() if sender is Role.SERVER else LineDecoder()


    class Client(ClientVerbs):
        async def helo(self, name): ...
        async def mail(self, sender): ...
        async def quit(self): ...
        async def send_mail(self, sender, to, body): ...


    SPEC = ProtocolSpec(
        name="maillike", summary="replies with codes", rfc="none", default_port=2525,
        transports=(Transport.TCP,), conversation=MailLike,
        server=ServerBehaviour, client=Client, line_ending=b"\\n",
    )
    '''
)


@pytest.fixture
def plugin_env(tmp_path: Path, home: dict[str, str]) -> dict[str, str]:
    (tmp_path / "maillike_proto.py").write_text(PLUGIN)
    dist = tmp_path / "maillike_proto-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: maillike-proto\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[netlab.protocols]\nmaillike = maillike_proto:SPEC\n")
    return {**home, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def servers() -> Iterator[Lab]:
    with Lab.start() as lab:
        lab.serve("echo", name="e")
        lab.serve("finger", name="f")
        yield lab


def talk(home: dict[str, str], *args: str) -> Terminal:
    return Terminal([*TALK, *args], home)


@pytest.mark.interop
def test_interop_talk_echo_hex_raw_and_a_reply_above_a_half_typed_line(
        servers: Lab, home: dict[str, str]) -> None:
    """Lines get CRLF, replies print decoded as they arrive, even mid-typing;
    /hex and /raw toggle; Tab completes slash commands; Ctrl-D leaves."""
    port = servers["e"].port  # type: ignore[attr-defined]
    with talk(home, "echo", f"127.0.0.1:{port}") as term:
        term.wait_for(rf"^-- connected to tcp://127\.0\.0\.1:{port} \(echo, RFC 862\)")
        term.line("hello")
        term.wait_for(r'^<- "hello\\r\\n"$')
        term.send("half typ")
        term.wait_for(r"^echo> half typ$")
        server = servers["e"]
        conn = next(iter(server.connections.values()))  # type: ignore[attr-defined]
        servers.reactor.call_soon(conn.send_raw, b"surprise\r\n")
        # the reply lands above the prompt, which is redrawn with the half-typed text
        term.wait_for(r'^<- "surprise\\r\\n"\n^echo> half typ$')
        term.wait_cursor_row("echo> half typ")
        term.line("ed")
        term.wait_for(r'^<- "half typed\\r\\n"$')
        term.line("/hex")
        term.wait_for(r"^-- hex dump on$")
        term.line("abc")
        term.wait_for(r"^   0000  61 62 63 0d 0a +\|abc\.\.\|$")
        term.line("/raw")
        term.wait_for(r"^-- raw mode on$")
        term.line(r"x\x00y")  # raw: escapes decoded, no line ending
        term.wait_for(r'^<- "x\\x00y"$')
        term.wait_for(r"^   0000  78 00 79 +\|x\.y\|$")
        term.send("/h\t")
        term.wait_for(r"^\s+/hex\s*$\n^\s+/help\s*$")
        term.send("\x15")
        term.wait_for(r"^echo raw>$")
        term.wait_for(r"echo 127\.0\.0\.1:\d+ open \| in 37 B, out 27 B \| hex on \| raw on")
        term.send("\x04")
        term.wait_exit()
        assert term.child.exitstatus == 0
        assert "Traceback" not in term.output()
    wait_until(lambda: not server.connections, what="the server to see the client leave")  # type: ignore[attr-defined]


@pytest.mark.interop
def test_interop_talk_finger_reply_close_and_reconnect(servers: Lab, home: dict[str, str]) -> None:
    """A finger query answered and closed by the server; /reconnect asks again."""
    port = servers["f"].port  # type: ignore[attr-defined]
    with talk(home, "finger", f"127.0.0.1:{port}") as term:
        term.wait_for(r"^finger>")
        term.line("/W alice")  # not a talk command: sent as typed
        term.wait_for(r'^<- "Plan:\\r\\n"$')
        term.wait_for(r"^-- connection closed \(by the server\); /reconnect or /quit$")
        term.line("again")
        term.wait_for(r"^-- not connected: /reconnect or /quit$")
        term.line("/reconnect")
        term.line("")
        term.wait_for(r'^<- "Login     Name\\r\\n"$')
        # a verb of the client, run from the prompt: it reads the reply itself
        term.line("/reconnect")
        term.send("/call q\t")
        term.wait_for(r"^finger> /call query$")
        term.line(" dodo verbose=yes")
        term.wait_for(r"^=> Login: dodo\s+Name: The Dodo$\n^   Plan:$")
        term.line("/call query a b")
        term.wait_for(r"^!! too many arguments: query\(user='', \*, verbose=False, hosts=\(\), timeout=5\.0\)$")
        term.line("/quit")
        term.wait_exit()
        out = term.output()
        assert out.count("-- connected to") == 3
        assert '<- "Login     Name\\r\\n"' in out  # the empty query lists the users
    queries = [e.summary for e in servers.log.query() if e.endpoint == "f" and e.direction.value == "in"
               and e.kind.value == "msg"]
    assert queries == ["query /W user alice", "query list users", "query /W user dodo"]


@pytest.mark.interop
def test_interop_talk_to_socat(home: dict[str, str]) -> None:
    """A server netlab did not write: socat running cat."""
    socat = require("socat")
    port = free_port()
    with Proc([socat, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"]) as server:
        wait_for_port(port)
        with talk(home, "echo", str(port)) as term:
            term.wait_for(r"^echo>")
            term.line("over socat")
            term.wait_for(r'^<- "over socat\\r\\n"$')
            term.line("/quit")
            term.wait_exit()
            assert term.child.exitstatus == 0
        server.stop()


@pytest.mark.interop
def test_interop_talk_ctrl_c_cancels_a_slow_verb(home: dict[str, str]) -> None:
    """Ctrl-C during a /call that waits cancels it; the session goes on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(30)
        with talk(home, "echo", str(listener.getsockname()[1])) as term:
            peer, _ = listener.accept()
            with peer:
                peer.settimeout(30)
                term.wait_for(r"^echo>")
                term.line("/call echo ping timeout=60")  # this peer never echoes
                assert peer.recv(100) == b"ping"
                time.sleep(0.3)  # the verb now waits for its echo (no event marks it)
                term.send("\x03")
                term.wait_for(r"-- interrupted$")  # after the tty's own ^C
                term.line("after")
                assert peer.recv(100) == b"after\r\n"
                peer.sendall(b"late reply\r\n")
                term.wait_for(r'^<- "late reply\\r\\n"$')  # the reply reader is back
                term.line("/quit")
                term.wait_exit()
                assert term.child.exitstatus == 0 and "Traceback" not in term.output()


class _CodeServer(socketserver.StreamRequestHandler):
    received: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 ready\r\n")
        for line in self.rfile:
            self.received.append(line)
            if line.strip() == b"BOGUS":
                self.wfile.write(b"no code here\r\n")
            else:
                self.wfile.write(b"250 got " + line.strip() + b"\r\n")


@pytest.mark.interop
def test_interop_talk_speaks_a_plugin_protocol(plugin_env: dict[str, str]) -> None:
    """A protocol added later works unchanged: its conversation decodes replies, its
    client's verbs complete as wire words, and a reply it refuses is reported."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _CodeServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Terminal([*TALK, "maillike", f"127.0.0.1:{server.server_address[1]}"], plugin_env) as term:
            term.wait_for(r"^<- reply 220: ready$")
            term.send("HE\t")
            term.wait_for(r"^maillike> HELO$")
            term.line(" lab.test")
            term.wait_for(r"^<- reply 250: got HELO lab\.test$")
            assert _CodeServer.received[-1] == b"HELO lab.test\n"  # the spec's own line ending
            term.send("\t")
            term.wait_for(r"^\s+HELO\s*$\n^\s+MAIL\s*$\n^\s+QUIT\s*$")
            # a reply the conversation refuses: an error line, the connection closed, talk still up
            term.send("\x15BOGUS\r")
            # (not anchored: a line printed while the next prompt is being set up may share its row)
            term.wait_for(r"!! protocol error from peer: no reply code in 'no code here'$")
            term.wait_for(r"-- connection closed \(protocol error: no reply code in 'no code here'\);")
            term.line("/reconnect")
            term.wait_output(r"connected to(.|\n)*connected to")
            term.line("/quit")
            term.wait_exit()
            assert term.child.exitstatus == 0 and "Traceback" not in term.output()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_talk_reads_a_pipe(servers: Lab, home: dict[str, str]) -> None:
    """Without a terminal, talk sends each piped line and prints replies."""
    port = servers["f"].port  # type: ignore[attr-defined]
    out = subprocess.run([*TALK, "finger", f"127.0.0.1:{port}"], input="alice\n", capture_output=True,
                         text=True, timeout=60, env={**os.environ, **home})
    assert out.returncode == 0, out.stderr
    assert '<- "Login: alice\\t\\t\\tName: Alice Liddell\\r\\n"' in out.stdout


def test_talk_over_udp_reads_a_pipe(home: dict[str, str]) -> None:
    """--udp sends each line as one datagram, without a line ending."""
    with Lab.start() as lab:
        srv = lab.serve("echo", transport="udp")
        started = time.monotonic()
        out = subprocess.run([*TALK, "echo", "--udp", f"127.0.0.1:{srv.port}"], input="one\ntwo\n",
                             capture_output=True, text=True, timeout=60, env={**os.environ, **home})
        assert out.returncode == 0, out.stderr
        assert '<- "one"\n<- "two"\n' in out.stdout
        assert time.monotonic() - started < 30
        assert [e.summary for e in lab.log.query() if e.kind.value == "msg" and e.direction.value == "in"] \
            == ['"one"', '"two"']


def test_talk_mistakes_are_one_line(home: dict[str, str]) -> None:
    """Unknown protocol, bad address, nobody listening: one line, no traceback."""
    env = {**os.environ, **home}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*TALK, *args], capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)

    out = run("ecko", "127.0.0.1:7")
    assert out.returncode == 2 and out.stderr == "netlab: unknown protocol 'ecko' — did you mean 'echo'?\n"
    out = run("echo", "nowhere")
    assert out.returncode == 2 and "not an address: 'nowhere' — write host:port" in out.stderr
    out = run("finger", "127.0.0.1:1", "--udp")
    assert out.returncode == 2 and "finger does not run over udp" in out.stderr
    out = run("echo", f"127.0.0.1:{free_port()}")
    assert out.returncode == 1 and "cannot connect to tcp://127.0.0.1:" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1


def test_verb_arguments_take_the_types_of_the_defaults() -> None:
    """Typed words become positional and keyword arguments of the right type."""
    query = get("finger").client.verbs()["query"]
    assert verb_arguments(query, ["alice", "verbose=yes", "timeout=2.5"]) == (
        ["alice"], {"verbose": True, "timeout": 2.5})
    assert verb_arguments(query, ["hosts=a.test"]) == ([], {"hosts": "a.test"})
    with pytest.raises(ValueError, match="'maybe' is not true or false"):
        verb_arguments(query, ["verbose=maybe"])
    with pytest.raises(ValueError, match=r"too many arguments: query\(user=''"):
        verb_arguments(query, ["a", "b"])


def test_wire_verbs_completer_and_hexdump() -> None:
    """Verbs become wire words; completion keeps the user's case; hex rows line up."""
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    assert wire_verbs(get("finger")) == ["QUERY"]
    completer = TalkCompleter(get("echo"))
    assert [c.text for c in completer.get_completions(Document("ec"), CompleteEvent())] == ["echo"]
    assert [c.text for c in completer.get_completions(Document("EC"), CompleteEvent())] == ["ECHO"]
    assert [c.text for c in completer.get_completions(Document("/r"), CompleteEvent())] == ["/raw", "/reconnect"]
    assert [c.text for c in completer.get_completions(Document("/call e"), CompleteEvent())] == ["echo"]
    assert list(completer.get_completions(Document("ECHO x"), CompleteEvent())) == []
    assert hexdump(b"hi\r\n") == ["0000  68 69 0d 0a" + " " * 36 + "  |hi..|"]
    rows = hexdump(bytes(range(20)))
    assert len(rows) == 2 and rows[1].startswith("0010  10 11 12 13")
