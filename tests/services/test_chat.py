"""Tests for lab/services/chat.py: the protocol-neutral chat service
(users, rooms, rules, event delivery), without any front door."""

from __future__ import annotations

import pytest

from lab.services import Services
from lab.services.chat import (
    CHAT,
    ChatEvent,
    ChatRefused,
    ChatService,
    ChatUser,
    Invited,
    Joined,
    Kicked,
    ModeChanged,
    Parted,
    Quit,
    Refusal,
    Renamed,
    Said,
    TopicSet,
    rfc1459_fold,
)


class Inbox:
    """A session that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    def deliver(self, event: ChatEvent) -> None:
        self.events.append(event)

    def take(self) -> list[ChatEvent]:
        out, self.events = self.events, []
        return out


def sign_on(chat: ChatService, nick: str) -> tuple[ChatUser, Inbox]:
    inbox = Inbox()
    return chat.sign_on(nick, inbox, username=nick, host="127.0.0.1"), inbox


def refused(reason: Refusal) -> pytest.RaisesExc[ChatRefused]:
    return pytest.raises(ChatRefused, match=reason.value)


def test_rfc1459_case_mapping() -> None:
    """[]\\~ fold to {}|^ and letters to lower case (RFC 1459 §2.2)."""
    assert rfc1459_fold("Alice[]\\~") == "alice{}|^"
    assert rfc1459_fold("#LAB") == "#lab"


def test_nicks_are_unique_under_the_case_mapping() -> None:
    """A nick differing only in case (RFC 1459 sense) is taken."""
    chat = ChatService()
    sign_on(chat, "Alice[1]")
    with refused(Refusal.NAME_IN_USE):
        sign_on(chat, "alice{1}")
    assert chat.user("ALICE[1]") is not None


def test_user_cap() -> None:
    """Sign-ons past max_users are refused."""
    chat = ChatService(max_users=1)
    sign_on(chat, "a")
    with refused(Refusal.TOO_MANY_USERS):
        sign_on(chat, "b")


def test_first_joiner_operates_the_room_and_everyone_sees_joins() -> None:
    """A new room gets its creator as operator; each join reaches every
    member, the joiner included, in one order."""
    chat = ChatService()
    alice, a = sign_on(chat, "alice")
    bob, b = sign_on(chat, "bob")
    room = chat.join(alice, "#Lab")
    chat.join(bob, "#lab")
    assert room.operators == {alice}
    assert list(room.members) == [alice, bob]
    assert a.take() == [Joined(room, alice), Joined(room, bob)]
    assert b.take() == [Joined(room, bob)]
    assert chat.join(bob, "#LAB") is room  # joining again changes nothing
    assert b.take() == []


def test_room_messages_reach_everyone_but_the_sender() -> None:
    """say() to a room delivers to the other members in joining order."""
    chat = ChatService()
    users = [sign_on(chat, n) for n in ("a", "b", "c")]
    for user, _ in users:
        chat.join(user, "#r")
    for _, inbox in users:
        inbox.take()
    room = chat.say(users[0][0], "#R", "hi")
    assert users[0][1].take() == []
    assert users[1][1].take() == [Said(users[0][0], room, "hi")]
    assert users[2][1].take() == [Said(users[0][0], room, "hi")]


def test_private_messages_and_unknown_targets() -> None:
    """say() to a nick reaches that user only; an unknown one is refused."""
    chat = ChatService()
    alice, _ = sign_on(chat, "alice")
    bob, b = sign_on(chat, "bob")
    assert chat.say(alice, "BOB", "psst", notice=True) is bob
    assert b.take() == [Said(alice, bob, "psst", True)]
    with refused(Refusal.NO_SUCH_USER):
        chat.say(alice, "carol", "hello?")


def test_outside_messages_and_moderation() -> None:
    """+n keeps outsiders out; +m lets only operators and voiced speak."""
    chat = ChatService()
    alice, _ = sign_on(chat, "alice")
    bob, _ = sign_on(chat, "bob")
    chat.join(alice, "#r")
    with refused(Refusal.CANNOT_SEND):
        chat.say(bob, "#r", "from outside")
    chat.change_modes(alice, "#r", [("-", "no_outside", None)])
    chat.say(bob, "#r", "from outside")
    chat.join(bob, "#r")
    chat.change_modes(alice, "#r", [("+", "moderated", None)])
    with refused(Refusal.CANNOT_SEND):
        chat.say(bob, "#r", "muted")
    chat.change_modes(alice, "#r", [("+", "voice", "bob")])
    chat.say(bob, "#r", "voiced")


def test_only_operators_change_modes_topic_and_kick() -> None:
    """Mode changes, topics under +t and kicks need operator status."""
    chat = ChatService()
    alice, a = sign_on(chat, "alice")
    bob, b = sign_on(chat, "bob")
    room = chat.join(alice, "#r")
    chat.join(bob, "#r")
    with refused(Refusal.NOT_OPERATOR):
        chat.change_modes(bob, "#r", [("+", "moderated", None)])
    with refused(Refusal.NOT_OPERATOR):
        chat.set_topic(bob, "#r", "mine")
    with refused(Refusal.NOT_OPERATOR):
        chat.kick(bob, "#r", "alice")
    a.take()
    chat.set_topic(alice, "#r", "ours")
    assert room.topic == "ours" and room.topic_by.startswith("alice!")
    assert a.take() == [TopicSet(room, alice)]
    chat.kick(alice, "#r", "BOB", "out")
    assert b.take()[-1] == Kicked(room, alice, bob, "out")
    assert bob not in room and not bob.rooms


def test_join_rules_key_limit_invite_and_room_cap() -> None:
    """+k wants the key, +l caps members, +i wants an invitation, and a
    user's room count is capped."""
    chat = ChatService()
    alice, _ = sign_on(chat, "alice")
    bob, _ = sign_on(chat, "bob")
    carol, c = sign_on(chat, "carol")
    chat.join(alice, "#r")
    chat.change_modes(alice, "#r", [("+", "key", "sesame"), ("+", "limit", "2")])
    with refused(Refusal.BAD_KEY):
        chat.join(bob, "#r", "wrong")
    chat.join(bob, "#r", "sesame")
    with refused(Refusal.ROOM_FULL):
        chat.join(carol, "#r", "sesame")
    chat.change_modes(alice, "#r", [("-", "limit", None), ("-", "key", None), ("+", "invite_only", None)])
    with refused(Refusal.INVITE_ONLY):
        chat.join(carol, "#r")
    with refused(Refusal.NOT_OPERATOR):
        chat.invite(bob, "carol", "#r")
    chat.invite(alice, "carol", "#r")
    assert c.take() == [Invited("#r", alice, carol)]
    chat.join(carol, "#r")
    with refused(Refusal.TOO_MANY_ROOMS):
        chat.join(carol, "#other", max_rooms=1)


