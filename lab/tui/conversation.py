"""The conversation screen: one connection's messages as a ladder
diagram (three lifelines for a proxied connection, holds marked at the
proxy), exportable as Mermaid and SVG.

Tests: tests/tui/test_app.py, tests/tui/test_pieces.py, tests/tui/test_proxy_console.py
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from lab.endpoints import Can, EndpointKind
from lab.eventlog import Event, EventFilter, EventKind
from lab.tui.ladder import Fate, Ladder, Rung, Way, build_ladder, build_proxy_ladder

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["ConversationScreen"]


def _is_server_side(lab: Lab, endpoint: str, conn: str) -> bool:
    found = lab.endpoints.get(endpoint)
    if found is not None:
        return found.can(Can.LISTEN)  # the side that accepted the connection
    return "#" in conn  # server connections are named SERVER#N


def _is_proxied(lab: Lab, endpoint: str, events: list[Event]) -> bool:
    found = lab.endpoints.get(endpoint)
    if found is not None:
        return found.kind is EndpointKind.PROXY
    # the proxy is gone: its open event names three addresses
    return any(e.kind is EventKind.OPEN and e.summary.count(" -> ") == 2 for e in events)


# a proxied message's first rung (the onward legs of held ones are not more messages)
_ARRIVALS = frozenset({Way.TO_SERVER, Way.TO_CLIENT, Way.CLIENT_TO_PROXY, Way.SERVER_TO_PROXY})
_TOWARD_SERVER, _TOWARD_CLIENT = "#61afef", "#98c379"
_MARK_STYLE = {Fate.HELD: "bold #e5c07b", Fate.QUEUED: "#e5c07b", Fate.RELEASED: "#56b6c2",
               Fate.EDITED: "bold #c678dd", Fate.DROPPED: "bold #e06c75", Fate.INJECTED: "#c678dd"}


def _colour(line: str, rung: Rung | None) -> Text:
    text = Text(line)
    text.stylize("dim", 0, 9)
    if rung is None:
        return text
    if rung.way is Way.NOTE:
        text.stylize("dim italic", 9)
        return text
    text.stylize(_TOWARD_SERVER if rung.rightward else _TOWARD_CLIENT, 9)
    style = _MARK_STYLE.get(rung.fate)
    if style is not None and rung.mark:
        at = line.find(rung.mark, 9)
        if at >= 0:
            text.stylize(style, at, at + len(rung.mark))
    if rung.fate is Fate.DROPPED:  # the message itself, going nowhere
        text.highlight_regex(r"[^|]*✗[^|]*", "#e06c75")
    return text


class ConversationScreen(Screen[None]):
    """The ladder of one connection, kept up to date while open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,l", "app.pop_screen", "Back"),
        Binding("m", "export('mmd')", "Save Mermaid"),
        Binding("s", "export('svg')", "Save SVG"),
        Binding("c", "copy_mermaid", "Copy Mermaid"),
    ]

    def __init__(self, lab: Lab, endpoint: str, conn: str, *, export_dir: Path | None = None) -> None:
        super().__init__()
        self.lab = lab
        self.endpoint = endpoint
        self.conn = conn
        self.server_side = _is_server_side(lab, endpoint, conn)
        self.export_dir = export_dir or Path.cwd()
        self._seen_total = -1
        self._events: list[Event] = self.lab.log.query(EventFilter(conn=self.conn))
        self._last_seq = self.lab.log.total
        self.proxied = _is_proxied(lab, endpoint, self._events)
        self.ladder = self._build()

    def _build(self) -> Ladder:
        if self.proxied:
            return build_proxy_ladder(self._events, self.conn)
        return build_ladder(self._events, self.conn, server_side=self.server_side)

    def _catch_up(self) -> None:
        """Add this connection's events logged since the last look, walking
        back from the newest only as far as needed."""
        fresh = []
        for event in reversed(self.lab.log.snapshot()):
            if event.seq <= self._last_seq:
                break
            if event.conn == self.conn:
                fresh.append(event)
        self._last_seq = self.lab.log.total
        self._events.extend(reversed(fresh))

    def compose(self) -> ComposeResult:
        yield Static(id="ladder-title")
        with VerticalScroll(id="ladder-scroll"):
            yield Static(id="ladder")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(0.5, self.redraw)

    def redraw(self) -> None:
        if self.lab.log.total == self._seen_total:
            return
        self._seen_total = self.lab.log.total
        self._catch_up()
        self.ladder = self._build()
        width = max(60, self.size.width - 4)
        body = Text("\n").join(_colour(line, rung) for line, rung in self.ladder.rows(width))
        self.query_one("#ladder", Static).update(body)
        rungs = self.ladder.rungs
        title = Text.assemble(("conversation ", "bold"), (self.conn, "bold #e5c07b"))
        if self.proxied:
            title.append("  client ⇄ proxy ⇄ server", "dim")
            arrived = sum(r.way in _ARRIVALS or r.fate is Fate.INJECTED for r in rungs)
            title.append(f"  {arrived} messages")
        else:
            title.append(f"  {sum(r.way is not Way.NOTE for r in rungs)} messages")
        holding = sum(r.fate is Fate.HELD for r in rungs) - sum(
            r.fate in (Fate.RELEASED, Fate.EDITED, Fate.DROPPED) for r in rungs)
        if holding > 0:
            title.append(f"  ⏸ {holding} held (h lists them)", "bold #e5c07b")
        title.append("   m Mermaid · s SVG · c copy · Esc back", "dim")
        self.query_one("#ladder-title", Static).update(title)

    def export_path(self, suffix: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.conn)
        return self.export_dir / f"netlab-{safe}.{suffix}"

    def action_export(self, suffix: str) -> None:
        text = self.ladder.to_mermaid() if suffix == "mmd" else self.ladder.to_svg()
        path = self.export_path(suffix)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror}", severity="error")
            return
        self.notify(f"saved {path}")

    def action_copy_mermaid(self) -> None:
        self.app.copy_to_clipboard(self.ladder.to_mermaid())
        self.notify("Mermaid copied to the clipboard")
