"""DNS messages on the wire (RFC 1035 §4; TCP framing, RFC 7766), sans-IO.

A :class:`DnsMessage` keeps its exact bytes and decodes them with
dnspython only when someone looks (a summary, the field tree, a client's
``rcode``): a server at capture off never pays for a decode it does not
need.  Both sides frame alike: one message per datagram over UDP, a
2-byte length before each message over TCP.  Any datagram decodes (a
malformed one says what is wrong when looked at); over TCP only a stream
that ends inside a frame is a protocol error.

Tests: tests/protocols/test_dns.py
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from lab.errors import LocalProtocolError
from lab.protocols._base import Message, Pattern, Role, Transport
from lab.protocols._conversation import Conversation, Decoder
from lab.protocols._framing import DatagramDecoder, LengthPrefixDecoder

__all__ = [
    "RCODES",
    "DnsConversation",
    "DnsMessage",
    "DnsStreamDecoder",
    "DnsUdpDecoder",
    "Record",
    "header_reply",
]

RCODES = frozenset({"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
                    "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "BADVERS"})
_SECTIONS = ("answer", "authority", "additional")
_SUMMARY_RECORDS = 4


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record, as text: ``www.lab.test 300 IN A 127.0.0.2``."""

    name: str
    ttl: int
    rdclass: str
    type: str
    data: str

    def __str__(self) -> str:
        return f"{self.name} {self.ttl} {self.rdclass} {self.type} {self.data}"

    def tree(self) -> dict[str, Any]:
        return {"name": self.name, "ttl": self.ttl, "class": self.rdclass, "type": self.type, "data": self.data}


def _name(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True) or "."


def _records(rrsets: list[dns.rrset.RRset]) -> tuple[Record, ...]:
    out: list[Record] = []
    for rrset in rrsets:
        rdclass = dns.rdataclass.to_text(rrset.rdclass)
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        for rdata in rrset:
            out.append(Record(_name(rrset.name), rrset.ttl, rdclass, rdtype, rdata.to_text()))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _View:
    """What the bytes say, decoded once when first asked."""

    id: int
    response: bool
    opcode: str
    flags: tuple[str, ...]
    rcode: str
    question: tuple[tuple[str, str, str], ...] = ()
    answer: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    edns: dict[str, Any] | None = None
    problem: str = ""  # why the bytes are not a DNS message


def _header_view(wire: bytes, problem: str) -> _View:
    if len(wire) < 12:
        return _View(id=0, response=False, opcode="?", flags=(), rcode="?",
                     problem=f"{len(wire)} bytes, shorter than a 12-byte header")
    qid, flags = struct.unpack_from("!HH", wire)
    return _View(id=qid, response=bool(flags & 0x8000), opcode=dns.opcode.to_text((flags >> 11) & 0xF),
                 flags=_flag_names(flags), rcode=dns.rcode.to_text(flags & 0xF), problem=problem)


def _flag_names(flags: int) -> tuple[str, ...]:
    return tuple(dns.flags.to_text(flags & ~0x8000).lower().split())


