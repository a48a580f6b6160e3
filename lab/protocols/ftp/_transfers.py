"""FTP data connections on the server's side: PASV/EPSV listen for one
connection from the client's address, PORT/EPRT connect back to the
client's own unprivileged port (no FTP bounce), and every transfer
(LIST, NLST, MLSD, RETR, STOR, APPE, STOU) streams in 64 KiB chunks with
back-pressure, reported to the log as a child of the control connection.

:class:`FtpTransfers` is the part of :class:`~lab.protocols.ftp.FtpSession`
that moves files; the session holds the rest (login, paths, replies).

Tests: tests/protocols/test_ftp.py, tests/test_ftp_hostile.py, tests/interop/test_ftp_peers.py
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import secrets
import socket
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from lab.protocols._session import Session
from lab.protocols.ftp._data import (
    CHUNK,
    AsciiReader,
    AsciiWriter,
    Progress,
    format_epsv,
    format_pasv,
    open_record,
    parse_eprt,
    parse_port,
    same_host,
)
from lab.protocols.ftp._paths import Jail, entries, list_line, mlsx_facts

if TYPE_CHECKING:
    from lab.protocols.ftp._server import FtpOptions, FtpServer  # noqa: F401 - named in a string below

__all__ = ["MAX_LISTING", "Active", "FtpTransfers", "Passive", "Transfer", "Upload", "without_options"]

MAX_LISTING = 10_000  # entries in one listing
Chunks = Generator[bytes, None, None]


class Passive:
    """A listening socket for one data connection (PASV/EPSV)."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setblocking(False)
            self.sock.bind((host, 0))
            self.sock.listen(1)
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Active:
    """Where to connect for one data connection (PORT/EPRT)."""

    host: str
    port: int


@dataclass
class Transfer:
    """A transfer asked for and not yet finished."""

    label: str  # "RETR a.txt", as the log shows it
    outgoing: bool
    ascii: bool
    chunks: Chunks | None = None  # what is sent
    sink: Upload | None = None  # where what arrives goes
    done: str = "Transfer complete"
    progress: Progress | None = None  # once its data connection is open
    task: asyncio.Task[None] | None = None
    source: IO[bytes] | None = None  # the file read, closed however the transfer ends

    def release(self) -> None:
        if self.chunks is not None:
            self.chunks.close()
        if self.source is not None:
            self.source.close()


class Upload:
    """A file being written (STOR/APPE/STOU), up to a cap."""

    def __init__(self, path: str, mode: str, offset: int, cap: int, *, new: bool) -> None:
        self.path = path
        self.new = new
        self.file: IO[bytes] = open(path, mode)  # closed in close()
        if offset:
            self.file.seek(offset)
            self.file.truncate()
        self.left = cap

    def write(self, data: bytes) -> bool:
        """False once the cap is passed (nothing more is written)."""
        self.left -= len(data)
        if self.left < 0:
            return False
        self.file.write(data)
        return True

    def close(self, keep: bool) -> None:
        if self.file.closed:
            return
        self.file.close()
        if not keep and self.new:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def without_options(arg: str) -> str:
    """A LIST argument without ls options ("LIST -la"), which many
    clients send and which ask for nothing this server does differently."""
    words = arg.split(" ")
    while words and words[0].startswith("-"):
        words.pop(0)
    return " ".join(words)


def _file_chunks(fh: IO[bytes]) -> Chunks:
    try:
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()


def _text_chunks(lines: Iterator[str]) -> Chunks:
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line + "\r\n")
        size += len(line) + 2
        if size >= CHUNK:
            yield "".join(batch).encode("utf-8", "surrogateescape")
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode("utf-8", "surrogateescape")


