"""Files under a root for the HTTP server: a request path to a file that
cannot leave the root, validators (ETag, Last-Modified), conditional
requests (RFC 9110 §13), byte ranges (RFC 9110 §14) and directory
listings.

A path is refused (never mapped) when its percent-decoding is not valid
UTF-8 (overlong forms included), holds NUL, a backslash, an encoded
slash, or a ``..`` segment; what is left is joined to the root and
resolved with every symlink followed, and must still be inside it.

Tests: tests/protocols/test_http_server.py, tests/test_http_traversal.py
"""

from __future__ import annotations

import html
import mimetypes
import os
import re
import secrets
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "Range",
    "boundary",
    "content_type",
    "etag_of",
    "http_date",
    "listing",
    "map_path",
    "not_modified",
    "parse_ranges",
    "range_applies",
]

_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def http_date(when: float) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7)."""
    return formatdate(when, usegmt=True)


def decode_path(raw: str) -> list[str] | None:
    """The segments of a request path (before ``?``), percent-decoded as
    strict UTF-8; None when the path may not name a file."""
    data = raw.encode("latin-1", "replace")
    if b"\\" in data or b"\0" in data:
        return None
    parts: list[str] = []
    for segment in data.split(b"/"):
        if segment == b"..":  # a literal dot-segment (RFC 3986 §5.2.4), never above the root
            if not parts:
                return None
            parts.pop()
            continue
        pieces = _PCT.split(segment)
        decoded = bytearray(pieces[0])
        for i in range(1, len(pieces), 2):
            decoded.append(int(pieces[i], 16))
            decoded += pieces[i + 1]
        if b"%" in pieces[0] or any(b"%" in p for p in pieces[2::2]):
            return None  # a stray % is not a path
        if any(c in decoded for c in b"/\\\0"):
            return None  # encoded separators and NUL
        try:
            text = decoded.decode("utf-8")  # strict: overlong and surrogate forms fail here
        except UnicodeDecodeError:
            return None
        if text == "..":
            return None  # an encoded one is a trick, not a path
        if text in ("", "."):
            continue
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            return None
        parts.append(text)
    return parts


def map_path(root: Path, raw_path: str) -> Path | None:
    """The real file or folder under ``root`` (a real path) that
    ``raw_path`` names, or None if it names nothing that may be served."""
    if not raw_path.startswith("/"):
        return None
    parts = decode_path(raw_path)
    if parts is None:
        return None
    candidate = root.joinpath(*parts) if parts else root
    try:
        real = Path(os.path.realpath(candidate))
    except (OSError, ValueError):
        return None
    if real != root and not real.is_relative_to(root):
        return None
    return real


def etag_of(st: os.stat_result) -> str:
    """A strong validator from the file's change time and size."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _etags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _weak_equal(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def not_modified(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """RFC 9110 §13.2.2: If-None-Match first (weak comparison), else
    If-Modified-Since."""
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = _etags(inm)
        return "*" in tags or any(_weak_equal(t, etag) for t in tags)
    ims = headers.get("if-modified-since")
    if ims is not None:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False


def range_applies(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """If-Range (RFC 9110 §13.1.5): the ranges apply only while the
    validator still matches (strong comparison)."""
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag
    try:
        return int(mtime) == int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


@dataclass(frozen=True)
class Range:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


MAX_RANGES = 16


def parse_ranges(value: str, size: int) -> list[Range] | None:
    """The satisfiable ranges of a ``Range`` header over ``size`` bytes
    (empty: none satisfiable, a 416), or None when the header is not a
    byte range set we take (it is then ignored, RFC 9110 §14.2)."""
    unit, eq, spec = value.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    out: list[Range] = []
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) > MAX_RANGES or not any(specs):
        return None
    for item in specs:
        if not item:
            continue
        first, dash, last = item.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
            return None
        if not first:
            n = int(last)
            if n and size:
                out.append(Range(max(0, size - n), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None
        end = int(last) if last else size - 1
        if start < size:
            out.append(Range(start, min(end, size - 1)))
    out.sort(key=lambda r: r.start)
    merged: list[Range] = []
    for r in out:  # overlapping ranges are served once (RFC 9110 §14.3 allows coalescing)
        if merged and r.start <= merged[-1].end + 1:
            merged[-1] = Range(merged[-1].start, max(merged[-1].end, r.end))
        else:
            merged.append(r)
    return merged


def boundary() -> str:
    return "netlab-" + secrets.token_hex(8)


def content_type(path: Path) -> str:
    kind, encoding = mimetypes.guess_type(path.name, strict=False)
    if encoding is not None:
        return "application/octet-stream"
    if kind is None:
        return "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
        return kind + "; charset=utf-8"
    return kind


def listing(folder: Path, url_path: str, limit: int = 10_000) -> bytes:
    """An HTML index of ``folder`` (names escaped, links percent-encoded)."""
    rows = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)[:limit]
    except OSError:
        entries = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        name = entry.name + ("/" if is_dir else "")
        href = quote(entry.name, errors="surrogateescape") + ("/" if is_dir else "")
        shown = html.escape(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        rows.append(f'<li><a href="{html.escape(href, quote=True)}">{shown}</a></li>')
    title = html.escape(url_path)
    up = '<li><a href="../">../</a></li>' if url_path != "/" else ""
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n"
            f"<body><h1>Index of {title}</h1>\n<ul>{up}\n" + "\n".join(rows) + "\n</ul></body></html>\n")
    return page.encode("utf-8")
