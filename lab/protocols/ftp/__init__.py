"""FTP (RFC 959): files over two kinds of connection.

The control connection carries commands and replies (``RETR a.txt`` /
``150 ...`` / ``226 ...``); each listing or file travels on a data
connection of its own, which the client opens to a port the server
names (passive: PASV/EPSV) or the server opens to a port the client
names (active: PORT/EPRT).  The server here serves one directory, jailed
to its root, to lab accounts and (read-only) to anonymous; FEAT (RFC
2389), SIZE, MDTM, MLSD and MLST (RFC 3659) and EPSV/EPRT (RFC 2428) are
offered.  The log shows each data connection as a child of its control
connection (``f#1.d2``), with a preview and the byte count.

* ``_codec``: commands, replies (multi-line ones whole), transfers, the conversation;
* ``_paths``: the jail and the listing formats;
* ``_data``: addresses, TYPE A conversion, data connections in the log;
* ``_server``: :class:`FtpServer`, :class:`FtpSession`, :class:`FtpOptions`;
* ``_client``: :class:`FtpClient`, :class:`FtpClientOptions`.

Tests: tests/protocols/test_ftp.py, tests/test_ftp_traversal.py, tests/interop/test_ftp_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec, Requests
from lab.protocols.ftp._client import FtpClient, FtpClientOptions, FtpReplyError
from lab.protocols.ftp._codec import (
    MAX_LINE,
    MAX_REPLY,
    REPLY_MEANINGS,
    FtpCommand,
    FtpCommandDecoder,
    FtpConversation,
    FtpDataConversation,
    FtpReply,
    FtpReplyDecoder,
    FtpTransfer,
    meaning,
    parse_command,
)
from lab.protocols.ftp._data import AsciiReader, AsciiWriter, parse_eprt, parse_port
from lab.protocols.ftp._paths import Jail, PathRefused
from lab.protocols.ftp._server import DEMO_USERS, FtpOptions, FtpServer, FtpSession

__all__ = [
    "DEMO_USERS",
    "MAX_LINE",
    "MAX_REPLY",
    "REPLY_MEANINGS",
    "SPEC",
    "AsciiReader",
    "AsciiWriter",
    "FtpClient",
    "FtpClientOptions",
    "FtpCommand",
    "FtpCommandDecoder",
    "FtpConversation",
    "FtpDataConversation",
    "FtpOptions",
    "FtpReply",
    "FtpReplyDecoder",
    "FtpReplyError",
    "FtpServer",
    "FtpSession",
    "FtpTransfer",
    "Jail",
    "PathRefused",
    "meaning",
    "parse_command",
    "parse_eprt",
    "parse_port",
]

SPEC = ProtocolSpec(
    name="ftp",
    summary="serves a directory tree: listings and files on data connections of their own",
    rfc="RFC 959",
    default_port=21,
    transports=(Transport.TCP,),
    conversation=FtpConversation,
    server=FtpServer,
    client=FtpClient,
    options=FtpOptions,
    client_options=FtpClientOptions,
    idle_timeout=300.0,
    keywords=("file", "files", "transfer", "upload", "download", "ftp"),
    requests=Requests(lambda msg: b"502 not in the recording\r\n"),
)
