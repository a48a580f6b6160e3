"""Tests for lab/protocols/irc: the RFC 1459/2812 messages and conversation,
the server driven in memory on a clock the tests move, the client verbs
through a loopback, an observer replaying what both sides saw, and
hostile input on real sockets."""

from __future__ import annotations

import asyncio
import functools
import socket
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab import Lab
from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.eventlog import Direction, EventFilter, EventKind
from lab.protocols import irc
from lab.protocols._base import Role, Transport
from lab.protocols.irc import IrcMalformed, IrcMessage, IrcSession, parse_message
from lab.services import Services
from lab.services.chat import CHAT, ChatService

SETTINGS = settings(deadline=None, max_examples=200)


# -- messages and the conversation ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "prefix", "command", "params"),
    [
        (b"PING :irc.lab.test\r\n", "", "PING", ("irc.lab.test",)),
        (b":nick!user@host PRIVMSG #lab :hello world\r\n", "nick!user@host", "PRIVMSG", ("#lab", "hello world")),
        (b":irc.lab.test 001 alice :Welcome\r\n", "irc.lab.test", "001", ("alice", "Welcome")),
        (b"privmsg bob hi\n", "", "PRIVMSG", ("bob", "hi")),  # bare LF, lower-case command
        (b"MODE   #lab  +o   bob\r\n", "", "MODE", ("#lab", "+o", "bob")),  # runs of spaces
        (b"TOPIC #lab :\r\n", "", "TOPIC", ("#lab", "")),  # empty trailing
        (b"PRIVMSG #a ::-) smile\r\n", "", "PRIVMSG", ("#a", ":-) smile")),
        (b"USER a 0 * :Real Name: Here\r\n", "", "USER", ("a", "0", "*", "Real Name: Here")),
        (b"QUIT\r\n", "", "QUIT", ()),
        (b"NICK alice", "", "NICK", ("alice",)),  # the last line may lack its terminator
        (b"@time=2024;x :srv NOTICE * :hi\r\n", "srv", "NOTICE", ("*", "hi")),  # IRCv3 tags
        (b"PRIVMSG #a :caf\xe9\r\n", "", "PRIVMSG", ("#a", "café")),  # Latin-1 when not UTF-8
    ],
)
def test_message_grammar(raw: bytes, prefix: str, command: str, params: tuple[str, ...]) -> None:
    """RFC 2812 §2.3.1: prefix, command and parameters, trailing last."""
    msg = parse_message(raw)
    assert isinstance(msg, IrcMessage)
    assert (msg.prefix, msg.command, msg.params, msg.raw) == (prefix, command, params, raw)


def test_fifteenth_parameter_takes_the_rest() -> None:
    """After 14 middle parameters the rest of the line is the 15th."""
    msg = parse_message(b"CMD " + b" ".join(b"p%d" % i for i in range(1, 15)) + b" last words here\r\n")
    assert isinstance(msg, IrcMessage)
    assert len(msg.params) == 15 and msg.params[-1] == "last words here"


@pytest.mark.parametrize(
    ("raw", "ctcp", "args"),
    [
        (b":a!b@c PRIVMSG #lab :\x01ACTION waves\x01\r\n", "ACTION", "waves"),
        (b"PRIVMSG bob :\x01VERSION\x01\r\n", "VERSION", ""),
        (b"NOTICE bob :\x01PING 12345\x01\r\n", "PING", "12345"),
        (b"PRIVMSG bob :\x01action no close\r\n", "ACTION", "no close"),  # closing \x01 often missing
    ],
)
def test_ctcp_is_decoded(raw: bytes, ctcp: str, args: str) -> None:
    """CTCP inside PRIVMSG/NOTICE comes out as its own fields."""
    msg = parse_message(raw)
    assert isinstance(msg, IrcMessage)
    assert (msg.ctcp, msg.ctcp_args) == (ctcp, args)
    assert msg.fields()["ctcp"] == {"command": ctcp, "args": args}
    assert f"CTCP {ctcp}" in msg.summary()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\r\n", "empty message"),
        (b"   \r\n", "empty message"),
        (b"NICK al\x00ice\r\n", "NUL byte"),
        (b"NICK a\rb\r\n", "CR inside"),
        (b": PRIVMSG x y\r\n", "empty prefix"),
        (b":prefix-only\r\n", "no command"),
        (b":p :trailing\r\n", "no command"),
        (b"12 x\r\n", "bad command"),
        (b"PRIV-MSG x\r\n", "bad command"),
    ],
)
def test_malformed_lines_decode_as_malformed(raw: bytes, reason: str) -> None:
    """Grammar errors do not end the stream: they decode as IrcMalformed."""
    msg = parse_message(raw)
    assert isinstance(msg, IrcMalformed) and reason in msg.reason and msg.raw == raw
    assert msg.kind == "malformed"


def test_message_descriptions() -> None:
    """kind is the command; summaries name numerics; volatile marks
    PING tokens, timestamps and client hosts."""
    msg = parse_message(b":irc.lab.test 333 alice #lab bob 1700000000\r\n")
    assert isinstance(msg, IrcMessage)
    assert msg.kind == "333" and msg.numeric == 333 and msg.code == 333
    assert msg.summary().startswith(":irc.lab.test 333 (RPL_TOPICWHOTIME) alice #lab")
    assert msg.fields()["name"] == "RPL_TOPICWHOTIME"
    assert "params" in msg.volatile
    ping = IrcMessage.of("PING", "token")
    assert ping.kind == "PING" and "params" in ping.volatile
    said = parse_message(b":bob!b@127.0.0.1 PRIVMSG #lab :hi\r\n")
    assert isinstance(said, IrcMessage)
    assert said.volatile == frozenset({"prefix"}) and (said.nick, said.user, said.host) == ("bob", "b", "127.0.0.1")
    assert said.fields()["source"] == {"nick": "bob", "user": "b", "host": "127.0.0.1"}


def test_building_messages() -> None:
    """of() adds the colon only where needed and refuses what cannot be sent."""
    assert IrcMessage.of("privmsg", "#a", "hi there").raw == b"PRIVMSG #a :hi there\r\n"
    assert IrcMessage.of("JOIN", "#a").raw == b"JOIN #a\r\n"
    assert IrcMessage.of("TOPIC", "#a", "").raw == b"TOPIC #a :\r\n"
    assert IrcMessage.of("NOTICE", "x", ":)").raw == b"NOTICE x ::)\r\n"
    assert IrcMessage.of("PONG", "s", prefix="irc.lab.test").raw == b":irc.lab.test PONG s\r\n"
    assert IrcMessage.ctcp_request("PRIVMSG", "#a", "action", "waves").raw == b"PRIVMSG #a :\x01ACTION waves\x01\r\n"
    for bad in (("PRIVMSG", "a b", "x"), ("PRIVMSG", "#a", "x\r\ny"), ("NICK", "a\x00"), ("PRIVMSG", "", "x"),
                ("BAD CMD",), ("PRIVMSG", ":x", "y")):
        with pytest.raises(LocalProtocolError):
            IrcMessage.of(*bad)
    with pytest.raises(LocalProtocolError, match="512-byte limit"):
        IrcMessage.of("PRIVMSG", "#a", "x" * 600)


