"""The conversation of one connection as a ladder (sequence) diagram:
client on the left, server on the right, one rung per message, the way
a textbook draws a protocol exchange.  A proxied connection has a third
lifeline, the proxy, between them: a message passing through crosses
it; one an intercept holds stops there until it is released, edited or
dropped.  Rendered as text for the screen, and exported as Mermaid and
as SVG.

Tests: tests/tui/test_pieces.py, tests/tui/test_proxy_console.py
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape as xml_escape

from lab.eventlog import Direction, Event, EventKind
from lab.protocols._base import escape_bytes

__all__ = ["Fate", "Ladder", "Rung", "Way", "build_ladder", "build_proxy_ladder"]


class Way(enum.Enum):
    """Which way a rung goes: end to end (through the proxy, if there is
    one), along one leg of a proxied connection, or a note across."""

    TO_SERVER = "c2s"
    TO_CLIENT = "s2c"
    NOTE = "note"
    CLIENT_TO_PROXY = "c2p"
    PROXY_TO_SERVER = "p2s"
    SERVER_TO_PROXY = "s2p"
    PROXY_TO_CLIENT = "p2c"


_SHOWN = frozenset({EventKind.OPEN, EventKind.MESSAGE, EventKind.CLOSE, EventKind.ERROR, EventKind.INFO})

_RIGHTWARD = frozenset({Way.TO_SERVER, Way.CLIENT_TO_PROXY, Way.PROXY_TO_SERVER})
_CLIENT_LEG = frozenset({Way.CLIENT_TO_PROXY, Way.PROXY_TO_CLIENT})
# (from, to) as 0 client, 1 proxy, 2 server
_ENDS = {Way.TO_SERVER: (0, 2), Way.TO_CLIENT: (2, 0), Way.CLIENT_TO_PROXY: (0, 1), Way.PROXY_TO_SERVER: (1, 2),
         Way.SERVER_TO_PROXY: (2, 1), Way.PROXY_TO_CLIENT: (1, 0)}


class Fate(enum.Enum):
    """What became of a message at the proxy."""

    PASSED = "passed"  # went on as it came
    HELD = "held"  # stopped by an intercept
    QUEUED = "queued"  # waited behind a held message
    RELEASED = "released"
    EDITED = "edited"
    DROPPED = "dropped"
    INJECTED = "injected"  # written by the lab's user, not by either side


_MARKS = {Fate.HELD: "⏸ held {}", Fate.QUEUED: "… queued", Fate.RELEASED: "released {}",
          Fate.EDITED: "✎ edited {}", Fate.DROPPED: "✗ dropped {}", Fate.INJECTED: "injected"}


@dataclass(frozen=True)
class Rung:
    seq: int
    wall: float
    way: Way
    text: str
    fate: Fate = Fate.PASSED
    held: str = ""  # the intercept's id (h1) of a held, released, edited or dropped message

    @property
    def mark(self) -> str:
        """What happened at the proxy in a few words ("⏸ held h1"), or ""."""
        pattern = _MARKS.get(self.fate)
        return pattern.format(self.held).rstrip() if pattern else ""

    @property
    def rightward(self) -> bool:
        return self.way in _RIGHTWARD


@dataclass(frozen=True)
class Ladder:
    """Who talks (``client``, ``server``, and ``proxy`` between them on a
    proxied connection) and the rungs, in order."""

    conn: str
    client: str
    server: str
    rungs: tuple[Rung, ...]
    proxy: str = ""

    # -- text -------------------------------------------------------------

    def to_text(self, width: int = 80) -> list[str]:
        """The diagram as lines of at most ``width`` cells: a time column,
        the client's lifeline, the rungs, the server's lifeline (and the
        proxy's between them)."""
        return [line for line, _ in self.rows(width)]

    def rows(self, width: int = 80) -> list[tuple[str, Rung | None]]:
        """:meth:`to_text`'s lines, each with the rung it draws (None for
        the heading and the lifelines' ends)."""
        left = 9  # "HH:MM:SS "
        if self.proxy:
            return self._proxied_rows(max(width, 50), left)
        width = max(width, 40)
        span = width - left - 2  # room between the two lifelines
        head = " " * left + self.client
        blank = " " * left + "|" + " " * span + "|"
        rows: list[tuple[str, Rung | None]] = [
            ((head + " " * max(1, width - len(head) - len(self.server)) + self.server)[:width], None),
            (blank, None)]
        for rung in self.rungs:
            if rung.way is Way.NOTE:
                body = f" {_cut(rung.text, span - 6)} ".center(span, "·")
            else:
                body = _arrow(_cut(rung.text, span - 6), span, rung.rightward)
            rows.append((f"{_stamp(rung)} |{body[:span]:<{span}}|", rung))
        rows.append((blank, None))
        return rows

    def _proxied_rows(self, width: int, left: int) -> list[tuple[str, Rung | None]]:
        first = (width - left - 3) // 2  # the client's leg
        second = width - left - 3 - first  # the server's leg
        blank = " " * left + "|" + " " * first + "|" + " " * second + "|"
        rows: list[tuple[str, Rung | None]] = [(self._proxied_head(width, left, first), None), (blank, None)]
        for rung in self.rungs:
            if rung.way is Way.NOTE:
                span = first + second + 1
                rows.append((f"{_stamp(rung)} |{f' {_cut(rung.text, span - 6)} '.center(span, '·')}|", rung))
                continue
            if rung.way in (Way.TO_SERVER, Way.TO_CLIENT):
                # through the proxy: the sender's leg carries the words, the other the arrow on
                if rung.way is Way.TO_SERVER:
                    one, two = _arrow(_cut(rung.text, first - 6), first, True), _arrow("", second, True)
                else:
                    one, two = _arrow("", first, False), _arrow(_cut(rung.text, second - 6), second, False)
            else:
                on_client_leg = rung.way in _CLIENT_LEG
                room, other = (first, second) if on_client_leg else (second, first)
                if rung.fate is Fate.DROPPED:  # it goes no further than the proxy
                    leg = (f" ✗ {_cut(rung.text, room - 4)}".ljust(room) if not on_client_leg
                           else f"{_cut(rung.text, room - 4)} ✗ ".rjust(room))
                else:
                    leg = _arrow(_cut(rung.text, room - 6), room, rung.rightward)
                mark = _cut(rung.mark, other - 2)  # beside the proxy's lifeline, on the other leg
                beside = f" {mark}".ljust(other) if on_client_leg else f"{mark} ".rjust(other)
                one, two = (leg, beside) if on_client_leg else (beside, leg)
            rows.append((f"{_stamp(rung)} |{one[:first]:<{first}}|{two[:second]:<{second}}|", rung))
        rows.append((blank, None))
        return rows

    def _proxied_head(self, width: int, left: int, first: int) -> str:
        """The three names over their lifelines, the proxy's centred on its
        own and cut where it would run into a neighbour."""
        cells = [" "] * width
        client = self.client[: first]
        server = self.server[: width - left - first - 2]
        server_at = width - len(server)
        proxy_at = max(left + len(client) + 1, left + 1 + first - len(self.proxy) // 2)
        proxy = self.proxy[: max(0, server_at - 1 - proxy_at)]
        for at, name in ((left, client), (server_at, server), (proxy_at, proxy)):
            cells[at : at + len(name)] = name
        return "".join(cells).rstrip()

    # -- mermaid ----------------------------------------------------------

    def to_mermaid(self) -> str:
        """A Mermaid ``sequenceDiagram``."""
        out = ["sequenceDiagram", f"    participant C as {_mermaid_text(self.client)}"]
        if self.proxy:
            out.append(f"    participant P as {_mermaid_text(self.proxy)}")
        out.append(f"    participant S as {_mermaid_text(self.server)}")
        names = "CPS" if self.proxy else "C S"
        for rung in self.rungs:
            text = _mermaid_text(rung.text) or " "
            if rung.way is Way.NOTE:
                out.append(f"    Note over C,S: {text}")
                continue
            start, end = _ENDS[rung.way]
            mark = _mermaid_text(rung.mark)
            if rung.fate is Fate.DROPPED:
                out.append(f"    Note over P: {mark}: {text}")
                continue
            if rung.fate in (Fate.RELEASED, Fate.EDITED, Fate.INJECTED):
                out.append(f"    Note over P: {mark}")
            if self.proxy and 1 not in (start, end):  # through the proxy: both legs
                out.append(f"    {names[start]}->>P: {text}")
                out.append(f"    P->>{names[end]}: {text}")
            else:
                out.append(f"    {names[start]}->>{names[end]}: {text}")
            if rung.fate in (Fate.HELD, Fate.QUEUED):
                out.append(f"    Note over P: {mark}")
        return "\n".join(out) + "\n"

    # -- svg --------------------------------------------------------------

    def to_svg(self, *, width: int = 720, step: int = 32) -> str:
        """A self-contained SVG drawing of the ladder."""
        top = 56
        xs = (110, width // 2, width - 110)  # client, proxy, server
        height = top + step * (len(self.rungs) + 1)
        heads = [(xs[0], self.client), (xs[2], self.server)] + ([(xs[1], self.proxy)] if self.proxy else [])
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">',
            "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" "
            "markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\"/></marker></defs>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
        ]
        parts += [f'<text x="{x}" y="24" text-anchor="middle" font-weight="bold">{xml_escape(name)}</text>'
                  for x, name in heads]
        parts += [f'<line x1="{x}" y1="{top - 20}" x2="{x}" y2="{height - 8}" stroke="#888"/>' for x, _ in heads]
        for i, rung in enumerate(self.rungs):
            y = top + step * i + step // 2
            text = xml_escape(_cut(rung.text, 34 if self.proxy and rung.way is not Way.NOTE else 72))
            stamp = time.strftime("%H:%M:%S", time.localtime(rung.wall))
            parts.append(f'<text x="8" y="{y + 4}" fill="#888">{stamp}</text>')
            if rung.way is Way.NOTE:
                parts.append(f'<text x="{width // 2}" y="{y + 4}" text-anchor="middle" '
                             f'font-style="italic" fill="#555">{text}</text>')
                continue
            start, end = _ENDS[rung.way]
            x1, x2 = xs[start], xs[end]
            if rung.fate is Fate.DROPPED:
                parts.append(f'<text x="{(x1 + x2) // 2}" y="{y + 4}" text-anchor="middle" fill="#cf222e">'
                             f'✗ {text}</text>')
            else:
                colour = "#1f6feb" if rung.rightward else "#2da44e"
                through = self.proxy and 1 not in (start, end)  # two legs, an arrow on each
                for a, b in ((x1, xs[1]), (xs[1], x2)) if through else ((x1, x2),):
                    parts.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" '
                                 f'stroke-width="1.5" marker-end="url(#arrow)"/>')
                # through a proxy, the words sit on the sender's leg
                label_x = (x1 + xs[1]) // 2 if through else (x1 + x2) // 2
                parts.append(f'<text x="{label_x}" y="{y - 5}" text-anchor="middle">{text}</text>')
            if rung.mark:  # beside the proxy's lifeline, on the other leg
                anchor, x = ("start", xs[1] + 6) if rung.way in _CLIENT_LEG else ("end", xs[1] - 6)
                parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="{anchor}" font-style="italic" '
                             f'fill="#9a6700">{xml_escape(rung.mark)}</text>')
        parts.append("</svg>")
        return "\n".join(parts) + "\n"


