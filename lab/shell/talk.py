"""``netlab talk PROTO HOST:PORT``: type protocol lines, see decoded replies.

Like telnet, but it knows the protocol: what you type is sent with the
protocol's line ending (``ProtocolSpec.line_ending``), replies are decoded
by the protocol's codec and printed as they arrive (above the prompt, which
stays intact), and Tab completes the protocol's verbs (from its client
class, :meth:`ClientVerbs.verbs`) and the slash commands.  Any registered
protocol works, plugins included.

Slash commands: ``/hex`` toggles a hex dump of each reply; ``/raw``
toggles raw mode (escapes such as ``\\r\\n`` and ``\\x00`` are decoded,
no line ending is added, replies show as bytes); ``/call VERB ARGS``
runs one of the client's verbs (``/call query alice verbose=yes``);
``/reconnect``; ``/help``; ``/quit``.  Any other line starting with ``/`` (finger's
``/W``) is sent as typed; ``//`` sends a line starting with ``/``.

Tests: tests/shell/test_netlab_talk.py
"""

from __future__ import annotations

import asyncio
import inspect
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.patch_stdout import patch_stdout

from lab import protocols
from lab.commands import unescape
from lab.connection import format_exception
from lab.endpoints import Can, Client
from lab.errors import ConnectionClosed, LabError
from lab.eventlog import Event, EventKind
from lab.lab import Lab, parse_address
from lab.protocols._base import Message, Transport, escape_bytes
from lab.protocols._spec import ProtocolSpec
from lab.shell._settle import settled, unwrap
from lab.shell.console import open_history

__all__ = ["SLASH_COMMANDS", "Talk", "TalkCompleter", "hexdump", "run_talk", "verb_arguments", "wire_verbs"]

SLASH_COMMANDS = {
    "/hex": "toggle a hex dump of each reply",
    "/raw": "toggle raw mode: escapes decoded, no line ending added, replies shown as bytes",
    "/reconnect": "close and open the connection again",
    "/call": "run one of the client's verbs: /call VERB [ARG...] [NAME=VALUE...]",
    "/help": "this list",
    "/quit": "leave (Ctrl-D too)",
}
MAX_LINES_PER_BURST = 500
CLIENT_NAME = "talk"


