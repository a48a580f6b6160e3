"""Interop: SSH against peers nobody here wrote.

OpenSSH's `ssh` (one command, and the interactive console on a pty),
`sftp` and `ssh-keyscan`, and paramiko, against our server; our client
against OpenSSH's `sshd`, run in the foreground on a free loopback port
with its own configuration, host key and authorized_keys.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pexpect
import pytest
from helpers import Proc, free_port, need_root, require, wait_for_port, wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.ssh import SshEvent, SshVersion

pytestmark = [
    pytest.mark.interop,
    # paramiko still names TripleDES where cryptography moved it
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]

PASSWORD = "tr0ub4dor&3"
OPENSSH = ["-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
           "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
           "-o", "NumberOfPasswordPrompts=1", "-o", "LogLevel=ERROR"]


def spawn(program: str, args: list[str]) -> pexpect.spawn:
    env = dict(os.environ, TERM="xterm", LANG="C.UTF-8")
    return pexpect.spawn(require(program), args, env=env, encoding="utf-8", codec_errors="replace",
                         timeout=30, dimensions=(40, 120))


@pytest.fixture
def children() -> Iterator[list[pexpect.spawn]]:
    """Children to close at the end, whatever happened."""
    spawned: list[pexpect.spawn] = []
    yield spawned
    for child in spawned:
        child.close(force=True)


@pytest.fixture
def jail(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "hello.txt").write_text("hello from the jail\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", root / "escape")
    return root


@pytest.fixture
def sshd(lab: Lab, jail: Path) -> Any:
    return lab.serve("ssh", name="sshd", password=PASSWORD, sftp_root=str(jail))


def ssh_command(children: list[pexpect.spawn], port: int, *args: str) -> tuple[int, str]:
    """OpenSSH `ssh` running one command: its exit status and output."""
    child = spawn("ssh", [*OPENSSH, "-p", str(port), "lab@127.0.0.1", *args])
    children.append(child)
    child.expect("password: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    return child.exitstatus, str(child.before)


def auth_events(lab: Lab) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint="sshd", kinds=frozenset({EventKind.MESSAGE})))
            if isinstance(e.message, SshEvent) and e.message.event == "auth"]


def test_openssh_runs_a_lab_command(lab: Lab, sshd: Any, children: list[pexpect.spawn]) -> None:
    """`ssh -p P lab@127.0.0.1 ls` prints the lab's endpoints and exits 0;
    a statement that fails exits 1."""
    status, out = ssh_command(children, sshd.port, "ls")
    assert status == 0, out
    assert re.search(r"sshd\s+server\s+ssh\s+tcp://127\.0\.0\.1:\d+\s+listening", out), out
    status, out = ssh_command(children, sshd.port, "stop", "nosuchthing")
    assert status == 1 and "error:" in out
    versions = [e.message.summary() for e in lab.log.query(EventFilter(endpoint="sshd"))
                if isinstance(e.message, SshVersion)]
    assert any(v.startswith("SSH-2.0-OpenSSH_") for v in versions)
    assert any("password for lab: accepted" in s for s in auth_events(lab))


def test_openssh_refuses_a_wrong_password(lab: Lab, sshd: Any, children: list[pexpect.spawn]) -> None:
    child = spawn("ssh", [*OPENSSH, "-p", str(sshd.port), "lab@127.0.0.1", "ls"])
    children.append(child)
    child.expect("password: ")
    child.sendline("not the password")
    child.expect("Permission denied")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 255
    assert any("password for lab: refused" in s for s in auth_events(lab))


def test_the_console_over_ssh_tt(lab: Lab, sshd: Any, children: list[pexpect.spawn]) -> None:
    """On a pty: the greeting and prompt, a statement, Tab listing two
    commands and completing one, Ctrl-C cancelling a statement, the up
    arrow recalling the last line, quit."""
    child = spawn("ssh", [*OPENSSH, "-tt", "-p", str(sshd.port), "lab@127.0.0.1"])
    children.append(child)
    child.expect("password: ")
    child.sendline(PASSWORD)
    child.expect("netlab console over SSH")
    child.expect("netlab> ")
    child.send("ls\r")
    child.expect(r"sshd\s+server")
    child.expect("netlab> ")
    child.send("hel\t")
    child.expect("held  help")  # two choices: listed, the line kept
    child.send("p\r")
    child.expect("commands")
    child.expect("netlab> ")
    child.send("serv\t")
    child.expect("e ")  # one choice: the word completed on the line
    child.send("\x15help\r")
    child.expect("commands")
    child.expect("netlab> ")
    child.send("wait 60\r")
    child.send("\x03")  # Ctrl-C: the statement is cancelled
    child.expect("interrupted")
    child.expect("netlab> ")
    child.send("\x1b[A")  # the line before, recalled
    child.expect("wait 60")
    child.send("\x15help\r")
    child.expect("commands")
    child.expect("netlab> ")
    child.send("\x1b[A")  # the line before, recalled
    child.expect("help")
    child.send("\x15quit\r")  # ^U erases it first
    child.expect("Goodbye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    requests = [e.summary for e in lab.log.query(EventFilter(endpoint="sshd", kinds=frozenset({EventKind.MESSAGE})))
                if isinstance(e.message, SshEvent) and e.message.event == "channel-request"]
    assert any("pty-req xterm 120x40" in r for r in requests) and any(": shell" in r for r in requests)


def test_openssh_sftp_stays_in_its_root(lab: Lab, sshd: Any, jail: Path, tmp_path: Path,
                                        children: list[pexpect.spawn]) -> None:
    """sftp: get and put work; cd .. stays at /, a symlink out and
    ../secret.txt are refused."""
    (tmp_path / "up.txt").write_text("uploaded\n")
    child = spawn("sftp", [*OPENSSH, "-P", str(sshd.port), "lab@127.0.0.1"])
    children.append(child)
    child.expect("password: ")
    child.sendline(PASSWORD)
    child.expect("sftp> ")
    child.sendline(f"get /pub/hello.txt {tmp_path / 'got.txt'}")
    child.expect("sftp> ")
    child.sendline(f"put {tmp_path / 'up.txt'} /pub/up.txt")
    child.expect("sftp> ")
    child.sendline("cd ../../..")
    child.expect("sftp> ")
    child.sendline("pwd")
    child.expect("Remote working directory: /\r\n")
    child.expect("sftp> ")
    for outside in ("/escape", "../secret.txt"):
        child.sendline(f"get {outside} {tmp_path / 'stolen'}")
        child.expect("(denied|not found|No such file|outside)")
        child.expect("sftp> ")
    child.sendline("bye")
    child.expect(pexpect.EOF)
    assert (tmp_path / "got.txt").read_text() == "hello from the jail\n"
    assert (jail / "pub" / "up.txt").read_text() == "uploaded\n"
    assert not (tmp_path / "stolen").exists()


def test_paramiko_runs_a_command(lab: Lab, sshd: Any) -> None:
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect("127.0.0.1", sshd.port, username="lab", password=PASSWORD, look_for_keys=False,
                       allow_agent=False, timeout=30)
        _, stdout, stderr = client.exec_command("ls", timeout=30)
        out = stdout.read().decode()
        assert stdout.channel.recv_exit_status() == 0 and stderr.read() == b""
        assert "sshd" in out
        with pytest.raises(paramiko.AuthenticationException):
            other = paramiko.SSHClient()
            other.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            try:
                other.connect("127.0.0.1", sshd.port, username="lab", password="wrong", look_for_keys=False,
                              allow_agent=False, timeout=30)
            finally:
                other.close()
    finally:
        client.close()


def test_ssh_keyscan_sees_the_labs_host_key(lab: Lab, sshd: Any) -> None:
    fingerprint = lab.connect("ssh", sshd, options={"password": PASSWORD}).fingerprint()
    out = subprocess.run([require("ssh-keyscan"), "-p", str(sshd.port), "-t", "ed25519", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(line for line in out.splitlines() if "ssh-ed25519" in line)
    key = asyncssh.import_public_key(line.split(None, 1)[1])
    assert key.get_fingerprint() == fingerprint


# -- our client against OpenSSH's sshd ---------------------------------------------------


@pytest.fixture
def openssh_server(lab: Lab, tmp_path: Path) -> Iterator[tuple[int, Path, asyncssh.SSHKey]]:
    """sshd on a free loopback port: public keys only, from a temporary
    authorized_keys; SFTP inside the process.  Yields its port, our
    private key's path and its host key."""
    need_root("sshd (privilege separation)")
    sshd_bin = require("sshd")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    if subprocess.run(["getent", "passwd", "sshd"], capture_output=True).returncode != 0:
        # the privilege separation user, as openssh-server's own install script makes it
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/run/sshd",
                        "--shell", "/usr/sbin/nologin", "sshd"], check=True, capture_output=True)
    host = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "host_key").write_bytes(host.export_private_key())
    os.chmod(tmp_path / "host_key", 0o600)
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "id").write_bytes(user_key.export_private_key())
    (tmp_path / "authorized_keys").write_bytes(user_key.export_public_key())
    port = free_port()
    conf = tmp_path / "sshd_config"
    conf.write_text(f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nStrictModes no\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                    "PermitRootLogin prohibit-password\nPidFile none\nSubsystem sftp internal-sftp\n")
    proc = Proc([sshd_bin, "-D", "-e", "-f", str(conf), "-p", str(port), "-h", str(tmp_path / "host_key"),
                 "-o", "ListenAddress=127.0.0.1"])
    try:
        wait_for_port(port)
        yield port, tmp_path / "id", host
    finally:
        for name in [n for n, e in lab.endpoints.items() if e.kind.value == "client"]:
            lab.stop(name)
        # a connection's own sshd outlives the listener and holds its output pipes: end it by its pid
        found = subprocess.run(["pgrep", "-P", str(proc.popen.pid)], capture_output=True, text=True).stdout
        for pid in found.split():
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        proc.stop(15)


