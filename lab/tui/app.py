"""The netlab TUI: endpoints, live traffic, message detail, conversation
ladder, stats, the messages intercepts hold, and the command language,
over one running :class:`Lab`.

The lab's reactor runs in its own thread.  Events reach the UI through an
:class:`EventFeed` (a bounded queue filled on the reactor thread) that a
timer drains every ``tick`` seconds, one batch per tick; lab operations
are awaited through the reactor's bridge from workers.  Recording is the
command language's ``record start FILE`` / ``record stop``; a scenario
file runs on a worker thread in this same lab, so its traffic shows as
it happens, its steps drawn live in the scenario panel (or one per ``n``).

Tests: tests/tui/
"""

from __future__ import annotations

import logging
import os
import shlex
import textwrap
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, RichLog, Static

from lab.commands import Interpreter
from lab.endpoints import Can, Endpoint, EndpointKind
from lab.errors import LabError
from lab.eventlog import Event, EventKind
from lab.filtering import FILTER_HELP, parse_filter
from lab.lab import Lab
from lab.scenarios import Recorder, Scenario, load_file
from lab.scenarios._recorder import RECORDER
from lab.tui.commandbar import CommandBar
from lab.tui.conversation import ConversationScreen
from lab.tui.detail import MessageDetail
from lab.tui.dump import as_escaped, as_hex
from lab.tui.endpoints import EndpointsTree
from lab.tui.feed import EventFeed
from lab.tui.held import HOLD_NOTE, HeldScreen, held_now
from lab.tui.help import HelpScreen
from lab.tui.palette import LabCommands
from lab.tui.picker import ClientPicker
from lab.tui.prompt import PathPrompt
from lab.tui.rates import Rates
from lab.tui.scenario import ScenarioPanel, ScenarioRun
from lab.tui.statspanel import StatsPanel
from lab.tui.traffic import Scope, TrafficView

__all__ = ["NetlabApp"]

logger = logging.getLogger(__name__)

_TOPOLOGY = frozenset({EventKind.LISTEN, EventKind.OPEN, EventKind.CLOSE, EventKind.STOP})

_LIVE_ONLY = frozenset({"focus_command", "talk", "record", "scenario", "next_step", "run_rest",
                        "toggle_scenario_panel", "held", "stop_scenario"})

Startup = Callable[[], Awaitable[object]]
PutAway = Callable[[], Coroutine[Any, Any, list[str]]]
PanelT = TypeVar("PanelT", bound=Widget)


