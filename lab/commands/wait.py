"""``wait SECONDS`` or ``wait CLIENT --closed [--timeout S]``.

Tests: tests/scenarios/test_up_save.py
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.commands.send import client_named, client_names
from lab.errors import CommandError, LabTimeout

if TYPE_CHECKING:
    from lab.lab import Lab

MAX_WAIT = 3600.0


class WaitCommand(Command):
    name = "wait"
    summary = "pause for some seconds, or until a server closes a client's connection"
    examples = ("wait 0.5", "wait c --closed", "wait c --closed --timeout 10")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("what", metavar="SECONDS|CLIENT", help="seconds to pause, or a client's name")
        parser.add_argument("--closed", action="store_true",
                            help="wait until the peer has closed CLIENT's connection")
        parser.add_argument("--timeout", "-t", type=float, default=10.0,
                            help="seconds to wait for the close (default 10)")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        try:
            seconds = float(args.what)
        except ValueError:
            seconds = None
        if seconds is not None:
            if not 0 <= seconds <= MAX_WAIT:
                raise CommandError(f"cannot wait {args.what} s", hint=f"give 0 to {MAX_WAIT:g} seconds")
            await asyncio.sleep(seconds)
            return Result(self.name, seconds, f"waited {seconds:g} s")
        if not args.closed:
            raise CommandError(f"wait for what of {args.what!r}?",
                               hint=f"`wait {args.what} --closed` waits for the peer to close it")
        client = client_named(lab, args.what)
        try:
            await client.conn.wait_closed(args.timeout)
        except LabTimeout:
            raise LabTimeout(f"{client.name} still open after {args.timeout:g} s",
                             hint="the server did not close the connection") from None
        return Result(self.name, client, f"{client.name} closed ({client.conn.close_reason or 'by peer'})")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from client_names(lab)
        else:
            yield "--closed"


COMMAND = WaitCommand()
