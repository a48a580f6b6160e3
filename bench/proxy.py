#!/usr/bin/env python3
"""Proxy benchmark: netlab's Proxy against a minimal raw asyncio relay.

    python bench/proxy.py                  # 5 rounds x 3 s, about 4 minutes
    python bench/proxy.py --quick          # 2 rounds x 1 s, a smoke test
    python bench/proxy.py --json out.json  # also write every figure as JSON
    python bench/proxy.py --profile netlab-off   # cProfile one relay's hot path

Each relay is a subprocess pinned to CPU 0 (``taskset -c 0``); behind it,
the same echo server for every relay; in front, the load generator.  Both
are this process, pinned to CPU 1 and busy-polling one epoll: the echo
server's cost never shares the relay's CPU, and no second process on
CPU 1 has to be woken for each echo.  The relays compared: a minimal
asyncio relay written here (the simplest honest one: it dials the target
per client, reads nothing from the client until then, passes half-closes
on, and stops reading one side while the other's transport is paused),
Twisted's ``portforward``, and netlab's Proxy at capture off, summary and
full.  Two workloads:

* ping-pong: 50 connections at a time, each making 50 round trips of a
  64-byte line, then closing while a new connection takes its place.
  Reports round trips/s and the relay's own CPU time per round trip.
* bulk: one connection, 1 MiB writes, the echo read while writing.
  Reports MB/s echoed back (1 MB = 10^6 bytes) and relay CPU per MB.

Every byte that comes back is compared with what was sent, so a relay that
loses, duplicates or corrupts data fails the run instead of looking fast.
Method as in bench/echo.py (see BENCHMARKING.md in the shared notes): a
burn-in, a fresh relay process per relay per round with a discarded
warm-up, rounds interleaved, medians with min-max, ratios round by round.

See bench/README.md for how to read the output.
Tests: tests/bench/test_bench_scripts.py
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import select
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from bench import _harness as shared
    from bench import echo as base
except ImportError:  # run as a script: bench/ itself is on sys.path
    import _harness as shared  # type: ignore[import-not-found, no-redef]
    import echo as base  # type: ignore[import-not-found, no-redef]

HOST = base.HOST

# -- the relays ------------------------------------------------------------------
# Each program takes its port as argv[1] and the echo server's as argv[2],
# serves 127.0.0.1 only, prints nothing and exits cleanly on SIGTERM.

# The simplest relay with the semantics netlab's Proxy has: nothing is read
# from the client until the target answers the dial, a half-close passes
# through, and while one leg's transport is paused the other stops reading.
RAW_RELAY = r"""
import asyncio, signal, sys

class Leg(asyncio.Protocol):
    peer = None
    transport = None
    eof = False

    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.peer.transport.write(data)
    def eof_received(self):
        self.eof = True
        if self.peer.eof:
            self.peer.transport.close()
            return False
        self.peer.transport.write_eof()
        return True
    def connection_lost(self, exc):
        if self.peer is not None:
            self.peer.transport.close()
    def pause_writing(self):
        self.peer.transport.pause_reading()
    def resume_writing(self):
        self.peer.transport.resume_reading()

class Front(Leg):
    def connection_made(self, transport):
        self.transport = transport
        transport.pause_reading()
        self.dial = asyncio.get_running_loop().create_task(self.connect())
    async def connect(self):
        try:
            _, back = await asyncio.get_running_loop().create_connection(Leg, "127.0.0.1", TARGET)
        except OSError:
            self.transport.close()
            return
        back.peer, self.peer = self, back
        if self.transport.is_closing():
            back.transport.close()
        else:
            self.transport.resume_reading()

async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Front, "127.0.0.1", port, backlog=512)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()

TARGET = int(sys.argv[2])
asyncio.run(main(int(sys.argv[1])))
"""

# Twisted's port forwarder as shipped (each leg the other's producer), with
# TCP_NODELAY on both legs as asyncio sets it, and no factory log lines.
TWISTED_RELAY = r"""
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
from twisted.protocols import portforward

class Back(portforward.ProxyClient):
    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        super().connectionMade()

class BackFactory(portforward.ProxyClientFactory):
    protocol = Back
    noisy = False

