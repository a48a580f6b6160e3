"""The TUI driven through Textual's Pilot: every panel and key binding
over a live lab (real servers and clients on the reactor thread)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Label, Tree
from tui_support import SIZE, command, output_text, static_text, tree_labels, until

from lab import Lab
from lab.eventlog import EventKind
from lab.tui.app import NetlabApp
from lab.tui.conversation import ConversationScreen
from lab.tui.help import HelpScreen
from lab.tui.ladder import Way
from lab.tui.picker import ClientPicker


async def serve_and_talk(pilot: Pilot[object], lab: Lab) -> None:
    await command(pilot, "serve echo as e1; connect e1 as c1; send c1 hello; expect c1 hello")
    await until(pilot, lambda: "hello" in output_text(pilot.app), what="the script's output")  # type: ignore[arg-type]


async def test_serve_from_the_command_bar_shows_the_server_in_the_tree(lab: Lab) -> None:
    """`serve` typed in the bar starts a server; the tree lists it with its address."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e1")
        await until(pilot, lambda: "e1" in lab.endpoints, what="the server")
        await until(pilot, lambda: any("e1" in label for label in tree_labels(app)), what="the tree node")
        label = next(label for label in tree_labels(app) if "e1" in label)
        assert f":{lab['e1'].port}" in label  # type: ignore[attr-defined]
        assert "› serve echo as e1" in output_text(app)
        assert "listening" in output_text(app)


async def test_a_long_error_is_kept_whole_in_the_output(lab: Lab) -> None:
    """The error line under the bar is cut at the width; the output panel
    has it whole, wrapped."""
    app = NetlabApp(lab)
    async with app.run_test(size=(80, 24)) as pilot:
        await command(pilot, "connect echo 127.0.0.1:1 --timeout 5 as a_client_with_a_long_name")
        await until(pilot, lambda: "is a server listening on 127.0.0.1:1?" in " ".join(output_text(app).split()),
                    what="the whole error in the output")
        assert all(len(line.text) <= 80 for line in app.output.lines)


async def test_a_connection_appears_under_its_server(lab: Lab) -> None:
    """A client connecting makes a connection node under the server, and a client node."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: any("e1#1" in label for label in tree_labels(app)), what="e1#1")
        labels = tree_labels(app)
        assert any(label.startswith("clients") for label in labels)
        assert any("c1" in label for label in labels)


async def test_events_appear_in_the_traffic_view(lab: Lab) -> None:
    """What the lab logs shows up as rows, in log order, with arrows."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: any(e.kind is EventKind.MESSAGE and e.conn == "e1#1" for e in app.traffic.rows),
                    what="a message row")
        seqs = [e.seq for e in app.traffic.rows]
        assert seqs == sorted(seqs)
        lines = [app.traffic.render_line(y).text for y in range(app.traffic.size.height)]
        assert any("c1" in line and "->" in line and '"hello\\r\\n"' in line for line in lines)
        assert any("e1#1" in line and "<-" in line for line in lines)


async def test_detail_shows_decoded_fields_and_hex(lab: Lab) -> None:
    """Selecting a message shows its fields as a tree and its bytes as hex + ASCII."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve finger --user alice=Alice as f; connect f as q; send q alice")
        await until(pilot, lambda: any(e.kind is EventKind.MESSAGE and e.conn == "f#1" for e in app.traffic.rows),
                    what="the query at the server")
        app.traffic.focus()
        index = next(i for i, e in enumerate(app.traffic.rows) if e.kind is EventKind.MESSAGE and e.conn == "f#1")
        app.traffic.select_index(index + 1)
        await pilot.press("up")  # the key moves the cursor onto the query
        await until(pilot, lambda: app.query_one("#detail").event is not None, what="the detail")  # type: ignore[attr-defined]
        assert app.traffic.selected is not None and app.traffic.selected.conn == "f#1"
        fields = app.query_one("#fields", Tree)
        labels = [str(n.label) for n in fields.root.children]
        assert "FingerQuery" in str(fields.root.label)
        assert any(label.startswith("user: 'alice'") for label in labels), labels
        hexdump = static_text(app, "#hex")
        assert "61 6c 69 63" in hexdump and "|alice..|" in hexdump


async def test_copy_keys_put_the_bytes_on_the_clipboard(lab: Lab) -> None:
    """y copies the selected message as an escaped string, x as hex."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: any(e.conn == "c1" and e.kind is EventKind.MESSAGE for e in app.traffic.rows))
        app.traffic.focus()
        app.traffic.select_index(next(i for i, e in enumerate(app.traffic.rows)
                                      if e.conn == "c1" and e.kind is EventKind.MESSAGE))
        await pilot.press("y")
        assert app.clipboard == '"hello\\r\\n"'
        await pilot.press("x")
        assert app.clipboard == "68656c6c6f0d0a"


