"""``netlab shell``, ``netlab console`` and ``netlab talk``.

Only the handlers import IPython or prompt_toolkit, so ``netlab --help``
stays light.

Tests: tests/shell/test_ipython.py, tests/shell/test_netlab_console.py, tests/shell/test_netlab_talk.py
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lab.reactor import LOOPS

__all__ = ["register"]

SHELL_BANNER = """\
netlab shell: `lab` is a running Lab; its servers keep serving while you type.
  %netlab serve echo as mx      %netlab help      mx.on("data", fn)      lab.log.tail(5)
"""


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


def cmd_shell(args: argparse.Namespace) -> int:
    from traitlets.config import Config

    from lab.commands import Interpreter
    from lab.lab import Lab
    from lab.shell._recording import finish_recording

    try:
        import IPython
    except ImportError:
        _say("IPython is not installed — pip install ipython, or use `netlab console`")
        return 1
    lab = Lab.start(loop=args.loop, keep_secrets=args.keep_secrets)
    config = Config()
    config.InteractiveShellApp.extensions = ["lab"]
    config.TerminalInteractiveShell.banner2 = SHELL_BANNER
    try:
        IPython.start_ipython(argv=list(args.ipython_args), user_ns={"lab": lab}, config=config)
    finally:
        ended = finish_recording(Interpreter(lab))  # a recording left running ends cleanly
        if ended:
            _say(ended)
        lab.close()
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from lab.shell.console import run_console

    return run_console(loop=args.loop, events=args.events, show_bytes=args.bytes, script=args.exec,
                       record=args.record, force=args.force, keep_secrets=args.keep_secrets)


def cmd_talk(args: argparse.Namespace) -> int:
    from lab.shell.talk import run_talk

    options = {}
    for item in args.option or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"netlab: -o wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        options[name.strip()] = value
    return run_talk(args.protocol, args.address, udp=args.udp, show_hex=args.hex, raw=args.raw,
                    timeout=args.timeout, options=options)


def register(subparsers: Any) -> None:
    """Add the shell, console and talk subcommands."""
    p = subparsers.add_parser(
        "shell", help="IPython with the %%netlab magics and a running `lab`",
        description="Start IPython with the netlab extension loaded and `lab` ready; servers keep "
        "serving while you sit at the prompt. `%netlab help` lists the commands. Arguments after "
        "`--` go to IPython.",
        epilog="example: netlab shell -- --no-banner")
    p.add_argument("ipython_args", nargs=argparse.REMAINDER, help="arguments for IPython (after --)")
    p.add_argument("--keep-secrets", action="store_true",
                   help="write passwords in clear to logs, recordings and lab files")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.set_defaults(handler=_strip_dashes(cmd_shell))

    p = subparsers.add_parser(
        "console", help="a light REPL for the command language (no IPython)",
        description="A prompt for command-language statements with completion (Tab), history\n"
        "kept across sessions, live events printed above the prompt and a status toolbar.\n"
        "Ctrl-C cancels a running command; Ctrl-D or `exit` leaves. With --record the whole\n"
        "session is written as a scenario that `netlab run FILE` replays.",
        epilog='examples:\n  netlab console -x "serve echo as e; connect e as c"\n'
        "  netlab console --record session.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", choices=("all", "errors", "none"), default="all",
                   help="which events to print as they happen (default all)")
    p.add_argument("--bytes", action="store_true", help="also print raw byte chunks")
    p.add_argument("-x", "--exec", metavar="SCRIPT", help="run these statements first")
    p.add_argument("--record", metavar="FILE",
                   help="record the session as a scenario in FILE (like `record start FILE`; "
                   "`record stop` or leaving ends it)")
    p.add_argument("--force", action="store_true", help="with --record: replace FILE if it exists")
    p.add_argument("--keep-secrets", action="store_true",
                   help="write passwords in clear to logs, recordings and lab files")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.set_defaults(handler=cmd_console)

    p = subparsers.add_parser(
        "talk", help="talk to a server by hand, replies decoded (like telnet, protocol-aware)",
        description="Connect to HOST:PORT and send what you type, with the protocol's line ending;\n"
        "replies print decoded as they arrive. Tab completes the protocol's verbs and the\n"
        "slash commands:\n"
        "  /hex        a hex dump under each reply (toggle)\n"
        "  /raw        send escapes (\\r \\n \\xHH) as bytes, no line ending; show replies as bytes\n"
        "  /call VERB  run a client verb: /call query alice verbose=yes\n"
        "  /reconnect  open the connection again\n"
        "  /help       list these\n"
        "  /quit       leave (Ctrl-D too)\n"
        "Other lines starting with / are sent as typed; // sends a line starting with /.",
        epilog="examples:\n  netlab talk echo 127.0.0.1:7007\n  netlab talk finger 127.0.0.1:79",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", metavar="PROTO", help="protocol (`netlab protocols` lists them)")
    p.add_argument("address", metavar="HOST:PORT", help="where the server listens (a bare PORT means 127.0.0.1)")
    p.add_argument("--udp", action="store_true", help="talk over UDP")
    p.add_argument("--hex", action="store_true", help="start with hex dumps on")
    p.add_argument("--raw", action="store_true", help="start in raw mode")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the connection")
    p.add_argument("-o", dest="option", action="append", metavar="NAME=VALUE",
                   help="a client option, as `connect ... -o` takes it (e.g. -o password_env=PW for ssh)")
    p.set_defaults(handler=cmd_talk)


def _strip_dashes(fn: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        extra = list(args.ipython_args)
        if extra and extra[0] == "--":
            extra = extra[1:]
        args.ipython_args = extra
        return int(fn(args))

    return handler
