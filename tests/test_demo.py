"""The demo lab: every service's client round runs cleanly.

Code: lab/demo.py
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from lab import Lab
from lab.demo import available_services, run_demo
from lab.eventlog import EventFilter, EventKind


def test_every_demo_round_talks_without_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Two rounds of every demo service (mail sent then fetched, a channel
    message, a post...): each protocol shows decoded messages and the log
    holds no error event."""
    services = available_services()
    assert {"echo", "finger", "smtp", "pop3", "irc", "nntp"} <= {s.protocol for s in services}
    caplog.set_level(logging.INFO, logger="lab.demo")
    lab = Lab()

    async def main() -> None:
        stop = asyncio.Event()
        demo = asyncio.ensure_future(run_demo(lab, stop, interval=0.01))
        # a client endpoint per round: stop after two full cycles, or give up
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while loop.time() < deadline:
            rounds = sum(1 for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.CLOSE})))
                         if e.endpoint.startswith("demo"))
            if rounds >= 2 * len(services):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await demo

    with lab:
        lab.reactor.run(main())
        errors = [e.text for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.ERROR})))]
        talked = {e.protocol for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.MESSAGE})))}
    assert errors == []
    assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []
    assert {s.protocol for s in services} <= talked