class Front(portforward.ProxyServer):
    clientProtocolFactory = BackFactory
    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        super().connectionMade()

factory = portforward.ProxyFactory("127.0.0.1", int(sys.argv[2]))
factory.protocol = Front
factory.noisy = False
reactor.listenTCP(int(sys.argv[1]), factory, backlog=512, interface="127.0.0.1")
reactor.run()
"""

# netlab through its library, no event printing; the connection cap is
# raised so that closing connections never make a new one wait.
NETLAB_RELAY = r"""
import asyncio, signal, sys
from lab import Lab, Reactor

reactor = Reactor()
lab = Lab(reactor)

async def main(port, target, capture):
    await lab.aproxy("echo", to=f"127.0.0.1:{target}", port=port, capture=capture, max_connections=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

reactor.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""

# key -> (label, program, argv after the target's port)
RELAYS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "raw": ("raw asyncio relay", RAW_RELAY, ()),
    "twisted": ("Twisted portforward", TWISTED_RELAY, ()),
    "netlab-off": ("netlab capture off", NETLAB_RELAY, ("off",)),
    "netlab-summary": ("netlab capture summary", NETLAB_RELAY, ("summary",)),
    "netlab-full": ("netlab capture full", NETLAB_RELAY, ("full",)),
}

# (candidate, reference, what, target on the ratio or None)
RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("netlab-off", "raw", "netlab off / raw relay", 0.8),
    ("netlab-summary", "raw", "netlab summary / raw relay", None),
    ("netlab-full", "raw", "netlab full / raw relay", 0.5),
    ("twisted", "raw", "Twisted / raw relay", None),
    ("netlab-off", "twisted", "netlab off / Twisted", None),
    ("netlab-full", "twisted", "netlab full / Twisted", None),
)


def relay_kinds(target: int) -> dict[str, base.ServerKind]:
    return {key: base.ServerKind(key, label, code, (str(target), *extra))
            for key, (label, code, extra) in RELAYS.items()}


