"""Recording from the shell front-ends, on real ptys: `netlab console
--record FILE` and `%netlab record start FILE` in IPython write scenarios
that `netlab run` replays green, and red with the runner's diff once the
server answers differently; a console killed mid-session leaves a file
that loads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import wait_until
from ptyterm import Terminal
from test_ipython import IPYTHON, IPython

from lab.scenarios import load_file
from lab.scenarios._runner import run_scenario

pytestmark = pytest.mark.interop

CONSOLE = [sys.executable, "-m", "lab", "console"]
NETLAB_RUN = [sys.executable, "-m", "lab", "run"]


def netlab_run(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETLAB_RUN, str(path)], capture_output=True, text=True, timeout=90,
                          env={**os.environ, **env})


def changed(path: Path, old: str, new: str, name: str) -> Path:
    """A copy of the recording with one server option or protocol changed."""
    text = path.read_text(encoding="utf-8")
    assert old in text, text
    out = path.with_name(name)
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


def test_interop_console_record_replays_green_and_red_on_a_changed_server(tmp_path: Path,
                                                                          home: dict[str, str]) -> None:
    """`netlab console --record` a finger and an echo session; `exit` closes
    the file; `netlab run` passes; another finger user, or a discard server
    where the echo was, fails with the runner's diff."""
    path = tmp_path / "session.yaml"
    with Terminal([*CONSOLE, "--record", str(path)], home) as term:
        term.wait_for(r"^netlab rec>", 60)
        term.wait_for(r"REC session\.yaml \(0 steps\) \| 0 servers")
        term.line('serve finger --user "bob=Bob Builder" as f; connect f as c')
        term.wait_for(r"^c: finger connected")
        term.line("call c query bob")
        term.wait_for(r"^c\.query -> 'Login: bob\\t\\t\\tName: Bob Builder\\n'")
        term.line("serve echo as e; connect e as k; send k hello; expect k hello")
        term.wait_for(r'^k <- "hello\\r\\n"')
        term.wait_for(r"REC session\.yaml \(7 steps\) \| 2 servers")
        term.line("exit")
        term.wait_exit()
        term.wait_output(r"recorded 7 steps to .*session\.yaml")
        assert term.child.exitstatus == 0
    text = path.read_text(encoding="utf-8")
    assert text.endswith("# end of recording: 7 steps\n")
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["serve", "connect", "call", "serve", "connect", "send", "expect"]

    green = netlab_run(path, home)
    assert green.returncode == 0, green.stdout + green.stderr
    assert "PASS  session" in green.stdout

    other_user = netlab_run(changed(path, "bob=Bob Builder", "bob=Bobby Tables", "user.yaml"), home)
    assert other_user.returncode == 1, other_user.stdout
    assert "step 3 `call c query bob`: got \"Login: bob\\t\\t\\tName: Bobby Tables\\n\"" in other_user.stdout
    assert "expected a value that equals 'Login: bob\\t\\t\\tName: Bob Builder\\n'" in other_user.stdout

    discard = netlab_run(changed(path, "{as: e, protocol: echo}", "{as: e, protocol: discard}", "discard.yaml"),
                         home)
    assert discard.returncode == 1, discard.stdout
    assert 'step 7 `expect k equals "hello\\r\\n"`: got nothing' in discard.stdout
    assert "replies, expected (-) against received (+):\n    - \"hello\\r\\n\"" in discard.stdout


def test_interop_console_record_stop_and_ctrl_d_close_the_file(tmp_path: Path, home: dict[str, str]) -> None:
    """`record stop` ends the --record file and the prompt says so; a second
    recording started by hand is closed by Ctrl-D; a taken name is refused."""
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    with Terminal([*CONSOLE, "--record", str(first)], home) as term:
        term.wait_for(r"^netlab rec>", 60)
        term.line("serve echo as e; connect e as c; send c one; expect c one")
        term.wait_for(r'^c <- "one\\r\\n"')
        term.line("record stop")
        term.wait_for(r"^recorded 4 steps to .*first\.yaml")
        term.wait_for(r"^netlab>$")
        assert "REC " not in term.rows[-1]
        term.line("send c not recorded; expect c not")
        term.wait_for(r'^c <- "not recorded\\r\\n"')
        term.line(f"record start {second}")
        term.wait_for(r"^recording to .*second\.yaml")
        term.wait_for(r"^netlab rec>$")
        term.line("send c two; expect c two")
        term.wait_for(r'^c <- "two\\r\\n"')
        term.send("\x04")
        term.wait_exit()
        term.wait_output(r"recorded \d+ steps to .*second\.yaml")
        assert term.child.exitstatus == 0
    assert "not recorded" not in first.read_text() and first.read_text().endswith("# end of recording: 4 steps\n")
    assert "# end of recording" in second.read_text()
    for path in (first, second):
        (scenario,) = load_file(path)
        outcome = run_scenario(scenario)
        assert outcome.passed, outcome.failure and outcome.failure.report()

    taken = subprocess.run([*CONSOLE, "--record", str(first)], input="", capture_output=True, text=True,
                           timeout=60, env={**os.environ, **home})
    assert taken.returncode == 2
    assert taken.stderr.strip() == f"netlab: {first} exists — pick another name, or add --force to replace it"


