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
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import protocols
from lab.errors import LabError, ScenarioError
from lab.scenarios._loader import LDict, LList, Mark, YamlError, compose_documents

__all__ = [
    "STEP_KINDS",
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
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")

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
    options: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keywords for ``Lab.serve``."""
        out: dict[str, Any] = {"name": self.name, "port": self.port, "host": self.host}
        for key in ("transport", "capture", "max_connections", "idle_timeout"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.options)
        return out


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

_SERVER_KEYS = ("protocol", "port", "host", "transport", "capture", "max_connections", "idle_timeout", "options")


def _protocol(ctx: _Context, name: str, mark: Mark) -> protocols.ProtocolSpec:
    try:
        return protocols.get(name)
    except LabError as exc:
        raise ctx.error(mark, exc.message, exc.hint) from None


def _check_options(ctx: _Context, spec: protocols.ProtocolSpec, options: LDict) -> dict[str, Any]:
    known = [opt.name for opt in spec.options]
    for key in options:
        if key not in known:
            raise ctx.error(options.key_marks[key], f"{spec.name} has no option {key!r}",
                            _did_you_mean(key, known, f"options of {spec.name}: {', '.join(known) or 'none'}"))
        try:
            spec.resolve_options({key: options[key]})
        except LabError as exc:
            raise ctx.error(options.where(key), exc.message, exc.hint) from None
    return dict(options)


def _server(ctx: _Context, name: str, body: Any, mark: Mark) -> ServerDecl:
    if isinstance(body, str):
        body_map = LDict(protocol=body)
        body_map.mark = mark
        body_map.key_marks = {"protocol": mark}
        body_map.value_marks = {"protocol": mark}
        body = body_map
    if not isinstance(body, LDict):
        raise ctx.error(mark, f"a server is a protocol name or a mapping, not {_type_name(body)}")
    f = _Fields(ctx, body, "a server", _SERVER_KEYS)
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
    options = f.get("options", dict, None)
    checked = _check_options(ctx, spec, options) if options is not None else {}
    return ServerDecl(name=name, protocol=proto, mark=mark, port=port, host=f.text("host", "127.0.0.1"),
                      transport=transport, capture=capture, max_connections=max_conns,
                      idle_timeout=f.get("idle_timeout", float), options=checked)


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


# -- steps -----------------------------------------------------------------

StepCheck = Callable[["_Context", Any, Mark], dict[str, Any]]


def _words(ctx: _Context, kind: str, value: Any, mark: Mark) -> list[str]:
    """A step written as command-language text: its words, parsed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ctx.error(mark, f"{kind!r} takes a mapping or command text, not {_type_name(value)}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ctx.error(mark, f"cannot split {value!r}: {exc}", "close the quote") from None
    if not words:
        raise ctx.error(mark, f"empty {kind!r} step")
    return words


def _parse_command(ctx: _Context, kind: str, words: list[str], mark: Mark) -> Any:
    from lab.commands import command

    try:
        return command(kind).parse(words)
    except LabError as exc:
        raise ctx.error(mark, exc.message, exc.hint) from None


def _need_client(ctx: _Context, name: str, mark: Mark, *, processes: bool = False) -> None:
    known = set(ctx.clients) | (ctx.processes if processes else set())
    if name in known:
        return
    if name in ctx.servers:
        raise ctx.error(mark, f"{name!r} is a server, not a client", f"`connect: {{to: {name}, as: c}}` first")
    what = "client or process" if processes else "client"
    raise ctx.error(mark, f"no {what} named {name!r}",
                    _did_you_mean(name, sorted(known), f"connect one first with `connect: {{to: SERVER, as: {name}}}`"))


def _new_name(ctx: _Context, name: str, mark: Mark) -> None:
    if name in ctx.names():
        raise ctx.error(mark, f"name {name!r} is already taken", "pick another name")


def check_serve(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        name = value.get("as")
        body = LDict({k: v for k, v in value.items() if k != "as"})
        body.mark, body.key_marks, body.value_marks = value.mark, value.key_marks, value.value_marks
        if name is None or not isinstance(name, str):
            raise ctx.error(value.mark, "serve needs 'as': the server's name")
        decl = _server(ctx, name, body, value.mark)
    else:
        from lab.commands.serve import server_kwargs

        words = _words(ctx, "serve", value, mark)
        args = _parse_command(ctx, "serve", words, mark)
        kwargs = server_kwargs(args)
        name = kwargs.pop("name") or None
        if name is None:
            raise ctx.error(mark, "serve needs a name: end with `as NAME`")
        spec = _protocol(ctx, args.protocol, mark)
        general = {k: kwargs.pop(k) for k in list(kwargs) if k in _SERVER_KEYS}
        try:
            spec.resolve_options(kwargs)
        except LabError as exc:
            raise ctx.error(mark, exc.message, exc.hint) from None
        decl = ServerDecl(name=name, protocol=spec.name, mark=mark, port=general.get("port", 0),
                          host=general.get("host", "127.0.0.1"), transport=general.get("transport"),
                          capture=general.get("capture"), idle_timeout=general.get("idle_timeout"),
                          options=kwargs)
    _new_name(ctx, decl.name, mark)
    ctx.servers[decl.name] = decl.protocol
    return {"server": decl}


def check_connect(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "connect", ("to", "as", "protocol", "transport", "timeout"))
        target = f.text("to", required=True)
        name = f.name("as")
        proto = f.get("protocol", str)
        transport = f.get("transport", str)
        timeout = f.timeout()
        target_mark = f.mark("to")
    else:
        args = _parse_command(ctx, "connect", _words(ctx, "connect", value, mark), mark)
        if len(args.words) > 2:
            raise ctx.error(mark, "connect takes a protocol and a target", "e.g. `connect: echo e1 as c`")
        proto, target = (None, args.words[0]) if len(args.words) == 1 else args.words
        name, transport, timeout, target_mark = args.name, args.transport, None, mark
    given = proto
    if proto is not None:
        _protocol(ctx, proto, mark)
    if target in ctx.servers:
        proto = proto or ctx.servers[target]
    elif not list(references(target)) and ":" not in target and not target.isdigit():
        raise ctx.error(target_mark, f"no server named {target!r}",
                        _did_you_mean(target, sorted(ctx.servers), "declare it under 'lab:' or give HOST:PORT"))
    elif proto is None:
        raise ctx.error(mark, f"which protocol speaks to {target}?", "add 'protocol:'")
    if transport is not None and transport not in ("tcp", "udp"):
        raise ctx.error(mark, f"unknown transport {transport!r}", "use tcp or udp")
    if name is None:
        raise ctx.error(mark, "connect needs 'as': the client's name", "e.g. `connect: {to: e, as: c}`")
    _check_references(ctx, target, target_mark)
    _new_name(ctx, name, mark)
    ctx.clients[name] = proto
    return {"target": target, "name": name, "protocol": given, "speaks": proto, "transport": transport,
            "timeout": timeout}


def check_send(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "send", ("to", "text", "hex", "newline"))
        client = f.name("to", required=True)
        text, hexa = f.text("text"), f.get("hex", str)
        if (text is None) == (hexa is None):
            raise ctx.error(value.mark, "send needs exactly one of 'text' or 'hex'")
        newline = f.get("newline", bool, True)
        to_mark = f.mark("to")
    else:
        words = _words(ctx, "send", value, mark)
        args = _parse_command(ctx, "send", words, mark)
        client, text, hexa = args.client, " ".join(args.text), None
        if args.hex:
            text, hexa = None, " ".join(args.text)
        newline, to_mark = not args.no_newline, mark
    _need_client(ctx, client, to_mark, processes=False)
    if hexa is not None:
        try:
            bytes.fromhex(hexa)
        except ValueError:
            raise ctx.error(mark, f"'hex' needs pairs of hex digits, got {hexa!r}", "e.g. hex: 0d0a") from None
    if text is not None:
        from lab.commands._base import unescape

        try:
            unescape(text)
        except LabError as exc:
            raise ctx.error(mark, exc.message, exc.hint) from None
        _check_references(ctx, text, mark)
    return {"client": client, "text": text, "hex": hexa, "newline": newline}


MATCHERS = ("text", "regex", "code", "equals", "hex", "kind", "length", "fields")


def _regex(ctx: _Context, pattern: str, mark: Mark) -> None:
    # regexes are not interpolated: {2} is a quantifier there
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ctx.error(mark, f"bad regular expression /{pattern}/: {exc}") from None


def _matchers(ctx: _Context, f: _Fields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("text", "equals"):
        if f.has(key):
            out[key] = f.text(key)
            _check_references(ctx, out[key], f.mark(key))
    if f.has("regex"):
        out["regex"] = f.get("regex", str)
        _regex(ctx, out["regex"], f.mark("regex"))
    if f.has("code"):
        out["code"] = f.get("code", int)
    if f.has("hex"):
        out["hex"] = f.get("hex", str)
        try:
            bytes.fromhex(out["hex"])
        except ValueError:
            raise ctx.error(f.mark("hex"), f"'hex' needs pairs of hex digits, got {out['hex']!r}") from None
    if f.has("kind"):
        out["kind"] = f.get("kind", str)
    if f.has("length"):
        out["length"] = f.get("length", int)
    if f.has("fields"):
        fields = f.get("fields", dict)
        for path in fields:
            _field_path(ctx, path, fields.key_marks[path])
            if isinstance(fields[path], str) and fields[path].startswith("/") and fields[path].endswith("/"):
                _regex(ctx, fields[path][1:-1], fields.where(path))
        out["fields"] = dict(fields)
    return out


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def _field_path(ctx: _Context, path: str, mark: Mark) -> None:
    for part in path.split("."):
        if not _PATH_PART.fullmatch(part):
            raise ctx.error(mark, f"bad field path {path!r}", "write name, name.sub or name[0]")


def check_expect(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "expect", ("from", *MATCHERS, "eof", "timeout", "save", "recorded", "recorded_hex"))
        client = f.name("from", required=True)
        _need_client(ctx, client, f.mark("from"), processes=True)
        data: dict[str, Any] = {"client": client, "timeout": f.timeout(), "save": f.name("save")}
        data.update(_matchers(ctx, f))
        if client in ctx.processes:
            extra = sorted(set(data) & {"code", "equals", "hex", "kind", "length", "fields"})
            if extra:
                raise ctx.error(f.mark(extra[0]), f"{extra[0]!r} does not apply to a program's output",
                                "use 'text', 'regex' or 'eof'")
            data["eof"] = f.get("eof", bool, False)
        elif f.has("eof"):
            raise ctx.error(f.mark("eof"), "'eof' applies to a spawned program", "for a client, `wait: {closed: c}`")
        if not set(data) & {*MATCHERS, "eof"} or (data.get("eof") is False and not set(data) & set(MATCHERS)):
            raise ctx.error(value.mark, "expect needs something to match",
                            f"give one of: {', '.join(MATCHERS)}")
        data["recorded"] = f.text("recorded")
        data["recorded_hex"] = f.get("recorded_hex", str)
    else:
        from lab.commands._base import parse_pattern

        words = _words(ctx, "expect", value, mark)
        args = _parse_command(ctx, "expect", words, mark)
        client = args.client
        _need_client(ctx, client, mark, processes=True)
        pattern = " ".join(args.pattern)
        data = {"client": client, "timeout": args.timeout if "-t" in words or "--timeout" in words else None,
                "save": None}
        m = re.fullmatch(r"/(.*)/(i?)", pattern, re.DOTALL)
        if m:
            data["regex"] = ("(?i)" if m.group(2) else "") + m.group(1)
            _regex(ctx, data["regex"], mark)
        elif pattern.isdigit() and client not in ctx.processes:
            data["code"] = int(pattern)
        else:
            try:
                parse_pattern(pattern)
            except LabError as exc:
                raise ctx.error(mark, exc.message, exc.hint) from None
            data["text"] = pattern
            _check_references(ctx, pattern, mark)
    if data.get("save"):
        ctx.saved.add(data["save"])
    return data


def check_call(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "call", ("client", "verb", "args", "kwargs", "save", "timeout", "equals",
                                         "contains", "regex"))
        client = f.name("client", required=True)
        _need_client(ctx, client, f.mark("client"))
        verb = f.get("verb", str, required=True)
        args = list(f.get("args", list, []))
        kwargs = dict(f.get("kwargs", dict, {}))
        verb_mark = f.mark("verb")
        data = {"save": f.name("save"), "timeout": f.timeout()}
        for key in ("equals", "contains"):
            if f.has(key):
                data[key] = f.get(key, (str, int, float, bool, list, dict))
        if f.has("regex"):
            data["regex"] = f.get("regex", str)
            _regex(ctx, data["regex"], f.mark("regex"))
    else:
        from lab.commands.call import split_arguments

        words = _words(ctx, "call", value, mark)
        parsed = _parse_command(ctx, "call", words, mark)
        client, verb, verb_mark = parsed.client, parsed.verb, mark
        _need_client(ctx, client, mark)
        try:
            args, kwargs = split_arguments(parsed.arguments)
        except LabError as exc:
            raise ctx.error(mark, exc.message, exc.hint) from None
        data = {"save": None, "timeout": None}
    proto = ctx.clients.get(client)
    if proto is not None:
        verbs = protocols.get(proto).client.verbs()
        if verb not in verbs:
            raise ctx.error(verb_mark, f"{proto} client has no verb {verb!r}",
                            _did_you_mean(verb, sorted(verbs), f"verbs: {', '.join(sorted(verbs)) or 'none'}"))
        import inspect

        signature = inspect.signature(verbs[verb])
        params = list(signature.parameters.values())[1:]  # without self
        try:
            signature.replace(parameters=params).bind(*args, **kwargs)
        except TypeError as exc:
            usage = ", ".join(str(p).split(":")[0] + ("=…" if p.default is not p.empty else "") for p in params)
            raise ctx.error(verb_mark, f"{verb}: {exc}", f"{verb}({usage})") from None
    _check_references(ctx, args, mark)
    _check_references(ctx, kwargs, mark)
    if data.get("save"):
        ctx.saved.add(data["save"])
    data.update(client=client, verb=verb, args=args, kwargs=kwargs)
    return data


def check_wait(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "wait", ("closed", "seconds", "timeout"))
        if f.has("closed") == f.has("seconds"):
            raise ctx.error(value.mark, "wait needs exactly one of 'closed' or 'seconds'")
        if f.has("seconds"):
            return _seconds(ctx, f.get("seconds", float), f.mark("seconds"))
        client = f.name("closed")
        _need_client(ctx, client, f.mark("closed"))
        return {"seconds": None, "closed": client, "timeout": f.timeout()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds(ctx, float(value), mark)
    args = _parse_command(ctx, "wait", _words(ctx, "wait", value, mark), mark)
    try:
        return _seconds(ctx, float(args.what), mark)
    except ValueError:
        pass
    if not args.closed:
        raise ctx.error(mark, f"wait for what of {args.what!r}?", f"`wait: {args.what} --closed`")
    _need_client(ctx, args.what, mark)
    return {"seconds": None, "closed": args.what, "timeout": args.timeout}


def _seconds(ctx: _Context, seconds: float, mark: Mark) -> dict[str, Any]:
    if not 0 <= seconds <= MAX_TIMEOUT:
        raise ctx.error(mark, f"cannot wait {seconds:g} s", f"give 0 to {MAX_TIMEOUT:g} seconds")
    return {"seconds": seconds, "closed": None, "timeout": None}


def check_stop(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, list):
        names = value
        marks = getattr(value, "marks", [mark] * len(value))
    else:
        names = _words(ctx, "stop", value, mark)
        marks = [mark] * len(names)
    for name, where in zip(names, marks, strict=True):
        if not isinstance(name, str):
            raise ctx.error(where, f"stop takes names, not {_type_name(name)}")
        if name != "all" and name not in ctx.names():
            raise ctx.error(where, f"nothing named {name!r} to stop",
                            _did_you_mean(name, sorted(ctx.names()), "`stop: all` stops everything"))
    return {"names": list(names)}


def check_spawn(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if ctx.safe:
        raise ctx.error(mark, "spawn runs a program, which safe mode refuses",
                        "run without --safe if you trust the file")
    if not isinstance(value, LDict):
        raise ctx.error(mark, f"spawn takes a mapping, not {_type_name(value)}",
                        "e.g. `spawn: {command: nc 127.0.0.1 {e.port}, as: p}`")
    f = _Fields(ctx, value, "spawn", ("command", "as", "timeout"))
    command = f.get("command", (str, list), required=True)
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            raise ctx.error(f.mark("command"), f"cannot split the command: {exc}", "close the quote") from None
    if not command or not all(isinstance(w, (str, int)) for w in command):
        raise ctx.error(f.mark("command"), "'command' must be a program and its arguments")
    command = [str(w) for w in command]
    _check_references(ctx, command, f.mark("command"))
    name = f.name("as", required=True)
    _new_name(ctx, name, f.mark("as"))
    ctx.processes.add(name)
    return {"command": command, "name": name, "timeout": f.timeout()}


def check_sendline(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if not isinstance(value, LDict):
        raise ctx.error(mark, f"sendline takes a mapping, not {_type_name(value)}",
                        "e.g. `sendline: {to: p, text: hi}`")
    f = _Fields(ctx, value, "sendline", ("to", "text", "eof"))
    name = f.name("to", required=True)
    if name not in ctx.processes:
        raise ctx.error(f.mark("to"), f"no spawned program named {name!r}",
                        _did_you_mean(name, sorted(ctx.processes), "start one with `spawn: {command: ..., as: NAME}`"))
    text = f.text("text", "")
    _check_references(ctx, text, f.mark("text"))
    return {"process": name, "text": text, "eof": f.get("eof", bool, False)}


def check_save(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if not isinstance(value, LDict):
        raise ctx.error(mark, f"save takes a mapping, not {_type_name(value)}",
                        "e.g. `save: {name: port, value: '{e.port}'}`")
    f = _Fields(ctx, value, "save", ("name", "value", "regex"))
    name = f.name("name", required=True)
    text = f.text("value", required=True)
    _check_references(ctx, text, f.mark("value"))
    regex = f.get("regex", str)
    if regex is not None:
        _regex(ctx, regex, f.mark("regex"))
    ctx.saved.add(name)
    return {"name": name, "value": text, "regex": regex}


def check_assert(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if not isinstance(value, LDict):
        raise ctx.error(mark, f"assert takes a mapping, not {_type_name(value)}",
                        "e.g. `assert: {value: '{saved.reply}', contains: Alice}`")
    f = _Fields(ctx, value, "assert", ("value", "message", "field", "events", "equals", "contains", "regex",
                                       "count", "not"))
    subjects = [k for k in ("value", "message", "events") if f.has(k)]
    if len(subjects) != 1:
        raise ctx.error(value.mark, "assert needs exactly one of 'value', 'message' or 'events'")
    data: dict[str, Any] = {"subject": subjects[0]}
    if f.has("value"):
        data["value"] = f.text("value")
        _check_references(ctx, data["value"], f.mark("value"))
    if f.has("message"):
        name = f.name("message")
        if name not in ctx.saved:
            raise ctx.error(f.mark("message"), f"no saved message {name!r}",
                            _did_you_mean(name, sorted(ctx.saved), "save one with `expect: {..., save: NAME}`"))
        data["message"] = name
    if f.has("field"):
        if not f.has("message"):
            raise ctx.error(f.mark("field"), "'field' needs 'message'")
        data["field"] = f.get("field", str)
        _field_path(ctx, data["field"], f.mark("field"))
    if f.has("events"):
        events = f.get("events", dict)
        ef = _Fields(ctx, events, "events", ("endpoint", "conn", "direction", "kind", "grep", "protocol"))
        for key in events:
            ef.get(key, str)
        if events.get("direction") not in (None, "in", "out"):
            raise ctx.error(events.where("direction"), "direction is 'in' or 'out'")
        if "endpoint" in events and events["endpoint"] not in ctx.names():
            raise ctx.error(events.where("endpoint"), f"no endpoint named {events['endpoint']!r}",
                            _did_you_mean(events["endpoint"], sorted(ctx.names())))
        data["events"] = dict(events)
    for key in ("equals", "contains"):
        if f.has(key):
            data[key] = f.get(key, (str, int, float, bool, list, dict))
    if f.has("regex"):
        data["regex"] = f.get("regex", str)
        _regex(ctx, data["regex"], f.mark("regex"))
    if f.has("count"):
        data["count"] = f.get("count", int)
        if data["count"] < 0:
            raise ctx.error(f.mark("count"), "'count' cannot be negative")
    data["not"] = f.get("not", bool, False)
    checks = set(data) & {"equals", "contains", "regex", "count"}
    if not checks:
        raise ctx.error(value.mark, "assert needs a check", "give one of: equals, contains, regex, count")
    if data["subject"] == "events" and checks != {"count"}:
        raise ctx.error(value.mark, "'events' is checked with 'count'")
    return data


def check_python(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if ctx.safe:
        raise ctx.error(mark, "python hooks run code, which safe mode refuses",
                        "run without --safe if you trust the file")
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "python", ("function", "args", "save"))
        function = f.get("function", str, required=True)
        args = dict(f.get("args", dict, {}))
        save = f.name("save")
        where = f.mark("function")
    elif isinstance(value, str):
        function, args, save, where = value, {}, None, mark
    else:
        raise ctx.error(mark, f"python takes 'module:function', not {_type_name(value)}")
    if not _FUNCTION.fullmatch(function):
        raise ctx.error(where, f"python hook {function!r} is not module:function",
                        "name an importable function, e.g. mypkg.checks:plan_is_set")
    if save:
        ctx.saved.add(save)
    return {"function": function, "args": args, "save": save}


STEP_KINDS: dict[str, StepCheck] = {
    "serve": check_serve,
    "connect": check_connect,
    "send": check_send,
    "expect": check_expect,
    "call": check_call,
    "wait": check_wait,
    "stop": check_stop,
    "spawn": check_spawn,
    "sendline": check_sendline,
    "save": check_save,
    "assert": check_assert,
    "python": check_python,
}


# -- the file ------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "tags", "timeout", "step_timeout", "lab", "steps")


def _scenario(ctx: _Context, doc: Any, mark: Mark, default_name: str) -> Scenario:
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
