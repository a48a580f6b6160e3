"""Interop: the three kinds of replay against software nobody here wrote.

Client replay sends a recording to Twisted's echo server; server replay
(`netlab mock`) answers OpenBSD nc and Debian's finger client; `spawn`
drives nc and finger against lab servers through a pty.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Proc, require

from lab import Lab
from lab.commands import Interpreter
from lab.scenarios import load_file
from lab.scenarios._runner import run_scenario

pytestmark = pytest.mark.interop

NETLAB = [sys.executable, "-m", "lab"]

TWISTED_SERVER = textwrap.dedent("""
    import sys
    from twisted.internet import protocol, reactor
    from twisted.protocols.wire import Discard, Echo
    factory = protocol.Factory.forProtocol({"echo": Echo, "discard": Discard}[sys.argv[1]])
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()
""")


@pytest.fixture
def twisted() -> Iterator[dict[str, int]]:
    """Twisted's wire Echo and Discard servers, each in its own process."""
    procs = {name: Proc([sys.executable, "-c", TWISTED_SERVER, name]) for name in ("echo", "discard")}
    try:
        yield {name: int(proc.wait_for(r"^\d+$", 30)) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop(15)


def record(path: Path, script: str) -> Path:
    with Lab.start() as lab:
        interp = Interpreter(lab)
        interp.execute(f"record start {path}")
        for statement in script.split(";"):
            interp.execute(statement, 30)
        interp.execute("record stop")
    return path


def test_client_replay_against_twisted_echo(tmp_path: Path, twisted: dict[str, int]) -> None:
    """A recording against our echo replays green against Twisted's echo,
    and red against Twisted's discard with a readable diff of the replies."""
    path = record(tmp_path / "echo.yaml",
                  "serve echo as e; connect e as c; send c hello; send c 'second line'; expect c second")
    (scenario,) = load_file(path)
    green = run_scenario(scenario, target=f"127.0.0.1:{twisted['echo']}")
    assert green.passed, green.failure and green.failure.report()
    assert any(note.startswith("client replay") for note in green.notes)
    red = run_scenario(scenario, target=f"127.0.0.1:{twisted['discard']}")
    assert not red.passed and red.failure is not None
    report = red.failure.report()
    assert '- "hello\\r\\n"' in report and '- "second line\\r\\n"' in report, report
    assert "nothing arrived" in report


def test_netlab_run_target_from_the_command_line(tmp_path: Path, twisted: dict[str, int]) -> None:
    """`netlab run FILE --target HOST:PORT` is the same client replay."""
    import subprocess

    path = record(tmp_path / "echo.yaml", "serve echo as e; connect e as c; send c hi; expect c hi")
    out = subprocess.run([*NETLAB, "run", str(path), "--target", f"127.0.0.1:{twisted['echo']}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"PASS\s+echo", out.stdout)


def _mock(path: Path, *args: str) -> tuple[Proc, str, int]:
    proc = Proc([*NETLAB, "mock", str(path), "--connections", "1", *args])
    line = proc.wait_for(r"listening on tcp://", 30, stream="stderr")
    m = re.search(r"tcp://(\S+):(\d+)", line)
    assert m is not None
    return proc, m.group(1), int(m.group(2))


def test_server_replay_answers_nc(tmp_path: Path) -> None:
    """`netlab mock` serves a recorded echo session to OpenBSD nc; its
    request (LF, not CRLF) matches loosely; the summary counts it."""
    path = record(tmp_path / "echo.yaml", "serve echo as e; connect e as c; send c hello; expect c hello")
    mock, host, port = _mock(path)
    with Proc([require("nc"), host, str(port)]) as nc:
        assert nc.popen.stdin is not None
        nc.popen.stdin.write("hello\n")
        nc.popen.stdin.flush()
        assert nc.wait_for(r"^hello", 30) == "hello"
    assert mock.stop(15) == 0
    assert "1 requests matched, 0 unmatched" in mock.output()


def test_server_replay_reports_unmatched_requests(tmp_path: Path) -> None:
    """A request that matches nothing recorded is reported and exits 1."""
    path = record(tmp_path / "echo.yaml", "serve echo as e; connect e as c; send c hello; expect c hello")
    mock, host, port = _mock(path)
    with Proc([require("nc"), host, str(port)]) as nc:
        assert nc.popen.stdin is not None
        nc.popen.stdin.write("something else entirely\n")
        nc.popen.stdin.flush()
        mock.wait_for(r"unmatched request 'something else entirely'", 30)
    assert mock.stop(15) == 1
    assert "unmatched: 'something else entirely'" in mock.output()


def test_server_replay_answers_debian_finger(tmp_path: Path, finger_host: str) -> None:
    """A recorded `/W alice` session answers Debian's `finger -l` on port 79."""
    path = record(tmp_path / "finger.yaml", "serve finger as f; connect f as c; send c '/W alice'; wait c --closed")
    mock, host, port = _mock(path, "--host", finger_host, "--port", "79")
    assert (host, port) == (finger_host, 79)
    import subprocess

    out = subprocess.run([require("finger"), "-l", f"alice@{finger_host}"], capture_output=True, text=True,
                         timeout=30)
    assert "Curiouser and curiouser!" in out.stdout, out
    assert mock.stop(15) == 0
    assert "1 requests matched" in mock.output()


def test_spawn_drives_nc_against_a_lab_server(tmp_path: Path) -> None:
    """A scenario spawns nc through a pty, talks to the lab's echo server
    and reads the echo from nc's output."""
    require("nc")
    path = tmp_path / "spawn.yaml"
    path.write_text(textwrap.dedent("""
        lab:
          e: {protocol: echo}
        steps:
          - spawn: {command: "nc 127.0.0.1 {e.port}", as: nc}
          - sendline: {to: nc, text: hello from nc}
          - expect: {from: nc, text: hello from nc}
          - assert: {events: {endpoint: e, direction: in, grep: hello from nc}, count: 1}
          - stop: [nc]
    """))
    (scenario,) = load_file(path)
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_spawn_drives_debian_finger_against_a_lab_server(tmp_path: Path, finger_host: str) -> None:
    """The finger client, spawned, reads the lab server's plan and exits."""
    require("finger")
    path = tmp_path / "finger.yaml"
    path.write_text(textwrap.dedent(f"""
        lab:
          f: {{protocol: finger, host: {finger_host}, port: 79,
              options: {{user: {{alice: Alice Liddell}}, plan: {{alice: Tea at six.}}}}}}
        steps:
          - spawn: {{command: "finger -l alice@{finger_host}", as: client}}
          - expect: {{from: client, regex: "Name: Alice Liddell"}}
          - expect: {{from: client, text: Tea at six.}}
          - expect: {{from: client, eof: true}}
          - assert: {{events: {{endpoint: f, direction: in, grep: /W user alice}}, count: 1}}
    """))
    (scenario,) = load_file(path)
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_spawn_failure_shows_the_programs_output(tmp_path: Path) -> None:
    """When a program's output does not match, the report shows what it printed."""
    path = tmp_path / "spawn.yaml"
    path.write_text(textwrap.dedent("""
        lab:
          e: {protocol: echo}
        steps:
          - spawn: {command: "nc 127.0.0.1 {e.port}", as: nc}
          - sendline: {to: nc, text: apples}
          - expect: {from: nc, text: pears, timeout: 1}
    """))
    (scenario,) = load_file(path)
    outcome = run_scenario(scenario)
    assert not outcome.passed and outcome.failure is not None
    assert "apples" in outcome.failure.report()


def test_server_replay_of_a_verb_call_answers_nc(tmp_path: Path) -> None:
    """A session recorded with `call c query dodo` keeps the verb's traffic;
    the mock answers nc's matching query with it and hangs up as recorded."""
    path = record(tmp_path / "verb.yaml", "serve finger as f; connect f as c; call c query dodo")
    assert "traffic:" in path.read_text()
    mock, host, port = _mock(path)
    with Proc([require("nc"), host, str(port)]) as nc:
        assert nc.popen.stdin is not None
        nc.popen.stdin.write("dodo\r\n")
        nc.popen.stdin.flush()
        assert re.search(r"Login: dodo\s+Name: The Dodo", nc.wait_for(r"^Login", 30))
        mock.wait_for(r"f#1\s+close", 30)  # the mock hung up, as the server did
    assert mock.stop(15) == 0
    assert "1 requests matched, 0 unmatched" in mock.output()


def test_server_replay_over_udp_answers_socat(tmp_path: Path) -> None:
    """A UDP daytime session recorded through the verb is served to socat."""
    import subprocess

    path = record(tmp_path / "udp.yaml", "serve daytime --udp as d; connect d as e; call e get")
    proc = Proc([*NETLAB, "mock", str(path), "--connections", "1"])
    line = proc.wait_for(r"listening on udp://", 30, stream="stderr")
    port = int(line.rsplit(":", 1)[1].split()[0])
    out = subprocess.run([require("socat"), "-t", "2", "-", f"UDP:127.0.0.1:{port}"], input=b"\n",
                         capture_output=True, timeout=30)
    assert re.fullmatch(rb"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n", out.stdout), out
    assert proc.stop(15) == 0
    assert "1 requests matched" in proc.output()
