"""The DNS server: authoritative for its zones, no recursion (RA clear).

Answers are kept as wire bytes keyed by the question (the question's
bytes with the name lower-cased, the flags RD/AD/CD, the EDNS size and
DO bit): a repeated question costs a dictionary look-up and the copying
of the ID and the asker's spelling of the name into the kept answer,
the way fast authoritative servers work.  The kept answers go when the
zone changes.  Anything of an unusual shape (EDNS options, several
questions, other opcodes, bad bytes, zone transfers) takes the slow
path, where dnspython parses and builds.

Tests: tests/protocols/test_dns.py, tests/interop/test_dns_peers.py
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from lab.errors import ConfigError
from lab.protocols._base import Message, Transport
from lab.protocols._options import Options, integer, option, yes_no
from lab.protocols._session import Peer, ServerBehaviour, Session
from lab.protocols.dns._codec import DnsMessage, header_reply
from lab.protocols.dns._zone import (
    DEMO_ZONE,
    ZoneSet,
    ZoneState,
    empty_zone,
    parse_record,
    resolve,
    zone_from_text,
)
from lab.services import ServiceKey

__all__ = ["DNS_ZONES", "DnsOptions", "DnsServer", "DnsSession", "quick_key"]

MAX_CACHED = 10_000  # kept answers per server; beyond, the cache starts again
MAX_ZONE_FILE = 16 * 1024 * 1024
AXFR_PER_MESSAGE = 16_000  # bytes of records per AXFR message
FORMERR, SERVFAIL, NOTIMP, REFUSED, NOTAUTH = (dns.rcode.Rcode(n) for n in (1, 2, 4, 5, 9))


def _forward(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        if not sep or not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        raise ValueError(f"wants a loopback HOST:PORT such as 127.0.0.1:5353, got {text!r}") from None
    return host, number


def _network(text: str) -> Any:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"wants an address or network such as 127.0.0.0/8, got {text!r}") from None


def _record(text: str) -> tuple[str, str, str]:
    return parse_record(text)


@dataclass(frozen=True, kw_only=True)
class DnsOptions(Options):
    """How a DNS server is set up."""

    zone_file: str | None = option(None, help="serve the zone in this master file (RFC 1035 §5; with $ORIGIN)",
                                   metavar="FILE")
    zone: tuple[str, ...] = option(help="serve an empty zone of this name (an SOA and NS made up), for --record",
                                   multiple=True, metavar="ORIGIN", example="lab.test")
    record: tuple[tuple[str, str, str], ...] = option(
        help="a record: NAME TYPE VALUE (without zones: in lab.test)", parse=_record, multiple=True,
        metavar="'NAME TYPE VALUE'", example="'www.lab.test A 127.0.0.2'")
    ttl: int = option(300, help="the TTL of records given without one, in seconds",
                      parse=integer(0, 2**31 - 1), metavar="SECONDS")
    edns_size: int = option(1232, help="the largest UDP answer to an EDNS query, in bytes (512-4096)",
                            parse=integer(512, 4096), metavar="BYTES")
    axfr_allow: tuple[Any, ...] = option(
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        help="who may transfer the zone (AXFR, over TCP)", parse=_network, multiple=True,
        metavar="NETWORK", example="127.0.0.0/8", show_default="127.0.0.0/8 ::1")
    forward: tuple[str, int] | None = option(
        None, help="ask this lab DNS server about names outside our zones (loopback only)",
        parse=_forward, metavar="HOST:PORT", example="127.0.0.1:5353")
    cache: bool = option(True, help="keep answers as wire bytes until the zone changes (no: build each anew)",
                         parse=yes_no(), metavar="yes|no")


# servers of a lab given the same zones share them, edits included
DNS_ZONES: ServiceKey[dict[Any, ZoneSet]] = ServiceKey("dns.zones", dict)


def quick_key(wire: bytes, tcp: bool) -> bytes | None:
    """The cache key of a plain query (one question, no EDNS options), or
    None for anything else; never raises."""
    n = len(wire)
    if n < 17 or n > 512 or wire[2] & 0xFE or wire[3] & 0xCF or wire[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None
    i = 12
    while True:
        if i >= n:
            return None
        size = wire[i]
        if size == 0:
            break
        if size > 63:
            return None
        i += size + 1
    if i > 267:  # the name over 255 bytes
        return None
    end = i + 5
    if end > n:
        return None
    head = (b"T" if tcp else b"U") + wire[2:4] + wire[12:i].lower() + wire[i:end]
    extra = wire[10:12]
    if extra == b"\x00\x00":
        return head if end == n else None
    if extra != b"\x00\x01" or n != end + 11:
        return None
    opt = wire[end:]
    if opt[0:3] != b"\x00\x00\x29" or opt[5:7] != b"\x00\x00" or opt[7] & 0x7F or opt[8] or opt[9:11] != b"\x00\x00":
        return None
    return head + opt[3:5] + opt[7:8]


class DnsSession(Session["DnsServer"]):
    """One client (a UDP source, or a TCP connection): each query answered
    in order."""

    def __init__(self, server: DnsServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.tcp = conn.transport is Transport.TCP

    def message_received(self, msg: Message) -> None:
        if not isinstance(msg, DnsMessage):
            return
        if self.tcp:
            replies = self.server.answer(msg.raw[2:], True, self.conn)
            if replies:
                self.conn.send_raw(b"".join(len(r).to_bytes(2, "big") + r for r in replies))
            return
        raw = msg.raw
        server = self.server
        if server.zone.state is server._cache_state:
            # the hottest path: this very question (ID aside) answered before
            tail = server._exact.get(raw[2:])
            if tail is not None:
                server.cached += 1
                self.conn.send_raw(raw[:2] + tail)
                return
        replies = server.answer(raw, False, self.conn)
        if replies:
            self.conn.send_raw(replies[0])



class DnsServer(ServerBehaviour[DnsOptions]):
    """An authoritative DNS server for the zones in its options (the demo
    zone ``lab.test`` when none are given), over UDP or TCP.  Every DNS
    server of a lab given the same zones serves one :class:`ZoneSet`, so
    a UDP and a TCP server on the same port answer alike and an edit
    through either shows in both (``srv.zone.add("www", "A", "127.0.0.2")``)."""

    session_type = DnsSession
    shell_names = ("zone",)

    def __init__(self, options: DnsOptions) -> None:
        super().__init__(options)
        self.zone: ZoneSet = self._load()  # replaced by the lab's shared set in started()
        self._cache: dict[bytes, tuple[bytes, int]] = {}
        self._exact: dict[bytes, bytes] = {}  # UDP: a plain query without its ID -> the answer without it
        self._cache_state: ZoneState | None = None
        self.answered = self.cached = self.malformed = 0
        self._forwarding: set[asyncio.Task[None]] = set()

    def _key(self) -> tuple[Any, ...]:
        o = self.options
        path = os.path.realpath(o.zone_file) if o.zone_file else None
        return (path, o.zone, o.record, o.ttl)

    def _load(self) -> ZoneSet:
        o = self.options
        zones = []
        if o.zone_file:
            try:
                with open(o.zone_file, encoding="utf-8") as f:
                    text = f.read(MAX_ZONE_FILE + 1)
            except OSError as exc:
                raise ConfigError(f"dns: cannot read the zone file {o.zone_file}: {exc.strerror or exc}") from None
            if len(text) > MAX_ZONE_FILE:
                raise ConfigError(f"dns: the zone file {o.zone_file} is larger than 16 MiB")
            zones.append(zone_from_text(text, where=o.zone_file))
        zones.extend(empty_zone(origin, o.ttl) for origin in o.zone)
        if o.record and not zones:
            zones.append(empty_zone("lab.test", o.ttl))
        if not zones:
            zones.append(zone_from_text(DEMO_ZONE, where="the demo zone"))
        zone_set = ZoneSet(zones, o.ttl)
        for name, rdtype, value in o.record:
            try:
                zone_set.add(name if name.endswith(".") or name == "@" else name + ".", rdtype, value)
            except ConfigError as exc:
                raise ConfigError(f"dns: --record {name} {rdtype} {value}: {exc.message}", hint=exc.hint) from None
        return zone_set

    def started(self) -> None:
        shared = self.services.get(DNS_ZONES)
        self.zone = shared.setdefault(self._key(), self.zone)

    # -- answering ----------------------------------------------------------------

    def answer(self, wire: bytes, tcp: bool, conn: Peer) -> list[bytes] | None:
        """The reply (or replies: a zone transfer) to one query; None when it
        goes unanswered (a response, bytes with no header) or will be
        answered later (forwarded)."""
        state = self.zone.state
        if state is not self._cache_state:
            self._cache, self._exact = {}, {}
            self._cache_state = state
        key = quick_key(wire, tcp) if self.options.cache else None
        if key is None:
            return self._slow(wire, tcp, conn, state)[0]
        hit = self._cache.get(key)
        if hit is not None:
            kept, end = hit
            self.cached += 1
            reply = wire[:2] + kept[2:12] + wire[12:end] + kept[end:]
        else:
            replies, cacheable = self._slow(wire, tcp, conn, state)
            if not cacheable or not replies:
                return replies
            reply = replies[0]
            if len(self._cache) >= MAX_CACHED:
                self._cache, self._exact = {}, {}
            self._cache[key] = (reply, _question_end(wire))
        if not tcp and len(self._exact) < MAX_CACHED:
            self._exact[wire[2:]] = reply[2:]
        return [reply]

    def _bad(self, conn: Peer, why: str, wire: bytes) -> None:
        self.malformed += 1
        conn.note(f"malformed query from {conn.peer[0] if conn.peer else '?'}: {why}")

    def _slow(self, wire: bytes, tcp: bool, conn: Peer, state: ZoneState) -> tuple[list[bytes] | None, bool]:
        if len(wire) < 12:
            self._bad(conn, f"{len(wire)} bytes, shorter than a header: dropped", wire)
            return None, False
        flags = int.from_bytes(wire[2:4], "big")
        if flags & 0x8000:
            self._bad(conn, "a response (QR=1) sent as a query: dropped", wire)
            return None, False
        opcode = (flags >> 11) & 0xF
        if opcode != 0:
            conn.note(f"opcode {dns.opcode.to_text(dns.opcode.Opcode(opcode))} is not implemented: NOTIMP")
            return [header_reply(wire, NOTIMP)], False
        if wire[4:6] != b"\x00\x01":
            self._bad(conn, f"{int.from_bytes(wire[4:6], 'big')} questions (one is allowed): FORMERR", wire)
            return [header_reply(wire, FORMERR)], False
        try:
            query = dns.message.from_wire(wire)
        except Exception as exc:  # every way dnspython finds bad bytes
            self._bad(conn, f"{type(exc).__name__}: {exc}: FORMERR", wire)
            return [header_reply(wire, FORMERR)], False
        question = query.question[0]
        qtype = question.rdtype
        response = dns.message.make_response(query, our_payload=self.options.edns_size)
        response.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
        if query.edns > 0:
            response.use_edns(0, 0, self.options.edns_size)
            response.set_rcode(dns.rcode.BADVERS)
            return [response.to_wire()], False
        if query.edns == 0:
            response.ednsflags |= query.ednsflags & dns.flags.DO
        limit = 65535 if tcp else (512 if query.edns < 0 else min(max(query.payload, 512), self.options.edns_size))
        if qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self._transfer(query, response, tcp, conn, state), False
        if qtype == dns.rdatatype.OPT or (dns.rdatatype.is_metatype(qtype) and qtype != dns.rdatatype.ANY):
            self._bad(conn, f"a question for {dns.rdatatype.to_text(qtype)}: FORMERR", wire)
            response.set_rcode(FORMERR)
            return [response.to_wire(max_size=limit, prefer_truncation=True)], False
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(REFUSED)
            return [response.to_wire(max_size=limit)], True
        found = resolve(state, question.name, qtype)
        if found.zone is None and self.options.forward is not None:
            self._forward(wire, tcp, conn)
            return None, False
        response.set_rcode(dns.rcode.Rcode(found.rcode))
        if found.authoritative:
            response.flags |= dns.flags.AA
        response.answer, response.authority, response.additional = found.answer, found.authority, found.additional
        self.answered += 1
        return [response.to_wire(max_size=limit, prefer_truncation=True)], True

    def _transfer(self, query: dns.message.Message, response: dns.message.Message, tcp: bool, conn: Peer,
                  state: ZoneState) -> list[bytes]:
        """AXFR (RFC 5936): over TCP, to allowed addresses, SOA first and last."""
        qname = query.question[0].name
        zone = next((z for z in state.zones if z.origin == qname), None)
        host = str(conn.peer[0]) if conn.peer else ""
        allowed = False
        try:
            address = ipaddress.ip_address(host.split("%")[0])
            allowed = any(address in net for net in self.options.axfr_allow)
        except ValueError:
            pass
        if query.question[0].rdtype == dns.rdatatype.IXFR or not tcp or zone is None or not allowed:
            why = ("IXFR is not offered" if query.question[0].rdtype == dns.rdatatype.IXFR
                   else "zone transfers go over TCP" if not tcp
                   else f"{qname} is not one of our zones" if zone is None else f"{host} may not transfer zones")
            conn.note(f"zone transfer refused: {why}")
            response.set_rcode(NOTAUTH if zone is None and tcp and allowed else REFUSED)
            return [response.to_wire()]
        response.flags |= dns.flags.AA
        out: list[bytes] = []
        size = 0
        rrsets = [*zone.rrsets(), zone.soa]
        for rrset in rrsets:
            response.answer.append(rrset)
            size += sum(len(r.to_text()) + len(rrset.name) + 10 for r in rrset)
            if size >= AXFR_PER_MESSAGE:
                out.append(response.to_wire())
                response.answer = []
                response.question = []
                size = 0
        if response.answer:
            out.append(response.to_wire())
        conn.note(f"zone transfer of {qname} to {host}: {zone.count()} records in {len(out)} messages")
        return out

    def _forward(self, wire: bytes, tcp: bool, conn: Peer) -> None:
        """Ask the --forward server and relay its answer (with its flags; not
        kept in the cache)."""
        assert self.options.forward is not None
        host, port = self.options.forward
        query = dns.message.from_wire(wire)

        async def relay() -> None:
            try:
                if tcp:
                    reply = await dns.asyncquery.tcp(query, host, timeout=3.0, port=port)
                else:
                    reply = await dns.asyncquery.udp(query, host, timeout=3.0, port=port, ignore_unexpected=True)
                data = reply.to_wire(max_size=65535 if tcp else 4096, prefer_truncation=True)
            except (dns.exception.DNSException, OSError) as exc:
                conn.note(f"forwarding to {host}:{port} failed: {exc or type(exc).__name__}: SERVFAIL")
                data = header_reply(wire, SERVFAIL)
            try:
                conn.send_raw(len(data).to_bytes(2, "big") + data if tcp else data)
            except Exception as exc:  # the client went away meanwhile
                conn.note(f"forwarded answer not sent: {exc}")

        task = asyncio.get_running_loop().create_task(relay())
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    def stopped(self) -> None:
        for task in list(self._forwarding):
            task.cancel()




def _question_end(wire: bytes) -> int:
    i = 12
    while wire[i]:
        i += wire[i] + 1
    return i + 5
