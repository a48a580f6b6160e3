"""`expect d NXDOMAIN` in a scenario file: an expect step's text also
counts when the message itself says it matches (DNS rcodes, binary
messages), as `expect` at a prompt does."""

from __future__ import annotations

from pathlib import Path

from lab.scenarios._model import load_text
from lab.scenarios._runner import run_scenario

LESSON = """\
name: rcodes
step_timeout: 2
lab:
  d: {protocol: dns}
steps:
  - connect: {to: d, as: c}
  - send: {to: c, hex: "00070100000100000000000004636f7065036c616204746573740000010001"}
  - expect: c %s
"""


def run(word: str, tmp_path: Path) -> bool:
    (scenario,) = load_text(LESSON % word, str(tmp_path / "s.yaml"))
    return run_scenario(scenario).passed


def test_expect_an_rcode_by_name(tmp_path: Path) -> None:
    """nope.lab.test: NXDOMAIN matches; NOERROR does not (the bytes hold neither word)."""
    assert run("NXDOMAIN", tmp_path)
    assert not run("NOERROR", tmp_path)
