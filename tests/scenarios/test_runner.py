"""`netlab run`: fresh labs, exit codes, reports, -x, -k, -j, JUnit XML;
the runner's steps, variables and matchers."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.scenarios import load_file, load_text
from lab.scenarios._runner import Outcome, Runner, StepState, StepUpdate, run_scenario
from lab.scenarios.cli import Selector

NETLAB = [sys.executable, "-m", "lab"]
LIBRARY = Path(__file__).parent.parent.parent / "scenarios"

PASSING = """
    name: {name}
    tags: [echo, quick]
    lab:
      e: {{protocol: echo}}
    steps:
      - connect: {{to: e, as: c}}
      - send: {{to: c, text: hello}}
      - expect: {{from: c, equals: "hello\\r\\n"}}
"""

FAILING = """
    name: finger-verbose
    tags: [finger]
    lab:
      f: {protocol: finger}
    steps:
      - connect: {to: f, as: c}
      - send: {to: c, text: bob}
      - wait: 0
      - expect: {from: c, regex: "Plan:", timeout: 2}
"""


def netlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_pass_and_fail_lines_and_exit_codes(write: Callable[..., Path]) -> None:
    """The issue's example: a PASS line, a FAIL line with the step and what
    arrived, a summary, exit 1; then the full report with the log tail."""
    good = write(PASSING.format(name="echo-basics"), "echo-basics.yaml")
    bad = write(FAILING, "finger-verbose.yaml")
    out = netlab("run", str(good), str(bad))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"  PASS  echo-basics\s+3 steps\s+\d+\.\d\d s", lines[0]), lines[0]
    assert lines[1].startswith("  FAIL  finger-verbose")
    assert 'step 4 `expect c /Plan:/ --timeout 2`: got "finger: bob: no such user.\\r\\n" (closed)' in lines[1]
    assert "arrived (decoded | raw):" in out.stdout
    assert 'finger-verbose.yaml:9:13: finger-verbose:' in out.stdout
    assert "event log, last" in out.stdout and "query user bob" in out.stdout
    assert lines[-1].startswith("1 passed, 1 failed in ")
    assert netlab("run", str(good)).returncode == 0


def test_a_bad_file_stops_everything_with_exit_2(write: Callable[..., Path]) -> None:
    """One malformed file: nothing runs, the error names file:line:col, exit 2."""
    good = write(PASSING.format(name="fine"), "fine.yaml")
    bad = write("steps:\n  - sned: hi\n", "bad.yaml")
    out = netlab("run", str(good), str(bad))
    assert out.returncode == 2
    assert out.stdout == ""
    assert re.search(r"bad\.yaml:2:5: step 1: unknown step 'sned' — did you mean 'send'\?", out.stderr)
    assert "Traceback" not in out.stderr
    assert netlab("run", "--target", "nowhere", str(good)).returncode == 2
    assert netlab("run").returncode == 2


def test_exitfirst_keyword_and_junit(write: Callable[..., Path], tmp_path: Path) -> None:
    """-x stops at the first failure; -k picks by tag or name; --junit-xml writes a report."""
    bad = write(FAILING, "a-bad.yaml")
    good = write(PASSING.format(name="z-good"), "z-good.yaml")
    out = netlab("run", "-x", str(bad), str(good))
    assert out.returncode == 1 and "z-good" not in out.stdout and "1 not run" in out.stdout
    out = netlab("run", "-k", "quick and not finger", str(bad), str(good))
    assert out.returncode == 0 and "finger-verbose" not in out.stdout and "z-good" in out.stdout
    assert netlab("run", "-k", "nothing-has-this", str(good)).returncode == 2
    report = tmp_path / "junit.xml"
    netlab("run", str(bad), str(good), "--junit-xml", str(report))
    suite = ET.parse(report).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='finger-verbose']/failure")
    assert failure is not None and "Plan:" in (failure.get("message") or "")


def test_parallel_runs_do_not_clash(write: Callable[..., Path]) -> None:
    """Twelve scenarios four at a time: each has its own lab and free ports."""
    paths = [str(write(PASSING.format(name=f"copy{i}"), f"copy{i}.yaml")) for i in range(12)]
    out = netlab("run", "-j", "4", *paths)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "12 passed" in out.stdout


def test_the_library_passes_and_a_directory_is_expanded() -> None:
    """`netlab run scenarios` runs every lesson green."""
    out = netlab("run", str(LIBRARY))
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(re.findall(r"^  PASS ", out.stdout, re.M)) >= 7


def test_variables_save_assert_and_call(write: Callable[..., Path]) -> None:
    """{server.port}, {saved.x}, save with a regex, assert on fields, call's result."""
    path = write("""
        lab:
          e: {protocol: echo}
          f: {protocol: finger, options: {user: {alice: Alice Liddell}}}
        steps:
          - save: {name: where, value: "port={e.port}", regex: 'port=(\\d+)'}
          - connect: {to: "127.0.0.1:{saved.where}", protocol: echo, as: c}
          - send: {to: c, text: "via {e.port} {{literal}}"}
          - expect: {from: c, text: "{{literal}}", save: m}
          - assert: {value: "{saved.m}", contains: "via {saved.where}"}
          - assert: {message: m, field: kind, equals: data}
          - assert: {message: m, field: raw, regex: "^via"}
          - connect: {to: f, as: d}
          - call: {client: d, verb: query, args: [alice], save: reply, contains: Alice}
          - assert: {value: "{saved.reply}", regex: "Alice", count: 1}
          - assert: {value: "{saved.reply}", contains: Bob, not: true}
    """)
    (scenario,) = load_file(path)
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_assertion_failures_say_what_was_found(write: Callable[..., Path]) -> None:
    """A failing assert names the expectation and the value."""
    path = write("""
        steps:
          - save: {name: x, value: apples}
          - assert: {value: "{saved.x}", equals: pears}
    """)
    outcome = run_scenario(load_file(path)[0])
    assert outcome.failure is not None
    assert outcome.failure.headline() == 'step 2 `assert \'{saved.x}\' equals \'pears\'`: got "apples"'


