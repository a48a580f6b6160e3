"""The filter language: which events the traffic view shows, and which
messages an intercept holds.

A filter is words, all of which must hold::

    e:echo          endpoint (``*`` and ``?`` glob: ``e:demo*``)
    c:echo#1        connection
    in / out        direction (also ``dir:in``, ``<-``, ``->``)
    p:finger        protocol
    k:msg           event kind (listen open close data msg error info stop)
    m:MAIL          message kind (a protocol's name for it: a verb, "reply")
    /hel+o/i        regular expression over the summary and the raw bytes
    hello           text anywhere in the summary, any case ("two words" quoted)
    -word  !word    the opposite of any of the above

Tests: tests/tui/test_pieces.py, tests/test_intercept.py
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from lab.errors import CommandError
from lab.eventlog import Direction, Event, EventKind

__all__ = ["FILTER_HELP", "TrafficFilter", "parse_filter"]

FILTER_HELP = "e:ENDPOINT c:CONN in|out p:PROTO k:KIND m:MSGKIND /REGEX/ text, -word negates"

Test = Callable[[Event], bool]

_KEYS = {
    "e": "endpoint", "endpoint": "endpoint", "ep": "endpoint",
    "c": "conn", "conn": "conn", "connection": "conn",
    "p": "protocol", "proto": "protocol", "protocol": "protocol",
    "d": "direction", "dir": "direction", "direction": "direction",
    "k": "kind", "kind": "kind",
    "m": "message", "msg": "message",
}
_DIRECTIONS = {"in": Direction.IN, "<-": Direction.IN, "out": Direction.OUT, "->": Direction.OUT}


def _name_test(attr: str, pattern: str) -> Test:
    if any(ch in pattern for ch in "*?["):
        return lambda e: fnmatchcase(getattr(e, attr), pattern)
    return lambda e: getattr(e, attr) == pattern


def _regex_test(word: str) -> Test:
    m = re.fullmatch(r"/(.*)/(i?)", word, re.DOTALL)
    assert m is not None
    try:
        regex = re.compile(m.group(1), re.IGNORECASE if m.group(2) else 0)
    except re.error as exc:
        raise CommandError(f"bad regular expression {word}: {exc}", hint="e.g. /hel+o/i") from None

    def test(e: Event) -> bool:
        if regex.search(e.summary):
            return True
        return e.raw is not None and regex.search(e.raw.decode("latin-1")) is not None

    return test


def _text_test(word: str) -> Test:
    needle = word.lower()
    return lambda e: needle in e.summary.lower()


def _term(word: str) -> Test:
    if word in _DIRECTIONS:
        direction = _DIRECTIONS[word]
        return lambda e: e.direction is direction
    if len(word) > 2 and word.startswith("/") and re.fullmatch(r"/.*/i?", word, re.DOTALL):
        return _regex_test(word)
    key, sep, value = word.partition(":")
    if sep and key.lower() in _KEYS:
        what = _KEYS[key.lower()]
        if not value:
            raise CommandError(f"{word!r} needs a value after the colon", hint=FILTER_HELP)
        if what == "direction":
            if value not in _DIRECTIONS:
                raise CommandError(f"unknown direction {value!r}", hint="use in or out")
            direction = _DIRECTIONS[value]
            return lambda e: e.direction is direction
        if what == "kind":
            try:
                kind = EventKind(value.lower())
            except ValueError:
                kinds = " ".join(k.value for k in EventKind)
                raise CommandError(f"unknown event kind {value!r}", hint=f"one of: {kinds}") from None
            return lambda e: e.kind is kind
        if what == "message":
            glob = any(ch in value for ch in "*?[")
            return lambda e: e.message is not None and (
                fnmatchcase(e.message.kind, value) if glob else e.message.kind.lower() == value.lower())
        return _name_test(what, value)
    needle = word.lower()
    return lambda e: needle in e.summary.lower()


def _negated(test: Test) -> Test:
    return lambda e: not test(e)


@dataclass(frozen=True)
class TrafficFilter:
    """A parsed filter: ``text`` as typed, ``tests`` all of which must pass."""

    text: str = ""
    tests: tuple[Test, ...] = field(default=(), repr=False)

    def __call__(self, event: Event) -> bool:
        return all(test(event) for test in self.tests)

    def __bool__(self) -> bool:
        return bool(self.tests)


_TOKEN = re.compile(r"""\s*(?P<neg>[-!](?=\S))?(?:(?P<re>/(?:\\.|[^/\\])*/i?)(?=\s|$)"""
                    r"""|"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<word>\S+))""")


def _words(text: str) -> list[tuple[bool, str, bool]]:
    """(negated, word, quoted) for each word; a regex keeps its spaces and quotes."""
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space
            break
        pos = m.end()
        neg = m.group("neg") or ""
        word = m.group("word")
        if word is not None and (neg + word) in _DIRECTIONS:
            out.append((False, neg + word, False))
        elif word is not None and word[0] in "\"'":
            raise CommandError(f"filter: no closing quote in {word!r}", hint="close the quote")
        elif word is not None:
            out.append((bool(neg), word, False))
        elif m.group("re") is not None:
            out.append((bool(neg), m.group("re"), False))
        else:
            out.append((bool(neg), m.group("dq") if m.group("dq") is not None else m.group("sq"), True))
    return out


def parse_filter(text: str) -> TrafficFilter:
    """Parse filter ``text``; :class:`CommandError` with a hint if it is
    not understood.  Empty text is a filter that keeps everything."""
    tests: list[Test] = []
    for negate, word, quoted in _words(text):
        test = _text_test(word) if quoted else _term(word)
        tests.append(_negated(test) if negate else test)
    return TrafficFilter(text.strip(), tuple(tests))
