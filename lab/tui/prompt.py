"""A small modal that asks for a file path (Tab completes it), used to
name a recording and to pick a scenario file to run.

The caller's ``accept`` function turns the typed path into the screen's
result; a :class:`LabError` from it is shown under the box and the
prompt stays open for a fix (the validator's ``FILE:LINE:COL`` line for
a bad scenario, "exists" for a recording that would replace a file).

Tests: tests/tui/test_record_replay.py, tests/tui/test_pieces.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from lab.errors import LabError

__all__ = ["PathInput", "PathPrompt", "complete_path"]

MAX_ENTRIES = 2_000  # names looked at in one directory: a huge one must not stall a key press


def complete_path(text: str, suffixes: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """``text`` with its last path part completed as far as the names in
    its directory agree, and those names (directories end with ``/``).
    With ``suffixes``, only files ending so are offered (and directories);
    dot files only when the part typed starts with a dot."""
    head, part = os.path.split(text)
    directory = os.path.expanduser(head) if head else "."
    names: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_ENTRIES:
                    break
                if not entry.name.startswith(part) or (entry.name.startswith(".") and not part.startswith(".")):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                if is_dir:
                    names.append(entry.name + "/")
                elif not suffixes or entry.name.endswith(suffixes):
                    names.append(entry.name)
    except OSError:
        return text, []
    if not names:
        return text, []
    names.sort()
    common = names[0]  # sorted: what the first and the last share, all share
    while not names[-1].startswith(common):
        common = common[:-1]
    if len(common) <= len(part):
        return text, names
    return os.path.join(head, common) if head else common, names


class PathInput(Input):
    """An Input whose Tab completes file paths."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("tab", "complete", "Complete", show=False)]

    def __init__(self, value: str, suffixes: tuple[str, ...], **kwargs: object) -> None:
        super().__init__(value, **kwargs)  # type: ignore[arg-type]
        self.suffixes = suffixes
        self.candidates: list[str] = []

    def action_complete(self) -> None:
        done, self.candidates = complete_path(self.value, self.suffixes)
        if done != self.value:
            self.value = done
            self.cursor_position = len(done)
        screen = self.screen
        if isinstance(screen, PathPrompt):
            if len(self.candidates) > 1:
                screen.say("  ".join(self.candidates[:30]))
            elif not self.candidates:
                screen.say("no such file here")


class PathPrompt(ModalScreen[object]):
    """Asks for a path; dismisses with ``accept(path)``, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, value: str, accept: Callable[[str], object], *, hint: str = "",
                 suffixes: tuple[str, ...] = (".yaml", ".yml")) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.accept = accept
        self.hint = hint
        self.suffixes = suffixes

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.title_text, id="prompt-title")
            yield PathInput(self.value, self.suffixes, id="prompt-path")
            yield Static(Text(self.hint, "dim"), id="prompt-message")

    @property
    def input(self) -> PathInput:
        return self.query_one("#prompt-path", PathInput)

    def on_mount(self) -> None:
        self.input.cursor_position = len(self.value)
        self.input.focus()

    def say(self, text: str, *, error: bool = False) -> None:
        message = Text("✗ " + text, "bold red") if error else Text(text, "dim")
        self.query_one("#prompt-message", Static).update(message)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            self.say("type a file name (Tab completes, Esc cancels)", error=True)
            return
        try:
            result = self.accept(path)
        except LabError as exc:
            self.say(str(exc), error=True)
            return
        self.dismiss(result)
