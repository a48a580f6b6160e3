"""The editor of a held message: its decoded fields as ``NAME=VALUE``
lines (the protocol re-encodes them), or its raw bytes as escaped text.

The raw view shows every byte: ``\\r\\n`` and ``\\xHH`` as escapes, and a
line break after each ``\\n`` for reading (those breaks are not bytes: only
escapes are).  An edit the protocol refuses, or text that does not read,
is shown under the editor, which stays open; the message stays held
until an edit goes through (or Esc, and a release or drop in the list).

Tests: tests/tui/test_proxy_console.py, tests/tui/test_pieces.py
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TabbedContent, TabPane, TextArea

from lab.commands import unescape
from lab.errors import CommandError, LabError
from lab.protocols._base import Message
from lab.tui.bridge import on_reactor
from lab.tui.dump import as_escaped

if TYPE_CHECKING:
    from lab.intercept import Held
    from lab.lab import Lab

__all__ = ["HeldEditor", "changed_fields", "editable_fields", "fields_text", "parse_fields", "parse_raw",
           "raw_text"]

Fields = dict[str, "str | list[str]"]

_KEYS = "ctrl+s applies (the message goes on) · F2 fields ⇄ raw bytes · Esc cancels (it stays held)"


def editable_fields(msg: Message) -> Fields:
    """The fields an edit may change (the message's ``EDITABLE``), with
    their values now (a list field as its items); empty when the message
    can be edited only as bytes."""
    out: Fields = {}
    for name in msg.EDITABLE:
        value = getattr(msg, name, "")
        out[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    return out


def fields_text(fields: Fields) -> str:
    """``NAME=VALUE`` lines; a list field one line per item (``NAME=`` alone: none)."""
    lines: list[str] = []
    for name, value in fields.items():
        items = (value or [""]) if isinstance(value, list) else [value]
        lines.extend(f"{name}={item}" for item in items)
    return "\n".join(lines)


def parse_fields(text: str) -> dict[str, list[str]]:
    """The ``NAME=VALUE`` lines typed, each name's values in order
    (blank lines and ``#`` comments skipped); :class:`CommandError` for
    a line that is not one."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"line {n}: NAME=VALUE expected, not {line!r}",
                               hint="one field per line, e.g. arg=FROM:<x@lab.test>")
        out.setdefault(name.strip(), []).append(value)
    return out


def changed_fields(before: Fields, typed: dict[str, list[str]]) -> dict[str, Any]:
    """What an edit changes: the typed fields whose values differ from
    ``before`` (a field not there is passed on: the protocol says whether
    it has one)."""
    changes: dict[str, Any] = {}
    for name, values in typed.items():
        was = before.get(name)
        if isinstance(was, list):
            items = [v for v in values if v != ""] if values != [""] else []
            if items != was:
                changes[name] = items
            continue
        if len(values) > 1:
            raise CommandError(f"{name} is given {len(values)} times", hint="it holds one value")
        if values[0] != was:
            changes[name] = values[0]
    return changes


_ESCAPE_TOKEN = re.compile(r"\\.")


def raw_text(raw: bytes) -> str:
    """``raw`` as escaped text, with a line break after each ``\\n``."""
    body = as_escaped(raw)[1:-1]
    text = _ESCAPE_TOKEN.sub(lambda m: m.group(0) + "\n" if m.group(0) == "\\n" else m.group(0), body)
    return text.removesuffix("\n")


def parse_raw(text: str) -> bytes:
    """The bytes that escaped text stands for; line breaks typed are not
    bytes (write ``\\r\\n``).  :class:`CommandError` for a bad escape or
    no bytes at all."""
    data = unescape(text.replace("\r", "").replace("\n", ""))
    if not data:
        raise CommandError("no bytes left", hint="d in the held list drops the message instead")
    return data


class HeldEditor(ModalScreen[str | None]):
    """Edits one held message; dismisses with what became of it (a line
    to show), or None when cancelled (the message stays held)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "apply", "Apply"),
        Binding("f2", "switch", "Fields / raw"),
        Binding("escape", "dismiss(None)", "Cancel"),
    ]

    def __init__(self, lab: Lab, held: Held) -> None:
        super().__init__()
        self.lab = lab
        self.held = held
        self.fields = editable_fields(held.message)

    def compose(self) -> ComposeResult:
        held = self.held
        kind = type(held.message).__name__
        with Vertical(id="editor"):
            yield Label(Text.assemble(("edit ", "bold"), (held.id, "bold #e5c07b"), f"  {held.conn}  ",
                                      (f"{held.sender.value} → {held.sender.peer.value}", "dim"),
                                      f"  {kind}: ", (held.summary, "bold")), id="editor-title")
            first = "edit-fields-tab" if self.fields else "edit-raw-tab"
            with TabbedContent(initial=first, id="edit-tabs"):
                with TabPane("fields  NAME=VALUE", id="edit-fields-tab"):
                    if self.fields:
                        yield TextArea(fields_text(self.fields), id="edit-fields", soft_wrap=True)
                    else:
                        yield TextArea(f"# a {kind} has no fields to edit: edit its raw bytes (F2)",
                                       id="edit-fields", read_only=True)
                with TabPane("raw bytes  escaped", id="edit-raw-tab"):
                    yield TextArea(raw_text(held.message.raw), id="edit-raw", soft_wrap=True)
            yield Static(Text(_KEYS, "dim"), id="editor-message")

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#edit-tabs", TabbedContent)

    @property
    def editing_raw(self) -> bool:
        return self.tabs.active == "edit-raw-tab"

    def area(self, raw: bool) -> TextArea:
        return self.query_one("#edit-raw" if raw else "#edit-fields", TextArea)

    def on_mount(self) -> None:
        self.area(not self.fields).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.area(self.editing_raw).focus()

    def say(self, text: str, *, error: bool = False) -> None:
        message = Text("✗ " + text, "bold red") if error else Text(text, "dim")
        if error:
            message.append(f"\n{_KEYS}", "dim")
        self.query_one("#editor-message", Static).update(message)

    def action_switch(self) -> None:
        self.tabs.active = "edit-fields-tab" if self.editing_raw else "edit-raw-tab"
        self.area(self.editing_raw).focus()

    def action_apply(self) -> None:
        raw: bytes | None = None
        changes: dict[str, Any] = {}
        try:
            if self.editing_raw:
                raw = parse_raw(self.area(True).text)
                if raw == self.held.message.raw:
                    raise CommandError("the bytes are as they were",
                                       hint="Esc leaves it held; r in the list releases it as it is")
            else:
                if not self.fields:
                    raise CommandError(f"a {type(self.held.message).__name__} has no fields to edit",
                                       hint="F2 edits its raw bytes")
                changes = changed_fields(self.fields, parse_fields(self.area(False).text))
                if not changes:
                    raise CommandError("no field changed",
                                       hint="Esc leaves it held; r in the list releases it as it is")
        except LabError as exc:
            self.say(str(exc), error=True)
            return
        self._apply(raw, changes)

    @work(exclusive=True, group="edit")
    async def _apply(self, raw: bytes | None, changes: dict[str, Any]) -> None:
        intercepts = self.lab.intercepts
        try:
            new = await on_reactor(self.lab, intercepts.edit, self.held.id, raw, **changes)
        except LabError as exc:  # refused: it stays held, the editor open
            self.say(str(exc), error=True)
            return
        self.dismiss(f"edited {self.held.id}: {new.summary()}")