async def test_filter_bar_narrows_the_view_and_rejects_nonsense(lab: Lab) -> None:
    """`/` opens the filter; `e:NAME in` keeps that endpoint's received events; a bad filter changes nothing."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e1; serve echo as e2; connect e1 as a; connect e2 as b;"
                             " send a one; send b two; expect b two")
        await until(pilot, lambda: "two" in output_text(app))
        await until(pilot, lambda: any(e.endpoint == "e2" and e.kind is EventKind.MESSAGE for e in app.traffic.rows))
        await pilot.press("escape")  # from the command bar back to the traffic view
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        assert box.display and box.has_focus
        box.value = "e:e2 in"
        await pilot.press("enter")
        rows = list(app.traffic.rows)
        assert rows and all(e.endpoint == "e2" and e.direction.value == "in" for e in rows)
        assert "filter: e:e2 in" in app.traffic.border_subtitle
        await pilot.press("slash")
        box.value = "k:nonsense"
        await pilot.press("enter")
        assert "unknown event kind" in static_text(app, "#command-error")
        assert list(app.traffic.rows) == rows
        box.value = "/tw+o/ -c:b"
        await pilot.press("enter")
        assert [e.conn for e in app.traffic.rows] and all(e.conn == "e2#1" for e in app.traffic.rows)
        await pilot.press("slash")
        box.value = ""
        await pilot.press("enter")
        assert not box.display
        assert any(e.endpoint == "e1" for e in app.traffic.rows)


async def test_tree_selection_scopes_the_traffic_view(lab: Lab) -> None:
    """Enter on an endpoint in the tree shows only its events; `a` shows all again."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: any("c1" in label for label in tree_labels(app)))
        tree = app.endpoints_tree
        tree.focus()
        node = next(n for n in tree._by_key.values() if n.data is not None and n.data.endpoint == "c1")
        tree.move_cursor(node)
        await pilot.press("enter")
        await until(pilot, lambda: app.traffic.scope.endpoint == "c1")
        assert app.traffic.rows and all(e.endpoint == "c1" for e in app.traffic.rows)
        await pilot.press("a")
        assert any(e.endpoint == "e1" for e in app.traffic.rows)


async def test_ladder_view_draws_the_messages_in_order_and_exports(lab: Lab, tmp_path: Path) -> None:
    """`l` on a connection's event opens its ladder: rungs in order, both ways; m and s save Mermaid and SVG."""
    app = NetlabApp(lab, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e1; connect e1 as c1; send c1 first; expect c1 first;"
                             " send c1 second; expect c1 second")
        await until(pilot, lambda: "second" in output_text(app))
        await until(pilot, lambda: sum(e.conn == "e1#1" and e.kind is EventKind.MESSAGE for e in app.traffic.rows) >= 4)
        app.traffic.focus()
        app.traffic.select_index(next(i for i, e in enumerate(app.traffic.rows) if e.conn == "e1#1"))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConversationScreen))
        screen = app.screen
        assert isinstance(screen, ConversationScreen)
        messages = [(r.way, r.text) for r in screen.ladder.rungs if r.way is not Way.NOTE]
        assert messages == [(Way.TO_SERVER, '"first\\r\\n"'), (Way.TO_CLIENT, '"first\\r\\n"'),
                            (Way.TO_SERVER, '"second\\r\\n"'), (Way.TO_CLIENT, '"second\\r\\n"')]
        drawn = static_text(app, "#ladder")
        assert drawn.index("first") < drawn.index("second")
        assert '"first\\r\\n" --' in drawn and "-->|" in drawn and "|<--" in drawn
        await pilot.press("m")
        await pilot.press("s")
        mermaid = (tmp_path / "netlab-e1-1.mmd").read_text()
        arrows = [line for line in mermaid.splitlines() if "->>" in line]
        assert arrows == ['    C->>S: "first\\r\\n"', '    S->>C: "first\\r\\n"',
                          '    C->>S: "second\\r\\n"', '    S->>C: "second\\r\\n"']
        svg = ET.parse(tmp_path / "netlab-e1-1.svg").getroot()
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert texts.index('"first\\r\\n"') < texts.index('"second\\r\\n"')
        # the ladder follows the connection while it is open
        await lab["c1"].asend(b"third\r\n")  # type: ignore[attr-defined]
        await until(pilot, lambda: "third" in static_text(app, "#ladder"), what="a new rung")
        assert [r.text for r in screen.ladder.rungs if r.way is not Way.NOTE][-2:] == ['"third\\r\\n"'] * 2
        await pilot.press("escape")
        assert not isinstance(app.screen, ConversationScreen)


