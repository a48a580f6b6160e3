"""Server replay in memory: how the mock matches requests to a recording."""

from __future__ import annotations

from typing import Any

from lab.protocols._base import Transport
from lab.protocols._framing import Data
from lab.scenarios import load_text
from lab.scenarios._mock import MockBehaviour, MockReport, MockSession, build_scripts

RECORDING = """
lab:
  s: {protocol: echo}
steps:
  - connect: {to: s, as: c}
  - expect: {from: c, equals: "welcome\\r\\n"}
  - send: {to: c, hex: "0001ff"}
  - expect: {from: c, hex: "ff0100"}
  - send: {to: c, text: HELO lab.test}
  - expect: {from: c, equals: "250 hello\\r\\n"}
  - wait: {closed: c}
"""


class FakePeer:
    """A connection as a behaviour sees it, recording what it is sent."""

    id = "s#1"
    peer = ("127.0.0.1", 5)
    transport = Transport.TCP
    write_paused = False

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.notes: list[str] = []
        self.closed = False

    def send(self, msg: Any) -> None:
        self.sent.append(msg.raw)

    def send_raw(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def note(self, text: str) -> None:
        self.notes.append(text)


def mock() -> tuple[MockSession, FakePeer, MockReport]:
    (scenario,) = load_text(RECORDING, "rec.yaml")
    server, scripts, warnings = build_scripts(scenario)
    assert (server, warnings) == ("s", [])
    report = MockReport()
    behaviour = MockBehaviour(None, scripts, report)
    peer = FakePeer()
    session = behaviour.session(peer)  # type: ignore[arg-type]
    assert isinstance(session, MockSession)
    session.connection_made()
    return session, peer, report


def test_greeting_binary_request_and_loose_line_then_close() -> None:
    """Greets on connect; exact binary bytes answer at once; a line differing
    in case and line ending still matches; the recorded close closes."""
    session, peer, report = mock()
    assert peer.sent == [b"welcome\r\n"]
    session.message_received(Data(raw=b"\x00\x01\xff"))
    assert peer.sent[-1] == b"\xff\x01\x00"
    session.message_received(Data(raw=b"helo  LAB.test"))
    assert peer.sent[-1] == b"\xff\x01\x00"  # not a whole line yet
    session.message_received(Data(raw=b"\n"))
    assert peer.sent[-1] == b"250 hello\r\n" and peer.closed
    assert (report.matched, report.unmatched) == (2, [])


def test_unmatched_lines_and_unfinished_requests_are_reported() -> None:
    """A line nothing resembles, and bytes left when the client goes, are unmatched."""
    session, peer, report = mock()
    session.message_received(Data(raw=b"QUIT\r\n"))
    session.message_received(Data(raw=b"partial"))
    session.connection_lost()
    assert report.unmatched == ["QUIT", "partial"]
    assert any("unmatched request 'QUIT'" in note for note in peer.notes)


def test_close_enough_lines_match() -> None:
    """A typo-level difference still finds the recorded request."""
    session, peer, report = mock()
    session.message_received(Data(raw=b"HELO lab.tset\r\n"))
    assert peer.sent[-1] == b"250 hello\r\n" and report.matched == 1
