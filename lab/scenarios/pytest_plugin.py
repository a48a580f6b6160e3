"""pytest plugin: scenario files as test items.

Registered as a ``pytest11`` entry point, so installing netlab is enough.
Files matching the ``netlab_scenarios`` ini globs (default
``scenarios/**/*.yaml``, relative to the rootdir) are collected; with the
default, only files with a top-level ``lab:`` or ``steps:`` key, since the
plugin is active in every project where netlab is installed; each
scenario in them is one item, with its tags as markers and the runner's
report as the failure text.  ``--netlab-safe`` runs files as
``netlab run --safe`` does: no programs or Python, paths kept in the
file's folder, loopback only, no lab console.

Tests: tests/scenarios/test_pytest_plugin.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioFile", "ScenarioItem"]

DEFAULT_GLOBS = ["scenarios/**/*.yaml", "scenarios/**/*.yml"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # no default here: an empty value tells "not set" apart from the user's own globs
    parser.addini("netlab_scenarios", type="linelist", default=[],
                  help="globs (relative to the rootdir) of scenario files to collect; ** spans folders"
                  f" (default: {' '.join(DEFAULT_GLOBS)})")
    parser.addoption("--netlab-safe", action="store_true", default=False,
                     help="untrusted files, as `netlab run --safe`: no programs or Python, paths inside "
                     "the file's folder, loopback only, no lab console")


def _glob_regex(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def wanted(path: Path, root: Path, globs: list[str]) -> bool:
    """Does ``path`` (under ``root``) match one of the ``globs``?"""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return False
    return any(_glob_regex(glob).fullmatch(rel) for glob in globs)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    globs = config.getini("netlab_scenarios")
    if not wanted(file_path, config.rootpath, globs or DEFAULT_GLOBS):
        return None
    if not globs and not _looks_like_a_scenario(file_path):
        # installed plugins load in every project: with the default globs,
        # leave alone YAML that is not ours (a project's own scenarios/ folder)
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


_SCENARIO_KEY = re.compile(r"^(?:lab|steps)\s*:", re.MULTILINE)


def _looks_like_a_scenario(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _SCENARIO_KEY.search(fh.read(64 * 1024)) is not None
    except OSError:
        return False


class ScenarioFile(pytest.File):
    """A scenario file: one item per scenario (YAML document)."""

    def collect(self) -> Iterator[pytest.Item]:
        from lab.errors import ScenarioError
        from lab.scenarios._model import load_file

        try:
            rel = self.path.relative_to(self.config.rootpath)
        except ValueError:
            rel = self.path
        try:
            scenarios = load_file(rel if not rel.is_absolute() else self.path,
                                  safe=bool(self.config.getoption("--netlab-safe")))
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        for scenario in scenarios:
            item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
            for tag in scenario.tags:
                self.config.addinivalue_line("markers", f"{tag}: scenario tag")
                item.add_marker(tag)
            yield item


class ScenarioFailed(Exception):
    """A scenario step failed; carries the runner's report."""


class ScenarioItem(pytest.Item):
    """One scenario, run in a fresh lab."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from lab.scenarios._runner import run_scenario

        outcome = run_scenario(self.scenario, safe=bool(self.config.getoption("--netlab-safe")))
        if not outcome.passed and outcome.failure is not None:
            raise ScenarioFailed(outcome.failure.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.scenario.mark.line - 1, f"scenario: {self.scenario.name}"