class Echo:
    """The echo server behind every relay, run by the load generator's own
    busy loop on CPU 1: it never shares the relay's CPU, and no second
    process on CPU 1 has to be woken and scheduled for each echo.
    Non-blocking sockets on one epoll; what the socket cannot take yet
    waits, and that connection is not read meanwhile."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((HOST, 0))
        self.listener.listen(1024)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.ep = select.epoll()
        self.ep.register(self.listener.fileno(), select.EPOLLIN)
        self.socks: dict[int, socket.socket] = {}
        self.pending: dict[int, memoryview] = {}  # echo bytes the socket did not take yet
        self.buf = bytearray(base.BULK_CHUNK)

    def event(self, fd: int) -> None:
        """One of its sockets is ready."""
        if fd not in self.socks:
            if fd == self.listener.fileno():
                self._accept()
            return
        if fd in self.pending:
            return  # not read until what it owes is written (flush)
        s = self.socks[fd]
        try:
            n = s.recv_into(self.buf)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if not n:
            self._drop(fd)
            return
        try:
            sent = s.send(memoryview(self.buf)[:n])
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(fd)
            return
        if sent < n:
            self.pending[fd] = memoryview(self.buf[sent:n])
            self.ep.modify(fd, 0)

    def flush(self) -> None:
        """Write what waits, as far as the sockets take it."""
        for fd, data in list(self.pending.items()):
            try:
                sent = self.socks[fd].send(data)
            except BlockingIOError:
                continue
            except OSError:
                self._drop(fd)
                continue
            if sent < len(data):
                self.pending[fd] = data[sent:]
            else:
                del self.pending[fd]
                self.ep.modify(fd, select.EPOLLIN)

    def pump(self) -> None:
        """One pass over its own sockets (the bulk load polls it so)."""
        for fd, _ev in self.ep.poll(0):
            self.event(fd)
        if self.pending:
            self.flush()

    def _accept(self) -> None:
        for _ in range(1024):
            try:
                s, _addr = self.listener.accept()
            except BlockingIOError:
                return
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks[s.fileno()] = s
            self.ep.register(s.fileno(), select.EPOLLIN)

    def _drop(self, fd: int) -> None:
        self.pending.pop(fd, None)
        self.ep.unregister(fd)
        self.socks.pop(fd).close()

    def close(self) -> None:
        for fd in list(self.socks):
            self._drop(fd)
        self.ep.close()
        self.listener.close()


class Relay(base.Server):
    """A relay process on CPU 0, ready once a line comes back through it
    from the echo server (which this process runs meanwhile)."""

    echo: Echo

    def wait_ready(self, timeout: float = base.READY_TIMEOUT) -> None:
        probe = b"ready?\r\n"

        def echoed(s: socket.socket) -> None:
            s.sendall(probe)
            s.setblocking(False)
            got = b""
            end = time.monotonic() + 5.0
            for _ in range(base.MAX_SPINS):
                self.echo.pump()
                try:
                    chunk = s.recv(64)
                except BlockingIOError:
                    chunk = None
                if chunk == b"" or time.monotonic() > end:
                    break
                got += chunk or b""
                if len(got) >= len(probe):
                    break
            if got != probe:
                raise RuntimeError(f"{self.kind.key}: {got!r} came back for {probe!r}")

        shared.wait_accepting(self, echoed, "relay a line", timeout)


def relay_type(echo: Echo) -> type[Relay]:
    """:class:`Relay` bound to ``echo`` (``shared.profile`` builds its own)."""
    return type("Relay", (Relay,), {"echo": echo})


# -- the load, with every echo checked -----------------------------------------


class Corrupted(RuntimeError):
    """The relay returned bytes that were not the ones sent."""


def _lines(size: int, count: int = 8) -> list[bytes]:
    """``count`` different ``size``-byte text lines: consecutive round trips
    differ, so a repeated or lost echo shows."""
    text = base.TEXT * (size // len(base.TEXT) + 2)
    return [text[i:i + size - 2] + b"\r\n" for i in range(count)]


class PingPong:
    """``conns`` connections at a time, one ``size``-byte line in flight on
    each; after ``trips`` round trips a connection closes and a new one
    takes its place.  Shares ``echo``'s epoll, and serves it."""

    def __init__(self, port: int, echo: Echo, conns: int, trips: int, size: int) -> None:
        self.port, self.echo, self.trips, self.size = port, echo, trips, size
        self.lines = _lines(size)
        self.socks: dict[int, socket.socket] = {}
        self.left: dict[int, int] = {}  # bytes of the current echo still to come
        self.count: dict[int, int] = {}  # round trips made on the connection
        self.buf = bytearray(65536)
        self.done = self.opened = 0
        for _ in range(conns):
            self._open()

    def _open(self) -> None:
        s = base._connect(self.port)
        fd = s.fileno()
        self.socks[fd], self.left[fd], self.count[fd] = s, self.size, 0
        self.echo.ep.register(fd, select.EPOLLIN)
        s.send(self.lines[0])  # 64 B into an empty socket buffer
        self.opened += 1

    def _retire(self, fd: int) -> None:
        self.echo.ep.unregister(fd)
        self.socks.pop(fd).close()
        del self.left[fd], self.count[fd]
        self._open()

    def run(self, seconds: float) -> int:
        """Busy-poll for ``seconds``; returns the round trips completed."""
        echo, poll, perf = self.echo, self.echo.ep.poll, time.perf_counter
        socks, left, count, lines = self.socks, self.left, self.count, self.lines
        buf, view, size, trips, nlines = self.buf, memoryview(self.buf), self.size, self.trips, len(self.lines)
        start = self.done
        deadline = perf() + seconds
        for _ in range(base.MAX_SPINS):
            for fd, _ev in poll(0):
                s = socks.get(fd)
                if s is None:
                    echo.event(fd)
                    continue
                try:
                    n = s.recv_into(buf)
                except BlockingIOError:
                    continue
                if not n:
                    raise ConnectionError("the relay closed a ping-pong connection")
                rest = left[fd]
                line = lines[count[fd] % nlines]
                if n > rest or not line.startswith(view[:n], size - rest):
                    raise Corrupted(f"expected {line[size - rest:]!r}, got {bytes(buf[:n])!r}")
                rest -= n
                if rest:
                    left[fd] = rest
                    continue
                self.done += 1
                made = count[fd] = count[fd] + 1
                if made == trips:
                    self._retire(fd)
                else:
                    left[fd] = size
                    s.send(lines[made % nlines])
            if echo.pending:
                echo.flush()
            if perf() >= deadline:
                break
        return self.done - start

    def close(self) -> None:
        for fd, s in self.socks.items():
            self.echo.ep.unregister(fd)
            s.close()
        self.socks.clear()


