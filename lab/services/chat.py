"""The lab's chat service: users, rooms and the messages between them.

Protocol front doors (IRC now; XMPP or AIM TOC later) register their
users here and join them to rooms; the service keeps the state and the
rules (who may speak, set the topic, change modes, kick) and delivers
every event to each member's :class:`ChatSession`, which turns it into
its own protocol's messages.  Several servers of one lab share one
service (the :data:`CHAT` key), so they form one
network of rooms.

Names are compared case-insensitively with the RFC 1459 case mapping
(``[]\\~`` are the upper case of ``{}|^``), which front doors that use
other rules can replace through ``fold``.  Refusals raise
:class:`ChatRefused` with a :class:`Refusal` that each front door maps
to its own error replies.

Tests: tests/services/test_chat.py
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.errors import LabError
from lab.services import ServiceKey

__all__ = [
    "CHAT",
    "ChatEvent",
    "ChatRefused",
    "ChatService",
    "ChatSession",
    "ChatUser",
    "Invited",
    "Joined",
    "Kicked",
    "ModeChanged",
    "Parted",
    "Quit",
    "Refusal",
    "Renamed",
    "Room",
    "Said",
    "TopicSet",
    "rfc1459_fold",
]

logger = logging.getLogger(__name__)


_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")


def rfc1459_fold(name: str) -> str:
    """``name`` in lower case by RFC 1459 §2.2: ``{}|^`` are the lower
    case of ``[]\\~``."""
    return name.translate(_FOLD)


class Refusal(enum.Enum):
    """Why the service refused a request."""

    NAME_IN_USE = "that name is in use"
    NO_SUCH_USER = "no such user"
    NO_SUCH_ROOM = "no such room"
    NOT_ON_ROOM = "you are not in that room"
    THEY_ARE_NOT_ON_ROOM = "they are not in that room"
    ALREADY_ON_ROOM = "they are already in that room"
    NOT_OPERATOR = "you are not a room operator"
    CANNOT_SEND = "you cannot send to that room"
    ROOM_FULL = "the room is full"
    INVITE_ONLY = "the room is invite only"
    BAD_KEY = "wrong room key"
    TOO_MANY_ROOMS = "you are in too many rooms"
    TOO_MANY_USERS = "the service has too many users"


class ChatRefused(LabError):
    """The service refused a request; ``reason`` says why, ``name`` names
    the user or room concerned."""

    def __init__(self, reason: Refusal, name: str = "") -> None:
        super().__init__(f"{name}: {reason.value}" if name else reason.value)
        self.reason = reason
        self.name = name


class ChatSession(Protocol):
    """A front door's side of one user: gets every event the user sees."""

    def deliver(self, event: ChatEvent) -> None: ...


@dataclass(eq=False)
class ChatUser:
    """One signed-on user; ``session`` delivers what the user sees.

    ``origin`` names the server the user is connected to, ``host`` where
    they connect from.  Users compare by identity.
    """

    nick: str
    session: ChatSession
    username: str = ""
    host: str = ""
    realname: str = ""
    origin: str = ""
    invisible: bool = False
    away: str | None = None
    signon: float = field(default_factory=time.time)
    last_spoke: float = field(default_factory=time.monotonic)
    rooms: dict[str, Room] = field(default_factory=dict)  # folded name -> room

    @property
    def mask(self) -> str:
        """``nick!user@host``, how IRC names the source of a message."""
        return f"{self.nick}!{self.username}@{self.host}"


