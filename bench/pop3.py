#!/usr/bin/env python3
"""POP3 RETR throughput: netlab and dovecot, side by side.

    python bench/pop3.py                  # 5 rounds x 3 s, about 1.5 minutes (as root)
    python bench/pop3.py --quick          # 2 rounds x 1 s, a smoke test

Both servers read the same Maildirs, one per session's user (u0, u1, ...;
netlab locks a maildrop per session), each holding ``--messages`` messages of
``--size`` bytes; the load generator (this process,
on CPU 1) logs in on several connections and RETRs the messages over
and over, pipelined (RFC 2449 PIPELINING: up to ``--window`` commands
outstanding).  dovecot runs a master, a login and a pop3 process per
session: its CPU is the sum over its whole process session.  dovecot must
start as root (it drops to its own users).  See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import pwd
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

try:
    from bench import _harness as shared
    from bench import echo as harness
    from bench import mail
except ImportError:  # run as a script: bench/ itself is on sys.path
    import _harness as shared  # type: ignore[import-not-found, no-redef]
    import echo as harness  # type: ignore[import-not-found, no-redef]
    import mail  # type: ignore[import-not-found, no-redef]

HOST = harness.HOST
PASSWORD = "bench"  # of every user, u0, u1, ...: netlab locks a maildrop per session (RFC 1939)

NETLAB_SERVER = shared.netlab_server('"pop3", port=port, capture=capture, maildir=maildir, user=users.split(",")',
                                     ("capture", "maildir", "users"))

DOVECOT_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = /dev/null
info_log_path = /dev/null
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
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@dataclass(frozen=True)
class ServerKind:
    key: str
    label: str
    root: str
    users: int
    capture: str = ""

    def argv(self, port: int) -> list[str]:
        if self.capture:
            users = ",".join(f"u{i}={PASSWORD}" for i in range(self.users))
            return [sys.executable, "-c", NETLAB_SERVER, str(port), self.capture, os.path.join(self.root, "mail"),
                    users]
        nobody = pwd.getpwnam("nobody")
        conf = os.path.join(self.root, f"dovecot-{port}.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(DOVECOT_CONF.format(root=self.root, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid))
        return [shutil.which("dovecot") or "/usr/sbin/dovecot", "-F", "-c", conf]


class Pop3Server(harness.Server):
    """A server on CPU 0 (with every process it starts), ready on +OK;
    its CPU time is summed over its process session."""

    def wait_ready(self, timeout: float = harness.READY_TIMEOUT) -> None:
        def probe(s: socket.socket) -> None:
            if not s.recv(512).startswith(b"+OK"):
                raise RuntimeError(f"{self.kind.key}: no +OK greeting")
            s.sendall(b"QUIT\r\n")

        shared.wait_accepting(self, probe, "greet", timeout, connect_timeout=5.0)

    def cpu_split(self) -> tuple[float, float]:
        user = system = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    data = fh.read()
            except OSError:
                continue  # gone meanwhile
            fields = data[data.rindex(")") + 2:].split()
            if int(fields[3]) == self.pid:  # the session the server leads
                user += int(fields[11])
                system += int(fields[12])
        return user / harness.CLK_TCK, system / harness.CLK_TCK


def make_maildir(root: str, users: int, messages: int, size: int) -> None:
    """A Maildir for each user with ``messages`` plain messages, owned by
    nobody (dovecot's mail process runs as nobody)."""
    nobody = pwd.getpwnam("nobody")
    for sub in ("run", "state", "home"):
        os.mkdir(os.path.join(root, sub))
    with open(os.path.join(root, "passwd"), "w", encoding="ascii") as fh:
        fh.writelines(f"u{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in range(users))
    body = mail.make_message(size)[:-3].replace(b"\r\n", b"\n")
    for u in range(users):
        box = os.path.join(root, "mail", f"u{u}")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(box, sub))
        for i in range(messages):
            with open(os.path.join(box, "cur", f"17000000{i:02d}.M{i}P1.bench:2,S"), "wb") as binary:
                binary.write(body)
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "mail")):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.chown(name, nobody.pw_uid, nobody.pw_gid)
    os.chown(os.path.join(root, "home"), nobody.pw_uid, nobody.pw_gid)


