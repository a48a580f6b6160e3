"""What the console's tests share besides fixtures (a module of its own:
every test directory has a conftest, so `from conftest import` is ambiguous)."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot


async def until(pilot: Pilot[object], predicate: Callable[[], object], timeout: float = 30.0,
                what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds (generous: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)