def _decode(wire: bytes) -> _View:
    try:
        msg = dns.message.from_wire(wire, ignore_trailing=False, one_rr_per_rrset=True)
    except Exception as exc:  # dnspython raises many kinds for bad bytes: any is "malformed"
        return _header_view(wire, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    edns: dict[str, Any] | None = None
    if msg.edns >= 0:
        edns = {"version": msg.edns, "udp_size": msg.payload, "do": bool(msg.ednsflags & dns.flags.DO),
                "options": [_option_text(o) for o in msg.options]}
    return _View(
        id=msg.id, response=bool(msg.flags & dns.flags.QR), opcode=dns.opcode.to_text(msg.opcode()),
        flags=_flag_names(msg.flags), rcode=dns.rcode.to_text(msg.rcode()),
        question=tuple((_name(q.name), dns.rdatatype.to_text(q.rdtype), dns.rdataclass.to_text(q.rdclass))
                       for q in msg.question),
        answer=_records(msg.answer), authority=_records(msg.authority), additional=_records(msg.additional),
        edns=edns)


def _option_text(option: dns.edns.Option) -> str:
    kind = dns.edns.OptionType.to_text(option.otype)
    try:
        return f"{kind} {option.to_text()}"
    except Exception:
        return kind


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsMessage(Message):
    """One DNS message, a query or a response.  ``raw`` is what crossed the
    wire (over TCP with its 2-byte length first, ``framed``); ``wire`` the
    message itself.  Everything else is decoded on first use: ``id``,
    ``rcode``, ``flags``, ``question``, ``answer``, ``authority``,
    ``additional``, ``edns``, and ``problem`` for bytes that are not a
    DNS message."""

    framed: bool = False
    _view: _View | None = field(default=None, repr=False, compare=False)
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"id", "edns.options"})
    # an intercept may change these and have the message made anew
    EDITABLE: ClassVar[tuple[str, ...]] = ("id", "rcode", "flags", "answer")

    @classmethod
    def of(cls, wire: bytes, *, tcp: bool = False) -> DnsMessage:
        """The message for ``wire``, framed for TCP if ``tcp``."""
        raw = len(wire).to_bytes(2, "big") + wire if tcp else wire
        return cls(raw=raw, framed=tcp)

    @classmethod
    def from_dnspython(cls, msg: dns.message.Message, *, tcp: bool = False,
                       max_size: int = 65535) -> DnsMessage:
        return cls.of(msg.to_wire(max_size=max_size, prefer_truncation=True), tcp=tcp)

    def edited(self, **fields: Any) -> DnsMessage:
        """This message with ``id``, ``rcode`` (a name: ``NXDOMAIN``),
        ``flags`` (names: ``["aa", "rd"]``) or ``answer`` (records as
        ``"NAME TTL TYPE DATA"`` lines) changed; :class:`LocalProtocolError`
        for a message dnspython cannot read or a value it cannot take."""
        self._editable(fields)
        try:
            msg = dns.message.from_wire(self.wire)
            if "id" in fields:
                msg.id = int(fields["id"]) & 0xFFFF
            if "flags" in fields:
                names = fields["flags"]
                words = names.split() if isinstance(names, str) else [str(n) for n in names]
                kept = msg.flags & (dns.flags.QR | 0x780F)  # QR, the opcode and the rcode stay
                msg.flags = kept | dns.flags.from_text(" ".join(words)) if words else kept
            if "rcode" in fields:
                msg.set_rcode(dns.rcode.from_text(str(fields["rcode"])))
            if "answer" in fields:
                lines = fields["answer"]
                texts = lines.splitlines() if isinstance(lines, str) else [str(x) for x in lines]
                msg.answer = [_rrset(t) for t in texts if t.strip()]
            wire = msg.to_wire(max_size=65535)
        except (dns.exception.DNSException, ValueError, TypeError, IndexError) as exc:
            raise LocalProtocolError(f"cannot edit this DNS message: {exc}",
                                     hint="edit its raw bytes instead") from None
        return DnsMessage.of(wire, tcp=self.framed)

    @property
    def wire(self) -> bytes:
        return self.raw[2:] if self.framed else self.raw

    @property
    def view(self) -> _View:
        view = self._view
        if view is None:
            view = _decode(self.wire)
            object.__setattr__(self, "_view", view)
        return view

    # -- quick facts, from the header alone -------------------------------------

    @property
    def response(self) -> bool:
        raw = self.raw
        at = 4 if self.framed else 2
        return len(raw) > at and bool(raw[at] & 0x80)

    @property
    def kind(self) -> str:
        wire = self.wire
        if len(wire) < 12:
            return "malformed"
        return "answer" if wire[2] & 0x80 else "query"

    # -- decoded ------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.view.id

    @property
    def rcode(self) -> str:
        return self.view.rcode

    @property
    def flags(self) -> tuple[str, ...]:
        return self.view.flags

    @property
    def truncated(self) -> bool:
        return "tc" in self.view.flags

    @property
    def question(self) -> tuple[tuple[str, str, str], ...]:
        return self.view.question

    @property
    def answer(self) -> tuple[Record, ...]:
        return self.view.answer

    @property
    def authority(self) -> tuple[Record, ...]:
        return self.view.authority

    @property
    def additional(self) -> tuple[Record, ...]:
        return self.view.additional

    @property
    def edns(self) -> dict[str, Any] | None:
        return self.view.edns

    @property
    def problem(self) -> str:
        return self.view.problem

    def values(self, rdtype: str | None = None) -> list[str]:
        """The answer's data, of one type if given: ``["127.0.0.2"]``."""
        want = rdtype.upper() if rdtype else None
        return [r.data for r in self.answer if want is None or r.type == want]

    def summary(self) -> str:
        # a lab's log summarises the same few questions and answers over and
        # over: each is worked out once (the ID is not part of it)
        wire = self.wire
        key = wire[2:] if 12 <= len(wire) <= _SUMMARY_KEPT_SIZE else None
        if key is not None:
            kept = _SUMMARIES.get(key)
            if kept is not None:
                return kept
        text = _quick_query_summary(wire) or self._summary()
        if key is not None:
            if len(_SUMMARIES) >= _SUMMARIES_KEPT:
                _SUMMARIES.clear()
            _SUMMARIES[key] = text
        return text

    def _summary(self) -> str:
        v = self.view
        question = " ".join(f"{t} {n}" if c == "IN" else f"{t} {c} {n}" for n, t, c in v.question) or "(no question)"
        asked = " ".join(f"{n} {t}" if c == "IN" else f"{n} {c} {t}" for n, t, c in v.question) or "(no question)"
        if v.problem:
            what = "answer" if v.response else "query"
            return f"malformed {what}: {v.problem} ({len(self.wire)} bytes)"
        if not v.response:
            op = "" if v.opcode == "QUERY" else f"{v.opcode} "
            return f"{op}query {question}"
        text = f"answer {v.rcode}"
        if v.answer:
            shown = [f"{r.name} {r.type} {_short(r.data)}" for r in v.answer[:_SUMMARY_RECORDS]]
            more = len(v.answer) - _SUMMARY_RECORDS
            text += " " + ", ".join(shown) + (f" … (+{more})" if more > 0 else "")
        else:
            text += f" {asked}" + (" (no data)" if v.rcode == "NOERROR" else "")
        if "tc" in v.flags:
            text += " [truncated]"
        return text

    def fields(self) -> dict[str, Any]:
        v = self.view
        tree: dict[str, Any] = {
            "id": v.id, "qr": "response" if v.response else "query", "opcode": v.opcode,
            "flags": list(v.flags), "rcode": v.rcode,
            "question": [{"name": n, "type": t, "class": c} for n, t, c in v.question],
        }
        for section in _SECTIONS:
            tree[section] = [r.tree() for r in getattr(v, section)]
        if v.edns is not None:
            tree["edns"] = v.edns
        if self.framed:
            tree["tcp_length"] = len(self.raw) - 2
        if v.problem:
            tree["problem"] = v.problem
        return tree

    def matches(self, pattern: Pattern) -> bool:
        """``expect d NXDOMAIN`` compares a response's rcode (``NODATA``:
        NOERROR without answers; ``TC``: truncated); other text is looked
        for in the summary."""
        if isinstance(pattern, str):
            word = pattern.strip().upper()
            if word in RCODES or word in ("NODATA", "TC"):
                v = self.view
                if not v.response or v.problem:
                    return False
                if word == "NODATA":
                    return v.rcode == "NOERROR" and not v.answer
                if word == "TC":
                    return "tc" in v.flags
                return v.rcode == word
            return pattern in self.summary()
        return Message.matches(self, pattern)


