"""The scenario panel: a scenario file's steps, passing and failing live
as the scenarios package's runner reaches them, and on a failure the
runner's own report (the step, what it expected, what arrived).

Each scenario runs in the console's own lab, so its traffic shows in the
traffic view and the ladder as it happens, on a worker thread; the
runner's progress callback posts each step's state here.  What a run
made stays to be looked at until the next run stops it, so runs repeat
from the same start.  Step by step, each step waits for a key (a lesson
in front of a class).  A :class:`ScenarioRun` is one start: cancelling
it (a new run, or the console closing) stops its runner at once.

Tests: tests/tui/test_record_replay.py, tests/tui/test_snapshots.py
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from lab.connection import format_exception
from lab.errors import LabError
from lab.scenarios import Outcome, Runner, Scenario, Step, StepState, StepUpdate

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["ScenarioPanel", "ScenarioRun", "Shown"]

logger = logging.getLogger(__name__)


class Shown:
    """How a step's state is drawn: a mark and its style."""

    PENDING = ("·", "dim")
    NEXT = ("▷", "bold cyan")
    RUNNING = ("▶", "bold yellow")
    PASSED = ("✓", "bold green")
    FAILED = ("✗", "bold red")
    NOT_RUN = ("–", "dim")


_BY_STATE = {StepState.WAITING: Shown.NEXT, StepState.RUNNING: Shown.RUNNING,
             StepState.PASSED: Shown.PASSED, StepState.FAILED: Shown.FAILED}


def seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass
class ScenarioRun:
    """The scenarios of one file, run one after another on the calling
    (worker) thread in ``lab`` (a fresh lab each when None); every update
    goes to ``post``.  Endpoints named in ``clear`` (what the last run
    made) and those each scenario makes are stopped before the next
    scenario starts.  With ``stepping`` each step waits for
    :meth:`advance`.  :meth:`cancel`, :meth:`advance` and
    :meth:`run_rest` may be called from any thread."""

    number: int
    path: str
    scenarios: list[Scenario]
    lab: Lab | None = None
    stepping: bool = False
    clear: set[str] = field(default_factory=set)
    after: ScenarioRun | None = None  # a cancelled run whose thread this one waits out
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    made: list[str] = field(default_factory=list)  # endpoints its scenarios made, left running
    _go: threading.Event = field(default_factory=threading.Event)
    _runner: Runner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, post: Callable[[Message], object], loop: str = "asyncio") -> None:
        try:
            self._execute(post, loop)
        finally:
            self.finished.set()

    def _execute(self, post: Callable[[Message], object], loop: str) -> None:
        before = self.after
        if before is not None:  # what it made is this run's to clear, once it has ended
            before.finished.wait(30.0)
            self.clear.update(before.clear, before.made)
            self.after = None
        for scenario in self.scenarios:
            runner = Runner(scenario, loop=loop, lab=self.lab, gate=self._gate,
                            progress=lambda update: post(ScenarioPanel.Stepped(self.number, update)))
            with self._lock:
                if self.cancelled.is_set():
                    break
                self._runner = runner
            post(ScenarioPanel.Started(self.number, scenario))
            try:
                self._tidy()
                outcome = runner.run()
            except Exception as exc:  # a runner bug: say so in the panel, keep the console
                logger.exception("scenario run failed")
                post(ScenarioPanel.Broke(self.number, scenario, format_exception(exc)))
                return
            finally:
                self.made.extend(runner.created)
            post(ScenarioPanel.Finished(self.number, outcome))
        post(ScenarioPanel.Ended(self.number))

    def _tidy(self) -> None:
        """Stop what earlier runs made, so each run starts as the first did."""
        lab = self.lab
        if lab is None:
            return
        names = [n for n in dict.fromkeys([*self.clear, *self.made]) if n in lab.endpoints]
        self.clear.clear()
        self.made.clear()
        for name in names:
            try:
                lab.stop(name)
            except LabError:  # gone meanwhile, or stopped with its server
                pass

    def _gate(self, step: Step) -> None:
        if not self.stepping:
            return
        while not self._go.wait(0.1):
            if self.cancelled.is_set():
                return  # the runner sees its cancel next
        self._go.clear()

    def advance(self) -> None:
        """Step by step: let the waiting step run."""
        self._go.set()

    def run_rest(self) -> None:
        """Step by step no more: the rest runs on its own."""
        self.stepping = False
        self._go.set()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            if self._runner is not None:
                self._runner.cancel()