def test_scenario_timeout_bounds_the_whole_run() -> None:
    """The scenario's own timeout stops a run that would go on too long."""
    (scenario,) = load_text("timeout: 0.5\nsteps:\n  - wait: 0.3\n  - wait: 0.3\n  - wait: 0.3\n", "t.yaml")
    outcome = run_scenario(scenario)
    assert not outcome.passed and outcome.failure is not None
    assert "ran out of its 0.5 s" in outcome.failure.report()


def test_python_hooks_run_and_are_refused_when_safe(write: Callable[..., Path]) -> None:
    """A python step calls an importable function with the lab and saved values."""
    path = write("""
        lab:
          e: {protocol: echo}
        steps:
          - python: {function: "scenario_hooks:server_names", save: names}
          - assert: {value: "{saved.names}", equals: e}
          - python: "scenario_hooks:fails"
    """)
    outcome = run_scenario(load_file(path)[0])
    assert outcome.failure is not None and outcome.failure.step is not None
    assert outcome.failure.step.index == 3
    assert "scenario_hooks:fails failed: the plan is missing" in outcome.failure.report()
    crash = write("steps:\n  - python: scenario_hooks:crashes\n", "crash.yaml")
    report = run_scenario(load_file(crash)[0]).failure.report()  # type: ignore[union-attr]
    assert "scenario_hooks:crashes raised ValueError: bad hook (at scenario_hooks.py" in report
    refused = run_scenario(load_file(path)[0], safe=True)
    assert not refused.passed and "safe mode" in refused.failure.report()  # type: ignore[union-attr]