class FtpTransfers(Session["FtpServer"]):
    """Data connections and transfers, for :class:`~lab.protocols.ftp.FtpSession`."""

    anonymous: bool
    ascii: bool
    rest: int
    data: Passive | Active | None
    transfer: Transfer | None
    verb: str
    _transfers: int
    _done: bool

    @property
    def jail(self) -> Jail:
        return self.server.jail

    @property
    def options(self) -> FtpOptions:
        return self.server.options

    # what the session provides
    def _reply(self, code: int, *lines: str) -> None:
        raise NotImplementedError

    def _error(self, code: int, text: str) -> None:
        raise NotImplementedError

    def _go_on(self) -> None:
        raise NotImplementedError

    def _path(self, arg: str, *, follow: bool = True, exists: bool = False) -> tuple[str, str] | None:
        raise NotImplementedError

    def _regular(self, arg: str) -> tuple[str, str, os.stat_result] | None:
        raise NotImplementedError

    # -- data connections ------------------------------------------------------

    def _local_host(self) -> str:
        local = getattr(self.conn, "local", ())
        return str(local[0]) if local else "127.0.0.1"

    def _drop_data(self) -> None:
        data, self.data = self.data, None
        if isinstance(data, Passive):
            data.close()

    def _passive(self) -> Passive | None:
        self._drop_data()
        try:
            passive = Passive(self._local_host())
        except OSError as exc:
            self._reply(425, f"Cannot open a passive port: {exc.strerror or exc}")
            return None
        self.data = passive
        return passive

    def handle_pasv(self, arg: str) -> None:
        host = self._local_host()
        if ":" in host:
            self._reply(425, "PASV cannot name an IPv6 address: use EPSV")
            return
        passive = self._passive()
        if passive is not None:
            self._reply(227, format_pasv(host, passive.port))

    def handle_epsv(self, arg: str) -> None:
        if arg.upper() == "ALL":
            self._reply(200, "EPSV ALL okay")
            return
        if arg and arg not in ("1", "2"):
            self._reply(522, "Network protocol not supported, use (1,2)")
            return
        passive = self._passive()
        if passive is not None:
            self._reply(229, format_epsv(passive.port))

    def _active(self, host: str, port: int) -> None:
        peer = str(self.conn.peer[0]) if self.conn.peer else ""
        if not same_host(host, peer):
            self.conn.note(f"{self.verb} to {host}:{port} refused: not the client's own address {peer} (FTP bounce)")
            self._reply(504, f"{self.verb} refused: data connections go to your own address only")
            return
        address = ipaddress.ip_address(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_loopback:
            # a lab's data connections stay on this machine, whoever the client is
            self.conn.note(f"{self.verb} to {host}:{port} refused: active mode connects to loopback only")
            self._reply(504, f"{self.verb} refused: data connections go to loopback addresses only")
            return
        if port < 1024:
            self.conn.note(f"{self.verb} to {host}:{port} refused: a privileged port (FTP bounce)")
            self._reply(504, f"{self.verb} refused: port {port} is privileged")
            return
        self._drop_data()
        self.data = Active(host, port)
        self._reply(200, f"{self.verb} command successful")

    def handle_port(self, arg: str) -> None:
        try:
            host, port = parse_port(arg)
        except ValueError as exc:
            self._error(501, str(exc))
            return
        self._active(host, port)

    def handle_eprt(self, arg: str) -> None:
        try:
            host, port = parse_eprt(arg)
        except NotImplementedError:
            self._reply(522, "Network protocol not supported, use (1,2)")
            return
        except ValueError as exc:
            self._error(501, f"Syntax: EPRT |proto|address|port| ({exc})")
            return
        self._active(host, port)

    def handle_abor(self, arg: str) -> None:
        transfer, self.transfer = self.transfer, None
        self._drop_data()
        if transfer is None or transfer.task is None:
            self._reply(225, "No transfer to abort")
            self._go_on()
            return
        transfer.task.cancel()
        self._reply(426, f"{transfer.label}: transfer aborted")
        self._reply(226, "ABOR successful")
        self._go_on()

    # -- transfers ---------------------------------------------------------------

    def _start(self, transfer: Transfer) -> None:
        """Open the data connection and run ``transfer`` (the command was
        checked: its file is open)."""
        data, self.data = self.data, None
        if data is None:
            transfer.release()
            if transfer.sink is not None:
                transfer.sink.close(keep=False)
            self._reply(425, "Use PASV, EPSV, PORT or EPRT first")
            return
        self.transfer = transfer
        mode = "ASCII" if transfer.ascii else "BINARY"
        self._reply(150, f"Opening {mode} mode data connection for {transfer.label}")
        transfer.task = asyncio.get_running_loop().create_task(self._run(transfer, data))

    async def _open(self, data: Passive | Active) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The data connection, within ``data_timeout`` on the lab's clock
        (:class:`TimeoutError` after it)."""
        task = asyncio.ensure_future(self._connect(data))
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self.server.clock.call_later(self.options.data_timeout, expire)
        try:
            return await task
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError("timed out") from None
            raise
        finally:
            timer.cancel()
            if isinstance(data, Passive):
                data.close()

    async def _connect(self, data: Passive | Active) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(data, Active):
            return await asyncio.open_connection(data.host, data.port, local_addr=(self._local_host(), 0))
        loop = asyncio.get_running_loop()
        peer = str(self.conn.peer[0]) if self.conn.peer else ""
        while True:
            sock, addr = await loop.sock_accept(data.sock)
            if not peer or same_host(str(addr[0]), peer):
                return await asyncio.open_connection(sock=sock)
            # another host must not take this transfer (RFC 2577 §5)
            self.conn.note(f"data connection from {addr[0]} refused: the client is {peer}")
            sock.close()

    async def _run(self, transfer: Transfer, data: Passive | Active) -> None:
        try:
            reader, writer = await self._open(data)
        except BaseException as exc:  # a timeout, a refusal, or ABOR/QUIT/hang-up meanwhile (cancelled)
            transfer.release()
            if transfer.sink is not None:
                transfer.sink.close(keep=False)
            if not isinstance(exc, OSError):
                raise
            why = (exc.strerror or str(exc)) or "timed out"
            self._finish(transfer, 425, f"Can't open data connection: {why}")
            return
        self._transfers += 1
        progress = transfer.progress = Progress(open_record(self.conn, f"d{self._transfers}", writer),
                                                transfer.outgoing)
        code, text = 226, transfer.done
        try:
            if transfer.outgoing:
                code, text = await self._send(transfer, writer, progress)
            else:
                code, text = await self._receive(transfer, reader, progress)
        except asyncio.CancelledError:
            code, text = 426, "aborted"
            raise
        except OSError as exc:
            code, text = 426, f"Connection closed; transfer aborted ({exc.strerror or exc})"
        except Exception as exc:  # a bug must not leave the session waiting for a transfer forever
            self.conn.note(f"{transfer.label} failed: {type(exc).__name__}: {exc}")
            code, text = 451, "Local error in processing"
        finally:
            transfer.release()
            if transfer.sink is not None:
                transfer.sink.close(keep=code != 552)
            writer.close()
            progress.done(transfer.label, "ascii" if transfer.ascii else "binary", code == 226)
            progress.record.closed("transfer complete" if code == 226 else f"transfer cut short ({code})")
        self._finish(transfer, code, text)

    async def _send(self, transfer: Transfer, writer: asyncio.StreamWriter, progress: Progress) -> tuple[int, str]:
        assert transfer.chunks is not None
        convert = AsciiWriter().convert if transfer.ascii else None
        for chunk in transfer.chunks:
            if convert is not None:
                chunk = convert(chunk)
            writer.write(chunk)
            progress.add(chunk)
            await writer.drain()  # back-pressure: read no more from disk than the client takes
        if writer.can_write_eof():
            writer.write_eof()
        return 226, transfer.done

    async def _receive(self, transfer: Transfer, reader: asyncio.StreamReader,
                       progress: Progress) -> tuple[int, str]:
        sink = transfer.sink
        assert sink is not None
        reading = AsciiReader() if transfer.ascii else None
        while chunk := await reader.read(CHUNK):
            progress.add(chunk)
            if not sink.write(reading.convert(chunk) if reading is not None else chunk):
                self.conn.note(f"{transfer.label}: refused past {self.options.max_upload} bytes")
                return 552, f"Exceeded storage allocation ({self.options.max_upload} bytes)"
        if reading is not None:
            sink.write(reading.flush())
        return 226, transfer.done

    def _finish(self, transfer: Transfer, code: int, text: str) -> None:
        if self.transfer is transfer:
            self.transfer = None
            if not self._done:
                self._reply(code, text)
                self._go_on()

    def _listing(self, arg: str, kind: str) -> None:
        found = self._path(without_options(arg), exists=True)
        if found is None:
            return
        vpath, real = found
        if kind == "MLSD" and not os.path.isdir(real):
            self._reply(501, f"{arg[:80]}: not a directory (MLST describes a file)")
            return
        lines = self._list_lines(real, vpath, kind=kind)
        label = f"{kind} {vpath}"
        self._start(Transfer(label=label, outgoing=True, ascii=True, chunks=_text_chunks(lines),
                              done="Transfer complete"))

    def _list_lines(self, real: str, vpath: str, *, kind: str = "LIST", limit: int = MAX_LISTING) -> Iterator[str]:
        writable = not self.anonymous
        if os.path.isdir(real):
            try:
                listed = list(entries(self.jail, real, limit))
            except OSError:
                listed = []
        else:
            listed = [(os.path.basename(real), os.stat(real))]
        now = time.time()
        for name, st in listed:
            if kind == "NLST":
                yield name
            elif kind == "MLSD":
                yield mlsx_facts(name, st, writable=writable)
            else:
                yield list_line(name, st, now)

    def handle_list(self, arg: str) -> None:
        self._listing(arg, "LIST")

    def handle_nlst(self, arg: str) -> None:
        self._listing(arg, "NLST")

    def handle_mlsd(self, arg: str) -> None:
        self._listing(arg, "MLSD")

    def handle_retr(self, arg: str) -> None:
        found = self._regular(arg)
        offset, self.rest = self.rest, 0
        if found is None:
            return
        vpath, real, _ = found
        try:
            fh = open(real, "rb")  # closed by the chunks when done
        except OSError as exc:
            self._reply(550, f"{arg[:80]}: {exc.strerror or exc}")
            return
        if offset:
            fh.seek(offset)
        self._start(Transfer(label=f"RETR {vpath}", outgoing=True, ascii=self.ascii,
                              chunks=_file_chunks(fh), source=fh))

    def _store(self, arg: str, *, append: bool = False, unique: bool = False) -> None:
        offset, self.rest = self.rest, 0
        if unique:
            base = arg or "stou"
            found = None
            for _ in range(100):
                candidate = f"{base}.{secrets.token_hex(3)}"
                found = self._path(candidate)
                if found is None:
                    return
                if not os.path.lexists(found[1]):
                    break
            assert found is not None
        else:
            found = self._path(arg) if arg else None
            if found is None:
                if not arg:
                    self._error(501, f"Syntax: {self.verb} path")
                return
        vpath, real = found
        if os.path.isdir(real):
            self._reply(550, f"{vpath}: is a directory")
            return
        new = not os.path.exists(real)
        mode = "ab" if append else "r+b" if offset and not new else "wb"
        try:
            sink = Upload(real, mode, 0 if append else offset, self.options.max_upload, new=new)
        except OSError as exc:
            self._reply(553 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 550,
                        f"{vpath}: {exc.strerror or exc}")
            return
        done = f"Transfer complete; stored as {vpath}" if unique else "Transfer complete"
        label = f"{self.verb} {vpath}"
        if unique:
            self._start_unique(Transfer(label=label, outgoing=False, ascii=self.ascii, sink=sink, done=done), vpath)
        else:
            self._start(Transfer(label=label, outgoing=False, ascii=self.ascii, sink=sink, done=done))

    def _start_unique(self, transfer: Transfer, vpath: str) -> None:
        # RFC 1123 §4.1.2.9: the 150 reply names the file (as "FILE: name")
        if self.data is None:
            self._start(transfer)
            return
        data, self.data = self.data, None
        self.transfer = transfer
        self._reply(150, f"FILE: {vpath.rsplit('/', 1)[-1]}")
        transfer.task = asyncio.get_running_loop().create_task(self._run(transfer, data))

    def handle_stor(self, arg: str) -> None:
        self._store(arg)

    def handle_appe(self, arg: str) -> None:
        self._store(arg, append=True)

    def handle_stou(self, arg: str) -> None:
        self._store(arg, unique=True)