class NetlabApp(App[int]):
    """The lab console.  ``startup`` (e.g. the demo) runs once mounted;
    the caller owns the lab and closes it after :meth:`run` returns."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "netlab"
    COMMANDS: ClassVar = App.COMMANDS | {LabCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("colon", "focus_command", "Command"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("l", "ladder", "Ladder"),
        Binding("h", "held", "Held"),
        Binding("t", "talk", "Talk"),
        Binding("r", "record", "Record"),
        Binding("s", "scenario", "Scenario"),
        Binding("S", "toggle_scenario_panel", "Scenario panel", show=False),
        Binding("n", "next_step", "Step by step", show=False),
        Binding("a", "show_all", "All", show=False),
        Binding("o", "toggle_output", "Output", show=False),
        Binding("y", "copy('escaped')", "Copy", show=False),
        Binding("x", "copy('hex')", "Copy hex", show=False),
        Binding("v", "toggle_reveal", "Reveal secrets", show=False),
        Binding("escape", "escape", "Back", show=False),
    ]

    def __init__(self, lab: Lab, *, startup: Startup | None = None, title: str = "netlab",
                 tick: float = 0.05, stats_interval: float = 1.0, window: int = 10_000,
                 export_dir: Path | None = None, scenario_path: str | None = None,
                 scenario_owns: Iterable[str] = (), put_away: PutAway | None = None,
                 saved: str | None = None) -> None:
        super().__init__()
        self.lab = lab
        self.interp = Interpreter(lab)
        self.feed = EventFeed(lab.log)
        self.rates = Rates()
        self.startup = startup
        self.tick = tick
        self.stats_interval = stats_interval
        self.window = window
        self.export_dir = export_dir
        self.title = title
        self.absorbed = 0  # events taken from the feed so far (bench/tui.py reads it)
        self._topology_changed = True
        self._panels: dict[str, Widget] = {}
        self.scenario_path = scenario_path  # what the run prompt offers first
        self.scenario_run: ScenarioRun | None = None
        self._runs = 0
        self._scenario_owns = set(scenario_owns)  # the lab file's servers: the first run restarts them
        self._put_away = put_away  # the demo, put away before a scenario runs in this lab
        self.saved = saved  # a saved log shown read-only (the lab's log holds it): nothing runs

    # -- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="titlebar")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield EndpointsTree(self.lab, id="endpoints")
                yield StatsPanel(self.rates, id="stats")
            with Vertical(id="centre"):
                yield Input(placeholder=f"filter: {FILTER_HELP}   (Enter applies, Esc closes)", id="filter")
                yield TrafficView(self.lab.log, window=self.window, id="traffic")
                yield MessageDetail(id="detail")
                yield ScenarioPanel(id="scenario")
        yield RichLog(id="output", max_lines=500, wrap=False, markup=False)
        yield CommandBar(self.lab, self.interp, id="commandbar")
        yield Footer()

    # The panels, found once: timers keep firing while the app shuts down,
    # when queries would no longer find them.

    @property
    def traffic(self) -> TrafficView:
        return self._panel("#traffic", TrafficView)

    @property
    def endpoints_tree(self) -> EndpointsTree:
        return self._panel("#endpoints", EndpointsTree)

    @property
    def commandbar(self) -> CommandBar:
        return self._panel("#commandbar", CommandBar)

    @property
    def output(self) -> RichLog:
        return self._panel("#output", RichLog)

    @property
    def stats(self) -> StatsPanel:
        return self._panel("#stats", StatsPanel)

    @property
    def scenario_panel(self) -> ScenarioPanel:
        return self._panel("#scenario", ScenarioPanel)

    def _panel(self, selector: str, kind: type[PanelT]) -> PanelT:
        found = self._panels.get(selector)
        if found is None:
            found = self._panels[selector] = self.query_one(selector, kind)
        assert isinstance(found, kind)
        return found

    def on_mount(self) -> None:
        for selector, kind in (("#traffic", TrafficView), ("#endpoints", EndpointsTree), ("#stats", StatsPanel),
                               ("#commandbar", CommandBar), ("#output", RichLog), ("#titlebar", Static),
                               ("#detail", MessageDetail), ("#scenario", ScenarioPanel)):
            self._panel(selector, kind)
        self.query_one("#left").border_title = "endpoints"
        self.query_one("#stats").border_title = "stats: events/s · bytes/s"
        self.traffic.border_title = "traffic"
        self.query_one("#detail").border_title = "message"
        self.output.border_title = "output"
        self.query_one("#filter").display = False
        self.scenario_panel.display = False
        self.feed.start()
        self.traffic.reload()
        self.traffic.focus()
        self.set_interval(self.tick, self.drain)
        self.set_interval(self.stats_interval, self.sample_stats)
        self.set_interval(0.5, self.refresh_status)
        if self.saved is not None:
            self.commandbar.display = False
            self.endpoints_tree.show_saved(self.lab.log.snapshot())
            self.output.write(Text(f"A saved log, read-only: {len(self.lab.log):,} events from {self.saved}. "
                                   "/ filters, Enter shows a message, l the ladder, ? keys, q quits.", "dim"))
            for warning in getattr(self.lab.log, "warnings", ()):
                self.output.write(Text(f"! {warning}", "yellow"))
        else:
            self.output.write(Text("Welcome to netlab. Type : then a command (try `help`), ? for keys, q to quit.",
                                   "dim"))
        self.refresh_status()
        if self.startup is not None:
            self._start()

    def on_resize(self, event: events.Resize) -> None:
        # small terminals: thinner side panels, so the traffic keeps its rows
        self.screen.set_class(event.size.height < 34, "-short")
        self.screen.set_class(event.size.width < 110, "-narrow")

    def on_unmount(self) -> None:
        self.feed.stop()
        if self.scenario_run is not None:
            self.scenario_run.cancel()  # its thread ends now, not when the run would

    @work(exclusive=True, group="startup")
    async def _start(self) -> None:
        assert self.startup is not None
        try:
            await self.startup()
        except LabError as exc:
            self.output.write(Text(f"✗ {exc}", "bold red"))

    # -- the event stream ----------------------------------------------------

    def drain(self) -> None:
        """Take one batch from the feed and draw it (the timer's tick)."""
        events = self.feed.drain()
        if not events:
            if self._topology_changed:
                self._refresh_tree()
            return
        self.absorbed += len(events)
        self.traffic.add(events)
        self.rates.count(events)
        stats = self.stats
        holds_changed = False
        for e in events:
            if e.kind in _TOPOLOGY:
                self._topology_changed = True
                if e.protocol:
                    stats.protocols[e.endpoint] = e.protocol
            elif e.kind is EventKind.INFO and HOLD_NOTE.match(e.summary):
                holds_changed = self._topology_changed = True  # the tree and title count what is held
        if self._topology_changed:
            self._refresh_tree()
        if holds_changed and isinstance(self.screen, HeldScreen):
            self.screen.refresh_held()

    def _refresh_tree(self) -> None:
        self._topology_changed = False
        if self.saved is None:
            self.endpoints_tree.refresh_from_lab()
        self.refresh_status()

    def endpoints_now(self) -> list[Endpoint]:
        """The lab's endpoints, copied in one step: the reactor thread adds
        and removes them while the UI reads (``lab.servers`` iterates the
        live dict and could see it change size)."""
        return list(self.lab.endpoints.values())

    def sample_stats(self) -> None:
        self.rates.tick(self.stats_interval)
        self.sample_stats_view()
        if self.saved is None:
            self.endpoints_tree.refresh_from_lab()  # counters

    def sample_stats_view(self) -> None:
        stats = self.stats
        for endpoint in self.endpoints_now():
            stats.protocols.setdefault(endpoint.name, endpoint.protocol)
        stats.redraw([e.name for e in self.endpoints_now() if e.can(Can.LISTEN)])

    def refresh_status(self) -> None:
        lab, view = self.lab, self.traffic
        endpoints = self.endpoints_now()
        servers = sum(e.kind is EndpointKind.SERVER for e in endpoints)
        clients = sum(e.kind is EndpointKind.CLIENT for e in endpoints)
        proxies = sum(e.kind is EndpointKind.PROXY for e in endpoints)
        title = Text.assemble(
            (f" {self.title} ", "bold reverse"),
            f"  saved log, read-only · {len(lab.log):,} events" if self.saved is not None else "",
        ) if self.saved is not None else Text.assemble(
            (f" {self.title} ", "bold reverse"),
            f"  {servers} servers · ",
            f"{proxies} prox{'y' if proxies == 1 else 'ies'} · " if proxies else "",
            f"{clients} clients",
            f" ({lab.clients_made:,} so far)" if lab.clients_made > clients else "",
            f" · {lab.log.total:,} events",
        )
        held = len(held_now(lab))
        if held:
            title.append("  ")
            title.append(f" ⏸ {held} held ", "bold black on #e5c07b")
            title.append(" h lists them", "#e5c07b")
        recorder = self.recording()
        if recorder is not None:
            title.append("  ")
            title.append(" ● REC ", "bold white on red")
            title.append(f" {recorder.path} · {recorder.steps} steps", "bold red")
        panel = self.scenario_panel
        if panel.run is not None and not panel.display:
            title.append(f"  scenario {panel.summary()} (S shows)", "dim")
        title.no_wrap, title.overflow = True, "ellipsis"  # one line: a wrapped tail would be hidden
        self._panel("#titlebar", Static).update(title)
        parts = ["following" if view.follow else "scrolled"]
        if view.paused:
            parts.append(f"PAUSED ({view.held:,} new)")
        parts.append(f"{len(view.rows):,} rows")
        if view.scope.text:
            parts.append(f"only {view.scope.text}")
        if view.filter:
            parts.append(f"filter: {view.filter.text}")
        if self.feed.dropped:
            parts.append(f"{self.feed.dropped:,} too fast to show (kept in the log)")
        view.border_subtitle = " · ".join(parts)

    def on_traffic_view_selected(self, message: TrafficView.Selected) -> None:
        self._panel("#detail", MessageDetail).show(message.event)

    def on_endpoints_tree_scope_changed(self, message: EndpointsTree.ScopeChanged) -> None:
        self.traffic.set_scope(message.scope)
        self.refresh_status()

    # -- commands --------------------------------------------------------------

    def on_command_bar_left(self, message: CommandBar.Left) -> None:
        if self.commandbar.input.has_focus:
            self.traffic.focus()

    def on_command_bar_failed(self, message: CommandBar.Failed) -> None:
        width = max(20, self.output.size.width - 2)
        for line in textwrap.wrap("✗ " + message.text, width, subsequent_indent="  ") or ["✗"]:
            self.output.write(Text(line, "bold red"))

    def on_command_bar_ran(self, message: CommandBar.Ran) -> None:
        self.output.write(Text(f"› {message.line}", "bold"))
        for result in message.results:
            if result.text:
                self.output.write(Text(result.text))
        self._topology_changed = True

    def fill_command(self, text: str) -> None:
        """Put ``text`` in the command bar for editing (palette)."""
        bar = self.commandbar
        bar.talk_to(None)
        bar.input.value = text
        bar.input.cursor_position = len(text)
        bar.input.focus()

    def run_command(self, text: str, *, focus: bool = True) -> None:
        """Run ``text`` as if typed in the command bar (palette, keys)."""
        bar = self.commandbar
        bar.talk_to(None)
        if focus:
            bar.input.focus()
        bar.submit(text)

    # -- actions ---------------------------------------------------------------

    async def action_quit(self) -> None:
        self.exit(0)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_held(self) -> None:
        """The held-messages screen (from any screen but itself)."""
        if isinstance(self.screen, HeldScreen):
            self.pop_screen()
            return
        self.push_screen(HeldScreen(self.lab, export_dir=self.export_dir))

    def action_focus_command(self) -> None:
        self.commandbar.input.focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        event.stop()
        try:
            flt = parse_filter(event.value)
        except LabError as exc:
            self.commandbar.show_error(f"filter: {exc}")
            return
        self.commandbar.clear_message()
        self.traffic.set_filter(flt)
        self.refresh_status()
        if not event.value.strip():
            event.input.display = False
        self.traffic.focus()

    def action_toggle_follow(self) -> None:
        self.traffic.follow = not self.traffic.follow
        self.refresh_status()

    def action_toggle_pause(self) -> None:
        self.traffic.paused = not self.traffic.paused
        self.refresh_status()

    def action_show_all(self) -> None:
        self.traffic.set_scope(Scope())
        self.refresh_status()

    def action_escape(self) -> None:
        bar = self.commandbar
        if bar.talking_to is not None:
            bar.talk_to(None)
        box = self.query_one("#filter", Input)
        if box.has_focus:
            box.display = bool(self.traffic.filter)
        self.traffic.focus()

    def selected_event(self) -> Event | None:
        return self.traffic.selected

    def _ladder_target(self) -> tuple[str, str] | None:
        """(endpoint, connection) for the ladder: the tree's connection, or
        its endpoint's newest (a client's own), when the tree has focus,
        else the event under the cursor, else the connection the view is
        narrowed to."""
        tree = self.endpoints_tree
        node = tree.cursor_node
        if tree.has_focus and node is not None and node.data is not None:
            scope = node.data
            if scope.conn and scope.endpoint:
                return scope.endpoint, scope.conn
            endpoint = self.lab.endpoints.get(scope.endpoint or "")
            live = endpoint.live_connections() if endpoint is not None else []
            if endpoint is not None and live:
                return endpoint.name, live[-1].id
        event = self.selected_event()
        if event is not None and event.conn:
            return event.endpoint, event.conn
        scope = self.traffic.scope
        if scope.conn and scope.endpoint:
            return scope.endpoint, scope.conn
        return None

    def action_ladder(self) -> None:
        target = self._ladder_target()
        if target is None:
            self.notify("select an event of a connection first (↑ ↓ in the traffic view)", severity="warning")
            return
        endpoint, conn = target
        self.push_screen(ConversationScreen(self.lab, endpoint, conn, export_dir=self.export_dir))

    def action_toggle_reveal(self) -> None:
        """Show secrets (passwords sent in cleartext) as sent, or masked
        again; files never get them either way."""
        reveal = not self.traffic.reveal
        self.traffic.reveal = reveal
        detail = self._panel("#detail", MessageDetail)
        detail.reveal = reveal
        self.traffic.refresh()
        if detail.event is not None:
            detail.show(detail.event)
        self.notify("secrets shown as sent in cleartext (v masks them again)" if reveal else "secrets masked",
                    title="reveal" if reveal else "mask")

    def action_toggle_output(self) -> None:
        self.output.toggle_class("tall")
        # once resized, show the newest lines (a shrunk panel kept its old scroll place)
        self.call_after_refresh(self.output.scroll_end, animate=False)

    def action_copy(self, how: str) -> None:
        event = self.selected_event()
        if event is None or event.raw is None:
            self.notify("select an event with bytes first", severity="warning")
            return
        raw = event.raw if self.traffic.reveal else (event.masked_raw or b"")  # masked unless v showed it
        text = as_escaped(raw) if how == "escaped" else as_hex(raw)
        self.copy_to_clipboard(text)
        self.notify(f"copied {len(raw)} bytes as {'an escaped string' if how == 'escaped' else 'hex'}")

    def action_talk(self) -> None:
        candidates: list[str] = []
        node = self.endpoints_tree.cursor_node
        if self.endpoints_tree.has_focus and node is not None and node.data is not None and node.data.endpoint:
            candidates.append(node.data.endpoint)
        event = self.selected_event()
        if event is not None:
            candidates.append(event.endpoint)
        for name in candidates:
            found = self.lab.endpoints.get(name)
            if found is not None and found.can(Can.SEND):
                self._talk(name)
                return
        clients = [(c.name, c.address) for c in self.endpoints_now() if c.can(Can.SEND)]
        if not clients:
            self.commandbar.show_error("no client to talk through — connect one first, e.g. `connect echo as c`")
            self.commandbar.input.focus()
            return
        if len(clients) == 1:
            self._talk(clients[0][0])
            return
        self.push_screen(ClientPicker(clients), self._talk)

    def _talk(self, name: str | None) -> None:
        if name is None:
            return
        self.commandbar.talk_to(name)
        self.commandbar.input.focus()

    # -- record and replay -------------------------------------------------------

    def recording(self) -> Recorder | None:
        """The lab's active recorder (started here or by `record start`)."""
        found = self.lab.services.find(RECORDER)
        return found if isinstance(found, Recorder) and found.active else None

    def action_record(self) -> None:
        """Start recording (asking for the file) or stop: the command
        language's `record start FILE` and `record stop`, run as typed."""
        recorder = self.recording()
        if recorder is not None:
            self.scenario_path = str(recorder.path)  # `s` then offers to replay it
            self.run_command("record stop", focus=False)
            return
        prompt = PathPrompt("record this session to which scenario file?", _free_name("session", ".yaml"),
                            _record_command(), hint="commands become steps, replies expectations · "
                            "Tab completes · Esc cancels")
        self.push_screen(prompt, self._record)

    def _record(self, line: object) -> None:
        if isinstance(line, str):
            self.run_command(line, focus=False)
            self.refresh_status()

    def action_scenario(self, stepping: bool = False) -> None:
        """Ask for a scenario file and run it in the scenario panel."""
        how = "step by step, n runs each step" if stepping else "in this lab (n instead of s: step by step)"
        prompt = PathPrompt("run which scenario file?", self.scenario_path or "", _load_scenarios,
                            hint=f"runs {how}; its traffic shows here · Tab completes · Esc cancels")
        self.push_screen(prompt, lambda loaded: self._run_loaded(loaded, stepping))

    def _run_loaded(self, loaded: object, stepping: bool = False) -> None:
        if isinstance(loaded, tuple):
            self.run_scenarios(*loaded, stepping=stepping)

    def run_scenarios(self, path: str, scenarios: list[Scenario], *, stepping: bool = False) -> ScenarioRun:
        """Run ``scenarios`` (read from ``path``) one after another in this
        lab on a worker thread, the panel showing each step as it passes
        or fails; ``stepping``: each step waits for ``n``.  A run still
        going is cancelled first; what the last run made is stopped."""
        before = self.scenario_run
        if before is not None:
            before.cancel()
        self._runs += 1
        clear, self._scenario_owns = self._scenario_owns, set()
        run = self.scenario_run = ScenarioRun(self._runs, path, scenarios, lab=self.lab, stepping=stepping,
                                              clear=clear, after=before)
        self.scenario_path = path
        panel = self.scenario_panel
        panel.begin(run)
        self.show_scenario_panel(True)
        self._run_scenarios(run, panel.post_message)
        return run

    @work(thread=True, group="scenario")
    def _run_scenarios(self, run: ScenarioRun, post: Callable[[Message], object]) -> None:
        away, self._put_away = self._put_away, None
        if away is not None:
            try:
                stopped = self.lab._call(away(), 60.0)
            except LabError as exc:
                self.call_from_thread(self.notify, f"the demo did not stop: {exc}", severity="warning")
            else:
                self.call_from_thread(self._demo_put_away, stopped)
        run.execute(post, loop=self.lab.reactor.loop_kind)

    def _demo_put_away(self, stopped: list[str]) -> None:
        self.title = "netlab"
        self.notify(f"the demo stopped ({len(stopped)} endpoints), so the scenario runs in a lab of its own",
                    title="demo put away")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.saved is not None and action in _LIVE_ONLY:
            return False  # a saved log: nothing to command, record, run or hold
        run = self.scenario_run
        if action == "stop_scenario":  # offered only while a run goes on
            return run is not None and not self.scenario_panel.ended
        if action == "run_rest":
            return run is not None and run.stepping and not self.scenario_panel.ended
        return True

    def action_next_step(self) -> None:
        """Step by step: run the waiting step, or start a run that waits."""
        run = self.scenario_run
        if run is not None and run.stepping and not self.scenario_panel.ended:
            run.advance()
            return
        if self.scenario_path:
            try:
                path, scenarios = _load_scenarios(self.scenario_path)
            except LabError as exc:
                self.notify(f"{exc}", severity="error")
                return
            self.run_scenarios(path, scenarios, stepping=True)
            return
        self.action_scenario(stepping=True)

    def action_run_rest(self) -> None:
        run = self.scenario_run
        if run is not None and run.stepping:
            run.run_rest()
            self.scenario_panel.refresh_bindings()

    def action_stop_scenario(self) -> None:
        run = self.scenario_run
        if run is None or self.scenario_panel.ended:
            self.notify("no scenario is running", severity="warning")
            return
        run.cancel()

    def show_scenario_panel(self, show: bool) -> None:
        """The scenario panel takes the message detail's place while shown."""
        panel = self.scenario_panel
        panel.display = show
        self._panel("#detail", MessageDetail).display = not show
        if show:
            panel.table.focus()
        elif panel.has_focus_within:
            self.traffic.focus()
        self.refresh_status()

    def action_toggle_scenario_panel(self) -> None:
        if self.scenario_run is None:
            self.action_scenario()
            return
        self.show_scenario_panel(not self.scenario_panel.display)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.saved is not None:
            return  # a saved log: nothing to record, run or hold
        recorder = self.recording()
        if recorder is None:
            yield SystemCommand("Record: start recording", "write this session as a scenario file (r)",
                                self.action_record)
        else:
            yield SystemCommand("Record: stop recording", f"finish {recorder.path}, {recorder.steps} steps so far (r)",
                                self.action_record)
        yield SystemCommand("Scenario: run a scenario file", "its steps pass and fail live in a panel (s)",
                            self.action_scenario)
        yield SystemCommand("Scenario: step by step", "each step waits for n; g runs the rest (n)",
                            self.action_next_step)
        yield SystemCommand("Held messages", "what intercepts hold: release, drop, edit, inject (h)",
                            self.action_held)
        if self.scenario_run is not None:
            yield SystemCommand("Scenario: show or hide the panel", self.scenario_panel.summary() + " (S)",
                                self.action_toggle_scenario_panel)
            if not self.scenario_panel.ended:
                yield SystemCommand("Scenario: stop the run", "cancel the scenario running now (c in the panel)",
                                    self.action_stop_scenario)


def _free_name(stem: str, suffix: str) -> str:
    """``session.yaml``, or ``session-2.yaml`` if that exists, and so on."""
    for n in range(1, 1000):
        name = f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}"
        if not os.path.exists(name):
            return name
    return f"{stem}{suffix}"


