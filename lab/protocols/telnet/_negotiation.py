"""Option negotiation by the Q method of RFC 1143, sans-IO.

Each option has two independent states: ours ("us": may *we* do it, asked
with WILL/WONT, answered with DO/DONT) and the peer's ("him": DO/DONT
asked, WILL/WONT answered).  Each state is NO, YES, WANTNO or WANTYES,
with a one-bit queue for a change of mind while a request is out.  The
rules answer a request only when it changes a state, so two peers that
both follow them never loop (RFC 854's requirement); a peer that keeps
asking for something refused gets at most ``max_replies`` answers per
option before it is ignored.

Tests: tests/protocols/test_telnet.py
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from lab.protocols.telnet._codec import DO, DONT, TM, WILL, WONT, Negotiation, option_name

__all__ = ["Change", "Negotiator", "Outcome", "Q", "Side"]

MAX_REPLIES = 16


class Q(enum.Enum):
    NO = "no"
    YES = "yes"
    WANTNO = "wantno"
    WANTYES = "wantyes"


class Side(enum.Enum):
    """Whose side of an option: ours (WILL/WONT) or the peer's (DO/DONT)."""

    US = "us"
    HIM = "him"


@dataclass
class _Half:
    state: Q = Q.NO
    opposite: bool = False  # the queue bit: change back once the answer comes


@dataclass
class _Option:
    us: _Half = field(default_factory=_Half)
    him: _Half = field(default_factory=_Half)
    replies: int = 0


@dataclass(frozen=True)
class Change:
    """An option came into force or went out of it."""

    side: Side
    option: int
    enabled: bool

    def __str__(self) -> str:
        who = "we" if self.side is Side.US else "peer"
        return f"{who} {'now' if self.enabled else 'no longer'} {option_name(self.option)}"


@dataclass
class Outcome:
    """What one received negotiation leads to: replies to send, a change of
    an option's state, and a complaint about the peer if any."""

    replies: list[Negotiation] = field(default_factory=list)
    change: Change | None = None
    problem: str | None = None


# (verb received) -> which half it speaks of, and the verbs to answer with
_SPEAKS = {WILL: (Side.HIM, True), WONT: (Side.HIM, False), DO: (Side.US, True), DONT: (Side.US, False)}
_ASK = {Side.HIM: (DO, DONT), Side.US: (WILL, WONT)}


class Negotiator:
    """Both halves of every option of one connection.

    ``local`` lists the options we agree to perform when asked (we answer
    DO with WILL), ``remote`` those we let the peer perform (we answer WILL
    with DO); anything else is refused.
    """

    def __init__(self, *, local: Iterable[int] = (), remote: Iterable[int] = (),
                 max_replies: int = MAX_REPLIES) -> None:
        self.local = set(local)
        self.remote = set(remote)
        self.max_replies = max_replies
        self._options: dict[int, _Option] = {}

    def _get(self, option: int) -> _Option:
        state = self._options.get(option)
        if state is None:
            state = self._options[option] = _Option()
        return state

    def _half(self, side: Side, option: int) -> _Half:
        state = self._get(option)
        return state.us if side is Side.US else state.him

    # -- questions --------------------------------------------------------

    def enabled(self, side: Side, option: int) -> bool:
        opt = self._options.get(option)
        if opt is None:
            return False
        return (opt.us if side is Side.US else opt.him).state is Q.YES

    def here(self, option: int) -> bool:
        """Do we perform ``option`` (we said WILL and the peer agreed)?"""
        return self.enabled(Side.US, option)

    def there(self, option: int) -> bool:
        """Does the peer perform ``option``?"""
        return self.enabled(Side.HIM, option)

    def state(self, side: Side, option: int) -> Q:
        opt = self._options.get(option)
        if opt is None:
            return Q.NO
        return (opt.us if side is Side.US else opt.him).state

    @property
    def pending(self) -> bool:
        """Is any request of ours still unanswered?"""
        return any(half.state in (Q.WANTNO, Q.WANTYES)
                   for opt in self._options.values() for half in (opt.us, opt.him))

    def summary(self) -> dict[str, list[str]]:
        """Options in force: ``{"us": [...], "him": [...]}`` by name."""
        out: dict[str, list[str]] = {"us": [], "him": []}
        for code, opt in sorted(self._options.items()):
            if opt.us.state is Q.YES:
                out["us"].append(option_name(code))
            if opt.him.state is Q.YES:
                out["him"].append(option_name(code))
        return out

    # -- our requests -----------------------------------------------------

    def request(self, side: Side, option: int, enable: bool = True) -> list[Negotiation]:
        """Ask to enable (or disable) an option on one side; the request to
        send, or nothing when it is in force already or already asked
        (RFC 1143's "errors" are quietly no-ops here)."""
        half = self._half(side, option)
        yes_verb, no_verb = _ASK[side]
        want = Q.WANTYES if enable else Q.WANTNO
        unwant = Q.WANTNO if enable else Q.WANTYES
        if half.state is (Q.NO if enable else Q.YES):
            half.state = want
            return [Negotiation.of(yes_verb if enable else no_verb, option)]
        if half.state is unwant:
            half.opposite = True  # ask again once the pending answer arrives
        elif half.state is want:
            half.opposite = False  # a change of mind undone
        return []

    # -- the peer's messages ----------------------------------------------

    def receive(self, msg: Negotiation) -> Outcome:
        """Apply a received DO/DONT/WILL/WONT (RFC 1143 section 7)."""
        side, enable = _SPEAKS[msg.verb]
        option = msg.option
        opt = self._get(option)
        half = opt.us if side is Side.US else opt.him
        yes_verb, no_verb = _ASK[side]
        agree = option in (self.local if side is Side.US else self.remote)
        before = half.state is Q.YES
        out = Outcome()
        name = option_name(option)
        if enable:
            if half.state is Q.NO:
                if agree:
                    half.state = Q.YES
                    out.replies.append(Negotiation.of(yes_verb, option))
                else:
                    out.replies.append(Negotiation.of(no_verb, option))
            elif half.state is Q.WANTNO:
                # a refusal of ours answered by consent: the peer broke the rules
                out.problem = f"{msg.summary()} answers our {COMMAND[no_verb]} {name}"
                half.state = Q.YES if half.opposite else Q.NO
                half.opposite = False
            elif half.state is Q.WANTYES:
                if half.opposite:
                    half.state = Q.WANTNO
                    half.opposite = False
                    out.replies.append(Negotiation.of(no_verb, option))
                else:
                    half.state = Q.YES
        else:
            if half.state is Q.YES:
                half.state = Q.NO
                out.replies.append(Negotiation.of(no_verb, option))
            elif half.state is Q.WANTNO:
                if half.opposite:
                    half.state = Q.WANTYES
                    half.opposite = False
                    out.replies.append(Negotiation.of(yes_verb, option))
                else:
                    half.state = Q.NO
            elif half.state is Q.WANTYES:
                half.state = Q.NO
                half.opposite = False
        if out.replies and option != TM:  # RFC 860: every DO TM is a mark that wants its answer
            opt.replies += 1
            if opt.replies > self.max_replies:
                out.replies = []
                if opt.replies == self.max_replies + 1:
                    out.problem = f"{name} negotiated more than {self.max_replies} times: no more answers"
        after = half.state is Q.YES
        if before != after:
            out.change = Change(side, option, after)
        return out


COMMAND = {DO: "DO", DONT: "DONT", WILL: "WILL", WONT: "WONT"}
