"""Shared fixtures: a running lab, free ports, waiting on conditions."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from lab import Lab


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""

    def accepting() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(accepting, timeout, f"{host}:{port} to accept")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab whose reactor runs in a background thread."""
    with Lab.start() as running:
        yield running
