"""The SSH server: the lab console over SSH, and SFTP in a jail.

asyncssh owns the sockets (through the :class:`~lab.protocols.ssh._tap.Tap`,
which reports every byte) and the protocol; this module answers its
callbacks and reports what happens inside the encryption as
:class:`~lab.protocols.ssh._codec.SshEvent` messages.

* Logins: passwords of the ``--user`` accounts (and ``--password`` for
  ``lab``), checked through the lab's login throttle, and public keys
  from ``--authorized-keys``.  Events name the method, the user and the
  result, never the password.  Six failures end the connection.
* A shell is the lab console: the command language, with asyncssh's line
  editor (history with the arrow keys) and Tab completing commands,
  protocols and names; Ctrl-C cancels a running statement, and lines
  typed meanwhile wait their turn.  ``ssh ... COMMAND`` runs one statement and exits
  with 0, or 1 when it failed.  The same :data:`~lab.services.CONSOLE`
  the telnet console uses runs the statements.
* ``--sftp-root DIR`` offers SFTP inside DIR: no path, ``..`` or symlink
  reaches outside it.
* Loopback only unless ``--allow-remote``; no port forwarding, no agent
  or X11 forwarding; a login within ``--login-grace`` seconds, connections
  closed with a DISCONNECT after the server's ``--idle-timeout`` quiet
  seconds, at most ``--max-channels`` sessions each.

Tests: tests/protocols/test_ssh.py, tests/interop/test_ssh_peers.py
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections import deque
from typing import Any

import asyncssh

from lab.errors import ConfigError, LabError
from lab.protocols._library import Listening
from lab.protocols._login import LoginGate
from lab.protocols._session import ServerBehaviour
from lab.protocols.ssh._options import DEFAULT_USER, SshOptions
from lab.protocols.ssh._tap import Tap, TapListener, tap_of
from lab.protocols.telnet._server import is_loopback
from lab.services import CONSOLE, Console, ServiceKey

__all__ = ["HOST_KEY", "MAX_AUTH_FAILURES", "PROMPT", "HostKey", "JailedSftpServer", "SshServer", "listen",
           "run_statement"]

logger = logging.getLogger(__name__)

PROMPT = "netlab> "
MAX_AUTH_FAILURES = 6  # per connection, as OpenSSH's MaxAuthTries
MAX_TYPED_AHEAD = 8  # console lines typed while a statement runs
DISC_HOST_NOT_ALLOWED = 1
DISC_NO_MORE_AUTH_METHODS = 14
_QUIT = frozenset({"quit", "exit", "logout"})


class HostKey:
    """The lab's SSH host key: made the first time a server asks, the same
    for every SSH server of the lab while it lives, never written to disk."""

    def __init__(self) -> None:
        self._key: asyncssh.SSHKey | None = None

    def key(self) -> asyncssh.SSHKey:
        if self._key is None:
            self._key = asyncssh.generate_private_key("ssh-ed25519", comment="netlab lab host key")
        return self._key


HOST_KEY: ServiceKey[HostKey] = ServiceKey("ssh.host_key", HostKey)


def accounts_of(options: SshOptions) -> dict[str, str]:
    """Login name -> password, from ``--user`` and ``--password`` (for ``lab``)."""
    accounts = dict(options.user)
    password = options.password or options.password_file or options.password_env
    if password:
        accounts[DEFAULT_USER] = password
    return accounts


def read_authorized_keys(path: str) -> list[asyncssh.SSHKey]:
    """The public keys in an OpenSSH ``authorized_keys`` file; a line with
    options (``from=...``) is refused rather than half honoured."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"ssh: cannot read authorized keys {path}: {exc.strerror or exc}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(asyncssh.import_public_key(line))
        except (asyncssh.KeyImportError, ValueError):
            raise ConfigError(f"ssh: {path}:{number} is not a public key line (options are not supported)",
                              hint="one `TYPE BASE64 [COMMENT]` per line, as ssh-keygen writes them") from None
    if not keys:
        raise ConfigError(f"ssh: {path} holds no public key")
    return keys


def fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


def describe_exit(exc: Exception | None) -> str:
    """Why a connection ended, in a few words."""
    if exc is None:
        return "closed"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{type(exc).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def run_statement(console: Console, text: str) -> tuple[bool, str]:
    """A console statement's printable outcome, and whether it ran; an
    error is one line, as the telnet console prints it."""
    try:
        return True, await console.run(text)
    except LabError as exc:
        return False, "error: " + " ".join(str(exc).split())
    except Exception as exc:
        logger.exception("console statement %r raised", text)
        return False, f"error: internal error: {type(exc).__name__}: {exc}"


def _common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    first, last = min(words), max(words)
    end = 0
    while end < len(first) and first[end] == last[end]:
        end += 1
    return first[:end]


class SshServer(ServerBehaviour[SshOptions]):
    """The lab's view of an SSH server: it checks the options before the
    library starts (someone must be able to log in; loopback unless
    allowed).  asyncssh does the rest, from :func:`listen`."""

    def __init__(self, options: SshOptions) -> None:
        super().__init__(options)
        self.accounts = accounts_of(options)
        if not self.accounts and not options.authorized_keys:
            raise ConfigError(
                "ssh: nobody could log in: the server needs a password or a key",
                hint="add --password-file FILE (for the user lab), --user NAME=PASSWORD or --authorized-keys FILE",
            )

    shell_names = ("fingerprint",)

    def fingerprint(self) -> str:
        """The host key's fingerprint (``srv.fingerprint()``), to compare
        with what ``ssh`` shows the first time it connects."""
        if self.options.host_key:
            return fingerprint(asyncssh.read_private_key(self.options.host_key))
        return fingerprint(self.services.get(HOST_KEY).key())

    def check_bind(self, host: str) -> None:
        """Refuse to listen beyond loopback unless ``--allow-remote``."""
        if not self.options.allow_remote and not is_loopback(host):
            raise ConfigError(f"ssh: the lab console would be reachable from other machines on {host}",
                              hint="bind 127.0.0.1 or ::1, or add --allow-remote if you mean it")


class JailedSftpServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server with its chroot, and no way out of it: every
    path is resolved (symlinks followed) and refused outside the root;
    links are not made.  What the client does is in the log."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: str, tap: Tap | None, *,
                 refusal: str | None = None) -> None:
        self.root = os.path.realpath(root)
        super().__init__(chan, chroot=self.root.encode())
        self.tap = tap
        self.refusal = refusal  # set: a session over the cap, whose every request is refused
        self._files: dict[int, list[Any]] = {}  # open files: name, bytes read, bytes written

    def _event(self, text: str, **values: object) -> None:
        if self.tap is not None:
            self.tap.event(True, "sftp", text, **values)

    def map_path(self, path: bytes) -> bytes:
        if self.refusal is not None:
            raise asyncssh.SFTPPermissionDenied(self.refusal)
        mapped = super().map_path(path)
        real = os.path.realpath(mapped)
        root = self.root.encode()
        if real != root and not real.startswith(root.rstrip(b"/") + b"/"):
            self._event(f"refused {path.decode('utf-8', 'replace')!r}: outside the SFTP root")
            raise asyncssh.SFTPPermissionDenied("outside the SFTP root")
        return mapped

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        mode = "write" if pflags & asyncssh.FXF_WRITE else "read"
        name = path.decode("utf-8", "replace")
        self._event(f"open {name} for {mode}")
        handle = super().open(path, pflags, attrs)
        self._files[id(handle)] = [name, 0, 0]
        return handle

    def read(self, file_obj: object, offset: int, size: int) -> Any:
        data = super().read(file_obj, offset, size)
        if isinstance(data, bytes) and id(file_obj) in self._files:
            self._files[id(file_obj)][1] += len(data)
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if id(file_obj) in self._files:
            self._files[id(file_obj)][2] += len(data)
        return super().write(file_obj, offset, data)

    def close(self, file_obj: object) -> Any:
        counts = self._files.pop(id(file_obj), None)
        if counts is not None:
            name, read, written = counts
            self._event(f"closed {name}: {read} bytes read, {written} written", read=read, written=written)
        return super().close(file_obj)

    def remove(self, path: bytes) -> Any:
        self._event(f"remove {path.decode('utf-8', 'replace')}")
        return super().remove(path)

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        self._event(f"rename {oldpath.decode('utf-8', 'replace')} to {newpath.decode('utf-8', 'replace')}")
        return super().rename(oldpath, newpath)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        self._event(f"mkdir {path.decode('utf-8', 'replace')}")
        return super().mkdir(path, attrs)

    def symlink(self, oldpath: bytes, newpath: bytes) -> Any:
        self._event(f"refused symlink {newpath.decode('utf-8', 'replace')}: links are not made here")
        raise asyncssh.SFTPOpUnsupported("links are not made in the lab's SFTP root")

    def link(self, oldpath: bytes, newpath: bytes) -> Any:
        self._event(f"refused link {newpath.decode('utf-8', 'replace')}: links are not made here")
        raise asyncssh.SFTPOpUnsupported("links are not made in the lab's SFTP root")

    def exit(self) -> Any:
        self._event("SFTP session ended")
        if self.tap is not None:
            self.tap.sessions = max(0, self.tap.sessions - 1)
        return super().exit()


