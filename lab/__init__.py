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

from typing import Any

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
from lab.eventlog import Capture, Event, EventFilter, EventLog, EventSlice
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
    "EventSlice",
    "Lab",
    "LabError",
    "LabTimeout",
    "LocalProtocolError",
    "ProtocolError",
    "Reactor",
    "RemoteProtocolError",
    "ScenarioError",
    "load_ipython_extension",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext lab``: the ``%netlab`` magics and a running ``lab``.

    IPython is imported only here, so ``import lab`` stays light.
    """
    from lab.shell.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext lab``: remove the magics; stop the lab the extension made."""
    from lab.shell.extension import unload

    unload(ipython)
