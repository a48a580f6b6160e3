"""Record and replay in the console, through Pilot over a live lab: `r`
records through the command language's recorder into a file that
`netlab run` passes; `s` runs a scenario file with its steps passing and
failing live in the scenario panel, without blocking the UI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_support import SIZE, command, output_text, static_text, until

from lab import Lab
from lab.scenarios import Recorder
from lab.scenarios._recorder import RECORDER
from lab.tui.app import NetlabApp
from lab.tui.prompt import PathPrompt

LIBRARY = Path(__file__).parent.parent.parent / "scenarios"

MIXED = """\
name: echo-mixed
lab:
  e: {protocol: echo}
steps:
  - connect: {to: e, as: c}
  - send: {to: c, text: hello}
  - expect: {from: c, equals: "hello\\r\\n"}
  - expect: {from: c, equals: "goodbye\\r\\n", timeout: 3}
  - send: {to: c, text: never}
"""


def netlab_run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", "run", str(path)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


async def answer_prompt(pilot: Pilot[object], value: str) -> PathPrompt:
    """Wait for the file prompt, type ``value`` over what it offers, press Enter."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, PathPrompt), what="the file prompt")
    prompt = app.screen
    assert isinstance(prompt, PathPrompt)
    prompt.input.value = value
    await pilot.press("enter")
    return prompt


def prompt_message(app: NetlabApp) -> str:
    return static_text(app, "#prompt-message")


def states(app: NetlabApp) -> dict[str, str]:
    """Step number -> the mark drawn for it (· ▶ ✓ ✗ –)."""
    table: DataTable[object] = app.scenario_panel.table
    out = {}
    for row in table.ordered_rows:
        mark, number = (str(cell) for cell in table.get_row(row.key)[:2])
        out[number or "head"] = mark
    return out


async def test_r_records_through_the_recorder_into_a_file_netlab_run_passes(lab: Lab, tmp_path: Path) -> None:
    """`r`, a file name, commands and a talked line, `r` again: the REC mark names the file while it lasts,
    the lab's recorder is the one `record` reports, and the file replays green."""
    path = tmp_path / "session.yaml"
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        prompt = await answer_prompt(pilot, str(path))
        await until(pilot, lambda: app.recording() is not None, what="the recording to start")
        assert lab.services.find(RECORDER) is app.recording() and isinstance(app.recording(), Recorder)
        assert prompt not in app.screen_stack
        app.refresh_status()
        title = static_text(app, "#titlebar")
        assert "● REC" in title and str(path) in title
        await command(pilot, "serve echo as e1; connect e1 as c1; send c1 hello; expect c1 hello")
        await until(pilot, lambda: "› serve echo" in output_text(app) and "c1 <- " in output_text(app))
        await command(pilot, "record")
        await until(pilot, lambda: f"recording to {path}" in output_text(app), what="`record` to report it")
        await pilot.press("escape", "t")  # talk: a line sent outside the command language is recorded too
        await until(pilot, lambda: app.commandbar.talking_to == "c1")
        app.commandbar.input.value = "again"
        await pilot.press("enter")
        await until(pilot, lambda: sum(e.raw == b"again\r\n" for e in lab.log.snapshot()) >= 3,
                    what="the echo of the talked line")
        await pilot.press("escape")
        app.traffic.focus()
        await pilot.press("r")
        await until(pilot, lambda: app.recording() is None, what="the recording to stop")
        await until(pilot, lambda: f"steps to {path}" in output_text(app), what="`record stop`'s report")
        app.refresh_status()
        assert "REC" not in static_text(app, "#titlebar")
        assert app.scenario_path == str(path)  # `s` offers the recording next
    text = path.read_text()
    assert "- serve: {as: e1, protocol: echo}" in text and "# end of recording" in text
    assert "again" in text
    out = netlab_run(path)
    assert out.returncode == 0, text + out.stdout + out.stderr
    assert "PASS  session" in out.stdout


