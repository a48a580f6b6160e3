"""Scenarios and proxies: a recording made through a proxy replays both
ways (the client side against the real server with a target, the server
side as `netlab mock` to a real client), intercept steps replay, and
client replay skips what only the lab's proxy could do."""

from __future__ import annotations

import mailbox
import re
import smtplib
import socket
import sys
import threading
from pathlib import Path

import pytest
from helpers import Proc, wait_until

from lab import Lab
from lab.commands import Interpreter
from lab.scenarios import load_file, load_text
from lab.scenarios._runner import run_scenario

NETLAB = [sys.executable, "-m", "lab"]
MESSAGE = "From: carol@lab.test\r\nSubject: through\r\n\r\nHello.\r\n.A dotted line.\r\n"


def send_mail(port: int, sender: str = "carol@lab.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.lab.test", timeout=30) as smtp:
        smtp.sendmail(sender, ["alice@lab.test"], MESSAGE)


def in_thread(fn: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def record_through(path: Path, target: str, drive: object) -> Path:
    """Start a proxy to ``target`` and record while ``drive(interp, proxy)`` runs."""
    with Lab.start() as lab:
        interp = Interpreter(lab)
        (started,) = interp.execute(f"proxy smtp --to {target} as px", 10)
        interp.execute(f"record start {path}", 10)
        drive(interp, started.value)  # type: ignore[operator]
        # the proxied client's close reaches the recorder before it stops
        wait_until(lambda: not started.value.connections, 15)
        interp.execute("record stop", 10)
    return path


@pytest.mark.interop
def test_a_recording_through_the_proxy_replays_both_ways(tmp_path: Path, aiosmtpd: tuple[int, Path]) -> None:
    """smtplib -> proxy -> aiosmtpd, recorded; the client side replays green
    against aiosmtpd (`--target`), and `netlab mock` answers smtplib from the
    server side: the mail goes through with every request matched."""
    port, maildir = aiosmtpd

    def drive(interp: Interpreter, proxy: object) -> None:
        send_mail(proxy.port)  # type: ignore[attr-defined]

    path = record_through(tmp_path / "rec.yaml", f"127.0.0.1:{port}", drive)
    (scenario,) = load_file(path)
    kinds = [s.kind for s in scenario.steps]
    assert kinds[0] == "connect" and scenario.steps[0].data["target"] == "px"
    assert {"send", "expect"} <= set(kinds) and kinds[-1] == "wait"  # smtplib quits, the server closes
    assert scenario.servers[0].to == f"127.0.0.1:{port}"

    # client side: the recorded client against the real server
    outcome = run_scenario(scenario, target=f"127.0.0.1:{port}")
    assert outcome.passed, outcome.failure and outcome.failure.report()
    assert len(list(mailbox.Maildir(maildir))) == 2  # the recording's mail and the replay's

    # server side: the mock answers the real client
    with Proc([*NETLAB, "mock", str(path), "--connections", "1"]) as mock:
        line = mock.wait_for(r"listening on tcp://", 30, stream="stderr")
        m = re.search(r"tcp://127\.0\.0\.1:(\d+)", line)
        assert m is not None
        send_mail(int(m.group(1)))
        summary = mock.wait_for(r"mock served", 60, stream="stderr")
        assert mock.popen.wait(30) == 0, mock.output()
    assert "0 unmatched" in summary, mock.output()


def test_an_edit_in_flight_is_recorded_and_replays(tmp_path: Path) -> None:
    """A foreign client's MAIL held and edited while recording: the file has
    the intercept and the edit by endpoint, and replays green in a fresh lab
    (the edited sender reaches the server again)."""
    path = tmp_path / "edit.yaml"
    with Lab.start() as lab:
        interp = Interpreter(lab)
        interp.execute("serve smtp as mx", 10)
        interp.execute("proxy smtp --to mx as px", 10)
        interp.execute(f"record start {path}", 10)
        interp.execute("intercept px m:MAIL in", 10)
        client = in_thread(send_mail, lab.endpoints["px"].listen_address[1])
        interp.execute("held --wait --on px", 20)
        interp.execute("edit --on px arg=FROM:<mallory@lab.test>", 10)
        client.join(30)
        wait_until(lambda: not lab.endpoints["px"].live_connections(), 15)
        interp.execute("record stop", 10)
    text = path.read_text()
    assert "- intercept: {at: px, filter: 'm:MAIL in'}" in text
    assert "- held: {at: px, count: 1}" in text
    assert "- edit: {at: px, fields: {arg: 'FROM:<mallory@lab.test>'}}" in text
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps].count("connect") == 1  # only the stranger is a recorded client
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_a_client_that_hangs_up_first_is_stopped_in_the_replay(tmp_path: Path) -> None:
    """A stranger that closes its end first is recorded as `stop`; one whose
    server closes first as a wait for the close."""
    path = tmp_path / "echo.yaml"
    with Lab.start() as lab:
        interp = Interpreter(lab)
        interp.execute("serve echo as e", 10)
        (proxied,) = interp.execute("proxy echo --to e as px", 10)
        interp.execute(f"record start {path}", 10)
        with socket.create_connection(("127.0.0.1", proxied.value.port), 10) as sock:
            sock.sendall(b"hello\r\n")
            assert sock.recv(100) == b"hello\r\n"
        wait_until(lambda: not proxied.value.connections, 15)
        interp.execute("record stop", 10)
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["connect", "send", "expect", "stop"]
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


