"""Tests for lab/protocols/ftp: commands and replies (multi-line ones as
one message, PASS masked), the laws under hypothesis, TYPE A conversion,
PORT/EPRT and 227/229 parsing, the session's states and refusals in
memory (login, anonymous read-only, FTP bounce), and the client verbs
against the server with real data connections on loopback, replayed to
an observer."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import LabError, LocalProtocolError, RemoteProtocolError
from lab.protocols import ftp
from lab.protocols._base import MASK, MASK_BYTES, Role, mask_bytes
from lab.protocols.ftp import FtpCommand, FtpReply
from lab.protocols.ftp._data import format_epsv, format_pasv, parse_epsv_reply, parse_pasv_reply

SETTINGS = settings(deadline=None, max_examples=150)

# -- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "verb", "arg"),
    [
        (b"USER alice\r\n", "USER", "alice"),
        (b"retr my file.txt\r\n", "RETR", "my file.txt"),  # the argument is the rest of the line
        (b"PWD\n", "PWD", ""),
        (b"STOR caf\xc3\xa9\r\n", "STOR", "caf\u00e9"),  # UTF-8 (RFC 2640)
        (b"STOR caf\xe9\r\n", "STOR", "caf\u00e9"),  # not UTF-8: Latin-1, byte for byte
    ],
)
def test_command_lines_parse(raw: bytes, verb: str, arg: str) -> None:
    """Verb upper-cased, the argument the rest of the line; kind is the verb."""
    cmd = ftp.parse_command(raw)
    assert (cmd.verb, cmd.arg, cmd.problem, cmd.raw) == (verb, arg, "", raw)
    assert cmd.kind == verb


@pytest.mark.parametrize(("raw", "problem"), [(b"RETR a\x00b\r\n", "NUL"), (b"RETR a\rb\r\n", "CR"),
                                              (b"NOOP", "no line ending"), (b"X\r\n", "3 or 4 letters"),
                                              (b"\r\n", "3 or 4 letters"), (b"RETRIEVE x\r\n", "3 or 4")])
def test_bad_command_lines_still_decode(raw: bytes, problem: str) -> None:
    """A line that breaks a rule decodes with a problem, for the server to answer."""
    assert problem in ftp.parse_command(raw).problem


def test_data_ports_are_volatile() -> None:
    """PORT/EPRT arguments and reply text change from run to run: recordings match them loosely."""
    assert ftp.parse_command(b"PORT 127,0,0,1,200,10\r\n").volatile == {"arg"}
    assert ftp.parse_command(b"RETR a\r\n").volatile == frozenset()
    assert "lines" in FtpReply.of(229, "Entering Extended Passive Mode (|||5000|)").volatile


def test_pass_is_a_secret() -> None:
    """PASS's argument is masked in summaries and fields, kept in raw, named by secret_spans."""
    cmd = ftp.parse_command(b"PASS two words\r\n")
    assert cmd.SECRET and cmd.secret_spans() == ((5, 14),)
    assert cmd.summary() == f"PASS {MASK}  (sent in cleartext)"
    assert "two words" not in str(cmd.fields()) and "two words" in cmd.revealed()
    assert mask_bytes(cmd.raw, cmd.secret_spans()) == b"PASS " + MASK_BYTES + b"\r\n"
    assert ftp.parse_command(b"USER alice\r\n").secret_spans() == ()


def test_commands_refuse_line_breaks() -> None:
    """of() refuses CR, LF and NUL: they would end the command early."""
    for arg in ("a\r\nDELE b", "a\nb", "a\x00"):
        with pytest.raises(LocalProtocolError):
            FtpCommand.of("RETR", arg)
    assert FtpCommand.of("RETR", "a b").raw == b"RETR a b\r\n"


def test_replies_decode_one_and_many_lines() -> None:
    """A multi-line reply (RFC 959 §4.2) is one message; its meaning comes from the code."""
    conv = ftp.FtpConversation(Role.CLIENT)
    data = (b"220 ready\r\n211-Features:\r\n EPSV\r\n211-MDTM\r\n 123 not the end\r\n211 End\r\n"
            b"230 ok\r\n")
    replies = conv.feed(data)
    assert [r.code for r in replies] == [220, 211, 230]
    feat = replies[1]
    assert isinstance(feat, FtpReply) and feat.multiline
    assert feat.lines == ("Features:", "EPSV", "MDTM", "123 not the end", "End")
    assert b"".join(r.raw for r in replies) == data
    assert "positive completion" in feat.summary() or "status" in feat.summary()
    assert feat.matches(211) and feat.matches("211") and not feat.matches(230)
    assert ftp.meaning(550).startswith("requested action not taken")


