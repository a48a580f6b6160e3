"""Zones: the records a DNS server is authoritative for, and the answers
they give (RFC 1034 §4.3.2, without delegations below a zone's apex).

A :class:`ZoneSet` holds every zone one server (or several servers of a
lab given the same zones) answers for.  Its state is a snapshot that is
replaced whole on each edit, so the reactor reads a consistent zone
while a user edits from another thread: an edit copies what it changes,
bumps the zone's SOA serial and swaps the snapshot in one assignment.

Tests: tests/protocols/test_dns.py
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from lab.errors import ConfigError

__all__ = ["DEMO_ZONE", "Resolution", "Zone", "ZoneSet", "ZoneState", "parse_record"]

IN = dns.rdataclass.IN
SOA = dns.rdatatype.SOA
CNAME = dns.rdatatype.CNAME
ANY = dns.rdatatype.ANY
MAX_CHAIN = 8  # CNAME hops followed inside our zones
MAX_RECORDS = 100_000  # per zone set: a lab zone, not a TLD

# what `netlab serve dns` answers with no zones given
DEMO_ZONE = """\
$ORIGIN lab.test.
$TTL 300
@        SOA   ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@        NS    ns
@        A     127.0.0.1
@        AAAA  ::1
@        MX    10 mail
@        TXT   "netlab demo zone"
ns       A     127.0.0.1
www      A     127.0.0.2
www      AAAA  ::1
mail     A     127.0.0.3
ftp      CNAME www
alias    CNAME ftp
_http._tcp SRV 0 5 80 www
*.dyn    A     127.0.0.4
*.dyn    TXT   "made up for any name under dyn.lab.test"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-1"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-2"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-3"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-4"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-5"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-6"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-7"
big      TXT   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-8"
"""

Node = dict[dns.rdatatype.RdataType, dns.rrset.RRset]  # rdtype -> the RRset


@dataclass(frozen=True)
class Zone:
    """One zone, as a snapshot: its origin and its records by owner name.
    Never changed in place; an edit makes a new one."""

    origin: dns.name.Name
    nodes: dict[dns.name.Name, Node]
    names: frozenset[dns.name.Name] = field(default=frozenset())  # owners and empty non-terminals

    @classmethod
    def of(cls, origin: dns.name.Name, nodes: dict[dns.name.Name, Node]) -> Zone:
        names: set[dns.name.Name] = set()
        for owner in nodes:
            name = owner
            while name not in names and name != origin and name.is_subdomain(origin):
                names.add(name)
                name = name.parent()
        names.add(origin)
        return cls(origin, nodes, frozenset(names))

    @property
    def soa(self) -> dns.rrset.RRset:
        return self.nodes[self.origin][SOA]

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)

    def negative_soa(self) -> dns.rrset.RRset:
        """The SOA for the authority section of NXDOMAIN and NODATA: its TTL
        is the smaller of its own and its MINIMUM (RFC 2308 §3)."""
        soa = self.soa
        out = dns.rrset.RRset(soa.name, IN, SOA)
        out.update(soa)
        out.ttl = min(soa.ttl, int(soa[0].minimum))
        return out

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset, the SOA first, then by owner name."""
        yield self.soa
        for owner in sorted(self.nodes):
            for rdtype, rrset in sorted(self.nodes[owner].items()):
                if not (owner == self.origin and rdtype == SOA):
                    yield rrset

    def count(self) -> int:
        return sum(len(r) for node in self.nodes.values() for r in node.values())


@dataclass(frozen=True)
class ZoneState:
    """Every zone of a set at one moment; replaced whole on each edit."""

    zones: tuple[Zone, ...]
    generation: int = 0

    def find(self, name: dns.name.Name) -> Zone | None:
        """The zone ``name`` falls in (the deepest origin), or None."""
        best: Zone | None = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (best is None or len(zone.origin) > len(best.origin)):
                best = zone
        return best


@dataclass
class Resolution:
    """What the zones say to one question."""

    rcode: int = 0  # dns.rcode values
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    zone: Zone | None = None


