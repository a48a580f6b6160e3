"""Tests for lab/protocols/finger.py: the RFC 1288 query grammar, replies,
options, the conversation, sessions and verbs, in memory."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from protocol_fakes import ConversationLaws, FakePeer, Loopback, Runner, open_session

from lab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from lab.protocols import finger
from lab.protocols._base import Message, Role, Transport
from lab.protocols._conversation import Conversation
from lab.protocols._framing import Line, LineDecoder

SETTINGS = settings(deadline=None, max_examples=200)
FingerQuery = finger.FingerQuery


def q(raw: bytes) -> tuple[bool, str, tuple[str, ...]]:
    query = finger.parse_query(raw)
    assert query.raw == raw
    return query.verbose, query.user, query.hosts


def server_with(**options: object) -> finger.FingerServer:
    server = finger.SPEC.server(finger.SPEC.resolve_options(options))
    assert isinstance(server, finger.FingerServer)
    return server


def session_on(server: finger.FingerServer, peer: FakePeer) -> finger.FingerSession:
    session = open_session(server, peer)
    assert isinstance(session, finger.FingerSession)
    return session


def ask(server: finger.FingerServer, peer: FakePeer, raw: bytes) -> str:
    """Send one query line to the server, return its reply as text."""
    session_on(server, peer).message_received(finger.parse_query(raw))
    assert peer.closed
    return peer.data.decode("ascii")


def server_conv() -> Conversation:
    return finger.SPEC.conversation(Role.SERVER, Transport.TCP)


# -- the query grammar -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b"\r\n", (False, "", ())),  # {C}: list users
        (b"/W\r\n", (True, "", ())),  # {W}{C}
        (b"/W alice\r\n", (True, "alice", ())),  # {W}{S}{U}{C}
        (b"/W   alice\r\n", (True, "alice", ())),  # {S} is one or more spaces
        (b"alice\r\n", (False, "alice", ())),  # {U}{C}, the usual query
        (b"alice@example.net\r\n", (False, "alice", ("example.net",))),  # {Q2}
        (b"@a@b\r\n", (False, "", ("a", "b"))),  # {H} chain, no user
        (b"/W bob@host\r\n", (True, "bob", ("host",))),
    ],
)
def test_query_grammar(raw: bytes, parsed: tuple[bool, str, tuple[str, ...]]) -> None:
    """RFC 1288's {Q1} and {Q2} forms parse into verbose, user, hosts."""
    assert q(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b"alice\n", (False, "alice", ())),  # bare LF
        (b"alice", (False, "alice", ())),  # last line without terminator
        (b"/w alice\r\n", (True, "alice", ())),  # lower-case /w
        (b"/W\talice\r\n", (True, "alice", ())),  # tab as space
        (b"  alice  \r\n", (False, "alice", ())),
        (b"", (False, "", ())),
    ],
)
def test_query_leniency(raw: bytes, parsed: tuple[bool, str, tuple[str, ...]]) -> None:
    """What common fingerd implementations also accept."""
    assert q(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"alice bob\r\n", "one user per query"),
        (b"/X alice\r\n", "unexpected token '/X'"),
        (b"/Walice\r\n", "unexpected token '/Walice'"),
        (b"alice /W\r\n", "unexpected token '/W'"),
        (b"alice@\r\n", "empty host name"),
        (b"alice@@host\r\n", "empty host name"),
        (b"al\x01ice\r\n", "byte 0x01"),
        (b"alice\r\r\n", "byte 0x0d"),
        (b"caf\xc3\xa9\r\n", "byte 0xc3"),
        (b"del\x7f\r\n", "byte 0x7f"),
    ],
)
def test_malformed_queries(raw: bytes, why: str) -> None:
    """Control characters, non-ASCII, extra words and bad tokens are
    remote protocol errors."""
    with pytest.raises(RemoteProtocolError, match=why):
        finger.parse_query(raw)


