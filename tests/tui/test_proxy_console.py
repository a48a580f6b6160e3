"""The console over a proxy and its intercepts, driven through Textual's
Pilot over a live lab (a real SMTP server, proxy and client on sockets on
127.0.0.1): the proxy in the tree, the three-lifeline ladder, the held
list and its actions (release, drop, edit by fields and raw bytes,
inject), and an edit the protocol refuses."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TextArea
from tui_support import SIZE, command, output_text, static_text, tree_labels, until

from lab import Lab
from lab.eventlog import Direction, EventKind
from lab.tui.app import NetlabApp
from lab.tui.conversation import ConversationScreen
from lab.tui.editor import HeldEditor
from lab.tui.held import HeldScreen
from lab.tui.help import HelpScreen
from lab.tui.inject import InjectPrompt
from lab.tui.ladder import Fate, Way

SETUP = "serve smtp as mx; proxy smtp --to mx as px; connect smtp px as c; send c 'EHLO x'; expect c 250"


def received(lab: Lab, endpoint: str = "mx") -> list[str]:
    """What the server's connections received, as summaries."""
    return [e.summary for e in lab.log.snapshot()
            if e.endpoint == endpoint and e.kind is EventKind.MESSAGE and e.direction is Direction.IN]


def answered(lab: Lab, client: str = "c") -> list[str]:
    return [e.summary for e in lab.log.snapshot()
            if e.endpoint == client and e.kind is EventKind.MESSAGE and e.direction is Direction.IN]


async def ready(pilot: Pilot[object], lab: Lab, *breakpoints: str) -> None:
    """mx, px in front of it, client c greeted through px; ``breakpoints`` set on px."""
    await command(pilot, SETUP + "".join(f"; intercept px {b}" for b in breakpoints))
    await until(pilot, lambda: any(s.startswith("250 lab.test greets") for s in answered(lab)), what="EHLO's answer")
    await until(pilot, lambda: len(lab.intercepts.rules()) == len(breakpoints), what="the breakpoints")


async def hold(pilot: Pilot[object], lab: Lab, line: str, count: int = 1) -> None:
    """Send ``line`` from c and wait until ``count`` messages are held, and the title says so."""
    await lab["c"].asend(line + "\r\n")  # type: ignore[attr-defined]
    await until(pilot, lambda: len(lab.intercepts.held()) == count, what=f"{count} held")
    app = pilot.app
    assert isinstance(app, NetlabApp)
    await until(pilot, lambda: f"⏸ {count} held" in title(app), what="the title's count")


def title(app: NetlabApp) -> str:
    """The main screen's title bar, whichever screen is on top."""
    return str(app.screen_stack[0].query_one("#titlebar", Static).content)


async def show(pilot: Pilot[object], screen: ConversationScreen) -> None:
    pilot.app.push_screen(screen)
    await until(pilot, lambda: pilot.app.screen is screen and screen.is_mounted, what="the ladder")


async def open_held(pilot: Pilot[object]) -> HeldScreen:
    app = pilot.app
    await pilot.press("escape", "h")
    await until(pilot, lambda: isinstance(app.screen, HeldScreen), what="the held list")
    screen = app.screen
    assert isinstance(screen, HeldScreen)
    await until(pilot, lambda: screen.table.row_count == len(screen.lab.intercepts.held()), what="its rows")
    return screen


def rows(screen: HeldScreen) -> list[list[str]]:
    table: DataTable[object] = screen.table
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def edit(pilot: Pilot[object], screen: HeldScreen) -> HeldEditor:
    await pilot.press("e")
    await until(pilot, lambda: isinstance(pilot.app.screen, HeldEditor), what="the editor")
    editor = pilot.app.screen
    assert isinstance(editor, HeldEditor)
    return editor