async def test_the_record_prompt_checks_the_name_and_asks_before_replacing(lab: Lab, tmp_path: Path) -> None:
    """A directory is refused in the prompt; an existing file needs a second Enter; Esc records nothing."""
    existing = tmp_path / "old.yaml"
    existing.write_text("keep me\n")
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        prompt = await answer_prompt(pilot, str(tmp_path))
        assert "is a directory" in prompt_message(app) and app.screen is prompt
        prompt = await answer_prompt(pilot, str(existing))
        assert "exists" in prompt_message(app) and "Enter again" in prompt_message(app)
        assert existing.read_text() == "keep me\n" and app.recording() is None
        await pilot.press("escape")
        assert not isinstance(app.screen, PathPrompt) and app.recording() is None
        await pilot.press("r")
        await answer_prompt(pilot, str(existing))
        await pilot.press("enter")  # the second Enter: replace it
        await until(pilot, lambda: app.recording() is not None, what="the recording to start")
        assert existing.read_text().startswith("# Recorded with netlab")
        await pilot.press("r")
        await until(pilot, lambda: app.recording() is None)


async def test_the_palette_starts_and_stops_recording(lab: Lab, tmp_path: Path) -> None:
    """ctrl+p offers "Record: start recording" and, while recording, "Record: stop recording"."""
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"start recording", "enter")
        await answer_prompt(pilot, str(tmp_path / "palette.yaml"))
        await until(pilot, lambda: app.recording() is not None, what="the recording to start")
        await pilot.press("ctrl+p", *"stop recording", "enter")
        await until(pilot, lambda: app.recording() is None, what="the recording to stop")
    assert (tmp_path / "palette.yaml").read_text().rstrip().endswith("# end of recording: 0 steps")


async def test_a_scenario_run_shows_steps_passing_then_the_failure_live(lab: Lab, tmp_path: Path) -> None:
    """`s` and a file: the panel replaces the detail, steps turn ✓ as they pass while the UI keeps
    serving commands, the failing step turns ✗ with the runner's report, and the rest are marked not run."""
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await answer_prompt(pilot, str(path))
        panel = app.scenario_panel
        await until(pilot, lambda: panel.display and states(app).get("4") == "▶", what="step 4 to be running")
        assert not app.query_one("#detail").display
        assert [states(app)[n] for n in "12345"] == ["✓", "✓", "✓", "▶", "·"]
        assert panel.summary() == "running step 4 · 3 of 5 steps passed"
        assert str(path) in str(panel.border_title)
        await command(pilot, "serve echo as during")  # the console is not blocked by the run
        await until(pilot, lambda: "during" in lab.endpoints, what="a command while the scenario runs")
        assert not panel.ended
        await until(pilot, lambda: panel.ended, what="the run to end")
        assert [states(app)[n] for n in "12345"] == ["✓", "✓", "✓", "✗", "–"]
        assert panel.summary() == "failed at step 4 · 3 of 5 steps passed"
        report = static_text(app, "#scenario-report")
        assert report.startswith(f"{path}:8:13: echo-mixed: step 4 `expect c equals \"goodbye\\r\\n\"`")
        assert 'expected equals "goodbye\\r\\n"' in report and 'expected: equals' not in report  # said once
        assert 'arrived (decoded | raw):' in report and '"hello\\r\\n"' in report
        table: DataTable[object] = panel.table
        assert table.cursor_row == 3  # on the failed step
        # it ran in the console's lab: its endpoints stay to look at, its messages are in the traffic view
        assert {"e", "c"} <= set(lab.endpoints)
        assert any(e.conn == "c" and e.summary == '"hello\\r\\n"' for e in app.traffic.rows)


