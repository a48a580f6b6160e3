"""SSH: the clear stages decoded sans-IO (laws, KEXINIT and what it
negotiates, bad input), and the asyncssh server and client in a real lab:
logins and the throttle, the console as a command and a shell, SFTP in
its jail, the limits, and what the log shows of it all."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws

from lab import Lab
from lab.errors import ConfigError, RemoteProtocolError
from lab.eventlog import Event, EventFilter, EventKind
from lab.protocols import ssh
from lab.protocols._base import Role, Transport
from lab.protocols.ssh import (
    SshConversation,
    SshEncrypted,
    SshEvent,
    SshKexInit,
    SshPacket,
    SshPreVersionLine,
    SshVersion,
)

PASSWORD = "correct horse"

# -- the wire, sans-IO --------------------------------------------------------------


def packet(payload: bytes, padding: int = 4) -> bytes:
    """A clear binary packet (RFC 4253 §6), padded to a multiple of 8."""
    while (5 + len(payload) + padding) % 8:
        padding += 1
    return struct.pack("!IB", 1 + len(payload) + padding, padding) + payload + b"\0" * padding


def name_list(names: tuple[str, ...]) -> bytes:
    data = ",".join(names).encode()
    return struct.pack("!I", len(data)) + data


def kexinit(kex: tuple[str, ...] = ("curve25519-sha256", "diffie-hellman-group14-sha256"),
            host_key: tuple[str, ...] = ("ssh-ed25519", "rsa-sha2-256"),
            ciphers: tuple[str, ...] = ("chacha20-poly1305@openssh.com", "aes128-ctr"),
            macs: tuple[str, ...] = ("hmac-sha2-256",)) -> bytes:
    body = bytes([20]) + b"\x11" * 16
    for names in (kex, host_key, ciphers, ciphers, macs, macs, ("none",), ("none",), (), ()):
        body += name_list(names)
    return packet(body + b"\0" + b"\0\0\0\0")


CLIENT_CLEAR = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + kexinit() + packet(bytes([30]) + name_list(("k" * 32,)))
SERVER_CLEAR = (b"a greeting line\r\n" + b"SSH-2.0-netlab_1\r\n"
                + kexinit(ciphers=("aes128-ctr", "chacha20-poly1305@openssh.com")))
NEWKEYS = packet(bytes([21]))

_CLIENT_BITS = [CLIENT_CLEAR, kexinit(), NEWKEYS, packet(bytes([2]) + name_list(("x",))), b"\r\n", b"SSH-"]
_SERVER_BITS = [SERVER_CLEAR, b"SSH-2.0-x\r\n", kexinit(), NEWKEYS, b"line\n", packet(bytes([1]) + b"\0\0\0\x02"
                + name_list(("bye",)))]


def test_a_client_session_decodes_stage_by_stage() -> None:
    """Version, KEXINIT with the offered lists, the key exchange, NEWKEYS,
    then encrypted chunks shown by size."""
    conv = SshConversation(Role.SERVER)
    msgs = conv.feed(CLIENT_CLEAR + NEWKEYS + b"\x8f" * 40)
    version, kex, ecdh, newkeys, secret = msgs
    assert isinstance(version, SshVersion) and version.software == "OpenSSH_9.2p1"
    assert version.comments == "Debian-2" and version.summary() == "SSH-2.0-OpenSSH_9.2p1 Debian-2"
    assert isinstance(kex, SshKexInit) and kex.offered("kex")[0] == "curve25519-sha256" and not kex.negotiated
    assert isinstance(ecdh, SshPacket) and ecdh.name == "KEX_ECDH_INIT" and "key, 32 bytes" in ecdh.summary()
    assert isinstance(newkeys, SshPacket) and newkeys.kind == "NEWKEYS"
    assert isinstance(secret, SshEncrypted) and secret.size == 40
    assert b"".join(m.raw for m in msgs) == CLIENT_CLEAR + NEWKEYS + b"\x8f" * 40


def test_the_second_kexinit_names_what_was_negotiated() -> None:
    """RFC 4253 §7.1: the client's first algorithm the server offers too;
    an AEAD cipher makes the MAC implicit."""
    observer = SshConversation(None)
    observer.observe(CLIENT_CLEAR, Role.CLIENT)
    seen = [m for _, m in observer.observe(SERVER_CLEAR, Role.SERVER)]
    assert isinstance(seen[0], SshPreVersionLine) and seen[0].line == "a greeting line"
    kex = seen[-1]
    assert isinstance(kex, SshKexInit)
    picked = dict(kex.negotiated)
    assert picked["kex"] == "curve25519-sha256" and picked["host_key"] == "ssh-ed25519"
    assert picked["cipher_c2s"] == "chacha20-poly1305@openssh.com"  # the client's order wins
    assert picked["mac_c2s"] == "(implicit in chacha20-poly1305@openssh.com)"
    assert "negotiated kex curve25519-sha256" in kex.summary()


def test_nothing_in_common_is_said() -> None:
    client = SshConversation(None)
    client.observe(b"SSH-2.0-a\r\n" + kexinit(kex=("a-kex",)), Role.CLIENT)
    (_, _version), (_, kex) = client.observe(b"SSH-2.0-b\r\n" + kexinit(kex=("b-kex",)), Role.SERVER)
    assert isinstance(kex, SshKexInit) and dict(kex.negotiated)["kex"] == "(none in common)"


@pytest.mark.parametrize(("data", "why"), [
    (b"GET / HTTP/1.1\r\n", "must open with its version"),
    (b"SSH-2.0-" + b"x" * 300, "version line longer"),
    (b"SSH-2.0-x\r\n" + struct.pack("!IB", 12, 2) + b"\x14" * 11, "malformed"),
    (b"SSH-2.0-x\r\n" + struct.pack("!I", 10_000_000), "out of range"),
])
def test_a_client_that_breaks_the_rules_is_an_error(data: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        SshConversation(Role.SERVER).feed(data)


def test_a_stream_ending_inside_a_packet_is_an_error() -> None:
    conv = SshConversation(Role.SERVER)
    conv.feed(b"SSH-2.0-x\r\n" + kexinit()[:20])
    with pytest.raises(RemoteProtocolError, match="inside a packet"):
        conv.feed(b"")


def test_library_events_describe_themselves() -> None:
    """An event carries no bytes; expect matches its kind or its text."""
    event = SshEvent.of("auth", "password for alice: refused", user="alice", result="refused")
    assert event.raw == b"" and event.kind == "auth" and event.value("user") == "alice"
    assert event.matches("auth") and event.matches("refused") and not event.matches("accepted")
    assert event.fields()["result"] == "refused" and event.summary() == "[auth] password for alice: refused"


@settings(max_examples=300)
@given(data=st.lists(st.sampled_from(_CLIENT_BITS) | st.binary(max_size=12), max_size=8).map(b"".join),
       cuts=st.lists(st.integers(0, 400), max_size=6), eof=st.booleans())
def test_client_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    # encrypted chunks follow the reads, so only the clear part is framed
    laws.stream(SshConversation, Role.CLIENT, data, cuts, eof=eof, framed=NEWKEYS not in data)


@settings(max_examples=300)
@given(data=st.lists(st.sampled_from(_SERVER_BITS) | st.binary(max_size=12), max_size=8).map(b"".join),
       cuts=st.lists(st.integers(0, 400), max_size=6), eof=st.booleans())
def test_server_laws(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    laws.stream(SshConversation, Role.SERVER, data, cuts, eof=eof, framed=NEWKEYS not in data)


def test_clear_stages_decode_the_same_however_split(laws: ConversationLaws) -> None:
    """Every cut of a real-looking opening gives the same messages."""
    for cut in range(0, len(CLIENT_CLEAR), 7):
        laws.stream(SshConversation, Role.CLIENT, CLIENT_CLEAR, [cut, cut + 3])


# -- a real lab -------------------------------------------------------------------------


def messages(lab: Lab, endpoint: str) -> list[Event]:
    return list(lab.log.query(EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.MESSAGE}))))


def events(lab: Lab, endpoint: str, kind: str) -> list[str]:
    return [e.summary for e in messages(lab, endpoint) if isinstance(e.message, SshEvent) and e.message.event == kind]


def notes(lab: Lab, endpoint: str) -> list[str]:
    return [e.summary for e in lab.log.query(EventFilter(endpoint=endpoint))
            if e.kind in (EventKind.INFO, EventKind.ERROR)]


async def _login(port: int, password: str, user: str = "lab") -> asyncssh.SSHClientConnection:
    return await asyncssh.connect("127.0.0.1", port, username=user, password=password, known_hosts=None,
                                  client_keys=None, agent_path=None, config=None, preferred_auth="password")


def attempt(port: int, password: str, user: str = "lab") -> bool:
    """One login through asyncssh: True if it got in."""

    async def go() -> bool:
        try:
            conn = await _login(port, password, user)
        except asyncssh.PermissionDenied:
            return False
        conn.close()
        await conn.wait_closed()
        return True

    return asyncio.run(go())


@pytest.fixture
def sshd(lab: Lab) -> Any:
    return lab.serve("ssh", name="sshd", password=PASSWORD)


def test_our_client_runs_a_lab_command(lab: Lab, sshd: Any) -> None:
    """`run ls` over SSH lists the lab's endpoints and exits 0; a bad
    statement exits 1 with the error on stderr."""
    c = lab.connect("ssh", sshd, name="c", options={"password": PASSWORD})
    status, out, err = c.run("ls")
    assert status == 0 and err == ""
    assert "sshd" in out and "listening" in out
    bad = c.run("stop nosuchthing")
    assert bad.status == 1 and bad.stderr.startswith("error:") and bad.stdout == ""
    assert any("exec 'ls'" in s for s in events(lab, "sshd", "channel-request"))
    assert any("exit status 1" in s for s in events(lab, "c", "channel-close"))


def test_the_log_shows_each_stage(lab: Lab, sshd: Any) -> None:
    """Both banners, both KEXINITs (the second with what was picked),
    NEWKEYS, the algorithms in use, the login, the channel and its data,
    the end; the client logs the host key's fingerprint."""
    c = lab.connect("ssh", sshd, name="c", options={"password": PASSWORD})
    c.run("ls")
    fingerprint = c.fingerprint()
    lab.stop(c)
    wait_until(lambda: events(lab, "sshd", "disconnect"), what="the server to see the end")
    seen = [e.message for e in messages(lab, "sshd")]
    kinds = [m.kind for m in seen if m is not None]
    assert kinds[:3] == ["version", "version", "KEXINIT"] or kinds[:2] == ["version", "KEXINIT"]
    kexes = [m for m in seen if isinstance(m, SshKexInit)]
    assert len(kexes) == 2 and dict(kexes[1].negotiated)["host_key"] == "ssh-ed25519"
    assert "NEWKEYS" in kinds and "encrypted" in kinds
    for wanted in ("algorithms", "auth", "channel-open", "channel-request", "channel-data", "channel-close",
                   "disconnect"):
        assert wanted in kinds, wanted
    assert any("password for lab: accepted" in s for s in events(lab, "sshd", "auth"))
    assert any(fingerprint in s and "not checked" in s for s in events(lab, "c", "hostkey"))
    # the observer's negotiation agrees with what asyncssh chose
    algorithms = next(m for m in seen if isinstance(m, SshEvent) and m.event == "algorithms")
    assert dict(kexes[1].negotiated)["cipher_c2s"] == algorithms.value("cipher_c2s")


