"""The recorder: a live session written down as a scenario as it happens.

Commands typed at any front-end become steps; what the lab's clients
receive becomes ``expect`` steps.  Fields a protocol marks volatile
(dates, ids) become patterns, so the recording replays green tomorrow.
Each step is appended with one ``write``: a crash loses at most the step
in progress and leaves a file that loads.

Tests: tests/scenarios/test_recorder.py
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from lab.commands import Result, Statement, observers
from lab.connection import ANSWERING, format_address
from lab.endpoints import Can, Client, EndpointKind, Server
from lab.errors import CommandError
from lab.eventlog import Direction, Event, EventKind
from lab.intercept import DEFAULT_TIMEOUT as DEFAULT_HOLD
from lab.protocols._base import Message, Role
from lab.services import ServiceKey

if TYPE_CHECKING:
    from lab.intercept import Held
    from lab.lab import Lab
    from lab.proxy import Proxy, ProxyConnection

__all__ = ["RECORDER", "Recorder", "expectation", "server_entry"]

logger = logging.getLogger(__name__)

# the recorder writing a lab's session, if one is
RECORDER: ServiceKey[Recorder | None] = ServiceKey("scenarios.recorder", lambda: None)
QUIET_GRACE = 0.2  # seconds a replay waits before checking a silent client stayed silent
MAX_TRAFFIC = 200  # messages of one verb call kept for server replay
MAX_PER_TURN = 50  # replies recorded per client between two commands (chargen never stops)
_SILENT = frozenset({"expect", "ls", "log", "help", "record", "save"})
_DEFAULT_TRANSPORT = "tcp"


def _braces(text: str) -> str:
    """Text safe from interpolation: ``{`` and ``}`` doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def _plain(value: Any) -> Any:
    """A value YAML can write and read back: tuples to lists, others to text."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _readable(raw: bytes) -> str | None:
    """The bytes as text if they are UTF-8 without odd control characters."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any((ord(c) < 0x20 and c not in "\r\n\t") or c == "\x7f" for c in text):
        return None
    return text


def _escape_regex(text: str) -> str:
    return re.escape(text).replace("\\\r", "\\r").replace("\\\n", "\\n").replace("\\\t", "\\t")


def expectation(client: str, msg: Message) -> dict[str, Any]:
    """An ``expect`` step that matches ``msg`` and its like on another run.

    Without volatile fields: the exact bytes.  With them: a regex where the
    volatile values occur in the text, otherwise (some are not in the text,
    or not among the fields at all) the message kind and its steady fields.
    ``recorded`` keeps what was seen, for server replay.
    """
    step: dict[str, Any] = {"from": client}
    text = _readable(msg.raw)
    try:
        fields = msg.fields()
    except Exception:  # a protocol's describer must not stop a recording
        fields = {}
    volatile = [str(fields[f]) for f in sorted(msg.volatile) if f in fields and str(fields[f])]
    # a volatile part the fields do not show (a response's data block) cannot be found in the text
    hidden = any(f not in fields for f in msg.volatile)
    if not msg.volatile:
        if text is not None:
            step["equals"] = _braces(text)
        else:
            step["hex"] = msg.raw.hex()
        return step
    if text is not None and volatile and not hidden and all(v in text for v in volatile):
        parts = re.split("(" + "|".join(re.escape(v) for v in sorted(volatile, key=len, reverse=True)) + ")", text)
        pattern = "".join(
            (r"\d+" if part.isdigit() else ".+?") if i % 2 else _escape_regex(part) for i, part in enumerate(parts)
        )
        step["regex"] = rf"\A{pattern}\Z"
    else:
        step["kind"] = msg.kind
        steady = {k: v for k, v in fields.items()
                  if k not in msg.volatile and isinstance(v, (str, int, bool)) and len(str(v)) <= 200}
        if steady:
            step["fields"] = {k: _braces(v) if isinstance(v, str) else v for k, v in steady.items()}
        elif "length" not in msg.volatile:
            step["length"] = len(msg.raw)
    if text is not None:
        step["recorded"] = _braces(text)
    else:
        step["recorded_hex"] = msg.raw.hex()
    return step


