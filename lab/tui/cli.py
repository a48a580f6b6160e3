"""``netlab tui``: the Textual lab console (also what plain ``netlab``
opens in a terminal).

Textual is imported only when the TUI runs, so ``netlab --help`` stays
light; lab files are read by :mod:`lab.scenarios` (``load_file``), imported
only for them.

Tests: tests/tui/test_cli.py, tests/tui/test_pty.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.reactor import LOOPS

if TYPE_CHECKING:
    from lab.lab import Lab

__all__ = ["lab_file_starter", "register", "run_tui"]


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


LabStarter = Callable[["Lab"], Coroutine[Any, Any, None]]


def lab_file_starter(path: str) -> LabStarter:
    """Read the lab file at ``path`` now (so a bad file is an error before
    the screen opens) and return the coroutine function that starts its
    servers in a lab.  :class:`LabError` says why it cannot: no such file,
    lab files not supported by this netlab (:mod:`lab.scenarios` is
    imported only here), or the file's own error with its line."""
    if not Path(path).is_file():
        raise LabError(f"no lab file {path!r}", hint="give the path of a lab file, or use --demo / --empty")
    try:
        scenarios = importlib.import_module("lab.scenarios")
    except ImportError:
        raise LabError("this netlab cannot read lab files yet (lab.scenarios is not installed)",
                       hint="use `netlab tui --demo` or `netlab tui --empty`") from None
    load_file = getattr(scenarios, "load_file", None)
    if load_file is None:
        raise LabError("this netlab's lab.scenarios cannot load files (no load_file)",
                       hint="use `netlab tui --demo` or `netlab tui --empty`")
    found = load_file(path)
    if not found or not getattr(found[0], "servers", None):
        raise LabError(f"{path} has no `lab:` servers to start", hint="add a lab: part, or use --empty")
    decls = list(found[0].servers)

    async def start(lab: Lab) -> None:
        for decl in decls:
            try:
                await lab.aserve(decl.protocol, **decl.kwargs())
            except LabError as exc:
                where = f"{path}:{decl.mark}" if getattr(decl, "mark", None) else path
                raise LabError(f"{where}: lab server {decl.name!r}: {exc}") from None

    return start


def run_tui(args: argparse.Namespace) -> int:
    from lab.lab import Lab

    if args.labfile and (args.empty or args.demo):
        _say(f"give a lab file or {'--empty' if args.empty else '--demo'}, not both")
        return 2
    try:
        starter = lab_file_starter(args.labfile) if args.labfile else None
    except LabError as exc:
        _say(str(exc))
        return 2

    from lab.tui.app import NetlabApp

    lab = Lab.start(loop=args.loop)

    async def demo() -> None:
        from lab.demo import run_demo

        await run_demo(lab, asyncio.Event(), interval=0.5)

    startup = None
    title = "netlab"
    if starter is not None:
        startup, title = (lambda: lab.reactor.run_async(starter(lab))), f"netlab — {args.labfile}"
    elif not args.empty:
        startup, title = (lambda: lab.reactor.run_async(demo())), "netlab — demo lab"
    app = NetlabApp(lab, startup=startup, title=title)
    try:
        code = app.run()
    finally:
        lab.close()
    return int(code or 0)
