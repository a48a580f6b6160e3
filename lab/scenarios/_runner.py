"""Running a scenario: a fresh lab (or one the caller lends, such as the
console's, so its traffic shows there), the steps in order, and when one
fails a report of the step, what it expected, what arrived (decoded and
raw) and the tail of the event log.

Tests: tests/scenarios/test_runner.py
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import difflib
import enum
import importlib
import inspect
import logging
import os
import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from lab.commands import Interpreter
from lab.connection import format_exception
from lab.endpoints import Can, Client
from lab.errors import ConnectionClosed, LabError, LabTimeout, ScenarioError
from lab.eventlog import Direction, Event, EventFilter, EventKind, format_event
from lab.jail import Jail
from lab.lab import Lab, parse_address
from lab.protocols._base import Message, escape_bytes
from lab.reactor import CallScope
from lab.scenarios._loader import Mark
from lab.scenarios._model import Scenario, Step
from lab.scenarios._recorder import secret_env
from lab.scenarios._text import command_words, describe_matchers

__all__ = ["Failure", "Outcome", "Runner", "StepState", "StepUpdate", "matches", "run_scenario"]

logger = logging.getLogger(__name__)

LOG_TAIL = 12
MAX_DIFF = 40
BRIDGE_MARGIN = 5.0  # the reactor bridge waits this much longer than a step


class StepFailed(LabError):
    """A step did not hold; ``expected`` and ``client`` feed the report."""

    def __init__(self, message: str, *, expected: str = "", client: str | None = None,
                 got: str | None = None, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.client = client
        self.got = got
        self.mark = mark


@dataclass
class Failure:
    """Why a scenario failed, for people."""

    scenario: Scenario
    step: Step | None
    message: str
    expected: str = ""
    arrived: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    got: str | None = None
    mark: Mark | None = None  # where, when not at a step (a lab server)

    @property
    def where(self) -> str:
        if self.step is None:
            return f"{self.scenario.path}:{self.mark or self.scenario.mark}"
        return f"{self.scenario.path}:{self.step.mark}"

    def headline(self) -> str:
        """One line: ``step 4 `expect c /Plan:/`: got "No such user\\r\\n" (timeout 2 s)``."""
        if self.step is None:
            return self.message
        if self.got is not None:
            if self.step.kind not in ("expect", "wait"):
                return f"{self.step}: got {self.got}"
            why = "closed" if "closed" in self.message else f"timeout {self.step.timeout:g} s"
            return f"{self.step}: got {self.got} ({why})"
        return f"{self.step}: {self.message}"

    def report(self) -> str:
        """The full, readable report."""
        lines = [f"{self.where}: {self.scenario.name}: {self.headline()}"]
        if self.step is not None and self.got is not None:
            lines.append(f"  {self.message}")
        if self.expected and self.expected not in self.message:  # said once is enough
            lines.append(f"  expected: {self.expected}")
        if self.arrived:
            lines.append("  arrived (decoded | raw):")
            lines += [f"    {line}" for line in self.arrived]
        if self.diff:
            lines.append("  replies, expected (-) against received (+):")
            lines += [f"    {line}" for line in self.diff]
        if self.log_tail:
            lines.append(f"  event log, last {len(self.log_tail)} events:")
            lines += [f"    {line}" for line in self.log_tail]
        return "\n".join(lines)


@dataclass
class Outcome:
    """The result of one scenario run."""

    scenario: Scenario
    passed: bool
    seconds: float
    steps_run: int
    failure: Failure | None = None
    notes: list[str] = field(default_factory=list)


class StepState(enum.Enum):
    WAITING = "waiting"  # next, held until the gate lets it run
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class StepUpdate:
    """A step started, passed or failed (``failure`` says why), for a
    display that follows a run as it goes."""

    scenario: Scenario
    step: Step
    state: StepState
    seconds: float = 0.0  # how long the step took, once it has ended
    failure: Failure | None = None


Progress = Callable[[StepUpdate], object]


# -- matching --------------------------------------------------------------------

_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def field_value(msg: Message, path: str) -> Any:
    """``user``, ``hosts[0]``, ``headers.subject`` in a message's fields
    (``raw``, ``text`` and ``kind`` too); KeyError if absent."""
    value: Any = {"kind": msg.kind, "text": _wire_text(msg), "raw": msg.raw, **msg.fields()}
    for part in path.split("."):
        m = _PATH_PART.fullmatch(part)
        if m is None:
            raise KeyError(path)
        if isinstance(value, dict) and m.group(1) in value:
            value = value[m.group(1)]
        elif hasattr(value, m.group(1)) and not isinstance(value, dict):
            value = getattr(value, m.group(1))
        else:
            raise KeyError(path)
        for index in re.findall(r"\[(\d+)\]", m.group(2)):
            try:
                value = value[int(index)]
            except (IndexError, TypeError, KeyError):
                raise KeyError(path) from None
    return value


def _same(value: Any, want: Any) -> bool:
    if isinstance(want, str) and re.fullmatch(r"/.*/", want, re.DOTALL) and len(want) > 1:
        return re.search(want[1:-1], str(value)) is not None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if isinstance(want, str) and not isinstance(value, str):
        return str(value).lower() == want.lower() if isinstance(value, bool) else str(value) == want
    if isinstance(value, tuple):
        value = list(value)
    return bool(value == want)


def _wire_text(msg: Message) -> str:
    # the raw bytes, not msg.text: a protocol may name a decoded field "text"
    return msg.raw.decode("utf-8", "replace")


def matches(data: dict[str, Any], msg: Message) -> bool:
    """Does ``msg`` satisfy every matcher of an expect step's ``data``?"""
    if "equals" in data and msg.raw != str(data["equals"]).encode("utf-8"):
        return False
    if "text" in data and str(data["text"]) not in _wire_text(msg) and not msg.matches(str(data["text"])):
        return False  # as `expect` at a prompt: the protocol's own words count too (NXDOMAIN, a reply code)
    if "regex" in data and re.search(data["regex"], _wire_text(msg)) is None:
        return False
    if "code" in data and not msg.matches(str(data["code"])):
        return False  # the protocol knows its codes (250, NXDOMAIN); others look in the text
    if "hex" in data and msg.raw != bytes.fromhex(data["hex"]):
        return False
    if "kind" in data and msg.kind != data["kind"]:
        return False
    if "length" in data and len(msg.raw) != data["length"]:
        return False
    for path, want in (data.get("fields") or {}).items():
        try:
            if not _same(field_value(msg, path), want):
                return False
        except KeyError:
            return False
    return True


