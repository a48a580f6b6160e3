"""A saved log in the console: `netlab tui --log FILE` shows what a lab
recorded, read-only, with the traffic view, filters, detail and ladder."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from pathlib import Path

from textual.widgets import Tree
from tui_support import SIZE, output_text, static_text, tree_labels, until

from lab import Lab
from lab.commands import Interpreter
from lab.eventlog import EventKind
from lab.logfile import load_log
from lab.tui.app import NetlabApp
from lab.tui.conversation import ConversationScreen
from lab.tui.ladder import Way


def saved_smtp_session(tmp_path: Path) -> Path:
    """A real SMTP session (smtplib against a lab server), saved with `log save`."""
    path = tmp_path / "session.jsonl"
    with Lab.start() as lab:
        server = lab.serve("smtp", name="mx")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as smtp:
            smtp.sendmail("carol@lab.test", ["alice@lab.test"], "Subject: hi\r\n\r\nhello\r\n")
        Interpreter(lab).execute("wait 0.2", 10)
        (result,) = Interpreter(lab).execute(f"log save {path}", 30)
        assert "saved" in result.text
    return path


async def test_a_saved_log_shows_its_traffic_tree_detail_and_ladder_read_only(tmp_path: Path) -> None:
    path = saved_smtp_session(tmp_path)
    saved = load_log(path)
    with Lab.start(log=saved) as lab:
        app = NetlabApp(lab, title=f"netlab — {path}", saved=str(path))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.traffic.rows) > 5, what="the saved events in the view")
            summaries = [e.summary for e in app.traffic.rows]
            assert any(s.startswith("MAIL FROM:<carol@lab.test>") for s in summaries), summaries
            assert any("mx" in label and "smtp" in label for label in tree_labels(app))
            assert any(label.startswith("○ mx#1") for label in tree_labels(app))
            assert "saved log, read-only" in static_text(app, "#titlebar")
            assert "read-only" in output_text(app)
            assert not app.commandbar.display
            # no commands, recording, scenarios or talk on a saved log
            await pilot.press("colon", "r", "s", "t")
            assert not app.commandbar.input.has_focus and app.scenario_run is None
            assert not lab.endpoints
            # the detail: decoded fields of a saved message
            app.traffic.focus()
            index = next(i for i, e in enumerate(app.traffic.rows)
                         if e.kind is EventKind.MESSAGE and e.summary.startswith("RCPT TO"))
            app.traffic.select_index(index + 1)
            await pilot.press("up")
            await until(pilot, lambda: app.query_one("#detail").event is not None, what="the detail")  # type: ignore[attr-defined]
            fields = app.query_one("#fields", Tree)
            labels = [str(n.label) for n in fields.root.children]
            assert any("alice@lab.test" in label for label in labels), labels
            assert "72 63 70 74" in static_text(app, "#hex")  # smtplib writes "rcpt", as it was sent
            # the ladder of that connection, both ways
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, ConversationScreen), what="the ladder")
            screen = app.screen
            assert isinstance(screen, ConversationScreen)
            ways = {r.way for r in screen.ladder.rungs}
            assert {Way.TO_SERVER, Way.TO_CLIENT} <= ways
            await pilot.press("escape")
            # the filter narrows what a saved log shows, as it does live
            await pilot.press("slash")
            app.query_one("#filter").value = "RCPT"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await until(pilot, lambda: all("RCPT" in e.summary for e in app.traffic.rows) and app.traffic.rows,
                        what="only RCPT rows")


def test_tui_log_refuses_a_file_it_cannot_read_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 1}\nnot json\n')
    for path in (bad, tmp_path / "missing.jsonl"):
        done = subprocess.run([sys.executable, "-m", "lab", "tui", "--log", str(path)], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and str(path) in done.stderr, done.stderr
