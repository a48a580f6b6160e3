"""The telnet server: a line echo service, or the lab console behind a
password.

Both modes open the same way: the server offers WILL ECHO and WILL SGA
(it echoes what is typed, so a client may send each key as it is pressed)
and asks DO NAWS and DO TTYPE (the window size and terminal type, shown in
the greeting and the log).  It greets once those questions are answered,
or after ``greeting_wait`` seconds (``--greeting-wait``) for clients
that never answer.

Typed input is edited as a terminal in cooked mode would: backspace/DEL
and IAC EC erase a character, ^U and IAC EL the line, ^C, IAC IP or IAC
BRK interrupt, ^D on an empty line ends the session, IAC AYT is answered.

``--mode console`` serves the lab's command language (the ``lab.console``
service the Lab installs): statements act on the lab this server runs in.
It needs a password, takes loopback peers only unless ``--allow-remote``,
does not echo the password, and hangs up after ``--login-attempts``
failures, each answered only after a delay.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.errors import ConfigError, ConnectionClosed, LabError
from lab.protocols._base import Message, Peer, ServerBehaviour
from lab.protocols.telnet._codec import (
    ABORT,
    AO,
    AYT,
    BRK,
    EC,
    ECHO,
    EL,
    EOF_CMD,
    IP,
    MAX_LINE,
    NAWS,
    SE,
    SGA,
    TTYPE,
    Command,
    Line,
    Negotiation,
    Subnegotiation,
    Text,
    option_name,
)
from lab.protocols.telnet._options import Negotiator, Side

__all__ = ["CONSOLE_SERVICE", "Console", "LineEditor", "Mode", "Stage", "TelnetServer", "is_loopback"]

logger = logging.getLogger(__name__)

CONSOLE_SERVICE = "lab.console"
PROMPT = "netlab> "
PASSWORD_PROMPT = "Password: "
MAX_QUEUED = 8  # console lines typed ahead while a statement runs
_QUIT = frozenset({"quit", "exit", "logout"})



class Console(Protocol):
    """What the ``lab.console`` service makes for each session."""

    async def run(self, text: str) -> str:
        """Run command-language text; the printable results, or LabError."""
        ...

    def complete(self, line: str) -> list[str]:
        """Completions for the last word of ``line``."""
        ...


class Mode(enum.Enum):
    ECHO = "echo"
    CONSOLE = "console"


class Stage(enum.Enum):
    NEGOTIATING = "negotiating"  # options asked, greeting not sent yet
    ECHOING = "echoing"  # echo mode: every line comes back
    PASSWORD = "password"  # console: reading the password
    LOCKED = "locked"  # console: a wrong password, waiting out the delay
    READY = "ready"  # console: at the prompt
    RUNNING = "running"  # console: a statement runs
    CLOSED = "closed"


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address (127/8, ::1, IPv4-mapped 127/8) or
    ``localhost``?"""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


# -- line editing ---------------------------------------------------------------


@dataclass
class Edit:
    """What typed bytes did: bytes to echo, and whether ^C or ^D came."""

    echo: bytearray = field(default_factory=bytearray)
    interrupt: bool = False
    eof: bool = False


