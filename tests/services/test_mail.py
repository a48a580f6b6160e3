"""Tests for lab/protocols/_mailstore.py: mailboxes, atomic delivery,
locking, and Maildir persistence across restarts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from lab import Lab
from lab.errors import ConfigError
from lab.services.mail import MAIL_STORE, MailStore, mailbox_name


def test_mailbox_names_are_lower_cased_and_safe() -> None:
    """Local parts become directory-safe, case-folded names."""
    assert mailbox_name("Alice.Liddell+tag") == "alice.liddell+tag"
    for bad in ("", "..", "a/b", "x" * 65, "a b", "caf\u00e9"):
        with pytest.raises(ConfigError):
            mailbox_name(bad)


def test_deliver_to_several_mailboxes_once_each() -> None:
    """One message, each mailbox once, however often it is named."""
    store = MailStore()
    msgs = store.deliver(["alice", "Bob", "ALICE"], b"hi\r\n")
    assert len(msgs) == 2 and len({m.uid for m in msgs}) == 2
    assert [m.data for m in store.messages("alice")] == [b"hi\r\n"]
    assert store.names() == ["alice", "bob"]
    with pytest.raises(ConfigError):
        store.deliver([], b"x")


def test_delivery_keeps_the_canonical_crlf_form() -> None:
    """Bare LFs become CRLF and the last line is ended: stored is what POP3 sends."""
    store = MailStore()
    (msg,) = store.deliver(["a"], b"Subject: x\n\nbody\r\nlast")
    assert msg.data == b"Subject: x\r\n\r\nbody\r\nlast\r\n"
    assert len(MailStore.new_uid()) <= 70


def test_delete_and_lock() -> None:
    """delete removes by uid; a lock has one owner at a time."""
    store = MailStore()
    first, = store.deliver(["a"], b"1")
    store.deliver(["a"], b"2")
    assert store.delete("a", [first.uid, "nope"]) == 1
    assert [m.data for m in store.messages("a")] == [b"2\r\n"]
    assert store.lock("a", "s1") and store.lock("a", "s1") and not store.lock("a", "s2")
    store.unlock("a", "s2")  # not the owner: nothing happens
    assert not store.lock("a", "s2")
    store.unlock("a", "s1")
    assert store.lock("a", "s2")


def test_maildir_survives_a_restart(tmp_path: Path) -> None:
    """Messages written to a Maildir come back in a new store, deletions stay gone."""
    store = MailStore(tmp_path)
    one, = store.deliver(["alice"], b"one\r\n")
    store.deliver(["alice"], b"two\r\n")
    assert sorted(p.name for p in (tmp_path / "alice" / "new").iterdir()) == sorted(
        m.uid for m in store.messages("alice"))
    assert list((tmp_path / "alice" / "tmp").iterdir()) == []
    assert sorted(p.read_bytes() for p in (tmp_path / "alice" / "new").iterdir()) == [b"one\n", b"two\n"]
    store.delete("alice", [one.uid])
    again = MailStore(tmp_path)
    assert [m.data for m in again.messages("alice")] == [b"two\r\n"]


def test_maildir_files_from_other_tools_are_read(tmp_path: Path) -> None:
    """A message another program dropped in new/ or cur/ (LF line ends, flags) is served with CRLFs."""
    for sub in ("tmp", "new", "cur"):
        (tmp_path / "carol" / sub).mkdir(parents=True)
    (tmp_path / "carol" / "cur" / "123.M1.host:2,S").write_bytes(b"Subject: seen\n\nold\n")
    (tmp_path / "carol" / "new" / "124.M2.host").write_bytes(b"Subject: new\n\nfresh\n")
    store = MailStore(tmp_path)
    assert [(m.uid, m.data) for m in store.messages("carol")] == [
        ("123.M1.host", b"Subject: seen\r\n\r\nold\r\n"), ("124.M2.host", b"Subject: new\r\n\r\nfresh\r\n")]
    store.delete("carol", ["123.M1.host"])
    assert list((tmp_path / "carol" / "cur").iterdir()) == []


def test_two_stores_share_one_maildir(tmp_path: Path) -> None:
    """Two processes (here two stores) on one Maildir see each other's deliveries and deletions."""
    smtp_side, pop_side = MailStore(tmp_path), MailStore(tmp_path)
    msg, = smtp_side.deliver(["alice"], b"hello\r\n")
    assert [m.uid for m in pop_side.messages("alice")] == [msg.uid]
    pop_side.delete("alice", [msg.uid])
    assert smtp_side.messages("alice") == []
    assert "alice" in pop_side.names()


