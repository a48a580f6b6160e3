"""``edit ID NAME=VALUE... | edit ID --raw TEXT | edit ID --hex HEX``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result, unescape
from lab.errors import CommandError
from lab.protocols._base import escape_bytes

if TYPE_CHECKING:
    from lab.lab import Lab


class EditCommand(Command):
    name = "edit"
    summary = "change a held message, then let it go on"
    examples = (
        "edit h1 arg=FROM:<mallory@lab.test>",
        r'edit h1 --raw "MAIL FROM:<eve@lab.test>\r\n"',
        "edit h2 --hex 51554954 0d0a",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("id", help="a held id (`held` lists them)")
        parser.add_argument("changes", nargs="*", metavar="NAME=VALUE | TEXT",
                            help="decoded fields to change (the protocol re-encodes them); with --raw or --hex,"
                                 " the new bytes")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--raw", action="store_true", help="the words are the new bytes (escapes like \\r\\n work)")
        how.add_argument("--hex", action="store_true", help="the words are the new bytes in hex")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        if args.raw or args.hex:
            text = " ".join(args.changes)
            try:
                raw = bytes.fromhex(text) if args.hex else unescape(text)
            except ValueError:
                raise CommandError("--hex needs pairs of hex digits", hint="e.g. edit h1 --hex 0d0a") from None
            new = lab.intercepts.edit(args.id, raw)
        else:
            fields: dict[str, str] = {}
            for change in args.changes:
                name, sep, value = change.partition("=")
                if not sep or not name:
                    raise CommandError(f"edit wants NAME=VALUE, not {change!r}",
                                       hint="e.g. edit h1 arg=FROM:<x@lab.test>, or --raw TEXT")
                fields[name] = value
            new = lab.intercepts.edit(args.id, None, **fields)
        return Result(self.name, new, f"{args.id} -> {new.summary()} ({escape_bytes(new.raw, 60)})")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from (h.id for h in lab.intercepts.held())
        else:
            yield from ("--raw", "--hex")


COMMAND = EditCommand()
