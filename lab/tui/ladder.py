"""The conversation of one connection as a ladder (sequence) diagram:
client on the left, server on the right, one rung per message, the way
a textbook draws a protocol exchange.  Rendered as text for the screen,
and exported as Mermaid and as SVG.

Tests: tests/tui/test_pieces.py
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

from lab.eventlog import Direction, Event, EventKind

__all__ = ["Ladder", "Rung", "Way", "build_ladder"]

_SHOWN = frozenset({EventKind.OPEN, EventKind.MESSAGE, EventKind.CLOSE, EventKind.ERROR, EventKind.INFO})


class Way(enum.Enum):
    TO_SERVER = "c2s"
    TO_CLIENT = "s2c"
    NOTE = "note"


@dataclass(frozen=True)
class Rung:
    seq: int
    wall: float
    way: Way
    text: str


@dataclass(frozen=True)
class Ladder:
    """Who talks (``client``, ``server``) and the rungs, in order."""

    conn: str
    client: str
    server: str
    rungs: tuple[Rung, ...]

    # -- text -------------------------------------------------------------

    def to_text(self, width: int = 80) -> list[str]:
        """The diagram as lines of at most ``width`` cells: a time column,
        the client's lifeline, the rungs, the server's lifeline."""
        width = max(width, 40)
        left = 9  # "HH:MM:SS "
        span = width - left - 2  # room between the two lifelines
        head = " " * left + self.client
        lines = [(head + " " * max(1, width - len(head) - len(self.server)) + self.server)[:width],
                 " " * left + "|" + " " * span + "|"]
        for rung in self.rungs:
            stamp = time.strftime("%H:%M:%S", time.localtime(rung.wall))
            room = span - 6
            text = rung.text if len(rung.text) <= room else rung.text[: room - 1] + "…"
            if rung.way is Way.NOTE:
                body = f" {text} ".center(span, "·")
            else:
                label = f" {text} "
                dashes = span - len(label)
                lead = max(dashes // 2, 2)
                tail = max(dashes - lead, 2)
                if rung.way is Way.TO_SERVER:
                    body = "-" * lead + label + "-" * (tail - 1) + ">"
                else:
                    body = "<" + "-" * (lead - 1) + label + "-" * tail
            lines.append(f"{stamp} |{body[:span]:<{span}}|")
        lines.append(" " * left + "|" + " " * span + "|")
        return lines

    # -- mermaid ----------------------------------------------------------

    def to_mermaid(self) -> str:
        """A Mermaid ``sequenceDiagram``."""
        out = [
            "sequenceDiagram",
            f"    participant C as {_mermaid_text(self.client)}",
            f"    participant S as {_mermaid_text(self.server)}",
        ]
        for rung in self.rungs:
            text = _mermaid_text(rung.text) or " "
            if rung.way is Way.TO_SERVER:
                out.append(f"    C->>S: {text}")
            elif rung.way is Way.TO_CLIENT:
                out.append(f"    S->>C: {text}")
            else:
                out.append(f"    Note over C,S: {text}")
        return "\n".join(out) + "\n"

    # -- svg --------------------------------------------------------------

    def to_svg(self, *, width: int = 720, step: int = 32) -> str:
        """A self-contained SVG drawing of the ladder."""
        top, left, right = 56, 110, width - 110
        height = top + step * (len(self.rungs) + 1)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">',
            "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" "
            "markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\"/></marker></defs>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{left}" y="24" text-anchor="middle" font-weight="bold">{xml_escape(self.client)}</text>',
            f'<text x="{right}" y="24" text-anchor="middle" font-weight="bold">{xml_escape(self.server)}</text>',
            f'<line x1="{left}" y1="{top - 20}" x2="{left}" y2="{height - 8}" stroke="#888"/>',
            f'<line x1="{right}" y1="{top - 20}" x2="{right}" y2="{height - 8}" stroke="#888"/>',
        ]
        for i, rung in enumerate(self.rungs):
            y = top + step * i + step // 2
            text = xml_escape(rung.text if len(rung.text) <= 72 else rung.text[:71] + "…")
            stamp = time.strftime("%H:%M:%S", time.localtime(rung.wall))
            parts.append(f'<text x="8" y="{y + 4}" fill="#888">{stamp}</text>')
            if rung.way is Way.NOTE:
                parts.append(f'<text x="{width // 2}" y="{y + 4}" text-anchor="middle" '
                             f'font-style="italic" fill="#555">{text}</text>')
                continue
            x1, x2, colour = (left, right, "#1f6feb") if rung.way is Way.TO_SERVER else (right, left, "#2da44e")
            parts.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
                         f'stroke-width="1.5" marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{width // 2}" y="{y - 5}" text-anchor="middle">{text}</text>')
        parts.append("</svg>")
        return "\n".join(parts) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid reads ; and # as syntax and < > as HTML: write them as entity codes
    out = []
    for ch in text:
        if ch in "#;<>":
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def build_ladder(events: Iterable[Event], conn: str, *, server_side: bool,
                 client: str = "", server: str = "") -> Ladder:
    """The ladder of connection ``conn`` from its events.

    ``server_side`` says whose log entries these are: on a server's
    connection what arrives came from the client; on a client's, what is
    sent goes to the server.
    """
    rungs = []
    for e in events:
        if e.conn != conn or e.kind not in _SHOWN:
            continue
        if e.kind is EventKind.MESSAGE:
            inbound = e.direction is Direction.IN
            way = Way.TO_SERVER if inbound == server_side else Way.TO_CLIENT
            rungs.append(Rung(e.seq, e.wall, way, e.summary))
        else:
            rungs.append(Rung(e.seq, e.wall, Way.NOTE, f"{e.kind.value}: {e.summary}"))
    # an open event reads "CLIENT_ADDR -> SERVER_ADDR" from either side
    ends = next((r.text[len("open: "):].split(" -> ") for r in rungs if r.text.startswith("open: ")), [])
    client_addr, server_addr = (f" {ends[0]}", f" {ends[1]}") if len(ends) == 2 else ("", "")
    if server_side:
        client = client or f"client{client_addr}"
        server = server or f"{conn}{server_addr}"
    else:
        client = client or f"{conn}{client_addr}"
        server = server or f"server{server_addr}"
    return Ladder(conn, client, server, tuple(rungs))
