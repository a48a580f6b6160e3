"""SOCKS 4 and 4a: a client asks a proxy for a TCP tunnel to a host and port.

The client sends one request (CONNECT, or BIND to be called back), the
server answers 90 (granted) or 91 (refused), and the connection then
carries the destination's protocol, which the lab decodes too.  The
lab's server is never an open proxy: it reaches only what ``--allow``
lists (loopback by default), resolves a 4a host name only from
``localhost`` and ``--lab-host`` names (never DNS), and answers 91 to
anything else, with an error event saying why.

* ``_messages``: :class:`SocksRequest`, :class:`SocksReply`;
* ``_conversation``: :class:`SocksConversation`, both sides and the tunnel;
* ``_policy``: the allow list and 4a names;
* ``_relay``: the server's sockets (it owns them: each tunnel dials out);
* ``_client``: :class:`SocksClient`.

Tests: tests/protocols/test_socks.py, tests/interop/test_socks_peers.py
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.protocols._base import Transport
from lab.protocols._options import Options, integer, option, seconds, yes_no
from lab.protocols._session import ServerBehaviour
from lab.protocols._spec import ProtocolSpec
from lab.protocols.socks._client import SocksClient, SocksRefused
from lab.protocols.socks._conversation import (
    HELD_LIMIT,
    MAX_REQUEST,
    Phase,
    SocksConversation,
    Undecoded,
    default_choice,
    protocol_for_port,
)
from lab.protocols.socks._messages import (
    GRANTED,
    REJECTED,
    REPLY_MEANINGS,
    SocksCommand,
    SocksReply,
    SocksRequest,
)
from lab.protocols.socks._policy import DEFAULT_ALLOW, Policy, Rule, parse_allow, parse_host
from lab.protocols.socks._relay import listen

__all__ = [
    "DEFAULT_ALLOW",
    "GRANTED",
    "HELD_LIMIT",
    "MAX_REQUEST",
    "REJECTED",
    "REPLY_MEANINGS",
    "SPEC",
    "Phase",
    "Policy",
    "Rule",
    "SocksClient",
    "SocksCommand",
    "SocksConversation",
    "SocksOptions",
    "SocksRefused",
    "SocksReply",
    "SocksRequest",
    "SocksServer",
    "Undecoded",
    "default_choice",
    "parse_allow",
    "parse_decode",
    "parse_host",
    "protocol_for_port",
]


def parse_decode(text: str) -> tuple[int, str]:
    """``PROTO`` (every tunnel) or ``PORT=PROTO``: how to decode tunnels;
    ``raw`` decodes nothing.  Port 0 stands for every port."""
    from lab.protocols import names

    port_text, sep, name = text.partition("=")
    if not sep:
        port_text, name = "0", text
    name = name.strip().lower()
    if not port_text.strip().isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"wants PROTO or PORT=PROTO, got {text!r}")
    known = [n for n in names() if n != "socks"]
    if name != "raw" and name not in known:
        raise ValueError(f"wants a protocol netlab knows ({', '.join(known)}) or raw, got {name!r}")
    return int(port_text), name


@dataclass(frozen=True, kw_only=True)
class SocksOptions(Options):
    allow: tuple[tuple[Rule, ...], ...] = option(
        help="where tunnels may go: networks with an optional port or range, comma-separated, repeatable;"
             f" with none given, only {DEFAULT_ALLOW}",
        parse=parse_allow, multiple=True, metavar="NETS", example="127.0.0.0/8,10.0.0.0/8:80")
    lab_host: tuple[tuple[str, str], ...] = option(
        help="a name a SOCKS 4a request may give, and its address (besides localhost); the lab never asks DNS",
        parse=parse_host, multiple=True, metavar="NAME=IPV4", example="mail.lab.test=127.0.0.1")
    user: tuple[str, ...] = option(help="serve only these user ids (repeatable; default: any)",
                                   multiple=True, metavar="ID", example="alice")
    bind: bool = option(True, help="accept BIND requests", parse=yes_no(), metavar="yes|no", example="no",
                        show_default="yes")
    decode: tuple[tuple[int, str], ...] = option(
        help="decode tunnels as PROTO (or those to PORT), repeatable; raw for none; default: as the lab"
             " server listening there, else by the destination's default port",
        parse=parse_decode, multiple=True, metavar="[PORT=]PROTO", example="2525=smtp")
    max_request: int = option(MAX_REQUEST, help="the longest request in bytes (user id and 4a host name"
                                                " included)", parse=integer(16, 65536), metavar="BYTES")
    request_timeout: float = option(30.0, help="seconds a client has to send its whole request (a slow client"
                                               " holds no slot longer)", parse=seconds(0.01, 3600), metavar="SECONDS")
    connect_timeout: float = option(10.0, help="seconds to reach a destination", parse=seconds(0.01, 600),
                                    metavar="SECONDS")
    bind_timeout: float = option(60.0, help="seconds a BIND waits for the connection back",
                                 parse=seconds(0.01, 3600), metavar="SECONDS")
    idle: float = option(300.0, help="seconds a tunnel may be silent both ways before it is closed",
                         parse=seconds(0.01, 86400), metavar="SECONDS")


class SocksServer(ServerBehaviour[SocksOptions]):
    """The SOCKS server's options; its sockets are the relay's (``listen``)."""


SPEC = ProtocolSpec(
    name="socks",
    summary="SOCKS 4/4a proxy: CONNECT and BIND tunnels to allowed hosts, decoded",
    rfc="SOCKS 4 and 4A (NEC)",
    default_port=1080,
    transports=(Transport.TCP,),
    conversation=SocksConversation,
    server=SocksServer,
    client=SocksClient,
    options=SocksOptions,
    listen=listen,
    keywords=("proxy", "tunnel", "socks4", "socks4a"),
)
