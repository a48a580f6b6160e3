"""The NNTP reader server (RFC 3977 core + OVER/HDR, RFC 4643 AUTHINFO
USER/PASS), serving the lab's shared news store.

Per connection it keeps a :class:`Session`: the mode (reader, or transit
until ``MODE READER`` on a mode-switching server), the selected group, the
current article number, and whether an article is expected after a 340.
Commands dispatch through one table that also says which need reader mode
and which need a selected group.

Tests: tests/protocols/test_nntp.py, tests/interop/test_nntp_peers.py
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import __version__
from lab.errors import ConfigError, ConnectionClosed, LabError
from lab.newsstore import (
    DEFAULT_GROUPS,
    OVERVIEW_FORMAT,
    Article,
    ArticleRejected,
    Group,
    NewsStore,
)
from lab.protocols._base import Message, Peer, ServerBehaviour, Services
from lab.protocols.nntp._codec import ArticleBlock, BadCommand, Command, Response

__all__ = ["STORE_KEY", "Mode", "NntpServer", "Session"]

STORE_KEY = "news.store"
_NUMBER = re.compile(r"\d{1,16}")
_MSGID = re.compile(r"<[^<> ]+>")
_RANGE = re.compile(r"(\d{1,16})(-(\d{1,16})?)?")
_DATE = re.compile(r"(\d{2}|\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})")
_MAX_LIST = 100_000  # LISTGROUP/OVER lines per response


class Mode(enum.Enum):
    """RFC 3977 §3.4.2: a mode-switching server starts in transit mode."""

    TRANSIT = "transit"
    READER = "reader"


@dataclass
class Session:
    """One client's state."""

    mode: Mode
    group: Group | None = None
    article: int | None = None  # the current article number
    posting: bool = False  # 340 sent, the article is due
    user: str | None = None  # authenticated as
    pending_user: str | None = None  # AUTHINFO USER given, PASS due
    posted: list[str] = field(default_factory=list)  # Message-IDs accepted
    closing: bool = False  # QUIT answered: ignore what follows


Handler = Callable[["NntpServer", Peer, Session, Command], None]


@dataclass(frozen=True)
class _Verb:
    handler: Handler
    reader: bool = True  # only in reader mode
    syntax: str = ""
    max_args: int = 0
    min_args: int = 0


