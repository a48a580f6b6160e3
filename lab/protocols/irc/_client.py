"""The IRC client verbs: ``nick``, ``join``, ``say``, ``part``, ``quit``,
``raw`` and friends.

Behind the verbs the client keeps itself alive the way IRC clients do:
it answers the server's PING and CTCP VERSION and PING requests as the
messages arrive, whether or not a verb is waiting.

Tests: tests/protocols/test_irc.py, tests/interop/test_irc_peers.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from lab.errors import ConnectionClosed, LabError, LocalProtocolError
from lab.protocols._base import Message
from lab.protocols._session import Channel, ClientVerbs
from lab.protocols._verbs import Deadline
from lab.protocols.irc._codec import MAX_MESSAGE, NUMERICS, IrcMessage
from lab.protocols.irc._session import VERSION
from lab.services.chat import rfc1459_fold

__all__ = ["IrcClient", "IrcError", "split_text"]

# room left for the ":nick!user@host " a server puts in front when relaying
_PREFIX_ROOM = 1 + 30 + 1 + 10 + 1 + 63 + 1

_NICK_ERRORS = frozenset({431, 432, 433, 436, 437, 484})
_REGISTER_ERRORS = _NICK_ERRORS | {451, 461, 462, 464, 465}
_JOIN_ERRORS = frozenset({403, 405, 437, 461, 471, 473, 474, 475, 476})
_PART_ERRORS = frozenset({403, 442, 461})
_CTCP_ANSWERS, _CTCP_WINDOW = 4, 10.0  # CTCP answers per window of seconds


class IrcError(LabError):
    """The server refused what a verb asked; ``reply`` is its answer."""

    def __init__(self, reply: IrcMessage | None, what: str) -> None:
        if reply is None:
            text = what
        else:
            name = NUMERICS.get(reply.command, reply.command)
            text = f"{what}: {reply.command} {name}: {reply.last}"
        super().__init__(text)
        self.reply = reply


def split_text(text: str, budget: int) -> list[str]:
    """``text`` as lines of at most ``budget`` UTF-8 bytes, cut at line
    breaks, then at spaces where one is near, never inside a character."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        data = line.encode("utf-8")
        while len(data) > budget:
            cut = budget
            while cut and (data[cut] & 0xC0) == 0x80:  # not in the middle of a character
                cut -= 1
            space = data.rfind(b" ", 0, cut)
            if space > budget // 2:
                cut = space
            out.append(data[:cut].decode("utf-8"))
            data = data[cut:].lstrip(b" ")
        out.append(data.decode("utf-8"))
    return [line for line in out if line] or [""]


