"""SMTP (RFC 5321): mail submission and transfer, into the lab's mail store.

A client greets the server (``EHLO``), names the sender (``MAIL FROM``)
and the recipients (``RCPT TO``), then sends the message after ``DATA``,
ending it with a line holding a single dot.  The server here takes mail
for any local part at its own domains (``lab.test`` and ``localhost``
unless ``--domain`` says otherwise) and for ``<postmaster>``, refuses to
relay elsewhere, and delivers into the mail store its lab's POP3 servers
read.  Extensions: SIZE (RFC 1870), PIPELINING (RFC 2920), 8BITMIME,
ENHANCEDSTATUSCODES, and AUTH PLAIN/LOGIN (RFC 4954) when ``--user``
gives accounts.

* ``_codec``: commands, replies and the DATA block, sans-IO;
* ``_server``: :class:`SmtpServer`;
* ``_client``: :class:`SmtpClient`, with ``send_mail``.

Tests: tests/protocols/test_smtp.py, tests/protocols/test_smtp_hardening.py,
tests/interop/test_smtp_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.smtp._client import SmtpClient, SmtpReplyError
from lab.protocols.smtp._codec import (
    DEFAULT_SIZE,
    MAX_COMMAND_LINE,
    MAX_TEXT_LINE,
    AuthResponse,
    ClientNext,
    Command,
    MailData,
    MailEnd,
    MailPart,
    Reply,
    SmtpConversation,
    dot_stuff,
    header_fields,
    parse_command,
)
from lab.protocols.smtp._server import (
    DEFAULT_DOMAINS,
    MAX_RECIPIENTS,
    SmtpOptions,
    SmtpServer,
    SmtpSession,
    SmtpState,
    parse_domain,
    parse_path,
)

__all__ = [
    "DEFAULT_DOMAINS",
    "DEFAULT_SIZE",
    "MAX_COMMAND_LINE",
    "MAX_RECIPIENTS",
    "MAX_TEXT_LINE",
    "SPEC",
    "AuthResponse",
    "ClientNext",
    "Command",
    "MailData",
    "MailEnd",
    "MailPart",
    "Reply",
    "SmtpClient",
    "SmtpConversation",
    "SmtpOptions",
    "SmtpReplyError",
    "SmtpServer",
    "SmtpSession",
    "SmtpState",
    "dot_stuff",
    "header_fields",
    "parse_command",
    "parse_domain",
    "parse_path",
]


SPEC = ProtocolSpec(
    name="smtp",
    summary="takes mail for the lab's mailboxes, which POP3 serves",
    rfc="RFC 5321",
    default_port=25,
    transports=(Transport.TCP,),
    conversation=SmtpConversation,
    server=SmtpServer,
    client=SmtpClient,
    options=SmtpOptions,
    idle_timeout=300.0,  # RFC 5321 §4.5.3.2.7: the server waits 5 minutes for a command
    keywords=("mail", "email", "smtp", "send"),
    requests=Requests(lambda msg: b"500 5.5.2 Command not recognized (not in the recording)\r\n"),
)
