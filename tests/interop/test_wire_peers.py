"""Interop: the wire protocols against peers nobody here wrote.

Our servers answer `nc`, `socat`, `rdate` and the Debian `finger` client;
our clients talk to inetd's built-in services and to socat.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from helpers import Proc, require, wait_until

from lab import Lab, LabTimeout
from lab.eventlog import EventFilter, EventKind

pytestmark = pytest.mark.interop

CHARGEN_FIRST = "".join(chr(c) for c in range(0x20, 0x20 + 72))


def run(args: list[str], stdin: bytes = b"", timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)


def messages_in(lab: Lab, endpoint: str) -> list[bytes]:
    return [e.raw or b"" for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.MESSAGE})))
            if e.endpoint == endpoint and e.direction.value == "in"]


# -- our servers, foreign clients ------------------------------------------------


def test_nc_against_our_echo_tcp(lab: Lab) -> None:
    """OpenBSD nc sends a line and gets it back; the log shows it decoded."""
    srv = lab.serve("echo")
    nc = require("nc")
    with Proc([nc, "127.0.0.1", str(srv.port)]) as proc:
        assert proc.popen.stdin is not None
        proc.popen.stdin.write("hello from nc\n")
        proc.popen.stdin.flush()
        proc.wait_for(r"^hello from nc$")
    assert b"hello from nc\n" in b"".join(messages_in(lab, srv.name))


def test_socat_against_our_echo_udp(lab: Lab) -> None:
    """socat sends one datagram and prints the echoed datagram."""
    srv = lab.serve("echo", transport="udp")
    out = run([require("socat"), "-t", "2", "-", f"UDP:127.0.0.1:{srv.port}"], b"datagram\n")
    assert out.stdout == b"datagram\n"


def test_nc_against_our_discard(lab: Lab) -> None:
    """Everything nc sends is swallowed and counted; nothing comes back."""
    srv = lab.serve("discard")
    out = run([require("nc"), "-N", "127.0.0.1", str(srv.port)], b"x" * 5000)
    assert out.stdout == b""
    wait_until(lambda: sum(len(m) for m in messages_in(lab, srv.name)) == 5000, what="5000 bytes discarded")


def test_socat_udp_against_our_discard(lab: Lab) -> None:
    """A UDP datagram to discard is logged and not answered."""
    srv = lab.serve("discard", transport="udp")
    run([require("socat"), "-t", "0.5", "-", f"UDP:127.0.0.1:{srv.port}"], b"gone\n")
    wait_until(lambda: b"gone\n" in messages_in(lab, srv.name), what="the datagram in the log")


def test_nc_against_our_chargen(lab: Lab) -> None:
    """nc reads the RFC 864 pattern: 72-char lines, each shifted by one."""
    srv = lab.serve("chargen")
    with Proc([require("nc"), "-d", "127.0.0.1", str(srv.port)]) as proc:
        first = proc.wait_for(r".")
        second = proc.wait_for(r".")
    assert first == CHARGEN_FIRST
    assert second == CHARGEN_FIRST[1:] + chr(0x20 + 72)


def test_socat_udp_against_our_chargen(lab: Lab) -> None:
    """Each datagram to UDP chargen is answered by one datagram of the pattern."""
    srv = lab.serve("chargen", transport="udp")
    out = run([require("socat"), "-t", "2", "-", f"UDP:127.0.0.1:{srv.port}"], b"\n")
    assert len(out.stdout) <= 512
    assert out.stdout == (CHARGEN_FIRST + "\r\n").encode()[: len(out.stdout)] or out.stdout.startswith(b" !\"#")


def test_socat_against_our_daytime_tcp_and_udp(lab: Lab) -> None:
    """Daytime answers a TCP connection and a UDP datagram with today's date."""
    year = str(dt.datetime.now().year)
    srv = lab.serve("daytime")
    out = run([require("socat"), "-u", f"TCP:127.0.0.1:{srv.port}", "-"])
    assert out.returncode == 0 and year in out.stdout.decode() and out.stdout.endswith(b"\r\n")
    udp = lab.serve("daytime", transport="udp")
    out = run([require("socat"), "-t", "2", "-", f"UDP:127.0.0.1:{udp.port}"], b"\n")
    assert year in out.stdout.decode()


