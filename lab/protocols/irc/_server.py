"""The IRC server: one front door of the lab's chat service.

Each connection is an :class:`~lab.protocols.irc._session.IrcSession`
that registers with NICK and USER (and PASS when the server has a
password), then joins rooms of the shared
:class:`~lab.services.chat.ChatService`, whose events the session turns
into IRC messages; the commands themselves are handled here, one method
each.  Limits, all options (:class:`IrcOptions`): a token bucket per
connection (RFC 1459 §8.10: excess lines wait, a flood that keeps coming
is disconnected), PINGs to quiet clients and a disconnect when no answer
comes, a registration deadline, caps on channels per user, users per
server and the output queued for a client that does not read.

Tests: tests/protocols/test_irc.py, tests/interop/test_irc_peers.py
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from lab.protocols._base import Message
from lab.protocols._session import ServerBehaviour
from lab.protocols.irc._codec import CODES, MAX_MESSAGE, IrcMalformed, IrcMessage
from lab.protocols.irc._options import IrcOptions
from lab.protocols.irc._session import (
    CHANNELLEN,
    FLAG_MODES,
    NICKLEN,
    TOPICLEN,
    VERSION,
    IrcSession,
    Registration,
    glob_match,
    mask,
    relay_message,
    valid_channel,
    valid_nick,
)
from lab.services.chat import CHAT, ChatEvent, ChatRefused, ChatService, ChatUser, Room

__all__ = ["IrcServer"]

MAX_MODES = 4  # parameter modes per MODE line (005 MODES)
MAX_TARGETS = 4  # PRIVMSG a,b,c,d (005 MAXTARGETS)
KEYLEN = 23  # JOIN separates keys with commas, so a key holds none
_USERNAME_JUNK = re.compile(r"[^A-Za-z0-9._-]")
_PRE_REGISTRATION = frozenset({"PASS", "NICK", "USER", "QUIT", "PING", "PONG"})


class IrcServer(ServerBehaviour[IrcOptions]):
    """An RFC 1459/2812 client-protocol server in front of the chat service.

    The handlers are ``handle_<COMMAND>`` methods, found through one table;
    unknown commands get 421, commands before registration 451.  Each
    connection is an :class:`IrcSession`; ``sessions`` are the live ones
    (for the user counts, and to end their timers when the server stops).
    """

    session_type = IrcSession
    coalesce_writes = True  # a channel message goes to every member in the same pass
    chat: ChatService  # the lab's chat service, from started() on

    def __init__(self, options: IrcOptions) -> None:
        super().__init__(options)
        self.name = options.server_name
        self.network = options.network
        self.motd: list[str] = options.motd.splitlines()
        self.created = time.strftime("%a %b %d %Y at %H:%M:%S UTC", time.gmtime())
        self.sessions: set[IrcSession] = set()
        # the last chat event relayed and its message, shared by every member
        self._relayed: tuple[ChatEvent | None, IrcMessage | None] = (None, None)
        self.handlers: dict[str, Callable[[IrcSession, IrcMessage], None]] = {
            name[len("handle_"):]: getattr(self, name) for name in dir(self) if name.startswith("handle_")
        }

    # -- life ----------------------------------------------------------------

    def started(self) -> None:
        """Join the lab's chat service, shared with its other chat servers."""
        self.chat = self.services.get(CHAT)

    def stopped(self) -> None:
        """End what is left of the sessions' timers and users (the lab has
        normally closed every connection already)."""
        sessions = list(self.sessions)
        for session in sessions:
            session.state = Registration.CLOSED  # all first: the quits must not reach a closing one
        for session in sessions:
            session.forget("Server stopped")

    def relayed(self, event: ChatEvent) -> IrcMessage:
        """The message reporting ``event``, built once for all its
        recipients (the service hands one event object to each member in
        turn); messages are frozen, so every session sends the same one."""
        last, msg = self._relayed
        if last is not event or msg is None:
            msg = relay_message(event)
            self._relayed = (event, msg)
        return msg

    @property
    def registered(self) -> int:
        """Users registered through this server."""
        return sum(1 for s in self.sessions if s.user is not None)

    # -- input -------------------------------------------------------------

    def process(self, session: IrcSession, msg: Message) -> None:
        """Handle one line (past the flood bucket)."""
        if isinstance(msg, IrcMalformed):
            session.notice(f"*** Ignored a malformed line: {msg.reason}")
            return
        assert isinstance(msg, IrcMessage)
        if len(msg.raw) > MAX_MESSAGE:
            session.reply("ERR_INPUTTOOLONG", f"Input line was too long (over {MAX_MESSAGE} bytes)")
            return
        handler = self.handlers.get(msg.command)
        if handler is None:
            session.reply("ERR_UNKNOWNCOMMAND", msg.command, "Unknown command")
        elif session.state is Registration.NEW and msg.command not in _PRE_REGISTRATION:
            session.reply("ERR_NOTREGISTERED", "You have not registered")
        else:
            handler(session, msg)

    @staticmethod
    def _need(session: IrcSession, msg: IrcMessage, count: int) -> bool:
        if len(msg.params) < count or (count and not msg.params[count - 1]):
            session.reply("ERR_NEEDMOREPARAMS", msg.command, "Not enough parameters")
            return False
        return True

    # -- registration (RFC 2812 §3.1) -----------------------------------------

    def handle_PASS(self, session: IrcSession, msg: IrcMessage) -> None:
        if session.state is Registration.REGISTERED:
            session.reply("ERR_ALREADYREGISTRED", "Unauthorized command (already registered)")
        elif self._need(session, msg, 1):
            session.password = msg.params[0]

    def handle_NICK(self, session: IrcSession, msg: IrcMessage) -> None:
        if not msg.params or not msg.params[0]:
            session.reply("ERR_NONICKNAMEGIVEN", "No nickname given")
            return
        nick = msg.params[0]
        if not valid_nick(nick):
            session.reply("ERR_ERRONEUSNICKNAME", nick[:NICKLEN * 2], "Erroneous nickname")
            return
        if session.user is not None:
            try:
                self.chat.rename(session.user, nick)
            except ChatRefused as exc:
                session.refuse(exc, nick)
            return
        taken = self.chat.user(nick)
        if taken is not None:
            session.reply("ERR_NICKNAMEINUSE", nick, "Nickname is already in use")
            return
        session.nick = nick
        self._try_register(session)

    def handle_USER(self, session: IrcSession, msg: IrcMessage) -> None:
        if session.state is Registration.REGISTERED or session.username:
            session.reply("ERR_ALREADYREGISTRED", "Unauthorized command (already registered)")
            return
        if not self._need(session, msg, 4):
            return
        session.username = _USERNAME_JUNK.sub("", msg.params[0])[:10] or "user"
        session.realname = msg.params[3]
        self._try_register(session)

    def _try_register(self, session: IrcSession) -> None:
        if not (session.nick and session.username):
            return
        password = self.options.password
        if password is not None and session.password != password:
            session.reply("ERR_PASSWDMISMATCH", "Password incorrect")
            session.close("Bad password")
            return
        if self.registered >= self.options.max_users:
            session.close(f"Server full: {self.options.max_users} users")
            return
        try:
            session.user = self.chat.sign_on(
                session.nick, session, username=session.username, host=session.host,
                realname=session.realname, origin=self.name)
        except ChatRefused as exc:
            session.refuse(exc, session.nick)
            session.nick = ""
            return
        session.state = Registration.REGISTERED
        self._welcome(session)

    def _welcome(self, session: IrcSession) -> None:
        assert session.user is not None
        session.reply("RPL_WELCOME", f"Welcome to the {self.network} IRC network {mask(session.user)}")
        session.reply("RPL_YOURHOST", f"Your host is {self.name}, running version {VERSION}")
        session.reply("RPL_CREATED", f"This server was created {self.created}")
        session.line(CODES["RPL_MYINFO"], session.target, self.name, VERSION, "i", "iklmnotv", "klov")
        session.reply(
            "RPL_ISUPPORT", f"NETWORK={self.network}", "CASEMAPPING=rfc1459", "CHANTYPES=#&",
            "PREFIX=(ov)@+", "CHANMODES=,k,l,imnt", f"CHANLIMIT=#&:{self.options.max_channels}",
            f"NICKLEN={NICKLEN}", f"CHANNELLEN={CHANNELLEN}", f"TOPICLEN={TOPICLEN}",
            f"KICKLEN={TOPICLEN}", f"MODES={MAX_MODES}", f"MAXTARGETS={MAX_TARGETS}", f"KEYLEN={KEYLEN}",
            "are supported by this server")
        self.handle_LUSERS(session, IrcMessage.of("LUSERS"))
        self.handle_MOTD(session, IrcMessage.of("MOTD"))

    def handle_QUIT(self, session: IrcSession, msg: IrcMessage) -> None:
        session.close(f"Quit: {msg.params[0]}" if msg.params and msg.params[0] else "Client Quit")

    def handle_PING(self, session: IrcSession, msg: IrcMessage) -> None:
        if not msg.params:
            session.reply("ERR_NOORIGIN", "No origin specified")
        else:
            session.line("PONG", self.name, msg.params[0])

    def handle_PONG(self, session: IrcSession, msg: IrcMessage) -> None:
        """Any line proves the client alive; a PONG is just the usual one."""

    # -- channels (RFC 2812 §3.2) ------------------------------------------

    def handle_JOIN(self, session: IrcSession, msg: IrcMessage) -> None:
        user = session.user
        assert user is not None
        if not self._need(session, msg, 1):
            return
        if msg.params[0] == "0":  # leave every channel
            for room in list(user.rooms.values()):
                self.chat.part(user, room.name)
            return
        keys = msg.params[1].split(",") if len(msg.params) > 1 else []
        for i, name in enumerate(msg.params[0].split(",")):
            if not valid_channel(name):
                session.reply("ERR_NOSUCHCHANNEL", name[:CHANNELLEN * 2] or "*", "No such channel")
                continue
            try:
                self.chat.join(user, name, keys[i] if i < len(keys) else None, max_rooms=self.options.max_channels)
            except ChatRefused as exc:
                session.refuse(exc, name)

    def handle_PART(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        if not self._need(session, msg, 1):
            return
        reason = msg.params[1] if len(msg.params) > 1 else ""
        for name in msg.params[0].split(","):
            try:
                self.chat.part(session.user, name, reason[:TOPICLEN])
            except ChatRefused as exc:
                session.refuse(exc, name)

    def handle_TOPIC(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        if not self._need(session, msg, 1):
            return
        room = self.chat.room(msg.params[0])
        if room is None:
            session.reply("ERR_NOSUCHCHANNEL", msg.params[0], "No such channel")
        elif len(msg.params) == 1:
            if room.topic:
                self.send_topic(session, room)
            else:
                session.reply("RPL_NOTOPIC", room.name, "No topic is set")
        else:
            try:
                self.chat.set_topic(session.user, room.name, msg.params[1][:TOPICLEN])
            except ChatRefused as exc:
                session.refuse(exc, room.name)

    def send_topic(self, session: IrcSession, room: Room) -> None:
        session.reply("RPL_TOPIC", room.name, room.topic)
        session.reply("RPL_TOPICWHOTIME", room.name, room.topic_by or self.name, str(int(room.topic_at)))

    def send_names(self, session: IrcSession, room: Room, *, end: bool = True) -> None:
        names = [("@" if m in room.operators else "+" if m in room.voiced else "") + m.nick
                 for m in room.members]
        chunk: list[str] = []
        for name in names:
            chunk.append(name)
            if sum(len(n) + 1 for n in chunk) > 380:
                session.reply("RPL_NAMREPLY", "=", room.name, " ".join(chunk))
                chunk = []
        if chunk:
            session.reply("RPL_NAMREPLY", "=", room.name, " ".join(chunk))
        if end:
            session.reply("RPL_ENDOFNAMES", room.name, "End of NAMES list")

    def handle_NAMES(self, session: IrcSession, msg: IrcMessage) -> None:
        if not msg.params:
            for room in list(self.chat.rooms.values()):
                self.send_names(session, room, end=False)
            session.reply("RPL_ENDOFNAMES", "*", "End of NAMES list")
            return
        for name in msg.params[0].split(","):
            found = self.chat.room(name)
            if found is not None:
                self.send_names(session, found, end=False)
            session.reply("RPL_ENDOFNAMES", found.name if found else name, "End of NAMES list")

    def handle_LIST(self, session: IrcSession, msg: IrcMessage) -> None:
        wanted = {self.chat.fold(n) for n in msg.params[0].split(",")} if msg.params else None
        session.reply("RPL_LISTSTART", "Channel", "Users  Name")
        for key, room in list(self.chat.rooms.items()):
            if wanted is None or key in wanted:
                session.reply("RPL_LIST", room.name, str(len(room.members)), room.topic)
        session.reply("RPL_LISTEND", "End of LIST")

    def handle_INVITE(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        if not self._need(session, msg, 2):
            return
        nick, name = msg.params[0], msg.params[1]
        if not valid_channel(name):
            session.reply("ERR_NOSUCHCHANNEL", name, "No such channel")
            return
        try:
            target = self.chat.invite(session.user, nick, name)
        except ChatRefused as exc:
            session.refuse(exc, name)
            return
        session.reply("RPL_INVITING", target.nick, name)

    def handle_KICK(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        if not self._need(session, msg, 2):
            return
        reason = msg.params[2][:TOPICLEN] if len(msg.params) > 2 else ""
        for nick in msg.params[1].split(","):
            try:
                self.chat.kick(session.user, msg.params[0], nick, reason)
            except ChatRefused as exc:
                session.refuse(exc, msg.params[0])

    # -- messages (RFC 2812 §3.3) ---------------------------------------------

    def handle_PRIVMSG(self, session: IrcSession, msg: IrcMessage, *, notice: bool = False) -> None:
        assert session.user is not None
        # RFC 1459 §4.4.2: no error reply of any kind answers a NOTICE
        if not msg.params or not msg.params[0]:
            if not notice:
                session.reply("ERR_NORECIPIENT", f"No recipient given ({msg.command})")
            return
        if len(msg.params) < 2 or not msg.params[1]:
            if not notice:
                session.reply("ERR_NOTEXTTOSEND", "No text to send")
            return
        targets = msg.params[0].split(",")
        if len(targets) > MAX_TARGETS:
            if not notice:
                session.reply("ERR_TOOMANYTARGETS", msg.params[0][:100],
                              f"Too many recipients (at most {MAX_TARGETS})")
            return
        for target in targets:
            try:
                to = self.chat.say(session.user, target, msg.params[1], notice=notice)
            except ChatRefused as exc:
                if not notice:
                    session.refuse(exc, target)
                continue
            if isinstance(to, ChatUser) and to.away is not None and not notice:
                session.reply("RPL_AWAY", to.nick, to.away)

    def handle_NOTICE(self, session: IrcSession, msg: IrcMessage) -> None:
        self.handle_PRIVMSG(session, msg, notice=True)

    # -- modes (RFC 2812 §3.1.5, RFC 2811 §4) ----------------------------------

    def handle_MODE(self, session: IrcSession, msg: IrcMessage) -> None:
        user = session.user
        assert user is not None
        if not self._need(session, msg, 1):
            return
        target = msg.params[0]
        if target[:1] in "#&":
            self._channel_mode(session, msg)
            return
        if self.chat.fold(target) != self.chat.fold(user.nick):
            other = self.chat.user(target)
            if other is None:
                session.reply("ERR_NOSUCHNICK", target, "No such nick/channel")
            else:
                session.reply("ERR_USERSDONTMATCH", "Cannot change mode for other users")
            return
        if len(msg.params) == 1:
            session.reply("RPL_UMODEIS", "+i" if user.invisible else "+")
            return
        sign, changed, unknown = "+", "", False
        for ch in msg.params[1]:
            if ch in "+-":
                sign = ch
            elif ch == "i":
                if user.invisible != (sign == "+"):
                    user.invisible = sign == "+"
                    changed += sign + "i"
            else:
                unknown = True
        if unknown:
            session.reply("ERR_UMODEUNKNOWNFLAG", "Unknown MODE flag")
        if changed:
            session.line("MODE", user.nick, changed, prefix=user.nick)

    def _channel_mode(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        room = self.chat.room(msg.params[0])
        if room is None:
            session.reply("ERR_NOSUCHCHANNEL", msg.params[0], "No such channel")
            return
        if len(msg.params) == 1:
            flags = "".join(letter for letter, attr in FLAG_MODES.items() if getattr(room, attr))
            params: list[str] = []
            if room.key is not None:
                flags += "k"
                params.append(room.key if session.user in room else "*")
            if room.limit is not None:
                flags += "l"
                params.append(str(room.limit))
            session.reply("RPL_CHANNELMODEIS", room.name, "+" + flags, *params)
            session.reply("RPL_CREATIONTIME", room.name, str(int(room.created)))
            return
        changes: list[tuple[str, str, str | None]] = []
        args = list(msg.params[2:])
        sign, with_arg = "+", 0
        for ch in msg.params[1]:
            if ch in "+-":
                sign = ch
            elif ch in FLAG_MODES:
                changes.append((sign, FLAG_MODES[ch], None))
            elif ch in "ovkl" and (ch in "ov" or ch == "k" or sign == "+"):
                if not args:
                    if ch == "k" and sign == "-":
                        changes.append((sign, "key", None))
                        continue
                    session.reply("ERR_NEEDMOREPARAMS", "MODE", "Not enough parameters")
                    return
                with_arg += 1
                arg = args.pop(0)
                if with_arg > MAX_MODES:
                    continue
                if ch == "l" and not (arg.isdigit() and 0 < int(arg) < 100000):
                    session.reply("ERR_INVALIDMODEPARAM", room.name, "l", arg, "Invalid limit")
                    return
                if ch == "k" and sign == "+" and ("," in arg or len(arg) > KEYLEN):
                    session.reply("ERR_INVALIDKEY", room.name, f"Key is not well-formed (no commas, up to {KEYLEN})")
                    return
                setting = {"o": "operator", "v": "voice", "k": "key", "l": "limit"}[ch]
                changes.append((sign, setting, arg))
            elif ch == "l":
                changes.append((sign, "limit", None))
            elif ch == "b":
                if args:
                    session.reply("ERR_UNKNOWNMODE", "b", "bans are not supported here")
                else:
                    session.reply("RPL_ENDOFBANLIST", room.name, "End of channel ban list")
            else:
                session.reply("ERR_UNKNOWNMODE", ch, "is unknown mode char to me")
        if not changes:
            return
        try:
            self.chat.change_modes(session.user, room.name, changes)
        except ChatRefused as exc:
            session.refuse(exc, room.name)

    # -- who is who (RFC 2812 §3.6) -----------------------------------------

    def handle_WHO(self, session: IrcSession, msg: IrcMessage) -> None:
        viewer = session.user
        assert viewer is not None
        query = msg.params[0] if msg.params and msg.params[0] not in ("0", "*") else ""
        room = self.chat.room(query) if query[:1] in ("#", "&") else None
        if room is not None:
            rows = [(room.name, member) for member in room.members]
        else:
            pattern = self.chat.fold(query) if query else "*"
            rows = [("*", other) for other in self.chat.visible_users(viewer)
                    if glob_match(pattern, self.chat.fold(other.nick))]
        for channel, other in rows:
            flags = "G" if other.away is not None else "H"
            if room is not None:
                flags += "@" if other in room.operators else "+" if other in room.voiced else ""
            session.reply("RPL_WHOREPLY", channel, other.username or other.nick, other.host or "chat",
                          other.origin or self.name, other.nick, flags, f"0 {other.realname}")
        session.reply("RPL_ENDOFWHO", query or "*", "End of WHO list")

    def handle_WHOIS(self, session: IrcSession, msg: IrcMessage) -> None:
        if not msg.params or not msg.params[-1]:
            session.reply("ERR_NONICKNAMEGIVEN", "No nickname given")
            return
        for nick in msg.params[-1].split(","):
            other = self.chat.user(nick)
            if other is None:
                session.reply("ERR_NOSUCHNICK", nick, "No such nick/channel")
            else:
                session.reply("RPL_WHOISUSER", other.nick, other.username or other.nick,
                              other.host or "chat", "*", other.realname)
                rooms = " ".join(("@" if other in r.operators else "+" if other in r.voiced else "") + r.name
                                 for r in other.rooms.values())
                if rooms:
                    session.reply("RPL_WHOISCHANNELS", other.nick, rooms)
                session.reply("RPL_WHOISSERVER", other.nick, other.origin or self.name, "netlab chat")
                if other.away is not None:
                    session.reply("RPL_AWAY", other.nick, other.away)
                idle = int(time.monotonic() - other.last_spoke)
                session.reply("RPL_WHOISIDLE", other.nick, str(idle), str(int(other.signon)),
                              "seconds idle, signon time")
            session.reply("RPL_ENDOFWHOIS", nick, "End of WHOIS list")

    def handle_AWAY(self, session: IrcSession, msg: IrcMessage) -> None:
        assert session.user is not None
        if msg.params and msg.params[0]:
            session.user.away = msg.params[0][:TOPICLEN]
            session.reply("RPL_NOWAWAY", "You have been marked as being away")
        else:
            session.user.away = None
            session.reply("RPL_UNAWAY", "You are no longer marked as being away")

    def handle_ISON(self, session: IrcSession, msg: IrcMessage) -> None:
        if not self._need(session, msg, 1):
            return
        words = " ".join(msg.params).split()
        found = [u.nick for n in words if (u := self.chat.user(n)) is not None]
        session.reply("RPL_ISON", " ".join(found))

    def handle_USERHOST(self, session: IrcSession, msg: IrcMessage) -> None:
        if not self._need(session, msg, 1):
            return
        found = []
        for nick in " ".join(msg.params).split()[:5]:
            other = self.chat.user(nick)
            if other is not None:
                away = "-" if other.away is not None else "+"
                found.append(f"{other.nick}={away}{other.username or other.nick}@{other.host or 'chat'}")
        session.reply("RPL_USERHOST", " ".join(found))

    # -- the server (RFC 2812 §3.4) ----------------------------------------

    def handle_MOTD(self, session: IrcSession, msg: IrcMessage) -> None:
        if not any(line.strip() for line in self.motd):
            session.reply("ERR_NOMOTD", "MOTD File is missing")
            return
        session.reply("RPL_MOTDSTART", f"- {self.name} Message of the day - ")
        for line in self.motd:
            session.reply("RPL_MOTD", f"- {line}")
        session.reply("RPL_ENDOFMOTD", "End of MOTD command")

    def handle_LUSERS(self, session: IrcSession, msg: IrcMessage) -> None:
        users = len(self.chat.users)
        invisible = sum(1 for u in self.chat.users.values() if u.invisible)
        mine = self.registered
        session.reply("RPL_LUSERCLIENT", f"There are {users - invisible} users and {invisible} invisible on 1 servers")
        session.reply("RPL_LUSERCHANNELS", str(len(self.chat.rooms)), "channels formed")
        session.reply("RPL_LUSERME", f"I have {mine} clients and 0 servers")

    def handle_VERSION(self, session: IrcSession, msg: IrcMessage) -> None:
        session.reply("RPL_VERSION", VERSION, self.name, "netlab IRC server")

    def handle_TIME(self, session: IrcSession, msg: IrcMessage) -> None:
        session.reply("RPL_TIME", self.name, time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime()))

