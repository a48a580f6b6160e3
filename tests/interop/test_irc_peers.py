"""Interop: IRC against peers nobody here wrote.

Our server answers the PyPI ``irc`` library's client and Twisted's
``IRCClient`` (each run as a child process, driven over stdin; see
irc_peer_irclib.py and irc_peer_twisted.py); our client talks to ngIRCd
and miniircd.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, wait_until

from lab import Lab
from lab.eventlog import Direction, EventFilter, EventKind
from lab.protocols.irc import IrcMessage

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent


class Peer(Proc):
    """A foreign IRC client in a child process."""

    def __init__(self, script: str, module: str, port: int, nick: str) -> None:
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"peer library {module!r} is missing: run `bash .ci/setup`")
        super().__init__([sys.executable, str(HERE / script), str(port), nick])
        self.nick = nick

    def do(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = 30.0, stream: str | None = None) -> str:
        # generous: the child imports its library first, on a busy machine
        return super().wait_for(pattern, timeout, stream)

    def fields(self, pattern: str, timeout: float = 30.0) -> list[str]:
        """The tab-separated fields of the next output line matching."""
        return self.wait_for(pattern, timeout).split("\t")


def irclib(port: int, nick: str) -> Peer:
    """The ``irc`` library's client."""
    return Peer("irc_peer_irclib.py", "irc.client", port, nick)


def twisted(port: int, nick: str) -> Peer:
    return Peer("irc_peer_twisted.py", "twisted.words.protocols.irc", port, nick)


def received(lab: Lab, endpoint: str, command: str) -> list[IrcMessage]:
    """Messages of ``command`` that ``endpoint`` received, in order."""
    events = lab.log.query(EventFilter(endpoint=endpoint, direction=Direction.IN,
                                       kinds=frozenset({EventKind.MESSAGE})))
    return [e.message for e in events if isinstance(e.message, IrcMessage) and e.message.command == command]


# -- foreign clients, our server ------------------------------------------------------------


def test_irc_library_client_against_our_server(lab: Lab) -> None:
    """The irc library registers, joins, talks both ways, sets the topic,
    sends an ACTION, changes nick and quits; our client sees all of it."""
    srv = lab.serve("irc")
    ours = lab.connect("irc", srv)
    ours.nick("ours")
    ours.join("#lab")
    with irclib(srv.port, "libby") as peer:
        welcome = peer.fields(r"^WELCOME\t")
        assert welcome[2] == "libby" and "libby!libby@127.0.0.1" in welcome[3]
        peer.do("join #lab")
        names = peer.fields(r"^NAMREPLY\t")
        assert names[3:] == ["=", "#lab", "@ours libby"]
        ours.expect(lambda m: m.command == "JOIN" and m.nick == "libby", timeout=20)
        ours.say("#lab", "hello libby")
        assert peer.fields(r"^PUBMSG\t") == ["PUBMSG", "ours", "#lab", "hello libby"]
        ours.say("libby", "a private word")
        assert peer.fields(r"^PRIVMSG\t") == ["PRIVMSG", "ours", "libby", "a private word"]
        peer.do("say #lab hello ours")
        assert ours.listen(timeout=20).text == ":libby!libby@127.0.0.1 PRIVMSG #lab :hello ours"
        peer.do("act #lab waves")
        action = ours.listen(timeout=20)
        assert (action.ctcp, action.ctcp_args) == ("ACTION", "waves")
        peer.do("topic #lab set by a stranger")
        assert peer.fields(r"^CHANOPRIVSNEEDED\t")[3] == "#lab"  # +t: operators only
        ours.raw("MODE #lab -t")
        peer.do("topic #lab set by a stranger")
        assert ours.expect(lambda m: m.command == "TOPIC", timeout=20).last == "set by a stranger"
        peer.do("raw FROBNICATE")
        assert peer.fields(r"^UNKNOWNCOMMAND\t")[3] == "FROBNICATE"
        peer.do("nick libby2")
        renamed = ours.expect(lambda m: m.command == "NICK", timeout=20)
        assert (renamed.nick, renamed.params) == ("libby", ("libby2",))
        peer.do("quit see you")
        peer.wait_for(r"^BYE")
    quit_msg = ours.expect(lambda m: m.command == "QUIT", timeout=20)
    assert (quit_msg.nick, quit_msg.last) == ("libby2", "Quit: see you")


