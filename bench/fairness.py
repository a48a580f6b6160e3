#!/usr/bin/env python3
"""Fairness benchmark: is one flooded server felt by the others of its lab?

    python bench/fairness.py              # every flood, netlab and its peers, ~3 minutes
    python bench/fairness.py --quick      # shorter floods, a smoke test
    python bench/fairness.py --json out.json

One process serves an echo server and four line servers (netlab: ``netlab
up`` with echo, NNTP, telnet, SMTP and IRC; the peers, raw asyncio and
Twisted: an echo server and four line responders that answer every line,
``ARTICLE`` with 900 KB).  For each flood in turn, a client sends up to a
million short lines to one server as fast as it takes them, while an
echo client on the same process times a 20-byte round trip every 20 ms;
the server's resident memory is sampled every 50 ms.  Then a client
pipelines 2,000 ``ARTICLE`` commands and never reads.  Last, SIGTERM is
sent to a netlab lab under load and the time to exit is measured.

Reported per flood and server: the probe's p50, p99 and worst round trip,
and the peak RSS; ratios compare netlab's worst round trip with each
peer's (higher is better for netlab).  The targets (worst round trip
under 100 ms, RSS under 200 MB) are printed next to netlab's figures.
The server runs on CPU 0 and the load on CPU 1 (``taskset``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the flood and probe kit the fairness tests use

import fairness_kit as kit  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
TARGET_WORST_MS = 100.0
TARGET_RSS_MB = 200.0

_PEER_COMMON = r"""
import os, signal, sys
ARTICLE = b"220 1 <big@lab.test>\r\n" + (b"x" * 76 + b"\r\n") * (900 * 1024 // 78) + b".\r\n"

def answer(line):
    word = line.split(b" ", 1)[0].strip().upper()
    if word == b"ARTICLE":
        return ARTICLE
    return b"200 ok\r\n" if line.strip(b"\r\n\x00") else b""
"""

ASYNCIO_PEER = _PEER_COMMON + r"""
import asyncio

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

class Lines(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        self.transport.write(b"".join(answer(l) for l in lines))

async def main(ports):
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, "127.0.0.1", ports[0])
    for port in ports[1:]:
        await loop.create_server(Lines, "127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

asyncio.run(main([int(p) for p in sys.argv[1:]]))
"""

TWISTED_PEER = _PEER_COMMON + r"""
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineReceiver

class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

class Lines(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 1 << 20
    def lineReceived(self, line):
        reply = answer(line)
        if reply:
            self.transport.write(reply)

ports = [int(p) for p in sys.argv[1:]]
reactor.listenTCP(ports[0], protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
for port in ports[1:]:
    reactor.listenTCP(port, protocol.Factory.forProtocol(Lines), interface="127.0.0.1")
signal.signal(signal.SIGTERM, lambda *a: reactor.callFromThread(reactor.stop))
reactor.run()
"""


def peer_process(program: str) -> AbstractContextManager[kit.LabProcess]:
    """A peer serving echo and four line responders, on CPU 0."""
    return kit.serving(lambda ports, _: [sys.executable, "-c", program, *(str(ports[n]) for n in kit.SERVERS)],
                       SERVER_CPU)


def servers(args: argparse.Namespace) -> dict[str, Any]:
    """Name -> a context manager starting that server on CPU 0."""
    out: dict[str, Any] = {
        f"netlab ({args.capture})": lambda: kit.lab_process(args.capture, loop=args.loop, cpu=SERVER_CPU),
        "raw asyncio": lambda: peer_process(ASYNCIO_PEER),
    }
    if not args.no_twisted:
        out["Twisted"] = lambda: peer_process(TWISTED_PEER)
    return out


def measure(lab: kit.LabProcess, flood: str, args: argparse.Namespace) -> dict[str, Any]:
    """One flood (or the baseline, or the never-reading ARTICLE client)
    against ``lab``: the probe's figures and the peak RSS."""
    result: dict[str, Any] = {"flood": flood}
    with kit.RssSampler(lab) as rss, kit.Probe(lab.ports["echo"]) as probe:
        if flood == "none":
            time.sleep(args.seconds)  # the quiet baseline: nothing else to wait on
        elif flood == "never-reading ARTICLE":
            with kit.never_reading_article_client(lab.ports["nntp"]):
                time.sleep(args.seconds)  # a window to watch, not a readiness guess
        else:
            server, line, prelude = kit.FLOODS[flood]
            window = time.monotonic() + args.seconds
            with kit.Flood(lab.ports[server], line, prelude=prelude, lines=args.lines,
                           seconds=args.seconds) as f:
                f.wait()
                closed = not f.connected
            result["lines_sent"] = f.sent_lines
            result["ended"] = f.ended or ("the server closed it" if closed else "")
            while time.monotonic() < window:  # watch the whole window, however the flood ended
                time.sleep(0.05)
    result.update(probe.summary())
    result["probe_failures"] = probe.failures
    result["peak_rss_mb"] = rss.peak
    result["alive"] = lab.popen.poll() is None
    return result


def sigterm_under_load(args: argparse.Namespace) -> float:
    """Seconds from SIGTERM to exit for a netlab lab under an NNTP flood
    and a never-reading ARTICLE client."""
    with kit.lab_process(args.capture, loop=args.loop, cpu=SERVER_CPU) as lab:
        kit.post_article(lab.ports["nntp"])
        with kit.Flood(lab.ports["nntp"], b"DATE\r\n", seconds=60) as flood, \
                kit.never_reading_article_client(lab.ports["nntp"]):
            deadline = time.monotonic() + 60
            while flood.sent_lines < 100_000 and time.monotonic() < deadline:
                time.sleep(0.05)
            start = time.monotonic()
            os.kill(lab.pid, signal.SIGTERM)
            lab.popen.wait(60)
            return time.monotonic() - start


def _row(name: str, r: dict[str, Any]) -> str:
    alive = "" if r["alive"] else "  DIED"
    if r.get("ended"):
        alive += f"  (flood ended: {r['ended']}, {r.get('lines_sent', 0):,} lines sent)"
    fails = f"  {len(r['probe_failures'])} probe failures" if r["probe_failures"] else ""
    return (f"{name:<18} {r['count']:>6} {r['p50_ms']:>8.1f} {r['p99_ms']:>9.1f} {r['max_ms']:>9.1f}"
            f" {r['peak_rss_mb']:>9.0f}{alive}{fails}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s floods of at most 200,000 lines: a smoke test")
    parser.add_argument("--seconds", type=float, default=10.0, help="the longest a flood lasts (default 10)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per flood (default 1,000,000)")
    parser.add_argument("--capture", choices=("full", "summary", "off"), default="full",
                        help="what netlab records (default full)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--no-twisted", action="store_true", help="leave Twisted out")
    parser.add_argument("--floods", help="comma-separated floods to run (default: all; see the output's names)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.lines = 3.0, 200_000
    os.sched_setaffinity(0, {CLIENT_CPU})
    floods = ["none", *kit.FLOODS, "never-reading ARTICLE"]
    if args.floods:
        wanted = [f.strip() for f in args.floods.split(",")]
        unknown = [f for f in wanted if f not in floods]
        if unknown:
            parser.error(f"unknown flood {unknown[0]!r}: choose from {', '.join(floods)}")
        floods = wanted
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, start in servers(args).items():
        with start() as lab:
            if "netlab" in name:
                kit.post_article(lab.ports["nntp"])
            for flood in floods:
                r = measure(lab, flood, args)
                results.setdefault(flood, {})[name] = r
                print(f"  {flood:<22} {_row(name, r)}", flush=True)
                if not r["alive"]:
                    break
    print()
    print(f"probe round trips during each flood ({args.seconds:g} s, up to {args.lines:,} lines), ms;"
          " peak RSS of the server process, MB")
    print(f"{'flood':<22} {'server':<18} {'probes':>6} {'p50':>8} {'p99':>9} {'worst':>9} {'RSS MB':>9}")
    for flood, by_server in results.items():
        for name, r in by_server.items():
            print(f"{flood:<22} {_row(name, r)}")
    netlab_name = next(n for n in servers(args) if n.startswith("netlab"))
    print()
    print("worst round trip, peer over netlab (1.00 = parity, higher = netlab better)")
    for flood, by_server in results.items():
        mine = by_server.get(netlab_name)
        if mine is None or not mine["max_ms"]:
            continue
        cells = [f"{peer}: {r['max_ms'] / mine['max_ms']:.2f}" for peer, r in by_server.items()
                 if peer != netlab_name and r["max_ms"]]
        met = "met" if mine["max_ms"] < TARGET_WORST_MS and mine["peak_rss_mb"] < TARGET_RSS_MB else "NOT met"
        print(f"{flood:<22} {'   '.join(cells):<40} target (< {TARGET_WORST_MS:g} ms, < {TARGET_RSS_MB:g} MB): {met}")
    took = sigterm_under_load(args)
    print()
    print(f"SIGTERM under an NNTP flood and a never-reading ARTICLE client: exited after {took:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "sigterm_seconds": took,
                                               "args": vars(args)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
