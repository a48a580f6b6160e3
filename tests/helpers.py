"""Test helpers: free ports from the OS and waiting on conditions, never on bare sleeps."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""

    def accepting() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(accepting, timeout, f"{host}:{port} to accept")


class Proc:
    """A child process whose output lines are collected by reader threads,
    so tests can wait for a line with a timeout instead of sleeping."""

    def __init__(self, args: list[str], **kwargs: object) -> None:
        import queue
        import subprocess
        import threading

        self.args = args
        self.popen = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, errors="replace",
                                      **kwargs)  # type: ignore[call-overload]
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        self._pumps = []
        for name in ("stdout", "stderr"):
            stream = getattr(self.popen, name)
            pump = threading.Thread(target=self._pump, args=(name, stream), daemon=True)
            pump.start()
            self._pumps.append(pump)

    def _pump(self, name: str, stream: object) -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                self.lines.put((name, line.rstrip("\n")))
        except (OSError, ValueError):
            pass  # the stream was closed under us at teardown

    def wait_for(self, pattern: str, timeout: float = 15.0, stream: str | None = None) -> str:
        """The first new line matching the regex ``pattern``."""
        import queue
        import re

        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; saw {self.seen[-20:]}")
            try:
                name, line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    raise AssertionError(f"process exited {self.popen.returncode} before {pattern!r}; "
                                         f"saw {self.seen[-20:]}") from None
                continue
            self.seen.append((name, line))
            if (stream is None or stream == name) and rx.search(line):
                return line

    def output(self) -> str:
        """Everything seen so far plus what is still queued."""
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return "\n".join(line for _, line in self.seen)

    def stop(self, sig: int = 2, timeout: float = 10.0) -> int:
        """Send ``sig`` (SIGINT by default) and return the exit code."""
        import subprocess

        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait(timeout)
        for pump in self._pumps:  # they end at EOF, now that the process is gone
            pump.join(timeout)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        return code

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.stop()


def require(program: str) -> str:
    """The path of a peer program; a missing peer fails the test (the
    setup script installs every peer, so absence is a broken setup)."""
    import shutil

    import pytest

    # Python peers are scripts of the test environment, beside its interpreter
    here = os.path.dirname(sys.executable)
    path = shutil.which(program, path=here + os.pathsep + os.environ.get("PATH", "")) or next(
        (p for p in (f"/usr/sbin/{program}", f"/sbin/{program}") if os.path.exists(p)), None)
    if path is None:
        pytest.fail(f"peer program {program!r} is missing: run `bash .ci/setup` (as root)")
    return path


def loopback_host(*ports: int, first: int = 2) -> str | None:
    """A loopback address (127.0.0.FIRST and up) on which every one of
    ``ports`` is free for TCP right now, or None."""
    for last in range(first, 250):
        host = f"127.0.0.{last}"
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return host
    return None


def need_root(what: str) -> None:
    """Fail (not skip) a test that needs root: CI runs as root."""
    import pytest

    if os.geteuid() != 0:
        pytest.fail(f"{what} must run as root (CI does)")
