"""The HTTP server never serves a file outside its root: crafted paths
(encoded dots and slashes, backslashes, overlong UTF-8, NUL, double
encoding, absolute paths, symlinks out of the root) over real sockets,
with a secret file beside the root that must never come back."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lab import Lab
from lab.protocols.http import _static

SECRET = b"TOP-SECRET-4f1c9e"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with a file, a folder, a symlink inside and two out; the secret beside it."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("public\n")
    (root / "sub" / "b.txt").write_text("also public\n")
    (tmp_path / "secret.txt").write_bytes(SECRET + b"\n")
    (root / "outlink").symlink_to(tmp_path / "secret.txt")
    (root / "updir").symlink_to(tmp_path, target_is_directory=True)
    (root / "inlink").symlink_to(root / "a.txt")
    return root


def fetch(port: int, target: bytes, method: bytes = b"GET") -> bytes:
    """One raw request, as crafted, and everything the server sends back."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


def crafted(secret: Path) -> list[bytes]:
    """At least forty ways to ask for ``secret``, which is beside the root."""
    name = b"secret.txt"
    absolute = str(secret).encode()
    paths = [
        b"/../" + name, b"/../../" + name, b"/" + b"../" * 20 + name,
        b"/%2e%2e/" + name, b"/%2E%2E/" + name, b"/.%2e/" + name, b"/%2e./" + name,
        b"/..%2f" + name, b"/..%2F" + name, b"/%2e%2e%2f" + name, b"/%2e%2e%2F" + name,
        b"/sub/../../" + name, b"/sub/%2e%2e/%2e%2e/" + name, b"/sub/..%2f..%2f" + name,
        b"/" + b"%2e%2e/" * 10 + name,
        b"/..\\" + name, b"/..%5c" + name, b"/..%5C" + name, b"/%5c..%5c" + name,
        b"/sub\\..\\..\\" + name, b"/%2e%2e%5c%2e%2e%5c" + name,
        b"/%c0%ae%c0%ae/" + name, b"/%c0%ae%c0%ae%c0%af" + name, b"/..%c0%af" + name, b"/..%c1%9c" + name,
        b"/%e0%80%ae%e0%80%ae/" + name, b"/%f0%80%80%ae%f0%80%80%ae/" + name, b"/..%e0%80%af" + name,
        b"/%252e%252e/" + name, b"/..%252f" + name, b"/%25%32%65%25%32%65/" + name,
        b"/%00/../" + name, b"/..%00/" + name, b"/a.txt%00/../../" + name, b"/.%00./" + name,
        b"//../" + name, b"/./../" + name, b"/..;/" + name, b"/%2e%2e;/" + name, b"/..%09/" + name,
        b"/%u002e%u002e/" + name, b"/..%u2215" + name, b"/%ef%bc%8e%ef%bc%8e/" + name, b"/..%ef%bc%8f" + name,
        b"/" + absolute, b"/" + absolute.lstrip(b"/"), b"/%2f" + absolute.lstrip(b"/"), b"//" + absolute,
        b"/%2F%2F" + absolute.lstrip(b"/").replace(b"/", b"%2F"),
        b"/outlink", b"/updir/" + name, b"/updir/root/../" + name, b"/sub/../updir/" + name,
        b"http://lab/../" + name, b"http://lab/%2e%2e/" + name, b"file://" + absolute, b"*",
        b"..%2f" + name, name,
    ]
    return paths


def test_no_crafted_path_leaves_the_root(lab: Lab, tree: Path) -> None:
    """Each crafted path gets a refusal (400/404/405), never the secret;
    the public files still come back, a symlink inside the root too."""
    srv = lab.serve("http", path=str(tree))
    paths = crafted(tree.parent / "secret.txt")
    assert len(paths) >= 40
    for target in paths:
        for method in (b"GET", b"HEAD"):
            got = fetch(srv.port, target, method)
            assert SECRET not in got, target
            status = got.split(b" ", 2)[1] if got.startswith(b"HTTP/1.1 ") else b""
            assert status in (b"400", b"404", b"405"), (target, got[:200])
    assert fetch(srv.port, b"/a.txt").endswith(b"\r\n\r\npublic\n")
    assert fetch(srv.port, b"/sub/b.txt").endswith(b"also public\n")
    assert fetch(srv.port, b"/inlink").endswith(b"public\n")
    assert fetch(srv.port, b"/sub/../a.txt").endswith(b"public\n")  # inside the root: fine
    listing = fetch(srv.port, b"/")
    assert b"a.txt" in listing and SECRET not in listing


def test_the_mapping_alone_refuses_what_may_not_name_a_file(tree: Path) -> None:
    """map_path, without a server: every crafted path maps to nothing or
    to a place inside the root."""
    root = Path(os.path.realpath(tree))
    for target in crafted(tree.parent / "secret.txt"):
        text = target.decode("latin-1").partition("?")[0]
        mapped = _static.map_path(root, text)
        assert mapped is None or mapped == root or mapped.is_relative_to(root), target
        assert mapped != tree.parent / "secret.txt", target


def test_listing_escapes_names(lab: Lab, tmp_path: Path) -> None:
    """A file name with markup in it is listed as text, its link percent-encoded."""
    (tmp_path / '<script>alert("x").txt').write_text("x")
    (tmp_path / "a&b c.txt").write_text("y")
    srv = lab.serve("http", path=str(tmp_path))
    page = fetch(srv.port, b"/")
    assert b"<script>" not in page
    assert b"&lt;script&gt;alert(&quot;x&quot;).txt" in page
    assert b'href="a%26b%20c.txt"' in page and b"a&amp;b c.txt" in page
