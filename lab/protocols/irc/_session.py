"""One IRC connection as the server sees it: registration state, flood
bucket, keep-alive timers, and how chat events look in IRC.

Tests: tests/protocols/test_irc.py
"""

from __future__ import annotations

import enum
import re
from collections import deque
from typing import TYPE_CHECKING, Any

from lab.errors import ConnectionClosed, ProtocolError
from lab.protocols._base import Message, Timer
from lab.protocols._session import Peer, Session
from lab.protocols.irc._codec import CODES, MAX_MESSAGE, IrcMalformed, IrcMessage
from lab.services.chat import (
    ChatEvent,
    ChatRefused,
    ChatUser,
    Invited,
    Joined,
    Kicked,
    ModeChanged,
    Parted,
    Quit,
    Refusal,
    Renamed,
    Room,
    Said,
    TopicSet,
)

if TYPE_CHECKING:
    from lab.protocols.irc._server import IrcServer

__all__ = [
    "CHANNELLEN",
    "NICKLEN",
    "TOPICLEN",
    "VERSION",
    "IrcSession",
    "Registration",
    "glob_match",
    "mask",
    "mode_words",
    "relay_message",
    "valid_channel",
    "valid_nick",
]

VERSION = "netlab-irc-1.0"
NICKLEN = 30
CHANNELLEN = 50
TOPICLEN = 390
SENDQ_LIMIT = 2000  # messages queued to a client that stopped reading

_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
_CHANNEL = re.compile(r"[#&][^\x00\x07\r\n ,:]+")

FLAG_MODES = {"t": "topic_locked", "n": "no_outside", "m": "moderated", "i": "invite_only"}
MEMBER_MODES = {"o": "operator", "v": "voice"}
_MODE_LETTER = {**{v: k for k, v in FLAG_MODES.items()}, **{v: k for k, v in MEMBER_MODES.items()},
                "key": "k", "limit": "l"}
# whose last parameter is text, sent after a colon even without spaces
_TEXT_AT = {"PRIVMSG": 1, "NOTICE": 1, "TOPIC": 1, "PART": 1, "QUIT": 0, "KICK": 2, "ERROR": 0}
# numerics whose last parameter is a word, not text
_WORDS_LAST = frozenset({"004", "221", "324", "329", "333", "341"})

REFUSAL_REPLY = {
    Refusal.NAME_IN_USE: ("ERR_NICKNAMEINUSE", "Nickname is already in use"),
    Refusal.NO_SUCH_USER: ("ERR_NOSUCHNICK", "No such nick/channel"),
    Refusal.NO_SUCH_ROOM: ("ERR_NOSUCHCHANNEL", "No such channel"),
    Refusal.NOT_ON_ROOM: ("ERR_NOTONCHANNEL", "You're not on that channel"),
    Refusal.NOT_OPERATOR: ("ERR_CHANOPRIVSNEEDED", "You're not channel operator"),
    Refusal.CANNOT_SEND: ("ERR_CANNOTSENDTOCHAN", "Cannot send to channel"),
    Refusal.ROOM_FULL: ("ERR_CHANNELISFULL", "Cannot join channel (+l)"),
    Refusal.INVITE_ONLY: ("ERR_INVITEONLYCHAN", "Cannot join channel (+i)"),
    Refusal.BAD_KEY: ("ERR_BADCHANNELKEY", "Cannot join channel (+k)"),
    Refusal.TOO_MANY_ROOMS: ("ERR_TOOMANYCHANNELS", "You have joined too many channels"),
}


def valid_nick(nick: str) -> bool:
    """RFC 2812 §2.3.1 nickname, up to 30 characters (005 NICKLEN)."""
    return len(nick) <= NICKLEN and _NICK.fullmatch(nick) is not None


def valid_channel(name: str) -> bool:
    """A ``#`` or ``&`` channel of at most 50 characters without space,
    comma, colon, BELL, CR, LF or NUL (RFC 2812 §1.3)."""
    return len(name) <= CHANNELLEN and _CHANNEL.fullmatch(name) is not None


def _irc_host(peer: tuple[Any, ...]) -> str:
    host = str(peer[0]) if peer else "unknown"
    return "0" + host if host.startswith(":") else host  # "::1" would read as a trailing param


def _echo(word: str) -> str:
    """A client's word made fit to echo as a middle parameter: no spaces,
    no leading colon, not empty, not endless."""
    return word.replace(" ", "").lstrip(":")[:64] or "*"


def glob_match(pattern: str, text: str) -> bool:
    """IRC wildcard matching (``*`` any run, ``?`` one character) in linear
    space and without regular expressions a client could make expensive."""
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]):
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            t = mark
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def mask(user: ChatUser) -> str:
    """``nick!user@host`` for a user from any front door."""
    return f"{user.nick}!{user.username or user.nick}@{user.host or 'chat'}"


class Registration(enum.Enum):
    """Where a connection is in RFC 2812 §3.1 registration."""

    NEW = "new"  # waiting for NICK and USER
    REGISTERED = "registered"
    CLOSED = "closed"


