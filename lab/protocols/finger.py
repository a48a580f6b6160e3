"""Finger (RFC 1288): who has an account on a host, and what they have to say.

The client sends one query line, the server answers with text and closes.
The query grammar (RFC 1288 §2.3)::

    {Q1} ::= [{W}|{W}{S}{U}]{C}
    {Q2} ::= [{W}{S}][{U}]{H}{C}
    {U}  ::= username
    {H}  ::= @hostname | @hostname{H}
    {W}  ::= /W
    {S}  ::= <SP> | <SP>{S}
    {C}  ::= <CRLF>

An empty query lists the users, ``alice`` describes one, and ``/W`` asks
for more detail (the Office line and the plan). Like common fingerd
implementations, this parser also accepts a bare user name, ``/w`` in lower
case, a bare LF and a last line without terminator.

A query naming hosts (``alice@elsewhere``) asks this server to forward it
(§2.4). This server never forwards, which §2.4 allows, and answers
``finger: forwarding service denied`` as in.fingerd does, so there is no
``--forwarding`` option yet. Reply text is filtered to printing ASCII, tabs
and CRLFs (§3.3), by the server and again by the client verb.

Tests: tests/protocols/test_finger.py
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import ConfigError, LocalProtocolError, ProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import Line, LineDecoder
from lab.protocols._options import Options, option
from lab.protocols._session import ClientVerbs, ServerBehaviour, Session
from lab.protocols._spec import ProtocolSpec
from lab.protocols._verbs import Deadline, read_until_closed

__all__ = [
    "DEMO_PLANS",
    "DEMO_USERS",
    "MAX_QUERY",
    "SPEC",
    "FingerClient",
    "FingerConversation",
    "FingerOptions",
    "FingerQuery",
    "FingerServer",
    "FingerSession",
    "FingerUser",
    "clean",
    "parse_plan",
    "parse_query",
    "parse_user",
]

MAX_QUERY = 1024  # a query is a user name and a few hosts: cap it well below MAX_LINE
_MAX_REPLY = 256 * 1024  # the client verb stops reading a reply beyond this
_WHITESPACE = frozenset(b" \t")  # {S} is SP; tabs are accepted
_LOGIN = re.compile(r"[!-~]+")  # printing ASCII, no spaces
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

DEMO_USERS = (("alice", "Alice Liddell,Rabbit Hole"), ("dodo", "The Dodo"))
DEMO_PLANS = (
    ("alice", "Curiouser and curiouser!"),
    ("dodo", "Everybody has won, and all must have prizes."),
)


def clean(text: str) -> str:
    """``text`` with anything but printing ASCII and tabs replaced by ``?``
    (RFC 1288 §3.3: no control characters reach a terminal)."""
    return "".join(c if c == "\t" or " " <= c <= "~" else "?" for c in text)


# -- the query ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerQuery(Message):
    """One query line: ``/W`` (verbose), a user name (empty: everyone),
    and hosts to forward to, in order."""

    verbose: bool = False
    user: str = ""
    hosts: tuple[str, ...] = ()
    KIND: ClassVar[str] = "query"

    @classmethod
    def of(cls, user: str = "", *, verbose: bool = False, hosts: Sequence[str] = ()) -> FingerQuery:
        """The query for ``user`` (``@host`` parts may be in ``user`` or
        ``hosts``); :class:`LocalProtocolError` if it cannot be sent."""
        words = (["/W"] if verbose else []) + [user + "".join("@" + h for h in hosts)]
        raw = " ".join(w for w in words if w).encode("utf-8", "replace") + b"\r\n"
        try:
            query = parse_query(raw)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"finger: cannot send that query: {exc.message}") from None
        name, *user_hosts = user.split("@")
        if (query.user, query.hosts) != (name, (*user_hosts, *hosts)):
            # a space, "/W" or "@" inside a name or host would change the query
            raise LocalProtocolError(f"finger: cannot send user {user!r} with hosts {list(hosts)!r}")
        return query

    def summary(self) -> str:
        target = self.user + "".join("@" + h for h in self.hosts)
        what = f"user {target}" if self.user else f"list users{target and ' ' + target}"
        return f"query {'/W ' if self.verbose else ''}{what}"


def parse_query(raw: bytes) -> FingerQuery:
    """Parse one query line (terminator included, if any).

    :class:`RemoteProtocolError` for bytes outside printing ASCII, a ``/``
    token other than a leading ``/W``, more than one user, or an empty
    host name.
    """
    body = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
    for byte in body:
        if byte >= 0x7F or (byte < 0x20 and byte not in _WHITESPACE):
            raise RemoteProtocolError(f"byte 0x{byte:02x} is not printing ASCII")
    words = body.decode("ascii").split()
    verbose = bool(words) and words[0].upper() == "/W"
    if verbose:
        words = words[1:]
    for word in words:
        if word.startswith("/"):
            raise RemoteProtocolError(f"unexpected token {word!r} (the only one is /W, first)")
    if len(words) > 1:
        raise RemoteProtocolError(f"one user per query, got {len(words)}: {' '.join(words)}")
    target = words[0] if words else ""
    user, *hosts = target.split("@")
    if any(not host for host in hosts):
        raise RemoteProtocolError("empty host name after '@'")
    return FingerQuery(raw=bytes(raw), verbose=verbose, user=user, hosts=tuple(hosts))


class _QueryLines(LineDecoder):
    """What a client sends: query lines of at most :data:`MAX_QUERY` bytes."""

    def __init__(self) -> None:
        # partial_at_eof: `printf alice | nc host 79` sends no newline
        super().__init__(MAX_QUERY, partial_at_eof=True)

    def decode_line(self, raw: bytes) -> Message:
        try:
            return parse_query(raw)
        except RemoteProtocolError as exc:
            self._fail(exc.message)  # spends the decoder, as the contract asks


class FingerConversation(Conversation):
    """The client's :class:`FingerQuery` lines; the server's reply lines,
    the last one possibly unterminated when it closes."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return _QueryLines() if sender is Role.CLIENT else LineDecoder(partial_at_eof=True)


