"""The pieces behind the magics, in memory: statements, binding names,
completion contexts, live error lines, reprs; and what stays unimported."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from helpers import wait_until
from IPython.core.completer import CompletionContext
from IPython.core.error import UsageError

from lab import EventSlice, Lab
from lab.endpoints import Client, Server
from lab.eventlog import EventKind
from lab.reprs import html_of, text_of
from lab.shell.extension import ErrorPrinter, ShellSession


class FakeShell:
    """The two things a session uses of an IPython shell."""

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}

    def push(self, variables: dict[str, Any]) -> None:
        self.user_ns.update(variables)


@pytest.fixture
def session(lab: Lab) -> ShellSession:
    return ShellSession(FakeShell(), lab, owns_lab=False)  # type: ignore[arg-type]


def context(text: str, token: str) -> CompletionContext:
    lines = text.split("\n")
    return CompletionContext(token=token, full_text=text, cursor_position=len(lines[-1]),
                             cursor_line=len(lines) - 1, limit=None)


def words(result: dict[str, Any]) -> list[str]:
    return [c.text for c in result["completions"]]


def test_line_returns_live_objects_and_binds_names(session: ShellSession, capsys: pytest.CaptureFixture[str]) -> None:
    """serve/connect return the endpoint and bind it; ls/send print text."""
    srv = session.run("serve echo as mx")
    assert isinstance(srv, Server) and session.shell.user_ns["mx"] is srv
    client = session.run("connect mx as c")
    assert isinstance(client, Client) and session.shell.user_ns["c"] is client
    assert session.run("send c hi") is None
    assert capsys.readouterr().out == 'c -> "hi\\r\\n"\n'
    msg = session.run("expect c hi")
    assert msg.raw == b"hi\r\n"
    events = session.run("log -n 3")
    assert isinstance(events, EventSlice) and len(events) == 3
    assert session.run("log -n 1 --json") is None
    assert '"kind": "msg"' in capsys.readouterr().out
    session.shell.user_ns["taken"] = 42
    session.run("serve echo as taken")
    assert session.shell.user_ns["taken"] == 42
    assert "'taken' is taken by a Python variable; use lab['taken']" in capsys.readouterr().err


def test_cell_prints_every_result_and_mistakes_are_usage_errors(session: ShellSession,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A cell prints each result; a typo anywhere stops it before it runs."""
    assert session.run("serve echo as e\nconnect e as c\nsend c x\nexpect c x", cell=True) is None
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("e: echo listening on") and out[-1] == 'c <- "x\\r\\n"'
    with pytest.raises(UsageError, match=r"^line 2: `sned`: unknown command 'sned' — did you mean 'send'\?$"):
        session.run("serve echo as e2\nsned", cell=True)
    assert "e2" not in session.lab
    with pytest.raises(UsageError, match=r"^line 2: `expect c nothing --timeout 0.1`: c: expected"):
        session.run("send c y\nexpect c nothing --timeout 0.1", cell=True)
    with pytest.raises(UsageError, match="no endpoint named 'ghost'"):
        session.run("stop ghost")


def test_completion_in_lines_assignments_and_cells(session: ShellSession) -> None:
    """Commands, protocols, endpoint names and options complete; other
    input is left to IPython's own matchers."""
    session.run("serve echo as mx")
    assert words(session.complete(context("%netlab se", "se"))) == ["send", "serve"]
    assert words(session.complete(context("%netlab serve ec", "ec"))) == ["echo"]
    assert words(session.complete(context("c = %netlab connect echo m", "m"))) == ["mx"]
    assert "--port" in words(session.complete(context("%netlab serve echo --p", "--p")))
    assert words(session.complete(context("%%netlab\nserve echo\nsto", "sto"))) == ["stop"]
    assert words(session.complete(context("%netlab send x; sto", "sto"))) == ["stop"]
    result = session.complete(context("%netlab se", "se"))
    assert result["suppress"] is True
    plain = session.complete(context("print(se", "se"))
    assert plain == {"completions": [], "suppress": False}
    assert session.lab._ipython_key_completions_() == ["mx"]  # lab["<Tab>


