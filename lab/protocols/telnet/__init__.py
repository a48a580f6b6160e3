"""Telnet (RFC 854/855, with 857 ECHO, 858 SGA, 1073 NAWS, 1091 TTYPE):
the network virtual terminal, its commands and option negotiation.

* ``_codec`` — the wire format, sans-IO: NVT text as :class:`Text` and
  :class:`Line`, :class:`Command`, :class:`Negotiation` and
  :class:`Subnegotiation` messages, shown decoded in the log
  (``DO ECHO``, ``SB NAWS 120x40``, ``SB TTYPE IS xterm``), and the
  :class:`TelnetConversation` decoding both directions.
* ``_negotiation`` — RFC 1143's Q method, so negotiation never loops.
* ``_options`` — :class:`TelnetOptions` and :class:`TelnetClientOptions`.
* ``_server`` — ``--mode echo`` (a line echo service) and ``--mode
  console`` (the lab's command language behind a password), a
  :class:`TelnetSession` per connection.
* ``_client`` — verbs: ``read_until``, ``send_line``, ``login``, ``run``,
  ``request``, ``configure`` and raw ``send_raw``/``send_command``.

Tests: tests/protocols/test_telnet.py, tests/interop/test_telnet_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec
from lab.protocols.telnet._client import TelnetClient
from lab.protocols.telnet._codec import (
    MAX_LINE,
    MAX_SERVER_LINE,
    MAX_SUBNEGOTIATION,
    Command,
    Line,
    Negotiation,
    Subnegotiation,
    TelnetConversation,
    TelnetDecoder,
    Text,
    nvt_bytes,
    option_code,
    option_name,
)
from lab.protocols.telnet._negotiation import Negotiator, Q, Side
from lab.protocols.telnet._options import Mode, Negotiate, TelnetClientOptions, TelnetOptions
from lab.protocols.telnet._server import LineEditor, Stage, TelnetServer, TelnetSession

__all__ = [
    "MAX_LINE",
    "MAX_SERVER_LINE",
    "MAX_SUBNEGOTIATION",
    "SPEC",
    "Command",
    "Line",
    "LineEditor",
    "Mode",
    "Negotiate",
    "Negotiation",
    "Negotiator",
    "Q",
    "Side",
    "Stage",
    "Subnegotiation",
    "TelnetClient",
    "TelnetClientOptions",
    "TelnetConversation",
    "TelnetDecoder",
    "TelnetOptions",
    "TelnetServer",
    "TelnetSession",
    "Text",
    "nvt_bytes",
    "option_code",
    "option_name",
]

SPEC = ProtocolSpec(
    name="telnet",
    summary="a network virtual terminal: line echo, or the lab console",
    rfc="RFC 854",
    default_port=23,
    transports=(Transport.TCP,),
    conversation=TelnetConversation,
    server=TelnetServer,
    client=TelnetClient,
    options=TelnetOptions,
    client_options=TelnetClientOptions,
    keywords=("terminal", "console", "nvt", "remote shell"),
)
