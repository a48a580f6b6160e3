"""The lab's news store: newsgroups and their articles (RFC 5536 format).

Protocol-neutral: NNTP serves it today; any later front door (a web
archive, a mail gateway) can share it.  Several servers of one lab share a
single store through the :data:`NEWS_STORE` key, so what one NNTP
server accepts, every other one lists.

Each group numbers its articles 1, 2, 3, ... and never reuses a number; an
article cross-posted to several groups has a number in each (its ``Xref``
header records them, as INN does).  With a directory the store persists:
each accepted article is written to ``articles/`` (to a temporary name,
synced, then renamed, so a crash never leaves half an article), then the
``active`` file of groups and high-water marks is rewritten the same way.
On load the article files are the truth, so nothing accepted is lost.

Tests: tests/protocols/test_nntp.py (the store's own part)
"""

from __future__ import annotations

import email.utils
import fnmatch
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lab.errors import ConfigError, LabError
from lab.services import ServiceKey

__all__ = [
    "DEFAULT_GROUPS",
    "MAX_STORE_BYTES",
    "NEWS_STORE",
    "OVERVIEW_FORMAT",
    "Article",
    "ArticleRejected",
    "Group",
    "NewsStore",
    "format_date",
    "parse_group_spec",
    "parse_headers",
    "valid_group_name",
    "valid_message_id",
    "wildmat",
]

logger = logging.getLogger(__name__)

DEFAULT_GROUPS = (("lab.test", "Testing, testing: post anything here"),
                  ("lab.misc", "Everything else in the lab"))
MAX_STORE_BYTES = 256 * 1024 * 1024  # in memory; a full store refuses posts
# Xref last, with its name in the value (RFC 3977 §8.4 "full"): a reader
# that filters cross-posts then need not fetch each article's headers
OVERVIEW_FORMAT = ("Subject:", "From:", "Date:", "Message-ID:", "References:", ":bytes", ":lines", "Xref:full")

# RFC 3977 §4.1 / RFC 5536 §3.1.4: dot-separated components of letters,
# digits and + - _ (lower case recommended); 497 octets keeps GROUP in a line
_GROUP_RE = re.compile(r"[A-Za-z0-9+_-]+(?:\.[A-Za-z0-9+_-]+)*")
# RFC 5536 §3.1.3: <left@right>, printable ASCII without < > or spaces, 250 octets
_MSGID_RE = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_HEADER_NAME = re.compile(rb"[!-9;-~]+")
_REQUIRED = ("From", "Newsgroups", "Subject")


class ArticleRejected(LabError):
    """An article the store will not take; ``message`` says why."""


def valid_group_name(name: str) -> bool:
    return len(name) <= 497 and _GROUP_RE.fullmatch(name) is not None


def valid_message_id(text: str) -> bool:
    return len(text) <= 250 and _MSGID_RE.fullmatch(text) is not None


def format_date(when: datetime) -> str:
    """An RFC 5322 date, as RFC 5536 §3.1.1 wants in ``Date``."""
    return email.utils.format_datetime(when.astimezone(UTC))


def wildmat(pattern: str, name: str) -> bool:
    """RFC 3977 §4: comma-separated wildmats, the last match wins, ``!``
    negates; ``*``, ``?`` and ``[...]`` as in shell patterns."""
    verdict = False
    for part in pattern.split(","):
        negate = part.startswith("!")
        if fnmatch.fnmatchcase(name, part[1:] if negate else part):
            verdict = not negate
    return verdict


def parse_group_spec(text: str) -> tuple[str, str]:
    """``NAME[=DESCRIPTION]`` -> (name, description); :class:`ValueError`
    for a name RFC 3977 would not carry (an option parser: the message
    follows the option's name)."""
    name, _, description = text.partition("=")
    name = name.strip()
    if not valid_group_name(name):
        raise ValueError(f"wants NAME[=DESCRIPTION] with a newsgroup name of dot-separated parts"
                         f" (letters, digits, + - _), got {text!r}")
    return name, description.strip()


