"""Between the socket and asyncssh: every byte each way reported to the
lab's recorder (its conversation decodes the clear stages), the
connection closed after an idle spell, and the close reported with the
library's reason.

asyncssh takes a ``tunnel`` object for ``listen`` and ``connect``: ours
opens plain TCP sockets and puts a :class:`Tap` in front of asyncssh's
own connection object.

Tests: tests/protocols/test_ssh.py
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lab.protocols._base import Clock, Timer
from lab.protocols._library import Recorder, TrafficRecord
from lab.protocols.ssh._codec import SshEvent

__all__ = ["Tap", "TapConnector", "TapListener", "tap_of"]

logger = logging.getLogger(__name__)

DISC_BY_APPLICATION = 11
EXTRA_NAME = "netlab_tap"


def tap_of(conn: Any) -> Tap | None:
    """The :class:`Tap` under an asyncssh connection (or channel, process)."""
    found = conn.get_extra_info(EXTRA_NAME)
    if found is None:
        inner = conn.get_extra_info("connection")
        found = inner.get_extra_info(EXTRA_NAME) if inner is not None else None
    return found if isinstance(found, Tap) else None


class _TapTransport:
    """The transport asyncssh writes to: each write is reported first."""

    def __init__(self, transport: asyncio.Transport, tap: Tap) -> None:
        self._transport = transport
        self._tap = tap

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tap.wrote(bytes(data))
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == EXTRA_NAME:
            return self._tap
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Tap(asyncio.Protocol):
    """One connection: asyncssh's connection object (``inner``) behind a
    recorder's record, with an idle limit (``idle`` seconds, 0: none).
    Per-connection state of the lab's SSH server lives here too."""

    def __init__(self, inner: Any, recorder: Recorder, clock: Clock, idle: float) -> None:
        self.inner = inner
        self.recorder = recorder
        self.clock = clock
        self.idle = idle
        self.record: TrafficRecord | None = None
        self.transport: asyncio.Transport | None = None
        self.last = 0.0
        self.closed = False
        self._timer: Timer | None = None
        self.sessions = 0  # open now (the server's channel cap)
        self.session_ids = 0  # opened so far, to name them
        self.user = ""

    # -- reporting ----------------------------------------------------------

    def event(self, incoming: bool, event: str, text: str, **values: object) -> None:
        """An :class:`SshEvent` in the log: what the peer did (``incoming``)
        or what this side did."""
        if self.record is None:
            return
        msg = SshEvent.of(event, text, **values)
        if incoming:
            self.record.received(msg)
        else:
            self.record.sent(msg)

    def note(self, text: str) -> None:
        if self.record is not None:
            self.record.note(text)

    def wrote(self, data: bytes) -> None:
        self.last = self.clock.time()
        if self.record is not None and data:
            self.record.sent(data)

    def close_record(self, reason: str) -> None:
        """The connection ended (the library's reason, when it gives one)."""
        if not self.closed:
            self.closed = True
            if self.record is not None:
                self.record.closed(reason)

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.last = self.clock.time()
        self.record = self.recorder.opened(transport.get_extra_info("peername") or (),
                                           transport.get_extra_info("sockname") or (), close=self.abort)
        if self.idle:
            self._timer = self.clock.call_later(self.idle, self._check_idle)
        self.inner.connection_made(_TapTransport(transport, self))

    def data_received(self, data: bytes) -> None:
        self.last = self.clock.time()
        if self.record is not None:
            self.record.received(data)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.inner.connection_lost(exc)
        # asyncssh tells its owner why on the next turn of the loop: let that reason come first
        reason = f"connection lost: {exc}" if exc else "closed"
        self.clock.call_soon(self.close_record, reason)

    # -- limits -------------------------------------------------------------

    def abort(self) -> None:
        """How the lab closes the connection (stop, the connection cap)."""
        if self.transport is not None:
            self.transport.abort()

    def _check_idle(self) -> None:
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        quiet = self.clock.time() - self.last
        if quiet < self.idle:
            self._timer = self.clock.call_later(self.idle - quiet, self._check_idle)
            return
        text = f"idle for {self.idle:g} s"
        self.event(False, "disconnect", f"closing: {text}", reason=text)
        try:
            self.inner.disconnect(DISC_BY_APPLICATION, f"netlab: {text}")
        except Exception:  # before the version exchange there is nothing to say it with
            logger.debug("disconnect on idle failed", exc_info=True)
            self.abort()


class TapListener:
    """asyncssh's listening ``tunnel``: plain TCP, a :class:`Tap` per connection."""

    def __init__(self, recorder: Recorder, clock: Clock, idle: float) -> None:
        self.recorder, self.clock, self.idle = recorder, clock, idle

    async def create_server(self, session_factory: Callable[[str, int], Any], host: str,
                            port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: Tap(session_factory("", 0), self.recorder, self.clock, self.idle),
            host, port, reuse_address=True, backlog=128)


class TapConnector:
    """asyncssh's connecting ``tunnel``: one plain TCP connection with a :class:`Tap`."""

    def __init__(self, recorder: Recorder, clock: Clock) -> None:
        self.recorder, self.clock = recorder, clock
        self.tap: Tap | None = None

    async def create_connection(self, session_factory: Callable[[], Any], host: str,
                                port: int) -> tuple[asyncio.BaseTransport, Any]:
        loop = asyncio.get_running_loop()

        def make() -> Tap:
            self.tap = Tap(session_factory(), self.recorder, self.clock, 0)
            return self.tap

        transport, tap = await loop.create_connection(make, host, port)
        return transport, tap.inner
