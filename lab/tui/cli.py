"""``netlab tui``: the Textual lab console (also what plain ``netlab``
opens in a terminal).

Textual is imported only when the TUI runs, so ``netlab --help`` stays
light.  A lab file is read and validated by :mod:`lab.scenarios` before
the screen opens, so a mistake is the validator's one line and exit 2.

Tests: tests/tui/test_pieces.py, tests/tui/test_record_replay.py, tests/tui/test_pty.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from lab.errors import LabError, ScenarioError
from lab.reactor import LOOPS

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.scenarios import Scenario

__all__ = ["demo_starter", "lab_starter", "read_lab_file", "register", "run_tui"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tui", help="the lab console: endpoints, live traffic, detail, commands (plain `netlab`)",
        description="Open the netlab console on a lab: the demo lab (default), a lab file, or an "
        "empty lab.  Keys: : command bar, / filter, r record, s run a scenario, ? help, q quit.",
        epilog="examples:\n  netlab tui\n  netlab tui --empty\n  netlab tui lab.yaml      "
        "a lab file (`save FILE` writes one) or a scenario's lab\n  netlab tui --log events.jsonl"
        "   a saved log: traffic, filters, detail and ladder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("labfile", nargs="?", metavar="LABFILE",
                   help="a lab or scenario file whose `lab:` servers start instead of the demo")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--demo", action="store_true", help="servers and clients already talking (default)")
    which.add_argument("--empty", action="store_true", help="start with an empty lab")
    which.add_argument("--log", metavar="FILE", dest="saved_log",
                       help="look at a saved event log (`log save FILE`, --log-file) read-only")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.add_argument("--keep-secrets", action="store_true",
                   help="write passwords sent in cleartext into recordings, saved logs and lab files"
                   " (masked there by default)")
    p.set_defaults(handler=run_tui)


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


LabStarter = Callable[["Lab"], Coroutine[Any, Any, None]]
Startup = Callable[[], Coroutine[Any, Any, None]]
PutAway = Callable[[], Coroutine[Any, Any, list[str]]]


def shown_path(path: str, room: int = 40) -> str:
    """A file as the title shows it: relative to here when inside it, else its tail, so the lab's
    counts and a run's state after it are not cut off by a long absolute path."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        rel = path
    shown = path if rel.startswith("..") else rel
    if len(shown) <= room:
        return shown
    parts = shown.replace(os.sep, "/").split("/")
    tail = "/".join(parts[-2:]) if len(parts) > 1 else parts[-1]
    return "…/" + tail


def read_lab_file(path: str) -> Scenario:
    """The lab file at ``path``, read and validated now, so that a bad file
    is an error before the screen opens: the first scenario of the file
    (as ``netlab up`` takes it).  :class:`ScenarioError` says why not, with
    ``FILE:LINE:COL`` for a mistake in the file."""
    from lab.scenarios import load_file

    scenario = load_file(path)[0]
    if not scenario.servers and not scenario.steps:
        raise ScenarioError(f"{path} has no `lab:` servers to start and no steps to run",
                            hint="add a `lab:` part, or use --empty")
    return scenario  # steps alone (a recording that serves its own servers): `s` runs them


def lab_starter(scenario: Scenario) -> LabStarter:
    """The coroutine function that starts ``scenario``'s lab servers in a
    lab; a server that cannot start is a :class:`LabError` naming its line."""
    decls = list(scenario.servers)

    async def start(lab: Lab) -> None:
        for decl in decls:
            try:
                await lab.aserve(decl.protocol, **decl.kwargs())
            except LabError as exc:
                raise LabError(f"{scenario.path}:{decl.mark}: lab server {decl.name!r}: {exc}") from None

    return start


def demo_starter(lab: Lab) -> tuple[Startup, PutAway]:
    """The demo as the console runs it: a startup that runs it in ``lab``
    and a coroutine function that puts it away (its rounds end, its
    endpoints stop) before a scenario runs in the same lab."""
    from lab.demo import put_away, run_demo

    stop = asyncio.Event()
    ended = asyncio.Event()

    async def demo() -> None:
        try:
            await run_demo(lab, stop, interval=0.5)
        finally:
            ended.set()

    async def away() -> list[str]:
        stop.set()
        await asyncio.wait_for(ended.wait(), 30.0)
        return await put_away(lab)

    return (lambda: lab.reactor.run_async(demo())), away


def run_tui(args: argparse.Namespace) -> int:
    from lab.lab import Lab

    if args.labfile and (args.empty or args.demo or args.saved_log):
        other = "--empty" if args.empty else "--demo" if args.demo else "--log"
        _say(f"give a lab file or {other}, not both")
        return 2
    if args.saved_log:
        return _look_at_log(args)
    try:
        scenario = read_lab_file(args.labfile) if args.labfile else None
    except ScenarioError as exc:
        print(exc, file=sys.stderr, flush=True)  # FILE:LINE:COL: what is wrong — hint
        return 2

    from lab.tui.app import NetlabApp

    lab = Lab.start(loop=args.loop, keep_secrets=args.keep_secrets)
    startup = None
    title = "netlab"
    replay = None
    owns: list[str] = []
    away = None
    if scenario is not None:
        starter = lab_starter(scenario)
        startup, title = (lambda: lab.reactor.run_async(starter(lab))), f"netlab — {shown_path(args.labfile)}"
        replay = args.labfile if scenario.steps else None  # `s` offers to run its steps
        owns = [decl.name for decl in scenario.servers]  # a run restarts them, fresh
    elif not args.empty:
        (startup, away), title = demo_starter(lab), "netlab — demo lab"
    app = NetlabApp(lab, startup=startup, title=title, scenario_path=replay, scenario_owns=owns, put_away=away)
    try:
        code = app.run()
        _finish_recording(lab)
    finally:
        lab.close()
    return int(code or 0)


def _look_at_log(args: argparse.Namespace) -> int:
    """The console on a saved log: nothing runs, every view reads it."""
    from lab.lab import Lab
    from lab.logfile import load_log
    from lab.tui.app import NetlabApp

    try:
        saved = load_log(args.saved_log)
    except (LabError, OSError) as exc:
        _say(f"{exc}" if isinstance(exc, LabError) else f"cannot read {args.saved_log}: {exc.strerror or exc}")
        return 2
    lab = Lab.start(loop=args.loop, log=saved)
    try:
        app = NetlabApp(lab, title=f"netlab — {shown_path(args.saved_log)}", saved=args.saved_log)
        return int(app.run() or 0)
    finally:
        lab.close()


def _finish_recording(lab: Lab) -> None:
    """A recording still going when the console closes is stopped the way
    `record stop` stops it, so its file ends as it should."""
    from lab.commands import Interpreter
    from lab.scenarios._recorder import RECORDER

    recorder = lab.services.find(RECORDER)
    if recorder is None or not recorder.active:
        return
    try:
        (result,) = Interpreter(lab).execute("record stop", 10.0)
    except LabError as exc:
        _say(f"record stop: {exc}")
        return
    _say(result.text)
