"""``serve PROTO [--port N] [--host H] [--udp] [caps] [options] [as NAME]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lab import protocols
from lab.commands._base import Command, CommandParser, Result
from lab.endpoints import DEFAULT_LINE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MIN_RATE
from lab.errors import CommandError
from lab.protocols._spec import ProtocolSpec

if TYPE_CHECKING:
    from lab.lab import Lab

# caps left out of a serve's keywords when not given,
# so the lab's defaults apply
DEFAULTED_CAPS = ("max_per_source", "line_timeout", "min_rate", "reply_budget")
GENERAL = ("protocol", "port", "host", "transport", "capture", "max_connections", "idle_timeout", "name",
           *DEFAULTED_CAPS)


def add_server_arguments(parser: argparse.ArgumentParser, spec: ProtocolSpec | None) -> None:
    """The arguments of a server: general ones, then the protocol's own."""
    parser.add_argument("--port", "-p", type=int, default=0,
                        help="port to listen on (default 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, loopback only)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--udp", dest="transport", action="store_const", const="udp",
                      help="serve over UDP")
    kind.add_argument("--tcp", dest="transport", action="store_const", const="tcp",
                      help="serve over TCP (the default where both exist)")
    parser.add_argument("--capture", choices=("full", "summary", "off"),
                        help="what to record: raw bytes and messages, summaries, or counters only")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help=f"refuse connections beyond this many (default {DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close connections silent this long, in seconds (0 = never)")
    parser.add_argument("--max-per-source", type=int, default=None,
                        help="refuse connections beyond this many from one address"
                             " (default a quarter of --max-connections, at least 4; 0 = no limit)")
    parser.add_argument("--line-timeout", type=float, default=None,
                        help="close a connection whose message takes longer than this to arrive, in seconds,"
                             f" unless it comes at --min-rate (default {DEFAULT_LINE_TIMEOUT:g}; 0 = never)")
    parser.add_argument("--min-rate", type=float, default=None,
                        help="bytes a second a message slower than --line-timeout must average"
                             f" (default {DEFAULT_MIN_RATE:g}; 0 = the line timeout is absolute)")
    parser.add_argument("--reply-budget", metavar="RATE/BURST/RATIO", default=None,
                        help="UDP: reply bytes a source address may get, e.g. 4K/16K/2 (a second, at once,"
                             " times what it sends; the default) or off")
    declared = spec.options.declared() if spec is not None else ()
    if spec is None or not declared:
        return
    group = parser.add_argument_group(f"{spec.name} options")
    for opt in declared:
        if opt.flag:
            group.add_argument(opt.option_string, dest=opt.name, action="store_true",
                               default=None, help=opt.help_text)
        else:
            group.add_argument(opt.option_string, dest=opt.name, metavar=opt.metavar,
                               action="append" if opt.multiple else "store", help=opt.help_text)


def find_protocol(words: Sequence[str],
                  extra: Callable[[argparse.ArgumentParser], None] | None = None) -> str | None:
    """The protocol named among ``words``, skipping option values (``--port 7
    echo`` names echo), before the protocol's own options are known."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("protocol", nargs="?")
    add_server_arguments(parser, None)
    if extra is not None:
        extra(parser)
    try:
        known, _ = parser.parse_known_args(list(words))
    except (argparse.ArgumentError, SystemExit):
        return None
    return known.protocol


def server_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Namespace -> keywords for ``Lab.serve`` (protocol options unset are left out)."""
    values = vars(args)
    out = {k: values[k] for k in GENERAL
           if k in values and k != "protocol" and not (k in DEFAULTED_CAPS and values[k] is None)}
    out.update({k: v for k, v in values.items() if k not in GENERAL and v is not None})
    return out


class ServeCommand(Command):
    name = "serve"
    summary = "start a server"
    examples = (
        "serve echo",
        "serve echo --udp --port 7007 as e",
        'serve finger --user alice="Alice Liddell" as f',
    )
    takes_name = True

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        name = find_protocol(words)
        parser.add_argument("protocol", help="protocol name (`netlab protocols` lists them)")
        add_server_arguments(parser, protocols.get(name) if name else None)

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        server = await lab.aserve(args.protocol, **server_kwargs(args))
        return Result(self.name, server, f"{server.name}: {server.spec.name} listening on {server.address}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        spec_name = find_protocol(words)
        if spec_name is None:
            yield from protocols.names()
            return
        if prefix.startswith("-"):
            try:
                parser = self.parser([spec_name])
            except CommandError:
                return
            for action in parser._actions:
                yield from action.option_strings
        elif not prefix:
            yield "as"


COMMAND = ServeCommand()