@SETTINGS
@given(raw=st.binary(max_size=60))
def test_any_query_bytes_parse_or_fail_cleanly(raw: bytes) -> None:
    """Arbitrary bytes either parse or raise RemoteProtocolError; a parsed
    query keeps its bytes."""
    try:
        query = finger.parse_query(raw)
    except RemoteProtocolError:
        return
    assert query.raw == raw
    assert all(0x20 <= ord(c) < 0x7F for c in query.user + "".join(query.hosts))


_names = st.text(st.sampled_from("abcxyz0-._"), min_size=1, max_size=8)


@SETTINGS
@given(
    user=st.one_of(st.just(""), _names),
    verbose=st.booleans(),
    hosts=st.lists(_names, max_size=3),
)
def test_query_of_round_trips(user: str, verbose: bool, hosts: list[str]) -> None:
    """FingerQuery.of builds exactly the line that parses back to it."""
    query = FingerQuery.of(user, verbose=verbose, hosts=hosts)
    assert query.raw.endswith(b"\r\n")
    assert finger.parse_query(query.raw) == query
    assert (query.verbose, query.user, query.hosts) == (verbose, user, tuple(hosts))


def test_query_of_wire_forms() -> None:
    """The lines a client sends, per RFC 1288."""
    assert FingerQuery.of().raw == b"\r\n"
    assert FingerQuery.of(verbose=True).raw == b"/W\r\n"
    assert FingerQuery.of("alice", verbose=True).raw == b"/W alice\r\n"
    assert FingerQuery.of("alice", hosts=["a", "b"]).raw == b"alice@a@b\r\n"
    assert FingerQuery.of("alice@a").hosts == ("a",)


@pytest.mark.parametrize("user", ["two words", "line\nbreak", "/W", "/X", "zo\u00eb", "a@"])
def test_query_of_refuses_what_cannot_be_sent(user: str) -> None:
    """A user name that would change the query's meaning or break the
    grammar is a local protocol error."""
    with pytest.raises(LocalProtocolError):
        FingerQuery.of(user)


@pytest.mark.parametrize("hosts", [["a@b"], ["a b"], [""], ["a\tb"]])
def test_query_of_refuses_bad_hosts(hosts: list[str]) -> None:
    """A host that would split or break the query is a local protocol error."""
    with pytest.raises(LocalProtocolError):
        FingerQuery.of("alice", hosts=hosts)


def test_query_describes_itself() -> None:
    """kind query; fields verbose, user, hosts; a readable summary."""
    query = finger.parse_query(b"/W alice@h\r\n")
    assert query.kind == "query"
    assert query.fields() == {"verbose": True, "user": "alice", "hosts": ("h",)}
    assert query.summary() == "query /W user alice@h"
    assert finger.parse_query(b"\r\n").summary() == "query list users"
    assert finger.parse_query(b"@h\r\n").summary() == "query list users @h"


# -- the conversation ---------------------------------------------------------------------------


def test_server_decodes_queries() -> None:
    """What the client sends is FingerQuery lines."""
    conv = server_conv()
    assert conv.feed(b"/W ali") == []
    assert conv.feed(b"ce\r\n") == [finger.parse_query(b"/W alice\r\n")]


def test_server_takes_a_query_without_newline_at_eof() -> None:
    """`printf alice | nc host 79` still gets an answer."""
    conv = server_conv()
    assert conv.feed(b"alice") + conv.feed(b"") == [finger.parse_query(b"alice")]


def test_server_caps_the_query_length() -> None:
    """More than MAX_QUERY bytes without a newline is refused at once."""
    conv = server_conv()
    conv.feed(b"a" * finger.MAX_QUERY)
    with pytest.raises(RemoteProtocolError, match="longer than 1024"):
        conv.feed(b"a")


def test_server_side_is_spent_after_a_bad_query() -> None:
    """After a malformed query the client's decoder keeps raising."""
    conv = server_conv()
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"a b\r\n")
    with pytest.raises(RemoteProtocolError):
        conv.feed(b"alice\r\n")


