"""Fixtures for the shell front-ends: a private home for each test, so
history and IPython profiles never touch the user's own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """Environment variables that point every per-user directory at a tmp dir."""
    root = tmp_path / "home"
    root.mkdir()
    return {
        "HOME": str(root),
        "XDG_DATA_HOME": str(root / "data"),
        "XDG_CONFIG_HOME": str(root / "config"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
