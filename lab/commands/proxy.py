"""``proxy PROTO --to TARGET [--listen [HOST:]PORT] [--udp] [...] [as NAME]``

Tests: tests/test_commands.py, tests/test_proxy.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab import protocols
from lab.commands._base import Command, CommandParser, Result
from lab.endpoints import DEFAULT_MAX_CONNECTIONS, Can
from lab.errors import CommandError

if TYPE_CHECKING:
    from lab.lab import Lab


def parse_listen(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise CommandError(f"--listen wants [HOST:]PORT, not {text!r}", hint="e.g. --listen 2525 (0 = any free port)")
    return host, int(port)


def add_relay_args(parser: argparse.ArgumentParser, capture_default: str | None) -> None:
    """--listen, --udp/--tcp, --capture and the caps: the proxy command's and ``netlab proxy``'s."""
    parser.add_argument("--listen", default="0", metavar="[HOST:]PORT",
                        help="where clients connect (default 127.0.0.1 and any free port)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--udp", dest="transport", action="store_const", const="udp", help="relay UDP")
    kind.add_argument("--tcp", dest="transport", action="store_const", const="tcp",
                      help="relay TCP (the default where both exist)")
    default = f" (default {capture_default})" if capture_default else ""
    parser.add_argument("--capture", choices=("full", "summary", "off"), default=capture_default,
                        help=f"what to record: raw bytes and messages, summaries, or counters only{default}")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help=f"refuse clients beyond this many (default {DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close connections silent this long, in seconds (0 = never)")


class ProxyCommand(Command):
    name = "proxy"
    summary = "relay a protocol between real clients and a server, decoding both ways"
    examples = (
        "proxy smtp --to mx as px",
        "proxy smtp --to 127.0.0.1:2525 --listen 2526 as px",
        "proxy echo --to 127.0.0.1:7 --udp",
    )
    takes_name = True

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("protocol", help="protocol name (`netlab protocols` lists them)")
        parser.add_argument("--to", required=True, metavar="TARGET",
                            help="the server: a lab server's name or HOST:PORT")
        add_relay_args(parser, capture_default=None)

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        host, port = parse_listen(args.listen)
        proxy = await lab.aproxy(args.protocol, args.to, host=host, port=port, name=args.name,
                                 transport=args.transport, capture=args.capture,
                                 max_connections=args.max_connections, idle_timeout=args.idle_timeout)
        return Result(self.name, proxy, f"{proxy.name}: {proxy.spec.name} proxy {proxy.address}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from protocols.names()
        elif words[-1] == "--to":
            yield from (e.name for e in lab.endpoints.values() if e.can(Can.LISTEN))
        elif prefix.startswith("-"):
            yield from ("--to", "--listen", "--udp", "--tcp", "--capture", "--max-connections", "--idle-timeout")
        else:
            yield "as"


COMMAND = ProxyCommand()
