"""Both sides of a SOCKS 4/4a connection, sans-IO, and the tunnel after it.

The client sends one request, the server one reply (two for BIND: where
it listens, then whom it accepted).  Until the reply the client's next
bytes are held: they belong to the tunnel only if the server grants it.
After a grant, what each side sends is the destination's protocol, and
the conversation decodes it with that protocol's own conversation (an
observer of it), chosen by ``choose(request)``: the protocol the client
named, or the one whose default port is the destination port.  Bytes
that stop decoding as that protocol, or that it would hold too long,
go on as plain chunks, so the tunnel is always shown whole.

Tests: tests/protocols/test_socks.py
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.errors import RemoteProtocolError
from lab.protocols._base import Message, Role, Transport, escape_bytes
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import STREAM_ABOVE, Data, StreamBuffer
from lab.protocols.socks._messages import REPLY_MEANINGS, SocksCommand, SocksReply, SocksRequest, is_4a_address

__all__ = [
    "HELD_LIMIT",
    "MAX_REQUEST",
    "WELL_KNOWN",
    "Phase",
    "SocksConversation",
    "Undecoded",
    "default_choice",
    "load_ports",
    "protocol_for_port",
]

logger = logging.getLogger(__name__)

MAX_REQUEST = 1024  # a request is 9 bytes, a user id and a host name: both NUL-terminated, so capped here
# tunnel bytes the destination's decoder may hold before we show them as plain chunks
HELD_LIMIT = 256 * 1024
Chooser = Callable[[SocksRequest], str | None]


class Phase(enum.Enum):
    REQUEST = "request"  # the client has not asked yet
    REPLY = "reply"  # asked; the server has not (fully) answered
    RELAY = "relay"  # granted: the tunnel carries the destination's protocol
    REFUSED = "refused"  # nothing more may be said


@dataclass(frozen=True, slots=True, kw_only=True)
class Undecoded(Message):
    """Tunnel bytes that stopped decoding as the destination's protocol;
    what follows them comes as plain chunks."""

    protocol: str
    problem: str
    KIND: ClassVar[str] = "data"

    def summary(self) -> str:
        return (f"{len(self.raw)} bytes no longer decode as {self.protocol} ({self.problem}):"
                f" {escape_bytes(self.raw, 60)}")

    def fields(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "problem": self.problem, "length": len(self.raw)}


# IANA's ports for the protocols netlab has: what a tunnel is decoded as
# before (or without) loading every protocol to read its default port
WELL_KNOWN = {7: "echo", 9: "discard", 13: "daytime", 17: "qotd", 19: "chargen", 21: "ftp", 23: "telnet",
              25: "smtp", 37: "time", 53: "dns", 79: "finger", 80: "http", 110: "pop3", 119: "nntp",
              6667: "irc"}
_PORTS: dict[int, str] | None = None


def load_ports() -> dict[int, str]:
    """Every registered protocol's default TCP port (those two protocols
    claim are left out); slow the first time: it loads every protocol."""
    global _PORTS
    if _PORTS is None:
        from lab.protocols import all_specs  # the registry, loaded when first needed

        found: dict[int, str] = {}
        claimed: set[int] = set()
        for spec in all_specs():
            # protocols whose library owns the socket (SSH) decode no raw stream
            if spec.default_port and Transport.TCP in spec.transports and spec.listen is None:
                if spec.default_port in found:
                    claimed.add(spec.default_port)
                found.setdefault(spec.default_port, spec.name)
        _PORTS = {port: name for port, name in found.items() if port not in claimed}
    return _PORTS


def protocol_for_port(port: int) -> str | None:
    """The protocol netlab knows whose default TCP port is ``port``: from
    every protocol once they are loaded (:func:`load_ports`), else from
    the well-known ports, without loading anything but the registry's names."""
    if _PORTS is not None:
        return _PORTS.get(port)
    name = WELL_KNOWN.get(port)
    if name is None:
        return None
    from lab.protocols import names

    return name if name in names() else None


def default_choice(request: SocksRequest) -> str | None:
    """The protocol a tunnel carries: the one the client named, or the one
    whose default port the request names (``raw``: none)."""
    if request.decode:
        return None if request.decode == "raw" else request.decode
    return protocol_for_port(request.port)


