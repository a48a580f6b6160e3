"""SMTP client verbs: ``send_mail`` and one verb per command.

Tests: tests/protocols/test_smtp.py, tests/protocols/test_smtp_hardening.py,
tests/interop/test_smtp_peers.py
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from email.message import Message as EmailMessage

from lab.errors import LabError, LocalProtocolError
from lab.protocols._base import Message
from lab.protocols._session import Channel
from lab.protocols._verbs import Deadline, GreetedClient
from lab.protocols.smtp._codec import AuthResponse, Command, MailData, Reply

__all__ = ["SmtpClient", "SmtpReplyError"]


class SmtpReplyError(LabError):
    """The server answered with an error (4xx or 5xx); ``reply`` is its
    answer."""

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(f"{message}: {reply.summary()}")
        self.reply = reply


class SmtpClient(GreetedClient[Reply]):
    """Verbs for talking to an SMTP server.

    Each command verb sends one command and returns the server's
    :class:`Reply`, whatever its code; :meth:`send_mail` runs a whole
    transaction and raises :class:`SmtpReplyError` when the server
    refuses a step.  The greeting is read by the first verb.
    """

    reply_type = Reply
    reply_noun = "an SMTP reply"
    extensions: dict[str, str] | None = None  # from the last EHLO: keyword -> parameters
    refused: dict[str, Reply]  # recipients the last send_mail could not reach

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.refused = {}

    async def _ask(self, msg: Message, timeout: float, what: str) -> Reply:
        deadline = Deadline(timeout)
        await self._greeted(deadline)
        await self.channel.send(msg)
        return await self._next_reply(deadline, what)

    async def command(self, line: str, *, timeout: float = 30.0) -> Reply:
        """Send any command line as it is (``"VRFY alice"``) and return the reply."""
        verb, _, arg = line.strip().partition(" ")
        return await self._ask(Command.of(verb, arg), timeout, f"the reply to {verb}")

    async def wait_greeting(self, *, timeout: float = 30.0) -> Reply:
        """The server's 220 greeting (read once, then remembered)."""
        return await self._greeted(Deadline(timeout))

    async def helo(self, name: str = "client.lab.test", *, timeout: float = 30.0) -> Reply:
        return await self._ask(Command.of("HELO", name), timeout, "the reply to HELO")

    async def ehlo(self, name: str = "client.lab.test", *, timeout: float = 30.0) -> Reply:
        """EHLO; on success :attr:`extensions` holds what the server offers."""
        reply = await self._ask(Command.of("EHLO", name), timeout, "the reply to EHLO")
        if reply.code == 250:
            self.extensions = {}
            for line in reply.lines[1:]:
                word, _, params = line.partition(" ")
                self.extensions[word.upper()] = params
        return reply

    async def mail(self, sender: str, *, size: int | None = None, body: str | None = None,
                   timeout: float = 30.0) -> Reply:
        """MAIL FROM:<sender> [SIZE=size] [BODY=body] (``7BIT`` or ``8BITMIME``, RFC 6152)"""
        arg = (f"FROM:<{sender}>" + (f" SIZE={size}" if size is not None else "")
               + (f" BODY={body}" if body is not None else ""))
        return await self._ask(Command.of("MAIL", arg), timeout, "the reply to MAIL")

    async def rcpt(self, recipient: str, *, timeout: float = 30.0) -> Reply:
        """RCPT TO:<recipient>"""
        return await self._ask(Command.of("RCPT", f"TO:<{recipient}>"), timeout, "the reply to RCPT")

    async def data(self, message: bytes | str | EmailMessage, *, timeout: float = 60.0) -> Reply:
        """DATA, then (after 354) the message, dot-stuffed; returns the
        reply to the message, or the refusal of DATA.  The message goes
        as it is given, 8-bit or not: :meth:`send_mail` is the verb that
        checks it against what the server offers."""
        deadline = Deadline(timeout)
        reply = await self._ask(Command.of("DATA"), timeout, "the reply to DATA")
        if reply.code != 354:
            return reply
        await self.channel.send(MailData.of(message))
        return await self._next_reply(deadline, "the reply to the message")

    async def rset(self, *, timeout: float = 30.0) -> Reply:
        return await self._ask(Command.of("RSET"), timeout, "the reply to RSET")

    async def noop(self, *, timeout: float = 30.0) -> Reply:
        return await self._ask(Command.of("NOOP"), timeout, "the reply to NOOP")

    async def vrfy(self, name: str, *, timeout: float = 30.0) -> Reply:
        return await self._ask(Command.of("VRFY", name), timeout, "the reply to VRFY")

    async def help(self, *, timeout: float = 30.0) -> Reply:
        return await self._ask(Command.of("HELP"), timeout, "the reply to HELP")

    async def auth(self, user: str, password: str, *, mechanism: str = "PLAIN",
                   timeout: float = 30.0) -> Reply:
        """AUTH PLAIN (initial response) or AUTH LOGIN (two challenges)."""
        deadline = Deadline(timeout)
        mech = mechanism.upper()
        if mech == "PLAIN":
            token = base64.b64encode(b"\x00" + user.encode() + b"\x00" + password.encode()).decode()
            return await self._ask(Command.of("AUTH", f"PLAIN {token}"), timeout, "the reply to AUTH")
        if mech != "LOGIN":
            raise LabError(f"smtp: mechanism {mechanism!r} is not one this client speaks",
                           hint="use PLAIN or LOGIN")
        reply = await self._ask(Command.of("AUTH", "LOGIN"), timeout, "the reply to AUTH")
        for answer in (user, password):
            if reply.code != 334:
                return reply
            await self.channel.send(AuthResponse.of(answer.encode()))
            reply = await self._next_reply(deadline, "the reply to a SASL response")
        return reply

    async def quit(self, *, timeout: float = 30.0) -> Reply:
        """QUIT, and wait for the server to close."""
        reply = await self._ask(Command.of("QUIT"), timeout, "the reply to QUIT")
        await self.channel.wait_closed(timeout)
        return reply

    async def send_mail(self, sender: str, to: str | Sequence[str], message: bytes | str | EmailMessage, *,
                        user: str | None = None, password: str | None = None,
                        helo: str = "client.lab.test", timeout: float = 60.0) -> Reply:
        """Send one message (bytes, text, or an :mod:`email` message):
        EHLO (HELO if refused) unless done already,
        AUTH if ``user`` is given, MAIL, RCPT for each of ``to``, DATA.

        Commands are pipelined when the server offers PIPELINING.  A
        message with 8-bit bytes goes with ``BODY=8BITMIME`` (RFC 6152
        §3); to a server that does not offer 8BITMIME it is not sent at
        all: :class:`LocalProtocolError`, before MAIL.
        Returns the server's acceptance (``250 ... queued as ...``); as
        with smtplib, recipients the server refused while accepting others
        are left in :attr:`refused`.  :class:`SmtpReplyError` when the
        server refuses the sender, every recipient or the message (the
        transaction is then reset, the connection stays open).
        """
        deadline = Deadline(timeout)
        recipients = [to] if isinstance(to, str) else list(to)
        if not recipients:
            raise LabError("send_mail needs at least one recipient")
        await self._greeted(deadline)
        if not self.greeting or self.greeting.code != 220:
            raise SmtpReplyError("the server does not take mail", self.greeting or Reply.of(554))
        if self.extensions is None:
            reply = await self.ehlo(helo, timeout=deadline.left() or timeout)
            if reply.code != 250:
                reply = await self.helo(helo, timeout=deadline.left() or timeout)
                if reply.code != 250:
                    raise SmtpReplyError("HELO refused", reply)
                self.extensions = {}
        content = MailData.of(message)
        offered = self.extensions or {}
        # BODY=8BITMIME only on 8-bit content: a 7-bit message's MAIL stays
        # as plain as it was, and the label then says something
        eight_bit = not content.raw.isascii()
        if eight_bit and "8BITMIME" not in offered:
            raise LocalProtocolError(
                "smtp: the message has 8-bit bytes and the server does not offer 8BITMIME "
                "(RFC 6152 §3): nothing sent",
                hint="encode it as 7-bit (e.g. an email message with set_content(text, cte='quoted-printable'))")
        if user is not None:
            reply = await self.auth(user, password or "", timeout=deadline.left() or timeout)
            if reply.code != 235:
                raise SmtpReplyError("authentication failed", reply)
        size = len(content.content) if "SIZE" in offered else None
        commands = [Command.of("MAIL", f"FROM:<{sender}>" + (f" SIZE={size}" if size is not None else "")
                               + (" BODY=8BITMIME" if eight_bit else ""))]
        commands += [Command.of("RCPT", f"TO:<{r}>") for r in recipients]
        commands.append(Command.of("DATA"))
        pipelined = "PIPELINING" in (self.extensions or {})
        replies: list[Reply] = []
        for cmd in commands[:-1] if not pipelined else commands:  # RFC 2920: DATA ends a group
            await self.channel.send(cmd)
            if not pipelined:
                replies.append(await self._next_reply(deadline, f"the reply to {cmd.verb}"))
                if not replies[0].ok:
                    break
        if pipelined:
            replies = [await self._next_reply(deadline, f"the reply to {c.verb}") for c in commands]
        elif replies[0].ok and any(r.ok for r in replies[1:]):
            await self.channel.send(commands[-1])
            replies.append(await self._next_reply(deadline, "the reply to DATA"))
        self.refused = {r: rep for r, rep in zip(recipients, replies[1:len(commands) - 1], strict=False)
                        if not rep.ok}
        if len(replies) < len(commands) or replies[-1].code != 354:
            cmd, reply = next(((c, r) for c, r in zip(commands, replies, strict=False) if not r.ok),
                              (commands[-1], replies[-1]))
            if reply.code != 421:
                await self.rset(timeout=deadline.left() or timeout)
            raise SmtpReplyError(f"{cmd.verb} {cmd.arg}".strip() + " refused", reply)
        if not replies[0].ok or len(self.refused) == len(recipients):
            await self.channel.send(MailData.of(b""))  # the server opened DATA all the same
            await self._next_reply(deadline, "the reply to the message")
            raise SmtpReplyError("no recipient accepted", replies[0] if not replies[0].ok else replies[1])
        await self.channel.send(content)
        reply = await self._next_reply(deadline, "the reply to the message")
        if not reply.ok:
            raise SmtpReplyError("message refused", reply)
        return reply
