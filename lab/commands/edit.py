"""``edit [ID] NAME=VALUE... | edit [ID] --raw TEXT | edit [ID] --hex HEX``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result, unescape
from lab.commands.intercept import HELD_ID, add_choice_arguments, held_ids
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
        "edit --on px --wait 5 arg=FROM:<eve@lab.test>",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("changes", nargs="*", metavar="NAME=VALUE | TEXT",
                            help="decoded fields to change (the protocol re-encodes them); with --raw or --hex,"
                                 " the new bytes")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--raw", action="store_true", help="the words are the new bytes (escapes like \\r\\n work)")
        how.add_argument("--hex", action="store_true", help="the words are the new bytes in hex")
        add_choice_arguments(parser)

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        changes = list(args.changes)
        # the first word is a held id when it looks like one (h1, h2...)
        given = [changes.pop(0)] if changes and HELD_ID.fullmatch(changes[0]) else []
        (held_id,) = await held_ids(lab, given, args.on, args.wait)
        if args.raw or args.hex:
            text = " ".join(changes)
            try:
                raw = bytes.fromhex(text) if args.hex else unescape(text)
            except ValueError:
                raise CommandError("--hex needs pairs of hex digits", hint="e.g. edit h1 --hex 0d0a") from None
            new = lab.intercepts.edit(held_id, raw)
        else:
            fields: dict[str, str] = {}
            for change in changes:
                name, sep, value = change.partition("=")
                if not sep or not name:
                    raise CommandError(f"edit wants NAME=VALUE, not {change!r}",
                                       hint="e.g. edit h1 arg=FROM:<x@lab.test>, or --raw TEXT")
                fields[name] = value
            new = lab.intercepts.edit(held_id, None, **fields)
        return Result(self.name, new, f"{held_id} -> {new.summary()} ({escape_bytes(new.raw, 60)})")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from (h.id for h in lab.intercepts.held())
        else:
            yield from ("--raw", "--hex", "--on", "--wait")


COMMAND = EditCommand()
