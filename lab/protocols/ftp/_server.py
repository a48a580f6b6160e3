"""The FTP server (RFC 959, FEAT 2389, SIZE/MDTM/MLSD/MLST 3659, EPSV/EPRT
2428): one directory tree, jailed to its root.

A session logs in (a lab account, or anonymous and read-only), moves
about the tree and asks for transfers.  Each transfer runs on a data
connection of its own: passive (PASV/EPSV: the server listens on a port
the OS picks and takes the first connection from the client's address)
or active (PORT/EPRT: the server connects back, to the client's own
address and an unprivileged port only, so no one can bounce a
connection off the lab to a third host).  Files stream from and to disk
in 64 KiB chunks while the other side keeps up; the log shows each data
connection as a child of its control connection, with a preview and the
byte count.

Tests: tests/protocols/test_ftp.py, tests/test_ftp_traversal.py, tests/interop/test_ftp_peers.py
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lab.errors import ConfigError, ConnectionClosed, LabError, ProtocolError
from lab.protocols._base import Message
from lab.protocols._login import LoginGate
from lab.protocols._options import Options, integer, option, seconds, size, yes_no
from lab.protocols._session import Peer, ServerBehaviour
from lab.protocols.ftp._codec import FtpCommand, FtpReply
from lab.protocols.ftp._data import CHUNK, AsciiWriter
from lab.protocols.ftp._paths import Jail, PathRefused, mlsx_facts, quote_path
from lab.protocols.ftp._transfers import Active, FtpTransfers, Passive, Transfer, without_options

__all__ = ["ANONYMOUS", "DEMO_USERS", "FtpOptions", "FtpServer", "FtpSession", "parse_account"]

DEMO_USERS = (("alice", "wonderland"), ("bob", "builder"))
ANONYMOUS = frozenset({"anonymous", "ftp"})
MAX_ERRORS = 20  # mistakes before we hang up
MAX_WAITING = 64  # commands held while a transfer or a login runs
MAX_UPLOAD = 64 * 1024 * 1024 * 1024
DEMO_TREE = {
    "pub/readme.txt": "Welcome to the netlab FTP server.\nThis tree is temporary: serve --path DIR for your own.\n",
    "pub/hello.txt": "hello, world\n",
    "pub/lines.txt": "".join(f"line {n}\n" for n in range(1, 101)),
}
FEATURES = ("EPRT", "EPSV", "MDTM", "MLST type*;size*;modify*;perm*;", "PASV", "REST STREAM", "SIZE", "TVFS",
            "UTF8")
# what may be asked while a transfer runs (RFC 959 §4.1.3: ABOR, STAT, QUIT); NOOP is harmless
DURING_TRANSFER = frozenset({"ABOR", "STAT", "QUIT", "NOOP"})
BEFORE_LOGIN = frozenset({"USER", "PASS", "QUIT", "FEAT", "SYST", "NOOP", "OPTS", "HELP", "AUTH", "ACCT"})
WRITES = frozenset({"STOR", "APPE", "STOU", "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO"})


def parse_account(text: str) -> tuple[str, str]:
    """``NAME=PASSWORD``; :class:`ValueError` saying what is wrong."""
    name, sep, password = text.partition("=")
    name = name.strip()
    if not sep or not name or not password or any(c.isspace() for c in name) or not name.isprintable():
        raise ValueError(f"wants NAME=PASSWORD, got {text!r}")
    return name, password


@dataclass(frozen=True, kw_only=True)
class FtpOptions(Options):
    """How an FTP server is set up."""

    path: str | None = option(None, help="the directory served, the client's / (default: a temporary demo tree)",
                              metavar="DIR")
    user: tuple[tuple[str, str], ...] = option(
        help="an account (without any: the demo accounts alice=wonderland and bob=builder)",
        parse=parse_account, multiple=True, metavar="NAME=PASSWORD", example="alice=wonderland")
    anonymous: bool = option(True, help="let 'anonymous' and 'ftp' log in with any password, read-only",
                             parse=yes_no(), metavar="yes|no")
    max_upload: int = option(100 * 1024 * 1024, help="the largest file a client may store, in bytes, K or M",
                             parse=size(MAX_UPLOAD), metavar="BYTES", example="10M", show_default="100M")
    max_line: int = option(1024, help="the longest command line in bytes (longer ones are answered 500)",
                           parse=integer(64, 8192), metavar="BYTES")
    data_timeout: float = option(30.0, help="seconds to wait for a data connection to open",
                                 parse=seconds(0.1, 600), metavar="SECONDS")


Handler = Callable[["FtpSession", str], None]


class FtpSession(FtpTransfers):
    """One client's FTP session: who is logged in, where it stands, the
    representation type, the next data connection and a running transfer."""

    def __init__(self, server: FtpServer, conn: Peer) -> None:
        super().__init__(server, conn)
        self.user: str | None = None  # logged in as
        self.anonymous = False
        self.named: str | None = None  # USER given, PASS awaited
        self.cwd = "/"
        self.ascii = True  # RFC 959 §3.1.1.1: TYPE A is the default
        self.rest = 0
        self.rename_from: str | None = None
        self.data: Passive | Active | None = None
        self.transfer: Transfer | None = None
        self.errors = 0
        self.verb = ""
        self.gate = LoginGate(server.services, server.clock, conn)
        self._waiting: deque[FtpCommand] = deque()
        self._transfers = 0
        self._eof = False
        self._done = False

    # -- the connection ---------------------------------------------------

    def connection_made(self) -> None:
        # RFC 959 §4.1.3 has ABOR follow an urgent Telnet Synch: clients
        # (ftplib) send it with MSG_OOB, which takes the line's last byte out
        # of the stream unless urgent data stays inline
        extra = getattr(self.conn, "extra_info", None)
        sock = extra("socket") if extra is not None else None
        if sock is not None and hasattr(socket, "SO_OOBINLINE"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            except OSError:
                pass
        self._reply(220, "netlab FTP server ready")

    def connection_lost(self) -> None:
        self._done = True
        self.gate.cancel()
        self._waiting.clear()
        self._drop_data()
        transfer, self.transfer = self.transfer, None
        if transfer is not None and transfer.task is not None:
            transfer.task.cancel()

    def protocol_error(self, exc: ProtocolError) -> None:
        try:
            self._reply(500, f"{exc.message}; closing")
        except LabError:
            pass
        self._close()

    def eof_received(self) -> None:
        self._eof = True
        transfer = self.transfer
        if transfer is not None and transfer.progress is None and transfer.task is not None:
            # gone before its data connection opened: nobody will open it now
            self.transfer = None
            transfer.task.cancel()
        if self.transfer is None and not self.gate.waiting:
            self._close()

    def message_received(self, msg: Message) -> None:
        if not isinstance(msg, FtpCommand) or self._done:
            return
        busy = self.gate.waiting or self._waiting or (self.transfer is not None and msg.verb not in DURING_TRANSFER)
        if busy:
            if len(self._waiting) >= MAX_WAITING:
                self._reply(421, "too many commands waiting; closing")
                self._close()
                return
            self._waiting.append(msg)
            return
        self._handle(msg)

    def _go_on(self) -> None:
        """A login or a transfer finished: handle what waited meanwhile."""
        while self._waiting and not self._done and not self.gate.waiting and self.transfer is None:
            self._handle(self._waiting.popleft())
        if self._eof and self.transfer is None and not self.gate.waiting:
            self._close()

    def _handle(self, msg: FtpCommand) -> None:
        self.verb = msg.verb
        if msg.problem:
            self._error(500, f"Syntax error: {msg.problem}")
            return
        if len(msg.raw) > self.options.max_line:
            self._error(500, f"Command line longer than {self.options.max_line} bytes")
            return
        handler = self._HANDLERS.get(msg.verb)
        if handler is None:
            known = msg.verb in self._KNOWN_UNSUPPORTED
            self._error(502 if known else 500,
                        f"Command {msg.verb[:8]!r} not {'implemented' if known else 'understood'}")
            return
        if self.user is None and msg.verb not in BEFORE_LOGIN:
            self._reply(530, "Please log in with USER and PASS first")
            return
        if msg.verb in WRITES and self.anonymous:
            self.conn.note(f"anonymous may not {msg.verb}")
            self._reply(550, "Permission denied: anonymous access is read-only")
            return
        if msg.verb != "RNTO":
            self.rename_from = None  # RNTO must come right after RNFR (RFC 959 §4.1.3)
        if msg.verb in ("APPE", "STOU", "LIST", "NLST", "MLSD"):
            self.rest = 0  # a transfer that does not restart: REST is spent (RETR and STOR take it)
        handler(self, msg.arg)

    # -- answering --------------------------------------------------------

    def _reply(self, code: int, *lines: str) -> None:
        try:
            self.conn.send(FtpReply.of(code, *lines))
        except ConnectionClosed:
            self._done = True

    def _error(self, code: int, text: str) -> None:
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self._reply(421, "Too many errors; closing")
            self._close()
            return
        self._reply(code, text)

    def _close(self) -> None:
        self._done = True
        self._waiting.clear()
        self.conn.close()

    def _path(self, arg: str, *, follow: bool = True, exists: bool = False) -> tuple[str, str] | None:
        """(virtual, real) for ``arg``, or None after a 550 (also when
        ``exists`` asks for something there and nothing is)."""
        try:
            vpath = self.jail.virtual(self.cwd, arg)
            real = self.jail.real(vpath, follow=follow)
        except PathRefused as exc:
            self.conn.note(f"{self.verb} {arg[:80]!r} refused: {exc}")
            real = None
        if real is None or (exists and not os.path.exists(real)):
            self._reply(550, f"{arg[:80]}: no such file or directory")
            return None
        return vpath, real

    # -- login --------------------------------------------------------------

    def handle_user(self, arg: str) -> None:
        if not arg:
            self._error(501, "Syntax: USER name")
            return
        self.user, self.anonymous = None, False
        self.named = arg
        if arg.lower() in ANONYMOUS and self.options.anonymous:
            self._reply(331, "Anonymous login okay, send your e-mail address as password")
        else:
            self._reply(331, f"Password required for {arg[:40]}")  # the same for every name

    def handle_pass(self, arg: str) -> None:
        if self.user is not None:
            self._reply(230, "Already logged in")
            return
        if self.named is None:
            self._reply(503, "Login with USER first")
            return
        name, self.named = self.named, None
        if name.lower() in ANONYMOUS and self.options.anonymous:
            self.user, self.anonymous = "anonymous", True
            self.conn.note("anonymous logged in (read-only)")
            self._reply(230, "Anonymous access granted, read-only")
            return

        def check() -> None:
            password = self.server.users.get(name)
            if password is None or not secrets.compare_digest(password.encode(), arg.encode()):
                self.gate.failed()
                self.conn.note(f"login failed for {name[:40]!r}")
                self._error(530, "Login incorrect")
            else:
                self.user = name
                self.conn.note(f"{name} logged in")
                self._reply(230, f"User {name} logged in")

        self.gate.attempt(check, self._refuse, then=self._go_on)

    def _refuse(self, retry_after: float) -> None:
        self._error(530, f"Too many failed logins from your address: try again in {retry_after:.0f} s")

    def handle_acct(self, arg: str) -> None:
        self._reply(202, "No accounts needed here")

    def handle_quit(self, arg: str) -> None:
        transfer, self.transfer = self.transfer, None
        if transfer is not None and transfer.task is not None:
            transfer.task.cancel()
        self._reply(221, "Goodbye")
        self._close()

    # -- information ----------------------------------------------------------

    def handle_syst(self, arg: str) -> None:
        self._reply(215, "UNIX Type: L8")

    def handle_noop(self, arg: str) -> None:
        self._reply(200, "NOOP okay")

    def handle_feat(self, arg: str) -> None:
        self._reply(211, "Features:", *FEATURES, "End")

    def handle_opts(self, arg: str) -> None:
        words = arg.upper().split()
        if words[:1] == ["UTF8"] and words[1:] in ([], ["ON"]):
            self._reply(200, "UTF8 is always on")
        elif words[:1] == ["MLST"]:
            self._reply(200, "MLST OPTS type;size;modify;perm;")
        else:
            self._error(501, f"Option {arg[:40]!r} not understood")

    def handle_help(self, arg: str) -> None:
        verbs = sorted(self._HANDLERS)
        rows = [" ".join(f"{v:<5}" for v in verbs[i:i + 10]) for i in range(0, len(verbs), 10)]
        self._reply(214, "The following commands are recognized:", *rows, "Help OK")

    def handle_auth(self, arg: str) -> None:
        self._reply(502, "TLS is not offered here: this lab's FTP is cleartext, as RFC 959 is")

    def handle_stat(self, arg: str) -> None:
        if arg and self.transfer is None:
            found = self._path(without_options(arg), exists=True)
            if found is None:
                return
            vpath, real = found
            self._reply(213, f"Status of {vpath}:", *self._list_lines(real, vpath, limit=200), "End of status")
            return
        now = self.transfer
        data = "passive" if isinstance(self.data, Passive) else "active" if isinstance(self.data, Active) else "none"
        lines = [
            "netlab FTP server status:",
            f"Connected from {self.conn.peer[0] if self.conn.peer else '?'}",
            f"Logged in as {self.user or '(nobody)'}",
            f"TYPE: {'ASCII' if self.ascii else 'BINARY'}, STRU: File, MODE: Stream",
            f"Data connection: {data}",
            f"Transfer: {now.label}, {now.progress.size if now.progress else 0} bytes so far" if now
            else "No transfer in progress",
            "End of status",
        ]
        self._reply(211, *lines)

    # -- settings ---------------------------------------------------------------

    def handle_type(self, arg: str) -> None:
        words = arg.upper().split()
        if words in (["A"], ["A", "N"]):
            self.ascii = True
            self._reply(200, "Type set to A")
        elif words in (["I"], ["L", "8"]):
            self.ascii = False
            self._reply(200, "Type set to I")
        elif words and words[0] in ("A", "E", "I", "L"):
            self._reply(504, f"TYPE {arg[:10]} not implemented")
        else:
            self._error(501, "Syntax: TYPE A or TYPE I")

    def handle_mode(self, arg: str) -> None:
        if arg.upper() == "S":
            self._reply(200, "Mode set to S")
        else:
            self._reply(504, "Only MODE S (stream) is implemented")

    def handle_stru(self, arg: str) -> None:
        if arg.upper() == "F":
            self._reply(200, "Structure set to F")
        else:
            self._reply(504, "Only STRU F (file) is implemented")

    def handle_allo(self, arg: str) -> None:
        self._reply(202, "No storage allocation needed")

    def handle_rest(self, arg: str) -> None:
        if not arg.isdigit() or len(arg) > 18:
            self._error(501, "Syntax: REST offset (a number of bytes)")
            return
        self.rest = int(arg)
        self._reply(350, f"Restarting at {self.rest}. Send RETR or STOR")

    # -- directories ------------------------------------------------------------

    def handle_pwd(self, arg: str) -> None:
        self._reply(257, f"{quote_path(self.cwd)} is the current directory")

    def handle_cwd(self, arg: str) -> None:
        found = self._path(arg or "/")
        if found is None:
            return
        vpath, real = found
        if not os.path.isdir(real):
            self._reply(550, f"{arg[:80]}: not a directory")
            return
        self.cwd = vpath
        self._reply(250, f"Directory changed to {vpath}")

    def handle_cdup(self, arg: str) -> None:
        self.handle_cwd("..")

    def handle_mkd(self, arg: str) -> None:
        if not arg:
            self._error(501, "Syntax: MKD path")
            return
        found = self._path(arg)
        if found is None:
            return
        vpath, real = found
        try:
            os.mkdir(real)
        except OSError as exc:
            self._reply(550, f"{arg[:80]}: {exc.strerror or exc}")
            return
        self._reply(257, f"{quote_path(vpath)} created")

    def handle_rmd(self, arg: str) -> None:
        found = self._path(arg, follow=False) if arg else None
        if found is None:
            if not arg:
                self._error(501, "Syntax: RMD path")
            return
        vpath, real = found
        if real == self.jail.root or vpath == "/":
            self._reply(550, "Cannot remove the root")
            return
        try:
            os.rmdir(real)
        except OSError as exc:
            self._reply(550, f"{arg[:80]}: {exc.strerror or exc}")
            return
        self._reply(250, f"{vpath} removed")

    # -- files ------------------------------------------------------------------

    def handle_dele(self, arg: str) -> None:
        found = self._path(arg, follow=False) if arg else None
        if found is None:
            if not arg:
                self._error(501, "Syntax: DELE path")
            return
        vpath, real = found
        if os.path.isdir(real) and not os.path.islink(real):
            self._reply(550, f"{arg[:80]}: is a directory (RMD removes directories)")
            return
        try:
            os.unlink(real)
        except OSError as exc:
            self._reply(550, f"{arg[:80]}: {exc.strerror or exc}")
            return
        self._reply(250, f"{vpath} deleted")

    def handle_rnfr(self, arg: str) -> None:
        found = self._path(arg, follow=False) if arg else None
        if found is None:
            if not arg:
                self._error(501, "Syntax: RNFR path")
            return
        _, real = found
        if real == self.jail.root or not os.path.lexists(real):
            self._reply(550, f"{arg[:80]}: no such file or directory")
            return
        self.rename_from = real
        self._reply(350, "Ready for RNTO")

    def handle_rnto(self, arg: str) -> None:
        source, self.rename_from = self.rename_from, None
        if source is None:
            self._reply(503, "RNFR first")
            return
        found = self._path(arg, follow=False) if arg else None
        if found is None:
            if not arg:
                self._error(501, "Syntax: RNTO path")
            return
        vpath, real = found
        try:
            os.rename(source, real)
        except OSError as exc:
            self._reply(550, f"{arg[:80]}: {exc.strerror or exc}")
            return
        self._reply(250, f"Renamed to {vpath}")

    def _regular(self, arg: str) -> tuple[str, str, os.stat_result] | None:
        found = self._path(arg) if arg else None
        if found is None:
            if not arg:
                self._error(501, f"Syntax: {self.verb} path")
            return None
        vpath, real = found
        try:
            st = os.stat(real)
        except OSError:
            self._reply(550, f"{arg[:80]}: no such file")
            return None
        if not stat.S_ISREG(st.st_mode):
            self._reply(550, f"{arg[:80]}: not a regular file")
            return None
        return vpath, real, st

    def handle_size(self, arg: str) -> None:
        found = self._regular(arg)
        if found is None:
            return
        _, real, st = found
        if not self.ascii:
            self._reply(213, str(st.st_size))
            return
        if st.st_size > 16 * 1024 * 1024:
            self._reply(550, "SIZE in ASCII mode is not counted for files over 16 MiB: TYPE I first")
            return
        with open(real, "rb") as fh:
            writer, total = AsciiWriter(), 0
            while chunk := fh.read(CHUNK):
                total += len(writer.convert(chunk))
        self._reply(213, str(total))

    def handle_mdtm(self, arg: str) -> None:
        found = self._regular(arg)
        if found is not None:
            self._reply(213, time.strftime("%Y%m%d%H%M%S", time.gmtime(found[2].st_mtime)))

    def handle_mlst(self, arg: str) -> None:
        found = self._path(arg or ".")
        if found is None:
            return
        vpath, real = found
        try:
            st = os.stat(real)
        except OSError:
            self._reply(550, f"{arg[:80]}: no such file or directory")
            return
        self._reply(250, f"Listing {vpath}", mlsx_facts(vpath, st, writable=not self.anonymous), "End")

    _HANDLERS: ClassVar[dict[str, Handler]] = {
        "USER": handle_user, "PASS": handle_pass, "ACCT": handle_acct, "QUIT": handle_quit,
        "SYST": handle_syst, "NOOP": handle_noop, "FEAT": handle_feat, "OPTS": handle_opts,
        "HELP": handle_help, "AUTH": handle_auth, "STAT": handle_stat,
        "TYPE": handle_type, "MODE": handle_mode, "STRU": handle_stru, "ALLO": handle_allo, "REST": handle_rest,
        "PWD": handle_pwd, "XPWD": handle_pwd, "CWD": handle_cwd, "XCWD": handle_cwd, "CDUP": handle_cdup,
        "XCUP": handle_cdup, "MKD": handle_mkd, "XMKD": handle_mkd, "RMD": handle_rmd, "XRMD": handle_rmd,
        "DELE": handle_dele, "RNFR": handle_rnfr, "RNTO": handle_rnto, "SIZE": handle_size,
        "MDTM": handle_mdtm, "MLST": handle_mlst,
        "PASV": FtpTransfers.handle_pasv, "EPSV": FtpTransfers.handle_epsv, "PORT": FtpTransfers.handle_port,
        "EPRT": FtpTransfers.handle_eprt, "ABOR": FtpTransfers.handle_abor, "LIST": FtpTransfers.handle_list,
        "NLST": FtpTransfers.handle_nlst, "MLSD": FtpTransfers.handle_mlsd, "RETR": FtpTransfers.handle_retr,
        "STOR": FtpTransfers.handle_stor, "APPE": FtpTransfers.handle_appe, "STOU": FtpTransfers.handle_stou,
    }
    _KNOWN_UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {"SMNT", "REIN", "SITE", "PBSZ", "PROT", "CCC", "ADAT", "MIC", "CONF", "ENC", "LANG", "LPRT", "LPSV"})


class FtpServer(ServerBehaviour[FtpOptions]):
    """Serves one directory tree (``path``, or a temporary demo tree):
    one :class:`FtpSession` per control connection.

    Options (:class:`FtpOptions`): ``path``, ``user`` (NAME=PASSWORD;
    without any, the demo accounts alice/wonderland and bob/builder),
    ``anonymous`` (read-only), ``max_upload``, ``max_line``,
    ``data_timeout``.
    """

    session_type = FtpSession
    shell_names = ("root",)

    def __init__(self, options: FtpOptions) -> None:
        super().__init__(options)
        self.users: dict[str, str] = dict(options.user or DEMO_USERS)
        self._jail: Jail | None = None
        self._temporary: str | None = None

    @property
    def jail(self) -> Jail:
        if self._jail is None:
            raise LabError("ftp: the server has not started: it has no root yet")
        return self._jail

    @property
    def root(self) -> str:
        """The real directory served as ``/``."""
        return self.jail.root

    def started(self) -> None:
        path = self.options.path
        if path is None:
            self._temporary = path = tempfile.mkdtemp(prefix="netlab-ftp-")
            for name, text in DEMO_TREE.items():
                target = os.path.join(path, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w", encoding="utf-8") as fh:
                    fh.write(text)
            os.makedirs(os.path.join(path, "upload"), exist_ok=True)
        elif not os.path.isdir(path):
            raise ConfigError(f"ftp: --path {path} is not a directory", hint="name a directory that exists")
        self._jail = Jail(path)

    def stopped(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

