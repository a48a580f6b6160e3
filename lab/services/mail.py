"""The lab's mail store: per-user mailboxes that SMTP delivers into and
POP3 serves, optionally kept in Maildir directories.

It knows nothing of either protocol.  Servers of one lab share one store
through the :data:`MAIL_STORE` key.  Delivery is atomic: a
message is either in every recipient's mailbox, complete, or in none (in
a Maildir it is written under ``tmp/`` and renamed into ``new/``, so a
crash leaves no partial message where a reader looks).  A mailbox may be
locked by one reader at a time (POP3's exclusive maildrop lock, RFC 1939
§8), across processes too when it lives in a Maildir.  Mailbox names
are lower-cased local parts.  With a Maildir the disk is the truth: what
another process delivers or deletes there shows up in
:meth:`MailStore.messages`.

Messages are kept with CRLF line ends, as the mail protocols carry them;
Maildir files have LF line ends, as mail tools on Unix expect, so a bare
CR or LF inside a line does not survive a trip through the disk.

Tests: tests/services/test_mail.py
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path

from lab.errors import ConfigError
from lab.services import ServiceKey

__all__ = ["MAIL_STORE", "MailStore", "Mailbox", "StoredMessage", "canonical", "header_fields", "mailbox_name",
           "parse_account"]
_NAME = re.compile(r"[a-z0-9!#$%&'*+\-/=?^_`{|}~.]{1,64}")
_counter = itertools.count(1)
_CRLF = re.compile(rb"\r?\n")


def canonical(data: bytes) -> bytes:
    """``data`` with CRLF line ends, the last line ended too (bare CRs stay)."""
    text = _CRLF.sub(b"\r\n", data)
    return text + b"\r\n" if text and not text.endswith(b"\r\n") else text


def header_fields(content: bytes, limit: int = 64) -> list[tuple[str, str]]:
    """The header fields of an RFC 5322 message, unfolded, encoded words
    decoded, at most ``limit`` of them; lenient with anything."""
    head = re.split(rb"\r?\n\r?\n", content[:65536], maxsplit=1)[0]  # a header, not a whole body
    fields: list[tuple[str, str]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip().decode("utf-8", "replace"))
        elif b":" in line:
            if len(fields) >= limit:
                break
            key, _, rest = line.partition(b":")
            fields.append((key.strip().decode("ascii", "replace"), rest.strip().decode("utf-8", "replace")))
        else:
            break
    out = []
    for name, value in fields:
        try:
            value = str(make_header(decode_header(value)))
        except Exception:  # a display nicety: an odd header stays as it came
            pass
        out.append((name, value))
    return out


def mailbox_name(local_part: str) -> str:
    """The mailbox for an address's local part: lower-cased; ConfigError
    for a name that cannot be a directory (slashes, dots only, too long)."""
    name = local_part.lower()
    if not _NAME.fullmatch(name) or name.strip(".") == "" or "/" in name:
        raise ConfigError(f"not a usable mailbox name: {local_part!r}",
                          hint="use letters, digits and . - _ +")
    return name


def parse_account(text: str) -> tuple[str, str]:
    """``NAME=PASSWORD`` (a mail account, as ``--user`` gives it) as
    ``(mailbox, password)``; :class:`ValueError` saying what is wrong."""
    name, sep, password = text.partition("=")
    name = name.strip()
    if not sep or not name or not password or any(c.isspace() for c in name):
        raise ValueError(f"wants NAME=PASSWORD, got {text!r}")
    try:
        return mailbox_name(name), password
    except ConfigError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One delivered message: ``uid`` is unique and stable (POP3 UIDL,
    the Maildir file name); ``data`` the exact bytes, CRLF line ends."""

    uid: str
    data: bytes
    received: float

    @property
    def size(self) -> int:
        return len(self.data)


