"""The HTTP/1.1 conversation: both sides of a connection, sans-IO.

Heads are framed here, under caps (a request line over
:data:`MAX_REQUEST_LINE` is a 414, a head over :data:`MAX_HEAD` or with
more than :data:`MAX_HEADERS` fields a 431), and parsed by llhttp
(``httptools``), which refuses what RFC 9112 forbids: bare LF, obs-fold,
Content-Length with Transfer-Encoding, two Content-Lengths.  Bodies are
framed here too, from the head and, for a response, from the request it
answers (a response to HEAD, a 1xx, 204 or 304 has no body; RFC 9112
§6.3): Content-Length, chunked (chunk sizes capped, so they cannot
overflow) or until the connection closes.  A body cut where the stream
may be split is cut at fixed offsets of its content, so however the bytes
arrive the messages are the same.

An error is a :class:`HttpError` (a :class:`RemoteProtocolError` with the
status a server answers it with); the side's decoder is spent, as an
ambiguous stream cannot be resynchronised.

Tests: tests/protocols/test_http.py, tests/protocols/test_http_codec.py
"""

from __future__ import annotations

import enum
import re
from collections import deque
from typing import Any, NoReturn

import httptools

from lab.errors import ProtocolError, RemoteProtocolError
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import StreamBuffer
from lab.protocols.http._messages import (
    PART,
    Headers,
    HttpBody,
    HttpEnd,
    HttpRequestHead,
    HttpResponseHead,
    make_request,
    make_response,
)

__all__ = ["MAX_CHUNK_LINE", "MAX_HEAD", "MAX_HEADERS", "MAX_REQUEST_LINE", "HttpConversation",
           "HttpDecoder", "HttpError"]

MAX_REQUEST_LINE = 8 * 1024  # a longer request line is a 414
MAX_HEAD = 64 * 1024  # a longer head (or trailer section) is a 431
MAX_HEADERS = 100  # more fields is a 431
MAX_CHUNK_LINE = 4 * 1024  # a chunk-size line with its extensions
MAX_CHUNK_DIGITS = 15  # hex digits of a chunk size: 2**60 bytes, no overflow anywhere
MAX_LEADING = 8  # empty lines before a request line (RFC 9112 §2.2 allows a few)
MAX_PENDING_REQUESTS = 100_000

_HEAD_END = re.compile(rb"\n\r?\n")
_OBS_FOLD = re.compile(rb"\n[ \t]")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n\Z")


# a head's maker and its arguments, until its bytes are taken
_Parsed = tuple[object, list[Any]]


