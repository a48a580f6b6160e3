"""The exception tree of netlab.

    LabError                  root: anything netlab raises on purpose
    ├── ProtocolError         bytes or messages that break a protocol's rules
    │   ├── LocalProtocolError    we were asked to send something invalid
    │   └── RemoteProtocolError   the peer sent something invalid
    ├── CommandError          a command-language line that cannot run
    ├── ScenarioError         a scenario or lab file that cannot load or run
    ├── ConfigError           bad options: unknown protocol, bad port, ...
    ├── ConnectionClosed      the connection closed while we waited on it
    └── LabTimeout            an expectation or bridged call ran out of time

User mistakes carry a one-line message and, where one helps, a ``hint``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CommandError",
    "ConfigError",
    "ConnectionClosed",
    "LabError",
    "LabTimeout",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "ScenarioError",
]


class LabError(Exception):
    """Root of every error netlab raises deliberately."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class ProtocolError(LabError):
    """A protocol rule was broken.

    ``decoded`` holds messages a codec completed before the bad bytes.
    """

    decoded: list[Any]

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.decoded = []


class LocalProtocolError(ProtocolError):
    """We were asked to encode or send something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes the protocol forbids (too long, malformed, ...)."""


class CommandError(LabError):
    """A command-language line that cannot be parsed or executed."""


class ScenarioError(LabError):
    """A scenario or lab file that cannot be loaded or run."""


class ConfigError(LabError):
    """Bad configuration: unknown protocol, bad option, port in use, ..."""


class ConnectionClosed(LabError):
    """The connection closed (and every message it brought was consumed)
    while something waited on it."""


class LabTimeout(LabError, TimeoutError):
    """Waiting for a message, a connection or a bridged call timed out."""