def test_error_printer_shows_hook_errors_once_per_burst(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A hook that raises becomes one stderr line; a burst is capped."""
    printer = ErrorPrinter(lab)
    srv = lab.serve("echo", name="mx")

    def boom(msg: Any, conn: Any) -> None:
        raise RuntimeError("kaboom")

    srv.on("data", boom)
    c = lab.connect("echo", srv, name="c")
    c.send(b"x")

    def stderr_until(text: str) -> str:
        seen = ""

        def arrived() -> bool:
            nonlocal seen
            seen += capsys.readouterr().err
            return text in seen

        wait_until(arrived, what=repr(text))
        return seen

    err = stderr_until("kaboom")
    assert err == "netlab: error on mx#1: hook boom raised RuntimeError: kaboom (at test_shell_session.py:" \
        f"{boom.__code__.co_firstlineno + 1} in boom)\n"

    async def burst() -> None:
        for i in range(15):
            lab.log.emit(EventKind.ERROR, endpoint="mx", text=f"error {i}")

    lab.reactor.call(burst())
    err = stderr_until("more errors")
    lines = err.splitlines()
    assert len(lines) == 11 and lines[-1] == "netlab: ... and 5 more errors (`%netlab log` shows them)"
    printer.close()


def test_reprs_text_and_html(lab: Lab) -> None:
    """Lab, server, client, connection and event slices render as text and HTML."""
    srv = lab.serve("echo", name="mx")
    c = lab.connect("echo", srv, name="c")
    c.send(b"<b>hi</b>\r\n")
    c.expect(b"hi")
    srv.on("data", lambda msg, conn: None, replace=False)
    text = text_of(lab)
    assert text.splitlines()[0] == repr(lab) and "NAME" in text and "mx" in text
    assert "hooks: data: <lambda> (observes)" in text_of(srv)
    assert "1 accepted, 0 refused" in text_of(srv)
    assert text_of(c).splitlines()[1].startswith("  c open")
    html = html_of(lab.log.tail(10))
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>" not in html  # escaped
    assert html_of(srv).count("<tr>") == 2  # heading + one connection
    conn = next(iter(srv.connections.values()))
    assert conn._repr_html_().startswith('<table class="netlab"')
    assert text_of(EventSlice()) == "(no events)"
    assert repr(lab.log.tail(2)) == "<2 events>"
    tail = lab.log.tail(5)
    assert isinstance(tail[1:], EventSlice) and tail[1:][0] is tail[1] and len(tail[-2:]) == 2


def test_import_lab_and_netlab_help_import_no_front_end() -> None:
    """`import lab` (extension hooks included) and `netlab --help` stay light."""
    code = ("import sys, lab, lab.cli, lab.shell; lab.load_ipython_extension; lab.cli.build_parser(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('IPython', 'prompt_toolkit', 'textual')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_settled_work_reports_outcomes_and_cancels_cleanly(lab: Lab) -> None:
    """Outcomes come back as values; work cancelled at once leaves nothing
    un-awaited (warnings are errors here) and the reactor keeps going."""
    import asyncio
    import gc

    from lab.shell._settle import settled, unwrap

    async def fail() -> None:
        raise ValueError("nope")

    result, error = lab.reactor.submit(settled(fail)).result(10)
    assert result is None and isinstance(error, ValueError)
    with pytest.raises(ValueError, match="nope"):
        unwrap((None, error))
    for _ in range(20):
        lab.reactor.submit(settled(lambda: asyncio.sleep(10))).cancel()
    gc.collect()
    assert unwrap(lab.reactor.submit(settled(lambda: asyncio.sleep(0, "ok"))).result(10)) == "ok"
