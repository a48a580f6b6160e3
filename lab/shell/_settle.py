"""Run interruptible work on the reactor without stray error reports.

When Ctrl-C cancels a bridged call just as the work fails on its own, the
reactor's task ends with an exception nobody retrieves, and asyncio logs
"Task exception was never retrieved".  Work wrapped by :func:`settled`
never ends with an exception: it returns the outcome as a value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["settled", "unwrap"]

T = TypeVar("T")


async def settled(make: Callable[[], Awaitable[T]]) -> tuple[T | None, Exception | None]:
    """Await ``make()``: ``(result, None)`` or ``(None, exception)``;
    cancellation passes through.  The work is created here, on the reactor,
    so work cancelled before it starts is never left un-awaited."""
    try:
        return await make(), None
    except Exception as exc:
        return None, exc


def unwrap(outcome: tuple[T | None, Exception | None]) -> T:
    """The result of a :func:`settled` outcome, or its exception raised."""
    result, error = outcome
    if error is not None:
        raise error
    return result  # type: ignore[return-value]