def parse_headers(content: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Split an article into its headers (unfolded, in order) and body.

    :class:`ArticleRejected` when the header section is malformed: a line
    that is neither ``Name: value`` nor a continuation, or no blank line
    before a body.
    """
    head, sep, body = content.partition(b"\r\n\r\n")
    if not sep:
        if content.endswith(b"\r\n") and b"\r\n\r\n" not in content:
            head, body = content[:-2], b""  # headers only, no body
        else:
            head, body = content, b""
    headers: list[tuple[str, str]] = []
    for line in head.split(b"\r\n") if head else []:
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise ArticleRejected("the article starts with a continuation line")
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip().decode("utf-8", "replace"))
            continue
        name_b, colon, value_b = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name_b):
            shown = line[:40].decode("utf-8", "replace")
            raise ArticleRejected(f"not a header line: {shown!r} (is the blank line before the body missing?)")
        headers.append((name_b.decode("ascii"), value_b.strip().decode("utf-8", "replace")))
    return headers, body


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    return next((v for n, v in headers if n.lower() == lname), None)


@dataclass(slots=True)
class Article:
    """One stored article: its exact content (CRLF lines, not dot-stuffed)
    and where it is filed."""

    message_id: str
    content: bytes
    headers: list[tuple[str, str]]
    body: bytes
    numbers: dict[str, int]  # group -> article number there
    arrived: datetime
    serial: int = 0  # arrival order, names the file on disk

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        return _header(self.headers, name)

    @property
    def head(self) -> bytes:
        """The header section, without the blank line."""
        return self.content.partition(b"\r\n\r\n")[0]

    @property
    def lines(self) -> int:
        """Body lines, as the ``:lines`` overview field counts them."""
        return self.body.count(b"\r\n") + (0 if not self.body or self.body.endswith(b"\r\n") else 1)

    def overview(self, number: int) -> list[str]:
        """The RFC 3977 §8.3 overview fields of this article as ``number``."""
        def clean(value: str | None) -> str:
            # §8.3.2: TAB, CR and LF become spaces in overview fields
            return (value or "").replace("\t", " ").replace("\r", " ").replace("\n", " ")

        return [str(number), clean(self.header("Subject")), clean(self.header("From")),
                clean(self.header("Date")), self.message_id, clean(self.header("References")),
                str(len(self.content)), str(self.lines), _full("Xref", self.header("Xref"))]


def _full(name: str, value: str | None) -> str:
    """An overview field kept with its header name (empty when absent)."""
    if value is None:
        return ""
    return f"{name}: " + value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


@dataclass(slots=True)
class Group:
    """One newsgroup: its articles by number and its marks."""

    name: str
    description: str = ""
    posting: bool = True
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    articles: dict[int, Article] = field(default_factory=dict)
    high_water: int = 0  # the highest number ever given out

    @property
    def count(self) -> int:
        return len(self.articles)

    @property
    def low(self) -> int:
        """The lowest article number; high + 1 for an empty group (§6.1.1.2)."""
        return min(self.articles) if self.articles else self.high_water + 1

    @property
    def high(self) -> int:
        return max(self.articles) if self.articles else self.high_water

    def numbers(self, low: int | None = None, high: int | None = None) -> list[int]:
        """Article numbers in ``low..high`` (either end open), ascending."""
        return sorted(n for n in self.articles
                      if (low is None or n >= low) and (high is None or n <= high))


class NewsStore:
    """Newsgroups and articles, in memory and, given ``directory``, on disk."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 max_bytes: int = MAX_STORE_BYTES) -> None:
        self.directory: Path | None = None
        self.max_bytes = max_bytes
        self.groups: dict[str, Group] = {}
        self.by_id: dict[str, Article] = {}
        self.size = 0
        self._serial = 0
        if directory is not None:
            self.attach(directory)

    def attach(self, directory: str | os.PathLike[str]) -> None:
        """Keep the store in ``directory`` from now on, loading what is
        there and writing the groups made so far; the same directory again
        does nothing.  :class:`ConfigError` for another directory, for a
        store that already took articles in memory (their numbers could
        clash with those on disk), and for a directory that cannot be
        read; the store is then as it was."""
        root = Path(directory).expanduser().resolve()
        if self.directory == root:
            return
        if self.directory is not None:
            raise ConfigError(f"this lab's news store already lives in {self.directory}",
                              hint="give every news server of a lab the same --store (or none)")
        if self.by_id:
            raise ConfigError("this lab's news store already holds articles in memory",
                              hint="give the first news server of the lab the --store")
        made, serial = self.groups, self._serial
        self.groups, self.directory = {}, root
        try:
            self._load()
        except BaseException:
            # a bad file may come after good ones: forget what was loaded
            self.groups, self.directory = made, None
            self.by_id, self.size, self._serial = {}, 0, serial
            raise
        for name, group in made.items():
            kept = self.groups.setdefault(name, group)
            if not kept.description:
                kept.description = group.description
        self._save_active()

    # -- groups -------------------------------------------------------------

    def ensure_group(self, name: str, description: str = "", *, posting: bool = True) -> Group:
        """The group ``name``, created if new; a description given here
        replaces an empty one."""
        if not valid_group_name(name):
            raise ConfigError(f"bad newsgroup name {name!r}")
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, description, posting)
            self._save_active()
        elif description and not group.description:
            group.description = description
            self._save_active()
        return group

    def group(self, name: str) -> Group | None:
        return self.groups.get(name)

    def list_groups(self, pattern: str | None = None) -> list[Group]:
        """Groups whose names match the wildmat ``pattern`` (all if None), by name."""
        return [g for name, g in sorted(self.groups.items()) if pattern is None or wildmat(pattern, name)]

    # -- articles -----------------------------------------------------------

    def article(self, message_id: str) -> Article | None:
        return self.by_id.get(message_id)

    def new_message_id(self, host: str) -> str:
        return f"<{datetime.now(UTC):%Y%m%d%H%M%S}.{secrets.token_hex(6)}@{host}>"

    def post(self, content: bytes, *, host: str, max_size: int | None = None,
             now: datetime | None = None) -> Article:
        """File an article (CRLF lines, not dot-stuffed) in its newsgroups.

        Checks RFC 5536 §3.1: ``From``, ``Newsgroups`` and ``Subject`` must be
        there; ``Message-ID``, ``Date`` and ``Path`` are added when missing
        (§3.1.3, §3.1.1, §3.1.5 as an injecting agent).  Newsgroups this
        store does not carry are left out; if none is left, or the
        Message-ID is already known, :class:`ArticleRejected`.
        """
        if max_size is not None and len(content) > max_size:
            raise ArticleRejected(f"article is {len(content)} bytes; this server takes at most {max_size}")
        if self.size + len(content) > self.max_bytes:
            raise ArticleRejected("the news store is full")
        if content and not content.endswith(b"\r\n"):
            content += b"\r\n"
        headers, body = parse_headers(content)
        missing = [name for name in _REQUIRED if not (_header(headers, name) or "").strip()]
        if missing:
            raise ArticleRejected(f"missing required header{'s' if len(missing) > 1 else ''}: "
                                  + ", ".join(missing) + " (RFC 5536 §3.1)")
        names = [n.strip() for n in (_header(headers, "Newsgroups") or "").split(",") if n.strip()]
        bad = [n for n in names if not valid_group_name(n)]
        if bad:
            raise ArticleRejected(f"bad newsgroup name in Newsgroups: {bad[0]!r}")
        groups = [self.groups[n] for n in dict.fromkeys(names) if n in self.groups]
        if not groups:
            raise ArticleRejected(f"no such newsgroup here: {', '.join(names)}")
        closed = [g.name for g in groups if not g.posting]
        if closed:
            raise ArticleRejected(f"posting to {closed[0]} is not allowed")
        now = now or datetime.now(UTC)
        added: list[bytes] = []
        message_id = _header(headers, "Message-ID")
        if message_id is None:
            message_id = self.new_message_id(host)
            added.append(f"Message-ID: {message_id}".encode())
        elif not valid_message_id(message_id):
            raise ArticleRejected(f"malformed Message-ID {message_id!r} (RFC 5536 §3.1.3)")
        if message_id in self.by_id:
            raise ArticleRejected(f"duplicate Message-ID {message_id}")
        if _header(headers, "Date") is None:
            added.append(f"Date: {format_date(now)}".encode())
        path = _header(headers, "Path")
        if path is None:
            added.insert(0, f"Path: {host}!not-for-mail".encode())
        # drop any Xref the poster sent: it is ours to write (RFC 5536 §3.2.14)
        kept = [line for line in content.partition(b"\r\n\r\n")[0].split(b"\r\n")
                if not line.lower().startswith(b"xref:")]
        numbers = {}
        for group in groups:
            group.high_water = max(group.high_water, group.high) + 1
            numbers[group.name] = group.high_water
        xref = f"Xref: {host} " + " ".join(f"{g}:{n}" for g, n in numbers.items())
        head = b"\r\n".join([*kept, *added, xref.encode()])
        content = head + b"\r\n\r\n" + body
        headers, body = parse_headers(content)
        self._serial += 1
        article = Article(message_id, content, headers, body, numbers, now, self._serial)
        self._write_article(article)
        self._file(article)
        self._save_active()
        return article

    def _file(self, article: Article) -> None:
        for name, number in article.numbers.items():
            group = self.groups.get(name)
            if group is None:  # on load, a group the active file lost
                group = self.groups[name] = Group(name)
            group.articles[number] = article
            group.high_water = max(group.high_water, number)
        self.by_id[article.message_id] = article
        self.size += len(article.content)

    def newnews(self, pattern: str, since: datetime) -> list[Article]:
        """Articles in groups matching ``pattern`` that arrived at or after ``since``."""
        seen: dict[str, Article] = {}
        for group in self.list_groups(pattern):
            for article in group.articles.values():
                if article.arrived >= since:
                    seen.setdefault(article.message_id, article)
        return sorted(seen.values(), key=lambda a: a.serial)

    def __iter__(self) -> Iterator[Article]:
        return iter(sorted(self.by_id.values(), key=lambda a: a.serial))

    def __len__(self) -> int:
        return len(self.by_id)

    # -- disk -----------------------------------------------------------------

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _write_article(self, article: Article) -> None:
        if self.directory is None:
            return
        try:
            self._atomic_write(self.directory / "articles" / f"{article.serial:08d}",
                               article.content)
        except OSError as exc:
            self._serial -= 1
            raise ArticleRejected(f"cannot store the article: {exc.strerror or exc}") from None

    def _save_active(self) -> None:
        if self.directory is None:
            return
        # INN's active and newsgroups files in one: name high low flag created description
        lines = [f"{g.name} {g.high_water} {g.low} {'y' if g.posting else 'n'}"
                 f" {int(g.created.timestamp())} {g.description}".rstrip()
                 for g in self.list_groups()]
        try:
            self._atomic_write(self.directory / "active", ("\n".join(lines) + "\n").encode())
        except OSError as exc:
            # the article files are the truth on load; a stale active file only
            # loses empty groups' descriptions, so keep serving
            logger.warning("news store: cannot write %s/active: %s", self.directory, exc)

    def _load(self) -> None:
        assert self.directory is not None
        try:
            (self.directory / "articles").mkdir(parents=True, exist_ok=True)
            active = self.directory / "active"
            text = active.read_text("utf-8") if active.exists() else ""
            paths = sorted((self.directory / "articles").iterdir())
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"cannot use news store directory {self.directory}: {why}",
                              hint="give a writable directory") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            parts = line.split(" ", 5)
            try:
                name, high, _low, flag, created = parts[:5]
                group = Group(name, parts[5] if len(parts) > 5 else "", flag == "y",
                              datetime.fromtimestamp(int(created), UTC), high_water=int(high))
            except ValueError:
                raise ConfigError(f"{active}:{lineno}: not an active line: {line!r}",
                                  hint="each line is: name high low y|n created description") from None
            self.groups[name] = group
        for path in paths:
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)  # a write that never finished
                continue
            self._load_article(path)

    def _load_article(self, path: Path) -> None:
        try:
            serial = int(path.name)
            content = path.read_bytes()
            mtime = path.stat().st_mtime
            headers, body = parse_headers(content)
        except (ValueError, OSError, ArticleRejected) as exc:
            raise ConfigError(f"news store: cannot read article {path}: {exc}") from None
        numbers: dict[str, int] = {}
        for entry in (_header(headers, "Xref") or "").split()[1:]:
            group, _, number = entry.rpartition(":")
            if group and number.isdigit():
                numbers[group] = int(number)
        message_id = _header(headers, "Message-ID") or f"<lost-{serial}@store>"
        try:
            date: datetime | None = email.utils.parsedate_to_datetime(_header(headers, "Date") or "")
        except (TypeError, ValueError):
            date = None
        arrived = date if date is not None and date.tzinfo else datetime.fromtimestamp(mtime, UTC)
        self._serial = max(self._serial, serial)
        self._file(Article(message_id, content, headers, body, numbers, arrived, serial))


NEWS_STORE: ServiceKey[NewsStore] = ServiceKey("news.store", NewsStore)
