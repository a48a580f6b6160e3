"""DNS servers in a running lab, over real loopback sockets: UDP and TCP
on one port sharing one zone, the client's fall back to TCP, forwarding
to another lab server, and a bounded flood of queries answered without
one error."""

from __future__ import annotations

import random
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import pytest

from lab import Lab
from lab.errors import LabError
from lab.eventlog import EventKind


def test_one_server_answers_udp_and_tcp_and_a_tcp_only_one_shares_its_zone(lab: Lab) -> None:
    """`serve dns` listens on UDP and TCP on one port; another server given the
    same zones (here TCP only) serves the same zone: an edit shows in both at once."""
    srv = lab.serve("dns")
    over_udp = lab.connect("dns", srv)
    over_tcp = lab.connect("dns", f"127.0.0.1:{srv.port}", transport="tcp")
    srv.zone.add("both", "A", "127.0.0.42")  # type: ignore[attr-defined]
    assert over_udp.query("both.lab.test").values() == ["127.0.0.42"]
    assert over_tcp.query("both.lab.test").values() == ["127.0.0.42"]
    tcp_only = lab.serve("dns", transport="tcp")
    assert tcp_only.zone is srv.zone  # type: ignore[attr-defined]
    tcp_only.zone.remove("both")  # type: ignore[attr-defined]
    assert over_udp.query("both.lab.test").rcode == "NXDOMAIN"
    other = lab.serve("dns", zone=["other.test"])
    assert other.zone is not srv.zone  # type: ignore[attr-defined]


def test_a_truncated_answer_is_asked_again_over_tcp_and_logged(lab: Lab) -> None:
    """TC over UDP: the client asks over TCP on a connection shown under its own."""
    c = lab.connect("dns", lab.serve("dns"))
    answer = c.query("big.lab.test", "TXT", edns=None)
    assert not answer.truncated and len(answer.values()) == 8
    summaries = [e.summary for e in lab.log if e.kind is EventKind.MESSAGE and e.endpoint == c.name]
    assert any("[truncated]" in s for s in summaries)
    tcp_conns = {e.conn for e in lab.log if e.endpoint == c.name and e.conn.endswith(".tcp1")}
    assert tcp_conns, "the TCP retry is in the log under the client"
    records = c.axfr("lab.test")
    assert records[0].type == records[-1].type == "SOA"


def test_forwarding_to_another_lab_server(lab: Lab) -> None:
    """Names outside our zones go to the --forward server; ours we answer ourselves."""
    far = lab.serve("dns", zone=["far.test"], record=["h.far.test A 127.0.0.77"])
    near = lab.serve("dns", forward=f"127.0.0.1:{far.port}")
    c = lab.connect("dns", near)
    assert c.query("h.far.test").values() == ["127.0.0.77"]
    assert c.query("www.lab.test").values() == ["127.0.0.2"]
    assert c.query("nothing.far.test").rcode == "NXDOMAIN"
    lab.stop(far)
    assert c.query("h.far.test", timeout=10).rcode == "SERVFAIL"


