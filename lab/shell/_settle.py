"""Run interruptible work on the reactor without stray error reports.

When Ctrl-C cancels a bridged call just as the work fails on its own, the
reactor's task ends with an exception nobody retrieves, and asyncio logs
"Task exception was never retrieved".  Work wrapped by :func:`settled`
never ends with an exception: it returns the outcome as a value.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["settled", "unwrap"]

T = TypeVar("T")


async def settled(work: Awaitable[T]) -> tuple[T | None, Exception | None]:
    """``(result, None)`` or ``(None, exception)``; cancellation passes through."""
    try:
        return await work, None
    except Exception as exc:
        return None, exc


def unwrap(outcome: tuple[T | None, Exception | None]) -> T:
    """The result of a :func:`settled` outcome, or its exception raised."""
    result, error = outcome
    if error is not None:
        raise error
    return result  # type: ignore[return-value]
