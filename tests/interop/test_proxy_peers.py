"""Interop: `netlab proxy` between clients and servers nobody here wrote.

Every test runs a foreign client through the proxy to a foreign server,
with a recording tap of our own on each segment:

    client -> near tap -> netlab proxy -> far tap -> server

A tap is a plain relay (threads and sockets, nothing of netlab) that
records what it receives from each side.  The proxy is exact when the far
tap got the client's bytes as the near tap did, and the near tap got the
server's bytes as the far tap did; its log is right when its decoded
messages, put together per direction, are those same bytes.  The proxy runs in-process
(`lab.proxy`), and as the real `netlab proxy ... --json` process.
Intercepts: a sender rewritten in flight reaches aiosmtpd's mailbox, and
a held message stops only its own connection.
"""

from __future__ import annotations

import io
import json
import mailbox
import os
import poplib
import re
import smtplib
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest
from helpers import Proc, free_port, require, wait_until

from lab import Lab
from lab.eventlog import Direction, EventFilter, EventKind
from lab.proxy import Proxy

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
Address = tuple[str, int]

MAIL = (b"From: Bob <bob@far.test>\r\nTo: Alice <alice@lab.test>\r\nSubject: through the proxy\r\n\r\n"
        b"Hello Alice.\r\n.A line that starts with a dot.\r\nBye.\r\n")


def run(args: list[str], stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)


