"""The telnet server: a line echo service, or the lab console behind a
password; one :class:`TelnetSession` per connection.

Both modes open the same way: the server offers WILL ECHO and WILL SGA
(it echoes what is typed, so a client may send each key as it is pressed)
and asks DO NAWS and DO TTYPE (the window size and terminal type, shown in
the greeting and the log).  It greets once those questions are answered,
or after ``greeting_wait`` seconds (``--greeting-wait``) for clients
that never answer.

Typed input is edited as a terminal in cooked mode would: backspace/DEL
and IAC EC erase a character, ^U and IAC EL the line, ^C, IAC IP or IAC
BRK interrupt, ^D on an empty line ends the session, IAC AYT is answered.

``--mode console`` serves the lab's command language (the
:data:`~lab.services.CONSOLE` service the Lab installs): statements act
on the lab this server runs in.  It needs a password, takes loopback
peers only unless ``--allow-remote``, does not echo the password, and
hangs up after ``--login-attempts`` failures, each answered only after
a delay.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import ipaddress
import logging
from collections import deque
from dataclasses import dataclass, field

from lab.errors import ConfigError, ConnectionClosed, LabError, ProtocolError
from lab.protocols._base import Message, Timer
from lab.protocols._login import LoginGate
from lab.protocols._session import Peer, ServerBehaviour, Session
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
    TelnetConversation,
    Text,
    option_name,
)
from lab.protocols.telnet._negotiation import Negotiator, Side
from lab.protocols.telnet._options import Mode, TelnetOptions
from lab.services import CONSOLE, Console

__all__ = ["LineEditor", "Stage", "TelnetServer", "TelnetSession", "is_loopback"]

logger = logging.getLogger(__name__)

PROMPT = "netlab> "
PASSWORD_PROMPT = "Password: "
MAX_QUEUED = 8  # console lines typed ahead while a statement runs
_QUIT = frozenset({"quit", "exit", "logout"})


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


def _common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    first, last = min(words), max(words)
    end = 0
    while end < len(first) and first[end] == last[end]:
        end += 1
    return first[:end]


# -- the server -----------------------------------------------------------------


class TelnetSession(Session["TelnetServer"]):
    """One client of a :class:`TelnetServer`: its option states, line
    editor, stage, what it told of itself, and its console statement."""

    def __init__(self, server: TelnetServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.negotiator = Negotiator(local={ECHO, SGA}, remote={NAWS, TTYPE, SGA})
        self.editor = LineEditor()
        self.stage = Stage.NEGOTIATING
        self.window: tuple[int, int] | None = None
        self.terminal: str | None = None
        self.attempts = 0
        self.console: Console | None = None
        self.queue: deque[str] = deque()  # console lines typed ahead
        self.task: asyncio.Task[str] | None = None
        self.timer: Timer | None = None  # the greeting wait, or the delay after a wrong password
        self.gate = LoginGate(server.services, server.clock, conn)  # password checks wait their turn

    @property
    def echoing(self) -> bool:
        """Do we echo what is typed (the client agreed to DO ECHO)?"""
        return self.negotiator.here(ECHO) and self.stage not in (Stage.PASSWORD, Stage.LOCKED)

    # -- the connection ----------------------------------------------------

    def connection_made(self) -> None:
        host = str(self.conn.peer[0]) if self.conn.peer else ""
        if self.server.console_only_loopback and not is_loopback(host):
            self.conn.note(f"refused {host}: the console takes loopback connections only")
            self._write(Line.of("netlab: the console takes loopback connections only"))
            self._close()
            return
        for side, option in ((Side.US, ECHO), (Side.US, SGA), (Side.HIM, NAWS), (Side.HIM, TTYPE)):
            self._write(*self.negotiator.request(side, option))
        self.timer = self.server.clock.call_later(self.server.options.greeting_wait, self._greet)

    def eof_received(self) -> None:
        self._close()  # and no greeting or "Login incorrect" comes after

    def connection_lost(self) -> None:
        self._end()

    def protocol_error(self, exc: ProtocolError) -> None:
        if self.stage is not Stage.CLOSED:
            self._write(Line.of(f"netlab: {exc.message}; closing"))
            self._close()
        else:
            self.conn.close()

    def message_received(self, msg: Message) -> None:
        if self.stage is Stage.CLOSED:
            return
        match msg:
            case Text():
                self._typed(msg.data)
            case Line():
                self._line(msg)
            case Negotiation():
                self._negotiation(msg)
            case Subnegotiation():
                self._subnegotiation(msg)
            case Command():
                self._command(msg)

    # -- writing -----------------------------------------------------------

    def _write(self, *msgs: Message) -> None:
        if self.stage is Stage.CLOSED:
            return
        try:
            for msg in msgs:
                self.conn.send(msg)
        except ConnectionClosed:
            # the client vanished: connection_lost follows, and a line it
            # finished typing before still runs
            pass

    def _say(self, text: str) -> None:
        """Lines of text, each as a :class:`Line`."""
        self._write(*(Line.of(line) for line in text.splitlines()))

    def _prompt(self, prompt: str = PROMPT) -> None:
        if prompt is PASSWORD_PROMPT:
            # the next line is the password: the log marks it secret
            conv = self.conn.conversation
            if isinstance(conv, TelnetConversation):
                conv.password_next = True
        self._write(Text.of(prompt))
        self._go_ahead()

    def _go_ahead(self) -> None:
        # RFC 858: without SGA in force, GA hands the turn to the client
        if not self.negotiator.here(SGA):
            self._write(Command.of("GA"))

    def _close(self) -> None:
        self._end()
        self.conn.close()

    def _end(self) -> None:
        self.stage = Stage.CLOSED
        self.queue.clear()
        self._cancel_timer()
        self.gate.cancel()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- option negotiation -------------------------------------------------

    def _negotiation(self, msg: Negotiation) -> None:
        outcome = self.negotiator.receive(msg)
        self._write(*outcome.replies)
        if outcome.problem:
            self.conn.note(outcome.problem)
        change = outcome.change
        if change is not None and change.side is Side.HIM and change.option == TTYPE and change.enabled:
            self._write(Subnegotiation.ttype_send())
        self._settled()

    def _subnegotiation(self, msg: Subnegotiation) -> None:
        if not msg.complete:
            self.conn.note(f"SB {option_name(msg.option)} ended without IAC SE")
        if not self.negotiator.there(msg.option):
            # RFC 855: subnegotiation only for an option in force
            self.conn.note(f"ignored SB {option_name(msg.option)}: the client does not perform it")
            return
        if msg.option == NAWS:
            if msg.window is None:
                self.conn.note(f"ignored malformed NAWS of {len(msg.payload)} bytes")
                return
            self.window = msg.window
            self.conn.note(f"window {msg.window[0]}x{msg.window[1]}")
        elif msg.option == TTYPE and msg.terminal is not None:
            self.terminal = msg.terminal
            self.conn.note(f"terminal {msg.terminal}")
        self._settled()

    def _settled(self) -> None:
        """Greet once our questions are answered."""
        if self.stage is not Stage.NEGOTIATING or self.negotiator.pending:
            return
        if self.negotiator.there(TTYPE) and self.terminal is None:
            return
        if self.negotiator.there(NAWS) and self.window is None:
            return
        self._greet()

    def _greet(self) -> None:
        if self.stage is not Stage.NEGOTIATING:
            return
        self._cancel_timer()
        told = []
        if self.terminal:
            told.append(f"terminal {self.terminal}")
        if self.window:
            told.append(f"window {self.window[0]}x{self.window[1]}")
        options = self.negotiator.summary()
        told.append(f"options: we {', '.join(options['us']) or 'none'};"
                    f" you {', '.join(options['him']) or 'none'}"
                    + (" (some questions unanswered)" if self.negotiator.pending else ""))
        about = "; ".join(told)
        if self.server.options.mode is Mode.ECHO:
            self.stage = Stage.ECHOING
            self._say("netlab telnet echo service: every line you type comes back.\n"
                      f"{about}\nCtrl-D on an empty line or Ctrl-C ends the session.")
            self._go_ahead()
            return
        try:
            self.console = self.server.services.get(CONSOLE)
        except LabError:
            self._say("netlab: no lab console here (this server does not run in a lab)")
            self._close()
            return
        self.stage = Stage.PASSWORD
        self._say(f"netlab console: the lab's command language.\n{about}")
        self._prompt(PASSWORD_PROMPT)

    # -- commands -----------------------------------------------------------

    def _command(self, msg: Command) -> None:
        code = msg.command
        if code == AYT:
            self._write(Line.of("[netlab: yes, still here]"))
        elif code == EC:
            self._echo(self.editor.erase_char())
        elif code == EL:
            self._echo(self.editor.erase_line())
        elif code in (IP, BRK, ABORT):
            self.editor.take()
            self._interrupt()
        elif code == EOF_CMD:
            if not self.editor.buffer:
                self._bye()
        elif code == AO:
            self.conn.note("AO: output is never held back here, nothing to discard")
        elif code == SE:
            self.conn.note("ignored SE without SB")
        elif not msg.known:
            self.conn.note(f"ignored {msg.summary()}")
        # NOP, DM, GA, EOR, SUSP: nothing to do

    # -- typed input --------------------------------------------------------

    def _echo(self, data: bytes | bytearray) -> None:
        if data and self.echoing:
            self._write(Text.of(bytes(data)))

    def _line(self, msg: Line) -> None:
        if self._typed(msg.data) and self.stage is not Stage.CLOSED:
            if self.echoing:
                self._write(Line.of(""))
            self._entered(self.editor.take())

    def _typed(self, data: bytes) -> bool:
        """Edit typed bytes in; false when they ended the session."""
        if self.stage is Stage.NEGOTIATING:
            self._greet()  # the client types: stop waiting for answers
        if not data:
            return True
        if b"\t" in data and self.stage is Stage.READY and self.echoing:
            # character mode at the prompt: TAB completes instead of typing
            first, _, rest = data.partition(b"\t")
            if not self._typed(first):
                return False
            self._complete()
            return self._typed(rest)
        edit = self.editor.feed(data)
        self._echo(edit.echo)
        if edit.interrupt:
            self._interrupt()
        if edit.eof:
            self._bye()
            return False
        return True

    def _complete(self) -> None:
        assert self.console is not None
        line = self.editor.buffer.decode("utf-8", "replace")
        word = "" if not line or line[-1].isspace() else line.split()[-1]
        try:
            candidates = self.console.complete(line)
        except Exception:
            logger.exception("completing %r failed", line)
            candidates = []
        common = _common_prefix(candidates)
        if len(common) > len(word):
            self._typed((common[len(word) :] + (" " if len(candidates) == 1 else "")).encode())
        elif len(candidates) > 1:
            self._say("\n" + "  ".join(candidates))
            self._prompt()
            self._echo(self.editor.buffer)
        else:
            self._echo(b"\a")  # nothing to complete: ring the bell

    def _interrupt(self) -> None:
        if self.server.options.mode is Mode.ECHO:
            self._bye()
        elif self.stage is Stage.RUNNING and self.task is not None:
            self.queue.clear()
            self.task.cancel()
        elif self.stage in (Stage.READY, Stage.PASSWORD):
            self._write(Line.of(""))
            self._prompt(PROMPT if self.stage is Stage.READY else PASSWORD_PROMPT)

    def _bye(self) -> None:
        self._write(Line.of(""), Line.of("Goodbye."))
        self._close()

    def _entered(self, line: bytes) -> None:
        if self.stage is Stage.ECHOING:
            self._write(Line.of(line))
            self._go_ahead()
        elif self.stage is Stage.PASSWORD:
            self._check_password(line)
        elif self.stage is Stage.READY:
            self._statement(line.decode("utf-8", "replace").strip())
        elif self.stage is Stage.RUNNING:
            if len(self.queue) >= MAX_QUEUED:
                self._say(f"netlab: busy, {MAX_QUEUED} lines already wait: line dropped")
            else:
                self.queue.append(line.decode("utf-8", "replace").strip())
        # LOCKED: typed ahead of "Login incorrect", dropped

    # -- the console --------------------------------------------------------

    def _check_password(self, line: bytes) -> None:
        server = self.server
        assert server.password is not None
        if self.negotiator.here(ECHO):
            self._write(Line.of(""))  # the Enter that was not echoed
        self.stage = Stage.LOCKED  # until its source's turn comes: typed-ahead lines are dropped
        self.gate.attempt(lambda: self._checked(line), self._refused)

    def _refused(self, retry_after: float) -> None:
        self._say(f"Login refused: too many failed logins from your address; try again in {retry_after:.0f} s.")
        self._close()

    def _checked(self, line: bytes) -> None:
        server = self.server
        assert server.password is not None
        if self.stage is not Stage.LOCKED:
            return
        if hmac.compare_digest(line, server.password.encode("utf-8")):
            self.conn.note("console login")
            self.stage = Stage.READY
            self._say("Logged in: statements act on this lab. `help` lists commands, `quit` leaves.")
            self._prompt()
            return
        self.attempts += 1
        limit = server.options.login_attempts
        self.gate.failed()
        self.conn.note(f"console login failed ({self.attempts} of {limit})")
        if self.attempts >= limit:
            self._say("Login incorrect. Too many failures: goodbye.")
            self._close()
            return
        self.timer = server.clock.call_later(server.failure_delay, self._unlock)

    def _unlock(self) -> None:
        self.timer = None
        if self.stage is Stage.LOCKED:
            self.stage = Stage.PASSWORD
            self._say("Login incorrect.")
            self._prompt(PASSWORD_PROMPT)

    def _statement(self, text: str) -> None:
        if not text:
            self._prompt()
        elif text.lower() in _QUIT:
            self._bye()
        else:
            self.conn.note(f"console runs: {text}")
            self.stage = Stage.RUNNING
            self.task = task = asyncio.create_task(self._run(text))
            self.server.tasks.add(task)
            # a callback, not code after the await: a task cancelled before
            # it started never runs its own body
            task.add_done_callback(self._finished)

    async def _run(self, text: str) -> str:
        """The statement's printable outcome; errors as one line."""
        assert self.console is not None
        try:
            output = await self.console.run(text)
        except LabError as exc:
            return "error: " + " ".join(str(exc).split())  # one line, whatever it holds
        except Exception as exc:
            logger.exception("console statement %r raised", text)
            return f"error: internal error: {type(exc).__name__}: {exc}"
        if text.split()[0].lower() == "help" and len(text.split()) == 1:
            output += "\n  quit     leave the console (also exit, logout, Ctrl-D)"
        return output

    def _finished(self, task: asyncio.Task[str]) -> None:
        self.server.tasks.discard(task)
        self.task = None
        output = "interrupted" if task.cancelled() else task.result()
        if self.stage is not Stage.RUNNING:
            return  # the client left (or was sent away) meanwhile
        if output:
            self._say(output)
        self.stage = Stage.READY
        if self.queue:
            self._statement(self.queue.popleft())  # typed ahead
        else:
            self._prompt()


