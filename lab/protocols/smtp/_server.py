"""The SMTP server: RFC 5321 with SIZE (1870), PIPELINING (2920), 8BITMIME
(6152), ENHANCEDSTATUSCODES (2034/3463) and AUTH PLAIN/LOGIN (4954),
delivering into the lab's mail store.

It accepts mail for any local part at its own domains and for
``<postmaster>`` (§4.5.1), refuses to relay anywhere else, and answers
every mistake with the reply code the RFC gives it.

Tests: tests/protocols/test_smtp.py, tests/protocols/test_smtp_hardening.py,
tests/interop/test_smtp_peers.py
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from lab.errors import ConfigError, LabError, ProtocolError
from lab.protocols._base import Message
from lab.protocols._login import LoginGate
from lab.protocols._options import Options, format_size, integer, option, size, yes_no
from lab.protocols._session import ServerBehaviour, Session
from lab.protocols.smtp._codec import (
    DEFAULT_SIZE,
    AuthResponse,
    Command,
    MailData,
    MailEnd,
    MailPart,
    Reply,
    has_bare_lf,
)
from lab.services.mail import MAIL_STORE, MailStore, mailbox_name, parse_account

__all__ = [
    "DEFAULT_DOMAINS",
    "SmtpOptions",
    "SmtpServer",
    "SmtpSession",
    "SmtpState",
    "parse_domain",
    "parse_path",
]

DEFAULT_DOMAINS = ("lab.test", "localhost")
MAX_RECIPIENTS = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
MAX_ERRORS = 20  # bad commands before we hang up on a client
MAX_BEHIND_LOGIN = 64  # commands pipelined behind an AUTH that waits its turn
MAX_SIZE = 256 * 1024 * 1024  # a message is held in memory until it is delivered

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


# -- options --------------------------------------------------------------


def parse_domain(text: str) -> str:
    """``--domain lab.test``: a domain this server takes mail for."""
    domain = text.strip().lower().rstrip(".")
    if not re.fullmatch(_DOMAIN, domain):
        raise ValueError(f"wants a domain name, got {text!r}")
    return domain


@dataclass(frozen=True, kw_only=True)
class SmtpOptions(Options):
    """The SMTP server's options."""

    domain: tuple[str, ...] = option(DEFAULT_DOMAINS, help="a domain to take mail for", parse=parse_domain,
                                     multiple=True, metavar="DOMAIN", example="example.test",
                                     show_default="lab.test and localhost")
    user: tuple[tuple[str, str], ...] = option(help="an account for AUTH PLAIN/LOGIN (offered only when given)",
                                               parse=parse_account, multiple=True, metavar="NAME=PASSWORD",
                                               example="alice=wonderland")
    size: int = option(DEFAULT_SIZE, help="the largest message in bytes, K or M; it is held in memory until delivered",
                       parse=size(MAX_SIZE), metavar="BYTES", example="10M", show_default="10M")
    max_recipients: int = option(MAX_RECIPIENTS, help="recipients per message", parse=integer(1),
                                 metavar="N", example="100")
    hostname: str | None = option(help="the name in the greeting and Received lines (default: the first domain)",
                                  metavar="NAME")
    maildir: str | None = option(help="keep the lab's mail in Maildir directories under DIR (survives restarts)",
                                 metavar="DIR")
    accept_8bitmime: bool = option(True, help="offer 8BITMIME and take 8-bit messages (RFC 6152); no: a 7-bit "
                                        "server, which refuses BODY= and messages with 8-bit bytes",
                                   parse=yes_no(), metavar="yes|no", example="no")
    accept_bare_lf: bool = option(False, help="take command and message lines ending in a bare LF (as CRLF); by "
                                              "default they are refused, as Postfix's smtpd_forbid_bare_newline does",
                                  flag=True)


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


