"""The FTP server's view of its files: virtual paths jailed to one root,
and the listings (LIST, NLST, MLSD/MLST) of RFC 959 and RFC 3659.

A client names files by virtual paths (``/pub/a.txt``, or relative to its
working directory).  :class:`Jail` turns one into a real path only when
that path, with every symbolic link resolved, stays inside the root: a
``..`` above the root stops at the root, and a link out of it is refused.

Tests: tests/protocols/test_ftp.py, tests/test_ftp_traversal.py
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Iterator

__all__ = ["Jail", "PathRefused", "entries", "list_line", "mlsx_facts", "quote_path"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_PATH = 4096


class PathRefused(Exception):
    """A path the jail does not let out (the server answers 550)."""


class Jail:
    """Files under ``root`` and nothing else."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def virtual(self, cwd: str, arg: str) -> str:
        """The absolute virtual path ``arg`` names from ``cwd``: ``..``
        stops at the root; :class:`PathRefused` for a NUL or an over-long
        path."""
        if "\x00" in arg:
            raise PathRefused("a NUL byte in a path")
        if len(arg) > MAX_PATH:
            raise PathRefused(f"a path longer than {MAX_PATH} characters")
        path = posixpath.normpath(posixpath.join(cwd, arg or "."))
        return "/" + path.lstrip("/")

    def inside(self, real: str) -> bool:
        """Is real path ``real`` (resolved) inside the root?"""
        return real == self.root or real.startswith(self.root + os.sep)

    def real(self, vpath: str, *, follow: bool = True) -> str:
        """The real path of virtual ``vpath``.  ``follow``: every link
        resolved (what is read or written); otherwise the last component
        itself (what is deleted or renamed: a link, not its target).
        :class:`PathRefused` when it would leave the root."""
        rel = vpath.lstrip("/")
        joined = os.path.join(self.root, rel) if rel else self.root
        if follow:
            resolved = os.path.realpath(joined)
            if not self.inside(resolved):
                raise PathRefused("outside the root")
            return resolved
        parent, name = os.path.split(joined)
        real_parent = os.path.realpath(parent)
        if not self.inside(real_parent) or (not name or name in (".", "..")):
            raise PathRefused("outside the root")
        return os.path.join(real_parent, name)

    def virtual_of(self, real: str) -> str:
        """The virtual path of a real one inside the root."""
        rel = os.path.relpath(real, self.root)
        return "/" if rel == "." else "/" + rel.replace(os.sep, "/")


def quote_path(path: str) -> str:
    """A path in a 257 reply: in double quotes, inner ones doubled (RFC 959 appendix II)."""
    return '"' + path.replace('"', '""') + '"'


def _safe_name(name: str) -> str:
    # a name with a line break would end a listing line early
    return name.replace("\r", "?").replace("\n", "?")


def _mode(st: os.stat_result) -> str:
    return stat.filemode(st.st_mode)


def list_line(name: str, st: os.stat_result, now: float | None = None) -> str:
    """One ``ls -l`` line (the LIST format every client parses)."""
    now = time.time() if now is None else now
    when = time.gmtime(st.st_mtime)
    if abs(now - st.st_mtime) < 180 * 86400:
        stamp = f"{_MONTHS[when.tm_mon - 1]} {when.tm_mday:2d} {when.tm_hour:02d}:{when.tm_min:02d}"
    else:
        stamp = f"{_MONTHS[when.tm_mon - 1]} {when.tm_mday:2d}  {when.tm_year}"
    return f"{_mode(st)} {st.st_nlink:3d} ftp      ftp      {st.st_size:>10d} {stamp} {_safe_name(name)}"


def mlsx_facts(name: str, st: os.stat_result, *, writable: bool, kind: str | None = None) -> str:
    """One MLSD/MLST entry: ``type=file;size=3;modify=...;perm=...; name`` (RFC 3659 §7)."""
    is_dir = stat.S_ISDIR(st.st_mode)
    kind = kind or ("dir" if is_dir else "file" if stat.S_ISREG(st.st_mode) else "OS.unix=other")
    modify = time.strftime("%Y%m%d%H%M%S", time.gmtime(st.st_mtime))
    if is_dir:
        perm = "elcmpfd" if writable else "el"
    else:
        perm = "radfw" if writable else "r"
    return f"type={kind};size={st.st_size};modify={modify};perm={perm}; {_safe_name(name)}"


def entries(jail: Jail, real_dir: str, limit: int) -> Iterator[tuple[str, os.stat_result]]:
    """A directory's entries with their status, sorted by name, at most
    ``limit``.  A link is described by its target while that stays in
    the root, and by itself otherwise (nothing about a file outside leaks)."""
    with os.scandir(real_dir) as it:
        names = sorted((e.name for e in it), key=str)[:limit]
    for name in names:
        path = os.path.join(real_dir, name)
        try:
            if os.path.islink(path) and not jail.inside(os.path.realpath(path)):
                yield name, os.lstat(path)
            else:
                yield name, os.stat(path)
        except OSError:
            try:
                yield name, os.lstat(path)
            except OSError:
                continue
