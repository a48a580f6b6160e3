"""``log [-n N] [filters]``: recent events, decoded; ``log save FILE`` and
``log export --pcap FILE`` write them out.

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result
from lab.errors import CommandError, ConfigError
from lab.eventlog import Direction, Event, EventFilter, EventKind, format_event

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


USAGE = """log [-n N] [--json] [--reveal] [filters]
       log save FILE [--force] [filters]
       log export --pcap FILE [--force] [--real-ports] [filters]"""

ACTIONS = ("save", "export")

SAVING = """\
log save FILE: write the matching events, raw chunks too, as JSON lines;
  `netlab log FILE` and `netlab tui --log FILE` open them.
log export --pcap FILE: write the matching traffic as pcapng for Wireshark,
  with made-up Ethernet/IP/TCP or UDP framing; each server's port is written
  as its protocol's own (25 for SMTP) so Wireshark decodes it, unless
  --real-ports.  Both refuse to overwrite FILE without --force.
Secrets (passwords, credentials) show masked; `log --reveal` shows them.
Files get them masked (********) unless the lab keeps secrets
(--keep-secrets)."""


@dataclass(frozen=True)
class Saved:
    """What ``log save`` wrote."""

    path: str
    events: int
    bytes: int

    def __str__(self) -> str:
        return f"saved {self.events} events ({self.bytes:,} bytes) to {self.path}"


class LogCommand(Command):
    name = "log"
    summary = "show recent events from the event log, or save or export them"
    examples = ("log", "log -n 50 -e echo1", "log --in --grep /hello/i", "log --json -n 5",
                "log save session.jsonl", "log export --pcap session.pcapng -e smtp1")

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        action = words[0] if words and words[0] in ACTIONS else None
        if action == "save":
            parser.prog = "log save"
            parser.usage = "log save FILE [--force] [filters]"
            parser.description = ("write the matching events, raw chunks included, as JSON lines "
                                  "(`netlab log FILE` or `netlab tui --log FILE` open them)")
            parser.add_argument("action", choices=ACTIONS, help=argparse.SUPPRESS)
            parser.add_argument("file", metavar="FILE", help="the file to write")
        elif action == "export":
            parser.prog = "log export"
            parser.usage = "log export --pcap FILE [--force] [--real-ports] [filters]"
            parser.description = ("write the matching traffic as a pcapng capture, with made-up "
                                  "Ethernet/IP/TCP or UDP framing, for Wireshark")
            parser.add_argument("action", choices=ACTIONS, help=argparse.SUPPRESS)
            parser.add_argument("--pcap", metavar="FILE", required=True, help="the capture file to write")
            parser.add_argument("--real-ports", action="store_true",
                                help="keep the servers' ports (by default each is written as its protocol's "
                                     "own, e.g. 25, so Wireshark decodes it)")
        else:
            parser.usage = USAGE
            parser.add_argument("-n", type=int, default=20, help="how many (default 20; 0 = all kept)")
        if action is not None:
            parser.add_argument("--force", "-f", action="store_true", help="overwrite FILE if it exists")
        add_filter_arguments(parser)
        if action is None:
            parser.add_argument("--json", action="store_true", help="JSON lines instead of text")
            parser.add_argument("--reveal", action="store_true",
                                help="show secrets (passwords sent in cleartext) instead of masking them")
            parser.epilog = SAVING + "\n\n" + (parser.epilog or "")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        action = getattr(args, "action", None)
        if action is not None:
            args.bytes = True  # a saved log or capture needs the raw chunks
            if lab.jail is not None:  # safe mode: only inside the allowed folders
                lab.jail.path(args.file if action == "save" else args.pcap)
            if action == "save":
                return await self._save(lab, args)
            return await self._export(lab.log.query(build_filter(args)), args, lab.keep_secrets)
        if args.n < 0:
            raise CommandError("-n must be 0 or more")
        events = lab.log.tail(args.n, build_filter(args)) if args.n else lab.log.query(build_filter(args))
        # masked even here: terminal output is often redirected to a file
        if args.json:
            text = "\n".join(e.to_json(reveal=args.reveal) for e in events)
        else:
            text = "\n".join(format_event(e, reveal=args.reveal) for e in events) or "no events match"
        return Result(self.name, events, text)

    async def _save(self, lab: Lab, args: argparse.Namespace) -> Result:
        path = os.path.expanduser(args.file)
        flt = build_filter(args)

        def write() -> Saved:
            try:
                with open(path, "w" if args.force else "x", encoding="ascii") as fh:
                    count = lab.log.export_jsonl(fh, flt, reveal=lab.keep_secrets)
                    return Saved(path, count, fh.tell())
            except FileExistsError:
                raise CommandError(f"{path} exists", hint="add --force to overwrite it, or pick another name") from None
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc.strerror or exc}", hint="check the path") from None

        saved = await asyncio.to_thread(write)  # a big log takes a while: keep serving meanwhile
        return Result(self.name, saved, str(saved))

    async def _export(self, events: Sequence[Event], args: argparse.Namespace, reveal: bool) -> Result:
        from lab.pcap import write_pcapng

        path = os.path.expanduser(args.pcap)
        try:
            summary = await asyncio.to_thread(write_pcapng, events, path, real_ports=args.real_ports,
                                              force=args.force, reveal=reveal)
        except ConfigError as exc:
            raise CommandError(exc.message, hint=exc.hint) from None
        return Result(self.name, summary, str(summary))

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if words and words[-1] in ("-e", "--endpoint"):
            yield from lab.endpoints
        elif words and words[-1] in ("-c", "--conn"):
            for endpoint in lab.endpoints.values():
                yield from getattr(endpoint, "connections", {})
        elif prefix.startswith("-"):
            for action in self.parser(words)._actions:
                yield from action.option_strings
        elif not words:
            yield from ACTIONS
        elif words == ["export"]:
            yield "--pcap"


COMMAND = LogCommand()
