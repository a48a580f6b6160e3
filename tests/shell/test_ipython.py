"""The extension in a real IPython (and `netlab shell`) on a real pty:
servers answer while IPython sits idle, magics, completion, errors,
held messages edited at the prompt,
Ctrl-C, hooks, and a fast, clean exit."""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from helpers import free_port
from ptyterm import Terminal

pytestmark = pytest.mark.interop

IPYTHON = [sys.executable, "-m", "IPython", "--HistoryManager.enabled=False", "--colors=nocolor",
           "--no-confirm-exit", "--no-autoindent", "--TerminalInteractiveShell.autosuggestions_provider=None"]
# registered before the extension loads, so it runs after the lab's own
# shutdown (atexit is last in, first out) and sees what is left
THREAD_PROBE = ("import atexit, threading; atexit.register(lambda th=threading: print('THREADS-LEFT', "
                "sorted(t.name for t in th.enumerate() if t is not th.main_thread())))")


class IPython:
    """A running IPython, driven cell by cell."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.term = Terminal(argv, env)
        self.count = 1
        self.term.wait_for(r"^In \[1\]:", 90)

    def run(self, code: str, *, timeout: float = 60.0) -> str:
        """Type one line of code, wait for the next prompt; the new output."""
        before = len(self.term.output())
        self.term.line(code)
        self.count += 1
        self.term.wait_for(rf"^In \[{self.count}\]:", timeout)
        return self.term.output()[before:]

    def cell(self, *lines: str, timeout: float = 60.0) -> str:
        """A multi-line cell: each line, then the empty lines that run it
        (IPython ends a cell magic's body at a second empty line)."""
        before = len(self.term.output())
        for line in lines:
            self.term.line(line)
        for _ in range(2 if lines[0].startswith("%%") else 1):
            self.term.line("")
        self.count += 1
        self.term.wait_for(rf"^In \[{self.count}\]:", timeout)
        return self.term.output()[before:]


@pytest.fixture
def ipython(home: dict[str, str]) -> Iterator[IPython]:
    shell = IPython([*IPYTHON, "--no-banner"], {**home, "PROMPT_TOOLKIT_NO_CPR": "1"})
    try:
        yield shell
    finally:
        shell.term.close()


def echo_of(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


def test_interop_ipython_serves_while_idle_completes_and_exits_fast(ipython: IPython) -> None:
    """%load_ext lab; a server answers a socket client while IPython idles;
    %%netlab blocks, await, completion, pretty log; exit < 1 s, no thread left."""
    ipy = ipython
    ipy.run(THREAD_PROBE)
    ipy.run("%load_ext lab")
    port = free_port()
    out = ipy.run(f"%netlab serve echo --port {port} as mx")
    assert f"<Server mx echo tcp://127.0.0.1:{port} listening, 0 connections>" in out
    # IPython is idle at its prompt now: the reactor thread answers anyway
    assert echo_of(port, b"while idle\r\n") == b"while idle\r\n"
    out = ipy.run("mx")
    assert "1 accepted, 0 refused" in out, out

    out = ipy.cell("%%netlab", "serve echo as e2", "connect echo e2 as c2", 'send c2 "ping"', "expect c2 ping")
    assert "e2: echo listening on" in out and "c2: echo connected to" in out
    assert 'c2 -> "ping\\r\\n"' in out and 'c2 <- "ping\\r\\n"' in out
    out = ipy.run('c = %netlab connect echo mx')
    out = ipy.run('c.send(b"hello\\r\\n"); c.expect(b"hello")')
    assert "Data(raw=b'hello\\r\\n')" in out
    out = ipy.run('await lab.aconnect("echo", "e2", name="c9")')
    assert re.search(r"<Client c9 echo -> tcp://127\.0\.0\.1:\d+ open>", out)
    out = ipy.run("%netlab log -n 5")
    assert re.search(r"c1\s+<-\s+\"hello\\r\\n\"", out) and "Out[" in out

    # completion: command names, protocols, endpoint names
    ipy.term.send("%netlab se\t")
    ipy.term.wait_for(r"^\s+send\s*$\n^\s+serve\s*$")
    ipy.term.send("\x15%netlab serve ec\t")
    ipy.term.wait_for(r"In \[\d+\]: %netlab serve echo")
    ipy.term.send("\x15%netlab stop m\t")
    ipy.term.wait_for(r"In \[\d+\]: %netlab stop mx")
    ipy.term.send("\x15")
    ipy.term.wait_for(rf"In \[{ipy.count}\]:\s*$")

    # exit with connections open at both ends: an outside peer and lab clients
    hold = socket.create_connection(("127.0.0.1", port), timeout=10)
    hold.sendall(b"x")
    assert hold.recv(10) == b"x"
    start = time.monotonic()
    ipy.term.line("exit")
    elapsed = ipy.term.wait_exit(30)
    print(f"exit took {elapsed:.3f} s (from Enter; {time.monotonic() - start:.3f} s measured here)")
    output = ipy.term.output()
    assert "THREADS-LEFT []" in output, output[-2000:]
    assert "Traceback" not in output
    assert ipy.term.child.exitstatus == 0
    assert elapsed < 1.0, f"exit took {elapsed:.2f} s"
    assert hold.recv(10) == b""  # the lab closed the outside peer's connection on the way out
    hold.close()


def test_interop_ipython_errors_are_one_line_and_ctrl_c_cancels_expect(ipython: IPython) -> None:
    """Bad commands: one UsageError line with a hint; Ctrl-C during a blocking
    expect returns to the prompt and the reactor keeps serving."""
    ipy = ipython
    ipy.run("%load_ext lab")
    out = ipy.run("%netlab sned c hi")
    assert "UsageError: `sned c hi`: unknown command 'sned' — did you mean 'send'?" in out
    out = ipy.run("%netlab serve nosuchproto")
    assert re.search(r"UsageError: .*unknown protocol 'nosuchproto' — ", out)
    out = ipy.run("%netlab expect ghost hi")
    assert "UsageError:" in out and "no endpoint named 'ghost'" in out
    out = ipy.cell("%%netlab", "serve echo as e", "sned x")
    assert "UsageError: line 2: `sned x`" in out and "e: echo listening" not in out  # parsed first
    out = ipy.run("%netlab")
    assert "commands (`help COMMAND`" in out
    assert "Traceback" not in ipy.term.output()

    port = free_port()
    ipy.run(f"%netlab serve echo --port {port} as mx")
    # a peer the test controls, so it knows when the client is about to wait
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer_port = listener.getsockname()[1]
        ipy.run(f"%netlab connect echo 127.0.0.1:{peer_port} as w")
        listener.settimeout(30)
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(30)
            before = len(ipy.term.output())
            ipy.term.line('w.send(b"ready\\r\\n"); get_ipython().run_line_magic("netlab", "expect w zzz --timeout 60")')
            assert peer.recv(100) == b"ready\r\n"
            time.sleep(0.5)  # the magic is now blocked in expect (no event marks the moment)
            started = time.monotonic()
            ipy.term.send("\x03")
            ipy.count += 1
            ipy.term.wait_for(rf"^In \[{ipy.count}\]:", 30)
            assert time.monotonic() - started < 10
            out = ipy.term.output()[before:]
            assert "interrupted: `expect w zzz --timeout 60` cancelled; the lab keeps running" in out
            assert "Traceback" not in out and "KeyboardInterrupt" not in out
            # the reactor kept serving, and the client still works
            assert echo_of(port, b"after ^C\r\n") == b"after ^C\r\n"
            peer.sendall(b"zzz\r\n")
            out = ipy.run("%netlab expect w zzz")
            assert "Data(raw=b'zzz\\r\\n')" in out
    # Ctrl-C in plain Python code: IPython's usual KeyboardInterrupt, the lab carries on
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(30)
        ipy.run(f'u = lab.connect("echo", "127.0.0.1:{listener.getsockname()[1]}")')
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(30)
            before = len(ipy.term.output())
            ipy.term.line('u.send(b"ready\\r\\n"); u.expect(b"zzz", timeout=60)')
            assert peer.recv(100) == b"ready\r\n"
            time.sleep(0.5)
            ipy.term.send("\x03")
            ipy.count += 1
            ipy.term.wait_for(rf"^In \[{ipy.count}\]:", 30)
            out = ipy.term.output()[before:]
            # one line, not threading's internals
            assert "KeyboardInterrupt: the lab call was cancelled; the lab keeps running" in out, out
            assert "Traceback" not in out and "threading" not in out, out
            assert echo_of(port, b"after ^C again\r\n") == b"after ^C again\r\n"
    out = ipy.run('lab.connect("echo", mx, name="v").expect(b"never", timeout=0.5)')
    assert re.search(r"LabTimeout: v: expected \"never\" within 0\.5 s; nothing arrived", out), out


def test_interop_ipython_hook_changes_behaviour_and_its_errors_are_shown(ipython: IPython) -> None:
    """mx.on(...) changes a live server; a hook that raises is shown at the
    prompt and logged as an event, and the server keeps serving."""
    ipy = ipython
    ipy.run("%load_ext lab")
    port = free_port()
    ipy.run(f"%netlab serve echo --port {port} as mx")
    ipy.cell("def shout(msg, conn):",
             "    if b'bad' in msg.raw:",
             "        raise ValueError('no bad words')",
             "    conn.send_raw(msg.raw.upper())")
    ipy.run('mx.on("data", shout)')
    assert echo_of(port, b"quiet\r\n") == b"QUIET\r\n"
    # IPython sits idle at In [N]; the hook raises on the reactor thread
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"bad\r\n")
        ipy.term.wait_for(r"netlab: error on mx#\d+: hook shout raised ValueError: no bad words", 30)
        s.sendall(b"good\r\n")
        assert s.recv(100) == b"GOOD\r\n"  # same connection, still served
    assert echo_of(port, b"again\r\n") == b"AGAIN\r\n"
    out = ipy.run("%netlab log -n 50 --grep raised")
    assert "hook shout raised ValueError: no bad words" in out
    out = ipy.run('mx.off(); [e.kind.value for e in lab.log.tail(200) if "shout" in e.summary]')
    assert "['error']" in out
    assert echo_of(port, b"plain\r\n") == b"plain\r\n"
    # unloading stops the lab the extension started; loading again starts a fresh one
    ipy.run("%unload_ext lab")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    out = ipy.run("%netlab ls")
    assert "UsageError: Line magic function `%netlab` not found" in out
    ipy.run("%load_ext lab")
    out = ipy.run("%netlab ls")
    assert "the lab is empty; try `serve echo`" in out
    assert "Traceback" not in ipy.term.output()


def test_interop_netlab_shell_has_the_lab_ready(home: dict[str, str]) -> None:
    """`netlab shell` is IPython with the extension loaded and `lab` bound."""
    shell = IPython([sys.executable, "-m", "lab", "shell", "--", "--HistoryManager.enabled=False",
                     "--colors=nocolor", "--no-confirm-exit"], {**home, "PROMPT_TOOLKIT_NO_CPR": "1"})
    try:
        shell.term.wait_for(r"netlab shell: `lab` is a running Lab")
        shell.run(THREAD_PROBE)
        port = free_port()
        out = shell.run(f"%netlab serve echo --port {port} as mx")
        assert f"<Server mx echo tcp://127.0.0.1:{port} listening" in out
        assert echo_of(port, b"hi\r\n") == b"hi\r\n"
        out = shell.run("lab")
        assert re.search(r"<Lab 1 servers, 0 clients, \d+ events>", out) and "NAME" in out
        shell.term.line("exit")
        elapsed = shell.term.wait_exit(30)
        print(f"netlab shell exit took {elapsed:.3f} s")
        output = shell.term.output()
        assert "THREADS-LEFT []" in output and "Traceback" not in output
        assert shell.term.child.exitstatus == 0
    finally:
        shell.term.close()


def test_interop_ipython_holds_and_edits_a_message_in_flight(ipython: IPython) -> None:
    """A proxy and an intercept from the magics; the held message is a
    Python object, edited at the prompt while a real socket client waits."""
    ipy = ipython
    ipy.run("%load_ext lab")
    ipy.run("%netlab serve smtp as mx")
    port = free_port()
    ipy.run(f"%netlab proxy smtp --to mx --listen {port} as px")
    out = ipy.run("%netlab intercept px m:MAIL in")
    assert "holding px: m:MAIL in" in out
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.settimeout(30)
        reader = s.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        s.sendall(b"HELO shell.lab.test\r\nMAIL FROM:<carol@lab.test>\r\n")
        assert reader.readline().startswith(b"250 ")
        out = ipy.run("h, = lab.wait_held(); h")
        assert "<Held h1 px#1 <- MAIL FROM:<carol@lab.test>>" in out
        out = ipy.run("%netlab held")
        assert re.search(r"h1\s+px#1\s+<- MAIL FROM:<carol@lab.test>", out), out
        ipy.run('h.edit(arg="FROM:<mallory@lab.test>")')
        assert reader.readline() == b"250 2.1.0 sender <mallory@lab.test> ok\r\n"
    out = ipy.run("%netlab log -n 30 -e px --grep edited")
    assert "edited h1: MAIL FROM:<carol@lab.test> -> MAIL FROM:<mallory@lab.test>" in out
    assert "Traceback" not in ipy.term.output()
