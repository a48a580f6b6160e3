"""Interop: HTTP/1.1 against peers nobody here wrote.

curl, wget and Python's http.client against our server (keep-alive
reuse, POST, ranges, conditional GET, 100-continue, chunked uploads);
our client against Twisted web, lighttpd and ``python -m http.server``;
and curl through the lab's decoding proxy to ``python -m http.server``.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Proc, free_port, require, wait_for_port, wait_until

from lab import Lab
from lab.errors import ConnectionClosed
from lab.eventlog import EventFilter, EventKind
from lab.protocols.http import HttpBody, HttpRequestHead, HttpResponseHead

pytestmark = pytest.mark.interop

BIG = bytes(range(256)) * 2000  # 512,000 bytes: streamed in parts


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "a.txt").write_text("alpha\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "docs" / "page.html").write_text("<p>docs</p>\n")
    return root


def messages(lab: Lab, endpoint: str) -> list[object]:
    return [e.message for e in lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE})))]


# -- our server, foreign clients --------------------------------------------------------------------


def test_curl_reuses_one_connection_for_several_urls(lab: Lab, site: Path) -> None:
    """curl with three URLs on its command line: one connection, three answers."""
    srv = lab.serve("http", path=str(site))
    base = f"http://127.0.0.1:{srv.port}"
    out = run([require("curl"), "-sS", "-v", f"{base}/a.txt", f"{base}/docs/page.html", f"{base}/"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"alpha\n<p>docs</p>\n<h1>home</h1>\n"
    assert out.stderr.count(b"Re-using existing connection") == 2
    assert srv.accepted == 1


def test_curl_post_ranges_and_conditional_get(lab: Lab, site: Path) -> None:
    """POST to a route, a single range, several ranges, 416, and 304 on the ETag."""
    srv = lab.serve("http", path=str(site))
    srv.route("/upload", lambda request: {"got": len(request.body), "type": request.header("content-type")})
    base = f"http://127.0.0.1:{srv.port}"
    curl = require("curl")
    posted = run([curl, "-sS", "--data-binary", "x" * 5000, "-H", "Content-Type: text/plain", f"{base}/upload"])
    assert posted.stdout == b'{"got": 5000, "type": "text/plain"}\n'
    one = run([curl, "-sS", "-r", "1000-1999", f"{base}/big.bin"])
    assert one.stdout == BIG[1000:2000]
    many = run([curl, "-sS", "-i", "-r", "0-9,100-109", f"{base}/big.bin"])
    assert b"206 Partial Content" in many.stdout and b"multipart/byteranges" in many.stdout
    assert BIG[0:10] in many.stdout and BIG[100:110] in many.stdout
    beyond = run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-r", "900000-", f"{base}/big.bin"])
    assert beyond.stdout == b"416"
    head = run([curl, "-sS", "-I", f"{base}/a.txt"]).stdout.decode()
    etag = re.search(r"(?im)^etag: (\S+)", head)
    modified = re.search(r"(?im)^last-modified: (.+?)\r?$", head)
    assert etag and modified
    for header in (f"If-None-Match: {etag.group(1)}", f"If-Modified-Since: {modified.group(1)}"):
        again = run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", header, f"{base}/a.txt"])
        assert again.stdout == b"304", header


def test_curl_expect_continue_and_chunked_upload(lab: Lab, site: Path, tmp_path: Path) -> None:
    """A large upload: curl sends Expect: 100-continue and waits for our 100;
    a chunked upload from stdin is gathered whole."""
    srv = lab.serve("http", path=str(site))
    srv.route("/sum", lambda request: f"{len(request.body)} {request.body[:3].decode()}\n")
    base = f"http://127.0.0.1:{srv.port}"
    payload = tmp_path / "payload"
    payload.write_bytes(b"abc" * 100_000)
    curl = require("curl")
    out = run([curl, "-sS", "-v", "-H", "Expect: 100-continue", "--data-binary", f"@{payload}", f"{base}/sum"])
    assert out.stdout == b"300000 abc\n", out.stderr
    assert b"Expect: 100-continue" in out.stderr and b"HTTP/1.1 100 Continue" in out.stderr
    chunked = subprocess.run([curl, "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", f"{base}/sum"],
                             input=b"xyz" * 30_000, capture_output=True, timeout=60)
    assert chunked.stdout == b"90000 xyz\n", chunked.stderr
    heads = [m for m in messages(lab, srv.name) if isinstance(m, HttpRequestHead)]
    assert any(h.framing == "chunked" for h in heads)


def test_wget_fetches_a_tree(lab: Lab, site: Path, tmp_path: Path) -> None:
    """wget -r follows our listing and index pages and gets every file byte for byte."""
    srv = lab.serve("http", path=str(site))
    (site / "docs" / "index.html").unlink(missing_ok=True)
    out_dir = tmp_path / "mirror"
    got = run([require("wget"), "-q", "-r", "-np", "-nH", "-P", str(out_dir),
               f"http://127.0.0.1:{srv.port}/docs/"])
    assert got.returncode == 0, got.stderr
    assert (out_dir / "docs" / "page.html").read_text() == "<p>docs</p>\n"
    big = run([require("wget"), "-q", "-O", "-", f"http://127.0.0.1:{srv.port}/big.bin"])
    assert big.stdout == BIG


def test_http_client_keeps_alive_and_reads_every_framing(lab: Lab, site: Path) -> None:
    """http.client: many requests on one connection, HEAD, 404, a streamed file."""
    srv = lab.serve("http", path=str(site))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    for _ in range(5):
        conn.request("GET", "/a.txt")
        res = conn.getresponse()
        assert (res.status, res.read()) == (200, b"alpha\n")
    conn.request("HEAD", "/big.bin")
    res = conn.getresponse()
    assert res.getheader("Content-Length") == str(len(BIG)) and res.read() == b""
    conn.request("GET", "/nope")
    res = conn.getresponse()
    assert res.status == 404 and res.reason == "Not Found"
    res.read()
    conn.request("GET", "/big.bin")
    assert conn.getresponse().read() == BIG
    conn.request("GET", "/docs")
    res = conn.getresponse()
    assert res.status == 301 and res.getheader("Location") == "/docs/"
    res.read()
    conn.close()
    assert srv.accepted == 1
    assert any(isinstance(m, HttpBody) for m in messages(lab, srv.name))


# -- our client, foreign servers -------------------------------------------------------------------


@pytest.fixture
def twisted_web(site: Path) -> Iterator[int]:
    port = free_port()
    args = [require("twistd"), "-n", "--pidfile=", "web", "--path", str(site),
            "--listen", f"tcp:{port}:interface=127.0.0.1"]
    with Proc(args) as proc:
        wait_for_port(port, timeout=60)
        yield port
        proc.stop(15)


@pytest.fixture
def lighttpd(site: Path, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    conf = tmp_path / "lighttpd.conf"
    conf.write_text(f'server.document-root = "{site}"\nserver.port = {port}\nserver.bind = "127.0.0.1"\n'
                    f'server.errorlog = "{tmp_path}/lighttpd.err"\nindex-file.names = ("index.html")\n'
                    'mimetype.assign = (".html" => "text/html", ".txt" => "text/plain", '
                    '".bin" => "application/octet-stream")\n')
    with Proc([require("lighttpd"), "-D", "-f", str(conf)]) as proc:
        wait_for_port(port, timeout=30)
        yield port
        proc.stop(15)


@pytest.fixture
def python_http_server(site: Path) -> Iterator[int]:
    port = free_port()
    with Proc([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site),
               str(port)]) as proc:
        wait_for_port(port, timeout=30)
        yield port
        proc.stop(15)


def _fetch_all(lab: Lab, port: int) -> object:
    c = lab.connect("http", f"127.0.0.1:{port}")
    assert c.get("/a.txt").body == b"alpha\n"
    big = c.get("/big.bin")
    assert big.status == 200 and big.body == BIG
    head = c.head("/big.bin")
    assert head.status == 200 and head.body == b"" and head.header("content-length") == str(len(BIG))
    assert c.get("/nothing-here").status == 404
    return c


def test_our_client_against_twisted_web(lab: Lab, twisted_web: int) -> None:
    """Twisted web: keep-alive over GET, HEAD and a 404, on one connection."""
    c = _fetch_all(lab, twisted_web)
    assert c.get("/index.html").text == "<h1>home</h1>\n"  # type: ignore[attr-defined]
    ranged = c.get("/big.bin", [("Range", "bytes=5-9")])  # type: ignore[attr-defined]
    assert ranged.status == 206 and ranged.body == BIG[5:10]


def test_our_client_against_lighttpd(lab: Lab, lighttpd: int) -> None:
    """lighttpd: the same, plus a conditional GET answered 304 without a body."""
    c = _fetch_all(lab, lighttpd)
    first = c.get("/a.txt")  # type: ignore[attr-defined]
    etag = first.header("etag")
    assert etag
    again = c.get("/a.txt", [("If-None-Match", etag)])  # type: ignore[attr-defined]
    assert again.status == 304 and again.body == b""
    assert c.get("/a.txt").body == b"alpha\n"  # type: ignore[attr-defined]


def test_our_client_against_python_http_server(lab: Lab, python_http_server: int) -> None:
    """http.server answers in HTTP/1.0 and closes: the body is read to the close."""
    c = lab.connect("http", f"127.0.0.1:{python_http_server}")
    got = c.get("/big.bin")
    assert got.status == 200 and got.body == BIG and got.version == "HTTP/1.0"
    with pytest.raises(ConnectionClosed):
        c.get("/a.txt")  # it closed after its answer: connect again


AIOHTTP_APP = r"""
import sys
from aiohttp import web