async def test_a_lesson_passes_and_esc_and_S_hide_and_show_the_panel(lab: Lab) -> None:
    """A lesson under scenarios/ runs green; Esc hides the panel (the detail returns), S brings it back."""
    lesson = LIBRARY / "finger" / "finger-lookup.yaml"
    app = NetlabApp(lab, scenario_path=str(lesson))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt))
        assert app.screen.input.value == str(lesson)  # type: ignore[attr-defined]
        await pilot.press("enter")
        panel = app.scenario_panel
        await until(pilot, lambda: panel.ended, what="the lesson to finish")
        steps = len(panel.run.scenarios[0].steps)  # type: ignore[union-attr]
        assert set(states(app).values()) == {"✓"} and len(states(app)) == steps
        assert panel.summary().startswith(f"passed: {steps} steps in ")
        assert not app.query_one("#scenario-report-scroll").display
        await pilot.press("escape")
        assert not panel.display and app.query_one("#detail").display
        assert app.traffic.has_focus  # the first key after Esc acts (t, o, ...), not lost in a hidden panel
        app.refresh_status()
        assert "scenario passed" in static_text(app, "#titlebar")
        await pilot.press("S")
        assert panel.display


async def test_a_bad_scenario_file_is_the_validators_line_in_the_prompt(lab: Lab, tmp_path: Path) -> None:
    """A file that does not load shows FILE:LINE:COL in the prompt, which stays open; a lab file has no steps."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - expct: {from: c, text: hi}\n")
    labfile = tmp_path / "lab.yaml"
    labfile.write_text("lab:\n  e: {protocol: echo}\n")
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        prompt = await answer_prompt(pilot, str(bad))
        assert app.screen is prompt
        assert f"{bad}:3:5: step 1: unknown step 'expct'" in prompt_message(app)
        await answer_prompt(pilot, str(labfile))
        assert "has no steps to run" in prompt_message(app) and app.screen is prompt
        await answer_prompt(pilot, str(tmp_path / "missing.yaml"))
        assert "no such file" in prompt_message(app)
        prompt.input.value = str(tmp_path / "ba")
        await pilot.press("tab")
        assert prompt.input.value == str(bad)
        await pilot.press("escape")
        assert app.scenario_run is None and not app.scenario_panel.display


async def test_c_stops_a_run_and_quitting_mid_run_does_not_wait_for_it(lab: Lab, tmp_path: Path) -> None:
    """`c` in the panel cancels the run at once; a run still going when the console quits is cancelled too."""
    slow = tmp_path / "slow.yaml"
    slow.write_text("lab:\n  e: {protocol: echo}\nsteps:\n  - connect: {to: e, as: c}\n"
                    "  - wait: {closed: c, timeout: 60}\n")
    app = NetlabApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await answer_prompt(pilot, str(slow))
        panel = app.scenario_panel
        await until(pilot, lambda: states(app).get("2") == "▶", what="the long wait to start")
        began = time.monotonic()
        await pilot.press("c")
        await until(pilot, lambda: panel.ended, what="the cancelled run to end")
        assert time.monotonic() - began < 20
        assert panel.summary() == "cancelled · 1 of 2 steps passed"
        assert states(app)["2"] == "✗" and "cancelled" in static_text(app, "#scenario-report")
        await pilot.press("s", "enter")  # the same file again, then quit while it waits
        await until(pilot, lambda: app.scenario_run is not None and app.scenario_run.number == 2
                    and states(app).get("2") == "▶", what="the second run's long wait")
        run = app.scenario_run
        await pilot.press("escape", "q")
        await until(pilot, lambda: app.return_code is not None, what="the app to exit")
    assert run is not None and run.cancelled.is_set()
    assert time.monotonic() - began < 40


async def test_a_lesson_runs_in_the_consoles_lab_and_again_from_the_same_start(lab: Lab) -> None:
    """A lesson's messages show in the traffic view as they happen; a second run stops what the first
    made and passes again."""
    lesson = LIBRARY / "mail" / "mail-send-and-fetch.yaml"
    app = NetlabApp(lab, scenario_path=str(lesson))
    async with app.run_test(size=SIZE) as pilot:
        panel = app.scenario_panel
        for number in (1, 2):
            await pilot.press("s", "enter")
            await until(pilot, lambda n=number: app.scenario_run is not None and app.scenario_run.number == n
                        and panel.ended, what=f"run {number} to finish")
            assert panel.summary().startswith("passed: "), static_text(app, "#scenario-report")
            await until(pilot, lambda: any(e.endpoint == "sender" and "RCPT TO" in e.summary
                                           for e in app.traffic.rows), what="the lesson's SMTP in the view")
        assert {"mx", "pop", "sender"} <= set(lab.endpoints)
        assert sum(1 for e in lab.log if e.endpoint == "mx" and e.kind.value == "listen") == 2


STEPS = """name: two-steps
lab:
  e: {protocol: echo}
