"""``release ID... | all``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from lab.commands._base import Command, CommandParser, Result
from lab.commands.intercept import add_choice_arguments, held_ids

if TYPE_CHECKING:
    from lab.lab import Lab


class ReleaseCommand(Command):
    name = "release"
    summary = "let held messages go on as they are"
    examples: ClassVar[tuple[str, ...]] = ("release h1", "release all", "release", "release --on px --wait 5")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("ids", nargs="*", metavar="ID",
                            help="held ids (`held` lists them), or all (none: the oldest)")
        add_choice_arguments(parser)

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        ids = await held_ids(lab, args.ids, args.on, args.wait)
        done = [lab.intercepts.release(held_id) for held_id in ids]
        return Result(self.name, done, "released " + (", ".join(h.id for h in done) or "nothing"))

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if words and words[-1] == "--on":
            yield from (h.endpoint for h in lab.intercepts.held())
            return
        yield "all"
        yield from (h.id for h in lab.intercepts.held())
        yield from ("--on", "--wait")


COMMAND = ReleaseCommand()
