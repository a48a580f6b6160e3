"""Intercepts: breakpoints on proxies, servers and clients hold what
matches; held messages are released, dropped or edited (fields or raw
bytes), after a timeout too; a held message stops only its own
connection; the commands and their errors.

Interop (swaks -> proxy -> aiosmtpd): tests/interop/test_proxy_peers.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from helpers import wait_until
from hypothesis import given
from hypothesis import strategies as st

from lab import Lab
from lab.commands import Interpreter
from lab.errors import CommandError, ConfigError, LabError, LabTimeout
from lab.eventlog import Direction, EventFilter, EventKind
from lab.protocols import smtp
from lab.protocols._base import Message, Role, Transport
from lab.protocols._framing import Line
from lab.proxy import Proxy


def received(lab: Lab, endpoint: str) -> list[bytes]:
    """What ``endpoint``'s connections received, message by message."""
    flt = EventFilter(endpoint=endpoint, direction=Direction.IN, kinds=frozenset({EventKind.MESSAGE}))
    return [e.raw for e in lab.log.query(flt) if e.raw is not None]


def notes(lab: Lab, endpoint: str) -> list[str]:
    flt = EventFilter(endpoint=endpoint, kinds=frozenset({EventKind.INFO}))
    return [e.text or "" for e in lab.log.query(flt)]


class Wire:
    """A plain socket client that reads line by line, with timeouts."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.sock.settimeout(20)
        self.buf = b""

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self) -> bytes:
        """One SMTP reply, all its lines."""
        out = self.line()
        while out.splitlines()[-1][3:4] == b"-":
            out += self.line()
        return out

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def mail(lab: Lab) -> Iterator[tuple[Lab, Proxy]]:
    """An SMTP server behind a proxy named px."""
    mx = lab.serve("smtp", name="mx")
    yield lab, lab.proxy("smtp", mx, name="px")


def greeted(px: Proxy) -> Wire:
    wire = Wire(px.port)
    assert wire.reply().startswith(b"220 ")
    wire.send(b"EHLO client.lab.test\r\n")
    assert wire.reply().startswith(b"250-")
    return wire


# -- on a proxy -----------------------------------------------------------------------


def test_a_held_message_waits_and_release_sends_its_exact_bytes(mail: tuple[Lab, Proxy]) -> None:
    """MAIL is held at the proxy: the server has not seen it; released, the
    server gets exactly the client's bytes, and the reply comes back."""
    lab, px = mail
    lab.intercept(px, "m:MAIL in")
    wire = greeted(px)
    wire.send(b"mail from:<Carol@lab.test>  \r\n")
    (held,) = lab.wait_held()
    assert held.endpoint == "px" and held.direction is Direction.IN and held.sender is Role.CLIENT
    assert held.message.raw == b"mail from:<Carol@lab.test>  \r\n"
    assert not [r for r in received(lab, "mx") if r.lower().startswith(b"mail")]
    held.release()
    assert wire.reply().startswith(b"250 ")
    assert b"mail from:<Carol@lab.test>  \r\n" in received(lab, "mx")
    assert any("released h1" in n for n in notes(lab, "px"))
    wire.close()


def test_edit_by_fields_is_reencoded_and_by_raw_bytes_sent_as_given(mail: tuple[Lab, Proxy]) -> None:
    """Editing fields makes new bytes through the protocol; editing raw
    bytes sends them as they are."""
    lab, px = mail
    lab.intercept(px, "m:MAIL in")
    lab.intercept(px, "m:RCPT in")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<carol@lab.test>\r\n")
    (held,) = lab.wait_held()
    new = held.edit(arg="FROM:<mallory@lab.test>")
    assert new.raw == b"MAIL FROM:<mallory@lab.test>\r\n"
    assert b"<mallory@lab.test>" in wire.reply()
    wire.send(b"RCPT TO:<nobody@elsewhere.test>\r\n")
    (held,) = lab.wait_held()
    assert held.id == "h2"
    lab.edit("h2", b"RCPT TO:<alice@lab.test>\r\n")
    assert wire.reply().startswith(b"250 ")
    assert received(lab, "mx")[-2:] == [b"MAIL FROM:<mallory@lab.test>\r\n", b"RCPT TO:<alice@lab.test>\r\n"]
    wire.close()


