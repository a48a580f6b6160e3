"""IRC (RFC 1459, RFC 2812 client protocol): a server in front of the lab's
chat service, a client with the protocol's verbs, and a sans-IO codec.

* :mod:`._codec` — the message grammar, CTCP, numerics;
* :mod:`._server` — registration, channels, messages, modes, who-is,
  keep-alive and flood limits;
* :mod:`._session` — one connection: its state, and chat events as IRC;
* :mod:`._client` — ``nick``, ``join``, ``say``, ``part``, ``quit``, ``raw``.

Rooms live in the chat service (:mod:`lab.protocols._chat`), so every IRC
server of one lab, and later other chat protocols, share them.

Tests: tests/protocols/test_irc.py, tests/protocols/test_chat.py,
tests/interop/test_irc_peers.py
"""

from __future__ import annotations

from lab.errors import ConfigError
from lab.protocols._base import Option, ProtocolSpec, Transport
from lab.protocols._options import integer, number, seconds
from lab.protocols.irc._client import IrcClient, IrcError, split_text
from lab.protocols.irc._codec import (
    MAX_LINE,
    MAX_MESSAGE,
    NUMERICS,
    IrcCodec,
    IrcMalformed,
    IrcMessage,
    make_codec,
    parse_message,
)
from lab.protocols.irc._server import IrcServer
from lab.protocols.irc._session import IrcSession, Registration, valid_channel, valid_nick

__all__ = [
    "MAX_LINE",
    "MAX_MESSAGE",
    "NUMERICS",
    "SPEC",
    "IrcClient",
    "IrcCodec",
    "IrcError",
    "IrcMalformed",
    "IrcMessage",
    "IrcServer",
    "IrcSession",
    "Registration",
    "make_codec",
    "parse_message",
    "split_text",
    "valid_channel",
    "valid_nick",
]


def _server_name(text: str) -> str:
    if not text or any(c in text for c in " \r\n\x00:!@,") or "." not in text:
        raise ConfigError(f"irc: bad server name {text!r}", hint="use a host name with a dot, e.g. irc.lab.test")
    return text


SPEC = ProtocolSpec(
    name="irc",
    summary="chat in channels: the lab's chat service over IRC",
    rfc="RFC 2812",
    default_port=6667,
    transports=(Transport.TCP,),
    codec=make_codec,
    server=IrcServer,
    client=IrcClient,
    options=(
        Option(name="server_name", help="the server's name in replies (default irc.lab.test)",
               parse=_server_name, metavar="NAME"),
        Option(name="network", help="the network name in the welcome and 005 (default netlab)", metavar="NAME"),
        Option(name="password", help="require this PASS before registration (default: none)", metavar="TEXT"),
        Option(name="motd", help="the message of the day (empty: 422 no MOTD)", metavar="TEXT"),
        Option(name="ping_interval", help="PING a client quiet for this many seconds (default 90)",
               parse=seconds("irc: --ping-interval", 0.01, hint="e.g. --ping-interval 90"), metavar="SECONDS"),
        Option(name="ping_timeout", help="drop a client that does not answer a PING in time (default 60)",
               parse=seconds("irc: --ping-timeout", 0.01, hint="e.g. --ping-timeout 60"), metavar="SECONDS"),
        Option(name="register_timeout", help="drop a client not registered in time (default 60)",
               parse=seconds("irc: --register-timeout", 0.01, hint="e.g. --register-timeout 60"), metavar="SECONDS"),
        Option(name="flood_burst", help="lines a client may send at once before they wait (default 20, 0: off)",
               parse=integer("irc: --flood-burst", 0, hint="e.g. --flood-burst 20"), metavar="LINES"),
        Option(name="flood_rate", help="lines per second once the burst is spent (default 5)",
               parse=number("irc: --flood-rate", 0.01, hint="e.g. --flood-rate 5"), metavar="PER_SECOND"),
        Option(name="flood_queue", help="waiting lines past which a client is dropped (default 200)",
               parse=integer("irc: --flood-queue", 1, hint="e.g. --flood-queue 200"), metavar="LINES"),
        Option(name="max_channels", help="channels one user may join (default 20)",
               parse=integer("irc: --max-channels", 1, hint="e.g. --max-channels 20"), metavar="N"),
        Option(name="max_users", help="registered users on this server (default 200)",
               parse=integer("irc: --max-users", 1, hint="e.g. --max-users 200"), metavar="N"),
    ),
    idle_timeout=600.0,  # a backstop: the server's own PINGs drop silent clients sooner
    keywords=("chat", "channels", "ctcp"),
)
