"""The command palette (ctrl+p) offers the command language too:
every command and its examples, and the typed text itself when it parses.

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from lab.commands import commands
from lab.errors import LabError

if TYPE_CHECKING:
    from lab.tui.app import NetlabApp

__all__ = ["LabCommands"]


class LabCommands(Provider):
    """Commands of the command language, for Textual's palette."""

    @property
    def netlab(self) -> NetlabApp:
        return cast("NetlabApp", self.app)

    def _entries(self) -> list[tuple[str, str]]:
        out = []
        for cmd in commands().values():
            out.append((cmd.name + " ", cmd.summary))
            out.extend((example, cmd.summary) for example in cmd.examples)
        return out

    async def discover(self) -> Hits:
        for cmd in commands().values():
            yield DiscoveryHit(f"{cmd.name} …", partial(self.netlab.fill_command, cmd.name + " "),
                               help=cmd.summary)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        try:
            self.netlab.interp.parse(query)
            parses = bool(query.strip())
        except LabError:
            parses = False
        if parses:
            yield Hit(1.0, f"run: {query}", partial(self.netlab.run_command, query),
                      help="run this statement now")
        for text, summary in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score * 0.9, matcher.highlight(text), partial(self.netlab.fill_command, text),
                          help=f"{summary} (edit in the command bar)")
