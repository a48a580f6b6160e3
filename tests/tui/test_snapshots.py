"""Snapshot tests (pytest-textual-snapshot) of the main screens over the
still lab: fixed ports, addresses and times, real protocol behaviours.

Update after an intended change with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from lab.scenarios import Runner, StepUpdate, load_text
from lab.tui.app import NetlabApp
from lab.tui.editor import HeldEditor
from lab.tui.held import HeldScreen
from lab.tui.scenario import ScenarioPanel, ScenarioRun
from lab.tui.still import START, pose, still_holds, still_lab

SIZE = (120, 40)


@pytest.fixture
def utc() -> Iterator[None]:
    """Times drawn in UTC, whatever the machine's zone."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def still_app(utc: None) -> Iterator[NetlabApp]:
    lab = still_lab()
    yield NetlabApp(lab, title="netlab — demo lab", stats_interval=3600)
    lab.reactor.loop.close()


@pytest.fixture
def holding_app(utc: None) -> Iterator[NetlabApp]:
    """The still lab with a proxy whose intercepts hold two messages."""
    lab = still_lab()
    still_holds(lab)
    yield NetlabApp(lab, title="netlab — demo lab", stats_interval=3600)
    lab.reactor.loop.close()


async def posed(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.2)
    app = pilot.app
    assert isinstance(app, NetlabApp)
    pose(app)
    await pilot.pause(0.2)


def test_main_screen(snap_compare: Any, still_app: NetlabApp) -> None:
    """Tree, traffic, detail with the finger query's fields and bytes, stats, command bar."""
    assert snap_compare(still_app, terminal_size=SIZE, run_before=posed)


def test_main_screen_filtered_to_one_connection(snap_compare: Any, still_app: NetlabApp) -> None:
    """The filter bar open with `c:echo#1 in`: only what the echo server received on its first connection."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await posed(pilot)
        await pilot.press("slash", *"c:echo#1 in", "enter")
        await pilot.pause(0.2)

    assert snap_compare(still_app, terminal_size=SIZE, run_before=run_before)


def test_ladder_screen(snap_compare: Any, still_app: NetlabApp) -> None:
    """The finger conversation as a ladder."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await posed(pilot)
        await pilot.press("l")
        await pilot.pause(0.3)

    assert snap_compare(still_app, terminal_size=SIZE, run_before=run_before)


def test_main_screen_in_a_small_terminal(snap_compare: Any, still_app: NetlabApp) -> None:
    """At 80x24 the side panels shrink and the traffic rows drop milliseconds and the protocol column."""
    assert snap_compare(still_app, terminal_size=(80, 24), run_before=posed)


def test_help_screen(snap_compare: Any, still_app: NetlabApp) -> None:
    """`?` over the main screen: keys, the filter language and the commands."""
    assert snap_compare(still_app, terminal_size=SIZE, press=["question_mark"])


SCENARIO = """\
name: echo-mixed
description: two lines echoed, then one that never comes back
lab:
  e: {protocol: echo}
steps:
  - connect: {to: e, as: c}
  - send: {to: c, text: hello}
  - expect: {from: c, equals: "hello\\r\\n"}
  - send: {to: c, text: world}
  - expect: {from: c, equals: "world\\r\\n"}
  - expect: {from: c, equals: "goodbye\\r\\n", timeout: 0.3}
  - send: {to: c, text: never}
"""


def test_scenario_panel(snap_compare: Any, still_app: NetlabApp) -> None:
    """The scenario panel after a real run of a scenario whose sixth step fails: five steps passed,
    the failure, the step after it not run, the runner's report.  Times (and the report's event
    log, which has clock times) are fixed; everything else is what the runner said."""
    (scenario,) = load_text(SCENARIO, "scenarios/echo/echo-mixed.yaml")
    updates: list[StepUpdate] = []
    outcome = Runner(scenario, progress=updates.append).run()
    assert outcome.failure is not None and outcome.failure.step is scenario.steps[5]
    failure = dataclasses.replace(outcome.failure, log_tail=[])
    outcome = dataclasses.replace(outcome, seconds=0.912, failure=failure)
    updates = [dataclasses.replace(u, seconds=0.001 * (u.step.index + 1), failure=failure if u.failure else None)
               for u in updates]

    async def run_before(pilot: Pilot[Any]) -> None:
        await posed(pilot)
        app = pilot.app
        assert isinstance(app, NetlabApp)
        run = app.scenario_run = ScenarioRun(1, scenario.path, [scenario])
        panel = app.scenario_panel
        panel.begin(run)
        app.show_scenario_panel(True)
        panel.post_message(ScenarioPanel.Started(1, scenario))
        for update in updates:
            panel.post_message(ScenarioPanel.Stepped(1, update))
        panel.post_message(ScenarioPanel.Finished(1, outcome))
        panel.post_message(ScenarioPanel.Ended(1))
        await pilot.pause(0.3)

    assert snap_compare(still_app, terminal_size=SIZE, run_before=run_before)


async def held_list(pilot: Pilot[Any]) -> HeldScreen:
    await posed(pilot)
    app = pilot.app
    assert isinstance(app, NetlabApp)
    screen = HeldScreen(app.lab, clock=lambda: START + 45)
    app.push_screen(screen)
    await pilot.pause(0.3)
    return screen


def test_held_screen(snap_compare: Any, holding_app: NetlabApp) -> None:
    """`h` with a proxy's intercepts holding a MAIL from its client and a 354 from its server: the
    list (ages and timeouts at a fixed clock), the breakpoints, the selected MAIL's fields and bytes."""
    assert snap_compare(holding_app, terminal_size=SIZE, run_before=held_list)


def test_held_editor(snap_compare: Any, holding_app: NetlabApp) -> None:
    """`e` on the held MAIL: its editable fields as NAME=VALUE lines over the list."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await held_list(pilot)
        held = screen.selected()
        assert held is not None
        editor = HeldEditor(screen.lab, held)
        pilot.app.push_screen(editor)
        await pilot.pause(0.3)
        editor.query_one("#edit-fields", TextArea).cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(holding_app, terminal_size=SIZE, run_before=run_before)
