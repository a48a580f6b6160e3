"""FTP client verbs: log in, move about, list, fetch and store files.

Transfers are passive by default (EPSV, then PASV if the server does not
know it; the data connection goes to the control connection's own
server address, whatever a 227 reply names, as ftplib does since 3.9);
the client option ``passive=no`` makes them active (EPRT, or PORT with
``epsv=no``), the client listening on its own address.  Each data
connection shows in the log as a child of the control connection.

Tests: tests/protocols/test_ftp.py, tests/interop/test_ftp_peers.py
"""

from __future__ import annotations

import asyncio
import builtins
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any

from lab.errors import LabError
from lab.protocols._options import Options, integer, option, size, yes_no
from lab.protocols._verbs import Deadline, GreetedClient
from lab.protocols.ftp._codec import FtpCommand, FtpReply
from lab.protocols.ftp._data import (
    CHUNK,
    AsciiReader,
    AsciiWriter,
    DataRecord,
    Progress,
    open_record,
    parse_epsv_reply,
    parse_pasv_reply,
    same_host,
)

__all__ = ["MAX_GET", "FtpClient", "FtpClientOptions", "FtpReplyError"]

MAX_GET = 256 * 1024 * 1024  # bytes a get() keeps in memory; larger files go to a local file


class FtpReplyError(LabError):
    """The server refused (a 4xx or 5xx reply); ``reply`` is its answer, ``code`` its code."""

    def __init__(self, message: str, reply: FtpReply) -> None:
        super().__init__(f"{message}: {reply.summary()}")
        self.reply = reply
        self.code = reply.code


@dataclass(frozen=True, kw_only=True)
class FtpClientOptions(Options):
    """How an FTP client makes its data connections."""

    passive: bool = option(True, help="passive transfers (the client connects); no: active (the server connects)",
                           parse=yes_no(), metavar="yes|no")
    epsv: bool = option(True, help="the extended commands of RFC 2428 (EPSV/EPRT) before PASV/PORT",
                        parse=yes_no(), metavar="yes|no")
    max_get: int = option(MAX_GET, help="the largest file get() returns in memory", parse=size(1 << 40),
                          metavar="BYTES", show_default="256M")
    data_timeout: int = option(30, help="seconds to wait for a data connection", parse=integer(1, 600),
                               metavar="SECONDS")
    folder: str | None = option(None, help="the local folder get(local=...) writes to and put(local=...) reads "
                                "from (none: files stay in memory)", metavar="DIR")


