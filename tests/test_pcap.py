"""pcapng export: streams rebuilt from chunks and messages without doubling,
TCP framing with consistent numbers and checksums (read back here by a
small independent reader), one copy of each connection, proxies' two
sockets, and Wireshark's own dissectors on the result (interop, tshark)."""

from __future__ import annotations

import smtplib
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import require, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import Lab
from lab.commands import Interpreter
from lab.eventlog import Direction, Event, EventKind
from lab.pcap import MAX_SEGMENT, StreamRebuilder, write_pcapng
from lab.protocols._framing import Line

# -- an independent reader ---------------------------------------------------


def internet_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def read_pcapng(path: Path) -> list[dict[str, Any]]:
    """Every packet: addresses, ports, TCP numbers and flags, payload,
    comment; every checksum verified on the way."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 8)[0] == 0x1A2B3C4D
    packets = []
    at = 0
    while at < len(data):
        kind, size = struct.unpack_from("<II", data, at)
        assert size % 4 == 0 and struct.unpack_from("<I", data, at + size - 4)[0] == size
        if kind == 1:
            assert struct.unpack_from("<H", data, at + 8)[0] == 1  # Ethernet
        if kind == 6:
            _, high, low, caplen, length = struct.unpack_from("<IIIII", data, at + 8)
            assert caplen == length
            frame = data[at + 28 : at + 28 + caplen]
            opts = at + 28 + caplen + (-caplen % 4)
            comment = ""
            while opts < at + size - 4:
                code, olen = struct.unpack_from("<HH", data, opts)
                if code == 1:
                    comment = data[opts + 4 : opts + 4 + olen].decode()
                opts += 4 + olen + (-olen % 4)
            packets.append({"micros": (high << 32) | low, "comment": comment, **parse_frame(frame)})
        at += size
    return packets


def parse_frame(frame: bytes) -> dict[str, Any]:
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if ethertype == 0x0800:
        assert internet_sum(ip[:20]) == 0xFFFF, "bad IPv4 header checksum"
        assert struct.unpack_from("!H", ip, 2)[0] == len(ip)
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        segment = ip[20:]
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(segment))
    else:
        assert ethertype == 0x86DD
        assert struct.unpack_from("!H", ip, 4)[0] == len(ip) - 40
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        segment = ip[40:]
        pseudo = src + dst + struct.pack("!I3xB", len(segment), proto)
    assert internet_sum(pseudo + segment) == 0xFFFF, "bad TCP/UDP checksum"
    out: dict[str, Any] = {"src": src, "dst": dst, "sport": struct.unpack_from("!H", segment)[0],
                           "dport": struct.unpack_from("!H", segment, 2)[0], "v6": ethertype == 0x86DD}
    if proto == 6:
        seq, ack, off, flags = struct.unpack_from("!IIBB", segment, 4)
        out.update(udp=False, seq=seq, ack=ack, flags=flags, payload=segment[(off >> 4) * 4 :])
    else:
        assert proto == 17
        out.update(udp=True, seq=0, ack=0, flags=0, payload=segment[8:])
    return out


def conversations(packets: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per connection (keyed by the opener's end first): each direction's
    bytes, checking that every TCP segment starts where the last ended."""
    convs: dict[tuple[Any, ...], dict[str, Any]] = {}
    next_seq: dict[tuple[Any, ...], int] = {}
    for p in packets:
        a, b = (p["src"], p["sport"]), (p["dst"], p["dport"])
        key = (a, b) if (a, b) in convs or (b, a) not in convs else (b, a)
        conv = convs.setdefault(key, {"up": b"", "down": b"", "flags": []})
        way = "up" if (a, b) == key else "down"
        conv[way] += p["payload"]
        conv["flags"].append(p["flags"])
        if not p["udp"]:
            if p["flags"] & 0x02:
                next_seq[(a, b)] = p["seq"]
            assert p["seq"] == next_seq[(a, b)], "a gap or overlap in the sequence numbers"
            next_seq[(a, b)] = (p["seq"] + len(p["payload"]) + (1 if p["flags"] & 0x03 else 0)) % 2**32
            if p["flags"] & 0x10:
                assert p["ack"] == next_seq.get((b, a), p["ack"]), "an ack of bytes never sent"
    return convs


# -- the stream rebuild ------------------------------------------------------


def record(messages: list[bytes], cuts: list[int]) -> list[tuple[EventKind, bytes]]:
    """The events a connection records when the stream of ``messages``
    arrives in chunks ending at ``cuts``: a chunk that is exactly one
    message as that message; otherwise the chunk, then each message it
    completes (see Connection._record)."""
    stream = b"".join(messages)
    ends, at = [], 0
    for m in messages:
        at += len(m)
        ends.append(at)
    events: list[tuple[EventKind, bytes]] = []
    start, done = 0, 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if cut <= start:
            continue
        chunk = stream[start:cut]
        complete = []
        while done < len(messages) and ends[done] <= cut:
            complete.append(messages[done])
            done += 1
        if not (len(complete) == 1 and complete[0] == chunk):
            events.append((EventKind.DATA, chunk))
        events += [(EventKind.MESSAGE, m) for m in complete]
        start = cut
    return events


