"""Tests for lab/protocols/nntp and lab/services/news.py: the conversation
(both sides and an observer), the reader server driven in memory, the
client verbs, the store and its disk copy, and hostile input on sockets."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import ConfigError, LabError, LocalProtocolError, ProtocolError, RemoteProtocolError
from lab.protocols import nntp
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import STREAM_ABOVE
from lab.protocols.nntp import (
    NEWS_STORE,
    ArticleBlock,
    ArticleEnd,
    ArticlePart,
    BadCommand,
    Command,
    DataEnd,
    DataPart,
    NntpClient,
    NntpConversation,
    NntpReplyError,
    Response,
    ServerMode,
)
from lab.protocols.nntp._codec import GREETING, MAX_DATA_LINE, POSTED, is_multiline
from lab.services import Services
from lab.services.news import ArticleRejected, NewsStore, parse_headers, wildmat

SETTINGS = settings(deadline=None, max_examples=150)
ARTICLE = b"From: alice@lab.test\r\nNewsgroups: lab.test\r\nSubject: hello\r\n\r\nfirst line\r\n.dotted\r\n"
LONG_BODY = b"".join(b"%06d " % i + b"x" * 64 + b"\r\n" for i in range(3000))  # 213 KB, 3000 lines
LONG = b"From: alice@lab.test\r\nNewsgroups: lab.test\r\nSubject: long\r\n\r\n" + LONG_BODY


def feed_bytewise(conv: NntpConversation, data: bytes) -> list[Message]:
    out = []
    for i in range(len(data)):
        out += conv.feed(data[i : i + 1])
    return out


def attrs(msgs: list[Message], *names: str) -> list[tuple[Any, ...]]:
    """The named fields of each message, to compare lists of them."""
    return [tuple(getattr(m, name) for name in names) for m in msgs]


def joined(msgs: list[Message]) -> bytes:
    """The content of a block that came in parts, put together."""
    return b"".join(m.data or b"" if isinstance(m, Response) else getattr(m, "content", b"") for m in msgs)


def server_side() -> NntpConversation:
    """A server's conversation that has greeted."""
    conv = NntpConversation(Role.SERVER)
    conv.send(Response.of(200, "hi"))
    conv.take_sent()
    return conv


def client_side() -> NntpConversation:
    """A client's conversation that has read the greeting."""
    conv = NntpConversation(Role.CLIENT)
    conv.feed(b"200 hi\r\n")
    return conv


# -- what the client sends, as the server decodes it --------------------------------------


def test_commands_parse_one_byte_at_a_time_and_whole() -> None:
    """Verbs are upper-cased, arguments split on spaces and tabs; bare LF is accepted."""
    data = b"group lab.test\r\nLIST  ACTIVE\tlab.*\r\nDATE\n"
    for msgs in (server_side().feed(data), feed_bytewise(server_side(), data)):
        assert attrs(msgs, "verb", "args") == [
            ("GROUP", ("lab.test",)), ("LIST", ("ACTIVE", "lab.*")), ("DATE", ())]
        assert b"".join(m.raw for m in msgs) == data
        assert msgs[0].kind == "GROUP"


@pytest.mark.parametrize(("raw", "why"), [
    (b"DA\x00TE\r\n", "NUL"),
    (b"X" * 600 + b"\r\n", "longer than 512"),
    (b"GROUP caf\xe9\r\n", "not UTF-8"),
    (b"\r\n", "empty"),
    (b"GR\rOUP\r\n", "CR inside"),
    (b"GROUP \x07\r\n", "control character"),
])
def test_bad_command_lines_are_messages_not_errors(raw: bytes, why: str) -> None:
    """A malformed line that fits the caps is answered, not fatal."""
    conv = server_side()
    msg = conv.feed(raw + b"DATE\r\n")[0]
    assert isinstance(msg, BadCommand) and why in msg.reason and msg.raw == raw
    assert conv.feed(b"HELP\r\n")[0].kind == "HELP"


def test_endless_line_is_an_error_early() -> None:
    """More than 4 KiB without a line feed cannot be resynchronised."""
    conv = server_side()
    with pytest.raises(RemoteProtocolError, match="longer than"):
        conv.feed(b"A" * 5000)
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"DATE\r\n")  # spent


def test_stream_ending_inside_a_command_is_an_error() -> None:
    """A last line without its line feed is cut off, not a command."""
    conv = server_side()
    assert conv.feed(b"DATE") == []
    with pytest.raises(RemoteProtocolError, match="no CRLF"):
        conv.feed(b"")


def test_post_holds_what_follows_until_340_then_reads_the_article_unstuffed() -> None:
    """After POST the bytes wait for the answer; after 340 they are one article until '.'."""
    conv = server_side()
    [post] = conv.feed(b"POST\r\n")
    assert post.kind == "POST" and conv.post_waiting
    block = ArticleBlock.of(ARTICLE)
    assert b"\r\n..dotted\r\n" in block.raw
    assert feed_bytewise(conv, block.raw + b"DATE\r\n") == []  # held
    conv.send(Response.of(340, "send it"))
    msgs = []
    while (msg := conv.next_message()) is not None:
        msgs.append(msg)
    assert isinstance(msgs[0], ArticleBlock) and msgs[0].content == ARTICLE and msgs[0].raw == block.raw
    assert msgs[1].kind == "DATE"
    assert list(conv.asked) == [POSTED, "DATE"]


def test_refused_post_returns_to_commands() -> None:
    """Any answer but 340 makes the held bytes commands."""
    conv = server_side()
    conv.feed(b"POST\r\nDATE\r\n")
    conv.send(Response.of(440, "no posting"))
    assert [m.kind for m in conv.feed(b"HELP\r\n")] == ["DATE", "HELP"]


@pytest.mark.parametrize(("answer", "kinds"), [
    (340, ["article", "DATE"]),
    (440, ["FROM:", "NEWSGROUPS:", "SUBJECT:", "bad-command", "FIRST", "..DOTTED", ".", "DATE"]),
])
def test_an_article_sent_before_the_340_is_what_the_answer_makes_it(answer: int, kinds: list[str]) -> None:
    """Pipelined after POST, the article is the article if POST is accepted
    (as INN takes it) and command lines if it is refused (as INN reads them)."""
    conv = server_side()
    conv.feed(b"POST\r\n" + ArticleBlock.of(ARTICLE).raw + b"DATE\r\n")
    conv.send(Response.of(answer))
    assert [m.kind for m in conv.feed(b"")] == kinds


