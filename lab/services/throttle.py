"""The lab's login throttle: password guessing slowed per source address,
one record shared by every server that authenticates (POP3, SMTP AUTH,
the telnet console, and those to come).

After ``free`` failures from one source, each further attempt from that
source waits its turn: the first turn comes ``first`` seconds after the
last failure, and each failure doubles the wait up to ``cap``.  Turns
are booked one after another, so parallel connections from one source
share one pace; an attempt whose turn would be more than ``cap`` seconds
away is refused unchecked.  A source quiet for ``forget`` seconds is
forgotten, and at most ``max_sources`` are tracked (the least recently
failed goes first).

A success does not wipe a source's record (as fail2ban counts failures
in a window whatever else the source does): the lab's accounts are
public, so a guesser who owns one could otherwise log in between guesses
to start afresh.  A user who mistyped loses nothing by it: only further
failures are slowed, and a quiet period forgets them.

A source is an IP address; IPv6 addresses count per /64 (one host
usually holds a whole /64), IPv4-mapped ones as IPv4.

It keeps no clock: callers pass ``now`` (the lab's clock), and it knows
nothing of protocols.

Tests: tests/test_throttle.py
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from lab.services import ServiceKey

__all__ = ["LOGIN_THROTTLE", "Penalty", "Throttle", "source_of"]


def source_of(address: object) -> str:
    """The key a peer address counts under: the IP address, an IPv6 one
    as its /64; anything else as its text."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return str(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True, kw_only=True)
class Penalty:
    """What a failure cost its source: ``failures`` so far, the ``delay``
    its next attempt waits (0: not slowed yet) and how many attempts were
    ``refused`` unchecked since its last failure."""

    source: str
    failures: int
    delay: float
    refused: int = 0


class _Record:
    __slots__ = ("failures", "last", "ready", "refused")

    def __init__(self) -> None:
        self.failures = 0
        self.last = 0.0  # when it last failed
        self.ready = 0.0  # no attempt of this source is checked before this
        self.refused = 0


class Throttle:
    """Failed logins per source, and the wait they impose; see the module
    docstring.  Runs on the reactor thread (no locking)."""

    def __init__(self, *, free: int = 3, first: float = 1.0, cap: float = 30.0, forget: float = 600.0,
                 max_sources: int = 10_000) -> None:
        if free < 0 or first <= 0 or cap < first or forget <= 0 or max_sources < 1:
            raise ValueError("throttle: free >= 0, 0 < first <= cap, forget > 0, max_sources >= 1")
        self.free, self.first, self.cap, self.forget = free, first, cap, forget
        self.max_sources = max_sources
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, source: object) -> bool:
        """Is there a record of ``source`` (stale or not)?"""
        return source in self._records

    def step(self, failures: int) -> float:
        """The wait between attempts after ``failures`` failures."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.first * 2.0 ** min(failures - self.free, 64))

    def failures(self, source: str, now: float) -> int:
        """Failures of ``source`` still remembered at ``now``."""
        record = self._get(source, now)
        return record.failures if record is not None else 0

    def admit(self, source: str, now: float) -> float | None:
        """An attempt from ``source`` arrives: seconds until it may be
        checked (its turn, now booked), or None when that would be more
        than ``cap`` seconds away (refuse it without checking)."""
        record = self._get(source, now)
        if record is None or (record.ready <= now and self.step(record.failures) == 0):
            return 0.0
        turn = max(now, record.ready)
        if turn - now > self.cap:
            record.refused += 1
            return None
        record.ready = turn + self.step(record.failures)  # the next one waits behind this one
        return turn - now

    def retry_after(self, source: str, now: float) -> float:
        """Seconds until ``source`` has a free turn."""
        record = self._get(source, now)
        return max(0.0, record.ready - now) if record is not None else 0.0

    def failed(self, source: str, now: float) -> Penalty:
        """An attempt from ``source`` was checked and failed."""
        record = self._get(source, now)
        if record is None:
            record = self._records[source] = _Record()
        else:
            self._records.move_to_end(source)
        record.failures += 1
        record.last = now
        delay = self.step(record.failures)
        record.ready = max(record.ready, now + delay)
        self._prune(now)
        refused, record.refused = record.refused, 0
        return Penalty(source=source, failures=record.failures, delay=delay, refused=refused)

    def _get(self, source: str, now: float) -> _Record | None:
        record = self._records.get(source)
        if record is not None and self._stale(record, now):
            del self._records[source]
            return None
        return record

    def _stale(self, record: _Record, now: float) -> bool:
        return now - record.last >= self.forget and record.ready <= now

    def _prune(self, now: float) -> None:
        records = self._records
        while records:
            oldest = next(iter(records.values()))
            if len(records) <= self.max_sources and not self._stale(oldest, now):
                break
            records.popitem(last=False)


LOGIN_THROTTLE: ServiceKey[Throttle] = ServiceKey("lab.login-throttle", Throttle)