class Bulk:
    """One connection: write ``chunk``-byte buffers of non-repeating text,
    read the echo meanwhile (at most ``window`` bytes in flight), and serve
    ``echo``."""

    def __init__(self, port: int, echo: Echo, window: int, chunk: int = base.BULK_CHUNK) -> None:
        self.sock = base._connect(port)
        self.echo = echo
        printable = bytes(base.TEXT[i % len(base.TEXT)] for i in range(256))
        data = random.Random(chunk).randbytes(chunk).translate(printable)
        self.data, self.ref = memoryview(data), data + data  # ref: the stream at any offset
        self.chunk, self.window = chunk, window
        self.rbuf = bytearray(chunk)
        self.sent = self.received = 0

    def run(self, seconds: float, watch: Callable[[], None] | None = None, *, send: bool = True) -> int:
        """Pump for ``seconds``; returns the bytes echoed back meanwhile.
        ``watch`` is called every ~50 ms (and may raise to stop early);
        without ``send`` it only reads, until all that was sent is back."""
        s, data, chunk, window, rbuf, ref = self.sock, self.data, self.chunk, self.window, self.rbuf, self.ref
        view, pump = memoryview(rbuf), self.echo.pump
        sent, received = self.sent, self.received
        start = received
        now = time.perf_counter()
        deadline, next_watch = now + seconds, now + 0.05
        try:
            for _ in range(base.MAX_SPINS):
                pump()
                if send and sent - received < window:
                    try:
                        sent += s.send(data[sent % chunk:])
                    except BlockingIOError:
                        pass
                try:
                    n = s.recv_into(rbuf)
                except BlockingIOError:
                    n = -1
                if n == 0:
                    raise ConnectionError("the relay closed the bulk connection")
                if n > 0:
                    if not ref.startswith(view[:n], received % chunk):
                        raise Corrupted(f"bulk: the {n} bytes echoed at offset {received:,} differ from those sent")
                    received += n
                    if not send and received == sent:
                        break
                now = time.perf_counter()
                if now >= deadline:
                    break
                if watch is not None and now >= next_watch:
                    next_watch = now + 0.05
                    watch()
        finally:
            self.sent, self.received = sent, received
        return received - start

    def drain(self, timeout: float = 10.0) -> None:
        """Read (and check) until every byte sent came back."""
        self.run(timeout, send=False)
        if self.received != self.sent:
            raise Corrupted(f"bulk: {self.sent - self.received:,} bytes sent never came back")

    def close(self) -> None:
        self.sock.close()


# -- one measurement -------------------------------------------------------------


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    bulk_warmup: float
    burn_in: float
    connections: int
    trips: int
    size: int
    bulk_window: int
    max_rss_mb: int
    retries: int
    other_limit: float