def test_our_client_against_openssh(lab: Lab, openssh_server: tuple[int, Path, asyncssh.SSHKey],
                                    tmp_path: Path) -> None:
    """Public-key login, a command's status and both streams, SFTP put
    and get; the log shows OpenSSH's banner and its host key's
    fingerprint."""
    port, key, host = openssh_server
    user = os.environ.get("USER") or "root"
    c = lab.connect("ssh", f"127.0.0.1:{port}", name="c", options={"user": user, "key": str(key)})
    result = c.run("echo hello; echo oops >&2; exit 3")
    assert result == (3, "hello\n", "oops\n")
    (tmp_path / "up.txt").write_text("to openssh\n")
    c.put(str(tmp_path / "up.txt"), str(tmp_path / "there.txt"))
    assert (tmp_path / "there.txt").read_text() == "to openssh\n"
    assert c.get(str(tmp_path / "there.txt"), str(tmp_path / "back.txt")) == len("to openssh\n")
    assert c.fingerprint() == host.get_fingerprint()
    seen = [e.message for e in lab.log.query(EventFilter(endpoint="c", kinds=frozenset({EventKind.MESSAGE})))]
    assert any(isinstance(m, SshVersion) and m.software.startswith("OpenSSH_") for m in seen)
    assert any(isinstance(m, SshEvent) and m.event == "hostkey" and host.get_fingerprint() in m.text for m in seen)


def test_our_client_is_refused_a_key_openssh_does_not_know(
        lab: Lab, openssh_server: tuple[int, Path, asyncssh.SSHKey], tmp_path: Path) -> None:
    port, _, _ = openssh_server
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "stranger").write_bytes(stranger.export_private_key())
    from lab.errors import ConfigError

    with pytest.raises(ConfigError, match="could not log in"):
        lab.connect("ssh", f"127.0.0.1:{port}", options={"user": "root", "key": str(tmp_path / "stranger")})
    wait_until(lambda: not [e for e in lab.endpoints.values() if e.kind.value == "client"], what="no client left")


def test_a_garbage_client_does_not_disturb_openssh_clients(lab: Lab, sshd: Any,
                                                           children: list[pexpect.spawn]) -> None:
    """A connection speaking HTTP is dropped while OpenSSH's command runs."""
    with socket.create_connection(("127.0.0.1", sshd.port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, out = ssh_command(children, sshd.port, "ls")
        s.settimeout(30)
        while s.recv(4096):
            pass
    assert status == 0 and "sshd" in out
