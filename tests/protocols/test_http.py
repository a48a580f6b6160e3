"""Tests for lab/protocols/http: the messages, the conversation in memory
(heads under caps, bodies by length, chunks and close, a response framed
by the request it answers, request smuggling shapes refused), the laws
under hypothesis, the client verbs against the server through a
loopback, and an observer replaying a whole keep-alive session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, Loopback, Runner

from lab.errors import RemoteProtocolError
from lab.protocols import http
from lab.protocols._base import Message, Role, Transport
from lab.protocols.http import (
    PART,
    HttpBody,
    HttpConversation,
    HttpEnd,
    HttpError,
    HttpRequestHead,
    HttpResponseHead,
)

SETTINGS = settings(deadline=None, max_examples=150)


def server_side() -> HttpConversation:
    return HttpConversation(Role.SERVER)


def client_side(*requests: bytes) -> HttpConversation:
    """A client conversation that has sent ``requests``."""
    conv = HttpConversation(Role.CLIENT)
    for raw in requests:
        conv.send_data(raw)
    conv.take_sent()
    return conv


def after(*requests: bytes):  # type: ignore[no-untyped-def]
    """A conversation factory whose client already sent ``requests``
    (as a server receiving them, as a client sending them, or observed)."""

    def make(role: Role | None, transport: Transport) -> HttpConversation:
        conv = HttpConversation(role, transport)
        for raw in requests:
            if role is Role.CLIENT:
                conv.send_data(raw)
                conv.take_sent()
            elif role is Role.SERVER:
                conv.feed(raw)
            else:
                conv.observe(raw, Role.CLIENT)
        return conv

    return make


def refused(conv: HttpConversation, data: bytes) -> HttpError:
    with pytest.raises(HttpError) as info:
        conv.feed(data)
    return info.value


# -- messages ----------------------------------------------------------------------------------


def test_request_of_adds_a_length_and_decodes_back() -> None:
    """A request built to send decodes on the server to the same message."""
    req = HttpRequestHead.of("POST", "/RPC2", [("Host", "x")], b"<xml/>")
    assert req.raw.endswith(b"Content-Length: 6\r\n\r\n<xml/>")
    (got,) = server_side().feed(req.raw)
    assert got == req
    assert got.kind == "POST" and got.summary().startswith("POST /RPC2 HTTP/1.1 (Host x) [6 bytes")


def test_response_summary_names_the_meaning_and_matches_the_status() -> None:
    """A response says its status, reason and what it means; expect 404 compares the status."""
    res = HttpResponseHead.of(404, [("Content-Type", "text/plain")], b"nope")
    assert res.summary() == "404 Not Found (nothing at that path) [4 bytes, text/plain]"
    assert res.matches(404) and res.matches("404") and not res.matches(200)
    assert res.fields()["meaning"] == "nothing at that path"
    assert http.reason(418) == "" and http.meaning(418) == "client error"


def test_dates_and_validators_are_volatile() -> None:
    """Date, ETag and Last-Modified change from run to run."""
    res = HttpResponseHead.of(200, [("Date", "Fri, 04 Dec 2026 10:00:00 GMT"), ("ETag", '"1"')], b"x")
    assert res.volatile == {"date", "etag"}
    assert res.fields()["date"] == "Fri, 04 Dec 2026 10:00:00 GMT"


def test_head_and_bodiless_statuses_carry_no_body() -> None:
    """A response to HEAD keeps its Content-Length and sends no body; 204 and 304 have none."""
    res = HttpResponseHead.of(200, [], b"abc", answers="HEAD")
    assert res.raw.endswith(b"Content-Length: 3\r\n\r\n") and res.body == b""
    assert b"Content-Length" not in HttpResponseHead.of(204).raw
    assert HttpResponseHead.of(304).framing == "none"


def test_bad_header_values_cannot_be_sent() -> None:
    """A header value with CR or LF would split the head: refused before sending."""
    with pytest.raises(ValueError):
        HttpRequestHead.of("GET", "/", [("X", "a\r\nInjected: 1")])
    with pytest.raises(ValueError):
        HttpRequestHead.of("GET", "/a b")


# -- the conversation ---------------------------------------------------------------------------


def test_pipelined_requests_decode_in_order() -> None:
    """Several requests in one packet: each a message, in order."""
    data = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n")
    msgs = server_side().feed(data)
    assert [(m.method, m.target, m.body) for m in msgs] == [("GET", "/a", b""), ("POST", "/b", b"abc"),
                                                            ("HEAD", "/c", b"")]
    assert b"".join(m.raw for m in msgs) == data


def test_a_chunked_body_streams_with_trailers() -> None:
    """Chunked: the head, parts carrying the content, an end with the trailers."""
    data = (b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n")
    head, part, end = server_side().feed(data)
    assert isinstance(head, HttpRequestHead) and not head.complete and head.framing == "chunked"
    assert isinstance(part, HttpBody) and part.content == b"hello world"
    assert isinstance(end, HttpEnd) and end.size == 11 and end.trailers == (("X-Sum", "1"),)
    assert head.raw + part.raw + end.raw == data


def test_a_long_body_comes_in_parts_of_fixed_size() -> None:
    """A body over PART bytes: parts of PART bytes, then the rest, then the end."""
    body = bytes(range(256)) * (PART // 128 + 3)
    data = b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    msgs = server_side().feed(data)
    parts = [m for m in msgs if isinstance(m, HttpBody)]
    assert [len(p.content) for p in parts] == [PART, PART, len(body) - 2 * PART]
    assert b"".join(p.content for p in parts) == body and isinstance(msgs[-1], HttpEnd)


def test_expect_continue_streams_the_body_so_the_head_comes_first() -> None:
    """With Expect: 100-continue the head arrives before any body byte."""
    conv = server_side()
    (head,) = conv.feed(b"POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert isinstance(head, HttpRequestHead) and not head.complete
    part, end = conv.feed(b"abc")
    assert part.content == b"abc" and isinstance(end, HttpEnd)


def test_a_response_to_head_has_no_body_whatever_its_length() -> None:
    """The client's conversation frames a response by the request's method."""
    conv = client_side(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first, second = conv.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                              b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert first.body == b"" and first.answers == "HEAD" and first.complete
    assert second.body == b"hello" and second.answers == "GET"


def test_interim_responses_do_not_answer_the_request() -> None:
    """100 Continue then the final response: both decode, the final one frames by the method."""
    conv = client_side(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
    cont, final = conv.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert (cont.status, final.status) == (100, 204)
    assert not conv.pending


def test_a_close_delimited_response_ends_with_the_stream() -> None:
    """No length, no chunks: the body runs until the server closes."""
    conv = client_side(b"GET / HTTP/1.0\r\n\r\n")
    msgs = conv.feed(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert len(msgs) == 1 and msgs[0].framing == "close"
    part, end = conv.feed(b"")
    assert part.content == b"all of it" and end.size == 9


@pytest.mark.parametrize(("data", "status", "why"), [
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400, ""),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400, ""),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n", 400, "overflow"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400, "chunk-size"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400, "CRLF"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400, "chunk-size"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "Transfer-Encoding"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, ""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, ""),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400, "malformed"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, ""),
    (b"GET /" + b"a" * http.MAX_REQUEST_LINE + b" HTTP/1.1\r\n", 414, ""),
    (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * (http.MAX_HEADERS + 1) + b"\r\n", 431, ""),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * http.MAX_HEAD, 431, ""),
    (b"G\x00T / HTTP/1.1\r\n\r\n", 400, ""),
], ids=lambda v: None if not isinstance(v, bytes) else repr(v[:40]))
def test_ambiguous_and_oversized_requests_are_refused(data: bytes, status: int, why: str) -> None:
    """Request smuggling shapes (CL+TE, two CLs, obs-fold, chunk-size
    overflow) and oversized heads: an error naming the status to answer."""
    exc = refused(server_side(), data)
    assert exc.status == status
    assert why in str(exc)


def test_a_refused_stream_stays_refused() -> None:
    """After an error the side's decoder is spent: no resynchronising."""
    conv = server_side()
    refused(conv, b"GET / HTTP/1.1\r\nHost: x\r\n a\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_after_an_upgrade_request_the_client_bytes_wait_for_the_answer() -> None:
    """Upgrade: what follows is HTTP again only if the server did not switch."""
    conv = server_side()
    (req,) = conv.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
                       b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert req.target == "/"
    assert conv.next_message() is None
    conv.send(HttpResponseHead.of(200, [], b"no"))
    (nxt,) = [m for m in iter(conv.next_message, None)]
    assert nxt.target == "/next"


def test_a_request_held_behind_an_upgrade_frames_the_next_answer_for_every_side() -> None:
    """A HEAD pipelined behind an Upgrade request waits for the answer; once
    it comes (no switch), the HEAD's answer has no body, whoever looks."""
    requests = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"
                b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    server = server_side()
    assert [m.method for m in server.feed(requests)] == ["GET"]
    server.send_data(answers)
    assert [(m.answers, m.body) for m in server.take_sent()] == [("GET", b"ok"), ("HEAD", b"")]
    assert server.next_message().method == "HEAD"  # the released request, handed out in order
    observer = HttpConversation(None)
    seen = observer.observe(requests, Role.CLIENT) + observer.observe(answers, Role.SERVER)
    assert [(side.value, m.summary()[:10]) for side, m in seen] == [
        ("client", "GET / HTTP"), ("server", "200 OK (th"), ("client", "HEAD / HTT"), ("server", "200 OK (th")]
    assert seen[-1][1].answers == "HEAD"


# -- the laws ------------------------------------------------------------------------------------

_REQ_BITS = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
             b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\nabc\r\n", b"0\r\n\r\n",
             b"0\r\nT: 1\r\n\r\n", b"HEAD /h HTTP/1.0\r\n\r\n", b"\r\n", b"\n", b"Content-Length: 2\r\n",
             b" folded\r\n", b"\x00", b"\xff", b"x" * 50]
