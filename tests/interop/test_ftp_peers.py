"""Interop: FTP against peers nobody here wrote.

ftplib (passive and active, binary and ASCII, upload and download,
MLSD), curl (EPSV, --disable-epsv, active -P, upload -T), lftp in batch
mode, tnftp (`ftp`) driven through pexpect and wget against our server;
our client against pyftpdlib; and curl through `netlab proxy ftp` to
pyftpdlib (the proxy decodes the control connection; the passive data
connection goes to the server's address directly).
"""

from __future__ import annotations

import ftplib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from helpers import Proc, free_port, require, wait_for_port

from lab import Lab
from lab.eventlog import EventFilter, EventKind
from lab.protocols.ftp import FtpReplyError

pytestmark = pytest.mark.interop

TEXT = b"first line\nsecond line\n"  # LF line ends on disk
BLOB = bytes(range(256)) * 4096 + b"\r\n\n\r"  # 1 MiB of every byte, stray line ends too


def run(args: list[str], timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    served = tmp_path / "served"
    (served / "pub").mkdir(parents=True)
    (served / "pub" / "text.txt").write_bytes(TEXT)
    (served / "pub" / "blob.bin").write_bytes(BLOB)
    (served / "upload").mkdir()
    return served


def control_messages(lab: Lab, name: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=name, kinds=frozenset({EventKind.MESSAGE})))]


def transfers(lab: Lab, name: str) -> list[str]:
    """The data connections' transfer events (children of a control connection)."""
    return [e.summary for e in lab.log.query(EventFilter(endpoint=name, kinds=frozenset({EventKind.MESSAGE})))
            if ".d" in e.conn]


# -- ftplib ----------------------------------------------------------------------------------


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_ftplib_against_our_server(lab: Lab, root: Path, passive: bool) -> None:
    """ftplib: login, PWD/CWD, LIST/NLST/MLSD, RETR binary and ASCII, STOR
    binary and ASCII, APPE, SIZE, MDTM, RNFR/RNTO, MKD/RMD, DELE, QUIT."""
    srv = lab.serve("ftp", name="f", path=str(root))
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=30)
    client.set_pasv(passive)
    assert client.getwelcome().startswith("220")
    assert client.login("alice", "wonderland").startswith("230")
    assert client.pwd() == "/"
    client.cwd("pub")
    assert client.pwd() == "/pub"
    assert sorted(client.nlst()) == ["blob.bin", "text.txt"]
    listing: list[str] = []
    client.retrlines("LIST", listing.append)
    assert any(line.startswith("-rw") and line.endswith(" blob.bin") and f" {len(BLOB)} " in line for line in listing)
    facts = dict(client.mlsd())
    assert facts["blob.bin"]["type"] == "file" and facts["blob.bin"]["size"] == str(len(BLOB))
    got = bytearray()
    client.retrbinary("RETR blob.bin", got.extend)
    assert bytes(got) == BLOB
    lines: list[str] = []
    client.retrlines("RETR text.txt", lines.append)  # TYPE A: ftplib splits CRLF lines
    assert lines == ["first line", "second line"]
    client.storbinary("STOR /upload/blob.bin", io.BytesIO(BLOB))
    assert (root / "upload" / "blob.bin").read_bytes() == BLOB
    client.storlines("STOR /upload/text.txt", io.BytesIO(TEXT))  # sent with CRLF, stored with LF
    assert (root / "upload" / "text.txt").read_bytes() == TEXT
    client.storbinary("APPE /upload/text.txt", io.BytesIO(b"third\n"))
    assert (root / "upload" / "text.txt").read_bytes() == TEXT + b"third\n"
    assert client.size("/upload/blob.bin") == len(BLOB)
    assert client.sendcmd("MDTM /upload/blob.bin").startswith("213 20")
    client.rename("/upload/text.txt", "/upload/renamed.txt")
    assert client.mkd("/upload/sub") == "/upload/sub"
    client.rmd("/upload/sub")
    client.delete("/upload/renamed.txt")
    assert sorted(client.nlst("/upload")) == ["blob.bin"]
    with pytest.raises(ftplib.error_perm, match="550"):
        client.retrbinary("RETR /nope", got.extend)
    assert client.quit().startswith("221")
    moved = transfers(lab, "f")
    assert any(f"RETR /pub/blob.bin: {len(BLOB)} bytes (binary)" in s for s in moved)
    assert any(s.startswith("STOR /upload/blob.bin") for s in moved)
    assert any(("EPRT" if not passive else "EPSV") in s or ("PORT" if not passive else "PASV") in s
               for s in control_messages(lab, "f"))


