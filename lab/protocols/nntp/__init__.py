"""NNTP (RFC 3977 core, OVER and HDR; RFC 5536 articles): a news reader
server over the lab's shared news store, and a client with its verbs.

    serve nntp --group lab.test --group "lab.talk=Chatter" as news
    connect nntp news as c
    send c "GROUP lab.test"
    expect c 211

The modules: ``_codec`` (messages and the sans-IO codecs), ``_server``
(the reader server), ``_client`` (the verbs); the store itself is
:mod:`lab.newsstore`.

Tests: tests/protocols/test_nntp.py, tests/interop/test_nntp_peers.py
"""

from __future__ import annotations

from lab.errors import ConfigError
from lab.newsstore import NewsStore, parse_group_spec
from lab.protocols._base import Codec, Option, ProtocolSpec, Role, Transport
from lab.protocols._options import name_value, size, yes_no
from lab.protocols.nntp._client import GroupInfo, NntpClient, NntpReplyError, Overview
from lab.protocols.nntp._codec import (
    MAX_ARTICLE_WIRE,
    MAX_COMMAND,
    ArticleBlock,
    BadCommand,
    ClientCodec,
    Command,
    Response,
    ServerCodec,
)
from lab.protocols.nntp._server import STORE_KEY, Mode, NntpServer, Session

__all__ = [
    "MAX_ARTICLE_WIRE",
    "MAX_COMMAND",
    "SPEC",
    "STORE_KEY",
    "ArticleBlock",
    "BadCommand",
    "ClientCodec",
    "Command",
    "GroupInfo",
    "Mode",
    "NewsStore",
    "NntpClient",
    "NntpReplyError",
    "NntpServer",
    "Overview",
    "Response",
    "ServerCodec",
    "Session",
    "make_codec",
]


def make_codec(role: Role, transport: Transport) -> Codec:
    """Server: commands and posted articles. Client: responses."""
    return ServerCodec() if role is Role.SERVER else ClientCodec()


def _mode(text: str) -> str:
    value = text.strip().lower()
    if value not in ("reader", "switching"):
        raise ConfigError(f"nntp: --mode wants reader or switching, got {text!r}")
    return value


def _account(text: str) -> tuple[str, str]:
    return name_value(text, "nntp: --user", "NAME=PASSWORD", hint="e.g. --user alice=wonder")


SPEC = ProtocolSpec(
    name="nntp",
    summary="newsgroups: read, list and post articles",
    rfc="RFC 3977",
    default_port=119,
    transports=(Transport.TCP,),
    codec=make_codec,
    server=NntpServer,
    client=NntpClient,
    options=(
        Option(name="group", help="a newsgroup to carry, NAME[=DESCRIPTION] (default: lab.test and lab.misc)",
               parse=parse_group_spec, multiple=True, metavar="NAME[=DESC]"),
        Option(name="posting", help="allow POST: yes or no (default yes)", parse=yes_no("nntp: --posting"),
               default=True, metavar="yes|no"),
        Option(name="store", help="keep groups and articles in this directory (default: memory only)",
               metavar="DIR"),
        Option(name="hostname", help="the name in the greeting, Path, Xref and new Message-IDs"
               " (default news.lab.test)", metavar="NAME"),
        Option(name="max_article", help="largest article accepted, e.g. 64k (default 1m)",
               parse=size("nntp: --max-article", MAX_ARTICLE_WIRE, hint="e.g. 65536, 512k or 2m"),
               metavar="SIZE"),
        Option(name="mode", help="reader (default) or switching: start in transit mode until MODE READER",
               parse=_mode, metavar="reader|switching"),
        Option(name="user", help="an account for AUTHINFO, NAME=PASSWORD; with any, posting needs a login",
               parse=_account, multiple=True, metavar="NAME=PASSWORD"),
    ),
    idle_timeout=600.0,
    keywords=("news", "usenet", "newsgroups", "articles"),
)