def test_ihave_and_335_frame_an_article_as_post_and_340_do() -> None:
    """A transit server's IHAVE: the article follows a 335, not a 435."""
    for answer, kind in ((335, "article"), (435, "FROM:")):
        conv = client_side()
        conv.send_data(b"IHAVE <a@b>\r\n" + ArticleBlock.of(ARTICLE).raw)
        conv.feed(Response.of(answer).raw)
        assert [m.kind for m in conv.take_sent()][:2] == ["IHAVE", kind]


def test_disconnect_inside_an_article_is_an_error() -> None:
    """An article cut off by the end of the stream is never an article."""
    conv = server_side()
    conv.feed(b"POST\r\n")
    conv.send(Response.of(340))
    conv.feed(b"From: a@b\r\nSubject: x\r\n")
    with pytest.raises(RemoteProtocolError, match="inside a posted article"):
        conv.feed(b"")


def test_closing_instead_of_sending_the_article_is_no_error() -> None:
    """After 340 a client may hang up without a byte of the article."""
    conv = server_side()
    conv.feed(b"POST\r\n")
    conv.send(Response.of(340))
    assert conv.feed(b"") == []


def test_article_line_beyond_the_cap_is_an_error() -> None:
    """A line of more than 1 MiB in an article cannot be framed."""
    conv = server_side()
    conv.feed(b"POST\r\n")
    conv.send(Response.of(340))
    with pytest.raises(RemoteProtocolError, match="longer than"):
        conv.feed(b"x" * (MAX_DATA_LINE + 10))


def test_a_long_article_comes_in_parts() -> None:
    """Beyond 64 KiB an article is its first part (streamed), parts and an end,
    none much larger than 64 KiB, adding up to the article."""
    conv = server_side()
    conv.feed(b"POST\r\n")
    conv.send(Response.of(340))
    msgs = feed_in(conv, ArticleBlock.of(LONG).raw, 5000)
    head, *parts, end = msgs
    assert isinstance(head, ArticleBlock) and head.streamed and head.header("Subject") == "long"
    assert all(isinstance(p, ArticlePart) for p in parts) and isinstance(end, ArticleEnd)
    assert joined(msgs) == LONG
    assert end.size == len(LONG) and end.raw == b".\r\n"
    assert max(len(m.raw) for m in msgs) < STREAM_ABOVE + 200
    assert list(conv.asked) == [POSTED]


def feed_in(conv: NntpConversation, data: bytes, step: int) -> list[Message]:
    out: list[Message] = []
    for i in range(0, len(data), step):
        out += conv.feed(data[i : i + step])
    return out


# -- what the server sends, as the client decodes it ----------------------------------------


def test_211_is_a_list_only_after_listgroup() -> None:
    """Whether a response has a block depends on the command it answers."""
    conv = NntpConversation(Role.CLIENT)
    conv.send(Command.of("GROUP", "lab.test"))
    conv.send(Command.of("LISTGROUP", "lab.test"))
    data = b"200 hi\r\n211 2 1 2 lab.test\r\n211 2 1 2 lab.test list\r\n1\r\n2\r\n.\r\n"
    msgs = feed_bytewise(conv, data)
    assert attrs(msgs, "code", "answers", "data") == [
        (200, GREETING, None), (211, "GROUP", None), (211, "LISTGROUP", b"1\r\n2\r\n")]


def test_raw_sends_are_followed_too() -> None:
    """Commands and an article sent as raw bytes are decoded and remembered."""
    conv = NntpConversation(Role.CLIENT)
    conv.send_data(b"LISTGR")
    conv.send_data(b"OUP lab.test\r\nPOST\r\n")
    assert list(conv.asked) == [GREETING, "LISTGROUP", "POST"]
    conv.send_data(b"Subject: x\r\n\r\nbody\r\n.\r\nGROUP lab.test\r\n")  # before the 340: held
    assert [m.kind for m in conv.take_sent()] == ["LISTGROUP", "POST"]
    conv.feed(b"200 hi\r\n211 0 1 0 lab.test\r\n.\r\n340 go\r\n")
    assert [m.kind for m in conv.take_sent()] == ["article", "GROUP"]
    assert list(conv.asked) == [POSTED, "GROUP"]


def test_multiline_responses_unstuff() -> None:
    """A block's dot-stuffing is undone in data, kept in raw."""
    conv = client_side()
    conv.send(Command.of("ARTICLE", 1))
    raw = Response.of(220, "1 <a@b>", ARTICLE).raw
    [msg] = conv.feed(raw)
    assert isinstance(msg, Response) and msg.data == ARTICLE and msg.raw == raw and msg.answers == "ARTICLE"


@pytest.mark.parametrize("raw", [b"hello\r\n", b"99 x\r\n", b"600 x\r\n", b"200x\r\n", b"\r\n"])
def test_malformed_status_lines_are_errors(raw: bytes) -> None:
    """Anything but a three-digit code 1xx-5xx and text is not NNTP."""
    with pytest.raises(RemoteProtocolError, match="not an NNTP status line"):
        NntpConversation(Role.CLIENT).feed(raw)


def test_close_inside_a_block_is_an_error() -> None:
    """A block without its '.' line is cut off."""
    conv = client_side()
    conv.send(Command.of("HELP"))
    conv.feed(b"100 help\r\nline\r\n")
    with pytest.raises(RemoteProtocolError, match="inside a multi-line response"):
        conv.feed(b"")


def test_a_long_response_comes_in_parts_as_the_server_sends_it() -> None:
    """Beyond 64 KiB a block is a streamed head, parts and an end; the
    server's pieces() cut it where the client's decoder does."""
    response = Response.of(220, "1 <a@b>", LONG)
    sent = list(response.pieces())
    conv = client_side()
    conv.send(Command.of("ARTICLE", 1))
    got = feed_in(conv, response.raw, 7000)
    assert [type(m) for m in got] == [type(m) for m in sent] and len(got) > 3
    assert [m.raw for m in got] == [m.raw for m in sent]
    head, *parts, end = got
    assert isinstance(head, Response) and head.streamed and head.answers == "ARTICLE"
    assert all(isinstance(p, DataPart) for p in parts) and isinstance(end, DataEnd)
    assert joined(got) == LONG
    assert "in parts" in head.summary() and head.fields()["streamed"]
    assert list(Response.of(224, "x", ["a"]).pieces()) == [Response.of(224, "x", ["a"])]


