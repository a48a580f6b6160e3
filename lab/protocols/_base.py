"""The vocabulary every protocol shares: roles, transports, messages, time.

A protocol module builds on four pieces (see ``docs/protocols.md``):

* :class:`Message` subclasses: one decoded unit of the protocol, with its
  exact wire bytes, a summary, a field tree and its own idea of which
  ``expect`` patterns it matches (this module);
* a :class:`~lab.protocols._conversation.Conversation`: both sides of one
  connection decoded against one state table, sans-IO;
* a :class:`~lab.protocols._session.ServerBehaviour` making one
  :class:`~lab.protocols._session.Session` per connection, and
  :class:`~lab.protocols._session.ClientVerbs`;
* an :class:`~lab.protocols._options.Options` dataclass, and the
  :class:`~lab.protocols._spec.ProtocolSpec` tying it all together.

Nothing here knows about sockets, asyncio transports or the Lab.

Tests: tests/protocols/test_base.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from time import time as _wall_time
from typing import Any, ClassVar, Protocol

from lab.errors import LocalProtocolError

__all__ = [
    "MASK",
    "MASK_BYTES",
    "Clock",
    "LoopClock",
    "Message",
    "Pattern",
    "Role",
    "Timer",
    "Transport",
    "describe_pattern",
    "escape_bytes",
    "mask_bytes",
    "matches_code",
]


class Role(enum.Enum):
    """Which side of a conversation someone plays."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class Transport(enum.Enum):
    """The socket kind a protocol runs over."""

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is a Python call on hot paths

    TCP = "tcp"
    UDP = "udp"


