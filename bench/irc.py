#!/usr/bin/env python3
"""IRC fan-out: netlab, ngIRCd and miniircd, side by side.

    python bench/irc.py                   # 5 rounds x 3 s, about 3 minutes
    python bench/irc.py --quick           # 2 rounds x 1 s, a smoke test
    python bench/irc.py --json out.json   # also write every figure as JSON

N clients join one channel; S of them send PRIVMSGs to it, each with at
most W messages in flight (sent and not yet seen by an observer that does
not send), so every sender keeps going as fast as the server relays.  Every
member but the sender gets each message: the figure is **deliveries/s**
(PRIVMSG lines all members received) and each delivery's latency, from the
sender's write to the member's read (p50/p99).  Every server is a
subprocess pinned to CPU 0; all the clients are this process, pinned to
CPU 1, busy-polling ``epoll``.  Flood protection is off on every server
that has one (netlab ``flood_burst=0``, ngIRCd ``MaxPenaltyTime = 0``;
miniircd has none): a server that throttles its senders is not measuring
its relay.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import shutil
import socket
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
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
CHANNEL = b"#bench"
MAX_LATENCIES = 5_000_000  # samples kept per window (memory bound)

# flood_burst=0: no token bucket, so senders are not throttled
NETLAB_SERVER = shared.netlab_server('"irc", port=port, capture=capture, flood_burst=0, max_users=1000')

NGIRCD_CONF = """\
[Global]
    Name = irc.bench.test
    Info = netlab benchmark
    Listen = 127.0.0.1
    Ports = {port}
    PidFile = {dir}/ngircd.pid
{identity}
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxPenaltyTime = 0
[Options]
    Ident = no
    PAM = no
    DNS = no
"""


@dataclass(frozen=True)
class ServerKind:
    key: str
    label: str
    kind: str  # netlab, ngircd, miniircd
    extra: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        if self.kind == "netlab":
            return [sys.executable, "-c", NETLAB_SERVER, str(port), *self.extra]
        if self.kind == "miniircd":
            args = [sys.executable, "-m", "miniircd", "--listen", HOST, "--ports", str(port)]
            return args + (["--setuid", "nobody"] if os.geteuid() == 0 else [])  # it refuses root
        program = shutil.which("ngircd") or "/usr/sbin/ngircd"
        # as root ngIRCd must drop to another user; it then cannot write its
        # pid file into our directory, which it logs and shrugs off
        identity = "    ServerUID = 65534\n    ServerGID = 65534" if os.geteuid() == 0 else ""
        conf_dir = tempfile.mkdtemp(prefix="bench-ngircd-")
        _TEMP_DIRS.append(conf_dir)
        conf = os.path.join(conf_dir, "ngircd.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(NGIRCD_CONF.format(port=port, dir=conf_dir, identity=identity))
        return [program, "-n", "-f", conf]


_TEMP_DIRS: list[str] = []

SERVERS: dict[str, ServerKind] = {k.key: k for k in (
    ServerKind("ngircd", "ngIRCd (C), MaxPenaltyTime 0", "ngircd"),
    ServerKind("miniircd", "miniircd (Python)", "miniircd"),
    ServerKind("netlab-full", "netlab capture full, flood off", "netlab", ("full",)),
    ServerKind("netlab-summary", "netlab capture summary, flood off", "netlab", ("summary",)),
    ServerKind("netlab-off", "netlab capture off, flood off", "netlab", ("off",)),
)}
DEFAULT_SERVERS = tuple(SERVERS)

RATIOS: tuple[tuple[str, str, str], ...] = (
    ("netlab-off", "miniircd", "netlab off / miniircd"),
    ("netlab-full", "miniircd", "netlab full / miniircd"),
    ("netlab-off", "ngircd", "netlab off / ngIRCd"),
    ("netlab-full", "ngircd", "netlab full / ngIRCd"),
    ("miniircd", "ngircd", "miniircd / ngIRCd"),
)


class IrcServer(harness.Server):
    """A server subprocess on CPU 0, ready once it accepts a connection."""

    def wait_ready(self, timeout: float = harness.READY_TIMEOUT) -> None:
        shared.wait_accepting(self, lambda s: None, "accept", timeout)


# -- the clients -----------------------------------------------------------------


class _Client:
    __slots__ = ("buf", "index", "sock")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock, self.index, self.buf = sock, index, b""


def _register(port: int, nick: str, timeout: float) -> socket.socket:
    """Connect, register as ``nick`` and join the channel (blocking, bounded)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n".encode())
    buf, joined = b"", False
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if time.monotonic() > deadline:
            break
        data = s.recv(65536)
        if not data:
            raise RuntimeError(f"server closed {nick}'s connection while registering: {buf[-200:]!r}")
        buf += data
        *lines, buf = buf.split(b"\r\n")
        for line in lines:
            words = line.split(b" ")
            if words[0] == b"PING":
                s.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
            elif len(words) > 1 and words[1] == b"001":
                s.sendall(b"JOIN " + CHANNEL + b"\r\n")
            elif len(words) > 1 and words[1] == b"366":
                joined = True
            elif len(words) > 1 and words[1][:1] == b"4" and words[1] != b"422":  # 422: no MOTD
                raise RuntimeError(f"{nick}: {line[:200]!r}")
        if joined:
            s.setblocking(False)
            return s
    raise RuntimeError(f"{nick} could not register and join within {timeout} s")


