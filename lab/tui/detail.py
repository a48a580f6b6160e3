"""The message detail: the selected event's decoded fields as a tree and
its raw bytes as a hex + ASCII dump.

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from lab.eventlog import Event
from lab.protocols._base import escape_bytes
from lab.tui.dump import hexdump

__all__ = ["MessageDetail", "add_fields"]


def _leaf(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return escape_bytes(bytes(value))
    if isinstance(value, str):
        return repr(value)
    return str(value)


def add_fields(node: TreeNode[None], value: Any, depth: int = 0) -> None:
    """Add ``value`` (nested dicts, lists, dataclasses) under ``node``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    else:
        node.add_leaf(_leaf(value))
        return
    for key, item in items[:500]:
        nested = isinstance(item, (dict, list, tuple)) or (
            dataclasses.is_dataclass(item) and not isinstance(item, type))
        if nested and depth < 8:
            size = len(item) if isinstance(item, (dict, list, tuple)) else ""
            child = node.add(Text.assemble((key, "bold"), (f" {size}" if size != "" else "", "dim")),
                             expand=depth < 2)
            add_fields(child, item, depth + 1)
        else:
            node.add_leaf(Text.assemble((key, "bold"), ": ", _leaf(item)))
    if len(items) > 500:
        node.add_leaf(Text(f"… {len(items) - 500} more", "dim"))


class MessageDetail(Vertical):
    """Fields and bytes of one event; empty until an event is selected."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event: Event | None = None
        self.reveal = False  # secrets shown as sent (v), masked otherwise

    def compose(self) -> ComposeResult:
        yield Static("select an event (↑ ↓ in the traffic view)", id="detail-head")
        with Horizontal(id="detail-body"):
            yield Tree[None]("fields", id="fields")
            with VerticalScroll(id="hex-scroll"):
                yield Static("", id="hex")

    def show(self, event: Event) -> None:
        self.event = event
        stamp = time.strftime("%H:%M:%S", time.localtime(event.wall)) + f".{int(event.wall * 1000) % 1000:03d}"
        where = event.conn or event.endpoint
        arrow = event.direction.arrow or event.kind.value
        size = f"  {len(event.raw)} B" if event.raw is not None else ""
        self.query_one("#detail-head", Static).update(Text.assemble(
            (f"#{event.seq} ", "dim"), (stamp, "dim"), "  ", (where, "bold"), f" {arrow} ",
            (event.protocol, "italic"), size,
        ))
        tree = self.query_one("#fields", Tree)
        tree.clear()
        msg = event.message
        if msg is not None:
            tree.root.set_label(Text.assemble((type(msg).__name__, "bold"), (f"  {msg.kind}", "dim")))
            try:
                fields = msg.fields()
            except Exception as exc:  # a protocol's describe code must not break the UI
                fields = {"error": f"fields() raised {exc!r}"}
            add_fields(tree.root, fields)
        else:
            tree.root.set_label(Text(event.kind.value, "bold"))
            tree.root.add_leaf(Text.assemble(("summary", "bold"), ": ",
                                             event.revealed if self.reveal else event.summary))
            if event.raw is None and event.kind.value in ("msg", "data"):
                tree.root.add_leaf(Text("bytes not kept (capture level, or shed from the log)", "dim"))
        if event.secret:
            tree.root.add_leaf(Text.assemble(("secret", "bold yellow"), ": ",
                                             event.revealed if self.reveal else "masked — v shows it as sent"))
        tree.root.expand()
        raw = event.raw if self.reveal else event.masked_raw
        self.query_one("#hex", Static).update(hexdump(raw, width=8) if raw else Text("no bytes", "dim"))
