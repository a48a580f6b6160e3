"""Scenario files: the schema, checked before anything runs.

A file holds one scenario per YAML document::

    name: echo-basics
    description: what a student learns here
    tags: [echo, wire]
    lab:
      e: {protocol: echo}
    steps:
      - connect: {to: e, as: c}
      - send: {to: c, text: hello}
      - expect: {from: c, equals: "hello\\r\\n"}

Every mistake is a :class:`ScenarioError` whose message starts with
``FILE:LINE:COL:`` and names the step; see docs/scenarios.md for the
schema.  Loading never runs code: a ``python`` step only names a
function, imported when the step runs (and refused with ``safe``).

Tests: tests/scenarios/test_validation.py
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import protocols
from lab.budget import parse_budget
from lab.errors import LabError, ScenarioError
from lab.jail import Jail, path_options, refused_option
from lab.scenarios._loader import LDict, LList, Mark, YamlError, compose_documents

if TYPE_CHECKING:
    from lab.endpoints import Endpoint
    from lab.lab import Lab

__all__ = [
    "Scenario",
    "ServerDecl",
    "Step",
    "load_file",
    "load_text",
    "references",
]

DEFAULT_STEP_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_VARIABLE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?")

SERVER_ATTRS = ("name", "protocol", "host", "port", "address")
CLIENT_ATTRS = ("name", "protocol", "address")
PROCESS_ATTRS = ("name", "pid")


@dataclass
class ServerDecl:
    """One server of the ``lab:`` part."""

    name: str
    protocol: str
    mark: Mark
    port: int = 0
    host: str = "127.0.0.1"
    transport: str | None = None
    capture: str | None = None
    max_connections: int | None = None
    idle_timeout: float | None = None
    max_per_source: int | None = None
    line_timeout: float | None = None
    min_rate: float | None = None
    reply_budget: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    to: str | None = None  # a proxy's server: a name before it, or HOST:PORT

    @property
    def is_proxy(self) -> bool:
        return self.to is not None

    def kwargs(self) -> dict[str, Any]:
        """Keywords for ``Lab.serve`` (or ``Lab.proxy``, after ``to``)."""
        out: dict[str, Any] = {"name": self.name, "port": self.port, "host": self.host}
        for key in ("transport", "capture", *CAP_KEYS):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.options)
        return out

    async def astart(self, lab: Lab, to: str | None = None) -> Endpoint:
        """Start it in ``lab`` (on the loop): a server, or a proxy to ``to``
        (default: its own ``to``, with variables already filled)."""
        if self.to is not None:
            return await lab.aproxy(self.protocol, to or self.to, **self.kwargs())
        return await lab.aserve(self.protocol, **self.kwargs())


@dataclass
class Step:
    """One validated step: ``kind`` and its normalized ``data``."""

    index: int
    kind: str
    data: dict[str, Any]
    mark: Mark
    text: str
    timeout: float

    def __str__(self) -> str:
        return f"step {self.index} `{self.text}`"


@dataclass
class Scenario:
    """A lab plus a conversation, validated."""

    name: str
    path: str
    mark: Mark
    description: str = ""
    tags: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    servers: list[ServerDecl] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # FILE:LINE:COL: what reaches beyond loopback

    @property
    def location(self) -> str:
        return f"{self.path}:{self.mark}"

    @property
    def runs_programs(self) -> bool:
        """Whether it spawns programs or calls Python (refused with ``safe``)."""
        return any(s.kind in ("spawn", "python") for s in self.steps)


# -- errors ----------------------------------------------------------------


class _Context:
    """What validation of one scenario knows so far."""

    def __init__(self, path: str, safe: bool) -> None:
        self.path = path
        self.safe = safe
        self.where = ""  # "step 3" or "lab server 'mx'"
        self.servers: dict[str, str] = {}  # name -> protocol
        self.clients: dict[str, str | None] = {}  # name -> protocol, if known
        self.processes: set[str] = set()
        self.saved: set[str] = set()
        self.warnings: list[str] = []
        self._jail: Jail | None = None

    @property
    def jail(self) -> Jail:
        """Safe mode's folders: the one the file is in."""
        if self._jail is None:
            self._jail = Jail([Path(self.path).resolve().parent])
        return self._jail

    def error(self, mark: Mark, message: str, hint: str | None = None) -> ScenarioError:
        where = f"{self.where}: " if self.where else ""
        return ScenarioError(f"{self.path}:{mark}: {where}{message}", hint=hint)

    def names(self) -> set[str]:
        return set(self.servers) | set(self.clients) | self.processes