def test_a_bad_edit_is_refused_and_the_message_stays_held(mail: tuple[Lab, Proxy]) -> None:
    """An unknown field, a line break in a field, fields and raw at once:
    each a readable error; the message is still held afterwards."""
    lab, px = mail
    lab.intercept(px, "m:MAIL in")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<carol@lab.test>\r\n")
    (held,) = lab.wait_held()
    with pytest.raises(CommandError, match="no field 'sender'") as info:
        held.edit(sender="x")
    assert "verb, arg" in (info.value.hint or "")
    with pytest.raises(CommandError, match="cannot edit h1"):
        held.edit(arg="FROM:<a@lab.test>\r\nRSET")
    with pytest.raises(CommandError, match="not both"):
        lab.edit("h1", b"x", arg="y")
    with pytest.raises(CommandError, match="nothing held as 'h7'"):
        lab.release("h7")
    assert [h.id for h in lab.held()] == ["h1"]
    held.release()
    assert wire.reply().startswith(b"250 ")
    wire.close()


def test_drop_loses_the_message_and_what_follows_goes_on_in_order(mail: tuple[Lab, Proxy]) -> None:
    """Pipelined commands behind a held one wait their turn; dropping the
    held one lets the rest go, in order."""
    lab, px = mail
    lab.intercept(px, "m:MAIL in")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<carol@lab.test>\r\nNOOP\r\nRSET\r\n")
    (held,) = lab.wait_held()
    assert not [r for r in received(lab, "mx") if r in (b"NOOP\r\n", b"RSET\r\n")]
    held.drop()
    assert wire.reply().startswith(b"250 ")  # NOOP
    assert wire.reply().startswith(b"250 ")  # RSET
    assert received(lab, "mx")[-2:] == [b"NOOP\r\n", b"RSET\r\n"]
    assert not [r for r in received(lab, "mx") if r.startswith(b"MAIL")]
    wire.close()


def test_replies_are_held_too_and_edited_by_code(mail: tuple[Lab, Proxy]) -> None:
    """`out` holds what the server sends: an edited reply reaches the client."""
    lab, px = mail
    lab.intercept(px, "m:reply out 250 -EHLO")
    wire = Wire(px.port)
    assert wire.reply().startswith(b"220 ")
    wire.send(b"NOOP\r\n")
    (held,) = lab.wait_held()
    assert held.direction is Direction.OUT and held.sender is Role.SERVER
    held.edit(code=421, lines=["4.3.2 not today"])
    assert wire.reply() == b"421 4.3.2 not today\r\n"
    wire.close()


def test_a_held_message_does_not_delay_another_connection(mail: tuple[Lab, Proxy]) -> None:
    """While one client's MAIL is held, a second client through the same
    proxy completes a whole mail; then the first goes on."""
    lab, px = mail
    lab.intercept(px, "m:MAIL in -bob")
    first = greeted(px)
    first.send(b"MAIL FROM:<carol@lab.test>\r\n")
    lab.wait_held()
    second = greeted(px)
    for line in (b"MAIL FROM:<bob@lab.test>", b"RCPT TO:<alice@lab.test>", b"DATA"):
        second.send(line + b"\r\n")
        assert second.reply()[:1] in (b"2", b"3")
    second.send(b"Subject: meanwhile\r\n\r\nhi\r\n.\r\n")
    assert second.reply().startswith(b"250 ")
    second.send(b"QUIT\r\n")
    assert second.reply().startswith(b"221 ")
    assert [h.conn for h in lab.held()] == ["px#1"]
    lab.release("h1")
    assert first.reply().startswith(b"250 ")
    first.close()
    second.close()


