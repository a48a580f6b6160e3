"""Events and bytes per second for each endpoint, over the last minute.

Tests: tests/tui/test_pieces.py
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from lab.eventlog import Event, EventKind

__all__ = ["SPARKS", "Rates", "sparkline"]

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float], width: int) -> str:
    """The last ``width`` values as block characters scaled to their max."""
    tail = list(values)[-width:] if width > 0 else []
    top = max(tail, default=0.0)
    if top <= 0:
        return " " * (width - len(tail)) + SPARKS[0] * len(tail)
    cells = [SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] if v > 0 else " "
             for v in tail]
    return " " * (width - len(tail)) + "".join(cells)


class Rates:
    """Counts each endpoint's events and payload bytes; :meth:`tick`
    closes one sample (call it once a second)."""

    def __init__(self, history: int = 60) -> None:
        self.history = history
        self.events: dict[str, deque[float]] = {}
        self.bytes: dict[str, deque[float]] = {}
        self._events_now: dict[str, int] = {}
        self._bytes_now: dict[str, int] = {}
        # bytes of a DATA chunk already counted, which its MESSAGE events repeat
        self._counted: dict[tuple[str, str], int] = {}

    def count(self, events: Iterable[Event]) -> None:
        ev, by, counted = self._events_now, self._bytes_now, self._counted
        for e in events:
            name = e.endpoint
            ev[name] = ev.get(name, 0) + 1
            raw = e.raw
            if raw is None:
                continue
            if e.kind is EventKind.DATA:
                by[name] = by.get(name, 0) + len(raw)
                counted[(e.conn, e.direction.value)] = len(raw)
            elif e.kind is EventKind.MESSAGE:
                key = (e.conn, e.direction.value)
                left = counted.get(key, 0)
                if left >= len(raw):
                    counted[key] = left - len(raw)
                else:
                    counted.pop(key, None)
                    by[name] = by.get(name, 0) + len(raw) - left

    def tick(self, seconds: float = 1.0) -> None:
        """Close the current sample, covering ``seconds`` of time."""
        names = set(self.events) | set(self._events_now)
        for name in names:
            ev = self.events.setdefault(name, deque(maxlen=self.history))
            by = self.bytes.setdefault(name, deque(maxlen=self.history))
            ev.append(self._events_now.get(name, 0) / seconds)
            by.append(self._bytes_now.get(name, 0) / seconds)
            if not any(ev):  # quiet for a whole minute: forget it
                del self.events[name]
                del self.bytes[name]
        self._events_now.clear()
        self._bytes_now.clear()
        if len(self._counted) > 10_000:
            self._counted.clear()

    def busiest(self, names_first: Iterable[str] = ()) -> list[str]:
        """Endpoints with traffic in the window: ``names_first`` (in that
        order) then the rest by total events."""
        first = [n for n in names_first if n in self.events]
        rest = sorted((n for n in self.events if n not in first), key=lambda n: (-sum(self.events[n]), n))
        return first + rest
