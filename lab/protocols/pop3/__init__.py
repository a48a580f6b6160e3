"""POP3 (RFC 1939): a mail client fetches its messages from a maildrop.

The client logs in (``USER``/``PASS``, or ``APOP``), lists (``STAT``,
``LIST``, ``UIDL``), reads (``RETR``, ``TOP``) and marks messages for
deletion (``DELE``); only ``QUIT`` makes the deletions happen.  The
server here reads the lab's mail store, the one its SMTP servers deliver
into, and locks a mailbox while a session has it.  CAPA and response
codes come from RFC 2449.

* ``_codec``: commands and responses, sans-IO;
* ``_server``: :class:`Pop3Server`;
* ``_client``: :class:`Pop3Client`.

Tests: tests/protocols/test_pop3.py, tests/interop/test_pop3_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Option, ProtocolSpec, Transport
from lab.protocols.pop3._client import Pop3Client, Pop3ReplyError
from lab.protocols.pop3._codec import (
    MAX_COMMAND_LINE,
    MAX_LINE,
    ClientCodec,
    Pop3Command,
    Pop3Reply,
    ServerCodec,
    make_codec,
    parse_command,
    wants_body,
)
from lab.protocols.pop3._server import DEMO_USERS, Pop3Server, Pop3State, parse_credentials

__all__ = [
    "DEMO_USERS",
    "MAX_COMMAND_LINE",
    "MAX_LINE",
    "SPEC",
    "ClientCodec",
    "Pop3Client",
    "Pop3Command",
    "Pop3Reply",
    "Pop3ReplyError",
    "Pop3Server",
    "Pop3State",
    "ServerCodec",
    "make_codec",
    "parse_command",
    "parse_credentials",
    "wants_body",
]

SPEC = ProtocolSpec(
    name="pop3",
    summary="lets mail users fetch their messages from the lab's mailboxes",
    rfc="RFC 1939",
    default_port=110,
    transports=(Transport.TCP,),
    codec=make_codec,
    server=Pop3Server,
    client=Pop3Client,
    options=(
        Option(name="user", help="an account (default: demo accounts alice=wonderland, bob=builder)",
               parse=parse_credentials, multiple=True, metavar="NAME=PASSWORD"),
        Option(name="hostname", help="the host name in the APOP timestamp (default lab.test)", metavar="NAME"),
        Option(name="maildir", help="keep the lab's mail in Maildir directories under DIR (survives restarts)",
               metavar="DIR"),
    ),
    idle_timeout=600.0,  # RFC 1939 §3: an autologout timer of at least 10 minutes
    keywords=("mail", "email", "pop", "fetch", "mailbox"),
)
