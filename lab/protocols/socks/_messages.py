"""SOCKS 4 and 4a messages: the client's request and the server's reply.

A request (SOCKS 4, Ying-Da Lee's "SOCKS: A protocol for TCP proxy across
firewalls", and the 4A extension)::

    +----+----+----+----+----+----+----+----+----+----+....+----+
    | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
    +----+----+----+----+----+----+----+----+----+----+....+----+
       1    1      2              4           variable       1

VN is 4, CD 1 (CONNECT) or 2 (BIND).  With 4A, a DSTIP of 0.0.0.x (x not
0) says a host name follows the user id, NUL-terminated too, for the
server to resolve.  A reply is eight bytes: VN 0, CD 90 (granted), 91
(rejected or failed), 92 (no identd on the client) or 93 (identd and the
user id disagree), then a port and an address (for BIND: where the
server listens).

Tests: tests/protocols/test_socks.py
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError
from lab.protocols._base import Message, Pattern, code_pattern, escape_bytes

__all__ = [
    "GRANTED",
    "REJECTED",
    "REPLY_MEANINGS",
    "SocksCommand",
    "SocksReply",
    "SocksRequest",
    "is_4a_address",
]

GRANTED = 90
REJECTED = 91
REPLY_MEANINGS = {
    90: "request granted",
    91: "request rejected or failed",
    92: "rejected: no identd on the client",
    93: "rejected: identd reports another user id",
}
_HEAD = struct.Struct("!BBH4s")


class SocksCommand(enum.IntEnum):
    """CD of a request."""

    CONNECT = 1
    BIND = 2


def is_4a_address(address: bytes) -> bool:
    """0.0.0.x with x not 0: a 4A request, a host name follows."""
    return address[:3] == b"\0\0\0" and address[3] != 0


def _text(data: bytes) -> str:
    # user ids and host names are bytes on the wire; keep every byte visible
    return data.decode("latin-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class SocksRequest(Message):
    """A CONNECT or BIND request.  ``address`` is DSTIP dotted (``0.0.0.1``
    in a 4A request, whose ``host`` is the name to resolve), ``user`` the
    user id.  ``decode`` is not on the wire: a client may name the
    protocol the tunnel carries, for the log."""

    version: int
    command: int
    port: int
    address: str
    user: str = ""
    host: str | None = None
    decode: str = ""
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"port"})  # lab servers listen on ports the OS picks

    @classmethod
    def of(cls, command: SocksCommand | str, host: str, port: int, user: str = "", *, decode: str = "",
           max_field: int = 255) -> SocksRequest:
        """The request for ``host:port``: SOCKS 4 when ``host`` is an IPv4
        address, 4A (the server resolves it) otherwise.
        :class:`LocalProtocolError` for what the wire cannot carry."""
        cmd = SocksCommand[command.upper()] if isinstance(command, str) else SocksCommand(command)
        if not 0 <= port <= 0xFFFF:
            raise LocalProtocolError(f"socks: port {port} is out of range (0 to 65535)")
        user_bytes = user.encode("utf-8")
        for what, value in (("user id", user_bytes), ("host name", host.encode("utf-8"))):
            if b"\0" in value:
                raise LocalProtocolError(f"socks: a {what} cannot hold a NUL byte")
            if len(value) > max_field:
                raise LocalProtocolError(f"socks: the {what} is longer than {max_field} bytes")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and ip.version == 6:
            raise LocalProtocolError("socks: SOCKS 4 carries IPv4 addresses only",
                                     hint="give an IPv4 address or a host name (4a)")
        if ip is not None:
            raw = _HEAD.pack(4, cmd, port, ip.packed) + user_bytes + b"\0"
            return cls(raw=raw, version=4, command=cmd, port=port, address=str(ip), user=_text(user_bytes),
                       decode=decode)
        if not host:
            raise LocalProtocolError("socks: no host to connect to")
        name = host.encode("utf-8")
        raw = _HEAD.pack(4, cmd, port, b"\0\0\0\1") + user_bytes + b"\0" + name + b"\0"
        return cls(raw=raw, version=4, command=cmd, port=port, address="0.0.0.1", user=_text(user_bytes),
                   host=_text(name), decode=decode)

    @property
    def kind(self) -> str:  # srv.on("CONNECT", fn) in a proxy
        return self.command_name

    @property
    def command_name(self) -> str:
        try:
            return SocksCommand(self.command).name
        except ValueError:
            return f"command {self.command}"

    @property
    def socks4a(self) -> bool:
        return self.host is not None

    @property
    def destination(self) -> str:
        """``host:port`` as asked: the name for 4A, the address otherwise."""
        return f"{self.host if self.host is not None else self.address}:{self.port}"

    def summary(self) -> str:
        version = "4a" if self.socks4a else "4"
        user = f" user {escape_bytes(self.user.encode('latin-1', 'replace'), 60)}" if self.user else ""
        return f"{self.command_name} {self.destination} (SOCKS {version}){user}"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "command": f"{self.command} ({self.command_name})",
                               "port": self.port, "address": self.address, "user": self.user}
        if self.host is not None:
            out["host"] = self.host
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SocksReply(Message):
    """The server's answer: ``code`` 90 to 93, and a port and address
    (where a BIND listens, or whom it accepted)."""

    code: int
    port: int = 0
    address: str = "0.0.0.0"
    version: int = 0
    KIND: ClassVar[str] = "reply"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"port", "address"})

    @classmethod
    def of(cls, code: int, port: int = 0, address: str = "0.0.0.0") -> SocksReply:
        packed = ipaddress.IPv4Address(address).packed
        return cls(raw=_HEAD.pack(0, code, port, packed), code=code, port=port, address=address)

    @property
    def granted(self) -> bool:
        return self.code == GRANTED

    @property
    def meaning(self) -> str:
        return REPLY_MEANINGS.get(self.code, "unknown code")

    def matches(self, pattern: Pattern) -> bool:
        # `expect c 90` is about the code, not digits anywhere in the bytes
        wanted = code_pattern(pattern) if not (isinstance(pattern, str) and pattern.isdigit()) else int(pattern)
        if wanted is not None:
            return self.code == wanted
        if isinstance(pattern, str) and pattern.lower() in ("granted", "rejected"):
            return self.granted == (pattern.lower() == "granted")
        return Message.matches(self, pattern)

    def summary(self) -> str:
        where = f" {self.address}:{self.port}" if self.port or self.address != "0.0.0.0" else ""
        return f"{self.code} {self.meaning}{where}"

    def fields(self) -> dict[str, Any]:
        return {"version": self.version, "code": f"{self.code} ({self.meaning})", "port": self.port,
                "address": self.address}