LESSON = """
lab:
  mx: smtp
  px: {protocol: smtp, to: mx}
steps:
  - intercept: {at: px, filter: "m:RCPT"}
  - connect: {to: px, as: c}
  - expect: {from: c, code: 220}
  - send: {to: c, text: "HELO x"}
  - expect: {from: c, code: 250}
  - send: {to: c, text: "MAIL FROM:<a@lab.test>"}
  - expect: {from: c, code: 250}
  - send: {to: c, text: "RCPT TO:<nobody@lab.test>"}
  - held: {at: px, text: nobody}
  - drop: {at: px}
  - inject: {into: px, to: client, text: "550 5.1.1 dropped by the lab"}
  - expect: {from: c, code: 550}
  - send: {to: c, text: "RCPT TO:<alice@lab.test>"}
  - release: {at: px}
  - expect: {from: c, code: 250}
"""


def test_intercept_steps_run_in_a_lab_and_are_skipped_in_client_replay(tmp_path: Path) -> None:
    """held, drop, inject and release run against the lab's proxy; with a
    target the proxy is not started and those steps are skipped with notes,
    while the client's own steps run against the target server."""
    (scenario,) = load_text(LESSON, "lesson.yaml")
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()

    with Lab.start() as lab:
        mx = lab.serve("smtp")
        (replay,) = load_text(LESSON.replace("  - expect: {from: c, code: 550}\n", ""), "lesson.yaml")
        outcome = run_scenario(replay, target=f"127.0.0.1:{mx.port}")
        assert outcome.passed, outcome.failure and outcome.failure.report()
        # nothing dropped the first RCPT: both reached the real server

        def rcpts() -> list[str]:
            return [e.message.arg for e in lab.log.query() if e.endpoint.startswith(mx.name)
                    and e.message is not None and "RCPT" in e.summary]

        wait_until(lambda: len(rcpts()) == 2, 10)
        assert rcpts() == ["TO:<nobody@lab.test>", "TO:<alice@lab.test>"]
    notes = " ".join(outcome.notes)
    assert "held on px skipped" in notes and "drop on px skipped" in notes and "inject on px skipped" in notes


def test_a_held_step_that_sees_the_wrong_message_fails_readably() -> None:
    """`held` checks the oldest held message: a mismatch names it."""
    (scenario,) = load_text("""
lab:
  mx: smtp
  px: {protocol: smtp, to: mx}
steps:
  - intercept: {at: px, filter: in}
  - connect: {to: px, as: c}
  - send: {to: c, text: "HELO x"}
  - held: {at: px, text: EHLO, timeout: 5}
""", "wrong.yaml")
    outcome = run_scenario(scenario)
    assert not outcome.passed and outcome.failure is not None
    report = outcome.failure.report()
    assert "the held message is not the one expected" in report
    assert 'h1: "HELO x\\r\\n"' in report