@settings(max_examples=300)
@given(messages=st.lists(st.binary(min_size=1, max_size=12), max_size=12),
       cuts=st.lists(st.integers(0, 150), max_size=20))
def test_any_chunking_of_a_message_stream_rebuilds_the_exact_bytes(messages: list[bytes], cuts: list[int]) -> None:
    """Chunks and the messages decoded from them give the stream once,
    whatever the chunk boundaries (mid-message, several per chunk)."""
    rebuilder = StreamRebuilder()
    out = b"".join(rebuilder.add(kind, raw)[0] for kind, raw in record(messages, cuts))
    assert out == b"".join(messages)


def test_a_message_after_bytes_no_message_took_is_new_bytes() -> None:
    """Bytes a decoder dropped stay in the stream once; the next whole
    message is not searched for in them."""
    rebuilder = StreamRebuilder()
    assert rebuilder.add(EventKind.DATA, b"junk") == (b"junk", 4)
    assert rebuilder.add(EventKind.MESSAGE, b"HELO x\r\n") == (b"HELO x\r\n", 12)
    assert rebuilder.add(EventKind.DATA, b"QU") == (b"QU", 14)
    assert rebuilder.add(EventKind.DATA, b"IT\r\n") == (b"IT\r\n", 18)
    assert rebuilder.add(EventKind.MESSAGE, b"QUIT\r\n") == (b"", 18)


# -- a real lab --------------------------------------------------------------


def test_split_chunks_both_ends_in_the_lab_and_a_proxy(lab: Lab, tmp_path: Path) -> None:
    """A client whose command arrives in two chunks, talking to a lab
    server, is one connection with each byte once; a proxy is two, each
    the same bytes; every segment follows the last and every checksum holds."""
    interp = Interpreter(lab)
    interp.execute("serve smtp as mx; connect mx as c; expect c 220; send c -n HEL; send c 'O x'; expect c 250;"
                   " send c QUIT; expect c 221")
    interp.execute("serve echo as e; proxy echo --to e as px")
    port = lab["px"].port
    interp.execute(f"connect echo 127.0.0.1:{port} as p; send p ping; expect p ping; stop p")
    wait_until(lambda: sum(e.kind is EventKind.CLOSE for e in lab.log) >= 5, what="every close")
    (res,) = interp.execute(f"log export --pcap {tmp_path / 'x.pcapng'}")
    assert res.value.connections == 3 and res.value.skipped == 0
    assert str(res.value) == (f"wrote {res.value.packets} packets, 3 connections, {res.value.bytes:,} bytes"
                              f" to {tmp_path / 'x.pcapng'}")
    packets = read_pcapng(tmp_path / "x.pcapng")
    assert len(packets) == res.value.packets
    convs = conversations(packets)
    smtp = [c for key, c in convs.items() if key[1][1] == 25]
    assert len(smtp) == 1
    assert smtp[0]["up"] == b"HELO x\r\nQUIT\r\n"
    assert smtp[0]["down"].startswith(b"220 ") and smtp[0]["down"].count(b"\r\n") == 3
    assert smtp[0]["flags"][:3] == [0x02, 0x12, 0x10] and 0x11 in smtp[0]["flags"]
    echo = [c for key, c in convs.items() if key[1][1] == 7]
    assert [(c["up"], c["down"]) for c in echo] == [(b"ping\r\n", b"ping\r\n")] * 2
    comments = "\n".join(p["comment"] for p in packets)
    assert 'c -> raw "HEL"' in comments or 'mx#1 <- raw "HEL"' in comments
    assert "HELO x" in comments and "server port written as 25" in comments


def test_real_ports_are_kept_on_request(lab: Lab, tmp_path: Path) -> None:
    """--real-ports writes the server's own port instead of the protocol's."""
    interp = Interpreter(lab)
    interp.execute("serve echo as e; connect e as c; send c hi; expect c hi")
    path = tmp_path / "r.pcapng"
    interp.execute(f"log export --pcap {path} --real-ports")
    assert {p["dport"] for p in read_pcapng(path) if p["flags"] == 0x02} == {lab["e"].port}


# -- events made by hand ------------------------------------------------------


def ev(seq: int, kind: EventKind, conn: str = "s#1", direction: Direction = Direction.NONE,
       text: str | None = None, raw: bytes | None = None, endpoint: str = "s", proto: str = "echo") -> Event:
    message = Line(raw=raw) if kind is EventKind.MESSAGE and raw is not None else None
    return Event(seq, float(seq), 1_700_000_000.0 + seq / 1000, endpoint, conn, kind, direction, proto, text,
                 raw, message)


