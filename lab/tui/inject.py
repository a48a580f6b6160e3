"""A small modal that injects bytes into a connection: toward the server
or the client of a proxied one (as if the other side had sent them), or
a server's or client's peer.

Tests: tests/tui/test_proxy_console.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from lab.commands import unescape
from lab.commands.inject import connection_named
from lab.errors import LabError
from lab.protocols._base import Role, Transport, escape_bytes
from lab.tui.bridge import on_reactor

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["InjectPrompt", "inject_text"]

_HINT = ("escapes like \\r \\n \\xHH work; over TCP the protocol's line ending is added unless the text ends"
         " with \\n · Enter injects · Esc cancels")


def inject_text(lab: Lab, conn_id: str, text: str, to: Role) -> str:
    """Inject ``text`` (escapes read, a line ending added over TCP) into
    connection ``conn_id`` (or an endpoint's newest) toward ``to``; on the
    reactor.  Returns what was done, as a line to show."""
    conn = connection_named(lab, conn_id)
    data = unescape(text)
    if conn.transport is Transport.TCP and not data.endswith(b"\n"):
        data += conn.endpoint.spec.line_ending
    conn.inject(data, to)
    return f"injected {escape_bytes(data, 60)} into {conn.id} toward the {to.value}"


class InjectPrompt(ModalScreen[str | None]):
    """Asks for a connection, a side and the bytes; dismisses with what
    was injected (a line to show), or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, lab: Lab, conn: str = "", to: Role = Role.SERVER) -> None:
        super().__init__()
        self.lab = lab
        self.conn = conn
        self.to = to

    def compose(self) -> ComposeResult:
        with Vertical(id="inject"):
            yield Label("inject bytes into a connection", id="inject-title")
            yield Input(self.conn, placeholder="connection (px#1), or an endpoint: its newest connection",
                        id="inject-conn")
            with RadioSet(id="inject-to"):
                yield RadioButton("toward the server", value=self.to is Role.SERVER, id="inject-server")
                yield RadioButton("toward the client", value=self.to is Role.CLIENT, id="inject-client")
            yield Input(placeholder="the bytes, e.g. RSET or 421 going away", id="inject-text")
            yield Static(Text(_HINT, "dim"), id="inject-message")

    def on_mount(self) -> None:
        self.query_one("#inject-text" if self.conn else "#inject-conn", Input).focus()

    def say(self, text: str, *, error: bool = False) -> None:
        message = Text("✗ " + text, "bold red") if error else Text(text, "dim")
        self.query_one("#inject-message", Static).update(message)

    @property
    def toward(self) -> Role:
        pressed = self.query_one("#inject-to", RadioSet).pressed_button
        return Role.CLIENT if pressed is not None and pressed.id == "inject-client" else Role.SERVER

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        conn = self.query_one("#inject-conn", Input).value.strip()
        text = self.query_one("#inject-text", Input).value
        if not conn:
            self.say("which connection? e.g. px#1", error=True)
            self.query_one("#inject-conn", Input).focus()
            return
        if event.input.id == "inject-conn" and not text:
            self.query_one("#inject-text", Input).focus()
            return
        self._inject(conn, text, self.toward)

    @work(exclusive=True, group="inject")
    async def _inject(self, conn: str, text: str, to: Role) -> None:
        try:
            done = await on_reactor(self.lab, inject_text, self.lab, conn, text, to)
        except LabError as exc:
            self.say(str(exc), error=True)
            return
        self.dismiss(done)