def test_the_timeout_releases_or_drops(mail: tuple[Lab, Proxy]) -> None:
    """A message nobody acts on goes on by itself after the breakpoint's
    timeout, or is dropped, as configured; the log says which."""
    lab, px = mail
    lab.intercept(px, "m:NOOP", timeout=0.2)
    lab.intercept(px, "m:RSET", timeout=0.2, then="drop")
    wire = greeted(px)
    wire.send(b"NOOP\r\n")
    assert wire.reply().startswith(b"250 ")  # released by the timeout
    wire.send(b"RSET\r\nHELP\r\n")
    assert wire.reply().startswith(b"214")  # RSET was dropped: HELP answers next
    wait_until(lambda: any("waited 0.2 s: drop" in n for n in notes(lab, "px")), 10)
    assert any("waited 0.2 s: release" in n for n in notes(lab, "px"))
    assert not lab.held()
    wire.close()


def test_a_connection_reset_drops_what_it_held(mail: tuple[Lab, Proxy]) -> None:
    """Reading goes on behind a held message, so a client that resets the
    connection is noticed: what it held goes with it."""
    import struct

    lab, px = mail
    lab.intercept(px, "m:MAIL")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<a@lab.test>\r\n")
    lab.wait_held()
    wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wire.close()  # with linger 0: a reset
    wait_until(lambda: not lab.held(), 10, "the held message to go with its connection")
    assert any("dropped: the connection closed" in n for n in notes(lab, "px"))


def test_a_half_closed_client_still_gets_its_answer(mail: tuple[Lab, Proxy]) -> None:
    """A client that finished sending may still read: its held command,
    released, is answered, then the end passes on."""
    lab, px = mail
    lab.intercept(px, "m:QUIT")
    wire = greeted(px)
    wire.send(b"QUIT\r\n")
    wire.sock.shutdown(socket.SHUT_WR)
    (held,) = lab.wait_held()
    held.release()
    assert wire.reply().startswith(b"221 ")
    assert wire.sock.recv(100) == b""
    wire.close()


def test_removing_breakpoints_keeps_what_is_held(mail: tuple[Lab, Proxy]) -> None:
    lab, px = mail
    lab.intercept(px, "m:MAIL")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<a@lab.test>\r\n")
    lab.wait_held()
    assert lab.unintercept(px) == 1
    assert len(lab.held()) == 1
    lab.release("h1")
    assert wire.reply().startswith(b"250 ")
    wire.send(b"MAIL FROM:<b@lab.test>\r\n")  # no breakpoint now: straight through
    assert wire.reply().startswith(b"503 ")
    wire.close()


def test_inject_writes_to_either_side(mail: tuple[Lab, Proxy]) -> None:
    """inject sends new bytes to the client or to the server of a proxied
    connection; the log marks them."""
    lab, px = mail
    wire = greeted(px)
    conn = next(iter(px.connections.values()))
    lab.reactor.call_soon(conn.inject, b"250 from nowhere\r\n", Role.CLIENT)
    assert wire.reply() == b"250 from nowhere\r\n"
    lab.reactor.call_soon(conn.inject, b"NOOP\r\n", Role.SERVER)
    wait_until(lambda: b"NOOP\r\n" in received(lab, "mx"), 10)
    assert wire.reply().startswith(b"250 ")  # the server's answer to the injected NOOP
    assert any("injected toward the server" in n for n in notes(lab, "px"))
    wire.close()


# -- on servers and clients -------------------------------------------------------------


def test_a_server_breakpoint_holds_what_its_clients_send(lab: Lab) -> None:
    """On a server, a held command is not handled until released."""
    mx = lab.serve("smtp", name="mx")
    lab.intercept(mx, "m:VRFY")
    c = lab.connect("smtp", mx)
    c.expect(220)
    c.send("VRFY alice\r\n")
    (held,) = lab.wait_held()
    assert held.conn == "mx#1" and held.sender is Role.CLIENT
    with pytest.raises(LabTimeout):
        c.expect(252, timeout=0.3)  # not answered while held
    held.edit(arg="bob")
    reply = c.expect(re_code(25))
    assert b"bob" in reply.raw or reply.raw.startswith(b"252")


