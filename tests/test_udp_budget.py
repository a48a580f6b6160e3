"""The UDP reply budget: the bucket alone on an injected clock, then real
lab servers flooded with 1-byte datagrams over loopback sockets."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from helpers import wait_until

from lab import Lab
from lab.budget import DEFAULT_LIMITS, MAX_REPORTS, BudgetLimits, ReplyBudget, parse_limits
from lab.eventlog import EventFilter, EventKind


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def budget(**limits: float) -> tuple[ReplyBudget, Clock, list[str]]:
    clock, said = Clock(), []
    return ReplyBudget(BudgetLimits(**limits), clock, said.append), clock, said  # type: ignore[arg-type]


def ask(b: ReplyBudget, host: str, reply: int, size: int = 1) -> bool:
    """One request of ``size`` bytes, answered with ``reply`` bytes if admitted."""
    if b.admit(host, size):
        b.spend(host, reply)
        return True
    return False


# -- the bucket ------------------------------------------------------------------------


def test_a_flood_gets_the_burst_then_the_ratio_of_what_it_sends() -> None:
    """On a stopped clock: 1-byte requests answered with 512 bytes get the burst, then
    ratio x what they send (plus one reply of debt), never more."""
    b, _, _ = budget(rate=4096, burst=16384, ratio=2)
    answered = sum(ask(b, "10.0.0.1", 512) for _ in range(10_000))
    assert b.sent == answered * 512 <= 16384 + 2 * 10_000 + 512
    assert b.unanswered == 10_000 - answered > 9_900


def test_the_bucket_refills_with_time_and_a_person_is_never_limited() -> None:
    """Four chargen-sized answers a second for a minute: all answered."""
    b, clock, said = budget()
    for _ in range(240):
        assert ask(b, "10.0.0.1", 512)
        clock.now += 0.25
    assert said == []


def test_echo_is_never_limited() -> None:
    """Replies as large as requests (echo) never run the bucket dry while ratio >= 1."""
    b, _, _ = budget()
    assert all(ask(b, "10.0.0.1", 60_000, size=60_000) for _ in range(1_000))


def test_one_source_does_not_starve_another() -> None:
    """A source flooding its bucket dry leaves another's untouched."""
    b, _, _ = budget()
    while ask(b, "10.0.0.1", 512):
        pass
    assert not ask(b, "10.0.0.1", 512)
    assert ask(b, "10.0.0.2", 512)


def test_reports_first_then_a_count_each_second_then_the_end() -> None:
    """The first unanswered datagram is reported, then one count per second whatever
    the flood, then 'within its budget again' after a quiet second."""
    b, clock, said = budget(rate=1000, burst=1000, ratio=0)
    assert ask(b, "10.0.0.1", 2000)
    for _ in range(300):  # three seconds of 100 datagrams a second
        ask(b, "10.0.0.1", 2000)
        clock.now += 0.01
    assert "udp reply budget bites: 10.0.0.1" in said[0]
    counts = [s for s in said if "unanswered in the last" in s]
    assert 2 <= len(counts) <= 3 and len(said) == 1 + len(counts)
    # the flood stops: the bucket refills, the next request is answered, and the end is said
    clock.now += 2.0
    assert ask(b, "10.0.0.1", 10)
    assert "10.0.0.1 is within its budget again" in said[-1]


def test_reports_are_capped_across_sources() -> None:
    """Hundreds of sources biting at once make at most MAX_REPORTS lines, and the next
    line says how many were skipped."""
    b, clock, said = budget(rate=1, burst=1, ratio=0)
    for n in range(300):
        host = f"10.0.{n // 250}.{n % 250}"
        ask(b, host, 100)
        ask(b, host, 100)
    assert len(said) == MAX_REPORTS
    clock.now += 1.0
    ask(b, "10.0.0.0", 100)
    ask(b, "10.0.0.0", 100)
    assert "more budget reports skipped" in said[-1]


def test_memory_is_bounded_and_refilled_sources_are_forgotten() -> None:
    """At most max_sources are tracked (the rest share one bucket); a source whose
    bucket refilled is forgotten by sweep()."""
    b, clock, _ = budget(max_sources=8)
    for n in range(100):
        ask(b, f"10.0.1.{n}", 512)
    assert len(b) <= 8
    assert ReplyBudget.OTHERS in b._sources
    clock.now += DEFAULT_LIMITS.burst / DEFAULT_LIMITS.rate + 1
    b.sweep()
    assert len(b) == 0