async def test_a_proxy_is_a_node_with_its_connections_under_it(lab: Lab) -> None:
    """The tree groups proxies, shows where one listens -> its target and its connections, each a child node."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab)
        await until(pilot, lambda: any("px#1" in label for label in tree_labels(app)), what="px#1 in the tree")
        px, mx = lab["px"], lab["mx"]
        labels = tree_labels(app)
        assert labels.index("proxies") < next(i for i, label in enumerate(labels) if label.startswith("● px "))
        node = next(label for label in labels if label.startswith("● px "))
        assert f":{px.port} → :{mx.port}" in node and "1⇄" in node  # type: ignore[attr-defined]
        tree = app.endpoints_tree
        parent = next(n for n in tree._by_key.values() if n.data is not None and n.data.endpoint == "px"
                      and not n.data.conn)
        assert [str(child.label).split()[1] for child in parent.children] == ["px#1"]
        assert "1 proxy" in title(app)


async def test_ladder_of_a_proxied_smtp_exchange_has_three_lifelines(lab: Lab) -> None:
    """`l` on a proxy in the tree draws its connection: client, proxy and server; the client's words go right
    through the proxy to the server, the server's replies back the other way."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab)
        await command(pilot, "send c 'MAIL FROM:<a@lab.test>'; expect c 250")
        await until(pilot, lambda: any("sender <a@lab.test> ok" in s for s in answered(lab)), what="MAIL's answer")
        await until(pilot, lambda: any("px#1" in label for label in tree_labels(app)))
        tree = app.endpoints_tree
        tree.focus()
        tree.move_cursor(next(n for n in tree._by_key.values()  # the proxy: its newest connection
                              if n.data is not None and n.data.endpoint == "px" and not n.data.conn))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConversationScreen), what="the ladder")
        screen = app.screen
        assert isinstance(screen, ConversationScreen) and screen.proxied
        await until(pilot, lambda: sum(r.way is not Way.NOTE for r in screen.ladder.rungs) >= 5, what="5 rungs")
        messages = [(r.way, r.text.split(" ")[0]) for r in screen.ladder.rungs if r.way is not Way.NOTE]
        assert messages[:5] == [(Way.TO_SERVER, "EHLO"), (Way.TO_CLIENT, "220"), (Way.TO_CLIENT, "250"),
                                (Way.TO_SERVER, "MAIL"), (Way.TO_CLIENT, "250")]
        assert screen.ladder.proxy.startswith("px#1 ") and screen.ladder.client.startswith("client ")
        assert screen.ladder.server == f"server 127.0.0.1:{lab['mx'].port}"  # type: ignore[attr-defined]
        drawn = static_text(app, "#ladder").splitlines()
        head = next(line for line in drawn if "client" in line)
        assert head.index("client") < head.index("px#1") < head.index("server")
        mail = next(line for line in drawn if "MAIL FROM:<a@lab.test>" in line)
        assert mail.count("|") == 3 and mail.rstrip().endswith(">|") and "->|--" in mail  # both legs
        reply = next(line for line in drawn if "sender <a@lab.test> ok" in line)
        assert reply.count("|") == 3 and "|<--" in reply
        await pilot.press("c")
        assert "    C->>P: MAIL FROM:#60;a@lab.test#62;" in app.clipboard.splitlines()
        assert "    P->>S: MAIL FROM:#60;a@lab.test#62;" in app.clipboard.splitlines()


