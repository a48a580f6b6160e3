"""``call CLIENT VERB [ARG...] [NAME=VALUE...]``: run one of a client's
protocol verbs (``call c query alice verbose=true``); ``call SERVER
NAME.METHOD ...`` runs a method of what a server offers by name
(``call d zone.add www A 127.0.0.2``).

Tests: tests/test_commands.py, tests/scenarios/test_up_save.py
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from lab.commands._base import Command, CommandParser, Result, unescape_text
from lab.commands.send import client_named, client_names
from lab.endpoints import Can, Server
from lab.errors import CommandError
from lab.protocols import Message, suggest

if TYPE_CHECKING:
    from lab.lab import Lab

_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_WORDS = {"true": True, "false": False, "none": None}


def literal(text: str) -> Any:
    """A word as a verb argument: an int, a float, true/false/none, or text."""
    lowered = text.lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return unescape_text(text)


def split_arguments(words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Positional arguments, then ``name=value`` keywords."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        m = _KEYWORD.fullmatch(word)
        if m:
            kwargs[m.group(1)] = literal(m.group(2))
        elif kwargs:
            raise CommandError(f"positional argument {word!r} after a keyword",
                               hint="put NAME=VALUE arguments last")
        else:
            args.append(literal(word))
    return args, kwargs


def usage(fn: Any) -> str:
    """A verb's arguments as a person types them: ``(sender, to, message, *, user=None)``
    (every verb takes ``timeout``: left out)."""
    parts: list[str] = []
    star = False
    for p in inspect.signature(fn).parameters.values():
        if p.name == "timeout" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"({', '.join(parts)})"


def show_value(value: Any, limit: int = 300) -> str:
    # a message reads as the log shows it (a DNS answer's records, not its bytes)
    text = value.summary() if isinstance(value, Message) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


class CallCommand(Command):
    name = "call"
    summary = "run a client's protocol verb (e.g. finger's query), or a method a server offers"
    examples = (
        "call c query alice",
        "call d zone.add www A 127.0.0.2",
        "call c query alice verbose=true",
        "call c get",
        "call c echo hello",
    )

    def configure(self, parser: CommandParser, words: Sequence[str]) -> None:
        parser.add_argument("client", help="a client's name (or a server's, for NAME.METHOD: its zone, its routes)")
        parser.add_argument("verb", nargs="?", help="the verb (`call CLIENT` lists them)")
        parser.add_argument("arguments", nargs="*", metavar="ARG",
                            help="arguments: words (numbers, true/false/none, text), then NAME=VALUE")

    async def run(self, lab: Lab, args: argparse.Namespace) -> Result:
        endpoint = lab.endpoints.get(args.client)
        if isinstance(endpoint, Server) and type(endpoint.behaviour).shell_names:
            return await _call_server(endpoint, args)
        client = client_named(lab, args.client, Can.VERBS)  # a library-owned client has verbs, no send
        verbs = type(client.verbs).verbs()
        if args.verb is None:
            listing = "\n".join(f"  {name}{usage(getattr(client.verbs, name))}" for name in sorted(verbs))
            raise CommandError(f"which verb? `call {client.name} VERB ARG... NAME=VALUE...`, where VERB is one"
                               f" of the {client.spec.name} client's:\n{listing or '  none'}")
        if args.verb not in verbs:
            close = suggest(args.verb, list(verbs))
            listing = ", ".join(sorted(verbs)) or "none"
            raise CommandError(f"{client.spec.name} client has no verb {args.verb!r}",
                               hint=f"did you mean {close!r}?" if close else f"verbs: {listing}")
        positional, keywords = split_arguments(args.arguments)
        fn = getattr(client.verbs, args.verb)
        try:
            inspect.signature(fn).bind(*positional, **keywords)
        except TypeError as exc:
            raise CommandError(f"{args.verb}: {exc}",
                               hint=f"usage: call {client.name} {args.verb}{usage(fn)}") from None
        value = await fn(*positional, **keywords)
        return Result(self.name, value, f"{client.name}.{args.verb} -> {show_value(value)}")

    def complete(self, lab: Lab, words: Sequence[str], prefix: str) -> Iterator[str]:
        if not words:
            yield from client_names(lab)
            yield from (s.name for s in lab.servers if type(s.behaviour).shell_names)
        elif len(words) == 1 and isinstance(lab.endpoints.get(words[0]), Server):
            yield from server_methods(cast(Server, lab.endpoints[words[0]]))
        elif len(words) == 1 and words[0] in lab.endpoints:
            try:
                yield from type(client_named(lab, words[0], Can.VERBS).verbs).verbs()
            except CommandError:
                return


def server_methods(server: Server) -> dict[str, Any]:
    """``NAME.METHOD`` -> the method, for each public method of what a
    server offers by name (``srv.zone``: ``zone.add``, ``zone.remove``...)."""
    out = {}
    for name in type(server.behaviour).shell_names:
        obj = getattr(server.behaviour, name, None)
        for attr in dir(obj):
            fn = getattr(obj, attr, None) if not attr.startswith("_") else None
            if callable(fn):
                out[f"{name}.{attr}"] = fn
    return out


async def _call_server(server: Server, args: argparse.Namespace) -> Result:
    """``call SERVER NAME.METHOD ARG...``: a method of what the server offers
    by name (its zone, its routes), run on the reactor."""
    methods = server_methods(server)
    if args.verb is None or args.verb not in methods:
        listing = ", ".join(sorted(methods)) or "none"
        close = suggest(args.verb, list(methods)) if args.verb else None
        raise CommandError(f"{server.name} offers no {args.verb!r}" if args.verb else
                           f"which one? `call {server.name} NAME.METHOD ARG...`",
                           hint=f"did you mean {close!r}?" if close else f"one of: {listing}")
    fn = methods[args.verb]
    positional, keywords = split_arguments(args.arguments)
    try:
        inspect.signature(fn).bind(*positional, **keywords)
    except TypeError as exc:
        raise CommandError(f"{args.verb}: {exc}", hint=f"usage: call {server.name} {args.verb}{usage(fn)}") from None
    value = fn(*positional, **keywords)
    if inspect.isawaitable(value):
        value = await value
    return Result("call", value, f"{server.name}.{args.verb} -> {show_value(value)}")


COMMAND = CallCommand()