def _stamp(rung: Rung) -> str:
    return time.strftime("%H:%M:%S", time.localtime(rung.wall))


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _arrow(text: str, span: int, rightward: bool) -> str:
    """``--- text --->`` (or ``<--- text ---``) filling ``span`` cells;
    without text, a plain arrow."""
    if not text:
        return "-" * (span - 1) + ">" if rightward else "<" + "-" * (span - 1)
    label = f" {text} "
    dashes = span - len(label)
    lead = max(dashes // 2, 2)
    tail = max(dashes - lead, 2)
    if rightward:
        return "-" * lead + label + "-" * (tail - 1) + ">"
    return "<" + "-" * (lead - 1) + label + "-" * tail


def _mermaid_text(text: str) -> str:
    # Mermaid reads ; and # as syntax and < > as HTML: write them as entity codes
    out = []
    for ch in text:
        if ch in "#;<>":
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)



# -- from the log -------------------------------------------------------------


def build_ladder(events: Iterable[Event], conn: str, *, server_side: bool,
                 client: str = "", server: str = "") -> Ladder:
    """The ladder of connection ``conn`` from its events.

    ``server_side`` says whose log entries these are: on a server's
    connection what arrives came from the client; on a client's, what is
    sent goes to the server.  The connection's children (``conn.d1``)
    appear on the same ladder, each rung tagged with its child's suffix.
    """
    rungs = []
    children = conn + "."  # its own connections (FTP's data connections, f#1.d1) share its ladder
    for e in events:
        if e.kind not in _SHOWN or (e.conn != conn and not e.conn.startswith(children)):
            continue
        tag = f"[{e.conn[len(children):]}] " if e.conn != conn else ""
        if e.kind is EventKind.MESSAGE:
            inbound = e.direction is Direction.IN
            way = Way.TO_SERVER if inbound == server_side else Way.TO_CLIENT
            rungs.append(Rung(e.seq, e.wall, way, tag + e.summary))
        else:
            rungs.append(Rung(e.seq, e.wall, Way.NOTE, tag + _note(e)))
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