def flood(port: int, count: int, *, window: int = 32, deadline: float = 60.0) -> dict[int, bytes]:
    """``count`` queries kept ``window`` deep, as fast as the answers come:
    ID -> answer; stops at ``deadline`` seconds whatever happened."""
    names = [b"www", b"WWW", b"mail", b"ns", b"Www"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(2.0)
    answers: dict[int, bytes] = {}
    sent = 0
    end = time.monotonic() + deadline
    try:
        while len(answers) < count and time.monotonic() < end:
            while sent < count and sent - len(answers) < window:
                name = names[sent % len(names)]
                wire = struct.pack("!HHHHHH", sent, 0x0100, 1, 0, 0, 0)
                wire += bytes([len(name)]) + name + b"\x03lab\x04test\x00\x00\x01\x00\x01"
                sock.send(wire)
                sent += 1
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            answers[struct.unpack_from("!H", data)[0]] = data
    finally:
        sock.close()
    return answers


@pytest.mark.parametrize(("capture", "count"), [("off", 20_000), ("full", 3_000)])
def test_a_bounded_flood_is_answered_whole_without_an_error(lab: Lab, capture: str, count: int) -> None:
    """As fast as one client can ask, window 32: every query answered once, right,
    no error event, and plain A lookups never meet the reply budget."""
    srv = lab.serve("dns", capture=capture)
    answers = flood(srv.port, count)
    assert len(answers) == count, f"{count - len(answers)} of {count} unanswered"
    expected = {b"www": "127.0.0.2", b"mail": "127.0.0.3", b"ns": "127.0.0.1"}
    for qid in random.Random(1).sample(sorted(answers), 200):
        msg = dns.message.from_wire(answers[qid])
        assert msg.id == qid and msg.rcode() == 0
        name = msg.question[0].name.labels[0]
        assert msg.answer[0][0].address == expected[name.lower()]
        assert msg.question[0].name.labels[0] == name  # the asker's spelling, kept
    assert not [e for e in lab.log if e.kind is EventKind.ERROR]
    assert srv.reply_budget is not None and srv.reply_budget.unanswered == 0
    assert srv.behaviour.cached >= count - 10


def test_a_flood_of_nxdomains_meets_the_reply_budget_and_others_are_still_answered(lab: Lab) -> None:
    """An NXDOMAIN (with its SOA) is three times its query: one source asking
    thousands of them at once is cut off at its budget; another client is answered."""
    srv = lab.serve("dns")
    budget = srv.reply_budget
    assert budget is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", srv.port))
    sock.settimeout(0.2)
    answered = 0
    try:
        for i in range(3000):  # 16 in flight at most, so the kernel drops none of them
            sock.send(struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x04nope\x03lab\x04test\x00\x00\x01\x00\x01")
            if i >= 16:
                try:
                    sock.recv(4096)
                    answered += 1
                except TimeoutError:
                    if budget.unanswered:
                        break
    finally:
        sock.close()
    assert budget.unanswered > 0 and answered < i
    assert budget.sent <= budget.limits.burst + budget.limits.rate * 60 + budget.limits.ratio * budget.received + 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:  # another source address
        other.bind(("127.0.0.2", 0))
        other.settimeout(10)
        other.sendto(struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x03www\x03lab\x04test\x00\x00\x01\x00\x01",
                     ("127.0.0.1", srv.port))
        reply = dns.message.from_wire(other.recv(4096))
    assert reply.id == 9 and reply.answer[0][0].address == "127.0.0.2"


def test_a_zone_file_outside_the_folder_is_refused_in_safe_mode(tmp_path: Path) -> None:
    """--safe: a lab file's zone_file stays inside the file's own folder."""
    from lab.scenarios._model import load_text

    text = "name: x\nlab:\n  d: {protocol: dns, options: {zone_file: /etc/passwd}}\nsteps:\n  - wait: 0\n"
    with pytest.raises(LabError, match="outside the folders safe mode allows"):
        load_text(text, str(tmp_path / "s.yaml"), safe=True)


def test_over_ipv6_loopback_both_transports_answer(lab: Lab) -> None:
    """[::1]: UDP, and the TCP retry after TC on the same port."""
    srv = lab.serve("dns", host="::1")
    c = lab.connect("dns", srv)
    assert c.query("www.lab.test", "AAAA").values() == ["::1"]
    assert len(c.query("big.lab.test", "TXT", edns=None).values()) == 8


def test_a_proxy_breakpoint_turns_an_answer_into_nxdomain(lab: Lab) -> None:
    """Hold the server's answer on a DNS proxy, edit its rcode, and the client believes it."""
    srv = lab.serve("dns")
    px = lab.proxy("dns", to=srv, transport="udp")
    lab.intercept(px, "m:answer")
    c = lab.connect("dns", px)
    with ThreadPoolExecutor(1) as pool:
        asking = pool.submit(c.query, "www.lab.test", timeout=20)  # type: ignore[attr-defined]
        (held,) = lab.wait_held(1, timeout=15)
        edited = lab.edit(held.id, rcode="NXDOMAIN")
        assert edited.summary().startswith("answer NXDOMAIN")
        answer = asking.result(30)
    assert answer.rcode == "NXDOMAIN" and answer.values() == ["127.0.0.2"]
