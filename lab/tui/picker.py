"""A small modal list for picking a client to talk through.

Tests: tests/tui/test_app.py
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

__all__ = ["ClientPicker"]


class ClientPicker(ModalScreen[str | None]):
    """Returns the chosen client's name, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, clients: list[tuple[str, str]]) -> None:
        super().__init__()
        self.clients = clients

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("talk through which client?", id="picker-title")
            yield OptionList(*[Option(f"{name}  {where}", id=name) for name, where in self.clients],
                             id="picker-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
