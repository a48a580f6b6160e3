"""``ls``: the lab's endpoints with their state and counters.

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from lab.commands._base import Command, Result
from lab.text import human_bytes, table

if TYPE_CHECKING:
    from lab.lab import Lab

COLUMNS = (
    ("name", "name"),
    ("kind", "kind"),
    ("protocol", "proto"),
    ("address", "address"),
    ("state", "state"),
    ("connections", "conns"),
    ("in", "in"),
    ("out", "out"),
    ("capture", "capture"),
)


class LsCommand(Command):
    name = "ls"
    summary = "list servers and clients with state and counters"

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        rows = lab.ls()
        if not rows:
            return Result(self.name, rows, "the lab is empty; try `serve echo`")
        shown = [dict(r, **{"in": human_bytes(r["bytes_in"]), "out": human_bytes(r["bytes_out"])})
                 for r in rows]
        return Result(self.name, rows, table(shown, COLUMNS))


COMMAND = LsCommand()