class HttpError(RemoteProtocolError):
    """The peer broke HTTP; ``status`` is what a server answers (400,
    413, 414, 431, 501, 505)."""

    def __init__(self, message: str, status: int = 400, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class _State(enum.Enum):
    HEAD = "head"
    LENGTH = "length"
    CHUNK_SIZE = "chunk size"
    CHUNK_DATA = "chunk data"
    CHUNK_CRLF = "chunk end"
    TRAILERS = "trailers"
    CLOSE = "until close"
    END = "end"  # the body is over: an HttpEnd comes next
    WAIT = "waiting for the answer"  # after CONNECT or Upgrade: what follows may not be HTTP
    DONE = "done"


class _Collect:
    """What llhttp reports of one head."""

    __slots__ = ("framed", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False  # a field that may be Content-Length or Transfer-Encoding came

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if len(name) == 14 or len(name) == 17:
            self.framed = True


def _values(headers: Headers, name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


class HttpDecoder(StreamBuffer):
    """What one side sends: requests (the client) or responses (the
    server), heads under caps, bodies whole or in parts."""

    counts_terminator = True

    def __init__(self, conversation: HttpConversation, sender: Role) -> None:
        super().__init__()
        self.conv = conversation
        self.requests = sender is Role.CLIENT
        self.state = _State.HEAD
        self._parsed: tuple[int, _Parsed] | None = None  # a head awaiting its body
        self._lines = 0  # line ends seen in an unfinished head, up to _scan
        self._raw = bytearray()  # body bytes taken, not yet in a message
        self._content = bytearray()
        self._offset = 0  # body content handed out so far
        self._remaining = 0
        self._trailers: list[tuple[str, str]] = []
        self._chunked = False
        self._upgrade = False  # llhttp saw CONNECT or Upgrade in the last head
        self._llhttp_reuse: tuple[_Collect, Any] | None = None
        self.early: deque[Message] = deque()  # decoded ahead by the conversation (see its track)

    @property
    def buffered(self) -> int:
        if self.early:
            return len(self._buf) + len(self._raw) + sum(len(m.raw) for m in self.early)
        return len(self._buf) + len(self._raw)

    @property
    def idle(self) -> bool:
        return not self._buf and not self._raw and self.state in (_State.HEAD, _State.DONE)

    def _fail(self, why: str, hint: str | None = None, *, status: int = 400) -> NoReturn:
        self._buf.clear()
        self._raw.clear()
        self._error = HttpError(why, status, hint=hint)
        raise self._error

    # -- heads ------------------------------------------------------------

    def next_message(self) -> Message | None:
        if self.early:
            return self.early.popleft()
        if self._error:
            raise self._error
        state = self.state
        if state is _State.HEAD:
            return self._next_head() if self._buf else None
        if state is _State.LENGTH:
            return self._next_length()
        if state is _State.CLOSE:
            return self._next_until_close()
        if state is _State.END:
            return self._end()
        if state is _State.WAIT or state is _State.DONE:
            if self._buf and state is _State.DONE:
                self._fail("data after the end of the stream")
            return None
        return self._next_chunked()

    def _next_head(self) -> Message | None:
        buf = self._buf
        if not buf:
            return None
        if self._parsed is not None:
            return self._whole(*self._parsed)
        start = 0
        while start < len(buf) and buf[start] in b"\r\n":
            start += 1
        if start > MAX_LEADING or (start and not self.requests):
            self._fail("empty lines before the start line")
        found = _HEAD_END.search(buf, max(start, self._scan - 2))
        if found is None:
            return self._head_incomplete(start)
        end = found.end()
        first = buf.find(b"\n", start)
        line_cap = MAX_REQUEST_LINE if self.requests else MAX_HEAD
        if first - start > line_cap:
            self._too_long_line(line_cap)
        if end - start > MAX_HEAD:
            self._fail(f"head longer than {MAX_HEAD} bytes", status=431)
        if buf.count(b"\n", start, end) - 2 > MAX_HEADERS:
            self._fail(f"more than {MAX_HEADERS} header fields", status=431)
        head = bytes(buf[start:end])
        self._scan = 0
        self._lines = 0
        msg = self._parse_request(head, end) if self.requests else self._parse_response(head, end)
        return self._whole(end, msg)

    def _head_incomplete(self, start: int) -> Message | None:
        buf = self._buf
        line_cap = MAX_REQUEST_LINE if self.requests else MAX_HEAD
        first = buf.find(b"\n", start)
        if (first < 0 and len(buf) - start > line_cap) or first - start > line_cap:
            self._too_long_line(line_cap)
        if len(buf) - start > MAX_HEAD:
            self._fail(f"head longer than {MAX_HEAD} bytes", status=431)
        self._lines += buf.count(b"\n", max(start, self._scan))
        self._scan = len(buf)
        if self._lines > MAX_HEADERS + 1:
            self._fail(f"more than {MAX_HEADERS} header fields", status=431)
        if self._eof:
            self._fail("the stream ended inside a head")
        return None

    def _too_long_line(self, cap: int) -> NoReturn:
        if self.requests:
            self._fail(f"request line longer than {cap} bytes", status=414)
        self._fail(f"status line longer than {cap} bytes")

    def _llhttp(self, parser_type: type, head: bytes) -> tuple[_Collect, Any]:
        reused = self._llhttp_reuse
        if reused is not None:  # at a message boundary after a head without a body
            found, parser = reused
            found.url, found.headers, found.framed = b"", [], False
            self._llhttp_reuse = None
        else:
            found = _Collect()
            parser = parser_type(found)
        self._upgrade = False
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            self._upgrade = True  # CONNECT or Upgrade: the head is whole all the same
        except httptools.HttpParserError as exc:
            self._fail(f"malformed head: {exc}", status=505 if "HTTP version" in str(exc) else 400)
        if _OBS_FOLD.search(head, 0, len(head) - 2):
            self._fail("obs-fold in a header (RFC 9112 §5.2)")
        return found, parser

    def _framing(self, headers: Headers, version: str) -> tuple[str, int | None]:
        """How the body is framed by the head alone: the common checks of
        RFC 9112 §6.1-6.3."""
        lengths = _values(headers, "content-length")
        codings = _values(headers, "transfer-encoding")
        if len(lengths) > 1:
            self._fail("more than one Content-Length (RFC 9112 §6.3)")
        if codings and lengths:
            self._fail("Content-Length with Transfer-Encoding (RFC 9112 §6.3)")
        if codings:
            if version == "HTTP/1.0":
                self._fail("Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1)")
            tokens = _tokens(codings)
            if tokens and tokens[-1] == "chunked":
                if tokens.count("chunked") > 1:
                    self._fail("chunked applied twice (RFC 9112 §6.1)")
                if self.requests and len(tokens) > 1:
                    self._fail(f"transfer coding {tokens[0]!r} is not supported", status=501)
                return "chunked", None
            if self.requests:
                self._fail("Transfer-Encoding whose last coding is not chunked (RFC 9112 §6.3)")
            return "close", None
        if lengths:
            text = lengths[0].strip()
            if not text.isdigit() or not text.isascii() or len(text) > 18:
                self._fail(f"bad Content-Length {lengths[0]!r}")
            return "length", int(text)
        return ("none", None) if self.requests else ("close", None)

    def _parse_request(self, head: bytes, end: int) -> _Parsed:
        found, parser = self._llhttp(httptools.HttpRequestParser, head)
        version = "HTTP/" + parser.get_http_version()
        if not version.startswith("HTTP/1."):
            self._fail(f"{version} is not spoken here", status=505)
        headers = tuple([(k.decode("latin-1"), v.decode("latin-1")) for k, v in found.headers])
        method = parser.get_method().decode("ascii")
        if found.framed:
            framing, length = self._framing(headers, version)
        else:
            framing, length = "none", None
            if not self._upgrade and parser.should_keep_alive():
                self._llhttp_reuse = (found, parser)  # llhttp ended this message with its head
        return make_request, [b"", method, found.url.decode("latin-1"), version, headers, b"", framing, length,
                              True]

    def _parse_response(self, head: bytes, end: int) -> _Parsed:
        found, parser = self._llhttp(httptools.HttpResponseParser, head)
        version = "HTTP/" + parser.get_http_version()
        if not version.startswith("HTTP/1."):
            self._fail(f"{version} is not spoken here")
        status = parser.get_status_code()
        line = head[:head.find(b"\n")].rstrip(b"\r")
        phrase = line.split(b" ", 2)[2].decode("latin-1") if line.count(b" ") >= 2 else ""
        headers = tuple([(k.decode("latin-1"), v.decode("latin-1")) for k, v in found.headers])
        method = self.conv.pending[0] if self.conv.pending else ""
        framing, length = self._framing(headers, version) if found.framed else ("close", None)
        if status < 200 or method == "HEAD" or status in (204, 304):
            framing, length = "none", length
        elif method == "CONNECT" and status < 300:
            framing = "close"
        return make_response, [b"", status, phrase, version, headers, b"", framing, length, True, method]

    def _whole(self, end: int, parsed: _Parsed) -> Message | None:
        """The head, with its body when it is short and framed by length."""
        buf = self._buf
        make, fields = parsed
        framing = fields[6]
        if framing == "none":
            return self._emit_head(parsed, end, b"")
        length = fields[7]
        expect = self.requests and "100-continue" in _tokens(_values(fields[4], "expect"))
        if framing == "length" and length is not None and length <= PART and not expect:
            total = end + length
            if len(buf) < total:
                if self._eof:
                    self._fail(f"the stream ended inside a body ({len(buf) - end} of {length} bytes)")
                self._parsed = (end, parsed)
                return None
            self._parsed = None
            return self._emit_head(parsed, total, bytes(buf[end:total]))
        self._parsed = None
        raw = self.take(end)
        self._offset = 0
        if framing == "length":
            self.state = _State.LENGTH
            self._remaining = length or 0
            self._chunked = False
        elif framing == "chunked":
            self.state = _State.CHUNK_SIZE
            self._chunked = True
        else:
            self.state = _State.CLOSE
            self._chunked = False
        fields[0], fields[8] = raw, False
        return make(*fields)  # type: ignore[operator]

    def _emit_head(self, parsed: _Parsed, size: int, body: bytes) -> Message:
        buf = self._buf
        if size == len(buf):
            raw = bytes(buf)
            buf.clear()
            self._scan = 0
        else:
            raw = self.take(size)
        self._parsed = None
        make, fields = parsed
        fields[0], fields[5] = raw, body
        out: HttpRequestHead | HttpResponseHead = make(*fields)  # type: ignore[operator]
        self._after_message(out)
        return out

    def _after_message(self, msg: HttpRequestHead | HttpResponseHead) -> None:
        """What comes after a whole message: a tunnel, an upgrade, or the
        next message."""
        if self._upgrade and type(msg) is HttpRequestHead:
            self.state = _State.WAIT
        elif type(msg) is HttpResponseHead and msg.status == 101:
            self.state = _State.CLOSE
            self._chunked = False
            self._offset = 0

    # -- bodies -----------------------------------------------------------

    def _part(self, raw: bytes, content: bytes) -> HttpBody:
        msg = HttpBody(raw=raw, content=content, offset=self._offset)
        self._offset += len(content)
        return msg

    def _end(self) -> HttpEnd:
        raw = bytes(self._raw)
        self._raw.clear()
        msg = HttpEnd(raw=raw, size=self._offset, trailers=tuple(self._trailers))
        self._trailers = []
        self.state = _State.HEAD
        return msg

    def _next_length(self) -> Message | None:
        need = min(PART, self._remaining)
        if len(self._buf) < need:
            if self._eof:
                self._fail(f"the stream ended inside a body ({self._offset + len(self._buf)} bytes of "
                           f"{self._offset + self._remaining})")
            return None
        data = self.take(need)
        self._remaining -= need
        if not self._remaining:
            self.state = _State.END
        return self._part(data, data)

    def _next_until_close(self) -> Message | None:
        buf = self._buf
        if len(buf) >= PART:
            data = self.take(PART)
            return self._part(data, data)
        if not self._eof:
            return None
        if buf:
            data = self.take()
            return self._part(data, data)
        self.state = _State.DONE
        return HttpEnd(raw=b"", size=self._offset)

    def _next_chunked(self) -> Message | None:
        buf = self._buf
        while True:
            state = self.state
            if state is _State.CHUNK_SIZE:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        self._fail(f"chunk-size line longer than {MAX_CHUNK_LINE} bytes")
                    return self._starved()
                if nl > MAX_CHUNK_LINE:
                    self._fail(f"chunk-size line longer than {MAX_CHUNK_LINE} bytes")
                line = bytes(buf[:nl + 1])
                match = _CHUNK_SIZE.match(line)
                if match is None:
                    self._fail(f"bad chunk-size line {line[:40]!r}")
                digits = match.group(1).lstrip(b"0")
                if len(digits) > MAX_CHUNK_DIGITS:
                    self._fail("chunk size overflow")
                size = int(digits or b"0", 16)
                if size == 0 and self._content:
                    return self._flush()  # the last-chunk opens the end, which is its own message
                del buf[:nl + 1]
                self._raw += line
                if size == 0:
                    self.state = _State.TRAILERS
                    self._trailer_bytes = 0
                else:
                    self._remaining = size
                    self.state = _State.CHUNK_DATA
            elif state is _State.CHUNK_DATA:
                n = min(self._remaining, PART - len(self._content), len(buf))
                if n:
                    piece = buf[:n]
                    self._raw += piece
                    self._content += piece
                    del buf[:n]
                    self._remaining -= n
                if not self._remaining:
                    self.state = _State.CHUNK_CRLF
                if len(self._content) >= PART:
                    return self._flush()
                if not n and self._remaining:
                    return self._starved()
            elif state is _State.CHUNK_CRLF:
                if len(buf) < 2:
                    if buf[:1] not in (b"", b"\r"):
                        self._fail("chunk data not followed by CRLF")
                    return self._starved()
                if buf[:2] != b"\r\n":
                    self._fail("chunk data not followed by CRLF")
                del buf[:2]
                self._raw += b"\r\n"
                self.state = _State.CHUNK_SIZE
            else:  # trailers
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) + self._trailer_bytes > MAX_HEAD:
                        self._fail(f"trailer section longer than {MAX_HEAD} bytes", status=431)
                    return self._starved()
                line = bytes(buf[:nl + 1])
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_HEAD or len(self._trailers) > MAX_HEADERS:
                    self._fail("trailer section too large", status=431)
                if not line.endswith(b"\r\n"):
                    self._fail("a trailer line not ended by CRLF")
                del buf[:nl + 1]
                self._raw += line
                if line == b"\r\n":
                    return self._end()
                name, colon, value = line[:-2].partition(b":")
                if not colon or not name or name != name.strip() or line[:1] in b" \t":
                    self._fail(f"bad trailer line {line[:40]!r}")
                self._trailers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

    def _flush(self) -> HttpBody:
        raw, content = bytes(self._raw), bytes(self._content)
        self._raw.clear()
        self._content.clear()
        return self._part(raw, content)

    def _starved(self) -> Message | None:
        if self._eof:
            self._fail("the stream ended inside a chunked body")
        return None

    def released(self, switched: bool) -> None:
        """The answer to a CONNECT or an Upgrade came: the stream is a
        tunnel now (``switched``) or HTTP again."""
        if self.state is _State.WAIT:
            self.state = _State.CLOSE if switched else _State.HEAD
            self._offset = 0


class HttpConversation(Conversation):
    """Both sides of an HTTP/1.1 connection.  ``pending`` holds the method
    of each request not yet answered, oldest first: a response's framing
    depends on it (HEAD), whoever is looking."""

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.pending: deque[str] = deque()
        self._tracked: deque[Message] = deque()  # decoded early, tracked already
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return HttpDecoder(self, sender)

    def track(self, sender: Role, msg: Message) -> None:
        if sender is Role.CLIENT:
            if self._tracked and msg is self._tracked[0]:
                self._tracked.popleft()  # handed out now, counted when it was decoded early
                return
            if type(msg) is HttpRequestHead and len(self.pending) < MAX_PENDING_REQUESTS:
                self.pending.append(msg.method)
            return
        if type(msg) is not HttpResponseHead or (msg.status < 200 and msg.status != 101):
            return
        method = self.pending.popleft() if self.pending else ""
        switched = msg.status == 101 or (method == "CONNECT" and msg.status < 300)
        requests = self._decoders[Role.CLIENT]
        assert isinstance(requests, HttpDecoder)
        waited = requests.state is _State.WAIT
        requests.released(switched)
        if waited and not switched and self.role is not Role.CLIENT:
            # requests held behind the answer are decoded now, so that the next answer is framed
            # by their methods (a server's, an observer's); the decoder hands them out in order
            ahead: list[Message] = []
            handed, requests.early = requests.early, deque()  # decoded ahead before: not again
            try:
                while (early := requests.next_message()) is not None:
                    self.track(Role.CLIENT, early)
                    ahead.append(early)
            except ProtocolError:
                pass  # the decoder keeps the error: the server meets it after these requests
            self._tracked.extend(ahead)
            handed.extend(ahead)
            requests.early = handed
