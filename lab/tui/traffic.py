"""The traffic view: one row per event, drawn line by line.

Only the visible rows are rendered, and the view keeps a window of the
newest rows (the log keeps the rest), so a burst of events costs a deque
append each and one repaint per tick.

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

import bisect
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from lab.eventlog import Direction, Event, EventKind, EventLog
from lab.filtering import TrafficFilter

__all__ = ["TrafficView", "protocol_colour"]

_PALETTE = ("#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d19a66", "#98c379", "#e06c75", "#abb2bf",
            "#f0a0c0", "#7fd1b9")

_TIME = Style(color="#7f848e")
_IN = Style(color="#98c379", bold=True)
_OUT = Style(color="#61afef", bold=True)
_META = Style(color="#7f848e", italic=True)
_ERROR = Style(color="#ff6b6b", bold=True)
_RAW = Style(color="#5c6370")
_CURSOR = Style(bgcolor="#2c4f7c")
COMPACT_BELOW = 72  # columns: narrower views drop milliseconds and the protocol column


def protocol_colour(name: str) -> str:
    """A stable colour for a protocol name (the same in every run)."""
    return _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


_stamps: dict[int, str] = {}


def _stamp(wall: float) -> str:
    second = int(wall)
    text = _stamps.get(second)
    if text is None:
        if len(_stamps) > 4096:
            _stamps.clear()
        text = _stamps[second] = time.strftime("%H:%M:%S", time.localtime(second))
    return f"{text}.{int(wall * 1000) % 1000:03d}"


def _segments(event: Event, compact: bool = False, reveal: bool = False) -> list[Segment]:
    """One row's cells; ``compact`` (a narrow view) drops the milliseconds
    and the protocol column, which the colours still show; ``reveal``
    shows secrets as they were sent."""
    kind = event.kind
    if kind is EventKind.MESSAGE or kind is EventKind.DATA:
        inbound = event.direction is Direction.IN
        what = event.direction.arrow + (" raw" if kind is EventKind.DATA else "")
        what_style = _IN if inbound else _OUT
        text_style = _RAW if kind is EventKind.DATA else Style()
    elif kind is EventKind.ERROR:
        what, what_style, text_style = "error", _ERROR, _ERROR
    else:
        what, what_style, text_style = kind.value, _META, _META
    proto = event.protocol
    who = event.conn or event.endpoint
    colour = Style(color=protocol_colour(proto)) if proto else Style()
    stamp = _stamp(event.wall)
    if compact:
        return [
            Segment(stamp[:8] + " ", _TIME),
            Segment(f"{who[:10]:<10} ", colour),
            Segment(f"{what:<5} ", what_style),
            Segment(event.revealed if reveal and event.secret else event.summary, text_style),
        ]
    return [
        Segment(stamp + " ", _TIME),
        Segment(f"{who[:12]:<12} ", colour),
        Segment(f"{what:<6} ", what_style),
        Segment(f"{proto[:8]:<8} ", Style(color=protocol_colour(proto), dim=True)),
        Segment(event.revealed if reveal and event.secret else event.summary, text_style),
    ]


@dataclass(frozen=True)
class Scope:
    """What the endpoints tree narrowed the view to."""

    endpoint: str | None = None
    conn: str | None = None

    def __call__(self, event: Event) -> bool:
        if self.conn is not None:
            return event.conn == self.conn
        return self.endpoint is None or event.endpoint == self.endpoint

    @property
    def text(self) -> str:
        return self.conn or self.endpoint or ""


class TrafficView(ScrollView, can_focus=True):
    """Live rows of events with a cursor, follow mode and pause."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    follow: reactive[bool] = reactive(True)
    paused: reactive[bool] = reactive(False)

    class Selected(Message):
        """The cursor moved onto ``event``."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    def __init__(self, log: EventLog, *, window: int = 10_000, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event_log = log
        self.window = window
        self.rows: deque[Event] = deque(maxlen=window)
        self.filter = TrafficFilter()
        self.scope = Scope()
        self.cursor_seq: int | None = None
        self.held = 0  # events that arrived while paused
        self.seen = 0
        self.reveal = False  # secrets shown as sent (v), masked otherwise

    # -- feeding ---------------------------------------------------------

    def accepts(self, event: Event) -> bool:
        return self.scope(event) and (not self.filter or self.filter(event))

    def add(self, events: Iterable[Event]) -> None:
        """Append the events that pass the scope and filter (one tick's batch)."""
        kept = [e for e in events if self.accepts(e)]
        if not kept:
            return
        if self.paused:
            self.held += len(kept)
            return
        self._extend(kept)

    def _extend(self, kept: list[Event]) -> None:
        rows = self.rows
        overflow = max(0, len(rows) + len(kept) - self.window)
        rows.extend(kept[-self.window :])
        self.seen += len(kept)
        self._resize()
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        elif overflow:
            # the rows in sight moved up: keep them in sight
            self.scroll_to(y=max(0, self.scroll_y - overflow), animate=False, immediate=True)
        self.refresh()

    def reload(self) -> None:
        """Rebuild the rows from the log (after a filter change or a pause)."""
        self.held = 0
        self.rows.clear()
        kept = [e for e in self.event_log.snapshot() if self.accepts(e)]
        self.rows.extend(kept[-self.window :])
        self._resize()
        if self.follow or self.cursor_index() is None:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        else:
            self._show_cursor()
        self.refresh()

    def set_filter(self, flt: TrafficFilter) -> None:
        self.filter = flt
        self.reload()

    def set_scope(self, scope: Scope) -> None:
        self.scope = scope
        self.reload()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def watch_paused(self, paused: bool) -> None:
        if not paused:
            self.reload()

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    # -- cursor ----------------------------------------------------------

    def cursor_index(self) -> int | None:
        if self.cursor_seq is None or not self.rows:
            return None
        i = bisect.bisect_left(self.rows, self.cursor_seq, key=lambda e: e.seq)
        return i if i < len(self.rows) and self.rows[i].seq == self.cursor_seq else None

    @property
    def selected(self) -> Event | None:
        i = self.cursor_index()
        return None if i is None else self.rows[i]

    def select_index(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        event = self.rows[index]
        self.cursor_seq = event.seq
        self._show_cursor()
        self.refresh()
        self.post_message(self.Selected(event))

    def _show_cursor(self) -> None:
        i = self.cursor_index()
        if i is None:
            return
        height = self.scrollable_content_region.height
        if i < self.scroll_y:
            self.scroll_to(y=i, animate=False, immediate=True)
        elif i >= self.scroll_y + height:
            self.scroll_to(y=i - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        i = self.cursor_index()
        if i is None:
            i = len(self.rows) if delta < 0 else int(self.scroll_y) - 1
        if delta < 0:
            self.follow = False
        self.select_index(i + delta)

    def action_page(self, delta: int) -> None:
        self.action_cursor(delta * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.follow = False
        self.select_index(0)

    def action_last(self) -> None:
        self.select_index(len(self.rows) - 1)
        self.follow = True

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)  # inside the border and padding
        if offset is None:
            return
        index = int(self.scroll_y) + offset.y
        if 0 <= index < len(self.rows):
            self.follow = False
            self.select_index(index)

    # -- drawing -----------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        event = self.rows[index]
        base = self.rich_style + _CURSOR if event.seq == self.cursor_seq else self.rich_style
        # the widget's colours under every cell, the row's own colours on top
        return Strip(_segments(event, width < COMPACT_BELOW, self.reveal)).apply_style(base).crop_extend(0, width, base)
