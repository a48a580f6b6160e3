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
    # a greeting burst, a conversation between two clients, a keep-alive the client answers by itself
    "irc": "serve irc --ping-interval 0.3 as s; connect s as a; send a 'NICK alice'; "
           "send a 'USER alice 0 * :Alice'; expect a 376; send a 'JOIN #lab'; expect a 366; "
           "connect s as b; call b nick bob; call b join '#lab'; expect a JOIN; send a 'PRIVMSG #lab :hi'; "
           "expect b PRIVMSG; send b 'PING :x'; expect b PONG; expect a PING; wait 0.2; send a FOO; expect a 421",
    # a greeting, multi-line answers, a post whose ids and dates are the server's
    "nntp": "serve nntp as s; connect s as c; expect c 200; send c CAPABILITIES; expect c 101; "
            "send c 'GROUP lab.test'; expect c 211; send c POST; expect c 340; "
            "send c 'From: a@lab.test\\r\\nNewsgroups: lab.test\\r\\nSubject: hi\\r\\n\\r\\nBody.\\r\\n.'; "
            "expect c 240; send c 'ARTICLE 1'; expect c 220; send c 'OVER 1-'; expect c 224; "
            "send c DATE; expect c 111; send c 'ARTICLE 9'; expect c 423; connect s as v; call v group lab.misc",
    # option negotiation answered by hand (decoded in the log), then the echo service
    "telnet": "serve telnet as s; connect s -o negotiate=manual as c; send c --hex fffd03fffe01fffc1ffffc18; "
              "expect c /comes back/; send c hello; expect c /^hello/",
    # a greeting, a multi-line EHLO reply, DATA with a dot-stuffed line, a refusal, the client verb
    "smtp": "serve smtp as s; connect s as c; expect c 220; send c 'EHLO client.lab.test'; expect c 250; "
            "send c 'MAIL FROM:<a@lab.test>'; expect c 250; send c 'RCPT TO:<alice@lab.test>'; expect c 250; "
            "send c DATA; expect c 354; send c 'Subject: hi\\r\\n\\r\\nBody.\\r\\n..dot\\r\\n.'; "
            "expect c 250; send c 'RCPT TO:<x@elsewhere.test>'; expect c 503; send c FOO; expect c 500; "
            "connect s as v; call v send_mail b@lab.test bob@lab.test 'Subject: yo'",
    # an APOP greeting, multi-line LIST and RETR of a message the server stamped, a locked mailbox
    "pop3": "serve smtp as m; serve pop3 as s; connect s as c; expect c +OK; connect m as w; "
            "call w send_mail a@lab.test alice@lab.test 'Subject: hi'; send c 'USER alice'; expect c +OK; "
            "send c 'PASS wonderland'; expect c +OK; send c STAT; expect c +OK; send c LIST; expect c +OK; "
            "send c 'RETR 1'; expect c +OK; send c UIDL; expect c +OK; connect s as d; expect d +OK; "
            "send d 'USER alice'; expect d +OK; send d 'PASS wonderland'; expect d IN-USE; "
            "send c 'DELE 1'; expect c +OK; send c QUIT; expect c +OK; wait c --closed",
}