class LineEditor:
    """Cooked-mode line editing of typed bytes, sans-IO.

    Printing characters (and tabs, and UTF-8) are kept; BS/DEL erase one
    character, ^U the line; ^C interrupts (the line is dropped), ^D on an
    empty line is end of input; ANSI escape sequences (arrow keys) and
    other control characters, NUL included, are dropped.  At most
    ``max_length`` bytes are kept: the rest of a longer line is dropped.
    """

    def __init__(self, max_length: int = MAX_LINE) -> None:
        self.max_length = max_length
        self.buffer = bytearray()
        self._escape = 0  # 1: after ESC, 2: inside a CSI/SS3 sequence

    def feed(self, data: bytes) -> Edit:
        edit = Edit()
        for byte in data:
            if self._escape:
                self._in_escape(byte)
            elif (byte >= 0x20 and byte != 0x7F) or byte == 0x09:
                if len(self.buffer) < self.max_length:
                    self.buffer.append(byte)
                    edit.echo.append(byte)
            elif byte in (0x08, 0x7F):
                edit.echo += self.erase_char()
            elif byte == 0x15:  # ^U
                edit.echo += self.erase_line()
            elif byte == 0x03:  # ^C
                self.buffer.clear()
                edit.echo += b"^C"
                edit.interrupt = True
            elif byte == 0x04 and not self.buffer:  # ^D
                edit.eof = True
                break
            elif byte == 0x1B:
                self._escape = 1
        return edit

    def _in_escape(self, byte: int) -> None:
        if self._escape == 1:
            self._escape = 2 if byte in (0x5B, 0x4F) else 0  # ESC [ or ESC O
        elif 0x40 <= byte <= 0x7E:
            self._escape = 0  # the final byte ends the sequence

    def erase_char(self) -> bytes:
        """Drop the last character (all bytes of a UTF-8 one); the echo that
        rubs it out on the screen."""
        if not self.buffer:
            return b""
        while self.buffer and 0x80 <= self.buffer[-1] <= 0xBF:
            self.buffer.pop()  # continuation bytes
        if self.buffer:
            self.buffer.pop()
        return b"\b \b"

    def erase_line(self) -> bytes:
        count = len(self.buffer.decode("utf-8", "replace"))
        self.buffer.clear()
        return b"\b \b" * count

    def take(self) -> bytes:
        """The finished line; the editor starts a new one."""
        line = bytes(self.buffer)
        self.buffer.clear()
        self._escape = 0
        return line


# -- the server -----------------------------------------------------------------


@dataclass(eq=False)
class Session:
    """One client of the server."""

    conn: Peer
    options: Negotiator
    editor: LineEditor
    stage: Stage = Stage.NEGOTIATING
    window: tuple[int, int] | None = None
    terminal: str | None = None
    attempts: int = 0
    console: Console | None = None
    queue: deque[str] = field(default_factory=deque)
    task: asyncio.Task[str] | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def echoing(self) -> bool:
        """Do we echo what is typed (the client agreed to DO ECHO)?"""
        return self.options.here(ECHO) and self.stage not in (Stage.PASSWORD, Stage.LOCKED)


def _common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    first, last = min(words), max(words)
    end = 0
    while end < len(first) and first[end] == last[end]:
        end += 1
    return first[:end]