def test_client_reads_lines_to_the_end() -> None:
    """The reply is lines; an unterminated last line still counts."""
    conv = finger.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert type(conv._decoders[Role.SERVER]) is LineDecoder
    assert conv.feed(b"a\r\nb") + conv.feed(b"") == [Line(raw=b"a\r\n"), Line(raw=b"b")]


def test_a_client_sending_a_query_follows_it() -> None:
    """The client's own query, sent whole or as raw bytes, decodes as one."""
    conv = finger.SPEC.conversation(Role.CLIENT, Transport.TCP)
    assert conv.send(FingerQuery.of("alice")) == b"alice\r\n"
    conv.send_data(b"/W do")
    conv.send_data(b"do\r\n")
    assert conv.take_sent() == [FingerQuery.of("alice"), FingerQuery.of("dodo", verbose=True)]


def test_tcp_only() -> None:
    """Finger runs over TCP, on port 79."""
    assert finger.SPEC.transports == (Transport.TCP,)
    assert finger.SPEC.default_port == 79


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_stream_laws(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Any bytes from either side split anywhere: only protocol errors, and
    messages that add up exactly, received, sent or observed."""
    for sender in Role:
        laws.stream(finger.SPEC.conversation, sender, data, cuts)
        laws.stream(finger.SPEC.conversation, sender, data, cuts, eof=False)


@SETTINGS
@given(
    data=st.lists(
        st.sampled_from([b"alice", b"/W", b" ", b"@", b"h", b"\r\n", b"\n", b"\x00", b"\xff", b"/"]),
        max_size=30,
    ).map(b"".join),
    cuts=st.lists(st.integers(0, 200), max_size=10),
)
def test_stream_laws_on_query_like_bytes(laws: ConversationLaws, data: bytes, cuts: list[int]) -> None:
    """Client bytes close to real queries hit every branch of the parser."""
    laws.stream(finger.SPEC.conversation, Role.CLIENT, data, cuts)


_QUERIES = st.sampled_from([
    {"user": ""},
    {"user": "", "verbose": True},
    {"user": "alice"},
    {"user": "alice", "verbose": True},
    {"user": "dodo", "verbose": True},
    {"user": "mallory"},
    {"user": "alice", "hosts": ["far.example"]},
])


@SETTINGS
@given(query=_QUERIES, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_an_observer_sees_what_both_sides_saw(laws: ConversationLaws, arun: Runner,
                                              query: dict[str, Any], cuts: list[int]) -> None:
    """A recorded query and its multi-line answer replay to an observer,
    split anywhere."""

    async def main() -> tuple[Loopback, str]:
        lb = Loopback(finger.SPEC, options={"plan": ["alice=Tea at six.\nThen croquet."]})
        return lb, await finger.FingerClient(lb).query(**query)

    lb, reply = arun(main())
    seen = laws.observer_replays(finger.SPEC.conversation, lb, cuts)
    assert seen[Role.SERVER] == [FingerQuery.of(**query)]
    text = b"".join(m.raw for m in seen[Role.CLIENT]).decode("ascii")
    assert text.replace("\r\n", "\n") == reply


# -- options ------------------------------------------------------------------------------------


def test_user_option_parses_login_and_info() -> None:
    """--user NAME=INFO becomes a (login, info) pair."""
    assert finger.parse_user("alice=Alice Liddell, Rabbit Hole") == ("alice", "Alice Liddell, Rabbit Hole")
    assert finger.parse_user(" bob =") == ("bob", "")


@pytest.mark.parametrize("bad", ["alice", "=Alice", "two words=X", "a@b=X", "/W=X", "caf\u00e9=X"])
def test_user_option_refuses_bad_forms(bad: str) -> None:
    """No '=', an empty or unusable login: a ConfigError with a hint."""
    with pytest.raises(ConfigError) as info:
        finger.SPEC.resolve_options({"user": [bad]})
    assert info.value.hint


def test_plan_option_parses() -> None:
    """--plan NAME=TEXT becomes a (login, plan) pair."""
    assert finger.SPEC.resolve_options({"plan": "alice=Tea at six."}) == finger.FingerOptions(
        user=(), plan=(("alice", "Tea at six."),)
    )


def test_options_may_come_as_a_mapping() -> None:
    """A lab file's {login: info} mapping gives the same pairs."""
    options = finger.SPEC.resolve_options({"user": {"bob": "Bob, Room 1"}, "plan": {"bob": "Lunch."}})
    assert options == finger.FingerOptions(user=(("bob", "Bob, Room 1"),), plan=(("bob", "Lunch."),))


def test_bad_option_names_the_option() -> None:
    """The error says which option and gives an example."""
    with pytest.raises(ConfigError, match=r"finger: --plan wants NAME=TEXT, got 'alice'") as info:
        finger.SPEC.resolve_options({"plan": ["alice"]})
    assert info.value.hint == "e.g. --plan alice='Down the rabbit hole.'"


def test_plan_for_someone_without_an_account_is_refused() -> None:
    """A --plan must name a --user."""
    with pytest.raises(ConfigError, match="no account") as info:
        server_with(user=["bob=Bob"], plan=["alice=Hi"])
    assert info.value.hint == "add --user alice=NAME"


def test_demo_accounts_by_default() -> None:
    """With no --user the server has the demo accounts, with plans."""
    server = server_with()
    assert list(server.users) == ["alice", "dodo"]
    assert server.users["alice"].plan == "Curiouser and curiouser!"


def test_plan_option_alone_changes_a_demo_plan() -> None:
    """--plan without --user customises the demo accounts."""
    assert server_with(plan=["dodo=Caucus race at noon."]).users["dodo"].plan == "Caucus race at noon."


def test_given_users_replace_the_demo_accounts() -> None:
    """With --user, only those accounts exist."""
    assert list(server_with(user=["bob=Bob"]).users) == ["bob"]


def test_options_may_come_as_pairs() -> None:
    """A scenario may give (login, info) pairs instead of strings, checked
    the same way."""
    server = server_with(user=[("bob", "Bob Bobson")], plan=[["bob", "Lunch."]])
    assert server.users["bob"] == finger.FingerUser("bob", "Bob Bobson", "Lunch.")
    with pytest.raises(ConfigError, match="--user wants a login"):
        server_with(user=[("two words", "X")])
    with pytest.raises(ConfigError, match="--plan wants NAME=TEXT"):
        server_with(plan=[42])


def test_gecos_style_info() -> None:
    """The full name is the first comma field; the rest is the office."""
    user = finger.FingerUser("alice", "Alice Liddell, Rabbit Hole,  555-0100")
    assert user.name == "Alice Liddell"
    assert user.office == "Rabbit Hole, 555-0100"
    assert finger.FingerUser("x", "Plain").office == ""


# -- replies ------------------------------------------------------------------------------------


def test_empty_query_lists_users(peer: FakePeer) -> None:
    """One line per user under a Login/Name header."""
    reply = ask(server_with(user=["alice=Alice Liddell", "bob=Bob"]), peer, b"\r\n")
    assert reply == "Login     Name\r\nalice     Alice Liddell\r\nbob       Bob\r\n"


def test_user_query_gives_a_short_block(peer: FakePeer) -> None:
    """A plain user query: the Login/Name line only."""
    reply = ask(server_with(user=["alice=Alice Liddell, on plan 9"]), peer, b"alice\r\n")
    assert reply == "Login: alice\t\t\tName: Alice Liddell\r\n"


def test_verbose_user_query_adds_office_and_plan(peer: FakePeer) -> None:
    """/W adds the office and the plan, line by line."""
    server = server_with(user=["alice=Alice Liddell, on plan 9"], plan=["alice=Tea.\nThen croquet."])
    reply = ask(server, peer, b"/W alice\r\n")
    assert reply == (
        "Login: alice\t\t\tName: Alice Liddell\r\n"
        "Office: on plan 9\r\n"
        "Plan:\r\n"
        "Tea.\r\n"
        "Then croquet.\r\n"
    )


def test_verbose_query_without_plan_says_so(peer: FakePeer) -> None:
    """No plan: 'No Plan.'"""
    assert ask(server_with(user=["bob=Bob"]), peer, b"/W bob\r\n").endswith("No Plan.\r\n")


def test_verbose_list_shows_every_block(peer: FakePeer) -> None:
    """/W alone gives each account's long block, separated by blank lines."""
    reply = ask(server_with(), peer, b"/W\r\n")
    assert reply.count("Login: ") == 2
    assert "\r\n\r\nLogin: dodo" in reply
    assert "Everybody has won, and all must have prizes." in reply


def test_unknown_user(peer: FakePeer) -> None:
    """The in.fingerd wording for a missing account."""
    assert ask(server_with(), peer, b"mallory\r\n") == "finger: mallory: no such user.\r\n"


@pytest.mark.parametrize("raw", [b"alice@elsewhere\r\n", b"@elsewhere\r\n", b"/W alice@a@b\r\n"])
def test_forwarding_is_denied(peer: FakePeer, raw: bytes) -> None:
    """Any {Q2} query is refused, and the refusal is noted in the log."""
    assert ask(server_with(), peer, raw) == "finger: forwarding service denied\r\n"
    assert peer.notes and "forward" in peer.notes[0]


def test_reply_filters_control_characters(peer: FakePeer) -> None:
    """Nothing but printing ASCII, tabs and CRLF leaves the server."""
    server = server_with(user=["eve=Eve \x1b[31mRed\x07 Zo\u00eb"], plan=["eve=\x00bad\tplan\rmore"])
    reply = ask(server, peer, b"/W eve\r\n").encode("ascii")
    for line in reply.split(b"\r\n"):
        assert all(b == 9 or 0x20 <= b < 0x7F for b in line)
    assert b"Name: Eve ?[31mRed? Zo?" in reply
    assert b"?bad\tplan\r\nmore" in reply


def test_one_answer_per_connection(peer: FakePeer) -> None:
    """A second query in the same packet is ignored: the first answer
    closed the connection."""
    session = session_on(server_with(), peer)
    session.message_received(finger.parse_query(b"alice\r\n"))
    session.message_received(finger.parse_query(b"dodo\r\n"))
    assert peer.data.decode().count("Login:") == 1


def test_bad_query_gets_a_one_line_error(make_peer: type[FakePeer]) -> None:
    """protocol_error answers 'finger: bad query: ...' and closes."""
    peer = make_peer(spec=finger.SPEC)
    session_on(server_with(), peer).protocol_error(RemoteProtocolError("byte 0x01 is not printing ASCII"))
    assert peer.data == b"finger: bad query: byte 0x01 is not printing ASCII\r\n"
    assert peer.sent == [Line(raw=b"finger: bad query: byte 0x01 is not printing ASCII\r\n")]
    assert peer.closed


def test_protocol_error_after_the_answer_sends_nothing(peer: FakePeer) -> None:
    """An error after the reply was sent does not write to a closed peer."""
    session = session_on(server_with(), peer)
    session.message_received(finger.parse_query(b"alice\r\n"))
    session.protocol_error(RemoteProtocolError("late"))
    assert b"bad query" not in peer.data


def test_each_connection_has_its_own_session(make_peer: type[FakePeer]) -> None:
    """One connection's answer does not silence the next, even with a
    reused id."""
    server = server_with()
    first = make_peer(conn_id="c")
    session_on(server, first).message_received(finger.parse_query(b"alice\r\n"))
    second = make_peer(conn_id="c")
    session_on(server, second).message_received(finger.parse_query(b"dodo\r\n"))
    assert b"dodo" in second.data


def test_a_session_sends_through_the_conversation(make_peer: type[FakePeer]) -> None:
    """The reply leaves as Line messages the server's conversation follows."""
    peer = make_peer(spec=finger.SPEC)
    ask(server_with(user=["bob=Bob"]), peer, b"/W bob\r\n")
    assert peer.sent == [Line(raw=b"Login: bob\t\t\tName: Bob\r\n"), Line(raw=b"No Plan.\r\n")]


@SETTINGS
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"alice\r\n", b"/W ", b"@x", b"\r\n", b"a" * 1100, b""]),
        ),
        max_size=6,
    ),
    eof=st.booleans(),
)
@example(chunks=[b"\n\n"], eof=False)  # two queries in one chunk: the second arrives after the hang-up
def test_server_survives_any_client_bytes(
    loopback: type[Loopback], arun: Runner, chunks: list[bytes], eof: bool
) -> None:
    """Whatever a client sends, no behaviour method raises, at most one
    answer is sent, and a server that answered has closed."""

    async def main() -> None:
        lb = loopback(finger.SPEC)
        for chunk in chunks:
            if lb.peer.closed:
                break
            if chunk:
                await lb.send_raw(chunk)
        if eof and not lb.peer.closed:
            lb.half_close()
        assert lb.errors == []
        if lb.peer.writes:
            assert lb.peer.closed
            text = lb.peer.data
            assert text.endswith(b"\r\n")
            assert all(b in (9, 10, 13) or 0x20 <= b < 0x7F for b in text)
        if eof:
            assert lb.peer.closed

    arun(main())