def test_bad_reply_lines_decode_with_a_problem() -> None:
    """A line that is no reply decodes with code None, so one bad line never ends a conversation."""
    conv = ftp.FtpConversation(Role.CLIENT)
    got = conv.feed(b"hello\r\n6xx no\r\n1234\r\n200 fine\r\n")
    assert [r.code for r in got] == [None, None, None, 200]  # type: ignore[attr-defined]


def test_reply_of_round_trips() -> None:
    """A reply made with of() decodes to the same lines, however many."""
    for lines in (("one",), ("first", "middle", "211 looks like an end", "last")):
        reply = FtpReply.of(211, *lines)
        (back,) = ftp.FtpConversation(Role.CLIENT).feed(reply.raw)
        assert back == reply


def test_a_multiline_reply_is_capped() -> None:
    """A multi-line reply that never ends is an error past MAX_REPLY, not memory growth."""
    conv = ftp.FtpConversation(Role.CLIENT)
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"211-start\r\n" + b" line\r\n" * (ftp.MAX_REPLY // 7 + 10))


def test_the_conversation_refuses_the_wrong_side() -> None:
    """A client sends commands, a server replies."""
    with pytest.raises(LocalProtocolError):
        ftp.FtpConversation(Role.CLIENT).send(FtpReply.of(200, "x"))
    with pytest.raises(LocalProtocolError):
        ftp.FtpConversation(Role.SERVER).send(FtpCommand.of("NOOP"))


# -- laws --------------------------------------------------------------------------------------

_CMD_BITS = [b"USER a\r\n", b"PASS b c\r\n", b"RETR x y\r\n", b"LIST\n", b"\r\n", b"\x00", b"\xff\xf4\xff\xf2",
             b"ABOR\r\n", b"x" * 300, b"NOOP"]
_REPLY_BITS = [b"220 hi\r\n", b"211-a\r\n", b" b\r\n", b"211 end\r\n", b"227 (1,2,3,4,5,6)\r\n", b"\n",
               b"\xff", b"12", b"3-x\r\n", b"123 \r\n"]


@SETTINGS
@given(data=st.lists(st.sampled_from(_CMD_BITS) | st.binary(max_size=20), max_size=20).map(b"".join),
       cuts=st.lists(st.integers(0, 1000), max_size=8), eof=st.booleans())
def test_command_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Any client bytes split anywhere, received, sent or observed: only
    protocol errors, exact bytes, the same messages."""
    laws.stream(ftp.SPEC.conversation, Role.CLIENT, data, cuts, eof=eof)


@SETTINGS
@given(data=st.lists(st.sampled_from(_REPLY_BITS) | st.binary(max_size=10), max_size=30).map(b"".join),
       cuts=st.lists(st.integers(0, 500), max_size=8), eof=st.booleans())
def test_reply_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Server bytes split anywhere decode the same, on every side."""
    laws.stream(ftp.SPEC.conversation, Role.SERVER, data, cuts, eof=eof)


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_ascii_conversion_laws(data: bytes, cuts: list[int]) -> None:
    """TYPE A: however the data is split, the wire has CRLF for every line
    end and nothing else changes; reading it back gives LF ends."""
    pieces = [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)]
    writer = ftp.AsciiWriter()
    wire = b"".join(writer.convert(p) for p in pieces)
    assert wire == ftp.AsciiWriter().convert(data)
    assert wire.count(b"\n") == data.count(b"\n") and wire.count(b"\n") == wire.count(b"\r\n")
    assert wire.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    reader = ftp.AsciiReader()
    back = b"".join(reader.convert(p) for p in [wire[:len(wire) // 2], wire[len(wire) // 2:]]) + reader.flush()
    assert back == wire.replace(b"\r\n", b"\n")


@given(host=st.ip_addresses(v=4).map(str), port=st.integers(1, 65535))
def test_address_forms_round_trip(host: str, port: int) -> None:
    """PORT/227 and EPRT/229 say the same address and port they were given."""
    assert parse_pasv_reply(format_pasv(host, port)) == (host, port)
    assert ftp.parse_port(format_pasv(host, port).split("(")[1].rstrip(")")) == (host, port)
    assert parse_epsv_reply(format_epsv(port)) == port
    assert ftp.parse_eprt(f"|1|{host}|{port}|") == (host, port)


@pytest.mark.parametrize("arg", ["1,2,3,4,5", "1,2,3,4,5,256", "a,b,c,d,e,f", "", "1,2,3,4,5,6,7"])
def test_bad_port_arguments(arg: str) -> None:
    with pytest.raises(ValueError):
        ftp.parse_port(arg)


@pytest.mark.parametrize("arg", ["|1|::1|5000|", "|2|1.2.3.4|5000|", "|1|name.test|5000|", "|1|1.2.3.4|0|",
                                 "|1|1.2.3.4|99999|", "1|1.2.3.4|5|", "||||"])
def test_bad_eprt_arguments(arg: str) -> None:
    with pytest.raises(ValueError):
        ftp.parse_eprt(arg)


# -- the session in memory ------------------------------------------------------------------------


class Dialog:
    """One FTP session of a server behaviour, driven by bytes."""

    def __init__(self, server: ftp.FtpServer, peer_address: str = "127.0.0.1") -> None:
        self.peer = FakePeer(spec=ftp.SPEC, conn_id="f-1")
        self.peer.peer = (peer_address, 40000)
        self.client = ftp.FtpConversation(Role.CLIENT)
        self.session: ftp.FtpSession = open_session(server, self.peer)
        self.greeting = self._read()[0]

    def _read(self) -> list[FtpReply]:
        data = self.peer.data
        self.peer.writes.clear()
        replies = self.client.feed(data)
        return replies  # type: ignore[return-value]

    def send(self, line: str | bytes) -> list[FtpReply]:
        data = line if isinstance(line, bytes) else line.encode() + b"\r\n"
        conv = self.peer.conversation
        conv.receive_data(data)
        while (msg := conv.next_message()) is not None:
            self.session.message_received(msg)
        return self._read()

    def code(self, line: str) -> int | None:
        replies = self.send(line)
        assert replies, line
        return replies[-1].code


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.txt").write_bytes(b"one\ntwo\n")
    return tmp_path


@pytest.fixture
def server(root: Path) -> ftp.FtpServer:
    behaviour = ftp.FtpServer(ftp.SPEC.resolve_options({"path": str(root)}))  # type: ignore[arg-type]
    behaviour.started()
    return behaviour


def test_greets_and_wants_a_login(server: ftp.FtpServer) -> None:
    """220 first; anything but the login commands before it gets 530."""
    d = Dialog(server)
    assert d.greeting.code == 220
    assert d.code("PWD") == 530 and d.code("RETR pub/a.txt") == 530 and d.code("PASV") == 530
    assert d.code("SYST") == 215 and d.code("FEAT") == 211 and d.code("NOOP") == 200


def test_login_with_a_lab_account(server: ftp.FtpServer) -> None:
    """USER then PASS: 331, then 230 or 530; the same 331 for every name."""
    d = Dialog(server)
    assert d.code("USER nobody") == 331
    assert d.code("PASS x") == 530
    assert d.code("PASS x") == 503  # PASS needs a USER before it
    assert d.code("USER alice") == 331 and d.code("PASS wonderland") == 230
    assert any("alice logged in" in n for n in d.peer.notes)
    assert d.send("PWD")[0].lines[0].startswith('"/"')


def test_anonymous_is_read_only(server: ftp.FtpServer, root: Path) -> None:
    """anonymous logs in with any password and may read, never write."""
    d = Dialog(server)
    assert d.code("USER anonymous") == 331 and d.code("PASS me@x.test") == 230
    assert d.code("SIZE pub/a.txt") == 213
    for line in ("STOR x", "APPE x", "STOU", "DELE pub/a.txt", "MKD d", "RMD pub", "RNFR pub/a.txt"):
        assert d.code(line) == 550, line
    assert sorted(os.listdir(root)) == ["pub"] and (root / "pub" / "a.txt").exists()


def test_anonymous_can_be_turned_off(root: Path) -> None:
    behaviour = ftp.FtpServer(ftp.SPEC.resolve_options({"path": str(root), "anonymous": "no"}))  # type: ignore[arg-type]
    behaviour.started()
    d = Dialog(behaviour)
    assert d.code("USER anonymous") == 331 and d.code("PASS x") == 530


def logged_in(server: ftp.FtpServer, address: str = "127.0.0.1") -> Dialog:
    d = Dialog(server, address)
    d.send("USER alice")
    assert d.code("PASS wonderland") == 230
    return d


def test_directories_and_files(server: ftp.FtpServer, root: Path) -> None:
    """CWD/CDUP/PWD, MKD/RMD, RNFR/RNTO, DELE, SIZE, MDTM, MLST, TYPE, REST."""
    d = logged_in(server)
    assert d.code("CWD pub") == 250 and d.send("PWD")[0].lines[0].startswith('"/pub"')
    assert d.code("CDUP") == 250 and d.send("PWD")[0].lines[0].startswith('"/"')
    assert d.code("CWD nowhere") == 550
    assert d.send("MKD new dir")[0].lines[0] == '"/new dir" created'
    assert (root / "new dir").is_dir()
    assert d.code("RMD new dir") == 250 and not (root / "new dir").exists()
    assert d.code("RNTO x") == 503
    assert d.code("RNFR pub/a.txt") == 350 and d.code("RNTO pub/b.txt") == 250
    assert (root / "pub" / "b.txt").exists()
    assert d.code("TYPE I") == 200 and d.send("SIZE pub/b.txt")[0].lines == ("8",)
    assert d.code("TYPE A") == 200 and d.send("SIZE pub/b.txt")[0].lines == ("10",)  # CRLF on the wire
    assert d.code("SIZE pub") == 550
    assert d.send("MDTM pub/b.txt")[0].lines[0].isdigit()
    mlst = d.send("MLST pub/b.txt")[0]
    assert mlst.code == 250 and mlst.lines[1].startswith("type=file;size=8;")
    assert d.code("REST 4") == 350 and d.code("REST x") == 501
    assert d.code("DELE pub/b.txt") == 250 and not (root / "pub" / "b.txt").exists()
    assert d.code("DELE pub") == 550
    assert d.code("TYPE E") == 504 and d.code("MODE B") == 504 and d.code("STRU R") == 504
    assert d.code("OPTS UTF8 ON") == 200 and d.code("HELP") == 214 and d.code("STAT") == 211
    assert d.code("SITE CHMOD 777 x") == 502 and d.code("XYZZY") == 500


def test_a_transfer_needs_a_data_connection(server: ftp.FtpServer) -> None:
    """RETR, LIST or STOR without PASV/EPSV/PORT/EPRT first: 425."""
    d = logged_in(server)
    assert d.code("RETR pub/a.txt") == 425 and d.code("LIST") == 425 and d.code("STOR up.txt") == 425


@pytest.mark.parametrize("line", ["PORT 10,0,0,1,200,10", "PORT 127,0,0,2,200,10", "EPRT |1|10.0.0.1|5000|",
                                  "PORT 127,0,0,1,0,25", "EPRT |1|127.0.0.1|80|", "EPRT |1|127.0.0.1|1023|",
                                  "EPRT |2|::1|5000|"])
def test_ftp_bounce_is_refused(server: ftp.FtpServer, line: str) -> None:
    """PORT/EPRT to another host or a privileged port: 504 (or 522), and an event says why."""
    d = logged_in(server)
    assert d.code(line) in (504, 522)
    assert d.session.data is None
    if not line.startswith("EPRT |2|"):
        assert any("FTP bounce" in n for n in d.peer.notes)


def test_port_to_the_client_itself_is_taken(server: ftp.FtpServer) -> None:
    d = logged_in(server)
    assert d.code("PORT 127,0,0,1,200,10") == 200 and d.code("EPRT |1|127.0.0.1|51210|") == 200
    assert d.code("PORT 1,2,3") == 501


def test_mistakes_have_a_limit(server: ftp.FtpServer) -> None:
    """Twenty mistakes: 421 and the connection closes."""
    d = Dialog(server)
    codes = [d.code("BOGUS") for _ in range(20)]
    assert codes[-1] == 421 and d.peer.closed


def test_long_lines_get_500(root: Path) -> None:
    behaviour = ftp.FtpServer(ftp.SPEC.resolve_options({"path": str(root), "max_line": "64"}))  # type: ignore[arg-type]
    behaviour.started()
    d = Dialog(behaviour)
    assert d.code("USER " + "a" * 100) == 500 and d.code("USER a") == 331


# -- client verbs against the server, data connections included --------------------------------------


def serving(root: Path) -> Any:
    return {"path": str(root)}


def test_client_verbs(root: Path, arun: Runner) -> None:
    """login, pwd, cd, ls, nlst, mlsd, get, put (binary and ASCII), size, rename, mkdir, delete."""

    async def main() -> None:
        lb = Loopback(ftp.SPEC, options=serving(root))
        c = ftp.FtpClient(lb)
        assert (await c.login("alice", "wonderland")).code == 230
        assert await c.pwd() == "/"
        await c.cd("pub")
        assert await c.nlst() == ["a.txt"]
        assert "a.txt" in await c.ls()
        assert (await c.mlsd())[0][0] == "a.txt"
        assert await c.get("a.txt") == b"one\ntwo\n"
        assert await c.get("a.txt", ascii=True) == b"one\ntwo\n"
        await c.put("up.bin", b"\x00\r\n" * 50_000)
        assert (root / "pub" / "up.bin").read_bytes() == b"\x00\r\n" * 50_000
        await c.put("up.txt", b"a\nb\n", ascii=True)
        assert (root / "pub" / "up.txt").read_bytes() == b"a\nb\n"
        assert await c.size("up.bin") == 150_000
        await c.rename("up.txt", "moved.txt")
        await c.mkdir("sub")
        await c.delete("moved.txt")
        assert sorted(await c.nlst()) == ["a.txt", "sub", "up.bin"]
        with pytest.raises(ftp.FtpReplyError) as err:
            await c.get("missing")
        assert err.value.code == 550
        assert (await c.quit()).code == 221
        assert not lb.errors

    arun(main())


def test_active_transfers(root: Path, arun: Runner) -> None:
    """passive=no: EPRT (or PORT with epsv=no), the server connects back."""

    async def main() -> None:
        for epsv in ("yes", "no"):
            c = ftp.FtpClient(Loopback(ftp.SPEC, options=serving(root)))
            c.set_options(ftp.SPEC.resolve_client_options({"passive": "no", "epsv": epsv}))
            await c.login("bob", "builder")
            assert await c.get("/pub/a.txt") == b"one\ntwo\n"
            await c.put("/pub/b.txt", b"x" * 70_000)
            assert (root / "pub" / "b.txt").stat().st_size == 70_000

    arun(main())


def test_uploads_are_capped(root: Path, arun: Runner) -> None:
    """A file over max_upload: 552 and nothing kept."""

    async def main() -> None:
        c = ftp.FtpClient(Loopback(ftp.SPEC, options={"path": str(root), "max_upload": "1K"}))
        await c.login("alice", "wonderland")
        with pytest.raises(ftp.FtpReplyError) as err:
            await c.put("big.bin", b"x" * 5000)
        assert err.value.code == 552
        assert not (root / "big.bin").exists()
        await c.put("small.bin", b"x" * 1000)

    arun(main())


@settings(deadline=None, max_examples=25)
@given(cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner, tmp_path_factory: Any,
                                              cuts: list[int]) -> None:
    """A whole control conversation (login, FEAT, listings, transfers both
    ways, errors, QUIT) replays to an observer, split anywhere, as the two
    sides saw it."""
    root = tmp_path_factory.mktemp("ftp")
    (root / "f.txt").write_bytes(b"data\n")

    async def main() -> Loopback:
        lb = Loopback(ftp.SPEC, options=serving(root))
        c = ftp.FtpClient(lb)
        await c.login("alice", "wonderland")
        await c.feat()
        await c.nlst()
        await c.get("f.txt")
        await c.put("g.txt", b"more\n")
        await c.command("RETR nothing")
        await c.quit()
        return lb

    lb = arun(main())
    seen = laws.observer_replays(ftp.SPEC.conversation, lb, cuts)
    assert [m.kind for m in seen[Role.SERVER]][-2:] == ["RETR", "QUIT"]
    assert any(isinstance(m, FtpReply) and m.multiline for m in seen[Role.CLIENT])


def test_abor_may_follow_telnet_interrupt() -> None:
    """IAC IP IAC DM before ABOR (RFC 959 §4.1.3) still reads as ABOR, raw bytes kept."""
    cmd = ftp.parse_command(b"\xff\xf4\xff\xf2ABOR\r\n")
    assert (cmd.verb, cmd.problem) == ("ABOR", "") and cmd.raw.startswith(b"\xff")


def test_local_files_stay_in_the_client_folder(root: Path, tmp_path_factory: Any, arun: Runner) -> None:
    """get/put with local= need the client option folder=DIR and stay inside it."""
    folder = tmp_path_factory.mktemp("local")
    (folder / "out.txt").write_bytes(b"from disk\n")

    async def main() -> None:
        c = ftp.FtpClient(Loopback(ftp.SPEC, options=serving(root)))
        await c.login("alice", "wonderland")
        with pytest.raises(LabError, match="folder=DIR"):
            await c.get("/pub/a.txt", local="a.txt")
        c.set_options(ftp.SPEC.resolve_client_options({"folder": str(folder)}))
        assert await c.get("/pub/a.txt", local="a.txt") == 8
        assert (folder / "a.txt").read_bytes() == b"one\ntwo\n"
        await c.put("/pub/in.txt", local="out.txt")
        assert (root / "pub" / "in.txt").read_bytes() == b"from disk\n"
        await c.put("/pub/text.txt", "text as UTF-8 \u00e9")
        assert (root / "pub" / "text.txt").read_bytes() == "text as UTF-8 \u00e9".encode()
        for outside in ("../escape.txt", str(folder.parent / "absolute.txt")):
            with pytest.raises(LabError, match="outside the client's folder"):
                await c.get("/pub/a.txt", local=outside)
        assert not (folder.parent / "escape.txt").exists() and not (folder.parent / "absolute.txt").exists()

    arun(main())


def test_an_active_client_takes_the_data_connection_from_the_server_only(arun: Runner) -> None:
    """A connection to the client's data port from another address is closed unread."""

    class Channel:
        peer = ("127.0.0.1", 21)

    async def main() -> None:
        listener = socket.socket()
        listener.setblocking(False)
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        port = listener.getsockname()[1]
        c = ftp.FtpClient(Channel())
        accepting = asyncio.ensure_future(c._accept(listener))
        _, stranger = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
        _, server = await asyncio.open_connection("127.0.0.1", port)
        _, writer = await asyncio.wait_for(accepting, 10)
        assert writer.get_extra_info("peername")[0] == "127.0.0.1"
        for w in (writer, stranger, server):
            w.close()
        listener.close()

    arun(main())


def test_active_mode_stays_on_loopback(server: ftp.FtpServer) -> None:
    """A client on another host may not have the server connect back to it: active mode is loopback only."""
    d = logged_in(server, "10.1.2.3")
    assert d.code("PORT 10,1,2,3,200,10") == 504 and d.code("EPRT |1|10.1.2.3|51210|") == 504
    assert any("loopback only" in n for n in d.peer.notes)
    assert d.code("EPSV") == 229  # passive mode is how such a client transfers
    d.session._drop_data()


_LINE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=40)


@SETTINGS
@given(code=st.integers(100, 599), lines=st.lists(_LINE_TEXT, min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 400), max_size=5))
def test_any_reply_made_decodes_to_itself(code: int, lines: list[str], cuts: list[int]) -> None:
    """FtpReply.of with any text, however split on the way, decodes to the same reply."""
    reply = FtpReply.of(code, *lines)
    conv = ftp.FtpConversation(Role.CLIENT)
    got: list[Any] = []
    cut = sorted({c for c in cuts if 0 < c < len(reply.raw)})
    for a, b in zip([0, *cut], [*cut, len(reply.raw)], strict=True):
        got += conv.feed(reply.raw[a:b])  # never b"": that would end the stream
    assert got == [reply]


@SETTINGS
@given(verb=st.sampled_from(["RETR", "STOR", "CWD", "MKD", "PASS", "USER"]), arg=_LINE_TEXT)
def test_any_command_made_decodes_to_itself(verb: str, arg: str) -> None:
    """FtpCommand.of with any argument decodes (by a server) to the same command; PASS stays masked."""
    cmd = FtpCommand.of(verb, arg)
    (back,) = ftp.FtpConversation(Role.SERVER).feed(cmd.raw)
    assert back == cmd and (back.verb, back.arg) == (verb, arg if arg else "")
    if verb == "PASS" and arg:
        assert back.summary() == f"PASS {MASK}  (sent in cleartext)" and "***" in str(back.fields())


def test_rest_holds_until_the_transfer_it_restarts(root: Path, arun: Runner) -> None:
    """REST, then EPSV, then RETR: the file from the offset (REST need not come last)."""

    async def main() -> None:
        c = ftp.FtpClient(Loopback(ftp.SPEC, options=serving(root)))
        await c.login("alice", "wonderland")
        await c.type("I")
        assert (await c.command("REST 4")).code == 350
        assert await c.get("/pub/a.txt") == b"two\n"
        assert await c.get("/pub/a.txt") == b"one\ntwo\n"  # spent

    arun(main())