def test_relayed_messages_are_cut_to_512_bytes() -> None:
    """truncate cuts the last parameter, never inside a UTF-8 character."""
    msg = IrcMessage.of("PRIVMSG", "#a", "é" * 400, prefix="nick!user@host", truncate=True)
    assert len(msg.raw) <= irc.MAX_MESSAGE
    assert set(msg.last) == {"é"}


def test_numerics_match_reply_code_patterns() -> None:
    """expect 433 / "001" compares the numeric; other patterns as for any message."""
    taken = parse_message(b":irc.lab.test 433 * alice :Nickname is already in use\r\n")
    assert isinstance(taken, IrcMessage)
    assert taken.matches(433) and taken.matches("433") and not taken.matches(43) and not taken.matches("001")
    assert taken.matches("already in use") and taken.matches(b"433 *") and taken.matches(lambda m: m.kind == "433")
    said = IrcMessage.of("PRIVMSG", "#lab", "433 is a number")
    assert not said.matches(433) and said.matches("433 is")  # a code pattern wants the numeric
    welcome = parse_message(b":s 001 a :hi\r\n")
    assert welcome.matches("001") and welcome.matches(1)


def test_only_ping_is_a_keepalive() -> None:
    """A PING comes on the server's clock; recordings note it, not expect it."""
    assert IrcMessage.of("PING", "irc.lab.test").keepalive
    assert not IrcMessage.of("PONG", "irc.lab.test").keepalive
    assert not parse_message(b"\r\n").keepalive


@pytest.mark.parametrize("role", [*Role, None])
def test_conversation_frames_both_sides_alike(role: Role | None) -> None:
    """Either side's lines, split anywhere, decode the same for a client,
    a server and an observer; a line past MAX_LINE is an error."""
    data = b":s 001 a :hi\r\nPING :x\nPRIVMSG #a :\x01ACTION y\x01\r\n"
    want = [b":s 001 a :hi\r\n", b"PING :x\n", b"PRIVMSG #a :\x01ACTION y\x01\r\n"]
    for sender in Role:
        if sender is role:
            continue
        conv = irc.SPEC.conversation(role, Transport.TCP)
        assert isinstance(conv, irc.IrcConversation) and not conv.follows_sends
        got = [m for i in range(len(data)) for m in conv.feed(data[i:i + 1], sender if role is None else None)]
        assert [m.raw for m in got] == want
        with pytest.raises(RemoteProtocolError, match="longer than"):
            conv.feed(b"x" * (irc.MAX_LINE + 10), sender if role is None else None)


def test_conversation_refuses_to_send_over_512_bytes() -> None:
    """Sending a decoded long line (which a server may have received) fails."""
    long = parse_message(b"PRIVMSG #a :" + b"x" * 600 + b"\r\n")
    for role in Role:
        with pytest.raises(LocalProtocolError, match="512-byte limit"):
            irc.SPEC.conversation(role, Transport.TCP).send(long)


def test_options_are_typed_with_defaults() -> None:
    """One dataclass: defaults filled in, values parsed, bad ones named."""
    defaults = irc.SPEC.resolve_options({})
    assert isinstance(defaults, irc.IrcOptions)
    assert (defaults.server_name, defaults.ping_interval, defaults.flood_burst, defaults.password) == (
        "irc.lab.test", 90.0, 20, None)
    given_options = irc.SPEC.resolve_options({"flood_rate": "2.5", "max_users": 3, "motd": ""})
    assert isinstance(given_options, irc.IrcOptions)
    assert (given_options.flood_rate, given_options.max_users, given_options.motd) == (2.5, 3, "")
    with pytest.raises(ConfigError, match=r"irc: --server-name wants a host name with a dot, got 'nodot'") as exc:
        irc.SPEC.resolve_options({"server_name": "nodot"})
    assert exc.value.hint == "e.g. --server-name irc.lab.test"
    with pytest.raises(ConfigError, match="irc: --flood-burst wants a number of at least 0"):
        irc.SPEC.resolve_options({"flood_burst": "-1"})
    assert irc.IrcOptions.get("ping_interval").help_text.endswith("(default 90)")


_middle = st.text(st.characters(blacklist_characters="\x00\r\n :", blacklist_categories=("Cs",)),
                  min_size=1, max_size=12)
_trailing = st.text(st.characters(blacklist_characters="\x00\r\n", blacklist_categories=("Cs",)), max_size=40)


@SETTINGS
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8), eof=st.booleans())
def test_conversation_laws_on_any_bytes(laws: ConversationLaws, data: bytes, cuts: list[int], eof: bool) -> None:
    """Any bytes from either side, split anywhere: the same messages,
    received, sent or observed, adding up exactly; only RemoteProtocolError."""
    for sender in Role:
        laws.stream(irc.SPEC.conversation, sender, data, cuts, eof=eof)


@SETTINGS
@given(
    lines=st.lists(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\r\n"), max_size=6),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_conversation_laws_on_lines(laws: ConversationLaws, lines: list[bytes], cuts: list[int]) -> None:
    """Whole lines of arbitrary bytes from either side each decode to one message."""
    for sender in Role:
        msgs = laws.stream(irc.SPEC.conversation, sender, b"".join(lines), cuts)
        assert [m.raw for m in msgs] == lines


@SETTINGS
@given(
    command=st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "MODE", "001", "353", "KICK"]),
    middles=st.lists(_middle, max_size=5),
    last=st.one_of(st.none(), _trailing),
    prefix=st.one_of(st.just(""), st.from_regex(r"[a-z]{1,8}(![a-z]{1,8}@[a-z0-9.]{1,12})?", fullmatch=True)),
)
def test_built_messages_parse_back(command: str, middles: list[str], last: str | None, prefix: str) -> None:
    """of() then parse gives back the prefix, command and parameters."""
    params = [*middles, *([] if last is None else [last])]
    try:
        msg = IrcMessage.of(command, *params, prefix=prefix)
    except LocalProtocolError:
        assert len(" ".join(params).encode()) > 400
        return
    again = parse_message(msg.raw)
    assert isinstance(again, IrcMessage)
    assert (again.prefix, again.command, again.params) == (prefix, command, tuple(params))
    assert again == msg


_any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@SETTINGS
@given(
    command=st.one_of(st.sampled_from(["privmsg", "NOTICE", "PING", "001"]), _any_text),
    params=st.lists(st.one_of(_middle, _any_text, st.sampled_from(["\x01ACTION waves\x01", "\x01VERSION", ":)"])),
                    max_size=16),
    prefix=st.one_of(st.just(""), _any_text),
    colon=st.booleans(),
    truncate=st.booleans(),
)
def test_built_messages_equal_what_parses_from_their_bytes(command: str, params: list[str], prefix: str,
                                                           colon: bool, truncate: bool) -> None:
    """of() builds its fields without parsing its own line: they must be
    exactly what the line parses to, CTCP included, or of() refuses."""
    try:
        msg = IrcMessage.of(command, *params, prefix=prefix, colon=colon, truncate=truncate)
    except LocalProtocolError:
        return
    assert len(msg.raw) <= 512
    assert parse_message(msg.raw) == msg


@SETTINGS
@given(text=st.text(max_size=2000), budget=st.integers(16, 400))
def test_split_text_fits_the_budget(text: str, budget: int) -> None:
    """say() pieces fit their byte budget and hold no line breaks."""
    for piece in irc.split_text(text, budget):
        assert len(piece.encode()) <= budget
        assert "\n" not in piece and "\r" not in piece