async def test_a_held_mail_is_listed_then_edited_by_its_fields(lab: Lab) -> None:
    """A breakpoint holds MAIL: the title, the tree and the list show it; `e` opens the editor on its
    fields; the arg changed and ctrl+s, the server gets the new MAIL and the ladder says so."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab, "m:MAIL in")
        await hold(pilot, lab, "MAIL FROM:<a@lab.test>")
        await until(pilot, lambda: any("px#1" in label and "⏸1" in label for label in tree_labels(app)),
                    what="the held mark in the tree")
        screen = await open_held(pilot)
        (row,) = rows(screen)
        assert row[:4] == ["h1", "px#1", "client → server", "MAIL FROM:<a@lab.test>"]
        assert row[4].endswith(" s") and row[5].startswith("release in ")
        assert "breakpoints: px: m:MAIL in" in static_text(app, "#held-title")
        assert 'bytes "MAIL FROM:<a@lab.test>\\r\\n"' in static_text(app, "#held-detail")
        editor = await edit(pilot, screen)
        fields = editor.query_one("#edit-fields", TextArea)
        assert fields.text == "verb=MAIL\narg=FROM:<a@lab.test>"
        assert fields.has_focus
        fields.text = "verb=MAIL\narg=FROM:<b@lab.test>"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen, what="the editor to close")
        await until(pilot, lambda: "MAIL FROM:<b@lab.test>" in received(lab), what="the edited MAIL at the server")
        assert "MAIL FROM:<a@lab.test>" not in received(lab)
        await until(pilot, lambda: any("sender <b@lab.test> ok" in s for s in answered(lab)), what="the answer")
        assert "edited h1: MAIL FROM:<b@lab.test>" in static_text(app, "#held-status")
        await until(pilot, lambda: screen.table.row_count == 0, what="the list to empty")
        await pilot.press("l")  # nothing selected: nothing to draw
        assert "nothing held to draw" in static_text(app, "#held-status")
        await pilot.press("escape")
        await until(pilot, lambda: "held" not in title(app), what="the title without holds")
        ladder = ConversationScreen(lab, "px", "px#1")
        await show(pilot, ladder)
        await until(pilot, lambda: any(r.fate is Fate.EDITED for r in ladder.ladder.rungs), what="the edit rung")
        fates = [(r.way, r.fate, r.text) for r in ladder.ladder.rungs if r.fate is not Fate.PASSED]
        assert fates == [(Way.CLIENT_TO_PROXY, Fate.HELD, "MAIL FROM:<a@lab.test>"),
                         (Way.PROXY_TO_SERVER, Fate.EDITED, "MAIL FROM:<b@lab.test>")]
        drawn = static_text(app, "#ladder")
        assert "⏸ held h1" in drawn and "✎ edited h1" in drawn


async def test_a_held_mail_edited_as_raw_bytes(lab: Lab) -> None:
    """F2 shows the raw bytes with \\r\\n visible; new bytes with escapes go to the server as typed."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab, "m:MAIL in")
        await hold(pilot, lab, "MAIL FROM:<a@lab.test>")
        screen = await open_held(pilot)
        editor = await edit(pilot, screen)
        await pilot.press("f2")
        raw = editor.query_one("#edit-raw", TextArea)
        assert editor.editing_raw and raw.has_focus
        assert raw.text == "MAIL FROM:<a@lab.test>\\r\\n"
        raw.text = "MAIL FROM:<\\x63@lab.test>\\r\\n"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "MAIL FROM:<c@lab.test>" in received(lab), what="the raw edit at the server")
        await until(pilot, lambda: app.screen is screen)
        assert "edited h1: MAIL FROM:<c@lab.test>" in static_text(app, "#held-status")


