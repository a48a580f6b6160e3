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
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from lab.errors import ConnectionClosed, LabError, ProtocolError
from lab.protocols._base import Message
from lab.protocols._login import LoginGate
from lab.protocols._options import Options, option
from lab.protocols._session import Peer, ServerBehaviour, Session
from lab.protocols.pop3._messages import Pop3Command, Pop3Reply, reply_in_parts
from lab.services.mail import MAIL_STORE, MailStore, StoredMessage, parse_account

__all__ = ["DEMO_USERS", "Pop3Options", "Pop3Server", "Pop3Session", "Pop3State"]

DEMO_USERS = (("alice", "wonderland"), ("bob", "builder"))
MAX_ERRORS = 20  # bad commands before we hang up
MAX_WAITING = 64  # commands pipelined behind a login that waits its turn


def _count(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def _uidl(uid: str) -> str:
    """A store uid as a UIDL (RFC 1939 §7: 1-70 characters 0x21-0x7E);
    a Maildir name from another tool that is not one is hashed."""
    if 0 < len(uid) <= 70 and all("!" <= c <= "~" for c in uid):
        return uid
    return hashlib.md5(uid.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Pop3Options(Options):
    """How a POP3 server is set up."""

    user: tuple[tuple[str, str], ...] = option(
        help="an account (without any: the demo accounts alice=wonderland and bob=builder)",
        parse=parse_account, multiple=True, metavar="NAME=PASSWORD", example="alice=wonderland")
    hostname: str = option("lab.test", help="the host name in the APOP timestamp", metavar="NAME")
    maildir: str | None = option(
        None, help="keep the lab's mail in Maildir directories under DIR (survives restarts)", metavar="DIR")


class Pop3State(enum.Enum):
    """The three states of RFC 1939 §3."""

    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


Handler = Callable[["Pop3Session", tuple[str, ...]], None]


class Pop3Session(Session["Pop3Server"]):
    """One client's POP3 session: its state, its maildrop (a snapshot
    taken at login, its mailbox locked meanwhile) and its marks.

    A long body goes out in parts while the client reads; commands that
    arrive meanwhile wait their turn.
    """

    def __init__(self, server: Pop3Server, conn: Peer) -> None:
        super().__init__(server, conn)
        self.state = Pop3State.AUTHORIZATION
        self.timestamp = ""
        self.user: str | None = None  # named by USER, not yet proven
        self.mailbox: str | None = None  # locked, once in TRANSACTION
        self.messages: list[StoredMessage] = []  # the maildrop as it was at login
        self.deleted: set[int] = set()
        self.errors = 0
        self.verb = ""  # the command being answered
        self._outgoing: Iterator[Message] | None = None  # the rest of a long reply
        self._waiting: deque[Message] = deque()  # commands that came while it was sent
        self._eof = False
        self._done = False  # QUIT answered, or hung up: nothing more is handled
        self.gate = LoginGate(server.services, server.clock, conn)  # password checks wait their turn

    @property
    def store(self) -> MailStore:
        return self.server.store

    # -- the connection ---------------------------------------------------

    def connection_made(self) -> None:
        host = self.server.options.hostname
        self.timestamp = f"<{os.getpid()}.{time.time_ns() // 1000}.{secrets.token_hex(3)}@{host}>"
        self.conn.send(Pop3Reply.of(True, f"netlab POP3 server ready {self.timestamp}"))

    def connection_lost(self) -> None:
        self._outgoing = None
        self._waiting.clear()
        self.gate.cancel()
        if self.mailbox is not None:
            self.store.unlock(self.mailbox, self.conn.id)
            if self.deleted and self.state is Pop3State.TRANSACTION:
                self.conn.note(f"client left without QUIT: {len(self.deleted)} message(s) marked "
                               "for deletion are kept")
            self.mailbox = None

    def protocol_error(self, exc: ProtocolError) -> None:
        try:
            self.conn.send(Pop3Reply.of(False, f"{exc.message}; closing"))
        except LabError:
            pass  # already gone
        self._drop()

    def eof_received(self) -> None:
        self._eof = True  # close once every reply has gone out
        if self._outgoing is None and not self.gate.waiting:
            self.conn.close()

    def message_received(self, msg: Message) -> None:
        if self._outgoing is not None or self._waiting or self.gate.waiting:
            if self.gate.waiting and len(self._waiting) >= MAX_WAITING:
                self.conn.send(Pop3Reply.of(False, "too many commands behind a login, closing"))
                self._drop()
                return
            self._waiting.append(msg)  # the connection reads no more while the client does not
            return
        self._handle(msg)

    def writable(self) -> None:
        self._send_more()

    def _handle(self, msg: Message) -> None:
        if not isinstance(msg, Pop3Command) or self._done:
            return
        self.verb = msg.verb
        if msg.problem:
            self._error(msg.problem)
            return
        handler = self._ANY_STATE.get(msg.verb) or self._BY_STATE[self.state].get(msg.verb)
        if handler is not None:
            handler(self, msg.args)
        elif msg.verb in self._KNOWN:
            hint = "log in with USER and PASS first" if self.state is Pop3State.AUTHORIZATION else \
                "you are logged in already"
            self._error(f"{msg.verb} is not valid in the {self.state.value} state ({hint})")
        else:
            self._error(f"unknown command {msg.verb[:8] or '(empty)'}")

    # -- answering ----------------------------------------------------------

    def _ok(self, text: str, body: bytes | None = None) -> None:
        if body is None:
            self.conn.send(Pop3Reply.of(True, text, reply_to=self.verb))
            return
        self._outgoing = reply_in_parts(text, body, reply_to=self.verb)
        self._send_more()

    def _send_more(self) -> None:
        """Send what is left of a long reply while the client reads; then
        the commands that waited."""
        while self._outgoing is not None:
            if self.conn.write_paused:
                return  # writable() comes back here
            msg = next(self._outgoing, None)
            if msg is None:
                self._outgoing = None
                break
            try:
                self.conn.send(msg)
            except ConnectionClosed:
                self._outgoing = None
                return
        while self._waiting and self._outgoing is None and not self.gate.waiting:
            self._handle(self._waiting.popleft())
        if self._eof and self._outgoing is None and not self.gate.waiting:
            self.conn.close()

    def _error(self, text: str) -> None:
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.conn.send(Pop3Reply.of(False, "too many errors, closing", reply_to=self.verb))
            self._drop()
            return
        self.conn.send(Pop3Reply.of(False, text, reply_to=self.verb))

    def _drop(self) -> None:
        self._done = True
        if self.mailbox is not None:
            self.store.unlock(self.mailbox, self.conn.id)
            self.mailbox = None
        self._waiting.clear()
        self.conn.close()

    # -- any state ------------------------------------------------------------

    def handle_capa(self, args: tuple[str, ...]) -> None:
        """CAPA (RFC 2449): what this server offers."""
        capabilities = ["TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                        "EXPIRE NEVER", "IMPLEMENTATION netlab"]
        self._ok("capability list follows", "\r\n".join(capabilities).encode())

    def handle_quit(self, args: tuple[str, ...]) -> None:
        """QUIT: in TRANSACTION, enter UPDATE and remove what DELE marked."""
        if self.state is Pop3State.TRANSACTION and self.mailbox is not None:
            self.state = Pop3State.UPDATE
            uids = [self.messages[i - 1].uid for i in sorted(self.deleted)]
            try:
                removed = self.store.delete(self.mailbox, uids)
            except OSError as exc:
                self.conn.note(f"deleting failed: {exc}")
                self.conn.send(Pop3Reply.of(False, "[SYS/TEMP] some deleted messages not removed",
                                            reply_to=self.verb))
                self._drop()
                return
            left = len(self.messages) - len(self.deleted)
            if removed:
                self.conn.note(f"deleted {removed} message(s) from {self.mailbox}")
            self._ok(f"netlab POP3 server signing off ({_count(left)} left)")
        else:
            self._ok("netlab POP3 server signing off")
        self._drop()

    # -- AUTHORIZATION ----------------------------------------------------

    def handle_user(self, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error("syntax: USER name")
            return
        self.user = args[0]
        self._ok(f"send PASS for {args[0]}")  # the same answer for every name: no guessing

    def handle_pass(self, args: tuple[str, ...]) -> None:
        if self.user is None:
            self._error("USER first")
            return
        user, self.user = self.user, None

        def check() -> None:
            password = self.server.users.get(user.lower())
            if not args or password is None or not secrets.compare_digest(password.encode(), args[0].encode()):
                self.gate.failed()
                self.conn.note(f"login failed for {user!r}")
                self._error("[AUTH] invalid user name or password")
            else:
                self._login(user.lower())

        self.gate.attempt(check, self._refuse, then=self._send_more)

    def handle_apop(self, args: tuple[str, ...]) -> None:
        """APOP name digest: MD5 of the greeting's timestamp and the password."""
        if len(args) != 2:
            self._error("syntax: APOP name digest")
            return
        user, digest = args[0].lower(), args[1].lower()

        def check() -> None:
            password = self.server.users.get(user)
            expected = hashlib.md5((self.timestamp + (password or "")).encode()).hexdigest()
            if password is None or not secrets.compare_digest(expected, digest):
                self.gate.failed()
                self.conn.note(f"APOP failed for {args[0]!r}")
                self._error("[AUTH] invalid user name or digest")
            else:
                self._login(user)

        self.gate.attempt(check, self._refuse, then=self._send_more)

    def _refuse(self, retry_after: float) -> None:
        # RFC 3206's [LOGIN-DELAY] would promise a delay between logins; this one is per address
        self._error(f"[AUTH] too many failed logins from your address: try again in {retry_after:.0f} s")

    def _login(self, user: str) -> None:
        if not self.store.lock(user, self.conn.id):
            self._error(f"[IN-USE] mailbox {user} is locked by another session")
            return
        self.mailbox, self.state = user, Pop3State.TRANSACTION
        self.messages = self.store.messages(user)
        size = sum(m.size for m in self.messages)
        self.conn.note(f"{user} logged in; mailbox locked")
        self._ok(f"{user} has {_count(len(self.messages))} ({size} octets)")

    # -- TRANSACTION --------------------------------------------------------

    def _number(self, arg: str) -> int | None:
        """A message number that exists and is not deleted, or None after an error reply."""
        if not arg.isdigit() or not 1 <= int(arg) <= len(self.messages):
            self._error(f"no such message: {arg[:10]}")
            return None
        if int(arg) in self.deleted:
            self._error(f"message {int(arg)} already deleted")
            return None
        return int(arg)

    def _live(self) -> list[tuple[int, StoredMessage]]:
        return [(i, m) for i, m in enumerate(self.messages, 1) if i not in self.deleted]

    def handle_stat(self, args: tuple[str, ...]) -> None:
        live = self._live()
        self._ok(f"{len(live)} {sum(m.size for _, m in live)}")

    def handle_list(self, args: tuple[str, ...]) -> None:
        if args:
            n = self._number(args[0])
            if n is not None:
                self._ok(f"{n} {self.messages[n - 1].size}")
            return
        live = self._live()
        self._ok(f"{_count(len(live))} ({sum(m.size for _, m in live)} octets)",
                 "".join(f"{i} {m.size}\r\n" for i, m in live).encode())

    def handle_uidl(self, args: tuple[str, ...]) -> None:
        if args:
            n = self._number(args[0])
            if n is not None:
                self._ok(f"{n} {_uidl(self.messages[n - 1].uid)}")
            return
        self._ok("unique-id listing follows",
                 "".join(f"{i} {_uidl(m.uid)}\r\n" for i, m in self._live()).encode())

    def handle_retr(self, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error("syntax: RETR msg")
            return
        n = self._number(args[0])
        if n is not None:
            msg = self.messages[n - 1]
            self._ok(f"{msg.size} octets", msg.data)

    def handle_top(self, args: tuple[str, ...]) -> None:
        if len(args) != 2 or not args[1].isdigit():
            self._error("syntax: TOP msg lines")
            return
        n = self._number(args[0])
        if n is None:
            return
        data = self.messages[n - 1].data
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = body.split(b"\r\n", int(args[1])) if sep else []
        if len(lines) > int(args[1]):
            lines.pop()  # the rest of the body, unsplit
        elif lines and lines[-1] == b"":
            lines.pop()  # the CRLF ending the last line
        self._ok("top of message follows", head + sep + b"".join(x + b"\r\n" for x in lines))

    def handle_dele(self, args: tuple[str, ...]) -> None:
        if len(args) != 1:
            self._error("syntax: DELE msg")
            return
        n = self._number(args[0])
        if n is not None:
            self.deleted.add(n)
            self._ok(f"message {n} deleted (at QUIT)")

    def handle_noop(self, args: tuple[str, ...]) -> None:
        self._ok("")

    def handle_rset(self, args: tuple[str, ...]) -> None:
        self.deleted.clear()
        live = self._live()
        self._ok(f"maildrop has {_count(len(live))} ({sum(m.size for _, m in live)} octets)")

    _ANY_STATE: ClassVar[dict[str, Handler]] = {"CAPA": handle_capa, "QUIT": handle_quit}
    _BY_STATE: ClassVar[dict[Pop3State, dict[str, Handler]]] = {
        Pop3State.AUTHORIZATION: {"USER": handle_user, "PASS": handle_pass, "APOP": handle_apop},
        Pop3State.TRANSACTION: {
            "STAT": handle_stat, "LIST": handle_list, "RETR": handle_retr, "DELE": handle_dele,
            "NOOP": handle_noop, "RSET": handle_rset, "TOP": handle_top, "UIDL": handle_uidl,
        },
        Pop3State.UPDATE: {},
    }
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {verb for table in _BY_STATE.values() for verb in table} | set(_ANY_STATE))


class Pop3Server(ServerBehaviour[Pop3Options]):
    """Serves the mailboxes of the lab's mail store to their owners: one
    :class:`Pop3Session` per connection.

    Options (:class:`Pop3Options`): ``user`` (NAME=PASSWORD; without any,
    the demo accounts alice/wonderland and bob/builder), ``hostname`` (in
    the APOP timestamp) and ``maildir``.
    """

    session_type = Pop3Session

    def __init__(self, options: Pop3Options) -> None:
        super().__init__(options)
        self.users: dict[str, str] = dict(options.user or DEMO_USERS)
        self._store: MailStore | None = None

    @property
    def store(self) -> MailStore:
        """The lab's mail store (shared with its SMTP servers), attached in :meth:`started`."""
        if self._store is None:
            raise LabError("pop3: the server has not started: its mail store is not attached")
        return self._store

    def started(self) -> None:
        self._store = self.services.attach(MAIL_STORE, self.options.maildir)
