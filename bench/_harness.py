"""What the protocol benchmarks (mail, irc, pop3) share on top of the
process, CPU and table primitives in bench/echo.py: a netlab server
program, readiness polling, interleaved rounds with retries, summaries,
notes, profiling, the common options and the run/cleanup frame of main."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

try:
    from bench import echo as base
except ImportError:  # run as a script: bench/ itself is on sys.path
    import echo as base  # type: ignore[import-not-found, no-redef]

HOST = base.HOST
spread, fmt, table = base.spread, base._fmt, base._table

_NETLAB_SERVER = r"""
import asyncio, signal, sys
from lab import Lab, Reactor

reactor = Reactor()
lab = Lab(reactor)

async def main(port, {params}):
    await lab.aserve({serve})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

reactor.run(main(int(sys.argv[1]), {args}))
"""


def netlab_server(serve: str, params: Sequence[str] = ("capture",)) -> str:
    """A program serving ``lab.aserve(serve)`` on argv[1] until SIGTERM;
    ``params`` name argv[2], argv[3], ... (strings) for ``serve`` to use."""
    return _NETLAB_SERVER.format(params=", ".join(params), serve=serve,
                                 args=", ".join(f"sys.argv[{i + 2}]" for i in range(len(params))))


def wait_accepting(server: base.Server, probe: Callable[[socket.socket], None], what: str,
                   timeout: float = base.READY_TIMEOUT, connect_timeout: float = 2.0) -> None:
    """Connect to ``server`` until a connection is accepted and ``probe``
    (which raises RuntimeError on a wrong answer) returns, within ``timeout``."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        server.check_alive()
        try:
            with socket.create_connection((HOST, server.port), timeout=connect_timeout) as s:
                probe(s)
                return
        except (ConnectionRefusedError, ConnectionResetError, TimeoutError):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)  # between connect attempts, not a readiness guess
    raise RuntimeError(f"{server.kind.key} did not {what} on port {server.port} within {timeout} s")


# -- rounds ----------------------------------------------------------------------


def least_disturbed(fn: Callable[[], dict[str, Any]], retries: int, limit: float) -> dict[str, Any]:
    """``fn()``, repeated up to ``retries`` more times while other processes
    took more than ``limit`` of either CPU; the least disturbed attempt."""
    best: dict[str, Any] | None = None
    for attempt in range(1, retries + 2):
        r = fn()
        r["attempts"] = attempt
        if best is None or r["other"] < best["other"]:
            best = r
        if r["other"] <= limit:
            break
    assert best is not None
    return best


def run_rounds(names: list[str], cfg: Any,
               measure_one: Callable[[str], dict[str, Any]], show: Callable[[dict[str, Any]], str]
               ) -> dict[str, list[dict[str, Any]]]:
    """Interleaved rounds (A B C, B C A, ...), progress on stderr; ``cfg``
    has rounds, retries and other_limit."""
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rnd in range(cfg.rounds):
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            r = least_disturbed(lambda n=name: measure_one(n), cfg.retries, cfg.other_limit)  # type: ignore[misc]
            r["round"] = rnd
            results[name].append(r)
            print(f"  round {rnd + 1}/{cfg.rounds} {name:<15} {show(r)} | other load {r['other']:.0%}",
                  file=sys.stderr, flush=True)
    return results


# -- summaries -------------------------------------------------------------------


def summarize(results: dict[str, list[dict[str, Any]]], keys: Iterable[str]
              ) -> dict[str, dict[str, dict[str, float]]]:
    keys = tuple(keys)
    return {name: {k: spread([r[k] for r in rows]) for k in keys} for name, rows in results.items()}


def per_round(results: dict[str, list[dict[str, Any]]], cand: str, ref: str,
              ratio: Callable[[dict[str, Any], dict[str, Any]], float]) -> dict[str, float]:
    """The spread of ``ratio(candidate's round, reference's round)`` over the rounds."""
    return spread([ratio(c, r) for c, r in zip(results[cand], results[ref], strict=True)])


