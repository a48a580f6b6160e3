"""Every wire protocol over real loopback sockets, TCP and UDP, server and client both ours."""

from __future__ import annotations

import datetime as dt

import pytest

from lab import Lab
from lab.eventlog import EventFilter, EventKind


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_echo(lab: Lab, transport: str) -> None:
    """Echo returns exactly what was sent."""
    c = lab.connect("echo", lab.serve("echo", transport=transport))
    assert c.echo(b"\x00binary\xff\r\n") == b"\x00binary\xff\r\n"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_discard(lab: Lab, transport: str) -> None:
    """Discard swallows what it gets, and the server's log shows it arrived."""
    srv = lab.serve("discard", transport=transport)
    c = lab.connect("discard", srv)
    assert c.discard(b"into the void") == 13
    lab.connect("echo", lab.serve("echo")).echo("sync")  # a round trip so the datagram has landed
    got = [e.raw for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE})))]
    assert b"".join(r or b"" for r in got) == b"into the void"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_chargen(lab: Lab, transport: str) -> None:
    """Chargen lines are the rotating 72-character pattern."""
    c = lab.connect("chargen", lab.serve("chargen", transport=transport))
    lines = c.read(2)
    assert len(lines) == 2
    if transport == "tcp":
        assert lines[1][:-1] == lines[0][1:]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_daytime(lab: Lab, transport: str) -> None:
    """Daytime answers with a date line (UDP: the request is an empty datagram)."""
    text = lab.connect("daytime", lab.serve("daytime", transport=transport)).get()
    assert str(dt.datetime.now().year) in text


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_time(lab: Lab, transport: str) -> None:
    """Time (RFC 868) gives now; --offset skews it."""
    now = dt.datetime.now(dt.UTC)
    got = lab.connect("time", lab.serve("time", transport=transport)).get()
    assert abs((got - now).total_seconds()) < 60
    skewed = lab.connect("time", lab.serve("time", transport=transport, offset=3600)).get()
    assert 3500 < (skewed - now).total_seconds() < 3700


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_qotd(lab: Lab, transport: str) -> None:
    """QOTD sends the configured quote."""
    srv = lab.serve("qotd", transport=transport, quote=["Rough consensus and running code."])
    assert "Rough consensus" in lab.connect("qotd", srv).get()


def test_finger(lab: Lab) -> None:
    """Finger answers a user, /W adds the plan, forwarding is refused."""
    srv = lab.serve("finger", user=["alice=Alice Liddell"], plan=["alice=Tea at six."])
    assert "Alice Liddell" in lab.connect("finger", srv).query("alice")
    assert "Tea at six." in lab.connect("finger", srv).query("alice", verbose=True)
    assert "forwarding" in lab.connect("finger", srv).query("alice", hosts=["elsewhere"]).lower()