def test_mode_changes_report_only_what_changed() -> None:
    """Setting a flag that is already set reports nothing."""
    chat = ChatService()
    alice, a = sign_on(chat, "alice")
    room = chat.join(alice, "#r")
    a.take()
    chat.change_modes(alice, "#r", [("+", "topic_locked", None), ("+", "moderated", None)])
    assert a.take() == [ModeChanged(room, alice, (("+", "moderated", None),))]
    with refused(Refusal.THEY_ARE_NOT_ON_ROOM):
        sign_on(chat, "bob")
        chat.change_modes(alice, "#r", [("+", "operator", "bob")])


def test_rename_and_sign_off_reach_room_peers_once() -> None:
    """A nick change and a quit reach each user sharing a room once, even
    when they share several rooms; the room empties and goes away."""
    chat = ChatService()
    alice, a = sign_on(chat, "alice")
    bob, b = sign_on(chat, "bob")
    _loner, lone = sign_on(chat, "loner")
    for name in ("#one", "#two"):
        chat.join(alice, name)
        chat.join(bob, name)
    for inbox in (a, b, lone):
        inbox.take()
    chat.rename(alice, "Alicia")
    assert a.take() == [Renamed(alice, "alice")]
    assert b.take() == [Renamed(alice, "alice")]
    assert lone.take() == []
    assert chat.user("alice") is None and chat.user("ALICIA") is alice
    chat.sign_off(bob, "gone")
    assert a.take() == [Quit(bob, "gone")]
    room_one = alice.rooms["#one"]
    chat.part(alice, "#one", "bye")
    assert a.take() == [Parted(room_one, alice, "bye")]
    assert list(chat.rooms) == ["#two"]  # the empty room is gone


def test_a_broken_session_does_not_stop_delivery() -> None:
    """A session that raises is logged; the others still get the event."""

    class Broken:
        def deliver(self, event: ChatEvent) -> None:
            raise RuntimeError("boom")

    chat = ChatService()
    chat.join(chat.sign_on("broken", Broken()), "#r")
    bob, b = sign_on(chat, "bob")
    chat.join(bob, "#r")
    assert b.take() == [Joined(chat.rooms["#r"], bob)]


def test_one_service_per_lab() -> None:
    """Servers of one lab get the same service from their Services."""
    services = Services()
    chat = services.get(CHAT)
    assert isinstance(chat, ChatService) and services.get(CHAT) is chat
    assert services.attach(CHAT, None) is chat  # nothing to keep on disk, nothing to attach
