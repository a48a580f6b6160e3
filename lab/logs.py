"""Program logging for entry points that never blocks the reactor.

Every endpoint shares one loop, so a log record written on the loop
thread must not wait for stderr: a pipe nobody reads (``netlab serve
2>&1 | slow-reader``) fills, and a blocking write would stop every
server.  :func:`configure` hands records to a bounded queue that a
thread drains to stderr; when the queue is full a record is dropped and
counted, never waited for.  Repeats of one message (asyncio's
``socket.send() raised exception.`` under a flood) are let through a
few times per window, then summarised.

Only entry points call :func:`configure`; library code just logs.

Tests: tests/test_logs.py
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

__all__ = ["RepeatFilter", "configure"]

FORMAT = "netlab: %(levelname)s %(name)s: %(message)s"
QUEUE_SIZE = 1000


class RepeatFilter(logging.Filter):
    """Lets at most ``burst`` records with the same logger and message
    template through per ``window`` seconds; the first one after that
    says how many were held back."""

    def __init__(self, burst: int = 5, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [window start, count, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                suppressed = int(entry[2]) if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                if len(self._seen) > 1000:  # forget the oldest keys: bounded memory
                    for old in list(self._seen)[:500]:
                        del self._seen[old]
                if suppressed:
                    record.msg = f"{record.msg} ({suppressed} more like it in the last {self.window:g} s)"
                return True
            entry[1] += 1
            if entry[1] <= self.burst:
                return True
            entry[2] += 1
            return False


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Puts records on a bounded queue; a full queue drops, never waits.
    The thread that writes them starts with the first record, so a
    program that logs nothing runs no extra thread."""

    def __init__(self, q: queue.Queue[logging.LogRecord], listener: logging.handlers.QueueListener) -> None:
        super().__init__(q)
        self.listener = listener
        self.dropped = 0
        self._started = False
        self._lock = threading.Lock()

    def enqueue(self, record: logging.LogRecord) -> None:
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    self.listener.start()
                    atexit.register(_stop)  # after whatever registered earlier: runs before it
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test
    runner swaps it), as logging's own last-resort handler does."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


_installed: tuple[_DroppingQueueHandler, logging.handlers.QueueListener] | None = None


def configure(verbose: bool = False, stream: IO[str] | None = None) -> None:
    """Log to ``stream`` (stderr) without ever blocking the caller:
    WARNING and above, or everything with ``verbose``."""
    global _installed
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if _installed is not None:
        return
    q: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    out: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    out.setFormatter(logging.Formatter(FORMAT))
    listener = logging.handlers.QueueListener(q, out, respect_handler_level=False)
    handler = _DroppingQueueHandler(q, listener)
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    _installed = (handler, listener)


def _stop() -> None:
    """Flush what is queued at exit (the thread is a daemon: a stuck stderr
    cannot hold the exit for long)."""
    global _installed
    if _installed is None:
        return
    handler, listener = _installed
    _installed = None
    logging.getLogger().removeHandler(handler)
    if not handler._started:
        return
    done = threading.Thread(target=listener.stop, daemon=True)
    done.start()
    done.join(2.0)