def test_socat_against_our_qotd_tcp_and_udp(lab: Lab) -> None:
    """QOTD sends the configured quote over TCP (then closes) and UDP."""
    quote = "Be conservative in what you send."
    srv = lab.serve("qotd", quote=[quote])
    out = run([require("socat"), "-u", f"TCP:127.0.0.1:{srv.port}", "-"])
    assert quote in out.stdout.decode()
    udp = lab.serve("qotd", quote=[quote], transport="udp")
    out = run([require("socat"), "-t", "2", "-", f"UDP:127.0.0.1:{udp.port}"], b"\n")
    assert quote in out.stdout.decode()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rdate_against_our_time(lab: Lab, transport: str) -> None:
    """rdate (RFC 868) reads our clock over TCP and UDP; a skewed clock shows."""
    srv = lab.serve("time", transport=transport, offset=86400 * 365)
    args = [require("rdate"), "-p", "-o", str(srv.port)] + (["-u"] if transport == "udp" else []) + ["127.0.0.1"]
    out = run(args)
    assert out.returncode == 0, out.stderr
    next_year = str(dt.datetime.now(dt.UTC).year + 1)
    assert next_year in out.stdout.decode(), out.stdout


def test_debian_finger_client_against_our_server(lab: Lab, finger_host: str) -> None:
    """`finger alice@HOST` gets the name; `finger -l` (which sends /W) adds office and plan."""
    srv = lab.serve("finger", host=finger_host, port=79,
                    user=["alice=Alice Liddell, on plan 9"], plan=["alice=Down the rabbit hole."])
    finger = require("finger")
    short = run([finger, f"alice@{finger_host}"])
    assert "Name: Alice Liddell" in short.stdout.decode(), short
    long = run([finger, "-l", f"alice@{finger_host}"]).stdout.decode()
    assert "on plan 9" in long and "Down the rabbit hole." in long
    queries = [e.message for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE})))
               if e.direction.value == "in"]
    assert [q.verbose for q in queries] == [False, True]
    refused = run([finger, f"alice@elsewhere@{finger_host}"])
    assert "forwarding" in refused.stdout.decode().lower()


# -- foreign servers, our clients -------------------------------------------------

def test_our_echo_client_against_inetd(lab: Lab, inetd: str) -> None:
    """Our echo verb gets its bytes back from inetd's echo."""
    c = lab.connect("echo", f"{inetd}:7")
    assert c.echo("round trip\r\n") == b"round trip\r\n"


def test_our_discard_client_against_inetd(lab: Lab, inetd: str) -> None:
    """Our discard client sends; inetd swallows; the connection stays quiet."""
    c = lab.connect("discard", f"{inetd}:9")
    c.discard(b"into the void")
    assert c.conn.bytes_out == len(b"into the void") and c.conn.bytes_in == 0


def test_our_chargen_client_against_inetd(lab: Lab, inetd: str) -> None:
    """Our chargen client decodes inetd's pattern lines."""
    c = lab.connect("chargen", f"{inetd}:19")
    lines = c.read(3)
    assert len(lines) == 3 and all(len(line) == 72 for line in lines)
    assert lines[1][:-1] == lines[0][1:]


def test_our_daytime_client_against_inetd(lab: Lab, inetd: str) -> None:
    """Our daytime client reads inetd's date line."""
    text = lab.connect("daytime", f"{inetd}:13").get()
    assert str(dt.datetime.now().year) in text


def test_our_time_client_against_inetd(lab: Lab, inetd: str) -> None:
    """Our time client decodes inetd's RFC 868 seconds to now, within a minute."""
    when = lab.connect("time", f"{inetd}:37").get()
    assert abs((when - dt.datetime.now(dt.UTC)).total_seconds()) < 60


def test_our_udp_echo_client_against_socat(lab: Lab, socat_udp_echo: int) -> None:
    """Our UDP echo client gets its datagram back from socat."""
    c = lab.connect("echo", f"127.0.0.1:{socat_udp_echo}", transport="udp")
    for _ in range(50):  # socat may not be bound yet: retry, bounded
        try:
            assert c.echo(b"udp round trip", timeout=0.5) == b"udp round trip"
            break
        except LabTimeout:
            continue
    else:
        pytest.fail("socat never echoed the datagram")
    assert re.search(r"udp", c.address)