@SETTINGS
@given(pattern=st.text("ab*?", max_size=8), text=st.text("ab", max_size=8))
def test_glob_match_agrees_with_fnmatch(pattern: str, text: str) -> None:
    """WHO masks: * and ? as fnmatch has them, without regexes."""
    import fnmatch

    assert irc._session.glob_match(pattern, text) == fnmatch.fnmatchcase(text, pattern)


# -- the server, in memory ---------------------------------------------------------------


class ManualClock:
    """A clock the test moves: ``advance`` runs the timers it passes, in
    order, each at its own time."""

    class Timer:
        def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
            self.when, self.fn, self.args = when, fn, args
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.timers: list[ManualClock.Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> ManualClock.Timer:
        timer = ManualClock.Timer(self.now + delay, fn, args)
        self.timers.append(timer)
        return timer

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> ManualClock.Timer:
        return self.call_later(0.0, fn, *args)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while due := [t for t in self.timers if not t.cancelled and t.when <= end]:
            timer = min(due, key=lambda t: t.when)  # min keeps the first of equals: scheduling order
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.fn(*timer.args)
        self.now = end

    @property
    def pending(self) -> int:
        """Timers still to run."""
        return sum(1 for t in self.timers if not t.cancelled)


class Net:
    """One or more IRC server behaviours sharing a chat service and a
    manual clock, with fake connections; lines go through the real
    conversation of each connection."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("flood_burst", 0)  # lines are handled at once; the bucket has its own tests
        self.clock = ManualClock()
        self.services = Services()
        self.sessions: dict[FakePeer, IrcSession] = {}
        self.server = self.add_server(**options)
        self._ids = 0

    def add_server(self, **options: Any) -> irc.IrcServer:
        server = irc.SPEC.server(irc.SPEC.resolve_options(options))
        assert isinstance(server, irc.IrcServer)
        server.services = self.services
        server.clock = self.clock
        server.started()
        return server

    def connect(self, server: irc.IrcServer | None = None, peer: FakePeer | None = None) -> FakePeer:
        self._ids += 1
        peer = peer or FakePeer(conn_id=f"irc#{self._ids}", spec=irc.SPEC)
        self.sessions[peer] = open_session(server or self.server, peer)
        return peer

    def session(self, peer: FakePeer) -> IrcSession:
        return self.sessions[peer]

    def send(self, peer: FakePeer, *lines: str | bytes) -> list[str]:
        """Send lines; return what the server wrote back to this peer."""
        start = len(peer.sent)
        session = self.sessions[peer]
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            for msg in peer.conversation.feed(data if data.endswith(b"\n") else data + b"\r\n"):
                session.message_received(msg)
        return [m.text for m in peer.sent[start:]]

    def register(self, nick: str, server: irc.IrcServer | None = None) -> FakePeer:
        peer = self.connect(server)
        replies = self.send(peer, f"NICK {nick}", f"USER {nick} 0 * :{nick} test")
        assert any(" 001 " in r for r in replies), replies
        peer.sent.clear()
        return peer

    @staticmethod
    def seen(peer: FakePeer) -> list[str]:
        """Everything written to ``peer``, then forget it."""
        out = [m.text for m in peer.sent]
        peer.sent.clear()
        return out


def codes(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith(":")]


@pytest.fixture
def net() -> Net:
    return Net()


def test_registration_and_welcome_burst(net: Net) -> None:
    """NICK and USER (either order) register: 001-005, LUSERS and the MOTD."""
    peer = net.connect()
    assert net.send(peer, "USER alice 0 * :Alice Liddell") == []
    replies = net.send(peer, "NICK alice")
    assert codes(replies)[:5] == ["001", "002", "003", "004", "005"]
    assert {"251", "254", "255", "375", "372", "376"} <= set(codes(replies))
    assert replies[0] == ":irc.lab.test 001 alice :Welcome to the netlab IRC network alice!alice@127.0.0.1"
    isupport = next(r for r in replies if " 005 " in r)
    assert "CASEMAPPING=rfc1459" in isupport and "PREFIX=(ov)@+" in isupport and "CHANMODES=,k,l,imnt" in isupport


def test_no_motd_is_422() -> None:
    """An empty MOTD is ERR_NOMOTD."""
    net = Net(motd="")
    peer = net.connect()
    assert "422" in codes(net.send(peer, "NICK a", "USER a 0 * :a"))


def test_password_is_checked() -> None:
    """With --password, registration wants PASS first; a wrong one is 464
    and the link closes."""
    net = Net(password="sesame")
    bad = net.connect()
    replies = net.send(bad, "PASS nope", "NICK a", "USER a 0 * :a")
    assert "464" in codes(replies) and replies[-1].startswith("ERROR :Closing Link")
    assert bad.closed
    good = net.connect()
    assert "001" in codes(net.send(good, "PASS sesame", "NICK a", "USER a 0 * :a"))
    assert "462" in codes(net.send(good, "PASS again"))


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("NICK", "431"),
        ("NICK 9lives", "432"),
        ("NICK has.dot", "432"),
        ("NICK " + "a" * 31, "432"),
        ("USER x", "461"),
        ("JOIN #lab", "451"),
        ("PRIVMSG bob :hi", "451"),
        ("FROBNICATE", "421"),
        ("PING", "409"),
    ],
)
def test_errors_before_registration(net: Net, line: str, code: str) -> None:
    """Bad nicks, missing parameters, commands before registration (451)
    and unknown commands (421) get their numerics addressed to '*'."""
    peer = net.connect()
    replies = net.send(peer, line)
    assert codes(replies) == [code]
    assert replies[0].split()[2] == "*"
    assert not peer.closed


def test_nick_collisions_follow_the_case_mapping(net: Net) -> None:
    """A nick equal under RFC 1459 case mapping is in use (433)."""
    net.register("Alice[x]")
    peer = net.connect()
    assert codes(net.send(peer, "NICK alice{X}")) == ["433"]


def test_ping_pong_and_unknown_commands(net: Net) -> None:
    """PING is answered with PONG; an unknown command is 421; PONG is quiet."""
    peer = net.register("alice")
    net.seen(peer)
    assert net.send(peer, "PING :abc") == [":irc.lab.test PONG irc.lab.test abc"]
    assert net.send(peer, "PONG :irc.lab.test") == []
    assert net.send(peer, "WIBBLE x") == [":irc.lab.test 421 alice WIBBLE :Unknown command"]
    assert codes(net.send(peer, "USER again 0 * :x")) == ["462"]


def test_join_names_topic_and_messages(net: Net) -> None:
    """JOIN shows the joiner its JOIN, topic and NAMES; members see joins
    and channel messages; the sender gets no echo."""
    alice, bob = net.register("alice"), net.register("bob")
    replies = net.send(alice, "JOIN #lab")
    assert replies == [":alice!alice@127.0.0.1 JOIN #lab",
                       ":irc.lab.test 353 alice = #lab :@alice",
                       ":irc.lab.test 366 alice #lab :End of NAMES list"]
    net.send(alice, "TOPIC #lab :All about labs")
    net.seen(alice)
    replies = net.send(bob, "JOIN #LAB")
    assert replies[0] == ":bob!bob@127.0.0.1 JOIN #lab"
    assert replies[1] == ":irc.lab.test 332 bob #lab :All about labs"
    assert replies[2].startswith(":irc.lab.test 333 bob #lab alice!alice@127.0.0.1 ")
    assert replies[3] == ":irc.lab.test 353 bob = #lab :@alice bob"
    assert net.seen(alice) == [":bob!bob@127.0.0.1 JOIN #lab"]
    assert net.send(bob, "PRIVMSG #lab :hello, alice") == []
    assert net.seen(alice) == [":bob!bob@127.0.0.1 PRIVMSG #lab :hello, alice"]
    net.send(bob, "NOTICE alice :psst")
    assert net.seen(alice) == [":bob!bob@127.0.0.1 NOTICE alice :psst"]
    net.send(bob, "PRIVMSG alice,#lab :both")
    assert net.seen(alice) == [":bob!bob@127.0.0.1 PRIVMSG alice :both", ":bob!bob@127.0.0.1 PRIVMSG #lab :both"]


def test_message_errors_and_silent_notices(net: Net) -> None:
    """401, 404, 411 and 412 answer PRIVMSG; NOTICE never gets an error."""
    alice, bob = net.register("alice"), net.register("bob")
    net.send(alice, "JOIN #lab", "MODE #lab +m")
    assert codes(net.send(bob, "PRIVMSG nobody :hi")) == ["401"]
    assert codes(net.send(bob, "PRIVMSG #lab :hi")) == ["404"]  # +n: not a member
    assert codes(net.send(bob, "PRIVMSG")) == ["411"]
    assert codes(net.send(bob, "PRIVMSG alice")) == ["412"]
    assert codes(net.send(bob, "PRIVMSG a,b,c,d,e :spam")) == ["407"]
    assert net.send(bob, "NOTICE nobody :hi", "NOTICE #lab :hi", "NOTICE") == []


def test_join_many_join_zero_and_part(net: Net) -> None:
    """JOIN a,b with keys; JOIN 0 parts all; PART with a reason; 403/442."""
    alice, bob = net.register("alice"), net.register("bob")
    net.send(alice, "JOIN #a,#b,&c", "MODE #b +k key")
    net.seen(alice)
    assert codes(net.send(bob, "JOIN #a,#b")) == ["JOIN", "353", "366", "475"]
    replies = net.send(bob, "JOIN #b,bad,#a key")
    assert "403" in codes(replies) and ":bob!bob@127.0.0.1 JOIN #b" in replies
    assert net.send(bob, "PART #b :see you") == [":bob!bob@127.0.0.1 PART #b :see you"]
    assert codes(net.send(bob, "PART #b")) == ["442"]
    assert codes(net.send(bob, "PART #nowhere")) == ["403"]
    net.seen(alice)
    assert net.send(alice, "JOIN 0") == [f":alice!alice@127.0.0.1 PART {name}" for name in ("#a", "#b", "&c")]
    assert not net.server.chat.user("alice").rooms  # type: ignore[union-attr]


def test_channel_cap_is_405() -> None:
    """A user may be in max_channels channels; one more is 405."""
    net = Net(max_channels=2)
    peer = net.register("alice")
    assert codes(net.send(peer, "JOIN #1,#2,#3"))[-1] == "405"


def test_user_cap_closes_with_error() -> None:
    """Registrations past max_users are refused with ERROR."""
    net = Net(max_users=1)
    net.register("alice")
    peer = net.connect()
    replies = net.send(peer, "NICK bob", "USER bob 0 * :b")
    assert replies[-1].startswith("ERROR :Closing Link: 127.0.0.1 (Server full") and peer.closed


def test_topic_rules(net: Net) -> None:
    """331 with no topic; +t needs an operator (482); -t lets anyone."""
    alice, bob = net.register("alice"), net.register("bob")
    net.send(alice, "JOIN #lab")
    net.send(bob, "JOIN #lab")
    assert codes(net.send(bob, "TOPIC #lab")) == ["331"]
    assert codes(net.send(bob, "TOPIC #lab :mine")) == ["482"]
    net.send(alice, "MODE #lab -t")
    net.seen(alice)
    assert net.send(bob, "TOPIC #lab :mine") == [":bob!bob@127.0.0.1 TOPIC #lab :mine"]
    assert net.seen(alice) == [":bob!bob@127.0.0.1 TOPIC #lab :mine"]
    assert codes(net.send(bob, "TOPIC #lab")) == ["332", "333"]
    assert codes(net.send(bob, "TOPIC #nope")) == ["403"]


def test_channel_modes(net: Net) -> None:
    """+o +v +t +n +m +i +k +l, the 324 query, the empty ban list, 472,
    482 and the MODE message every member sees."""
    alice, bob, carol = net.register("alice"), net.register("bob"), net.register("carol")
    net.send(alice, "JOIN #lab")
    net.send(bob, "JOIN #lab")
    net.seen(alice)
    net.seen(bob)
    assert codes(net.send(bob, "MODE #lab +m")) == ["482"]
    net.seen(bob)
    assert net.send(alice, "MODE #lab +mv bob") == [":alice!alice@127.0.0.1 MODE #lab +mv bob"]
    assert net.seen(bob) == [":alice!alice@127.0.0.1 MODE #lab +mv bob"]
    net.send(alice, "MODE #lab +o-v bob bob")
    assert net.seen(bob) == [":alice!alice@127.0.0.1 MODE #lab +o-v bob bob"]
    net.send(bob, "MODE #lab +ikl secret 5")
    replies = net.send(alice, "MODE #lab")
    assert replies[0] == ":irc.lab.test 324 alice #lab +tnmikl secret 5" and codes(replies) == ["324", "329"]
    assert net.send(carol, "MODE #lab")[0] == ":irc.lab.test 324 carol #lab +tnmikl * 5"  # the key stays hidden
    assert codes(net.send(carol, "JOIN #lab secret")) == ["473"]
    assert codes(net.send(alice, "MODE #lab b")) == ["368"]
    assert codes(net.send(alice, "MODE #lab +x")) == ["472"]
    assert codes(net.send(alice, "MODE #lab +l many")) == ["696"]
    assert codes(net.send(alice, "MODE #lab +k a,b")) == ["525"]
    assert codes(net.send(alice, "MODE #lab +o")) == ["461"]
    assert codes(net.send(alice, "MODE #lab +o carol")) == ["441"]
    assert codes(net.send(alice, "MODE #nope +m")) == ["403"]
    net.send(alice, "MODE #lab -ikl *")
    assert net.server.chat.room("#lab").key is None  # type: ignore[union-attr]


def test_user_modes(net: Net) -> None:
    """MODE nick shows 221; +i hides from WHO; other users' modes are 502."""
    alice, bob = net.register("alice"), net.register("bob")
    assert net.send(alice, "MODE alice") == [":irc.lab.test 221 alice +"]
    assert net.send(alice, "MODE alice +i") == [":alice MODE alice +i"]
    assert codes(net.send(alice, "MODE alice +z")) == ["501"]
    assert codes(net.send(alice, "MODE bob +i")) == ["502"]
    assert not any("alice" in line for line in net.send(bob, "WHO *") if " 352 " in line)
    assert codes(net.send(alice, "WHO a?i*")) == ["352", "315"]  # herself, invisible or not
    assert codes(net.send(alice, "WHO b*")) == ["352", "315"]


def test_kick_and_invite(net: Net) -> None:
    """KICK by an operator reaches every member; INVITE admits to +i."""
    alice, bob, carol = net.register("alice"), net.register("bob"), net.register("carol")
    net.send(alice, "JOIN #lab", "MODE #lab +i")
    assert codes(net.send(bob, "JOIN #lab")) == ["473"]
    net.seen(bob)
    assert net.send(alice, "INVITE bob #lab") == [":irc.lab.test 341 alice bob #lab"]
    assert net.seen(bob) == [":alice!alice@127.0.0.1 INVITE bob #lab"]
    net.send(bob, "JOIN #lab")
    assert codes(net.send(alice, "INVITE bob #lab")) == ["443"]
    assert codes(net.send(bob, "KICK #lab alice")) == ["482"]
    assert codes(net.send(alice, "KICK #lab carol")) == ["441"]
    assert codes(net.send(alice, "KICK #lab nobody")) == ["401"]
    net.seen(bob)
    assert net.send(alice, "KICK #lab bob :behave") == [":alice!alice@127.0.0.1 KICK #lab bob :behave"]
    assert net.seen(bob) == [":alice!alice@127.0.0.1 KICK #lab bob :behave"]
    assert codes(net.send(carol, "KICK #lab alice")) == ["442"]


def test_quit_and_nick_changes_reach_channel_peers(net: Net) -> None:
    """NICK changes and QUIT (with ERROR to the quitter) reach the peers."""
    alice, bob, loner = net.register("alice"), net.register("bob"), net.register("loner")
    net.send(alice, "JOIN #lab")
    net.send(bob, "JOIN #lab")
    net.seen(alice)
    assert net.send(bob, "NICK robert") == [":bob!bob@127.0.0.1 NICK robert"]
    assert net.seen(alice) == [":bob!bob@127.0.0.1 NICK robert"]
    assert codes(net.send(loner, "NICK ALICE")) == ["433"]
    net.seen(loner)
    assert net.send(bob, "QUIT :gone fishing") == ["ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)"]
    assert bob.closed
    assert net.seen(alice) == [":robert!bob@127.0.0.1 QUIT :Quit: gone fishing"]
    assert net.seen(loner) == []
    assert net.server.chat.user("robert") is None


def test_names_list_who_whois(net: Net) -> None:
    """NAMES, LIST, WHO and WHOIS describe channels and users."""
    alice, bob = net.register("alice"), net.register("bob")
    net.send(alice, "JOIN #lab", "TOPIC #lab :labs", "AWAY :lunch")
    net.send(bob, "JOIN #lab,#other")
    assert net.send(bob, "NAMES #lab") == [":irc.lab.test 353 bob = #lab :@alice bob",
                                           ":irc.lab.test 366 bob #lab :End of NAMES list"]
    assert codes(net.send(bob, "NAMES")) == ["353", "353", "366"]
    replies = net.send(bob, "LIST")
    assert replies[1:3] == [":irc.lab.test 322 bob #lab 2 :labs", ":irc.lab.test 322 bob #other 1 :"]
    assert codes(replies) == ["321", "322", "322", "323"]
    who = net.send(bob, "WHO #lab")
    assert who[0] == ":irc.lab.test 352 bob #lab alice 127.0.0.1 irc.lab.test alice G@ :0 alice test"
    assert codes(who) == ["352", "352", "315"]
    whois = net.send(bob, "WHOIS alice")
    assert codes(whois) == ["311", "319", "312", "301", "317", "318"]
    assert whois[0] == ":irc.lab.test 311 bob alice alice 127.0.0.1 * :alice test"
    assert whois[1] == ":irc.lab.test 319 bob alice :@#lab"
    assert codes(net.send(bob, "WHOIS nobody")) == ["401", "318"]
    assert codes(net.send(bob, "PRIVMSG alice :hi")) == ["301"]
    assert net.send(bob, "ISON alice nobody bob") == [":irc.lab.test 303 bob :alice bob"]
    assert net.send(bob, "USERHOST alice") == [":irc.lab.test 302 bob :alice=-alice@127.0.0.1"]
    assert codes(net.send(alice, "AWAY")) == ["305"]
    assert codes(net.send(bob, "VERSION", "TIME", "MOTD", "LUSERS")) == [
        "351", "391", "375", "372", "376", "251", "254", "255"]


def test_input_past_512_bytes_is_417_and_malformed_lines_are_noted(net: Net) -> None:
    """A line over 512 bytes is ERR_INPUTTOOLONG; a NUL byte gets a
    notice; empty lines are ignored; the client stays connected."""
    alice = net.register("alice")
    net.seen(alice)
    assert codes(net.send(alice, "PRIVMSG #x :" + "y" * 600)) == ["417"]
    assert net.send(alice, b"NICK a\x00b\r\n") == [
        ":irc.lab.test NOTICE alice :*** Ignored a malformed line: NUL byte in message"]
    assert net.send(alice, b"\r\n") == []
    assert not alice.closed


def test_ipv6_hosts_stay_one_parameter() -> None:
    """A client on ::1 shows as 0::1, so its host never starts with ':'."""
    net = Net()
    peer = FakePeer(conn_id="v6", spec=irc.SPEC)
    peer.peer = ("::1", 5000, 0, 0)
    net.connect(peer=peer)
    replies = net.send(peer, "NICK six", "USER six 0 * :six", "WHOIS six")
    assert "six!six@0::1" in replies[0]
    assert ":irc.lab.test 311 six six six 0::1 * :six" in replies


def test_two_servers_share_the_rooms() -> None:
    """Two IRC servers of one lab are one network: rooms, nicks, WHOIS."""
    net = Net()
    other = net.add_server(server_name="irc2.lab.test")
    alice, bob = net.register("alice"), net.register("bob", other)
    assert codes(net.send(net.connect(other), "NICK alice")) == ["433"]
    net.send(alice, "JOIN #lab")
    net.send(bob, "JOIN #lab")
    net.seen(bob)
    net.send(alice, "PRIVMSG #lab :across")
    assert net.seen(bob) == [":alice!alice@127.0.0.1 PRIVMSG #lab :across"]
    assert ":irc.lab.test 312 alice bob irc2.lab.test :netlab chat" in net.send(alice, "WHOIS bob")
    assert isinstance(net.services.get(CHAT), ChatService)
    assert net.server.chat is other.chat is net.services.get(CHAT)


def test_abrupt_disconnect_is_a_quit(net: Net) -> None:
    """A connection lost without QUIT reaches channel peers as a QUIT."""
    alice, bob = net.register("alice"), net.register("bob")
    net.send(alice, "JOIN #lab")
    net.send(bob, "JOIN #lab")
    net.seen(alice)
    bob.closed = True
    net.session(bob).connection_lost()
    assert net.seen(alice) == [":bob!bob@127.0.0.1 QUIT :Connection closed"]
    assert net.server.chat.user("bob") is None


_WORDS = st.sampled_from(["#a", "#b", "&c", "alice", "bob", "carol", "*", "0", "+o", "-o", "+ntmi", "+k", "key",
                          "+l", "3", "-kl", "+v", "b", "#a,#b", "alice,#a", ":text here", ":", "", "x" * 40])
_COMMANDS = st.sampled_from(["NICK", "USER", "PASS", "JOIN", "PART", "PRIVMSG", "NOTICE", "TOPIC", "NAMES",
                             "LIST", "WHO", "WHOIS", "MODE", "KICK", "INVITE", "AWAY", "ISON", "USERHOST",
                             "PING", "PONG", "QUIT", "MOTD", "LUSERS", "VERSION", "TIME", "CAP", "FOO"])


@settings(deadline=None, max_examples=150)
@given(script=st.lists(st.tuples(st.integers(0, 2), _COMMANDS,
                                 st.lists(st.one_of(_WORDS, _middle, _trailing.map(":".__add__)), max_size=4)),
                       max_size=40))
def test_any_command_sequence_keeps_the_server_consistent(script: list[tuple[int, str, list[str]]]) -> None:
    """Random commands from three clients never raise, always get an
    answer or a quiet accept, and leave users and rooms consistent."""
    net = Net()
    peers = [net.register(nick) for nick in ("alice", "bob", "carol")]
    for who, command, words in script:
        peer = peers[who]
        if peer.closed:
            continue
        net.send(peer, " ".join([command, *words]))
    chat = net.server.chat
    for key, user in chat.users.items():
        assert key == chat.fold(user.nick)
        for room in user.rooms.values():
            assert user in room.members and chat.rooms[chat.fold(room.name)] is room
    for room in chat.rooms.values():
        assert room.members and all(room is m.rooms[chat.fold(room.name)] for m in room.members)
        assert room.operators <= set(room.members) and room.voiced <= set(room.members)
    for peer in peers:
        assert all(len(m.raw) <= irc.MAX_MESSAGE for m in peer.sent)
        assert peer.closed == (net.session(peer) not in net.server.sessions)


@SETTINGS
@given(lines=st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")), max_size=10))
def test_any_bytes_from_a_client_get_valid_replies(lines: list[bytes]) -> None:
    """Arbitrary lines from registered and unregistered clients never make
    the server raise or send anything over 512 bytes or unparseable."""
    net = Net()
    peers = [net.register("alice"), net.connect()]
    net.send(peers[0], "JOIN #a")
    for line in lines:
        for peer in peers:
            if not peer.closed:
                net.send(peer, line + b"\r\n")
    for peer in peers:
        for msg in peer.sent:
            assert len(msg.raw) <= irc.MAX_MESSAGE and isinstance(parse_message(msg.raw), IrcMessage)


# -- timers and flood control on a loop -----------------------------------------------------


def test_quiet_clients_are_pinged_and_dropped() -> None:
    """A quiet client gets PING; one that answers stays; one that does not
    is dropped with ERROR (Ping timeout) and its peers see it quit."""
    net = Net(ping_interval=30, ping_timeout=60)
    alive, silent = net.register("alive"), net.register("silent")
    net.send(alive, "JOIN #lab")
    net.send(silent, "JOIN #lab")
    heard: list[str] = []
    for _ in range(100):
        net.clock.advance(7)  # not a divisor of the intervals: answers come after the PING
        if any(m.command == "PING" for m in alive.sent):
            net.send(alive, "PONG :irc.lab.test")
        heard += net.seen(alive)
        if silent.closed:
            break
    assert silent.closed and not alive.closed
    assert silent.sent[-1].text.startswith("ERROR :Closing Link: 127.0.0.1 (Ping timeout: ")
    assert any(line.startswith(":silent!silent@127.0.0.1 QUIT :Ping timeout: ") for line in heard)
    assert sum(line == "PING irc.lab.test" for line in heard) >= 2  # pinged again after answering
    assert net.clock.now - 1000.0 < 30 + 60 + 7  # dropped on time


def test_unregistered_clients_time_out() -> None:
    """A connection that never registers is closed after register_timeout."""
    net = Net(register_timeout=30, ping_interval=600)
    peer = net.connect()
    net.send(peer, "NICK lurker")
    net.clock.advance(29)
    assert not peer.closed
    net.clock.advance(2)
    assert peer.closed and peer.sent[-1].text.endswith("(Registration timed out)")
    assert net.server.chat.user("lurker") is None
    assert net.clock.pending == 0


def test_timers_end_with_the_connection_and_the_server() -> None:
    """connection_lost and stopped() cancel every timer of a session."""
    net = Net(flood_burst=2, flood_rate=1)
    gone, kept = net.register("gone"), net.register("kept")
    net.send(gone, "PING :a", "PING :b", "PING :c")  # past the burst: a drain is due
    assert net.clock.pending == 3  # two keep-alive ticks and the drain
    gone.closed = True
    net.session(gone).connection_lost()
    assert net.clock.pending == 1
    net.server.stopped()
    assert net.clock.pending == 0 and not net.server.sessions
    assert net.server.chat.user("kept") is None
    net.clock.advance(3600)
    assert not kept.sent


def test_flood_lines_wait_then_excess_flood_disconnects() -> None:
    """Past the burst, lines wait their turn (RFC 1459 §8.10) and come out
    in order as tokens return; a client that keeps flooding is
    disconnected with ERROR (Excess Flood).  The clock is ours to move."""
    net = Net(flood_burst=3, flood_rate=2, flood_queue=20)
    peer = net.connect()
    net.send(peer, "NICK fast", "USER fast 0 * :f")
    net.clock.advance(10)  # the bucket is full again
    net.seen(peer)
    net.send(peer, *[f"PING :{i}" for i in range(10)])
    assert len(peer.sent) == 3  # the burst
    net.clock.advance(1.0)  # two more tokens, each spent as it comes
    assert len(peer.sent) == 5
    net.clock.advance(60)
    assert [m.last for m in peer.sent] == [str(i) for i in range(10)]  # in order, none lost
    net.seen(peer)
    net.send(peer, *[f"PING :{i}" for i in range(10)])
    assert len(peer.sent) == 3  # a quiet minute refills the bucket to the burst, no more
    net.send(peer, *[f"PING :{i}" for i in range(40)])
    assert peer.closed and peer.sent[-1].text.endswith("(Excess Flood)")
    assert net.session(peer) not in net.server.sessions

    # a few huge lines are as much of a flood as many short ones
    other = net.connect()
    net.send(other, "NICK huge", "USER huge 0 * :h")
    net.send(other, *["PRIVMSG #x :" + "y" * 8000] * 3)
    assert other.closed and other.sent[-1].text.endswith("(Excess Flood)")


# -- client verbs through a loopback ----------------------------------------------------------


class WatchedLoopback(Loopback):
    """A loopback whose client verbs see each message as it arrives, as
    the lab's client connections do."""

    verbs: Any = None

    def _to_client(self, data: bytes) -> None:
        before = len(self.inbox)
        super()._to_client(data)
        if self.verbs is not None:
            for msg in list(self.inbox)[before:]:
                self.verbs.message_received(msg)


class Bystander:
    """Another connection to a loopback's server, driven by hand."""

    def __init__(self, server: irc.IrcServer, conn_id: str) -> None:
        self.peer = FakePeer(conn_id=conn_id, spec=irc.SPEC)
        self.session: IrcSession = open_session(server, self.peer)

    def send(self, data: bytes) -> None:
        for msg in self.peer.conversation.feed(data):
            self.session.message_received(msg)

    @property
    def sent(self) -> list[Any]:
        return self.peer.sent


async def settle(turns: int = 10) -> None:
    """Let the loop run what is due now (the client answers as tasks)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def test_client_verbs_against_our_server(arun: Runner) -> None:
    """nick, join, say, act, topic, part, quit and CTCP through both conversations."""

    async def scenario() -> None:
        link = WatchedLoopback(irc.SPEC, options={"flood_burst": 0})
        client = link.verbs = irc.IrcClient(link)
        assert "Welcome" in await client.nick("alice", realname="Alice L")
        assert client.registered and client.nickname == "alice"
        assert client.isupport["CASEMAPPING"] == "rfc1459"
        assert await client.join("#lab") == ["@alice"]
        assert set(client.channels) == {"#lab"}
        chat = link.behaviour.chat
        assert await client.topic("#lab", "hello") == "hello"
        assert await client.topic("#lab") == "hello"
        assert await client.say("#lab", "x " * 300) == 2  # split under the 512-byte limit
        assert await client.nick("alicia") == "alicia"
        assert chat.user("alicia") is not None
        with pytest.raises(irc.IrcError, match="403"):
            await client.join("nochannel")
        with pytest.raises(irc.IrcError, match="403"):
            await client.part("#elsewhere")
        await client.part("#lab", "bye")
        assert not client.channels
        await client.raw("PING :raw-check")
        assert (await link.expect(lambda m: getattr(m, "command", "") == "PONG")).last == "raw-check"
        assert "Quit: done" in await client.quit("done")

    arun(scenario())


def test_client_answers_ping_and_ctcp(arun: Runner) -> None:
    """The client PONGs the server's PING and answers CTCP VERSION and PING
    without any verb waiting."""

    async def scenario() -> None:
        link = WatchedLoopback(irc.SPEC, options={"flood_burst": 0})
        client = link.verbs = irc.IrcClient(link)
        await client.nick("alice")
        bob = Bystander(link.behaviour, "bob")
        bob.send(b"NICK bob\r\nUSER bob 0 * :b\r\nPRIVMSG alice :\x01VERSION\x01\r\n"
                 b"PRIVMSG alice :\x01PING 42\x01\r\n")
        link.peer.send(IrcMessage.of("PING", "are-you-there"))
        await settle()
        answers = [m for m in bob.sent if m.command == "NOTICE" and m.ctcp]
        assert [(m.ctcp, m.ctcp_args) for m in answers] == [("VERSION", irc._session.VERSION), ("PING", "42")]
        bob.send(b"PRIVMSG alice :\x01PING x\x01\r\n" * 10)
        await settle()  # the answers go out as tasks on the next turns of the loop
        assert sum(1 for m in bob.sent if m.command == "NOTICE" and m.ctcp) == 4  # a burst gets a few answers
        assert b"PONG :are-you-there\r\n" in link.client_writes or b"PONG are-you-there\r\n" in link.client_writes

    arun(scenario())


def test_registration_refusals_raise(arun: Runner) -> None:
    """A taken nick or a wrong password is an IrcError naming the numeric."""

    async def scenario() -> None:
        link = WatchedLoopback(irc.SPEC, options={"password": "pw", "flood_burst": 0})
        client = link.verbs = irc.IrcClient(link)
        with pytest.raises(irc.IrcError, match="464"):
            await client.nick("alice", password="wrong")

    arun(scenario())


def test_a_refused_nick_can_be_retried(arun: Runner) -> None:
    """After 433 the client tries another nick with NICK alone (a second
    USER would be 462) and registers."""

    async def scenario() -> None:
        link = WatchedLoopback(irc.SPEC, options={"flood_burst": 0})
        Bystander(link.behaviour, "taken").send(b"NICK alice\r\nUSER a 0 * :a\r\n")
        client = link.verbs = irc.IrcClient(link)
        with pytest.raises(irc.IrcError, match="433"):
            await client.nick("alice")
        assert "alice_" in await client.nick("alice_")
        assert sum(w.startswith(b"USER ") for w in link.client_writes) == 1
        with pytest.raises(LocalProtocolError, match="one channel per call"):
            await client.join("#a,#b")

    arun(scenario())


@functools.cache
def recorded_chat() -> WatchedLoopback:
    """One IRC conversation through the loopback, recorded once: a
    registration burst, JOIN and NAMES, channel messages both ways, the
    server's PING and the client's PONG, the client's PING, and QUIT."""

    async def scenario() -> WatchedLoopback:
        clock = ManualClock()
        link = WatchedLoopback(irc.SPEC, options={"ping_interval": 90},
                               prepare=lambda server: setattr(server, "clock", clock))
        client = link.verbs = irc.IrcClient(link)
        await client.nick("alice")
        bob = Bystander(link.behaviour, "bob")
        bob.send(b"NICK bob\r\nUSER bob 0 * :b\r\n")
        await client.join("#lab")
        bob.send(b"JOIN #lab\r\n")
        await client.say("#lab", "hello, bob")
        bob.send(b"PRIVMSG #lab :hello, alice\r\n")
        await client.listen()
        clock.advance(95)  # the server PINGs; the client PONGs by itself
        await settle()
        await client.raw("PING :are-you-there")
        await link.expect(lambda m: getattr(m, "command", "") == "PONG")
        await client.quit("bye")
        return link

    link: WatchedLoopback = asyncio.run(scenario())
    return link


def test_the_recorded_chat_holds_each_exchange() -> None:
    """The recording covers what the observer test relies on."""
    lb = recorded_chat()
    by_client = [m.kind for m in lb.seen[Role.SERVER]]
    by_server = [m.kind for m in lb.seen[Role.CLIENT]]
    assert by_client == ["NICK", "USER", "JOIN", "PRIVMSG", "PONG", "PING", "QUIT"]
    assert {"001", "005", "376", "JOIN", "353", "366", "PRIVMSG", "PING", "PONG", "ERROR"} <= set(by_server)
    assert not lb.errors and lb.client_error is None


@settings(deadline=None, max_examples=100)
@given(cuts=st.lists(st.integers(0, 600), max_size=12))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, cuts: list[int]) -> None:
    """The recorded chat replays to an observer, every chunk split
    anywhere: it decodes each side's messages exactly as the other side did."""
    laws.observer_replays(irc.SPEC.conversation, recorded_chat(), cuts)


# -- hostile input on real sockets ---------------------------------------------------------


def raw_client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s


def read_until(s: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    got = b""
    while marker not in got and len(got) < limit:
        data = s.recv(65536)
        if not data:
            break
        got += data
    return got


@pytest.fixture
def chatting(lab: Lab) -> Iterator[tuple[Any, Any, Any]]:
    """A server with two lab clients in #lab, to show it keeps serving."""
    srv = lab.serve("irc")
    a, b = lab.connect("irc", srv), lab.connect("irc", srv)
    a.nick("alice")
    b.nick("bob")
    a.join("#lab")
    b.join("#lab")
    yield srv, a, b


def still_chatting(a: Any, b: Any, text: str) -> None:
    a.say("#lab", text)
    assert b.listen(timeout=20).last == text


def test_hostile_missing_crlf_and_bare_lf(lab: Lab, chatting: tuple[Any, Any, Any]) -> None:
    """Bare LF lines work; a last line without terminator is handled at EOF."""
    srv, a, b = chatting
    with raw_client(srv.port) as s:
        s.sendall(b"NICK lf\nUSER lf 0 * :lf\nJOIN #lab\n")
        assert b" 366 lf #lab " in read_until(s, b" 366 ")
        s.sendall(b"PRIVMSG #lab :no terminator")
        s.shutdown(socket.SHUT_WR)
        read_until(s, b"\x00never")
    assert b.listen(timeout=20).last == "no terminator"
    still_chatting(a, b, "after the LF client")


def test_hostile_one_megabyte_line(lab: Lab, chatting: tuple[Any, Any, Any]) -> None:
    """A 1 MB line gets ERROR and a closed link without the server holding
    it in memory; others keep chatting."""
    srv, a, b = chatting
    line = b"PRIVMSG #lab :" + b"x" * (1 << 20)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with raw_client(srv.port) as s:
            try:
                s.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server hung up mid-send, as it should
            try:
                reply = read_until(s, b"\x00never")
            except ConnectionResetError:
                reply = b""
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"peak {peak} bytes while a 1 MB line arrived"
    # the reset may beat the goodbye to us; the log shows both
    assert reply == b"" or reply.startswith(b"ERROR :Closing Link: 127.0.0.1 (Input line too long")
    errors = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, kinds=frozenset({EventKind.ERROR})))]
    assert any("line longer than 8192 bytes" in e for e in errors)
    goodbyes = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, direction=Direction.OUT))
                if e.summary.startswith("ERROR")]
    assert goodbyes == ["ERROR :Closing Link: 127.0.0.1 (Input line too long: line longer than 8192 bytes)"]
    still_chatting(a, b, "after the megabyte")


