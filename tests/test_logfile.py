"""Saved logs read back: a real session round trip, every event written
then read, and files that are not logs (garbage, huge lines, a last line
cut short)."""

from __future__ import annotations

import json
import re
import smtplib
from pathlib import Path

import pytest
from helpers import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import Lab
from lab.commands import Interpreter
from lab.errors import ConfigError
from lab.eventlog import Direction, Event, EventKind, EventLog
from lab.logfile import MAX_LINE, SavedLog, load, load_log
from lab.protocols._framing import Data, Line

NO_TMP = [HealthCheck.function_scoped_fixture]


def same_fields(a: Event, b: Event) -> None:
    assert (a.seq, a.kind, a.direction, a.endpoint, a.conn, a.protocol) == (
        b.seq, b.kind, b.direction, b.endpoint, b.conn, b.protocol)
    assert (a.wall, a.mono, a.summary, a.raw) == (b.wall, b.mono, b.summary, b.raw)
    assert (a.message is None) == (b.message is None)
    if a.message is not None and b.message is not None:
        assert type(a.message).__name__ == type(b.message).__name__
        assert json.loads(json.dumps(a.message.fields(), default=str)) == b.message.fields()
        assert a.message.raw == b.message.raw


def test_a_saved_smtp_session_loads_back_as_it_was(lab: Lab, tmp_path: Path) -> None:
    """`log save` of a real session (smtplib, and a client whose chunks split
    a command) gives back the kinds, summaries, bytes, fields and message kinds."""
    interp = Interpreter(lab)
    server = lab.serve("smtp", name="mx")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=20) as smtp:
        smtp.sendmail("a@x.test", ["b@lab.test"], "Subject: hi\r\n\r\nhello\r\n")
    interp.execute("connect mx as c; expect c 220; send c -n HEL; send c 'O x'; expect c 250")
    wait_until(lambda: any(e.conn == "mx#1" and e.kind is EventKind.CLOSE for e in lab.log), what="the close")
    path = tmp_path / "s.jsonl"
    (res,) = interp.execute(f"log save {path}")
    assert res.value.events == len(lab.log) and res.value.bytes == path.stat().st_size
    loaded = load_log(path)
    assert isinstance(loaded, EventLog) and loaded.warnings == [] and len(loaded) == res.value.events
    originals = list(lab.log)[: len(loaded)]
    for before, after in zip(originals, loaded, strict=True):
        same_fields(before, after)
    ehlo = next(e for e in loaded if e.message is not None and e.message.kind == "EHLO")
    assert type(ehlo.message).__name__ == "Command" and ehlo.message.fields()["verb"] == "EHLO"
    reply = next(e for e in loaded if e.message is not None and type(e.message).__name__ == "Reply")
    assert reply.message is not None and reply.message.kind == "reply"
    assert [e.raw for e in loaded if e.kind is EventKind.DATA and e.conn == "c"] == [b"HEL", b"O x\r\n"]
    assert loaded.tail(1)[0].seq == originals[-1].seq


def test_a_spill_file_loads_and_a_last_line_cut_short_is_skipped_with_a_note(tmp_path: Path) -> None:
    """A spill whose writer died mid-line: the complete events load, the
    torn line becomes a warning and an info event at the end."""
    path = tmp_path / "spill.jsonl"
    log = EventLog()
    log.spill_to(path)
    log.emit(EventKind.OPEN, "e", "e#1", text="127.0.0.1:5000 -> 127.0.0.1:7")
    log.emit(EventKind.MESSAGE, "e", "e#1", Direction.IN, "echo", None, b"hi\r\n", Line(raw=b"hi\r\n"))
    log.stop_spill()
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines()[1][:40])
    loaded = load_log(path)
    assert [e.kind for e in loaded] == [EventKind.OPEN, EventKind.MESSAGE, EventKind.INFO]
    assert loaded.warnings == [f"{path}:3: the last line is cut short (its writer stopped mid-line); skipped it"]
    assert "cut short" in loaded.tail(1)[0].summary and loaded.tail(1)[0].seq == 3
    assert len(load(path)) == 2
    # the same torn line with lines after it is damage, not a crash
    path.write_bytes(whole.splitlines()[1][:40] + b"\n" + whole)
    with pytest.raises(ConfigError, match=rf"{path}:1: not JSON"):
        load_log(path)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"hello", "not JSON"),
        (b"[1, 2]", "a JSON list, not an event object"),
        (b'{"seq": 1}', "'time' is missing"),
        (b'{"seq": "1", "time": 1}', "'seq' is missing or not a whole number"),
        (b'{"seq": 1, "time": NaN}', "'time' is not a finite number"),
        (b'{"seq": 1, "time": 1e300}', "'time' is not a date"),
        (b'{"seq": 1, "time": 1, "kind": "boom"}', "unknown kind 'boom'"),
        (b'{"seq": 1, "time": 1, "kind": "msg", "dir": "in", "endpoint": "e", "conn": "", "proto": "p", '
         b'"summary": "s", "raw": "\\u0100"}', "'raw' holds characters above"),
        (b'{"seq": 1, "time": 1, "kind": "msg", "dir": "in", "endpoint": 5}', "'endpoint' is not a string"),
        (b"\xff\xfe\x00binary", "not text"),
        pytest.param(b"[" * 100_000, "not an event (JSON nested too deeply)", id="deep"),
    ],
)
def test_a_line_that_is_not_an_event_names_file_and_line(tmp_path: Path, line: bytes, problem: str) -> None:
    """Each kind of bad line is one ConfigError naming FILE:LINE and what is wrong."""
    good = Event(1, 1.0, 1.0, "e", "", EventKind.INFO, Direction.NONE, "", "fine").to_json().encode()
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + b"\n\n" + line + b"\n")
    with pytest.raises(ConfigError) as info:
        load_log(path)
    assert str(info.value).startswith(f"{path}:3: {problem}")
    assert "\n" not in str(info.value)


