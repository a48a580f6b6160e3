"""Tests for lab/protocols/_verbs.py: request, Deadline, read_until_closed."""

from __future__ import annotations

import asyncio

import pytest
from protocol_fakes import Loopback, Runner

from lab.errors import ConnectionClosed, LabTimeout, RemoteProtocolError
from lab.protocols import discard, echo
from lab.protocols._base import Transport
from lab.protocols._framing import Line
from lab.protocols._verbs import Deadline, read_until_closed, request


def test_request_sends_an_empty_datagram_over_udp(loopback: type[Loopback], arun: Runner) -> None:
    """On UDP, request() is one empty datagram, which the server sees."""

    async def main() -> list[bytes]:
        lb = loopback(echo.SPEC, Transport.UDP)
        await request(lb)
        return [m.raw for m in lb.inbox]

    assert arun(main()) == [b""]


def test_request_writes_nothing_over_tcp(loopback: type[Loopback], arun: Runner) -> None:
    """On TCP, request() reaches no server: nothing is echoed."""

    async def main() -> int:
        lb = loopback(echo.SPEC)
        await request(lb)
        return len(lb.inbox)

    assert arun(main()) == 0


def test_request_ignores_a_closed_channel(loopback: type[Loopback], arun: Runner) -> None:
    """A TCP server that already spoke and closed is not an error."""

    async def main() -> None:
        lb = loopback(discard.SPEC)
        await lb.close()
        await request(lb)

    arun(main())


def test_deadline_counts_down(arun: Runner) -> None:
    """left() shrinks and never goes below zero; None means no limit."""

    async def main() -> tuple[float | None, float | None, float | None]:
        short = Deadline(0.01)
        first = short.left()
        await asyncio.sleep(0.02)
        return first, short.left(), Deadline(None).left()

    first, later, unlimited = arun(main())
    assert first is not None and 0 < first <= 0.01
    assert later == 0.0
    assert unlimited is None


def test_deadline_receive_names_what_was_awaited(loopback: type[Loopback], arun: Runner) -> None:
    """A timeout says what did not arrive."""

    async def main() -> None:
        lb = loopback(discard.SPEC)
        await Deadline(0.01).receive(lb, "the answer")

    with pytest.raises(LabTimeout, match=r"the answer did not arrive within 0\.01 s"):
        arun(main())


def test_read_until_closed_collects_everything(loopback: type[Loopback], arun: Runner) -> None:
    """Messages queued before the close are all returned."""

    async def main() -> list[bytes]:
        lb = loopback(discard.SPEC)
        lb.peer.send(Line.of("one"))
        lb.peer.send(Line.of("two"))
        lb.peer.close()
        msgs = await read_until_closed(lb, Deadline(1.0), limit=100, what="reply")
        return [m.raw for m in msgs]

    assert arun(main()) == [b"one\r\n", b"two\r\n"]


def test_read_until_closed_times_out_if_never_closed(loopback: type[Loopback], arun: Runner) -> None:
    """A server that keeps the connection open makes it time out."""

    async def main() -> None:
        lb = loopback(discard.SPEC)
        await read_until_closed(lb, Deadline(0.01), limit=100, what="reply")

    with pytest.raises(LabTimeout, match="the end of the reply"):
        arun(main())


def test_read_until_closed_stops_at_the_limit(loopback: type[Loopback], arun: Runner) -> None:
    """An endless sender cannot hold the verb: past the limit it fails."""

    async def main() -> None:
        lb = loopback(discard.SPEC)
        for _ in range(5):
            lb.peer.send(Line.of("x" * 10))
        await read_until_closed(lb, Deadline(1.0), limit=30, what="reply")

    with pytest.raises(RemoteProtocolError, match="longer than 30 bytes"):
        arun(main())


def test_loopback_receive_after_close_raises(loopback: type[Loopback], arun: Runner) -> None:
    """The in-memory channel behaves like the lab's: closed and empty raises."""

    async def main() -> None:
        lb = loopback(discard.SPEC)
        lb.peer.close()
        await lb.receive(1.0)

    with pytest.raises(ConnectionClosed):
        arun(main())
