"""A real pseudo-terminal driven by pexpect, read back through pyte (a
terminal emulator) so tests see exact screen rows, not escape sequences.

A reader thread feeds the emulator continuously and answers cursor
position requests the way a real terminal does, so prompt_toolkit draws
its bottom toolbar as it would for a person.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence

import pexpect
import pyte

ROWS, COLS = 40, 140
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


class _Screen(pyte.Screen):
    def __init__(self, cols: int, rows: int, answer: object) -> None:
        super().__init__(cols, rows)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data)  # type: ignore[operator]


class Terminal:
    """A program running in a pty of ``rows`` x ``cols``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, rows: int = ROWS,
                 cols: int = COLS) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        full_env.update(TERM="xterm", **env)
        self.child = pexpect.spawn(argv[0], list(argv[1:]), env=full_env, encoding="utf-8",
                                   codec_errors="replace", dimensions=(rows, cols), timeout=5)
        self._lock = threading.Lock()
        self.screen = _Screen(cols, rows, self.child.send)
        self.stream = pyte.Stream(self.screen)
        self.transcript: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.child.read_nonblocking(65536, 0.05)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                return
            with self._lock:
                self.transcript.append(chunk)
                self.stream.feed(chunk)

    @property
    def rows(self) -> list[str]:
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows)

    def cursor_row(self) -> str:
        with self._lock:
            return self.screen.display[self.screen.cursor.y].rstrip()

    def wait_cursor_row(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the cursor's row reads ``text`` (redraws move it briefly)."""
        deadline = time.monotonic() + timeout
        while self.cursor_row() != text:
            if time.monotonic() > deadline:
                raise AssertionError(f"cursor row is {self.cursor_row()!r}, not {text!r}; screen:\n{self.text()}")
            time.sleep(0.02)

    def output(self) -> str:
        """Everything the program wrote, escape sequences removed."""
        with self._lock:
            return _ESCAPES.sub("", "".join(self.transcript))

    def _wait(self, pattern: str, timeout: float, source: str) -> re.Match[str]:
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text() if source == "screen" else self.output())
            if m:
                return m
            if time.monotonic() > deadline or not self.child.isalive():
                self._reader.join(0.5)
                m = rx.search(self.text() if source == "screen" else self.output())
                if m:
                    return m
                why = "exited" if not self.child.isalive() else f"waited {timeout} s"
                raise AssertionError(f"{source} never showed {pattern!r} ({why}); screen:\n{self.text()}")
            time.sleep(0.02)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the screen shows ``pattern`` (a regex, multiline)."""
        return self._wait(pattern, timeout, "screen")

    def wait_output(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the whole transcript (scrolled-off lines too) matches."""
        return self._wait(pattern, timeout, "output")

    def send(self, text: str) -> None:
        self.child.send(text)

    def line(self, text: str) -> None:
        """Type ``text`` and press Enter."""
        self.child.send(text + "\r")

    def wait_exit(self, timeout: float = 30.0) -> float:
        """Wait for the program to end; returns the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; screen:\n{self.text()}")
            time.sleep(0.005)
        elapsed = time.monotonic() - start
        self._reader.join(5)
        return elapsed

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self._reader.join(5)
        self.child.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