@pytest.mark.parametrize(("expr", "picked"), [
    ("echo", {"a"}), ("not echo", {"b"}), ("echo or finger", {"a", "b"}),
    ("(echo or finger) and slow", {"b"}), ("bee", {"b"}),
])
def test_keyword_expressions(expr: str, picked: set[str]) -> None:
    """-k: tags and name words with and/or/not and parentheses."""
    scenarios = load_text("name: a\ntags: [echo]\n---\nname: bee\ntags: [finger, slow]\n", "k.yaml")
    chosen = {s.name[0] for s in scenarios if Selector(expr)(s)}
    assert chosen == picked
    with pytest.raises(ValueError):
        Selector("echo and")


def test_control_characters_and_escapes_in_text(write: Callable[..., Path]) -> None:
    """Real CR/LF from a double-quoted YAML string and backslash escapes in
    command text both reach the wire as bytes."""
    path = write("""
        lab:
          e: {protocol: echo}
        steps:
          - connect: {to: e, as: c}
          - send: {to: c, text: "two\\r\\nlines", newline: false}
          - expect: {from: c, equals: "two\\r\\nlines"}
          - send: c -n 'tab\\there'
          - expect: c 'tab\\there'
    """)
    outcome = run_scenario(load_file(path)[0])
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_progress_on_a_terminal(write: Callable[..., Path]) -> None:
    """On a terminal, a transient line says what is running; results stay."""
    import pexpect

    paths = [str(write(PASSING.format(name=f"p{i}"), f"p{i}.yaml")) for i in range(3)]
    child = pexpect.spawn(sys.executable, ["-m", "lab", "run", *paths], encoding="utf-8", timeout=60)
    child.expect(r"\[0/3\] running p0")
    child.expect(r"PASS  p2")
    child.expect(r"3 passed in")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_send_to_a_server_that_hung_up_reports_the_replies(write: Callable[..., Path]) -> None:
    """A server that closes before the client has said everything (another
    implementation, a changed one): the failing send still shows what
    arrived against what was expected."""
    path = write("""
        lab:
          q: {protocol: qotd, options: {quote: [Hello there.]}}
        steps:
          - connect: {to: q, as: c}
          - wait: {closed: c}
          - send: {to: c, text: one more thing}
          - expect: {from: c, equals: "Goodbye.\\r\\n"}
    """)
    (scenario,) = load_file(path)
    outcome = run_scenario(scenario)
    assert not outcome.passed and outcome.failure is not None
    report = outcome.failure.report()
    assert outcome.failure.step is not None and outcome.failure.step.kind == "send"
    assert "closed" in outcome.failure.headline()
    assert "replies, expected (-) against received (+):" in report, report
    assert '+ "Hello there.\\r\\n"' in report and '- "Goodbye.\\r\\n"' in report, report


def test_progress_reports_each_step_as_it_starts_and_ends(write: Callable[..., Path]) -> None:
    """A progress callback hears every step start and pass, then the failing
    one with the same failure the outcome reports; steps after it are silent."""
    path = write("""
        lab:
          e: {protocol: echo}
        steps:
          - connect: {to: e, as: c}
          - send: {to: c, text: hello}
          - expect: {from: c, equals: "bye\\r\\n", timeout: 0.5}
          - send: {to: c, text: never}
    """)
    (scenario,) = load_file(path)
    updates: list[StepUpdate] = []
    outcome = Runner(scenario, progress=updates.append).run()
    seen = [(u.step.index, u.state) for u in updates]
    assert seen == [(1, StepState.RUNNING), (1, StepState.PASSED), (2, StepState.RUNNING), (2, StepState.PASSED),
                    (3, StepState.RUNNING), (3, StepState.FAILED)]
    assert all(u.scenario is scenario for u in updates)
    assert updates[-1].failure is outcome.failure and outcome.failure is not None
    assert 0.4 < updates[-1].seconds < 30 and updates[1].seconds >= 0
    assert '"hello\\r\\n"' in outcome.failure.report()


