"""``netlab run``, ``netlab up`` and ``netlab mock``.

Tests: tests/scenarios/test_runner.py, test_up_save.py, test_replay.py
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.scenarios._model import Scenario
    from lab.scenarios._runner import Outcome

__all__ = ["Selector", "register"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _say(text: str) -> None:
    print(f"netlab: {text}", file=sys.stderr, flush=True)


# -- -k expressions ------------------------------------------------------------------

Test = Callable[[set[str], str], bool]


class Selector:
    """``-k`` expressions: tags and name words joined by ``and``, ``or``,
    ``not`` and parentheses (``-k "finger and not slow"``).  A word matches
    a scenario with that tag, or whose name contains it."""

    _TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")

    def __init__(self, expression: str) -> None:
        self.tokens = [m.group(1) for m in self._TOKEN.finditer(expression)]
        if not self.tokens:
            raise ValueError("empty -k expression")
        self._pos = 0
        self._tree = self._or()
        if self._pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self._pos]!r} in -k expression")

    def _peek(self) -> str | None:
        return self.tokens[self._pos] if self._pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("the -k expression ends too early")
        self._pos += 1
        return token

    def _or(self) -> Test:
        terms = [self._and()]
        while self._peek() == "or":
            self._take()
            terms.append(self._and())
        return terms[0] if len(terms) == 1 else lambda tags, name: any(t(tags, name) for t in terms)

    def _and(self) -> Test:
        terms = [self._not()]
        while self._peek() == "and":
            self._take()
            terms.append(self._not())
        return terms[0] if len(terms) == 1 else lambda tags, name: all(t(tags, name) for t in terms)

    def _not(self) -> Test:
        if self._peek() == "not":
            self._take()
            inner = self._not()
            return lambda tags, name: not inner(tags, name)
        token = self._take()
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise ValueError("missing ) in -k expression")
            return inner
        if token in (")", "and", "or"):
            raise ValueError(f"unexpected {token!r} in -k expression")
        return lambda tags, name: token in tags or token.lower() in name.lower()

    def __call__(self, scenario: Scenario) -> bool:
        return self._tree(set(scenario.tags), scenario.name)


# -- run -------------------------------------------------------------------------


def _load_all(paths: Iterable[str], safe: bool) -> tuple[list[Scenario], list[str]]:
    from lab.errors import ScenarioError
    from lab.scenarios._model import load_file

    scenarios: list[Scenario] = []
    errors: list[str] = []
    for path in paths:
        try:
            scenarios += load_file(path, safe=safe)
        except ScenarioError as exc:
            errors.append(str(exc))
    return scenarios, errors


class _Progress:
    """One line per finished scenario; on a terminal, a transient line
    saying which are still running."""

    def __init__(self, total: int, stream: Any) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.live = stream.isatty() and total > 1
        self.width = 24

    def running(self, name: str) -> None:
        if self.live:
            self.stream.write(f"\r\x1b[K[{self.done}/{self.total}] running {name}…")
            self.stream.flush()

    def finished(self, outcome: Outcome) -> None:
        self.done += 1
        if self.live:
            self.stream.write("\r\x1b[K")
        name = outcome.scenario.name
        if outcome.passed:
            steps = len(outcome.scenario.steps)
            line = f"  PASS  {name:<{self.width}} {steps:>3} step{'s' if steps != 1 else ' '}  {outcome.seconds:6.2f} s"
        else:
            assert outcome.failure is not None
            line = f"  FAIL  {name:<{self.width}} {outcome.failure.headline()}"
        self.stream.write(line + "\n")
        self.stream.flush()


def write_junit(path: str, outcomes: list[Outcome]) -> None:
    """A JUnit XML report, as CI systems read them."""
    import xml.etree.ElementTree as ET

    failures = sum(not o.passed for o in outcomes)
    suite = ET.Element("testsuite", name="netlab", tests=str(len(outcomes)), failures=str(failures),
                       errors="0", time=f"{sum(o.seconds for o in outcomes):.3f}")
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname=outcome.scenario.path, name=outcome.scenario.name,
                             time=f"{outcome.seconds:.3f}")
        if outcome.failure is not None:
            node = ET.SubElement(case, "failure", message=outcome.failure.headline())
            node.text = outcome.failure.report()
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def cmd_run(args: argparse.Namespace) -> int:
    from lab.scenarios._runner import Runner

    if args.target:
        from lab.errors import ConfigError
        from lab.lab import parse_address

        try:
            parse_address(args.target)
        except ConfigError as exc:
            _say(f"--target: {exc}")
            return EXIT_USAGE
    scenarios, errors = _load_all(args.files, args.safe)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        _say(f"{len(errors)} file{'s' if len(errors) != 1 else ''} did not load; nothing was run")
        return EXIT_USAGE
    for scenario in scenarios:
        for warning in scenario.warnings:
            _say(f"warning: {warning}")
    if args.keyword:
        try:
            selector = Selector(args.keyword)
        except ValueError as exc:
            _say(f"-k: {exc}")
            return EXIT_USAGE
        scenarios = [s for s in scenarios if selector(s)]
    if not scenarios:
        _say("no scenario to run" + (f" matches -k {args.keyword!r}" if args.keyword else ""))
        return EXIT_USAGE
    progress = _Progress(len(scenarios), sys.stdout)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    interrupt = threading.Event()
    pending: dict[concurrent.futures.Future[Outcome], Runner] = {}

    def on_sigint(signum: int, frame: Any) -> None:
        # Ctrl-C: cut the running scenarios short; they count as not run
        interrupt.set()
        for runner in list(pending.values()):
            runner.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            queue = list(scenarios)
            stop = False
            while queue or pending:
                if interrupt.is_set():
                    queue.clear()
                while queue and len(pending) < max(1, args.jobs) and not stop:
                    scenario = queue.pop(0)
                    progress.running(scenario.name)
                    runner = Runner(scenario, target=args.target, safe=args.safe, loop=args.loop)
                    pending[pool.submit(runner.run)] = runner
                if not pending:
                    break
                done, _ = concurrent.futures.wait(pending, timeout=0.25,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    outcome = future.result()
                    if interrupt.is_set() and not outcome.passed:
                        continue  # cut short: not run, not failed
                    outcomes.append(outcome)
                    progress.finished(outcome)
                    if not outcome.passed and args.exitfirst:
                        stop = True
                if stop:
                    queue.clear()
    finally:
        signal.signal(signal.SIGINT, previous)
    interrupted = interrupt.is_set()
    if interrupted:
        print("\ninterrupted", flush=True)
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        assert outcome.failure is not None
        print("\n" + outcome.failure.report())
    if args.show_notes:
        for outcome in outcomes:
            for note in outcome.notes:
                print(f"  note: {outcome.scenario.name}: {note}")
    passed = len(outcomes) - len(failed)
    summary = ", ".join(p for p in (f"{passed} passed" if passed else "", f"{len(failed)} failed" if failed else "",
                                    f"{len(scenarios) - len(outcomes)} not run" if len(outcomes) < len(scenarios)
                                    else "") if p)
    print(f"{summary} in {time.monotonic() - started:.2f} s")
    if args.junit_xml:
        write_junit(args.junit_xml, outcomes)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAIL if failed else EXIT_OK


# -- up and mock ---------------------------------------------------------------------


def _lab_of(path: str, which: str | None) -> tuple[Scenario | None, int]:
    from lab.errors import ScenarioError
    from lab.scenarios._model import load_file

    try:
        scenarios = load_file(path)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return None, EXIT_USAGE
    if which is not None:
        found = [s for s in scenarios if s.name == which]
        if not found:
            _say(f"{path} has no scenario {which!r}; it has: {', '.join(s.name for s in scenarios)}")
            return None, EXIT_USAGE
        return found[0], EXIT_OK
    return scenarios[0], EXIT_OK


def _printer_lab(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from lab.cli import EventPrinter
    from lab.lab import Lab
    from lab.reactor import Reactor

    reactor = Reactor(args.loop)
    lab = Lab(reactor, keep_secrets=args.keep_secrets)
    if args.log_file:
        lab.log.spill_to(args.log_file)
    printer = EventPrinter(reactor.loop, show_bytes=args.bytes, as_json=args.json)
    lab.log.subscribe(printer)
    return reactor, lab, printer


def cmd_up(args: argparse.Namespace) -> int:
    from lab.cli import serve_in_foreground
    from lab.endpoints import EndpointKind, is_loopback
    from lab.errors import LabError

    scenario, code = _lab_of(args.file, args.scenario)
    if scenario is None:
        return code
    if not scenario.servers:
        _say(f"{args.file} has no `lab:` servers to start")
        return EXIT_USAGE
    reactor, lab, printer = _printer_lab(args)

    async def start() -> list[Any]:
        servers: list[Any] = []
        for decl in scenario.servers:
            try:
                servers.append(await decl.astart(lab))
            except LabError as exc:
                raise LabError(f"{args.file}:{decl.mark}: lab server {decl.name!r}: {exc}") from None
        for server in servers:
            what = "proxy on" if server.kind is EndpointKind.PROXY else "listening on"
            _say(f"{server.name}: {server.spec.name} {what} {server.address}")
            if not is_loopback(server.listen_address[0]):
                _say(f"warning: {server.name} is reachable from other machines")
        _say(f"{scenario.name}: {len(servers)} servers up  (Ctrl-C to stop)")
        return servers

    servers = serve_in_foreground(reactor, lab, printer, start)
    if servers is None:
        return EXIT_FAIL
    accepted = sum(s.accepted for s in servers)
    _say(f"stopped {len(servers)} servers: {accepted} connections, {lab.log.total} events")
    return EXIT_OK


def cmd_mock(args: argparse.Namespace) -> int:
    import asyncio

    from lab import protocols
    from lab.cli import serve_in_foreground
    from lab.errors import LabError
    from lab.protocols import Transport
    from lab.scenarios._mock import MockReport, build_scripts, mock_spec, targets

    scenario, code = _lab_of(args.file, args.scenario)
    if scenario is None:
        return code
    try:
        server_name, scripts, warnings = build_scripts(scenario, args.server)
    except LabError as exc:
        _say(str(exc))
        return EXIT_USAGE
    for warning in warnings:
        _say(f"warning: {warning}")
    protocol, transport = targets(scenario)[server_name]
    name = server_name if ":" not in server_name else "mock"  # a server outside the lab: an address
    report = MockReport()
    spec = mock_spec(protocols.get(protocol), scripts, report)
    reactor, lab, printer = _printer_lab(args)

    async def start() -> Any:
        server = await lab.aserve(spec, name=name, host=args.host, port=args.port, transport=transport)
        _say(f"mock {server_name} ({protocol}, {len(scripts)} recorded clients) listening on {server.address}"
             "  (Ctrl-C to stop)")
        return server

    async def until(stop: asyncio.Event, server: Any) -> None:
        while not stop.is_set():
            # a UDP peer stays "open" until it idles out: only TCP connections hold the exit
            streams = [c for c in server.connections.values() if c.transport is Transport.TCP]
            if args.connections and report.connections >= args.connections and not streams:
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except TimeoutError:
                pass

    if serve_in_foreground(reactor, lab, printer, start, until) is None:
        return EXIT_FAIL
    _say(f"mock served {report.connections} connections: {report.matched} requests matched,"
         f" {len(report.unmatched)} unmatched")
    for request in report.unmatched:
        _say(f"  unmatched: {request!r}")
    return EXIT_FAIL if report.unmatched else EXIT_OK


# -- registration ------------------------------------------------------------------


def _traffic_arguments(parser: argparse.ArgumentParser) -> None:
    from lab.reactor import LOOPS

    parser.add_argument("--json", action="store_true", help="print events as JSON lines")
    parser.add_argument("--bytes", action="store_true", help="also print raw byte chunks")
    parser.add_argument("--log-file", metavar="FILE", help="also append every event to FILE as JSON lines")
    parser.add_argument("--keep-secrets", action="store_true",
                        help="write passwords in clear to logs, recordings and lab files")
    parser.add_argument("--scenario", metavar="NAME", help="which scenario of a file with several")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")


def register(subparsers: Any) -> None:
    """Add ``run``, ``up`` and ``mock`` to the ``netlab`` command."""
    from lab.reactor import LOOPS

    p = subparsers.add_parser(
        "run", help="run scenario files and report pass/fail",
        description="Run scenario files, each in a fresh lab. Every file is checked before any runs. "
        "Exit 0 all passed, 1 some failed, 2 bad files or arguments.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  netlab run scenarios/echo/*.yaml\n  netlab run scenarios -k 'finger and not slow'"
        "\n  netlab run bug.yaml --target 127.0.0.1:2525     client replay against a real server")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (.yaml); a directory means its *.yaml")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="only scenarios whose tags or name match EXPR")
    p.add_argument("-j", "--jobs", type=int, default=1, help="run this many scenarios at once (default 1)")
    p.add_argument("--junit-xml", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--target", metavar="HOST:PORT",
                   help="client replay: do not start the lab's servers, connect every client to HOST:PORT")
    p.add_argument("--safe", action="store_true",
                   help="for files you do not trust: loopback only, no console, no spawn or python steps, "
                   "files only inside the scenario's folder")
    p.add_argument("-v", "--verbose", dest="show_notes", action="store_true",
                   help="also print notes (what client replay left out)")
    p.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop implementation")
    p.set_defaults(handler=lambda args: cmd_run(_expand(args)))

    p = subparsers.add_parser(
        "up", help="start the lab of a lab or scenario file and keep serving",
        description="Start the servers of a file's `lab:` part and print their traffic until Ctrl-C. "
        "`save FILE` in the command language writes such a file from a live lab.")
    p.add_argument("file", metavar="LABFILE", help="a lab or scenario file (.yaml)")
    _traffic_arguments(p)
    p.set_defaults(handler=cmd_up)

    p = subparsers.add_parser(
        "mock", help="server replay: answer a real client from a recording",
        description="Serve the recorded server side of a scenario: each recorded request gets its recorded "
        "replies; requests that match nothing are reported. Exit 1 if any request went unmatched.")
    p.add_argument("file", metavar="FILE", help="a recorded scenario file")
    p.add_argument("--port", "-p", type=int, default=0, help="port to listen on (default 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--server", metavar="NAME", help="which lab server to impersonate (default: the first used)")
    p.add_argument("--connections", type=int, default=0, metavar="N",
                   help="exit after serving N connections (default: run until Ctrl-C)")
    _traffic_arguments(p)
    p.set_defaults(handler=cmd_mock)


def _expand(args: argparse.Namespace) -> argparse.Namespace:
    files: list[str] = []
    for path in args.files:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".yaml", ".yml"))]
        else:
            files.append(path)
    args.files = files
    return args