class SmtpSession(Session["SmtpServer"]):
    """One SMTP client's session (RFC 5321 §3.3): its state, its
    transaction, and a handler per command."""

    def __init__(self, server: SmtpServer, conn: Any) -> None:
        super().__init__(server, conn)
        self.state = SmtpState.FRESH
        self.helo = ""
        self.esmtp = False
        self.sender: str | None = None
        self.recipients: list[tuple[str, str]] = []  # (address, mailbox)
        self.user: str | None = None  # authenticated as
        self.sasl: list[str] = []  # mechanism, then what the client said
        self.errors = 0
        self.gone = False
        self._parts: list[bytes] | None = None  # a message arriving in parts
        self._parts_size = 0
        self._parts_bare_lf = self._parts_8bit = False
        self.gate = LoginGate(server.services, server.clock, conn)  # AUTH checks wait their turn
        self._behind_login: deque[Message] = deque()
        self._handlers: dict[str, Callable[[str], None]] = {
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

    def reset(self) -> None:
        """Forget the mail transaction (RSET, a new EHLO, a delivered message)."""
        self.sender = None
        self.recipients = []
        self._parts, self._parts_size = None, 0
        self._parts_bare_lf = self._parts_8bit = False
        if self.state in (SmtpState.MAIL, SmtpState.RCPT, SmtpState.DATA):
            self.state = SmtpState.READY

    # -- the connection ---------------------------------------------------

    def connection_made(self) -> None:
        server = self.server
        try:
            server.store  # noqa: B018 -- a store that cannot be used is said at once
        except LabError as exc:
            self.conn.note(f"mail store unusable: {exc}")
            self._reply(421, f"4.3.0 {server.hostname} mail store unavailable, closing")
            self._hang_up()
            return
        self._reply(220, f"{server.hostname} ESMTP netlab ready")

    def connection_lost(self) -> None:
        self.gate.cancel()
        self._behind_login.clear()
        if not self.gone and self.state is SmtpState.DATA:
            self.conn.note("client left in the middle of DATA: nothing delivered")
        self.gone = True

    def protocol_error(self, exc: ProtocolError) -> None:
        why = exc.message
        try:
            if self.gone:
                pass
            elif "ended inside a message" in why:
                self.conn.note("no message delivered: the client closed before <CRLF>.<CRLF>")
            else:
                self._reply(500, f"5.5.2 {why}; closing")
        except LabError:
            pass  # the client is already gone
        self._hang_up()

    def message_received(self, msg: Message) -> None:
        if self.gone:
            return
        if self.gate.waiting or self._behind_login:
            self._wait_for_login(msg)
        else:
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, Command):
            self._command(msg)
        elif isinstance(msg, MailData):
            self._message(msg.content, msg.problem)
        elif isinstance(msg, MailPart):
            self._message_part(msg)
        elif isinstance(msg, MailEnd):
            self._message_end(msg)
        elif isinstance(msg, AuthResponse):
            self._sasl_step(msg.value)

    def _reply(self, code: int, *lines: str) -> None:
        self.conn.send(Reply.of(code, *lines))

    def _hang_up(self) -> None:
        self.gone = True
        self.conn.close()

    def _error(self, code: int, text: str) -> None:
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self._reply(421, f"4.7.0 {self.server.hostname} too many errors, closing")
            self._hang_up()
            return
        self._reply(code, text)

    def _command(self, cmd: Command) -> None:
        if cmd.bare_lf and not self.server.options.accept_bare_lf:
            # RFC 5321 §2.3.8: only CRLF ends a line; Postfix refuses these too (smtpd_forbid_bare_newline)
            self._error(500, "5.5.2 bare <LF> received: end command lines with <CR><LF> (RFC 5321 section 2.3.8)")
            return
        if cmd.problem:
            self._error(500, f"5.5.2 {cmd.problem}")
            return
        handler = self._handlers.get(cmd.verb)
        if handler is None:
            self._error(500, f"5.5.2 command not recognized: {cmd.verb[:20] or '(empty)'}")
            return
        handler(cmd.arg)

    # -- greeting ---------------------------------------------------------

    def handle_helo(self, arg: str) -> None:
        """HELO domain: plain SMTP, no extensions."""
        if not arg:
            self._error(501, "5.5.4 syntax: HELO hostname")
            return
        self.reset()
        self.helo, self.esmtp, self.state = arg.split()[0], False, SmtpState.READY
        self._reply(250, f"{self.server.hostname} greets {self.helo}")

    def handle_ehlo(self, arg: str) -> None:
        """EHLO domain: the greeting and the extensions offered."""
        if not arg:
            self._error(501, "5.5.4 syntax: EHLO hostname")
            return
        self.reset()
        self.helo, self.esmtp, self.state = arg.split()[0], True, SmtpState.READY
        server = self.server
        lines = [f"{server.hostname} greets {self.helo}", "PIPELINING", f"SIZE {server.size_limit}"]
        if server.options.accept_8bitmime:
            lines.append("8BITMIME")
        lines.append("ENHANCEDSTATUSCODES")
        if server.users:
            lines.append("AUTH PLAIN LOGIN")
        lines.append("HELP")
        self._reply(250, *lines)

    # -- the mail transaction ------------------------------------------------

    def handle_mail(self, arg: str) -> None:
        """MAIL FROM:<reverse-path> [SIZE=n] [BODY=7BIT|8BITMIME] [AUTH=...]"""
        if self.state is SmtpState.FRESH:
            self._error(503, "5.5.1 send HELO or EHLO first")
            return
        if self.state is not SmtpState.READY:
            self._error(503, "5.5.1 sender already given (RSET to start over)")
            return
        try:
            address, params = parse_path(arg, "FROM")
        except ValueError as exc:
            self._error(501, f"5.5.4 {exc}")
            return
        if address and _split_address(address) is None:
            self._error(553, f"5.1.7 bad sender address <{address}>")
            return
        limit = self.server.size_limit
        for param in params:
            m = _PARAM.fullmatch(param)
            name, value = (m.group(1).upper(), m.group(2)) if m else ("", None)
            if not self.esmtp or not m or name not in ("SIZE", "BODY", "AUTH"):
                self._error(555, f"5.5.4 parameter not recognized: {param[:40]}")
                return
            if name == "SIZE":
                if value is None or not value.isdigit():
                    self._error(501, "5.5.4 SIZE wants a number of octets")
                    return
                if int(value) > limit:
                    # RFC 1870 §6: refused up front, before a byte of the message is sent
                    self.conn.note(f"refused a {value}-byte message announced by SIZE: over the size limit "
                                   f"({format_size(limit)})")
                    self._error(552, f"5.3.4 message size exceeds fixed maximum message size ({limit})")
                    return
            if name == "BODY" and not self.server.options.accept_8bitmime:
                self._error(555, "5.5.4 BODY= not recognized: 8BITMIME is not offered")
                return
            if name == "BODY" and (value or "").upper() not in ("7BIT", "8BITMIME"):
                self._error(501, "5.5.4 BODY is 7BIT or 8BITMIME")
                return
        self.sender, self.recipients, self.state = address, [], SmtpState.MAIL
        self._reply(250, f"2.1.0 sender <{address}> ok")

    def _local_mailbox(self, address: str) -> tuple[str | None, tuple[int, str]]:
        """The mailbox for ``address``, or None and the refusal."""
        if address.lower() == "postmaster":
            return "postmaster", (0, "")
        parts = _split_address(address)
        if parts is None:
            return None, (501, f"5.1.3 bad recipient address <{address}>")
        local, domain = parts
        server = self.server
        if domain not in server.domains:
            return None, (550, f"5.7.1 relaying denied: {server.hostname} only takes mail for "
                               f"{', '.join(server.domains)}")
        try:
            return mailbox_name(local.strip('"')), (0, "")
        except ConfigError:
            return None, (550, f"5.1.1 no mailbox can be named {local!r}")

    def handle_rcpt(self, arg: str) -> None:
        """RCPT TO:<forward-path>: a local recipient, or <postmaster>."""
        if self.state not in (SmtpState.MAIL, SmtpState.RCPT):
            self._error(503, "5.5.1 need MAIL before RCPT")
            return
        try:
            address, params = parse_path(arg, "TO")
        except ValueError as exc:
            self._error(501, f"5.5.4 {exc}")
            return
        if params:
            self._error(555, f"5.5.4 parameter not recognized: {params[0][:40]}")
            return
        if len(self.recipients) >= self.server.max_recipients:
            self._error(452, f"4.5.3 too many recipients (at most {self.server.max_recipients})")
            return
        mailbox, (code, text) = self._local_mailbox(address)
        if mailbox is None:
            self._error(code, text)
            return
        self.recipients.append((address, mailbox))
        self.state = SmtpState.RCPT
        self._reply(250, f"2.1.5 recipient <{address}> ok")

    def handle_data(self, arg: str) -> None:
        """DATA: 354, then the message up to <CRLF>.<CRLF>."""
        if arg:
            self._error(501, "5.5.4 DATA takes no argument")
        elif self.state is SmtpState.MAIL:
            self._error(554, "5.5.1 no valid recipients")
        elif self.state is not SmtpState.RCPT:
            self._error(503, "5.5.1 need MAIL and RCPT before DATA")
        else:
            self.state = SmtpState.DATA
            self._reply(354, "start mail input; end with <CRLF>.<CRLF>")

    def _message_part(self, part: MailPart) -> None:
        if self.state is not SmtpState.DATA:
            return  # a block we did not ask for (a hook answered DATA)
        if self._parts is None:
            self._parts, self._parts_size = [], 0
        self._parts_size += len(part.content)
        # parts end at a CRLF, so a bare LF is never split between two of them
        self._parts_bare_lf = self._parts_bare_lf or has_bare_lf(part.content)
        self._parts_8bit = self._parts_8bit or not part.content.isascii()
        if self._parts_size <= self.server.size_limit:
            self._parts.append(part.content)
        else:
            self._parts.clear()  # too large: kept no longer, refused at the end

    def _message_end(self, end: MailEnd) -> None:
        parts, size = self._parts or [], self._parts_size
        bare_lf, eight_bit = self._parts_bare_lf, self._parts_8bit
        self._parts, self._parts_size = None, 0
        self._parts_bare_lf = self._parts_8bit = False
        if size > self.server.size_limit:
            self._message(b"", end.problem, too_large=size)
        else:
            self._message(b"".join(parts), end.problem, bare_lf=bare_lf, eight_bit=eight_bit)

    def _message(self, content: bytes, problem: str, *, too_large: int = 0, bare_lf: bool | None = None,
                 eight_bit: bool | None = None) -> None:
        if self.state is not SmtpState.DATA:
            return  # a block we did not ask for (a hook answered DATA): ignore it
        server = self.server
        options = server.options
        sender, recipients = self.sender or "", self.recipients
        self.reset()
        too_large = too_large or (len(content) if len(content) > server.size_limit else 0)
        if too_large:
            # RFC 5321 §4.5.3.1.10, RFC 1870 §6: read to the end, refuse it, and the session goes on
            self.conn.note(f"refused a {too_large}-byte message: over the size limit "
                           f"({format_size(server.size_limit)}); nothing delivered, the session goes on")
            self._reply(552, f"5.3.4 message size exceeds fixed maximum message size ({server.size_limit})")
            return
        if problem:
            self._reply(554 if "NUL" in problem else 500,
                        f"5.6.0 message refused: it has {problem}" if "NUL" in problem
                        else f"5.5.2 message refused: it has {problem}")
            return
        if bare_lf is None:
            bare_lf = has_bare_lf(content)
        if bare_lf:
            if not options.accept_bare_lf:
                self._reply(554, "5.5.2 message refused: bare <LF> received: end its lines with <CR><LF> "
                                 "(RFC 5321 section 2.3.8)")
                return
            content = _normalize_bare_lf(content)
        if not options.accept_8bitmime and (not content.isascii() if eight_bit is None else eight_bit):
            self._reply(554, "5.6.1 message refused: it has 8-bit bytes and 8BITMIME is not offered (RFC 6152)")
            return
        queue_id = secrets.token_hex(5).upper()
        with_ = ("ESMTPA" if self.user else "ESMTP") if self.esmtp else "SMTP"
        peer = self.conn.peer[0] if self.conn.peer else "unknown"
        for_ = f"\r\n\tfor <{recipients[0][0]}>" if len(recipients) == 1 else ""
        trace = (f"Return-Path: <{sender}>\r\n"
                 f"Received: from {self.helo} ([{peer}])\r\n\tby {server.hostname} (netlab) with {with_}"
                 f" id {queue_id}{for_};\r\n\t{formatdate(localtime=False)}\r\n").encode("ascii", "replace")
        try:
            server.store.deliver([mailbox for _, mailbox in recipients], trace + content)
        except (OSError, LabError) as exc:
            self.conn.note(f"delivery failed: {exc}")
            self._reply(451, "4.3.0 local error in processing, try again later")
            return
        self.conn.note(f"delivered {len(content)} bytes from <{sender}> to "
                       + ", ".join(sorted({m for _, m in recipients})) + f" (queue id {queue_id})")
        self._reply(250, f"2.0.0 OK queued as {queue_id}")

    def handle_rset(self, arg: str) -> None:
        """RSET: forget the transaction in progress."""
        self.reset()
        self._reply(250, "2.0.0 OK")

    def handle_noop(self, arg: str) -> None:
        self._reply(250, "2.0.0 OK")

    def handle_vrfy(self, arg: str) -> None:
        """VRFY: 250 for a mailbox that has mail, 252 for other local names."""
        if not arg:
            self._error(501, "5.5.4 syntax: VRFY name")
            return
        domains = self.server.domains
        address = arg.strip("<>")
        local = address if "@" not in address else None
        mailbox, (code, text) = self._local_mailbox(address if local is None else f"{local}@{domains[0]}")
        if mailbox is None:
            self._error(code, text)
        elif mailbox in self.server.store.names():
            self._reply(250, f"2.1.5 <{mailbox}@{domains[0]}>")
        else:
            self._reply(252, "2.1.5 cannot VRFY user, but will accept message for it")

    def handle_expn(self, arg: str) -> None:
        self._error(502, "5.5.1 EXPN not offered: this server has no lists")

    def handle_help(self, arg: str) -> None:
        self._reply(214, "2.0.0 commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT"
                    + (" AUTH" if self.server.users else ""))

    def handle_quit(self, arg: str) -> None:
        self._reply(221, f"2.0.0 {self.server.hostname} closing connection")
        self._hang_up()

    # -- AUTH (RFC 4954) ---------------------------------------------------

    def handle_auth(self, arg: str) -> None:
        """AUTH PLAIN [initial] or AUTH LOGIN [initial]."""
        if not self.server.users:
            self._error(502, "5.5.1 AUTH not offered (no --user configured)")
            return
        if not self.esmtp:
            self._error(503, "5.5.1 send EHLO first")
            return
        if self.user is not None:
            self._error(503, "5.5.1 already authenticated")
            return
        if self.state is not SmtpState.READY:
            self._error(503, "5.5.1 AUTH not allowed during a mail transaction")
            return
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech not in ("PLAIN", "LOGIN"):
            self._error(504, f"5.5.4 mechanism {mech[:20]!r} not offered (PLAIN, LOGIN)")
            return
        self.sasl = [mech]
        self.state = SmtpState.AUTH
        if initial.strip():
            self._sasl_step(initial.strip())
        else:
            self._reply(334, "" if mech == "PLAIN" else base64.b64encode(b"Username:").decode())

    def _sasl_step(self, value: str) -> None:
        if self.state is not SmtpState.AUTH:
            return
        if value == "*":
            self._end_sasl()
            self._error(501, "5.0.0 authentication cancelled")
            return
        try:
            data = base64.b64decode(value, validate=True) if value != "=" else b""
        except (binascii.Error, ValueError):
            self._end_sasl()
            self._error(501, "5.5.2 cannot decode the response (base64 expected)")
            return
        mech, said = self.sasl[0], self.sasl[1:]
        if mech == "LOGIN" and not said:
            self.sasl.append(data.decode("utf-8", "replace"))
            self._reply(334, base64.b64encode(b"Password:").decode())
            return
        if mech == "LOGIN":
            user, password = said[0], data.decode("utf-8", "replace")
        else:
            parts = data.split(b"\x00")
            if len(parts) != 3:
                self._end_sasl()
                self._error(501, "5.5.2 PLAIN wants authzid NUL authcid NUL password")
                return
            user, password = parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
        self._end_sasl()

        def check() -> None:
            users = self.server.users
            if users.get(user.lower()) is not None and secrets.compare_digest(
                    users[user.lower()].encode(), password.encode()):
                self.user = user.lower()
                self.conn.note(f"authenticated as {self.user} ({mech})")
                self._reply(235, "2.7.0 authentication successful")
            else:
                self.gate.failed()
                self.conn.note(f"authentication failed for {user!r} ({mech})")
                self._error(535, "5.7.8 authentication credentials invalid")

        self.gate.attempt(check, self._refuse_auth, then=self._after_login)

    def _refuse_auth(self, retry_after: float) -> None:
        self._error(454, f"4.7.0 too many failed logins from your address: try again in {retry_after:.0f} s")

    def _wait_for_login(self, msg: Message) -> None:
        # the client pipelined past an AUTH that waits its turn: keep its order
        if len(self._behind_login) >= MAX_BEHIND_LOGIN:
            self._reply(421, f"4.7.0 {self.server.hostname} too many commands behind AUTH, closing")
            self._hang_up()
            return
        self._behind_login.append(msg)

    def _after_login(self) -> None:
        while self._behind_login and not self.gate.waiting and not self.gone:
            self._dispatch(self._behind_login.popleft())
        if self.gone:
            self._behind_login.clear()

    def _end_sasl(self) -> None:
        self.sasl = []
        self.state = SmtpState.READY


