"""Server replay in memory: how the mock matches requests to a recording."""

from __future__ import annotations

from typing import Any

from lab.protocols._base import Transport
from lab.protocols._framing import Data
from lab.scenarios import load_text
from lab.scenarios._mock import MockBehaviour, MockReport, build_scripts

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


def mock() -> tuple[MockBehaviour, FakePeer, MockReport]:
    (scenario,) = load_text(RECORDING, "rec.yaml")
    server, scripts, warnings = build_scripts(scenario)
    assert (server, warnings) == ("s", [])
    report = MockReport()
    behaviour = MockBehaviour({}, scripts, report)
    peer = FakePeer()
    behaviour.connection_made(peer)  # type: ignore[arg-type]
    return behaviour, peer, report


def test_greeting_binary_request_and_loose_line_then_close() -> None:
    """Greets on connect; exact binary bytes answer at once; a line differing
    in case and line ending still matches; the recorded close closes."""
    behaviour, peer, report = mock()
    assert peer.sent == [b"welcome\r\n"]
    behaviour.message_received(peer, Data(raw=b"\x00\x01\xff"))  # type: ignore[arg-type]
    assert peer.sent[-1] == b"\xff\x01\x00"
    behaviour.message_received(peer, Data(raw=b"helo  LAB.test"))  # type: ignore[arg-type]
    assert peer.sent[-1] == b"\xff\x01\x00"  # not a whole line yet
    behaviour.message_received(peer, Data(raw=b"\n"))  # type: ignore[arg-type]
    assert peer.sent[-1] == b"250 hello\r\n" and peer.closed
    assert (report.matched, report.unmatched) == (2, [])


def test_unmatched_lines_and_unfinished_requests_are_reported() -> None:
    """A line nothing resembles, and bytes left when the client goes, are unmatched."""
    behaviour, peer, report = mock()
    behaviour.message_received(peer, Data(raw=b"QUIT\r\n"))  # type: ignore[arg-type]
    behaviour.message_received(peer, Data(raw=b"partial"))  # type: ignore[arg-type]
    behaviour.connection_lost(peer)  # type: ignore[arg-type]
    assert report.unmatched == ["QUIT", "partial"]
    assert any("unmatched request 'QUIT'" in note for note in peer.notes)


def test_close_enough_lines_match() -> None:
    """A typo-level difference still finds the recorded request."""
    behaviour, peer, report = mock()
    behaviour.message_received(peer, Data(raw=b"HELO lab.tset\r\n"))  # type: ignore[arg-type]
    assert peer.sent[-1] == b"250 hello\r\n" and report.matched == 1
