"""pcapng export: a lab's traffic as a capture that Wireshark decodes.

The event log holds what each connection sent and received, not packets;
this module makes the packets up.  Each TCP connection gets Ethernet,
IPv4 (IPv6 for IPv6 addresses) and TCP framing: a handshake where it
opened (or before its first bytes, if its opening left the log), its
bytes as segments with consistent sequence and acknowledgement numbers,
and a FIN exchange where it closed.  Each UDP message is a datagram.
Every packet carries the summaries of the events it holds as a comment.

The bytes of one direction come from DATA events (chunks as they came off
the socket) and MESSAGE events (decoded messages): a message whose bytes
an earlier chunk already held adds nothing, so nothing is sent twice
(:class:`StreamRebuilder`).  A connection both of whose ends are in the
lab is written once; a proxy's connection is two, one per socket.

Wireshark picks a dissector by port, so by default the server's port is
written as the protocol's own (25 for SMTP); the real addresses are in the
comment of the first packet.

Tests: tests/test_pcap.py
"""

from __future__ import annotations

import ipaddress
import os
import re
import struct
import sys
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from lab.errors import ConfigError, LabError
from lab.eventlog import Direction, Event, EventKind

__all__ = ["PENDING_LIMIT", "PcapSummary", "StreamRebuilder", "write_pcapng"]

MAX_SEGMENT = 65_000  # payload bytes per packet: an IP packet's length is 16 bits
PENDING_LIMIT = 16 * 1024 * 1024  # chunk bytes kept per direction to match messages against
MAX_COMMENT = 8_000  # bytes of comment per packet (a pcapng option is at most 65,535)

_LINKTYPE_ETHERNET = 1
_SYN, _FIN, _PSH, _ACK = 0x02, 0x01, 0x08, 0x10
_WINDOW, _WSCALE = 65535, 14  # window scaling, so long one-way streams never fill the window
_UNKNOWN = ("192.0.2.1", "192.0.2.2")  # documentation addresses, for ends the log does not name

Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


class StreamRebuilder:
    """The bytes of one direction of one connection, from its events.

    A chunk (DATA) is stream bytes; a message is stream bytes only when
    no chunk before it held them (a chunk that was exactly one message is
    recorded as the message alone).  Chunk bytes no message has claimed
    yet are kept, up to ``limit`` bytes, to match messages against.
    """

    def __init__(self, limit: int = PENDING_LIMIT) -> None:
        self.offset = 0  # stream bytes so far
        self._limit = limit
        self._pending = bytearray()
        self._start = 0  # the stream offset of _pending[0]

    def add(self, kind: EventKind, raw: bytes) -> tuple[bytes, int]:
        """Take one DATA or MESSAGE event's bytes: returns the bytes it adds
        to the stream (maybe none) and the stream offset where its own
        bytes end."""
        pending = self._pending
        if kind is EventKind.MESSAGE:
            at = pending.find(raw) if pending else -1
            if at >= 0:
                end = self._start + at + len(raw)
                del pending[: at + len(raw)]
                self._start = end
                return b"", end
            # it came whole; chunks before it that no message took never will
            pending.clear()
        self.offset += len(raw)
        if kind is EventKind.DATA:
            pending += raw
            if len(pending) > self._limit:
                del pending[: len(pending) - self._limit]
        self._start = self.offset - len(pending)
        return raw, self.offset


@dataclass(frozen=True)
class PcapSummary:
    """What an export wrote."""

    path: str
    packets: int
    connections: int
    bytes: int  # payload bytes
    skipped: int  # events whose bytes the log did not keep

    def __str__(self) -> str:
        text = (f"wrote {self.packets} packets, {self.connections} connections, {self.bytes:,} bytes"
                f" to {self.path}")
        if self.skipped:
            text += f"; {self.skipped} events without bytes (capture summary/off, or shed) left out"
        return text


# -- reading addresses from the log ------------------------------------------

_ADDR = re.compile(r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d{1,5})|(?P<v4>[^\s\[\]:]+):(?P<p4>\d{1,5})")
_LISTEN = re.compile(r"(?P<t>tcp|udp)://(?P<a>\[[^\]]+\]:\d+|[^\s/\[\]:]+:\d+)")


