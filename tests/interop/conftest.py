"""Foreign peers shared by the interop tests: daemons nobody here wrote,
each run in the foreground on a free loopback port (or, where a client
is hard-wired to a port, on a loopback address of its own) and stopped
by its pid.

A fixture that needs something of its test module asks for a fixture the
module may override (``dovecot_mail``: the messages dovecot starts with).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Proc, free_port, loopback_host, need_root, require, wait_for_port

# -- wire protocols and finger (finger_host and aiosmtpd: tests/conftest.py) -------------

INETD_PORTS = {"echo": 7, "discard": 9, "daytime": 13, "qotd": 17, "chargen": 19, "time": 37, "finger": 79}
INETD_QUOTE = "Be conservative in what you send, liberal in what you accept."


@pytest.fixture(scope="session")
def inetd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """openbsd-inetd on a loopback address of its own, at the well-known
    ports (it skips numeric ones): its built-in echo, discard, chargen,
    daytime and time; qotd from /bin/echo; finger from Debian's in.fingerd."""
    inetd_bin = require("inetd")
    need_root("inetd binds the well-known ports and")
    host = loopback_host(*INETD_PORTS.values(), first=3)
    if host is None:
        pytest.fail("no loopback address with the inetd ports free")
    builtins = ("echo", "discard", "chargen", "daytime", "time")
    conf = Path(tmp_path_factory.mktemp("inetd")) / "inetd.conf"
    conf.write_text("".join(f"{host}:{svc} stream tcp nowait root internal\n" for svc in builtins)
                    + f"{host}:qotd stream tcp nowait nobody /bin/echo echo {INETD_QUOTE}\n"
                    + f"{host}:finger stream tcp nowait nobody /usr/sbin/in.fingerd in.fingerd\n")
    proc = Proc([inetd_bin, "-d", str(conf)])
    try:
        for svc in ("echo", "discard", "daytime", "time"):
            wait_for_port(INETD_PORTS[svc], host)
        yield host
    finally:
        proc.stop(15)


@pytest.fixture
def socat_udp_echo() -> Iterator[int]:
    """socat as a UDP echo server (openbsd-inetd's UDP built-ins refuse
    loopback senders)."""
    port = free_port(socket.SOCK_DGRAM)
    proc = Proc([require("socat"), f"UDP4-RECVFROM:{port},bind=127.0.0.1,fork", "EXEC:cat"])
    try:
        yield port
    finally:
        proc.stop(15)


# -- mail and news -----------------------------------------------------------------------


@pytest.fixture
def dovecot_mail() -> list[bytes]:
    """The messages in alice's maildrop when dovecot starts (a test module
    may override this fixture)."""
    return [b"From: bob@far.test\r\nSubject: first\r\n\r\nHello.\r\n.dotted line\r\nBye.\r\n",
            b"From: carol@far.test\r\nSubject: second\r\n\r\nSecond body.\r\n"]


@pytest.fixture
def dovecot(dovecot_mail: list[bytes]) -> Iterator[tuple[int, Path]]:
    """dovecot's POP3 server in the foreground: its own config, run and state
    directories, a passwd-file user alice/wonderland and Maildirs, all in a
    temporary directory; stopped by its pid.  Alice's maildrop holds
    ``dovecot_mail``, named 1000000001.M1P1.lab and so on."""
    binary = require("dovecot")
    need_root("dovecot's master process")
    mail_user = pwd.getpwnam("nobody")
    for name in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.fail(f"user {name!r} is missing: install dovecot-pop3d (`bash .ci/setup`)")
    # not under pytest's 0700 tmp root: the mail process runs as nobody
    root = Path(tempfile.mkdtemp(prefix="netlab-dovecot-"))
    root.chmod(0o755)
    try:
        for sub in ("run", "state", "mail", "home"):
            (root / sub).mkdir()
        (root / "passwd").write_text("alice:{PLAIN}wonderland::::::\n")
        port = free_port()
        (root / "dovecot.conf").write_text(f"""\
protocols = pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = /dev/stderr
info_log_path = /dev/stderr
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{root}/mail/%u
pop3_uidl_format = %f
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
}}
""")
        maildir = root / "mail" / "alice"
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True)
        for n, message in enumerate(dovecot_mail, 1):
            (maildir / "new" / f"100000000{n}.M{n}P1.lab").write_bytes(message.replace(b"\r\n", b"\n"))
        for path in [root / "mail", root / "home", *(root / "mail").rglob("*")]:
            os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
        proc = Proc([binary, "-F", "-c", str(root / "dovecot.conf")])
        try:
            wait_for_port(port, timeout=30)
            yield port, maildir
        finally:
            proc.stop(15)
    finally:
        shutil.rmtree(root, ignore_errors=True)


INN_BIN = Path("/usr/lib/news/bin")
_INN_OVERRIDES = ("pathetc", "pathdb", "pathspool", "pathrun", "pathlog", "pathtmp", "pathoverview",
                  "patharticles", "pathincoming", "pathoutgoing", "patharchive", "pathhttp", "port",
                  "bindaddress", "bindaddress6", "nnrpdpostport", "domain", "pathhost", "doinnwatch",
                  "pgpverify", "htmlstatus")