class _Context:
    """What every connection of one server shares: options, accounts,
    keys, the lab's services and clock."""

    def __init__(self, where: Listening, keys: list[asyncssh.SSHKey]) -> None:
        self.where = where
        self.options: SshOptions = where.options
        self.accounts = accounts_of(self.options)
        self.keys = {key.public_data for key in keys}

    # -- sessions -------------------------------------------------------------

    async def process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        tap = tap_of(process)
        if tap is None:  # not ours: nothing to record it with
            process.exit(1)
            return
        tap.session_ids += 1
        sid = tap.session_ids
        name = f"session {sid}"
        tap.event(True, "channel-open", f"{name} opened", channel=sid)
        if process.term_type:
            width, height = process.term_size[:2]
            tap.event(True, "channel-request", f"{name}: pty-req {process.term_type} {width}x{height}",
                      channel=sid, request="pty-req", term=process.term_type)
        command = process.command
        if command is not None:
            tap.event(True, "channel-request", f"{name}: exec {command!r}", channel=sid, request="exec",
                      command=command)
        else:
            tap.event(True, "channel-request", f"{name}: shell", channel=sid, request="shell")
        if tap.sessions >= self.options.max_channels:
            self._refuse(process, tap, name, f"at most {self.options.max_channels} sessions per connection")
            return
        status = 1
        tap.sessions += 1
        console = _ConsoleSession(self, process, tap, sid)
        try:
            status = await console.run(command)
        except (asyncssh.Error, ConnectionError, BrokenPipeError) as exc:
            tap.note(f"{name} ended: {describe_exit(exc)}")
        except Exception as exc:  # a bug here ends this session, not the connection or the server
            logger.exception("ssh %s failed", name)
            if tap.record is not None:
                tap.record.error(f"{name} raised {describe_exit(exc)}")
        finally:
            tap.sessions = max(0, tap.sessions - 1)
            tap.event(False, "channel-close", f"{name} closed, exit status {status}: {console.bytes_in} bytes in, "
                      f"{console.bytes_out} out", channel=sid, status=status)
        process.exit(status)

    def _refuse(self, process: asyncssh.SSHServerProcess[str], tap: Tap, name: str, why: str) -> None:
        tap.event(False, "channel-close", f"{name} refused: {why}")
        process.stderr.write(f"netlab: {why}\r\n")
        process.exit(1)

    def sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        tap = tap_of(chan)
        if tap is not None:
            tap.session_ids += 1
            tap.event(True, "channel-request", f"session {tap.session_ids}: subsystem sftp",
                      channel=tap.session_ids, request="subsystem", subsystem="sftp")
            if tap.sessions >= self.options.max_channels:
                why = f"at most {self.options.max_channels} sessions per connection"
                tap.event(False, "channel-close", f"session {tap.session_ids} refused: {why}")
                # closing the channel here would end the whole connection (asyncssh): every request is refused
                assert self.options.sftp_root is not None
                return JailedSftpServer(chan, self.options.sftp_root, None, refusal=why)
            tap.sessions += 1
        assert self.options.sftp_root is not None
        return JailedSftpServer(chan, self.options.sftp_root, tap)


