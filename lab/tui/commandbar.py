"""The command bar: the command language with completion and history,
and talk mode, where each line typed is sent from one client.

A statement that does not parse shows an error under the bar and runs
nothing (every statement is parsed before the first one runs).

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

from lab.commands import Interpreter, Result, unescape
from lab.endpoints import Can, Client
from lab.errors import LabError
from lab.protocols._base import Transport, escape_bytes

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["CommandBar", "CommandInput", "complete_line"]

HISTORY_LIMIT = 500


def complete_line(interp: Interpreter, line: str) -> tuple[str, list[str]]:
    """``line`` with its last word completed as far as the candidates
    agree, and the candidates."""
    for _ in range(3):
        try:
            candidates = interp.complete(line)
            break
        except RuntimeError:  # the reactor changed the endpoints mid-iteration: look again
            continue
    else:
        return line, []
    if not candidates:
        return line, []
    stmt = line.rsplit(";", 1)[-1]
    prefix = "" if not stmt or stmt[-1].isspace() else stmt.split()[-1]
    common = min(candidates)
    last = max(candidates)
    while not last.startswith(common):
        common = common[:-1]
    if len(common) <= len(prefix):
        return line, candidates
    done = line[: len(line) - len(prefix)] + common
    return (done + " " if len(candidates) == 1 else done), candidates


class CommandSuggester(Suggester):
    """Greys in the completion when there is exactly one."""

    def __init__(self, interp: Interpreter) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.interp = interp

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value[-1].isspace():
            return None
        try:
            done, candidates = complete_line(self.interp, value)
        except Exception:
            return None
        return done.rstrip() if len(candidates) == 1 and done.rstrip() != value else None


class CommandInput(Input):
    """An Input with Tab completion and ↑ ↓ history."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    class Completions(Message):
        def __init__(self, candidates: list[str]) -> None:
            super().__init__()
            self.candidates = candidates

    def __init__(self, interp: Interpreter, **kwargs: object) -> None:
        super().__init__(suggester=CommandSuggester(interp), **kwargs)  # type: ignore[arg-type]
        self.interp = interp
        self.history: list[str] = []
        self._position = 0
        self.completing = True

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-HISTORY_LIMIT]
        self._position = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._position = max(0, min(len(self.history), self._position + step))
        self.value = self.history[self._position] if self._position < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if not self.completing:
            return
        done, candidates = complete_line(self.interp, self.value)
        if done != self.value:
            self.value = done
            self.cursor_position = len(done)
        if len(candidates) > 1:
            self.post_message(self.Completions(candidates))


class CommandBar(Vertical):
    """``:`` prompt, error line; posts :class:`Ran` for each success."""

    class Ran(Message):
        """Statements ran: ``line`` as typed and what each produced."""

        def __init__(self, line: str, results: list[Result]) -> None:
            super().__init__()
            self.line = line
            self.results = results

    class Left(Message):
        """A command line was taken: the keys go back to the views (as
        after vim's `:`); `:` and Up bring the line back."""

    class Failed(Message):
        """A line was refused or failed: ``text`` says why, whole."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Said(Message):
        """Talk mode sent ``data`` from ``client``."""

        def __init__(self, client: str, data: bytes) -> None:
            super().__init__()
            self.client = client
            self.data = data

    PLACEHOLDER = "command: serve echo as e · connect e as c · send c hi · help   (Tab completes, ↑ history)"

    def __init__(self, lab: Lab, interp: Interpreter, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lab = lab
        self.interp = interp
        self.talking_to: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="command-row"):
            yield Label(":", id="command-prompt")
            yield CommandInput(self.interp, placeholder=self.PLACEHOLDER, id="command")
        yield Static("", id="command-error")

    @property
    def input(self) -> CommandInput:
        return self.query_one("#command", CommandInput)

    def show_error(self, text: str) -> None:
        self.query_one("#command-error", Static).update(Text("✗ " + text, "bold red"))
        self.add_class("has-error")
        self.post_message(self.Failed(text))  # the line above is cut at the width; the output keeps it whole

    def show_hint(self, text: str) -> None:
        self.query_one("#command-error", Static).update(Text(text, "dim"))
        self.remove_class("has-error")

    def clear_message(self) -> None:
        self.query_one("#command-error", Static).update("")
        self.remove_class("has-error")

    def on_command_input_completions(self, message: CommandInput.Completions) -> None:
        self.show_hint("  ".join(message.candidates[:40]))

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.has_class("has-error"):
            self.clear_message()

    # -- talk mode ---------------------------------------------------------

    def talk_to(self, client: str | None) -> None:
        """Send each line typed from ``client`` (None: back to commands)."""
        self.talking_to = client
        prompt = self.query_one("#command-prompt", Label)
        self.input.completing = client is None
        if client is None:
            prompt.update(":")
            self.input.placeholder = self.PLACEHOLDER
            self.remove_class("talking")
        else:
            prompt.update(f"talk {client} ›")
            self.input.placeholder = f"a line to send from {client}; escapes like \\r \\x00 work (Esc: commands)"
            self.add_class("talking")
        self.clear_message()

    # -- running -----------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.value)

    def submit(self, line: str) -> None:
        """Run ``line`` (or, in talk mode, send it)."""
        if self.talking_to is not None:
            self._say(self.talking_to, line)
            return
        if not line.strip():
            self.post_message(self.Left())
            return
        self.input.remember(line)
        try:
            self.interp.parse(line)
        except LabError as exc:
            self.input.value = line
            self.show_error(str(exc))  # nothing ran: the line stays for fixing
            return
        self.clear_message()
        self.input.value = ""
        self._run(line)
        self.post_message(self.Left())

    @work(exclusive=False, group="commands")
    async def _run(self, line: str) -> None:
        try:
            results = await self.interp.aexecute(line)
        except LabError as exc:
            self.show_error(str(exc))
            return
        self.post_message(self.Ran(line, results))

    @work(exclusive=False, group="talk")
    async def _say(self, name: str, line: str) -> None:
        try:
            found = self.lab.get(name)
            if not found.can(Can.SEND):
                raise LabError(f"{name!r} is a {found.kind}, not a client")
            client = cast(Client, found)
            data = unescape(line)
            if client.transport is Transport.TCP and not data.endswith(b"\n"):
                data += client.spec.line_ending
            await client.asend(data)
        except LabError as exc:
            self.show_error(f"{name}: {exc}")
            return
        self.input.value = ""
        self.show_hint(f"sent {escape_bytes(data)}")
        self.post_message(self.Said(name, data))
