"""Daytime (RFC 867): the server tells the date and time as one line of text.

Over TCP the server sends the line as soon as a client connects, then
closes; over UDP it answers any datagram with it. The RFC fixes no
format; like inetd the default is ``ctime`` in local time,
``Tue Nov 24 13:09:42 2026``, and ``--format`` takes a strftime string.

Tests: tests/protocols/test_daytime.py
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.errors import ConfigError
from lab.protocols._base import (
    AnswerServer,
    ClientVerbs,
    Codec,
    Message,
    Option,
    ProtocolSpec,
    Role,
    Transport,
)
from lab.protocols._framing import DataCodec, DatagramCodec, LineCodec
from lab.protocols._verbs import Deadline, ask

__all__ = ["SPEC", "Daytime", "DaytimeClient", "DaytimeServer", "parse_format"]


def _printable(text: str) -> str:
    # RFC 867 asks for printing ASCII; a locale's month names may not be
    return "".join(c if " " <= c <= "~" else "?" for c in text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Daytime(Message):
    """The server's date line; ``text`` is the line without its CRLF."""

    # field() because a bare annotation would take the inherited
    # Message.text property as this field's default
    text: str = field()
    kind: ClassVar[str] = "daytime"
    volatile: ClassVar[frozenset[str]] = frozenset({"text"})

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


class _DaytimeLines(LineCodec):
    def decode_line(self, raw: bytes) -> Message:
        return Daytime.decode(raw)


class _DaytimeDatagrams(DatagramCodec):
    def decode(self, data: bytes) -> Message:
        return Daytime.decode(bytes(data))


def make_codec(role: Role, transport: Transport) -> Codec:
    """Client: :class:`Daytime` lines or datagrams. Server: raw chunks or
    datagrams, whose content does not matter."""
    if role is Role.CLIENT:
        return _DaytimeDatagrams() if transport is Transport.UDP else _DaytimeLines()
    return DatagramCodec() if transport is Transport.UDP else DataCodec()


def parse_format(text: str) -> str:
    """Check a ``--format`` strftime string; :class:`ConfigError` if it
    cannot make one line."""
    if "\r" in text or "\n" in text:
        raise ConfigError("daytime: --format must stay on one line", hint="drop the line break")
    try:
        time.strftime(text)
    except ValueError as exc:
        raise ConfigError(
            f"daytime: bad --format {text!r}: {exc}", hint="use strftime codes such as %H:%M:%S"
        ) from None
    return text


class DaytimeServer(AnswerServer):
    """Sends the current date line: on connect over TCP (then closes), in
    answer to each datagram over UDP."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        fmt = self.options.get("format")
        self.format: str | None = None if fmt is None else parse_format(str(fmt))
        self.clock: Callable[[], float] = time.time  # tests set a fixed clock

    def answer(self) -> Message:
        return Daytime.at(self.clock(), self.format)


class DaytimeClient(ClientVerbs):
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
    codec=make_codec,
    server=DaytimeServer,
    client=DaytimeClient,
    options=(
        Option(
            name="format",
            help="strftime format of the date line (default: ctime style, local time)",
            parse=parse_format,
            metavar="STRFTIME",
        ),
    ),
    keywords=("clock", "date"),
)