class FanOut:
    """``clients`` members of one channel; the first ``senders`` of them send
    with at most ``window`` messages each in flight; the last one, which
    never sends, is the observer that acknowledges them."""

    def __init__(self, port: int, clients: int, senders: int, window: int, size: int, rate: float = 0.0) -> None:
        self.window = window
        self.rate = rate  # messages/s from all senders together; 0: as fast as the window allows
        self.started = 0.0
        self.sent = 0
        self.pad = b"x" * max(0, size - 40)
        self.ep = select.epoll()
        self.clients: dict[int, _Client] = {}
        self.members = clients
        self.senders: list[_Client] = []
        self.in_flight = [0] * senders
        self.seq = 0
        self.delivered = 0
        self.latencies = array("q")
        for i in range(clients):
            s = _register(port, f"b{i}", 20.0)
            c = _Client(s, i)
            self.clients[s.fileno()] = c
            self.ep.register(s.fileno(), select.EPOLLIN)
            if i < senders:
                self.senders.append(c)
        self.observer = self.clients[max(self.clients)] if senders < clients else None
        self._drain_setup()

    def _drain_setup(self) -> None:
        """Read whatever the joins produced (JOIN notices of later members)."""
        deadline = time.perf_counter() + 2.0
        for _ in range(100_000):
            events = self.ep.poll(0.05)
            if not events or time.perf_counter() > deadline:
                return
            for fd, _ev in events:
                try:
                    self.clients[fd].sock.recv(1 << 20)
                except BlockingIOError:
                    pass

    def _send(self) -> None:
        ns = time.perf_counter_ns
        window, in_flight, pad = self.window, self.in_flight, self.pad
        due = len(self.senders)
        if self.rate:
            due = min(due, int((time.perf_counter() - self.started) * self.rate) - self.sent)
        for k, c in enumerate(self.senders):
            if due <= 0:
                break
            if in_flight[k] < window:
                line = b"PRIVMSG #bench :%d %s %d\r\n" % (k, pad, ns())
                try:
                    c.sock.send(line)  # a short line into an empty-enough buffer
                except BlockingIOError:
                    continue
                in_flight[k] += 1
                due -= 1
                self.sent += 1

    def _lines(self, c: _Client, data: bytes) -> None:
        now = time.perf_counter_ns()
        lines = (c.buf + data).split(b"\r\n")
        c.buf = lines.pop()
        observer = c is self.observer
        lat = self.latencies
        keep = len(lat) < MAX_LATENCIES
        for line in lines:
            i = line.find(b" PRIVMSG ")
            if i < 0:
                if line.startswith(b"PING"):
                    c.sock.sendall(b"PONG" + line[4:] + b"\r\n")
                continue
            self.delivered += 1
            text = line[line.index(b" :", i) + 2:]
            if keep:
                lat.append(now - int(text[text.rindex(b" ") + 1:]))
            if observer:
                self.in_flight[int(text[:text.index(b" ")])] -= 1

    def run(self, seconds: float) -> int:
        """Busy-poll for ``seconds``; returns PRIVMSG deliveries meanwhile."""
        poll, perf = self.ep.poll, time.perf_counter
        start = self.delivered
        clients = self.clients
        deadline = perf() + seconds
        if not self.started:
            self.started = perf()
        for _ in range(MAX_SPINS):
            self._send()
            for fd, _ev in poll(0):
                c = clients[fd]
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError(f"server closed member b{c.index}'s connection: {c.buf[-200:]!r}")
                self._lines(c, data)
            if perf() >= deadline:
                break
        return self.delivered - start

    def close(self) -> None:
        self.ep.close()
        for c in self.clients.values():
            c.sock.close()


