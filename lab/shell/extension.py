"""The IPython extension: ``%netlab`` and ``%%netlab``, completion, and a
``lab`` whose reactor keeps serving while the prompt waits.

``%load_ext lab`` (or ``netlab shell``) calls :func:`load`.  The magic is
a thin layer over :class:`ShellSession`, which runs command-language
statements against the lab, binds the endpoints they create to Python
names and turns user mistakes into one-line :class:`UsageError` messages.

Tests: tests/shell/test_shell_session.py, tests/shell/test_ipython.py, tests/shell/test_notebook.py
"""

from __future__ import annotations

import atexit
import keyword
import logging
import re
import sys
import types
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, SimpleMatcherResult, context_matcher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class

from lab.commands import Interpreter, Statement
from lab.connection import Connection
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.eventlog import Event, EventKind, EventSlice
from lab.lab import Lab
from lab.protocols._base import Message
from lab.shell._recording import finish_recording
from lab.shell._settle import settled, unwrap

__all__ = ["ErrorPrinter", "NetlabMagics", "ShellSession", "load", "unload"]

logger = logging.getLogger(__name__)

# values a line magic hands back; other results are printed as text
LIVE = (Endpoint, Connection, Message, EventSlice)
_MAGIC_LINE = re.compile(r"^\s*(?:[\w.\[\]'\"]+\s*=\s*)?%netlab\s+(?P<rest>.*)$")
MAX_SHOWN = 10  # errors printed per burst; the log keeps them all


class ErrorPrinter:
    """Prints error events (a hook that raised, a peer breaking the
    protocol) as they happen, so the user sees them at the prompt.

    Events arrive on the reactor thread; lines are written once per burst.
    IPython's prompt runs under prompt_toolkit's ``patch_stdout``, so the
    lines appear above the prompt without breaking what is being typed.
    """

    def __init__(self, lab: Lab) -> None:
        self._lab = lab
        self._pending: list[Event] = []
        self._unsubscribe = lab.log.subscribe(self)

    def __call__(self, event: Event) -> None:
        if event.kind is not EventKind.ERROR:
            return
        self._pending.append(event)
        if len(self._pending) == 1:
            self._lab.reactor.call_soon(self.flush)

    def flush(self) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        lines = [f"netlab: error on {e.conn or e.endpoint}: {e.summary}" for e in events[:MAX_SHOWN]]
        if len(events) > MAX_SHOWN:
            lines.append(f"netlab: ... and {len(events) - MAX_SHOWN} more errors (`%netlab log` shows them)")
        try:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the terminal went away; the event log still has them

    def close(self) -> None:
        self._unsubscribe()


