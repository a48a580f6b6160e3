"""``connect [PROTO] TARGET [--udp] [--timeout S] [as NAME]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab import protocols
from lab.commands._base import Command, CommandParser, Result
from lab.endpoints import Server
from lab.errors import CommandError

if TYPE_CHECKING:
    from lab.lab import Lab


class ConnectCommand(Command):
    name = "connect"
    summary = "open a client connection to a lab server or host:port"
    examples = (
        "connect echo1",
        "connect echo echo1 as c",
        "connect finger 127.0.0.1:79",
    )
    takes_name = True

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("words", nargs="+", metavar="[PROTO] TARGET",
                            help="protocol (optional for a lab server) and a server name or host:port")
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument("--udp", dest="transport", action="store_const", const="udp")
        kind.add_argument("--tcp", dest="transport", action="store_const", const="tcp")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the connection")
        parser.add_argument("--capture", choices=("full", "summary", "off"))

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        if len(args.words) > 2:
            raise CommandError("connect takes a protocol and a target",
                               hint="e.g. `connect echo echo1 as c`")
        if len(args.words) == 1:
            target = args.words[0]
            server = lab.endpoints.get(target)
            if not isinstance(server, Server):
                raise CommandError(f"{target!r} is not a lab server",
                                   hint="name the protocol too: `connect PROTO HOST:PORT`")
            proto = server.spec.name
        else:
            proto, target = args.words
        client = await lab.aconnect(proto, target, name=args.name, transport=args.transport,
                                    capture=args.capture, timeout=args.timeout)
        return Result(self.name, client, f"{client.name}: {client.spec.name} connected to {client.address}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        positional = [w for w in words if not w.startswith("-")]
        if not positional:
            yield from [s.name for s in lab.servers]
            yield from protocols.names()
        elif len(positional) == 1:
            yield from [s.name for s in lab.servers]
        else:
            yield "as"


COMMAND = ConnectCommand()
