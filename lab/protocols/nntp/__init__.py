"""NNTP (RFC 3977 core, OVER and HDR; RFC 5536 articles): a news reader
server over the lab's shared news store, and a client with its verbs.

    serve nntp --group lab.test --group "lab.talk=Chatter" as news
    connect nntp news as c
    send c "GROUP lab.test"
    expect c 211

The modules: ``_codec`` (messages and the conversation, both sides),
``_server`` (options, the reader server and its sessions), ``_client``
(the verbs); the store itself is :mod:`lab.services.news`.

Tests: tests/protocols/test_nntp.py, tests/interop/test_nntp_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.nntp._client import GroupInfo, NntpClient, NntpReplyError, Overview
from lab.protocols.nntp._codec import (
    MAX_ARTICLE_WIRE,
    MAX_BLOCK,
    MAX_COMMAND,
    ArticleBlock,
    ArticleEnd,
    ArticlePart,
    BadCommand,
    Command,
    DataEnd,
    DataPart,
    NntpConversation,
    Response,
)
from lab.protocols.nntp._server import Mode, NntpOptions, NntpServer, NntpSession, ServerMode
from lab.services.news import NEWS_STORE, NewsStore

__all__ = [
    "MAX_ARTICLE_WIRE",
    "MAX_BLOCK",
    "MAX_COMMAND",
    "NEWS_STORE",
    "SPEC",
    "ArticleBlock",
    "ArticleEnd",
    "ArticlePart",
    "BadCommand",
    "Command",
    "DataEnd",
    "DataPart",
    "GroupInfo",
    "Mode",
    "NewsStore",
    "NntpClient",
    "NntpConversation",
    "NntpOptions",
    "NntpReplyError",
    "NntpServer",
    "NntpSession",
    "Overview",
    "Response",
    "ServerMode",
]


SPEC = ProtocolSpec(
    name="nntp",
    summary="newsgroups: read, list and post articles",
    rfc="RFC 3977",
    default_port=119,
    transports=(Transport.TCP,),
    conversation=NntpConversation,
    server=NntpServer,
    client=NntpClient,
    options=NntpOptions,
    idle_timeout=600.0,
    keywords=("news", "usenet", "newsgroups", "articles"),
    requests=Requests(lambda msg: b"500 Unknown command (not in the recording)\r\n"),
)