def test_hostile_commands_before_registration_nul_and_unknown(lab: Lab, chatting: tuple[Any, Any, Any]) -> None:
    """451 before registration, 421 for unknown verbs, a notice for a NUL
    byte; the client can still register and talk."""
    srv, a, b = chatting
    with raw_client(srv.port) as s:
        s.sendall(b"JOIN #lab\r\nPRIVMSG #lab :sneaky\r\nXYZZY\r\n")
        got = read_until(s, b" 421 ")
        assert b" 451 * :You have not registered" in got and b" 421 * XYZZY :Unknown command" in got
        s.sendall(b"NICK n\x00ul\r\nNICK nul\r\nUSER nul 0 * :n\r\n")
        got = read_until(s, b" 376 ")
        assert b"NUL byte in message" in got and b" 001 nul " in got
        s.sendall(b"FROB\r\nQUIT :bye\r\n")
        assert b" 421 nul FROB " in read_until(s, b"ERROR")
    still_chatting(a, b, "after the hostile client")


def test_hostile_abrupt_disconnect(lab: Lab, chatting: tuple[Any, Any, Any]) -> None:
    """A client that vanishes mid-line is a QUIT to its channel peers."""
    srv, a, b = chatting
    s = raw_client(srv.port)
    s.sendall(b"NICK ghost\r\nUSER g 0 * :g\r\nJOIN #lab\r\n")
    read_until(s, b" 366 ")
    b.expect(lambda m: getattr(m, "command", "") == "JOIN" and m.nick == "ghost", timeout=20)
    s.sendall(b"PRIVMSG #lab :half a li")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST
    quit_line = b.expect(lambda m: getattr(m, "command", "") == "QUIT", timeout=20)
    assert quit_line.nick == "ghost"
    wait_until(lambda: len(srv.connections) == 2, what="the ghost connection to go")
    still_chatting(a, b, "after the ghost")


