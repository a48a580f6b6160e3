"""IRC messages (RFC 1459 §2.3, RFC 2812 §2.3): the grammar, CTCP, the
numeric replies and the conversation, sans-IO.

::

    message  = [ ":" prefix SPACE ] command [ params ] crlf
    prefix   = servername / ( nickname [ [ "!" user ] "@" host ] )
    command  = 1*letter / 3digit
    params   = *14( SPACE middle ) [ SPACE ":" trailing ]
             =/ 14( SPACE middle ) [ SPACE [ ":" ] trailing ]

Both sides frame the same way, and decoding never depends on what was
said before, so :class:`IrcConversation` has no state table.  A message
is at most 512 bytes with its CRLF; we accept longer lines up to
:data:`MAX_LINE` (servers answer them with 417) and refuse to send
longer ones.  Like most servers we also take
a bare LF, runs of spaces, and IRCv3 ``@tags``.  A line that breaks the
grammar (NUL, no command) decodes as :class:`IrcMalformed`, so one bad
line never ends a conversation; only a line past :data:`MAX_LINE` is a
:class:`RemoteProtocolError`.

Tests: tests/protocols/test_irc.py
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import LocalProtocolError
from lab.protocols._base import Message, Pattern, Role, escape_bytes, matches_code
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import LineDecoder

__all__ = [
    "MAX_LINE",
    "MAX_MESSAGE",
    "NUMERICS",
    "IrcConversation",
    "IrcDecoder",
    "IrcMalformed",
    "IrcMessage",
    "parse_message",
]

MAX_MESSAGE = 512  # RFC 2812 §2.3, CRLF included
MAX_LINE = 8192  # what we read before giving up on a line
MAX_PARAMS = 15

_COMMAND = re.compile(r"[A-Za-z]+|[0-9]{3}")
_FORBIDDEN = re.compile(r"[\x00\r\n]")
_HEAD = re.compile(r"( *(?:@\S* +)?(?::\S* +)?)(\S+)")  # tags and prefix, then the command

NUMERICS: dict[str, str] = {
    "001": "RPL_WELCOME", "002": "RPL_YOURHOST", "003": "RPL_CREATED", "004": "RPL_MYINFO",
    "005": "RPL_ISUPPORT", "221": "RPL_UMODEIS", "251": "RPL_LUSERCLIENT", "252": "RPL_LUSEROP",
    "253": "RPL_LUSERUNKNOWN", "254": "RPL_LUSERCHANNELS", "255": "RPL_LUSERME",
    "301": "RPL_AWAY", "302": "RPL_USERHOST", "303": "RPL_ISON", "305": "RPL_UNAWAY",
    "306": "RPL_NOWAWAY", "311": "RPL_WHOISUSER", "312": "RPL_WHOISSERVER",
    "315": "RPL_ENDOFWHO", "317": "RPL_WHOISIDLE", "318": "RPL_ENDOFWHOIS",
    "319": "RPL_WHOISCHANNELS", "321": "RPL_LISTSTART", "322": "RPL_LIST", "323": "RPL_LISTEND",
    "324": "RPL_CHANNELMODEIS", "329": "RPL_CREATIONTIME", "331": "RPL_NOTOPIC", "332": "RPL_TOPIC",
    "333": "RPL_TOPICWHOTIME", "341": "RPL_INVITING", "351": "RPL_VERSION", "352": "RPL_WHOREPLY",
    "353": "RPL_NAMREPLY", "366": "RPL_ENDOFNAMES", "368": "RPL_ENDOFBANLIST",
    "372": "RPL_MOTD", "375": "RPL_MOTDSTART", "376": "RPL_ENDOFMOTD", "391": "RPL_TIME",
    "401": "ERR_NOSUCHNICK", "403": "ERR_NOSUCHCHANNEL", "404": "ERR_CANNOTSENDTOCHAN", "407": "ERR_TOOMANYTARGETS",
    "405": "ERR_TOOMANYCHANNELS", "409": "ERR_NOORIGIN", "411": "ERR_NORECIPIENT",
    "412": "ERR_NOTEXTTOSEND", "417": "ERR_INPUTTOOLONG", "421": "ERR_UNKNOWNCOMMAND",
    "422": "ERR_NOMOTD", "431": "ERR_NONICKNAMEGIVEN", "432": "ERR_ERRONEUSNICKNAME",
    "433": "ERR_NICKNAMEINUSE", "441": "ERR_USERNOTINCHANNEL", "442": "ERR_NOTONCHANNEL",
    "443": "ERR_USERONCHANNEL", "451": "ERR_NOTREGISTERED", "461": "ERR_NEEDMOREPARAMS",
    "462": "ERR_ALREADYREGISTRED", "464": "ERR_PASSWDMISMATCH", "471": "ERR_CHANNELISFULL",
    "472": "ERR_UNKNOWNMODE", "473": "ERR_INVITEONLYCHAN", "475": "ERR_BADCHANNELKEY",
    "476": "ERR_BADCHANMASK", "482": "ERR_CHANOPRIVSNEEDED", "501": "ERR_UMODEUNKNOWNFLAG",
    "502": "ERR_USERSDONTMATCH", "525": "ERR_INVALIDKEY", "696": "ERR_INVALIDMODEPARAM",
}
CODES = {name: code for code, name in NUMERICS.items()}

# fields whose values change from run to run, by command
_VOLATILE_PARAMS = frozenset({"PING", "PONG", "001", "003", "004", "302", "311", "317", "329", "333", "351",
                              "352", "391"})


def _text(data: bytes) -> str:
    # IRC names no encoding: UTF-8 where it decodes, else Latin-1 like most clients
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class IrcMessage(Message):
    """One IRC message: ``prefix`` (who sent it, empty from a client),
    ``command`` (upper case, or a three-digit numeric) and ``params``, the
    last of which may hold spaces.  A PRIVMSG or NOTICE whose text is
    wrapped in ``\\x01`` carries CTCP: ``ctcp`` is its command
    (``ACTION``, ``VERSION``, ``PING``) and ``ctcp_args`` the rest.
    ``tags`` holds IRCv3 message tags if a server sent any.
    """
    EDITABLE = ("command", "params", "prefix")

    command: str
    prefix: str = ""
    params: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    ctcp: str | None = None
    ctcp_args: str = ""

    @property
    def kind(self) -> str:
        """The command, so hooks and filters can name ``PRIVMSG`` or ``001``."""
        return self.command

    @property
    def volatile(self) -> frozenset[str]:
        """Server timestamps, PING tokens and client hosts vary by run."""
        out = {"params"} if self.command in _VOLATILE_PARAMS else set()
        if "@" in self.prefix:
            out.add("prefix")
        return frozenset(out)

    @property
    def keepalive(self) -> bool:
        """A PING comes when the server finds us quiet, not in answer to anything."""
        return self.command == "PING"

    def matches(self, pattern: Pattern) -> bool:
        """A reply code (``433``, ``"001"``) matches the numeric of that
        code; anything else as for every message."""
        return matches_code(self, self.numeric, pattern)

    def edited(self, **fields: Any) -> IrcMessage:
        self._editable(fields)
        params = fields.get("params", self.params)
        if isinstance(params, str):  # as typed: words, the last after " :" may hold spaces
            head, _, trailing = params.partition(" :")
            params = [*head.split(), *([trailing] if _ else [])]
        return IrcMessage.of(str(fields.get("command", self.command)), *params,
                             prefix=str(fields.get("prefix", self.prefix)))

    @classmethod
    def of(cls, command: str, *params: str, prefix: str = "", truncate: bool = False,
           colon: bool = False) -> IrcMessage:
        """The message for ``command`` with ``params`` (the last may hold
        spaces; ``colon`` marks it as trailing even when it need not be).
        :class:`LocalProtocolError` for a CR, LF or NUL in any part, a
        space or leading ``:`` in any but the last parameter, or more than
        512 bytes; with ``truncate`` the last parameter is cut
        to fit instead (relaying a message under a longer prefix)."""
        command = command.upper()
        if not _COMMAND.fullmatch(command):
            raise LocalProtocolError(f"irc: bad command {command!r}")
        if len(params) > MAX_PARAMS:
            raise LocalProtocolError(f"irc: at most {MAX_PARAMS} parameters, got {len(params)}")
        for part in (prefix, *params):
            if _FORBIDDEN.search(part):
                raise LocalProtocolError(f"irc: CR, LF and NUL cannot be sent: {part!r}")
        if prefix and " " in prefix:
            raise LocalProtocolError(f"irc: a prefix has no spaces: {prefix!r}")
        words = [f":{prefix}"] if prefix else []
        words.append(command)
        for i, param in enumerate(params):
            last = i == len(params) - 1
            if not last and (not param or " " in param or param.startswith(":")):
                raise LocalProtocolError(
                    f"irc: only the last parameter may be empty, hold spaces or start with ':': {param!r}"
                )
            trailing = last and (colon or not param or " " in param or param.startswith(":"))
            words.append(f":{param}" if trailing else param)
        raw = " ".join(words).encode("utf-8") + b"\r\n"
        if len(raw) > MAX_MESSAGE:
            if not truncate or not params:
                raise LocalProtocolError(f"irc: {len(raw)} bytes is over the {MAX_MESSAGE}-byte limit")
            tail = params[-1].encode("utf-8")
            keep = len(tail) - (len(raw) - MAX_MESSAGE)
            cut = tail[: max(keep, 0)].decode("utf-8", "ignore")
            return cls.of(command, *params[:-1], cut or " ", prefix=prefix, colon=colon)
        # the checks above leave nothing parse_message would read differently,
        # so the fields are the ones given (tests check they parse back alike)
        ctcp, ctcp_args = (None, "")
        if command in ("PRIVMSG", "NOTICE") and len(params) >= 2:
            ctcp, ctcp_args = _split_ctcp(params[-1])
        return cls(raw=raw, command=command, prefix=prefix, params=params, ctcp=ctcp, ctcp_args=ctcp_args)

    @classmethod
    def ctcp_request(cls, command: str, target: str, ctcp: str, args: str = "") -> IrcMessage:
        """A CTCP message: ``PRIVMSG target :\\x01ACTION waves\\x01``."""
        body = ctcp.upper() + (f" {args}" if args else "")
        return cls.of(command, target, f"\x01{body}\x01")

    # -- reading it ---------------------------------------------------------

    @property
    def nick(self) -> str:
        """The nick (or server name) in the prefix."""
        return self.prefix.split("!", 1)[0].split("@", 1)[0]

    @property
    def user(self) -> str:
        rest = self.prefix.partition("!")[2]
        return rest.partition("@")[0]

    @property
    def host(self) -> str:
        return self.prefix.partition("@")[2]

    @property
    def numeric(self) -> int | None:
        """The reply code of a numeric, else ``None``."""
        return int(self.command) if self.command.isdigit() else None

    @property
    def code(self) -> int | None:
        """Same as :attr:`numeric`: ``expect c 433`` matches on it."""
        return self.numeric

    @property
    def text(self) -> str:
        """The line without its terminator."""
        return _text(self.raw.rstrip(b"\r\n"))

    @property
    def last(self) -> str:
        """The last parameter (the message text of PRIVMSG), or ``""``."""
        return self.params[-1] if self.params else ""

    def summary(self) -> str:
        """The line as sent, numerics named (``001 (RPL_WELCOME)``), CTCP
        spelled out (``PRIVMSG #lab CTCP ACTION waves``)."""
        name = NUMERICS.get(self.command)
        if self.ctcp is not None:
            words = [f":{self.prefix}"] if self.prefix else []
            words += [self.command, *self.params[:-1], "CTCP", self.ctcp, *([self.ctcp_args] if self.ctcp_args else [])]
            line = " ".join(words)
        else:
            line = self.text
            if name:
                head = _HEAD.match(line)
                if head is not None:
                    line = f"{head[1]}{head[2]} ({name}){line[head.end():]}"
        return escape_bytes(line.encode("utf-8"), 300)[1:-1]

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.prefix:
            out["prefix"] = self.prefix
            if self.user or self.host:
                out["source"] = {"nick": self.nick, "user": self.user, "host": self.host}
        out["command"] = self.command
        if self.command in NUMERICS:
            out["name"] = NUMERICS[self.command]
        out["params"] = list(self.params)
        if self.ctcp is not None:
            out["ctcp"] = {"command": self.ctcp, "args": self.ctcp_args}
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class IrcMalformed(Message):
    """A line that breaks the message grammar; ``reason`` says how.
    An empty line (which RFC 2812 says to ignore silently) is one too."""

    reason: str
    KIND: ClassVar[str] = "malformed"

    def summary(self) -> str:
        return f"malformed ({self.reason}): {escape_bytes(self.raw, 80)}"


def _split_ctcp(text: str) -> tuple[str | None, str]:
    if len(text) < 2 or not text.startswith("\x01"):
        return None, ""
    body = text[1:-1] if text.endswith("\x01") else text[1:]  # the closing \x01 is often dropped
    command, _, args = body.partition(" ")
    return command.upper(), args


def parse_message(raw: bytes) -> IrcMessage | IrcMalformed:
    """Parse one line (terminator included, if any); never raises."""
    body = raw.rstrip(b"\n").removesuffix(b"\r")
    if not body.strip(b" "):
        return IrcMalformed(raw=raw, reason="empty message")
    if b"\x00" in body:
        return IrcMalformed(raw=raw, reason="NUL byte in message")
    if b"\r" in body:
        return IrcMalformed(raw=raw, reason="CR inside a message")
    line = _text(body)
    tags: tuple[tuple[str, str], ...] = ()
    if line.startswith("@"):
        tag_text, _, line = line[1:].partition(" ")
        tags = tuple((k, v) for k, _, v in (t.partition("=") for t in tag_text.split(";") if t))
        line = line.lstrip(" ")
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
        line = line.lstrip(" ")
        if not prefix:
            return IrcMalformed(raw=raw, reason="empty prefix")
    if line.startswith(":"):
        return IrcMalformed(raw=raw, reason="no command")
    command, _, rest = line.partition(" ")
    if not command:
        return IrcMalformed(raw=raw, reason="no command")
    if not _COMMAND.fullmatch(command):
        return IrcMalformed(raw=raw, reason=f"bad command {command[:20]!r}")
    params: list[str] = []
    while rest := rest.lstrip(" "):
        if rest.startswith(":") or len(params) == MAX_PARAMS - 1:
            # the trailing parameter, or the 15th, takes the rest of the line
            params.append(rest[1:] if rest.startswith(":") else rest)
            break
        word, _, rest = rest.partition(" ")
        params.append(word)
    command = command.upper()
    ctcp, ctcp_args = (None, "")
    if command in ("PRIVMSG", "NOTICE") and len(params) >= 2:
        ctcp, ctcp_args = _split_ctcp(params[-1])
    return IrcMessage(raw=raw, command=command, prefix=prefix, params=tuple(params), tags=tags,
                      ctcp=ctcp, ctcp_args=ctcp_args)


class IrcDecoder(LineDecoder):
    """IRC lines from either side, up to :data:`MAX_LINE` bytes each."""

    def __init__(self) -> None:
        super().__init__(MAX_LINE, partial_at_eof=True)

    def decode_line(self, raw: bytes) -> Message:
        return parse_message(raw)


class IrcConversation(Conversation):
    """Both sides of an IRC connection: the same line grammar each way
    (RFC 2812 §2.3) and no state, so sends need not be decoded again."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return IrcDecoder()

    def encode(self, msg: Message) -> bytes:
        """The message's bytes; :class:`LocalProtocolError` past 512 bytes
        (a long line received and sent on as it is)."""
        if isinstance(msg, IrcMessage) and len(msg.raw) > MAX_MESSAGE:
            raise LocalProtocolError(f"irc: {len(msg.raw)} bytes is over the {MAX_MESSAGE}-byte limit")
        return msg.raw