def _did_you_mean(word: str, choices: list[str], fallback: str | None = None, *,
                  braces: bool = False) -> str | None:
    close = protocols.suggest(word, choices)
    if close:
        return f"did you mean {{{close}}}?" if braces else f"did you mean {close!r}?"
    return fallback


# -- typed fields ---------------------------------------------------------

_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Fields:
    """Typed access to one mapping, with errors that point at the value."""

    def __init__(self, ctx: _Context, mapping: LDict, what: str, allowed: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.map = mapping
        self.what = what
        for key in mapping:
            if isinstance(key, bool) or key in ("true", "false"):
                raise ctx.error(mapping.key_marks[key], f"a key YAML reads as {str(key).lower()} in {what}",
                                "on, off, yes and no are true/false to YAML: quote the key"
                                f" ({what} takes: {', '.join(allowed)})")
            if key not in allowed:
                raise ctx.error(mapping.key_marks[key], f"unknown key {key!r} in {what}",
                                _did_you_mean(key, list(allowed), f"{what} takes: {', '.join(allowed)}"))

    def mark(self, key: str) -> Mark:
        return self.map.where(key)

    def has(self, key: str) -> bool:
        return key in self.map

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False) -> Any:
        if key not in self.map:
            if required:
                raise self.ctx.error(self.map.mark, f"{self.what} needs {key!r}")
            return default
        value = self.map[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and int not in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            wanted = "text" if str in kinds and dict not in kinds and list not in kinds else \
                " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise self.ctx.error(self.mark(key), f"{key!r} must be {wanted}, not {_type_name(value)}")
        return value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.get(key, (str, int, float), default, required=required)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    def timeout(self, key: str = "timeout", default: float | None = None) -> Any:
        value = self.get(key, float, default)
        if value is not None and not 0 < value <= MAX_TIMEOUT:
            raise self.ctx.error(self.mark(key), f"{key!r} must be between 0 and {MAX_TIMEOUT:g} seconds")
        return value

    def name(self, key: str, *, required: bool = False) -> Any:
        value = self.get(key, str, required=required)
        if value is not None and not NAME_RE.fullmatch(value):
            raise self.ctx.error(self.mark(key), f"bad name {value!r}",
                                 "use letters, digits, _ . - (up to 32), starting with a letter")
        return value


# -- variables --------------------------------------------------------------


def references(text: str) -> Iterator[str]:
    """The ``{name.attr}`` references in ``text`` (``{{``/``}}`` escape braces)."""
    for m in _VARIABLE.finditer(text):
        if m.group(1) is not None:
            yield m.group(1)


def _check_references(ctx: _Context, value: Any, mark: Mark) -> None:
    if isinstance(value, str):
        for ref in references(value):
            _check_reference(ctx, ref.strip(), mark)
    elif isinstance(value, list):
        marks = getattr(value, "marks", None)
        for i, item in enumerate(value):
            _check_references(ctx, item, marks[i] if marks else mark)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = value.where(key) if isinstance(value, LDict) else mark
            _check_references(ctx, item, where)


def _check_reference(ctx: _Context, ref: str, mark: Mark) -> None:
    if not _VAR_NAME.fullmatch(ref):
        raise ctx.error(mark, f"bad variable {{{ref}}}", "write {server.port} or {saved.NAME}; {{ for a brace")
    _head, _, _attr = ref.partition(".")
    if _head == "secret" and _attr:
        return  # left out of a recording: read from the environment when it runs
    known: list[str] = [f"saved.{s}" for s in sorted(ctx.saved)]
    for name in ctx.servers:
        known += [f"{name}.{a}" for a in SERVER_ATTRS]
    for name in ctx.clients:
        known += [f"{name}.{a}" for a in CLIENT_ATTRS]
    for name in ctx.processes:
        known += [f"{name}.{a}" for a in PROCESS_ATTRS]
    if ref in known:
        return
    raise ctx.error(mark, f"undefined variable {{{ref}}}",
                    _did_you_mean(ref, known, "variables are {server.port}, {client.address}, {saved.NAME}"
                                  " for names defined earlier", braces=True))


# -- the lab part -----------------------------------------------------------

CAP_KEYS = ("max_connections", "idle_timeout", "max_per_source", "line_timeout", "min_rate", "reply_budget")
SERVER_KEYS = ("protocol", "port", "host", "transport", "capture", *CAP_KEYS, "options", "to")


def _protocol(ctx: _Context, name: str, mark: Mark) -> protocols.ProtocolSpec:
    try:
        return protocols.get(name)
    except LabError as exc:
        raise ctx.error(mark, exc.message, exc.hint) from None


def _check_options(ctx: _Context, spec: protocols.ProtocolSpec, options: LDict, *,
                   client: bool = False) -> dict[str, Any]:
    declared = (spec.client_options if client else spec.options).declared()
    what = "client option" if client else "option"
    resolve = spec.resolve_client_options if client else spec.resolve_options
    known = [opt.name for opt in declared]
    for key in options:
        if key not in known:
            raise ctx.error(options.key_marks[key], f"{spec.name} has no {what} {key!r}",
                            _did_you_mean(key, known, f"{what}s of {spec.name}: {', '.join(known) or 'none'}"))
    checked = safe_options(ctx, spec, options, options.where, client=client)
    for key in options:
        try:
            resolve({key: checked[key]})
        except LabError as exc:
            raise ctx.error(options.where(key), exc.message, exc.hint) from None
    return checked


def safe_options(ctx: _Context, spec: protocols.ProtocolSpec, options: dict[str, Any],
                 mark_of: Callable[[str], Mark], *, client: bool = False) -> dict[str, Any]:
    """With ``safe``: ``options`` with each path made real inside the
    file's folder (relative paths start there), checked before any option
    is parsed (parsing ``password_file`` reads it); a console refused."""
    if not ctx.safe:
        return dict(options)
    out = dict(options)
    for key in path_options(spec, client=client) & set(options):
        value = options[key]
        if not isinstance(value, str):
            continue  # the type check says what is wrong
        try:
            out[key] = str(ctx.jail.path(value, base=ctx.jail.roots[0]))
        except LabError as exc:
            raise ctx.error(mark_of(key), f"{spec.name} option {key!r}: {exc.message}", exc.hint) from None
    if client:
        return out
    for key in options:
        try:
            value = getattr(spec.resolve_options({key: out[key]}), key, None)
        except LabError:
            continue  # said where the options are parsed
        why = refused_option(spec.name, key, value)
        if why is not None:
            raise ctx.error(mark_of(key), f"{spec.name} option {key!r}: {why}, which safe mode refuses",
                            "run without --safe if you trust the file")
    return out


def _server(ctx: _Context, name: str, body: Any, mark: Mark) -> ServerDecl:
    if isinstance(body, str):
        body_map = LDict(protocol=body)
        body_map.mark = mark
        body_map.key_marks = {"protocol": mark}
        body_map.value_marks = {"protocol": mark}
        body = body_map
    if not isinstance(body, LDict):
        raise ctx.error(mark, f"a server is a protocol name or a mapping, not {_type_name(body)}")
    f = _Fields(ctx, body, "a server", SERVER_KEYS)
    proto = f.get("protocol", str, required=True)
    spec = _protocol(ctx, proto, f.mark("protocol"))
    port = f.get("port", int, 0)
    if not 0 <= port <= 65535:
        raise ctx.error(f.mark("port"), f"port {port} is out of range", "use 0-65535 (0 = any free port)")
    transport = f.get("transport", str)
    if transport is not None and transport not in spec.iter_transports():
        raise ctx.error(f.mark("transport"), f"{proto} does not run over {transport!r}",
                        f"it runs over {', '.join(spec.iter_transports())}")
    capture = f.get("capture", str)
    if capture is not None and capture not in ("full", "summary", "off"):
        raise ctx.error(f.mark("capture"), f"unknown capture level {capture!r}", "use full, summary or off")
    max_conns = f.get("max_connections", int)
    if max_conns is not None and max_conns < 1:
        raise ctx.error(f.mark("max_connections"), "max_connections must be at least 1")
    slow: dict[str, Any] = {}
    for key, kind in (("max_per_source", int), ("line_timeout", float), ("min_rate", float)):
        value = f.get(key, kind)
        if value is not None and value < 0:
            raise ctx.error(f.mark(key), f"{key} must be 0 (off) or more")
        if value is not None and f.has("to"):
            raise ctx.error(f.mark(key), f"a proxy takes no {key}", "slow-client caps belong to servers")
        slow[key] = value
    budget = f.get("reply_budget", str)
    if budget is not None:
        if (transport or spec.transports[0].value) != "udp":
            raise ctx.error(f.mark("reply_budget"), "a reply budget is for UDP servers", "add transport: udp")
        try:
            parse_budget(budget)
        except ValueError as exc:
            raise ctx.error(f.mark("reply_budget"), f"reply budget {exc}",
                            "e.g. 4K/16K/2: bytes a second, burst, times what a source sends; or off") from None
        slow["reply_budget"] = budget
    options = f.get("options", dict, None)
    listen_address(ctx, f.text("host", "127.0.0.1"), f.mark("host") if f.has("host") else mark)
    to = f.text("to")
    if to is not None:
        if options:
            raise ctx.error(f.mark("options"), "a proxy takes no protocol options",
                            "options belong to the server it relays to")
        proxy_target(ctx, to, f.mark("to"))
    checked = _check_options(ctx, spec, options) if options is not None else {}
    return ServerDecl(name=name, protocol=proto, mark=mark, port=port, host=f.text("host", "127.0.0.1"),
                      transport=transport, capture=capture, max_connections=max_conns,
                      idle_timeout=f.get("idle_timeout", float), options=checked, to=to, **slow)


def safe_address(ctx: _Context, address: str, mark: Mark) -> None:
    """With ``safe``, a file reaches loopback only: ``address`` (HOST:PORT
    or a server's name) names no other host, nor a variable that could
    hold one (only a lab server's ``{NAME.host}`` or ``{NAME.address}``)."""
    if not ctx.safe or address in ctx.servers:
        return
    filled = _VARIABLE.sub(lambda m: _server_value(ctx, m), address)
    if filled.isdigit():  # a port: on 127.0.0.1
        return
    host = filled.rpartition(":")[0] if ":" in filled else filled
    _loopback_only(ctx, host.strip("[]"), address, mark)


_STAND_INS = {"address": "127.0.0.1:0", "host": "127.0.0.1", "port": "0"}


def _server_value(ctx: _Context, m: re.Match[str]) -> str:
    """A stand-in for a lab server's ``{NAME.ATTR}`` (it listens on
    loopback); any other variable stays, so the address is refused."""
    if m.group(1) is None:
        return m.group(0)
    name, _, attr = m.group(1).strip().partition(".")
    return _STAND_INS.get(attr, m.group(0)) if name in ctx.servers else m.group(0)


def listen_address(ctx: _Context, host: str, mark: Mark) -> None:
    """A server listens on loopback with ``safe``; beyond it, a warning."""
    from lab.endpoints import is_loopback

    if ctx.safe:
        _loopback_only(ctx, host.strip("[]"), host, mark)
    elif not is_loopback(host.strip("[]")):
        where = f"{ctx.where}: " if ctx.where else ""
        ctx.warnings.append(f"{ctx.path}:{mark}: {where}listens on {host}, reachable from other machines")


def _loopback_only(ctx: _Context, host: str, given: str, mark: Mark) -> None:
    from lab.endpoints import is_loopback

    if not is_loopback(host):
        raise ctx.error(mark, f"{given!r} is not a loopback address, which safe mode refuses",
                        "safe mode keeps a file to 127.0.0.1 and ::1; run without --safe if you trust it")


def proxy_target(ctx: _Context, to: str, mark: Mark) -> None:
    """A proxy relays to a server declared before it, or to HOST:PORT."""
    if to in ctx.servers or ":" in to or list(references(to)):
        _check_references(ctx, to, mark)
        safe_address(ctx, to, mark)
        return
    raise ctx.error(mark, f"no server named {to!r} to relay to",
                    _did_you_mean(to, sorted(ctx.servers), "name a server declared before the proxy, or give"
                                  " HOST:PORT"))


def _lab(ctx: _Context, body: Any, mark: Mark) -> list[ServerDecl]:
    if body is None:
        return []
    if not isinstance(body, LDict):
        raise ctx.error(mark, f"'lab' must be a mapping of server names to servers, not {_type_name(body)}")
    servers = []
    for name, server in body.items():
        ctx.where = f"lab server {name!r}"
        if not NAME_RE.fullmatch(name):
            raise ctx.error(body.key_marks[name], f"bad server name {name!r}",
                            "use letters, digits, _ . - (up to 32), starting with a letter")
        servers.append(_server(ctx, name, server, body.where(name)))
        ctx.servers[name] = servers[-1].protocol
    ctx.where = ""
    return servers


# -- the file ------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "tags", "timeout", "step_timeout", "lab", "steps")


def _scenario(ctx: _Context, doc: Any, mark: Mark, default_name: str) -> Scenario:
    # the step checks build on this module: imported here, not at the top
    from lab.scenarios._steps import STEP_KINDS
    from lab.scenarios._text import step_text

    if not isinstance(doc, LDict):
        raise ctx.error(mark, f"a scenario is a mapping with name, lab and steps, not {_type_name(doc)}")
    f = _Fields(ctx, doc, "a scenario", _TOP_KEYS)
    name = f.text("name", default_name)
    tags = f.get("tags", list, [])
    for tag, where in zip(tags, tags.marks if isinstance(tags, LList) else [], strict=False):
        if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", tag):
            raise ctx.error(where, f"bad tag {tag!r}", "tags are words: letters, digits, _ and -")
    scenario = Scenario(name=name, path=ctx.path, mark=mark, description=f.text("description", "") or "",
                        tags=tuple(tags), timeout=f.timeout("timeout", DEFAULT_TIMEOUT),
                        step_timeout=f.timeout("step_timeout", DEFAULT_STEP_TIMEOUT))
    scenario.servers = _lab(ctx, doc.get("lab"), f.mark("lab"))
    # `steps:` with nothing under it: a recording that has not recorded yet
    steps = f.get("steps", list, LList()) if doc.get("steps") is not None else LList()
    for index, (item, where) in enumerate(zip(steps, getattr(steps, "marks", []), strict=False), 1):
        ctx.where = f"step {index}"
        if not isinstance(item, LDict) or len(item) != 1:
            got = f"{len(item)} keys ({', '.join(item)})" if isinstance(item, LDict) else _type_name(item)
            raise ctx.error(where, f"a step is one `kind: arguments` pair, not {got}",
                            f"kinds: {', '.join(STEP_KINDS)}")
        ((kind, value),) = item.items()
        if kind not in STEP_KINDS:
            raise ctx.error(item.key_marks[kind], f"unknown step {kind!r}",
                            _did_you_mean(kind, list(STEP_KINDS), f"kinds: {', '.join(STEP_KINDS)}"))
        data = STEP_KINDS[kind](ctx, value, item.where(kind))
        timeout = data.get("timeout") or scenario.step_timeout
        scenario.steps.append(Step(index, kind, data, item.where(kind), step_text(kind, data), timeout))
    ctx.where = ""
    scenario.warnings = ctx.warnings
    return scenario


def load_text(text: str, path: str = "<scenario>", *, safe: bool = False) -> list[Scenario]:
    """Every scenario in ``text`` (one per YAML document), validated.

    :class:`ScenarioError` naming ``path:line:col`` for any mistake.
    """
    try:
        docs = compose_documents(text)
    except YamlError as exc:
        raise ScenarioError(f"{path}:{exc.mark}: {exc.message}", hint=exc.hint) from None
    if not docs:
        raise ScenarioError(f"{path}:1:1: the file is empty", hint="a scenario needs at least `lab:` or `steps:`")
    stem = Path(path).stem
    scenarios: list[Scenario] = []
    seen: dict[str, Mark] = {}
    for number, (doc, mark) in enumerate(docs, 1):
        ctx = _Context(path, safe)
        default = stem if len(docs) == 1 else f"{stem}-{number}"
        scenario = _scenario(ctx, doc, mark, default)
        if scenario.name in seen:
            raise ScenarioError(f"{path}:{mark}: duplicate scenario name {scenario.name!r}"
                                f" (first at line {seen[scenario.name].line})", hint="give each a unique 'name'")
        seen[scenario.name] = mark
        scenarios.append(scenario)
    return scenarios


def load_file(path: str | Path, *, safe: bool = False) -> list[Scenario]:
    """Read and validate a scenario file; :class:`ScenarioError` on any problem."""
    name = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_READ)
    except FileNotFoundError:
        raise ScenarioError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{name}: is a directory", hint="give .yaml files (a shell glob works)") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioError(f"{name}: cannot read: {exc.strerror}") from None
    return load_text(text, name, safe=safe)


MAX_READ = 2 * 1024 * 1024  # more than the loader accepts, so it can say so
