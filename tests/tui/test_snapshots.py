"""Snapshot tests (pytest-textual-snapshot) of the main screens over the
still lab: fixed ports, addresses and times, real protocol behaviours.

Update after an intended change with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from lab.tui.app import NetlabApp
from lab.tui.still import pose, still_lab

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
