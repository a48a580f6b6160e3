"""The held-messages screen (``h``): what intercepts hold, oldest first
(id, connection, which way, summary, age, what happens when it times
out), the selected message's fields and bytes, and what to do with it:
release, drop, edit, or inject something else into its connection.

The list is read from the lab on the UI thread (one copy of the held
list per look): on a timer for the ages, and at once when the log says a
hold began or ended.  Every action runs on the reactor through the
intercepts' own API.  Breakpoints are set in the command bar
(``intercept px m:MAIL in``; ``b`` starts that line).

Tests: tests/tui/test_proxy_console.py, tests/tui/test_snapshots.py
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lab.endpoints import EndpointKind
from lab.errors import LabError
from lab.protocols._base import Role
from lab.tui.bridge import on_reactor
from lab.tui.conversation import ConversationScreen
from lab.tui.dump import as_escaped
from lab.tui.editor import HeldEditor
from lab.tui.inject import InjectPrompt

if TYPE_CHECKING:
    from lab.intercept import Breakpoint, Held
    from lab.lab import Lab
    from lab.tui.app import NetlabApp

__all__ = ["HOLD_NOTE", "HeldScreen", "held_now"]

# what an intercept logs when a hold begins or ends (lab.intercept)
HOLD_NOTE = re.compile(r"(held|released|edited|dropped) h\d+|h\d+ (dropped|waited)")

_COLUMNS = (("id", "id"), ("conn", "connection"), ("way", "way"), ("summary", "message"), ("age", "held for"),
            ("then", "then"))


def held_now(lab: Lab) -> list[Held]:
    """What the lab's intercepts hold, oldest first (the list is copied
    in one step, so the UI thread may read it while the reactor works)."""
    return lab.intercepts.held()


def _rules_now(lab: Lab) -> list[Breakpoint]:
    for _ in range(3):
        try:
            return lab.intercepts.rules()
        except RuntimeError:  # the reactor changed them mid-copy: look again
            continue
    return []


class HeldScreen(Screen[None]):
    """The held messages and the actions on the selected one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "release", "Release"),
        Binding("d", "drop", "Drop"),
        Binding("e", "edit", "Edit"),
        Binding("i", "inject", "Inject"),
        Binding("l", "ladder", "Ladder"),
        Binding("b", "breakpoint", "Breakpoint"),
        Binding("A", "release_all", "Release all", show=False),
        Binding("escape,q,h", "app.pop_screen", "Back"),
    ]

    def __init__(self, lab: Lab, *, export_dir: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.lab = lab
        self.export_dir = export_dir
        self.clock = clock  # wall time, for the ages (a fixed one in snapshots)
        self.held: list[Held] = []
        self._shown: list[str] = []
        self._detail_of: tuple[str, ...] | None = None  # what the detail shows (None: nothing yet)

    def compose(self) -> ComposeResult:
        yield Static(id="held-title")
        table: DataTable[str | Text] = DataTable(id="held-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="held-status")
        yield Static(id="held-detail")
        yield Footer()

    @property
    def table(self) -> DataTable[str | Text]:
        return cast("DataTable[str | Text]", self.query_one("#held-table", DataTable))

    def on_mount(self) -> None:
        for key, label in _COLUMNS:
            self.table.add_column(label, key=key)
        self.table.border_title = "held"
        self.query_one("#held-detail").border_title = "message"
        self.refresh_held()
        self.table.focus()
        self.set_interval(1.0, self.refresh_held)

    # -- what is held ------------------------------------------------------

    def refresh_held(self) -> None:
        """Bring the list in line with the lab, keeping the cursor on the
        message it was on."""
        table = self.table
        row = table.cursor_row
        chosen = self._shown[row] if table.row_count and 0 <= row < len(self._shown) else None
        self.held = held_now(self.lab)
        ids = [h.id for h in self.held]
        now = self.clock()
        if ids != self._shown:
            table.clear()
            for held in self.held:
                table.add_row(*self._cells(held, now), key=held.id)
            self._shown = ids
            if chosen in ids:
                table.move_cursor(row=ids.index(chosen))
        else:
            for held in self.held:
                age, then = self._cells(held, now)[4:]
                table.update_cell(held.id, "age", age)
                table.update_cell(held.id, "then", then)
        self._title()
        self._detail()

    def _cells(self, held: Held, now: float) -> list[str | Text]:
        age = max(0.0, now - held.since)
        left = max(0.0, held.rule.timeout - age)
        return [Text(held.id, "bold #e5c07b"), held.conn, f"{held.sender.value} → {held.sender.peer.value}",
                held.summary, f"{age:.0f} s", f"{held.rule.then.value} in {left:.0f} s"]

    def _title(self) -> None:
        rules = _rules_now(self.lab)
        title = Text.assemble(("held messages ", "bold"), (f"{len(self.held)}", "bold #e5c07b"))
        if rules:
            title.append("   breakpoints: ", "dim")
            title.append(" · ".join(f"{r.endpoint}: {r.text or '(everything)'}" for r in rules))
        else:
            title.append("   no breakpoints — b sets one (the command `intercept px m:MAIL in`)", "dim")
        self.query_one("#held-title", Static).update(title)

    def selected(self) -> Held | None:
        table = self.table
        if not table.row_count or not self.held:
            return None
        row = table.cursor_row
        return self.held[row] if 0 <= row < len(self.held) and len(self.held) == table.row_count else None

    def _detail(self) -> None:
        held = self.selected()
        key = (held.id, held.summary) if held is not None else ()
        if key == self._detail_of:
            return
        self._detail_of = key
        detail = self.query_one("#held-detail", Static)
        if held is None:
            detail.update(Text.assemble(
                ("nothing is held.", "bold"), "\n\nA breakpoint holds what matches it on a proxy, a server or"
                " a client, e.g.\n  ", ("intercept px m:MAIL in", "bold #61afef"),
                "   (: in the main screen, or b here)\nthen r releases, d drops, e edits, i injects.", style="dim"))
            return
        msg = held.message
        text = Text.assemble((f"{held.id} ", "bold #e5c07b"), (type(msg).__name__, "bold"),
                             (f"  {held.conn} {held.sender.value} → {held.sender.peer.value}", "dim"),
                             (f"   held by {held.rule.endpoint}: {held.rule.text or '(everything)'}", "dim"))
        try:
            fields = msg.fields()
        except Exception as exc:  # a protocol's describe code must not break the UI
            fields = {"error": f"fields() raised {exc!r}"}
        for name, value in fields.items():
            text.append(f"\n  {name}", "bold")
            text.append(f" = {value!r}" if not isinstance(value, str) else f" = {value}")
        text.append("\n  bytes", "bold")
        text.append(f" {as_escaped(msg.raw)}", "#98c379")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def say(self, text: str, *, error: bool = False) -> None:
        self.query_one("#held-status", Static).update(
            Text("✗ " + text, "bold red") if error else Text("✓ " + text, "green"))

    # -- actions -----------------------------------------------------------

    def _chosen(self, verb: str) -> Held | None:
        held = self.selected()
        if held is None:
            self.say(f"nothing held to {verb}", error=True)
        return held

    def action_release(self) -> None:
        held = self._chosen("release")
        if held is not None:
            self._act("released", self.lab.intercepts.release, [held.id])

    def action_drop(self) -> None:
        held = self._chosen("drop")
        if held is not None:
            self._act("dropped", self.lab.intercepts.drop, [held.id])

    def action_release_all(self) -> None:
        if self._chosen("release") is not None:
            self._act("released", self.lab.intercepts.release, [h.id for h in self.held])

    @work(group="held")
    async def _act(self, done: str, fn: Callable[[str], object], ids: list[str]) -> None:
        for held_id in ids:
            try:
                await on_reactor(self.lab, fn, held_id)
            except LabError as exc:  # gone meanwhile (timed out, its connection closed)
                self.say(str(exc), error=True)
                self.refresh_held()
                return
        self.say(f"{done} {', '.join(ids)}")
        self.refresh_held()

    def action_edit(self) -> None:
        held = self._chosen("edit")
        if held is not None:
            self.app.push_screen(HeldEditor(self.lab, held), self._after)

    def action_inject(self) -> None:
        held = self.selected()
        if held is not None:
            conn, to = held.conn, held.sender.peer
        else:
            newest = [c.id for e in list(self.lab.endpoints.values()) if e.kind is EndpointKind.PROXY
                      for c in e.live_connections()]
            conn, to = (newest[-1] if newest else ""), Role.SERVER
        self.app.push_screen(InjectPrompt(self.lab, conn, to), self._after)

    def _after(self, result: str | None) -> None:
        if result:
            self.say(result)
        self.refresh_held()
        self.table.focus()

    def action_ladder(self) -> None:
        held = self._chosen("draw")
        if held is not None:
            self.app.push_screen(ConversationScreen(self.lab, held.endpoint, held.conn, export_dir=self.export_dir))

    def action_breakpoint(self) -> None:
        """Back to the main screen, the command bar holding ``intercept ENDPOINT ``."""
        held = self.selected()
        proxies = [e.name for e in list(self.lab.endpoints.values()) if e.kind is EndpointKind.PROXY]
        endpoint = held.endpoint if held is not None else (proxies[0] if proxies else "")
        app = cast("NetlabApp", self.app)
        app.pop_screen()
        app.fill_command(f"intercept {endpoint} " if endpoint else "intercept ")
