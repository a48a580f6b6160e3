"""Shared fixtures: a running lab."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
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
