"""Shared fixtures: a running lab."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab whose reactor runs in a background thread."""
    with Lab.start() as running:
        yield running
