"""The event log: bounded, filterable, exportable, spilled without loss."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import Capture, Lab
from lab.eventlog import PAYLOAD_OVERHEAD, Direction, Event, EventFilter, EventKind, EventLog, format_event
from lab.protocols._framing import Line


def fill(log: EventLog, n: int, **kw: object) -> None:
    for i in range(n):
        log.emit(EventKind.MESSAGE, endpoint="e", conn="e#1", direction=Direction.IN,
                 protocol="echo", message=Line.of(f"line {i}"), raw=f"line {i}\r\n".encode(), **kw)  # type: ignore[arg-type]


def test_ring_buffer_cap_holds() -> None:
    """The ring keeps the newest `capacity` events and counts the rest."""
    log = EventLog(capacity=100)
    fill(log, 1000)
    assert len(log) == 100
    assert log.total == 1000
    assert log.dropped == 900
    assert [e.seq for e in log.tail(3)] == [998, 999, 1000]


def test_subscribers_see_every_event_until_they_leave() -> None:
    """subscribe() delivers synchronously; the returned function stops it."""
    log = EventLog()
    seen: list[int] = []
    leave = log.subscribe(lambda e: seen.append(e.seq))
    fill(log, 3)
    leave()
    fill(log, 2)
    assert seen == [1, 2, 3]


def test_filters_narrow_by_each_field() -> None:
    """Endpoint, connection, direction, protocol, kind, text and regex all filter."""
    log = EventLog()
    log.emit(EventKind.OPEN, endpoint="a", conn="a#1", protocol="echo", text="open")
    log.emit(EventKind.MESSAGE, endpoint="a", conn="a#1", direction=Direction.IN, protocol="echo",
             message=Line.of("Hello World"), raw=b"Hello World\r\n")
    log.emit(EventKind.MESSAGE, endpoint="b", conn="b#1", direction=Direction.OUT, protocol="finger",
             message=Line.of("bye"), raw=b"bye\r\n")
    assert [e.endpoint for e in log.query(EventFilter(endpoint="b"))] == ["b"]
    assert len(log.query(EventFilter(conn="a#1"))) == 2
    assert len(log.query(EventFilter(direction=Direction.OUT))) == 1
    assert len(log.query(EventFilter(protocol="echo"))) == 2
    assert len(log.query(EventFilter(kinds=frozenset({EventKind.OPEN})))) == 1
    assert len(log.query(EventFilter(text="hello world"))) == 1
    assert len(log.query(EventFilter(regex=re.compile(r"^\"by")))) == 1
    assert len(log.query(EventFilter(since=2))) == 1


def test_jsonl_export_is_valid_exact_and_compact() -> None:
    """Each exported line is JSON; text bytes survive as latin-1 text, mostly binary ones as base85 (no
    six-character escapes); a summary that is only the escaped bytes is left for the reader to make."""
    log = EventLog()
    log.emit(EventKind.DATA, endpoint="e", direction=Direction.IN, raw=bytes(range(256)))
    fill(log, 2)
    log.emit(EventKind.DATA, endpoint="e", direction=Direction.IN, raw=b"plain text\r\n")
    out = io.StringIO()
    assert log.export_jsonl(out) == 4
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "raw" not in rows[0] and base64.b85decode(rows[0]["raw85"]) == bytes(range(256))
    first = log.tail(4)[0]
    assert len(first.to_json(compact=True)) < len(first.to_json()) - 256 * 2  # not six characters a byte
    assert rows[1]["fields"]["line"] == "line 0"
    assert rows[2]["seq"] == 3
    assert rows[3]["raw"] == "plain text\r\n" and "summary" not in rows[3]
    full = json.loads(log.tail(1)[0].to_json())  # `log --json` keeps every key for a reader
    assert full["summary"] == '"plain text\\r\\n"' and full["raw"] == "plain text\r\n"


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=600))
def test_compact_lines_read_back_to_the_same_event(raw: bytes) -> None:
    from lab.logfile import event_from_dict

    log = EventLog()
    event = log.emit(EventKind.DATA, endpoint="e", conn="e#1", direction=Direction.OUT, protocol="echo", raw=raw)
    back = event_from_dict(json.loads(event.to_json(compact=True)))
    assert back.raw == raw and back.summary == event.summary


def test_format_event_is_one_readable_line() -> None:
    """The text form shows time, connection, arrow and the escaped bytes."""
    log = EventLog()
    event = log.emit(EventKind.MESSAGE, endpoint="echo", conn="echo#1", direction=Direction.IN,
                     raw=b"hello\r\n", message=Line(raw=b"hello\r\n"))
    assert re.fullmatch(r'\d\d:\d\d:\d\d\.\d{3}  echo#1      <-     "hello\\r\\n"', format_event(event))


def test_capture_levels(lab: Lab) -> None:
    """full keeps raw bytes and messages, summary keeps text, off keeps counters only."""
    for level in Capture:
        srv = lab.serve("echo", capture=level.value)
        c = lab.connect("echo", srv, capture="off")
        c.send(b"x\r\n")
        c.expect(b"x")
        events = lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.MESSAGE, EventKind.DATA})))
        if level is Capture.FULL:
            # each chunk is exactly one echo message, so it is recorded once
            assert [e.kind for e in events] == [EventKind.MESSAGE, EventKind.MESSAGE]
            assert all(e.raw == b"x\r\n" and e.message is not None for e in events)
        elif level is Capture.SUMMARY:
            assert [e.summary for e in events] == ['"x\\r\\n"', '"x\\r\\n"']
            assert all(e.raw is None and e.message is None for e in events)
        else:
            assert events == []
            assert srv.status()["bytes_in"] == 3
        assert not lab.log.query(EventFilter(endpoint=c.name, kinds=frozenset({EventKind.MESSAGE})))


def test_raw_chunks_are_recorded_when_they_are_not_one_message(lab: Lab) -> None:
    """A line split over two TCP segments shows as two data events and one message."""
    import socket

    from helpers import wait_until

    srv = lab.serve("finger")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"ali")
        wait_until(lambda: lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.DATA}))),
                   what="the first chunk")
        s.sendall(b"ce\r\n")
        s.recv(1000)
    events = lab.log.query(EventFilter(endpoint=srv.name, direction=Direction.IN,
                                       kinds=frozenset({EventKind.DATA, EventKind.MESSAGE})))
    assert [(e.kind, e.raw) for e in events] == [
        (EventKind.DATA, b"ali"), (EventKind.DATA, b"ce\r\n"), (EventKind.MESSAGE, b"alice\r\n")]


SPILL_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from lab import Lab, Reactor
    from lab.eventlog import EventKind, Direction

    reactor = Reactor()
    lab = Lab(reactor)
    lab.log.spill_to(sys.argv[1])

    async def main():
        for batch in range(5):
            for i in range(200):
                lab.log.emit(EventKind.DATA, endpoint="e", direction=Direction.IN,
                             raw=b"batch %d event %d\\r\\n" % (batch, i))
            await asyncio.sleep(0)  # the batch is flushed on the next loop turn
            await asyncio.sleep(0)
            print(lab.log.total, flush=True)
        await asyncio.sleep(3600)

    reactor.run(main())
    """
)