# -- one measurement -------------------------------------------------------------


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    burn_in: float
    clients: int
    senders: int
    window: int
    size: int
    rate: float = 0.0
    retries: int = 1
    other_limit: float = 0.05


def _percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def measure(kind: ServerKind, cfg: Config) -> dict[str, Any]:
    """Start ``kind``, seat the members, warm up, time the fan-out, stop it."""
    server = IrcServer(kind)  # type: ignore[arg-type]  # duck-typed: key, label, argv()
    try:
        server.wait_ready()
        load = FanOut(server.port, cfg.clients, cfg.senders, cfg.window, cfg.size, cfg.rate)
        gc.collect()
        gc.disable()
        try:
            load.run(cfg.warmup)
            server.check_alive()
            del load.latencies[:]
            sent0 = load.sent
            window = harness.Window(server)
            done = load.run(cfg.seconds)
            w = window.close()
            sent = load.sent - sent0
            lat = sorted(load.latencies)
        finally:
            gc.enable()
            load.close()
        server.check_alive()
        mem = server.memory_kb()
    finally:
        server.stop()
    nan = float("nan")
    return {
        "deliveries": done,
        "rate": done / w["wall"],
        "messages": done / max(cfg.clients - 1, 1) / w["wall"],
        "sent": sent / w["wall"],
        "us": w["cpu"] / done * 1e6 if done else nan,
        "user_us": w["user"] / done * 1e6 if done else nan,
        "p50_ms": _percentile(lat, 0.50) / 1e6,
        "p99_ms": _percentile(lat, 0.99) / 1e6,
        "busy": w["cpu"] / w["wall"],
        "cpu0_idle": w["idle"],
        "other": w["other"],
        "rss_kb": mem.get("VmRSS", 0),
    }


# -- output ----------------------------------------------------------------------

spread, _fmt, _table = harness.spread, harness._fmt, harness._table
KEYS = ("rate", "messages", "sent", "us", "user_us", "p50_ms", "p99_ms", "busy", "cpu0_idle", "rss_kb")


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    return shared.summarize(results, KEYS)


