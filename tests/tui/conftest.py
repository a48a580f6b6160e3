"""Fixtures for the TUI tests: a running app over a live lab."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (Textual's Pilot needs one)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


async def until(pilot: Pilot[object], predicate: Callable[[], object], timeout: float = 30.0,
                what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds (generous: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)
