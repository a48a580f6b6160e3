"""A UDP server reads each datagram into a 64 KiB buffer, not asyncio's
256 KiB (for which the allocator mapped and unmapped memory on every
datagram: three system calls more per DNS query), and still takes the
largest datagram whole."""

from __future__ import annotations

import socket

from lab import Lab
from lab.endpoints import UDP_READ_SIZE


def test_the_largest_datagram_still_arrives_whole(lab: Lab) -> None:
    """65,507 bytes (the most IPv4 UDP carries) echoed byte for byte; the read size is 64 KiB."""
    srv = lab.serve("echo", transport="udp", reply_budget="off")
    assert srv._udp is not None and getattr(srv._udp, "max_size", None) == UDP_READ_SIZE == 65536
    payload = bytes(range(256)) * 255 + b"x" * 227
    assert len(payload) == 65507
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.sendto(payload, ("127.0.0.1", srv.port))
        assert s.recv(70000) == payload