# -- verbs ----------------------------------------------------------------------------------------


def test_verb_query_user(loopback: type[Loopback], arun: Runner) -> None:
    """query('alice') returns the reply text with \\n line breaks."""

    async def main() -> str:
        return await finger.FingerClient(loopback(finger.SPEC)).query("alice")

    assert arun(main()) == "Login: alice\t\t\tName: Alice Liddell\n"


def test_verb_query_list_and_verbose(loopback: type[Loopback], arun: Runner) -> None:
    """query() lists; verbose=True sends /W and gets the plans."""

    async def main() -> tuple[str, str, list[bytes]]:
        lb = loopback(finger.SPEC)
        listing = await finger.FingerClient(lb).query()
        lb2 = loopback(finger.SPEC)
        verbose = await finger.FingerClient(lb2).query("alice", verbose=True)
        return listing, verbose, lb2.client_writes

    listing, verbose, writes = arun(main())
    assert listing.splitlines()[0].split() == ["Login", "Name"]
    assert "Plan:\nCuriouser and curiouser!\n" in verbose
    assert writes == [b"/W alice\r\n"]


def test_verb_query_with_hosts_is_denied(loopback: type[Loopback], arun: Runner) -> None:
    """hosts= sends a {Q2} query, which this server refuses; a single
    host may be given as a string."""

    async def main() -> tuple[str, list[bytes]]:
        lb = loopback(finger.SPEC)
        reply = await finger.FingerClient(lb).query("alice", hosts="far.example")
        return reply, lb.client_writes

    reply, writes = arun(main())
    assert reply == "finger: forwarding service denied\n"
    assert writes == [b"alice@far.example\r\n"]


def test_verb_query_refuses_a_bad_user(loopback: type[Loopback], arun: Runner) -> None:
    """A user name with a space never reaches the wire."""

    async def main() -> list[bytes]:
        lb = loopback(finger.SPEC)
        with pytest.raises(LocalProtocolError):
            await finger.FingerClient(lb).query("alice bob")
        return lb.client_writes

    assert arun(main()) == []


def test_verb_query_filters_what_a_server_sends(loopback: type[Loopback], arun: Runner) -> None:
    """The client also filters control characters (RFC 1288 §3.3)."""

    class Rude(finger.FingerSession):
        def message_received(self, msg: Message) -> None:
            self.conn.send_raw(b"hi\x1b[2J\x07\r\nthere\xff")
            self.conn.close()

    def prepare(server: Any) -> None:
        server.session_type = Rude

    async def main() -> str:
        return await finger.FingerClient(loopback(finger.SPEC, prepare=prepare)).query()

    assert arun(main()) == "hi?[2J?\nthere?"
