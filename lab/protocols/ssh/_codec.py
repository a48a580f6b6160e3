"""What can be seen of SSH on the wire, sans-IO (RFC 4253).

Each side opens in clear: a version line (``SSH-2.0-software comments``;
a server may send other lines before it), then binary packets without
encryption: KEXINIT with the algorithms each side offers, the key
exchange, and NEWKEYS.  From its NEWKEYS on, everything a side sends is
encrypted: an :class:`SshEncrypted` message per chunk, its size the only
thing to show.  Once both KEXINITs are seen, the second one names the
algorithms RFC 4253 §7.1 picks (the first of the client's that the
server also offers).

What happens inside the encryption (authentication, channels, data) is
reported by the library that owns the socket, as :class:`SshEvent`
messages that carry no bytes of their own.

Tests: tests/protocols/test_ssh.py
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import StreamBuffer

__all__ = [
    "ALGORITHM_LISTS",
    "MAX_PACKET",
    "MAX_PRE_VERSION_LINES",
    "MAX_VERSION_LINE",
    "MESSAGE_NAMES",
    "SshConversation",
    "SshDecoder",
    "SshEncrypted",
    "SshEvent",
    "SshKexInit",
    "SshPacket",
    "SshPreVersionLine",
    "SshVersion",
    "negotiate",
]

MAX_VERSION_LINE = 255  # RFC 4253 §4.2, CR LF included
MAX_PRE_VERSION_LINES = 1024  # lines a server may send before its version
MAX_PACKET = 256 * 1024  # RFC 4253 §6.1 asks for 35000; OpenSSH takes 256 KiB

MESSAGE_NAMES = {
    1: "DISCONNECT", 2: "IGNORE", 3: "UNIMPLEMENTED", 4: "DEBUG", 5: "SERVICE_REQUEST",
    6: "SERVICE_ACCEPT", 7: "EXT_INFO", 20: "KEXINIT", 21: "NEWKEYS",
    30: "KEX_ECDH_INIT", 31: "KEX_ECDH_REPLY", 32: "KEX_DH_GEX_INIT", 33: "KEX_DH_GEX_REPLY",
    34: "KEX_DH_GEX_REQUEST",
}
# RFC 4253 §7.1: the name-lists of a KEXINIT, in order
ALGORITHM_LISTS = (
    "kex", "host_key", "cipher_c2s", "cipher_s2c", "mac_c2s", "mac_s2c",
    "compression_c2s", "compression_s2c", "languages_c2s", "languages_s2c",
)
DISCONNECT_REASONS = {
    1: "host not allowed to connect", 2: "protocol error", 3: "key exchange failed", 5: "MAC error",
    6: "compression error", 7: "service not available", 8: "protocol version not supported",
    9: "host key not verifiable", 10: "connection lost", 11: "by application",
    12: "too many connections", 13: "auth cancelled by user", 14: "no more auth methods available",
    15: "illegal user name",
}


# -- messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SshVersion(Message):
    """The identification line: ``SSH-protoversion-softwareversion SP comments``."""

    proto: str
    software: str
    comments: str = ""
    KIND: ClassVar[str] = "version"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"software", "comments"})

    @classmethod
    def parse(cls, raw: bytes) -> SshVersion:
        text = raw.rstrip(b"\r\n").decode("ascii", "replace")
        ident, _, comments = text.partition(" ")
        _, proto, software = [*ident.split("-", 2), "", ""][:3]
        return cls(raw=raw, proto=proto, software=software, comments=comments)

    def summary(self) -> str:
        return self.raw.rstrip(b"\r\n").decode("ascii", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class SshPreVersionLine(Message):
    """A line a server sends before its version (RFC 4253 §4.2 allows it)."""

    line: str
    KIND: ClassVar[str] = "pre-version"

    def summary(self) -> str:
        return f"(before the version) {self.line}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SshPacket(Message):
    """A binary packet sent before encryption: its message number and name,
    and what can be read of its payload."""

    number: int
    name: str
    payload_size: int
    detail: str = ""
    KIND: ClassVar[str] = "packet"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"payload_size", "detail"})

    @property
    def kind(self) -> str:
        return self.name

    def summary(self) -> str:
        return f"{self.name} ({self.payload_size} bytes)" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class SshKexInit(Message):
    """KEXINIT: the algorithms one side offers, and, once both sides'
    are known, what was picked (``negotiated``, a name per list)."""

    cookie: str
    algorithms: tuple[tuple[str, tuple[str, ...]], ...]
    first_kex_follows: bool = False
    negotiated: tuple[tuple[str, str], ...] = ()
    KIND: ClassVar[str] = "KEXINIT"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"cookie"})

    def offered(self, name: str) -> tuple[str, ...]:
        return dict(self.algorithms).get(name, ())

    def summary(self) -> str:
        if self.negotiated:
            picked = dict(self.negotiated)
            return ("KEXINIT; negotiated kex " + picked.get("kex", "?") + ", host key " + picked.get("host_key", "?")
                    + ", cipher " + picked.get("cipher_c2s", "?") + ", mac " + picked.get("mac_c2s", "?")
                    + ", compression " + picked.get("compression_c2s", "?"))
        return (f"KEXINIT: kex {', '.join(self.offered('kex')[:3])}…; "
                f"host key {', '.join(self.offered('host_key')[:3])}…; "
                f"cipher {', '.join(self.offered('cipher_c2s')[:2])}…")

    def fields(self) -> dict[str, Any]:
        return {"cookie": self.cookie, "first_kex_follows": self.first_kex_follows,
                "offered": {name: list(names) for name, names in self.algorithms},
                "negotiated": dict(self.negotiated)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SshEncrypted(Message):
    """Bytes sent after this side's NEWKEYS: ciphertext, shown by size."""

    size: int
    KIND: ClassVar[str] = "encrypted"
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"size"})

    def summary(self) -> str:
        return f"encrypted, {self.size} bytes"


