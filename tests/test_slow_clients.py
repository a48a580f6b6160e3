"""Slow clients: the line timeout, the minimum rate and the share of
connections per source address (lab/endpoints.py, lab/connection.py).

Every test uses real loopback sockets; other source addresses are
127.0.0.2 and up.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from pathlib import Path

import pytest
from helpers import wait_until

from lab import ConfigError, Lab
from lab.commands import Interpreter
from lab.endpoints import DEFAULT_LINE_TIMEOUT, DEFAULT_MIN_RATE
from lab.eventlog import EventFilter, EventKind

SLOW = "message not complete"


def summaries(lab: Lab, endpoint: str, kind: EventKind) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({kind})))]


def connect_from(host: str, port: int, timeout: float = 20.0) -> socket.socket:
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((host, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_to_close(s: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def finger_from(host: str, port: int) -> tuple[bytes, float]:
    """One whole finger query from ``host``: the answer and how long it took."""
    start = time.monotonic()
    with connect_from(host, port) as s:
        s.sendall(b"\r\n")
        reply = read_to_close(s)
    return reply, time.monotonic() - start


def is_closed(s: socket.socket, got: bytearray | None = None) -> bool:
    """Has the server closed ``s``?  (Non-blocking look; what arrived goes to ``got``.)"""
    s.setblocking(False)
    try:
        while chunk := s.recv(65536):
            if got is not None:
                got += chunk
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(20)


# -- the caps as options --------------------------------------------------------


def test_defaults_are_on_and_each_cap_turns_off(lab: Lab) -> None:
    """Safe by default; 0 turns a cap off; a negative cap is a config error."""
    srv = lab.serve("finger")
    assert (srv.line_timeout, srv.min_rate) == (DEFAULT_LINE_TIMEOUT, DEFAULT_MIN_RATE)
    assert srv.max_per_source == 64  # a quarter of the default 256
    assert lab.serve("echo", max_connections=2).max_per_source == 2  # small caps: at least 4, at most the cap
    off = lab.serve("finger", line_timeout=0, min_rate=0, max_per_source=0)
    assert (off.line_timeout, off.min_rate, off.max_per_source) == (None, 0, 0)
    with pytest.raises(ConfigError, match="line_timeout"):
        lab.serve("finger", line_timeout=-1)


def test_serve_command_takes_the_caps(lab: Lab) -> None:
    """`serve` passes --line-timeout, --min-rate and --max-per-source; left out, the defaults hold."""
    Interpreter(lab).execute("serve finger --line-timeout 2.5 --min-rate 0 --max-per-source 3 as f;"
                             " serve finger as g")
    f, g = lab["f"], lab["g"]
    assert (f.line_timeout, f.min_rate, f.max_per_source) == (2.5, 0, 3)
    assert (g.line_timeout, g.min_rate, g.max_per_source) == (DEFAULT_LINE_TIMEOUT, DEFAULT_MIN_RATE, 64)


# -- line timeout ------------------------------------------------------------------


def test_line_trickled_past_the_timeout_is_cut_with_the_protocols_reply(lab: Lab) -> None:
    """A command line that does not end within the line timeout closes the
    connection, with the session's error reply and an error event, however
    often its bytes come."""
    srv = lab.serve("smtp", line_timeout=0.5, min_rate=0)
    with connect_from("127.0.0.1", srv.port) as s:
        assert s.recv(4096).startswith(b"220")
        reply = bytearray()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                s.sendall(b"H")
            except OSError:
                break
            time.sleep(0.05)  # the slow client's pace
            if is_closed(s, reply):
                break
    wait_until(lambda: any(SLOW in e for e in summaries(lab, srv.name, EventKind.ERROR)), timeout=20,
               what="the error event")
    wait_until(lambda: not srv.connections, timeout=20, what="the connection to close")
    assert reply.startswith(b"500 5.5.2 message not complete after"), reply


def test_line_timeout_off_lets_a_slow_line_stay(lab: Lab) -> None:
    """line_timeout=0: a trickled line is left to the idle timeout."""
    srv = lab.serve("finger", line_timeout=0)
    with connect_from("127.0.0.1", srv.port) as s:
        for _ in range(12):
            s.sendall(b"a")
            time.sleep(0.1)
        assert not is_closed(s)
        s.sendall(b"\r\n")
        assert read_to_close(s)
    assert not any(SLOW in e for e in summaries(lab, srv.name, EventKind.ERROR))


def test_person_typing_in_telnet_is_not_cut(lab: Lab) -> None:
    """A person typing: each line typed in under the line timeout, with
    pauses longer than it between lines, stays connected and answered."""
    srv = lab.serve("telnet", line_timeout=0.6)
    c = lab.connect("telnet", srv)
    c.read_until("ends the session.\n", timeout=20)
    for word in ("first", "second", "third"):
        for ch in word:
            c.send_raw(ch.encode())
            time.sleep(0.05)
        c.send_raw(b"\r\n")
        assert c.read_line(timeout=20) == word
        time.sleep(1.0)  # thinking, longer than the line timeout
    assert not any(SLOW in e for e in summaries(lab, srv.name, EventKind.ERROR))
    assert len(srv.connections) == 1


# -- minimum rate ----------------------------------------------------------------


def smtp_into_data(s: socket.socket) -> None:
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    for line in (b"HELO there\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@lab.test>\r\n",
                 b"DATA\r\n"):
        s.sendall(line)
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
        assert reply[:1] in (b"2", b"3"), reply


def test_healthy_smtp_body_longer_than_the_line_timeout_is_not_cut(lab: Lab) -> None:
    """A mail body flowing well above the minimum rate may take longer than
    the line timeout."""
    srv = lab.serve("smtp", line_timeout=0.3, min_rate=1000)
    with connect_from("127.0.0.1", srv.port) as s:
        smtp_into_data(s)
        start = time.monotonic()
        line = b"x" * 254 + b"\r\n"
        sent = 0
        while time.monotonic() - start < 1.5 and sent < 60_000:  # ~25 KB/s, one 60 KB message at most
            s.sendall(line)
            sent += len(line)
            time.sleep(0.01)
        s.sendall(b".\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"250"), reply
    assert not any(SLOW in e for e in summaries(lab, srv.name, EventKind.ERROR))


def test_smtp_body_below_the_minimum_rate_is_cut(lab: Lab) -> None:
    """A body trickling under the minimum rate is cut once older than the
    line timeout, with SMTP's 500 and an error event."""
    srv = lab.serve("smtp", line_timeout=0.3, min_rate=1000)
    with connect_from("127.0.0.1", srv.port) as s:
        smtp_into_data(s)
        got = bytearray()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                s.sendall(b"y" * 10)  # ~200 B/s
            except OSError:
                break
            time.sleep(0.05)
            if is_closed(s, got):
                break
    wait_until(lambda: any(SLOW in e and "under 1000 B/s" in e for e in summaries(lab, srv.name, EventKind.ERROR)),
               timeout=20, what="the error event")
    wait_until(lambda: not srv.connections, timeout=20, what="the connection to close")
    assert got.startswith(b"500 5.5.2 message not complete after"), got


