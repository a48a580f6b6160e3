"""Reply budgets: what a UDP server may send each source address, so a
lab server is no amplifier.

A UDP source address can be forged, so a server that answers a 1-byte
datagram with 512 bytes (chargen) lends an attacker its bandwidth
against whoever owns that address.  Each source address gets a token
bucket of reply bytes:

* it earns ``rate`` bytes a second, and ``ratio`` bytes for every byte
  it sends, and holds at most ``burst``;
* a datagram is answered only while the bucket holds something; the
  reply is then taken from it, whatever its size (the bucket may go
  into debt by one reply);
* a datagram that arrives with the bucket empty gets no answer and
  never reaches the session.

So over any stretch of time T a source that sent B bytes is sent at
most ``burst + rate * T + ratio * B`` bytes plus one reply: a flood of
small datagrams gets about ``ratio`` times what it sends, while a person
asking a few times a second never notices.  An echo server (replies as
large as requests) is never limited while ``ratio`` is at least 1.

Memory stays bounded: a source whose bucket has filled up again is the
same as one never seen, so it is forgotten; at most ``max_sources`` are
tracked, and sources beyond that share one bucket.

When the budget bites, the first unanswered datagram from a source is
reported, then a count at most every ``report_every`` seconds, then the
moment it is answered again; reports from all sources together are
capped at ``MAX_REPORTS`` a second.

Tests: tests/test_udp_budget.py
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "MAX_REPORTS", "BudgetLimits", "ReplyBudget", "parse_budget", "parse_limits"]

MAX_REPORTS = 10  # budget reports a second, all sources together
_FORGET_CHECK = 8  # tracked sources looked at for one to forget when the table is full


@dataclass(frozen=True, kw_only=True)
class BudgetLimits:
    """One server's reply budget per source address.

    The defaults leave room for a person: 32 of chargen's largest answers
    at once, then 8 a second (forty or so for qotd); a flood of tiny
    datagrams gets twice what it sends.
    """

    rate: float = 4096.0  # reply bytes a second each source earns
    burst: int = 16 * 1024  # the most a source holds
    ratio: float = 2.0  # reply bytes earned per byte received
    max_sources: int = 4096
    report_every: float = 1.0

    def describe(self) -> str:
        return f"{_size(self.rate)}/s, burst {_size(self.burst)}, {self.ratio:g}x what it sends"


DEFAULT_LIMITS = BudgetLimits()


def _size(value: float) -> str:
    n = int(value)
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


_LIMITS = re.compile(r"\s*(\d+)([kKmM]?)\s*(?:/\s*(\d+)([kKmM]?)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?)?")
_SCALE = {"": 1, "k": 1024, "m": 1024 * 1024}


def parse_limits(text: str) -> BudgetLimits:
    """``RATE[/BURST[/RATIO]]`` in bytes (K and M allowed): ``4K/16K/2``;
    ValueError with what is wrong."""
    m = _LIMITS.fullmatch(text)
    if m is None:
        raise ValueError(f"wants RATE[/BURST[/RATIO]] such as 4K/16K/2, got {text!r}")
    rate = int(m.group(1)) * _SCALE[m.group(2).lower()]
    burst = int(m.group(3)) * _SCALE[(m.group(4) or "").lower()] if m.group(3) else max(rate, DEFAULT_LIMITS.burst)
    ratio = float(m.group(5)) if m.group(5) else DEFAULT_LIMITS.ratio
    if rate <= 0 or burst <= 0:
        raise ValueError(f"wants a rate and a burst above 0, got {text!r}")
    return BudgetLimits(rate=rate, burst=burst, ratio=ratio)


def parse_budget(text: str) -> BudgetLimits | None:
    """A server's ``reply_budget`` as written: ``RATE[/BURST[/RATIO]]``,
    or ``off`` (None: no budget); ValueError with what is wrong."""
    if text.strip().lower() == "off":
        return None
    return parse_limits(text)


class _Source:
    """One source address's bucket and what it has not been answered."""

    __slots__ = ("biting", "dropped", "reported", "seen", "tokens", "total_unanswered", "unanswered",
                 "unanswered_bytes")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.seen = now
        self.unanswered = 0  # since the last report
        self.unanswered_bytes = 0
        self.total_unanswered = 0  # since the budget began to bite
        self.reported = now
        self.dropped = now  # when a datagram last went unanswered
        self.biting = False