def _escape_table() -> dict[int, str]:
    table = {b: f"\\x{b:02x}" for b in range(256) if not 0x20 <= b < 0x7F}
    table.update({0x5C: "\\\\", 0x22: '\\"', 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"})
    return table


_ESCAPE = _escape_table()
_PRINTABLE = bytes(range(0x20, 0x7F))


def escape_bytes(data: bytes, limit: int = 200) -> str:
    """Render bytes as a double-quoted, escaped, printable string.

    Longer input is cut at ``limit`` bytes with a note of the full size.
    """
    head = data[:limit]
    # the usual case, text lines, in a few C-speed passes (summaries run per message)
    plain = (head.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\r", b"\\r")
             .replace(b"\n", b"\\n").replace(b"\t", b"\\t"))
    if not plain.translate(None, _PRINTABLE):
        text = '"' + plain.decode("ascii") + '"'
    else:
        # latin-1 maps each byte to the code point of the same number
        text = '"' + head.decode("latin-1").translate(_ESCAPE) + '"'
    if len(data) > limit:
        text += f" … ({len(data)} bytes)"
    return text


MASK = "\u2022" * 6  # what live views show in place of a secret
# what files hold in place of a secret: one length for all, so no length leaks
MASK_BYTES = b"********"

Spans = tuple[tuple[int, int], ...]


def mask_bytes(raw: bytes, spans: Spans, mask: bytes = MASK_BYTES) -> bytes:
    """``raw`` with each secret span (``(start, end)``, in order) replaced by
    ``mask``."""
    out, last = bytearray(), 0
    for start, end in spans:
        out += raw[last:start]
        out += mask
        last = max(last, end)
    out += raw[last:]
    return bytes(out)


# What ``expect`` takes: bytes (inside the raw bytes), text (inside the
# text, or whatever the protocol makes of a word such as a reply code), a
# compiled regex, a number (a reply code) or a predicate.
Pattern = bytes | str | re.Pattern[Any] | int | Callable[["Message"], bool]


def describe_pattern(pattern: Pattern) -> str:
    """A pattern as a person would write it, for error messages."""
    if isinstance(pattern, re.Pattern):
        return f"/{pattern.pattern!s}/"
    if isinstance(pattern, bytes):
        return escape_bytes(pattern)
    if callable(pattern) and not isinstance(pattern, (str, int)):
        return getattr(pattern, "__name__", "predicate")
    return repr(pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One decoded protocol message; ``raw`` is its exact wire bytes.

    Subclasses add decoded fields and set the class defaults behind three
    properties, or override the properties where a value depends on the
    message: ``kind`` names the message type for hooks and filters
    (``KIND``); ``volatile`` names fields whose values change from run to
    run (dates, ids, ports) so that recordings match them loosely
    (``VOLATILE``); ``keepalive`` marks a message the peer sends on its
    own clock (a server's PING), which recordings note but do not expect
    (``KEEPALIVE``).

    A message that may carry a secret (a password, a replayable
    credential) sets ``SECRET`` and says which bytes of ``raw`` are secret
    in :meth:`secret_spans`; the event log keeps such bytes off the disk
    and live views mask them.  Only ``SECRET`` classes are asked, so other
    messages cost nothing.
    """

    raw: bytes
    KIND: ClassVar[str] = "data"
    VOLATILE: ClassVar[frozenset[str]] = frozenset()
    KEEPALIVE: ClassVar[bool] = False
    EDITABLE: ClassVar[tuple[str, ...]] = ()  # fields edited() re-encodes
    SECRET: ClassVar[bool] = False  # may carry a secret: see secret_spans()

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def volatile(self) -> frozenset[str]:
        return self.VOLATILE

    @property
    def keepalive(self) -> bool:
        return self.KEEPALIVE

    def summary(self) -> str:
        """A one-line human description."""
        return escape_bytes(self.raw)

    def secret_spans(self) -> Spans:
        """The ``(start, end)`` ranges of ``raw`` that are secret, in order
        (asked only when ``SECRET`` is set)."""
        return ((0, len(self.raw)),) if self.SECRET else ()

    def revealed(self) -> str:
        """The summary with its secrets shown (what :meth:`summary` masks)."""
        spans = self.secret_spans() if self.SECRET else ()
        if not spans:
            return self.summary()
        return escape_bytes(self.raw) + " (sent in cleartext)"

    def fields(self) -> dict[str, Any]:
        """The decoded fields as a tree (nested dicts and lists)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "raw"
        }

    @property
    def text(self) -> str:
        """The raw bytes decoded leniently as text."""
        return self.raw.decode("utf-8", "replace")

    def edited(self, **fields: Any) -> Message:
        """This message with some decoded fields changed and its raw bytes
        made anew by the protocol (an intercept's edit);
        :class:`LocalProtocolError` where the protocol cannot."""
        raise LocalProtocolError(f"a {type(self).__name__} cannot be edited by its fields",
                                 hint="edit its raw bytes instead")

    def _editable(self, fields: dict[str, Any]) -> None:
        """Refuse fields other than ``EDITABLE`` (for :meth:`edited`)."""
        names = self.EDITABLE
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise LocalProtocolError(f"a {type(self).__name__} has no field {unknown[0]!r} to edit",
                                     hint=f"fields: {', '.join(names)}")

    def matches(self, pattern: Pattern) -> bool:
        """Does this message satisfy an ``expect`` pattern?

        bytes: contained in the raw bytes; text: contained in the text; a
        compiled regex: searched in the text (str pattern) or the raw
        bytes (bytes pattern); a number: its digits in the text; a
        callable: its verdict.  Protocols with reply codes or names
        (``250``, ``NXDOMAIN``) override this and fall back on it.
        """
        if isinstance(pattern, bytes):
            return pattern in self.raw
        if isinstance(pattern, str):
            return pattern in self.text
        if isinstance(pattern, re.Pattern):
            target = self.raw if isinstance(pattern.pattern, bytes) else self.text
            return pattern.search(target) is not None
        if isinstance(pattern, int) and not isinstance(pattern, bool):
            return str(pattern) in self.text
        if callable(pattern):
            return bool(pattern(self))
        raise TypeError(f"cannot match a message against {type(pattern).__name__}")


def matches_code(msg: Message, code: int | None, pattern: Pattern) -> bool:
    """``msg.matches`` for a message with a reply code: a code (``250``,
    ``"250"``) is compared with ``code``, anything else matched as for
    every message."""
    wanted = code_pattern(pattern)
    return code == wanted if wanted is not None else Message.matches(msg, pattern)


def code_pattern(pattern: Pattern) -> int | None:
    """The reply code a pattern names (``250`` or ``"250"``), if it names one."""
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        return pattern
    if isinstance(pattern, str) and len(pattern) == 3 and pattern.isdigit():
        return int(pattern)
    return None


class Timer(Protocol):
    """A pending call from a :class:`Clock`."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time every protocol timer asks (idle limits, pings, retries),
    so that a lab may one day run on virtual time."""

    def time(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: the date and time protocols tell."""
        ...

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` after ``delay`` seconds."""
        ...

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` on the next turn of the loop."""
        ...


class LoopClock:
    """The clock of an asyncio loop: the given one, or whichever loop runs
    when it is asked (a behaviour tested alone, inside ``asyncio.run``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        if loop is not None:
            self.time = loop.time  # type: ignore[method-assign]  # asked on every read
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def time(self) -> float:
        return self.loop.time()

    def wall(self) -> float:
        return _wall_time()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.loop.call_later(delay, fn, *args)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.loop.call_soon(fn, *args)
