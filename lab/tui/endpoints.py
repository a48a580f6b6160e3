"""The endpoints tree: servers and proxies with their connections,
clients, and any other endpoint kinds, with state, address (a proxy's:
where it listens -> its target), counters, and how many messages
intercepts hold there.

Tests: tests/tui/test_app.py, tests/tui/test_proxy_console.py
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from lab.connection import Connection, format_address
from lab.endpoints import Can
from lab.eventlog import Event, EventKind
from lab.text import human_bytes
from lab.tui.traffic import Scope, protocol_colour

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["EndpointsTree"]

_STATE_STYLE = {"listening": "green", "open": "green", "starting": "yellow", "opening": "yellow",
                "closing": "yellow", "stopped": "red", "closed": "red"}


def _plural(kind: str) -> str:
    if kind.endswith("y"):
        return kind[:-1] + "ies"  # proxy -> proxies
    return kind + ("es" if kind.endswith(("s", "x")) else "s")


def short_address(address: str) -> str:
    """``tcp://127.0.0.1:7007`` -> ``:7007``; other hosts and UDP stay
    explicit.  A proxy's ``LISTEN -> TARGET`` is shortened on both sides,
    with an arrow: ``:7025 → :2525``."""
    if " -> " in address:
        return " → ".join(short_address(part) for part in address.split(" -> "))
    if address.startswith("127.0.0.1:"):
        return address[len("127.0.0.1"):]
    address = address.replace("://127.0.0.1:", "://:")
    return address[len("tcp://"):] if address.startswith("tcp://") else address.replace("://", ":")


def _held_mark(label: Text, held: int) -> None:
    if held:
        label.append(f" ⏸{held}", "bold #e5c07b")


def endpoint_label(status: dict[str, Any], held: int = 0) -> Text:
    """State, name, address, connections (a listener's), ``held`` (what
    intercepts hold there) and bytes."""
    state = str(status.get("state", ""))
    proto = str(status.get("protocol", ""))
    label = Text.assemble(
        ("● " if state in ("listening", "open") else "○ ", _STATE_STYLE.get(state, "white")),
        (str(status["name"]), f"bold {protocol_colour(proto)}"),
        " ",
        (short_address(str(status.get("address", ""))), "dim"),
    )
    if status.get("kind") in ("server", "proxy"):
        label.append(f" {status.get('connections', 0)}⇄", "cyan")
    _held_mark(label, held)
    total = int(status.get("bytes_in", 0)) + int(status.get("bytes_out", 0))
    label.append(f" {human_bytes(total)}", "dim")
    return label


def connection_label(conn: Connection, held: int = 0) -> Text:
    state = conn.state.value
    peer = format_address(conn.peer) if conn.peer else "?"
    label = Text.assemble(
        ("● " if state == "open" else "○ ", _STATE_STYLE.get(state, "white")),
        (conn.id, "bold"),
        " ",
        (peer.replace("127.0.0.1:", ":"), "dim"),
    )
    _held_mark(label, held)
    label.append(f" ↓{human_bytes(conn.bytes_in)} ↑{human_bytes(conn.bytes_out)}", "dim")
    return label


def held_counts(lab: Lab) -> tuple[Counter[str], Counter[str]]:
    """How many messages intercepts hold, by endpoint and by connection
    (read from the UI thread: the held list is copied in one step)."""
    by_endpoint: Counter[str] = Counter()
    by_conn: Counter[str] = Counter()
    for held in lab.intercepts.held():
        by_endpoint[held.endpoint] += 1
        by_conn[held.conn] += 1
    return by_endpoint, by_conn


class EndpointsTree(Tree[Scope]):
    """Endpoints grouped by kind; selecting one narrows the traffic view."""

    class ScopeChanged(Message):
        """The user picked an endpoint, a connection, or everything."""

        def __init__(self, scope: Scope) -> None:
            super().__init__()
            self.scope = scope

    def __init__(self, lab: Lab, *, id: str | None = None) -> None:
        super().__init__("lab", data=Scope(), id=id)
        self.lab = lab
        self.show_root = False
        self.guide_depth = 2
        self._by_key: dict[tuple[str, ...], TreeNode[Scope]] = {}

    def on_mount(self) -> None:
        self.refresh_from_lab()

    def show_saved(self, events: Iterable[Event]) -> None:
        """The endpoints and connections a saved log names, from its
        events (nothing runs: no state, just what each one carried)."""
        protocols: dict[str, str] = {}
        listeners: set[str] = set()
        conns: dict[str, dict[str, int]] = {}  # endpoint -> conn -> bytes
        totals: Counter[str] = Counter()
        for event in events:
            name = event.endpoint
            if not name:
                continue
            if event.protocol:
                protocols.setdefault(name, event.protocol)
            if event.kind is EventKind.LISTEN:
                listeners.add(name)
            size = len(event.raw) if event.raw is not None and event.kind is not EventKind.MESSAGE else 0
            totals[name] += size
            if event.conn and event.conn != name:
                per = conns.setdefault(name, {})
                per[event.conn] = per.get(event.conn, 0) + size
        self.clear()
        self._by_key.clear()
        groups: dict[str, TreeNode[Scope]] = {}
        for name in dict.fromkeys([*protocols, *totals]):
            group = "servers" if name in listeners or name in conns else "clients"
            parent = groups.get(group)
            if parent is None:
                parent = groups[group] = self.root.add(Text(group, "bold"), data=Scope(), expand=True)
            proto = protocols.get(name, "")
            label = Text.assemble(("○ ", "dim"), (name, f"bold {protocol_colour(proto)}"), " ", (proto, "dim"),
                                  (f" {human_bytes(totals[name])}", "dim"))
            children = conns.get(name, {})
            node = parent.add(label, data=Scope(endpoint=name), expand=True, allow_expand=bool(children))
            shown: dict[str, TreeNode[Scope]] = {}
            for conn, size in children.items():
                leaf = Text.assemble(("○ ", "dim"), (conn, "bold"), (f" {human_bytes(size)}", "dim"))
                # a connection's own connections (FTP's data connections, f#1.d1) sit under it
                above = shown.get(conn.rpartition(".")[0]) if "." in conn else None
                if above is not None:
                    above.allow_expand = True
                    above.add_leaf(leaf, data=Scope(endpoint=name, conn=conn))
                else:
                    shown[conn] = node.add(leaf, data=Scope(endpoint=name, conn=conn), expand=True,
                                           allow_expand=False)

    def refresh_from_lab(self) -> None:
        """Bring nodes and labels in line with the lab (on the UI thread:
        reads a snapshot of the lab's endpoints)."""
        wanted: dict[tuple[str, ...], tuple[tuple[str, ...] | None, Text, Scope, bool]] = {}
        held, held_by_conn = held_counts(self.lab)
        for endpoint in list(self.lab.endpoints.values()):
            group = (_plural(endpoint.kind.label),)
            wanted.setdefault(group, (None, Text(group[0], "bold"), Scope(), True))
            try:
                status = endpoint.status()
            except Exception:  # an endpoint mid-construction or mid-teardown
                continue
            key: tuple[str, ...] = (group[0], endpoint.name)
            # a listener's connections are its children; a client is its one connection
            has_conns = endpoint.can(Can.LISTEN)
            wanted[key] = (group, endpoint_label(status, held[endpoint.name]), Scope(endpoint=endpoint.name),
                           has_conns)
            if has_conns:
                for conn in endpoint.live_connections():
                    here = (key[0], key[1], conn.id)
                    wanted[here] = (key, connection_label(conn, held_by_conn[conn.id]),
                                    Scope(endpoint=endpoint.name, conn=conn.id), bool(conn.children))
                    self._children(wanted, here, endpoint.name, conn, held_by_conn)
            else:
                for conn in endpoint.live_connections():
                    # a client's own connections (its FTP data connections) under the client
                    self._children(wanted, key, endpoint.name, conn, held_by_conn)
                    if conn.children:
                        wanted[key] = (*wanted[key][:3], True)
        # children first, so no node is removed twice
        for key in sorted((k for k in self._by_key if k not in wanted), key=len, reverse=True):
            self._by_key.pop(key).remove()
        for key, (parent_key, label, scope, branch) in wanted.items():
            node = self._by_key.get(key)
            if node is None:
                parent = self.root if parent_key is None else self._by_key[parent_key]
                node = parent.add(label, data=scope, expand=True, allow_expand=branch)
                self._by_key[key] = node
            else:
                if node.label != label:
                    node.set_label(label)
                if node.allow_expand != branch:
                    node.allow_expand = branch  # a connection that opened children of its own

    @staticmethod
    def _children(wanted: dict[tuple[str, ...], tuple[tuple[str, ...] | None, Text, Scope, bool]],
                  parent: tuple[str, ...], endpoint: str, conn: Connection, held: Counter[str]) -> None:
        """Nodes for the connections ``conn`` opened (FTP's data connections)."""
        for child in list(conn.children):
            wanted[(*parent, child.id)] = (parent, connection_label(child, held[child.id]),
                                           Scope(endpoint=endpoint, conn=child.id), False)

    def on_tree_node_selected(self, event: Tree.NodeSelected[Scope]) -> None:
        event.stop()
        self.post_message(self.ScopeChanged(event.node.data or Scope()))
