"""The SMTP server: RFC 5321 with SIZE (1870), PIPELINING (2920), 8BITMIME
(6152), ENHANCEDSTATUSCODES (2034/3463) and AUTH PLAIN/LOGIN (4954),
delivering into the lab's mail store.

It accepts mail for any local part at its own domains and for
``<postmaster>`` (§4.5.1), refuses to relay anywhere else, and answers
every mistake with the reply code the RFC gives it.

Tests: tests/protocols/test_smtp.py, tests/interop/test_smtp_peers.py
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from lab.errors import ConfigError, LabError
from lab.protocols._base import Message, Peer, ServerBehaviour
from lab.protocols._mailstore import SERVICE, MailStore, mailbox_name, parse_credentials
from lab.protocols._options import size
from lab.protocols.smtp._codec import DEFAULT_SIZE, AuthResponse, Command, Greeting, MailData, Reply

__all__ = [
    "DEFAULT_DOMAINS",
    "SmtpServer",
    "SmtpState",
    "parse_credentials",
    "parse_domain",
    "parse_path",
    "parse_size",
]

DEFAULT_DOMAINS = ("lab.test", "localhost")
MAX_RECIPIENTS = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
MAX_ERRORS = 20  # bad commands before we hang up on a client
MAX_SIZE = 256 * 1024 * 1024  # a message is held in memory while it arrives

_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_LOCAL = rf'(?:{_ATOM}(?:\.{_ATOM})*|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*")'
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[^\[\]\\]+\])"
_MAILBOX = re.compile(rf"({_LOCAL})@({_DOMAIN})")
_PATH = re.compile(r"<(?:@[^:<>]+:)?([^<>]*)>")
_PARAM = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?")


class SmtpState(enum.Enum):
    """Where one SMTP session is (RFC 5321 §3.3)."""

    FRESH = "waiting for HELO/EHLO"
    READY = "ready for MAIL"
    MAIL = "sender given, waiting for RCPT"
    RCPT = "recipients given, waiting for DATA"
    DATA = "reading the message"
    AUTH = "in a SASL exchange"


@dataclass
class _Session:
    state: SmtpState = SmtpState.FRESH
    helo: str = ""
    esmtp: bool = False
    sender: str | None = None
    recipients: list[tuple[str, str]] = field(default_factory=list)  # (address, mailbox)
    user: str | None = None  # authenticated as
    sasl: list[str] = field(default_factory=list)  # mechanism, then what the client said
    errors: int = 0

    def reset(self) -> None:
        self.sender = None
        self.recipients = []
        if self.state in (SmtpState.MAIL, SmtpState.RCPT, SmtpState.DATA):
            self.state = SmtpState.READY


# -- options --------------------------------------------------------------


def parse_domain(text: str) -> str:
    """``--domain lab.test``: a domain this server takes mail for."""
    domain = text.strip().lower().rstrip(".")
    if not re.fullmatch(_DOMAIN, domain):
        raise ConfigError(f"smtp: not a domain name: {text!r}", hint="e.g. --domain example.test")
    return domain


# ``--size 10M``: bytes, with an optional K or M suffix
parse_size = size("smtp: --size", MAX_SIZE, hint="e.g. --size 10M (bytes, K or M; a message is held in memory)")


def parse_path(arg: str, keyword: str) -> tuple[str, list[str]]:
    """``FROM:<a@b> SIZE=10`` -> (``"a@b"``, ``["SIZE=10"]``); ValueError
    with the reply text if the argument is malformed."""
    head, sep, rest = arg.partition(":")
    if not sep or head.strip().upper() != keyword:
        raise ValueError(f"syntax: {keyword}:<address>")
    rest = rest.lstrip(" ")  # some clients put a space after the colon
    m = _PATH.match(rest)
    if m is None:
        raise ValueError("address must be in angle brackets, e.g. <alice@lab.test>")
    params = rest[m.end():].split()
    return m.group(1), params


def _split_address(address: str) -> tuple[str, str] | None:
    m = _MAILBOX.fullmatch(address)
    return (m.group(1), m.group(2).lower()) if m else None


# -- the server -----------------------------------------------------------


class SmtpServer(ServerBehaviour):
    """An SMTP server that delivers into the lab's mail store.

    Options: ``domain`` (default lab.test and localhost), ``user``
    (NAME=PASSWORD pairs: AUTH PLAIN/LOGIN is offered when there are
    any), ``size`` (the SIZE limit), ``max_recipients``, ``hostname``
    (greeting and Received lines) and ``maildir``.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.domains: tuple[str, ...] = tuple(
            parse_domain(d) if isinstance(d, str) else d for d in self.options.get("domain") or DEFAULT_DOMAINS
        )
        self.users: dict[str, str] = dict(
            parse_credentials(u) if isinstance(u, str) else tuple(u) for u in self.options.get("user") or ()
        )
        self.size_limit: int = int(self.options.get("size") or DEFAULT_SIZE)
        self.max_recipients: int = int(self.options.get("max_recipients") or MAX_RECIPIENTS)
        self.hostname: str = self.options.get("hostname") or self.domains[0]
        self.maildir: str | None = self.options.get("maildir")
        self.sessions: dict[str, _Session] = {}
        self._handlers: dict[str, Callable[[Peer, _Session, str], None]] = {
            "HELO": self.handle_helo,
            "EHLO": self.handle_ehlo,
            "MAIL": self.handle_mail,
            "RCPT": self.handle_rcpt,
            "DATA": self.handle_data,
            "RSET": self.handle_rset,
            "NOOP": self.handle_noop,
            "VRFY": self.handle_vrfy,
            "EXPN": self.handle_expn,
            "HELP": self.handle_help,
            "QUIT": self.handle_quit,
            "AUTH": self.handle_auth,
        }

    @property
    def store(self) -> MailStore:
        """The lab's mail store (shared with its POP3 servers)."""
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
            self._reply(conn, 421, f"4.3.0 {self.hostname} mail store unavailable, closing")
            conn.close()
            return
        self.sessions[conn.id] = _Session()
        conn.send(Greeting.of_server(f"{self.hostname} ESMTP netlab ready", self.size_limit))

    def connection_lost(self, conn: Peer) -> None:
        session = self.sessions.pop(conn.id, None)
        if session is not None and session.state is SmtpState.DATA:
            conn.note("client left in the middle of DATA: nothing delivered")

    def protocol_error(self, conn: Peer, exc: Exception) -> None:
        session = self.sessions.get(conn.id)
        why = getattr(exc, "message", str(exc))
        try:
            if session is None:
                pass
            elif "middle of a message" in why:
                conn.note("no message delivered: the client closed before <CRLF>.<CRLF>")
            elif "larger than" in why:
                self._reply(conn, 552, f"5.3.4 {why}; closing")
            else:
                self._reply(conn, 500, f"5.5.2 {why}; closing")
        except LabError:
            pass  # the client is already gone
        self.sessions.pop(conn.id, None)
        conn.close()

    def message_received(self, conn: Peer, msg: Message) -> None:
        session = self.sessions.get(conn.id)
        if session is None:
            return
        if isinstance(msg, MailData):
            self._message(conn, session, msg)
        elif isinstance(msg, AuthResponse):
            self._sasl_step(conn, session, msg.value)
        elif isinstance(msg, Command):
            self._command(conn, session, msg)

    def _reply(self, conn: Peer, code: int, *lines: str) -> None:
        conn.send(Reply.of(code, *lines))

    def _error(self, conn: Peer, session: _Session, code: int, text: str) -> None:
        session.errors += 1
        if session.errors >= MAX_ERRORS:
            self._reply(conn, 421, f"4.7.0 {self.hostname} too many errors, closing")
            conn.close()
            self.sessions.pop(conn.id, None)
            return
        self._reply(conn, code, text)

    def _command(self, conn: Peer, session: _Session, cmd: Command) -> None:
        if cmd.problem:
            self._error(conn, session, 500, f"5.5.2 {cmd.problem}")
            return
        handler = self._handlers.get(cmd.verb)
        if handler is None:
            self._error(conn, session, 500, f"5.5.2 command not recognized: {cmd.verb[:20] or '(empty)'}")
            return
        handler(conn, session, cmd.arg)

    # -- greeting ---------------------------------------------------------

    def handle_helo(self, conn: Peer, session: _Session, arg: str) -> None:
        """HELO domain: plain SMTP, no extensions."""
        if not arg:
            self._error(conn, session, 501, "5.5.4 syntax: HELO hostname")
            return
        session.reset()
        session.helo, session.esmtp, session.state = arg.split()[0], False, SmtpState.READY
        self._reply(conn, 250, f"{self.hostname} greets {session.helo}")

    def handle_ehlo(self, conn: Peer, session: _Session, arg: str) -> None:
        """EHLO domain: the greeting and the extensions offered."""
        if not arg:
            self._error(conn, session, 501, "5.5.4 syntax: EHLO hostname")
            return
        session.reset()
        session.helo, session.esmtp, session.state = arg.split()[0], True, SmtpState.READY
        lines = [f"{self.hostname} greets {session.helo}", "PIPELINING", f"SIZE {self.size_limit}",
                 "8BITMIME", "ENHANCEDSTATUSCODES"]
        if self.users:
            lines.append("AUTH PLAIN LOGIN")
        lines.append("HELP")
        self._reply(conn, 250, *lines)

    # -- the mail transaction ------------------------------------------------

    def handle_mail(self, conn: Peer, session: _Session, arg: str) -> None:
        """MAIL FROM:<reverse-path> [SIZE=n] [BODY=7BIT|8BITMIME] [AUTH=...]"""
        if session.state is SmtpState.FRESH:
            self._error(conn, session, 503, "5.5.1 send HELO or EHLO first")
            return
        if session.state is not SmtpState.READY:
            self._error(conn, session, 503, "5.5.1 sender already given (RSET to start over)")
            return
        try:
            address, params = parse_path(arg, "FROM")
        except ValueError as exc:
            self._error(conn, session, 501, f"5.5.4 {exc}")
            return
        if address and _split_address(address) is None:
            self._error(conn, session, 553, f"5.1.7 bad sender address <{address}>")
            return
        for param in params:
            m = _PARAM.fullmatch(param)
            name, value = (m.group(1).upper(), m.group(2)) if m else ("", None)
            if not session.esmtp or not m or name not in ("SIZE", "BODY", "AUTH"):
                self._error(conn, session, 555, f"5.5.4 parameter not recognized: {param[:40]}")
                return
            if name == "SIZE":
                if value is None or not value.isdigit():
                    self._error(conn, session, 501, "5.5.4 SIZE wants a number of octets")
                    return
                if int(value) > self.size_limit:
                    self._error(conn, session, 552,
                                f"5.3.4 message size exceeds fixed maximum message size ({self.size_limit})")
                    return
            if name == "BODY" and (value or "").upper() not in ("7BIT", "8BITMIME"):
                self._error(conn, session, 501, "5.5.4 BODY is 7BIT or 8BITMIME")
                return
        session.sender, session.recipients, session.state = address, [], SmtpState.MAIL
        self._reply(conn, 250, f"2.1.0 sender <{address}> ok")

    def _local_mailbox(self, address: str) -> tuple[str | None, tuple[int, str]]:
        """The mailbox for ``address``, or None and the refusal."""
        if address.lower() == "postmaster":
            return "postmaster", (0, "")
        parts = _split_address(address)
        if parts is None:
            return None, (501, f"5.1.3 bad recipient address <{address}>")
        local, domain = parts
        if domain not in self.domains:
            return None, (550, f"5.7.1 relaying denied: {self.hostname} only takes mail for "
                               f"{', '.join(self.domains)}")
        try:
            return mailbox_name(local.strip('"')), (0, "")
        except ConfigError:
            return None, (550, f"5.1.1 no mailbox can be named {local!r}")

    def handle_rcpt(self, conn: Peer, session: _Session, arg: str) -> None:
        """RCPT TO:<forward-path>: a local recipient, or <postmaster>."""
        if session.state not in (SmtpState.MAIL, SmtpState.RCPT):
            self._error(conn, session, 503, "5.5.1 need MAIL before RCPT")
            return
        try:
            address, params = parse_path(arg, "TO")
        except ValueError as exc:
            self._error(conn, session, 501, f"5.5.4 {exc}")
            return
        if params:
            self._error(conn, session, 555, f"5.5.4 parameter not recognized: {params[0][:40]}")
            return
        if len(session.recipients) >= self.max_recipients:
            self._error(conn, session, 452, f"4.5.3 too many recipients (at most {self.max_recipients})")
            return
        mailbox, (code, text) = self._local_mailbox(address)
        if mailbox is None:
            self._error(conn, session, code, text)
            return
        session.recipients.append((address, mailbox))
        session.state = SmtpState.RCPT
        self._reply(conn, 250, f"2.1.5 recipient <{address}> ok")

    def handle_data(self, conn: Peer, session: _Session, arg: str) -> None:
        """DATA: 354, then the codec gathers the message up to <CRLF>.<CRLF>."""
        if arg:
            self._error(conn, session, 501, "5.5.4 DATA takes no argument")
        elif session.state is SmtpState.MAIL:
            self._error(conn, session, 554, "5.5.1 no valid recipients")
        elif session.state is not SmtpState.RCPT:
            self._error(conn, session, 503, "5.5.1 need MAIL and RCPT before DATA")
        else:
            session.state = SmtpState.DATA
            self._reply(conn, 354, "start mail input; end with <CRLF>.<CRLF>")

    def _message(self, conn: Peer, session: _Session, msg: MailData) -> None:
        if session.state is not SmtpState.DATA:
            return  # a block we did not ask for (a hook answered DATA): ignore it
        sender, recipients = session.sender or "", session.recipients
        session.reset()
        content = msg.content
        if msg.problem:
            self._reply(conn, 554 if "NUL" in msg.problem else 500,
                        f"5.6.0 message refused: it has {msg.problem}" if "NUL" in msg.problem
                        else f"5.5.2 message refused: it has {msg.problem}")
            return
        if len(content) > self.size_limit:
            self._reply(conn, 552, f"5.3.4 message size exceeds fixed maximum message size ({self.size_limit})")
            return
        queue_id = secrets.token_hex(5).upper()
        with_ = ("ESMTPA" if session.user else "ESMTP") if session.esmtp else "SMTP"
        peer = conn.peer[0] if conn.peer else "unknown"
        for_ = f"\r\n\tfor <{recipients[0][0]}>" if len(recipients) == 1 else ""
        trace = (f"Return-Path: <{sender}>\r\n"
                 f"Received: from {session.helo} ([{peer}])\r\n\tby {self.hostname} (netlab) with {with_}"
                 f" id {queue_id}{for_};\r\n\t{formatdate(localtime=False)}\r\n").encode("ascii", "replace")
        try:
            self.store.deliver([mailbox for _, mailbox in recipients], trace + content)
        except (OSError, LabError) as exc:
            conn.note(f"delivery failed: {exc}")
            self._reply(conn, 451, "4.3.0 local error in processing, try again later")
            return
        conn.note(f"delivered {len(content)} bytes from <{sender}> to "
                  + ", ".join(sorted({m for _, m in recipients})) + f" (queue id {queue_id})")
        self._reply(conn, 250, f"2.0.0 OK queued as {queue_id}")

    def handle_rset(self, conn: Peer, session: _Session, arg: str) -> None:
        """RSET: forget the transaction in progress."""
        session.reset()
        self._reply(conn, 250, "2.0.0 OK")

    def handle_noop(self, conn: Peer, session: _Session, arg: str) -> None:
        self._reply(conn, 250, "2.0.0 OK")

    def handle_vrfy(self, conn: Peer, session: _Session, arg: str) -> None:
        """VRFY: 250 for a mailbox that has mail, 252 for other local names."""
        if not arg:
            self._error(conn, session, 501, "5.5.4 syntax: VRFY name")
            return
        address = arg.strip("<>")
        local = address if "@" not in address else None
        mailbox, (code, text) = self._local_mailbox(address if local is None else f"{local}@{self.domains[0]}")
        if mailbox is None:
            self._error(conn, session, code, text)
        elif mailbox in self.store.names():
            self._reply(conn, 250, f"2.1.5 <{mailbox}@{self.domains[0]}>")
        else:
            self._reply(conn, 252, "2.1.5 cannot VRFY user, but will accept message for it")

    def handle_expn(self, conn: Peer, session: _Session, arg: str) -> None:
        self._error(conn, session, 502, "5.5.1 EXPN not offered: this server has no lists")

    def handle_help(self, conn: Peer, session: _Session, arg: str) -> None:
        self._reply(conn, 214, "2.0.0 commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT"
                    + (" AUTH" if self.users else ""))

    def handle_quit(self, conn: Peer, session: _Session, arg: str) -> None:
        self._reply(conn, 221, f"2.0.0 {self.hostname} closing connection")
        self.sessions.pop(conn.id, None)
        conn.close()

    # -- AUTH (RFC 4954) ---------------------------------------------------

    def handle_auth(self, conn: Peer, session: _Session, arg: str) -> None:
        """AUTH PLAIN [initial] or AUTH LOGIN [initial]."""
        if not self.users:
            self._error(conn, session, 502, "5.5.1 AUTH not offered (no --user configured)")
            return
        if not session.esmtp:
            self._error(conn, session, 503, "5.5.1 send EHLO first")
            return
        if session.user is not None:
            self._error(conn, session, 503, "5.5.1 already authenticated")
            return
        if session.state is not SmtpState.READY:
            self._error(conn, session, 503, "5.5.1 AUTH not allowed during a mail transaction")
            return
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech not in ("PLAIN", "LOGIN"):
            self._error(conn, session, 504, f"5.5.4 mechanism {mech[:20]!r} not offered (PLAIN, LOGIN)")
            return
        session.sasl = [mech]
        session.state = SmtpState.AUTH
        if initial.strip():
            self._sasl_step(conn, session, initial.strip())
        else:
            self._reply(conn, 334, "" if mech == "PLAIN" else base64.b64encode(b"Username:").decode())

    def _sasl_step(self, conn: Peer, session: _Session, value: str) -> None:
        if session.state is not SmtpState.AUTH:
            return
        if value == "*":
            self._end_sasl(session)
            self._error(conn, session, 501, "5.0.0 authentication cancelled")
            return
        try:
            data = base64.b64decode(value, validate=True) if value != "=" else b""
        except (binascii.Error, ValueError):
            self._end_sasl(session)
            self._error(conn, session, 501, "5.5.2 cannot decode the response (base64 expected)")
            return
        mech, said = session.sasl[0], session.sasl[1:]
        if mech == "LOGIN" and not said:
            session.sasl.append(data.decode("utf-8", "replace"))
            self._reply(conn, 334, base64.b64encode(b"Password:").decode())
            return
        if mech == "LOGIN":
            user, password = said[0], data.decode("utf-8", "replace")
        else:
            parts = data.split(b"\x00")
            if len(parts) != 3:
                self._end_sasl(session)
                self._error(conn, session, 501, "5.5.2 PLAIN wants authzid NUL authcid NUL password")
                return
            user, password = parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
        self._end_sasl(session)
        if self.users.get(user.lower()) is not None and secrets.compare_digest(
                self.users[user.lower()].encode(), password.encode()):
            session.user = user.lower()
            conn.note(f"authenticated as {session.user} ({mech})")
            self._reply(conn, 235, "2.7.0 authentication successful")
        else:
            conn.note(f"authentication failed for {user!r} ({mech})")
            self._error(conn, session, 535, "5.7.8 authentication credentials invalid")

    def _end_sasl(self, session: _Session) -> None:
        session.sasl = []
        session.state = SmtpState.READY