# -- taps ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Session:
    """One connection through a tap: what each side sent, as it passed.
    ``ends`` lists the directions in the order they finished ("up" is
    client -> server, "down" server -> client)."""

    up: bytearray = field(default_factory=bytearray)
    down: bytearray = field(default_factory=bytearray)
    ends: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class Tap:
    """A transparent TCP relay to ``target`` that records both directions of
    every connection; an EOF passes on as a half-close, an error closes both."""

    def __init__(self, target: Address, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self.sessions: list[Session] = []
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((host, port))
        self.host, self.port = host, int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target, timeout=30)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            session = Session()
            self.sessions.append(session)
            self._sockets += [client, server]
            for src, dst, record, name in ((client, server, session.up, "up"),
                                           (server, client, session.down, "down")):
                threading.Thread(target=self._pump, args=(src, dst, record, name, session, (client, server)),
                                 daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, record: bytearray, name: str, session: Session,
              pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while data := src.recv(65536):
                record += data  # what this tap received, whether or not the far end still reads
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # the EOF passes on
        except OSError:
            for sock in pair:  # one side is gone: so is the other
                with _quiet():
                    sock.shutdown(socket.SHUT_RDWR)
        session.ends.append(name)
        if len(session.ends) == 2:
            for sock in pair:
                sock.close()
            session.done.set()

    def wait(self, count: int = 1, timeout: float = 30) -> list[Session]:
        """The first ``count`` sessions, once each has finished both ways."""
        wait_until(lambda: len(self.sessions) >= count and all(s.done.is_set() for s in self.sessions[:count]),
                   timeout, f"{count} connection(s) through the tap on port {self.port} to end")
        return self.sessions[:count]

    def close(self) -> None:
        with _quiet():
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for sock in self._sockets:
            with _quiet():
                sock.shutdown(socket.SHUT_RDWR)


@dataclass(eq=False)
class Datagrams:
    """One client of a UDP tap: its datagrams, and the server's answers."""

    up: list[bytes] = field(default_factory=list)
    down: list[bytes] = field(default_factory=list)


class UdpTap:
    """A transparent UDP relay: one socket toward ``target`` for each
    client address, each datagram recorded as it passed (empty ones too)."""

    def __init__(self, target: Address, host: str = "127.0.0.1") -> None:
        self.target = target
        self.sessions: list[Datagrams] = []
        self._clients: dict[Any, tuple[Datagrams, socket.socket]] = {}
        self._closed = False
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind((host, 0))
        self.host, self.port = host, int(self._front.getsockname()[1])
        threading.Thread(target=self._serve_front, daemon=True).start()

    def _serve_front(self) -> None:
        while True:
            try:
                data, addr = self._front.recvfrom(65536)
            except OSError:
                return
            if self._closed:
                return
            if addr not in self._clients:
                back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                back.connect(self.target)
                self._clients[addr] = (Datagrams(), back)
                self.sessions.append(self._clients[addr][0])
                threading.Thread(target=self._serve_back, args=(addr,), daemon=True).start()
            session, back = self._clients[addr]
            session.up.append(data)
            with _quiet():
                back.send(data)

    def _serve_back(self, addr: Any) -> None:
        session, back = self._clients[addr]
        while True:
            try:
                data = back.recv(65536)
            except ConnectionRefusedError:
                continue  # an ICMP error for an earlier datagram: the socket goes on
            except OSError:
                return
            if self._closed:
                return
            session.down.append(data)
            with _quiet():
                self._front.sendto(data, addr)

    def close(self) -> None:
        self._closed = True
        for sock in [self._front, *(back for _, back in self._clients.values())]:
            with _quiet():
                sock.shutdown(socket.SHUT_RDWR)  # wakes its reader, which sees _closed
            sock.close()


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


# -- chains: client -> near tap -> proxy -> far tap -> server -------------------------------


@dataclass
class Chain:
    """A proxy between two taps; clients connect to ``port``."""

    near: Tap | UdpTap
    far: Tap | UdpTap
    proxy: Proxy

    @property
    def port(self) -> int:
        return self.near.port


Through = Callable[..., Chain]


@pytest.fixture
def through(lab: Lab) -> Iterator[Through]:
    """``through(protocol, server)``: a chain to ``server`` with an
    in-process proxy (``udp=True`` for UDP; ``near=(host, port)`` where the
    client is hard-wired to an address)."""
    taps: list[Tap | UdpTap] = []

    def make(protocol: str, server: Address, *, udp: bool = False, near: Address = ("127.0.0.1", 0)) -> Chain:
        far: Tap | UdpTap = UdpTap(server) if udp else Tap(server)
        taps.append(far)
        px = lab.proxy(protocol, to=f"127.0.0.1:{far.port}", transport="udp" if udp else "tcp")
        front: Tap | UdpTap = UdpTap(("127.0.0.1", px.port), near[0]) if udp else Tap(("127.0.0.1", px.port), *near)
        taps.append(front)
        return Chain(front, far, px)

    yield make
    for tap in taps:
        tap.close()


def decoded(lab: Lab, proxy: str, conn: str, direction: Direction) -> list[bytes]:
    """The raw bytes of each message the proxy decoded on ``conn`` one way."""
    return [e.raw or b"" for e in lab.log.query(EventFilter(endpoint=proxy, conn=conn, direction=direction,
                                                            kinds=frozenset({EventKind.MESSAGE})))]


def proxy_conns(lab: Lab, proxy: str, kind: EventKind = EventKind.OPEN) -> list[str]:
    return [e.conn for e in lab.log.query(EventFilter(endpoint=proxy, kinds=frozenset({kind})))]


def assert_exact(lab: Lab, chain: Chain, count: int = 1, *, both_ways: bool = True) -> list[Session]:
    """The ``count`` connections through ``chain`` ended; each side received
    exactly what the other sent, and the proxy's decoded messages are
    those bytes, both ways (``both_ways``: each way has messages)."""
    assert isinstance(chain.near, Tap) and isinstance(chain.far, Tap)
    nears, fars = chain.near.wait(count), chain.far.wait(count)
    name = chain.proxy.name
    wait_until(lambda: len(proxy_conns(lab, name, EventKind.CLOSE)) >= count, 30, f"{count} proxied connection(s)"
               " to close")
    for near, far, conn in zip(nears, fars, proxy_conns(lab, name), strict=True):
        assert bytes(far.up) == bytes(near.up), f"{conn}: the server did not get what the client sent"
        assert bytes(near.down) == bytes(far.down), f"{conn}: the client did not get what the server sent"
        ins, outs = decoded(lab, name, conn, Direction.IN), decoded(lab, name, conn, Direction.OUT)
        assert b"".join(ins) == bytes(near.up), f"{conn}: the log's client messages differ from the bytes"
        assert b"".join(outs) == bytes(near.down), f"{conn}: the log's server messages differ from the bytes"
        if both_ways:
            assert ins and outs, f"{conn}: the log lacks a direction"
    return nears


def assert_exact_udp(lab: Lab, chain: Chain, answers: int) -> Datagrams:
    """One client's datagrams went through unchanged, one for one, and
    ``answers`` came back the same; the proxy decoded each, both ways."""
    assert isinstance(chain.near, UdpTap) and isinstance(chain.far, UdpTap)
    near, far = chain.near, chain.far
    wait_until(lambda: len(near.sessions) == 1 and len(near.sessions[0].down) >= answers, 30,
               f"{answers} answer(s) through the taps")
    [client], [server] = near.sessions, far.sessions
    assert server.up == client.up and client.down == server.down
    assert len(client.down) == answers
    name = chain.proxy.name
    [conn] = proxy_conns(lab, name)

    def logged() -> tuple[bytes, bytes]:
        return b"".join(decoded(lab, name, conn, Direction.IN)), b"".join(decoded(lab, name, conn, Direction.OUT))

    wait_until(lambda: logged() == (b"".join(client.up), b"".join(client.down)), 30, "the proxy's log")
    return client


# -- echo, discard, chargen, daytime, time, QOTD over TCP (openbsd-inetd) --------------------


def test_nc_echo_half_close_through_proxy(lab: Lab, through: Through, inetd: str) -> None:
    """nc -N sends, then half-closes; the EOF crosses the proxy to inetd's
    echo, which answers everything and closes; nc gets it all back."""
    chain = through("echo", (inetd, 7))
    sent = b"first line\r\nsecond line\n" + bytes(range(256)) * 40
    out = run([require("nc"), "-N", "127.0.0.1", str(chain.port)], sent)
    assert out.returncode == 0 and out.stdout == sent
    [session] = assert_exact(lab, chain)
    assert bytes(session.up) == sent
    assert session.ends == ["up", "down"]  # the client finished first: its EOF went all the way
    [conn] = proxy_conns(lab, chain.proxy.name)
    notes = [e.summary for e in lab.log.query(EventFilter(conn=conn, kinds=frozenset({EventKind.INFO})))]
    assert notes.index("the client finished sending (EOF)") < notes.index("the server finished sending (EOF)")


def test_socat_echo_through_proxy(lab: Lab, through: Through, inetd: str) -> None:
    """socat, line by line on a pipe that stays open, then its EOF."""
    chain = through("echo", (inetd, 7))
    with Proc([require("socat"), "-", f"TCP:127.0.0.1:{chain.port}"]) as proc:
        assert proc.popen.stdin is not None
        for line in ("one", "two", "three"):
            proc.popen.stdin.write(line + "\n")
            proc.popen.stdin.flush()
            proc.wait_for(f"^{line}$", timeout=30)
        proc.popen.stdin.close()
        assert proc.popen.wait(30) == 0
    [session] = assert_exact(lab, chain)
    assert bytes(session.up) == b"one\ntwo\nthree\n"


def test_nc_discard_through_proxy(lab: Lab, through: Through, inetd: str) -> None:
    """All nc sends reaches inetd's discard; nothing comes back."""
    chain = through("discard", (inetd, 9))
    sent = b"into the void\n" * 500
    out = run([require("nc"), "-N", "127.0.0.1", str(chain.port)], sent)
    assert out.returncode == 0 and out.stdout == b""
    [session] = assert_exact(lab, chain, both_ways=False)
    assert bytes(session.up) == sent and session.down == b""


def test_nc_chargen_through_proxy(lab: Lab, through: Through, inetd: str) -> None:
    """nc reads inetd's endless pattern, then leaves: what reached it is a
    prefix of what inetd sent, unchanged, and the log decoded the lines."""
    chain = through("chargen", (inetd, 19))
    with Proc([require("nc"), "-d", "127.0.0.1", str(chain.port)]) as proc:
        lines = [proc.wait_for(".", timeout=30) for _ in range(5)]
    assert all(len(line) == 72 for line in lines) and lines[1][:-1] == lines[0][1:]
    assert isinstance(chain.near, Tap) and isinstance(chain.far, Tap)
    [near], [far] = chain.near.wait(), chain.far.wait()
    assert near.up == far.up == b""
    assert len(near.down) >= 5 * 74 and bytes(far.down).startswith(bytes(near.down))
    [conn] = proxy_conns(lab, chain.proxy.name)
    wait_until(lambda: proxy_conns(lab, chain.proxy.name, EventKind.CLOSE), 30, "the close")
    logged = b"".join(decoded(lab, chain.proxy.name, conn, Direction.OUT))
    assert len(logged) >= 5 * 74 and bytes(far.down).startswith(logged)


SPEAKS_AND_CLOSES = {
    "daytime": (13, lambda port: ["socat", "-u", f"TCP:127.0.0.1:{port}", "-"]),
    "time": (37, lambda port: ["rdate", "-p", "-o", str(port), "127.0.0.1"]),
    "qotd": (17, lambda port: ["socat", "-u", f"TCP:127.0.0.1:{port}", "-"]),
}


@pytest.mark.parametrize("protocol", sorted(SPEAKS_AND_CLOSES))
def test_server_first_protocols_through_proxy(lab: Lab, through: Through, inetd: str, protocol: str) -> None:
    """daytime and QOTD to socat, time (RFC 868) to rdate: inetd speaks,
    closes, and the client reads it unchanged."""
    port, client = SPEAKS_AND_CLOSES[protocol]
    chain = through(protocol, (inetd, port))
    args = client(chain.port)
    out = run([require(args[0]), *args[1:]])
    assert out.returncode == 0, out.stderr
    [session] = assert_exact(lab, chain, both_ways=False)
    assert session.up == b"" and session.down
    if protocol == "time":
        assert len(session.down) == 4
        assert re.search(r"\b20\d\d\b", out.stdout.decode()), out.stdout
    else:
        assert out.stdout == session.down
    if protocol == "qotd":
        assert b"Be conservative in what you send" in session.down


# -- UDP ---------------------------------------------------------------------------------------


@pytest.fixture
def socat_udp() -> Iterator[Callable[[str], int]]:
    """``socat_udp(ADDRESS)``: socat answering UDP on a free port, a child
    per datagram running ADDRESS (EXEC:cat, SYSTEM:date), all on the one
    socket (UDP4-LISTEN re-binds after each new client forks, and a
    datagram that arrives in that gap is lost); returns the port once it
    answers.  Each socat and its children go at the end."""
    procs: list[Proc] = []

    def start(address: str) -> int:
        port = free_port(socket.SOCK_DGRAM)
        proc = Proc([require("socat"), "-T", "30", f"UDP4-RECVFROM:{port},bind=127.0.0.1,fork,reuseaddr", address],
                    start_new_session=True)
        procs.append(proc)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.2)
            probe.connect(("127.0.0.1", port))

            def answers() -> bool:
                try:
                    probe.send(b"ready?\n")
                    return bool(probe.recv(4096))
                except OSError:  # not bound yet: refused, or no answer in time
                    return False

            wait_until(answers, 30, f"socat to answer on udp port {port}")
        return port

    yield start
    for proc in procs:
        with _quiet():
            os.killpg(proc.popen.pid, 15)  # the children it forked, too
        proc.stop(15)


