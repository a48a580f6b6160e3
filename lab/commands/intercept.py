"""``intercept [ENDPOINT [FILTER...] [--timeout S] [--then release|drop] | ENDPOINT --off]``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.endpoints import Can
from lab.errors import CommandError
from lab.filtering import FILTER_HELP
from lab.intercept import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from lab.lab import Lab


def _intercepting(lab: Lab) -> Iterator[str]:
    yield from (e.name for e in lab.endpoints.values() if e.can(Can.HOOK) or e.can(Can.SEND))


class InterceptCommand(Command):
    name = "intercept"
    summary = "hold the messages that match a filter, for release, drop or edit"
    examples = (
        "intercept px m:MAIL in",
        'intercept mx "RCPT" --timeout 30 --then drop',
        "intercept px --off",
        "intercept",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("endpoint", nargs="?", help="a proxy, server or client (none: list the breakpoints)")
        parser.add_argument("filter", nargs="*", help=f"what to hold, in the filter language: {FILTER_HELP}")
        parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                            help=f"seconds a message stays held (default {DEFAULT_TIMEOUT:g})")
        parser.add_argument("--then", choices=("release", "drop"), default="release",
                            help="what becomes of it then (default release)")
        parser.add_argument("--off", action="store_true", help="remove the endpoint's breakpoints")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        intercepts = lab.intercepts
        if args.endpoint is None:
            rules = intercepts.rules()
            text = "\n".join(rule.describe() for rule in rules) or "no breakpoints (intercept ENDPOINT FILTER)"
            return Result(self.name, rules, text)
        lab.get(args.endpoint)
        if args.off:
            count = intercepts.clear(args.endpoint)
            return Result(self.name, count, f"{args.endpoint}: {count} breakpoint(s) removed")
        rule = intercepts.add(args.endpoint, " ".join(args.filter), timeout=args.timeout, then=args.then)
        return Result(self.name, rule, f"holding {rule.describe()}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from _intercepting(lab)
        else:
            yield from ("--off", "--timeout", "--then", "in", "out", "m:", "k:msg", "c:")


HELD_ID = re.compile(r"h\d+", re.IGNORECASE)


def add_choice_arguments(parser: CommandParser) -> None:
    """``--on`` and ``--wait``, shared by release, drop and edit."""
    parser.add_argument("--on", metavar="ENDPOINT", help="with no ID: the oldest message this endpoint holds")
    parser.add_argument("--wait", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for a message to be held (default: not at all)")


async def held_ids(lab: Lab, given: Sequence[str], on: str | None = None, wait: float = 0.0) -> list[str]:
    """The held ids a release, drop or edit acts on: those given, every
    one (``all``), or else the oldest (on ``on``), waiting up to ``wait``
    seconds for one to be held."""
    intercepts = lab.intercepts
    if on is not None:
        lab.get(on)
    if wait > 0:
        await intercepts.wait(1, wait, on)
    held = [h for h in intercepts.held() if on in (None, h.endpoint)]
    if [g.lower() for g in given] == ["all"]:
        return [h.id for h in held]
    if not given:
        if not held:
            where = f" on {on}" if on else ""
            raise CommandError(f"nothing is held{where}",
                               hint="`intercept ENDPOINT FILTER` sets a breakpoint; --wait S waits for a message")
        return [held[0].id]
    for held_id in given:
        intercepts.get(held_id)  # every id checked before any is acted on
    return list(given)


COMMAND = InterceptCommand()