def test_wrong_passwords_are_refused_logged_and_throttled(lab: Lab, sshd: Any) -> None:
    """Each wrong password is an auth event (never the password); after
    three failures the source is slowed and the log says so."""
    for _ in range(5):
        assert not attempt(sshd.port, "wrong horse")
    refused = events(lab, "sshd", "auth")
    assert sum("password for lab: refused" in s for s in refused) >= 5
    wait_until(lambda: any("login throttle" in n for n in notes(lab, "sshd")), what="the throttle's note")
    assert attempt(sshd.port, PASSWORD)  # its turn comes; the right password still works
    for e in lab.log.query(EventFilter(endpoint="sshd")):
        text = e.summary + repr(e.message.fields() if e.message else "")
        assert "wrong horse" not in text and PASSWORD not in text


def test_a_shell_is_the_console(lab: Lab, sshd: Any) -> None:
    """shell/type: the console's greeting, a statement's output, quit."""
    c = lab.connect("ssh", sshd, name="c", options={"password": PASSWORD})
    assert "netlab console over SSH" in c.shell()
    assert "sshd" in c.type("ls")
    listing = c.type("help")
    assert "serve" in listing and "quit     leave the console" in listing
    assert c.close_shell() == 0


def test_public_keys_log_in(lab: Lab, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "id").write_bytes(key.export_private_key())
    (tmp_path / "authorized_keys").write_bytes(key.export_public_key())
    srv = lab.serve("ssh", authorized_keys=str(tmp_path / "authorized_keys"))
    c = lab.connect("ssh", srv, options={"key": str(tmp_path / "id"), "user": "alice"})
    assert c.run("ls").status == 0
    assert any("publickey ssh-ed25519" in s and "alice: accepted" in s for s in events(lab, srv.name, "auth"))
    other = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "other").write_bytes(other.export_private_key())
    with pytest.raises(ConfigError, match="could not log in"):
        lab.connect("ssh", srv, options={"key": str(tmp_path / "other")})


