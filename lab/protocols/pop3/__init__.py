"""POP3 (RFC 1939): a mail client fetches its messages from a maildrop.

The client logs in (``USER``/``PASS``, or ``APOP``), lists (``STAT``,
``LIST``, ``UIDL``), reads (``RETR``, ``TOP``) and marks messages for
deletion (``DELE``); only ``QUIT`` makes the deletions happen.  The
server here reads the lab's mail store, the one its SMTP servers deliver
into, and locks a mailbox while a session has it.  CAPA and response
codes come from RFC 2449.

* ``_messages``: commands, SASL responses, replies and body parts;
* ``_conversation``: :class:`Pop3Conversation`, both sides sans-IO;
* ``_server``: :class:`Pop3Server`, :class:`Pop3Session`, :class:`Pop3Options`;
* ``_client``: :class:`Pop3Client`.

Tests: tests/protocols/test_pop3.py, tests/interop/test_pop3_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.pop3._client import MAX_BODY, Pop3Client, Pop3ReplyError
from lab.protocols.pop3._conversation import (
    MAX_BODY_LINE,
    MAX_LINE,
    MAX_RESPONSE_LINE,
    Pop3CommandDecoder,
    Pop3Conversation,
    Pop3ReplyDecoder,
)
from lab.protocols.pop3._messages import (
    MAX_COMMAND_LINE,
    Pop3BodyEnd,
    Pop3BodyPart,
    Pop3Command,
    Pop3Reply,
    Pop3SaslResponse,
    parse_command,
    reply_in_parts,
    wants_body,
)
from lab.protocols.pop3._server import DEMO_USERS, Pop3Options, Pop3Server, Pop3Session, Pop3State

__all__ = [
    "DEMO_USERS",
    "MAX_BODY",
    "MAX_BODY_LINE",
    "MAX_COMMAND_LINE",
    "MAX_LINE",
    "MAX_RESPONSE_LINE",
    "SPEC",
    "Pop3BodyEnd",
    "Pop3BodyPart",
    "Pop3Client",
    "Pop3Command",
    "Pop3CommandDecoder",
    "Pop3Conversation",
    "Pop3Options",
    "Pop3Reply",
    "Pop3ReplyDecoder",
    "Pop3ReplyError",
    "Pop3SaslResponse",
    "Pop3Server",
    "Pop3Session",
    "Pop3State",
    "parse_command",
    "reply_in_parts",
    "wants_body",
]

SPEC = ProtocolSpec(
    name="pop3",
    summary="lets mail users fetch their messages from the lab's mailboxes",
    rfc="RFC 1939",
    default_port=110,
    transports=(Transport.TCP,),
    conversation=Pop3Conversation,
    server=Pop3Server,
    client=Pop3Client,
    options=Pop3Options,
    idle_timeout=600.0,  # RFC 1939 §3: an autologout timer of at least 10 minutes
    keywords=("mail", "email", "pop", "fetch", "mailbox"),
    requests=Requests(lambda msg: b"-ERR not in the recording\r\n"),
)
