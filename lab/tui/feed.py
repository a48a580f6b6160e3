"""The bridge from the event log to the UI: a bounded queue.

The log calls subscribers on the reactor thread for every event; posting
a Textual message (or ``call_from_thread``) per event cannot keep up and
can block the reactor.  :class:`EventFeed` only appends to a bounded
deque there; the UI drains it on a timer and draws one batch per tick.

Tests: tests/tui/test_pieces.py
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from lab.eventlog import Event, EventLog

__all__ = ["EventFeed"]


class EventFeed:
    """Collects events from ``log`` into a queue of at most ``capacity``.

    When the UI falls behind, the oldest queued events are dropped from the
    queue (never from the log) and counted in :attr:`dropped`.
    """

    def __init__(self, log: EventLog, capacity: int = 50_000) -> None:
        self.log = log
        self.capacity = capacity
        self._queue: deque[Event] = deque(maxlen=capacity)
        self.received = 0
        self._taken = 0
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.log.subscribe(self._append)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _append(self, event: Event) -> None:
        # reactor thread: one append, nothing that can block
        self.received += 1
        self._queue.append(event)

    @property
    def dropped(self) -> int:
        """Events that fell out of the queue before the UI took them."""
        return self.received - self._taken - len(self._queue)

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take up to ``limit`` queued events (all by default), oldest first."""
        queue = self._queue
        out: list[Event] = []
        n = len(queue) if limit is None else min(limit, len(queue))
        pop = queue.popleft
        try:
            for _ in range(n):
                out.append(pop())
        except IndexError:  # pragma: no cover - only if another thread drains too
            pass
        self._taken += len(out)
        return out

    def __len__(self) -> int:
        return len(self._queue)