def test_lab_client_answers_pings_while_idle(lab: Lab) -> None:
    """A lab client that no verb is driving still PONGs the server's
    keep-alive PINGs, so it is not dropped for a ping timeout."""
    srv = lab.serve("irc", ping_interval=0.2, ping_timeout=1)
    c = lab.connect("irc", srv)
    c.nick("idler")

    def pongs() -> int:
        return sum(1 for e in lab.log.query(EventFilter(endpoint=srv.name, direction=Direction.IN))
                   if e.summary.startswith("PONG"))

    wait_until(lambda: pongs() >= 3, 30, "three PONGs from the idle client")
    assert c.conn.state.value == "open"
    assert srv.behaviour.chat.user("idler") is not None


def test_a_client_that_stops_reading_is_dropped(lab: Lab) -> None:
    """A member that never reads while its channel is busy is dropped
    (SendQ exceeded) instead of growing the server's buffers; the channel
    sees it quit and goes on."""
    srv = lab.serve("irc", flood_burst=0)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, to keep the window small
    stuck.connect(("127.0.0.1", srv.port))
    with stuck, raw_client(srv.port) as talker:
        stuck.sendall(b"NICK stuck\r\nUSER s 0 * :s\r\nJOIN #busy\r\n")
        read_until(stuck, b" 366 ")
        talker.sendall(b"NICK talker\r\nUSER t 0 * :t\r\nJOIN #busy\r\n")
        read_until(talker, b" 366 ")
        line = b"PRIVMSG #busy :" + b"z" * 400 + b"\r\n"
        talker.settimeout(0.01)
        heard = b""
        for _ in range(400):  # at most 400 x 100 lines
            talker.sendall(line * 100)
            try:
                while data := talker.recv(65536):
                    heard += data
            except TimeoutError:
                pass
            if b":stuck!s@127.0.0.1 QUIT :SendQ exceeded" in heard:
                break
        assert b":stuck!s@127.0.0.1 QUIT :SendQ exceeded" in heard
    assert srv.behaviour.chat.user("stuck") is None