def hexdump(data: bytes, width: int = 16) -> list[str]:
    """``0000  68 69 0d 0a  |hi..|`` lines."""
    out = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        out.append(f"{offset:04x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return out


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(value: str, like: Any) -> Any:
    """A typed word as the kind of value the parameter's default is."""
    if isinstance(like, bool):
        if value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{value!r} is not true or false")
    if isinstance(like, (int, float)):
        try:
            return type(like)(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a {type(like).__name__}") from None
    return value


def describe_verb(name: str, fn: Callable[..., Any]) -> str:
    """``query(user='', *, verbose=False, ...)``: a verb as a user calls it."""
    sig = inspect.signature(fn)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values() if p.name != "self"]
    return f"{name}{sig.replace(parameters=params, return_annotation=inspect.Signature.empty)}"


def verb_arguments(fn: Callable[..., Any], words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Typed words -> arguments for a verb: ``NAME=VALUE`` are keywords,
    the rest positional; values take the type of the parameter's default."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    by_name = {p.name: p for p in params}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if eq and name in by_name:
            kwargs[name] = _convert(value, by_name[name].default)
        elif len(args) < len(positional):
            args.append(_convert(word, positional[len(args)].default))
        else:
            raise ValueError(f"too many arguments: {describe_verb(fn.__name__, fn)}")
    return args, kwargs


def wire_verbs(spec: ProtocolSpec) -> list[str]:
    """The protocol's verbs as a user types them on the wire: the client
    class's one-word verbs in capitals (``ehlo`` -> ``EHLO``)."""
    words = {name.rstrip("_") for name in spec.client.verbs()}
    return sorted(w.upper() for w in words if w and "_" not in w)


class TalkCompleter(Completer):
    """Slash commands after ``/``; the protocol's verbs as the first word."""

    def __init__(self, spec: ProtocolSpec) -> None:
        self.verbs = wire_verbs(spec)
        self.methods = sorted(spec.client.verbs())

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("/call ") and text.count(" ") == 1:
            word = text[len("/call "):]
            for name in self.methods:
                if name.startswith(word):
                    yield Completion(name, start_position=-len(word))
            return
        if " " in text:
            return
        if text.startswith("/"):
            candidates: Iterable[str] = SLASH_COMMANDS
        else:
            candidates = [v for v in self.verbs if v.startswith(text.upper())]
            if text.islower():
                candidates = [v.lower() for v in candidates]
        for word in candidates:
            if word.startswith(text):
                yield Completion(word, start_position=-len(text))


class Talk:
    """One interactive conversation with a server."""

    def __init__(self, lab: Lab, spec: ProtocolSpec, target: tuple[str, int], *,
                 transport: Transport = Transport.TCP, show_hex: bool = False, raw: bool = False,
                 timeout: float = 10.0, options: dict[str, str] | None = None) -> None:
        self.lab = lab
        self.spec = spec
        self.target = target
        self.transport = transport
        self.show_hex = show_hex
        self.raw = raw
        self.timeout = timeout
        self.options = options or {}  # client options, as `connect ... -o NAME=VALUE`
        self.client: Client | None = None
        self._lines: list[str] = []
        self._skipped = 0
        self._leaving = False
        self._reader: asyncio.Task[None] | None = None  # touched on the reactor thread only
        self._unsubscribe = lab.log.subscribe(self._on_event)

    # -- output (reactor thread) -------------------------------------------

    def say(self, *lines: str) -> None:
        """Queue lines for the terminal; one write per burst."""
        room = MAX_LINES_PER_BURST - len(self._lines)
        self._skipped += max(0, len(lines) - room)
        first = not self._lines
        self._lines += lines[: max(0, room)]
        if first and (self._lines or self._skipped):
            self.lab.reactor.call_soon(self.flush)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if self._skipped:
            lines.append(f"-- {self._skipped} more lines not shown")
            self._skipped = 0
        if lines:
            try:
                sys.stdout.write("\n".join(lines) + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass

    def render(self, msg: Message) -> list[str]:
        lines = [f"<- {escape_bytes(msg.raw, 2000) if self.raw else msg.summary()}"]
        if self.show_hex:
            lines += ["   " + row for row in hexdump(msg.raw)]
        return lines

    def _on_event(self, event: Event) -> None:
        if event.kind is EventKind.ERROR and event.endpoint == CLIENT_NAME:
            self.say(f"!! {event.summary}")

    async def _read(self, client: Client) -> None:
        conn = client.conn
        while True:
            try:
                msg = await conn.receive(None)
            except ConnectionClosed:
                if not self._leaving:
                    reason = conn.close_reason if conn.close_reason not in ("", "closed") else "by the server"
                    self.say(f"-- connection closed ({reason}); /reconnect or /quit")
                return
            self.say(*self.render(msg))

    # -- control (main thread) ---------------------------------------------

    async def call(self, text: str) -> None:
        """``VERB [ARG...] [NAME=VALUE...]``: run a client verb and print
        what it returns.  The reply reader pauses meanwhile, since the verb
        reads the replies itself."""
        client = self.client
        verbs = self.spec.client.verbs()
        try:
            words = shlex.split(text)
        except ValueError as exc:
            print(f"!! {exc}")
            return
        if not words or words[0] not in verbs:
            print(f"-- verbs of {self.spec.name}: " + (", ".join(
                describe_verb(name, fn) for name, fn in sorted(verbs.items())) or "none"))
            return
        try:
            args, kwargs = verb_arguments(verbs[words[0]], words[1:])
        except ValueError as exc:
            print(f"!! {exc}")
            return
        if client is None or client.conn.state.value != "open":
            print("-- not connected: /reconnect or /quit")
            return
        verb = getattr(client.verbs, words[0])
        work = self.lab.reactor.submit(self._run_verb(client, verb, args, kwargs))
        try:
            result = unwrap(await asyncio.wrap_future(work))
        except LabError as exc:
            print(f"!! {exc}")
        except Exception as exc:
            print(f"!! {words[0]} raised {format_exception(exc)}")
        else:
            text_result = result if isinstance(result, str) else repr(result)
            print("=> " + text_result.replace("\n", "\n   "))

    async def _run_verb(self, client: Client, verb: Callable[..., Awaitable[Any]], args: list[Any],
                        kwargs: dict[str, Any]) -> tuple[Any, Exception | None]:
        """On the reactor: stop the reply reader, run the verb (it reads the
        replies itself), then read again, also when Ctrl-C cancelled it.
        One task does all three, so two readers never wait at once."""
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait([reader])
        try:
            # a TypeError for missing arguments surfaces in here, as an outcome
            return await settled(lambda: verb(*args, **kwargs))
        finally:
            self._start_reader(client)

    def _start_reader(self, client: Client) -> None:
        """Print replies as they arrive (reactor thread)."""
        self._reader = self.lab.loop.create_task(self._read(client))

    async def connect(self) -> None:
        if CLIENT_NAME in self.lab:
            await self.lab.astop(CLIENT_NAME)
        self.client = await self.lab.aconnect(self.spec.name, self.target, name=CLIENT_NAME,
                                              transport=self.transport, timeout=self.timeout,
                                              options=self.options)
        # queued on the reactor before the reader, so it prints before any greeting
        self.lab.reactor.call_soon(self.say, f"-- connected to {self.client.address} ({self.spec.name}, "
                                   f"{self.spec.rfc}); /help lists commands, Tab completes")
        if not self.client.can(Can.SEND):
            # a library owns the socket (SSH): lines go to the verbs' talk_line, replies come back from it
            if "talk_open" in self.spec.client.verbs():
                await self._talk_verb("talk_open")
            return
        self.lab.reactor.call_soon(self._start_reader, self.client)

    async def _talk_verb(self, verb: str, *args: str) -> None:
        assert self.client is not None
        try:
            out = await getattr(self.client, "a" + verb)(*args)
        except LabError as exc:
            print(f"!! {exc}")
            return
        if out:
            self.flush()  # what the log said first (the connection line) prints first
            print(str(out).rstrip("\n"))

    def encode(self, text: str) -> bytes:
        """What a typed line puts on the wire."""
        if self.raw:
            return unescape(text)
        data = text.encode("utf-8")
        if self.transport is Transport.TCP:
            data += self.spec.line_ending
        return data

    async def handle(self, text: str) -> bool:
        """Act on one typed line; False to leave."""
        word = text.strip()
        if word in SLASH_COMMANDS:
            return await self._slash(word)
        if word.startswith("/call "):
            await self.call(word[len("/call "):])
            return True
        if text.startswith("//"):
            text = text[1:]
        if self.client is None or self.client.conn.state.value != "open":
            print("-- not connected: /reconnect or /quit")
            return True
        if not self.client.can(Can.SEND):
            if "talk_line" in self.spec.client.verbs():
                await self._talk_verb("talk_line", text)
            else:
                print(f"-- a library owns {self.spec.name}'s socket: /call VERB runs its verbs")
            return True
        try:
            await self.client.asend(self.encode(text))
        except LabError as exc:
            print(f"!! {exc}")
        except Exception as exc:  # a broken plugin codec must not end the session
            print(f"!! sending failed: {format_exception(exc)}")
        return True

    async def _slash(self, word: str) -> bool:
        if word == "/quit":
            return False
        if word == "/help":
            print("\n".join(f"  {cmd:<11} {what}" for cmd, what in SLASH_COMMANDS.items()))
            print("  other lines are sent as typed" + ("" if self.raw else
                  f" plus {escape_bytes(self.spec.line_ending)}") + "; // sends a line starting with /")
        elif word == "/hex":
            self.show_hex = not self.show_hex
            print(f"-- hex dump {'on' if self.show_hex else 'off'}")
        elif word == "/raw":
            self.raw = not self.raw
            print(f"-- raw mode {'on' if self.raw else 'off'}")
        elif word == "/call":
            await self.call("")
        elif word == "/reconnect":
            try:
                await self.connect()
            except LabError as exc:
                print(f"!! {exc}")
        return True

    def prompt(self) -> str:
        return f"{self.spec.name}{' raw' if self.raw else ''}> "

    def toolbar(self) -> str:
        client = self.client
        state = client.conn.state.value if client else "not connected"
        ins = f"in {client.conn.bytes_in} B, out {client.conn.bytes_out} B" if client else ""
        return (f" {self.spec.name} {self.target[0]}:{self.target[1]} {state} | {ins} | "
                f"hex {'on' if self.show_hex else 'off'} | raw {'on' if self.raw else 'off'} ")

    async def main(self) -> int:
        try:
            await self.connect()
        except LabError as exc:
            print(f"netlab: {exc}", file=sys.stderr)
            return 1
        session: PromptSession[str] = PromptSession(
            history=open_history("talk_history"), completer=TalkCompleter(self.spec),
            complete_while_typing=False, bottom_toolbar=self.toolbar, refresh_interval=0.5)
        running: list[asyncio.Task[bool]] = []
        # Ctrl-C while a line runs (a slow /call) cancels it; at the prompt it is a key
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, lambda: [t.cancel() for t in running])
        with patch_stdout(raw=True):
            while True:
                try:
                    line = await session.prompt_async(self.prompt, handle_sigint=False)
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    return 0
                task = asyncio.ensure_future(self.handle(line))
                running[:] = [task]
                try:
                    if not await task:
                        return 0
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    print("-- interrupted")
                finally:
                    running.clear()

    def main_without_terminal(self) -> int:
        """Lines from a pipe: send each, print replies; at the end of input
        give the server a moment to answer and close."""
        try:
            asyncio.run(self.connect())
        except LabError as exc:
            print(f"netlab: {exc}", file=sys.stderr)
            return 1
        for line in sys.stdin:
            if not asyncio.run(self.handle(line.rstrip("\r\n"))):
                return 0
        if self.client is not None:
            self._wait_for_quiet(self.client)
        return 0

    @staticmethod
    def _wait_for_quiet(client: Client, quiet: float = 0.5, limit: float = 3.0) -> None:
        """Until the server closes, or has sent nothing for ``quiet`` seconds
        (UDP never closes), at most ``limit`` seconds."""
        conn = client.conn
        start = last_change = time.monotonic()
        seen = conn.msgs_in
        while conn.state.value != "closed":
            now = time.monotonic()
            if conn.msgs_in != seen:
                seen, last_change = conn.msgs_in, now
            elif now - last_change >= quiet or now - start >= limit:
                return
            time.sleep(0.02)

    def close(self) -> None:
        self._leaving = True
        self._unsubscribe()
        self.flush()
        self.lab.close()


def run_talk(protocol: str, address: str, *, udp: bool = False, show_hex: bool = False,
             raw: bool = False, timeout: float = 10.0, options: dict[str, str] | None = None) -> int:
    """Run ``netlab talk``; returns the exit code."""
    try:
        spec = protocols.get(protocol)
        target = ("127.0.0.1", int(address)) if address.isdigit() else parse_address(address)
        transport = Transport.UDP if udp else spec.transports[0]
        if transport not in spec.transports:
            raise LabError(f"{spec.name} does not run over {transport.value}",
                           hint=f"it runs over {', '.join(spec.iter_transports())}")
    except LabError as exc:
        print(f"netlab: {exc}", file=sys.stderr)
        return 2
    lab = Lab.start()
    talk = Talk(lab, spec, target, transport=transport, show_hex=show_hex, raw=raw, timeout=timeout,
                options=options)
    try:
        if sys.stdin.isatty() and sys.stdout.isatty():
            return asyncio.run(talk.main())
        return talk.main_without_terminal()
    except KeyboardInterrupt:
        return 130
    finally:
        talk.close()