def _expected_key(data: dict[str, Any]) -> str:
    if set(data) & {"equals", "hex"} and not set(data) & {"regex", "text", "fields", "kind"}:
        raw = str(data["equals"]).encode("utf-8") if "equals" in data else bytes.fromhex(data["hex"])
        return escape_bytes(raw)
    return describe_matchers(data)


def reply_diff(expects: list[dict[str, Any]], received: list[Message]) -> list[str]:
    """Expected replies (-) against received ones (+), aligned the way
    ``expect`` consumes them; lines that agree are shown once."""
    received = received[-MAX_DIFF:]  # chargen never stops: show the end of a long stream
    want = [_expected_key(e) for e in expects]
    got: list[str] = []
    shown: list[str] = []
    pos = 0
    for msg in received:
        shown.append(escape_bytes(msg.raw, 120))
        k = pos
        while k < len(expects) and not matches(expects[k], msg):
            k += 1
        if k < len(expects):
            got.append(want[k])
            pos = k + 1
        else:
            got.append(shown[-1])
    out: list[str] = []
    ops = difflib.SequenceMatcher(a=want, b=got, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            out += [f"  {shown[j]}" for j in range(j1, j2)]
            continue
        out += [f"- {want[i]}" for i in range(i1, i2)]
        out += [f"+ {shown[j]}" for j in range(j1, j2)]
    if len(out) > MAX_DIFF:
        out = [*out[: MAX_DIFF // 2], f"  … {len(out) - MAX_DIFF} lines …", *out[-MAX_DIFF // 2 :]]
    return out


# -- the runner ---------------------------------------------------------------------


class _Variables:
    """Resolves ``{name.attr}`` and ``{saved.name}`` while a scenario runs."""

    _REF = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")

    def __init__(self, lab: Lab, saved: dict[str, Any], processes: dict[str, Any]) -> None:
        self.lab = lab
        self.saved = saved
        self.processes = processes

    def lookup(self, ref: str) -> str:
        head, _, attr = ref.strip().partition(".")
        if head == "secret":
            env = secret_env(attr)
            value = os.environ.get(env)
            if value is None:
                raise StepFailed(f"{{{ref}}} stands for a secret this file leaves out: set ${env} to it",
                                 expected=f"${env} in the environment")
            return value
        if head == "saved":
            value = self.saved[attr]
            return _wire_text(value) if isinstance(value, Message) else str(value)
        if head in self.processes:
            proc = self.processes[head]
            return str(proc.pid if attr == "pid" else head)
        endpoint = self.lab.endpoints.get(head)
        if endpoint is None:
            raise StepFailed(f"{{{ref}}}: {head!r} is not running here", expected=f"an endpoint named {head}")
        if attr == "protocol":
            return endpoint.spec.name
        if attr == "port" and endpoint.can(Can.CONNECT) and not endpoint.can(Can.LISTEN):
            return str(cast(Client, endpoint).target[1])  # a client's port is the one it talks to
        return str(getattr(endpoint, attr))

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._REF.sub(lambda m: {"{{": "{", "}}": "}"}.get(m.group(0)) or self.lookup(m.group(1)),
                                 value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: v if k in _LITERAL_KEYS else self.fill(v) for k, v in value.items()}
        return value


_LITERAL_KEYS = frozenset({"regex", "recorded", "recorded_hex", "function", "server", "traffic"})


class Runner:
    """Runs one scenario in a fresh lab, or in ``lab`` when one is lent
    (left running afterwards, with what the scenario made in it).

    ``target`` (``host:port``) is client replay: the lab's servers are not
    started and every connection goes to the target.  ``safe`` refuses
    steps that run programs or Python (the loader refuses them first),
    and jails a lab of its own to the file's folder (:mod:`lab.jail`).
    ``progress`` is called on the running thread as each step starts and
    ends; ``gate(step)``, when given, is called before each step and may
    block until the step should run (a step-by-step lesson); the time it
    holds does not count against the scenario's timeout.  :meth:`cancel`
    stops a run from another thread.
    """

    def __init__(self, scenario: Scenario, *, target: str | None = None, safe: bool = False,
                 loop: str = "asyncio", progress: Progress | None = None, lab: Lab | None = None,
                 gate: Callable[[Step], None] | None = None) -> None:
        self.scenario = scenario
        self.lent = lab
        self.gate = gate
        self.created: list[str] = []  # endpoints the run made in a lent lab
        self.target = parse_address(target) if target else None
        self.safe = safe
        self.loop = loop
        self.progress = progress
        self.saved: dict[str, Any] = {}
        self.processes: dict[str, Any] = {}
        self.notes: list[str] = []
        self._cancelled = threading.Event()
        self._reactor_loop: asyncio.AbstractEventLoop | None = None
        self._scope: CallScope | None = None
        self._since = 0  # the log's last sequence number before the run
        self._before: frozenset[str] = frozenset()  # a lent lab's endpoints before the run

    def run(self) -> Outcome:
        started = time.monotonic()
        steps_run = 0
        failure: Failure | None = None
        step_began = started
        lab_context = contextlib.nullcontext(self.lent) if self.lent is not None else Lab.start(loop=self.loop)
        with lab_context as lab, lab.reactor.scope() as scope:
            self.lab = lab
            self._scope = scope
            self._since = lab.log.total
            self._before = before = frozenset(lab.endpoints)
            if self.lent is None:
                self._reactor_loop = lab.reactor.loop
                if self.safe:  # what starts in it later (a console) stays in the file's folder too
                    lab.jail = Jail([os.path.dirname(os.path.realpath(self.scenario.path))])
            self.interp = Interpreter(lab)
            self.vars = _Variables(lab, self.saved, self.processes)
            deadline = started + self.scenario.timeout
            try:
                if self._cancelled.is_set():
                    raise StepFailed("cancelled")
                self._start_servers()
                for step in self.scenario.steps:
                    self.step = step
                    if self.gate is not None:
                        self._tell(step, StepState.WAITING)
                        held = time.monotonic()
                        self.gate(step)
                        deadline += time.monotonic() - held
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise StepFailed(f"the scenario ran out of its {self.scenario.timeout:g} s")
                    step_began = time.monotonic()
                    if self._cancelled.is_set():
                        raise StepFailed("cancelled")
                    self._tell(step, StepState.RUNNING)
                    self._run_step(step, min(step.timeout, left))
                    steps_run += 1
                    self._tell(step, StepState.PASSED, time.monotonic() - step_began)
            except (LabError, concurrent.futures.CancelledError) as exc:
                if self._cancelled.is_set():  # whatever the cut-short step said
                    failed = StepFailed("cancelled")
                elif isinstance(exc, LabError):
                    failed = exc if isinstance(exc, StepFailed) else StepFailed(str(exc))
                else:
                    raise
                failure = self._failure(failed)
            finally:
                self._reactor_loop = None
                self._scope = None
                self._stop_processes()
                if self.lent is not None:
                    self.created = [name for name in lab.endpoints if name not in before]
        if failure is not None and failure.step is not None:
            self._tell(failure.step, StepState.FAILED, time.monotonic() - step_began, failure)
        return Outcome(self.scenario, failure is None, time.monotonic() - started, steps_run, failure, self.notes)

    def cancel(self) -> None:
        """Stop the run from another thread: no further step starts, the
        one in progress is cut short, and the outcome fails as cancelled."""
        self._cancelled.set()
        scope = self._scope
        if scope is not None:
            scope.cancel()
        loop = self._reactor_loop  # a lab of its own: everything in it may go
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_cancel_tasks, loop)
            except RuntimeError:  # the run ended and closed its loop meanwhile
                pass

    def _tell(self, step: Step, state: StepState, seconds: float = 0.0, failure: Failure | None = None) -> None:
        if self.progress is None:
            return
        try:
            self.progress(StepUpdate(self.scenario, step, state, seconds, failure))
        except Exception:
            # whoever watches (a screen) must not change the run's result
            logger.exception("scenario progress callback failed")

    # -- lab -------------------------------------------------------------------

    step: Step | None = None

    def _start_servers(self) -> None:
        if self.target is not None:
            if self.scenario.servers:
                self.notes.append(f"client replay: {', '.join(s.name for s in self.scenario.servers)}"
                                  f" replaced by {self._target_text()}")
            return
        for decl in self.scenario.servers:
            try:
                to = self.vars.fill(decl.to) if decl.to else None
                self.lab._call(decl.astart(self.lab, to))
            except LabError as exc:
                raise StepFailed(f"lab server {decl.name!r}: {exc}", mark=decl.mark) from None

    def _target_text(self) -> str:
        assert self.target is not None
        host, port = self.target
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- steps -----------------------------------------------------------------

    def _run_step(self, step: Step, timeout: float) -> None:
        data = self.vars.fill(step.data)
        handler: Callable[[dict[str, Any], float], None] = getattr(self, f"_step_{step.kind}")
        handler(data, timeout)

    def _execute(self, words: list[str], timeout: float) -> Any:
        (result,) = self.interp.execute(shlex.join(words), timeout + BRIDGE_MARGIN)
        return result.value

    def _step_serve(self, data: dict[str, Any], timeout: float) -> None:
        if self.target is not None:
            self.notes.append(f"client replay: server {data['server'].name} not started")
            return
        words = command_words("serve", data)
        assert words is not None
        self._execute(words, timeout)

    def _step_connect(self, data: dict[str, Any], timeout: float) -> None:
        if self.target is not None and ":" not in data["target"]:
            data = {**data, "target": self._target_text(), "protocol": data["speaks"]}
        words = command_words("connect", {**data, "timeout": data.get("timeout") or timeout})
        assert words is not None
        self._execute(words, timeout)

    def _step_send(self, data: dict[str, Any], timeout: float) -> None:
        words = command_words("send", data)
        assert words is not None
        try:
            self._execute(words, timeout)
        except LabError as exc:
            # a server that hung up early: the report shows what it said before
            raise StepFailed(exc.message, expected=f"{data['client']} still open to send",
                             client=data["client"]) from None

    def _step_stop(self, data: dict[str, Any], timeout: float) -> None:
        names = [n for n in data["names"] if n not in self.processes]
        for name in data["names"]:
            if name in self.processes or name == "all":
                for pname in [name] if name != "all" else list(self.processes):
                    self.processes.pop(pname).close(force=True)
        if self.target is not None:
            names = [n for n in names if n in self.lab.endpoints or n == "all"]
        if names:
            self._execute(["stop", *names], timeout)

    def _step_wait(self, data: dict[str, Any], timeout: float) -> None:
        if data["seconds"] is not None:
            words = ["wait", f"{data['seconds']:g}"]
            self._execute(words, data["seconds"] + timeout)
            return
        wait_for = data.get("timeout") or timeout
        try:
            self._execute(["wait", data["closed"], "--closed", "--timeout", f"{wait_for:g}"], wait_for)
        except LabError as exc:
            raise StepFailed(exc.message, expected=f"{data['closed']} closed by the server",
                             client=data["closed"]) from None

    # -- proxies and intercepts --------------------------------------------------

    def _absent(self, name: str | None, what: str) -> bool:
        """In client replay the lab's proxies do not run: steps on them are
        skipped, with a note."""
        if self.target is None or name is None or name.partition("#")[0] in self.lab.endpoints:
            return False
        self.notes.append(f"client replay: {what} on {name} skipped")
        return True

    def _step_proxy(self, data: dict[str, Any], timeout: float) -> None:
        decl = data["server"]
        if self.target is not None:
            self.notes.append(f"client replay: proxy {decl.name} not started")
            return
        words = command_words("proxy", {"server": dataclasses.replace(decl, to=self.vars.fill(decl.to))})
        assert words is not None
        self._execute(words, timeout)

    def _intercept_step(self, kind: str, data: dict[str, Any], timeout: float) -> Any:
        if self._absent(data.get("on") or data.get("into"), kind):
            return None
        words = command_words(kind, data)
        assert words is not None
        if kind in ("release", "drop", "edit"):
            words += ["--wait", f"{data.get('timeout') or timeout:g}"]
        return self._execute(words, timeout)

    def _step_intercept(self, data: dict[str, Any], timeout: float) -> None:
        self._intercept_step("intercept", data, timeout)

    def _step_release(self, data: dict[str, Any], timeout: float) -> None:
        self._intercept_step("release", data, timeout)

    def _step_drop(self, data: dict[str, Any], timeout: float) -> None:
        self._intercept_step("drop", data, timeout)

    def _step_edit(self, data: dict[str, Any], timeout: float) -> None:
        self._intercept_step("edit", data, timeout)

    def _step_inject(self, data: dict[str, Any], timeout: float) -> None:
        self._intercept_step("inject", data, timeout)

    def _step_held(self, data: dict[str, Any], timeout: float) -> None:
        if self._absent(data.get("on"), "held"):
            return
        wait = data.get("timeout") or timeout
        words = ["held", "--wait", str(data["count"]), "--timeout", f"{wait:g}"]
        if data.get("on"):
            words += ["--on", data["on"]]
        try:
            held = self._execute(words, wait)
        except LabTimeout as exc:
            raise StepFailed(exc.message, expected=f"{data['count']} held message(s)",
                             got=", ".join(h.summary for h in self.lab.held()) or "nothing held") from None
        oldest = held[0].message
        if set(data) & {"text", "regex", "code", "equals", "hex", "kind", "length", "fields"} \
                and not matches(data, oldest):
            raise StepFailed("the held message is not the one expected", expected=describe_matchers(data),
                             got=f"{held[0].id}: {escape_bytes(oldest.raw, 120)}")
        if data.get("save"):
            self.saved[data["save"]] = oldest

    def _client(self, name: str, need: Can = Can.SEND) -> Client:
        endpoint = self.lab.endpoints.get(name)
        if endpoint is None or not endpoint.can(need):
            raise StepFailed(f"{name!r} is not a client here")
        return cast(Client, endpoint)

    def _step_call(self, data: dict[str, Any], timeout: float) -> None:
        client = self._client(data["client"], Can.VERBS)  # a library-owned client has verbs, no send
        kwargs = dict(data["kwargs"])
        verb = type(client.verbs).verbs().get(data["verb"])
        if data.get("timeout") and verb is not None and "timeout" in inspect.signature(verb).parameters:
            kwargs.setdefault("timeout", data["timeout"])  # the step's timeout is the verb's
        values = [*data["args"], *kwargs.values()]
        plain = all(isinstance(a, (str, int, float, bool)) or a is None for a in values) and not any(
            isinstance(a, str) and ("\n" in a or "\r" in a) for a in values)  # a line break ends a statement
        try:
            if plain:
                words = command_words("call", {**data, "kwargs": kwargs})
                assert words is not None
                value = self._execute(words, float(kwargs.get("timeout", timeout)) + BRIDGE_MARGIN)
            else:
                # lists, mappings or lines as arguments: straight to the verb, as `call` would
                value = getattr(client, data["verb"])(*data["args"], **kwargs)
        except LabError as exc:
            raise StepFailed(exc.message, expected=f"{data['verb']} to succeed", client=data["client"]) from None
        if data.get("save"):
            self.saved[data["save"]] = value
        self._check_value(value, data, client=data["client"])

    def _check_value(self, value: Any, data: dict[str, Any], *, negate: bool = False,
                     client: str | None = None) -> None:
        shown = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(value, Message):  # a verb's reply is checked as the text it carried
            shown = value.raw.decode("utf-8", "replace")
        checks = []
        if "equals" in data:
            checks.append((f"equals {data['equals']!r}", _same(value, data["equals"])))
        if "contains" in data:
            hay = shown if isinstance(shown, (str, list, tuple, dict)) else str(shown)
            checks.append((f"contains {data['contains']!r}", data["contains"] in hay))
        if "regex" in data:
            checks.append((f"matches /{data['regex']}/", re.search(data["regex"], str(shown)) is not None))
        if "count" in data:
            needle = data.get("contains")
            if "regex" in data:
                count = len(re.findall(data["regex"], str(shown)))
            elif needle is not None:
                count = str(shown).count(str(needle))
            else:
                count = len(shown) if isinstance(shown, (list, tuple, dict, str)) else 0
            checks = [(f"count {data['count']}", count == data["count"])]
            shown = f"{shown!r} (count {count})"
        for what, ok in checks:
            if ok == negate:
                expected = ("not " if negate else "") + what
                raise StepFailed(f"expected a value that {expected}", expected=expected, client=client,
                                 got=repr(shown) if not isinstance(shown, str) else escape_bytes(shown.encode()))

    def _step_expect(self, data: dict[str, Any], timeout: float) -> None:
        if data["client"] in self.processes:
            self._expect_process(data, timeout)
            return
        client = self._client(data["client"])
        wait = data.get("timeout") or timeout

        def predicate(msg: Message) -> bool:
            return matches(data, msg)

        predicate.__name__ = describe_matchers(data)
        try:
            msg = client.expect(predicate, wait)
        except (LabTimeout, ConnectionClosed) as exc:
            arrived = self._received(data["client"])
            got = ", ".join(escape_bytes(m.raw, 80) for m in arrived[-3:]) or "nothing"
            reason = "closed before it arrived" if isinstance(exc, ConnectionClosed) else f"not within {wait:g} s"
            raise StepFailed(f"{exc.message}" if exc.message else reason,
                             expected=describe_matchers(data), client=data["client"], got=got) from None
        if data.get("save"):
            self.saved[data["save"]] = msg

    def _expect_process(self, data: dict[str, Any], timeout: float) -> None:
        import pexpect

        proc = self.processes[data["client"]]
        wait = data.get("timeout") or timeout
        try:
            if data.get("eof"):
                proc.expect(pexpect.EOF, timeout=wait)
            elif "regex" in data:
                proc.expect(data["regex"], timeout=wait)
            else:
                proc.expect_exact(str(data.get("text", "")), timeout=wait)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            before = proc.before if isinstance(proc.before, str) else ""
            what = "the program ended" if isinstance(exc, pexpect.EOF) else f"nothing matched within {wait:g} s"
            raise StepFailed(f"{data['client']}: {what}", expected=describe_matchers(data),
                             got=escape_bytes(before.encode("utf-8", "replace")[-300:])) from None
        if data.get("save"):
            self.saved[data["save"]] = proc.after if isinstance(proc.after, str) else ""

    def _step_spawn(self, data: dict[str, Any], timeout: float) -> None:
        import shutil

        import pexpect

        if self.safe:
            raise StepFailed("spawn runs a program, which safe mode refuses")
        program = shutil.which(data["command"][0])
        if program is None:
            raise StepFailed(f"program {data['command'][0]!r} not found", expected="a program on PATH")
        try:
            proc = pexpect.spawn(program, data["command"][1:], timeout=timeout, encoding="utf-8",
                                 codec_errors="replace", echo=False, env={"PATH": "/usr/bin:/bin", "TERM": "dumb",
                                                                          "LC_ALL": "C"})
        except (OSError, pexpect.ExceptionPexpect) as exc:
            raise StepFailed(f"cannot start {data['command'][0]}: {exc}") from None
        self.processes[data["name"]] = proc

    def _step_sendline(self, data: dict[str, Any], timeout: float) -> None:
        proc = self.processes.get(data["process"])
        if proc is None:
            raise StepFailed(f"{data['process']!r} is not running")
        try:
            proc.sendline(data["text"])
            if data.get("eof"):
                proc.sendeof()
        except OSError as exc:
            raise StepFailed(f"cannot write to {data['process']}: {exc.strerror or exc}") from None

    def _step_save(self, data: dict[str, Any], timeout: float) -> None:
        value: Any = data["value"]
        if data.get("regex"):
            m = re.search(data["regex"], value)
            if m is None:
                raise StepFailed(f"/{data['regex']}/ does not match {value!r}", expected=f"/{data['regex']}/",
                                 got=escape_bytes(value.encode()))
            value = m.group(1) if m.groups() else m.group(0)
        self.saved[data["name"]] = value

    def _step_assert(self, data: dict[str, Any], timeout: float) -> None:
        negate = bool(data.get("not"))
        if data["subject"] == "value":
            self._check_value(data["value"], data, negate=negate)
        elif data["subject"] == "message":
            msg = self.saved.get(data["message"])
            value: Any = msg
            if data.get("field"):
                if not isinstance(msg, Message):
                    raise StepFailed(f"{data['message']!r} is not a message")
                try:
                    value = field_value(msg, data["field"])
                except KeyError:
                    raise StepFailed(f"{type(msg).__name__} has no field {data['field']!r}",
                                     expected=f"a field {data['field']}",
                                     got=", ".join(sorted(msg.fields()))) from None
            elif isinstance(msg, Message):
                value = _wire_text(msg)
            self._check_value(value, data, negate=negate)
        else:
            ev = data["events"]
            flt = EventFilter(endpoint=ev.get("endpoint"), conn=ev.get("conn"), protocol=ev.get("protocol"),
                              direction=Direction(ev["direction"]) if ev.get("direction") else None,
                              kinds=frozenset({EventKind(ev.get("kind", "msg"))}) if ev.get("kind", "msg") in
                              {k.value for k in EventKind} else None, text=ev.get("grep"), since=self._since)
            count = len(self.lab.log.query(flt))
            if (count == data["count"]) == negate:
                found = self.lab.endpoints.get(ev.get("endpoint", ""))
                client = ev.get("endpoint") if found is not None and found.can(Can.SEND) else None
                raise StepFailed(f"expected {'not ' if negate else ''}{data['count']} events, found {count}",
                                 expected=f"{data['count']} events", got=str(count), client=client)

    def _step_python(self, data: dict[str, Any], timeout: float) -> None:
        if self.safe:
            raise StepFailed("python hooks run code, which safe mode refuses")
        module_name, _, name = data["function"].partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise StepFailed(f"cannot import {data['function']}: {exc}") from None
        try:
            value = fn(HookContext(self.lab, self.saved, data["args"]))
        except LabError as exc:
            raise StepFailed(f"{data['function']}: {exc}") from None
        except AssertionError as exc:
            raise StepFailed(f"{data['function']} failed: {exc}") from None
        except Exception as exc:  # the user's code: one line, like any step that fails
            raise StepFailed(f"{data['function']} raised {format_exception(exc)}") from None
        if data.get("save"):
            self.saved[data["save"]] = value

    # -- reporting -----------------------------------------------------------

    def _received(self, client: str) -> list[Message]:
        flt = EventFilter(endpoint=client, direction=Direction.IN, kinds=frozenset({EventKind.MESSAGE}),
                          since=self._since)
        return [e.message for e in self.lab.log.query(flt) if e.message is not None]

    def _failure(self, exc: StepFailed) -> Failure:
        failure = Failure(self.scenario, self.step, exc.message, expected=exc.expected, got=exc.got, mark=exc.mark)
        if exc.client:
            received = self._received(exc.client)
            for msg in received[-8:]:
                failure.arrived.append(f"{msg.summary()} | {escape_bytes(msg.raw, 120)}")
            expects = [self.vars.fill(e) for e in self._expected_replies(exc.client) if not self._unresolved(e)]
            if expects or received:
                failure.diff = reply_diff(expects, received)
        events = self.lab.log.snapshot()
        if self.lent is not None:  # a lent lab's other traffic is not the run's
            events = tuple(e for e in events if self._mine(e))
        failure.log_tail = [format_event(e) for e in events[-LOG_TAIL:]]
        return failure

    def _mine(self, event: Event) -> bool:
        """An event of this run in a lent lab: since it began, on an
        endpoint it made."""
        if event.seq <= self._since:
            return False
        return event.endpoint not in self._before

    def _expected_replies(self, client: str) -> list[dict[str, Any]]:
        """What the scenario expects ``client`` to receive, in order: its
        ``expect`` steps, and what its recorded ``call`` steps received."""
        out: list[dict[str, Any]] = []
        for step in self.scenario.steps:
            data = step.data
            if step.kind == "expect" and data["client"] == client:
                out.append(data)
            elif step.kind == "call" and data["client"] == client:
                for item in data.get("traffic") or ():
                    ((key, value),) = item.items()
                    if key == "received":
                        out.append({"equals": str(value).replace("{", "{{").replace("}", "}}")})
                    elif key == "received_hex":
                        out.append({"hex": value})
        return out

    def _unresolved(self, data: dict[str, Any]) -> bool:
        try:
            self.vars.fill(data)
        except (LabError, KeyError, AttributeError):
            return True
        return False

    def _stop_processes(self) -> None:
        for proc in self.processes.values():
            try:
                proc.close(force=True)
            except Exception:  # a process that will not die must not hide the result
                pass
        self.processes.clear()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the work a cancelled run waits on (on the reactor thread)."""
    for task in asyncio.all_tasks(loop):
        task.cancel()


@dataclass
class HookContext:
    """What a ``python`` step's function receives."""

    lab: Lab
    saved: dict[str, Any]
    args: dict[str, Any]


def run_scenario(scenario: Scenario, **kwargs: Any) -> Outcome:
    """Run one scenario in a fresh lab; see :class:`Runner`."""
    return Runner(scenario, **kwargs).run()


def check_scenario(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` if ``scenario`` failed (for programs)."""
    outcome = run_scenario(scenario)
    if not outcome.passed and outcome.failure is not None:
        raise ScenarioError(outcome.failure.report())
