"""The event log: everything that happens in a lab, in order.

Every listen, open, close, chunk of bytes, decoded message and error is an
:class:`Event` with a sequence number, monotonic and wall-clock times, the
endpoint, the connection and the direction.  The log keeps the newest
``capacity`` events in a ring, calls subscribers synchronously on the
reactor thread, and can spill every event to a JSONL file as it happens,
one ``write`` per batch, so a crash loses nothing already written.

Tests: tests/test_eventlog.py
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import monotonic
from time import time as wall_time
from typing import IO, Any, SupportsIndex, overload

from lab.protocols._base import Message, Spans, escape_bytes, mask_bytes

__all__ = [
    "Capture",
    "Direction",
    "Event",
    "EventFilter",
    "EventKind",
    "EventLog",
    "EventSlice",
    "format_event",
]

logger = logging.getLogger(__name__)


class EventKind(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    LISTEN = "listen"
    OPEN = "open"
    CLOSE = "close"
    DATA = "data"
    MESSAGE = "msg"
    ERROR = "error"
    INFO = "info"
    STOP = "stop"


class Direction(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    IN = "in"
    OUT = "out"
    NONE = "-"

    @property
    def arrow(self) -> str:
        return {"in": "<-", "out": "->", "-": ""}[self.value]


class Capture(enum.Enum):
    """How much an endpoint records: everything, summaries, or counters only
    (errors are always recorded)."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    FULL = "full"
    SUMMARY = "summary"
    OFF = "off"


@dataclass(slots=True, eq=False)
class Event:
    """One thing that happened.  ``raw`` and ``message`` are kept only at
    full capture; ``summary`` is always there.

    ``secret`` holds the spans of ``raw`` that are secret (a password, a
    credential), ``None`` when there are none; ``()`` for an event read
    from a file where they were masked already.  ``raw`` keeps the real
    bytes in memory; ``summary`` masks them; :attr:`revealed` shows them;
    :meth:`to_dict` (what files hold) masks them unless told to reveal.
    """

    seq: int
    mono: float
    wall: float
    endpoint: str
    conn: str
    kind: EventKind
    direction: Direction
    protocol: str
    text: str | None = None
    raw: bytes | None = None
    message: Message | None = None
    secret: Spans | None = None

    @property
    def summary(self) -> str:
        if self.text is not None:
            return self.text
        if self.message is not None:
            self.text = self.message.summary()
        elif self.raw is not None:
            if self.secret is None:
                self.text = escape_bytes(self.raw)
            else:
                self.text = escape_bytes(mask_bytes(self.raw, self.secret)) + _MASKED_NOTE
        else:
            self.text = ""
        return self.text

    @property
    def revealed(self) -> str:
        """The summary with secrets shown (what crossed the wire)."""
        if not self.secret:
            return self.summary
        if self.message is not None:
            return self.message.revealed()
        if self.raw is not None:
            return escape_bytes(self.raw) + " (sent in cleartext)"
        return self.summary

    @property
    def masked_raw(self) -> bytes | None:
        """``raw`` with each secret span replaced by ``********``."""
        if self.raw is None or not self.secret:
            return self.raw
        return mask_bytes(self.raw, self.secret)

    def to_dict(self, *, compact: bool = False, reveal: bool = False) -> dict[str, Any]:
        """The event as JSON-ready values.  ``compact`` (files: the spill,
        `log save`) leaves out a summary that is just the escaped bytes,
        and keeps bytes that are mostly not text as base85 (``raw85``), so
        a file costs little more than the traffic it holds.  Secret bytes
        are masked (and ``"masked": true`` set) unless ``reveal``."""
        out: dict[str, Any] = {
            "seq": self.seq,
            "time": self.wall,
            "mono": self.mono,
            "endpoint": self.endpoint,
            "conn": self.conn,
            "kind": self.kind.value,
            "dir": self.direction.value,
            "proto": self.protocol,
            "summary": self.revealed if reveal else self.summary,
        }
        raw = self.raw
        if self.secret is not None and not reveal:
            raw = self.masked_raw
            out["masked"] = True
        if raw is not None:
            if compact and len(raw) <= SUMMARY_BYTES and out["summary"] == escape_bytes(raw):
                del out["summary"]  # a reader makes it again from the bytes
            # JSON writes a byte outside printable ASCII as six characters:
            # past one in twenty, base85's fixed 5 for 4 costs less
            if compact and len(raw.translate(None, _PLAIN)) * 20 > len(raw):
                out["raw85"] = base64.b85encode(raw).decode("ascii")
            else:
                # latin-1 maps each byte to one code point: exact and readable
                out["raw"] = raw.decode("latin-1")
        if self.message is not None:
            out["type"] = type(self.message).__name__
            out["fields"] = self.message.fields()
        return out

    def to_json(self, *, compact: bool = False, reveal: bool = False) -> str:
        return json.dumps(self.to_dict(compact=compact, reveal=reveal), default=str, ensure_ascii=True)


