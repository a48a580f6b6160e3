"""Rich renderings of labs, endpoints, connections and event slices.

The core classes' ``_repr_pretty_`` (IPython's terminal) and
``_repr_html_`` (Jupyter) call these functions.  Nothing here imports
IPython: a method with that name is all IPython looks for.

Tests: tests/shell/test_shell_session.py, tests/shell/test_notebook.py
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lab.eventlog import Event, EventKind, EventSlice, format_event
from lab.text import human_bytes, table

if TYPE_CHECKING:
    from lab.connection import Connection
    from lab.endpoints import Endpoint
    from lab.lab import Lab

__all__ = ["html_of", "pretty", "text_of"]

ENDPOINT_COLUMNS = (
    ("name", "name"),
    ("kind", "kind"),
    ("protocol", "proto"),
    ("address", "address"),
    ("state", "state"),
    ("connections", "conns"),
    ("in", "in"),
    ("out", "out"),
)
EVENT_COLUMNS = ("seq", "time", "who", "what", "summary")
MAX_ROWS = 200  # an HTML table past this size helps nobody; the log keeps everything


def _endpoint_rows(endpoints: Iterable[Endpoint]) -> list[dict[str, Any]]:
    rows = []
    for ep in endpoints:
        row = ep.status()
        row["in"] = human_bytes(row["bytes_in"])
        row["out"] = human_bytes(row["bytes_out"])
        rows.append(row)
    return rows


def _hooks(endpoint: Endpoint) -> list[str]:
    return [f"{kind}: {getattr(fn, '__name__', 'hook')}{'' if replace else ' (observes)'}"
            for kind, fn, replace in endpoint.hooks()]


def _clock(event: Event) -> str:
    """``12:00:01.234``, local time."""
    return time.strftime("%H:%M:%S", time.localtime(event.wall)) + f".{int(event.wall * 1000) % 1000:03d}"


def _what(event: Event) -> str:
    if event.kind in (EventKind.MESSAGE, EventKind.DATA):
        return event.direction.arrow + (" raw" if event.kind is EventKind.DATA else "")
    return event.kind.value


# -- text --------------------------------------------------------------------


def text_of(obj: Any) -> str:
    """A multi-line plain-text description of a lab object."""
    from lab.connection import Connection
    from lab.endpoints import Endpoint
    from lab.lab import Lab

    if isinstance(obj, Lab):
        return _lab_text(obj)
    if isinstance(obj, Endpoint):
        return _endpoint_text(obj)
    if isinstance(obj, Connection):
        return repr(obj)
    if isinstance(obj, EventSlice):
        return _events_text(obj)
    return repr(obj)


def _lab_text(lab: Lab) -> str:
    head = repr(lab)
    rows = _endpoint_rows(list(lab.endpoints.values()))
    if not rows:
        return head + "\n(no endpoints yet: serve one, e.g. lab.serve(\"echo\"))"
    return head + "\n" + table(rows, ENDPOINT_COLUMNS)


def _endpoint_text(endpoint: Endpoint) -> str:
    from lab.endpoints import Can

    lines = [repr(endpoint)]
    if endpoint.can(Can.LISTEN):
        status = endpoint.status()
        lines.append(f"  {status['accepted']} accepted, {status.get('refused', 0)} refused")
    conns = endpoint.live_connections()
    lines += [f"  {conn.status()}" for conn in conns[:MAX_ROWS]]
    pending = sum(conn.pending for conn in conns)
    if pending and endpoint.can(Can.SEND):
        lines.append(f"  {pending} messages not yet read (c.receive() / c.expect(...))")
    hooks = _hooks(endpoint)
    if hooks:
        lines.append("  hooks: " + ", ".join(hooks))
    return "\n".join(lines)


def _events_text(events: Sequence[Event]) -> str:
    if not events:
        return "(no events)"
    return "\n".join(format_event(e) for e in events)


# -- HTML --------------------------------------------------------------------

_STYLE = "font-family: monospace; border-collapse: collapse"


def _html_table(headings: Sequence[str], rows: Iterable[Sequence[Any]], caption: str) -> str:
    esc = html.escape
    out = [f'<table class="netlab" style="{_STYLE}"><caption style="text-align: left">{esc(caption)}</caption>',
           "<thead><tr>" + "".join(f'<th style="text-align: left">{esc(h)}</th>' for h in headings)
           + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td style="text-align: left">{esc(str(c))}</td>' for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def html_of(obj: Any) -> str:
    """An HTML rendering (a captioned table) of a lab object."""
    from lab.connection import Connection
    from lab.endpoints import Endpoint
    from lab.lab import Lab

    if isinstance(obj, Lab):
        rows = _endpoint_rows(list(obj.endpoints.values()))
        return _html_table([h for _, h in ENDPOINT_COLUMNS],
                           ([r[k] for k, _ in ENDPOINT_COLUMNS] for r in rows), repr(obj))
    if isinstance(obj, Endpoint):
        conns = obj.live_connections()[:MAX_ROWS]
        body = _html_table(["connection", "state", "peer", "in", "out"],
                           (_conn_row(c) for c in conns), repr(obj))
        hooks = _hooks(obj)
        if hooks:
            body += f"<p>hooks: {html.escape(', '.join(hooks))}</p>"
        return body
    if isinstance(obj, Connection):
        return _html_table(["connection", "state", "peer", "in", "out"], [_conn_row(obj)], obj.id)
    if isinstance(obj, EventSlice):
        shown = obj[-MAX_ROWS:]
        caption = f"{len(obj)} events" + (f" (last {len(shown)} shown)" if len(shown) < len(obj) else "")
        return _html_table(EVENT_COLUMNS, ([e.seq, _clock(e), e.conn or e.endpoint, _what(e),
                                            e.summary] for e in shown), caption)
    return html.escape(repr(obj))


def _conn_row(conn: Connection) -> list[Any]:
    from lab.connection import format_address

    peer = format_address(conn.peer) if conn.peer else "?"
    return [conn.id, conn.state.value, peer, f"{human_bytes(conn.bytes_in)} / {conn.msgs_in} msg",
            f"{human_bytes(conn.bytes_out)} / {conn.msgs_out} msg"]


def pretty(obj: Any, p: Any, cycle: bool) -> None:
    """The body of every ``_repr_pretty_``: ``p`` is IPython's printer."""
    if cycle:
        p.text(repr(obj))
        return
    lines = text_of(obj).split("\n")
    for i, line in enumerate(lines):
        if i:
            p.break_()
        p.text(line)