steps:
  - connect: {to: e, as: c}
  - send: {to: c, text: one}
  - expect: {from: c, equals: "one\\r\\n"}
  - send: {to: c, text: two}
  - expect: {from: c, equals: "two\\r\\n"}
"""


async def test_n_goes_step_by_step_and_g_runs_the_rest(lab: Lab, tmp_path: Path) -> None:
    """`n` starts a run whose steps wait for a key, the waiting step marked ▷ and under the cursor;
    each `n` runs one step; `g` runs the rest without waiting; waiting does not use up the timeout."""
    path = tmp_path / "steps.yaml"
    path.write_text(STEPS)
    app = NetlabApp(lab, scenario_path=str(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        panel = app.scenario_panel
        await until(pilot, lambda: states(app).get("1") == "▷", what="step 1 to wait")
        assert "c" not in lab.endpoints and "e" in lab.endpoints  # the lab is up, no step has run
        assert panel.summary().startswith("step 1 next: n runs it, g runs the rest")
        assert panel.table.cursor_row == 0
        await pilot.press("n")
        await until(pilot, lambda: states(app).get("2") == "▷", what="step 2 to wait")
        assert states(app)["1"] == "✓" and "c" in lab.endpoints
        await pilot.press("n")
        await until(pilot, lambda: states(app).get("3") == "▷", what="step 3 to wait")
        assert panel.table.cursor_row == 2
        await until(pilot, lambda: any(e.conn == "c" and e.summary == '"one\\r\\n"' for e in app.traffic.rows),
                    what="what step 2 sent, in the traffic view")
        await pilot.press("g")
        await until(pilot, lambda: panel.ended, what="the rest to run")
        assert set(states(app).values()) == {"✓"}
        assert panel.summary().startswith("passed: 5 steps")


async def test_a_lab_files_servers_restart_and_the_demo_is_put_away(lab: Lab, tmp_path: Path) -> None:
    """Opened on a lab file, the first run restarts that file's servers, fresh; on the demo lab a run
    first puts the demo away (a lesson's server may share a demo name), then passes."""
    from lab.scenarios import load_file
    from lab.tui.cli import demo_starter, lab_starter

    lesson = LIBRARY / "irc" / "irc-registration.yaml"
    startup, away = demo_starter(lab)
    app = NetlabApp(lab, startup=startup, put_away=away, scenario_path=str(lesson))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "irc" in lab.endpoints and any(e.endpoint.startswith("demo") for e in lab.log),
                    what="the demo's servers and a client", timeout=60)
        await pilot.press("s", "enter")
        panel = app.scenario_panel
        await until(pilot, lambda: panel.ended, what="the lesson in the demo lab", timeout=60)
        assert panel.summary().startswith("passed: "), static_text(app, "#scenario-report")
        assert not any(e.background for e in lab.endpoints.values())
        assert app.title == "netlab"

    path = tmp_path / "steps.yaml"
    path.write_text(STEPS)
    scenario = load_file(str(path))[0]
    with Lab.start() as other:
        app = NetlabApp(other, startup=lambda: other.reactor.run_async(lab_starter(scenario)(other)),
                        scenario_path=str(path), scenario_owns=["e"])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "e" in other.endpoints, what="the lab file's server")
            first = other.endpoints["e"]
            await pilot.press("s", "enter")
            await until(pilot, lambda: app.scenario_panel.ended, what="the run")
            assert app.scenario_panel.summary().startswith("passed: ")
            assert other.endpoints["e"] is not first  # restarted, not a name clash
