"""Functions the scenario tests name in `python:` steps."""

from __future__ import annotations

from typing import Any


def server_names(ctx: Any) -> str:
    """The lab's server names, joined."""
    return ",".join(s.name for s in ctx.lab.servers)


def fails(ctx: Any) -> None:
    """A check that does not hold."""
    raise AssertionError("the plan is missing")


def crashes(ctx: Any) -> None:
    """A hook with a bug in it."""
    raise ValueError("bad hook")
