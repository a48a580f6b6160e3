#!/usr/bin/env python3
"""HTTP/1.1 benchmark: netlab against aiohttp, Twisted web and a minimal
asyncio + httptools server, with wrk as the load.

    python bench/http.py                  # 5 rounds x 3 s, about 3 minutes
    python bench/http.py --quick          # 2 rounds x 1 s, a smoke test
    python bench/http.py --json out.json  # also write every figure as JSON

Two workloads, each server a fresh subprocess pinned to CPU 0, wrk
pinned to CPU 1:

* hello: ``wrk -t1 -c50`` with keep-alive against a tiny dynamic route
  (``GET /hi`` answering ``hello``); reports requests/s and the server's
  own CPU time per request (utime + stime around the window);
* bulk: ``wrk -t1 -c1`` fetching a 64 MiB static file over and over;
  reports MB/s (10^6 bytes) and server CPU per MB, against lighttpd and
  Twisted web.

The targets the HTTP work set: netlab at capture off at least twice
aiohttp's requests/s, at capture full at least aiohttp's.  Rounds are
interleaved, ratios taken round by round.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
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
BULK_SIZE = 64 * 1024 * 1024

NETLAB_SERVER = r"""
import asyncio, signal, sys
from lab import Lab, Reactor

reactor = Reactor()
lab = Lab(reactor)

async def main(port, capture, root):
    srv = await lab.aserve("http", port=port, capture=capture, max_connections=1000,
                           **({"path": root} if root else {}))
    srv.route("/hi", lambda request: "hello\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

reactor.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""

AIOHTTP_SERVER = r"""
import sys
from aiohttp import web

async def hi(request):
    return web.Response(text="hello\n")

app = web.Application()
app.router.add_get("/hi", hi)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

TWISTED_SERVER = r"""
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
from twisted.web import resource, server, static

class Hi(resource.Resource):
    isLeaf = True
    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"hello\n"

root = static.File(sys.argv[2]) if sys.argv[2] else resource.Resource()
root.putChild(b"hi", Hi())
site = server.Site(root)
site.log = lambda request: None  # no access log: it costs about a quarter of the throughput
reactor.listenTCP(int(sys.argv[1]), site, interface="127.0.0.1")
reactor.run()
"""

RAW_SERVER = r"""
import asyncio, signal, sys
import httptools

HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n\r\nhello\n"

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
    def on_message_complete(self):
        self.transport.write(HELLO)

async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Http, "127.0.0.1", int(sys.argv[1]))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()