def re_code(prefix: int) -> object:
    import re

    return re.compile(rf"^{prefix}\d ")


def test_a_client_breakpoint_holds_what_its_server_sends(lab: Lab) -> None:
    """On a client, a held reply is not seen by expect until released."""
    mx = lab.serve("smtp", name="mx")
    c = lab.connect("smtp", mx, name="c")
    c.expect(220)
    lab.intercept(c, "m:reply 250")
    c.send("NOOP\r\n")
    (held,) = lab.wait_held()
    assert held.endpoint == "c" and held.sender is Role.SERVER
    with pytest.raises(LabTimeout):
        c.expect(250, timeout=0.3)
    held.release()
    assert c.expect(250).raw.startswith(b"250")


def test_breakpoints_are_refused_where_nothing_can_be_held(lab: Lab) -> None:
    with pytest.raises(LabError):
        lab.intercept("nowhere", "in")
    with pytest.raises(ConfigError, match="timeout"):
        lab.intercept(lab.serve("echo"), "in", timeout=0)
    with pytest.raises(CommandError, match="needs a value"):
        lab.intercept("echo1", "m:")


# -- the command language ------------------------------------------------------------------


def test_the_commands_hold_list_edit_release_and_drop(lab: Lab) -> None:
    """intercept, held --wait, edit (no id: the oldest), drop --on, inject
    into an endpoint's newest connection, and their listings."""
    interp = Interpreter(lab)

    def run(text: str, timeout: float = 20) -> str:
        (result,) = interp.execute(text, timeout)
        return result.text

    run("serve smtp as mx")
    run("proxy smtp --to mx as px")
    assert "holding px: m:MAIL in" in run("intercept px m:MAIL in --timeout 60")
    assert "then release after 60 s" in run("intercept")
    run("connect smtp px as c")
    run("expect c 220")
    run("send c 'HELO x'")
    run("expect c 250")
    run("send c 'MAIL FROM:<a@lab.test>'")
    listing = run("held --wait --on px")
    assert listing.startswith("h1") and "px#1" in listing and "MAIL FROM:<a@lab.test>" in listing
    assert "MAIL FROM:<z@lab.test>" in run("edit arg=FROM:<z@lab.test>")
    run("expect c 250")
    run("send c 'MAIL FROM:<b@lab.test>'")
    assert run("drop --on px --wait 10") == "dropped h2"
    assert run("held") == "nothing is held"
    assert "-> client" in run("inject px 250 made up")
    run("expect c /made up/")
    assert run("intercept px --off") == "px: 1 breakpoint(s) removed"
    with pytest.raises(CommandError, match="nothing is held on px"):
        run("release --on px")
    with pytest.raises(CommandError, match="0 of 1 message"):
        run("held --wait --timeout 0.2")
    with pytest.raises(CommandError, match="no open connection 'px#9'"):
        run("inject px#9 hello")
    with pytest.raises(CommandError, match="talks to its server only"):
        run("inject c --to client hello")


def test_completion_offers_held_ids_and_breakpoint_words(lab: Lab) -> None:
    interp = Interpreter(lab)
    interp.execute("serve smtp as mx", 10)
    interp.execute("proxy smtp --to mx as px", 10)
    assert "px" in interp.complete("intercept ")
    assert "--off" in interp.complete("intercept px ")
    assert "all" in interp.complete("release ")


# -- python objects from another thread -----------------------------------------------------


def test_held_objects_work_from_another_thread(mail: tuple[Lab, Proxy]) -> None:
    """A shell thread waits for a hold and edits it while a client waits."""
    lab, px = mail
    lab.intercept("px", "m:RCPT")
    wire = greeted(px)
    wire.send(b"MAIL FROM:<a@lab.test>\r\n")
    assert wire.reply().startswith(b"250 ")
    done: list[bytes] = []

    def shell() -> None:
        (held,) = lab.wait_held(timeout=20)
        done.append(held.edit(arg="TO:<alice@lab.test>").raw)

    thread = threading.Thread(target=shell)
    thread.start()
    wire.send(b"RCPT TO:<x@nowhere.test>\r\n")
    assert wire.reply().startswith(b"250 ")
    thread.join(20)
    assert done == [b"RCPT TO:<alice@lab.test>\r\n"]
    assert "h1" in repr(lab.intercepts.last_taken)
    wire.close()