_SUMMARIES: dict[bytes, str] = {}
_SUMMARIES_KEPT = 4096
_SUMMARY_KEPT_SIZE = 512
_PLAIN_LABEL = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")


def _quick_query_summary(wire: bytes) -> str | None:
    """``query A www.lab.test`` read by hand from a plain query (one question
    of class IN, a name of plain labels, no EDNS options), or None: then
    dnspython decodes it, as it does everything else."""
    n = len(wire)
    if n < 17 or wire[2] & 0xF8 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None
    labels = []
    i = 12
    while True:
        if i >= n:
            return None
        size = wire[i]
        if size == 0:
            break
        if size > 63 or i + 1 + size > n:
            return None
        label = wire[i + 1:i + 1 + size]
        if label.translate(None, bytes(_PLAIN_LABEL)):
            return None
        labels.append(label.decode("ascii"))
        i += size + 1
    end = i + 5
    if end > n or i - 12 + 1 > 255 or wire[i + 3:end] != b"\x00\x01":
        return None
    extra = wire[10:12]
    if extra == b"\x00\x00":
        if end != n:
            return None
    elif (extra != b"\x00\x01" or n != end + 11 or wire[end:end + 3] != b"\x00\x00\x29"
          or wire[end + 9:end + 11] != b"\x00\x00"):
        return None  # an OPT record with options (a cookie): dnspython checks them
    qtype = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(int.from_bytes(wire[i + 1:i + 3], "big")))
    return f"query {qtype} {'.'.join(labels) or '.'}"


