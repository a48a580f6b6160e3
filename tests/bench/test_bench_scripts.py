"""The benchmark scripts import quietly and answer --help; bench/proxy.py
also runs once, briefly.

Speed is measured by running bench/*.py by hand (see bench/README.md),
not asserted in tests: these only keep the scripts importable and their
command lines intact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("echo", "mail", "irc", "pop3", "fairness", "proxy", "dns", "http")


@pytest.mark.parametrize("name", SCRIPTS)
def test_importing_a_benchmark_does_nothing(name: str) -> None:
    """Importing starts no server, prints nothing and leaves the CPU
    affinity alone."""
    code = (f"import os; before = os.sched_getaffinity(0); import bench.{name}; "
            "assert os.sched_getaffinity(0) == before")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_help_runs_as_a_script(name: str) -> None:
    """``python bench/NAME.py --help`` works (the script form imports its
    siblings without the package) and describes --quick and --json."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--json" in done.stdout


def test_proxy_benchmark_runs_briefly_and_prints_its_tables() -> None:
    """A short run relays both workloads through every relay, checks every
    echoed byte and prints the tables, the ratios and the targets (the
    figures themselves are not looked at)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "proxy.py"), "--quick", "--rounds", "1",
                           "--seconds", "0.2", "--warmup", "0.1", "--connections", "5", "--per-connection", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    for label in ("raw asyncio relay", "netlab capture off", "netlab capture summary", "netlab capture full"):
        assert sum(line.startswith(label + " ") for line in lines) == 2, label  # ping-pong and bulk rows
    assert "netlab off / raw relay" in out and ">= 0.80:" in out
    assert "netlab full / raw relay" in out and ">= 0.50:" in out
    checked = next(line for line in lines if line.startswith("checked: every echo equal"))
    trips = int(checked.split("(")[1].split(" round trips")[0].replace(",", ""))
    assert trips > 0
