"""The SSH client: asyncssh connects (through the
:class:`~lab.protocols.ssh._tap.Tap`, which reports every byte) and the
verbs drive it: ``run`` a command, an interactive ``shell``, SFTP ``get``
and ``put``.

The server's host key is not checked unless ``known_hosts`` names a
file (a lab makes a new key each time); its fingerprint is in the log.

Tests: tests/protocols/test_ssh.py, tests/interop/test_ssh_peers.py
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, NamedTuple

import asyncssh

from lab.errors import ConfigError, LabError, LabTimeout
from lab.protocols._library import Dialing
from lab.protocols._session import ClientVerbs
from lab.protocols.ssh._options import SshClientOptions
from lab.protocols.ssh._server import describe_exit, fingerprint
from lab.protocols.ssh._tap import Tap, TapConnector

__all__ = ["RunResult", "SshClient", "SshError", "SshLink", "dial"]


class SshError(LabError):
    """The server refused or broke something the client asked."""


class RunResult(NamedTuple):
    """What ``run`` gives: the exit status and both output streams."""

    status: int | None
    stdout: str
    stderr: str


class _LabSshClient(asyncssh.SSHClient):
    """asyncssh's callbacks for the one connection."""

    def __init__(self, connector: TapConnector) -> None:
        self.connector = connector
        self.method = "none"

    @property
    def tap(self) -> Tap | None:
        return self.connector.tap

    def connection_lost(self, exc: Exception | None) -> None:
        tap = self.tap
        if tap is not None:
            reason = describe_exit(exc)
            tap.event(True, "disconnect", f"connection ended: {reason}", reason=reason)
            tap.close_record(reason)

    def password_auth_requested(self) -> None:
        return None  # only the password given, once

    def auth_banner_received(self, msg: str, lang: str) -> None:
        if self.tap is not None:
            self.tap.event(True, "auth", f"banner: {msg.strip()[:200]}")

    def auth_completed(self) -> None:
        if self.tap is not None:
            self.tap.event(True, "auth", "logged in", result="logged in")


class SshLink:
    """The client's connection (``verbs.link``): asyncssh's, and the tap."""

    def __init__(self, conn: asyncssh.SSHClientConnection, tap: Tap) -> None:
        self.conn = conn
        self.tap = tap

    def close(self) -> None:
        self.conn.close()

    async def wait_closed(self) -> None:
        await self.conn.wait_closed()


async def dial(where: Dialing) -> SshLink:
    """Connect and log in with the client options' user, password or key."""
    options: SshClientOptions = where.options if isinstance(where.options, SshClientOptions) else SshClientOptions()
    password = options.password or options.password_env
    keys: list[asyncssh.SSHKey] = []
    if options.key:
        try:
            keys.append(asyncssh.read_private_key(options.key))
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ConfigError(f"ssh: cannot read the key {options.key}: {exc}") from None
    if not password and not keys:
        raise ConfigError("ssh: the client needs a password or a key to log in",
                          hint="connect ssh HOST:PORT -o password_env=NAME (or -o key=FILE, -o password=...)")
    connector = TapConnector(where.recorder, where.clock)
    try:
        conn, _ = await asyncssh.create_connection(
            lambda: _LabSshClient(connector), where.host, where.port,
            tunnel=connector, username=options.user, password=password,
            client_keys=keys or None, known_hosts=options.known_hosts or None,
            agent_path=None, config=None, preferred_auth="publickey,password" if keys else "password",
            login_timeout=where.timeout,
        )
    except asyncssh.PermissionDenied as exc:
        raise ConfigError(f"ssh: {options.user} could not log in: {exc.reason}",
                          hint="check the user, password or key") from None
    except (asyncssh.Error, OSError) as exc:
        if connector.tap is not None:
            connector.tap.close_record(describe_exit(exc) if isinstance(exc, Exception) else "failed")
        if isinstance(exc, OSError):
            raise
        raise ConfigError(f"ssh: {describe_exit(exc)}") from None
    tap = connector.tap
    assert tap is not None
    key = conn.get_server_host_key()
    if key is not None:
        checked = "checked against " + options.known_hosts if options.known_hosts else "not checked"
        tap.event(True, "hostkey", f"server host key {key.get_algorithm()} {fingerprint(key)} ({checked})",
                  algorithm=key.get_algorithm(), fingerprint=fingerprint(key))
    info = conn.get_extra_info
    tap.event(False, "algorithms", f"in use to the server: cipher {info('send_cipher')}, mac {info('send_mac')},"
              f" compression {info('send_compression')}", cipher_c2s=info("send_cipher"),
              cipher_s2c=info("recv_cipher"), server_version=info("server_version"))
    return SshLink(conn, tap)


