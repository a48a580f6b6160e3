"""Recording: a live session becomes a scenario that replays green; a
changed server reply makes it red with a precise diff; a recording killed
with SIGKILL still loads."""

from __future__ import annotations

import signal
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Proc, wait_until

from lab import Lab
from lab.commands import Interpreter
from lab.errors import CommandError
from lab.scenarios import load_file
from lab.scenarios._recorder import MAX_PER_TURN, expectation
from lab.scenarios._runner import run_scenario

# One live session per protocol on main: what a student would type.
SESSIONS = {
    "echo": "serve echo as s; connect s as c; send c hello; send c second line; expect c second",
    "discard": "serve discard as s; connect s as c; send c into the void; call c discard abc; wait 0.3",
    "chargen": "serve chargen as s; connect s as c; expect c /./; wait 0.2; stop c",
    "daytime": "serve daytime as s; connect s as c; wait c --closed",
    "time": "serve time as s; connect s as c; wait c --closed",
    "qotd": "serve qotd as s; connect s as c; wait c --closed; connect s as d; wait d --closed",
    "finger": "serve finger as s; connect s as c; send c '/W alice'; wait c --closed; "
              "connect s as v; call v query dodo",
}

# What a different server answers instead, and the line the diff must show.
WRONG = {
    "discard": (b"WRONG REPLY\r\n", '+ "WRONG REPLY\\r\\n"'),
    "echo": (b"WRONG REPLY\r\n", '- "hello\\r\\n"'),
    "chargen": (b"WRONG REPLY\r\n", '+ "WRONG REPLY\\r\\n"'),
    "daytime": (b"\r\n", '+ "\\r\\n"'),
    "time": (b"no\n", "- kind time, length 4"),
    "qotd": (b"WRONG REPLY\r\n", '+ "WRONG REPLY\\r\\n"'),
    "finger": (b"WRONG REPLY\r\n", '- "Login: alice\\t\\t\\tName: Alice Liddell\\r\\n"'),
}


def record(tmp_path: Path, script: str, name: str = "rec.yaml") -> Path:
    path = tmp_path / name
    with Lab.start() as lab:
        interp = Interpreter(lab)
        interp.execute(f"record start {path}", 10)
        for statement in script.split(";"):
            interp.execute(statement, 30)
        (result,) = interp.execute("record stop", 10)
        assert "recorded" in result.text
    return path


class _WrongServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    reply = b""


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(self.server.reply)  # type: ignore[attr-defined]
        self.request.settimeout(0.5)
        try:
            self.request.recv(4096)
        except OSError:
            pass


@pytest.fixture
def wrong_server() -> Iterator[_WrongServer]:
    """A stdlib TCP server that answers every connection with `reply` and closes."""
    server = _WrongServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("protocol", sorted(SESSIONS))
def test_round_trip_records_and_replays_green(tmp_path: Path, protocol: str) -> None:
    """Record a live session against each protocol; replay it in a fresh lab: green."""
    path = record(tmp_path, SESSIONS[protocol])
    (scenario,) = load_file(path)
    kinds = [s.kind for s in scenario.steps]
    assert kinds[:2] == ["serve", "connect"]
    if protocol != "discard":
        assert "expect" in kinds or "call" in kinds
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


@pytest.mark.parametrize("protocol", sorted(WRONG))
def test_a_changed_reply_replays_red_with_a_precise_diff(
        tmp_path: Path, protocol: str, wrong_server: _WrongServer) -> None:
    """Replay the recording against a server that answers differently: red,
    and the report's diff shows the expected and the received reply."""
    path = record(tmp_path, SESSIONS[protocol])
    (scenario,) = load_file(path)
    wrong_server.reply, line = WRONG[protocol]
    port = wrong_server.server_address[1]
    outcome = run_scenario(scenario, target=f"127.0.0.1:{port}")
    assert not outcome.passed
    assert outcome.failure is not None
    report = outcome.failure.report()
    assert "replies, expected (-) against received (+):" in report, report
    assert line in report, report
    assert outcome.failure.step is not None and outcome.failure.step.kind in ("expect", "wait", "call", "assert")


def test_volatile_fields_become_patterns() -> None:
    """Daytime's text is volatile: a regex; time's value is not in the text:
    kind and length; echo's bytes are steady: exact."""
    from lab.protocols._framing import Data
    from lab.protocols.daytime import Daytime
    from lab.protocols.time import TimeValue

    day = expectation("c", Daytime.decode(b"Tue Nov 24 13:09:42 2026\r\n"))
    assert day["regex"] == r"\A.+?\r\n\Z" and day["recorded"] == "Tue Nov 24 13:09:42 2026\r\n"
    tick = expectation("c", TimeValue.at(1_700_000_000))
    assert tick == {"from": "c", "kind": "time", "length": 4, "recorded_hex": TimeValue.at(1_700_000_000).raw.hex()}
    assert expectation("c", Data(raw=b"{x}\r\n")) == {"from": "c", "equals": "{{x}}\r\n"}


