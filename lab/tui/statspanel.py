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

__all__ = ["StatsPanel"]


class StatsPanel(Static):
    """Two rows per endpoint: events/s and bytes/s over the last minute."""

    def __init__(self, rates: Rates, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.rates = rates
        self.protocols: dict[str, str] = {}

    def redraw(self, order: Iterable[str] = ()) -> None:
        width = max(10, self.size.width or 30)
        rows = max(1, (self.size.height or 10) // 2)
        names = self.rates.busiest(order)
        if len(self.protocols) > 4 * len(names) + 100:  # short-lived clients come and go
            self.protocols = {n: p for n, p in self.protocols.items() if n in self.rates.events}
        if not names:
            self.update(Text("no traffic yet", "dim"))
            return
        spark_width = max(4, width - 22)
        lines = []
        for name in names[:rows]:
            events = self.rates.events[name]
            payload = self.rates.bytes[name]
            colour = protocol_colour(self.protocols.get(name, ""))
            lines.append(Text.assemble(
                (f"{name[:9]:<9} ", f"bold {colour}"),
                (sparkline(events, spark_width), colour),
                f" {events[-1]:>6.0f} ev/s" if events else "",
            ))
            lines.append(Text.assemble(
                (f"{'':<9} ", ""),
                (sparkline(payload, spark_width), "dim " + colour),
                (f" {human_bytes(int(payload[-1])) + '/s':>10}" if payload else "", "dim"),
            ))
        self.update(Text("\n").join(lines))
