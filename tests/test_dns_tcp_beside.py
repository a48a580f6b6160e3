"""A protocol whose UDP servers also listen on TCP on the same port
(``ProtocolSpec.tcp_beside_udp``, for DNS: RFC 7766 §5): one endpoint,
both sockets, one stop for both."""

from __future__ import annotations

import dataclasses
import socket
import struct

import pytest

from lab import Lab
from lab.errors import ConfigError
from lab.eventlog import EventKind
from lab.protocols import dns, echo

SPEC = dataclasses.replace(dns.SPEC, tcp_beside_udp=True)
QUERY = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x03www\x03lab\x04test\x00\x00\x01\x00\x01"


def ask_udp(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(QUERY, ("127.0.0.1", port))
        return s.recv(4096)


def ask_tcp(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!H", len(QUERY)) + QUERY)
        head = s.recv(2, socket.MSG_WAITALL)
        return s.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)


def test_one_udp_server_answers_over_tcp_on_its_port_and_stops_both(lab: Lab) -> None:
    """Port 0: one port free for both is found; each transport answers; stop closes both."""
    srv = lab.serve(SPEC)
    assert srv.transport.value == "udp"
    assert ask_udp(srv.port)[:2] == ask_tcp(srv.port)[:2] == b"\x00\x07"
    listen = next(e for e in lab.log if e.kind is EventKind.LISTEN and e.endpoint == srv.name)
    assert "and tcp on the same port" in (listen.text or "")
    port = srv.port
    lab.stop(srv)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_given_port_taken_over_tcp_is_refused_and_frees_the_udp_one(lab: Lab) -> None:
    """An explicit port whose TCP side is someone else's: a ConfigError, nothing left bound."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen"):
            lab.serve(SPEC, port=port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", port))  # the UDP socket was let go


def test_other_udp_servers_listen_on_udp_only(lab: Lab) -> None:
    """Without the flag nothing changes: an echo UDP server has no TCP listener."""
    assert not echo.SPEC.tcp_beside_udp
    srv = lab.serve("echo", transport="udp")
    assert srv._server is None