def test_parts_sent_as_messages_pass_and_raw_bytes_carry_them_on() -> None:
    """A long block sent as messages is followed without decoding it again;
    raw bytes after its head or parts carry on the same block."""
    head, *parts, end = Response.of(220, "1 <a@b>", LONG).pieces()
    conv = server_side()
    conv.feed(b"ARTICLE 1\r\nDATE\r\n")
    for msg in (head, *parts[:1]):
        conv.send(msg)
    conv.send_data(b"".join(p.raw for p in parts[1:]) + end.raw + b"111 20240101000000\r\n")
    sent = conv.take_sent()
    assert sent[:2] == [head, parts[0]] and joined(sent[:-2]) == LONG
    assert isinstance(sent[-2], DataEnd) and sent[-2].size == len(LONG) and sent[-1].kind == "response"
    assert not conv.data_open and list(conv.asked) == []
    article = ArticleBlock.of(LONG)
    client = client_side()
    client.send(Command.of("POST"))
    client.feed(b"340 go\r\n")
    first, *rest = article.pieces()
    client.send(first)
    client.send_data(b"".join(m.raw for m in rest))
    assert joined(client.take_sent()[1:]) == LONG and not client.article_open


def test_what_each_side_may_not_send() -> None:
    """Bad arguments, long lines, responses from clients, commands from
    servers and an article before POST are refused before they go out."""
    with pytest.raises(LocalProtocolError):
        Command.of("GROUP", "two words")
    with pytest.raises(LocalProtocolError):
        Command.of("GROUP", "x" * 600)
    with pytest.raises(LocalProtocolError):
        Response.of(200, "a\r\nb")
    with pytest.raises(LocalProtocolError, match="not Response"):
        client_side().send(Response.of(200))
    with pytest.raises(LocalProtocolError, match="not Command"):
        server_side().send(Command.of("DATE"))
    with pytest.raises(LocalProtocolError, match="after POST"):
        client_side().send(ArticleBlock.of(ARTICLE))
    with pytest.raises(LocalProtocolError, match="without a streamed message"):
        server_side().send(DataEnd(raw=b".\r\n", size=0))
    with pytest.raises(LocalProtocolError, match="without a streamed message"):
        client_side().send(ArticlePart(raw=b"x\r\n", content=b"x\r\n"))


def test_message_descriptions_and_matching() -> None:
    """Summaries are one line; the password of AUTHINFO PASS is hidden;
    server-made dates and ids are volatile; a code pattern matches the code."""
    assert Command.of("AUTHINFO", "PASS", "secret").summary() == "AUTHINFO PASS ****"
    assert "secret" not in str(Command.of("AUTHINFO", "PASS", "secret").fields())
    listing = Response.of(215, "list", ["a 1 1 y", "b 2 1 n"])
    assert listing.summary() == "215 list (+2 lines)"
    assert listing.fields()["lines"] == ["a 1 1 y", "b 2 1 n"]
    assert "text" in Response.of(111, "20240101000000").volatile
    assert "data" in Response.of(220, "1 <a@b>", ARTICLE).volatile
    assert Response.of(211, "0 1 0 x").volatile == frozenset()
    block = ArticleBlock.of(ARTICLE)
    assert block.summary() == f"article 'hello' to lab.test ({len(ARTICLE)} bytes)"
    assert ["Subject", "hello"] in block.fields()["headers"]
    group = Response.of(211, "0 1 0 lab.211")
    assert group.matches(211) and group.matches("211") and not group.matches(1)
    assert group.matches("lab.211") and not group.matches(212) and not group.matches("212")


# -- conversation laws ----------------------------------------------------------------------

