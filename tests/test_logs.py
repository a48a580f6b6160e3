"""Program logging (lab/logs.py): repeats are summarised, and a stderr that
blocks (a pipe nobody reads) never holds up the code that logs."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading

from lab.logs import RepeatFilter


def record(msg: str, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_repeats_pass_a_few_times_then_are_summarised() -> None:
    """Five of the same message per window pass; the next one after the window says how many were held."""
    now = [100.0]
    flt = RepeatFilter(burst=5, window=10.0, clock=lambda: now[0])
    passed = [flt.filter(record("socket.send() raised exception.")) for _ in range(50)]
    assert passed.count(True) == 5
    assert flt.filter(record("something else"))
    now[0] += 10.0
    later = record("socket.send() raised exception.")
    assert flt.filter(later) and str(later.msg).endswith("(45 more like it in the last 10 s)")


class _Stuck(io.StringIO):
    """A stream whose writes block until released (a full pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(60)
        return super().write(text)


CHILD = r"""
import logging, sys, threading, time
sys.path.insert(0, sys.argv[1])
from lab import logs
from tests.test_logs import _Stuck
stuck = _Stuck()
logs.configure(stream=stuck)
log = logging.getLogger("flood")
start = time.monotonic()
for i in range(20000):
    log.warning(f"message {i}")  # all different: none held back as a repeat
took = time.monotonic() - start
handler = logging.getLogger().handlers[-1]
print(f"{took:.3f} {handler.dropped}")
stuck.release.set()
"""


def test_a_blocked_stream_does_not_block_the_logger() -> None:
    """20,000 warnings with stderr stuck: the caller goes on at once, the
    surplus is dropped and counted (in a process of its own: it changes
    the root logger)."""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", CHILD, root], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    took, dropped = done.stdout.split()
    assert float(took) < 30 and int(dropped) > 0  # generous: it is never waiting on the stream