def _normalize_bare_lf(content: bytes) -> bytes:
    """Each LF not after a CR as CRLF, as Postfix's ``normalize`` does."""
    return content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class SmtpServer(ServerBehaviour[SmtpOptions]):
    """An SMTP server that delivers into the lab's mail store; one
    :class:`SmtpSession` per connection.

    Options: ``domain`` (default lab.test and localhost), ``user``
    (NAME=PASSWORD pairs: AUTH PLAIN/LOGIN is offered when there are
    any), ``size`` (the SIZE limit), ``max_recipients``, ``hostname``
    (greeting and Received lines), ``maildir``, ``accept_8bitmime``
    (offer 8BITMIME; default yes) and ``accept_bare_lf`` (take lines
    ending in a bare LF; default no).
    """

    session_type = SmtpSession

    def __init__(self, options: SmtpOptions) -> None:
        super().__init__(options)
        self.domains: tuple[str, ...] = options.domain or DEFAULT_DOMAINS
        self.users: dict[str, str] = dict(options.user)
        self.size_limit: int = options.size
        self.max_recipients: int = options.max_recipients
        self.hostname: str = options.hostname or self.domains[0]
        self._store: MailStore | None = None

    def started(self) -> None:
        # attach a Maildir now: a conflict with another server is refused at once
        self._store = self.services.attach(MAIL_STORE, self.options.maildir)

    @property
    def store(self) -> MailStore:
        """The lab's mail store (shared with its POP3 servers)."""
        if self._store is None:
            self._store = self.services.attach(MAIL_STORE, self.options.maildir)
        return self._store