_word = st.text(st.sampled_from("abcXYZ019.-<>@*"), min_size=1, max_size=12)
_command_lines = st.lists(
    st.builds(lambda v, a: " ".join([v, *a]).encode() + b"\r\n",
              st.sampled_from(["GROUP", "ARTICLE", "LIST", "OVER", "DATE", "foo", "HEAD", "LISTGROUP"]),
              st.lists(_word, max_size=3)),
    max_size=8)


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_stream_laws_on_any_bytes(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side, split anywhere, received, sent or observed:
    only RemoteProtocolError, the same messages, adding up to the bytes."""
    for sender in Role:
        laws.stream(nntp.SPEC.conversation, sender, data, cuts)
        laws.stream(nntp.SPEC.conversation, sender, data, cuts, eof=False)


@SETTINGS
@given(lines=_command_lines, junk=st.binary(max_size=40), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_stream_laws_on_command_lines(laws: ConversationLaws, lines: list[bytes], junk: bytes,
                                      cuts: list[int]) -> None:
    """Command lines and a line of junk: one message each, however split."""
    data = b"".join(lines) + junk.replace(b"\n", b"") + b"\r\n"
    msgs = laws.stream(nntp.SPEC.conversation, Role.CLIENT, data, cuts)
    assert len(msgs) == len(lines) + 1


def after(client: bytes, server: bytes) -> Callable[[Role | None, Transport], NntpConversation]:
    """A conversation factory for the laws: each part has seen the client
    send ``client`` and the server answer ``server`` (through its own API)."""

    def make(role: Role | None, transport: Transport) -> NntpConversation:
        conv = NntpConversation(role, transport)
        if role is None:
            conv.observe(client, Role.CLIENT)
            conv.observe(server, Role.SERVER)
        elif role is Role.CLIENT:
            conv.send_data(client)
            conv.feed(server)
        else:
            conv.feed(client)
            conv.send_data(server)
        conv.take_sent()
        return conv

    return make


_content = st.lists(st.text(st.sampled_from("ab .\t:é"), max_size=12), max_size=6).map(
    lambda lines: "".join(line + "\r\n" for line in lines).encode())


@SETTINGS
@given(content=_content, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_article_round_trip(laws: ConversationLaws, content: bytes, cuts: list[int]) -> None:
    """Any article content survives stuffing, splitting and unstuffing, on every side."""
    [article] = laws.stream(after(b"POST\r\n", b"200 hi\r\n340 go\r\n"), Role.CLIENT,
                            ArticleBlock.of(content).raw, cuts)
    assert isinstance(article, ArticleBlock) and article.content == content


@SETTINGS
@given(replies=st.lists(st.tuples(st.sampled_from([111, 211, 215, 220, 223, 224, 340, 411, 500]),
                                  st.text(st.sampled_from("ab 1<>"), max_size=10), _content),
                        max_size=5),
       cuts=st.lists(st.integers(0, 400), max_size=6))
def test_response_round_trip(laws: ConversationLaws, replies: list[tuple[int, str, bytes]],
                             cuts: list[int]) -> None:
    """Responses a server sends decode to the same codes and blocks, on every side."""
    sent = [Response.of(code, text.strip(), data if is_multiline(code, None) else None)
            for code, text, data in replies]
    msgs = laws.stream(after(b"", b"200 hi\r\n"), Role.SERVER, b"".join(r.raw for r in sent), cuts)
    assert attrs(msgs, "code", "text", "data") == [(r.code, r.text, r.data) for r in sent]


@settings(deadline=None, max_examples=10)
@given(cuts=st.lists(st.integers(0, 250_000), max_size=8))
def test_long_blocks_stream_alike_however_split(laws: ConversationLaws, cuts: list[int]) -> None:
    """A long POSTed article and a long ARTICLE answer decode to the same
    pieces whatever the split, received, sent or observed."""
    posted = laws.stream(after(b"POST\r\n", b"200 hi\r\n340 go\r\n"), Role.CLIENT, ArticleBlock.of(LONG).raw, cuts)
    assert isinstance(posted[0], ArticleBlock) and posted[0].streamed and isinstance(posted[-1], ArticleEnd)
    answer = Response.of(220, "1 <a@b>", LONG)
    got = laws.stream(after(b"ARTICLE 1\r\n", b"200 hi\r\n"), Role.SERVER, answer.raw, cuts)
    assert [m.raw for m in got] == [m.raw for m in answer.pieces()] and isinstance(got[-1], DataEnd)


# -- the server, in memory -------------------------------------------------------------------


class Talk:
    """Drive an NntpServer with bytes through a server and a client
    conversation, as the lab does, keeping a transcript for observers."""

    transport = Transport.TCP

    def __init__(self, **options: Any) -> None:
        server = nntp.SPEC.server(nntp.SPEC.resolve_options(options))
        assert isinstance(server, nntp.NntpServer)
        self.server = server
        server.started()
        self.client = NntpConversation(Role.CLIENT)
        self.transcript: list[tuple[Role, bytes]] = []
        self.seen: dict[Role, list[Message]] = {Role.CLIENT: [], Role.SERVER: []}
        self._got: list[Message] = []
        self.peer = FakePeer(spec=nntp.SPEC, on_write=self._server_wrote)
        self.session: nntp.NntpSession = open_session(self.server, self.peer)
        [greeting] = self._take()
        assert isinstance(greeting, Response)
        self.greeting = greeting

    def _server_wrote(self, data: bytes) -> None:
        self.transcript.append((Role.SERVER, data))
        msgs = self.client.feed(data)
        self.seen[Role.CLIENT] += msgs
        self._got += msgs

    def _take(self) -> list[Message]:
        got, self._got = self._got, []
        return got

    def __call__(self, data: bytes | str) -> list[Message]:
        raw = data.encode() if isinstance(data, str) else data
        if not raw.endswith(b"\n"):
            raw += b"\r\n"
        self.transcript.append((Role.CLIENT, raw))
        self.client.send_data(raw)
        conv = self.peer.conversation
        try:
            conv.receive_data(raw)
            while not self.peer.closed and (msg := conv.next_message()) is not None:
                self.seen[Role.SERVER].append(msg)
                self.session.message_received(msg)
        except ProtocolError as exc:
            self.session.protocol_error(exc)
        return self._take()

    def one(self, data: bytes | str) -> Response:
        [reply] = self(data)
        assert isinstance(reply, Response)
        return reply

    def code(self, data: bytes | str) -> int:
        return self.one(data).code

    def post(self, article: bytes) -> Response:
        assert self.code("POST") == 340
        return self.one(ArticleBlock.of(article).raw)


class Joined:
    """A transcript with each run of chunks from one side joined into one."""

    transport = Transport.TCP

    def __init__(self, recorded: Talk | Loopback) -> None:
        self.seen = recorded.seen
        self.transcript: list[tuple[Role, bytes]] = []
        for sender, chunk in recorded.transcript:
            if self.transcript and self.transcript[-1][0] is sender:
                self.transcript[-1] = (sender, self.transcript[-1][1] + chunk)
            else:
                self.transcript.append((sender, chunk))


def test_greeting_and_capabilities() -> None:
    """200 when posting is allowed, 201 when not; CAPABILITIES says the same."""
    talk = Talk()
    assert talk.greeting.matches(200) and talk.greeting.answers == GREETING
    assert Talk(posting="no").greeting.matches(201)
    caps = talk.one("CAPABILITIES").lines
    assert {"VERSION 2", "READER", "POST", "OVER MSGID", "HDR"} <= set(caps)
    assert Talk(posting="no").one("CAPABILITIES").lines.count("POST") == 0


def test_group_article_navigation() -> None:
    """GROUP, ARTICLE/HEAD/BODY/STAT by number and id, NEXT/LAST, with their codes."""
    talk = Talk()
    talk("GROUP lab.test")
    assert talk.one("GROUP lab.test").text == "0 1 0 lab.test"
    ids = [talk.post(ARTICLE.replace(b"hello", f"n{i}".encode())).text.split()[-1] for i in range(3)]
    assert talk.one("GROUP lab.test").text == "3 1 3 lab.test"
    assert talk.one("STAT").text == f"1 {ids[0]}"
    assert talk.code("LAST") == 422
    assert talk.one("NEXT").text.startswith(f"2 {ids[1]}")
    assert talk.one("NEXT").text.startswith(f"3 {ids[2]}")
    assert talk.code("NEXT") == 421
    article = talk.one("ARTICLE 2")
    assert article.code == 220 and b"Subject: n1\r\n" in (article.data or b"")
    assert talk.one("HEAD").data == (article.data or b"").partition(b"\r\n\r\n")[0] + b"\r\n"
    assert talk.one("BODY").data == b"first line\r\n.dotted\r\n"
    assert talk.one(f"ARTICLE {ids[0]}").text == f"0 {ids[0]}"
    assert talk.one("STAT").text.startswith("2 ")  # by id does not move the pointer
    assert talk.code("ARTICLE 99") == 423
    assert talk.code("ARTICLE <nope@x>") == 430
    assert talk.code("ARTICLE abc") == 501
    assert talk.one("LISTGROUP").lines == ["1", "2", "3"]
    assert talk.one("LISTGROUP lab.test 2-").lines == ["2", "3"]
    assert talk.code("GROUP no.such") == 411


@pytest.mark.parametrize("line", ["ARTICLE", "HEAD 1", "NEXT", "LAST", "OVER", "OVER 1-", "LISTGROUP", "STAT"])
def test_commands_out_of_state_need_a_group(line: str) -> None:
    """Without GROUP first, article commands answer 412."""
    assert Talk().code(line) == 412


def test_current_article_invalid_in_an_empty_group() -> None:
    """An empty group has no current article (420) and no range (423)."""
    talk = Talk()
    talk("GROUP lab.misc")
    assert [talk.code(x) for x in ("ARTICLE", "NEXT", "OVER")] == [420, 420, 420]
    assert talk.code("OVER 1-5") == 423


@pytest.mark.parametrize(("line", "code"), [
    ("FROBNICATE", 500), ("IHAVE <a@b>", 500), ("GROUP", 501), ("GROUP a b", 501),
    ("LIST FOO", 501), ("LIST MOTD", 503), ("LIST OVERVIEW.FMT x", 501), ("MODE WRITER", 501),
    ("NEWGROUPS 2024 000000", 501), ("LISTGROUP lab.test x-y", 501), ("DATE now", 501),
    ("AUTHINFO USER alice", 502),
])
def test_error_codes(line: str, code: int) -> None:
    """Unknown commands, bad arguments and unkept lists get RFC 3977's codes."""
    assert Talk().code(line) == code


def test_over_hdr_and_lists() -> None:
    """OVER/XOVER by range and id, HDR/XHDR, LIST variants, NEWNEWS, NEWGROUPS, DATE, HELP."""
    talk = Talk(group=["lab.test=Tests", "lab.talk"])
    mid = talk.post(ARTICLE).text.split()[-1]
    talk("GROUP lab.test")
    [line] = talk.one("OVER 1-").lines
    fields = line.split("\t")
    assert fields[0] == "1" and fields[1] == "hello" and fields[4] == mid and fields[7] == "2"
    assert fields[8] == "Xref: news.lab.test lab.test:1"  # Xref:full, named in its field
    assert talk.one(f"OVER {mid}").lines[0].startswith("0\thello")
    assert talk.one("XOVER 1").lines == [line]
    assert talk.one("HDR Subject 1-").lines == ["1 hello"]
    assert talk.one("XHDR subject 1").code == 221
    # by message-id: HDR says 0 (RFC 3977), XHDR repeats the id (RFC 2980)
    assert talk.one(f"HDR Subject {mid}").lines == ["0 hello"]
    assert talk.one(f"XHDR Subject {mid}").lines == [f"{mid} hello"]
    assert talk.one("HDR :lines 1").lines == ["1 2"]
    assert talk.one("LIST").lines == ["lab.talk 0 1 y", "lab.test 1 1 y"]
    assert talk.one("LIST NEWSGROUPS lab.te*").lines == ["lab.test\tTests"]
    assert talk.one("LIST OVERVIEW.FMT").lines[-3:] == [":bytes", ":lines", "Xref:full"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert talk.one(f"NEWNEWS lab.* {yesterday:%Y%m%d %H%M%S} GMT").lines == [mid]
    assert talk.one(f"NEWNEWS !lab.* {yesterday:%Y%m%d %H%M%S}").lines == []
    assert len(talk.one(f"NEWGROUPS {yesterday:%y%m%d %H%M%S}").lines) == 2
    assert talk.one("DATE").text[:8] == f"{datetime.now(UTC):%Y%m%d}"
    assert "GROUP newsgroup" in "\n".join(talk.one("HELP").lines)


def test_post_validation() -> None:
    """RFC 5536: From, Newsgroups, Subject required; Message-ID, Date, Path added."""
    talk = Talk(max_article="1k")
    assert "missing required header" in talk.post(b"From: a@b\r\n\r\nbody\r\n").text
    assert talk.post(b"From: a@b\r\nNewsgroups: nowhere\r\nSubject: s\r\n\r\nx\r\n").code == 441
    assert talk.post(ARTICLE.replace(b"first", b"x" * 2000)).code == 441
    assert talk.post(b"not a header\r\n\r\nbody\r\n").code == 441
    reply = talk.post(ARTICLE.replace(b"Subject", b"Message-ID: <given@x>\r\nSubject"))
    assert reply.code == 240 and "<given@x>" in reply.text
    assert talk.post(ARTICLE.replace(b"Subject", b"Message-ID: <given@x>\r\nSubject")).code == 441
    stored = talk.server.store.article("<given@x>")
    assert stored is not None
    assert stored.header("Path") == "news.lab.test!not-for-mail" and stored.header("Date")
    assert stored.header("Xref") == "news.lab.test lab.test:1"


def test_a_long_post_is_gathered_and_filed() -> None:
    """An article in parts is filed whole once its end is in."""
    talk = Talk()
    assert talk.code("POST") == 340
    [reply] = talk(ArticleBlock.of(LONG).raw)
    assert isinstance(reply, Response) and reply.code == 240
    kinds = [m.kind for m in talk.seen[Role.SERVER][1:]]
    assert kinds == ["article", *["article-part"] * (len(kinds) - 2), "article-end"] and len(kinds) > 3
    [stored] = talk.server.store
    assert stored.body == LONG_BODY and stored.header("Subject") == "long"


def test_a_post_over_max_article_is_refused_at_its_end() -> None:
    """Past --max-article the rest is counted, not kept; 441 comes after the
    '.' line and the session goes on."""
    talk = Talk(max_article="64k")
    assert talk.code("POST") == 340
    [reply] = talk(ArticleBlock.of(LONG).raw)
    assert isinstance(reply, Response) and reply.code == 441
    assert f"article is {len(LONG)} bytes" in reply.text and "at most 65536" in reply.text
    assert talk.session.upload is None and len(talk.server.store) == 0
    assert "article refused" in talk.peer.notes[-1]
    assert talk.code("DATE") == 111


def test_a_long_answer_goes_out_in_parts() -> None:
    """ARTICLE of a long article: the server sends a streamed head, parts
    and an end, and no message it sends holds the whole."""
    talk = Talk()
    talk.post(LONG)
    talk("GROUP lab.test")
    head, *parts, end = talk("ARTICLE 1")
    assert isinstance(head, Response) and head.streamed and head.code == 220
    assert isinstance(end, DataEnd) and all(isinstance(p, DataPart) for p in parts)
    assert joined([head, *parts]).endswith(b"\r\n\r\n" + LONG_BODY)
    assert max(len(m.raw) for m in talk.peer.sent) < STREAM_ABOVE + 200
    assert talk.code("DATE") == 111


@pytest.mark.parametrize("options", [{}, {"posting": "no"}])
def test_a_pipelined_post_in_memory_and_as_observed(laws: ConversationLaws, options: dict[str, str]) -> None:
    """POST, its article, LISTGROUP and DATE in one write: 340, 240, 211
    with its list, 111 when posting is allowed; 440, a 500 for each article
    line, 211, 111 when not.  An observer of the bytes sees what each side
    saw, however the chunks were split or joined."""
    talk = Talk(**options)
    replies = talk(b"POST\r\n" + ArticleBlock.of(ARTICLE).raw + b"LISTGROUP lab.test\r\nDATE\r\n")
    codes = [code for (code,) in attrs(replies, "code")]
    if options:
        assert codes == [440, *[500] * 7, 211, 111]
    else:
        assert codes == [340, 240, 211, 111] and len(talk.server.store) == 1
    assert attrs(replies[-2:-1], "data") != [(None,)]
    laws.observer_replays(nntp.SPEC.conversation, talk, [7, 40])  # type: ignore[arg-type]
    # a capture may join what the server wrote apart: 340 and the answers after it in one chunk
    laws.observer_replays(nntp.SPEC.conversation, Joined(talk), [7, 40])  # type: ignore[arg-type]


def test_posting_disabled_and_auth() -> None:
    """440 without posting; with accounts 480 until AUTHINFO USER/PASS succeeds."""
    assert Talk(posting="no").code("POST") == 440
    talk = Talk(user=["alice=wonder"])
    assert talk.code("POST") == 480
    assert talk.code("AUTHINFO PASS wonder") == 482
    assert talk.code("AUTHINFO USER alice") == 381
    assert talk.code("AUTHINFO PASS wrong") == 481
    talk("AUTHINFO USER alice")
    assert talk.code("AUTHINFO PASS wonder") == 281
    assert talk.post(ARTICLE).code == 240


def test_mode_switching_server_starts_in_transit_mode() -> None:
    """Reader commands answer 401 MODE-READER until MODE READER."""
    talk = Talk(mode="switching")
    assert talk.one("GROUP lab.test").text == "MODE-READER"
    assert "MODE-READER" in talk.one("CAPABILITIES").lines
    assert talk.code("MODE READER") == 200
    assert talk.code("GROUP lab.test") == 211
    assert "READER" in talk.one("CAPABILITIES").lines


def test_bad_lines_get_answers_and_the_session_goes_on() -> None:
    """Bad lines are answered; only an unframeable one closes the connection."""
    talk = Talk()
    assert talk.code(b"DA\x00TE\r\n") == 500
    assert talk.code(b"GROUP caf\xe9\r\n") == 501
    assert talk.code(b"X" * 1000 + b"\r\n") == 500
    assert talk.code("DATE") == 111
    assert talk.one(b"A" * 10_000).code == 500  # beyond the buffer cap: answered, then closed
    assert talk.peer.closed


def test_a_broken_article_is_answered_441_and_closes() -> None:
    """A line the article cannot be framed with: 441, the article discarded."""
    talk = Talk()
    assert talk.code("POST") == 340
    reply = talk.one(b"Subject: x\r\n" + b"y" * (2 << 20))
    assert reply.code == 441 and talk.peer.closed and "article discarded" in talk.peer.notes[-1]


def test_quit_ignores_what_follows() -> None:
    """After QUIT's 205 the server reads nothing more."""
    talk = Talk()
    assert attrs(talk("QUIT\r\nDATE\r\n"), "code") == [(205,)]
    assert talk.peer.closed


def test_article_without_invitation_is_discarded() -> None:
    """An article the session did not invite never reaches the store."""
    talk = Talk()
    talk.session.message_received(ArticleBlock.of(ARTICLE))
    assert len(talk.server.store) == 0 and "without a 340" in talk.peer.notes[-1]


# -- verbs over a loopback ----------------------------------------------------------------------


def test_client_verbs(loopback: type[Loopback], arun: Runner) -> None:
    """Every verb against our server, with its parsed result."""

    async def main() -> None:
        c = NntpClient(loopback(nntp.SPEC))
        assert (await c.greeting()).code == 200
        assert await c.mode_reader()
        mid = await c.post(subject="hello", body="one\n.two\n")
        info = await c.group("lab.test")
        assert (info.count, info.low, info.high) == (1, 1, 1)
        assert await c.listgroup("lab.test") == [1]
        [ov] = await c.over("1-")
        assert (ov.subject, ov.message_id, ov.lines) == ("hello", mid, 2)
        assert (await c.body(1)) == b"one\r\n.two\r\n"
        assert b"Subject: hello" in await c.head(mid)
        assert await c.stat() == (1, mid)
        assert await c.hdr("Subject", "1-") == [(1, "hello")]
        assert "lab.test 1 1 y" in await c.list()
        assert (await c.date()).year == datetime.now(UTC).year
        assert await c.newnews("lab.*", datetime.now(UTC) - timedelta(hours=1)) == [mid]
        with pytest.raises(NntpReplyError) as err:
            await c.next()
        assert err.value.code == 421
        assert (await c.command("LIST FOO")).code == 501
        assert (await c.quit()).code == 205

    arun(main())


def test_verbs_post_and_read_long_articles_in_parts(arun: Runner) -> None:
    """post() sends a long article in parts; article() gathers a long answer,
    and refuses one beyond max_block after reading it to its end."""

    async def main() -> Loopback:
        lb = Loopback(nntp.SPEC)
        c = NntpClient(lb)
        mid = await c.post(LONG)
        assert await c.body(mid) == LONG_BODY
        c.max_block = 100_000
        with pytest.raises(LabError, match="more than the 100000"):
            await c.article(mid)
        assert (await c.date()).year >= 2024  # the connection goes on
        return lb

    lb = arun(main())
    posted = [m.kind for m in lb.seen[Role.SERVER]]
    assert "article-part" in posted and "article-end" in posted
    assert not lb.errors


# -- an observer of a recorded conversation -------------------------------------------------------


@functools.cache
def _recorded() -> Loopback:
    """A reader's session with the stateful parts: greeting, a refused POST,
    a refused POST with its article pipelined, login, posts accepted and
    refused, a long article both ways, GROUP, LISTGROUP, ARTICLE, OVER and
    a pipelined burst with a POST whose article comes before the 340."""
    import asyncio

    async def main() -> Loopback:
        lb = Loopback(nntp.SPEC, options={"user": ["alice=wonder"]})
        c = NntpClient(lb)
        await c.greeting()
        with pytest.raises(NntpReplyError):
            await c.post(subject="too early")  # 480
        await lb.send_raw(b"POST\r\n" + ArticleBlock.of(ARTICLE).raw + b"DATE\r\n")
        await lb.expect(111)
        await c.login("alice", "wonder")
        mid = await c.post(subject="first", body="one\n.two\n")
        with pytest.raises(NntpReplyError):
            await c.post(b"From: a@b\r\nNewsgroups: lab.test\r\n\r\nno subject\r\n")  # 441
        await c.post(LONG)
        await c.group("lab.test")
        assert await c.listgroup("lab.test") == [1, 2]
        await c.article(1)
        await c.article(mid)
        assert (await c.article(2)).endswith(LONG_BODY)
        await c.over("1-")
        burst = b"GROUP lab.test\r\nLISTGROUP lab.test\r\nPOST\r\n" + ArticleBlock.of(
            ARTICLE.replace(b"hello", b"burst")).raw + b"OVER 1-\r\nHEAD 3\r\nDATE\r\n"
        await lb.send_raw(burst)
        for code in (211, 211, 340, 240, 224, 221, 111):
            await lb.expect(code)
        await c.quit()
        assert not lb.errors
        return lb

    return asyncio.run(main())


@settings(deadline=None, max_examples=40)
@given(cuts=st.lists(st.integers(0, 300_000), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, cuts: list[int]) -> None:
    """A recorded session replays to an observer, split anywhere: the same
    messages on each side, the same answers framed the same way."""
    lb = _recorded()
    seen = laws.observer_replays(nntp.SPEC.conversation, lb, cuts)
    assert laws.observer_replays(nntp.SPEC.conversation, Joined(lb), cuts) == seen  # type: ignore[arg-type]
    answers = [m.answers for m in seen[Role.CLIENT] if isinstance(m, Response)]
    assert answers[:3] == [GREETING, "POST", "POST"] and "LISTGROUP" in answers and POSTED in answers
    assert any(isinstance(m, ArticlePart) for m in seen[Role.SERVER])
    assert any(isinstance(m, DataPart) for m in seen[Role.CLIENT])


# -- options --------------------------------------------------------------------------------------


def test_options_are_typed() -> None:
    """Every option parses to its type; defaults fill the rest."""
    options = nntp.SPEC.resolve_options({"posting": "no", "max_article": "64k", "mode": "Switching",
                                         "user": ["alice=wonder"], "group": ["lab.talk=Chatter"]})
    assert isinstance(options, nntp.NntpOptions)
    assert (options.posting, options.max_article, options.mode) == (False, 65536, ServerMode.SWITCHING)
    assert options.user == (("alice", "wonder"),) and options.group == (("lab.talk", "Chatter"),)
    assert (options.store, options.hostname) == (None, "news.lab.test")
    assert nntp.NntpOptions.get("max_article").help_text.endswith("(default 1M)")


@pytest.mark.parametrize(("option", "value", "message"), [
    ("group", "bad name", "nntp: --group wants NAME[=DESCRIPTION]"),
    ("posting", "maybe", "nntp: --posting wants yes or no"),
    ("max_article", "lots", "nntp: --max-article wants a size"),
    ("max_article", "100m", "nntp: --max-article wants a size from 1 byte to 4M"),
    ("mode", "writer", "nntp: --mode wants reader or switching"),
    ("user", "nopassword", "nntp: --user wants NAME=PASSWORD"),
])
def test_bad_options(option: str, value: str, message: str) -> None:
    """A bad value names the protocol and the option, with an example."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        nntp.SPEC.resolve_options({option: value})
    assert (err.value.hint or "").startswith("e.g. --")


# -- the store -------------------------------------------------------------------------------


def test_store_persists_across_restarts(tmp_path: Path) -> None:
    """Articles and numbers survive a restart; numbers are never reused."""
    store = NewsStore(tmp_path)
    store.ensure_group("lab.test", "Tests")
    store.ensure_group("lab.misc")
    first = store.post(ARTICLE.replace(b"lab.test", b"lab.test,lab.misc"), host="h")
    store.post(ARTICLE, host="h")
    (tmp_path / "articles" / ".tmp-half").write_bytes(b"From: half")  # a crash mid-write
    again = NewsStore(tmp_path)
    assert len(again) == 2 and again.article(first.message_id) is not None
    group = again.group("lab.test")
    assert group is not None and (group.count, group.low, group.high, group.description) == (2, 1, 2, "Tests")
    misc = again.group("lab.misc")
    assert misc is not None and misc.articles[1].message_id == first.message_id
    assert again.post(ARTICLE, host="h").numbers == {"lab.test": 3}
    assert not (tmp_path / "articles" / ".tmp-half").exists()


def test_store_rejects_a_broken_active_file(tmp_path: Path) -> None:
    """An active file that does not parse is a ConfigError naming the line."""
    (tmp_path / "active").write_text("garbage\n")
    with pytest.raises(ConfigError, match="not an active line"):
        NewsStore(tmp_path)


def test_attach_loads_the_directory_and_keeps_the_groups_made(tmp_path: Path) -> None:
    """Attaching loads what is on disk, writes the groups made in memory
    (their descriptions filling empty ones), and is idempotent."""
    NewsStore(tmp_path).ensure_group("lab.old")
    store = NewsStore()
    store.ensure_group("lab.new", "New")
    store.ensure_group("lab.old", "Old")
    store.attach(tmp_path)
    store.attach(str(tmp_path))  # the same directory again: nothing happens
    assert {g.name: g.description for g in store.list_groups()} == {"lab.new": "New", "lab.old": "Old"}
    assert {g.name for g in NewsStore(tmp_path).list_groups()} == {"lab.new", "lab.old"}


def test_attach_expands_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~/news`` given when made and when attached is one directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    store = NewsStore("~/news")
    store.attach("~/news")
    assert store.directory == tmp_path / "news"


def test_attach_refuses_what_would_clash(tmp_path: Path) -> None:
    """Another directory, or articles already taken in memory: ConfigError."""
    store = NewsStore(tmp_path / "one")
    with pytest.raises(ConfigError, match="same --store"):
        store.attach(tmp_path / "two")
    busy = NewsStore()
    busy.ensure_group("lab.test")
    busy.post(ARTICLE, host="h")
    with pytest.raises(ConfigError, match="holds articles in memory"):
        busy.attach(tmp_path / "three")


def test_a_failed_attach_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    """A bad article file after good ones: ConfigError, and nothing of the
    directory stays in the store."""
    disk = NewsStore(tmp_path)
    disk.ensure_group("lab.test")
    disk.post(ARTICLE, host="h")
    (tmp_path / "articles" / "99999999").write_bytes(b"not a header\r\n\r\nbody\r\n")
    store = NewsStore()
    store.ensure_group("lab.mine")
    with pytest.raises(ConfigError, match="cannot read article"):
        store.attach(tmp_path)
    assert store.directory is None and len(store) == 0 and store.size == 0
    assert [g.name for g in store.list_groups()] == ["lab.mine"]
    store.post(ARTICLE.replace(b"lab.test", b"lab.mine"), host="h")  # still a working store
    assert store.article(next(iter(store)).message_id) is not None


def test_header_parsing_and_wildmat() -> None:
    """Folded headers unfold; a leading continuation is refused; the last wildmat match wins."""
    headers, body = parse_headers(b"A: 1\r\nB: two\r\n  folded\r\n\r\nbody\r\n")
    assert headers == [("A", "1"), ("B", "two folded")] and body == b"body\r\n"
    with pytest.raises(ArticleRejected):
        parse_headers(b" cont\r\n\r\n")
    assert wildmat("lab.*,!lab.secret", "lab.test") and not wildmat("lab.*,!lab.secret", "lab.secret")


def _started(options: dict[str, Any], services: Services) -> nntp.NntpServer:
    server = nntp.SPEC.server(nntp.SPEC.resolve_options(options))
    assert isinstance(server, nntp.NntpServer)
    server.services = services
    server.started()
    return server


def test_servers_share_one_store() -> None:
    """Two servers of one lab serve one store with both servers' groups."""
    services = Services()
    one = _started({"group": ["a.one"]}, services)
    two = _started({"group": ["b.two"]}, services)
    assert one.store is two.store is services.get(NEWS_STORE)
    assert set(one.store.groups) == {"a.one", "b.two"}


def test_conflicting_store_directory_is_a_config_error(tmp_path: Path) -> None:
    """A second server naming another store directory fails as it starts."""
    services = Services()
    _started({"store": str(tmp_path / "a")}, services)
    with pytest.raises(ConfigError, match="same --store"):
        _started({"store": str(tmp_path / "b")}, services)


# -- hostile input on real sockets --------------------------------------------------------------


class Wire:
    """A raw socket client: send bytes, read status lines."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def ask(self, data: bytes) -> bytes:
        self.send(data)
        return self.line()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _serve(lab: Any, **options: Any) -> Any:
    return lab.serve("nntp", **options)


def test_hostile_lines_get_answers_and_others_keep_being_served(lab: Any) -> None:
    """Missing CRLF, NUL bytes, unknown verbs, out-of-state commands: each
    gets its error code on the same connection; a bystander is unaffected."""
    srv = _serve(lab)
    bystander = lab.connect("nntp", srv)
    w = Wire(srv.port)
    assert w.greeting.startswith(b"200 ")
    assert w.ask(b"DATE\n").startswith(b"111 ")  # bare LF
    assert w.ask(b"DA\x00TE\r\n").startswith(b"500 NUL")
    assert w.ask(b"XYZZY now\r\n").startswith(b"500 Unknown command")
    assert w.ask(b"NEXT\r\n").startswith(b"412 ")
    assert w.ask(b"ARTICLE 1\r\n").startswith(b"412 ")
    assert w.ask(b"GROUP lab.test\r\n").startswith(b"211 ")
    assert w.ask(b"ARTICLE\r\n").startswith(b"420 ")
    w.send(b"DATE")  # no terminator: nothing happens yet
    assert w.ask(b"\r\n").startswith(b"111 ")
    assert bystander.group("lab.test").count == 0
    w.close()


def test_megabyte_line_is_refused_and_the_server_goes_on(lab: Any) -> None:
    """A line no buffer should hold: 500 and a hang-up, and the server serves on."""
    srv = _serve(lab)
    w = Wire(srv.port)
    try:
        w.send(b"A" * (1024 * 1024) + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server hung up on us mid-send, as it may
    try:
        reply = w.line()
    except ConnectionResetError:
        reply = b""
    assert reply == b"" or reply.startswith(b"500 ")
    w.close()
    c = lab.connect("nntp", srv)
    assert c.date().year >= 2024
    assert any("longer than" in e.summary for e in lab.log.tail(50))


def test_disconnect_in_the_middle_of_post_lands_nothing(lab: Any) -> None:
    """An article cut off by a closed connection never reaches the store."""
    srv = _serve(lab)
    w = Wire(srv.port)
    assert w.ask(b"POST\r\n").startswith(b"340 ")
    w.send(b"From: a@b.c\r\nNewsgroups: lab.test\r\nSubject: cut\r\n\r\nhalf a bo")
    w.sock.close()
    w.file.close()
    c = lab.connect("nntp", srv)
    assert c.group("lab.test").count == 0
    store = lab.services.find(NEWS_STORE)
    assert store is not None and len(store) == 0
    assert c.post(subject="whole", body="fine").startswith("<")
    assert len(store) == 1


def test_a_long_post_and_article_over_sockets(lab: Any) -> None:
    """A 200 KB article goes out and comes back in parts; the log shows parts."""
    srv = _serve(lab)
    c = lab.connect("nntp", srv)
    mid = c.post(LONG)
    assert c.article(mid).endswith(LONG_BODY)
    summaries = [e.summary for e in lab.log.tail(400)]
    assert any(s.startswith("article part") for s in summaries)
    assert any(s.startswith("end of response data") for s in summaries)


def test_two_servers_in_a_lab_share_groups_and_articles(lab: Any) -> None:
    """What one server files, another lists and serves."""
    a = _serve(lab, group=["lab.test", "lab.one"])
    b = _serve(lab, group=["lab.two"], posting="no")
    ca, cb = lab.connect("nntp", a), lab.connect("nntp", b)
    mid = ca.post(subject="shared", newsgroups=["lab.test", "lab.two"])
    assert {line.split()[0] for line in cb.list()} == {"lab.test", "lab.one", "lab.two"}
    assert cb.group("lab.two").count == 1 and cb.stat(mid) == (0, mid)
    with pytest.raises(NntpReplyError) as err:
        cb.post(subject="refused")
    assert err.value.code == 440


def test_store_directory_survives_a_lab_restart(tmp_path: Path) -> None:
    """--store keeps articles and numbering across labs."""
    from lab import Lab

    with Lab.start() as first:
        c = first.connect("nntp", first.serve("nntp", store=str(tmp_path)))
        mid = c.post(subject="kept", body="on disk")
    with Lab.start() as second:
        c = second.connect("nntp", second.serve("nntp", store=str(tmp_path)))
        assert c.group("lab.test").count == 1
        assert b"on disk" in c.body(mid)
        assert c.post(subject="next") != mid
        assert c.listgroup("lab.test") == [1, 2]


def test_raw_listgroup_reads_as_a_list_in_the_lab(lab: Any) -> None:
    """Raw sends reach the client's conversation, so a raw LISTGROUP's 211 carries its list."""
    srv = _serve(lab)
    c = lab.connect("nntp", srv)
    c.post(subject="one")
    c.send("LISTGROUP lab.test\r\n")
    c.send("GROUP lab.test\r\n")
    first, second = c.expect(211), c.expect("211")
    assert (first.answers, first.data) == ("LISTGROUP", b"1\r\n")
    assert (second.answers, second.data) == ("GROUP", None)


def test_hooks_match_command_verbs(lab: Any) -> None:
    """srv.on("POST", fn) sees POST commands: the verb is the message kind."""
    srv = _serve(lab)
    seen: list[str] = []
    srv.on("POST", lambda msg, conn: seen.append(msg.summary()), replace=False)
    c = lab.connect("nntp", srv)
    c.post(subject="hooked")
    assert seen == ["POST"]