def measure(kind: base.ServerKind, echo: Echo, cfg: Config) -> dict[str, Any]:
    """Start the relay ``kind``, warm it up, time ping-pong then bulk, stop it.
    The windows' CPU shares are base.Window's: the echo server is this
    process, so CPU 1's "other" load is what is not ours."""
    relay = relay_type(echo)(kind)
    nan = float("nan")
    try:
        relay.wait_ready()
        gc.collect()
        gc.disable()
        pp = PingPong(relay.port, echo, cfg.connections, cfg.trips, cfg.size)
        try:
            pp.run(cfg.warmup)
            window = base.Window(relay)
            opened = pp.opened
            done = pp.run(cfg.seconds)
            w = window.close()
            opened = pp.opened - opened
            checked_trips = pp.done
        finally:
            pp.close()
        relay.check_alive()
        out: dict[str, Any] = {
            "pp_trips": done, "pp_rate": done / w["wall"], "pp_conns": opened / w["wall"],
            "pp_us": w["cpu"] / done * 1e6 if done else nan, "pp_user_us": w["user"] / done * 1e6 if done else nan,
            "pp_busy": w["cpu"] / w["wall"], "pp_cpu0_idle": w["idle"], "pp_other": w["other"],
        }

        def watch() -> None:
            if relay.memory_kb().get("VmRSS", 0) > cfg.max_rss_mb * 1024:
                raise RuntimeError(f"{kind.key} grew past {cfg.max_rss_mb} MB in bulk")

        bulk = Bulk(relay.port, echo, cfg.bulk_window)
        try:
            bulk.run(cfg.bulk_warmup, watch)
            window = base.Window(relay)
            moved = bulk.run(cfg.seconds, watch)
            w = window.close()
            bulk.drain()
            checked_bytes = bulk.received
        finally:
            bulk.close()
        relay.check_alive()
        out.update({
            "bulk_bytes": moved, "bulk_mbps": moved / w["wall"] / 1e6,
            "bulk_us_per_mb": w["cpu"] / (moved / 1e6) * 1e6 if moved else nan,
            "bulk_busy": w["cpu"] / w["wall"], "bulk_cpu0_idle": w["idle"], "bulk_other": w["other"],
            "peak_rss_kb": relay.memory_kb().get("VmHWM", 0),
            "other": max(out["pp_other"], w["other"]),
            "checked_trips": checked_trips, "checked_bytes": checked_bytes,
        })
        return out
    except Corrupted as exc:
        raise RuntimeError(f"{kind.label} relayed wrong bytes: {exc}") from None
    finally:
        gc.enable()
        relay.stop()


# -- output ----------------------------------------------------------------------

KEYS = ("pp_rate", "pp_us", "pp_user_us", "pp_busy", "pp_cpu0_idle", "pp_conns",
        "bulk_mbps", "bulk_us_per_mb", "bulk_busy", "bulk_cpu0_idle", "peak_rss_kb")


