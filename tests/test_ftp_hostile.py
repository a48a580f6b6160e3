"""The FTP server against hostile clients on real sockets: wrong
passwords slowed by the lab's login throttle while the right one from
another address logs in at once; FTP bounce (PORT/EPRT to another host
or a privileged port) refused with an event; a data connection from
another address refused; the upload cap; PASS masked on disk; junk that
never kills the server; the idle limit; data connections as children of
their control connection in the log.

Tests lab/protocols/ftp/_server.py."""

from __future__ import annotations

import ftplib
import gc
import io
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind


def notes(lab: Lab, name: str, text: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=name, text=text))]


def delays(lab: Lab, name: str) -> list[float]:
    return [float(m.group(1)) for s in notes(lab, name, "login throttle:")
            if (m := re.search(r"waits (\d+(?:\.\d+)?) s", s))]


def test_wrong_passwords_are_slowed_and_the_right_one_from_elsewhere_is_not(lab: Lab) -> None:
    """Four connections guessing alice's password for 8 s: only a handful
    are checked, the delay grows in the log, and alice from 127.0.0.2
    logs in at once meanwhile."""
    srv = lab.serve("ftp", name="f")
    stop = time.monotonic() + 8.0
    answered = [0]
    taken: list[bool] = []
    lock = threading.Lock()

    def guess() -> None:
        while time.monotonic() < stop:
            client = ftplib.FTP()
            try:
                client.connect("127.0.0.1", srv.port, timeout=max(0.1, stop - time.monotonic()))
                while time.monotonic() < stop:
                    try:
                        client.login("alice", "guess")
                    except ftplib.error_perm as exc:
                        if "Login incorrect" in str(exc):  # checked; the rest were refused unchecked
                            with lock:
                                answered[0] += 1
                    else:
                        taken.append(True)
            except (OSError, EOFError, ftplib.Error):
                pass  # hung up on (too many mistakes), or still waiting when the window closed
            finally:
                client.close()

    threads = [threading.Thread(target=guess, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: any(d >= 2 for d in delays(lab, "f")), timeout=15, what="the delay to grow")
    # 127.0.0.1 is slowed now; another address is not (its attempt is checked at once, not queued)
    right = ftplib.FTP(source_address=("127.0.0.2", 0))
    right.connect("127.0.0.1", srv.port, timeout=10)
    assert right.login("alice", "wonderland").startswith("230")
    right.quit()
    assert time.monotonic() < stop, "the flood was over before the right password was tried"
    for thread in threads:
        thread.join(30)
    assert not taken, "a wrong password was taken"
    checked = len(notes(lab, "f", "login failed"))
    assert answered[0] <= checked <= 20
    grown = delays(lab, "f")
    assert grown == sorted(grown) and grown[0] == 1


def raw_login(port: int) -> tuple[socket.socket, io.BufferedReader]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220")
    for line, code in ((b"USER bob\r\n", b"331"), (b"PASS builder\r\n", b"230")):
        sock.sendall(line)
        assert reader.readline().startswith(code)
    return sock, reader


@pytest.mark.parametrize("command", [b"PORT 10,1,2,3,4,5", b"PORT 127,0,0,2,19,136", b"EPRT |1|192.0.2.1|5000|",
                                     b"PORT 127,0,0,1,0,22", b"EPRT |1|127.0.0.1|25|"])
def test_ftp_bounce_is_refused_over_sockets(lab: Lab, command: bytes) -> None:
    """PORT/EPRT elsewhere than the client's own unprivileged ports: 504, an event, and no connection is made."""
    srv = lab.serve("ftp", name="f")
    sock, reader = raw_login(srv.port)
    with sock, reader:
        sock.sendall(command + b"\r\nRETR /pub/hello.txt\r\n")
        assert reader.readline().startswith(b"504")
        assert reader.readline().startswith(b"425")  # nothing to transfer to
    assert notes(lab, "f", "FTP bounce")


def test_a_data_connection_from_another_address_is_refused(lab: Lab) -> None:
    """A passive port taken by 127.0.0.2 while the client is 127.0.0.1 is
    closed with an event; the client's own connection then gets the file."""
    srv = lab.serve("ftp", name="f")
    sock, reader = raw_login(srv.port)
    with sock, reader:
        sock.sendall(b"EPSV\r\n")
        reply = reader.readline()
        port = int(re.search(rb"\|\|\|(\d+)\|", reply).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0)) as thief:
            sock.sendall(b"TYPE I\r\nRETR /pub/hello.txt\r\n")
            assert reader.readline().startswith(b"200")
            assert reader.readline().startswith(b"150")
            thief.settimeout(10)
            assert thief.recv(100) == b""  # closed, nothing sent
            with socket.create_connection(("127.0.0.1", port), timeout=10) as data:
                assert data.makefile("rb").read() == b"hello, world\n"
        assert reader.readline().startswith(b"226")
    assert notes(lab, "f", "data connection from 127.0.0.2 refused")