class FtpClient(GreetedClient[FtpReply]):
    """Verbs for talking to an FTP server.

    Each verb returns what it asked for (a listing, a file's bytes, a
    size) or the server's :class:`FtpReply`; a 4xx or 5xx reply raises
    :class:`FtpReplyError`, except from :meth:`command`.  The greeting is
    read by the first verb.
    """

    reply_type = FtpReply
    reply_noun = "an FTP reply"

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.options: FtpClientOptions = FtpClientOptions()
        self._transfers = 0
        self.binary: bool | None = None  # the TYPE last set
        self.last: FtpReply | None = None  # the final reply of the last transfer

    def set_options(self, options: Any) -> None:
        self.options = options

    # -- plumbing ---------------------------------------------------------------

    async def _reply(self, deadline: Deadline, what: str) -> FtpReply:
        return await self._next_reply(deadline, what)

    async def _ask(self, verb: str, arg: str = "", *, timeout: float, check: bool = True,
                   deadline: Deadline | None = None) -> FtpReply:
        deadline = deadline or Deadline(timeout)
        await self._greeted(deadline)
        await self.channel.send(FtpCommand.of(verb, arg))
        reply = await self._reply(deadline, f"the reply to {verb}")
        if check and (reply.code or 500) >= 400:
            raise FtpReplyError(f"{verb} refused", reply)
        return reply

    async def command(self, line: str, timeout: float = 10.0) -> FtpReply:
        """Send any command line and return the reply, whatever its code."""
        verb, _, arg = line.partition(" ")
        return await self._ask(verb, arg, timeout=timeout, check=False)

    async def wait_greeting(self, timeout: float = 10.0) -> FtpReply:
        """The server's greeting (220)."""
        return await self._greeted(Deadline(timeout))

    # -- session ----------------------------------------------------------------

    async def login(self, user: str = "anonymous", password: str = "lab@example.test",
                    timeout: float = 10.0) -> FtpReply:
        """USER and, when asked (331), PASS: the 230 reply."""
        reply = await self._ask("USER", user, timeout=timeout)
        if reply.code == 331:
            reply = await self._ask("PASS", password, timeout=timeout)
        return reply

    async def quit(self, timeout: float = 10.0) -> FtpReply:
        """QUIT: the server says goodbye and closes."""
        return await self._ask("QUIT", timeout=timeout)

    async def noop(self, timeout: float = 10.0) -> FtpReply:
        return await self._ask("NOOP", timeout=timeout)

    async def syst(self, timeout: float = 10.0) -> str:
        """The server's system type (SYST)."""
        return (await self._ask("SYST", timeout=timeout)).text

    async def feat(self, timeout: float = 10.0) -> builtins.list[str]:
        """The features the server offers (FEAT, RFC 2389)."""
        reply = await self._ask("FEAT", timeout=timeout)
        return [line.strip() for line in reply.lines[1:-1]]

    async def type(self, mode: str = "I", timeout: float = 10.0) -> FtpReply:
        """TYPE I (binary) or TYPE A (ASCII: CRLF line ends on the wire)."""
        reply = await self._ask("TYPE", mode.upper(), timeout=timeout)
        self.binary = mode.upper() == "I"
        return reply

    # -- directories ------------------------------------------------------------

    async def pwd(self, timeout: float = 10.0) -> str:
        """The working directory (PWD's quoted path, RFC 959 appendix II)."""
        text = (await self._ask("PWD", timeout=timeout)).lines[0]
        if text.startswith('"'):
            end, i = [], 1
            while i < len(text):
                if text[i] == '"':
                    if text[i + 1:i + 2] == '"':
                        end.append('"')
                        i += 2
                        continue
                    break
                end.append(text[i])
                i += 1
            return "".join(end)
        return text

    async def cd(self, path: str, timeout: float = 10.0) -> FtpReply:
        """CWD (``..`` works, as CDUP)."""
        return await self._ask("CDUP" if path == ".." else "CWD", "" if path == ".." else path, timeout=timeout)

    async def mkdir(self, path: str, timeout: float = 10.0) -> FtpReply:
        return await self._ask("MKD", path, timeout=timeout)

    async def rmdir(self, path: str, timeout: float = 10.0) -> FtpReply:
        return await self._ask("RMD", path, timeout=timeout)

    async def delete(self, path: str, timeout: float = 10.0) -> FtpReply:
        return await self._ask("DELE", path, timeout=timeout)

    async def rename(self, old: str, new: str, timeout: float = 10.0) -> FtpReply:
        """RNFR then RNTO."""
        await self._ask("RNFR", old, timeout=timeout)
        return await self._ask("RNTO", new, timeout=timeout)

    async def size(self, path: str, timeout: float = 10.0) -> int:
        """SIZE (RFC 3659), in the current type."""
        return int((await self._ask("SIZE", path, timeout=timeout)).text.strip())

    async def mdtm(self, path: str, timeout: float = 10.0) -> str:
        """MDTM: the modification time, YYYYMMDDHHMMSS in UTC."""
        return (await self._ask("MDTM", path, timeout=timeout)).text.strip()

    async def mlst(self, path: str = "", timeout: float = 10.0) -> dict[str, str]:
        """MLST (RFC 3659): one entry's facts, ``name`` among them."""
        reply = await self._ask("MLST", path, timeout=timeout)
        return _facts(reply.lines[1]) if len(reply.lines) > 2 else {}

    # -- transfers --------------------------------------------------------------

    async def _set_type(self, binary: bool, timeout: float) -> None:
        if self.binary is not binary:
            await self.type("I" if binary else "A", timeout=timeout)

    @asynccontextmanager
    async def _data(self, verb: str, arg: str, deadline: Deadline,
                    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, DataRecord]]:
        """Set up a data connection, send ``verb arg``, take its 1xx, and
        yield the connection; the final reply is read after it closes."""
        options = self.options
        limit = float(options.data_timeout)
        opened: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        listener: socket.socket | None = None
        if options.passive:
            host, port = await self._passive(deadline)
            opened = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
        else:
            listener = await self._active(deadline)
        try:
            await self.channel.send(FtpCommand.of(verb, arg))
            reply = await self._reply(deadline, f"the reply to {verb}")
            if (reply.code or 500) >= 400:
                raise FtpReplyError(f"{verb} refused", reply)
            if listener is not None:
                opened = await asyncio.wait_for(self._accept(listener), limit)
            assert opened is not None
            reader, writer = opened
            self._transfers += 1
            record = open_record(self.channel, f"d{self._transfers}", writer)
            try:
                yield reader, writer, record
            finally:
                writer.close()
                record.closed("transfer done")
        finally:
            if listener is not None:
                listener.close()
            if opened is not None:
                opened[1].close()
        final = self.last = await self._reply(deadline, f"the end of {verb}")
        if (final.code or 500) >= 400:
            raise FtpReplyError(f"{verb} failed", final)

    async def _passive(self, deadline: Deadline) -> tuple[str, int]:
        peer = getattr(self.channel, "peer", ())
        host = str(peer[0]) if isinstance(peer, tuple) and peer else "127.0.0.1"
        if self.options.epsv:
            reply = await self._ask("EPSV", timeout=0, check=False, deadline=deadline)
            if reply.code == 229:
                return host, parse_epsv_reply(reply.text)
            if reply.code is not None and reply.code < 500:
                raise FtpReplyError("EPSV refused", reply)
        reply = await self._ask("PASV", timeout=0, deadline=deadline)
        _, port = parse_pasv_reply(reply.text)
        return host, port  # not the address in the reply: that could point anywhere

    async def _accept(self, listener: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The server's data connection: the first from the server's own
        address (another host must not slip a file in)."""
        loop = asyncio.get_running_loop()
        peer = getattr(self.channel, "peer", ())
        server = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        while True:
            sock, addr = await loop.sock_accept(listener)
            if not server or same_host(str(addr[0]), server):
                return await asyncio.open_connection(sock=sock)
            sock.close()

    async def _active(self, deadline: Deadline) -> socket.socket:
        local = getattr(self.channel, "local", ())
        host = str(local[0]) if isinstance(local, tuple) and local else "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setblocking(False)
            listener.bind((host, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            if self.options.epsv or family == socket.AF_INET6:
                await self._ask("EPRT", f"|{2 if family == socket.AF_INET6 else 1}|{host}|{port}|",
                                timeout=0, deadline=deadline)
            else:
                await self._ask("PORT", ",".join([*host.split("."), str(port >> 8), str(port & 0xFF)]),
                                timeout=0, deadline=deadline)
        except BaseException:
            listener.close()
            raise
        return listener

    async def _read_all(self, verb: str, arg: str, timeout: float, *, ascii: bool,
                        limit: int, into: Any = None) -> bytes:
        deadline = Deadline(timeout)
        await self._greeted(deadline)
        await self._set_type(not ascii, timeout)
        got = bytearray()
        text = AsciiReader() if ascii else None
        async with self._data(verb, arg, deadline) as (reader, _, record):
            progress = Progress(record, False)
            complete = False
            try:
                while chunk := await asyncio.wait_for(reader.read(CHUNK), deadline.left()):
                    progress.add(chunk)
                    data = text.convert(chunk) if text is not None else chunk
                    if into is not None:
                        into.write(data)
                    else:
                        got += data
                        if len(got) > limit:
                            raise LabError(f"{verb} {arg}: more than {limit} bytes",
                                           hint="connect with -o folder=DIR and get(path, local='FILE')")
                if text is not None:
                    tail = text.flush()
                    if into is not None:
                        into.write(tail)
                    else:
                        got += tail
                complete = True
            finally:
                progress.done(f"{verb} {arg}".strip(), "ascii" if ascii else "binary", complete)
        return bytes(got)

    async def ls(self, path: str = "", timeout: float = 30.0) -> str:
        """LIST: the directory listing as the server formats it (``ls -l`` style)."""
        return (await self._read_all("LIST", path, timeout, ascii=True, limit=MAX_GET)).decode("utf-8", "replace")

    async def nlst(self, path: str = "", timeout: float = 30.0) -> builtins.list[str]:
        """NLST: the names in a directory."""
        data = await self._read_all("NLST", path, timeout, ascii=True, limit=MAX_GET)
        return [line for line in data.decode("utf-8", "replace").split("\n") if line]

    async def mlsd(self, path: str = "", timeout: float = 30.0) -> builtins.list[tuple[str, dict[str, str]]]:
        """MLSD (RFC 3659): ``(name, facts)`` for each entry."""
        data = await self._read_all("MLSD", path, timeout, ascii=True, limit=MAX_GET)
        out = []
        for line in data.decode("utf-8", "replace").split("\n"):
            if line.strip():
                facts = _facts(line)
                out.append((facts.pop("name", ""), facts))
        return out

    def _local(self, name: str) -> str:
        """``name`` inside the client's ``folder`` option, or :class:`LabError`:
        a verb never reads or writes a local file the user did not place there."""
        folder = self.options.folder
        if folder is None:
            raise LabError("ftp: local files need the client option folder=DIR",
                           hint="connect ftp HOST:PORT -o folder=DIR, or leave local= out to keep the file in memory")
        root = os.path.realpath(folder)
        path = os.path.realpath(os.path.join(root, name))
        if path != root and not path.startswith(root + os.sep):
            raise LabError(f"ftp: {name!r} is outside the client's folder {folder}")
        return path

    async def get(self, path: str, local: str | None = None, *, ascii: bool = False,
                  timeout: float = 60.0) -> bytes | int:
        """RETR: the file's bytes, or, with ``local`` (a name in the client
        option ``folder``), the number of bytes written there (streamed:
        any size).  ``ascii``: TYPE A, lines end in LF here."""
        if local is None:
            return await self._read_all("RETR", path, timeout, ascii=ascii, limit=self.options.max_get)
        with open(self._local(local), "wb") as fh:
            await self._read_all("RETR", path, timeout, ascii=ascii, limit=0, into=fh)
            return fh.tell()

    async def put(self, path: str, data: bytes | str = b"", *, local: str | None = None, ascii: bool = False,
                  append: bool = False, timeout: float = 60.0) -> FtpReply:
        """STOR (APPE with ``append``) ``data`` (text goes as UTF-8), or
        with ``local`` a file in the client option ``folder``, streamed from
        disk.  ``ascii``: TYPE A, LF line ends go as CRLF.  The final (226)
        reply."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        fh = open(self._local(local), "rb") if local is not None else None  # closed below
        try:
            return await self._put(path, data, fh, ascii=ascii, append=append, timeout=timeout)
        finally:
            if fh is not None:
                fh.close()

    async def _put(self, path: str, data: bytes, fh: IO[bytes] | None, *, ascii: bool, append: bool,
                   timeout: float) -> FtpReply:
        deadline = Deadline(timeout)
        await self._greeted(deadline)
        await self._set_type(not ascii, timeout)
        verb = "APPE" if append else "STOR"
        async with self._data(verb, path, deadline) as (_, writer, record):
            text = AsciiWriter() if ascii else None
            progress = Progress(record, True)
            complete = False
            offset = 0
            try:
                while True:
                    if fh is not None:
                        chunk = fh.read(CHUNK)
                    else:
                        chunk = data[offset:offset + CHUNK]
                        offset += len(chunk)
                    if not chunk:
                        break
                    if text is not None:
                        chunk = text.convert(chunk)
                    writer.write(chunk)
                    progress.add(chunk)
                    await asyncio.wait_for(writer.drain(), deadline.left())
                if writer.can_write_eof():
                    writer.write_eof()
                complete = True
            finally:
                progress.done(f"{verb} {path}", "ascii" if ascii else "binary", complete)
        assert self.last is not None
        return self.last

    # the same verbs under the names other clients use
    list = ls
    retr = get
    stor = put


def _facts(line: str) -> dict[str, str]:
    """``type=file;size=3; name`` as ``{"type": "file", "size": "3", "name": "name"}``."""
    facts_part, sep, name = line.strip("\r\n").partition(" ")
    if not sep:
        return {"name": facts_part}
    out: dict[str, str] = {}
    for fact in facts_part.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            out[key.lower()] = value
    out["name"] = name
    return out

