"""``help [COMMAND]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result

if TYPE_CHECKING:
    from lab.lab import Lab


class HelpCommand(Command):
    name = "help"
    summary = "list commands, or explain one"
    examples = ("help", "help serve")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("topic", nargs="?", help="a command name")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        from lab.commands import command, commands

        if args.topic:
            return Result(self.name, args.topic, command(args.topic).help())
        width = max(len(n) for n in commands())
        lines = ["commands (`help COMMAND` for details; separate several with `;`):"]
        lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in commands().items()]
        return Result(self.name, None, "\n".join(lines))

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        from lab.commands import commands

        if not words:
            yield from commands()


COMMAND = HelpCommand()
