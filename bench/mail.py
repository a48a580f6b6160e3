#!/usr/bin/env python3
"""SMTP server throughput: netlab, aiosmtpd and Twisted, side by side.

    python bench/mail.py                  # 5 rounds x 3 s, about 3 minutes
    python bench/mail.py --quick          # 2 rounds x 1 s, a smoke test
    python bench/mail.py --json out.json  # also write every figure as JSON

Every server is a subprocess pinned to CPU 0 and keeps the mail it takes in
memory; the load generator is this process, pinned to CPU 1: a pipelined
SMTP client on raw non-blocking sockets (RFC 2920: MAIL, RCPT and DATA go
out together, the message and the next MAIL, RCPT, DATA after the 354), a
number of messages per connection, several connections at once.  Reports
messages/s, the server's own CPU time per message, and ratios taken round
by round.  The method is the one of bench/echo.py; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import smtplib
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from bench import _harness as shared
    from bench import echo as harness
except ImportError:  # run as a script: bench/ itself is on sys.path
    import _harness as shared  # type: ignore[import-not-found, no-redef]
    import echo as harness  # type: ignore[import-not-found, no-redef]

HOST = harness.HOST
MAX_SPINS = harness.MAX_SPINS
DOMAIN = "lab.test"  # netlab's SMTP server takes mail for lab.test by default

# -- the servers -----------------------------------------------------------------
# Each program takes its port as argv[1], serves 127.0.0.1 only, keeps the
# messages in a list in memory, prints nothing and exits on SIGTERM.

NETLAB_SERVER = shared.netlab_server('"smtp", port=port, capture=capture')

# aiosmtpd's SMTP protocol on a plain asyncio server (its Controller adds a
# thread); no command call limit, a fixed host name (no DNS lookup).
AIOSMTPD_SERVER = r"""
import asyncio, signal, sys
from aiosmtpd.smtp import SMTP

class Memory:
    def __init__(self):
        self.messages = []
    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 2.0.0 OK"

async def main(port):
    loop = asyncio.get_running_loop()
    handler = Memory()
    server = await loop.create_server(lambda: SMTP(handler, hostname="bench.test"), "127.0.0.1", port,
                                      backlog=512)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()

asyncio.run(main(int(sys.argv[1])))
"""

# Twisted's ESMTP protocol with a minimal IMessageDelivery that accepts any
# sender and recipient and keeps each message in memory (as shipped, its
# mail server rejects every RCPT); it adds a Received line, as netlab does.
TWISTED_SERVER = r"""
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import defer, reactor
from twisted.mail import smtp
from zope.interface import implementer

STORE = []

@implementer(smtp.IMessage)
class Message:
    def __init__(self):
        self.lines = []
    def lineReceived(self, line):
        self.lines.append(line)
    def eomReceived(self):
        STORE.append(b"\r\n".join(self.lines))
        self.lines = []
        return defer.succeed(None)
    def connectionLost(self):
        self.lines = []

@implementer(smtp.IMessageDelivery)
class Delivery:
    def receivedHeader(self, helo, origin, recipients):
        return b"Received: from " + helo[0] + b" by bench.test with ESMTP; " + smtp.rfc822date()
    def validateFrom(self, helo, origin):
        return origin
    def validateTo(self, user):
        return Message

class Factory(smtp.SMTPFactory):
    protocol = smtp.ESMTP
    noisy = False
    def buildProtocol(self, addr):
        p = smtp.SMTPFactory.buildProtocol(self, addr)
        p.delivery = Delivery()
        p.host = b"bench.test"
        made = p.connectionMade
        def connectionMade():
            p.transport.setTcpNoDelay(True)
            made()
        p.connectionMade = connectionMade
        return p