def ratios(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-round ratios, then their spread; for every column 1.0 is parity
    and higher is better for the candidate (CPU: reference's over candidate's)."""
    out = []
    for cand, ref, what, target in RATIOS:
        if cand not in results or ref not in results:
            continue

        def of(fn: Callable[[dict[str, Any], dict[str, Any]], float], c: str = cand, r: str = ref) -> dict[str, float]:
            return shared.per_round(results, c, r, fn)

        out.append({
            "candidate": cand, "reference": ref, "what": what, "target": target,
            "trips": of(lambda c, r: c["pp_rate"] / r["pp_rate"]),
            "cpu": of(lambda c, r: r["pp_us"] / c["pp_us"]),
            "user": of(lambda c, r: r["pp_user_us"] / c["pp_user_us"]),
            "bulk": of(lambda c, r: c["bulk_mbps"] / r["bulk_mbps"]),
            "bulk_cpu": of(lambda c, r: r["bulk_us_per_mb"] / c["bulk_us_per_mb"]),
        })
    return out


def verdict(r: dict[str, Any]) -> str:
    """The target checked on the median ratios of both workloads, throughput and CPU."""
    target = r["target"]
    if target is None:
        return ""
    checks = [("trips/s", r["trips"]), ("trip CPU", r["cpu"]), ("MB/s", r["bulk"]), ("MB CPU", r["bulk_cpu"])]
    missed = [name for name, s in checks if not s["median"] >= target]
    if not missed:
        return f">= {target:.2f}: met"
    if len(missed) == len(checks):
        return f">= {target:.2f}: NOT met"
    return f">= {target:.2f}: NOT met on {', '.join(missed)}"


def report(summary: dict[str, Any], rats: list[dict[str, Any]], cfg: Config, labels: dict[str, str],
           results: dict[str, list[dict[str, Any]]]) -> str:
    fmt, table = shared.fmt, shared.table
    trips = sum(r["checked_trips"] for rows in results.values() for r in rows)
    moved = sum(r["checked_bytes"] for rows in results.values() for r in rows)
    parts = [
        (f"ping-pong through the relay: {cfg.connections} connections at a time, each {cfg.trips} round trips"
         f" of {cfg.size} B then a new one; {cfg.rounds} rounds x {cfg.seconds:g} s; median (min-max)"),
        table(["relay", "round trips/s", "relay CPU us/trip", "of which user", "relay busy", "CPU 0 idle",
               "connections/s"],
              [[labels[n], fmt(s["pp_rate"], ",.0f"), fmt(s["pp_us"], ".2f"), fmt(s["pp_user_us"], ".2f"),
                fmt(s["pp_busy"], ".0f", 100, "%"), fmt(s["pp_cpu0_idle"], ".0f", 100, "%"),
                fmt(s["pp_conns"], ",.0f")] for n, s in summary.items()]),
        "",
        (f"bulk through the relay: 1 connection, 1 MiB writes, <= {cfg.bulk_window >> 20} MiB in flight;"
         " MB = 10^6 bytes echoed back; median (min-max)"),
        table(["relay", "MB/s", "relay CPU us/MB", "relay busy", "CPU 0 idle", "peak RSS MB"],
              [[labels[n], fmt(s["bulk_mbps"], ",.0f"), fmt(s["bulk_us_per_mb"], ",.0f"),
                fmt(s["bulk_busy"], ".0f", 100, "%"), fmt(s["bulk_cpu0_idle"], ".0f", 100, "%"),
                fmt(s["peak_rss_kb"], ",.0f", 1 / 1024)] for n, s in summary.items()]),
    ]
    if rats:
        parts += [
            "",
            ("ratios, round by round, median (min-max); 1.00 = parity, higher = candidate better;"
             " CPU: reference's CPU per trip (or MB) over the candidate's"),
            table(["comparison", "round trips/s", "CPU per trip", "(user CPU)", "bulk MB/s", "CPU per MB", "target"],
                  [[r["what"], fmt(r["trips"], ".2f"), fmt(r["cpu"], ".2f"), fmt(r["user"], ".2f"),
                    fmt(r["bulk"], ".2f"), fmt(r["bulk_cpu"], ".2f"), verdict(r)] for r in rats]),
        ]
    parts += ["", f"checked: every echo equal to what was sent ({trips:,} round trips, {moved / 1e6:,.0f} MB)"]
    for name, rows in results.items():
        worst = max((r["other"] for r in rows), default=0.0)
        if worst > cfg.other_limit:
            parts.append(f"note: other processes took up to {worst:.0%} of a CPU during"
                         f" {labels[name]}'s windows: treat its spread with care.")
    for name, s in summary.items():
        for workload, key in (("ping-pong", "pp_cpu0_idle"), ("bulk", "bulk_cpu0_idle")):
            idle = s[key]["median"]
            if idle > 0.1:
                parts.append(f"note: CPU 0 sat {idle:.0%} idle under {labels[name]} ({workload}): the load"
                             " generator and echo server on CPU 1, not the relay, set that throughput;"
                             " compare its CPU per trip (or MB).")
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------


def _has_twisted() -> bool:
    return importlib.util.find_spec("twisted") is not None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Proxy benchmark: netlab's Proxy vs a raw asyncio relay"
                                            " (and Twisted's portforward).")
    shared.add_round_args(p, 2.0)
    default = [k for k in RELAYS if k != "twisted" or _has_twisted()]
    p.add_argument("--relays", "--servers", dest="relays", default=",".join(default),
                   help=f"comma-separated, from: {', '.join(RELAYS)} (default: all; twisted when installed)")
    p.add_argument("--connections", type=int, default=50, help="ping-pong connections at a time (default 50)")
    p.add_argument("--per-connection", type=int, default=50, dest="trips",
                   help="round trips per ping-pong connection before it closes (default 50)")
    p.add_argument("--size", type=int, default=base.PP_SIZE, help="ping-pong message bytes (default 64)")
    p.add_argument("--bulk-window", type=int, default=8, metavar="MIB",
                   help="bulk: at most this many MiB sent and not yet echoed (default 8)")
    p.add_argument("--max-rss-mb", type=int, default=4096, help="fail a relay that grows past this (default 4096)")
    p.add_argument("--retries", type=int, default=None,
                   help="re-measure a relay up to this many times while other processes load either CPU"
                        " by more than --other-limit (default 1; --quick 0)")
    p.add_argument("--other-limit", type=float, default=5.0, metavar="PERCENT",
                   help="other processes' share of a CPU that counts as disturbed (default 5)")
    p.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    p.add_argument("--profile", metavar="RELAY", choices=list(RELAYS),
                   help="instead of the comparison, cProfile RELAY under the same load")
    p.add_argument("--profile-workload", choices=("pingpong", "bulk"), default="pingpong",
                   help="the load to profile under (default pingpong)")
    args = p.parse_args(argv)
    for name in args.relays.split(","):
        if name not in RELAYS:
            p.error(f"unknown relay {name!r}; choose from {', '.join(RELAYS)}")
    if args.size < 3:
        p.error("--size must be at least 3 (a line ends in CRLF)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    cfg = Config(
        rounds=args.rounds or (2 if quick else 5),
        seconds=args.seconds or (1.0 if quick else 3.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if quick else 2.0),
        bulk_warmup=0.25 if quick else 0.5,
        burn_in=1.0 if quick else 3.0,
        connections=args.connections, trips=args.trips, size=args.size,
        bulk_window=args.bulk_window << 20, max_rss_mb=args.max_rss_mb,
        retries=args.retries if args.retries is not None else (0 if quick else 1),
        other_limit=args.other_limit / 100,
    )
    names = list(dict.fromkeys(args.relays.split(",")))

    def body() -> int:
        echo = Echo()
        try:
            return compare(echo)
        finally:
            echo.close()

    def compare(echo: Echo) -> int:
        kinds = relay_kinds(echo.port)
        if args.profile:
            print(profile(kinds[args.profile], echo, cfg, args.profile_workload))
            return 0
        per_relay = cfg.warmup + cfg.bulk_warmup + 2 * cfg.seconds + 1.0
        print(f"proxy benchmark: {len(names)} relays x {cfg.rounds} rounds, about"
              f" {(cfg.burn_in + cfg.rounds * len(names) * per_relay) / 60:.1f} min; relays on CPU"
              f" {base.SERVER_CPU}, the load generator and its echo server on CPU {base.CLIENT_CPU}",
              file=sys.stderr)
        if "twisted" not in names and not _has_twisted():
            print("Twisted is not installed: its portforward is left out", file=sys.stderr)
        base.burn_in(cfg.burn_in)
        results = shared.run_rounds(
            names, cfg, lambda name: measure(kinds[name], echo, cfg),
            lambda r: (f"{r['pp_rate']:>8,.0f} trips/s {r['pp_us']:6.2f} us/trip |"
                       f" bulk {r['bulk_mbps']:6,.0f} MB/s {r['bulk_us_per_mb']:6,.0f} us/MB"))
        summary = shared.summarize(results, KEYS)
        rats = ratios(results)
        labels = {k: kinds[k].label for k in names}
        print(report(summary, rats, cfg, labels, results))
        if args.json:
            shared.write_json(args.json, {
                "config": {**cfg.__dict__, "relays": names},
                "environment": shared.environment(twisted=base._version("twisted")),
                "rounds": results, "summary": summary, "ratios": rats})
        return 0

    return shared.run_main("proxy", body)


def profile(kind: base.ServerKind, echo: Echo, cfg: Config, workload: str) -> str:
    """The relay's hottest functions under cProfile, per round trip or per MB."""
    def drive(port: int) -> int:
        gc.disable()
        try:
            if workload == "pingpong":
                pp = PingPong(port, echo, cfg.connections, cfg.trips, cfg.size)
                try:
                    return pp.run(min(cfg.warmup, 1.0)) + pp.run(cfg.seconds)
                finally:
                    pp.close()
            bulk = Bulk(port, echo, cfg.bulk_window)
            try:
                return (bulk.run(min(cfg.warmup, 1.0)) + bulk.run(cfg.seconds)) // 1_000_000
            finally:
                bulk.close()
        finally:
            gc.enable()

    return shared.profile(relay_type(echo), kind, drive, "round trip" if workload == "pingpong" else "MB")


if __name__ == "__main__":
    sys.exit(main())