class Mailbox:
    """One user's messages, oldest first."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[StoredMessage] = []
        self.locked_by: str | None = None

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def size(self) -> int:
        return sum(m.size for m in self.messages)

    def __repr__(self) -> str:
        return f"<Mailbox {self.name}: {len(self.messages)} messages, {self.size} bytes>"


class MailStore:
    """Mailboxes by name, in memory and, with ``maildir``, on disk.

    Every method is safe to call from any thread (the reactor delivers, a
    test or a shell may read).  :meth:`attach` points an in-memory store
    at a Maildir root later, loading what is already there.
    """

    def __init__(self, maildir: str | os.PathLike[str] | None = None) -> None:
        self._boxes: dict[str, Mailbox] = {}
        self._lock = threading.RLock()
        self._lock_fds: dict[str, int] = {}  # mailbox -> the fd holding its flock
        self.maildir: Path | None = None
        if maildir is not None:
            self.attach(maildir)

    # -- disk ------------------------------------------------------------

    def attach(self, maildir: str | os.PathLike[str]) -> None:
        """Keep mail under ``maildir/<mailbox>/{tmp,new,cur}`` from now on
        and load the messages already there.  Attaching the same root
        again does nothing; a different one is a :class:`ConfigError`."""
        root = Path(maildir).expanduser().resolve()
        with self._lock:
            if self.maildir == root:
                return
            if self.maildir is not None:
                raise ConfigError(f"the lab's mail store already lives in {self.maildir}",
                                  hint="give every mail server the same --maildir, or none")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot use {root} as a Maildir: {exc.strerror or exc}") from None
            self.maildir = root
            for box in self._boxes.values():  # what arrived before, kept too
                for msg in box.messages:
                    self._write(box.name, msg)
            self._sync_all()

    def _sync_all(self) -> None:
        assert self.maildir is not None
        for sub in sorted(self.maildir.iterdir()):
            if sub.is_dir() and (sub / "new").is_dir() and _NAME.fullmatch(sub.name):
                self._sync(sub.name)

    def _sync(self, name: str) -> None:
        """Take in what other programs (another netlab, a mail tool) put into
        or took out of the mailbox's Maildir since we last looked."""
        if self.maildir is None or not (self.maildir / name / "new").is_dir():
            return
        box = self._box(name)
        on_disk: dict[str, Path] = {}
        for sub in ("cur", "new"):
            for path in (self.maildir / name / sub).iterdir():
                on_disk.setdefault(path.name.split(":", 1)[0], path)
        box.messages = [m for m in box.messages if m.uid in on_disk]
        known = {m.uid for m in box.messages}
        fresh = []
        for uid, path in on_disk.items():
            if uid in known:
                continue
            try:
                fresh.append(StoredMessage(uid, canonical(path.read_bytes()), path.stat().st_mtime))
            except OSError:
                continue  # taken away while we looked
        box.messages += sorted(fresh, key=lambda m: (m.received, m.uid))

    def _dirs(self, name: str) -> Path:
        assert self.maildir is not None
        base = self.maildir / name
        for sub in ("tmp", "new", "cur"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        return base

    def _write(self, name: str, msg: StoredMessage) -> None:
        base = self._dirs(name)
        tmp = base / "tmp" / msg.uid
        with open(tmp, "wb") as f:
            f.write(msg.data.replace(b"\r\n", b"\n"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, base / "new" / msg.uid)  # the Maildir way: readers never see a partial file

    def _unlink(self, name: str, uid: str) -> None:
        assert self.maildir is not None
        for sub in ("new", "cur"):
            for path in (self.maildir / name / sub).glob(uid + "*"):
                if path.name == uid or path.name.startswith(uid + ":"):
                    path.unlink(missing_ok=True)

    # -- mailboxes -------------------------------------------------------

    def _box(self, name: str) -> Mailbox:
        box = self._boxes.get(name)
        if box is None:
            box = self._boxes[name] = Mailbox(name)
        return box

    def mailbox(self, name: str) -> Mailbox:
        """The mailbox ``name`` (created empty if new)."""
        with self._lock:
            return self._box(mailbox_name(name))

    def names(self) -> list[str]:
        """Every mailbox that has been named, or has a Maildir."""
        with self._lock:
            if self.maildir is not None:
                self._sync_all()
            return sorted(self._boxes)

    def messages(self, name: str) -> list[StoredMessage]:
        """A snapshot of the messages in mailbox ``name``, oldest first
        (with a Maildir, as it is on disk now)."""
        with self._lock:
            name = mailbox_name(name)
            self._sync(name)
            return list(self._box(name).messages)

    @staticmethod
    def new_uid() -> str:
        """A unique id in the Maildir style: time, pid and counter, host."""
        # POP3's UIDL allows 70 printable characters: keep the host part short
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:24] or "localhost"
        return f"{int(time.time())}.P{os.getpid()}Q{next(_counter)}.{host}"

    def deliver(self, names: Sequence[str], data: bytes) -> list[StoredMessage]:
        """Put ``data`` into each mailbox in ``names`` (at most once each):
        all of them or, if writing fails, none.  Returns the new messages.
        Line ends become CRLF and the last line gets one, so what is stored
        is what POP3 sends and counts."""
        targets = list(dict.fromkeys(mailbox_name(n) for n in names))
        if not targets:
            raise ConfigError("a message needs at least one mailbox")
        data = canonical(data)
        now = time.time()
        with self._lock:
            msgs = [(name, StoredMessage(self.new_uid(), data, now)) for name in targets]
            if self.maildir is not None:
                done: list[tuple[str, StoredMessage]] = []
                try:
                    for name, msg in msgs:
                        self._write(name, msg)
                        done.append((name, msg))
                except OSError:
                    for name, msg in done:
                        self._unlink(name, msg.uid)
                    raise
            for name, msg in msgs:
                self._box(name).messages.append(msg)
        return [msg for _, msg in msgs]

    def delete(self, name: str, uids: Iterable[str]) -> int:
        """Remove the messages with these uids from mailbox ``name``;
        returns how many were there."""
        gone = set(uids)
        with self._lock:
            box = self._box(mailbox_name(name))
            keep = [m for m in box.messages if m.uid not in gone]
            removed = len(box.messages) - len(keep)
            box.messages = keep
            if self.maildir is not None:
                for uid in gone:
                    self._unlink(box.name, uid)
        return removed

    # -- locking ---------------------------------------------------------

    def lock(self, name: str, owner: str) -> bool:
        """Lock mailbox ``name`` for ``owner``; False if someone else holds
        it.  With a Maildir the lock is also an ``flock`` on
        ``<mailbox>/.netlab.lock``, so another process sharing the
        directory respects it, and the kernel drops it if we die."""
        with self._lock:
            box = self._box(mailbox_name(name))
            if box.locked_by not in (None, owner):
                return False
            if box.locked_by is None and self.maildir is not None:
                try:
                    fd = os.open(self._dirs(box.name) / ".netlab.lock", os.O_RDWR | os.O_CREAT, 0o600)
                except OSError:
                    return False
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    return False
                self._lock_fds[box.name] = fd
            box.locked_by = owner
            return True

    def unlock(self, name: str, owner: str) -> None:
        """Release the lock if ``owner`` holds it."""
        with self._lock:
            box = self._box(mailbox_name(name))
            if box.locked_by == owner:
                box.locked_by = None
                fd = self._lock_fds.pop(box.name, None)
                if fd is not None:
                    os.close(fd)  # closing drops the flock

    def __repr__(self) -> str:
        where = f" in {self.maildir}" if self.maildir else ""
        return f"<MailStore {len(self._boxes)} mailboxes{where}>"


MAIL_STORE: ServiceKey[MailStore] = ServiceKey("mail.store", MailStore)