def _inn_instance(root: Path, port: int) -> dict[str, str]:
    """A private INN: its own inn.conf, active file, history and spool under
    ``root``, listening on 127.0.0.1:``port``; returns the environment."""
    dirs = ("etc", "db", "spool", "run", "log", "tmp", "overview", "articles", "incoming",
            "outgoing", "archive", "http")
    for name in dirs:
        (root / name).mkdir()
    shutil.copytree("/etc/news", root / "etc", dirs_exist_ok=True)
    conf = root / "etc" / "inn.conf"
    kept = [line for line in conf.read_text().splitlines()
            if line.split(":", 1)[0].strip() not in _INN_OVERRIDES]
    paths = {f"path{name}": str(root / name) for name in dirs if name != "db"}
    settings = {**paths, "pathdb": str(root / "db"), "port": str(port), "nnrpdpostport": str(port),
                "bindaddress": "127.0.0.1", "domain": "lab.test", "pathhost": "inn.lab.test",
                "doinnwatch": "false", "pgpverify": "false", "htmlstatus": "false"}
    conf.write_text("\n".join(kept + [f"{k}: {v}" for k, v in settings.items()]) + "\n")
    (root / "db" / "active").write_text(
        "control 0000000000 0000000001 n\ncontrol.cancel 0000000000 0000000001 n\n"
        "junk 0000000000 0000000001 n\nlab.test 0000000000 0000000001 y\n")
    (root / "db" / "newsgroups").write_text("lab.test\tA test group\n")
    for name in ("active.times", "history"):
        (root / "db" / name).touch()
    env = {**os.environ, "INNCONF": str(conf)}
    subprocess.run(["chown", "-R", "news:news", str(root)], check=True, timeout=60)
    # INN's tools drop to the news user: the tree is news's before they run
    subprocess.run([str(INN_BIN / "makedbz"), "-i", "-o"], cwd=root / "db", env=env, check=True,
                   capture_output=True, timeout=60)
    return env


@pytest.fixture
def inn() -> Iterator[int]:
    """innd (handing readers to nnrpd) on a free port, with an empty
    group lab.test; stopped by ctlinnd."""
    if not (INN_BIN / "innd").exists():
        pytest.fail("INN is missing: run `bash .ci/setup` (as root); it installs inn2")
    need_root("INN (innd starts as root and becomes news)")
    root = Path(tempfile.mkdtemp(prefix="netlab-inn-"))
    port = free_port()
    try:
        env = _inn_instance(root, port)
        with Proc([str(INN_BIN / "innd"), "-d"], env=env) as proc:
            try:
                wait_for_port(port, timeout=30)
                yield port
            finally:
                subprocess.run([str(INN_BIN / "ctlinnd"), "-s", "-t", "20", "shutdown", "test over"],
                               env=env, capture_output=True, timeout=40)
                proc.stop(timeout=20)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- IRC ---------------------------------------------------------------------------------

NGIRCD_CONF = """\
[Global]
    Name = irc.peer.test
    Info = netlab interop test
    Listen = 127.0.0.1
    Ports = {port}
    MotdPhrase = hello from ngircd
    PidFile = {dir}/ngircd.pid
{identity}
[Limits]
    PingTimeout = 2
    PongTimeout = 5
    MaxConnectionsIP = 20
[Options]
    Ident = no
    PAM = no
    DNS = no
"""


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[int]:
    """ngIRCd in the foreground on a free loopback port."""
    program = require("ngircd")
    port = free_port()
    # as root ngIRCd must drop to another user; it then cannot write its pid
    # file into our private tmp dir, which it logs and shrugs off
    identity = "    ServerUID = 65534\n    ServerGID = 65534" if os.geteuid() == 0 else ""
    conf = tmp_path / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(port=port, dir=tmp_path, identity=identity))
    with Proc([program, "-n", "-f", str(conf)]) as proc:
        wait_for_port(port, timeout=20)
        yield port
        proc.stop()


@pytest.fixture
def miniircd() -> Iterator[int]:
    """miniircd on a free loopback port (it refuses root without --setuid)."""
    program = require("miniircd")
    port = free_port()
    args = [program, "--listen", "127.0.0.1", "--ports", str(port)]
    if os.geteuid() == 0:
        args += ["--setuid", "nobody"]
    with Proc(args) as proc:
        wait_for_port(port, timeout=20)
        yield port
        proc.stop()


# -- telnet ------------------------------------------------------------------------------


@pytest.fixture
def telnetlib3_server() -> Iterator[int]:
    """telnetlib3's demonstration server (a small shell, prompt ``tel:sh> ``)."""
    port = free_port()
    with Proc([require("telnetlib3-server"), "127.0.0.1", str(port), "--connect-maxwait", "2"]) as proc:
        proc.wait_for("Server ready", timeout=30)
        wait_for_port(port)
        yield port


TELNETD_LOGIN_SCRIPT = """#!/bin/sh
printf 'login: '
read user
stty -echo
printf 'Password: '
read pass
stty echo
echo
echo "Welcome, $user ($TERM)"
while printf '$ '; read line; do
  [ "$line" = exit ] && break
  echo "you said: $line; rows and columns: $(stty size)"
done
echo bye
"""


@pytest.fixture
def telnetd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """inetutils telnetd, one per connection from socat, with a login script
    instead of /bin/login."""
    script = tmp_path_factory.mktemp("telnetd") / "login.sh"
    script.write_text(TELNETD_LOGIN_SCRIPT)
    script.chmod(0o755)
    port = free_port()
    daemon = f"{require('telnetd')} --exec-login={script}"
    with Proc([require("socat"), f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"EXEC:{daemon},nofork"]):
        wait_for_port(port)
        yield port
