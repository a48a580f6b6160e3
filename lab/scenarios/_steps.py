"""The steps of a scenario: one check per kind, each turning what the file
says into normalized data, with errors that point at the offending value.

Tests: tests/scenarios/test_validation.py
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

from lab import protocols
from lab.errors import LabError
from lab.scenarios._loader import LDict, Mark
from lab.scenarios._model import (
    CAP_KEYS,
    MAX_TIMEOUT,
    SERVER_KEYS,
    ServerDecl,
    _check_options,
    _check_references,
    _Context,
    _did_you_mean,
    _Fields,
    _protocol,
    _server,
    _type_name,
    listen_address,
    proxy_target,
    references,
    safe_address,
    safe_options,
)

__all__ = ["MATCHERS", "STEP_KINDS"]

_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")

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


def check_serve(ctx: _Context, value: Any, mark: Mark, *, proxy: bool = False) -> dict[str, Any]:
    if isinstance(value, LDict):
        name = value.get("as")
        body = LDict({k: v for k, v in value.items() if k != "as"})
        body.mark, body.key_marks, body.value_marks = value.mark, value.key_marks, value.value_marks
        if name is None or not isinstance(name, str):
            raise ctx.error(value.mark, "serve needs 'as': the server's name")
        decl = _server(ctx, name, body, value.mark)
        if decl.is_proxy and not proxy:
            raise ctx.error(value.mark, "a server with 'to' is a proxy", "write it as a `proxy:` step")
    else:
        from lab.commands.serve import server_kwargs

        words = _words(ctx, "serve", value, mark)
        args = _parse_command(ctx, "serve", words, mark)
        kwargs = server_kwargs(args)
        name = kwargs.pop("name") or None
        if name is None:
            raise ctx.error(mark, "serve needs a name: end with `as NAME`")
        spec = _protocol(ctx, args.protocol, mark)
        general = {k: kwargs.pop(k) for k in list(kwargs) if k in SERVER_KEYS}
        kwargs = safe_options(ctx, spec, kwargs, lambda _key: mark)
        try:
            spec.resolve_options(kwargs)
        except LabError as exc:
            raise ctx.error(mark, exc.message, exc.hint) from None
        listen_address(ctx, general.get("host", "127.0.0.1"), mark)
        decl = ServerDecl(name=name, protocol=spec.name, mark=mark, port=general.get("port", 0),
                          host=general.get("host", "127.0.0.1"), transport=general.get("transport"),
                          capture=general.get("capture"), options=kwargs,
                          **{key: general.get(key) for key in CAP_KEYS})
    _new_name(ctx, decl.name, mark)
    ctx.servers[decl.name] = decl.protocol
    return {"server": decl}


def check_connect(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "connect", ("to", "as", "protocol", "transport", "timeout", "options"))
        target = f.text("to", required=True)
        name = f.name("as")
        proto = f.get("protocol", str)
        transport = f.get("transport", str)
        timeout = f.timeout()
        target_mark = f.mark("to")
        options = f.get("options", dict, None)
    else:
        args = _parse_command(ctx, "connect", _words(ctx, "connect", value, mark), mark)
        if len(args.words) > 2:
            raise ctx.error(mark, "connect takes a protocol and a target", "e.g. `connect: echo e1 as c`")
        proto, target = (None, args.words[0]) if len(args.words) == 1 else args.words
        name, transport, timeout, target_mark = args.name, args.transport, None, mark
        options = _option_words(ctx, args.options, mark)
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
    safe_address(ctx, target, target_mark)
    checked = _check_options(ctx, protocols.get(proto), options, client=True) if options else {}
    _new_name(ctx, name, mark)
    ctx.clients[name] = proto
    return {"target": target, "name": name, "protocol": given, "speaks": proto, "transport": transport,
            "timeout": timeout, "options": checked}


def _option_words(ctx: _Context, items: list[str], mark: Mark) -> LDict | None:
    """``-o NAME=VALUE`` words as a mapping marked at the statement."""
    if not items:
        return None
    out = LDict()
    out.mark, out.key_marks, out.value_marks = mark, {}, {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ctx.error(mark, f"-o wants NAME=VALUE, not {item!r}", "e.g. `-o terminal=vt100`")
        key = key.replace("-", "_")
        out.key_marks[key] = out.value_marks[key] = mark
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


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
        from lab.commands._base import parse_pattern, unescape

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
                # as at a prompt: escapes in command text mean bytes
                data["text"] = unescape(pattern).decode("utf-8", "replace")
            except LabError as exc:
                raise ctx.error(mark, exc.message, exc.hint) from None
            _check_references(ctx, pattern, mark)
    if data.get("save"):
        ctx.saved.add(data["save"])
    return data


def check_call(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "call", ("client", "verb", "args", "kwargs", "save", "timeout", "equals",
                                         "contains", "regex", "traffic"))
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
        if f.has("traffic"):
            data["traffic"] = _traffic(ctx, f.get("traffic", list))
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


_TRAFFIC_KEYS = ("sent", "sent_hex", "received", "received_hex", "closed")


def _traffic(ctx: _Context, items: Any) -> list[dict[str, Any]]:
    """A call's recorded traffic: one `sent`, `received` (or their `_hex`) or `closed` per item."""
    out = []
    for item, where in zip(items, items.marks, strict=True):
        if not isinstance(item, LDict) or len(item) != 1:
            raise ctx.error(where, "each traffic item is one of: " + ", ".join(_TRAFFIC_KEYS))
        ((key, value),) = item.items()
        f = _Fields(ctx, item, "traffic", _TRAFFIC_KEYS)
        if key == "closed":
            f.get(key, bool)
        elif key.endswith("_hex"):
            try:
                bytes.fromhex(f.get(key, str))
            except ValueError:
                raise ctx.error(item.where(key), f"{key!r} needs pairs of hex digits") from None
        else:
            f.text(key)
        out.append({key: value})
    return out


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


