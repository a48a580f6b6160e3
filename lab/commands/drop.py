"""``drop ID... | all``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from lab.commands._base import Result
from lab.commands.intercept import held_ids
from lab.commands.release import ReleaseCommand

if TYPE_CHECKING:
    from lab.lab import Lab


class DropCommand(ReleaseCommand):
    name = "drop"
    summary = "let held messages go nowhere"
    examples = ("drop h1", "drop all", "drop --on px")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        ids = await held_ids(lab, args.ids, args.on, args.wait)
        done = [lab.intercepts.drop(held_id) for held_id in ids]
        return Result(self.name, done, "dropped " + (", ".join(h.id for h in done) or "nothing"))


COMMAND = DropCommand()