def _address(text: str) -> Address | None:
    m = _ADDR.fullmatch(text.strip())
    if m is None:
        return None
    host = (m.group("v6") or m.group("v4")).split("%", 1)[0]
    port = int(m.group("p6") or m.group("p4"))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (ip, port) if port <= 65535 else None


@dataclass
class _Conn:
    """What the log says about one connection."""

    conn: str
    endpoint: str
    protocol: str
    first: int  # sequence number of its first event
    udp: bool = False
    proxy: bool = False
    accepted: bool = True  # a server's (or proxy's) side; False: a client's
    opened: str = ""  # the open event's text
    client: Address | None = None
    server: Address | None = None
    via: Address | None = None  # a proxy's listening address
    dialled: Address | None = None  # a proxy's own end toward the server
    payload: int = 0
    legs: list[_Leg] = field(default_factory=list)

    @property
    def inbound(self) -> Direction:
        """The direction in which the client's bytes are recorded."""
        return Direction.IN if self.accepted else Direction.OUT


def _unspecified(addr: Address | None) -> bool:
    return addr is not None and addr[0].is_unspecified


class _Ports:
    """Made-up ports for ends the log does not name, unused by any it does."""

    def __init__(self, used: set[int]) -> None:
        self._used = used
        self._next = 49152

    def take(self) -> int:
        while self._next in self._used:
            self._next += 1
        self._used.add(self._next)
        return self._next


def _survey(events: list[Event]) -> dict[str, _Conn]:
    """Pass one: every connection's transport, role and addresses."""
    listening: dict[str, tuple[bool, Address]] = {}
    conns: dict[str, _Conn] = {}
    for e in events:
        if e.kind is EventKind.LISTEN:
            m = _LISTEN.search(e.summary)
            addr = _address(m.group("a")) if m else None
            if m and addr:
                listening[e.endpoint] = (m.group("t") == "udp", addr)
            continue
        if not e.conn:
            continue
        c = conns.get(e.conn)
        if c is None:
            c = conns[e.conn] = _Conn(e.conn, e.endpoint, e.protocol, e.seq, accepted=e.conn != e.endpoint)
            if e.endpoint in listening:
                c.udp = listening[e.endpoint][0]
        if e.raw is not None:
            c.payload += len(e.raw)
        if e.kind is EventKind.OPEN and not c.opened:
            c.opened = e.summary
            text = e.summary
            if text.startswith("udp "):
                c.udp, text = True, text[4:]
            ends = [_address(part) for part in text.split(" -> ")]
            listen = listening.get(e.endpoint, (False, None))[1]
            if c.udp and c.accepted and len(ends) == 1:  # a server's peer: "udp CLIENT"
                c.client, c.server = ends[0], listen
            elif c.udp and c.accepted and len(ends) == 2:  # a proxy's: "udp CLIENT -> TARGET"
                c.proxy = True
                c.client, c.via, c.server = ends[0], listen, ends[1]
            elif len(ends) == 3:  # a proxy's: "CLIENT -> PROXY -> TARGET"
                c.proxy = True
                c.client, c.via, c.server = ends
            elif len(ends) == 2:
                c.client, c.server = ends
            if _unspecified(c.server) and c.client is not None and c.server is not None:
                c.server = (c.client[0], c.server[1])  # listening on every address: the client dialled its own
            if _unspecified(c.via) and c.client is not None and c.via is not None:
                c.via = (c.client[0], c.via[1])
    return conns


def _well_known(protocol: str) -> int | None:
    from lab import protocols

    try:
        port = protocols.get(protocol).default_port
    except LabError:
        return None
    return port if 0 < port < 65536 else None