def test_ftplib_rest_resumes(lab: Lab, root: Path) -> None:
    """REST before RETR: the rest of the file from the offset."""
    srv = lab.serve("ftp", path=str(root))
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=30)
    client.login("bob", "builder")
    got = bytearray()
    client.retrbinary("RETR /pub/blob.bin", got.extend, rest=1000)
    assert bytes(got) == BLOB[1000:]
    client.quit()


def test_ftplib_anonymous_reads_but_cannot_write(lab: Lab, root: Path) -> None:
    srv = lab.serve("ftp", path=str(root))
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=30)
    client.login()  # anonymous
    got = bytearray()
    client.retrbinary("RETR /pub/text.txt", got.extend)
    assert bytes(got) == TEXT
    with pytest.raises(ftplib.error_perm, match="550"):
        client.storbinary("STOR /upload/x", io.BytesIO(b"x"))
    client.quit()
    assert not (root / "upload" / "x").exists()


# -- curl --------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["--disable-epsv"], ["-P", "127.0.0.1"], ["-P", "127.0.0.1", "--disable-eprt"]],
                         ids=["epsv", "pasv", "eprt", "port"])
def test_curl_downloads_lists_and_uploads(lab: Lab, root: Path, tmp_path: Path, flags: list[str]) -> None:
    """curl: a binary download, a directory listing, an ASCII download (;type=a)
    and an upload with -T, in passive (EPSV, PASV) and active (EPRT, PORT) mode."""
    curl = require("curl")
    srv = lab.serve("ftp", name="f", path=str(root))
    base = f"ftp://alice:wonderland@127.0.0.1:{srv.port}"
    got = run([curl, "-sS", *flags, f"{base}/pub/blob.bin"])
    assert got.returncode == 0, got.stderr
    assert got.stdout == BLOB
    listing = run([curl, "-sS", *flags, f"{base}/pub/"])
    assert listing.returncode == 0 and b"blob.bin" in listing.stdout
    ascii_ = run([curl, "-sS", *flags, f"{base}/pub/text.txt;type=a"])
    assert ascii_.returncode == 0 and ascii_.stdout in (TEXT, TEXT.replace(b"\n", b"\r\n"))
    upload = tmp_path / "up.bin"
    upload.write_bytes(BLOB[:300_000])
    put = run([curl, "-sS", *flags, "-T", str(upload), f"{base}/upload/"])
    assert put.returncode == 0, put.stderr
    assert (root / "upload" / "up.bin").read_bytes() == BLOB[:300_000]
    said = " ".join(control_messages(lab, "f"))
    expected = "EPRT" if "-P" in flags and "--disable-eprt" not in flags else (
        "PORT" if "-P" in flags else "PASV" if "--disable-epsv" in flags else "EPSV")
    assert expected in said


def test_curl_is_refused_a_bounce(lab: Lab, root: Path) -> None:
    """curl told to use active mode from an address that is not its own connection's: the server refuses."""
    curl = require("curl")
    srv = lab.serve("ftp", name="f", path=str(root))
    got = run([curl, "-sS", "--disable-eprt", "-P", "127.0.0.1", "--ftp-port", "127.0.0.2",
               f"ftp://alice:wonderland@127.0.0.1:{srv.port}/pub/text.txt"])
    # curl binds 127.0.0.2 for its data port but talks from 127.0.0.1: a bounce to our server
    assert got.returncode != 0
    assert [e for e in lab.log.query(EventFilter(endpoint="f", text="FTP bounce"))]


