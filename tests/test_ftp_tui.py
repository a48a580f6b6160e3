"""FTP's data connections in the console (lab/tui/endpoints.py,
lab/tui/ladder.py): nested under their control connection in the
endpoints tree, live and from a saved log, and on its ladder, each rung
tagged with the child's suffix."""

from __future__ import annotations

import asyncio
import ftplib
import re
import socket
import time
from pathlib import Path
from typing import Any

from helpers import wait_until

from lab import Lab
from lab.commands import Interpreter
from lab.logfile import load_log
from lab.tui.app import NetlabApp
from lab.tui.ladder import Way, build_ladder

SIZE = (120, 40)


def fetch_hello(port: int) -> None:
    client = ftplib.FTP()
    client.connect("127.0.0.1", port, timeout=30)
    client.login("alice", "wonderland")
    got = bytearray()
    client.retrbinary("RETR /pub/hello.txt", got.extend)
    assert bytes(got) == b"hello, world\n"
    client.quit()


def test_the_ladder_of_a_control_connection_shows_its_transfers(lab: Lab) -> None:
    """f#1's ladder holds f#1.d1's open, transfer and close, tagged [d1]; the parent's own rungs are untagged."""
    srv = lab.serve("ftp", name="f")
    fetch_hello(srv.port)
    wait_until(lambda: not srv.connections, what="the control connection to close")
    ladder = build_ladder(lab.log.query(), "f#1", server_side=True)
    texts = [r.text for r in ladder.rungs]
    transfer = next(r for r in ladder.rungs if r.text.startswith("[d1] RETR /pub/hello.txt: 13 bytes"))
    assert transfer.way is Way.TO_CLIENT
    assert any(t.startswith("[d1] open: ") for t in texts) and any(t.startswith("[d1] close: ") for t in texts)
    assert any(t.startswith("RETR /pub/hello.txt") for t in texts)  # the command, on the control connection
    assert ladder.client.startswith("client 127.0.0.1:")  # the control connection's ends, not the child's
    assert build_ladder(lab.log.query(), "f#1.d1", server_side=True).rungs  # a child alone has its ladder too


def labels_by_depth(app: NetlabApp) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []

    def walk(node: Any, depth: int) -> None:
        for child in node.children:
            out.append((depth, str(child.label)))
            walk(child, depth + 1)

    walk(app.endpoints_tree.root, 0)
    return out


def nested_under(labels: list[tuple[int, str]], child: str) -> str:
    """The label of the node right above the one that starts with ``child``."""
    for i, (depth, label) in enumerate(labels):
        if re.match(rf"[●○] {re.escape(child)}\b", label):
            return next(text for d, text in reversed(labels[:i]) if d == depth - 1)
    raise AssertionError(f"no node for {child}: {labels}")


def test_a_live_data_connection_is_nested_under_its_control_connection(lab: Lab) -> None:
    """While a STOR's data connection is open, the tree shows f#1.d1 under f#1."""
    srv = lab.serve("ftp", name="f")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as ctl:
        reader = ctl.makefile("rb")
        reader.readline()
        ctl.sendall(b"USER alice\r\nPASS wonderland\r\nEPSV\r\n")
        for _ in range(3):
            reply = reader.readline()
        port = int(re.search(rb"\|\|\|(\d+)\|", reply).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as data:
            ctl.sendall(b"STOR /upload/slow.txt\r\n")
            assert reader.readline().startswith(b"150")
            data.sendall(b"partial")
            wait_until(lambda: any(c.children for c in srv.live_connections()), what="the data connection")

            async def look() -> list[tuple[int, str]]:
                app = NetlabApp(lab)
                async with app.run_test(size=SIZE) as pilot:
                    deadline = time.monotonic() + 30
                    while not any("f#1.d1" in label for _, label in labels_by_depth(app)):
                        assert time.monotonic() < deadline, labels_by_depth(app)
                        await pilot.pause(0.05)
                    return labels_by_depth(app)

            labels = asyncio.run(look())
        assert reader.readline().startswith(b"226")
        reader.close()
    assert nested_under(labels, "f#1.d1").startswith("● f#1 ")


def test_a_saved_log_nests_data_connections_too(tmp_path: Path) -> None:
    """netlab tui --log: f#1.d1 under f#1, from the events alone."""
    path = tmp_path / "ftp.jsonl"
    with Lab.start() as lab:
        srv = lab.serve("ftp", name="f")
        fetch_hello(srv.port)
        wait_until(lambda: not srv.connections, what="the control connection to close")
        (result,) = Interpreter(lab).execute(f"log save {path}", 30)
        assert "saved" in result.text
    with Lab.start(log=load_log(path)) as saved:

        async def look() -> list[tuple[int, str]]:
            app = NetlabApp(saved, saved=str(path))
            async with app.run_test(size=SIZE) as pilot:
                deadline = time.monotonic() + 30
                while not any("f#1.d1" in label for _, label in labels_by_depth(app)):
                    assert time.monotonic() < deadline, labels_by_depth(app)
                    await pilot.pause(0.05)
                return labels_by_depth(app)

        labels = asyncio.run(look())
    assert nested_under(labels, "f#1.d1").startswith("○ f#1 ")