def _plan(conns: dict[str, _Conn], real_ports: bool) -> None:
    """Give each connection its legs (one, or a proxy's two), leaving out
    the second copy of a connection both of whose ends are in the lab."""
    used = {a[1] for c in conns.values() for a in (c.client, c.server, c.via) if a}
    ports = _Ports(used)
    ordered = sorted(conns.values(), key=lambda c: c.first)
    # a proxy's socket toward a lab server is that server's connection seen from the other end
    claimed: set[str] = set()
    for p in ordered:
        if not p.proxy or p.server is None:
            continue
        for s in ordered:
            if (s.first > p.first and s.accepted and not s.proxy and s.udp == p.udp and s.conn not in claimed
                    and s.server == p.server and s.client is not None):
                claimed.add(s.conn)
                p.dialled = s.client
                break
    legs: dict[tuple[bool, Address, Address], _Leg] = {}
    for c in ordered:
        fallback_client = (ipaddress.ip_address(_UNKNOWN[0]), ports.take())
        server = c.server or (ipaddress.ip_address(_UNKNOWN[1]), _well_known(c.protocol) or ports.take())
        pairs: list[tuple[Address, Address, str]]
        if c.proxy:
            via = c.via or (ipaddress.ip_address(_UNKNOWN[1]), ports.take())
            dialled = c.dialled or (via[0], ports.take())
            pairs = [(c.client or fallback_client, via, "client"), (dialled, server, "server")]
        else:
            pairs = [(c.client or fallback_client, server, "")]
        for client, srv, side in pairs:
            client, srv = _same_family(client, srv)
            shown = srv if real_ports else (srv[0], _well_known(c.protocol) or srv[1])
            leg = _Leg(c, side, client, shown, real=(client, srv))
            key = (c.udp, client, srv)
            twin = legs.get(key)
            if twin is not None and twin.conn.payload >= c.payload:
                continue  # the same connection from its other end, already planned
            if twin is not None:
                twin.conn.legs.remove(twin)
            legs[key] = leg
            c.legs.append(leg)


def _same_family(a: Address, b: Address) -> tuple[Address, Address]:
    """Both ends in one IP family (IPv4 as IPv4-mapped IPv6 if need be)."""
    if a[0].version == b[0].version:
        return a, b

    def v6(x: Address) -> Address:
        return (ipaddress.IPv6Address(f"::ffff:{x[0]}"), x[1]) if x[0].version == 4 else x

    return v6(a), v6(b)


# -- packets -------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(memoryview(data).cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    total = ~total & 0xFFFF
    if sys.byteorder == "little":  # summed as native words: the sum comes out byte-swapped
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def _mac(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    return b"\x02\x00" + zlib.crc32(ip.packed).to_bytes(4, "big")  # locally administered


class _Packet:
    __slots__ = ("comments", "frame", "micros")

    def __init__(self, micros: int, frame: bytes, comment: str | None) -> None:
        self.micros = micros
        self.frame = frame
        self.comments = [comment] if comment else []


class _Leg:
    """One socket's worth of packets: a connection, or one side of a proxy's."""

    def __init__(self, conn: _Conn, side: str, client: Address, server: Address,
                 real: tuple[Address, Address]) -> None:
        self.conn = conn
        self.side = side  # "client" or "server" for a proxy's two sockets
        self.client, self.server = client, server
        self.real = real
        seed = zlib.crc32(f"{conn.conn}/{side}".encode())
        self.seq = {True: seed, False: zlib.crc32(b"server", seed)}  # by "sent by the client"
        self.opened = self.closed = False
        self._ident = seed & 0xFFFF

    def carries(self, event: Event) -> bool:
        """Does this socket carry the event's bytes? (Bytes a proxy injected
        toward one side never crossed the other side's socket.)"""
        if not self.side or event.kind is not EventKind.DATA or not (event.text or "").startswith("injected "):
            return True
        toward_server = event.direction is Direction.IN
        return (self.side == "server") == toward_server

    def _frame(self, from_client: bool, proto: int, segment: bytes) -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        self._ident = (self._ident + 1) & 0xFFFF
        if src[0].version == 4:
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), self._ident, 0x4000, 64, proto, 0,
                                 src[0].packed, dst[0].packed)
            header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
            ethertype = 0x0800
        else:
            header = struct.pack("!IHBB16s16s", 6 << 28, len(segment), proto, 64, src[0].packed, dst[0].packed)
            ethertype = 0x86DD
        return _mac(dst[0]) + _mac(src[0]) + struct.pack("!H", ethertype) + header + segment

    def _pseudo(self, from_client: bool, proto: int, length: int) -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        if src[0].version == 4:
            return src[0].packed + dst[0].packed + struct.pack("!BBH", 0, proto, length)
        return src[0].packed + dst[0].packed + struct.pack("!I3xB", length, proto)

    def tcp(self, from_client: bool, flags: int, payload: bytes = b"", options: bytes = b"") -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        seq, ack = self.seq[from_client], self.seq[not from_client]
        if not flags & _ACK:
            ack = 0
        offset = (20 + len(options)) // 4
        header = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack, offset << 4, flags, _WINDOW, 0, 0) + options
        checksum = _checksum(self._pseudo(from_client, 6, len(header) + len(payload)) + header + payload)
        header = header[:16] + struct.pack("!H", checksum) + header[18:]
        self.seq[from_client] = (seq + len(payload) + (1 if flags & (_SYN | _FIN) else 0)) & 0xFFFFFFFF
        return self._frame(from_client, 6, header + payload)

    def udp(self, from_client: bool, payload: bytes) -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        header = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
        checksum = _checksum(self._pseudo(from_client, 17, 8 + len(payload)) + header + payload) or 0xFFFF
        return self._frame(from_client, 17, header[:6] + struct.pack("!H", checksum) + payload)

    def handshake(self, micros: int, comment: str) -> list[_Packet]:
        self.opened = True
        if self.conn.udp:
            return []
        # a loopback MSS, as a real stack's; window scaling
        options = struct.pack("!BBHBBBB", 2, 4, 65495, 1, 3, 3, _WSCALE)
        return [_Packet(micros, self.tcp(True, _SYN, options=options), comment),
                _Packet(micros, self.tcp(False, _SYN | _ACK, options=options), None),
                _Packet(micros, self.tcp(True, _ACK), None)]

    def data(self, from_client: bool, payload: bytes, micros: int, comment: str) -> list[_Packet]:
        out = []
        for at in range(0, len(payload), MAX_SEGMENT):
            piece = payload[at : at + MAX_SEGMENT]
            frame = self.udp(from_client, piece) if self.conn.udp else self.tcp(from_client, _PSH | _ACK, piece)
            out.append(_Packet(micros, frame, comment if at == 0 else None))
        return out

    def finish(self, micros: int, comment: str) -> list[_Packet]:
        self.closed = True
        if self.conn.udp:
            return []
        return [_Packet(micros, self.tcp(True, _FIN | _ACK), comment),
                _Packet(micros, self.tcp(False, _FIN | _ACK), None),
                _Packet(micros, self.tcp(True, _ACK), None)]


