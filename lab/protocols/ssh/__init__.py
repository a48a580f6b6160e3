"""SSH (RFC 4251-4254) through asyncssh, which owns the sockets: the lab
console over SSH, SFTP in a jail, and a client with ``run``, a shell and
SFTP verbs.

* ``_codec`` — what the wire shows, sans-IO: both version lines, the
  clear packets of the key exchange (KEXINIT names and what they
  negotiate, NEWKEYS), then encrypted chunks by size; and
  :class:`SshEvent`, what the library reports from inside the
  encryption (logins, channels, requests, data sizes, the end).
* ``_tap`` — between the socket and asyncssh: every byte reported to the
  lab's recorder, idle connections closed.
* ``_options`` — :class:`SshOptions` and :class:`SshClientOptions`.
* ``_server`` — logins (passwords through the login throttle, public
  keys), the console as a shell or a command, SFTP in ``--sftp-root``.
* ``_client`` — verbs: ``run``, ``shell``/``type``/``read_until``/
  ``close_shell``, ``get``, ``put``, ``listdir``, ``fingerprint``.

Tests: tests/protocols/test_ssh.py, tests/interop/test_ssh_peers.py
"""

from __future__ import annotations

from lab.protocols._base import Transport
from lab.protocols._spec import ProtocolSpec
from lab.protocols.ssh._client import RunResult, SshClient, SshError, SshLink, dial
from lab.protocols.ssh._codec import (
    MAX_PACKET,
    MAX_VERSION_LINE,
    SshConversation,
    SshDecoder,
    SshEncrypted,
    SshEvent,
    SshKexInit,
    SshPacket,
    SshPreVersionLine,
    SshVersion,
    negotiate,
)
from lab.protocols.ssh._options import DEFAULT_USER, SshClientOptions, SshOptions
from lab.protocols.ssh._server import HOST_KEY, PROMPT, HostKey, JailedSftpServer, SshServer, listen

__all__ = [
    "DEFAULT_USER",
    "HOST_KEY",
    "MAX_PACKET",
    "MAX_VERSION_LINE",
    "PROMPT",
    "SPEC",
    "HostKey",
    "JailedSftpServer",
    "RunResult",
    "SshClient",
    "SshClientOptions",
    "SshConversation",
    "SshDecoder",
    "SshEncrypted",
    "SshError",
    "SshEvent",
    "SshKexInit",
    "SshLink",
    "SshOptions",
    "SshPacket",
    "SshPreVersionLine",
    "SshServer",
    "SshVersion",
    "dial",
    "listen",
    "negotiate",
]

SPEC = ProtocolSpec(
    name="ssh",
    summary="secure shell: the lab console over SSH, SFTP in a jail (asyncssh)",
    rfc="RFC 4253",
    default_port=22,
    transports=(Transport.TCP,),
    conversation=SshConversation,
    server=SshServer,
    client=SshClient,
    options=SshOptions,
    client_options=SshClientOptions,
    idle_timeout=600.0,
    keywords=("secure shell", "sftp", "console", "remote shell", "encryption"),
    listen=listen,
    dial=dial,
)
