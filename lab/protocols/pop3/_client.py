"""POP3 client verbs: one per command, plus ``login`` and ``fetch_all``.

A long body arrives after its reply in parts; the verbs gather them, up
to :attr:`Pop3Client.max_body` octets.

Tests: tests/protocols/test_pop3.py, tests/interop/test_pop3_peers.py
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib

from lab.errors import LabError, RemoteProtocolError
from lab.protocols._framing import BodyEnd, BodyPart
from lab.protocols._verbs import Deadline, GreetedClient
from lab.protocols.pop3._messages import Pop3Command, Pop3Reply

__all__ = ["MAX_BODY", "Pop3Client", "Pop3ReplyError"]

MAX_BODY = 64 * 1024 * 1024  # a client stops keeping a multi-line body beyond this


class Pop3ReplyError(LabError):
    """The server answered ``-ERR``; ``reply`` is its answer."""

    def __init__(self, message: str, reply: Pop3Reply) -> None:
        super().__init__(f"{message}: {reply.summary()}")
        self.reply = reply


class Pop3Client(GreetedClient[Pop3Reply]):
    """Verbs for talking to a POP3 server.

    Each verb sends one command and returns the server's
    :class:`Pop3Reply` (or a value read from it); a ``-ERR`` raises
    :class:`Pop3ReplyError`, except from :meth:`command`, which returns
    any reply.  The greeting is read by the first verb.
    """

    reply_type = Pop3Reply
    reply_noun = "a POP3 response"

    max_body: int = MAX_BODY  # octets of a body kept; a longer one is read to its end and refused

    async def _exchange(self, verb: str, *args: str | int, timeout: float,
                        check: bool = True) -> tuple[Pop3Reply, Deadline]:
        deadline = Deadline(timeout)
        await self._greeted(deadline)
        await self.channel.send(Pop3Command.of(verb, *args))
        reply = await self._next_reply(deadline, f"the reply to {verb}")
        if check and not reply.ok:
            raise Pop3ReplyError(f"{verb} refused", reply)
        return reply, deadline

    async def _ask(self, verb: str, *args: str | int, timeout: float, check: bool = True) -> Pop3Reply:
        """The reply to a command, whole (a body in parts gathered into it)."""
        reply, deadline = await self._exchange(verb, *args, timeout=timeout, check=check)
        if not reply.streamed:
            return reply
        raw: builtins.list[bytes] = [reply.raw]
        body = await self._body(reply, deadline, raw)
        return dataclasses.replace(reply, raw=b"".join(raw), body=body, streamed=False)

    async def _fetch(self, verb: str, *args: str | int, timeout: float) -> bytes:
        """The body of the reply to a command (RETR, TOP)."""
        reply, deadline = await self._exchange(verb, *args, timeout=timeout)
        return await self._body(reply, deadline)

    async def _body(self, reply: Pop3Reply, deadline: Deadline, raw: builtins.list[bytes] | None = None) -> bytes:
        """The body of ``reply``: its own, or the parts that follow it up to
        the end; ``raw`` collects their wire bytes.  A body over
        :attr:`max_body` is read to its end, so the next reply is in step,
        and refused."""
        if not reply.streamed:
            return reply.body or b""
        what = f"the rest of the reply to {reply.reply_to or 'the command'}"
        kept: builtins.list[bytes] = []
        size = 0
        while True:
            msg = await deadline.receive(self.channel, what)
            if not isinstance(msg, (BodyPart, BodyEnd)):
                raise RemoteProtocolError(f"expected {what}, got {msg.summary()}")
            if raw is not None and size <= self.max_body:
                raw.append(msg.raw)
            if isinstance(msg, BodyEnd):
                break
            size += len(msg.content)
            if size <= self.max_body:
                kept.append(msg.content)
            elif kept:
                kept.clear()  # too large: count the rest, keep none of it
        if size > self.max_body:
            raise RemoteProtocolError(
                f"pop3: the reply to {reply.reply_to or 'the command'} has a body of {size} octets, "
                f"more than {self.max_body}", hint="raise Pop3Client.max_body to read it")
        return b"".join(kept)

    async def command(self, line: str, *, timeout: float = 30.0) -> Pop3Reply:
        """Send any command line (``"LIST 1"``) and return the reply, +OK or -ERR."""
        verb, *args = line.strip().split(" ")
        return await self._ask(verb, *args, timeout=timeout, check=False)

    async def wait_greeting(self, *, timeout: float = 30.0) -> Pop3Reply:
        """The server's +OK greeting (read once, then remembered)."""
        return await self._greeted(Deadline(timeout))

    async def capa(self, *, timeout: float = 30.0) -> list[str]:
        """CAPA: the capability lines."""
        return (await self._ask("CAPA", timeout=timeout)).lines

    async def user(self, name: str, *, timeout: float = 30.0) -> Pop3Reply:
        return await self._ask("USER", name, timeout=timeout)

    async def pass_(self, password: str, *, timeout: float = 30.0) -> Pop3Reply:
        """PASS (``pass`` is a Python keyword, hence the underscore)."""
        return await self._ask("PASS", password, timeout=timeout)

    async def login(self, name: str, password: str, *, timeout: float = 30.0) -> Pop3Reply:
        """USER then PASS; returns the reply to PASS."""
        await self.user(name, timeout=timeout)
        return await self.pass_(password, timeout=timeout)

    async def apop(self, name: str, password: str, *, timeout: float = 30.0) -> Pop3Reply:
        """APOP with the digest of the greeting's timestamp and ``password``."""
        greeting = await self._greeted(Deadline(timeout))
        if greeting.timestamp is None:
            raise LabError("pop3: the greeting has no timestamp, so the server does not offer APOP",
                           hint="use login(name, password)")
        digest = hashlib.md5((greeting.timestamp + password).encode()).hexdigest()
        return await self._ask("APOP", name, digest, timeout=timeout)

    async def stat(self, *, timeout: float = 30.0) -> tuple[int, int]:
        """STAT: (number of messages, total octets)."""
        reply = await self._ask("STAT", timeout=timeout)
        try:
            count, size = reply.info.split()[:2]
            return int(count), int(size)
        except ValueError:
            raise RemoteProtocolError(f"STAT reply is not 'count size': {reply.info!r}") from None

    async def list(self, msg: int | None = None, *, timeout: float = 30.0) -> dict[int, int]:
        """LIST: message number -> size in octets (one entry with ``msg``)."""
        reply = await self._ask("LIST", *([msg] if msg is not None else []), timeout=timeout)
        lines = [reply.info] if msg is not None else reply.lines
        return {int(n): int(s) for n, s in (line.split()[:2] for line in lines)}

    async def uidl(self, msg: int | None = None, *, timeout: float = 30.0) -> dict[int, str]:
        """UIDL: message number -> unique id."""
        reply = await self._ask("UIDL", *([msg] if msg is not None else []), timeout=timeout)
        lines = [reply.info] if msg is not None else reply.lines
        return {int(n): uid for n, uid in (line.split()[:2] for line in lines)}

    async def retr(self, msg: int, *, timeout: float = 60.0) -> bytes:
        """RETR: the message's bytes (CRLF line ends)."""
        return await self._fetch("RETR", msg, timeout=timeout)

    async def top(self, msg: int, lines: int = 0, *, timeout: float = 30.0) -> bytes:
        """TOP: the header and the first ``lines`` lines of the body."""
        return await self._fetch("TOP", msg, lines, timeout=timeout)

    async def dele(self, msg: int, *, timeout: float = 30.0) -> Pop3Reply:
        """DELE: mark for deletion (done at QUIT)."""
        return await self._ask("DELE", msg, timeout=timeout)

    async def rset(self, *, timeout: float = 30.0) -> Pop3Reply:
        return await self._ask("RSET", timeout=timeout)

    async def noop(self, *, timeout: float = 30.0) -> Pop3Reply:
        return await self._ask("NOOP", timeout=timeout)

    async def quit(self, *, timeout: float = 30.0) -> Pop3Reply:
        """QUIT (deletions happen now), and wait for the server to close."""
        reply = await self._ask("QUIT", timeout=timeout)
        await self.channel.wait_closed(timeout)
        return reply

    async def fetch_all(self, *, delete: bool = False, timeout: float = 60.0) -> builtins.list[bytes]:
        """RETR every message (after login), DELE each with ``delete``."""
        out = []
        for n in await self.list(timeout=timeout):
            out.append(await self.retr(n, timeout=timeout))
            if delete:
                await self.dele(n, timeout=timeout)
        return out
