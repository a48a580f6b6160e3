"""The demo lab: a few servers and clients that keep talking, so a
newcomer sees live, decoded traffic at once.

Tests: tests/test_cli.py, tests/test_demo.py
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lab import protocols
from lab.endpoints import BACKGROUND, Client
from lab.errors import LabError
from lab.lab import Lab
from lab.services.mail import MAIL_STORE
from lab.services.news import NEWS_STORE

__all__ = ["DEMO_SERVICES", "DEMO_USERS", "DemoService", "available_services", "put_away", "run_demo",
           "start_demo_servers"]

logger = logging.getLogger(__name__)

DEMO_USERS = ("alice=Alice Liddell", "bob=Bob the Builder")
DEMO_PLANS = ("alice=Follow the white rabbit.",)
PHRASES = ("hello, lab", "ping", "the quick brown fox", "echo... echo...")


@dataclass(frozen=True)
class DemoService:
    """One demo server and what a demo client does with it each round.

    A new protocol joins the demo by adding one entry; entries whose
    protocol this netlab does not have are skipped.
    """

    name: str
    protocol: str
    action: Callable[[Client, int], Awaitable[object]]
    transport: str | None = None
    options: dict[str, object] = field(default_factory=dict)


def _phrase(n: int) -> str:
    return PHRASES[n % len(PHRASES)]


async def _mail(c: Client, n: int) -> None:
    body = f"Subject: demo {n}\r\nFrom: demo@lab.test\r\nTo: alice@lab.test\r\n\r\n{_phrase(n)}\r\n"
    await c.asend_mail("demo@lab.test", "alice@lab.test", body)
    await c.aquit()


async def _pop(c: Client, n: int) -> None:
    # fetch and delete what SMTP delivered, so the demo mailbox stays small
    await c.alogin("alice", "wonderland")
    await c.afetch_all(delete=True)
    await c.aquit()


async def _chat(c: Client, n: int) -> None:
    await c.anick(f"demo{n}")
    await c.ajoin("#lab")
    await c.asay("#lab", _phrase(n))
    await c.aquit("bye")


async def _news(c: Client, n: int) -> None:
    info = await c.agroup("lab.test")
    if n % 3 == 0 or not info.count:
        await c.apost(subject=f"demo {n}", body=_phrase(n))
    else:
        await c.aover()
    await c.aquit()


DEMO_SERVICES: list[DemoService] = [
    DemoService("echo", "echo", lambda c, n: c.aecho(_phrase(n) + "\r\n")),
    DemoService("echo-udp", "echo", lambda c, n: c.aecho(_phrase(n)), transport="udp"),
    DemoService("daytime", "daytime", lambda c, n: c.aget()),
    DemoService("time", "time", lambda c, n: c.aget(), transport="udp"),
    DemoService("qotd", "qotd", lambda c, n: c.aget()),
    DemoService("finger", "finger", lambda c, n: c.aquery("alice", verbose=n % 2 == 0),
                options={"user": list(DEMO_USERS), "plan": list(DEMO_PLANS)}),
    DemoService("smtp", "smtp", _mail),
    DemoService("pop3", "pop3", _pop),
    DemoService("irc", "irc", _chat),
    DemoService("nntp", "nntp", _news),
]


def available_services() -> list[DemoService]:
    """The demo services whose protocol is installed."""
    known = set(protocols.names())
    return [s for s in DEMO_SERVICES if s.protocol in known]


async def start_demo_servers(lab: Lab) -> None:
    """Every available demo server (echo over TCP and UDP, daytime, time,
    qotd, finger, ...) on free ports."""
    for service in available_services():
        kwargs: dict[str, object] = dict(service.options)
        if service.transport:
            kwargs["transport"] = service.transport
        await lab.aserve(service.protocol, name=service.name, **kwargs)


async def _one_round(lab: Lab, n: int) -> None:
    services = [s for s in available_services() if s.name in lab.endpoints]
    if not services:
        return
    service = services[n % len(services)]
    endpoint = lab.endpoints[service.name]
    client = await lab.aconnect(endpoint.protocol, service.name, name=f"demo{n}")
    try:
        await service.action(client, n)
    finally:
        await client.aclose()


async def put_away(lab: Lab) -> list[str]:
    """Stop the demo's endpoints and forget the mail and news they left
    (unless another server shares them), so the lab is as a fresh one for
    what comes next: a lesson run in the console.  The demo's rounds must
    have ended first.  Returns the names stopped."""
    names = [name for name, endpoint in list(lab.endpoints.items()) if endpoint.background]
    for name in names:
        if name in lab.endpoints:
            await lab.astop(name)
    left = {endpoint.protocol for endpoint in lab.endpoints.values()}
    if not left & {"smtp", "pop3"}:
        lab.services.discard(MAIL_STORE)
    if "nntp" not in left:
        lab.services.discard(NEWS_STORE)
    return names


async def run_demo(lab: Lab, stop: asyncio.Event, *, duration: float | None = None,
                   interval: float = 1.0) -> None:
    """Start the demo servers, then run one client exchange per
    ``interval`` until ``stop`` is set or ``duration`` passes."""
    BACKGROUND.set(True)  # this task's endpoints are the demo's, not the user's
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