class IrcClient(ClientVerbs[Any]):
    """Verbs for talking to an IRC server (RFC 1459/2812)."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.nickname = ""
        self.registered = False
        self._user_sent = False
        self.channels: dict[str, str] = {}  # folded -> as the server spells it
        self.isupport: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ctcp_answered: list[float] = []  # when, for the rate limit

    # -- what arrives, as it arrives ------------------------------------------

    def message_received(self, msg: Message) -> None:
        """Keep-alive and bookkeeping on the reactor thread: PONG every
        PING, answer CTCP VERSION and PING, follow our nick and channels."""
        if not isinstance(msg, IrcMessage):
            return
        command = msg.command
        if command == "PING":
            self._send_soon(IrcMessage.of("PONG", *(msg.params[:1] or [""])))
        elif command == "001" and msg.params:
            self.nickname, self.registered = msg.params[0], True
        elif command == "005":
            for token in msg.params[1:-1]:
                key, _, value = token.partition("=")
                self.isupport[key] = value
        elif command == "NICK" and self._is_me(msg.nick) and msg.params:
            self.nickname = msg.params[0]
        elif command == "JOIN" and self._is_me(msg.nick) and msg.params:
            self.channels[rfc1459_fold(msg.params[0])] = msg.params[0]
        elif command == "PART" and self._is_me(msg.nick) and msg.params:
            self.channels.pop(rfc1459_fold(msg.params[0]), None)
        elif command == "KICK" and len(msg.params) > 1 and self._is_me(msg.params[1]):
            self.channels.pop(rfc1459_fold(msg.params[0]), None)
        elif command == "PRIVMSG" and msg.ctcp in ("VERSION", "PING") and msg.nick and self._may_answer_ctcp():
            answer = VERSION if msg.ctcp == "VERSION" else msg.ctcp_args
            try:
                self._send_soon(IrcMessage.ctcp_request("NOTICE", msg.nick, msg.ctcp, answer))
            except LocalProtocolError:
                pass  # a request we cannot echo back goes unanswered

    def _may_answer_ctcp(self) -> bool:
        # a burst of CTCP requests must not make us flood the server for someone else
        now = asyncio.get_running_loop().time()
        self._ctcp_answered = [t for t in self._ctcp_answered if now - t < _CTCP_WINDOW]
        if len(self._ctcp_answered) >= _CTCP_ANSWERS:
            return False
        self._ctcp_answered.append(now)
        return True

    def _is_me(self, nick: str) -> bool:
        return bool(self.nickname) and rfc1459_fold(nick) == rfc1459_fold(self.nickname)

    def _send_soon(self, msg: IrcMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._send_quietly(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_quietly(self, msg: IrcMessage) -> None:
        try:
            await self.channel.send(msg)
        except LabError:
            pass  # the connection closed under the answer

    async def _wait(self, deadline: Deadline, what: str, done: Any, errors: frozenset[int]) -> IrcMessage:
        """Read until ``done(msg)`` or a numeric in ``errors`` (IrcError)
        or an ERROR line (the server is closing)."""
        while True:
            msg = await deadline.receive(self.channel, what)
            if not isinstance(msg, IrcMessage):
                continue
            if done(msg):
                return msg
            if msg.numeric in errors or msg.command == "ERROR":
                raise IrcError(msg, f"irc: {what} refused")

    # -- verbs -----------------------------------------------------------------

    async def nick(self, name: str, *, user: str | None = None, realname: str | None = None,
                   password: str | None = None, timeout: float = 10.0) -> str:
        """Register as ``name`` (PASS, NICK, USER; waits for 001) or, once
        registered, change nick (waits for the server's NICK).  Returns
        the welcome text or the new nick; :class:`IrcError` if refused."""
        deadline = Deadline(timeout)
        if self.registered:
            old = self.nickname
            await self.channel.send(IrcMessage.of("NICK", name))
            await self._wait(deadline, f"NICK {name}", lambda m: m.command == "NICK" and
                             rfc1459_fold(m.nick) == rfc1459_fold(old), _NICK_ERRORS)
            return self.nickname
        if password is not None:
            await self.channel.send(IrcMessage.of("PASS", password))
        self.nickname = name
        await self.channel.send(IrcMessage.of("NICK", name))
        if not self._user_sent:  # after a refused nick, only NICK is tried again
            await self.channel.send(IrcMessage.of("USER", user or name, "0", "*", realname or name))
            self._user_sent = True
        welcome = await self._wait(deadline, f"registration as {name}", lambda m: m.command == "001",
                                   _REGISTER_ERRORS)
        return welcome.last

    async def join(self, channel: str, key: str | None = None, *, timeout: float = 10.0) -> list[str]:
        """Join ``channel`` and return its members as NAMES lists them
        (``@`` operators, ``+`` voiced); :class:`IrcError` if refused."""
        if "," in channel or channel == "0":
            raise LocalProtocolError(f"irc: join one channel per call, not {channel!r}",
                                     hint="call join for each, or send JOIN with raw()")
        deadline = Deadline(timeout)
        await self.channel.send(IrcMessage.of("JOIN", channel, *([key] if key else [])))
        folded = rfc1459_fold(channel)
        names: list[str] = []

        def end_of_names(m: IrcMessage) -> bool:
            if m.command == "353" and len(m.params) >= 4 and rfc1459_fold(m.params[2]) == folded:
                names.extend(m.params[3].split())
            return m.command == "366" and len(m.params) >= 2 and rfc1459_fold(m.params[1]) == folded

        await self._wait(deadline, f"JOIN {channel}", end_of_names, _JOIN_ERRORS)
        return names

    async def say(self, target: str, text: str, *, notice: bool = False) -> int:
        """Send ``text`` to a channel or nick as PRIVMSG (NOTICE with
        ``notice``), split into as many messages as the 512-byte limit
        needs; returns how many were sent."""
        command = "NOTICE" if notice else "PRIVMSG"
        budget = MAX_MESSAGE - 2 - _PREFIX_ROOM - len(f"{command} {target} :".encode())
        if budget < 16:
            raise LocalProtocolError(f"irc: target {target[:40]!r} leaves no room for text")
        lines = split_text(text, budget)
        for line in lines:
            await self.channel.send(IrcMessage.of(command, target, line))
        return len(lines)

    async def act(self, target: str, text: str) -> None:
        """``/me``: a CTCP ACTION to a channel or nick."""
        await self.channel.send(IrcMessage.ctcp_request("PRIVMSG", target, "ACTION", text))

    async def ctcp(self, target: str, command: str, args: str = "", *, timeout: float = 10.0) -> str:
        """Send a CTCP request (VERSION, PING, TIME...) and return the
        arguments of the NOTICE that answers it."""
        deadline = Deadline(timeout)
        await self.channel.send(IrcMessage.ctcp_request("PRIVMSG", target, command, args))
        answer = await self._wait(
            deadline, f"CTCP {command} to {target}",
            lambda m: m.command == "NOTICE" and m.ctcp == command.upper()
            and rfc1459_fold(m.nick) == rfc1459_fold(target), frozenset({401}))
        return answer.ctcp_args

    async def listen(self, *, timeout: float = 10.0) -> IrcMessage:
        """The next PRIVMSG or NOTICE that arrives (other messages are
        passed over; the log keeps them)."""
        return await self._wait(Deadline(timeout), "a PRIVMSG or NOTICE",
                                lambda m: m.command in ("PRIVMSG", "NOTICE"), frozenset())

    async def topic(self, channel: str, text: str | None = None, *, timeout: float = 10.0) -> str:
        """Read the topic of ``channel`` or, with ``text``, set it."""
        deadline = Deadline(timeout)
        folded = rfc1459_fold(channel)
        await self.channel.send(IrcMessage.of("TOPIC", channel, *([] if text is None else [text])))
        reply = await self._wait(
            deadline, f"TOPIC {channel}",
            lambda m: (m.command in ("TOPIC", "331", "332")) and any(rfc1459_fold(p) == folded for p in m.params),
            frozenset({403, 442, 461, 482}))
        return "" if reply.command == "331" else reply.last

    async def part(self, channel: str, reason: str = "", *, timeout: float = 10.0) -> None:
        """Leave ``channel`` (waits for the server's PART)."""
        deadline = Deadline(timeout)
        await self.channel.send(IrcMessage.of("PART", channel, *([reason] if reason else [])))
        folded = rfc1459_fold(channel)
        await self._wait(deadline, f"PART {channel}", lambda m: m.command == "PART" and self._is_me(m.nick)
                         and rfc1459_fold(m.params[0] if m.params else "") == folded, _PART_ERRORS)

    async def quit(self, reason: str = "", *, timeout: float = 10.0) -> str:
        """Say QUIT and wait for the server to close; returns its ERROR text."""
        deadline = Deadline(timeout)
        await self.channel.send(IrcMessage.of("QUIT", *([reason] if reason else [])))
        goodbye = ""
        while True:
            try:
                msg = await deadline.receive(self.channel, "the server to close after QUIT")
            except ConnectionClosed:
                return goodbye
            if isinstance(msg, IrcMessage) and msg.command == "ERROR":
                goodbye = msg.last

    async def raw(self, line: str | bytes) -> None:
        """Send one line exactly as given (CRLF added if missing)."""
        data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
        if not data.endswith(b"\n"):
            data += b"\r\n"
        await self.channel.send_raw(data)