def ratios(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-by-round ratios; 1.0 is parity, higher is better for the
    candidate (CPU and latency: reference's over candidate's)."""
    out = []
    for cand, ref, what in RATIOS:
        if cand not in results or ref not in results:
            continue
        pairs = list(zip(results[cand], results[ref], strict=True))
        out.append({
            "candidate": cand, "reference": ref, "what": what,
            "rate": spread([c["rate"] / r["rate"] for c, r in pairs]),
            "cpu": spread([r["us"] / c["us"] for c, r in pairs]),
            "p50": spread([r["p50_ms"] / c["p50_ms"] for c, r in pairs]),
            "p99": spread([r["p99_ms"] / c["p99_ms"] for c, r in pairs]),
        })
    return out


def report(summary: dict[str, Any], rats: list[dict[str, Any]], cfg: Config,
           results: dict[str, list[dict[str, Any]]]) -> str:
    parts = [
        (f"IRC fan-out: {cfg.clients} members of one channel, {cfg.senders} of them sending"
         f"{f' {cfg.rate:,.0f} messages/s in all' if cfg.rate else ''}, <= {cfg.window}"
         f" messages in flight each, ~{cfg.size} B lines; a delivery is one PRIVMSG read by one member;"
         f" {cfg.rounds} rounds x {cfg.seconds:g} s; median (min-max)"),
        "flood protection off everywhere: netlab flood_burst=0, ngIRCd MaxPenaltyTime 0, miniircd has none",
        _table(
            ["server", "deliveries/s", "messages/s", "sent/s", "CPU us/delivery", "p50 ms", "p99 ms", "server busy",
             "CPU 0 idle"],
            [[SERVERS[name].label, _fmt(s["rate"], ",.0f"), _fmt(s["messages"], ",.0f"),
              _fmt(s["sent"], ",.0f"), _fmt(s["us"], ".2f"),
              _fmt(s["p50_ms"], ".2f"), _fmt(s["p99_ms"], ".2f"), _fmt(s["busy"], ".0f", 100, "%"),
              _fmt(s["cpu0_idle"], ".0f", 100, "%")]
             for name, s in summary.items()],
        ),
        "",
        ("ratios, round by round, median (min-max); 1.00 = parity, higher = candidate better;"
         " CPU and latency: reference's over candidate's"),
        _table(
            ["comparison", "deliveries/s", "CPU per delivery", "p50 latency", "p99 latency"],
            [[r["what"], _fmt(r["rate"], ".2f"), _fmt(r["cpu"], ".2f"), _fmt(r["p50"], ".2f"),
              _fmt(r["p99"], ".2f")] for r in rats],
        ),
    ]
    parts += shared.notes(summary, results, {n: k.label for n, k in SERVERS.items()}, cfg.other_limit,
                          "the clients (one Python process) set that throughput; compare its CPU per delivery")
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="IRC channel fan-out: netlab vs ngIRCd vs miniircd.")
    shared.add_round_args(p, warmup=1)
    p.add_argument("--clients", type=int, default=50, help="members of the channel (default 50)")
    p.add_argument("--senders", type=int, default=5, help="members that send (default 5)")
    p.add_argument("--window", type=int, default=8, help="messages in flight per sender (default 8)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="messages/s offered by all senders together, to compare latency at one load"
                        " (default 0: as fast as the window allows, which measures capacity)")
    p.add_argument("--size", type=int, default=80, help="bytes of PRIVMSG text, about (default 80)")
    shared.add_server_args(p, SERVERS, DEFAULT_SERVERS)
    args = p.parse_args(argv)
    shared.check_servers(p, args, SERVERS)
    if not 1 <= args.senders < args.clients:
        p.error("--senders must be at least 1 and fewer than --clients (one member only listens)")
    if args.window < 1 or not 40 <= args.size <= 400:
        p.error("--window must be >= 1 and --size between 40 and 400")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    cfg = Config(
        rounds=args.rounds or (2 if quick else 5),
        seconds=args.seconds or (1.0 if quick else 3.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if quick else 1.0),
        burn_in=1.0 if quick else 3.0,
        clients=args.clients, senders=args.senders, window=args.window, size=args.size, rate=args.rate,
        retries=args.retries if args.retries is not None else (0 if quick else 1),
    )
    names = list(dict.fromkeys(args.servers.split(",")))

    def body() -> int:
        if args.profile:
            def drive(port: int) -> int:
                load = FanOut(port, cfg.clients, cfg.senders, cfg.window, cfg.size, cfg.rate)
                try:
                    return load.run(cfg.warmup + cfg.seconds)
                finally:
                    load.close()

            print(shared.profile(IrcServer, SERVERS[args.profile], drive, "delivery"))
            return 0
        est = cfg.burn_in + cfg.rounds * len(names) * (cfg.warmup + cfg.seconds + 2.5)
        print(f"IRC benchmark: {len(names)} servers x {cfg.rounds} rounds, about {est / 60:.1f} min;"
              f" servers on CPU {harness.SERVER_CPU}, clients on CPU {harness.CLIENT_CPU}", file=sys.stderr)
        harness.burn_in(cfg.burn_in)
        results = shared.run_rounds(
            names, cfg, lambda name: measure(SERVERS[name], cfg),
            lambda r: (f"{r['rate']:>9,.0f} deliveries/s {r['us']:6.2f} us/delivery"
                       f" p50 {r['p50_ms']:6.2f} ms p99 {r['p99_ms']:7.2f} ms {r['busy']:4.0%} busy"))
        summary = summarize(results)
        rats = ratios(results)
        print(report(summary, rats, cfg, results))
        if args.json:
            shared.write_json(args.json, {
                "config": {**cfg.__dict__, "servers": names},
                "environment": shared.environment(ngircd=_ngircd_version()),
                "rounds": results, "summary": summary, "ratios": rats,
            })
        return 0

    def cleanup() -> None:
        for d in _TEMP_DIRS:
            shutil.rmtree(d, ignore_errors=True)
        _TEMP_DIRS.clear()

    return shared.run_main("IRC", body, cleanup)

def _ngircd_version() -> str | None:
    import subprocess

    program = shutil.which("ngircd") or "/usr/sbin/ngircd"
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


if __name__ == "__main__":
    sys.exit(main())