@dataclass(frozen=True, slots=True, kw_only=True)
class SshEvent(Message):
    """What the library saw inside the encryption (an authentication
    attempt, a channel opened, a request, data on a channel, the end),
    reported by its callbacks.  It carries no bytes of its own: they
    were counted as :class:`SshEncrypted`.  Passwords never appear."""

    event: str  # auth, algorithms, channel-open, channel-request, channel-data, channel-close, disconnect, ...
    text: str
    values: tuple[tuple[str, str], ...] = ()
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"values"})

    @property
    def kind(self) -> str:
        return self.event

    @classmethod
    def of(cls, event: str, text: str, **values: object) -> SshEvent:
        return cls(raw=b"", event=event, text=text, values=tuple((k, str(v)) for k, v in values.items()))

    def value(self, name: str, default: str = "") -> str:
        return dict(self.values).get(name, default)

    def summary(self) -> str:
        return f"[{self.event}] {self.text}"

    def fields(self) -> dict[str, Any]:
        return {"event": self.event, "text": self.text, **dict(self.values)}

    def matches(self, pattern: Any) -> bool:
        if isinstance(pattern, str):
            return pattern == self.event or pattern in self.text
        return Message.matches(self, pattern)


# -- reading packets --------------------------------------------------------------


class _Reader:
    """RFC 4251 §5 data types off a payload; :class:`ValueError` when short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("payload ends early")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack("!I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def name_list(self) -> tuple[str, ...]:
        text = self.string().decode("ascii", "replace")
        return tuple(text.split(",")) if text else ()


def _kexinit(raw: bytes, payload: bytes) -> SshKexInit | None:
    try:
        r = _Reader(payload[1:])
        cookie = r.take(16).hex()
        lists = tuple((name, r.name_list()) for name in ALGORITHM_LISTS)
        follows = bool(r.take(1)[0])
        r.uint32()  # reserved
    except ValueError:
        return None
    return SshKexInit(raw=raw, cookie=cookie, algorithms=lists, first_kex_follows=follows)


def _detail(number: int, payload: bytes) -> str:
    r = _Reader(payload[1:])
    try:
        if number == 1:
            code = r.uint32()
            text = r.string().decode("utf-8", "replace")[:200]
            return f"{code} ({DISCONNECT_REASONS.get(code, 'unknown reason')}) {text}".strip()
        if number in (5, 6):
            return r.string().decode("ascii", "replace")[:100]
        if number == 30:
            return f"client's ephemeral key, {len(r.string())} bytes"
        if number == 31:
            host_key = r.string()
            key_type = _Reader(host_key).string().decode("ascii", "replace")[:60]
            return f"host key {key_type}, server's ephemeral key {len(r.string())} bytes, and a signature"
        if number == 4:
            r.take(1)
            return r.string().decode("utf-8", "replace")[:200]
    except ValueError:
        return "malformed payload"
    return ""


def negotiate(client: SshKexInit, server: SshKexInit) -> tuple[tuple[str, str], ...]:
    """RFC 4253 §7.1: for each list, the first of the client's names the
    server offers too (``none`` found nowhere: the key exchange fails)."""
    picked = []
    for name in ALGORITHM_LISTS[:8]:
        theirs = set(server.offered(name))
        found = next((alg for alg in client.offered(name) if alg in theirs), "(none in common)")
        picked.append((name, found))
    chosen = dict(picked)
    for direction in ("c2s", "s2c"):  # an AEAD cipher brings its own integrity: the MAC list is not used
        cipher = chosen[f"cipher_{direction}"]
        if cipher.startswith("chacha20-poly1305") or "-gcm" in cipher:
            chosen[f"mac_{direction}"] = f"(implicit in {cipher})"
    return tuple(chosen.items())


class SshDecoder(StreamBuffer):
    """What one side sends: lines up to its version, clear packets up to
    its NEWKEYS, then encrypted chunks."""

    def __init__(self, sender: Role) -> None:
        super().__init__()
        self.sender = sender
        self.stage = "version"  # version, packets, encrypted
        self.lines = 0

    def next_message(self) -> Message | None:
        self._check()
        if self.stage == "version":
            return self._version()
        if self.stage == "packets":
            return self._packet()
        if self._buf:
            raw = self.take()
            return SshEncrypted(raw=raw, size=len(raw))
        return None

    def _version(self) -> Message | None:
        raw = self.next_line(MAX_VERSION_LINE - 2, "version line")
        if raw is None:
            if self.ended and self._buf:
                self._fail("the stream ended inside the version line")
            return None
        if raw.startswith(b"SSH-"):
            self.stage = "packets"
            return SshVersion.parse(raw)
        if self.sender is Role.CLIENT:
            self._fail(f"a client must open with its version (SSH-2.0-...), not {raw[:40]!r}",
                       hint="is this an SSH client?")
        self.lines += 1
        if self.lines > MAX_PRE_VERSION_LINES:
            self._fail(f"more than {MAX_PRE_VERSION_LINES} lines before the version")
        return SshPreVersionLine(raw=raw, line=raw.rstrip(b"\r\n").decode("utf-8", "replace"))

    def _packet(self) -> Message | None:
        raw = self.next_frame(header=4, length_format="!I", limit=MAX_PACKET, what="packet")
        if raw is None:
            if self.ended and self._buf:
                self._fail("the stream ended inside a packet")
            return None
        length = len(raw) - 4
        padding = raw[4] if length else 0
        if length < 2 or padding < 4 or padding + 1 >= length:
            self._fail(f"a packet of {length} bytes with {padding} bytes of padding is malformed",
                       hint="RFC 4253 §6: at least 4 bytes of padding and a payload")
        payload = raw[5 : 5 + length - padding - 1]
        number = payload[0]
        if number == 20:
            kex = _kexinit(raw, payload)
            if kex is not None:
                conv = self.conversation
                if isinstance(conv, SshConversation):
                    other = conv.kexinit.get(self.sender.peer)
                    if other is not None:
                        client, server = (kex, other) if self.sender is Role.CLIENT else (other, kex)
                        kex = SshKexInit(raw=raw, cookie=kex.cookie, algorithms=kex.algorithms,
                                         first_kex_follows=kex.first_kex_follows,
                                         negotiated=negotiate(client, server))
                return kex
        if number == 21:
            self.stage = "encrypted"
        name = MESSAGE_NAMES.get(number, f"message {number}")
        return SshPacket(raw=raw, number=number, name=name, payload_size=len(payload),
                         detail=_detail(number, payload))


class SshConversation(Conversation):
    """Both sides of an SSH connection as far as they can be read: the
    version lines, the clear packets of the key exchange, then sizes.
    ``kexinit`` keeps each side's KEXINIT, so the second one names what
    was negotiated."""

    def __init__(self, role: Role | None = None, transport: Transport = Transport.TCP) -> None:
        self.kexinit: dict[Role, SshKexInit] = {}
        super().__init__(role, transport)

    def decoder(self, sender: Role) -> Decoder:
        return SshDecoder(sender)

    def track(self, sender: Role, msg: Message) -> None:
        if isinstance(msg, SshKexInit) and sender not in self.kexinit:
            self.kexinit[sender] = msg

