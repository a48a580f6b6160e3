"""The NNTP reader server (RFC 3977 core + OVER/HDR, RFC 4643 AUTHINFO
USER/PASS), serving the lab's shared news store.

:class:`NntpServer` is made once per listening server from
:class:`NntpOptions`; it attaches the news store when it starts and makes
an :class:`NntpSession` per connection, which keeps the mode (reader, or
transit until ``MODE READER`` on a mode-switching server), the selected
group, the current article, the login, and an article being posted.
Commands dispatch through one table that also says which need reader
mode and how many arguments they take.

Tests: tests/protocols/test_nntp.py, tests/interop/test_nntp_peers.py
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lab import __version__
from lab.errors import ConnectionClosed, ProtocolError
from lab.protocols._base import Message
from lab.protocols._options import Options, name_value, option, size, yes_no
from lab.protocols._session import Peer, ServerBehaviour, Session
from lab.protocols.nntp._codec import (
    MAX_ARTICLE_WIRE,
    ArticleBlock,
    ArticleEnd,
    ArticlePart,
    BadCommand,
    Command,
    Response,
)
from lab.services.news import (
    DEFAULT_GROUPS,
    NEWS_STORE,
    OVERVIEW_FORMAT,
    Article,
    ArticleRejected,
    Group,
    NewsStore,
    parse_group_spec,
)

__all__ = ["Mode", "NntpOptions", "NntpServer", "NntpSession", "ServerMode"]

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


class ServerMode(enum.Enum):
    """How a server starts (``--mode``)."""

    READER = "reader"
    SWITCHING = "switching"


def _server_mode(text: str) -> ServerMode:
    try:
        return ServerMode(text.strip().lower())
    except ValueError:
        raise ValueError(f"wants reader or switching, got {text!r}") from None


@dataclass(frozen=True, kw_only=True)
class NntpOptions(Options):
    """The options of an NNTP server."""

    group: tuple[tuple[str, str], ...] = option(
        help="a newsgroup to carry, NAME[=DESCRIPTION]", parse=parse_group_spec, multiple=True,
        metavar="NAME[=DESC]", example="lab.talk=Chatter", show_default="lab.test lab.misc")
    posting: bool = option(True, help="allow POST", parse=yes_no(), metavar="yes|no")
    store: str | None = option(None, help="keep groups and articles in this directory", metavar="DIR",
                               show_default="memory only")
    hostname: str = option("news.lab.test", help="the name in the greeting, Path, Xref and new Message-IDs",
                           metavar="NAME")
    max_article: int = option(1024 * 1024, help="largest article accepted", parse=size(MAX_ARTICLE_WIRE),
                              metavar="SIZE", example="512k", show_default="1M")
    mode: ServerMode = option(  # noqa: RUF009 (option() makes a field, as for the others)
        ServerMode.READER, help="reader, or switching: start in transit mode until MODE READER",
        parse=_server_mode, metavar="reader|switching")
    user: tuple[tuple[str, str], ...] = option(
        help="an account for AUTHINFO, NAME=PASSWORD; with any, posting needs a login",
        parse=name_value("NAME=PASSWORD"), multiple=True, metavar="NAME=PASSWORD", example="alice=wonder")


@dataclass
class _Upload:
    """An article arriving in parts: its content so far, unless too large."""

    parts: list[bytes]
    size: int
    too_large: bool = False


Handler = Callable[["NntpSession", Command], None]


@dataclass(frozen=True)
class _Verb:
    handler: Handler
    reader: bool = True  # only in reader mode
    syntax: str = ""
    max_args: int = 0
    min_args: int = 0


class NntpSession(Session["NntpServer"]):
    """One reader's connection: its mode, group, current article, login,
    and an article being posted."""

    def __init__(self, server: NntpServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.mode = Mode.TRANSIT if server.options.mode is ServerMode.SWITCHING else Mode.READER
        self.group: Group | None = None
        self.article: int | None = None  # the current article number
        self.posting = False  # 340 sent, the article is due
        self.upload: _Upload | None = None  # a long article, between its first part and its end
        self.user: str | None = None  # authenticated as
        self.pending_user: str | None = None  # AUTHINFO USER given, PASS due
        self.posted: list[str] = []  # Message-IDs accepted
        self.closing = False  # QUIT answered: ignore what follows

    @property
    def store(self) -> NewsStore:
        return self.server.store

    def reply(self, response: Response) -> None:
        """Send a response; a long block goes in parts, as it decodes, so
        that no log entry holds it whole."""
        for msg in response.pieces():
            self.conn.send(msg)

    # -- connection life ------------------------------------------------------------

    def connection_made(self) -> None:
        mode = " (mode-switching: send MODE READER)" if self.mode is Mode.TRANSIT else ""
        self.reply(self._greeting(f"{self.server.options.hostname} netlab NNTP server ready{mode}"))

    def _greeting(self, text: str) -> Response:
        if self.may_post() or (self.server.options.posting and self.server.accounts):
            return Response.of(200, f"{text} (posting ok)")
        return Response.of(201, f"{text} (no posting)")

    def may_post(self) -> bool:
        return self.server.options.posting and (not self.server.accounts or self.user is not None)

    def protocol_error(self, exc: ProtocolError) -> None:
        if self.posting or self.upload is not None:
            self.conn.note(f"article discarded: {exc.message}")
            reply = Response.of(441, f"{exc.message}; closing connection")
        else:
            reply = Response.of(500, f"{exc.message}; closing connection")
        self.posting, self.upload = False, None
        try:
            self.reply(reply)
        except ConnectionClosed:
            pass
        self.conn.close()

    def message_received(self, msg: Message) -> None:
        if self.closing:
            return
        match msg:
            case Command():
                self._command(msg)
            case ArticleBlock():
                self._article_begins(msg)
            case ArticlePart():
                self._article_part(msg)
            case ArticleEnd():
                self._article_ends()
            case BadCommand():
                code = 501 if "UTF-8" in msg.reason else 500
                self.reply(Response.of(code, msg.reason[:1].upper() + msg.reason[1:]))

    def _command(self, cmd: Command) -> None:
        verb = _VERBS.get(cmd.verb)
        if verb is None:
            self.reply(Response.of(500, f"Unknown command {cmd.verb[:40]} (HELP lists them)"))
            return
        if verb.reader and self.mode is not Mode.READER:
            self.reply(Response.of(401, "MODE-READER"))
            return
        if not verb.min_args <= len(cmd.args) <= verb.max_args:
            self.reply(Response.of(501, f"Syntax: {cmd.verb} {verb.syntax}".rstrip()))
            return
        verb.handler(self, cmd)

    # -- session ---------------------------------------------------------------------

    def do_capabilities(self, cmd: Command) -> None:
        lines = ["VERSION 2", f"IMPLEMENTATION netlab {__version__}"]
        if self.mode is Mode.READER:
            lines += ["READER", "HDR", "LIST ACTIVE ACTIVE.TIMES HEADERS NEWSGROUPS OVERVIEW.FMT",
                      "NEWNEWS", "OVER MSGID"]
            if self.may_post():
                lines.append("POST")
        else:
            lines.append("MODE-READER")
        if self.server.accounts and self.user is None:
            lines.append("AUTHINFO USER")
        self.reply(Response.of(101, "Capability list:", lines))

    def do_mode(self, cmd: Command) -> None:
        if cmd.args[0].upper() != "READER":
            self.reply(Response.of(501, f"Unknown MODE variant {cmd.args[0][:40]} (only MODE READER)"))
            return
        self.mode = Mode.READER
        self.reply(self._greeting("Reader mode"))

    def do_quit(self, cmd: Command) -> None:
        self.closing = True
        self.reply(Response.of(205, "Bye"))
        self.conn.close()

    def do_date(self, cmd: Command) -> None:
        self.reply(Response.of(111, f"{datetime.now(UTC):%Y%m%d%H%M%S}"))

    def do_help(self, cmd: Command) -> None:
        lines = [f"  {name} {verb.syntax}".rstrip() for name, verb in sorted(_VERBS.items())]
        self.reply(Response.of(100, "Help text follows", ["Commands:", *lines]))

    def do_authinfo(self, cmd: Command) -> None:
        what, value = cmd.args[0].upper(), cmd.args[1]
        accounts = self.server.accounts
        if not accounts:
            self.reply(Response.of(502, "No accounts on this server; nothing to log in to"))
        elif self.user is not None:
            self.reply(Response.of(502, f"Already authenticated as {self.user}"))
        elif what == "USER":
            self.pending_user = value
            self.reply(Response.of(381, "Password required"))
        elif what == "PASS":
            user, self.pending_user = self.pending_user, None
            if user is None:
                self.reply(Response.of(482, "AUTHINFO USER first"))
            elif accounts.get(user) == value:
                self.user = user
                self.reply(Response.of(281, "Authentication accepted"))
            else:
                self.reply(Response.of(481, "Authentication failed"))
        else:
            self.reply(Response.of(501, "Syntax: AUTHINFO USER name | AUTHINFO PASS password"))

    # -- groups ----------------------------------------------------------------------

    def do_group(self, cmd: Command) -> None:
        group = self.store.group(cmd.args[0])
        if group is None:
            self.reply(Response.of(411, f"No such newsgroup {cmd.args[0][:100]}"))
            return
        self._select(group)
        self.reply(Response.of(211, f"{group.count} {group.low} {group.high} {group.name}"))

    def _select(self, group: Group) -> None:
        self.group = group
        numbers = group.numbers()
        self.article = numbers[0] if numbers else None

    def do_listgroup(self, cmd: Command) -> None:
        if cmd.args:
            group = self.store.group(cmd.args[0])
            if group is None:
                self.reply(Response.of(411, f"No such newsgroup {cmd.args[0][:100]}"))
                return
        elif self.group is None:
            self.reply(Response.of(412, "No newsgroup selected"))
            return
        else:
            group = self.group
        low, high = None, None
        if len(cmd.args) > 1:
            bounds = _parse_range(cmd.args[1])
            if bounds is None:
                self.reply(Response.of(501, f"Bad range {cmd.args[1][:40]} (use N, N- or N-M)"))
                return
            low, high = bounds
        self._select(group)
        numbers = [str(n) for n in group.numbers(low, high)[:_MAX_LIST]]
        self.reply(Response.of(211, f"{group.count} {group.low} {group.high} {group.name} list follows",
                               numbers))

    def _move(self, step: int) -> None:
        group = self.group
        if group is None:
            self.reply(Response.of(412, "No newsgroup selected"))
            return
        if self.article is None or self.article not in group.articles:
            self.reply(Response.of(420, "Current article number is invalid"))
            return
        current = self.article
        candidates = [n for n in group.articles if (n > current if step > 0 else n < current)]
        if not candidates:
            code, what = (421, "next") if step > 0 else (422, "previous")
            self.reply(Response.of(code, f"No {what} article in this group"))
            return
        number = min(candidates) if step > 0 else max(candidates)
        self.article = number
        self.reply(Response.of(223, f"{number} {group.articles[number].message_id} retrieved"))

    def do_next(self, cmd: Command) -> None:
        self._move(+1)

    def do_last(self, cmd: Command) -> None:
        self._move(-1)

    # -- articles --------------------------------------------------------------------

    def _find(self, arg: str | None) -> tuple[int, Article] | None:
        """The article ``arg`` names (number, message-id or the current
        one), sending the error response when there is none."""
        if arg is not None and arg.startswith("<"):
            if not _MSGID.fullmatch(arg):
                self.reply(Response.of(501, f"Bad message-id {arg[:80]}"))
                return None
            article = self.store.article(arg)
            if article is None:
                self.reply(Response.of(430, f"No article with message-id {arg[:80]}"))
                return None
            return 0, article
        if arg is not None and not _NUMBER.fullmatch(arg):
            self.reply(Response.of(501, f"Bad argument {arg[:40]} (an article number or <message-id>)"))
            return None
        group = self.group
        if group is None:
            self.reply(Response.of(412, "No newsgroup selected"))
            return None
        if arg is None:
            if self.article is None or self.article not in group.articles:
                self.reply(Response.of(420, "Current article number is invalid"))
                return None
            return self.article, group.articles[self.article]
        number = int(arg)
        article = group.articles.get(number)
        if article is None:
            self.reply(Response.of(423, f"No article numbered {number} in {group.name}"))
            return None
        self.article = number
        return number, article

    def _retrieve(self, cmd: Command, code: int) -> None:
        found = self._find(cmd.args[0] if cmd.args else None)
        if found is None:
            return
        number, article = found
        text = f"{number} {article.message_id}"
        if code == 220:
            self.reply(Response.of(220, text, article.content))
        elif code == 221:
            self.reply(Response.of(221, text, article.head + b"\r\n"))
        elif code == 222:
            self.reply(Response.of(222, text, article.body))
        else:
            self.reply(Response.of(223, text))

    def do_article(self, cmd: Command) -> None:
        self._retrieve(cmd, 220)

    def do_head(self, cmd: Command) -> None:
        self._retrieve(cmd, 221)

    def do_body(self, cmd: Command) -> None:
        self._retrieve(cmd, 222)

    def do_stat(self, cmd: Command) -> None:
        self._retrieve(cmd, 223)

    def _selection(self, arg: str | None) -> list[tuple[int, Article]] | None:
        """What OVER/HDR ``arg`` selects: a message-id, a range, or the
        current article; the error response is sent when it is nothing."""
        if arg is None or arg.startswith("<"):
            found = self._find(arg)
            return None if found is None else [found]
        bounds = _parse_range(arg)
        if bounds is None:
            self.reply(Response.of(501, f"Bad range {arg[:40]} (use N, N- or N-M)"))
            return None
        group = self.group
        if group is None:
            self.reply(Response.of(412, "No newsgroup selected"))
            return None
        numbers = group.numbers(*bounds)[:_MAX_LIST]
        if not numbers:
            self.reply(Response.of(423, "No articles in that range"))
            return None
        return [(n, group.articles[n]) for n in numbers]

    def do_over(self, cmd: Command) -> None:
        chosen = self._selection(cmd.args[0] if cmd.args else None)
        if chosen is not None:
            lines = ["\t".join(article.overview(number)) for number, article in chosen]
            self.reply(Response.of(224, "Overview information follows", lines))

    def do_hdr(self, cmd: Command) -> None:
        chosen = self._selection(cmd.args[1] if len(cmd.args) > 1 else None)
        if chosen is None:
            return
        name = cmd.args[0]
        by_id = len(cmd.args) > 1 and cmd.args[1].startswith("<")
        # XHDR by message-id names the article by it (RFC 2980 §2.6); HDR says 0 (RFC 3977 §8.5)
        lines = [f"{article.message_id if by_id and cmd.verb == 'XHDR' else number}"
                 f" {_field_value(article, name)}".rstrip() for number, article in chosen]
        code = 221 if cmd.verb == "XHDR" else 225
        self.reply(Response.of(code, "Headers follow", lines))

    # -- posting ---------------------------------------------------------------------

    def do_post(self, cmd: Command) -> None:
        if not self.server.options.posting:
            self.reply(Response.of(440, "Posting not permitted on this server"))
        elif not self.may_post():
            self.reply(Response.of(480, "Authentication required for posting (AUTHINFO USER)"))
        else:
            self.posting = True
            self.reply(Response.of(340, "Send article to be posted; end it with a line holding only ."))

    def _article_begins(self, block: ArticleBlock) -> None:
        if not self.posting:
            self.conn.note("discarded an article sent without a 340 invitation")
            return
        self.posting = False
        if not block.streamed:
            self._file(block.content)
            return
        self.upload = _Upload([block.content], len(block.content))
        self._check_size(self.upload)

    def _article_part(self, part: ArticlePart) -> None:
        upload = self.upload
        if upload is not None:
            upload.size += len(part.content)
            if not upload.too_large:
                upload.parts.append(part.content)
                self._check_size(upload)

    def _check_size(self, upload: _Upload) -> None:
        if upload.size > self.server.options.max_article:
            upload.too_large = True
            upload.parts.clear()  # past the cap: count the rest, keep none of it

    def _article_ends(self) -> None:
        upload, self.upload = self.upload, None
        if upload is None:
            return
        if upload.too_large:
            limit = self.server.options.max_article
            why = f"article is {upload.size} bytes; this server takes at most {limit}"
            self.conn.note(f"article refused: {why}")
            self.reply(Response.of(441, f"Posting failed: {why}"))
            return
        self._file(b"".join(upload.parts))

    def _file(self, content: bytes) -> None:
        options = self.server.options
        try:
            article = self.store.post(content, host=options.hostname, max_size=options.max_article)
        except ArticleRejected as exc:
            self.conn.note(f"article refused: {exc.message}")
            self.reply(Response.of(441, f"Posting failed: {exc.message}"))
            return
        self.posted.append(article.message_id)
        filed = ", ".join(f"{g}:{n}" for g, n in article.numbers.items())
        self.conn.note(f"article {article.message_id} filed as {filed}")
        self.reply(Response.of(240, f"Article received {article.message_id}"))

    # -- lists -----------------------------------------------------------------------

    def do_list(self, cmd: Command) -> None:
        keyword = cmd.args[0].upper() if cmd.args else "ACTIVE"
        pattern = cmd.args[1] if len(cmd.args) > 1 else None
        if keyword in ("ACTIVE", "NEWSGROUPS", "ACTIVE.TIMES"):
            groups = self.store.list_groups(pattern)
            if keyword == "ACTIVE":
                lines = [self.server.active_line(g) for g in groups]
                text = "Newsgroups in form: group high low status"
            elif keyword == "NEWSGROUPS":
                lines = [f"{g.name}\t{g.description or '?'}" for g in groups]
                text = "Descriptions follow"
            else:
                lines = [f"{g.name} {int(g.created.timestamp())} netlab" for g in groups]
                text = "Creation times follow"
            self.reply(Response.of(215, text, lines))
        elif keyword == "OVERVIEW.FMT" and pattern is None:
            self.reply(Response.of(215, "Order of fields in overview database", list(OVERVIEW_FORMAT)))
        elif keyword == "HEADERS" and (pattern is None or pattern.upper() in ("MSGID", "RANGE")):
            self.reply(Response.of(215, "Headers and metadata items supported", [":", ":bytes", ":lines"]))
        elif keyword in ("DISTRIB.PATS", "DISTRIBUTIONS", "MODERATORS", "MOTD", "SUBSCRIPTIONS"):
            self.reply(Response.of(503, f"LIST {keyword} is not kept by this server"))
        else:
            self.reply(Response.of(501, f"Unknown LIST keyword {keyword[:40]}"))

    def do_newgroups(self, cmd: Command) -> None:
        since = _parse_when(cmd.args[0], cmd.args[1], cmd.args[2:])
        if since is None:
            self.reply(Response.of(501, "Syntax: NEWGROUPS yyyymmdd hhmmss [GMT]"))
            return
        groups = [g for g in self.store.list_groups() if g.created >= since]
        self.reply(Response.of(231, "List of new newsgroups follows",
                               [self.server.active_line(g) for g in groups]))

    def do_newnews(self, cmd: Command) -> None:
        since = _parse_when(cmd.args[1], cmd.args[2], cmd.args[3:])
        if since is None:
            self.reply(Response.of(501, "Syntax: NEWNEWS wildmat yyyymmdd hhmmss [GMT]"))
            return
        ids = [a.message_id for a in self.store.newnews(cmd.args[0], since)][:_MAX_LIST]
        self.reply(Response.of(230, "List of new articles follows", ids))


class NntpServer(ServerBehaviour[NntpOptions]):
    """Serves the groups of the lab's news store (:data:`NEWS_STORE`),
    creating the ``--group`` ones (default ``lab.test`` and ``lab.misc``)
    when it starts."""

    session_type = NntpSession
    store: NewsStore  # the lab's, from started()

    def __init__(self, options: NntpOptions) -> None:
        super().__init__(options)
        self.accounts: dict[str, str] = dict(options.user)
        self.groups: tuple[tuple[str, str], ...] = options.group or DEFAULT_GROUPS

    def started(self) -> None:
        # a --store other than the lab's store's is a ConfigError here, at serve time
        store = self.services.attach(NEWS_STORE, self.options.store)
        for name, description in self.groups:
            store.ensure_group(name, description)
        self.store = store

    def active_line(self, group: Group) -> str:
        status = "y" if self.options.posting and group.posting else "n"
        return f"{group.name} {group.high} {group.low} {status}"


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
    "ARTICLE": _Verb(NntpSession.do_article, syntax="[number|<message-id>]", max_args=1),
    "AUTHINFO": _Verb(NntpSession.do_authinfo, reader=False, syntax="USER name | PASS password",
                      min_args=2, max_args=2),
    "BODY": _Verb(NntpSession.do_body, syntax="[number|<message-id>]", max_args=1),
    "CAPABILITIES": _Verb(NntpSession.do_capabilities, reader=False, syntax="[keyword]", max_args=1),
    "DATE": _Verb(NntpSession.do_date),
    "GROUP": _Verb(NntpSession.do_group, syntax="newsgroup", min_args=1, max_args=1),
    "HDR": _Verb(NntpSession.do_hdr, syntax="field [range|<message-id>]", min_args=1, max_args=2),
    "HEAD": _Verb(NntpSession.do_head, syntax="[number|<message-id>]", max_args=1),
    "HELP": _Verb(NntpSession.do_help, reader=False),
    "LAST": _Verb(NntpSession.do_last),
    "LIST": _Verb(NntpSession.do_list, syntax="[ACTIVE|NEWSGROUPS|ACTIVE.TIMES|OVERVIEW.FMT|HEADERS [wildmat]]",
                  max_args=2),
    "LISTGROUP": _Verb(NntpSession.do_listgroup, syntax="[newsgroup [range]]", max_args=2),
    "MODE": _Verb(NntpSession.do_mode, reader=False, syntax="READER", min_args=1, max_args=1),
    "NEWGROUPS": _Verb(NntpSession.do_newgroups, syntax="yyyymmdd hhmmss [GMT]", min_args=2, max_args=3),
    "NEWNEWS": _Verb(NntpSession.do_newnews, syntax="wildmat yyyymmdd hhmmss [GMT]", min_args=3, max_args=4),
    "NEXT": _Verb(NntpSession.do_next),
    "OVER": _Verb(NntpSession.do_over, syntax="[range|<message-id>]", max_args=1),
    "POST": _Verb(NntpSession.do_post),
    "QUIT": _Verb(NntpSession.do_quit, reader=False),
    "STAT": _Verb(NntpSession.do_stat, syntax="[number|<message-id>]", max_args=1),
    "XHDR": _Verb(NntpSession.do_hdr, syntax="field [range|<message-id>]", min_args=1, max_args=2),
    "XOVER": _Verb(NntpSession.do_over, syntax="[range]", max_args=1),
}
