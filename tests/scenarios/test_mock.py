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


PIPELINED = """
lab:
  mx: {protocol: smtp}
steps:
  - connect: {to: mx, as: c}
  - expect: {from: c, code: 220, recorded: "220 lab.test ESMTP\\r\\n"}
  - call: {client: c, verb: send_mail, args: [a@lab.test, b@lab.test, "Subject: hi"], traffic: [
      {sent: "EHLO client.lab.test\\r\\n"}, {received: "250-lab.test\\r\\n250 PIPELINING\\r\\n"},
      {sent: "MAIL FROM:<a@lab.test>\\r\\nRCPT TO:<b@lab.test>\\r\\nDATA\\r\\n"},
      {received: "250 sender ok\\r\\n250 recipient ok\\r\\n"}, {received: "354 go ahead\\r\\n"},
      {sent: "Subject: hi\\r\\n.\\r\\n"}, {received: "250 queued\\r\\n"}]}
  - call: {client: c, verb: quit, traffic: [{sent: "QUIT\\r\\n"}, {received: "221 bye\\r\\n"}, {closed: true}]}
"""


def test_a_pipelined_recording_becomes_one_exchange_per_request() -> None:
    """Three commands sent in one write and their three replies pair up in
    order; the mail itself is a request of its own; the close follows QUIT."""
    (scenario,) = load_text(PIPELINED, "rec.yaml")
    _server, (script,), warnings = build_scripts(scenario)
    assert warnings == [] and script.by_message
    pairs = [(e.request, e.replies, e.close) for e in script.exchanges]
    assert pairs == [
        (None, [b"220 lab.test ESMTP\r\n"], False),
        (b"EHLO client.lab.test\r\n", [b"250-lab.test\r\n250 PIPELINING\r\n"], False),
        (b"MAIL FROM:<a@lab.test>\r\n", [b"250 sender ok\r\n"], False),
        (b"RCPT TO:<b@lab.test>\r\n", [b"250 recipient ok\r\n"], False),
        (b"DATA\r\n", [b"354 go ahead\r\n"], False),
        (b"Subject: hi\r\n.\r\n", [b"250 queued\r\n"], False),
        (b"QUIT\r\n", [b"221 bye\r\n"], True),
    ]


def test_a_request_is_matched_by_its_verb_and_refused_in_the_protocol_when_unknown() -> None:
    """A differently named EHLO gets the recorded EHLO reply; a verb the
    recording lacks gets SMTP's 500, and is reported."""
    from lab.protocols import smtp
    from lab.scenarios._mock import mock_spec

    (scenario,) = load_text(PIPELINED, "rec.yaml")
    _server, scripts, _warnings = build_scripts(scenario)
    report = MockReport()
    behaviour = mock_spec(smtp.SPEC, scripts, report).server(None)
    peer = FakePeer()
    session = behaviour.session(peer)  # type: ignore[arg-type]
    session.connection_made()
    session.message_received(smtp.Command(raw=b"ehlo [127.0.0.1]\r\n", verb="EHLO", arg="[127.0.0.1]"))
    session.message_received(smtp.Command(raw=b"VRFY bob\r\n", verb="VRFY", arg="bob"))
    assert peer.sent[1] == b"250-lab.test\r\n250 PIPELINING\r\n"
    assert peer.sent[2].startswith(b"500 ")
    assert (report.matched, report.unmatched) == (1, ["VRFY bob"])
