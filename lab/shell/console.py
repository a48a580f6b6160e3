"""``netlab console``: a prompt_toolkit REPL for the command language.

The lab's reactor runs in a background thread; the prompt runs on the main
thread under ``patch_stdout``, so events printed by the reactor appear
above the prompt without disturbing a half-typed line.  Tab completes
through :meth:`Interpreter.complete`; history persists in the user's data
directory; the bottom toolbar shows endpoints, connections and events/s.
``--record FILE`` runs ``record start FILE`` first and ``record stop`` on the
way out; the prompt and the toolbar say while a recording runs.

Tests: tests/shell/test_netlab_console.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from lab.commands import Interpreter
from lab.errors import LabError
from lab.eventlog import Event, EventKind, format_event
from lab.lab import Lab
from lab.shell._recording import finish_recording, recording_badge
from lab.shell._settle import settled, unwrap

__all__ = ["CommandCompleter", "EventEcho", "Rate", "data_dir", "run_console"]

logger = logging.getLogger(__name__)

EXIT_WORDS = ("exit", "quit")
PROMPT = "netlab> "
RECORDING_PROMPT = "netlab rec> "
MAX_LINES_PER_BURST = 200  # per tick; beyond this a terminal only scrolls, the log keeps everything
FLUSH_INTERVAL = 0.05


def data_dir() -> Path:
    """Where netlab keeps per-user data: ``$XDG_DATA_HOME/netlab`` or
    ``~/.local/share/netlab``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "netlab"


def open_history(name: str) -> History:
    """A history file in :func:`data_dir`, or one in memory if that
    directory cannot be written."""
    folder = data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.touch(exist_ok=True)
    except OSError as exc:
        print(f"netlab: history not kept ({folder}: {exc.strerror})", file=sys.stderr)
        return InMemoryHistory()
    return FileHistory(str(path))


class CommandCompleter(Completer):
    """Completes command-language words through the interpreter."""

    def __init__(self, interp: Interpreter, extra: Iterable[str] = EXIT_WORDS) -> None:
        self.interp = interp
        self.extra = tuple(extra)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        stmt = text.rsplit(";", 1)[-1]
        words = stmt.split()
        prefix = "" if not words or stmt.endswith((" ", "\t")) else words[-1]
        try:
            candidates = self.interp.complete(text)
        except Exception:  # a completer must never break the prompt
            logger.debug("completing %r failed", text, exc_info=True)
            candidates = []
        if len(words) <= 1 and prefix == (words[-1] if words else ""):
            candidates += [w for w in self.extra if w.startswith(prefix)]
        for word in candidates:
            yield Completion(word, start_position=-len(prefix))


class EventEcho:
    """Prints events as they happen, one write per 50 ms tick (reactor thread).

    ``mode`` is ``all`` (every event but raw chunks, unless
    ``show_bytes``), ``errors`` or ``none``.
    """

    def __init__(self, lab: Lab, mode: str = "all", *, show_bytes: bool = False) -> None:
        self.lab = lab
        self.mode = mode
        self.show_bytes = show_bytes
        self._lines: list[str] = []
        self._skipped = 0
        self._unsubscribe = lab.log.subscribe(self)

    def __call__(self, event: Event) -> None:
        if self.mode == "none" or (self.mode == "errors" and event.kind is not EventKind.ERROR):
            return
        if event.kind is EventKind.DATA and not self.show_bytes:
            return
        if len(self._lines) >= MAX_LINES_PER_BURST:
            self._skipped += 1
            return
        self._lines.append(format_event(event))
        if len(self._lines) == 1:
            # one write per tick: a write per event cannot keep up with a busy lab
            self.lab.reactor.loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if self._skipped:
            lines.append(f"... {self._skipped} more events (`log` shows them)")
            self._skipped = 0
        if not lines:
            return
        try:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # the terminal went away; keep serving

    def close(self) -> None:
        self._unsubscribe()