def _call_later(delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # driven without a loop (unit tests): no timers
    return loop.call_later(delay, fn)


class TelnetServer(ServerBehaviour):
    """The telnet server behaviour; see the module docstring."""

    greeting_wait = 1.0  # seconds to wait for option answers before greeting
    failure_delay = 1.0  # seconds before "Login incorrect" is said

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.mode = Mode(self.options.get("mode") or Mode.ECHO)
        self.password: str | None = self.options.get("password") or self.options.get("password_file")
        self.allow_remote = bool(self.options.get("allow_remote"))
        self.login_attempts: int = self.options.get("login_attempts") or 3
        self.greeting_wait = self.options.get("greeting_wait") or type(self).greeting_wait
        if self.mode is Mode.CONSOLE and not self.password:
            raise ConfigError(
                "telnet: the console needs a password: it runs lab commands for whoever connects",
                hint="add --password SECRET or --password-file FILE",
            )
        self.sessions: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[str]] = set()  # running statements, kept alive
        self._handlers: dict[str, Callable[[Session, Any], None]] = {
            "negotiation": self._negotiation,
            "subnegotiation": self._subnegotiation,
            "command": self._command,
            "text": self._text,
            "line": self._line,
        }

    def check_bind(self, host: str) -> None:
        """Refuse to serve the console beyond loopback unless allowed."""
        if self.mode is Mode.CONSOLE and not self.allow_remote and not is_loopback(host):
            raise ConfigError(
                f"telnet: the console would be reachable from other machines on {host}",
                hint="bind 127.0.0.1 or ::1, or add --allow-remote if you mean it",
            )

    # -- connections -------------------------------------------------------

    def connection_made(self, conn: Peer) -> None:
        host = str(conn.peer[0]) if conn.peer else ""
        if self.mode is Mode.CONSOLE and not self.allow_remote and not is_loopback(host):
            conn.note(f"refused {host}: the console takes loopback connections only")
            conn.send(Line.of("netlab: the console takes loopback connections only"))
            conn.close()
            return
        session = Session(conn, Negotiator(local={ECHO, SGA}, remote={NAWS, TTYPE, SGA}), LineEditor())
        self.sessions[conn.id] = session
        for side, option in ((Side.US, ECHO), (Side.US, SGA), (Side.HIM, NAWS), (Side.HIM, TTYPE)):
            for msg in session.options.request(side, option):
                conn.send(msg)
        session.timer = _call_later(self.greeting_wait, lambda: self._greet(session))

    def connection_lost(self, conn: Peer) -> None:
        session = self.sessions.pop(conn.id, None)
        if session is not None:
            self._end(session)

    def protocol_error(self, conn: Peer, exc: Exception) -> None:
        session = self.sessions.get(conn.id)
        if session is not None and session.stage is not Stage.CLOSED:
            self._write(session, Line.of(f"netlab: {getattr(exc, 'message', exc)}; closing"))
            self._close(session)
        else:
            conn.close()

    def message_received(self, conn: Peer, msg: Message) -> None:
        session = self.sessions.get(conn.id)
        if session is None or session.stage is Stage.CLOSED:
            return
        handler = self._handlers.get(msg.kind)
        if handler is not None:
            handler(session, msg)

    # -- writing -----------------------------------------------------------

    def _write(self, session: Session, *msgs: Message) -> None:
        if session.stage is Stage.CLOSED:
            return
        try:
            for msg in msgs:
                session.conn.send(msg)
        except ConnectionClosed:
            self._end(session)

    def _say(self, session: Session, text: str) -> None:
        """Lines of text, each as a :class:`Line`."""
        self._write(session, *(Line.of(line) for line in text.splitlines()))

    def _prompt(self, session: Session, prompt: str = PROMPT) -> None:
        self._write(session, Text.of(prompt))
        self._go_ahead(session)

    def _go_ahead(self, session: Session) -> None:
        # RFC 858: without SGA in force, GA hands the turn to the client
        if not session.options.here(SGA):
            self._write(session, Command.of("GA"))

    def _close(self, session: Session) -> None:
        self._end(session)
        session.conn.close()

    def _end(self, session: Session) -> None:
        session.stage = Stage.CLOSED
        session.queue.clear()
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None

    # -- option negotiation -------------------------------------------------

    def _negotiation(self, session: Session, msg: Negotiation) -> None:
        outcome = session.options.receive(msg)
        self._write(session, *outcome.replies)
        if outcome.problem:
            session.conn.note(outcome.problem)
        change = outcome.change
        if change is not None and change.side is Side.HIM and change.option == TTYPE and change.enabled:
            self._write(session, Subnegotiation.ttype_send())
        self._settled(session)

    def _subnegotiation(self, session: Session, msg: Subnegotiation) -> None:
        if not msg.complete:
            session.conn.note(f"SB {option_name(msg.option)} ended without IAC SE")
        if not session.options.there(msg.option):
            # RFC 855: subnegotiation only for an option in force
            session.conn.note(f"ignored SB {option_name(msg.option)}: the client does not perform it")
            return
        if msg.option == NAWS:
            if msg.window is None:
                session.conn.note(f"ignored malformed NAWS of {len(msg.payload)} bytes")
                return
            session.window = msg.window
            session.conn.note(f"window {msg.window[0]}x{msg.window[1]}")
        elif msg.option == TTYPE and msg.terminal is not None:
            session.terminal = msg.terminal
            session.conn.note(f"terminal {msg.terminal}")
        self._settled(session)

    def _settled(self, session: Session) -> None:
        """Greet once our questions are answered."""
        if session.stage is not Stage.NEGOTIATING or session.options.pending:
            return
        if session.options.there(TTYPE) and session.terminal is None:
            return
        if session.options.there(NAWS) and session.window is None:
            return
        self._greet(session)

    def _greet(self, session: Session) -> None:
        if session.stage is not Stage.NEGOTIATING:
            return
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        told = []
        if session.terminal:
            told.append(f"terminal {session.terminal}")
        if session.window:
            told.append(f"window {session.window[0]}x{session.window[1]}")
        options = session.options.summary()
        told.append(f"options: we {', '.join(options['us']) or 'none'};"
                    f" you {', '.join(options['him']) or 'none'}"
                    + (" (some questions unanswered)" if session.options.pending else ""))
        about = "; ".join(told)
        if self.mode is Mode.ECHO:
            session.stage = Stage.ECHOING
            self._say(session, "netlab telnet echo service: every line you type comes back.\n"
                               f"{about}\nCtrl-D on an empty line or Ctrl-C ends the session.")
            self._go_ahead(session)
            return
        service = self.services.find(CONSOLE_SERVICE)
        if service is None:
            self._say(session, "netlab: no lab console here (this server does not run in a lab)")
            self._close(session)
            return
        session.console = service()
        session.stage = Stage.PASSWORD
        self._say(session, f"netlab console: the lab's command language.\n{about}")
        self._prompt(session, PASSWORD_PROMPT)

    # -- commands -----------------------------------------------------------

    def _command(self, session: Session, msg: Command) -> None:
        code = msg.command
        if code == AYT:
            self._write(session, Line.of("[netlab: yes, still here]"))
        elif code == EC:
            self._echo(session, session.editor.erase_char())
        elif code == EL:
            self._echo(session, session.editor.erase_line())
        elif code in (IP, BRK, ABORT):
            session.editor.take()
            self._interrupt(session)
        elif code == EOF_CMD:
            if not session.editor.buffer:
                self._bye(session)
        elif code == AO:
            session.conn.note("AO: output is never held back here, nothing to discard")
        elif code == SE:
            session.conn.note("ignored SE without SB")
        elif not msg.known:
            session.conn.note(f"ignored {msg.summary()}")
        # NOP, DM, GA, EOR, SUSP: nothing to do

    # -- typed input --------------------------------------------------------

    def _echo(self, session: Session, data: bytes | bytearray) -> None:
        if data and session.echoing:
            self._write(session, Text.of(bytes(data)))

    def _text(self, session: Session, msg: Text) -> None:
        self._typed(session, msg.data)

    def _line(self, session: Session, msg: Line) -> None:
        if self._typed(session, msg.data) and session.stage is not Stage.CLOSED:
            if session.echoing:
                self._write(session, Line.of(""))
            self._entered(session, session.editor.take())

    def _typed(self, session: Session, data: bytes) -> bool:
        """Edit typed bytes in; false when they ended the session."""
        if session.stage is Stage.NEGOTIATING:
            self._greet(session)  # the client types: stop waiting for answers
        if not data:
            return True
        if b"\t" in data and session.stage is Stage.READY and session.echoing:
            # character mode at the prompt: TAB completes instead of typing
            first, _, rest = data.partition(b"\t")
            if not self._typed(session, first):
                return False
            self._complete(session)
            return self._typed(session, rest)
        edit = session.editor.feed(data)
        self._echo(session, edit.echo)
        if edit.interrupt:
            self._interrupt(session)
        if edit.eof:
            self._bye(session)
            return False
        return True

    def _complete(self, session: Session) -> None:
        assert session.console is not None
        line = session.editor.buffer.decode("utf-8", "replace")
        word = "" if not line or line[-1].isspace() else line.split()[-1]
        try:
            candidates = session.console.complete(line)
        except Exception:
            logger.exception("completing %r failed", line)
            candidates = []
        common = _common_prefix(candidates)
        if len(common) > len(word):
            self._typed(session, (common[len(word) :] + (" " if len(candidates) == 1 else "")).encode())
        elif len(candidates) > 1:
            self._say(session, "\n" + "  ".join(candidates))
            self._prompt(session)
            self._echo(session, session.editor.buffer)
        else:
            self._echo(session, b"\a")  # nothing to complete: ring the bell

    def _interrupt(self, session: Session) -> None:
        if self.mode is Mode.ECHO:
            self._bye(session)
        elif session.stage is Stage.RUNNING and session.task is not None:
            session.queue.clear()
            session.task.cancel()
        elif session.stage in (Stage.READY, Stage.PASSWORD):
            self._write(session, Line.of(""))
            self._prompt(session, PROMPT if session.stage is Stage.READY else PASSWORD_PROMPT)

    def _bye(self, session: Session) -> None:
        self._write(session, Line.of(""), Line.of("Goodbye."))
        self._close(session)

    def _entered(self, session: Session, line: bytes) -> None:
        if session.stage is Stage.ECHOING:
            self._write(session, Line.of(line))
            self._go_ahead(session)
        elif session.stage is Stage.PASSWORD:
            self._check_password(session, line)
        elif session.stage is Stage.READY:
            self._statement(session, line.decode("utf-8", "replace").strip())
        elif session.stage is Stage.RUNNING:
            if len(session.queue) >= MAX_QUEUED:
                self._say(session, f"netlab: busy, {MAX_QUEUED} lines already wait: line dropped")
            else:
                session.queue.append(line.decode("utf-8", "replace").strip())
        # LOCKED: typed ahead of "Login incorrect", dropped

    # -- the console --------------------------------------------------------

    def _check_password(self, session: Session, line: bytes) -> None:
        assert self.password is not None
        if session.options.here(ECHO):
            self._write(session, Line.of(""))  # the Enter that was not echoed
        if hmac.compare_digest(line, self.password.encode("utf-8")):
            session.conn.note("console login")
            session.stage = Stage.READY
            self._say(session, "Logged in: statements act on this lab. `help` lists commands, `quit` leaves.")
            self._prompt(session)
            return
        session.attempts += 1
        session.conn.note(f"console login failed ({session.attempts} of {self.login_attempts})")
        if session.attempts >= self.login_attempts:
            self._say(session, "Login incorrect. Too many failures: goodbye.")
            self._close(session)
            return
        session.stage = Stage.LOCKED

        def unlock() -> None:
            session.timer = None
            if session.stage is Stage.LOCKED:
                session.stage = Stage.PASSWORD
                self._say(session, "Login incorrect.")
                self._prompt(session, PASSWORD_PROMPT)

        session.timer = _call_later(self.failure_delay, unlock)
        if session.timer is None:
            unlock()

    def _statement(self, session: Session, text: str) -> None:
        if not text:
            self._prompt(session)
        elif text.lower() in _QUIT:
            self._bye(session)
        else:
            session.conn.note(f"console runs: {text}")
            session.stage = Stage.RUNNING
            session.task = task = asyncio.get_running_loop().create_task(self._run(session, text))
            self._tasks.add(task)
            # a callback, not code after the await: a task cancelled before
            # it started never runs its own body
            task.add_done_callback(lambda done: self._finished(session, done))

    async def _run(self, session: Session, text: str) -> str:
        """The statement's printable outcome; errors as one line."""
        assert session.console is not None
        try:
            output = await session.console.run(text)
        except LabError as exc:
            return "error: " + " ".join(str(exc).split())  # one line, whatever it holds
        except Exception as exc:
            logger.exception("console statement %r raised", text)
            return f"error: internal error: {type(exc).__name__}: {exc}"
        if text.split()[0].lower() == "help" and len(text.split()) == 1:
            output += "\n  quit     leave the console (also exit, logout, Ctrl-D)"
        return output

    def _finished(self, session: Session, task: asyncio.Task[str]) -> None:
        self._tasks.discard(task)
        session.task = None
        output = "interrupted" if task.cancelled() else task.result()
        if session.stage is not Stage.RUNNING:
            return  # the client left (or was sent away) meanwhile
        if output:
            self._say(session, output)
        session.stage = Stage.READY
        if session.queue:
            self._statement(session, session.queue.popleft())  # typed ahead
        else:
            self._prompt(session)
