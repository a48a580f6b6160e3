"""Floods, probes and memory samples against a lab in a process of its own,
for the fairness tests and ``bench/fairness.py``.

A lab of echo, NNTP, telnet (echo mode), SMTP and IRC servers, and a
proxy in front of the SMTP server, runs under
``netlab up`` with stdout thrown away and stderr a pipe nobody reads (as
when a terminal is gone or a log reader hangs).  A :class:`Flood` sends
short lines as fast as the server takes them (reading what comes back, or
not); a :class:`Probe` times an echo round trip every few milliseconds on
the same lab; :class:`RssSampler` watches the server's memory.  Every
loop here is bounded in count and in time.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SERVERS = ("echo", "nntp", "telnet", "smtp", "irc", "proxy")
ARTICLE_SIZE = 900 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing accepts on port {port} after {timeout} s")


@dataclass
class LabProcess:
    """``netlab up`` on a lab file with one server per protocol."""

    ports: dict[str, int]
    popen: subprocess.Popen[bytes]
    directory: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


LAB_FILE = """\
lab:
  echo: {{protocol: echo, port: {echo}, capture: {capture}}}
  news: {{protocol: nntp, port: {nntp}, capture: {capture}, options: {{max_article: 1m}}}}
  term: {{protocol: telnet, port: {telnet}, capture: {capture}}}
  mail: {{protocol: smtp, port: {smtp}, capture: {capture}}}
  chat: {{protocol: irc, port: {irc}, capture: {capture}}}
  relay: {{protocol: smtp, port: {proxy}, to: mail, capture: {capture}}}
"""


@contextmanager
def serving(command: Callable[[dict[str, int], Path], list[str]], cpu: int | None = None) -> Iterator[LabProcess]:
    """``command(ports, directory)`` running until its ports accept; killed
    at the end if it is still there."""
    ports = {name: free_port() for name in SERVERS}
    with tempfile.TemporaryDirectory(prefix="netlab-fair-") as tmp:
        args = command(ports, Path(tmp))
        if cpu is not None:
            args = ["taskset", "-c", str(cpu), *args]
        # stderr is a pipe nobody reads: a blocked log must not stop serving
        popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
        proc = LabProcess(ports, popen, Path(tmp))
        try:
            for port in ports.values():
                wait_for_port(port)
            yield proc
        finally:
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(30)
            assert popen.stderr is not None
            popen.stderr.close()


def lab_process(capture: str = "full", *, loop: str = "asyncio",
                cpu: int | None = None) -> AbstractContextManager[LabProcess]:
    """A running lab (``netlab up``) of the five servers."""

    def command(ports: dict[str, int], directory: Path) -> list[str]:
        path = directory / "lab.yaml"
        path.write_text(LAB_FILE.format(capture=capture, **ports))
        return [sys.executable, "-m", "lab", "up", str(path), "--loop", loop]

    return serving(command, cpu)


@dataclass
class Probe:
    """An echo client timing one small round trip every ``interval`` s."""

    port: int
    interval: float = 0.02
    timeout: float = 20.0
    rtts: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        except OSError as exc:
            self.failures.append(f"connect: {exc}")
            return
        with sock:
            for n in range(1_000_000):
                if self._stop.is_set():
                    return
                payload = b"probe %08d\n" % n
                start = time.perf_counter()
                try:
                    sock.sendall(payload)
                    got = b""
                    while len(got) < len(payload):
                        chunk = sock.recv(len(payload) - len(got))
                        if not chunk:
                            self.failures.append("the echo server closed the probe")
                            return
                        got += chunk
                except OSError as exc:
                    self.failures.append(f"round trip {n}: {exc}")
                    return
                self.rtts.append(time.perf_counter() - start)
                self._stop.wait(self.interval)

    def summary(self) -> dict[str, float]:
        """p50, p99 and max round trip in milliseconds, and the count."""
        if not self.rtts:
            return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        ordered = sorted(self.rtts)
        return {"count": len(ordered), "p50_ms": statistics.median(ordered) * 1000,
                "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                "max_ms": ordered[-1] * 1000}


class RssSampler:
    """The server's peak resident memory, sampled every 50 ms."""

    def __init__(self, lab: LabProcess) -> None:
        self.lab = lab
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.lab.rss_mb())


