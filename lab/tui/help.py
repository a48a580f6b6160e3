"""The help screen (``?``): keys, the filter language and the commands.

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lab.commands import commands
from lab.filtering import __doc__ as FILTER_DOC

__all__ = ["KEYS", "HelpScreen"]

KEYS: tuple[tuple[str, str], ...] = (
    (":", "command bar: run any command (serve, connect, send, expect, record, ... listed below)"),
    ("/", "filter the traffic view (Esc closes the bar, an empty filter shows everything)"),
    ("f", "follow: keep the newest event in sight"),
    ("space", "pause / resume the traffic view (the log keeps recording)"),
    ("↑ ↓ PgUp PgDn Home End", "move through events; the detail shows the one under the cursor"),
    ("enter", "in the endpoints tree: show only that endpoint or connection"),
    ("a", "show all endpoints again"),
    ("l", "conversation (ladder) view of the selected connection (tree; an endpoint: its newest) or event's"
          " connection; a proxy's has three lifelines, client · proxy · server, and shows what was held"),
    ("t", "talk: type lines that a client sends (Esc leaves talk mode)"),
    ("h", "held messages: what intercepts hold (set one with :intercept px m:MAIL in); in the list"
          " r release, d drop, e edit, i inject into the connection, l ladder, b new breakpoint, A release all"),
    ("ctrl+s / F2", "in the editor of a held message: apply the edit (it goes on) / switch between"
                    " NAME=VALUE fields and the raw bytes (escapes like \\r\\n); Esc leaves it held"),
    ("r", "record this session to a scenario file (asks for its name; ● REC shows it), r again stops"),
    ("s", "run a scenario file in this lab: each step turns ✓ or ✗ live, its traffic shows, a failure says why"),
    ("n", "step by step: a run whose next step (▷) waits for n; g runs the rest"),
    ("S", "show / hide the scenario panel (in it: Esc hides it, c stops a run)"),
    ("y / x", "copy the selected message as an escaped string / as hex"),
    ("v", "show passwords sent in cleartext as sent, or masked again (files never get them)"),
    ("o", "make the command output panel tall, or small again"),
    ("tab / shift+tab", "move between panels"),
    ("ctrl+p", "command palette: the same commands, searchable"),
    ("?", "this help"),
    ("q / ctrl+q", "quit (servers stop with the lab)"),
)


def help_text() -> Table:
    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold #e5c07b", no_wrap=True)
    keys.add_column()
    for key, what in KEYS:
        keys.add_row(key, what)
    cmds = Table.grid(padding=(0, 2))
    cmds.add_column(style="bold #61afef", no_wrap=True)
    cmds.add_column()
    for cmd in commands().values():
        example = f"   e.g. {cmd.examples[0]}" if cmd.examples else ""
        cmds.add_row(cmd.name, Text.assemble(cmd.summary, (example, "dim")))
    filter_lines = (FILTER_DOC or "").split("::", 1)[-1].split("Tests:")[0].strip("\n").replace("``", "")
    grid = Table.grid()
    grid.add_row(Text("netlab — keys", "bold underline"))
    grid.add_row(keys)
    grid.add_row("")
    grid.add_row(Text("filter language (/)", "bold underline"))
    grid.add_row(Text(filter_lines.rstrip()))
    grid.add_row("")
    grid.add_row(Text("commands (: or ctrl+p; `help NAME` in the bar for details)", "bold underline"))
    grid.add_row(cmds)
    return grid


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(), id="help-text")
