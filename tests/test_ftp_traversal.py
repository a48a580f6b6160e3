"""The FTP server never leaves its root: crafted paths (``..``, absolute
paths, backslashes, NUL, percent- and overlong-encoded forms, look-alike
dots, symbolic links out of the root) through every command that names
a path, over real sockets with ftplib.  A secret file beside the root
never comes back, and nothing is written, renamed or removed outside it.

Tests lab/protocols/ftp/_paths.py and the server's use of it."""

from __future__ import annotations

import ftplib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.protocols.ftp import Jail, PathRefused

SECRET = b"TOPSECRET-do-not-serve"
DECOY = b"root:x:0:0:a decoy beside the root\n"

# each names something outside the root, or tries to
CRAFTED = [
    "../secret.txt",
    "../../secret.txt",
    "/../secret.txt",
    "/../../../../../..{base}/etc/passwd",
    "{base}/etc/passwd",
    "..",
    "../",
    "/..",
    "./../secret.txt",
    "pub/../../secret.txt",
    "/pub/../../secret.txt",
    "pub/./../.././secret.txt",
    "..//..//secret.txt",
    "....//secret.txt",
    ".../secret.txt",
    "..\\secret.txt",
    "..\\..\\secret.txt",
    "\\..\\secret.txt",
    "pub\\..\\..\\secret.txt",
    "C:\\secret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    "..%2fsecret.txt",
    "..%252fsecret.txt",
    "..%c0%afsecret.txt",
    "..%5csecret.txt",
    "..;/secret.txt",
    "..\x00/secret.txt",
    "../secret.txt\x00.jpg",
    "\u2025/secret.txt",
    "\uff0e\uff0e/secret.txt",
    "~/secret.txt",
    "~nobody/secret.txt",
    "link_out",
    "link_abs",
    "dir_out/secret.txt",
    "dir_out",
    "dir_out/root/../secret.txt",
    "etc_link/passwd",
    "pub/deep_out/secret.txt",
    "//secret.txt",
    "/./../secret.txt",
    "../root/../secret.txt",
]
assert len(CRAFTED) >= 40


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """base/secret.txt beside base/root, the root holding links out of it."""
    root = tmp_path / "root"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "ok.txt").write_bytes(b"fine\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    os.symlink(tmp_path / "secret.txt", root / "link_out")
    # never a system file: a test that catches a broken jail must not let it write there
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(DECOY)
    os.symlink(tmp_path / "etc" / "passwd", root / "link_abs")
    os.symlink(tmp_path, root / "dir_out")
    os.symlink(tmp_path / "etc", root / "etc_link")
    os.symlink("../..", root / "pub" / "deep_out")
    yield tmp_path


def snapshot(base: Path) -> dict[str, bytes | None]:
    """Everything outside the root, by path: what must never change."""
    out: dict[str, bytes | None] = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if relative.parts[0] != "root":
            out[str(relative)] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return out


def login(port: int) -> ftplib.FTP:
    client = ftplib.FTP()
    client.encoding = "utf-8"
    client.connect("127.0.0.1", port, timeout=30)
    client.login("alice", "wonderland")
    return client


def attempt(fn: object, *args: object) -> str:
    """What a command answered (its text), or the error it raised."""
    try:
        return str(fn(*args))  # type: ignore[operator]
    except (ftplib.Error, EOFError, ValueError) as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("path", CRAFTED, ids=[repr(p)[1:-1][:40] for p in CRAFTED])
def test_no_crafted_path_leaves_the_root(lab: Lab, tree: Path, path: str) -> None:
    """Every command that names ``path`` stays inside the root: the secret
    never comes back; nothing outside changes."""
    path = path.replace("{base}", str(tree))
    before = snapshot(tree)
    srv = lab.serve("ftp", path=str(tree / "root"))
    client = login(srv.port)
    seen: list[str] = []
    try:
        got = io.BytesIO()
        seen.append(attempt(client.retrbinary, f"RETR {path}", got.write))
        seen.append(got.getvalue().decode("latin-1"))
        lines: list[str] = []
        for verb in ("LIST", "NLST", "MLSD"):
            seen.append(attempt(client.retrlines, f"{verb} {path}", lines.append))
        seen.extend(lines)
        for line in (f"SIZE {path}", f"MDTM {path}", f"MLST {path}", f"STAT {path}", f"CWD {path}"):
            seen.append(attempt(client.sendcmd, line))
            if line.startswith("CWD") and seen[-1].startswith("250"):
                # a CWD that was taken stays inside: listing there shows only the root's own files
                listing: list[str] = []
                seen.append(attempt(client.retrlines, "LIST", listing.append))
                seen.extend(listing)
                seen.append(attempt(client.pwd))
                client.sendcmd("CWD /")
        seen.append(attempt(client.storbinary, f"STOR {path}", io.BytesIO(b"written")))
        seen.append(attempt(client.storbinary, f"APPE {path}", io.BytesIO(b"appended")))
        seen.append(attempt(client.sendcmd, f"MKD {path}"))
        seen.append(attempt(client.sendcmd, f"RNFR {path}"))
        seen.append(attempt(client.sendcmd, "RNTO pub/moved"))
        seen.append(attempt(client.sendcmd, "RNFR pub/ok.txt"))
        seen.append(attempt(client.sendcmd, f"RNTO {path}"))
        seen.append(attempt(client.sendcmd, f"DELE {path}"))
        seen.append(attempt(client.sendcmd, f"RMD {path}"))
    finally:
        try:
            client.quit()
        except (ftplib.Error, OSError, EOFError):
            client.close()
    text = "\n".join(seen)
    assert SECRET.decode() not in text
    assert "root:x:0:0" not in text  # the decoy at an absolute path
    assert snapshot(tree) == before
    assert (tree / "secret.txt").read_bytes() == SECRET  # a link may go (DELE takes the link, not its target)


def test_the_listing_of_a_link_out_tells_nothing_of_its_target(lab: Lab, tree: Path) -> None:
    """LIST of the root shows a link out as the link itself, not the secret's size."""
    srv = lab.serve("ftp", path=str(tree / "root"))
    client = login(srv.port)
    lines: list[str] = []
    client.retrlines("LIST", lines.append)
    client.quit()
    link = next(line for line in lines if line.endswith("link_out"))
    assert link.startswith("l") and f" {len(SECRET)} " not in link


def test_the_jail_alone() -> None:
    """virtual() stops at the root; real() refuses what resolves outside."""
    jail = Jail("/tmp")
    assert jail.virtual("/", "../../x") == "/x"
    assert jail.virtual("/a/b", "..") == "/a"
    assert jail.virtual("/", "//x") == "/x"
    with pytest.raises(PathRefused):
        jail.virtual("/", "a\x00b")
    assert jail.real("/") == os.path.realpath("/tmp")
