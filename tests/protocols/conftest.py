"""Fixtures for protocol tests, all in memory; the classes live in
protocol_fakes.py.

Fixtures handing out classes and functions are session-scoped so that
hypothesis tests may use them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner


@pytest.fixture(scope="session")
def laws() -> ConversationLaws:
    """The conversation property checks."""
    return ConversationLaws()


@pytest.fixture(scope="session")
def make_peer() -> type[FakePeer]:
    """``make_peer(transport, conn_id=..., spec=..., window=...)``: a FakePeer."""
    return FakePeer


@pytest.fixture
def peer() -> FakePeer:
    """A TCP peer without a conversation (messages are sent as their raw bytes)."""
    return FakePeer()


@pytest.fixture(scope="session")
def loopback() -> type[Loopback]:
    """``loopback(spec, transport, options, window=..., prepare=...)``,
    inside a running loop."""
    return Loopback


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop."""
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def arun() -> Runner:
    """``arun(coro)``: run it on a fresh event loop and return its result."""
    return run