def _payload(args: Any) -> dict[str, Any]:
    """TEXT.../-n/--hex as parsed (``add_payload_args``), as step keys."""
    if args.hex:
        return {"hex": "".join(args.text)}
    step: dict[str, Any] = {"text": _braces(" ".join(args.text))}
    if args.no_newline:
        step["newline"] = False
    return step


def _comment(text: str) -> str:
    return " ".join(text.split())[:200]


def _exact_send(client: str, raw: bytes) -> dict[str, Any]:
    """A ``send`` step for bytes sent outside the command language, exactly."""
    text = _readable(raw)
    if text is None:
        return {"to": client, "hex": raw.hex()}
    # `send` reads backslash escapes: double the backslashes that are data
    return {"to": client, "text": _braces(text.replace("\\", "\\\\")), "newline": False}


def password_env_name(server: str) -> str:
    """The environment variable a lab file names for a server's password."""
    return "NETLAB_" + re.sub(r"[^A-Za-z0-9]", "_", server).upper() + "_PASSWORD"


def secret_env(name: str) -> str:
    """The environment variable a ``{secret.NAME}`` placeholder is read from."""
    return "NETLAB_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def secrets_left_out(server: Server) -> list[str]:
    """What :func:`server_entry` leaves out or replaces of a server's
    secrets, as comment lines saying how to supply them."""
    if server.lab.keep_secrets:
        return []
    given = server.given_options
    notes = []
    if given.get("password") is not None and given.get("password_file") is None:
        notes.append(f"# {server.name}: the password is read from ${password_env_name(server.name)}"
                     " (set it, or use password_file:)")
    for name in _account_options(server):
        if given.get(name):
            notes.append(f"# {server.name}: accounts left out (they hold passwords): add"
                         f" `{name}: [NAME=PASSWORD]` under its options")
    return notes


def _account_options(server: Server) -> list[str]:
    """The server's options whose values hold passwords (``NAME=PASSWORD``)."""
    return [opt.name for opt in server.spec.options.declared() if "PASSWORD" in (opt.metavar or "")]


def server_entry(server: Server, *, keep_port: bool = False) -> dict[str, Any]:
    """A server as a ``lab:`` entry (protocol, options as given).  Unless
    the lab keeps secrets, no password is written: a console's is read from
    its ``password_file`` or an environment variable, accounts are left
    out (:func:`secrets_left_out` says so)."""
    entry: dict[str, Any] = {"protocol": server.spec.name}
    if keep_port:
        entry["port"] = server.port
    if server.host != "127.0.0.1":
        entry["host"] = server.host
    if server.transport.value != _DEFAULT_TRANSPORT or (len(server.spec.transports) == 1 \
            and server.spec.transports[0].value != _DEFAULT_TRANSPORT):
        entry["transport"] = server.transport.value
    options = {k: _plain(v) for k, v in server.given_options.items() if v is not None}
    if not server.lab.keep_secrets:
        if options.pop("password", None) is not None and "password_file" not in options:
            options["password_env"] = password_env_name(server.name)
        for name in _account_options(server):
            options.pop(name, None)
    if options:
        entry["options"] = options
    return entry


def proxy_entry(proxy: Proxy) -> dict[str, Any]:
    """A proxy as a ``lab:`` entry: its protocol and the server it relays
    to (by name when the lab runs it)."""
    host, port = proxy.target
    server = next((s for s in proxy.lab.servers if s.port == port and s.transport is proxy.transport
                   and s.host in (host, "0.0.0.0", "::")), None)
    entry: dict[str, Any] = {"protocol": proxy.spec.name,
                             "to": server.name if server is not None else format_address(proxy.target)}
    if proxy.host != "127.0.0.1":
        entry["host"] = proxy.host
    if len(proxy.spec.transports) > 1 and proxy.transport.value != _DEFAULT_TRANSPORT:
        entry["transport"] = proxy.transport.value
    return entry