def test_twisted_ircclient_against_our_server(lab: Lab) -> None:
    """Twisted's IRCClient signs on, joins, talks, sees modes, topics,
    kicks and renames, and answers WHOIS data it asked for."""
    srv = lab.serve("irc")
    ours = lab.connect("irc", srv)
    ours.nick("ours")
    ours.join("#lab")
    with twisted(srv.port, "twisty") as peer:
        peer.fields(r"^SIGNEDON\ttwisty$")
        peer.do("join #lab")
        peer.fields(r"^JOINED\t#lab$")
        assert peer.fields(r"^NAMES\t") == ["NAMES", "#lab", "@ours twisty"]
        ours.say("#lab", "hello twisty")
        assert peer.fields(r"^PRIVMSG\t") == ["PRIVMSG", "ours", "#lab", "hello twisty"]
        ours.act("#lab", "bows")
        assert peer.fields(r"^ACTION\t") == ["ACTION", "ours", "#lab", "bows"]
        peer.do("say #lab hello ours")
        assert ours.listen(timeout=20).last == "hello ours"
        ours.raw("MODE #lab +o twisty")
        assert peer.fields(r"^MODE\t") == ["MODE", "ours", "#lab", "+", "o", "twisty"]
        ours.topic("#lab", "twisted topics")
        assert peer.fields(r"^TOPIC\t") == ["TOPIC", "ours", "#lab", "twisted topics"]
        peer.do("whois ours")
        assert peer.fields(r"^WHOISUSER\t") == ["WHOISUSER", "ours", "ours", "127.0.0.1", "*", "ours"]
        peer.wait_for(r"^ENDOFWHOIS\tours$")
        ours.nick("ours2")
        assert peer.fields(r"^USERRENAMED\t") == ["USERRENAMED", "ours", "ours2"]
        peer.do("kick #lab ours2 enough")
        assert ours.expect(lambda m: m.command == "KICK", timeout=20).params == ("#lab", "ours2", "enough")
        assert peer.fields(r"^USERKICKED\t") == ["USERKICKED", "ours2", "#lab", "twisty", "enough"]
        peer.do("quit bye now")
        assert peer.fields(r"^ERROR\t")[1] == "Closing Link: 127.0.0.1 (Quit: bye now)"
        peer.wait_for(r"^BYE")


def test_three_clients_one_channel_in_order(lab: Lab) -> None:
    """Ours, the irc library's and Twisted's client in one channel, all
    talking at once: each sees every other's messages exactly in the
    order the server relayed them."""
    srv = lab.serve("irc")
    ours = lab.connect("irc", srv)
    ours.nick("ours")
    ours.join("#order")
    rounds = 8
    with irclib(srv.port, "libby") as lib, twisted(srv.port, "twisty") as tw:
        lib.wait_for(r"^WELCOME\t")
        tw.wait_for(r"^SIGNEDON\t")
        lib.do("join #order")
        lib.wait_for(r"^ENDOFNAMES\t")
        tw.do("join #order")
        tw.wait_for(r"^JOINED\t")
        wait_until(lambda: len(srv.behaviour.chat.room("#order").members) == 3, 20, "three members")
        for i in range(rounds):  # everyone at once, without waiting for anyone
            lib.do(f"say #order libby-{i}")
            tw.do(f"say #order twisty-{i}")
            ours.say("#order", f"ours-{i}")
        seen_by_lib = [lib.fields(r"^PUBMSG\t")[3] for _ in range(2 * rounds)]
        seen_by_tw = [tw.fields(r"^PRIVMSG\t")[3] for _ in range(2 * rounds)]
        seen_by_ours = [ours.listen(timeout=20).last for _ in range(2 * rounds)]
    relayed = [m.last for m in received(lab, srv.name, "PRIVMSG")]
    assert sorted(relayed) == sorted(f"{who}-{i}" for who in ("libby", "twisty", "ours") for i in range(rounds))
    for who, seen in (("libby", seen_by_lib), ("twisty", seen_by_tw), ("ours", seen_by_ours)):
        assert seen == [text for text in relayed if not text.startswith(who)], who
        for sender in {"libby", "twisty", "ours"} - {who}:
            mine = [t for t in seen if t.startswith(sender)]
            assert mine == [f"{sender}-{i}" for i in range(rounds)], (who, sender)


