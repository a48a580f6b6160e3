"""Interop: SOCKS 4 and 4a against peers nobody here wrote.

curl (--socks4, --socks4a), OpenBSD nc (-X 4) and PySocks tunnel through
our server to a plain HTTP server (Python's http.server), a lab echo
server and a lab SMTP server, whose messages the log shows decoded; our
client tunnels through Twisted's SOCKS server (4 and 4a) and Dante (4;
it refuses 4a); and curl goes through a netlab proxy in front of
Twisted's server, which decodes the CONNECT and the relayed bytes.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socks as pysocks
from helpers import Proc, free_port, require, wait_for_port, wait_until

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.socks import SocksRefused
from lab.services.mail import MAIL_STORE

pytestmark = pytest.mark.interop

PAGE = b"hello through the tunnel\n"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test reads the lab's log


@pytest.fixture
def web() -> Iterator[int]:
    """Python's http.server on loopback, in a thread: one page."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require("curl"), "-sS", "--max-time", "20", *args], capture_output=True, timeout=60)


def texts(lab: Lab, name: str, kind: EventKind = EventKind.MESSAGE) -> list[str]:
    return [e.summary or e.text or "" for e in lab.log.query(EventFilter(endpoint=name, kinds=frozenset({kind})))]


def test_curl_socks4_through_our_server(lab: Lab, web: int) -> None:
    """curl --socks4: the page arrives; the log has curl's request (its
    user id empty), our grant, and the HTTP bytes relayed both ways."""
    sx = lab.serve("socks", name="sx")
    out = curl("--socks4", f"127.0.0.1:{sx.port}", f"http://127.0.0.1:{web}/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == PAGE
    wait_until(lambda: not sx.connections, what="the tunnel to close")
    msgs = texts(lab, "sx")
    assert msgs[0] == f"CONNECT 127.0.0.1:{web} (SOCKS 4)"
    assert msgs[1] == f"90 request granted 127.0.0.1:{web}"
    assert any("GET /" in m for m in msgs[2:]) and any("200" in m for m in msgs[2:])


def test_curl_socks4a_sends_the_name_for_us_to_resolve(lab: Lab, web: int) -> None:
    """curl --socks4a with localhost: a 4a request naming the host; a name
    the lab does not know is refused (91), and curl says so."""
    sx = lab.serve("socks", name="sx")
    out = curl("--socks4a", f"127.0.0.1:{sx.port}", f"http://localhost:{web}/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == PAGE
    assert texts(lab, "sx")[0] == f"CONNECT localhost:{web} (SOCKS 4a)"
    refused = curl("--socks4a", f"127.0.0.1:{sx.port}", f"http://www.example.com:{web}/")
    assert refused.returncode != 0 and b"rejected" in refused.stderr.lower()
    wait_until(lambda: any("does not resolve 'www.example.com'" in t for t in texts(lab, "sx", EventKind.ERROR)),
               what="the refusal event")


def test_curl_socks4_to_a_lab_smtp_server_is_decoded_as_smtp(lab: Lab) -> None:
    """curl --socks4 smtp://: the log shows SMTP's commands and replies,
    not just bytes (a lab SMTP server listens at the destination), and
    the mail is delivered."""
    mx = lab.serve("smtp", name="mx")
    sx = lab.serve("socks", name="sx")
    out = subprocess.run([require("curl"), "-sS", "--max-time", "20", "--socks4", f"127.0.0.1:{sx.port}",
                          f"smtp://127.0.0.1:{mx.port}", "--mail-from", "carol@lab.test",
                          "--mail-rcpt", "alice@lab.test", "-T", "-"],
                         input=b"Subject: via socks\r\n\r\nHello.\r\n", capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    msgs = texts(lab, "sx")
    assert "MAIL FROM:<carol@lab.test>" in msgs and "RCPT TO:<alice@lab.test>" in msgs
    assert any(m.startswith("354") for m in msgs) and any('Subject "via socks"' in m for m in msgs)
    mailbox = lab.services.get(MAIL_STORE).messages("alice")
    assert len(mailbox) == 1 and b"Hello." in mailbox[0].data


def test_openbsd_nc_socks4_through_our_server(lab: Lab) -> None:
    """nc -X 4 -x: a line to a lab echo server and back."""
    echo = lab.serve("echo")
    sx = lab.serve("socks", name="sx")
    out = subprocess.run([require("nc"), "-N", "-X", "4", "-x", f"127.0.0.1:{sx.port}", "127.0.0.1",
                          str(echo.port)], input=b"hello from nc\n", capture_output=True, timeout=60)
    assert out.stdout == b"hello from nc\n", out.stderr
    assert texts(lab, "sx")[0] == f"CONNECT 127.0.0.1:{echo.port} (SOCKS 4)"


def test_pysocks_socks4_and_4a_through_our_server(lab: Lab) -> None:
    """PySocks: SOCKS 4 with a user id, 4a with rdns=True; a refused
    destination raises its 0x5B error."""
    echo = lab.serve("echo")
    sx = lab.serve("socks", name="sx")
    for host, rdns in (("127.0.0.1", False), ("localhost", True)):
        s = pysocks.socksocket()
        s.settimeout(30)
        s.set_proxy(pysocks.SOCKS4, "127.0.0.1", sx.port, rdns=rdns, username="dave")
        try:
            s.connect((host, echo.port))
            s.sendall(b"ping\r\n")
            assert s.recv(100) == b"ping\r\n"
        finally:
            s.close()
    msgs = texts(lab, "sx")
    assert f'CONNECT 127.0.0.1:{echo.port} (SOCKS 4) user "dave"' in msgs
    assert f'CONNECT localhost:{echo.port} (SOCKS 4a) user "dave"' in msgs
    s = pysocks.socksocket()
    s.set_proxy(pysocks.SOCKS4, "127.0.0.1", sx.port)
    try:
        with pytest.raises(pysocks.ProxyError, match=r"0x5b|Request rejected"):
            s.connect(("10.1.2.3", 80))
    finally:
        s.close()
    wait_until(lambda: any("10.1.2.3:80 is not in the allow list" in t for t in texts(lab, "sx", EventKind.ERROR)),
               what="the refusal event")


@pytest.fixture
def twisted_socks(tmp_path: Path) -> Iterator[int]:
    """Twisted's SOCKS 4/4a server (twistd socks) on a free loopback port."""
    port = free_port()
    args = [require("twistd"), "-n", "--pidfile=", "socks", "-i", "127.0.0.1", "-p", str(port)]
    with Proc(args, cwd=str(tmp_path)) as proc:
        wait_for_port(port, timeout=30)
        yield port
        proc.stop(15)


@pytest.fixture
def dante(tmp_path: Path) -> Iterator[int]:
    """Dante (danted) on a free loopback port: no authentication, tunnels
    to loopback only.  It speaks SOCKS 4 (and 5), not 4a."""
    port = free_port()
    conf = tmp_path / "danted.conf"
    conf.write_text(f"logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n"
                    "clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n"
                    "client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
                    "socks pass {\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect bind bindreply\n"
                    "  protocol: tcp\n}\n")
    # its own session: danted forks helpers that hold our pipes, so the
    # whole group (every process of it ours) is stopped by its id
    with Proc([require("danted"), "-f", str(conf), "-N", "1", "-p", str(tmp_path / "danted.pid")],
              cwd=str(tmp_path), start_new_session=True) as proc:
        try:
            wait_for_port(port, timeout=30)
            yield port
        finally:
            try:
                os.killpg(proc.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.stop(15)


def test_our_client_through_twisted_socks(lab: Lab, twisted_socks: int) -> None:
    """Our client's CONNECT, SOCKS 4 and 4a, through twistd socks to a lab
    echo server; then raw send/expect in the tunnel."""
    echo = lab.serve("echo")
    for host in ("127.0.0.1", "localhost"):
        c = lab.connect("socks", f"127.0.0.1:{twisted_socks}")
        assert c.connect(host, echo.port, user="erin").code == 90
        c.send(b"through twisted\r\n")
        assert c.expect(b"through twisted").raw == b"through twisted\r\n"
        c.close()


def test_our_client_through_dante(lab: Lab, dante: int) -> None:
    """Dante grants SOCKS 4 to loopback, refuses 4a (91) and what its
    rules do not pass (91)."""
    echo = lab.serve("echo")
    c = lab.connect("socks", f"127.0.0.1:{dante}")
    assert c.connect("127.0.0.1", echo.port, user="frank").granted
    c.send(b"through dante\r\n")
    assert c.expect(b"through dante").raw == b"through dante\r\n"
    for host in ("localhost", "10.1.2.3"):
        refused = lab.connect("socks", f"127.0.0.1:{dante}")
        with pytest.raises(SocksRefused) as caught:
            refused.connect(host, echo.port)
        assert caught.value.code == 91


def test_curl_through_a_netlab_proxy_in_front_of_twisted_socks(lab: Lab, twisted_socks: int, web: int) -> None:
    """netlab proxy socks between curl and twistd socks: the bytes pass
    unchanged, and the proxy's log decodes curl's 4a request, Twisted's
    grant and the HTTP that follows."""
    px = lab.proxy("socks", f"127.0.0.1:{twisted_socks}", name="px")
    out = curl("--socks4a", f"127.0.0.1:{px.port}", f"http://localhost:{web}/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == PAGE
    wait_until(lambda: any("200" in t for t in texts(lab, "px")), what="the response in the proxy's log")
    msgs = texts(lab, "px")
    assert msgs[0] == f"CONNECT localhost:{web} (SOCKS 4a)"
    assert msgs[1].startswith("90 request granted")
    assert any("GET /" in m for m in msgs[2:])
