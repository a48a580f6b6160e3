"""``release ID... | all``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.commands.intercept import held_ids

if TYPE_CHECKING:
    from lab.lab import Lab


class ReleaseCommand(Command):
    name = "release"
    summary = "let held messages go on as they are"
    examples = ("release h1", "release all")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("ids", nargs="+", metavar="ID", help="held ids (`held` lists them), or all")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        done = [lab.intercepts.release(held_id) for held_id in held_ids(lab, args.ids)]
        return Result(self.name, done, "released " + (", ".join(h.id for h in done) or "nothing"))

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        yield "all"
        yield from (h.id for h in lab.intercepts.held())


COMMAND = ReleaseCommand()