_RES_BITS = [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", b"HTTP/1.1 204 No Content\r\n\r\n",
             b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             b"4\r\nwxyz\r\n", b"0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\n\r\n",
             b"\r\n", b"\xff", b"tail"]
_SENT = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
         b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_REQ_BITS) | st.binary(max_size=12), max_size=16).map(b"".join),
       cuts=st.lists(st.integers(0, 1000), max_size=8), eof=st.booleans())
def test_request_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Any client bytes split anywhere, received, sent or observed: only
    protocol errors, exact bytes, the same messages."""
    laws.stream(http.SPEC.conversation, Role.CLIENT, data, cuts, eof=eof)


@SETTINGS
@given(data=st.lists(st.sampled_from(_RES_BITS) | st.binary(max_size=8), max_size=14).map(b"".join),
       cuts=st.lists(st.integers(0, 600), max_size=8), eof=st.booleans(),
       sent=st.lists(st.sampled_from(_SENT), max_size=4))
def test_response_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool, sent: list[bytes]) -> None:
    """Server bytes split anywhere decode the same, whatever requests came before."""
    laws.stream(after(*sent), Role.SERVER, data, cuts, eof=eof)


@settings(deadline=None, max_examples=30)
@given(sizes=st.lists(st.integers(0, 3 * PART), min_size=1, max_size=4),
       cuts=st.lists(st.integers(0, 400_000), max_size=8), eof=st.booleans(), chunked=st.booleans())
def test_long_body_laws(laws: ConversationLaws, sizes: list[int], cuts: list[int], eof: bool,
                        chunked: bool) -> None:
    """Bodies of any length, by length or in chunks, cut anywhere: the same parts."""
    if chunked:
        body = b"".join(b"%x\r\n" % n + b"c" * n + b"\r\n" for n in sizes if n) + b"0\r\n\r\n"
        data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    else:
        data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % sum(sizes) + b"l" * sum(sizes)
    msgs = laws.stream(http.SPEC.conversation, Role.CLIENT, data + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", cuts,
                       eof=eof)
    assert sum(len(m.content) for m in msgs if isinstance(m, HttpBody)) == sum(sizes) or msgs[0].complete


# -- the client against the server, in memory ------------------------------------------------------


def test_client_verbs_against_the_built_in_pages(loopback: type[Loopback], arun: Runner) -> None:
    """get, head, post and request over one kept-alive connection."""

    async def main() -> None:
        lb = loopback(http.SPEC)
        client = http.HttpClient(lb)
        hello = await client.get("/hello")
        assert (hello.status, hello.text) == (200, "hello from netlab\n")
        head = await client.head("/hello")
        assert head.status == 200 and head.body == b"" and head.header("content-length") == "18"
        echoed = (await client.post("/echo", {"n": 1})).json()
        assert echoed["method"] == "POST" and echoed["body"] == '{"n": 1}'
        missing = await client.request("DELETE", "/nowhere")
        assert missing.status == 404 and "nowhere" in missing.text
        assert not lb.peer.closed

    arun(main())


def test_routes_change_between_requests(loopback: type[Loopback], arun: Runner) -> None:
    """A route added, replaced and removed takes effect on the next request;
    handlers may return text, bytes, JSON, a response or an awaitable."""

    async def main() -> None:
        lb = loopback(http.SPEC)
        client = http.HttpClient(lb)
        srv = lb.behaviour
        srv.route("/r", lambda req: "one")
        assert (await client.get("/r")).text == "one"

        @srv.route("/r", methods=["POST"])
        async def two(req: http.HttpRequest) -> http.HttpResponse:
            return http.HttpResponse(201, b"<x/>", content_type="text/xml")

        created = await client.post("/r", "body")
        assert (created.status, created.header("content-type"), created.body) == (201, "text/xml", b"<x/>")
        refused = await client.get("/r")
        assert refused.status == 405 and refused.header("allow") == "POST"
        srv.route("/b", lambda req: b"\x00\x01")
        assert (await client.get("/b")).header("content-type") == "application/octet-stream"
        srv.route("/j", lambda req: [1, 2])
        assert (await client.get("/j")).json() == [1, 2]
        srv.unroute("/r")
        assert (await client.get("/r")).status == 404

    arun(main())


def test_a_failing_route_answers_500_and_the_server_goes_on(loopback: type[Loopback], arun: Runner) -> None:
    """A handler that raises gives 500 and a note; the next request is served."""

    async def main() -> list[str]:
        lb = loopback(http.SPEC)
        client = http.HttpClient(lb)
        lb.behaviour.route("/boom", lambda req: 1 / 0)
        assert (await client.get("/boom")).status == 500
        lb.behaviour.route("/odd", lambda req: object())
        assert (await client.get("/odd")).status == 500
        assert (await client.get("/hello")).status == 200
        return lb.peer.notes

    notes = arun(main())
    assert any("ZeroDivisionError" in n for n in notes) and any("TypeError" in n for n in notes)


def test_files_stream_to_the_client_and_an_observer_sees_it_all(
        loopback: type[Loopback], arun: Runner, laws: ConversationLaws, tmp_path: Path) -> None:
    """A file larger than a part streams in parts; the whole session
    (keep-alive, conditional GET, a range, HEAD) replays to an observer."""
    big = bytes(range(256)) * 1000
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "a.txt").write_text("hello\n")

    async def main() -> Loopback:
        lb = loopback(http.SPEC, options={"path": str(tmp_path)}, window=100_000)
        client = http.HttpClient(lb)
        got = await client.get("/big.bin")
        assert got.body == big and got.header("content-type") == "application/octet-stream"
        small = await client.get("/a.txt")
        again = await client.get("/a.txt", [("If-None-Match", small.header("etag") or "")])
        assert again.status == 304 and again.body == b""
        part = await client.get("/big.bin", [("Range", "bytes=10-19")])
        assert part.status == 206 and part.body == big[10:20]
        assert (await client.head("/big.bin")).header("content-length") == str(len(big))
        return lb

    lb = arun(main())
    seen = laws.observer_replays(http.SPEC.conversation, lb, [7, 1000, 70_000])
    assert sum(isinstance(m, HttpBody) for m in seen[Role.CLIENT]) == 4


def test_the_client_keeps_at_most_max_body(loopback: type[Loopback], arun: Runner) -> None:
    """A body over the client's cap is counted, not kept, and the next response is in step."""

    async def main() -> None:
        lb = loopback(http.SPEC)
        client = http.HttpClient(lb)
        client.max_body = 10
        lb.behaviour.route("/big", lambda req: b"z" * (3 * PART))
        got = await client.get("/big")
        assert got.truncated and got.size == 3 * PART and got.body == b"z" * 10
        assert (await client.get("/hello")).status == 200

    arun(main())


def _msgs(data: bytes) -> list[Message]:
    return server_side().feed(data)


def test_decoded_messages_compare_equal_to_sent_ones() -> None:
    """The response a server sends decodes on the client to the same fields."""
    res = HttpResponseHead.of(200, [("Content-Type", "text/plain")], b"hi")
    (got,) = client_side(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").feed(res.raw)
    assert got == dataclasses.replace(res, answers="GET")