def test_record_command_status_and_errors(tmp_path: Path, lab: Lab) -> None:
    """`record` says whether it records; start refuses an existing file and a second start."""
    interp = Interpreter(lab)
    assert interp.execute("record")[0].text == "not recording"
    path = tmp_path / "r.yaml"
    interp.execute(f"record start {path}")
    assert "recording to" in interp.execute("record")[0].text
    with pytest.raises(CommandError, match="already recording"):
        interp.execute(f"record start {tmp_path / 'other.yaml'}")
    interp.execute("record stop")
    with pytest.raises(CommandError, match="exists"):
        interp.execute(f"record start {path}")
    with pytest.raises(CommandError, match="not recording"):
        interp.execute("record stop")
    interp.execute(f"record start {path} --force")
    interp.execute("record stop")


def test_servers_running_before_the_recording_go_in_the_lab_part(tmp_path: Path, lab: Lab) -> None:
    """A server started before `record start` is declared under `lab:` with its options."""
    interp = Interpreter(lab)
    interp.execute("serve finger --user alice=Alice --plan alice=Tea as f")
    path = tmp_path / "r.yaml"
    interp.execute(f"record start {path}; connect f as c; send c alice; wait c --closed; record stop")
    (scenario,) = load_file(path)
    assert scenario.servers[0].name == "f"
    assert scenario.servers[0].options == {"user": ["alice=Alice"], "plan": ["alice=Tea"]}
    assert run_scenario(scenario).passed


def test_clients_connected_before_the_recording_are_connected_first(tmp_path: Path, lab: Lab) -> None:
    """A client that exists at `record start` becomes the first connect step."""
    interp = Interpreter(lab)
    interp.execute("serve echo as e; connect e as c")
    path = tmp_path / "r.yaml"
    interp.execute(f"record start {path}; send c hi; expect c hi; record stop")
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["connect", "send", "expect"]
    assert run_scenario(scenario).passed


def test_a_recording_killed_with_sigkill_still_loads(tmp_path: Path) -> None:
    """SIGKILL in the middle of a session: the file loads and replays what was written."""
    path = tmp_path / "crash.yaml"
    script = (f"record start {path}; serve echo as e; connect e as c; send c one; expect c one; "
              "send c two; expect c two; wait 120")
    with Proc([sys.executable, "-m", "lab", "exec", script]) as proc:
        wait_until(lambda: path.exists() and 'equals: "two\\r\\n"' in path.read_text(), 30,
                   "the second reply in the recording")
        proc.popen.send_signal(signal.SIGKILL)
        assert proc.stop() == -signal.SIGKILL
    text = path.read_text()
    assert "# end of recording" not in text
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["serve", "connect", "send", "expect", "send", "expect"]
    assert run_scenario(scenario).passed


def test_silence_is_asserted_only_after_a_moment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client stopped recording right after it spoke is not declared silent."""
    from lab.scenarios import _recorder

    monkeypatch.setattr(_recorder, "QUIET_GRACE", 600.0)  # "right after", however slow the machine
    hasty = record(tmp_path, "serve discard as s; connect s as c; send c hi", "hasty.yaml").read_text()
    assert "too soon after it spoke" in hasty and "- assert:" not in hasty
    monkeypatch.setattr(_recorder, "QUIET_GRACE", 0.2)
    patient = record(tmp_path, "serve discard as s; connect s as c; send c hi; wait 0.3", "patient.yaml")
    assert "- assert: {events: {endpoint: c, direction: in}, count: 0}" in patient.read_text()


def test_chargen_floods_are_capped(tmp_path: Path) -> None:
    """An endless stream records a bounded number of expectations per
    command (connect, then wait) and says how many it left out."""
    path = record(tmp_path, "serve chargen as s; connect s as c; wait 0.3; stop c")
    text = path.read_text()
    assert text.count("- expect:") <= 2 * MAX_PER_TURN
    assert "more replies to c not recorded" in text


def test_commands_of_another_lab_are_not_recorded(tmp_path: Path) -> None:
    """The recorder listens to its own lab only."""
    path = tmp_path / "mine.yaml"
    with Lab.start() as mine, Lab.start() as other:
        Interpreter(mine).execute(f"record start {path}")
        Interpreter(other).execute("serve echo as e")
        Interpreter(mine).execute("record stop")
    (scenario,) = load_file(path)
    assert scenario.steps == []




def test_a_session_driven_from_python_is_recorded_too(tmp_path: Path, lab: Lab) -> None:
    """Servers, clients and sends made through the Python API while recording
    become serve, connect and send steps, so the file is complete."""
    from lab.scenarios import Recorder

    path = tmp_path / "py.yaml"
    recorder = Recorder(lab, path)
    recorder.start()
    srv = lab.serve("echo", name="e")
    c = lab.connect("echo", srv, name="c")
    c.send(b"back\\slash {braces}\r\n")
    c.expect(b"braces")
    c.send(b"\x00\xff")
    c.expect(b"\xff")
    recorder.stop()
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["serve", "connect", "send", "expect", "send", "expect"]
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()
