"""Quote of the Day (RFC 865): the server sends a short message.

Over TCP the server sends one quote as soon as a client connects, then
closes; over UDP it answers any datagram with one. The RFC keeps a quote
under 512 characters of printing ASCII, spaces and line breaks, so
``--quote`` refuses anything else. Quotes are served in turn, the same
order every run.

Tests: tests/protocols/test_qotd.py
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.protocols._base import Message, Transport, escape_bytes
from lab.protocols._conversation import Decoder
from lab.protocols._framing import DatagramDecoder, LineDecoder, ServerSpeaks
from lab.protocols._options import Options, option
from lab.protocols._session import AnswerServer, ClientVerbs
from lab.protocols._spec import ProtocolSpec
from lab.protocols._verbs import Deadline, ask, read_until_closed

__all__ = [
    "DEFAULT_QUOTES",
    "MAX_QUOTE",
    "SPEC",
    "QotdClient",
    "QotdConversation",
    "QotdOptions",
    "QotdServer",
    "Quote",
    "parse_quote",
]

MAX_QUOTE = 511  # RFC 865: "less than 512 characters", counted on the wire
_CLIENT_LIMIT = 64 * 1024  # a client still reads a longer quote, up to this

DEFAULT_QUOTES = (
    (
        "Be conservative in what you do, be liberal in what you accept from others.\n"
        "  -- Jon Postel, RFC 761"
    ),
    (
        "We reject: kings, presidents and voting.\n"
        "We believe in: rough consensus and running code.\n"
        "  -- David D. Clark, IETF, 1992"
    ),
    (
        "No matter how hard you push and no matter what the priority,\n"
        "you can't increase the speed of light.\n"
        "  -- RFC 1925, The Twelve Networking Truths"
    ),
    "It is more complicated than you think.\n  -- RFC 1925",
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ALLOWED = re.compile(r"[ -~\r\n]*")  # RFC 865: printing ASCII, space, CR, LF


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote(Message):
    """A whole quote as the server sends it; ``quote`` has ``\\n`` line
    breaks and no final one."""

    quote: str
    KIND: ClassVar[str] = "quote"

    @classmethod
    def of(cls, quote: str) -> Quote:
        """The wire form: CRLF line breaks, ending in CRLF."""
        text = _LINE_BREAK.sub("\n", quote).rstrip("\n")
        raw = text.replace("\n", "\r\n").encode("utf-8") + b"\r\n"
        return cls(raw=raw, quote=text)

    @classmethod
    def decode(cls, raw: bytes) -> Quote:
        """Any bytes a server sent, read leniently."""
        text = _LINE_BREAK.sub("\n", raw.decode("utf-8", "replace")).rstrip("\n")
        return cls(raw=bytes(raw), quote=text)

    def summary(self) -> str:
        lines = self.quote.count("\n") + 1
        return f"quote ({lines} line{'s' if lines != 1 else ''}) {escape_bytes(self.raw, 60)}"


class _QuoteDatagrams(DatagramDecoder):
    def decode(self, data: bytes) -> Message:
        return Quote.decode(data)


class QotdConversation(ServerSpeaks):
    """The server's quote as lines (TCP) or one :class:`Quote` datagram
    (UDP); the client's bytes or datagrams, whose content does not matter."""

    def server_stream(self) -> Decoder:
        return LineDecoder()

    def server_datagrams(self) -> Decoder:
        return _QuoteDatagrams()


def parse_quote(text: str) -> str:
    """Check one ``--quote``: :class:`ValueError` unless it is printing
    ASCII and line breaks, under 512 bytes once sent."""
    if not _ALLOWED.fullmatch(text):
        bad = next(c for c in text if not _ALLOWED.fullmatch(c))
        raise ValueError(f"may not contain {bad!r}: RFC 865 allows printing ASCII, spaces and line breaks")
    size = len(Quote.of(text).raw)
    if size > MAX_QUOTE:
        raise ValueError(f"is {size} bytes on the wire, RFC 865 allows {MAX_QUOTE}: shorten it, "
                         "or split it into several quotes")
    return text


@dataclass(frozen=True, kw_only=True)
class QotdOptions(Options):
    """The quotes a qotd server hands out."""

    quote: tuple[str, ...] = option(
        help="a quote to serve, in turn with the others", parse=parse_quote, multiple=True,
        metavar="TEXT", example="'Rough consensus and running code.'",
        show_default="a few networking classics")


class QotdServer(AnswerServer[QotdOptions]):
    """Sends the quotes in turn, across all clients: one per TCP connection
    (then closes), one per UDP datagram."""

    def __init__(self, options: QotdOptions) -> None:
        super().__init__(options)
        self.quotes: tuple[str, ...] = options.quote or DEFAULT_QUOTES
        self._turn = 0

    def next_quote(self) -> Quote:
        """The next quote in turn."""
        quote = self.quotes[self._turn % len(self.quotes)]
        self._turn += 1
        return Quote.of(quote)

    def answer(self) -> Message:
        return self.next_quote()


class QotdClient(ClientVerbs[Any]):
    """Verbs for talking to a qotd server."""

    async def get(self, timeout: float = 5.0) -> str:
        """The quote, with ``\\n`` line breaks: over TCP everything until
        the server closes, over UDP one answered datagram (this sends the
        empty request datagram first)."""
        deadline = Deadline(timeout)
        first = await ask(self.channel, deadline, "qotd", "the quote")
        if isinstance(first, Quote):
            return first.quote
        rest = await read_until_closed(self.channel, deadline, limit=_CLIENT_LIMIT, what="quote")
        return Quote.decode(b"".join(m.raw for m in [first, *rest])).quote


SPEC = ProtocolSpec(
    name="qotd",
    summary="sends a short quotation",
    rfc="RFC 865",
    default_port=17,
    transports=(Transport.TCP, Transport.UDP),
    conversation=QotdConversation,
    server=QotdServer,
    client=QotdClient,
    options=QotdOptions,
    keywords=("quote", "fortune"),
)