class IrcSession(Session["IrcServer"]):
    """One client connection: its registration, flood bucket, keep-alive
    and how chat events look to it.  It is the user's
    :class:`~lab.services.chat.ChatSession`.

    Its lines pass the flood bucket, then go to the server's command
    table (:meth:`IrcServer.process`); its timers run on the server's
    clock and end with the connection.
    """

    def __init__(self, server: IrcServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.state = Registration.NEW
        self.nick = ""
        self.username = ""
        self.realname = ""
        self.password: str | None = None
        self.host = _irc_host(conn.peer)
        self.user: ChatUser | None = None
        self.connected_at = self.last_heard = self.refilled = 0.0
        self.tokens = float(server.options.flood_burst)
        self.queue: deque[Message] = deque()
        self.queued_bytes = 0
        self.drain: Timer | None = None
        self.timer: Timer | None = None
        self.ping_sent: float | None = None
        self.unread = 0

    # -- the connection ------------------------------------------------------

    def connection_made(self) -> None:
        server = self.server
        now = server.clock.time()
        self.connected_at = self.last_heard = self.refilled = now
        server.sessions.add(self)
        options = server.options
        self._schedule_tick(min(options.ping_interval, options.register_timeout))

    def message_received(self, msg: Message) -> None:
        if self.state is Registration.CLOSED:
            return
        self.last_heard = self.server.clock.time()
        if isinstance(msg, IrcMalformed) and msg.reason == "empty message":
            return  # RFC 2812 §2.3.1: silently ignored
        if self.server.options.flood_burst and not self._admit(msg):
            return
        self.server.process(self, msg)

    def eof_received(self) -> None:
        if self.state is not Registration.CLOSED:
            self.state = Registration.CLOSED
            self.forget("Connection closed")
        self.conn.close()

    def writable(self) -> None:
        self.unread = 0

    def connection_lost(self) -> None:
        self.state = Registration.CLOSED
        self.forget("Connection closed")

    def protocol_error(self, exc: ProtocolError) -> None:
        self.close(f"Input line too long: {exc.message}")

    def forget(self, why: str) -> None:
        """Drop the timers and the queue, and sign the user off the chat."""
        self.server.sessions.discard(self)
        for handle in (self.timer, self.drain):
            if handle is not None:
                handle.cancel()
        self.timer = self.drain = None
        self.queue.clear()
        self.queued_bytes = 0
        if self.user is not None:
            user, self.user = self.user, None
            self.server.chat.sign_off(user, why)

    # -- keep-alive (RFC 2812 §3.7.2) and the registration deadline ----------

    def _schedule_tick(self, delay: float) -> None:
        self.timer = self.server.clock.call_later(max(delay, 0.001), self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.state is Registration.CLOSED:
            return
        options = self.server.options
        now = self.server.clock.time()
        if self.state is Registration.NEW and now - self.connected_at >= options.register_timeout:
            self.close("Registration timed out")
            return
        if self.ping_sent is not None and self.last_heard > self.ping_sent:
            self.ping_sent = None
        if self.ping_sent is not None:
            waited = now - self.ping_sent
            if waited >= options.ping_timeout:
                self.close(f"Ping timeout: {int(now - self.last_heard)} seconds")
                return
            delay = options.ping_timeout - waited
        else:
            quiet = now - self.last_heard
            if quiet >= options.ping_interval:
                self.line("PING", self.server.name, prefix="")
                self.ping_sent = now
                delay = options.ping_timeout
            else:
                delay = options.ping_interval - quiet
        if self.state is Registration.NEW:
            delay = min(delay, options.register_timeout - (now - self.connected_at))
        self._schedule_tick(delay)

    # -- the flood bucket (RFC 1459 §8.10) ------------------------------------

    def _refill(self) -> None:
        options = self.server.options
        now = self.server.clock.time()
        self.tokens = min(float(options.flood_burst), self.tokens + (now - self.refilled) * options.flood_rate)
        self.refilled = now

    def _admit(self, msg: Message) -> bool:
        """True to handle ``msg`` now; otherwise it waits its turn, and a
        queue past ``flood_queue`` lines (or as many 512-byte lines' worth
        of bytes) is an Excess Flood."""
        self._refill()
        if not self.queue and self.tokens >= 1:
            self.tokens -= 1
            return True
        limit = self.server.options.flood_queue
        self.queue.append(msg)
        self.queued_bytes += len(msg.raw)
        if len(self.queue) > limit or self.queued_bytes > limit * MAX_MESSAGE:
            self.conn.note(f"flood: more than {limit} lines waiting: disconnecting")
            self.close("Excess Flood")
        elif self.drain is None:
            self._schedule_drain()
        return False

    def _schedule_drain(self) -> None:
        wait = (1 - self.tokens) / self.server.options.flood_rate
        self.drain = self.server.clock.call_later(max(wait, 0.001), self._drain)

    def _drain(self) -> None:
        """Handle the waiting lines the bucket has tokens for, in order."""
        self.drain = None
        self._refill()
        while self.queue and self.tokens >= 1 and self.state is not Registration.CLOSED:
            self.tokens -= 1
            msg = self.queue.popleft()
            self.queued_bytes -= len(msg.raw)
            self.server.process(self, msg)
        if self.queue and self.state is not Registration.CLOSED:
            self._schedule_drain()

    # -- what goes out ----------------------------------------------------------

    @property
    def target(self) -> str:
        """How numerics address this client: its nick, ``*`` before one."""
        return self.user.nick if self.user else (self.nick or "*")

    def send(self, msg: IrcMessage) -> None:
        if self.state is Registration.CLOSED:
            return
        if self.conn.write_paused:
            self.unread += 1
            if self.unread > SENDQ_LIMIT:
                self.close("SendQ exceeded")
                return
        try:
            self.conn.send(msg)
        except ConnectionClosed:
            self.state = Registration.CLOSED

    def line(self, command: str, *params: str, prefix: str | None = None, colon: bool | None = None) -> None:
        """Send a message from ``prefix`` (the server by default); text
        (a message, a reason, a numeric's words) goes after a colon."""
        if colon is None:
            colon = len(params) > _TEXT_AT.get(command, len(params))
        self.send(IrcMessage.of(command, *params, prefix=self.server.name if prefix is None else prefix,
                                truncate=True, colon=colon))

    def reply(self, name: str, *params: str) -> None:
        """Send the numeric called ``name`` (``RPL_WELCOME``) to this client."""
        code = CODES[name]
        words = [_echo(p) for p in params[:-1]]
        self.line(code, self.target, *words, *params[-1:], colon=code not in _WORDS_LAST)

    def notice(self, text: str) -> None:
        self.line("NOTICE", self.target, text)

    def refuse(self, exc: ChatRefused, name: str = "") -> None:
        numeric, text = REFUSAL_REPLY.get(exc.reason, ("ERR_NOSUCHNICK", exc.reason.value))
        if exc.reason is Refusal.THEY_ARE_NOT_ON_ROOM:
            self.reply("ERR_USERNOTINCHANNEL", exc.name, name, "They aren't on that channel")
        elif exc.reason is Refusal.ALREADY_ON_ROOM:
            self.reply("ERR_USERONCHANNEL", exc.name, name, "is already on channel")
        else:
            self.reply(numeric, exc.name or name, text)

    def close(self, why: str) -> None:
        """Say goodbye with ERROR (RFC 2812 §3.7.4), leave the chat, hang up."""
        if self.state is Registration.CLOSED:
            return
        self.state = Registration.CLOSED  # first: the goodbye must not trip the SendQ again
        try:
            self.conn.send(IrcMessage.of("ERROR", f"Closing Link: {self.host} ({why})", truncate=True, colon=True))
        except ConnectionClosed:
            pass
        self.forget(why)
        self.conn.close()

    # -- chat events -------------------------------------------------------

    def deliver(self, event: ChatEvent) -> None:
        """Show a chat event as the IRC message that reports it."""
        self.send(self.server.relayed(event))
        if isinstance(event, Joined) and event.user is self.user:
            if event.room.topic:
                self.server.send_topic(self, event.room)
            self.server.send_names(self, event.room)


def relay_message(event: ChatEvent) -> IrcMessage:
    """The IRC message that reports a chat event; it is the same for every
    recipient, so a server builds it once per event."""
    match event:
        case Joined(room, user):
            return _relay("JOIN", room.name, prefix=mask(user))
        case Invited(name, by, user):
            return _relay("INVITE", user.nick, name, prefix=mask(by))
        case Parted(room, user, reason):
            return _relay("PART", room.name, *([reason] if reason else []), prefix=mask(user))
        case Kicked(room, by, user, reason):
            return _relay("KICK", room.name, user.nick, reason or by.nick, prefix=mask(by))
        case Quit(user, reason):
            return _relay("QUIT", reason, prefix=mask(user))
        case Said(source, target, text, notice):
            name = target.name if isinstance(target, Room) else target.nick
            return _relay("NOTICE" if notice else "PRIVMSG", name, text, prefix=mask(source))
        case Renamed(user, old):
            return _relay("NICK", user.nick, prefix=f"{old}!{user.username or old}@{user.host or 'chat'}")
        case TopicSet(room, by):
            return _relay("TOPIC", room.name, room.topic, prefix=mask(by))
        case ModeChanged(room, by, changes):
            return _relay("MODE", room.name, *mode_words(changes), prefix=mask(by))
    raise TypeError(f"not a chat event: {event!r}")


def _relay(command: str, *params: str, prefix: str) -> IrcMessage:
    return IrcMessage.of(command, *params, prefix=prefix, truncate=True,
                         colon=len(params) > _TEXT_AT.get(command, len(params)))


def mode_words(changes: tuple[tuple[str, str, str | None], ...]) -> list[str]:
    """``[("+", "operator", "bob"), ("-", "moderated", None)]`` as
    ``["+o-m", "bob"]``."""
    letters, args, sign = "", [], ""
    for change_sign, setting, arg in changes:
        if change_sign != sign:
            letters += change_sign
            sign = change_sign
        letters += _MODE_LETTER[setting]
        if arg is not None:
            args.append(arg)
    return [letters, *args]