def _dump(item: Any, flow: bool | None = None) -> str:
    return yaml.safe_dump(item, default_flow_style=flow, sort_keys=False, allow_unicode=True, width=100)


def step_yaml(kind: str, value: Any) -> str:
    """One list item ``- kind: value``, leaves in flow style."""
    text = yaml.safe_dump({kind: value}, default_flow_style=True, sort_keys=False, allow_unicode=True,
                          width=1_000_000).strip()
    return "- " + text[1:-1] + "\n"  # {kind: value} without its braces


class Recorder:
    """Writes one lab's session to ``path`` as a scenario, step by step.

    :meth:`start` writes the header and the servers already running;
    afterwards every command run through an :class:`~lab.commands.Interpreter`
    on this lab, and every message its clients receive, is appended.
    """

    def __init__(self, lab: Lab, path: str | os.PathLike[str], *, name: str | None = None,
                 description: str | None = None) -> None:
        self.lab = lab
        self.path = Path(path)
        self.name = name or self.path.stem
        self.description = description or "A recorded session."
        self.steps = 0
        self._fd: int | None = None
        self._busy: set[str] = set()  # clients inside a verb: their replies belong to it
        self._stopping: set[str] = set()
        self._turn: dict[str, int] = {}  # replies recorded per client since the last command
        self._unsubscribe: Callable[[], None] | None = None
        self._call_volatile: dict[str, bool] = {}
        self._traffic: dict[str, list[dict[str, Any]]] = {}  # what a verb sent and got, for server replay
        self._declared: set[str] = set()  # servers the file starts, so far
        self._quiet: dict[str, bool] = {}  # clients recorded so far: True while nothing came back
        self._last_active: dict[str, float] = {}  # when each client last opened or sent (monotonic)
        self._running = False  # a command is running: its replies follow its step
        self._pending: list[Event] = []
        self._oldest: dict[str, str] = {}  # endpoint -> its oldest held id, as a command starts
        self._relayed: dict[str, str] = {}  # proxied connection -> the client it is recorded as
        self._relay_names: set[str] = set()
        self._relay_conns: dict[str, ProxyConnection] = {}
        self._opened: dict[str, ProxyConnection] = {}  # proxied, not yet known to be a stranger
        self._secrets: dict[str, str] = {}  # secret seen on the wire -> its placeholder
        self._explained: set[str] = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self, *, overwrite: bool = False) -> None:
        """Create the file (refusing to replace one unless ``overwrite``)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except FileExistsError:
            raise CommandError(f"{self.path} exists", hint="pick another name, or `record start FILE --force`") \
                from None
        except OSError as exc:
            raise CommandError(f"cannot write {self.path}: {exc.strerror}") from None
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lab = {s.name: server_entry(s) for s in self.lab.servers}
        lab.update({p.name: proxy_entry(cast("Proxy", p)) for p in self.lab.of_kind(EndpointKind.PROXY)})
        self._declared.update(lab)
        head = f"# Recorded with netlab on {when}; replay with `netlab run {self.path.name}`.\n"
        head += _dump({"name": self.name, "description": self.description}, flow=False)
        head += _dump({"lab": lab}) if lab else "lab: {}\n"
        self._write(head + "steps:\n")
        for client in self.lab.clients:  # already connected: the replay connects them first
            if not client.background:
                self._connect_step(client)
        self._unsubscribe = self.lab.log.subscribe(self._on_event)
        observers(self.lab).append(self)

    def stop(self) -> None:
        """Stop recording and close the file."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        found = observers(self.lab)
        if self in found:
            found.remove(self)
        self._flush_pending()
        self._note_skipped()
        now = time.monotonic()
        quiet = []
        for name, silent in self._quiet.items():
            if silent and now - self._last_active.get(name, 0.0) >= QUIET_GRACE:
                quiet.append(name)
            elif silent:
                self._write(f"# nothing came back to {name}, but too soon after it spoke to call it silence\n")
        if quiet:
            # silence was observed too: a server that starts answering is a change
            self._write(f"# nothing came back to {', '.join(quiet)}: after a moment, check it stays so\n")
            self._step("wait", QUIET_GRACE)
        for name in quiet:
            self._step("assert", {"events": {"endpoint": name, "direction": "in"}, "count": 0})
        if self._fd is not None:
            self._write(f"# end of recording: {self.steps} steps\n")
            os.close(self._fd)
            self._fd = None

    @property
    def active(self) -> bool:
        return self._fd is not None

    def _write(self, text: str) -> None:
        if self._fd is None:
            return
        if self._secrets and not self.lab.keep_secrets:
            text = self._scrub(text)
        data = text.encode("utf-8")
        while data:  # one write in practice; a short write finishes the same step
            written = os.write(self._fd, data)
            data = data[written:]

    def _learn(self, event: Event) -> None:
        """Note the secrets an event carries, so no step writes them."""
        raw = event.raw
        assert raw is not None and event.secret
        for start, end in event.secret:
            secret = raw[start:end].decode("utf-8", "replace")
            if secret and secret not in self._secrets:
                self._secrets[secret] = "{secret.s" + str(len(self._secrets) + 1) + "}"

    def _scrub(self, text: str) -> str:
        """``text`` with each secret seen replaced by its placeholder, after
        a comment saying what each placeholder used the first time is."""
        text = self._hide(text)
        notes = ""
        for name in self._secrets.values():
            if name in text and name not in self._explained:
                self._explained.add(name)
                env = secret_env(name.strip("{}").partition(".")[2])
                notes += (f"# {name} stands for a secret (a password sent in cleartext) left out of this"
                          f" file: `netlab run` takes it from ${env} (or record with --keep-secrets)\n")
        return notes + text

    def _hide(self, value: Any) -> Any:
        """``value`` with each secret seen replaced by its placeholder."""
        if isinstance(value, str):
            for secret in sorted(self._secrets, key=len, reverse=True):
                value = value.replace(secret, self._secrets[secret])
            return value
        if isinstance(value, list):
            return [self._hide(v) for v in value]
        if isinstance(value, dict):
            return {k: self._hide(v) for k, v in value.items()}
        return value

    def _step(self, kind: str, value: Any) -> None:
        if self._secrets and not self.lab.keep_secrets:
            value = self._hide(value)  # before YAML quotes it: a placeholder has braces
        self._write(step_yaml(kind, value))
        self.steps += 1

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        self._running = False
        for event in pending:
            self._on_event(event)

    # -- commands ----------------------------------------------------------

    def started(self, stmt: Statement, args: Any) -> None:
        kind = stmt.words[0]
        self._flush_pending()  # the previous command failed: keep what arrived
        self._note_skipped()
        self._running = kind not in _SILENT and kind != "wait"
        if kind == "call":
            self._busy.add(args.client)
            self._call_volatile[args.client] = False
            self._traffic[args.client] = []
        elif kind == "stop":
            names = [c.name for c in self.lab.clients] if "all" in args.names else args.names
            self._stopping.update(names)
        elif kind in ("release", "drop", "edit"):
            self._oldest = {}
            for held in self.lab.intercepts.held():
                self._oldest.setdefault(held.endpoint, held.id)

    def finished(self, stmt: Statement, args: Any, result: Result) -> None:
        kind = stmt.words[0]
        handler = getattr(self, f"_record_{kind}", None)
        if handler is not None:
            handler(args, result)
        elif kind not in _SILENT:
            self._write(f"# not recorded: {stmt.text}\n")
        self._flush_pending()

    def _record_serve(self, args: Any, result: Result) -> None:
        self._serve_step(result.value)

    def _serve_step(self, server: Server) -> None:
        self._declared.add(server.name)
        for note in secrets_left_out(server):
            self._write(note + "\n")
        self._step("serve", {"as": server.name, **server_entry(server)})

    def _declare(self, endpoint: Any) -> None:
        if endpoint.kind is EndpointKind.PROXY:
            self._declared.add(endpoint.name)
            self._step("proxy", {"as": endpoint.name, **proxy_entry(endpoint)})
        else:
            self._serve_step(endpoint)

    def _record_connect(self, args: Any, result: Result) -> None:
        self._connect_step(result.value, args.words[-1])

    def _connect_step(self, client: Client, target: str | None = None) -> None:
        step: dict[str, Any] = {}
        found = self.lab.endpoints.get(target) if target else None
        server = cast(Server, found) if found is not None and found.can(Can.LISTEN) else None
        if server is None:
            # an address: name the lab server (or proxy) that listens there, if one does
            port = client.target[1]
            server = next((cast(Server, e) for e in self.lab.endpoints.values() if e.can(Can.LISTEN)
                           and e.listen_address and e.listen_address[1] == port
                           and e.transport is client.transport), None)
        if server is not None:
            if server.name not in self._declared:  # started from Python while recording
                self._declare(server)
            step["to"] = server.name
            if server.spec.name != client.spec.name:
                step["protocol"] = client.spec.name
        else:
            step["to"] = f"{client.target[0]}:{client.target[1]}"
            step["protocol"] = client.spec.name
        if client.transport.value != _DEFAULT_TRANSPORT and (server is None
                                                            or server.transport is not client.transport):
            step["transport"] = client.transport.value
        if client.given_options:
            step["options"] = dict(client.given_options)
            # a client's own password option (SSH's) is a secret like one seen on the wire: a placeholder
            for opt in client.spec.client_options.declared():
                value = client.given_options.get(opt.name)
                if "SECRET" in (opt.metavar or "") and isinstance(value, str) and value not in self._secrets:
                    self._secrets[value] = "{secret.s" + str(len(self._secrets) + 1) + "}"
        step["as"] = client.name
        self._turn[client.name] = 0
        if client.can(Can.SEND):  # a library-owned client's traffic is its verbs': no silence to check
            self._quiet.setdefault(client.name, True)
        self._step("connect", step)

    def _record_send(self, args: Any, result: Result) -> None:
        self._step("send", {"to": args.client, **_payload(args)})

    def _record_call(self, args: Any, result: Result) -> None:
        from lab.commands.call import split_arguments

        self._busy.discard(args.client)
        positional, keywords = split_arguments(args.arguments)
        step: dict[str, Any] = {"client": args.client, "verb": args.verb}
        if positional:
            step["args"] = _plain(positional)
        if keywords:
            step["kwargs"] = _plain(keywords)
        value = result.value
        if not self._call_volatile.pop(args.client, False) and (
                isinstance(value, (str, int, float, bool, bytes)) or value is None):
            step["equals"] = _plain(value)
        traffic = self._traffic.pop(args.client, [])
        if traffic:
            step["traffic"] = traffic
        self._step("call", step)

    def _record_proxy(self, args: Any, result: Result) -> None:
        proxy = result.value
        self._declared.add(proxy.name)
        self._step("proxy", {"as": proxy.name, **proxy_entry(proxy)})

    def _record_intercept(self, args: Any, result: Result) -> None:
        if args.endpoint is None:
            return  # a listing
        if args.off:
            self._step("intercept", {"at": args.endpoint, "off": True})
            return
        rule = result.value
        step: dict[str, Any] = {"at": args.endpoint, "filter": rule.text}
        if rule.timeout != DEFAULT_HOLD:
            step["after"] = rule.timeout
        if rule.then.value != "release":
            step["then"] = rule.then.value
        self._step("intercept", step)

    def _record_held(self, args: Any, result: Result) -> None:
        if args.wait:  # a wait is a point the replay must reach too
            self._step("held", {**({"at": args.on} if args.on else {}), "count": args.wait})

    def _which(self, held: Held) -> dict[str, Any]:
        """The oldest held on its endpoint is named by the endpoint (ids
        need not repeat in a replay); another by its id."""
        if self._oldest.get(held.endpoint) in (None, held.id):  # None: held while the command waited
            return {"at": held.endpoint}
        return {"id": held.id}

    def _record_release(self, args: Any, result: Result) -> None:
        self._record_choice("release", result.value)

    def _record_drop(self, args: Any, result: Result) -> None:
        self._record_choice("drop", result.value)

    def _record_choice(self, kind: str, done: list[Held]) -> None:
        for held in done:
            self._step(kind, self._which(held))
            self._oldest.pop(held.endpoint, None)
            rest = [h for h in self.lab.intercepts.held() if h.endpoint == held.endpoint]
            if rest:
                self._oldest[held.endpoint] = rest[0].id

    def _record_edit(self, args: Any, result: Result) -> None:
        held = self.lab.intercepts.last_taken
        if held is None:
            return
        step = self._which(held)
        changes = [c for c in args.changes if c != held.id]
        if args.raw or args.hex:
            raw = result.value.raw
            text = _readable(raw)
            if text is None:
                step["hex"] = raw.hex()
            else:
                step["raw"] = _braces(text)
        else:
            step["fields"] = dict(c.partition("=")[::2] for c in changes)
        self._step("edit", step)

    def _record_inject(self, args: Any, result: Result) -> None:
        endpoint = args.conn.partition("#")[0]
        step: dict[str, Any] = {"into": endpoint}
        if args.to:
            step["to"] = args.to
        self._step("inject", {**step, **_payload(args)})

    def _record_wait(self, args: Any, result: Result) -> None:
        if isinstance(result.value, (int, float)):
            self._step("wait", result.value)
        # a wait for a close is recorded when the close is seen

    def _record_stop(self, args: Any, result: Result) -> None:
        self._stopping.clear()
        self._step("stop", list(result.value))

    # -- traffic -------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.secret and event.raw is not None:
            self._learn(event)
        endpoint = self.lab.endpoints.get(event.endpoint)
        if endpoint is not None and endpoint.kind is EndpointKind.PROXY:
            self._relayed_event(cast("Proxy", endpoint), event)
            return
        if endpoint is None or not endpoint.can(Can.SEND) or endpoint.background:
            return  # not a client, or the demo's: a recording holds what the user did
        name = endpoint.name
        if event.conn != name and event.conn.startswith(name + "."):
            return  # a connection of the client's own (an FTP transfer): the verb that opened it stands for it
        if event.kind is EventKind.OPEN or event.direction is Direction.OUT:
            self._last_active[name] = event.mono
        if name in self._busy:  # a verb's messages are the verb's business
            if event.kind is EventKind.MESSAGE and event.direction is Direction.IN:
                self._quiet[name] = False
            self._verb_traffic(name, event)
            return
        if self._running:
            # replies follow the command's step; what it sends is the step itself
            if event.direction is Direction.IN or event.kind is EventKind.CLOSE:
                self._pending.append(event)
            return
        if name not in self._quiet:
            self._connect_step(cast(Client, endpoint))  # made from Python, not the command language
        if event.kind is EventKind.MESSAGE and event.direction is Direction.OUT:
            if ANSWERING.get():
                self._write(f"# {name} answered by itself: {_comment(event.summary)}\n")
            elif event.raw is not None:
                self._step("send", _exact_send(name, event.raw))
            return
        if event.direction is not Direction.IN and event.kind is not EventKind.CLOSE:
            return
        if event.kind is EventKind.MESSAGE:
            self._quiet[name] = False
            count = self._turn.get(name, 0) + 1
            self._turn[name] = count
            if count > MAX_PER_TURN:
                return
            if event.message is None:
                self._write(f"# {name} received {event.summary} (not captured in full)\n")
                return
            if event.message.keepalive:  # on the server's clock: a replay runs faster or slower
                self._write(f"# {name} received a keep-alive: {_comment(event.message.summary())}\n")
                return
            self._step("expect", expectation(name, event.message))
        elif event.kind is EventKind.CLOSE and name not in self._stopping:
            self._note_skipped()
            self._step("wait", {"closed": name})

    # -- proxied connections -------------------------------------------------

    def _relayed_event(self, proxy: Proxy, event: Event) -> None:
        """A client netlab did not start, talking through a proxy: recorded
        as a lab client connecting to the proxy, sending what that client
        sent and expecting what the server answered."""
        if event.kind is EventKind.OPEN:
            conn = proxy.connections.get(event.conn)
            if conn is not None:
                self._opened[event.conn] = conn
            return
        conn = self._opened.pop(event.conn, None)
        # decided at its first traffic: by then a lab client's own end is known
        if conn is not None and not self._from_lab(conn):
            if proxy.name not in self._declared:
                self._declare(proxy)
            new = self._relay_name(proxy)
            self._relayed[event.conn] = new
            self._relay_conns[event.conn] = conn
            self._turn[new] = 0
            self._step("connect", {"to": proxy.name, "as": new})
        name = self._relayed.get(event.conn)
        if name is None:
            return
        if event.kind is EventKind.MESSAGE and event.direction is Direction.IN:
            self._turn[name] = 0
            if event.raw is None:
                self._write(f"# {name} sent {_comment(event.summary)} (not captured in full)\n")
            else:
                self._step("send", _exact_send(name, event.raw))
        elif event.kind is EventKind.MESSAGE and event.direction is Direction.OUT:
            count = self._turn[name] = self._turn.get(name, 0) + 1
            if count > MAX_PER_TURN:
                return
            if event.message is None or event.message.keepalive:
                self._write(f"# {name} received {_comment(event.summary)}\n")
            else:
                self._step("expect", expectation(name, event.message))
        elif event.kind is EventKind.CLOSE:
            del self._relayed[event.conn]
            conn = self._relay_conns.pop(event.conn)
            if conn.ended_by is Role.CLIENT:
                self._step("stop", [name])
            else:
                self._step("wait", {"closed": name})

    def _from_lab(self, conn: ProxyConnection) -> bool:
        """Is the proxied client one of the lab's own?"""
        return any(tuple(c.conn.local) == tuple(conn.peer) for c in self.lab.clients)

    def _relay_name(self, proxy: Proxy) -> str:
        stem = proxy.name[:26]
        for n in itertools.count(1):
            name = f"{stem}-{n}"
            if name not in self._relay_names and name not in self.lab.endpoints:
                self._relay_names.add(name)
                return name
        raise AssertionError("unreachable")

    def _verb_traffic(self, name: str, event: Event) -> None:
        """Keep what a verb sends and receives on the call step, so server
        replay can answer a client that does the same."""
        traffic = self._traffic.setdefault(name, [])
        if event.kind is EventKind.CLOSE and event.direction is Direction.NONE:
            if name not in self._stopping:
                traffic.append({"closed": True})
            return
        if event.kind is not EventKind.MESSAGE or event.raw is None or len(traffic) >= MAX_TRAFFIC:
            return
        if event.direction is Direction.IN and event.message is not None and event.message.volatile:
            self._call_volatile[name] = True
        way = "received" if event.direction is Direction.IN else "sent"
        text = _readable(event.raw)
        traffic.append({way: text} if text is not None else {f"{way}_hex": event.raw.hex()})

    def _note_skipped(self) -> None:
        for name, count in self._turn.items():
            if count > MAX_PER_TURN:
                self._write(f"# {count - MAX_PER_TURN} more replies to {name} not recorded\n")
            self._turn[name] = 0

    def status(self) -> str:
        return f"recording to {self.path}: {self.steps} steps so far"