def test_nc_udp_echo_through_proxy(lab: Lab, through: Through, socat_udp: Callable[[str], int]) -> None:
    """nc -u sends three datagrams, one at a time; each comes back from
    socat's echo, one for one, through `--udp`."""
    chain = through("echo", ("127.0.0.1", socat_udp("EXEC:cat")), udp=True)
    with Proc([require("nc"), "-u", "127.0.0.1", str(chain.port)]) as proc:
        assert proc.popen.stdin is not None
        for line in ("one", "two", "three"):
            proc.popen.stdin.write(line + "\n")
            proc.popen.stdin.flush()
            proc.wait_for(f"^{line}$", timeout=30)
    client = assert_exact_udp(lab, chain, answers=3)
    assert client.up == [b"one\n", b"two\n", b"three\n"] == client.down


def test_nc_udp_daytime_through_proxy(lab: Lab, through: Through, socat_udp: Callable[[str], int]) -> None:
    """A datagram to socat's daytime (SYSTEM:date) brings one back with the date."""
    chain = through("daytime", ("127.0.0.1", socat_udp("SYSTEM:date")), udp=True)
    with Proc([require("nc"), "-u", "127.0.0.1", str(chain.port)]) as proc:
        assert proc.popen.stdin is not None
        proc.popen.stdin.write("\n")
        proc.popen.stdin.flush()
        date = proc.wait_for(r"\b20\d\d\b", timeout=30)
    client = assert_exact_udp(lab, chain, answers=1)
    assert client.up == [b"\n"] and client.down == [date.encode() + b"\n"]


