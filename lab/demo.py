"""The demo lab: a few servers and clients that keep talking, so a
newcomer sees live, decoded traffic at once.

Tests: tests/test_cli.py
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from lab.errors import LabError
from lab.lab import Lab

__all__ = ["DEMO_USERS", "run_demo", "start_demo_servers"]

logger = logging.getLogger(__name__)

DEMO_USERS = ("alice=Alice Liddell", "bob=Bob the Builder")
DEMO_PLANS = ("alice=Follow the white rabbit.",)
PHRASES = ("hello, lab", "ping", "the quick brown fox", "echo... echo...")


async def start_demo_servers(lab: Lab) -> None:
    """echo (TCP and UDP), daytime, time, qotd and finger on free ports."""
    await lab.aserve("echo", name="echo")
    await lab.aserve("echo", name="echo-udp", transport="udp")
    await lab.aserve("daytime", name="daytime")
    await lab.aserve("time", name="time", transport="udp")
    await lab.aserve("qotd", name="qotd")
    await lab.aserve("finger", name="finger", user=list(DEMO_USERS), plan=list(DEMO_PLANS))


async def _one_round(lab: Lab, n: int) -> None:
    phrase = PHRASES[n % len(PHRASES)]
    steps = (
        ("echo", lambda c: c.aecho(phrase + "\r\n")),
        ("echo-udp", lambda c: c.aecho(phrase)),
        ("daytime", lambda c: c.aget()),
        ("time", lambda c: c.aget()),
        ("qotd", lambda c: c.aget()),
        ("finger", lambda c: c.aquery("alice", verbose=n % 2 == 0)),
    )
    server, action = steps[n % len(steps)]
    endpoint = lab.endpoints.get(server)
    if endpoint is None:
        return
    client = await lab.aconnect(endpoint.protocol, server, name=f"demo{n}")
    try:
        await action(client)
    finally:
        await client.aclose()


async def run_demo(lab: Lab, stop: asyncio.Event, *, duration: float | None = None,
                   interval: float = 1.0) -> None:
    """Start the demo servers, then run one client exchange per
    ``interval`` until ``stop`` is set or ``duration`` passes."""
    await start_demo_servers(lab)
    loop = asyncio.get_running_loop()
    end = None if duration is None else loop.time() + duration
    for n in itertools.count():
        try:
            await _one_round(lab, n)
        except LabError as exc:
            logger.info("demo round %d failed: %s", n, exc)
        wait = interval if end is None else min(interval, max(0.0, end - loop.time()))
        try:
            await asyncio.wait_for(stop.wait(), wait)
            return
        except TimeoutError:
            if end is not None and loop.time() >= end:
                return