async def test_a_bad_edit_says_why_and_the_message_stays_held(lab: Lab) -> None:
    """A line that is not NAME=VALUE, a field SMTP has not got, a bad escape, bytes unchanged: each is
    one readable line under the editor, which stays open, and the message stays held; Esc, then r
    releases it as it came."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab, "m:MAIL in")
        await hold(pilot, lab, "MAIL FROM:<a@lab.test>")
        screen = await open_held(pilot)
        editor = await edit(pilot, screen)
        fields = editor.query_one("#edit-fields", TextArea)
        message = "#editor-message"
        for typed, says in (("verb MAIL", "line 1: NAME=VALUE expected, not 'verb MAIL'"),
                            ("bogus=1", "a Command has no field 'bogus' to edit — fields: verb, arg"),
                            ("verb=MAIL\narg=FROM:<a@lab.test>", "no field changed"),
                            ("verb=", "cannot edit h1: smtp: cannot send command")):
            fields.text = typed
            await pilot.press("ctrl+s")
            await until(pilot, lambda says=says: says in static_text(app, message), what=says)
            assert static_text(app, message).startswith("✗ ")
            assert app.screen is editor and [h.id for h in lab.intercepts.held()] == ["h1"]
        await pilot.press("f2")
        raw = editor.query_one("#edit-raw", TextArea)
        for typed, says in (("MAIL FROM:<a@lab.test>\\q", "unknown escape \\q"),
                            ("\n", "no bytes left"),
                            ("MAIL FROM:<a@lab.test>\\r\n\\n", "the bytes are as they were")):
            raw.text = typed
            await pilot.press("ctrl+s")
            await until(pilot, lambda says=says: says in static_text(app, message), what=says)
            assert app.screen is editor and [h.id for h in lab.intercepts.held()] == ["h1"]
        assert "MAIL FROM:<a@lab.test>" not in received(lab)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert [h.id for h in lab.intercepts.held()] == ["h1"]
        await pilot.press("r")
        await until(pilot, lambda: "MAIL FROM:<a@lab.test>" in received(lab), what="the released MAIL")
        assert "released h1" in static_text(app, "#held-status")


async def test_release_drop_and_inject_from_the_list(lab: Lab) -> None:
    """Two RCPTs held in a row: r lets the first on, d drops the second (the server never sees it,
    the ladder marks it); i injects RSET toward the server into the same connection."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, lab, "m:RCPT in")
        await command(pilot, "send c 'MAIL FROM:<a@lab.test>'; expect c 250")
        await until(pilot, lambda: "MAIL FROM:<a@lab.test>" in received(lab))
        await hold(pilot, lab, "RCPT TO:<x@lab.test>")
        screen = await open_held(pilot)
        await pilot.press("r")
        await until(pilot, lambda: "RCPT TO:<x@lab.test>" in received(lab), what="the released RCPT")
        await until(pilot, lambda: any("recipient <x@lab.test> ok" in s for s in answered(lab)))
        await hold(pilot, lab, "RCPT TO:<y@lab.test>")
        await until(pilot, lambda: [r[0] for r in rows(screen)] == ["h2"], what="h2 listed")
        await pilot.press("d")
        await until(pilot, lambda: not lab.intercepts.held(), what="the drop")
        assert "dropped h2" in static_text(app, "#held-status")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InjectPrompt), what="the inject prompt")
        prompt = app.screen
        assert isinstance(prompt, InjectPrompt) and prompt.toward.value == "server"
        assert prompt.query_one("#inject-conn").value == "px#1"  # type: ignore[attr-defined]
        await pilot.press(*"RSET", "enter")
        await until(pilot, lambda: "RSET" in received(lab), what="the injected RSET at the server")
        await until(pilot, lambda: app.screen is screen)
        assert 'injected "RSET\\r\\n" into px#1 toward the server' in static_text(app, "#held-status")
        assert "RCPT TO:<y@lab.test>" not in received(lab)
        await show(pilot, ConversationScreen(lab, "px", "px#1"))
        await until(pilot, lambda: "injected" in static_text(app, "#ladder"), what="the injection in the ladder")
        drawn = static_text(app, "#ladder")
        assert "released h2" not in drawn and "✗ dropped h2" in drawn and "released h1" in drawn
        assert "✗ RCPT TO:<y@lab.test>" in drawn


async def test_breakpoints_from_the_command_bar_with_completion_and_help(lab: Lab) -> None:
    """`intercept` completes in the bar and sets a breakpoint; the held list names it; `b` there starts
    another in the bar; h shows in the footer and in ? help."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "serve smtp as mx; proxy smtp --to mx as px")
        await until(pilot, lambda: "px" in lab.endpoints)
        box = app.commandbar.input
        await pilot.press("colon")
        box.value = "interc"
        box.cursor_position = len(box.value)
        await pilot.press("tab")
        assert box.value == "intercept "
        await pilot.press("p", "tab")
        assert box.value == "intercept px "
        await pilot.press(*"m:MAIL in", "enter")
        await until(pilot, lambda: "holding px: m:MAIL in" in output_text(app), what="the breakpoint")
        await pilot.press("escape")
        assert any(b.key == "h" and b.description == "Held" for b in app.active_bindings.values()
                   for b in [b.binding])
        screen = await open_held(pilot)
        assert "breakpoints: px: m:MAIL in" in static_text(app, "#held-title")
        assert "nothing is held" in static_text(app, "#held-detail")
        await pilot.press("r")
        assert "nothing held to release" in static_text(app, "#held-status")
        await pilot.press("b")
        await until(pilot, lambda: app.screen is not screen)
        assert box.value == "intercept px " and box.has_focus
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "held messages" in static_text(app, "#help-text")