# -- lftp, tnftp, wget -----------------------------------------------------------------------


def test_lftp_batch(lab: Lab, root: Path, tmp_path: Path) -> None:
    """lftp -c: open, ls, get, put, mkdir, rm."""
    lftp = require("lftp")
    srv = lab.serve("ftp", name="f", path=str(root))
    (tmp_path / "local.bin").write_bytes(BLOB[:100_000])
    script = (f"set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; "
              f"open -u alice,wonderland -p {srv.port} 127.0.0.1; cd pub; ls; get blob.bin -o {tmp_path}/got.bin; "
              f"put {tmp_path}/local.bin -o /upload/local.bin; mkdir /upload/made; rm /upload/local.bin; "
              "cls -1 /upload")
    got = run([lftp, "-c", script], timeout=90, cwd=tmp_path)
    assert got.returncode == 0, got.stderr.decode()
    assert b"blob.bin" in got.stdout and b"made" in got.stdout
    assert (tmp_path / "got.bin").read_bytes() == BLOB
    assert not (root / "upload" / "local.bin").exists() and (root / "upload" / "made").is_dir()
    assert any(s.startswith("STOR /upload/local.bin: 100000 bytes") for s in transfers(lab, "f"))


def test_tnftp_through_pexpect(lab: Lab, root: Path, tmp_path: Path) -> None:
    """tnftp (`ftp -n -p`): user, binary get, ascii get, put, ls, quit."""
    program = require("ftp")
    srv = lab.serve("ftp", name="f", path=str(root))
    (tmp_path / "sent.txt").write_bytes(b"from tnftp\n")
    child = pexpect.spawn(program, ["-n", "-p", "127.0.0.1", str(srv.port)], cwd=str(tmp_path), timeout=30,
                          encoding="utf-8", codec_errors="replace")
    try:
        child.expect("ftp> ")
        child.sendline("user alice wonderland")
        child.expect("230")
        child.expect("ftp> ")
        for line, answer in (("binary", "200"), ("get pub/blob.bin blob.bin", "226"), ("ascii", "200"),
                             ("get pub/text.txt text.txt", "226"), ("put sent.txt upload/sent.txt", "226"),
                             ("ls upload", "226")):
            child.sendline(line)
            child.expect(answer)
            child.expect("ftp> ")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert (tmp_path / "text.txt").read_bytes() == TEXT
    assert (root / "upload" / "sent.txt").read_bytes() == b"from tnftp\n"


def test_wget_downloads(lab: Lab, root: Path, tmp_path: Path) -> None:
    """wget: a file by URL (passive), then a directory listing as .listing."""
    wget = require("wget")
    srv = lab.serve("ftp", name="f", path=str(root))
    out = tmp_path / "blob.bin"
    got = run([wget, "-q", "-O", str(out), f"ftp://alice:wonderland@127.0.0.1:{srv.port}/pub/blob.bin"])
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == BLOB
    anon = run([wget, "-q", "-O", str(tmp_path / "t.txt"), f"ftp://127.0.0.1:{srv.port}/pub/text.txt"])
    assert anon.returncode == 0, anon.stderr
    assert (tmp_path / "t.txt").read_bytes() == TEXT


# -- our client, a foreign server ----------------------------------------------------------------


@pytest.fixture
def pyftpdlib_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """pyftpdlib on a free loopback port, user lab/secret, writable."""
    served = tmp_path / "pyftpd"
    served.mkdir()
    (served / "hello.txt").write_bytes(TEXT)
    port = free_port()
    args = [sys.executable, "-W", "ignore", "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port), "-w",
            "-d", str(served), "-u", "lab", "-P", "secret"]
    with Proc(args) as proc:
        wait_for_port(port, timeout=20)
        yield port, served
        proc.stop()


