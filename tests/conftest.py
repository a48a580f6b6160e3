"""Shared fixtures: a running lab, and foreign peers more than one
directory of tests needs (the rest are in tests/interop/conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Proc, free_port, loopback_host, need_root, wait_for_port
from hypothesis import settings

from lab import Lab

# CI runs the same examples every time: a red run is then a bug to fix,
# never a coin toss; locally hypothesis keeps exploring.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab whose reactor runs in a background thread."""
    with Lab.start() as running:
        yield running


@pytest.fixture
def finger_host() -> str:
    """A loopback address whose port 79 is free (the finger client only
    speaks to port 79, and binding it needs root)."""
    need_root("the finger interop test binds port 79 and")
    host = loopback_host(79)
    if host is None:
        pytest.fail("no loopback address with a free port 79")
    return host


@pytest.fixture
def aiosmtpd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """aiosmtpd's Mailbox handler: every message into a Maildir."""
    if importlib.util.find_spec("aiosmtpd") is None:
        pytest.fail("peer aiosmtpd is missing: pip install -e '.[test]'")
    port = free_port()
    maildir = tmp_path / "aiosmtpd"
    proc = Proc([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                 "-c", "aiosmtpd.handlers.Mailbox", str(maildir)])
    try:
        wait_for_port(port, timeout=30)
        yield port, maildir
    finally:
        proc.stop(15)