def test_hostile_files_are_refused_quickly(tmp_path: Path) -> None:
    """A 50 MB line is refused at the line limit; binary garbage and a
    missing file are one-line errors."""
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as fh:
        fh.write(b'{"seq": 1, "raw": "')
        fh.write(b"a" * (50 * 1024 * 1024))
        fh.write(b'"}\n')
    assert huge.stat().st_size > MAX_LINE
    with pytest.raises(ConfigError, match=rf"{huge}:1: a line longer than 33,554,432 bytes"):
        load_log(huge)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ConfigError, match=rf"{garbage}:1: not"):
        load_log(garbage)
    with pytest.raises(ConfigError, match=r"cannot read .*nothing\.jsonl"):
        load_log(tmp_path / "nothing.jsonl")


names = st.text(max_size=12)
messages = st.sampled_from([None, Line, Data])


@st.composite
def events(draw: st.DrawFn) -> Event:
    raw = draw(st.none() | st.binary(max_size=64))
    kind = draw(st.sampled_from(list(EventKind)))
    cls = draw(messages) if raw is not None else None
    return Event(draw(st.integers(0, 2**63 - 1)), draw(st.floats(allow_nan=False, allow_infinity=False)),
                 draw(st.floats(0, 253402300799)), draw(names), draw(names), kind,
                 draw(st.sampled_from(list(Direction))), draw(names), draw(st.text(max_size=40)), raw,
                 cls(raw=raw) if cls is not None and raw is not None else None)


@settings(max_examples=200, suppress_health_check=NO_TMP)
@given(written=st.lists(events(), max_size=8))
def test_any_event_written_reads_back_the_same(tmp_path: Path, written: list[Event]) -> None:
    """Every field of every event survives to_json and the loader."""
    path = tmp_path / "prop.jsonl"
    path.write_text("".join(e.to_json() + "\n" for e in written), encoding="ascii")
    loaded = load(path)
    assert len(loaded) == len(written)
    for before, after in zip(written, loaded, strict=True):
        same_fields(before, after)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
GOOD = Event(7, 2.0, 3.0, "mx", "mx#1", EventKind.MESSAGE, Direction.IN, "smtp", "QUIT", b"QUIT\r\n",
             Line(raw=b"QUIT\r\n")).to_dict()


@settings(max_examples=300, suppress_health_check=NO_TMP)
@given(line=st.binary(max_size=200) | st.builds(
    lambda key, value, drop: json.dumps({k: v for k, v in {**GOOD, key: value}.items() if k != drop}).encode(),
    st.sampled_from(sorted(GOOD)), json_values, st.sampled_from([*sorted(GOOD), ""])))
def test_garbage_gives_a_clear_error_or_an_event_never_another_exception(tmp_path: Path, line: bytes) -> None:
    """Random bytes, and events with a key changed or dropped, either load
    or are a ConfigError naming the file and line."""
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(line + b"\n")
    try:
        loaded = load_log(path)
    except ConfigError as exc:
        assert re.match(rf"{re.escape(str(path))}:\d+: \S", str(exc)), exc
    else:
        assert isinstance(loaded, SavedLog)
        for event in loaded:
            assert isinstance(event.summary, str) and isinstance(event.seq, int)