def _rrset(text: str) -> dns.rrset.RRset:
    """``www.lab.test. 300 A 127.0.0.9`` -> an RRset (class IN)."""
    name, ttl, rdtype, data = text.split(None, 3)
    return dns.rrset.from_text(name if name.endswith(".") else name + ".", int(ttl), "IN", rdtype, data)


def _short(data: str, limit: int = 40) -> str:
    return data if len(data) <= limit else data[:limit - 1] + "…"


def header_reply(wire: bytes, rcode: int) -> bytes:
    """A bare reply to ``wire``'s header (no sections): FORMERR or NOTIMP
    for what cannot be answered in full.  ``wire`` has at least 12 bytes."""
    qid, flags = struct.unpack_from("!HH", wire)
    out = 0x8000 | (flags & 0x7800) | (flags & 0x0100) | (rcode & 0xF)  # QR, the opcode, RD
    return struct.pack("!HHHHHH", qid, out, 0, 0, 0, 0)


# -- decoders and the conversation ----------------------------------------------

_new = object.__new__
_set_raw = Message.__dict__["raw"].__set__
_set_framed = DnsMessage.__dict__["framed"].__set__
_set_view = DnsMessage.__dict__["_view"].__set__


def _message(data: bytes, framed: bool) -> DnsMessage:
    # the frozen dataclass __init__ skipped: this runs per datagram
    msg = _new(DnsMessage)
    _set_raw(msg, data if type(data) is bytes else bytes(data))
    _set_framed(msg, framed)
    _set_view(msg, None)
    return msg


class DnsUdpDecoder(DatagramDecoder):
    """Each datagram is one message, whatever its bytes: a malformed one
    is for the server to answer (FORMERR) or drop, not a reason to stop
    decoding that peer."""

    def __init__(self) -> None:
        super().__init__(DnsMessage)

    def decode(self, data: bytes) -> Message:
        return _message(data, False)


class DnsStreamDecoder(LengthPrefixDecoder):
    """DNS over TCP: each message after its 2-byte length (RFC 7766 §8)."""

    def __init__(self) -> None:
        super().__init__(header=2, limit=65535, what="DNS message")

    def decode_frame(self, raw: bytes) -> Message:
        return _message(raw, True)


class DnsConversation(Conversation):
    """Both sides of a DNS exchange: queries one way, responses the other,
    framed alike.  Nothing depends on what was said before."""

    follows_sends = False

    def decoder(self, sender: Role) -> Decoder:
        return DnsUdpDecoder() if self.transport is Transport.UDP else DnsStreamDecoder()
