"""``held``: the messages intercepts hold.

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.eventlog import Direction

if TYPE_CHECKING:
    from lab.lab import Lab


def _held_lines(lab: Lab, endpoint: str | None) -> list[str]:
    now = time.time()
    return [f"{h.id:<5} {h.conn:<16} {'->' if h.direction is Direction.OUT else '<-'} {h.summary}"
            f"  ({now - h.since:.0f} s)" for h in lab.intercepts.held() if endpoint in (None, h.endpoint)]


class HeldCommand(Command):
    name = "held"
    summary = "list the messages intercepts hold"
    examples = ("held", "held --wait", "held --wait 2 --timeout 30")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("--wait", nargs="?", type=int, const=1, default=0, metavar="N",
                            help="first wait until N messages are held (default 1)")
        parser.add_argument("--on", metavar="ENDPOINT", help="only what this endpoint holds")
        parser.add_argument("--timeout", "-t", type=float, default=10.0,
                            help="seconds to wait (default 10)")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        if args.wait:
            await lab.intercepts.wait(args.wait, args.timeout, args.on)
        lines = _held_lines(lab, args.on)
        held = [h for h in lab.intercepts.held() if args.on in (None, h.endpoint)]
        return Result(self.name, held, "\n".join(lines) or "nothing is held")


COMMAND = HeldCommand()
