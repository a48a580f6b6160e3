"""FTP data connections, for the server and the client alike: addresses
in PORT/EPRT and 227/229 replies, the ASCII type's line-end conversion,
and how a data connection reports into the lab's log as a child of its
control connection (``f#1.d2``).

The protocol runs these sockets itself (a control connection opens any
number of them, one per transfer), as a protocol whose library owns its
sockets does, and tells the log what each carried: its opening, one
:class:`~lab.protocols.ftp._codec.FtpTransfer` (a preview and the size,
never the whole file) and its close.

Tests: tests/protocols/test_ftp.py
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any, Protocol

from lab.protocols._base import Message
from lab.protocols.ftp._codec import PREVIEW, FtpDataConversation, FtpTransfer

__all__ = [
    "CHUNK",
    "AsciiReader",
    "AsciiWriter",
    "DataRecord",
    "NullRecord",
    "Progress",
    "format_epsv",
    "format_pasv",
    "open_record",
    "parse_eprt",
    "parse_epsv_reply",
    "parse_pasv_reply",
    "parse_port",
    "same_host",
]

CHUNK = 64 * 1024  # bytes read from disk or socket at a time


class DataRecord(Protocol):
    """What a data connection tells the log (a lab connection's child)."""

    def sent(self, data: bytes | Message) -> None: ...
    def received(self, data: bytes | Message) -> None: ...
    def tally(self, received: int = 0, sent: int = 0) -> None: ...
    def note(self, text: str) -> None: ...
    def closed(self, reason: str = "closed") -> None: ...


class NullRecord:
    """A record for a data connection of a session outside a lab (tests)."""

    def sent(self, data: bytes | Message) -> None:
        pass

    def received(self, data: bytes | Message) -> None:
        pass

    def tally(self, received: int = 0, sent: int = 0) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def closed(self, reason: str = "closed") -> None:
        pass


def open_record(owner: Any, suffix: str, writer: asyncio.StreamWriter) -> DataRecord:
    """A child record of ``owner`` (a server's connection or a client's
    channel) for the data connection behind ``writer``."""
    child = getattr(owner, "child", None)
    if child is None:
        return NullRecord()
    peer = tuple(writer.get_extra_info("peername") or ())
    local = tuple(writer.get_extra_info("sockname") or ())
    record: DataRecord = child(suffix, FtpDataConversation(None), peer, local, close=writer.close)
    return record


class Progress:
    """What one data connection has carried: counted into its record as it
    goes (so a long transfer keeps its control connection from idling
    out), a preview kept, and one :class:`FtpTransfer` at the end."""

    def __init__(self, record: DataRecord, outgoing: bool) -> None:
        self.record = record
        self.outgoing = outgoing
        self.head = bytearray()
        self.size = 0
        self._counted = 0  # bytes tallied: all but the preview, which the message counts

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(self.head) < PREVIEW:
            self.head += chunk[:PREVIEW - len(self.head)]
        due = max(0, self.size - PREVIEW) - self._counted
        if due:
            self._counted += due
            self.record.tally(**({"sent": due} if self.outgoing else {"received": due}))

    def done(self, command: str, mode: str, complete: bool) -> None:
        """Log the transfer: a preview and the byte count."""
        msg = FtpTransfer.of(command, bytes(self.head), self.size, mode, complete)
        (self.record.sent if self.outgoing else self.record.received)(msg)


# -- addresses -------------------------------------------------------------------------------------


def same_host(a: str, b: str) -> bool:
    """Do two addresses name one host (an IPv4-mapped IPv6 address as its IPv4 one)?"""
    try:
        x, y = ipaddress.ip_address(a.split("%")[0]), ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False
    if isinstance(x, ipaddress.IPv6Address) and x.ipv4_mapped:
        x = x.ipv4_mapped
    if isinstance(y, ipaddress.IPv6Address) and y.ipv4_mapped:
        y = y.ipv4_mapped
    return x == y


_PORT = re.compile(r"\s*(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})\s*")


def parse_port(arg: str) -> tuple[str, int]:
    """PORT h1,h2,h3,h4,p1,p2 (RFC 959 §4.1.2); ValueError if malformed."""
    match = _PORT.fullmatch(arg)
    if match is None:
        raise ValueError("PORT wants h1,h2,h3,h4,p1,p2")
    nums = [int(x) for x in match.groups()]
    if any(n > 255 for n in nums):
        raise ValueError("each PORT number is 0 to 255")
    return ".".join(str(n) for n in nums[:4]), nums[4] * 256 + nums[5]


def parse_eprt(arg: str) -> tuple[str, int]:
    """EPRT |1|132.235.1.2|6275| (RFC 2428 §2); ValueError if malformed,
    NotImplementedError for a protocol family other than 1 and 2."""
    if len(arg) < 7:
        raise ValueError("EPRT wants |proto|address|port|")
    delim = arg[0]
    parts = arg.split(delim)
    if not 33 <= ord(delim) <= 126 or len(parts) != 5 or parts[0] or parts[4]:
        raise ValueError("EPRT wants |proto|address|port|")
    family, host, port = parts[1], parts[2], parts[3]
    if family not in ("1", "2"):
        raise NotImplementedError(family)
    address = ipaddress.ip_address(host)  # ValueError for a name
    if (address.version == 4) != (family == "1"):
        raise ValueError(f"address {host} is not of family {family}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port[:8]!r}")
    return str(address), int(port)


def format_pasv(host: str, port: int) -> str:
    return "Entering Passive Mode ({},{},{})".format(host.replace(".", ","), port >> 8, port & 0xFF)


def format_epsv(port: int) -> str:
    return f"Entering Extended Passive Mode (|||{port}|)"


_PASV_REPLY = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_REPLY = re.compile(r"\((.)\1\1(\d{1,5})\1\)")


def parse_pasv_reply(text: str) -> tuple[str, int]:
    """The address in a 227 reply (RFC 959 leaves its form loose: find the six numbers)."""
    match = _PASV_REPLY.search(text)
    if match is None:
        raise ValueError(f"no address in 227 reply {text[:60]!r}")
    nums = [int(x) for x in match.groups()]
    return ".".join(str(n) for n in nums[:4]), nums[4] * 256 + nums[5]


def parse_epsv_reply(text: str) -> int:
    """The port in a 229 reply: ``(|||6446|)`` (RFC 2428 §3)."""
    match = _EPSV_REPLY.search(text)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"no port in 229 reply {text[:60]!r}")
    return int(match.group(2))


# -- TYPE A ------------------------------------------------------------------------------------


class AsciiWriter:
    """Local text to the wire in TYPE A: every line ends in CRLF (RFC 959
    §3.1.1.1).  A lone LF becomes CRLF; a CRLF already there stays."""

    def __init__(self) -> None:
        self._cr = False  # the last byte seen was CR

    def convert(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        out = re.sub(rb"(?<!\r)\n", b"\r\n", chunk)
        if self._cr and chunk[:1] == b"\n":
            out = out[1:]  # that LF followed a CR at the end of the last chunk: it had its CR
        self._cr = chunk[-1:] == b"\r"
        return out


class AsciiReader:
    """The wire to local text in TYPE A: CRLF becomes LF; a CR at the end
    of a chunk waits for the next one."""

    def __init__(self) -> None:
        self._cr = False

    def convert(self, chunk: bytes) -> bytes:
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._cr = True
        return chunk.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        cr, self._cr = self._cr, False
        return b"\r" if cr else b""

