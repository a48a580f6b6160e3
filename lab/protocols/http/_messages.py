"""HTTP/1.1 messages (RFC 9110, RFC 9112): a request head, a response
head, body parts and the end of a body.

A message whose body is small and framed by Content-Length comes whole
(its head carries the body, ``complete`` is true); any other body
streams: the head, :class:`HttpBody` parts of at most :data:`PART`
bytes, then an :class:`HttpEnd`.  So a 1 GB download is never one Python
object, and the log keeps each part's preview and the byte count.

Tests: tests/protocols/test_http.py
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.protocols._base import Message, Pattern, code_pattern, escape_bytes

__all__ = [
    "PART",
    "REASONS",
    "Headers",
    "HttpBody",
    "HttpEnd",
    "HttpHead",
    "HttpRequestHead",
    "HttpResponseHead",
    "find_header",
    "meaning",
    "reason",
]

PART = 64 * 1024  # the most body one message holds
PREVIEW = 200  # body bytes a summary or field tree shows

Headers = tuple[tuple[str, str], ...]

# RFC 9110 §15 (and 6585, 7538, 8297, 9110's 421/425): code -> (reason phrase, what it means)
REASONS: dict[int, tuple[str, str]] = {
    100: ("Continue", "the request head was accepted: send the body"),
    101: ("Switching Protocols", "the connection now speaks another protocol"),
    103: ("Early Hints", "headers the final response is likely to have"),
    200: ("OK", "the request succeeded"),
    201: ("Created", "a new resource was made"),
    202: ("Accepted", "accepted for processing, not yet done"),
    203: ("Non-Authoritative Information", "a proxy changed the response"),
    204: ("No Content", "success, and there is no body"),
    205: ("Reset Content", "success: reset the form that sent it"),
    206: ("Partial Content", "the ranges asked for"),
    300: ("Multiple Choices", "several representations: pick one"),
    301: ("Moved Permanently", "the resource has a new permanent URI"),
    302: ("Found", "the resource is elsewhere for now"),
    303: ("See Other", "get the answer at another URI"),
    304: ("Not Modified", "the cached copy is still good"),
    307: ("Temporary Redirect", "repeat the request elsewhere, same method"),
    308: ("Permanent Redirect", "moved for good, same method"),
    400: ("Bad Request", "the request is malformed"),
    401: ("Unauthorized", "credentials are needed"),
    403: ("Forbidden", "understood, and refused"),
    404: ("Not Found", "nothing at that path"),
    405: ("Method Not Allowed", "the resource does not take that method"),
    406: ("Not Acceptable", "no representation the client accepts"),
    408: ("Request Timeout", "the request did not arrive in time"),
    409: ("Conflict", "conflicts with the resource's state"),
    410: ("Gone", "it was here, and is gone for good"),
    411: ("Length Required", "send a Content-Length"),
    412: ("Precondition Failed", "a condition in the request is false"),
    413: ("Content Too Large", "the body is larger than the server takes"),
    414: ("URI Too Long", "the target is longer than the server reads"),
    415: ("Unsupported Media Type", "the body's format is not taken here"),
    416: ("Range Not Satisfiable", "no asked range overlaps the resource"),
    417: ("Expectation Failed", "the Expect header cannot be met"),
    421: ("Misdirected Request", "this server does not answer for that host"),
    422: ("Unprocessable Content", "well formed, and wrong"),
    426: ("Upgrade Required", "switch protocols first"),
    428: ("Precondition Required", "the request must be conditional"),
    429: ("Too Many Requests", "slow down"),
    431: ("Request Header Fields Too Large", "the head is larger than the server reads"),
    500: ("Internal Server Error", "the server failed"),
    501: ("Not Implemented", "the server does not know the method"),
    502: ("Bad Gateway", "the server behind this one answered badly"),
    503: ("Service Unavailable", "overloaded or down for now"),
    504: ("Gateway Timeout", "the server behind this one did not answer"),
    505: ("HTTP Version Not Supported", "the server speaks HTTP/1.x"),
}

_CLASSES = {1: "informational", 2: "success", 3: "redirection", 4: "client error", 5: "server error"}


def reason(status: int) -> str:
    """The RFC 9110 reason phrase for ``status`` (empty when unregistered)."""
    return REASONS.get(status, ("", ""))[0]


def meaning(status: int) -> str:
    """What ``status`` means, in a few words."""
    known = REASONS.get(status)
    if known is not None:
        return known[1]
    return _CLASSES.get(status // 100, "not a status code")


def find_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (any case), or None."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


# field names are tokens (RFC 9110 §5.1); values hold no CR, LF or NUL (§5.5)
_TOKENS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def encode_head(first: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """A head's bytes: the start line, each header, the blank line;
    :class:`ValueError` for a name or value that would break the head."""
    if not isinstance(headers, (list, tuple)):
        headers = list(headers)
    block = "".join([f"{name}: {value}\r\n" for name, value in headers])
    n = len(headers)
    # checked on the whole block at C speed: each line adds exactly one CR and one LF
    if (block.count("\n") != n or block.count("\r") != n or "\0" in block
            or (n and _TOKENS.fullmatch("".join([name for name, _ in headers])) is None)
            or not all([name for name, _ in headers])):
        bad = next((k, v) for k, v in headers if not _TOKENS.fullmatch(k) or any(c in v for c in "\r\n\0"))
        raise ValueError(f"bad header {bad[0]!r}: {bad[1]!r}")
    return f"{first}\r\n{block}\r\n".encode("latin-1")


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The slot setters of ``names`` on a frozen slotted dataclass, for
    building one without its (slow, per-field) frozen ``__init__``."""
    out = []
    for name in names:
        for klass in cls.__mro__:
            slot = klass.__dict__.get(name)
            if slot is not None and hasattr(slot, "__set__"):
                out.append(slot.__set__)
                break
        else:
            raise TypeError(f"{cls.__name__} has no slot {name}")
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpHead(Message):
    """What a request head and a response head share.

    ``framing`` says how the body is delimited: ``none``, ``length``
    (Content-Length), ``chunked`` or ``close`` (until the connection
    closes); ``length`` is the Content-Length.  ``complete`` means this
    message holds the whole message, ``body`` included; otherwise the body
    follows as :class:`HttpBody` parts and an :class:`HttpEnd`.
    """

    version: str = "HTTP/1.1"
    headers: Headers = ()
    body: bytes = b""
    framing: str = "none"
    length: int | None = None
    complete: bool = True

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (any case), or ``default``."""
        found = find_header(self.headers, name)
        return default if found is None else found

    @property
    def head_size(self) -> int:
        return len(self.raw) - len(self.body)

    def _body_note(self) -> str:
        kind = self.header("content-type")
        if self.framing == "none" or (self.complete and not self.body and self.framing == "length"):
            return ""
        size = f"{len(self.body)} bytes" if self.complete else (
            f"{self.length} bytes follow" if self.length is not None else f"{self.framing} body follows")
        return f" [{size}{', ' + kind if kind else ''}]"

    def _fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version,
                               "headers": [f"{k}: {v}" for k, v in self.headers],
                               "framing": self.framing}
        if self.length is not None:
            out["length"] = self.length
        if self.complete and self.body:
            out["body_size"] = len(self.body)
            out["body_preview"] = self.body[:PREVIEW].decode("utf-8", "replace")
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequestHead(HttpHead):
    """A request: its method, its target as sent, and its head (and body,
    when ``complete``).  ``kind`` is the method: ``srv.on("GET", fn)``."""

    method: str = "GET"
    target: str = "/"

    @property
    def kind(self) -> str:
        return self.method

    @classmethod
    def of(cls, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
           *, version: str = "HTTP/1.1", chunked: bool = False) -> HttpRequestHead:
        """A request to send: a Content-Length is added for a body (and
        for POST/PUT without one), unless ``chunked`` (then the body
        follows as parts)."""
        pairs = list(headers)
        names = {k.lower() for k, _ in pairs}
        if chunked:
            if "transfer-encoding" not in names:
                pairs.append(("Transfer-Encoding", "chunked"))
        elif "content-length" not in names and (body or method in ("POST", "PUT", "PATCH")):
            pairs.append(("Content-Length", str(len(body))))
        if any(c in target for c in " \r\n\0") or not target:
            raise ValueError(f"bad request target {target!r}")
        raw = encode_head(f"{method} {target} {version}", pairs)
        cl = find_header(tuple(pairs), "content-length")
        framing = "chunked" if chunked else ("length" if cl is not None else "none")
        return make_request(raw + (b"" if chunked else body), method, target, version, tuple(pairs),
                            b"" if chunked else body, framing,
                            int(cl) if cl is not None and cl.strip().isdigit() else None, not chunked)

    def summary(self) -> str:
        who = [f"Host {v}" for v in (self.header("host"),) if v]
        who += [f"User-Agent {v[:40]}" for v in (self.header("user-agent"),) if v]
        return f"{self.method} {self.target} {self.version}" + (f" ({'; '.join(who)})" if who else "") + \
            self._body_note()

    def fields(self) -> dict[str, Any]:
        return {"method": self.method, "target": self.target, **self._fields()}

    def matches(self, pattern: Pattern) -> bool:
        # `expect s GET` is about the method, not any text that says GET
        if isinstance(pattern, str) and pattern == self.method:
            return True
        return Message.matches(self, pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponseHead(HttpHead):
    """A response: status, reason phrase as sent, the method of the
    request it answers, and its head (and body, when ``complete``).
    ``expect c 404`` compares the status."""

    status: int = 200
    reason: str = "OK"
    answers: str = ""  # the request method, which decides the framing (HEAD: no body)
    KIND: ClassVar[str] = "response"
    _VOLATILE_HEADERS: ClassVar[tuple[str, ...]] = ("date", "etag", "last-modified", "server", "expires", "age")

    @classmethod
    def of(cls, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"", *,
           reason: str | None = None, version: str = "HTTP/1.1", answers: str = "GET",
           length: int | None = None, streamed: bool = False) -> HttpResponseHead:
        """A response to send.  Without a Content-Length or
        Transfer-Encoding one is added (``length``, or the body's); with
        ``streamed`` the body follows as parts.  A response to HEAD, a 1xx,
        204 or 304 carries no body on the wire (RFC 9110 §6.4.1)."""
        pairs = list(headers)
        cl: str | None = None
        chunked = False
        for key, value in pairs:
            low = key.lower()
            if low == "content-length":
                cl = value
            elif low == "transfer-encoding":
                chunked = True
        bodiless = answers == "HEAD" or status < 200 or status in (204, 304)
        if not chunked and cl is None and status >= 200 and status != 204 and (status != 304 or length is not None):
            cl = str(len(body) if length is None else length)
            pairs.append(("Content-Length", cl))
        phrase = REASONS.get(status, ("",))[0] if reason is None else reason
        raw = encode_head(f"{version} {status} {phrase}", pairs)
        if bodiless:
            framing, body, complete = "none", b"", True
        elif chunked:
            framing, complete = "chunked", False
        else:
            framing, complete = "length", not streamed
        return make_response(raw + body if complete else raw, status, phrase, version, tuple(pairs),
                             body if complete else b"", framing, int(cl) if cl is not None and cl.isdigit() else None,
                             complete, answers)

    @property
    def code(self) -> int:
        return self.status

    @property
    def volatile(self) -> frozenset[str]:
        return frozenset(name for name in self._VOLATILE_HEADERS if find_header(self.headers, name) is not None)

    @property
    def meaning(self) -> str:
        return meaning(self.status)

    def summary(self) -> str:
        return f"{self.status} {self.reason or reason(self.status)} ({self.meaning})" + self._body_note()

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason, "meaning": self.meaning}
        if self.answers:
            out["answers"] = self.answers
        for name in self._VOLATILE_HEADERS:
            value = find_header(self.headers, name)
            if value is not None:
                out[name] = value
        out.update(self._fields())
        return out

    def matches(self, pattern: Pattern) -> bool:
        wanted = code_pattern(pattern)
        return self.status == wanted if wanted is not None else Message.matches(self, pattern)


_REQUEST_SLOTS = _setters(HttpRequestHead, ("raw", "method", "target", "version", "headers", "body", "framing",
                                            "length", "complete"))
_RESPONSE_SLOTS = _setters(HttpResponseHead, ("raw", "status", "reason", "version", "headers", "body", "framing",
                                              "length", "complete", "answers"))
_new = object.__new__


def make_request(raw: bytes, method: str, target: str, version: str, headers: Headers, body: bytes, framing: str,
                 length: int | None, complete: bool) -> HttpRequestHead:
    """``HttpRequestHead(...)``, at a fraction of the cost: a request per message is the hot path."""
    msg: HttpRequestHead = _new(HttpRequestHead)
    s = _REQUEST_SLOTS
    s[0](msg, raw)
    s[1](msg, method)
    s[2](msg, target)
    s[3](msg, version)
    s[4](msg, headers)
    s[5](msg, body)
    s[6](msg, framing)
    s[7](msg, length)
    s[8](msg, complete)
    return msg


def make_response(raw: bytes, status: int, reason: str, version: str, headers: Headers, body: bytes, framing: str,
                  length: int | None, complete: bool, answers: str) -> HttpResponseHead:
    """``HttpResponseHead(...)``, as :func:`make_request`."""
    msg: HttpResponseHead = _new(HttpResponseHead)
    s = _RESPONSE_SLOTS
    s[0](msg, raw)
    s[1](msg, status)
    s[2](msg, reason)
    s[3](msg, version)
    s[4](msg, headers)
    s[5](msg, body)
    s[6](msg, framing)
    s[7](msg, length)
    s[8](msg, complete)
    s[9](msg, answers)
    return msg


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpBody(Message):
    """A part of a streamed body: ``raw`` is its wire bytes (chunk framing
    included), ``content`` the body bytes it carries, ``offset`` where they
    start in the body."""

    content: bytes = b""
    offset: int = 0
    KIND: ClassVar[str] = "body"

    @classmethod
    def of(cls, content: bytes, offset: int = 0, *, chunked: bool = False) -> HttpBody:
        raw = (b"%x\r\n" % len(content) + content + b"\r\n") if chunked and content else content
        return cls(raw=raw, content=content, offset=offset)

    def summary(self) -> str:
        return f"body, {len(self.content)} bytes from {self.offset}: {escape_bytes(self.content, 40)}"

    def fields(self) -> dict[str, Any]:
        return {"offset": self.offset, "length": len(self.content),
                "preview": self.content[:PREVIEW].decode("utf-8", "replace")}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpEnd(Message):
    """The end of a streamed body: ``size`` is the whole body's length,
    ``trailers`` the trailer fields of a chunked one.  ``raw`` is the last
    chunk and trailers (chunked), or nothing."""

    size: int = 0
    trailers: Headers = ()
    KIND: ClassVar[str] = "end"

    @classmethod
    def of(cls, size: int, *, chunked: bool = False) -> HttpEnd:
        return cls(raw=b"0\r\n\r\n" if chunked else b"", size=size)

    def summary(self) -> str:
        extra = f", {len(self.trailers)} trailers" if self.trailers else ""
        return f"end of body, {self.size} bytes{extra}"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size}
        if self.trailers:
            out["trailers"] = [f"{k}: {v}" for k, v in self.trailers]
        return out