asyncio.run(main())
"""

LIGHTTPD_CONF = """server.document-root = "{root}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "/dev/null"
mimetype.assign = (".bin" => "application/octet-stream")
"""


@dataclass(frozen=True)
class ServerKind:
    key: str
    label: str
    code: str | None
    extra: tuple[str, ...] = ()
    static: bool = False  # serves the bulk file

    def argv(self, port: int) -> list[str]:
        root = _site() if self.static else ""
        if self.code is None:  # lighttpd
            conf = os.path.join(root, f"lighttpd-{port}.conf")
            with open(conf, "w", encoding="utf-8") as fh:
                fh.write(LIGHTTPD_CONF.format(root=root, port=port))
            return [shutil.which("lighttpd") or "/usr/sbin/lighttpd", "-D", "-f", conf]
        return [sys.executable, "-c", self.code, str(port), *self.extra, root]


SERVERS: dict[str, ServerKind] = {k.key: k for k in (
    ServerKind("netlab-off", "netlab capture off", NETLAB_SERVER, ("off",)),
    ServerKind("netlab-full", "netlab capture full", NETLAB_SERVER, ("full",)),
    ServerKind("aiohttp", "aiohttp", AIOHTTP_SERVER),
    ServerKind("twisted", "Twisted web (no access log)", TWISTED_SERVER),
    ServerKind("raw", "raw asyncio + httptools", RAW_SERVER),
    ServerKind("netlab-off-files", "netlab capture off, files", NETLAB_SERVER, ("off",), static=True),
    ServerKind("netlab-full-files", "netlab capture full, files", NETLAB_SERVER, ("full",), static=True),
    ServerKind("twisted-files", "Twisted web, files", TWISTED_SERVER, static=True),
    ServerKind("lighttpd-files", "lighttpd, files", None, static=True),
)}
HELLO_SERVERS = ("netlab-off", "netlab-full", "aiohttp", "twisted", "raw")
BULK_SERVERS = ("netlab-off-files", "netlab-full-files", "twisted-files", "lighttpd-files")

# (candidate, reference, what, target or None)
RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("netlab-off", "aiohttp", "netlab off / aiohttp", 2.0),
    ("netlab-full", "aiohttp", "netlab full / aiohttp", 1.0),
    ("netlab-off", "raw", "netlab off / raw asyncio + httptools", None),
    ("netlab-off", "twisted", "netlab off / Twisted web", None),
    ("aiohttp", "raw", "aiohttp / raw asyncio + httptools", None),
    ("netlab-off-files", "lighttpd-files", "netlab off files / lighttpd", None),
    ("netlab-off-files", "twisted-files", "netlab off files / Twisted web", None),
    ("netlab-full-files", "netlab-off-files", "netlab full files / off", None),
)

_SITE: list[str] = []


def _site() -> str:
    """A folder with the bulk file, made once per run."""
    if not _SITE:
        root = tempfile.mkdtemp(prefix="netlab-http-bench-")
        os.chmod(root, 0o755)
        with open(os.path.join(root, "big.bin"), "wb") as fh:
            block = bytes(range(256)) * 4096
            for _ in range(BULK_SIZE // len(block)):
                fh.write(block)
        os.chmod(os.path.join(root, "big.bin"), 0o644)
        _SITE.append(root)
    return _SITE[0]


class HttpServer(harness.Server):
    """A server on CPU 0, ready once it answers GET /hi (or the file)."""

    def wait_ready(self, timeout: float = harness.READY_TIMEOUT) -> None:
        target = b"/big.bin" if self.kind.static else b"/hi"

        def probe(s: Any) -> None:
            s.sendall(b"HEAD " + target + b" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            got = b""
            for _ in range(100):  # up to the end of the head: the raw server never closes
                chunk = s.recv(4096)
                got += chunk
                if not chunk or b"\r\n\r\n" in got:
                    break
            if not got.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{self.kind.key}: no 200 for {target.decode()}: {got[:80]!r}")

        shared.wait_accepting(self, probe, "answer", timeout, connect_timeout=5.0)


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    burn_in: float
    connections: int
    retries: int
    other_limit: float


_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "KB": 1024.0, "MB": 1024.0 ** 2, "GB": 1024.0 ** 3, "B": 1.0}


def wrk(port: int, path: str, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run on CPU 1: requests, bytes, its own duration, errors."""
    secs = max(1, round(seconds))
    out = subprocess.run(["taskset", "-c", str(harness.CLIENT_CPU), shutil.which("wrk") or "wrk", "-t1",
                          f"-c{connections}", f"-d{secs}s", f"http://{HOST}:{port}{path}"],
                         capture_output=True, text=True, timeout=secs + 60)
    text = out.stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
    read = re.search(r"requests in [\d.]+\w+, ([\d.]+)([KMG]?B) read", text)
    if out.returncode != 0 or done is None or read is None:
        raise RuntimeError(f"wrk failed: {out.stderr.strip() or text[-400:]}")
    scale = {"ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: (.*)", text)
    return {"requests": int(done.group(1)), "duration": float(done.group(2)) * scale,
            "bytes": float(read.group(1)) * _UNITS[read.group(2)], "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def measure(kind: ServerKind, cfg: Config) -> dict[str, Any]:
    server = HttpServer(kind)  # type: ignore[arg-type]
    try:
        server.wait_ready()
        path, conns = ("/big.bin", 1) if kind.static else ("/hi", cfg.connections)
        if cfg.warmup > 0:
            wrk(server.port, path, cfg.warmup, conns)
        window = harness.Window(server)  # type: ignore[arg-type]
        got = wrk(server.port, path, cfg.seconds, conns)
        w = window.close()
    finally:
        server.stop()
    if got["non2xx"] or got["socket_errors"]:
        raise RuntimeError(f"{kind.key}: {got['non2xx']} non-2xx answers, socket errors {got['socket_errors']!r}")
    requests = max(got["requests"], 1)
    return {"rate": got["requests"] / got["duration"], "us": w["cpu"] / requests * 1e6,
            "mbps": got["bytes"] / got["duration"] / 1e6,
            "us_per_mb": w["cpu"] / max(got["bytes"] / 1e6, 1e-9) * 1e6,
            "busy": w["cpu"] / w["wall"], "cpu0_idle": w["idle"], "other": w["other"]}


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    return shared.summarize(results, ("rate", "us", "mbps", "us_per_mb", "busy", "cpu0_idle"))


def ratios(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-by-round ratios: throughput (candidate over reference) and CPU
    (reference's CPU per unit over the candidate's); higher is better."""
    out = []
    for cand, ref, what, target in RATIOS:
        if cand not in results or ref not in results:
            continue
        bulk = SERVERS[cand].static
        rate, cost = ("mbps", "us_per_mb") if bulk else ("rate", "us")
        out.append({"candidate": cand, "reference": ref, "what": what, "target": target,
                    "throughput": shared.per_round(results, cand, ref, lambda c, r, k=rate: c[k] / r[k]),
                    "cpu": shared.per_round(results, cand, ref, lambda c, r, k=cost: r[k] / c[k])})
    return out


def report(summary: dict[str, Any], rats: list[dict[str, Any]], cfg: Config) -> str:
    fmt, table = shared.fmt, shared.table
    parts = []
    hello = [n for n in summary if not SERVERS[n].static]
    bulk = [n for n in summary if SERVERS[n].static]
    if hello:
        parts += [f"hello: wrk -t1 -c{cfg.connections}, keep-alive, GET /hi; {cfg.rounds} rounds x {cfg.seconds:g} s;"
                  " median (min-max)",
                  table(["server", "req/s", "server CPU us/req", "server busy"],
                        [[SERVERS[n].label, fmt(summary[n]["rate"], ",.0f"), fmt(summary[n]["us"], ".1f"),
                          fmt(summary[n]["busy"], ".0%")] for n in hello]), ""]
    if bulk:
        parts += [f"bulk: wrk -t1 -c1 GET of a {BULK_SIZE >> 20} MiB file; MB/s = 10^6 bytes/s",
                  table(["server", "MB/s", "server CPU us/MB", "server busy"],
                        [[SERVERS[n].label, fmt(summary[n]["mbps"], ",.0f"), fmt(summary[n]["us_per_mb"], ",.0f"),
                          fmt(summary[n]["busy"], ".0%")] for n in bulk]), ""]
    rows = []
    for r in rats:
        goal = ""
        if r["target"] is not None:
            ok = r["throughput"]["median"] >= r["target"]
            goal = f">= {r['target']:.2f}: {'met' if ok else 'NOT met'}"
        rows.append([r["what"], fmt(r["throughput"], ".2f"), fmt(r["cpu"], ".2f"), goal])
    if rows:
        parts += ["ratios, round by round (throughput; CPU per unit, reference / candidate): higher favours the"
                  " candidate", table(["ratio", "throughput", "CPU", "target"], rows)]
    return "\n".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="HTTP benchmark: netlab vs aiohttp, Twisted web, raw asyncio"
                                            " + httptools and lighttpd, under wrk.")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; --quick 2)")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per server per round"
                   " (default 3; --quick 1; wrk rounds to whole seconds)")
    p.add_argument("--warmup", type=float, default=None, help="discarded seconds per server process"
                   " (default 1; --quick 0: none)")
    p.add_argument("--quick", action="store_true", help="2 rounds x 1 s: a smoke test")
    p.add_argument("--servers", default=",".join(HELLO_SERVERS + BULK_SERVERS),
                   help=f"comma-separated, from: {', '.join(SERVERS)} (default: all)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections for hello (default 50)")
    p.add_argument("--retries", type=int, default=None, help="re-measure a disturbed window (default 1; --quick 0)")
    p.add_argument("--other-limit", type=float, default=5.0, metavar="PERCENT",
                   help="other processes' share of a CPU that counts as disturbed (default 5)")
    p.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    args = p.parse_args(argv)
    shared.check_servers(p, args, SERVERS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    cfg = Config(rounds=args.rounds or (2 if quick else 5), seconds=args.seconds or (1.0 if quick else 3.0),
                 warmup=args.warmup if args.warmup is not None else (0.0 if quick else 1.0),
                 burn_in=1.0 if quick else 3.0, connections=args.connections,
                 retries=args.retries if args.retries is not None else (0 if quick else 1),
                 other_limit=args.other_limit / 100)
    names = list(dict.fromkeys(args.servers.split(",")))

    def body() -> int:
        if shutil.which("wrk") is None:
            raise RuntimeError("wrk is not installed")
        est = cfg.burn_in + cfg.rounds * len(names) * (cfg.warmup + max(1, round(cfg.seconds)) + 1.5)
        print(f"HTTP benchmark: {len(names)} servers x {cfg.rounds} rounds, about {est / 60:.1f} min;"
              f" servers on CPU {harness.SERVER_CPU}, wrk on CPU {harness.CLIENT_CPU}", file=sys.stderr)
        harness.burn_in(cfg.burn_in)
        results = shared.run_rounds(
            names, cfg, lambda name: measure(SERVERS[name], cfg),
            lambda r: f"{r['rate']:>9,.0f} req/s {r['us']:7.1f} us/req {r['mbps']:8,.0f} MB/s {r['busy']:4.0%} busy")
        summary = summarize(results)
        rats = ratios(results)
        print(report(summary, rats, cfg))
        if args.json:
            shared.write_json(args.json, {"config": {**cfg.__dict__, "servers": names},
                                          "environment": shared.environment(), "rounds": results,
                                          "summary": summary, "ratios": rats})
        return 0

    def cleanup() -> None:
        for root in _SITE:
            shutil.rmtree(root, ignore_errors=True)
        _SITE.clear()

    return shared.run_main("HTTP", body, cleanup)


if __name__ == "__main__":
    sys.exit(main())
