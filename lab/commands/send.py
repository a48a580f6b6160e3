"""``send CLIENT TEXT... [-n] [--hex]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, cast

from lab.commands._base import Command, CommandParser, Result, add_payload_args, payload
from lab.endpoints import Can, Client
from lab.errors import CommandError
from lab.protocols._base import Transport, escape_bytes

if TYPE_CHECKING:
    from lab.lab import Lab


def client_named(lab: Lab, name: str, need: Can = Can.SEND) -> Client:
    endpoint = lab.get(name)
    if not endpoint.can(need):
        raise CommandError(f"{name!r} is a {endpoint.kind}, not a client",
                           hint=f"`connect {name}` opens a client to it")
    return cast(Client, endpoint)


def client_names(lab: Lab) -> list[str]:
    return [c.name for c in lab.clients]


class SendCommand(Command):
    name = "send"
    summary = "send a line (or raw bytes) from a client"
    examples = (
        'send c "hello world"',
        "send c HELO lab.test",
        r'send c -n "no line ending\x00"',
        "send c --hex 0d0a",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("client", help="a client's name")
        add_payload_args(parser)

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        client = client_named(lab, args.client)
        ending = client.spec.line_ending if client.transport is Transport.TCP else None
        data = payload(args, ending, "send c --hex 48690d0a")
        await client.asend(data)
        return Result(self.name, len(data), f"{client.name} -> {escape_bytes(data)}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from client_names(lab)


COMMAND = SendCommand()
