"""Who may reach what through a lab SOCKS server: the allow list, the
names a 4a request may give, and the user ids served.  Sans-IO: the
relay asks :meth:`Policy.decide` and acts on the verdict.

The lab is never an open proxy: by default only loopback (127.0.0.0/8)
may be reached, a 4a name resolves only if it is ``localhost``, an
IPv4 literal or a name the server was given, and no name is ever looked
up in DNS.

Tests: tests/protocols/test_socks.py
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from lab.protocols.socks._messages import SocksCommand, SocksRequest

__all__ = ["DEFAULT_ALLOW", "Policy", "Rule", "Verdict", "parse_allow", "parse_host"]

DEFAULT_ALLOW = "127.0.0.0/8"
_LOCAL_NAMES = {"localhost": "127.0.0.1", "localhost.localdomain": "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class Rule:
    """A network and a port range a tunnel may reach."""

    network: ipaddress.IPv4Network
    low: int = 1
    high: int = 65535

    def admits(self, address: ipaddress.IPv4Address, port: int) -> bool:
        return address in self.network and self.low <= port <= self.high

    def __str__(self) -> str:
        if (self.low, self.high) == (1, 65535):
            return str(self.network)
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.network}:{ports}"


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"wants ports from 1 to 65535, got {text!r} in {whole!r}")
    return int(text)


def parse_allow(text: str) -> tuple[Rule, ...]:
    """``127.0.0.0/8,10.0.0.0/8:80,192.0.2.7:8000-8080``: networks, each
    with an optional port or port range; :class:`ValueError` for anything
    else (IPv6 too: SOCKS 4 carries only IPv4)."""
    rules = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"wants NETWORK[:PORT[-PORT]] items separated by commas, got {text!r}")
        net_text, _, port_text = item.partition(":")
        try:
            network = ipaddress.ip_network(net_text, strict=False)
        except ValueError:
            raise ValueError(f"wants an IPv4 network such as 127.0.0.0/8, got {net_text!r}") from None
        if not isinstance(network, ipaddress.IPv4Network):
            raise ValueError(f"wants IPv4 networks (SOCKS 4 carries no IPv6), got {net_text!r}")
        low, high = 1, 65535
        if port_text:
            first, _, last = port_text.partition("-")
            low = _port(first, item)
            high = _port(last, item) if last else low
            if high < low:
                raise ValueError(f"wants a port range low-high, got {port_text!r}")
        rules.append(Rule(network, low, high))
    return tuple(rules)


def parse_host(text: str) -> tuple[str, str]:
    """``NAME=IPV4``: a name a 4a request may give, and its address."""
    name, sep, address = text.partition("=")
    name = name.strip().lower().rstrip(".")
    if not sep or not name or any(c.isspace() or c == "\0" for c in name):
        raise ValueError(f"wants NAME=IPV4ADDRESS, got {text!r}")
    try:
        ipaddress.IPv4Address(address.strip())
    except ValueError:
        raise ValueError(f"wants an IPv4 address after '=', got {address!r}") from None
    return name, address.strip()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a request: ``address`` to reach (granted) or
    ``reason`` for the refusal."""

    address: str | None
    reason: str = ""

    @property
    def granted(self) -> bool:
        return self.address is not None


class Policy:
    """The rules one SOCKS server applies to every request."""

    def __init__(self, allow: Iterable[Rule] = (), hosts: Iterable[tuple[str, str]] = (),
                 users: Iterable[str] = (), bind: bool = True) -> None:
        self.allow = tuple(allow) or parse_allow(DEFAULT_ALLOW)
        self.hosts = {**_LOCAL_NAMES, **{name.lower(): address for name, address in hosts}}
        self.users = frozenset(users)
        self.bind = bind

    def resolve(self, name: str) -> str | None:
        """A 4a host name's address: an IPv4 literal, ``localhost`` or a
        name the server was given; None for anything else (no DNS)."""
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            return self.hosts.get(name.lower().rstrip("."))

    def decide(self, request: SocksRequest) -> Verdict:
        """Grant ``request`` (the address to reach) or refuse it (why)."""
        if request.command == SocksCommand.BIND and not self.bind:
            return Verdict(None, "BIND is turned off (--bind no)")
        if self.users and request.user not in self.users:
            return Verdict(None, f"user id {request.user!r} is not served")
        if request.host is not None:
            address = self.resolve(request.host)
            if address is None:
                return Verdict(None, f"the lab does not resolve {request.host!r}"
                                     " (localhost, IPv4 literals and --lab-host names only; never DNS)")
        else:
            address = request.address
        ip = ipaddress.IPv4Address(address)
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            return Verdict(None, f"{ip} is not a host to connect to")
        if request.command == SocksCommand.CONNECT and request.port == 0:
            return Verdict(None, "port 0 is not a port to connect to")
        port = request.port
        # BIND names the host that will connect back; its port is not known yet
        if not any(rule.admits(ip, port) if request.command == SocksCommand.CONNECT else ip in rule.network
                   for rule in self.allow):
            where = f"{ip}:{port}" if request.host is None else f"{request.host} ({ip}):{port}"
            return Verdict(None, f"{where} is not in the allow list ({', '.join(map(str, self.allow))})")
        return Verdict(str(ip))