_MASKED_NOTE = " (secret masked)"
SUMMARY_BYTES = 200  # escape_bytes' default cut: a longer payload's summary is never the whole of it
# bytes JSON writes in one or two characters (text's line ends among them)
_PLAIN = bytes(range(0x20, 0x7F)) + b"\t\n\r"

_stamp: list[Any] = [None, ""]  # the last second formatted, and its text


def format_event(event: Event, width: int = 10, *, reveal: bool = False) -> str:
    """One readable line: time, connection, what, summary (with secrets
    shown if ``reveal``)."""
    second = int(event.wall)
    if _stamp[0] != second:  # strftime once a second, not once an event
        _stamp[:] = [second, time.strftime("%H:%M:%S", time.localtime(second))]
    stamp = _stamp[1]
    millis = int(event.wall * 1000) % 1000
    who = event.conn or event.endpoint
    what = event.direction.arrow if event.kind in (EventKind.MESSAGE, EventKind.DATA) else event.kind.value
    if event.kind is EventKind.DATA:
        what += " raw"
    summary = event.revealed if reveal else event.summary
    return f"{stamp}.{millis:03d}  {who:<{width}}  {what:<6} {summary}".rstrip()


@dataclass(frozen=True, kw_only=True)
class EventFilter:
    """Which events to keep; unset criteria match everything.

    ``text`` matches case-insensitively inside the summary; ``regex`` is
    searched in the summary and, when kept, the raw bytes (as latin-1, secrets masked).
    """

    endpoint: str | None = None
    conn: str | None = None
    direction: Direction | None = None
    protocol: str | None = None
    kinds: frozenset[EventKind] | None = None
    text: str | None = None
    regex: re.Pattern[str] | None = None
    since: int | None = None

    def __call__(self, event: Event) -> bool:
        if self.since is not None and event.seq <= self.since:
            return False
        if self.endpoint is not None and event.endpoint != self.endpoint:
            return False
        if self.conn is not None and event.conn != self.conn:
            return False
        if self.direction is not None and event.direction is not self.direction:
            return False
        if self.protocol is not None and event.protocol != self.protocol:
            return False
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.text is not None and self.text.lower() not in event.summary.lower():
            return False
        if self.regex is not None:
            hay = event.summary
            raw = event.masked_raw  # a search must not confirm a guessed password
            if raw is not None:
                hay += "\n" + raw.decode("latin-1")
            if not self.regex.search(hay):
                return False
        return True


class EventSlice(list[Event]):
    """Events taken from a log (``tail``, ``query``): a plain list that
    renders as a readable table in IPython and Jupyter."""

    def __repr__(self) -> str:
        return f"<{len(self)} events>"

    @overload
    def __getitem__(self, index: SupportsIndex) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> EventSlice: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Event | EventSlice:
        if isinstance(index, slice):
            return EventSlice(super().__getitem__(index))
        return super().__getitem__(index)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from lab.reprs import pretty

        pretty(self, p, cycle)

    def _repr_html_(self) -> str:
        from lab.reprs import html_of

        return html_of(self)


def _overlaps(chunk: bytes, raw: bytes) -> bool:
    """Could ``chunk`` be a piece of ``raw``: its middle, start or end?"""
    if chunk in raw:
        return True
    return any(chunk.endswith(raw[:k]) or chunk.startswith(raw[-k:]) for k in range(1, min(len(chunk), len(raw))))


Subscriber = Callable[[Event], None]