@pytest.mark.parametrize("options", [{}, {"epsv": "no"}, {"passive": "no"}, {"passive": "no", "epsv": "no"}],
                         ids=["epsv", "pasv", "eprt", "port"])
def test_our_client_against_pyftpdlib(lab: Lab, pyftpdlib_server: tuple[int, Path], options: dict[str, str]) -> None:
    """login, pwd, ls, nlst, mlsd, get (binary and ASCII), put, size, rename, mkdir, delete, quit."""
    port, served = pyftpdlib_server
    c = lab.connect("ftp", f"127.0.0.1:{port}", options=options)
    assert c.login("lab", "secret").code == 230
    assert c.pwd() == "/"
    assert c.nlst() == ["hello.txt"]
    assert "hello.txt" in c.ls()
    assert dict(c.mlsd())["hello.txt"]["type"] == "file"
    assert c.get("hello.txt") == TEXT
    assert c.get("hello.txt", ascii=True) == TEXT
    c.put("blob.bin", BLOB)
    assert (served / "blob.bin").read_bytes() == BLOB
    assert c.size("blob.bin") == len(BLOB)
    c.rename("blob.bin", "moved.bin")
    c.mkdir("dir")
    c.delete("moved.bin")
    assert sorted(c.nlst()) == ["dir", "hello.txt"]
    with pytest.raises(FtpReplyError) as err:
        c.get("missing.txt")
    assert err.value.code == 550
    assert c.quit().code == 221
    kids = [e for e in lab.log.query(EventFilter(endpoint=c.name)) if e.conn.startswith(f"{c.name}.d")]
    assert any(e.kind is EventKind.MESSAGE and f"RETR hello.txt: {len(TEXT)} bytes" in e.summary for e in kids)


# -- the proxy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["--disable-epsv"]], ids=["epsv", "pasv"])
def test_curl_through_our_proxy_to_pyftpdlib(lab: Lab, pyftpdlib_server: tuple[int, Path], flags: list[str]) -> None:
    """netlab proxy ftp: the control connection decoded (PASS masked), the
    passive data connection going to the server directly (PASV names the
    server's address; EPSV a port on the proxy's host, the same one here)."""
    curl = require("curl")
    port, _ = pyftpdlib_server
    proxy = lab.proxy("ftp", f"127.0.0.1:{port}", name="px")
    got = run([curl, "-sS", *flags, f"ftp://lab:secret@127.0.0.1:{proxy.port}/hello.txt"])
    assert got.returncode == 0, got.stderr
    assert got.stdout == TEXT
    said = control_messages(lab, "px")
    assert any(s.startswith("USER lab") for s in said)
    assert any(s.startswith("PASS ") and "secret" not in s for s in said)
    assert any(s.startswith("226") for s in said)


def test_ftplib_abort_stops_a_transfer(lab: Lab, tmp_path: Path) -> None:
    """ftplib's abort() (ABOR sent as urgent data) mid-RETR: 426 for the
    transfer, then 226 for ABOR; the session goes on; the log keeps the
    bytes sent and marks the transfer cut short."""
    (tmp_path / "big.bin").write_bytes(b"x" * 50_000_000)
    srv = lab.serve("ftp", name="f", path=str(tmp_path))
    client = ftplib.FTP()
    client.connect("127.0.0.1", srv.port, timeout=30)
    client.login("alice", "wonderland")
    client.voidcmd("TYPE I")
    data = client.transfercmd("RETR big.bin")
    assert data.recv(1000)
    assert client.abort().startswith("426")
    data.close()
    assert client.getresp().startswith("226")
    assert client.sendcmd("NOOP").startswith("200")
    client.quit()
    assert any("big.bin" in s and "cut short" in s for s in transfers(lab, "f"))
