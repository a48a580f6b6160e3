"""The pytest11 plugin, tested with pytest's own pytester: scenario files
become items, tags become markers, failures read like the runner's report."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

ECHO = """
    name: {name}
    tags: [{tag}]
    step_timeout: 1
    lab:
      e: {{protocol: echo}}
    steps:
      - connect: {{to: e, as: c}}
      - send: {{to: c, text: hi}}
      - expect: {{from: c, equals: "{reply}"}}
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # textual's snapshot plugin shares a temporary folder between sessions
    return pytester.runpytest("-p", "no:textual-snapshot", *args)


def scenario(name: str, tag: str = "echo", reply: str = "hi\\r\\n") -> str:
    return textwrap.dedent(ECHO.format(name=name, tag=tag, reply=reply))


def test_collects_one_item_per_scenario(pytester: pytest.Pytester) -> None:
    """Each YAML document under scenarios/ is one item, named after it."""
    pytester.makefile(".yaml", **{"scenarios/echo/two": scenario("first") + "---\n" + scenario("second")})
    result = run(pytester, "--collect-only", "-q", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["scenarios/echo/two.yaml::first", "scenarios/echo/two.yaml::second"])
    result = run(pytester, "-q")
    result.assert_outcomes(passed=2)


def test_failure_shows_the_runner_report(pytester: pytest.Pytester) -> None:
    """A red scenario fails with the step, the expectation and a reply diff."""
    pytester.makefile(".yaml", **{"scenarios/red": scenario("red", reply="bye\\r\\n")})
    result = run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*scenarios/red.yaml:9:13: red: step 3 `expect c equals \"bye\\r\\n\"`: got \"hi\\r\\n\" (timeout 1 s)",
        "*- \"bye\\r\\n\"*",
        "*+ \"hi\\r\\n\"*",
        "*event log, last*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_tags_are_markers(pytester: pytest.Pytester) -> None:
    """`-m TAG` selects scenarios by tag, even with --strict-markers."""
    pytester.makefile(".yaml", **{"scenarios/a": scenario("a", tag="fast"), "scenarios/b": scenario("b", tag="slow")})
    result = run(pytester, "-q", "--strict-markers", "-m", "fast")
    result.assert_outcomes(passed=1, deselected=1)


def test_the_glob_is_configurable_and_tests_yaml_is_left_alone(pytester: pytest.Pytester) -> None:
    """Only files matching `netlab_scenarios` are collected: YAML under
    tests/ (like the malformed corpus) is not."""
    pytester.makefile(".yaml", **{"labs/one": scenario("one"), "tests/bad/broken": "steps: [\n",
                                  "scenarios/skipped": scenario("skipped")})
    pytester.makeini("[pytest]\nnetlab_scenarios = labs/*.yaml\n")
    result = run(pytester, "-q")
    result.assert_outcomes(passed=1)
    assert "skipped" not in result.stdout.str()


def test_a_malformed_scenario_is_a_collection_error(pytester: pytest.Pytester) -> None:
    """A bad file is reported with its position, not a traceback."""
    pytester.makefile(".yaml", **{"scenarios/bad": "steps:\n  - sned: hi\n"})
    result = run(pytester, "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:2:5: step 1: unknown step 'sned'*"])


def test_safe_option_refuses_spawn(pytester: pytest.Pytester) -> None:
    """--netlab-safe refuses scenarios that spawn programs."""
    pytester.makefile(".yaml", **{"scenarios/spawn": "steps:\n  - spawn: {command: nc -h, as: p}\n"})
    result = run(pytester, "-q", "--netlab-safe")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*safe mode refuses*"])


def test_other_projects_yaml_is_left_alone_by_default(pytester: pytest.Pytester) -> None:
    """With the default globs, YAML without `lab:` or `steps:` is not ours;
    when the ini names the globs, every matching file must be a scenario."""
    pytester.makefile(".yaml", **{"scenarios/config": "database: {host: db}\n"})
    run(pytester, "-q").assert_outcomes()
    pytester.makeini("[pytest]\nnetlab_scenarios = scenarios/*.yaml\n")
    result = run(pytester, "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scenarios/config.yaml:1:1: unknown key 'database' in a scenario*"])