def test_the_worked_example_of_the_proxy_docs_runs() -> None:
    """docs/proxy.md's Python example is real: run it as it is written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "proxy.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text[text.index("## A worked example"):], re.DOTALL)
    assert code is not None
    exec(compile(code.group(1), "docs/proxy.md", "exec"), {})


# -- edits re-encode what the protocol decodes -------------------------------------------------

_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)


@given(verb=st.sampled_from(["MAIL", "RCPT", "NOOP", "VRFY", "HELO"]), arg=_TEXT)
def test_an_edited_smtp_command_decodes_to_the_fields_given(verb: str, arg: str) -> None:
    """Property: edited(verb, arg) writes bytes that decode back to them."""
    start = smtp.parse_command(b"NOOP\r\n")
    new = start.edited(verb=verb, arg=arg.strip())
    again = smtp.parse_command(new.raw)
    assert (again.verb, again.arg) == (verb, arg.strip())


@given(line=st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=80))
def test_an_edited_line_keeps_its_ending(line: str) -> None:
    """Property: a line edited keeps the original's line end."""
    original = Line.of("old", b"\r\n")
    new = original.edited(line=line)
    assert new.raw == line.encode() + b"\r\n"


_WORD = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, blacklist_characters=":"), min_size=1,
                max_size=12)
_SPACED = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)


def _decoded(protocol: str, raw: bytes, sender: Role) -> Message:
    """``raw`` as a fresh observer of ``protocol`` reads it: one message."""
    from lab import protocols as registry

    msgs = registry.get(protocol).conversation(None, Transport.TCP).feed(raw, sender)
    assert len(msgs) == 1 and msgs[0].raw == raw, msgs
    return msgs[0]


@given(code=st.integers(200, 599), lines=st.lists(_SPACED.map(str.strip), min_size=1, max_size=4))
def test_an_edited_smtp_reply_decodes_to_its_code_and_lines(code: int, lines: list[str]) -> None:
    """Property: a reply edited by code and lines reads back the same."""
    new = smtp.Reply.of(250, "ok").edited(code=code, lines=lines)
    again = _decoded("smtp", new.raw, Role.SERVER)
    assert (again.code, list(again.lines)) == (code, [] if lines == [""] else lines)  # type: ignore[attr-defined]


@given(pick=st.sampled_from([("pop3", "USER"), ("pop3", "TOP"), ("pop3", "LIST"), ("nntp", "GROUP"),
                             ("nntp", "LISTGROUP"), ("nntp", "HEAD")]), args=st.lists(_WORD, max_size=3))
def test_edited_pop3_and_nntp_commands_decode_to_their_fields(pick: tuple[str, str], args: list[str]) -> None:
    """Property: verb and args edited into a command read back the same."""
    protocol, verb = pick
    start = _decoded(protocol, b"NOOP\r\n" if protocol == "nntp" else b"STAT\r\n", Role.CLIENT)
    again = _decoded(protocol, start.edited(verb=verb, args=args).raw, Role.CLIENT)
    assert (again.verb, list(again.args)) == (verb, args)  # type: ignore[attr-defined]


@given(command=st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "TOPIC"]), middle=st.lists(_WORD, max_size=3),
       trailing=_SPACED)
def test_an_edited_irc_message_decodes_to_its_fields(command: str, middle: list[str], trailing: str) -> None:
    """Property: command and params (the last may hold spaces) read back the same."""
    start = _decoded("irc", b"PING x\r\n", Role.CLIENT)
    params = [m.lstrip("#") or "x" for m in middle] + [trailing]
    again = _decoded("irc", start.edited(command=command, params=params).raw, Role.CLIENT)
    assert (again.command, list(again.params)) == (command, params)  # type: ignore[attr-defined]
