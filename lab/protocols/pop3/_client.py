"""POP3 client verbs: one per command, plus ``login`` and ``fetch_all``.

Tests: tests/protocols/test_pop3.py, tests/interop/test_pop3_peers.py
"""

from __future__ import annotations

import builtins
import hashlib

from lab.errors import LabError, RemoteProtocolError
from lab.protocols._verbs import Deadline, GreetedClient
from lab.protocols.pop3._codec import Pop3Command, Pop3Reply

__all__ = ["Pop3Client", "Pop3ReplyError"]


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

    async def _ask(self, verb: str, *args: str | int, timeout: float, check: bool = True) -> Pop3Reply:
        deadline = Deadline(timeout)
        await self._greeted(deadline)
        await self.channel.send(Pop3Command.of(verb, *args))
        reply = await self._next_reply(deadline, f"the reply to {verb}")
        if check and not reply.ok:
            raise Pop3ReplyError(f"{verb} refused", reply)
        return reply

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
        reply = await self._ask("RETR", msg, timeout=timeout)
        return reply.body or b""

    async def top(self, msg: int, lines: int = 0, *, timeout: float = 30.0) -> bytes:
        """TOP: the header and the first ``lines`` lines of the body."""
        reply = await self._ask("TOP", msg, lines, timeout=timeout)
        return reply.body or b""

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