def test_the_host_key_lives_as_long_as_the_lab(lab: Lab, tmp_path: Path) -> None:
    """Two servers of a lab show one fingerprint; --host-key uses a file's."""
    a = lab.serve("ssh", password=PASSWORD)
    b = lab.serve("ssh", password=PASSWORD)
    first = lab.connect("ssh", a, options={"password": PASSWORD}).fingerprint()
    assert lab.connect("ssh", b, options={"password": PASSWORD}).fingerprint() == first
    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "host").write_bytes(key.export_private_key())
    own = lab.serve("ssh", password=PASSWORD, host_key=str(tmp_path / "host"))
    assert lab.connect("ssh", own, options={"password": PASSWORD}).fingerprint() == key.get_fingerprint()


@pytest.fixture
def jail(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "hello.txt").write_text("hello from the jail\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", root / "escape")
    yield root


def test_sftp_stays_in_its_root(lab: Lab, jail: Path, tmp_path: Path) -> None:
    """get and put inside the root; .., absolute paths and a symlink
    pointing out are refused, and the log says so."""
    srv = lab.serve("ssh", password=PASSWORD, sftp_root=str(jail))
    c = lab.connect("ssh", srv, options={"password": PASSWORD})
    assert c.get("/pub/hello.txt", str(tmp_path / "got.txt")) == len("hello from the jail\n")
    (tmp_path / "up.txt").write_text("uploaded\n")
    c.put(str(tmp_path / "up.txt"), "/pub/up.txt")
    assert (jail / "pub" / "up.txt").read_text() == "uploaded\n"
    assert c.listdir("/") == ["escape", "pub"]
    assert c.listdir("/../..") == ["escape", "pub"]  # .. stops at the root
    for outside in ("/escape", "../secret.txt", "/../secret.txt"):
        with pytest.raises(ssh.SshError):
            c.get(outside, str(tmp_path / "stolen"))
    assert not (tmp_path / "stolen").exists()
    with pytest.raises(ssh.SshError):
        c.put(str(tmp_path / "up.txt"), "/escape")
    assert (tmp_path / "secret.txt").read_text() == "outside\n"
    sftp = events(lab, srv.name, "sftp")
    assert any("outside the SFTP root" in s for s in sftp)
    assert "[sftp] closed /pub/hello.txt: 20 bytes read, 0 written" in sftp
    assert "[sftp] closed /pub/up.txt: 0 bytes read, 9 written" in sftp