class SshClient(ClientVerbs[SshClientOptions]):
    """SSH verbs: ``run``, ``shell``/``type``/``read``/``close_shell``,
    ``get``, ``put``, ``listdir``, ``fingerprint``."""

    _shell: asyncssh.SSHClientProcess[str] | None = None
    _sessions = 0

    @property
    def _link(self) -> SshLink:
        link = self.link
        if not isinstance(link, SshLink):
            raise LabError("ssh: not connected")
        return link

    def _event(self, incoming: bool, event: str, text: str, **values: object) -> None:
        self._link.tap.event(incoming, event, text, **values)

    def _session(self) -> int:
        self._sessions += 1
        return self._sessions

    async def run(self, command: str, timeout: float = 30.0) -> RunResult:
        """Run ``command`` on the server: its exit status, stdout and stderr."""
        link = self._link
        sid = self._session()
        self._event(False, "channel-open", f"session {sid} opened", channel=sid)
        self._event(False, "channel-request", f"session {sid}: exec {command!r}", channel=sid, request="exec",
                    command=command)
        try:
            result = await link.conn.run(command, check=False, timeout=timeout)
        except asyncssh.TimeoutError:
            raise LabTimeout(f"ssh: {command!r} did not finish within {timeout} s") from None
        except asyncssh.ChannelOpenError as exc:
            raise SshError(f"ssh: the server refused a session: {exc.reason}") from None
        out = _text(result.stdout)
        err = _text(result.stderr)
        self._event(True, "channel-close", f"session {sid} closed, exit status {result.exit_status}: "
                    f"{len(out.encode())} bytes out, {len(err.encode())} on stderr", channel=sid,
                    status=result.exit_status)
        return RunResult(result.exit_status, out, err)

    async def shell(self, prompt: str = "netlab> ", timeout: float = 10.0) -> str:
        """Open an interactive shell (no terminal); what the server says
        up to ``prompt`` (the lab console's by default)."""
        if self._shell is not None:
            raise SshError("ssh: a shell is open already", hint="close_shell() first")
        sid = self._session()
        self._event(False, "channel-open", f"session {sid} opened", channel=sid)
        self._event(False, "channel-request", f"session {sid}: shell", channel=sid, request="shell")
        self._shell = await self._link.conn.create_process(term_type=None, encoding="utf-8")
        return await self.read_until(prompt, timeout)

    async def type(self, line: str, prompt: str = "netlab> ", timeout: float = 10.0) -> str:
        """Send a line to the shell; what comes back up to ``prompt``."""
        shell = self._need_shell()
        shell.stdin.write(line + "\n")
        self._event(False, "channel-data", f"{len(line.encode()) + 1} bytes to the shell", size=len(line) + 1)
        return await self.read_until(prompt, timeout)

    async def read_until(self, prompt: str, timeout: float = 10.0) -> str:
        """What the shell says up to and without ``prompt`` (all of it if
        the shell ends first)."""
        shell = self._need_shell()
        try:
            text = await asyncio.wait_for(shell.stdout.readuntil(prompt), timeout)
        except asyncio.IncompleteReadError as exc:
            text = str(exc.partial)
        except TimeoutError:
            raise LabTimeout(f"ssh: no {prompt!r} from the shell within {timeout} s") from None
        self._event(True, "channel-data", f"{len(text.encode())} bytes from the shell", size=len(text.encode()))
        return text[: -len(prompt)] if text.endswith(prompt) else text

    async def close_shell(self, timeout: float = 5.0) -> int | None:
        """End the shell (EOF); its exit status."""
        shell = self._need_shell()
        self._shell = None
        shell.stdin.write_eof()
        try:
            await asyncio.wait_for(shell.wait_closed(), timeout)
        except TimeoutError:
            shell.close()
        return shell.exit_status

    async def talk_open(self, timeout: float = 10.0) -> str:
        """``netlab talk ssh``: open the shell; its greeting."""
        return await self.shell(timeout=timeout)

    async def talk_line(self, line: str, timeout: float = 30.0) -> str:
        """``netlab talk ssh``: a typed line to the shell; what it answers.
        Once the shell ended (``quit``), the connection closes."""
        if self._shell is None:
            raise SshError("ssh: the shell has ended", hint="/reconnect for a new one, /quit to leave")
        out = await self.type(line, timeout=timeout)
        if self._shell is not None and self._shell.stdout.at_eof():
            self._shell = None
            self._link.close()
        return out

    def _need_shell(self) -> asyncssh.SSHClientProcess[str]:
        if self._shell is None:
            raise SshError("ssh: no shell open", hint="shell() opens one")
        return self._shell

    async def get(self, remote: str, local: str, timeout: float = 60.0) -> int:
        """Fetch ``remote`` over SFTP into ``local``; its size."""
        async with await self._sftp() as sftp:
            await self._sftp_call(sftp.get(remote, local), f"get {remote}", timeout)
        size = os.path.getsize(local)
        self._event(True, "sftp", f"got {remote}: {size} bytes", size=size)
        return size

    async def put(self, local: str, remote: str, timeout: float = 60.0) -> int:
        """Send ``local`` over SFTP to ``remote``; its size."""
        size = os.path.getsize(local)
        async with await self._sftp() as sftp:
            await self._sftp_call(sftp.put(local, remote), f"put {remote}", timeout)
        self._event(False, "sftp", f"put {remote}: {size} bytes", size=size)
        return size

    async def listdir(self, path: str = ".", timeout: float = 30.0) -> list[str]:
        """The names in a folder on the server, over SFTP."""
        async with await self._sftp() as sftp:
            names: list[str] = await self._sftp_call(sftp.listdir(path), f"listdir {path}", timeout)
        return sorted(n for n in names if n not in (".", ".."))

    async def fingerprint(self) -> str:
        """The server's host key fingerprint (SHA256:...)."""
        key = self._link.conn.get_server_host_key()
        return fingerprint(key) if key is not None else ""

    async def _sftp(self) -> asyncssh.SFTPClient:
        sid = self._session()
        self._event(False, "channel-request", f"session {sid}: subsystem sftp", channel=sid, request="subsystem")
        try:
            return await self._link.conn.start_sftp_client()
        except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as exc:
            raise SshError(f"ssh: no SFTP here: {exc}") from None

    async def _sftp_call(self, work: Any, what: str, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncssh.SFTPError as exc:
            raise SshError(f"ssh: {what}: {exc.reason}") from None
        except TimeoutError:
            raise LabTimeout(f"ssh: {what} did not finish within {timeout} s") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