def _comment(e: Event) -> str:
    what = e.direction.arrow if e.kind in (EventKind.MESSAGE, EventKind.DATA) else e.kind.value
    if e.kind is EventKind.DATA:
        what += " raw"
    return f"#{e.seq} {e.conn} {what} {e.summary}"


def _packets(events: list[Event], conns: dict[str, _Conn], reveal: bool = False) -> tuple[list[_Packet], int, int]:
    """Pass two: the packets, in the order of the events; with the payload
    bytes written and the events skipped for want of bytes.  Secrets are
    masked (the same way in a chunk and its messages, so they still
    match) unless ``reveal``."""
    packets: list[_Packet] = []
    rebuilders: dict[tuple[str, Direction], StreamRebuilder] = {}
    # per direction, (stream end offset, packets) of chunks whose messages may follow
    marks: dict[tuple[str, Direction], deque[tuple[int, list[_Packet]]]] = {}
    payload = skipped = 0
    for e in events:
        c = conns.get(e.conn) if e.conn else None
        if c is None or not c.legs:
            continue
        micros = round(e.wall * 1_000_000)
        if e.kind is EventKind.OPEN:
            for leg in c.legs:
                if not leg.opened:
                    note = _comment(e)
                    if leg.real != (leg.client, leg.server) or c.proxy:
                        note += f" (socket {_show(leg.real[0])} -> {_show(leg.real[1])}"
                        note += f", server port written as {leg.server[1]})" if leg.real[1] != leg.server else ")"
                    packets += leg.handshake(micros, note)
            continue
        if e.kind is EventKind.CLOSE:
            for leg in c.legs:
                if (leg.opened or c.udp) and not leg.closed:
                    packets += leg.finish(micros, _comment(e))
            continue
        if e.kind not in (EventKind.DATA, EventKind.MESSAGE) or e.direction is Direction.NONE:
            continue
        if e.raw is None:
            skipped += 1
            continue
        key = (e.conn, e.direction)
        rebuilder = rebuilders.setdefault(key, StreamRebuilder())
        new, end = rebuilder.add(e.kind, e.raw if reveal else e.masked_raw or b"")
        mine = marks.setdefault(key, deque())
        if not new:  # a message a chunk already held: note it on the chunk's packets
            while mine and mine[0][0] < end:
                mine.popleft()
            if mine:
                for packet in mine[0][1]:
                    packet.comments.append(_comment(e))
            continue
        from_client = e.direction is c.inbound
        legs = c.legs if from_client else list(reversed(c.legs))
        sent: list[_Packet] = []
        for leg in legs:
            if not leg.carries(e):
                continue
            if not leg.opened:  # its opening left the log: open it at its first bytes
                packets += leg.handshake(micros, f"{e.conn}: opened before the log begins")
            pieces = leg.data(from_client, new, micros, _comment(e))
            packets += pieces
            sent.append(pieces[-1])
        if sent:
            payload += len(new)
        if e.kind is EventKind.DATA:
            mine.append((end, sent))
            while mine and mine[0][0] < rebuilder.offset - PENDING_LIMIT:
                mine.popleft()
        else:
            mine.clear()
    return packets, payload, skipped


