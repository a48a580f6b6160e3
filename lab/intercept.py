"""Intercept: hold the messages that match a breakpoint, then release,
drop or edit them.

A breakpoint is a filter-language expression (:mod:`lab.filtering`) set
on an endpoint: a proxy (both directions), a server (what its clients
send) or a client (what its server sends).  A message that matches is
held: its connection (on a proxy, that direction of it) stops there, the
messages behind it wait their turn, and every other connection goes on.
A held message is released as it is, dropped, or edited (its raw bytes,
or its decoded fields re-encoded by the protocol) and then released;
after the breakpoint's timeout it is released or dropped by itself.
Each step is an event in the log.

Everything here runs on the reactor thread; :class:`Held` offers blocking
methods for other threads (a shell) through the lab.

Tests: tests/test_intercept.py
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic, time
from typing import TYPE_CHECKING, Any

from lab.errors import CommandError, ConfigError, LabTimeout, LocalProtocolError, ProtocolError
from lab.eventlog import Direction, Event, EventKind
from lab.filtering import TrafficFilter, parse_filter
from lab.protocols._base import Message, Role, Timer, escape_bytes
from lab.protocols._framing import Data

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["Breakpoint", "Held", "Intercepts", "OnTimeout"]

DEFAULT_TIMEOUT = 300.0


class OnTimeout(enum.Enum):
    """What becomes of a held message nobody acts on."""

    RELEASE = "release"
    DROP = "drop"


@dataclass(frozen=True)
class Breakpoint:
    """Hold what matches ``text`` (a filter) on ``endpoint``."""

    endpoint: str
    text: str
    test: TrafficFilter = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    then: OnTimeout = OnTimeout.RELEASE

    def describe(self) -> str:
        return f"{self.endpoint}: {self.text or '(everything)'} (then {self.then.value} after {self.timeout:g} s)"


# resume(message): go on with this message (None: it was dropped)
Resume = Callable[[Message | None], None]


@dataclass(eq=False)
class Held:
    """One held message: where it was going and what stopped it."""

    id: str
    endpoint: str
    conn: str
    direction: Direction
    sender: Role  # which side sent it
    message: Message
    rule: Breakpoint
    since: float
    _resume: Resume = field(repr=False)
    _lab: Lab = field(repr=False)
    _timer: Timer | None = field(default=None, repr=False)

    @property
    def summary(self) -> str:
        return self.message.summary()

    def release(self) -> None:
        """Let it go on as it is (from any thread)."""
        self._lab.release(self.id)

    def drop(self) -> None:
        """Let it go nowhere (from any thread)."""
        self._lab.drop(self.id)

    def edit(self, raw: bytes | str | None = None, **fields: Any) -> Message:
        """Change it (its bytes, or decoded fields re-encoded) and let it go on."""
        return self._lab.edit(self.id, raw, **fields)

    def __repr__(self) -> str:
        arrow = "->" if self.direction is Direction.OUT else "<-"
        return f"<Held {self.id} {self.conn} {arrow} {self.message.summary()}>"


class Intercepts:
    """The breakpoints of one lab and the messages they hold."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._rules: dict[str, list[Breakpoint]] = {}
        self._held: dict[str, Held] = {}
        self._ids = itertools.count(1)
        self._waiters: list[asyncio.Future[None]] = []
        self.last_taken: Held | None = None  # the last one released, dropped or edited

    # -- breakpoints -----------------------------------------------------

    def add(self, endpoint: str, text: str, *, timeout: float = DEFAULT_TIMEOUT,
            then: OnTimeout | str = OnTimeout.RELEASE) -> Breakpoint:
        found = self.lab.get(endpoint)
        from lab.endpoints import Can

        if not found.can(Can.HOOK) and not found.can(Can.SEND):
            raise ConfigError(f"{endpoint!r} ({found.kind}) has no messages to hold",
                              hint="intercept on a proxy, a server or a client")
        if not timeout > 0:
            raise ConfigError("an intercept's timeout is seconds above 0", hint="e.g. --timeout 60")
        try:
            after = OnTimeout(then) if isinstance(then, str) else then
        except ValueError:
            raise ConfigError(f"unknown --then {then!r}", hint="release or drop") from None
        rule = Breakpoint(endpoint, text.strip(), parse_filter(text), timeout, after)
        self._rules.setdefault(endpoint, []).append(rule)
        found.breakpoints = tuple(self._rules[endpoint])
        self._note(endpoint, f"intercept on: {rule.describe()}")
        return rule

    def clear(self, endpoint: str) -> int:
        """Remove the endpoint's breakpoints (what they hold stays held)."""
        rules = self._rules.pop(endpoint, [])
        found = self.lab.endpoints.get(endpoint)
        if found is not None:
            found.breakpoints = ()
        if rules:
            self._note(endpoint, "intercept off")
        return len(rules)

    def rules(self) -> list[Breakpoint]:
        return [rule for rules in self._rules.values() for rule in rules]

    def match(self, endpoint: str, conn: str, direction: Direction, protocol: str,
              msg: Message, rules: tuple[Breakpoint, ...]) -> Breakpoint | None:
        """The first of ``rules`` that holds ``msg``, or None."""
        probe = Event(0, monotonic(), time(), endpoint, conn, EventKind.MESSAGE, direction, protocol,
                      None, msg.raw, msg)
        for rule in rules:
            if rule.test(probe):
                return rule
        return None

    # -- holding ---------------------------------------------------------

    def hold(self, rule: Breakpoint, conn: str, direction: Direction, sender: Role, msg: Message,
             resume: Resume) -> Held:
        held = Held(f"h{next(self._ids)}", rule.endpoint, conn, direction, sender, msg, rule, time(), resume,
                    self.lab)
        held._timer = self.lab.clock.call_later(rule.timeout, self._timed_out, held.id)
        self._held[held.id] = held
        self._note(rule.endpoint, f"held {held.id}: {msg.summary()} ({rule.text or 'everything'})", conn)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return held

    async def wait(self, count: int = 1, timeout: float = 10.0, endpoint: str | None = None) -> list[Held]:
        """Wait until ``count`` messages are held (on ``endpoint``, if
        given); returns them, oldest first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def matching() -> list[Held]:
            return [h for h in self._held.values() if endpoint is None or h.endpoint == endpoint]

        while len(found := matching()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                where = f" on {endpoint}" if endpoint else ""
                raise LabTimeout(f"{len(found)} of {count} message(s) held{where} after {timeout:g} s",
                                 hint="check the breakpoints with `intercept`, and the log")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
        return found

    def held(self) -> list[Held]:
        return list(self._held.values())

    def get(self, held_id: str) -> Held:
        found = self._held.get(held_id.lower())
        if found is None:
            ids = ", ".join(self._held) or "none"
            raise CommandError(f"nothing held as {held_id!r}", hint=f"held now: {ids}")
        return found

    def release(self, held_id: str) -> Held:
        held = self._take(held_id)
        self._note(held.endpoint, f"released {held.id}", held.conn)
        held._resume(held.message)
        return held

    def drop(self, held_id: str) -> Held:
        held = self._take(held_id)
        self._note(held.endpoint, f"dropped {held.id}: {held.message.summary()}", held.conn)
        held._resume(None)
        return held

    def edit(self, held_id: str, raw: bytes | None = None, **fields: Any) -> Message:
        """Replace a held message by new raw bytes (decoded as the protocol
        would) or by its decoded fields changed, and let it go on."""
        held = self.get(held_id)
        if raw is not None and fields:
            raise CommandError("edit either the raw bytes or fields, not both")
        if raw is None and not fields:
            raise CommandError("nothing to change", hint="give NAME=VALUE fields, or the raw bytes")
        try:
            new = self._decode(held, raw) if raw is not None else held.message.edited(**fields)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"cannot edit {held.id}: {exc}") from None
        except LocalProtocolError as exc:
            raise CommandError(f"cannot edit {held.id}: {exc.message}", hint=exc.hint) from None
        self._take(held_id)
        self._note(held.endpoint, f"edited {held.id}: {held.message.summary()} -> {new.summary()}"
                   f" ({escape_bytes(new.raw, 60)})", held.conn)
        held._resume(new)
        return new

    def _decode(self, held: Held, raw: bytes) -> Message:
        """New bytes as the protocol reads them (a fresh observer: the edit
        is one message on its own), or plain data."""
        endpoint = self.lab.endpoints.get(held.endpoint)
        if endpoint is not None:
            try:
                msgs = endpoint.spec.conversation(None, endpoint.transport).feed(raw, held.sender)
            except ProtocolError:
                msgs = []
            if len(msgs) == 1 and msgs[0].raw == raw:
                return msgs[0]
        return Data(raw=raw)

    def forget(self, conn: str) -> None:
        """The connection is gone: what it held goes nowhere."""
        for held in [h for h in self._held.values() if h.conn == conn]:
            self._take(held.id)
            self._note(held.endpoint, f"{held.id} dropped: the connection closed", held.conn)

    def _take(self, held_id: str) -> Held:
        held = self.get(held_id)
        del self._held[held.id]
        self.last_taken = held
        if held._timer is not None:
            held._timer.cancel()
        return held

    def _timed_out(self, held_id: str) -> None:
        held = self._held.get(held_id)
        if held is None:
            return
        self._note(held.endpoint, f"{held.id} waited {held.rule.timeout:g} s: {held.rule.then.value}", held.conn)
        if held.rule.then is OnTimeout.RELEASE:
            self.release(held_id)
        else:
            self.drop(held_id)

    def _note(self, endpoint: str, text: str, conn: str = "") -> None:
        self.lab.log.emit(EventKind.INFO, endpoint=endpoint, conn=conn, text=text)
