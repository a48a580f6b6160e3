"""Tests for lab/protocols/nntp and lab/newsstore.py: codecs, the reader
server driven in memory, the client verbs, the store and its disk copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import CodecLaws, FakePeer, Loopback, Runner

from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.newsstore import ArticleRejected, NewsStore, parse_headers, wildmat
from lab.protocols import nntp
from lab.protocols._base import Role, Services, Transport
from lab.protocols.nntp import (
    ArticleBlock,
    BadCommand,
    ClientCodec,
    Command,
    NntpClient,
    NntpReplyError,
    Response,
    ServerCodec,
)

SETTINGS = settings(deadline=None, max_examples=150)
ARTICLE = b"From: alice@lab.test\r\nNewsgroups: lab.test\r\nSubject: hello\r\n\r\nfirst line\r\n.dotted\r\n"


def feed_bytewise(codec: Any, data: bytes) -> list[Any]:
    out = []
    for i in range(len(data)):
        out += codec.feed(data[i : i + 1])
    return out


# -- the server codec ----------------------------------------------------------------------


def test_commands_parse_one_byte_at_a_time_and_whole() -> None:
    """Verbs are upper-cased, arguments split on spaces and tabs; bare LF is accepted."""
    data = b"group lab.test\r\nLIST  ACTIVE\tlab.*\r\nDATE\n"
    for msgs in (ServerCodec().feed(data), feed_bytewise(ServerCodec(), data)):
        assert [(m.verb, m.args) for m in msgs] == [
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
    codec = ServerCodec()
    [msg] = codec.feed(raw + b"DATE\r\n")[:1]
    assert isinstance(msg, BadCommand) and why in msg.reason and msg.raw == raw
    assert codec.feed(b"HELP\r\n")[0].verb == "HELP"


def test_endless_line_is_an_error_early() -> None:
    """More than 4 KiB without a line feed cannot be resynchronised."""
    codec = ServerCodec()
    with pytest.raises(RemoteProtocolError, match="longer than"):
        codec.feed(b"A" * 5000)
    with pytest.raises(RemoteProtocolError):
        codec.feed(b"DATE\r\n")  # spent


def test_stream_ending_inside_a_command_is_an_error() -> None:
    codec = ServerCodec()
    assert codec.feed(b"DATE") == []
    with pytest.raises(RemoteProtocolError, match="no CRLF"):
        codec.feed(b"")


def test_post_then_340_reads_the_article_unstuffed() -> None:
    """After the server encodes 340, lines form one article until '.'."""
    codec = ServerCodec()
    [post] = codec.feed(b"POST\r\n")
    assert post.verb == "POST"
    assert codec.feed(b"GROUP x\r\n") == [] or True  # early bytes: taken as the article
    codec = ServerCodec()
    codec.feed(b"POST\r\n")
    codec.encode(Response.of(340, "send it"))
    block = ArticleBlock.of(ARTICLE)
    msgs = feed_bytewise(codec, block.raw + b"DATE\r\n")
    assert isinstance(msgs[0], ArticleBlock) and msgs[0].content == ARTICLE
    assert msgs[0].raw == block.raw and b"\r\n..dotted\r\n" in block.raw
    assert msgs[1].verb == "DATE"


def test_refused_post_returns_to_commands() -> None:
    codec = ServerCodec()
    codec.feed(b"POST\r\n")
    codec.encode(Response.of(440, "no posting"))
    assert [m.verb for m in codec.feed(b"DATE\r\n")] == ["DATE"]


def test_pipelined_article_is_taken_as_the_article() -> None:
    """Bytes sent before POST was answered are the article, as INN takes them."""
    codec = ServerCodec()
    msgs = codec.feed(b"POST\r\n" + ArticleBlock.of(ARTICLE).raw + b"DATE\r\n")
    assert [type(m).__name__ for m in msgs] == ["Command", "ArticleBlock", "Command"]
    codec.encode(Response.of(340))
    codec.encode(Response.of(240))
    assert codec.feed(b"HELP\r\n")[0].verb == "HELP"


def test_disconnect_inside_an_article_is_an_error() -> None:
    codec = ServerCodec()
    codec.feed(b"POST\r\n")
    codec.encode(Response.of(340))
    codec.feed(b"From: a@b\r\nSubject: x\r\n")
    with pytest.raises(RemoteProtocolError, match="inside an article"):
        codec.feed(b"")


def test_article_beyond_the_wire_cap_is_an_error() -> None:
    codec = ServerCodec()
    codec.feed(b"POST\r\n")
    codec.encode(Response.of(340))
    line = b"x" * 1000 + b"\r\n"
    with pytest.raises(RemoteProtocolError, match="article longer"):
        for _ in range(nntp.MAX_ARTICLE_WIRE // len(line) + 2):
            codec.feed(line)


# -- the client codec ------------------------------------------------------------------------


def test_211_is_a_list_only_after_listgroup() -> None:
    """Whether a response has a block depends on the command it answers."""
    codec = ClientCodec()
    codec.encode(Command.of("GROUP", "lab.test"))
    codec.encode(Command.of("LISTGROUP", "lab.test"))
    data = b"200 hi\r\n211 2 1 2 lab.test\r\n211 2 1 2 lab.test list\r\n1\r\n2\r\n.\r\n"
    msgs = feed_bytewise(codec, data)
    assert [(m.code, m.answers, m.data) for m in msgs] == [
        (200, "(greeting)", None), (211, "GROUP", None), (211, "LISTGROUP", b"1\r\n2\r\n")]


def test_raw_sends_are_accounted_for() -> None:
    """Commands and an article sent as raw bytes are remembered too."""
    codec = ClientCodec()
    codec.sent(b"LISTGR")
    codec.sent(b"OUP lab.test\r\nPOST\r\n")
    assert codec.pending == ["(greeting)", "LISTGROUP", "POST"]
    codec.feed(b"200 hi\r\n211 0 1 0 lab.test\r\n.\r\n340 go\r\n")
    codec.sent(b"Subject: x\r\n\r\nbody\r\n.\r\nGROUP lab.test\r\n")
    assert codec.pending == ["ARTICLE", "GROUP"]


def test_multiline_responses_unstuff() -> None:
    codec = ClientCodec()
    codec.encode(Command.of("ARTICLE", 1))
    raw = Response.of(220, "1 <a@b>", ARTICLE).raw
    msgs = codec.feed(b"200 hi\r\n" + raw)
    assert msgs[1].data == ARTICLE and msgs[1].raw == raw


@pytest.mark.parametrize("raw", [b"hello\r\n", b"99 x\r\n", b"600 x\r\n", b"200x\r\n", b"\r\n"])
def test_malformed_status_lines_are_errors(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="not an NNTP status line"):
        ClientCodec().feed(raw)


def test_close_inside_a_block_is_an_error() -> None:
    codec = ClientCodec()
    codec.encode(Command.of("HELP"))
    codec.feed(b"200 hi\r\n100 help\r\nline\r\n")
    with pytest.raises(RemoteProtocolError, match="inside a 100"):
        codec.feed(b"")


def test_commands_that_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError):
        Command.of("GROUP", "two words")
    with pytest.raises(LocalProtocolError):
        Command.of("GROUP", "x" * 600)
    with pytest.raises(LocalProtocolError):
        Response.of(200, "a\r\nb")


def test_message_descriptions() -> None:
    """Summaries are one line; the password of AUTHINFO PASS is hidden;
    server-made dates and ids are volatile."""
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


# -- codec properties -------------------------------------------------------------------------

_word = st.text(st.sampled_from("abcXYZ019.-<>@*"), min_size=1, max_size=12)
_command_lines = st.lists(
    st.builds(lambda v, a: " ".join([v, *a]).encode() + b"\r\n",
              st.sampled_from(["GROUP", "ARTICLE", "LIST", "OVER", "DATE", "foo", "HEAD"]),
              st.lists(_word, max_size=3)),
    max_size=8)


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_codec_laws_on_any_bytes(codec_laws: CodecLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes, split anywhere: only RemoteProtocolError, exact re-encoding."""
    for role in Role:
        codec_laws.stream(partial(nntp.SPEC.codec, role, Transport.TCP), data, cuts)
        codec_laws.stream(partial(nntp.SPEC.codec, role, Transport.TCP), data, cuts, eof=False)


