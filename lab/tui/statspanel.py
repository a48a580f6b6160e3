"""Sparklines of events/s and bytes/s for each endpoint.

Tests: tests/tui/test_app.py, tests/tui/test_pieces.py
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from lab.text import human_bytes
from lab.tui.rates import Rates, sparkline
from lab.tui.traffic import protocol_colour

__all__ = ["StatsPanel", "stats_lines"]


def stats_lines(rates: Rates, protocols: dict[str, str], names: list[str], width: int,
                height: int) -> list[Text]:
    """Two rows per endpoint (events/s, then bytes/s) while they fit; one
    row each when they do not, so every busy endpoint stays in view; past
    the height, the count of the rest."""
    two_rows = len(names) * 2 <= height
    shown = names if two_rows or len(names) <= height else names[:max(0, height - 1)]
    spark_width = max(4, width - (22 if two_rows else 28))
    lines = []
    for name in shown:
        events, payload = rates.events[name], rates.bytes[name]
        colour = protocol_colour(protocols.get(name, ""))
        per_second = f" {human_bytes(int(payload[-1])) + '/s':>{10 if two_rows else 9}}" if payload else ""
        head = [(f"{name[:9]:<9} ", f"bold {colour}"), (sparkline(events, spark_width), colour)]
        if two_rows:
            lines.append(Text.assemble(*head, f" {events[-1]:>6.0f} ev/s" if events else ""))
            lines.append(Text.assemble(f"{'':<9} ", (sparkline(payload, spark_width), "dim " + colour),
                                       (per_second, "dim")))
        else:
            lines.append(Text.assemble(*head, f" {events[-1]:>5.0f}/s" if events else "", (per_second, "dim")))
    if len(shown) < len(names):
        lines.append(Text(f"+{len(names) - len(shown)} more, quieter", "dim"))
    return lines


class StatsPanel(Static):
    """Events/s and bytes/s over the last minute, per endpoint (see :func:`stats_lines`)."""

    def __init__(self, rates: Rates, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.rates = rates
        self.protocols: dict[str, str] = {}

    def redraw(self, order: Iterable[str] = ()) -> None:
        width = max(10, self.size.width or 30)
        height = max(1, self.size.height or 10)
        names = self.rates.busiest(order)
        if len(self.protocols) > 4 * len(names) + 100:  # short-lived clients come and go
            self.protocols = {n: p for n, p in self.protocols.items() if n in self.rates.events}
        if not names:
            self.update(Text("no traffic yet", "dim"))
            return
        self.update(Text("\n").join(stats_lines(self.rates, self.protocols, names, width, height)))
