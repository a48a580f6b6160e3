"""The ``netlab`` command.

``netlab --help`` imports neither Textual nor IPython: front-ends are
imported only by the subcommand that runs them.

Tests: tests/test_cli.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from lab.endpoints import ListeningEndpoint
    from lab.lab import Lab

from lab import protocols
from lab.errors import LabError
from lab.eventlog import Event, EventKind, format_event
from lab.reactor import LOOPS, Reactor

__all__ = ["main"]

T = TypeVar("T")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

DESCRIPTION = """\
netlab: an interactive network lab.  Start protocol servers and clients on
one event loop and watch every message they exchange, decoded."""

EPILOG = """\
examples:
  netlab                              the lab console (TUI) on a demo lab with live traffic
  netlab demo                         the same demo lab, its traffic printed as text
  netlab protocols                    what netlab speaks
  netlab serve echo --port 7007       an echo server, traffic on stdout
  netlab serve finger --user alice="Alice Liddell" --help
  netlab exec "serve echo; connect echo1 as c; send c hi; expect c hi; log"
  netlab shell                        IPython with %netlab and a running `lab`
  netlab talk smtp 127.0.0.1:2525     type SMTP by hand, replies decoded
  netlab proxy smtp --listen 2526 --to 127.0.0.1:2525   watch a real client and server, decoded
  netlab run scenarios/               every lesson, as tests; `netlab <command> --help` for more
"""


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


class EventPrinter:
    """Prints events to stdout, one write per burst of events (a write per
    line would cost more than the traffic it reports)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, show_bytes: bool = False,
                 as_json: bool = False) -> None:
        self._loop = loop
        self._show_bytes = show_bytes
        self._as_json = as_json
        self._lines: list[str] = []

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.DATA and not self._show_bytes:
            return
        self._lines.append(event.to_json() if self._as_json else format_event(event))
        if len(self._lines) == 1:
            if self._loop.is_closed():
                self.flush()
            else:
                self._loop.call_soon(self.flush)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        try:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            pass  # stdout closed (e.g. piped into head): keep serving


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM (call on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def serve_in_foreground(reactor: Reactor, lab: Lab, printer: EventPrinter,
                        start: Callable[[], Awaitable[T]],
                        until: Callable[[asyncio.Event, T], Awaitable[None]] | None = None) -> T | None:
    """Run ``start`` (it starts servers and says where they listen), then
    serve until Ctrl-C or SIGTERM, or until ``until(stop, started)`` returns
    if given.  Returns what ``start`` returned, or None after a LabError,
    already reported."""

    async def main() -> T:
        stop = stop_on_signals()  # before "listening": a script may signal right after it
        started = await start()
        await (stop.wait() if until is None else until(stop, started))
        return started

    try:
        started = reactor.run(main())
    except LabError as exc:
        printer.flush()
        _say(str(exc))
        return None
    printer.flush()
    lab.log.stop_spill()
    return started


# -- protocols -------------------------------------------------------------


def cmd_protocols(args: argparse.Namespace) -> int:
    specs = protocols.all_specs()
    if args.json:
        print(json.dumps([
            {"name": s.name, "transports": list(s.iter_transports()), "port": s.default_port,
             "rfc": s.rfc, "summary": s.summary} for s in specs
        ], indent=2))
        return EXIT_OK
    from lab.text import table

    rows = [{"name": s.name, "transports": "/".join(s.iter_transports()), "port": s.default_port,
             "rfc": s.rfc, "summary": s.summary} for s in specs]
    print(table(rows, [("name", "protocol"), ("transports", "transport"), ("port", "port"),
                       ("rfc", "spec"), ("summary", "description")]))
    return EXIT_OK


# -- serve -----------------------------------------------------------------


def _cli_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="endpoint name in the log (default: the protocol name)")
    parser.add_argument("--json", action="store_true", help="print events as JSON lines")
    parser.add_argument("--bytes", action="store_true", help="also print raw byte chunks")
    parser.add_argument("--log-file", metavar="FILE", help="also append every event to FILE as JSON lines")
    parser.add_argument("--keep-secrets", action="store_true",
                        help="write passwords in clear to logs, recordings and lab files")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")


