#!/usr/bin/env python3
"""DNS server benchmark: netlab (capture off, summary and full) against Twisted
names and dnsmasq, over UDP, in one run.

    python bench/dns.py                  # 5 rounds x 3 s
    python bench/dns.py --quick          # 2 rounds x 1 s, a smoke test
    python bench/dns.py --json out.json  # also write every figure as JSON

Every server is a subprocess pinned to CPU 0 (``taskset -c 0``) and
answers the same zone (the netlab demo zone, given to the others as a
BIND zone file and dnsmasq records); the load is ``dnsperf`` pinned to
CPU 1, one client socket, ``--outstanding`` queries in flight, cycling
through plain A and AAAA questions.  A round starts a fresh server,
discards a warm-up run, then times one run: queries/s from dnsperf, and
the server's own CPU time (utime + stime from ``/proc/PID/stat``) per
query answered, the figure that holds on a noisy machine.  Rounds are
interleaved and ratios taken round by round (BENCHMARKING.md).

netlab serves as users run it: the default reply budget on, its answers
kept as wire bytes (``--cache``, the default).  ``netlab-nocache``
(optional) shows the slow path alone, dnspython parsing and building
every answer.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

try:
    from bench import _harness as shared
    from bench import echo as base
except ImportError:  # run as a script: bench/ itself is on sys.path
    import _harness as shared  # type: ignore[import-not-found, no-redef]
    import echo as base  # type: ignore[import-not-found, no-redef]

HOST = base.HOST
QUESTIONS = [("www.lab.test", "A"), ("mail.lab.test", "A"), ("ns.lab.test", "A"), ("lab.test", "A"),
             ("www.lab.test", "AAAA"), ("WWW.Lab.Test", "A")]

NETLAB_SERVER = shared.netlab_server('"dns", transport="udp", port=port, capture=capture, cache=cache',
                                     ("capture", "cache"))

BIND_ZONE = """\
$ORIGIN lab.test.
$TTL 300
@ IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@ IN NS ns.lab.test.
@ IN A 127.0.0.1
@ IN AAAA ::1
ns IN A 127.0.0.1
www IN A 127.0.0.2
www IN AAAA ::1
mail IN A 127.0.0.3
"""

DNSMASQ_RECORDS = ("--host-record=lab.test,127.0.0.1,::1", "--host-record=ns.lab.test,127.0.0.1",
                   "--host-record=www.lab.test,127.0.0.2,::1", "--host-record=mail.lab.test,127.0.0.3",
                   "--auth-zone=lab.test", "--auth-server=ns.lab.test")


@dataclass(frozen=True)
class Kind:
    key: str
    label: str

    def argv(self, port: int, tmp: str) -> list[str]:
        if self.key.startswith("netlab"):
            capture = {"netlab-full": "full", "netlab-summary": "summary"}.get(self.key, "off")
            cache = "no" if self.key == "netlab-nocache" else "yes"
            return [sys.executable, "-c", NETLAB_SERVER, str(port), capture, cache]
        if self.key == "twisted":
            zone = os.path.join(tmp, "lab.zone")
            with open(zone, "w", encoding="ascii") as fh:
                fh.write(BIND_ZONE)
            twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
            return [sys.executable, twistd, "-n", "--pidfile=", "dns", "-i", HOST, "-p", str(port),
                    "--bindzone", zone]
        return [dnsmasq_path(), "-d", "-k", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root",
                "-p", str(port), f"--listen-address={HOST}", "--bind-interfaces", "--cache-size=0",
                "--log-facility=/dev/null", *DNSMASQ_RECORDS]


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("netlab-off", "netlab capture off"),
    Kind("netlab-full", "netlab capture full"),
    Kind("netlab-summary", "netlab capture summary"),
    Kind("twisted", "Twisted names (twistd dns)"),
    Kind("dnsmasq", "dnsmasq"),
    Kind("netlab-nocache", "netlab off, no answer cache"),
)}
DEFAULT = ("netlab-off", "netlab-summary", "netlab-full", "twisted", "dnsmasq")

# (candidate, reference, what, target: candidate's us/query at most reference's / target)
RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("netlab-off", "twisted", "Twisted / netlab off", 2.0),
    ("netlab-full", "twisted", "Twisted / netlab full", None),
    ("netlab-summary", "twisted", "Twisted / netlab summary", None),
    ("netlab-off", "dnsmasq", "dnsmasq / netlab off", None),
    ("netlab-nocache", "twisted", "Twisted / netlab no cache", None),
)


def dnsmasq_path() -> str:
    path = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(path):
        raise RuntimeError("dnsmasq is missing (apt-get install dnsmasq-base)")
    return path


def dual_port() -> int:
    """A port free for UDP and TCP (Twisted and dnsmasq listen on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind((HOST, 0))
            port = int(u.getsockname()[1])
            try:
                t.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def probe(port: int, timeout: float = 0.3) -> bool:
    """One A query for www.lab.test answered 127.0.0.2?"""
    wire = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x03lab\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(wire, (HOST, port))
            data = s.recv(4096)
        except OSError:
            return False
    return data[:2] == b"\x12\x34" and data.endswith(b"\x7f\x00\x00\x02")


class Server:
    """One DNS server subprocess pinned to the server CPU."""

    def __init__(self, kind: Kind, tmp: str) -> None:
        self.kind = kind
        self.port = dual_port()
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["taskset", "-c", str(base.SERVER_CPU), *kind.argv(self.port, tmp)],
                                     cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, start_new_session=True)
        base._LIVE.append(self.proc)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = base.READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._stderr.seek(0)
                tail = self._stderr.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"{self.kind.key} exited with {self.proc.returncode}:\n{tail}")
            if probe(self.port):
                return
        raise RuntimeError(f"{self.kind.key} did not answer on port {self.port} within {timeout} s")

    def cpu_split(self) -> tuple[float, float]:
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
            data = fh.read()
        fields = data[data.rindex(")") + 2:].split()
        return int(fields[11]) / base.CLK_TCK, int(fields[12]) / base.CLK_TCK

    def stop(self) -> None:
        base.stop_process(self.proc)
        self._stderr.close()


