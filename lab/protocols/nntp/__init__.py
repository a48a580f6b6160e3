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


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "y", "true", "on", "1"):
        return True
    if value in ("no", "n", "false", "off", "0"):
        return False
    raise ConfigError(f"nntp: --posting wants yes or no, got {text!r}")


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(value[-1:], 1)
    try:
        size = int(value[:-1] if scale > 1 else value) * scale
    except ValueError:
        raise ConfigError(f"nntp: not a size: {text!r}", hint="e.g. 65536, 512k or 2m") from None
    if not 1 <= size <= MAX_ARTICLE_WIRE:
        raise ConfigError(f"nntp: --max-article must be 1 byte to {MAX_ARTICLE_WIRE // 1024 // 1024} MiB")
    return size


def _mode(text: str) -> str:
    value = text.strip().lower()
    if value not in ("reader", "switching"):
        raise ConfigError(f"nntp: --mode wants reader or switching, got {text!r}")
    return value


def _account(text: str) -> tuple[str, str]:
    name, sep, password = text.partition("=")
    if not sep or not name.strip() or not password or " " in name.strip():
        raise ConfigError(f"nntp: --user wants NAME=PASSWORD, got {text!r}", hint="e.g. --user alice=wonder")
    return name.strip(), password


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
        Option(name="posting", help="allow POST: yes or no (default yes)", parse=_yes_no, default=True,
               metavar="yes|no"),
        Option(name="store", help="keep groups and articles in this directory (default: memory only)",
               metavar="DIR"),
        Option(name="hostname", help="the name in the greeting, Path, Xref and new Message-IDs"
               " (default news.lab.test)", metavar="NAME"),
        Option(name="max_article", help="largest article accepted, e.g. 64k (default 1m)", parse=_size,
               metavar="SIZE"),
        Option(name="mode", help="reader (default) or switching: start in transit mode until MODE READER",
               parse=_mode, metavar="reader|switching"),
        Option(name="user", help="an account for AUTHINFO, NAME=PASSWORD; with any, posting needs a login",
               parse=_account, multiple=True, metavar="NAME=PASSWORD"),
    ),
    idle_timeout=600.0,
    keywords=("news", "usenet", "newsgroups", "articles"),
)
