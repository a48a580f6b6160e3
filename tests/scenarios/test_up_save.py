"""`save FILE` writes the live lab as a lab file; `netlab up FILE` serves it
again until Ctrl-C or SIGTERM, with the traffic log and a summary."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Proc

from lab import CommandError, Lab
from lab.commands import Interpreter
from lab.scenarios import load_file

NETLAB = [sys.executable, "-m", "lab"]


def test_save_writes_a_loadable_lab_file(tmp_path: Path, lab: Lab) -> None:
    """Servers with their ports and options as given; --free-ports writes 0."""
    interp = Interpreter(lab)
    interp.execute("serve echo as e; serve time --udp --offset 60 as t; "
                   "serve finger --user 'alice=Alice Liddell' as f; connect e as c")
    path = tmp_path / "lab.yaml"
    (result,) = interp.execute(f"save {path}")
    assert result.text == f"saved 3 servers to {path}"
    (scenario,) = load_file(path)
    servers = {s.name: s for s in scenario.servers}
    assert servers["e"].port == lab["e"].port  # type: ignore[attr-defined]
    assert servers["t"].transport == "udp" and servers["t"].options == {"offset": "60"}
    assert servers["f"].options == {"user": ["alice=Alice Liddell"]}
    with pytest.raises(CommandError, match="exists"):
        interp.execute(f"save {path}")
    interp.execute(f"save {path} --free-ports --force")
    assert {s.port for s in load_file(path)[0].servers} == {0}


def test_save_refuses_an_empty_lab(tmp_path: Path, lab: Lab) -> None:
    """Nothing to save is a one-line error with a hint."""
    with pytest.raises(CommandError, match="no servers to save"):
        Interpreter(lab).execute(f"save {tmp_path / 'x.yaml'}")


def test_up_serves_a_saved_lab_and_stops_cleanly(tmp_path: Path) -> None:
    """Save a lab, `netlab up` it, talk to it, SIGTERM: exit 0 and a summary."""
    path = tmp_path / "lab.yaml"
    with Lab.start() as lab:
        Interpreter(lab).execute(f"serve echo as e; serve finger --user alice=Alice as f; "
                                 f"save {path} --free-ports")
    with Proc([*NETLAB, "up", str(path)]) as proc:
        ports = {}
        for _ in range(2):
            line = proc.wait_for(r"^netlab: (e|f): \w+ listening on tcp://127\.0\.0\.1:\d+", 30)
            m = re.search(r"netlab: (\w+): .*:(\d+)$", line)
            assert m is not None
            ports[m.group(1)] = int(m.group(2))
        proc.wait_for(r"2 servers up", 30)
        with socket.create_connection(("127.0.0.1", ports["e"]), timeout=10) as s:
            s.sendall(b"over the wire\r\n")
            assert s.recv(100) == b"over the wire\r\n"
        proc.wait_for(r'e#1\s+<-\s+"over the wire\\r\\n"', 30)
        assert proc.stop(signal.SIGTERM) == 0
    assert re.search(r"stopped 2 servers: 1 connections, \d+ events", proc.output())


def test_up_reports_bad_files_and_busy_ports(tmp_path: Path) -> None:
    """A malformed lab file exits 2 with its position; a taken port exits 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("lab:\n  e: {protocol: ecko}\n")
    out = subprocess.run([*NETLAB, "up", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "bad.yaml:2:17: lab server 'e': unknown protocol 'ecko'" in out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = tmp_path / "busy.yaml"
        busy.write_text(f"lab:\n  e: {{protocol: echo, port: {taken.getsockname()[1]}}}\n")
        out = subprocess.run([*NETLAB, "up", str(busy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "lab server 'e'" in out.stderr and "port is taken" in out.stderr


def test_call_and_wait_commands(lab: Lab) -> None:
    """`call` runs a verb with words and NAME=VALUE; `wait` pauses or waits for a close."""
    interp = Interpreter(lab)
    interp.execute("serve finger as f; connect f as c")
    (r,) = interp.execute("call c query alice verbose=true")
    assert "Curiouser" in r.value and r.text.startswith("c.query -> 'Login: alice")
    with pytest.raises(CommandError, match="no verb 'qery' — did you mean 'query'"):
        interp.execute("call c qery alice")
    with pytest.raises(CommandError, match="unexpected keyword argument 'loud'"):
        interp.execute("call c query loud=1")
    interp.execute("connect f as d; send d alice")
    (w,) = interp.execute("wait d --closed --timeout 5")
    assert w.text == "d closed (closed)"
    (p,) = interp.execute("wait 0.01")
    assert p.text == "waited 0.01 s"
    with pytest.raises(CommandError, match="wait for what"):
        interp.execute("wait d")
    interp.execute("serve echo as e; connect e as quiet")
    with pytest.raises(Exception, match=r"quiet still open after 0\.2 s"):
        interp.execute("wait quiet --closed -t 0.2")