async def chunks(request):
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for i in range(50):
        await response.write(b"chunk %d " % i + b"z" * 5000 + b"\n")
    await response.write_eof()
    return response

async def empty(request):
    return web.Response(status=204)

app = web.Application()
app.router.add_get("/chunks", chunks)
app.router.add_get("/empty", empty)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *a: print("ready", flush=True))
"""


@pytest.fixture
def aiohttp_server() -> Iterator[int]:
    port = free_port()
    with Proc([sys.executable, "-c", AIOHTTP_APP, str(port)]) as proc:
        wait_for_port(port, timeout=30)
        yield port
        proc.stop(15)


def test_our_client_reads_chunked_and_empty_answers_from_aiohttp(lab: Lab, aiohttp_server: int) -> None:
    """aiohttp streams a chunked body in many writes and answers 204 without one: both read, in step."""
    c = lab.connect("http", f"127.0.0.1:{aiohttp_server}")
    got = c.get("/chunks")
    expected = b"".join(b"chunk %d " % i + b"z" * 5000 + b"\n" for i in range(50))
    assert got.status == 200 and got.header("transfer-encoding") == "chunked" and got.body == expected
    empty = c.get("/empty")
    assert empty.status == 204 and empty.body == b""
    # no HEAD here: aiohttp writes a streamed handler's chunks after its answer to HEAD too
    assert c.get("/chunks").size == len(expected)  # still the same connection, still in step


def test_curl_through_the_lab_proxy_to_python_http_server(lab: Lab, python_http_server: int) -> None:
    """curl -> netlab proxy -> python -m http.server: the bytes pass, and
    the proxy decodes both directions (a HEAD's answer has no body)."""
    px = lab.proxy("http", to=f"127.0.0.1:{python_http_server}")
    base = f"http://127.0.0.1:{px.port}"
    curl = require("curl")
    assert run([curl, "-sS", f"{base}/big.bin"]).stdout == BIG
    head = run([curl, "-sS", "-I", f"{base}/a.txt"])
    assert b"200 OK" in head.stdout and b"Content-Length: 6" in head.stdout
    wait_until(lambda: sum(isinstance(m, HttpResponseHead) for m in messages(lab, px.name)) >= 2, timeout=20,
               what="both responses decoded")
    seen = messages(lab, px.name)
    heads = [m for m in seen if isinstance(m, HttpResponseHead)]
    assert [h.answers for h in heads][:2] == ["GET", "HEAD"]
    assert heads[1].body == b"" and heads[1].framing == "none"
    assert sum(len(m.content) for m in seen if isinstance(m, HttpBody)) == len(BIG)
