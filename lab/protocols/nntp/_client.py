"""NNTP client verbs: ``c.group("lab.test")``, ``c.post(...)``, ``c.over()``.

Each verb sends one command and reads its answer, which the conversation
frames by the command it answers.  A long block arrives in parts: the
verb gathers them, up to :attr:`NntpClient.max_block` bytes.  An error
answer (4xx/5xx) raises :class:`NntpReplyError` holding the response;
``command("...")`` sends any line and returns the response whatever its
code.

Tests: tests/protocols/test_nntp.py, tests/interop/test_nntp_peers.py
"""

from __future__ import annotations

import builtins
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lab.errors import LabError, RemoteProtocolError
from lab.protocols._session import ClientVerbs
from lab.protocols._verbs import Deadline
from lab.protocols.nntp._codec import GREETING, MAX_BLOCK, ArticleBlock, Command, DataEnd, DataPart, Response
from lab.services.news import OVERVIEW_FORMAT

__all__ = ["GroupInfo", "NntpClient", "NntpReplyError", "Overview"]


class NntpReplyError(LabError):
    """The server answered a verb with an error (4xx/5xx); ``response``
    is that answer and ``code`` its code."""

    def __init__(self, response: Response, what: str) -> None:
        super().__init__(f"{what}: {response.code} {response.text}".rstrip())
        self.response = response
        self.code = response.code


@dataclass(frozen=True)
class GroupInfo:
    """A GROUP answer: the estimated count and the low and high marks."""

    name: str
    count: int
    low: int
    high: int


@dataclass(frozen=True)
class Overview:
    """One OVER line: RFC 3977 §8.3's seven fields after the number."""

    number: int
    subject: str
    sender: str
    date: str
    message_id: str
    references: str
    bytes: int
    lines: int
    extra: tuple[str, ...] = ()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _words(response: Response, count: int, what: str) -> list[str]:
    words = response.text.split()
    if len(words) < count:
        raise RemoteProtocolError(f"{what}: the server's {response.code} answer lacks fields: {response.text!r}")
    return words


