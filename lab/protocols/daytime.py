"""Daytime (RFC 867): the server tells the date and time as one line of text.

Over TCP the server sends the line as soon as a client connects, then
closes; over UDP it answers any datagram with it. The RFC fixes no
format; like inetd the default is ``ctime`` in local time,
``Tue Nov 24 13:09:42 2026``, and ``--format`` takes a strftime string.

Tests: tests/protocols/test_daytime.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.protocols._base import Message, Transport
from lab.protocols._conversation import Decoder
from lab.protocols._framing import DatagramDecoder, LineDecoder, ServerSpeaks
from lab.protocols._options import Options, option
from lab.protocols._session import AnswerServer, ClientVerbs
from lab.protocols._spec import ProtocolSpec
from lab.protocols._verbs import Deadline, ask

__all__ = [
    "SPEC",
    "Daytime",
    "DaytimeClient",
    "DaytimeConversation",
    "DaytimeOptions",
    "DaytimeServer",
    "parse_format",
]


def _printable(text: str) -> str:
    # RFC 867 asks for printing ASCII; a locale's month names may not be
    return "".join(c if " " <= c <= "~" else "?" for c in text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Daytime(Message):
    """The server's date line; ``text`` is the line without its CRLF."""

    # field() because a bare annotation would take the inherited
    # Message.text property as this field's default
    text: str = field()
    KIND: ClassVar[str] = "daytime"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"text"})

    @classmethod
    def at(cls, when: float, fmt: str | None = None) -> Daytime:
        """The line for the epoch time ``when``, in local time: ``ctime``
        style, or ``fmt`` as a strftime format."""
        text = time.ctime(when) if fmt is None else time.strftime(fmt, time.localtime(when))
        text = _printable(text)
        return cls(raw=text.encode("ascii") + b"\r\n", text=text)

    @classmethod
    def decode(cls, raw: bytes) -> Daytime:
        """Whatever a server sent, read leniently: any text is a date."""
        return cls(raw=raw, text=raw.decode("utf-8", "replace").rstrip("\r\n"))

    def summary(self) -> str:
        return f"daytime {self.text!r}"

    def fields(self) -> dict[str, Any]:
        return {"text": self.text}


class _DaytimeLines(LineDecoder):
    def decode_line(self, raw: bytes) -> Message:
        return Daytime.decode(raw)


class _DaytimeDatagrams(DatagramDecoder):
    def decode(self, data: bytes) -> Message:
        return Daytime.decode(bytes(data))


class DaytimeConversation(ServerSpeaks):
    """The server's :class:`Daytime` lines (TCP) or datagrams (UDP); the
    client's bytes or datagrams, whose content does not matter."""

    def server_stream(self) -> Decoder:
        return _DaytimeLines()

    def server_datagrams(self) -> Decoder:
        return _DaytimeDatagrams()


def parse_format(text: str) -> str:
    """A ``--format`` strftime string that makes one line; :class:`ValueError`
    if it cannot."""
    if "\r" in text or "\n" in text:
        raise ValueError(f"wants a format on one line, got {text!r}")
    try:
        time.strftime(text)
    except ValueError as exc:
        raise ValueError(f"wants strftime codes such as %H:%M:%S, got {text!r} ({exc})") from None
    return text


@dataclass(frozen=True, kw_only=True)
class DaytimeOptions(Options):
    """How a daytime server writes its line."""

    format: str | None = option(
        help="strftime format of the date line", parse=parse_format, metavar="STRFTIME",
        show_default="ctime style, local time")


class DaytimeServer(AnswerServer[DaytimeOptions]):
    """Sends the current date line: on connect over TCP (then closes), in
    answer to each datagram over UDP."""

    def __init__(self, options: DaytimeOptions) -> None:
        super().__init__(options)
        # the date told, not a timer: wall time, which tests fix
        self.wall_clock: Callable[[], float] = time.time

    def answer(self) -> Message:
        return Daytime.at(self.wall_clock(), self.options.format)


class DaytimeClient(ClientVerbs[Any]):
    """Verbs for talking to a daytime server."""

    async def get(self, timeout: float = 5.0) -> str:
        """The server's date line, without CRLF (over UDP this sends the
        empty request datagram first)."""
        msg = await ask(self.channel, Deadline(timeout), "daytime", "the date")
        return msg.text


SPEC = ProtocolSpec(
    name="daytime",
    summary="tells the date and time as a line of text",
    rfc="RFC 867",
    default_port=13,
    transports=(Transport.TCP, Transport.UDP),
    conversation=DaytimeConversation,
    server=DaytimeServer,
    client=DaytimeClient,
    options=DaytimeOptions,
    keywords=("clock", "date"),
)