PAYLOAD_OVERHEAD = 64  # per event kept with bytes, so empty payloads count too
_CHUNK_LOOKBACK = 64  # events back from a secret message to the chunk that held it


class EventLog:
    """A bounded, subscribable, spillable record of events.

    Two bounds hold: at most ``capacity`` events, and at most about
    ``payload_limit`` bytes of raw payload; past that the oldest events
    keep their summaries but drop their bytes and decoded messages (a
    spill file keeps everything).  Secrets in events reach the spill file
    and :meth:`export_jsonl` masked unless ``keep_secrets``.  Events are
    added on the reactor thread;
    :meth:`tail` and :meth:`query` take a snapshot and are safe from any
    thread.
    """

    def __init__(self, capacity: int = 100_000, payload_limit: int = 64 * 1024 * 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.payload_limit = payload_limit
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._with_payload: deque[Event] = deque()
        self._payload_bytes = 0
        self._seq = 0
        self._subscribers: list[Subscriber] = []
        self._spill_fd: int | None = None
        self._spill_path: str | None = None
        self._pending: list[Event] = []  # written as JSON at flush: a chunk may learn of its secret after it
        self.keep_secrets = False  # files get secrets in clear (the user asked)
        self._flush_scheduled = False
        self._scheduler: Callable[[Callable[[], None]], object] | None = None
        self._spill_lock = threading.Lock()

    # -- adding ----------------------------------------------------------

    def bind(self, scheduler: Callable[[Callable[[], None]], object]) -> None:
        """Batch spill writes: ``scheduler(fn)`` runs ``fn`` after the
        current burst of events (the reactor's ``call_soon``)."""
        self._scheduler = scheduler

    def emit(
        self,
        kind: EventKind,
        endpoint: str,
        conn: str = "",
        direction: Direction = Direction.NONE,
        protocol: str = "",
        text: str | None = None,
        raw: bytes | None = None,
        message: Message | None = None,
    ) -> Event:
        """Record one event and hand it to subscribers."""
        self._seq = seq = self._seq + 1
        event = Event(seq, monotonic(), wall_time(), endpoint, conn, kind, direction, protocol,
                      text, raw, message)
        ring = self._ring
        if len(ring) == self.capacity:
            # the oldest event leaves the ring: its bytes must not outlive it
            leaving = ring[0]
            if leaving.raw is not None and self._with_payload and self._with_payload[0] is leaving:
                self._with_payload.popleft()
                self._payload_bytes -= len(leaving.raw) + PAYLOAD_OVERHEAD
        if message is not None and message.SECRET:  # a class flag: other messages pay nothing
            spans = message.secret_spans()
            if spans:
                event.secret = spans
                self._mask_chunk(event, message.raw, spans)
        ring.append(event)
        if raw is not None:
            self._with_payload.append(event)
            self._payload_bytes += len(raw) + PAYLOAD_OVERHEAD
            if self._payload_bytes > self.payload_limit:
                self._shed()
        if self._spill_fd is not None:
            self._pending.append(event)
            if self._scheduler is None:
                self.flush()
            elif not self._flush_scheduled:
                self._flush_scheduled = True
                self._scheduler(self.flush)
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception as exc:  # a watcher's bug must not break the traffic it watches
                self._drop_subscriber(fn, exc)
        return event

    def _mask_chunk(self, event: Event, raw: bytes, spans: Spans) -> None:
        """Mark the secret in the chunk (DATA) event that brought this
        message's bytes, if one did: it was logged just before."""
        ring, covered = self._ring, 0
        for i in range(len(ring) - 1, max(len(ring) - _CHUNK_LOOKBACK, 0) - 1, -1):
            old = ring[i]
            if old.conn != event.conn or old.direction is not event.direction:
                continue
            if old.kind is not EventKind.DATA or old.raw is None:
                if old.kind is EventKind.MESSAGE:
                    continue  # an earlier message of the same chunk
                return
            at = old.raw.rfind(raw)
            if at >= 0:
                old.secret = tuple((at + a, at + b) for a, b in spans)
            elif _overlaps(old.raw, raw):  # the message came in several chunks: hide each piece
                old.secret = ((0, len(old.raw)),)
            else:
                return  # a chunk of something else: this message came whole
            old.text = None  # its summary shows the bytes: make it again, masked
            covered += len(old.raw)
            if at >= 0 or covered >= len(raw):
                return

    def _drop_subscriber(self, fn: Subscriber, exc: Exception) -> None:
        self._subscribers = [s for s in self._subscribers if s is not fn]
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        logger.warning("event-log subscriber %s raised and was removed", name, exc_info=exc)
        self.emit(EventKind.ERROR, "", text=f"a log subscriber ({name}) raised {type(exc).__name__}: {exc};"
                  " it no longer receives events")

    def _shed(self) -> None:
        """Drop the bytes of the oldest events until under the payload limit."""
        while self._payload_bytes > self.payload_limit and self._with_payload:
            old = self._with_payload.popleft()
            self._payload_bytes -= len(old.raw or b"") + PAYLOAD_OVERHEAD
            old.summary  # noqa: B018 -- computed now, while the bytes exist
            old.raw = None
            old.message = None

    @property
    def payload_bytes(self) -> int:
        """Raw bytes the log holds now (approximately)."""
        return self._payload_bytes

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event)`` for each new event (on the reactor thread; keep
        it quick).  Returns a function that unsubscribes."""
        self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            self._subscribers = [s for s in self._subscribers if s is not fn]

        return unsubscribe

    # -- spilling --------------------------------------------------------

    def spill_to(self, path: str | os.PathLike[str], *, include_existing: bool = True) -> None:
        """Append every event from now on to a JSONL file, one write per
        batch; with ``include_existing`` the ring's events go first."""
        self.stop_spill()
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with self._spill_lock:
            self._spill_fd = fd
            self._spill_path = os.fspath(path)
            if include_existing:
                self._pending = [*tuple(self._ring), *self._pending]
        self.flush()

    @property
    def spill_path(self) -> str | None:
        return self._spill_path

    def flush(self) -> None:
        """Write pending spill lines now."""
        with self._spill_lock:
            self._flush_scheduled = False
            if self._spill_fd is None or not self._pending:
                return
            reveal = self.keep_secrets
            data = ("\n".join([e.to_json(compact=True, reveal=reveal) for e in self._pending]) + "\n").encode("ascii")
            self._pending = []
            view = memoryview(data)
            while view:
                written = os.write(self._spill_fd, view)
                view = view[written:]

    def stop_spill(self) -> None:
        self.flush()
        with self._spill_lock:
            if self._spill_fd is not None:
                os.close(self._spill_fd)
            self._spill_fd = None
            self._spill_path = None

    # -- reading ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ring)

    def __iter__(self) -> Iterator[Event]:
        return iter(tuple(self._ring))

    @property
    def total(self) -> int:
        """Events recorded since the start, including those rotated out."""
        return self._seq

    @property
    def dropped(self) -> int:
        """Events rotated out of the ring to respect its capacity."""
        return self._seq - len(self._ring)

    def snapshot(self) -> tuple[Event, ...]:
        return tuple(self._ring)

    def query(self, flt: EventFilter | None = None, *, limit: int | None = None) -> EventSlice:
        """Events matching ``flt``, oldest first; the newest ``limit``."""
        events: Iterable[Event] = self.snapshot()
        if flt is not None:
            events = [e for e in events if flt(e)]
        out = list(events)
        return EventSlice(out[-limit:] if limit else out)

    def tail(self, n: int = 10, flt: EventFilter | None = None) -> EventSlice:
        """The newest ``n`` events (matching ``flt``), oldest first."""
        return self.query(flt, limit=n)

    def export_jsonl(self, target: str | os.PathLike[str] | IO[str], flt: EventFilter | None = None,
                     *, reveal: bool | None = None) -> int:
        """Write matching events as JSON lines, secrets masked unless
        ``reveal`` (by default: ``keep_secrets``); returns how many."""
        events = self.query(flt)
        reveal = self.keep_secrets if reveal is None else reveal
        lines = "".join(e.to_json(compact=True, reveal=reveal) + "\n" for e in events)
        if isinstance(target, (str, os.PathLike)):
            with open(target, "w", encoding="ascii") as fh:
                fh.write(lines)
        else:
            target.write(lines)
        return len(events)

    def __repr__(self) -> str:
        return f"<EventLog {len(self)} of {self.capacity} events, {self.total} total>"