# The mock serves one server: sessions with one protocol's servers only.
MOCK_SESSIONS = {
    **SESSIONS,
    "pop3": "serve pop3 as s; connect s as c; expect c +OK; send c CAPA; expect c +OK; send c 'USER bob'; "
            "expect c +OK; send c 'PASS builder'; expect c +OK; send c LIST; expect c +OK; send c 'RETR 1'; "
            "expect c 'no such message'; connect s as d; call d capa; send c QUIT; expect c +OK; wait c --closed",
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
    "irc": (b":irc.other.test NOTICE * :go away\r\n", '+ ":irc.other.test NOTICE * :go away\\r\\n"'),
    "nntp": (b"400 Service temporarily unavailable\r\n", '+ "400 Service temporarily unavailable\\r\\n"'),
    "telnet": (b"WRONG REPLY\r\n", '+ "WRONG REPLY\\r\\n"'),
    "smtp": (b"554 5.3.2 not today\r\n", '+ "554 5.3.2 not today\\r\\n"'),
    "pop3": (b"-ERR go away\r\n", '+ "-ERR go away\\r\\n"'),
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
def test_round_trip_records_and_replays_green(tmp_path: Path, protocol: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Record a live session against each protocol; replay it in a fresh lab: green.  A password
    sent in cleartext is left out of the file and read from the environment when it replays."""
    path = record(tmp_path, SESSIONS[protocol])
    if protocol == "pop3":
        assert "wonderland" not in path.read_text() and "$NETLAB_SECRET_S1" in path.read_text()
        monkeypatch.setenv("NETLAB_SECRET_S1", "wonderland")
    (scenario,) = load_file(path)
    kinds = [s.kind for s in scenario.steps]
    assert kinds[0] == "serve" and kinds[kinds.index("connect") - 1] == "serve"
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
    # a server that hangs up early (this one does once it has read a line) fails a send
    assert outcome.failure.step is not None and outcome.failure.step.kind in ("expect", "wait", "call", "assert",
                                                                              "send")


@pytest.mark.parametrize("protocol", ["irc", "nntp", "pop3", "smtp", "telnet"])
def test_a_recording_served_by_the_mock_replays_green_against_it(tmp_path: Path, protocol: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sides of one recording: `netlab mock` serves its server side, and
    the recording's client side, replayed against the mock, passes; every
    request the clients sent was matched."""
    import re

    path = record(tmp_path, MOCK_SESSIONS[protocol])
    if protocol == "pop3":
        monkeypatch.setenv("NETLAB_SECRET_S1", "builder")
    (scenario,) = load_file(path)
    clients = sum(1 for s in scenario.steps if s.kind == "connect")
    with Proc([sys.executable, "-m", "lab", "mock", str(path), "--connections", str(clients)]) as mock:
        line = mock.wait_for(r"listening on tcp://", 30, stream="stderr")
        m = re.search(r"tcp://(\S+):(\d+)", line)
        assert m is not None
        outcome = run_scenario(scenario, target=f"{m.group(1)}:{m.group(2)}")
        assert outcome.passed, outcome.failure and outcome.failure.report()
        summary = mock.wait_for(r"mock served", 60, stream="stderr")  # it leaves after the last client
        assert mock.popen.wait(30) == 0, mock.output()
    assert " 0 unmatched" in summary, mock.output()


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


def test_volatile_parts_the_fields_do_not_show_make_a_kind_match() -> None:
    """An NNTP article's block holds the server's Message-ID and Date: a
    regex over the status text alone would keep them; the step matches the
    response's code and the command it answers instead."""
    from lab.protocols import Role
    from lab.protocols.nntp import NntpConversation, Response

    conv = NntpConversation(Role.CLIENT)
    conv.feed(b"200 ready\r\n")
    conv.send_data(b"ARTICLE 1\r\n")
    (article,) = conv.feed(b"220 1 <x.1@h>\r\nMessage-ID: <x.1@h>\r\nDate: Tue, 24 Nov 2026 13:09:42 +0000\r\n"
                            b"\r\nHi.\r\n.\r\n")
    assert isinstance(article, Response)
    step = expectation("c", article)
    assert step["kind"] == "response" and step["fields"] == {"code": 220, "answers": "ARTICLE"}
    assert "regex" not in step and step["recorded"].startswith("220 1 <x.1@h>")


def test_keepalives_and_the_answers_a_client_makes_by_itself_are_notes(tmp_path: Path) -> None:
    """A server's PING comes on its own clock, and the client answers it by
    itself: the recording notes both and expects neither, so it replays
    green at any speed, with or without PINGs."""
    path = record(tmp_path, "serve irc --ping-interval 0.2 as s; connect s as a; call a nick alice; "
                            "expect a PING; wait 0.3; send a 'PRIVMSG alice :hi'; expect a PRIVMSG")
    text = path.read_text()
    assert "# a received a keep-alive: PING irc.lab.test" in text
    assert "# a answered by itself: PONG irc.lab.test" in text
    steps = [line for line in text.splitlines() if line.startswith(("- expect:", "- send:"))]
    assert steps and not any("PING" in line or "PONG" in line for line in steps), text
    calm = tmp_path / "calm.yaml"  # a server that PINGs only after 90 s of quiet
    calm.write_text(text.replace("ping_interval: '0.2'", "ping_interval: '90'"))
    for replay in (path, calm):
        (scenario,) = load_file(replay)
        outcome = run_scenario(scenario)
        assert outcome.passed, outcome.failure and outcome.failure.report()


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


def test_client_options_are_recorded_and_replayed(tmp_path: Path) -> None:
    """`connect ... -o NAME=VALUE` becomes a connect step with `options:`,
    and the replayed client reports the same terminal."""
    path = record(tmp_path, "serve telnet --greeting-wait 30 as t; "
                            "connect t -o terminal=VT100 -o width=100 as c; expect c /comes back/; "
                            "expect c /terminal VT100. window 100x24/")
    text = path.read_text()
    assert "options:" in text and "VT100" in text
    (scenario,) = load_file(path)
    connect = next(s for s in scenario.steps if s.kind == "connect")
    assert connect.data["options"] == {"terminal": ["VT100"], "width": "100"}
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_a_failed_call_diffs_against_the_replies_it_recorded(tmp_path: Path, wrong_server: _WrongServer) -> None:
    """A `call` step keeps its verb's traffic: against a server that answers
    otherwise, the report shows the recorded reply (-) beside the new (+),
    and says what was expected once."""
    path = record(tmp_path, "serve finger as s; connect s as v; call v query dodo")
    (scenario,) = load_file(path)
    wrong_server.reply = b"WRONG REPLY\r\n"
    outcome = run_scenario(scenario, target=f"127.0.0.1:{wrong_server.server_address[1]}")
    assert not outcome.passed and outcome.failure is not None
    diff = outcome.failure.diff
    assert any(line.startswith("- ") and "Login: dodo" in line for line in diff), diff
    assert '+ "WRONG REPLY\\r\\n"' in diff, diff
    report = outcome.failure.report()
    assert report.count("The Dodo") <= 3, report  # the call's text, the message, the diff: not again as expected:


def test_a_recording_made_while_the_demo_runs_holds_only_what_the_user_did(tmp_path: Path) -> None:
    """The demo's clients come and go while the user records: the file has
    the user's server, client and traffic only, and replays green."""
    import asyncio

    from lab.demo import run_demo
    from lab.eventlog import EventKind

    path = tmp_path / "mine.yaml"
    with Lab.start() as lab:
        stop = asyncio.Event()
        demo = lab.reactor.submit(run_demo(lab, stop, interval=0.05))

        def demo_opens() -> int:
            return sum(1 for e in lab.log.tail(100_000) if e.kind is EventKind.OPEN and e.endpoint.startswith("demo"))

        wait_until(lambda: demo_opens() >= 1, 30, "the demo's first client")
        interp = Interpreter(lab)
        interp.execute(f"record start {path}", 10)
        before = demo_opens()
        for statement in ("serve echo as mine", "connect mine as c", "send c hello", "expect c hello"):
            interp.execute(statement, 30)
        wait_until(lambda: demo_opens() >= before + 3, 30, "demo clients talking during the recording")
        interp.execute("record stop", 10)
        lab.reactor.call_soon(stop.set)
        demo.result(30)
    (scenario,) = load_file(path)
    assert "demo" not in "".join(s.data.get("name", "") for s in scenario.steps if s.kind == "connect")
    assert [s.kind for s in scenario.steps] == ["serve", "connect", "send", "expect"], path.read_text()
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_a_secret_left_out_says_where_to_supply_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replayed without the secret in the environment, a recording fails at the step that needs it,
    naming the variable to set."""
    monkeypatch.delenv("NETLAB_SECRET_S1", raising=False)
    path = record(tmp_path, SESSIONS["pop3"])
    outcome = run_scenario(load_file(path)[0])
    assert not outcome.passed and outcome.failure is not None
    assert "{secret.s1} stands for a secret this file leaves out: set $NETLAB_SECRET_S1" in outcome.failure.report()