# -- per-source share -------------------------------------------------------------


def test_per_source_share_refuses_the_extra_connection_of_one_address_only(lab: Lab) -> None:
    """max_per_source connections from one address; another address still
    gets in, and a closed connection frees its place."""
    srv = lab.serve("echo", max_connections=10, max_per_source=2)
    first = [connect_from("127.0.0.1", srv.port) for _ in range(2)]
    wait_until(lambda: len(srv.connections) == 2, what="two connections in")
    with connect_from("127.0.0.1", srv.port) as extra:
        assert read_to_close(extra) == b""
    assert srv.refused == 1
    assert any("at most 2 per source" in e for e in summaries(lab, srv.name, EventKind.ERROR))
    with connect_from("127.0.0.2", srv.port) as other:
        other.sendall(b"hi")
        assert other.recv(10) == b"hi"
    first[0].close()
    wait_until(lambda: len(srv.connections) == 1, what="the closed one to leave")
    with connect_from("127.0.0.1", srv.port) as again:
        again.sendall(b"back")
        assert again.recv(10) == b"back"
    for s in first:
        s.close()
    assert srv.refused == 1


def test_per_source_share_off(lab: Lab) -> None:
    """max_per_source=0: one address may fill the cap."""
    srv = lab.serve("echo", max_connections=6, max_per_source=0)
    socks = [connect_from("127.0.0.1", srv.port) for _ in range(6)]
    try:
        for s in socks:
            s.sendall(b"x")
            assert s.recv(1) == b"x"
        assert srv.refused == 0
    finally:
        for s in socks:
            s.close()


# -- a thousand slow clients ---------------------------------------------------


