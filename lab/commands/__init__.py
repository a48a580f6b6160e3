"""The command language: one grammar every front-end speaks.

``serve echo as e; connect e as c; send c hello; expect c hello`` — words
follow shell quoting, statements are separated by newlines or ``;``.
Each command is one small module defining ``COMMAND``; adding a command
means adding a module and its name to ``_MODULES``.

Tests: tests/test_commands.py
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from lab.commands._base import (
    Command,
    CommandParser,
    Result,
    Statement,
    parse_pattern,
    split_statements,
    unescape,
)
from lab.errors import CommandError, LabError
from lab.protocols import suggest
from lab.services import ServiceKey

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = [
    "Command",
    "CommandObserver",
    "CommandParser",
    "Interpreter",
    "Result",
    "Statement",
    "command",
    "commands",
    "observers",
    "parse_pattern",
    "split_statements",
    "unescape",
]

_MODULES: tuple[str, ...] = ("serve", "connect", "send", "expect", "stop", "ls", "log", "help")
# what scenario steps need and a prompt wants too: verbs, waiting, recording, saving the lab
_MODULES += ("call", "wait", "record", "save")
_MODULES += ("proxy", "intercept", "held", "release", "drop", "edit", "inject")

logger = logging.getLogger(__name__)

# key in ``lab.services`` of the list of observers told about each command

_registry: dict[str, Command] | None = None


def commands() -> dict[str, Command]:
    """Every command by name, in the order ``help`` lists them."""
    global _registry
    if _registry is None:
        found = {}
        for module in _MODULES:
            cmd = importlib.import_module(f"lab.commands.{module}").COMMAND
            found[cmd.name] = cmd
        _registry = found
    return _registry


def command(name: str) -> Command:
    """The command called ``name``, or a :class:`CommandError` with a
    suggestion."""
    table = commands()
    if name in table:
        return table[name]
    close = suggest(name, list(table))
    raise CommandError(
        f"unknown command {name!r}",
        hint=f"did you mean {close!r}?" if close else "`help` lists the commands",
    )


class CommandObserver(Protocol):
    """Told about every command an :class:`Interpreter` runs on a lab (the
    recorder is one), on the reactor thread, before and after it runs."""

    def started(self, stmt: Statement, args: Any) -> None: ...
    def finished(self, stmt: Statement, args: Any, result: Result) -> None: ...


# the lab's command observers (a recorder is one), shared by its interpreters
OBSERVERS: ServiceKey[list[CommandObserver]] = ServiceKey("commands.observers", list)


def observers(lab: Lab) -> list[CommandObserver]:
    """The lab's command observers; add to or remove from the list."""
    return lab.services.get(OBSERVERS)


def _notify(lab: Lab, method: str, *args: Any) -> None:
    for observer in list(lab.services.find(OBSERVERS) or ()):
        try:
            getattr(observer, method)(*args)
        except Exception:
            # an observer (a recorder on a full disk) must not break the command
            logger.exception("command observer %r failed", observer)


class Interpreter:
    """Parses and runs command-language text against one lab.

    :meth:`aexecute` runs on the reactor loop (or awaits it from another
    loop); :meth:`execute` blocks from any other thread.  Every statement
    is parsed before the first one runs, so a typo on line 3 stops the
    script before line 1 has changed anything.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def parse(self, text: str) -> list[tuple[Statement, Command, Any]]:
        parsed = []
        for stmt in split_statements(text):
            try:
                cmd = command(stmt.words[0])
                parsed.append((stmt, cmd, cmd.parse(stmt.words[1:])))
            except LabError as exc:
                raise _located(exc, stmt) from None
        return parsed

    async def _run(self, text: str, on_result: Callable[[Result], None] | None = None) -> list[Result]:
        results = []
        for stmt, cmd, args in self.parse(text):
            _notify(self.lab, "started", stmt, args)
            try:
                result = await cmd.run(self.lab, args)
            except LabError as exc:
                raise _located(exc, stmt) from None
            _notify(self.lab, "finished", stmt, args, result)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    async def aexecute(self, text: str, on_result: Callable[[Result], None] | None = None) -> list[Result]:
        """Run every statement in ``text``; stops at the first error.
        ``on_result`` sees each statement's result as it completes."""
        return await self.lab.reactor.run_async(self._run(text, on_result))

    def execute(self, text: str, timeout: float | None = None) -> list[Result]:
        """Blocking :meth:`aexecute`, for threads other than the reactor's."""
        coro: Coroutine[Any, Any, list[Result]] = self._run(text)
        return self.lab.reactor.call(coro, timeout)

    def complete(self, line: str) -> list[str]:
        """Completions for the last (partial) word of ``line``."""
        stmt = line.rsplit(";", 1)[-1]
        words = stmt.split()
        prefix = "" if stmt.endswith((" ", "\t")) or not words else words.pop()
        if not words:
            candidates: list[str] = list(commands())
        else:
            try:
                cmd = command(words[0])
            except CommandError:
                return []
            try:
                candidates = list(cmd.complete(self.lab, words[1:], prefix))
            except LabError:
                candidates = []
        return sorted({c for c in candidates if c.startswith(prefix)})


def _located(exc: LabError, stmt: Statement) -> CommandError:
    """Prefix an error with the statement it came from."""
    where = f"`{stmt.text}`"
    if stmt.line > 1:
        where = f"line {stmt.line}: {where}"
    return CommandError(f"{where}: {exc.message}", hint=exc.hint)