# -- proxies and intercepts ---------------------------------------------------------


def check_proxy(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        if "to" not in value:
            raise ctx.error(value.mark, "proxy needs 'to': the server it relays to",
                            "e.g. `proxy: {protocol: smtp, to: mx, as: px}`")
        return check_serve(ctx, value, mark, proxy=True)
    from lab.commands.proxy import parse_listen

    args = _parse_command(ctx, "proxy", _words(ctx, "proxy", value, mark), mark)
    if args.name is None:
        raise ctx.error(mark, "proxy needs a name: end with `as NAME`")
    try:
        host, port = parse_listen(args.listen)
    except LabError as exc:
        raise ctx.error(mark, exc.message, exc.hint) from None
    spec = _protocol(ctx, args.protocol, mark)
    if args.transport is not None and args.transport not in spec.iter_transports():
        raise ctx.error(mark, f"{spec.name} does not run over {args.transport!r}")
    proxy_target(ctx, args.to, mark)
    listen_address(ctx, host, mark)
    decl = ServerDecl(name=args.name, protocol=spec.name, mark=mark, port=port, host=host,
                      transport=args.transport, capture=args.capture, max_connections=args.max_connections,
                      idle_timeout=args.idle_timeout, to=args.to)
    _new_name(ctx, decl.name, mark)
    ctx.servers[decl.name] = decl.protocol
    return {"server": decl}


def _endpoint(ctx: _Context, name: str, mark: Mark, what: str) -> None:
    if name not in ctx.names():
        raise ctx.error(mark, f"no endpoint named {name!r} {what}",
                        _did_you_mean(name, sorted(ctx.names()), "start it in an earlier step"))


def check_intercept(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    from lab.filtering import parse_filter
    from lab.intercept import DEFAULT_TIMEOUT as DEFAULT_HOLD

    if isinstance(value, LDict):
        f = _Fields(ctx, value, "intercept", ("at", "filter", "after", "then", "off"))
        data = {"on": f.name("at", required=True), "filter": f.text("filter", "") or "",
                "after": f.timeout("after"), "then": f.get("then", str), "off": f.get("off", bool, False)}
        on_mark = f.mark("at")
    else:
        args = _parse_command(ctx, "intercept", _words(ctx, "intercept", value, mark), mark)
        if args.endpoint is None:
            raise ctx.error(mark, "intercept needs an endpoint", "e.g. `intercept: px m:MAIL in`")
        data = {"on": args.endpoint, "filter": " ".join(args.filter),
                "after": None if args.timeout == DEFAULT_HOLD else args.timeout,
                "then": None if args.then == "release" else args.then, "off": args.off}
        on_mark = mark
    _endpoint(ctx, data["on"], on_mark, "to intercept on")
    if data["then"] not in (None, "release", "drop"):
        raise ctx.error(mark, f"unknown 'then' {data['then']!r}", "release or drop")
    if data["off"] and (data["filter"] or data["after"] or data["then"]):
        raise ctx.error(mark, "'off' removes breakpoints: give it alone with 'at'")
    try:
        parse_filter(data["filter"])
    except LabError as exc:
        raise ctx.error(mark, exc.message, exc.hint) from None
    return data


def _choice(ctx: _Context, kind: str, value: Any, mark: Mark, keys: tuple[str, ...]) -> tuple[dict[str, Any],
                                                                                             _Fields | None]:
    """The held message a release, drop or edit acts on: ``id`` or the
    oldest held ``on`` an endpoint (or anywhere)."""
    if not isinstance(value, LDict):
        raise ctx.error(mark, f"{kind} takes a mapping", f"e.g. `{kind}: {{at: px}}`")
    f = _Fields(ctx, value, kind, ("at", "id", "timeout", *keys))
    data: dict[str, Any] = {"on": f.name("at"), "id": f.text("id"), "timeout": f.timeout()}
    if data["on"] is not None:
        _endpoint(ctx, data["on"], f.mark("at"), "holds messages")
    from lab.commands.intercept import HELD_ID

    if data["id"] is not None and data["id"] != "all" and not HELD_ID.fullmatch(data["id"]):
        raise ctx.error(f.mark("id"), f"bad held id {data['id']!r}", "held ids are h1, h2, ... or all")
    return data, f


def check_release(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, str):
        value = _held_words(ctx, "release", value, mark)
    return _choice(ctx, "release", value, mark, ())[0]


def check_drop(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, str):
        value = _held_words(ctx, "drop", value, mark)
    return _choice(ctx, "drop", value, mark, ())[0]


def _held_words(ctx: _Context, kind: str, value: str, mark: Mark) -> LDict:
    """``release: h1`` / ``drop: --on px`` as the mapping form."""
    args = _parse_command(ctx, kind, _words(ctx, kind, value, mark), mark)
    if len(args.ids) > 1:
        raise ctx.error(mark, f"a {kind} step takes one id (or all)")
    out = LDict({"at": args.on, "id": args.ids[0] if args.ids else None})
    out = LDict({k: v for k, v in out.items() if v is not None})
    out.mark, out.key_marks, out.value_marks = mark, {k: mark for k in out}, {k: mark for k in out}
    return out


def check_edit(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, str):
        value = _edit_words(ctx, value, mark)
    data, f = _choice(ctx, "edit", value, mark, ("fields", "raw", "hex"))
    assert f is not None
    given = [k for k in ("fields", "raw", "hex") if f.has(k)]
    if len(given) != 1:
        raise ctx.error(value.mark, "edit needs exactly one of 'fields', 'raw' or 'hex'",
                        "e.g. `edit: {at: px, fields: {arg: FROM:<eve@lab.test>}}`")
    if f.has("fields"):
        fields = f.get("fields", dict)
        if not fields:
            raise ctx.error(f.mark("fields"), "'fields' is empty", "give NAME: VALUE pairs")
        data["fields"] = {str(k): v if isinstance(v, str) else str(v) for k, v in fields.items()}
        for key in data["fields"]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ctx.error(fields.key_marks[key], f"bad field name {key!r}")
    elif f.has("raw"):
        data["raw"] = f.text("raw")
        _check_references(ctx, data["raw"], f.mark("raw"))
    else:
        data["hex"] = f.get("hex", str)
        try:
            bytes.fromhex(data["hex"])
        except ValueError:
            raise ctx.error(f.mark("hex"), f"'hex' needs pairs of hex digits, got {data['hex']!r}") from None
    return data


def _edit_words(ctx: _Context, value: str, mark: Mark) -> LDict:
    """``edit: h1 arg=X`` / ``edit: --on px --raw TEXT`` as the mapping form."""
    from lab.commands.intercept import HELD_ID

    args = _parse_command(ctx, "edit", _words(ctx, "edit", value, mark), mark)
    changes = list(args.changes)
    out = LDict()
    if changes and HELD_ID.fullmatch(changes[0]):
        out["id"] = changes.pop(0)
    if args.on:
        out["at"] = args.on
    if args.raw or args.hex:
        out["hex" if args.hex else "raw"] = " ".join(changes)
    else:
        fields = LDict()
        for change in changes:
            key, sep, val = change.partition("=")
            if not sep or not key:
                raise ctx.error(mark, f"edit wants NAME=VALUE, not {change!r}", "or --raw TEXT")
            fields[key] = val
        fields.mark, fields.key_marks, fields.value_marks = mark, {k: mark for k in fields}, {k: mark for k in fields}
        out["fields"] = fields
    out.mark, out.key_marks, out.value_marks = mark, {k: mark for k in out}, {k: mark for k in out}
    return out


def check_held(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        args = _parse_command(ctx, "held", ["--wait", *_words(ctx, "held", value, mark)], mark)
        data: dict[str, Any] = {"on": args.on, "count": args.wait or 1, "timeout": None, "save": None}
    elif isinstance(value, LDict):
        f = _Fields(ctx, value, "held", ("at", "count", "timeout", "save", *MATCHERS))
        data = {"on": f.name("at"), "count": f.get("count", int, 1), "timeout": f.timeout(), "save": f.name("save")}
        data.update(_matchers(ctx, f))
    else:
        raise ctx.error(mark, f"held takes a mapping, not {_type_name(value)}", "e.g. `held: {at: px, text: MAIL}`")
    if data["on"] is not None:
        _endpoint(ctx, data["on"], mark, "holds messages")
    if data["count"] < 1:
        raise ctx.error(mark, "'count' is at least 1")
    if data.get("save"):
        ctx.saved.add(data["save"])
    return data


def check_inject(ctx: _Context, value: Any, mark: Mark) -> dict[str, Any]:
    if isinstance(value, LDict):
        f = _Fields(ctx, value, "inject", ("into", "to", "text", "hex", "newline"))
        into = f.text("into", required=True)
        text, hexa = f.text("text"), f.get("hex", str)
        if (text is None) == (hexa is None):
            raise ctx.error(value.mark, "inject needs exactly one of 'text' or 'hex'")
        data = {"into": into, "to": f.get("to", str), "text": text, "hex": hexa,
                "newline": f.get("newline", bool, True)}
    else:
        args = _parse_command(ctx, "inject", _words(ctx, "inject", value, mark), mark)
        words = " ".join(args.text)
        data = {"into": args.conn, "to": args.to, "text": None if args.hex else words,
                "hex": words if args.hex else None, "newline": not args.no_newline}
    if data["to"] not in (None, "client", "server"):
        raise ctx.error(mark, f"'to' is client or server, not {data['to']!r}")
    head = data["into"].partition("#")[0]
    _endpoint(ctx, head, mark, "to inject into")
    if data["hex"] is not None:
        try:
            bytes.fromhex(data["hex"])
        except ValueError:
            raise ctx.error(mark, f"'hex' needs pairs of hex digits, got {data['hex']!r}") from None
    else:
        _check_references(ctx, data["text"], mark)
    return data


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
    "proxy": check_proxy,
    "intercept": check_intercept,
    "held": check_held,
    "release": check_release,
    "drop": check_drop,
    "edit": check_edit,
    "inject": check_inject,
}