@dataclass(eq=False)
class Room:
    """A channel: members with their roles, topic and settings."""

    name: str
    created: float = field(default_factory=time.time)
    topic: str = ""
    topic_by: str = ""
    topic_at: float = 0.0
    topic_locked: bool = True  # only operators set the topic (+t)
    no_outside: bool = True  # only members may send to it (+n)
    moderated: bool = False  # only operators and voiced members speak (+m)
    invite_only: bool = False  # +i
    key: str | None = None  # +k
    limit: int | None = None  # +l
    members: dict[ChatUser, None] = field(default_factory=dict)  # in joining order
    operators: set[ChatUser] = field(default_factory=set)
    voiced: set[ChatUser] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)  # folded nicks

    def __contains__(self, user: object) -> bool:
        return user in self.members

    def can_speak(self, user: ChatUser) -> bool:
        if user not in self.members:
            return not self.no_outside and not self.moderated
        return not self.moderated or user in self.operators or user in self.voiced


@dataclass(frozen=True, slots=True)
class Joined:
    room: Room
    user: ChatUser


@dataclass(frozen=True, slots=True)
class Parted:
    room: Room
    user: ChatUser
    reason: str


@dataclass(frozen=True, slots=True)
class Kicked:
    room: Room
    by: ChatUser
    user: ChatUser
    reason: str


@dataclass(frozen=True, slots=True)
class Invited:
    """``by`` asks ``user`` into the room called ``name`` (which may not
    exist yet)."""

    name: str
    by: ChatUser
    user: ChatUser


@dataclass(frozen=True, slots=True)
class Quit:
    user: ChatUser
    reason: str


@dataclass(frozen=True, slots=True)
class Said:
    """``text`` from ``source`` to a room or a user; ``notice`` marks a
    message no one must answer automatically."""

    source: ChatUser
    target: Room | ChatUser
    text: str
    notice: bool = False


@dataclass(frozen=True, slots=True)
class Renamed:
    user: ChatUser
    old: str


@dataclass(frozen=True, slots=True)
class TopicSet:
    room: Room
    by: ChatUser


@dataclass(frozen=True, slots=True)
class ModeChanged:
    """Room settings changed: ``changes`` are (+/-, setting, argument)
    with settings named as on :class:`Room` (``moderated``, ``operator``,
    ``key``...) and the argument a nick, key or limit, else ``None``."""

    room: Room
    by: ChatUser
    changes: tuple[tuple[str, str, str | None], ...]


ChatEvent = Joined | Parted | Kicked | Invited | Quit | Said | Renamed | TopicSet | ModeChanged

_FLAGS = ("topic_locked", "no_outside", "moderated", "invite_only")