def _record_command() -> Callable[[str], str]:
    """Turns the path typed into a `record start` line; a file that exists
    is replaced only when Enter is pressed on it twice."""
    confirmed: set[str] = set()

    def accept(typed: str) -> str:
        path = Path(os.path.expanduser(typed))
        if path.is_dir():
            raise LabError(f"{typed} is a directory", hint=f"name a file in it, e.g. {path / 'session.yaml'}")
        if not path.parent.is_dir():
            raise LabError(f"no directory {str(path.parent)!r}", hint="record into a directory that exists")
        line = f"record start {shlex.quote(str(path))}"
        if path.exists():
            if typed not in confirmed:
                confirmed.add(typed)
                raise LabError(f"{typed} exists", hint="Enter again replaces it, or change the name")
            line += " --force"
        return line

    return accept


def _load_scenarios(typed: str) -> tuple[str, list[Scenario]]:
    """The scenarios of a file, validated (the loader's FILE:LINE:COL
    error otherwise); a lab file without steps is refused with a hint."""
    scenarios = load_file(os.path.expanduser(typed))
    if not any(s.steps for s in scenarios):
        raise LabError(f"{typed} has no steps to run",
                       hint="a lab file: `netlab tui FILE` or `netlab up FILE` starts its servers")
    return typed, scenarios