class TelnetServer(ServerBehaviour[TelnetOptions]):
    """The telnet server behaviour; see the module docstring.  What one
    connection needs lives on its :class:`TelnetSession`."""

    session_type = TelnetSession
    failure_delay = 1.0  # seconds before "Login incorrect" is said

    def __init__(self, options: TelnetOptions) -> None:
        super().__init__(options)
        self.password: str | None = options.password or options.password_file or options.password_env
        if options.mode is Mode.CONSOLE and not self.password:
            raise ConfigError(
                "telnet: the console needs a password: it runs lab commands for whoever connects",
                hint="add --password-file FILE or --password-env NAME (or --password SECRET)",
            )
        # running statements (the loop keeps only weak references to tasks);
        # stopping leaves them be: one of them may be the `stop` of this server
        self.tasks: set[asyncio.Task[str]] = set()

    @property
    def console_only_loopback(self) -> bool:
        """A console without ``--allow-remote``: loopback binds and peers only."""
        return self.options.mode is Mode.CONSOLE and not self.options.allow_remote

    def check_bind(self, host: str) -> None:
        """Refuse to serve the console beyond loopback unless allowed."""
        if self.console_only_loopback and not is_loopback(host):
            raise ConfigError(
                f"telnet: the console would be reachable from other machines on {host}",
                hint="bind 127.0.0.1 or ::1, or add --allow-remote if you mean it",
            )
