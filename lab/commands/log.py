"""``log [-n N] [filters]``: recent events, decoded.

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.errors import CommandError
from lab.eventlog import Direction, EventFilter, EventKind, format_event

if TYPE_CHECKING:
    from lab.lab import Lab

QUIET = frozenset(k for k in EventKind if k is not EventKind.DATA)


def build_filter(args: argparse.Namespace) -> EventFilter:
    """The log filter that ``log``-style options describe."""
    regex = text = None
    if args.grep:
        m = re.fullmatch(r"/(.*)/(i?)", args.grep, re.DOTALL)
        if m:
            try:
                regex = re.compile(m.group(1), re.IGNORECASE if m.group(2) else 0)
            except re.error as exc:
                raise CommandError(f"bad regular expression {args.grep}: {exc}") from None
        else:
            text = args.grep
    return EventFilter(
        endpoint=args.endpoint,
        conn=args.conn,
        direction=Direction(args.direction) if args.direction else None,
        protocol=args.proto,
        kinds=None if args.bytes else QUIET,
        text=text,
        regex=regex,
        since=args.since,
    )


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", "-e", help="only this endpoint")
    parser.add_argument("--conn", "-c", help="only this connection (e.g. echo1#2)")
    way = parser.add_mutually_exclusive_group()
    way.add_argument("--in", dest="direction", action="store_const", const="in", help="only received")
    way.add_argument("--out", dest="direction", action="store_const", const="out", help="only sent")
    parser.add_argument("--proto", "-p", help="only this protocol")
    parser.add_argument("--grep", "-g", metavar="TEXT|/RE/", help="summary contains TEXT or matches /RE/")
    parser.add_argument("--bytes", "-b", action="store_true", help="include raw byte chunks")
    parser.add_argument("--since", type=int, metavar="SEQ", help="only events after sequence number SEQ")


class LogCommand(Command):
    name = "log"
    summary = "show recent events from the event log"
    examples = ("log", "log -n 50 -e echo1", "log --in --grep /hello/i", "log --json -n 5")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("-n", type=int, default=20, help="how many (default 20; 0 = all kept)")
        add_filter_arguments(parser)
        parser.add_argument("--json", action="store_true", help="JSON lines instead of text")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        if args.n < 0:
            raise CommandError("-n must be 0 or more")
        events = lab.log.tail(args.n, build_filter(args)) if args.n else lab.log.query(build_filter(args))
        if args.json:
            text = "\n".join(e.to_json() for e in events)
        else:
            text = "\n".join(format_event(e) for e in events) or "no events match"
        return Result(self.name, events, text)

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if words and words[-1] in ("-e", "--endpoint"):
            yield from lab.endpoints
        elif prefix.startswith("-"):
            for action in self.parser()._actions:
                yield from action.option_strings


COMMAND = LogCommand()