@SETTINGS
@given(lines=_command_lines, junk=st.binary(max_size=40), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_server_codec_laws_on_command_streams(codec_laws: CodecLaws, lines: list[bytes], junk: bytes,
                                              cuts: list[int]) -> None:
    data = b"".join(lines) + junk.replace(b"\n", b"") + b"\r\n"
    msgs = codec_laws.stream(lambda: nntp.SPEC.codec(Role.SERVER, Transport.TCP), data, cuts)
    assert len(msgs) == len(lines) + 1


_content = st.lists(st.text(st.sampled_from("ab .\t:é"), max_size=12), max_size=6).map(
    lambda lines: "".join(line + "\r\n" for line in lines).encode())


@SETTINGS
@given(content=_content, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_article_round_trip(codec_laws: CodecLaws, content: bytes, cuts: list[int]) -> None:
    """Any article content survives stuffing, splitting and unstuffing."""
    def make() -> ServerCodec:
        codec = ServerCodec()
        codec.feed(b"POST\r\n")
        codec.encode(Response.of(340))
        return codec

    [article] = codec_laws.stream(make, ArticleBlock.of(content).raw, cuts)
    assert isinstance(article, ArticleBlock) and article.content == content


@SETTINGS
@given(replies=st.lists(st.tuples(st.sampled_from([111, 211, 215, 220, 223, 224, 340, 411, 500]),
                                  st.text(st.sampled_from("ab 1<>"), max_size=10), _content),
                        max_size=5),
       cuts=st.lists(st.integers(0, 400), max_size=6))
def test_response_round_trip(codec_laws: CodecLaws, replies: list[tuple[int, str, bytes]],
                             cuts: list[int]) -> None:
    """Responses the server encodes decode to the same codes and blocks."""
    sent = [Response.of(code, text.strip(), data if nntp._codec.is_multiline(code, None) else None)
            for code, text, data in replies]

    def make() -> ClientCodec:
        codec = ClientCodec()
        codec.feed(b"200 hi\r\n")
        return codec

    msgs = codec_laws.stream(make, b"".join(r.raw for r in sent), cuts)
    assert [(m.code, m.text, m.data) for m in msgs] == [(r.code, r.text, r.data) for r in sent]


# -- the server, in memory -------------------------------------------------------------------


class Talk:
    """Drive an NntpServer with command lines through the real codecs."""

    def __init__(self, **options: Any) -> None:
        self.server: nntp.NntpServer = nntp.SPEC.server(nntp.SPEC.resolve_options(options))  # type: ignore[assignment]
        self.server_codec = ServerCodec()
        self.client_codec = ClientCodec()
        self.peer = FakePeer(codec=self.server_codec)
        self.server.connection_made(self.peer)
        [self.greeting] = self.client_codec.feed(self.peer.data)
        self._seen = len(self.peer.data)

    def __call__(self, data: bytes | str) -> list[Response]:
        raw = data.encode() if isinstance(data, str) else data
        if not raw.endswith(b"\n"):
            raw += b"\r\n"
        self.client_codec.sent(raw)
        try:
            msgs = self.server_codec.feed(raw)
        except RemoteProtocolError as exc:
            self.server.protocol_error(self.peer, exc)
            msgs = []
        for msg in msgs:
            self.server.message_received(self.peer, msg)
        out = self.peer.data[self._seen:]
        self._seen = len(self.peer.data)
        return self.client_codec.feed(out)

    def one(self, data: bytes | str) -> Response:
        [reply] = self(data)
        return reply

    def code(self, data: bytes | str) -> int:
        return self.one(data).code

    def post(self, article: bytes) -> Response:
        assert self.code("POST") == 340
        return self.one(ArticleBlock.of(article).raw)


def test_greeting_and_capabilities() -> None:
    talk = Talk()
    assert talk.greeting.code == 200
    assert Talk(posting="no").greeting.code == 201
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
    assert Talk().code(line) == 412


def test_current_article_invalid_in_an_empty_group() -> None:
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
    assert Talk().code(line) == code


def test_over_hdr_and_lists() -> None:
    talk = Talk(group=["lab.test=Tests", "lab.talk"])
    mid = talk.post(ARTICLE).text.split()[-1]
    talk("GROUP lab.test")
    [line] = talk.one("OVER 1-").lines
    fields = line.split("\t")
    assert fields[0] == "1" and fields[1] == "hello" and fields[4] == mid and fields[7] == "2"
    assert talk.one(f"OVER {mid}").lines[0].startswith("0\thello")
    assert talk.one("XOVER 1").lines == [line]
    assert talk.one("HDR Subject 1-").lines == ["1 hello"]
    assert talk.one("XHDR subject 1").code == 221
    assert talk.one("HDR :lines 1").lines == ["1 2"]
    assert talk.one("LIST").lines == ["lab.talk 0 1 y", "lab.test 1 1 y"]
    assert talk.one("LIST NEWSGROUPS lab.te*").lines == ["lab.test\tTests"]
    assert talk.one("LIST OVERVIEW.FMT").lines[-2:] == [":bytes", ":lines"]
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


def test_posting_disabled_and_auth() -> None:
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
    talk = Talk()
    assert talk.code(b"DA\x00TE\r\n") == 500
    assert talk.code(b"GROUP caf\xe9\r\n") == 501
    assert talk.code(b"X" * 1000 + b"\r\n") == 500
    assert talk.code("DATE") == 111
    assert talk.one(b"A" * 10_000).code == 500  # beyond the buffer cap: answered, then closed
    assert talk.peer.closed


def test_quit_ignores_what_follows() -> None:
    talk = Talk()
    assert [r.code for r in talk("QUIT\r\nDATE\r\n")] == [205]
    assert talk.peer.closed


def test_article_without_invitation_is_discarded() -> None:
    talk = Talk()
    talk.server.message_received(talk.peer, ArticleBlock.of(ARTICLE))
    assert len(talk.server.store) == 0 and "without a 340" in talk.peer.notes[-1]


# -- verbs over a loopback ----------------------------------------------------------------------


def test_client_verbs(loopback: type[Loopback], arun: Runner) -> None:
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
    assert again.group("lab.misc").articles[1].message_id == first.message_id  # type: ignore[union-attr]
    assert again.post(ARTICLE, host="h").numbers == {"lab.test": 3}
    assert not (tmp_path / "articles" / ".tmp-half").exists()


def test_store_rejects_a_broken_active_file(tmp_path: Path) -> None:
    (tmp_path / "active").write_text("garbage\n")
    with pytest.raises(ConfigError, match="not an active line"):
        NewsStore(tmp_path)


def test_header_parsing_and_wildmat() -> None:
    headers, body = parse_headers(b"A: 1\r\nB: two\r\n  folded\r\n\r\nbody\r\n")
    assert headers == [("A", "1"), ("B", "two folded")] and body == b"body\r\n"
    with pytest.raises(ArticleRejected):
        parse_headers(b" cont\r\n\r\n")
    assert wildmat("lab.*,!lab.secret", "lab.test") and not wildmat("lab.*,!lab.secret", "lab.secret")


def test_servers_share_one_store() -> None:
    services = Services()
    one = nntp.SPEC.server(nntp.SPEC.resolve_options({"group": ["a.one"]}))
    two = nntp.SPEC.server(nntp.SPEC.resolve_options({"group": ["b.two"]}))
    one.services = services
    two.services = services
    assert isinstance(one, nntp.NntpServer) and isinstance(two, nntp.NntpServer)
    assert one.store is two.store and set(one.store.groups) == {"a.one", "b.two"}


def test_conflicting_store_directory_is_a_config_error(tmp_path: Path) -> None:
    services = Services()
    nntp.SPEC.server(nntp.SPEC.resolve_options({})).services = services
    other = nntp.SPEC.server(nntp.SPEC.resolve_options({"store": str(tmp_path)}))
    with pytest.raises(ConfigError, match="same --store"):
        other.services = services


@pytest.mark.parametrize(("option", "value"), [
    ("group", "bad name"), ("posting", "maybe"), ("max_article", "lots"), ("max_article", "100m"),
    ("mode", "writer"), ("user", "nopassword"),
])
def test_bad_options(option: str, value: str) -> None:
    with pytest.raises(ConfigError):
        nntp.SPEC.resolve_options({option: value})


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
    store = lab.services.find(nntp.STORE_KEY)
    assert store is not None and len(store) == 0
    assert c.post(subject="whole", body="fine").startswith("<")
    assert len(store) == 1


def test_two_servers_in_a_lab_share_groups_and_articles(lab: Any) -> None:
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
    """Raw sends reach the client codec, so a raw LISTGROUP's 211 carries its list."""
    srv = _serve(lab)
    c = lab.connect("nntp", srv)
    c.post(subject="one")
    c.send("LISTGROUP lab.test\r\n")
    c.send("GROUP lab.test\r\n")
    first, second = c.expect(211), c.expect(211)
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