def test_two_lab_servers_are_one_network(lab: Lab) -> None:
    """Two IRC servers of one lab share the chat service: a client on
    each meets the other in the same room."""
    first = lab.serve("irc", server_name="one.lab.test")
    second = lab.serve("irc", server_name="two.lab.test")
    a, b = lab.connect("irc", first), lab.connect("irc", second)
    a.nick("alice")
    b.nick("bob")
    a.join("#shared")
    assert b.join("#shared") == ["@alice", "bob"]
    a.say("#shared", "from the first server")
    heard = b.listen(timeout=20)
    assert (heard.prefix, heard.last) == ("alice!alice@127.0.0.1", "from the first server")
    assert first.behaviour.chat is second.behaviour.chat is lab.services.find(CHAT)


def test_lines_relayed_in_one_pass_leave_in_one_write(lab: Lab, chatting: tuple[Any, Any, Any]) -> None:
    """Channel lines relayed to a member during one pass of the loop go out
    in one write, while the log still shows each of them as a message."""
    srv, _a, b = chatting
    with raw_client(srv.port) as reader, raw_client(srv.port) as sender:
        for s, nick in ((reader, "rd"), (sender, "sd")):
            s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #lab\r\n".encode())
            assert f" 366 {nick} #lab ".encode() in read_until(s, b" 366 ")
        conn = next(c for c in srv.live_connections() if c.session.nick == "rd")
        transport = conn._transport  # type: ignore[attr-defined]
        writes: list[bytes] = []
        real_write = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(bytes(data))
            real_write(data)

        transport.write = counting_write
        sender.sendall(b"PRIVMSG #lab :one\r\nPRIVMSG #lab :two\r\nPRIVMSG #lab :three\r\n")
        got = read_until(reader, b":three\r\n")
    assert got.count(b"PRIVMSG #lab") == 3
    assert [w for w in writes if b"PRIVMSG" in w] == [
        b":sd!sd@127.0.0.1 PRIVMSG #lab :one\r\n:sd!sd@127.0.0.1 PRIVMSG #lab :two\r\n"
        b":sd!sd@127.0.0.1 PRIVMSG #lab :three\r\n"]
    sent = [e.summary for e in lab.log.query(EventFilter(endpoint=srv.name, direction=Direction.OUT))
            if e.conn == conn.id and "PRIVMSG" in e.summary]
    assert sent == [":sd!sd@127.0.0.1 PRIVMSG #lab :one", ":sd!sd@127.0.0.1 PRIVMSG #lab :two",
                    ":sd!sd@127.0.0.1 PRIVMSG #lab :three"]
    assert [b.listen(timeout=20).last for _ in range(3)] == ["one", "two", "three"]
