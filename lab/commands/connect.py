"""``connect [PROTO] TARGET [--udp] [--timeout S] [-o NAME=VALUE ...] [as NAME]``

Tests: tests/test_commands.py
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from lab import protocols
from lab.commands._base import Command, CommandParser, Result
from lab.endpoints import Can
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
        "connect telnet t1 -o terminal=vt100 -o width=120 as t",
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
        parser.add_argument("-o", "--option", dest="options", action="append", default=[], metavar="NAME=VALUE",
                            help="a client option of the protocol (repeat for more; a list option may repeat)")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        if len(args.words) > 2:
            raise CommandError("connect takes a protocol and a target",
                               hint="e.g. `connect echo echo1 as c`")
        if len(args.words) == 1:
            target = args.words[0]
            server = lab.endpoints.get(target)
            if server is None or not server.can(Can.LISTEN):
                raise CommandError(f"{target!r} is not a lab server",
                                   hint="name the protocol too: `connect PROTO HOST:PORT`")
            proto = server.spec.name
        else:
            proto, target = args.words
        client = await lab.aconnect(proto, target, name=args.name, transport=args.transport,
                                    capture=args.capture, timeout=args.timeout,
                                    options=_client_options(proto, args.options))
        return Result(self.name, client, f"{client.name}: {client.spec.name} connected to {client.address}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if words and words[-1] in ("-o", "--option"):
            yield from _option_names(lab, words)
            return
        positional = _positional(words)
        if not positional:
            yield from [s.name for s in lab.servers]
            yield from protocols.names()
        elif len(positional) == 1:
            yield from [s.name for s in lab.servers]
        else:
            yield "as"


def _client_options(proto: str, items: Sequence[str]) -> dict[str, object]:
    """``NAME=VALUE`` words as options; a repeated name gathers a list."""
    spec = protocols.get(proto)
    declared = spec.client_options.declared()
    multiple = {opt.name for opt in declared if opt.multiple}
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            names = ", ".join(opt.name for opt in declared) or "none"
            raise CommandError(f"-o wants NAME=VALUE, not {item!r}", hint=f"client options of {proto}: {names}")
        if name in multiple:
            listed = out.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            out[name] = value
    return out


def _positional(words: Sequence[str]) -> list[str]:
    """The words that are not options or option values."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("-o", "--option", "--timeout", "--capture"):
            skip = True
        elif not word.startswith("-"):
            out.append(word)
    return out


def _option_names(lab: Lab, words: Sequence[str]) -> Iterator[str]:
    spec = None
    for word in _positional(words)[:2]:
        server = lab.endpoints.get(word)
        if server is not None and server.can(Can.LISTEN):
            spec = server.spec
            break
        if word in protocols.names():
            spec = protocols.get(word)
            break
    if spec is not None:
        yield from (f"{opt.name}=" for opt in spec.client_options.declared())


COMMAND = ConnectCommand()
