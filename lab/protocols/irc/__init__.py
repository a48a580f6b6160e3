"""IRC (RFC 1459, RFC 2812 client protocol): a server in front of the lab's
chat service, a client with the protocol's verbs, and the conversation.

* :mod:`._codec` — the message grammar, CTCP, numerics, the conversation;
* :mod:`._options` — the server's options;
* :mod:`._server` — registration, channels, messages, modes, who-is;
* :mod:`._session` — one connection: its state, keep-alive and flood
  limits, and chat events as IRC;
* :mod:`._client` — ``nick``, ``join``, ``say``, ``part``, ``quit``, ``raw``.

Rooms live in the chat service (:mod:`lab.services.chat`), so every IRC
server of one lab, and later other chat protocols, share them.

Tests: tests/protocols/test_irc.py, tests/services/test_chat.py,
tests/interop/test_irc_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Message, Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.irc._client import IrcClient, IrcError, split_text
from lab.protocols.irc._codec import (
    MAX_LINE,
    MAX_MESSAGE,
    NUMERICS,
    IrcConversation,
    IrcDecoder,
    IrcMalformed,
    IrcMessage,
    parse_message,
)
from lab.protocols.irc._options import IrcOptions
from lab.protocols.irc._server import IrcServer
from lab.protocols.irc._session import IrcSession, Registration, valid_channel, valid_nick

__all__ = [
    "MAX_LINE",
    "MAX_MESSAGE",
    "NUMERICS",
    "SPEC",
    "IrcClient",
    "IrcConversation",
    "IrcDecoder",
    "IrcError",
    "IrcMalformed",
    "IrcMessage",
    "IrcOptions",
    "IrcServer",
    "IrcSession",
    "Registration",
    "parse_message",
    "split_text",
    "valid_channel",
    "valid_nick",
]

def _unknown(msg: Message) -> bytes:
    verb = "".join(c for c in msg.kind if c.isalnum())[:32] or "?"
    return f":mock 421 * {verb} :Unknown command (not in the recording)\r\n".encode()


SPEC = ProtocolSpec(
    name="irc",
    summary="chat in channels: the lab's chat service over IRC",
    rfc="RFC 2812",
    default_port=6667,
    transports=(Transport.TCP,),
    conversation=IrcConversation,
    server=IrcServer,
    client=IrcClient,
    options=IrcOptions,
    idle_timeout=600.0,  # a backstop: the server's own PINGs drop silent clients sooner
    keywords=("chat", "channels", "ctcp"),
    requests=Requests(_unknown, one_reply_each=False),
)
