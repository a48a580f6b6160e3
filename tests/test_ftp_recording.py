"""Recording FTP client verbs (lab/scenarios/_recorder.py): a verb's
data connections are its own business, so a call step's traffic holds
the control connection only (no file bytes, no close of a transfer), and
the recording replays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab import Lab
from lab.commands import Interpreter


def test_a_recorded_ftp_session_leaves_data_connections_to_its_verbs(tmp_path: Path) -> None:
    path = tmp_path / "ftp.yaml"
    with Lab.start() as lab:
        shell = Interpreter(lab)
        for line in ("serve ftp as f", f"record start {path}", "connect ftp f as c",
                     "call c login alice wonderland", "call c nlst /pub", "call c get /pub/hello.txt",
                     "record stop"):
            shell.execute(line, 30)
    text = path.read_text()
    calls = [line for line in text.splitlines() if line.startswith("- call:")]
    assert len(calls) == 3
    assert all("closed" not in line for line in calls), calls
    assert "hello, world" not in text and "readme.txt\\r\\n" not in text
    assert "RETR /pub/hello.txt" in calls[2] and "226 Transfer complete" in calls[2]
    env = {**os.environ, "NETLAB_SECRET_S1": "wonderland"}
    done = subprocess.run([sys.executable, "-m", "lab", "run", str(path)], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
