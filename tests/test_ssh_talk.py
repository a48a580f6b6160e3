"""`netlab talk ssh`: client options with -o, typed lines into the lab
console's shell and its answers back, on a terminal and from a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pexpect
import pyte

from lab import Lab

PASSWORD = "s3cret-enough"
NETLAB = [sys.executable, "-m", "lab"]


def test_talk_over_a_pipe(lab: Lab) -> None:
    srv = lab.serve("ssh", name="sshd", password=PASSWORD)
    env = dict(os.environ, TALK_PW=PASSWORD)
    done = subprocess.run([*NETLAB, "talk", "ssh", f"127.0.0.1:{srv.port}", "-o", "password_env=TALK_PW"],
                          input="ls\nquit\n", capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "netlab console over SSH" in done.stdout
    assert "sshd" in done.stdout and "Goodbye." in done.stdout


class Screen:
    """A program on a pty, read back through pyte (prompt_toolkit draws
    with escape sequences): wait for text on the screen."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.screen = pyte.Screen(120, 40)
        self.stream = pyte.Stream(self.screen)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text(), re.MULTILINE):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the screen:\n{self.text()}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, 0.1))
            except pexpect.TIMEOUT:
                continue


def test_talk_on_a_terminal(lab: Lab) -> None:
    """The greeting, a typed `ls` answered by the console, /quit."""
    srv = lab.serve("ssh", name="sshd", password=PASSWORD)
    env = dict(os.environ, TALK_PW=PASSWORD, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    child = pexpect.spawn(NETLAB[0], [*NETLAB[1:], "talk", "ssh", f"127.0.0.1:{srv.port}", "-o",
                                      "password_env=TALK_PW"], env=env, encoding="utf-8", timeout=60,
                          dimensions=(40, 120))
    term = Screen(child)
    try:
        term.wait_for(r"^netlab console over SSH")
        term.wait_for(r"^ssh>")
        child.sendline("ls")
        term.wait_for(r"^sshd\s+server\s+ssh")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_a_bad_option_is_one_line(lab: Lab) -> None:
    done = subprocess.run([*NETLAB, "talk", "ssh", "127.0.0.1:22", "-o", "password"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "NAME=VALUE" in done.stderr
