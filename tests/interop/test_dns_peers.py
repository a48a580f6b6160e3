"""Interop: DNS against peers nobody here wrote.

dig, kdig, drill and dnspython ask our server (UDP, TCP, AXFR, EDNS
sizes, a truncated answer and the retry over TCP, a zone edit seen on
the next query); our client asks dnsmasq and Twisted names; dig asks
dnsmasq through a netlab proxy, over UDP and over TCP.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from helpers import Proc, require, wait_for_port, wait_until

from lab import Lab
from lab.endpoints import Server
from lab.eventlog import EventKind

pytestmark = pytest.mark.interop


def run(args: list[str], timeout: float = 30) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return done.stdout + done.stderr


def dig(port: int, *args: str) -> str:
    return run([require("dig"), "@127.0.0.1", "-p", str(port), "+time=3", "+tries=2", *args])


def dual_port() -> int:
    """A port free for UDP and TCP alike right now (other tests share the machine)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both UDP and TCP")


@pytest.fixture
def both(lab: Lab) -> Server:
    """The demo zone over UDP and TCP on one port."""
    return lab.serve("dns")


# -- foreign clients, our server ---------------------------------------------------------


def test_dig_over_udp_and_tcp(both: Server) -> None:
    """An authoritative answer (aa, no ra) over either transport; NXDOMAIN with the SOA."""
    for extra in ((), ("+tcp",)):
        out = dig(both.port, "www.lab.test", "A", *extra)
        assert "status: NOERROR" in out and "flags: qr aa rd;" in out
        assert "www.lab.test.\t\t300\tIN\tA\t127.0.0.2" in out
    out = dig(both.port, "nope.lab.test")
    assert "status: NXDOMAIN" in out and "AUTHORITY: 1" in out and "SOA" in out
    assert "status: REFUSED" in dig(both.port, "example.com")
    short = dig(both.port, "+short", "alias.lab.test")
    assert short.split() == ["ftp.lab.test.", "www.lab.test.", "127.0.0.2"]


def test_dig_axfr_and_its_refusal_over_udp(both: Server) -> None:
    """AXFR over TCP gives the zone between two SOAs; the same question over UDP is refused."""
    out = dig(both.port, "lab.test", "AXFR")
    records = [line for line in out.splitlines() if line and not line.startswith(";")]
    assert records[0].split()[3] == records[-1].split()[3] == "SOA"
    assert any("*.dyn.lab.test." in line for line in records)
    assert "XFR size: 24 records" in out
    axfr = dns.message.make_query("lab.test", "AXFR")  # dig always transfers over TCP: dnspython asks over UDP
    assert dns.query.udp(axfr, "127.0.0.1", port=both.port, timeout=5).rcode() == dns.rcode.REFUSED


def test_dig_bufsize_and_the_tc_then_tcp_retry(both: Server) -> None:
    """+bufsize is clamped to our 1232; an answer too big for 512 comes truncated, and dig retries over TCP."""
    out = dig(both.port, "+bufsize=4096", "www.lab.test")
    assert "udp: 1232" in out
    truncated = dig(both.port, "+noedns", "+ignore", "big.lab.test", "TXT")
    assert "flags: qr aa tc rd;" in truncated
    retried = dig(both.port, "+noedns", "big.lab.test", "TXT")
    assert "Truncated, retrying in TCP mode" in retried and "ANSWER: 8" in retried
    kinds = [(e.endpoint, e.summary) for e in both.lab.log if e.kind is EventKind.MESSAGE]
    assert any("[truncated]" in s for _, s in kinds)


def test_a_zone_edit_is_seen_by_dig_on_the_next_query(both: Server) -> None:
    """srv.zone.add, then dig: the new record, and the SOA serial one up."""
    assert "NXDOMAIN" in dig(both.port, "fresh.lab.test")
    both.zone.add("fresh", "A", "127.0.0.66")  # type: ignore[attr-defined]
    assert dig(both.port, "+short", "fresh.lab.test").split() == ["127.0.0.66"]
    serial = dig(both.port, "+short", "lab.test", "SOA").split()[2]
    assert serial == "2"


def test_kdig_and_drill(both: Server) -> None:
    """Two more resolvers' stub tools: kdig (UDP and TCP), drill."""
    kdig = require("kdig")
    out = run([kdig, "@127.0.0.1", "-p", str(both.port), "mail.lab.test", "A"])
    assert "NOERROR" in out and "127.0.0.3" in out
    out = run([kdig, "@127.0.0.1", "-p", str(both.port), "+tcp", "_http._tcp.lab.test", "SRV"])
    assert "0 5 80 www.lab.test." in out
    out = run([require("drill"), "-p", str(both.port), "x.dyn.lab.test", "@127.0.0.1", "TXT"])
    assert "rcode: NOERROR" in out and "made up for any name" in out
    out = run([require("drill"), "-p", str(both.port), "nope.lab.test", "@127.0.0.1"])
    assert "NXDOMAIN" in out


