"""bench/dns.py imports quietly, answers --help, and runs once, briefly,
against netlab and dnsmasq (the figures are not looked at: speed is
measured by hand, see bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_dns_benchmark_does_nothing() -> None:
    """No server starts, nothing is printed, the CPU affinity stays."""
    code = ("import os; before = os.sched_getaffinity(0); import bench.dns; "
            "assert os.sched_getaffinity(0) == before")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_the_dns_benchmark_runs_briefly_and_prints_its_table() -> None:
    """--help names --quick and --json; one short round prints every server's row and the ratio."""
    script = str(ROOT / "bench" / "dns.py")
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--quick" in done.stdout and "--json" in done.stdout
    done = subprocess.run([sys.executable, script, "--quick", "--rounds", "1", "--seconds", "0.3", "--warmup", "0.1",
                           "--servers", "netlab-off,dnsmasq"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for label in ("netlab capture off", "dnsmasq"):
        assert sum(line.startswith(label + "  ") for line in lines) == 1, label  # the table row, padded
    assert "dnsmasq / netlab off" in done.stdout