class ReplyBudget:
    """The reply budget of one UDP server, per source address.

    Call :meth:`admit` for each datagram (False: leave it unanswered),
    :meth:`spend` for each reply sent, and :meth:`sweep` now and then to
    forget refilled sources and send due reports.  ``clock`` gives
    seconds (monotonic); ``report`` takes one line for the event log.
    """

    OTHERS = "other sources"  # the shared bucket beyond max_sources

    def __init__(self, limits: BudgetLimits, clock: Callable[[], float], report: Callable[[str], None]) -> None:
        self.limits = limits
        self._clock = clock
        self._report = report
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._reports = float(MAX_REPORTS)  # a bucket of reports too
        self._reports_at = clock()
        self._skipped_reports = 0
        self.received = self.sent = self.unanswered = 0  # bytes in, bytes out, datagrams dropped

    def __len__(self) -> int:
        """The number of sources tracked."""
        return len(self._sources)

    def _source(self, host: str, now: float) -> tuple[str, _Source]:
        src = self._sources.get(host)
        if src is not None:
            self._sources.move_to_end(host)
            return host, src
        if len(self._sources) >= self.limits.max_sources:
            self._forget_some(now)
            if len(self._sources) >= self.limits.max_sources:
                host = self.OTHERS
                src = self._sources.get(host)
                if src is not None:
                    return host, src
                # the shared bucket itself takes the least recent place
                oldest = next(iter(self._sources))
                self._close(oldest, self._sources.pop(oldest), now)
        src = self._sources[host] = _Source(float(self.limits.burst), now)
        return host, src

    def _refill(self, src: _Source, now: float, received: int) -> None:
        limits = self.limits
        earned = limits.rate * max(0.0, now - src.seen) + limits.ratio * received
        src.tokens = min(float(limits.burst), src.tokens + earned)
        src.seen = now

    def admit(self, host: str, size: int) -> bool:
        """A datagram of ``size`` bytes from ``host``: may it be answered?"""
        now = self._clock()
        self.received += size
        host, src = self._source(host, now)
        self._refill(src, now, size)
        if src.tokens > 0:
            # under a flood the bucket lets one through now and then: the
            # budget stops biting only after a quiet report_every
            if src.biting and now - src.dropped >= self.limits.report_every:
                self._close(host, src, now)
            return True
        self.unanswered += 1
        src.dropped = now
        src.unanswered += 1
        src.unanswered_bytes += size
        src.total_unanswered += 1
        if not src.biting:
            src.biting, src.reported = True, now
            self._say(f"udp reply budget bites: {host} asks for more than {self.limits.describe()}; "
                      "datagrams beyond it go unanswered (counted, not logged one by one)", now)
            src.unanswered = src.unanswered_bytes = 0
        elif now - src.reported >= self.limits.report_every:
            self._summary(host, src, now)
        return False

    def spend(self, host: str, size: int) -> None:
        """``size`` reply bytes went to ``host``."""
        self.sent += size
        src = self._sources.get(host) or self._sources.get(self.OTHERS)
        if src is not None:
            src.tokens -= size

    def sweep(self) -> None:
        """Send due reports and forget sources whose bucket is full again."""
        now = self._clock()
        for host, src in list(self._sources.items()):
            self._refill(src, now, 0)
            if src.biting and src.unanswered and now - src.reported >= self.limits.report_every:
                self._summary(host, src, now)
            if src.biting and now - src.dropped >= self.limits.report_every:
                self._close(host, src, now)
            if src.tokens >= self.limits.burst:
                self._close(host, src, now)
                del self._sources[host]

    def _forget_some(self, now: float) -> None:
        """Forget, of the least recent sources, those whose bucket has refilled."""
        for host in list(self._sources)[:_FORGET_CHECK]:
            src = self._sources[host]
            self._refill(src, now, 0)
            if src.tokens >= self.limits.burst:
                self._close(host, src, now)
                del self._sources[host]

    def _summary(self, host: str, src: _Source, now: float) -> None:
        self._say(f"udp reply budget: {src.unanswered} datagrams ({src.unanswered_bytes} B) from {host} "
                  f"unanswered in the last {now - src.reported:.1f} s", now)
        src.unanswered = src.unanswered_bytes = 0
        src.reported = now

    def _close(self, host: str, src: _Source, now: float) -> None:
        """The budget stops biting ``host``: say how much went unanswered."""
        if src.biting:
            src.biting = False
            self._say(f"udp reply budget: {host} is within its budget again ({src.total_unanswered} datagrams "
                      "went unanswered in all)", now)
            src.total_unanswered = src.unanswered = src.unanswered_bytes = 0

    def _say(self, text: str, now: float) -> None:
        self._reports = min(float(MAX_REPORTS), self._reports + (now - self._reports_at) * MAX_REPORTS)
        self._reports_at = now
        if self._reports < 1:
            self._skipped_reports += 1
            return
        self._reports -= 1
        if self._skipped_reports:
            text += f" ({self._skipped_reports} more budget reports skipped)"
            self._skipped_reports = 0
        self._report(text)
