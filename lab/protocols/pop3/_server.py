"""The POP3 server (RFC 1939 with CAPA and response codes from RFC 2449,
APOP from RFC 1939 §7) over the lab's mail store.

A session starts in the AUTHORIZATION state (USER/PASS or APOP), moves to
TRANSACTION once the mailbox is locked for it, and only QUIT from there
enters UPDATE, where messages marked with DELE are removed.  A client
that goes away without QUIT deletes nothing.

Tests: tests/protocols/test_pop3.py, tests/interop/test_pop3_peers.py
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError
from lab.protocols._base import Message, Peer, ServerBehaviour
from lab.protocols._mailstore import SERVICE, MailStore, StoredMessage, parse_credentials
from lab.protocols.pop3._codec import Pop3Command, Pop3Reply

__all__ = ["DEMO_USERS", "Pop3Server", "Pop3State", "parse_credentials"]

DEMO_USERS = (("alice", "wonderland"), ("bob", "builder"))
MAX_ERRORS = 20  # bad commands before we hang up


def _count(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def _uidl(uid: str) -> str:
    """A store uid as a UIDL (RFC 1939 §7: 1-70 characters 0x21-0x7E);
    a Maildir name from another tool that is not one is hashed."""
    if 0 < len(uid) <= 70 and all("!" <= c <= "~" for c in uid):
        return uid
    return hashlib.md5(uid.encode("utf-8", "surrogateescape")).hexdigest()


class Pop3State(enum.Enum):
    """The three states of RFC 1939 §3."""

    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


@dataclass
class _Session:
    state: Pop3State = Pop3State.AUTHORIZATION
    timestamp: str = ""
    user: str | None = None  # named by USER, not yet proven
    mailbox: str | None = None  # locked, once in TRANSACTION
    messages: list[StoredMessage] = field(default_factory=list)  # the maildrop as it was at login
    deleted: set[int] = field(default_factory=set)
    errors: int = 0
    verb: str = ""  # the command being answered


class Pop3Server(ServerBehaviour):
    """Serves the mailboxes of the lab's mail store to their owners.

    Options: ``user`` (NAME=PASSWORD; without any, the demo accounts
    alice/wonderland and bob/builder), ``hostname`` (in the APOP
    timestamp) and ``maildir``.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        given = [parse_credentials(u) if isinstance(u, str) else tuple(u) for u in self.options.get("user") or ()]
        self.users: dict[str, str] = dict(given or DEMO_USERS)
        self.hostname: str = self.options.get("hostname") or "lab.test"
        self.maildir: str | None = self.options.get("maildir")
        self.sessions: dict[str, _Session] = {}
        self._any_state: dict[str, Callable[[Peer, _Session, tuple[str, ...]], None]] = {
            "CAPA": self.handle_capa,
            "QUIT": self.handle_quit,
        }
        self._by_state: dict[Pop3State, dict[str, Callable[[Peer, _Session, tuple[str, ...]], None]]] = {
            Pop3State.AUTHORIZATION: {
                "USER": self.handle_user,
                "PASS": self.handle_pass,
                "APOP": self.handle_apop,
            },
            Pop3State.TRANSACTION: {
                "STAT": self.handle_stat,
                "LIST": self.handle_list,
                "RETR": self.handle_retr,
                "DELE": self.handle_dele,
                "NOOP": self.handle_noop,
                "RSET": self.handle_rset,
                "TOP": self.handle_top,
                "UIDL": self.handle_uidl,
            },
        }
        self._known = {v for table in self._by_state.values() for v in table} | set(self._any_state)

    @property
    def store(self) -> MailStore:
        """The lab's mail store (shared with its SMTP servers)."""
        store: MailStore = self.services.get(SERVICE, MailStore)
        if self.maildir:
            store.attach(self.maildir)
        return store

    # -- the connection ---------------------------------------------------

    def connection_made(self, conn: Peer) -> None:
        try:
            self.store  # noqa: B018 -- attach the Maildir now: a conflict is refused at once
        except LabError as exc:
            conn.note(f"mail store unusable: {exc}")
            conn.send(Pop3Reply.of(False, "[SYS/TEMP] mail store unavailable"))
            conn.close()
            return
        session = self.sessions[conn.id] = _Session()
        session.timestamp = f"<{os.getpid()}.{time.time_ns() // 1000}.{secrets.token_hex(3)}@{self.hostname}>"
        conn.send(Pop3Reply.of(True, f"netlab POP3 server ready {session.timestamp}"))

    def connection_lost(self, conn: Peer) -> None:
        session = self.sessions.pop(conn.id, None)
        if session is not None and session.mailbox is not None:
            self.store.unlock(session.mailbox, conn.id)
            if session.deleted and session.state is Pop3State.TRANSACTION:
                conn.note(f"client left without QUIT: {len(session.deleted)} message(s) marked "
                          "for deletion are kept")

    def protocol_error(self, conn: Peer, exc: Exception) -> None:
        try:
            conn.send(Pop3Reply.of(False, f"{getattr(exc, 'message', exc)}; closing"))
        except LabError:
            pass  # already gone
        conn.close()

    def message_received(self, conn: Peer, msg: Message) -> None:
        session = self.sessions.get(conn.id)
        if session is None or not isinstance(msg, Pop3Command) or session.state is Pop3State.UPDATE:
            return
        session.verb = msg.verb
        if msg.problem:
            self._error(conn, session, msg.problem)
            return
        handler = self._any_state.get(msg.verb) or self._by_state[session.state].get(msg.verb)
        if handler is not None:
            handler(conn, session, msg.args)
        elif msg.verb in self._known:
            hint = "log in with USER and PASS first" if session.state is Pop3State.AUTHORIZATION else \
                "you are logged in already"
            self._error(conn, session, f"{msg.verb} is not valid in the {session.state.value} state ({hint})")
        else:
            self._error(conn, session, f"unknown command {msg.verb[:8] or '(empty)'}")

    def _ok(self, conn: Peer, text: str, body: bytes | None = None) -> None:
        session = self.sessions.get(conn.id)
        conn.send(Pop3Reply.of(True, text, body, reply_to=session.verb if session else ""))

    def _error(self, conn: Peer, session: _Session, text: str) -> None:
        session.errors += 1
        if session.errors >= MAX_ERRORS:
            conn.send(Pop3Reply.of(False, "too many errors, closing", reply_to=session.verb))
            self._drop(conn, session)
            return
        conn.send(Pop3Reply.of(False, text, reply_to=session.verb))

    def _drop(self, conn: Peer, session: _Session) -> None:
        if session.mailbox is not None:
            self.store.unlock(session.mailbox, conn.id)
        self.sessions.pop(conn.id, None)
        conn.close()

    # -- any state ------------------------------------------------------------

    def handle_capa(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        """CAPA (RFC 2449): what this server offers."""
        capabilities = ["TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                        "EXPIRE NEVER", "IMPLEMENTATION netlab"]
        self._ok(conn, "capability list follows", "\r\n".join(capabilities).encode())

    def handle_quit(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        """QUIT: in TRANSACTION, enter UPDATE and remove what DELE marked."""
        if session.state is Pop3State.TRANSACTION and session.mailbox is not None:
            session.state = Pop3State.UPDATE
            uids = [session.messages[i - 1].uid for i in sorted(session.deleted)]
            try:
                removed = self.store.delete(session.mailbox, uids)
            except OSError as exc:
                conn.note(f"deleting failed: {exc}")
                conn.send(Pop3Reply.of(False, "[SYS/TEMP] some deleted messages not removed"))
                self._drop(conn, session)
                return
            left = len(session.messages) - len(session.deleted)
            if removed:
                conn.note(f"deleted {removed} message(s) from {session.mailbox}")
            self._ok(conn, f"netlab POP3 server signing off ({_count(left)} left)")
        else:
            self._ok(conn, "netlab POP3 server signing off")
        self._drop(conn, session)

    # -- AUTHORIZATION ----------------------------------------------------

    def handle_user(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error(conn, session, "syntax: USER name")
            return
        session.user = args[0]
        self._ok(conn, f"send PASS for {args[0]}")  # the same answer for every name: no guessing

    def handle_pass(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if session.user is None:
            self._error(conn, session, "USER first")
            return
        user, session.user = session.user, None
        password = self.users.get(user.lower())
        if not args or password is None or not secrets.compare_digest(password.encode(), args[0].encode()):
            conn.note(f"login failed for {user!r}")
            self._error(conn, session, "[AUTH] invalid user name or password")
            return
        self._login(conn, session, user.lower())

    def handle_apop(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        """APOP name digest: MD5 of the greeting's timestamp and the password."""
        if len(args) != 2:
            self._error(conn, session, "syntax: APOP name digest")
            return
        user, digest = args[0].lower(), args[1].lower()
        password = self.users.get(user)
        expected = hashlib.md5((session.timestamp + (password or "")).encode()).hexdigest()
        if password is None or not secrets.compare_digest(expected, digest):
            conn.note(f"APOP failed for {args[0]!r}")
            self._error(conn, session, "[AUTH] invalid user name or digest")
            return
        self._login(conn, session, user)

    def _login(self, conn: Peer, session: _Session, user: str) -> None:
        if not self.store.lock(user, conn.id):
            self._error(conn, session, f"[IN-USE] mailbox {user} is locked by another session")
            return
        session.mailbox, session.state = user, Pop3State.TRANSACTION
        session.messages = self.store.messages(user)
        size = sum(m.size for m in session.messages)
        conn.note(f"{user} logged in; mailbox locked")
        self._ok(conn, f"{user} has {_count(len(session.messages))} ({size} octets)")

    # -- TRANSACTION --------------------------------------------------------

    def _number(self, conn: Peer, session: _Session, arg: str) -> int | None:
        """A message number that exists and is not deleted, or None after an error reply."""
        if not arg.isdigit() or not 1 <= int(arg) <= len(session.messages):
            self._error(conn, session, f"no such message: {arg[:10]}")
            return None
        if int(arg) in session.deleted:
            self._error(conn, session, f"message {int(arg)} already deleted")
            return None
        return int(arg)

    def _live(self, session: _Session) -> list[tuple[int, StoredMessage]]:
        return [(i, m) for i, m in enumerate(session.messages, 1) if i not in session.deleted]

    def handle_stat(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        live = self._live(session)
        self._ok(conn, f"{len(live)} {sum(m.size for _, m in live)}")

    def handle_list(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if args:
            n = self._number(conn, session, args[0])
            if n is not None:
                self._ok(conn, f"{n} {session.messages[n - 1].size}")
            return
        live = self._live(session)
        self._ok(conn, f"{_count(len(live))} ({sum(m.size for _, m in live)} octets)",
                 "".join(f"{i} {m.size}\r\n" for i, m in live).encode())

    def handle_uidl(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if args:
            n = self._number(conn, session, args[0])
            if n is not None:
                self._ok(conn, f"{n} {_uidl(session.messages[n - 1].uid)}")
            return
        self._ok(conn, "unique-id listing follows",
                 "".join(f"{i} {_uidl(m.uid)}\r\n" for i, m in self._live(session)).encode())

    def handle_retr(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error(conn, session, "syntax: RETR msg")
            return
        n = self._number(conn, session, args[0])
        if n is not None:
            msg = session.messages[n - 1]
            self._ok(conn, f"{msg.size} octets", msg.data)

    def handle_top(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if len(args) != 2 or not args[1].isdigit():
            self._error(conn, session, "syntax: TOP msg lines")
            return
        n = self._number(conn, session, args[0])
        if n is None:
            return
        data = session.messages[n - 1].data
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = body.split(b"\r\n") if sep else []
        if lines and lines[-1] == b"":
            lines.pop()  # the CRLF ending the last line
        lines = lines[: int(args[1])]
        self._ok(conn, "top of message follows", head + sep + b"".join(x + b"\r\n" for x in lines))

    def handle_dele(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error(conn, session, "syntax: DELE msg")
            return
        n = self._number(conn, session, args[0])
        if n is not None:
            session.deleted.add(n)
            self._ok(conn, f"message {n} deleted (at QUIT)")

    def handle_noop(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        self._ok(conn, "")

    def handle_rset(self, conn: Peer, session: _Session, args: tuple[str, ...]) -> None:
        session.deleted.clear()
        live = self._live(session)
        self._ok(conn, f"maildrop has {_count(len(live))} ({sum(m.size for _, m in live)} octets)")