def _serve_parser(proto: str | None) -> argparse.ArgumentParser:
    from lab.commands.serve import add_server_arguments

    spec = protocols.get(proto) if proto else None
    parser = argparse.ArgumentParser(
        prog="netlab serve",
        description="Run one server in the foreground and print its traffic, decoded."
        + (f"\n\n{spec.name} ({spec.rfc}): {spec.summary}" if spec else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Ctrl-C stops the server and prints a summary.",
    )
    parser.add_argument("protocol", metavar="PROTO", help="protocol to serve (`netlab protocols` lists them)")
    add_server_arguments(parser, spec)
    _cli_serve_arguments(parser)
    return parser


def cmd_serve(argv: Sequence[str]) -> int:
    from lab.commands.serve import find_protocol, server_kwargs

    proto = find_protocol(argv, _cli_serve_arguments)
    if proto is None and not {"-h", "--help"} & set(argv):
        _say(f"which protocol? netlab serve PROTO, one of: {', '.join(protocols.names())}")
        return EXIT_USAGE
    try:
        parser = _serve_parser(proto)
    except LabError as exc:
        _say(str(exc))
        return EXIT_USAGE
    args = parser.parse_args(argv)
    kwargs = server_kwargs(args)
    kwargs["name"] = args.name or args.protocol
    for extra in ("json", "bytes", "log_file", "keep_secrets", "loop"):
        kwargs.pop(extra, None)

    return _in_foreground(args, lambda lab: lab.aserve(args.protocol, **kwargs), "listening on")


def _in_foreground(args: argparse.Namespace, make: Callable[[Lab], Awaitable[ListeningEndpoint]],
                   doing: str) -> int:
    """Run the endpoint ``make`` starts, printing events, until Ctrl-C."""
    from lab.endpoints import is_loopback
    from lab.lab import Lab

    reactor = Reactor(args.loop)
    lab = Lab(reactor, keep_secrets=args.keep_secrets)
    if args.log_file:
        lab.log.spill_to(args.log_file)
    printer = EventPrinter(reactor.loop, show_bytes=args.bytes, as_json=args.json)
    lab.log.subscribe(printer)

    async def start() -> Any:
        endpoint = await make(lab)
        _say(f"{endpoint.spec.name} {doing} {endpoint.address}  (Ctrl-C to stop)")
        if not is_loopback(endpoint.host):
            _say(f"warning: bound to {endpoint.host}, reachable from other machines")
        return endpoint

    endpoint = serve_in_foreground(reactor, lab, printer, start)
    if endpoint is None:
        return EXIT_FAIL
    _say(f"stopped {endpoint.name}: {endpoint.accepted} connections ({endpoint.refused} refused), "
         f"{lab.log.total} events")
    return EXIT_OK


# -- proxy -----------------------------------------------------------------


def _add_proxy_parser(sub: Any) -> None:
    from lab.commands.proxy import add_relay_args

    p = sub.add_parser(
        "proxy", help="relay a protocol between a real client and a real server, printing both ways decoded",
        description="Listen for clients, relay each to the server given by --to, and print what both\n"
        "sides say, decoded.  The bytes pass through unchanged.  To hold and edit messages\n"
        "in flight, use a proxy in the shell or the TUI (`proxy`, then `intercept`).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  netlab proxy smtp --listen 2526 --to 127.0.0.1:25\n"
        "  netlab proxy pop3 --listen [::1]:1110 --to 127.0.0.1:110 --json\n"
        "  netlab proxy echo --udp --listen 7007 --to 127.0.0.1:7\n"
        "Ctrl-C stops the proxy and prints a summary.")
    p.add_argument("protocol", metavar="PROTO", help="protocol to decode (`netlab protocols` lists them)")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="the server to relay to")
    add_relay_args(p, capture_default="full")
    _cli_serve_arguments(p)
    p.set_defaults(handler=cmd_proxy)