class _ConsoleSession:
    """One shell or command: the lab's command language over a channel."""

    def __init__(self, context: _Context, process: asyncssh.SSHServerProcess[str], tap: Tap, sid: int) -> None:
        self.context = context
        self.process = process
        self.tap = tap
        self.sid = sid
        self.bytes_in = 0
        self.bytes_out = 0
        self.console: Console | None = None

    def write(self, text: str, *, error: bool = False) -> None:
        if not text:
            return
        size = len(text.encode("utf-8"))
        self.bytes_out += size
        self.tap.event(False, "channel-data", f"session {self.sid}: {size} bytes to the client"
                       + (" (stderr)" if error else ""), channel=self.sid, size=size)
        (self.process.stderr if error else self.process.stdout).write(text)

    async def run(self, command: str | None) -> int:
        if not self.context.options.console:
            self.write("netlab: this server offers no console (--console no)\n", error=True)
            return 1
        try:
            self.console = self.context.where.services.get(CONSOLE)
        except LabError:
            self.write("netlab: no lab console here (this server does not run in a lab)\n", error=True)
            return 1
        if command is not None:
            return await self.statement(command)
        return await self.shell()

    async def statement(self, text: str, *, shell: bool = False) -> int:
        assert self.console is not None
        self.tap.note(f"console runs: {text}")
        ok, output = await run_statement(self.console, text)
        if shell and ok and text.lower() == "help":
            output += "\n  quit     leave the console (also exit, logout, Ctrl-D)"
        if output:
            self.write(output + "\n", error=not ok)
        return 0 if ok else 1

    async def shell(self) -> int:
        process = self.process
        if process.term_type:  # a terminal: asyncssh's line editor runs, Tab is ours
            register: Any = getattr(process.channel, "register_key")  # noqa: B009 - the editor's, not in the stubs
            register("\t", self.complete)
        self.write("netlab console over SSH: statements act on this lab. `help` lists commands,"
                   " `quit` leaves; Tab completes, the arrow keys recall.\n")
        prompt = True
        typed: deque[str] = deque()  # lines typed while a statement ran
        while True:
            if prompt:
                self.write(PROMPT)
            prompt = True
            try:
                line = typed.popleft() if typed else await process.stdin.readline()
            except asyncssh.BreakReceived:
                self.write("^C\n")
                continue
            except (asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
                prompt = False
                continue
            if not line:
                self.write("\nGoodbye.\n")
                return 0
            size = len(line.encode("utf-8"))
            self.bytes_in += size
            self.tap.event(True, "channel-data", f"session {self.sid}: {size} bytes from the client",
                           channel=self.sid, size=size)
            text = line.strip()
            if not text:
                continue
            if text.lower() in _QUIT:
                self.write("Goodbye.\n")
                return 0
            await self.interruptible(text, typed)

    async def interruptible(self, text: str, typed: deque[str]) -> None:
        """Run a statement while reading on: Ctrl-C (a break) cancels it,
        lines typed meanwhile wait their turn (at most MAX_TYPED_AHEAD)."""
        task = asyncio.ensure_future(self.statement(text, shell=True))
        while not task.done():
            reader = asyncio.ensure_future(self.process.stdin.readline())
            await asyncio.wait({task, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                reader.cancel()  # what it had not read stays in the channel's buffer
                await asyncio.gather(reader, return_exceptions=True)
                break
            try:
                line = reader.result()
            except asyncssh.BreakReceived:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self.write("^C\ninterrupted\n")
                return
            except (asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
                continue
            if not line:  # the client is done typing: the statement finishes, then the session
                typed.append(line)
                break
            if len(typed) < MAX_TYPED_AHEAD:
                typed.append(line)
            else:
                self.write(f"netlab: busy, {MAX_TYPED_AHEAD} lines already wait: line dropped\n")
        await asyncio.gather(task, return_exceptions=True)

    def complete(self, line: str, pos: int) -> bool | tuple[str, int]:
        """Tab in the line editor: extend the word, or list the choices."""
        assert self.console is not None
        head = line[:pos]
        try:
            candidates = self.console.complete(head)
        except Exception:
            logger.exception("completing %r failed", head)
            return False
        word = "" if not head or head[-1].isspace() else head.split()[-1]
        common = _common_prefix(candidates)
        if len(common) > len(word):
            added = common[len(word):] + (" " if len(candidates) == 1 else "")
            return head + added + line[pos:], pos + len(added)
        if len(candidates) > 1:
            self.write("\n" + "  ".join(candidates) + "\n")
            return line, pos
        return False


class _LabSshServer(asyncssh.SSHServer):
    """asyncssh's callbacks for one connection."""

    def __init__(self, context: _Context) -> None:
        self.context = context
        self.tap: Tap | None = None
        self.conn: asyncssh.SSHServerConnection | None = None
        self.gate: LoginGate | None = None
        self.failures = 0
        self.told_algorithms = False

    def _event(self, incoming: bool, event: str, text: str, **values: object) -> None:
        if self.tap is not None:
            self.tap.event(incoming, event, text, **values)

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.tap = tap_of(conn)
        where = self.context.where
        if self.tap is not None and self.tap.record is not None:
            self.gate = LoginGate(where.services, where.clock, self.tap.record)  # type: ignore[arg-type]
        peer = conn.get_extra_info("peername") or ("",)
        if not self.context.options.allow_remote and not is_loopback(str(peer[0])):
            self._event(False, "disconnect", f"refused {peer[0]}: the lab console takes loopback peers only")
            conn.disconnect(DISC_HOST_NOT_ALLOWED, "netlab: loopback peers only")

    def connection_lost(self, exc: Exception | None) -> None:
        reason = describe_exit(exc)
        self._event(False, "disconnect", f"connection ended: {reason}", reason=reason)
        if self.gate is not None:
            self.gate.cancel()
        if self.tap is not None:
            self.tap.close_record(reason)

    def _algorithms(self) -> None:
        if self.told_algorithms or self.conn is None:
            return
        self.told_algorithms = True
        info = self.conn.get_extra_info
        self._event(False, "algorithms",
                    f"in use from the client: cipher {info('recv_cipher')}, mac {info('recv_mac')}, compression "
                    f"{info('recv_compression')}; to it: cipher {info('send_cipher')}",
                    client_version=info("client_version"), server_version=info("server_version"),
                    cipher_c2s=info("recv_cipher"), cipher_s2c=info("send_cipher"),
                    mac_c2s=info("recv_mac"), mac_s2c=info("send_mac"),
                    compression_c2s=info("recv_compression"), compression_s2c=info("send_compression"))

    def begin_auth(self, username: str) -> bool:
        self._algorithms()
        if self.tap is not None:
            self.tap.user = username
        self._event(True, "auth", f"{username} asks to log in", user=username, method="none")
        return True  # always: nobody gets in without a password or a key

    def password_auth_supported(self) -> bool:
        return bool(self.context.accounts)

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return bool(self.context.keys)

    async def validate_password(self, username: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[bool | None] = loop.create_future()

        def check() -> None:
            expected = self.context.accounts.get(username)
            ok = expected is not None and hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))
            if not ok and self.gate is not None:
                self.gate.failed()
            if not verdict.done():
                verdict.set_result(ok)

        def refuse(after: float) -> None:
            self._event(True, "auth", f"password for {username}: refused unchecked, too many failed logins from"
                        f" this address (try again in {after:.0f} s)", user=username, method="password",
                        result="throttled")
            if not verdict.done():
                verdict.set_result(None)

        if self.gate is None:
            check()
        else:
            self.gate.attempt(check, refuse)
        ok = await verdict
        if ok is not None:
            self._event(True, "auth", f"password for {username}: {'accepted' if ok else 'refused'}",
                        user=username, method="password", result="accepted" if ok else "refused")
        return self._counted(bool(ok))

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = key.public_data in self.context.keys
        self._event(True, "auth", f"publickey {key.get_algorithm()} {fingerprint(key)} for {username}: "
                    f"{'accepted' if ok else 'refused'}", user=username, method="publickey",
                    result="accepted" if ok else "refused", key=fingerprint(key))
        return self._counted(ok)

    def _counted(self, ok: bool) -> bool:
        if not ok:
            self.failures += 1
            if self.failures >= MAX_AUTH_FAILURES and self.conn is not None:
                conn = self.conn
                self._event(False, "disconnect", f"{self.failures} failed logins: goodbye")
                asyncio.get_running_loop().call_soon(conn.disconnect, DISC_NO_MORE_AUTH_METHODS,
                                                     "netlab: too many authentication failures")
        return ok

    def auth_completed(self) -> None:
        user = self.tap.user if self.tap is not None else "?"
        self._event(False, "auth", f"{user} logged in", user=user, result="logged in")

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        self._event(True, "channel-open", f"direct-tcpip to {dest_host}:{dest_port} refused: no forwarding here")
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._event(True, "channel-request", f"tcpip-forward {listen_host}:{listen_port} refused: no forwarding"
                    " here")
        return False


class _AcceptorListener:
    """asyncssh's acceptor as the lab's :class:`~lab.protocols._library.Listener`."""

    def __init__(self, acceptor: asyncssh.SSHAcceptor) -> None:
        self._acceptor = acceptor

    @property
    def port(self) -> int:
        return int(self._acceptor.get_port())

    def close(self) -> None:
        self._acceptor.close()

    async def wait_closed(self) -> None:
        await self._acceptor.wait_closed()


async def listen(where: Listening) -> _AcceptorListener:
    """Start asyncssh on ``where``: the lab's host key (or ``--host-key``),
    its accounts and keys, the console and SFTP."""
    options: SshOptions = where.options
    keys = read_authorized_keys(options.authorized_keys) if options.authorized_keys else []
    if options.host_key:
        try:
            host_key = asyncssh.read_private_key(options.host_key)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ConfigError(f"ssh: cannot read the host key {options.host_key}: {exc}",
                              hint="a private key without a passphrase, as ssh-keygen -N '' writes it") from None
    else:
        host_key = where.services.get(HOST_KEY).key()
    if options.sftp_root is not None and not os.path.isdir(options.sftp_root):
        raise ConfigError(f"ssh: the SFTP root {options.sftp_root} is not a folder")
    context = _Context(where, keys)
    acceptor = await asyncssh.listen(
        where.host, where.port,
        tunnel=TapListener(where.recorder, where.clock, where.idle_timeout or 0),
        server_factory=lambda: _LabSshServer(context),
        server_host_keys=[host_key],
        process_factory=context.process,
        sftp_factory=context.sftp if options.sftp_root else None,
        login_timeout=options.login_grace,
        agent_forwarding=False, x11_forwarding=False, allow_scp=False,
        encoding="utf-8", line_editor=True,
        config=None,
    )
    return _AcceptorListener(acceptor)
