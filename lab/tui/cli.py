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
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from lab.errors import LabError, ScenarioError
from lab.reactor import LOOPS

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.scenarios import Scenario

__all__ = ["lab_starter", "read_lab_file", "register", "run_tui"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tui", help="the lab console: endpoints, live traffic, detail, commands (plain `netlab`)",
        description="Open the netlab console on a lab: the demo lab (default), a lab file, or an "
        "empty lab.  Keys: : command bar, / filter, r record, s run a scenario, ? help, q quit.",
        epilog="examples:\n  netlab tui\n  netlab tui --empty\n  netlab tui lab.yaml      "
        "a lab file (`save FILE` writes one) or a scenario's lab",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("labfile", nargs="?", metavar="LABFILE",
                   help="a lab or scenario file whose `lab:` servers start instead of the demo")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--demo", action="store_true", help="servers and clients already talking (default)")
    which.add_argument("--empty", action="store_true", help="start with an empty lab")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.set_defaults(handler=run_tui)


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


LabStarter = Callable[["Lab"], Coroutine[Any, Any, None]]


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


def run_tui(args: argparse.Namespace) -> int:
    from lab.lab import Lab

    if args.labfile and (args.empty or args.demo):
        _say(f"give a lab file or {'--empty' if args.empty else '--demo'}, not both")
        return 2
    try:
        scenario = read_lab_file(args.labfile) if args.labfile else None
    except ScenarioError as exc:
        print(exc, file=sys.stderr, flush=True)  # FILE:LINE:COL: what is wrong — hint
        return 2

    from lab.tui.app import NetlabApp

    lab = Lab.start(loop=args.loop)

    async def demo() -> None:
        from lab.demo import run_demo

        await run_demo(lab, asyncio.Event(), interval=0.5)

    startup = None
    title = "netlab"
    replay = None
    if scenario is not None:
        starter = lab_starter(scenario)
        startup, title = (lambda: lab.reactor.run_async(starter(lab))), f"netlab — {args.labfile}"
        replay = args.labfile if scenario.steps else None  # `s` offers to run its steps
    elif not args.empty:
        startup, title = (lambda: lab.reactor.run_async(demo())), "netlab — demo lab"
    app = NetlabApp(lab, startup=startup, title=title, scenario_path=replay)
    try:
        code = app.run()
        _finish_recording(lab)
    finally:
        lab.close()
    return int(code or 0)


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