_FIGURE = re.compile(r"^\s*(Queries sent|Queries completed|Queries lost|Queries per second):\s+([\d.]+)", re.M)


def dnsperf(port: int, seconds: float, datafile: str, outstanding: int) -> dict[str, float]:
    """One dnsperf run pinned to the client CPU: sent, completed, lost, qps."""
    argv = ["taskset", "-c", str(base.CLIENT_CPU), shutil.which("dnsperf") or "dnsperf", "-s", HOST,
            "-p", str(port), "-d", datafile, "-l", f"{seconds:g}", "-c", "1", "-T", "1",
            "-q", str(outstanding), "-t", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    found = {k: float(v) for k, v in _FIGURE.findall(done.stdout)}
    if "Queries completed" not in found:
        raise RuntimeError(f"dnsperf said:\n{done.stdout[-1500:]}\n{done.stderr[-500:]}")
    return {"sent": found["Queries sent"], "completed": found["Queries completed"],
            "lost": found.get("Queries lost", 0.0), "qps": found["Queries per second"]}


@dataclass
class Config:
    rounds: int
    seconds: float
    warmup: float
    outstanding: int
    retries: int
    other_limit: float = 0.05


def measure(kind: Kind, cfg: Config, datafile: str, tmp: str) -> dict[str, Any]:
    server = Server(kind, tmp)
    try:
        server.wait_ready()
        dnsperf(server.port, cfg.warmup, datafile, cfg.outstanding)
        win = base.Window(server)  # type: ignore[arg-type]
        run = dnsperf(server.port, cfg.seconds, datafile, cfg.outstanding)
        w = win.close()
    finally:
        server.stop()
    done = max(run["completed"], 1.0)
    return {**run, "us_per_query": w["cpu"] / done * 1e6, "user_us": w["user"] / done * 1e6,
            "cpu0_idle": w["idle"], "other": w["other"], "wall": w["wall"]}


def report(results: dict[str, list[dict[str, Any]]], cfg: Config) -> tuple[str, dict[str, Any]]:
    summary = shared.summarize(results, ("qps", "us_per_query", "user_us", "lost", "cpu0_idle"))
    rows = [[KINDS[name].label, shared.fmt(s["qps"], ",.0f"), shared.fmt(s["us_per_query"], ".1f"),
             shared.fmt(s["user_us"], ".1f"), f"{s['lost']['median']:,.0f}"] for name, s in summary.items()]
    out = [f"DNS over UDP, dnsperf -q {cfg.outstanding}, {cfg.rounds} rounds x {cfg.seconds:g} s"
           " (medians, min-max)",
           shared.table(["server", "queries/s", "server CPU us/query", "of it user us", "lost"], rows)]
    ratios: dict[str, Any] = {}
    rat_rows = []
    for cand, ref, what, target in RATIOS:
        if cand not in results or ref not in results:
            continue
        r = shared.per_round(results, cand, ref, lambda c, r: r["us_per_query"] / c["us_per_query"])
        ratios[what] = r
        verdict = "" if target is None else ("meets" if r["median"] >= target else "MISSES") + f" >= {target:g}"
        rat_rows.append([what, shared.fmt(r, ".2f"), verdict])
    if rat_rows:
        out += ["", "CPU per query, reference / candidate (above 1: the candidate is cheaper)",
                shared.table(["ratio", "median (min-max)", "target"], rat_rows)]
    labels = {k: KINDS[k].label for k in results}
    out += shared.notes(summary, results, labels, cfg.other_limit, "dnsperf set the pace")
    return "\n".join(out), {"summary": summary, "ratios": ratios}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    shared.add_round_args(p, warmup=1.0)
    p.add_argument("--servers", default=",".join(DEFAULT),
                   help=f"comma-separated, from: {', '.join(KINDS)} (default: {','.join(DEFAULT)})")
    p.add_argument("--outstanding", type=int, default=64, help="queries in flight (dnsperf -q; default 64)")
    p.add_argument("--retries", type=int, default=None, help="re-measure a disturbed round (default 1; --quick 0)")
    p.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    args = p.parse_args(argv)
    for name in args.servers.split(","):
        if name not in KINDS:
            p.error(f"unknown server {name!r}; choose from {', '.join(KINDS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(rounds=args.rounds or (2 if args.quick else 5), seconds=args.seconds or (1.0 if args.quick else 3.0),
                 warmup=args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0),
                 outstanding=args.outstanding, retries=args.retries if args.retries is not None else
                 (0 if args.quick else 1))
    names = args.servers.split(",")
    if shutil.which("dnsperf") is None:
        print("dnsperf is missing (apt-get install dnsperf)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="netlab-bench-dns-")

    def body() -> int:
        datafile = os.path.join(tmp, "queries.txt")
        with open(datafile, "w", encoding="ascii") as fh:
            fh.writelines(f"{name} {rdtype}\n" for name, rdtype in QUESTIONS)
        if not args.quick:
            base.burn_in(3.0)
        results = shared.run_rounds(
            names, cfg, lambda n: measure(KINDS[n], cfg, datafile, tmp),
            lambda r: f"{r['qps']:9,.0f} q/s {r['us_per_query']:6.1f} us/q lost {r['lost']:,.0f}")
        text, doc = report(results, cfg)
        print(text)
        if args.json:
            shared.write_json(args.json, {"environment": shared.environment(dnsperf=_dnsperf_version()),
                                          "config": cfg.__dict__, "results": results, **doc})
        return 0

    return shared.run_main("dns", body, cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))


def _dnsperf_version() -> str | None:
    try:
        out = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Version ([\d.]+)", out.stdout + out.stderr)
    return m.group(1) if m else None


if __name__ == "__main__":
    sys.exit(main())
