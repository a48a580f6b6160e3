"""One session's way through the lab's login throttle
(:mod:`lab.services.throttle`): a password is checked only when its
source's turn comes, on a timer of the lab's clock, so the loop keeps
serving everyone else meanwhile.  The session stops handling its
client's messages while an attempt waits (:attr:`LoginGate.waiting`),
so commands pipelined behind it wait too.

Tests: tests/test_throttle.py, tests/interop/test_guessing.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab.errors import ConnectionClosed
from lab.protocols._base import Clock, Timer
from lab.protocols._session import Peer
from lab.services import Services
from lab.services.throttle import LOGIN_THROTTLE, Throttle, source_of

__all__ = ["LoginGate"]


class LoginGate:
    """Attempts of one connection: :meth:`attempt` runs ``check`` when
    the source's turn comes (at once for a source without failures); the
    check reports back with :meth:`failed`.  Each failure that slows the
    source is one event in the log."""

    def __init__(self, services: Services, clock: Clock, conn: Peer) -> None:
        self.throttle: Throttle = services.get(LOGIN_THROTTLE)
        self.clock = clock
        self.conn = conn
        self.source = source_of(conn.peer[0]) if conn.peer else "?"
        self._timer: Timer | None = None

    @property
    def waiting(self) -> bool:
        """An attempt waits for its turn."""
        return self._timer is not None

    def attempt(self, check: Callable[[], Any], refuse: Callable[[float], Any],
                then: Callable[[], Any] | None = None) -> None:
        """Run ``check()`` at this source's turn, or ``refuse(seconds)``
        at once (the password unchecked) when the turn is too far away.
        A check that waited is followed by ``then()`` (the session goes on
        with what its client sent meanwhile)."""
        if self.source not in self.throttle:
            check()  # no failures on record: no need to ask the clock
            return
        wait = self.throttle.admit(self.source, self._now())
        if wait is None:
            refuse(self.throttle.retry_after(self.source, self._now()))
        elif wait <= 0:
            check()
        else:
            self._timer = self.clock.call_later(wait, self._turn, check, then)

    def _now(self) -> float:
        try:
            return self.clock.time()
        except RuntimeError:
            # a behaviour used alone outside any loop: asyncio's loops tell this same time
            return time.monotonic()

    def _turn(self, check: Callable[[], Any], then: Callable[[], Any] | None) -> None:
        self._timer = None
        try:
            check()
        except ConnectionClosed:
            return  # gone meanwhile: connection_lost follows
        if then is not None:
            then()

    def failed(self) -> None:
        """The check failed: count it against the source, and say so when
        the source is slowed."""
        penalty = self.throttle.failed(self.source, self._now())
        if penalty.delay > 0:
            refused = f" ({penalty.refused} more refused unchecked)" if penalty.refused else ""
            self.conn.note(f"login throttle: {penalty.failures} failed logins from {penalty.source}{refused}; "
                           f"its next attempt waits {penalty.delay:g} s")

    def cancel(self) -> None:
        """The connection is gone: drop a waiting attempt."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