reactor.listenTCP(int(sys.argv[1]), Factory(), backlog=512, interface="127.0.0.1")
reactor.run()
"""


@dataclass(frozen=True)
class ServerKind:
    key: str
    label: str
    code: str
    extra: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        return [sys.executable, "-c", self.code, str(port), *self.extra]


SERVERS: dict[str, ServerKind] = {k.key: k for k in (
    ServerKind("aiosmtpd", "aiosmtpd (in memory)", AIOSMTPD_SERVER),
    ServerKind("twisted", "Twisted ESMTP (in memory)", TWISTED_SERVER),
    ServerKind("netlab-full", "netlab capture full", NETLAB_SERVER, ("full",)),
    ServerKind("netlab-summary", "netlab capture summary", NETLAB_SERVER, ("summary",)),
    ServerKind("netlab-off", "netlab capture off", NETLAB_SERVER, ("off",)),
)}
DEFAULT_SERVERS = tuple(SERVERS)

# (candidate, reference, what)
RATIOS: tuple[tuple[str, str, str], ...] = (
    ("netlab-off", "aiosmtpd", "netlab off / aiosmtpd"),
    ("netlab-summary", "aiosmtpd", "netlab summary / aiosmtpd"),
    ("netlab-full", "aiosmtpd", "netlab full / aiosmtpd"),
    ("netlab-off", "twisted", "netlab off / Twisted"),
    ("netlab-full", "twisted", "netlab full / Twisted"),
    ("twisted", "aiosmtpd", "Twisted / aiosmtpd"),
)


class SmtpServer(harness.Server):
    """A server subprocess on CPU 0, ready once it greets with 220."""

    def wait_ready(self, timeout: float = harness.READY_TIMEOUT) -> None:
        def probe(s: socket.socket) -> None:
            greeting = s.recv(512)
            if not greeting.startswith(b"220"):
                raise RuntimeError(f"{self.kind.key}: bad greeting {greeting[:80]!r}")
            s.sendall(b"QUIT\r\n")

        shared.wait_accepting(self, probe, "greet", timeout)


def sanity_check(port: int) -> None:
    """One message through smtplib: the server takes mail from a standard client."""
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        refused = client.sendmail(f"sender@{DOMAIN}", [f"bench@{DOMAIN}"],
                                  f"Subject: sanity\r\nFrom: sender@{DOMAIN}\r\n\r\nhello\r\n")
        if refused:
            raise RuntimeError(f"smtplib: recipients refused: {refused}")


# -- the load generator ----------------------------------------------------------


def make_message(size: int) -> bytes:
    """A plain text message of about ``size`` bytes, dot-free line starts,
    ending in the terminating <CRLF>.<CRLF>."""
    head = (f"From: sender@{DOMAIN}\r\nTo: bench@{DOMAIN}\r\nSubject: throughput\r\n"
            f"Message-ID: <bench@{DOMAIN}>\r\n\r\n").encode()
    text = b"".join(bytes([c]) for c in range(0x41, 0x7B))  # A-Z [\]^_` a-z
    line = (text * 2)[:74] + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body + b".\r\n"


TRANSACTION = f"MAIL FROM:<sender@{DOMAIN}>\r\nRCPT TO:<bench@{DOMAIN}>\r\nDATA\r\n".encode()
# what each reply must start with, by the tag of the command it answers
EXPECT = {"banner": b"220", "ehlo": b"250", "mail": b"250", "rcpt": b"250", "data": b"354",
          "msg": b"250", "quit": b"221"}


class _Conn:
    __slots__ = ("buf", "sent", "sock", "tags")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.sent = 0                      # messages whose body has gone out
        self.tags: deque[str] = deque(["banner"])


class SmtpLoad:
    """``conns`` connections, each sending ``per_conn`` messages pipelined,
    then QUIT and a fresh connection; busy-polls ``epoll`` and never sleeps."""

    def __init__(self, port: int, conns: int, per_conn: int, message: bytes) -> None:
        import select

        self.port, self.per_conn, self.message = port, per_conn, message
        self.ep = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.delivered = 0
        self.connections = 0
        for _ in range(conns):
            self._open()

    def _open(self) -> None:
        s = socket.create_connection((HOST, self.port), timeout=5.0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.conns[s.fileno()] = _Conn(s)
        self.ep.register(s.fileno(), 1)  # EPOLLIN
        self.connections += 1

    def _close(self, fd: int) -> None:
        c = self.conns.pop(fd)
        self.ep.unregister(fd)
        c.sock.close()

    def _next(self, fd: int, c: _Conn, tag: str) -> None:
        """Every reply of the last group is in: send the next group."""
        if tag == "banner":
            c.sock.sendall(b"EHLO bench.test\r\n")
            c.tags.append("ehlo")
        elif tag == "ehlo":
            c.sock.sendall(TRANSACTION)
            c.tags.extend(("mail", "rcpt", "data"))
        elif tag == "data":
            c.sent += 1
            if c.sent < self.per_conn:
                c.sock.sendall(self.message + TRANSACTION)
                c.tags.extend(("msg", "mail", "rcpt", "data"))
            else:
                c.sock.sendall(self.message + b"QUIT\r\n")
                c.tags.extend(("msg", "quit"))
        elif tag == "quit":
            self._close(fd)
            self._open()

    def _replies(self, fd: int, c: _Conn, data: bytes) -> None:
        buf = c.buf + data
        start = 0
        while True:
            end = buf.find(b"\r\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 2
            if len(line) > 3 and line[3] == 0x2D:  # "250-..." continues
                continue
            tag = c.tags.popleft()
            if not line.startswith(EXPECT[tag]):
                raise RuntimeError(f"server answered {tag} with {line[:120]!r}")
            if tag == "msg":
                self.delivered += 1
            if not c.tags:
                self._next(fd, c, tag)
                if fd not in self.conns:
                    return
        c.buf = buf[start:]

    def run(self, seconds: float) -> int:
        """Busy-poll for ``seconds``; returns the messages accepted (250 after
        the final dot) meanwhile."""
        poll, perf = self.ep.poll, time.perf_counter
        start = self.delivered
        deadline = perf() + seconds
        for _ in range(MAX_SPINS):
            for fd, _ev in poll(0):
                c = self.conns.get(fd)
                if c is None:
                    continue
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError(f"server closed a connection (waiting for {list(c.tags)})")
                self._replies(fd, c, data)
            if perf() >= deadline:
                break
        return self.delivered - start

    def close(self) -> None:
        self.ep.close()
        for c in self.conns.values():
            c.sock.close()
        self.conns.clear()


# -- one measurement -------------------------------------------------------------


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    burn_in: float
    conns: int
    per_conn: int
    size: int
    retries: int = 1
    other_limit: float = 0.05


def measure(kind: ServerKind, cfg: Config) -> dict[str, Any]:
    """Start ``kind``, check it with smtplib, warm it up, time it, stop it."""
    server = SmtpServer(kind)  # type: ignore[arg-type]  # duck-typed: key, label, argv()
    try:
        server.wait_ready()
        sanity_check(server.port)
        gc.collect()
        gc.disable()
        load = SmtpLoad(server.port, cfg.conns, cfg.per_conn, make_message(cfg.size))
        try:
            load.run(cfg.warmup)
            server.check_alive()
            conns0 = load.connections
            window = harness.Window(server)
            done = load.run(cfg.seconds)
            w = window.close()
            opened = load.connections - conns0
        finally:
            load.close()
        server.check_alive()
        mem = server.memory_kb()
    finally:
        gc.enable()
        server.stop()
    nan = float("nan")
    return {
        "msgs": done,
        "rate": done / w["wall"],
        "us": w["cpu"] / done * 1e6 if done else nan,
        "user_us": w["user"] / done * 1e6 if done else nan,
        "busy": w["cpu"] / w["wall"],
        "cpu0_idle": w["idle"],
        "other": w["other"],
        "connections": opened,
        "rss_kb": mem.get("VmRSS", 0),
    }


# -- output ----------------------------------------------------------------------

spread, _fmt, _table = harness.spread, harness._fmt, harness._table
KEYS = ("rate", "us", "user_us", "busy", "cpu0_idle", "rss_kb")


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    return shared.summarize(results, KEYS)


def ratios(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-by-round ratios; 1.0 is parity and higher is better for the
    candidate (CPU: reference CPU per message over the candidate's)."""
    out = []
    for cand, ref, what in RATIOS:
        if cand not in results or ref not in results:
            continue
        pairs = list(zip(results[cand], results[ref], strict=True))
        out.append({
            "candidate": cand, "reference": ref, "what": what,
            "rate": spread([c["rate"] / r["rate"] for c, r in pairs]),
            "cpu": spread([r["us"] / c["us"] for c, r in pairs]),
            "user": spread([r["user_us"] / c["user_us"] for c, r in pairs]),
        })
    return out


