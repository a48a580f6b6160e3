"""netlab: an interactive network lab.

Start servers and clients on one shared event loop, watch every message
they exchange, decoded, and script them::

    from lab import Lab
    with Lab.start() as lab:
        srv = lab.serve("echo")
        c = lab.connect("echo", srv)
        c.send(b"hi\\r\\n")
        c.expect(b"hi")
        print(lab.log.tail(5))
"""

from __future__ import annotations

from lab.errors import (
    CommandError,
    ConfigError,
    ConnectionClosed,
    LabError,
    LabTimeout,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ScenarioError,
)
from lab.eventlog import Capture, Event, EventFilter, EventLog
from lab.lab import Lab
from lab.reactor import Reactor

__all__ = [
    "Capture",
    "CommandError",
    "ConfigError",
    "ConnectionClosed",
    "Event",
    "EventFilter",
    "EventLog",
    "Lab",
    "LabError",
    "LabTimeout",
    "LocalProtocolError",
    "ProtocolError",
    "Reactor",
    "RemoteProtocolError",
    "ScenarioError",
]

__version__ = "0.1.0"
