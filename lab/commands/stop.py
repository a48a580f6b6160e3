"""``stop NAME... | all``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result

if TYPE_CHECKING:
    from lab.lab import Lab


class StopCommand(Command):
    name = "stop"
    summary = "stop servers or close clients"
    examples = ("stop echo1", "stop c1 c2", "stop all")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME", help="endpoint names, or `all`")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        for name in args.names:  # check every name before stopping any
            if name != "all":
                lab.get(name)
        stopped: list[str] = []
        for name in args.names:
            if name == "all" or name in lab.endpoints:
                stopped += await lab.astop(name)
        return Result(self.name, stopped, "stopped " + (", ".join(stopped) or "nothing"))

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        yield "all"
        yield from lab.endpoints


COMMAND = StopCommand()
