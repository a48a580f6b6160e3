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

Tests: tests/protocols/test_smtp.py, tests/interop/test_smtp_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Option, ProtocolSpec, Transport
from lab.protocols._options import integer
from lab.protocols.smtp._client import SmtpClient, SmtpReplyError
from lab.protocols.smtp._codec import (
    DEFAULT_SIZE,
    MAX_COMMAND_LINE,
    MAX_TEXT_LINE,
    AuthResponse,
    ClientCodec,
    Command,
    Greeting,
    MailData,
    Reply,
    ServerCodec,
    dot_stuff,
    header_fields,
    make_codec,
    parse_command,
)
from lab.protocols.smtp._server import (
    DEFAULT_DOMAINS,
    MAX_RECIPIENTS,
    SmtpServer,
    SmtpState,
    parse_credentials,
    parse_domain,
    parse_path,
    parse_size,
)

__all__ = [
    "DEFAULT_DOMAINS",
    "DEFAULT_SIZE",
    "MAX_COMMAND_LINE",
    "MAX_RECIPIENTS",
    "MAX_TEXT_LINE",
    "SPEC",
    "AuthResponse",
    "ClientCodec",
    "Command",
    "Greeting",
    "MailData",
    "Reply",
    "ServerCodec",
    "SmtpClient",
    "SmtpReplyError",
    "SmtpServer",
    "SmtpState",
    "dot_stuff",
    "header_fields",
    "make_codec",
    "parse_command",
    "parse_credentials",
    "parse_domain",
    "parse_path",
    "parse_size",
]


SPEC = ProtocolSpec(
    name="smtp",
    summary="takes mail for the lab's mailboxes, which POP3 serves",
    rfc="RFC 5321",
    default_port=25,
    transports=(Transport.TCP,),
    codec=make_codec,
    server=SmtpServer,
    client=SmtpClient,
    options=(
        Option(name="domain", help="a domain to take mail for (default: lab.test and localhost)",
               parse=parse_domain, multiple=True, metavar="DOMAIN"),
        Option(name="user", help="an account for AUTH PLAIN/LOGIN (offered only when given)",
               parse=parse_credentials, multiple=True, metavar="NAME=PASSWORD"),
        Option(name="size", help=f"the largest message in bytes, K or M (default {DEFAULT_SIZE // 1048576}M)",
               parse=parse_size, default=DEFAULT_SIZE, metavar="BYTES"),
        Option(name="max_recipients", help=f"recipients per message (default {MAX_RECIPIENTS})",
               parse=integer("smtp: --max-recipients", 1, hint="e.g. --max-recipients 100"),
               default=MAX_RECIPIENTS, metavar="N"),
        Option(name="hostname", help="the name in the greeting and Received lines (default: the first domain)",
               metavar="NAME"),
        Option(name="maildir", help="keep the lab's mail in Maildir directories under DIR (survives restarts)",
               metavar="DIR"),
    ),
    idle_timeout=300.0,  # RFC 5321 §4.5.3.2.7: the server waits 5 minutes for a command
    keywords=("mail", "email", "smtp", "send"),
)