def test_dnspython_resolver_and_query_functions(both: Server) -> None:
    """dnspython's Resolver (NoAnswer, NXDOMAIN) and dns.query.udp/tcp/xfr."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = both.port
    assert [r.to_text() for r in resolver.resolve("www.lab.test", "AAAA")] == ["::1"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nope.lab.test")
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("www.lab.test", "MX")
    query = dns.message.make_query("lab.test", "MX")
    reply = dns.query.udp(query, "127.0.0.1", port=both.port, timeout=5)
    assert reply.answer[0][0].exchange.to_text() == "mail.lab.test."
    big = dns.message.make_query("big.lab.test", "TXT", use_edns=False)
    assert len(dns.query.tcp(big, "127.0.0.1", port=both.port, timeout=5).answer[0]) == 8
    records = [r for msg in dns.query.xfr("127.0.0.1", "lab.test", port=both.port, timeout=5) for r in msg.answer]
    assert records[0].rdtype == records[-1].rdtype == 6  # SOA


# -- our client, foreign servers ------------------------------------------------------------


def answers(port: int) -> bool:
    try:
        dns.query.udp(dns.message.make_query("probe.x.test", "A"), "127.0.0.1", port=port, timeout=0.5)
        return True
    except Exception:
        return False


@pytest.fixture
def dnsmasq() -> Iterator[int]:
    port = dual_port()
    args = [require("dnsmasq"), "-d", "-k", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "-p", str(port),
            "--listen-address=127.0.0.1", "--bind-interfaces", "--user=root", "--address=/x.test/127.0.0.9",
            "--txt-record=t.x.test,hello from dnsmasq", "--cname=c.x.test,a.x.test"]
    with Proc(args) as proc:
        wait_until(lambda: answers(port), 15, "dnsmasq to answer")
        wait_for_port(port)
        yield port
        proc.stop(15)


@pytest.fixture
def twisted_names(tmp_path: Path) -> Iterator[int]:
    zone = tmp_path / "tw.zone"
    zone.write_text("$ORIGIN tw.test.\n$TTL 60\n@ IN SOA ns.tw.test. root.tw.test. 5 3600 600 86400 60\n"
                    "@ IN NS ns.tw.test.\nns IN A 127.0.0.1\nhost IN A 127.0.0.21\n"
                    "host IN AAAA ::1\n@ IN MX 10 host.tw.test.\n")
    port = dual_port()
    args = [require("twistd"), "-n", "--pidfile=", "dns", "-i", "127.0.0.1", "-p", str(port), "--bindzone", str(zone)]
    with Proc(args, cwd=str(tmp_path)) as proc:
        wait_for_port(port, timeout=30)
        yield port
        proc.stop(15)


def test_our_client_against_dnsmasq(lab: Lab, dnsmasq: int) -> None:
    """UDP and TCP queries to dnsmasq: addresses, TXT, a CNAME, NXDOMAIN for what it does not know."""
    c = lab.connect("dns", f"127.0.0.1:{dnsmasq}")
    answer = c.query("a.x.test")
    assert answer.rcode == "NOERROR" and answer.values("A") == ["127.0.0.9"]
    assert c.query("t.x.test", "TXT").values() == ['"hello from dnsmasq"']
    assert c.query("a.x.test", tcp=True).values() == ["127.0.0.9"]
    refused = c.query("a.x.test", "MX")  # no upstream to ask: dnsmasq refuses
    assert refused.rcode == "REFUSED" and refused.matches("REFUSED") and "ra" in refused.flags
    # dnsmasq -d serves a TCP connection to its end before anything else: the last exchange
    t = lab.connect("dns", f"127.0.0.1:{dnsmasq}", transport="tcp")
    assert t.query("deep.a.x.test").values() == ["127.0.0.9"]
    t.close()


def test_our_client_against_twisted_names(lab: Lab, twisted_names: int) -> None:
    """Twisted names from a BIND zone file: A, AAAA, MX, NXDOMAIN, over UDP and TCP."""
    c = lab.connect("dns", f"127.0.0.1:{twisted_names}")
    assert c.query("host.tw.test").values() == ["127.0.0.21"]
    assert c.query("host.tw.test", "AAAA").values() == ["::1"]
    assert c.query("tw.test", "MX").values() == ["10 host.tw.test."]
    assert c.query("missing.tw.test").rcode == "NXDOMAIN"
    assert c.query("host.tw.test", tcp=True).values() == ["127.0.0.21"]


# -- through the proxy ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_through_the_netlab_proxy_to_dnsmasq(lab: Lab, dnsmasq: int, transport: str) -> None:
    """dig -> netlab proxy -> dnsmasq: the answer arrives, the proxy's log shows both messages decoded."""
    px = lab.proxy("dns", to=f"127.0.0.1:{dnsmasq}", transport=transport)
    out = dig(px.port, *(("+tcp",) if transport == "tcp" else ()), "p.x.test")
    assert "status: NOERROR" in out and "127.0.0.9" in out
    summaries = [e.summary for e in lab.log if e.endpoint == px.name and e.kind is EventKind.MESSAGE]
    assert "query A p.x.test" in summaries
    assert "answer NOERROR p.x.test A 127.0.0.9" in summaries
