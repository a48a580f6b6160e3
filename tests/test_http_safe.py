"""A lab file's HTTP routes name Python functions, so a safe-mode run
refuses them (lab/jail.py) with one FILE:LINE:COL line; without --safe
the same file loads and its route answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab import Lab
from lab.errors import ScenarioError
from lab.scenarios import load_file

LAB_FILE = """name: routes
lab:
  web:
    protocol: http
    options:
      routes: {{"/cwd": "{module}:{function}"}}
"""


def test_safe_mode_refuses_routes_with_the_place_in_the_file(tmp_path: Path) -> None:
    """routes under --safe: refused before anything is imported, at the key's line."""
    path = tmp_path / "routes.yaml"
    path.write_text(LAB_FILE.format(module="os", function="getcwd"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_file(path, safe=True)
    text = str(info.value)
    assert re.match(rf"{re.escape(str(path))}:6:\d+: ", text), text
    assert "routes" in text and "safe mode refuses" in text
    assert load_file(path) is not None  # trusted, it loads


def test_a_route_from_options_answers(lab: Lab) -> None:
    """routes given as options are imported and answer like shell routes."""
    srv = lab.serve("http", routes={"/name": "tests.test_http_safe:hello"})
    c = lab.connect("http", srv)
    assert c.get("/name").text == "hello from a module\n"
    assert "/name" in srv.routes()


def hello(request: object) -> str:
    return "hello from a module\n"