async def test_bad_commands_show_an_inline_error_and_change_nothing(lab: Lab) -> None:
    """A typo, or a bad statement after good ones, runs nothing and keeps the line for fixing."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        before = (dict(lab.endpoints), lab.log.total)
        await command(pilot, "sned c1 hi")
        assert "unknown command 'sned'" in static_text(app, "#command-error")
        assert "did you mean 'send'" in static_text(app, "#command-error")
        assert app.commandbar.input.value == "sned c1 hi"
        await command(pilot, "serve echo as ok; serve nosuchproto as bad")
        assert "nosuchproto" in static_text(app, "#command-error")
        await pilot.pause(0.3)
        assert (dict(lab.endpoints), lab.log.total) == before
        # a run-time failure is reported inline too
        await command(pilot, "send nobody hi")
        await until(pilot, lambda: "no endpoint named 'nobody'" in static_text(app, "#command-error"))
        assert dict(lab.endpoints) == before[0]


async def test_tab_completes_and_arrows_recall_history(lab: Lab) -> None:
    """Tab completes commands and endpoint names; ↑ brings back the previous line. A line taken gives
    the keys back to the views (`o` acts, not typed), as after vim's `:`."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as srv")
        await until(pilot, lambda: "srv" in lab.endpoints)
        box = app.commandbar.input
        assert app.traffic.has_focus and not box.has_focus
        await pilot.press("o")
        assert box.value == "" and app.output.has_class("tall")
        await pilot.press("o", "colon")
        assert box.has_focus
        box.value = "conn"
        box.cursor_position = 4
        await pilot.press("tab")
        assert box.value == "connect "
        await pilot.press("s", "r", "tab")  # "s" alone is also smtp
        assert box.value == "connect srv "
        box.value = ""
        await pilot.press("up")
        assert box.value == "serve echo as srv"


async def test_talk_sends_each_line_from_a_client(lab: Lab) -> None:
    """`t` picks the client; each line typed is sent and the echo shows in the traffic view."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e1; connect e1 as c1")
        await until(pilot, lambda: "c1" in lab.endpoints)
        app.traffic.focus()
        await pilot.press("t")
        assert app.commandbar.talking_to == "c1"
        assert app.commandbar.input.has_focus
        app.commandbar.input.value = "over to you"
        await pilot.press("enter")
        echoed = '"over to you\\r\\n"'
        await until(pilot, lambda: any(e.conn == "c1" and e.direction.value == "in" and e.summary == echoed
                                       for e in app.traffic.rows), what="the echo")
        await pilot.press("escape")
        assert app.commandbar.talking_to is None


async def test_talk_without_a_client_says_how_to_get_one(lab: Lab) -> None:
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        assert "connect one first" in static_text(app, "#command-error")


async def test_help_fits_an_80_column_terminal(lab: Lab) -> None:
    """At 80x24 the help box stays inside the screen (it is 96 wide where there is room)."""
    app = NetlabApp(lab)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        box = app.screen.query_one("#help").region
        assert box.x >= 0 and box.right <= 80, box


async def test_help_follow_and_pause_keys(lab: Lab) -> None:
    """? opens and closes help; f toggles follow; space pauses and resumes the view."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "filter language" in static_text(app, "#help-text")
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        assert app.traffic.follow
        await pilot.press("f")
        assert not app.traffic.follow
        await pilot.press("f")
        assert app.traffic.follow
        await pilot.press("space")
        assert app.traffic.paused
        await command(pilot, "serve echo as e1")
        await until(pilot, lambda: app.traffic.held > 0, what="an event held while paused")
        assert not any(e.endpoint == "e1" for e in app.traffic.rows)
        app.traffic.focus()
        await pilot.press("space")
        assert any(e.endpoint == "e1" for e in app.traffic.rows)


async def test_stats_draw_sparklines_per_endpoint(lab: Lab) -> None:
    """The stats panel shows events/s and bytes/s for each endpoint with traffic."""
    app = NetlabApp(lab, stats_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: "e1" in static_text(app, "#stats") and "ev/s" in static_text(app, "#stats"))
        assert "B/s" in static_text(app, "#stats")