def test_foreign_clients_answer_our_pings_and_the_silent_are_dropped(lab: Lab) -> None:
    """Both libraries PONG our keep-alive PINGs and stay; a raw socket
    that never answers is dropped with ERROR (Ping timeout)."""
    import socket

    srv = lab.serve("irc", ping_interval=0.3, ping_timeout=3)
    with irclib(srv.port, "libby") as lib, twisted(srv.port, "twisty") as tw:
        lib.wait_for(r"^WELCOME\t")
        tw.wait_for(r"^SIGNEDON\t")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as silent:
            silent.sendall(b"NICK mute\r\nUSER mute 0 * :m\r\n")
            got = b""
            while b"ERROR" not in got:
                data = silent.recv(4096)
                if not data:
                    break
                got += data
        assert b"PING irc.lab.test" in got and b"(Ping timeout: " in got
        for _ in range(2):
            lib.wait_for(r"^PING\t")
            tw.wait_for(r"^PING\t")
        # each printed PING before its PONG reached us
        wait_until(lambda: len(received(lab, srv.name, "PONG")) >= 4, 20, "four PONGs")
        wait_until(lambda: {s.user.nick for s in list(srv.behaviour.sessions) if s.user}
                   == {"libby", "twisty"}, 20, "only the silent client to be dropped")


# -- our client, foreign servers -------------------------------------------------------------


def chat_through(lab: Lab, port: int) -> tuple[Any, Any]:
    """Two of our clients on a foreign server, in #lab."""
    a, b = lab.connect("irc", port), lab.connect("irc", port)
    assert a.nick("alice")  # the welcome text
    b.nick("bob")
    assert (a.verbs.nickname, a.verbs.registered) == ("alice", True)
    assert [n.lstrip("@") for n in a.join("#lab")] == ["alice"]  # miniircd has no operators
    assert sorted(n.lstrip("@") for n in b.join("#lab")) == ["alice", "bob"]
    return a, b


def test_our_client_against_ngircd(lab: Lab, ngircd: int) -> None:
    """Our verbs work against ngIRCd: register, join, say, CTCP, topic,
    nick, part, quit; refusals raise; its PINGs are answered."""
    a, b = chat_through(lab, ngircd)
    assert a.verbs.isupport["IRCD"] == "ngIRCd"
    a.say("#lab", "hello over ngircd")
    heard = b.listen(timeout=20)
    assert (heard.nick, heard.params) == ("alice", ("#lab", "hello over ngircd"))
    a.act("#lab", "waves")
    assert b.listen(timeout=20).ctcp == "ACTION"
    assert b.ctcp("alice", "VERSION", timeout=20).startswith("netlab")
    assert a.topic("#lab", "ngircd topic") == "ngircd topic"
    assert b.topic("#lab") == "ngircd topic"
    from lab.protocols.irc import IrcError

    with pytest.raises(IrcError, match="433"):
        b.nick("alice")
    assert a.nick("alicia") == "alicia"
    # ngIRCd PINGs a client quiet for PingTimeout seconds; ours answers by itself
    wait_until(lambda: received(lab, a.name, "PING"), 30, "ngIRCd to PING us")
    wait_until(lambda: any(e.message is not None and e.message.kind == "PONG" for e in lab.log.query(
        EventFilter(endpoint=a.name, direction=Direction.OUT, kinds=frozenset({EventKind.MESSAGE})))),
        10, "our PONG")
    b.part("#lab", "bye")
    a.quit("done")
    assert lab.endpoints[a.name].conn.state.value == "closed"


def test_our_client_against_miniircd(lab: Lab, miniircd: int) -> None:
    """Our verbs against miniircd: register, join, talk, nick, part, quit."""
    a, b = chat_through(lab, miniircd)
    a.say("#lab", "hello over miniircd")
    assert b.listen(timeout=20).last == "hello over miniircd"
    b.say("alice", "private")
    assert a.listen(timeout=20).params == ("alice", "private")
    assert b.nick("robert") == "robert"
    b.part("#lab")
    a.quit("bye")