def test_interop_console_killed_mid_recording_leaves_a_file_that_loads(tmp_path: Path,
                                                                      home: dict[str, str]) -> None:
    """SIGKILL with the recording running: no end marker, but the steps
    written so far load and replay green."""
    path = tmp_path / "crash.yaml"
    with Terminal([*CONSOLE, "--record", str(path)], home) as term:
        term.wait_for(r"^netlab rec>", 60)
        term.line("serve echo as e; connect e as c; send c one; expect c one")
        term.wait_for(r'^c <- "one\\r\\n"')
        term.line("send c two")
        wait_until(lambda: 'equals: "two\\r\\n"' in path.read_text(encoding="utf-8"), 30,
                   "the second reply in the recording")
        os.kill(term.child.pid, signal.SIGKILL)
        term.wait_exit()
    text = path.read_text(encoding="utf-8")
    assert "# end of recording" not in text
    (scenario,) = load_file(path)
    assert [s.kind for s in scenario.steps] == ["serve", "connect", "send", "expect", "send", "expect"]
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_interop_ipython_magics_record_python_api_use_and_replay_green(tmp_path: Path,
                                                                      home: dict[str, str]) -> None:
    """`%netlab record start` ... `%netlab record stop` in a real IPython:
    magics and the Python API in between (send, expect, await, a verb) are
    recorded; the file replays green with `netlab run`, and red when the
    finger user changes.  A recording left running ends cleanly at exit."""
    path, left = tmp_path / "ipy.yaml", tmp_path / "left.yaml"
    ipy = IPython([*IPYTHON, "--no-banner"], {**home, "PROMPT_TOOLKIT_NO_CPR": "1"})
    try:
        ipy.run("%load_ext lab")
        out = ipy.run(f"%netlab record start {path}")
        assert "recording to" in out
        ipy.run("%netlab serve echo as mx")
        ipy.run("c = %netlab connect mx")
        out = ipy.run('c.send(b"hello\\r\\n"); c.expect(b"hello")')
        assert "hello" in out
        out = ipy.run('await c.asend(b"again\\r\\n"); (await c.aexpect(b"again")).raw')
        assert "b'again\\r\\n'" in out
        ipy.run('f = lab.serve("finger", name="f", user=["bob=Bob Builder"])')
        out = ipy.run('v = lab.connect("finger", f, name="v"); v.query("bob")')
        assert "Name: Bob Builder" in out
        out = ipy.run("%netlab record")
        assert "steps so far" in out
        out = ipy.run("%netlab record stop")
        assert "recorded" in out
        ipy.run(f"%netlab record start {left}")
        ipy.run('c.send(b"last\\r\\n"); c.expect(b"last")')
        ipy.term.line("exit")
        ipy.term.wait_exit()
        ipy.term.wait_output(r"netlab: recorded \d+ steps to .*left\.yaml")
    finally:
        ipy.term.close()
    (scenario,) = load_file(path)
    kinds = [s.kind for s in scenario.steps]
    assert kinds == ["serve", "connect", "send", "expect", "send", "expect", "serve", "connect", "send",
                     "expect", "wait"], kinds
    green = netlab_run(path, home)
    assert green.returncode == 0, green.stdout + green.stderr
    red = netlab_run(changed(path, "bob=Bob Builder", "bob=Bobby Tables", "red.yaml"), home)
    assert red.returncode == 1, red.stdout
    assert "- \"Login: bob\\t\\t\\tName: Bob Builder\\r\\n\"" in red.stdout
    assert "+ \"Login: bob\\t\\t\\tName: Bobby Tables\\r\\n\"" in red.stdout
    assert left.read_text(encoding="utf-8").splitlines()[-1].startswith("# end of recording")
    (scenario,) = load_file(left)
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()