# -- finger ------------------------------------------------------------------------------------


def test_debian_finger_through_proxy(lab: Lab, through: Through, inetd: str, finger_host: str) -> None:
    """Debian finger, which only dials port 79, reaches Debian's in.fingerd
    (under inetd): the near tap listens on port 79 of another loopback address."""
    require("in.fingerd")
    chain = through("finger", (inetd, 79), near=(finger_host, 79))
    out = run([require("finger"), "-l", f"root@{chain.near.host}"])
    assert out.returncode == 0, out.stderr
    assert b"Login: root" in out.stdout, out.stdout
    [session] = assert_exact(lab, chain)
    assert session.up == b"/W root\r\n"  # -l asks for the long form
    assert b"Login: root" in session.down


# -- SMTP: swaks, smtplib, curl -> aiosmtpd ------------------------------------------------------


def swaks_args(port: int, sender: str = "bob@far.test") -> list[str]:
    return [require("swaks"), "--server", f"127.0.0.1:{port}", "--from", sender, "--to", "alice@lab.test",
            "--helo", "swaks.test", "--header", "Subject: swaks through the proxy",
            "--body", "Hi from swaks.\n.dot line\n"]


def send_with_smtplib(port: int, sender: str = "bob@far.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("smtplib.test")
        assert client.sendmail(sender, ["alice@lab.test"], MAIL) == {}


def send_with_curl(port: int, sender: str = "bob@far.test") -> None:
    out = run([require("curl"), "-sS", f"smtp://127.0.0.1:{port}/curl.test", "--mail-from", sender,
               "--mail-rcpt", "alice@lab.test", "-T", "-"], MAIL)
    assert out.returncode == 0, out.stderr


def send_with_swaks(port: int, sender: str = "bob@far.test") -> None:
    out = run(swaks_args(port, sender))
    assert out.returncode == 0, out.stdout


def maildir_senders(maildir: Path) -> list[str]:
    return sorted(str(msg["X-MailFrom"]) for msg in mailbox.Maildir(maildir))


@pytest.mark.parametrize("send", [send_with_swaks, send_with_smtplib, send_with_curl], ids=["swaks", "smtplib", "curl"])
def test_smtp_clients_through_proxy_to_aiosmtpd(lab: Lab, through: Through, aiosmtpd: tuple[int, Path],
                                                send: Callable[[int], None]) -> None:
    """swaks, smtplib and curl deliver to aiosmtpd through the proxy; the
    stored message is the one sent."""
    port, maildir = aiosmtpd
    chain = through("smtp", ("127.0.0.1", port))
    send(chain.port)
    [session] = assert_exact(lab, chain)
    assert b"\r\nmail from:<bob@far.test>" in session.up.lower() and b"\r\n250 " in session.down
    [msg] = list(mailbox.Maildir(maildir))
    assert (msg["X-MailFrom"], msg["X-RcptTo"]) == ("bob@far.test", "alice@lab.test")
    summaries = [e.summary for e in lab.log.query(EventFilter(endpoint=chain.proxy.name,
                                                              kinds=frozenset({EventKind.MESSAGE})))]
    assert "MAIL FROM:<bob@far.test>" in summaries and "QUIT" in summaries


# -- POP3: poplib, curl -> dovecot ----------------------------------------------------------------


def test_poplib_through_proxy_to_dovecot(lab: Lab, through: Through, dovecot: tuple[int, Path],
                                         dovecot_mail: list[bytes]) -> None:
    """poplib logs in to dovecot, lists, retrieves and reads a header; the
    messages arrive unchanged."""
    port, _ = dovecot
    chain = through("pop3", ("127.0.0.1", port))
    client = poplib.POP3("127.0.0.1", chain.port, timeout=30)
    assert b"Dovecot" in client.getwelcome()
    client.user("alice")
    client.pass_("wonderland")
    assert client.stat() == (2, sum(len(m) for m in dovecot_mail))
    assert b"\r\n".join(client.retr(1)[1]) + b"\r\n" == dovecot_mail[0]
    assert client.top(2, 0)[1][:2] == dovecot_mail[1].split(b"\r\n")[:2]
    assert client.quit().startswith(b"+OK")
    [session] = assert_exact(lab, chain)
    assert b"RETR 1\r\n" in session.up and b"\r\n..dotted line\r\n" in session.down  # dot-stuffed on the wire


def test_curl_through_proxy_to_dovecot(lab: Lab, through: Through, dovecot: tuple[int, Path],
                                       dovecot_mail: list[bytes]) -> None:
    """curl pop3:// lists the maildrop, then retrieves message 1: two
    connections, each relayed exactly."""
    port, _ = dovecot
    chain = through("pop3", ("127.0.0.1", port))
    base = f"pop3://alice:wonderland@127.0.0.1:{chain.port}/"
    listing = run([require("curl"), "-sS", base])
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == b"".join(f"{n} {len(m)}\r\n".encode() for n, m in enumerate(dovecot_mail, 1))
    message = run([require("curl"), "-sS", base + "1"])
    assert message.returncode == 0 and message.stdout == dovecot_mail[0]
    first, second = assert_exact(lab, chain, count=2)
    assert b"LIST\r\n" in first.up and b"RETR 1\r\n" in second.up


# -- NNTP: nntplib -> INN --------------------------------------------------------------------------


def test_nntplib_through_proxy_to_inn(lab: Lab, through: Through, inn: int) -> None:
    """nntplib switches INN to reader mode, posts, and reads the article back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nntplib: deprecated since 3.11
        import nntplib
    chain = through("nntp", ("127.0.0.1", inn))
    article = (b"From: Alice <alice@lab.test>\r\nNewsgroups: lab.test\r\nSubject: through the proxy\r\n\r\n"
               b"A line.\r\n.A line starting with a dot.\r\n")
    with nntplib.NNTP("127.0.0.1", chain.port, readermode=True, timeout=30) as news:
        assert "INN" in news.getwelcome()
        assert news.post(io.BytesIO(article)).startswith("240")
        _, count, first, _, _ = news.group("lab.test")
        assert count == 1
        _, info = news.article(first)
        assert info.lines[-2:] == [b"A line.", b".A line starting with a dot."]
        assert news.quit().startswith("205")
    [session] = assert_exact(lab, chain)
    assert b"\r\n..A line starting with a dot.\r\n" in session.up  # dot-stuffed both ways
    assert b"\r\n..A line starting with a dot.\r\n" in session.down


# -- IRC: the irc library -> ngIRCd, Twisted's IRCClient -> miniircd ---------------------------------


def irc_peer(script: str, port: int, nick: str) -> Proc:
    """An IRC client of test_irc_peers.py (driven over stdin) in a child process."""
    return Proc([sys.executable, str(HERE / script), str(port), nick])


def tell(peer: Proc, command: str) -> None:
    assert peer.popen.stdin is not None
    peer.popen.stdin.write(command + "\n")
    peer.popen.stdin.flush()


def test_irc_library_through_proxy_to_ngircd(lab: Lab, through: Through, ngircd: int) -> None:
    """The irc library registers with ngIRCd, joins, talks and quits."""
    chain = through("irc", ("127.0.0.1", ngircd))
    with irc_peer("irc_peer_irclib.py", chain.port, "libby") as peer:
        peer.wait_for(r"^WELCOME\t", timeout=30)
        tell(peer, "join #lab")
        assert peer.wait_for(r"^NAMREPLY\t", timeout=30).split("\t")[-1] == "@libby"
        tell(peer, "topic #lab through the proxy")
        peer.wait_for(r"^TOPIC\t", timeout=30)
        tell(peer, "quit see you")
        peer.wait_for(r"^BYE", timeout=30)
    [session] = assert_exact(lab, chain)
    assert b"JOIN #lab\r\n" in session.up and b"QUIT :see you\r\n" in session.up
    assert b"ngIRCd" in session.down and b"TOPIC #lab :through the proxy\r\n" in session.down


def test_twisted_ircclient_through_proxy_to_miniircd(lab: Lab, through: Through, miniircd: int) -> None:
    """Twisted's IRCClient signs on to miniircd, joins, talks and quits."""
    chain = through("irc", ("127.0.0.1", miniircd))
    with irc_peer("irc_peer_twisted.py", chain.port, "twisty") as peer:
        peer.wait_for(r"^SIGNEDON\ttwisty$", timeout=30)
        tell(peer, "join #lab")
        peer.wait_for(r"^JOINED\t#lab$", timeout=30)
        tell(peer, "say #lab hello")
        tell(peer, "quit bye now")
        peer.wait_for(r"^BYE", timeout=30)
    [session] = assert_exact(lab, chain)
    assert b"PRIVMSG #lab :hello\r\n" in session.up and b"QUIT :bye now\r\n" in session.up


# -- telnet: Debian telnet -> telnetlib3-server, telnetlib3-client -> inetutils telnetd -----------------


def terminal(program: str, port: int) -> pexpect.spawn:
    env = dict(os.environ, TERM="xterm", LANG="C.UTF-8")
    return pexpect.spawn(require(program), ["127.0.0.1", str(port)], env=env, encoding="utf-8",
                         codec_errors="replace", timeout=30, dimensions=(40, 120))


def test_debian_telnet_through_proxy_to_telnetlib3(lab: Lab, through: Through, telnetlib3_server: int) -> None:
    """Debian telnet negotiates with telnetlib3's server and uses its shell."""
    chain = through("telnet", ("127.0.0.1", telnetlib3_server))
    term = terminal("telnet", chain.port)
    try:
        term.expect("tel:sh> ")
        term.send("help\r")
        term.expect(r"toggle \[option\|all\]")
        term.expect("tel:sh> ")
        term.send("quit\r")
        term.expect("Goodbye.")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    [session] = assert_exact(lab, chain)
    assert b"\xff\xfa\x1f" in session.up  # SB NAWS: the window size, negotiated through the proxy


def test_telnetlib3_client_through_proxy_to_inetutils_telnetd(lab: Lab, through: Through, telnetd: int) -> None:
    """telnetlib3's client logs in to GNU telnetd (a login script on a pty)."""
    chain = through("telnet", ("127.0.0.1", telnetd))
    term = terminal("telnetlib3-client", chain.port)
    try:
        term.expect("login: ")
        term.send("alice\r")
        term.expect("Password: ")
        term.send("secret\r")
        term.expect(r"Welcome, alice")
        term.expect(r"\$ ")
        term.send("hello\r")
        term.expect("you said: hello; rows and columns: 40 120")
        term.expect(r"\$ ")
        term.send("exit\r")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    [session] = assert_exact(lab, chain)
    assert b"hello" in session.up and b"you said: hello" in session.down


# -- the `netlab proxy` process -----------------------------------------------------------------------


@contextmanager
def netlab_proxy(protocol: str, target: Address) -> Iterator[tuple[int, Proc]]:
    """`netlab proxy PROTO --to HOST:PORT --json` in a child process: its port, and the process."""
    args = [sys.executable, "-m", "lab", "proxy", protocol, "--to", f"{target[0]}:{target[1]}", "--json"]
    with Proc(args) as proc:
        line = proc.wait_for(r"proxy on tcp://127\.0\.0\.1:\d+", timeout=60, stream="stderr")
        match = re.search(r"tcp://127\.0\.0\.1:(\d+)", line)
        assert match is not None
        yield int(match.group(1)), proc
        proc.stop()


def printed_events(proc: Proc) -> list[dict[str, Any]]:
    proc.output()
    return [json.loads(line) for name, line in proc.seen if name == "stdout" and line.startswith("{")]


def test_swaks_through_netlab_proxy_process_to_aiosmtpd(aiosmtpd: tuple[int, Path]) -> None:
    """`netlab proxy smtp --json` as a process: swaks delivers to aiosmtpd,
    the bytes are exact, and the JSON events decode both directions."""
    port, maildir = aiosmtpd
    far = Tap(("127.0.0.1", port))
    near = None
    try:
        with netlab_proxy("smtp", ("127.0.0.1", far.port)) as (proxy_port, proc):
            near = Tap(("127.0.0.1", proxy_port))
            send_with_swaks(near.port)
            proc.wait_for(r'"kind": "close"', timeout=30, stream="stdout")
            events = printed_events(proc)
        [client], [server] = near.wait(), far.wait()
    finally:
        for tap in (near, far):
            if tap is not None:
                tap.close()
    assert bytes(server.up) == bytes(client.up) and bytes(client.down) == bytes(server.down)
    messages = [e for e in events if e["kind"] == "msg"]
    ins = "".join(e["raw"] for e in messages if e["dir"] == "in").encode("latin-1")
    outs = "".join(e["raw"] for e in messages if e["dir"] == "out").encode("latin-1")
    assert ins == bytes(client.up) and outs == bytes(client.down)
    assert {"EHLO swaks.test", "MAIL FROM:<bob@far.test>", "QUIT"} <= {e["summary"] for e in messages}
    assert maildir_senders(maildir) == ["bob@far.test"]


# -- intercept ------------------------------------------------------------------------------------------


def test_intercept_rewrites_mail_from_between_swaks_and_aiosmtpd(lab: Lab, through: Through,
                                                                  aiosmtpd: tuple[int, Path]) -> None:
    """MAIL FROM held and edited in flight: aiosmtpd stores the new sender,
    and the only bytes that changed on the way are that command's."""
    port, maildir = aiosmtpd
    chain = through("smtp", ("127.0.0.1", port))
    lab.intercept(chain.proxy, "m:MAIL in", timeout=120)
    with Proc(swaks_args(chain.port)) as swaks:
        [held] = lab.wait_held(timeout=30)
        assert held.summary == "MAIL FROM:<bob@far.test>"
        lab.edit(held.id, arg="FROM:<edited@lab.test>")
        assert swaks.popen.wait(60) == 0, swaks.output()
    assert maildir_senders(maildir) == ["edited@lab.test"]
    assert isinstance(chain.near, Tap) and isinstance(chain.far, Tap)
    [near], [far] = chain.near.wait(), chain.far.wait()
    assert bytes(far.up) == bytes(near.up).replace(b"MAIL FROM:<bob@far.test>\r\n", b"MAIL FROM:<edited@lab.test>\r\n")
    assert b"MAIL FROM:<bob@far.test>" in near.up and bytes(near.down) == bytes(far.down)


def test_held_message_does_not_delay_another_connection(lab: Lab, through: Through,
                                                        aiosmtpd: tuple[int, Path]) -> None:
    """While swaks's MAIL is held, smtplib delivers a whole message through the
    same proxy; released, swaks's message is delivered too."""
    port, maildir = aiosmtpd
    chain = through("smtp", ("127.0.0.1", port))
    lab.intercept(chain.proxy, "m:MAIL in held@lab.test", timeout=120)
    with Proc(swaks_args(chain.port, sender="held@lab.test")) as swaks:
        [held] = lab.wait_held(timeout=30)
        send_with_smtplib(chain.port, sender="free@lab.test")
        assert maildir_senders(maildir) == ["free@lab.test"]
        assert [h.id for h in lab.held()] == [held.id] and swaks.popen.poll() is None  # still waiting
        lab.release(held.id)
        assert swaks.popen.wait(60) == 0, swaks.output()
    assert maildir_senders(maildir) == ["free@lab.test", "held@lab.test"]
    first, second = assert_exact(lab, chain, count=2)
    assert b"MAIL FROM:<held@lab.test>" in first.up and b"mail FROM:<free@lab.test>" in second.up