class _Conn:
    __slots__ = ("buf", "pending", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.pending = sock, b"", 0


class RetrLoad:
    """``conns`` logged-in sessions, each with ``window`` RETRs outstanding."""

    def __init__(self, port: int, conns: int, window: int, messages: int) -> None:
        self.window, self.messages = window, messages
        self.ep = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.done = self.nbytes = 0
        self.next = 0
        for u in range(conns):
            s = socket.create_connection((HOST, port), timeout=10.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            for line in (None, f"USER u{u}", f"PASS {PASSWORD}"):
                if line:
                    s.sendall(line.encode() + b"\r\n")
                answer = f.readline()
                if not answer.startswith(b"+OK"):
                    raise RuntimeError(f"login: {answer[:120]!r}")
            f.close()
            s.setblocking(False)
            c = _Conn(s)
            self.conns[s.fileno()] = c
            self.ep.register(s.fileno(), select.EPOLLIN)
            self._fill(c)

    def _fill(self, c: _Conn) -> None:
        out = []
        while c.pending < self.window:
            out.append(b"RETR %d\r\n" % (self.next % self.messages + 1))
            self.next += 1
            c.pending += 1
        if out:
            c.sock.sendall(b"".join(out))  # a few short commands

    def run(self, seconds: float) -> int:
        poll, perf = self.ep.poll, time.perf_counter
        start = self.done
        deadline = perf() + seconds
        for _ in range(harness.MAX_SPINS):
            for fd, _ev in poll(0):
                c = self.conns[fd]
                try:
                    data = c.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("server closed a POP3 session")
                buf = c.buf + data
                while True:
                    if buf.startswith(b"-ERR"):
                        raise RuntimeError(f"RETR refused: {buf[:120]!r}")
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buf = buf[end + 5:]
                    c.pending -= 1
                    self.done += 1
                    self.nbytes += end + 5
                c.buf = buf
                self._fill(c)
            if perf() >= deadline:
                break
        return self.done - start

    def close(self) -> None:
        self.ep.close()
        for c in self.conns.values():
            c.sock.close()


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    burn_in: float
    conns: int
    window: int
    messages: int
    size: int
    retries: int = 1
    other_limit: float = 0.05


def measure(kind: ServerKind, cfg: Config) -> dict[str, Any]:
    server = Pop3Server(kind)  # type: ignore[arg-type]  # duck-typed: key, label, argv()
    try:
        server.wait_ready()
        load = RetrLoad(server.port, cfg.conns, cfg.window, cfg.messages)
        try:
            load.run(cfg.warmup)
            window = harness.Window(server)
            done = load.run(cfg.seconds)
            w = window.close()
        finally:
            load.close()
        server.check_alive()
    finally:
        server.stop()
    nan = float("nan")
    return {"retrs": done, "rate": done / w["wall"], "us": w["cpu"] / done * 1e6 if done else nan,
            "user_us": w["user"] / done * 1e6 if done else nan, "busy": w["cpu"] / w["wall"],
            "cpu0_idle": w["idle"], "other": w["other"], "rss_kb": 0}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="POP3 RETR throughput: netlab vs dovecot.")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; --quick 2)")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds (default 3; --quick 1)")
    p.add_argument("--quick", action="store_true", help="2 rounds x 1 s: a smoke test")
    p.add_argument("--connections", type=int, default=10, help="sessions at once (default 10)")
    p.add_argument("--window", type=int, default=8, help="RETRs outstanding per session (default 8)")
    p.add_argument("--messages", type=int, default=20, help="messages in the maildrop (default 20)")
    p.add_argument("--size", type=int, default=1024, help="message size in bytes (default 1024)")
    p.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    args = p.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        p.error("dovecot must be installed and its master started as root")
    quick = args.quick
    cfg = Config(rounds=args.rounds or (2 if quick else 5), seconds=args.seconds or (1.0 if quick else 3.0),
                 warmup=0.5 if quick else 1.0, burn_in=1.0 if quick else 3.0, conns=args.connections,
                 window=args.window, messages=args.messages, size=args.size, retries=0 if quick else 1)
    root = tempfile.mkdtemp(prefix="bench-pop3-")
    os.chmod(root, 0o755)  # dovecot's mail process runs as nobody
    n = cfg.conns
    kinds = {k.key: k for k in (ServerKind("dovecot", "dovecot", root, n),
                                ServerKind("netlab-full", "netlab capture full", root, n, "full"),
                                ServerKind("netlab-off", "netlab capture off", root, n, "off"))}
    for w in harness.pin_client():
        print(w, file=sys.stderr)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        make_maildir(root, cfg.conns, cfg.messages, cfg.size)
        print(f"POP3 benchmark: {len(kinds)} servers x {cfg.rounds} rounds", file=sys.stderr)
        harness.burn_in(cfg.burn_in)
        results = shared.run_rounds(list(kinds), cfg, lambda name: measure(kinds[name], cfg),
                                    lambda r: f"{r['rate']:>8,.0f} RETR/s {r['us']:7.1f} us/RETR {r['busy']:4.0%} busy")
        keys = ("rate", "us", "user_us", "busy", "cpu0_idle")
        summary = shared.summarize(results, keys)
        pairs = [("netlab-off", "dovecot", "netlab off / dovecot"), ("netlab-full", "dovecot", "netlab full / dovecot")]
        rats: list[dict[str, Any]] = [{"what": what,
                 "rate": harness.spread([c["rate"] / r["rate"] for c, r in zip(results[a], results[b], strict=True)]),
                 "cpu": harness.spread([r["us"] / c["us"] for c, r in zip(results[a], results[b], strict=True)])}
                for a, b, what in pairs]
        fmt, table = harness._fmt, harness._table
        print(f"POP3 RETR: {cfg.conns} sessions x {cfg.window} RETRs outstanding, {cfg.messages} messages of"
              f" ~{cfg.size} B; {cfg.rounds} rounds x {cfg.seconds:g} s; median (min-max);"
              " dovecot's CPU summed over its processes")
        print(table(["server", "RETR/s", "server CPU us/RETR", "of which user", "server busy", "CPU 0 idle"],
                    [[kinds[n].label, fmt(s["rate"], ",.0f"), fmt(s["us"], ",.1f"), fmt(s["user_us"], ",.1f"),
                      fmt(s["busy"], ".0f", 100, "%"), fmt(s["cpu0_idle"], ".0f", 100, "%")]
                     for n, s in summary.items()]))
        print()
        print("ratios, round by round; 1.00 = parity, higher = candidate better")
        print(table(["comparison", "RETR/s", "CPU per RETR"],
                    [[r["what"], fmt(r["rate"], ".2f"), fmt(r["cpu"], ".2f")] for r in rats]))
        if args.json:
            import json

            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"config": cfg.__dict__, "rounds": results, "summary": summary, "ratios": rats}, fh,
                          indent=2, default=str)
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"POP3 benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        harness.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
