"""`netlab` in a real pseudo-terminal: paints the console, quits on `q`
within 2 s with exit status 0, and leaves the terminal as it found it;
runs a lesson and a recording; shows a proxy and a message it holds.

pexpect gives the pty; pyte (a terminal emulator) turns the escape
sequences into screen rows.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest

COLS, ROWS = 120, 40


def netlab_command() -> str:
    found = shutil.which("netlab", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert found, "the netlab console script is not installed (pip install -e .)"
    return found


class Terminal:
    """A child on a pty, its output fed to a pyte screen."""

    def __init__(self, command: str) -> None:
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
        env.pop("NO_COLOR", None)
        env.pop("TEXTUAL", None)
        self.raw = bytearray()
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn("/bin/sh", ["-c", command], dimensions=(ROWS, COLS), env=env)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; screen:\n{self.text}")
            try:
                data = self.child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                if not predicate():
                    raise AssertionError(f"the program ended before {what}; screen:\n{self.text}") from None
                return
            self.raw += data
            self.stream.feed(data)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()


@pytest.mark.interop
def test_interop_netlab_in_a_pty_paints_then_quits_on_q_restoring_the_terminal() -> None:
    """The front door: plain `netlab` at 120x40 shows live decoded demo traffic; `q` exits 0 within 2 s."""
    term = Terminal(f"{netlab_command()}; rc=$?; stty -a; echo NETLAB_RC=$rc")
    try:
        term.pump_until(lambda: "traffic" in term.text and "endpoints" in term.text, 60, "the first paint")

        def demo_running() -> bool:
            text = term.text
            return (re.search(r"demo\d+ +(->|<-) ", text) is not None  # decoded demo traffic
                    and re.search(r"[1-9]\d* servers", text) is not None
                    and "finger" in text and "q Quit" in text and "? Help" in text)

        term.pump_until(demo_running, 60, "the demo lab with decoded traffic, and the footer")
        assert "netlab — demo lab" in term.text
        started = time.monotonic()
        term.child.send("q")
        term.pump_until(lambda: re.search(rb"NETLAB_RC=\d+", term.raw) is not None, 30, "the exit")
        elapsed = time.monotonic() - started
        rc = re.search(rb"NETLAB_RC=(\d+)", term.raw)
        assert rc is not None and rc.group(1) == b"0", term.raw[-2000:]
        assert elapsed < 2.0, f"netlab took {elapsed:.2f} s to quit"
        # the terminal is back: cooked mode with echo, main screen, cursor shown, mouse off
        stty = term.raw[term.raw.rfind(b"speed"):].decode("ascii", "replace")
        assert re.search(r"(?<![-\w])icanon\b", stty) and re.search(r"(?<![-\w])echo\b", stty), stty
        assert term.raw.rfind(b"\x1b[?1049l") > term.raw.rfind(b"\x1b[?1049h") > -1
        assert term.raw.rfind(b"\x1b[?25h") > term.raw.rfind(b"\x1b[?25l")
        assert term.raw.rfind(b"\x1b[?1000l") > term.raw.rfind(b"\x1b[?1000h")
    finally:
        term.close()


@pytest.mark.interop
def test_interop_netlab_tui_on_a_lesson_runs_it_and_finishes_a_recording_on_quit(tmp_path: Path) -> None:
    """`netlab tui LESSON` in a pty: the lesson's lab is up, `s` Enter runs the lesson green in the panel,
    `r` Enter records to session.yaml, and `q` ends that recording (said on the terminal) and exits 0."""
    lesson = Path(__file__).parent.parent.parent / "scenarios" / "echo" / "echo-basics.yaml"
    term = Terminal(f"cd {shlex.quote(str(tmp_path))} && {netlab_command()} tui {shlex.quote(str(lesson))};"
                    " echo NETLAB_RC=$?")
    try:
        # a long path is cut to its tail, so the counts and the run's state keep their room
        term.pump_until(lambda: re.search(r"netlab — \S*echo/echo-basics\.yaml .*1 servers", term.text)
                        is not None, 60, "the lesson's lab")
        term.child.send("s")
        term.pump_until(lambda: "run which scenario file?" in term.text, 30, "the run prompt")
        term.child.send("\r")
        term.pump_until(lambda: re.search(r"passed: \d+ steps in", term.text) is not None, 60, "the lesson to pass")
        term.child.send("\x1b")  # back from the panel
        term.pump_until(lambda: "message" in term.text and "scenario passed" in term.text, 30,
                        "the detail panel again, the run's state in the title")
        term.child.send("S")
        term.pump_until(lambda: "scenario: " in term.text and "message" not in term.text, 30, "the panel again")
        term.child.send("\x1b")
        term.pump_until(lambda: "message" in term.text, 30, "the detail panel again")
        term.child.send("r")
        term.pump_until(lambda: "record this session to which scenario file?" in term.text, 30, "the record prompt")
        term.child.send("\r")
        term.pump_until(lambda: "● REC" in term.text, 30, "the recording mark")
        term.child.send("q")
        term.pump_until(lambda: re.search(rb"NETLAB_RC=\d+", term.raw) is not None, 30, "the exit")
        assert re.search(rb"NETLAB_RC=0", term.raw), term.raw[-2000:]
        assert "netlab: recorded 0 steps to session.yaml" in term.text
        assert (tmp_path / "session.yaml").read_text().rstrip().endswith("# end of recording: 0 steps")
    finally:
        term.close()


@pytest.mark.interop
def test_interop_netlab_tui_shows_a_proxy_and_a_held_message_then_releases_it() -> None:
    """`netlab tui --empty` in a pty: commands typed in the bar start an SMTP server, a proxy in front of
    it with a breakpoint on MAIL, and a client; the tree shows the proxy, the title the held MAIL; `h`
    lists it, `r` releases it, and the client's MAIL is answered; Esc, then `q` exits 0."""
    term = Terminal(f"{netlab_command()} tui --empty; echo NETLAB_RC=$?")
    try:
        term.pump_until(lambda: "traffic" in term.text and "? Help" in term.text, 60, "the first paint")
        term.child.send(":")
        term.child.send("serve smtp as mx; proxy smtp --to mx as px; intercept px m:MAIL in; connect smtp px as c;"
                        " send c 'EHLO x'; expect c 250; send c 'MAIL FROM:<a@lab.test>'\r")
        # the tree refreshes on its own timer: wait for its connection row too
        term.pump_until(lambda: "1 held" in term.text and re.search(r"● px :\d+ → :\d+", term.text) is not None
                        and "px#1" in term.text, 60, "the proxy and its connection in the tree, the held MAIL")
        assert "1 proxy" in term.text
        # the line ran: the keys are the views' again, no Esc needed (an Esc then h would read as Alt+h)
        term.pump_until(lambda: "h Held" in term.text, 30, "the footer's h key")
        term.child.send("h")
        term.pump_until(lambda: "held messages 1" in term.text and "MAIL FROM:<a@lab.test>" in term.text
                        and "client → server" in term.text, 30, "the held list")
        term.child.send("r")
        term.pump_until(lambda: "released h1" in term.text and "held messages 0" in term.text, 30, "the release")
        term.child.send("\x1b")
        term.pump_until(lambda: "sender <a@lab.test> ok" in term.text, 30, "the MAIL answered, in the traffic")
        term.child.send("q")
        term.pump_until(lambda: re.search(rb"NETLAB_RC=\d+", term.raw) is not None, 30, "the exit")
        assert re.search(rb"NETLAB_RC=0", term.raw), term.raw[-2000:]
    finally:
        term.close()


@pytest.mark.interop
def test_interop_netlab_tui_log_shows_a_saved_log_and_quits(tmp_path: Path) -> None:
    """`netlab log save` in one process, `netlab tui --log FILE` in a pty: the saved traffic is painted,
    decoded, in a read-only console that `q` leaves with status 0."""
    saved = tmp_path / "events.jsonl"
    script = f"serve echo as e; connect e as c; send c saved-hello; expect c saved-hello; log save {saved}"
    term = Terminal(f"{netlab_command()} exec {shlex.quote(script)} >/dev/null && "
                    f"{netlab_command()} tui --log {shlex.quote(str(saved))}; echo NETLAB_RC=$?")
    try:
        term.pump_until(lambda: "saved log, read-only" in term.text and '"saved-hello\\r\\n"' in term.text, 60,
                        "the saved traffic")
        term.child.send("q")
        term.pump_until(lambda: re.search(rb"NETLAB_RC=\d+", term.raw) is not None, 30, "the exit")
        assert re.search(rb"NETLAB_RC=0", term.raw), term.raw[-2000:]
    finally:
        term.close()