def test_a_progress_callback_that_raises_does_not_change_the_result(write: Callable[..., Path]) -> None:
    """Whoever watches a run cannot break it: the callback's error is logged, the run passes."""
    (scenario,) = load_file(write(PASSING.format(name="watched")))

    def broken(update: StepUpdate) -> None:
        raise RuntimeError("display bug")

    outcome = Runner(scenario, progress=broken).run()
    assert outcome.passed and outcome.steps_run == 3


def test_cancel_cuts_a_running_step_short(write: Callable[..., Path]) -> None:
    """cancel() from another thread ends a long wait at once; the outcome fails as cancelled."""
    import threading
    import time

    (scenario,) = load_file(write("""
        lab:
          e: {protocol: echo}
        steps:
          - connect: {to: e, as: c}
          - wait: {closed: c, timeout: 60}
          - send: {to: c, text: never}
    """))
    waiting = threading.Event()
    runner = Runner(scenario, progress=lambda u: u.step.index == 2 and u.state is StepState.RUNNING
                    and waiting.set())
    done: list[Outcome] = []
    thread = threading.Thread(target=lambda: done.append(runner.run()))
    thread.start()
    assert waiting.wait(60)
    began = time.monotonic()
    runner.cancel()
    thread.join(60)
    assert done and time.monotonic() - began < 15
    outcome = done[0]
    assert not outcome.passed and outcome.failure is not None and outcome.steps_run == 1
    assert outcome.failure.step is scenario.steps[1] and outcome.failure.message == "cancelled"


def test_cancel_before_a_run_starts_runs_no_step(write: Callable[..., Path]) -> None:
    (scenario,) = load_file(write(PASSING.format(name="never")))
    runner = Runner(scenario)
    runner.cancel()
    outcome = runner.run()
    assert not outcome.passed and outcome.steps_run == 0 and outcome.failure is not None
    assert outcome.failure.message == "cancelled"


def test_call_arguments_with_line_breaks_and_verbs_that_return_messages() -> None:
    """A message with CR LF in it reaches the verb whole (a statement would
    end at the line break); a verb's reply is checked on its text, not its repr."""
    (scenario,) = load_text('''
lab: {mx: smtp}
steps:
  - connect: {to: mx, as: c}
  - call: {client: c, verb: send_mail, args: [a@lab.test, bob@lab.test, "Subject: x\\r\\n\\r\\nLine one.\\r\\nTwo."],
           regex: '^250 2\\.0\\.0 OK queued'}
  - assert: {events: {endpoint: c, direction: out, grep: "Subject \\"x\\""}, count: 1}
  - call: {client: c, verb: noop, regex: '^250 ', contains: "250 2.0.0"}
''', "lines.yaml")
    outcome = run_scenario(scenario)
    assert outcome.passed, outcome.failure and outcome.failure.report()


def test_ctrl_c_during_a_run_says_interrupted_with_the_summary_so_far(tmp_path: Path) -> None:
    """Ctrl-C while a scenario waits in a long `expect`: at once, "interrupted",
    what passed and what did not run, exit 130 (not 1, a failure)."""
    import signal

    (tmp_path / "a_quick.yaml").write_text(
        "lab: {e: {protocol: echo}}\nsteps:\n  - connect: {to: e, as: c}\n  - send: {to: c, text: hi}\n"
        "  - expect: {from: c, text: hi}\n")
    (tmp_path / "b_slow.yaml").write_text(
        "lab: {e: {protocol: echo}}\nsteps:\n  - connect: {to: e, as: c}\n"
        "  - expect: {from: c, text: never, timeout: 60}\n")
    proc = subprocess.Popen([*NETLAB, "run", str(tmp_path / "a_quick.yaml"), str(tmp_path / "b_slow.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "PASS" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in out and "1 passed, 1 not run" in out