def _copy(rrset: dns.rrset.RRset, owner: dns.name.Name | None = None) -> dns.rrset.RRset:
    out = dns.rrset.RRset(owner or rrset.name, rrset.rdclass, rrset.rdtype)
    out.update(rrset)
    return out


def resolve(state: ZoneState, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Resolution:
    """Answer ``qname``/``qtype`` (class IN) from ``state``: REFUSED outside
    every zone, CNAMEs chased inside the zones, wildcards (RFC 4592)
    synthesised, NXDOMAIN and NODATA with the SOA in authority."""
    zone = state.find(qname)
    if zone is None:
        return Resolution(rcode=5, authoritative=False)  # REFUSED: we are no resolver
    out = Resolution(zone=zone)
    name = qname
    seen: set[dns.name.Name] = set()
    for _ in range(MAX_CHAIN):
        node = zone.nodes.get(name)
        owner = name
        if node is None and name not in zone.names:
            node = _wildcard(zone, name)
            if node is None:
                out.rcode = 3  # NXDOMAIN (RFC 6604: the last name in the chain)
                out.authority.append(zone.negative_soa())
                return out
        if node is None:  # an empty non-terminal: the name exists, no data
            out.authority.append(zone.negative_soa())
            return out
        if qtype == ANY:
            out.answer.extend(_copy(r, owner) for _, r in sorted(node.items()))
            return out
        found = node.get(qtype)
        if found is not None:
            out.answer.append(_copy(found, owner))
            _additional(state, found, out)
            return out
        alias = node.get(CNAME)
        if alias is None:
            out.authority.append(zone.negative_soa())  # NODATA
            return out
        out.answer.append(_copy(alias, owner))
        seen.add(name)
        name = alias[0].target
        if name in seen:
            return out  # a loop in the zone: what we have so far
        next_zone = state.find(name)
        if next_zone is None:
            return out  # the chain leaves our zones: the client follows it
        zone = next_zone
    return out


def _wildcard(zone: Zone, name: dns.name.Name) -> Node | None:
    """The records ``*.<closest encloser>`` gives ``name``, if any (RFC 4592 §3.3.1)."""
    encloser = name.parent()
    while encloser not in zone.names:
        if encloser == zone.origin or len(encloser) <= 1:
            return None
        encloser = encloser.parent()
    return zone.nodes.get(dns.name.Name((b"*", *encloser.labels)))


def _additional(state: ZoneState, rrset: dns.rrset.RRset, out: Resolution) -> None:
    """Addresses of the hosts an MX, SRV or NS answer names, when we have them."""
    if rrset.rdtype not in (dns.rdatatype.MX, dns.rdatatype.SRV, dns.rdatatype.NS):
        return
    for rdata in rrset:
        target = getattr(rdata, "exchange", None) or getattr(rdata, "target", None)
        zone = state.find(target) if isinstance(target, dns.name.Name) else None
        if zone is None or not isinstance(target, dns.name.Name):
            continue
        node = zone.nodes.get(target)
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            if node is not None and rdtype in node:
                out.additional.append(_copy(node[rdtype]))


# -- building zones -----------------------------------------------------------


def _from_dnspython(zone: dns.zone.Zone) -> Zone:
    origin = zone.origin
    assert origin is not None
    nodes: dict[dns.name.Name, Node] = {}
    for rel, node in zone.nodes.items():
        owner = rel.derelativize(origin)
        for rdataset in node.rdatasets:
            rrset = dns.rrset.RRset(owner, rdataset.rdclass, rdataset.rdtype)
            rrset.update(rdataset)
            nodes.setdefault(owner, {})[rdataset.rdtype] = rrset
    return Zone.of(origin, nodes)


def zone_from_text(text: str, origin: str | None = None, *, where: str = "zone") -> Zone:
    """A zone from master-file text (RFC 1035 §5); :class:`ConfigError`
    saying what is wrong."""
    try:
        parsed = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
    except dns.exception.DNSException as exc:
        hint = "start the file with $ORIGIN name." if "origin" in str(exc).lower() else None
        raise ConfigError(f"{where}: not a zone file: {exc}", hint=hint or "see RFC 1035 §5") from None
    zone = _from_dnspython(parsed)
    if zone.count() > MAX_RECORDS:
        raise ConfigError(f"{where}: more than {MAX_RECORDS} records")
    return zone


def empty_zone(origin: str, ttl: int = 300) -> Zone:
    """A zone with only its SOA and NS (ns.ORIGIN, at 127.0.0.1)."""
    name = dns.name.from_text(origin)
    text = (f"$ORIGIN {name}\n$TTL {ttl}\n@ SOA ns hostmaster 1 3600 600 86400 {ttl}\n"
            f"@ NS ns\nns A 127.0.0.1\n")
    return zone_from_text(text, where=f"zone {origin}")


def parse_record(text: str) -> tuple[str, str, str]:
    """``NAME TYPE VALUE`` (or ``NAME TYPE=VALUE``, as a lab file's mapping
    gives it) -> the three parts; ValueError saying what is wrong."""
    head, eq, tail = text.partition("=")
    parts = head.split(None, 1) if eq else text.split(None, 2)
    if eq and len(parts) == 2:
        name, rdtype, value = parts[0], parts[1], tail
    elif not eq and len(parts) == 3:
        name, rdtype, value = parts
    else:
        raise ValueError(f"wants NAME TYPE VALUE such as 'www.lab.test A 127.0.0.2', got {text!r}")
    try:
        dns.rdatatype.from_text(rdtype.strip())
    except dns.exception.DNSException:
        raise ValueError(f"has an unknown record type {rdtype!r} in {text!r}") from None
    return name.strip(), rdtype.strip().upper(), value.strip()


# -- the set of zones, editable live ------------------------------------------


class ZoneSet:
    """The zones a server answers for, editable from any thread.

    ``add``, ``remove`` and ``clear`` change one zone, bump its SOA serial
    and replace :attr:`state` in one assignment; the server, reading
    ``state`` once per query, sees the zone before the edit or after it,
    never half of it.  Names are relative to the first zone unless they
    end with a dot or already fall inside one of the zones.
    """

    def __init__(self, zones: Iterable[Zone], ttl: int = 300) -> None:
        self.ttl = ttl
        self.state = ZoneState(tuple(zones))
        self._lock = threading.Lock()

    # -- reading ----------------------------------------------------------------

    @property
    def origins(self) -> list[str]:
        return [z.origin.to_text(omit_final_dot=True) for z in self.state.zones]

    def zone(self, origin: str | None = None) -> Zone:
        """A zone by its origin (the first one if None); ConfigError if none."""
        zones = self.state.zones
        if origin is None:
            return zones[0]
        name = dns.name.from_text(origin)
        for zone in zones:
            if zone.origin == name:
                return zone
        raise ConfigError(f"no zone {origin!r} here", hint=f"zones: {', '.join(self.origins)}")

    def serial(self, origin: str | None = None) -> int:
        """The SOA serial of a zone (the first one if None)."""
        return self.zone(origin).serial

    def records(self, origin: str | None = None) -> list[str]:
        """Every record of a zone (all zones if None), in master-file form."""
        zones = self.state.zones if origin is None else (self.zone(origin),)
        return [line for z in zones for rrset in z.rrsets() for line in rrset.to_text().splitlines()]

    def show(self, origin: str | None = None) -> str:
        return "\n".join(self.records(origin))

    def __repr__(self) -> str:
        zones = ", ".join(f"{z.origin} (serial {z.serial}, {z.count()} records)" for z in self.state.zones)
        return f"<ZoneSet {zones}>"

    # -- editing ----------------------------------------------------------------

    def _name(self, name: str) -> tuple[dns.name.Name, Zone]:
        zones = self.state.zones
        try:
            if name == "@":
                absolute = zones[0].origin
            elif name.endswith("."):
                absolute = dns.name.from_text(name)
            else:
                absolute = dns.name.from_text(name)
                if self.state.find(absolute) is None:
                    absolute = dns.name.from_text(name, zones[0].origin)
        except dns.exception.DNSException as exc:
            raise ConfigError(f"not a domain name: {name!r} ({exc})") from None
        zone = self.state.find(absolute)
        if zone is None:
            raise ConfigError(f"{absolute} is in none of the zones here", hint=f"zones: {', '.join(self.origins)}")
        return absolute, zone

    def _rdata(self, rdtype: str, value: str, origin: dns.name.Name) -> tuple[dns.rdatatype.RdataType, dns.rdata.Rdata]:
        try:
            kind = dns.rdatatype.RdataType(dns.rdatatype.from_text(rdtype))
            if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
                ipaddress.ip_address(value)  # dnspython takes some odd forms; refuse them plainly
            return kind, dns.rdata.from_text(IN, kind, value, origin=origin, relativize=False)
        except (dns.exception.DNSException, ValueError) as exc:
            raise ConfigError(f"not a {rdtype.upper()} record: {value!r} ({exc})",
                              hint="e.g. zone.add('www', 'A', '127.0.0.2')") from None

    def _swap(self, zone: Zone, nodes: dict[dns.name.Name, Node]) -> None:
        """Put ``nodes`` in place of ``zone``'s, serial bumped (under the lock)."""
        soa = nodes[zone.origin][SOA]
        bumped = soa[0].replace(serial=(int(soa[0].serial) + 1) % 2**32)
        new_soa = dns.rrset.RRset(soa.name, IN, SOA)
        new_soa.add(bumped, soa.ttl)
        nodes[zone.origin] = {**nodes[zone.origin], SOA: new_soa}
        new = Zone.of(zone.origin, nodes)
        state = self.state
        self.state = ZoneState(tuple(new if z is zone else z for z in state.zones), state.generation + 1)

    def add(self, name: str, rdtype: str, value: str, ttl: int | None = None) -> int:
        """Add a record (``add("www", "A", "127.0.0.2")``); returns the new
        serial.  A CNAME may not share its name with other data (RFC 1034 §3.6.2)."""
        with self._lock:
            owner, zone = self._name(name)
            kind, rdata = self._rdata(rdtype, value, zone.origin)
            if kind == SOA:
                raise ConfigError("the SOA is kept by the server", hint="edits bump its serial")
            if zone.count() >= MAX_RECORDS:
                raise ConfigError(f"zone {zone.origin} is full ({MAX_RECORDS} records)")
            node = dict(zone.nodes.get(owner, {}))
            if (kind == CNAME and set(node) - {CNAME}) or (kind != CNAME and CNAME in node):
                raise ConfigError(f"{owner} cannot have a CNAME and other records",
                                  hint="remove one first (RFC 1034 §3.6.2)")
            old = node.get(kind)
            rrset = dns.rrset.RRset(owner, IN, kind)
            if old is not None and kind != CNAME:
                rrset.update(old)
            rrset.add(rdata, self.ttl if ttl is None else int(ttl))
            node[kind] = rrset
            nodes = dict(zone.nodes)
            nodes[owner] = node
            self._swap(zone, nodes)
            return self.serial(zone.origin.to_text())

    def remove(self, name: str, rdtype: str | None = None, value: str | None = None) -> int:
        """Remove a name's records (of one type, or one record); returns how
        many went.  The SOA and the apex NS stay."""
        with self._lock:
            owner, zone = self._name(name)
            node = dict(zone.nodes.get(owner, {}))
            kinds = list(node) if rdtype is None else [dns.rdatatype.RdataType(dns.rdatatype.from_text(rdtype))]
            removed = 0
            for kind in kinds:
                if owner == zone.origin and kind in (SOA, dns.rdatatype.NS):
                    continue
                rrset = node.get(kind)
                if rrset is None:
                    continue
                if value is None:
                    removed += len(rrset)
                    del node[kind]
                    continue
                _, rdata = self._rdata(dns.rdatatype.to_text(kind), value, zone.origin)
                if rdata in rrset:
                    kept = dns.rrset.RRset(owner, IN, kind)
                    kept.update(rrset)
                    kept.discard(rdata)
                    removed += 1
                    if kept:
                        node[kind] = kept
                    else:
                        del node[kind]
            if removed:
                nodes = dict(zone.nodes)
                if node:
                    nodes[owner] = node
                else:
                    nodes.pop(owner, None)
                self._swap(zone, nodes)
            return removed