def report(summary: dict[str, Any], rats: list[dict[str, Any]], cfg: Config,
           results: dict[str, list[dict[str, Any]]]) -> str:
    parts = [
        (f"SMTP: {cfg.conns} connections x {cfg.per_conn} messages each (then QUIT and reconnect),"
         f" {len(make_message(cfg.size)):,} B messages, pipelined; {cfg.rounds} rounds x {cfg.seconds:g} s;"
         " median (min-max)"),
        _table(
            ["server", "messages/s", "server CPU us/msg", "of which user", "server busy", "CPU 0 idle",
             "RSS MB after"],
            [[SERVERS[name].label, _fmt(s["rate"], ",.0f"), _fmt(s["us"], ",.1f"), _fmt(s["user_us"], ",.1f"),
              _fmt(s["busy"], ".0f", 100, "%"), _fmt(s["cpu0_idle"], ".0f", 100, "%"),
              _fmt(s["rss_kb"], ",.0f", 1 / 1024)]
             for name, s in summary.items()],
        ),
        "",
        ("ratios, round by round, median (min-max); 1.00 = parity, higher = candidate better;"
         " CPU: reference CPU/msg over candidate's"),
        _table(
            ["comparison", "messages/s", "CPU per message", "(user CPU)"],
            [[r["what"], _fmt(r["rate"], ".2f"), _fmt(r["cpu"], ".2f"), _fmt(r["user"], ".2f")] for r in rats],
        ),
    ]
    parts += shared.notes(summary, results, {n: k.label for n, k in SERVERS.items()}, cfg.other_limit,
                          "the load generator set that throughput; compare its CPU per message")
    return "\n".join(parts)