# What an intercept logs (lab.intercept) about the messages it holds: the
# log is the only record of a hold once it is over.
_HELD = re.compile(r"held (h\d+): ")
_RELEASED = re.compile(r"released (h\d+)$")
_EDITED = re.compile(r"edited (h\d+): ")
_DROPPED = re.compile(r"dropped (h\d+): |(h\d+) dropped: ")
_INJECTED = re.compile(r"injected toward the (client|server): (\d+) bytes")

_LEGS = {Direction.IN: (Way.TO_SERVER, Way.CLIENT_TO_PROXY, Way.PROXY_TO_SERVER),
         Direction.OUT: (Way.TO_CLIENT, Way.SERVER_TO_PROXY, Way.PROXY_TO_CLIENT)}


def build_proxy_ladder(events: Iterable[Event], conn: str, *, client: str = "", proxy: str = "",
                       server: str = "") -> Ladder:
    """The three-lifeline ladder of proxied connection ``conn``: what the
    client sent (``in``) goes client -> proxy -> server, what the server
    sent (``out``) the other way.  An intercept's notes in the log say
    which messages stopped at the proxy and what became of them: a held
    message's rung ends at the proxy, and the rung that takes it on
    (released, edited: its new summary; dropped: none) comes when that
    happened; messages behind a held one wait with it."""
    return _ProxyRungs(conn).build(events, client, proxy, server)


