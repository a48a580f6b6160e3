"""The benchmark scripts import quietly and answer --help; they never run here.

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
SCRIPTS = ("echo", "mail", "irc", "pop3", "fairness")


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