def cmd_proxy(args: argparse.Namespace) -> int:
    from lab.commands.proxy import parse_listen

    try:
        host, port = parse_listen(args.listen)
        protocols.get(args.protocol)
    except LabError as exc:
        _say(str(exc))
        return EXIT_USAGE
    return _in_foreground(args, lambda lab: lab.aproxy(
        args.protocol, args.to, host=host, port=port, name=args.name, transport=args.transport,
        capture=args.capture, max_connections=args.max_connections, idle_timeout=args.idle_timeout), "proxy on")


# -- log -------------------------------------------------------------------


def _add_log_parser(sub: Any) -> None:
    from lab.commands.log import add_filter_arguments

    p = sub.add_parser(
        "log", help="print a saved event log (from `log save` or --log-file), or convert it to pcapng",
        description="Print the events of a saved log (JSON lines, as `log save FILE` and --log-file\n"
        "write them) as `log` prints them in a lab, filtered; or write its traffic as a pcapng\n"
        "capture for Wireshark.  `netlab tui --log FILE` opens it in the console.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  netlab log session.jsonl -e mx --grep MAIL\n"
        "  netlab log session.jsonl -n 20 --json\n"
        "  netlab log session.jsonl --pcap session.pcapng")
    p.add_argument("file", metavar="FILE", help="a saved log")
    p.add_argument("-n", type=int, default=0, help="only the last N matching events (default: all)")
    add_filter_arguments(p)
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.add_argument("--pcap", metavar="OUT", help="write the matching traffic to OUT as pcapng instead")
    p.add_argument("--real-ports", action="store_true",
                   help="with --pcap: keep the servers' ports (by default each is written as its protocol's own)")
    p.add_argument("--force", action="store_true", help="with --pcap: overwrite OUT if it exists")
    p.set_defaults(handler=cmd_log)


def cmd_log(args: argparse.Namespace) -> int:
    import io

    from lab.commands.log import build_filter
    from lab.logfile import iter_events
    from lab.pcap import write_pcapng

    if args.n < 0:
        _say("-n must be 0 or more")
        return EXIT_USAGE
    if args.pcap:
        args.bytes = True  # a capture needs the raw chunks
    try:
        flt = build_filter(args)
        events = [e for e in iter_events(args.file, warn=_say) if flt(e)]
        if args.pcap:
            _say(str(write_pcapng(events, args.pcap, real_ports=args.real_ports, force=args.force)))
            return EXIT_OK
    except LabError as exc:
        _say(str(exc))
        return EXIT_USAGE
    if args.n:
        events = events[-args.n:]
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(errors="backslashreplace")  # a log may hold text the terminal cannot show
    width = max((len(e.conn or e.endpoint) for e in events), default=10)
    for e in events:
        out.write((e.to_json() if args.json else format_event(e, min(max(width, 10), 24))) + "\n")
    if not events and not args.json:
        _say("no events match")
    return EXIT_OK


# -- exec ------------------------------------------------------------------


