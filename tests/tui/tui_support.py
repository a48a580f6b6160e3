"""What the console's tests share besides fixtures (a module of its own:
every test directory has a conftest, so `from conftest import` is ambiguous)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from lab.tui.app import NetlabApp


async def until(pilot: Pilot[object], predicate: Callable[[], object], timeout: float = 30.0,
                what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds (generous: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


SIZE = (120, 40)


def tree_labels(app: NetlabApp) -> list[str]:
    out = []

    def walk(node: object) -> None:
        for child in node.children:  # type: ignore[attr-defined]
            out.append(str(child.label))
            walk(child)

    walk(app.endpoints_tree.root)
    return out


def static_text(app: NetlabApp, selector: str) -> str:
    """What a Static shows, as plain text (Rich renderables rendered)."""
    content = app.screen.query_one(selector, Static).content
    if isinstance(content, (str, Text)):
        return str(content)
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(content)
    return console.export_text()


def output_text(app: NetlabApp) -> str:
    return "\n".join(line.text for line in app.query_one("#output", RichLog).lines)


async def command(pilot: Pilot[object], line: str) -> None:
    """Type ``line`` into the command bar and press Enter."""
    app = pilot.app
    assert isinstance(app, NetlabApp)
    await pilot.press("colon")
    app.commandbar.input.value = line
    await pilot.press("enter")
