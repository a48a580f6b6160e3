"""Recording an SSH session: the client's password option becomes a
{secret.sN} placeholder (never the password), no silence is asserted for
a client whose library owns the socket, and the file replays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab import Lab
from lab.commands import Interpreter

PASSWORD = "hunter2-ssh"


def test_a_recorded_ssh_session_keeps_no_password_and_replays(lab: Lab, tmp_path: Path) -> None:
    interpreter = Interpreter(lab)
    interpreter.execute(f"serve ssh --password {PASSWORD} as sshd")
    recording = tmp_path / "ssh.yaml"
    interpreter.execute(f"record start {recording}")
    interpreter.execute(f"connect ssh sshd as c -o password={PASSWORD}")
    interpreter.execute("call c run ls")
    interpreter.execute("record stop")
    text = recording.read_text()
    assert PASSWORD not in text
    assert "password: '{secret.s1}'" in text and "NETLAB_SECRET_S1" in text
    assert "count: 0" not in text  # the verb's traffic is the verb's: no silence to assert
    env = dict(os.environ, NETLAB_SSHD_PASSWORD=PASSWORD, NETLAB_SECRET_S1=PASSWORD)
    done = subprocess.run([sys.executable, "-m", "lab", "run", str(recording)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