def cmd_exec(args: argparse.Namespace) -> int:
    from lab.commands import Interpreter, Result
    from lab.lab import Lab

    if args.file:
        try:
            with (sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")) as fh:
                script = fh.read()
        except OSError as exc:
            _say(f"cannot read {args.file}: {exc.strerror}")
            return EXIT_USAGE
    elif args.script:
        script = " ".join(args.script)
    else:
        _say("nothing to run — give a script: netlab exec \"serve echo; ls\"")
        return EXIT_USAGE
    reactor = Reactor(args.loop)
    lab = Lab(reactor, keep_secrets=args.keep_secrets)
    printer = EventPrinter(reactor.loop)
    if args.log:
        lab.log.subscribe(printer)
    interp = Interpreter(lab)

    async def main() -> int:
        try:
            interp.parse(script)
        except LabError as exc:
            _say(str(exc))
            return EXIT_USAGE

        def show(result: Result) -> None:  # as each statement completes, not at the end
            printer.flush()
            if result.text and not args.quiet:
                print(result.text, flush=True)

        stop = stop_on_signals()
        work = asyncio.ensure_future(interp.aexecute(script, show))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait({work})
            printer.flush()
            _say("interrupted")
            return EXIT_INTERRUPTED
        try:
            work.result()
        except LabError as exc:
            printer.flush()
            _say(str(exc))
            return EXIT_FAIL
        return EXIT_OK

    code = reactor.run(main())
    printer.flush()
    return code


# -- demo ------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.demo import run_demo
    from lab.lab import Lab

    reactor = Reactor(args.loop)
    lab = Lab(reactor)
    printer = EventPrinter(reactor.loop)
    lab.log.subscribe(printer)

    async def main() -> None:
        await run_demo(lab, stop_on_signals(), duration=args.duration)

    try:
        reactor.run(main())
    except LabError as exc:
        _say(str(exc))
        return EXIT_FAIL
    finally:
        printer.flush()
    _say(f"demo stopped after {lab.log.total} events")
    return EXIT_OK


# -- entry point -------------------------------------------------------------

# Modules that add their own subcommands: each has ``register(subparsers)``,
# which adds parsers with ``set_defaults(handler=fn)``; fn(args) returns the
# exit code. They must import their front-end library (IPython, Textual)
# only inside the handler, so ``netlab --help`` stays light.
_FRONTENDS: tuple[str, ...] = ("lab.scenarios.cli", "lab.shell.cli", "lab.tui.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, with a did-you-mean for a mistyped subcommand."""

    def error(self, message: str) -> NoReturn:
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'?([\w-]+)'?", m.group(2))
            close = protocols.suggest(m.group(1), choices)
            if close:
                message = f"unknown command {m.group(1)!r}: did you mean {close!r}? (netlab --help lists them)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netlab", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from lab import __version__

    parser.add_argument("--version", action="version", version=f"netlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log netlab's own diagnostics to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("protocols", help="list the protocols netlab speaks")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("serve", help="run one server in the foreground, printing its traffic",
                   add_help=False)

    _add_proxy_parser(sub)
    _add_log_parser(sub)

    p = sub.add_parser("exec", help="run command-language statements in a fresh lab",
                       description="Run statements (separated by ; or newlines) in a fresh lab, "
                       "print each result, and exit: 0 ok, 1 a statement failed, 2 bad script.",
                       epilog='example: netlab exec "serve echo; connect echo1 as c; send c hi; expect c hi"')
    p.add_argument("script", nargs="*", help="statements; `help` lists the commands")
    p.add_argument("-f", "--file", help="read statements from FILE (- for stdin)")
    p.add_argument("--log", action="store_true", help="print events as they happen")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument("--keep-secrets", action="store_true",
                   help="write passwords in clear to logs, recordings and lab files")
    p.add_argument("--loop", choices=LOOPS, default="asyncio")

    p = sub.add_parser("demo", help="a demo lab with servers and clients talking, printed as text "
                       "(the default when not in a terminal)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--loop", choices=LOOPS, default="asyncio")

    for module in _FRONTENDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "serve":
        _configure_logging("-v" in argv or "--verbose" in argv)
        return cmd_serve([a for a in argv[1:] if a not in ("-v", "--verbose")])
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None and sys.stdin.isatty() and sys.stdout.isatty():
        args = parser.parse_args([*argv, "tui", "--demo"])  # a terminal: the console
    command = args.command or "demo"
    if command == "demo" and not hasattr(args, "duration"):
        args = parser.parse_args(["demo", *argv])
    handlers = {"protocols": cmd_protocols, "exec": cmd_exec, "demo": cmd_demo}
    handler = getattr(args, "handler", None) or handlers[command]
    try:
        return int(handler(args))
    except LabError as exc:  # a bad option value found late (--loop uvloop without uvloop)
        _say(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAIL
    except BrokenPipeError:
        # the reader went away (`netlab exec ... | head`): stop quietly, and
        # keep the interpreter's final flush from raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL


def _configure_logging(verbose: bool) -> None:
    from lab import logs

    logs.configure(verbose)


if __name__ == "__main__":
    sys.exit(main())