class ShellSession:
    """One lab driven from one IPython shell."""

    def __init__(self, shell: InteractiveShell, lab: Lab, *, owns_lab: bool) -> None:
        self.shell = shell
        self.lab = lab
        self.owns_lab = owns_lab
        self.interp = Interpreter(lab)
        self.errors = ErrorPrinter(lab)

    # -- running statements ------------------------------------------------

    def run(self, text: str, *, cell: bool = False) -> Any:
        """Run every statement in ``text``; return the last one's live
        value (a line magic) or print each result (a cell)."""
        try:
            parsed = self.interp.parse(text)
        except LabError as exc:
            raise UsageError(str(exc)) from None
        if not parsed:
            print(self.interp.execute("help")[0].text)
            return None
        for i, (stmt, _cmd, args) in enumerate(parsed):
            result = self._run_one(stmt, cell)
            if result is None:
                return None  # interrupted
            self.bind(result.value)
            last = i == len(parsed) - 1
            if last and not cell and isinstance(result.value, LIVE) and not getattr(args, "json", False):
                return result.value
            if result.text:
                print(result.text)
        return None

    def _run_one(self, stmt: Statement, cell: bool) -> Any:
        if self.lab.reactor.in_reactor_thread():
            raise UsageError("%netlab cannot block the reactor thread (inside a hook?)"
                             " — use the lab's async methods there")
        future = self.lab.reactor.submit(settled(lambda: self.interp.aexecute(stmt.text)))
        try:
            return unwrap(future.result())[0]
        except KeyboardInterrupt:
            future.cancel()  # the reactor cancels the work; servers go on
            print(f"interrupted: `{stmt.text}` cancelled; the lab keeps running", file=sys.stderr)
            return None
        except LabError as exc:
            where = f"line {stmt.line}: " if cell and stmt.line > 1 else ""
            raise UsageError(where + str(exc)) from None

    def bind(self, value: Any) -> None:
        """Make an endpoint a command created reachable by its name (``mx``)."""
        if not isinstance(value, Endpoint):
            return
        name = value.name
        if not name.isidentifier() or keyword.iskeyword(name):
            return
        current = self.shell.user_ns.get(name)
        if current is None or isinstance(current, Endpoint):
            self.shell.push({name: value})
        else:
            print(f"netlab: {name!r} is taken by a Python variable; use lab[{name!r}]", file=sys.stderr)

    # -- completion ------------------------------------------------------

    def statement_at_cursor(self, context: CompletionContext) -> str | None:
        """The command-language text before the cursor, if the cursor is in
        a ``%netlab`` line or the body of a ``%%netlab`` cell."""
        line = context.text_until_cursor
        first = context.full_text.lstrip().split("\n", 1)[0]
        if context.cursor_line > 0 and first.startswith("%%netlab"):
            return line
        m = _MAGIC_LINE.match(line)
        return m["rest"] if m else None

    def complete(self, context: CompletionContext) -> SimpleMatcherResult:
        text = self.statement_at_cursor(context)
        if text is None:
            return {"completions": [], "suppress": False}
        words = text.rsplit(";", 1)[-1].split()
        prefix = "" if not words or text.endswith((" ", "\t")) else words[-1]
        token = context.token
        completions = []
        try:
            candidates = self.interp.complete(text)
        except Exception:  # a completer must never break the prompt
            logger.debug("completing %r failed", text, exc_info=True)
            candidates = []
        for candidate in candidates:
            # IPython replaces its own token, which may be shorter than our word
            shown = token + candidate[len(prefix):] if prefix.endswith(token) else candidate
            completions.append(SimpleCompletion(shown, type="netlab"))
        return {"completions": completions, "suppress": True}

    def finish_recording(self) -> None:
        """End a recording the user left running (``record stop``), so the
        file closes cleanly when the shell does."""
        ended = finish_recording(self.interp)
        if ended:
            print(f"netlab: {ended}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.finish_recording()
        self.errors.close()
        if self.owns_lab:
            self.lab.close()


@magics_class
class NetlabMagics(Magics):
    """The ``%netlab`` line and cell magic."""

    def __init__(self, shell: InteractiveShell, session: ShellSession) -> None:
        super().__init__(shell)
        self.session = session

    @line_cell_magic
    def netlab(self, line: str, cell: str | None = None) -> Any:
        """Run netlab commands against the shell's lab.

            %netlab serve echo as mx          start a server; returns it, bound as `mx`
            c = %netlab connect mx            a client to it
            %netlab send c hello; expect c hello
            %netlab log -n 5                  recent events, decoded
            %netlab help [COMMAND]            every command, or one in detail

        %%netlab runs a cell of statements, one a line (or separated by `;`).
        The reactor runs in a background thread: servers keep serving while the
        prompt waits.  Blocking commands have timeouts; Ctrl-C cancels one and the
        lab keeps running.  `lab` is the Lab: `await lab.aconnect("echo", "mx")`.
        """
        if cell is None:
            return self.session.run(line)
        return self.session.run(f"{line}\n{cell}" if line.strip() else cell, cell=True)


# -- loading -----------------------------------------------------------------

_sessions: dict[int, tuple[ShellSession, Any, Any]] = {}


def _show_lab_error(shell: InteractiveShell, etype: type[BaseException], value: BaseException,
                    tb: types.TracebackType | None, tb_offset: int | None = None) -> None:
    """A LabError from Python code is a user mistake: one line, no traceback;
    so is Ctrl-C while a lab call waited (the reactor cancelled the call and
    goes on).  Any other Ctrl-C keeps IPython's traceback: it shows where
    the user's own code was."""
    if isinstance(value, LabError):
        print(f"{etype.__name__}: {value}", file=sys.stderr)
    elif getattr(value, "netlab_cancelled", False):
        print("KeyboardInterrupt: the lab call was cancelled; the lab keeps running", file=sys.stderr)
    else:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def load(shell: InteractiveShell) -> ShellSession:
    """Register the magics, the completer and ``lab`` in ``shell``."""
    if id(shell) in _sessions:
        return _sessions[id(shell)][0]
    existing = shell.user_ns.get("lab")
    if isinstance(existing, Lab) and not existing._closed:
        session = ShellSession(shell, existing, owns_lab=False)
    else:
        session = ShellSession(shell, Lab.start(), owns_lab=True)
        if existing is None or isinstance(existing, (Lab, types.ModuleType)):
            shell.push({"lab": session.lab})
        else:
            print("netlab: `lab` is taken by a Python variable; the lab is `netlab_lab`", file=sys.stderr)
            shell.push({"netlab_lab": session.lab})
    magics = NetlabMagics(shell, session)
    shell.register_magics(magics)

    @context_matcher()
    def netlab_matcher(context: CompletionContext) -> SimpleMatcherResult:
        return session.complete(context)

    completer = getattr(shell, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(netlab_matcher)
    if not shell.custom_exceptions:
        shell.set_custom_exc((LabError, KeyboardInterrupt), _show_lab_error)
    # registered after the reactor's own stop, so it runs first at exit
    atexit.register(session.finish_recording)
    _sessions[id(shell)] = (session, magics, netlab_matcher)
    return session


def unload(shell: InteractiveShell) -> None:
    """Undo :func:`load`; stop the lab if the extension started it."""
    entry = _sessions.pop(id(shell), None)
    if entry is None:
        return
    session, _magics, matcher = entry
    atexit.unregister(session.finish_recording)
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("netlab", None)
    completer = getattr(shell, "Completer", None)
    if completer is not None and matcher in completer.custom_matchers:
        completer.custom_matchers.remove(matcher)
    if shell.custom_exceptions == (LabError,):
        shell.custom_exceptions = ()
    session.close()