def test_the_lock_holds_across_processes_sharing_a_maildir(tmp_path: Path) -> None:
    """Two stores on one Maildir (two netlab processes): one POP3 session at a time."""
    one, two = MailStore(tmp_path), MailStore(tmp_path)
    assert one.lock("alice", "s1")
    assert not two.lock("alice", "s9")
    one.unlock("alice", "s1")
    assert two.lock("alice", "s9")
    assert not one.lock("alice", "s1")


def test_attach_keeps_earlier_mail_and_refuses_a_second_root(tmp_path: Path) -> None:
    """Mail delivered before attach is written too; another root is a ConfigError."""
    store = MailStore()
    store.deliver(["bob"], b"early\r\n")
    store.attach(tmp_path / "md")
    store.attach(tmp_path / "md")  # the same root again: fine
    assert [p.read_bytes() for p in (tmp_path / "md" / "bob" / "new").iterdir()] == [b"early\n"]
    with pytest.raises(ConfigError) as info:
        store.attach(tmp_path / "other")
    assert info.value.hint


def test_a_failed_write_delivers_to_nobody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Atomic delivery: if the second mailbox cannot be written, the first copy is removed."""
    store = MailStore(tmp_path)
    real_replace = os.replace
    calls = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        store.deliver(["a", "b"], b"x\r\n")
    monkeypatch.undo()
    assert store.messages("a") == [] and store.messages("b") == []
    assert list((tmp_path / "a" / "new").iterdir()) == []
    assert MailStore(tmp_path).messages("a") == []


def test_concurrent_delivery_from_threads() -> None:
    """Deliveries from several threads all land, each once."""
    store = MailStore()

    def deliver(n: int) -> None:
        for i in range(50):
            store.deliver(["box"], f"{n}-{i}".encode())

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(store.messages("box")) == 200
    assert len({m.uid for m in store.messages("box")}) == 200


def test_smtp_delivery_survives_a_lab_restart(tmp_path: Path) -> None:
    """SMTP with --maildir in one lab, POP3 with the same --maildir in the next: the mail is there."""
    with Lab.start() as lab:
        srv = lab.serve("smtp", maildir=str(tmp_path))
        c = lab.connect("smtp", srv)
        c.send_mail("a@b.test", "alice@lab.test", "Subject: kept\n\nstill here after a restart\n")
        c.quit()
    with Lab.start() as lab:
        pop = lab.serve("pop3", maildir=str(tmp_path))
        c = lab.connect("pop3", pop)
        c.login("alice", "wonderland")
        assert c.retr(1).endswith(b"Subject: kept\r\n\r\nstill here after a restart\r\n")
        c.dele(1)
        c.quit()
        assert isinstance(lab.services.find(MAIL_STORE), MailStore)
    assert MailStore(tmp_path).messages("alice") == []


def test_servers_naming_different_maildirs_are_refused(lab: Lab, tmp_path: Path) -> None:
    """Two --maildir roots in one lab: the second server is refused as it starts."""
    first = lab.serve("smtp", maildir=str(tmp_path / "one"))
    lab.connect("smtp", first).wait_greeting()
    with pytest.raises(ConfigError, match="already lives in"):
        lab.serve("smtp", maildir=str(tmp_path / "two"))