async def test_palette_runs_a_command(lab: Lab) -> None:
    """ctrl+p offers the command language: typing a statement and Enter runs it."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"serve echo as pal")

        def first_option() -> str:
            lists = app.screen.query("OptionList")
            if not lists or not lists.first().option_count:
                return ""
            return str(lists.first().get_option_at_index(0).prompt)

        await until(pilot, lambda: "run: serve echo as pal" in first_option(), what="the palette's run entry")
        await pilot.press("enter")
        await until(pilot, lambda: "pal" in lab.endpoints, what="the palette to run the command")


async def test_demo_startup_fills_the_screen(lab: Lab) -> None:
    """With the demo as startup, servers and client traffic appear without any key."""
    import asyncio

    from lab.demo import run_demo

    app = NetlabApp(lab, startup=lambda: lab.reactor.run_async(run_demo(lab, asyncio.Event(), interval=0.2)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any(e.endpoint.startswith("demo") and e.kind is EventKind.MESSAGE
                                       for e in app.traffic.rows), what="demo traffic")
        assert any(label.startswith("servers") for label in tree_labels(app))


async def test_cursor_keys_and_clicks_move_through_events(lab: Lab) -> None:
    """Home, End, PageUp/PageDown, ↑ ↓ and a click move the cursor; moving up leaves follow mode, End resumes it."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        lines = "; ".join(f"send c1 line{i}; expect c1 line{i}" for i in range(20))
        await command(pilot, f"serve echo as e1; connect e1 as c1; {lines}")
        await until(pilot, lambda: "line19" in output_text(app))
        await until(pilot, lambda: sum(e.kind is EventKind.MESSAGE for e in app.traffic.rows) >= 80)
        app.traffic.focus()
        rows = app.traffic.rows
        await pilot.press("home")
        assert app.traffic.selected is rows[0] and not app.traffic.follow
        await pilot.press("down", "down")
        assert app.traffic.selected is rows[2]
        await pilot.press("pagedown")
        page = app.traffic.scrollable_content_region.height - 1
        assert app.traffic.selected is rows[2 + page]
        await pilot.press("pageup", "up")
        assert app.traffic.selected is rows[1]
        await pilot.press("end")
        assert app.traffic.selected is rows[-1] and app.traffic.follow
        await pilot.click("#traffic", offset=(5, 3))
        assert app.traffic.selected is rows[int(app.traffic.scroll_y) + 2]  # the border is row 0
        assert app.query_one("#detail").event is app.traffic.selected  # type: ignore[attr-defined]


async def test_ladder_from_the_tree_and_copy_as_mermaid(lab: Lab) -> None:
    """`l` on a client in the tree draws its connection; `c` copies the Mermaid text."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await serve_and_talk(pilot, lab)
        await until(pilot, lambda: any("c1" in label for label in tree_labels(app)))
        tree = app.endpoints_tree
        tree.focus()
        tree.move_cursor(next(n for n in tree._by_key.values() if n.data is not None and n.data.endpoint == "c1"))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConversationScreen))
        screen = app.screen
        assert isinstance(screen, ConversationScreen) and screen.conn == "c1" and not screen.server_side
        await pilot.press("c")
        assert app.clipboard.startswith("sequenceDiagram\n")
        assert '    C->>S: "hello\\r\\n"' in app.clipboard.splitlines()


async def test_output_panel_grows_and_q_quits_with_status_0(lab: Lab) -> None:
    """`o` makes the command output tall and small again, showing the newest lines both times; `q` ends
    the app with exit status 0."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        small = app.output.size.height
        for n in range(60):
            app.output.write(f"line {n}")
        await pilot.press("o")
        await until(pilot, lambda: app.output.size.height > small and app.output.scroll_y == app.output.max_scroll_y,
                    what="the tall panel at its newest lines")
        app.output.scroll_home(animate=False)  # reading old lines when it shrinks back
        await pilot.press("o")
        await until(pilot, lambda: app.output.size.height == small and app.output.max_scroll_y > 0
                    and app.output.scroll_y == app.output.max_scroll_y, what="the small panel at its newest lines")
        await pilot.press("q")
        await until(pilot, lambda: app.return_code is not None, what="the app to exit")
    assert app.return_code == 0


async def test_talk_offers_a_list_when_several_clients_could_talk(lab: Lab) -> None:
    """With two clients and none selected, `t` opens a picker; Enter on one starts talk mode with it."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e1; connect e1 as first; connect e1 as second")
        await until(pilot, lambda: "second" in lab.endpoints)
        await pilot.press("escape", "t")
        await until(pilot, lambda: isinstance(app.screen, ClientPicker), what="the picker")
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.commandbar.talking_to is not None)
        assert app.commandbar.talking_to == "second"
        assert "talk second" in str(app.query_one("#command-prompt", Label).content)


async def test_the_title_counts_clients_now_and_so_far(lab: Lab) -> None:
    """Short-lived clients (the demo's) are seldom there when the title is drawn: it says how many
    there are now and, when more came and went, how many so far."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve echo as e; connect e as a; connect e as b; stop a")
        await until(pilot, lambda: "a" not in lab.endpoints and "b" in lab.endpoints, what="one client left")
        app.refresh_status()
        assert "1 clients (2 so far)" in static_text(app, "#titlebar")
        await command(pilot, "stop b")
        await until(pilot, lambda: "b" not in lab.endpoints, what="no client left")
        app.refresh_status()
        assert "0 clients (2 so far)" in static_text(app, "#titlebar")