class NntpServer(ServerBehaviour):
    """Serves the groups of the lab's news store (``services`` key
    ``news.store``), creating the ``--group`` ones (default ``lab.test``
    and ``lab.misc``) when it joins the lab."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.hostname: str = self.options.get("hostname") or "news.lab.test"
        self.posting: bool = self.options.get("posting", True) is not False
        self.max_article: int = int(self.options.get("max_article") or 1024 * 1024)
        self.switching = (self.options.get("mode") or "reader") == "switching"
        self.accounts: dict[str, str] = dict(self.options.get("user") or [])
        self.store_dir = self.options.get("store")
        self.wanted = list(self.options.get("group") or []) or list(DEFAULT_GROUPS)
        self.sessions: dict[str, Session] = {}
        self._store: NewsStore | None = None

    # the lab installs its shared Services right after construction: the
    # store is looked up then, so a conflicting --store fails at serve time
    @property
    def services(self) -> Services:
        return self._services

    @services.setter
    def services(self, value: Services) -> None:
        self._services = value
        if hasattr(self, "_store"):  # not from ServerBehaviour.__init__
            self._attach(value)

    @property
    def store(self) -> NewsStore:
        """The news store this server serves (the lab's shared one)."""
        if self._store is None:
            self._attach(self._services)
        assert self._store is not None
        return self._store

    def _attach(self, services: Services) -> None:
        existing = services.find(STORE_KEY)
        if existing is None:
            store = NewsStore(self.store_dir)
            services.set(STORE_KEY, store)
        else:
            store = existing
            wanted = None if self.store_dir is None else Path(self.store_dir).resolve()
            if wanted is not None and store.directory != wanted:
                where = store.directory or "memory"
                raise ConfigError(f"nntp: this lab's news store already lives in {where}",
                                  hint="give every NNTP server of a lab the same --store (or none)")
        for name, description in self.wanted:
            store.ensure_group(name, description)
        self._store = store

    # -- connection life ------------------------------------------------------------

    def connection_made(self, conn: Peer) -> None:
        session = self.sessions[conn.id] = Session(Mode.TRANSIT if self.switching else Mode.READER)
        mode = " (mode-switching: send MODE READER)" if self.switching else ""
        conn.send(self._greeting(session, f"{self.hostname} netlab NNTP server ready{mode}"))

    def connection_lost(self, conn: Peer) -> None:
        self.sessions.pop(conn.id, None)

    def _greeting(self, session: Session, text: str) -> Response:
        if self.may_post(session) or (self.posting and self.accounts):
            return Response.of(200, f"{text} (posting ok)")
        return Response.of(201, f"{text} (no posting)")

    def may_post(self, session: Session) -> bool:
        return self.posting and (not self.accounts or session.user is not None)

    def protocol_error(self, conn: Peer, exc: Exception) -> None:
        session = self.sessions.get(conn.id)
        why = exc.message if isinstance(exc, LabError) else str(exc)
        if session is not None and session.posting:
            conn.note(f"article discarded: {why}")
            reply = Response.of(441, f"{why}; closing connection")
        else:
            reply = Response.of(500, f"{why}; closing connection")
        try:
            conn.send(reply)
        except ConnectionClosed:
            pass
        conn.close()

    def message_received(self, conn: Peer, msg: Message) -> None:
        session = self.sessions.get(conn.id)
        if session is None or session.closing:
            return
        if isinstance(msg, Command):
            self._command(conn, session, msg)
        elif isinstance(msg, ArticleBlock):
            self._article(conn, session, msg)
        elif isinstance(msg, BadCommand):
            code = 501 if "UTF-8" in msg.reason else 500
            conn.send(Response.of(code, msg.reason[:1].upper() + msg.reason[1:]))

    def _command(self, conn: Peer, session: Session, cmd: Command) -> None:
        verb = _VERBS.get(cmd.verb)
        if verb is None:
            conn.send(Response.of(500, f"Unknown command {cmd.verb[:40]} (HELP lists them)"))
            return
        if verb.reader and session.mode is not Mode.READER:
            conn.send(Response.of(401, "MODE-READER"))
            return
        if not verb.min_args <= len(cmd.args) <= verb.max_args:
            conn.send(Response.of(501, f"Syntax: {cmd.verb} {verb.syntax}".rstrip()))
            return
        verb.handler(self, conn, session, cmd)

    # -- session ---------------------------------------------------------------------

    def do_capabilities(self, conn: Peer, session: Session, cmd: Command) -> None:
        lines = ["VERSION 2", f"IMPLEMENTATION netlab {__version__}"]
        if session.mode is Mode.READER:
            lines += ["READER", "HDR", "LIST ACTIVE ACTIVE.TIMES HEADERS NEWSGROUPS OVERVIEW.FMT",
                      "NEWNEWS", "OVER MSGID"]
            if self.may_post(session):
                lines.append("POST")
        else:
            lines.append("MODE-READER")
        if self.accounts and session.user is None:
            lines.append("AUTHINFO USER")
        conn.send(Response.of(101, "Capability list:", lines))

    def do_mode(self, conn: Peer, session: Session, cmd: Command) -> None:
        if cmd.args[0].upper() != "READER":
            conn.send(Response.of(501, f"Unknown MODE variant {cmd.args[0][:40]} (only MODE READER)"))
            return
        session.mode = Mode.READER
        conn.send(self._greeting(session, "Reader mode"))

    def do_quit(self, conn: Peer, session: Session, cmd: Command) -> None:
        session.closing = True
        conn.send(Response.of(205, "Bye"))
        conn.close()

    def do_date(self, conn: Peer, session: Session, cmd: Command) -> None:
        conn.send(Response.of(111, f"{datetime.now(UTC):%Y%m%d%H%M%S}"))

    def do_help(self, conn: Peer, session: Session, cmd: Command) -> None:
        lines = [f"  {name} {verb.syntax}".rstrip() for name, verb in sorted(_VERBS.items())]
        conn.send(Response.of(100, "Help text follows", ["Commands:", *lines]))

    def do_authinfo(self, conn: Peer, session: Session, cmd: Command) -> None:
        what, value = cmd.args[0].upper(), cmd.args[1]
        if not self.accounts:
            conn.send(Response.of(502, "No accounts on this server; nothing to log in to"))
        elif session.user is not None:
            conn.send(Response.of(502, f"Already authenticated as {session.user}"))
        elif what == "USER":
            session.pending_user = value
            conn.send(Response.of(381, "Password required"))
        elif what == "PASS":
            user, session.pending_user = session.pending_user, None
            if user is None:
                conn.send(Response.of(482, "AUTHINFO USER first"))
            elif self.accounts.get(user) == value:
                session.user = user
                conn.send(Response.of(281, "Authentication accepted"))
            else:
                conn.send(Response.of(481, "Authentication failed"))
        else:
            conn.send(Response.of(501, "Syntax: AUTHINFO USER name | AUTHINFO PASS password"))

    # -- groups ----------------------------------------------------------------------

    def do_group(self, conn: Peer, session: Session, cmd: Command) -> None:
        group = self.store.group(cmd.args[0])
        if group is None:
            conn.send(Response.of(411, f"No such newsgroup {cmd.args[0][:100]}"))
            return
        self._select(session, group)
        conn.send(Response.of(211, f"{group.count} {group.low} {group.high} {group.name}"))

    def _select(self, session: Session, group: Group) -> None:
        session.group = group
        numbers = group.numbers()
        session.article = numbers[0] if numbers else None

    def do_listgroup(self, conn: Peer, session: Session, cmd: Command) -> None:
        if cmd.args:
            group = self.store.group(cmd.args[0])
            if group is None:
                conn.send(Response.of(411, f"No such newsgroup {cmd.args[0][:100]}"))
                return
        elif session.group is None:
            conn.send(Response.of(412, "No newsgroup selected"))
            return
        else:
            group = session.group
        low, high = None, None
        if len(cmd.args) > 1:
            bounds = _parse_range(cmd.args[1])
            if bounds is None:
                conn.send(Response.of(501, f"Bad range {cmd.args[1][:40]} (use N, N- or N-M)"))
                return
            low, high = bounds
        self._select(session, group)
        numbers = [str(n) for n in group.numbers(low, high)[:_MAX_LIST]]
        conn.send(Response.of(211, f"{group.count} {group.low} {group.high} {group.name} list follows",
                              numbers))

    def _move(self, conn: Peer, session: Session, step: int) -> None:
        group = session.group
        if group is None:
            conn.send(Response.of(412, "No newsgroup selected"))
            return
        if session.article is None or session.article not in group.articles:
            conn.send(Response.of(420, "Current article number is invalid"))
            return
        current = session.article
        candidates = [n for n in group.articles if (n > current if step > 0 else n < current)]
        if not candidates:
            code, what = (421, "next") if step > 0 else (422, "previous")
            conn.send(Response.of(code, f"No {what} article in this group"))
            return
        number = min(candidates) if step > 0 else max(candidates)
        session.article = number
        conn.send(Response.of(223, f"{number} {group.articles[number].message_id} retrieved"))

    def do_next(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._move(conn, session, +1)

    def do_last(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._move(conn, session, -1)

    # -- articles --------------------------------------------------------------------

    def _find(self, conn: Peer, session: Session, arg: str | None) -> tuple[int, Article] | None:
        """The article ``arg`` names (number, message-id or the current
        one), sending the error response when there is none."""
        if arg is not None and arg.startswith("<"):
            if not _MSGID.fullmatch(arg):
                conn.send(Response.of(501, f"Bad message-id {arg[:80]}"))
                return None
            article = self.store.article(arg)
            if article is None:
                conn.send(Response.of(430, f"No article with message-id {arg[:80]}"))
                return None
            return 0, article
        if arg is not None and not _NUMBER.fullmatch(arg):
            conn.send(Response.of(501, f"Bad argument {arg[:40]} (an article number or <message-id>)"))
            return None
        group = session.group
        if group is None:
            conn.send(Response.of(412, "No newsgroup selected"))
            return None
        if arg is None:
            if session.article is None or session.article not in group.articles:
                conn.send(Response.of(420, "Current article number is invalid"))
                return None
            return session.article, group.articles[session.article]
        number = int(arg)
        article = group.articles.get(number)
        if article is None:
            conn.send(Response.of(423, f"No article numbered {number} in {group.name}"))
            return None
        session.article = number
        return number, article

    def _retrieve(self, conn: Peer, session: Session, cmd: Command, code: int) -> None:
        found = self._find(conn, session, cmd.args[0] if cmd.args else None)
        if found is None:
            return
        number, article = found
        text = f"{number} {article.message_id}"
        if code == 220:
            conn.send(Response.of(220, text, article.content))
        elif code == 221:
            conn.send(Response.of(221, text, article.head + b"\r\n"))
        elif code == 222:
            conn.send(Response.of(222, text, article.body))
        else:
            conn.send(Response.of(223, text))

    def do_article(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._retrieve(conn, session, cmd, 220)

    def do_head(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._retrieve(conn, session, cmd, 221)

    def do_body(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._retrieve(conn, session, cmd, 222)

    def do_stat(self, conn: Peer, session: Session, cmd: Command) -> None:
        self._retrieve(conn, session, cmd, 223)

    def _selection(self, conn: Peer, session: Session, arg: str | None) -> list[tuple[int, Article]] | None:
        """What OVER/HDR ``arg`` selects: a message-id, a range, or the
        current article; the error response is sent when it is nothing."""
        if arg is not None and arg.startswith("<"):
            found = self._find(conn, session, arg)
            return None if found is None else [found]
        if arg is None:
            found = self._find(conn, session, None)
            return None if found is None else [found]
        bounds = _parse_range(arg)
        if bounds is None:
            conn.send(Response.of(501, f"Bad range {arg[:40]} (use N, N- or N-M)"))
            return None
        group = session.group
        if group is None:
            conn.send(Response.of(412, "No newsgroup selected"))
            return None
        numbers = group.numbers(*bounds)[:_MAX_LIST]
        if not numbers:
            conn.send(Response.of(423, "No articles in that range"))
            return None
        return [(n, group.articles[n]) for n in numbers]

    def do_over(self, conn: Peer, session: Session, cmd: Command) -> None:
        chosen = self._selection(conn, session, cmd.args[0] if cmd.args else None)
        if chosen is not None:
            lines = ["\t".join(article.overview(number)) for number, article in chosen]
            conn.send(Response.of(224, "Overview information follows", lines))

    def do_hdr(self, conn: Peer, session: Session, cmd: Command) -> None:
        chosen = self._selection(conn, session, cmd.args[1] if len(cmd.args) > 1 else None)
        if chosen is None:
            return
        name = cmd.args[0]
        lines = [f"{number} {_field_value(article, name)}".rstrip() for number, article in chosen]
        code = 221 if cmd.verb == "XHDR" else 225
        conn.send(Response.of(code, "Headers follow", lines))

    def do_post(self, conn: Peer, session: Session, cmd: Command) -> None:
        if not self.posting:
            conn.send(Response.of(440, "Posting not permitted on this server"))
        elif not self.may_post(session):
            conn.send(Response.of(480, "Authentication required for posting (AUTHINFO USER)"))
        else:
            session.posting = True
            conn.send(Response.of(340, "Send article to be posted; end it with a line holding only ."))

    def _article(self, conn: Peer, session: Session, block: ArticleBlock) -> None:
        if not session.posting:
            conn.note("discarded an article sent without a 340 invitation")
            return
        session.posting = False
        try:
            article = self.store.post(block.content, host=self.hostname, max_size=self.max_article)
        except ArticleRejected as exc:
            conn.note(f"article refused: {exc.message}")
            conn.send(Response.of(441, f"Posting failed: {exc.message}"))
            return
        session.posted.append(article.message_id)
        filed = ", ".join(f"{g}:{n}" for g, n in article.numbers.items())
        conn.note(f"article {article.message_id} filed as {filed}")
        conn.send(Response.of(240, f"Article received {article.message_id}"))

    # -- lists -----------------------------------------------------------------------

    def do_list(self, conn: Peer, session: Session, cmd: Command) -> None:
        keyword = cmd.args[0].upper() if cmd.args else "ACTIVE"
        pattern = cmd.args[1] if len(cmd.args) > 1 else None
        if keyword in ("ACTIVE", "NEWSGROUPS", "ACTIVE.TIMES"):
            groups = self.store.list_groups(pattern)
            if keyword == "ACTIVE":
                lines = [self._active_line(g) for g in groups]
                text = "Newsgroups in form: group high low status"
            elif keyword == "NEWSGROUPS":
                lines = [f"{g.name}\t{g.description or '?'}" for g in groups]
                text = "Descriptions follow"
            else:
                lines = [f"{g.name} {int(g.created.timestamp())} netlab" for g in groups]
                text = "Creation times follow"
            conn.send(Response.of(215, text, lines))
        elif keyword == "OVERVIEW.FMT" and pattern is None:
            conn.send(Response.of(215, "Order of fields in overview database", list(OVERVIEW_FORMAT)))
        elif keyword == "HEADERS" and (pattern is None or pattern.upper() in ("MSGID", "RANGE")):
            conn.send(Response.of(215, "Headers and metadata items supported", [":", ":bytes", ":lines"]))
        elif keyword in ("DISTRIB.PATS", "DISTRIBUTIONS", "MODERATORS", "MOTD", "SUBSCRIPTIONS"):
            conn.send(Response.of(503, f"LIST {keyword} is not kept by this server"))
        else:
            conn.send(Response.of(501, f"Unknown LIST keyword {keyword[:40]}"))

    def _active_line(self, group: Group) -> str:
        status = "y" if self.posting and group.posting else "n"
        return f"{group.name} {group.high} {group.low} {status}"

    def do_newgroups(self, conn: Peer, session: Session, cmd: Command) -> None:
        since = _parse_when(cmd.args[0], cmd.args[1], cmd.args[2:])
        if since is None:
            conn.send(Response.of(501, "Syntax: NEWGROUPS yyyymmdd hhmmss [GMT]"))
            return
        groups = [g for g in self.store.list_groups() if g.created >= since]
        conn.send(Response.of(231, "List of new newsgroups follows", [self._active_line(g) for g in groups]))

    def do_newnews(self, conn: Peer, session: Session, cmd: Command) -> None:
        since = _parse_when(cmd.args[1], cmd.args[2], cmd.args[3:])
        if since is None:
            conn.send(Response.of(501, "Syntax: NEWNEWS wildmat yyyymmdd hhmmss [GMT]"))
            return
        ids = [a.message_id for a in self.store.newnews(cmd.args[0], since)][:_MAX_LIST]
        conn.send(Response.of(230, "List of new articles follows", ids))


def _parse_range(text: str) -> tuple[int | None, int | None] | None:
    m = _RANGE.fullmatch(text)
    if m is None:
        return None
    low = int(m[1])
    if m[2] is None:
        return low, low
    return low, int(m[3]) if m[3] else None


def _parse_when(date: str, time: str, rest: tuple[str, ...]) -> datetime | None:
    """RFC 3977 §7.3.2: [yy]yymmdd hhmmss [GMT]; without GMT, the server's
    local time, which for this server is UTC as well."""
    d, t = _DATE.fullmatch(date), _TIME.fullmatch(time)
    if d is None or t is None or (rest and (len(rest) > 1 or rest[0].upper() != "GMT")):
        return None
    year = int(d[1])
    if len(d[1]) == 2:  # §7.3.2: the closest century to now
        now = datetime.now(UTC).year
        year += now - now % 100
        if year > now + 50:
            year -= 100
    try:
        return datetime(year, int(d[2]), int(d[3]), int(t[1]), int(t[2]), int(t[3]), tzinfo=UTC)
    except ValueError:
        return None


def _field_value(article: Article, name: str) -> str:
    lname = name.lower()
    if lname == ":bytes":
        return str(len(article.content))
    if lname == ":lines":
        return str(article.lines)
    value = article.header(name.rstrip(":")) or ""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


_VERBS: dict[str, _Verb] = {
    "ARTICLE": _Verb(NntpServer.do_article, syntax="[number|<message-id>]", max_args=1),
    "AUTHINFO": _Verb(NntpServer.do_authinfo, reader=False, syntax="USER name | PASS password",
                      min_args=2, max_args=2),
    "BODY": _Verb(NntpServer.do_body, syntax="[number|<message-id>]", max_args=1),
    "CAPABILITIES": _Verb(NntpServer.do_capabilities, reader=False, syntax="[keyword]", max_args=1),
    "DATE": _Verb(NntpServer.do_date),
    "GROUP": _Verb(NntpServer.do_group, syntax="newsgroup", min_args=1, max_args=1),
    "HDR": _Verb(NntpServer.do_hdr, syntax="field [range|<message-id>]", min_args=1, max_args=2),
    "HEAD": _Verb(NntpServer.do_head, syntax="[number|<message-id>]", max_args=1),
    "HELP": _Verb(NntpServer.do_help, reader=False),
    "LAST": _Verb(NntpServer.do_last),
    "LIST": _Verb(NntpServer.do_list, syntax="[ACTIVE|NEWSGROUPS|ACTIVE.TIMES|OVERVIEW.FMT|HEADERS [wildmat]]",
                  max_args=2),
    "LISTGROUP": _Verb(NntpServer.do_listgroup, syntax="[newsgroup [range]]", max_args=2),
    "MODE": _Verb(NntpServer.do_mode, reader=False, syntax="READER", min_args=1, max_args=1),
    "NEWGROUPS": _Verb(NntpServer.do_newgroups, syntax="yyyymmdd hhmmss [GMT]", min_args=2, max_args=3),
    "NEWNEWS": _Verb(NntpServer.do_newnews, syntax="wildmat yyyymmdd hhmmss [GMT]", min_args=3, max_args=4),
    "NEXT": _Verb(NntpServer.do_next),
    "OVER": _Verb(NntpServer.do_over, syntax="[range|<message-id>]", max_args=1),
    "POST": _Verb(NntpServer.do_post),
    "QUIT": _Verb(NntpServer.do_quit, reader=False),
    "STAT": _Verb(NntpServer.do_stat, syntax="[number|<message-id>]", max_args=1),
    "XHDR": _Verb(NntpServer.do_hdr, syntax="field [range|<message-id>]", min_args=1, max_args=2),
    "XOVER": _Verb(NntpServer.do_over, syntax="[range]", max_args=1),
}
