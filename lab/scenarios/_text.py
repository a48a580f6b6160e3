"""Steps as command-language text: what reports show and what the
runner hands to the interpreter.

Tests: tests/scenarios/test_runner.py
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from lab.protocols._base import escape_bytes
from lab.scenarios._model import ServerDecl

__all__ = ["command_words", "describe_matchers", "step_text"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _pattern(data: dict[str, Any]) -> str:
    if "regex" in data:
        return f"/{data['regex']}/"
    if "code" in data:
        return str(data["code"])
    if "text" in data:
        return str(data["text"])
    return ""


def describe_matchers(data: dict[str, Any]) -> str:
    """The expectation in words: ``equals "hi\\r\\n"``, ``/re/``, ..."""
    parts = []
    if "equals" in data:
        parts.append(f"equals {escape_bytes(str(data['equals']).encode('utf-8'))}")
    if "text" in data:
        parts.append(f"contains {escape_bytes(str(data['text']).encode('utf-8'))}")
    if "regex" in data:
        parts.append(f"matches /{data['regex']}/")
    if "code" in data:
        parts.append(f"code {data['code']}")
    if "hex" in data:
        parts.append(f"bytes {escape_bytes(bytes.fromhex(data['hex']))}")
    if "kind" in data:
        parts.append(f"kind {data['kind']}")
    if "length" in data:
        parts.append(f"length {data['length']}")
    for path, want in (data.get("fields") or {}).items():
        parts.append(f"{path} = {want!r}")
    if data.get("eof"):
        parts.append("end of output")
    return ", ".join(parts) or "anything"


def _listener_words(decl: ServerDecl) -> list[str]:
    """What servers and proxies share on the command line: transport,
    capture and the caps."""
    words = [f"--{decl.transport}"] if decl.transport else []
    if decl.capture:
        words += ["--capture", decl.capture]
    if decl.max_connections:
        words += ["--max-connections", str(decl.max_connections)]
    if decl.idle_timeout is not None:
        words += ["--idle-timeout", f"{decl.idle_timeout:g}"]
    if decl.max_per_source is not None:
        words += ["--max-per-source", str(decl.max_per_source)]
    for key in ("line_timeout", "min_rate"):
        value = getattr(decl, key)
        if value is not None:
            words += [f"--{key.replace('_', '-')}", f"{value:g}"]
    if decl.reply_budget is not None:
        words += ["--reply-budget", decl.reply_budget]
    return words


def command_words(kind: str, data: dict[str, Any]) -> list[str] | None:
    """The command-language statement for a step, or None when the step
    is not a command (spawn, assert, ...) or needs more than the command
    language says (an expect on fields)."""
    if kind == "serve":
        decl = data["server"]
        words = ["serve", decl.protocol]
        if decl.port:
            words += ["--port", str(decl.port)]
        if decl.host != "127.0.0.1":
            words += ["--host", decl.host]
        words += _listener_words(decl)
        for key, value in decl.options.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, dict):
                value = [f"{k}={v}" for k, v in value.items()]
            for item in value if isinstance(value, list) else [value]:
                words += [flag, item if isinstance(item, str) else str(item).lower() if isinstance(item, bool)
                          else str(item)]
        return [*words, "as", decl.name]
    if kind == "connect":
        words = ["connect"] + ([data["protocol"]] if data.get("protocol") else []) + [data["target"]]
        if data.get("transport"):
            words.append(f"--{data['transport']}")
        if data.get("timeout"):
            words += ["--timeout", f"{data['timeout']:g}"]
        for key, value in (data.get("options") or {}).items():
            for item in value if isinstance(value, list) else [value]:
                text = str(item).lower() if isinstance(item, bool) else str(item)
                words += ["-o", f"{key}={text}"]
        return [*words, "as", data["name"]]
    if kind == "send":
        if data.get("hex") is not None:
            return ["send", data["client"], "--hex", data["hex"]]
        # a YAML "\r\n" arrives as real control characters: written as escapes
        # they survive the statement splitter and mean the same to `send`
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", data["text"])
        return ["send", data["client"], *([] if data["newline"] else ["-n"]), text]
    if kind == "expect":
        simple = {k for k in data if k in ("text", "regex", "code")}
        richer = any(data.get(k) for k in ("equals", "hex", "kind", "length", "fields", "eof"))
        if len(simple) != 1 or richer:
            return None
        return ["expect", data["client"], _pattern(data)] + (
            ["--timeout", f"{data['timeout']:g}"] if data.get("timeout") else [])
    if kind == "call":
        args = [_word(a) for a in data["args"]] + [f"{k}={_word(v)}" for k, v in data["kwargs"].items()]
        return ["call", data["client"], data["verb"], *args]
    if kind == "wait":
        if data["seconds"] is not None:
            return ["wait", f"{data['seconds']:g}"]
        return ["wait", data["closed"], "--closed"] + (
            ["--timeout", f"{data['timeout']:g}"] if data.get("timeout") else [])
    if kind == "stop":
        return ["stop", *data["names"]]
    return _intercept_words(kind, data)


def _intercept_words(kind: str, data: dict[str, Any]) -> list[str] | None:
    if kind == "proxy":
        decl = data["server"]
        words = ["proxy", decl.protocol, "--to", decl.to]
        if decl.port or decl.host != "127.0.0.1":
            host = f"[{decl.host}]" if ":" in decl.host else decl.host
            words += ["--listen", f"{host}:{decl.port}"]
        words += _listener_words(decl)
        return [*words, "as", decl.name]
    if kind == "intercept":
        if data["off"]:
            return ["intercept", data["on"], "--off"]
        words = ["intercept", data["on"], *([data["filter"]] if data["filter"] else [])]
        if data.get("after"):
            words += ["--timeout", f"{data['after']:g}"]
        if data.get("then"):
            words += ["--then", data["then"]]
        return words
    if kind in ("release", "drop", "edit"):
        words = [kind, *([data["id"]] if data.get("id") else []), *(["--on", data["on"]] if data.get("on") else [])]
        if kind != "edit":
            return words
        if "fields" in data:
            return [*words, *(f"{k}={v}" for k, v in data["fields"].items())]
        if "hex" in data:
            return [*words, "--hex", data["hex"]]
        return [*words, "--raw", _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", data["raw"])]
    if kind == "held":
        if set(data) & {"text", "regex", "code", "equals", "hex", "kind", "length", "fields"}:
            return None
        return ["held", "--wait", str(data["count"]), *(["--on", data["on"]] if data.get("on") else [])]
    if kind == "inject":
        words = ["inject", data["into"], *(["--to", data["to"]] if data.get("to") else [])]
        if data.get("hex") is not None:
            return [*words, "--hex", data["hex"]]
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", data["text"])
        return [*words, *([] if data["newline"] else ["-n"]), text]
    return None


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)


def step_text(kind: str, data: dict[str, Any]) -> str:
    """One line saying what a step does, for reports."""
    words = command_words(kind, data)
    if words is not None:
        return shlex.join(words)
    if kind == "expect":
        return f"expect {data['client']} {describe_matchers(data)}"
    if kind == "spawn":
        return f"spawn {shlex.join(data['command'])} as {data['name']}"
    if kind == "sendline":
        return f"sendline {data['process']} {shlex.quote(data['text'])}"
    if kind == "save":
        return f"save {data['name']} = {data['value']!r}" + (f" /{data['regex']}/" if data.get("regex") else "")
    if kind == "assert":
        subject = {"value": lambda: repr(data["value"]),
                   "message": lambda: data["message"] + (f".{data['field']}" if data.get("field") else ""),
                   "events": lambda: "events " + " ".join(f"{k}={v}" for k, v in data["events"].items())}
        checks = " ".join(f"{k} {data[k]!r}" for k in ("equals", "contains", "regex", "count") if k in data)
        return f"assert {subject[data['subject']]()} {'not ' if data.get('not') else ''}{checks}"
    if kind == "python":
        return f"python {data['function']}"
    if kind == "held":
        on = f" on {data['on']}" if data.get("on") else ""
        return f"held{on}: {describe_matchers(data)}"
    return kind