# -- the accounts ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FingerUser:
    """One account: ``info`` is GECOS style, the full name, then optional
    comma-separated details (office, phone)."""

    login: str
    info: str
    plan: str | None = None

    @property
    def name(self) -> str:
        return self.info.split(",", 1)[0].strip()

    @property
    def office(self) -> str:
        details = [part.strip() for part in self.info.split(",")[1:]]
        return ", ".join(d for d in details if d)


def _login_and(text: str, form: str) -> tuple[str, str]:
    login, sep, value = text.partition("=")
    login = login.strip()
    if not sep or not login:
        raise ValueError(f"wants {form}, got {text!r}")
    if not _LOGIN.fullmatch(login) or "@" in login or login.startswith("/"):
        raise ValueError(f"wants a login of printing ASCII without spaces, '@' or a leading '/', got {login!r}")
    return login, value


def parse_user(text: str) -> tuple[str, str]:
    """``--user NAME=FULL NAME[,OFFICE...]`` as ``(login, info)``."""
    return _login_and(text, "NAME=FULL NAME[,OFFICE...]")


def parse_plan(text: str) -> tuple[str, str]:
    """``--plan NAME=TEXT`` as ``(login, plan)``."""
    return _login_and(text, "NAME=TEXT")


@dataclass(frozen=True, kw_only=True)
class FingerOptions(Options):
    """A finger server's accounts and their plans.

    Pairs given from Python or a scenario's lists (``("bob", "Bob")``)
    are checked like the strings of the command line; a plan for a login
    without an account is a :class:`ConfigError`.
    """

    user: tuple[tuple[str, str], ...] = option(
        help="an account: login=full name[,office...]", parse=parse_user, multiple=True,
        metavar="NAME=INFO", example="alice='Alice Liddell,Rabbit Hole'",
        show_default="the demo users alice and dodo")
    plan: tuple[tuple[str, str], ...] = option(
        help="the .plan shown by /W queries for that login", parse=parse_plan, multiple=True,
        metavar="NAME=TEXT", example="alice='Down the rabbit hole.'")

    def __post_init__(self) -> None:
        # resolve() passes values that are not strings as they are
        for name in ("user", "plan"):
            object.__setattr__(self, name, tuple(self._pair(name, v) for v in getattr(self, name)))
        logins = {login for login, _ in self.user or DEMO_USERS}
        unknown = sorted({login for login, _ in self.plan} - logins)
        if unknown:
            raise ConfigError(f"finger: --plan for {unknown[0]!r}, who has no account",
                              hint=f"add --user {unknown[0]}=NAME")

    def _pair(self, name: str, value: Any) -> tuple[str, str]:
        opt = self.get(name)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            value = f"{value[0]}={value[1]}"
        if not isinstance(value, str):
            raise ConfigError(f"finger: {opt.option_string} wants {opt.metavar}, got {value!r}", hint=opt.hint)
        pair: tuple[str, str] = opt.convert(value, "finger")
        return pair