class ScenarioPanel(Vertical):
    """Steps as rows (state, number, step, time) and the failure report."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "app.stop_scenario", "Stop run"),
        Binding("n", "app.next_step", "Step"),
        Binding("g", "app.run_rest", "Run rest"),
        Binding("escape", "app.toggle_scenario_panel", "Hide"),
    ]

    class Started(Message):
        def __init__(self, run: int, scenario: Scenario) -> None:
            super().__init__()
            self.run = run
            self.scenario = scenario

    class Stepped(Message):
        def __init__(self, run: int, update: StepUpdate) -> None:
            super().__init__()
            self.run = run
            self.update = update

    class Finished(Message):
        def __init__(self, run: int, outcome: Outcome) -> None:
            super().__init__()
            self.run = run
            self.outcome = outcome

    class Broke(Message):
        def __init__(self, run: int, scenario: Scenario, error: str) -> None:
            super().__init__()
            self.run = run
            self.scenario = scenario
            self.error = error

    class Ended(Message):
        def __init__(self, run: int) -> None:
            super().__init__()
            self.run = run

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run: ScenarioRun | None = None
        self.outcomes: list[Outcome] = []
        self.running: Scenario | None = None
        self.current: Step | None = None
        self.next: Step | None = None  # step by step: the step waiting for its key
        self.ended = False
        self.error = ""
        self.passed = 0  # steps passed in this run
        self._numbers: dict[int, int] = {}  # id(scenario) -> its place in the file

    def compose(self) -> ComposeResult:
        yield DataTable(id="scenario-steps", cursor_type="row", zebra_stripes=False)
        with VerticalScroll(id="scenario-report-scroll"):
            yield Static("", id="scenario-report")

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#scenario-steps", DataTable)

    def on_mount(self) -> None:
        table = self.table
        table.add_column("", key="state", width=1)
        table.add_column("#", key="n")
        table.add_column("step", key="step")
        table.add_column("time", key="time")
        self.query_one("#scenario-report-scroll").display = False

    # -- a run ---------------------------------------------------------------

    def begin(self, run: ScenarioRun) -> None:
        """Show ``run``'s steps, all still to run."""
        self.run = run
        self.outcomes = []
        self.running = self.current = self.next = None
        self.ended = False
        self.error = ""
        self.passed = 0
        self._numbers = {id(s): n for n, s in enumerate(run.scenarios)}
        table = self.table
        table.clear()
        several = len(run.scenarios) > 1
        for n, scenario in enumerate(run.scenarios):
            if several or not scenario.steps:
                table.add_row(Text(*Shown.PENDING), "", Text(f"{scenario.name}", "bold"), "", key=f"{n}:head")
            for step in scenario.steps:
                table.add_row(Text(*Shown.PENDING), str(step.index), step.text, "", key=f"{n}:{step.index}")
        self._report(None)
        self.border_title = f"scenario: {run.path}"
        self._status()

    def _key(self, scenario: Scenario, step: Step | None) -> str:
        return f"{self._numbers.get(id(scenario), 0)}:{'head' if step is None else step.index}"

    def _mark(self, key: str, shown: tuple[str, str], seconds: float | None = None) -> None:
        table = self.table
        if key not in table.rows:
            return
        table.update_cell(key, "state", Text(*shown))
        if seconds is not None:
            table.update_cell(key, "time", seconds_text(seconds), update_width=True)

    def _mine(self, run: int) -> bool:
        return self.run is not None and self.run.number == run

    def on_scenario_panel_started(self, message: Started) -> None:
        if self._mine(message.run):
            self.running = message.scenario
            self._mark(self._key(message.scenario, None), Shown.RUNNING)
            self._status()

    def on_scenario_panel_stepped(self, message: Stepped) -> None:
        if not self._mine(message.run):
            return
        update = message.update
        key = self._key(update.scenario, update.step)
        self.current = update.step if update.state is StepState.RUNNING else None
        self.next = update.step if update.state is StepState.WAITING else None
        self.passed += update.state is StepState.PASSED
        self._mark(key, _BY_STATE[update.state],
                   None if update.state in (StepState.RUNNING, StepState.WAITING) else update.seconds)
        if update.state in (StepState.RUNNING, StepState.WAITING):
            table = self.table
            if key in table.rows:
                table.move_cursor(row=table.get_row_index(key), scroll=True)
        self._status()

    def on_scenario_panel_finished(self, message: Finished) -> None:
        if not self._mine(message.run):
            return
        outcome = message.outcome
        self.outcomes.append(outcome)
        self.running = self.current = self.next = None
        self._mark(self._key(outcome.scenario, None), Shown.PASSED if outcome.passed else Shown.FAILED,
                   outcome.seconds)
        if outcome.failure is not None:
            failed = outcome.failure.step
            for step in outcome.scenario.steps:
                if failed is None or step.index > failed.index:
                    self._mark(self._key(outcome.scenario, step), Shown.NOT_RUN)
            if failed is not None:
                table = self.table
                key = self._key(outcome.scenario, failed)
                if key in table.rows:
                    table.move_cursor(row=table.get_row_index(key), scroll=True)
            self._report(outcome.failure.report())
        self._status()

    def on_scenario_panel_broke(self, message: Broke) -> None:
        if self._mine(message.run):
            self.error = message.error
            self.ended = True
            self.running = self.current = self.next = None
            self._mark(self._key(message.scenario, None), Shown.FAILED)
            self._report(f"{message.scenario.location}: the runner failed: {message.error}")
            self._status()

    def on_scenario_panel_ended(self, message: Ended) -> None:
        if self._mine(message.run):
            self.ended = True
            self._status()

    # -- drawing ---------------------------------------------------------------

    def _report(self, text: str | None) -> None:
        scroll = self.query_one("#scenario-report-scroll")
        if not text:
            scroll.display = False
            return
        first, _, rest = text.partition("\n")
        self.query_one("#scenario-report", Static).update(Text.assemble((first, "bold red"), "\n" + rest))
        scroll.display = True

    def summary(self) -> str:
        """One line: where the run is, or how it ended."""
        run = self.run
        if run is None:
            return "no scenario run yet"
        steps = sum(len(s.steps) for s in run.scenarios)
        so_far = f"{self.passed} of {steps} steps passed"
        if self.error:
            return f"the runner failed · {so_far}"
        if not self.ended:
            if self.next is not None:
                return f"step {self.next.index} next: n runs it, g runs the rest · {so_far}"
            if self.current is not None:
                return f"running step {self.current.index} · {so_far}"
            return "starting its lab" if self.running is not None else "starting"
        if run.cancelled.is_set():
            return f"cancelled · {so_far}"
        failed = [o for o in self.outcomes if not o.passed]
        if not failed:
            seconds = sum(o.seconds for o in self.outcomes)
            return f"passed: {steps} steps in {seconds_text(seconds)}"
        failure = failed[0].failure
        where = f"step {failure.step.index}" if failure is not None and failure.step is not None else "its lab"
        if len(run.scenarios) > 1:
            return f"{len(failed)} of {len(run.scenarios)} scenarios failed, first {failed[0].scenario.name} at {where}"
        return f"failed at {where} · {so_far}"

    def _status(self) -> None:
        self.border_subtitle = self.summary()
        self.refresh_bindings()  # "stop run" only while it runs
        self.set_class(bool(self.ended and any(not o.passed for o in self.outcomes)) or bool(self.error), "-failed")
        self.set_class(bool(self.ended and self.outcomes and all(o.passed for o in self.outcomes)
                            and not self.error), "-passed")