class _ProxyRungs:
    """One pass over a proxied connection's events (see :func:`build_proxy_ladder`)."""

    def __init__(self, conn: str) -> None:
        self.conn = conn
        self.rungs: list[Rung] = []
        self.holding: dict[Direction, str] = {}  # direction -> the id holding it up
        self.waiting: dict[Direction, list[int]] = {Direction.IN: [], Direction.OUT: []}  # rungs behind a hold
        # directions released just now (the release's seq and time): what
        # waited goes on, unless it is held in turn (the next note says so)
        self.flushing: dict[Direction, tuple[int, float]] = {}
        self.last: tuple[int, Direction] | None = None  # the newest message: it passed, unless a hold follows
        self.held: dict[str, tuple[int, Direction]] = {}
        self.injected: int | None = None  # the rung of an injection, awaiting its bytes

    def build(self, events: Iterable[Event], client: str, proxy: str, server: str) -> Ladder:
        opened = ""
        for e in events:
            if e.conn != self.conn:
                continue
            if e.kind is EventKind.OPEN and not opened:
                opened = e.summary
            self.take(e)
        self.settle()
        # the open event reads "CLIENT -> PROXY -> SERVER" (UDP: "udp CLIENT -> SERVER")
        ends = opened.removeprefix("udp ").split(" -> ")
        if len(ends) == 2:
            ends.insert(1, "")
        named = [f" {end}" if end else "" for end in ends] if len(ends) == 3 else ["", "", ""]
        return Ladder(self.conn, client or f"client{named[0]}", server or f"server{named[2]}",
                      tuple(self.rungs), proxy=proxy or f"{self.conn}{named[1]}")

    def add(self, rung: Rung) -> int:
        self.rungs.append(rung)
        return len(self.rungs) - 1

    def take(self, e: Event) -> None:
        text = e.summary
        if e.kind is EventKind.DATA:  # chunks are not drawn; an injection's bytes label its rung
            if self.injected is not None and text.startswith("injected ") and e.raw is not None:
                self.rungs[self.injected] = replace(self.rungs[self.injected], text=escape_bytes(e.raw, 60))
                self.injected = None
            return
        if e.kind is EventKind.INFO and (m := _HELD.match(text)) and self.hold(m.group(1), text[m.end():]):
            return
        self.settle()
        self.injected = None
        if e.kind is EventKind.MESSAGE and e.direction in _LEGS:
            through, arriving, _ = _LEGS[e.direction]
            if e.direction in self.holding:
                self.waiting[e.direction].append(self.add(Rung(e.seq, e.wall, arriving, text, Fate.QUEUED)))
            else:
                self.last = (self.add(Rung(e.seq, e.wall, through, text)), e.direction)
        elif e.kind is EventKind.INFO and self.resolve(text, e):
            pass
        elif e.kind is EventKind.INFO and (m := _INJECTED.match(text)):
            way = Way.PROXY_TO_SERVER if m.group(1) == "server" else Way.PROXY_TO_CLIENT
            self.injected = self.add(Rung(e.seq, e.wall, way, f"{m.group(2)} bytes", Fate.INJECTED))
        elif e.kind in _SHOWN:
            self.add(Rung(e.seq, e.wall, Way.NOTE, _note(e)))

    def hold(self, held_id: str, rest: str) -> bool:
        """A hold: of a message that waited behind one just released, or of
        the one just decoded.  False when it is neither."""
        for direction, (seq, wall) in sorted(self.flushing.items(), key=lambda item: item[0].value):
            waiting = self.waiting[direction]
            for n, index in enumerate(waiting):
                if rest.startswith(self.rungs[index].text + " ("):
                    self.go_on(waiting[:n], seq, wall)
                    del waiting[: n + 1]
                    self.rungs[index] = replace(self.rungs[index], fate=Fate.HELD, held=held_id)
                    self.stop_at(held_id, index, direction)
                    return True
        if self.last is not None and rest.startswith(self.rungs[self.last[0]].text + " ("):
            index, direction = self.last
            self.rungs[index] = replace(self.rungs[index], way=_LEGS[direction][1], fate=Fate.HELD, held=held_id)
            self.stop_at(held_id, index, direction)
            return True
        return False

    def stop_at(self, held_id: str, index: int, direction: Direction) -> None:
        self.holding[direction] = held_id
        self.held[held_id] = (index, direction)
        self.flushing.pop(direction, None)
        self.last = None

    def resolve(self, text: str, e: Event) -> bool:
        """Released, edited or dropped: the held message's next rung."""
        for pattern, fate in ((_RELEASED, Fate.RELEASED), (_EDITED, Fate.EDITED), (_DROPPED, Fate.DROPPED)):
            m = pattern.match(text)
            if m is None:
                continue
            held_id = m.group(1) or m.group(2)
            if held_id not in self.held:
                return False
            index, direction = self.held.pop(held_id)
            summary = self.rungs[index].text
            if fate is Fate.EDITED:
                summary = _edited_summary(text[m.end():], summary)
            self.add(Rung(e.seq, e.wall, _LEGS[direction][2], summary, fate, held_id))
            if self.holding.get(direction) == held_id:
                del self.holding[direction]
                self.flushing[direction] = (e.seq, e.wall)
            return True
        return False

    def go_on(self, indexes: list[int], seq: int, wall: float) -> None:
        """Messages that waited go on to the other side."""
        for index in indexes:
            way = _LEGS[Direction.IN if self.rungs[index].rightward else Direction.OUT][2]
            self.add(Rung(seq, wall, way, self.rungs[index].text))

    def settle(self) -> None:
        """Whatever followed a release is over: what waited and was not
        held in turn went on."""
        for direction, (seq, wall) in self.flushing.items():
            self.go_on(self.waiting[direction], seq, wall)
            self.waiting[direction].clear()
        self.flushing.clear()
        self.last = None


def _edited_summary(rest: str, before: str) -> str:
    """The new summary in an edit's note, ``OLD -> NEW ("RAW")``: the raw
    part starts at the last ``("`` (its own quotes are escaped)."""
    rest = rest.removeprefix(before + " -> ") if rest.startswith(before + " -> ") else rest.split(" -> ", 1)[-1]
    cut = rest.rfind(' ("')
    return rest[:cut] if cut > 0 else rest


def _note(e: Event) -> str:
    return f"{e.kind.value}: {e.summary}"
