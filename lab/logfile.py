"""Saved logs: reading back the JSON lines that ``log save``,
:meth:`EventLog.export_jsonl <lab.eventlog.EventLog.export_jsonl>` and a
spill file (``--log-file``) write.

Each line is one :meth:`Event.to_json <lab.eventlog.Event.to_json>`.  An
event comes back with its kind, direction, endpoint, connection, protocol,
times, summary and raw bytes; its decoded message comes back as a
:class:`SavedMessage` that keeps the summary, fields and type name the
file holds (the protocol's own class is not rebuilt: a saved log is for
looking at).

A line that is not an event is a :class:`~lab.errors.ConfigError` naming
``FILE:LINE``; only a last line cut short (a spill whose writer was
killed mid-line) is skipped, with a warning.

Tests: tests/test_logfile.py
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lab.errors import ConfigError, LabError
from lab.eventlog import PAYLOAD_OVERHEAD, Direction, Event, EventKind, EventLog
from lab.protocols._base import Message, escape_bytes

__all__ = ["MAX_LINE", "SavedLog", "SavedMessage", "event_from_dict", "iter_events", "load", "load_log"]

MAX_LINE = 32 * 1024 * 1024
"""The longest line read (bytes): a spill line holds one message, escaped."""

_LAST_WALL = 253402300799.0  # 9999-12-31: later times break time.localtime()
_MAX_SEQ = 2**63
_KINDS = {k.value: k for k in EventKind}
_DIRECTIONS = {d.value: d for d in Direction}
_HINT = "a netlab log has one JSON event per line, as `log save FILE` and --log-file write them"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SavedMessage(Message):
    """A decoded message as a saved log keeps it: its wire bytes, summary,
    kind and fields.  ``type(msg).__name__`` is the original message
    class's name (``Command``, ``Reply``), so views that show it read as
    they do live."""

    saved_kind: str = "data"
    saved_summary: str = ""
    saved_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.saved_kind

    def summary(self) -> str:
        return self.saved_summary

    def fields(self) -> dict[str, Any]:
        return self.saved_fields


@lru_cache(maxsize=512)
def _message_class(type_name: str) -> type[SavedMessage]:
    """A :class:`SavedMessage` subclass named as the saved message type."""
    if not type_name.isidentifier() or len(type_name) > 100:
        return SavedMessage
    return type(type_name, (SavedMessage,), {"__slots__": (), "__qualname__": type_name,
                                              "__module__": __name__})


@lru_cache(maxsize=512)
def _class_kind(protocol: str, type_name: str) -> str | None:
    """The ``KIND`` of the protocol's message class of that name, if the
    protocol is installed (a saved log does not store kinds)."""
    from lab import protocols

    try:
        protocols.get(protocol)
    except LabError:
        return None
    pending: list[type[Message]] = [Message]
    seen: set[type[Message]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen or issubclass(cls, SavedMessage):
            continue
        seen.add(cls)
        if cls.__name__ == type_name and cls.__module__.startswith(f"lab.protocols.{protocol}"):
            return cls.KIND
        pending.extend(cls.__subclasses__())
    return None


def _kind_of(protocol: str, type_name: str, fields: dict[str, Any]) -> str:
    # protocols whose kind is the verb or command name it carries
    for key in ("verb", "command"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    return _class_kind(protocol, type_name) or type_name.lower()


class _Invalid(Exception):
    """A line that is not an event (the loader adds FILE:LINE)."""


def _text(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise _Invalid(f"{key!r} is missing or not a string" if value is None else f"{key!r} is not a string")
    return value


def _number(d: dict[str, Any], key: str, default: float | None = None) -> float:
    value = d.get(key, default)
    if value is None:
        raise _Invalid(f"{key!r} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"{key!r} is not a number")
    value = float(value)
    if not math.isfinite(value):
        raise _Invalid(f"{key!r} is not a finite number")
    return value


def event_from_dict(d: Any) -> Event:
    """The event a :meth:`Event.to_dict <lab.eventlog.Event.to_dict>`
    describes; :class:`ValueError` naming what is wrong if it is not one."""
    try:
        return _event(d)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def _event(d: Any) -> Event:
    if not isinstance(d, dict):
        raise _Invalid(f"a JSON {type(d).__name__}, not an event object")
    seq = d.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < _MAX_SEQ:
        raise _Invalid("'seq' is missing or not a whole number" if seq is None or not isinstance(seq, int)
                       else "'seq' is out of range")
    wall = _number(d, "time")
    if not 0 <= wall <= _LAST_WALL:
        raise _Invalid("'time' is not a date between 1970 and 9999")
    mono = _number(d, "mono", wall)
    kind = _KINDS.get(_text(d, "kind"))
    if kind is None:
        raise _Invalid(f"unknown kind {d['kind']!r} (one of: {' '.join(_KINDS)})")
    direction = _DIRECTIONS.get(_text(d, "dir"))
    if direction is None:
        raise _Invalid(f"unknown direction {d['dir']!r} (one of: in out -)")
    endpoint, conn, protocol = (_text(d, k) for k in ("endpoint", "conn", "proto"))
    raw = None
    if d.get("raw") is not None:
        try:
            raw = _text(d, "raw").encode("latin-1")
        except UnicodeEncodeError:
            raise _Invalid("'raw' holds characters above \\xff, so it is not bytes as netlab saves them") from None
    elif d.get("raw85") is not None:
        try:
            raw = base64.b85decode(_text(d, "raw85"))
        except ValueError:
            raise _Invalid("'raw85' is not base85") from None
    if "summary" in d or raw is None:
        summary = _text(d, "summary")
    else:  # a compact file leaves out a summary that is just the escaped bytes
        summary = escape_bytes(raw)
    message = None
    if d.get("type") is not None:
        type_name = _text(d, "type")
        fields = d.get("fields", {})
        if not isinstance(fields, dict):
            raise _Invalid("'fields' is not an object")
        message = _message_class(type_name)(
            raw=raw or b"", saved_kind=_kind_of(protocol, type_name, fields), saved_summary=summary,
            saved_fields=fields)
    event = Event(seq, mono, wall, endpoint, conn, kind, direction, protocol, summary, raw, message)
    if d.get("masked") is True:
        event.secret = ()  # its secrets were masked when written: nothing to reveal
    return event


def iter_events(path: str | os.PathLike[str], *, max_line: int = MAX_LINE,
                warn: Callable[[str], None] | None = None) -> Iterator[Event]:
    """The events of a saved log, one line at a time.

    A line that is not an event, or is longer than ``max_line`` bytes, is a
    :class:`ConfigError` naming ``FILE:LINE``.  A last line cut short
    (no newline, not complete JSON, but begun as an event) is skipped and
    ``warn`` is told why.
    """
    name = os.fspath(path)
    try:
        fh = open(name, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}",
                          hint="check the path; `log save FILE` writes a log") from None
    with fh:
        lineno = 0
        while line := fh.readline(max_line + 1):
            lineno += 1
            if len(line) > max_line:
                raise ConfigError(f"{name}:{lineno}: a line longer than {max_line:,} bytes",
                                  hint=f"not a netlab log? ({_HINT})")
            text = line.strip()
            if not text:
                continue
            try:
                yield _parse(text)
            except _Invalid as exc:
                if not line.endswith(b"\n") and text.startswith(b'{"seq": ') and str(exc).startswith("not JSON"):
                    if warn is not None:
                        warn(f"{name}:{lineno}: the last line is cut short (its writer stopped mid-line);"
                             " skipped it")
                    return
                raise ConfigError(f"{name}:{lineno}: {exc}", hint=_HINT) from None


def _parse(text: bytes) -> Event:
    try:
        data = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Invalid("not text (not UTF-8): is this a netlab log?") from None
    except ValueError as exc:
        raise _Invalid(f"not JSON ({exc})") from None
    except RecursionError:
        raise _Invalid("not an event (JSON nested too deeply)") from None
    return _event(data)


def load(path: str | os.PathLike[str], *, max_line: int = MAX_LINE) -> list[Event]:
    """Every event of a saved log, oldest first (see :func:`iter_events`;
    a skipped last line is not reported: use :func:`load_log` for that)."""
    return list(iter_events(path, max_line=max_line))


class SavedLog(EventLog):
    """An :class:`EventLog` holding the events of a saved log, for the
    views that show a live one: ``query``, ``tail`` and iteration work as
    they do live; nothing new arrives unless someone emits it.

    Like a live log it keeps the newest ``capacity`` events and about
    ``payload_limit`` bytes of payload (older events keep their
    summaries).  ``warnings`` says what was skipped while reading.
    """

    def __init__(self, path: str, capacity: int, payload_limit: int) -> None:
        super().__init__(capacity, payload_limit)
        self.path = path
        self.warnings: list[str] = []
        self._read = 0
        self._read_seq = 0  # the newest sequence number read: emit() numbers on from it

    def _adopt(self, event: Event) -> None:
        """Keep an event read from the file, as :meth:`emit` keeps a new one."""
        self._read += 1
        self._seq = self._read_seq = max(self._seq, event.seq)
        ring = self._ring
        if len(ring) == self.capacity:
            leaving = ring[0]
            if leaving.raw is not None and self._with_payload and self._with_payload[0] is leaving:
                self._with_payload.popleft()
                self._payload_bytes -= len(leaving.raw) + PAYLOAD_OVERHEAD
        ring.append(event)
        if event.raw is not None:
            self._with_payload.append(event)
            self._payload_bytes += len(event.raw) + PAYLOAD_OVERHEAD
            if self._payload_bytes > self.payload_limit:
                self._shed()

    @property
    def total(self) -> int:
        """Events read from the file (and emitted since)."""
        return self._read + self._seq - self._read_seq

    @property
    def dropped(self) -> int:
        """Events read but not kept, to respect the capacity."""
        return max(0, self.total - len(self))

    def __repr__(self) -> str:
        return f"<SavedLog {self.path}: {len(self)} events>"


def load_log(path: str | os.PathLike[str], *, capacity: int = 1_000_000,
             payload_limit: int = 512 * 1024 * 1024, max_line: int = MAX_LINE) -> SavedLog:
    """A saved log as a :class:`SavedLog`, ready for the traffic view,
    filters, detail and ladder.

    A last line cut short is skipped: the log's ``warnings`` say so, and an
    info event at its end tells whoever looks at it.  Anything else that is
    not an event is a :class:`ConfigError` naming ``FILE:LINE``.
    """
    name = os.fspath(path)
    log = SavedLog(name, capacity, payload_limit)
    for event in iter_events(name, max_line=max_line, warn=log.warnings.append):
        log._adopt(event)
    last = log._ring[-1].wall if len(log) else None
    for warning in log.warnings:
        event = log.emit(EventKind.INFO, "", text=warning)
        if last is not None:
            event.wall = last  # with the events it is about, not at the time of viewing
    return log