class Trickle:
    """``count`` connections from 127.0.0.1 that each send one byte a
    second and never end a line; one closed is opened again on its next
    tick, as an attacker would.  Non-blocking, driven by this thread."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket | None] = [None] * count
        self.opened = self.closed = 0

    def _open(self, i: int) -> None:
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
        s.connect_ex(("127.0.0.1", self.port))
        self.socks[i] = s
        self.sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1

    def _drop(self, i: int) -> None:
        s = self.socks[i]
        if s is not None:
            self.sel.unregister(s)
            s.close()
            self.socks[i] = None
            self.closed += 1

    def tick(self) -> None:
        """Each connection sends its byte; closed ones are opened again."""
        for i, s in enumerate(self.socks):
            if s is None:
                self._open(i)
                continue
            try:
                s.send(b"a")
            except (BlockingIOError, InterruptedError):
                pass  # still connecting
            except OSError:
                self._drop(i)

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            i = key.data
            s = self.socks[i]
            if s is None:
                continue
            try:
                if not s.recv(65536):
                    self._drop(i)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(i)

    def close(self) -> None:
        for i in range(len(self.socks)):
            self._drop(i)
        self.sel.close()


@pytest.mark.parametrize("caps", [{}, {"max_connections": 1024, "max_per_source": 1000}],
                         ids=["default-share", "all-admitted"])
def test_a_thousand_one_byte_a_second_clients_do_not_lock_out_a_good_one(lab: Lab, caps: dict[str, int]) -> None:
    """1,000 connections from 127.0.0.1 trickling a byte a second, opened
    again whenever they are closed: the per-source share keeps them to a
    quarter of the cap (or, with a share that admits them all, the line
    timeout cuts all 1,000 at once), and a good client on 127.0.0.2 is
    answered promptly all along, as is another server of the lab."""
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * count + 200  # both ends live in this process
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    srv = lab.serve("finger", line_timeout=3, **caps)  # default caps: 256, 64 per source
    other = lab.serve("echo")
    echo = lab.connect("echo", other)
    trickle = Trickle(srv.port, count)
    waits: list[float] = []
    try:
        trickle.tick()
        start = time.monotonic()
        next_tick = start + 1.0
        next_good = start + 0.5
        while (now := time.monotonic()) - start < 13:
            if now >= next_good:
                reply, took = finger_from("127.0.0.2", srv.port)
                assert reply, "the good client got no answer"
                waits.append(took)
                assert echo.echo(f"alive {len(waits)}", timeout=20) == f"alive {len(waits)}".encode()
                next_good = now + 2.0
            if now >= next_tick:
                trickle.tick()
                next_tick += 1.0
            trickle.poll(min(0.1, max(0.0, min(next_tick, next_good) - time.monotonic())))
    finally:
        trickle.close()
    errors = summaries(lab, srv.name, EventKind.ERROR)
    cut = sum(SLOW in e for e in errors)
    refused_elsewhere = [e for e in errors if "refused 127.0.0.2" in e]
    print(f"good client waits (s): {', '.join(f'{w:.3f}' for w in waits)};"
          f" slow connections opened {trickle.opened}, closed {trickle.closed}, refused {srv.refused},"
          f" cut for slowness {cut}")
    assert len(waits) >= 6
    assert max(waits) < 5.0
    assert not refused_elsewhere
    assert trickle.closed >= count
    if caps:
        assert cut >= count  # every one admitted, every one cut
    else:
        assert srv.refused > count / 2  # the share held most of them off
        assert cut >= 64  # and the line timeout cut those it let in


def test_scenario_servers_take_the_caps_in_both_forms(tmp_path: Path) -> None:
    """A lab file's server and a `serve` step's text both set the slow-client caps (and a step's
    --max-connections is kept); the command the step stands for says them again."""
    from lab.scenarios import Runner, load_text
    from lab.scenarios._text import command_words

    text = """\
name: caps
lab:
  f: {protocol: finger, line_timeout: 2.5, min_rate: 0, max_per_source: 3}
steps:
  - serve: finger --line-timeout 4 --max-per-source 2 --max-connections 5 as g
  - connect: {to: g, as: c}
"""
    (scenario,) = load_text(text, str(tmp_path / "caps.yaml"))
    step = scenario.steps[0]
    words = command_words("serve", step.data)
    assert words is not None and "--line-timeout" in words and "--max-per-source" in words
    assert words[words.index("--max-connections") + 1] == "5"
    with Lab.start() as lab:
        outcome = Runner(scenario, lab=lab).run()
        assert outcome.passed, outcome.failure.report() if outcome.failure else ""
        f, g = lab["f"], lab["g"]
        assert (f.line_timeout, f.min_rate, f.max_per_source) == (2.5, 0, 3)
        assert (g.line_timeout, g.max_per_source, g.max_connections) == (4, 2, 5)
