"""The netlab command: protocols, serve, exec, demo, help, run as real processes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

from helpers import Proc

NETLAB = [sys.executable, "-m", "lab"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_protocols_lists_the_wire_protocols() -> None:
    """`netlab protocols` is a table with name, transports, port and description."""
    out = run("protocols")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    for name in ("echo", "discard", "chargen", "daytime", "time", "qotd", "finger"):
        assert name in rows
    assert re.search(r"echo\s+tcp/udp\s+7\s+RFC 862", rows["echo"])
    assert re.search(r"finger\s+tcp\s+79\s+RFC 1288", rows["finger"])
    assert out.stderr == ""
    data = json.loads(run("protocols", "--json").stdout)
    assert {"name": "time", "transports": ["tcp", "udp"], "port": 37} .items() <= next(
        d for d in data if d["name"] == "time").items()


def test_serve_prints_decoded_traffic_and_a_summary_on_ctrl_c() -> None:
    """`netlab serve echo` logs open, in, out, close, and exits 0 on SIGINT with a summary."""
    with Proc([*NETLAB, "serve", "echo", "--port", "0"]) as proc:
        line = proc.wait_for(r"listening on tcp://127\.0\.0\.1:\d+", stream="stderr")
        port = int(re.search(r":(\d+)", line.rsplit("127.0.0.1", 1)[1]).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"hello\r\n")
            assert s.recv(100) == b"hello\r\n"
        proc.wait_for(r"echo#1\s+open\s+127\.0\.0\.1:\d+")
        proc.wait_for(r'echo#1\s+<-\s+"hello\\r\\n"')
        proc.wait_for(r'echo#1\s+->\s+"hello\\r\\n"')
        proc.wait_for(r"echo#1\s+close")
        assert proc.stop(signal.SIGINT) == 0
        assert re.search(r"stopped echo: 1 connections \(0 refused\), \d+ events", proc.output())


def test_serve_json_and_protocol_help() -> None:
    """--json prints JSON lines; `serve finger --help` lists finger's own options."""
    with Proc([*NETLAB, "serve", "daytime", "--json"]) as proc:
        line = proc.wait_for(r'"kind": "listen"')
        port = int(json.loads(line)["summary"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.recv(100)
        json.loads(proc.wait_for(r'"kind": "msg"'))
        assert proc.stop(signal.SIGTERM) == 0
    out = run("serve", "finger", "--help")
    assert out.returncode == 0 and "--user" in out.stdout and "finger options" in out.stdout


def test_serve_mistakes_are_one_line() -> None:
    """An unknown protocol or a taken port is one line on stderr and a non-zero exit."""
    out = run("serve", "ehco")
    assert out.returncode == 2 and out.stderr.strip() == (
        "netlab: unknown protocol 'ehco' — did you mean 'echo'?")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = run("serve", "echo", "--port", str(taken.getsockname()[1]))
    assert out.returncode == 1 and "cannot listen" in out.stderr and "Traceback" not in out.stderr


def test_non_loopback_bind_warns() -> None:
    """Binding beyond loopback is allowed when asked for, with a warning."""
    with Proc([*NETLAB, "serve", "echo", "--host", "0.0.0.0"]) as proc:
        proc.wait_for(r"warning: bound to 0\.0\.0\.0", stream="stderr")
        assert proc.stop() == 0


def test_exec_runs_a_script_and_reports_failures() -> None:
    """`netlab exec` prints each result; a failing statement exits 1, a bad script 2."""
    ok = run("exec", "serve echo; connect echo1 as c; send c hi; expect c hi")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == 'c <- "hi\\r\\n"'
    fail = run("exec", "serve echo; connect echo1 as c; expect c nothing -t 0.2")
    assert fail.returncode == 1 and "expected 'nothing'" in fail.stderr
    bad = run("exec", "sned x")
    assert bad.returncode == 2 and "did you mean 'send'" in bad.stderr


def test_demo_shows_traffic_and_stops_by_itself() -> None:
    """`netlab demo --duration` starts servers and clients that talk, then exits 0."""
    out = run("demo", "--duration", "4")
    assert out.returncode == 0, out.stderr
    assert "echo listening" in out.stdout
    assert re.search(r"demo\d+\s+<-", out.stdout)


def test_help_does_not_import_front_ends() -> None:
    """`netlab --help` stays light: no Textual, no IPython."""
    code = ("import sys\nfrom lab.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('textual', 'IPython', 'prompt_toolkit') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("[]")
    assert "serve" in out.stdout and "protocols" in out.stdout


def test_serve_without_a_protocol_lists_them() -> None:
    """`netlab serve` alone says which protocols exist."""
    out = run("serve")
    assert out.returncode == 2 and "one of: chargen, daytime" in out.stderr


def test_exec_into_a_closed_pipe_stops_quietly() -> None:
    """`netlab exec --log ... | head -1`: no traceback when the reader goes."""
    proc = subprocess.Popen([*NETLAB, "exec", "--log", "serve chargen as cg; connect cg as c; call c read 2000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 1)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_mistyped_command_gets_a_suggestion() -> None:
    out = run("srve", "echo")
    assert out.returncode == 2
    assert "unknown command 'srve': did you mean 'serve'?" in out.stderr


def test_a_missing_uvloop_is_one_line() -> None:
    """`--loop uvloop` without uvloop: the reason and the fix, no traceback."""
    code = ("import sys; sys.modules['uvloop'] = None; from lab.cli import main;"
            " sys.exit(main(['exec', '--loop', 'uvloop', 'ls']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "netlab: error: uvloop is not installed — pip install 'netlab[uvloop]'"


def test_exec_prints_each_result_as_it_completes_and_ctrl_c_interrupts() -> None:
    """The first statement's line arrives while the second still waits;
    Ctrl-C then says "interrupted" and exits 130 at once."""
    import signal

    proc = subprocess.Popen([*NETLAB, "exec", "serve echo as e; wait 60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("e: echo listening on tcp://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "netlab: interrupted"


def test_log_prints_a_saved_log_and_converts_it(tmp_path) -> None:
    """`netlab log FILE` prints the events with log's filters, --pcap
    converts them; a file that is not a log is one line and exit 2."""
    from lab.eventlog import Direction, EventKind, EventLog
    from lab.protocols._framing import Line

    log = EventLog()
    log.emit(EventKind.OPEN, "e", "e#1", text="127.0.0.1:5000 -> 127.0.0.1:7000")
    log.emit(EventKind.MESSAGE, "e", "e#1", Direction.IN, "echo", None, b"hello\r\n", Line(raw=b"hello\r\n"))
    log.emit(EventKind.MESSAGE, "e", "e#1", Direction.OUT, "echo", None, b"hello\r\n", Line(raw=b"hello\r\n"))
    path = tmp_path / "s.jsonl"
    log.export_jsonl(path)
    out = run("log", str(path))
    assert out.returncode == 0, out.stderr
    assert re.search(r'e#1\s+<-\s+"hello\\r\\n"', out.stdout) and len(out.stdout.splitlines()) == 3
    assert len(run("log", str(path), "--out", "--json").stdout.splitlines()) == 1
    conv = run("log", str(path), "--pcap", str(tmp_path / "s.pcapng"))
    assert conv.returncode == 0 and "wrote 5 packets, 1 connections, 14 bytes" in conv.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"seq": 1}\n')
    out = run("log", str(bad))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and f"{bad}:1: 'time' is missing" in out.stderr