class Rate:
    """Events per second over the last few seconds."""

    def __init__(self, window: float = 3.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, total: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        first_t, first_total = self._samples[0]
        span = now - first_t
        return (total - first_total) / span if span > 0 else 0.0


class Console:
    """The REPL: one lab, one interpreter, one prompt session."""

    def __init__(self, lab: Lab, *, events: str = "all", show_bytes: bool = False) -> None:
        self.lab = lab
        self.interp = Interpreter(lab)
        self.echo = EventEcho(lab, events, show_bytes=show_bytes)
        self.rate = Rate()
        self._running: asyncio.Future[Any] | None = None

    def toolbar(self) -> str:
        lab = self.lab
        conns = sum(len(e.live_connections()) for e in list(lab.endpoints.values()))
        servers, clients = len(lab.servers), len(lab.clients)
        rate = self.rate.update(lab.log.total)
        badge = recording_badge(lab)
        return ((f" {badge} |" if badge else "") + f" {servers} servers, {clients} clients | {conns} connections | "
                f"{rate:.0f} events/s | {lab.log.total} events | Tab completes, Ctrl-D leaves ")

    async def run_line(self, text: str) -> bool:
        """Run one line; False when the user asked to leave."""
        text = text.strip()
        if not text:
            return True
        if text in EXIT_WORDS:
            return False
        task = asyncio.wrap_future(self.lab.reactor.submit(settled(lambda: self.interp.aexecute(text))))
        self._running = task
        try:
            results = unwrap(await task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            print("interrupted; the lab keeps running")
            return True
        except LabError as exc:
            print(f"error: {exc}")
            return True
        except Exception:
            traceback.print_exc()
            return True
        finally:
            self._running = None
        for result in results:
            if result.text:
                print(result.text)
        return True

    def prompt(self) -> str:
        return RECORDING_PROMPT if recording_badge(self.lab) else PROMPT

    def start_recording(self, path: str, *, force: bool = False) -> bool:
        """``record start PATH`` before anything else; False (and one line
        on stderr) if the file cannot be written."""
        if not force and os.path.lexists(path):
            print(f"netlab: {path} exists — pick another name, or add --force to replace it", file=sys.stderr)
            return False
        words = ["record", "start", path] + (["--force"] if force else [])
        try:
            (result,) = self.interp.execute(shlex.join(words), 10)
        except LabError as exc:
            print(f"netlab: {exc}", file=sys.stderr)
            return False
        print(result.text)
        return True

    def interrupt(self) -> None:
        """Ctrl-C while a command runs: cancel it (the reactor goes on)."""
        if self._running is not None:
            self._running.cancel()

    async def main(self, script: str | None = None) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.interrupt)
        session: PromptSession[str] = PromptSession(
            history=open_history("console_history"),
            completer=CommandCompleter(self.interp),
            complete_while_typing=False,
            bottom_toolbar=self.toolbar,
            refresh_interval=0.5,
        )
        print("netlab console: `help` lists the commands; Tab completes; Ctrl-D or `exit` leaves.")
        with patch_stdout(raw=True):
            if script and not await self.run_line(script):
                return 0
            while True:
                try:
                    # our SIGINT handler stays: Ctrl-C at the prompt is a key, not a signal
                    line = await session.prompt_async(self.prompt, handle_sigint=False)
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                except EOFError:
                    return 0
                if not await self.run_line(line):
                    return 0

    async def main_without_terminal(self, script: str | None = None) -> int:
        """Statements from a pipe, one a line, without prompt or toolbar."""
        code = 0
        lines = [script] if script else []
        for line in [*lines, *sys.stdin]:
            text = line.strip()
            if text in EXIT_WORDS:
                break
            try:
                for result in await self.interp.aexecute(text):
                    if result.text:
                        print(result.text, flush=True)
            except LabError as exc:
                print(f"error: {exc}", flush=True)
                code = 1
        return code

    def close(self) -> None:
        ended = finish_recording(self.interp)
        if ended:
            print(ended)
        self.echo.close()
        self.lab.close()


def run_console(*, loop: str = "asyncio", events: str = "all", show_bytes: bool = False,
                script: str | None = None, record: str | None = None, force: bool = False,
                keep_secrets: bool = False) -> int:
    """Run the console until the user leaves; returns the exit code.
    ``record``: record the session as a scenario in that file;
    ``keep_secrets``: files get secrets in clear."""
    lab = Lab.start(loop=loop, keep_secrets=keep_secrets)
    console = Console(lab, events=events, show_bytes=show_bytes)
    try:
        if record is not None and not console.start_recording(record, force=force):
            return 2
        if sys.stdin.isatty() and sys.stdout.isatty():
            return asyncio.run(console.main(script))
        return asyncio.run(console.main_without_terminal(script))
    finally:
        console.close()