# -- the server -----------------------------------------------------------


class FingerSession(Session["FingerServer"]):
    """One connection: one query, one answer, then the server closes."""

    answered = False

    def message_received(self, msg: Message) -> None:
        if self.answered or not isinstance(msg, FingerQuery):
            return  # one query per connection; more lines may share the packet
        if msg.hosts:
            self.conn.note(f"refused to forward to {', '.join(msg.hosts)}: forwarding is not offered")
        self._reply(self.server.answer(msg))

    def protocol_error(self, exc: ProtocolError) -> None:
        if not self.answered:
            self._reply([f"finger: bad query: {exc.message}"])

    def _reply(self, lines: list[str]) -> None:
        self.answered = True
        for line in lines:
            self.conn.send(Line.of(clean(line).encode("ascii")))
        self.conn.close()


class FingerServer(ServerBehaviour[FingerOptions]):
    """Answers one query per connection from its accounts, then closes.

    Without ``--user`` it serves the demo accounts (alice, dodo), whose
    plans ``--plan`` may change.
    """

    session_type = FingerSession

    def __init__(self, options: FingerOptions) -> None:
        super().__init__(options)
        users, plans = options.user, options.plan
        if not users:
            users, plans = DEMO_USERS, (*DEMO_PLANS, *plans)
        plan_of = dict(plans)
        self.users: dict[str, FingerUser] = {
            login: FingerUser(login, info, plan_of.get(login)) for login, info in users
        }

    def answer(self, query: FingerQuery) -> list[str]:
        """The reply's lines, before filtering."""
        if query.hosts:
            return ["finger: forwarding service denied"]
        if query.user:
            return self._describe(query.user, query.verbose)
        return self._list(query.verbose)

    def _list(self, verbose: bool) -> list[str]:
        if verbose:
            lines: list[str] = []
            for login in self.users:
                lines += [""] if lines else []  # a blank line between accounts
                lines += self._describe(login, True)
            return lines
        width = max(8, *(len(login) for login in self.users)) + 2
        return [f"{'Login':<{width}}Name"] + [
            f"{user.login:<{width}}{user.name}" for user in self.users.values()
        ]

    def _describe(self, login: str, verbose: bool) -> list[str]:
        user = self.users.get(login)
        if user is None:
            return [f"finger: {login}: no such user."]
        lines = [f"Login: {user.login}\t\t\tName: {user.name}"]
        if verbose:
            if user.office:
                lines.append(f"Office: {user.office}")
            if user.plan is None:
                lines.append("No Plan.")
            else:
                lines += ["Plan:", *_LINE_BREAK.split(user.plan.rstrip("\r\n"))]
        return lines


# -- the client -----------------------------------------------------------


class FingerClient(ClientVerbs[Any]):
    """Verbs for talking to a finger server."""

    async def query(
        self,
        user: str = "",
        *,
        verbose: bool = False,
        hosts: Sequence[str] | str = (),
        timeout: float = 5.0,
    ) -> str:
        """Send one query and return the whole reply, read until the server
        closes, with ``\\n`` line breaks and non-printing characters shown
        as ``?``.

        ``user=""`` lists the users; ``verbose`` adds ``/W``; ``hosts`` asks
        the server to forward the query. :class:`LocalProtocolError` for a
        query that cannot be sent (a space or control character in
        ``user``); :class:`LabTimeout` if the server has not closed within
        ``timeout`` seconds.
        """
        hosts = (hosts,) if isinstance(hosts, str) else tuple(hosts)
        await self.channel.send(FingerQuery.of(user, verbose=verbose, hosts=hosts))
        reply = await read_until_closed(
            self.channel, Deadline(timeout), limit=_MAX_REPLY, what="finger reply"
        )
        text = b"".join(m.raw for m in reply).decode("ascii", "replace")
        return "\n".join(clean(line) for line in _LINE_BREAK.split(text))


SPEC = ProtocolSpec(
    name="finger",
    summary="tells who has an account and what their plan is",
    rfc="RFC 1288",
    default_port=79,
    transports=(Transport.TCP,),
    conversation=FingerConversation,
    server=FingerServer,
    client=FingerClient,
    options=FingerOptions,
    keywords=("users", "plan", "whois"),
)