def test_spill_survives_sigkill(tmp_path: Path) -> None:
    """A process killed with SIGKILL leaves every flushed event, each line valid JSON."""
    spill = tmp_path / "events.jsonl"
    child = subprocess.Popen([sys.executable, "-c", SPILL_CHILD, str(spill)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    last = 0
    for _ in range(5):
        last = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    rows = [json.loads(line) for line in spill.read_text().splitlines()]
    assert last == 1000
    assert [r["seq"] for r in rows] == list(range(1, last + 1))


def test_bad_capacity_is_refused() -> None:
    """A ring must hold at least one event."""
    with pytest.raises(ValueError):
        EventLog(0)


def test_payload_limit_sheds_bytes_of_old_events_but_keeps_them() -> None:
    """Past the byte budget old events keep their summary and lose their payload."""
    log = EventLog(capacity=1000, payload_limit=10_000)
    for i in range(100):
        log.emit(EventKind.DATA, endpoint="e", direction=Direction.IN, raw=bytes([65 + i % 26]) * 1000)
    assert len(log) == 100
    assert log.payload_bytes <= 10_000
    first, last = log.tail(100)[0], log.tail(1)[0]
    assert first.raw is None and first.summary.startswith('"AAAA')
    assert last.raw == b"V" * 1000


def test_events_leaving_the_ring_release_their_payload() -> None:
    """The payload budget counts only events still in the ring, so nothing outlives the ring."""
    log = EventLog(capacity=100, payload_limit=10**9)
    for _ in range(1000):
        log.emit(EventKind.MESSAGE, "e", "e#1", Direction.IN, "echo", raw=b"x" * 10)
    assert len(log) == 100
    assert log.payload_bytes == 100 * (10 + PAYLOAD_OVERHEAD)


def test_a_subscriber_that_raises_is_dropped_and_traffic_goes_on(lab: Lab) -> None:
    """A watcher's bug costs the watcher, not the connection it watches: the
    send succeeds, an error event names the subscriber, others still hear."""
    heard: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("watcher bug")

    lab.log.subscribe(broken)
    lab.log.subscribe(lambda event: heard.append(event.seq))
    srv = lab.serve("echo")
    c = lab.connect("echo", srv)
    c.send(b"still fine\r\n")
    assert c.expect(b"still fine").raw == b"still fine\r\n"
    errors = [e.text or "" for e in lab.log.query(EventFilter(kinds=frozenset({EventKind.ERROR})))]
    assert len(errors) == 1 and "broken" in errors[0] and "RuntimeError: watcher bug" in errors[0]
    assert heard and heard[-1] == lab.log.total