def _inner_conversation(name: str, transport: Transport) -> Conversation | None:
    from lab.protocols import get

    try:
        return get(name).conversation(None, transport)
    except Exception as exc:  # a protocol that does not load must not break the tunnel
        logger.warning("socks: cannot decode the tunnel as %s: %s", name, exc)
        return None


class _SideDecoder(StreamBuffer):
    """One side: its SOCKS message(s) first, then its half of the tunnel."""

    side: ClassVar[Role]

    def __init__(self) -> None:
        super().__init__()
        self._unconsumed = bytearray()  # given to the tunnel's decoder, not yet a message of it
        self._fed_eof = False
        self._plain = False  # the tunnel's decoder gave up on this side
        self._problem = ""

    @property
    def conv(self) -> SocksConversation:
        assert isinstance(self.conversation, SocksConversation)
        return self.conversation

    @property
    def buffered(self) -> int:
        return len(self._buf) + len(self._unconsumed)

    def next_message(self) -> Message | None:
        self._check()
        phase = self.conv.phase
        if phase is Phase.RELAY:
            return self._tunnel()
        if phase is Phase.REFUSED:
            if self._buf:
                self._fail(f"the {self.side.value} sent bytes after the request was refused")
            return None
        return self._socks(phase)

    def _socks(self, phase: Phase) -> Message | None:
        raise NotImplementedError

    # -- the tunnel --------------------------------------------------------

    def _tunnel(self) -> Message | None:
        conv = self.conv
        inner = conv.inner
        if inner is None or self._plain:
            if not self._buf:
                return None
            data = self.take(STREAM_ABOVE)
            if self._problem:
                problem, self._problem = self._problem, ""
                return Undecoded(raw=data, protocol=conv.inner_name, problem=problem)
            return Data(raw=data)
        try:
            if self._buf:
                data = self.take()
                self._unconsumed += data
                inner.receive_data(data, self.side)
            if self._eof and not self._fed_eof:
                self._fed_eof = True
                inner.receive_data(b"", self.side)
            msg = inner.next_message(self.side)
        except RemoteProtocolError as exc:
            return self._give_up(exc.message)
        if msg is None:
            if len(self._unconsumed) > HELD_LIMIT:
                return self._give_up(f"more than {HELD_LIMIT // 1024} KiB held without a message")
            return None
        size = len(msg.raw)
        if size > len(self._unconsumed) or bytes(self._unconsumed[:size]) != msg.raw:
            # not the exact bytes: the count would drift, so stop decoding here
            return self._give_up("a message that is not its wire bytes")
        del self._unconsumed[:size]
        conv._from_tunnel = msg
        return msg

    def _give_up(self, problem: str) -> Message | None:
        self._plain = True
        self._problem = problem
        self.conv.tunnel_problems[self.side] = problem
        self._buf[:0] = self._unconsumed
        self._unconsumed.clear()
        self._scan = 0
        return self._tunnel()


class RequestDecoder(_SideDecoder):
    """What the client sends: a request, then its half of the tunnel."""

    side = Role.CLIENT

    def _socks(self, phase: Phase) -> Message | None:
        if phase is not Phase.REQUEST:
            return None  # held until the server answers
        buf = self._buf
        if not buf:
            return None
        if buf[0] != 4:
            hint = "a SOCKS 5 client? this server speaks SOCKS 4 and 4a" if buf[0] == 5 else None
            self._fail(f"version {buf[0]} is not SOCKS 4", hint)
        if len(buf) >= 2 and buf[1] not in (SocksCommand.CONNECT, SocksCommand.BIND):
            self._fail(f"unknown command {buf[1]} (1 is CONNECT, 2 BIND)")
        limit = self.conv.max_request
        if len(buf) < 8:
            return self._short()
        end = self._field_end(8, "user id", limit)
        if end is None:
            return self._short()
        host: bytes | None = None
        if is_4a_address(bytes(buf[4:8])):
            host_end = self._field_end(end, "host name", limit)
            if host_end is None:
                return self._short()
            host = bytes(buf[end:host_end - 1])
            if not host:
                self._fail("a SOCKS 4a request with an empty host name")
            end = host_end
        raw = self.take(end)
        user_end = raw.index(b"\0", 8)
        return SocksRequest(raw=raw, version=4, command=raw[1], port=int.from_bytes(raw[2:4], "big"),
                            address=str(ipaddress.IPv4Address(raw[4:8])), user=raw[8:user_end].decode("latin-1"),
                            host=None if host is None else host.decode("latin-1"))

    def _field_end(self, start: int, what: str, limit: int) -> int | None:
        """Just past the NUL ending the field at ``start``; None if it has
        not come yet.  Past ``limit`` bytes of request it is an error."""
        nul = self._buf.find(b"\0", start)
        if nul < 0:
            if len(self._buf) > limit:
                self._fail(f"request longer than {limit} bytes: the {what} has no NUL")
            return None
        if nul + 1 > limit:
            self._fail(f"request longer than {limit} bytes (the {what} ends at byte {nul + 1})")
        return nul + 1

    def _short(self) -> Message | None:
        """None (more to come), or an error at the end of the stream."""
        if self._eof:
            self._fail(f"the request was cut short after {len(self._buf)} bytes")
        return None


