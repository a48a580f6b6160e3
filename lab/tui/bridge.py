"""Calling into the lab from the UI: the lab's objects (intercepts,
connections) live on its reactor thread, the UI on Textual's loop.

Tests: tests/tui/test_proxy_console.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["on_reactor"]

T = TypeVar("T")


async def on_reactor(lab: Lab, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run on the lab's reactor, awaited from the
    UI's loop (its exceptions are raised here)."""

    async def call() -> T:
        return fn(*args, **kwargs)

    return await lab.reactor.run_async(call())
