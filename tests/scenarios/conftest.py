"""Fixtures for the scenario tests: writing scenario files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to a file under tmp_path and return its path."""

    def writer(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return writer


@pytest.fixture
def finger_host() -> str:
    """A loopback address whose port 79 is free: Debian's finger client only
    speaks to port 79, so the server binds 127.0.0.N:79, which needs root."""
    import os
    import socket

    if os.geteuid() != 0:
        pytest.fail("finger interop binds port 79 and must run as root (CI does)")
    for last in range(20, 250):
        host = f"127.0.0.{last}"
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, 79))
            except OSError:
                continue
        return host
    pytest.fail("no loopback address with a free port 79")
