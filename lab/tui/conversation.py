"""The conversation screen: one connection's messages as a ladder
diagram, exportable as Mermaid and SVG.

Tests: tests/tui/test_app.py, tests/tui/test_pieces.py
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

from lab.endpoints import Can
from lab.eventlog import Event, EventFilter
from lab.tui.ladder import Ladder, build_ladder

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["ConversationScreen"]


def _is_server_side(lab: Lab, endpoint: str, conn: str) -> bool:
    found = lab.endpoints.get(endpoint)
    if found is not None:
        return found.can(Can.LISTEN)  # the side that accepted the connection
    return "#" in conn  # server connections are named SERVER#N


def _colour(line: str) -> Text:
    text = Text(line)
    if line.rstrip().endswith(">|"):
        text.stylize("#61afef", 9)
    elif "|<" in line:
        text.stylize("#98c379", 9)
    elif "·" in line:
        text.stylize("dim italic", 9)
    text.stylize("dim", 0, 9)
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
        self.ladder = self._build()

    def _build(self) -> Ladder:
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
        lines = self.ladder.to_text(width)
        body = Text("\n").join(_colour(line) for line in lines)
        self.query_one("#ladder", Static).update(body)
        self.query_one("#ladder-title", Static).update(Text.assemble(
            ("conversation ", "bold"), (self.conn, "bold #e5c07b"),
            f"  {len([r for r in self.ladder.rungs if r.way.value != 'note'])} messages",
            ("   m Mermaid · s SVG · c copy · Esc back", "dim"),
        ))

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