def test_a_connection_opened_before_the_log_began_still_exports(tmp_path: Path) -> None:
    """No open event (rotated out): a handshake before its first bytes, made-up addresses."""
    path = tmp_path / "o.pcapng"
    summary = write_pcapng([ev(10, EventKind.MESSAGE, direction=Direction.IN, raw=b"hi\r\n"),
                            ev(11, EventKind.MESSAGE, direction=Direction.OUT, raw=b"hi\r\n"),
                            ev(12, EventKind.CLOSE, text="closed")], path)
    packets = read_pcapng(path)
    assert [p["flags"] for p in packets] == [0x02, 0x12, 0x10, 0x18, 0x18, 0x11, 0x11, 0x10]
    assert packets[0]["dport"] == 7 and "opened before the log begins" in packets[0]["comment"]
    assert summary.connections == 1 and summary.bytes == 8


def test_events_without_bytes_are_counted_not_written(tmp_path: Path) -> None:
    """Summary-capture events cannot be packets: the result says how many."""
    summary = write_pcapng([ev(1, EventKind.OPEN, text="127.0.0.1:5000 -> 127.0.0.1:7000"),
                            ev(2, EventKind.MESSAGE, direction=Direction.IN, text="hi"),
                            ev(3, EventKind.MESSAGE, direction=Direction.OUT, raw=b"x")], tmp_path / "s.pcapng")
    assert summary.skipped == 1 and summary.bytes == 1
    assert "1 events without bytes" in str(summary)


def test_big_chunks_split_ipv6_and_udp(tmp_path: Path) -> None:
    """A 200 KB chunk goes as segments of at most 65,000 bytes; [::1]
    addresses make IPv6; a UDP server's datagrams are UDP."""
    big = bytes(range(256)) * 800
    path = tmp_path / "b.pcapng"
    write_pcapng([
        ev(1, EventKind.LISTEN, conn="", text="echo listening on udp://127.0.0.1:9999", endpoint="u"),
        ev(2, EventKind.OPEN, text="[::1]:5000 -> [::1]:7000"),
        ev(3, EventKind.DATA, direction=Direction.IN, raw=big),
        ev(4, EventKind.OPEN, conn="u#1", text="udp 127.0.0.1:6000", endpoint="u"),
        ev(5, EventKind.MESSAGE, conn="u#1", direction=Direction.IN, raw=b"dgram", endpoint="u"),
    ], path)
    packets = read_pcapng(path)
    tcp = [p for p in packets if not p["udp"]]
    assert all(p["v6"] for p in tcp) and max(len(p["payload"]) for p in tcp) == MAX_SEGMENT
    assert b"".join(p["payload"] for p in tcp) == big
    (udp,) = [p for p in packets if p["udp"]]
    assert (udp["sport"], udp["dport"], udp["payload"]) == (6000, 7, b"dgram")


# -- Wireshark's dissectors (interop) ----------------------------------------


def tshark(*args: str) -> str:
    out = subprocess.run([require("tshark"), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.interop
def test_interop_tshark_decodes_smtp_and_echo_with_no_complaints(lab: Lab, tmp_path: Path) -> None:
    """tshark reads the export of a real smtplib session and echo over TCP
    and UDP: SMTP commands decoded, no malformed packets, bad checksums or
    TCP analysis warnings, and the netlab summaries as packet comments."""
    interp = Interpreter(lab)
    server = lab.serve("smtp", name="mx")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=20) as smtp:
        smtp.sendmail("a@x.test", ["b@lab.test"], "Subject: hi\r\n\r\nhello\r\n")
    interp.execute("serve echo as e; connect e as c; send c hi; expect c hi; serve echo --udp as u;"
                   " connect u as d; send d hi; expect d hi")
    wait_until(lambda: any(e.conn == "mx#1" and e.kind is EventKind.CLOSE for e in lab.log), what="the close")
    path = tmp_path / "lab.pcapng"
    interp.execute(f"log export --pcap {path}")
    name = str(path)
    commands = tshark("-r", name, "-Y", "smtp.req", "-T", "fields", "-e", "smtp.req.command").split()
    assert [c.upper() for c in commands] == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert "ECHO" in tshark("-r", name, "-Y", "echo")
    checks = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    bad = tshark("-r", name, *checks, "-Y", "_ws.malformed or _ws.expert.severity >= warning or tcp.analysis.flags"
                 " or ip.checksum.status == 0 or tcp.checksum.status == 0 or udp.checksum.status == 0")
    assert bad == ""
    comments = tshark("-r", name, "-Y", "frame.comment", "-T", "fields", "-e", "frame.comment")
    assert "mx#1 <- EHLO [127.0.0.1]" in comments and "mx#1 -> 221 " in comments
    conversations_text = tshark("-r", name, "-q", "-z", "conv,tcp")
    assert conversations_text.count("<->") == 2  # smtp once, echo once (both ends in the lab)
