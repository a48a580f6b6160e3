"""The telnet client verbs: read and send NVT text, log in, run console
statements, and negotiate options the way a terminal would.

The client answers the server's negotiation as each message arrives,
whether or not a verb is reading (so raw ``send``/``expect`` work too):
it agrees to SGA both ways, reports its window (NAWS) and terminal type
(TTYPE) when asked, answers every DO TM, and refuses the rest.  It
refuses server echo unless ``configure(echo=True)``: a program wants to
read what the server says, not its own input back.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

from lab.errors import ConnectionClosed, LabError, LabTimeout, RemoteProtocolError
from lab.protocols._base import Message
from lab.protocols._session import Channel, ClientVerbs
from lab.protocols._verbs import Deadline
from lab.protocols.telnet._codec import (
    ECHO,
    NAWS,
    SGA,
    TTYPE,
    Command,
    Line,
    Negotiation,
    Subnegotiation,
    Text,
    option_code,
)
from lab.protocols.telnet._negotiation import Change, Negotiator, Side
from lab.protocols.telnet._options import Negotiate, TelnetClientOptions
from lab.protocols.telnet._server import PROMPT

__all__ = ["MAX_BUFFER", "TelnetClient"]

MAX_BUFFER = 1024 * 1024  # text read_until keeps while looking for its pattern
_REQUESTS = {"DO": (Side.HIM, True), "DONT": (Side.HIM, False),
             "WILL": (Side.US, True), "WONT": (Side.US, False)}
_ENDINGS = {b"\r\n": "\n", b"\n": "\n", b"\r\0": "\r", b"\r": "\r"}
_NAWS_AGREED = Change(Side.US, NAWS, True)
_REFUSED = re.compile(r"(?i:login incorrect|access denied|authentication failed|goodbye)")

Pattern = str | bytes | re.Pattern[str]


def _describe(pattern: str | re.Pattern[str]) -> str:
    return f"/{pattern.pattern}/" if isinstance(pattern, re.Pattern) else repr(pattern)


class TelnetClient(ClientVerbs[TelnetClientOptions]):
    """Verbs for talking to a telnet server.

    Text the server sends collects in a buffer that :meth:`read_until`,
    :meth:`read_line` and :meth:`read_all` consume; line ends (CR LF) read
    as ``\\n``.
    """

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.negotiator = Negotiator(local={NAWS, TTYPE, SGA}, remote={SGA})
        self.terminals: list[str] = ["dumb"]
        self.window = (80, 24)
        self._ttype_turn = 0
        self._buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._outbox: deque[Message] = deque()  # answers not yet sent, in order
        self._flusher: asyncio.Task[None] | None = None
        self.manual = False  # the negotiate=manual client option

    def set_options(self, options: TelnetClientOptions) -> None:
        """``terminal`` (types in order), ``width``/``height`` and
        ``negotiate`` (manual: nothing is answered for the user)."""
        super().set_options(options)
        if options.terminal:
            self.terminals = list(options.terminal)
        self.window = (options.width, options.height)
        self.manual = options.negotiate is Negotiate.MANUAL

    # -- what arrives, as it arrives -----------------------------------------

    def message_received(self, msg: Message) -> None:
        """Negotiation on the reactor thread, before any verb or ``expect``
        sees the message: the RFC 1143 answer, our window once NAWS is
        agreed, the next terminal type for each TTYPE SEND."""
        if self.manual:
            return
        if isinstance(msg, Negotiation):
            outcome = self.negotiator.receive(msg)
            replies: list[Message] = list(outcome.replies)
            if outcome.change == _NAWS_AGREED:
                replies.append(Subnegotiation.naws(*self.window))
            self._send_soon(replies)
        elif isinstance(msg, Subnegotiation) and msg.asks_terminal and self.negotiator.here(TTYPE):
            self._send_soon([Subnegotiation.ttype_is(self._next_terminal())])
        # commands (GA, NOP, DM, ...) need no answer from a client

    def _send_soon(self, msgs: list[Message]) -> None:
        if not msgs:
            return
        self._outbox.extend(msgs)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            await self._drain()
        except LabError:
            self._outbox.clear()  # the server left; the next read says so
        finally:
            self._flusher = None

    async def _drain(self) -> None:
        while self._outbox:
            await self.channel.send(self._outbox.popleft())

    async def _send(self, *msgs: Message) -> None:
        """Send after the answers still waiting, so that a new window size
        never goes out before an older one."""
        self._outbox.extend(msgs)
        try:
            await self._drain()
        except LabError:
            self._outbox.clear()
            raise

    def _take(self, msg: Message) -> None:
        """Add the text of ``msg`` to the buffer (negotiation is answered
        by :meth:`message_received`)."""
        if isinstance(msg, (Text, Line)):
            text = self._decoder.decode(msg.data.replace(b"\0", b""))  # NUL is a no-op on the NVT
            if isinstance(msg, Line):
                text += self._decoder.decode(b"", final=True) + _ENDINGS.get(msg.ending, "\n")
            if text.startswith("\n") and self._buffer.endswith("\r"):
                self._buffer = self._buffer[:-1]  # a CR LF that TCP split in two
            self._buffer += text

    def _next_terminal(self) -> str:
        # RFC 1091: each SEND gets the next type; the last is sent twice to
        # mark the end of the list, then the cycle starts over
        turn = self._ttype_turn
        self._ttype_turn = (turn + 1) % (len(self.terminals) + 1)
        return self.terminals[min(turn, len(self.terminals) - 1)]

    def _find(self, pattern: str | re.Pattern[str]) -> int | None:
        """The end of the first match in the buffer."""
        if isinstance(pattern, re.Pattern):
            found = pattern.search(self._buffer)
            return found.end() if found else None
        at = self._buffer.find(pattern)
        return at + len(pattern) if at >= 0 else None

    def _tail(self) -> str:
        return repr(self._buffer[-200:]) if self._buffer else "nothing"

    # -- reading ------------------------------------------------------------

    async def read_until(self, pattern: Pattern, timeout: float | None = 10.0) -> str:
        """The text up to and including the first match of ``pattern`` (a
        substring or a compiled regex), taken out of the buffer.

        :class:`LabTimeout` or :class:`ConnectionClosed` say what did
        arrive; :class:`RemoteProtocolError` once more than 1 MiB came
        without a match.
        """
        if isinstance(pattern, bytes):
            pattern = pattern.decode("utf-8", "replace")
        if isinstance(pattern, str) and not pattern:
            raise LabError("telnet: read_until needs a pattern", hint="e.g. read_until('login: ')")
        deadline = Deadline(timeout)
        while True:
            end = self._find(pattern)
            if end is not None:
                found, self._buffer = self._buffer[:end], self._buffer[end:]
                return found
            if len(self._buffer) > MAX_BUFFER:
                self._buffer = ""
                raise RemoteProtocolError(f"telnet: more than {MAX_BUFFER} bytes without {_describe(pattern)}")
            try:
                msg = await self.channel.receive(deadline.left())
            except LabTimeout:
                raise LabTimeout(f"telnet: {_describe(pattern)} did not arrive within {timeout} s;"
                                 f" got {self._tail()}") from None
            except ConnectionClosed:
                raise ConnectionClosed(f"telnet: the server closed before {_describe(pattern)};"
                                       f" got {self._tail()}") from None
            self._take(msg)

    async def read_line(self, timeout: float | None = 10.0) -> str:
        """The next line of text, without its end."""
        return (await self.read_until("\n", timeout))[:-1].rstrip("\r")

    async def read_all(self, timeout: float | None = 10.0) -> str:
        """Everything until the server closes (with what was buffered)."""
        deadline = Deadline(timeout)
        while True:
            try:
                msg = await self.channel.receive(deadline.left())
            except ConnectionClosed:
                break
            except LabTimeout:
                raise LabTimeout(f"telnet: the server did not close within {timeout} s;"
                                 f" got {self._tail()}") from None
            self._take(msg)
            if len(self._buffer) > MAX_BUFFER:
                raise RemoteProtocolError(f"telnet: more than {MAX_BUFFER} bytes before the server closed")
        text, self._buffer = self._buffer, ""
        return text

    async def negotiate(self, quiet: float = 0.3, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until the server has been quiet for ``quiet`` seconds (at
        most ``timeout``), so that its negotiation is over; text that comes
        meanwhile stays buffered.  Returns :meth:`negotiated`."""
        deadline = Deadline(timeout)
        while (left := deadline.left()) is None or left > 0:
            wait = quiet if left is None else min(quiet, left)
            try:
                msg = await self.channel.receive(wait)
            except (LabTimeout, ConnectionClosed):
                break
            self._take(msg)
        return await self.negotiated()

    async def negotiated(self) -> dict[str, Any]:
        """The options in force on each side, the window and terminal types
        we report, and the text waiting in the buffer."""
        state = self.negotiator.summary()
        return {"we": state["us"], "server": state["him"],
                "window": f"{self.window[0]}x{self.window[1]}", "terminals": list(self.terminals),
                "buffered": len(self._buffer)}

    # -- sending ------------------------------------------------------------

    async def send_line(self, text: str | bytes) -> None:
        """One line, IAC escaped, ended by CR LF."""
        await self.channel.send(Line.of(text))

    async def send_text(self, text: str | bytes) -> None:
        """Text without a line end (keystrokes)."""
        await self.channel.send(Text.of(text))

    async def send_raw(self, data: bytes | str) -> None:
        """Bytes exactly as given: nothing escaped (for hostile tests and
        hand-made commands)."""
        await self.channel.send_raw(data.encode("utf-8") if isinstance(data, str) else bytes(data))

    async def send_command(self, name: str) -> None:
        """A two-byte command: AYT, IP, BRK, AO, EC, EL, NOP, GA..."""
        await self.channel.send(Command.of(name))

    async def request(self, verb: str, option: str | int) -> list[str]:
        """Ask for an option change by the RFC 1143 rules: ``DO``/``DONT``
        (the server's side) or ``WILL``/``WONT`` (ours), e.g.
        ``request("DO", "ECHO")``.  Returns what was sent (nothing when the
        option is already so or a request is out)."""
        try:
            side, enable = _REQUESTS[verb.strip().upper()]
        except KeyError:
            raise LabError(f"telnet: {verb!r} is not DO, DONT, WILL or WONT") from None
        code = option_code(option)
        policy = self.negotiator.local if side is Side.US else self.negotiator.remote
        (policy.add if enable else policy.discard)(code)  # and keep agreeing to it
        msgs = self.negotiator.request(side, code, enable)
        await self._send(*msgs)
        return [msg.summary() for msg in msgs]

    async def configure(self, *, terminal: str | Sequence[str] | None = None, width: int | None = None,
                        height: int | None = None, echo: bool | None = None) -> dict[str, Any]:
        """Change what we report and accept: ``terminal`` (a type or a list,
        RFC 1091), the window ``width``/``height`` (sent at once when NAWS
        is in force), and ``echo`` (let the server echo our input)."""
        if terminal is not None:
            types = [terminal] if isinstance(terminal, str) else list(terminal)
            for name in types:
                Subnegotiation.ttype_is(name)  # refuses what cannot be sent
            if not types:
                raise LabError("telnet: give at least one terminal type")
            self.terminals, self._ttype_turn = types, 0
        if width is not None or height is not None:
            size = (self.window[0] if width is None else width, self.window[1] if height is None else height)
            message = Subnegotiation.naws(*size)  # refuses sizes NAWS cannot carry
            self.window = size
            if self.negotiator.here(NAWS):
                await self._send(message)
        if echo is not None:
            await self.request("DO" if echo else "DONT", ECHO)
        return await self.negotiated()

    # -- sessions -----------------------------------------------------------

    async def login(self, password: str, *, user: str | None = None, prompt: str = PROMPT,
                    timeout: float = 15.0) -> str:
        """Log in: answer ``login:`` with ``user`` (if given) and
        ``Password:`` with ``password``, then wait for ``prompt``.  Returns
        what the server said before the prompt; :class:`LabError` when the
        server says the login failed."""
        deadline = Deadline(timeout)
        if user is not None:
            await self.read_until(re.compile(r"(?i)(login|user ?name)\s*:"), deadline.left())
            await self.send_line(user)
        await self.read_until(re.compile(r"(?i)password\s*:"), deadline.left())
        await self.send_line(password)
        either = re.compile(f"{re.escape(prompt)}|{_REFUSED.pattern}")
        said = await self.read_until(either, deadline.left())
        if not said.endswith(prompt):
            raise LabError(f"telnet: login refused: {said.strip().splitlines()[-1]}",
                           hint="check the password")
        return said[: -len(prompt)].strip()

    async def run(self, statement: str, *, prompt: str = PROMPT, timeout: float = 30.0) -> str:
        """Send one line to a shell-like server and return its output up to
        the next ``prompt``, without the prompt, the echo of the line (when
        the server echoes) and blank lines around it."""
        await self.send_line(statement)
        output = (await self.read_until(prompt, timeout))[: -len(prompt)]
        first, _, rest = output.partition("\n")
        if first.rstrip("\r") == statement.rstrip():
            output = rest
        return output.strip("\r\n")  # and the line end many servers echo for Enter

    def __repr__(self) -> str:
        state = self.negotiator.summary()
        return f"<TelnetClient we={state['us']} server={state['him']}>"