def _build_article(newsgroups: str | list[str], subject: str, body: str, sender: str,
                   headers: dict[str, str] | None) -> bytes:
    groups = newsgroups if isinstance(newsgroups, str) else ",".join(newsgroups)
    lines = [f"From: {sender}", f"Newsgroups: {groups}", f"Subject: {subject}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode("utf-8") + (b"" if text.endswith("\r\n") else b"\r\n")


class NntpClient(ClientVerbs[Any]):
    """Verbs for an NNTP reader (RFC 3977)."""

    greeting_response: Response | None = None
    max_block = MAX_BLOCK  # the most a verb gathers of one answer's block

    async def _answer(self, deadline: Deadline, what: str) -> Response:
        while True:
            msg = await deadline.receive(self.channel, what)
            if not isinstance(msg, Response):
                continue  # the rest of a block nobody read
            if msg.answers == GREETING:
                self.greeting_response = msg
                continue
            return await self._gather(msg, deadline, what) if msg.streamed else msg

    async def _gather(self, head: Response, deadline: Deadline, what: str) -> Response:
        """The whole of a response that came in parts, unless it is larger
        than :attr:`max_block` (read to its end all the same, so that the
        connection goes on)."""
        content = [head.data or b""]
        size = len(content[0])
        while True:
            msg = await deadline.receive(self.channel, f"the rest of {what}")
            if isinstance(msg, DataEnd):
                break
            if not isinstance(msg, DataPart):
                raise RemoteProtocolError(f"expected the rest of the {head.code} block, got {msg.summary()}")
            size += len(msg.content)
            if size <= self.max_block:
                content.append(msg.content)
        if size > self.max_block:
            raise LabError(f"nntp: {what} holds {size} bytes, more than the {self.max_block} a verb gathers",
                           hint="send the command and take its parts with receive()")
        return dataclasses.replace(head, data=b"".join(content))

    async def _ask(self, verb: str, *args: str | int, timeout: float, ok: tuple[int, ...] = ()) -> Response:
        deadline = Deadline(timeout)
        await self.channel.send(Command.of(verb, *args))
        response = await self._answer(deadline, f"the answer to {verb}")
        if response.code >= 400 or (ok and response.code not in ok):
            raise NntpReplyError(response, " ".join(str(w) for w in (verb, *args)))
        return response

    async def greeting(self, timeout: float = 10.0) -> Response:
        """The server's greeting (200: posting allowed, 201: not)."""
        if self.greeting_response is None:
            msg = await Deadline(timeout).receive(self.channel, "the greeting")
            if not isinstance(msg, Response):
                raise RemoteProtocolError(f"expected a greeting, got {msg.summary()}")
            self.greeting_response = msg
        return self.greeting_response

    async def command(self, line: str, *, timeout: float = 10.0) -> Response:
        """Send any command line and return its answer, whatever the code."""
        words = line.split()
        if not words:
            raise LabError("nntp: an empty command", hint='e.g. command("LIST NEWSGROUPS")')
        deadline = Deadline(timeout)
        await self.channel.send(Command.of(*words))
        return await self._answer(deadline, f"the answer to {words[0].upper()}")

    async def capabilities(self, *, timeout: float = 10.0) -> list[str]:
        """The capability lines (``VERSION 2``, ``READER``, ...)."""
        return (await self._ask("CAPABILITIES", timeout=timeout, ok=(101,))).lines

    async def mode_reader(self, *, timeout: float = 10.0) -> bool:
        """MODE READER; true when posting is allowed (200)."""
        return (await self._ask("MODE", "READER", timeout=timeout, ok=(200, 201))).code == 200

    async def login(self, user: str, password: str, *, timeout: float = 10.0) -> None:
        """AUTHINFO USER/PASS (RFC 4643)."""
        response = await self._ask("AUTHINFO", "USER", user, timeout=timeout, ok=(281, 381))
        if response.code == 381:
            await self._ask("AUTHINFO", "PASS", password, timeout=timeout, ok=(281,))

    async def group(self, name: str, *, timeout: float = 10.0) -> GroupInfo:
        """Select a group; its count and marks."""
        words = _words(await self._ask("GROUP", name, timeout=timeout, ok=(211,)), 4, "GROUP")
        return GroupInfo(words[3], _int(words[0]), _int(words[1]), _int(words[2]))

    async def listgroup(self, name: str | None = None, range: str | None = None, *,
                        timeout: float = 10.0) -> builtins.list[int]:
        """Select a group (or keep the current one) and list its article numbers."""
        args = [a for a in (name, range) if a is not None]
        if range is not None and name is None:
            raise LabError("nntp: listgroup needs the group name to take a range")
        response = await self._ask("LISTGROUP", *args, timeout=timeout, ok=(211,))
        return [_int(line) for line in response.lines if line.strip()]

    async def _article(self, verb: str, code: int, which: int | str | None, timeout: float) -> Response:
        args = [] if which is None else [which]
        return await self._ask(verb, *args, timeout=timeout, ok=(code,))

    async def article(self, which: int | str | None = None, *, timeout: float = 10.0) -> bytes:
        """A whole article (by number, <message-id>, or the current one)."""
        return (await self._article("ARTICLE", 220, which, timeout)).data or b""

    async def head(self, which: int | str | None = None, *, timeout: float = 10.0) -> bytes:
        """An article's headers."""
        return (await self._article("HEAD", 221, which, timeout)).data or b""

    async def body(self, which: int | str | None = None, *, timeout: float = 10.0) -> bytes:
        """An article's body."""
        return (await self._article("BODY", 222, which, timeout)).data or b""

    async def stat(self, which: int | str | None = None, *, timeout: float = 10.0) -> tuple[int, str]:
        """(number, message-id) of an article, without fetching it."""
        words = _words(await self._article("STAT", 223, which, timeout), 2, "STAT")
        return _int(words[0]), words[1]

    async def next(self, *, timeout: float = 10.0) -> tuple[int, str]:
        """Move to the next article: (number, message-id)."""
        words = _words(await self._ask("NEXT", timeout=timeout, ok=(223,)), 2, "NEXT")
        return _int(words[0]), words[1]

    async def last(self, *, timeout: float = 10.0) -> tuple[int, str]:
        """Move to the previous article: (number, message-id)."""
        words = _words(await self._ask("LAST", timeout=timeout, ok=(223,)), 2, "LAST")
        return _int(words[0]), words[1]

    async def over(self, range: str | int | None = None, *, timeout: float = 10.0) -> builtins.list[Overview]:
        """Overview lines for a range (``"1-"``, ``"3-7"``, a number, a
        <message-id>) or the current article."""
        args = [] if range is None else [range]
        response = await self._ask("OVER", *args, timeout=timeout, ok=(224,))
        out = []
        for line in response.lines:
            fields = line.split("\t")
            fields += [""] * (len(OVERVIEW_FORMAT) + 1 - len(fields))
            out.append(Overview(number=_int(fields[0]), subject=fields[1], sender=fields[2],
                                date=fields[3], message_id=fields[4], references=fields[5],
                                bytes=_int(fields[6]), lines=_int(fields[7]), extra=tuple(fields[8:])))
        return out

    async def hdr(self, field: str, range: str | int | None = None, *,
                  timeout: float = 10.0) -> builtins.list[tuple[int, str]]:
        """One header (or ``:bytes``/``:lines``) for a range: (number, value) pairs."""
        args = [field] + ([] if range is None else [str(range)])
        response = await self._ask("HDR", *args, timeout=timeout, ok=(225,))
        pairs = [line.partition(" ") for line in response.lines]
        return [(_int(number), value) for number, _, value in pairs]

    async def post(self, article: bytes | str | None = None, *, newsgroups: str | builtins.list[str] = "lab.test",
                   subject: str = "", body: str = "", sender: str = "netlab <netlab@lab.test>",
                   headers: dict[str, str] | None = None, timeout: float = 10.0) -> str:
        """Post an article and return the Message-ID the server reports (or
        the one the article carried).  Give the whole article, or its parts:
        ``post(subject="hi", body="hello")`` posts to lab.test."""
        if article is None:
            if not subject:
                raise LabError("nntp: post needs an article or a subject",
                               hint='e.g. post(subject="hello", body="first post")')
            article = _build_article(newsgroups, subject, body, sender, headers)
        block = ArticleBlock.of(article)
        deadline = Deadline(timeout)
        await self._ask("POST", timeout=timeout, ok=(340,))
        for piece in block.pieces():  # a long article goes in parts, as it decodes
            await self.channel.send(piece)
        response = await self._answer(deadline, "the answer to the article")
        if response.code != 240:
            raise NntpReplyError(response, "posting the article")
        ids = [w for w in response.text.split() if w.startswith("<") and w.endswith(">")]
        return ids[0] if ids else (block.header("Message-ID") or "")

    async def date(self, *, timeout: float = 10.0) -> datetime:
        """The server's clock (DATE, UTC)."""
        response = await self._ask("DATE", timeout=timeout, ok=(111,))
        try:
            return datetime.strptime(response.text.split()[0], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except (ValueError, IndexError):
            raise RemoteProtocolError(f"DATE: not a yyyymmddhhmmss time: {response.text!r}") from None

    async def help(self, *, timeout: float = 10.0) -> str:
        """The server's help text."""
        return "\n".join((await self._ask("HELP", timeout=timeout, ok=(100,))).lines)

    async def newgroups(self, since: datetime, *, timeout: float = 10.0) -> builtins.list[str]:
        """Groups created since ``since``: their active lines."""
        when = since.astimezone(UTC)
        response = await self._ask("NEWGROUPS", f"{when:%Y%m%d}", f"{when:%H%M%S}", "GMT",
                                   timeout=timeout, ok=(231,))
        return response.lines

    async def newnews(self, pattern: str, since: datetime, *, timeout: float = 10.0) -> builtins.list[str]:
        """Message-IDs of articles in groups matching ``pattern`` since ``since``."""
        when = since.astimezone(UTC)
        response = await self._ask("NEWNEWS", pattern, f"{when:%Y%m%d}", f"{when:%H%M%S}", "GMT",
                                   timeout=timeout, ok=(230,))
        return response.lines

    async def quit(self, *, timeout: float = 10.0) -> Response:
        """QUIT: the 205 answer; the server then closes."""
        response = await self._ask("QUIT", timeout=timeout, ok=(205,))
        await self.channel.wait_closed(timeout)
        return response

    async def list(self, keyword: str = "ACTIVE", pattern: str | None = None, *,
                   timeout: float = 10.0) -> builtins.list[str]:
        """LIST ACTIVE / NEWSGROUPS / ACTIVE.TIMES / OVERVIEW.FMT / HEADERS:
        the lines of the answer."""
        args = [keyword] + ([] if pattern is None else [pattern])
        return (await self._ask("LIST", *args, timeout=timeout, ok=(215,))).lines


