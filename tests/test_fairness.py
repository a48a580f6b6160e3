"""One reactor, shared fairly: floods against one server of a lab are not
felt by the others.

A lab of echo, NNTP, telnet, SMTP and IRC servers runs in a process of its
own (``netlab up``, stderr a pipe nobody reads).  Each line protocol in turn
takes a flood of up to a million short lines; a never-reading client
pipelines 2,000 ARTICLE commands for a 900 KB article.  Meanwhile an echo
client on the same lab keeps timing round trips: every one must be
answered, memory must stay bounded, and SIGTERM must end the process
under load.  The bounds here are generous (a loaded machine); the
figures themselves are what ``bench/fairness.py`` reports.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest
from fairness_kit import (
    FLOODS,
    Flood,
    LabProcess,
    Probe,
    RssSampler,
    lab_process,
    never_reading_article_client,
    post_article,
)
from helpers import wait_until

FLOOD_SECONDS = 6.0
WORST_ROUND_TRIP = 5.0  # seconds; an unfair reactor took ~10 s here
MAX_RSS_MB = 400


@pytest.fixture(scope="module")
def lab() -> Iterator[LabProcess]:
    with lab_process() as running:
        post_article(running.ports["nntp"])
        yield running


def echo_round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"still here\n")
        got = b""
        while len(got) < 11:
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        return got


def check_fair(lab: LabProcess, probe: Probe, rss: RssSampler) -> None:
    stats = probe.summary()
    assert probe.failures == [], probe.failures
    assert stats["count"] >= 3, stats
    assert stats["max_ms"] < WORST_ROUND_TRIP * 1000, stats
    assert rss.peak < MAX_RSS_MB, f"peak RSS {rss.peak:.0f} MB"
    assert lab.popen.poll() is None, "the lab process died"
    assert echo_round_trip(lab.ports["echo"]) == b"still here\n"


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_line_flood_is_not_felt_by_the_echo_server(lab: LabProcess, name: str) -> None:
    """A million short lines (or as many as fit in a few seconds) to one
    server: the echo probe on the same lab is answered all along."""
    server, line, prelude = FLOODS[name]
    with RssSampler(lab) as rss, Probe(lab.ports["echo"]) as probe:
        with Flood(lab.ports[server], line, prelude=prelude, seconds=FLOOD_SECONDS) as flood:
            flood.wait()
        # a server may end a flood early (IRC's "Excess Flood"): watch a little longer then
        wait_until(lambda: len(probe.rtts) >= 3 or probe.failures, timeout=30, what="a few probes")
    assert flood.sent_lines >= 1000 or flood.ended, (flood.sent_lines, flood.ended)
    check_fair(lab, probe, rss)


def test_a_flood_that_reads_nothing_is_held_back(lab: LabProcess) -> None:
    """Lines sent to the NNTP server by a client that never reads: the
    server stops handling them once its replies back up, memory stays
    bounded, and the probe is answered."""
    with RssSampler(lab) as rss, Probe(lab.ports["echo"]) as probe:
        with Flood(lab.ports["nntp"], b"HELP\r\n", read=False, seconds=FLOOD_SECONDS) as flood:
            flood.wait()
    check_fair(lab, probe, rss)


def test_pipelined_articles_to_a_client_that_never_reads(lab: LabProcess) -> None:
    """GROUP and 2,000 ARTICLE commands for a 900 KB article, never read:
    the server sends what the socket takes and then waits, with bounded
    memory, while others are served."""
    with RssSampler(lab) as rss, Probe(lab.ports["echo"]) as probe:
        with never_reading_article_client(lab.ports["nntp"]):
            deadline = time.monotonic() + FLOOD_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.1)
                assert lab.popen.poll() is None
    check_fair(lab, probe, rss)


def test_sigterm_ends_the_process_under_load() -> None:
    """SIGTERM while an NNTP flood and a never-reading ARTICLE client run:
    the process is gone within seconds, with a clean exit."""
    with lab_process() as lab:
        post_article(lab.ports["nntp"])
        with Flood(lab.ports["nntp"], b"DATE\r\n", seconds=60) as flood, \
                never_reading_article_client(lab.ports["nntp"]):
            wait_until(lambda: flood.sent_lines >= 100_000, timeout=60, what="the flood to build up")
            start = time.monotonic()
            os.kill(lab.pid, signal.SIGTERM)
            code = lab.popen.wait(20)
            took = time.monotonic() - start
        assert code == 0
        assert took < 10, f"took {took:.1f} s"