def test_garbage_instead_of_a_version_is_dropped_alone(lab: Lab, sshd: Any) -> None:
    """A client that speaks HTTP is closed with an event; a client logged
    in meanwhile goes on."""
    c = lab.connect("ssh", sshd, name="c", options={"password": PASSWORD})
    with socket.create_connection(("127.0.0.1", sshd.port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(30)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"SSH-2.0-")  # the server's version, and then the end
    wait_until(lambda: any("Unsupported SSH version" in s for s in events(lab, "sshd", "disconnect")),
               what="the drop to be logged")
    assert any("do not decode as ssh" in n for n in notes(lab, "sshd"))
    assert c.run("ls").status == 0


def test_the_connection_cap_holds(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, max_connections=1)
    c = lab.connect("ssh", srv, options={"password": PASSWORD})
    with pytest.raises((ConfigError, OSError)):
        lab.connect("ssh", srv, options={"password": PASSWORD}, timeout=10)
    assert srv.refused == 1 and c.run("ls").status == 0


def test_a_silent_client_is_closed_after_the_login_grace(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, login_grace="1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.settimeout(30)
        assert s.recv(100).startswith(b"SSH-2.0-")
        while s.recv(4096):
            pass
    wait_until(lambda: any("Login timeout" in s for s in events(lab, srv.name, "disconnect")),
               what="the login timeout")


def test_an_idle_connection_is_closed(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, idle_timeout=1)
    c = lab.connect("ssh", srv, name="c", options={"password": PASSWORD})
    wait_until(lambda: c.conn.state.value == "closed", timeout=30, what="the idle close")
    assert any("idle for 1 s" in s for s in events(lab, srv.name, "disconnect"))


def test_port_forwarding_is_refused(lab: Lab, sshd: Any) -> None:
    async def go() -> None:
        conn = await _login(sshd.port, PASSWORD)
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("127.0.0.1", sshd.port)
        conn.close()
        await conn.wait_closed()

    asyncio.run(go())
    wait_until(lambda: any("refused" in s for s in events(lab, "sshd", "channel-open")), what="the refusal")


def test_without_the_console_a_session_is_refused(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, console="no")
    result = lab.connect("ssh", srv, options={"password": PASSWORD}).run("ls")
    assert result.status == 1 and "no console" in result.stderr


def test_a_server_nobody_can_log_in_to_is_refused(lab: Lab) -> None:
    with pytest.raises(ConfigError, match="nobody could log in"):
        lab.serve("ssh")


def test_the_console_stays_on_loopback(lab: Lab) -> None:
    with pytest.raises(ConfigError, match="other machines"):
        lab.serve("ssh", password=PASSWORD, host="0.0.0.0")


def test_the_client_needs_credentials(lab: Lab, sshd: Any) -> None:
    with pytest.raises(ConfigError, match="password or a key"):
        lab.connect("ssh", sshd)


def test_the_spec_is_library_owned() -> None:
    assert ssh.SPEC.listen is not None and ssh.SPEC.dial is not None
    assert ssh.SPEC.conversation(None, Transport.TCP).observer


def test_a_proxy_shows_the_clear_stages(lab: Lab, sshd: Any) -> None:
    """Through `proxy ssh`: both banners, both KEXINITs (the second with
    what was negotiated) and NEWKEYS decoded, then encrypted sizes; the
    login still works end to end."""
    relay = lab.proxy("ssh", sshd, name="px")
    c = lab.connect("ssh", relay, name="c", options={"password": PASSWORD})
    assert c.run("ls").status == 0
    seen = [e.message for e in messages(lab, "px")]
    kinds = [m.kind for m in seen if m is not None]
    assert kinds.count("version") == 2 and kinds.count("KEXINIT") == 2 and kinds.count("NEWKEYS") == 2
    assert "encrypted" in kinds
    assert any(isinstance(m, SshKexInit) and m.negotiated for m in seen)
    assert not any(isinstance(m, SshEvent) for m in seen)  # inside the encryption a proxy sees nothing


def test_six_failures_end_a_connection(lab: Lab, sshd: Any) -> None:
    """One connection may not guess forever: the sixth failure closes it."""

    async def go() -> str:
        reader_done = asyncio.get_running_loop().create_future()

        class Guesser(asyncssh.SSHClient):
            tries = 0

            def password_auth_requested(self) -> str | None:
                self.tries += 1
                return f"guess {self.tries}" if self.tries <= 20 else None

            def connection_lost(self, exc: Exception | None) -> None:
                if not reader_done.done():
                    reader_done.set_result(str(exc))

        try:
            await asyncssh.create_connection(Guesser, "127.0.0.1", sshd.port, username="lab", known_hosts=None,
                                             client_keys=None, agent_path=None, config=None,
                                             preferred_auth="password")
        except (asyncssh.PermissionDenied, asyncssh.DisconnectError) as exc:
            return str(exc)
        return await reader_done

    reason = asyncio.run(go())
    assert "too many authentication failures" in reason
    assert sum("refused" in s for s in events(lab, "sshd", "auth")) == 6


def test_known_hosts_checks_the_host_key(lab: Lab, sshd: Any, tmp_path: Path) -> None:
    """With known_hosts the client checks the key: the lab's is accepted,
    another refused."""
    key = lab.services.get(ssh.HOST_KEY).key()
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(b"[127.0.0.1]:%d " % sshd.port + key.export_public_key())
    bad.write_bytes(b"[127.0.0.1]:%d " % sshd.port + asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    c = lab.connect("ssh", sshd, options={"password": PASSWORD, "known_hosts": str(good)})
    assert any(f"checked against {good}" in s for s in events(lab, c.name, "hostkey"))
    with pytest.raises(ConfigError, match=r"[Hh]ost key"):
        lab.connect("ssh", sshd, options={"password": PASSWORD, "known_hosts": str(bad)})


class _Transcript:
    """A recorder that keeps what a tapped connection sent and received."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Role, bytes]] = []

    def opened(self, peer: Any, local: Any, *, close: Any = None) -> _Transcript:
        return self

    def received(self, data: Any) -> None:
        if isinstance(data, bytes):
            self.chunks.append((Role.SERVER, data))

    def sent(self, data: Any) -> None:
        if isinstance(data, bytes):
            self.chunks.append((Role.CLIENT, data))

    def note(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...
    def closed(self, reason: str = "closed") -> None: ...


def test_an_observer_replays_a_real_session_however_split(sshd: Any) -> None:
    """The bytes of a real login and command, as the tap saw them, decode
    to the same messages on an observer whatever the cuts: the clear
    stages exactly, the encrypted rest to the same bytes."""
    from lab.protocols._base import LoopClock
    from lab.protocols.ssh._tap import TapConnector

    transcript = _Transcript()

    async def go() -> None:
        connector = TapConnector(transcript, LoopClock())  # type: ignore[arg-type]
        conn = await asyncssh.connect("127.0.0.1", sshd.port, tunnel=connector, username="lab", password=PASSWORD,
                                      known_hosts=None, client_keys=None, agent_path=None, config=None)
        await conn.run("ls", check=True)
        conn.close()
        await conn.wait_closed()

    asyncio.run(go())

    def replay(cut: int) -> tuple[list[Any], dict[Role, bytes]]:
        conv = SshConversation(None)
        clear, wire = [], {Role.CLIENT: b"", Role.SERVER: b""}
        for sender, chunk in transcript.chunks:
            for piece in [p for p in ((chunk[:cut], chunk[cut:]) if cut else (chunk,)) if p]:
                for side, msg in conv.observe(piece, sender):
                    wire[side] += msg.raw
                    if not isinstance(msg, SshEncrypted):
                        clear.append((side, msg))
        return clear, wire

    whole, whole_wire = replay(0)
    kinds = [m.kind for _, m in whole]
    assert kinds.count("version") == 2 and kinds.count("KEXINIT") == 2 and kinds.count("NEWKEYS") == 2
    for cut in (1, 3, 17, 200):
        clear, wire = replay(cut)
        assert clear == whole and wire == whole_wire


def test_the_server_tells_its_fingerprint(lab: Lab, sshd: Any) -> None:
    c = lab.connect("ssh", sshd, options={"password": PASSWORD})
    assert sshd.fingerprint() == c.fingerprint()


def test_ipv6_loopback(lab: Lab) -> None:
    srv = lab.serve("ssh", password=PASSWORD, host="::1")
    c = lab.connect("ssh", f"[::1]:{srv.port}", options={"password": PASSWORD})
    assert c.run("ls").status == 0


def test_a_break_interrupts_a_statement_and_typed_lines_wait(lab: Lab, sshd: Any) -> None:
    """In the console shell: lines typed while a statement runs run after
    it, in order; a break (Ctrl-C on a terminal) cancels a running one."""

    async def go() -> tuple[str, str]:
        conn = await _login(sshd.port, PASSWORD)
        process = await conn.create_process(term_type=None)
        await process.stdout.readuntil(ssh.PROMPT)
        process.stdin.write("wait 0.5\nserve echo as e1\nls\n")
        ahead = ""
        for _ in range(3):
            ahead += await asyncio.wait_for(process.stdout.readuntil(ssh.PROMPT), 30)
        # the channel keeps order: the line arrives, its statement starts, then the break
        process.stdin.write("wait 60\n")
        process.send_break(0)
        broken = await asyncio.wait_for(process.stdout.readuntil(ssh.PROMPT), 30)
        process.stdin.write_eof()
        conn.close()
        await conn.wait_closed()
        return ahead, broken

    ahead, broken = asyncio.run(go())
    assert ahead.index("e1: echo listening") < ahead.index("e1    server")
    assert "interrupted" in broken


def test_sessions_per_connection_are_capped(lab: Lab, jail: Path) -> None:
    """--max-channels: a second session (a command, or SFTP) on a
    connection that holds one is refused; the first goes on."""
    srv = lab.serve("ssh", password=PASSWORD, sftp_root=str(jail), max_channels=1)

    async def go() -> tuple[str, bool]:
        conn = await _login(srv.port, PASSWORD)
        shell = await conn.create_process(term_type=None)
        await shell.stdout.readuntil(ssh.PROMPT)
        second = await conn.run("ls", check=False)
        async with conn.start_sftp_client() as sftp:
            try:
                await sftp.listdir("/")
                sftp_refused = False
            except asyncssh.SFTPPermissionDenied as exc:
                sftp_refused = "sessions per connection" in exc.reason
        shell.stdin.write("ls\n")
        still = await shell.stdout.readuntil(ssh.PROMPT)
        conn.close()
        await conn.wait_closed()
        return str(second.stderr) + still, sftp_refused

    out, sftp_refused = asyncio.run(go())
    assert "at most 1 sessions per connection" in out and "server" in out
    assert sftp_refused


@pytest.mark.parametrize("junk", [
    b"SSH-2.0-x\r\n" + b"\xff" * 64,  # a packet length beyond any cap
    b"SSH-2.0-x\r\n" + struct.pack("!IB", 12, 2) + b"\x14" * 11,  # too little padding
    b"SSH-1.5-old\r\n",  # a protocol version asyncssh does not speak
    b"\r\n" * 5000,  # empty lines, not a version
])
def test_hostile_openings_end_only_their_connection(lab: Lab, sshd: Any, junk: bytes) -> None:
    """Many quiet connections and one hostile: each hostile one is closed
    with a [disconnect] event; a real client logs in and runs meanwhile."""
    quiet = [socket.create_connection(("127.0.0.1", sshd.port), timeout=30) for _ in range(20)]
    try:
        with socket.create_connection(("127.0.0.1", sshd.port), timeout=30) as s:
            s.sendall(junk)
            s.settimeout(30)
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
        c = lab.connect("ssh", sshd, options={"password": PASSWORD})
        assert c.run("ls").status == 0
        wait_until(lambda: len(events(lab, "sshd", "disconnect")) >= 1, what="the drop")
    finally:
        for s in quiet:
            s.close()