def _show(addr: Address) -> str:
    return f"[{addr[0]}]:{addr[1]}" if addr[0].version == 6 else f"{addr[0]}:{addr[1]}"


# -- pcapng --------------------------------------------------------------------


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def _section() -> bytes:
    from lab import __version__

    options = _option(4, f"netlab {__version__}".encode()) + _option(0, b"")
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options)
    idb_options = (_option(2, b"netlab") + _option(3, b"made up from a netlab event log")
                   + _option(9, b"\x06") + _option(0, b""))
    return shb + _block(1, struct.pack("<HHI", _LINKTYPE_ETHERNET, 0, 0) + idb_options)


def _packet_block(p: _Packet) -> bytes:
    frame = p.frame
    body = struct.pack("<IIIII", 0, (p.micros >> 32) & 0xFFFFFFFF, p.micros & 0xFFFFFFFF, len(frame), len(frame))
    body += frame + b"\0" * (-len(frame) % 4)
    if p.comments:
        text = "\n".join(p.comments).encode("utf-8", "backslashreplace")
        if len(text) > MAX_COMMENT:
            text = text[: MAX_COMMENT - 3].decode("utf-8", "ignore").encode() + "…".encode()
        body += _option(1, text) + _option(0, b"")
    return _block(6, body)


def write_pcapng(events: Iterable[Event], target: str | os.PathLike[str] | IO[bytes], *,
                 real_ports: bool = False, force: bool = False, reveal: bool = False) -> PcapSummary:
    """Write the traffic of ``events`` (oldest first) as pcapng.

    A path is created anew (``force``: or overwritten); an existing file is
    a :class:`ConfigError`, as is one that cannot be written.  Events
    without bytes cannot become packets: the summary counts them.  Secret
    bytes are written as ``********`` unless ``reveal``.
    """
    listed = sorted(events, key=lambda e: e.seq)
    conns = _survey(listed)
    _plan(conns, real_ports)
    packets, payload, skipped = _packets(listed, conns, reveal)
    written = sum(1 for c in conns.values() for leg in c.legs if leg.opened)
    name = getattr(target, "name", "<stream>") if not isinstance(target, (str, os.PathLike)) else os.fspath(target)
    if isinstance(target, (str, os.PathLike)):
        try:
            with open(name, "wb" if force else "xb") as fh:
                _write(fh, packets)
        except FileExistsError:
            raise ConfigError(f"{name} exists", hint="add --force to overwrite it, or pick another name") from None
        except OSError as exc:
            raise ConfigError(f"cannot write {name}: {exc.strerror or exc}", hint="check the path") from None
    else:
        _write(target, packets)
    return PcapSummary(str(name), len(packets), written, payload, skipped)


def _write(fh: IO[bytes], packets: list[_Packet]) -> None:
    fh.write(_section())
    batch: list[bytes] = []
    for p in packets:
        batch.append(_packet_block(p))
        if len(batch) >= 256:
            fh.write(b"".join(batch))
            batch = []
    fh.write(b"".join(batch))
