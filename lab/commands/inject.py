"""``inject CONN|ENDPOINT [--to client|server] TEXT... [-n] [--hex]``

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab.commands._base import Command, CommandParser, Result, add_payload_args, payload
from lab.errors import CommandError
from lab.protocols._base import Role, Transport, escape_bytes

if TYPE_CHECKING:
    from lab.connection import Connection
    from lab.lab import Lab


def connection_named(lab: Lab, conn_id: str) -> Connection:
    """A live connection by its id (``px#1``), or an endpoint's newest one."""
    endpoint = lab.endpoints.get(conn_id)
    if endpoint is not None:
        live = endpoint.live_connections()
        if not live:
            raise CommandError(f"{conn_id} has no open connection", hint="wait for a client to connect")
        return live[-1]
    for endpoint in list(lab.endpoints.values()):
        for conn in endpoint.live_connections():
            if conn.id == conn_id:
                return conn
    known = [c.id for e in lab.endpoints.values() for c in e.live_connections()]
    raise CommandError(f"no open connection {conn_id!r}", hint=f"open: {', '.join(known[:10]) or 'none'}")


class InjectCommand(Command):
    name = "inject"
    summary = "send bytes into a connection: to one side of a proxied one, or a server's client"
    examples = (
        'inject px#1 --to client "421 going down"',
        "inject px#1 --to server --hex 51554954 0d0a",
        'inject mx#2 "250 surprise"',
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("conn", help="a connection id (`ls` and the log show them), or an endpoint:"
                                         " its newest connection")
        add_payload_args(parser)
        parser.add_argument("--to", choices=("client", "server"),
                            help="which side of a proxied connection (default client; elsewhere the peer)")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        conn = connection_named(lab, args.conn)
        ending = conn.endpoint.spec.line_ending if conn.transport is Transport.TCP else None
        data = payload(args, ending, "--hex 0d0a")
        to = Role(args.to) if args.to else conn.role.peer
        conn.inject(data, to)
        return Result(self.name, len(data), f"{conn.id} -> {to.value}: {escape_bytes(data)}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from (c.id for e in lab.endpoints.values() for c in e.live_connections())
        else:
            yield from ("--to", "client", "server", "--hex", "-n")


COMMAND = InjectCommand()
