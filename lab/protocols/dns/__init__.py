"""DNS (RFC 1034/1035; AAAA 3596, SRV 2782, EDNS0 6891, TCP 7766): an
authoritative server for lab zones and a client that asks.

The wire format is dnspython's; what is ours is the server (zones
edited live, answers kept as wire bytes), the decoded view of every
message and the client verbs.

* ``_codec``: :class:`DnsMessage` (decoded on first look), the UDP and
  TCP decoders, :class:`DnsConversation`;
* ``_zone``: zones, their answers, :class:`ZoneSet` (``srv.zone``);
* ``_server``: :class:`DnsServer`, :class:`DnsSession`, :class:`DnsOptions`;
* ``_client``: :class:`DnsClient` (``query``, ``axfr``).

Tests: tests/protocols/test_dns.py, tests/interop/test_dns_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Message, Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.dns._client import DnsClient, DnsError, make_query
from lab.protocols.dns._codec import DnsConversation, DnsMessage, DnsStreamDecoder, DnsUdpDecoder, Record, header_reply
from lab.protocols.dns._server import DNS_ZONES, DnsOptions, DnsServer, DnsSession, quick_key
from lab.protocols.dns._zone import DEMO_ZONE, Zone, ZoneSet, parse_record

__all__ = [
    "DEMO_ZONE",
    "DNS_ZONES",
    "SPEC",
    "DnsClient",
    "DnsConversation",
    "DnsError",
    "DnsMessage",
    "DnsOptions",
    "DnsServer",
    "DnsSession",
    "DnsStreamDecoder",
    "DnsUdpDecoder",
    "Record",
    "Zone",
    "ZoneSet",
    "header_reply",
    "make_query",
    "parse_record",
    "quick_key",
]


def _refusal(msg: Message) -> bytes:
    """What a mock answers a query its recording lacks: REFUSED."""
    framed = isinstance(msg, DnsMessage) and msg.framed
    wire = msg.raw[2:] if framed else msg.raw
    if len(wire) < 12:
        return b""
    reply = header_reply(wire, 5)
    return len(reply).to_bytes(2, "big") + reply if framed else reply


SPEC = ProtocolSpec(
    name="dns",
    summary="answers for the lab's zones (lab.test by default), over UDP and TCP on one port",
    rfc="RFC 1035",
    default_port=53,
    transports=(Transport.UDP, Transport.TCP),
    conversation=DnsConversation,
    server=DnsServer,
    client=DnsClient,
    options=DnsOptions,
    idle_timeout=30.0,  # RFC 7766 §6.2.3: idle TCP connections are closed after seconds, not minutes
    keywords=("dns", "domain", "names", "resolver", "zone", "dig"),
    requests=Requests(_refusal),
    tcp_beside_udp=True,  # RFC 7766 §5: a server answers over both, on one port
)