def test_pass_is_masked_on_disk_and_transfers_are_children(lab: Lab, tmp_path: Path) -> None:
    """The log file holds ******** for PASS; each data connection is
    f#N.dM with one transfer event (a preview and the size) however large
    the file."""
    (tmp_path / "big.bin").write_bytes(b"z" * 3_000_000)
    srv = lab.serve("ftp", name="f", path=str(tmp_path))
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=30)
    client.login("alice", "wonderland")
    got = bytearray()
    client.retrbinary("RETR big.bin", got.extend)
    client.quit()
    assert len(got) == 3_000_000
    (control,) = {e.conn for e in lab.log.query(EventFilter(endpoint="f", kinds=frozenset({EventKind.OPEN})))
                  if "." not in e.conn}
    data_events = [e for e in lab.log.query(EventFilter(endpoint="f")) if e.conn.startswith(control + ".d")]
    assert [e.kind for e in data_events] == [EventKind.OPEN, EventKind.MESSAGE, EventKind.CLOSE]
    assert "RETR /big.bin: 3000000 bytes" in data_events[1].summary
    assert len(data_events[1].raw or b"") <= 256
    assert "out 3000000 B" in data_events[2].text
    out = tmp_path / "log.jsonl"
    lab.log.export_jsonl(str(out))
    text = out.read_text()
    assert "wonderland" not in text and "********" in text


def test_junk_never_kills_the_server(lab: Lab) -> None:
    """NUL, CR, 8-bit bytes, huge lines and a sudden close: error replies, and the next client is served."""
    srv = lab.serve("ftp", name="f")
    for junk in (b"\x00\x01\x02\r\n", b"RETR a\rb\r\n", b"\xff\xfe\xfd\r\n", b"A" * 20_000, b"USER " + b"x" * 2000
                 + b"\r\n", b"PASS\r\n", b"PORT\r\n", b"EPRT |9|x|y|\r\n", b"TYPE\r\n", b"REST -1\r\n"):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            rest = reader.read()
            assert re.match(rb"[45]\d\d ", rest), (junk[:20], rest[:80])
            reader.close()
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=10)
    assert client.login().startswith("230")
    client.quit()


def test_connections_and_idle_are_capped(lab: Lab) -> None:
    """max_connections refuses the extra control connection; idle_timeout closes a quiet one."""
    srv = lab.serve("ftp", name="f", max_connections=1, idle_timeout=1.0)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as first:
        first_reader = first.makefile("rb")
        assert first_reader.readline().startswith(b"220")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as second:
            assert second.recv(100) == b""
        first.settimeout(15)
        assert first_reader.read() == b""  # idle: closed by the server
        first_reader.close()
    assert notes(lab, "f", "idle")


def test_the_decoded_log_names_meanings(lab: Lab) -> None:
    """Replies show their RFC meaning; a multi-line FEAT is one message."""
    srv = lab.serve("ftp", name="f")
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=10)
    client.sendcmd("FEAT")
    client.quit()
    summaries = [e.summary for e in lab.log.query(EventFilter(endpoint="f", kinds=frozenset({EventKind.MESSAGE})))]
    assert any(s.startswith("211 Features: [+") for s in summaries)
    assert any("service ready for new user" in s for s in summaries)
    assert json.dumps(summaries)


def test_a_slow_transfer_keeps_its_control_connection_alive(lab: Lab, tmp_path: Path) -> None:
    """idle_timeout 1 s, an upload trickling for about 3 s: the control
    connection is not idle while its data connection moves bytes, and the
    226 arrives; the bytes are counted on the data connection as they come."""
    srv = lab.serve("ftp", name="f", path=str(tmp_path), idle_timeout=1.0)
    sock, reader = raw_login(srv.port)
    with sock, reader:
        sock.sendall(b"TYPE I\r\nEPSV\r\n")
        assert reader.readline().startswith(b"200")
        port = int(re.search(rb"\|\|\|(\d+)\|", reader.readline()).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as data:
            sock.sendall(b"STOR slow.bin\r\n")
            assert reader.readline().startswith(b"150")
            for n in range(15):  # a slow client: a piece every 0.2 s
                data.sendall(b"y" * 1000)
                time.sleep(0.2)
                if n == 10:
                    (control,) = srv.live_connections()
                    (child,) = control.children
                    assert child.bytes_in >= 10_000 - 256  # counted as it comes, all but the preview
        assert reader.readline().startswith(b"226")
    assert (tmp_path / "slow.bin").read_bytes() == b"y" * 15_000


def test_a_data_connection_that_never_comes_gets_425(lab: Lab) -> None:
    """EPSV, then RETR with nobody connecting: 425 after data_timeout, and the session goes on."""
    srv = lab.serve("ftp", name="f", data_timeout=0.5)
    sock, reader = raw_login(srv.port)
    with sock, reader:
        sock.sendall(b"EPSV\r\nRETR /pub/hello.txt\r\nPWD\r\n")
        assert reader.readline().startswith(b"229")
        assert reader.readline().startswith(b"150")
        assert reader.readline().startswith(b"425")
        assert reader.readline().startswith(b"257")  # PWD waited for the transfer's end


def test_hanging_up_while_a_transfer_waits_leaks_nothing(lab: Lab) -> None:
    """RETR waiting for its data connection when the client leaves: the
    file is closed (warnings are errors here: a leaked file would fail)."""
    srv = lab.serve("ftp", name="f")
    sock, reader = raw_login(srv.port)
    with sock, reader:
        sock.sendall(b"EPSV\r\nRETR /pub/hello.txt\r\n")
        assert reader.readline().startswith(b"229")
        assert reader.readline().startswith(b"150")
    wait_until(lambda: not srv.connections, what="the session to end")
    gc.collect()
