"""``expect CLIENT PATTERN [--timeout S]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result, parse_pattern
from lab.commands.send import client_named, client_names

if TYPE_CHECKING:
    from lab.lab import Lab


class ExpectCommand(Command):
    name = "expect"
    summary = "wait until a client receives a matching message"
    examples = (
        "expect c hello",
        "expect c /^2\\d\\d /",
        "expect c 250 --timeout 5",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("client", help="a client's name")
        parser.add_argument("pattern", nargs="+",
                            help="text to find, /regex/ (/regex/i ignores case), or a reply code")
        parser.add_argument("--timeout", "-t", type=float, default=10.0, help="seconds to wait (default 10)")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        client = client_named(lab, args.client)
        msg = await client.aexpect(parse_pattern(" ".join(args.pattern)), args.timeout)
        return Result(self.name, msg, f"{client.name} <- {msg.summary()}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from client_names(lab)


COMMAND = ExpectCommand()
