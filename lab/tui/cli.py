"""``netlab tui``: the Textual lab console (also what plain ``netlab``
opens in a terminal).

Textual is imported only when the TUI runs, so ``netlab --help`` stays
light; lab files need :mod:`lab.scenarios`, imported only for them.

Tests: tests/tui/test_cli.py, tests/tui/test_pty.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.reactor import LOOPS

__all__ = ["register", "run_tui"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tui", help="the lab console: endpoints, live traffic, detail, commands (plain `netlab`)",
        description="Open the netlab console on a lab: the demo lab (default), a lab file, or an "
        "empty lab.  Keys: : command bar, / filter, ? help, q quit.",
        epilog="examples:\n  netlab tui\n  netlab tui --empty\n  netlab tui lab.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("labfile", nargs="?", metavar="LABFILE", help="a lab file to start instead of the demo")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--demo", action="store_true", help="servers and clients already talking (default)")
    which.add_argument("--empty", action="store_true", help="start with an empty lab")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.set_defaults(handler=run_tui)


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


def _lab_file_loader(path: str) -> Any:
    """The coroutine function that starts the lab in ``path``, or a
    :class:`LabError` saying why lab files cannot be opened."""
    if not Path(path).is_file():
        raise LabError(f"no lab file {path!r}", hint="give the path of a lab file, or use --demo / --empty")
    try:
        scenarios = importlib.import_module("lab.scenarios")
    except ImportError:
        raise LabError("this netlab cannot read lab files yet (lab.scenarios is not installed)",
                       hint="use `netlab tui --demo` or `netlab tui --empty`") from None
    start = getattr(scenarios, "astart_lab", None)
    if start is None:
        raise LabError("this netlab's lab.scenarios has no astart_lab(lab, path)",
                       hint="use `netlab tui --demo` or `netlab tui --empty`")
    return start


def run_tui(args: argparse.Namespace) -> int:
    from lab.lab import Lab

    if args.labfile and (args.empty or args.demo):
        _say(f"give a lab file or {'--empty' if args.empty else '--demo'}, not both")
        return 2
    try:
        loader = _lab_file_loader(args.labfile) if args.labfile else None
    except LabError as exc:
        _say(str(exc))
        return 2

    from lab.tui.app import NetlabApp

    lab = Lab.start(loop=args.loop)

    async def demo() -> None:
        from lab.demo import run_demo

        await run_demo(lab, asyncio.Event(), interval=0.5)

    async def lab_file() -> None:
        assert loader is not None
        await loader(lab, args.labfile)

    startup = None
    title = "netlab"
    if loader is not None:
        startup, title = (lambda: lab.reactor.run_async(lab_file())), f"netlab — {args.labfile}"
    elif not args.empty:
        startup, title = (lambda: lab.reactor.run_async(demo())), "netlab — demo lab"
    app = NetlabApp(lab, startup=startup, title=title)
    try:
        code = app.run()
    finally:
        lab.close()
    return int(code or 0)