def test_parse_limits() -> None:
    """RATE[/BURST[/RATIO]] with K and M."""
    assert parse_limits("4K/16K/2") == BudgetLimits(rate=4096, burst=16384, ratio=2.0)
    assert parse_limits("1M") == BudgetLimits(rate=1 << 20, burst=1 << 20)
    assert parse_limits("100/200/0.5") == BudgetLimits(rate=100, burst=200, ratio=0.5)
    for bad in ("", "fast", "0/1", "4K/0", "-1"):
        with pytest.raises(ValueError, match=r"RATE|above 0"):
            parse_limits(bad)


# -- real servers -----------------------------------------------------------------------------

FLOOD = 4000


def udp(host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(10)
    return s


def answered(s: socket.socket, port: int, timeout: float = 0.5) -> bool:
    """Send one 1-byte request from ``s``; is it answered within ``timeout``?"""
    s.settimeout(timeout)
    s.sendto(b"x", ("127.0.0.1", port))
    try:
        s.recv(65536)
        return True
    except TimeoutError:
        return False
    finally:
        s.settimeout(10)


@pytest.mark.parametrize("proto", ["chargen", "qotd", "daytime", "time"])
def test_a_flood_of_one_byte_datagrams_is_no_amplifier(lab: Lab, proto: str) -> None:
    """4000 1-byte datagrams from 127.0.0.1: bytes out stay within the budget's bound
    (a small multiple of bytes in), an event says the budget bit, 127.0.0.2 is still
    answered, and 127.0.0.1 is answered again once its bucket refills."""
    srv = lab.serve(proto, transport="udp")
    b = srv.reply_budget
    assert b is not None
    start = time.monotonic()
    with udp() as flood, udp("127.0.0.2") as other:
        for sent in range(1, FLOOD + 1):
            flood.sendto(b"x", ("127.0.0.1", srv.port))
            if sent % 100 == 0:  # paced, so the kernel's socket buffer drops none of it
                wait_until(lambda n=sent: b.received >= n, timeout=20, what="the flood to arrive")
        # the server reads its one socket in order: this answer comes after the whole flood
        other.sendto(b"x", ("127.0.0.1", srv.port))
        assert other.recv(65536) is not None
        elapsed = time.monotonic() - start
        # replies to 127.0.0.2 are counted too: one request's worth
        got_in, got_out = b.received - 1, srv.status()["bytes_out"]
        limits = b.limits
        bound = (limits.burst + limits.rate * elapsed + limits.ratio * got_in + 2 * 512) / got_in
        assert got_out / got_in <= bound, (got_out, got_in, elapsed)
        assert got_out / got_in < 20  # it was 258x (chargen) and 107x (qotd) before the budget
        if proto != "time":  # 4-byte answers stay within twice what the flood sends
            assert b.unanswered > FLOOD / 2 and got_in == FLOOD
            bit = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.INFO})))
                   if "udp reply budget bites: 127.0.0.1" in e.summary]
            assert len(bit) == 1
        with udp() as again:  # the same address, another port: the same bucket
            wait_until(lambda: answered(again, srv.port), timeout=30, what="127.0.0.1 to be answered again")


def test_the_reply_budget_is_a_serve_option_and_a_lab_file_key(tmp_path: Path) -> None:
    """`serve --reply-budget RATE/BURST/RATIO` (or off) sets a UDP server's budget; a TCP server refuses
    one; a lab file takes the same words, checked at load."""
    from lab.commands import Interpreter
    from lab.errors import ConfigError, LabError, ScenarioError
    from lab.scenarios import load_text

    with Lab.start() as lab:
        Interpreter(lab).execute("serve qotd --udp --reply-budget 1K/2K/1 as q; serve qotd --udp"
                                 " --reply-budget off as free; serve qotd --udp as plain", 30)
        q, free, plain = lab["q"], lab["free"], lab["plain"]
        assert q.reply_budget is not None and q.reply_budget.limits == BudgetLimits(rate=1024, burst=2048, ratio=1)
        assert free.reply_budget is None
        assert plain.reply_budget is not None and plain.reply_budget.limits == DEFAULT_LIMITS
        with pytest.raises(LabError, match="for UDP servers"):
            Interpreter(lab).execute("serve qotd --reply-budget 1K as t", 30)
        with pytest.raises(ConfigError, match="RATE"):
            lab.serve("qotd", transport="udp", reply_budget="lots")
    (scenario,) = load_text("lab:\n  q: {protocol: qotd, transport: udp, reply_budget: 1K/2K}\n"
                            "steps:\n  - wait: 0\n", str(tmp_path / "b.yaml"))
    assert scenario.servers[0].reply_budget == "1K/2K"
    with pytest.raises(ScenarioError, match=r"b\.yaml:2:37: lab server 'q': a reply budget is for UDP servers"):
        load_text("lab:\n  q: {protocol: qotd, reply_budget: 1K}\nsteps:\n  - wait: 0\n", str(tmp_path / "b.yaml"))