def _drive_smtp(cfg: Config) -> Callable[[int], int]:
    def drive(port: int) -> int:
        load = SmtpLoad(port, cfg.conns, cfg.per_conn, make_message(cfg.size))
        try:
            return load.run(cfg.warmup + cfg.seconds)
        finally:
            load.close()
    return drive


# -- main ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SMTP throughput: netlab vs aiosmtpd vs Twisted ESMTP.")
    shared.add_round_args(p, warmup=2)
    p.add_argument("--connections", type=int, default=10, help="connections at once (default 10)")
    p.add_argument("--per-connection", type=int, default=50,
                   help="messages per connection before QUIT and a new one (default 50)")
    p.add_argument("--size", type=int, default=1024, help="message size in bytes (default 1024)")
    shared.add_server_args(p, SERVERS, DEFAULT_SERVERS)
    args = p.parse_args(argv)
    shared.check_servers(p, args, SERVERS)
    if args.connections < 1 or args.per_connection < 1 or args.size < 200:
        p.error("--connections and --per-connection must be >= 1, --size >= 200")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    cfg = Config(
        rounds=args.rounds or (2 if quick else 5),
        seconds=args.seconds or (1.0 if quick else 3.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if quick else 2.0),
        burn_in=1.0 if quick else 3.0,
        conns=args.connections, per_conn=args.per_connection, size=args.size,
        retries=args.retries if args.retries is not None else (0 if quick else 1),
    )
    names = list(dict.fromkeys(args.servers.split(",")))

    def body() -> int:
        if args.profile:
            print(shared.profile(SmtpServer, SERVERS[args.profile], _drive_smtp(cfg), "message"))
            return 0
        est = cfg.burn_in + cfg.rounds * len(names) * (cfg.warmup + cfg.seconds + 1.5)
        print(f"SMTP benchmark: {len(names)} servers x {cfg.rounds} rounds, about {est / 60:.1f} min;"
              f" servers on CPU {harness.SERVER_CPU}, load generator on CPU {harness.CLIENT_CPU}",
              file=sys.stderr)
        harness.burn_in(cfg.burn_in)
        results = shared.run_rounds(
            names, cfg, lambda name: measure(SERVERS[name], cfg),
            lambda r: f"{r['rate']:>8,.0f} msg/s {r['us']:7.1f} us/msg {r['busy']:4.0%} busy")
        summary = summarize(results)
        rats = ratios(results)
        print(report(summary, rats, cfg, results))
        if args.json:
            shared.write_json(args.json, {
                "config": {**cfg.__dict__, "servers": names,
                           "message_bytes": len(make_message(cfg.size))},
                "environment": shared.environment(twisted=harness._version("twisted"),
                                                  aiosmtpd=harness._version("aiosmtpd")),
                "rounds": results, "summary": summary, "ratios": rats,
            })
        return 0

    return shared.run_main("SMTP", body)

if __name__ == "__main__":
    sys.exit(main())