class ChatService:
    """Users and rooms shared by every chat front door of a lab.

    Every method runs on the reactor thread; each delivers its events
    synchronously and in one order to every session concerned, so all
    members see the same sequence.  ``max_users`` caps sign-ons.
    """

    def __init__(self, *, fold: Callable[[str], str] = rfc1459_fold, max_users: int = 1024) -> None:
        self.fold = fold
        self.max_users = max_users
        self.users: dict[str, ChatUser] = {}
        self.rooms: dict[str, Room] = {}

    # -- users -------------------------------------------------------------

    def user(self, nick: str) -> ChatUser | None:
        return self.users.get(self.fold(nick))

    def room(self, name: str) -> Room | None:
        return self.rooms.get(self.fold(name))

    def sign_on(self, nick: str, session: ChatSession, **details: Any) -> ChatUser:
        """Add a user; :class:`ChatRefused` if the nick is taken or the
        service is full."""
        key = self.fold(nick)
        if key in self.users:
            raise ChatRefused(Refusal.NAME_IN_USE, nick)
        if len(self.users) >= self.max_users:
            raise ChatRefused(Refusal.TOO_MANY_USERS, nick)
        user = self.users[key] = ChatUser(nick=nick, session=session, **details)
        return user

    def rename(self, user: ChatUser, nick: str) -> None:
        """Change a user's nick; everyone sharing a room and the user see it."""
        old_key, new_key = self.fold(user.nick), self.fold(nick)
        if new_key != old_key and new_key in self.users:
            raise ChatRefused(Refusal.NAME_IN_USE, nick)
        if nick == user.nick:
            return
        old = user.nick
        del self.users[old_key]
        user.nick = nick
        self.users[new_key] = user
        for room in user.rooms.values():
            room.invited.discard(old_key)
        self._tell(self._neighbours(user, include_self=True), Renamed(user, old))

    def sign_off(self, user: ChatUser, reason: str) -> None:
        """Remove a user from every room and the service; room peers see it."""
        if self.users.get(self.fold(user.nick)) is not user:
            return
        self._tell(self._neighbours(user, include_self=False), Quit(user, reason))
        for room in list(user.rooms.values()):
            self._leave(room, user)
        del self.users[self.fold(user.nick)]

    def _neighbours(self, user: ChatUser, *, include_self: bool) -> list[ChatUser]:
        seen: dict[ChatUser, None] = {user: None} if include_self else {}
        for room in user.rooms.values():
            seen.update(room.members)
        if not include_self:
            seen.pop(user, None)
        return list(seen)

    def shares_room(self, a: ChatUser, b: ChatUser) -> bool:
        return any(b in room for room in a.rooms.values())

    # -- rooms -------------------------------------------------------------

    def join(self, user: ChatUser, name: str, key: str | None = None, *, max_rooms: int | None = None) -> Room:
        """Put ``user`` in room ``name``, creating it (with ``user`` as its
        operator) if needed; members, the user included, see it."""
        folded = self.fold(name)
        room = self.rooms.get(folded)
        if room is not None and user in room:
            return room
        if max_rooms is not None and len(user.rooms) >= max_rooms:
            raise ChatRefused(Refusal.TOO_MANY_ROOMS, name)
        if room is None:
            room = self.rooms[folded] = Room(name=name)
            room.operators.add(user)
        else:
            invited = self.fold(user.nick) in room.invited
            if room.invite_only and not invited:
                raise ChatRefused(Refusal.INVITE_ONLY, room.name)
            if room.key is not None and key != room.key:
                raise ChatRefused(Refusal.BAD_KEY, room.name)
            if room.limit is not None and len(room.members) >= room.limit and not invited:
                raise ChatRefused(Refusal.ROOM_FULL, room.name)
            room.invited.discard(self.fold(user.nick))
        room.members[user] = None
        user.rooms[folded] = room
        self._tell(list(room.members), Joined(room, user))
        return room

    def part(self, user: ChatUser, name: str, reason: str = "") -> None:
        room = self._member_room(user, name)
        self._tell(list(room.members), Parted(room, user, reason))
        self._leave(room, user)

    def kick(self, by: ChatUser, name: str, nick: str, reason: str = "") -> None:
        room = self._member_room(by, name)
        victim = self.user(nick)
        if victim is None:
            raise ChatRefused(Refusal.NO_SUCH_USER, nick)
        if victim not in room:
            raise ChatRefused(Refusal.THEY_ARE_NOT_ON_ROOM, nick)
        self._require_operator(room, by)
        self._tell(list(room.members), Kicked(room, by, victim, reason))
        self._leave(room, victim)

    def invite(self, by: ChatUser, nick: str, name: str) -> ChatUser:
        """Let ``nick`` into an invite-only room and tell them; returns
        the invitee."""
        target = self.user(nick)
        if target is None:
            raise ChatRefused(Refusal.NO_SUCH_USER, nick)
        room = self.room(name)
        if room is not None:
            if by not in room:
                raise ChatRefused(Refusal.NOT_ON_ROOM, room.name)
            if target in room:
                raise ChatRefused(Refusal.ALREADY_ON_ROOM, nick)
            if room.invite_only:
                self._require_operator(room, by)
            room.invited.add(self.fold(nick))
        self._tell([target], Invited(room.name if room else name, by, target))
        return target

    def _leave(self, room: Room, user: ChatUser) -> None:
        room.members.pop(user, None)
        room.operators.discard(user)
        room.voiced.discard(user)
        user.rooms.pop(self.fold(room.name), None)
        if not room.members:
            self.rooms.pop(self.fold(room.name), None)

    def _member_room(self, user: ChatUser, name: str) -> Room:
        room = self.room(name)
        if room is None:
            raise ChatRefused(Refusal.NO_SUCH_ROOM, name)
        if user not in room:
            raise ChatRefused(Refusal.NOT_ON_ROOM, room.name)
        return room

    @staticmethod
    def _require_operator(room: Room, user: ChatUser) -> None:
        if user not in room.operators:
            raise ChatRefused(Refusal.NOT_OPERATOR, room.name)

    def set_topic(self, user: ChatUser, name: str, text: str) -> None:
        room = self._member_room(user, name)
        if room.topic_locked:
            self._require_operator(room, user)
        room.topic, room.topic_by, room.topic_at = text, user.mask, time.time()
        self._tell(list(room.members), TopicSet(room, user))

    def change_modes(self, user: ChatUser, name: str, changes: list[tuple[str, str, str | None]]) -> None:
        """Apply room setting changes (see :class:`ModeChanged`) as an
        operator; members see the ones that changed something."""
        room = self._member_room(user, name)
        self._require_operator(room, user)
        done: list[tuple[str, str, str | None]] = []
        for sign, setting, arg in changes:
            on = sign == "+"
            if setting in _FLAGS:
                if getattr(room, setting) != on:
                    setattr(room, setting, on)
                    done.append((sign, setting, None))
            elif setting in ("operator", "voice"):
                member = self.user(arg or "")
                if member is None:
                    raise ChatRefused(Refusal.NO_SUCH_USER, arg or "")
                if member not in room:
                    raise ChatRefused(Refusal.THEY_ARE_NOT_ON_ROOM, member.nick)
                group = room.operators if setting == "operator" else room.voiced
                if (member in group) != on:
                    (group.add if on else group.discard)(member)
                    done.append((sign, setting, member.nick))
            elif setting == "key":
                if on and arg and room.key != arg:
                    room.key = arg
                    done.append((sign, setting, arg))
                elif not on and room.key is not None:
                    done.append((sign, setting, room.key))
                    room.key = None
            elif setting == "limit":
                if on and arg is not None and room.limit != int(arg):
                    room.limit = int(arg)
                    done.append((sign, setting, arg))
                elif not on and room.limit is not None:
                    room.limit = None
                    done.append((sign, setting, None))
            else:
                raise ValueError(f"unknown room setting {setting!r}")
        if done:
            self._tell(list(room.members), ModeChanged(room, user, tuple(done)))

    # -- messages ----------------------------------------------------------

    def say(self, user: ChatUser, target: str, text: str, *, notice: bool = False) -> Room | ChatUser:
        """Send ``text`` to a room (every member but the sender) or a user."""
        user.last_spoke = time.monotonic()
        room = self.room(target)
        if room is not None:
            if not room.can_speak(user):
                raise ChatRefused(Refusal.CANNOT_SEND, room.name)
            event = Said(user, room, text, notice)
            self._tell([m for m in room.members if m is not user], event)
            return room
        other = self.user(target)
        if other is None:
            raise ChatRefused(Refusal.NO_SUCH_USER, target)
        self._tell([other], Said(user, other, text, notice))
        return other

    @staticmethod
    def _tell(users: list[ChatUser], event: ChatEvent) -> None:
        for member in users:
            try:
                member.session.deliver(event)
            except Exception:
                # one broken session must not keep the event from the others
                logger.exception("delivering %s to %s failed", type(event).__name__, member.nick)

    def visible_users(self, viewer: ChatUser) -> Iterator[ChatUser]:
        """Users ``viewer`` may list: the visible ones and room peers."""
        for other in self.users.values():
            if not other.invisible or other is viewer or self.shares_room(viewer, other):
                yield other


CHAT: ServiceKey[ChatService] = ServiceKey("chat.service", ChatService)