class Flood:
    """Sends ``lines`` copies of ``line`` (in 64 KiB writes) for at most
    ``seconds``, reading and dropping what comes back unless ``read`` is
    false; ``prelude`` goes first (a login)."""

    def __init__(self, port: int, line: bytes, *, lines: int = 1_000_000, seconds: float = 10.0,
                 read: bool = True, prelude: bytes = b"") -> None:
        self.port, self.line, self.lines, self.seconds, self.read = port, line, lines, seconds, read
        self.prelude = prelude
        self.sent_lines = 0
        self.received = 0
        self.ended = ""  # why the flood stopped early, if it did
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Flood:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self._threads = [threading.Thread(target=self._send, daemon=True)]
        if self.read:
            self._threads.append(threading.Thread(target=self._drain, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def wait(self) -> None:
        """Until the flood's time is up (the server is still working through
        what it was sent when the last line leaves) or the server stopped it."""
        deadline = time.monotonic() + self.seconds
        self._threads[0].join(self.seconds + 30)
        while not self.ended and time.monotonic() < deadline and self.connected:
            time.sleep(0.05)  # the watched window: nothing to wait on but time

    @property
    def connected(self) -> bool:
        """The server still talks to the flood (as far as a reader can tell)."""
        return not self.read or self._threads[1].is_alive()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for thread in self._threads:
            thread.join(10)

    def _send(self) -> None:
        per_write = max(1, (64 * 1024) // len(self.line))
        block = self.line * per_write
        deadline = time.monotonic() + self.seconds
        self.sock.settimeout(1.0)
        try:
            if self.prelude:
                self.sock.sendall(self.prelude)
            while self.sent_lines < self.lines and time.monotonic() < deadline and not self._stop.is_set():
                try:
                    self.sock.sendall(block)
                except TimeoutError:
                    continue  # the server is not reading just now: try again while time is left
                self.sent_lines += per_write
        except OSError as exc:
            self.ended = f"{type(exc).__name__}: {exc}"

    def _drain(self) -> None:
        deadline = time.monotonic() + self.seconds + 30
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.received += len(chunk)


FLOODS: dict[str, tuple[str, bytes, bytes]] = {
    # name: (server, line, prelude)
    "nntp lines": ("nntp", b"DATE\r\n", b""),
    "smtp lines": ("smtp", b"NOOP\r\n", b"EHLO flood.test\r\n"),
    "irc lines": ("irc", b"PING x\r\n", b"NICK flood\r\nUSER flood 0 * :flood\r\n"),
    "telnet lines": ("telnet", b"hi\r\n", b""),
    "telnet NULs": ("telnet", b"\x00" * 16, b""),
    "smtp lines via a proxy": ("proxy", b"NOOP\r\n", b"EHLO flood.test\r\n"),
}


def post_article(port: int, size: int = ARTICLE_SIZE) -> None:
    """POST one article of about ``size`` bytes to lab.test."""
    body = (b"x" * 76 + b"\r\n") * (size // 78)
    article = (b"From: flood@lab.test\r\nNewsgroups: lab.test\r\nSubject: big\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"20")
        s.sendall(b"POST\r\n")
        assert f.readline().startswith(b"340"), "POST refused"
        s.sendall(article + b".\r\n")
        reply = f.readline()
        assert reply.startswith(b"240"), reply


@contextmanager
def never_reading_article_client(port: int, count: int = 2000) -> Iterator[socket.socket]:
    """GROUP then ``count`` pipelined ARTICLE 1, and never a byte read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        sock.sendall(b"GROUP lab.test\r\n" + b"ARTICLE 1\r\n" * count)
        yield sock
    finally:
        sock.close()
