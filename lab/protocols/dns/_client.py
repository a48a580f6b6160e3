"""The DNS client: ``query(name, type)`` and ``axfr(zone)``.

Over a UDP client a truncated answer (TC) is asked again over TCP, on a
connection of the client's own that the log shows under it
(``c#1.tcp1``); so is every ``tcp=True`` query and every zone transfer.
Over a TCP client everything goes on the one connection.

Tests: tests/protocols/test_dns.py, tests/interop/test_dns_peers.py
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype

from lab.errors import LabError, LabTimeout, RemoteProtocolError
from lab.protocols._base import Transport
from lab.protocols._session import Channel, ClientVerbs
from lab.protocols.dns._codec import DnsConversation, DnsMessage, Record

__all__ = ["DnsClient", "DnsError"]

MAX_TRANSFER = 64 * 1024 * 1024


class DnsError(LabError):
    """A DNS exchange failed: no answer, or an answer that does not fit the question."""


def make_query(name: str, rdtype: str = "A", *, edns: int | None = 1232, dnssec: bool = False,
               rd: bool = True) -> dns.message.Message:
    """A query as dnspython builds it (a random ID; EDNS unless ``edns`` is None)."""
    try:
        kind = dns.rdatatype.from_text(rdtype)
        qname = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise DnsError(f"cannot ask for {rdtype} {name}: {exc}") from None
    query = dns.message.make_query(qname, kind, use_edns=0 if edns is not None else False,
                                   payload=edns or 1232, want_dnssec=dnssec)
    query.id = random.randrange(65536)
    if not rd:
        query.flags &= ~dns.flags.RD
    return query


class DnsClient(ClientVerbs[Any]):
    """Verbs for asking a DNS server."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._tcp_ids = itertools.count(1)  # this client's own TCP connections, in the log as c.tcp1, c.tcp2

    async def query(self, name: str, type: str = "A", tcp: bool = False, *, edns: int | None = 1232,
                    dnssec: bool = False, rd: bool = True, timeout: float = 5.0) -> DnsMessage:
        """Ask for ``type`` records of ``name``; the decoded answer
        (``.rcode``, ``.flags``, ``.answer``, ``.values()``...).  Over UDP a
        truncated answer is asked again over TCP.  ``edns=None`` sends a
        plain RFC 1035 query (answers then fit 512 bytes)."""
        query = make_query(name, type, edns=edns, dnssec=dnssec, rd=rd)
        wire = query.to_wire()
        if self.channel.transport is Transport.TCP:
            return await self._ask_channel(query.id, wire, True, timeout)
        if not tcp:
            answer = await self._ask_channel(query.id, wire, False, timeout)
            if not answer.truncated:
                return answer
        replies = await self._over_tcp(wire, timeout, until=lambda replies: True)
        return replies[0]

    async def axfr(self, zone: str, timeout: float = 10.0) -> list[Record]:
        """Transfer ``zone`` (AXFR, over TCP): every record, the SOA first
        and last; :class:`DnsError` if the server refuses."""
        query = make_query(zone, "AXFR", edns=None, rd=False)
        wire = query.to_wire()

        def done(replies: list[DnsMessage]) -> bool:
            last = replies[-1]
            if last.rcode != "NOERROR":
                return True
            soas = [r for m in replies for r in m.answer if r.type == "SOA"]
            return len(soas) >= 2

        if self.channel.transport is Transport.TCP:
            replies = [await self._ask_channel(query.id, wire, True, timeout)]
            while not done(replies):
                replies.append(await self._receive(query.id, timeout))
        else:
            replies = await self._over_tcp(wire, timeout, until=done)
        if replies[-1].rcode != "NOERROR":
            raise DnsError(f"zone transfer of {zone} refused: {replies[-1].rcode}")
        return [r for m in replies for r in m.answer]

    # -- over the client's own connection -----------------------------------------

    async def _ask_channel(self, qid: int, wire: bytes, tcp: bool, timeout: float) -> DnsMessage:
        await self.channel.send_raw(len(wire).to_bytes(2, "big") + wire if tcp else wire)
        return await self._receive(qid, timeout)

    async def _receive(self, qid: int, timeout: float) -> DnsMessage:
        """The next response with our ID (others are late answers to earlier
        questions, skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise LabTimeout(f"dns: no answer within {timeout} s")
            msg = await self.channel.receive(left)
            if isinstance(msg, DnsMessage) and msg.response and len(msg.wire) >= 12 and msg.id == qid:
                return msg

    # -- over a TCP connection of our own (TC fallback, AXFR from a UDP client) ---

    async def _over_tcp(self, wire: bytes, timeout: float, until: Any) -> list[DnsMessage]:
        peer = getattr(self.channel, "peer", ())
        if not isinstance(peer, tuple) or len(peer) < 2:
            raise DnsError("dns: not connected, so no TCP fallback")
        host, port = peer[0], peer[1]
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise DnsError(f"dns: cannot reach {host}:{port} over TCP: {exc}") from None
        local = writer.get_extra_info("sockname") or ()
        child = getattr(self.channel, "child", None)
        record = child(f"tcp{next(self._tcp_ids)}", DnsConversation(None, Transport.TCP), (host, port),
                       tuple(local), close=writer.close) if child is not None else None
        replies: list[DnsMessage] = []
        reason = "closed"
        try:
            data = len(wire).to_bytes(2, "big") + wire
            writer.write(data)
            if record is not None:
                record.sent(data)
            total = 0
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), timeout)
                body = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), timeout)
                total += len(body) + 2
                if total > MAX_TRANSFER:
                    raise RemoteProtocolError(f"dns: more than {MAX_TRANSFER} bytes over TCP")
                if record is not None:
                    record.received(head + body)
                msg = DnsMessage.of(body, tcp=True)
                if not msg.response or msg.wire[:2] != wire[:2]:
                    continue
                replies.append(msg)
                if until(replies):
                    return replies
        except asyncio.IncompleteReadError:
            reason = "closed by the server"
            raise DnsError("dns: the server closed the TCP connection before answering") from None
        except TimeoutError:
            reason = "timed out"
            raise LabTimeout(f"dns: no answer over TCP within {timeout} s") from None
        finally:
            writer.close()
            if record is not None:
                record.closed(reason)