def notes(summary: dict[str, Any], results: dict[str, list[dict[str, Any]]], labels: Mapping[str, str],
          other_limit: float, idle_cause: str) -> list[str]:
    """Warnings about windows other processes disturbed, and about an idle
    server CPU (the load generator, ``idle_cause``, set the pace)."""
    out = []
    for name, rows in results.items():
        worst = max((r["other"] for r in rows), default=0.0)
        if worst > other_limit:
            out.append(f"note: other processes took up to {worst:.0%} of a CPU during"
                       f" {labels[name]}'s windows: treat its spread with care.")
        idle = summary[name]["cpu0_idle"]["median"]
        if idle > 0.1:
            out.append(f"note: CPU 0 sat {idle:.0%} idle under {labels[name]}: {idle_cause}.")
    return out


# -- profile mode ----------------------------------------------------------------


def profile(server_cls: type[base.Server], kind: Any, drive: Callable[[int], int], unit: str,
            top: int = 30) -> str:
    """Run one netlab server under cProfile while ``drive(port)`` loads it
    (returning how many ``unit``s it completed); the hottest functions, per
    ``unit``."""
    import pstats
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "server.prof")
        # [python, -c, CODE, PORT, ...] -> [python, -c, WRAPPER, CODE, OUT, PORT, ...]
        server = server_cls(kind, lambda argv: [*argv[:2], base.PROFILE_WRAPPER, argv[2], out, *argv[3:]])
        try:
            server.wait_ready()
            done = drive(server.port)
        finally:
            server.stop()
        if not os.path.exists(out):
            raise RuntimeError(f"no profile written:\n{server.stderr_tail()}")
        stats = pstats.Stats(out)
    units = max(done, 1)
    rows = []
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in entries[:top]:
        where = (os.path.relpath(filename, base.ROOT) if filename.startswith(base.ROOT)
                 else os.path.basename(filename))
        rows.append([f"{func} ({where}:{line})", f"{nc:,}", f"{nc / units:,.2f}",
                     f"{tt / units * 1e6:,.2f}", f"{ct / units * 1e6:,.2f}"])
    plural = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    head = (f"cProfile of {kind.label}: {done:,} {plural} over the server's life"
            " (profiling inflates absolute times: compare rows)")
    return head + "\n" + table(["function", "calls", f"calls/{unit}", f"own us/{unit}", f"cum us/{unit}"], rows)


# -- command line and main -------------------------------------------------------


def add_round_args(p: argparse.ArgumentParser, warmup: float) -> None:
    """--rounds, --seconds, --warmup (default ``warmup``) and --quick."""
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; --quick 2)")
    p.add_argument("--seconds", type=float, default=None,
                   help="timed seconds per server per round (default 3; --quick 1)")
    p.add_argument("--warmup", type=float, default=None,
                   help=f"discarded seconds per server process (default {warmup:g}; --quick 0.5)")
    p.add_argument("--quick", action="store_true", help="2 rounds x 1 s: a smoke test")


def add_server_args(p: argparse.ArgumentParser, servers: Mapping[str, Any], default: Sequence[str]) -> None:
    """--servers, --retries, --json and --profile (of a netlab server)."""
    p.add_argument("--servers", default=",".join(default),
                   help=f"comma-separated, from: {', '.join(servers)} (default: all)")
    p.add_argument("--retries", type=int, default=None,
                   help="re-measure a server up to this many times while other processes load either CPU"
                        " by more than 5%% (default 1; --quick 0)")
    p.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    p.add_argument("--profile", metavar="SERVER", choices=[k for k in servers if k.startswith("netlab")],
                   help="instead of the comparison, cProfile a netlab server under the same load")


def check_servers(p: argparse.ArgumentParser, args: argparse.Namespace, servers: Mapping[str, Any]) -> None:
    for name in args.servers.split(","):
        if name not in servers:
            p.error(f"unknown server {name!r}; choose from {', '.join(servers)}")


def environment(**versions: str | None) -> dict[str, Any]:
    """Where the figures were taken, with the peers' ``versions``."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), **versions,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "git": base._git_state()}


def write_json(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, default=str)


def run_main(what: str, body: Callable[[], int], cleanup: Callable[[], None] | None = None) -> int:
    """Pin this process to the client CPU and run ``body``; a failure is one
    line on stderr and exit 1; every server is stopped whatever happens."""
    for w in base.pin_client():
        print(w, file=sys.stderr)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return body()
    except (RuntimeError, OSError) as exc:
        print(f"{what} benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        base.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        if cleanup is not None:
            cleanup()
