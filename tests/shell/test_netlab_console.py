"""`netlab console` on a real pty: live events above a half-typed line,
completion, the toolbar, persistent history, Ctrl-C, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from ptyterm import Terminal

from lab import Lab
from lab.commands import Interpreter
from lab.shell.console import CommandCompleter, Rate, data_dir

CONSOLE = [sys.executable, "-m", "lab", "console"]


@pytest.fixture
def console(home: dict[str, str]) -> Iterator[Terminal]:
    term = Terminal(CONSOLE, home)
    try:
        term.wait_for(r"^netlab>", 60)
        yield term
    finally:
        term.close()


@pytest.mark.interop
def test_interop_console_prints_events_above_a_half_typed_line(console: Terminal) -> None:
    """An event arriving while the user types appears above the prompt; the
    half-typed line stays intact and runs when finished."""
    port = free_port()
    console.line(f"serve echo --port {port} as e")
    console.wait_for(rf"^e: echo listening on tcp://127\.0\.0\.1:{port}")
    console.line("connect e as c")
    console.wait_for(r"^c: echo connected to")
    console.send("send c hel")
    console.wait_for(r"^netlab> send c hel$")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"from outside\r\n")
        assert s.recv(100) == b"from outside\r\n"
    # the events land above the prompt, which is redrawn with the half-typed text
    console.wait_for(r'e#2\s+->\s+"from outside\\r\\n"\n(^.*\n)*^.*e#2\s+close .*\n(^.*\n)*^netlab> send c hel$')
    console.wait_cursor_row("netlab> send c hel")
    console.line("lo")
    console.wait_for(r'^c -> "hello\\r\\n"')
    console.wait_for(r'c\s+<-\s+"hello\\r\\n"')


@pytest.mark.interop
def test_interop_console_completion_toolbar_and_errors(console: Terminal) -> None:
    """Tab completes commands and names; the toolbar counts endpoints,
    connections and events/s; a typo is one line with a hint."""
    console.send("se\t")
    console.wait_for(r"^\s+send\s*$\n^\s+serve\s*$")
    console.send("\x15serve ec\t")
    console.wait_for(r"^netlab> serve echo")
    console.line(" as e")
    console.wait_for(r"^e: echo listening")
    console.send("connect \t")
    console.wait_for(r"^\s+echo\s*$\n^\s+finger\s*$")  # protocols and the server e
    console.send("\x15connect echo \t")
    console.wait_for(r"^netlab> connect echo e")
    console.line(" as c")
    console.wait_for(r"^c: echo connected")
    console.wait_for(r"1 servers, 1 clients \| 2 connections \| \d+ events/s \| \d+ events")
    console.line("sned c hi")
    console.wait_for(r"^error: `sned c hi`: unknown command 'sned' — did you mean 'send'\?$")
    console.line("send nobody hi")
    console.wait_for(r"^error: `send nobody hi`: no endpoint named 'nobody' — ")
    assert "Traceback" not in console.output()
    console.line("exit")
    assert console.wait_exit() < 10
    assert console.child.exitstatus == 0


@pytest.mark.interop
def test_interop_console_ctrl_c_cancels_expect_and_the_lab_keeps_serving(console: Terminal) -> None:
    """Ctrl-C during a blocking expect returns to the prompt; servers go on."""
    port = free_port()
    console.line(f"serve echo --port {port} as e; connect e as c")
    console.wait_for(r"^c: echo connected")
    # a peer the test controls: "ready" arriving means the statement is running
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(30)
        console.line(f"connect echo 127.0.0.1:{listener.getsockname()[1]} as w")
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(30)
            console.wait_for(r"^w: echo connected")
            console.line("send w ready; expect w never --timeout 60")
            assert peer.recv(100) == b"ready\r\n"
            time.sleep(0.2)  # from the send to the wait inside one task: no event marks it
            started = time.monotonic()
            console.send("\x03")
            console.wait_for(r"interrupted; the lab keeps running")
            assert time.monotonic() - started < 10
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"still here\r\n")
        assert s.recv(100) == b"still here\r\n"
    console.line("send c ok; expect c ok")
    console.wait_for(r'^c <- "ok\\r\\n"')
    console.send("\x04")
    console.wait_exit()
    assert console.child.exitstatus == 0


@pytest.mark.interop
def test_interop_console_history_persists_in_the_data_dir(home: dict[str, str]) -> None:
    """History lives in $XDG_DATA_HOME/netlab and comes back next session."""
    with Terminal(CONSOLE, home) as term:
        term.wait_for(r"^netlab>")
        term.line("help serve")
        term.wait_for(r"^usage: serve")
        term.line("exit")
        term.wait_exit()
    history = os.path.join(home["XDG_DATA_HOME"], "netlab", "console_history")
    assert "help serve" in Path(history).read_text(encoding="utf-8")
    with Terminal(CONSOLE, home) as term:
        term.wait_for(r"^netlab>")
        term.send("\x1b[A")  # Up arrow: the last line typed
        term.wait_for(r"^netlab> exit$")
        term.send("\x1b[A")
        term.wait_for(r"^netlab> help serve$")
        term.send("\x15exit\r")
        term.wait_exit()


def test_console_reads_statements_from_a_pipe(home: dict[str, str]) -> None:
    """Without a terminal the console runs piped statements, one a line."""
    script = "serve echo as e\nconnect e as c\nsend c hi\nexpect c hi\nsned\n"
    out = subprocess.run([*CONSOLE, "--events", "none"], input=script, capture_output=True, text=True,
                         timeout=60, env={**os.environ, **home})
    assert 'c <- "hi\\r\\n"' in out.stdout
    assert "error: `sned`: unknown command 'sned'" in out.stdout
    assert out.returncode == 1


def test_completer_and_rate_in_memory(lab: Lab) -> None:
    """The completer offers interpreter words plus exit; Rate counts per second."""
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    lab.serve("echo", name="mx")
    completer = CommandCompleter(Interpreter(lab))
    words = [c.text for c in completer.get_completions(Document("stop m"), CompleteEvent())]
    assert words == ["mx"]
    words = [c.text for c in completer.get_completions(Document("e"), CompleteEvent())]
    assert words == ["edit", "expect", "exit"]
    rate = Rate(window=3.0)
    assert rate.update(0, now=100.0) == 0.0
    assert rate.update(50, now=101.0) == 50.0
    assert rate.update(150, now=102.0) == 75.0


def test_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    """$XDG_DATA_HOME wins; otherwise ~/.local/share."""
    monkeypatch.setenv("XDG_DATA_HOME", "/x/data")
    assert str(data_dir()) == "/x/data/netlab"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert str(data_dir()) == "/home/u/.local/share/netlab"