class ReplyDecoder(_SideDecoder):
    """What the server sends: its reply (two for BIND), then its half of
    the tunnel."""

    side = Role.SERVER

    def _socks(self, phase: Phase) -> Message | None:
        # a server speaks once asked; one that answers bytes that were no
        # request (a SOCKS 5 greeting) is read as replying all the same
        buf = self._buf
        if len(buf) < 8:
            if self._eof and buf:
                self._fail(f"the reply was cut short after {len(buf)} bytes")
            return None
        version, code = buf[0], buf[1]
        if version not in (0, 4):
            self._fail(f"reply version {version} (a SOCKS 4 reply has 0)")
        if code not in REPLY_MEANINGS:
            self._fail(f"unknown reply code {code} (90 to 93)")
        raw = self.take(8)
        return SocksReply(raw=raw, version=version, code=code, port=int.from_bytes(raw[2:4], "big"),
                          address=str(ipaddress.IPv4Address(raw[4:8])))


class SocksConversation(Conversation):
    """Both sides of a SOCKS 4/4a connection and the tunnel it opens.

    ``phase`` is the shared state; ``request`` the client's request;
    ``inner`` the destination protocol's conversation (an observer) once
    a tunnel is granted, chosen by ``choose``; ``tunnel_problems`` says,
    per side, why its bytes went on as plain chunks.
    """

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP, *,
                 choose: Chooser | None = None, max_request: int = MAX_REQUEST) -> None:
        self.phase = Phase.REQUEST
        self.request: SocksRequest | None = None
        self.replies: list[SocksReply] = []
        self._replies_due = 0
        self.inner: Conversation | None = None
        self.inner_name = ""
        self.choose: Chooser = choose or default_choice
        self.max_request = max_request
        self.tunnel_problems: dict[Role, str] = {}
        self._from_tunnel: Message | None = None  # tracked by the tunnel's own conversation already
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return RequestDecoder() if sender is Role.CLIENT else ReplyDecoder()

    def track(self, sender: Role, msg: Message) -> None:
        if isinstance(msg, SocksRequest) and sender is Role.CLIENT and self.phase is Phase.REQUEST:
            self.request = msg
            self.phase = Phase.REPLY
            self._replies_due = 2 if msg.command == SocksCommand.BIND else 1
        elif isinstance(msg, SocksReply) and sender is Role.SERVER and self.phase is Phase.REQUEST:
            self.replies.append(msg)  # an answer to no request: a refusal ends the conversation
            if not msg.granted:
                self.phase = Phase.REFUSED
        elif isinstance(msg, SocksReply) and sender is Role.SERVER and self.phase is Phase.REPLY:
            self.replies.append(msg)
            if not msg.granted:
                self.phase = Phase.REFUSED
                return
            self._replies_due -= 1
            if self._replies_due <= 0:
                self.phase = Phase.RELAY
                self._open_tunnel()
        elif self.phase is Phase.RELAY and self.inner is not None and msg is not self._from_tunnel:
            self.inner.track(sender, msg)  # sent whole by this side, never decoded

    def _open_tunnel(self) -> None:
        assert self.request is not None
        try:
            name = self.choose(self.request)
        except Exception as exc:
            logger.warning("socks: choosing the tunnel's protocol failed: %s", exc)
            name = None
        if name:
            self.inner = _inner_conversation(name, self.transport)
            self.inner_name = name if self.inner is not None else ""

    @property
    def granted(self) -> bool:
        return self.phase is Phase.RELAY
